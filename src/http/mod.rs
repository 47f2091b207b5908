//! HTTP: the only module that knows actix-web. The route table, the server, and the helpers
//! handlers share (blocking database work, bearer authentication).

pub mod account;
pub mod admin;
pub mod browser;
pub mod console;
pub mod cookies;
pub mod email;
pub mod error;
pub mod extract;
pub mod health;
pub mod metadata;
pub mod mfa;
pub mod openapi;
pub mod pages;
pub mod revocations;
pub mod token;
pub mod wire;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Condition, Logger, Next};
use actix_web::{web, App, HttpMessage, HttpRequest, HttpResponse, HttpServer};

use crate::error::Error;
use crate::http::error::HttpError;
use crate::sessions::{check_live, token_error, verify_access};
use crate::state::AppState;
use crate::store::DbConnection;
use crate::tokens::claims::AccessClaims;
use crate::tokens::keyring::VerifyError;
use crate::tokens::rotation::Operator;

/// Runs `work` with a pooled connection on a blocking thread: database calls never run on
/// the async workers.
pub async fn blocking<T, F>(state: &web::Data<AppState>, work: F) -> Result<T, Error>
where
    F: FnOnce(&mut DbConnection, &AppState) -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    let state = state.clone().into_inner();
    web::block(move || {
        let mut conn = state.db.get()?;
        crate::outbox::take_enqueued();
        let result = work(&mut conn, &state);
        if matches!(result, Err(Error::Unavailable)) {
            conn.mark_suspect();
        }
        // Whatever `work` enqueued is committed by now (its transaction ended inside it), or
        // rolled back; an error may follow a commit (a reused refresh token ends its session,
        // then is refused), so the workers are woken either way.
        if crate::outbox::take_enqueued() {
            state.outbox.wake();
        }
        result
    })
    .await
    .map_err(|e| Error::internal("blocking task failed", e))?
}

/// Verifies the request's bearer access token and checks that it is neither deny-listed nor
/// from a revoked session.
pub async fn authenticate(
    req: &HttpRequest,
    state: &web::Data<AppState>,
) -> Result<AccessClaims, Error> {
    let token = extract::bearer_token(req)?;
    authenticate_token(state, token).await
}

/// [`authenticate`] for an access token the server holds itself rather than one from an
/// `Authorization` header (the admin console's, kept in its sealed cookie).
pub async fn authenticate_token(
    state: &web::Data<AppState>,
    token: String,
) -> Result<AccessClaims, Error> {
    let claims = match verify_access(None, &state.keys, &token) {
        Ok(claims) => claims,
        Err(VerifyError::UnknownKid) => {
            blocking(state, move |conn, state| {
                verify_access(Some(conn), &state.keys, &token).map_err(token_error)
            })
            .await?
        }
        Err(e) => return Err(token_error(e)),
    };
    let checked = claims.clone();
    blocking(state, move |conn, _| {
        check_live(conn, &checked, crate::now())
    })
    .await?;
    Ok(claims)
}

/// The one admin authorization, which the route table puts in front of every `/admin`
/// route (before any body is read, so a refusal is the same whatever is sent): a live access
/// token whose account still exists, is not disabled and holds `admin` now. The token's
/// `roles` claim is not trusted, so a role taken away takes effect at once, not when the
/// token expires.
async fn admin_only(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        let error = Error::bug("admin authorization", "no application state");
        return Ok(req.error_response(error).map_into_right_body());
    };
    match authorize_admin(req.request(), &state).await {
        Ok(operator) => {
            req.extensions_mut().insert(operator);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(error) => Ok(req.error_response(error).map_into_right_body()),
    }
}

async fn authorize_admin(
    req: &HttpRequest,
    state: &web::Data<AppState>,
) -> Result<Operator, Error> {
    let claims = authenticate(req, state).await?;
    admin_authority(req, state, claims).await
}

