//! Signing-key lifecycle in the database, one per configured algorithm: the first key,
//! scheduled rotation, rotation on demand and retirement. Every change happens under a
//! database lock, so several instances attempting the same change make it once.
//!
//! Key instants are unix milliseconds (see `keyring::classify`).

use anyhow::{anyhow, Result};

use crate::audit::{self, Event, Kind};
use crate::crypto::MasterKey;
use crate::store::signing_keys::{self, SigningKeyRow};
use crate::store::{self, DbConnection, Lock};
use crate::tokens::algs::SigningAlg;
use crate::tokens::keygen::KeySource;
use crate::tokens::keygen::{self, NewKeyPair, PublicParts};
use crate::tokens::keyring::{classify, seal_context, KeyRing, KeyStatus};

/// What the lifecycle needs to know.
#[derive(Debug, Clone)]
pub struct KeyPolicy {
    pub source: KeySource,
    /// `TESSERA_SIGNING_ALGS`: each has its own lifecycle.
    pub algs: Vec<SigningAlg>,
    /// When this instance started. Keys of an algorithm it does not sign with stop signing
    /// (and leave the JWKS once their tokens expire) only if they were made before then: an
    /// instance still configured with the algorithm, in a rolling change, may make one after,
    /// and two configurations undoing each other's keys on every poll would churn for ever.
    pub started_ms: i64,
    /// Whether this process may stop keys of algorithms missing from `algs`: only a serving
    /// instance, whose list is the deployment's. An operator's CLI command run without the
    /// server's `TESSERA_SIGNING_ALGS` must not switch the server's other algorithms off.
    pub stops_dropped_algs: bool,
    pub rotation_interval_ms: i64,
    /// How long before it signs a new key must already be published: at least one JWKS
    /// cache lifetime, plus the time other instances take to notice.
    pub publish_lead_ms: i64,
    pub max_token_lifetime_ms: i64,
}

/// Outcome of a retirement request.
#[derive(Debug, PartialEq, Eq)]
pub enum Retired {
    Done,
    NotFound,
}

/// The row that stores `key`, its private part sealed under `master_key`.
pub fn sealed_row(
    master_key: &MasterKey,
    key: NewKeyPair,
    now_ms: i64,
    activates_at: i64,
) -> SigningKeyRow {
    let (public_n, public_e, public_x, public_y) = match key.public {
        PublicParts::Rsa { n, e } => (n, e, None, None),
        PublicParts::Ec { x, y } => (String::new(), String::new(), Some(x), Some(y)),
        PublicParts::Okp { x } => (String::new(), String::new(), Some(x), None),
    };
    SigningKeyRow {
        private_sealed: master_key.seal(&seal_context(&key.kid), &key.pkcs8_der),
        kid: key.kid,
        bits: key.bits as i32,
        public_n,
        public_e,
        created_at: now_ms,
        activates_at,
        retired_at: None,
        alg: key.alg.as_str().to_string(),
        public_x,
        public_y,
        deactivated_at: None,
    }
}

fn store_key(
    conn: &mut DbConnection,
    master_key: &MasterKey,
    key: NewKeyPair,
    now_ms: i64,
    activates_at: i64,
) -> Result<String> {
    let row = sealed_row(master_key, key, now_ms, activates_at);
    signing_keys::insert(conn, &row)?;
    log::info!(
        "created {} signing key {} (activates at {activates_at} ms)",
        row.alg,
        row.kid
    );
    Ok(row.kid)
}

struct Needs {
    active: bool,
    staged: bool,
}

fn needs(rows: &[SigningKeyRow], alg: SigningAlg, policy: &KeyPolicy, now_ms: i64) -> Needs {
    let infos = classify(rows, now_ms, policy.max_token_lifetime_ms);
    let of_alg = |status| {
        infos
            .iter()
            .any(|i| i.alg == alg.as_str() && i.status == status)
    };
    Needs {
        active: !of_alg(KeyStatus::Active),
        staged: !of_alg(KeyStatus::Staged),
    }
}

