//! The JSON side of SPEC §6.4: `POST /account/email/verify`, `PUT /account/email`,
//! `POST /password/forgot` and `POST /password/reset` (the last two also take the hosted
//! pages' forms, answered with pages by `http::pages::recovery`). The rules live in
//! `recovery`; this module parses, checks the caller and answers.

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::Error;
use crate::http::account::check_password_of;
use crate::http::error::ErrorBody;
use crate::http::error::HttpError;
use crate::http::extract::{client_ip, JsonOrForm};
use crate::http::openapi::responses::{
    OtherError, PayloadTooLarge, RateLimited, Unauthorized, Unavailable, UnsupportedMediaType,
};
use crate::http::{authenticate, blocking};
use crate::lockout::Claimant;
use crate::recovery::{self, Lookup, MailContext};
use crate::sessions;
use crate::state::AppState;

/// The one answer of `POST /password/forgot`, whatever was found.
pub const FORGOT_ANSWER: &str = r#"{"status":"accepted","message":"If an account matches and has an email address, a link to reset its password is on its way."}"#;

/// Refuses with 503 `temporarily_unavailable` when `TESSERA_SMTP_URL` is not set.
pub fn require_mail(state: &AppState) -> Result<(), Error> {
    if state.settings.mail.is_some() {
        Ok(())
    } else {
        Err(Error::Unavailable)
    }
}

/// What the mails of this server need.
pub fn mail_context(state: &AppState) -> MailContext<'_> {
    MailContext {
        issuer: &state.settings.issuer,
        brand: &state.settings.brand_name,
        master_key: &state.master_key,
    }
}

/// True when the request body is JSON (the API), false for a form (a page).
pub fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        })
}

