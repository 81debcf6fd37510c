//! Edge choice: a pure function over an immutable fleet snapshot.
//!
//! The server builds a [`Selector`] whenever its fleet view changes and keeps
//! it behind an `ArcSwap`; per-request facts (the stream, the viewer's session
//! edge and group, its bandwidth, what this router assigned since the last
//! ads) come in as arguments to [`Selector::pick`]. No I/O, no clock reads, no
//! randomness: the same inputs give the same edge on every router, and the
//! simulator runs this very code.
//!
//! 1. **Candidates**: edges that are fresh (`now < fresh_until`), out of
//!    hold-down (`now >= eligible_since`), `ready`, with capacity > 0 and, when
//!    the request names a group, in that group. When no edge of the group is a
//!    candidate, every group's candidates are used instead.
//! 2. **Affinity**: candidates are ranked by weighted rendezvous hashing of the
//!    stream key, weight = capacity (see [`hash`]).
//! 3. **Bounded load, graded by rank**: the first edge in that order whose
//!    load (reported plus assigned) is within its ceiling wins. The ceiling is
//!    `(1 + s × ε) × average utilization × its capacity`, where the average is
//!    over the candidates and counts the new viewer, and the share `s` of the
//!    slack depends on the edge's rank in the stream key's order
//!    ([`SLACK_BY_RANK`]): all of it on the key's own edge, half on its second
//!    edge, a quarter on its third, none further down. Overflow that goes deep
//!    (a hot stream's) fills edges only up to the average and leaves the slack
//!    above it to the keys that rank those edges near the top, so a cold key
//!    is seldom pushed off its own edge, and when it is, its viewers land on
//!    one second edge.
//!    The own edge's ceiling is raised to [`Policy::pack_below_utilization`]
//!    (so a lightly loaded fleet keeps each stream on its first edge, caches
//!    hot); every ceiling is capped at full capacity while the fleet has
//!    capacity left, and is the average itself once it has none.
//! 4. **Stickiness** comes first: the session's edge is kept while it is a
//!    candidate and its utilization with the viewer stays at most
//!    [`Policy::sticky_max_utilization`].
//! 5. No candidate: [`Choice::NoEdge`]; the server applies its fallback.
//!
//! [`Selector::explain`] returns the same decision with every edge's inputs.
//! `docs/SELECTION.md` describes the algorithm for operators.

pub mod hash;

use std::cmp::Ordering;
use std::time::Instant;

use router_api::fleet::EdgeState;

use crate::snapshot::{EdgeSnapshot, FleetSnapshot};
use serde::Serialize;

/// Default load slack ε: an edge takes new viewers up to 25 % above the
/// average utilization.
pub const DEFAULT_EPSILON: f64 = 0.25;

/// Default hard cap on utilization for keeping a viewer on its session's edge.
pub const DEFAULT_STICKY_MAX_UTILIZATION: f64 = 0.95;

/// Tuning of edge selection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Load slack ε ≥ 0 of the bounded-load rule (default 0.25). Smaller packs
    /// less (more even load, more edges per stream); larger packs more.
    pub epsilon: f64,
    /// A viewer stays on its session's edge while that edge's utilization,
    /// counting the viewer, is at most this (default 0.95; > 0).
    pub sticky_max_utilization: f64,
    /// Below this utilization a stream's own edge (the first in its
    /// rendezvous order) takes its viewers whatever the fleet's average
    /// (default 0.1; 0 to 1): a lightly loaded fleet keeps each stream packed
    /// on its first edge, so caches stay hot and the origin sends each segment
    /// once; bounded load spreads streams only once edges carry real load.
    pub pack_below_utilization: f64,
}

/// Default utilization under which streams stay packed on their first edge.
pub const DEFAULT_PACK_BELOW_UTILIZATION: f64 = 0.1;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            epsilon: DEFAULT_EPSILON,
            sticky_max_utilization: DEFAULT_STICKY_MAX_UTILIZATION,
            pack_below_utilization: DEFAULT_PACK_BELOW_UTILIZATION,
        }
    }
}

