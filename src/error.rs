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
    #[error("the request body is larger than 64 KiB")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("method not allowed")]
    MethodNotAllowed,
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

    /// Wraps an unexpected failure with what was being done.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        Error::Internal(anyhow::anyhow!("{context}: {error}"))
    }
}
