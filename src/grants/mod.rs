//! The token endpoint's grants (RFC 6749 §4): what each checks and what it issues. Grants take
//! plain values and a database connection; they never see HTTP.

pub mod authorization_code;
pub mod client_credentials;
pub mod mfa_otp;
pub mod password;
pub mod refresh_token;

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::client_cache::ClientCache;
use crate::clients::Client;
use crate::clients::GrantType;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::sessions::{self, Session};
use crate::store::users::User;
use crate::store::DbConnection;
use crate::tokens::claims::{refresh_audience, AccessClaims, RefreshClaims};
use crate::tokens::keyring::{KeyRing, TokenKind};

/// Who signs a grant's tokens and for how long: the issuer's side of every grant.
#[derive(Clone, Copy)]
pub struct Issuer<'a> {
    /// `iss` of every token.
    pub issuer: &'a str,
    /// `aud` of access tokens for clients that name none.
    pub audience: &'a str,
    /// Access-token lifetime for clients that set none.
    pub access_ttl: i64,
    /// Session (and refresh-token) lifetime for clients that set none.
    pub refresh_ttl: i64,
    /// The signing keys; a client's `token_alg` picks among them.
    pub keys: &'a KeyRing,
}

/// What a grant checks a request against, besides the request itself: the configured
/// scopes, the stored clients, the refresh rules, the lock on guessing, the key that opens
/// second-factor secrets and the counters it feeds.
#[derive(Clone, Copy)]
pub struct Policy<'a> {
    /// `TESSERA_SCOPES`: the scopes of the built-in client.
    pub scopes: &'a [String],
    /// Seconds a rotated refresh token still answers with its successor, for clients that
    /// set none.
    pub refresh_reuse_grace: i64,
    /// A session unused this long is over.
    pub session_idle_timeout: Option<i64>,
    /// Client authentication.
    pub clients: &'a ClientCache,
    pub lockout: crate::lockout::Policy<'a>,
    /// Opens TOTP secrets and keys the hashes of unknown usernames.
    pub master_key: &'a MasterKey,
    pub metrics: &'a Metrics,
}

/// What a grant hands back to the client.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_token: SecretString,
    pub expires_in: i64,
    pub refresh_token: Option<SecretString>,
    /// An OpenID Connect ID token, when `openid` was granted.
    pub id_token: Option<SecretString>,
    pub scope: String,
    /// Deliver the refresh token as a cookie rather than in the body.
    pub refresh_cookie: bool,
}

/// Where a request came from, for sessions and the audit log.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Counts the tokens a grant issued (`tessera_tokens_issued_total` by grant type, and this
/// instance's last hour for the console's overview), once they are committed. Each grant
/// counts its own, so every way to it (the token endpoint, the console's sign-in and
/// refresh) is counted alike.
pub fn count_issued(metrics: &crate::metrics::Metrics, grant: GrantType, now: i64) {
    metrics
        .tokens_issued
        .with_label_values(&[grant.as_str()])
        .inc();
    metrics.tokens_last_hour.record(now);
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

/// The `aud` of access tokens issued to `client`.
pub fn audience_for(issuer: &Issuer<'_>, client: &Client) -> String {
    client
        .audience
        .clone()
        .unwrap_or_else(|| issuer.audience.to_string())
}

/// Access-token lifetime for `client`.
pub fn access_ttl_for(issuer: &Issuer<'_>, client: &Client) -> i64 {
    client.access_token_ttl.unwrap_or(issuer.access_ttl)
}

/// What an access token says about its user: the stored columns it is made from, so a
/// refresh can take them straight from its one statement.
#[derive(Debug, Clone, Copy)]
pub struct TokenSubject<'a> {
    pub id: &'a str,
    pub username: &'a str,
    /// JSON array, as stored.
    pub roles: &'a str,
    /// JSON object, as stored.
    pub attributes: &'a str,
}

