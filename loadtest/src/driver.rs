//! The I/O side of `players`: runs [`crate::player::Player`]s against a real
//! cluster with tokio and one shared `reqwest` client (connection pooling),
//! records every request, checks every media playlist against the stream
//! invariants ([`crate::invariants`]) and probes each segment URL they name
//! once, scrapes `/metrics` before and after, and builds the report.
//!
//! Router failover: viewer `i` starts on router `i mod n`. A playlist request
//! that fails at the transport level (refused, reset, timed out, body cut) is
//! sent again at once, same path and query, to the next router, which the
//! viewer keeps from then on, as a DNS name or load balancer in front of the
//! routers would make it. A status from a live router is the router's answer
//! and is not failed over. Segments come from edges and never fail over
//! between routers (the player itself moves to another Content Steering
//! pathway, see [`crate::player`]). Steering manifests come from the router
//! and fail over like playlists.
//!
//! Bounded: at most `viewers` viewers, arriving open-loop at `arrival_rate`
//! (viewer `i` arrives at `i / rate` whatever the others do), every one
//! stopped when `duration` has passed; requests time out after `timeout`;
//! at most [`PROBE_CONCURRENCY`] probes at a time, [`PROBE_QUEUE`] waiting.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::Deserialize;
use tokio::sync::mpsc;
use url::Url;

use crate::error::{Error, Result};
use crate::hls;
use crate::invariants::{Checker, Probe, Received};
use crate::player::{Action, Downloaded, Failure, Fetch, FetchKind, Player, PlayerConfig, Rendition};
use crate::prom;
use crate::report::{self, PlayersReport, Scrape, Settings, TimelineSample};
use crate::stats::{Class, Recorder, SegmentRecord};
use crate::steering;
use crate::zipf::Zipf;

/// Most viewers one run may simulate.
pub const MAX_VIEWERS: usize = 1_000_000;
/// Longest run.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// The streams of `hlscdn-origin --publish-demo`.
pub const DEMO_STREAMS: [&str; 4] = ["live/demo-1", "live/demo-2", "live/demo-3", "vod/demo"];
/// Segment URL probes in flight at once.
pub const PROBE_CONCURRENCY: usize = 4;
/// Segment URLs waiting for a probe; one seen while the queue is full is not
/// probed (the report shows URLs seen and probed).
pub const PROBE_QUEUE: usize = 1024;
/// Longest a probe may take (less when `--timeout` is shorter).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the stream list comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Streams {
    /// `GET <origin>/api/v1/streams`: every stream with a multivariant playlist.
    Origin(Url),
    /// These stream names (`live/demo-1`) or playlist paths (`x/master.m3u8`).
    List(Vec<String>),
}

/// A `players` run.
#[derive(Debug, Clone)]
pub struct PlayersConfig {
    /// Routers; viewers take them in turn.
    pub routers: Vec<Url>,
    /// Viewers in all.
    pub viewers: usize,
    /// How long the run lasts; every viewer stops then.
    pub duration: Duration,
    /// Viewers arriving per second.
    pub arrival_rate: f64,
    /// Each player's settings.
    pub player: PlayerConfig,
    /// Zipf exponent of stream popularity (the first stream is the most popular).
    pub zipf: f64,
    /// The streams.
    pub streams: Streams,
    /// The origin's `/metrics`, for origin requests.
    pub origin_metrics: Option<Url>,
    /// The edges' `/metrics`; empty: every edge a router lists at the start.
    pub edge_metrics: Vec<Url>,
    /// Seed of stream choices.
    pub seed: u64,
    /// Request timeout.
    pub timeout: Duration,
    /// Requests slower than this count as slow.
    pub slow: Duration,
    /// Print a progress line every second (stderr).
    pub progress: bool,
    /// Probe every segment URL the playlists name (one byte each, once per
    /// URL) for the "every segment URL fetchable" invariant. Off by default:
    /// probes of segments no viewer plays add edge and origin requests and
    /// lower the cache figures.
    pub probe_segments: bool,
    /// Receives the timeline sample of every second while the run goes on
    /// (tests use it to pick the edge carrying the most viewers).
    pub live: Option<Arc<tokio::sync::watch::Sender<TimelineSample>>>,
}

