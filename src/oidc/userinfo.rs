//! The `/userinfo` answer (SPEC §3, §6.3): the standard claims by scope, beside tessera's
//! own members.

use serde_json::{Map, Value};

use crate::error::Result;
use crate::oidc::has_scope;
use crate::store::users::User;
use crate::store::DbConnection;

/// What `/userinfo` tells of a user; `http::account::UserInfo` is its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct UserClaims {
    pub sub: String,
    pub username: String,
    pub roles: Vec<String>,
    pub mfa_enabled: bool,
    pub attributes: Map<String, Value>,
    /// With `profile`.
    pub preferred_username: Option<String>,
    /// With `profile`: unix seconds.
    pub updated_at: Option<i64>,
    /// With `email`, when the user has an address.
    pub email: Option<String>,
    /// With `email`.
    pub email_verified: Option<bool>,
}

/// The user as `scope` (the access token's) lets its holder see them: `sub` and §3's
/// members always, `preferred_username` and `updated_at` with `profile`, `email` and
/// `email_verified` only with `email`.
pub fn claims(
    conn: &mut DbConnection,
    user: &User,
    scope: &str,
    mfa_enabled: bool,
) -> Result<UserClaims> {
    let profile = has_scope(scope, "profile");
    let email = has_scope(scope, "email");
    Ok(UserClaims {
        sub: user.id.clone(),
        username: user.username.clone(),
        roles: crate::accounts::user_roles(user),
        mfa_enabled,
        attributes: crate::accounts::user_attributes(user),
        preferred_username: profile.then(|| user.username.clone()),
        updated_at: profile.then_some(user.updated_at),
        email: if email { user.email.clone() } else { None },
        email_verified: if email {
            Some(crate::recovery::is_email_verified(conn, user)?)
        } else {
            None
        },
    })
}
