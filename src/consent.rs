//! Consent (SPEC §6.2): a third-party client needs the user's "Allow" for the scopes it asks;
//! the answer is remembered per user and client, and withdrawing it ends that client's
//! sessions of the user.

use crate::audit::{self, Event, Kind};
use crate::clients::Client;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::consents::{self as store, Consent};
use crate::store::{self as db, sessions, DbConnection};

/// The scopes a stored consent allows.
pub fn scopes_of(consent: &Consent) -> Vec<String> {
    serde_json::from_str(&consent.scopes).unwrap_or_default()
}

/// True when the client may have `scopes` without asking: it is first-party, or the user
/// already allowed every one of them.
pub fn covered(
    conn: &mut DbConnection,
    user_id: &str,
    client: &Client,
    scopes: &[String],
) -> Result<bool> {
    if client.first_party {
        return Ok(true);
    }
    let allowed: Vec<String> = match store::find(conn, user_id, &client.client_id)? {
        Some(consent) => serde_json::from_str(&consent.scopes).unwrap_or_default(),
        None => return Ok(false),
    };
    Ok(scopes.iter().all(|s| allowed.contains(s)))
}

/// Remembers "Allow" for `scopes`, added to what the user allowed the client before.
pub fn grant(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
    ip: Option<String>,
    now: i64,
) -> Result<()> {
    db::transaction(conn, |conn| -> Result<()> {
        let previous = store::find(conn, user_id, client_id)?;
        let mut all: Vec<String> = previous
            .as_ref()
            .map(|c| serde_json::from_str(&c.scopes).unwrap_or_default())
            .unwrap_or_default();
        for scope in scopes {
            if !all.contains(scope) {
                all.push(scope.clone());
            }
        }
        store::upsert(
            conn,
            &Consent {
                user_id: user_id.to_string(),
                client_id: client_id.to_string(),
                scopes: serde_json::to_string(&all)
                    .map_err(|e| Error::internal("encoding scopes", e))?,
                created_at: previous.map_or(now, |c| c.created_at),
                updated_at: now,
            },
        )?;
        audit::record(
            conn,
            Event::new(Kind::ConsentGranted)
                .actor(user_id)
                .user(user_id)
                .client(client_id)
                .ip(ip)
                .details(serde_json::json!({ "scopes": scopes })),
            now,
        )?;
        Ok(())
    })
}

/// The user's consents, by client id.
pub fn list(conn: &mut DbConnection, user_id: &str) -> Result<Vec<Consent>> {
    Ok(store::list_for_user(conn, user_id)?)
}

/// Withdraws the user's consent for a client and ends the user's sessions with it; returns
/// how many sessions ended. No such consent is `not_found`.
pub fn withdraw(
    conn: &mut DbConnection,
    metrics: &Metrics,
    user_id: &str,
    client_id: &str,
    ip: Option<String>,
    now: i64,
) -> Result<usize> {
    db::transaction(conn, |conn| -> Result<usize> {
        if store::delete(conn, user_id, client_id)? == 0 {
            return Err(Error::NotFound(format!(
                "no consent for client `{client_id}`"
            )));
        }
        let ended = sessions::revoke_all_for_user_and_client(
            conn,
            user_id,
            client_id,
            now,
            "consent withdrawn",
        )?;
        crate::session_end::sessions_ended(conn, metrics, &ended, now)?;
        audit::record(
            conn,
            Event::new(Kind::ConsentWithdrawn)
                .actor(user_id)
                .user(user_id)
                .client(client_id)
                .ip(ip)
                .details(serde_json::json!({ "sessions_ended": ended.len() })),
            now,
        )?;
        Ok(ended.len())
    })
}
