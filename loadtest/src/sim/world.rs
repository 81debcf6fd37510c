//! The simulated world, the same for every policy: the edges, the streams and
//! their renditions, and, tick by tick, which viewers arrive and leave and
//! which edges fail, recover, drain and restart. Generated once from the
//! scenario and a seed; the policies only decide where viewers go.
//!
//! Viewers are aggregated into cohorts: all viewers of a live rendition form
//! one cohort (they all watch the live edge); VOD viewers of a rendition who
//! started in the same tick form one (they watch the same position).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::Scenario;
use super::lru::MixMap;
use crate::error::Result;
use crate::zipf::Zipf;

/// One rendition of one stream: the unit of rendezvous hashing.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// Stream key as a router writes it, e.g. `live/s00042|2500k`.
    pub name: String,
    /// Bitrate, bits per second.
    pub bitrate: u64,
    /// VOD: length in ticks; live: `None`.
    pub vod_ticks: Option<u32>,
    /// Bytes of one tick of this rendition: one cached object.
    pub object_bytes: u64,
}

/// One edge.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeSpec {
    /// Its id.
    pub id: String,
    /// Egress capacity, bits per second.
    pub capacity_bps: u64,
    /// Cache size, bytes.
    pub cache_bytes: u64,
}

/// Viewers of one key who watch the same position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cohort {
    /// Index into [`World::keys`].
    pub key: u32,
    /// The tick they started (VOD); 0 for a live cohort.
    pub start: u32,
}

/// Something that happens to an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetEvent {
    /// Dies: no ad any more; its viewers must move; its cache is lost.
    Fail(usize),
    /// Back after a failure, with an empty cache.
    Recover(usize),
    /// Starts draining: takes no viewers, its viewers move at their next reload.
    Drain(usize),
    /// Back from a drain (a restart, as in a rolling deploy), with an empty cache.
    Restart(usize),
}

/// What happens in one tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickEvents {
    /// Fleet events, applied first.
    pub fleet: Vec<FleetEvent>,
    /// `(cohort, viewers)` leaving, applied next.
    pub departures: Vec<(u32, u32)>,
    /// `(cohort, viewers)` arriving, last.
    pub arrivals: Vec<(u32, u32)>,
    /// Cohorts that exist by the end of this tick.
    pub cohorts: u32,
    /// Viewers watching at the end of this tick.
    pub viewers: u64,
    /// Their demand, bits per second.
    pub demand_bps: u64,
    /// Bytes the origin must send at the very least this tick: objects
    /// requested for the first time anywhere.
    pub best_bytes: u64,
}

/// The whole simulated run; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct World {
    /// Renditions of streams: stream `s`, rendition `r` is key `s × R + r`.
    pub keys: Vec<Key>,
    /// The edges.
    pub edges: Vec<EdgeSpec>,
    /// Every cohort ever formed.
    pub cohorts: Vec<Cohort>,
    /// Tick by tick.
    pub ticks: Vec<TickEvents>,
    /// Edges that fail (in order).
    pub failed_edges: Vec<usize>,
    /// Edges drained one after the other.
    pub drained_edges: Vec<usize>,
}

/// `x` rounded at random to one of its two neighbouring integers, keeping
/// the expectation.
fn stochastic_round(x: f64, rng: &mut SmallRng) -> u32 {
    let floor = x.floor();
    let extra = if rng.random::<f64>() < x - floor { 1.0 } else { 0.0 };
    (floor + extra) as u32
}

/// Object id of tick-chunk `chunk` of key `key` in a cache.
pub fn object_id(key: u32, chunk: u32) -> u64 {
    (u64::from(key) << 32) | u64::from(chunk)
}

