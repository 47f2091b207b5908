//! `POST /oauth/token` (RFC 6749 §3.2), `POST /oauth/revoke` (RFC 7009) and
//! `POST /oauth/introspect` (RFC 7662).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clients::GrantType;
use crate::error::Error;
use crate::grants::{self, IssuedTokens, RequestContext};
use crate::http::error::ErrorBody;
use crate::http::extract::{client_credentials, client_ip, user_agent, FormBody};
use crate::http::openapi::responses::{
    InvalidClient, OtherError, PayloadTooLarge, RateLimited, Unavailable, UnsupportedMediaType,
};
use crate::http::{blocking, ok_empty};
use crate::http::{browser, cookies};
use crate::sessions::Introspected;
use crate::state::AppState;
use crate::tokens::algs::SigningAlg;

/// The grant types of `POST /oauth/token`. Only describes `TokenForm::grant_type` in the
/// OpenAPI document (the form keeps it a string, so that an unknown one is
/// `unsupported_grant_type`); the handler matches on `clients::GrantType`.
#[derive(ToSchema)]
#[schema(as = GrantType)]
#[allow(dead_code)]
pub enum GrantTypeName {
    #[schema(rename = "password")]
    Password,
    #[schema(rename = "refresh_token")]
    RefreshToken,
    #[schema(rename = "client_credentials")]
    ClientCredentials,
    #[schema(rename = "urn:tessera:params:oauth:grant-type:mfa-otp")]
    MfaOtp,
    #[schema(rename = "authorization_code")]
    AuthorizationCode,
}

/// The token request's form; every field optional so that a missing one gets a precise
/// `invalid_request`. Which fields a grant needs is said per field.
#[derive(Deserialize, ToSchema)]
pub struct TokenForm {
    #[schema(value_type = GrantTypeName, required = true)]
    grant_type: Option<String>,
    /// `password` grant: required.
    username: Option<String>,
    /// `password` grant: required.
    #[schema(format = Password)]
    password: Option<String>,
    /// Space-separated scopes; without it, all the client's allowed scopes (a refresh may
    /// only narrow them). An unknown scope is `invalid_scope`.
    scope: Option<String>,
    /// The client (client_secret_post, or a public client); without client authentication
    /// the built-in public client `first-party`.
    client_id: Option<String>,
    /// client_secret_post; alternatively HTTP Basic (client_secret_basic), not both.
    #[schema(format = Password)]
    client_secret: Option<String>,
    /// `refresh_token` grant: required unless a cookie client sends the `tessera_refresh`
    /// cookie with a matching `X-CSRF-Token` header.
    refresh_token: Option<String>,
    /// MFA grant: required; from the `mfa_required` error of the password grant.
    mfa_token: Option<String>,
    /// MFA grant: required; a current TOTP code or an unused recovery code.
    otp: Option<String>,
    /// `authorization_code` grant: required; the code from `/oauth/authorize`.
    code: Option<String>,
    /// `authorization_code` grant: required, and identical, when the authorization request
    /// sent one.
    redirect_uri: Option<String>,
    /// `authorization_code` grant: required; 43-128 characters of RFC 7636's alphabet.
    #[schema(format = Password)]
    code_verifier: Option<String>,
}

fn required(value: Option<String>, name: &str) -> Result<String, Error> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::InvalidRequest(format!("missing `{name}`")))
}

/// Takes one credential-guessing attempt from the client address's budget, which every
/// instance shares (it is counted in the database, on the blocking pool).
pub async fn limit_attempts(
    state: &web::Data<AppState>,
    ip: Option<std::net::IpAddr>,
) -> Result<(), Error> {
    match ip {
        Some(ip) if state.login_limiter.enabled() => {
            blocking(state, move |conn, state| {
                state.login_limiter.check(conn, ip)
            })
            .await
        }
        _ => Ok(()),
    }
}

