//! Routers as a fleet, with real `hlscdn-router` processes on loopback in a
//! ring of peers (each router seeded only with the next): discovery
//! converges, an ad posted to one router reaches every router and is stored
//! exactly once by each (no circulation), bad ads change nothing, a late
//! router copies the fleet view before it is ready, and a dead router is
//! dropped and relearned.

use test_kit as common;
mod support;

use std::time::{Duration, Instant};

use common::{Port, Server, client, eventually};
use router_api::fleet::{Ad, Capacity, EdgeState, Instance, LINK_LOST_PATH, Link, Load};
use serde_json::Value;
use support::{edge_state, edges};

const TOKEN: &str = "fleet-token-for-tests-0123";

/// A router serving on `port`, seeded with the routers on `peers`.
fn start_router(port: &Port, peers: &[&Port], dir: &std::path::Path) -> Server {
    let config = dir.join(format!("router-{}.toml", port.addr().port()));
    std::fs::write(
        &config,
        "discovery_interval = \"200ms\"\nbootstrap_timeout = \"3s\"\n",
    )
    .expect("config");
    let mut args = vec![
        "--config".to_owned(),
        config.to_str().expect("utf-8").to_owned(),
        "--origin".to_owned(),
        "http://127.0.0.1:9".to_owned(),
        "--fleet-token".to_owned(),
        TOKEN.to_owned(),
    ];
    for peer in peers {
        args.push("--peer".to_owned());
        args.push(peer.url());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let path = common::bin_path("router", "hlscdn-router");
    Server::start_on(port, path.to_str().expect("utf-8"), &args, &[])
}

/// A router on a port of its own, seeded with none.
fn lone_router(dir: &std::path::Path) -> Server {
    start_router(&Port::reserve(), &[], dir)
}

fn ad(edge: &str, generation: u64) -> Ad {
    Ad {
        edge_id: edge.to_owned(),
        public_url: format!("http://127.0.0.1:9/{edge}"),
        group: None,
        state: EdgeState::Ready,
        capacity: Capacity {
            egress_bps: 1_000_000_000,
            connections: 1000,
        },
        load: Load::default(),
        hot_streams: Vec::new(),
        ttl_ms: 30_000,
        instance: Instance {
            started_unix_ms: 1_700_000_000_000,
            id: "0123456789abcdef".into(),
        },
        generation,
    }
}

async fn post_ad(router: &Server, body: String, token: Option<&str>) -> reqwest::StatusCode {
    let mut request = client()
        .post(router.url("/api/v1/ads"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("post ad").status()
}

async fn router_ids(router: &Server) -> Vec<String> {
    let view: Value = client()
        .get(router.url("/api/v1/routers"))
        .send()
        .await
        .expect("routers")
        .json()
        .await
        .expect("json");
    let mut ids: Vec<String> = view["routers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// A counter on a server's /metrics.
async fn counter(server: &Server, series: &str) -> u64 {
    common::metric(server, series).await as u64
}

async fn ring(n: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports: Vec<Port> = (0..n).map(|_| Port::reserve()).collect();
    let routers: Vec<Server> = (0..n)
        .map(|i| start_router(&ports[i], &[&ports[(i + 1) % n]], dir.path()))
        .collect();

    // Discovery: every router comes to know every other.
    for router in &routers {
        eventually(Duration::from_secs(15), "discovery converges", || async {
            router_ids(router).await.len() == n
        })
        .await;
    }

    // Five generations of one edge's ad, posted to router 0 only.
    const ADS: u64 = 5;
    for generation in 1..=ADS {
        let body = serde_json::to_string(&ad("e1", generation)).expect("json");
        assert_eq!(post_ad(&routers[0], body, Some(TOKEN)).await, 200);
    }
    for router in &routers {
        eventually(
            Duration::from_secs(5),
            "every router has the newest ad",
            || async {
                edges(router)
                    .await
                    .edges
                    .iter()
                    .any(|e| e.ad.as_ref().is_some_and(|a| a.generation == ADS))
            },
        )
        .await;
    }
    // Forwarding has settled once nothing moves for a while; then each router
    // stored each ad exactly once, and the duplicates it saw are bounded.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut before = Vec::new();
    for router in &routers {
        let stored = counter(router, "hlscdn_router_ads_total{result=\"stored\"}").await;
        let dropped = counter(router, "hlscdn_router_ads_total{result=\"not_newer\"}").await;
        assert_eq!(stored, ADS, "each ad stored once per router");
        assert!(dropped <= ADS * (n as u64 - 2), "duplicates bounded: {dropped}");
        before.push(stored + dropped);
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for (router, before) in routers.iter().zip(before) {
        let after = counter(router, "hlscdn_router_ads_total{result=\"stored\"}").await
            + counter(router, "hlscdn_router_ads_total{result=\"not_newer\"}").await;
        assert_eq!(after, before, "no ad circulates");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_routers_in_a_ring_converge_without_circulating_ads() {
    ring(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_routers_in_a_ring_converge_without_circulating_ads() {
    ring(5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ads_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let router = lone_router(dir.path());
    let good = serde_json::to_string(&ad("e1", 10)).expect("json");
    assert_eq!(post_ad(&router, good.clone(), Some(TOKEN)).await, 200);

    let newer = serde_json::to_string(&ad("e1", 11)).expect("json");
    assert_eq!(post_ad(&router, newer.clone(), None).await, 401, "no token");
    assert_eq!(
        post_ad(&router, newer.clone(), Some("wrong-token-wrong-token")).await,
        401,
        "bad token"
    );
    assert_eq!(
        post_ad(&router, "{not json".into(), Some(TOKEN)).await,
        400,
        "garbage"
    );
    let mut invalid = ad("e1", 12);
    invalid.ttl_ms = 1;
    assert_eq!(
        post_ad(
            &router,
            serde_json::to_string(&invalid).expect("json"),
            Some(TOKEN)
        )
        .await,
        400
    );
    let mut bad_url = ad("e1", 12);
    bad_url.public_url = "ftp://evil.example/".into();
    assert_eq!(
        post_ad(
            &router,
            serde_json::to_string(&bad_url).expect("json"),
            Some(TOKEN)
        )
        .await,
        400
    );
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(100_000));
    assert_eq!(post_ad(&router, huge, Some(TOKEN)).await, 413, "oversized");
    // A replayed older generation is not stored.
    let replay = serde_json::to_string(&ad("e1", 3)).expect("json");
    assert_eq!(post_ad(&router, replay, Some(TOKEN)).await, 200);

    let view = edges(&router).await;
    assert_eq!(view.edges.len(), 1);
    assert_eq!(
        view.edges[0].ad.as_ref().map(|a| a.generation),
        Some(10),
        "nothing changed"
    );
    assert_eq!(view.edges[0].url, "http://127.0.0.1:9/e1");
    assert_eq!(
        counter(&router, "hlscdn_router_ads_total{result=\"unauthorized\"}").await,
        2
    );
    assert_eq!(
        counter(&router, "hlscdn_router_ads_total{result=\"rejected\"}").await,
        3
    );
}

/// Holds an edge link the way `hlscdn-edge` does (a newline every 200 ms,
/// no end); aborting the task drops the connection like a killed process.
fn hold_link(router: &Server, edge: &str) -> tokio::task::JoinHandle<()> {
    let link = Link {
        edge: edge.to_owned(),
        instance: ad(edge, 0).instance.id,
        generation: None,
    };
    let url = link.url(&router.url(""));
    tokio::spawn(async move {
        let beats = futures::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Some((Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"\n")), ()))
        });
        let http = reqwest::Client::builder().no_proxy().build().expect("client");
        let _ = http
            .post(url)
            .bearer_auth(TOKEN)
            .body(reqwest::Body::wrap_stream(beats))
            .send()
            .await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_edge_link_makes_the_edge_stale_everywhere_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pa, pb) = (Port::reserve(), Port::reserve());
    let a = start_router(&pa, &[&pb], dir.path());
    let b = start_router(&pb, &[&pa], dir.path());
    for edge in ["e1", "e2"] {
        let body = serde_json::to_string(&ad(edge, 1)).expect("json");
        assert_eq!(post_ad(&a, body, Some(TOKEN)).await, 200);
    }
    for router in [&a, &b] {
        eventually(Duration::from_secs(5), "both edges fresh", || async {
            edge_state(router, "e1").await == Some((true, true))
                && edge_state(router, "e2").await == Some((true, true))
        })
        .await;
    }

    // Without the fleet token nobody opens a link or reports a loss.
    let instance = ad("e1", 0).instance.id;
    let link = Link {
        edge: "e1".into(),
        instance: instance.clone(),
        generation: None,
    };
    let status = client()
        .post(link.url(&a.url("")))
        .body("\n")
        .send()
        .await
        .expect("post");
    assert_eq!(status.status(), 401);
    let loss = serde_json::to_string(&link).expect("json");
    let status = client()
        .post(a.url(LINK_LOST_PATH))
        .body(loss.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(status.status(), 401);
    let status = client()
        .post(a.url("/api/v1/link?edge=../x&instance=1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("post");
    assert_eq!(status.status(), 400);
    let status = client()
        .post(a.url(LINK_LOST_PATH))
        .bearer_auth(TOKEN)
        .body("{\"edge\":\"e1\"}")
        .send()
        .await
        .expect("post");
    assert_eq!(status.status(), 400);
    assert_eq!(edge_state(&a, "e1").await, Some((true, true)), "nothing changed");

    // e1 links to A only; e2 to both.
    let e1 = hold_link(&a, "e1");
    let e2_a = hold_link(&a, "e2");
    let e2_b = hold_link(&b, "e2");
    eventually(Duration::from_secs(5), "links open", || async {
        common::metric(&a, "hlscdn_router_edge_links").await == 2.0
            && common::metric(&b, "hlscdn_router_edge_links").await == 1.0
    })
    .await;

    // The connection drops as when the process is killed: stale on A at
    // once, and on B, told by A.
    e1.abort();
    let dropped = Instant::now();
    for router in [&a, &b] {
        eventually(Duration::from_secs(2), "e1 stale", || async {
            edge_state(router, "e1").await.is_some_and(|(f, _)| !f)
        })
        .await;
    }
    let seen = dropped.elapsed();
    eprintln!("link loss seen by both routers {seen:?} after the connection dropped (ad TTL 30 s)");
    assert!(seen < Duration::from_secs(1), "{seen:?}");
    assert_eq!(counter(&a, "hlscdn_router_edge_links_lost_total").await, 1);

    // Its last heartbeat, arriving late, does not bring it back…
    let late = serde_json::to_string(&ad("e1", 2)).expect("json");
    assert_eq!(post_ad(&a, late, Some(TOKEN)).await, 200);
    assert_eq!(edge_state(&a, "e1").await.map(|(f, _)| f), Some(false));
    // …a new link and ad do, held down.
    let _e1_again = hold_link(&a, "e1");
    eventually(Duration::from_secs(5), "link open", || async {
        common::metric(&a, "hlscdn_router_edge_links").await == 2.0
    })
    .await;
    let next = serde_json::to_string(&ad("e1", 3)).expect("json");
    assert_eq!(post_ad(&a, next, Some(TOKEN)).await, 200);
    assert_eq!(
        edge_state(&a, "e1").await,
        Some((true, false)),
        "fresh, held down"
    );

    // e2 loses its link to A only: A drops it; B holds its own link and
    // keeps trusting it.
    e2_a.abort();
    eventually(Duration::from_secs(2), "e2 stale on A", || async {
        edge_state(&a, "e2").await.is_some_and(|(f, _)| !f)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(edge_state(&b, "e2").await, Some((true, true)), "B still linked");
    e2_b.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_links_and_event_streams_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut router = lone_router(dir.path());
    let body = serde_json::to_string(&ad("e1", 1)).expect("json");
    assert_eq!(post_ad(&router, body, Some(TOKEN)).await, 200);
    let _link = hold_link(&router, "e1");
    let mut events = client()
        .get(router.url("/api/v1/events"))
        .send()
        .await
        .expect("events");
    assert!(events.chunk().await.expect("first event").is_some());
    eventually(Duration::from_secs(5), "link open", || async {
        common::metric(&router, "hlscdn_router_edge_links").await == 1.0
    })
    .await;

    // Both requests would last for ever; the drain does not wait for them.
    router.signal("TERM");
    let termed = Instant::now();
    let status = router.wait_exit(Duration::from_secs(8));
    let took = termed.elapsed();
    eprintln!("router with a link and an event stream open exited {took:?} after SIGTERM");
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_router_copies_the_view_before_ready_and_dead_routers_are_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pa, pb) = (Port::reserve(), Port::reserve());
    let a = start_router(&pa, &[&pb], dir.path());
    let b = start_router(&pb, &[&pa], dir.path());
    eventually(Duration::from_secs(10), "a and b know each other", || async {
        router_ids(&a).await.len() == 2
    })
    .await;
    let body = serde_json::to_string(&ad("e1", 1)).expect("json");
    assert_eq!(post_ad(&a, body, Some(TOKEN)).await, 200);

    // A router started late, seeded with b only: ready means it has the view.
    let c = start_router(&Port::reserve(), &[&pb], dir.path());
    eventually(Duration::from_secs(10), "c becomes ready", || async {
        client()
            .get(c.url("/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let view = edges(&c).await;
    assert!(
        view.edges.iter().any(|e| e.id == "e1" && e.fresh),
        "copied before ready: {view:?}"
    );
    // c learns a through b, and a learns c.
    eventually(Duration::from_secs(10), "a learns c", || async {
        router_ids(&a).await.len() == 3
    })
    .await;

    // b dies: a and c stop listing it; b comes back (on its port, which
    // refused connections meanwhile): it is relearned.
    drop(b);
    for router in [&a, &c] {
        eventually(Duration::from_secs(15), "dead router dropped", || async {
            router_ids(router).await.len() == 2
        })
        .await;
    }
    let b = start_router(&pb, &[&pa], dir.path());
    for router in [&a, &b, &c] {
        eventually(Duration::from_secs(15), "router relearned", || async {
            router_ids(router).await.len() == 3
        })
        .await;
    }
}

/// A router in front of `origin`, with `config` as its TOML file.
fn router_before(origin: &Server, dir: &std::path::Path, config: &str) -> Server {
    let path = dir.join("router.toml");
    std::fs::write(&path, config).expect("config");
    Server::binary(
        "router",
        "hlscdn-router",
        &[
            "--config",
            path.to_str().expect("utf-8"),
            "--origin",
            &origin.url(""),
            "--fleet-token",
            TOKEN,
        ],
        &[],
    )
}

/// The edge a rewritten media playlist sends its segments to.
async fn edge_of_playlist(router: &Server, path: &str) -> String {
    let body = common::text(router.url(path)).await;
    let segment = body
        .lines()
        .find(|l| l.starts_with("http://"))
        .unwrap_or_else(|| panic!("no segment:\n{body}"));
    segment
        .trim_start_matches("http://127.0.0.1:9/")
        .split('/')
        .next()
        .expect("edge")
        .to_owned()
}

fn loaded(edge: &str, generation: u64, load_bps: u64) -> String {
    let mut ad = ad(edge, generation);
    ad.load.egress_bps = load_bps;
    serde_json::to_string(&ad).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_spills_hot_streams_packs_cold_ones_and_is_explained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = url::Url::from_directory_path(dir.path().join("store"))
        .expect("url")
        .to_string();
    let origin = Server::origin(&["--store", &store, "--publish-demo"], &[]);
    let router = router_before(&origin, dir.path(), "hold_down = \"500ms\"\n");
    let mut events = client()
        .get(router.url("/api/v1/events"))
        .send()
        .await
        .expect("events");
    assert_eq!(events.headers()["content-type"], "text/event-stream");

    // Three edges of 1 Gbit/s, lightly loaded.
    for edge in ["e1", "e2", "e3"] {
        assert_eq!(
            post_ad(&router, loaded(edge, 1, 100_000_000), Some(TOKEN)).await,
            200
        );
    }
    let first =
        String::from_utf8_lossy(&events.chunk().await.expect("chunk").expect("an event")).into_owned();
    assert!(first.starts_with("event: fleet\n"), "{first}");

    // A cold stream: twenty viewers, all on the same edge.
    let cold = "/live/demo-2/240p/index.m3u8";
    let mut cold_edges = std::collections::BTreeSet::new();
    for _ in 0..20 {
        cold_edges.insert(edge_of_playlist(&router, cold).await);
    }
    assert_eq!(cold_edges.len(), 1, "a cold stream stays packed: {cold_edges:?}");

    // The hot stream's rendezvous order, from explain.
    let hot = "/live/demo-1/480p/index.m3u8";
    let explain: Value = client()
        .get(router.url(&format!("/api/v1/explain?path={hot}")))
        .send()
        .await
        .expect("explain")
        .json()
        .await
        .expect("json");
    let order: Vec<String> = explain["explanation"]["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .map(|c| c["edge_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(order.len(), 3);
    assert_eq!(explain["chosen"], order[0].as_str());
    assert_eq!(edge_of_playlist(&router, hot).await, order[0]);

    // Its top edge reports 90 % utilization: new viewers spill to the next
    // edge in rendezvous order, and explain says why.
    assert_eq!(
        post_ad(&router, loaded(&order[0], 2, 900_000_000), Some(TOKEN)).await,
        200
    );
    assert_eq!(
        edge_of_playlist(&router, hot).await,
        order[1],
        "spilled to the next edge"
    );
    let explain: Value = client()
        .get(router.url(&format!("/api/v1/explain?path={hot}")))
        .send()
        .await
        .expect("explain")
        .json()
        .await
        .expect("json");
    assert_eq!(explain["explanation"]["candidates"][0]["verdict"], "over_bound");
    assert_eq!(explain["explanation"]["candidates"][1]["verdict"], "chosen");

    // Draining takes an edge out at once; the events stream says so.
    let mut draining = ad(&order[1], 3);
    draining.state = EdgeState::Draining;
    assert_eq!(
        post_ad(
            &router,
            serde_json::to_string(&draining).expect("json"),
            Some(TOKEN)
        )
        .await,
        200
    );
    assert_eq!(edge_of_playlist(&router, hot).await, order[2]);
    // Autoscaling sees two ready edges at about half capacity: 2 × 0.5 / 0.6 → 2.
    let scale: Value = client()
        .get(router.url("/api/v1/scale"))
        .send()
        .await
        .expect("scale")
        .json()
        .await
        .expect("json");
    assert_eq!(scale["edges"], 2, "{scale}");
    let utilization = scale["utilization"].as_f64().expect("utilization");
    assert!((0.5..0.6).contains(&utilization), "{scale}");
    assert_eq!(scale["desired_edges"], 2, "{scale}");
    assert!(counter(&router, "hlscdn_router_desired_edges").await >= 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = String::new();
    while !seen.contains("\"state\":\"draining\"") {
        assert!(Instant::now() < deadline, "no draining event: {seen}");
        if let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(2), events.chunk()).await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_get_edges_of_their_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = url::Url::from_directory_path(dir.path().join("store"))
        .expect("url")
        .to_string();
    let origin = Server::origin(&["--store", &store, "--publish-demo"], &[]);
    let router = router_before(
        &origin,
        dir.path(),
        "group_header = \"x-viewer-group\"\n[groups]\n\"127.0.0.0/8\" = \"us\"\n",
    );
    for (edge, group) in [("eu1", "eu"), ("us1", "us")] {
        let mut ad = ad(edge, 1);
        ad.group = Some(group.into());
        assert_eq!(
            post_ad(&router, serde_json::to_string(&ad).expect("json"), Some(TOKEN)).await,
            200
        );
    }
    let path = "/vod/demo/360p/index.m3u8";
    // By address: loopback is "us".
    assert_eq!(edge_of_playlist(&router, path).await, "us1");
    // By the trusted header.
    let body = client()
        .get(router.url(path))
        .header("x-viewer-group", "eu")
        .send()
        .await
        .expect("playlist")
        .text()
        .await
        .expect("text");
    assert!(body.contains("http://127.0.0.1:9/eu1/vod/demo/360p/"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playlist_fetches_alone_cannot_forge_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = url::Url::from_directory_path(dir.path().join("store"))
        .expect("url")
        .to_string();
    let origin = Server::origin(&["--store", &store, "--publish-demo"], &[]);
    let router = router_before(
        &origin,
        dir.path(),
        "[autoscale]\nmin_edges = 1\nmax_edges = 10\n\n\
         [[edges]]\nid = \"e1\"\nurl = \"http://127.0.0.1:9\"\ncapacity_bps = 10_000_000\n\n\
         [[edges]]\nid = \"e2\"\nurl = \"http://127.0.0.1:9\"\ncapacity_bps = 10_000_000\n",
    );
    let scale = || async {
        client()
            .get(router.url("/api/v1/scale"))
            .send()
            .await
            .expect("scale")
            .json::<Value>()
            .await
            .expect("json")
    };
    let counted = || async {
        let view = edges(&router).await;
        view.edges
            .iter()
            .map(|e| (e.assigned_bps, e.viewers_assigned))
            .fold((0, 0), |(a, v), (ea, ev)| (a + ea, v + ev))
    };
    let before = scale().await;
    assert_eq!(before["desired_edges"], 1, "{before}");

    // 3 000 bare multivariant fetches, GET and HEAD, and bare media
    // playlist fetches: nobody watches, nothing counts. (Each master used
    // to add its first variant's 276 kbit/s: 20 Mbit/s of edges looked
    // 41 times full.)
    let started = Instant::now();
    let paths = ["/live/demo-1/master.m3u8", "/live/demo-2/240p/index.m3u8"];
    // One client per worker (its connection kept alive), as a player has.
    futures::future::join_all((0..32).map(|worker| {
        let router = &router;
        async move {
            let client = client();
            for i in (worker..3000).step_by(32) {
                let url = router.url(paths[i % 2]);
                let request = if i % 3 == 0 {
                    client.head(&url)
                } else {
                    client.get(&url)
                };
                let status = request.send().await.expect("playlist").status();
                assert_eq!(status, 200);
            }
        }
    }))
    .await;
    eprintln!("3000 bare playlist fetches in {:?}", started.elapsed());
    let after = scale().await;
    let again = scale().await;
    eprintln!("scale before {before}, after {after}");
    assert_eq!(after["desired_edges"], 1, "{after}");
    assert_eq!(after["utilization"], 0.0, "{after}");
    assert_eq!(after, again, "reading the scale changes nothing");
    assert_eq!(counted().await, (0, 0), "no viewer counted");

    // A real viewer counts once, at its rendition's bitrate, however often
    // it reloads; HEADs of its playlist count nothing.
    let master = common::text(router.url("/live/demo-1/master.m3u8")).await;
    let media = master
        .lines()
        .find(|l| l.contains("/480p/index.m3u8?s="))
        .expect("a 480p variant")
        .to_owned();
    for _ in 0..5 {
        assert_eq!(client().head(&media).send().await.expect("head").status(), 200);
        assert_eq!(client().get(&media).send().await.expect("get").status(), 200);
    }
    assert_eq!(counted().await, (775_000, 1), "one viewer at 480p's BANDWIDTH");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_speaks_for_itself_only_and_cannot_take_a_linked_identity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let router = lone_router(dir.path());
    let own = router_api::fleet::edge_credential(TOKEN, "e1");
    let other = router_api::fleet::edge_credential(TOKEN, "e2");
    let body = serde_json::to_string(&ad("e1", 1)).expect("json");

    // Its own credential: stored. Another edge's: refused, stores nothing.
    assert_eq!(post_ad(&router, body.clone(), Some(&other)).await, 403);
    assert!(
        edge_state(&router, "e1").await.is_none(),
        "a refused ad stores nothing"
    );
    assert_eq!(post_ad(&router, body, Some(&own)).await, 200);
    assert!(edge_state(&router, "e1").await.is_some());
    let forged = own.replacen("e1.", "e3.", 1);
    let e3 = serde_json::to_string(&ad("e3", 1)).expect("json");
    assert_eq!(post_ad(&router, e3, Some(&forged)).await, 401);
    // A link for another edge with its credential is refused too.
    let link = Link {
        edge: "e1".into(),
        instance: ad("e1", 0).instance.id,
        generation: None,
    };
    let r = client()
        .post(link.url(&router.url("")))
        .bearer_auth(&other)
        .send()
        .await
        .expect("link");
    assert_eq!(r.status(), 403);

    // e1's live instance holds a link: an ad of another instance under its
    // id (a newer start, another URL) is refused, whoever signs it.
    let held = hold_link(&router, "e1");
    eventually(Duration::from_secs(3), "the link is held", || async {
        common::metric(&router, "hlscdn_router_edge_links").await == 1.0
    })
    .await;
    let mut thief = ad("e1", 1);
    thief.instance = Instance {
        started_unix_ms: 1_800_000_000_000,
        id: "fedcba9876543210".into(),
    };
    thief.public_url = "http://127.0.0.1:9/thief".into();
    let thief = serde_json::to_string(&thief).expect("json");
    assert_eq!(post_ad(&router, thief.clone(), Some(TOKEN)).await, 409);
    assert_eq!(post_ad(&router, thief.clone(), Some(&own)).await, 409);
    let url = |view: router_api::fleet::EdgesView| {
        view.edges
            .iter()
            .find(|e| e.id == "e1")
            .map(|e| e.url.clone())
            .unwrap_or_default()
    };
    assert_eq!(url(edges(&router).await), "http://127.0.0.1:9/e1");

    // Once that link breaks (the process died), a new instance is taken.
    held.abort();
    eventually(Duration::from_secs(3), "the link broke", || async {
        common::metric(&router, "hlscdn_router_edge_links").await == 0.0
    })
    .await;
    assert_eq!(post_ad(&router, thief, Some(&own)).await, 200);
    assert_eq!(url(edges(&router).await), "http://127.0.0.1:9/thief");
}
