//! Sessions and the life of issued tokens: checking that a bearer token is still good,
//! listing and ending sessions, revocation (RFC 7009) and introspection (RFC 7662).

use serde_json::json;

use crate::audit::{self, Event, Kind};
use crate::clients::Client;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::paging::Page;
use crate::store::sessions::{self as session_store, Session};
use crate::store::{self, revoked_tokens, users, DbConnection};
use crate::tokens::claims::{AccessClaims, RefreshClaims};
use crate::tokens::keyring::{KeyRing, TokenKind, VerifyError};

/// Verifies an access token's signature and claims (any audience: tessera's own endpoints
/// accept tokens minted for any resource), reloading keys once if its `kid` is unknown.
pub fn verify_access(
    conn: Option<&mut DbConnection>,
    keys: &KeyRing,
    token: &str,
) -> Result<AccessClaims, VerifyError> {
    crate::tokens::verify_reloading(conn, keys, |keys| {
        keys.verify::<AccessClaims>(token, TokenKind::Access, None)
    })
}

/// The `invalid_token` error for a verification failure.
pub fn token_error(error: VerifyError) -> Error {
    match error {
        VerifyError::Expired => Error::invalid_token("token expired"),
        VerifyError::UnknownKid => Error::invalid_token("token signed by an unknown key"),
        VerifyError::Invalid(message) => Error::invalid_token(message),
    }
}

/// Checks what the signature cannot: the token is not deny-listed and its session is live
/// (one statement for both).
pub fn check_live(conn: &mut DbConnection, claims: &AccessClaims, now: i64) -> Result<()> {
    let (denied, session_live) =
        session_store::access_token_state(conn, &claims.jti, claims.sid.as_deref(), now)?;
    if denied {
        return Err(Error::invalid_token("token revoked"));
    }
    if !session_live {
        return Err(Error::invalid_token("session revoked"));
    }
    Ok(())
}

/// A page of a user's live sessions, newest first; the cursor is `created_at:id` of the
/// last one.
pub fn list_for_user(
    conn: &mut DbConnection,
    user_id: &str,
    cursor: Option<&str>,
    limit: i64,
    now: i64,
) -> Result<Page<Session>> {
    let cursor = cursor
        .map(|c| {
            c.split_once(':')
                .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id.to_string())))
                .ok_or_else(|| Error::InvalidRequest("bad cursor".into()))
        })
        .transpose()?;
    let rows = session_store::list_live_for_user(conn, user_id, now, cursor, limit + 1)?;
    Ok(Page::cut(rows, limit, |s| {
        format!("{}:{}", s.created_at, s.id)
    }))
}

/// Revokes one session of `user_id` (or of anyone when `user_id` is `None`, for admins).
pub fn revoke_session(
    conn: &mut DbConnection,
    metrics: &Metrics,
    sid: &str,
    user_id: Option<&str>,
    actor: &str,
    ip: Option<String>,
    now: i64,
) -> Result<()> {
    store::transaction(conn, |conn| -> Result<()> {
        let session = session_store::find(conn, sid)?
            .filter(|s| user_id.is_none_or(|u| u == s.user_id))
            .ok_or_else(|| Error::NotFound("no such session".into()))?;
        let ended = session_store::revoke(conn, sid, now, "revoked")?;
        crate::session_end::sessions_ended(conn, metrics, &ended, now)?;
        if !ended.is_empty() {
            audit::record(
                conn,
                Event::new(Kind::SessionRevoked)
                    .actor(actor)
                    .user(&session.user_id)
                    .client(&session.client_id)
                    .ip(ip)
                    .details(json!({ "sid": sid })),
                now,
            )?;
        }
        Ok(())
    })
}

/// Revokes every session of a user, except `keep`; returns how many.
pub fn revoke_all_sessions(
    conn: &mut DbConnection,
    metrics: &Metrics,
    user_id: &str,
    keep: Option<&str>,
    actor: &str,
    ip: Option<String>,
    now: i64,
) -> Result<usize> {
    store::transaction(conn, |conn| -> Result<usize> {
        let ended = session_store::revoke_all_for_user(conn, user_id, keep, now, "revoked")?;
        crate::session_end::sessions_ended(conn, metrics, &ended, now)?;
        let count = ended.len();
        audit::record(
            conn,
            Event::new(Kind::SessionRevoked)
                .actor(actor)
                .user(user_id)
                .ip(ip)
                .details(json!({ "all": true, "count": count })),
            now,
        )?;
        Ok(count)
    })
}

/// RFC 7009: a refresh token revokes its session, an access token is deny-listed until it
/// expires. Unknown, malformed and already revoked tokens are not an error. Returns true
/// when this call revoked something.
pub fn revoke_token(
    conn: &mut DbConnection,
    metrics: &Metrics,
    keys: &KeyRing,
    client: &Client,
    token: &str,
    hint: Option<&str>,
    ip: Option<String>,
    now: i64,
) -> Result<bool> {
    let order = if hint == Some("access_token") {
        [TokenKind::Access, TokenKind::Refresh]
    } else {
        [TokenKind::Refresh, TokenKind::Access]
    };
    for kind in order {
        match kind {
            TokenKind::Refresh => {
                if let Ok(claims) = crate::grants::refresh_token::verify(conn, keys, token) {
                    return revoke_refresh(conn, metrics, client, &claims, ip, now);
                }
            }
            TokenKind::Access => {
                if let Ok(claims) = verify_access(Some(conn), keys, token) {
                    return revoke_access(conn, metrics, client, &claims, ip, now);
                }
            }
            // RFC 7009 revokes access and refresh tokens only.
            TokenKind::Id | TokenKind::Logout => {}
        }
    }
    Ok(false)
}

