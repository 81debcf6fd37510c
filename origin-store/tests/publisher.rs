//! The demo publisher against real stores (`InMemory` and a temp-dir
//! `LocalFileSystem`), driven by a stepped clock, read back as a player would
//! (with `m3u8-rs`) and checked with `ffprobe`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::ErrorKind;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::TryStreamExt;
use m3u8_rs::{MasterPlaylist, MediaPlaylist, MediaPlaylistType};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use origin_client::Error;
use origin_store::publisher::{PublishConfig, Publisher};

const LOOP_SECS: u64 = 12;

fn start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn after(secs: u64) -> SystemTime {
    start() + Duration::from_secs(secs)
}

fn memory() -> Arc<dyn ObjectStore> {
    Arc::new(InMemory::new())
}

fn local(dir: &tempfile::TempDir) -> Arc<dyn ObjectStore> {
    Arc::new(LocalFileSystem::new_with_prefix(dir.path()).expect("local store"))
}

async fn get(store: &Arc<dyn ObjectStore>, path: &str) -> Bytes {
    store
        .get(&Path::from(path))
        .await
        .unwrap_or_else(|e| panic!("get {path}: {e}"))
        .bytes()
        .await
        .expect("read body")
}

async fn exists(store: &Arc<dyn ObjectStore>, path: &str) -> bool {
    match store.head(&Path::from(path)).await {
        Ok(_) => true,
        Err(object_store::Error::NotFound { .. }) => false,
        Err(e) => panic!("head {path}: {e}"),
    }
}

async fn master(store: &Arc<dyn ObjectStore>, stream: &str) -> MasterPlaylist {
    let bytes = get(store, &format!("{stream}/master.m3u8")).await;
    m3u8_rs::parse_master_playlist_res(&bytes).expect("master playlist parses")
}

async fn media(store: &Arc<dyn ObjectStore>, path: &str) -> MediaPlaylist {
    let bytes = get(store, path).await;
    m3u8_rs::parse_media_playlist_res(&bytes).expect("media playlist parses")
}

/// Every object path in the store, with its e-tag.
async fn listing(store: &Arc<dyn ObjectStore>) -> BTreeMap<String, Option<String>> {
    let objects: Vec<_> = store.list(None).try_collect().await.expect("list");
    objects
        .into_iter()
        .map(|meta| (meta.location.to_string(), meta.e_tag))
        .collect()
}

/// Media sequence numbers of the segments stored under `dir`.
async fn stored_segments(store: &Arc<dyn ObjectStore>, dir: &str) -> BTreeSet<u64> {
    listing(store)
        .await
        .keys()
        .filter_map(|p| {
            p.strip_prefix(&format!("{dir}/"))?
                .strip_prefix("seg-")?
                .strip_suffix(".ts")?
                .parse()
                .ok()
        })
        .collect()
}

async fn renditions(store: &Arc<dyn ObjectStore>, stream: &str) -> Vec<String> {
    master(store, stream)
        .await
        .variants
        .iter()
        .map(|v| v.uri.trim_end_matches("/index.m3u8").to_owned())
        .collect()
}

/// The live window slides one segment per target duration; segments in the
/// playlist exist, and segments far enough behind it are deleted.
async fn check_sliding_window(store: Arc<dyn ObjectStore>) {
    let config = PublishConfig::default();
    let window = config.window as u64;
    let d = config.target_duration_secs;
    let stream = config.live_streams[0].clone();
    let mut publisher = Publisher::new(store.clone(), config, start()).expect("publisher");
    let names = renditions_after_first_tick(&mut publisher, &store, &stream).await;

    let mut previous = None;
    for step in 0..40u64 {
        publisher.tick(after(step * d)).await.expect("tick");
        for name in &names {
            let dir = format!("{stream}/{name}");
            let playlist = media(&store, &format!("{dir}/index.m3u8")).await;
            assert_eq!(playlist.media_sequence, step, "media sequence at step {step}");
            assert_eq!(playlist.segments.len() as u64, window);
            assert_eq!(playlist.target_duration, d);
            assert!(!playlist.end_list);
            for (k, segment) in playlist.segments.iter().enumerate() {
                let msn = step + k as u64;
                assert_eq!(segment.uri, format!("seg-{msn}.ts"));
                assert_eq!(segment.duration, d as f32);
                assert!(
                    exists(&store, &format!("{dir}/{}", segment.uri)).await,
                    "{dir}/{} missing",
                    segment.uri
                );
                // Wall time of the segment start: the newest segment at
                // `start` ends at `start`.
                let pdt = segment.program_date_time.expect("program date time");
                let expected = chrono::DateTime::<chrono::Utc>::from(start()).timestamp()
                    + (msn as i64 - window as i64) * d as i64;
                assert_eq!(pdt.timestamp(), expected, "{dir}/{}", segment.uri);
            }
            let stored = stored_segments(&store, &dir).await;
            let oldest_kept = step.saturating_sub(window + 1);
            assert_eq!(
                stored,
                (oldest_kept..step + window).collect::<BTreeSet<_>>(),
                "segments in the store at step {step}"
            );
        }
        if let Some(previous) = previous {
            assert_eq!(step, previous + 1);
        }
        previous = Some(step);
    }
    // Old segments really went away.
    assert!(!exists(&store, &format!("{stream}/{}/seg-0.ts", names[0])).await);
}

