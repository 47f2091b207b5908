//! `grant_type=refresh_token` (RFC 6749 §6) with rotation: every use spends the presented
//! token and issues a successor. Presenting a spent token again is reuse and revokes the
//! whole session, unless it comes within the client's reuse grace period, in which case the
//! same successor is handed back (parallel tabs, retried requests).

use crate::app::AppState;
use crate::audit::{self, kind, Event};
use crate::clients::{self, grant, Client, ClientCredentials};
use crate::error::{Error, Result};
use crate::grants::{
    refresh_token_parts, resolve_scope, sign_user_access_token, IssuedTokens, RequestContext,
};
use crate::store::refresh_tokens::{self, RefreshToken};
use crate::store::sessions::{self, Session};
use crate::store::users::{self, User};
use crate::store::{self, DbConnection};
use crate::tokens::claims::RefreshClaims;
use crate::tokens::keyring::{TokenKind, VerifyError};

const INVALID: &str = "refresh token is invalid, expired or revoked";

/// Verifies a refresh token's signature and claims, reloading keys once (rate-limited) if
/// its `kid` is unknown.
pub fn verify(
    conn: &mut DbConnection,
    state: &AppState,
    token: &str,
) -> Result<RefreshClaims, VerifyError> {
    let issuer = state.settings.issuer.as_str();
    match state
        .keys
        .verify::<RefreshClaims>(token, TokenKind::Refresh, Some(issuer))
    {
        Err(VerifyError::UnknownKid)
            if state.keys.may_reload(std::time::Duration::from_secs(1)) =>
        {
            if let Ok(rows) = store::signing_keys::list(conn) {
                let _ = state.keys.refresh(rows, crate::tokens::now_ms());
            }
            state.keys.verify(token, TokenKind::Refresh, Some(issuer))
        }
        other => other,
    }
}

/// The key that seals a successor token: derived from the presented token's `jti`, which the
/// database holds only as a hash, so only its holder can read the successor back.
fn successor_key(jti: &str) -> [u8; 32] {
    crate::crypto::sha256(format!("tessera refresh successor\0{jti}").as_bytes())
}

enum Outcome {
    Issued(Box<Committed>),
    Reused,
    Raced,
}

/// A refresh that has been written: what remains is signing. Signatures are made after the
/// transaction, because on SQLite `BEGIN IMMEDIATE` serialises every writer: two RSA
/// signatures inside it capped all refreshes at about one per 0.6 ms, whatever the cores.
struct Committed {
    user: User,
    session: Session,
    scope: String,
    successor: Successor,
}

/// The new refresh token: already signed when the grace period needed it sealed in the
/// row, or its claims, to sign now.
enum Successor {
    Signed(String),
    Unsigned(RefreshClaims),
}

/// Exchanges a refresh token for a new access token and a new refresh token.
pub fn exchange(
    conn: &mut DbConnection,
    state: &AppState,
    credentials: &ClientCredentials,
    token: &str,
    scope: Option<&str>,
    context: &RequestContext,
    now: i64,
) -> Result<IssuedTokens> {
    let client = clients::authenticate(conn, credentials, &state.settings.scopes)?;
    if !client.allows_grant(grant::REFRESH_TOKEN) {
        return Err(Error::UnauthorizedClient(
            "this client may not use the refresh_token grant".into(),
        ));
    }
    let claims = verify(conn, state, token).map_err(|e| match e {
        VerifyError::Expired => Error::InvalidGrant("refresh token expired".into()),
        _ => Error::InvalidGrant(INVALID.into()),
    })?;
    if claims.client_id != client.client_id {
        return Err(Error::InvalidGrant(
            "refresh token was issued to another client".into(),
        ));
    }
    let jti_hash = crate::crypto::sha256_hex(claims.jti.as_bytes());
    // A concurrent refresh of the same token may win the conditional update; the retry then
    // sees the token spent and takes the grace or reuse path.
    for _ in 0..2 {
        let outcome = store::transaction(conn, |conn| {
            attempt(
                conn, state, &client, &claims, &jti_hash, scope, context, now,
            )
        })?;
        match outcome {
            Outcome::Issued(done) => {
                let refresh_token = match done.successor {
                    Successor::Signed(token) => token,
                    Successor::Unsigned(claims) => {
                        state
                            .keys
                            .sign(TokenKind::Refresh, client.signing_alg(), &claims)?
                    }
                };
                let (access_token, expires_in) = sign_user_access_token(
                    state,
                    &done.user,
                    &client,
                    &done.session,
                    &done.scope,
                    false,
                    now,
                )?;
                return Ok(IssuedTokens {
                    access_token,
                    expires_in,
                    refresh_token: Some(refresh_token),
                    scope: done.scope,
                    refresh_cookie: client.refresh_cookie,
                });
            }
            Outcome::Reused => return Err(Error::InvalidGrant(INVALID.into())),
            Outcome::Raced => continue,
        }
    }
    Err(Error::InvalidGrant(INVALID.into()))
}

