//! Fault injection against a real cluster on loopback: an `hlscdn-origin`
//! publishing the demo streams (2 s segments, a 6-segment live window),
//! `hlscdn-router`s and three `hlscdn-edge`s, with simulated players from
//! `loadtest::driver::run` running while a test breaks something: a
//! router ↔ edge partition, an origin outage, `kill -9` of an edge, `kill -9`
//! of one of two routers, a rolling restart of every edge, an origin that
//! never answers. The players check every media playlist against the stream
//! invariants (`loadtest::invariants`) and probe every segment URL. Each test
//! prints its figures (`-- --nocapture`); `docs/RELIABILITY.md` ("Faults")
//! lists them.

#[path = "../../origin-store/tests/common/mod.rs"]
mod common;
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Server, client, eventually, free_port};
use loadtest::driver::{PlayersConfig, Streams};
use loadtest::invariants::Kind;
use loadtest::report::PlayersReport;
use router_api::fleet::EdgesView;
use support::proxy::FaultProxy;
use url::Url;

const TOKEN: &str = "fleet-token-for-faults-0123";
const TTL: Duration = Duration::from_millis(3000);
const HOLD_DOWN: Duration = Duration::from_millis(1500);
const LIVE: [&str; 3] = ["live/demo-1", "live/demo-2", "live/demo-3"];

/// How a cluster is wired.
#[derive(Default)]
struct Wiring {
    routers: usize,
    /// This edge (0-based) reaches every router through a proxy.
    partitioned_edge: Option<usize>,
    /// Routers and edges reach the origin through a proxy.
    origin_proxy: bool,
}

struct Cluster {
    dir: tempfile::TempDir,
    origin: Server,
    origin_proxy: Option<FaultProxy>,
    routers: Vec<Server>,
    router_proxies: Vec<FaultProxy>,
    partitioned_edge: Option<usize>,
    edge_ports: Vec<u16>,
    edges: Vec<Option<Server>>,
}