/// `POST /oauth/token`: the password, refresh_token, client_credentials and MFA grants.
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    params(
        ("X-CSRF-Token" = Option<String>, Header,
            description = "Cookie clients refreshing from the `tessera_refresh` cookie: \
                the value of the `tessera_csrf` cookie"),
    ),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "Tokens issued (never cached). A cookie client gets the \
            refresh token in the `tessera_refresh` cookie instead of the body.",
            body = TokenResponse, headers(
                ("Cache-Control" = String, description = "`no-store`"),
                ("Set-Cookie" = String, description = "Cookie clients: `tessera_refresh` \
                    (`HttpOnly; Secure; SameSite=Strict; Path=/oauth`) and `tessera_csrf`"),
            )),
        (status = 400, description = "`invalid_request` (missing or malformed parameter, \
            missing CSRF header), `invalid_grant` (wrong username or password, disabled \
            account, spent or reused refresh token, wrong or replayed one-time code), \
            `unauthorized_client` (grant not allowed for the client), \
            `unsupported_grant_type`, `invalid_scope`", body = ErrorBody),
        (status = 401, response = InvalidClient),
        (status = 403, description = "`mfa_required`: the password was right and the user has \
            MFA on; complete the login with the MFA grant and the `mfa_token` given here",
            body = ErrorBody, example = json!({
                "error": "mfa_required",
                "error_description": "a second factor is required",
                "mfa_token": "…",
            })),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn issue_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    FormBody(form): FormBody<TokenForm>,
) -> Result<HttpResponse, Error> {
    let ip = client_ip(&req, &state.settings);
    let context = RequestContext {
        ip: ip.map(|ip| ip.to_string()),
        user_agent: user_agent(&req),
    };
    let credentials = client_credentials(
        &req,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )?;
    let grant_type = required(form.grant_type, "grant_type")?;
    let now = crate::now();
    let result = match GrantType::parse(&grant_type) {
        Some(GrantType::Password) => {
            limit_attempts(&state, ip).await?;
            let username = required(form.username, "username")?;
            let password = required(form.password, "password")?;
            let scope = form.scope;
            let attempt = blocking(&state, move |conn, state| {
                grants::password::prepare(
                    conn,
                    &state.grant_policy(),
                    &credentials,
                    &username,
                    scope.as_deref(),
                    now,
                )
            })
            .await?;
            let user = attempt.user.clone();
            let verdict = state
                .hasher
                .run(move |hasher| grants::password::check(hasher, user.as_ref(), &password))
                .await?;
            blocking(&state, move |conn, state| {
                grants::password::complete(
                    conn,
                    &state.issuer(),
                    &state.grant_policy(),
                    attempt,
                    verdict,
                    &context,
                    now,
                )
            })
            .await
        }
        Some(GrantType::RefreshToken) => {
            let refresh_token = match form.refresh_token.filter(|t| !t.is_empty()) {
                Some(token) => token,
                None => {
                    let token = cookies::read(&req, browser::REFRESH_COOKIE)
                        .ok_or_else(|| Error::InvalidRequest("missing `refresh_token`".into()))?;
                    browser::check_csrf(&req, &state.master_key, &token)?;
                    token
                }
            };
            let scope = form.scope;
            blocking(&state, move |conn, state| {
                grants::refresh_token::exchange(
                    conn,
                    &state.issuer(),
                    &state.grant_policy(),
                    &credentials,
                    &refresh_token,
                    scope.as_deref(),
                    &context,
                    now,
                )
            })
            .await
        }
        Some(GrantType::MfaOtp) => {
            limit_attempts(&state, ip).await?;
            let mfa_token = required(form.mfa_token, "mfa_token")?;
            let otp = required(form.otp, "otp")?;
            blocking(&state, move |conn, state| {
                grants::mfa_otp::complete(
                    conn,
                    &state.issuer(),
                    &state.grant_policy(),
                    &credentials,
                    &mfa_token,
                    &otp,
                    &context,
                    now,
                )
            })
            .await
        }
        Some(GrantType::AuthorizationCode) => {
            let code = required(form.code, "code")?;
            let code_verifier = required(form.code_verifier, "code_verifier")?;
            let redirect_uri = form.redirect_uri.filter(|u| !u.is_empty());
            blocking(&state, move |conn, state| {
                grants::authorization_code::exchange(
                    conn,
                    &state.issuer(),
                    &state.grant_policy(),
                    &credentials,
                    &grants::authorization_code::Exchange {
                        code: &code,
                        redirect_uri: redirect_uri.as_deref(),
                        code_verifier: &code_verifier,
                    },
                    &context,
                    now,
                )
            })
            .await
        }
        Some(GrantType::ClientCredentials) => {
            let scope = form.scope;
            // A cached client whose tokens take a signature cheaper than the hop to the
            // blocking pool and back (ES256 ~20 µs, EdDSA less; not RS256's ~250 µs, which
            // would hold this worker up) gets its token here: no database, no argon2.
            let policy = state.grant_policy();
            let cheap = policy
                .clients
                .authenticate_cached(&credentials)
                .filter(|client| {
                    matches!(
                        client.signing_alg(),
                        Some(SigningAlg::Es256 | SigningAlg::EdDsa)
                    )
                });
            match cheap {
                Some(client) => grants::client_credentials::issue_to(
                    &state.issuer(),
                    &policy,
                    &client,
                    scope.as_deref(),
                    now,
                ),
                None => {
                    blocking(&state, move |conn, state| {
                        grants::client_credentials::issue(
                            conn,
                            &state.issuer(),
                            &state.grant_policy(),
                            &credentials,
                            scope.as_deref(),
                            now,
                        )
                    })
                    .await
                }
            }
        }
        None => Err(Error::UnsupportedGrantType(format!(
            "grant type `{}` is not supported",
            grant_type.chars().take(64).collect::<String>()
        ))),
    };
    // Each grant counts what it issued; a failed client authentication is counted by
    // `http::limit_client_failures`.
    token_response(result?, &state, now)
}

