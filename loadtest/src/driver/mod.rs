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
//!
//! # Layout
//!
//! - this file: what the viewer tasks share, and [`run`]: the scenario from the first scrape to the report.
//! - `config.rs`: [`PlayersConfig`], its limits and defaults, and its validation.
//! - `discover.rs`: what a run learns before it starts: the streams, and the fleet as a router sees it.
//! - `scrape.rs`: `/metrics` before and after the run.
//! - `timeline.rs`: the sample of every second, and the progress line.
//! - `viewer.rs`: a viewer task: sessions of one [`crate::player::Player`], its fetches performed and recorded.
//! - `fetch.rs`: the shared HTTP client, segment downloads, and how a failed request is named.
//! - `failover.rs`: playlists and steering manifests from the viewer's router, or the next one.
//! - `probe.rs`: the stream invariants checked on every media playlist, and the segment URL probes.
//! - `testing.rs` (tests only): loopback servers that answer one way, or refuse connections.

mod config;
mod discover;
mod failover;
mod fetch;
mod probe;
mod scrape;
mod timeline;
mod viewer;

#[cfg(test)]
mod testing;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::mpsc;
use url::Url;

use crate::error::{Error, Result};
use crate::hls;
use crate::invariants::Checker;
use crate::player::Rendition;
use crate::report::{self, PlayersReport, Settings};
use crate::stats::Recorder;
use crate::zipf::Zipf;

pub use config::{
    DEMO_STREAMS, MAX_DURATION, MAX_VIEWERS, PROBE_CONCURRENCY, PROBE_QUEUE, PROBE_TIMEOUT, PlayersConfig,
    Streams, default_arrival_rate,
};
pub use fetch::client;
pub use scrape::metrics_url;

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

/// What one viewer's requests share: its number, the router it uses now
/// (an index into [`Shared::routers`]), and the queue of segment URLs to probe.
struct Viewer<'a> {
    id: usize,
    router: AtomicUsize,
    probes: Option<mpsc::Sender<Url>>,
    shared: &'a Shared,
}

/// Runs `players`; see the module docs.
pub async fn run(config: &PlayersConfig) -> Result<PlayersReport> {
    config.validate()?;
    let client = client(config.timeout)?;
    let streams = discover::streams(&client, &config.streams).await?;
    let zipf = Zipf::new(streams.len(), config.zipf)?;
    let fleet = discover::fleet_view(&client, &config.routers).await;
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
    let before = scrape::scrape(
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
    let sampler = tokio::spawn(timeline::sample(
        shared.clone(),
        start,
        end,
        config.progress,
        config.live.clone(),
    ));
    let probe_timeout = PROBE_TIMEOUT.min(config.timeout);
    let (probes, mut prober) = if config.probe_segments {
        let (probes, queued) = mpsc::channel(PROBE_QUEUE);
        let prober = tokio::spawn(probe::probe_all(shared.clone(), queued, probe_timeout));
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
        viewers.push(tokio::spawn(viewer::viewer(
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
    let after = scrape::scrape(
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
