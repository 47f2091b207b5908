//! A signed-in user's password, proven again (before turning MFA on, changing the email
//! address) or changed, in the password grant's three steps so that argon2 runs on the
//! hasher's bounded pool between two short database steps: `prepare_*` refuses a locked
//! account (and a new password the policy refuses) before any hashing, `check_*` verifies
//! on the hasher's pool, `complete_*` counts a wrong password toward the lock like a failed
//! login (a stolen access token must not allow endless guessing) or applies the change in
//! one transaction that checks the lock again (see [`crate::lockout`]).

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};
use crate::lockout::{self, Claimant};
use crate::passwords::PasswordHasher;
use crate::store::users::User;
use crate::store::DbConnection;

/// Step one of a re-check: a locked account is refused (429) before any hashing.
pub fn prepare_check(user: &User, now: i64) -> Result<()> {
    lockout::refuse_if_user_locked(user, now)
}

/// Step two of a re-check (blocking, on the hasher's pool).
pub fn check(hasher: &PasswordHasher, user: &User, password: &str) -> bool {
    hasher.verify(password, &user.password_hash)
}

/// Step three of a re-check: a wrong password counts toward the lock and is `invalid_grant`.
pub fn complete_check(
    conn: &mut DbConnection,
    policy: &lockout::Policy<'_>,
    user_id: &str,
    correct: bool,
    claimant: Claimant,
    now: i64,
) -> Result<()> {
    if correct {
        return Ok(());
    }
    lockout::record_user_failure(conn, policy, user_id, claimant, now)?;
    Err(Error::InvalidGrant("the password is incorrect".into()))
}

/// A password change between its steps.
#[derive(Debug)]
pub struct Change {
    pub user: User,
    new_password: SecretString,
}

/// Step one of a change: a locked account is refused (429), then a new password the
/// policy refuses (`weak_password`), both before any hashing.
pub fn prepare_change(user: User, new_password: String, now: i64) -> Result<Change> {
    lockout::refuse_if_user_locked(&user, now)?;
    if let Some(problem) = crate::passwords::policy_violation(&new_password, &user.username) {
        return Err(Error::WeakPassword(problem.into()));
    }
    Ok(Change {
        user,
        new_password: new_password.into(),
    })
}

/// Outcome of a change's check: the new hash, made only when the current password is
/// right.
#[derive(Debug)]
pub struct ChangeVerdict {
    new_hash: Option<SecretString>,
}

/// Step two of a change (blocking, on the hasher's pool): checks the current password and,
/// only when it is right, hashes the new one, in one job.
pub fn check_change(
    hasher: &PasswordHasher,
    change: &Change,
    current: &str,
) -> Result<ChangeVerdict> {
    if !hasher.verify(current, &change.user.password_hash) {
        return Ok(ChangeVerdict { new_hash: None });
    }
    Ok(ChangeVerdict {
        new_hash: Some(hasher.hash(change.new_password.expose_secret())?.into()),
    })
}

/// Step three of a change: a wrong current password counts toward the lock
/// (`invalid_grant`); a right one stores the new hash and ends every session but `keep`, in
/// one transaction that refuses the change (429) when the lock landed meanwhile. Returns
/// how many sessions ended.
pub fn complete_change(
    conn: &mut DbConnection,
    policy: &lockout::Policy<'_>,
    change: Change,
    verdict: ChangeVerdict,
    keep: Option<&str>,
    claimant: Claimant,
    now: i64,
) -> Result<usize> {
    let user_id = change.user.id;
    let Some(new_hash) = verdict.new_hash else {
        lockout::record_user_failure(conn, policy, &user_id, claimant, now)?;
        return Err(Error::InvalidGrant("current password is incorrect".into()));
    };
    super::set_password(
        conn,
        policy.metrics,
        &user_id,
        new_hash.expose_secret(),
        keep,
        &user_id,
        claimant.ip,
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passwords::Argon2Params;

    fn hasher() -> PasswordHasher {
        PasswordHasher::new(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    fn alice(hasher: &PasswordHasher, locked_until: Option<i64>) -> User {
        User {
            id: "u1".into(),
            username: "alice".into(),
            username_lower: "alice".into(),
            email: None,
            password_hash: hasher.hash("correct horse battery").unwrap(),
            roles: "[]".into(),
            attributes: "{}".into(),
            disabled: false,
            failed_logins: 0,
            locked_until,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_locked_account_is_refused_before_the_new_password_is_judged() {
        let user = alice(&hasher(), Some(1_000));
        let refused = prepare_change(user, "short".into(), 990).unwrap_err();
        assert!(matches!(refused, Error::RateLimited { retry_after: 10 }));
    }

    #[test]
    fn a_weak_new_password_is_refused_before_any_hashing() {
        let user = alice(&hasher(), None);
        let refused = prepare_change(user, "alice".into(), 0).unwrap_err();
        assert!(matches!(refused, Error::WeakPassword(_)));
    }

    #[test]
    fn only_a_right_current_password_makes_the_new_hash_and_debug_shows_neither() {
        let hasher = hasher();
        let change =
            prepare_change(alice(&hasher, None), "a new long passphrase".into(), 0).unwrap();
        assert!(!format!("{change:?}").contains("passphrase"));
        let wrong = check_change(&hasher, &change, "not the password").unwrap();
        assert!(wrong.new_hash.is_none());
        let right = check_change(&hasher, &change, "correct horse battery").unwrap();
        let hash = right.new_hash.as_ref().unwrap().expose_secret().to_string();
        assert!(hasher.verify("a new long passphrase", &hash));
        assert!(!format!("{right:?}").contains(&hash));
    }
}
