//! Audit events: what happened, who did it, to whom, from where. Recorded in the same
//! transaction as the change they describe; never carry a secret.

use serde_json::Value;

use crate::named::named_enum;
use crate::store::audit::{self as audit_store, NewAuditEvent};
use crate::store::{self, DbConnection};

named_enum! {
    /// Event types, as stored (`audit_events.event_type`) and filtered on; `ALL` is the
    /// order the console's filter lists them in.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Kind {
        Login => "login",
        LoginFailed => "login_failed",
        AccountLocked => "account_locked",
        Register => "register",
        RefreshReuse => "refresh_reuse",
        SessionRevoked => "session_revoked",
        TokenRevoked => "token_revoked",
        PasswordChanged => "password_changed",
        UserCreated => "user_created",
        UserUpdated => "user_updated",
        UserDeleted => "user_deleted",
        ClientCreated => "client_created",
        ClientDeleted => "client_deleted",
        ClientUpdated => "client_updated",
        ConsentGranted => "consent_granted",
        ConsentWithdrawn => "consent_withdrawn",
        CodeReuse => "authorization_code_reuse",
        ClientSecretRotated => "client_secret_rotated",
        KeyRotated => "key_rotated",
        KeyRetired => "key_retired",
        MfaEnabled => "mfa_enabled",
        MfaDisabled => "mfa_disabled",
        EmailVerificationSent => "email_verification_sent",
        EmailVerified => "email_verified",
        EmailChanged => "email_changed",
        PasswordResetRequested => "password_reset_requested",
        PasswordReset => "password_reset",
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
