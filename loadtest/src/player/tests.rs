//! The player against scripted playlists, on a made-up clock.

use super::*;
use crate::hls::{DEFAULT_PATHWAY, Segment, SteeringTag, Variant};
use crate::steering::{PathwayClone, UriReplacement};
use proptest::prelude::*;

const SEG: f64 = 2.0;

fn variant(name: &str, bandwidth: u64) -> Variant {
    Variant {
        uri: format!("{name}/index.m3u8?s=tok"),
        bandwidth,
        name: name.into(),
        pathway: DEFAULT_PATHWAY.into(),
    }
}

fn master() -> MasterInfo {
    MasterInfo {
        variants: vec![
            variant("240p", 276_000),
            variant("360p", 507_000),
            variant("480p", 775_000),
        ],
        steering: None,
    }
}

/// A live playlist whose newest segment is `newest`, with a window of 6.
fn live(newest: u64) -> MediaInfo {
    let first = newest.saturating_sub(5);
    MediaInfo {
        target_duration: SEG,
        media_sequence: first,
        discontinuity_sequence: 0,
        segments: (first..=newest)
            .map(|msn| Segment {
                msn,
                uri: format!("http://edge:9001/live/x/seg-{msn}.ts"),
                duration: SEG,
                discontinuity: false,
                program_date_time: None,
            })
            .collect(),
        ended: false,
        parts: Vec::new(),
    }
}

fn vod(count: u64) -> MediaInfo {
    MediaInfo {
        ended: true,
        media_sequence: 0,
        ..live(count - 1)
    }
    .with_first(0)
}

impl MediaInfo {
    fn with_first(mut self, first: u64) -> MediaInfo {
        let last = self.segments.last().map_or(first, |s| s.msn);
        self.media_sequence = first;
        self.segments = (first..=last)
            .map(|msn| Segment {
                msn,
                uri: format!("http://edge:9001/vod/x/seg-{msn}.ts"),
                duration: SEG,
                discontinuity: false,
                program_date_time: None,
            })
            .collect();
        self
    }
}

type MediaScript = Box<dyn Fn(f64, &Url) -> Result<MediaInfo, Failure>>;
type SegmentScript = Box<dyn Fn(f64, u64, &Url) -> Result<Downloaded, Failure>>;
type SteeringScript = Box<dyn Fn(f64, &Url) -> Result<Manifest, Failure>>;

/// A scripted cluster: what a playlist or segment request returns at time
/// `t` (seconds since the start), and how long each takes.
struct Script {
    master: Box<dyn Fn(f64) -> Result<MasterInfo, Failure>>,
    media: MediaScript,
    segment: SegmentScript,
    steering: SteeringScript,
    playlist_latency: f64,
    segment_latency: f64,
}

impl Script {
    fn live(newest_at: impl Fn(f64) -> u64 + 'static) -> Script {
        Script {
            master: Box::new(|_| Ok(master())),
            media: Box::new(move |t, _| Ok(live(newest_at(t)))),
            segment: Box::new(|_, _, _| {
                Ok(Downloaded {
                    bytes: 100_000,
                    elapsed: Duration::from_millis(100),
                })
            }),
            steering: Box::new(|_, _| Err(Failure("status 404".into()))),
            playlist_latency: 0.05,
            segment_latency: 0.1,
        }
    }
}

/// The publisher: segment `5 + n` appears at `2n` seconds.
fn publisher(t: f64) -> u64 {
    5 + (t / SEG).floor() as u64
}

#[derive(Debug)]
enum Done {
    Master,
    Media(Url, Instant),
    Segment(u64, Url),
    Steering(Url),
    Tick,
}

struct Run {
    stats: PlayerStats,
    /// `(kind, seconds)` of every fetch, at the time it was asked for.
    fetches: Vec<(FetchKind, f64)>,
    /// Every fetch's URL, in the same order.
    urls: Vec<Url>,
    ended_at: Option<f64>,
    gave_up: bool,
}

