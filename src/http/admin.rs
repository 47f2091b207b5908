//! The admin API under `/admin`: users, sessions, clients, signing keys and the audit log,
//! for bearer tokens with the `admin` role. Handlers parse, call `crate::admin`, and answer;
//! the rules and the audit trail live there.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::accounts::{self, UserChanges};
use crate::admin::{self, AuditQuery};
use crate::app::AppState;
use crate::clients::NewClient;
use crate::error::Error;
use crate::grants::user_roles;
use crate::http::account::PageQuery;
use crate::http::extract::{client_ip, JsonBody};
use crate::http::{authenticate, blocking, require_admin, resource};
use crate::sessions;
use crate::tokens::rotation::Operator;

/// The admin routes, added to the route table by `http::configure`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/admin/users").route(web::get().to(list_users)))
        .service(
            resource("/admin/users/{id}")
                .route(web::get().to(get_user))
                .route(web::patch().to(update_user))
                .route(web::delete().to(delete_user)),
        )
        .service(
            resource("/admin/users/{id}/sessions")
                .route(web::get().to(list_user_sessions))
                .route(web::delete().to(revoke_user_sessions)),
        )
        .service(resource("/admin/sessions/{sid}").route(web::delete().to(revoke_session)))
        .service(
            resource("/admin/clients")
                .route(web::get().to(list_clients))
                .route(web::post().to(create_client)),
        )
        .service(
            resource("/admin/clients/{id}")
                .route(web::get().to(get_client))
                .route(web::delete().to(delete_client)),
        )
        .service(resource("/admin/clients/{id}/secret").route(web::post().to(rotate_client_secret)))
        .service(resource("/admin/keys").route(web::get().to(list_keys)))
        .service(resource("/admin/keys/rotate").route(web::post().to(rotate_keys)))
        .service(resource("/admin/keys/{kid}").route(web::delete().to(retire_key)))
        .service(resource("/admin/audit").route(web::get().to(list_audit)));
}

/// Authenticates an admin. The token must carry the `admin` role and the account must still
/// hold it: a role taken away takes effect at once, not when the token expires.
async fn admin(req: &HttpRequest, state: &web::Data<AppState>) -> Result<Operator, Error> {
    let claims = authenticate(req, state).await?;
    require_admin(&claims)?;
    let checked = claims.clone();
    blocking(state, move |conn, _| {
        let user = sessions::token_user(conn, &checked)?;
        if user_roles(&user).iter().any(|r| r == "admin") {
            Ok(())
        } else {
            Err(Error::Forbidden("the admin role is required".into()))
        }
    })
    .await?;
    Ok(Operator {
        actor: claims.sub,
        ip: client_ip(req, &state.settings).map(|ip| ip.to_string()),
    })
}

fn json_ok(body: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

/// `?q=&limit=&cursor=` of the user listing.
#[derive(Deserialize)]
pub struct UsersQuery {
    q: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// `GET /admin/users`.
pub async fn list_users(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<UsersQuery>,
) -> Result<HttpResponse, Error> {
    admin(&req, &state).await?;
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
    Ok(json_ok(page))
}

/// `GET /admin/users/{id}`.
pub async fn get_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    admin(&req, &state).await?;
    let id = path.into_inner();
    let user = blocking(&state, move |conn, _| admin::get_user(conn, &id)).await?;
    Ok(json_ok(user))
}

/// The `PATCH /admin/users/{id}` body; absent fields stay as they are.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatchBody {
    roles: Option<Vec<String>>,
    disabled: Option<bool>,
    attributes: Option<Map<String, Value>>,
}

/// `PATCH /admin/users/{id}`: roles, attributes, disabling (which ends every session).
pub async fn update_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(body): JsonBody<UserPatchBody>,
) -> Result<HttpResponse, Error> {
    let operator = admin(&req, &state).await?;
    let id = path.into_inner();
    let changes = UserChanges {
        roles: body.roles,
        disabled: body.disabled,
        attributes: body.attributes,
    };
    let user = blocking(&state, move |conn, _| {
        accounts::update_user(
            conn,
            &id,
            &changes,
            &operator.actor,
            operator.ip.clone(),
            crate::now(),
        )
    })
    .await?;
    Ok(json_ok(accounts::UserView::from(&user)))
}

