//! The whole chain, with real processes on loopback: an `hlscdn-origin`
//! publishing the demo streams, three `hlscdn-edge`s heartbeating, and
//! `hlscdn-router`s sharing what they hear. Edges are seeded with one router
//! only; the others learn them by forwarding and discovery. Measured: how long
//! a killed edge keeps getting chosen, how soon a draining edge is seen, and
//! whether a viewer following its playlists meanwhile ever fails a segment.

use test_kit as common;
mod support;

use std::time::{Duration, Instant};

use common::{Port, Server, client, eventually};
use support::{Viewer, edge_state, edges};

const TOKEN: &str = "fleet-token-for-tests-0123";
const TTL: Duration = Duration::from_millis(3000);

struct Cluster {
    dir: tempfile::TempDir,
    origin: Server,
    routers: Vec<(Port, Server)>,
    /// Edge `i` serves on `edge_ports[i - 1]`, also after a restart.
    edge_ports: Vec<Port>,
    edges: Vec<Option<Server>>,
    /// Extra flags of every router.
    router_args: Vec<String>,
}

impl Cluster {
    fn start(router_count: usize) -> Cluster {
        Cluster::start_with(router_count, &[])
    }

    fn start_with(router_count: usize, router_args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = url::Url::from_directory_path(dir.path().join("store"))
            .expect("url")
            .to_string();
        let origin = Server::origin(&["--store", &store, "--publish-demo"], &[]);
        let ports: Vec<Port> = (0..router_count).map(|_| Port::reserve()).collect();
        let mut cluster = Cluster {
            dir,
            origin,
            routers: Vec::new(),
            edge_ports: (0..3).map(|_| Port::reserve()).collect(),
            edges: Vec::new(),
            router_args: router_args.iter().map(|a| (*a).to_owned()).collect(),
        };
        let routers: Vec<Server> = ports
            .iter()
            .map(|port| {
                let peers: Vec<&Port> = ports.iter().filter(|p| p.addr() != port.addr()).collect();
                cluster.router(port, &peers)
            })
            .collect();
        cluster.routers = ports.into_iter().zip(routers).collect();
        // Every edge knows router 0 only.
        for i in 1..=3 {
            let edge = cluster.edge(i);
            cluster.edges.push(Some(edge));
        }
        cluster
    }

