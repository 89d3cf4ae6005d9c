//! The HTTP error type: JSON `{ "error": code, "message": … }` with the matching status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use countersign_protocol::ProtocolError;

/// An API error. `code` is a stable machine-readable string; `message` is for people.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `digest_mismatch`.
    pub code: &'static str,
    /// Human-readable explanation naming the failed check.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }
    /// 400: the input is malformed.
    pub fn malformed(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed", m)
    }
    /// 401: missing or bad credentials or signature.
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", m)
    }
    /// 403: authenticated but not allowed.
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", m)
    }
    /// 404.
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", m)
    }
    /// 409: replay or the request is already decided.
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", m)
    }
    /// 410: the request or the token expired.
    pub fn expired(m: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "expired", m)
    }
    /// 413.
    pub fn too_large(m: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", m)
    }
    /// 422: the decision is not bound to this request as shown.
    pub fn digest_mismatch(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "digest_mismatch", m)
    }
    /// 422: a decision rule is not met (reason missing, …).
    pub fn unprocessable(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_decision", m)
    }
    /// 429.
    pub fn rate_limited(m: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", m)
    }
    /// 500; the detail goes to the log, not to the client.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }

    /// Map a protocol rejection of a decision or auth token onto a status.
    pub fn from_protocol(e: ProtocolError) -> Self {
        match e {
            ProtocolError::Expired { .. } => Self::expired(e.to_string()),
            ProtocolError::BadSignature | ProtocolError::UnknownKey(_) | ProtocolError::MissingKid => {
                Self::unauthorized(e.to_string())
            }
            ProtocolError::WrongAudience { .. } | ProtocolError::IssuerMismatch { .. } => {
                Self::unauthorized(e.to_string())
            }
            _ => Self::malformed(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        (self.status, Json(body)).into_response()
    }
}
