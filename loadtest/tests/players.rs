//! `hlscdn-loadtest players` against a real cluster on loopback: an
//! `hlscdn-origin` publishing the demo streams, two `hlscdn-router`s that are
//! peers, and three `hlscdn-edge`s heartbeating to the first router. A short,
//! bounded run must play without errors or stalls, put every viewer on an
//! edge, keep every stream invariant, and write its figures to JSON and HTML.

use test_kit as common;

use std::time::{Duration, Instant};

use common::{Port, Server, client};
use serde_json::Value;

const TOKEN: &str = "fleet-token-for-loadtest-0123";

struct Cluster {
    _dir: tempfile::TempDir,
    origin: Server,
    routers: Vec<Server>,
    edges: Vec<Server>,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = url::Url::from_directory_path(dir.path().join("store"))
            .expect("url")
            .to_string();
        let origin = Server::origin(&["--store", &store, "--publish-demo"], &[]);
        let config = dir.path().join("router.toml");
        std::fs::write(&config, "discovery_interval = \"300ms\"\n").expect("config");
        // Each router is the other's peer: both addresses are known first.
        let ports = [Port::reserve(), Port::reserve()];
        let routers: Vec<Server> = ports
            .iter()
            .zip(ports.iter().rev())
            .map(|(port, peer)| {
                let args = [
                    "--config".to_owned(),
                    config.to_str().expect("utf-8").to_owned(),
                    "--origin".to_owned(),
                    origin.url(""),
                    "--fleet-token".to_owned(),
                    TOKEN.to_owned(),
                    "--peer".to_owned(),
                    peer.url(),
                ];
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let path = common::bin_path("router", "hlscdn-router");
                Server::start_on(port, path.to_str().expect("utf-8"), &args, &[])
            })
            .collect();
        let edges = (1..=3)
            .map(|i| {
                let id = format!("edge-{i}");
                Server::binary(
                    "edge-agent",
                    "hlscdn-edge",
                    &[
                        "--id",
                        &id,
                        "--origin",
                        &origin.url(""),
                        "--router",
                        &routers[0].url(""),
                        "--fleet-token",
                        TOKEN,
                    ],
                    &[],
                )
            })
            .collect();
        Cluster {
            _dir: dir,
            origin,
            routers,
            edges,
        }
    }

    /// Waits until every router sees the three edges fresh.
    async fn ready(&self) {
        let started = Instant::now();
        for router in &self.routers {
            loop {
                let view: Option<Value> = match client().get(router.url("/api/v1/edges")).send().await {
                    Ok(r) => r.json().await.ok(),
                    Err(_) => None,
                };
                let fresh = view
                    .as_ref()
                    .and_then(|v| v["edges"].as_array())
                    .map_or(0, |edges| edges.iter().filter(|e| e["fresh"] == true).count());
                if fresh == 3 {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "edges not seen by every router"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_viewers_play_without_errors_or_stalls() {
    let cluster = Cluster::start();
    cluster.ready().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("players.json");
    let html = dir.path().join("players.html");
    let started = Instant::now();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hlscdn-loadtest"))
        .args([
            "players",
            "--router",
            &cluster.routers[0].url(""),
            "--router",
            &cluster.routers[1].url(""),
            "--viewers",
            "50",
            "--duration",
            "20s",
            "--arrival-rate",
            "25/s",
            "--probe-segments",
            "--origin",
            &cluster.origin.url(""),
            "--json",
            json.to_str().expect("utf-8"),
            "--html",
            html.to_str().expect("utf-8"),
        ])
        .output()
        .await
        .expect("run hlscdn-loadtest");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    eprintln!("{stdout}");
    assert!(took < Duration::from_secs(40), "bounded run took {took:?}");
    assert!(
        stderr.contains("viewers 50 (arrived 50)"),
        "progress line: {stderr}"
    );

    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parse");
    let v = &r["viewers"];
    assert_eq!(v["arrived"], 50);
    assert_eq!(v["with_edge"], 50, "every viewer got segments from an edge");
    assert_eq!(v["sessions"]["stalls"], 0, "no stall");
    assert_eq!(v["sessions"]["gave_up"], 0);
    assert_eq!(v["sessions"]["skipped_segments"], 0);
    assert_eq!(v["rebuffering_ratio"], 0.0);
    assert_eq!(v["stalls_per_viewer_hour"], 0.0);
    assert!(
        v["startup"]["count"].as_u64().is_some_and(|n| n >= 50),
        "{}",
        v["startup"]
    );
    assert!(
        v["startup"]["p99_ms"]
            .as_f64()
            .is_some_and(|ms| ms > 0.0 && ms < 5000.0)
    );

    for kind in ["master", "media playlist", "segment", "steering"] {
        let k = &r["requests"][kind];
        assert!(k["requests"].as_u64().is_some_and(|n| n > 0), "{kind}: {k}");
        assert_eq!(k["errors"], 0, "{kind}: {k}");
        assert_eq!(k["error_rate"], 0.0);
        assert!(k["slow_rate"].is_number());
    }
    assert!(
        r["errors"].as_object().is_some_and(|e| e.is_empty()),
        "{}",
        r["errors"]
    );
    let classes: Vec<&str> = r["latency"]
        .as_array()
        .expect("latency")
        .iter()
        .filter_map(|c| c["class"].as_str())
        .collect();
    assert_eq!(classes, ["master", "media", "segment_ttfb", "segment"]);
    for c in r["latency"].as_array().expect("latency") {
        let l = &c["latency"];
        for p in ["p50_ms", "p90_ms", "p99_ms", "p999_ms"] {
            assert!(l[p].as_f64().is_some_and(|ms| ms > 0.0), "{c}");
        }
        assert!(l["p50_ms"].as_f64() <= l["p999_ms"].as_f64());
    }

    // Viewers and bytes per edge: every edge is one of ours, every viewer on one.
    let edges = r["edges"].as_array().expect("edges");
    assert!(!edges.is_empty());
    let ours: Vec<String> = cluster.edges.iter().map(|e| e.addr.to_string()).collect();
    let mut at_end = 0;
    for e in edges {
        let name = e["edge"].as_str().expect("edge");
        assert!(
            ours.iter().any(|o| o == name),
            "{name} is not an edge of the cluster"
        );
        assert!(e["id"].as_str().is_some_and(|id| id.starts_with("edge-")), "{e}");
        assert!(e["bytes"].as_u64().is_some_and(|b| b > 0));
        at_end += e["viewers_at_end"].as_u64().expect("viewers_at_end");
    }
    assert_eq!(at_end, 50);

    // The edges' caches and the origin, from /metrics deltas.
    let c = &r["cache"];
    assert!(
        c["hit_ratio"].as_f64().is_some_and(|h| h > 0.5 && h <= 1.0),
        "{c}"
    );
    assert_eq!(c["edges"].as_array().map(Vec::len), Some(3), "{c}");
    assert!(c["unique_segments"].as_u64().is_some_and(|n| n > 0));
    let per_segment = c["origin_requests_per_unique_segment"]
        .as_f64()
        .expect("per segment");
    assert!((0.5..=3.5).contains(&per_segment), "{c}");

    // Stream invariants: every media playlist checked, every segment URL
    // probed, nothing violated; both routers alive, so no failover.
    let i = &r["invariants"];
    let checked = i["playlists_checked"].as_u64().expect("playlists_checked");
    let media = r["requests"]["media playlist"]["requests"]
        .as_u64()
        .expect("media requests");
    assert_eq!(checked, media, "every media playlist received is checked: {i}");
    assert!(i["uris_seen"].as_u64().is_some_and(|n| n > 0), "{i}");
    assert_eq!(i["uris_probed"], i["uris_seen"], "{i}");
    assert_eq!(i["violations_total"], 0, "{i}");
    for kind in [
        "backwards",
        "discontinuity",
        "too_old",
        "unfetchable",
        "listed_uri_changed",
    ] {
        assert_eq!(i["violations"][kind], 0, "{kind}: {i}");
    }
    assert_eq!(v["moves"]["failovers"], 0, "{}", v["moves"]);
    // Content Steering: every viewer loads its steering manifest; nobody
    // sees a listed segment change its URI.
    assert!(
        r["requests"]["steering"]["requests"]
            .as_u64()
            .is_some_and(|n| n >= 50),
        "{}",
        r["requests"]
    );
    assert_eq!(v["sessions"]["listed_uri_changes"], 0, "{}", v["sessions"]);
    assert!(
        stdout.contains("invariants: ") && stdout.contains(" failovers=0 violations=0"),
        "{stdout}"
    );

    let t = &r["timeline"];
    assert!(t["secs"].as_array().is_some_and(|s| s.len() >= 15), "{t}");
    let page = std::fs::read_to_string(&html).expect("html");
    assert!(page.starts_with("<!doctype html>") && page.matches("<svg").count() >= 3);
    assert!(page.contains("<h2>Stream invariants</h2>"));
    assert!(!page.contains("<script"), "self-contained, no script");
}
