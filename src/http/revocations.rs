//! `GET /revocations` (SPEC §6.7): the revocation feed for offline verifiers, for
//! confidential clients authenticated with HTTP Basic. Paging with `since`, long-polling
//! with `wait`, `ETag` and 304 on `If-None-Match` (only when not waiting).

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::clients;
use crate::error::Error;
use crate::http::blocking;
use crate::http::error::ErrorBody;
use crate::http::extract::client_credentials;
use crate::http::openapi::responses::{InvalidClient, OtherError, RateLimited, Unavailable};
use crate::revocation_feed::{self, Item, Page, MAX_PAGE};
use crate::state::AppState;

/// The longest `wait`, in seconds.
const MAX_WAIT: u64 = 30;

/// The feed's query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// A `next_cursor` from an earlier answer: only newer entries. Without it, every entry
    /// still on the feed.
    since: Option<String>,
    /// Seconds (0-30) to hold the request open until there is a newer entry; when the time
    /// runs out the answer is 200 with empty `items`.
    wait: Option<String>,
    /// At most this many entries (1-1000, default 1000); `next_cursor` continues.
    limit: Option<String>,
}

/// What an entry names.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RevocationType {
    /// A revoked session: refuse every token whose `sid` is `id`.
    Session,
    /// A deny-listed access token: refuse the token whose `jti` is `id`.
    Token,
    /// A signing key retired early: refuse every token whose header `kid` is `id`.
    Key,
}

/// One entry of the feed.
#[derive(Serialize, ToSchema)]
pub struct RevocationItem {
    #[serde(rename = "type")]
    kind: RevocationType,
    /// The `sid`, `jti` or `kid`.
    id: String,
    /// Unix seconds.
    revoked_at: i64,
    /// Unix seconds; after it no token the entry affects can still be valid, and the entry
    /// leaves the feed.
    until: i64,
}

/// A page of the feed, oldest first.
#[derive(Serialize, ToSchema)]
pub struct RevocationPage {
    items: Vec<RevocationItem>,
    /// Always a string: the position after the last entry returned, or the `since` given
    /// when nothing is newer. Pass it as `since` next time.
    next_cursor: String,
}

impl From<Item> for RevocationItem {
    fn from(item: Item) -> Self {
        RevocationItem {
            kind: match item.kind {
                revocation_feed::Kind::Session => RevocationType::Session,
                revocation_feed::Kind::Token => RevocationType::Token,
                revocation_feed::Kind::Key => RevocationType::Key,
            },
            id: item.id,
            revoked_at: item.revoked_at,
            until: item.until,
        }
    }
}

/// A whole number within `range`, or `invalid_request` naming the parameter.
fn bounded(value: Option<&str>, name: &str, min: u64, max: u64) -> Result<Option<u64>, Error> {
    let Some(value) = value else { return Ok(None) };
    value
        .parse::<u64>()
        .ok()
        .filter(|n| value.bytes().all(|b| b.is_ascii_digit()) && (min..=max).contains(n))
        .map(Some)
        .ok_or_else(|| {
            Error::InvalidRequest(format!(
                "`{name}` must be a whole number from {min} to {max}"
            ))
        })
}

/// Whether `If-None-Match` names `etag` (weak comparison, RFC 9110 §13.1.2).
fn matches_etag(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|tag| {
                let tag = tag.trim();
                tag == "*" || tag.trim_start_matches("W/") == etag
            })
        })
}

/// `GET /revocations`: revoked sessions (`sid`), deny-listed access tokens (`jti`) and keys
/// retired early (`kid`) that an unexpired token could still carry, oldest first.
#[utoipa::path(
    get,
    path = "/revocations",
    tag = "oauth",
    params(
        FeedQuery,
        ("If-None-Match" = Option<String>, Header,
            description = "An `ETag` seen before; honoured only without `wait`"),
    ),
    security(("client_basic" = [])),
    responses(
        (status = 200, description = "Entries newer than `since` (none when `wait` ran out)",
            body = RevocationPage, headers(
                ("ETag" = String),
                ("Cache-Control" = String, description = "`private, no-cache`"),
            )),
        (status = 304, description = "Nothing changed since the `ETag` given (never with \
            `wait`)", headers(("ETag" = String))),
        (status = 400, description = "`invalid_request`: a cursor tessera did not issue, or a \
            bad `wait` or `limit`", body = ErrorBody),
        (status = 401, response = InvalidClient),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
        (status = "default", response = OtherError),
    ),
)]
pub async fn revocations(
    req: HttpRequest,
    state: web::Data<AppState>,
    web::Query(query): web::Query<FeedQuery>,
) -> Result<HttpResponse, Error> {
    let credentials = client_credentials(&req, None, None)?;
    if !credentials.basic {
        return Err(Error::InvalidClient(
            "the revocation feed requires client authentication with HTTP Basic".into(),
        ));
    }
    let lifetimes = state.feed_lifetimes();
    let waits = query.wait.is_some();
    let request = query;
    let turn = state.feed.turn().await?;
    let (wait, limit, page) = blocking(&state, move |conn, state| {
        let client = clients::authenticate(conn, &credentials, &state.settings.scopes)?;
        if client.public {
            return Err(Error::InvalidClient(
                "the revocation feed requires a confidential client".into(),
            ));
        }
        let since = request
            .since
            .as_deref()
            .map(|cursor| state.feed.cursor_key.decode(cursor))
            .transpose()?;
        let wait = bounded(request.wait.as_deref(), "wait", 0, MAX_WAIT)?.unwrap_or(0);
        let limit = bounded(request.limit.as_deref(), "limit", 1, MAX_PAGE as u64)?
            .map_or(MAX_PAGE, |n| n as i64);
        let page = revocation_feed::read(conn, lifetimes, since, limit, crate::now())?;
        Ok((wait, limit, page))
    })
    .await?;
    drop(turn);
    let page = if page.items.is_empty() && wait > 0 {
        let position = page.position;
        let reader = state.clone();
        state
            .feed
            .wait_after(
                lifetimes,
                position,
                limit,
                Duration::from_secs(wait),
                crate::now,
                move || {
                    let reader = reader.clone();
                    async move {
                        let _turn = reader.feed.turn().await?;
                        blocking(&reader, move |conn, _| {
                            revocation_feed::read(
                                conn,
                                lifetimes,
                                Some(position),
                                limit,
                                crate::now(),
                            )
                        })
                        .await
                    }
                },
            )
            .await?
    } else {
        page
    };
    respond(&req, &state, page, waits)
}

fn respond(
    req: &HttpRequest,
    state: &AppState,
    page: Page,
    waits: bool,
) -> Result<HttpResponse, Error> {
    let body = RevocationPage {
        next_cursor: state.feed.cursor_key.encode(page.position),
        items: page.items.into_iter().map(RevocationItem::from).collect(),
    };
    let body = serde_json::to_vec(&body).map_err(|e| Error::internal("rendering the feed", e))?;
    let etag = format!("\"{}\"", &crate::crypto::sha256_hex(&body)[..32]);
    if !waits && matches_etag(req, &etag) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, "private, no-cache"))
            .finish());
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .content_type("application/json")
        .body(body))
}
