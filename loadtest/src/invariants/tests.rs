//! The checker against scripted playlists, on a made-up clock.

use super::*;
use crate::hls::Segment;
use proptest::prelude::*;

const TD: f64 = 2.0;
const T0: Duration = Duration::from_secs(1_767_225_600);

/// Wall time `secs` after a fixed start.
fn at(secs: f64) -> SystemTime {
    SystemTime::UNIX_EPOCH + T0 + Duration::from_secs_f64(secs)
}

fn url(s: &str) -> Url {
    Url::parse(s).expect("url")
}

/// What a publisher of 2 s segments lists at `secs`: segment `msn` starts at
/// `2 msn` s, is published when it ends, and the loop restarts (a
/// discontinuity) on every multiple of `every` (0: never).
fn window(secs: f64, size: u64, every: u64) -> MediaInfo {
    let published = (secs / TD).floor() as u64; // segments that have ended
    let newest = published.saturating_sub(1).max(size - 1);
    let first = newest + 1 - size;
    let is_disc = |msn: u64| every > 0 && msn > 0 && msn.is_multiple_of(every);
    MediaInfo {
        target_duration: TD,
        media_sequence: first,
        discontinuity_sequence: (1..first).filter(|&m| is_disc(m)).count() as u64,
        segments: (first..=newest)
            .map(|msn| Segment {
                msn,
                uri: format!("seg-{msn}.ts"),
                duration: TD,
                discontinuity: is_disc(msn),
                program_date_time: Some(at(msn as f64 * TD)),
            })
            .collect(),
        ended: false,
        parts: Vec::new(),
    }
}

fn without_dates(mut p: MediaInfo) -> MediaInfo {
    for s in &mut p.segments {
        s.program_date_time = None;
    }
    p
}

fn observe(c: &mut Checker, viewer: usize, u: &str, secs: f64, p: &MediaInfo) -> Vec<Url> {
    c.observe(Received {
        viewer,
        url: &url(u),
        at: at(secs),
        playlist: p,
    })
}

const A: &str = "http://router-a:8080/live/x/240p/index.m3u8?s=one";
const B: &str = "http://router-b:8080/live/x/240p/index.m3u8?s=two";

#[test]
fn a_well_behaved_stream_keeps_every_invariant() {
    let mut c = Checker::new();
    for step in 0..40 {
        let secs = 12.0 + f64::from(step) * 0.5;
        for viewer in 0..3 {
            let u = if viewer % 2 == 0 { A } else { B };
            observe(&mut c, viewer, u, secs + 0.1 * viewer as f64, &window(secs, 6, 7));
        }
    }
    let f = c.figures();
    assert_eq!(f.playlists_checked, 120);
    assert_eq!(f.violations_total, 0, "{:?}", f.first_violations);
    assert_eq!(f.violations.len(), 5, "every kind is listed");
    assert!(f.violations.values().all(|&n| n == 0));
}

#[test]
fn media_sequence_going_back_counts_once_per_playlist_and_viewer() {
    let mut c = Checker::new();
    observe(&mut c, 1, A, 20.0, &window(20.0, 6, 0));
    // The same viewer through the other router: one track, and it went back.
    observe(&mut c, 1, B, 20.5, &window(18.0, 6, 0));
    // Back to where it was: not another violation.
    observe(&mut c, 1, B, 21.0, &window(20.0, 6, 0));
    // Another viewer may be behind: not a violation.
    observe(&mut c, 2, A, 21.0, &window(18.0, 6, 0));
    // Another rendition is another track.
    observe(
        &mut c,
        1,
        "http://router-a:8080/live/x/480p/index.m3u8",
        21.0,
        &window(16.0, 6, 0),
    );
    assert_eq!(c.count(Kind::Backwards), 1);
    assert_eq!(
        c.first_violations()[0].to_string(),
        "backwards: viewer 1 /live/x/240p/index.m3u8: media sequence 3 after 4"
    );
    assert_eq!(c.figures().violations_total, 1);
}