/// The admin check of [`admin_only`] ([`crate::sessions::authorize_admin`]) for an
/// authenticated access token, and the operator it makes. The admin console runs it before
/// each of its pages and actions, so both see the same authority.
pub async fn admin_authority(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    claims: AccessClaims,
) -> Result<Operator, Error> {
    let checked = claims.clone();
    blocking(state, move |conn, _| {
        crate::sessions::authorize_admin(conn, &checked)
    })
    .await?;
    Ok(Operator {
        actor: claims.sub,
        ip: extract::client_ip(req, &state.settings).map(|ip| ip.to_string()),
    })
}

/// The admin that [`admin_only`] authorized for this request. An `/admin` handler's first
/// call; it fails closed should a handler ever be reached without the check.
pub fn admin_operator(req: &HttpRequest) -> Result<Operator, Error> {
    req.extensions().get::<Operator>().cloned().ok_or_else(|| {
        Error::bug(
            "admin authorization",
            "an admin handler was reached without the admin check",
        )
    })
}

async fn not_found() -> Result<HttpResponse, Error> {
    Err(Error::NotFound("no such endpoint".into()))
}

async fn method_not_allowed() -> Result<HttpResponse, HttpError> {
    Err(HttpError::MethodNotAllowed)
}

/// Whether `path` is one of the admin API's, which [`admin_only`] guards.
pub fn is_admin_path(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

/// A resource whose wrong methods answer 405 in the contract's error shape.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// Declares the route table once: `configure` registers it with actix, and `ROUTES` lists
/// its (method, path) pairs so that a test can hold `/openapi.json` to exactly these routes.
macro_rules! route_table {
    ($($path:literal { $($method:ident => $handler:path),+ $(,)? })*) => {
        /// Every (method, path) the server answers; methods lower-case, as OpenAPI writes them.
        pub const ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path),)+)*];

        /// The routes of the table whose path `keep` accepts (the rest answer 404 like
        /// unknown paths). Every `/admin` resource is wrapped in [`admin_only`], so no admin
        /// route can be added without the admin check.
        pub fn configure(cfg: &mut web::ServiceConfig, keep: impl Fn(&str) -> bool) {
            $(if keep($path) {
                let resource = resource($path)$(.route(web::$method().to($handler)))+;
                if is_admin_path($path) {
                    cfg.service(resource.wrap(actix_web::middleware::from_fn(admin_only)));
                } else {
                    cfg.service(resource);
                }
            })*
        }
    };
}

/// The paths the management listener (`TESSERA_MANAGEMENT_LISTEN`) serves.
pub const MANAGEMENT_PATHS: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// What leaves the public listener when a management listener is set: the metrics tell how
/// many logins fail and which routes are hit, which is for the monitoring network only.
/// The probes stay on both, for load balancers that can only reach the public port.
const MANAGEMENT_ONLY_PATHS: &[&str] = &["/metrics"];

/// Counts a failed client authentication toward the client address's allowance
/// (`TESSERA_LOGIN_RATE_LIMIT`), and answers 429 instead once it is spent. It wraps the
/// whole application, so every endpoint that authenticates clients (and answers
/// `invalid_client` when that fails) is covered, including endpoints added later.
async fn limit_client_failures(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let response = next.call(req).await?;
    let failed = response.response().error().is_some_and(|e| {
        let domain = e.as_error::<Error>().or(match e.as_error::<HttpError>() {
            Some(HttpError::Domain(error)) => Some(error),
            _ => None,
        });
        matches!(domain, Some(Error::InvalidClient(_)))
    });
    let Some(state) = response
        .request()
        .app_data::<web::Data<AppState>>()
        .filter(|_| failed)
        .cloned()
    else {
        return Ok(response.map_into_left_body());
    };
    let ip = extract::client_ip(response.request(), &state.settings);
    match token::limit_attempts(&state, ip).await {
        Ok(()) => Ok(response.map_into_left_body()),
        Err(limited) => {
            let (request, _) = response.into_parts();
            let answer = HttpResponse::from_error(limited);
            Ok(ServiceResponse::new(request, answer).map_into_right_body())
        }
    }
}

