//! The router's view of the edge fleet: the newest ad of every edge, and
//! when it arrived. A small state machine with time passed in; the server
//! wraps it in a lock and rebuilds the selector after each change.
//!
//! - An ad replaces the stored one only if newer ([`Ad::is_newer_than`]), or
//!   if the stored one has expired and the ad comes from another instance
//!   (an edge restarted with a clock that stepped back).
//! - An edge that was stale and comes back is held down: it gets no new
//!   viewers until it has stayed fresh for `hold_down`, so a flapping edge
//!   does not pull viewers back and forth.
//! - [`FleetView::transitions`] reports each edge's flips (fresh ↔ stale,
//!   ready ↔ draining) once, for logs, events and metrics.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use router_api::fleet::{Ad, EdgeSnapshot, EdgeState, FleetSnapshot};

/// What became of an ad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Stored: the first ad of this edge, or newer than the stored one.
    Stored,
    /// Not newer than the stored ad: dropped, not forwarded.
    NotNewer,
}

/// A change of an edge worth telling operators about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// First ad of an edge this router did not know.
    Joined(String),
    /// The edge's newest ad expired.
    Stale(String),
    /// A stale edge is fresh again.
    Fresh(String),
    /// The edge changed state (ready ↔ draining).
    State(String, EdgeState),
    /// The edge was stale so long that it was forgotten.
    Forgotten(String),
}

#[derive(Debug, Clone)]
struct Record {
    ad: Ad,
    received_at: Instant,
    eligible_since: Option<Instant>,
    /// Freshness and state as last reported by `transitions`.
    reported: Option<(bool, EdgeState)>,
}

impl Record {
    fn fresh_until(&self) -> Instant {
        let ttl = Duration::from_millis(self.ad.ttl_ms);
        self.received_at.checked_add(ttl).unwrap_or(self.received_at)
    }

    fn is_fresh(&self, now: Instant) -> bool {
        now < self.fresh_until()
    }
}

/// Every edge's newest ad.
#[derive(Debug, Clone)]
pub struct FleetView {
    edges: BTreeMap<String, Record>,
    hold_down: Duration,
    forget_after: Duration,
}

/// One edge as the view holds it.
#[derive(Debug, Clone)]
pub struct EdgeRecord<'a> {
    /// The newest ad.
    pub ad: &'a Ad,
    /// How long ago it arrived.
    pub age: Duration,
    /// Whether it is within its TTL.
    pub fresh: bool,
    /// Whether the edge is out of its hold-down.
    pub eligible: bool,
}

impl FleetView {
    /// An empty view; comebacks are held down for `hold_down`, edges stale for
    /// `forget_after` are dropped.
    pub fn new(hold_down: Duration, forget_after: Duration) -> Self {
        Self {
            edges: BTreeMap::new(),
            hold_down,
            forget_after,
        }
    }

    /// Applies a validated ad received at `now` (`age` earlier, for ads
    /// copied from a peer's view).
    pub fn apply(&mut self, ad: Ad, now: Instant, age: Duration) -> Applied {
        let received_at = now.checked_sub(age).unwrap_or(now);
        match self.edges.get_mut(&ad.edge_id) {
            None => {
                let record = Record {
                    ad,
                    received_at,
                    eligible_since: None,
                    reported: None,
                };
                self.edges.insert(record.ad.edge_id.clone(), record);
                Applied::Stored
            }
            Some(record) => {
                let expired = !record.is_fresh(now);
                let restarted = record.ad.instance != ad.instance;
                if !(ad.is_newer_than(&record.ad) || (expired && restarted)) {
                    return Applied::NotNewer;
                }
                if expired {
                    record.eligible_since = Some(now + self.hold_down);
                }
                record.ad = ad;
                record.received_at = received_at;
                Applied::Stored
            }
        }
    }

    /// The snapshot selection is built from.
    pub fn snapshot(&self) -> FleetSnapshot {
        FleetSnapshot::new(
            self.edges
                .values()
                .map(|r| EdgeSnapshot::from_ad(&r.ad, r.received_at, r.eligible_since))
                .collect(),
        )
    }