fn run(script: &Script, config: PlayerConfig, until: f64) -> Run {
    let t0 = Instant::now();
    let at = |s: f64| t0 + Duration::from_secs_f64(s);
    let since = |i: Instant| i.duration_since(t0).as_secs_f64();
    let url = Url::parse("http://router:8080/live/x/master.m3u8").expect("url");
    let (mut player, actions) = Player::new(url, config, t0);
    let mut pending: Vec<(Instant, usize, Done)> = Vec::new();
    let mut seq = 0;
    let mut result = Run {
        stats: PlayerStats::default(),
        fetches: Vec::new(),
        urls: Vec::new(),
        ended_at: None,
        gave_up: false,
    };
    let schedule = |actions: Vec<Action>,
                    pending: &mut Vec<(Instant, usize, Done)>,
                    seq: &mut usize,
                    result: &mut Run,
                    now: Instant| {
        for action in actions {
            match action {
                Action::Fetch(f) => {
                    result.fetches.push((f.kind, since(f.at)));
                    result.urls.push(f.url.clone());
                    let (latency, done) = match f.kind {
                        FetchKind::Master => (script.playlist_latency, Done::Master),
                        FetchKind::Media => (script.playlist_latency, Done::Media(f.url, f.at)),
                        FetchKind::Segment { msn } => (script.segment_latency, Done::Segment(msn, f.url)),
                        FetchKind::Steering => (script.playlist_latency, Done::Steering(f.url)),
                    };
                    *seq += 1;
                    pending.push((f.at + Duration::from_secs_f64(latency), *seq, done));
                }
                Action::Ended => result.ended_at = Some(since(now)),
                Action::GaveUp => result.gave_up = true,
            }
        }
    };
    schedule(actions, &mut pending, &mut seq, &mut result, t0);
    loop {
        if let Some(deadline) = player.deadline().map(|d| d + Duration::from_micros(1))
            && !pending
                .iter()
                .any(|p| matches!(p.2, Done::Tick) && p.0 == deadline)
        {
            seq += 1;
            pending.push((deadline, seq, Done::Tick));
        }
        pending.sort_by_key(|p| (p.0, p.1));
        if pending.is_empty() || pending[0].0 > at(until) {
            break;
        }
        let (now, _, done) = pending.remove(0);
        let t = since(now);
        let actions = match done {
            Done::Master => player.on_master(now, (script.master)(t)),
            Done::Media(url, requested) => {
                let body = (script.media)(since(requested), &url);
                player.on_media(now, &url, requested, body)
            }
            Done::Segment(msn, url) => player.on_segment(now, msn, (script.segment)(t, msn, &url)),
            Done::Steering(url) => player.on_steering(now, &url, (script.steering)(t, &url)),
            Done::Tick => player.tick(now),
        };
        schedule(actions, &mut pending, &mut seq, &mut result, now);
    }
    result.stats = player.finish(at(until));
    result
}