impl PlayersConfig {
    /// A run against `routers` with the defaults of the command line.
    pub fn new(routers: Vec<Url>, viewers: usize, duration: Duration) -> Self {
        PlayersConfig {
            routers,
            viewers,
            duration,
            arrival_rate: default_arrival_rate(viewers),
            player: PlayerConfig::default(),
            zipf: 1.0,
            streams: Streams::List(DEMO_STREAMS.iter().map(|s| (*s).to_owned()).collect()),
            origin_metrics: None,
            edge_metrics: Vec::new(),
            seed: 1,
            timeout: Duration::from_secs(10),
            slow: Duration::from_secs(1),
            progress: false,
            probe_segments: false,
            live: None,
        }
    }

    /// Checks the values; messages name the flag.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::BadInput(m));
        if self.routers.is_empty() {
            return bad("`--router` is required".into());
        }
        if self.viewers == 0 || self.viewers > MAX_VIEWERS {
            return bad(format!("`--viewers` must be within 1..={MAX_VIEWERS}"));
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            return bad("`--duration` must be within 1s..=24h".into());
        }
        if !(self.arrival_rate.is_finite() && self.arrival_rate > 0.0) {
            return bad(format!(
                "`--arrival-rate` must be > 0 (got {})",
                self.arrival_rate
            ));
        }
        if self.timeout.is_zero() {
            return bad("`--timeout` must be > 0".into());
        }
        if let Streams::List(list) = &self.streams
            && list.is_empty()
        {
            return bad("`--stream` needs at least one stream".into());
        }
        Ok(())
    }
}

/// Default arrival rate: every viewer within 10 s, at least one per second.
pub fn default_arrival_rate(viewers: usize) -> f64 {
    (viewers as f64 / 10.0).max(1.0)
}

/// What every viewer task shares.
#[derive(Debug)]
struct Shared {
    client: reqwest::Client,
    routers: Vec<Url>,
    recorder: Mutex<Recorder>,
    checker: Mutex<Checker>,
    active: AtomicU64,
    playing: AtomicU64,
    stalled: AtomicU64,
    stalls: AtomicU64,
    arrived: AtomicU64,
}

impl Shared {
    fn new(client: reqwest::Client, routers: Vec<Url>, viewers: usize, slow: Duration) -> Self {
        Shared {
            client,
            routers,
            recorder: Mutex::new(Recorder::new(viewers, slow)),
            checker: Mutex::new(Checker::new()),
            active: AtomicU64::new(0),
            playing: AtomicU64::new(0),
            stalled: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            arrived: AtomicU64::new(0),
        }
    }

    fn recorder(&self) -> MutexGuard<'_, Recorder> {
        // A panic while recording leaves figures that are still worth reporting.
        self.recorder.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn checker(&self) -> MutexGuard<'_, Checker> {
        // As for the recorder: what was checked before a panic still stands.
        self.checker.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The shared HTTP client: pooled connections, a timeout, no proxy.
pub fn client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .no_proxy()
        .build()
        .map_err(|source| Error::Upstream {
            what: "building the HTTP client".into(),
            source,
        })
}

