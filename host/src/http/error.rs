//! Errors of the HTTP API, answered the way Nacos answers them: a status code
//! and a plain-text body `caused: <message>;`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::naming::NamingError;
use crate::switches::SwitchError;

/// An error answered to an HTTP client: the status of [`ApiError::status`] and
/// the body `caused: <message>;`, as Nacos writes it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter is missing or malformed (400), e.g. `Param 'ip' is required.`.
    #[error("{0}")]
    BadRequest(String),
    /// What the request names does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The body exceeded `http.max_body_bytes` (413); the limit in bytes.
    #[error("request body larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The query string exceeded `http.max_query_bytes` (414); the limit in bytes.
    #[error("query string longer than {0} bytes")]
    UriTooLong(usize),
    /// Anything else that is the node's fault (500).
    #[error("{0}")]
    Internal(String),
    /// An internal route without the cluster credential.
    #[error("{0}")]
    Unauthorized(String),
    /// The node cannot serve this now (not ready, owner unreachable); the
    /// client should try again, here or on another member.
    #[error("{0}")]
    Unavailable(String),
    /// A member of another version of the internal protocol.
    #[error("{0}")]
    Conflict(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
        }
    }
}

impl From<NamingError> for ApiError {
    fn from(e: NamingError) -> Self {
        match e {
            NamingError::InvalidParam(m) => ApiError::BadRequest(m),
            NamingError::NotFound(m) => ApiError::NotFound(m),
            NamingError::Consistency(e) if e.retryable() => ApiError::Unavailable(e.to_string()),
            NamingError::Consistency(e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<SwitchError> for ApiError {
    fn from(e: SwitchError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match status {
            StatusCode::SERVICE_UNAVAILABLE => {
                tracing::debug!(error = %self, "request refused for now")
            }
            s if s.is_server_error() => tracing::error!(error = %self, "request failed"),
            _ => {}
        }
        (status, format!("caused: {self};")).into_response()
    }
}
