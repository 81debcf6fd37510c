//! What a `players` run measures: latency histograms (HDR), request and error
//! counts, per-edge tallies, and the players' sessions. Pure: times come in as
//! arguments; the driver holds one [`Recorder`] behind a mutex.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::player::PlayerStats;

/// Request classes with a latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Multivariant playlist, whole response.
    Master,
    /// Media playlist, whole response.
    Media,
    /// Segment, time to the response head (first byte).
    SegmentTtfb,
    /// Segment, whole download.
    Segment,
}

impl Class {
    /// Every class, in report order.
    pub const ALL: [Class; 4] = [Class::Master, Class::Media, Class::SegmentTtfb, Class::Segment];

    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Class::Master => "master",
            Class::Media => "media playlist",
            Class::SegmentTtfb => "segment ttfb",
            Class::Segment => "segment",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Largest latency a histogram holds: 10 minutes, in microseconds (longer
/// values are clamped to it).
const MAX_MICROS: u64 = 600_000_000;

fn histogram() -> Histogram<u64> {
    // Constant bounds that `new_with_bounds` accepts (low ≥ 1, high ≥ 2 × low, sigfig ≤ 5).
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_MICROS)
}

/// Percentiles of a latency histogram, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest value.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

/// Bucket upper bounds, milliseconds, of the histograms in reports and charts.
pub const BUCKETS_MS: [f64; 18] = [
    0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10_000.0,
    30_000.0, 600_000.0,
];

/// One bucket of a latency histogram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// Upper bound, milliseconds (the previous bucket's bound is the lower one).
    pub le_ms: f64,
    /// Values in the bucket.
    pub count: u64,
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    let ms = |v: u64| v as f64 / 1000.0;
    Percentiles {
        count: h.len(),
        p50_ms: ms(h.value_at_quantile(0.5)),
        p90_ms: ms(h.value_at_quantile(0.9)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        p999_ms: ms(h.value_at_quantile(0.999)),
        max_ms: ms(h.max()),
        mean_ms: h.mean() / 1000.0,
    }
}

fn buckets(h: &Histogram<u64>) -> Vec<Bucket> {
    let mut counts = [0u64; BUCKETS_MS.len()];
    for v in h.iter_recorded() {
        let ms = h.median_equivalent(v.value_iterated_to()) as f64 / 1000.0;
        let i = BUCKETS_MS
            .iter()
            .position(|&le| ms <= le)
            .unwrap_or(BUCKETS_MS.len() - 1);
        counts[i] += v.count_at_value();
    }
    BUCKETS_MS
        .iter()
        .zip(counts)
        .map(|(&le_ms, count)| Bucket { le_ms, count })
        .collect()
}

/// Per-edge tallies.
#[derive(Debug, Clone, Default)]
struct EdgeTally {
    name: String,
    bytes: u64,
    segments: u64,
    errors: u64,
    viewers: HashSet<usize>,
}

/// One segment request, as [`Recorder::segment`] records it.
#[derive(Debug, Clone, Copy)]
pub struct SegmentRecord<'a> {
    /// The viewer's number.
    pub viewer: usize,
    /// The edge, `host:port`.
    pub edge: &'a str,
    /// The object (URL path).
    pub object: &'a str,
    /// Time to the response head, if one came.
    pub ttfb: Option<Duration>,
    /// Time to the last byte (or the failure).
    pub elapsed: Duration,
    /// Body bytes received.
    pub bytes: u64,
    /// Why it failed, if it did.
    pub error: Option<&'a str>,
}

