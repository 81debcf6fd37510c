//! Unit and property tests of edge selection.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use router_api::fleet::EdgeState;

use crate::snapshot::{EdgeSnapshot, FleetSnapshot};

use super::*;

const GBPS: u64 = 1_000_000_000;
const MBPS: u64 = 1_000_000;

fn edge(id: &str, capacity_bps: u64, load_bps: u64) -> EdgeSnapshot {
    EdgeSnapshot {
        id: id.to_owned(),
        base_url: format!("http://{id}.example"),
        group: None,
        state: EdgeState::Ready,
        capacity_bps,
        load_bps,
        fresh_until: None,
        eligible_since: None,
    }
}

fn fleet(edges: Vec<EdgeSnapshot>) -> Selector {
    Selector::build(&FleetSnapshot::new(edges), Policy::default())
}

fn equal_fleet(n: usize, load_bps: u64) -> Selector {
    fleet(
        (0..n)
            .map(|i| edge(&format!("edge-{i}"), GBPS, load_bps))
            .collect(),
    )
}

fn req(stream_key: &str) -> Request<'_> {
    Request {
        stream_key,
        sticky: None,
        group: None,
        bandwidth_bps: 0,
        https: false,
    }
}

fn chosen_id(sel: &Selector, choice: Choice) -> Option<&str> {
    choice.index().map(|i| sel.edges()[i].id.as_str())
}

/// Edge indices in rendezvous order for `key`, computed from the hash module
/// directly (an independent restatement of the ranking).
/// The choice of edge `index` at `rank` in the key's rendezvous order.
fn rendezvous(index: usize, rank: usize) -> Choice {
    Choice::Edge {
        index,
        reason: Reason::Rendezvous { rank },
    }
}

fn rendezvous_order(sel: &Selector, key: &str) -> Vec<usize> {
    let kh = hash::stable_hash(key.as_bytes());
    let mut order: Vec<(usize, f64)> = sel
        .edges()
        .iter()
        .enumerate()
        .map(|(i, e)| {
            (
                i,
                hash::score(
                    e.capacity_bps as f64,
                    hash::pair_hash(kh, hash::stable_hash(e.id.as_bytes())),
                ),
            )
        })
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    order.into_iter().map(|(i, _)| i).collect()
}

fn is_candidate(e: &EdgeSnapshot, now: Instant) -> bool {
    e.is_fresh(now) && e.is_eligible(now) && e.state == EdgeState::Ready && e.capacity_bps > 0
}

#[test]
fn golden_ranking() {
    // Frozen: every router version must rank these edges the same way.
    let sel = equal_fleet(5, 0);
    let order: Vec<&str> = rendezvous_order(&sel, "live/demo-1|720p")
        .into_iter()
        .map(|i| sel.edges()[i].id.as_str())
        .collect();
    assert_eq!(order, GOLDEN_ORDER);
    let ex = sel.explain(&req("live/demo-1|720p"), Instant::now(), &[]);
    let explained: Vec<&str> = ex.candidates.iter().map(|c| c.edge_id.as_str()).collect();
    assert_eq!(explained, GOLDEN_ORDER);
}

const GOLDEN_ORDER: [&str; 5] = ["edge-1", "edge-3", "edge-0", "edge-2", "edge-4"];

