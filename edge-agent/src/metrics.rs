//! Metric names, the serving path's counters, and their publication on
//! `/metrics` (the process-wide Prometheus recorder of `origin_store`).
//!
//! The serving path only adds to relaxed atomics in [`Counters`]; the load
//! meter reads the same atomics, and they are copied into the Prometheus
//! registry when it is scraped and at every heartbeat. Labels are bounded:
//! status code and outcome, never a path or a stream.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use metrics::{Counter, Gauge, counter, gauge};

use crate::load::Totals;

/// Requests answered (objects, health, metrics, admin), by `status`.
pub const REQUESTS: &str = "hlscdn_edge_requests_total";
/// Requests answered from the cache.
pub const CACHE_HITS: &str = "hlscdn_edge_cache_hits_total";
/// Requests that started an origin fetch.
pub const CACHE_MISSES: &str = "hlscdn_edge_cache_misses_total";
/// Requests that waited on another request's origin fetch instead of starting one.
pub const CACHE_COLLAPSED: &str = "hlscdn_edge_cache_collapsed_total";
/// Requests for objects over the cacheable size, streamed through.
pub const PASSTHROUGH: &str = "hlscdn_edge_passthrough_total";
/// Requests answered 503 without an origin lookup: the budget of lookups that find nothing was spent.
pub const MISS_BUDGET_SPENT: &str = "hlscdn_edge_miss_budget_spent_total";
/// Requests that asked the origin again because the lookup they had joined, opened before they arrived, found nothing.
pub const NOT_FOUND_REVALIDATED: &str = "hlscdn_edge_not_found_revalidated_total";
/// Cached objects evicted to make room.
pub const CACHE_EVICTIONS: &str = "hlscdn_edge_cache_evictions_total";
/// Bytes held in the cache.
pub const CACHE_BYTES: &str = "hlscdn_edge_cache_bytes";
/// Objects held in the cache.
pub const CACHE_OBJECTS: &str = "hlscdn_edge_cache_objects";
/// Body bytes sent to viewers.
pub const BYTES_OUT: &str = "hlscdn_edge_bytes_out_total";
/// Origin fetches by `result` (ok, not_found, error, too_large), with their duration.
pub const ORIGIN_FETCH: &str = "hlscdn_edge_origin_fetch_seconds";
/// Ads a router accepted.
pub const ADS_SENT: &str = "hlscdn_edge_ads_sent_total";
/// Ads that failed (no answer in time, refused, unreachable).
pub const ADS_FAILED: &str = "hlscdn_edge_ads_failed_total";
/// Routers known, by `state` (up, down).
pub const ROUTERS: &str = "hlscdn_edge_routers";
/// Egress, bits per second (moving average).
pub const EGRESS: &str = "hlscdn_edge_egress_bits_per_second";
/// Object requests per second (moving average).
pub const REQUEST_RATE: &str = "hlscdn_edge_requests_per_second";
/// Share of lookups answered from the cache (moving average).
pub const HIT_RATIO: &str = "hlscdn_edge_cache_hit_ratio";
/// Open client connections.
pub const CONNECTIONS: &str = "hlscdn_edge_connections";
/// CPU use of the process, 0 to 1 of all cores.
pub const CPU: &str = "hlscdn_edge_cpu_ratio";
/// Configured egress capacity, bits per second.
pub const CAPACITY_EGRESS: &str = "hlscdn_edge_capacity_bits_per_second";
/// Configured connection capacity.
pub const CAPACITY_CONNECTIONS: &str = "hlscdn_edge_capacity_connections";
/// 1 while draining.
pub const DRAINING: &str = "hlscdn_edge_draining";

/// Statuses counted one by one; the rest fall under `other`.
const STATUSES: [u16; 15] = [
    200, 206, 304, 400, 401, 403, 404, 405, 410, 416, 500, 502, 503, 504, 0,
];

/// The serving path's counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Body bytes sent.
    pub bytes_out: AtomicU64,
    /// Object requests.
    pub requests: AtomicU64,
    /// Cache hits.
    pub hits: AtomicU64,
    /// Misses that started a fetch.
    pub misses: AtomicU64,
    /// Misses that joined a fetch.
    pub collapsed: AtomicU64,
    /// Streamed-through requests.
    pub passthrough: AtomicU64,
    /// Requests answered 503 because the budget of origin lookups was spent.
    pub over_budget: AtomicU64,
    /// Requests that asked the origin again after joining an earlier lookup that found nothing.
    pub revalidated: AtomicU64,
    /// Evictions for size.
    pub evictions: AtomicU64,
    statuses: [AtomicU64; STATUSES.len()],
}

impl Counters {
    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one answer with `status`.
    pub fn count_status(&self, status: StatusCode) {
        let code = status.as_u16();
        let i = STATUSES
            .iter()
            .position(|&s| s == code)
            .unwrap_or(STATUSES.len() - 1);
        self.statuses[i].fetch_add(1, Ordering::Relaxed);
    }

