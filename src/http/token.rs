//! `POST /oauth/token` (RFC 6749 §3.2), `POST /oauth/revoke` (RFC 7009) and
//! `POST /oauth/introspect` (RFC 7662).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::clients::{self, grant};
use crate::error::Error;
use crate::grants::{self, IssuedTokens, RequestContext};
use crate::http::browser;
use crate::http::extract::{client_credentials, client_ip, user_agent, FormBody};
use crate::http::{blocking, ok_empty};

/// The token request's form; every field optional so that a missing one gets a precise
/// `invalid_request`.
#[derive(Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
    mfa_token: Option<String>,
    otp: Option<String>,
}

fn required(value: Option<String>, name: &str) -> Result<String, Error> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::InvalidRequest(format!("missing `{name}`")))
}

/// Takes one credential-guessing attempt from the client address's allowance.
pub fn limit_attempts(state: &AppState, ip: Option<std::net::IpAddr>) -> Result<(), Error> {
    match ip {
        Some(ip) => state
            .login_limiter
            .check(ip)
            .map_err(|retry_after| Error::RateLimited { retry_after }),
        None => Ok(()),
    }
}

/// `POST /oauth/token`.
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
    // Set when the refresh token came from the cookie: the CSRF value just checked.
    let mut csrf = None;
    let result = match grant_type.as_str() {
        grant::PASSWORD => {
            limit_attempts(&state, ip)?;
            let username = required(form.username, "username")?;
            let password = required(form.password, "password")?;
            let scope = form.scope;
            let attempt = blocking(&state, move |conn, state| {
                grants::password::prepare(
                    conn,
                    state,
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
                grants::password::complete(conn, state, attempt, verdict, &context, now)
            })
            .await
        }
        grant::REFRESH_TOKEN => {
            let refresh_token = match form.refresh_token.filter(|t| !t.is_empty()) {
                Some(token) => token,
                None => {
                    let token = browser::cookie(&req, browser::REFRESH_COOKIE)
                        .ok_or_else(|| Error::InvalidRequest("missing `refresh_token`".into()))?;
                    csrf = Some(browser::check_csrf(&req)?);
                    token
                }
            };
            let scope = form.scope;
            blocking(&state, move |conn, state| {
                grants::refresh_token::exchange(
                    conn,
                    state,
                    &credentials,
                    &refresh_token,
                    scope.as_deref(),
                    &context,
                    now,
                )
            })
            .await
        }
        grant::MFA_OTP => {
            limit_attempts(&state, ip)?;
            let mfa_token = required(form.mfa_token, "mfa_token")?;
            let otp = required(form.otp, "otp")?;
            blocking(&state, move |conn, state| {
                grants::mfa_otp::complete(
                    conn,
                    state,
                    &credentials,
                    &mfa_token,
                    &otp,
                    &context,
                    now,
                )
            })
            .await
        }
        grant::CLIENT_CREDENTIALS => {
            let scope = form.scope;
            blocking(&state, move |conn, state| {
                grants::client_credentials::issue(conn, state, &credentials, scope.as_deref(), now)
            })
            .await
        }
        other => Err(Error::UnsupportedGrantType(format!(
            "grant type `{}` is not supported",
            other.chars().take(64).collect::<String>()
        ))),
    };
    match result {
        Ok(issued) => {
            state
                .metrics
                .tokens_issued
                .with_label_values(&[grant_type.as_str()])
                .inc();
            token_response(issued, state.settings.cookie_secure, csrf, now)
        }
        Err(Error::InvalidClient(message)) => {
            // Failed client authentications count toward the address's limit.
            limit_attempts(&state, ip)?;
            Err(Error::InvalidClient(message))
        }
        Err(e) => Err(e),
    }
}

/// The successful token response (RFC 6749 §5.1), never cached. For a cookie client the
/// refresh token goes in the `tessera_refresh` cookie instead of the body.
pub fn token_response(
    issued: IssuedTokens,
    secure_cookies: bool,
    csrf: Option<String>,
    now: i64,
) -> Result<HttpResponse, Error> {
    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    });
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    if let Some(refresh_token) = issued.refresh_token {
        if issued.refresh_cookie {
            browser::set_refresh_cookies(&mut response, &refresh_token, csrf, secure_cookies, now)?;
        } else {
            body["refresh_token"] = json!(refresh_token);
        }
    }
    Ok(response.json(body))
}

/// The revocation and introspection form.
#[derive(Deserialize)]
pub struct TokenActionForm {
    token: Option<String>,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// `POST /oauth/revoke`: always 200 for unknown or already revoked tokens.
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
    // A browser client logs out by revoking the refresh token its cookie holds.
    let from_cookie = browser::cookie(&req, browser::REFRESH_COOKIE);
    let (token, clears_cookies) = match form.token.filter(|t| !t.is_empty()) {
        Some(token) => {
            let same = from_cookie.as_deref() == Some(token.as_str());
            (token, same)
        }
        None => (
            from_cookie.ok_or_else(|| Error::InvalidRequest("missing `token`".into()))?,
            true,
        ),
    };
    let hint = form.token_type_hint;
    let ip = client_ip(&req, &state.settings).map(|ip| ip.to_string());
    let revoked = blocking(&state, move |conn, state| {
        let client = clients::authenticate(conn, &credentials, &state.settings.scopes)?;
        crate::sessions::revoke_token(
            conn,
            state,
            &client,
            &token,
            hint.as_deref(),
            ip,
            crate::now(),
        )
    })
    .await?;
    if revoked {
        state.metrics.revocations.inc();
    }
    let mut response = ok_empty();
    if clears_cookies {
        browser::clear_cookies(&mut response, state.settings.cookie_secure);
    }
    Ok(response)
}

/// `POST /oauth/introspect`: confidential clients only.
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
        let client = clients::authenticate(conn, &credentials, &state.settings.scopes)?;
        if client.public {
            return Err(Error::InvalidClient(
                "introspection requires a confidential client".into(),
            ));
        }
        crate::sessions::introspect(conn, state, &token, crate::now())
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer))
}