#[test]
fn documented_examples() {
    // The examples of docs/SELECTION.md.
    let now = Instant::now();
    let key = "live/demo-1|720p";
    let viewer = Request {
        bandwidth_bps: 5 * MBPS,
        ..req(key)
    };
    let at = |loads: [u64; 5]| {
        fleet(
            (0..5)
                .map(|i| edge(&format!("edge-{i}"), GBPS, loads[i] * MBPS))
                .collect(),
        )
    };
    let id = |sel: &Selector, r: &Request<'_>| chosen_id(sel, sel.pick(r, now, &[])).map(str::to_owned);

    let cold = at([400; 5]);
    assert_eq!(id(&cold, &viewer).as_deref(), Some("edge-1"));
    let ex = cold.explain(&viewer, now, &[]);
    assert!(
        (ex.average_utilization - 0.401).abs() < 1e-12 && (ex.ceiling_utilization - 0.50125).abs() < 1e-12
    );

    let hot = at([400, 700, 400, 400, 400]);
    assert_eq!(hot.pick(&viewer, now, &[]), rendezvous(3, 1));
    let ex = hot.explain(&viewer, now, &[]);
    assert!((ex.ceiling_utilization - 0.57625).abs() < 1e-12);
    assert_eq!(
        (ex.candidates[0].edge_id.as_str(), ex.candidates[0].verdict),
        ("edge-1", Verdict::OverBound)
    );

    let sticky = Request {
        sticky: Some("edge-4"),
        ..viewer
    };
    assert_eq!(
        id(&at([400, 400, 400, 400, 900]), &sticky).as_deref(),
        Some("edge-4")
    );
    assert_eq!(
        id(&at([400, 400, 400, 400, 950]), &sticky).as_deref(),
        Some("edge-1")
    );

    // Spill slack by rank: `edge-3`, the key's second edge, keeps half the
    // slack (554.6 Mbit/s at an average of 0.493), `edge-0`, the third, a
    // quarter, the others none.
    let graded = at([400, 700, 400, 560, 400]);
    assert_eq!(graded.pick(&viewer, now, &[]), rendezvous(0, 2));
    let ex = graded.explain(&viewer, now, &[]);
    let expected = [0.616_25, 0.554_625, 0.523_812_5, 0.493];
    assert!(
        ex.ceiling_by_rank
            .iter()
            .zip(expected)
            .all(|(c, e)| (c - e).abs() < 1e-12),
        "{:?}",
        ex.ceiling_by_rank
    );
    let verdicts: Vec<(&str, Verdict, f64)> = ex
        .candidates
        .iter()
        .take(3)
        .map(|c| (c.edge_id.as_str(), c.verdict, c.bound_bps.unwrap_or(0.0)))
        .collect();
    assert_eq!(verdicts[0].0, "edge-1");
    assert_eq!(verdicts[1].0, "edge-3");
    assert_eq!(verdicts[2].0, "edge-0");
    assert_eq!(
        verdicts.iter().map(|v| v.1).collect::<Vec<_>>(),
        [Verdict::OverBound, Verdict::OverBound, Verdict::Chosen]
    );
    for (v, e) in verdicts.iter().zip(&expected[..3]) {
        assert!((v.2 - e * GBPS as f64).abs() < 1.0, "{v:?}");
    }
    // Below its second-edge ceiling but above the average, `edge-3` still
    // takes the key whose own edge is full: a cold key lands on one second edge.
    assert_eq!(
        id(&at([400, 700, 400, 520, 400]), &viewer).as_deref(),
        Some("edge-3")
    );

    let weighted = fleet(vec![edge("big", 10 * GBPS, 0), edge("small", GBPS, 0)]);
    let big = (0..11_000)
        .filter(|k| id(&weighted, &req(&format!("s{k}"))).as_deref() == Some("big"))
        .count();
    assert!((big as f64 / 11_000.0 - 10.0 / 11.0).abs() < 0.01, "{big}");
}

#[test]
fn empty_or_dead_fleet_has_no_edge() {
    let now = Instant::now();
    assert_eq!(fleet(vec![]).pick(&req("k"), now, &[]), Choice::NoEdge);
    let mut stale = edge("a", GBPS, 0);
    stale.fresh_until = Some(now);
    let mut draining = edge("b", GBPS, 0);
    draining.state = EdgeState::Draining;
    let mut held = edge("c", GBPS, 0);
    held.eligible_since = Some(now + Duration::from_millis(1));
    let empty = edge("d", 0, 0);
    let sel = fleet(vec![stale, draining, held, empty]);
    assert_eq!(sel.pick(&req("k"), now, &[]), Choice::NoEdge);
    let ex = sel.explain(
        &Request {
            sticky: Some("a"),
            ..req("k")
        },
        now,
        &[],
    );
    let verdicts: BTreeMap<&str, Verdict> = ex
        .candidates
        .iter()
        .map(|c| (c.edge_id.as_str(), c.verdict))
        .collect();
    assert_eq!(verdicts["a"], Verdict::Stale);
    assert_eq!(verdicts["b"], Verdict::Draining);
    assert_eq!(verdicts["c"], Verdict::HoldDown);
    assert_eq!(verdicts["d"], Verdict::NoCapacity);
    assert_eq!(ex.sticky.map(|s| s.outcome), Some(StickyOutcome::NotCandidate));
    assert_eq!(ex.choice, Choice::NoEdge);
}

#[test]
fn idle_fleet_is_pure_rendezvous() {
    let sel = equal_fleet(8, 0);
    let now = Instant::now();
    for k in 0..200 {
        let key = format!("live/s{k}|720p");
        let top = rendezvous_order(&sel, &key)[0];
        let choice = sel.pick(&req(&key), now, &[]);
        assert_eq!(choice, rendezvous(top, 0));
        assert!(choice.is_new_assignment());
    }
}

