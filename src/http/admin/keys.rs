//! `/admin/keys`: the signing keys, rotation and retirement.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::admin;
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::openapi::responses::AdminErrors;
use crate::http::openapi::responses::NotFound;
use crate::http::wire::{KeyView, Page};
use crate::http::{admin_operator, blocking};
use crate::state::AppState;

use super::{json_ok, no_content};

/// `GET /admin/keys`.
#[utoipa::path(
    get,
    path = "/admin/keys",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every stored signing key, oldest first, in one page", body = Page<KeyView>),
        AdminErrors,
    ),
)]
pub async fn list_keys(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    admin_operator(&req)?;
    let keys = blocking(&state, move |conn, state| {
        admin::list_keys(conn, &state.key_policy, crate::tokens::now_ms())
    })
    .await?;
    Ok(json_ok(Page::whole(
        keys.into_iter().map(KeyView::from).collect(),
    )))
}

/// The answer of a rotation.
#[derive(Serialize, ToSchema)]
pub struct KeysRotated {
    /// The new active RS256 key, or with `?alg=` the rotated algorithm's.
    active_kid: String,
    /// The new active key of each rotated algorithm, by `alg`.
    active_kids: std::collections::BTreeMap<String, String>,
    /// Every stored key, oldest first.
    items: Vec<KeyView>,
}

/// `POST /admin/keys/rotate`'s query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RotateQuery {
    /// Rotate only this configured algorithm (`RS256`, `ES256`, `EdDSA`); default: all.
    alg: Option<String>,
}

/// `POST /admin/keys/rotate` → the new active kids and every key's status.
#[utoipa::path(
    post,
    path = "/admin/keys/rotate",
    tag = "admin",
    params(RotateQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The staged (or a new) key of each rotated algorithm is active now and a fresh key is staged", body = KeysRotated),
        (status = 400, description = "`invalid_request`: `alg` is not a configured signing algorithm", body = ErrorBody),
        AdminErrors,
    ),
)]
pub async fn rotate_keys(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<RotateQuery>,
) -> Result<HttpResponse, Error> {
    let operator = admin_operator(&req)?;
    let alg = admin::configured_alg(
        &state.settings.signing_algs,
        query.into_inner().alg.as_deref(),
    )?;
    let (rotated, keys) = blocking(&state, move |conn, state| {
        let rotated = admin::rotate_keys(conn, state.signing_keys(), &operator, alg)?;
        Ok((
            rotated,
            admin::list_keys(conn, &state.key_policy, crate::tokens::now_ms())?,
        ))
    })
    .await?;
    let active_kid = rotated
        .iter()
        .find(|(alg, _)| *alg == crate::tokens::algs::SigningAlg::Rs256)
        .or(rotated.first())
        .map(|(_, kid)| kid.clone())
        .unwrap_or_default();
    Ok(json_ok(KeysRotated {
        active_kid,
        active_kids: rotated
            .into_iter()
            .map(|(alg, kid)| (alg.as_str().to_string(), kid))
            .collect(),
        items: keys.into_iter().map(KeyView::from).collect(),
    }))
}

/// `DELETE /admin/keys/{kid}`: retire now (for a compromised key).
#[utoipa::path(
    delete,
    path = "/admin/keys/{kid}",
    tag = "admin",
    params(
        ("kid" = String, Path, description = "The key id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The key left the JWKS and verifies nothing more (retiring the active key rotates first)"),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
pub async fn retire_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let operator = admin_operator(&req)?;
    let kid = path.into_inner();
    blocking(&state, move |conn, state| {
        admin::retire_key(conn, state.signing_keys(), &kid, &operator)
    })
    .await?;
    Ok(no_content())
}
