//! The load meter: what the edge carries, from cumulative counters sampled
//! at given instants. Pure code: time comes in as arguments, no I/O.
//!
//! Rates (egress, requests, cache hits, per-stream egress) are time-decayed
//! exponential moving averages in the manner of linkerd's `Ewma`: a sample
//! covering `dt` moves the average towards the sample's rate by
//! `1 - exp(-dt / window)`, so unevenly spaced samples weigh what they cover
//! and a stopped flow decays to 1/e of its rate in one window.
//!
//! Stream keys: an object `a/b/c/seg.ts` belongs to stream `a/b|c` (the
//! directory minus its last level, `|`, the last level, which is the
//! rendition in the usual `<stream>/<rendition>/<segment>` layout); an object
//! directly in `a/` belongs to `a`, one at the top level to `/`. See
//! [`stream_of`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use router_api::fleet::{HotStream, Load};

/// Cumulative counters since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Body bytes sent to viewers.
    pub bytes_out: u64,
    /// Object requests answered.
    pub requests: u64,
    /// Object requests answered from the cache.
    pub hits: u64,
    /// Object requests that looked in the cache (hits, misses and collapsed waiters).
    pub lookups: u64,
}

/// Instantaneous readings, taken as they are.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gauges {
    /// Open client connections.
    pub connections: u64,
    /// Bytes held in the cache.
    pub cache_bytes: u64,
    /// CPU use of the process since the previous sample, 0 to 1 of all cores.
    pub cpu: f64,
}

#[derive(Debug, Clone, Copy)]
struct StreamRate {
    last_total: u64,
    bps: f64,
}

/// Load of one edge, built from samples.
#[derive(Debug, Clone)]
pub struct LoadMeter {
    window: f64,
    last: Option<(Instant, Totals)>,
    egress_bps: f64,
    requests_per_sec: f64,
    hits_per_sec: f64,
    lookups_per_sec: f64,
    hit_ratio: f64,
    gauges: Gauges,
    streams: HashMap<Arc<str>, StreamRate>,
}

impl LoadMeter {
    /// A meter whose averages have time constant `window`.
    pub fn new(window: Duration) -> Self {
        LoadMeter {
            window: window.as_secs_f64().max(1e-3),
            last: None,
            egress_bps: 0.0,
            requests_per_sec: 0.0,
            hits_per_sec: 0.0,
            lookups_per_sec: 0.0,
            hit_ratio: 0.0,
            gauges: Gauges::default(),
            streams: HashMap::new(),
        }
    }

    /// Takes a sample at `now`: cumulative `totals`, current `gauges`, and
    /// each stream's cumulative egress bytes. The first sample only sets the
    /// baseline; a sample not later than the previous one changes only gauges.
    /// Streams counted since their counter was created start from 0.
    pub fn observe(&mut self, now: Instant, totals: Totals, gauges: Gauges, streams: &[(Arc<str>, u64)]) {
        self.gauges = Gauges {
            cpu: if gauges.cpu.is_finite() {
                gauges.cpu.clamp(0.0, 1.0)
            } else {
                0.0
            },
            ..gauges
        };
        let Some((then, before)) = self.last else {
            self.last = Some((now, totals));
            for (name, total) in streams {
                self.streams.insert(
                    name.clone(),
                    StreamRate {
                        last_total: *total,
                        bps: 0.0,
                    },
                );
            }
            return;
        };
        let dt = now.saturating_duration_since(then).as_secs_f64();
        if dt <= 0.0 {
            return;
        }
        let alpha = 1.0 - (-dt / self.window).exp();
        let rate = |after: u64, before: u64| after.saturating_sub(before) as f64 / dt;
        let step = |avg: &mut f64, sample: f64| *avg += alpha * (sample - *avg);
        step(
            &mut self.egress_bps,
            8.0 * rate(totals.bytes_out, before.bytes_out),
        );
        step(&mut self.requests_per_sec, rate(totals.requests, before.requests));
        step(&mut self.hits_per_sec, rate(totals.hits, before.hits));
        step(&mut self.lookups_per_sec, rate(totals.lookups, before.lookups));
        if self.lookups_per_sec > 1e-6 {
            self.hit_ratio = (self.hits_per_sec / self.lookups_per_sec).clamp(0.0, 1.0);
        }
        for (name, total) in streams {
            let entry = self.streams.entry(name.clone()).or_insert(StreamRate {
                last_total: 0,
                bps: 0.0,
            });
            step(&mut entry.bps, 8.0 * rate(*total, entry.last_total));
            entry.last_total = *total;
        }
        self.last = Some((now, totals));
    }

