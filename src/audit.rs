//! Audit events: what happened, who did it, to whom, from where. Recorded in the same
//! transaction as the change they describe; never carry a secret.

use serde_json::Value;

use crate::store::audit::{self as audit_store, NewAuditEvent};
use crate::store::{self, DbConnection};

/// Event types, as stored (`audit_events.event_type`) and filtered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Login,
    LoginFailed,
    AccountLocked,
    Register,
    RefreshReuse,
    SessionRevoked,
    TokenRevoked,
    PasswordChanged,
    UserCreated,
    UserUpdated,
    UserDeleted,
    ClientCreated,
    ClientDeleted,
    ClientUpdated,
    ConsentGranted,
    ConsentWithdrawn,
    CodeReuse,
    ClientSecretRotated,
    KeyRotated,
    KeyRetired,
    MfaEnabled,
    MfaDisabled,
    EmailVerificationSent,
    EmailVerified,
    EmailChanged,
    PasswordResetRequested,
    PasswordReset,
}

impl Kind {
    /// Every kind, in the order the console's filter lists them.
    pub const ALL: [Kind; 27] = [
        Kind::Login,
        Kind::LoginFailed,
        Kind::AccountLocked,
        Kind::Register,
        Kind::RefreshReuse,
        Kind::SessionRevoked,
        Kind::TokenRevoked,
        Kind::PasswordChanged,
        Kind::UserCreated,
        Kind::UserUpdated,
        Kind::UserDeleted,
        Kind::ClientCreated,
        Kind::ClientDeleted,
        Kind::ClientUpdated,
        Kind::ConsentGranted,
        Kind::ConsentWithdrawn,
        Kind::CodeReuse,
        Kind::ClientSecretRotated,
        Kind::KeyRotated,
        Kind::KeyRetired,
        Kind::MfaEnabled,
        Kind::MfaDisabled,
        Kind::EmailVerificationSent,
        Kind::EmailVerified,
        Kind::EmailChanged,
        Kind::PasswordResetRequested,
        Kind::PasswordReset,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::LoginFailed => "login_failed",
            Kind::AccountLocked => "account_locked",
            Kind::Register => "register",
            Kind::RefreshReuse => "refresh_reuse",
            Kind::SessionRevoked => "session_revoked",
            Kind::TokenRevoked => "token_revoked",
            Kind::PasswordChanged => "password_changed",
            Kind::UserCreated => "user_created",
            Kind::UserUpdated => "user_updated",
            Kind::UserDeleted => "user_deleted",
            Kind::ClientCreated => "client_created",
            Kind::ClientDeleted => "client_deleted",
            Kind::ClientUpdated => "client_updated",
            Kind::ConsentGranted => "consent_granted",
            Kind::ConsentWithdrawn => "consent_withdrawn",
            Kind::CodeReuse => "authorization_code_reuse",
            Kind::ClientSecretRotated => "client_secret_rotated",
            Kind::KeyRotated => "key_rotated",
            Kind::KeyRetired => "key_retired",
            Kind::MfaEnabled => "mfa_enabled",
            Kind::MfaDisabled => "mfa_disabled",
            Kind::EmailVerificationSent => "email_verification_sent",
            Kind::EmailVerified => "email_verified",
            Kind::EmailChanged => "email_changed",
            Kind::PasswordResetRequested => "password_reset_requested",
            Kind::PasswordReset => "password_reset",
        }
    }
}

/// An event about to be recorded.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: Kind,
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
    pub fn new(kind: Kind) -> Self {
        Event {
            kind,
            actor: None,
            user_id: None,
            client_id: None,
            ip: None,
            details: None,
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
        event.kind.as_str(),
        event.actor.as_deref().unwrap_or("-"),
        event.user_id.as_deref().unwrap_or("-"),
        event.client_id.as_deref().unwrap_or("-")
    );
    audit_store::insert(
        conn,
        &NewAuditEvent {
            at: now,
            event_type: event.kind.as_str().to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_snake_case_name() {
        let names: std::collections::BTreeSet<&str> =
            Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), Kind::ALL.len());
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
    }
}