#[test]
fn hot_stream_spills_in_rendezvous_order_cold_stays() {
    let now = Instant::now();
    let n = 6;
    let half = GBPS / 2;
    let base = equal_fleet(n, half);
    let key = "live/demo-1|1080p";
    let order = rendezvous_order(&base, key);
    let viewer = Request {
        bandwidth_bps: 5 * MBPS,
        ..req(key)
    };

    // Cold: the top edge is as loaded as the rest, so it keeps the stream.
    assert_eq!(base.pick(&viewer, now, &[]).index(), Some(order[0]));

    // The top edge is hot: the stream spills to the next edge in order.
    let mut assigned = vec![0; n];
    assigned[order[0]] = 4 * GBPS / 10;
    let choice = base.pick(&viewer, now, &assigned);
    assert_eq!(
        choice,
        Choice::Edge {
            index: order[1],
            reason: Reason::Rendezvous { rank: 1 }
        }
    );
    let ex = base.explain(&viewer, now, &assigned);
    assert_eq!(ex.choice, choice);
    assert_eq!(ex.candidates[0].verdict, Verdict::OverBound);
    assert_eq!(ex.candidates[1].verdict, Verdict::Chosen);
    assert!(
        ex.candidates[2..]
            .iter()
            .all(|c| c.verdict == Verdict::RankedLower)
    );

    // The next two as well: the third edge in order.
    assigned[order[1]] = 4 * GBPS / 10;
    assert_eq!(base.pick(&viewer, now, &assigned).index(), Some(order[2]));
}

#[test]
fn cold_streams_stay_packed_hot_streams_spread() {
    let now = Instant::now();
    let n = 10;
    let sel = equal_fleet(n, GBPS / 2);
    let spread = |key: &str, viewers: usize| -> usize {
        let mut assigned = vec![0u64; n];
        let mut used = BTreeSet::new();
        for _ in 0..viewers {
            let r = Request {
                bandwidth_bps: 2 * MBPS,
                ..req(key)
            };
            if let Some(i) = sel.pick(&r, now, &assigned).index() {
                assigned[i] += r.bandwidth_bps;
                used.insert(i);
            }
        }
        used.len()
    };
    assert_eq!(spread("live/cold|240p", 5), 1);
    assert_eq!(spread("live/cold|240p", 50), 1);
    let spreads: Vec<usize> = [10, 100, 500, 1000, 2000]
        .iter()
        .map(|&v| spread("live/hot|1080p", v))
        .collect();
    assert!(spreads.windows(2).all(|w| w[0] <= w[1]), "{spreads:?}");
    assert!(spreads[spreads.len() - 1] >= 6, "{spreads:?}");
}

#[test]
fn never_past_full_while_capacity_remains() {
    let now = Instant::now();
    let n = 5;
    let key = "live/busy|1080p";
    let sel = equal_fleet(n, 88 * GBPS / 100);
    let order = rendezvous_order(&sel, key);
    let viewer = Request {
        bandwidth_bps: 4 * MBPS,
        ..req(key)
    };
    // Fleet at ~90 %: (1 + ε) × average would allow 112 %, but the top edge is full.
    let mut assigned = vec![0; n];
    assigned[order[0]] = 13 * GBPS / 100;
    assert_eq!(sel.pick(&viewer, now, &assigned).index(), Some(order[1]));
    let ex = sel.explain(&viewer, now, &assigned);
    assert!(
        (ex.ceiling_utilization - 1.0).abs() < f64::EPSILON,
        "{}",
        ex.ceiling_utilization
    );

    // Overloaded fleet: the ceiling is the average, so load evens out.
    let over = equal_fleet(n, 12 * GBPS / 10);
    let mut assigned = vec![0; n];
    assigned[order[0]] = GBPS / 100;
    assert_eq!(over.pick(&viewer, now, &assigned).index(), Some(order[1]));
    assert_eq!(over.pick(&viewer, now, &[]).index(), Some(order[0]));
    let ex = over.explain(&viewer, now, &[]);
    assert!((ex.ceiling_utilization - ex.average_utilization).abs() < f64::EPSILON);
}

#[test]
fn capacity_weights_share_of_keys() {
    let now = Instant::now();
    for caps in [vec![1, 2], vec![1, 2, 3], vec![5, 1, 1, 1]] {
        let sel = fleet(
            caps.iter()
                .enumerate()
                .map(|(i, &c)| edge(&format!("w{i}"), c * GBPS, 0))
                .collect(),
        );
        let keys = 30_000;
        let mut counts = vec![0usize; caps.len()];
        for k in 0..keys {
            if let Some(i) = sel.pick(&req(&format!("stream-{k}|v")), now, &[]).index() {
                counts[i] += 1;
            }
        }
        let total: u64 = caps.iter().sum();
        for (i, &c) in caps.iter().enumerate() {
            let share = counts[i] as f64 / keys as f64;
            let expected = c as f64 / total as f64;
            assert!(
                (share - expected).abs() < 0.015,
                "caps {caps:?}: edge {i} got {share}, expected {expected}"
            );
        }
    }
}

