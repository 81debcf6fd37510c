//! The router's metric names. Labels are bounded: route template, status,
//! edge id (the fleet is bounded), cache result — never a path or session.

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::Duration;

use metrics::Counter;

/// Requests answered, by `route` and `status`.
pub const REQUESTS: &str = "hlscdn_router_requests_total";
/// Time to render a rewritten playlist.
pub const REWRITE: &str = "hlscdn_router_rewrite_seconds";
/// Time to fetch a playlist from the origin.
pub const ORIGIN_FETCH: &str = "hlscdn_router_origin_fetch_seconds";
/// Playlist cache lookups, by `result` (hit, miss).
pub const PLAYLIST_CACHE: &str = "hlscdn_router_playlist_cache_total";
/// Edge choices, by `edge` (an edge id, or `none` when no edge could be chosen).
pub const CHOICES: &str = "hlscdn_router_choices_total";

/// A counter every request touches, with fixed labels: registered once, on
/// first use (installing the process's recorder first, so that no count is
/// lost), rather than looked up in the registry per request.
#[derive(Debug)]
pub struct Fixed {
    name: &'static str,
    labels: &'static [(&'static str, &'static str)],
    handle: OnceLock<Counter>,
}

impl Fixed {
    /// The counter `name` with `labels`, not yet registered.
    pub const fn new(name: &'static str, labels: &'static [(&'static str, &'static str)]) -> Self {
        Self {
            name,
            labels,
            handle: OnceLock::new(),
        }
    }

    /// Adds one.
    pub fn increment(&self) {
        self.handle
            .get_or_init(|| {
                runtime::metrics::handle();
                metrics::counter!(self.name, self.labels)
            })
            .increment(1);
    }
}

static CACHE_HITS: Fixed = Fixed::new(PLAYLIST_CACHE, &[("result", "hit")]);
static CACHE_MISSES: Fixed = Fixed::new(PLAYLIST_CACHE, &[("result", "miss")]);

/// Records a playlist cache lookup.
pub fn playlist_cache(hit: bool) {
    if hit { &CACHE_HITS } else { &CACHE_MISSES }.increment();
}

/// [`REQUESTS`] by route and status, each registered on its first answer.
#[derive(Debug, Default)]
pub struct Answers {
    counters: RwLock<HashMap<(&'static str, u16), Counter>>,
}

impl Answers {
    /// Counts an answer of `status` on `route`.
    pub fn count(&self, route: &'static str, status: u16) {
        let known = self.counters.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(counter) = known.get(&(route, status)) {
            counter.increment(1);
            return;
        }
        drop(known);
        runtime::metrics::handle();
        self.counters
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((route, status))
            .or_insert_with(|| metrics::counter!(REQUESTS, "route" => route, "status" => status.to_string()))
            .increment(1);
    }
}

/// Records an origin fetch.
pub fn origin_fetch(elapsed: Duration) {
    metrics::histogram!(ORIGIN_FETCH).record(elapsed.as_secs_f64());
}

/// Records a rewrite.
pub fn rewrite(elapsed: Duration) {
    metrics::histogram!(REWRITE).record(elapsed.as_secs_f64());
}

/// Records an edge choice.
pub fn choice(edge: Option<&str>) {
    metrics::counter!(CHOICES, "edge" => edge.unwrap_or("none").to_owned()).increment(1);
}

/// Steering manifests answered.
pub const STEERING: &str = "hlscdn_router_steering_requests_total";
/// Steering manifests that moved a viewer off the pathway it reported, by
/// `reason` (dead, draining, held_down, over_cap).
pub const PATHWAY_MOVES: &str = "hlscdn_router_pathway_moves_total";

/// Records a steering manifest, and the move it makes, if any.
pub fn steering(moved: Option<&'static str>) {
    metrics::counter!(STEERING).increment(1);
    if let Some(reason) = moved {
        metrics::counter!(PATHWAY_MOVES, "reason" => reason).increment(1);
    }
}

/// Ads received, by `result` (stored, not_newer, contested, rejected, unauthorized).
pub const ADS: &str = "hlscdn_router_ads_total";
/// Ads forwarded to other routers, by `result` (ok, failed).
pub const ADS_FORWARDED: &str = "hlscdn_router_ads_forwarded_total";
/// Age of each edge's newest ad, by `edge`.
pub const AD_AGE: &str = "hlscdn_router_ad_age_seconds";
/// Edges by `state` (fresh, stale, draining, held).
pub const FLEET_EDGES: &str = "hlscdn_router_fleet_edges";
/// Edge links open to this router.
pub const LINKS_OPEN: &str = "hlscdn_router_edge_links";
/// Edge links that broke while the edge was fresh (its process died).
pub const LINKS_LOST: &str = "hlscdn_router_edge_links_lost_total";
/// Routers dropped after failing discovery rounds.
pub const PEERS_DROPPED: &str = "hlscdn_router_peers_dropped_total";

/// Records a received ad.
pub fn ad_received(result: &'static str) {
    metrics::counter!(ADS, "result" => result).increment(1);
}

/// Records a forwarded ad.
pub fn ad_forwarded(ok: bool) {
    metrics::counter!(ADS_FORWARDED, "result" => if ok { "ok" } else { "failed" }).increment(1);
}

/// Records how many edge links are open.
pub fn links_open(n: usize) {
    metrics::gauge!(LINKS_OPEN).set(n as f64);
}

/// Records an edge marked stale because its link broke.
pub fn link_lost() {
    metrics::counter!(LINKS_LOST).increment(1);
}

/// Records an edge's ad age.
pub fn ad_age(edge: &str, age: Duration) {
    metrics::gauge!(AD_AGE, "edge" => edge.to_owned()).set(age.as_secs_f64());
}

/// Records the fleet's size by state.
pub fn fleet_size(fresh: u64, stale: u64, draining: u64, held: u64) {
    for (state, n) in [
        ("fresh", fresh),
        ("stale", stale),
        ("draining", draining),
        ("held", held),
    ] {
        metrics::gauge!(FLEET_EDGES, "state" => state).set(n as f64);
    }
}

/// Records a dropped peer.
pub fn peer_dropped() {
    metrics::counter!(PEERS_DROPPED).increment(1);
}

/// Fleet utilization over fresh, ready edges.
pub const FLEET_UTILIZATION: &str = "hlscdn_router_fleet_utilization_ratio";
/// Edges the fleet should have (autoscaling).
pub const DESIRED_EDGES: &str = "hlscdn_router_desired_edges";

/// Records the autoscaling figures.
pub fn scale(scale: &router_api::fleet::Scale) {
    metrics::gauge!(FLEET_UTILIZATION).set(scale.utilization);
    metrics::gauge!(DESIRED_EDGES).set(f64::from(scale.desired_edges));
}

/// Live playlists served from the last good copy while the origin failed.
pub const STALE_SERVED: &str = "hlscdn_router_stale_playlists_total";

/// Records a stale playlist served.
pub fn stale_served() {
    metrics::counter!(STALE_SERVED).increment(1);
}
