//! The admin console under `/console` (SPEC §6.5): server-rendered pages from templates
//! compiled into the binary, one stylesheet, no JavaScript. It signs its admin in through
//! tessera's own authorization code flow with PKCE as the built-in public client `console`,
//! keeps the tokens it got in a sealed `HttpOnly` cookie (refreshed a minute before the
//! access token expires), and before every page and every action runs the admin API's own
//! authorization on that access token ([`crate::http::authenticate_token`] and
//! [`crate::http::admin_authority`], the same code `admin_only` runs for `/admin`), then calls
//! the same domain functions as the admin API handlers, so the rules and the audit trail
//! (with the admin as actor) are the API's. Every form carries the hosted pages' CSRF token.

pub mod audit;
pub mod clients;
pub mod keys;
pub mod users;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::{context, Value};
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::clients::{ClientCredentials, CONSOLE};
use crate::console::{self, SignIn, Tokens};
use crate::error::Error;
use crate::grants::{self, RequestContext};
use crate::http::cookies;
use crate::http::error::HttpError;
use crate::http::extract::{client_ip, user_agent, FormBody};
use crate::http::pages::{PageContext, SESSION_COOKIE};
use crate::http::{admin_authority, authenticate_token, blocking};
use crate::tokens::rotation::Operator;
use actix_web::cookie::{Cookie, SameSite};

/// The cookie holding the console's sealed tokens.
pub const TOKENS_COOKIE: &str = "tessera_console";
/// The cookie holding a sign-in in progress (PKCE verifier and state), sealed.
pub const SIGN_IN_COOKIE: &str = "tessera_console_signin";
/// Browsers refuse cookies over 4096 bytes; the console's must fit.
const MAX_COOKIE: usize = 4000;

/// The console's templates, registered with the hosted pages' ones.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "console/base.html",
        include_str!("../../../templates/console/base.html"),
    ),
    (
        "console/overview.html",
        include_str!("../../../templates/console/overview.html"),
    ),
    (
        "console/users.html",
        include_str!("../../../templates/console/users.html"),
    ),
    (
        "console/user.html",
        include_str!("../../../templates/console/user.html"),
    ),
    (
        "console/clients.html",
        include_str!("../../../templates/console/clients.html"),
    ),
    (
        "console/secret.html",
        include_str!("../../../templates/console/secret.html"),
    ),
    (
        "console/keys.html",
        include_str!("../../../templates/console/keys.html"),
    ),
    (
        "console/audit.html",
        include_str!("../../../templates/console/audit.html"),
    ),
    (
        "console/confirm.html",
        include_str!("../../../templates/console/confirm.html"),
    ),
    (
        "console/message.html",
        include_str!("../../../templates/console/message.html"),
    ),
];

/// A console request whose admin passed the admin API's authorization.
pub struct Console {
    pub page: PageContext,
    /// The admin, as the audit trail names them.
    pub operator: Operator,
    /// The admin's username, for the header.
    pub username: String,
    /// Cookies to set (refreshed tokens).
    cookies: Vec<Cookie<'static>>,
}

/// What a console page is for: a GET may start a sign-in, an action may not.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    View,
    Act,
}

/// A banner above a view: what just happened, or what went wrong.
#[derive(Default, Clone)]
pub struct Flash {
    pub notice: Option<String>,
    pub error: Option<String>,
}

impl Flash {
    pub fn error(message: impl Into<String>) -> Self {
        Flash {
            notice: None,
            error: Some(message.into()),
        }
    }
}

/// A console cookie: `HttpOnly; SameSite=Lax; Path=/console`.
fn cookie_value(
    state: &crate::state::AppState,
    name: &'static str,
    value: &str,
    max_age: i64,
) -> Cookie<'static> {
    cookies::new(name, value, state.settings.cookie_secure)
        .path("/console")
        .same_site(SameSite::Lax)
        .max_age(cookies::max_age(max_age))
        .finish()
}

