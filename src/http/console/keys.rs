//! The console's signing keys (`/console/keys`): one timeline per algorithm (staged, active,
//! previous, expired and retired keys), rotate now, and retire after a confirmation that
//! says what stops working.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::{context, Value};
use serde::Deserialize;

use crate::admin;
use crate::error::Error;
use crate::http::blocking;
use crate::http::console::{notice_for, Console, DoneQuery, Flash, Intent, Outcome};
use crate::http::error::HttpError;
use crate::http::extract::FormBody;
use crate::http::wire::{KeyStatus, KeyView};

fn when(rfc3339: &Option<String>) -> Option<String> {
    rfc3339.as_deref().map(|t| {
        t.replace('T', " ")
            .split('.')
            .next()
            .unwrap_or_default()
            .trim_end_matches('Z')
            .to_string()
    })
}

fn key_row(key: &KeyView) -> Value {
    context! {
        kid => key.kid,
        // Serialized, as the admin API writes it.
        status => key.status,
        bits => key.bits,
        created_at => when(&Some(key.created_at.clone())),
        activates_at => when(&Some(key.activates_at.clone())),
        deactivates_at => when(&key.deactivates_at),
        published_until => when(&key.published_until),
        retired_at => when(&key.retired_at),
        retirable => matches!(key.status, KeyStatus::Active | KeyStatus::Staged | KeyStatus::Previous),
    }
}

/// The keys grouped by algorithm, newest first within each (the order of the timeline).
fn timelines(keys: &[KeyView]) -> Vec<Value> {
    let mut algs: Vec<&str> = Vec::new();
    for key in keys {
        if !algs.contains(&key.alg.as_str()) {
            algs.push(&key.alg);
        }
    }
    algs.into_iter()
        .map(|alg| {
            let rows: Vec<Value> = keys
                .iter()
                .rev()
                .filter(|k| k.alg == alg)
                .map(key_row)
                .collect();
            context! { alg => alg, keys => rows }
        })
        .collect()
}

async fn keys_page(console: &Console, flash: Flash, status: StatusCode) -> HttpResponse {
    let loaded = blocking(&console.page.state, move |conn, state| {
        let keys = admin::list_keys(conn, &state.key_policy, crate::tokens::now_ms())?;
        Ok(keys.into_iter().map(KeyView::from).collect::<Vec<_>>())
    })
    .await;
    let keys = match loaded {
        Ok(keys) => keys,
        Err(e) => return console.error_page(&e),
    };
    let configured: Vec<&str> = console
        .page
        .state
        .settings
        .signing_algs
        .iter()
        .map(|a| a.as_str())
        .collect();
    console.render(
        status,
        "console/keys.html",
        "Signing keys",
        "keys",
        &flash,
        context! { timelines => timelines(&keys), configured => configured },
    )
}

