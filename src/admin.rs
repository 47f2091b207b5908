//! Administration: what the admin API and the operator CLI do to users, sessions, clients,
//! signing keys and the audit log. Every change is audited with who made it (an admin's user
//! id, or `cli`) in the same transaction as the change; reads are not audited. Knows nothing
//! of HTTP or of the command line.

use serde_json::json;

use crate::accounts;
use crate::audit::{self, Event, Kind};
use crate::clients::{self, Client, ClientPatch, ClientWithSecret, NewClient, FIRST_PARTY};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::paging::Page;
use crate::sessions;
use crate::store::audit::{self as audit_store, AuditEvent, AuditFilter};
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::store::{self, users, DbConnection};
use crate::tokens::algs::SigningAlg;
use crate::tokens::keyring::{classify, KeyInfo};
use crate::tokens::rotation::{self, KeyPolicy, Operator, Retired};

/// The actor of changes made with the operator CLI.
pub const CLI_ACTOR: &str = "cli";

fn no_user() -> Error {
    Error::NotFound("no such user".into())
}

// ---- users ----

/// Users ordered by username (case-insensitively), matching `query` in the username or
/// email when given.
pub fn list_users(
    conn: &mut DbConnection,
    query: Option<&str>,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Page<User>> {
    let rows = users::list(conn, query, cursor, limit + 1)?;
    Ok(Page::cut(rows, limit, |u| u.username_lower.clone()))
}

/// One user by id.
pub fn get_user(conn: &mut DbConnection, user_id: &str) -> Result<User> {
    users::find(conn, user_id)?.ok_or_else(no_user)
}

/// One user by username (the CLI names users that way).
pub fn find_by_username(conn: &mut DbConnection, username: &str) -> Result<users::User> {
    users::find_by_username(conn, username)?
        .ok_or_else(|| Error::NotFound(format!("no user `{username}`")))
}

/// Creates a user whose password the caller already checked against the policy and hashed.
pub fn create_user(
    conn: &mut DbConnection,
    username: &str,
    password_hash: &str,
    email: Option<&str>,
    roles: &[String],
    operator: &Operator,
    now: i64,
) -> Result<User> {
    accounts::check_roles(roles)?;
    store::transaction(conn, |conn| -> Result<User> {
        let user = accounts::create_user(conn, username, password_hash, email, roles, now)?;
        audit::record(
            conn,
            Event::new(Kind::UserCreated)
                .actor(&operator.actor)
                .user(&user.id)
                .ip(operator.ip.clone())
                .details(json!({ "username": user.username, "roles": roles })),
            now,
        )?;
        Ok(user)
    })
}

/// A page of a user's live sessions, newest first.
pub fn user_sessions(
    conn: &mut DbConnection,
    user_id: &str,
    cursor: Option<&str>,
    limit: i64,
    now: i64,
) -> Result<Page<Session>> {
    users::find(conn, user_id)?.ok_or_else(no_user)?;
    sessions::list_for_user(conn, user_id, cursor, limit, now)
}

/// Ends every session of a user; returns how many were live.
pub fn revoke_user_sessions(
    conn: &mut DbConnection,
    metrics: &Metrics,
    user_id: &str,
    operator: &Operator,
    now: i64,
) -> Result<usize> {
    users::find(conn, user_id)?.ok_or_else(no_user)?;
    sessions::revoke_all_sessions(
        conn,
        metrics,
        user_id,
        None,
        &operator.actor,
        operator.ip.clone(),
        now,
    )
}

/// Ends one session, whoever's it is.
pub fn revoke_session(
    conn: &mut DbConnection,
    metrics: &Metrics,
    sid: &str,
    operator: &Operator,
    now: i64,
) -> Result<()> {
    sessions::revoke_session(
        conn,
        metrics,
        sid,
        None,
        &operator.actor,
        operator.ip.clone(),
        now,
    )
}

// ---- clients ----

/// Stored clients ordered by id (the built-in `first-party` client is not stored).
pub fn list_clients(
    conn: &mut DbConnection,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Page<Client>> {
    let rows = clients::list(conn, cursor, limit + 1)?;
    Ok(Page::cut(rows, limit, |c| c.client_id.clone()))
}

/// [`list_clients`] with the built-in `console` client in its place by id (SPEC §6.5: it is
/// listed, unlike `first-party`).
pub fn list_clients_with_console(
    conn: &mut DbConnection,
    issuer: &str,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Page<Client>> {
    let mut rows = clients::list(conn, cursor, limit + 1)?;
    if cursor.is_none_or(|c| clients::CONSOLE > c) {
        rows.push(Client::console(Some(issuer)));
        rows.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    }
    Ok(Page::cut(rows, limit, |c| c.client_id.clone()))
}

/// One client by id, the built-in one included.
pub fn get_client(
    conn: &mut DbConnection,
    client_id: &str,
    first_party_scopes: &[String],
) -> Result<Client> {
    clients::find(conn, client_id, first_party_scopes)?
        .ok_or_else(|| Error::NotFound(format!("no client `{client_id}`")))
}

/// Creates a client; a confidential one's secret is in the answer, and only there.
pub fn create_client(
    conn: &mut DbConnection,
    new: NewClient,
    operator: &Operator,
    now: i64,
) -> Result<ClientWithSecret> {
    store::transaction(conn, |conn| -> Result<ClientWithSecret> {
        let created = clients::create(conn, new, now)?;
        let client = &created.client;
        audit::record(
            conn,
            Event::new(Kind::ClientCreated)
                .actor(&operator.actor)
                .client(&client.client_id)
                .ip(operator.ip.clone())
                .details(json!({
                    "public": client.public,
                    "grant_types": clients::GrantType::names(&client.grant_types),
                    "scopes": client.scopes,
                    "audience": client.audience,
                    "refresh_cookie": client.refresh_cookie,
                    "token_alg": client.token_alg,
                    "redirect_uris": client.redirect_uris,
                    "first_party": client.first_party,
                })),
            now,
        )?;
        Ok(created)
    })
}

/// Changes a stored client (any field but its id and whether it is public).
pub fn update_client(
    conn: &mut DbConnection,
    client_id: &str,
    patch: ClientPatch,
    operator: &Operator,
    now: i64,
) -> Result<Client> {
    store::transaction(conn, |conn| -> Result<Client> {
        let client = clients::update(conn, client_id, patch, now)?;
        audit::record(
            conn,
            Event::new(Kind::ClientUpdated)
                .actor(&operator.actor)
                .client(&client.client_id)
                .ip(operator.ip.clone())
                .details(json!({
                    "grant_types": clients::GrantType::names(&client.grant_types),
                    "scopes": client.scopes,
                    "redirect_uris": client.redirect_uris,
                    "first_party": client.first_party,
                })),
            now,
        )?;
        Ok(client)
    })
}

/// Deletes a client and ends the sessions it holds, so its refresh tokens die with it.
pub fn delete_client(
    conn: &mut DbConnection,
    metrics: &Metrics,
    client_id: &str,
    operator: &Operator,
    now: i64,
) -> Result<()> {
    if client_id == FIRST_PARTY {
        return Err(Error::InvalidRequest(
            "first-party is the built-in client and cannot be deleted".into(),
        ));
    }
    if client_id == clients::CONSOLE {
        return Err(Error::InvalidRequest(
            "console is the built-in client of the admin console and cannot be deleted".into(),
        ));
    }
    store::transaction(conn, |conn| -> Result<()> {
        // Its sessions end while the client still exists, so their back-channel logouts go
        // to the URI it has now: the receiver may still hold those sessions.
        let ended = store::sessions::revoke_all_for_client(conn, client_id, now, "client deleted")?;
        crate::session_end::sessions_ended(conn, metrics, &ended, now)?;
        if !clients::delete(conn, client_id)? {
            return Err(Error::NotFound(format!("no client `{client_id}`")));
        }
        let revoked = ended.len();
        audit::record(
            conn,
            Event::new(Kind::ClientDeleted)
                .actor(&operator.actor)
                .client(client_id)
                .ip(operator.ip.clone())
                .details(json!({ "sessions_revoked": revoked })),
            now,
        )?;
        Ok(())
    })
}

/// Gives a confidential client a new secret (returned once); the old one stops working.
pub fn rotate_client_secret(
    conn: &mut DbConnection,
    client_id: &str,
    operator: &Operator,
    now: i64,
) -> Result<ClientWithSecret> {
    store::transaction(conn, |conn| -> Result<ClientWithSecret> {
        let rotated = clients::rotate_secret(conn, client_id, now)?;
        audit::record(
            conn,
            Event::new(Kind::ClientSecretRotated)
                .actor(&operator.actor)
                .client(client_id)
                .ip(operator.ip.clone()),
            now,
        )?;
        Ok(rotated)
    })
}

// ---- signing keys ----

/// Every stored key with its status at `now_ms`, oldest first.
pub fn list_keys(conn: &mut DbConnection, policy: &KeyPolicy, now_ms: i64) -> Result<Vec<KeyInfo>> {
    let rows = store::signing_keys::list(conn)?;
    let mut infos = classify(&rows, now_ms, policy.max_token_lifetime_ms);
    infos.sort_by_key(|i| (i.activates_at, i.created_at));
    Ok(infos)
}

/// The algorithm an operator named for a rotation (`?alg=`, `--alg`): one of the
/// configured ones (`configured`), or `None` for all of them.
pub fn configured_alg(configured: &[SigningAlg], name: Option<&str>) -> Result<Option<SigningAlg>> {
    let Some(name) = name else {
        return Ok(None);
    };
    match name.parse::<SigningAlg>() {
        Ok(alg) if configured.contains(&alg) => Ok(Some(alg)),
        _ => Err(Error::InvalidRequest(format!(
            "alg must be one of the configured signing algorithms ({})",
            configured
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Makes the staged key (or a new one) of `alg`, or of every configured algorithm, active
/// now, stages a fresh one, and switches this instance's key ring at once (others follow
/// within their poll interval). Slow: it may generate RSA keys, so it runs on a blocking
/// thread. Returns the new active kid of each rotated algorithm.
pub fn rotate_keys(
    conn: &mut DbConnection,
    keys: rotation::Keys<'_>,
    operator: &Operator,
    alg: Option<SigningAlg>,
) -> Result<Vec<(SigningAlg, String)>> {
    let rotated = rotation::rotate_now(
        conn,
        keys.policy,
        keys.master_key,
        crate::tokens::now_ms(),
        operator,
        alg,
    )?;
    rotation::sync(conn, keys)?;
    Ok(rotated)
}

/// `{"active_kid": …, "active_kids": {alg: kid}}` of a rotation: `active_kid` is the RS256
/// one when RS256 rotated, else the one rotated algorithm's.
pub fn rotation_summary(rotated: &[(SigningAlg, String)]) -> serde_json::Value {
    let main = rotated
        .iter()
        .find(|(alg, _)| *alg == SigningAlg::Rs256)
        .or(rotated.first())
        .map(|(_, kid)| kid.clone());
    let by_alg: serde_json::Map<String, serde_json::Value> = rotated
        .iter()
        .map(|(alg, kid)| {
            (
                alg.as_str().to_string(),
                serde_json::Value::from(kid.clone()),
            )
        })
        .collect();
    json!({ "active_kid": main, "active_kids": by_alg })
}

/// Retires a key now: it leaves the JWKS and verifies nothing more. Retiring the active key
/// rotates first. Unknown (or already retired) kids are `not_found`.
pub fn retire_key(
    conn: &mut DbConnection,
    keys: rotation::Keys<'_>,
    kid: &str,
    operator: &Operator,
) -> Result<()> {
    match rotation::retire(
        conn,
        keys.policy,
        keys.master_key,
        kid,
        crate::tokens::now_ms(),
        operator,
    )? {
        Retired::Done => {
            rotation::sync(conn, keys)?;
            Ok(())
        }
        Retired::NotFound => Err(Error::NotFound(format!("no live signing key `{kid}`"))),
    }
}

// ---- audit ----

/// Filters of the audit listing; instants are unix seconds.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub user_id: Option<String>,
    pub event_type: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// Audit events matching `query`, newest first; the cursor is the last event's id.
pub fn list_audit(
    conn: &mut DbConnection,
    query: AuditQuery,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Page<AuditEvent>> {
    let before_id = cursor
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| Error::InvalidRequest("bad cursor".into()))
        })
        .transpose()?;
    let filter = AuditFilter {
        user_id: query.user_id,
        event_type: query.event_type,
        since: query.since,
        until: query.until,
        before_id,
    };
    let rows = audit_store::list(conn, &filter, limit + 1)?;
    Ok(Page::cut(rows, limit, |e| e.id.to_string()))
}

/// An instant given as unix seconds or RFC 3339.
pub fn parse_instant(text: &str) -> Result<i64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(secs);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|_| {
            Error::InvalidRequest(format!(
                "`{}` is neither unix seconds nor an RFC 3339 time",
                text.chars().take(40).collect::<String>()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_unix_seconds_or_rfc3339() {
        assert_eq!(parse_instant("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(
            parse_instant("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000
        );
        assert_eq!(
            parse_instant("2023-11-14T23:13:20+01:00").unwrap(),
            1_700_000_000
        );
        assert!(parse_instant("yesterday").is_err());
    }
}
