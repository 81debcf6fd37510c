//! Unit and property tests of steering plans.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use router_api::fleet::EdgeState;
use selection::snapshot::{EdgeSnapshot, FleetSnapshot};

use super::*;
use crate::select::Policy;

const GBPS: u64 = 1_000_000_000;

/// Edge health in a generated fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Serving,
    Dead,
    Draining,
    HeldDown,
    Full,
}

fn edge(id: &str, health: Health, now: Instant) -> EdgeSnapshot {
    EdgeSnapshot {
        id: id.to_owned(),
        base_url: format!("http://{id}.example"),
        group: None,
        state: if health == Health::Draining {
            EdgeState::Draining
        } else {
            EdgeState::Ready
        },
        capacity_bps: GBPS,
        load_bps: if health == Health::Full { GBPS } else { 0 },
        fresh_until: Some(if health == Health::Dead {
            now - Duration::from_secs(1)
        } else {
            now + Duration::from_secs(3)
        }),
        eligible_since: (health == Health::HeldDown).then(|| now + Duration::from_secs(1)),
    }
}

fn selector(fleet: &[(&str, Health)], now: Instant) -> Selector {
    Selector::build(
        &FleetSnapshot::new(fleet.iter().map(|(id, h)| edge(id, *h, now)).collect()),
        Policy::default(),
    )
}

const REQ: Request<'static> = Request {
    stream_key: "live/a",
    sticky: None,
    group: None,
    bandwidth_bps: 0,
    https: false,
};

