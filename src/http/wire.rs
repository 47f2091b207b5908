//! The JSON shapes of the admin and account APIs, and of the CLI's output: built at the edge
//! from the domain's plain values, so that the OpenAPI document describes exactly what is
//! sent. Instants are RFC 3339 here; the domain keeps unix seconds (or milliseconds).

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::store::audit::AuditEvent;
use crate::store::consents::Consent;
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::tokens::keyring::{self, KeyInfo};

/// Unix seconds as RFC 3339.
pub fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Unix milliseconds as RFC 3339 (key instants order within a second).
fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// One page of a listing: `{"items":[…],"next_cursor":"…"|null}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The page of `page`'s items, each shown as `view` shows it.
    pub fn of<D>(page: crate::paging::Page<D>, view: impl FnMut(D) -> T) -> Self {
        Page {
            items: page.items.into_iter().map(view).collect(),
            next_cursor: page.next_cursor,
        }
    }

    /// A listing that is never cut: one page, no cursor.
    pub fn whole(items: Vec<T>) -> Self {
        Page {
            items,
            next_cursor: None,
        }
    }
}

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    /// Custom attributes, copied into access tokens under `attributes`.
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    pub disabled: bool,
    #[schema(format = DateTime)]
    pub locked_until: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        UserView {
            id: user.id.clone(),
            username: user.username.clone(),
            email: user.email.clone(),
            roles: crate::accounts::user_roles(user),
            attributes: crate::accounts::user_attributes(user),
            disabled: user.disabled,
            locked_until: user.locked_until.map(rfc3339),
            created_at: rfc3339(user.created_at),
            updated_at: rfc3339(user.updated_at),
        }
    }
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        UserView::from(&user)
    }
}

/// A session as its owner and admins see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    /// The session id (`sid` in tokens).
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_used_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub current: bool,
}

impl SessionView {
    /// `current` marks the session the request's token belongs to.
    pub fn new(session: Session, current_sid: Option<&str>) -> Self {
        SessionView {
            current: current_sid == Some(session.id.as_str()),
            created_at: rfc3339(session.created_at),
            last_used_at: rfc3339(session.last_used_at),
            expires_at: rfc3339(session.expires_at),
            id: session.id,
            user_id: session.user_id,
            client_id: session.client_id,
            user_agent: session.user_agent,
            ip: session.ip,
        }
    }
}

/// A remembered consent as its user sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentView {
    pub client_id: String,
    pub scopes: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<Consent> for ConsentView {
    fn from(consent: Consent) -> Self {
        ConsentView {
            scopes: crate::consent::scopes_of(&consent),
            client_id: consent.client_id,
            created_at: rfc3339(consent.created_at),
            updated_at: rfc3339(consent.updated_at),
        }
    }
}

/// A client as the admin API shows it (never its secret's hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Client {
    pub client_id: String,
    pub public: bool,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    pub access_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub refresh_reuse_grace: Option<i64>,
    pub refresh_cookie: bool,
    /// The algorithm that signs this client's tokens; null means the default, RS256.
    pub token_alg: Option<String>,
    /// Shown on the consent page; the client id when absent.
    pub name: Option<String>,
    /// Where `/oauth/authorize` may send the browser back, matched exactly (RFC 8252 §7.3:
    /// any port for a loopback IP literal).
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// First-party clients skip the consent page.
    pub first_party: bool,
    pub backchannel_logout_uri: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<crate::clients::Client> for Client {
    fn from(client: crate::clients::Client) -> Self {
        Client {
            created_at: rfc3339(client.created_at),
            client_id: client.client_id,
            public: client.public,
            grant_types: crate::clients::GrantType::names(&client.grant_types),
            scopes: client.scopes,
            audience: client.audience,
            access_token_ttl: client.access_token_ttl,
            refresh_token_ttl: client.refresh_token_ttl,
            refresh_reuse_grace: client.refresh_reuse_grace,
            refresh_cookie: client.refresh_cookie,
            token_alg: client.token_alg,
            name: client.name,
            redirect_uris: client.redirect_uris,
            post_logout_redirect_uris: client.post_logout_redirect_uris,
            first_party: client.first_party,
            backchannel_logout_uri: client.backchannel_logout_uri,
        }
    }
}