fn media_times(run: &Run) -> Vec<f64> {
    run.fetches
        .iter()
        .filter(|(k, _)| *k == FetchKind::Media)
        .map(|(_, t)| *t)
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

fn fixed(name: &str) -> PlayerConfig {
    PlayerConfig {
        rendition: Rendition::Fixed(name.into()),
        ..PlayerConfig::default()
    }
}

#[test]
fn live_sliding_window_starts_three_from_the_edge_and_never_stalls() {
    let script = Script::live(publisher);
    let r = run(&script, fixed("360p"), 60.0);
    // master 0 → 0.05, media 0.05 → 0.10, first segment 0.10 → 0.20: playing.
    let startup = r.stats.startup.expect("started").as_secs_f64();
    assert!(close(startup, 0.20), "{startup}");
    assert_eq!(r.stats.stalls, 0);
    assert_eq!(r.stats.stall_time, Duration::ZERO);
    assert_eq!(r.stats.rendition.as_deref(), Some("360p"));
    // The first segment asked for is 3 from the live edge (newest 5 → 3).
    let first_segment = r.fetches.iter().find_map(|(k, _)| match k {
        FetchKind::Segment { msn } => Some(*msn),
        _ => None,
    });
    assert_eq!(first_segment, Some(3));
    // Reloads one target duration after the previous one began: the
    // playlist changes every 2 s, so every reload finds it changed.
    let times = media_times(&r);
    assert!(times.len() >= 29, "{times:?}");
    for pair in times.windows(2) {
        assert!(close(pair[1] - pair[0], SEG), "{times:?}");
    }
    // Every segment in order, none twice, none skipped.
    let msns: Vec<u64> = r
        .fetches
        .iter()
        .filter_map(|(k, _)| match k {
            FetchKind::Segment { msn } => Some(*msn),
            _ => None,
        })
        .collect();
    assert!(msns.windows(2).all(|w| w[1] == w[0] + 1), "{msns:?}");
    assert_eq!(r.stats.segments, msns.len() as u64);
    // Play time + startup = watch time.
    let total = r.stats.play_time + r.stats.startup.unwrap_or_default();
    assert!(close(total.as_secs_f64(), r.stats.watch_time.as_secs_f64()));
}

#[test]
fn unchanged_playlist_is_reloaded_after_half_a_target_duration() {
    // A publisher that stops after 10 s: newest segment 10 from then on.
    let script = Script::live(|t| publisher(t.min(10.0)));
    let r = run(&script, fixed("240p"), 30.0);
    let times = media_times(&r);
    // Loads at 0.05, 2.05, ..., 10.05 find a new segment each time; 10.05
    // loads the last change, so the next reload (12.05) finds it unchanged,
    // and from then on reloads come every second.
    let changed: Vec<f64> = (0..=6).map(|i| 0.05 + 2.0 * f64::from(i)).collect();
    for (i, t) in changed.iter().enumerate() {
        assert!(close(times[i], *t), "{i}: {times:?}");
    }
    for pair in times[6..].windows(2) {
        assert!(close(pair[1] - pair[0], 1.0), "{times:?}");
    }
}

#[test]
fn stalled_origin_counts_one_stall_from_the_moment_the_buffer_ran_dry() {
    // The publisher freezes from 10 s to 30 s, then goes on where it stopped.
    let newest = |t: f64| {
        if t < 10.0 {
            publisher(t)
        } else if t < 30.0 {
            publisher(10.0)
        } else {
            publisher(10.0) + 1 + ((t - 30.0) / SEG).floor() as u64
        }
    };
    let script = Script::live(newest);
    let r = run(&script, fixed("240p"), 60.0);
    assert_eq!(r.stats.stalls, 1, "{:?}", r.stats);
    // Playback started at 0.20 with segment 3; the last segment before the
    // freeze is 10, so 8 segments (16 s) play out at 16.20. The origin
    // resumes at 30: the reload begun at 30.05 brings segment 11, fetched
    // from 30.10, done at 30.20 — the stall lasted 30.20 - 16.20 = 14 s.
    assert!(close(r.stats.stall_time.as_secs_f64(), 14.0), "{:?}", r.stats);
    assert_eq!(r.stats.resyncs, 0);
    let watch = r.stats.watch_time.as_secs_f64();
    let accounted =
        (r.stats.play_time + r.stats.stall_time + r.stats.startup.unwrap_or_default()).as_secs_f64();
    assert!(close(watch, accounted), "{watch} vs {accounted}");
    assert!(close(watch, 60.0));
}

#[test]
fn vod_loads_its_playlist_once_and_ends_after_playing_everything() {
    let script = Script {
        media: Box::new(|_, _| Ok(vod(6))),
        ..Script::live(publisher)
    };
    let r = run(&script, fixed("480p"), 40.0);
    assert_eq!(media_times(&r).len(), 1, "no reloads of an ended playlist");
    assert_eq!(r.stats.segments, 6);
    assert_eq!(r.stats.stalls, 0);
    // Starts at segment 0, playing from 0.20; 12 s of media end at 12.20
    // (the driver's tick comes a microsecond after the deadline).
    let ended = r.ended_at.expect("ended");
    assert!((ended - 12.20).abs() < 1e-5, "{ended}");
    assert!(close(r.stats.watch_time.as_secs_f64(), 12.20));
    assert!(close(r.stats.play_time.as_secs_f64(), 12.0));
}

#[test]
fn max_buffer_delays_segment_downloads() {
    let script = Script {
        media: Box::new(|_, _| Ok(vod(30))),
        ..Script::live(publisher)
    };
    let config = PlayerConfig {
        max_buffer: Duration::from_secs(10),
        ..fixed("240p")
    };
    let r = run(&script, config, 20.0);
    // At most 10 s ahead: by 20 s about 20 + 10 s of media, never all 60 s.
    assert!(r.stats.segments <= 17, "{}", r.stats.segments);
    assert_eq!(r.stats.stalls, 0);
}

#[test]
fn failed_segment_is_retried_then_skipped() {
    let script = Script {
        segment: Box::new(|_, msn, _| {
            if msn == 4 {
                Err(Failure("status 404".into()))
            } else {
                Ok(Downloaded {
                    bytes: 50_000,
                    elapsed: Duration::from_millis(100),
                })
            }
        }),
        ..Script::live(publisher)
    };
    let r = run(&script, fixed("240p"), 20.0);
    let tries = r
        .fetches
        .iter()
        .filter(|(k, _)| *k == FetchKind::Segment { msn: 4 })
        .count();
    assert_eq!(tries, 4, "one try and three retries");
    assert_eq!(r.stats.skipped_segments, 1);
    assert_eq!(r.stats.errors, 4);
    // Live: every retry follows a reload of the media playlist.
    let mut reloaded = false;
    let mut retries = 0;
    for (kind, _) in &r.fetches {
        match kind {
            FetchKind::Media => reloaded = true,
            FetchKind::Segment { msn: 4 } if retries > 0 || reloaded => {
                if retries > 0 {
                    assert!(reloaded, "retry {retries} without a reload: {:?}", r.fetches);
                }
                retries += 1;
                reloaded = false;
            }
            _ => {}
        }
    }
}

#[test]
fn failed_live_segment_is_retried_from_the_next_playlist() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let on = |edge: &str, newest: u64| {
        let mut m = live(newest);
        for s in &mut m.segments {
            s.uri = s.uri.replace("edge:9001", edge);
        }
        m
    };
    let master_url = Url::parse("http://router:8080/live/x/master.m3u8").expect("url");
    let (mut p, _) = Player::new(master_url, fixed("240p"), t0);
    let actions = p.on_master(ms(10), Ok(master()));
    let media_url = match &actions[..] {
        [Action::Fetch(f)] => f.url.clone(),
        other => panic!("{other:?}"),
    };
    let fetch_of = |actions: &[Action]| {
        actions.iter().find_map(|a| match a {
            Action::Fetch(f) if matches!(f.kind, FetchKind::Segment { .. }) => Some(f.clone()),
            _ => None,
        })
    };
    let first = p.on_media(ms(20), &media_url, ms(10), Ok(on("a:1", 5)));
    assert!(fetch_of(&first).is_some_and(|f| f.url.host_str() == Some("a")));
    // Edge a died: no retry of the same URL ...
    let failed = p.on_segment(ms(30), 3, Err(Failure("connect".into())));
    assert!(fetch_of(&failed).is_none(), "{failed:?}");
    // ... the next reload names edge b, and the segment comes from there.
    let moved = p.on_media(ms(2000), &media_url, ms(1990), Ok(on("b:1", 5)));
    let f = fetch_of(&moved).expect("segment 3 again");
    assert_eq!(
        (f.kind, f.url.host_str()),
        (FetchKind::Segment { msn: 3 }, Some("b"))
    );
    // What hls.js would reject: segments 0 to 5 changed host in one playlist.
    assert_eq!(p.stats().listed_uri_changes, 6);
}

