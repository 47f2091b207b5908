//! Self-service: `POST /register`, `GET /userinfo`, `/account/sessions`,
//! `PUT /account/password`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::accounts;
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::extract::{client_ip, JsonOrForm};
use crate::http::openapi::responses::{
    NotFound, OtherError, PayloadTooLarge, RateLimited, Unauthorized, Unavailable,
    UnsupportedMediaType,
};
use crate::http::token::limit_attempts;
use crate::http::wire::{rfc3339, Page, SessionView};
use crate::http::{authenticate, blocking};
use crate::lockout::Claimant;
use crate::sessions;
use crate::state::AppState;
use crate::store::users;

/// The registration body.
#[derive(Deserialize, ToSchema)]
pub struct RegisterBody {
    /// 3–64 characters: ASCII letters, digits, `._-@`; unique case-insensitively.
    #[schema(required = true, min_length = 3, max_length = 64)]
    username: Option<String>,
    /// 8–128 characters, not a common password, not the username.
    #[schema(required = true, min_length = 8, max_length = 128, format = Password)]
    password: Option<String>,
    email: Option<String>,
}

/// The new account.
#[derive(Serialize, ToSchema)]
pub struct Registered {
    id: String,
    username: String,
    #[schema(format = DateTime)]
    created_at: String,
}

/// `POST /register` → 201 `{"id","username","created_at"}`.
#[utoipa::path(
    post,
    path = "/register",
    tag = "account",
    request_body(content(
        (RegisterBody = "application/json"),
        (RegisterBody = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 201, description = "The account was created", body = Registered),
        (status = 400, description = "`invalid_request` (missing field, bad username, \
            malformed body) or `weak_password` (saying why)", body = ErrorBody),
        (status = 403, description = "`forbidden`: registration is closed", body = ErrorBody),
        (status = 409, description = "`username_taken`", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonOrForm(body): JsonOrForm<RegisterBody>,
) -> Result<HttpResponse, Error> {
    if !state.settings.registration_open {
        return Err(Error::Forbidden("registration is closed".into()));
    }
    let ip = client_ip(&req, &state.settings);
    limit_attempts(&state, ip).await?;
    let username = body
        .username
        .ok_or_else(|| Error::InvalidRequest("missing `username`".into()))?;
    let password = body
        .password
        .ok_or_else(|| Error::InvalidRequest("missing `password`".into()))?;
    let email = body.email.filter(|e| !e.is_empty());
    accounts::check_registration(&username, &password, email.as_deref())?;
    let hash = new_account_hash(&state, &username, password).await?;
    let ip = ip.map(|ip| ip.to_string());
    let user = blocking(&state, move |conn, _| {
        accounts::register(conn, &username, &hash, email.as_deref(), ip, crate::now())
    })
    .await?;
    Ok(HttpResponse::Created().json(Registered {
        created_at: rfc3339(user.created_at),
        id: user.id,
        username: user.username,
    }))
}

/// The password hash of an account about to be created, on the hasher pool, once the cheap
/// check that `username` is free has passed (a taken name is refused before a hash is
/// spent). `POST /register` and the admin API's user creation both start here.
pub async fn new_account_hash(
    state: &web::Data<AppState>,
    username: &str,
    password: String,
) -> Result<String, Error> {
    let lookup = username.to_string();
    blocking(state, move |conn, _| {
        accounts::ensure_username_free(conn, &lookup)
    })
    .await?;
    Ok(state
        .hasher
        .run(move |hasher| hasher.hash(&password))
        .await??)
}

/// The `/userinfo` answer; members a scope does not grant are left out.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserInfo {
    /// The user id.
    sub: String,
    username: String,
    roles: Vec<String>,
    mfa_enabled: bool,
    /// Custom attributes, as in access tokens.
    #[schema(value_type = Object)]
    attributes: serde_json::Map<String, serde_json::Value>,
    /// With the `profile` scope: the username (OpenID Connect Core §5.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<String>,
    /// With the `profile` scope: when the account last changed, unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<i64>,
    /// With the `email` scope, when the user has an address.
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    /// With the `email` scope: true once the current address was proven by a mailed link
    /// (SPEC §6.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
}

impl From<crate::oidc::userinfo::UserClaims> for UserInfo {
    fn from(user: crate::oidc::userinfo::UserClaims) -> Self {
        UserInfo {
            sub: user.sub,
            username: user.username,
            roles: user.roles,
            mfa_enabled: user.mfa_enabled,
            attributes: user.attributes,
            preferred_username: user.preferred_username,
            updated_at: user.updated_at,
            email: user.email,
            email_verified: user.email_verified,
        }
    }
}

/// `GET /userinfo`: the token's user.
#[utoipa::path(
    get,
    path = "/userinfo",
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token's user", body = UserInfo,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn userinfo(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    let claims = authenticate(&req, &state).await?;
    let body = blocking(&state, move |conn, _| {
        let user = sessions::token_user(conn, &claims)?;
        let mfa_enabled = crate::mfa::is_enabled(conn, &user.id)?;
        crate::oidc::userinfo::claims(conn, &user, &claims.scope, mfa_enabled)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(UserInfo::from(body)))
}

/// `POST /userinfo`: the same, as OpenID Connect allows.
#[utoipa::path(
    post,
    path = "/userinfo",
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token's user", body = UserInfo,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn userinfo_post(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    userinfo(req, state).await
}