fn offered(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn a_healthy_fleet_keeps_the_offered_order_and_clones_nothing() {
    let now = Instant::now();
    let sel = selector(
        &[
            ("e1", Health::Serving),
            ("e2", Health::Serving),
            ("e3", Health::Serving),
        ],
        now,
    );
    let offered = offered(&["e2", "e1"]);
    let plan = plan(&sel, now, &[], &REQ, &offered, None, 2);
    assert_eq!(plan.priority, ["e2", "e1"]);
    assert!(plan.clones.is_empty());
    assert_eq!(plan.moved, None);
    // The player's current pathway comes first: it is not moved back.
    let plan = super::plan(&sel, now, &[], &REQ, &offered, Some("e1"), 2);
    assert_eq!(plan.priority, ["e1", "e2"]);
    assert_eq!(plan.moved, None);
}

#[test]
fn dead_draining_and_held_down_pathways_are_dropped_with_the_reason() {
    let now = Instant::now();
    for (health, reason) in [
        (Health::Dead, Unavailable::Stale),
        (Health::Draining, Unavailable::Draining),
        (Health::HeldDown, Unavailable::HoldDown),
    ] {
        let sel = selector(
            &[("e1", health), ("e2", Health::Serving), ("e3", Health::Serving)],
            now,
        );
        let offered = offered(&["e1", "e2", "e3"]);
        let plan = plan(&sel, now, &[], &REQ, &offered, Some("e1"), 3);
        assert_eq!(plan.priority, ["e2", "e3"], "{health:?}");
        assert_eq!(plan.moved, Some(reason), "{health:?}");
        assert!(plan.clones.is_empty(), "no other edge to clone onto");
    }
}

#[test]
fn an_edge_over_the_cap_goes_last_and_an_unknown_one_counts_as_dead() {
    let now = Instant::now();
    let sel = selector(&[("e1", Health::Full), ("e2", Health::Serving)], now);
    let offered = offered(&["e1", "e2", "gone"]);
    let plan = plan(&sel, now, &[], &REQ, &offered, Some("e1"), 2);
    assert_eq!(plan.priority, ["e2", "e1"]);
    assert_eq!(plan.moved, Some(Unavailable::OverCap));
    let plan = super::plan(&sel, now, &[], &REQ, &offered, Some("gone"), 2);
    assert_eq!(plan.moved, Some(Unavailable::Stale));
}

#[test]
fn clones_replace_lost_pathways_from_the_first_serving_one() {
    let now = Instant::now();
    let sel = selector(
        &[
            ("e1", Health::Dead),
            ("e2", Health::Serving),
            ("e3", Health::Serving),
            ("e4", Health::Draining),
        ],
        now,
    );
    let offered = offered(&["e1", "e2"]);
    let plan = plan(&sel, now, &[], &REQ, &offered, Some("e1"), 2);
    assert_eq!(plan.priority, ["e2", "e3"]);
    assert_eq!(plan.clones, ["e3"]);
    assert_eq!(plan.base, "e2");
    // Once on the clone, the viewer stays there and the clone is kept.
    let plan = super::plan(&sel, now, &[], &REQ, &offered, Some("e3"), 2);
    assert_eq!(plan.priority, ["e3", "e2"]);
    assert_eq!(plan.clones, ["e3"]);
    assert_eq!(plan.moved, None);
}

#[test]
fn nothing_serving_leaves_the_offered_pathways() {
    let now = Instant::now();
    let sel = selector(&[("e1", Health::Dead), ("e2", Health::Draining)], now);
    let offered = offered(&["e1", "e2"]);
    let plan = plan(&sel, now, &[], &REQ, &offered, Some("e1"), 2);
    assert_eq!(plan.priority, ["e1", "e2"]);
    assert!(plan.clones.is_empty());
    assert_eq!(plan.base, "e1");
}

fn health() -> impl Strategy<Value = Health> {
    prop_oneof![
        4 => Just(Health::Serving),
        1 => Just(Health::Dead),
        1 => Just(Health::Draining),
        1 => Just(Health::HeldDown),
        1 => Just(Health::Full),
    ]
}

proptest! {
    #[test]
    fn plans_are_sound(
        fleet in proptest::collection::vec(health(), 1..8),
        offered_mask in proptest::collection::vec(any::<bool>(), 8),
        current in proptest::option::of(0usize..9),
        want in 1usize..5,
    ) {
        let now = Instant::now();
        let ids: Vec<String> = (0..fleet.len()).map(|i| format!("e{i}")).collect();
        let pairs: Vec<(&str, Health)> = ids.iter().map(String::as_str).zip(fleet.iter().copied()).collect();
        let sel = selector(&pairs, now);
        let mut offered: Vec<String> = ids.iter().zip(&offered_mask).filter(|(_, m)| **m).map(|(id, _)| id.clone()).take(4).collect();
        if offered.is_empty() {
            offered.push(ids[0].clone());
        }
        let current_id = current.map(|i| format!("e{i}"));
        let p = plan(&sel, now, &[], &REQ, &offered, current_id.as_deref(), want);
        let health_of = |id: &str| pairs.iter().find(|(e, _)| *e == id).map(|(_, h)| *h);
        let serves = |id: &str| matches!(health_of(id), Some(Health::Serving | Health::Full));

        // Deterministic: the same inputs give the same plan.
        prop_assert_eq!(&p, &plan(&sel, now, &[], &REQ, &offered, current_id.as_deref(), want));
        // No pathway twice.
        let mut seen = std::collections::BTreeSet::new();
        prop_assert!(p.priority.iter().all(|id| seen.insert(*id)), "{:?}", p.priority);
        // Every clone is in the priority, not an offered pathway, and serves.
        for c in &p.clones {
            prop_assert!(p.priority.contains(c));
            prop_assert!(!offered.iter().any(|o| o == c));
            prop_assert!(serves(c));
        }
        // Every listed pathway is offered or cloned.
        for id in &p.priority {
            prop_assert!(offered.iter().any(|o| o == id) || p.clones.contains(id));
        }
        let any_serving = offered.iter().any(|o| serves(o)) || !p.clones.is_empty();
        if any_serving {
            // Dead, draining and held-down pathways are never listed.
            prop_assert!(p.priority.iter().all(|id| serves(id)), "{:?}", p.priority);
        } else {
            prop_assert_eq!(p.priority.clone(), offered.iter().map(String::as_str).collect::<Vec<_>>());
        }
        // A serving edge exists: the first pathway serves and is under the cap
        // when any listed one is.
        if p.priority.iter().any(|id| health_of(id) == Some(Health::Serving)) {
            prop_assert_eq!(health_of(p.priority[0]), Some(Health::Serving));
        }
        // The current pathway stays first while it can serve; otherwise the
        // plan says why it moved.
        if let Some(c) = current_id.as_deref() {
            if health_of(c) == Some(Health::Serving) && (offered.iter().any(|o| o == c) || p.clones.contains(&c)) {
                prop_assert_eq!(p.priority[0], c);
                prop_assert_eq!(p.moved, None);
            } else if p.priority[0] != c {
                prop_assert!(p.moved.is_some());
            }
        }
        // Enough pathways under the cap, when the fleet has them: clones
        // make up for the offered ones that cannot serve.
        let fine = |id: &str| health_of(id) == Some(Health::Serving);
        let fine_edges = pairs.iter().filter(|(id, _)| fine(id)).count();
        let listed_fine = p.priority.iter().filter(|id| fine(id)).count();
        prop_assert!(listed_fine >= want.min(fine_edges), "{:?} of {:?}", p.priority, pairs);
    }
}