/// A [`Policy`] value that makes no sense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// ε is negative or not a finite number.
    #[error("`epsilon` must be a finite number >= 0 (got {0})")]
    Epsilon(f64),
    /// The sticky cap is not a finite number > 0.
    #[error("`sticky_max_utilization` must be a finite number > 0 (got {0})")]
    StickyMaxUtilization(f64),
    /// The packing floor is not within 0 to 1.
    #[error("`pack_below_utilization` must be within 0 and 1 (got {0})")]
    PackBelow(f64),
}

impl Policy {
    /// Checks the values; configuration loading calls this so that an operator
    /// sees the mistake. [`Selector::build`] replaces a bad value by its default.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !epsilon_ok(self.epsilon) {
            return Err(PolicyError::Epsilon(self.epsilon));
        }
        if !sticky_max_ok(self.sticky_max_utilization) {
            return Err(PolicyError::StickyMaxUtilization(self.sticky_max_utilization));
        }
        if !pack_below_ok(self.pack_below_utilization) {
            return Err(PolicyError::PackBelow(self.pack_below_utilization));
        }
        Ok(())
    }

    fn sanitized(self) -> Policy {
        let default = Policy::default();
        Policy {
            epsilon: if epsilon_ok(self.epsilon) {
                self.epsilon
            } else {
                default.epsilon
            },
            sticky_max_utilization: if sticky_max_ok(self.sticky_max_utilization) {
                self.sticky_max_utilization
            } else {
                default.sticky_max_utilization
            },
            pack_below_utilization: if pack_below_ok(self.pack_below_utilization) {
                self.pack_below_utilization
            } else {
                default.pack_below_utilization
            },
        }
    }
}

fn epsilon_ok(epsilon: f64) -> bool {
    epsilon.is_finite() && epsilon >= 0.0
}

fn pack_below_ok(floor: f64) -> bool {
    (0.0..=1.0).contains(&floor)
}

fn sticky_max_ok(cap: f64) -> bool {
    cap.is_finite() && cap > 0.0
}

/// The per-request facts of one choice.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Stream and rendition, e.g. `live/demo-1|240p`: the rendezvous key.
    pub stream_key: &'a str,
    /// The edge id from the viewer's session, if it has one.
    pub sticky: Option<&'a str>,
    /// The viewer's group (region, POP), if groups are configured.
    pub group: Option<&'a str>,
    /// The variant's `BANDWIDTH`, bits per second (0 when unknown).
    pub bandwidth_bps: u64,
    /// The viewer came over https: an edge whose URL is plain http cannot
    /// serve it (a browser blocks mixed content).
    pub https: bool,
}

/// Why an edge was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The viewer's session edge, kept.
    Sticky,
    /// The first edge in rendezvous order within the load bound; `rank` is its
    /// position among the candidates (0: the stream's top edge).
    Rendezvous {
        /// Position among the candidates in rendezvous order.
        rank: usize,
    },
}

/// The outcome of [`Selector::pick`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Choice {
    /// Send the viewer to `edges()[index]`.
    Edge {
        /// Index into [`Selector::edges`] (and into `assigned_bps`).
        index: usize,
        /// Why this edge.
        reason: Reason,
    },
    /// No edge is a candidate; the server applies its fallback (origin URL or 503).
    NoEdge,
}

impl Choice {
    /// The chosen edge's index, if any.
    pub fn index(&self) -> Option<usize> {
        match self {
            Choice::Edge { index, .. } => Some(*index),
            Choice::NoEdge => None,
        }
    }

    /// Whether this choice moves load onto the edge, so that the server adds
    /// the viewer's bandwidth to its `assigned_bps`: every choice except
    /// keeping a sticky viewer, which the edge already counts.
    pub fn is_new_assignment(&self) -> bool {
        matches!(
            self,
            Choice::Edge {
                reason: Reason::Rendezvous { .. },
                ..
            }
        )
    }
}

/// Why an edge cannot serve a steered viewer now ([`Selector::unavailable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unavailable {
    /// No fresh ad (dead, frozen or cut off), or unknown.
    Stale,
    /// Draining.
    Draining,
    /// Back after a flap, not eligible yet.
    HoldDown,
    /// Without capacity, or over the sticky cap.
    OverCap,
    /// Its URL is plain http and the viewer is on https.
    PlainHttp,
}

