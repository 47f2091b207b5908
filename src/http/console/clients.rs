//! The console's clients (`/console/clients`): the list (built-in clients included), create
//! with redirect URIs and the other §6.2 fields, rotate the secret (shown once), delete.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::{context, Value};
use serde::Deserialize;

use crate::admin;
use crate::clients::{Client, ClientWithSecret, GrantType, NewClient};
use crate::error::Error;
use crate::http::blocking;
use crate::http::console::{
    checked, notice_for, split_list, urlencode, Console, DoneQuery, Flash, Intent, Outcome,
};
use crate::http::error::HttpError;
use crate::http::extract::FormBody;

fn client_row(client: &Client) -> Value {
    context! {
        client_id => client.client_id,
        name => client.name,
        public => client.public,
        builtin => crate::clients::is_builtin(&client.client_id),
        grant_types => crate::clients::GrantType::names(&client.grant_types),
        scopes => client.scopes,
        audience => client.audience,
        redirect_uris => client.redirect_uris,
        first_party => client.first_party,
        refresh_cookie => client.refresh_cookie,
        token_alg => client.token_alg,
        access_token_ttl => client.access_token_ttl,
        created_at => crate::http::wire::rfc3339(client.created_at).replace('T', " ").trim_end_matches('Z').to_string(),
    }
}

async fn list_page(console: &Console, flash: Flash, status: StatusCode) -> HttpResponse {
    let loaded = blocking(&console.page.state, move |conn, state| {
        admin::list_clients_with_console(conn, &state.settings.issuer, None, 500)
    })
    .await;
    let page = match loaded {
        Ok(page) => page,
        Err(e) => return console.error_page(&e),
    };
    let algs: Vec<&str> = console
        .page
        .state
        .settings
        .signing_algs
        .iter()
        .map(|a| a.as_str())
        .collect();
    console.render(
        status,
        "console/clients.html",
        "Clients",
        "clients",
        &flash,
        context! {
            clients => page.items.iter().map(client_row).collect::<Vec<_>>(),
            algs => algs,
        },
    )
}

/// `GET /console/clients`: every client, and the form that creates one.
#[utoipa::path(
    get,
    path = "/console/clients",
    operation_id = "console_clients",
    tag = "pages",
    params(("done" = Option<String>, Query, description = "What just happened (a notice)")),
    responses(
        (status = 200, description = "The clients, by id", content_type = "text/html"),
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
    Ok(list_page(&console, flash, StatusCode::OK).await)
}

/// The form that creates a client: every field of `POST /admin/clients`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateClientForm {
    csrf: Option<String>,
    client_id: Option<String>,
    name: Option<String>,
    /// Checked: public (no secret).
    public: Option<String>,
    grant_authorization_code: Option<String>,
    grant_refresh_token: Option<String>,
    grant_client_credentials: Option<String>,
    grant_password: Option<String>,
    grant_mfa_otp: Option<String>,
    /// Separated by spaces or commas.
    scopes: Option<String>,
    audience: Option<String>,
    /// One per line.
    redirect_uris: Option<String>,
    /// One per line.
    post_logout_redirect_uris: Option<String>,
    backchannel_logout_uri: Option<String>,
    first_party: Option<String>,
    refresh_cookie: Option<String>,
    /// Seconds.
    access_token_ttl: Option<String>,
    /// Seconds.
    refresh_token_ttl: Option<String>,
    /// Seconds.
    refresh_reuse_grace: Option<String>,
    /// Empty for the default, RS256.
    token_alg: Option<String>,
}

fn seconds(field: &str, value: Option<&str>) -> Result<Option<i64>, Error> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => text.parse::<i64>().map(Some).map_err(|_| {
            Error::InvalidRequest(format!("{field} must be a whole number of seconds"))
        }),
    }
}

