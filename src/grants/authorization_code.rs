//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6): exchanges a one-time
//! code from `/oauth/authorize` for tokens. The code is spent in the transaction that starts
//! the session; a code presented again ends that session (RFC 6749 §4.1.2).

use crate::audit::{self, Event, Kind};
use crate::authorize::{code_hash, pkce_shaped};
use crate::clients::{ClientCredentials, GrantType};
use crate::error::{Error, Result};
use crate::grants::{start_session_for, IssuedTokens, Issuer, Policy, RequestContext, SignIn};
use crate::store::authorization_codes as code_store;
use crate::store::{self, sessions, users, DbConnection};

const BAD_CODE: &str = "the authorization code is invalid, expired or already used";

/// What the token request sent besides client authentication.
pub struct Exchange<'a> {
    pub code: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: &'a str,
}

enum Outcome {
    Issued(IssuedTokens),
    /// Refused; `true` when the refusal was a replay whose session has now ended.
    Refused(&'static str),
}

/// The RFC 7636 S256 transform of a verifier.
pub fn s256(verifier: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(crate::crypto::sha256(verifier.as_bytes()))
}

/// Checks the code against the client, redirect URI and verifier; spends it and starts the
/// session, all in one transaction.
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
    let outcome = store::transaction(conn, |conn| -> Result<Outcome> {
        let Some(code) = code_store::find(conn, &hash)? else {
            return Ok(Outcome::Refused(BAD_CODE));
        };
        if code.used_at.is_some() || code_store::spend(conn, &hash, now)? != 1 {
            // A replay: whoever holds this code may be an attacker, so the session the
            // first exchange started ends now (RFC 6749 §4.1.2, RFC 9700 §4.5). Read again:
            // a concurrent first exchange may have committed its session since.
            let code = code_store::find(conn, &hash)?.unwrap_or(code);
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
            return Ok(Outcome::Refused(BAD_CODE));
        }
        if code.expires_at <= now || code.client_id != client.client_id {
            return Ok(Outcome::Refused(BAD_CODE));
        }
        let redirect_ok = match request.redirect_uri {
            Some(uri) => uri == code.redirect_uri,
            None => !code.redirect_uri_sent,
        };
        if !redirect_ok {
            return Ok(Outcome::Refused(
                "redirect_uri does not match the authorization request",
            ));
        }
        let verifier_ok = pkce_shaped(request.code_verifier)
            && crate::crypto::constant_time_eq(
                s256(request.code_verifier).as_bytes(),
                code.code_challenge.as_bytes(),
            );
        if !verifier_ok {
            return Ok(Outcome::Refused(
                "code_verifier does not match the code_challenge",
            ));
        }
        let Some(user) = users::find(conn, &code.user_id)?.filter(|u| !u.disabled) else {
            return Ok(Outcome::Refused(BAD_CODE));
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
        let (issued, sid) =
            start_session_for(conn, issuer, &user, &client, &scope, &sign_in, context, now)?;
        code_store::set_session(conn, &hash, &sid)?;
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
        Ok(Outcome::Issued(issued))
    })?;
    match outcome {
        Outcome::Issued(issued) => {
            super::count_issued(policy.metrics, GrantType::AuthorizationCode, now);
            Ok(issued)
        }
        Outcome::Refused(message) => Err(Error::InvalidGrant(message.into())),
    }
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