#[test]
fn unreachable_master_gives_up_after_retries() {
    let script = Script {
        master: Box::new(|_| Err(Failure("status 502".into()))),
        ..Script::live(publisher)
    };
    let r = run(&script, PlayerConfig::default(), 30.0);
    assert!(r.gave_up);
    assert_eq!(r.stats.errors, 4);
    assert!(r.stats.startup.is_none());
    assert!(r.stats.gave_up.as_deref().is_some_and(|g| g.contains("502")));
}

#[test]
fn fixed_rendition_must_exist() {
    let r = run(&Script::live(publisher), fixed("1080p"), 5.0);
    assert!(r.gave_up);
    assert_eq!(r.stats.gave_up.as_deref(), Some("no rendition named 1080p"));
}

#[test]
fn abr_starts_low_and_climbs_with_throughput() {
    // 100 kB in 100 ms: 8 Mbit/s, every variant fits.
    let r = run(&Script::live(publisher), PlayerConfig::default(), 20.0);
    assert_eq!(r.stats.rendition.as_deref(), Some("480p"));
    assert_eq!(r.stats.switches, 1);
    assert_eq!(r.stats.stalls, 0);
    // 20 kB in 400 ms: 400 kbit/s × 0.7 = 280 kbit/s, only 240p fits.
    let slow = Script {
        segment: Box::new(|_, _, _| {
            Ok(Downloaded {
                bytes: 20_000,
                elapsed: Duration::from_millis(400),
            })
        }),
        ..Script::live(publisher)
    };
    let r = run(&slow, PlayerConfig::default(), 20.0);
    assert_eq!(r.stats.rendition.as_deref(), Some("240p"));
    assert_eq!(r.stats.switches, 0);
}

