//! MFA endpoints: `POST /account/mfa/totp` (enrol), `POST /account/mfa/totp/confirm`,
//! `DELETE /account/mfa/totp` (needs the password or a code), and the admin's
//! `DELETE /admin/users/{id}/mfa`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Error;
use crate::http::account::check_password_of;
use crate::http::error::ErrorBody;
use crate::http::extract::{client_ip, JsonOrForm};
use crate::http::openapi::responses::AdminErrors;
use crate::http::openapi::responses::{
    NotFound, OtherError, PayloadTooLarge, RateLimited, Unauthorized, Unavailable,
    UnsupportedMediaType,
};
use crate::http::{admin_operator, authenticate, blocking};
use crate::lockout::Claimant;
use crate::mfa::{self, DisableProof};
use crate::sessions;
use crate::state::AppState;

/// A pending TOTP enrolment.
#[derive(Serialize, ToSchema)]
pub struct Enrolment {
    /// The TOTP secret, base32.
    secret: String,
    /// For authenticator apps (QR code).
    #[schema(example = "otpauth://totp/tessera:alice?secret=…&issuer=tessera")]
    otpauth_uri: String,
}

/// The enrolment body: the current password, so that a stolen access token alone cannot
/// put an authenticator on the account.
#[derive(Deserialize, ToSchema)]
pub struct EnrolBody {
    #[schema(required = true, format = Password)]
    password: Option<String>,
}

/// `POST /account/mfa/totp` (`password`) → `{"secret","otpauth_uri"}`: a pending
/// enrolment. A wrong password counts toward the account's lock, like a failed login.
#[utoipa::path(
    post,
    path = "/account/mfa/totp",
    tag = "mfa",
    request_body(content(
        (EnrolBody = "application/json"),
        (EnrolBody = "application/x-www-form-urlencoded"),
    )),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A pending enrolment; confirm it with a code",
            body = Enrolment, headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`invalid_request` (no `password`, malformed body) or \
            `invalid_grant` (the password is incorrect)", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 409, description = "`invalid_request`: MFA is already enabled",
            body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn enrol(
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonOrForm(body): JsonOrForm<EnrolBody>,
) -> Result<HttpResponse, Error> {
    let claims = authenticate(&req, &state).await?;
    let password = body
        .password
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Error::InvalidRequest("missing `password`".into()))?;
    let user = verify_password(&req, &state, &claims, password).await?;
    let enrolment = blocking(&state, move |conn, state| {
        mfa::begin_enrolment(conn, &state.master_key, &user, crate::now())
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Enrolment {
            secret: enrolment.secret.expose_secret().to_owned(),
            otpauth_uri: enrolment.otpauth_uri.expose_secret().to_owned(),
        }))
}

/// Checks the signed-in user's password on the hasher's pool, counting a wrong one toward
/// the lock (`invalid_grant`); a locked account is refused first (429).
async fn verify_password(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    claims: &crate::tokens::claims::AccessClaims,
    password: String,
) -> Result<crate::store::users::User, Error> {
    let lookup = claims.clone();
    let user = blocking(state, move |conn, _| sessions::token_user(conn, &lookup)).await?;
    let ip = client_ip(req, &state.settings).map(|ip| ip.to_string());
    let claimant = Claimant {
        client_id: claims.client_id.clone(),
        ip,
    };
    check_password_of(state, &user, password, claimant).await?;
    Ok(user)
}

/// The confirmation body.
#[derive(Deserialize, ToSchema)]
pub struct ConfirmBody {
    /// A current code from the authenticator.
    #[schema(required = true, example = "123456")]
    otp: Option<String>,
}

/// One-time recovery codes, shown this once.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

