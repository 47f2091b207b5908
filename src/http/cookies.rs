//! Cookies, read and written with actix-web's `cookie` crate (its `cookies` feature).

use actix_web::cookie::time::Duration;
use actix_web::cookie::{Cookie, CookieBuilder};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

/// The value of the request's cookie `name`, as sent (tessera's values are base64url or
/// JWTs, never percent-encoded), if sent and not empty.
///
/// Each `Cookie` header and each pair is parsed on its own, so that a malformed cookie (or,
/// over HTTP/2, a header that is not UTF-8) from another application on this host does not
/// hide tessera's: actix-web's `HttpRequest::cookie_raw` gives up on every cookie at a header
/// that is not UTF-8.
pub fn read(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| Cookie::parse(pair.trim()).ok())
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_string())
        .filter(|value| !value.is_empty())
}

/// An `HttpOnly` cookie, `Secure` unless that is turned off for plain-http development;
/// the caller adds its path, `SameSite` and lifetime.
pub fn new(name: &'static str, value: impl Into<String>, secure: bool) -> CookieBuilder<'static> {
    Cookie::build(name, value.into())
        .http_only(true)
        .secure(secure)
}

/// `Max-Age` in seconds (`0` expires the cookie now).
pub fn max_age(seconds: i64) -> Duration {
    Duration::seconds(seconds.max(0))
}

/// Adds `cookies` to a response already built.
pub fn add_all(response: &mut HttpResponse, cookies: &[Cookie<'static>]) {
    for cookie in cookies {
        // Fails only for a value that is not a valid header, which no cookie tessera
        // builds (names are constants, values base64url) can be.
        if let Err(e) = response.add_cookie(cookie) {
            log::error!("cannot set cookie {}: {e}", cookie.name());
        }
    }
}
