//! The one place where errors become HTTP: status, headers (`WWW-Authenticate`,
//! `Retry-After`, `Cache-Control: no-store`) and the `{"error","error_description"}` body.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Error;

/// What a handler can answer: a domain [`Error`], or a refusal of the request itself that
/// the domain never sees (the body's size or type, the method). All answer in the contract's
/// error shape; the transport refusals as `invalid_request` with their own status.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Domain(#[from] Error),
    /// 413.
    #[error("the request body is larger than 64 KiB")]
    PayloadTooLarge,
    /// 415, saying what the body must be.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        match self {
            HttpError::Domain(error) => error.status_code(),
            HttpError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            HttpError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            HttpError::Domain(error) => error.error_response(),
            refusal => HttpResponse::build(refusal.status_code())
                .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
                .json(ErrorBody {
                    error: ErrorCode::InvalidRequest,
                    error_description: refusal.to_string(),
                    mfa_token: None,
                }),
        }
    }
}

/// The body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorCode,
    /// A human-readable explanation; never a stack trace, SQL or key material.
    pub error_description: String,
    /// Only with `mfa_required`: the token to present with the one-time code in
    /// `grant_type=urn:tessera:params:oauth:grant-type:mfa-otp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_token: Option<String>,
}

/// The `error` codes of the contract (RFC 6749 §5.2, RFC 6750 and tessera's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidToken,
    InsufficientScope,
    UsernameTaken,
    WeakPassword,
    RateLimited,
    MfaRequired,
    NotFound,
    Forbidden,
    ServerError,
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// The code of the contract for a failure.
    pub fn of(error: &Error) -> ErrorCode {
        match error {
            Error::InvalidRequest(_) | Error::Conflict(_) => ErrorCode::InvalidRequest,
            Error::InvalidClient(_) => ErrorCode::InvalidClient,
            Error::InvalidGrant(_) => ErrorCode::InvalidGrant,
            Error::UnauthorizedClient(_) => ErrorCode::UnauthorizedClient,
            Error::UnsupportedGrantType(_) => ErrorCode::UnsupportedGrantType,
            Error::InvalidScope(_) => ErrorCode::InvalidScope,
            Error::InvalidToken { .. } => ErrorCode::InvalidToken,
            Error::InsufficientScope(_) => ErrorCode::InsufficientScope,
            Error::UsernameTaken => ErrorCode::UsernameTaken,
            Error::WeakPassword(_) => ErrorCode::WeakPassword,
            Error::RateLimited { .. } => ErrorCode::RateLimited,
            Error::MfaRequired { .. } => ErrorCode::MfaRequired,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::Unavailable => ErrorCode::TemporarilyUnavailable,
            Error::Internal(_) => ErrorCode::ServerError,
        }
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::InvalidRequest(_)
            | Error::InvalidGrant(_)
            | Error::UnauthorizedClient(_)
            | Error::UnsupportedGrantType(_)
            | Error::InvalidScope(_)
            | Error::WeakPassword(_) => StatusCode::BAD_REQUEST,
            Error::InvalidClient(_) | Error::InvalidToken { .. } => StatusCode::UNAUTHORIZED,
            Error::InsufficientScope(_) | Error::Forbidden(_) | Error::MfaRequired { .. } => {
                StatusCode::FORBIDDEN
            }
            Error::UsernameTaken | Error::Conflict(_) => StatusCode::CONFLICT,
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        match self {
            Error::InvalidClient(_) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Basic realm="tessera""#),
                ));
            }
            Error::InvalidToken { missing: true, .. } => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="tessera""#),
                ));
            }
            Error::InvalidToken { message, .. } => {
                let value = format!(
                    r#"Bearer realm="tessera", error="invalid_token", error_description="{}""#,
                    message.replace('"', "'")
                );
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.insert_header((header::WWW_AUTHENTICATE, value));
                }
            }
            Error::InsufficientScope(_) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        r#"Bearer realm="tessera", error="insufficient_scope""#,
                    ),
                ));
            }
            Error::RateLimited { retry_after } => {
                response.insert_header((header::RETRY_AFTER, (*retry_after).max(1).to_string()));
            }
            Error::Unavailable => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            Error::Internal(e) => {
                // Logged once, here; the client learns nothing of it.
                log::error!("internal error: {e:#}");
                return response.json(ErrorBody {
                    error: ErrorCode::ServerError,
                    error_description: "internal server error".into(),
                    mfa_token: None,
                });
            }
            _ => {}
        }
        response.json(ErrorBody {
            error: ErrorCode::of(self),
            error_description: self.to_string(),
            mfa_token: match self {
                Error::MfaRequired { mfa_token } => {
                    Some(secrecy::ExposeSecret::expose_secret(mfa_token).to_string())
                }
                _ => None,
            },
        })
    }
}