async fn renditions_after_first_tick(
    publisher: &mut Publisher,
    store: &Arc<dyn ObjectStore>,
    stream: &str,
) -> Vec<String> {
    publisher.tick(start()).await.expect("first tick");
    let names = renditions(store, stream).await;
    assert!(names.len() >= 3, "renditions: {names:?}");
    names
}

#[tokio::test]
async fn live_window_slides_in_memory() {
    check_sliding_window(memory()).await;
}

#[tokio::test]
async fn live_window_slides_on_local_filesystem() {
    let dir = tempfile::tempdir().expect("tempdir");
    check_sliding_window(local(&dir)).await;
}

#[tokio::test]
async fn every_master_lists_distinct_renditions() {
    let store = memory();
    let config = PublishConfig::default();
    let streams: Vec<String> = config
        .live_streams
        .iter()
        .cloned()
        .chain([config.vod_stream.clone()])
        .collect();
    let mut publisher = Publisher::new(store.clone(), config, start()).expect("publisher");
    publisher.tick(start()).await.expect("tick");

    for stream in &streams {
        let master = master(&store, stream).await;
        assert!(
            master.variants.len() >= 3,
            "{stream}: {} variants",
            master.variants.len()
        );
        let bandwidths: BTreeSet<u64> = master.variants.iter().map(|v| v.bandwidth).collect();
        let resolutions: BTreeSet<_> = master
            .variants
            .iter()
            .map(|v| v.resolution.expect("RESOLUTION"))
            .collect();
        let codecs: BTreeSet<String> = master
            .variants
            .iter()
            .map(|v| v.codecs.clone().expect("CODECS"))
            .collect();
        assert_eq!(
            bandwidths.len(),
            master.variants.len(),
            "{stream}: BANDWIDTH not distinct"
        );
        assert_eq!(
            resolutions.len(),
            master.variants.len(),
            "{stream}: RESOLUTION not distinct"
        );
        assert_eq!(
            codecs.len(),
            master.variants.len(),
            "{stream}: CODECS not distinct"
        );
        for v in &master.variants {
            let average = v.average_bandwidth.expect("AVERAGE-BANDWIDTH");
            assert!(average <= v.bandwidth, "{stream} {}: average above peak", v.uri);
            assert_eq!(v.frame_rate, Some(25.0));
            let codecs = v.codecs.as_deref().unwrap_or_default();
            assert!(
                codecs.starts_with("avc1.") && codecs.ends_with(",mp4a.40.2"),
                "{codecs}"
            );
            assert!(
                exists(&store, &format!("{stream}/{}", v.uri)).await,
                "{stream}/{} missing",
                v.uri
            );
        }
    }
}

/// Runs ffprobe on `bytes` and returns its JSON report of the streams.
fn ffprobe(bytes: &[u8]) -> serde_json::Value {
    let file = tempfile::Builder::new()
        .suffix(".ts")
        .tempfile()
        .expect("temp file");
    std::fs::write(file.path(), bytes).expect("write temp file");
    let output = match Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-of", "json", "-show_entries"])
        .arg("stream=codec_type,codec_name,width,height,nb_read_frames")
        .arg(file.path())
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("ffprobe is not installed: install ffmpeg (which provides ffprobe) to run this test")
        }
        Err(e) => panic!("could not run ffprobe: {e}"),
    };
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "ffprobe rejected the segment: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("ffprobe prints JSON")
}