/// `POST /account/mfa/totp/confirm` (`otp`) → `{"recovery_codes":[…]}`.
#[utoipa::path(
    post,
    path = "/account/mfa/totp/confirm",
    tag = "mfa",
    request_body(content(
        (ConfirmBody = "application/json"),
        (ConfirmBody = "application/x-www-form-urlencoded"),
    )),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "MFA is on; the confirming code counts as used, and \
            every other session of the user is revoked",
            body = RecoveryCodes, headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`invalid_request` (no `otp`, nothing pending) or \
            `invalid_grant` (wrong code)", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 409, description = "`invalid_request`: MFA is already enabled",
            body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonOrForm(body): JsonOrForm<ConfirmBody>,
) -> Result<HttpResponse, Error> {
    let claims = authenticate(&req, &state).await?;
    let otp = body
        .otp
        .filter(|o| !o.is_empty())
        .ok_or_else(|| Error::InvalidRequest("missing `otp`".into()))?;
    let ip = client_ip(&req, &state.settings).map(|ip| ip.to_string());
    let codes = blocking(&state, move |conn, state| {
        let user = sessions::token_user(conn, &claims)?;
        mfa::confirm_enrolment(
            conn,
            &state.metrics,
            &state.master_key,
            &user.id,
            &otp,
            claims.sid.as_deref(),
            ip,
            crate::now(),
        )
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(RecoveryCodes {
            recovery_codes: codes,
        }))
}

/// The body that proves the user may turn MFA off: one of the two.
#[derive(Deserialize, ToSchema)]
pub struct DisableBody {
    #[schema(format = Password)]
    password: Option<String>,
    /// A current code or a recovery code.
    otp: Option<String>,
}

/// What the disable body proves with; the password wins when both are given.
enum Given {
    Password(String),
    Code(String),
}

/// `DELETE /account/mfa/totp` with `{"password"}` or `{"otp"}` → 204. A wrong credential
/// counts toward the account's lock, like a failed login.
#[utoipa::path(
    delete,
    path = "/account/mfa/totp",
    tag = "mfa",
    request_body(content(
        (DisableBody = "application/json"),
        (DisableBody = "application/x-www-form-urlencoded"),
    )),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "MFA is off"),
        (status = 400, description = "`invalid_request` (neither field) or `invalid_grant` \
            (the password or code is incorrect)", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 404, description = "`not_found`: MFA is not enabled", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn disable(
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonOrForm(body): JsonOrForm<DisableBody>,
) -> Result<HttpResponse, Error> {
    let claims = authenticate(&req, &state).await?;
    let given = match (
        body.password.filter(|p| !p.is_empty()),
        body.otp.filter(|o| !o.is_empty()),
    ) {
        (Some(password), _) => Given::Password(password),
        (None, Some(otp)) => Given::Code(otp),
        (None, None) => return Err(Error::InvalidRequest("give `password` or `otp`".into())),
    };
    let claimant = Claimant {
        client_id: claims.client_id.clone(),
        ip: client_ip(&req, &state.settings).map(|ip| ip.to_string()),
    };
    let user = blocking(&state, move |conn, _| {
        let user = sessions::token_user(conn, &claims)?;
        mfa::prepare_disable(conn, &user, crate::now())?;
        Ok(user)
    })
    .await?;
    let proof = match given {
        Given::Password(password) => {
            let checked = user.clone();
            let correct = state
                .hasher
                .run(move |hasher| crate::accounts::password::check(hasher, &checked, &password))
                .await?;
            DisableProof::Password { correct }
        }
        Given::Code(otp) => DisableProof::Code(otp.into()),
    };
    blocking(&state, move |conn, state| {
        mfa::complete_disable(
            conn,
            &state.lockout_policy(),
            &state.master_key,
            &user.id,
            proof,
            claimant,
            crate::now(),
        )
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /admin/users/{id}/mfa` (role `admin`) → 204: turns the user's MFA off, for a
/// user who lost both the authenticator and the recovery codes.
#[utoipa::path(
    delete,
    path = "/admin/users/{id}/mfa",
    tag = "admin",
    params(("id" = String, Path, description = "The user id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The user's MFA is off"),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
pub async fn admin_reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let operator = admin_operator(&req)?;
    let user_id = path.into_inner();
    blocking(&state, move |conn, _| {
        mfa::admin_reset(conn, &user_id, &operator.actor, operator.ip, crate::now())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
