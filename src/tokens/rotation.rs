//! Signing-key lifecycle in the database: the first key, scheduled rotation, rotation on
//! demand and retirement. Every change happens under a database lock, so several instances
//! attempting the same change make it once.
//!
//! Key instants are unix milliseconds (see `keyring::classify`).

use anyhow::{anyhow, Result};

use crate::audit::{self, kind, Event};
use crate::crypto::MasterKey;
use crate::store::signing_keys::{self, SigningKeyRow};
use crate::store::{self, DbConnection, Lock};
use crate::tokens::keygen::KeySource;
use crate::tokens::keygen::{self, NewKeyPair};
use crate::tokens::keyring::{classify, seal_context, KeyStatus};

/// What the lifecycle needs to know.
#[derive(Debug, Clone)]
pub struct KeyPolicy {
    pub source: KeySource,
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

fn store_key(
    conn: &mut DbConnection,
    master_key: &MasterKey,
    key: NewKeyPair,
    now_ms: i64,
    activates_at: i64,
) -> Result<String> {
    let row = SigningKeyRow {
        private_sealed: master_key.seal(&seal_context(&key.kid), &key.pkcs8_der),
        kid: key.kid.clone(),
        bits: key.bits as i32,
        public_n: key.n,
        public_e: key.e,
        created_at: now_ms,
        activates_at,
        retired_at: None,
    };
    signing_keys::insert(conn, &row)?;
    log::info!(
        "created signing key {} (activates at {activates_at} ms)",
        row.kid
    );
    Ok(row.kid)
}

struct Needs {
    active: bool,
    staged: bool,
}

fn needs(rows: &[SigningKeyRow], policy: &KeyPolicy, now_ms: i64) -> Needs {
    let infos = classify(rows, now_ms, policy.max_token_lifetime_ms);
    Needs {
        active: !infos.iter().any(|i| i.status == KeyStatus::Active),
        staged: !infos.iter().any(|i| i.status == KeyStatus::Staged),
    }
}

/// Makes sure there is an active key and a staged successor; creates what is missing. This
/// is both first start and scheduled rotation: the staged key activates by time alone, and
/// the next call stages the one after it. Returns true when it changed anything.
pub fn ensure_keys(
    conn: &mut DbConnection,
    policy: &KeyPolicy,
    master_key: &MasterKey,
    now_ms: i64,
) -> Result<bool> {
    let rows = signing_keys::list(conn)?;
    let wanted = needs(&rows, policy, now_ms);
    if !wanted.active && !wanted.staged {
        return Ok(false);
    }
    // Generation is slow; do it before taking the lock, and drop what turns out unneeded.
    let mut fresh: Vec<NewKeyPair> = Vec::new();
    for _ in 0..(wanted.active as usize + wanted.staged as usize) {
        fresh.push(keygen::generate(&policy.source)?);
    }
    store::exclusive_transaction(conn, Lock::SigningKeys, |conn| -> Result<bool> {
        let rows = signing_keys::list(conn)?;
        let infos = classify(&rows, now_ms, policy.max_token_lifetime_ms);
        let mut changed = false;
        let mut active_since = infos
            .iter()
            .find(|i| i.status == KeyStatus::Active)
            .map(|i| i.activates_at);
        let mut staged: Vec<_> = infos
            .iter()
            .filter(|i| i.status == KeyStatus::Staged)
            .collect();
        staged.sort_by_key(|i| i.activates_at);
        if active_since.is_none() {
            if let Some(first) = staged.first() {
                signing_keys::set_activates_at(conn, &first.kid, now_ms)?;
                staged.remove(0);
            } else {
                let key = fresh
                    .pop()
                    .ok_or_else(|| anyhow!("no generated key left"))?;
                store_key(conn, master_key, key, now_ms, now_ms)?;
            }
            active_since = Some(now_ms);
            changed = true;
        }
        if staged.is_empty() {
            let key = match fresh.pop() {
                Some(key) => key,
                None => keygen::generate(&policy.source)?,
            };
            let activates_at = (active_since.unwrap_or(now_ms) + policy.rotation_interval_ms)
                .max(now_ms + policy.publish_lead_ms);
            store_key(conn, master_key, key, now_ms, activates_at)?;
            changed = true;
        }
        Ok(changed)
    })
}

/// Who asked for an operator's key change, for the audit trail.
#[derive(Debug, Clone)]
pub struct Operator {
    /// A user id, or `cli`.
    pub actor: String,
    pub ip: Option<String>,
}

/// Makes the staged key (or a new one) active now and stages a fresh successor, audited in
/// the same transaction. Returns the new active kid.
pub fn rotate_now(
    conn: &mut DbConnection,
    policy: &KeyPolicy,
    master_key: &MasterKey,
    now_ms: i64,
    operator: &Operator,
) -> Result<String> {
    let mut fresh = vec![
        keygen::generate(&policy.source)?,
        keygen::generate(&policy.source)?,
    ];
    store::exclusive_transaction(conn, Lock::SigningKeys, |conn| -> Result<String> {
        let previous = active_kid(conn, policy, now_ms)?;
        let kid = rotate_locked(conn, policy, master_key, now_ms, &mut fresh)?;
        audit::record(
            conn,
            Event::new(kind::KEY_ROTATED)
                .actor(&operator.actor)
                .ip(operator.ip.clone())
                .details(serde_json::json!({ "active_kid": kid, "previous_kid": previous })),
            now_ms / 1000,
        )?;
        Ok(kid)
    })
}

fn active_kid(conn: &mut DbConnection, policy: &KeyPolicy, now_ms: i64) -> Result<Option<String>> {
    let rows = signing_keys::list(conn)?;
    Ok(classify(&rows, now_ms, policy.max_token_lifetime_ms)
        .into_iter()
        .find(|i| i.status == KeyStatus::Active)
        .map(|i| i.kid))
}

/// A key made before the lock if there is one left, else a new one made now.
fn take_or_generate(fresh: &mut Vec<NewKeyPair>, policy: &KeyPolicy) -> Result<NewKeyPair> {
    match fresh.pop() {
        Some(key) => Ok(key),
        None => keygen::generate(&policy.source),
    }
}

fn rotate_locked(
    conn: &mut DbConnection,
    policy: &KeyPolicy,
    master_key: &MasterKey,
    now_ms: i64,
    fresh: &mut Vec<NewKeyPair>,
) -> Result<String> {
    let rows = signing_keys::list(conn)?;
    let infos = classify(&rows, now_ms, policy.max_token_lifetime_ms);
    let mut staged: Vec<_> = infos
        .iter()
        .filter(|i| i.status == KeyStatus::Staged)
        .collect();
    staged.sort_by_key(|i| i.activates_at);
    let new_active = match staged.first() {
        Some(next) => {
            signing_keys::set_activates_at(conn, &next.kid, now_ms)?;
            next.kid.clone()
        }
        None => {
            let key = take_or_generate(fresh, policy)?;
            store_key(conn, master_key, key, now_ms, now_ms)?
        }
    };
    // Later staged keys keep their place; only stage a new one if none is left. Like a
    // scheduled successor, it is published at least one JWKS cache lifetime before it signs.
    if staged.len() <= 1 {
        let key = take_or_generate(fresh, policy)?;
        let activates_at =
            (now_ms + policy.rotation_interval_ms).max(now_ms + policy.publish_lead_ms);
        store_key(conn, master_key, key, now_ms, activates_at)?;
    }
    log::info!("rotated signing keys: {new_active} is active");
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
    if active_kid(conn, policy, now_ms)?.as_deref() == Some(kid) {
        fresh.push(keygen::generate(&policy.source)?);
        fresh.push(keygen::generate(&policy.source)?);
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
        let successor = if was == KeyStatus::Active {
            Some(rotate_locked(conn, policy, master_key, now_ms, &mut fresh)?)
        } else {
            None
        };
        signing_keys::retire(conn, kid, now_ms)?;
        audit::record(
            conn,
            Event::new(kind::KEY_RETIRED)
                .actor(&operator.actor)
                .ip(operator.ip.clone())
                .details(serde_json::json!({
                    "kid": kid,
                    "status": was,
                    "active_kid": successor,
                })),
            now_ms / 1000,
        )?;
        log::warn!("retired signing key {kid}");
        Ok(Retired::Done)
    })
}
