//! The whole chain, with real processes on loopback: an `hlscdn-origin`
//! publishing the demo streams, three `hlscdn-edge`s heartbeating, and
//! `hlscdn-router`s sharing what they hear. Edges are seeded with one router
//! only; the others learn them by forwarding and discovery. Measured: how long
//! a killed edge keeps getting chosen, how soon a draining edge is seen, and
//! whether a viewer following its playlists meanwhile ever fails a segment.

#[path = "../../origin-store/tests/common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, Instant};

use common::{Server, client, eventually, free_port};
use support::{edge_state, edges};

const TOKEN: &str = "fleet-token-for-tests-0123";
const TTL: Duration = Duration::from_millis(3000);

struct Cluster {
    dir: tempfile::TempDir,
    origin: Server,
    routers: Vec<(u16, Server)>,
    edges: Vec<Option<Server>>,
}

impl Cluster {
    fn start(router_count: usize) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = url::Url::from_directory_path(dir.path().join("store"))
            .expect("url")
            .to_string();
        let origin = Server::origin(&["--store", &store, "--publish-demo"], &[]);
        let ports: Vec<u16> = (0..router_count).map(|_| free_port()).collect();
        let mut cluster = Cluster {
            dir,
            origin,
            routers: Vec::new(),
            edges: Vec::new(),
        };
        for (i, port) in ports.iter().enumerate() {
            let peers: Vec<u16> = ports.iter().copied().filter(|p| p != port).collect();
            let router = cluster.router(*port, &peers);
            cluster.routers.push((ports[i], router));
        }
        // Every edge knows router 0 only.
        for i in 1..=3 {
            let edge = cluster.edge(i);
            cluster.edges.push(Some(edge));
        }
        cluster
    }

    fn router(&self, port: u16, peers: &[u16]) -> Server {
        let config = self.dir.path().join(format!("router-{port}.toml"));
        std::fs::write(&config, "discovery_interval_ms = 300\nhold_down_ms = 1000\n").expect("config");
        let mut args = vec![
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--config".to_owned(),
            config.to_str().expect("utf-8").to_owned(),
            "--origin".to_owned(),
            self.origin.url(""),
            "--fleet-token".to_owned(),
            TOKEN.to_owned(),
            "--no-edge".to_owned(),
            "unavailable".to_owned(),
        ];
        for peer in peers {
            args.extend(["--peer".to_owned(), format!("http://127.0.0.1:{peer}")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let path = common::bin_path("router", "hlscdn-router");
        Server::start(path.to_str().expect("utf-8"), &args, &[])
    }

    fn edge(&self, i: usize) -> Server {
        let id = format!("edge-{i}");
        let router = self.routers[0].1.url("");
        let origin = self.origin.url("");
        Server::binary(
            "edge-agent",
            "hlscdn-edge",
            &[
                "--id",
                &id,
                "--origin",
                &origin,
                "--router",
                &router,
                "--fleet-token",
                TOKEN,
                "--heartbeat-interval-ms",
                "1000",
                "--ad-ttl-ms",
                "3000",
                "--drain-quiet-ms",
                "3000",
            ],
            &[],
        )
    }

    fn edge_id_of(&self, url: &str) -> Option<String> {
        self.edges.iter().enumerate().find_map(|(i, e)| {
            e.as_ref()
                .filter(|e| url.starts_with(&e.url("/")))
                .map(|_| format!("edge-{}", i + 1))
        })
    }
}

/// A player: master → first variant → segments, following URLs as given.
struct Viewer {
    media_url: url::Url,
    fetched: std::collections::BTreeSet<String>,
    failures: usize,
}

impl Viewer {
    async fn join(router: &Server, stream: &str) -> Viewer {
        let master_url = url::Url::parse(&router.url(&format!("/{stream}/master.m3u8"))).expect("url");
        let body = client()
            .get(master_url.as_str())
            .send()
            .await
            .expect("master")
            .bytes()
            .await
            .expect("body");
        let master = m3u8_rs::parse_master_playlist_res(&body).expect("master");
        let media_url = master_url.join(&master.variants[0].uri).expect("join");
        Viewer {
            media_url,
            fetched: Default::default(),
            failures: 0,
        }
    }

    /// Reloads the media playlist (from `router`) and fetches new segments;
    /// returns the segment URLs of this reload.
    async fn reload(&mut self, router: &Server) -> Vec<String> {
        let mut url = self.media_url.clone();
        url.set_port(Some(router.addr.port())).expect("port");
        let r = client().get(url.as_str()).send().await.expect("media");
        assert_eq!(r.status(), 200, "media playlist");
        let body = r.bytes().await.expect("body");
        let media = m3u8_rs::parse_media_playlist_res(&body).expect("media");
        let uris: Vec<String> = media.segments.iter().map(|s| s.uri.clone()).collect();
        for uri in uris.iter().rev().take(2) {
            let path = url::Url::parse(uri)
                .map(|u| u.path().to_owned())
                .unwrap_or_default();
            if self.fetched.insert(path) {
                let ok = client().get(uri).send().await.is_ok_and(|r| r.status() == 200);
                if !ok {
                    self.failures += 1;
                }
            }
        }
        uris
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_are_learned_everywhere_and_a_killed_edge_is_dropped_at_once() {
    let mut cluster = Cluster::start(3);
    for (_, router) in &cluster.routers {
        eventually(
            Duration::from_secs(10),
            "every router knows the three edges",
            || async { edges(router).await.edges.iter().filter(|e| e.fresh).count() == 3 },
        )
        .await;
    }

    let mut viewer = Viewer::join(&cluster.routers[0].1, "live/demo-1").await;
    let uris = viewer.reload(&cluster.routers[0].1).await;
    let victim = cluster.edge_id_of(&uris[0]).expect("segments on an edge");
    let index: usize = victim.trim_start_matches("edge-").parse::<usize>().expect("n") - 1;

    // kill -9: the kernel closes the edge's links, so every router stops
    // choosing it within a second (not after its 3 s TTL).
    let killed_at = Instant::now();
    if let Some(edge) = cluster.edges[index].take() {
        edge.signal("KILL");
    }
    for (_, router) in &cluster.routers {
        eventually(TTL + Duration::from_secs(1), "edge seen stale", || async {
            edges(router)
                .await
                .edges
                .iter()
                .any(|e| e.id == victim && !e.fresh)
        })
        .await;
    }
    let detected = killed_at.elapsed();
    eprintln!("detection: every router dropped the killed edge {detected:?} after kill -9");
    assert!(detected <= Duration::from_secs(1), "{detected:?}");

    // The viewer whose session named it moves at its next reload, on any router.
    for (_, router) in &cluster.routers {
        let uris = viewer.reload(router).await;
        assert!(
            uris.iter()
                .all(|u| cluster.edge_id_of(u).is_some_and(|e| e != victim)),
            "moved: {uris:?}"
        );
    }
    // No choice names it afterwards.
    for stream in ["live/demo-1", "live/demo-2", "live/demo-3", "vod/demo"] {
        for (_, router) in &cluster.routers {
            let mut fresh_viewer = Viewer::join(router, stream).await;
            let uris = fresh_viewer.reload(router).await;
            // The killed edge's URL no longer maps to a live edge, so this
            // holds only if every segment is on one of the other two.
            assert!(uris.iter().all(|u| cluster.edge_id_of(u).is_some()), "{uris:?}");
            assert_eq!(fresh_viewer.failures, 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_edge_is_seen_within_a_second_and_its_viewers_never_fail() {
    let mut cluster = Cluster::start(2);
    for (_, router) in &cluster.routers {
        eventually(Duration::from_secs(10), "three fresh edges", || async {
            edges(router).await.edges.iter().filter(|e| e.fresh).count() == 3
        })
        .await;
    }
    let router = &cluster.routers[1].1;
    let mut viewer = Viewer::join(router, "live/demo-2").await;
    let uris = viewer.reload(router).await;
    let victim = cluster.edge_id_of(&uris[0]).expect("on an edge");
    let index: usize = victim.trim_start_matches("edge-").parse::<usize>().expect("n") - 1;

    let termed_at = Instant::now();
    if let Some(edge) = &cluster.edges[index] {
        edge.signal("TERM");
    }
    for (_, router) in &cluster.routers {
        eventually(Duration::from_secs(1), "draining seen", || async {
            edges(router)
                .await
                .edges
                .iter()
                .any(|e| e.id == victim && e.state == router_api::fleet::EdgeState::Draining)
        })
        .await;
    }
    eprintln!(
        "drain: every router saw the draining edge {:?} after SIGTERM",
        termed_at.elapsed()
    );

    // The viewer keeps following its playlists for a few seconds: it moves,
    // and no segment fetch fails (the draining edge still serves meanwhile).
    let mut moved = false;
    while termed_at.elapsed() < Duration::from_secs(4) {
        let uris = viewer.reload(router).await;
        moved |= uris
            .iter()
            .all(|u| cluster.edge_id_of(u).is_some_and(|e| e != victim));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(moved, "the viewer left the draining edge");
    assert_eq!(viewer.failures, 0, "no failed segment fetch during the drain");

    // The drained edge exits by itself after its quiet period.
    if let Some(mut edge) = cluster.edges[index].take() {
        assert!(
            edge.wait_exit(Duration::from_secs(10)).is_some(),
            "drained edge exits"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_edge_is_dropped_after_its_ttl_and_comes_back_held_down() {
    let cluster = Cluster::start(2);
    for (_, router) in &cluster.routers {
        eventually(Duration::from_secs(10), "three fresh edges", || async {
            edges(router).await.edges.iter().filter(|e| e.fresh).count() == 3
        })
        .await;
    }
    // SIGSTOP: the process keeps its sockets open (as a hung host or a
    // silent network would), so the links say nothing; the TTL decides.
    let Some(frozen) = &cluster.edges[0] else {
        panic!("edge-1 runs");
    };
    frozen.signal("STOP");
    let stopped_at = Instant::now();
    for (_, router) in &cluster.routers {
        eventually(TTL + Duration::from_secs(1), "frozen edge stale", || async {
            edge_state(router, "edge-1")
                .await
                .is_some_and(|(fresh, _)| !fresh)
        })
        .await;
    }
    let detected = stopped_at.elapsed();
    eprintln!("frozen edge dropped by every router {detected:?} after SIGSTOP (TTL {TTL:?})");
    assert!(detected >= TTL - Duration::from_millis(1100), "{detected:?}");

    // Taken before the signal: the edge may send its first ad before
    // `kill` returns.
    let resumed_at = Instant::now();
    frozen.signal("CONT");
    for (_, router) in &cluster.routers {
        eventually(Duration::from_secs(3), "fresh again", || async {
            edge_state(router, "edge-1").await.is_some_and(|(fresh, _)| fresh)
        })
        .await;
    }
    eventually(Duration::from_secs(4), "eligible after the hold-down", || async {
        edge_state(&cluster.routers[0].1, "edge-1").await == Some((true, true))
    })
    .await;
    // The hold-down (hold_down_ms = 1000 in these routers' config) starts
    // with the first ad after SIGCONT, so eligibility cannot come sooner.
    let eligible_after = resumed_at.elapsed();
    eprintln!("eligible again {eligible_after:?} after SIGCONT");
    assert!(
        eligible_after >= Duration::from_millis(1000),
        "a comeback is held down: {eligible_after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routers_agree_and_a_restarted_router_is_ready_only_with_the_view() {
    let mut cluster = Cluster::start(2);
    for (_, router) in &cluster.routers {
        eventually(Duration::from_secs(10), "three fresh edges", || async {
            edges(router).await.edges.iter().filter(|e| e.fresh).count() == 3
        })
        .await;
    }
    // Viewers placed by router 0 get the same edges from router 1 (sessions).
    let mut viewers = Vec::new();
    for stream in ["live/demo-1", "live/demo-2", "live/demo-3", "vod/demo"] {
        let mut viewer = Viewer::join(&cluster.routers[0].1, stream).await;
        let on_a = viewer.reload(&cluster.routers[0].1).await;
        let on_b = viewer.reload(&cluster.routers[1].1).await;
        assert_eq!(
            cluster.edge_id_of(&on_a[0]),
            cluster.edge_id_of(&on_b[0]),
            "{stream}"
        );
        viewers.push((viewer, cluster.edge_id_of(&on_a[0])));
    }

    // Router 0 dies: router 1 keeps every viewer where it was.
    let (port, router0) = cluster.routers.remove(0);
    router0.signal("KILL");
    for (viewer, edge) in &mut viewers {
        let uris = viewer.reload(&cluster.routers[0].1).await;
        assert_eq!(&cluster.edge_id_of(&uris[0]), edge);
    }

    // Restarted, it is ready only once it has the fleet view, then agrees.
    let peer = cluster.routers[0].0;
    let restarted = cluster.router(port, &[peer]);
    eventually(Duration::from_secs(10), "restarted router ready", || async {
        client()
            .get(restarted.url("/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert_eq!(
        edges(&restarted).await.edges.iter().filter(|e| e.fresh).count(),
        3,
        "ready with the view"
    );
    for (viewer, edge) in &mut viewers {
        let uris = viewer.reload(&restarted).await;
        assert_eq!(&cluster.edge_id_of(&uris[0]), edge);
        assert_eq!(viewer.failures, 0);
    }

    // The edges linked themselves to the restarted router again: a killed
    // edge is seen at once there too.
    eventually(Duration::from_secs(5), "every edge linked again", || async {
        common::metric(&restarted, "hlscdn_router_edge_links").await == 3.0
    })
    .await;
    if let Some(edge) = cluster.edges[2].take() {
        edge.signal("KILL");
    }
    let killed_at = Instant::now();
    eventually(Duration::from_secs(1), "killed edge stale", || async {
        edge_state(&restarted, "edge-3")
            .await
            .is_some_and(|(fresh, _)| !fresh)
    })
    .await;
    eprintln!(
        "restarted router saw a killed edge {:?} after kill -9",
        killed_at.elapsed()
    );
}
