//! `grant_type=urn:tessera:params:oauth:grant-type:mfa-otp`: the second half of a password
//! login for a user with MFA on. The client presents the `mfa_token` the password grant
//! answered with and a TOTP or recovery code; the session then records `amr` `pwd` + `otp`.

use crate::audit::{self, Event, Kind};
use crate::clients::{self, ClientCredentials, GrantType};
use crate::error::{Error, Result};
use crate::grants::{start_session, IssuedTokens, Issuer, Policy, RequestContext};
use crate::lockout::{self, Subject};
use crate::mfa;
use crate::store::mfa as mfa_store;
use crate::store::users;
use crate::store::{self, DbConnection};

const BAD_MFA_TOKEN: &str = "mfa_token is invalid, expired or already used";
const BAD_OTP: &str = "the one-time code is invalid or was already used";

/// The authentication methods of a login completed with a second factor, in this order.
pub const AMR: [&str; 2] = ["pwd", "otp"];

/// Checks the mfa_token and the code, then spends both and starts the session in one
/// transaction. A wrong code counts toward the account's lock and leaves the mfa_token
/// usable until it expires, so a typo does not send the user back to the password.
pub fn complete(
    conn: &mut DbConnection,
    issuer: &Issuer<'_>,
    policy: &Policy<'_>,
    credentials: &ClientCredentials,
    mfa_token: &str,
    otp: &str,
    context: &RequestContext,
    now: i64,
) -> Result<IssuedTokens> {
    let issued = complete_with(
        conn,
        policy,
        credentials,
        mfa_token,
        otp,
        context,
        now,
        |conn, user, client, scope| {
            start_session(conn, issuer, user, client, scope, &AMR, context, now)
        },
    )?;
    super::count_issued(policy.metrics, GrantType::MfaOtp, now);
    Ok(issued)
}

/// [`complete`] with what a successful login makes left to the caller (a token session for
/// the token endpoint, a browser session for the sign-in page); `finish` runs inside the
/// transaction that spends the code and the mfa_token.
pub fn complete_with<T>(
    conn: &mut DbConnection,
    policy: &Policy<'_>,
    credentials: &ClientCredentials,
    mfa_token: &str,
    otp: &str,
    context: &RequestContext,
    now: i64,
    finish: impl FnOnce(&mut DbConnection, &users::User, &clients::Client, &[String]) -> Result<T>,
) -> Result<T> {
    let client = policy
        .clients
        .authenticate(conn, credentials, policy.scopes)?;
    // The grant finishes a password login, so a client allowed that may finish it too.
    if !client.allows_grant(GrantType::MfaOtp) && !client.allows_grant(GrantType::Password) {
        return Err(Error::UnauthorizedClient(
            "this client may not use the mfa-otp grant".into(),
        ));
    }
    let token_hash = mfa::mfa_token_hash(mfa_token);
    let pending = mfa_store::find_token(conn, &token_hash, now)?
        .filter(|t| t.client_id == client.client_id)
        .ok_or_else(|| Error::InvalidGrant(BAD_MFA_TOKEN.into()))?;
    let user = users::find(conn, &pending.user_id)?
        .ok_or_else(|| Error::InvalidGrant(BAD_MFA_TOKEN.into()))?;
    if user.disabled {
        return Err(Error::InvalidGrant("account disabled".into()));
    }
    let subject = Subject::account(&user.id);
    lockout::refuse_if_locked(conn, &subject, now)?;
    let scope: Vec<String> = pending
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let issued = store::transaction(conn, |conn| -> Result<Option<T>> {
        let Some(factor) = mfa::verify_second_factor(conn, policy.master_key, &user.id, otp, now)?
        else {
            lockout::count_failure(
                conn,
                &policy.lockout,
                &subject,
                &client.client_id,
                context.ip.clone(),
                now,
            )?;
            return Ok(None);
        };
        // A lock that landed while this was in flight wins, and undoes the code's spending.
        lockout::count_success(conn, &subject, now)?;
        if mfa_store::consume_token(conn, &token_hash, now)? != 1 {
            // Used by a concurrent request a moment ago: undo the code's spending too.
            return Err(Error::InvalidGrant(BAD_MFA_TOKEN.into()));
        }
        let issued = finish(conn, &user, &client, &scope)?;
        audit::record(
            conn,
            Event::new(Kind::Login)
                .actor(&user.id)
                .user(&user.id)
                .client(&client.client_id)
                .ip(context.ip.clone())
                .details(serde_json::json!({ "amr": AMR, "second_factor": factor.as_str() })),
            now,
        )?;
        Ok(Some(issued))
    })?;
    match issued {
        Some(issued) => Ok(issued),
        None => Err(Error::InvalidGrant(BAD_OTP.into())),
    }
}
