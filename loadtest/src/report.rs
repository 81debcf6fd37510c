//! The `players` report: figures (JSON), the table printed at the end, and
//! the cache figures derived from `/metrics` before and after. Pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::invariants::InvariantFigures;
use crate::stats::{Bucket, ClassFigures, KindFigures, Moves, Percentiles, Recorder, Sessions};
use router_api::prometheus::{self, Sample};

/// The run's settings, as given.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// Router URLs.
    pub routers: Vec<String>,
    /// Viewers asked for.
    pub viewers: usize,
    /// Run length, seconds.
    pub duration_secs: f64,
    /// Viewers arriving per second.
    pub arrival_rate: f64,
    /// `fixed NAME` or `abr`.
    pub rendition: String,
    /// Zipf exponent of stream popularity.
    pub zipf: f64,
    /// Seed of stream choices.
    pub seed: u64,
    /// Slow-request threshold, milliseconds.
    pub slow_ms: f64,
    /// Request timeout, milliseconds.
    pub timeout_ms: f64,
}

/// `/metrics` of the cluster at one moment (`None`: not reachable).
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// The origin's.
    pub origin: Option<Vec<Sample>>,
    /// Each edge's, by URL.
    pub edges: Vec<(String, Option<Vec<Sample>>)>,
    /// Each router's, by URL.
    pub routers: Vec<(String, Option<Vec<Sample>>)>,
}

/// The run, sampled once a second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimelineSample {
    /// Seconds since the start.
    pub secs: f64,
    /// Viewers running.
    pub active: u64,
    /// Viewers stalled.
    pub stalled: u64,
    /// Edge names known then.
    pub edges: Vec<String>,
    /// Viewers per edge (their latest segment came from it).
    pub viewers: Vec<u64>,
    /// Bytes received per edge so far.
    pub bytes: Vec<u64>,
}

/// Viewer figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewerFigures {
    /// Viewers that arrived.
    pub arrived: u64,
    /// Viewers that got at least one segment from an edge.
    pub with_edge: u64,
    /// Viewers that never got a segment.
    pub without_edge: u64,
    /// Session totals.
    pub sessions: Sessions,
    /// Startup time.
    pub startup: Percentiles,
    /// Startup time histogram.
    pub startup_histogram: Vec<Bucket>,
    /// Viewing hours (watch time of every session).
    pub watch_hours: f64,
    /// Stalls per viewer-hour.
    pub stalls_per_viewer_hour: f64,
    /// Stall time / (play time + stall time).
    pub rebuffering_ratio: f64,
    /// Edge changes and router failovers.
    pub moves: Moves,
}

/// One edge, as the viewers saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeReport {
    /// `host:port` of the segment URLs.
    pub edge: String,
    /// The edge id, when a router's fleet view names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Distinct viewers that fetched a segment there.
    pub viewers: u64,
    /// Viewers whose latest segment came from there, at the end.
    pub viewers_at_end: u64,
    /// Segments received.
    pub segments: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Mean egress to the viewers over the run, Mbit/s.
    pub egress_mbps: f64,
    /// Failed segment requests.
    pub errors: u64,
}

/// One edge's cache, from its `/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeCache {
    /// Its `/metrics` URL.
    pub url: String,
    /// Lookups answered from the cache during the run.
    pub hits: u64,
    /// Lookups that fetched from the origin.
    pub misses: u64,
    /// Lookups that waited on another lookup's fetch.
    pub collapsed: u64,
    /// `hits / (hits + misses + collapsed)`.
    pub hit_ratio: Option<f64>,
}

/// What the edges' caches did for the origin (deltas of `/metrics`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CacheFigures {
    /// Distinct segments the viewers fetched or the invariant checker probed.
    pub unique_segments: u64,
    /// Each edge's cache.
    pub edges: Vec<EdgeCache>,
    /// Over every edge.
    pub hit_ratio: Option<f64>,
    /// Origin fetches the edges started (their misses).
    pub edge_origin_fetches: Option<u64>,
    /// GET requests the origin answered.
    pub origin_requests: Option<u64>,
    /// Playlist fetches the routers sent to the origin (their playlist cache misses).
    pub router_playlist_fetches: Option<u64>,
    /// Origin requests for segments: origin GETs less router playlist
    /// fetches when both are known, else the edges' misses.
    pub origin_segment_requests: Option<u64>,
    /// `origin_segment_requests / unique_segments` (1: each segment fetched once).
    pub origin_requests_per_unique_segment: Option<f64>,
}

