//! The lock on credential guessing, one rule for every place a password or code is checked
//! (the password and mfa-otp grants, `PUT /account/password`, `DELETE /account/mfa/totp`,
//! TOTP enrolment).
//!
//! Failures count per presented username: in the account's row when it exists, otherwise in
//! `login_failures` under a keyed hash of the name, so that an unknown name locks after the
//! same failures with the same lock times as a real one and the answers never tell whether
//! an account exists.
//!
//! A check is decided inside one transaction that first takes the counter's row
//! ([`ensure_unlocked`]): the argon2 work of parallel attempts overlaps, but their decisions
//! are serialised, so once the lock lands every later decision sees it. A wrong password
//! decided after that is answered 429 and not counted; a right one is refused with 429 too,
//! and can therefore never clear a lock set while it was being hashed.

use crate::audit::{self, Event, Kind};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::users::User;
use crate::store::{self, login_failures, users, DbConnection};

/// When failures lock, and where locks and failures are counted.
#[derive(Clone, Copy)]
pub struct Policy<'a> {
    /// `TESSERA_LOCKOUT_THRESHOLD`: failures before the first lock.
    pub threshold: u32,
    pub metrics: &'a Metrics,
}

/// Whose failures an attempt counts toward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// An existing account, by user id.
    Account(String),
    /// A presented username with no account, by keyed hash.
    Unknown(String),
}

impl Subject {
    /// The account's counter.
    pub fn account(user_id: &str) -> Subject {
        Subject::Account(user_id.to_string())
    }

    /// The counter of a username that has no account. Case-insensitive like usernames.
    pub fn unknown(master_key: &MasterKey, username: &str) -> Subject {
        Subject::Unknown(
            master_key.keyed_hash("login-username", username.to_lowercase().as_bytes()),
        )
    }

    /// The counter for a login with `username`, which found `user`.
    pub fn for_login(master_key: &MasterKey, user: Option<&User>, username: &str) -> Subject {
        match user {
            Some(user) => Subject::account(&user.id),
            None => Subject::unknown(master_key, username),
        }
    }
}

/// How long an account is locked after `failures` consecutive failures: 30 s at the
/// threshold, doubling with each further failure, at most 15 minutes.
pub fn lock_duration(failures: u32, threshold: u32) -> Option<i64> {
    if threshold == 0 || failures < threshold {
        return None;
    }
    let doublings = (failures - threshold).min(10);
    Some((30i64 << doublings).min(900))
}

fn refusal(locked_until: Option<i64>, now: i64) -> Result<()> {
    match locked_until.filter(|until| *until > now) {
        Some(until) => Err(Error::RateLimited {
            retry_after: (until - now) as u64,
        }),
        None => Ok(()),
    }
}

/// The early refusal for a user already loaded: 429 while the account is locked, before any
/// hashing. Like [`refuse_if_locked`], only an early answer: [`ensure_unlocked`] decides.
pub fn refuse_if_user_locked(user: &User, now: i64) -> Result<()> {
    refusal(user.locked_until, now)
}

/// Refuses a locked subject before any hashing. Only an early answer that saves the argon2
/// work: the deciding transaction checks again with [`ensure_unlocked`].
pub fn refuse_if_locked(conn: &mut DbConnection, subject: &Subject, now: i64) -> Result<()> {
    let locked_until = match subject {
        Subject::Account(id) => users::find(conn, id)?.and_then(|u| u.locked_until),
        Subject::Unknown(hash) => login_failures::find(conn, hash)?.and_then(|(_, until)| until),
    };
    refusal(locked_until, now)
}

/// Takes the subject's counter row for the rest of the transaction and refuses (429) when
/// it is locked; returns the failures counted so far. Call first in the transaction that
/// decides the attempt.
pub fn ensure_unlocked(conn: &mut DbConnection, subject: &Subject, now: i64) -> Result<i32> {
    let (failures, locked_until) = match subject {
        Subject::Account(id) => users::lock_row(conn, id)?.unwrap_or((0, None)),
        Subject::Unknown(hash) => login_failures::lock_row(conn, hash, now)?,
    };
    refusal(locked_until, now)?;
    Ok(failures)
}

