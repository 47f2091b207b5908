//! The console's audit log (`/console/audit`): filter by user (id or username), event type
//! and time, newest first, page by page.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::{context, Value};
use serde::Deserialize;

use crate::admin::{self, AuditQuery};
use crate::audit::Kind;
use crate::error::Error;
use crate::http::blocking;
use crate::http::console::{urlencode, Console, Flash, Intent};
use crate::http::wire::{AuditView, Page};

const PAGE_SIZE: i64 = 50;

/// The filters and paging of the audit view.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilters {
    /// A user id or a username.
    user: Option<String>,
    /// An event type.
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// From this instant (`YYYY-MM-DDTHH:MM` in UTC, as a date-time input sends it, or RFC
    /// 3339, or unix seconds).
    since: Option<String>,
    /// Up to this instant, the same forms.
    until: Option<String>,
    /// The cursor of the next page.
    cursor: Option<String>,
}

/// The usernames of the users the events name (as actor or subject), by id.
pub fn usernames(
    conn: &mut crate::store::DbConnection,
    events: &[AuditView],
) -> Result<HashMap<String, String>, Error> {
    let mut names = HashMap::new();
    for id in events
        .iter()
        .flat_map(|e| [e.actor.as_deref(), e.user_id.as_deref()])
        .flatten()
    {
        if !names.contains_key(id) {
            if let Some(user) = crate::store::users::find(conn, id)? {
                names.insert(id.to_string(), user.username);
            }
        }
    }
    Ok(names)
}

/// Audit events as table rows; users are shown by name when `names` knows them.
pub fn rows(events: Vec<AuditView>, names: &HashMap<String, String>) -> Vec<Value> {
    let name = |id: &Option<String>| {
        id.as_ref().map(|id| {
            names
                .get(id)
                .cloned()
                .unwrap_or_else(|| id.chars().take(8).collect())
        })
    };
    events
        .into_iter()
        .map(|e| {
            let details = match &e.details {
                serde_json::Value::Null => String::new(),
                serde_json::Value::Object(map) if map.is_empty() => String::new(),
                other => other.to_string(),
            };
            context! {
                at => e.at.replace('T', " ").trim_end_matches('Z').to_string(),
                event_type => e.event_type,
                actor => name(&e.actor),
                user => name(&e.user_id),
                user_id => e.user_id,
                client_id => e.client_id,
                ip => e.ip,
                details => details,
            }
        })
        .collect()
}

/// An instant typed into the filter: a date-time input's `YYYY-MM-DDTHH:MM` (UTC), or what
/// the admin API takes (RFC 3339, unix seconds).
fn instant(text: Option<&str>) -> Result<Option<i64>, Error> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let completed = match text.len() {
        16 if text.as_bytes()[10] == b'T' => format!("{text}:00Z"),
        19 if text.as_bytes()[10] == b'T' => format!("{text}Z"),
        _ => text.to_string(),
    };
    admin::parse_instant(&completed).map(Some)
}

/// `GET /console/audit`: the audit log, filtered.
#[utoipa::path(
    get,
    path = "/console/audit",
    operation_id = "console_audit",
    tag = "pages",
    params(AuditFilters),
    responses(
        (status = 200, description = "A page of matching events, newest first", content_type = "text/html"),
        (status = 303, description = "Not signed in to the console: to the sign-in"),
        (status = 400, description = "The log with what is wrong with a filter (bad time, unknown user, bad cursor)", content_type = "text/html"),
        (status = 403, description = "An HTML page: not an admin", content_type = "text/html"),
        (status = "default", description = "An HTML error page", content_type = "text/html"),
    ),
)]
pub async fn list(
    req: HttpRequest,
    query: web::Query<AuditFilters>,
) -> Result<HttpResponse, Error> {
    let console = match Console::open(&req, Intent::View).await {
        Ok(console) => console,
        Err(response) => return Ok(response),
    };
    let filters = query.into_inner();
    let user = filters.user.clone().filter(|u| !u.trim().is_empty());
    let event_type = filters.event_type.clone().filter(|t| !t.is_empty());
    let cursor = filters.cursor.clone().filter(|c| !c.is_empty());
    let times = instant(filters.since.as_deref())
        .and_then(|since| Ok((since, instant(filters.until.as_deref())?)));
    let result = match times {
        Ok((since, until)) => {
            let user = user.clone();
            let event_type = event_type.clone();
            blocking(&console.page.state, move |conn, _| {
                let user_id = match user.as_deref().map(str::trim) {
                    None => None,
                    Some(name) => match crate::store::users::find(conn, name)? {
                        Some(found) => Some(found.id),
                        None => match crate::store::users::find_by_username(conn, name)? {
                            Some(found) => Some(found.id),
                            None => {
                                return Err(Error::NotFound(format!(
                                    "no user has the id or username `{name}`"
                                )))
                            }
                        },
                    },
                };
                let query = AuditQuery {
                    user_id,
                    event_type,
                    since,
                    until,
                };
                let page = Page::of(
                    admin::list_audit(conn, query, cursor.as_deref(), PAGE_SIZE)?,
                    AuditView::from,
                );
                let names = usernames(conn, &page.items)?;
                Ok((page, names))
            })
            .await
        }
        Err(e) => Err(e),
    };
    let (events, next, flash, status) = match result {
        Ok((page, names)) => {
            let next = page.next_cursor.map(|c| {
                format!(
                    "/console/audit?user={}&type={}&since={}&until={}&cursor={}",
                    urlencode(user.as_deref().unwrap_or("")),
                    urlencode(event_type.as_deref().unwrap_or("")),
                    urlencode(filters.since.as_deref().unwrap_or("")),
                    urlencode(filters.until.as_deref().unwrap_or("")),
                    urlencode(&c)
                )
            });
            (
                rows(page.items, &names),
                next,
                Flash::default(),
                StatusCode::OK,
            )
        }
        Err(e) => match crate::http::console::explain(&e) {
            Some((_, text)) => (
                Vec::new(),
                None,
                Flash::error(text),
                StatusCode::BAD_REQUEST,
            ),
            None => return Ok(console.error_page(&e)),
        },
    };
    let types: Vec<Value> = Kind::ALL
        .iter()
        .map(|kind| kind.as_str())
        .map(|t| context! { name => t, selected => event_type.as_deref() == Some(t) })
        .collect();
    Ok(console.render(
        status,
        "console/audit.html",
        "Audit log",
        "audit",
        &flash,
        context! {
            events => events,
            next => next,
            types => types,
            user => user,
            since => filters.since,
            until => filters.until,
            first_page => filters.cursor.is_none(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_time_input_is_read_as_utc() {
        assert_eq!(
            instant(Some("2023-11-14T22:13")).unwrap(),
            Some(1_700_000_000 - 20)
        );
        assert_eq!(instant(Some("1700000000")).unwrap(), Some(1_700_000_000));
        assert_eq!(instant(Some("")).unwrap(), None);
        assert!(instant(Some("tomorrow")).is_err());
    }
}
