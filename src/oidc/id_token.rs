//! ID tokens (OpenID Connect Core §2, SPEC §6.3): who signed in, for the client that asked
//! with `openid`. Signed like the client's access tokens, `typ` `JWT`.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::oidc::{has_scope, OPENID};
use crate::store::sessions::Session;
use crate::store::users::{self, User};
use crate::store::DbConnection;
use crate::tokens::algs::SigningAlg;
use crate::tokens::keyring::{KeyRing, TokenKind};

/// The claims of an ID token. Members without a value are left out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default)]
    pub amr: Vec<String>,
    pub sid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// What an ID token is made of, besides the signer.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub user: &'a User,
    /// The client's id, the `aud`.
    pub client_id: &'a str,
    /// The client's `token_alg` (SPEC §6.6); the default when `None`.
    pub alg: Option<SigningAlg>,
    /// The session the tokens belong to: its `sid`, `auth_time` and `amr`.
    pub session: &'a Session,
    /// The scope just granted: the ID token is issued only when it holds `openid`.
    pub scope: &'a str,
    /// The client's access-token lifetime, which the ID token's shares.
    pub access_ttl: i64,
    /// The authorization request's `nonce` (code flow; never on a refresh).
    pub nonce: Option<&'a str>,
    /// The access token issued with it, whose `at_hash` the code flow includes.
    pub at_hash_of: Option<&'a str>,
}

/// `at_hash` (OpenID Connect Core §3.1.3.6): the left half of the access token's hash
/// under the hash of the signing algorithm (SHA-256 for RS256 and ES256, SHA-512 for
/// EdDSA with Ed25519), base64url.
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let digest = match alg {
        SigningAlg::Rs256 | SigningAlg::Es256 => {
            crate::crypto::sha256(access_token.as_bytes()).to_vec()
        }
        SigningAlg::EdDsa => crate::crypto::sha512(access_token.as_bytes()).to_vec(),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// The ID token for a session's tokens, when the granted scope holds `openid`; `None`
/// otherwise. `exp` is `iat` + the client's access-token lifetime; `auth_time`, `amr` and
/// `sid` are the session's.
pub fn issue(
    conn: &mut DbConnection,
    keys: &KeyRing,
    issuer: &str,
    subject: &Subject<'_>,
    now: i64,
) -> Result<Option<String>> {
    let verified = email_verified_claim(conn, subject.user, subject.scope)?;
    sign(keys, issuer, subject, verified, now)
}

/// The `email_verified` claim an ID token for `scope` carries (`None`: no ID token, or no
/// `email` scope): the one thing [`issue`] reads from the database, for a caller that reads
/// it inside its transaction and signs after the commit.
pub fn email_verified_claim(
    conn: &mut DbConnection,
    user: &User,
    scope: &str,
) -> Result<Option<bool>> {
    if has_scope(scope, OPENID) && has_scope(scope, "email") {
        Ok(Some(email_verified(conn, user)?))
    } else {
        Ok(None)
    }
}

/// [`issue`] with its `email_verified` claim read before ([`email_verified_claim`]); no
/// database work.
pub fn sign(
    keys: &KeyRing,
    issuer: &str,
    subject: &Subject<'_>,
    email_verified: Option<bool>,
    now: i64,
) -> Result<Option<String>> {
    let Subject {
        user,
        session,
        scope,
        ..
    } = *subject;
    if !has_scope(scope, OPENID) {
        return Ok(None);
    }
    let alg = keys.alg_for(subject.alg);
    let profile = has_scope(scope, "profile");
    let email = has_scope(scope, "email");
    let claims = IdClaims {
        iss: issuer.to_string(),
        sub: user.id.clone(),
        aud: subject.client_id.to_string(),
        exp: now + subject.access_ttl,
        iat: now,
        auth_time: session.auth_time,
        nonce: subject.nonce.map(String::from),
        amr: serde_json::from_str(&session.amr).unwrap_or_default(),
        sid: session.id.clone(),
        at_hash: subject.at_hash_of.map(|token| at_hash(alg, token)),
        preferred_username: profile.then(|| user.username.clone()),
        updated_at: profile.then_some(user.updated_at),
        email: if email { user.email.clone() } else { None },
        email_verified: if email {
            Some(email_verified.unwrap_or(false))
        } else {
            None
        },
    };
    Ok(Some(keys.sign(TokenKind::Id, Some(alg), &claims)?))
}

/// `recovery::is_email_verified`'s rule (the current address is the one proven), read
/// from the store here: `recovery` imports `accounts`, which reaches the grants that call
/// this module, so calling it would close an import cycle.
fn email_verified(conn: &mut DbConnection, user: &User) -> Result<bool> {
    let Some(email) = user.email.as_deref() else {
        return Ok(false);
    };
    Ok(crate::store::mail_tokens::verified_email(conn, &user.id)?.as_deref() == Some(email))
}

/// The ID token of a refresh (OpenID Connect Core §12.2): the same `sub` and `auth_time`
/// as the session's first, never a `nonce`. `user` is loaded only when `openid` was
/// granted and the caller has not loaded it already (the one-statement refresh has not).
#[allow(clippy::too_many_arguments)]
pub fn on_refresh(
    conn: &mut DbConnection,
    keys: &KeyRing,
    issuer: &str,
    access_ttl: i64,
    (client_id, alg): (&str, Option<SigningAlg>),
    session: &Session,
    scope: &str,
    user: Option<&User>,
    now: i64,
) -> Result<Option<String>> {
    if !has_scope(scope, OPENID) {
        return Ok(None);
    }
    let loaded;
    let user = match user {
        Some(user) => user,
        None => {
            loaded = users::find(conn, &session.user_id)?.ok_or_else(|| {
                Error::InvalidGrant("refresh token is invalid, expired or revoked".into())
            })?;
            &loaded
        }
    };
    let subject = Subject {
        user,
        client_id,
        alg,
        session,
        scope,
        access_ttl,
        nonce: None,
        at_hash_of: None,
    };
    issue(conn, keys, issuer, &subject, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_oidc_core_appendix_a3() {
        // OpenID Connect Core 1.0 Appendix A.3: access token and at_hash of an RS256
        // ID token.
        assert_eq!(
            at_hash(
                SigningAlg::Rs256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn eddsa_takes_the_left_half_of_sha_512() {
        assert_eq!(at_hash(SigningAlg::EdDsa, "token").len(), 43);
        assert_eq!(at_hash(SigningAlg::Es256, "token").len(), 22);
    }
}
