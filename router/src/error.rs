//! The router's error type, and its one mapping to HTTP answers: playlists,
//! redirects, steering, explanations and the fleet API all answer through
//! [`Error`]'s `IntoResponse`.
//!
//! Variants keep their cause ([`std::error::Error::source`]); the text a
//! client gets is the variant's `Display`, which names the cause too, with
//! any credentials in URLs redacted (`runtime::secret::redact_url`) before
//! it is sent or logged. Causes that are not `Clone` are held in an `Arc`,
//! so that viewers whose requests collapsed into one origin fetch share its
//! error.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::http::header::InvalidHeaderValue;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use origin_client::path::PathError;
use router_api::fleet::AdError;

use crate::rewrite::RewriteError;

/// A configuration value is invalid; the message names the key.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// Everything a request to the router can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request is malformed (not a playlist path, a forged ticket).
    #[error("bad request: {0}")]
    BadInput(String),
    /// The request path names no object.
    #[error("bad request: {0}")]
    BadPath(#[from] PathError),
    /// The query string does not parse.
    #[error("bad request: query: {0}")]
    BadQuery(#[source] Arc<QueryRejection>),
    /// The redirect target cannot be a `Location` header.
    #[error("bad request: location: {0}")]
    BadLocation(#[source] Arc<InvalidHeaderValue>),
    /// The origin has no such object.
    #[error("not found")]
    NotFound,
    /// A `/r/` object outside every stream this router knows of.
    #[error("not found: {0}")]
    UnknownStream(String),
    /// The origin did not answer in time.
    #[error("origin did not answer within {0:?}")]
    Timeout(Duration),
    /// The origin answered with a status that passes through (400 or 503 of a blocking reload).
    #[error("origin answered {0}")]
    UpstreamStatus(u16),
    /// The origin failed; `reason` is what the viewer is told.
    #[error("{reason}")]
    Origin {
        /// The answer's text.
        reason: String,
        /// What the origin client said.
        #[source]
        source: Arc<origin_client::Error>,
    },
    /// The origin sent something that is not a playlist.
    #[error("origin sent an unusable playlist: {0}")]
    UnusablePlaylist(#[from] RewriteError),
    /// No edge can take the viewer and the fallback is to refuse.
    #[error("no edge is available")]
    NoEdge,
    /// A fleet call without the fleet token or an edge credential.
    #[error("missing or invalid fleet token")]
    Unauthorized,
    /// An edge's credential used for another edge.
    #[error("{0}")]
    Forbidden(&'static str),
    /// An ad claims an edge identity in use.
    #[error("{0}")]
    Conflict(&'static str),
    /// A fleet call's body is larger than `limit` bytes (by its `Content-Length`).
    #[error("body larger than {limit} bytes")]
    TooLarge {
        /// The limit, bytes.
        limit: usize,
    },
    /// A fleet call's body could not be read.
    #[error(transparent)]
    Body(Arc<BytesRejection>),
    /// An ad that is not JSON of an ad.
    #[error("malformed ad: {0}")]
    MalformedAd(#[source] Arc<serde_json::Error>),
    /// An ad with a field out of bounds.
    #[error("invalid ad: {0}")]
    InvalidAd(#[from] AdError),
    /// A fleet call with ids or a body not of the expected shape; the text says which.
    #[error("{0}")]
    BadFleetCall(&'static str),
    /// The router is stopping: long fleet calls (links) end.
    #[error("router shutting down")]
    ShuttingDown,
}

/// Seconds a player is asked to wait after a 503.
pub const RETRY_AFTER_SECS: u64 = 2;

impl Error {
    /// Maps an origin read failure.
    pub fn from_origin(error: origin_client::Error, timeout: Duration) -> Self {
        use origin_client::Error as O;
        let reason = match &error {
            O::NotFound(_) | O::Store(object_store::Error::NotFound { .. }) => return Self::NotFound,
            O::Timeout => return Self::Timeout(timeout),
            O::Upstream {
                status: status @ (400 | 503),
            } => return Self::UpstreamStatus(*status),
            O::Upstream { status } => format!("origin answered {status}"),
            O::TooLarge { limit } => format!("origin playlist is larger than {limit} bytes"),
            O::Unreachable(reason) => reason.clone(),
            other => format!("origin error: {other}"),
        };
        Self::Origin {
            reason,
            source: Arc::new(error),
        }
    }

    /// Whether the origin failed (not the request): a last good copy may
    /// be served instead.
    pub fn is_origin_failure(&self) -> bool {
        matches!(
            self,
            Error::Origin { .. } | Error::UnusablePlaylist(_) | Error::Timeout(_)
        )
    }

    fn status(&self) -> StatusCode {
        match self {
            Error::BadInput(_)
            | Error::BadPath(_)
            | Error::BadQuery(_)
            | Error::BadLocation(_)
            | Error::MalformedAd(_)
            | Error::InvalidAd(_)
            | Error::BadFleetCall(_) => StatusCode::BAD_REQUEST,
            Error::NotFound | Error::UnknownStream(_) => StatusCode::NOT_FOUND,
            Error::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::UpstreamStatus(code) => StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_GATEWAY),
            Error::Origin { .. } | Error::UnusablePlaylist(_) => StatusCode::BAD_GATEWAY,
            Error::NoEdge | Error::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Body(rejection) => rejection.status(),
        }
    }
}

impl From<QueryRejection> for Error {
    fn from(rejection: QueryRejection) -> Self {
        Error::BadQuery(Arc::new(rejection))
    }
}

impl From<InvalidHeaderValue> for Error {
    fn from(error: InvalidHeaderValue) -> Self {
        Error::BadLocation(Arc::new(error))
    }
}

impl From<BytesRejection> for Error {
    fn from(rejection: BytesRejection) -> Self {
        Error::Body(Arc::new(rejection))
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Error::MalformedAd(Arc::new(error))
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Error::Body(rejection) = &self {
            // axum's own answer, as the extractor gives it.
            return (status, rejection.body_text()).into_response();
        }
        let text = runtime::secret::redact_url(&self.to_string());
        if status.is_server_error() && !matches!(self, Error::ShuttingDown) {
            tracing::warn!(error = %text, status = status.as_u16(), "request failed");
        }
        let mut response = (status, format!("{text}\n")).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self {
            Error::NoEdge => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            // The body of an unauthorized or oversized call is not read,
            // so the connection cannot be reused.
            Error::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Error::TooLarge { .. } | Error::ShuttingDown => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    async fn answer(error: Error) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = error.into_response();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    #[tokio::test]
    async fn origin_errors_keep_their_cause_and_redact_credentials() {
        let io = std::io::Error::other("connect to http://user:hunter2@origin:8000/live failed");
        let error = Error::from_origin(origin_client::Error::Io(io), Duration::from_secs(1));
        assert!(error.is_origin_failure());
        let source = error.source().map(ToString::to_string).unwrap_or_default();
        assert!(source.contains("hunter2"), "the cause is kept whole: {source}");
        let (status, _, body) = answer(error).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert!(!body.contains("hunter2"), "{body}");
        assert!(
            body.starts_with("origin error: i/o: connect to http://***@origin:8000"),
            "{body}"
        );

        let upstream = Error::from_origin(origin_client::Error::Upstream { status: 500 }, Duration::ZERO);
        assert_eq!(answer(upstream).await.2, "origin answered 500\n");
        let passed = Error::from_origin(origin_client::Error::Upstream { status: 503 }, Duration::ZERO);
        assert_eq!(answer(passed).await.0, StatusCode::SERVICE_UNAVAILABLE);
        let large = Error::from_origin(origin_client::Error::TooLarge { limit: 7 }, Duration::ZERO);
        assert_eq!(answer(large).await.2, "origin playlist is larger than 7 bytes\n");
    }

    #[tokio::test]
    async fn fleet_refusals_answer_as_before() {
        let (status, headers, body) = answer(Error::Unauthorized).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body, "missing or invalid fleet token\n");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(headers[header::CONNECTION], "close");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");

        let (status, headers, body) = answer(Error::TooLarge { limit: 65536 }).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body, "body larger than 65536 bytes\n");
        assert_eq!(headers[header::CONNECTION], "close");

        let Err(json) = serde_json::from_slice::<router_api::fleet::Ad>(b"{") else {
            panic!("`{{` parsed as an ad");
        };
        let malformed = Error::from(json);
        assert!(malformed.source().is_some(), "the parse error is kept");
        let (status, _, body) = answer(malformed).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.starts_with("malformed ad: EOF"), "{body}");

        let (status, _, body) = answer(Error::InvalidAd(AdError::BadEdgeId)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.starts_with("invalid ad: `edge_id`"), "{body}");

        assert_eq!(answer(Error::Conflict("taken")).await.0, StatusCode::CONFLICT);
        assert_eq!(answer(Error::Forbidden("not yours")).await.2, "not yours\n");
        let (status, headers, _) = answer(Error::ShuttingDown).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(headers.get(header::RETRY_AFTER).is_none());
        assert_eq!(headers[header::CONNECTION], "close");
    }

    #[tokio::test]
    async fn request_errors_name_their_cause() {
        let path = Error::from(PathError::NotAbsolute);
        assert!(path.source().is_some());
        let (status, _, body) = answer(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.starts_with("bad request: "), "{body}");
        let (status, headers, _) = answer(Error::NoEdge).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "2");
    }
}