/// Keys of algorithms this instance does not sign with that still sign or are staged to
/// (see [`KeyPolicy::started_ms`]).
fn dropped_keys(rows: &[SigningKeyRow], policy: &KeyPolicy, now_ms: i64) -> Vec<String> {
    if !policy.stops_dropped_algs {
        return Vec::new();
    }
    classify(rows, now_ms, policy.max_token_lifetime_ms)
        .into_iter()
        .filter(|i| matches!(i.status, KeyStatus::Active | KeyStatus::Staged))
        .filter(|i| !policy.algs.iter().any(|alg| alg.as_str() == i.alg))
        .filter(|i| i.created_at < policy.started_ms)
        .map(|i| i.kid)
        .collect()
}

/// Makes sure every configured algorithm has an active key and a staged successor, creating
/// what is missing, and stops keys of algorithms no longer configured. This is both first
/// start and scheduled rotation: a staged key activates by time alone, and the next call
/// stages the one after it. Returns true when it changed anything.
pub fn ensure_keys(
    conn: &mut DbConnection,
    policy: &KeyPolicy,
    master_key: &MasterKey,
    now_ms: i64,
) -> Result<bool> {
    let rows = signing_keys::list(conn)?;
    // Generation is slow (for RSA); do it before taking the lock, and drop what turns out
    // unneeded.
    let mut fresh: Vec<NewKeyPair> = Vec::new();
    for &alg in &policy.algs {
        let wanted = needs(&rows, alg, policy, now_ms);
        for _ in 0..(wanted.active as usize + wanted.staged as usize) {
            fresh.push(keygen::generate(&policy.source, alg)?);
        }
    }
    if fresh.is_empty() && dropped_keys(&rows, policy, now_ms).is_empty() {
        return Ok(false);
    }
    store::exclusive_transaction(conn, Lock::SigningKeys, |conn| -> Result<bool> {
        let rows = signing_keys::list(conn)?;
        let mut changed = false;
        let dropped = dropped_keys(&rows, policy, now_ms);
        if !dropped.is_empty() {
            signing_keys::deactivate(conn, &dropped, now_ms)?;
            log::warn!(
                "signing keys {} stop signing: their algorithm is not in TESSERA_SIGNING_ALGS",
                dropped.join(", ")
            );
            changed = true;
        }
        for &alg in &policy.algs {
            changed |= ensure_alg_locked(conn, policy, master_key, alg, now_ms, &mut fresh)?;
        }
        Ok(changed)
    })
}

fn ensure_alg_locked(
    conn: &mut DbConnection,
    policy: &KeyPolicy,
    master_key: &MasterKey,
    alg: SigningAlg,
    now_ms: i64,
    fresh: &mut Vec<NewKeyPair>,
) -> Result<bool> {
    let rows = signing_keys::list(conn)?;
    let infos = classify(&rows, now_ms, policy.max_token_lifetime_ms);
    let mut changed = false;
    let mut active_since = infos
        .iter()
        .find(|i| i.alg == alg.as_str() && i.status == KeyStatus::Active)
        .map(|i| i.activates_at);
    let mut staged: Vec<_> = infos
        .iter()
        .filter(|i| i.alg == alg.as_str() && i.status == KeyStatus::Staged)
        .collect();
    staged.sort_by_key(|i| i.activates_at);
    if active_since.is_none() {
        if let Some(first) = staged.first() {
            signing_keys::set_activates_at(conn, &first.kid, now_ms)?;
            staged.remove(0);
        } else {
            let key = take_or_generate(fresh, policy, alg)?;
            store_key(conn, master_key, key, now_ms, now_ms)?;
        }
        active_since = Some(now_ms);
        changed = true;
    }
    if staged.is_empty() {
        let key = take_or_generate(fresh, policy, alg)?;
        let activates_at = (active_since.unwrap_or(now_ms) + policy.rotation_interval_ms)
            .max(now_ms + policy.publish_lead_ms);
        store_key(conn, master_key, key, now_ms, activates_at)?;
        changed = true;
    }
    Ok(changed)
}

