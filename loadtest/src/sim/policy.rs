//! The routing policies the simulator compares. Each places one viewer at a
//! time on an edge, given the fleet of this tick and the edges' loads. Pure:
//! the weighted random policy draws from a seeded generator it owns.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use router_api::fleet::EdgeState;
use selection::select::hash::stable_hash;
use selection::select::{Choice, Policy as SelectPolicy, Request, Selector};
use selection::snapshot::{EdgeSnapshot, FleetSnapshot};
use serde::Serialize;

use super::world::EdgeSpec;

/// A routing policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Each new viewer to the next edge in turn (DNS round robin).
    RoundRobin,
    /// Each new viewer to the edge with the lowest utilization.
    LeastLoaded,
    /// Each new viewer to an edge drawn at random, weighted by capacity (a
    /// master redirecting listeners to a random relay, as Icecast's does).
    WeightedRandom,
    /// Every request of a stream to its point on a hash ring with virtual
    /// nodes (weighted by capacity), no load bound, no session: Traffic
    /// Router's consistent hashing.
    ConsistentHash,
    /// `router::select`: weighted rendezvous hashing with bounded load and
    /// sticky sessions, the router's own code.
    Ours,
}

impl Policy {
    /// Every policy, in report order.
    pub const ALL: [Policy; 5] = [
        Policy::RoundRobin,
        Policy::LeastLoaded,
        Policy::WeightedRandom,
        Policy::ConsistentHash,
        Policy::Ours,
    ];

    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Policy::RoundRobin => "round-robin",
            Policy::LeastLoaded => "least-loaded",
            Policy::WeightedRandom => "weighted random",
            Policy::ConsistentHash => "consistent hash",
            Policy::Ours => "ours (router::select)",
        }
    }

    /// Whether a viewer follows the policy on every request (stateless), so
    /// that it moves whenever the policy's answer changes. Otherwise the
    /// viewer keeps its edge (a session) until it must move.
    pub fn stateless(self) -> bool {
        self == Policy::ConsistentHash
    }
}

/// Which edges can take viewers this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeStatus {
    /// Takes viewers.
    Ready,
    /// Alive, takes no new viewers.
    Draining,
    /// Dead.
    Down,
}

/// A hash ring with virtual nodes.
#[derive(Debug, Clone, Default)]
struct Ring {
    /// `(point, edge)`, sorted.
    points: Vec<(u64, u32)>,
}

