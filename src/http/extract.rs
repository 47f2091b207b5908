//! Reading requests: bodies (JSON and/or form, at most 64 KiB, the right content type), the
//! client's address (behind trusted proxies), client credentials (RFC 6749 §2.3.1) and
//! bearer tokens (RFC 6750 §2.1).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::clients::ClientCredentials;
use crate::config::Settings;
use crate::error::Error;
use crate::http::error::HttpError;

/// Largest accepted request body.
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Accept {
    Json,
    Form,
    Both,
}

fn read_body<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: &mut Payload,
    accept: Accept,
) -> Pin<Box<dyn Future<Output = Result<T, HttpError>>>> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let declared_length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut payload = payload.take();
    Box::pin(async move {
        let is_json = content_type == "application/json" || content_type.ends_with("+json");
        let is_form = content_type == "application/x-www-form-urlencoded";
        let wanted = match accept {
            Accept::Json => "application/json",
            Accept::Form => "application/x-www-form-urlencoded",
            Accept::Both => "application/json or application/x-www-form-urlencoded",
        };
        let accepted = match accept {
            Accept::Json => is_json,
            Accept::Form => is_form,
            Accept::Both => is_json || is_form,
        };
        if !accepted {
            return Err(HttpError::UnsupportedMediaType(format!(
                "the body must be {wanted}"
            )));
        }
        if declared_length.is_some_and(|n| n > MAX_BODY) {
            return Err(HttpError::PayloadTooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk
                .map_err(|_| Error::InvalidRequest("the request body could not be read".into()))?;
            if body.len() + chunk.len() > MAX_BODY {
                return Err(HttpError::PayloadTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let parsed = if is_json {
            serde_json::from_slice(&body).map_err(|e| {
                Error::InvalidRequest(format!("malformed JSON body: {}", describe_json_error(&e)))
            })
        } else {
            serde_urlencoded::from_bytes(&body)
                .map_err(|e| Error::InvalidRequest(format!("malformed form body: {e}")))
        };
        Ok(parsed?)
    })
}

/// Serde's message without the echo of input values it sometimes carries.
fn describe_json_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    if text.starts_with("invalid type") || text.starts_with("invalid value") {
        format!(
            "a field has the wrong type (line {} column {})",
            error.line(),
            error.column()
        )
    } else {
        text
    }
}

/// A body given as JSON or as a form.
pub struct JsonOrForm<T>(pub T);
/// A body that must be `application/x-www-form-urlencoded` (the OAuth endpoints).
pub struct FormBody<T>(pub T);
/// A body that must be JSON.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonOrForm<T> {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, HttpError>>>>;
    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload, Accept::Both);
        Box::pin(async move { body.await.map(JsonOrForm) })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for FormBody<T> {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, HttpError>>>>;
    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload, Accept::Form);
        Box::pin(async move { body.await.map(FormBody) })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, HttpError>>>>;
    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload, Accept::Json);
        Box::pin(async move { body.await.map(JsonBody) })
    }
}

/// The client's address: the peer, or behind a trusted proxy the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(req: &HttpRequest, settings: &Settings) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let trusted = |ip: &IpAddr| settings.trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|item| item.trim().parse::<IpAddr>().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted(ip))
            .unwrap_or(peer),
    )
}

/// The `User-Agent` header, if readable.
pub fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn percent_decode(text: &str) -> Result<String, Error> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!(
        "v={}",
        text.replace('&', "%26").replace('=', "%3D")
    ))
    .ok()
    .and_then(|mut pairs| pairs.pop().map(|(_, v)| v))
    .ok_or_else(|| Error::InvalidClient("malformed client credentials".into()))
}

/// Client credentials from `Authorization: Basic` (form-urlencoded id and secret, RFC 6749
/// §2.3.1) or from the body's `client_id`/`client_secret`. Using both is refused.
pub fn client_credentials(
    req: &HttpRequest,
    form_client_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<ClientCredentials, Error> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    match basic {
        Some(encoded) => {
            if form_secret.is_some() {
                return Err(Error::InvalidRequest(
                    "use one client authentication method, not two".into(),
                ));
            }
            let decoded = STANDARD
                .decode(encoded.trim())
                .map_err(|_| Error::InvalidClient("malformed client credentials".into()))?;
            let decoded = String::from_utf8(decoded)
                .map_err(|_| Error::InvalidClient("malformed client credentials".into()))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| Error::InvalidClient("malformed client credentials".into()))?;
            let id = percent_decode(id)?;
            if form_client_id.is_some_and(|form_id| form_id != id) {
                return Err(Error::InvalidRequest(
                    "client_id does not match the Authorization header".into(),
                ));
            }
            Ok(ClientCredentials {
                client_id: Some(id),
                secret: Some(percent_decode(secret)?.into()),
                basic: true,
            })
        }
        None => Ok(ClientCredentials {
            client_id: form_client_id.filter(|s| !s.is_empty()).map(str::to_string),
            secret: form_secret.map(Into::into),
            basic: false,
        }),
    }
}

/// The bearer token of the request, or the contract's "missing bearer token" error.
pub fn bearer_token(req: &HttpRequest) -> Result<String, Error> {
    let missing = || Error::InvalidToken {
        message: "missing bearer token".into(),
        missing: true,
    };
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?;
    let value = value
        .to_str()
        .map_err(|_| Error::invalid_token("malformed Authorization header"))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(missing());
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(missing());
    }
    Ok(token.to_string())
}
