//! OpenID Connect (SPEC §6.3) without HTTP: the `openid` scope, ID tokens, the standard
//! claims of `/userinfo`, and RP-initiated logout. Grants call in at one point each.

pub mod id_token;
pub mod logout;
pub mod userinfo;

/// The scope that asks for an ID token.
pub const OPENID: &str = "openid";

/// True when the space-separated `scope` holds `name`.
pub fn has_scope(scope: &str, name: &str) -> bool {
    scope.split(' ').any(|s| s == name)
}

/// The scopes a grant may give a client whose `listed` scopes they are, for
/// `grants::resolve_scope`: `openid` is allowed without being listed to every client that
/// signs users in (`Client::signs_users_in`), but granted only when asked for, so for a
/// request without a scope (which gets all the allowed scopes) it is left out.
pub fn allowed_scopes(
    listed: &[String],
    signs_users_in: bool,
    requested: Option<&str>,
) -> Vec<String> {
    let asked = requested.is_some_and(|s| !s.trim().is_empty());
    let mut allowed: Vec<String> = listed
        .iter()
        .filter(|s| s.as_str() != OPENID)
        .cloned()
        .collect();
    if asked && signs_users_in {
        allowed.push(OPENID.to_string());
    }
    allowed
}
