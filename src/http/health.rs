//! `GET /healthz` (the process is up) and `GET /readyz` (database reachable, keys loaded).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::app::AppState;
use crate::error::Error;
use crate::http::blocking;

/// `GET /healthz`.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 503 `temporarily_unavailable` while the database cannot be reached.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    blocking(&state, |conn, _| {
        crate::store::ping(conn).map_err(Error::from)
    })
    .await
    .map_err(|e| match e {
        Error::Internal(_) => Error::Unavailable,
        other => other,
    })?;
    if !state.keys.current().can_sign() {
        return Err(Error::Unavailable);
    }
    Ok(HttpResponse::Ok().json(json!({ "status": "ready" })))
}

/// `GET /metrics`: Prometheus text format.
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