/// Totals over every finished player session.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sessions {
    /// Sessions (a viewer that plays a VOD to its end starts another).
    pub sessions: u64,
    /// Sessions whose playback started.
    pub started: u64,
    /// Sessions that never started playing.
    pub never_started: u64,
    /// Sessions whose player gave up.
    pub gave_up: u64,
    /// Stalls after playback started.
    pub stalls: u64,
    /// Time stalled, seconds.
    pub stall_secs: f64,
    /// Time playing, seconds.
    pub play_secs: f64,
    /// Time watching (from the first request to the end), seconds.
    pub watch_secs: f64,
    /// Segments downloaded.
    pub segments: u64,
    /// Segments skipped after retries.
    pub skipped_segments: u64,
    /// Jumps back to the live edge.
    pub resyncs: u64,
    /// Rendition switches.
    pub switches: u64,
    /// Pathway switches (Content Steering).
    pub pathway_switches: u64,
    /// Steering manifest requests.
    pub steering_fetches: u64,
    /// Listed segments or parts whose host or path changed within one media
    /// playlist URL, as the players counted them (hls.js `LEVEL_PARSING_ERROR`).
    pub listed_uri_changes: u64,
    /// Sessions by final rendition.
    pub renditions: BTreeMap<String, u64>,
    /// Why players gave up, with counts.
    pub gave_up_reasons: BTreeMap<String, u64>,
}

/// Everything a run records; see the module docs.
#[derive(Debug)]
pub struct Recorder {
    slow: Duration,
    latency: [Histogram<u64>; 4],
    startup: Histogram<u64>,
    /// Requests, errors and slow requests per kind (master, media, segment, steering).
    requests: [u64; 4],
    errors: [u64; 4],
    slow_requests: [u64; 4],
    error_kinds: BTreeMap<String, u64>,
    edges: Vec<EdgeTally>,
    edge_index: HashMap<String, usize>,
    unique_objects: HashSet<String>,
    viewer_edge: Vec<Option<usize>>,
    /// Per viewer: segments that came from another edge than the one before.
    edge_changes: Vec<u32>,
    /// Per viewer: playlist requests retried on the next router.
    failovers: Vec<u32>,
    /// Per viewer: failed segment requests.
    segment_errors: Vec<u32>,
    /// Per viewer: pathway switches of its finished sessions.
    pathway_switches: Vec<u32>,
    sessions: Sessions,
}

/// Viewers moving between edges (by their segments) and between routers
/// (failovers of their playlist requests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Moves {
    /// Segments that came from another edge than the viewer's previous one.
    pub edge_changes: u64,
    /// Viewers with at least one edge change.
    pub viewers_changed_edge: u64,
    /// Playlist requests retried on the next router after a transport failure.
    pub failovers: u64,
    /// Viewers that failed over at least once.
    pub viewers_failed_over: u64,
    /// Viewers with at least one failed segment request.
    pub viewers_failed_segment: u64,
    /// The most failed segment requests of one viewer.
    pub most_failed_segments: u64,
    /// The most failed segment requests of one viewer beyond its edge
    /// changes: 0 when every failed segment made the viewer move (a player
    /// that fails over at once fails at most one segment per move).
    pub most_failed_segments_beyond_moves: u64,
    /// Pathway switches (Content Steering) of finished sessions.
    pub pathway_switches: u64,
    /// Viewers that switched pathway at least once.
    pub viewers_switched_pathway: u64,
    /// The most pathway switches of one viewer.
    pub most_pathway_switches: u64,
}

/// The request kinds counted for errors and slowness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Multivariant playlist.
    Master,
    /// Media playlist.
    Media,
    /// Segment.
    Segment,
    /// Steering manifest.
    Steering,
}

impl Kind {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Master => "master",
            Kind::Media => "media playlist",
            Kind::Segment => "segment",
            Kind::Steering => "steering",
        }
    }

    /// Every kind.
    pub const ALL: [Kind; 4] = [Kind::Master, Kind::Media, Kind::Segment, Kind::Steering];
}

/// Request figures of one kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindFigures {
    /// Requests sent.
    pub requests: u64,
    /// Failed: connection error, timeout, non-2xx status, unusable body.
    pub errors: u64,
    /// `errors / requests`.
    pub error_rate: f64,
    /// Slower than the run's slow threshold.
    pub slow: u64,
    /// `slow / requests`.
    pub slow_rate: f64,
}