#[test]
fn a_segment_changing_discontinuity_is_caught_across_viewers_and_routers() {
    let mut c = Checker::new();
    let good = window(30.0, 6, 12); // segments 9..=14, discontinuity on 12
    observe(&mut c, 0, A, 30.0, &good);
    // Another viewer through router B gets a playlist whose discontinuity
    // sequence is one too high.
    let mut bad = good.clone();
    bad.discontinuity_sequence += 1;
    observe(&mut c, 5, B, 30.2, &bad);
    // The tag moved one segment later: only segment 12 differs.
    let mut moved = good.clone();
    moved.segments[3].discontinuity = false;
    moved.segments[4].discontinuity = true;
    observe(&mut c, 6, A, 30.3, &moved);
    // The same segments as the first one, told the right way after the tag
    // left the window (the sequence went up by one): consistent.
    observe(&mut c, 0, A, 32.0, &window(32.0, 6, 12));
    let late = window(40.0, 6, 12); // 14..=19: segment 12 has left
    assert_eq!(late.discontinuity_sequence, 1);
    observe(&mut c, 0, A, 40.0, &late);
    assert_eq!(c.count(Kind::Discontinuity), 2, "{:?}", c.first_violations());
    assert_eq!(
        c.first_violations()[0].description,
        "viewer 5 /live/x/240p/index.m3u8: segment 9 in discontinuity 1, 0 in an earlier playlist"
    );
    assert_eq!(
        c.first_violations()[1].description,
        "viewer 6 /live/x/240p/index.m3u8: segment 12 in discontinuity 0, 1 in an earlier playlist"
    );
}

#[test]
fn a_live_playlist_is_too_old_after_three_target_durations() {
    let mut c = Checker::new();
    let p = window(20.0, 6, 0); // newest segment 9 ends at 20 s
    observe(&mut c, 0, A, 26.0, &p); // exactly 3 × 2 s: fine
    assert_eq!(c.count(Kind::TooOld), 0);
    observe(&mut c, 0, A, 26.01, &p);
    assert_eq!(c.count(Kind::TooOld), 1);
    assert_eq!(
        c.first_violations()[0].description,
        "viewer 0 /live/x/240p/index.m3u8: newest segment 9 ended 6.0 s before the playlist arrived (limit 6.0 s)"
    );
    // A playlist from the future (clocks apart) is not old.
    observe(&mut c, 1, A, 10.0, &p);
    // VOD is never too old.
    let vod = MediaInfo {
        ended: true,
        ..p.clone()
    };
    observe(&mut c, 2, A, 500.0, &vod);
    assert_eq!(c.count(Kind::TooOld), 1);
}

#[test]
fn the_end_is_extrapolated_from_the_last_program_date_time() {
    let mut c = Checker::new();
    let mut p = window(20.0, 6, 0); // 4..=9
    for s in &mut p.segments[3..] {
        s.program_date_time = None; // only 4, 5, 6 carry a date: 6 starts at 12 s
    }
    observe(&mut c, 0, A, 25.9, &p); // 9 ends at 12 + 4 × 2 = 20 s
    assert_eq!(c.count(Kind::TooOld), 0);
    observe(&mut c, 0, A, 26.1, &p);
    assert_eq!(c.count(Kind::TooOld), 1);
}

#[test]
fn without_dates_a_playlist_is_too_old_once_its_newest_segment_was_seen_long_before() {
    let mut c = Checker::new();
    let p = without_dates(window(20.0, 6, 0));
    observe(&mut c, 0, A, 100.0, &p); // first sight: age 0, whatever the clock
    observe(&mut c, 1, B, 106.0, &p); // not advanced for exactly 3 TD: fine
    assert_eq!(c.count(Kind::TooOld), 0);
    observe(&mut c, 2, A, 106.5, &p);
    assert_eq!(c.count(Kind::TooOld), 1);
    assert!(
        c.first_violations()[0]
            .description
            .contains("newest segment 9 was first seen (no program date time) 6.5 s before"),
        "{:?}",
        c.first_violations()
    );
    // It advanced: the new newest segment is new.
    observe(&mut c, 2, A, 107.0, &without_dates(window(22.0, 6, 0)));
    assert_eq!(c.count(Kind::TooOld), 1);
}