#[tokio::test]
async fn ffprobe_accepts_a_live_segment_of_every_rendition() {
    let store = memory();
    let config = PublishConfig::default();
    let d = config.target_duration_secs;
    let stream = config.live_streams[1].clone();
    let mut publisher = Publisher::new(store.clone(), config, start()).expect("publisher");
    publisher.tick(after(7 * d)).await.expect("tick");

    let master = master(&store, &stream).await;
    for variant in &master.variants {
        let dir = format!("{stream}/{}", variant.uri.trim_end_matches("/index.m3u8"));
        let playlist = media(&store, &format!("{dir}/index.m3u8")).await;
        let newest = playlist.segments.last().expect("segments");
        let report = ffprobe(&get(&store, &format!("{dir}/{}", newest.uri)).await);
        let streams = report["streams"].as_array().expect("streams");
        let video: Vec<_> = streams.iter().filter(|s| s["codec_type"] == "video").collect();
        let audio: Vec<_> = streams.iter().filter(|s| s["codec_type"] == "audio").collect();
        assert_eq!(video.len(), 1, "{dir}: {report}");
        assert_eq!(audio.len(), 1, "{dir}: {report}");
        assert_eq!(video[0]["codec_name"], "h264", "{dir}");
        assert_eq!(audio[0]["codec_name"], "aac", "{dir}");
        let resolution = variant.resolution.expect("RESOLUTION");
        assert_eq!(video[0]["width"].as_u64(), Some(resolution.width), "{dir}");
        assert_eq!(video[0]["height"].as_u64(), Some(resolution.height), "{dir}");
        // EXTINF is the real duration: D seconds of 25 fps video.
        let frames: u64 = video[0]["nb_read_frames"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .expect("frame count");
        assert_eq!(frames, 25 * d, "{dir}: frames in a {d} s segment");
        assert_eq!(newest.duration, d as f32);
    }
}

#[tokio::test]
async fn vod_is_one_loop_and_ends_with_endlist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = local(&dir);
    let config = PublishConfig {
        target_duration_secs: 3,
        ..PublishConfig::default()
    };
    let stream = config.vod_stream.clone();
    let mut publisher = Publisher::new(store.clone(), config, start()).expect("publisher");
    publisher.tick(start()).await.expect("tick");

    for name in renditions(&store, &stream).await {
        let path = format!("{stream}/{name}/index.m3u8");
        let text = get(&store, &path).await;
        let text = std::str::from_utf8(&text).expect("utf-8");
        assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"), "{path}:\n{text}");
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{path}:\n{text}");
        let playlist = media(&store, &path).await;
        assert!(playlist.end_list);
        assert_eq!(playlist.playlist_type, Some(MediaPlaylistType::Vod));
        assert_eq!(playlist.target_duration, 3);
        assert_eq!(playlist.segments.len() as u64, LOOP_SECS / 3);
        let total: f32 = playlist.segments.iter().map(|s| s.duration).sum();
        assert_eq!(total, LOOP_SECS as f32);
        for segment in &playlist.segments {
            assert!(exists(&store, &format!("{stream}/{name}/{}", segment.uri)).await);
        }
    }
}

#[tokio::test]
async fn discontinuity_marks_the_loop_restart_consistently() {
    let store = memory();
    let config = PublishConfig::default();
    let window = config.window as u64;
    let d = config.target_duration_secs;
    let per_loop = LOOP_SECS / d;
    let stream = config.live_streams[2].clone();
    let vod = config.vod_stream.clone();
    let mut publisher = Publisher::new(store.clone(), config, start()).expect("publisher");
    let names = renditions_after_first_tick(&mut publisher, &store, &stream).await;

    // Discontinuity sequence number of each segment, as every playlist that
    // listed it said, per rendition.
    let mut dsn: HashMap<(String, u64), u64> = HashMap::new();
    let mut seen_restart = false;
    for step in 0..(3 * per_loop) {
        publisher.tick(after(step * d)).await.expect("tick");
        for name in &names {
            let dir = format!("{stream}/{name}");
            let playlist = media(&store, &format!("{dir}/index.m3u8")).await;
            let first = playlist.media_sequence;
            // Tags that left the window are counted in the header.
            assert_eq!(
                playlist.discontinuity_sequence,
                first.saturating_sub(1) / per_loop,
                "step {step}"
            );
            let mut current = playlist.discontinuity_sequence;
            for (k, segment) in playlist.segments.iter().enumerate() {
                let msn = first + k as u64;
                let restart = msn > 0 && msn.is_multiple_of(per_loop);
                assert_eq!(segment.discontinuity, restart, "{dir} seg-{msn}");
                if segment.discontinuity {
                    current += 1;
                    seen_restart = true;
                }
                let previous = dsn.insert((name.clone(), msn), current);
                assert!(
                    previous.is_none_or(|p| p == current),
                    "{dir} seg-{msn}: dsn {previous:?} then {current}"
                );
                // Each live segment is the matching piece of the loop, which
                // is also what the VOD serves.
                if k as u64 == window - 1 {
                    let live = get(&store, &format!("{dir}/{}", segment.uri)).await;
                    let vod = get(&store, &format!("{vod}/{name}/seg-{}.ts", msn % per_loop)).await;
                    assert!(live == vod, "{dir} seg-{msn} differs from the vod segment");
                }
            }
        }
    }
    assert!(seen_restart, "no discontinuity within three loops");
    // Renditions agree with each other, so players can switch across them.
    for ((_, msn), n) in &dsn {
        for name in &names {
            if let Some(other) = dsn.get(&(name.clone(), *msn)) {
                assert_eq!(other, n, "seg-{msn}");
            }
        }
    }
}

