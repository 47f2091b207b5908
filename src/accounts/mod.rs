//! User accounts: registration rules, creation, profile (userinfo), password changes, and
//! the administrative changes to a user (roles, attributes, disabling, deletion).

pub mod password;

use serde_json::{Map, Value};

use crate::audit::{self, Event, Kind};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::users::{self, NewUser, User};
use crate::store::{self, sessions, DbConnection};

/// The user's roles, as stored (a JSON array).
pub fn user_roles(user: &User) -> Vec<String> {
    serde_json::from_str(&user.roles).unwrap_or_default()
}

/// The user's custom attributes, as stored (a JSON object).
pub fn user_attributes(user: &User) -> Map<String, Value> {
    serde_json::from_str(&user.attributes).unwrap_or_default()
}

/// Why a username is refused, or `None`: 3–64 ASCII letters, digits and `._-@`.
pub fn username_violation(username: &str) -> Option<&'static str> {
    let length = username.chars().count();
    if !(3..=64).contains(&length) {
        Some("username must be 3 to 64 characters long")
    } else if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
    {
        Some("username may contain only ASCII letters, digits and . _ - @")
    } else {
        None
    }
}

/// Checks an email address's shape (one `@`, something on both sides, no spaces).
pub fn check_email(email: &str) -> Result<()> {
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidRequest("email is not a valid address".into()))
    }
}

/// Checks a registration before any hashing: username shape, password policy, email.
pub fn check_registration(username: &str, password: &str, email: Option<&str>) -> Result<()> {
    if let Some(problem) = username_violation(username) {
        return Err(Error::InvalidRequest(problem.into()));
    }
    if let Some(problem) = crate::passwords::policy_violation(password, username) {
        return Err(Error::WeakPassword(problem.into()));
    }
    if let Some(email) = email {
        check_email(email)?;
    }
    Ok(())
}

/// Checks roles: non-empty, no spaces, at most 64 characters each.
pub fn check_roles(roles: &[String]) -> Result<()> {
    for role in roles {
        if role.is_empty() || role.len() > 64 || !role.chars().all(|c| c.is_ascii_graphic()) {
            return Err(Error::InvalidRequest(format!(
                "`{role}` is not a valid role"
            )));
        }
    }
    Ok(())
}

/// The early answer to a registration whose username is taken, before any hashing. Only an
/// early answer: [`register`] (through [`create_user`]) decides.
pub fn ensure_username_free(conn: &mut DbConnection, username: &str) -> Result<()> {
    match users::find_by_username(conn, username)? {
        Some(_) => Err(Error::UsernameTaken),
        None => Ok(()),
    }
}

/// A self-service registration (`POST /register`) whose username, password and email
/// passed [`check_registration`] and whose password is hashed: creates the user without
/// roles and audits it, in one transaction.
pub fn register(
    conn: &mut DbConnection,
    username: &str,
    password_hash: &str,
    email: Option<&str>,
    ip: Option<String>,
    now: i64,
) -> Result<User> {
    register_with(conn, username, password_hash, email, ip, now, |_, user| {
        Ok(user.clone())
    })
}

/// [`register`] with what follows it in the same transaction (the sign-up page starts the
/// new user's browser session: an account whose session cannot start is not created).
pub fn register_with<T>(
    conn: &mut DbConnection,
    username: &str,
    password_hash: &str,
    email: Option<&str>,
    ip: Option<String>,
    now: i64,
    finish: impl FnOnce(&mut DbConnection, &User) -> Result<T>,
) -> Result<T> {
    store::transaction(conn, |conn| {
        let user = create_user(conn, username, password_hash, email, &[], now)?;
        audit::record(
            conn,
            Event::new(Kind::Register)
                .actor(&user.id)
                .user(&user.id)
                .ip(ip),
            now,
        )?;
        finish(conn, &user)
    })
}

/// Creates a user with an already computed password hash. A taken username (in any case)
/// is `username_taken`.
pub fn create_user(
    conn: &mut DbConnection,
    username: &str,
    password_hash: &str,
    email: Option<&str>,
    roles: &[String],
    now: i64,
) -> Result<User> {
    let id = uuid::Uuid::new_v4().to_string();
    let roles_json =
        serde_json::to_string(roles).map_err(|e| Error::internal("encoding roles", e))?;
    let lower = username.to_lowercase();
    let new = NewUser {
        id: &id,
        username,
        username_lower: &lower,
        email,
        password_hash,
        roles: &roles_json,
        attributes: "{}",
        disabled: false,
        failed_logins: 0,
        created_at: now,
        updated_at: now,
    };
    match users::insert(conn, &new) {
        Ok(()) => {}
        Err(e) if store::is_unique_violation(&e) => return Err(Error::UsernameTaken),
        Err(e) => return Err(e.into()),
    }
    users::find(conn, &id)?.ok_or_else(|| Error::bug("creating a user", "row vanished"))
}