/// The successful token response body (RFC 6749 §5.1).
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// An RS256 JWT (`typ` `at+jwt`).
    access_token: String,
    #[schema(example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: i64,
    /// The granted scopes, space-separated.
    scope: String,
    /// An RS256 JWT (`typ` `refresh+jwt`); absent for client_credentials and for cookie
    /// clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    /// An OpenID Connect ID token (`typ` `JWT`), when `openid` was granted (SPEC §6.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

/// The successful token response (RFC 6749 §5.1), never cached. For a cookie client the
/// refresh token goes in the `tessera_refresh` cookie instead of the body, with the
/// session's CSRF value in `tessera_csrf`.
pub fn token_response(
    issued: IssuedTokens,
    state: &AppState,
    now: i64,
) -> Result<HttpResponse, Error> {
    let mut body = TokenResponse {
        access_token: issued.access_token.expose_secret().to_owned(),
        token_type: "Bearer",
        expires_in: issued.expires_in,
        scope: issued.scope,
        refresh_token: None,
        id_token: issued
            .id_token
            .map(|token| token.expose_secret().to_owned()),
    };
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    if let Some(refresh_token) = issued.refresh_token {
        if issued.refresh_cookie {
            browser::set_refresh_cookies(
                &mut response,
                refresh_token.expose_secret(),
                &state.master_key,
                state.settings.cookie_secure,
                now,
            )?;
        } else {
            body.refresh_token = Some(refresh_token.expose_secret().to_owned());
        }
    }
    Ok(response.json(body))
}

/// The revocation and introspection form.
#[derive(Deserialize, ToSchema)]
pub struct TokenActionForm {
    /// The token. For revocation it may be left out by a cookie client, whose
    /// `tessera_refresh` cookie is then revoked.
    token: Option<String>,
    /// `access_token` or `refresh_token`; a hint only.
    token_type_hint: Option<String>,
    /// client_secret_post, or a public client's id.
    client_id: Option<String>,
    /// client_secret_post; alternatively HTTP Basic, not both.
    #[schema(format = Password)]
    client_secret: Option<String>,
}

/// `POST /oauth/revoke` (RFC 7009): always 200 for unknown or already revoked tokens.
///
/// A refresh token revokes its session; an access token is deny-listed until it expires.
/// Revoking the refresh token of the cookie (or no `token` with the cookie) clears both
/// cookies.
#[utoipa::path(
    post,
    path = "/oauth/revoke",
    tag = "oauth",
    request_body(content = TokenActionForm, content_type = "application/x-www-form-urlencoded"),
    params(
        ("X-CSRF-Token" = Option<String>, Header,
            description = "Cookie clients logging out from the `tessera_refresh` cookie: the \
                value of the `tessera_csrf` cookie"),
    ),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke", headers(
            ("Cache-Control" = String, description = "`no-store`"),
            ("Set-Cookie" = String, description = "Cookie clients: both cookies expired"),
        )),
        (status = 400, description = "`invalid_request`: no `token` (and no cookie), the \
            token taken from the cookie without the session's `X-CSRF-Token`, or two client \
            authentication methods", body = ErrorBody),
        (status = 401, response = InvalidClient),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    FormBody(form): FormBody<TokenActionForm>,
) -> Result<HttpResponse, Error> {
    let credentials = client_credentials(
        &req,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )?;
    // A browser client logs out by revoking the refresh token its cookie holds. Taken from
    // the cookie, the token proves nothing about who sent the request (the browser attaches
    // it to any request), so it needs the session's CSRF value as a cookie refresh does.
    let from_cookie = cookies::read(&req, browser::REFRESH_COOKIE);
    let (token, clears_cookies) = match form.token.filter(|t| !t.is_empty()) {
        Some(token) => {
            let same = from_cookie.as_deref() == Some(token.as_str());
            (token, same)
        }
        None => {
            let token =
                from_cookie.ok_or_else(|| Error::InvalidRequest("missing `token`".into()))?;
            browser::check_csrf(&req, &state.master_key, &token)?;
            (token, true)
        }
    };
    let hint = form.token_type_hint;
    let ip = client_ip(&req, &state.settings).map(|ip| ip.to_string());
    blocking(&state, move |conn, state| {
        let client = state
            .client_cache
            .authenticate(conn, &credentials, &state.settings.scopes)?;
        crate::sessions::revoke_token(
            conn,
            &state.metrics,
            &state.keys,
            &client,
            &token,
            hint.as_deref(),
            ip,
            crate::now(),
        )
    })
    .await?;
    let mut response = ok_empty();
    if clears_cookies {
        browser::clear_cookies(&mut response, state.settings.cookie_secure);
    }
    Ok(response)
}