#[allow(clippy::too_many_arguments)]
fn attempt(
    conn: &mut DbConnection,
    state: &AppState,
    client: &Client,
    claims: &RefreshClaims,
    jti_hash: &str,
    scope: Option<&str>,
    context: &RequestContext,
    now: i64,
) -> Result<Outcome> {
    let Some(row) = refresh_tokens::find(conn, jti_hash)? else {
        return Err(Error::InvalidGrant(INVALID.into()));
    };
    let session = live_session(conn, state, &row.session_id, now)?;
    let user =
        users::find(conn, &session.user_id)?.ok_or_else(|| Error::InvalidGrant(INVALID.into()))?;
    if user.disabled {
        return Err(Error::InvalidGrant("account disabled".into()));
    }
    let allowed: Vec<String> = session
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let scope = resolve_scope(scope, &allowed)?.join(" ");
    let grace = client
        .refresh_reuse_grace
        .unwrap_or(state.settings.refresh_reuse_grace);

    if let Some(spent_at) = row.spent_at {
        if grace > 0 && now - spent_at <= grace {
            if let Some(successor) = replay_successor(conn, &row, &claims.jti, now)? {
                return Ok(Outcome::Issued(Box::new(Committed {
                    user,
                    session,
                    scope,
                    successor: Successor::Signed(successor),
                })));
            }
        }
        sessions::revoke(conn, &session.id, now, "refresh token reuse")?;
        state.metrics.refresh_reuse.inc();
        state.metrics.revocations.inc();
        audit::record(
            conn,
            Event::new(kind::REFRESH_REUSE)
                .user(&user.id)
                .client(&client.client_id)
                .ip(context.ip.clone())
                .details(serde_json::json!({ "sid": session.id })),
            now,
        )?;
        log::warn!(
            "refresh token reuse detected in session {}; session revoked",
            session.id
        );
        return Ok(Outcome::Reused);
    }

    let (successor_claims, successor_row) = refresh_token_parts(state, &session, now);
    // Within a grace period the successor is kept sealed in the spent row, so it must be
    // signed now; otherwise it is signed after the commit.
    let (successor, sealed) = if grace > 0 {
        let token = state
            .keys
            .sign(TokenKind::Refresh, client.signing_alg(), &successor_claims)?;
        let sealed = crate::crypto::seal_with(
            &successor_key(&claims.jti),
            "refresh successor",
            token.as_bytes(),
        );
        (Successor::Signed(token), Some(sealed))
    } else {
        (Successor::Unsigned(successor_claims), None)
    };
    if refresh_tokens::spend(
        conn,
        jti_hash,
        now,
        &successor_row.jti_hash,
        sealed.as_deref(),
    )? == 0
    {
        return Ok(Outcome::Raced);
    }
    refresh_tokens::insert(conn, &successor_row)?;
    sessions::touch(conn, &session.id, now)?;
    Ok(Outcome::Issued(Box::new(Committed {
        user,
        session,
        scope,
        successor,
    })))
}

/// The session if it is neither revoked, past its absolute end, nor idle too long.
fn live_session(
    conn: &mut DbConnection,
    state: &AppState,
    session_id: &str,
    now: i64,
) -> Result<Session> {
    let session =
        sessions::find(conn, session_id)?.ok_or_else(|| Error::InvalidGrant(INVALID.into()))?;
    if session.revoked_at.is_some() {
        return Err(Error::InvalidGrant("session revoked".into()));
    }
    if session.expires_at <= now {
        return Err(Error::InvalidGrant("session expired".into()));
    }
    if let Some(idle) = state.settings.session_idle_timeout {
        if session.last_used_at + idle <= now {
            return Err(Error::InvalidGrant("session expired".into()));
        }
    }
    Ok(session)
}

/// Within the grace period: the successor of a just-spent token, if it is itself still
/// unspent.
fn replay_successor(
    conn: &mut DbConnection,
    row: &RefreshToken,
    jti: &str,
    now: i64,
) -> Result<Option<String>> {
    let (Some(successor_hash), Some(sealed)) = (&row.successor_hash, &row.successor_sealed) else {
        return Ok(None);
    };
    let Some(successor) = refresh_tokens::find(conn, successor_hash)? else {
        return Ok(None);
    };
    if successor.spent_at.is_some() || successor.expires_at <= now {
        return Ok(None);
    }
    let token = crate::crypto::open_with(&successor_key(jti), "refresh successor", sealed)
        .map_err(|e| Error::internal("opening the successor token", e))?;
    String::from_utf8(token)
        .map(Some)
        .map_err(|e| Error::internal("successor token", e))
}

/// The user behind a refresh token, for introspection: the token is active while it can
/// still be used.
pub fn is_usable(
    conn: &mut DbConnection,
    state: &AppState,
    claims: &RefreshClaims,
    now: i64,
) -> Result<Option<User>> {
    let Some(row) = refresh_tokens::find(conn, &crate::crypto::sha256_hex(claims.jti.as_bytes()))?
    else {
        return Ok(None);
    };
    if row.spent_at.is_some() || row.expires_at <= now {
        return Ok(None);
    }
    if live_session(conn, state, &row.session_id, now).is_err() {
        return Ok(None);
    }
    Ok(users::find(conn, &claims.sub)?.filter(|u| !u.disabled))
}
