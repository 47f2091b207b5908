//! The admin API under `/admin`: users, sessions, clients, signing keys and the audit log,
//! for bearer tokens with the `admin` role. Handlers parse, call `crate::admin`, and answer;
//! the rules and the audit trail live there.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::accounts::{self, UserChanges};
use crate::admin::{self, AuditQuery};
use crate::clients::{ClientPatch, NewClient};
use crate::error::Error;
use crate::http::account::PageQuery;
use crate::http::error::ErrorBody;
use crate::http::extract::JsonBody;
use crate::http::openapi::responses::{
    AdminOnly, NotFound, OtherError, PayloadTooLarge, Unauthorized, Unavailable,
    UnsupportedMediaType,
};
use crate::http::wire::{
    AuditView, Client, ClientWithSecret, KeyView, Page, SessionView, UserView,
};
use crate::http::{admin_operator, blocking};
use crate::state::AppState;

fn json_ok(body: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

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
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 400, description = "`invalid_request`: bad `limit`, `cursor` or query string", body = ErrorBody),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
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
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
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
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 400, description = "`invalid_request`: unknown field, bad role, attributes over 16 KiB, malformed body", body = ErrorBody),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
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
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
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
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 400, description = "`invalid_request`: bad `limit`, `cursor` or query string", body = ErrorBody),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
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
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
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
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
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
    let operator = admin_operator(&req)?;
    let sid = path.into_inner();
    blocking(&state, move |conn, state| {
        admin::revoke_session(conn, &state.metrics, &sid, &operator, crate::now())
    })
    .await?;
    Ok(no_content())
}

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
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 400, description = "`invalid_request`: bad `limit`, `cursor` or query string", body = ErrorBody),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
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
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
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
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 400, description = "`invalid_request`: unknown field (`client_id` and `public` included), bad redirect URI, unknown grant type, malformed body", body = ErrorBody),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
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
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 400, description = "`invalid_request`: missing or bad `client_id`, unknown grant type, a `token_alg` that is not configured, unknown field, malformed body", body = ErrorBody),
        (status = 409, description = "`invalid_request`: the client id is taken (or is `first-party`)", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
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
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 400, description = "`invalid_request`: a built-in client (`first-party`, `console`) cannot be deleted", body = ErrorBody),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
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
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 400, description = "`invalid_request`: a public client has no secret", body = ErrorBody),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
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

/// `GET /admin/keys`.
#[utoipa::path(
    get,
    path = "/admin/keys",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every stored signing key, oldest first, in one page", body = Page<KeyView>),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
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
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
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
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
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
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 400, description = "`invalid_request`: bad `limit`, `cursor`, `since`/`until` or query string", body = ErrorBody),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
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
    let lookup = username.clone();
    blocking(state, move |conn, _| {
        accounts::ensure_username_free(conn, &lookup)
    })
    .await?;
    let hash = state
        .hasher
        .run(move |hasher| hasher.hash(&password))
        .await??;
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
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 400, description = "`invalid_request` (missing or bad username, bad role, unknown field, malformed body) or `weak_password`", body = ErrorBody),
        (status = 409, description = "`username_taken`", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
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