    /// Every edge, by id.
    pub fn records(&self, now: Instant) -> impl Iterator<Item = EdgeRecord<'_>> {
        self.edges.values().map(move |r| EdgeRecord {
            ad: &r.ad,
            age: now.saturating_duration_since(r.received_at),
            fresh: r.is_fresh(now),
            eligible: r.eligible_since.is_none_or(|since| now >= since),
        })
    }

    /// Flips since the last call, each reported once; forgets edges stale
    /// for longer than `forget_after`.
    pub fn transitions(&mut self, now: Instant) -> Vec<Transition> {
        let mut out = Vec::new();
        let forget_after = self.forget_after;
        self.edges.retain(|id, r| {
            let keep = r.is_fresh(now) || now.saturating_duration_since(r.fresh_until()) < forget_after;
            if !keep {
                out.push(Transition::Forgotten(id.clone()));
            }
            keep
        });
        for (id, record) in &mut self.edges {
            let current = (record.is_fresh(now), record.ad.state);
            match record.reported {
                None => out.push(Transition::Joined(id.clone())),
                Some((was_fresh, was_state)) => {
                    if was_fresh && !current.0 {
                        out.push(Transition::Stale(id.clone()));
                    } else if !was_fresh && current.0 {
                        out.push(Transition::Fresh(id.clone()));
                    }
                    if was_state != current.1 {
                        out.push(Transition::State(id.clone(), current.1));
                    }
                }
            }
            record.reported = Some(current);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use router_api::fleet::{Capacity, Instance, Load};

    fn ad(id: &str, instance: &str, started: u64, generation: u64, state: EdgeState) -> Ad {
        Ad {
            edge_id: id.to_owned(),
            public_url: format!("http://127.0.0.1:9000/{id}"),
            group: None,
            state,
            capacity: Capacity {
                egress_bps: 1_000_000,
                connections: 100,
            },
            load: Load::default(),
            hot_streams: Vec::new(),
            ttl_ms: 3000,
            instance: Instance {
                started_unix_ms: started,
                id: instance.to_owned(),
            },
            generation,
        }
    }

    const HOLD: Duration = Duration::from_secs(2);

    #[test]
    fn only_newer_ads_are_stored() {
        let t0 = Instant::now();
        let mut view = FleetView::new(HOLD, Duration::from_secs(600));
        assert_eq!(
            view.apply(ad("e1", "a", 1, 5, EdgeState::Ready), t0, Duration::ZERO),
            Applied::Stored
        );
        assert_eq!(
            view.apply(ad("e1", "a", 1, 5, EdgeState::Ready), t0, Duration::ZERO),
            Applied::NotNewer
        );
        assert_eq!(
            view.apply(ad("e1", "a", 1, 4, EdgeState::Ready), t0, Duration::ZERO),
            Applied::NotNewer
        );
        assert_eq!(
            view.apply(ad("e1", "a", 1, 6, EdgeState::Ready), t0, Duration::ZERO),
            Applied::Stored
        );
        // A restart (later start) is newer whatever its generation.
        assert_eq!(
            view.apply(ad("e1", "b", 2, 0, EdgeState::Ready), t0, Duration::ZERO),
            Applied::Stored
        );
        // An old instance's ad, still circulating, is not.
        assert_eq!(
            view.apply(ad("e1", "a", 1, 99, EdgeState::Ready), t0, Duration::ZERO),
            Applied::NotNewer
        );
    }

    #[test]
    fn a_comeback_is_held_down_and_flips_are_reported_once() {
        let t0 = Instant::now();
        let mut view = FleetView::new(HOLD, Duration::from_secs(600));
        view.apply(ad("e1", "a", 1, 1, EdgeState::Ready), t0, Duration::ZERO);
        assert_eq!(view.transitions(t0), [Transition::Joined("e1".into())]);
        assert!(view.transitions(t0).is_empty());

        let t4 = t0 + Duration::from_secs(4);
        assert_eq!(view.transitions(t4), [Transition::Stale("e1".into())]);
        view.apply(ad("e1", "a", 1, 2, EdgeState::Ready), t4, Duration::ZERO);
        assert_eq!(view.transitions(t4), [Transition::Fresh("e1".into())]);
        let held = view.snapshot().edges[0].clone();
        assert!(held.is_fresh(t4) && !held.is_eligible(t4), "held down");
        assert!(held.is_eligible(t4 + HOLD));

        view.apply(ad("e1", "a", 1, 3, EdgeState::Draining), t4, Duration::ZERO);
        assert_eq!(
            view.transitions(t4),
            [Transition::State("e1".into(), EdgeState::Draining)]
        );
    }

    #[test]
    fn an_expired_edge_from_a_new_instance_is_taken_even_with_an_older_clock() {
        let t0 = Instant::now();
        let mut view = FleetView::new(HOLD, Duration::from_secs(600));
        view.apply(ad("e1", "a", 1000, 7, EdgeState::Ready), t0, Duration::ZERO);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            view.apply(ad("e1", "b", 500, 0, EdgeState::Ready), later, Duration::ZERO),
            Applied::Stored
        );
    }

    #[test]
    fn long_stale_edges_are_forgotten_and_copied_ads_keep_their_age() {
        let t0 = Instant::now();
        let mut view = FleetView::new(HOLD, Duration::from_secs(60));
        view.apply(
            ad("e1", "a", 1, 1, EdgeState::Ready),
            t0,
            Duration::from_millis(2500),
        );
        let record = view.records(t0).next().map(|r| (r.fresh, r.age));
        assert_eq!(record, Some((true, Duration::from_millis(2500))));
        assert!(!view.records(t0 + Duration::from_secs(1)).all(|r| r.fresh));
        view.transitions(t0);
        let gone = view.transitions(t0 + Duration::from_secs(120));
        assert_eq!(gone, [Transition::Forgotten("e1".into())]);
        assert_eq!(view.snapshot().edges.len(), 0);
    }
}
