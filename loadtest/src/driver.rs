//! The I/O side of `players`: runs [`crate::player::Player`]s against a real
//! cluster with tokio and one shared `reqwest` client (connection pooling),
//! records every request, scrapes `/metrics` before and after, and builds the
//! report.
//!
//! Bounded: at most `viewers` viewers, arriving open-loop at `arrival_rate`
//! (viewer `i` arrives at `i / rate` whatever the others do), every one
//! stopped when `duration` has passed; requests time out after `timeout`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::Deserialize;
use url::Url;

use crate::error::{Error, Result};
use crate::hls;
use crate::player::{Action, Downloaded, Failure, Fetch, FetchKind, Player, PlayerConfig, Rendition};
use crate::prom;
use crate::report::{self, PlayersReport, Scrape, Settings, TimelineSample};
use crate::stats::{Class, Recorder, SegmentRecord};
use crate::zipf::Zipf;

/// Most viewers one run may simulate.
pub const MAX_VIEWERS: usize = 1_000_000;
/// Longest run.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// The streams of `hlscdn-origin --publish-demo`.
pub const DEMO_STREAMS: [&str; 4] = ["live/demo-1", "live/demo-2", "live/demo-3", "vod/demo"];

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
    recorder: Mutex<Recorder>,
    active: AtomicU64,
    playing: AtomicU64,
    stalled: AtomicU64,
    stalls: AtomicU64,
    arrived: AtomicU64,
}

impl Shared {
    fn recorder(&self) -> MutexGuard<'_, Recorder> {
        // A panic while recording leaves figures that are still worth reporting.
        self.recorder.lock().unwrap_or_else(|e| e.into_inner())
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

    let shared = Arc::new(Shared {
        client,
        recorder: Mutex::new(Recorder::new(config.viewers, config.slow)),
        active: AtomicU64::new(0),
        playing: AtomicU64::new(0),
        stalled: AtomicU64::new(0),
        stalls: AtomicU64::new(0),
        arrived: AtomicU64::new(0),
    });
    let start = Instant::now();
    let end = start + config.duration;
    let sampler = tokio::spawn(sample(shared.clone(), start, end, config.progress));

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
        )));
    }
    for v in viewers {
        // A viewer task that panicked has already lost its figures; the rest stand.
        let _ = v.await;
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
    Ok(report::players(
        settings, &recorder, arrived, elapsed, popularity, &edge_ids, &timeline, &before, &after,
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
async fn sample(shared: Arc<Shared>, start: Instant, end: Instant, progress: bool) -> Vec<TimelineSample> {
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

/// One viewer: sessions one after the other until the run ends.
async fn viewer(id: usize, master: Url, config: PlayerConfig, shared: Arc<Shared>, end: Instant) {
    shared.active.fetch_add(1, Ordering::Relaxed);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let (mut player, actions) = Player::new(master.clone(), config.clone(), now);
        let mut state = PlayState::default();
        let outcome = session(id, &mut player, actions, &shared, end, &mut state).await;
        let stats = player.finish(Instant::now().min(end));
        state.set(&shared, false, false);
        shared.recorder().session(&stats);
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
}

async fn session(
    id: usize,
    player: &mut Player,
    first: Vec<Action>,
    shared: &Shared,
    end: Instant,
    state: &mut PlayState,
) -> SessionEnd {
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
                inflight.push(perform(id, fetch, shared));
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
async fn perform(viewer: usize, fetch: Fetch, shared: &Shared) -> Done {
    let started = Instant::now();
    match fetch.kind {
        FetchKind::Master | FetchKind::Media => {
            let master = fetch.kind == FetchKind::Master;
            let body = get_body(&shared.client, &fetch.url).await;
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
                Ok(Err(m)) => Done::Media {
                    url: fetch.url,
                    requested_at: started,
                    result: Ok(m),
                },
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
                viewer,
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

async fn get_body(client: &reqwest::Client, url: &Url) -> Result<bytes::Bytes, Failure> {
    let response = client.get(url.clone()).send().await.map_err(|e| failure(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(Failure(format!("status {}", status.as_u16())));
    }
    response.bytes().await.map_err(|e| failure(&e))
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
}
