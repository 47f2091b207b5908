//! `grant_type=password` (RFC 6749 §4.3), in three steps so that argon2 runs on the
//! hasher's bounded pool between two short database steps: [`prepare`] finds the client and
//! user, [`check`] verifies the password, [`complete`] records the outcome and issues tokens.

use crate::app::AppState;
use crate::audit::{self, kind, Event};
use crate::clients::{self, grant, Client, ClientCredentials};
use crate::error::{Error, Result};
use crate::grants::{resolve_scope, start_session, IssuedTokens, RequestContext};
use crate::passwords::PasswordHasher;
use crate::store::users::{self, User};
use crate::store::{self, DbConnection};

/// The one message for an unknown user and a wrong password.
pub const BAD_CREDENTIALS: &str = "invalid username or password";

/// A login between its steps.
#[derive(Debug)]
pub struct Attempt {
    pub client: Client,
    pub scope: Vec<String>,
    pub user: Option<User>,
}

/// Outcome of the password check.
#[derive(Debug)]
pub struct Verdict {
    pub password_ok: bool,
    /// A new hash when the stored one was made with other parameters.
    pub rehashed: Option<String>,
}

/// Step one: authenticates the client, settles the scope, finds the user, and refuses a
/// locked account before any hashing.
pub fn prepare(
    conn: &mut DbConnection,
    state: &AppState,
    credentials: &ClientCredentials,
    username: &str,
    scope: Option<&str>,
    now: i64,
) -> Result<Attempt> {
    let client = clients::authenticate(conn, credentials, &state.settings.scopes)?;
    if !client.allows_grant(grant::PASSWORD) {
        return Err(Error::UnauthorizedClient(
            "this client may not use the password grant".into(),
        ));
    }
    let scope = resolve_scope(scope, &client.scopes)?;
    let user = users::find_by_username(conn, username)?;
    if let Some(until) = user
        .as_ref()
        .and_then(|u| u.locked_until)
        .filter(|until| *until > now)
    {
        return Err(Error::RateLimited {
            retry_after: (until - now) as u64,
        });
    }
    Ok(Attempt {
        client,
        scope,
        user,
    })
}

/// Step two (blocking, on the hasher's pool): verifies the password, or burns the same time
/// against a dummy hash when the user does not exist.
pub fn check(hasher: &PasswordHasher, user: Option<&User>, password: &str) -> Verdict {
    match user {
        None => {
            hasher.verify_dummy(password);
            Verdict {
                password_ok: false,
                rehashed: None,
            }
        }
        Some(user) => {
            let password_ok = hasher.verify(password, &user.password_hash);
            let rehashed = (password_ok && hasher.needs_rehash(&user.password_hash))
                .then(|| hasher.hash(password).ok())
                .flatten();
            Verdict {
                password_ok,
                rehashed,
            }
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

/// Counts a failed credential check against the user, locking the account when due.
pub fn record_failure(
    conn: &mut DbConnection,
    state: &AppState,
    user: &User,
    client_id: &str,
    context: &RequestContext,
    now: i64,
) -> Result<()> {
    state.metrics.login_failures.inc();
    store::transaction(conn, |conn| -> Result<()> {
        let failures = users::count_failure(conn, &user.id, now)?;
        audit::record(
            conn,
            Event::new(kind::LOGIN_FAILED)
                .user(&user.id)
                .client(client_id)
                .ip(context.ip.clone()),
            now,
        )?;
        if let Some(lock) = lock_duration(failures.max(0) as u32, state.settings.lockout_threshold)
        {
            state.metrics.account_lockouts.inc();
            users::set_locked_until(conn, &user.id, Some(now + lock))?;
            audit::record(
                conn,
                Event::new(kind::ACCOUNT_LOCKED)
                    .user(&user.id)
                    .ip(context.ip.clone())
                    .details(serde_json::json!({ "failures": failures, "locked_seconds": lock })),
                now,
            )?;
            log::info!(
                "account {} locked for {lock}s after {failures} failed logins",
                user.id
            );
        }
        Ok(())
    })
}

/// Step three: records a failure, or starts the session and issues tokens, in one
/// transaction.
pub fn complete(
    conn: &mut DbConnection,
    state: &AppState,
    attempt: Attempt,
    verdict: Verdict,
    context: &RequestContext,
    now: i64,
) -> Result<IssuedTokens> {
    let client = attempt.client.clone();
    let scope = attempt.scope.clone();
    complete_with(conn, state, attempt, verdict, context, now, |conn, user| {
        start_session(conn, state, user, &client, &scope, &["pwd"], context, now)
    })
}

/// Step three with what a successful login makes left to the caller: the token endpoint
/// starts a token session, the sign-in page a browser session. Failures, locks, the MFA
/// step and the audit trail are the same for both. `finish` runs inside the transaction
/// that resets the failure count.
pub fn complete_with<T>(
    conn: &mut DbConnection,
    state: &AppState,
    attempt: Attempt,
    verdict: Verdict,
    context: &RequestContext,
    now: i64,
    finish: impl FnOnce(&mut DbConnection, &User) -> Result<T>,
) -> Result<T> {
    let Some(user) = attempt.user else {
        state.metrics.login_failures.inc();
        store::transaction(conn, |conn| -> Result<()> {
            audit::record(
                conn,
                Event::new(kind::LOGIN_FAILED)
                    .client(&attempt.client.client_id)
                    .ip(context.ip.clone())
                    .details(serde_json::json!({"reason": "unknown user"})),
                now,
            )?;
            Ok(())
        })?;
        return Err(Error::InvalidGrant(BAD_CREDENTIALS.into()));
    };
    if !verdict.password_ok {
        record_failure(conn, state, &user, &attempt.client.client_id, context, now)?;
        return Err(Error::InvalidGrant(BAD_CREDENTIALS.into()));
    }
    if user.disabled {
        return Err(Error::InvalidGrant("account disabled".into()));
    }
    if crate::mfa::is_enabled(conn, &user.id)? {
        // No session yet, and failures are not reset: the lock must keep counting wrong
        // codes across password re-entries.
        let mfa_token = store::transaction(conn, |conn| {
            if let Some(hash) = &verdict.rehashed {
                users::set_password_hash(conn, &user.id, hash, now)?;
            }
            crate::mfa::issue_mfa_token(
                conn,
                &user.id,
                &attempt.client.client_id,
                &attempt.scope,
                now,
            )
        })?;
        return Err(Error::MfaRequired { mfa_token });
    }
    store::transaction(conn, |conn| {
        users::reset_failures(conn, &user.id)?;
        if let Some(hash) = &verdict.rehashed {
            users::set_password_hash(conn, &user.id, hash, now)?;
        }
        let issued = finish(conn, &user)?;
        audit::record(
            conn,
            Event::new(kind::LOGIN)
                .actor(&user.id)
                .user(&user.id)
                .client(&attempt.client.client_id)
                .ip(context.ip.clone()),
            now,
        )?;
        Ok(issued)
    })
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
}