route_table! {
    "/healthz" { get => health::healthz }
    "/metrics" { get => health::metrics }
    "/readyz" { get => health::readyz }
    "/openapi.json" { get => openapi::document }
    "/.well-known/oauth-authorization-server" { get => metadata::discovery }
    "/.well-known/openid-configuration" { get => metadata::openid_configuration }
    "/.well-known/jwks.json" { get => metadata::jwks }
    "/oauth/authorize" { get => pages::authorize::authorize }
    "/oauth/token" { post => token::issue_token }
    "/oauth/revoke" { post => token::revoke }
    "/oauth/introspect" { post => token::introspect }
    "/revocations" { get => revocations::revocations }
    "/register" { post => account::register }
    "/userinfo" { get => account::userinfo, post => account::userinfo_post }
    "/account/sessions" {
        get => account::list_sessions,
        delete => account::revoke_all_sessions,
    }
    "/account/sessions/{sid}" { delete => account::revoke_session }
    "/account/password" { put => account::change_password }
    "/account/email" { put => email::change_email }
    "/account/email/verify" { post => email::request_verification }
    "/email/verify" { get => pages::recovery::verify_email }
    "/password/forgot" {
        get => pages::recovery::forgot_form,
        post => email::forgot_password,
    }
    "/password/reset" {
        get => pages::recovery::reset_form,
        post => email::reset_password,
    }
    "/account/consents" { get => pages::account::list_consents }
    "/account/consents/{client_id}" { delete => pages::account::withdraw_consent }
    "/account" { get => pages::account::account, post => pages::account::account_action }
    "/login" { get => pages::login::login_form, post => pages::login::login }
    "/signup" { get => pages::login::signup_form, post => pages::login::signup }
    "/logout" { post => pages::login::logout }
    "/oauth/logout" {
        get => pages::end_session::logout_get,
        post => pages::end_session::logout_post,
    }
    "/consent" { post => pages::authorize::consent }
    "/assets/tessera.css" { get => pages::stylesheet }
    "/assets/console.css" { get => console::stylesheet }
    "/console" { get => console::overview }
    "/console/callback" { get => console::callback }
    "/console/logout" { post => console::logout }
    "/console/users" { get => console::users::list, post => console::users::create }
    "/console/users/{id}" { get => console::users::show, post => console::users::act }
    "/console/clients" { get => console::clients::list, post => console::clients::create }
    "/console/clients/{id}" { post => console::clients::act }
    "/console/keys" { get => console::keys::list, post => console::keys::act }
    "/console/audit" { get => console::audit::list }
    "/account/mfa/totp" { post => mfa::enrol, delete => mfa::disable }
    "/account/mfa/totp/confirm" { post => mfa::confirm }
    "/admin/users" { get => admin::list_users, post => admin::create_user }
    "/admin/users/{id}" {
        get => admin::get_user,
        patch => admin::update_user,
        delete => admin::delete_user,
    }
    "/admin/users/{id}/sessions" {
        get => admin::list_user_sessions,
        delete => admin::revoke_user_sessions,
    }
    "/admin/users/{id}/mfa" { delete => mfa::admin_reset }
    "/admin/sessions/{sid}" { delete => admin::revoke_session }
    "/admin/clients" { get => admin::list_clients, post => admin::create_client }
    "/admin/clients/{id}" {
        get => admin::get_client,
        patch => admin::update_client,
        delete => admin::delete_client,
    }
    "/admin/clients/{id}/secret" { post => admin::rotate_client_secret }
    "/admin/keys" { get => admin::list_keys }
    "/admin/keys/rotate" { post => admin::rotate_keys }
    "/admin/keys/{kid}" { delete => admin::retire_key }
    "/admin/audit" { get => admin::list_audit }
}

