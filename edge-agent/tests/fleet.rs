//! The edge in its fleet: heartbeats to routers (small axum servers in this
//! test process that record what they get), router discovery, and drain.
//! Real `hlscdn-edge` (and `hlscdn-origin`) processes on loopback.

use test_kit as common;
mod support;

use std::time::{Duration, Instant};

use common::client;
use reqwest::StatusCode;
use router_api::fleet::EdgeState;
use support::{
    EdgeProc, FLEET_TOKEN, FakeRouter, edge_metrics, origin, payload, publish, sample, start_edge,
};

const SEG: &str = "/live/s1/480p/seg-1.ts";

/// Waits for the exit of `edge` on a blocking thread; returns it with the
/// exit status and the instant it was seen.
async fn wait_exit(
    mut edge: EdgeProc,
    limit: Duration,
) -> (EdgeProc, Option<std::process::ExitStatus>, Instant) {
    tokio::task::spawn_blocking(move || {
        let status = edge.wait_exit(limit);
        (edge, status, Instant::now())
    })
    .await
    .expect("wait task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_carry_identity_and_load_and_a_restart_is_a_new_instance() {
    let router = FakeRouter::start(None).await;
    let origin = origin();
    publish(&origin, SEG, payload(100_000, 1)).await;
    let (origin_url, router_url) = (origin.url(""), router.url());
    let args = [
        "--id",
        "edge-hb",
        "--origin",
        &origin_url,
        "--router",
        &router_url,
        "--fleet-token",
        FLEET_TOKEN,
        "--heartbeat-interval",
        "200ms",
        "--capacity-bps",
        "5000000000",
        "--max-connections",
        "500",
        "--group",
        "eu-west",
        "--drain-quiet",
        "100ms",
    ];
    let edge = start_edge(&args);
    let http = client();
    for _ in 0..20 {
        let r = http.get(edge.url(SEG)).send().await.expect("get");
        assert_eq!(r.bytes().await.expect("body").len(), 100_000);
    }
    let (_, ad) = router
        .wait_for(Duration::from_secs(5), |ad| !ad.hot_streams.is_empty())
        .await
        .expect("an ad with hot streams");
    assert_eq!(ad.edge_id, "edge-hb");
    assert_eq!(ad.public_url, edge.url(""));
    assert_eq!(ad.group.as_deref(), Some("eu-west"));
    assert_eq!(ad.state, EdgeState::Ready);
    assert_eq!(
        (ad.capacity.egress_bps, ad.capacity.connections),
        (5_000_000_000, 500)
    );
    assert_eq!(ad.ttl_ms, 600, "3 × the heartbeat interval");
    assert_eq!(ad.hot_streams[0].stream, "live/s1|480p");
    assert!(ad.hot_streams[0].egress_bps > 0);
    assert!(ad.load.egress_bps > 0);
    assert!(ad.load.requests_per_sec > 0.0);
    assert!(ad.load.cache_hit_ratio > 0.5, "{}", ad.load.cache_hit_ratio);
    assert!(ad.load.cache_bytes >= 100_000);
    assert!(
        router.ads().iter().any(|(_, ad)| ad.load.connections >= 1),
        "the client's keep-alive connection is counted"
    );

    let deadline = Instant::now() + Duration::from_secs(5);
    while router.ads().len() < 4 {
        assert!(Instant::now() < deadline, "ads stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ads = router.ads();
    assert!(ads.len() >= 3, "{} ads", ads.len());
    let first = ads[0].1.instance.clone();
    assert!(ads.iter().all(|(_, ad)| ad.instance == first), "one instance");
    assert!(
        ads.windows(2).all(|w| w[1].1.generation > w[0].1.generation),
        "generations increase"
    );
    assert_eq!(*router.refused.lock().expect("lock"), 0, "every ad was valid");
    let m = edge_metrics(&edge).await;
    assert!(sample(&m, "hlscdn_edge_ads_sent_total", &[]) >= 3.0);
    assert!(sample(&m, "hlscdn_edge_egress_bits_per_second", &[]) > 0.0);
    assert_eq!(sample(&m, "hlscdn_edge_capacity_bits_per_second", &[]), 5e9);

    edge.signal("TERM");
    let (_edge, status, _) = wait_exit(edge, Duration::from_secs(10)).await;
    assert!(status.expect("exited").success());
    let restarted = start_edge(&args);
    let (_, ad) = router
        .wait_for(Duration::from_secs(5), |ad| ad.instance != first)
        .await
        .expect("an ad from the restarted edge");
    assert_ne!(ad.instance.id, first.id, "a restarted edge has a new instance id");
    assert!(ad.instance.started_unix_ms >= first.started_unix_ms);
    assert_eq!(ad.public_url, restarted.url(""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_routers_do_not_slow_ads_to_a_live_one() {
    let live = FakeRouter::start(None).await;
    // Accepts connections (the kernel does) and never answers.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let blackhole_url = format!("http://{}", blackhole.local_addr().expect("addr"));
    // Nobody listens here.
    let refused_url = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let live_url = live.url();
    let edge = start_edge(&[
        "--id",
        "edge-dead",
        "--origin",
        "http://127.0.0.1:9",
        "--fleet-token",
        FLEET_TOKEN,
        "--router",
        &blackhole_url,
        "--router",
        &refused_url,
        "--router",
        &live_url,
        "--heartbeat-interval",
        "200ms",
    ]);
    live.wait_for(Duration::from_secs(5), |_| true)
        .await
        .expect("a first ad");
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let arrivals: Vec<Instant> = live
        .ads()
        .into_iter()
        .map(|(at, _)| at)
        .filter(|at| *at >= start)
        .collect();
    assert!(
        arrivals.len() >= 12,
        "{} ads in 3 s at a 200 ms interval",
        arrivals.len()
    );
    let worst = arrivals.windows(2).map(|w| w[1] - w[0]).max().expect("gaps");
    assert!(worst < Duration::from_millis(450), "an ad gap of {worst:?}");
    let m = edge_metrics(&edge).await;
    assert!(sample(&m, "hlscdn_edge_ads_failed_total", &[]) >= 2.0);
    assert_eq!(sample(&m, "hlscdn_edge_routers", &[("state", "down")]), 2.0);
    assert_eq!(sample(&m, "hlscdn_edge_routers", &[("state", "up")]), 1.0);
    drop(blackhole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routers_are_learned_from_routers() {
    // a (seed) lists b in the object form; b lists c in the array form; c has no list (404).
    let c = FakeRouter::start(None).await;
    let b = FakeRouter::start(Some(serde_json::json!([c.url()]))).await;
    let a = FakeRouter::start(Some(serde_json::json!({"routers": [{"url": b.url()}]}))).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("edge.toml");
    std::fs::write(
        &file,
        format!(
            "id = \"edge-learn\"\norigin = \"http://127.0.0.1:9\"\nrouters = [\"{}\"]\nfleet_token = \"{FLEET_TOKEN}\"\n\
             heartbeat_interval = \"200ms\"\ndiscovery_interval = \"200ms\"\n",
            a.url()
        ),
    )
    .expect("write config");
    let _edge = start_edge(&["--config", file.to_str().expect("path")]);
    for router in [&a, &b, &c] {
        router
            .wait_for(Duration::from_secs(10), |ad| ad.edge_id == "edge-learn")
            .await
            .expect("every router gets ads");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_sends_a_draining_ad_at_once_serves_on_and_exits_when_quiet() {
    let router = FakeRouter::start(None).await;
    let origin = origin();
    publish(&origin, SEG, payload(100_000, 4)).await;
    let (origin_url, router_url) = (origin.url(""), router.url());
    let edge = start_edge(&[
        "--id",
        "edge-drain",
        "--origin",
        &origin_url,
        "--router",
        &router_url,
        "--fleet-token",
        FLEET_TOKEN,
        "--heartbeat-interval",
        "1000ms",
        "--drain-quiet",
        "1000ms",
        "--drain-timeout",
        "20000ms",
    ]);
    let http = client();
    router
        .wait_for(Duration::from_secs(5), |ad| ad.state == EdgeState::Ready)
        .await
        .expect("a ready ad");
    assert_eq!(
        http.get(edge.url("/readyz"))
            .send()
            .await
            .expect("readyz")
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        http.get(edge.url(SEG)).send().await.expect("get").status(),
        StatusCode::OK
    );

    let signalled = Instant::now();
    edge.signal("TERM");
    let (arrived, ad) = router
        .wait_for(Duration::from_secs(2), |ad| ad.state == EdgeState::Draining)
        .await
        .expect("a draining ad");
    let latency = arrived - signalled;
    assert!(
        latency < Duration::from_millis(200),
        "draining ad after {latency:?}"
    );
    assert_eq!(ad.edge_id, "edge-drain");
    let r = http.get(edge.url("/readyz")).send().await.expect("readyz");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.text().await.expect("body"), "draining\n");

    // Viewers who still come are served, and keep the edge up past the quiet period.
    let mut last = Instant::now();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = http.get(edge.url(SEG)).send().await.expect("get during drain");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.bytes().await.expect("body").len(), 100_000);
        last = Instant::now();
    }
    assert!(signalled.elapsed() > Duration::from_millis(1400));
    let (_edge, status, exited) = wait_exit(edge, Duration::from_secs(10)).await;
    let status = status.expect("the edge exits after the quiet period");
    assert!(status.success(), "{status:?}");
    let quiet = exited - last;
    assert!(
        quiet >= Duration::from_millis(900) && quiet < Duration::from_secs(4),
        "exited {quiet:?} after the last request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_drain_needs_the_fleet_token() {
    let router = FakeRouter::start(None).await;
    let router_url = router.url();
    let edge = start_edge(&[
        "--id",
        "edge-admin",
        "--origin",
        "http://127.0.0.1:9",
        "--router",
        &router_url,
        "--fleet-token",
        FLEET_TOKEN,
        "--drain-quiet",
        "300ms",
    ]);
    let http = client();
    let drain = edge.url("/admin/drain");
    let r = http.post(&drain).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = http
        .post(&drain)
        .bearer_auth("not-the-token")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        http.get(edge.url("/readyz"))
            .send()
            .await
            .expect("readyz")
            .status(),
        StatusCode::OK
    );
    let asked = Instant::now();
    let r = http
        .post(&drain)
        .bearer_auth(FLEET_TOKEN)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let (arrived, _) = router
        .wait_for(Duration::from_secs(2), |ad| ad.state == EdgeState::Draining)
        .await
        .expect("a draining ad");
    assert!(arrived - asked < Duration::from_millis(200));
    let (_edge, status, _) = wait_exit(edge, Duration::from_secs(10)).await;
    assert!(status.expect("exits when quiet").success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_exits_at_once() {
    let edge = start_edge(&[
        "--id",
        "edge-twice",
        "--origin",
        "http://127.0.0.1:9",
        "--drain-quiet",
        "30000ms",
    ]);
    let http = client();
    edge.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = http.get(edge.url("/readyz")).send().await.expect("readyz");
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(Instant::now() < deadline, "never started draining");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = Instant::now();
    edge.signal("TERM");
    let (_edge, status, exited) = wait_exit(edge, Duration::from_secs(5)).await;
    let status = status.expect("exits");
    assert_eq!(status.code(), Some(1), "a cut-short drain is not a clean exit");
    assert!(exited - second < Duration::from_secs(1), "{:?}", exited - second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_given_only_its_credential_heartbeats_and_drains() {
    let router = FakeRouter::start(None).await;
    let router_url = router.url();
    let own = router_api::fleet::edge_credential(FLEET_TOKEN, "edge-cred");
    let edge = start_edge(&[
        "--id",
        "edge-cred",
        "--origin",
        "http://127.0.0.1:9",
        "--router",
        &router_url,
        "--fleet-token",
        &own,
        "--drain-quiet",
        "300ms",
    ]);
    router
        .wait_for(Duration::from_secs(3), |ad| ad.edge_id == "edge-cred")
        .await
        .expect("an ad signed with the edge's own credential");
    let http = client();
    let drain = edge.url("/admin/drain");
    for wrong in [
        FLEET_TOKEN.to_owned(),
        router_api::fleet::edge_credential(FLEET_TOKEN, "edge-other"),
    ] {
        let r = http.post(&drain).bearer_auth(&wrong).send().await.expect("post");
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "an edge holding its credential knows no other"
        );
    }
    let r = http.post(&drain).bearer_auth(&own).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let (_edge, status, _) = wait_exit(edge, Duration::from_secs(10)).await;
    assert!(status.expect("exits when quiet").success());
}
