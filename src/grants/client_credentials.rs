//! `grant_type=client_credentials` (RFC 6749 §4.4): a confidential client gets an access
//! token for itself, `sub` = its id, no refresh token, no session.

use crate::clients::{self, Client, ClientCredentials, GrantType};
use crate::error::{Error, Result};
use crate::grants::{resolve_scope, IssuedTokens, Issuer, Policy};
use crate::store::DbConnection;
use crate::tokens::keyring::TokenKind;

/// Issues an access token to an authenticated confidential client.
pub fn issue(
    conn: &mut DbConnection,
    issuer: &Issuer<'_>,
    policy: &Policy<'_>,
    credentials: &ClientCredentials,
    scope: Option<&str>,
    now: i64,
) -> Result<IssuedTokens> {
    let Some(client_id) = credentials.client_id.as_deref() else {
        return Err(Error::InvalidClient(
            "client authentication is required".into(),
        ));
    };
    if credentials.secret.is_none() {
        // A public client names itself without a secret: it is known, just not allowed this
        // grant (RFC 6749 §4.4 is for confidential clients only).
        return Err(match clients::find(conn, client_id, policy.scopes)? {
            Some(client) if client.public => Error::UnauthorizedClient(
                "a public client may not use the client_credentials grant".into(),
            ),
            _ => Error::InvalidClient("client authentication is required".into()),
        });
    }
    let client = policy
        .clients
        .authenticate(conn, credentials, policy.scopes)?;
    issue_to(issuer, policy, &client, scope, now)
}

/// Issues the access token of a client already authenticated (by [`issue`], or by
/// `ClientCache::authenticate_cached` for a caller that needs no database). No database work.
pub fn issue_to(
    issuer: &Issuer<'_>,
    policy: &Policy<'_>,
    client: &Client,
    scope: Option<&str>,
    now: i64,
) -> Result<IssuedTokens> {
    if client.public || !client.allows_grant(GrantType::ClientCredentials) {
        return Err(Error::UnauthorizedClient(
            "this client may not use the client_credentials grant".into(),
        ));
    }
    let scope = resolve_scope(scope, &client.scopes)?.join(" ");
    let (claims, ttl) = super::access_claims(issuer, client, &client.client_id, &scope, now);
    let access_token = issuer
        .keys
        .sign(TokenKind::Access, client.signing_alg(), &claims)?;
    super::count_issued(policy.metrics, GrantType::ClientCredentials, now);
    Ok(IssuedTokens {
        access_token: access_token.into(),
        expires_in: ttl,
        refresh_token: None,
        id_token: None,
        scope,
        refresh_cookie: false,
    })
}
