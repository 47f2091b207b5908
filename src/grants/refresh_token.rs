//! `grant_type=refresh_token` (RFC 6749 §6) with rotation: every use spends the presented
//! token and issues a successor. Presenting a spent token again is reuse and revokes the
//! whole session, unless it comes within the client's reuse grace period, in which case the
//! same successor is handed back (parallel tabs, retried requests).
//!
//! The state is the session row: the hash of its current token and of the one before
//! (`store::sessions`). A refresh is one conditional update of that row; only when it
//! changes nothing does a transaction work out why (reuse, grace, a revoked session, a
//! token still in the legacy `refresh_tokens` table).

use crate::audit::{self, Event, Kind};
use crate::clients::{Client, ClientCredentials, GrantType};
use crate::error::{Error, Result};
use crate::grants::{
    refresh_token_parts, resolve_scope, sign_user_access_token, IssuedTokens, Issuer, Policy,
    RequestContext, TokenSubject,
};
use crate::metrics::Metrics;
use crate::store::refresh_tokens::{self, RefreshToken};
use crate::store::sessions::{self, Rotation, Session};
use crate::store::users::{self, User};
use crate::store::{self, DbConnection};
use crate::tokens::claims::{refresh_audience, RefreshClaims};
use crate::tokens::keyring::{KeyRing, TokenKind, VerifyError};

const INVALID: &str = "refresh token is invalid, expired or revoked";