/// Per-second series for charts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timeline {
    /// Seconds since the start.
    pub secs: Vec<f64>,
    /// Viewers running.
    pub active: Vec<u64>,
    /// Viewers stalled.
    pub stalled: Vec<u64>,
    /// Edge names.
    pub edges: Vec<String>,
    /// Per edge: viewers on it at each sample.
    pub viewers: Vec<Vec<u64>>,
    /// Per edge: egress to the viewers over the second before each sample, Mbit/s.
    pub egress_mbps: Vec<Vec<f64>>,
}

/// Everything a `players` run found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlayersReport {
    /// The settings.
    pub settings: Settings,
    /// Wall-clock length of the run, seconds.
    pub elapsed_secs: f64,
    /// Viewers, startup, stalls.
    pub viewers: ViewerFigures,
    /// Requests, errors and slow requests by kind.
    pub requests: BTreeMap<&'static str, KindFigures>,
    /// Latency by class.
    pub latency: Vec<ClassFigures>,
    /// Errors by kind and reason.
    pub errors: BTreeMap<String, u64>,
    /// Per edge, busiest first.
    pub edges: Vec<EdgeReport>,
    /// Edge caches and origin.
    pub cache: CacheFigures,
    /// Viewers per stream.
    pub streams: Vec<(String, u64)>,
    /// Per-second series.
    pub timeline: Timeline,
    /// Stream invariants of every media playlist received.
    pub invariants: InvariantFigures,
}

/// Builds the report of a finished run.
#[allow(clippy::too_many_arguments)]
pub fn players(
    settings: Settings,
    recorder: &Recorder,
    arrived: usize,
    elapsed: Duration,
    streams: Vec<(String, u64)>,
    edge_ids: &[(String, String)],
    samples: &[TimelineSample],
    before: &Scrape,
    after: &Scrape,
    invariants: InvariantFigures,
) -> PlayersReport {
    let sessions = recorder.sessions().clone();
    let with_edge = recorder.viewers_with_edge(arrived);
    let watch_hours = sessions.watch_secs / 3600.0;
    let viewing = sessions.play_secs + sessions.stall_secs;
    let secs = elapsed.as_secs_f64().max(1e-9);
    let edges = recorder
        .edges()
        .into_iter()
        .map(|e| EdgeReport {
            id: edge_ids
                .iter()
                .find(|(addr, _)| *addr == e.edge)
                .map(|(_, id)| id.clone()),
            egress_mbps: e.bytes as f64 * 8.0 / secs / 1e6,
            edge: e.edge,
            viewers: e.viewers,
            viewers_at_end: e.viewers_now,
            segments: e.segments,
            bytes: e.bytes,
            errors: e.errors,
        })
        .collect();
    PlayersReport {
        settings,
        elapsed_secs: elapsed.as_secs_f64(),
        viewers: ViewerFigures {
            arrived: arrived as u64,
            with_edge,
            without_edge: arrived as u64 - with_edge.min(arrived as u64),
            startup: recorder.startup(),
            startup_histogram: recorder.startup_histogram(),
            watch_hours,
            stalls_per_viewer_hour: if watch_hours > 0.0 {
                sessions.stalls as f64 / watch_hours
            } else {
                0.0
            },
            rebuffering_ratio: if viewing > 0.0 {
                sessions.stall_secs / viewing
            } else {
                0.0
            },
            moves: recorder.moves(),
            sessions,
        },
        requests: recorder.kinds(),
        latency: recorder.classes(),
        errors: recorder.error_kinds().clone(),
        edges,
        cache: cache_figures(before, after, recorder.unique_objects()),
        streams,
        timeline: timeline(samples),
        invariants,
    }
}

