//! The console's users: search and create (`/console/users`), and one user
//! (`/console/users/{id}`): roles, attributes, disable/enable, reset MFA, delete, and their
//! sessions with revoke one / revoke all. Each action is the admin API's domain function.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::{context, Value};
use serde::Deserialize;
use serde_json::Map;

use crate::accounts::{self, UserChanges};
use crate::admin;
use crate::browser_session::BROWSER_CLIENT;
use crate::error::Error;
use crate::http::blocking;
use crate::http::console::{
    notice_for, split_list, urlencode, Console, DoneQuery, Flash, Intent, Outcome,
};
use crate::http::error::HttpError;
use crate::http::extract::FormBody;
use crate::http::wire::{Page, SessionView, UserView};

const PAGE_SIZE: i64 = 25;

/// `?q=&cursor=&done=` of the user list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// Search in usernames and emails.
    q: Option<String>,
    /// The cursor of the next page.
    cursor: Option<String>,
    /// What just happened (a notice).
    done: Option<String>,
}

fn when(rfc3339: &str) -> String {
    rfc3339.replace('T', " ").trim_end_matches('Z').to_string()
}

fn user_row(user: &UserView) -> Value {
    context! {
        id => user.id,
        username => user.username,
        email => user.email,
        roles => user.roles,
        disabled => user.disabled,
        locked => user.locked_until.is_some(),
        created_at => when(&user.created_at),
    }
}

async fn list_page(
    console: &Console,
    q: Option<String>,
    cursor: Option<String>,
    flash: Flash,
    status: StatusCode,
) -> HttpResponse {
    let search = q.clone().filter(|q| !q.trim().is_empty());
    let loaded = blocking(&console.page.state, move |conn, _| {
        let page = admin::list_users(conn, search.as_deref(), cursor.as_deref(), PAGE_SIZE)?;
        Ok(Page::of(page, UserView::from))
    })
    .await;
    let page = match loaded {
        Ok(page) => page,
        Err(e) => match crate::http::console::explain(&e) {
            Some((status, text)) => {
                return console.render(
                    status,
                    "console/users.html",
                    "Users",
                    "users",
                    &Flash::error(text),
                    context! { users => Vec::<Value>::new(), q => q },
                )
            }
            None => return console.error_page(&e),
        },
    };
    let next = page.next_cursor.map(|c| {
        format!(
            "/console/users?q={}&cursor={}",
            urlencode(q.as_deref().unwrap_or("")),
            urlencode(&c)
        )
    });
    console.render(
        status,
        "console/users.html",
        "Users",
        "users",
        &flash,
        context! {
            users => page.items.iter().map(user_row).collect::<Vec<_>>(),
            q => q,
            next => next,
        },
    )
}

