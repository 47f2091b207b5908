//! The token endpoint's grants (RFC 6749 §4): what each checks and what it issues. Grants take
//! plain values and a database connection; they never see HTTP.

pub mod authorization_code;
pub mod client_credentials;
pub mod mfa_otp;
pub mod password;
pub mod refresh_token;

use serde_json::{Map, Value};

use crate::app::AppState;
use crate::clients::Client;
use crate::error::{Error, Result};
use crate::store::refresh_tokens::{self, RefreshToken};
use crate::store::sessions::{self, Session};
use crate::store::users::User;
use crate::store::DbConnection;
use crate::tokens::claims::{AccessClaims, RefreshClaims};
use crate::tokens::keyring::TokenKind;

/// What a grant hands back to the client.
#[derive(Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: Option<String>,
    pub scope: String,
    /// Deliver the refresh token as a cookie rather than in the body.
    pub refresh_cookie: bool,
}

impl std::fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTokens")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Where a request came from, for sessions and the audit log.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The scope to grant: the request's scopes if the client allows every one of them, or all
/// the client's scopes when none are asked for. Unknown scopes are refused, never dropped.
pub fn resolve_scope(requested: Option<&str>, allowed: &[String]) -> Result<Vec<String>> {
    match requested.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(allowed.to_vec()),
        Some(text) => {
            let mut granted: Vec<String> = Vec::new();
            for scope in text.split(' ').filter(|s| !s.is_empty()) {
                if !allowed.iter().any(|a| a == scope) {
                    return Err(Error::InvalidScope(format!(
                        "scope `{scope}` is not allowed for this client"
                    )));
                }
                if !granted.iter().any(|g| g == scope) {
                    granted.push(scope.to_string());
                }
            }
            Ok(granted)
        }
    }
}

/// The user's roles, as stored (a JSON array).
pub fn user_roles(user: &User) -> Vec<String> {
    serde_json::from_str(&user.roles).unwrap_or_default()
}

/// The user's custom attributes, as stored (a JSON object).
pub fn user_attributes(user: &User) -> Map<String, Value> {
    serde_json::from_str(&user.attributes).unwrap_or_default()
}

/// The `aud` of access tokens issued to `client`.
pub fn audience_for(state: &AppState, client: &Client) -> String {
    client
        .audience
        .clone()
        .unwrap_or_else(|| state.settings.audience.clone())
}

/// Access-token lifetime for `client`.
pub fn access_ttl_for(state: &AppState, client: &Client) -> i64 {
    client
        .access_token_ttl
        .unwrap_or(state.settings.access_token_ttl)
}

/// Signs an access token for a user's session.
pub fn sign_user_access_token(
    state: &AppState,
    user: &User,
    client: &Client,
    session: &Session,
    scope: &str,
    fresh: bool,
    now: i64,
) -> Result<(String, i64)> {
    let ttl = access_ttl_for(state, client);
    let attributes = user_attributes(user);
    let claims = AccessClaims {
        iss: state.settings.issuer.clone(),
        sub: user.id.clone(),
        aud: audience_for(state, client),
        exp: now + ttl,
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: client.client_id.clone(),
        scope: scope.to_string(),
        roles: user_roles(user),
        sid: Some(session.id.clone()),
        auth_time: Some(session.auth_time),
        amr: Some(serde_json::from_str(&session.amr).unwrap_or_default()),
        username: Some(user.username.clone()),
        attributes: (!attributes.is_empty()).then_some(attributes),
        token_type: "access".into(),
        fresh,
    };
    let token = state.keys.sign(TokenKind::Access, &claims)?;
    Ok((token, ttl))
}

/// A refresh token made but not yet stored: the signed JWT and its row.
pub struct NewRefreshToken {
    pub token: String,
    pub jti: String,
    pub row: RefreshToken,
}