/// Runs `players`; see the module docs.
pub async fn run(config: &PlayersConfig) -> Result<PlayersReport> {
    config.validate()?;
    let client = client(config.timeout)?;
    let streams = resolve_streams(&client, &config.streams).await?;
    let zipf = Zipf::new(streams.len(), config.zipf)?;
    let fleet = fleet_view(&client, &config.routers).await;
    let edge_ids: Vec<(String, String)> = fleet
        .iter()
        .flat_map(|v| &v.edges)
        .filter_map(|e| Url::parse(&e.url).ok().map(|u| (hls::edge_of(&u), e.id.clone())))
        .collect();
    let edge_metrics: Vec<Url> = if config.edge_metrics.is_empty() {
        fleet
            .iter()
            .flat_map(|v| &v.edges)
            .filter_map(|e| metrics_url(&e.url))
            .collect()
    } else {
        config.edge_metrics.clone()
    };
    let router_metrics: Vec<Url> = config
        .routers
        .iter()
        .filter_map(|r| metrics_url(r.as_str()))
        .collect();
    let before = scrape(
        &client,
        config.origin_metrics.as_ref(),
        &edge_metrics,
        &router_metrics,
    )
    .await;

    let shared = Arc::new(Shared::new(
        client,
        config.routers.clone(),
        config.viewers,
        config.slow,
    ));
    let start = Instant::now();
    let end = start + config.duration;
    let sampler = tokio::spawn(sample(
        shared.clone(),
        start,
        end,
        config.progress,
        config.live.clone(),
    ));
    let probe_timeout = PROBE_TIMEOUT.min(config.timeout);
    let (probes, mut prober) = if config.probe_segments {
        let (probes, queued) = mpsc::channel(PROBE_QUEUE);
        let prober = tokio::spawn(probe_all(shared.clone(), queued, probe_timeout));
        (Some(probes), Some(prober))
    } else {
        (None, None)
    };

    let mut rng = SmallRng::seed_from_u64(config.seed);
    let mut popularity = vec![0u64; streams.len()];
    let mut viewers = Vec::with_capacity(config.viewers);
    for i in 0..config.viewers {
        let at = start + Duration::from_secs_f64(i as f64 / config.arrival_rate);
        if at >= end {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        let stream = zipf.sample(&mut rng);
        popularity[stream] += 1;
        let router = &config.routers[i % config.routers.len()];
        let master = router
            .join(&streams[stream])
            .map_err(|e| Error::BadInput(format!("{router}: {e}")))?;
        shared.arrived.fetch_add(1, Ordering::Relaxed);
        viewers.push(tokio::spawn(viewer(
            i,
            master,
            config.player.clone(),
            shared.clone(),
            end,
            probes.clone(),
        )));
    }
    // The prober ends once every viewer has dropped its sender and the queue is empty.
    drop(probes);
    for v in viewers {
        // A viewer task that panicked has already lost its figures; the rest stand.
        let _ = v.await;
    }
    // The last URLs get one more probe timeout; what is still queued then is left unprobed.
    if let Some(prober) = prober.as_mut()
        && tokio::time::timeout(probe_timeout + Duration::from_secs(1), &mut *prober)
            .await
            .is_err()
    {
        prober.abort();
    }
    let timeline = sampler.await.unwrap_or_default();
    let elapsed = start.elapsed();
    let after = scrape(
        &shared.client,
        config.origin_metrics.as_ref(),
        &edge_metrics,
        &router_metrics,
    )
    .await;

    let arrived = shared.arrived.load(Ordering::Relaxed) as usize;
    let recorder = shared.recorder();
    let settings = Settings {
        routers: config.routers.iter().map(Url::to_string).collect(),
        viewers: config.viewers,
        duration_secs: config.duration.as_secs_f64(),
        arrival_rate: config.arrival_rate,
        rendition: match &config.player.rendition {
            Rendition::Fixed(name) => format!("fixed {name}"),
            Rendition::Abr => "abr".into(),
        },
        zipf: config.zipf,
        seed: config.seed,
        slow_ms: config.slow.as_secs_f64() * 1000.0,
        timeout_ms: config.timeout.as_secs_f64() * 1000.0,
    };
    let popularity = streams
        .iter()
        .zip(popularity)
        .map(|(s, n)| (s.trim_end_matches("/master.m3u8").to_owned(), n))
        .collect();
    let invariants = shared.checker().figures();
    Ok(report::players(
        settings, &recorder, arrived, elapsed, popularity, &edge_ids, &timeline, &before, &after, invariants,
    ))
}

/// The multivariant playlist path of every stream, relative to a router.
async fn resolve_streams(client: &reqwest::Client, streams: &Streams) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Catalog {
        streams: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        master: Option<String>,
    }
    match streams {
        Streams::List(list) => Ok(list
            .iter()
            .map(|s| {
                let s = s.trim_matches('/');
                if s.ends_with(".m3u8") {
                    s.to_owned()
                } else {
                    format!("{s}/master.m3u8")
                }
            })
            .collect()),
        Streams::Origin(origin) => {
            let url = origin
                .join("/api/v1/streams")
                .map_err(|e| Error::BadInput(format!("`--origin` {origin}: {e}")))?;
            let what = format!("GET {url}");
            let response = client
                .get(url.clone())
                .send()
                .await
                .map_err(|source| Error::Upstream {
                    what: what.clone(),
                    source,
                })?;
            if !response.status().is_success() {
                return Err(Error::Status {
                    what,
                    status: response.status().as_u16(),
                });
            }
            let catalog: Catalog = response.json().await.map_err(|e| Error::BadBody {
                what: what.clone(),
                reason: e.to_string(),
            })?;
            let masters: Vec<String> = catalog.streams.into_iter().filter_map(|s| s.master).collect();
            if masters.is_empty() {
                return Err(Error::BadInput(format!("{what}: no stream with a master.m3u8")));
            }
            Ok(masters)
        }
    }
}

/// The fleet as the first router that answers sees it.
async fn fleet_view(client: &reqwest::Client, routers: &[Url]) -> Option<router_api::fleet::EdgesView> {
    for router in routers {
        let Ok(url) = router.join("/api/v1/edges") else {
            continue;
        };
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
            && let Ok(view) = response.json().await
        {
            return Some(view);
        }
    }
    None
}

