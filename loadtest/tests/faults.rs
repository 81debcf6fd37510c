//! Fault injection against a real cluster on loopback: an `hlscdn-origin`
//! publishing the demo streams (2 s segments, a 6-segment live window),
//! `hlscdn-router`s and three `hlscdn-edge`s, with simulated players from
//! `loadtest::driver::run` running while a test breaks something: a
//! router ↔ edge partition, an origin outage, `kill -9` of an edge, `kill -9`
//! of one of two routers, a rolling restart of every edge, an origin that
//! never answers. The players check every media playlist against the stream
//! invariants (`loadtest::invariants`) and probe every segment URL. They play
//! as hls.js does with Content Steering (the routers' default direct mode,
//! with a steering TTL of [`STEERING_TTL_SECS`]): a listed segment must keep
//! its URI, and viewers move by switching pathway. Each test prints its
//! figures (`-- --nocapture`); `docs/RELIABILITY.md` ("Faults") lists them.

use test_kit as common;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Port, Server, client, eventually};
use loadtest::driver::{PlayersConfig, Streams};
use loadtest::invariants::Kind;
use loadtest::report::{PlayersReport, TimelineSample};
use router_api::fleet::EdgesView;
use support::proxy::FaultProxy;
use url::Url;

const TOKEN: &str = "fleet-token-for-faults-0123";
const TTL: Duration = Duration::from_millis(3000);
const HOLD_DOWN: Duration = Duration::from_millis(1500);
const LIVE: [&str; 3] = ["live/demo-1", "live/demo-2", "live/demo-3"];
/// The routers' `--steering-ttl`: players reload the steering manifest this
/// often, so a drained or dead pathway is left within about this long.
const STEERING_TTL_SECS: u64 = 1;

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
    /// Edge `i` serves on `edge_ports[i]`, also after a restart.
    edge_ports: Vec<Port>,
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
                "discovery_interval = \"300ms\"\nhold_down = \"{}ms\"\n",
                HOLD_DOWN.as_millis()
            ),
        )
        .expect("config");
        let origin_url = match &origin_proxy {
            Some(p) => format!("http://{}", p.addr),
            None => origin.url(""),
        };
        let ports: Vec<Port> = (0..wiring.routers.max(1)).map(|_| Port::reserve()).collect();
        // With a partition, every router is known by its proxy only (its
        // public URL and its peers' seeds), so that the partitioned edge
        // cannot learn a direct address; the other edges are seeded with every
        // router directly.
        let mut router_proxies = Vec::new();
        if wiring.partitioned_edge.is_some() {
            for port in &ports {
                router_proxies.push(FaultProxy::start(port.addr()).await);
            }
        }
        let reach = |i: usize| match router_proxies.get(i) {
            Some(p) => format!("http://{}", p.addr),
            None => ports[i].url(),
        };
        let mut routers = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let mut args = vec![
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
                "--steering-ttl".to_owned(),
                format!("{STEERING_TTL_SECS}s"),
            ];
            for peer in (0..ports.len()).filter(|&p| p != i) {
                args.extend(["--peer".to_owned(), reach(peer)]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let path = common::bin_path("router", "hlscdn-router");
            routers.push(Server::start_on(port, path.to_str().expect("utf-8"), &args, &[]));
        }
        let mut cluster = Cluster {
            dir,
            origin,
            origin_proxy,
            routers,
            router_proxies,
            partitioned_edge: wiring.partitioned_edge,
            edge_ports: (0..3).map(|_| Port::reserve()).collect(),
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
        std::fs::write(&config, "discovery_interval = \"300ms\"\n").expect("config");
        let routers: Vec<String> = if partitioned {
            self.router_proxies
                .iter()
                .map(|p| format!("http://{}", p.addr))
                .collect()
        } else {
            self.routers.iter().map(|r| r.url("")).collect()
        };
        let mut args = vec![
            "--config".to_owned(),
            config.to_str().expect("utf-8").to_owned(),
            "--id".to_owned(),
            format!("edge-{}", i + 1),
            "--origin".to_owned(),
            self.origin_url(),
            "--fleet-token".to_owned(),
            TOKEN.to_owned(),
            "--heartbeat-interval".to_owned(),
            "1s".to_owned(),
            "--ad-ttl".to_owned(),
            format!("{}ms", TTL.as_millis()),
            "--drain-quiet".to_owned(),
            "1500ms".to_owned(),
        ];
        for r in routers {
            args.extend(["--router".to_owned(), r]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let path = common::bin_path("edge-agent", "hlscdn-edge");
        Server::start_on(&self.edge_ports[i], path.to_str().expect("utf-8"), &args, &[])
    }

    /// Starts edge `i` again on its port (held by the test throughout, so no
    /// connection from the players can have taken it meanwhile).
    fn restart_edge(&mut self, i: usize) {
        self.edges[i] = Some(self.edge(i));
    }

    fn edge_host(&self, i: usize) -> String {
        self.edge_ports[i].addr().to_string()
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
        "{name}: pathway switches {} ({} viewers, at most {} each), steering manifest fetches {}, listed URI changes {}, failed segments beyond moves {}",
        m.pathway_switches,
        m.viewers_switched_pathway,
        m.most_pathway_switches,
        s.steering_fetches,
        s.listed_uri_changes,
        m.most_failed_segments_beyond_moves
    );
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

/// No listed segment changed host or path for a viewer: neither the players
/// (hls.js `LEVEL_PARSING_ERROR`) nor the invariant checker saw one.
fn assert_listed_uris_kept(r: &PlayersReport) {
    assert_eq!(
        r.viewers.sessions.listed_uri_changes, 0,
        "players saw listed URIs change"
    );
    assert_eq!(
        violations(r, Kind::ListedUriChanged),
        0,
        "{:?}",
        r.invariants.first_violations
    );
}

/// Every playlist checked, every segment URL probed, no invariant violated.
fn assert_invariants_kept(r: &PlayersReport) {
    assert_listed_uris_kept(r);
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

/// The players' timeline, second by second, as the run goes on.
/// A one-router cluster with `viewers` players for `duration`, watched by
/// a live timeline, once the players have settled (6 s).
async fn watched_run(
    viewers: usize,
    duration: Duration,
) -> (
    Cluster,
    tokio::sync::watch::Receiver<TimelineSample>,
    tokio::task::JoinHandle<PlayersReport>,
) {
    let cluster = Cluster::start(Wiring {
        routers: 1,
        ..Wiring::default()
    })
    .await;
    let mut config = cluster.players(viewers, duration);
    let timeline = live_timeline(&mut config);
    let players = spawn_players(config);
    tokio::time::sleep(Duration::from_secs(6)).await;
    (cluster, timeline, players)
}

fn live_timeline(config: &mut PlayersConfig) -> tokio::sync::watch::Receiver<TimelineSample> {
    let (tx, rx) = tokio::sync::watch::channel(TimelineSample::default());
    config.live = Some(Arc::new(tx));
    rx
}

/// Of the running edges, the one whose viewers are the most in the latest
/// second of the players' timeline: (index, viewers on it).
fn busiest_edge(cluster: &Cluster, timeline: &tokio::sync::watch::Receiver<TimelineSample>) -> (usize, u64) {
    let sample = timeline.borrow().clone();
    (0..cluster.edges.len())
        .filter(|&i| cluster.edges[i].is_some())
        .map(|i| {
            let host = cluster.edge_host(i);
            let viewers = sample
                .edges
                .iter()
                .position(|e| *e == host)
                .map_or(0, |k| sample.viewers[k]);
            (i, viewers)
        })
        .max_by_key(|&(i, viewers)| (viewers, std::cmp::Reverse(i)))
        .expect("a running edge")
}

/// Waits until the router sees edge `i` fresh, ready and eligible again.
async fn until_eligible(cluster: &Cluster, i: usize) -> Duration {
    let id = format!("edge-{}", i + 1);
    eventually(
        Duration::from_secs(8),
        "restarted edge fresh and eligible",
        || async {
            edges(&cluster.routers[0]).await.is_some_and(|v| {
                v.edges.iter().any(|e| {
                    e.id == id && e.fresh && e.eligible && e.state == router_api::fleet::EdgeState::Ready
                })
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_viewers_edge_three_times() {
    let _serial = SERIAL.lock().await;
    let test_started = Instant::now();
    let (mut cluster, timeline, players) = watched_run(18, Duration::from_secs(34)).await;

    // Three rounds: kill -9 the edge carrying the most viewers, let them
    // move, restart it (it must not get them back), let it become eligible.
    // Per round: (edge, its viewers then, stale after, eligible again after the restart).
    let mut rounds: Vec<(usize, u64, Duration, Duration)> = Vec::new();
    // Viewers on the edge restarted in the previous round, just before the next kill.
    let mut on_restarted: Vec<u64> = Vec::new();
    for _ in 0..3 {
        if let Some(&(previous, ..)) = rounds.last() {
            let sample = timeline.borrow().clone();
            let host = cluster.edge_host(previous);
            on_restarted.push(
                sample
                    .edges
                    .iter()
                    .position(|e| *e == host)
                    .map_or(0, |k| sample.viewers[k]),
            );
        }
        let (victim, viewers) = busiest_edge(&cluster, &timeline);
        let mut edge = cluster.edges[victim].take().expect("running");
        edge.signal("KILL");
        assert!(edge.wait_exit(Duration::from_secs(5)).is_some(), "killed");
        let id = format!("edge-{}", victim + 1);
        let detected = eventually(TTL + Duration::from_secs(2), "killed edge stale", || async {
            edges(&cluster.routers[0])
                .await
                .is_some_and(|v| v.edges.iter().any(|e| e.id == id && !e.fresh))
        })
        .await;
        drop(edge);
        // Viewers leave it within a steering TTL, or at their next segment.
        tokio::time::sleep(Duration::from_secs(STEERING_TTL_SECS + 1)).await;
        cluster.restart_edge(victim);
        let eligible = until_eligible(&cluster, victim).await;
        // Two timeline samples with the edge back, to see who goes to it.
        tokio::time::sleep(Duration::from_secs(2)).await;
        rounds.push((victim, viewers, detected, eligible));
    }
    let report = players.await.expect("players");
    let (failed, stalls) = summary("kill -9 x3", &report);
    let router = &cluster.routers[0];
    let mut pathway_moves = Vec::new();
    for reason in ["dead", "draining", "held_down", "over_cap"] {
        let n = common::metric(
            router,
            &format!("hlscdn_router_pathway_moves_total{{reason=\"{reason}\"}}"),
        )
        .await;
        pathway_moves.push((reason, n));
    }
    let steering = common::metric(router, "hlscdn_router_steering_requests_total").await;
    let moved: u64 = rounds.iter().map(|r| r.1).sum();
    let last = cluster.edge_host(rounds[2].0);
    on_restarted.push(
        report
            .edges
            .iter()
            .find(|e| e.edge == last)
            .map_or(0, |e| e.viewers_at_end),
    );
    let m = report.viewers.moves;
    eprintln!(
        "kill -9 x3: rounds (edge index, its viewers, stale after, eligible after restart) {rounds:?}; viewers to move {moved}; edge changes {} ({} viewers); failed segments: {} viewers, at most {} each, at most {} beyond moves; failed requests {failed}; stalls {stalls}; viewers on each restarted edge until the next kill or the end {on_restarted:?}; router: steering requests {steering}, pathway moves {pathway_moves:?}",
        m.edge_changes,
        m.viewers_changed_edge,
        m.viewers_failed_segment,
        m.most_failed_segments,
        m.most_failed_segments_beyond_moves
    );
    assert!(
        rounds.iter().all(|r| r.1 > 0),
        "every killed edge carried viewers"
    );
    for r in &rounds {
        assert!(
            r.2 < Duration::from_secs(1),
            "seen through its links, not its TTL: {rounds:?}"
        );
    }
    // One move per crash: the killed edge's viewers move once, and nobody
    // goes back to a restarted edge.
    assert_eq!(m.edge_changes, moved, "one move per viewer per crash: {m:?}");
    assert_eq!(
        on_restarted,
        [0, 0, 0],
        "a restarted edge gets none of its viewers back"
    );
    // At most one failed segment per viewer for a kill (and none for a
    // viewer the steering manifest moved first).
    assert_eq!(m.most_failed_segments_beyond_moves, 0, "{m:?}");
    assert!(m.viewers_failed_segment <= moved);
    assert_eq!(stalls, 0, "no stall");
    assert_eq!(report.viewers.sessions.skipped_segments, 0);
    assert_eq!(report.viewers.sessions.gave_up, 0);
    assert!(
        m.pathway_switches >= moved,
        "viewers moved by switching pathway: {m:?}"
    );
    assert_listed_uris_kept(&report);
    // URLs on a killed edge listed by its playlists (which name it for ever)
    // may fail their probe; everything else holds.
    let i = &report.invariants;
    assert_checked(&report);
    let unfetchable = i.violations.get("unfetchable").copied().unwrap_or(0);
    assert_eq!(i.violations_total, unfetchable, "{:?}", i.first_violations);
    assert!(test_started.elapsed() < Duration::from_secs(70));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_of_the_viewers_edge() {
    let _serial = SERIAL.lock().await;
    let test_started = Instant::now();
    let (mut cluster, timeline, players) = watched_run(15, Duration::from_secs(20)).await;

    // SIGTERM: the edge drains (a draining ad to the router at once), keeps
    // serving what it was listed for, and exits once quiet.
    let (victim, viewers) = busiest_edge(&cluster, &timeline);
    let drained_at = Instant::now();
    let mut edge = cluster.edges[victim].take().expect("running");
    edge.signal("TERM");
    let host = cluster.edge_host(victim);
    let left = eventually(
        Duration::from_secs(STEERING_TTL_SECS + 4),
        "viewers left the draining edge",
        || async {
            let sample = timeline.borrow().clone();
            sample.secs > 0.0
                && sample
                    .edges
                    .iter()
                    .position(|e| *e == host)
                    .is_some_and(|k| sample.viewers[k] == 0)
        },
    )
    .await;
    let status = edge.wait_exit(Duration::from_secs(10));
    let exited = drained_at.elapsed();
    let report = players.await.expect("players");
    let (failed, stalls) = summary("drain", &report);
    let m = report.viewers.moves;
    eprintln!(
        "drain: edge-{} had {viewers} viewers; all gone {left:?} after SIGTERM (timeline seconds), exited {exited:?} after ({status:?}); edge changes {}; failed requests {failed}; stalls {stalls}",
        victim + 1,
        m.edge_changes
    );
    assert!(viewers > 0, "the drained edge carried viewers");
    assert!(
        status.is_some_and(|s| s.success()),
        "drained and exited: {status:?}"
    );
    assert_eq!(failed, 0, "nothing failed: {:?}", report.errors);
    assert_eq!(stalls, 0, "no stall");
    assert_eq!(m.edge_changes, viewers, "each of its viewers moved once: {m:?}");
    assert_eq!(report.viewers.sessions.skipped_segments, 0);
    assert_invariants_kept(&report);
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
        cluster.restart_edge(i);
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
    std::fs::write(&config, "origin_timeout = \"500ms\"\n").expect("config");
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