#[test]
fn rankings_are_independent_across_edges() {
    // With equal weights every ordering of three edges is equally likely.
    let sel = equal_fleet(3, 0);
    let mut perms: BTreeMap<Vec<usize>, usize> = BTreeMap::new();
    let keys = 60_000;
    for k in 0..keys {
        *perms.entry(rendezvous_order(&sel, &format!("k{k}"))).or_default() += 1;
    }
    assert_eq!(perms.len(), 6);
    for (perm, count) in perms {
        let share = count as f64 / keys as f64;
        assert!((share - 1.0 / 6.0).abs() < 0.01, "{perm:?}: {share}");
    }
}

#[test]
fn stickiness() {
    let now = Instant::now();
    let n = 5;
    let sel = equal_fleet(n, GBPS / 10);
    let key = "live/demo-2|480p";
    let order = rendezvous_order(&sel, key);
    let last = &sel.edges()[order[n - 1]].id;
    let sticky = Request {
        sticky: Some(last),
        bandwidth_bps: 3 * MBPS,
        ..req(key)
    };

    // Kept although it ranks last.
    assert_eq!(
        sel.pick(&sticky, now, &[]),
        Choice::Edge {
            index: order[n - 1],
            reason: Reason::Sticky
        }
    );
    assert!(!sel.pick(&sticky, now, &[]).is_new_assignment());

    // Kept although over the bounded-load ceiling, while under the hard cap.
    let mut assigned = vec![0; n];
    assigned[order[n - 1]] = 8 * GBPS / 10;
    assert_eq!(sel.pick(&sticky, now, &assigned).index(), Some(order[n - 1]));

    // Over the hard cap (counting the viewer): moves, within one request.
    assigned[order[n - 1]] = 85 * GBPS / 100 - 3 * MBPS + 1;
    let moved = sel.pick(&sticky, now, &assigned);
    assert_eq!(
        moved,
        Choice::Edge {
            index: order[0],
            reason: Reason::Rendezvous { rank: 0 }
        }
    );
    let ex = sel.explain(&sticky, now, &assigned);
    assert_eq!(
        ex.sticky.as_ref().map(|s| s.outcome),
        Some(StickyOutcome::OverCap)
    );
    assigned[order[n - 1]] -= 1;
    assert_eq!(
        sel.pick(&sticky, now, &assigned).index(),
        Some(order[n - 1]),
        "exactly at the cap is kept"
    );

    // Unknown edge: a normal assignment.
    let unknown = Request {
        sticky: Some("gone"),
        ..sticky
    };
    assert_eq!(sel.pick(&unknown, now, &[]).index(), Some(order[0]));
    let ex = sel.explain(&unknown, now, &[]);
    assert_eq!(ex.sticky.map(|s| s.outcome), Some(StickyOutcome::UnknownEdge));

    // The session's edge went stale or started draining: moves.
    for change in [
        (|e: &mut EdgeSnapshot, now: Instant| e.fresh_until = Some(now)) as fn(&mut EdgeSnapshot, Instant),
        |e, _| e.state = EdgeState::Draining,
        |e, now| e.eligible_since = Some(now + Duration::from_secs(1)),
    ] {
        let mut edges = sel.edges().to_vec();
        change(&mut edges[order[n - 1]], now);
        let changed = fleet(edges);
        assert_eq!(changed.pick(&sticky, now, &[]).index(), Some(order[0]));
        let ex = changed.explain(&sticky, now, &[]);
        assert_eq!(ex.sticky.map(|s| s.outcome), Some(StickyOutcome::NotCandidate));
        assert!(
            ex.candidates
                .iter()
                .all(|c| c.verdict != Verdict::StickyElsewhere)
        );
    }

    let ex = sel.explain(&sticky, now, &[]);
    assert_eq!(ex.sticky.map(|s| s.outcome), Some(StickyOutcome::Kept));
    let others = ex
        .candidates
        .iter()
        .filter(|c| c.verdict == Verdict::StickyElsewhere)
        .count();
    assert_eq!(others, n - 1);
}

#[test]
fn groups_and_fallback() {
    let now = Instant::now();
    let mut edges: Vec<EdgeSnapshot> = (0..6).map(|i| edge(&format!("e{i}"), GBPS, 0)).collect();
    for (i, e) in edges.iter_mut().enumerate() {
        e.group = Some(if i < 3 { "eu" } else { "us" }.to_owned());
    }
    edges[0].state = EdgeState::Draining;
    let sel = fleet(edges);
    for k in 0..100 {
        let key = format!("s{k}");
        let eu = Request {
            group: Some("eu"),
            ..req(&key)
        };
        let i = sel.pick(&eu, now, &[]).index().expect("an edge");
        assert!(i == 1 || i == 2, "{i}");
        let ex = sel.explain(&eu, now, &[]);
        assert!(!ex.group_fallback);
        assert!(
            ex.candidates
                .iter()
                .filter(|c| c.index >= 3)
                .all(|c| c.verdict == Verdict::OtherGroup)
        );

        // A sticky edge of another group is not kept while the viewer's group has candidates.
        let cross = Request {
            sticky: Some("e4"),
            ..eu
        };
        assert!(matches!(sel.pick(&cross, now, &[]).index(), Some(1 | 2)));

        let asia = Request {
            group: Some("asia"),
            ..req(&key)
        };
        assert!(sel.pick(&asia, now, &[]).index().is_some_and(|i| i != 0));
        assert!(sel.explain(&asia, now, &[]).group_fallback);
        assert_eq!(
            sel.pick(&asia, now, &[]),
            sel.pick(&req(&key), now, &[]),
            "fallback = no group"
        );
    }
}