/// `GET /console/users`: search users, and the form that creates one.
#[utoipa::path(
    get,
    path = "/console/users",
    operation_id = "console_users",
    tag = "pages",
    params(UsersQuery),
    responses(
        (status = 200, description = "Users matching the search, by username", content_type = "text/html"),
        (status = 303, description = "Not signed in to the console: to the sign-in"),
        (status = 403, description = "An HTML page: not an admin", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn list(req: HttpRequest, query: web::Query<UsersQuery>) -> Result<HttpResponse, Error> {
    let console = match Console::open(&req, Intent::View).await {
        Ok(console) => console,
        Err(response) => return Ok(response),
    };
    let UsersQuery { q, cursor, done } = query.into_inner();
    let flash = Flash {
        notice: notice_for(done.as_deref()),
        error: None,
    };
    Ok(list_page(&console, q, cursor, flash, StatusCode::OK).await)
}

/// The form that creates a user.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateUserForm {
    csrf: Option<String>,
    username: Option<String>,
    email: Option<String>,
    #[schema(format = Password)]
    password: Option<String>,
    /// Separated by commas or spaces.
    roles: Option<String>,
}

/// `POST /console/users`: creates a user under the registration rules (the admin chooses the
/// password; the policy applies), audited with the admin as actor.
#[utoipa::path(
    post,
    path = "/console/users",
    operation_id = "console_create_user",
    tag = "pages",
    request_body(content = CreateUserForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Created: to the new user's page"),
        (status = 400, description = "The list again saying what is wrong (bad username, weak password, bad role), or an expired form", content_type = "text/html"),
        (status = 401, description = "An HTML page: the console session has ended; nothing was changed", content_type = "text/html"),
        (status = 403, description = "An HTML page: not an admin", content_type = "text/html"),
        (status = 409, description = "The list again: the username is taken", content_type = "text/html"),
        (status = 413, description = "An HTML page: body too large", content_type = "text/html"),
        (status = 415, description = "An HTML page: not a form", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn create(
    req: HttpRequest,
    form: Result<FormBody<CreateUserForm>, HttpError>,
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
    let username = form.username.unwrap_or_default().trim().to_string();
    let email = form
        .email
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty());
    let password = form.password.unwrap_or_default();
    let roles = split_list(form.roles.as_deref());
    let result = crate::http::admin::create_user_as(
        &console.page.state,
        console.operator.clone(),
        username,
        password,
        email,
        roles,
    )
    .await;
    Ok(
        match Outcome::of(&console, result, |user| {
            format!("/console/users/{}?done=created", urlencode(&user.id))
        }) {
            Outcome::Done(location) => console.see_other(&location),
            Outcome::Mistake(status, text) => {
                list_page(&console, None, None, Flash::error(text), status).await
            }
            Outcome::Page(response) => response,
        },
    )
}

async fn user_page(
    console: &Console,
    id: String,
    flash: Flash,
    status: StatusCode,
) -> HttpResponse {
    let now = crate::now();
    let loaded = blocking(&console.page.state, move |conn, _| {
        let user = UserView::from(admin::get_user(conn, &id)?);
        let sessions = Page::of(admin::user_sessions(conn, &id, None, 100, now)?, |s| {
            SessionView::new(s, None)
        });
        let mfa = crate::mfa::is_enabled(conn, &id)?;
        Ok((user, sessions, mfa))
    })
    .await;
    let (user, sessions, mfa_enabled) = match loaded {
        Ok(loaded) => loaded,
        Err(Error::NotFound(_)) => {
            return console.finish(console.page.error(
                StatusCode::NOT_FOUND,
                "No such user",
                "There is no user with this id; they may have been deleted.",
            ))
        }
        Err(e) => return console.error_page(&e),
    };
    let sessions: Vec<Value> = sessions
        .items
        .iter()
        .map(|s| {
            context! {
                id => s.id,
                client => if s.client_id == BROWSER_CLIENT { "browser sign-in".to_string() } else { s.client_id.clone() },
                created_at => when(&s.created_at),
                last_used_at => when(&s.last_used_at),
                ip => s.ip,
                user_agent => s.user_agent,
            }
        })
        .collect();
    let attributes = serde_json::to_string_pretty(&user.attributes).unwrap_or_default();
    console.render(
        status,
        "console/user.html",
        &user.username,
        "users",
        &flash,
        context! {
            user => user_row(&user),
            user_id => user.id,
            roles_text => user.roles.join(", "),
            attributes => attributes,
            locked_until => user.locked_until.as_deref().map(when),
            updated_at => when(&user.updated_at),
            mfa_enabled => mfa_enabled,
            sessions => sessions,
            is_self => user.id == console.operator.actor,
        },
    )
}

/// `GET /console/users/{id}`: one user and their live sessions.
#[utoipa::path(
    get,
    path = "/console/users/{id}",
    operation_id = "console_user",
    tag = "pages",
    params(("id" = String, Path, description = "The user id"), ("done" = Option<String>, Query, description = "What just happened (a notice)")),
    responses(
        (status = 200, description = "The user, their roles, attributes, MFA and sessions", content_type = "text/html"),
        (status = 303, description = "Not signed in to the console: to the sign-in"),
        (status = 403, description = "An HTML page: not an admin", content_type = "text/html"),
        (status = 404, description = "An HTML page: no such user", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn show(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, Error> {
    let console = match Console::open(&req, Intent::View).await {
        Ok(console) => console,
        Err(response) => return Ok(response),
    };
    let flash = Flash {
        notice: notice_for(query.done.as_deref()),
        error: None,
    };
    Ok(user_page(&console, path.into_inner(), flash, StatusCode::OK).await)
}

/// One of the user page's forms, named by `action`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct UserActionForm {
    csrf: Option<String>,
    /// `roles`, `attributes`, `disable`, `enable`, `reset_mfa`, `revoke_session`,
    /// `revoke_sessions`, `delete`.
    action: Option<String>,
    /// `revoke_session`: the session id.
    target: Option<String>,
    /// `roles`: separated by commas or spaces.
    roles: Option<String>,
    /// `attributes`: a JSON object.
    attributes: Option<String>,
    /// `yes` once the admin confirmed a destructive action.
    confirm: Option<String>,
}

/// `POST /console/users/{id}`: the user page's actions; destructive ones (disable, reset
/// MFA, end sessions, delete) ask for confirmation first.
#[utoipa::path(
    post,
    path = "/console/users/{id}",
    operation_id = "console_user_action",
    tag = "pages",
    params(("id" = String, Path, description = "The user id")),
    request_body(content = UserActionForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The confirmation page of a destructive action", content_type = "text/html"),
        (status = 303, description = "Done: back to the user (or the list, after a delete) with a notice"),
        (status = 400, description = "The user page again saying what is wrong (bad role, attributes not a JSON object), or an expired form", content_type = "text/html"),
        (status = 401, description = "An HTML page: the console session has ended; nothing was changed", content_type = "text/html"),
        (status = 403, description = "An HTML page: not an admin", content_type = "text/html"),
        (status = 404, description = "An HTML page: no such user or session", content_type = "text/html"),
        (status = 413, description = "An HTML page: body too large", content_type = "text/html"),
        (status = 415, description = "An HTML page: not a form", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn act(
    req: HttpRequest,
    path: web::Path<String>,
    form: Result<FormBody<UserActionForm>, HttpError>,
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
    let here = format!("/console/users/{}", urlencode(&id));
    let confirmed = form.confirm.as_deref() == Some("yes");
    let action = form.action.clone().unwrap_or_default();
    let target = form.target.clone().unwrap_or_default();
    if !confirmed {
        let ask = |title: &str, consequence: &str, button: &str| {
            console.confirm(
                title,
                "users",
                consequence,
                &here,
                &[("action", &action), ("target", &target)],
                button,
                &here,
            )
        };
        match action.as_str() {
            "disable" => {
                return Ok(ask(
                    "Disable this user?",
                    "Every session of the user ends now: their refresh tokens are refused and \
                     their access tokens stop working at tessera at once. They cannot sign in \
                     until enabled again.",
                    "Disable user",
                ))
            }
            "reset_mfa" => {
                return Ok(ask(
                    "Reset two-factor authentication?",
                    "The user's authenticator app and recovery codes stop working; they sign \
                     in with their password alone until they set MFA up again.",
                    "Reset MFA",
                ))
            }
            "revoke_session" => {
                return Ok(ask(
                    "End this session?",
                    &format!(
                        "Session {target} ends now: its refresh token is refused at the token \
                         endpoint, and its access tokens stop working at tessera at once."
                    ),
                    "End session",
                ))
            }
            "revoke_sessions" => {
                return Ok(ask(
                    "End every session of this user?",
                    "All of the user's sessions end now, browser sign-ins included: every \
                     refresh token is refused and the user must sign in again everywhere.",
                    "End all sessions",
                ))
            }
            "delete" => {
                return Ok(ask(
                    "Delete this user?",
                    "The account, its sessions and its MFA are removed for good. This cannot \
                     be undone.",
                    "Delete user",
                ))
            }
            _ => {}
        }
    }
    let state = console.page.state.clone();
    let operator = console.operator.clone();
    let now = crate::now();
    let user_id = id.clone();
    let outcome = match action.as_str() {
        "roles" | "attributes" | "disable" | "enable" => {
            let changes = match action.as_str() {
                "roles" => Ok(UserChanges {
                    roles: Some(split_list(form.roles.as_deref())),
                    disabled: None,
                    attributes: None,
                }),
                "attributes" => parse_attributes(form.attributes.as_deref()).map(|a| UserChanges {
                    roles: None,
                    disabled: None,
                    attributes: Some(a),
                }),
                other => Ok(UserChanges {
                    roles: None,
                    disabled: Some(other == "disable"),
                    attributes: None,
                }),
            };
            let result = match changes {
                Ok(changes) => {
                    blocking(&state, move |conn, state| {
                        accounts::update_user(
                            conn,
                            &state.metrics,
                            &user_id,
                            &changes,
                            &operator.actor,
                            operator.ip.clone(),
                            now,
                        )
                    })
                    .await
                }
                Err(e) => Err(e),
            };
            let done = match action.as_str() {
                "disable" => "disabled",
                "enable" => "enabled",
                _ => "saved",
            };
            Outcome::of(&console, result, |_| format!("{here}?done={done}"))
        }
        "reset_mfa" => {
            let result = blocking(&state, move |conn, _| {
                crate::mfa::admin_reset(conn, &user_id, &operator.actor, operator.ip.clone(), now)
            })
            .await;
            Outcome::of(&console, result, |_| format!("{here}?done=mfa_reset"))
        }
        "revoke_session" => {
            let sid = target.clone();
            let result = blocking(&state, move |conn, state| {
                admin::revoke_session(conn, &state.metrics, &sid, &operator, now)
            })
            .await;
            Outcome::of(&console, result, |_| format!("{here}?done=session_revoked"))
        }
        "revoke_sessions" => {
            let result = blocking(&state, move |conn, state| {
                admin::revoke_user_sessions(conn, &state.metrics, &user_id, &operator, now)
            })
            .await;
            Outcome::of(&console, result, |_| {
                format!("{here}?done=sessions_revoked")
            })
        }
        "delete" => {
            let result = blocking(&state, move |conn, state| {
                accounts::delete_user(
                    conn,
                    &state.metrics,
                    &user_id,
                    &operator.actor,
                    operator.ip.clone(),
                    now,
                )
            })
            .await;
            Outcome::of(&console, result, |_| {
                "/console/users?done=user_deleted".to_string()
            })
        }
        _ => Outcome::Mistake(
            StatusCode::BAD_REQUEST,
            "This form is not one of the user page's.".into(),
        ),
    };
    Ok(match outcome {
        Outcome::Done(location) => console.see_other(&location),
        Outcome::Mistake(status, text) => user_page(&console, id, Flash::error(text), status).await,
        Outcome::Page(response) => response,
    })
}

/// The attributes field: a JSON object (empty means none).
fn parse_attributes(text: Option<&str>) -> Result<Map<String, serde_json::Value>, Error> {
    let text = text.unwrap_or("").trim();
    if text.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::InvalidRequest(
            "attributes must be a JSON object, like {\"team\": \"ops\"}".into(),
        )),
        Err(e) => Err(Error::InvalidRequest(format!(
            "attributes are not valid JSON ({e})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_must_be_a_json_object() {
        assert!(parse_attributes(Some("")).unwrap().is_empty());
        assert_eq!(
            parse_attributes(Some(r#"{"team":"ops"}"#)).unwrap()["team"],
            "ops"
        );
        assert!(parse_attributes(Some("[1]")).is_err());
        assert!(parse_attributes(Some("{nope")).is_err());
    }
}
