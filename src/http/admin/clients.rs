//! `/admin/clients`: OAuth clients, their settings and secrets.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::admin;
use crate::clients::{ClientPatch, NewClient};
use crate::error::Error;
use crate::http::account::PageQuery;
use crate::http::error::ErrorBody;
use crate::http::extract::JsonBody;
use crate::http::openapi::responses::AdminErrors;
use crate::http::openapi::responses::{NotFound, PayloadTooLarge, UnsupportedMediaType};
use crate::http::wire::{Client, ClientWithSecret, Page};
use crate::http::{admin_operator, blocking};
use crate::state::AppState;

use super::{json_ok, no_content};

/// `GET /admin/clients`.
#[utoipa::path(
    get,
    path = "/admin/clients",
    tag = "admin",
    params(
        PageQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of clients, by id: the stored ones and the built-in `console` (the built-in `first-party` client is not listed)", body = Page<Client>),
        (status = 400, description = "`invalid_request`: bad `limit`, `cursor` or query string", body = ErrorBody),
        AdminErrors,
    ),
)]
pub async fn list_clients(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    admin_operator(&req)?;
    let limit = query.limit()?;
    let cursor = query.into_inner().cursor;
    let page = blocking(&state, move |conn, state| {
        admin::list_clients_with_console(conn, &state.settings.issuer, cursor.as_deref(), limit)
    })
    .await?;
    Ok(json_ok(Page::of(page, Client::from)))
}

/// `GET /admin/clients/{id}`.
#[utoipa::path(
    get,
    path = "/admin/clients/{id}",
    tag = "admin",
    params(
        ("id" = String, Path, description = "The client id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The client (`first-party` included)", body = Client),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
pub async fn get_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    admin_operator(&req)?;
    let id = path.into_inner();
    let client = blocking(&state, move |conn, state| {
        admin::get_client(conn, &id, &state.settings.scopes)
    })
    .await?;
    Ok(json_ok(Client::from(crate::clients::with_issuer(
        client,
        &state.settings.issuer,
    ))))
}

/// The `POST /admin/clients` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientBody {
    /// 1–128 characters: letters, digits, `._-:@`.
    #[schema(required = true)]
    client_id: Option<String>,
    /// Default false (confidential, with a secret).
    public: Option<bool>,
    /// Allowed grant types.
    grant_types: Option<Vec<String>>,
    /// Allowed scopes.
    scopes: Option<Vec<String>>,
    /// The `aud` of its access tokens; default `TESSERA_AUDIENCE`.
    audience: Option<String>,
    /// Deliver the refresh token as the `tessera_refresh` cookie.
    refresh_cookie: Option<bool>,
    /// Seconds.
    access_token_ttl: Option<i64>,
    /// Seconds.
    refresh_token_ttl: Option<i64>,
    /// Seconds during which a just-spent refresh token returns the same successor.
    refresh_reuse_grace: Option<i64>,
    /// The algorithm that signs its tokens, one of `TESSERA_SIGNING_ALGS`; default RS256.
    token_alg: Option<String>,
    /// The name users see on the consent page.
    name: Option<String>,
    /// Redirect URIs of the authorization code flow: `https://`, `http://` on a loopback
    /// host (any port for an IP literal), or a private-use scheme; never a fragment.
    redirect_uris: Option<Vec<String>>,
    /// Where the browser may go after signing out; the same rules.
    post_logout_redirect_uris: Option<Vec<String>>,
    /// Default false: third-party clients get a consent page.
    first_party: Option<bool>,
    /// The same rules as a redirect URI.
    backchannel_logout_uri: Option<String>,
}

/// Deserializes a field that may be absent (leave it), null (clear it) or a value.
fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The `PATCH /admin/clients/{id}` body: absent fields stay as they are; `null` clears an
/// optional one. `client_id` and `public` cannot change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatchBody {
    grant_types: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    audience: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    access_token_ttl: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    refresh_token_ttl: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    refresh_reuse_grace: Option<Option<i64>>,
    refresh_cookie: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    name: Option<Option<String>>,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
    first_party: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    backchannel_logout_uri: Option<Option<String>>,
    /// One of `TESSERA_SIGNING_ALGS`; `null` goes back to the default, RS256.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    token_alg: Option<Option<String>>,
}

