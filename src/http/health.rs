//! `GET /healthz` (the process is up) and `GET /readyz` (database reachable, keys loaded).

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Error;
use crate::http::openapi::responses::{OtherError, Unavailable};
use crate::state::AppState;

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
    let pool = state.db.clone();
    let reachable = web::block(move || crate::store::reachable(&pool, READY_WAIT))
        .await
        .map_err(|e| Error::internal("blocking task failed", e))?;
    if !reachable
        || !state
            .keys
            .current()
            .can_sign_all(&state.settings.signing_algs)
    {
        return Err(Error::Unavailable);
    }
    Ok(HttpResponse::Ok().json(Status { status: "ready" }))
}

/// How long `/readyz` waits for a new database connection when the pool holds none. A load
/// balancer's check gives up after its own timeout (300 ms in `deploy/haproxy.cfg`) and
/// counts that as a failure, so the answer has to come sooner than the 3 s a request waits.
const READY_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

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
