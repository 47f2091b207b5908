//! The hosted pages (SPEC §6.2): server-rendered HTML from templates compiled into the
//! binary, usable without JavaScript, one stylesheet. Every page and page redirect carries
//! the security headers; every form carries a CSRF token bound to the `tessera_form` cookie
//! (a pre-session cookie: sign-in forms exist before there is a session to bind to).

pub mod account;
pub mod authorize;
pub mod end_session;
pub mod login;
pub mod recovery;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::{context, Environment, Value};

use crate::browser_session::{self, BrowserSession};
use crate::error::Error;
use crate::http::blocking;
use crate::http::cookies;
use crate::http::error::HttpError;
use crate::state::AppState;
use actix_web::cookie::{Cookie, SameSite};

/// The browser session cookie.
pub const SESSION_COOKIE: &str = "tessera_session";
/// The pre-session cookie that CSRF tokens are bound to.
pub const FORM_COOKIE: &str = "tessera_form";

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
    frame-ancestors 'none'; base-uri 'none'";

/// The compiled templates.
pub struct Pages {
    env: Environment<'static>,
}

impl Pages {
    /// Loads the templates embedded in the binary.
    pub fn new() -> anyhow::Result<Self> {
        let mut env = Environment::new();
        for (name, source) in [
            ("base.html", include_str!("../../../templates/base.html")),
            ("error.html", include_str!("../../../templates/error.html")),
            ("login.html", include_str!("../../../templates/login.html")),
            (
                "signup.html",
                include_str!("../../../templates/signup.html"),
            ),
            (
                "consent.html",
                include_str!("../../../templates/consent.html"),
            ),
            (
                "account.html",
                include_str!("../../../templates/account.html"),
            ),
            (
                "forgot.html",
                include_str!("../../../templates/forgot.html"),
            ),
            ("reset.html", include_str!("../../../templates/reset.html")),
            ("done.html", include_str!("../../../templates/done.html")),
            (
                "logout.html",
                include_str!("../../../templates/logout.html"),
            ),
        ] {
            env.add_template(name, source)?;
        }
        for (name, source) in crate::http::console::TEMPLATES.iter().copied() {
            env.add_template(name, source)?;
        }
        Ok(Pages { env })
    }

    fn render(&self, name: &str, values: Value) -> Result<String, Error> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(values))
            .map_err(|e| Error::internal("rendering a page", e))
    }
}

/// Adds the headers every hosted page sends.
pub fn secure(response: &mut actix_web::HttpResponseBuilder) {
    response
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
}

/// What a page handler builds: the page, the cookies to set, and the CSRF binding.
pub struct PageContext {
    pub state: web::Data<AppState>,
    pages: web::Data<Pages>,
    /// The `tessera_form` value, new when the request had none.
    form_secret: String,
    new_form_secret: bool,
    /// Cookies to set.
    cookies: Vec<Cookie<'static>>,
}

impl PageContext {
    /// Reads the request's form cookie (or makes one).
    pub fn new(req: &HttpRequest) -> Result<Self, Error> {
        let state = req
            .app_data::<web::Data<AppState>>()
            .cloned()
            .ok_or_else(|| Error::bug("pages", "no state"))?;
        let pages = req
            .app_data::<web::Data<Pages>>()
            .cloned()
            .ok_or_else(|| Error::bug("pages", "no templates"))?;
        let existing = cookies::read(req, FORM_COOKIE).filter(|v| v.len() == 43);
        let new_form_secret = existing.is_none();
        Ok(PageContext {
            state,
            pages,
            form_secret: existing.unwrap_or_else(crate::crypto::random_token::<32>),
            new_form_secret,
            cookies: Vec::new(),
        })
    }

    /// The CSRF token of this browser's forms.
    pub fn csrf(&self) -> String {
        self.state
            .master_key
            .mac("page csrf", self.form_secret.as_bytes())
    }

    /// Checks a submitted form's CSRF token: it must come with the cookie it was made for.
    pub fn check_csrf(&self, presented: Option<&str>) -> bool {
        !self.new_form_secret
            && presented.is_some_and(|p| {
                crate::crypto::constant_time_eq(p.as_bytes(), self.csrf().as_bytes())
            })
    }