fn cors(state: &AppState) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers(["authorization", "content-type", "x-csrf-token"])
        .supports_credentials()
        .max_age(600);
    for origin in &state.settings.cors_origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// Records every request in `tessera_http_requests_total` and the latency histogram.
async fn record_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method = crate::metrics::method_label(req.method().as_str());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let response = next.call(req).await?;
    if let Some(state) = state {
        state.metrics.observe_request(
            &route,
            method,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(response)
}

/// One line per request. Path only: query strings may carry secrets, and headers and
/// bodies do.
fn request_logger() -> Logger {
    Logger::new(r#"%{ip}xi "%{r}xi" %s %Dms"#)
        .custom_request_replace("ip", |req| {
            req.peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default()
        })
        .custom_request_replace("r", |req| format!("{} {}", req.method(), req.path()))
}

/// Binds a built `HttpServer` to the listener, over TLS when configured, and starts it. A
/// macro: `HttpServer`'s type parameters cannot be named for a function of both servers.
macro_rules! listen {
    ($server:expr, $listener:expr, $tls:expr) => {{
        let server = $server.shutdown_timeout(5);
        let server = match $tls {
            Some(files) => server.listen_rustls_0_23(
                $listener,
                crate::tls::server_config(&files.cert, &files.key)?,
            )?,
            None => server.listen($listener)?,
        };
        Ok(server.run())
    }};
}

/// Builds the public server on `listener`; it runs when awaited. When a management listener
/// is configured (`TESSERA_MANAGEMENT_LISTEN`, see [`management_server`]), `/metrics` is
/// left out here.
pub fn server(state: Arc<AppState>, listener: TcpListener) -> anyhow::Result<Server> {
    let workers = state.settings.workers;
    let tls = state.settings.tls.clone();
    let separate_management = state.settings.management_listen.is_some();
    let openapi = web::Data::new(openapi::Document::render(&state.settings.issuer)?);
    let pages = web::Data::new(pages::Pages::new()?);
    let data = web::Data::from(state);
    let server = HttpServer::new(move || {
        let cors_enabled = !data.settings.cors_origins.is_empty();
        App::new()
            .app_data(data.clone())
            .app_data(openapi.clone())
            .app_data(pages.clone())
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                Error::InvalidRequest(format!("bad query string: {e}")).into()
            }))
            .app_data(
                web::PathConfig::default()
                    .error_handler(|e, _| Error::NotFound(format!("bad path: {e}")).into()),
            )
            .configure(|cfg| {
                configure(cfg, |path| {
                    !(separate_management && MANAGEMENT_ONLY_PATHS.contains(&path))
                })
            })
            .default_service(web::to(not_found))
            .wrap(actix_web::middleware::from_fn(limit_client_failures))
            .wrap(Condition::new(cors_enabled, cors(&data)))
            .wrap(actix_web::middleware::from_fn(
                browser::cors_refusals_as_json,
            ))
            .wrap(actix_web::middleware::from_fn(record_metrics))
            .wrap(request_logger())
    })
    .workers(workers);
    listen!(server, listener, tls.as_ref())
}

/// The management server on `listener`: `/healthz`, `/readyz` and `/metrics` only, over
/// TLS when the public listener uses it.
pub fn management_server(state: Arc<AppState>, listener: TcpListener) -> anyhow::Result<Server> {
    let tls = state.settings.tls.clone();
    let data = web::Data::from(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(|cfg| configure(cfg, |path| MANAGEMENT_PATHS.contains(&path)))
            .default_service(web::to(not_found))
            .wrap(actix_web::middleware::from_fn(record_metrics))
            .wrap(request_logger())
    })
    .workers(1);
    listen!(server, listener, tls.as_ref())
}

/// An empty 200.
pub fn ok_empty() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}