/// The `/metrics` URL of a server: `base` itself if it ends with
/// `/metrics`, else `base` + `/metrics`.
pub fn metrics_url(base: &str) -> Option<Url> {
    let mut url = Url::parse(base).ok()?;
    if url.cannot_be_a_base() || !url.scheme().starts_with("http") {
        return None;
    }
    if !url.path().ends_with("/metrics") {
        let path = format!("{}/metrics", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    Some(url)
}

async fn scrape_one(client: &reqwest::Client, url: &Url) -> Option<Vec<prom::Sample>> {
    let response = client.get(url.clone()).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    Some(prom::parse(&response.text().await.ok()?))
}

async fn scrape(client: &reqwest::Client, origin: Option<&Url>, edges: &[Url], routers: &[Url]) -> Scrape {
    let origin = match origin {
        Some(url) => scrape_one(client, url).await,
        None => None,
    };
    let edges = futures::future::join_all(
        edges
            .iter()
            .map(|u| async move { (u.to_string(), scrape_one(client, u).await) }),
    )
    .await;
    let routers = futures::future::join_all(
        routers
            .iter()
            .map(|u| async move { (u.to_string(), scrape_one(client, u).await) }),
    )
    .await;
    Scrape {
        origin,
        edges,
        routers,
    }
}

/// Samples the run every second for the timeline, and prints the progress line.
async fn sample(
    shared: Arc<Shared>,
    start: Instant,
    end: Instant,
    progress: bool,
    live: Option<Arc<tokio::sync::watch::Sender<TimelineSample>>>,
) -> Vec<TimelineSample> {
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval_at((start + Duration::from_secs(1)).into(), Duration::from_secs(1));
    let mut last_requests = 0;
    loop {
        let now = tick.tick().await.into_std();
        let (sample, requests, errors, slow, p99) = {
            let r = shared.recorder();
            let (viewers, bytes) = r.edge_snapshot();
            let (requests, errors, slow) = r.totals();
            let sample = TimelineSample {
                secs: now.duration_since(start).as_secs_f64(),
                active: shared.active.load(Ordering::Relaxed),
                stalled: shared.stalled.load(Ordering::Relaxed),
                edges: r.edge_names(),
                viewers,
                bytes,
            };
            (
                sample,
                requests,
                errors,
                slow,
                r.percentiles(Class::Segment).p99_ms,
            )
        };
        if progress {
            let per_edge: Vec<String> = sample
                .edges
                .iter()
                .zip(&sample.viewers)
                .map(|(e, v)| format!("{e} {v}"))
                .collect();
            eprintln!(
                "[{:>4.0}s] viewers {} (arrived {}) playing {} stalled {} | stalls {} | {} req/s, errors {}, slow {} | segment p99 {:.1} ms | {}",
                sample.secs,
                sample.active,
                shared.arrived.load(Ordering::Relaxed),
                shared.playing.load(Ordering::Relaxed),
                sample.stalled,
                shared.stalls.load(Ordering::Relaxed),
                requests - last_requests,
                errors,
                slow,
                p99,
                per_edge.join(" · "),
            );
        }
        last_requests = requests;
        if let Some(live) = &live {
            live.send_replace(sample.clone());
        }
        samples.push(sample);
        if now >= end {
            return samples;
        }
    }
}

/// How a session ended.
enum SessionEnd {
    /// Played to the end (VOD): the viewer starts over.
    Ended,
    /// The player gave up: the viewer leaves.
    GaveUp,
    /// The run is over.
    RunOver,
}

/// What one viewer's requests share: its number, the router it uses now
/// (an index into [`Shared::routers`]), and the queue of segment URLs to probe.
struct Viewer<'a> {
    id: usize,
    router: AtomicUsize,
    probes: Option<mpsc::Sender<Url>>,
    shared: &'a Shared,
}

/// One viewer: sessions one after the other until the run ends.
async fn viewer(
    id: usize,
    master: Url,
    config: PlayerConfig,
    shared: Arc<Shared>,
    end: Instant,
    probes: Option<mpsc::Sender<Url>>,
) {
    shared.active.fetch_add(1, Ordering::Relaxed);
    let me = Viewer {
        id,
        router: AtomicUsize::new(id % shared.routers.len().max(1)),
        probes,
        shared: &shared,
    };
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let (mut player, actions) = Player::new(master.clone(), config.clone(), now);
        let mut state = PlayState::default();
        let outcome = session(&me, &mut player, actions, end, &mut state).await;
        let stats = player.finish(Instant::now().min(end));
        state.set(&shared, false, false);
        shared.recorder().session(id, &stats);
        match outcome {
            SessionEnd::Ended => continue,
            SessionEnd::GaveUp | SessionEnd::RunOver => break,
        }
    }
    shared.active.fetch_sub(1, Ordering::Relaxed);
}

