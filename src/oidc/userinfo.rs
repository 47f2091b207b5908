//! The `/userinfo` answer (SPEC §3, §6.3): the standard claims by scope, beside tessera's
//! own members.

use serde_json::Value;

use crate::error::Result;
use crate::oidc::has_scope;
use crate::store::users::User;
use crate::store::DbConnection;

/// The user as `scope` (the access token's) lets its holder see them: `sub` and §3's
/// members always, `preferred_username` and `updated_at` with `profile`, `email` and
/// `email_verified` only with `email`.
pub fn claims(
    conn: &mut DbConnection,
    user: &User,
    scope: &str,
    mfa_enabled: bool,
) -> Result<Value> {
    let mut body = serde_json::json!({
        "sub": user.id,
        "username": user.username,
        "roles": serde_json::from_str::<Vec<String>>(&user.roles).unwrap_or_default(),
        "mfa_enabled": mfa_enabled,
        "attributes": serde_json::from_str::<serde_json::Map<String, Value>>(&user.attributes)
            .unwrap_or_default(),
    });
    if has_scope(scope, "profile") {
        body["preferred_username"] = user.username.clone().into();
        body["updated_at"] = user.updated_at.into();
    }
    if has_scope(scope, "email") {
        if let Some(email) = &user.email {
            body["email"] = email.clone().into();
        }
        body["email_verified"] = crate::recovery::is_email_verified(conn, user)?.into();
    }
    Ok(body)
}
