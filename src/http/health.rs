//! `GET /healthz` (the process is up) and `GET /readyz` (database reachable, keys loaded).

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::Error;
use crate::http::blocking;
use crate::http::openapi::responses::{OtherError, Unavailable};

/// `{"status":"ok"}` or `{"status":"ready"}`.
#[derive(Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "ok")]
    status: &'static str,
}

/// `GET /healthz`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "The process is up", body = Status,
            example = json!({"status": "ok"})),
        (status = "default", response = OtherError),
    ),
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// `GET /readyz`: 503 `temporarily_unavailable` while the database cannot be reached.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The database is reachable and a signing key is loaded",
            body = Status, example = json!({"status": "ready"})),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    blocking(&state, |conn, _| {
        crate::store::ping(conn).map_err(Error::from)
    })
    .await
    .map_err(|e| match e {
        Error::Internal(_) => Error::Unavailable,
        other => other,
    })?;
    if !state
        .keys
        .current()
        .can_sign_all(&state.settings.signing_algs)
    {
        return Err(Error::Unavailable);
    }
    Ok(HttpResponse::Ok().json(Status { status: "ready" }))
}

/// `GET /metrics`: Prometheus text format. With `TESSERA_MANAGEMENT_LISTEN` set it is served
/// on that listener only, and answers 404 on the public one.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition format", body = String,
            content_type = "text/plain; version=0.0.4"),
        (status = "default", response = OtherError),
    ),
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.db.state();
    let body = state.metrics.render(
        state.keys.active_since(),
        crate::tokens::now_ms(),
        pool.connections,
        pool.idle_connections,
    );
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}