/// Stores a new password hash and ends every session but `keep`, in one transaction, after
/// the user proved the current password: a lock that landed meanwhile refuses it (429).
pub fn set_password(
    conn: &mut DbConnection,
    metrics: &Metrics,
    user_id: &str,
    hash: &str,
    keep_session: Option<&str>,
    actor: &str,
    ip: Option<String>,
    now: i64,
) -> Result<usize> {
    store::transaction(conn, |conn| -> Result<usize> {
        crate::lockout::count_success(conn, &crate::lockout::Subject::account(user_id), now)?;
        users::set_password_hash(conn, user_id, hash, now)?;
        let ended =
            sessions::revoke_all_for_user(conn, user_id, keep_session, now, "password changed")?;
        crate::session_end::sessions_ended(conn, metrics, &ended, now)?;
        let revoked = ended.len();
        audit::record(
            conn,
            Event::new(Kind::PasswordChanged)
                .actor(actor)
                .user(user_id)
                .ip(ip)
                .details(serde_json::json!({ "sessions_revoked": revoked })),
            now,
        )?;
        Ok(revoked)
    })
}

/// An administrative change to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub roles: Option<Vec<String>>,
    pub disabled: Option<bool>,
    pub attributes: Option<Map<String, Value>>,
}

/// Applies `changes` in one transaction; disabling revokes every session at once.
pub fn update_user(
    conn: &mut DbConnection,
    metrics: &Metrics,
    user_id: &str,
    changes: &UserChanges,
    actor: &str,
    ip: Option<String>,
    now: i64,
) -> Result<User> {
    if let Some(roles) = &changes.roles {
        check_roles(roles)?;
    }
    if let Some(attributes) = &changes.attributes {
        if serde_json::to_string(attributes)
            .map(|s| s.len())
            .unwrap_or(usize::MAX)
            > 16 * 1024
        {
            return Err(Error::InvalidRequest(
                "attributes must be at most 16 KiB of JSON".into(),
            ));
        }
    }
    store::transaction(conn, |conn| -> Result<User> {
        users::find(conn, user_id)?.ok_or_else(|| Error::NotFound("no such user".into()))?;
        if let Some(roles) = &changes.roles {
            users::set_roles(
                conn,
                user_id,
                &serde_json::to_string(roles).map_err(|e| Error::internal("roles", e))?,
                now,
            )?;
        }
        if let Some(attributes) = &changes.attributes {
            users::set_attributes(
                conn,
                user_id,
                &Value::Object(attributes.clone()).to_string(),
                now,
            )?;
        }
        if let Some(disabled) = changes.disabled {
            users::set_disabled(conn, user_id, disabled, now)?;
            if disabled {
                let ended =
                    sessions::revoke_all_for_user(conn, user_id, None, now, "account disabled")?;
                crate::session_end::sessions_ended(conn, metrics, &ended, now)?;
            }
        }
        let details = serde_json::json!({
            "roles": changes.roles,
            "disabled": changes.disabled,
            "attributes_changed": changes.attributes.is_some(),
        });
        audit::record(
            conn,
            Event::new(Kind::UserUpdated)
                .actor(actor)
                .user(user_id)
                .ip(ip)
                .details(details),
            now,
        )?;
        users::find(conn, user_id)?.ok_or_else(|| Error::NotFound("no such user".into()))
    })
}

/// Deletes a user with its sessions and tokens.
pub fn delete_user(
    conn: &mut DbConnection,
    metrics: &Metrics,
    user_id: &str,
    actor: &str,
    ip: Option<String>,
    now: i64,
) -> Result<()> {
    store::transaction(conn, |conn| -> Result<()> {
        // Ended before the row goes (its sessions go with it), so they end like any other.
        let ended = sessions::revoke_all_for_user(conn, user_id, None, now, "account deleted")?;
        crate::session_end::sessions_ended(conn, metrics, &ended, now)?;
        if users::delete(conn, user_id)? == 0 {
            return Err(Error::NotFound("no such user".into()));
        }
        audit::record(
            conn,
            Event::new(Kind::UserDeleted)
                .actor(actor)
                .user(user_id)
                .ip(ip),
            now,
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_allow_letters_digits_and_dot_underscore_dash_at() {
        assert!(username_violation("alice.b-c_d@example").is_none());
        assert!(username_violation("al").is_some());
        assert!(username_violation(&"a".repeat(65)).is_some());
        assert!(username_violation("alice smith").is_some());
        assert!(username_violation("alïce").is_some());
    }

    #[test]
    fn emails_need_one_at_with_text_on_both_sides() {
        assert!(check_email("a@b.example").is_ok());
        assert!(check_email("a@").is_err());
        assert!(check_email("@b").is_err());
        assert!(check_email("a b@c").is_err());
    }
}
