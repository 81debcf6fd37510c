//! Error answers, given one way by every server.

use std::fmt::Display;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The answer to a failed request: `reason` and a newline as the body,
/// `Cache-Control: no-store` (neither a client nor a shared cache in front
/// may keep a negative answer: a live segment may appear any moment), and,
/// for a server error, one log line at `level` with the cause, URLs redacted.
/// Callers add the headers their error kind needs ([`ask_for_bearer`],
/// [`unsatisfiable_range`]).
pub fn error_answer(
    status: StatusCode,
    reason: &str,
    cause: &dyn Display,
    level: tracing::Level,
) -> Response {
    if status.is_server_error() {
        let error = crate::secret::redact_url(&cause.to_string());
        let status = status.as_u16();
        match level {
            tracing::Level::ERROR => tracing::error!(%error, status, "request failed"),
            tracing::Level::WARN => tracing::warn!(%error, status, "request failed"),
            tracing::Level::INFO => tracing::info!(%error, status, "request failed"),
            _ => tracing::debug!(%error, status, "request failed"),
        }
    }
    let mut response = (status, format!("{reason}\n")).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `WWW-Authenticate: Bearer`, for a 401.
pub fn ask_for_bearer(headers: &mut HeaderMap) {
    headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
}

/// `Content-Range: bytes */SIZE`, for a 416 on an object of `size` bytes.
pub fn unsatisfiable_range(headers: &mut HeaderMap, size: u64) {
    if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
        headers.insert(header::CONTENT_RANGE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_are_never_cached() {
        let mut response = error_answer(
            StatusCode::BAD_GATEWAY,
            "origin error",
            &"boom",
            tracing::Level::WARN,
        );
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        unsatisfiable_range(response.headers_mut(), 10);
        ask_for_bearer(response.headers_mut());
        assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes */10");
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
