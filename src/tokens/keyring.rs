//! The key ring: signing keys as this instance holds them in memory. It signs with the
//! active key (parsed once, used directly: no per-token key parsing), verifies with every
//! published key, and serves the JWKS from a pre-rendered body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::crypto::MasterKey;
use crate::store::signing_keys::SigningKeyRow;
use crate::tokens::claims::{ACCESS_TYP, REFRESH_TYP};

/// Allowed clock skew on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;

/// Where a key stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// Signs new tokens.
    Active,
    /// Published, signs from `activates_at`.
    Staged,
    /// Signs no more; published until its last token expires.
    Previous,
    /// Its tokens have all expired; no longer published.
    Expired,
    /// Dropped at once by an operator.
    Retired,
}

/// One key's place in the timeline (instants in unix milliseconds).
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub status: KeyStatus,
    pub bits: i32,
    pub created_at: i64,
    pub activates_at: i64,
    /// When it stopped (or will stop) signing, if a successor is known.
    pub deactivates_at: Option<i64>,
    /// When it leaves the JWKS, if known.
    pub published_until: Option<i64>,
    pub retired_at: Option<i64>,
}

/// Works out every key's status at `now_ms`. Key instants are unix milliseconds, so that two
/// rotations within one second still order their keys. `max_token_lifetime_ms` is how long a
/// token signed at the last moment of a key's signing period stays valid.
pub fn classify(rows: &[SigningKeyRow], now_ms: i64, max_token_lifetime_ms: i64) -> Vec<KeyInfo> {
    let now = now_ms;
    let max_token_lifetime = max_token_lifetime_ms;
    let mut live: Vec<&SigningKeyRow> = rows.iter().filter(|r| r.retired_at.is_none()).collect();
    live.sort_by_key(|r| (r.activates_at, r.created_at));
    let active_index = live.iter().rposition(|r| r.activates_at <= now);
    let mut infos: Vec<KeyInfo> = live
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let deactivates_at = live.get(i + 1).map(|next| next.activates_at);
            let published_until =
                deactivates_at.map(|end| end + max_token_lifetime + LEEWAY_SECS as i64 * 1000);
            let status = match active_index {
                Some(a) if i == a => KeyStatus::Active,
                Some(a) if i > a => KeyStatus::Staged,
                None => KeyStatus::Staged,
                Some(_) if published_until.is_some_and(|until| until > now) => KeyStatus::Previous,
                Some(_) => KeyStatus::Expired,
            };
            KeyInfo {
                kid: row.kid.clone(),
                status,
                bits: row.bits,
                created_at: row.created_at,
                activates_at: row.activates_at,
                deactivates_at,
                published_until,
                retired_at: None,
            }
        })
        .collect();
    infos.extend(
        rows.iter()
            .filter(|r| r.retired_at.is_some())
            .map(|row| KeyInfo {
                kid: row.kid.clone(),
                status: KeyStatus::Retired,
                bits: row.bits,
                created_at: row.created_at,
                activates_at: row.activates_at,
                deactivates_at: row.retired_at,
                published_until: row.retired_at,
                retired_at: row.retired_at,
            }),
    );
    infos
}

/// The active key, ready to sign.
pub struct SigningKey {
    pub kid: String,
    pub activates_at: i64,
    key_pair: Arc<RsaKeyPair>,
    access_header: String,
    refresh_header: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("token expired")]
    Expired,
    #[error("token signed by an unknown key")]
    UnknownKid,
    #[error("{0}")]
    Invalid(&'static str),
}

/// What kind of token a verification expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

/// The keys at one moment: immutable, swapped whole on reload.
pub struct KeySet {
    signing: Option<Arc<SigningKey>>,
    verifying: HashMap<String, DecodingKey>,
    /// `{"keys":[…]}` rendered once.
    pub jwks_body: Arc<String>,
    /// Quoted strong ETag of `jwks_body`.
    pub etag: Arc<String>,
    /// The rows this set was built from and their statuses.
    pub infos: Vec<KeyInfo>,
    rows: Vec<SigningKeyRow>,
    /// Next moment at which time alone changes the set (a staged key activating, an old
    /// one leaving).
    next_change_at: Option<i64>,
}

/// This instance's keys, shared by all workers.
pub struct KeyRing {
    issuer: String,
    master_key: MasterKey,
    max_token_lifetime_ms: i64,
    current: RwLock<Arc<KeySet>>,
    /// Decrypted key pairs by kid, so a reload decrypts only new keys.
    decrypted: Mutex<HashMap<String, Arc<RsaKeyPair>>>,
    last_reload: Mutex<Instant>,
    rng: SystemRandom,
}