/// Latency figures of one class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassFigures {
    /// The class.
    pub class: Class,
    /// Percentiles.
    pub latency: Percentiles,
    /// Histogram buckets.
    pub histogram: Vec<Bucket>,
}

/// One edge's tallies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeFigures {
    /// `host:port` of the segment URLs.
    pub edge: String,
    /// Distinct viewers that fetched a segment there.
    pub viewers: u64,
    /// Viewers whose latest segment came from there.
    pub viewers_now: u64,
    /// Body bytes received from it.
    pub bytes: u64,
    /// Segments received from it.
    pub segments: u64,
    /// Failed segment requests.
    pub errors: u64,
}

impl Recorder {
    /// A recorder for `viewers` viewers; requests slower than `slow` count as slow.
    pub fn new(viewers: usize, slow: Duration) -> Self {
        Recorder {
            slow,
            latency: [histogram(), histogram(), histogram(), histogram()],
            startup: histogram(),
            requests: [0; 4],
            errors: [0; 4],
            slow_requests: [0; 4],
            error_kinds: BTreeMap::new(),
            edges: Vec::new(),
            edge_index: HashMap::new(),
            unique_objects: HashSet::new(),
            viewer_edge: vec![None; viewers],
            edge_changes: vec![0; viewers],
            failovers: vec![0; viewers],
            segment_errors: vec![0; viewers],
            pathway_switches: vec![0; viewers],
            sessions: Sessions::default(),
        }
    }

    fn count(&mut self, kind: Kind, elapsed: Duration, error: Option<&str>) {
        let i = kind as usize;
        self.requests[i] += 1;
        if elapsed > self.slow {
            self.slow_requests[i] += 1;
        }
        if let Some(error) = error {
            self.errors[i] += 1;
            *self
                .error_kinds
                .entry(format!("{}: {error}", kind.name()))
                .or_default() += 1;
        }
    }

    /// A playlist request that took `elapsed`; `error` if it failed.
    pub fn playlist(&mut self, master: bool, elapsed: Duration, error: Option<&str>) {
        let (kind, class) = if master {
            (Kind::Master, Class::Master)
        } else {
            (Kind::Media, Class::Media)
        };
        self.count(kind, elapsed, error);
        if error.is_none() {
            self.latency[class.index()].saturating_record(micros(elapsed));
        }
    }

    /// A steering manifest request that took `elapsed`; `error` if it failed.
    pub fn steering(&mut self, elapsed: Duration, error: Option<&str>) {
        self.count(Kind::Steering, elapsed, error);
    }

    /// A segment request.
    pub fn segment(&mut self, s: &SegmentRecord<'_>) {
        let SegmentRecord {
            viewer,
            edge,
            object,
            ttfb,
            elapsed,
            bytes,
            error,
        } = *s;
        self.count(Kind::Segment, elapsed, error);
        let index = match self.edge_index.get(edge) {
            Some(&i) => i,
            None => {
                self.edges.push(EdgeTally {
                    name: edge.to_owned(),
                    ..EdgeTally::default()
                });
                self.edge_index.insert(edge.to_owned(), self.edges.len() - 1);
                self.edges.len() - 1
            }
        };
        let tally = &mut self.edges[index];
        tally.bytes += bytes;
        if let Some(ttfb) = ttfb {
            self.latency[Class::SegmentTtfb.index()].saturating_record(micros(ttfb));
        }
        if error.is_some() {
            tally.errors += 1;
            if let Some(n) = self.segment_errors.get_mut(viewer) {
                *n += 1;
            }
            return;
        }
        tally.segments += 1;
        tally.viewers.insert(viewer);
        self.latency[Class::Segment.index()].saturating_record(micros(elapsed));
        if let Some(slot) = self.viewer_edge.get_mut(viewer) {
            if slot.is_some_and(|previous| previous != index)
                && let Some(changes) = self.edge_changes.get_mut(viewer)
            {
                *changes += 1;
            }
            *slot = Some(index);
        }
        self.object(object);
    }