#[test]
fn each_distinct_segment_url_is_handed_out_once_and_probes_count() {
    let mut c = Checker::new();
    let mut p = window(20.0, 3, 0); // 7, 8, 9, relative
    let fresh = observe(&mut c, 0, A, 20.0, &p);
    let names: Vec<&str> = fresh.iter().map(Url::as_str).collect();
    assert_eq!(
        names,
        [
            "http://router-a:8080/live/x/240p/seg-7.ts",
            "http://router-a:8080/live/x/240p/seg-8.ts",
            "http://router-a:8080/live/x/240p/seg-9.ts"
        ]
    );
    assert!(observe(&mut c, 1, A, 20.1, &p).is_empty(), "already handed out");
    // Absolute URIs on an edge, one of them new.
    for s in &mut p.segments {
        s.uri = format!("http://127.0.0.1:9001/live/x/240p/seg-{}.ts?hdnts=t", s.msn);
    }
    p.segments[2].uri = "http://[bad/seg.ts".into();
    let fresh = observe(&mut c, 2, B, 20.2, &p);
    assert_eq!(fresh.len(), 2);
    assert_eq!(c.count(Kind::Unfetchable), 1, "a URI that is no URL");
    assert!(observe(&mut c, 3, B, 20.3, &p).is_empty());
    assert_eq!(c.count(Kind::Unfetchable), 1, "reported once");

    c.probed(&fresh[0], Probe::Fetchable);
    c.probed(&fresh[1], Probe::Status(404));
    c.probed(
        &url("http://127.0.0.1:9002/x.ts"),
        Probe::NoAnswer("connect".into()),
    );
    let f = c.figures();
    assert_eq!((f.uris_seen, f.uris_probed), (6, 3));
    assert_eq!(f.violations["unfetchable"], 3);
    assert_eq!(
        f.first_violations[1],
        "unfetchable: http://127.0.0.1:9001/live/x/240p/seg-8.ts?hdnts=t: 127.0.0.1:9001 answered 404"
    );
    assert_eq!(
        f.first_violations[2],
        "unfetchable: http://127.0.0.1:9002/x.ts: no answer from 127.0.0.1:9002 (connect)"
    );
}

#[test]
fn only_the_first_violations_are_kept_but_all_are_counted() {
    let mut c = Checker::new();
    for i in 0..50 {
        c.probed(&url(&format!("http://e:1/{i}.ts")), Probe::Status(503));
    }
    let f = c.figures();
    assert_eq!(f.violations_total, 50);
    assert_eq!(f.first_violations.len(), KEPT_VIOLATIONS);
    assert!(f.first_violations[0].ends_with("/0.ts: e:1 answered 503"));
}

#[test]
fn old_segments_of_a_live_track_are_forgotten() {
    let mut c = Checker::new();
    let first = window(20.0, 6, 0);
    observe(&mut c, 0, A, 20.0, &first);
    let far = window(TD * (KEEP_BEHIND as f64 + 100.0), 6, 0);
    observe(&mut c, 0, A, TD * (KEEP_BEHIND as f64 + 100.0), &far);
    let track = &c.tracks[0];
    assert_eq!(track.segments.len(), 6);
    assert_eq!(track.segments.keys().next().copied(), Some(far.media_sequence));
}

