//! The router's error type, and its one mapping to HTTP answers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A configuration value is invalid; the message names the key.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// Everything a playlist or redirect request can fail with. `Clone`, so
/// that viewers whose requests collapsed into one origin fetch share its error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request is malformed (bad path, not a playlist path).
    #[error("bad request: {0}")]
    BadInput(String),
    /// The origin has no such object.
    #[error("not found")]
    NotFound,
    /// A `/r/` object outside every stream this router knows of.
    #[error("not found: {0}")]
    UnknownStream(String),
    /// The origin did not answer in time.
    #[error("origin did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The origin answered with a status that passes through (400 or 503 of a blocking reload).
    #[error("origin answered {0}")]
    UpstreamStatus(u16),
    /// The origin failed or answered with something unusable.
    #[error("{0}")]
    BadGateway(String),
    /// No edge can take the viewer and the fallback is to refuse.
    #[error("no edge is available")]
    NoEdge,
}

/// Seconds a player is asked to wait after a 503.
pub const RETRY_AFTER_SECS: u64 = 2;

impl Error {
    /// Maps an origin read failure.
    pub fn from_origin(error: origin_client::Error, timeout: std::time::Duration) -> Self {
        use origin_client::Error as O;
        match error {
            O::NotFound(_) | O::Store(object_store::Error::NotFound { .. }) => Self::NotFound,
            O::Timeout => Self::Timeout(timeout),
            O::Upstream {
                status: status @ (400 | 503),
            } => Self::UpstreamStatus(status),
            O::Upstream { status } => Self::BadGateway(format!("origin answered {status}")),
            O::TooLarge { limit } => {
                Self::BadGateway(format!("origin playlist is larger than {limit} bytes"))
            }
            O::Unreachable(reason) => Self::BadGateway(reason),
            other => Self::BadGateway(format!(
                "origin error: {}",
                runtime::secret::redact_url(&other.to_string())
            )),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match &self {
            Error::BadInput(_) => StatusCode::BAD_REQUEST,
            Error::NotFound | Error::UnknownStream(_) => StatusCode::NOT_FOUND,
            Error::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::UpstreamStatus(code) => StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_GATEWAY),
            Error::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Error::NoEdge => StatusCode::SERVICE_UNAVAILABLE,
        };
        if status.is_server_error() {
            tracing::warn!(error = %runtime::secret::redact_url(&self.to_string()), status = status.as_u16(), "request failed");
        }
        let mut response = (status, format!("{self}\n")).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        if matches!(self, Error::NoEdge) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}
