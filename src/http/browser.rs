//! Browser clients: the refresh token delivered as an `HttpOnly` cookie (`tessera_refresh`,
//! `Path=/oauth`) with a CSRF cookie (`tessera_csrf`, readable by scripts, to be echoed in
//! `X-CSRF-Token`) whose value is bound to the session, and CORS refusals answered in the
//! contract's JSON error shape.

use actix_web::body::{self, EitherBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::crypto::{constant_time_eq, MasterKey};
use crate::error::Error;
use crate::http::cookies;

/// The cookie holding the refresh token.
pub const REFRESH_COOKIE: &str = "tessera_refresh";
/// The double-submit CSRF cookie.
pub const CSRF_COOKIE: &str = "tessera_csrf";
/// The header that must echo the CSRF cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The CSRF value of a session: HMAC-SHA256 of its `sid` under a key derived from the master
/// key for this purpose only. A plain double-submit value would accept any pair that matches,
/// and a sibling subdomain can set cookies for this host; a value bound to the session cannot
/// be chosen by anyone else. It stays the same across rotations, so every tab of a session
/// keeps a working value.
pub fn csrf_value(master_key: &MasterKey, sid: &str) -> String {
    master_key.mac("tessera csrf v1", sid.as_bytes())
}

/// Checks a request that uses the refresh cookie: the `X-CSRF-Token` header and the
/// `tessera_csrf` cookie must both equal the CSRF value of the session `refresh_token` names
/// (compared in constant time). The token's claims are read unverified here, to know whose
/// value to expect; the grant or revocation verifies the token itself.
pub fn check_csrf(
    req: &HttpRequest,
    master_key: &MasterKey,
    refresh_token: &str,
) -> Result<(), Error> {
    let refused = || {
        Error::InvalidRequest(
            "using the refresh cookie needs an X-CSRF-Token header equal to the tessera_csrf \
             cookie of this session"
                .into(),
        )
    };
    let sid = jwt_claim(refresh_token, "sid")
        .and_then(|sid| sid.as_str().map(str::to_string))
        .ok_or_else(refused)?;
    let expected = csrf_value(master_key, &sid);
    let cookie = cookies::read(req, CSRF_COOKIE).unwrap_or_default();
    let header = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    // `&`, not `&&`: both comparisons run whatever the first one found.
    if constant_time_eq(expected.as_bytes(), header.as_bytes())
        & constant_time_eq(expected.as_bytes(), cookie.as_bytes())
    {
        Ok(())
    } else {
        Err(refused())
    }
}

/// A cookie of the refresh-cookie pair: `SameSite=Strict`, `HttpOnly` unless scripts must
/// read it (the CSRF value).
fn pair_cookie(
    name: &'static str,
    value: &str,
    path: &'static str,
    max_age: i64,
    http_only: bool,
    secure: bool,
) -> Cookie<'static> {
    cookies::new(name, value, secure)
        .http_only(http_only)
        .path(path)
        .same_site(SameSite::Strict)
        .max_age(cookies::max_age(max_age))
        .finish()
}

/// A claim of a JWT, read without verifying it.
fn jwt_claim(token: &str, name: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get(name)
        .cloned()
}

/// Adds the refresh and CSRF cookies to a token response for the refresh token tessera has
/// just signed. Both live as long as the refresh token.
pub fn set_refresh_cookies(
    response: &mut HttpResponseBuilder,
    refresh_token: &str,
    master_key: &MasterKey,
    secure: bool,
    now: i64,
) -> Result<(), Error> {
    let max_age = jwt_claim(refresh_token, "exp")
        .and_then(|exp| exp.as_i64())
        .map_or(0, |exp| (exp - now).max(0));
    let sid = jwt_claim(refresh_token, "sid")
        .and_then(|sid| sid.as_str().map(str::to_string))
        .ok_or_else(|| Error::bug("building cookies", "refresh token without a sid"))?;
    let csrf = csrf_value(master_key, &sid);
    response.cookie(pair_cookie(
        REFRESH_COOKIE,
        refresh_token,
        "/oauth",
        max_age,
        true,
        secure,
    ));
    response.cookie(pair_cookie(CSRF_COOKIE, &csrf, "/", max_age, false, secure));
    Ok(())
}

/// Expires both cookies (log out).
pub fn clear_cookies(response: &mut HttpResponse, secure: bool) {
    cookies::add_all(
        response,
        &[
            pair_cookie(REFRESH_COOKIE, "", "/oauth", 0, true, secure),
            pair_cookie(CSRF_COOKIE, "", "/", 0, false, secure),
        ],
    );
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