    fn router(&self, port: &Port, peers: &[&Port]) -> Server {
        let config = self
            .dir
            .path()
            .join(format!("router-{}.toml", port.addr().port()));
        std::fs::write(&config, "discovery_interval = \"300ms\"\nhold_down = \"1s\"\n").expect("config");
        let mut args = vec![
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
            args.extend(["--peer".to_owned(), peer.url()]);
        }
        args.extend(self.router_args.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let path = common::bin_path("router", "hlscdn-router");
        Server::start_on(port, path.to_str().expect("utf-8"), &args, &[])
    }

    /// Waits until every router sees the three edges fresh.
    async fn wait_fresh(&self) {
        for (_, router) in &self.routers {
            eventually(Duration::from_secs(10), "three fresh edges", || async {
                edges(router).await.edges.iter().filter(|e| e.fresh).count() == 3
            })
            .await;
        }
    }

    /// Edge `i` (from 1), on its port (a restart keeps its address).
    fn edge(&self, i: usize) -> Server {
        let id = format!("edge-{i}");
        let router = self.routers[0].1.url("");
        let origin = self.origin.url("");
        let path = common::bin_path("edge-agent", "hlscdn-edge");
        Server::start_on(
            &self.edge_ports[i - 1],
            path.to_str().expect("utf-8"),
            &[
                "--id",
                &id,
                "--origin",
                &origin,
                "--router",
                &router,
                "--fleet-token",
                TOKEN,
                "--heartbeat-interval",
                "1s",
                "--ad-ttl",
                "3s",
                "--drain-quiet",
                "3s",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_are_learned_everywhere_and_a_killed_edge_is_dropped_at_once() {
    let mut cluster = Cluster::start(3);
    // Edges know router 0 only: the others learn them by forwarding.
    cluster.wait_fresh().await;

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

    // The viewer's pathway keeps naming the killed edge on every router (a
    // listed segment keeps its URI); every router's steering manifest
    // drops it, and the viewer following it plays from another edge.
    for (_, router) in &cluster.routers {
        let uris = viewer.reload(router).await;
        assert!(
            uris.iter().all(|u| cluster.edge_id_of(u).is_none()),
            "the killed edge's pathway still names it: {uris:?}"
        );
    }
    for (_, router) in &cluster.routers {
        let manifest = viewer.steer(router).await;
        let priority = manifest["PATHWAY-PRIORITY"].to_string();
        assert!(!priority.contains(&format!("\"{victim}\"")), "{manifest}");
        let uris = viewer.reload(router).await;
        assert!(
            uris.iter()
                .all(|u| cluster.edge_id_of(u).is_some_and(|e| e != victim)),
            "moved: {uris:?}"
        );
    }
    assert_eq!(viewer.switches, 1, "one move for one crash");
    assert_eq!(viewer.uri_changes, 0, "no listed segment changed its URI");
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
    cluster.wait_fresh().await;
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

    // The viewer keeps following its playlists and its steering manifest
    // for a few seconds: it moves, no listed segment changes its URI, and
    // no segment fetch fails (the draining edge still serves what it listed).
    let mut moved = false;
    while termed_at.elapsed() < Duration::from_secs(4) {
        viewer.reload(router).await;
        viewer.steer(router).await;
        let uris = viewer.reload(router).await;
        moved |= uris
            .iter()
            .all(|u| cluster.edge_id_of(u).is_some_and(|e| e != victim));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(moved, "the viewer left the draining edge");
    assert_eq!(viewer.failures, 0, "no failed segment fetch during the drain");
    assert_eq!(viewer.uri_changes, 0, "no listed segment changed its URI");

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
    cluster.wait_fresh().await;
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
    // The hold-down (hold_down = "1s" in these routers' config) starts
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
    cluster.wait_fresh().await;
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
    let restarted = cluster.router(&port, &[&cluster.routers[0].0]);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_segments_keep_their_uris_through_a_kill_and_a_drain_and_viewers_move_once() {
    let mut cluster = Cluster::start_with(2, &["--steering-ttl", "1s"]);
    cluster.wait_fresh().await;
    let router = &cluster.routers[0].1;
    // Two viewers of one stream: one polls its media playlist only (a
    // player without steering), one follows its steering manifest too.
    let mut polling = Viewer::join(router, "live/demo-1").await;
    let mut steered = Viewer::join(router, "live/demo-1").await;
    assert_eq!(
        polling.pathways.len(),
        3,
        "three pathways: {:?}",
        polling.pathways.keys()
    );
    let uris = polling.reload(router).await;
    let victim = cluster.edge_id_of(&uris[0]).expect("on an edge");
    assert_eq!(victim, polling.current, "pathway 0 names the viewer's edge");
    let victim_index: usize = victim.trim_start_matches("edge-").parse::<usize>().expect("n") - 1;
    steered.reload(router).await;

    let started = Instant::now();
    let mut killed = false;
    let mut drained: Option<String> = None;
    let mut restarted = false;
    let mut manifests = std::collections::BTreeSet::new();
    while started.elapsed() < Duration::from_secs(12) {
        let t = started.elapsed();
        if !killed && t >= Duration::from_secs(2) {
            if let Some(edge) = cluster.edges[victim_index].take() {
                edge.signal("KILL");
            }
            killed = true;
        }
        // The edge the steered viewer moved to drains: it moves again.
        if drained.is_none() && t >= Duration::from_secs(4) {
            let id = steered.current.clone();
            let index: usize = id.trim_start_matches("edge-").parse::<usize>().expect("n") - 1;
            if let Some(edge) = &cluster.edges[index] {
                edge.signal("TERM");
            }
            drained = Some(id);
        }
        if !restarted && t >= Duration::from_secs(6) {
            // The killed edge comes back (same id and URL, a new instance).
            cluster.edges[victim_index] = Some(cluster.edge(victim_index + 1));
            restarted = true;
        }
        polling.reload(router).await;
        steered.reload(router).await;
        manifests.insert(steered.steer(router).await["PATHWAY-PRIORITY"].to_string());
        steered.reload(router).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!(
        "polling viewer: {} URIs listed, {} changed, {} failed fetches; steered viewer: {} switches \
         (now on {}), {} failed fetches, manifests seen: {manifests:?}",
        polling.listed.len(),
        polling.uri_changes,
        polling.failures,
        steered.switches,
        steered.current,
        steered.failures
    );
    assert_eq!(polling.uri_changes, 0, "no listed segment changed host or path");
    assert_eq!(steered.uri_changes, 0, "no listed segment changed host or path");
    assert!(
        polling
            .reload(router)
            .await
            .iter()
            .all(|u| cluster.edge_id_of(u).is_some()),
        "the restarted edge serves the pathway that names it"
    );
    // One move for the crash, one for the drain, none back to the
    // restarted edge.
    assert_eq!(steered.switches, 2, "one move per crash and per drain, none back");
    assert_ne!(steered.current, victim);
    assert_ne!(Some(&steered.current), drained.as_ref());
    assert!(
        manifests.len() >= 2,
        "the steering manifest changed: {manifests:?}"
    );
    assert!(
        steered.failures <= 2,
        "at most the segments listed before the kill fail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pathways_are_cloned_onto_other_edges_when_offered_ones_die() {
    let mut cluster = Cluster::start_with(1, &["--pathways", "2"]);
    let router = &cluster.routers[0].1;
    cluster.wait_fresh().await;
    let mut viewer = Viewer::join(router, "live/demo-2").await;
    let offered: Vec<String> = viewer.pathways.keys().cloned().collect();
    assert_eq!(offered.len(), 2, "{offered:?}");
    let manifest = viewer.steer(router).await;
    assert_eq!(manifest["PATHWAY-CLONES"], serde_json::json!([]), "{manifest}");
    assert_eq!(manifest["VERSION"], 1);
    let reload = manifest["RELOAD-URI"].as_str().unwrap_or_default();
    assert!(
        reload.starts_with(&router.url("/steer/live/demo-2?s=")),
        "an absolute RELOAD-URI: {manifest}"
    );

    let victim = viewer.current.clone();
    let index: usize = victim.trim_start_matches("edge-").parse::<usize>().expect("n") - 1;
    if let Some(edge) = cluster.edges[index].take() {
        edge.signal("KILL");
    }
    eventually(Duration::from_secs(2), "killed edge stale", || async {
        edge_state(router, &victim).await.is_some_and(|(fresh, _)| !fresh)
    })
    .await;
    let manifest = viewer.steer(router).await;
    let clones = manifest["PATHWAY-CLONES"].as_array().cloned().unwrap_or_default();
    assert_eq!(clones.len(), 1, "{manifest}");
    let clone_id = clones[0]["ID"].as_str().expect("ID").to_owned();
    assert!(
        !offered.contains(&clone_id),
        "a clone is a third edge: {manifest}"
    );
    let survivor = offered
        .iter()
        .find(|id| **id != victim)
        .expect("the other pathway");
    assert_eq!(
        clones[0]["BASE-ID"].as_str(),
        Some(survivor.as_str()),
        "{manifest}"
    );
    assert_eq!(
        manifest["PATHWAY-PRIORITY"],
        serde_json::json!([survivor, clone_id]),
        "{manifest}"
    );
    // The explain answer shows the same plan, and why.
    let ticket = viewer
        .steering
        .as_ref()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "s")
                .map(|(_, v)| v.into_owned())
        })
        .expect("a ticket");
    let mut explain = url::Url::parse(&router.url("/api/v1/explain")).expect("url");
    explain
        .query_pairs_mut()
        .append_pair("path", "/live/demo-2/master.m3u8")
        .append_pair("ticket", &ticket)
        .append_pair("pathway", &victim);
    let explained: serde_json::Value = client()
        .get(explain.as_str())
        .send()
        .await
        .expect("explain")
        .json()
        .await
        .expect("json");
    let steering = &explained["steering"];
    assert_eq!(steering["priority"], manifest["PATHWAY-PRIORITY"], "{explained}");
    assert_eq!(steering["moved"], "dead", "{explained}");
    assert!(
        steering["pathways"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["pathway"] == victim.as_str() && p["unavailable"] == "dead"),
        "{explained}"
    );

    // The clone's playlists name its edge; the same ticket gives the same clone.
    viewer.current = clone_id.clone();
    let uris = viewer.reload(router).await;
    assert!(
        uris.iter()
            .all(|u| cluster.edge_id_of(u).as_deref() == Some(clone_id.as_str())),
        "{uris:?}"
    );
    assert_eq!(viewer.failures, 0);
    let again = viewer.steer(router).await;
    assert_eq!(again["PATHWAY-CLONES"], manifest["PATHWAY-CLONES"]);
    assert_eq!(
        again["PATHWAY-PRIORITY"][0].as_str(),
        Some(clone_id.as_str()),
        "the viewer stays"
    );

    // Forged or missing tickets are refused.
    let steering = viewer.steering.clone().expect("steering");
    for query in ["", "s=AAAA", "s=%ff"] {
        let mut url = steering.clone();
        url.set_query(Some(query));
        let status = client()
            .get(url.as_str())
            .send()
            .await
            .expect("steering")
            .status();
        assert_eq!(status, 400, "{query}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_mode_lists_router_urls_that_follow_the_fleet() {
    let mut cluster = Cluster::start_with(1, &["--segment-urls", "redirect"]);
    let router = &cluster.routers[0].1;
    cluster.wait_fresh().await;
    let mut viewer = Viewer::join(router, "live/demo-3").await;
    assert!(viewer.steering.is_none(), "no steering in redirect mode");
    assert_eq!(viewer.pathways.len(), 1);
    let media = common::text(viewer.media_url().as_str()).await;
    let first: Vec<&str> = media.lines().filter(|l| l.starts_with("/r/")).collect();
    assert!(!first.is_empty(), "{media}");
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let segment = router.url(first[first.len() - 1]);
    let location = |r: reqwest::Response| {
        assert_eq!(r.status(), 302);
        r.headers()[reqwest::header::LOCATION]
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    let before = location(no_redirects.get(&segment).send().await.expect("302"));
    let victim = cluster.edge_id_of(&before).expect("redirected to an edge");
    let index: usize = victim.trim_start_matches("edge-").parse::<usize>().expect("n") - 1;
    if let Some(edge) = cluster.edges[index].take() {
        edge.signal("KILL");
    }
    eventually(Duration::from_secs(2), "killed edge stale", || async {
        edge_state(router, &victim).await.is_some_and(|(fresh, _)| !fresh)
    })
    .await;
    // The same listed URI now leads to a live edge, and plays.
    let after = location(no_redirects.get(&segment).send().await.expect("302"));
    let edge = cluster.edge_id_of(&after).expect("redirected to a live edge");
    assert_ne!(edge, victim);
    let r = client().get(&segment).send().await.expect("segment");
    assert_eq!(r.status(), 200);
    viewer.reload(router).await;
    viewer.reload(router).await;
    assert_eq!(viewer.uri_changes, 0);
}