#[tokio::test]
async fn a_tick_at_the_same_time_writes_nothing() {
    let store = memory();
    let mut publisher = Publisher::new(store.clone(), PublishConfig::default(), start()).expect("publisher");
    publisher.tick(after(5)).await.expect("tick");
    let before = listing(&store).await;
    publisher.tick(after(5)).await.expect("tick");
    assert_eq!(listing(&store).await, before);
}

#[tokio::test]
async fn a_jump_far_ahead_writes_only_the_window() {
    let store = memory();
    let config = PublishConfig::default();
    let window = config.window as u64;
    let stream = config.live_streams[0].clone();
    let mut publisher = Publisher::new(store.clone(), config, start()).expect("publisher");
    let names = renditions_after_first_tick(&mut publisher, &store, &stream).await;

    let ten_days = 10 * 24 * 3600;
    publisher.tick(after(ten_days)).await.expect("tick");
    let first = ten_days / 2;
    for name in &names {
        let dir = format!("{stream}/{name}");
        assert_eq!(
            stored_segments(&store, &dir).await,
            (first..first + window).collect()
        );
        assert_eq!(
            media(&store, &format!("{dir}/index.m3u8")).await.media_sequence,
            first
        );
    }
}

#[tokio::test]
async fn a_restarted_publisher_removes_segments_of_the_earlier_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = local(&dir);
    let config = PublishConfig::default();
    let window = config.window as u64;
    let stream = config.live_streams[0].clone();

    let mut earlier = Publisher::new(store.clone(), config.clone(), start()).expect("publisher");
    earlier.tick(after(1000)).await.expect("tick");
    drop(earlier);

    let later_start = after(2000);
    let mut later = Publisher::new(store.clone(), config, later_start).expect("publisher");
    later.tick(later_start).await.expect("tick");
    for name in renditions(&store, &stream).await {
        let dir = format!("{stream}/{name}");
        assert_eq!(stored_segments(&store, &dir).await, (0..window).collect());
        assert_eq!(
            media(&store, &format!("{dir}/index.m3u8")).await.media_sequence,
            0
        );
    }
}

#[test]
fn invalid_config_is_rejected_naming_the_key() {
    let cases = [
        (
            PublishConfig {
                window: 0,
                ..PublishConfig::default()
            },
            "publish.window",
        ),
        (
            PublishConfig {
                target_duration_secs: 5,
                ..PublishConfig::default()
            },
            "publish.target_duration_secs",
        ),
        (
            PublishConfig {
                target_duration_secs: 0,
                ..PublishConfig::default()
            },
            "publish.target_duration_secs",
        ),
        (
            PublishConfig {
                vod_stream: "../etc".into(),
                ..PublishConfig::default()
            },
            "publish.vod_stream",
        ),
        (
            PublishConfig {
                live_streams: vec!["live/a".into(), "live/a".into()],
                ..PublishConfig::default()
            },
            "publish.live_streams",
        ),
    ];
    for (config, key) in cases {
        match config.validate() {
            Err(Error::Config(message)) => assert!(message.contains(key), "{message}"),
            other => panic!("{config:?}: expected a config error naming {key}, got {other:?}"),
        }
        match Publisher::new(memory(), config, start()) {
            Err(Error::Config(message)) => assert!(message.contains(key), "{message}"),
            other => panic!("expected a config error naming {key}, got {other:?}"),
        }
    }
    assert!(PublishConfig::default().validate().is_ok());
    for d in [1, 2, 3, 4, 6, 12] {
        let config = PublishConfig {
            target_duration_secs: d,
            ..PublishConfig::default()
        };
        assert!(config.validate().is_ok(), "target duration {d}");
    }
}

#[tokio::test]
async fn run_stops_on_shutdown() {
    let store = memory();
    let publisher =
        Publisher::new(store.clone(), PublishConfig::default(), SystemTime::now()).expect("publisher");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(publisher.run(async move {
        let _ = stopped.await;
    }));
    // Let the first tick happen, then stop.
    tokio::time::sleep(Duration::from_millis(10)).await;
    while !listing(&store)
        .await
        .keys()
        .any(|p| p.starts_with("live/demo-3/") && p.ends_with("/index.m3u8"))
    {
        tokio::task::yield_now().await;
    }
    stop.send(()).expect("publisher still running");
    task.await.expect("join").expect("run");
    assert!(exists(&store, "vod/demo/master.m3u8").await);
}
