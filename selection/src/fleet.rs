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
//! - An edge may also hold a link to this router (a long-lived request, see
//!   `POST /api/v1/link`). When its last link breaks, the kernel closed the
//!   edge's sockets: the process died. The edge counts as stale at once
//!   instead of after its TTL, and ads of that instance still in flight (a
//!   peer forwarding its last heartbeat) are ignored for one TTL unless it
//!   links again. A link coming back is a comeback: held down. A router that
//!   saw a link break tells its peers; a peer holding its own link from that
//!   instance keeps trusting it, any other marks the edge lost too.
//! - [`FleetView::transitions`] reports each edge's flips (fresh ↔ stale,
//!   ready ↔ draining) once, for logs, events and metrics.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::time::{Duration, Instant};

use router_api::fleet::{Ad, EdgeState};

use crate::snapshot::{EdgeSnapshot, FleetSnapshot};

/// What became of an ad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Stored: the first ad of this edge, or newer than the stored one.
    Stored,
    /// Not newer than the stored ad: dropped, not forwarded.
    NotNewer,
    /// Another instance of the edge holds a link to this router and its
    /// ads are fresh: the ad claims an identity in use, and is dropped.
    Contested,
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
    /// When the last link of this ad's instance broke.
    lost_at: Option<Instant>,
}

impl Record {
    fn ttl(&self) -> Duration {
        Duration::from_millis(self.ad.ttl_ms)
    }

    fn fresh_until(&self) -> Instant {
        let expires = self
            .received_at
            .checked_add(self.ttl())
            .unwrap_or(self.received_at);
        self.lost_at.map_or(expires, |lost| lost.min(expires))
    }

    /// Whether `ad` is its own instance's heartbeat sent before the link
    /// broke, arriving within one TTL of the break.
    fn is_quarantined(&self, ad: &Ad, now: Instant) -> bool {
        self.lost_at.is_some_and(|lost| {
            ad.instance == self.ad.instance && now < lost.checked_add(self.ttl()).unwrap_or(lost)
        })
    }

    fn is_fresh(&self, now: Instant) -> bool {
        now < self.fresh_until()
    }
}