    /// The load as an ad reports it.
    pub fn load(&self) -> Load {
        Load {
            egress_bps: self.egress_bps.round() as u64,
            connections: self.gauges.connections,
            requests_per_sec: self.requests_per_sec,
            cache_hit_ratio: self.hit_ratio,
            cache_bytes: self.gauges.cache_bytes,
            cpu: self.gauges.cpu,
        }
    }

    /// Egress of one stream, bits per second (0 for an unknown stream).
    pub fn stream_bps(&self, stream: &str) -> f64 {
        self.streams.get(stream).map_or(0.0, |s| s.bps)
    }

    /// Stops tracking the streams for which `keep` is false.
    pub fn retain_streams(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.streams.retain(|name, _| keep(name));
    }

    /// Number of streams tracked.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// The `n` streams with the most egress (at least 1 bit/s), busiest
    /// first; ties broken by name so that the list is deterministic.
    pub fn hot_streams(&self, n: usize) -> Vec<HotStream> {
        let mut hot: Vec<(&Arc<str>, f64)> = self
            .streams
            .iter()
            .filter(|(_, s)| s.bps >= 1.0)
            .map(|(name, s)| (name, s.bps))
            .collect();
        hot.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        hot.into_iter()
            .take(n)
            .map(|(name, bps)| HotStream {
                stream: name.to_string(),
                egress_bps: bps.round() as u64,
            })
            .collect()
    }
}

