//! The hosted pages of SPEC §6.4: `GET /email/verify?token=` (the link in a verification
//! mail), `GET/POST /password/forgot` (the form asking for a reset link) and
//! `GET/POST /password/reset` (the page a reset link opens). The JSON API shares the
//! handlers' domain calls (`http::email`); forms carry the CSRF token, and a token in a
//! query string never reaches a log line (the request log writes paths only).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::context;
use serde::Deserialize;

use crate::error::Error;
use crate::http::blocking;
use crate::http::email::{
    forgot_password_of, require_mail, reset_password_of, ForgotBody, ResetBody,
};
use crate::http::error::HttpError;
use crate::http::extract::{client_ip, JsonOrForm};
use crate::http::pages::PageContext;
use crate::recovery;

/// `?token=` of a mailed link.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// The one-time token from the mail.
    token: Option<String>,
}

fn unavailable(page: &PageContext) -> HttpResponse {
    page.error_for(&Error::Unavailable)
}

fn done(
    page: &PageContext,
    title: &str,
    message: &str,
    link: &str,
    link_text: &str,
) -> HttpResponse {
    page.page(
        StatusCode::OK,
        "done.html",
        title,
        context! { message => message, link => link, link_text => link_text },
    )
}

/// `GET /email/verify?token=`: marks the address verified (200), or a 400 page for a bad,
/// used or expired link.
#[utoipa::path(
    get,
    path = "/email/verify",
    tag = "pages",
    params(TokenQuery),
    responses(
        (status = 200, description = "The address is verified", content_type = "text/html"),
        (status = 400, description = "A bad, used or expired link", content_type = "text/html"),
        (status = 503, description = "Mail is not configured, or the database is down", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn verify_email(
    req: HttpRequest,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, Error> {
    let page = PageContext::new(&req)?;
    if require_mail(&page.state).is_err() {
        return Ok(unavailable(&page));
    }
    let token = query.token.clone().unwrap_or_default();
    let result = blocking(&page.state, move |conn, _| {
        recovery::verify_email(conn, &token, crate::now())
    })
    .await;
    Ok(match result {
        Ok(_) => done(
            &page,
            "Email address verified",
            "Thank you: your email address is verified.",
            "/account",
            "Go to your account",
        ),
        Err(Error::InvalidGrant(message)) => page.error(
            StatusCode::BAD_REQUEST,
            "This link does not work",
            &format!("{message}. Ask for a new verification mail from your account page."),
        ),
        Err(e) => page.error_for(&e),
    })
}

fn forgot_page(
    page: &PageContext,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> HttpResponse {
    page.page(
        status,
        "forgot.html",
        "Forgot your password?",
        context! { notice => notice, error => error },
    )
}

/// `GET /password/forgot`: the form asking for a reset link.
#[utoipa::path(
    get,
    path = "/password/forgot",
    tag = "pages",
    responses(
        (status = 200, description = "The form", content_type = "text/html"),
        (status = 503, description = "Mail is not configured", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn forgot_form(req: HttpRequest) -> Result<HttpResponse, Error> {
    let page = PageContext::new(&req)?;
    if require_mail(&page.state).is_err() {
        return Ok(unavailable(&page));
    }
    Ok(forgot_page(&page, StatusCode::OK, None, None))
}

/// The form side of `POST /password/forgot` (its JSON side is `http::email`).
pub async fn forgot(
    req: HttpRequest,
    body: Result<JsonOrForm<ForgotBody>, HttpError>,
) -> Result<HttpResponse, Error> {
    let page = PageContext::new(&req)?;
    let body = match body {
        Ok(JsonOrForm(body)) => body,
        Err(e) => return Ok(page.refused(&e)),
    };
    if require_mail(&page.state).is_err() {
        return Ok(unavailable(&page));
    }
    if !page.check_csrf(body.csrf.as_deref()) {
        return Ok(page.expired_form());
    }
    let state = page.state.clone();
    let ip = client_ip(&req, &state.settings);
    if let Err(e) = crate::http::token::limit_attempts(&state, ip).await {
        return Ok(page.error_for(&e));
    }
    // The page's one field takes a username or an address.
    let lookup = match body.lookup() {
        Some(recovery::Lookup::Username(text)) => recovery::Lookup::Either(text),
        Some(lookup) => lookup,
        None => {
            return Ok(forgot_page(
                &page,
                StatusCode::BAD_REQUEST,
                None,
                Some("Enter your username or email address."),
            ))
        }
    };
    if let Err(e) = forgot_password_of(&state, lookup, ip.map(|ip| ip.to_string())).await {
        return Ok(page.error_for(&e));
    }
    Ok(forgot_page(
        &page,
        StatusCode::OK,
        Some("If an account matches and has an email address, a link to reset its password is on its way. It works for 30 minutes."),
        None,
    ))
}

fn reset_page(
    page: &PageContext,
    status: StatusCode,
    token: &str,
    username: &str,
    error: Option<&str>,
) -> HttpResponse {
    page.page(
        status,
        "reset.html",
        "Choose a new password",
        context! { token => token, username => username, error => error },
    )
}

fn bad_link(page: &PageContext) -> HttpResponse {
    page.error(
        StatusCode::BAD_REQUEST,
        "This link does not work",
        "The reset link is invalid, used or expired (links work once, for 30 minutes). Ask for a new one on the sign-in page.",
    )
}

/// `GET /password/reset?token=`: the page a reset link opens.
#[utoipa::path(
    get,
    path = "/password/reset",
    tag = "pages",
    params(TokenQuery),
    responses(
        (status = 200, description = "The form for the new password", content_type = "text/html"),
        (status = 400, description = "A bad, used or expired link", content_type = "text/html"),
        (status = 503, description = "Mail is not configured, or the database is down", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn reset_form(
    req: HttpRequest,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, Error> {
    let page = PageContext::new(&req)?;
    if require_mail(&page.state).is_err() {
        return Ok(unavailable(&page));
    }
    let token = query.token.clone().unwrap_or_default();
    let lookup = token.clone();
    let result = blocking(&page.state, move |conn, _| {
        recovery::reset_target(conn, &lookup, crate::now())
    })
    .await;
    Ok(match result {
        Ok(user) => reset_page(&page, StatusCode::OK, &token, &user.username, None),
        Err(Error::InvalidGrant(_)) => bad_link(&page),
        Err(e) => page.error_for(&e),
    })
}

/// The form side of `POST /password/reset` (its JSON side is `http::email`).
pub async fn reset(
    req: HttpRequest,
    body: Result<JsonOrForm<ResetBody>, HttpError>,
) -> Result<HttpResponse, Error> {
    let page = PageContext::new(&req)?;
    let body = match body {
        Ok(JsonOrForm(body)) => body,
        Err(e) => return Ok(page.refused(&e)),
    };
    if require_mail(&page.state).is_err() {
        return Ok(unavailable(&page));
    }
    if !page.check_csrf(body.csrf.as_deref()) {
        return Ok(page.expired_form());
    }
    let token = body.token.unwrap_or_default();
    let new_password = body.new_password.unwrap_or_default();
    let state = page.state.clone();
    let ip = client_ip(&req, &state.settings).map(|ip| ip.to_string());
    match reset_password_of(&state, token.clone(), new_password, ip).await {
        Ok(()) => Ok(done(
            &page,
            "Password changed",
            "Your password has been changed, and every device that was signed in has been signed out.",
            "/login",
            "Sign in",
        )),
        Err(Error::WeakPassword(message)) => {
            let lookup = token.clone();
            let username = blocking(&state, move |conn, _| {
                recovery::reset_target(conn, &lookup, crate::now())
            })
            .await
            .map(|user| user.username)
            .unwrap_or_default();
            Ok(reset_page(&page, StatusCode::BAD_REQUEST, &token, &username, Some(&message)))
        }
        Err(Error::InvalidGrant(_)) => Ok(bad_link(&page)),
        Err(e) => Ok(page.error_for(&e)),
    }
}