fn delta(
    before: Option<&Vec<Sample>>,
    after: Option<&Vec<Sample>>,
    name: &str,
    with: &[(&str, &str)],
) -> Option<u64> {
    let (before, after) = (before?, after?);
    let d = prometheus::sum(after, name, with) - prometheus::sum(before, name, with);
    Some(d.max(0.0).round() as u64)
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

/// Cache and origin figures from `/metrics` before and after the run.
pub fn cache_figures(before: &Scrape, after: &Scrape, unique_segments: u64) -> CacheFigures {
    let find = |list: &[(String, Option<Vec<Sample>>)], url: &str| {
        list.iter().find(|(u, _)| u == url).and_then(|(_, s)| s.clone())
    };
    let mut edges = Vec::new();
    for (url, samples) in &after.edges {
        let old = find(&before.edges, url);
        let d = |name| delta(old.as_ref(), samples.as_ref(), name, &[]);
        let (Some(hits), Some(misses), Some(collapsed)) = (
            d("hlscdn_edge_cache_hits_total"),
            d("hlscdn_edge_cache_misses_total"),
            d("hlscdn_edge_cache_collapsed_total"),
        ) else {
            continue;
        };
        edges.push(EdgeCache {
            url: url.clone(),
            hits,
            misses,
            collapsed,
            hit_ratio: ratio(hits, hits + misses + collapsed),
        });
    }
    let hits: u64 = edges.iter().map(|e| e.hits).sum();
    let misses: u64 = edges.iter().map(|e| e.misses).sum();
    let collapsed: u64 = edges.iter().map(|e| e.collapsed).sum();
    let edge_origin_fetches = (!edges.is_empty()).then_some(misses);
    let origin_requests = delta(
        before.origin.as_ref(),
        after.origin.as_ref(),
        "hlscdn_origin_requests_total",
        &[("method", "GET")],
    );
    let mut router_playlist_fetches = None;
    for (url, samples) in &after.routers {
        let old = find(&before.routers, url);
        if let Some(d) = delta(
            old.as_ref(),
            samples.as_ref(),
            "hlscdn_router_playlist_cache_total",
            &[("result", "miss")],
        ) {
            router_playlist_fetches = Some(router_playlist_fetches.unwrap_or(0) + d);
        }
    }
    let origin_segment_requests = match (origin_requests, router_playlist_fetches) {
        (Some(o), Some(r)) => Some(o.saturating_sub(r)),
        _ => edge_origin_fetches,
    };
    CacheFigures {
        unique_segments,
        hit_ratio: ratio(hits, hits + misses + collapsed),
        edges,
        edge_origin_fetches,
        origin_requests,
        router_playlist_fetches,
        origin_requests_per_unique_segment: origin_segment_requests.and_then(|o| ratio(o, unique_segments)),
        origin_segment_requests,
    }
}

/// Per-second series from the samples; egress is the byte delta between samples.
pub fn timeline(samples: &[TimelineSample]) -> Timeline {
    let edges: Vec<String> = samples.last().map(|s| s.edges.clone()).unwrap_or_default();
    let mut t = Timeline {
        secs: samples.iter().map(|s| s.secs).collect(),
        active: samples.iter().map(|s| s.active).collect(),
        stalled: samples.iter().map(|s| s.stalled).collect(),
        viewers: vec![Vec::with_capacity(samples.len()); edges.len()],
        egress_mbps: vec![Vec::with_capacity(samples.len()); edges.len()],
        edges,
    };
    let mut previous: Option<&TimelineSample> = None;
    for s in samples {
        for (e, name) in t.edges.iter().enumerate() {
            let at = |x: &TimelineSample| x.edges.iter().position(|n| n == name);
            let viewers = at(s).and_then(|i| s.viewers.get(i)).copied().unwrap_or(0);
            let bytes = at(s).and_then(|i| s.bytes.get(i)).copied().unwrap_or(0);
            let (before, dt) = match previous {
                Some(p) => (
                    at(p).and_then(|i| p.bytes.get(i)).copied().unwrap_or(0),
                    s.secs - p.secs,
                ),
                None => (0, s.secs),
            };
            t.viewers[e].push(viewers);
            let mbps = if dt > 0.0 {
                bytes.saturating_sub(before) as f64 * 8.0 / dt / 1e6
            } else {
                0.0
            };
            t.egress_mbps[e].push(mbps);
        }
        previous = Some(s);
    }
    t
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.digits$}"))
}

