//! One report over what several routers say about the fleet: every edge with
//! a severity and notes, every router with whether it agrees with the others,
//! and the problems that make the fleet unhealthy. Pure: the callers fetch
//! the views (`hlscdn status` once, the dashboard every second).
//!
//! The fleet is **unhealthy** when
//!
//! - no router answers, or a router another router lists does not answer;
//! - no edge is fresh and ready (viewers get the no-edge fallback);
//! - an edge is stale while its last word was `ready`: it died or lost its
//!   network without draining. An edge that drained and then went quiet is
//!   `gone`: that is how a drain ends, not a problem (routers forget it after
//!   10 minutes);
//! - routers disagree on which edges are fresh (ads are not reaching every
//!   router, or a router is partitioned).
//!
//! Busy edges (utilization ≥ [`WARN_UTILIZATION`]) and edges over capacity
//! are **warnings**: the fleet still serves, the autoscaler's business.

use std::collections::{BTreeMap, BTreeSet};

use router_api::fleet::{EdgeState, EdgeView, EdgesView, HotStream};
use serde::Serialize;

/// Utilization from which an edge shows amber.
pub const WARN_UTILIZATION: f64 = 0.8;
/// Utilization from which an edge shows red.
pub const BAD_UTILIZATION: f64 = 1.0;

/// How much attention an edge needs; the order is the display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Stale without having drained, over capacity, or seen differently by the routers.
    Bad,
    /// Draining, held down after a comeback, or busy.
    Warn,
    /// Fresh, ready, with room.
    Ok,
    /// Drained and no longer heard from: on its way out of the view.
    Gone,
}

/// What one router answered (or why it did not).
#[derive(Debug, Clone)]
pub struct Observation {
    /// The URL it was asked at.
    pub url: String,
    /// Its id, when known (from `/api/v1/routers`).
    pub id: Option<String>,
    /// Its `/api/v1/edges`, or the error.
    pub view: Result<EdgesView, String>,
}

/// One router in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouterRow {
    /// The URL it was asked at.
    pub url: String,
    /// Its id (from its answer, or from a peer's list).
    pub id: Option<String>,
    /// It answered.
    pub reachable: bool,
    /// Why it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Edges it knows.
    pub edges: usize,
    /// Ids of the edges it holds fresh, sorted.
    pub fresh: Vec<String>,
    /// Its fresh set is the one most routers have.
    pub agrees: bool,
}

/// One edge in the report, merged over the routers that know it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeRow {
    /// Edge id.
    pub id: String,
    /// Public base URL.
    pub url: String,
    /// Group, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `ready`, `draining`, `stale` (last said ready, not heard from) or `gone`
    /// (drained, not heard from).
    pub status: &'static str,
    /// Its last word.
    pub state: EdgeState,
    /// Fresh on the router that heard from it last.
    pub fresh: bool,
    /// Out of hold-down.
    pub eligible: bool,
    /// Age of its newest ad, milliseconds (the youngest any router holds).
    pub ad_age_ms: u64,
    /// Egress capacity, bits/s.
    pub capacity_bps: u64,
    /// Connection capacity.
    pub max_connections: u64,
    /// Reported egress, bits/s.
    pub egress_bps: u64,
    /// Open connections.
    pub connections: u64,
    /// Requests per second.
    pub requests_per_sec: f64,
    /// Share of requests served from cache.
    pub cache_hit_ratio: f64,
    /// Bytes in its cache.
    pub cache_bytes: u64,
    /// CPU use, 0 to 1.
    pub cpu: f64,
    /// Highest utilization any router computes for it (reported + assigned).
    pub utilization: f64,
    /// Bits/s assigned to it by all routers since its last ad.
    pub assigned_bps: u64,
    /// Viewers placed on it by all routers since they started.
    pub viewers: u64,
    /// Configured statically on a router rather than heard from.
    pub configured: bool,
    /// Its busiest streams.
    pub hot_streams: Vec<HotStream>,
    /// Routers that hold it fresh, out of `routers_answering`.
    pub fresh_on: usize,
    /// Routers that answered.
    pub routers_answering: usize,
    /// How much attention it needs.
    pub severity: Severity,
    /// Why, in words.
    pub notes: Vec<String>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// No problem.
    pub healthy: bool,
    /// What makes the fleet unhealthy.
    pub problems: Vec<String>,
    /// What deserves a look.
    pub warnings: Vec<String>,
    /// Edges that are fresh and ready.
    pub fresh_ready: usize,
    /// Every router, in the order observed.
    pub routers: Vec<RouterRow>,
    /// Every edge, most urgent first, then by id.
    pub edges: Vec<EdgeRow>,
}

