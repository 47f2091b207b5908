//! `/admin/users/{id}/sessions` and `/admin/sessions/{sid}`: a user's sessions, and ending them.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::admin;
use crate::error::Error;
use crate::http::account::PageQuery;
use crate::http::error::ErrorBody;
use crate::http::openapi::responses::AdminErrors;
use crate::http::openapi::responses::NotFound;
use crate::http::wire::{Page, SessionView};
use crate::http::{admin_operator, blocking};
use crate::state::AppState;

use super::{json_ok, no_content};

/// `GET /admin/users/{id}/sessions`.
#[utoipa::path(
    get,
    path = "/admin/users/{id}/sessions",
    tag = "admin",
    params(
        ("id" = String, Path, description = "The user id"),
        PageQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the user's live sessions, newest first", body = Page<SessionView>),
        (status = 400, description = "`invalid_request`: bad `limit`, `cursor` or query string", body = ErrorBody),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
pub async fn list_user_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    admin_operator(&req)?;
    let id = path.into_inner();
    let limit = query.limit()?;
    let cursor = query.into_inner().cursor;
    let page = blocking(&state, move |conn, _| {
        admin::user_sessions(conn, &id, cursor.as_deref(), limit, crate::now())
    })
    .await?;
    Ok(json_ok(Page::of(page, |s| SessionView::new(s, None))))
}

/// `DELETE /admin/users/{id}/sessions`.
#[utoipa::path(
    delete,
    path = "/admin/users/{id}/sessions",
    tag = "admin",
    params(
        ("id" = String, Path, description = "The user id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session of the user was revoked"),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
pub async fn revoke_user_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let operator = admin_operator(&req)?;
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        admin::revoke_user_sessions(conn, &state.metrics, &id, &operator, crate::now())
    })
    .await?;
    Ok(no_content())
}

/// `DELETE /admin/sessions/{sid}`.
#[utoipa::path(
    delete,
    path = "/admin/sessions/{sid}",
    operation_id = "admin_revoke_session",
    tag = "admin",
    params(
        ("sid" = String, Path, description = "The session id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The session was revoked"),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
pub async fn revoke_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let operator = admin_operator(&req)?;
    let sid = path.into_inner();
    blocking(&state, move |conn, state| {
        admin::revoke_session(conn, &state.metrics, &sid, &operator, crate::now())
    })
    .await?;
    Ok(no_content())
}