/// The table printed at the end of a run.
pub fn players_table(r: &PlayersReport) -> String {
    let mut out = String::new();
    let v = &r.viewers;
    let s = &v.sessions;
    let _ = writeln!(
        out,
        "players: {} viewers over {:.0} s ({} routers, {}, zipf {})",
        v.arrived,
        r.elapsed_secs,
        r.settings.routers.len(),
        r.settings.rendition,
        r.settings.zipf
    );
    let _ = writeln!(
        out,
        "viewers: {} with an edge, {} without; {} sessions, {} started, {} gave up",
        v.with_edge, v.without_edge, s.sessions, s.started, s.gave_up
    );
    let _ = writeln!(
        out,
        "startup: p50 {:.0} ms  p90 {:.0} ms  p99 {:.0} ms  max {:.0} ms",
        v.startup.p50_ms, v.startup.p90_ms, v.startup.p99_ms, v.startup.max_ms
    );
    let _ = writeln!(
        out,
        "stalls: {} ({:.2} per viewer-hour), stalled {:.1} s, rebuffering ratio {:.5}; {} segments skipped, {} resyncs",
        s.stalls, v.stalls_per_viewer_hour, s.stall_secs, v.rebuffering_ratio, s.skipped_segments, s.resyncs
    );
    let m = &v.moves;
    let _ = writeln!(
        out,
        "moves: {} edge changes ({} viewers); {} router failovers ({} viewers); failed segments: {} viewers, at most {} each",
        m.edge_changes,
        m.viewers_changed_edge,
        m.failovers,
        m.viewers_failed_over,
        m.viewers_failed_segment,
        m.most_failed_segments
    );
    let per_viewer = if v.arrived == 0 {
        0.0
    } else {
        m.pathway_switches as f64 / v.arrived as f64
    };
    let _ = writeln!(
        out,
        "steering: {} pathway switches ({} viewers, {per_viewer:.2} per viewer, at most {}); {} steering manifest fetches; {} listed URI changes",
        m.pathway_switches,
        m.viewers_switched_pathway,
        m.most_pathway_switches,
        s.steering_fetches,
        s.listed_uri_changes
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max"
    );
    for c in &r.latency {
        let p = &c.latency;
        let _ = writeln!(
            out,
            "{:<16} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            c.class.name(),
            p.count,
            p.p50_ms,
            p.p90_ms,
            p.p99_ms,
            p.p999_ms,
            p.max_ms
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<16} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "requests", "count", "errors", "error %", "slow", "slow %"
    );
    for (name, k) in &r.requests {
        let _ = writeln!(
            out,
            "{:<16} {:>9} {:>9} {:>9.3} {:>9} {:>9.3}",
            name,
            k.requests,
            k.errors,
            k.error_rate * 100.0,
            k.slow,
            k.slow_rate * 100.0
        );
    }
    for (reason, n) in &r.errors {
        let _ = writeln!(out, "  error {reason}: {n}");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<22} {:<8} {:>8} {:>8} {:>9} {:>10} {:>10}",
        "edge", "id", "viewers", "at end", "segments", "MB", "Mbit/s"
    );
    for e in &r.edges {
        let _ = writeln!(
            out,
            "{:<22} {:<8} {:>8} {:>8} {:>9} {:>10.1} {:>10.2}",
            e.edge,
            e.id.as_deref().unwrap_or("-"),
            e.viewers,
            e.viewers_at_end,
            e.segments,
            e.bytes as f64 / 1e6,
            e.egress_mbps
        );
    }
    let c = &r.cache;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "cache: hit ratio {}; {} unique segments; edge origin fetches {}; origin GETs {} (router playlist fetches {}); origin requests per unique segment {}",
        opt(c.hit_ratio, 4),
        c.unique_segments,
        c.edge_origin_fetches
            .map_or_else(|| "n/a".into(), |n| n.to_string()),
        c.origin_requests.map_or_else(|| "n/a".into(), |n| n.to_string()),
        c.router_playlist_fetches
            .map_or_else(|| "n/a".into(), |n| n.to_string()),
        opt(c.origin_requests_per_unique_segment, 3),
    );
    let i = &r.invariants;
    let kinds: Vec<String> = i.violations.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(
        out,
        "invariants: {} media playlists checked, {} of {} segment URLs probed; violations {} ({})",
        i.playlists_checked,
        i.uris_probed,
        i.uris_seen,
        i.violations_total,
        kinds.join(", ")
    );
    for v in &i.first_violations {
        let _ = writeln!(out, "  violation {v}");
    }
    let _ = writeln!(out, "{}", summary(r));
    out
}