proptest! {
    /// A publisher that keeps its promises, read by any number of viewers
    /// through either router, each with its own delay of up to two target
    /// durations, never violates an invariant: no false alarm.
    #[test]
    fn no_false_alarms(
        size in 3u64..10,
        every in 0u64..20,
        delays in prop::collection::vec(0.0f64..4.0, 5),
        reads in prop::collection::vec((0usize..5, 0u8..2, 0.0f64..1.5), 1..80),
        dated in any::<bool>(),
    ) {
        let mut c = Checker::new();
        let mut clock = 30.0;
        for (viewer, router, step) in reads {
            clock += step;
            // What was published `delays[viewer]` seconds before it arrives.
            let p = window(clock - delays[viewer], size, every);
            let p = if dated { p } else { without_dates(p) };
            let u = if router == 0 { A } else { B };
            c.observe(Received { viewer, url: &url(u), at: at(clock), playlist: &p });
        }
        let f = c.figures();
        prop_assert_eq!(f.violations_total, 0, "{:?}", f.first_violations);
    }

    /// Backwards counts exactly the times a viewer's media sequence on a
    /// track went down, against a plain reference model.
    #[test]
    fn backwards_matches_a_reference(
        reads in prop::collection::vec((0usize..4, 0usize..2, 0u64..12), 1..60),
    ) {
        let tracks = ["http://r:1/s/lo/index.m3u8", "http://r:2/s/hi/index.m3u8?s=x"];
        let mut c = Checker::new();
        let mut last: HashMap<(usize, usize), u64> = HashMap::new();
        let mut expected = 0u64;
        for (viewer, track, first) in reads {
            let p = MediaInfo { ended: true, ..window(TD * (first + 6) as f64, 6, 0) };
            prop_assert_eq!(p.media_sequence, first);
            if last.insert((viewer, track), first).is_some_and(|before| first < before) {
                expected += 1;
            }
            c.observe(Received { viewer, url: &url(tracks[track]), at: at(0.0), playlist: &p });
        }
        prop_assert_eq!(c.count(Kind::Backwards), expected);
        prop_assert_eq!(c.figures().violations_total, expected);
    }

    /// Any change of the discontinuity sequence on a playlist that repeats a
    /// segment already seen is one discontinuity violation.
    #[test]
    fn a_shifted_discontinuity_sequence_is_always_caught(
        newest in 10u64..200,
        every in 0u64..20,
        shift in 1u64..5,
        up in any::<bool>(),
        overlap in 1u64..6,
    ) {
        let mut c = Checker::new();
        let secs = TD * (newest + 1) as f64;
        let p = window(secs, 6, every);
        c.observe(Received { viewer: 0, url: &url(A), at: at(secs), playlist: &p });
        let mut q = window(secs + TD * (6 - overlap) as f64, 6, every);
        q.discontinuity_sequence = if up || q.discontinuity_sequence < shift {
            q.discontinuity_sequence + shift
        } else {
            q.discontinuity_sequence - shift
        };
        c.observe(Received { viewer: 1, url: &url(B), at: at(secs), playlist: &q });
        prop_assert_eq!(c.count(Kind::Discontinuity), 1);
        prop_assert_eq!(c.figures().violations_total, 1);
    }

    /// A live playlist is too old exactly when it arrives more than three
    /// target durations after its newest segment ended.
    #[test]
    fn too_old_exactly_past_three_target_durations(
        newest in 6u64..1000,
        td in 1u64..10,
        late_ms in 0u64..60_000,
    ) {
        let mut p = window(TD * (newest + 1) as f64, 6, 0);
        p.target_duration = td as f64;
        for s in &mut p.segments {
            s.duration = td as f64;
            s.program_date_time = Some(at((s.msn * td) as f64));
        }
        let end = ((newest + 1) * td) as f64;
        let mut c = Checker::new();
        c.observe(Received { viewer: 0, url: &url(A), at: at(end + late_ms as f64 / 1000.0), playlist: &p });
        let too_old = late_ms > 3 * td * 1000;
        prop_assert_eq!(c.count(Kind::TooOld), u64::from(too_old));
    }
}

/// `window` with its segments on `edge` (absolute URIs) and a query of `q`.
fn on_edge(p: MediaInfo, edge: &str, q: &str) -> MediaInfo {
    MediaInfo {
        segments: p
            .segments
            .into_iter()
            .map(|s| Segment {
                uri: format!("http://{edge}/live/x/240p/seg-{}.ts?{q}", s.msn),
                ..s
            })
            .collect(),
        ..p
    }
}

