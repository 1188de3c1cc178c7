//! One error type for the whole server, mapped in one place to a Matrix error body
//! (`errcode`, `error`) and an HTTP status.
//!
//! Services return [`Error`] with the spec's error kind and a message that says what and
//! which id; the API layer turns it into a response with [`axum::response::IntoResponse`].

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use ruma::api::OutgoingResponseExt as _;
use ruma::api::client::uiaa::{UiaaInfo, UiaaResponse};
use ruma::api::error::{
    ErrorBody, ErrorKind, LimitExceededErrorData, RetryAfter, StandardErrorBody,
    UnknownTokenErrorData,
};
use std::time::Duration;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request the spec defines an error for: `errcode` + message + status.
    #[error("{status}: {message}")]
    Matrix {
        status: StatusCode,
        kind: ErrorKind,
        message: String,
    },

    /// User-interactive authentication is needed (or a stage failed): a 401 with the flows.
    #[error("user-interactive authentication required")]
    Uiaa(Box<UiaaInfo>),

    /// Something went wrong inside the server; the client sees `M_UNKNOWN` and a 500, the log
    /// sees the cause.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn new(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Self {
        Error::Matrix {
            status,
            kind,
            message: message.into(),
        }
    }

    pub fn bad_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorKind::BadJson, message)
    }

    pub fn not_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorKind::NotJson, message)
    }

    pub fn invalid_param(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidParam, message)
    }

    pub fn missing_param(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorKind::MissingParam, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorKind::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, message)
    }

    pub fn unrecognized(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, ErrorKind::Unrecognized, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorKind::TooLarge, message)
    }

    pub fn missing_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::MissingToken,
            "Missing access token",
        )
    }

    /// `soft_logout` tells the client the session can be resumed by logging in again with the
    /// same device (set for expired access tokens, not for revoked ones).
    pub fn unknown_token(soft_logout: bool) -> Self {
        let message = if soft_logout {
            "Access token has expired"
        } else {
            "Unknown access token"
        };
        let mut data = UnknownTokenErrorData::new();
        data.soft_logout = soft_logout;
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::UnknownToken(data),
            message,
        )
    }

    pub fn limit_exceeded(retry_after: Duration) -> Self {
        let mut data = LimitExceededErrorData::new();
        data.retry_after = Some(RetryAfter::Delay(retry_after));
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::LimitExceeded(data),
            "Too many requests",
        )
    }

    /// An error code the spec defines but ruma has no variant for (`M_INVALID_SIGNATURE`).
    pub fn custom(status: StatusCode, errcode: &str, message: impl Into<String>) -> Self {
        let kind = serde_json::from_value(serde_json::json!({ "errcode": errcode }))
            .unwrap_or(ErrorKind::Unknown);
        Self::new(status, kind, message)
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Error::Internal(cause.to_string())
    }

    /// The error kind, for tests and logs.
    pub fn kind(&self) -> Option<&ErrorKind> {
        match self {
            Error::Matrix { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

impl From<crate::storage::StorageError> for Error {
    fn from(err: crate::storage::StorageError) -> Self {
        Error::internal(err)
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(err: tokio::task::JoinError) -> Self {
        Error::internal(err)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let http_response = match self {
            Error::Matrix {
                status,
                kind,
                message,
            } => {
                if status.is_server_error() {
                    tracing::error!(%message, "request failed");
                }
                let body = ErrorBody::Standard(StandardErrorBody::new(kind, message));
                ruma::api::error::Error::new(status, body).try_into_http_response::<Vec<u8>>()
            }
            Error::Uiaa(info) => UiaaResponse::AuthResponse(*info).try_into_http_response(),
            Error::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                let body = ErrorBody::Standard(StandardErrorBody::new(
                    ErrorKind::Unknown,
                    "Internal server error".to_owned(),
                ));
                ruma::api::error::Error::new(StatusCode::INTERNAL_SERVER_ERROR, body)
                    .try_into_http_response()
            }
        };
        match http_response {
            Ok(response) => json_response(response),
            Err(err) => {
                tracing::error!(%err, "could not serialize an error response");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

/// Turns a serialized ruma response into an axum response with a JSON content type.
pub fn json_response(response: http::Response<Vec<u8>>) -> Response {
    let (mut parts, body) = response.into_parts();
    parts
        .headers
        .entry(http::header::CONTENT_TYPE)
        .or_insert(http::HeaderValue::from_static("application/json"));
    Response::from_parts(parts, axum::body::Body::from(body))
}