/// What the progress counters know of one viewer.
#[derive(Debug, Default)]
struct PlayState {
    playing: bool,
    stalled: bool,
}

impl PlayState {
    fn set(&mut self, shared: &Shared, playing: bool, stalled: bool) {
        if playing != self.playing {
            if playing {
                shared.playing.fetch_add(1, Ordering::Relaxed);
            } else {
                shared.playing.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if stalled != self.stalled {
            if stalled {
                shared.stalled.fetch_add(1, Ordering::Relaxed);
                shared.stalls.fetch_add(1, Ordering::Relaxed);
            } else {
                shared.stalled.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.playing = playing;
        self.stalled = stalled;
    }
}

/// What a finished request tells the player.
enum Done {
    Master(Result<hls::MasterInfo, Failure>),
    Media {
        url: Url,
        requested_at: Instant,
        result: Result<hls::MediaInfo, Failure>,
    },
    Segment {
        msn: u64,
        result: Result<Downloaded, Failure>,
    },
    Steering {
        url: Url,
        result: Result<steering::Manifest, Failure>,
    },
}

async fn session(
    viewer: &Viewer<'_>,
    player: &mut Player,
    first: Vec<Action>,
    end: Instant,
    state: &mut PlayState,
) -> SessionEnd {
    let shared = viewer.shared;
    let mut pending: Vec<Fetch> = Vec::new();
    let mut inflight = FuturesUnordered::new();
    let mut actions = first;
    loop {
        for action in actions.drain(..) {
            match action {
                Action::Fetch(fetch) => pending.push(fetch),
                Action::Ended => return SessionEnd::Ended,
                Action::GaveUp => return SessionEnd::GaveUp,
            }
        }
        state.set(shared, player.is_playing(), player.is_stalled());
        let now = Instant::now();
        let mut i = 0;
        while i < pending.len() {
            if pending[i].at <= now {
                let fetch = pending.swap_remove(i);
                // A reload of a playlist the player has switched away from
                // is not sent (nor checked, nor its URLs probed).
                if player.wants(&fetch) {
                    inflight.push(perform(viewer, fetch));
                }
            } else {
                i += 1;
            }
        }
        let wake = pending
            .iter()
            .map(|f| f.at)
            .chain(player.deadline().map(|d| d + Duration::from_millis(1)))
            .fold(end, Instant::min);
        tokio::select! {
            Some(done) = inflight.next(), if !inflight.is_empty() => {
                let now = Instant::now();
                actions = match done {
                    Done::Master(result) => player.on_master(now, result),
                    Done::Media { url, requested_at, result } => player.on_media(now, &url, requested_at, result),
                    Done::Segment { msn, result } => player.on_segment(now, msn, result),
                    Done::Steering { url, result } => player.on_steering(now, &url, result),
                };
            }
            () = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                if now >= end {
                    return SessionEnd::RunOver;
                }
                actions = player.tick(now);
            }
        }
    }
}

fn failure(e: &reqwest::Error) -> Failure {
    Failure(
        if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "connect"
        } else if e.is_body() || e.is_decode() {
            "body"
        } else {
            "request"
        }
        .to_owned(),
    )
}

/// Sends one request, records it, and says what came of it.
async fn perform(viewer: &Viewer<'_>, fetch: Fetch) -> Done {
    let shared = viewer.shared;
    let started = Instant::now();
    match fetch.kind {
        FetchKind::Steering => {
            let (_, body) = get_playlist(viewer, &fetch.url).await;
            let elapsed = started.elapsed();
            let result = body.and_then(|b| {
                steering::parse_manifest(&b).map_err(|_| Failure("unusable steering manifest".into()))
            });
            shared
                .recorder()
                .steering(elapsed, result.as_ref().err().map(|f| f.0.as_str()));
            Done::Steering {
                url: fetch.url,
                result,
            }
        }
        FetchKind::Master | FetchKind::Media => {
            let master = fetch.kind == FetchKind::Master;
            let (answered, body) = get_playlist(viewer, &fetch.url).await;
            let elapsed = started.elapsed();
            let parsed = body.and_then(|b| {
                let parsed = if master {
                    hls::parse_master(&b).map(Ok)
                } else {
                    hls::parse_media(&b).map(Err)
                };
                parsed.map_err(|_| Failure("unusable playlist".into()))
            });
            shared
                .recorder()
                .playlist(master, elapsed, parsed.as_ref().err().map(|f| f.0.as_str()));
            match parsed {
                Ok(Ok(m)) => Done::Master(Ok(m)),
                Ok(Err(m)) => {
                    check(viewer, &answered, &m);
                    Done::Media {
                        url: fetch.url,
                        requested_at: started,
                        result: Ok(m),
                    }
                }
                Err(f) if master => Done::Master(Err(f)),
                Err(f) => Done::Media {
                    url: fetch.url,
                    requested_at: started,
                    result: Err(f),
                },
            }
        }
        FetchKind::Segment { msn } => {
            let (ttfb, bytes, result) = get_segment(&shared.client, &fetch.url).await;
            let elapsed = started.elapsed();
            shared.recorder().segment(&SegmentRecord {
                viewer: viewer.id,
                edge: &hls::edge_of(&fetch.url),
                object: hls::object_of(&fetch.url),
                ttfb,
                elapsed,
                bytes,
                error: result.as_ref().err().map(|f| f.0.as_str()),
            });
            Done::Segment {
                msn,
                result: result.map(|()| Downloaded { bytes, elapsed }),
            }
        }
    }
}

/// Why a request brought no body.
enum Miss {
    /// The server answered with this status (not 2xx).
    Status(u16),
    /// No whole answer: refused, reset, timed out, body cut.
    Transport(Failure),
}

impl Miss {
    fn into_failure(self) -> Failure {
        match self {
            Miss::Status(status) => Failure(format!("status {status}")),
            Miss::Transport(failure) => failure,
        }
    }
}

async fn get_body(client: &reqwest::Client, url: &Url) -> Result<bytes::Bytes, Miss> {
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| Miss::Transport(failure(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(Miss::Status(status.as_u16()));
    }
    response.bytes().await.map_err(|e| Miss::Transport(failure(&e)))
}

/// Fetches a playlist from the viewer's router; after a transport failure,
/// the same path and query at once from the next router, which the viewer
/// keeps (each router is tried at most once per request). Returns the URL
/// that gave the outcome.
async fn get_playlist(viewer: &Viewer<'_>, url: &Url) -> (Url, Result<bytes::Bytes, Failure>) {
    let shared = viewer.shared;
    let routers = &shared.routers;
    let mut tried = 1;
    loop {
        let current = viewer.router.load(Ordering::Relaxed);
        let moved = routers.get(current).and_then(|to| on_router(url, routers, to));
        let can_fail_over = moved.is_some() && tried < routers.len();
        let target = moved.unwrap_or_else(|| url.clone());
        match get_body(&shared.client, &target).await {
            Err(Miss::Transport(_)) if can_fail_over => {
                tried += 1;
                viewer
                    .router
                    .store((current + 1) % routers.len(), Ordering::Relaxed);
                shared.recorder().failover(viewer.id);
            }
            result => return (target, result.map_err(Miss::into_failure)),
        }
    }
}

/// `url`, which names one of `routers`, sent to router `to` instead: same
/// path and query, as a DNS name or a load balancer in front of the routers
/// would send it. `None` for a URL on any other host.
fn on_router(url: &Url, routers: &[Url], to: &Url) -> Option<Url> {
    // Compared field by field: `Url::origin` allocates, and this runs for
    // every playlist request.
    let same_server = |r: &Url| {
        r.scheme() == url.scheme()
            && r.host_str() == url.host_str()
            && r.port_or_known_default() == url.port_or_known_default()
    };
    if !routers.iter().any(same_server) {
        return None;
    }
    let mut moved = url.clone();
    moved.set_scheme(to.scheme()).ok()?;
    moved.set_host(to.host_str()).ok()?;
    moved.set_port(to.port()).ok()?;
    Some(moved)
}

/// Checks a media playlist the viewer received from `url` against the
/// stream invariants, and queues the segment URLs nobody saw before for a
/// probe (one that does not fit in the queue is left unprobed).
fn check(viewer: &Viewer<'_>, url: &Url, media: &hls::MediaInfo) {
    let fresh = viewer.shared.checker().observe(Received {
        viewer: viewer.id,
        url,
        at: SystemTime::now(),
        playlist: media,
    });
    let Some(probes) = &viewer.probes else {
        return;
    };
    for segment in fresh {
        if probes.try_send(segment).is_err() {
            break;
        }
    }
}

/// Probes the queued segment URLs, [`PROBE_CONCURRENCY`] at a time, until
/// the queue is closed and empty, and reports each outcome to the checker.
async fn probe_all(shared: Arc<Shared>, queued: mpsc::Receiver<Url>, timeout: Duration) {
    let urls = futures::stream::unfold(queued, |mut queued| async move {
        queued.recv().await.map(|url| (url, queued))
    });
    urls.for_each_concurrent(PROBE_CONCURRENCY, |url| {
        let shared = &shared;
        async move {
            let outcome = probe(&shared.client, &url, timeout).await;
            if outcome == Probe::Fetchable {
                shared.recorder().object(hls::object_of(&url));
            }
            shared.checker().probed(&url, outcome);
        }
    })
    .await;
}

/// `GET` of the first byte of a segment: a 2xx is fetchable.
async fn probe(client: &reqwest::Client, url: &Url, timeout: Duration) -> Probe {
    let sent = client
        .get(url.clone())
        .header(reqwest::header::RANGE, "bytes=0-0")
        .timeout(timeout)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => match response.bytes().await {
            Ok(_) => Probe::Fetchable,
            Err(e) => Probe::NoAnswer(failure(&e).0),
        },
        Ok(response) => Probe::Status(response.status().as_u16()),
        Err(e) => Probe::NoAnswer(failure(&e).0),
    }
}

/// Time to the response head, body bytes, and the outcome.
async fn get_segment(client: &reqwest::Client, url: &Url) -> (Option<Duration>, u64, Result<(), Failure>) {
    let started = Instant::now();
    let mut response = match client.get(url.clone()).send().await {
        Ok(r) => r,
        Err(e) => return (None, 0, Err(failure(&e))),
    };
    let ttfb = Some(started.elapsed());
    let status = response.status();
    if !status.is_success() {
        return (ttfb, 0, Err(Failure(format!("status {}", status.as_u16()))));
    }
    let mut bytes = 0u64;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes += chunk.len() as u64,
            Ok(None) => return (ttfb, bytes, Ok(())),
            Err(e) => return (ttfb, bytes, Err(failure(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_flag() {
        let url = Url::parse("http://127.0.0.1:8080").expect("url");
        let ok = PlayersConfig::new(vec![url.clone()], 10, Duration::from_secs(5));
        assert!(ok.validate().is_ok());
        let cases: Vec<(PlayersConfig, &str)> = vec![
            (PlayersConfig::new(vec![], 10, Duration::from_secs(5)), "--router"),
            (
                PlayersConfig::new(vec![url.clone()], 0, Duration::from_secs(5)),
                "--viewers",
            ),
            (
                PlayersConfig::new(vec![url.clone()], 1, Duration::ZERO),
                "--duration",
            ),
            (
                PlayersConfig {
                    arrival_rate: 0.0,
                    ..ok.clone()
                },
                "--arrival-rate",
            ),
            (
                PlayersConfig {
                    streams: Streams::List(vec![]),
                    ..ok.clone()
                },
                "--stream",
            ),
        ];
        for (config, flag) in cases {
            let err = config.validate().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(flag), "{err:?} lacks {flag}");
        }
    }

    #[test]
    fn metrics_urls() {
        let u = |s: &str| metrics_url(s).map(|u| u.to_string());
        assert_eq!(
            u("http://127.0.0.1:9001").as_deref(),
            Some("http://127.0.0.1:9001/metrics")
        );
        assert_eq!(
            u("http://127.0.0.1:9001/").as_deref(),
            Some("http://127.0.0.1:9001/metrics")
        );
        assert_eq!(u("http://h:1/x/metrics").as_deref(), Some("http://h:1/x/metrics"));
        assert_eq!(
            u("http://h:1/edge-1/").as_deref(),
            Some("http://h:1/edge-1/metrics")
        );
        assert_eq!(u("nope"), None);
        assert_eq!(default_arrival_rate(50), 5.0);
        assert_eq!(default_arrival_rate(3), 1.0);
    }

    #[test]
    fn failover_keeps_path_and_query_and_leaves_other_hosts_alone() {
        let u = |s: &str| Url::parse(s).expect("url");
        let routers = [u("http://127.0.0.1:8080/"), u("https://router.example/")];
        let media = u("http://127.0.0.1:8080/live/demo-1/240p/index.m3u8?s=tok&_HLS_msn=7");
        let moved = |to: &Url| on_router(&media, &routers, to).map(String::from);
        assert_eq!(
            moved(&routers[1]).as_deref(),
            Some("https://router.example/live/demo-1/240p/index.m3u8?s=tok&_HLS_msn=7")
        );
        assert_eq!(moved(&routers[0]).as_deref(), Some(media.as_str()));
        let back = on_router(
            &u("https://router.example/live/x/master.m3u8"),
            &routers,
            &routers[0],
        );
        assert_eq!(
            back.map(String::from).as_deref(),
            Some("http://127.0.0.1:8080/live/x/master.m3u8")
        );
        let edge = u("http://127.0.0.1:9001/live/demo-1/240p/index.m3u8");
        assert_eq!(on_router(&edge, &routers, &routers[1]), None);
    }

    /// A server answering every request with `status` and `body`, then
    /// closing the connection; with `declared`, a `Content-Length` of that
    /// many bytes instead of the body's (a body cut short when larger).
    async fn answering(status: &'static str, body: &'static str, declared: Option<usize>) -> Url {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let answer = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        declared.unwrap_or(body.len())
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        Url::parse(&format!("http://{addr}/")).expect("url")
    }

    /// A loopback address nobody listens on: connections are refused.
    fn refusing() -> Url {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        Url::parse(&format!("http://127.0.0.1:{port}/")).expect("url")
    }

    async fn fetch_as_viewer(
        routers: &[Url],
        home: usize,
    ) -> (Url, Result<bytes::Bytes, Failure>, usize, u64) {
        let http = client(Duration::from_secs(2)).expect("client");
        let shared = Shared::new(http, routers.to_vec(), 1, Duration::from_secs(1));
        let viewer = Viewer {
            id: 0,
            router: AtomicUsize::new(home),
            probes: None,
            shared: &shared,
        };
        let url = routers[home].join("live/x/240p/index.m3u8?s=tok").expect("url");
        let (answered, result) = get_playlist(&viewer, &url).await;
        let failovers = shared.recorder().moves().failovers;
        (answered, result, viewer.router.load(Ordering::Relaxed), failovers)
    }

    #[tokio::test]
    async fn playlists_fail_over_on_transport_failures_only() {
        let live = answering("200 OK", "#EXTM3U\n", None).await;
        let failing = answering("502 Bad Gateway", "origin unreachable\n", None).await;
        let cut = answering("200 OK", "#EXTM3U\n", Some(5000)).await;
        let (dead, also_dead) = (refusing(), refusing());

        // Refused: the same path and query from the next router, which the viewer keeps.
        let (answered, result, router, failovers) = fetch_as_viewer(&[dead.clone(), live.clone()], 0).await;
        assert_eq!(answered.as_str(), format!("{live}live/x/240p/index.m3u8?s=tok"));
        assert_eq!(result.ok().as_deref(), Some(&b"#EXTM3U\n"[..]));
        assert_eq!((router, failovers), (1, 1));

        // A body cut short is a transport failure too.
        let (answered, result, router, failovers) =
            fetch_as_viewer(&[live.clone(), cut, live.clone()], 1).await;
        assert_eq!(answered.origin(), live.origin());
        assert!(result.is_ok());
        assert_eq!((router, failovers), (2, 1));

        // A live router's status is its answer: no failover.
        let (answered, result, router, failovers) =
            fetch_as_viewer(&[failing.clone(), live.clone()], 0).await;
        assert_eq!(answered.origin(), failing.origin());
        assert_eq!(result.err(), Some(Failure("status 502".into())));
        assert_eq!((router, failovers), (0, 0));

        // Every router refuses: each is tried once, then the player hears of it.
        let (_, result, router, failovers) = fetch_as_viewer(&[also_dead, dead], 1).await;
        assert_eq!(result.err(), Some(Failure("connect".into())));
        assert_eq!((router, failovers), (0, 1));

        // One router: nowhere to fail over to.
        let (_, result, router, failovers) = fetch_as_viewer(&[refusing()], 0).await;
        assert!(result.is_err());
        assert_eq!((router, failovers), (0, 0));
    }

    #[tokio::test]
    async fn probes_tell_fetchable_from_status_and_silence() {
        let http = client(Duration::from_secs(2)).expect("client");
        let timeout = Duration::from_secs(1);
        let partial = answering("206 Partial Content", "G", None).await;
        assert_eq!(probe(&http, &partial, timeout).await, Probe::Fetchable);
        let missing = answering("404 Not Found", "", None).await;
        assert_eq!(probe(&http, &missing, timeout).await, Probe::Status(404));
        assert_eq!(
            probe(&http, &refusing(), timeout).await,
            Probe::NoAnswer("connect".into())
        );
    }
}