#[test]
fn player_that_fell_out_of_the_window_jumps_to_the_live_edge() {
    // Freeze for 20 s, then the publisher jumps ahead as a live encoder does.
    let newest = |t: f64| {
        if (10.0..30.0).contains(&t) {
            publisher(10.0)
        } else {
            publisher(t)
        }
    };
    let r = run(&Script::live(newest), fixed("240p"), 40.0);
    assert_eq!(r.stats.resyncs, 1);
    assert_eq!(r.stats.stalls, 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the latencies and the freeze, every second of a session is
    /// startup, playing or stalled; a stall has a duration; and fast enough
    /// segments on a live stream never stall.
    #[test]
    fn time_is_accounted_for(
        playlist_ms in 1u64..800,
        segment_ms in 1u64..3000,
        freeze_from in 5.0f64..40.0,
        freeze_for in 0.0f64..20.0,
    ) {
        let newest = move |t: f64| {
            if t < freeze_from { publisher(t) }
            else if t < freeze_from + freeze_for { publisher(freeze_from) }
            else { publisher(t - freeze_for) }
        };
        let script = Script {
            playlist_latency: playlist_ms as f64 / 1000.0,
            segment_latency: segment_ms as f64 / 1000.0,
            ..Script::live(newest)
        };
        let r = run(&script, fixed("360p"), 60.0);
        let s = &r.stats;
        let accounted = s.play_time + s.stall_time + s.startup.unwrap_or(s.watch_time);
        prop_assert!((accounted.as_secs_f64() - s.watch_time.as_secs_f64()).abs() < 1e-6,
            "{:?}", s);
        prop_assert_eq!(s.stalls == 0, s.stall_time.is_zero());
        if segment_ms < 1000 && playlist_ms < 500 && freeze_for < 1.0 {
            prop_assert_eq!(s.stalls, 0, "{:?}", s);
        }
    }
}

#[test]
fn segments_come_from_the_edge_of_the_latest_playlist() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let on = |edge: &str, newest: u64| {
        let mut m = live(newest);
        for s in &mut m.segments {
            s.uri = s.uri.replace("edge:9001", edge);
        }
        m
    };
    let master_url = Url::parse("http://router:8080/live/x/master.m3u8").expect("url");
    let (mut p, _) = Player::new(master_url, fixed("240p"), t0);
    let actions = p.on_master(ms(10), Ok(master()));
    let media_url = match &actions[..] {
        [Action::Fetch(f)] => f.url.clone(),
        other => panic!("{other:?}"),
    };
    let fetch_of = |actions: &[Action]| {
        actions.iter().find_map(|a| match a {
            Action::Fetch(f) if matches!(f.kind, FetchKind::Segment { .. }) => Some(f.clone()),
            _ => None,
        })
    };
    let first = p.on_media(ms(20), &media_url, ms(10), Ok(on("a:1", 5)));
    let f = fetch_of(&first).expect("segment 3");
    assert_eq!(
        (f.kind, f.url.host_str()),
        (FetchKind::Segment { msn: 3 }, Some("a"))
    );
    let done = Downloaded {
        bytes: 1000,
        elapsed: Duration::from_millis(10),
    };
    let next = p.on_segment(ms(30), 3, Ok(done));
    assert_eq!(
        fetch_of(&next).map(|f| f.kind),
        Some(FetchKind::Segment { msn: 4 })
    );
    // The router moved the viewer: the reload names edge b for every segment.
    let moved = p.on_media(ms(40), &media_url, ms(35), Ok(on("b:1", 5)));
    assert!(fetch_of(&moved).is_none(), "segment 4 is still in flight");
    let after = p.on_segment(ms(50), 4, Ok(done));
    let f = fetch_of(&after).expect("segment 5");
    assert_eq!(
        (f.kind, f.url.host_str()),
        (FetchKind::Segment { msn: 5 }, Some("b"))
    );
    assert_eq!(p.stats().listed_uri_changes, 6, "counted once, as hls.js would");
    assert_eq!(p.stats().pathway_switches, 0);
}

// ---- Content Steering

const EDGES: [&str; 3] = ["e1", "e2", "e3"];

/// A router's steered master: every variant once per pathway (`e1`, `e2`,
/// `e3`), each pathway's URIs with its own session token, and the tag.
fn steered_master(start: &str) -> MasterInfo {
    let mut variants = Vec::new();
    for edge in EDGES {
        for (name, bandwidth) in [("240p", 276_000), ("360p", 507_000), ("480p", 775_000)] {
            variants.push(Variant {
                uri: format!("{name}/index.m3u8?s=tok-{edge}"),
                bandwidth,
                name: name.into(),
                pathway: edge.into(),
            });
        }
    }
    variants.sort_by_key(|v| v.bandwidth);
    MasterInfo {
        variants,
        steering: Some(SteeringTag {
            server_uri: "/steer/live/x?s=ticket".into(),
            pathway_id: Some(start.into()),
        }),
    }
}

