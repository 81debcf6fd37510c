//! The catalog (`GET /api/v1/streams`) against a real `hlscdn-origin`
//! process on a large `file://` store: callers share one bounded listing, and
//! segments are served meanwhile. Issue 13 item 7. A test binary of its own,
//! so that no other test's crowd runs beside its timings.

use test_kit as common;
use test_kit::raw;

use std::time::{Duration, Instant};

use common::{Server, client};
use reqwest::StatusCode;

/// Writes `streams` streams of one playlist and 99 one-byte segments each
/// (100 objects a stream) under `root/lib`, straight to disk.
fn write_library(root: &std::path::Path, streams: usize) {
    for s in 0..streams {
        let dir = root.join(format!("lib/s{s:04}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("index.m3u8"), "#EXTM3U\n").expect("write");
        for k in 0..99 {
            std::fs::write(dir.join(format!("seg-{k}.ts")), b"x").expect("write");
        }
    }
}

/// `GET /api/v1/streams` with `http`: status, the answer, and how long it took.
async fn catalog(http: reqwest::Client, url: String) -> (StatusCode, serde_json::Value, Duration) {
    let started = Instant::now();
    let r = http.get(url).send().await.expect("catalog");
    let status = r.status();
    let body = r.json().await.expect("json");
    (status, body, started.elapsed())
}

/// The catalog is listed at most once per period, one listing at a time,
/// and one listing reads at most `catalog_max_objects` keys: 32 concurrent
/// calls on a 20 000-object `file://` store cost one listing, and segments
/// are served meanwhile as fast as before. Issue 13 item 7 (before: every
/// call listed the whole store; 32 calls on 50 000 objects made a segment
/// take 0.62 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_calls_share_one_bounded_listing_and_segments_stay_fast() {
    const LISTINGS: &str = "hlscdn_origin_catalog_listings_total";
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    write_library(&root, 200);
    let store = url::Url::from_directory_path(&root).expect("url").to_string();
    let origin = Server::origin(&["--store", &store], &[]);
    let segment = "/lib/s0000/seg-1.ts";
    let (status, idle) = raw::timed_get(origin.addr, segment).await;
    assert_eq!(status, 200);
    assert_eq!(
        common::metric(&origin, LISTINGS).await,
        0.0,
        "nothing listed before a call"
    );

    // One client for every call: building 32 would keep this test's own
    // threads busy and delay the segment requests it times.
    let http = client();
    for burst in 1..=2 {
        let started = Instant::now();
        let calls: Vec<_> = (0..32)
            .map(|_| tokio::spawn(catalog(http.clone(), origin.url("/api/v1/streams"))))
            .collect();
        // Segments on new connections, one after another, while the calls run.
        let mut segments = Vec::new();
        while segments.len() < 5 || calls.iter().any(|c| !c.is_finished()) {
            let (status, took) = raw::timed_get(origin.addr, segment).await;
            assert_eq!(status, 200);
            segments.push(took);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut slowest_call = Duration::ZERO;
        for call in calls {
            let (status, body, took) = call.await.expect("task");
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body["streams"].as_array().map(Vec::len), Some(200));
            assert_eq!(body["streams"][0]["playlists"][0], "lib/s0000/index.m3u8");
            assert_eq!(body["truncated"], false);
            slowest_call = slowest_call.max(took);
        }
        let slowest_segment = segments.iter().max().copied().unwrap_or_default();
        let listings = common::metric(&origin, LISTINGS).await;
        println!(
            "burst {burst}: 32 catalog calls in {:?} (slowest {slowest_call:?}), {listings} listing(s); \
             {} segment GETs meanwhile, slowest {slowest_segment:?} (idle: {idle:?})",
            started.elapsed(),
            segments.len()
        );
        assert_eq!(listings, 1.0, "one listing for both bursts (default period 5 s)");
        assert!(
            slowest_segment < Duration::from_millis(100),
            "a segment took {slowest_segment:?} during burst {burst}"
        );
    }

    // A bounded listing: 1 000 keys of 20 000, and the answer says so.
    let bounded = Server::origin(&["--store", &store, "--catalog-max-objects", "1000"], &[]);
    let (status, body, _) = catalog(http, bounded.url("/api/v1/streams")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["truncated"], true);
    let streams = body["streams"].as_array().map_or(0, Vec::len);
    assert!((1..=11).contains(&streams), "{streams} streams from 1 000 keys");
    assert_eq!(common::metric(&bounded, LISTINGS).await, 1.0);
}
