//! Browser clients: the refresh token delivered as an `HttpOnly` cookie (`tessera_refresh`,
//! `Path=/oauth`) with a double-submit CSRF cookie (`tessera_csrf`, readable by scripts, to be
//! echoed in `X-CSRF-Token`), and CORS refusals answered in the contract's JSON error shape.

use actix_web::body::{self, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};

use crate::crypto::constant_time_eq;
use crate::error::Error;

/// The cookie holding the refresh token.
pub const REFRESH_COOKIE: &str = "tessera_refresh";
/// The double-submit CSRF cookie.
pub const CSRF_COOKIE: &str = "tessera_csrf";
/// The header that must echo the CSRF cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of the request's cookie `name`, if sent and not empty.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().trim_matches('"').to_string())
        .filter(|value| !value.is_empty())
}

/// Checks that `X-CSRF-Token` equals the CSRF cookie (in constant time); returns the value.
pub fn check_csrf(req: &HttpRequest) -> Result<String, Error> {
    let expected = cookie(req, CSRF_COOKIE);
    let presented = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    match (expected, presented) {
        (Some(expected), Some(presented))
            if constant_time_eq(expected.as_bytes(), presented.as_bytes()) =>
        {
            Ok(expected)
        }
        _ => Err(Error::InvalidRequest(
            "refreshing from the cookie needs an X-CSRF-Token header equal to the tessera_csrf cookie"
                .into(),
        )),
    }
}

fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
    http_only: bool,
    secure: bool,
) -> Option<HeaderValue> {
    let text = format!(
        "{name}={value}; Max-Age={max_age}; Path={path}{}{}; SameSite=Strict",
        if http_only { "; HttpOnly" } else { "" },
        if secure { "; Secure" } else { "" },
    );
    HeaderValue::from_str(&text).ok()
}

/// The `exp` of a JWT tessera has just signed, read without verifying it.
fn jwt_exp(token: &str) -> Option<i64> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_i64()
}

/// Adds the refresh and CSRF cookies to a token response. Both live as long as the refresh
/// token. `csrf` keeps the value a cookie refresh was just checked against, so that other
/// tabs holding it keep working; a login gets a fresh one.
pub fn set_refresh_cookies(
    response: &mut HttpResponseBuilder,
    refresh_token: &str,
    csrf: Option<String>,
    secure: bool,
    now: i64,
) -> Result<(), Error> {
    let max_age = jwt_exp(refresh_token).map_or(0, |exp| (exp - now).max(0));
    let csrf = csrf.unwrap_or_else(crate::crypto::random_token::<32>);
    let refresh = set_cookie(
        REFRESH_COOKIE,
        refresh_token,
        "/oauth",
        max_age,
        true,
        secure,
    );
    let csrf = set_cookie(CSRF_COOKIE, &csrf, "/", max_age, false, secure);
    match (refresh, csrf) {
        (Some(refresh), Some(csrf)) => {
            response.append_header((header::SET_COOKIE, refresh));
            response.append_header((header::SET_COOKIE, csrf));
            Ok(())
        }
        _ => Err(Error::internal("building cookies", "invalid header value")),
    }
}

/// Expires both cookies (log out).
pub fn clear_cookies(response: &mut HttpResponse, secure: bool) {
    for value in [
        set_cookie(REFRESH_COOKIE, "", "/oauth", 0, true, secure),
        set_cookie(CSRF_COOKIE, "", "/", 0, false, secure),
    ]
    .into_iter()
    .flatten()
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// actix-cors answers a refused preflight (origin, method or header not allowed) with a
/// plain-text 400; this rewrites such answers into the contract's JSON error. Allowed
/// preflights and every other response pass untouched.
pub async fn cors_refusals_as_json(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ORIGIN)
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let response = next.call(req).await?;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !preflight || !response.status().is_client_error() || is_json {
        return Ok(response.map_into_left_body());
    }
    let (request, response) = response.into_parts();
    let reason = body::to_bytes(response.into_body())
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .filter(|text| !text.is_empty() && text.len() < 200)
        .unwrap_or_else(|| "not allowed".into());
    let error = Error::InvalidRequest(format!("CORS preflight refused: {reason}"));
    Ok(ServiceResponse::new(request, error.error_response()).map_into_right_body())
}