/// The edge a media playlist URL names through its token (`s=tok-e2` → `e2`).
fn edge_of_token(url: &Url) -> String {
    url.query_pairs()
        .find(|(k, _)| k == "s")
        .map(|(_, v)| v.trim_start_matches("tok-").to_owned())
        .unwrap_or_default()
}

/// A live playlist of the publisher at `t`, every URI on the token's edge:
/// one media playlist URL names one edge for ever, as the router promises.
fn live_on_token(t: f64, url: &Url) -> Result<MediaInfo, Failure> {
    let edge = edge_of_token(url);
    let mut m = live(publisher(t));
    for s in &mut m.segments {
        s.uri = s.uri.replace("edge:9001", &format!("{edge}:9001"));
    }
    Ok(m)
}

fn manifest(ttl: u64, priority: &[&str], clones: Vec<PathwayClone>) -> Manifest {
    Manifest {
        ttl: Duration::from_secs(ttl),
        reload_uri: Some("/steer/live/x?s=ticket".into()),
        priority: priority.iter().map(|s| (*s).to_owned()).collect(),
        clones,
    }
}

/// A cluster where edge `e1` dies at `dead_from` seconds: its segments fail.
fn steered(dead_from: f64, steering: SteeringScript) -> Script {
    Script {
        master: Box::new(|_| Ok(steered_master("e1"))),
        media: Box::new(live_on_token),
        segment: Box::new(move |t, _, url| {
            if url.host_str() == Some("e1") && t >= dead_from {
                Err(Failure("connect".into()))
            } else {
                Ok(Downloaded {
                    bytes: 100_000,
                    elapsed: Duration::from_millis(100),
                })
            }
        }),
        steering,
        playlist_latency: 0.05,
        segment_latency: 0.1,
    }
}

/// `(seconds, msn, host)` of every segment fetch.
fn segment_fetches(r: &Run) -> Vec<(f64, u64, String)> {
    r.fetches
        .iter()
        .zip(&r.urls)
        .filter_map(|((k, t), u)| match k {
            FetchKind::Segment { msn } => Some((*t, *msn, u.host_str().unwrap_or("").to_owned())),
            _ => None,
        })
        .collect()
}

fn steering_urls(r: &Run) -> Vec<(f64, String)> {
    r.fetches
        .iter()
        .zip(&r.urls)
        .filter(|((k, _), _)| *k == FetchKind::Steering)
        .map(|((_, t), u)| (*t, u.to_string()))
        .collect()
}