impl Ring {
    fn build(edges: &[EdgeSpec], status: &[EdgeStatus], vnodes: usize) -> Ring {
        let mean = edges.iter().map(|e| e.capacity_bps as f64).sum::<f64>() / edges.len().max(1) as f64;
        let mut points = Vec::new();
        for (i, edge) in edges.iter().enumerate() {
            if status[i] != EdgeStatus::Ready {
                continue;
            }
            let n = ((vnodes as f64 * edge.capacity_bps as f64 / mean).round() as usize).max(1);
            for v in 0..n {
                points.push((stable_hash(format!("{}#{v}", edge.id).as_bytes()), i as u32));
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    fn lookup(&self, key_hash: u64) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let i = self.points.partition_point(|&(p, _)| p < key_hash);
        let (_, edge) = self.points[i % self.points.len()];
        Some(edge as usize)
    }
}

/// A policy's placement state for one tick; see the module docs.
#[derive(Debug)]
pub struct Placer {
    policy: Policy,
    edges: Vec<EdgeSpec>,
    inverse_capacity: Vec<f64>,
    status: Vec<EdgeStatus>,
    rng: SmallRng,
    cursor: usize,
    cdf: Vec<(f64, usize)>,
    ring: Ring,
    vnodes: usize,
    select_policy: SelectPolicy,
    selector: Option<Selector>,
    assigned: Vec<u64>,
    now: Instant,
}

impl Placer {
    /// A placer for `policy` over `edges`; `base` is the simulated clock's zero.
    pub fn new(
        policy: Policy,
        edges: &[EdgeSpec],
        seed: u64,
        vnodes: usize,
        epsilon: f64,
        base: Instant,
    ) -> Self {
        Placer {
            policy,
            edges: edges.to_vec(),
            inverse_capacity: edges.iter().map(|e| 1.0 / e.capacity_bps.max(1) as f64).collect(),
            status: vec![EdgeStatus::Ready; edges.len()],
            rng: SmallRng::seed_from_u64(seed ^ 0x005e_ed0f_ca11),
            cursor: 0,
            cdf: Vec::new(),
            ring: Ring::default(),
            vnodes,
            select_policy: SelectPolicy {
                epsilon,
                ..SelectPolicy::default()
            },
            selector: None,
            assigned: vec![0; edges.len()],
            now: base,
        }
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Starts a tick at `now` with this fleet and these loads (bits/s).
    /// `fleet_changed`: an edge changed status since the last tick.
    pub fn begin_tick(&mut self, now: Instant, status: &[EdgeStatus], loads: &[u64], fleet_changed: bool) {
        self.now = now;
        self.status.copy_from_slice(status);
        match self.policy {
            Policy::RoundRobin | Policy::LeastLoaded => {}
            Policy::WeightedRandom => {
                if fleet_changed || self.cdf.is_empty() {
                    let mut total = 0.0;
                    self.cdf = (0..self.edges.len())
                        .filter(|&i| status[i] == EdgeStatus::Ready)
                        .map(|i| {
                            total += self.edges[i].capacity_bps as f64;
                            (total, i)
                        })
                        .collect();
                }
            }
            Policy::ConsistentHash => {
                if fleet_changed || self.ring.points.is_empty() {
                    self.ring = Ring::build(&self.edges, status, self.vnodes);
                }
            }
            Policy::Ours => {
                // The fleet as a router sees it at this tick: every live edge's
                // ad is fresh and reports its load; a dead edge's ad is stale.
                let fresh = Some(now + Duration::from_secs(3));
                let stale = now.checked_sub(Duration::from_secs(1)).or(Some(now));
                let snapshot = FleetSnapshot::new(
                    self.edges
                        .iter()
                        .enumerate()
                        .map(|(i, e)| EdgeSnapshot {
                            id: e.id.clone(),
                            base_url: format!("http://{}.test", e.id),
                            group: None,
                            state: if status[i] == EdgeStatus::Draining {
                                EdgeState::Draining
                            } else {
                                EdgeState::Ready
                            },
                            capacity_bps: e.capacity_bps,
                            load_bps: loads[i],
                            fresh_until: if status[i] == EdgeStatus::Down {
                                stale
                            } else {
                                fresh
                            },
                            eligible_since: None,
                        })
                        .collect(),
                );
                self.selector = Some(Selector::build(&snapshot, self.select_policy));
                self.assigned.iter_mut().for_each(|a| *a = 0);
            }
        }
    }

    /// Where a viewer of key `key_name` (hash `key_hash`) at `bitrate`
    /// goes; `sticky` is its current edge, if it has one. `loads` are the
    /// edges' current loads (the caller adds the viewer to the edge chosen).
    pub fn place(
        &mut self,
        key_name: &str,
        key_hash: u64,
        bitrate: u64,
        sticky: Option<usize>,
        loads: &[u64],
    ) -> Option<usize> {
        let ready = |i: usize| self.status[i] == EdgeStatus::Ready;
        match self.policy {
            Policy::RoundRobin => {
                let n = self.edges.len();
                for step in 0..n {
                    let i = (self.cursor + step) % n;
                    if ready(i) {
                        self.cursor = (i + 1) % n;
                        return Some(i);
                    }
                }
                None
            }
            Policy::LeastLoaded => {
                let mut best: Option<(usize, f64)> = None;
                for (i, (&load, &inv)) in loads.iter().zip(&self.inverse_capacity).enumerate() {
                    if !ready(i) {
                        continue;
                    }
                    let u = load as f64 * inv;
                    if best.is_none_or(|(_, b)| u < b) {
                        best = Some((i, u));
                    }
                }
                best.map(|(i, _)| i)
            }
            Policy::WeightedRandom => {
                let total = self.cdf.last()?.0;
                let u = self.rng.random::<f64>() * total;
                let at = self.cdf.partition_point(|&(c, _)| c <= u).min(self.cdf.len() - 1);
                Some(self.cdf[at].1)
            }
            Policy::ConsistentHash => self.ring.lookup(key_hash),
            Policy::Ours => {
                let selector = self.selector.as_ref()?;
                let sticky_id = sticky.map(|i| self.edges[i].id.as_str());
                let choice = selector.pick(
                    &Request {
                        stream_key: key_name,
                        sticky: sticky_id,
                        group: None,
                        bandwidth_bps: bitrate,
                        https: false,
                    },
                    self.now,
                    &self.assigned,
                );
                if choice.is_new_assignment()
                    && let Some(i) = choice.index()
                {
                    self.assigned[i] += bitrate;
                }
                match choice {
                    Choice::Edge { index, .. } => Some(index),
                    Choice::NoEdge => None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edges(caps: &[u64]) -> Vec<EdgeSpec> {
        caps.iter()
            .enumerate()
            .map(|(i, &c)| EdgeSpec {
                id: format!("edge-{i}"),
                capacity_bps: c,
                cache_bytes: 1,
            })
            .collect()
    }

    fn placer(policy: Policy, caps: &[u64]) -> Placer {
        let e = edges(caps);
        let mut p = Placer::new(policy, &e, 1, 100, 0.25, Instant::now());
        let status = vec![EdgeStatus::Ready; e.len()];
        p.begin_tick(Instant::now(), &status, &vec![0; e.len()], true);
        p
    }

    #[test]
    fn round_robin_skips_edges_that_are_not_ready() {
        let mut p = placer(Policy::RoundRobin, &[1, 1, 1]);
        let status = [EdgeStatus::Ready, EdgeStatus::Down, EdgeStatus::Draining];
        let now = Instant::now();
        p.begin_tick(now, &status, &[0, 0, 0], true);
        for _ in 0..5 {
            assert_eq!(p.place("k", 1, 1, None, &[0, 0, 0]), Some(0));
        }
        p.begin_tick(now, &[EdgeStatus::Down; 3], &[0, 0, 0], true);
        assert_eq!(p.place("k", 1, 1, None, &[0, 0, 0]), None);
    }

    #[test]
    fn least_loaded_compares_utilization() {
        let mut p = placer(Policy::LeastLoaded, &[100, 300]);
        assert_eq!(p.place("k", 1, 1, None, &[50, 120]), Some(1), "0.5 vs 0.4");
        assert_eq!(p.place("k", 1, 1, None, &[10, 120]), Some(0));
    }

    #[test]
    fn weighted_random_follows_capacity() {
        let mut p = placer(Policy::WeightedRandom, &[1, 3]);
        let n = 40_000;
        let on_big = (0..n)
            .filter(|_| p.place("k", 1, 1, None, &[0, 0]) == Some(1))
            .count();
        let share = on_big as f64 / n as f64;
        assert!((share - 0.75).abs() < 0.01, "{share}");
    }

    #[test]
    fn consistent_hash_moves_only_the_keys_of_a_removed_edge() {
        let e = edges(&[10, 10, 10, 10]);
        let mut p = Placer::new(Policy::ConsistentHash, &e, 1, 100, 0.25, Instant::now());
        let now = Instant::now();
        let all = vec![EdgeStatus::Ready; 4];
        p.begin_tick(now, &all, &[0; 4], true);
        let keys: Vec<u64> = (0..2000)
            .map(|k| stable_hash(format!("k{k}").as_bytes()))
            .collect();
        let before: Vec<Option<usize>> = keys.iter().map(|&h| p.place("", h, 1, None, &[0; 4])).collect();
        let mut one_down = all.clone();
        one_down[2] = EdgeStatus::Down;
        p.begin_tick(now, &one_down, &[0; 4], true);
        for (&h, b) in keys.iter().zip(&before) {
            let after = p.place("", h, 1, None, &[0; 4]);
            if *b != Some(2) {
                assert_eq!(after, *b, "only edge-2's keys move");
            } else {
                assert_ne!(after, Some(2));
            }
        }
        let share = before.iter().filter(|b| **b == Some(2)).count() as f64 / keys.len() as f64;
        assert!((share - 0.25).abs() < 0.06, "{share}");
    }

    #[test]
    fn ours_runs_the_router_selection() {
        let mut p = placer(Policy::Ours, &[1_000_000_000; 5]);
        // SELECTION.md's test vector: live/demo-1|720p ranks edge-1 first.
        assert_eq!(p.place("live/demo-1|720p", 0, 5_000_000, None, &[0; 5]), Some(1));
        // A sticky viewer on a ready edge under the cap stays.
        assert_eq!(
            p.place("live/demo-1|720p", 0, 5_000_000, Some(4), &[0; 5]),
            Some(4)
        );
    }
}