impl Unavailable {
    /// A short label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Unavailable::Stale => "dead",
            Unavailable::Draining => "draining",
            Unavailable::HoldDown => "held_down",
            Unavailable::OverCap => "over_cap",
            Unavailable::PlainHttp => "plain_http",
        }
    }
}

/// Why an edge cannot take new viewers at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exclusion {
    Stale,
    Draining,
    HoldDown,
    NoCapacity,
    PlainHttp,
}

/// The edge selector for one fleet snapshot. Cheap to share; see the module docs.
#[derive(Debug, Clone)]
pub struct Selector {
    edges: Vec<EdgeSnapshot>,
    /// `stable_hash(edge id)` per edge.
    seeds: Vec<u64>,
    /// Edge indices sorted by id, for the sticky lookup.
    by_id: Vec<usize>,
    /// Per edge: its URL is plain http (not a candidate for https viewers).
    plain_http: Vec<bool>,
    policy: Policy,
}

/// What the first pass over the edges learned: which edges compete and their
/// average utilization.
#[derive(Debug, Clone, Copy)]
struct Pool<'a> {
    /// `Some(group)` when only that group's candidates compete.
    group: Option<&'a str>,
    /// A group was requested but had no candidate.
    group_fallback: bool,
    /// Only https edges compete.
    https: bool,
    count: usize,
    /// Average utilization of the competing edges, counting the new viewer.
    average: f64,
    /// The utilization an edge may have before taking the viewer, by its rank
    /// among the competing edges in the key's order ([`SLACK_BY_RANK`]); the
    /// last entry holds for every rank past the table. See [`ceiling`].
    ceilings: [f64; SLACK_BY_RANK.len() + 1],
}

impl Pool<'_> {
    /// The ceiling of the competing edge at `rank` in the key's order.
    fn ceiling_at(&self, rank: usize) -> f64 {
        self.ceilings[rank.min(SLACK_BY_RANK.len())]
    }
}

/// The share of the load slack ε an edge grants a stream key, by its rank
/// among the competing edges in that key's rendezvous order: all of it on the
/// key's own edge, half on its second edge, a quarter on its third, none on
/// any edge further down (which takes the key's viewers only up to the
/// fleet's average).
///
/// Why: each edge that serves a rendition fetches every segment of it from the
/// origin once. Without the grading, a hot rendition's overflow fills the
/// edges it passes through up to `(1 + ε) × average`, the very slack those
/// edges' own (cold) renditions need; they then spill a viewer or two each to
/// a second edge, and each such spill is one more copy of the rendition pulled
/// from the origin. With it, deep overflow levels the fleet up to the average,
/// an edge's own renditions keep the slack above, and a rendition whose own
/// edge is full lands on its second edge, which keeps room for it.
pub const SLACK_BY_RANK: [f64; 3] = [1.0, 0.5, 0.25];

/// The bounded-load ceiling, as a utilization: `(1 + ε) × average`, raised to
/// the packing floor (a lightly loaded fleet keeps streams together), but not
/// above 1 (full capacity) while the fleet has capacity left, and never below
/// the average itself once it has none. The least utilized edge is always at
/// or below the average, so some edge is always within the ceiling.
fn ceiling(average: f64, epsilon: f64, pack_below: f64) -> f64 {
    ((1.0 + epsilon) * average).max(pack_below).min(1.0).max(average)
}

/// The ceilings by rank ([`Pool::ceilings`]): the packing floor only raises
/// the key's own edge, since a floor further down would let a hot stream's
/// overflow fill a light fleet's edges to the floor, ahead of their own keys.
fn ceilings(average: f64, epsilon: f64, pack_below: f64) -> [f64; SLACK_BY_RANK.len() + 1] {
    let mut out = [ceiling(average, 0.0, 0.0); SLACK_BY_RANK.len() + 1];
    for (rank, (c, share)) in out.iter_mut().zip(SLACK_BY_RANK).enumerate() {
        let floor = if rank == 0 { pack_below } else { 0.0 };
        *c = ceiling(average, share * epsilon, floor);
    }
    out
}