#[test]
fn extreme_values_do_not_panic() {
    let now = Instant::now();
    let sel = fleet(vec![
        edge("a", u64::MAX, u64::MAX),
        edge("b", 1, u64::MAX),
        edge("c", u64::MAX, 0),
    ]);
    let r = Request {
        bandwidth_bps: u64::MAX,
        sticky: Some("b"),
        ..req("k")
    };
    assert!(sel.pick(&r, now, &[u64::MAX, u64::MAX]).index().is_some());
    let ex = sel.explain(&r, now, &[u64::MAX]);
    assert!(serde_json::to_string(&ex).is_ok());
}

#[test]
fn policy_validation() {
    assert_eq!(Policy::default().validate(), Ok(()));
    let bad = Policy {
        epsilon: -0.1,
        sticky_max_utilization: f64::NAN,
        pack_below_utilization: 2.0,
    };
    assert_eq!(bad.validate(), Err(PolicyError::Epsilon(-0.1)));
    assert!(
        Policy {
            sticky_max_utilization: 0.0,
            ..Policy::default()
        }
        .validate()
        .is_err()
    );
    let sel = Selector::build(&FleetSnapshot::default(), bad);
    assert_eq!(*sel.policy(), Policy::default());
    let sel = Selector::build(
        &FleetSnapshot::default(),
        Policy {
            epsilon: 0.0,
            sticky_max_utilization: 2.0,
            pack_below_utilization: 0.0,
        },
    );
    assert_eq!(
        *sel.policy(),
        Policy {
            epsilon: 0.0,
            sticky_max_utilization: 2.0,
            pack_below_utilization: 0.0,
        }
    );
}

#[test]
fn explanation_json() {
    let now = Instant::now();
    let mut stale = edge("stale", GBPS, 0);
    stale.fresh_until = Some(now - Duration::from_millis(1500));
    let mut fresh = edge("fresh", GBPS, GBPS / 4);
    fresh.fresh_until = Some(now + Duration::from_millis(2000));
    let sel = fleet(vec![stale, fresh]);
    let r = Request {
        bandwidth_bps: MBPS,
        ..req("live/x|720p")
    };
    let json = serde_json::to_value(sel.explain(&r, now, &[0, MBPS])).expect("serializable");
    assert_eq!(json["chosen_edge"], "fresh");
    assert_eq!(json["choice"]["kind"], "edge");
    assert_eq!(json["choice"]["reason"]["kind"], "rendezvous");
    let by_id = |id: &str| {
        json["candidates"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["edge_id"] == id))
            .cloned()
            .expect("listed")
    };
    assert_eq!(by_id("stale")["verdict"], "stale");
    assert_eq!(by_id("stale")["fresh_for_ms"], -1500);
    assert_eq!(by_id("stale")["bound_bps"], serde_json::Value::Null);
    assert_eq!(by_id("fresh")["verdict"], "chosen");
    assert_eq!(by_id("fresh")["fresh_for_ms"], 2000);
    assert_eq!(by_id("fresh")["assigned_bps"], MBPS);
    assert!(json["average_utilization"].as_f64().is_some_and(|a| a > 0.25));
}

#[test]
fn index_lookup() {
    let sel = fleet(vec![edge("m", 1, 0), edge("a", 1, 0), edge("z", 1, 0)]);
    assert_eq!(sel.index_of("a"), Some(1));
    assert_eq!(sel.index_of("z"), Some(2));
    assert_eq!(sel.index_of("m"), Some(0));
    assert_eq!(sel.index_of("b"), None);
}

