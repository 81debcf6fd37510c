//! HTTP answers every hls-cdn server gives the same way.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The answer to a CORS preflight of a read-only HLS server (every hls-cdn
/// server lets browser players read across hosts).
pub fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD, OPTIONS"),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "Range, If-None-Match, If-Modified-Since, If-Range",
            ),
            (header::ACCESS_CONTROL_MAX_AGE, "86400"),
        ],
    )
        .into_response()
}