#[test]
fn steering_starts_on_the_tags_pathway_and_loads_the_manifest_at_once() {
    let t0 = Instant::now();
    let master_url = Url::parse("http://router:8080/live/x/master.m3u8").expect("url");
    let (mut p, _) = Player::new(master_url, fixed("360p"), t0);
    let actions = p.on_master(t0, Ok(steered_master("e2")));
    let fetches: Vec<(FetchKind, String)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Fetch(f) => {
                assert_eq!(f.at, t0, "at once");
                Some((f.kind, f.url.to_string()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        fetches,
        [
            (
                FetchKind::Media,
                "http://router:8080/live/x/360p/index.m3u8?s=tok-e2".to_owned()
            ),
            (
                FetchKind::Steering,
                "http://router:8080/steer/live/x?s=ticket&_HLS_pathway=e2".to_owned()
            ),
        ]
    );
    assert_eq!(p.pathway(), Some("e2"));
    // A master without the tag: no manifest, the first pathway.
    let (mut plain, _) = Player::new(
        Url::parse("http://router:8080/live/x/master.m3u8").expect("url"),
        fixed("360p"),
        t0,
    );
    let actions = plain.on_master(
        t0,
        Ok(MasterInfo {
            steering: None,
            ..steered_master("e2")
        }),
    );
    assert!(
        actions
            .iter()
            .all(|a| !matches!(a, Action::Fetch(f) if f.kind == FetchKind::Steering))
    );
    assert_eq!(plain.pathway(), Some("e1"));
}

#[test]
fn a_dead_edge_costs_one_segment_and_one_switch_and_no_stall() {
    // Edge e1 dies at 10 s; the manifest keeps listing it (the router has
    // not noticed yet): the failed segment alone makes the player move.
    let script = steered(
        10.0,
        Box::new(|_, _| Ok(manifest(5, &["e1", "e2", "e3"], Vec::new()))),
    );
    let config = PlayerConfig {
        start_segments: 2,
        ..fixed("360p")
    };
    let r = run(&script, config, 60.0);
    let s = &r.stats;
    assert_eq!(s.stalls, 0, "{s:?}");
    assert_eq!(
        (s.errors, s.pathway_switches, s.skipped_segments),
        (1, 1, 0),
        "{s:?}"
    );
    assert_eq!(s.pathway.as_deref(), Some("e2"));
    assert_eq!(s.listed_uri_changes, 0);
    let segs = segment_fetches(&r);
    let failed = segs
        .iter()
        .position(|(t, _, host)| host == "e1" && *t >= 10.0)
        .expect("a fetch from the dead edge");
    let (_, msn, _) = segs[failed].clone();
    // The same segment again, at once, from the next pathway; never e1 again.
    let (t_again, msn_again, host_again) = segs[failed + 1].clone();
    assert_eq!((msn_again, host_again.as_str()), (msn, "e2"), "{segs:?}");
    assert!(
        t_again - segs[failed].0 < 0.2,
        "after one playlist load: {segs:?}"
    );
    assert!(segs[failed + 1..].iter().all(|(_, _, h)| h == "e2"), "{segs:?}");
    assert!(segs.windows(2).all(|w| w[1].1 == w[0].1 + 1 || w[1].1 == w[0].1));
    // The manifest at once, then every TTL, with the pathway in use.
    let loads = steering_urls(&r);
    assert!(close(loads[0].0, 0.05), "{loads:?}");
    assert!(
        loads.windows(2).all(|w| (w[1].0 - w[0].0 - 5.05).abs() < 1e-3),
        "{loads:?}"
    );
    assert_eq!(s.steering_fetches as usize, loads.len());
    assert!(loads[0].1.contains("_HLS_pathway=e1") && !loads[0].1.contains("_HLS_throughput"));
    let last = &loads[loads.len() - 1].1;
    assert!(last.contains("_HLS_pathway=e2&_HLS_throughput="), "{last}");
}

#[test]
fn the_manifest_moves_the_player_clones_and_a_penalized_pathway_stays_out() {
    let steering: SteeringScript = Box::new(|t, _| {
        let clone = PathwayClone {
            id: "e4".into(),
            base_id: "e1".into(),
            uri_replacement: UriReplacement {
                host: None,
                params: [("s".to_owned(), "tok-e4".to_owned())].into(),
            },
        };
        Ok(if t < 20.0 {
            manifest(2, &["e1", "e2", "e3"], Vec::new())
        } else if t < 30.0 {
            // e1 failed before: the manifest puts it first again (restarted).
            manifest(2, &["e1", "e3", "e2"], Vec::new())
        } else {
            // e3 drained: dropped; a clone onto e4.
            manifest(2, &["e4", "e1", "e2"], vec![clone])
        })
    });
    // e1 fails from 10 s on: the player moves to e2 at once.
    let r = run(&steered(10.0, steering), fixed("240p"), 40.0);
    let s = &r.stats;
    // e2 (the failure), e3 (the manifest at 20 s; e1 is penalized), e4 (the clone).
    assert_eq!(s.pathway_switches, 3, "{s:?}");
    assert_eq!(s.pathway.as_deref(), Some("e4"));
    assert_eq!((s.stalls, s.errors, s.listed_uri_changes), (0, 1, 0), "{s:?}");
    let media: Vec<String> = r
        .fetches
        .iter()
        .zip(&r.urls)
        .filter(|((k, _), _)| *k == FetchKind::Media)
        .map(|(_, u)| edge_of_token(u))
        .collect();
    let mut order = media.clone();
    order.dedup();
    assert_eq!(order, ["e1", "e2", "e3", "e4"], "{media:?}");
    let hosts: Vec<String> = segment_fetches(&r).into_iter().map(|s| s.2).collect();
    let mut moves = hosts.clone();
    moves.dedup();
    assert_eq!(moves, ["e1", "e2", "e3", "e4"], "one move each, never back");
}

#[test]
fn without_a_manifest_a_failure_moves_in_master_order() {
    // The steering server is down (the manifest never comes), or the master
    // has pathways but no tag: the master's order is the priority.
    for tag in [true, false] {
        let mut script = steered(6.0, Box::new(|_, _| Err(Failure("status 502".into()))));
        if !tag {
            script.master = Box::new(|_| {
                Ok(MasterInfo {
                    steering: None,
                    ..steered_master("e1")
                })
            });
        }
        let r = run(&script, fixed("240p"), 20.0);
        let s = &r.stats;
        assert_eq!((s.pathway_switches, s.stalls), (1, 0), "{s:?}");
        assert_eq!(s.pathway.as_deref(), Some("e2"));
        // One failed manifest load, retried after the default TTL (300 s): once in 20 s.
        assert_eq!(s.steering_fetches, u32::from(tag));
        assert_eq!(s.errors, 1 + u32::from(tag));
    }
}

#[test]
fn gone_turns_steering_off() {
    let script = steered(1000.0, Box::new(|_, _| Err(Failure("status 410".into()))));
    let r = run(&script, fixed("240p"), 20.0);
    assert_eq!(r.stats.steering_fetches, 1);
    assert_eq!(r.stats.steering_errors, 1);
    assert_eq!(r.stats.pathway_switches, 0);
}

#[test]
fn a_segment_in_flight_when_the_manifest_moves_the_player_still_counts() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let master_url = Url::parse("http://router:8080/live/x/master.m3u8").expect("url");
    let (mut p, _) = Player::new(master_url, fixed("240p"), t0);
    let actions = p.on_master(ms(0), Ok(steered_master("e1")));
    let url_of = |actions: &[Action], kind: fn(&FetchKind) -> bool| {
        actions.iter().find_map(|a| match a {
            Action::Fetch(f) if kind(&f.kind) => Some(f.url.clone()),
            _ => None,
        })
    };
    let media = url_of(&actions, |k| *k == FetchKind::Media).expect("media");
    let steer = url_of(&actions, |k| *k == FetchKind::Steering).expect("steering");
    let body = live_on_token(0.0, &media).expect("playlist");
    let first = p.on_media(ms(20), &media, ms(0), Ok(body));
    assert!(url_of(&first, |k| matches!(k, FetchKind::Segment { msn: 3 })).is_some());
    // The manifest says e2 while segment 3 is in flight from e1.
    let moved = p.on_steering(ms(30), &steer, Ok(manifest(5, &["e2", "e1"], Vec::new())));
    let media2 = url_of(&moved, |k| *k == FetchKind::Media).expect("e2's playlist");
    assert_eq!(edge_of_token(&media2), "e2");
    // The reload of e1's playlist asked for earlier is no longer wanted.
    let stale = first
        .iter()
        .find_map(|a| match a {
            Action::Fetch(f) if f.kind == FetchKind::Media => Some(f.clone()),
            _ => None,
        })
        .expect("a reload of e1's playlist");
    assert!(!p.wants(&stale));
    assert!(moved.iter().all(|a| match a {
        Action::Fetch(f) => p.wants(f),
        _ => true,
    }));
    // Segment 3 fails on e1: e1 is penalized, and segment 3 comes from e2
    // once e2's playlist is in; no second switch.
    let failed = p.on_segment(ms(40), 3, Err(Failure("connect".into())));
    assert!(url_of(&failed, |k| matches!(k, FetchKind::Segment { .. })).is_none());
    let body = live_on_token(0.0, &media2).expect("playlist");
    let again = p.on_media(ms(50), &media2, ms(30), Ok(body));
    let seg = url_of(&again, |k| matches!(k, FetchKind::Segment { msn: 3 })).expect("segment 3 on e2");
    assert_eq!(seg.host_str(), Some("e2"));
    let next = p.on_segment(
        ms(60),
        3,
        Ok(Downloaded {
            bytes: 1000,
            elapsed: Duration::from_millis(10),
        }),
    );
    assert!(url_of(&next, |k| matches!(k, FetchKind::Segment { msn: 4 })).is_some());
    assert!(p.is_playing());
    assert_eq!(p.stats().pathway_switches, 1);
    // A later manifest putting e1 first does not bring the player back.
    let steer2 = p.tick(ms(5030));
    let steer2 = url_of(&steer2, |k| *k == FetchKind::Steering).expect("reload due");
    assert!(steer2.as_str().contains("_HLS_pathway=e2"), "{steer2}");
    let stay = p.on_steering(ms(5040), &steer2, Ok(manifest(5, &["e1", "e2"], Vec::new())));
    assert!(url_of(&stay, |k| *k == FetchKind::Media).is_none());
    assert_eq!(p.pathway(), Some("e2"));
}
