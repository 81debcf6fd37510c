//! `simulate`: routing policies compared at internet scale, without a network.
//!
//! A [`World`] is generated once from the [`Scenario`] and its seed: edges with
//! capacities and byte-sized LRU caches, streams with renditions and Zipf
//! popularity (live and VOD), viewers arriving and leaving minute by minute,
//! a few edge failures and a rolling drain. Every policy then runs through the
//! very same world ([`engine::run`], one thread per policy), and the report
//! compares origin egress, edge utilization, overload and viewers moved.
//!
//! Time moves in ticks (a minute by default); viewers are aggregated per
//! (cohort, edge) cell, but each arriving or moving viewer is placed by its
//! own call to the policy — for ours, `selection::select::Selector::pick`.

pub mod engine;
pub mod lru;
pub mod policy;
pub mod world;

use std::fmt::Write as _;
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
pub use engine::PolicyRun;
pub use policy::Policy;
pub use world::World;

/// What to simulate. Every field has a default ([`Scenario::default`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// Edges.
    pub edges: usize,
    /// Streams (each with every rendition).
    pub streams: usize,
    /// Viewers at the peak (after the ramp).
    pub viewers: u64,
    /// Seed of everything random.
    pub seed: u64,
    /// Ticks simulated.
    pub ticks: u32,
    /// Seconds per tick.
    pub tick_secs: f64,
    /// Ticks over which the audience grows to its peak.
    pub ramp_ticks: u32,
    /// Zipf exponent of stream popularity.
    pub zipf: f64,
    /// Share of streams that are VOD.
    pub vod_share: f64,
    /// VOD title length range, ticks.
    pub vod_length_ticks: (u32, u32),
    /// Mean viewing time, ticks (each viewer leaves with probability 1/this per tick).
    pub mean_watch_ticks: f64,
    /// Renditions: `(bitrate bits/s, share of viewers)`.
    pub renditions: Vec<(u64, f64)>,
    /// Fleet utilization at the peak: sets the edges' capacities.
    pub utilization: f64,
    /// Cache size of an edge, in seconds of its full egress.
    pub cache_secs: f64,
    /// Edges that fail (one after the other during the steady phase).
    pub failures: usize,
    /// Ticks a failed edge stays down.
    pub failure_ticks: u32,
    /// Edges drained one after the other (a rolling deploy).
    pub drains: usize,
    /// Ticks each drained edge stays out.
    pub drain_ticks: u32,
    /// Load slack ε of ours.
    pub epsilon: f64,
    /// Virtual nodes per edge of mean capacity on the consistent-hash ring.
    pub vnodes: usize,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            edges: 200,
            streams: 10_000,
            viewers: 1_000_000,
            seed: 1,
            ticks: 90,
            tick_secs: 60.0,
            ramp_ticks: 20,
            zipf: 1.0,
            vod_share: 0.3,
            vod_length_ticks: (30, 120),
            mean_watch_ticks: 45.0,
            renditions: vec![(1_200_000, 0.2), (2_500_000, 0.35), (5_000_000, 0.45)],
            utilization: 0.6,
            cache_secs: 300.0,
            failures: 3,
            failure_ticks: 10,
            drains: 10,
            drain_ticks: 2,
            epsilon: selection::select::DEFAULT_EPSILON,
            vnodes: 100,
        }
    }
}

/// Most edges, streams and viewers a scenario may have.
const MAX_EDGES: usize = 100_000;
const MAX_STREAMS: usize = 10_000_000;
const MAX_VIEWERS: u64 = 100_000_000;
const MAX_TICKS: u32 = 100_000;