#[test]
fn a_listed_segment_must_keep_its_host_and_path() {
    let mut c = Checker::new();
    // The same playlist URL, 1 s apart: the query may change, the host may not.
    observe(&mut c, 0, A, 12.0, &on_edge(window(12.0, 6, 0), "e1:9001", "k=1"));
    observe(&mut c, 0, A, 13.0, &on_edge(window(13.0, 6, 0), "e1:9001", "k=2"));
    assert_eq!(c.count(Kind::ListedUriChanged), 0, "a query change is tolerated");
    // Through another router (same path and query): the same playlist.
    let other_router = "http://router-b:8080/live/x/240p/index.m3u8?s=one";
    observe(
        &mut c,
        0,
        other_router,
        14.0,
        &on_edge(window(14.0, 6, 0), "e2:9001", ""),
    );
    assert_eq!(c.count(Kind::ListedUriChanged), 1, "one violation per playlist");
    let v = &c.first_violations()[0];
    assert!(v.description.contains("viewer 0 /live/x/240p/index.m3u8?s=one: segment 1 listed as http://e2:9001/live/x/240p/seg-1.ts after http://e1:9001/live/x/240p/seg-1.ts (4 more in this playlist)"), "{v}");
    // Counted once: the next reload agrees with the new URIs.
    observe(&mut c, 0, A, 15.0, &on_edge(window(15.0, 6, 0), "e2:9001", ""));
    assert_eq!(c.count(Kind::ListedUriChanged), 1);
    // Another playlist URL (a pathway) or another viewer may list them elsewhere.
    observe(&mut c, 0, B, 15.0, &on_edge(window(15.0, 6, 0), "e3:9001", ""));
    observe(&mut c, 1, A, 15.0, &on_edge(window(15.0, 6, 0), "e3:9001", ""));
    assert_eq!(c.count(Kind::ListedUriChanged), 1);
}

#[test]
fn listed_parts_and_window_bounds() {
    use crate::hls::Part;
    let base = url(A);
    let mut listed = Listed::default();
    let with_parts = |p: MediaInfo, dir: &str| MediaInfo {
        parts: (0..2)
            .map(|index| Part {
                msn: p.end_msn(),
                index,
                uri: format!("/{dir}/part-{index}.ts"),
            })
            .collect(),
        ..p
    };
    assert!(
        listed
            .observe(&base, &with_parts(window(12.0, 6, 0), "a"))
            .is_empty()
    );
    assert_eq!(listed.len(), 8);
    let changes = listed.observe(&base, &with_parts(window(12.0, 6, 0), "b"));
    let parts: Vec<String> = changes.iter().map(Change::what).collect();
    assert_eq!(parts, ["segment 6 part 0", "segment 6 part 1"]);
    // The window moves on: what fell out of it is forgotten.
    assert!(listed.observe(&base, &window(40.0, 6, 0)).is_empty());
    assert_eq!(listed.len(), 6);
    let vod = MediaInfo {
        ended: true,
        ..window(40.0, 6, 0)
    };
    assert!(listed.observe(&base, &vod).is_empty());
    assert!(listed.is_empty(), "an ended playlist is forgotten");
}

proptest! {
    /// Any sequence of reloads that only slides the window (URIs fixed per
    /// msn) has no change; moving any one listed msn to another host is
    /// exactly one change.
    #[test]
    fn only_a_moved_uri_is_a_change(starts in proptest::collection::vec(0u64..40, 1..12), moved in 0usize..6) {
        let base = url(A);
        let mut listed = Listed::default();
        let mut starts = starts;
        starts.sort_unstable();
        for &s in &starts {
            let p = on_edge(window(TD * (s + 6) as f64, 6, 0), "e1:1", "");
            prop_assert!(listed.observe(&base, &p).is_empty());
        }
        let last = *starts.last().unwrap_or(&0);
        let mut p = on_edge(window(TD * (last + 6) as f64, 6, 0), "e1:1", "");
        let msn = p.segments[moved].msn;
        p.segments[moved].uri = format!("http://e2:1/live/x/240p/seg-{msn}.ts");
        let changes = listed.observe(&base, &p);
        prop_assert_eq!(changes.len(), 1);
        prop_assert_eq!(changes[0].msn, msn);
    }
}