fn with_cookies(mut response: HttpResponse, cookies: &[Cookie<'static>]) -> HttpResponse {
    cookies::add_all(&mut response, cookies);
    response
}

fn request_context(req: &HttpRequest, page: &PageContext) -> RequestContext {
    RequestContext {
        ip: client_ip(req, &page.state.settings).map(|ip| ip.to_string()),
        user_agent: user_agent(req),
    }
}

fn console_credentials() -> ClientCredentials {
    ClientCredentials {
        client_id: Some(CONSOLE.to_string()),
        secret: None,
        basic: false,
    }
}

/// A page of the console's own layout (`console/message.html`) with a title and a message,
/// and optionally the sign-out button (for the 403 page) or a link to sign in again.
fn message(
    page: &PageContext,
    status: StatusCode,
    title: &str,
    text: &str,
    signed_in_as: Option<&str>,
    sign_in_link: bool,
) -> HttpResponse {
    page.page(
        status,
        "console/message.html",
        title,
        context! {
            message => text,
            signed_in_as => signed_in_as,
            sign_in_link => sign_in_link,
        },
    )
}

/// Sends the browser through the code flow: a new verifier and state, sealed in a cookie
/// for the callback, and a 303 to `/oauth/authorize` with the S256 challenge.
fn start_sign_in(
    page: &PageContext,
    return_to: &str,
    extra_cookies: &[Cookie<'static>],
) -> HttpResponse {
    let state = &page.state;
    let sign_in = SignIn::begin(crate::now(), return_to);
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", CONSOLE),
        (
            "redirect_uri",
            &console::redirect_uri(&state.settings.issuer),
        ),
        ("code_challenge", &sign_in.challenge()),
        ("code_challenge_method", "S256"),
        ("state", sign_in.state.expose_secret()),
    ])
    .unwrap_or_default();
    let mut cookies = extra_cookies.to_vec();
    cookies.push(cookie_value(
        state,
        SIGN_IN_COOKIE,
        &sign_in.seal(&state.master_key),
        console::SIGN_IN_TTL,
    ));
    with_cookies(
        page.see_other(&format!("/oauth/authorize?{query}")),
        &cookies,
    )
}

/// No usable console session: a view starts a sign-in, an action says so (its form is not
/// replayed after a sign-in).
fn signed_out(req: &HttpRequest, page: &PageContext, intent: Intent, clear: bool) -> HttpResponse {
    let cleared: Vec<Cookie<'static>> = if clear {
        vec![cookie_value(&page.state, TOKENS_COOKIE, "", 0)]
    } else {
        Vec::new()
    };
    match intent {
        Intent::View => {
            let here = match req.query_string() {
                "" => req.path().to_string(),
                query => format!("{}?{query}", req.path()),
            };
            start_sign_in(page, &here, &cleared)
        }
        Intent::Act => with_cookies(
            message(
                page,
                StatusCode::UNAUTHORIZED,
                "Your console session has ended",
                "Nothing was changed. Sign in again and repeat the action.",
                None,
                true,
            ),
            &cleared,
        ),
    }
}

impl Console {
    /// Authorizes a console request: the sealed tokens (refreshed when due), then the admin
    /// API's own checks on the access token. Anything else is the response to send.
    pub async fn open(req: &HttpRequest, intent: Intent) -> Result<Console, HttpResponse> {
        let page = PageContext::new(req).map_err(HttpResponse::from_error)?;
        let state = page.state.clone();
        let Some(mut tokens) =
            cookies::read(req, TOKENS_COOKIE).and_then(|v| Tokens::open(&state.master_key, &v))
        else {
            return Err(signed_out(req, &page, intent, false));
        };
        let mut cookies = Vec::new();
        let now = crate::now();
        if tokens.needs_refresh(now) {
            let refresh_token = tokens.refresh_token.clone();
            let context = request_context(req, &page);
            let refreshed = blocking(&state, move |conn, state| {
                grants::refresh_token::exchange(
                    conn,
                    &state.issuer(),
                    &state.grant_policy(),
                    &console_credentials(),
                    refresh_token.expose_secret(),
                    None,
                    &context,
                    now,
                )
            })
            .await;
            match refreshed.map(|issued| Tokens::from_issued(issued, now)) {
                Ok(Some(fresh)) => {
                    cookies.push(cookie_value(
                        &state,
                        TOKENS_COOKIE,
                        &fresh.seal(&state.master_key),
                        console::SESSION_TTL,
                    ));
                    tokens = fresh;
                }
                Ok(None) | Err(Error::InvalidGrant(_)) | Err(Error::InvalidClient(_)) => {
                    return Err(signed_out(req, &page, intent, true))
                }
                Err(e) => return Err(page.error_for(&e)),
            }
        }
        let claims = match authenticate_token(
            &state,
            tokens.access_token.expose_secret().to_owned(),
        )
        .await
        {
            Ok(claims) => claims,
            Err(Error::InvalidToken { .. }) => return Err(signed_out(req, &page, intent, true)),
            Err(e) => return Err(with_cookies(page.error_for(&e), &cookies)),
        };
        let username = claims.username.clone().unwrap_or_default();
        match admin_authority(req, &state, claims).await {
            Ok(operator) => Ok(Console {
                page,
                operator,
                username,
                cookies,
            }),
            Err(Error::Forbidden(_)) => Err(with_cookies(
                message(
                    &page,
                    StatusCode::FORBIDDEN,
                    "Admins only",
                    "You are signed in, but your account does not have the admin role. \
                     Ask an administrator for it, or sign out.",
                    Some(&username),
                    false,
                ),
                &cookies,
            )),
            Err(Error::InvalidToken { .. }) => Err(signed_out(req, &page, intent, true)),
            Err(e) => Err(with_cookies(page.error_for(&e), &cookies)),
        }
    }