/// `DELETE /admin/users/{id}`.
pub async fn delete_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let operator = admin(&req, &state).await?;
    let id = path.into_inner();
    blocking(&state, move |conn, _| {
        accounts::delete_user(
            conn,
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
pub async fn list_user_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    admin(&req, &state).await?;
    let id = path.into_inner();
    let limit = query.limit()?;
    let cursor = query.into_inner().cursor;
    let page = blocking(&state, move |conn, _| {
        admin::user_sessions(conn, &id, cursor.as_deref(), limit, crate::now())
    })
    .await?;
    Ok(json_ok(page))
}

/// `DELETE /admin/users/{id}/sessions`.
pub async fn revoke_user_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let operator = admin(&req, &state).await?;
    let id = path.into_inner();
    blocking(&state, move |conn, _| {
        admin::revoke_user_sessions(conn, &id, &operator, crate::now())
    })
    .await?;
    Ok(no_content())
}

/// `DELETE /admin/sessions/{sid}`.
pub async fn revoke_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let operator = admin(&req, &state).await?;
    let sid = path.into_inner();
    blocking(&state, move |conn, _| {
        admin::revoke_session(conn, &sid, &operator, crate::now())
    })
    .await?;
    Ok(no_content())
}

/// `GET /admin/clients`.
pub async fn list_clients(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    admin(&req, &state).await?;
    let limit = query.limit()?;
    let cursor = query.into_inner().cursor;
    let page = blocking(&state, move |conn, _| {
        admin::list_clients(conn, cursor.as_deref(), limit)
    })
    .await?;
    Ok(json_ok(page))
}

/// `GET /admin/clients/{id}`.
pub async fn get_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    admin(&req, &state).await?;
    let id = path.into_inner();
    let client = blocking(&state, move |conn, state| {
        admin::get_client(conn, &id, &state.settings.scopes)
    })
    .await?;
    Ok(json_ok(client))
}

/// The `POST /admin/clients` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientBody {
    client_id: Option<String>,
    public: Option<bool>,
    grant_types: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
    audience: Option<String>,
    refresh_cookie: Option<bool>,
    access_token_ttl: Option<i64>,
    refresh_token_ttl: Option<i64>,
    refresh_reuse_grace: Option<i64>,
}

/// `POST /admin/clients` → 201 with the client and, this once, its `client_secret`.
pub async fn create_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<ClientBody>,
) -> Result<HttpResponse, Error> {
    let operator = admin(&req, &state).await?;
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
    };
    let created = blocking(&state, move |conn, _| {
        admin::create_client(conn, new, &operator, crate::now())
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(created))
}

/// `DELETE /admin/clients/{id}`: its sessions end with it.
pub async fn delete_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let operator = admin(&req, &state).await?;
    let id = path.into_inner();
    blocking(&state, move |conn, _| {
        admin::delete_client(conn, &id, &operator, crate::now())
    })
    .await?;
    Ok(no_content())
}

/// `POST /admin/clients/{id}/secret` → 200 with the new secret, shown this once.
pub async fn rotate_client_secret(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let operator = admin(&req, &state).await?;
    let id = path.into_inner();
    let rotated = blocking(&state, move |conn, _| {
        admin::rotate_client_secret(conn, &id, &operator, crate::now())
    })
    .await?;
    Ok(json_ok(rotated))
}

/// `GET /admin/keys`.
pub async fn list_keys(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    admin(&req, &state).await?;
    let keys = blocking(&state, move |conn, state| {
        admin::list_keys(conn, state, crate::tokens::now_ms())
    })
    .await?;
    Ok(json_ok(json!({ "items": keys, "next_cursor": null })))
}

/// `POST /admin/keys/rotate` → the new active kid and every key's status.
pub async fn rotate_keys(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let operator = admin(&req, &state).await?;
    let (active_kid, keys) = blocking(&state, move |conn, state| {
        let kid = admin::rotate_keys(conn, state, &operator)?;
        Ok((kid, admin::list_keys(conn, state, crate::tokens::now_ms())?))
    })
    .await?;
    Ok(json_ok(json!({ "active_kid": active_kid, "items": keys })))
}

/// `DELETE /admin/keys/{kid}`: retire now (for a compromised key).
pub async fn retire_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let operator = admin(&req, &state).await?;
    let kid = path.into_inner();
    blocking(&state, move |conn, state| {
        admin::retire_key(conn, state, &kid, &operator)
    })
    .await?;
    Ok(no_content())
}

/// `?user=&type=&since=&until=&limit=&cursor=` of the audit listing.
#[derive(Deserialize)]
pub struct AuditQueryParams {
    user: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// `GET /admin/audit`, newest first.
pub async fn list_audit(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<AuditQueryParams>,
) -> Result<HttpResponse, Error> {
    admin(&req, &state).await?;
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
    Ok(json_ok(page))
}
