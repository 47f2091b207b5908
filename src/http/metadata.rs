//! Discovery (RFC 8414) and the JWKS (RFC 7517), both answered from memory.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::app::AppState;
use crate::clients::grant;

/// `GET /.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`.
pub async fn discovery(state: web::Data<AppState>) -> HttpResponse {
    let issuer = &state.settings.issuer;
    let mut scopes = state.settings.scopes.clone();
    scopes.sort();
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "public, max-age=300")).json(json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth/token"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "grant_types_supported": grant::ALL,
        "response_types_supported": ["token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": scopes,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "roles", "sid", "auth_time", "amr", "username", "attributes"],
    }))
}

/// `GET /.well-known/jwks.json`: pre-rendered, with `ETag` and 304 on `If-None-Match`.
pub async fn jwks(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let set = state.keys.current();
    let cache_control = format!("public, max-age={}", state.settings.jwks_max_age);
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|tag| {
                tag.trim().trim_start_matches("W/") == set.etag.as_str() || tag.trim() == "*"
            })
        });
    if matches {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, set.etag.as_str()))
            .insert_header((header::CACHE_CONTROL, cache_control))
            .finish();
    }
    HttpResponse::Ok()
        .insert_header((header::ETAG, set.etag.as_str()))
        .insert_header((header::CACHE_CONTROL, cache_control))
        .content_type("application/json")
        .body(set.jwks_body.as_str().to_owned())
}
