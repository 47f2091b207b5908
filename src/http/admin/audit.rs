//! `/admin/audit`: the audit log, filtered and paged.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::admin::{self, AuditQuery};
use crate::error::Error;
use crate::http::account::PageQuery;
use crate::http::error::ErrorBody;
use crate::http::openapi::responses::AdminErrors;
use crate::http::wire::{AuditView, Page};
use crate::http::{admin_operator, blocking};
use crate::state::AppState;

use super::json_ok;

/// `?user=&type=&since=&until=&limit=&cursor=` of the audit listing.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQueryParams {
    /// Events about this user id.
    user: Option<String>,
    /// Events of this type (e.g. `login_failed`).
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// From this instant on: unix seconds or RFC 3339.
    since: Option<String>,
    /// Up to this instant: unix seconds or RFC 3339.
    until: Option<String>,
    /// Page size: default 50, at most 500.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// `GET /admin/audit`, newest first.
#[utoipa::path(
    get,
    path = "/admin/audit",
    tag = "admin",
    params(
        AuditQueryParams,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of audit events, newest first", body = Page<AuditView>),
        (status = 400, description = "`invalid_request`: bad `limit`, `cursor`, `since`/`until` or query string", body = ErrorBody),
        AdminErrors,
    ),
)]
pub async fn list_audit(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<AuditQueryParams>,
) -> Result<HttpResponse, Error> {
    admin_operator(&req)?;
    let params = query.into_inner();
    let limit = PageQuery {
        limit: params.limit,
        cursor: None,
    }
    .limit()?;
    let filter = AuditQuery {
        user_id: params.user.filter(|s| !s.is_empty()),
        event_type: params.event_type.filter(|s| !s.is_empty()),
        since: params
            .since
            .as_deref()
            .map(admin::parse_instant)
            .transpose()?,
        until: params
            .until
            .as_deref()
            .map(admin::parse_instant)
            .transpose()?,
    };
    let cursor = params.cursor.filter(|s| !s.is_empty());
    let page = blocking(&state, move |conn, _| {
        admin::list_audit(conn, filter, cursor.as_deref(), limit)
    })
    .await?;
    Ok(json_ok(Page::of(page, AuditView::from)))
}