/// What happened to the session's edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StickyOutcome {
    /// The viewer stays on it.
    Kept,
    /// No edge of the snapshot has that id.
    UnknownEdge,
    /// Stale, draining, held down, without capacity or outside the competing group.
    NotCandidate,
    /// Its utilization with the viewer would exceed the sticky cap.
    OverCap,
}

impl Selector {
    /// The selector for `snapshot`. An invalid `policy` value is replaced by
    /// its default (check it with [`Policy::validate`] when loading config).
    ///
    /// Edge ids are expected to be unique; with duplicates, a sticky lookup
    /// finds one of them.
    pub fn build(snapshot: &FleetSnapshot, policy: Policy) -> Self {
        let edges = snapshot.edges.clone();
        let seeds = edges.iter().map(|e| hash::stable_hash(e.id.as_bytes())).collect();
        let mut by_id: Vec<usize> = (0..edges.len()).collect();
        by_id.sort_by(|&a, &b| edges[a].id.cmp(&edges[b].id).then(a.cmp(&b)));
        let plain_http = edges
            .iter()
            .map(|e| {
                !e.base_url
                    .get(..8)
                    .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
            })
            .collect();
        Selector {
            edges,
            seeds,
            by_id,
            plain_http,
            policy: policy.sanitized(),
        }
    }

    /// The edges, in snapshot order; [`Choice::Edge`] indexes into this.
    pub fn edges(&self) -> &[EdgeSnapshot] {
        &self.edges
    }

