//! Back-channel logout (SPEC §6.3, OpenID Connect Back-Channel Logout 1.0): when a session
//! of a client with a `backchannel_logout_uri` ends, the client is told so by a signed
//! logout token POSTed to that URI. [`enqueue`] runs from the one "session ended" event
//! (`session_end`), in the ending transaction; [`BackchannelSender`] is the outbox sender of
//! kind `backchannel_logout` that signs and delivers each token from a worker thread, so a
//! slow or failing receiver never slows the request that ended the session.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::outbox::{DeliveryError, Sender};
use crate::store::sessions::Ended;
use crate::store::{DbConnection, QueryResult};
use crate::tokens::keyring::{KeyRing, TokenKind};

/// The outbox kind of back-channel logout messages.
pub const KIND: &str = "backchannel_logout";
/// The one event a logout token carries (Back-Channel Logout 1.0 §2.4).
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// A logout token's `exp` is its `iat` plus this (SPEC §6.3: 2 min).
pub const TOKEN_LIFETIME: i64 = 120;
/// How long one delivery attempt may take, connecting included; after it the attempt is a
/// failure to retry. Short, because one worker delivers this kind's messages one by one.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// One logout to deliver, as queued. Everything the token and its delivery need is fixed
/// when the session ends: the client may change its URI or be deleted before delivery, and
/// the receiver that knew the session is the one to tell.
#[derive(Debug, Serialize, Deserialize)]
struct Logout {
    /// The client's `backchannel_logout_uri` when the session ended.
    uri: String,
    client_id: String,
    /// The client's `token_alg` when the session ended (signs as its ID tokens do).
    alg: Option<String>,
    sub: String,
    sid: String,
}

/// The claims of a logout token (Back-Channel Logout 1.0 §2.4); never a `nonce`.
#[derive(Debug, Serialize)]
struct LogoutClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: &'a str,
    sub: &'a str,
    sid: &'a str,
    events: serde_json::Value,
}

/// Queues one logout per ended session whose client has a `backchannel_logout_uri`, in the
/// caller's transaction; returns how many. A session already past its absolute end is left
/// out: it ended by expiring, which is no logout, and its receiver has nothing to end.
pub fn enqueue(conn: &mut DbConnection, ended: &[Ended], now: i64) -> QueryResult<usize> {
    let live: Vec<&Ended> = ended.iter().filter(|e| e.expires_at > now).collect();
    if live.is_empty() {
        return Ok(0);
    }
    let client_ids: Vec<&str> = live
        .iter()
        .map(|e| e.client_id.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let receivers = crate::store::clients::backchannel_receivers(conn, &client_ids)?;
    if receivers.is_empty() {
        return Ok(0);
    }
    let mut queued = 0;
    for session in live {
        let Some(receiver) = receivers.iter().find(|r| r.client_id == session.client_id) else {
            continue;
        };
        let logout = Logout {
            uri: receiver.uri.clone(),
            client_id: session.client_id.clone(),
            alg: receiver.token_alg.clone(),
            sub: session.user_id.clone(),
            sid: session.id.clone(),
        };
        let payload = serde_json::to_string(&logout).unwrap_or_default();
        crate::outbox::enqueue(conn, KIND, &payload, now)?;
        queued += 1;
    }
    Ok(queued)
}

/// The outbox sender of kind `backchannel_logout`.
pub struct BackchannelSender {
    keys: Arc<KeyRing>,
    /// Built on first use, on the worker thread: reqwest's blocking client runs a runtime of
    /// its own, which must not be started from inside the server's.
    http: OnceLock<Result<reqwest::blocking::Client, String>>,
}

impl BackchannelSender {
    /// A sender signing with `keys`.
    pub fn new(keys: Arc<KeyRing>) -> Self {
        BackchannelSender {
            keys,
            http: OnceLock::new(),
        }
    }

    fn http(&self) -> Result<&reqwest::blocking::Client, DeliveryError> {
        self.http
            .get_or_init(build_client)
            .as_ref()
            .map_err(|e| DeliveryError::Retry(e.clone()))
    }

    /// Signs the logout token at delivery rather than at enqueueing: each attempt gets a
    /// fresh `iat`/`exp`, so a receiver that was down for longer than the token's two
    /// minutes still gets one it can accept, and it is signed with the keys active now (a
    /// key retired meanwhile signs nothing). `jti` is the message id, the same on every
    /// attempt, so a receiver that got it once can drop a repeat.
    fn sign(&self, id: &str, logout: &Logout, now: i64) -> Result<String, DeliveryError> {
        let claims = LogoutClaims {
            iss: self.keys.issuer(),
            aud: &logout.client_id,
            iat: now,
            exp: now + TOKEN_LIFETIME,
            jti: id,
            sub: &logout.sub,
            sid: &logout.sid,
            events: serde_json::json!({ EVENT: {} }),
        };
        let alg = logout.alg.as_deref().and_then(|alg| alg.parse().ok());
        self.keys
            .sign(TokenKind::Logout, alg, &claims)
            .map_err(|e| DeliveryError::Retry(format!("signing the logout token: {e}")))
    }
}

fn build_client() -> Result<reqwest::blocking::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        log::warn!("back-channel logout: reading the system's CA certificates: {error}");
    }
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        log::warn!("back-channel logout: no CA certificates found; https receivers will fail");
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::blocking::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        // A redirect is not a delivery (only 200 and 204 are): the attempt is retried.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

impl Sender for BackchannelSender {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn deliver(&self, id: &str, payload: &str) -> Result<(), DeliveryError> {
        let logout: Logout = serde_json::from_str(payload)
            .map_err(|e| DeliveryError::Permanent(format!("reading the payload: {e}")))?;
        let scheme = url::Url::parse(&logout.uri)
            .map(|u| u.scheme().to_string())
            .map_err(|e| DeliveryError::Permanent(format!("not a URL: {e}")))?;
        if scheme != "https" && scheme != "http" {
            return Err(DeliveryError::Permanent(format!(
                "a {scheme}: URI cannot receive a back-channel logout"
            )));
        }
        let token = self.sign(id, &logout, crate::now())?;
        let response = self
            .http()?
            .post(&logout.uri)
            .form(&[("logout_token", token.as_str())])
            .send()
            // reqwest's error names the URL, never the body: the token stays out of the log.
            .map_err(|e| DeliveryError::Retry(format!("POST {}: {e}", logout.uri)))?;
        match response.status().as_u16() {
            200 | 204 => Ok(()),
            status => Err(DeliveryError::Retry(format!(
                "POST {} answered {status}",
                logout.uri
            ))),
        }
    }
}