/// `PATCH /admin/clients/{id}`: a partial update of any field but `client_id` and `public`.
#[utoipa::path(
    patch,
    path = "/admin/clients/{id}",
    tag = "admin",
    params(
        ("id" = String, Path, description = "The client id"),
    ),
    request_body(content = ClientPatchBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated client", body = Client),
        (status = 400, description = "`invalid_request`: unknown field (`client_id` and `public` included), bad redirect URI, unknown grant type, malformed body", body = ErrorBody),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        AdminErrors,
    ),
)]
pub async fn update_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(body): JsonBody<ClientPatchBody>,
) -> Result<HttpResponse, Error> {
    let operator = admin_operator(&req)?;
    let id = path.into_inner();
    let patch = ClientPatch {
        grant_types: body.grant_types,
        scopes: body.scopes,
        audience: body.audience,
        access_token_ttl: body.access_token_ttl,
        refresh_token_ttl: body.refresh_token_ttl,
        refresh_reuse_grace: body.refresh_reuse_grace,
        refresh_cookie: body.refresh_cookie,
        name: body.name,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        first_party: body.first_party,
        backchannel_logout_uri: body.backchannel_logout_uri,
        token_alg: body.token_alg,
    };
    if let Some(alg) = &patch.token_alg {
        crate::clients::check_token_alg(alg.as_deref(), &state.settings.signing_algs)?;
    }
    let client = blocking(&state, move |conn, _| {
        admin::update_client(conn, &id, patch, &operator, crate::now())
    })
    .await;
    // Changed or not, this instance stops trusting its cached clients now.
    state.client_cache.invalidate();
    let client = client?;
    Ok(json_ok(Client::from(client)))
}

/// `POST /admin/clients` → 201 with the client and, this once, its `client_secret`.
#[utoipa::path(
    post,
    path = "/admin/clients",
    tag = "admin",
    request_body(content = ClientBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The client and, this once, its `client_secret` (null for a public client)", body = ClientWithSecret, headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`invalid_request`: missing or bad `client_id`, unknown grant type, a `token_alg` that is not configured, unknown field, malformed body", body = ErrorBody),
        (status = 409, description = "`invalid_request`: the client id is taken (or is `first-party`)", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        AdminErrors,
    ),
)]
pub async fn create_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<ClientBody>,
) -> Result<HttpResponse, Error> {
    let operator = admin_operator(&req)?;
    let client_id = body
        .client_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Error::InvalidRequest("missing `client_id`".into()))?;
    let new = NewClient {
        client_id,
        public: body.public.unwrap_or(false),
        grant_types: body.grant_types,
        scopes: body.scopes,
        audience: body.audience,
        access_token_ttl: body.access_token_ttl,
        refresh_token_ttl: body.refresh_token_ttl,
        refresh_reuse_grace: body.refresh_reuse_grace,
        refresh_cookie: body.refresh_cookie.unwrap_or(false),
        token_alg: body.token_alg,
        name: body.name,
        redirect_uris: body.redirect_uris.unwrap_or_default(),
        post_logout_redirect_uris: body.post_logout_redirect_uris.unwrap_or_default(),
        first_party: body.first_party.unwrap_or(false),
        backchannel_logout_uri: body.backchannel_logout_uri,
    };
    crate::clients::check_token_alg(new.token_alg.as_deref(), &state.settings.signing_algs)?;
    let created = blocking(&state, move |conn, _| {
        admin::create_client(conn, new, &operator, crate::now())
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ClientWithSecret::from(created)))
}

/// `DELETE /admin/clients/{id}`: its sessions end with it.
#[utoipa::path(
    delete,
    path = "/admin/clients/{id}",
    tag = "admin",
    params(
        ("id" = String, Path, description = "The client id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The client and its sessions are gone"),
        (status = 404, response = NotFound),
        (status = 400, description = "`invalid_request`: a built-in client (`first-party`, `console`) cannot be deleted", body = ErrorBody),
        AdminErrors,
    ),
)]
pub async fn delete_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let operator = admin_operator(&req)?;
    let id = path.into_inner();
    let deleted = blocking(&state, move |conn, state| {
        admin::delete_client(conn, &state.metrics, &id, &operator, crate::now())
    })
    .await;
    state.client_cache.invalidate();
    deleted?;
    Ok(no_content())
}

/// `POST /admin/clients/{id}/secret` → 200 with the new secret, shown this once.
#[utoipa::path(
    post,
    path = "/admin/clients/{id}/secret",
    tag = "admin",
    params(
        ("id" = String, Path, description = "The client id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The client with its new secret, shown this once; the old one stops working", body = ClientWithSecret, headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`invalid_request`: a public client has no secret", body = ErrorBody),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
pub async fn rotate_client_secret(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let operator = admin_operator(&req)?;
    let id = path.into_inner();
    let rotated = blocking(&state, move |conn, _| {
        admin::rotate_client_secret(conn, &id, &operator, crate::now())
    })
    .await;
    state.client_cache.invalidate();
    let rotated = rotated?;
    Ok(json_ok(ClientWithSecret::from(rotated)))
}