/// Every edge's newest ad.
#[derive(Debug, Clone)]
pub struct FleetView {
    edges: BTreeMap<String, Record>,
    /// Open links by (edge id, instance id).
    links: BTreeMap<(String, String), usize>,
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
            links: BTreeMap::new(),
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
                    lost_at: None,
                };
                self.edges.insert(record.ad.edge_id.clone(), record);
                Applied::Stored
            }
            Some(record) => {
                let expired = !record.is_fresh(now);
                let restarted = record.ad.instance != ad.instance;
                // A live, linked instance keeps its identity: a newer
                // instance is taken once its link broke or its ads stopped.
                let held = self
                    .links
                    .contains_key(&(ad.edge_id.clone(), record.ad.instance.id.clone()));
                if restarted && !expired && held {
                    return Applied::Contested;
                }
                if !(ad.is_newer_than(&record.ad) || (expired && restarted))
                    || record.is_quarantined(&ad, now)
                {
                    return Applied::NotNewer;
                }
                if expired {
                    record.eligible_since = Some(now + self.hold_down);
                }
                record.ad = ad;
                record.received_at = received_at;
                record.lost_at = None;
                Applied::Stored
            }
        }
    }

    /// An edge instance opened a link. True when that ends a loss (the
    /// edge is held down from `now`, and fresh again with its next ad).
    pub fn link_opened(&mut self, edge: &str, instance: &str, now: Instant) -> bool {
        *self
            .links
            .entry((edge.to_owned(), instance.to_owned()))
            .or_default() += 1;
        match self.edges.get_mut(edge) {
            Some(record) if record.ad.instance.id == instance && record.lost_at.is_some() => {
                record.lost_at = None;
                // The ad from before the loss does not count: fresh again
                // only with a new one.
                record.received_at = now.checked_sub(record.ttl()).unwrap_or(record.received_at);
                record.eligible_since = Some(now + self.hold_down);
                true
            }
            _ => false,
        }
    }

    /// A link of an edge instance ended. True when it was the instance's last
    /// and the edge was fresh: it is stale from `now`.
    pub fn link_closed(&mut self, edge: &str, instance: &str, now: Instant) -> bool {
        let Entry::Occupied(mut open) = self.links.entry((edge.to_owned(), instance.to_owned())) else {
            return false;
        };
        *open.get_mut() -= 1;
        if *open.get() > 0 {
            return false;
        }
        open.remove();
        self.mark_lost(edge, instance, now)
    }

    /// Links open to this router.
    pub fn open_links(&self) -> usize {
        self.links.values().sum()
    }

    /// Another router saw the last link of an edge instance break. True when
    /// this router holds no link from it and the edge was fresh: it is stale
    /// from `now`.
    /// `generation` is the notifier's newest ad of that instance when its
    /// link broke: a newer one stored here since means the edge spoke after
    /// the break, and the notice is stale.
    pub fn lost_elsewhere(
        &mut self,
        edge: &str,
        instance: &str,
        generation: Option<u64>,
        now: Instant,
    ) -> bool {
        let linked = self.links.contains_key(&(edge.to_owned(), instance.to_owned()));
        let spoke_since = self
            .edges
            .get(edge)
            .is_some_and(|r| r.ad.instance.id == instance && generation.is_some_and(|g| r.ad.generation > g));
        !linked && !spoke_since && self.mark_lost(edge, instance, now)
    }

    /// The generation of the newest ad of `edge`'s `instance`, if that is the instance held.
    pub fn generation_of(&self, edge: &str, instance: &str) -> Option<u64> {
        self.edges
            .get(edge)
            .filter(|r| r.ad.instance.id == instance)
            .map(|r| r.ad.generation)
    }

    fn mark_lost(&mut self, edge: &str, instance: &str, now: Instant) -> bool {
        match self.edges.get_mut(edge) {
            Some(record) if record.ad.instance.id == instance && record.is_fresh(now) => {
                record.lost_at = Some(now);
                true
            }
            _ => false,
        }
    }

    /// The snapshot selection is built from.
    pub fn snapshot(&self) -> FleetSnapshot {
        FleetSnapshot::new(
            self.edges
                .values()
                .map(|r| {
                    let mut edge = EdgeSnapshot::from_ad(&r.ad, r.received_at, r.eligible_since);
                    edge.fresh_until = Some(r.fresh_until());
                    edge
                })
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

    #[test]
    fn a_broken_link_makes_the_edge_stale_at_once_and_quarantines_its_last_ads() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut view = FleetView::new(HOLD, Duration::from_secs(600));
        view.apply(ad("e1", "a", 1, 1, EdgeState::Ready), t0, Duration::ZERO);
        assert!(!view.link_opened("e1", "a", t0), "no loss to end");
        view.transitions(t0);

        assert!(view.link_closed("e1", "a", t0 + ms(10)));
        assert!(!view.snapshot().edges[0].is_fresh(t0 + ms(10)));
        assert_eq!(view.transitions(t0 + ms(10)), [Transition::Stale("e1".into())]);
        // Its last heartbeat, forwarded late by a peer, does not revive it…
        assert_eq!(
            view.apply(ad("e1", "a", 1, 2, EdgeState::Ready), t0 + ms(50), Duration::ZERO),
            Applied::NotNewer
        );
        assert!(!view.records(t0 + ms(50)).any(|r| r.fresh));
        // …but a heartbeat after one TTL does, held down like any comeback.
        let later = t0 + ms(3100);
        assert_eq!(
            view.apply(ad("e1", "a", 1, 3, EdgeState::Ready), later, Duration::ZERO),
            Applied::Stored
        );
        let edge = view.snapshot().edges[0].clone();
        assert!(edge.is_fresh(later) && !edge.is_eligible(later));
        assert!(edge.is_eligible(later + HOLD));
    }

    #[test]
    fn only_the_last_link_of_the_current_instance_counts() {
        let t0 = Instant::now();
        let mut view = FleetView::new(HOLD, Duration::from_secs(600));
        view.apply(ad("e1", "a", 1, 1, EdgeState::Ready), t0, Duration::ZERO);
        view.link_opened("e1", "a", t0);
        view.link_opened("e1", "a", t0);
        view.link_opened("e1", "old", t0);
        assert!(!view.link_closed("e1", "a", t0), "another link is open");
        assert!(!view.link_closed("e1", "old", t0), "not the stored instance");
        assert!(!view.link_closed("e1", "never-opened", t0));
        assert!(!view.link_closed("e2", "a", t0), "unknown edge");
        assert!(view.records(t0).all(|r| r.fresh));
        assert!(view.link_closed("e1", "a", t0));
        assert!(!view.records(t0).any(|r| r.fresh));
        assert!(!view.link_closed("e1", "a", t0), "closed once only");
    }

    #[test]
    fn a_link_coming_back_is_a_held_down_comeback() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut view = FleetView::new(HOLD, Duration::from_secs(600));
        view.apply(ad("e1", "a", 1, 1, EdgeState::Ready), t0, Duration::ZERO);
        view.link_opened("e1", "a", t0);
        view.link_closed("e1", "a", t0 + ms(100));
        assert!(view.link_opened("e1", "a", t0 + ms(200)));
        assert!(
            !view.records(t0 + ms(200)).any(|r| r.fresh),
            "fresh only with a new ad"
        );
        let at = t0 + ms(300);
        assert_eq!(
            view.apply(ad("e1", "a", 1, 2, EdgeState::Ready), at, Duration::ZERO),
            Applied::Stored
        );
        let edge = view.snapshot().edges[0].clone();
        assert!(edge.is_fresh(at) && !edge.is_eligible(at) && edge.is_eligible(at + HOLD));
    }

    #[test]
    fn a_restarted_instance_is_taken_at_once_after_a_loss() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut view = FleetView::new(HOLD, Duration::from_secs(600));
        view.apply(ad("e1", "a", 1, 9, EdgeState::Ready), t0, Duration::ZERO);
        view.link_opened("e1", "a", t0);
        view.link_closed("e1", "a", t0 + ms(10));
        let at = t0 + ms(500);
        assert_eq!(
            view.apply(ad("e1", "b", 2, 1, EdgeState::Ready), at, Duration::ZERO),
            Applied::Stored
        );
        let edge = view.snapshot().edges[0].clone();
        assert!(edge.is_fresh(at) && !edge.is_eligible(at) && edge.is_eligible(at + HOLD));
    }

    #[test]
    fn a_loss_notice_older_than_the_edge_s_newest_ad_is_ignored() {
        let t0 = Instant::now();
        let mut view = FleetView::new(HOLD, Duration::from_secs(600));
        // The partition heals: the edge's ad 7 arrives, then a peer's late
        // notice that it lost the link when it held ad 5.
        view.apply(ad("e1", "a", 1, 7, EdgeState::Ready), t0, Duration::ZERO);
        assert!(
            !view.lost_elsewhere("e1", "a", Some(5), t0),
            "the edge spoke since"
        );
        assert!(view.records(t0).all(|r| r.fresh));
        assert_eq!(view.generation_of("e1", "a"), Some(7));
        assert_eq!(view.generation_of("e1", "b"), None);
        // A notice as new as what is stored (a kill) counts.
        assert!(view.lost_elsewhere("e1", "a", Some(7), t0));
    }

    #[test]
    fn a_loss_seen_elsewhere_counts_unless_this_router_holds_a_link() {
        let t0 = Instant::now();
        let mut view = FleetView::new(HOLD, Duration::from_secs(600));
        view.apply(ad("e1", "a", 1, 1, EdgeState::Ready), t0, Duration::ZERO);
        view.apply(ad("e2", "b", 1, 1, EdgeState::Ready), t0, Duration::ZERO);
        view.link_opened("e2", "b", t0);
        assert!(
            !view.lost_elsewhere("e2", "b", Some(1), t0),
            "its own link says alive"
        );
        assert!(
            !view.lost_elsewhere("e1", "other", Some(1), t0),
            "not the stored instance"
        );
        assert!(view.lost_elsewhere("e1", "a", Some(1), t0));
        assert!(!view.lost_elsewhere("e1", "a", None, t0), "already lost");
        let fresh: Vec<(String, bool)> = view
            .records(t0)
            .map(|r| (r.ad.edge_id.clone(), r.fresh))
            .collect();
        assert_eq!(fresh, [("e1".to_owned(), false), ("e2".to_owned(), true)]);
    }

    mod order {
        use proptest::prelude::*;
        use proptest::sample::Index;

        use super::*;

        /// An ad whose every field follows from (edge, instance, start,
        /// generation): two ads with the same key are the same ad.
        fn keyed_ad((edge, instance, started, generation): (usize, String, u64, u64)) -> Ad {
            let state = if generation % 2 == 0 {
                EdgeState::Ready
            } else {
                EdgeState::Draining
            };
            let mut ad = ad(&format!("e{edge}"), &instance, started, generation, state);
            ad.load.egress_bps = started * 100 + generation;
            ad
        }

        /// A set of ads of a few edges, and the same set in another order.
        fn ads_and_shuffled() -> impl Strategy<Value = (Vec<Ad>, Vec<Ad>)> {
            proptest::collection::vec((0usize..3, "[ab]", 0u64..3, 0u64..4).prop_map(keyed_ad), 1..12)
                .prop_flat_map(|ads| (Just(ads.clone()), Just(ads).prop_shuffle()))
        }

        /// What the view shows: the snapshot selection reads and every record.
        type Shown = (FleetSnapshot, Vec<(Ad, Duration, bool, bool)>);

        fn view_of(ads: &[Ad], now: Instant) -> Shown {
            let mut view = FleetView::new(HOLD, Duration::from_secs(600));
            for ad in ads {
                view.apply(ad.clone(), now, Duration::ZERO);
            }
            let records = view
                .records(now)
                .map(|r| (r.ad.clone(), r.age, r.fresh, r.eligible))
                .collect();
            (view.snapshot(), records)
        }

        proptest! {
            #[test]
            fn any_order_or_duplication_of_ads_gives_the_same_view(
                (ads, shuffled) in ads_and_shuffled(),
                repeats in proptest::collection::vec((any::<Index>(), any::<Index>()), 0..8),
            ) {
                let now = Instant::now();
                let mut replayed = shuffled;
                for (which, at) in repeats {
                    let ad = which.get(&ads).clone();
                    replayed.insert(at.index(replayed.len() + 1), ad);
                }
                let shown = view_of(&ads, now);
                prop_assert_eq!(&view_of(&replayed, now), &shown);
                // And it is each edge's newest ad.
                let mut newest: Vec<&Ad> = Vec::new();
                for ad in &ads {
                    match newest.iter_mut().find(|n| n.edge_id == ad.edge_id) {
                        Some(held) if ad.is_newer_than(held) => *held = ad,
                        Some(_) => {}
                        None => newest.push(ad),
                    }
                }
                newest.sort_by(|a, b| a.edge_id.cmp(&b.edge_id));
                let stored: Vec<&Ad> = shown.1.iter().map(|r| &r.0).collect();
                prop_assert_eq!(stored, newest);
            }
        }
    }
}
