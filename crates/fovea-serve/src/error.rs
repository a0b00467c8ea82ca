//! Errors as DeepStack answers them: `{"success": false, "error": "...", "duration": 0}`
//! with the status DeepStack uses for the same fault.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A refused or failed request: its HTTP status and what went wrong.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, for the person reading the client's log.
    pub message: String,
}

impl ApiError {
    /// 400: the request itself is wrong (a missing field, an undecodable picture).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    /// 401: a wrong or missing key (DeepStack's "Incorrect api key").
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::UNAUTHORIZED, message: message.into() }
    }

    /// 403: an endpoint whose model this server was not started with (DeepStack's
    /// "Detection endpoint not activated").
    pub fn not_activated(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::FORBIDDEN, message: message.into() }
    }

    /// 404: no such route or model.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::NOT_FOUND, message: message.into() }
    }

    /// 413: a body or picture over the server's limits.
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::PAYLOAD_TOO_LARGE, message: message.into() }
    }

    /// 503: the queue of waiting requests is full; the client should retry later.
    pub fn busy(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::SERVICE_UNAVAILABLE, message: message.into() }
    }

    /// 500: the server failed (a database error, a job past its time).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: message.into() }
    }

    /// An error of fovea's while working on an upload: too large for memory is 413, a
    /// server-side file or database fault is 500, anything else is the upload's fault, 400.
    pub fn from_upload(e: fovea::Error) -> ApiError {
        match e {
            fovea::Error::Budget { .. } => ApiError::too_large(e.to_string()),
            fovea::Error::Io { .. } => ApiError::internal(e.to_string()),
            _ => ApiError::bad_request(format!("invalid image: {e}")),
        }
    }

    /// An error of the server's own (its database, its models): 500.
    pub fn from_server(e: fovea::Error) -> ApiError {
        ApiError::internal(e.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"success": false, "error": self.message, "duration": 0});
        (self.status, axum::Json(body)).into_response()
    }
}