/// The failed check of a password or code, inside the deciding transaction: refuses (429)
/// when the lock landed meanwhile, otherwise counts the failure, locks when due and audits.
pub fn count_failure(
    conn: &mut DbConnection,
    policy: &Policy<'_>,
    subject: &Subject,
    client_id: &str,
    ip: Option<String>,
    now: i64,
) -> Result<()> {
    ensure_unlocked(conn, subject, now)?;
    let threshold = policy.threshold;
    match subject {
        Subject::Account(user_id) => {
            let failures = users::count_failure(conn, user_id, now)?;
            audit::record(
                conn,
                Event::new(Kind::LoginFailed)
                    .user(user_id)
                    .client(client_id)
                    .ip(ip.clone()),
                now,
            )?;
            if let Some(lock) = lock_duration(failures.max(0) as u32, threshold) {
                policy.metrics.account_lockouts.inc();
                users::set_locked_until(conn, user_id, Some(now + lock))?;
                audit::record(
                    conn,
                    Event::new(Kind::AccountLocked)
                        .user(user_id)
                        .ip(ip)
                        .details(serde_json::json!({
                            "failures": failures,
                            "locked_seconds": lock,
                        })),
                    now,
                )?;
                log::info!("account {user_id} locked for {lock}s after {failures} failed logins");
            }
        }
        Subject::Unknown(hash) => {
            let failures = login_failures::count_failure(conn, hash, now)?;
            audit::record(
                conn,
                Event::new(Kind::LoginFailed)
                    .client(client_id)
                    .ip(ip)
                    .details(serde_json::json!({"reason": "unknown user"})),
                now,
            )?;
            if let Some(lock) = lock_duration(failures.max(0) as u32, threshold) {
                login_failures::set_locked_until(conn, hash, Some(now + lock))?;
            }
        }
    }
    policy.metrics.login_failures.inc();
    Ok(())
}

/// [`count_failure`] in a transaction of its own, for a check whose failure changes nothing
/// else.
pub fn record_failure(
    conn: &mut DbConnection,
    policy: &Policy<'_>,
    subject: &Subject,
    client_id: &str,
    ip: Option<String>,
    now: i64,
) -> Result<()> {
    store::transaction(conn, |conn| {
        count_failure(conn, policy, subject, client_id, ip, now)
    })
}

/// Who gave a wrong password or code while signed in, for the failure's audit event.
#[derive(Debug, Clone)]
pub struct Claimant {
    /// The client the user's access token was issued to (`first-party` for hosted pages).
    pub client_id: String,
    pub ip: Option<String>,
}

/// A wrong password or code given by a signed-in user (re-proving the password, turning MFA
/// off), counted toward the account's lock exactly as a failed login is, in a transaction of
/// its own: a stolen access token must not allow endless guessing.
pub fn record_user_failure(
    conn: &mut DbConnection,
    policy: &Policy<'_>,
    user_id: &str,
    claimant: Claimant,
    now: i64,
) -> Result<()> {
    record_failure(
        conn,
        policy,
        &Subject::account(user_id),
        &claimant.client_id,
        claimant.ip,
        now,
    )
}

/// The passed check of a password or code, inside the deciding transaction: refuses (429)
/// when the lock landed meanwhile, otherwise clears the failures.
pub fn count_success(conn: &mut DbConnection, subject: &Subject, now: i64) -> Result<()> {
    ensure_unlocked(conn, subject, now)?;
    // A name with no account never succeeds; its row ages out in the upkeep's purge.
    if let Subject::Account(user_id) = subject {
        users::reset_failures(conn, user_id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_start_at_the_threshold_double_and_stop_at_fifteen_minutes() {
        assert_eq!(lock_duration(4, 5), None);
        assert_eq!(lock_duration(5, 5), Some(30));
        assert_eq!(lock_duration(6, 5), Some(60));
        assert_eq!(lock_duration(9, 5), Some(480));
        assert_eq!(lock_duration(10, 5), Some(900));
        assert_eq!(lock_duration(100, 5), Some(900));
        assert_eq!(lock_duration(100, 0), None);
    }

    #[test]
    fn unknown_names_are_counted_case_insensitively_under_the_master_key() {
        let key = MasterKey::generate();
        assert_eq!(
            Subject::unknown(&key, "Nobody"),
            Subject::unknown(&key, "nobody")
        );
        assert_ne!(
            Subject::unknown(&key, "nobody"),
            Subject::unknown(&MasterKey::generate(), "nobody")
        );
        let Subject::Unknown(hash) = Subject::unknown(&key, "nobody") else {
            unreachable!()
        };
        assert!(!hash.contains("nobody"));
    }
}
