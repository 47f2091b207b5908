//! The shared state of one instance: settings, the pool (migrated), the master key, the key
//! ring, the password hasher, the caches. Only the edges (`http`, `cli`) and the start-up
//! code (`app`) see [`AppState`]; the domain gets the narrow values it uses, which the
//! methods at the end of this file build (`issuer`, `grant_policy`, `lockout_policy`, …).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::client_cache::ClientCache;
use crate::config::{MasterKeySource, Settings};
use crate::crypto::MasterKey;
use crate::passwords::PasswordHasher;
use crate::ratelimit::LoginLimiter;
use crate::store::{self, DbPool};
use crate::tokens::keyring::KeyRing;
use crate::tokens::now_ms;
use crate::tokens::rotation::{self, KeyPolicy};

/// Everything a request or a CLI command needs, built once.
pub struct AppState {
    pub settings: Settings,
    pub db: DbPool,
    pub master_key: MasterKey,
    /// Shared with the back-channel logout sender, which signs on a worker thread.
    pub keys: Arc<KeyRing>,
    pub key_policy: KeyPolicy,
    pub hasher: PasswordHasher,
    pub login_limiter: LoginLimiter,
    pub metrics: crate::metrics::Metrics,
    /// The senders of outbox messages; a serving instance runs their workers.
    pub outbox: Arc<crate::outbox::Outbox>,
    /// Stored clients, forgotten when the `clients` change counter moves.
    pub client_cache: ClientCache,
    /// The revocation feed's cursor key and the tail its waiting requests watch.
    pub feed: Arc<crate::revocation_feed::watch::Feed>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Loads the master key from the environment or its file (creating the file if missing).
pub fn load_master_key(source: &MasterKeySource) -> Result<MasterKey> {
    match source {
        MasterKeySource::Inline(text) => {
            MasterKey::from_base64(secrecy::ExposeSecret::expose_secret(text))
                .context("invalid TESSERA_MASTER_KEY")
        }
        MasterKeySource::File(path) => MasterKey::load_or_create(path),
    }
}

/// Who opens the state: a serving instance, or an operator's CLI command (which must not
/// act on the deployment's configuration as if its own were it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Operator,
}

impl AppState {
    /// Opens the database (applying migrations), loads the master key, makes sure signing
    /// keys exist, and loads them, as an operator's command does. Fails if the master key
    /// cannot open the stored keys.
    pub fn open(settings: Settings) -> Result<Self> {
        Self::open_as(settings, Role::Operator)
    }

    /// [`AppState::open`] for a serving instance: it also stops the keys of algorithms
    /// missing from its `TESSERA_SIGNING_ALGS`.
    pub fn open_as(settings: Settings, role: Role) -> Result<Self> {
        let pool = store::connect(&settings.database, settings.db_pool_size)?;
        let mut conn = pool.get().context("cannot connect to the database")?;
        let applied = store::migrate(&mut conn, &settings.database)?;
        if !applied.is_empty() {
            log::info!("applied migrations: {}", applied.join(", "));
        }
        let master_key = load_master_key(&settings.master_key)?;
        let max_token_lifetime = settings.access_token_ttl.max(settings.refresh_token_ttl);
        let key_policy = KeyPolicy {
            source: settings.key_source.clone(),
            algs: settings.signing_algs.clone(),
            started_ms: now_ms(),
            stops_dropped_algs: role == Role::Server,
            rotation_interval_ms: settings.key_rotation_interval * 1000,
            publish_lead_ms: (settings.jwks_max_age + settings.key_poll_interval) * 1000,
            max_token_lifetime_ms: max_token_lifetime * 1000,
        };
        // Check the master key against what is stored before anything new is made with it.
        let rows = store::signing_keys::list(&mut conn)?;
        KeyRing::new(
            settings.issuer.clone(),
            settings.signing_algs.clone(),
            master_key.clone(),
            key_policy.max_token_lifetime_ms,
            rows,
            now_ms(),
        )?;
        rotation::ensure_keys(&mut conn, &key_policy, &master_key, now_ms())?;
        let rows = store::signing_keys::list(&mut conn)?;
        let keys = Arc::new(KeyRing::new(
            settings.issuer.clone(),
            settings.signing_algs.clone(),
            master_key.clone(),
            key_policy.max_token_lifetime_ms,
            rows,
            now_ms(),
        )?);
        crate::clients::warn_unconfigured_token_algs(&mut conn, &settings.signing_algs)?;
        let client_cache =
            ClientCache::new(Duration::from_secs(settings.key_poll_interval.max(1) as u64));
        client_cache.sync(&mut conn)?;
        drop(conn);
        let hasher = PasswordHasher::new(settings.argon2)?;
        let login_limiter = LoginLimiter::new(settings.login_rate_limit);
        let mut outbox = crate::outbox::Outbox::new(settings.outbox);
        if let Some(mail) = &settings.mail {
            outbox.register(Arc::new(crate::mail::MailSender::new(
                mail.clone(),
                master_key.clone(),
                &settings.issuer,
            )?));
        }
        outbox.register(Arc::new(crate::backchannel::BackchannelSender::new(
            keys.clone(),
        )));
        let feed = Arc::new(crate::revocation_feed::watch::Feed::new(
            crate::revocation_feed::cursor::CursorKey::new(&master_key),
            // A few reads at once keep both cores busy; more would only hold connections.
            (settings.db_pool_size as usize).min(4),
        ));
        Ok(AppState {
            settings,
            db: pool,
            master_key,
            keys,
            key_policy,
            hasher,
            login_limiter,
            metrics: crate::metrics::Metrics::new(),
            outbox: Arc::new(outbox),
            client_cache,
            feed,
        })
    }