impl Report {
    /// Whether the only problems are routers disagreeing (worth asking again
    /// a moment later: an ad on its way makes views differ for a heartbeat).
    pub fn only_disagreement(&self) -> bool {
        !self.healthy && self.problems.iter().all(|p| p.starts_with(DISAGREE))
    }
}

const DISAGREE: &str = "routers disagree";

/// Moves "routers disagree" problems to the warnings (the dashboard does so
/// while a disagreement is younger than a few seconds: an ad on its way).
pub fn defer_disagreement(report: &mut Report) {
    let (disagreements, problems): (Vec<String>, Vec<String>) = std::mem::take(&mut report.problems)
        .into_iter()
        .partition(|p| p.starts_with(DISAGREE));
    report.problems = problems;
    report.warnings.extend(disagreements);
    report.healthy = report.problems.is_empty();
}

/// Builds the report from what each router answered.
pub fn assess(observations: &[Observation]) -> Report {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();

    let answering: Vec<(&Observation, &EdgesView)> = observations
        .iter()
        .filter_map(|o| o.view.as_ref().ok().map(|v| (o, v)))
        .collect();
    if answering.is_empty() {
        problems.push("no router answers".to_owned());
    }
    for o in observations {
        if let Err(error) = &o.view {
            problems.push(format!("router {} does not answer: {error}", o.url));
        }
    }

    // Per router: its fresh set; the most common one is the reference.
    let fresh_sets: Vec<BTreeSet<String>> = answering
        .iter()
        .map(|(_, v)| v.edges.iter().filter(|e| e.fresh).map(|e| e.id.clone()).collect())
        .collect();
    let reference = most_common(&fresh_sets);

    // Per edge: every router's view of it.
    let mut by_edge: BTreeMap<&str, Vec<&EdgeView>> = BTreeMap::new();
    for (_, view) in &answering {
        for edge in &view.edges {
            by_edge.entry(edge.id.as_str()).or_default().push(edge);
        }
    }

    let mut disagreements = Vec::new();
    let mut edges: Vec<EdgeRow> = by_edge
        .iter()
        .filter_map(|(id, views)| {
            let fresh_on = views.iter().filter(|e| e.fresh).count();
            if fresh_on > 0 && fresh_on < answering.len() {
                let names = |fresh: bool| {
                    answering
                        .iter()
                        .filter(|(_, v)| v.edges.iter().any(|e| e.id == *id && e.fresh) == fresh)
                        .map(|(o, v)| router_name(o, v))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                disagreements.push(format!(
                    "{DISAGREE}: {id} is fresh on {} but not on {}",
                    names(true),
                    names(false)
                ));
            }
            // The freshest report of the edge's load.
            let newest = views.iter().min_by_key(|e| (!e.fresh, e.ad_age_ms))?;
            Some(edge_row(newest, views, fresh_on, answering.len()))
        })
        .collect();
    edges.sort_by(|a, b| a.severity.cmp(&b.severity).then_with(|| a.id.cmp(&b.id)));

    let fresh_ready = edges
        .iter()
        .filter(|e| e.fresh && e.state == EdgeState::Ready)
        .count();
    if !answering.is_empty() && fresh_ready == 0 {
        problems.push("no fresh ready edge: viewers get the no-edge fallback".to_owned());
    }
    for edge in &edges {
        match edge.status {
            "stale" => problems.push(format!(
                "{} is stale (no ad for {}) without having drained",
                edge.id,
                seconds(edge.ad_age_ms)
            )),
            _ if edge.severity == Severity::Bad || edge.severity == Severity::Warn => {
                for note in &edge.notes {
                    warnings.push(format!("{}: {note}", edge.id));
                }
            }
            _ => {}
        }
    }
    problems.extend(disagreements);

    let routers = observations
        .iter()
        .map(|o| match &o.view {
            Ok(view) => {
                let fresh: BTreeSet<String> = view
                    .edges
                    .iter()
                    .filter(|e| e.fresh)
                    .map(|e| e.id.clone())
                    .collect();
                RouterRow {
                    url: o.url.clone(),
                    id: Some(view.router.clone()),
                    reachable: true,
                    error: None,
                    edges: view.edges.len(),
                    agrees: Some(&fresh) == reference,
                    fresh: fresh.into_iter().collect(),
                }
            }
            Err(error) => RouterRow {
                url: o.url.clone(),
                id: o.id.clone(),
                reachable: false,
                error: Some(error.clone()),
                edges: 0,
                fresh: Vec::new(),
                agrees: false,
            },
        })
        .collect();

    Report {
        healthy: problems.is_empty(),
        problems,
        warnings,
        fresh_ready,
        routers,
        edges,
    }
}

fn router_name(o: &Observation, v: &EdgesView) -> String {
    if v.router.is_empty() {
        o.url.clone()
    } else {
        format!("{} ({})", v.router, o.url)
    }
}

/// The set most routers hold (ties: the first seen).
fn most_common(sets: &[BTreeSet<String>]) -> Option<&BTreeSet<String>> {
    let mut best: Option<(&BTreeSet<String>, usize)> = None;
    for set in sets {
        let count = sets.iter().filter(|s| *s == set).count();
        if best.is_none_or(|(_, c)| count > c) {
            best = Some((set, count));
        }
    }
    best.map(|(set, _)| set)
}

/// Merges one edge as seen by several routers: the freshest report of its
/// load, the sum of what the routers assigned, the highest utilization.
fn edge_row(newest: &EdgeView, views: &[&EdgeView], fresh_on: usize, routers_answering: usize) -> EdgeRow {
    let utilization = views
        .iter()
        .map(|e| e.utilization)
        .filter(|u| u.is_finite())
        .fold(0.0, f64::max);
    let fresh = newest.fresh;
    let mut notes = Vec::new();
    let mut severities = vec![Severity::Ok];
    let mut raise = |s: Severity, note: String, notes: &mut Vec<String>| {
        severities.push(s);
        notes.push(note);
    };
    let status = match (fresh, newest.state) {
        (true, EdgeState::Ready) => "ready",
        (true, EdgeState::Draining) => "draining",
        (false, EdgeState::Ready) => "stale",
        (false, EdgeState::Draining) => "gone",
    };
    match status {
        "stale" => raise(
            Severity::Bad,
            format!("stale: no ad for {}", seconds(newest.ad_age_ms)),
            &mut notes,
        ),
        "draining" => raise(
            Severity::Warn,
            "draining: takes no new viewers".into(),
            &mut notes,
        ),
        "gone" => notes.push(format!("drained; gone for {}", seconds(newest.ad_age_ms))),
        _ => {}
    }
    if status != "gone" {
        if fresh && !newest.eligible {
            raise(Severity::Warn, "held down after coming back".into(), &mut notes);
        }
        if fresh_on > 0 && fresh_on < routers_answering {
            raise(
                Severity::Bad,
                format!("fresh on {fresh_on} of {routers_answering} routers"),
                &mut notes,
            );
        }
        if utilization >= BAD_UTILIZATION {
            raise(
                Severity::Bad,
                format!("over capacity ({:.0}%)", utilization * 100.0),
                &mut notes,
            );
        } else if utilization >= WARN_UTILIZATION {
            raise(
                Severity::Warn,
                format!("busy ({:.0}%)", utilization * 100.0),
                &mut notes,
            );
        }
    }
    let severity = if status == "gone" {
        Severity::Gone
    } else {
        severities.into_iter().min().unwrap_or(Severity::Ok)
    };
    EdgeRow {
        id: newest.id.clone(),
        url: newest.url.clone(),
        group: newest.group.clone(),
        status,
        state: newest.state,
        fresh,
        eligible: newest.eligible,
        ad_age_ms: newest.ad_age_ms,
        capacity_bps: newest.capacity.egress_bps,
        max_connections: newest.capacity.connections,
        egress_bps: newest.load.egress_bps,
        connections: newest.load.connections,
        requests_per_sec: newest.load.requests_per_sec,
        cache_hit_ratio: newest.load.cache_hit_ratio,
        cache_bytes: newest.load.cache_bytes,
        cpu: newest.load.cpu,
        utilization,
        assigned_bps: views.iter().map(|e| e.assigned_bps).sum(),
        viewers: views.iter().map(|e| e.viewers_assigned).sum(),
        configured: views.iter().any(|e| e.configured),
        hot_streams: newest.hot_streams.clone(),
        fresh_on,
        routers_answering,
        severity,
        notes,
    }
}

/// `1234` ms → `1.2 s`.
pub fn seconds(ms: u64) -> String {
    if ms >= 100_000 {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use router_api::fleet::{Capacity, Load};

    use super::*;

    fn edge(id: &str, state: EdgeState, fresh: bool, utilization: f64) -> EdgeView {
        EdgeView {
            id: id.into(),
            url: format!("http://127.0.0.1:900{}", id.len()),
            group: None,
            state,
            fresh,
            eligible: true,
            ad_age_ms: if fresh { 400 } else { 12_000 },
            capacity: Capacity {
                egress_bps: 1_000_000,
                connections: 100,
            },
            load: Load {
                egress_bps: (utilization * 1_000_000.0) as u64,
                ..Load::default()
            },
            hot_streams: Vec::new(),
            utilization,
            assigned_bps: 0,
            viewers_assigned: 2,
            configured: false,
            ad: None,
        }
    }

    fn router(id: &str, edges: Vec<EdgeView>) -> Observation {
        Observation {
            url: format!("http://{id}"),
            id: Some(id.into()),
            view: Ok(EdgesView {
                router: id.into(),
                edges,
            }),
        }
    }

    fn healthy_fleet() -> Vec<EdgeView> {
        vec![
            edge("edge-1", EdgeState::Ready, true, 0.1),
            edge("edge-2", EdgeState::Ready, true, 0.2),
        ]
    }

    #[test]
    fn a_healthy_fleet() {
        let report = assess(&[router("r1", healthy_fleet()), router("r2", healthy_fleet())]);
        assert!(report.healthy, "{:?}", report.problems);
        assert_eq!(report.fresh_ready, 2);
        assert!(report.routers.iter().all(|r| r.agrees && r.reachable));
        assert_eq!(report.edges[0].viewers, 4, "viewers add up over routers");
        assert!(report.edges.iter().all(|e| e.severity == Severity::Ok));
    }

    #[test]
    fn a_stale_edge_is_a_problem_and_comes_first() {
        let mut edges = healthy_fleet();
        edges.push(edge("edge-0", EdgeState::Ready, true, 0.0));
        edges[1] = edge("edge-2", EdgeState::Ready, false, 0.0);
        let report = assess(&[router("r1", edges)]);
        assert!(!report.healthy);
        assert_eq!(report.edges[0].id, "edge-2");
        assert_eq!(report.edges[0].status, "stale");
        assert_eq!(report.edges[0].severity, Severity::Bad);
        assert!(
            report.problems[0].contains("edge-2 is stale"),
            "{:?}",
            report.problems
        );
    }

    #[test]
    fn a_drained_edge_is_gone_not_a_problem() {
        let mut edges = healthy_fleet();
        edges.push(edge("edge-3", EdgeState::Draining, false, 0.0));
        edges.push(edge("edge-4", EdgeState::Draining, true, 0.0));
        let report = assess(&[router("r1", edges)]);
        assert!(report.healthy, "{:?}", report.problems);
        let last = report.edges.last().expect("edges");
        assert_eq!((last.id.as_str(), last.status), ("edge-3", "gone"));
        assert_eq!(report.edges[0].id, "edge-4", "draining sorts first");
        assert_eq!(report.edges[0].severity, Severity::Warn);
        assert_eq!(report.warnings, vec!["edge-4: draining: takes no new viewers"]);
    }

    #[test]
    fn no_fresh_ready_edge() {
        let edges = vec![edge("edge-1", EdgeState::Draining, true, 0.0)];
        let report = assess(&[router("r1", edges)]);
        assert!(!report.healthy);
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.starts_with("no fresh ready edge"))
        );
        let empty = assess(&[router("r1", Vec::new())]);
        assert!(!empty.healthy);
    }

    #[test]
    fn routers_that_disagree() {
        let mut partial = healthy_fleet();
        partial[1].fresh = false;
        let report = assess(&[
            router("r1", healthy_fleet()),
            router("r2", partial),
            router("r3", healthy_fleet()),
        ]);
        assert!(!report.healthy);
        assert!(report.only_disagreement(), "{:?}", report.problems);
        let mut deferred = report.clone();
        defer_disagreement(&mut deferred);
        assert!(deferred.healthy);
        assert!(
            deferred
                .warnings
                .iter()
                .any(|w| w.starts_with("routers disagree"))
        );
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains("edge-2 is fresh on r1"))
        );
        let agrees: Vec<bool> = report.routers.iter().map(|r| r.agrees).collect();
        assert_eq!(agrees, vec![true, false, true]);
        let e2 = report.edges.iter().find(|e| e.id == "edge-2").expect("edge-2");
        assert_eq!((e2.fresh_on, e2.severity), (2, Severity::Bad));
        assert!(e2.fresh, "the freshest view wins");
    }

    #[test]
    fn unreachable_routers() {
        let down = Observation {
            url: "http://r2".into(),
            id: Some("r2".into()),
            view: Err("connection refused".into()),
        };
        let report = assess(&[router("r1", healthy_fleet()), down.clone()]);
        assert!(!report.healthy);
        assert!(!report.only_disagreement());
        assert!(!report.routers[1].reachable);
        let none = assess(&[down]);
        assert_eq!(none.problems[0], "no router answers");
    }

    #[test]
    fn busy_and_overloaded_edges_are_warnings() {
        let edges = vec![
            edge("edge-1", EdgeState::Ready, true, 0.85),
            edge("edge-2", EdgeState::Ready, true, 1.3),
            edge("edge-3", EdgeState::Ready, true, 0.1),
        ];
        let report = assess(&[router("r1", edges)]);
        assert!(report.healthy);
        let order: Vec<(&str, Severity)> = report.edges.iter().map(|e| (e.id.as_str(), e.severity)).collect();
        assert_eq!(
            order,
            vec![
                ("edge-2", Severity::Bad),
                ("edge-1", Severity::Warn),
                ("edge-3", Severity::Ok)
            ]
        );
        assert_eq!(
            report.warnings,
            vec!["edge-2: over capacity (130%)", "edge-1: busy (85%)"]
        );
    }

    #[test]
    fn seconds_read_well() {
        assert_eq!(seconds(1234), "1.2 s");
        assert_eq!(seconds(123_456), "123 s");
    }
}