    /// An object (URL path) an edge served other than to a viewer's segment
    /// request: a probe of the invariant checker. It counts among the unique
    /// objects, since the edges fetched it from the origin like any other.
    pub fn object(&mut self, object: &str) {
        if !self.unique_objects.contains(object) {
            self.unique_objects.insert(object.to_owned());
        }
    }

    /// A playlist request of `viewer` went to the next router.
    pub fn failover(&mut self, viewer: usize) {
        if let Some(n) = self.failovers.get_mut(viewer) {
            *n += 1;
        }
    }

    /// Edge changes and failovers so far.
    pub fn moves(&self) -> Moves {
        let total = |v: &[u32]| v.iter().map(|&n| u64::from(n)).sum();
        let viewers = |v: &[u32]| v.iter().filter(|&&n| n > 0).count() as u64;
        Moves {
            edge_changes: total(&self.edge_changes),
            viewers_changed_edge: viewers(&self.edge_changes),
            failovers: total(&self.failovers),
            viewers_failed_over: viewers(&self.failovers),
            viewers_failed_segment: viewers(&self.segment_errors),
            most_failed_segments: self.segment_errors.iter().copied().max().map_or(0, u64::from),
            most_failed_segments_beyond_moves: self
                .segment_errors
                .iter()
                .zip(&self.edge_changes)
                .map(|(&failed, &moved)| u64::from(failed.saturating_sub(moved)))
                .max()
                .unwrap_or(0),
            pathway_switches: total(&self.pathway_switches),
            viewers_switched_pathway: viewers(&self.pathway_switches),
            most_pathway_switches: self.pathway_switches.iter().copied().max().map_or(0, u64::from),
        }
    }

    /// A finished player session of `viewer`.
    pub fn session(&mut self, viewer: usize, stats: &PlayerStats) {
        if let Some(n) = self.pathway_switches.get_mut(viewer) {
            *n += stats.pathway_switches;
        }
        let s = &mut self.sessions;
        s.sessions += 1;
        match stats.startup {
            Some(startup) => {
                s.started += 1;
                self.startup.saturating_record(micros(startup));
            }
            None => s.never_started += 1,
        }
        if let Some(reason) = &stats.gave_up {
            s.gave_up += 1;
            *s.gave_up_reasons.entry(reason.clone()).or_default() += 1;
        }
        s.stalls += u64::from(stats.stalls);
        s.stall_secs += stats.stall_time.as_secs_f64();
        s.play_secs += stats.play_time.as_secs_f64();
        s.watch_secs += stats.watch_time.as_secs_f64();
        s.segments += stats.segments;
        s.skipped_segments += u64::from(stats.skipped_segments);
        s.resyncs += u64::from(stats.resyncs);
        s.switches += u64::from(stats.switches);
        s.pathway_switches += u64::from(stats.pathway_switches);
        s.steering_fetches += u64::from(stats.steering_fetches);
        s.listed_uri_changes += u64::from(stats.listed_uri_changes);
        if let Some(rendition) = &stats.rendition {
            *s.renditions.entry(rendition.clone()).or_default() += 1;
        }
    }

    /// Edge names, in the order of [`Recorder::edge_snapshot`].
    pub fn edge_names(&self) -> Vec<String> {
        self.edges.iter().map(|e| e.name.clone()).collect()
    }

    /// Per edge (in [`Recorder::edge_names`] order): viewers whose latest
    /// segment came from it, and bytes received from it so far.
    pub fn edge_snapshot(&self) -> (Vec<u64>, Vec<u64>) {
        let mut viewers = vec![0u64; self.edges.len()];
        for &i in self.viewer_edge.iter().flatten() {
            viewers[i] += 1;
        }
        (viewers, self.edges.iter().map(|e| e.bytes).collect())
    }