/// The claims and row of a new refresh token for `session` (valid until the session's
/// absolute end), keyed by the SHA-256 of its `jti`, not yet signed: a grant can store the
/// row inside its transaction and sign once it has committed.
pub fn refresh_token_parts(
    state: &AppState,
    session: &Session,
    now: i64,
) -> (RefreshClaims, RefreshToken) {
    let jti = crate::crypto::random_token::<32>();
    let row = RefreshToken {
        jti_hash: crate::crypto::sha256_hex(jti.as_bytes()),
        session_id: session.id.clone(),
        issued_at: now,
        expires_at: session.expires_at,
        spent_at: None,
        successor_hash: None,
        successor_sealed: None,
    };
    let claims = RefreshClaims {
        iss: state.settings.issuer.clone(),
        sub: session.user_id.clone(),
        aud: state.settings.issuer.clone(),
        iat: now,
        exp: session.expires_at,
        jti,
        sid: session.id.clone(),
        client_id: session.client_id.clone(),
        token_type: "refresh".into(),
    };
    (claims, row)
}

/// Signs a refresh token for `session` and builds its row (see [`refresh_token_parts`]).
pub fn sign_refresh_token(
    state: &AppState,
    session: &Session,
    now: i64,
) -> Result<NewRefreshToken> {
    let (claims, row) = refresh_token_parts(state, session, now);
    let token = state.keys.sign(TokenKind::Refresh, &claims)?;
    Ok(NewRefreshToken {
        token,
        jti: claims.jti,
        row,
    })
}

/// Starts a session for a user who has just proven who they are, and issues its first
/// tokens. Call inside the login's transaction.
pub fn start_session(
    conn: &mut DbConnection,
    state: &AppState,
    user: &User,
    client: &Client,
    scope: &[String],
    amr: &[&str],
    context: &RequestContext,
    now: i64,
) -> Result<IssuedTokens> {
    let sign_in = SignIn {
        amr: amr.iter().map(|m| m.to_string()).collect(),
        auth_time: now,
        fresh: true,
    };
    start_session_for(conn, state, user, client, scope, &sign_in, context, now)
        .map(|(issued, _)| issued)
}

/// How the user proved who they are, for a session started later than the proof (the
/// authorization code flow signs in on a page and starts the session at the code exchange).
#[derive(Debug, Clone)]
pub struct SignIn {
    pub amr: Vec<String>,
    pub auth_time: i64,
    /// A credential was entered for this very grant.
    pub fresh: bool,
}

/// [`start_session`] for a sign-in made earlier; also answers the new session's id.
#[allow(clippy::too_many_arguments)]
pub fn start_session_for(
    conn: &mut DbConnection,
    state: &AppState,
    user: &User,
    client: &Client,
    scope: &[String],
    sign_in: &SignIn,
    context: &RequestContext,
    now: i64,
) -> Result<(IssuedTokens, String)> {
    let amr = &sign_in.amr;
    let ttl = client
        .refresh_token_ttl
        .unwrap_or(state.settings.refresh_token_ttl);
    let session = Session {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        client_id: client.client_id.clone(),
        scope: scope.join(" "),
        amr: serde_json::to_string(amr).map_err(|e| Error::internal("encoding amr", e))?,
        auth_time: sign_in.auth_time,
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
    };
    sessions::insert(conn, &session)?;
    let (access_token, expires_in) = sign_user_access_token(
        state,
        user,
        client,
        &session,
        &session.scope,
        sign_in.fresh,
        now,
    )?;
    let refresh = client
        .allows_grant(crate::clients::grant::REFRESH_TOKEN)
        .then(|| sign_refresh_token(state, &session, now))
        .transpose()?;
    if let Some(refresh) = &refresh {
        refresh_tokens::insert(conn, &refresh.row)?;
    }
    Ok((
        IssuedTokens {
            access_token,
            expires_in,
            refresh_token: refresh.map(|r| r.token),
            scope: session.scope,
            refresh_cookie: client.refresh_cookie,
        },
        session.id,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["profile".into(), "email".into()]
    }

    #[test]
    fn no_requested_scope_grants_everything_allowed() {
        assert_eq!(resolve_scope(None, &allowed()).unwrap(), allowed());
        assert_eq!(resolve_scope(Some("  "), &allowed()).unwrap(), allowed());
    }

    #[test]
    fn requested_scopes_are_narrowed_and_deduplicated() {
        assert_eq!(
            resolve_scope(Some("email email"), &allowed()).unwrap(),
            vec!["email".to_string()]
        );
    }

    #[test]
    fn unknown_scopes_are_refused_not_dropped() {
        assert!(matches!(
            resolve_scope(Some("email admin"), &allowed()),
            Err(Error::InvalidScope(_))
        ));
    }
}
