//! Attacks on missing names, against real `hlscdn-origin` and `hlscdn-edge`
//! processes: asking for live segment names before they are published must
//! not make a viewer fail once they are, and a flood of names the origin
//! lacks must cost the origin a bounded number of lookups
//! (`edge-agent/src/misses.rs`, `docs/EDGE.md`).

use test_kit as common;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::client;
use futures::StreamExt;
use support::{origin, payload, publish, sample, start_edge};

/// The highest media sequence number in a media playlist.
fn last_msn(playlist: &str) -> Option<u64> {
    playlist
        .lines()
        .filter_map(|l| l.trim().strip_prefix("seg-")?.strip_suffix(".ts")?.parse().ok())
        .max()
}

/// GETs the origin has answered, any status, by its own `/metrics`.
async fn origin_requests(origin: &common::Server) -> u64 {
    let text = client()
        .get(origin.url("/metrics"))
        .send()
        .await
        .expect("origin metrics")
        .text()
        .await
        .expect("text");
    sample(&text, "hlscdn_origin_requests_total", &[("method", "GET")]) as u64
}

/// The attacker asks the edge for the next two segment names of a live
/// rendition 20 times a second each, for 15 s, while the demo publisher
/// adds a segment every second and a viewer fetches each new segment from
/// the edge the moment the origin's playlist lists it: none may fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_next_segments_early_never_fails_a_viewer() {
    let origin = common::Server::origin(
        &[
            "--store",
            "memory://",
            "--publish-demo",
            "--publish-target-duration-secs",
            "1",
        ],
        &[],
    );
    let origin_url = origin.url("");
    let edge = start_edge(&["--id", "edge-poison", "--origin", &origin_url]);
    let playlist = origin.url("/live/demo-1/240p/index.m3u8");
    let http = client();
    let first = loop {
        if let Ok(r) = http.get(&playlist).send().await
            && let Ok(text) = r.text().await
            && let Some(msn) = last_msn(&text)
        {
            break msn;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let latest = Arc::new(AtomicU64::new(first));
    let stop = Arc::new(AtomicBool::new(false));
    let attacker = {
        let (latest, stop, edge_url) = (latest.clone(), stop.clone(), edge.url(""));
        tokio::spawn(async move {
            let http = client();
            let mut asked = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let n = latest.load(Ordering::Relaxed);
                for ahead in 1..=2 {
                    let url = format!("{edge_url}/live/demo-1/240p/seg-{}.ts", n + ahead);
                    let _ = http.get(&url).send().await;
                    asked += 1;
                }
            }
            asked
        })
    };
    let started = Instant::now();
    let (mut fetched, mut failed) = (0u32, Vec::new());
    let mut seen = first;
    while started.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let Ok(r) = http.get(&playlist).send().await else {
            continue;
        };
        let Some(msn) = r.text().await.ok().as_deref().and_then(last_msn) else {
            continue;
        };
        for n in seen + 1..=msn {
            let r = http
                .get(edge.url(&format!("/live/demo-1/240p/seg-{n}.ts")))
                .send()
                .await
                .expect("viewer get");
            let status = r.status().as_u16();
            let ok = status == 200 && r.bytes().await.is_ok_and(|b| !b.is_empty());
            fetched += 1;
            if !ok {
                failed.push((n, status));
            }
        }
        seen = seen.max(msn);
        latest.store(seen, Ordering::Relaxed);
    }
    stop.store(true, Ordering::Relaxed);
    let asked = attacker.await.expect("attacker");
    eprintln!("poisoning: attacker asked {asked} times; viewer fetched {fetched}, failed {failed:?}");
    assert!(asked >= 400, "the attack ran: {asked} requests");
    assert!(fetched >= 10, "segments were published and fetched: {fetched}");
    assert!(
        failed.is_empty(),
        "{} of {fetched} fetches failed: {failed:?}",
        failed.len()
    );
}

/// 5 000 random names the origin lacks, 64 at a time, then 500 requests at
/// once for one missing name: the origin sees at most the budget (100 a
/// second, 100 in a burst), the flood is answered 404 or 503,
/// and a segment published afterwards is served at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_missing_names_costs_the_origin_a_bounded_number_of_lookups() {
    let origin = origin();
    let origin_url = origin.url("");
    let edge = start_edge(&[
        "--id",
        "edge-flood",
        "--origin",
        &origin_url,
        "--miss-lookups-per-sec",
        "100",
    ]);
    let edge_url = edge.url("");
    let http = client();
    let before = origin_requests(&origin).await;
    let started = Instant::now();
    let statuses: Vec<u16> = futures::stream::iter(0..5_000u32)
        .map(|i| {
            let url = format!(
                "{edge_url}/live/x/720p/r{i:x}-{}.ts",
                i.wrapping_mul(2_654_435_761)
            );
            let http = http.clone();
            async move { http.get(&url).send().await.map_or(0, |r| r.status().as_u16()) }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let lookups = origin_requests(&origin).await - before - 1;
    let count = |s: u16| statuses.iter().filter(|&&x| x == s).count();
    let (not_found, busy) = (count(404), count(503));
    eprintln!(
        "flood: 5000 names in {elapsed:.2} s: {lookups} origin lookups, {not_found} × 404, {busy} × 503"
    );
    assert_eq!(not_found + busy, 5_000, "every answer is 404 or 503");
    let bound = (100.0 * (1.0 + elapsed)).ceil() as u64;
    assert!(lookups <= bound, "{lookups} origin lookups > {bound}");
    assert_eq!(lookups as usize, not_found, "every 404 is an origin lookup's");

    // One missing name, 500 requests at once: one lookup in flight at a
    // time, and within the budget.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let before = origin_requests(&origin).await;
    let started = Instant::now();
    let name = format!("{edge_url}/live/x/720p/hot.ts");
    let statuses: Vec<u16> = futures::stream::iter(0..500)
        .map(|_| {
            let url = name.clone();
            let http = http.clone();
            async move { http.get(&url).send().await.map_or(0, |r| r.status().as_u16()) }
        })
        .buffer_unordered(250)
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let lookups = origin_requests(&origin).await - before - 1;
    eprintln!("flood: 500 requests for one missing name in {elapsed:.2} s: {lookups} origin lookups");
    assert!(statuses.iter().all(|&s| s == 404 || s == 503), "{statuses:?}");
    let bound = (100.0 * (1.0 + elapsed)).ceil() as u64;
    assert!(lookups <= bound, "{lookups} origin lookups > {bound}");

    // The budget recovers, and a segment published now is served at once.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let seg = "/live/x/720p/seg-1.ts";
    let r = http.get(edge.url(seg)).send().await.expect("get");
    assert_eq!(r.status(), 404);
    let body = payload(10_000, 3);
    publish(&origin, seg, body.clone()).await;
    let r = http.get(edge.url(seg)).send().await.expect("get");
    assert_eq!(r.status(), 200, "served right after it was published");
    assert_eq!(r.bytes().await.expect("body").as_ref(), body.as_slice());
}