    /// Adds the console's cookies to a response built from its page.
    pub fn finish(&self, response: HttpResponse) -> HttpResponse {
        with_cookies(response, &self.cookies)
    }

    /// Renders a console view.
    pub fn render(
        &self,
        status: StatusCode,
        template: &str,
        title: &str,
        section: &str,
        flash: &Flash,
        values: Value,
    ) -> HttpResponse {
        self.finish(self.page.page(
            status,
            template,
            title,
            context! {
                admin => self.username.clone(),
                section => section,
                notice => flash.notice.clone(),
                error => flash.error.clone(),
                ..values
            },
        ))
    }

    /// A 303 to another console page.
    pub fn see_other(&self, location: &str) -> HttpResponse {
        self.finish(self.page.see_other(location))
    }

    /// The page for a form whose CSRF token is missing or wrong: nothing was changed.
    pub fn expired_form(&self) -> HttpResponse {
        self.finish(self.page.expired_form())
    }

    /// The page for an action whose form could not be read (its size or type), or for what
    /// reading it found wrong. Like every console answer it carries the refreshed token
    /// cookie, should opening the console have refreshed the tokens.
    pub fn refused(&self, error: &HttpError) -> HttpResponse {
        match error {
            HttpError::Domain(error) => self.error_page(error),
            refusal => self.finish(self.page.refused(refusal)),
        }
    }

    /// A domain error that is no mistake of the form's (database down, the admin lost the
    /// role meanwhile, …) as its page.
    pub fn error_page(&self, error: &Error) -> HttpResponse {
        match error {
            Error::Forbidden(_) => self.finish(message(
                &self.page,
                StatusCode::FORBIDDEN,
                "Admins only",
                "Your account does not have the admin role any more.",
                Some(&self.username),
                false,
            )),
            other => self.finish(self.page.error_for(other)),
        }
    }

    /// Asks before a destructive action: the page says what will happen and re-sends the
    /// form with `confirm=yes`.
    #[allow(clippy::too_many_arguments)]
    pub fn confirm(
        &self,
        title: &str,
        section: &str,
        consequence: &str,
        action_url: &str,
        fields: &[(&str, &str)],
        button: &str,
        cancel: &str,
    ) -> HttpResponse {
        let fields: Vec<Value> = fields
            .iter()
            .map(|(name, value)| context! { name => name, value => value })
            .collect();
        self.render(
            StatusCode::OK,
            "console/confirm.html",
            title,
            section,
            &Flash::default(),
            context! {
                consequence => consequence,
                action_url => action_url,
                fields => fields,
                button => button,
                cancel => cancel,
            },
        )
    }

    /// The client address for the audit trail.
    pub fn ip(&self) -> Option<String> {
        self.operator.ip.clone()
    }
}

