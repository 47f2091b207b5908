//! `GET/POST /account`, the signed-in user's page (sessions, consents, sign out everywhere,
//! password change, TOTP enrolment with a QR code), and the bearer JSON routes
//! `GET /account/consents` and `DELETE /account/consents/{client_id}`.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::context;
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::browser_session::{BrowserSession, BROWSER_CLIENT};
use crate::consent;
use crate::error::Error;
use crate::http::account::{change_password_of, check_password_of};
use crate::http::error::ErrorBody;
use crate::http::error::HttpError;
use crate::http::extract::{client_ip, FormBody};
use crate::http::openapi::responses::{NotFound, OtherError, Unauthorized, Unavailable};
use crate::http::pages::login::require_session;
use crate::http::pages::PageContext;
use crate::http::wire::{ConsentView, Page, SessionView};
use crate::http::{authenticate, blocking};
use crate::lockout::Claimant;
use crate::sessions;

/// What the account page shows besides the lists.
#[derive(Default)]
struct Extra {
    notice: Option<String>,
    error: Option<String>,
    enrolment: Option<(String, String)>,
    recovery_codes: Vec<String>,
}

fn qr_svg(uri: &str) -> Result<String, Error> {
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|e| Error::internal("QR code", e))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

async fn account_page(
    page: &PageContext,
    session: &BrowserSession,
    status: StatusCode,
    extra: Extra,
) -> HttpResponse {
    let user_id = session.user.id.clone();
    let current = session.session_id.clone();
    let loaded = blocking(&page.state, move |conn, _| {
        let now = crate::now();
        let sessions = sessions::list_for_user(conn, &user_id, None, 100, now)?.items;
        let consents = consent::list(conn, &user_id)?;
        let mfa_enabled = crate::mfa::is_enabled(conn, &user_id)?;
        let email = match crate::store::users::find(conn, &user_id)? {
            Some(user) => {
                let verified = crate::recovery::is_email_verified(conn, &user)?;
                user.email.map(|address| (address, verified))
            }
            None => None,
        };
        Ok((sessions, consents, mfa_enabled, email))
    })
    .await;
    let (sessions, consents, mfa_enabled, email) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return page.error_for(&e),
    };
    let sessions: Vec<_> = sessions
        .into_iter()
        .map(|s| SessionView::new(s, Some(&current)))
        .map(|s| {
            context! {
                id => s.id,
                client => if s.client_id == BROWSER_CLIENT { "Browser sign-in".to_string() } else { s.client_id },
                current => s.current,
                created_at => s.created_at.replace('T', " ").trim_end_matches('Z').to_string(),
                ip => s.ip,
            }
        })
        .collect();
    let consents: Vec<_> = consents
        .into_iter()
        .map(|c| context! { scopes => consent::scopes_of(&c), client_id => c.client_id })
        .collect();
    let enrolment = match &extra.enrolment {
        Some((secret, uri)) => match qr_svg(uri) {
            Ok(svg) => Some(context! { secret => secret, qr_svg => svg }),
            Err(e) => return page.error_for(&e),
        },
        None => None,
    };
    page.page(
        status,
        "account.html",
        "Your account",
        context! {
            username => session.user.username.clone(),
            sessions => sessions,
            consents => consents,
            mfa_enabled => mfa_enabled,
            enrolment => enrolment,
            recovery_codes => extra.recovery_codes,
            mail_enabled => page.state.settings.mail.is_some(),
            email => email.as_ref().map(|(address, _)| address.clone()),
            email_verified => email.as_ref().is_some_and(|(_, verified)| *verified),
            notice => extra.notice,
            error => extra.error,
        },
    )
}

