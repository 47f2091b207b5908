//! `GET/POST /login`, `GET/POST /signup` and `POST /logout`. The password and one-time-code
//! checks are the password grant's own (`grants::password`, `grants::mfa_otp`): the same
//! per-address limit, lock, failure counting and audit events; only what a success makes
//! differs (a browser session instead of tokens).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::context;
use serde::Deserialize;

use crate::browser_session;
use crate::clients::ClientCredentials;
use crate::error::Error;
use crate::grants::{self, RequestContext};
use crate::http::blocking;
use crate::http::error::HttpError;
use crate::http::extract::{client_ip, user_agent, FormBody};
use crate::http::pages::{current_session, safe_return_to, PageContext, SESSION_COOKIE};
use crate::http::token::limit_attempts;

/// `?return_to=&login_hint=` of the sign-in page.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoginQuery {
    /// Where to go after signing in: an `/oauth/authorize?…` request of this server.
    return_to: Option<String>,
    /// Pre-fills the username.
    login_hint: Option<String>,
}

/// The sign-in form: the password step, or the code step with the `mfa_token` it gave.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginForm {
    csrf: Option<String>,
    return_to: Option<String>,
    username: Option<String>,
    #[schema(format = Password)]
    password: Option<String>,
    mfa_token: Option<String>,
    otp: Option<String>,
}

/// The name of the client whose authorization request waits behind `return_to`.
async fn client_name_for(page: &PageContext, return_to: &Option<String>) -> Option<String> {
    let query = return_to.as_deref()?.split_once('?')?.1;
    let client_id = crate::authorize::AuthorizationRequest::parse(query).client_id?;
    blocking(&page.state, move |conn, state| {
        crate::clients::find(conn, &client_id, &state.settings.scopes)
    })
    .await
    .ok()
    .flatten()
    .map(|client| client.display_name().to_string())
}

/// `?return_to=…` for links between the sign-in and sign-up pages.
fn return_to_query(return_to: &Option<String>) -> String {
    return_to.as_deref().map_or(String::new(), |r| {
        format!("?return_to={}", crate::http::pages::authorize::urlencode(r))
    })
}

struct LoginView<'a> {
    return_to: &'a Option<String>,
    username: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    mfa_token: Option<&'a str>,
}

async fn login_page(page: &PageContext, status: StatusCode, view: LoginView<'_>) -> HttpResponse {
    let client_name = client_name_for(page, view.return_to).await;
    page.page(
        status,
        "login.html",
        if view.mfa_token.is_some() {
            "Two-step verification"
        } else {
            "Sign in"
        },
        context! {
            return_to => view.return_to.clone().unwrap_or_default(),
            return_to_query => return_to_query(view.return_to),
            username => view.username,
            error => view.error,
            notice => view.notice,
            mfa_token => view.mfa_token,
            client_name => client_name,
            signup_open => page.state.settings.registration_open,
            mail_enabled => page.state.settings.mail.is_some(),
        },
    )
}