impl<'a> From<&'a User> for TokenSubject<'a> {
    fn from(user: &'a User) -> Self {
        TokenSubject {
            id: &user.id,
            username: &user.username,
            roles: &user.roles,
            attributes: &user.attributes,
        }
    }
}

/// The claims every access token of `client` carries, for `sub` with `scope`, issued now:
/// a user's session adds who signed in and how ([`sign_user_access_token`]); a client's
/// own token (client_credentials) is these alone. Returns the lifetime too.
pub fn access_claims(
    issuer: &Issuer<'_>,
    client: &Client,
    sub: &str,
    scope: &str,
    now: i64,
) -> (AccessClaims, i64) {
    let ttl = access_ttl_for(issuer, client);
    let claims = AccessClaims {
        iss: issuer.issuer.to_string(),
        sub: sub.to_string(),
        aud: audience_for(issuer, client),
        exp: now + ttl,
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: client.client_id.clone(),
        scope: scope.to_string(),
        roles: Vec::new(),
        sid: None,
        auth_time: None,
        amr: None,
        username: None,
        attributes: None,
        token_type: "access".into(),
        fresh: false,
    };
    (claims, ttl)
}

/// Signs an access token for a user's session.
pub fn sign_user_access_token(
    issuer: &Issuer<'_>,
    user: TokenSubject<'_>,
    client: &Client,
    session: &Session,
    scope: &str,
    fresh: bool,
    now: i64,
) -> Result<(String, i64)> {
    let attributes: Map<String, Value> = serde_json::from_str(user.attributes).unwrap_or_default();
    let (base, ttl) = access_claims(issuer, client, user.id, scope, now);
    let claims = AccessClaims {
        roles: serde_json::from_str(user.roles).unwrap_or_default(),
        sid: Some(session.id.clone()),
        auth_time: Some(session.auth_time),
        amr: Some(serde_json::from_str(&session.amr).unwrap_or_default()),
        username: Some(user.username.to_string()),
        attributes: (!attributes.is_empty()).then_some(attributes),
        fresh,
        ..base
    };
    let token = issuer
        .keys
        .sign(TokenKind::Access, client.signing_alg(), &claims)?;
    Ok((token, ttl))
}

/// A new refresh token's claims, not yet signed, and the SHA-256 of its `jti` (all the
/// database keeps of it). It is valid until the session's absolute end, `exp`. A grant
/// stores the hash inside its transaction and signs once it has committed.
pub fn refresh_token_parts(
    issuer: &Issuer<'_>,
    sub: &str,
    sid: &str,
    client_id: &str,
    exp: i64,
    now: i64,
) -> (RefreshClaims, String) {
    let jti = crate::crypto::random_token::<32>();
    let jti_hash = crate::crypto::sha256_hex(jti.as_bytes());
    let claims = RefreshClaims {
        iss: issuer.issuer.to_string(),
        sub: sub.to_string(),
        aud: refresh_audience(issuer.issuer),
        iat: now,
        exp,
        jti,
        sid: sid.to_string(),
        client_id: client_id.to_string(),
        token_type: "refresh".into(),
    };
    (claims, jti_hash)
}

/// Starts a session for a user who has just proven who they are, and issues its first
/// tokens. Call inside the login's transaction.
pub fn start_session(
    conn: &mut DbConnection,
    issuer: &Issuer<'_>,
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
        nonce: None,
        code_flow: false,
    };
    start_session_for(conn, issuer, user, client, scope, &sign_in, context, now)
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
    /// The authorization request's `nonce`, for the ID token.
    pub nonce: Option<String>,
    /// Tokens come from the authorization code flow: the ID token carries `at_hash`.
    pub code_flow: bool,
}

