//! Metric names and the process-wide Prometheus recorder.
//!
//! Labels are bounded: method, status code and store operation, never a path.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

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

/// Latency buckets, in seconds, for every `*_seconds` histogram.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's Prometheus recorder, installed on first use. Every server
/// in the process shares it, as they share the process.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a test harness, an
        // embedding program); ours then only renders what it was given.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Records one store operation's latency.
pub fn store_latency(op: &'static str, elapsed: Duration) {
    metrics::histogram!(STORE_LATENCY, "op" => op).record(elapsed.as_secs_f64());
}