/// A mistake the admin can fix, in words, with the status its page answers; `None` for
/// errors that get a page of their own.
pub fn explain(error: &Error) -> Option<(StatusCode, String)> {
    match error {
        Error::InvalidRequest(m) | Error::InvalidScope(m) => {
            Some((StatusCode::BAD_REQUEST, sentence(m)))
        }
        Error::WeakPassword(m) => Some((
            StatusCode::BAD_REQUEST,
            format!("The password is too weak: {m}."),
        )),
        Error::UsernameTaken => Some((StatusCode::CONFLICT, "That username is taken.".into())),
        Error::Conflict(m) => Some((StatusCode::CONFLICT, sentence(m))),
        Error::NotFound(m) => Some((StatusCode::NOT_FOUND, sentence(m))),
        _ => None,
    }
}

/// An API message (lower case, no full stop) as a sentence.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut text = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
        None => String::new(),
    };
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

/// The result of an action: a redirect after success, the view with the error in words
/// after a mistake, or an error page.
pub enum Outcome {
    Done(String),
    Mistake(StatusCode, String),
    Page(HttpResponse),
}

impl Outcome {
    /// Sorts a domain result: success goes to `done`, a fixable mistake is shown in words.
    pub fn of<T>(
        console: &Console,
        result: Result<T, Error>,
        done: impl FnOnce(T) -> String,
    ) -> Self {
        match result {
            Ok(value) => Outcome::Done(done(value)),
            Err(e) => match explain(&e) {
                Some((status, text)) => Outcome::Mistake(status, text),
                None => Outcome::Page(console.error_page(&e)),
            },
        }
    }
}

/// `?done=` of a view after an action: the notice it shows, from a fixed list (so a link
/// cannot make the console say anything else).
pub fn notice_for(done: Option<&str>) -> Option<String> {
    let text = match done? {
        "created" => "Created.",
        "saved" => "Saved.",
        "disabled" => "The user is disabled; their sessions have ended.",
        "enabled" => "The user is enabled again.",
        "mfa_reset" => "Two-factor authentication is off for this user; they can set it up again.",
        "session_revoked" => "The session has ended; its refresh token is refused from now on.",
        "sessions_revoked" => "Every session of this user has ended.",
        "user_deleted" => "The user is deleted.",
        "client_deleted" => "The client is deleted; its sessions have ended.",
        "rotated" => "Rotated: the staged key signs now and a new key is staged.",
        "retired" => "The key is retired: it has left the JWKS and verifies nothing more.",
        _ => return None,
    };
    Some(text.to_string())
}

/// `?done=` of a view.
#[derive(Deserialize)]
pub struct DoneQuery {
    pub done: Option<String>,
}

