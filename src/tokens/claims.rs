//! The claim sets of tessera's token types (RFC 9068 for access tokens) and their `typ`s.

use serde::{Deserialize, Serialize};

/// `typ` header of access tokens (RFC 9068 §2.1).
pub const ACCESS_TYP: &str = "at+jwt";
/// `typ` header of refresh tokens.
pub const REFRESH_TYP: &str = "refresh+jwt";
/// `typ` header of OpenID Connect ID tokens (SPEC §6.3).
pub const ID_TYP: &str = "JWT";
/// `typ` header of back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4).
pub const LOGOUT_TYP: &str = "logout+jwt";

/// The `aud` of refresh tokens: the token endpoint, a value no resource server is configured
/// to accept, so a verifier that skips `typ` still refuses a refresh token (SPEC §6.1).
pub fn refresh_audience(issuer: &str) -> String {
    format!("{issuer}/oauth/token")
}

/// Claims of an access token. `type` and `fresh` are there for Flask-JWT-Extended resource
/// servers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(rename = "type")]
    pub token_type: String,
    pub fresh: bool,
}

/// Claims of a refresh token: valid only while its database record says so.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RefreshClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub sid: String,
    pub client_id: String,
    #[serde(rename = "type")]
    pub token_type: String,
}

impl AccessClaims {
    /// The scopes, split.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    /// True when the token carries the role.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}