    /// Reloads signing keys from the database (staging or activating as due).
    pub fn sync_keys(&self) -> Result<bool> {
        let mut conn = self.db.get()?;
        self.sync_keys_on(&mut conn)
    }

    /// [`AppState::sync_keys`] on a connection the caller already holds.
    pub fn sync_keys_on(&self, conn: &mut store::DbConnection) -> Result<bool> {
        rotation::sync(conn, self.signing_keys())
    }

    /// The signing keys with what changing them needs, for rotation and retirement.
    pub fn signing_keys(&self) -> rotation::Keys<'_> {
        rotation::Keys {
            ring: &self.keys,
            policy: &self.key_policy,
            master_key: &self.master_key,
        }
    }

    /// Reads the clients' change counter and forgets the cached clients if it moved.
    pub fn sync_clients(&self) -> Result<bool> {
        let mut conn = self.db.get()?;
        Ok(self.client_cache.sync(&mut conn)?)
    }

    /// What the revocation feed needs of the configuration.
    pub fn feed_lifetimes(&self) -> crate::revocation_feed::Lifetimes {
        crate::revocation_feed::Lifetimes {
            default_access_ttl: self.settings.access_token_ttl,
        }
    }

    /// Deletes what has outlived its use: entries that left the revocation feed, deny-list entries of expired tokens, ended
    /// sessions, audit events past retention, finished outbox messages, expired mail tokens,
    /// failure counts of unknown usernames untouched
    /// for a day, per-address budgets that are full again (in batches, so the database is never held for long).
    pub fn purge(&self) -> Result<()> {
        let mut conn = self.db.get()?;
        let now = crate::now();
        store::revoked_tokens::purge_expired(&mut conn, now)?;
        crate::revocation_feed::purge(&mut conn, self.feed_lifetimes(), now)?;
        store::mfa::purge_expired_tokens(&mut conn, now)?;
        store::sessions::delete_ended(&mut conn, now - 86_400)?;
        // Kept a day past expiry so that a late replay still ends the session it started.
        store::authorization_codes::delete_expired(&mut conn, now - 86_400)?;
        store::audit::purge_before(&mut conn, now - self.settings.audit_retention)?;
        // Delivered or abandoned messages are kept a week, for an operator looking into one.
        store::outbox::purge_finished(&mut conn, now - 7 * 86_400)?;
        store::mail_tokens::delete_expired(&mut conn, now - 86_400)?;
        while store::login_failures::purge_stale(&mut conn, now - 86_400, now, 1000)? == 1000 {}
        // A minute of slack for instances whose clocks run behind the database's.
        store::rate_limits::purge_full(&mut conn, now_ms() - 60_000)?;
        Ok(())
    }

    /// The issuer's side of the grants: who signs, for whom, for how long.
    pub fn issuer(&self) -> crate::grants::Issuer<'_> {
        crate::grants::Issuer {
            issuer: &self.settings.issuer,
            audience: &self.settings.audience,
            access_ttl: self.settings.access_token_ttl,
            refresh_ttl: self.settings.refresh_token_ttl,
            keys: &self.keys,
        }
    }

    /// What the grants check requests against.
    pub fn grant_policy(&self) -> crate::grants::Policy<'_> {
        crate::grants::Policy {
            scopes: &self.settings.scopes,
            refresh_reuse_grace: self.settings.refresh_reuse_grace,
            session_idle_timeout: self.settings.session_idle_timeout,
            clients: &self.client_cache,
            lockout: self.lockout_policy(),
            master_key: &self.master_key,
            metrics: &self.metrics,
        }
    }

    /// The lock on credential guessing.
    pub fn lockout_policy(&self) -> crate::lockout::Policy<'_> {
        crate::lockout::Policy {
            threshold: self.settings.lockout_threshold,
            metrics: &self.metrics,
        }
    }
}