/// `GET /account`: the account page; without a browser session, to the sign-in page.
#[utoipa::path(
    get,
    path = "/account",
    tag = "pages",
    responses(
        (status = 200, description = "The account page", content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/login`"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn account(req: HttpRequest) -> Result<HttpResponse, Error> {
    let page = PageContext::new(&req)?;
    let session = match require_session(&req, &page).await {
        Ok(session) => session,
        Err(response) => return Ok(response),
    };
    Ok(account_page(&page, &session, StatusCode::OK, Extra::default()).await)
}

/// One of the account page's forms, named by `action`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct AccountForm {
    csrf: Option<String>,
    /// `end_session`, `sign_out_everywhere`, `withdraw_consent`, `change_password`,
    /// `totp_begin`, `totp_confirm`, `verify_email`, `change_email`.
    action: Option<String>,
    /// The session id (`end_session`) or client id (`withdraw_consent`).
    target: Option<String>,
    #[schema(format = Password)]
    current_password: Option<String>,
    #[schema(format = Password)]
    new_password: Option<String>,
    /// `change_email`: the new address (with `password`).
    email: Option<String>,
    /// `totp_begin` and `change_email`: the password, proven first.
    #[schema(format = Password)]
    password: Option<String>,
    otp: Option<String>,
}

/// The account page's user, proving a password: its forms speak for the built-in client.
fn first_party(ip: Option<String>) -> Claimant {
    Claimant {
        client_id: crate::clients::FIRST_PARTY.into(),
        ip,
    }
}

/// `POST /account`: the account page's forms.
#[utoipa::path(
    post,
    path = "/account",
    tag = "pages",
    request_body(content = AccountForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The account page after the change", content_type = "text/html"),
        (status = 303, description = "Not signed in (or just signed out everywhere): to `/login`"),
        (status = 400, description = "The page with what went wrong, or an expired form", content_type = "text/html"),
        (status = 413, description = "An HTML page: body too large", content_type = "text/html"),
        (status = 415, description = "An HTML page: not a form", content_type = "text/html"),
        (status = 429, description = "An HTML page: the account is locked", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn account_action(
    req: HttpRequest,
    form: Result<FormBody<AccountForm>, HttpError>,
) -> Result<HttpResponse, Error> {
    let mut page = PageContext::new(&req)?;
    let form = match form {
        Ok(FormBody(form)) => form,
        Err(e) => return Ok(page.refused(&e)),
    };
    if !page.check_csrf(form.csrf.as_deref()) {
        return Ok(page.expired_form());
    }
    let session = match require_session(&req, &page).await {
        Ok(session) => session,
        Err(response) => return Ok(response),
    };
    let state = page.state.clone();
    let ip = client_ip(&req, &state.settings).map(|ip| ip.to_string());
    let user_id = session.user.id.clone();
    let keep = session.session_id.clone();
    let done = |notice: &str| Extra {
        notice: Some(notice.to_string()),
        ..Extra::default()
    };
    let failed = |error: &str| Extra {
        error: Some(error.to_string()),
        ..Extra::default()
    };
    let extra = match form.action.as_deref() {
        Some("end_session") => {
            let sid = form.target.unwrap_or_default();
            let result = blocking(&state, move |conn, state| {
                sessions::revoke_session(
                    conn,
                    &state.metrics,
                    &sid,
                    Some(&user_id),
                    &user_id,
                    ip,
                    crate::now(),
                )
            })
            .await;
            match result {
                Ok(()) => done("The session has ended."),
                Err(Error::NotFound(_)) => failed("That session is already gone."),
                Err(e) => return Ok(page.error_for(&e)),
            }
        }
        Some("sign_out_everywhere") => {
            let result = blocking(&state, move |conn, state| {
                sessions::revoke_all_sessions(
                    conn,
                    &state.metrics,
                    &user_id,
                    None,
                    &user_id,
                    ip,
                    crate::now(),
                )
            })
            .await;
            if let Err(e) = result {
                return Ok(page.error_for(&e));
            }
            page.clear_session();
            return Ok(page.see_other("/login?signed_out=1"));
        }
        Some("withdraw_consent") => {
            let client_id = form.target.unwrap_or_default();
            let result = blocking(&state, move |conn, state| {
                consent::withdraw(conn, &state.metrics, &user_id, &client_id, ip, crate::now())
            })
            .await;
            match result {
                Ok(_) => done("Access withdrawn; that application's sessions have ended."),
                Err(Error::NotFound(_)) => failed("There was no such access to withdraw."),
                Err(e) => return Ok(page.error_for(&e)),
            }
        }
        Some("change_password") => {
            let current = form.current_password.unwrap_or_default();
            let new_password = form.new_password.unwrap_or_default();
            let result = change_password_of(
                &state,
                session.user.clone(),
                current,
                new_password,
                Some(keep),
                first_party(ip),
            )
            .await;
            match result {
                Ok(()) => done("Password changed. Your other sessions have ended."),
                Err(Error::WeakPassword(problem)) => {
                    failed(&format!("The new password is too weak: {problem}."))
                }
                Err(Error::InvalidGrant(_)) => failed("The current password is not right."),
                Err(e) => return Ok(page.error_for(&e)),
            }
        }
        Some("totp_begin") => {
            let password = form.password.unwrap_or_default();
            let user = session.user.clone();
            let checked = check_password_of(&state, &user, password, first_party(ip)).await;
            match checked {
                Ok(()) => {
                    let result = blocking(&state, move |conn, state| {
                        crate::mfa::begin_enrolment(conn, &state.master_key, &user, crate::now())
                    })
                    .await;
                    match result {
                        Ok(enrolment) => Extra {
                            enrolment: Some((
                                enrolment.secret.expose_secret().to_owned(),
                                enrolment.otpauth_uri.expose_secret().to_owned(),
                            )),
                            ..Extra::default()
                        },
                        Err(Error::Conflict(_)) => {
                            failed("Two-factor authentication is already on.")
                        }
                        Err(e) => return Ok(page.error_for(&e)),
                    }
                }
                Err(Error::InvalidGrant(_)) => failed("The password is not right."),
                Err(e) => return Ok(page.error_for(&e)),
            }
        }
        Some("totp_confirm") => {
            let otp = form.otp.unwrap_or_default();
            let result = blocking(&state, move |conn, state| {
                crate::mfa::confirm_enrolment(
                    conn,
                    &state.metrics,
                    &state.master_key,
                    &user_id,
                    &otp,
                    Some(&keep),
                    ip,
                    crate::now(),
                )
            })
            .await;
            match result {
                Ok(codes) => Extra {
                    recovery_codes: codes,
                    ..Extra::default()
                },
                Err(Error::InvalidGrant(_)) | Err(Error::InvalidRequest(_)) => {
                    failed("That code is not right. Set up again and enter the current code.")
                }
                Err(e) => return Ok(page.error_for(&e)),
            }
        }
        Some("verify_email") => {
            if crate::http::email::require_mail(&state).is_err() {
                return Ok(page.error_for(&Error::Unavailable));
            }
            let result = blocking(&state, move |conn, state| {
                crate::recovery::request_verification(
                    conn,
                    crate::http::email::mail_context(state),
                    &user_id,
                    ip,
                    crate::now(),
                )
            })
            .await;
            match result {
                Ok(queued) => {
                    if queued {
                        state.outbox.wake();
                    }
                    done("A verification link is on its way to your email address.")
                }
                Err(Error::InvalidRequest(_)) => failed("Your account has no email address yet."),
                Err(e) => return Ok(page.error_for(&e)),
            }
        }
        Some("change_email") => {
            if crate::http::email::require_mail(&state).is_err() {
                return Ok(page.error_for(&Error::Unavailable));
            }
            let email = form.email.unwrap_or_default().trim().to_string();
            let password = form.password.unwrap_or_default();
            let user = session.user.clone();
            match crate::accounts::check_email(&email) {
                Err(_) => failed("That is not an email address."),
                Ok(()) => {
                    let checked =
                        check_password_of(&state, &user, password, first_party(ip.clone())).await;
                    match checked {
                        Ok(()) => {
                            let result = blocking(&state, move |conn, _| {
                                crate::recovery::change_email(
                                    conn,
                                    &user_id,
                                    &email,
                                    ip,
                                    crate::now(),
                                )
                            })
                            .await;
                            match result {
                                Ok(_) => {
                                    done("Email address changed. Verify it with the button below.")
                                }
                                Err(e) => return Ok(page.error_for(&e)),
                            }
                        }
                        Err(Error::InvalidGrant(_)) => failed("The password is not right."),
                        Err(e) => return Ok(page.error_for(&e)),
                    }
                }
            }
        }
        _ => {
            return Ok(page.error(
                StatusCode::BAD_REQUEST,
                "Unknown action",
                "This form is not one of the account page's.",
            ))
        }
    };
    let status = if extra.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    // The session may have ended with the change (e.g. a policy that ends every session).
    let session = match require_session(&req, &page).await {
        Ok(session) => session,
        Err(response) => return Ok(response),
    };
    Ok(account_page(&page, &session, status, extra).await)
}

/// `GET /account/consents`: the applications the user allowed, and for which scopes.
#[utoipa::path(
    get,
    path = "/account/consents",
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's consents, by client id (one page: `next_cursor` is null)", body = Page<ConsentView>),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn list_consents(
    req: HttpRequest,
    state: web::Data<crate::state::AppState>,
) -> Result<HttpResponse, Error> {
    let claims = authenticate(&req, &state).await?;
    let items = blocking(&state, move |conn, _| {
        let user = sessions::token_user(conn, &claims)?;
        consent::list(conn, &user.id)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Page::whole(
            items.into_iter().map(ConsentView::from).collect(),
        )))
}

/// `DELETE /account/consents/{client_id}`: withdraws a consent and ends that client's
/// sessions of the user.
#[utoipa::path(
    delete,
    path = "/account/consents/{client_id}",
    tag = "account",
    params(("client_id" = String, Path, description = "The client id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Withdrawn; the user's sessions with the client have ended"),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn withdraw_consent(
    req: HttpRequest,
    state: web::Data<crate::state::AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let claims = authenticate(&req, &state).await?;
    let client_id = path.into_inner();
    let ip = client_ip(&req, &state.settings).map(|ip| ip.to_string());
    blocking(&state, move |conn, state| {
        let user = sessions::token_user(conn, &claims)?;
        consent::withdraw(conn, &state.metrics, &user.id, &client_id, ip, crate::now())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