    /// A page cookie: `HttpOnly; SameSite=Lax; Path=/` (and `Secure` unless turned off for
    /// plain-http development); `max_age` `None` lasts the browser session.
    fn cookie(&self, name: &'static str, value: &str, max_age: Option<i64>) -> Cookie<'static> {
        let mut cookie = cookies::new(name, value, self.state.settings.cookie_secure)
            .path("/")
            .same_site(SameSite::Lax);
        if let Some(age) = max_age {
            cookie = cookie.max_age(cookies::max_age(age));
        }
        cookie.finish()
    }

    /// Sets the browser session cookie.
    pub fn set_session(&mut self, secret: String) {
        let ttl = self.state.settings.browser_session_ttl;
        let cookie = self.cookie(SESSION_COOKIE, &secret, Some(ttl));
        self.cookies.push(cookie);
    }

    /// Expires the browser session cookie.
    pub fn clear_session(&mut self) {
        let cookie = self.cookie(SESSION_COOKIE, "", Some(0));
        self.cookies.push(cookie);
    }

    fn finish(&self, builder: &mut actix_web::HttpResponseBuilder) {
        secure(builder);
        if self.new_form_secret {
            builder.cookie(self.cookie(FORM_COOKIE, &self.form_secret, None));
        }
        for cookie in &self.cookies {
            builder.cookie(cookie.clone());
        }
    }

    /// Renders a page; `values` are added to the brand and the CSRF token.
    pub fn page(
        &self,
        status: StatusCode,
        template: &str,
        title: &str,
        values: Value,
    ) -> HttpResponse {
        let all = context! {
            brand => self.state.settings.brand_name.clone(),
            csrf => self.csrf(),
            title => title,
            ..values
        };
        match self.pages.render(template, all) {
            Ok(html) => {
                let mut builder = HttpResponse::build(status);
                self.finish(&mut builder);
                builder.content_type("text/html; charset=utf-8").body(html)
            }
            Err(e) => {
                log::error!("{e}");
                HttpResponse::InternalServerError()
                    .content_type("text/plain; charset=utf-8")
                    .body("The page could not be shown.")
            }
        }
    }

    /// An error page.
    pub fn error(&self, status: StatusCode, title: &str, message: &str) -> HttpResponse {
        self.page(status, "error.html", title, context! { message => message })
    }

    /// The error page for a request refused before its form could be read (its size or
    /// type), or for what reading it found wrong.
    pub fn refused(&self, error: &HttpError) -> HttpResponse {
        match error {
            HttpError::Domain(error) => self.error_for(error),
            HttpError::PayloadTooLarge => self.error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too much data",
                "The form sent more than this server accepts.",
            ),
            HttpError::UnsupportedMediaType(_) => self.error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Not a form",
                "This address takes a submitted HTML form.",
            ),
            HttpError::MethodNotAllowed => self.error(
                StatusCode::METHOD_NOT_ALLOWED,
                "Not here",
                "This address does not take that kind of request.",
            ),
        }
    }

    /// The error page for a domain error.
    pub fn error_for(&self, error: &Error) -> HttpResponse {
        match error {
            Error::Unavailable => {
                let mut response = self.error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Try again shortly",
                    "The service is briefly unavailable. Please try again in a moment.",
                );
                // As the JSON answer's: a browser or a load balancer may retry on its own.
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
                response
            }
            Error::RateLimited { retry_after } => {
                let mut response = self.error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many attempts",
                    &format!("Too many attempts. Try again in {retry_after} seconds."),
                );
                if let Ok(value) = header::HeaderValue::from_str(&retry_after.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                response
            }
            Error::NotFound(_) => {
                self.error(StatusCode::NOT_FOUND, "Not found", "There is nothing here.")
            }
            Error::InvalidRequest(m) | Error::Forbidden(m) => self.error(
                StatusCode::BAD_REQUEST,
                "Something is wrong with this request",
                m,
            ),
            other => {
                log::error!("page failed: {other}");
                self.error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The request could not be completed.",
                )
            }
        }
    }

    /// The page shown when a form's CSRF token does not match.
    pub fn expired_form(&self) -> HttpResponse {
        self.error(
            StatusCode::BAD_REQUEST,
            "This form has expired",
            "Go back, reload the page and try again.",
        )
    }

    /// A 303 to `location` with the page headers and cookies.
    pub fn see_other(&self, location: &str) -> HttpResponse {
        let mut builder = HttpResponse::SeeOther();
        self.finish(&mut builder);
        builder.insert_header((header::LOCATION, location)).finish()
    }
}

/// The live browser session of the request, if any. A database failure is an error here:
/// callers decide whether that is a page or a redirect.
pub async fn current_session(
    req: &HttpRequest,
    state: &web::Data<AppState>,
) -> Result<Option<(String, BrowserSession)>, Error> {
    let Some(secret) = cookies::read(req, SESSION_COOKIE).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let lookup = secret.clone();
    let found = blocking(state, move |conn, _| {
        browser_session::find(conn, &lookup, crate::now())
    })
    .await?;
    Ok(found.map(|s| (secret, s)))
}

/// A `return_to` that stays on this server: only back to an authorization request.
pub fn safe_return_to(value: Option<&str>) -> Option<String> {
    value
        .filter(|v| v.starts_with("/oauth/authorize?") && !v.contains(['\\', '\r', '\n']))
        .filter(|v| v.len() <= 4096)
        .map(str::to_string)
}

/// `GET /assets/tessera.css`: the one stylesheet.
#[utoipa::path(
    get,
    path = "/assets/tessera.css",
    tag = "pages",
    responses(
        (status = 200, description = "The stylesheet of the hosted pages", content_type = "text/css"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(include_str!("../../../assets/tessera.css"))
}
