//! The one error type of tessera's domain layer: one variant per error code of the contract
//! (RFC 6749 §5.2, RFC 6750 and tessera's own). `http::error` turns it into a response; that
//! is the only place that knows codes, statuses and headers.

/// A failure that a client sees, or an internal one it sees only as `server_error`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidClient(String),
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    InvalidScope(String),
    /// RFC 6750 §3.1; `missing` is true when no token was sent at all.
    #[error("{message}")]
    InvalidToken { message: String, missing: bool },
    #[error("{0}")]
    InsufficientScope(String),
    #[error("that username is already taken")]
    UsernameTaken,
    #[error("{0}")]
    WeakPassword(String),
    #[error("too many attempts; try again later")]
    RateLimited { retry_after: u64 },
    /// The `mfa_token` is a bearer secret: `Debug` (which actix logs at debug level for every
    /// error response) shows it redacted.
    #[error("a second factor is required")]
    MfaRequired { mfa_token: secrecy::SecretString },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached; the client should retry.
    #[error("the service is temporarily unavailable")]
    Unavailable,
    /// Anything unexpected; its text is logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Results of the domain layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An `invalid_token` error for a token that was sent but cannot be accepted.
    pub fn invalid_token(message: impl Into<String>) -> Self {
        Error::InvalidToken {
            message: message.into(),
            missing: false,
        }
    }

    /// Wraps an unexpected failure with what was being done, keeping the failure as the
    /// cause (the log line shows the chain; `source()` walks it).
    pub fn internal(
        context: &'static str,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Internal(anyhow::Error::new(error).context(context))
    }

    /// An unexpected state that no failure caused (a bug, were it ever reached).
    pub fn bug(context: &'static str, what: &'static str) -> Self {
        Error::Internal(anyhow::anyhow!("{context}: {what}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_keeps_its_cause_behind_the_context() {
        let cause = "x".parse::<i64>().unwrap_err();
        let Error::Internal(error) = Error::internal("reading a number", cause) else {
            unreachable!("internal() makes an internal error")
        };
        assert_eq!(
            format!("{error:#}"),
            "reading a number: invalid digit found in string"
        );
        assert!(error
            .chain()
            .nth(1)
            .unwrap()
            .is::<std::num::ParseIntError>());
    }
}
