//! Audit events: what happened, who did it, to whom, from where. Recorded in the same
//! transaction as the change they describe; never carry a secret.

use serde_json::Value;

use crate::store::audit::{self as audit_store, NewAuditEvent};
use crate::store::{self, DbConnection};

/// Event types, as stored and filtered on.
pub mod kind {
    pub const LOGIN: &str = "login";
    pub const LOGIN_FAILED: &str = "login_failed";
    pub const ACCOUNT_LOCKED: &str = "account_locked";
    pub const REGISTER: &str = "register";
    pub const REFRESH_REUSE: &str = "refresh_reuse";
    pub const SESSION_REVOKED: &str = "session_revoked";
    pub const TOKEN_REVOKED: &str = "token_revoked";
    pub const PASSWORD_CHANGED: &str = "password_changed";
    pub const USER_CREATED: &str = "user_created";
    pub const USER_UPDATED: &str = "user_updated";
    pub const USER_DELETED: &str = "user_deleted";
    pub const CLIENT_CREATED: &str = "client_created";
    pub const CLIENT_DELETED: &str = "client_deleted";
    pub const CLIENT_UPDATED: &str = "client_updated";
    pub const CONSENT_GRANTED: &str = "consent_granted";
    pub const CONSENT_WITHDRAWN: &str = "consent_withdrawn";
    pub const CODE_REUSE: &str = "authorization_code_reuse";
    pub const CLIENT_SECRET_ROTATED: &str = "client_secret_rotated";
    pub const KEY_ROTATED: &str = "key_rotated";
    pub const KEY_RETIRED: &str = "key_retired";
    pub const MFA_ENABLED: &str = "mfa_enabled";
    pub const MFA_DISABLED: &str = "mfa_disabled";
}

/// An event about to be recorded.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub kind: &'static str,
    /// Who acted: a user id, `client:ID`, or `cli`.
    pub actor: Option<String>,
    /// The user the event is about.
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub details: Option<Value>,
}

impl Event {
    /// An event of `kind` with nothing else set.
    pub fn new(kind: &'static str) -> Self {
        Event {
            kind,
            ..Default::default()
        }
    }
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }
    pub fn user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }
    pub fn client(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }
    pub fn ip(mut self, ip: Option<String>) -> Self {
        self.ip = ip;
        self
    }
    pub fn details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// Stores the event (in the caller's transaction, if any).
pub fn record(conn: &mut DbConnection, event: Event, now: i64) -> store::QueryResult<()> {
    log::info!(
        "audit: {} actor={} user={} client={}",
        event.kind,
        event.actor.as_deref().unwrap_or("-"),
        event.user_id.as_deref().unwrap_or("-"),
        event.client_id.as_deref().unwrap_or("-")
    );
    audit_store::insert(
        conn,
        &NewAuditEvent {
            at: now,
            event_type: event.kind.to_string(),
            actor: event.actor,
            user_id: event.user_id,
            client_id: event.client_id,
            ip: event.ip,
            details: event
                .details
                .unwrap_or_else(|| Value::Object(Default::default()))
                .to_string(),
        },
    )
}