impl KeyRing {
    /// Builds a ring from the stored rows. Fails when the master key cannot open a key that
    /// may sign: tessera never silently replaces keys it cannot read.
    pub fn new(
        issuer: String,
        master_key: MasterKey,
        max_token_lifetime_ms: i64,
        rows: Vec<SigningKeyRow>,
        now_ms: i64,
    ) -> Result<Self> {
        let ring = KeyRing {
            issuer,
            master_key,
            max_token_lifetime_ms,
            current: RwLock::new(Arc::new(KeySet::empty())),
            decrypted: Mutex::new(HashMap::new()),
            last_reload: Mutex::new(Instant::now()),
            rng: SystemRandom::new(),
        };
        ring.install(rows, now_ms)?;
        Ok(ring)
    }

    /// The issuer the ring signs as.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The current set.
    pub fn current(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Rebuilds the set from `rows` if they changed or time moved the set on.
    pub fn refresh(&self, rows: Vec<SigningKeyRow>, now_ms: i64) -> Result<bool> {
        let now = now_ms;
        *self.last_reload.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        let current = self.current();
        let same_rows = current.rows.len() == rows.len()
            && current.rows.iter().zip(&rows).all(|(a, b)| {
                a.kid == b.kid && a.activates_at == b.activates_at && a.retired_at == b.retired_at
            });
        if same_rows && current.next_change_at.is_none_or(|t| t > now) {
            return Ok(false);
        }
        self.install(rows, now)?;
        Ok(true)
    }

    /// True when the last reload is older than `min_interval`: an unknown `kid` triggers a
    /// reload at most that often.
    pub fn may_reload(&self, min_interval: Duration) -> bool {
        self.last_reload
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            >= min_interval
    }

    fn install(&self, rows: Vec<SigningKeyRow>, now_ms: i64) -> Result<()> {
        let now = now_ms;
        let infos = classify(&rows, now, self.max_token_lifetime_ms);
        let mut decrypted = self.decrypted.lock().unwrap_or_else(|e| e.into_inner());
        let mut signing = None;
        let mut verifying = HashMap::new();
        let mut jwks = Vec::new();
        let mut next_change_at: Option<i64> = None;
        let mut note_change = |t: i64| {
            if t > now {
                next_change_at = Some(next_change_at.map_or(t, |c| c.min(t)));
            }
        };
        for info in &infos {
            let Some(row) = rows.iter().find(|r| r.kid == info.kid) else {
                continue;
            };
            if !matches!(
                info.status,
                KeyStatus::Active | KeyStatus::Staged | KeyStatus::Previous
            ) {
                continue;
            }
            if info.status == KeyStatus::Staged {
                note_change(info.activates_at);
            }
            if let Some(until) = info.published_until {
                note_change(until);
            }
            // Keys that sign now or soon are opened now, so a wrong master key is found at
            // start-up rather than at the moment of rotation.
            if matches!(info.status, KeyStatus::Active | KeyStatus::Staged)
                && !decrypted.contains_key(&row.kid)
            {
                let der = self.master_key.open(&seal_context(&row.kid), &row.private_sealed).map_err(|_| {
                    anyhow!("the master key cannot decrypt signing key {}: is TESSERA_MASTER_KEY (or its file) the one this database was created with?", row.kid)
                })?;
                let key_pair = RsaKeyPair::from_pkcs8(&der)
                    .map_err(|e| anyhow!("signing key {} is not a valid RSA key: {e}", row.kid))?;
                decrypted.insert(row.kid.clone(), Arc::new(key_pair));
            }
            if info.status == KeyStatus::Active {
                let key_pair = decrypted
                    .get(&row.kid)
                    .cloned()
                    .ok_or_else(|| anyhow!("active key {} was not decrypted", row.kid))?;
                signing = Some(Arc::new(SigningKey {
                    kid: row.kid.clone(),
                    activates_at: row.activates_at,
                    key_pair,
                    access_header: encode_header(ACCESS_TYP, &row.kid),
                    refresh_header: encode_header(REFRESH_TYP, &row.kid),
                }));
            }
            let decoding = DecodingKey::from_rsa_components(&row.public_n, &row.public_e)
                .map_err(|e| anyhow!("signing key {} has a bad public part: {e}", row.kid))?;
            verifying.insert(row.kid.clone(), decoding);
            jwks.push(serde_json::json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": row.kid, "n": row.public_n, "e": row.public_e,
            }));
        }
        decrypted.retain(|kid, _| {
            infos
                .iter()
                .any(|i| &i.kid == kid && matches!(i.status, KeyStatus::Active | KeyStatus::Staged))
        });
        let jwks_body = serde_json::json!({ "keys": jwks }).to_string();
        let etag = format!(
            "\"{}\"",
            &crate::crypto::sha256_hex(jwks_body.as_bytes())[..32]
        );
        let set = KeySet {
            signing,
            verifying,
            jwks_body: Arc::new(jwks_body),
            etag: Arc::new(etag),
            infos,
            rows,
            next_change_at,
        };
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        Ok(())
    }

    /// Signs `claims` with the active key into a compact JWS.
    pub fn sign<T: Serialize>(&self, kind: TokenKind, claims: &T) -> Result<String> {
        let set = self.current();
        let key = set
            .signing
            .as_ref()
            .ok_or_else(|| anyhow!("no active signing key"))?;
        let payload = serde_json::to_vec(claims)?;
        let header = match kind {
            TokenKind::Access => &key.access_header,
            TokenKind::Refresh => &key.refresh_header,
        };
        let mut token = String::with_capacity(header.len() + payload.len() * 4 / 3 + 360);
        token.push_str(header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let mut signature = vec![0u8; key.key_pair.public_modulus_len()];
        key.key_pair
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                token.as_bytes(),
                &mut signature,
            )
            .map_err(|_| anyhow!("RSA signing failed"))?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    /// The kid that signs now.
    pub fn active_kid(&self) -> Option<String> {
        self.current().signing.as_ref().map(|k| k.kid.clone())
    }

    /// When the active key started signing (unix milliseconds).
    pub fn active_since(&self) -> Option<i64> {
        self.current().signing.as_ref().map(|k| k.activates_at)
    }

    /// Verifies a token of `kind`: RS256 only, a known `kid`, the right `typ`, `iss`, `exp`
    /// and `nbf` (30 s leeway), and `aud` when `audience` is given.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        kind: TokenKind,
        audience: Option<&str>,
    ) -> Result<T, VerifyError> {
        match audience {
            Some(aud) => self.verify_audiences(token, kind, &[aud]),
            None => self.verify_audiences(token, kind, &[]),
        }
    }

    /// Like [`KeyRing::verify`], with `aud` one of `audiences` (any audience when empty).
    pub fn verify_audiences<T: DeserializeOwned>(
        &self,
        token: &str,
        kind: TokenKind,
        audiences: &[&str],
    ) -> Result<T, VerifyError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| VerifyError::Invalid("malformed token"))?;
        if header.alg != Algorithm::RS256 {
            return Err(VerifyError::Invalid("unsupported token algorithm"));
        }
        let expected_typ = match kind {
            TokenKind::Access => ACCESS_TYP,
            TokenKind::Refresh => REFRESH_TYP,
        };
        if header.typ.as_deref() != Some(expected_typ) {
            return Err(VerifyError::Invalid(match kind {
                TokenKind::Access => "not an access token",
                TokenKind::Refresh => "not a refresh token",
            }));
        }
        let kid = header.kid.ok_or(VerifyError::Invalid("token has no kid"))?;
        let set = self.current();
        let key = set.verifying.get(&kid).ok_or(VerifyError::UnknownKid)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        if audiences.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(audiences);
        }
        let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => VerifyError::Expired,
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                    VerifyError::Invalid("token not yet valid")
                }
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    VerifyError::Invalid("bad token signature")
                }
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                    VerifyError::Invalid("token from another issuer")
                }
                jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                    VerifyError::Invalid("token for another audience")
                }
                _ => VerifyError::Invalid("malformed token"),
            },
        )?;
        let wanted_type = match kind {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        };
        if data.claims.get("type").and_then(|t| t.as_str()) != Some(wanted_type) {
            return Err(VerifyError::Invalid("wrong token type"));
        }
        serde_json::from_value(data.claims)
            .map_err(|_| VerifyError::Invalid("malformed token claims"))
    }
}

impl KeySet {
    fn empty() -> Self {
        KeySet {
            signing: None,
            verifying: HashMap::new(),
            jwks_body: Arc::new(r#"{"keys":[]}"#.to_string()),
            etag: Arc::new("\"empty\"".to_string()),
            infos: Vec::new(),
            rows: Vec::new(),
            next_change_at: None,
        }
    }

    /// True when a key can sign.
    pub fn can_sign(&self) -> bool {
        self.signing.is_some()
    }
}

fn encode_header(typ: &str, kid: &str) -> String {
    let header = serde_json::json!({ "alg": "RS256", "typ": typ, "kid": kid });
    URL_SAFE_NO_PAD.encode(header.to_string())
}

/// Associated data binding a sealed private key to its kid.
pub fn seal_context(kid: &str) -> String {
    format!("tessera signing key {kid}")
}