fn text(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl CreateClientForm {
    /// The client the form describes, as `POST /admin/clients` would take it.
    fn into_new_client(self) -> Result<NewClient, Error> {
        let client_id = text(self.client_id)
            .ok_or_else(|| Error::InvalidRequest("a client id is required".into()))?;
        let grants: Vec<String> = [
            (&self.grant_authorization_code, GrantType::AuthorizationCode),
            (&self.grant_refresh_token, GrantType::RefreshToken),
            (&self.grant_client_credentials, GrantType::ClientCredentials),
            (&self.grant_password, GrantType::Password),
            (&self.grant_mfa_otp, GrantType::MfaOtp),
        ]
        .into_iter()
        .filter(|(box_value, _)| checked(box_value))
        .map(|(_, grant)| grant.as_str().to_string())
        .collect();
        Ok(NewClient {
            client_id,
            public: checked(&self.public),
            grant_types: (!grants.is_empty()).then_some(grants),
            scopes: Some(split_list(self.scopes.as_deref())),
            audience: text(self.audience),
            access_token_ttl: seconds(
                "the access-token lifetime",
                self.access_token_ttl.as_deref(),
            )?,
            refresh_token_ttl: seconds(
                "the refresh-token lifetime",
                self.refresh_token_ttl.as_deref(),
            )?,
            refresh_reuse_grace: seconds(
                "the reuse grace period",
                self.refresh_reuse_grace.as_deref(),
            )?,
            refresh_cookie: checked(&self.refresh_cookie),
            token_alg: text(self.token_alg),
            name: text(self.name),
            redirect_uris: split_list(self.redirect_uris.as_deref()),
            post_logout_redirect_uris: split_list(self.post_logout_redirect_uris.as_deref()),
            first_party: checked(&self.first_party),
            backchannel_logout_uri: text(self.backchannel_logout_uri),
        })
    }
}

fn secret_page(console: &Console, created: &ClientWithSecret, title: &str) -> HttpResponse {
    console.render(
        StatusCode::OK,
        "console/secret.html",
        title,
        "clients",
        &Flash::default(),
        context! {
            client => client_row(&created.client),
            secret => created.client_secret,
        },
    )
}

/// `POST /console/clients`: creates a client; a confidential one's secret is on the answer
/// page, this once.
#[utoipa::path(
    post,
    path = "/console/clients",
    operation_id = "console_create_client",
    tag = "pages",
    request_body(content = CreateClientForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Created: the client and, this once, its secret", content_type = "text/html"),
        (status = 400, description = "The list again saying what is wrong (bad client id, redirect URI, grant, lifetime, algorithm), or an expired form", content_type = "text/html"),
        (status = 401, description = "An HTML page: the console session has ended; nothing was changed", content_type = "text/html"),
        (status = 403, description = "An HTML page: not an admin", content_type = "text/html"),
        (status = 409, description = "The list again: the client id is taken", content_type = "text/html"),
        (status = 413, description = "An HTML page: body too large", content_type = "text/html"),
        (status = 415, description = "An HTML page: not a form", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn create(
    req: HttpRequest,
    form: Result<FormBody<CreateClientForm>, HttpError>,
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
    let result = match form.into_new_client().and_then(|new| {
        crate::clients::check_token_alg(new.token_alg.as_deref(), &state.settings.signing_algs)
            .map(|()| new)
    }) {
        Ok(new) => {
            blocking(&state, move |conn, _| {
                admin::create_client(conn, new, &operator, crate::now())
            })
            .await
        }
        Err(e) => Err(e),
    };
    Ok(match result {
        Ok(created) => secret_page(&console, &created, "Client created"),
        Err(e) => match crate::http::console::explain(&e) {
            Some((status, text)) => list_page(&console, Flash::error(text), status).await,
            None => console.error_page(&e),
        },
    })
}

/// One client's actions, named by `action`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ClientActionForm {
    csrf: Option<String>,
    /// `rotate_secret` or `delete`.
    action: Option<String>,
    /// `yes` once the admin confirmed.
    confirm: Option<String>,
}

/// `POST /console/clients/{id}`: rotate the secret (the new one shown once) or delete, each
/// after a confirmation.
#[utoipa::path(
    post,
    path = "/console/clients/{id}",
    operation_id = "console_client_action",
    tag = "pages",
    params(("id" = String, Path, description = "The client id")),
    request_body(content = ClientActionForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The confirmation page, or the new secret shown this once", content_type = "text/html"),
        (status = 303, description = "Deleted: back to the list with a notice"),
        (status = 400, description = "The list again saying what is wrong (a public client has no secret; a built-in client cannot be deleted), or an expired form", content_type = "text/html"),
        (status = 401, description = "An HTML page: the console session has ended; nothing was changed", content_type = "text/html"),
        (status = 403, description = "An HTML page: not an admin", content_type = "text/html"),
        (status = 404, description = "The list again: no such client", content_type = "text/html"),
        (status = 413, description = "An HTML page: body too large", content_type = "text/html"),
        (status = 415, description = "An HTML page: not a form", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn act(
    req: HttpRequest,
    path: web::Path<String>,
    form: Result<FormBody<ClientActionForm>, HttpError>,
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
    let id = path.into_inner();
    let here = format!("/console/clients/{}", urlencode(&id));
    let action = form.action.unwrap_or_default();
    if form.confirm.as_deref() != Some("yes") {
        let consequence = match action.as_str() {
            "rotate_secret" => Some((
                "Rotate this client's secret?",
                format!(
                    "The current secret of `{id}` stops working at once: every app using it \
                     fails to get tokens until it is given the new one, which is shown once, \
                     on the next page."
                ),
                "Rotate secret",
            )),
            "delete" => Some((
                "Delete this client?",
                format!(
                    "`{id}` is removed and every session it holds ends now: its refresh tokens \
                     are refused, and apps using it can no longer get tokens. This cannot be \
                     undone."
                ),
                "Delete client",
            )),
            _ => None,
        };
        if let Some((title, consequence, button)) = consequence {
            return Ok(console.confirm(
                title,
                "clients",
                &consequence,
                &here,
                &[("action", &action)],
                button,
                "/console/clients",
            ));
        }
    }
    let state = console.page.state.clone();
    let operator = console.operator.clone();
    match action.as_str() {
        "rotate_secret" => {
            let result = blocking(&state, move |conn, _| {
                admin::rotate_client_secret(conn, &id, &operator, crate::now())
            })
            .await;
            // This instance stops trusting its cached clients now (client_cache).
            state.client_cache.invalidate();
            Ok(match result {
                Ok(rotated) => secret_page(&console, &rotated, "New client secret"),
                Err(e) => match crate::http::console::explain(&e) {
                    Some((status, text)) => list_page(&console, Flash::error(text), status).await,
                    None => console.error_page(&e),
                },
            })
        }
        "delete" => {
            let result = blocking(&state, move |conn, state| {
                admin::delete_client(conn, &state.metrics, &id, &operator, crate::now())
            })
            .await;
            // This instance stops trusting its cached clients now (client_cache).
            state.client_cache.invalidate();
            Ok(
                match Outcome::of(&console, result, |_| {
                    "/console/clients?done=client_deleted".to_string()
                }) {
                    Outcome::Done(location) => console.see_other(&location),
                    Outcome::Mistake(status, text) => {
                        list_page(&console, Flash::error(text), status).await
                    }
                    Outcome::Page(response) => response,
                },
            )
        }
        _ => Ok(list_page(
            &console,
            Flash::error("This form is not one of the client list's."),
            StatusCode::BAD_REQUEST,
        )
        .await),
    }
}