    /// What the load meter reads.
    pub fn totals(&self) -> Totals {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let hits = get(&self.hits);
        Totals {
            bytes_out: get(&self.bytes_out),
            requests: get(&self.requests),
            hits,
            lookups: hits + get(&self.misses) + get(&self.collapsed),
        }
    }
}

/// Handles of the Prometheus series the counters are copied into.
#[derive(Debug)]
pub struct Published {
    bytes_out: Counter,
    hits: Counter,
    misses: Counter,
    collapsed: Counter,
    passthrough: Counter,
    over_budget: Counter,
    revalidated: Counter,
    evictions: Counter,
    statuses: Vec<Counter>,
    /// Load gauges, set at every heartbeat.
    pub egress: Gauge,
    /// See [`REQUEST_RATE`].
    pub request_rate: Gauge,
    /// See [`HIT_RATIO`].
    pub hit_ratio: Gauge,
    /// See [`CONNECTIONS`].
    pub connections: Gauge,
    /// See [`CPU`].
    pub cpu: Gauge,
    /// See [`CACHE_BYTES`].
    pub cache_bytes: Gauge,
    /// See [`CACHE_OBJECTS`].
    pub cache_objects: Gauge,
    /// See [`DRAINING`].
    pub draining: Gauge,
    /// See [`ROUTERS`] (`state="up"`).
    pub routers_up: Gauge,
    /// See [`ROUTERS`] (`state="down"`).
    pub routers_down: Gauge,
}

impl Published {
    /// Registers every series (after `runtime::metrics::handle()` installed
    /// the recorder), with the configured capacity.
    pub fn register(capacity_bps: u64, max_connections: u64) -> Self {
        gauge!(CAPACITY_EGRESS).set(capacity_bps as f64);
        gauge!(CAPACITY_CONNECTIONS).set(max_connections as f64);
        counter!(ADS_SENT).absolute(0);
        counter!(ADS_FAILED).absolute(0);
        Published {
            bytes_out: counter!(BYTES_OUT),
            hits: counter!(CACHE_HITS),
            misses: counter!(CACHE_MISSES),
            collapsed: counter!(CACHE_COLLAPSED),
            passthrough: counter!(PASSTHROUGH),
            over_budget: counter!(MISS_BUDGET_SPENT),
            revalidated: counter!(NOT_FOUND_REVALIDATED),
            evictions: counter!(CACHE_EVICTIONS),
            statuses: STATUSES
                .iter()
                .map(|&s| {
                    let label = if s == 0 { "other".to_owned() } else { s.to_string() };
                    counter!(REQUESTS, "status" => label)
                })
                .collect(),
            egress: gauge!(EGRESS),
            request_rate: gauge!(REQUEST_RATE),
            hit_ratio: gauge!(HIT_RATIO),
            connections: gauge!(CONNECTIONS),
            cpu: gauge!(CPU),
            cache_bytes: gauge!(CACHE_BYTES),
            cache_objects: gauge!(CACHE_OBJECTS),
            draining: gauge!(DRAINING),
            routers_up: gauge!(ROUTERS, "state" => "up"),
            routers_down: gauge!(ROUTERS, "state" => "down"),
        }
    }

    /// Copies the counters into the registry.
    pub fn publish(&self, counters: &Counters) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        self.bytes_out.absolute(get(&counters.bytes_out));
        self.hits.absolute(get(&counters.hits));
        self.misses.absolute(get(&counters.misses));
        self.collapsed.absolute(get(&counters.collapsed));
        self.passthrough.absolute(get(&counters.passthrough));
        self.over_budget.absolute(get(&counters.over_budget));
        self.revalidated.absolute(get(&counters.revalidated));
        self.evictions.absolute(get(&counters.evictions));
        for (series, count) in self.statuses.iter().zip(&counters.statuses) {
            series.absolute(get(count));
        }
    }
}

/// Records one origin fetch.
pub fn origin_fetch(result: &'static str, seconds: f64) {
    metrics::histogram!(ORIGIN_FETCH, "result" => result).record(seconds);
}

/// Records one ad's outcome.
pub fn ad(ok: bool) {
    counter!(if ok { ADS_SENT } else { ADS_FAILED }).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_fall_into_bounded_slots() {
        let c = Counters::default();
        c.count_status(StatusCode::OK);
        c.count_status(StatusCode::IM_A_TEAPOT);
        c.count_status(StatusCode::NOT_IMPLEMENTED);
        assert_eq!(c.statuses[0].load(Ordering::Relaxed), 1);
        assert_eq!(c.statuses[STATUSES.len() - 1].load(Ordering::Relaxed), 2);
        Counters::add(&c.hits, 3);
        Counters::add(&c.misses, 1);
        assert_eq!(c.totals().lookups, 4);
    }
}