/// Verifies a refresh token's signature and claims (`iss` the ring's issuer), reloading keys
/// once (rate-limited) if its `kid` is unknown.
///
/// `aud` is the token endpoint (SPEC §6.1). Tokens issued before that change carry the
/// issuer instead, and stay accepted here: tessera's own endpoints also demand `typ`
/// `refresh+jwt` and `type` `refresh`, which an access token for the default audience (also
/// the issuer) never has, and a refresh token works only while the database says so. No
/// such token is minted any more, so this accepts nothing once the last one has expired, at
/// most the longest refresh-token lifetime after the upgrade; the migration that drops the
/// legacy `refresh_tokens` table removes it (docs/operations.md).
pub fn verify(
    conn: &mut DbConnection,
    keys: &KeyRing,
    token: &str,
) -> Result<RefreshClaims, VerifyError> {
    let issuer = keys.issuer();
    let endpoint = refresh_audience(issuer);
    let audiences = [endpoint.as_str(), issuer];
    crate::tokens::verify_reloading(Some(conn), keys, |keys| {
        keys.verify_audiences::<RefreshClaims>(token, TokenKind::Refresh, &audiences)
    })
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
/// write, because on SQLite every writer is serialised: two RSA signatures inside the write
/// capped all refreshes at about one per 0.6 ms, whatever the cores.
struct Committed {
    user: User,
    session: Session,
    scope: String,
    successor: Successor,
}

/// The new refresh token: already signed when the grace period needs it sealed in the
/// row, or its claims, to sign now.
#[derive(Clone)]
enum Successor {
    Signed(String),
    Unsigned(RefreshClaims),
}

impl Successor {
    fn sign(self, keys: &KeyRing, client: &Client) -> Result<String> {
        match self {
            Successor::Signed(token) => Ok(token),
            Successor::Unsigned(claims) => {
                Ok(keys.sign(TokenKind::Refresh, client.signing_alg(), &claims)?)
            }
        }
    }
}

/// Exchanges a refresh token for a new access token and a new refresh token.
pub fn exchange(
    conn: &mut DbConnection,
    issuer: &Issuer<'_>,
    policy: &Policy<'_>,
    credentials: &ClientCredentials,
    token: &str,
    scope: Option<&str>,
    context: &RequestContext,
    now: i64,
) -> Result<IssuedTokens> {
    let client = policy
        .clients
        .authenticate(conn, credentials, policy.scopes)?;
    if !client.allows_grant(GrantType::RefreshToken) {
        return Err(Error::UnauthorizedClient(
            "this client may not use the refresh_token grant".into(),
        ));
    }
    let claims = verify(conn, issuer.keys, token).map_err(|e| match e {
        VerifyError::Expired => Error::InvalidGrant("refresh token expired".into()),
        _ => Error::InvalidGrant(INVALID.into()),
    })?;
    if claims.client_id != client.client_id {
        return Err(Error::InvalidGrant(
            "refresh token was issued to another client".into(),
        ));
    }
    let presented_hash = crate::crypto::sha256_hex(claims.jti.as_bytes());
    let grace = client
        .refresh_reuse_grace
        .unwrap_or(policy.refresh_reuse_grace);
    // The successor's claims follow from the presented token's: same subject, session and
    // client, and `exp` is the session's absolute end in both.
    let (successor_claims, successor_hash) = refresh_token_parts(
        issuer,
        &claims.sub,
        &claims.sid,
        &claims.client_id,
        claims.exp,
        now,
    );
    // Within a grace period the successor is kept sealed in the session row, so it must be
    // signed before the write; otherwise it is signed after it.
    let (successor, sealed) = if grace > 0 {
        let token =
            issuer
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
    let rotation = Rotation {
        session_id: &claims.sid,
        presented_hash: &presented_hash,
        successor_hash: &successor_hash,
        successor_sealed: sealed.as_deref(),
        now,
        idle_since: policy
            .session_idle_timeout
            .map_or(i64::MIN, |idle| now - idle),
    };
    let requested = scope.map(str::trim).filter(|s| !s.is_empty());

    // The common case, one statement. A narrower scope is checked first by the slow path,
    // since a refused scope must leave the token unspent.
    if requested.is_none() {
        if let Some(rotated) = sessions::rotate_refresh(conn, &rotation)? {
            let subject = TokenSubject {
                id: &rotated.session.user_id,
                username: &rotated.subject_username,
                roles: &rotated.subject_roles,
                attributes: &rotated.subject_attributes,
            };
            let refresh_token = successor.sign(issuer.keys, &client)?;
            let (access_token, expires_in) = sign_user_access_token(
                issuer,
                subject,
                &client,
                &rotated.session,
                &rotated.session.scope,
                false,
                now,
            )?;
            let id_token = crate::oidc::id_token::on_refresh(
                conn,
                issuer.keys,
                issuer.issuer,
                expires_in,
                (&client.client_id, client.signing_alg()),
                &rotated.session,
                &rotated.session.scope,
                None,
                now,
            )?;
            super::count_issued(policy.metrics, GrantType::RefreshToken, now);
            return Ok(IssuedTokens {
                access_token: access_token.into(),
                expires_in,
                refresh_token: Some(refresh_token.into()),
                id_token: id_token.map(Into::into),
                scope: rotated.session.scope,
                refresh_cookie: client.refresh_cookie,
            });
        }
    }

    // A concurrent refresh of the same token may win the conditional update; the retry then
    // sees the token replaced and takes the grace or reuse path.
    for _ in 0..2 {
        let outcome = store::transaction(conn, |conn| {
            attempt(
                conn,
                policy,
                &client,
                &claims,
                &rotation,
                requested,
                grace,
                successor.clone(),
                context,
            )
        })?;
        match outcome {
            Outcome::Issued(done) => {
                let refresh_token = done.successor.sign(issuer.keys, &client)?;
                let (access_token, expires_in) = sign_user_access_token(
                    issuer,
                    (&done.user).into(),
                    &client,
                    &done.session,
                    &done.scope,
                    false,
                    now,
                )?;
                let id_token = crate::oidc::id_token::on_refresh(
                    conn,
                    issuer.keys,
                    issuer.issuer,
                    expires_in,
                    (&client.client_id, client.signing_alg()),
                    &done.session,
                    &done.scope,
                    Some(&done.user),
                    now,
                )?;
                super::count_issued(policy.metrics, GrantType::RefreshToken, now);
                return Ok(IssuedTokens {
                    access_token: access_token.into(),
                    expires_in,
                    refresh_token: Some(refresh_token.into()),
                    id_token: id_token.map(Into::into),
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

/// The slow path, in one transaction: why the one-statement refresh changed nothing, or the
/// refresh itself when it was skipped (a requested scope) or the session is a legacy one.
#[allow(clippy::too_many_arguments)]
fn attempt(
    conn: &mut DbConnection,
    policy: &Policy<'_>,
    client: &Client,
    claims: &RefreshClaims,
    rotation: &Rotation<'_>,
    requested: Option<&str>,
    grace: i64,
    successor: Successor,
    context: &RequestContext,
) -> Result<Outcome> {
    let now = rotation.now;
    let session = live_session(conn, policy.session_idle_timeout, &claims.sid, now)?;
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
    let scope = resolve_scope(requested, &allowed)?.join(" ");
    let issued = |session: Session, user: User, successor: Successor| {
        Ok(Outcome::Issued(Box::new(Committed {
            user,
            session,
            scope: scope.clone(),
            successor,
        })))
    };

    match session.refresh_hash.as_deref() {
        Some(current) if current == rotation.presented_hash => {
            match sessions::rotate_refresh(conn, rotation)? {
                Some(rotated) => issued(rotated.session, user, successor),
                None => Ok(Outcome::Raced),
            }
        }
        Some(_) => {
            let within_grace = grace > 0
                && session.refresh_previous_hash.as_deref() == Some(rotation.presented_hash)
                && session
                    .refresh_rotated_at
                    .is_some_and(|at| now - at <= grace);
            if let (true, Some(sealed)) = (within_grace, &session.refresh_successor_sealed) {
                let token = open_successor(&claims.jti, sealed)?;
                return issued(session, user, Successor::Signed(token));
            }
            reuse(conn, policy.metrics, client, &session, &user, context, now)
        }
        None => {
            let Some(row) = refresh_tokens::find(conn, rotation.presented_hash)?
                .filter(|row| row.session_id == session.id)
            else {
                return Err(Error::InvalidGrant(INVALID.into()));
            };
            if let Some(spent_at) = row.spent_at {
                if grace > 0 && now - spent_at <= grace {
                    if let Some(token) = legacy_successor(conn, &row, &claims.jti, now)? {
                        return issued(session, user, Successor::Signed(token));
                    }
                }
                return reuse(conn, policy.metrics, client, &session, &user, context, now);
            }
            // The session's first refresh since the upgrade: its state moves onto its row,
            // and its rows in the legacy table go.
            if sessions::adopt_refresh(conn, rotation)? == 0 {
                return Ok(Outcome::Raced);
            }
            refresh_tokens::delete_for_session(conn, &session.id)?;
            issued(session, user, successor)
        }
    }
}

/// A spent token presented again: the session is revoked and the event audited.
fn reuse(
    conn: &mut DbConnection,
    metrics: &Metrics,
    client: &Client,
    session: &Session,
    user: &User,
    context: &RequestContext,
    now: i64,
) -> Result<Outcome> {
    let ended = sessions::revoke(conn, &session.id, now, "refresh token reuse")?;
    crate::session_end::sessions_ended(conn, metrics, &ended, now)?;
    metrics.refresh_reuse.inc();
    audit::record(
        conn,
        Event::new(Kind::RefreshReuse)
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
    Ok(Outcome::Reused)
}

/// The session if it is neither revoked, past its absolute end, nor idle longer than
/// `idle_timeout`.
fn live_session(
    conn: &mut DbConnection,
    idle_timeout: Option<i64>,
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
    if let Some(idle) = idle_timeout {
        if session.last_used_at + idle <= now {
            return Err(Error::InvalidGrant("session expired".into()));
        }
    }
    Ok(session)
}

fn open_successor(jti: &str, sealed: &str) -> Result<String> {
    let token = crate::crypto::open_with(&successor_key(jti), "refresh successor", sealed)
        .map_err(|e| Error::Internal(e.context("opening the successor token")))?;
    String::from_utf8(token).map_err(|e| Error::internal("successor token", e))
}

/// Within the grace period, for a session still in the legacy table (its tokens rotated by
/// an older instance): the successor of a just-spent token, if it is itself still unspent.
fn legacy_successor(
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
    open_successor(jti, sealed).map(Some)
}

/// For introspection: the user and session behind a refresh token that can still be used
/// (its session live, not idle longer than `idle_timeout`, and it the session's current
/// token).
pub fn usable(
    conn: &mut DbConnection,
    idle_timeout: Option<i64>,
    claims: &RefreshClaims,
    now: i64,
) -> Result<Option<(User, Session)>> {
    let Ok(session) = live_session(conn, idle_timeout, &claims.sid, now) else {
        return Ok(None);
    };
    let hash = crate::crypto::sha256_hex(claims.jti.as_bytes());
    let current = match session.refresh_hash.as_deref() {
        Some(current) => current == hash,
        None => refresh_tokens::find(conn, &hash)?.is_some_and(|row| {
            row.session_id == session.id && row.spent_at.is_none() && row.expires_at > now
        }),
    };
    if !current {
        return Ok(None);
    }
    Ok(users::find(conn, &session.user_id)?
        .filter(|u| !u.disabled)
        .map(|user| (user, session)))
}
