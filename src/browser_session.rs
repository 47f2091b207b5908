//! The browser session of the hosted pages (SPEC §6.2): the `tessera_session` cookie holds a
//! random secret; the server keeps its SHA-256 and a `sessions` row (client
//! [`BROWSER_CLIENT`]) whose revocation ends the browser session, so every action that ends
//! a user's sessions (log out everywhere, password change, disabling, MFA changes, admin
//! revocation) ends it as well without knowing about it.

use crate::error::{Error, Result};
use crate::grants::RequestContext;
use crate::metrics::Metrics;
use crate::store::browser_sessions::{self as store, BrowserSessionRow};
use crate::store::sessions::{self as session_store, Session};
use crate::store::users::{self, User};
use crate::store::DbConnection;

/// The `client_id` of the `sessions` rows behind browser sessions. Parentheses are not
/// allowed in client ids, so no stored client can take it.
pub const BROWSER_CLIENT: &str = "(browser)";

/// A live browser session.
#[derive(Clone)]
pub struct BrowserSession {
    /// The `sessions` row it owns (what `/account/sessions` lists).
    pub session_id: String,
    pub user: User,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub expires_at: i64,
    /// SHA-256 of the cookie value (the value itself is never kept).
    id_hash: String,
}

// By hand, to leave out `id_hash`: the key the session cookie finds its row by.
impl std::fmt::Debug for BrowserSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserSession")
            .field("session_id", &self.session_id)
            .field("user_id", &self.user.id)
            .finish_non_exhaustive()
    }
}

impl BrowserSession {
    /// Spends the "signed in during this request" mark that sign-in sets; true at most once
    /// per sign-in, so only the first code after a sign-in yields `fresh` tokens.
    pub fn take_fresh(&self, conn: &mut DbConnection) -> Result<bool> {
        Ok(store::take_fresh(conn, &self.id_hash)?)
    }

    /// True when the user signed in during the authorization request now being answered
    /// (the mark is still unspent).
    pub fn just_signed_in(&self, conn: &mut DbConnection, now: i64) -> Result<bool> {
        Ok(store::find_live(conn, &self.id_hash, now)?.is_some_and(|(row, _)| row.fresh_sign_in))
    }
}

fn hash(secret: &str) -> String {
    crate::crypto::sha256_hex(secret.as_bytes())
}

/// Starts a browser session for a user who has just proven who they are; returns the
/// cookie value (256 random bits). Always a new id, so a session cookie planted before
/// sign-in is never promoted (no fixation). It lasts `ttl` seconds. Call inside the
/// sign-in's transaction.
pub fn start(
    conn: &mut DbConnection,
    ttl: i64,
    user: &User,
    amr: &[&str],
    context: &RequestContext,
    now: i64,
) -> Result<String> {
    let session = Session {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        client_id: BROWSER_CLIENT.to_string(),
        scope: String::new(),
        amr: serde_json::to_string(amr).map_err(|e| Error::internal("encoding amr", e))?,
        auth_time: now,
        user_agent: context
            .user_agent
            .clone()
            .map(|ua| ua.chars().take(512).collect()),
        ip: context.ip.clone(),
        created_at: now,
        last_used_at: now,
        expires_at: now + ttl,
        revoked_at: None,
        revoke_reason: None,
        // A browser session has no refresh token: the code flow starts its own session.
        refresh_hash: None,
        refresh_previous_hash: None,
        refresh_rotated_at: None,
        refresh_successor_sealed: None,
    };
    session_store::insert(conn, &session)?;
    let secret = crate::crypto::random_token::<32>();
    store::insert(
        conn,
        &BrowserSessionRow {
            id_hash: hash(&secret),
            session_id: session.id,
            user_id: user.id.clone(),
            fresh_sign_in: true,
            created_at: now,
        },
    )?;
    Ok(secret)
}

/// The live browser session a cookie value names, with its user (who must not be
/// disabled).
pub fn find(conn: &mut DbConnection, secret: &str, now: i64) -> Result<Option<BrowserSession>> {
    let id_hash = hash(secret);
    let Some((row, session)) = store::find_live(conn, &id_hash, now)? else {
        return Ok(None);
    };
    let Some(user) = users::find(conn, &row.user_id)?.filter(|u| !u.disabled) else {
        return Ok(None);
    };
    Ok(Some(BrowserSession {
        session_id: session.id,
        user,
        auth_time: session.auth_time,
        amr: serde_json::from_str(&session.amr).unwrap_or_default(),
        expires_at: session.expires_at,
        id_hash,
    }))
}

/// Ends the browser session a cookie value names (sign-out); false when none was live.
pub fn end(conn: &mut DbConnection, metrics: &Metrics, secret: &str, now: i64) -> Result<bool> {
    crate::store::transaction(conn, |conn| {
        match store::find_live(conn, &hash(secret), now)? {
            Some((row, _)) => {
                let ended = session_store::revoke(conn, &row.session_id, now, "signed out")?;
                crate::session_end::sessions_ended(conn, metrics, &ended, now)?;
                Ok(!ended.is_empty())
            }
            None => Ok(false),
        }
    })
}