/// `GET /login`: the sign-in page.
#[utoipa::path(
    get,
    path = "/login",
    tag = "pages",
    params(LoginQuery),
    responses(
        (status = 200, description = "The sign-in page", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn login_form(
    req: HttpRequest,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, Error> {
    let page = PageContext::new(&req)?;
    let return_to = safe_return_to(query.return_to.as_deref());
    let notice = req
        .query_string()
        .contains("signed_out=1")
        .then_some("You have signed out.");
    Ok(login_page(
        &page,
        StatusCode::OK,
        LoginView {
            return_to: &return_to,
            username: query.login_hint.as_deref().unwrap_or(""),
            error: None,
            notice,
            mfa_token: None,
        },
    )
    .await)
}

/// `POST /login`: checks the password (and then the code, for users with MFA on) and starts
/// a browser session with a new id; back to the authorization request, or to `/account`.
#[utoipa::path(
    post,
    path = "/login",
    tag = "pages",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The code step for a user with MFA on", content_type = "text/html"),
        (status = 303, description = "Signed in: `tessera_session` set; to `return_to` or `/account`"),
        (status = 400, description = "The page again with one message for an unknown user or a wrong password, or an expired form", content_type = "text/html"),
        (status = 413, description = "An HTML page: body too large", content_type = "text/html"),
        (status = 415, description = "An HTML page: not a form", content_type = "text/html"),
        (status = 429, description = "An HTML page: too many attempts (address limit or account lock)", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn login(
    req: HttpRequest,
    form: Result<FormBody<LoginForm>, HttpError>,
) -> Result<HttpResponse, Error> {
    let mut page = PageContext::new(&req)?;
    let form = match form {
        Ok(FormBody(form)) => form,
        Err(e) => return Ok(page.refused(&e)),
    };
    let return_to = safe_return_to(form.return_to.as_deref());
    if !page.check_csrf(form.csrf.as_deref()) {
        return Ok(page.expired_form());
    }
    let state = page.state.clone();
    let ip = client_ip(&req, &state.settings);
    let context = RequestContext {
        ip: ip.map(|ip| ip.to_string()),
        user_agent: user_agent(&req),
    };
    let username = form.username.clone().unwrap_or_default();
    if let Err(e) = limit_attempts(&state, ip).await {
        return Ok(page.error_for(&e));
    }
    // The sign-in pages act as the built-in first-party client.
    let credentials = ClientCredentials::default();
    let now = crate::now();
    let result = match (form.mfa_token.filter(|t| !t.is_empty()), form.otp) {
        (Some(mfa_token), otp) => {
            let otp = otp.unwrap_or_default();
            let token = mfa_token.clone();
            let outcome = blocking(&state, move |conn, state| {
                grants::mfa_otp::complete_with(
                    conn,
                    &state.grant_policy(),
                    &credentials,
                    &token,
                    &otp,
                    &context,
                    now,
                    |conn, user, _, _| {
                        browser_session::start(
                            conn,
                            state.settings.browser_session_ttl,
                            user,
                            &grants::mfa_otp::AMR,
                            &context,
                            now,
                        )
                    },
                )
            })
            .await;
            match outcome {
                Err(Error::InvalidGrant(message)) if message.contains("one-time code") => {
                    return Ok(login_page(
                        &page,
                        StatusCode::BAD_REQUEST,
                        LoginView {
                            return_to: &return_to,
                            username: "",
                            error: Some("That code is not right. Try the current one."),
                            notice: None,
                            mfa_token: Some(&mfa_token),
                        },
                    )
                    .await)
                }
                other => other,
            }
        }
        (None, _) => {
            let password = form.password.unwrap_or_default();
            let lookup = username.clone();
            let attempt = blocking(&state, move |conn, state| {
                grants::password::prepare(
                    conn,
                    &state.grant_policy(),
                    &credentials,
                    &lookup,
                    None,
                    now,
                )
            })
            .await;
            match attempt {
                Err(e) => Err(e),
                Ok(attempt) => {
                    let user = attempt.user.clone();
                    let verdict = state
                        .hasher
                        .run(move |hasher| {
                            grants::password::check(hasher, user.as_ref(), &password)
                        })
                        .await?;
                    blocking(&state, move |conn, state| {
                        grants::password::complete_with(
                            conn,
                            &state.grant_policy(),
                            attempt,
                            verdict,
                            &context,
                            now,
                            |conn, user| {
                                browser_session::start(
                                    conn,
                                    state.settings.browser_session_ttl,
                                    user,
                                    &["pwd"],
                                    &context,
                                    now,
                                )
                            },
                        )
                    })
                    .await
                }
            }
        }
    };
    match result {
        Ok(secret) => {
            // The session this browser had before, if any, ends: one sign-in per browser.
            if let Some(old) = crate::http::cookies::read(&req, SESSION_COOKIE) {
                let _ = blocking(&state, move |conn, state| {
                    browser_session::end(conn, &state.metrics, &old, crate::now())
                })
                .await;
            }
            page.set_session(secret);
            Ok(page.see_other(return_to.as_deref().unwrap_or("/account")))
        }
        Err(Error::MfaRequired { mfa_token }) => Ok(login_page(
            &page,
            StatusCode::OK,
            LoginView {
                return_to: &return_to,
                username: "",
                error: None,
                notice: None,
                mfa_token: Some(secrecy::ExposeSecret::expose_secret(&mfa_token)),
            },
        )
        .await),
        Err(Error::InvalidGrant(message)) => Ok(login_page(
            &page,
            StatusCode::BAD_REQUEST,
            LoginView {
                return_to: &return_to,
                username: &username,
                error: Some(if message == "account disabled" {
                    "This account is disabled."
                } else {
                    "Wrong username or password."
                }),
                notice: None,
                mfa_token: None,
            },
        )
        .await),
        Err(e) => Ok(page.error_for(&e)),
    }
}

/// `POST /logout`: ends the browser session and clears its cookie.
#[utoipa::path(
    post,
    path = "/logout",
    tag = "pages",
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed out: to the sign-in page"),
        (status = 400, description = "An HTML page: expired form", content_type = "text/html"),
        (status = 413, description = "An HTML page: body too large", content_type = "text/html"),
        (status = 415, description = "An HTML page: not a form", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn logout(
    req: HttpRequest,
    form: Result<FormBody<CsrfForm>, HttpError>,
) -> Result<HttpResponse, Error> {
    let mut page = PageContext::new(&req)?;
    let form = match form {
        Ok(FormBody(form)) => form,
        Err(e) => return Ok(page.refused(&e)),
    };
    if !page.check_csrf(form.csrf.as_deref()) {
        return Ok(page.expired_form());
    }
    if let Some(secret) = crate::http::cookies::read(&req, SESSION_COOKIE) {
        if let Err(e) = blocking(&page.state, move |conn, state| {
            browser_session::end(conn, &state.metrics, &secret, crate::now())
        })
        .await
        {
            return Ok(page.error_for(&e));
        }
    }
    page.clear_session();
    Ok(page.see_other("/login?signed_out=1"))
}

/// A form with only its CSRF token.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct CsrfForm {
    csrf: Option<String>,
}

/// The sign-up form.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SignupForm {
    csrf: Option<String>,
    return_to: Option<String>,
    username: Option<String>,
    email: Option<String>,
    #[schema(format = Password)]
    password: Option<String>,
}

fn signup_page(
    page: &PageContext,
    status: StatusCode,
    return_to: &Option<String>,
    username: &str,
    email: &str,
    error: Option<&str>,
) -> HttpResponse {
    page.page(
        status,
        "signup.html",
        "Create your account",
        context! {
            return_to => return_to.clone().unwrap_or_default(),
            return_to_query => return_to_query(return_to),
            username => username,
            email => email,
            error => error,
        },
    )
}

fn registration_closed(page: &PageContext) -> HttpResponse {
    page.error(
        StatusCode::FORBIDDEN,
        "Sign-up is closed",
        "New accounts are created by an administrator.",
    )
}

/// `GET /signup`: the sign-up page, when registration is open.
#[utoipa::path(
    get,
    path = "/signup",
    tag = "pages",
    params(LoginQuery),
    responses(
        (status = 200, description = "The sign-up page", content_type = "text/html"),
        (status = 403, description = "An HTML page: registration is closed", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn signup_form(
    req: HttpRequest,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, Error> {
    let page = PageContext::new(&req)?;
    if !page.state.settings.registration_open {
        return Ok(registration_closed(&page));
    }
    let return_to = safe_return_to(query.return_to.as_deref());
    Ok(signup_page(&page, StatusCode::OK, &return_to, "", "", None))
}

/// `POST /signup`: registers under the rules of `POST /register` and signs the new user in.
#[utoipa::path(
    post,
    path = "/signup",
    tag = "pages",
    request_body(content = SignupForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Registered and signed in: to `return_to` or `/account`"),
        (status = 400, description = "The page again saying what is wrong (bad username, weak password), or an expired form", content_type = "text/html"),
        (status = 403, description = "An HTML page: registration is closed", content_type = "text/html"),
        (status = 409, description = "The page again: the username is taken", content_type = "text/html"),
        (status = 413, description = "An HTML page: body too large", content_type = "text/html"),
        (status = 415, description = "An HTML page: not a form", content_type = "text/html"),
        (status = 429, description = "An HTML page: too many attempts", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn signup(
    req: HttpRequest,
    form: Result<FormBody<SignupForm>, HttpError>,
) -> Result<HttpResponse, Error> {
    let mut page = PageContext::new(&req)?;
    let form = match form {
        Ok(FormBody(form)) => form,
        Err(e) => return Ok(page.refused(&e)),
    };
    if !page.state.settings.registration_open {
        return Ok(registration_closed(&page));
    }
    if !page.check_csrf(form.csrf.as_deref()) {
        return Ok(page.expired_form());
    }
    let return_to = safe_return_to(form.return_to.as_deref());
    let state = page.state.clone();
    let ip = client_ip(&req, &state.settings);
    if let Err(e) = limit_attempts(&state, ip).await {
        return Ok(page.error_for(&e));
    }
    let username = form.username.unwrap_or_default();
    let email = form.email.filter(|e| !e.is_empty());
    let password = form.password.unwrap_or_default();
    let shown_email = email.clone().unwrap_or_default();
    let again = |page: &PageContext, status, message: &str| {
        signup_page(
            page,
            status,
            &return_to,
            &username,
            &shown_email,
            Some(message),
        )
    };
    if let Err(e) = crate::accounts::check_registration(&username, &password, email.as_deref()) {
        let message = match &e {
            Error::WeakPassword(m) | Error::InvalidRequest(m) => m.clone(),
            other => other.to_string(),
        };
        return Ok(again(&page, StatusCode::BAD_REQUEST, &message));
    }
    let hash = state
        .hasher
        .run(move |hasher| hasher.hash(&password))
        .await??;
    let context = RequestContext {
        ip: ip.map(|ip| ip.to_string()),
        user_agent: user_agent(&req),
    };
    let name = username.clone();
    let created = blocking(&state, move |conn, state| {
        let now = crate::now();
        crate::accounts::register_with(
            conn,
            &name,
            &hash,
            email.as_deref(),
            context.ip.clone(),
            now,
            |conn, user| {
                browser_session::start(
                    conn,
                    state.settings.browser_session_ttl,
                    user,
                    &["pwd"],
                    &context,
                    now,
                )
            },
        )
    })
    .await;
    match created {
        Ok(secret) => {
            page.set_session(secret);
            Ok(page.see_other(return_to.as_deref().unwrap_or("/account")))
        }
        Err(Error::UsernameTaken) | Err(Error::Conflict(_)) => Ok(again(
            &page,
            StatusCode::CONFLICT,
            "That username is taken.",
        )),
        Err(e) => Ok(page.error_for(&e)),
    }
}

/// Used by the account page: the signed-in user, or a redirect to sign in.
pub async fn require_session(
    req: &HttpRequest,
    page: &PageContext,
) -> Result<crate::browser_session::BrowserSession, HttpResponse> {
    match current_session(req, &page.state).await {
        Ok(Some((_, session))) => Ok(session),
        Ok(None) => Err(page.see_other("/login")),
        Err(e) => Err(page.error_for(&e)),
    }
}
