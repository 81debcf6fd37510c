//! What the router shows of its fleet: `GET /api/v1/edges` (every edge,
//! with this router's counters), `GET /api/v1/scale` (how many edges the
//! fleet should have), `GET /api/v1/events` (the edges view as server-sent
//! events: at once on every change, and once a second), and the query of
//! `GET /api/v1/explain` (answered in [`crate::http`]).
//!
//! Housekeeping runs every [`HOUSEKEEPING`]: it logs each edge's flips once
//! (freshness needs no timer: it is checked at every choice), refreshes the
//! fleet gauges, feeds the scaler, and publishes the view. The views
//! themselves are pure functions of the fleet state and the time.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use router_api::fleet::{Capacity, EdgeState, EdgeView, EdgesView, Load, Scale};
use selection::fleet::EdgeRecord;
use selection::snapshot::EdgeSnapshot;
use serde::Deserialize;
use tokio::sync::broadcast;

use super::{Current, Fleet, lock, now};
use crate::fleet::Transition;
use crate::metrics;

/// How often flips are looked for.
const HOUSEKEEPING: Duration = Duration::from_millis(200);
/// The events stream gets the view at least this often.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// (Reported + assigned) / capacity; 0 without capacity.
fn utilization(load: u64, assigned: u64, capacity: u64) -> f64 {
    if capacity == 0 {
        0.0
    } else {
        (load + assigned) as f64 / capacity as f64
    }
}

/// A configured edge as `GET /api/v1/edges` shows it: always fresh.
fn configured_view(edge: &EdgeSnapshot, (assigned_bps, viewers_assigned): (u64, u64)) -> EdgeView {
    EdgeView {
        id: edge.id.clone(),
        url: edge.base_url.clone(),
        group: edge.group.clone(),
        state: edge.state,
        fresh: true,
        eligible: true,
        ad_age_ms: 0,
        capacity: Capacity {
            egress_bps: edge.capacity_bps,
            connections: 0,
        },
        load: Load::default(),
        hot_streams: Vec::new(),
        utilization: utilization(0, assigned_bps, edge.capacity_bps),
        assigned_bps,
        viewers_assigned,
        configured: true,
        ad: None,
    }
}

/// An advertised edge as `GET /api/v1/edges` shows it, with its ad.
fn advertised_view(record: &EdgeRecord<'_>, (assigned_bps, viewers_assigned): (u64, u64)) -> EdgeView {
    let ad = record.ad;
    EdgeView {
        id: ad.edge_id.clone(),
        url: ad.public_url.clone(),
        group: ad.group.clone(),
        state: ad.state,
        fresh: record.fresh,
        eligible: record.eligible,
        ad_age_ms: u64::try_from(record.age.as_millis()).unwrap_or(u64::MAX),
        capacity: ad.capacity,
        load: ad.load,
        hot_streams: ad.hot_streams.clone(),
        utilization: utilization(ad.load.egress_bps, assigned_bps, ad.capacity.egress_bps),
        assigned_bps,
        viewers_assigned,
        configured: false,
        ad: Some(ad.clone()),
    }
}

/// Advertised edges by what they may do now (the gauge `hlscdn_router_fleet_edges`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Census {
    fresh: u64,
    stale: u64,
    draining: u64,
    held: u64,
}

impl Census {
    fn of(records: &[EdgeRecord<'_>]) -> Self {
        let mut census = Census::default();
        for record in records {
            match (record.fresh, record.ad.state, record.eligible) {
                (false, _, _) => census.stale += 1,
                (true, EdgeState::Draining, _) => census.draining += 1,
                (true, _, false) => census.held += 1,
                (true, _, true) => census.fresh += 1,
            }
        }
        census
    }
}

/// Fresh, ready, eligible edges of `current` at `now`, and their utilization.
fn measure_scale(current: &Current, now: Instant) -> (u32, f64) {
    let assigned = current.assigned();
    let (mut edges, mut used, mut capacity) = (0u32, 0f64, 0f64);
    for (i, edge) in current.selector.edges().iter().enumerate() {
        if edge.is_fresh(now) && edge.is_eligible(now) && edge.state == EdgeState::Ready {
            edges += 1;
            // This router's own estimate since the edge's last ad counts
            // at most as much as the edge measured itself: requests alone
            // cannot scale the fleet.
            let assigned = assigned.get(i).copied().unwrap_or(0).min(edge.load_bps);
            used += (edge.load_bps + assigned) as f64;
            capacity += edge.capacity_bps as f64;
        }
    }
    let utilization = if capacity > 0.0 { used / capacity } else { 0.0 };
    (edges, utilization)
}

fn log(transition: &Transition) {
    match transition {
        Transition::Joined(edge) => tracing::info!(edge = %edge, "edge joined"),
        Transition::Stale(edge) => tracing::warn!(edge = %edge, "edge became stale"),
        Transition::Fresh(edge) => tracing::info!(edge = %edge, "edge is fresh again"),
        Transition::State(edge, state) => {
            tracing::info!(edge = %edge, state = ?state, "edge changed state")
        }
        Transition::Forgotten(edge) => tracing::info!(edge = %edge, "stale edge forgotten"),
    }
}

impl Fleet {
    /// Housekeeping every [`HOUSEKEEPING`]; the view is published at once
    /// on every change and every [`PUBLISH_EVERY`] otherwise.
    pub(super) async fn housekeeping_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(HOUSEKEEPING);
        let mut since_event = Duration::ZERO;
        loop {
            tick.tick().await;
            since_event += HOUSEKEEPING;
            if self.housekeeping(now()) || since_event >= PUBLISH_EVERY {
                since_event = Duration::ZERO;
                self.publish_view();
            }
        }
    }