/// The introspection answer (RFC 7662); an inactive token answers `{"active":false}`
/// alone. Members with no value are left out, never `null` (RFC 7662 §2.2).
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Introspection {
    active: bool,
    /// `Bearer` for an access token (RFC 7662 §2.2: the token's type as RFC 6749 §7.1
    /// means it); `refresh_token` for a refresh token, a tessera extension.
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    /// Access tokens only.
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    /// The resource audience; for a refresh token, the issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    /// Access tokens only.
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<Vec<String>>,
}

impl From<Introspected> for Introspection {
    fn from(found: Introspected) -> Self {
        match found {
            Introspected::Inactive => Introspection::default(),
            Introspected::Access(claims) => Introspection {
                active: true,
                token_type: Some("Bearer"),
                sub: Some(claims.sub),
                username: claims.username,
                client_id: Some(claims.client_id),
                scope: Some(claims.scope),
                exp: Some(claims.exp),
                iat: Some(claims.iat),
                nbf: Some(claims.nbf),
                iss: Some(claims.iss),
                aud: Some(claims.aud),
                jti: Some(claims.jti),
                sid: claims.sid,
                roles: Some(claims.roles),
            },
            Introspected::Refresh {
                claims,
                username,
                scope,
            } => Introspection {
                active: true,
                token_type: Some("refresh_token"),
                sub: Some(claims.sub),
                username: Some(username),
                client_id: Some(claims.client_id),
                scope: Some(scope),
                exp: Some(claims.exp),
                iat: Some(claims.iat),
                nbf: None,
                iss: Some(claims.iss),
                aud: Some(claims.aud),
                jti: Some(claims.jti),
                sid: Some(claims.sid),
                roles: None,
            },
        }
    }
}

/// `POST /oauth/introspect` (RFC 7662): confidential clients only.
#[utoipa::path(
    post,
    path = "/oauth/introspect",
    tag = "oauth",
    request_body(content = TokenActionForm, content_type = "application/x-www-form-urlencoded"),
    security(("client_basic" = [])),
    responses(
        (status = 200, description = "The token's state; `{\"active\":false}` for expired, \
            revoked, foreign or malformed tokens", body = Introspection,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`invalid_request`: no `token`, or two client \
            authentication methods", body = ErrorBody),
        (status = 401, response = InvalidClient),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn introspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    FormBody(form): FormBody<TokenActionForm>,
) -> Result<HttpResponse, Error> {
    let credentials = client_credentials(
        &req,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )?;
    if credentials.client_id.is_none() || credentials.secret.is_none() {
        return Err(Error::InvalidClient(
            "introspection requires client authentication".into(),
        ));
    }
    let token = required(form.token, "token")?;
    let answer = blocking(&state, move |conn, state| {
        let client = state
            .client_cache
            .authenticate(conn, &credentials, &state.settings.scopes)?;
        if client.public {
            return Err(Error::InvalidClient(
                "introspection requires a confidential client".into(),
            ));
        }
        crate::sessions::introspect(
            conn,
            &state.keys,
            state.settings.session_idle_timeout,
            &token,
            crate::now(),
        )
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Introspection::from(answer)))
}
