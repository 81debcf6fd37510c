//! The crate's one error type, and the one place it becomes an HTTP answer.
//!
//! Errors are `Clone`: one origin fetch can fail for every viewer that was
//! waiting on it, so the failure is handed to each of them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use router_api::token::TokenError;

/// Everything that can go wrong in the edge.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request is malformed: a bad path, an absolute-form target.
    #[error("bad request: {0}")]
    BadInput(String),
    /// The method is not served here.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Signing is on and the segment token is missing, bad or expired.
    #[error("{0}")]
    Token(#[from] TokenError),
    /// The caller did not present the fleet token.
    #[error("unauthorized")]
    Unauthorized,
    /// The origin does not have the object.
    #[error("not found")]
    NotFound,
    /// The requested range is outside the object.
    #[error("range not satisfiable for an object of {size} bytes")]
    RangeNotSatisfiable {
        /// Size of the object in bytes.
        size: u64,
    },
    /// The origin did not answer, or stopped sending, within the timeout.
    #[error("origin timed out")]
    Timeout,
    /// The origin answered with a status the edge does not pass on.
    #[error("origin answered {status}")]
    Upstream {
        /// The origin's HTTP status.
        status: u16,
    },
    /// The origin could not be reached, or its body broke off.
    #[error("origin unreachable: {0}")]
    Unreachable(String),
    /// The origin sent a body that does not match what it declared.
    #[error("origin sent a bad body: {0}")]
    BadBody(String),
    /// The object is larger than the largest cacheable object; it is
    /// streamed through uncached instead.
    #[error("object larger than the cacheable limit of {limit} bytes")]
    TooLarge {
        /// The configured `max_object_bytes`.
        limit: u64,
    },
    /// The object is not cached and the budget of origin lookups that find
    /// nothing is spent (a flood of names the origin lacks): retry shortly.
    #[error("busy, retry")]
    OverBudget,
    /// The configuration is invalid; the message names the key.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A bug or an impossible state; details in the message.
    #[error("internal: {0}")]
    Internal(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<origin_client::Error> for Error {
    fn from(error: origin_client::Error) -> Self {
        use origin_client::Error as O;
        match error {
            O::NotFound(_) | O::Store(object_store::Error::NotFound { .. }) => Error::NotFound,
            O::Timeout => Error::Timeout,
            O::Upstream { status } => Error::Upstream { status },
            O::Unreachable(reason) => Error::Unreachable(reason),
            O::TooLarge { limit } => Error::TooLarge { limit },
            O::RangeNotSatisfiable { size } => Error::RangeNotSatisfiable { size },
            O::Config(reason) => Error::Config(reason),
            other => Error::Unreachable(other.to_string()),
        }
    }
}

impl Error {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadInput(_) => StatusCode::BAD_REQUEST,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::Token(e) => StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::FORBIDDEN),
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Error::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Error::OverBudget => StatusCode::SERVICE_UNAVAILABLE,
            Error::Upstream { .. } | Error::Unreachable(_) | Error::BadBody(_) | Error::TooLarge { .. } => {
                StatusCode::BAD_GATEWAY
            }
            Error::Config(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let reason = match &self {
            Error::BadInput(reason) => reason.clone(),
            Error::Timeout => "origin did not answer in time".to_owned(),
            Error::Upstream { .. } | Error::Unreachable(_) | Error::BadBody(_) | Error::TooLarge { .. } => {
                "origin error".to_owned()
            }
            Error::Config(_) | Error::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        // A flood answered 503 is counted in metrics, not logged per request.
        let level = if matches!(self, Error::OverBudget) {
            tracing::Level::DEBUG
        } else {
            tracing::Level::WARN
        };
        let mut response = runtime::answer::error_answer(status, &reason, &self, level);
        let headers = response.headers_mut();
        match self {
            Error::Unauthorized => runtime::answer::ask_for_bearer(headers),
            Error::MethodNotAllowed => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
            }
            Error::OverBudget => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Error::RangeNotSatisfiable { size } => runtime::answer::unsatisfiable_range(headers, size),
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(Error::Token(TokenError::Expired).status(), StatusCode::GONE);
        assert_eq!(Error::Token(TokenError::Missing).status(), StatusCode::FORBIDDEN);
        assert_eq!(
            Error::Token(TokenError::BadSignature).status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            Error::from(origin_client::Error::NotFound("x".into())).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            Error::from(origin_client::Error::Timeout).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            Error::from(origin_client::Error::Upstream { status: 500 }).status(),
            StatusCode::BAD_GATEWAY
        );
        let r = Error::RangeNotSatisfiable { size: 10 }.into_response();
        assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes */10");
    }
}