    /// Logs flips and refreshes gauges; true when something changed.
    fn housekeeping(&self, now: Instant) -> bool {
        let mut view = lock(&self.view);
        let transitions = view.transitions(now);
        transitions.iter().for_each(log);
        if transitions.iter().any(|t| matches!(t, Transition::Forgotten(_))) {
            self.rebuild(&view, &[]);
        }
        let records: Vec<EdgeRecord<'_>> = view.records(now).collect();
        for record in &records {
            metrics::ad_age(&record.ad.edge_id, record.age);
        }
        let census = Census::of(&records);
        drop(records);
        drop(view);
        let configured = self.settings.static_edges.len() as u64;
        metrics::fleet_size(
            census.fresh + configured,
            census.stale,
            census.draining,
            census.held,
        );
        self.observe_scale(now);
        !transitions.is_empty()
    }

    /// Records the fleet's utilization in the scaler (housekeeping does, every round).
    fn observe_scale(&self, now: Instant) -> Scale {
        let (edges, utilization) = measure_scale(&self.current.load(), now);
        let scale = lock(&self.scaler).observe(edges, utilization, now);
        metrics::scale(&scale);
        scale
    }

    /// What `GET /api/v1/scale` answers: the scaler's answer now, changing nothing.
    pub fn scale_now(&self, now: Instant) -> Scale {
        let (edges, utilization) = measure_scale(&self.current.load(), now);
        lock(&self.scaler).preview(edges, utilization, now)
    }

    /// The fleet as `GET /api/v1/edges` shows it.
    pub fn edges_view(&self) -> EdgesView {
        let now = now();
        let current = self.current.load();
        let mut edges: Vec<EdgeView> = self
            .settings
            .static_edges
            .iter()
            .map(|e| configured_view(e, current.counters_of(&e.id)))
            .collect();
        let view = lock(&self.view);
        edges.extend(
            view.records(now)
                .map(|record| advertised_view(&record, current.counters_of(&record.ad.edge_id))),
        );
        EdgesView {
            router: self.settings.me.id.clone(),
            edges,
        }
    }

    fn publish_view(&self) {
        if self.events.receiver_count() == 0 {
            return;
        }
        if let Ok(json) = serde_json::to_string(&self.edges_view()) {
            let _ = self.events.send(json);
        }
    }
}

pub(super) async fn scale(State(fleet): State<Arc<Fleet>>) -> Response {
    axum::Json(fleet.scale_now(now())).into_response()
}

pub(super) async fn list_edges(State(fleet): State<Arc<Fleet>>) -> Response {
    axum::Json(fleet.edges_view()).into_response()
}