/// Who asked for an operator's key change, for the audit trail.
#[derive(Debug, Clone)]
pub struct Operator {
    /// A user id, or `cli`.
    pub actor: String,
    pub ip: Option<String>,
}

/// Makes the staged key (or a new one) of `alg`, or of every configured algorithm when
/// `alg` is `None`, active now and stages a fresh successor, audited in the same
/// transaction. Returns the new active kid of each rotated algorithm.
pub fn rotate_now(
    conn: &mut DbConnection,
    policy: &KeyPolicy,
    master_key: &MasterKey,
    now_ms: i64,
    operator: &Operator,
    alg: Option<SigningAlg>,
) -> Result<Vec<(SigningAlg, String)>> {
    let algs: Vec<SigningAlg> = match alg {
        Some(alg) => vec![alg],
        None => policy.algs.clone(),
    };
    let mut fresh = Vec::new();
    for &alg in &algs {
        fresh.push(keygen::generate(&policy.source, alg)?);
        fresh.push(keygen::generate(&policy.source, alg)?);
    }
    store::exclusive_transaction(
        conn,
        Lock::SigningKeys,
        |conn| -> Result<Vec<(SigningAlg, String)>> {
            let mut rotated = Vec::new();
            for &alg in &algs {
                let previous = active_kid(conn, policy, alg, now_ms)?;
                let kid = rotate_locked(conn, policy, master_key, alg, now_ms, &mut fresh)?;
                audit::record(
                    conn,
                    Event::new(Kind::KeyRotated)
                        .actor(&operator.actor)
                        .ip(operator.ip.clone())
                        .details(serde_json::json!({
                            "alg": alg.as_str(),
                            "active_kid": kid,
                            "previous_kid": previous,
                        })),
                    now_ms / 1000,
                )?;
                rotated.push((alg, kid));
            }
            Ok(rotated)
        },
    )
}

fn active_kid(
    conn: &mut DbConnection,
    policy: &KeyPolicy,
    alg: SigningAlg,
    now_ms: i64,
) -> Result<Option<String>> {
    let rows = signing_keys::list(conn)?;
    Ok(classify(&rows, now_ms, policy.max_token_lifetime_ms)
        .into_iter()
        .find(|i| i.alg == alg.as_str() && i.status == KeyStatus::Active)
        .map(|i| i.kid))
}

/// A key of `alg` made before the lock if there is one left, else a new one made now.
fn take_or_generate(
    fresh: &mut Vec<NewKeyPair>,
    policy: &KeyPolicy,
    alg: SigningAlg,
) -> Result<NewKeyPair> {
    match fresh.iter().position(|k| k.alg == alg) {
        Some(i) => Ok(fresh.swap_remove(i)),
        None => keygen::generate(&policy.source, alg),
    }
}

fn rotate_locked(
    conn: &mut DbConnection,
    policy: &KeyPolicy,
    master_key: &MasterKey,
    alg: SigningAlg,
    now_ms: i64,
    fresh: &mut Vec<NewKeyPair>,
) -> Result<String> {
    let rows = signing_keys::list(conn)?;
    let infos = classify(&rows, now_ms, policy.max_token_lifetime_ms);
    let mut staged: Vec<_> = infos
        .iter()
        .filter(|i| i.alg == alg.as_str() && i.status == KeyStatus::Staged)
        .collect();
    staged.sort_by_key(|i| i.activates_at);
    let new_active = match staged.first() {
        Some(next) => {
            signing_keys::set_activates_at(conn, &next.kid, now_ms)?;
            next.kid.clone()
        }
        None => {
            let key = take_or_generate(fresh, policy, alg)?;
            store_key(conn, master_key, key, now_ms, now_ms)?
        }
    };
    // Later staged keys keep their place; only stage a new one if none is left. Like a
    // scheduled successor, it is published at least one JWKS cache lifetime before it signs.
    if staged.len() <= 1 {
        let key = take_or_generate(fresh, policy, alg)?;
        let activates_at =
            (now_ms + policy.rotation_interval_ms).max(now_ms + policy.publish_lead_ms);
        store_key(conn, master_key, key, now_ms, activates_at)?;
    }
    log::info!("rotated {alg} signing keys: {new_active} is active");
    Ok(new_active)
}