/// A randomly generated edge, with times relative to `now`.
#[derive(Debug, Clone)]
struct Spec {
    group: Option<&'static str>,
    draining: bool,
    capacity_bps: u64,
    load_percent: u64,
    /// `fresh_until - now` in ms (`None`: static).
    fresh_ms: Option<i64>,
    /// `eligible_since - now` in ms.
    eligible_ms: Option<i64>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::option::of(prop::sample::select(vec!["a", "b"])),
        prop::bool::weighted(0.15),
        prop_oneof![1 => Just(0u64), 8 => 1u64..=8].prop_map(|c| c * GBPS / 2),
        0u64..=120,
        prop::option::of(-3_000i64..3_000),
        prop::option::weighted(0.2, -3_000i64..3_000),
    )
        .prop_map(
            |(group, draining, capacity_bps, load_percent, fresh_ms, eligible_ms)| Spec {
                group,
                draining,
                capacity_bps,
                load_percent,
                fresh_ms,
                eligible_ms,
            },
        )
}

fn at(now: Instant, ms: i64) -> Instant {
    if ms >= 0 {
        now + Duration::from_millis(ms.unsigned_abs())
    } else {
        now - Duration::from_millis(ms.unsigned_abs())
    }
}

fn build_edges(specs: &[Spec], now: Instant) -> Vec<EdgeSnapshot> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| EdgeSnapshot {
            id: format!("edge-{i}"),
            base_url: format!("http://edge-{i}.example"),
            group: s.group.map(str::to_owned),
            state: if s.draining {
                EdgeState::Draining
            } else {
                EdgeState::Ready
            },
            capacity_bps: s.capacity_bps,
            load_bps: s.capacity_bps / 100 * s.load_percent,
            fresh_until: s.fresh_ms.map(|ms| at(now, ms)),
            eligible_since: s.eligible_ms.map(|ms| at(now, ms)),
        })
        .collect()
}