/// `GET /console`: the overview.
#[utoipa::path(
    get,
    path = "/console",
    operation_id = "console_overview",
    tag = "pages",
    responses(
        (status = 200, description = "The console's overview", content_type = "text/html"),
        (status = 303, description = "Not signed in to the console: to `/oauth/authorize` as the `console` client (PKCE S256)"),
        (status = 403, description = "An HTML page: the signed-in account is not an admin", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn overview(req: HttpRequest) -> Result<HttpResponse, Error> {
    let console = match Console::open(&req, Intent::View).await {
        Ok(console) => console,
        Err(response) => return Ok(response),
    };
    let now = crate::now();
    let now_ms = crate::tokens::now_ms();
    let loaded = blocking(&console.page.state, move |conn, state| {
        let overview = console::overview(conn, state.key_policy.max_token_lifetime_ms, now_ms)?;
        let recent = crate::http::wire::Page::of(
            crate::admin::list_audit(conn, Default::default(), None, 8)?,
            crate::http::wire::AuditView::from,
        );
        let names = audit::usernames(conn, &recent.items)?;
        Ok((overview, recent, names))
    })
    .await;
    let (overview, recent, names) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return Ok(console.error_page(&e)),
    };
    let keys: Vec<Value> = overview
        .active_keys
        .iter()
        .map(|k| {
            context! {
                alg => k.alg, kid => k.kid, age => console::human_duration(k.age_seconds),
            }
        })
        .collect();
    let tokens_last_hour = console.page.state.metrics.tokens_last_hour.total(now);
    Ok(console.render(
        StatusCode::OK,
        "console/overview.html",
        "Overview",
        "overview",
        &Flash::default(),
        context! {
            users => overview.users,
            disabled_users => overview.disabled_users,
            live_sessions => overview.live_sessions,
            tokens_last_hour => tokens_last_hour,
            failed_logins => overview.failed_logins_last_hour,
            lockouts => overview.lockouts_last_hour,
            keys => keys,
            recent => audit::rows(recent.items, &names),
        },
    ))
}

/// The callback's query (RFC 6749 §4.1.2, RFC 9207).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /console/callback`: the end of the console's sign-in. The state must be the one
/// sealed in the sign-in cookie; the code is exchanged with the verifier, by the
/// authorization code grant itself.
#[utoipa::path(
    get,
    path = "/console/callback",
    operation_id = "console_callback",
    tag = "pages",
    params(CallbackQuery),
    responses(
        (status = 303, description = "Signed in to the console: its tokens are set (sealed, `HttpOnly`); to `/console`"),
        (status = 400, description = "An HTML page: an expired or foreign sign-in, a refused code, or an error from the authorization server", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn callback(
    req: HttpRequest,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, Error> {
    let page = PageContext::new(&req)?;
    let state = page.state.clone();
    let query = query.into_inner();
    let now = crate::now();
    let sign_in = cookies::read(&req, SIGN_IN_COOKIE)
        .and_then(|v| SignIn::open(&state.master_key, &v, now))
        .filter(|s| query.state.as_deref().is_some_and(|q| s.matches(q)));
    let clear_sign_in = vec![cookie_value(&state, SIGN_IN_COOKIE, "", 0)];
    let Some(sign_in) = sign_in else {
        return Ok(with_cookies(
            message(
                &page,
                StatusCode::BAD_REQUEST,
                "This sign-in has expired",
                "It took too long, or was started in another tab. Start again.",
                None,
                true,
            ),
            &clear_sign_in,
        ));
    };
    if query
        .iss
        .as_deref()
        .is_some_and(|iss| iss != state.settings.issuer)
    {
        return Ok(with_cookies(
            message(
                &page,
                StatusCode::BAD_REQUEST,
                "This sign-in came from elsewhere",
                "The answer names another issuer than this server (RFC 9207).",
                None,
                true,
            ),
            &clear_sign_in,
        ));
    }
    if let Some(error) = query.error {
        let text = format!(
            "The sign-in did not complete ({error}): {}",
            query.error_description.unwrap_or_default()
        );
        return Ok(with_cookies(
            message(
                &page,
                StatusCode::BAD_REQUEST,
                "Not signed in",
                &text,
                None,
                true,
            ),
            &clear_sign_in,
        ));
    }
    let code = query.code.unwrap_or_default();
    let return_to = sign_in.return_to.clone();
    let context = request_context(&req, &page);
    let redirect_uri = console::redirect_uri(&state.settings.issuer);
    let exchanged = blocking(&state, move |conn, state| {
        grants::authorization_code::exchange(
            conn,
            &state.issuer(),
            &state.grant_policy(),
            &console_credentials(),
            &grants::authorization_code::Exchange {
                code: &code,
                redirect_uri: Some(&redirect_uri),
                code_verifier: sign_in.verifier.expose_secret(),
            },
            &context,
            now,
        )
    })
    .await;
    let tokens =
        match exchanged.map(|issued| Tokens::from_issued(issued, now)) {
            Ok(Some(tokens)) => tokens,
            Ok(None) | Err(Error::InvalidGrant(_)) => return Ok(with_cookies(
                message(
                    &page,
                    StatusCode::BAD_REQUEST,
                    "Not signed in",
                    "The sign-in code was refused: it expired or was already used. Start again.",
                    None,
                    true,
                ),
                &clear_sign_in,
            )),
            Err(e) => return Ok(with_cookies(page.error_for(&e), &clear_sign_in)),
        };
    let sealed = tokens.seal(&state.master_key);
    if sealed.len() + TOKENS_COOKIE.len() > MAX_COOKIE {
        // The session just started cannot be used: it ends at once rather than linger.
        let refresh_token = tokens.refresh_token.clone();
        let ip = client_ip(&req, &state.settings).map(|ip| ip.to_string());
        let ended = blocking(&state, move |conn, state| {
            let client = crate::clients::Client::console(Some(&state.settings.issuer));
            crate::sessions::revoke_token(
                conn,
                &state.metrics,
                &state.keys,
                &client,
                refresh_token.expose_secret(),
                Some("refresh_token"),
                ip,
                crate::now(),
            )
        })
        .await;
        if let Err(e) = ended {
            return Ok(with_cookies(page.error_for(&e), &clear_sign_in));
        }
        return Ok(with_cookies(
            message(
                &page,
                StatusCode::BAD_REQUEST,
                "Your tokens are too large for the console",
                "This account's custom attributes make its access token larger than a \
                 browser cookie may be. Use the admin API with a bearer token instead.",
                None,
                false,
            ),
            &clear_sign_in,
        ));
    }
    let mut cookies = clear_sign_in;
    cookies.push(cookie_value(
        &state,
        TOKENS_COOKIE,
        &sealed,
        console::SESSION_TTL,
    ));
    let location = console::console_path(&return_to).unwrap_or("/console");
    Ok(with_cookies(page.see_other(location), &cookies))
}

/// A form with only its CSRF token.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SignOutForm {
    csrf: Option<String>,
}

/// `POST /console/logout`: revokes the console's session (RFC 7009, its refresh token) and
/// ends the browser session, so the next visit asks for the password again.
#[utoipa::path(
    post,
    path = "/console/logout",
    operation_id = "console_logout",
    tag = "pages",
    request_body(content = SignOutForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed out: the console's and the browser's sessions have ended; to the sign-in page"),
        (status = 400, description = "An HTML page: expired form", content_type = "text/html"),
        (status = 413, description = "An HTML page: body too large", content_type = "text/html"),
        (status = 415, description = "An HTML page: not a form", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn logout(
    req: HttpRequest,
    form: Result<FormBody<SignOutForm>, HttpError>,
) -> Result<HttpResponse, Error> {
    let mut page = PageContext::new(&req)?;
    let form = match form {
        Ok(FormBody(form)) => form,
        Err(e) => return Ok(page.refused(&e)),
    };
    if !page.check_csrf(form.csrf.as_deref()) {
        return Ok(page.expired_form());
    }
    let state = page.state.clone();
    let tokens =
        cookies::read(&req, TOKENS_COOKIE).and_then(|v| Tokens::open(&state.master_key, &v));
    let browser = cookies::read(&req, SESSION_COOKIE).filter(|v| !v.is_empty());
    let ip = client_ip(&req, &state.settings).map(|ip| ip.to_string());
    let ended = blocking(&state, move |conn, state| {
        let now = crate::now();
        if let Some(tokens) = tokens {
            let client = crate::clients::Client::console(Some(&state.settings.issuer));
            crate::sessions::revoke_token(
                conn,
                &state.metrics,
                &state.keys,
                &client,
                tokens.refresh_token.expose_secret(),
                Some("refresh_token"),
                ip,
                now,
            )?;
        }
        if let Some(secret) = browser {
            crate::browser_session::end(conn, &state.metrics, &secret, now)?;
        }
        Ok(())
    })
    .await;
    if let Err(e) = ended {
        return Ok(page.error_for(&e));
    }
    page.clear_session();
    let cleared = vec![cookie_value(&state, TOKENS_COOKIE, "", 0)];
    Ok(with_cookies(
        page.see_other("/login?signed_out=1"),
        &cleared,
    ))
}

/// `GET /assets/console.css`: the console's stylesheet.
#[utoipa::path(
    get,
    path = "/assets/console.css",
    operation_id = "console_stylesheet",
    tag = "pages",
    responses(
        (status = 200, description = "The stylesheet of the admin console", content_type = "text/css"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(include_str!("../../../assets/console.css"))
}

/// Splits a list typed into a form field on commas, spaces and new lines.
pub fn split_list(text: Option<&str>) -> Vec<String> {
    text.unwrap_or("")
        .split([',', ' ', '\n', '\r', '\t'])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Percent-encodes a query value.
pub fn urlencode(value: &str) -> String {
    crate::http::pages::authorize::urlencode(value)
}

/// A box checked in a form (`on`, as browsers send it).
pub fn checked(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| !v.is_empty())
}