    /// The policy in use.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The index of the edge with this id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        let pos = self
            .by_id
            .binary_search_by(|&i| self.edges[i].id.as_str().cmp(id))
            .ok()?;
        self.by_id.get(pos).copied()
    }

    /// Chooses an edge for `req` at `now`.
    ///
    /// `assigned_bps[i]` is what this router has assigned to edge `i` since
    /// that edge's last ad (missing entries count as 0). Cost: two passes over
    /// the edges (a third when the choice is past the graded ranks) and one
    /// hash and logarithm per candidate; no sorting and no allocation.
    pub fn pick(&self, req: &Request<'_>, now: Instant, assigned_bps: &[u64]) -> Choice {
        self.decide(req, now, assigned_bps).0
    }

    /// The same decision as [`Selector::pick`], with every edge in rendezvous
    /// order, its score and load, and why it was passed over.
    pub fn explain(&self, req: &Request<'_>, now: Instant, assigned_bps: &[u64]) -> Explanation {
        let (choice, pool, sticky) = self.decide(req, now, assigned_bps);
        let key_hash = hash::stable_hash(req.stream_key.as_bytes());
        let mut order: Vec<(usize, f64)> = (0..self.edges.len())
            .map(|i| (i, self.score(key_hash, i)))
            .collect();
        order.sort_by(|a, b| self.rank_cmp(*a, *b));

        let chosen = choice.index();
        let chosen_position = order
            .iter()
            .position(|&(i, _)| Some(i) == chosen)
            .unwrap_or(usize::MAX);
        let sticky_kept = matches!(
            choice,
            Choice::Edge {
                reason: Reason::Sticky,
                ..
            }
        );
        let mut competing_rank = 0;
        let candidates = order
            .iter()
            .enumerate()
            .map(|(position, &(i, score))| {
                let edge = &self.edges[i];
                let assigned = assigned_bps.get(i).copied().unwrap_or(0);
                let competes = self.competes(i, now, &pool);
                let ceiling = competes.then(|| {
                    competing_rank += 1;
                    pool.ceiling_at(competing_rank - 1)
                });
                let bound_bps = ceiling.map(|c| self.bound(i, c));
                let within_bound = ceiling.map(|c| self.within(i, assigned_bps, c));
                let verdict = if Some(i) == chosen {
                    Verdict::Chosen
                } else if let Some(exclusion) = self.exclusion(i, now, req.https) {
                    match exclusion {
                        Exclusion::Stale => Verdict::Stale,
                        Exclusion::Draining => Verdict::Draining,
                        Exclusion::HoldDown => Verdict::HoldDown,
                        Exclusion::NoCapacity => Verdict::NoCapacity,
                        Exclusion::PlainHttp => Verdict::PlainHttp,
                    }
                } else if !competes {
                    Verdict::OtherGroup
                } else if sticky_kept {
                    Verdict::StickyElsewhere
                } else if position < chosen_position && within_bound == Some(false) {
                    Verdict::OverBound
                } else {
                    Verdict::RankedLower
                };
                EdgeExplanation {
                    position,
                    index: i,
                    edge_id: edge.id.clone(),
                    group: edge.group.clone(),
                    score,
                    capacity_bps: edge.capacity_bps,
                    load_bps: edge.load_bps,
                    assigned_bps: assigned,
                    utilization: self.utilization(i, assigned_bps, 0),
                    bound_bps,
                    fresh_for_ms: edge.fresh_until.map(|until| signed_ms(until, now)),
                    eligible_in_ms: edge.eligible_since.map(|since| signed_ms(since, now).max(0)),
                    verdict,
                }
            })
            .collect();

        Explanation {
            stream_key: req.stream_key.to_owned(),
            group: req.group.map(str::to_owned),
            group_fallback: pool.group_fallback,
            bandwidth_bps: req.bandwidth_bps,
            epsilon: self.policy.epsilon,
            sticky_max_utilization: self.policy.sticky_max_utilization,
            average_utilization: pool.average,
            ceiling_utilization: pool.ceilings[0],
            ceiling_by_rank: pool.ceilings,
            sticky: req.sticky.zip(sticky).map(|(id, outcome)| StickyExplanation {
                edge_id: id.to_owned(),
                outcome,
            }),
            chosen_edge: chosen.map(|i| self.edges[i].id.clone()),
            choice,
            candidates,
        }
    }

    /// The edges competing for `req` at `now` (candidates, in its group
    /// when it has one), in rendezvous order, appended to `out`; load bounds
    /// are not applied. The order a viewer's Content Steering pathways and
    /// clones are taken in.
    pub fn ranked(&self, req: &Request<'_>, now: Instant, out: &mut Vec<usize>) {
        let pool = self.pool(req, now, &[]);
        let key_hash = hash::stable_hash(req.stream_key.as_bytes());
        let mut order: Vec<(usize, f64)> = (0..self.edges.len())
            .filter(|&i| self.competes(i, now, &pool))
            .map(|i| (i, self.score(key_hash, i)))
            .collect();
        order.sort_by(|a, b| self.rank_cmp(*a, *b));
        out.extend(order.into_iter().map(|(i, _)| i));
    }

    /// Why edge `i` cannot take viewers now, if it cannot: stale, draining,
    /// held down, without capacity, plain http for an `https` viewer, or
    /// (with `assigned_bps`) over the sticky cap.
    pub fn unavailable(
        &self,
        i: usize,
        now: Instant,
        assigned_bps: &[u64],
        https: bool,
    ) -> Option<Unavailable> {
        if i >= self.edges.len() {
            return Some(Unavailable::Stale);
        }
        match self.exclusion(i, now, https) {
            Some(Exclusion::Stale) => Some(Unavailable::Stale),
            Some(Exclusion::Draining) => Some(Unavailable::Draining),
            Some(Exclusion::HoldDown) => Some(Unavailable::HoldDown),
            Some(Exclusion::NoCapacity) => Some(Unavailable::OverCap),
            Some(Exclusion::PlainHttp) => Some(Unavailable::PlainHttp),
            None if self.utilization(i, assigned_bps, 0) > self.policy.sticky_max_utilization => {
                Some(Unavailable::OverCap)
            }
            None => None,
        }
    }

    /// The decision itself, shared by `pick` and `explain`.
    fn decide<'r>(
        &self,
        req: &Request<'r>,
        now: Instant,
        assigned_bps: &[u64],
    ) -> (Choice, Pool<'r>, Option<StickyOutcome>) {
        let pool = self.pool(req, now, assigned_bps);
        if pool.count == 0 {
            let sticky = req.sticky.map(|id| match self.index_of(id) {
                None => StickyOutcome::UnknownEdge,
                Some(_) => StickyOutcome::NotCandidate,
            });
            return (Choice::NoEdge, pool, sticky);
        }

        let sticky_index = req.sticky.and_then(|id| self.index_of(id));
        let sticky = req.sticky.map(|_| match sticky_index {
            None => StickyOutcome::UnknownEdge,
            Some(i) if !self.competes(i, now, &pool) => StickyOutcome::NotCandidate,
            Some(i)
                if self.utilization(i, assigned_bps, req.bandwidth_bps)
                    > self.policy.sticky_max_utilization =>
            {
                StickyOutcome::OverCap
            }
            Some(_) => StickyOutcome::Kept,
        });
        if let (Some(StickyOutcome::Kept), Some(index)) = (sticky, sticky_index) {
            return (
                Choice::Edge {
                    index,
                    reason: Reason::Sticky,
                },
                pool,
                sticky,
            );
        }

        let key_hash = hash::stable_hash(req.stream_key.as_bytes());
        // One pass: the best-ranked competing edges, one per graded rank
        // (`top[r]` has rank r), and the best-ranked edge within the ceiling of
        // the ranks past them. Should rounding leave no edge within its
        // ceiling, the least utilized edge (the bound guarantees one in exact
        // arithmetic: the least utilized edge is at or below the average).
        let deep_rank = SLACK_BY_RANK.len();
        let deep_ceiling = pool.ceiling_at(deep_rank);
        let mut top: [Option<(usize, f64)>; SLACK_BY_RANK.len()] = [None; SLACK_BY_RANK.len()];
        let mut deep: Option<(usize, f64)> = None;
        let mut least: Option<(usize, f64, f64)> = None;
        for i in 0..self.edges.len() {
            if !self.competes(i, now, &pool) {
                continue;
            }
            let s = self.score(key_hash, i);
            self.insert_ranked(&mut top, (i, s));
            if self.within(i, assigned_bps, deep_ceiling) {
                if deep.is_none_or(|b| self.rank_cmp((i, s), b) == Ordering::Less) {
                    deep = Some((i, s));
                }
            } else if deep.is_none() {
                let u = self.utilization(i, assigned_bps, 0);
                let better = least.is_none_or(|(j, lu, ls)| {
                    u < lu || (u == lu && self.rank_cmp((i, s), (j, ls)) == Ordering::Less)
                });
                if better {
                    least = Some((i, u, s));
                }
            }
        }
        // Ceilings do not grow with the rank, so an edge of `top` that is over
        // its own ceiling is over the deep one too, and `deep` ranks below `top`.
        let graded = top.iter().enumerate().find_map(|(rank, entry)| {
            entry
                .filter(|&(i, _)| self.within(i, assigned_bps, pool.ceiling_at(rank)))
                .map(|(i, _)| (i, rank))
        });
        let (index, rank) = match (graded, deep.or(least.map(|(i, _, s)| (i, s)))) {
            (Some(found), _) => found,
            (None, Some((index, s))) => {
                // Rank: the competing edges that score higher; all of them
                // were over their ceilings.
                let rank = (0..self.edges.len())
                    .filter(|&i| i != index && self.competes(i, now, &pool))
                    .filter(|&i| self.rank_cmp((i, self.score(key_hash, i)), (index, s)) == Ordering::Less)
                    .count();
                (index, rank)
            }
            (None, None) => return (Choice::NoEdge, pool, sticky),
        };
        (
            Choice::Edge {
                index,
                reason: Reason::Rendezvous { rank },
            },
            pool,
            sticky,
        )
    }

    /// First pass: the competing set (a group's candidates, or all candidates)
    /// and its average utilization, counting the new viewer. Sums are exact
    /// integers, so the result does not depend on the order of the edges.
    fn pool<'r>(&self, req: &Request<'r>, now: Instant, assigned_bps: &[u64]) -> Pool<'r> {
        let (mut all, mut in_group) = (Totals::default(), Totals::default());
        for (i, edge) in self.edges.iter().enumerate() {
            if self.exclusion(i, now, req.https).is_some() {
                continue;
            }
            let load = self.current_load(i, assigned_bps);
            all.add(edge.capacity_bps, load);
            if req.group.is_some() && edge.group.as_deref() == req.group {
                in_group.add(edge.capacity_bps, load);
            }
        }
        let (group, group_fallback, totals) = match req.group {
            Some(g) if in_group.count > 0 => (Some(g), false, in_group),
            Some(_) => (None, true, all),
            None => (None, false, all),
        };
        let average = if totals.capacity == 0 {
            0.0
        } else {
            (totals.load + u128::from(req.bandwidth_bps)) as f64 / totals.capacity as f64
        };
        Pool {
            group,
            group_fallback,
            https: req.https,
            count: totals.count,
            average,
            ceilings: ceilings(average, self.policy.epsilon, self.policy.pack_below_utilization),
        }
    }

    fn exclusion(&self, i: usize, now: Instant, https: bool) -> Option<Exclusion> {
        let edge = &self.edges[i];
        if !edge.is_fresh(now) {
            Some(Exclusion::Stale)
        } else if edge.state != EdgeState::Ready {
            Some(Exclusion::Draining)
        } else if !edge.is_eligible(now) {
            Some(Exclusion::HoldDown)
        } else if edge.capacity_bps == 0 {
            Some(Exclusion::NoCapacity)
        } else if https && self.plain_http[i] {
            Some(Exclusion::PlainHttp)
        } else {
            None
        }
    }

    /// Whether edge `i` is a candidate in the competing set.
    fn competes(&self, i: usize, now: Instant, pool: &Pool<'_>) -> bool {
        self.exclusion(i, now, pool.https).is_none()
            && pool
                .group
                .is_none_or(|g| self.edges[i].group.as_deref() == Some(g))
    }

    fn current_load(&self, i: usize, assigned_bps: &[u64]) -> u128 {
        u128::from(self.edges[i].load_bps) + u128::from(assigned_bps.get(i).copied().unwrap_or(0))
    }

    /// Utilization of edge `i` with `extra_bps` more; infinite without capacity.
    fn utilization(&self, i: usize, assigned_bps: &[u64], extra_bps: u64) -> f64 {
        let load = self.current_load(i, assigned_bps) + u128::from(extra_bps);
        match self.edges[i].capacity_bps {
            0 => f64::INFINITY,
            cap => load as f64 / cap as f64,
        }
    }

    /// Edge `i`'s load at utilization `ceiling`, bits per second.
    fn bound(&self, i: usize, ceiling: f64) -> f64 {
        ceiling * self.edges[i].capacity_bps as f64
    }

    /// Whether edge `i`'s current load is within utilization `ceiling`.
    fn within(&self, i: usize, assigned_bps: &[u64], ceiling: f64) -> bool {
        self.current_load(i, assigned_bps) as f64 <= self.bound(i, ceiling)
    }

    /// Inserts `item` into `top`, the best-ranked edges seen so far in
    /// rendezvous order; the worst falls off the end.
    fn insert_ranked(&self, top: &mut [Option<(usize, f64)>], mut item: (usize, f64)) {
        for slot in top.iter_mut() {
            match *slot {
                None => {
                    *slot = Some(item);
                    return;
                }
                Some(current) if self.rank_cmp(item, current) == Ordering::Less => {
                    *slot = Some(item);
                    item = current;
                }
                Some(_) => {}
            }
        }
    }

    fn score(&self, key_hash: u64, i: usize) -> f64 {
        hash::score(
            self.edges[i].capacity_bps as f64,
            hash::pair_hash(key_hash, self.seeds[i]),
        )
    }

    /// Rendezvous order: higher score first; an exact tie goes to the smaller
    /// id, then the smaller index, so the order never depends on the snapshot's.
    fn rank_cmp(&self, (a, sa): (usize, f64), (b, sb): (usize, f64)) -> Ordering {
        sb.total_cmp(&sa)
            .then_with(|| self.edges[a].id.cmp(&self.edges[b].id))
            .then(a.cmp(&b))
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    count: usize,
    capacity: u128,
    load: u128,
}