impl World {
    /// Generates the world of `scenario` (validated).
    pub fn generate(scenario: &Scenario) -> Result<World> {
        scenario.validate()?;
        let mut rng = SmallRng::seed_from_u64(scenario.seed);
        let renditions = &scenario.renditions;
        let per_stream = renditions.len() as u32;
        let tick_secs = scenario.tick_secs;

        // Streams: live or VOD, renditions.
        let mut keys = Vec::with_capacity(scenario.streams * renditions.len());
        for s in 0..scenario.streams {
            let vod = rng.random::<f64>() < scenario.vod_share;
            let vod_ticks = vod.then(|| {
                let (lo, hi) = scenario.vod_length_ticks;
                rng.random_range(lo..=hi)
            });
            for &(bitrate, _) in renditions {
                let kind = if vod { "vod" } else { "live" };
                keys.push(Key {
                    name: format!("{kind}/s{s:05}|{}k", bitrate / 1000),
                    bitrate,
                    vod_ticks,
                    object_bytes: (bitrate as f64 * tick_secs / 8.0) as u64,
                });
            }
        }

        // Edges: capacity classes 1 : 2 : 4, scaled so that the peak demand
        // is `utilization` of the fleet.
        let mean_bitrate: f64 = renditions.iter().map(|&(b, share)| b as f64 * share).sum::<f64>()
            / renditions.iter().map(|&(_, share)| share).sum::<f64>();
        let weights: Vec<u64> = (0..scenario.edges)
            .map(|_| [1, 2, 4][rng.random_range(0..3)])
            .collect();
        let peak_bps = scenario.viewers as f64 * mean_bitrate;
        let unit = peak_bps / scenario.utilization / weights.iter().sum::<u64>() as f64;
        let edges: Vec<EdgeSpec> = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let capacity_bps = ((w as f64 * unit) as u64).max(1);
                EdgeSpec {
                    id: format!("edge-{i:03}"),
                    capacity_bps,
                    cache_bytes: (capacity_bps as f64 * scenario.cache_secs / 8.0) as u64,
                }
            })
            .collect();

        // Fleet events: distinct edges fail (spread over the steady phase)
        // and drain one after another.
        let mut order: Vec<usize> = (0..scenario.edges).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let failed_edges: Vec<usize> = order.iter().copied().take(scenario.failures).collect();
        let drained_edges: Vec<usize> = order
            .iter()
            .copied()
            .skip(scenario.failures)
            .take(scenario.drains)
            .collect();
        let mut ticks: Vec<TickEvents> = (0..scenario.ticks).map(|_| TickEvents::default()).collect();
        let steady = scenario.ticks.saturating_sub(scenario.ramp_ticks);
        for (i, &edge) in failed_edges.iter().enumerate() {
            let at = scenario.ramp_ticks + (i as u32 + 1) * steady / (scenario.failures as u32 + 1);
            if let Some(t) = ticks.get_mut(at as usize) {
                t.fleet.push(FleetEvent::Fail(edge));
            }
            if let Some(t) = ticks.get_mut((at + scenario.failure_ticks) as usize) {
                t.fleet.push(FleetEvent::Recover(edge));
            }
        }
        let drain_start = scenario.ramp_ticks + steady / 6;
        for (i, &edge) in drained_edges.iter().enumerate() {
            let at = drain_start + i as u32 * scenario.drain_ticks;
            if let Some(t) = ticks.get_mut(at as usize) {
                t.fleet.push(FleetEvent::Drain(edge));
            }
            if let Some(t) = ticks.get_mut((at + scenario.drain_ticks) as usize) {
                t.fleet.push(FleetEvent::Restart(edge));
            }
        }

        // Viewers.
        let zipf = Zipf::new(scenario.streams, scenario.zipf)?;
        let shares: f64 = renditions.iter().map(|&(_, s)| s).sum();
        let mut cohorts: Vec<Cohort> = Vec::new();
        let mut counts: Vec<u32> = Vec::new();
        let mut live_cohort: Vec<Option<u32>> = vec![None; keys.len()];
        let mut seen_vod: MixMap<u64, ()> = MixMap::default();
        let mut added: Vec<u32> = Vec::new();
        let mut viewers: u64 = 0;
        let leave = 1.0 / scenario.mean_watch_ticks;
        for t in 0..scenario.ticks {
            let tick = &mut ticks[t as usize];
            // Departures: some of every cohort; VOD cohorts at the end of the title all.
            for (c, count) in counts.iter_mut().enumerate() {
                if *count == 0 {
                    continue;
                }
                let cohort = cohorts[c];
                let ended = keys[cohort.key as usize]
                    .vod_ticks
                    .is_some_and(|len| t - cohort.start >= len);
                let d = if ended {
                    *count
                } else {
                    stochastic_round(f64::from(*count) * leave, &mut rng).min(*count)
                };
                if d > 0 {
                    *count -= d;
                    viewers -= u64::from(d);
                    tick.departures.push((c as u32, d));
                }
            }
            // Arrivals, up to the target audience of this tick.
            let ramp = f64::from(t + 1) / f64::from(scenario.ramp_ticks.max(1));
            let target = (scenario.viewers as f64 * ramp.min(1.0)) as u64;
            let arriving = target.saturating_sub(viewers);
            let mut vod_cohort: MixMap<u32, u32> = MixMap::default();
            let mut touched: Vec<u32> = Vec::new();
            for _ in 0..arriving {
                let stream = zipf.sample(&mut rng) as u32;
                let mut u = rng.random::<f64>() * shares;
                let mut r = 0;
                while r + 1 < renditions.len() && u >= renditions[r].1 {
                    u -= renditions[r].1;
                    r += 1;
                }
                let key = stream * per_stream + r as u32;
                let existing = match keys[key as usize].vod_ticks {
                    None => live_cohort[key as usize],
                    Some(_) => vod_cohort.get(&key).copied(),
                };
                let c = match existing {
                    Some(c) => c,
                    None => {
                        let c = cohorts.len() as u32;
                        let live = keys[key as usize].vod_ticks.is_none();
                        cohorts.push(Cohort {
                            key,
                            start: if live { 0 } else { t },
                        });
                        counts.push(0);
                        added.push(0);
                        if live {
                            live_cohort[key as usize] = Some(c);
                        } else {
                            vod_cohort.insert(key, c);
                        }
                        c
                    }
                };
                if added[c as usize] == 0 {
                    touched.push(c);
                }
                added[c as usize] += 1;
            }
            touched.sort_unstable();
            for c in touched {
                let n = std::mem::take(&mut added[c as usize]);
                counts[c as usize] += n;
                viewers += u64::from(n);
                tick.arrivals.push((c, n));
            }
            // What the origin must send at least, and the demand.
            let mut best = 0u64;
            let mut demand = 0u64;
            for (c, &count) in counts.iter().enumerate() {
                if count == 0 {
                    continue;
                }
                let cohort = cohorts[c];
                let key = &keys[cohort.key as usize];
                demand += u64::from(count) * key.bitrate;
                let first_time = match key.vod_ticks {
                    None => true,
                    Some(_) => seen_vod
                        .insert(object_id(cohort.key, t - cohort.start), ())
                        .is_none(),
                };
                if first_time {
                    best += key.object_bytes;
                }
            }
            tick.cohorts = cohorts.len() as u32;
            tick.viewers = viewers;
            tick.demand_bps = demand;
            tick.best_bytes = best;
        }
        Ok(World {
            keys,
            edges,
            cohorts,
            ticks,
            failed_edges,
            drained_edges,
        })
    }
}
