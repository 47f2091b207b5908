//! `GET/POST /oauth/logout`: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0,
//! SPEC §6.3). The rules are `oidc::logout`'s; this reads the request, asks for
//! confirmation when there is no `id_token_hint`, and answers pages and redirects.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use minijinja::context;
use serde::Deserialize;

use crate::error::Error;
use crate::http::blocking;
use crate::http::error::HttpError;
use crate::http::extract::FormBody;
use crate::http::pages::{current_session, PageContext};
use crate::oidc::logout::{self, Browser, Checked, LogoutRequest, Refused};

/// The parameters of a logout request, in the query (GET) or a form (POST).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogoutParams {
    /// An ID token tessera issued (it may have expired): who is signing out, of which
    /// client. Without it the user is asked to confirm.
    id_token_hint: Option<String>,
    /// Where to return afterwards: one of the client's registered
    /// `post_logout_redirect_uris`, exactly.
    post_logout_redirect_uri: Option<String>,
    /// Echoed to `post_logout_redirect_uri`.
    state: Option<String>,
    /// The client; must be the hint's `aud` when both are sent.
    client_id: Option<String>,
    /// The confirmation form's CSRF token.
    csrf: Option<String>,
    /// `yes`: the confirmation form was submitted.
    confirm: Option<String>,
}

/// `GET /oauth/logout`.
#[utoipa::path(
    get,
    path = "/oauth/logout",
    tag = "pages",
    params(LogoutParams),
    responses(
        (status = 200, description = "Without `id_token_hint`: a page asking to confirm (a form with a CSRF token); after signing out without `post_logout_redirect_uri`: the signed-out page", content_type = "text/html"),
        (status = 303, description = "Signed out: to `post_logout_redirect_uri`, with `state`"),
        (status = 400, description = "An HTML page (never a redirect): a bad hint, a hint for another client than `client_id`, an unregistered `post_logout_redirect_uri`, or a hint naming a session that is not this browser's", content_type = "text/html"),
        (status = 503, description = "An HTML page: try again shortly", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn logout_get(req: HttpRequest) -> Result<HttpResponse, Error> {
    let page = PageContext::new(&req)?;
    match serde_urlencoded::from_str::<LogoutParams>(req.query_string()) {
        Ok(params) => Ok(answer(&req, page, params, false).await),
        Err(_) => Ok(page.error(
            StatusCode::BAD_REQUEST,
            "This sign-out request cannot be followed",
            "The sign-out request is malformed (a parameter given twice?).",
        )),
    }
}

/// `POST /oauth/logout`: the same parameters as a form; also the confirmation form's target.
#[utoipa::path(
    post,
    path = "/oauth/logout",
    tag = "pages",
    request_body(content = LogoutParams, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A page asking to confirm, or the signed-out page", content_type = "text/html"),
        (status = 303, description = "Signed out: to `post_logout_redirect_uri`, with `state`"),
        (status = 400, description = "An HTML page (never a redirect): a bad hint, a hint for another client, an unregistered `post_logout_redirect_uri`, a foreign session, or an expired confirmation form", content_type = "text/html"),
        (status = 413, description = "An HTML page: body too large", content_type = "text/html"),
        (status = 415, description = "An HTML page: not a form", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn logout_post(
    req: HttpRequest,
    form: Result<FormBody<LogoutParams>, HttpError>,
) -> Result<HttpResponse, Error> {
    let page = PageContext::new(&req)?;
    match form {
        Ok(FormBody(params)) => Ok(answer(&req, page, params, true).await),
        Err(e) => Ok(page.refused(&e)),
    }
}

fn refused(page: &PageContext, refusal: &Refused) -> HttpResponse {
    page.error(
        StatusCode::BAD_REQUEST,
        "This sign-out request cannot be followed",
        refusal.0,
    )
}

async fn answer(
    req: &HttpRequest,
    mut page: PageContext,
    params: LogoutParams,
    posted: bool,
) -> HttpResponse {
    let request = LogoutRequest {
        id_token_hint: params.id_token_hint,
        post_logout_redirect_uri: params.post_logout_redirect_uri,
        state: params.state,
        client_id: params.client_id,
    };
    let checked_request = request.clone();
    let checked = blocking(&page.state, move |conn, state| {
        let scopes = state.settings.scopes.clone();
        logout::check(&state.keys, &checked_request, |id| {
            Ok(crate::clients::find(conn, id, &scopes)?.map(|c| c.post_logout_redirect_uris))
        })
    })
    .await;
    let checked: Checked = match checked {
        Ok(Ok(checked)) => checked,
        Ok(Err(refusal)) => return refused(&page, &refusal),
        Err(e) => return page.error_for(&e),
    };
    if checked.hint.is_none() {
        // Anyone can link a browser here, so without a hint the user says yes first.
        if !(posted && params.confirm.as_deref() == Some("yes")) {
            let values = context! {
                client_id => checked.client_id,
                client_name => checked.client_id.clone(),
                post_logout_redirect_uri => request.post_logout_redirect_uri,
                state => request.state,
            };
            return page.page(StatusCode::OK, "logout.html", "Sign out?", values);
        }
        if !page.check_csrf(params.csrf.as_deref()) {
            return page.expired_form();
        }
    }
    let browser = match current_session(req, &page.state).await {
        Ok(found) => found.map(|(_, session)| session),
        Err(e) => return page.error_for(&e),
    };
    let hint = checked.hint.clone();
    let ended = blocking(&page.state, move |conn, state| {
        let browser = browser.as_ref().map(|b| Browser {
            session_id: &b.session_id,
            user_id: &b.user.id,
        });
        logout::end(conn, &state.metrics, hint.as_ref(), browser, crate::now())
    })
    .await;
    match ended {
        Ok(Ok(_ended)) => {}
        Ok(Err(refusal)) => return refused(&page, &refusal),
        Err(e) => return page.error_for(&e),
    }
    page.clear_session();
    match checked.redirect {
        Some(location) => page.see_other(&location),
        None => page.page(
            StatusCode::OK,
            "done.html",
            "Signed out",
            context! { message => "You are signed out. You can close this page." },
        ),
    }
}