impl Totals {
    fn add(&mut self, capacity: u64, load: u128) {
        self.count += 1;
        self.capacity += u128::from(capacity);
        self.load += load;
    }
}

/// Milliseconds from `now` to `at`, negative when `at` is past.
fn signed_ms(at: Instant, now: Instant) -> i64 {
    let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    match at.checked_duration_since(now) {
        Some(ahead) => ms(ahead),
        None => -ms(now.duration_since(at)),
    }
}

/// A choice with its inputs, for `GET /api/v1/explain`.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The rendezvous key.
    pub stream_key: String,
    /// The viewer's group, if given.
    pub group: Option<String>,
    /// The group had no candidate, so every group's candidates competed.
    pub group_fallback: bool,
    /// The viewer's bandwidth, bits per second.
    pub bandwidth_bps: u64,
    /// ε of the policy.
    pub epsilon: f64,
    /// Sticky cap of the policy.
    pub sticky_max_utilization: f64,
    /// Average utilization of the competing edges, counting the new viewer.
    pub average_utilization: f64,
    /// The utilization up to which the key's own edge takes the viewer:
    /// `(1 + ε) × average`, raised to the packing floor, at most 1, or the
    /// average itself when that is above 1.
    pub ceiling_utilization: f64,
    /// The ceilings by rank among the competing edges: the key's own edge,
    /// its second, its third, and every edge further down ([`SLACK_BY_RANK`]).
    pub ceiling_by_rank: [f64; SLACK_BY_RANK.len() + 1],
    /// The session's edge and what became of it, if the viewer had one.
    pub sticky: Option<StickyExplanation>,
    /// The chosen edge's id.
    pub chosen_edge: Option<String>,
    /// The decision, exactly as [`Selector::pick`] returns it.
    pub choice: Choice,
    /// Every edge of the snapshot, in rendezvous order for this stream key.
    pub candidates: Vec<EdgeExplanation>,
}

