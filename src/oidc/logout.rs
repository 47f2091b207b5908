//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0, SPEC §6.3) without HTTP:
//! which requests are refused (always a page, never a redirect), and which sessions a
//! logout ends: the browser session (by its cookie, or the one the hint's `sid` was started
//! from) and every session started from it.

use crate::error::Result;
use crate::metrics::Metrics;
use crate::oidc::id_token::IdClaims;
use crate::store::sessions::{self as session_store, Ended};
use crate::store::{self, session_links, DbConnection};
use crate::tokens::keyring::{KeyRing, TokenKind};

/// The parameters of `/oauth/logout`.
#[derive(Debug, Clone, Default)]
pub struct LogoutRequest {
    pub id_token_hint: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub client_id: Option<String>,
}

/// Why a logout request is refused: the message of its 400 page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub &'static str);

/// A request whose hint, client and return address hold.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The verified `id_token_hint` (its `exp` may have passed).
    pub hint: Option<IdClaims>,
    /// The client the hint or `client_id` names.
    pub client_id: Option<String>,
    /// Where to send the browser afterwards: the registered `post_logout_redirect_uri`,
    /// with `state`.
    pub redirect: Option<String>,
}

/// The browser session the request's cookie names.
#[derive(Debug, Clone, Copy)]
pub struct Browser<'a> {
    /// Its `sessions` row.
    pub session_id: &'a str,
    pub user_id: &'a str,
}

/// Checks the hint (signature, `iss`, `aud`; not `exp`), that `client_id` is the hint's
/// `aud` when both are given, and that `post_logout_redirect_uri` is registered on the
/// client, exactly. `post_logout_uris` finds a client's registered ones (`None`: no such
/// client).
pub fn check(
    keys: &KeyRing,
    request: &LogoutRequest,
    post_logout_uris: impl FnOnce(&str) -> Result<Option<Vec<String>>>,
) -> Result<std::result::Result<Checked, Refused>> {
    let hint =
        match request.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
            None => None,
            Some(token) => {
                match keys.verify_ignoring_expiry::<IdClaims>(token, TokenKind::Id, &[]) {
                Ok(claims) => Some(claims),
                Err(_) => return Ok(Err(Refused("The sign-out request carries an ID token this server did not issue, or one that is damaged."))),
            }
            }
        };
    let client_id = match (
        &hint,
        request.client_id.as_deref().filter(|c| !c.is_empty()),
    ) {
        (Some(hint), Some(client_id)) if hint.aud != client_id => {
            return Ok(Err(Refused(
                "The ID token of the sign-out request was issued to another application.",
            )))
        }
        (Some(hint), _) => Some(hint.aud.clone()),
        (None, client_id) => client_id.map(String::from),
    };
    let registered = match &client_id {
        None => None,
        Some(id) => match post_logout_uris(id)? {
            Some(uris) => Some(uris),
            None => {
                return Ok(Err(Refused(
                    "The sign-out request names an unknown application.",
                )))
            }
        },
    };
    let redirect = match request
        .post_logout_redirect_uri
        .as_deref()
        .filter(|u| !u.is_empty())
    {
        None => None,
        Some(uri) => {
            if !registered.iter().flatten().any(|r| r == uri) {
                return Ok(Err(Refused(
                    "The sign-out request asks to return to an address its application has not registered.",
                )));
            }
            Some(match request.state.as_deref() {
                Some(state) => {
                    let query = serde_urlencoded::to_string([("state", state)]).unwrap_or_default();
                    let separator = if uri.contains('?') { '&' } else { '?' };
                    format!("{uri}{separator}{query}")
                }
                None => uri.to_string(),
            })
        }
    };
    Ok(Ok(Checked {
        hint,
        client_id,
        redirect,
    }))
}

/// Ends what a checked logout signs out, in one transaction, and reports it through
/// [`crate::session_end::sessions_ended`]. With a hint: the session it names (which must
/// be the hint's client's and user's) and the browser session it was started from, which
/// must be this browser's when the request has one; a hint naming anyone else's session
/// is refused and ends nothing. Without: this browser's session. A browser session ends
/// with every session started from it.
pub fn end(
    conn: &mut DbConnection,
    metrics: &Metrics,
    hint: Option<&IdClaims>,
    browser: Option<Browser<'_>>,
    now: i64,
) -> Result<std::result::Result<Vec<Ended>, Refused>> {
    const FOREIGN: Refused =
        Refused("The ID token of the sign-out request names a session that is not this browser's.");
    store::transaction(conn, |conn| {
        let mut to_end: Vec<String> = Vec::new();
        let mut browsers: Vec<String> = Vec::new();
        if let Some(hint) = hint {
            if let Some(session) = session_store::find(conn, &hint.sid)? {
                if session.client_id != hint.aud || session.user_id != hint.sub {
                    return Ok(Err(FOREIGN));
                }
                let started_from = session_links::browser_session_of(conn, &session.id)?;
                match (started_from, browser) {
                    (Some(from), Some(browser)) if from != browser.session_id => {
                        return Ok(Err(FOREIGN));
                    }
                    (Some(from), _) => browsers.push(from),
                    (None, _) => {}
                }
                to_end.push(session.id);
            }
            if let Some(browser) = browser {
                if browser.user_id != hint.sub {
                    return Ok(Err(FOREIGN));
                }
            }
        }
        if let Some(browser) = browser {
            if !browsers.iter().any(|b| b == browser.session_id) {
                browsers.push(browser.session_id.to_string());
            }
        }
        for browser_session in browsers {
            to_end.extend(session_links::started_from(conn, &browser_session)?);
            to_end.push(browser_session);
        }
        to_end.sort();
        to_end.dedup();
        let mut ended = Vec::new();
        for id in &to_end {
            ended.extend(session_store::revoke(conn, id, now, "signed out")?);
        }
        crate::session_end::sessions_ended(conn, metrics, &ended, now)?;
        Ok(Ok(ended))
    })
}