/// Paging parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size: default 50, at most 500.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// `limit`: default 50, at most 500.
    pub fn limit(&self) -> Result<i64, Error> {
        match self.limit {
            None => Ok(50),
            Some(n) if (1..=500).contains(&n) => Ok(n),
            Some(_) => Err(Error::InvalidRequest(
                "limit must be between 1 and 500".into(),
            )),
        }
    }
}

/// `GET /account/sessions`: the caller's live sessions, `current` marking this one.
#[utoipa::path(
    get,
    path = "/account/sessions",
    tag = "account",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of live sessions, newest first",
            body = Page<SessionView>),
        (status = 400, description = "`invalid_request`: bad `limit`, `cursor` or query string",
            body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn list_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let claims = authenticate(&req, &state).await?;
    let limit = query.limit()?;
    let cursor = query.cursor.clone();
    let current = claims.sid.clone();
    let page = blocking(&state, move |conn, _| {
        sessions::list_for_user(conn, &claims.sub, cursor.as_deref(), limit, crate::now())
    })
    .await?;
    Ok(HttpResponse::Ok().json(Page::of(page, |s| SessionView::new(s, current.as_deref()))))
}

/// `DELETE /account/sessions/{sid}`: ends one of the caller's sessions.
#[utoipa::path(
    delete,
    path = "/account/sessions/{sid}",
    tag = "account",
    params(("sid" = String, Path, description = "The session id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The session was revoked"),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn revoke_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let claims = authenticate(&req, &state).await?;
    let sid = path.into_inner();
    let ip = client_ip(&req, &state.settings).map(|ip| ip.to_string());
    blocking(&state, move |conn, state| {
        sessions::revoke_session(
            conn,
            &state.metrics,
            &sid,
            Some(&claims.sub),
            &claims.sub,
            ip,
            crate::now(),
        )
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /account/sessions`: log out everywhere, this session included.
#[utoipa::path(
    delete,
    path = "/account/sessions",
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session of the user was revoked"),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn revoke_all_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let claims = authenticate(&req, &state).await?;
    let ip = client_ip(&req, &state.settings).map(|ip| ip.to_string());
    blocking(&state, move |conn, state| {
        sessions::revoke_all_sessions(
            conn,
            &state.metrics,
            &claims.sub,
            None,
            &claims.sub,
            ip,
            crate::now(),
        )
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The password change body.
#[derive(Deserialize, ToSchema)]
pub struct PasswordBody {
    #[schema(required = true, format = Password)]
    current_password: Option<String>,
    /// Under the registration policy.
    #[schema(required = true, min_length = 8, max_length = 128, format = Password)]
    new_password: Option<String>,
}

/// `PUT /account/password`: checks the current password and the policy, then revokes every
/// other session.
#[utoipa::path(
    put,
    path = "/account/password",
    tag = "account",
    request_body(content(
        (PasswordBody = "application/json"),
        (PasswordBody = "application/x-www-form-urlencoded"),
    )),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed; every other session was revoked"),
        (status = 400, description = "`invalid_request` (missing field, malformed body), \
            `weak_password` (saying why) or `invalid_grant` (current password is incorrect)",
            body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonOrForm(body): JsonOrForm<PasswordBody>,
) -> Result<HttpResponse, Error> {
    let claims = authenticate(&req, &state).await?;
    let current = body
        .current_password
        .ok_or_else(|| Error::InvalidRequest("missing `current_password`".into()))?;
    let new_password = body
        .new_password
        .ok_or_else(|| Error::InvalidRequest("missing `new_password`".into()))?;
    let lookup = claims.clone();
    let user = blocking(&state, move |conn, _| sessions::token_user(conn, &lookup)).await?;
    let ip = client_ip(&req, &state.settings).map(|ip| ip.to_string());
    let keep = claims.sid.clone();
    let claimant = Claimant {
        client_id: claims.client_id,
        ip,
    };
    change_password_of(&state, user, current, new_password, keep, claimant).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A signed-in user's password change, for the JSON API and the account page alike, in
/// the steps of [`accounts::password`]: checked and hashed on the hasher's pool, decided on
/// the database's; the change ends every session but `keep`.
pub async fn change_password_of(
    state: &web::Data<AppState>,
    user: users::User,
    current: String,
    new_password: String,
    keep: Option<String>,
    claimant: Claimant,
) -> Result<(), Error> {
    let change = accounts::password::prepare_change(user, new_password, crate::now())?;
    let (change, verdict) = state
        .hasher
        .run(move |hasher| {
            let verdict = accounts::password::check_change(hasher, &change, &current);
            (change, verdict)
        })
        .await?;
    let verdict = verdict?;
    blocking(state, move |conn, state| {
        accounts::password::complete_change(
            conn,
            &state.lockout_policy(),
            change,
            verdict,
            keep.as_deref(),
            claimant,
            crate::now(),
        )
        .map(|_| ())
    })
    .await
}

/// Checks a signed-in user's password again, in the steps of [`accounts::password`]: a
/// locked account is refused first (429), a wrong password counts toward the lock
/// (`invalid_grant`).
pub async fn check_password_of(
    state: &web::Data<AppState>,
    user: &users::User,
    password: String,
    claimant: Claimant,
) -> Result<(), Error> {
    accounts::password::prepare_check(user, crate::now())?;
    let checked = user.clone();
    let correct = state
        .hasher
        .run(move |hasher| accounts::password::check(hasher, &checked, &password))
        .await?;
    let user_id = user.id.clone();
    blocking(state, move |conn, state| {
        accounts::password::complete_check(
            conn,
            &state.lockout_policy(),
            &user_id,
            correct,
            claimant,
            crate::now(),
        )
    })
    .await
}