/// The session's edge in an [`Explanation`].
#[derive(Debug, Clone, Serialize)]
pub struct StickyExplanation {
    /// The edge id the session named.
    pub edge_id: String,
    /// What became of it.
    pub outcome: StickyOutcome,
}

/// One edge in an [`Explanation`].
#[derive(Debug, Clone, Serialize)]
pub struct EdgeExplanation {
    /// Position in rendezvous order over all edges (0: top score).
    pub position: usize,
    /// Index into [`Selector::edges`].
    pub index: usize,
    /// Edge id.
    pub edge_id: String,
    /// Edge group.
    pub group: Option<String>,
    /// Rendezvous score (higher ranks first).
    pub score: f64,
    /// Capacity (the weight), bits per second.
    pub capacity_bps: u64,
    /// Load the edge reported in its last ad, bits per second.
    pub load_bps: u64,
    /// Load this router assigned since that ad, bits per second.
    pub assigned_bps: u64,
    /// `(load + assigned) / capacity`, before this viewer.
    pub utilization: f64,
    /// The bounded-load ceiling at this edge's rank among the competing
    /// edges, bits per second; for competing edges only.
    pub bound_bps: Option<f64>,
    /// Milliseconds until the ad goes stale (negative: stale since); absent for static edges.
    pub fresh_for_ms: Option<i64>,
    /// Milliseconds until the hold-down ends (0: eligible); absent when the edge has none.
    pub eligible_in_ms: Option<i64>,
    /// What selection made of it.
    pub verdict: Verdict,
}

/// What selection made of one edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// This is the chosen edge.
    Chosen,
    /// Its ad is older than its TTL.
    Stale,
    /// It is draining.
    Draining,
    /// It is in its flap hold-down.
    HoldDown,
    /// It has capacity 0.
    NoCapacity,
    /// Its URL is plain http and the viewer is on https (mixed content).
    PlainHttp,
    /// It is a candidate of another group than the viewer's.
    OtherGroup,
    /// It ranks above the chosen edge but its load was over its ceiling.
    OverBound,
    /// It ranks below the chosen edge.
    RankedLower,
    /// The viewer stayed on its session's edge, so ranking was not needed.
    StickyElsewhere,
}

#[cfg(test)]
mod tests;