/// `POST /account/email/verify`: mails a verification link to the account's address.
#[utoipa::path(
    post,
    path = "/account/email/verify",
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "A link is mailed (unless the address is verified already or the hourly allowance is spent)"),
        (status = 400, description = "`invalid_request`: the account has no email address", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn request_verification(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let claims = authenticate(&req, &state).await?;
    require_mail(&state)?;
    let ip = client_ip(&req, &state.settings).map(|ip| ip.to_string());
    let queued = blocking(&state, move |conn, state| {
        let user = sessions::token_user(conn, &claims)?;
        recovery::request_verification(conn, mail_context(state), &user.id, ip, crate::now())
    })
    .await?;
    if queued {
        state.outbox.wake();
    }
    Ok(HttpResponse::Accepted()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .finish())
}

/// `PUT /account/email` body.
#[derive(Deserialize, ToSchema)]
pub struct EmailBody {
    #[schema(required = true)]
    email: Option<String>,
    /// The account's password.
    #[schema(required = true, format = Password)]
    password: Option<String>,
}

/// `PUT /account/email`: changes the address after a password check (a wrong password
/// counts toward the account's lock); the new address is unverified.
#[utoipa::path(
    put,
    path = "/account/email",
    tag = "account",
    request_body(content(
        (EmailBody = "application/json"),
        (EmailBody = "application/x-www-form-urlencoded"),
    )),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed: `{\"email\",\"email_verified\":false}`"),
        (status = 400, description = "`invalid_request` (missing field, not an address) or `invalid_grant` (wrong password)", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn change_email(
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonOrForm(body): JsonOrForm<EmailBody>,
) -> Result<HttpResponse, Error> {
    let claims = authenticate(&req, &state).await?;
    require_mail(&state)?;
    let email = body
        .email
        .map(|e| e.trim().to_string())
        .ok_or_else(|| Error::InvalidRequest("missing `email`".into()))?;
    let password = body
        .password
        .ok_or_else(|| Error::InvalidRequest("missing `password`".into()))?;
    crate::accounts::check_email(&email)?;
    let ip = client_ip(&req, &state.settings).map(|ip| ip.to_string());
    let lookup = claims.clone();
    let user = blocking(&state, move |conn, _| sessions::token_user(conn, &lookup)).await?;
    let claimant = Claimant {
        client_id: claims.client_id,
        ip: ip.clone(),
    };
    check_password_of(&state, &user, password, claimant).await?;
    let changed = blocking(&state, move |conn, _| {
        recovery::change_email(conn, &user.id, &email, ip, crate::now())
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(serde_json::json!({ "email": changed.email, "email_verified": false })))
}

/// `POST /password/forgot` body: one of the two (a page's form adds `csrf`).
#[derive(Deserialize, ToSchema)]
pub struct ForgotBody {
    pub username: Option<String>,
    pub email: Option<String>,
    #[schema(ignore)]
    pub csrf: Option<String>,
}

impl ForgotBody {
    /// Which account is asked for; `None` when neither field has a value.
    pub fn lookup(&self) -> Option<Lookup> {
        fn present(value: &Option<String>) -> Option<String> {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        }
        present(&self.username)
            .map(Lookup::Username)
            .or_else(|| present(&self.email).map(Lookup::Email))
    }
}

/// Queues reset mails for what `lookup` names; what it found is never told.
pub async fn forgot_password_of(
    state: &web::Data<AppState>,
    lookup: Lookup,
    ip: Option<String>,
) -> Result<(), Error> {
    let queued = blocking(state, move |conn, state| {
        recovery::forgot_password(conn, mail_context(state), &lookup, ip, crate::now())
    })
    .await?;
    if queued > 0 {
        state.outbox.wake();
    }
    Ok(())
}

/// `POST /password/forgot`: the same 202 whether or not the account exists.
#[utoipa::path(
    post,
    path = "/password/forgot",
    tag = "account",
    request_body(content(
        (ForgotBody = "application/json"),
        (ForgotBody = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 202, description = "Always the same body; a known account with an address gets a reset link"),
        (status = 200, description = "For the page's form: the page saying a link may be on its way", content_type = "text/html"),
        (status = 400, description = "`invalid_request`: neither `username` nor `email`", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn forgot_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<JsonOrForm<ForgotBody>, HttpError>,
) -> Result<HttpResponse, HttpError> {
    if !is_json(&req) {
        return Ok(crate::http::pages::recovery::forgot(req, body).await?);
    }
    let JsonOrForm(body) = body?;
    require_mail(&state)?;
    let ip = client_ip(&req, &state.settings);
    crate::http::token::limit_attempts(&state, ip).await?;
    let lookup = body
        .lookup()
        .ok_or_else(|| Error::InvalidRequest("give `username` or `email`".into()))?;
    forgot_password_of(&state, lookup, ip.map(|ip| ip.to_string())).await?;
    Ok(HttpResponse::Accepted()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .content_type("application/json")
        .body(FORGOT_ANSWER))
}

/// `POST /password/reset` body (the page's form adds `csrf`).
#[derive(Deserialize, ToSchema)]
pub struct ResetBody {
    #[schema(required = true)]
    pub token: Option<String>,
    #[schema(required = true, min_length = 8, max_length = 128, format = Password)]
    pub new_password: Option<String>,
    #[schema(ignore)]
    pub csrf: Option<String>,
}

/// Sets a new password with a reset token: the policy, then the hash, then one transaction
/// that spends the token, ends every session and clears a lock.
pub async fn reset_password_of(
    state: &web::Data<AppState>,
    token: String,
    new_password: String,
    ip: Option<String>,
) -> Result<(), Error> {
    let lookup = token.clone();
    let user = blocking(state, move |conn, _| {
        recovery::reset_target(conn, &lookup, crate::now())
    })
    .await?;
    if let Some(problem) = crate::passwords::policy_violation(&new_password, &user.username) {
        return Err(Error::WeakPassword(problem.into()));
    }
    let hash = state
        .hasher
        .run(move |hasher| hasher.hash(&new_password))
        .await??;
    let ended = blocking(state, move |conn, state| {
        recovery::reset_password(conn, &state.metrics, &token, &hash, ip, crate::now())
    })
    .await?;
    log::info!(
        "password of user {} reset; {} sessions ended",
        user.id,
        ended.len()
    );
    Ok(())
}

/// `POST /password/reset`: 204 once the password is set and every session ended.
#[utoipa::path(
    post,
    path = "/password/reset",
    tag = "account",
    request_body(content(
        (ResetBody = "application/json"),
        (ResetBody = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "Password set; every session of the user ended; a lock cleared"),
        (status = 200, description = "For the page's form: the page saying it is done", content_type = "text/html"),
        (status = 400, description = "`invalid_grant` (bad, used or expired token), `weak_password`, `invalid_request`", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn reset_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<JsonOrForm<ResetBody>, HttpError>,
) -> Result<HttpResponse, HttpError> {
    if !is_json(&req) {
        return Ok(crate::http::pages::recovery::reset(req, body).await?);
    }
    let JsonOrForm(body) = body?;
    require_mail(&state)?;
    let token = body
        .token
        .ok_or_else(|| Error::InvalidRequest("missing `token`".into()))?;
    let new_password = body
        .new_password
        .ok_or_else(|| Error::InvalidRequest("missing `new_password`".into()))?;
    let ip = client_ip(&req, &state.settings).map(|ip| ip.to_string());
    reset_password_of(&state, token, new_password, ip).await?;
    Ok(HttpResponse::NoContent()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .finish())
}