pub(super) async fn events(
    State(fleet): State<Arc<Fleet>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let first = serde_json::to_string(&fleet.edges_view()).unwrap_or_default();
    let receiver = fleet.events.subscribe();
    let updates = futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(json) => return Some((Ok(Event::default().event("fleet").data(json)), receiver)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let stream = futures::StreamExt::chain(
        futures::stream::once(async move { Ok(Event::default().event("fleet").data(first)) }),
        updates,
    );
    // A viewer of the stream may be gone without the router noticing until
    // it writes; it writes nothing once stopping, so the stream ends then.
    Sse::new(futures::StreamExt::take_until(stream, fleet.stopped())).keep_alive(KeepAlive::default())
}

/// Query of `GET /api/v1/explain`.
#[derive(Debug, Deserialize)]
pub struct ExplainQuery {
    /// The playlist or object path, e.g. `/live/demo-1/240p/index.m3u8`.
    pub path: String,
    /// A session token, as on the player's playlist URL.
    #[serde(default)]
    pub session: Option<String>,
    /// The viewer's group.
    #[serde(default)]
    pub group: Option<String>,
    /// The viewer's bandwidth, bits per second.
    #[serde(default)]
    pub bandwidth: Option<u64>,
    /// A steering ticket (the `s` of the steering `SERVER-URI`): adds the
    /// steering plan the viewer would get now.
    #[serde(default)]
    pub ticket: Option<String>,
    /// The pathway the player says it is on (`_HLS_pathway`), with `ticket`.
    #[serde(default)]
    pub pathway: Option<String>,
    /// The viewer is on https (`https=true`): plain-http edges cannot serve it.
    #[serde(default)]
    pub https: bool,
}

#[cfg(test)]
mod tests {
    use router_api::fleet::Ad;

    use super::*;
    use crate::fleet_api::tests::{ad, fleet};

    fn record(ad: &Ad, fresh: bool, eligible: bool) -> EdgeRecord<'_> {
        EdgeRecord {
            ad,
            age: Duration::from_millis(1500),
            fresh,
            eligible,
        }
    }

    #[test]
    fn utilization_counts_what_this_router_assigned() {
        assert_eq!(utilization(0, 0, 0), 0.0, "no capacity: nothing to divide");
        assert_eq!(utilization(300, 200, 1000), 0.5);
        let edge = EdgeSnapshot {
            capacity_bps: 1000,
            ..EdgeSnapshot::new_static("static", "http://s")
        };
        let view = configured_view(&edge, (250, 3));
        assert!(view.configured && view.fresh && view.ad.is_none());
        assert_eq!((view.utilization, view.viewers_assigned), (0.25, 3));

        let ad = ad("edge-1", 1);
        let view = advertised_view(&record(&ad, true, false), (0, 0));
        assert_eq!(view.ad_age_ms, 1500);
        assert_eq!((view.fresh, view.eligible), (true, false));
        assert_eq!(view.ad.as_ref(), Some(&ad));
    }

    #[test]
    fn the_census_counts_each_edge_once() {
        let ready = ad("ready", 1);
        let draining = Ad {
            state: EdgeState::Draining,
            ..ad("draining", 1)
        };
        let records = [
            record(&ready, true, true),
            record(&ready, true, false),
            record(&ready, false, true),
            record(&draining, true, false),
            record(&draining, false, false),
        ];
        assert_eq!(
            Census::of(&records),
            Census {
                fresh: 1,
                stale: 2,
                draining: 1,
                held: 1
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn flips_are_published_at_once_and_the_view_every_second() {
        let fleet = fleet(&[]);
        let mut events = fleet.events.subscribe();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        fleet.start(stopped);
        let fresh_of = |json: &str| {
            serde_json::from_str::<EdgesView>(json)
                .ok()
                .and_then(|v| v.edges.first().map(|e| e.fresh))
        };

        // Nothing changes: the view once a second.
        let started = tokio::time::Instant::now();
        assert_eq!(events.recv().await.ok().as_deref().map(fresh_of), Some(None));
        assert!(started.elapsed() <= PUBLISH_EVERY, "{:?}", started.elapsed());

        // A joining edge at the next round.
        let ad = ad("edge-1", 1);
        let ttl = Duration::from_millis(ad.ttl_ms);
        fleet.apply(ad, Duration::ZERO);
        let joined = tokio::time::Instant::now();
        assert_eq!(
            events.recv().await.ok().as_deref().map(fresh_of),
            Some(Some(true))
        );
        assert!(joined.elapsed() <= HOUSEKEEPING);

        // Its ads stop: stale within a round of its TTL.
        let stale = loop {
            let json = events.recv().await.unwrap_or_default();
            if fresh_of(&json) == Some(false) {
                break joined.elapsed();
            }
        };
        assert!(stale >= ttl && stale <= ttl + HOUSEKEEPING, "{stale:?}");
        let _ = stop.send(true);
    }

    #[tokio::test(start_paused = true)]
    async fn the_scale_counts_fresh_ready_edges() {
        let fleet = fleet(&[]);
        let ad = ad("edge-1", 1);
        let ttl = Duration::from_millis(ad.ttl_ms);
        fleet.apply(ad, Duration::ZERO);
        assert_eq!(fleet.scale_now(now()).edges, 1);
        tokio::time::advance(ttl).await;
        assert_eq!(fleet.scale_now(now()).edges, 0, "stale: not counted");
    }
}
