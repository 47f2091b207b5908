//! `GET /oauth/authorize` and the consent form `POST /consent`: HTTP around
//! `crate::authorize`. Until the client and redirect URI are verified, errors are pages;
//! afterwards they are 303 redirects to the client.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use minijinja::context;
use serde::Deserialize;

use crate::authorize::{
    self, AuthorizationRequest, Next, PageError, RedirectError, Target, Validated,
};
use crate::browser_session::BrowserSession;
use crate::error::Error;
use crate::http::blocking;
use crate::http::error::HttpError;
use crate::http::extract::{client_ip, FormBody};
use crate::http::pages::{current_session, PageContext};

/// What each scope means, for the consent page.
fn scope_text(scope: &str) -> &'static str {
    match scope {
        "openid" => "confirm who you are",
        "profile" => "your username and profile",
        "email" => "your email address",
        "offline_access" => "stay signed in",
        _ => "",
    }
}

enum Checked {
    Page(HttpResponse),
    Redirect(Box<(Target, RedirectError)>),
    Valid(Box<Validated>),
}

async fn check(page: &PageContext, query: &str) -> Checked {
    let request = AuthorizationRequest::parse(query);
    let checked = request.clone();
    let target = blocking(&page.state, move |conn, state| {
        Ok(authorize::check_target(
            conn,
            &state.settings.scopes,
            &state.settings.issuer,
            &checked,
        ))
    })
    .await;
    let target = match target {
        Ok(Ok(target)) => target,
        Ok(Err(PageError::BadRequest(message))) => {
            return Checked::Page(page.error(
                StatusCode::BAD_REQUEST,
                "This sign-in link is not valid",
                &message,
            ))
        }
        Ok(Err(PageError::Unavailable)) | Err(_) => {
            return Checked::Page(page.error_for(&Error::Unavailable))
        }
    };
    match authorize::validate(target, &request) {
        Ok(valid) => Checked::Valid(Box::new(valid)),
        Err(refused) => Checked::Redirect(refused),
    }
}

fn redirect_error(page: &PageContext, target: &Target, error: &RedirectError) -> HttpResponse {
    page.see_other(&authorize::error_redirect(
        target,
        error,
        &page.state.settings.issuer,
    ))
}

fn consent_page(
    page: &PageContext,
    valid: &Validated,
    session: &BrowserSession,
    query: &str,
) -> HttpResponse {
    let scopes: Vec<_> = valid
        .scope
        .iter()
        .map(|s| context! { name => s, text => scope_text(s) })
        .collect();
    page.page(
        StatusCode::OK,
        "consent.html",
        "Allow access?",
        context! {
            client_name => valid.target.client.display_name(),
            username => session.user.username.clone(),
            scopes => scopes,
            request => query,
        },
    )
}

/// Runs the decision for a valid request and answers it.
async fn answer(
    page: PageContext,
    valid: Validated,
    query: &str,
    session: Option<BrowserSession>,
) -> HttpResponse {
    let decided = {
        let valid = valid.clone();
        let session = session.clone();
        blocking(&page.state, move |conn, _| {
            authorize::decide(conn, &valid, session.as_ref(), crate::now())
        })
        .await
    };
    match decided {
        Ok(Next::SignIn) => {
            let mut location = format!(
                "/login?return_to={}",
                urlencode(&format!("/oauth/authorize?{query}"))
            );
            if let Some(hint) = &valid.login_hint {
                location.push_str(&format!("&login_hint={}", urlencode(hint)));
            }
            page.see_other(&location)
        }
        Ok(Next::Consent) => match &session {
            Some(session) => consent_page(&page, &valid, session, query),
            None => page.error_for(&Error::bug("consent", "no session")),
        },
        Ok(Next::Code(code)) => page.see_other(&authorize::code_redirect(
            &valid.target,
            &code,
            &page.state.settings.issuer,
        )),
        Ok(Next::Error(error)) => redirect_error(&page, &valid.target, &error),
        Err(e) => redirect_error(&page, &valid.target, &RedirectError::from_error(&e)),
    }
}

pub(crate) fn urlencode(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)])
        .map(|s| s[2..].to_string())
        .unwrap_or_default()
}

