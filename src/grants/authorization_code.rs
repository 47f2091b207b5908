//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6): exchanges a one-time
//! code from `/oauth/authorize` for tokens. The code is spent in the transaction that starts
//! the session; a code presented again ends that session (RFC 6749 §4.1.2). The tokens are
//! signed after that transaction commits, so no lock is held while signing (on SQLite every
//! writer waits for the one holding the database).

use crate::audit::{self, Event, Kind};
use crate::authorize::{code_hash, pkce_shaped};
use crate::clients::{ClientCredentials, GrantType};
use crate::error::{Error, Result};
use crate::grants::{
    new_session_id, open_session, IssuedTokens, Issuer, OpenedSession, Policy, RequestContext,
    SignIn,
};
use crate::store::authorization_codes as code_store;
use crate::store::users::{self, User};
use crate::store::{self, sessions, DbConnection};

const BAD_CODE: &str = "the authorization code is invalid, expired or already used";

/// What the token request sent besides client authentication.
pub struct Exchange<'a> {
    pub code: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: &'a str,
}

enum Outcome {
    /// The session is written; its tokens are signed once the transaction has committed.
    Opened(Box<Opened>),
    Refused(&'static str),
}

struct Opened {
    session: OpenedSession,
    user: User,
    sign_in: SignIn,
}

/// The RFC 7636 S256 transform of a verifier.
pub fn s256(verifier: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(crate::crypto::sha256(verifier.as_bytes()))
}

/// Checks the code against the client, redirect URI and verifier; spends it and starts the
/// session, all in one transaction; then signs the session's tokens.
pub fn exchange(
    conn: &mut DbConnection,
    issuer: &Issuer<'_>,
    policy: &Policy<'_>,
    credentials: &ClientCredentials,
    request: &Exchange<'_>,
    context: &RequestContext,
    now: i64,
) -> Result<IssuedTokens> {
    let client = policy
        .clients
        .authenticate(conn, credentials, policy.scopes)?;
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(Error::UnauthorizedClient(
            "this client may not use the authorization code grant".into(),
        ));
    }
    let hash = code_hash(request.code);
    let sid = new_session_id();
    let outcome = store::transaction(conn, |conn| -> Result<Outcome> {
        let Some(code) = code_store::redeem(conn, &hash, &sid, now)? else {
            return replayed(conn, policy, &hash, context, now);
        };
        // Refused from here on, the code stays spent (each guess at a verifier costs a
        // code) and no session is recorded for it.
        let refuse = |conn: &mut DbConnection, message: &'static str| -> Result<Outcome> {
            code_store::clear_session(conn, &hash)?;
            Ok(Outcome::Refused(message))
        };
        if code.expires_at <= now || code.client_id != client.client_id {
            return refuse(conn, BAD_CODE);
        }
        let redirect_ok = match request.redirect_uri {
            Some(uri) => uri == code.redirect_uri,
            None => !code.redirect_uri_sent,
        };
        if !redirect_ok {
            return refuse(
                conn,
                "redirect_uri does not match the authorization request",
            );
        }
        let verifier_ok = pkce_shaped(request.code_verifier)
            && crate::crypto::constant_time_eq(
                s256(request.code_verifier).as_bytes(),
                code.code_challenge.as_bytes(),
            );
        if !verifier_ok {
            return refuse(conn, "code_verifier does not match the code_challenge");
        }
        let Some(user) = users::find(conn, &code.user_id)?.filter(|u| !u.disabled) else {
            return refuse(conn, BAD_CODE);
        };
        let scope: Vec<String> = code
            .scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let sign_in = SignIn {
            amr: serde_json::from_str(&code.amr).unwrap_or_default(),
            auth_time: code.auth_time,
            fresh: code.fresh,
            nonce: code.nonce.clone(),
            code_flow: true,
        };
        let session = open_session(
            conn,
            sid.clone(),
            issuer,
            &user,
            &client,
            &scope,
            &sign_in,
            context,
            now,
        )?;
        if let Some(browser_session) = &code.browser_session_id {
            crate::store::session_links::insert(conn, &sid, browser_session)?;
        }
        audit::record(
            conn,
            Event::new(Kind::Login)
                .actor(&user.id)
                .user(&user.id)
                .client(&client.client_id)
                .ip(context.ip.clone())
                .details(
                    serde_json::json!({ "grant": GrantType::AuthorizationCode.as_str(), "amr": sign_in.amr }),
                ),
            now,
        )?;
        Ok(Outcome::Opened(Box::new(Opened {
            session,
            user,
            sign_in,
        })))
    })?;
    match outcome {
        Outcome::Opened(opened) => {
            let Opened {
                session,
                user,
                sign_in,
            } = *opened;
            match session.sign(issuer, &user, &client, &sign_in, now) {
                Ok(issued) => {
                    super::count_issued(policy.metrics, GrantType::AuthorizationCode, now);
                    Ok(issued)
                }
                Err(e) => {
                    // Signing needs no database and fails only without a key for the
                    // client's algorithm. The session is committed and its code spent: end
                    // the session, so that no live session is left that no token names.
                    let ended = store::transaction(conn, |conn| -> Result<_> {
                        let ended = sessions::revoke(conn, &sid, now, "tokens not issued")?;
                        crate::session_end::sessions_ended(conn, policy.metrics, &ended, now)?;
                        Ok(())
                    });
                    if let Err(revoke) = ended {
                        log::error!("session {sid} left without tokens: {revoke}");
                    }
                    Err(e)
                }
            }
        }
        Outcome::Refused(message) => Err(Error::InvalidGrant(message.into())),
    }
}

/// A code that [`code_store::redeem`] did not spend: unknown, or spent before. A spent one
/// presented again may be in an attacker's hands, so the session its first exchange started
/// ends now (RFC 6749 §4.1.2, RFC 9700 §4.5). A concurrent first exchange has committed by
/// the time this runs (its update held the row), so its session is recorded.
fn replayed(
    conn: &mut DbConnection,
    policy: &Policy<'_>,
    hash: &str,
    context: &RequestContext,
    now: i64,
) -> Result<Outcome> {
    let Some(code) = code_store::find(conn, hash)? else {
        return Ok(Outcome::Refused(BAD_CODE));
    };
    if let Some(sid) = &code.session_id {
        let ended = sessions::revoke(conn, sid, now, "authorization code reused")?;
        crate::session_end::sessions_ended(conn, policy.metrics, &ended, now)?;
    }
    audit::record(
        conn,
        Event::new(Kind::CodeReuse)
            .user(&code.user_id)
            .client(&code.client_id)
            .ip(context.ip.clone())
            .details(serde_json::json!({ "session_id": code.session_id })),
        now,
    )?;
    Ok(Outcome::Refused(BAD_CODE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
