//! `grant_type=password` (RFC 6749 §4.3), in three steps so that argon2 runs on the
//! hasher's bounded pool between two short database steps: [`prepare`] finds the client and
//! user, [`check`] verifies the password, [`complete`] records the outcome and issues tokens.

use secrecy::{ExposeSecret, SecretString};

use crate::audit::{self, Event, Kind};
use crate::clients::{Client, ClientCredentials, GrantType};
use crate::error::{Error, Result};
use crate::grants::{resolve_scope, start_session, IssuedTokens, Issuer, Policy, RequestContext};
use crate::lockout::{self, Subject};
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
    /// Whose failures this attempt counts toward.
    pub subject: Subject,
}

/// Outcome of the password check.
#[derive(Debug)]
pub struct Verdict {
    pub password_ok: bool,
    /// A new hash when the stored one was made with other parameters.
    pub rehashed: Option<SecretString>,
}

/// Step one: authenticates the client, settles the scope, finds the user, and refuses a
/// locked account (or a locked unknown name) before any hashing.
pub fn prepare(
    conn: &mut DbConnection,
    policy: &Policy<'_>,
    credentials: &ClientCredentials,
    username: &str,
    scope: Option<&str>,
    now: i64,
) -> Result<Attempt> {
    let client = policy
        .clients
        .authenticate(conn, credentials, policy.scopes)?;
    if !client.allows_grant(GrantType::Password) {
        return Err(Error::UnauthorizedClient(
            "this client may not use the password grant".into(),
        ));
    }
    let allowed = crate::oidc::allowed_scopes(&client.scopes, client.signs_users_in(), scope);
    let scope = resolve_scope(scope, &allowed)?;
    let user = users::find_by_username(conn, username)?;
    let subject = Subject::for_login(policy.master_key, user.as_ref(), username);
    lockout::refuse_if_locked(conn, &subject, now)?;
    Ok(Attempt {
        client,
        scope,
        user,
        subject,
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
                .flatten()
                .map(SecretString::from);
            Verdict {
                password_ok,
                rehashed,
            }
        }
    }
}

/// Step three: in one transaction that first re-checks the lock (see [`crate::lockout`]),
/// records a failure, or starts the session and issues tokens.
pub fn complete(
    conn: &mut DbConnection,
    issuer: &Issuer<'_>,
    policy: &Policy<'_>,
    attempt: Attempt,
    verdict: Verdict,
    context: &RequestContext,
    now: i64,
) -> Result<IssuedTokens> {
    let client = attempt.client.clone();
    let scope = attempt.scope.clone();
    let issued = complete_with(
        conn,
        policy,
        attempt,
        verdict,
        context,
        now,
        |conn, user| start_session(conn, issuer, user, &client, &scope, &["pwd"], context, now),
    )?;
    super::count_issued(policy.metrics, GrantType::Password, now);
    Ok(issued)
}

/// Step three with what a successful login makes left to the caller: the token endpoint
/// starts a token session, the sign-in page a browser session. Failures, locks (re-checked
/// inside the deciding transaction, see [`crate::lockout`]), the MFA step and the audit
/// trail are the same for both. `finish` runs inside the transaction that counts the
/// success.
pub fn complete_with<T>(
    conn: &mut DbConnection,
    policy: &Policy<'_>,
    attempt: Attempt,
    verdict: Verdict,
    context: &RequestContext,
    now: i64,
    finish: impl FnOnce(&mut DbConnection, &User) -> Result<T>,
) -> Result<T> {
    let client_id = attempt.client.client_id.clone();
    let user = match attempt.user {
        Some(user) if verdict.password_ok => user,
        _ => {
            lockout::record_failure(
                conn,
                &policy.lockout,
                &attempt.subject,
                &client_id,
                context.ip.clone(),
                now,
            )?;
            return Err(Error::InvalidGrant(BAD_CREDENTIALS.into()));
        }
    };
    if crate::mfa::is_enabled(conn, &user.id)? {
        // No session yet, and failures are not reset: the lock must keep counting wrong
        // codes across password re-entries.
        let mfa_token = store::transaction(conn, |conn| {
            lockout::ensure_unlocked(conn, &attempt.subject, now)?;
            if user.disabled {
                return Err(Error::InvalidGrant("account disabled".into()));
            }
            if let Some(hash) = &verdict.rehashed {
                users::set_password_hash(conn, &user.id, hash.expose_secret(), now)?;
            }
            crate::mfa::issue_mfa_token(conn, &user.id, &client_id, &attempt.scope, now)
        })?;
        return Err(Error::MfaRequired {
            mfa_token: mfa_token.into(),
        });
    }
    store::transaction(conn, |conn| {
        lockout::count_success(conn, &attempt.subject, now)?;
        // After the lock check, so a locked account answers 429 whatever else holds; the
        // error rolls the reset back.
        if user.disabled {
            return Err(Error::InvalidGrant("account disabled".into()));
        }
        if let Some(hash) = &verdict.rehashed {
            users::set_password_hash(conn, &user.id, hash.expose_secret(), now)?;
        }
        let issued = finish(conn, &user)?;
        audit::record(
            conn,
            Event::new(Kind::Login)
                .actor(&user.id)
                .user(&user.id)
                .client(&client_id)
                .ip(context.ip.clone()),
            now,
        )?;
        Ok(issued)
    })
}