impl Cluster {
    /// Starts the cluster and waits until every router sees three fresh,
    /// eligible edges.
    async fn start(wiring: Wiring) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Url::from_directory_path(dir.path().join("store"))
            .expect("url")
            .to_string();
        let origin = Server::origin(&["--store", &store, "--publish-demo"], &[]);
        let origin_proxy = if wiring.origin_proxy {
            Some(FaultProxy::start(origin.addr).await)
        } else {
            None
        };
        let config = dir.path().join("router.toml");
        std::fs::write(
            &config,
            format!(
                "discovery_interval_ms = 300\nhold_down_ms = {}\n",
                HOLD_DOWN.as_millis()
            ),
        )
        .expect("config");
        let origin_url = match &origin_proxy {
            Some(p) => format!("http://{}", p.addr),
            None => origin.url(""),
        };
        let ports: Vec<u16> = (0..wiring.routers.max(1)).map(|_| free_port()).collect();
        // With a partition, every router is known by its proxy only (its
        // public URL and its peers' seeds), so that the partitioned edge
        // cannot learn a direct address; the other edges are seeded with every
        // router directly.
        let mut router_proxies = Vec::new();
        if wiring.partitioned_edge.is_some() {
            for &port in &ports {
                router_proxies.push(FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], port))).await);
            }
        }
        let reach = |i: usize| match router_proxies.get(i) {
            Some(p) => format!("http://{}", p.addr),
            None => format!("http://127.0.0.1:{}", ports[i]),
        };
        let mut routers = Vec::new();
        for (i, &port) in ports.iter().enumerate() {
            let mut args = vec![
                "--listen".to_owned(),
                format!("127.0.0.1:{port}"),
                "--config".to_owned(),
                config.to_str().expect("utf-8").to_owned(),
                "--origin".to_owned(),
                origin_url.clone(),
                "--fleet-token".to_owned(),
                TOKEN.to_owned(),
                "--no-edge".to_owned(),
                "unavailable".to_owned(),
                "--public-url".to_owned(),
                reach(i),
            ];
            for peer in (0..ports.len()).filter(|&p| p != i) {
                args.extend(["--peer".to_owned(), reach(peer)]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let path = common::bin_path("router", "hlscdn-router");
            routers.push(Server::start(path.to_str().expect("utf-8"), &args, &[]));
        }
        let mut cluster = Cluster {
            dir,
            origin,
            origin_proxy,
            routers,
            router_proxies,
            partitioned_edge: wiring.partitioned_edge,
            edge_ports: (0..3).map(|_| free_port()).collect(),
            edges: Vec::new(),
        };
        for i in 0..3 {
            let edge = cluster.edge(i);
            cluster.edges.push(Some(edge));
        }
        cluster.ready().await;
        cluster
    }

    fn origin_url(&self) -> String {
        match &self.origin_proxy {
            Some(p) => format!("http://{}", p.addr),
            None => self.origin.url(""),
        }
    }

    /// Starts edge `i` (id `edge-{i+1}`) on its fixed port.
    fn edge(&self, i: usize) -> Server {
        let partitioned = self.partitioned_edge == Some(i);
        let config = self.dir.path().join(format!("edge-{}.toml", i + 1));
        std::fs::write(&config, "discovery_interval_ms = 300\n").expect("config");
        let routers: Vec<String> = if partitioned {
            self.router_proxies
                .iter()
                .map(|p| format!("http://{}", p.addr))
                .collect()
        } else {
            self.routers.iter().map(|r| r.url("")).collect()
        };
        let mut args = vec![
            "--listen".to_owned(),
            format!("127.0.0.1:{}", self.edge_ports[i]),
            "--config".to_owned(),
            config.to_str().expect("utf-8").to_owned(),
            "--id".to_owned(),
            format!("edge-{}", i + 1),
            "--origin".to_owned(),
            self.origin_url(),
            "--fleet-token".to_owned(),
            TOKEN.to_owned(),
            "--heartbeat-interval-ms".to_owned(),
            "1000".to_owned(),
            "--ad-ttl-ms".to_owned(),
            TTL.as_millis().to_string(),
            "--drain-quiet-ms".to_owned(),
            "1500".to_owned(),
        ];
        for r in routers {
            args.extend(["--router".to_owned(), r]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let path = common::bin_path("edge-agent", "hlscdn-edge");
        Server::start(path.to_str().expect("utf-8"), &args, &[])
    }

    fn edge_host(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.edge_ports[i])
    }

    async fn ready(&self) {
        for router in &self.routers {
            eventually(
                Duration::from_secs(15),
                "every router sees three fresh eligible edges",
                || async {
                    edges(router)
                        .await
                        .is_some_and(|v| v.edges.iter().filter(|e| e.fresh && e.eligible).count() == 3)
                },
            )
            .await;
        }
    }

    fn players(&self, viewers: usize, duration: Duration) -> PlayersConfig {
        let routers = self
            .routers
            .iter()
            .map(|r| Url::parse(&r.url("/")).expect("url"))
            .collect();
        let mut config = PlayersConfig::new(routers, viewers, duration);
        config.arrival_rate = 8.0;
        config.streams = Streams::List(LIVE.iter().map(|s| (*s).to_owned()).collect());
        config.player.start_segments = 2;
        config.timeout = Duration::from_secs(5);
        config.probe_segments = true;
        config
    }
}

/// One scenario at a time: each runs a whole cluster and its players, and
/// their figures (stalls, detection times) mean something only on a machine
/// that is not also running the other scenarios.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn edges(router: &Server) -> Option<EdgesView> {
    client()
        .get(router.url("/api/v1/edges"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

fn spawn_players(config: PlayersConfig) -> tokio::task::JoinHandle<PlayersReport> {
    tokio::spawn(async move { loadtest::driver::run(&config).await.expect("players run") })
}

/// Prints the figures of a run and returns (failed requests, stalls).
fn summary(name: &str, r: &PlayersReport) -> (u64, u64) {
    let s = &r.viewers.sessions;
    let failed: u64 = r.requests.values().map(|k| k.errors).sum();
    let requests: u64 = r.requests.values().map(|k| k.requests).sum();
    eprintln!(
        "{name}: viewers {} sessions {} segments {} stalls {} ({:.1} s) skipped {} gave_up {} | requests {requests} failed {failed} {:?}",
        r.viewers.arrived,
        s.sessions,
        s.segments,
        s.stalls,
        s.stall_secs,
        s.skipped_segments,
        s.gave_up,
        r.errors
    );
    for e in &r.edges {
        eprintln!(
            "{name}:   edge {} ({}) viewers {} at_end {} segments {} errors {}",
            e.edge,
            e.id.as_deref().unwrap_or("?"),
            e.viewers,
            e.viewers_at_end,
            e.segments,
            e.errors
        );
    }
    let m = &r.viewers.moves;
    let i = &r.invariants;
    eprintln!(
        "{name}: failovers {} ({} viewers), edge changes {} ({} viewers) | invariants: {} media playlists checked, {} of {} segment URLs probed, violations {} {:?}",
        m.failovers,
        m.viewers_failed_over,
        m.edge_changes,
        m.viewers_changed_edge,
        i.playlists_checked,
        i.uris_probed,
        i.uris_seen,
        i.violations_total,
        i.violations
    );
    for v in &i.first_violations {
        eprintln!("{name}:   violation {v}");
    }
    (failed, s.stalls)
}

/// Invariant violations of one kind in a run.
fn violations(r: &PlayersReport, kind: Kind) -> u64 {
    r.invariants.violations.get(kind.name()).copied().unwrap_or(0)
}

/// Every media playlist of the run was checked, and every segment URL probed.
fn assert_checked(r: &PlayersReport) {
    let i = &r.invariants;
    let media = r
        .requests
        .get("media playlist")
        .map_or(0, |k| k.requests - k.errors);
    assert_eq!(
        i.playlists_checked, media,
        "every media playlist received is checked"
    );
    assert!(i.uris_seen > 0, "segment URLs seen");
    assert_eq!(i.uris_probed, i.uris_seen, "every segment URL probed");
}

/// Every playlist checked, every segment URL probed, no invariant violated.
fn assert_invariants_kept(r: &PlayersReport) {
    assert_checked(r);
    assert_eq!(
        r.invariants.violations_total, 0,
        "{:?}",
        r.invariants.first_violations
    );
}

async fn status_of(url: &str) -> (u16, String) {
    match client().get(url).timeout(Duration::from_secs(5)).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// A live media playlist URL for `stream`, through `router` (a session URL).
async fn media_url(router: &Server, stream: &str) -> Url {
    let master_url = Url::parse(&router.url(&format!("/{stream}/master.m3u8"))).expect("url");
    let body = client()
        .get(master_url.as_str())
        .send()
        .await
        .expect("master")
        .bytes()
        .await
        .expect("body");
    let master = m3u8_rs::parse_master_playlist_res(&body).expect("master playlist");
    master_url.join(&master.variants[0].uri).expect("join")
}

/// Segment URLs of a media playlist body.
fn segment_urls(body: &str) -> Vec<String> {
    m3u8_rs::parse_media_playlist_res(body.as_bytes())
        .map(|m| m.segments.iter().map(|s| s.uri.clone()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_between_routers_and_one_edge() {
    let _serial = SERIAL.lock().await;
    let test_started = Instant::now();
    let cluster = Cluster::start(Wiring {
        routers: 2,
        partitioned_edge: Some(0),
        ..Wiring::default()
    })
    .await;

    // Every 100 ms, every router's view of edge-1: (elapsed, fresh, eligible).
    let started = Instant::now();
    let router_addrs: Vec<SocketAddr> = cluster.routers.iter().map(|r| r.addr).collect();
    let poller = tokio::spawn(async move {
        let mut seen: Vec<Vec<(Duration, bool, bool)>> = vec![Vec::new(); router_addrs.len()];
        while started.elapsed() < Duration::from_secs(22) {
            for (i, addr) in router_addrs.iter().enumerate() {
                let view: Option<EdgesView> = match client()
                    .get(format!("http://{addr}/api/v1/edges"))
                    .timeout(Duration::from_secs(1))
                    .send()
                    .await
                {
                    Ok(r) => r.json().await.ok(),
                    Err(_) => None,
                };
                if let Some(e) = view.and_then(|v| v.edges.into_iter().find(|e| e.id == "edge-1")) {
                    seen[i].push((started.elapsed(), e.fresh, e.eligible));
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen
    });

    let players = spawn_players(cluster.players(18, Duration::from_secs(22)));
    tokio::time::sleep(Duration::from_secs(6)).await;

    // Cut: the edge's ads no longer reach any router; players still reach it.
    let cut_at = Instant::now();
    for p in &cluster.router_proxies {
        p.cut();
    }
    for router in &cluster.routers {
        eventually(TTL + Duration::from_secs(2), "partitioned edge stale", || async {
            edges(router)
                .await
                .is_some_and(|v| v.edges.iter().any(|e| e.id == "edge-1" && !e.fresh))
        })
        .await;
    }
    let detected = cut_at.elapsed();

    tokio::time::sleep(Duration::from_secs(5).saturating_sub(cut_at.elapsed())).await;
    let healed_at = Instant::now();
    for p in &cluster.router_proxies {
        p.heal();
    }
    // Each router holds the edge down from the moment it sees it fresh again
    // (the routers need not see it at the same moment); within that, it
    // chooses it for nobody. Per router: (fresh again after the heal, its
    // choices of edge-1 then, and 1.1 s later).
    let hold_downs: Vec<(Duration, f64, f64)> =
        futures::future::join_all(cluster.routers.iter().map(|router| async move {
            eventually(Duration::from_secs(4), "healed edge fresh", || async {
                edges(router)
                    .await
                    .is_some_and(|v| v.edges.iter().any(|e| e.id == "edge-1" && e.fresh))
            })
            .await;
            let fresh_at = healed_at.elapsed();
            let choices = "hlscdn_router_choices_total{edge=\"edge-1\"}";
            let before = common::metric(router, choices).await;
            tokio::time::sleep(HOLD_DOWN.saturating_sub(Duration::from_millis(400))).await;
            (fresh_at, before, common::metric(router, choices).await)
        }))
        .await;
    let fresh_again = hold_downs.iter().map(|h| h.0).max().unwrap_or_default();
    for router in &cluster.routers {
        eventually(
            HOLD_DOWN + Duration::from_secs(1),
            "healed edge eligible",
            || async {
                edges(router)
                    .await
                    .is_some_and(|v| v.edges.iter().any(|e| e.id == "edge-1" && e.fresh && e.eligible))
            },
        )
        .await;
    }
    let eligible_again = healed_at.elapsed();

    let report = players.await.expect("players");
    let seen = poller.await.expect("poller");
    let (failed, stalls) = summary("partition", &report);
    eprintln!(
        "partition: stale on every router {detected:?} after the cut; fresh again {fresh_again:?} and eligible {eligible_again:?} after the heal; per router (fresh again, choices of edge-1 then → 1.1 s later, in its hold-down) {hold_downs:?}"
    );
    for (i, s) in seen.iter().enumerate() {
        let flips = |pick: fn(&(Duration, bool, bool)) -> bool| {
            s.windows(2)
                .filter(|w| pick(&w[0]) != pick(&w[1]))
                .map(|w| (w[1].0, pick(&w[1])))
                .collect::<Vec<_>>()
        };
        let fresh_flips = flips(|x| x.1);
        let eligible_flips = flips(|x| x.2);
        eprintln!("partition: router {i} fresh flips {fresh_flips:?}, eligible flips {eligible_flips:?}");
        assert_eq!(
            fresh_flips.iter().map(|f| f.1).collect::<Vec<_>>(),
            [false, true],
            "router {i}: fresh goes false once and true once"
        );
        assert_eq!(
            eligible_flips.iter().map(|f| f.1).collect::<Vec<_>>(),
            [false, true],
            "router {i}: eligible goes false once and true once"
        );
        let (fresh_at, eligible_at) = (fresh_flips[1].0, eligible_flips[1].0);
        assert!(
            eligible_at >= fresh_at + HOLD_DOWN - Duration::from_millis(250),
            "router {i}: eligible {eligible_at:?} before the hold-down after fresh {fresh_at:?}"
        );
    }
    assert!(
        detected <= TTL + Duration::from_secs(1),
        "detected after {detected:?}"
    );
    for (i, (_, before, during)) in hold_downs.iter().enumerate() {
        assert_eq!(during, before, "router {i}: no choice of a held-down edge");
    }
    // Viewers on edge-1, second by second (timeline of the run).
    let host = cluster.edge_host(0);
    let series: Vec<(f64, u64)> = report
        .timeline
        .edges
        .iter()
        .position(|e| *e == host)
        .map(|i| {
            report
                .timeline
                .secs
                .iter()
                .copied()
                .zip(report.timeline.viewers[i].iter().copied())
                .collect()
        })
        .unwrap_or_default();
    eprintln!("partition: viewers on edge-1 per second {series:?}");
    let peak = series.iter().map(|s| s.1).max().unwrap_or(0);
    assert!(peak > 0, "edge-1 carried viewers");
    assert!(
        series.iter().skip_while(|s| s.1 < peak).any(|s| s.1 == 0),
        "every viewer left edge-1 during the cut"
    );
    assert_eq!(stalls, 0, "no stall");
    assert_eq!(failed, 0, "no failed request");
    assert_eq!(report.viewers.sessions.gave_up, 0);
    assert_invariants_kept(&report);
    assert!(test_started.elapsed() < Duration::from_secs(45));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_unavailable_for_five_seconds() {
    let _serial = SERIAL.lock().await;
    let test_started = Instant::now();
    let cluster = Cluster::start(Wiring {
        routers: 1,
        origin_proxy: true,
        ..Wiring::default()
    })
    .await;
    let router = &cluster.routers[0];
    let players = spawn_players(cluster.players(15, Duration::from_secs(25)));

    // A probe viewer of its own: a session media URL and one cached segment.
    let probe = media_url(router, "live/demo-2").await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (status, body) = status_of(probe.as_str()).await;
    assert_eq!(status, 200, "{body}");
    let segment = segment_urls(&body).last().cloned().expect("a segment");
    assert_eq!(status_of(&segment).await.0, 200, "segment cached");

    let proxy = cluster.origin_proxy.as_ref().expect("origin proxy");
    let cut_at = Instant::now();
    proxy.cut();
    // Poll the media playlist every 100 ms during the outage.
    let mut statuses: Vec<(Duration, u16)> = Vec::new();
    let mut error_body = String::new();
    let mut cached_segment_ok = true;
    while cut_at.elapsed() < Duration::from_secs(5) {
        let (status, body) = status_of(probe.as_str()).await;
        if status != 200 && error_body.is_empty() {
            error_body = body;
        }
        statuses.push((cut_at.elapsed(), status));
        cached_segment_ok &= status_of(&segment).await.0 == 200;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.heal();
    let healed_at = Instant::now();
    let recovered = eventually(Duration::from_secs(5), "playlists again", || async {
        status_of(probe.as_str()).await.0 == 200
    })
    .await;
    let report = players.await.expect("players");
    let (failed, stalls) = summary("origin outage", &report);
    let last_200 = statuses.iter().filter(|s| s.1 == 200).map(|s| s.0).max();
    let first_error = statuses.iter().find(|s| s.1 != 200).copied();
    eprintln!(
        "origin outage: last bridged 200 at {last_200:?}, first error {first_error:?} ({}), recovered {recovered:?} after the heal; cached segment served throughout: {cached_segment_ok}; failed requests {failed}, stalls {stalls}; report {:.1} s after heal",
        error_body.trim(),
        healed_at.elapsed().as_secs_f64()
    );

    assert!(cached_segment_ok, "the edge served its cached segment throughout");
    // Bridged at most one target duration (2 s), plus the router's 1 s cache.
    assert!(
        last_200.is_none_or(|t| t <= Duration::from_millis(3200)),
        "bridged too long: {last_200:?}"
    );
    let (at, status) = first_error.expect("an error during the outage");
    assert_eq!(status, 502, "{error_body}");
    assert!(at <= Duration::from_millis(3500), "{at:?}");
    assert!(error_body.contains("origin"), "a clear error: {error_body}");
    assert!(statuses.iter().all(|s| s.1 == 200 || s.1 == 502), "{statuses:?}");
    assert!(recovered <= Duration::from_secs(3));
    assert_eq!(status_of(&router.url("/healthz")).await.0, 200);
    // Recovery: nobody gave up, everybody is playing at the end.
    assert_eq!(report.viewers.sessions.gave_up, 0);
    assert_eq!(
        report.timeline.stalled.last().copied().unwrap_or(0),
        0,
        "all playing at the end"
    );
    // Playlists keep their promises through the outage: the bridged ones
    // are no older than 3 target durations, and nothing goes backwards.
    assert_checked(&report);
    for kind in [Kind::Backwards, Kind::Discontinuity, Kind::TooOld] {
        assert_eq!(
            violations(&report, kind),
            0,
            "{}: {:?}",
            kind.name(),
            report.invariants.first_violations
        );
    }
    assert!(test_started.elapsed() < Duration::from_secs(45));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_an_edge_carrying_viewers() {
    let _serial = SERIAL.lock().await;
    let test_started = Instant::now();
    let mut cluster = Cluster::start(Wiring {
        routers: 1,
        ..Wiring::default()
    })
    .await;
    let players = spawn_players(cluster.players(18, Duration::from_secs(22)));
    tokio::time::sleep(Duration::from_secs(7)).await;

    // The edge the router chose most often.
    let mut victim = 0;
    let mut most = -1.0;
    for i in 0..3 {
        let n = common::metric(
            &cluster.routers[0],
            &format!("hlscdn_router_choices_total{{edge=\"edge-{}\"}}", i + 1),
        )
        .await;
        if n > most {
            (victim, most) = (i, n);
        }
    }
    let killed_at = Instant::now();
    if let Some(edge) = cluster.edges[victim].take() {
        edge.signal("KILL");
    }
    let detected = eventually(TTL + Duration::from_secs(2), "killed edge stale", || async {
        edges(&cluster.routers[0]).await.is_some_and(|v| {
            v.edges
                .iter()
                .any(|e| e.id == format!("edge-{}", victim + 1) && !e.fresh)
        })
    })
    .await;
    let report = players.await.expect("players");
    let (failed, stalls) = summary("kill -9", &report);
    let host = cluster.edge_host(victim);
    let killed = report
        .edges
        .iter()
        .find(|e| e.edge == host)
        .expect("victim had viewers");
    eprintln!(
        "kill -9: edge-{} killed at {:?} into the run, stale after {detected:?}; its viewers {}, failed segment fetches there {}, failed requests {failed}, stalls {stalls}",
        victim + 1,
        Duration::from_secs(7),
        killed.viewers,
        killed.errors
    );
    let _ = killed_at;
    let moves = report.viewers.moves;
    eprintln!(
        "kill -9: {} viewers failed a segment, at most {} each; {} edge changes",
        moves.viewers_failed_segment, moves.most_failed_segments, moves.edge_changes
    );
    assert!(killed.viewers > 0);
    assert_eq!(killed.viewers_at_end, 0, "every viewer left it");
    // The edge's links tell every router at once: a viewer can fail only the
    // segment it was fetching or was about to fetch from its last playlist.
    assert!(
        detected < Duration::from_secs(1),
        "seen through its links, not its TTL: {detected:?}"
    );
    assert!(
        moves.most_failed_segments <= 1,
        "at most one failed segment per viewer: {moves:?}"
    );
    assert!(moves.viewers_failed_segment <= killed.viewers);
    assert_eq!(stalls, 0, "no stall");
    assert_eq!(report.viewers.sessions.skipped_segments, 0);
    assert_eq!(report.viewers.sessions.gave_up, 0);
    // URLs on the killed edge handed out before the kill may fail their
    // probe; everything else holds.
    let i = &report.invariants;
    assert_checked(&report);
    let unfetchable = i.violations.get("unfetchable").copied().unwrap_or(0);
    assert!(
        i.violations_total == unfetchable && unfetchable <= killed.viewers,
        "{:?}",
        i.first_violations
    );
    assert!(test_started.elapsed() < Duration::from_secs(45));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_of_two_routers() {
    let _serial = SERIAL.lock().await;
    let test_started = Instant::now();
    // Two routers, peers of each other; every edge heartbeats to both.
    let mut cluster = Cluster::start(Wiring {
        routers: 2,
        ..Wiring::default()
    })
    .await;
    let viewers = 16;
    let players_started = Instant::now();
    let players = spawn_players(cluster.players(viewers, Duration::from_secs(25)));
    tokio::time::sleep(Duration::from_secs(7)).await;

    // Viewer i starts on router i mod 2: router A has the even ones.
    let killed_at = Instant::now();
    cluster.routers[0].signal("KILL");
    let exited = cluster.routers[0].wait_exit(Duration::from_secs(5));
    assert!(exited.is_some(), "router A died");
    let survivor = &cluster.routers[1];
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fresh_on_b = edges(survivor)
        .await
        .map_or(0, |v| v.edges.iter().filter(|e| e.fresh && e.eligible).count());

    let report = players.await.expect("players");
    let (failed, stalls) = summary("router kill", &report);
    let on_a = (0..report.viewers.arrived).filter(|i| i % 2 == 0).count() as u64;
    let m = &report.viewers.moves;
    let segments = &report.requests["segment"];
    eprintln!(
        "router kill: router A killed {:?} into the run; its viewers {on_a}; failovers {} ({} viewers); edge changes {}; failed segment fetches {}; failed requests {failed}; stalls {stalls}; fresh eligible edges on router B 3 s after the kill: {fresh_on_b}",
        killed_at.duration_since(players_started),
        m.failovers,
        m.viewers_failed_over,
        m.edge_changes,
        segments.errors
    );
    assert_eq!(report.viewers.arrived, viewers as u64);
    assert_eq!(fresh_on_b, 3, "router B still sees every edge");
    assert_eq!(stalls, 0, "no stall");
    assert_eq!(segments.errors, 0, "no failed segment fetch");
    assert_eq!(failed, 0, "no request failed for a player: {:?}", report.errors);
    assert_eq!(report.viewers.sessions.gave_up, 0);
    // Every viewer of router A, and only those, went on with router B.
    assert!(m.failovers > 0 && m.failovers >= on_a, "{m:?}");
    assert_eq!(m.viewers_failed_over, on_a, "{m:?}");
    // Sessions continued on their edges: the session token in the media
    // playlist URL told router B each viewer's edge.
    assert_eq!(m.edge_changes, 0, "no viewer changed edge: {m:?}");
    assert_invariants_kept(&report);
    assert!(test_started.elapsed() < Duration::from_secs(45));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_of_every_edge_with_drain() {
    let _serial = SERIAL.lock().await;
    let test_started = Instant::now();
    let mut cluster = Cluster::start(Wiring {
        routers: 1,
        ..Wiring::default()
    })
    .await;
    let players = spawn_players(cluster.players(15, Duration::from_secs(30)));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut steps = Vec::new();
    for i in 0..3 {
        let step = Instant::now();
        let mut edge = cluster.edges[i].take().expect("running");
        edge.signal("TERM");
        let status = edge.wait_exit(Duration::from_secs(10));
        let drained = step.elapsed();
        assert!(
            status.is_some_and(|s| s.success()),
            "edge-{} drained and exited: {status:?}",
            i + 1
        );
        drop(edge);
        cluster.edges[i] = Some(cluster.edge(i));
        let id = format!("edge-{}", i + 1);
        eventually(Duration::from_secs(5), "restarted edge fresh", || async {
            edges(&cluster.routers[0]).await.is_some_and(|v| {
                v.edges
                    .iter()
                    .any(|e| e.id == id && e.fresh && e.state == router_api::fleet::EdgeState::Ready)
            })
        })
        .await;
        steps.push((drained, step.elapsed()));
    }
    let report = players.await.expect("players");
    let (failed, stalls) = summary("rolling restart", &report);
    eprintln!("rolling restart: per edge (drained and exited, fresh again): {steps:?}");
    assert_eq!(failed, 0, "no failed request: {:?}", report.errors);
    assert_eq!(stalls, 0, "no stall");
    assert_eq!(report.viewers.sessions.skipped_segments, 0);
    assert_invariants_kept(&report);
    assert!(test_started.elapsed() < Duration::from_secs(45));
}

/// Threads and open file descriptors of a process.
fn threads_and_fds(pid: u32) -> (usize, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Threads");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("fd").count();
    (threads, fds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_origin_times_out_and_leaks_nothing() {
    let _serial = SERIAL.lock().await;
    // An origin that accepts, reads, and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("router.toml");
    std::fs::write(&config, "origin_timeout_ms = 500\n").expect("config");
    let origin = format!("http://{addr}");
    let router = Server::binary(
        "router",
        "hlscdn-router",
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--origin",
            &origin,
            "--fleet-token",
            TOKEN,
            "--no-edge",
            "unavailable",
        ],
        &[],
    );
    assert_eq!(status_of(&router.url("/healthz")).await.0, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = threads_and_fds(router.pid());

    let http = client();
    let started = Instant::now();
    let requests = (0..50).map(|i| {
        let url = router.url(&format!("/live/slow-{i}/master.m3u8"));
        let http = &http;
        async move {
            let sent = Instant::now();
            match http.get(url).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    (status, r.text().await.unwrap_or_default(), sent.elapsed())
                }
                Err(e) => (0, e.to_string(), sent.elapsed()),
            }
        }
    });
    let answers = futures::future::join_all(requests).await;
    let all = started.elapsed();
    let during = threads_and_fds(router.pid());
    let slowest = answers.iter().map(|a| a.2).max().unwrap_or_default();
    // The viewers leave: their keep-alive connections to the router close.
    drop(http);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = threads_and_fds(router.pid());
    eprintln!(
        "slow origin: 50 requests answered in {all:?} (slowest {slowest:?}), statuses {:?}; (threads, fds) baseline {baseline:?}, right after {during:?}, 3 s later {after:?}; body {:?}",
        answers
            .iter()
            .map(|a| a.0)
            .collect::<std::collections::BTreeSet<_>>(),
        answers[0].1.trim()
    );
    assert!(answers.iter().all(|a| a.0 == 504), "every request got 504");
    assert!(slowest <= Duration::from_millis(1500), "{slowest:?}");
    assert!(after.0 <= baseline.0 + 2, "threads {baseline:?} → {after:?}");
    assert!(after.1 <= baseline.1 + 4, "fds {baseline:?} → {after:?}");
    held.abort();
}