/// `GET /oauth/authorize` (RFC 6749 §4.1.1 with PKCE, RFC 7636).
#[utoipa::path(
    get,
    path = "/oauth/authorize",
    tag = "pages",
    params(
        ("response_type" = String, Query, description = "`code`"),
        ("client_id" = String, Query),
        ("redirect_uri" = Option<String>, Query, description = "Required unless the client has exactly one"),
        ("code_challenge" = String, Query, description = "BASE64URL(SHA-256(code_verifier))"),
        ("code_challenge_method" = String, Query, description = "`S256`"),
        ("scope" = Option<String>, Query),
        ("state" = Option<String>, Query),
        ("nonce" = Option<String>, Query),
        ("prompt" = Option<String>, Query, description = "`none`, `login`, `consent`"),
        ("max_age" = Option<i64>, Query),
        ("login_hint" = Option<String>, Query),
    ),
    responses(
        (status = 200, description = "The consent page (HTML)", content_type = "text/html"),
        (status = 303, description = "To the client with `code`, `state`, `iss` or with `error`, `error_description`, `state`, `iss`; or to the sign-in page"),
        (status = 400, description = "An HTML page: unknown client or unregistered redirect URI (never redirected)", content_type = "text/html"),
        (status = 503, description = "An HTML page: the client could not be checked", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn authorize(req: HttpRequest) -> Result<HttpResponse, Error> {
    let page = PageContext::new(&req)?;
    let query = req.query_string().to_string();
    let valid = match check(&page, &query).await {
        Checked::Page(response) => return Ok(response),
        Checked::Redirect(refused) => return Ok(redirect_error(&page, &refused.0, &refused.1)),
        Checked::Valid(valid) => *valid,
    };
    let session = match current_session(&req, &page.state).await {
        Ok(session) => session.map(|(_, s)| s),
        Err(e) => {
            return Ok(redirect_error(
                &page,
                &valid.target,
                &RedirectError::from_error(&e),
            ))
        }
    };
    Ok(answer(page, valid, &query, session).await)
}

/// The consent form.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ConsentForm {
    csrf: Option<String>,
    /// The authorization request's query string, as the consent page received it.
    request: Option<String>,
    /// `allow` or `deny`.
    decision: Option<String>,
}

/// `POST /consent`: "Allow" remembers the scopes for this user and client and continues the
/// authorization request; "Deny" redirects with `access_denied`.
#[utoipa::path(
    post,
    path = "/consent",
    tag = "pages",
    request_body(content = ConsentForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "To the client with a code, or with `error=access_denied`"),
        (status = 400, description = "An HTML page: expired form, or a bad authorization request", content_type = "text/html"),
        (status = 413, description = "An HTML page: body too large", content_type = "text/html"),
        (status = 415, description = "An HTML page: not a form", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn consent(
    req: HttpRequest,
    form: Result<FormBody<ConsentForm>, HttpError>,
) -> Result<HttpResponse, Error> {
    let page = PageContext::new(&req)?;
    let form = match form {
        Ok(FormBody(form)) => form,
        Err(e) => return Ok(page.refused(&e)),
    };
    if !page.check_csrf(form.csrf.as_deref()) {
        return Ok(page.expired_form());
    }
    let query = form.request.unwrap_or_default();
    let valid = match check(&page, &query).await {
        Checked::Page(response) => return Ok(response),
        Checked::Redirect(refused) => return Ok(redirect_error(&page, &refused.0, &refused.1)),
        Checked::Valid(valid) => *valid,
    };
    let session = match current_session(&req, &page.state).await {
        Ok(Some((_, session))) => session,
        Ok(None) => return Ok(answer(page, valid, &query, None).await),
        Err(e) => {
            return Ok(redirect_error(
                &page,
                &valid.target,
                &RedirectError::from_error(&e),
            ))
        }
    };
    if form.decision.as_deref() != Some("allow") {
        return Ok(redirect_error(
            &page,
            &valid.target,
            &authorize::access_denied(),
        ));
    }
    let ip = client_ip(&req, &page.state.settings).map(|ip| ip.to_string());
    let issued = {
        let valid = valid.clone();
        blocking(&page.state, move |conn, _| {
            let now = crate::now();
            crate::consent::grant(
                conn,
                &session.user.id,
                &valid.target.client.client_id,
                &valid.scope,
                ip,
                now,
            )?;
            authorize::issue_code(conn, &valid, &session, now)
        })
        .await
    };
    Ok(match issued {
        Ok(code) => page.see_other(&authorize::code_redirect(
            &valid.target,
            &code,
            &page.state.settings.issuer,
        )),
        Err(e) => redirect_error(&page, &valid.target, &RedirectError::from_error(&e)),
    })
}
