//! `/admin/users`: listing, reading, creating, changing and deleting users.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::accounts::{self, UserChanges};
use crate::admin;
use crate::error::Error;
use crate::http::account::PageQuery;
use crate::http::error::ErrorBody;
use crate::http::extract::JsonBody;
use crate::http::openapi::responses::AdminErrors;
use crate::http::openapi::responses::{NotFound, PayloadTooLarge, UnsupportedMediaType};
use crate::http::wire::{Page, UserView};
use crate::http::{admin_operator, blocking};
use crate::state::AppState;

use super::{json_ok, no_content};

/// `?q=&limit=&cursor=` of the user listing.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// Search in usernames and emails.
    q: Option<String>,
    /// Page size: default 50, at most 500.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// `GET /admin/users`.
#[utoipa::path(
    get,
    path = "/admin/users",
    tag = "admin",
    params(
        UsersQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of users, by username", body = Page<UserView>),
        (status = 400, description = "`invalid_request`: bad `limit`, `cursor` or query string", body = ErrorBody),
        AdminErrors,
    ),
)]
pub async fn list_users(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<UsersQuery>,
) -> Result<HttpResponse, Error> {
    admin_operator(&req)?;
    let UsersQuery { q, limit, cursor } = query.into_inner();
    let limit = PageQuery {
        limit,
        cursor: None,
    }
    .limit()?;
    let page = blocking(&state, move |conn, _| {
        admin::list_users(conn, q.as_deref(), cursor.as_deref(), limit)
    })
    .await?;
    Ok(json_ok(Page::of(page, UserView::from)))
}

/// `GET /admin/users/{id}`.
#[utoipa::path(
    get,
    path = "/admin/users/{id}",
    tag = "admin",
    params(
        ("id" = String, Path, description = "The user id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
pub async fn get_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    admin_operator(&req)?;
    let id = path.into_inner();
    let user = blocking(&state, move |conn, _| admin::get_user(conn, &id)).await?;
    Ok(json_ok(UserView::from(user)))
}

/// The `PATCH /admin/users/{id}` body; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatchBody {
    /// Replaces the user's roles.
    roles: Option<Vec<String>>,
    /// Disabling ends every session of the user.
    disabled: Option<bool>,
    /// Replaces the custom attributes (at most 16 KiB of JSON).
    #[schema(value_type = Option<Object>)]
    attributes: Option<Map<String, Value>>,
}

/// `PATCH /admin/users/{id}`: roles, attributes, disabling (which ends every session).
#[utoipa::path(
    patch,
    path = "/admin/users/{id}",
    tag = "admin",
    params(
        ("id" = String, Path, description = "The user id"),
    ),
    request_body(content = UserPatchBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated user", body = UserView),
        (status = 400, description = "`invalid_request`: unknown field, bad role, attributes over 16 KiB, malformed body", body = ErrorBody),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        AdminErrors,
    ),
)]
pub async fn update_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(body): JsonBody<UserPatchBody>,
) -> Result<HttpResponse, Error> {
    let operator = admin_operator(&req)?;
    let id = path.into_inner();
    let changes = UserChanges {
        roles: body.roles,
        disabled: body.disabled,
        attributes: body.attributes,
    };
    let user = blocking(&state, move |conn, state| {
        accounts::update_user(
            conn,
            &state.metrics,
            &id,
            &changes,
            &operator.actor,
            operator.ip.clone(),
            crate::now(),
        )
    })
    .await?;
    Ok(json_ok(UserView::from(user)))
}

/// `DELETE /admin/users/{id}`.
#[utoipa::path(
    delete,
    path = "/admin/users/{id}",
    tag = "admin",
    params(
        ("id" = String, Path, description = "The user id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The user and their sessions are gone"),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
pub async fn delete_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let operator = admin_operator(&req)?;
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        accounts::delete_user(
            conn,
            &state.metrics,
            &id,
            &operator.actor,
            operator.ip.clone(),
            crate::now(),
        )
    })
    .await?;
    Ok(no_content())
}

/// The `POST /admin/users` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    /// 3–64 characters: letters, digits, `._-@`; unique case-insensitively.
    #[schema(required = true)]
    username: Option<String>,
    /// The registration policy applies (8–128 characters, not common, not the username).
    #[schema(required = true, format = Password)]
    password: Option<String>,
    email: Option<String>,
    /// Default: none.
    roles: Option<Vec<String>>,
}

/// Creates a user as `operator` under the registration rules: the policy, argon2 on the
/// hasher pool, then `admin::create_user` (audited with the operator as actor). The admin
/// API and the console both create users here.
pub async fn create_user_as(
    state: &web::Data<AppState>,
    operator: crate::tokens::rotation::Operator,
    username: String,
    password: String,
    email: Option<String>,
    roles: Vec<String>,
) -> Result<crate::store::users::User, Error> {
    accounts::check_registration(&username, &password, email.as_deref())?;
    accounts::check_roles(&roles)?;
    let hash = crate::http::account::new_account_hash(state, &username, password).await?;
    blocking(state, move |conn, _| {
        admin::create_user(
            conn,
            &username,
            &hash,
            email.as_deref(),
            &roles,
            &operator,
            crate::now(),
        )
    })
    .await
}

/// `POST /admin/users` → 201 with the new user.
#[utoipa::path(
    post,
    path = "/admin/users",
    tag = "admin",
    request_body(content = NewUserBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new user", body = UserView),
        (status = 400, description = "`invalid_request` (missing or bad username, bad role, unknown field, malformed body) or `weak_password`", body = ErrorBody),
        (status = 409, description = "`username_taken`", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        AdminErrors,
    ),
)]
pub async fn create_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<NewUserBody>,
) -> Result<HttpResponse, Error> {
    let operator = admin_operator(&req)?;
    let username = body
        .username
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Error::InvalidRequest("missing `username`".into()))?;
    let password = body
        .password
        .ok_or_else(|| Error::InvalidRequest("missing `password`".into()))?;
    let email = body.email.filter(|e| !e.is_empty());
    let roles = body.roles.unwrap_or_default();
    let user = create_user_as(&state, operator, username, password, email, roles).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(UserView::from(user)))
}