impl Scenario {
    /// Checks the values; messages name the flag.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::BadInput(m.to_owned()));
        if self.edges == 0 || self.edges > MAX_EDGES {
            return bad("`--edges` must be within 1..=100000");
        }
        if self.streams == 0 || self.streams > MAX_STREAMS {
            return bad("`--streams` must be within 1..=10000000");
        }
        if self.viewers == 0 || self.viewers > MAX_VIEWERS {
            return bad("`--viewers` must be within 1..=100000000");
        }
        if self.ticks == 0 || self.ticks > MAX_TICKS {
            return bad("`--minutes` must be within 1..=100000");
        }
        if !(self.tick_secs.is_finite() && self.tick_secs > 0.0) {
            return bad("the tick must be > 0 s");
        }
        if !(self.zipf.is_finite() && self.zipf >= 0.0) {
            return bad("`--zipf` must be >= 0");
        }
        if !(0.0..=1.0).contains(&self.vod_share) {
            return bad("`--vod-share` must be within 0..=1");
        }
        if self.vod_length_ticks.0 == 0 || self.vod_length_ticks.0 > self.vod_length_ticks.1 {
            return bad("VOD lengths must be a range of at least one tick");
        }
        if !(self.mean_watch_ticks.is_finite() && self.mean_watch_ticks >= 1.0) {
            return bad("`--watch-minutes` must be >= 1");
        }
        if self.renditions.is_empty()
            || self
                .renditions
                .iter()
                .any(|&(b, s)| b == 0 || !(s.is_finite() && s > 0.0))
        {
            return bad("every rendition needs a bitrate > 0 and a share > 0");
        }
        if !(self.utilization.is_finite() && self.utilization > 0.0 && self.utilization <= 10.0) {
            return bad("`--utilization` must be within (0, 10]");
        }
        if !(self.cache_secs.is_finite() && self.cache_secs >= 0.0) {
            return bad("`--cache-secs` must be >= 0");
        }
        if self.failures + self.drains > self.edges.saturating_sub(1) {
            return bad("`--failures` + `--drains` must leave at least one edge");
        }
        if !(self.epsilon.is_finite() && self.epsilon >= 0.0) {
            return bad("`--epsilon` must be >= 0");
        }
        if self.vnodes == 0 || self.vnodes > 10_000 {
            return bad("`--vnodes` must be within 1..=10000");
        }
        Ok(())
    }
}

/// The world as a whole, for the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorldFigures {
    /// Renditions of streams (rendezvous keys).
    pub keys: usize,
    /// Live streams.
    pub live_streams: usize,
    /// VOD streams.
    pub vod_streams: usize,
    /// Fleet capacity, Gbit/s.
    pub capacity_gbps: f64,
    /// Capacity of the smallest and largest edge, Gbit/s.
    pub edge_capacity_gbps: (f64, f64),
    /// Cache of the smallest and largest edge, GB.
    pub edge_cache_gb: (f64, f64),
    /// Highest demand in any tick, Gbit/s.
    pub peak_demand_gbps: f64,
    /// Viewers at the end.
    pub final_viewers: u64,
    /// Viewer arrivals over the run.
    pub arrivals: u64,
    /// Cohorts formed.
    pub cohorts: usize,
    /// Least possible origin egress over the run, TB.
    pub best_origin_tb: f64,
    /// Edges that failed and edges drained.
    pub failed_edges: Vec<String>,
    /// Edges drained, in order.
    pub drained_edges: Vec<String>,
}

/// The report of a `simulate` run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimReport {
    /// The scenario.
    pub scenario: Scenario,
    /// The generated world.
    pub world: WorldFigures,
    /// Minutes of the ticks, for the series.
    pub minutes: Vec<f64>,
    /// Per tick: demand / fleet capacity.
    pub demand_series: Vec<f64>,
    /// Per tick: least possible origin egress, Gbit/s.
    pub best_origin_gbps_series: Vec<f64>,
    /// One entry per policy, in [`Policy::ALL`] order.
    pub policies: Vec<PolicyRun>,
}