/// A client just created or with a new secret: the only moment the secret exists in clear.
#[derive(Serialize, ToSchema)]
pub struct ClientWithSecret {
    #[serde(flatten)]
    pub client: Client,
    /// 256 random bits, base64url; null for a public client.
    pub client_secret: Option<String>,
}

impl From<crate::clients::ClientWithSecret> for ClientWithSecret {
    fn from(created: crate::clients::ClientWithSecret) -> Self {
        ClientWithSecret {
            client: Client::from(created.client),
            client_secret: created.client_secret,
        }
    }
}

/// Where a key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// Signs new tokens.
    Active,
    /// Published, signs from `activates_at`.
    Staged,
    /// Signs no more; published until its last token expires.
    Previous,
    /// Its tokens have all expired; no longer published.
    Expired,
    /// Dropped at once by an operator.
    Retired,
}

impl From<keyring::KeyStatus> for KeyStatus {
    fn from(status: keyring::KeyStatus) -> Self {
        match status {
            keyring::KeyStatus::Active => KeyStatus::Active,
            keyring::KeyStatus::Staged => KeyStatus::Staged,
            keyring::KeyStatus::Previous => KeyStatus::Previous,
            keyring::KeyStatus::Expired => KeyStatus::Expired,
            keyring::KeyStatus::Retired => KeyStatus::Retired,
        }
    }
}

/// A signing key as operators see it: where it stands and when things happen to it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyView {
    pub kid: String,
    /// The one algorithm it signs and verifies with: `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    pub status: KeyStatus,
    /// Modulus size for RSA; 256 for P-256 and Ed25519.
    pub bits: i32,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it started (or starts) signing.
    #[schema(format = DateTime)]
    pub activates_at: String,
    /// When it stopped (or will stop) signing, once a successor is known.
    #[schema(format = DateTime)]
    pub deactivates_at: Option<String>,
    /// When it leaves (or left) the JWKS, once known.
    #[schema(format = DateTime)]
    pub published_until: Option<String>,
    #[schema(format = DateTime)]
    pub retired_at: Option<String>,
}

impl From<KeyInfo> for KeyView {
    fn from(key: KeyInfo) -> Self {
        KeyView {
            kid: key.kid,
            alg: key.alg,
            status: key.status.into(),
            bits: key.bits,
            created_at: rfc3339_ms(key.created_at),
            activates_at: rfc3339_ms(key.activates_at),
            deactivates_at: key.deactivates_at.map(rfc3339_ms),
            published_until: key.published_until.map(rfc3339_ms),
            retired_at: key.retired_at.map(rfc3339_ms),
        }
    }
}

/// An audit event as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditView {
    pub id: i64,
    #[schema(format = DateTime)]
    pub at: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// A user id, or `cli` for the operator CLI.
    pub actor: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    /// Event-specific details.
    pub details: Value,
}

impl From<AuditEvent> for AuditView {
    fn from(event: AuditEvent) -> Self {
        AuditView {
            id: event.id,
            at: rfc3339(event.at),
            event_type: event.event_type,
            actor: event.actor,
            user_id: event.user_id,
            client_id: event.client_id,
            ip: event.ip,
            details: serde_json::from_str(&event.details).unwrap_or(Value::Null),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_statuses_have_the_names_the_audit_log_writes() {
        use keyring::KeyStatus as Domain;
        for status in [
            Domain::Active,
            Domain::Staged,
            Domain::Previous,
            Domain::Expired,
            Domain::Retired,
        ] {
            assert_eq!(
                serde_json::to_value(KeyStatus::from(status)).unwrap(),
                status.as_str()
            );
        }
    }
}