/// Drops a key from the JWKS at once (for a compromised key), audited in the same
/// transaction. Retiring the active key rotates first.
pub fn retire(
    conn: &mut DbConnection,
    policy: &KeyPolicy,
    master_key: &MasterKey,
    kid: &str,
    now_ms: i64,
    operator: &Operator,
) -> Result<Retired> {
    // Only retiring the active key needs new keys; make them before the lock when that is
    // what it looks like now (a rotation in between is covered under the lock).
    let mut fresh = Vec::new();
    let rows = signing_keys::list(conn)?;
    if let Some(info) = classify(&rows, now_ms, policy.max_token_lifetime_ms)
        .into_iter()
        .find(|i| i.kid == kid && i.status == KeyStatus::Active)
    {
        if let Ok(alg) = info.alg.parse::<SigningAlg>() {
            if policy.algs.contains(&alg) {
                fresh.push(keygen::generate(&policy.source, alg)?);
                fresh.push(keygen::generate(&policy.source, alg)?);
            }
        }
    }
    store::exclusive_transaction(conn, Lock::SigningKeys, |conn| -> Result<Retired> {
        let rows = signing_keys::list(conn)?;
        let infos = classify(&rows, now_ms, policy.max_token_lifetime_ms);
        let Some(info) = infos
            .iter()
            .find(|i| i.kid == kid && i.status != KeyStatus::Retired)
        else {
            return Ok(Retired::NotFound);
        };
        let was = info.status;
        let alg: SigningAlg = info.alg.parse().map_err(|e: String| anyhow!(e))?;
        // Only an algorithm this instance signs with gets a successor; the active key of a
        // dropped one simply goes.
        let successor = if was == KeyStatus::Active && policy.algs.contains(&alg) {
            Some(rotate_locked(
                conn, policy, master_key, alg, now_ms, &mut fresh,
            )?)
        } else {
            None
        };
        signing_keys::retire(conn, kid, now_ms)?;
        crate::revocation_feed::record_key(conn, kid, now_ms / 1000)?;
        audit::record(
            conn,
            Event::new(Kind::KeyRetired)
                .actor(&operator.actor)
                .ip(operator.ip.clone())
                .details(serde_json::json!({
                    "kid": kid,
                    "alg": alg.as_str(),
                    "status": was.as_str(),
                    "active_kid": successor,
                })),
            now_ms / 1000,
        )?;
        log::warn!("retired signing key {kid}");
        Ok(Retired::Done)
    })
}

/// What changing the signing keys needs: the in-memory ring to reload, the lifecycle policy
/// and the master key that seals new keys.
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    pub ring: &'a KeyRing,
    pub policy: &'a KeyPolicy,
    pub master_key: &'a MasterKey,
}

/// Brings the ring in line with the table: makes keys that are due (first key, staging) and
/// reloads the ring. `true` when the ring changed.
pub fn sync(conn: &mut DbConnection, keys: Keys<'_>) -> Result<bool> {
    ensure_keys(conn, keys.policy, keys.master_key, crate::tokens::now_ms())?;
    let rows = signing_keys::list(conn)?;
    keys.ring.refresh(rows, crate::tokens::now_ms())
}
