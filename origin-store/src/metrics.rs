//! Metric names and the process-wide Prometheus recorder.
//!
//! Labels are bounded: method, status code and store operation, never a path.

use std::time::Duration;

/// Requests answered, by `method` and `status`.
pub const REQUESTS: &str = "hlscdn_origin_requests_total";
/// Body bytes sent to clients.
pub const BYTES_OUT: &str = "hlscdn_origin_bytes_out_total";
/// Body bytes received by ingest.
pub const BYTES_IN: &str = "hlscdn_origin_bytes_in_total";
/// Time spent in the object store, by `op` (get, head, put, delete, list).
pub const STORE_LATENCY: &str = "hlscdn_origin_store_latency_seconds";
/// Listings of the whole store for the catalog (`/api/v1/streams`).
pub const CATALOG_LISTINGS: &str = "hlscdn_origin_catalog_listings_total";
/// Segments and playlists written by the demo publisher.
pub const PUBLISHED: &str = "hlscdn_origin_published_objects_total";

/// Records one store operation's latency.
pub fn store_latency(op: &'static str, elapsed: Duration) {
    metrics::histogram!(STORE_LATENCY, "op" => op).record(elapsed.as_secs_f64());
}