/// Simulates `scenario` under every policy of `policies`; `base` is the
/// simulated clock's zero (any instant: only differences matter).
pub fn simulate(scenario: &Scenario, policies: &[Policy], base: Instant) -> Result<SimReport> {
    let world = World::generate(scenario)?;
    let settings = engine::RunSettings {
        tick_secs: scenario.tick_secs,
        ramp_ticks: scenario.ramp_ticks,
        vnodes: scenario.vnodes,
        epsilon: scenario.epsilon,
        sticky_cap: selection::select::DEFAULT_STICKY_MAX_UTILIZATION,
        seed: scenario.seed,
    };
    let runs: Vec<PolicyRun> = std::thread::scope(|scope| {
        let handles: Vec<_> = policies
            .iter()
            .map(|&p| {
                let world = &world;
                scope.spawn(move || engine::run(world, p, settings, base))
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    if runs.len() != policies.len() {
        return Err(Error::BadInput("a policy's simulation failed".into()));
    }
    let capacity: u64 = world.edges.iter().map(|e| e.capacity_bps).sum();
    let gbps = |bps: f64| bps / 1e9;
    let live = world.keys.iter().filter(|k| k.vod_ticks.is_none()).count() / scenario.renditions.len();
    let caps = world.edges.iter().map(|e| e.capacity_bps as f64);
    let caches = world.edges.iter().map(|e| e.cache_bytes as f64 / 1e9);
    let min_max = |it: &mut dyn Iterator<Item = f64>| {
        it.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)))
    };
    let (cap_lo, cap_hi) = min_max(&mut caps.map(gbps));
    let figures = WorldFigures {
        keys: world.keys.len(),
        live_streams: live,
        vod_streams: scenario.streams - live,
        capacity_gbps: gbps(capacity as f64),
        edge_capacity_gbps: (cap_lo, cap_hi),
        edge_cache_gb: min_max(&mut caches.into_iter()),
        peak_demand_gbps: world
            .ticks
            .iter()
            .map(|t| gbps(t.demand_bps as f64))
            .fold(0.0, f64::max),
        final_viewers: world.ticks.last().map_or(0, |t| t.viewers),
        arrivals: world
            .ticks
            .iter()
            .flat_map(|t| &t.arrivals)
            .map(|&(_, n)| u64::from(n))
            .sum(),
        cohorts: world.cohorts.len(),
        best_origin_tb: world.ticks.iter().map(|t| t.best_bytes as f64).sum::<f64>() / 1e12,
        failed_edges: world
            .failed_edges
            .iter()
            .map(|&e| world.edges[e].id.clone())
            .collect(),
        drained_edges: world
            .drained_edges
            .iter()
            .map(|&e| world.edges[e].id.clone())
            .collect(),
    };
    Ok(SimReport {
        scenario: scenario.clone(),
        world: figures,
        minutes: (0..world.ticks.len())
            .map(|t| t as f64 * scenario.tick_secs / 60.0)
            .collect(),
        demand_series: world
            .ticks
            .iter()
            .map(|t| t.demand_bps as f64 / capacity.max(1) as f64)
            .collect(),
        best_origin_gbps_series: world
            .ticks
            .iter()
            .map(|t| t.best_bytes as f64 * 8.0 / scenario.tick_secs / 1e9)
            .collect(),
        policies: runs,
    })
}

/// The comparison table printed at the end.
pub fn table(r: &SimReport) -> String {
    let mut out = String::new();
    let s = &r.scenario;
    let w = &r.world;
    let _ = writeln!(
        out,
        "simulate: {} edges ({:.0} Gbit/s, {:.0}-{:.0} each), {} streams ({} live, {} VOD) x {} renditions, {} viewers at peak, {} arrivals, {} min, seed {}",
        s.edges,
        w.capacity_gbps,
        w.edge_capacity_gbps.0,
        w.edge_capacity_gbps.1,
        s.streams,
        w.live_streams,
        w.vod_streams,
        s.renditions.len(),
        s.viewers,
        w.arrivals,
        f64::from(s.ticks) * s.tick_secs / 60.0,
        s.seed
    );
    let _ = writeln!(
        out,
        "peak demand {:.0} Gbit/s ({:.0} % of the fleet); {} failures, {} drained; least possible origin egress {:.1} TB",
        w.peak_demand_gbps,
        100.0 * w.peak_demand_gbps / w.capacity_gbps.max(1e-9),
        w.failed_edges.len(),
        w.drained_edges.len(),
        w.best_origin_tb
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<22} {:>10} {:>9} {:>9} {:>9} {:>10} {:>10} {:>11} {:>10} {:>10}",
        "policy",
        "origin/best",
        "hit ratio",
        "max util",
        "max/mean",
        "over time",
        "over edges",
        "moved/fail",
        "moved/drain",
        "edges/str"
    );
    for p in &r.policies {
        let _ = writeln!(
            out,
            "{:<22} {:>10.2} {:>9.4} {:>9.2} {:>9.2} {:>9.1}% {:>9.2}% {:>11.0} {:>10.0} {:>10.2}",
            p.name,
            p.origin_vs_best,
            p.cache_hit_ratio,
            p.max_utilization,
            p.max_over_mean,
            100.0 * p.overloaded_time_share,
            100.0 * p.overloaded_edge_share,
            p.moved_per_failure,
            p.moved_per_drain,
            p.edges_per_live_rendition
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_flag() {
        assert!(Scenario::default().validate().is_ok());
        let cases = [
            (
                Scenario {
                    edges: 0,
                    ..Scenario::default()
                },
                "--edges",
            ),
            (
                Scenario {
                    viewers: 0,
                    ..Scenario::default()
                },
                "--viewers",
            ),
            (
                Scenario {
                    ticks: 0,
                    ..Scenario::default()
                },
                "--minutes",
            ),
            (
                Scenario {
                    vod_share: 2.0,
                    ..Scenario::default()
                },
                "--vod-share",
            ),
            (
                Scenario {
                    edges: 5,
                    failures: 3,
                    drains: 2,
                    ..Scenario::default()
                },
                "--failures",
            ),
            (
                Scenario {
                    epsilon: -1.0,
                    ..Scenario::default()
                },
                "--epsilon",
            ),
        ];
        for (s, flag) in cases {
            let err = s.validate().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(flag), "{err:?} lacks {flag}");
        }
    }
}