/// The stream key of an object key (see the module docs): `live/demo-1/720p/seg-9.ts`
/// → `live/demo-1|720p`; `live/seg-9.ts` → `live`; `seg-9.ts` → `/`.
pub fn stream_of(key: &str) -> String {
    let Some((dir, _file)) = key.rsplit_once('/') else {
        return "/".to_owned();
    };
    match dir.rsplit_once('/') {
        Some((stream, rendition)) => format!("{stream}|{rendition}"),
        None => dir.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;

    fn totals(bytes_out: u64, requests: u64, hits: u64, lookups: u64) -> Totals {
        Totals {
            bytes_out,
            requests,
            hits,
            lookups,
        }
    }

    #[test]
    fn steady_rates_converge_and_stopped_ones_decay() {
        let t0 = Instant::now();
        let mut meter = LoadMeter::new(Duration::from_secs(2));
        meter.observe(t0, Totals::default(), Gauges::default(), &[]);
        assert_eq!(meter.load().egress_bps, 0, "the first sample is the baseline");
        // 1 MB and 10 requests (9 hits) every second, for 30 s.
        for s in 1..=30u64 {
            let t = t0 + Duration::from_secs(s);
            meter.observe(t, totals(s * MB, s * 10, s * 9, s * 10), Gauges::default(), &[]);
        }
        let load = meter.load();
        assert!(
            (load.egress_bps as f64 - 8e6).abs() < 8e6 * 1e-3,
            "{}",
            load.egress_bps
        );
        assert!((load.requests_per_sec - 10.0).abs() < 0.01);
        assert!((load.cache_hit_ratio - 0.9).abs() < 1e-6);
        // Nothing more for one window: down to 1/e.
        let t = t0 + Duration::from_secs(32);
        meter.observe(t, totals(30 * MB, 300, 270, 300), Gauges::default(), &[]);
        let decayed = meter.load().egress_bps as f64;
        assert!(
            (decayed - 8e6 / std::f64::consts::E).abs() < 8e6 * 0.01,
            "{decayed}"
        );
        assert!(
            (meter.load().cache_hit_ratio - 0.9).abs() < 1e-6,
            "an idle edge keeps its ratio"
        );
    }

    #[test]
    fn uneven_steps_weigh_what_they_cover() {
        let t0 = Instant::now();
        let mut a = LoadMeter::new(Duration::from_secs(1));
        let mut b = LoadMeter::new(Duration::from_secs(1));
        a.observe(t0, Totals::default(), Gauges::default(), &[]);
        b.observe(t0, Totals::default(), Gauges::default(), &[]);
        // The same constant flow, sampled once after 2 s or twice a second.
        a.observe(
            t0 + Duration::from_secs(2),
            totals(2 * MB, 0, 0, 0),
            Gauges::default(),
            &[],
        );
        for i in 1..=4u64 {
            b.observe(
                t0 + Duration::from_millis(500 * i),
                totals(i * MB / 2, 0, 0, 0),
                Gauges::default(),
                &[],
            );
        }
        let (ea, eb) = (a.load().egress_bps as f64, b.load().egress_bps as f64);
        assert!((ea - eb).abs() < 1.0, "{ea} vs {eb}");
        // A sample at the same instant changes nothing.
        a.observe(
            t0 + Duration::from_secs(2),
            totals(9 * MB, 0, 0, 0),
            Gauges::default(),
            &[],
        );
        assert_eq!(a.load().egress_bps as f64, ea);
    }

    #[test]
    fn gauges_pass_through_clamped() {
        let t0 = Instant::now();
        let mut meter = LoadMeter::new(Duration::from_secs(1));
        let g = Gauges {
            connections: 7,
            cache_bytes: 1234,
            cpu: 1.7,
        };
        meter.observe(t0, Totals::default(), g, &[]);
        let load = meter.load();
        assert_eq!((load.connections, load.cache_bytes, load.cpu), (7, 1234, 1.0));
        meter.observe(t0, Totals::default(), Gauges { cpu: f64::NAN, ..g }, &[]);
        assert_eq!(meter.load().cpu, 0.0);
    }

    #[test]
    fn hot_streams_are_ranked_and_forgotten() {
        let t0 = Instant::now();
        let mut meter = LoadMeter::new(Duration::from_secs(1));
        let (a, b, c): (Arc<str>, Arc<str>, Arc<str>) =
            ("live/a|720p".into(), "live/b|720p".into(), "vod/c|1080p".into());
        meter.observe(t0, Totals::default(), Gauges::default(), &[]);
        for s in 1..=10u64 {
            let streams = [(a.clone(), s * MB), (b.clone(), s * 3 * MB), (c.clone(), 0)];
            meter.observe(
                t0 + Duration::from_secs(s),
                Totals::default(),
                Gauges::default(),
                &streams,
            );
        }
        let hot = meter.hot_streams(5);
        let names: Vec<&str> = hot.iter().map(|h| h.stream.as_str()).collect();
        assert_eq!(names, ["live/b|720p", "live/a|720p"], "idle streams are not hot");
        assert!((hot[0].egress_bps as f64 - 24e6).abs() < 24e6 * 1e-3);
        assert_eq!(meter.hot_streams(1).len(), 1);
        meter.retain_streams(|name| name != "live/b|720p");
        assert_eq!(meter.stream_count(), 2);
        assert_eq!(meter.stream_bps("live/b|720p"), 0.0);
    }

    #[test]
    fn a_stream_first_seen_late_counts_from_zero() {
        let t0 = Instant::now();
        let mut meter = LoadMeter::new(Duration::from_secs(1));
        meter.observe(t0, Totals::default(), Gauges::default(), &[]);
        let s: Arc<str> = "x|y".into();
        meter.observe(
            t0 + Duration::from_secs(1),
            Totals::default(),
            Gauges::default(),
            &[(s, MB)],
        );
        assert!(meter.stream_bps("x|y") > 0.0);
    }

    #[test]
    fn stream_keys() {
        assert_eq!(stream_of("live/demo-1/720p/seg-9.ts"), "live/demo-1|720p");
        assert_eq!(stream_of("a/b/c/d/e.m4s"), "a/b/c|d");
        assert_eq!(stream_of("live/seg-9.ts"), "live");
        assert_eq!(stream_of("seg-9.ts"), "/");
    }
}