fn revoke_access(
    conn: &mut DbConnection,
    metrics: &Metrics,
    client: &Client,
    claims: &AccessClaims,
    ip: Option<String>,
    now: i64,
) -> Result<bool> {
    if claims.client_id != client.client_id {
        return Err(Error::UnauthorizedClient(
            "the token was not issued to this client".into(),
        ));
    }
    store::transaction(conn, |conn| -> Result<bool> {
        if revoked_tokens::is_revoked(conn, &claims.jti)? {
            return Ok(false);
        }
        let keep_until = claims.exp + crate::tokens::keyring::LEEWAY_SECS as i64;
        revoked_tokens::insert(conn, &claims.jti, keep_until)?;
        crate::revocation_feed::record_token(conn, &claims.jti, keep_until, now)?;
        metrics.revocations.inc();
        audit::record(
            conn,
            Event::new(Kind::TokenRevoked)
                .actor(format!("client:{}", client.client_id))
                .user(&claims.sub)
                .client(&client.client_id)
                .ip(ip)
                .details(json!({ "jti": claims.jti })),
            now,
        )?;
        Ok(true)
    })
}

fn revoke_refresh(
    conn: &mut DbConnection,
    metrics: &Metrics,
    client: &Client,
    claims: &RefreshClaims,
    ip: Option<String>,
    now: i64,
) -> Result<bool> {
    if claims.client_id != client.client_id {
        return Err(Error::UnauthorizedClient(
            "the token was not issued to this client".into(),
        ));
    }
    store::transaction(conn, |conn| -> Result<bool> {
        let ended = session_store::revoke(conn, &claims.sid, now, "revoked by client")?;
        crate::session_end::sessions_ended(conn, metrics, &ended, now)?;
        if ended.is_empty() {
            return Ok(false);
        }
        audit::record(
            conn,
            Event::new(Kind::SessionRevoked)
                .actor(format!("client:{}", client.client_id))
                .user(&claims.sub)
                .client(&client.client_id)
                .ip(ip)
                .details(json!({ "sid": claims.sid })),
            now,
        )?;
        Ok(true)
    })
}

/// What introspection found (RFC 7662); `http::token::Introspection` is its answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Introspected {
    /// Expired, revoked, foreign or malformed: `{"active": false}` and nothing else.
    Inactive,
    /// A live access token.
    Access(AccessClaims),
    /// A refresh token of a live session, with what the token does not carry.
    Refresh {
        claims: RefreshClaims,
        username: String,
        /// The session's scope (a refresh may narrow it).
        scope: String,
    },
}

/// RFC 7662: what a token tessera issued is now. A refresh token is active while its
/// session is live and used within `idle_timeout`.
pub fn introspect(
    conn: &mut DbConnection,
    keys: &KeyRing,
    idle_timeout: Option<i64>,
    token: &str,
    now: i64,
) -> Result<Introspected> {
    if let Ok(claims) = verify_access(Some(conn), keys, token) {
        return match check_live(conn, &claims, now) {
            Ok(()) => Ok(Introspected::Access(claims)),
            Err(Error::InvalidToken { .. }) => Ok(Introspected::Inactive),
            Err(e) => Err(e),
        };
    }
    if let Ok(claims) = crate::grants::refresh_token::verify(conn, keys, token) {
        if let Some((user, session)) =
            crate::grants::refresh_token::usable(conn, idle_timeout, &claims, now)?
        {
            return Ok(Introspected::Refresh {
                claims,
                username: user.username,
                scope: session.scope,
            });
        }
    }
    Ok(Introspected::Inactive)
}

/// Loads the user a bearer token speaks for; a deleted or disabled user's token is invalid.
pub fn token_user(conn: &mut DbConnection, claims: &AccessClaims) -> Result<users::User> {
    users::find(conn, &claims.sub)?
        .filter(|u| !u.disabled)
        .ok_or_else(|| Error::invalid_token("the token's user no longer exists or is disabled"))
}

/// The role that may use the admin API and the console.
pub const ADMIN_ROLE: &str = "admin";

/// The one admin authorization, for the admin API and the console alike: the live token
/// speaks for an account (a client's own `client_credentials` token speaks for none) that
/// still exists, is not disabled and holds `admin` now. The token's `roles` claim is not
/// trusted, so a role taken away takes effect at once, not when the token expires.
pub fn authorize_admin(conn: &mut DbConnection, claims: &AccessClaims) -> Result<()> {
    let refused = || Error::Forbidden("the admin role is required".into());
    if claims.sid.is_none() {
        return Err(refused());
    }
    let user = token_user(conn, claims)?;
    if crate::accounts::user_roles(&user)
        .iter()
        .any(|role| role == ADMIN_ROLE)
    {
        Ok(())
    } else {
        Err(refused())
    }
}