/// A fixed, distant base so that `now - 3 s` is always representable.
fn test_now() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn chooses_a_candidate_iff_one_exists(
        specs in prop::collection::vec(spec(), 0..12),
        key in "[a-z0-9/|-]{1,20}",
        group in prop::option::of(prop::sample::select(vec!["a", "b", "c"])),
        sticky in prop::option::of(0usize..14),
        bandwidth_bps in 0u64..20 * MBPS,
        assigned_percent in prop::collection::vec(0u64..50, 0..12),
    ) {
        let now = test_now();
        let edges = build_edges(&specs, now);
        let assigned: Vec<u64> = assigned_percent.iter().zip(&edges).map(|(p, e)| e.capacity_bps / 100 * p).collect();
        let sticky_id = sticky.map(|i| format!("edge-{i}"));
        let r = Request { stream_key: &key, sticky: sticky_id.as_deref(), group, bandwidth_bps, https: false };
        let sel = fleet(edges.clone());
        let choice = sel.pick(&r, now, &assigned);

        let any_candidate = edges.iter().any(|e| is_candidate(e, now));
        prop_assert_eq!(choice.index().is_some(), any_candidate);
        if let Some(i) = choice.index() {
            // Never stale, draining, held down or without capacity.
            prop_assert!(is_candidate(&edges[i], now), "{:?}", edges[i]);
            let group_has_candidate = edges.iter().any(|e| is_candidate(e, now) && e.group.as_deref() == group);
            if group.is_some() && group_has_candidate {
                prop_assert_eq!(edges[i].group.as_deref(), group);
            }
            if choice == (Choice::Edge { index: i, reason: Reason::Sticky }) {
                prop_assert_eq!(Some(edges[i].id.as_str()), sticky_id.as_deref());
            }
        }

        // Deterministic, and the same whatever the order of the snapshot.
        prop_assert_eq!(sel.pick(&r, now, &assigned), choice);
        let mut reversed = edges.clone();
        reversed.reverse();
        let mut rev_assigned = assigned.clone();
        rev_assigned.resize(edges.len(), 0);
        rev_assigned.reverse();
        let rev = fleet(reversed);
        let rev_choice = rev.pick(&r, now, &rev_assigned);
        prop_assert_eq!(chosen_id(&rev, rev_choice), chosen_id(&sel, choice));

        // Explain agrees with pick and lists every edge in rendezvous order.
        let ex = sel.explain(&r, now, &assigned);
        prop_assert_eq!(ex.choice, choice);
        prop_assert_eq!(ex.candidates.len(), edges.len());
        prop_assert!(ex.candidates.windows(2).all(|w| w[0].score >= w[1].score));
        prop_assert_eq!(ex.candidates.iter().filter(|c| c.verdict == Verdict::Chosen).count(), usize::from(choice.index().is_some()));
        for c in &ex.candidates {
            let e = &edges[c.index];
            if !e.is_fresh(now) {
                prop_assert_eq!(c.verdict, Verdict::Stale);
            } else if e.state == EdgeState::Draining {
                prop_assert_eq!(c.verdict, Verdict::Draining);
            } else if !e.is_eligible(now) {
                prop_assert_eq!(c.verdict, Verdict::HoldDown);
            }
        }
        if let Choice::Edge { index, reason: Reason::Rendezvous { rank } } = choice {
            let above = ex.candidates.iter().take_while(|c| c.index != index);
            prop_assert_eq!(above.filter(|c| c.verdict == Verdict::OverBound).count(), rank);
        }
    }

    #[test]
    fn removing_an_edge_moves_only_its_keys(
        caps in prop::collection::vec(1u64..=4, 2..10),
        removed in any::<prop::sample::Index>(),
        salt in any::<u32>(),
    ) {
        let now = test_now();
        let edges: Vec<EdgeSnapshot> = caps.iter().enumerate().map(|(i, &c)| edge(&format!("e{i}"), c * GBPS, 0)).collect();
        let full = fleet(edges.clone());
        let j = removed.index(edges.len());
        let mut fewer = edges.clone();
        fewer.remove(j);
        let reduced = fleet(fewer);
        let mut added = edges.clone();
        added.push(edge("newcomer", 2 * GBPS, 0));
        let grown = fleet(added);
        for k in 0..200 {
            let key = format!("live/{salt}-{k}|720p");
            let before = chosen_id(&full, full.pick(&req(&key), now, &[]));
            let after = chosen_id(&reduced, reduced.pick(&req(&key), now, &[]));
            if before != Some(edges[j].id.as_str()) {
                prop_assert_eq!(before, after, "key {} moved although its edge stayed", key);
            }
            let with_new = chosen_id(&grown, grown.pick(&req(&key), now, &[]));
            prop_assert!(with_new == before || with_new == Some("newcomer"));
        }
    }

    #[test]
    fn spill_follows_rendezvous_order(n in 3usize..10, key in "[a-z0-9|/]{1,16}", background in 10u64..50) {
        let now = test_now();
        let sel = equal_fleet(n, GBPS / 100 * background);
        let order = rendezvous_order(&sel, &key);
        let viewer = Request { bandwidth_bps: 2 * MBPS, ..req(&key) };
        prop_assert_eq!(sel.pick(&viewer, now, &[]).index(), Some(order[0]), "cold: packed on the top edge");
        let mut assigned = vec![0; n];
        for (spilled, &hot) in order.iter().enumerate().take(n - 1) {
            // Make the next edge in order hot: well above (1 + ε) × average.
            assigned[hot] = GBPS - GBPS / 100 * background;
            let choice = sel.pick(&viewer, now, &assigned);
            prop_assert_eq!(choice.index(), Some(order[spilled + 1]));
            if spilled + 1 >= n / 2 {
                break;
            }
        }
    }

    #[test]
    fn load_stays_within_the_bound(
        caps in prop::collection::vec(1u64..=4, 2..12),
        background in prop::collection::vec(0u64..60, 12),
        viewers in 1usize..400,
        bw_mbps in 1u64..8,
        epsilon in 0.0f64..1.0,
        key in "[a-z0-9]{1,8}",
    ) {
        let now = test_now();
        let bw = bw_mbps * MBPS;
        let edges: Vec<EdgeSnapshot> = caps
            .iter()
            .zip(&background)
            .enumerate()
            .map(|(i, (&c, &b))| edge(&format!("e{i}"), c * GBPS / 4, c * GBPS / 400 * b))
            .collect();
        let sel = Selector::build(&FleetSnapshot::new(edges.clone()), Policy { epsilon, ..Policy::default() });
        let total_cap: f64 = edges.iter().map(|e| e.capacity_bps as f64).sum();
        let mut assigned = vec![0u64; edges.len()];
        let mut spread = Vec::new();
        for _ in 0..viewers {
            let r = Request { bandwidth_bps: bw, ..req(&key) };
            let choice = sel.pick(&r, now, &assigned);
            let i = choice.index().expect("an edge");
            let total_load: f64 = edges.iter().zip(&assigned).map(|(e, a)| (e.load_bps + a) as f64).sum::<f64>() + bw as f64;
            let average = total_load / total_cap;
            let load_before = (edges[i].load_bps + assigned[i]) as f64;
            // Graded slack: half of ε on the key's second edge, none further down.
            if let Choice::Edge { reason: Reason::Rendezvous { rank }, .. } = choice {
                let share = SLACK_BY_RANK.get(rank).copied().unwrap_or(0.0);
                if rank > 0 {
                    let graded = ((1.0 + share * epsilon) * average).min(1.0).max(average);
                    prop_assert!(load_before <= graded * edges[i].capacity_bps as f64 * (1.0 + 1e-9),
                        "rank {} edge {} at {} over {}", rank, i, load_before, graded);
                }
            }
            // (1 + ε) × average, or the packing floor while the fleet is light.
            let pack = Policy::default().pack_below_utilization;
            let bound = ((1.0 + epsilon) * average).max(pack.min(1.0)) * edges[i].capacity_bps as f64;
            prop_assert!(load_before <= bound * (1.0 + 1e-9), "edge {} at {} over bound {}", i, load_before, bound);
            if average <= 1.0 {
                prop_assert!(load_before <= edges[i].capacity_bps as f64 * (1.0 + 1e-9), "full edge {} chosen", i);
            }
            assigned[i] += bw;
            spread.push(assigned.iter().filter(|&&a| a > 0).count());
        }
        // The stream's spread only grows with its viewers.
        prop_assert!(spread.windows(2).all(|w| w[0] <= w[1]));
        // Every edge that took viewers ends within (1 + ε) × the final average
        // (or the packing floor), plus one viewer.
        let total_load: f64 = edges.iter().zip(&assigned).map(|(e, a)| (e.load_bps + a) as f64).sum();
        let average = total_load / total_cap;
        let pack = Policy::default().pack_below_utilization;
        for (e, &a) in edges.iter().zip(&assigned) {
            if a > 0 {
                let limit = ((1.0 + epsilon) * average).max(pack) * e.capacity_bps as f64 + bw as f64;
                prop_assert!((e.load_bps + a) as f64 <= limit * (1.0 + 1e-9));
            }
        }
    }

    #[test]
    fn choice_is_the_first_edge_within_its_rank_ceiling(
        caps in prop::collection::vec(1u64..=8, 1..16),
        loads in prop::collection::vec(0u64..=110, 16),
        down in prop::collection::vec(prop::bool::weighted(0.2), 16),
        bandwidth_bps in 0u64..50 * MBPS,
        epsilon in 0.0f64..1.0,
        pack in 0.0f64..=0.5,
        key in "[a-z0-9/|]{1,12}",
        shuffle in any::<u64>(),
    ) {
        // An independent restatement of the rule over ready edges: rank the
        // competing edges, give rank 0 all of ε (and the packing floor), rank
        // 1 half, rank 2 a quarter, the others none; the first edge within
        // its ceiling wins.
        let now = test_now();
        let edges: Vec<EdgeSnapshot> = caps
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let mut e = edge(&format!("e{i}"), c * GBPS / 4, c * GBPS / 400 * loads[i]);
                if down[i] {
                    e.state = EdgeState::Draining;
                }
                e
            })
            .collect();
        let policy = Policy { epsilon, pack_below_utilization: pack, ..Policy::default() };
        let sel = Selector::build(&FleetSnapshot::new(edges.clone()), policy);
        let r = Request { bandwidth_bps, ..req(&key) };
        let choice = sel.pick(&r, now, &[]);

        let order: Vec<usize> = rendezvous_order(&sel, &key).into_iter().filter(|&i| !down[i]).collect();
        if order.is_empty() {
            prop_assert_eq!(choice, Choice::NoEdge);
            return Ok(());
        }
        let capacity: f64 = order.iter().map(|&i| edges[i].capacity_bps as f64).sum();
        let load: f64 = order.iter().map(|&i| edges[i].load_bps as f64).sum();
        let average = (load + bandwidth_bps as f64) / capacity;
        let ceiling = |rank: usize| {
            let (share, floor) = match rank {
                0 => (1.0, pack),
                1 => (0.5, 0.0),
                2 => (0.25, 0.0),
                _ => (0.0, 0.0),
            };
            ((1.0 + share * epsilon) * average).max(floor).min(1.0).max(average)
        };
        let within = |rank: usize, i: usize| edges[i].load_bps as f64 <= ceiling(rank) * edges[i].capacity_bps as f64;
        let expected = order.iter().enumerate().find(|&(rank, &i)| within(rank, i));
        // Allow the rounding of a ceiling computed in another order.
        let near = |rank: usize, i: usize| {
            (edges[i].load_bps as f64 - ceiling(rank) * edges[i].capacity_bps as f64).abs() <= 1e-6 * edges[i].capacity_bps as f64
        };
        match (choice, expected) {
            (Choice::Edge { index, reason: Reason::Rendezvous { rank } }, Some((want_rank, &want))) => {
                if index != want {
                    prop_assert!(near(want_rank, want) || near(rank, index), "chose {} at rank {}, expected {} at rank {}", index, rank, want, want_rank);
                } else {
                    prop_assert_eq!(rank, want_rank);
                }
            }
            (other, expected) => prop_assert!(false, "{:?} vs {:?}", other, expected),
        }

        // Routers with the same view answer alike, whatever the order of
        // their snapshot.
        let mut shuffled: Vec<EdgeSnapshot> = edges.clone();
        let n = shuffled.len();
        let mut state = shuffle;
        for i in (1..n).rev() {
            state = hash::mix64(state.wrapping_add(i as u64));
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let other = Selector::build(&FleetSnapshot::new(shuffled), policy);
        prop_assert_eq!(chosen_id(&other, other.pick(&r, now, &[])), chosen_id(&sel, choice));
    }
}