/// [`start_session`] for a sign-in made earlier; also answers the new session's id.
#[allow(clippy::too_many_arguments)]
pub fn start_session_for(
    conn: &mut DbConnection,
    issuer: &Issuer<'_>,
    user: &User,
    client: &Client,
    scope: &[String],
    sign_in: &SignIn,
    context: &RequestContext,
    now: i64,
) -> Result<(IssuedTokens, String)> {
    let opened = open_session(
        conn,
        new_session_id(),
        issuer,
        user,
        client,
        scope,
        sign_in,
        context,
        now,
    )?;
    let sid = opened.session.id.clone();
    Ok((opened.sign(issuer, user, client, sign_in, now)?, sid))
}

/// A session just written, whose tokens are not signed yet, with all they need from the
/// database already read: signing them is CPU work only.
pub struct OpenedSession {
    pub session: Session,
    refresh: Option<RefreshClaims>,
    /// The ID token's `email_verified`, read in the session's transaction.
    email_verified: Option<bool>,
}

/// A new session id, for a caller that records it before the session is written.
pub fn new_session_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Writes the session of a sign-in under `sid` (from [`new_session_id`], so that a caller
/// can record it first), with its first refresh token's hash if the client may refresh;
/// [`OpenedSession::sign`] then signs its tokens. Apart, so that a caller can sign after its
/// transaction committed and hold no lock while it signs.
#[allow(clippy::too_many_arguments)]
pub fn open_session(
    conn: &mut DbConnection,
    sid: String,
    issuer: &Issuer<'_>,
    user: &User,
    client: &Client,
    scope: &[String],
    sign_in: &SignIn,
    context: &RequestContext,
    now: i64,
) -> Result<OpenedSession> {
    let amr = &sign_in.amr;
    let ttl = client.refresh_token_ttl.unwrap_or(issuer.refresh_ttl);
    let expires_at = now + ttl;
    let refresh = client
        .allows_grant(GrantType::RefreshToken)
        .then(|| refresh_token_parts(issuer, &user.id, &sid, &client.client_id, expires_at, now));
    let session = Session {
        id: sid,
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
        expires_at,
        revoked_at: None,
        revoke_reason: None,
        refresh_hash: refresh.as_ref().map(|(_, hash)| hash.clone()),
        refresh_previous_hash: None,
        refresh_rotated_at: None,
        refresh_successor_sealed: None,
    };
    sessions::insert(conn, &session)?;
    let email_verified = crate::oidc::id_token::email_verified_claim(conn, user, &session.scope)?;
    Ok(OpenedSession {
        session,
        refresh: refresh.map(|(claims, _)| claims),
        email_verified,
    })
}

impl OpenedSession {
    /// Signs the session's access token, its first refresh token (if any) and, when
    /// `openid` was granted, its ID token.
    pub fn sign(
        self,
        issuer: &Issuer<'_>,
        user: &User,
        client: &Client,
        sign_in: &SignIn,
        now: i64,
    ) -> Result<IssuedTokens> {
        let session = self.session;
        let (access_token, expires_in) = sign_user_access_token(
            issuer,
            user.into(),
            client,
            &session,
            &session.scope,
            sign_in.fresh,
            now,
        )?;
        let id_token = crate::oidc::id_token::sign(
            issuer.keys,
            issuer.issuer,
            &crate::oidc::id_token::Subject {
                user,
                client_id: &client.client_id,
                alg: client.signing_alg(),
                session: &session,
                scope: &session.scope,
                access_ttl: access_ttl_for(issuer, client),
                nonce: sign_in.nonce.as_deref(),
                at_hash_of: sign_in.code_flow.then_some(access_token.as_str()),
            },
            self.email_verified,
            now,
        )?;
        let refresh_token = self
            .refresh
            .map(|claims| {
                issuer
                    .keys
                    .sign(TokenKind::Refresh, client.signing_alg(), &claims)
            })
            .transpose()?;
        Ok(IssuedTokens {
            access_token: access_token.into(),
            expires_in,
            refresh_token: refresh_token.map(Into::into),
            id_token: id_token.map(Into::into),
            scope: session.scope,
            refresh_cookie: client.refresh_cookie,
        })
    }
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