    /// Requests, errors and slow requests of every kind so far.
    pub fn totals(&self) -> (u64, u64, u64) {
        (
            self.requests.iter().sum(),
            self.errors.iter().sum(),
            self.slow_requests.iter().sum(),
        )
    }

    /// A class's percentiles so far.
    pub fn percentiles(&self, class: Class) -> Percentiles {
        percentiles(&self.latency[class.index()])
    }

    /// Startup time percentiles.
    pub fn startup(&self) -> Percentiles {
        percentiles(&self.startup)
    }

    /// Startup time histogram.
    pub fn startup_histogram(&self) -> Vec<Bucket> {
        buckets(&self.startup)
    }

    /// Latency figures of every class.
    pub fn classes(&self) -> Vec<ClassFigures> {
        Class::ALL
            .iter()
            .map(|&class| ClassFigures {
                class,
                latency: percentiles(&self.latency[class.index()]),
                histogram: buckets(&self.latency[class.index()]),
            })
            .collect()
    }

    /// Request figures of every kind, by name.
    pub fn kinds(&self) -> BTreeMap<&'static str, KindFigures> {
        Kind::ALL
            .iter()
            .map(|&kind| {
                let i = kind as usize;
                let rate = |n: u64| {
                    if self.requests[i] == 0 {
                        0.0
                    } else {
                        n as f64 / self.requests[i] as f64
                    }
                };
                (
                    kind.name(),
                    KindFigures {
                        requests: self.requests[i],
                        errors: self.errors[i],
                        error_rate: rate(self.errors[i]),
                        slow: self.slow_requests[i],
                        slow_rate: rate(self.slow_requests[i]),
                    },
                )
            })
            .collect()
    }

    /// Errors by kind and reason.
    pub fn error_kinds(&self) -> &BTreeMap<String, u64> {
        &self.error_kinds
    }

    /// Every edge's tallies, busiest first.
    pub fn edges(&self) -> Vec<EdgeFigures> {
        let (now, _) = self.edge_snapshot();
        let mut edges: Vec<EdgeFigures> = self
            .edges
            .iter()
            .zip(now)
            .map(|(e, viewers_now)| EdgeFigures {
                edge: e.name.clone(),
                viewers: e.viewers.len() as u64,
                viewers_now,
                bytes: e.bytes,
                segments: e.segments,
                errors: e.errors,
            })
            .collect();
        edges.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.edge.cmp(&b.edge)));
        edges
    }

    /// Viewers (of the first `arrived`) that got at least one segment from an edge.
    pub fn viewers_with_edge(&self, arrived: usize) -> u64 {
        let mut seen = vec![false; arrived];
        for e in &self.edges {
            for &v in &e.viewers {
                if let Some(s) = seen.get_mut(v) {
                    *s = true;
                }
            }
        }
        seen.iter().filter(|&&s| s).count() as u64
    }

    /// Distinct segment objects (URL paths) fetched by viewers or probes.
    pub fn unique_objects(&self) -> u64 {
        self.unique_objects.len() as u64
    }

    /// The finished sessions' totals.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_buckets() {
        let mut r = Recorder::new(2, Duration::from_millis(500));
        for ms in 1..=1000u64 {
            r.playlist(false, Duration::from_millis(ms), None);
        }
        r.playlist(true, Duration::from_millis(3), Some("status 502"));
        let p = r.percentiles(Class::Media);
        assert_eq!(p.count, 1000);
        assert!((p.p50_ms - 500.0).abs() < 1.0, "{p:?}");
        assert!((p.p99_ms - 990.0).abs() < 1.0, "{p:?}");
        assert!((p.max_ms - 1000.0).abs() < 1.0, "{p:?}");
        let kinds = r.kinds();
        assert_eq!(kinds["media playlist"].slow, 500);
        assert_eq!(kinds["master"].errors, 1);
        assert_eq!(kinds["master"].error_rate, 1.0);
        assert_eq!(r.error_kinds()["master: status 502"], 1);
        let media = &r.classes()[1];
        let total: u64 = media.histogram.iter().map(|b| b.count).sum();
        assert_eq!(total, 1000);
    }

    #[test]
    fn edges_viewers_and_objects() {
        let mut r = Recorder::new(3, Duration::from_secs(1));
        let ms = Duration::from_millis;
        let seg = |viewer, edge, object, ttfb, bytes, error| SegmentRecord {
            viewer,
            edge,
            object,
            ttfb,
            elapsed: ms(2),
            bytes,
            error,
        };
        r.segment(&seg(0, "e1:1", "/a/1.ts", Some(ms(1)), 100, None));
        r.segment(&seg(0, "e2:1", "/a/2.ts", Some(ms(1)), 100, None));
        r.segment(&seg(1, "e1:1", "/a/1.ts", Some(ms(1)), 100, None));
        r.segment(&seg(2, "e2:1", "/a/3.ts", None, 0, Some("timeout")));
        assert_eq!(r.unique_objects(), 2);
        r.object("/a/1.ts");
        r.object("/a/0.ts");
        assert_eq!(r.unique_objects(), 3);
        assert_eq!(r.viewers_with_edge(3), 2);
        let (now, bytes) = r.edge_snapshot();
        assert_eq!(now, [1, 1]);
        assert_eq!(bytes, [200, 100]);
        let edges = r.edges();
        assert_eq!(edges[0].edge, "e1:1");
        assert_eq!(edges[0].viewers, 2);
        assert_eq!(edges[1].errors, 1);
        // Viewer 0 went from e1 to e2; a failed fetch is no change.
        assert_eq!((r.moves().edge_changes, r.moves().viewers_changed_edge), (1, 1));
        r.segment(&seg(0, "e1:1", "/a/3.ts", Some(ms(1)), 100, None));
        r.segment(&seg(1, "e1:1", "/a/3.ts", Some(ms(1)), 100, None));
        r.failover(2);
        r.failover(2);
        r.failover(7); // not a viewer of this run: ignored
        r.session(
            0,
            &PlayerStats {
                pathway_switches: 2,
                ..PlayerStats::default()
            },
        );
        assert_eq!(
            r.moves(),
            Moves {
                edge_changes: 2,
                viewers_changed_edge: 1,
                failovers: 2,
                viewers_failed_over: 1,
                viewers_failed_segment: 1,
                most_failed_segments: 1,
                // Viewer 2 failed a segment and never moved.
                most_failed_segments_beyond_moves: 1,
                pathway_switches: 2,
                viewers_switched_pathway: 1,
                most_pathway_switches: 2,
            }
        );
    }

    #[test]
    fn sessions_add_up() {
        let mut r = Recorder::new(1, Duration::from_secs(1));
        r.session(
            0,
            &PlayerStats {
                startup: Some(Duration::from_millis(200)),
                stalls: 2,
                stall_time: Duration::from_secs(3),
                play_time: Duration::from_secs(57),
                watch_time: Duration::from_secs(60),
                rendition: Some("480p".into()),
                steering_fetches: 12,
                listed_uri_changes: 1,
                ..PlayerStats::default()
            },
        );
        r.session(
            0,
            &PlayerStats {
                gave_up: Some("no".into()),
                steering_fetches: 3,
                ..PlayerStats::default()
            },
        );
        let s = r.sessions();
        assert_eq!(
            (s.sessions, s.started, s.never_started, s.gave_up, s.stalls),
            (2, 1, 1, 1, 2)
        );
        assert_eq!(s.renditions["480p"], 1);
        assert_eq!((s.steering_fetches, s.listed_uri_changes), (15, 1));
        assert!((r.startup().p50_ms - 200.0).abs() < 0.5);
    }
}
