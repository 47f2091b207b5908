//! Discovery (RFC 8414) and the JWKS (RFC 7517), both answered from memory.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::clients::GrantType;
use crate::http::openapi::responses::OtherError;
use crate::state::AppState;

/// Authorization server metadata (RFC 8414).
#[derive(Serialize, ToSchema)]
pub struct ServerMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
    userinfo_endpoint: String,
    #[schema(value_type = Vec<String>)]
    grant_types_supported: [&'static str; 5],
    #[schema(value_type = Vec<String>)]
    response_types_supported: &'static [&'static str],
    #[schema(value_type = Vec<String>)]
    response_modes_supported: &'static [&'static str],
    #[schema(value_type = Vec<String>)]
    code_challenge_methods_supported: &'static [&'static str],
    /// RFC 9207: authorization responses carry `iss`.
    authorization_response_iss_parameter_supported: bool,
    #[schema(value_type = Vec<String>)]
    token_endpoint_auth_methods_supported: &'static [&'static str],
    #[schema(value_type = Vec<String>)]
    revocation_endpoint_auth_methods_supported: &'static [&'static str],
    #[schema(value_type = Vec<String>)]
    introspection_endpoint_auth_methods_supported: &'static [&'static str],
    scopes_supported: Vec<String>,
    #[schema(value_type = Vec<String>)]
    subject_types_supported: &'static [&'static str],
    /// `TESSERA_SIGNING_ALGS`, in the configured order.
    id_token_signing_alg_values_supported: Vec<&'static str>,
    /// The claims of access tokens, ID tokens and `/userinfo`.
    #[schema(value_type = Vec<String>)]
    claims_supported: &'static [&'static str],
    /// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
    end_session_endpoint: String,
    /// OpenID Connect Back-Channel Logout 1.0, to a client's `backchannel_logout_uri`.
    backchannel_logout_supported: bool,
    /// Logout tokens carry `sid`.
    backchannel_logout_session_supported: bool,
}

/// `GET /.well-known/oauth-authorization-server`: the metadata (RFC 8414).
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "discovery",
    responses(
        (status = 200, description = "Authorization server metadata", body = ServerMetadata,
            headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
        (status = "default", response = OtherError),
    ),
)]
pub async fn discovery(state: web::Data<AppState>) -> HttpResponse {
    let issuer = &state.settings.issuer;
    let mut scopes = state.settings.scopes.clone();
    if !scopes.iter().any(|s| s == crate::oidc::OPENID) {
        scopes.push(crate::oidc::OPENID.to_string());
    }
    scopes.sort();
    const CLIENT_AUTH: &[&str] = &["client_secret_basic", "client_secret_post", "none"];
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(ServerMetadata {
            issuer: issuer.clone(),
            authorization_endpoint: format!("{issuer}/oauth/authorize"),
            token_endpoint: format!("{issuer}/oauth/token"),
            jwks_uri: format!("{issuer}/.well-known/jwks.json"),
            revocation_endpoint: format!("{issuer}/oauth/revoke"),
            introspection_endpoint: format!("{issuer}/oauth/introspect"),
            userinfo_endpoint: format!("{issuer}/userinfo"),
            grant_types_supported: GrantType::ALL.map(GrantType::as_str),
            response_types_supported: &["code"],
            response_modes_supported: &["query"],
            code_challenge_methods_supported: &["S256"],
            authorization_response_iss_parameter_supported: true,
            token_endpoint_auth_methods_supported: CLIENT_AUTH,
            revocation_endpoint_auth_methods_supported: CLIENT_AUTH,
            introspection_endpoint_auth_methods_supported: &[
                "client_secret_basic",
                "client_secret_post",
            ],
            scopes_supported: scopes,
            subject_types_supported: &["public"],
            id_token_signing_alg_values_supported: state
                .settings
                .signing_algs
                .iter()
                .map(|alg| alg.as_str())
                .collect(),
            claims_supported: &[
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "nbf",
                "jti",
                "client_id",
                "scope",
                "roles",
                "sid",
                "auth_time",
                "amr",
                "username",
                "attributes",
                "nonce",
                "at_hash",
                "preferred_username",
                "updated_at",
                "email",
                "email_verified",
                "mfa_enabled",
            ],
            end_session_endpoint: format!("{issuer}/oauth/logout"),
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
        })
}

/// `GET /.well-known/openid-configuration`: the same metadata, where OpenID Connect
/// libraries look for it.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "discovery",
    responses(
        (status = 200, description = "Authorization server metadata", body = ServerMetadata,
            headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
        (status = "default", response = OtherError),
    ),
)]
pub async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    discovery(state).await
}

/// The JWKS (RFC 7517). Only describes the pre-rendered body in the OpenAPI document.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

/// One public key of the JWKS: RSA (`RS256`, always), and EC P-256 (`ES256`) or OKP
/// Ed25519 (`EdDSA`) where `TESSERA_SIGNING_ALGS` lists them. Each `kid` has one `alg`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Jwk {
    kty: KeyType,
    #[schema(example = "sig", rename = "use")]
    use_: String,
    alg: JwkAlg,
    kid: String,
    /// EC and OKP keys: `P-256` (ES256) or `Ed25519` (EdDSA).
    crv: Option<String>,
    /// RSA keys: the modulus, base64url.
    n: Option<String>,
    /// RSA keys: the exponent, base64url.
    #[schema(example = "AQAB")]
    e: Option<String>,
    /// EC keys: the x coordinate; OKP keys: the public key; base64url.
    x: Option<String>,
    /// EC keys: the y coordinate, base64url.
    y: Option<String>,
}

/// The key types of the JWKS (RFC 7518 §6.1, RFC 8037 §2).
#[derive(ToSchema)]
#[allow(dead_code)]
pub enum KeyType {
    #[schema(rename = "RSA")]
    Rsa,
    #[schema(rename = "EC")]
    Ec,
    #[schema(rename = "OKP")]
    Okp,
}

/// The signing algorithms of the JWKS's keys.
#[derive(ToSchema)]
#[allow(dead_code)]
pub enum JwkAlg {
    #[schema(rename = "RS256")]
    Rs256,
    #[schema(rename = "ES256")]
    Es256,
    #[schema(rename = "EdDSA")]
    EdDsa,
}

/// `GET /.well-known/jwks.json`: every key a live token may be signed with (active, staged
/// next, and retired-but-not-yet-expired), pre-rendered, with `ETag` and 304 on
/// `If-None-Match`.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "discovery",
    params(
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` seen before"),
    ),
    responses(
        (status = 200, description = "The key set", body = Jwks, headers(
            ("ETag" = String),
            ("Cache-Control" = String, description = "`public, max-age=…`"),
        )),
        (status = 304, description = "The key set has not changed", headers(
            ("ETag" = String),
            ("Cache-Control" = String),
        )),
        (status = "default", response = OtherError),
    ),
)]
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