/// One line for scripts: `summary: viewers=50 with_edge=50 stalls=0 ...`.
pub fn summary(r: &PlayersReport) -> String {
    let v = &r.viewers;
    let errors: u64 = r.requests.values().map(|k| k.errors).sum();
    let slow: u64 = r.requests.values().map(|k| k.slow).sum();
    let p99 = |i: usize| r.latency.get(i).map_or(0.0, |c| c.latency.p99_ms);
    format!(
        "summary: viewers={} with_edge={} sessions={} stalls={} stall_secs={:.1} gave_up={} errors={} slow={} startup_p99_ms={:.0} media_p99_ms={:.1} segment_p99_ms={:.1} hit_ratio={} origin_per_segment={} failovers={} violations={} edge_changes={} pathway_switches={} steering_fetches={} listed_uri_changes={}",
        v.arrived,
        v.with_edge,
        v.sessions.sessions,
        v.sessions.stalls,
        v.sessions.stall_secs,
        v.sessions.gave_up,
        errors,
        slow,
        v.startup.p99_ms,
        p99(1),
        p99(3),
        opt(r.cache.hit_ratio, 4),
        opt(r.cache.origin_requests_per_unique_segment, 3),
        v.moves.failovers,
        r.invariants.violations_total,
        v.moves.edge_changes,
        v.moves.pathway_switches,
        v.sessions.steering_fetches,
        v.sessions.listed_uri_changes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(text: &str) -> Option<Vec<Sample>> {
        Some(prometheus::parse(text))
    }

    #[test]
    fn cache_figures_from_metric_deltas() {
        let before = Scrape {
            origin: samples("hlscdn_origin_requests_total{method=\"GET\",status=\"200\"} 100\n"),
            edges: vec![
                (
                    "e1".into(),
                    samples(
                        "hlscdn_edge_cache_hits_total 10\nhlscdn_edge_cache_misses_total 5\nhlscdn_edge_cache_collapsed_total 0\n",
                    ),
                ),
                ("e2".into(), None),
            ],
            routers: vec![(
                "r1".into(),
                samples("hlscdn_router_playlist_cache_total{result=\"miss\"} 7\n"),
            )],
        };
        let after = Scrape {
            origin: samples(
                "hlscdn_origin_requests_total{method=\"GET\",status=\"200\"} 160\nhlscdn_origin_requests_total{method=\"GET\",status=\"404\"} 2\n",
            ),
            edges: vec![
                (
                    "e1".into(),
                    samples(
                        "hlscdn_edge_cache_hits_total 100\nhlscdn_edge_cache_misses_total 35\nhlscdn_edge_cache_collapsed_total 5\n",
                    ),
                ),
                ("e2".into(), samples("hlscdn_edge_cache_hits_total 1\n")),
            ],
            routers: vec![(
                "r1".into(),
                samples("hlscdn_router_playlist_cache_total{result=\"miss\"} 19\n"),
            )],
        };
        let c = cache_figures(&before, &after, 25);
        assert_eq!(c.edges.len(), 1, "an edge without a before scrape is left out");
        assert_eq!(
            (c.edges[0].hits, c.edges[0].misses, c.edges[0].collapsed),
            (90, 30, 5)
        );
        assert_eq!(c.hit_ratio, Some(90.0 / 125.0));
        assert_eq!(c.edge_origin_fetches, Some(30));
        assert_eq!(c.origin_requests, Some(62));
        assert_eq!(c.router_playlist_fetches, Some(12));
        assert_eq!(c.origin_segment_requests, Some(50));
        assert_eq!(c.origin_requests_per_unique_segment, Some(2.0));

        let none = cache_figures(&Scrape::default(), &Scrape::default(), 0);
        assert_eq!(none.hit_ratio, None);
        assert_eq!(none.origin_requests_per_unique_segment, None);
    }

    #[test]
    fn timeline_egress_is_the_byte_delta() {
        let s = |secs: f64, edges: &[&str], viewers: Vec<u64>, bytes: Vec<u64>| TimelineSample {
            secs,
            active: 2,
            stalled: 0,
            edges: edges.iter().map(|e| (*e).to_owned()).collect(),
            viewers,
            bytes,
        };
        let t = timeline(&[
            s(1.0, &["a"], vec![1], vec![125_000]),
            s(2.0, &["a", "b"], vec![1, 1], vec![250_000, 250_000]),
        ]);
        assert_eq!(t.edges, ["a", "b"]);
        assert_eq!(t.viewers, [vec![1, 1], vec![0, 1]]);
        assert_eq!(t.egress_mbps, [vec![1.0, 1.0], vec![0.0, 2.0]]);
    }
}