/// `GET /console/keys`: every key's place in its algorithm's timeline.
#[utoipa::path(
    get,
    path = "/console/keys",
    operation_id = "console_keys",
    tag = "pages",
    params(("done" = Option<String>, Query, description = "What just happened (a notice)")),
    responses(
        (status = 200, description = "The key timelines", content_type = "text/html"),
        (status = 303, description = "Not signed in to the console: to the sign-in"),
        (status = 403, description = "An HTML page: not an admin", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn list(req: HttpRequest, query: web::Query<DoneQuery>) -> Result<HttpResponse, Error> {
    let console = match Console::open(&req, Intent::View).await {
        Ok(console) => console,
        Err(response) => return Ok(response),
    };
    let flash = Flash {
        notice: notice_for(query.done.as_deref()),
        error: None,
    };
    Ok(keys_page(&console, flash, StatusCode::OK).await)
}

/// The key page's forms.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct KeyActionForm {
    csrf: Option<String>,
    /// `rotate` or `retire`.
    action: Option<String>,
    /// `rotate`: one configured algorithm, or empty for all.
    alg: Option<String>,
    /// `retire`: the key id.
    kid: Option<String>,
    /// `yes` once the admin confirmed a retirement.
    confirm: Option<String>,
}

/// What retiring `key` breaks, in words.
fn retire_consequence(key: &KeyView) -> String {
    match key.status {
        KeyStatus::Active => format!(
            "{kid} signs every new {alg} token now. Retiring it first makes the staged {alg} \
             key active, then removes {kid} from the JWKS at once: every access token and \
             refresh token it signed is refused from now on, by tessera at once and by \
             resource servers at their next JWKS fetch. Users and apps holding those tokens \
             must sign in or fetch tokens again (this console signs you in again too).",
            kid = key.kid,
            alg = key.alg
        ),
        KeyStatus::Previous => format!(
            "{kid} no longer signs, but tokens it signed until {until} are still valid. \
             Retiring it removes it from the JWKS at once: those access tokens and refresh \
             tokens are refused from now on (by resource servers at their next JWKS fetch), \
             and their users must sign in again (this console signs you in again too). Do \
             this when the key may be compromised.",
            kid = key.kid,
            until = when(&key.deactivates_at).unwrap_or_else(|| "its rotation".into())
        ),
        _ => format!(
            "{kid} is staged and has signed nothing yet, so no issued token breaks. It leaves \
             the JWKS at once and another {alg} key is staged in its place.",
            kid = key.kid,
            alg = key.alg
        ),
    }
}

/// `POST /console/keys`: rotate now (every algorithm, or one), or retire a key after a
/// confirmation naming the consequence.
#[utoipa::path(
    post,
    path = "/console/keys",
    operation_id = "console_key_action",
    tag = "pages",
    request_body(content = KeyActionForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The confirmation page of a retirement", content_type = "text/html"),
        (status = 303, description = "Done: back to the keys with a notice"),
        (status = 400, description = "The keys again saying what is wrong (an algorithm that is not configured), or an expired form", content_type = "text/html"),
        (status = 401, description = "An HTML page: the console session has ended; nothing was changed", content_type = "text/html"),
        (status = 403, description = "An HTML page: not an admin", content_type = "text/html"),
        (status = 404, description = "The keys again: no such live key", content_type = "text/html"),
        (status = 413, description = "An HTML page: body too large", content_type = "text/html"),
        (status = 415, description = "An HTML page: not a form", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn act(
    req: HttpRequest,
    form: Result<FormBody<KeyActionForm>, HttpError>,
) -> Result<HttpResponse, Error> {
    let console = match Console::open(&req, Intent::Act).await {
        Ok(console) => console,
        Err(response) => return Ok(response),
    };
    let form = match form {
        Ok(FormBody(form)) => form,
        Err(e) => return Ok(console.refused(&e)),
    };
    if !console.page.check_csrf(form.csrf.as_deref()) {
        return Ok(console.expired_form());
    }
    let state = console.page.state.clone();
    let operator = console.operator.clone();
    let outcome = match form.action.as_deref() {
        Some("rotate") => {
            let alg = form.alg.filter(|a| !a.is_empty());
            let result = match admin::configured_alg(&state.settings.signing_algs, alg.as_deref()) {
                Ok(alg) => {
                    blocking(&state, move |conn, state| {
                        admin::rotate_keys(conn, state.signing_keys(), &operator, alg)
                    })
                    .await
                }
                Err(e) => Err(e),
            };
            Outcome::of(&console, result, |_| "/console/keys?done=rotated".into())
        }
        Some("retire") => {
            let kid = form.kid.unwrap_or_default();
            if form.confirm.as_deref() != Some("yes") {
                let lookup = kid.clone();
                let found = blocking(&state, move |conn, state| {
                    let keys = admin::list_keys(conn, &state.key_policy, crate::tokens::now_ms())?;
                    Ok(keys.into_iter().map(KeyView::from).find(|k| {
                        k.kid == lookup
                            && matches!(
                                k.status,
                                KeyStatus::Active | KeyStatus::Staged | KeyStatus::Previous
                            )
                    }))
                })
                .await;
                match found {
                    Ok(Some(key)) => {
                        return Ok(console.confirm(
                            &format!("Retire {} key {}?", key.alg, key.kid),
                            "keys",
                            &retire_consequence(&key),
                            "/console/keys",
                            &[("action", "retire"), ("kid", &key.kid)],
                            "Retire key",
                            "/console/keys",
                        ))
                    }
                    Ok(None) => Outcome::Mistake(
                        StatusCode::NOT_FOUND,
                        format!("There is no live signing key `{kid}`."),
                    ),
                    Err(e) => Outcome::Page(console.error_page(&e)),
                }
            } else {
                let result = blocking(&state, move |conn, state| {
                    admin::retire_key(conn, state.signing_keys(), &kid, &operator)
                })
                .await;
                Outcome::of(&console, result, |_| "/console/keys?done=retired".into())
            }
        }
        _ => Outcome::Mistake(
            StatusCode::BAD_REQUEST,
            "This form is not one of the key page's.".into(),
        ),
    };
    Ok(match outcome {
        Outcome::Done(location) => console.see_other(&location),
        Outcome::Mistake(status, text) => keys_page(&console, Flash::error(text), status).await,
        Outcome::Page(response) => response,
    })
}
