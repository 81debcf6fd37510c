//! The hls-cdn edge: the caching HTTP server viewers fetch segments from,
//! and the source of truth about its own health and load.
//!
//! It serves any object under its one configured origin from a cache
//! weighted by bytes, collapsing concurrent misses into one origin fetch that
//! waiting viewers are streamed from while it fills; checks signed URLs
//! before any cache or origin work; measures its load; announces itself to
//! every router it knows once a second; and drains on SIGTERM.
//! `docs/EDGE.md` describes the behaviour for operators.
//!
//! # Layout
//!
//! - [`config`]: TOML + `HLSCDN_*` + flags, validated with messages that name the key.
//! - [`http`]: the axum app: objects (GET/HEAD/Range/304), `/admin/drain`, health, metrics.
//! - [`cache`]: the moka cache and the in-flight fills that collapse misses.
//! - [`misses`]: when an origin 404 may answer a request, and the budget of lookups that find nothing. Pure.
//! - [`passthrough`]: objects over the cacheable size, streamed through with their range.
//! - [`load`]: the load meter: moving averages over counters, hot streams. Pure.
//! - [`sampler`]: CPU time (getrusage) and open connections, as the load meter reads them.
//! - [`streams`]: per-stream egress counters shared by cached objects.
//! - [`peers`]: the routers and their liveness/backoff state machine. Pure.
//! - [`heartbeat`]: the loop that samples load and sends ads; router discovery.
//! - [`drain`]: drain state and the quiet-period rule.
//! - [`metrics`]: metric names, serving counters and their publication.
//! - [`error`]: the crate's error type and its HTTP answers.

#![forbid(unsafe_code)]

pub mod cache;
pub mod config;
pub mod drain;
pub mod error;
pub mod heartbeat;
pub mod http;
pub mod link;
pub mod load;
pub mod metrics;
pub mod misses;
pub mod passthrough;
pub mod peers;
pub mod sampler;
pub mod streams;

pub use error::{Error, Result};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use origin_client::client::OriginClient;
use router_api::fleet::Instance;
use runtime::server::Connections;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::drain::Drain;
use crate::http::AppState;

/// How a run of the edge ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Drained and stopped serving.
    Drained,
    /// A second signal cut the drain short.
    Forced,
}

/// One edge, built from its configuration.
#[derive(Debug)]
pub struct Edge {
    config: Arc<Config>,
    state: Arc<AppState>,
    public_url: String,
    connections: Connections,
    instance: Instance,
}

impl Edge {
    /// Builds the edge that will serve on `local` (the bound address, which
    /// gives the default public URL) as process run `instance`.
    pub fn new(config: Config, local: SocketAddr, instance: Instance) -> anyhow::Result<Self> {
        // Installed before any series is registered, so that no count is lost.
        runtime::metrics::handle();
        let client_tls = config.tls.client().map_err(anyhow::Error::msg)?;
        let origin = OriginClient::open(&config.origin, &config.origin_options, &client_tls)?;
        let counters = Arc::new(metrics::Counters::default());
        let published = Arc::new(metrics::Published::register(
            config.capacity_bps,
            config.max_connections,
        ));
        let cache = cache::Cache::new(
            origin,
            cache::Settings {
                capacity_bytes: config.cache_bytes,
                max_object_bytes: config.max_object_bytes,
                miss_lookups_per_sec: config.miss_lookups_per_sec,
                playlist_ttl: config.playlist_ttl,
                origin_timeout: config.origin_timeout,
            },
            Arc::new(streams::Streams::default()),
            counters.clone(),
        );
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{}://{local}", config.tls.scheme()));
        let state = Arc::new(AppState {
            cache,
            keys: config.signing_keys.clone(),
            counters,
            published,
            drain: Arc::new(Drain::new(Instant::now())),
            fleet_token: config.fleet_token.clone(),
            credential: config.credential(),
        });
        Ok(Edge {
            connections: Connections::new(Some(config.max_connections)),
            config: Arc::new(config),
            state,
            public_url,
            instance,
        })
    }

    /// The HTTP app (for tests that drive it without a socket).
    pub fn app(&self) -> axum::Router {
        http::app(self.state.clone())
    }

    /// The drain state: [`Drain::start`] begins a drain.
    pub fn drain(&self) -> Arc<Drain> {
        self.state.drain.clone()
    }

    /// The URL the edge announces.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Serves on `listener` and sends heartbeats until a drain has finished.
    pub async fn serve(self, listener: TcpListener) -> anyhow::Result<()> {
        let config = self.config.clone();
        tracing::info!(
            edge = %config.id,
            public_url = %self.public_url,
            origin = %runtime::secret::redact_url(&config.origin),
            cache_bytes = config.cache_bytes,
            routers = config.routers.len(),
            signing = config.signing_keys.is_some(),
            instance = %self.instance.id,
            "edge starting"
        );
        let heartbeat = heartbeat::Heartbeat::new(
            config.clone(),
            self.public_url.clone(),
            self.connections.clone(),
            self.instance.clone(),
            self.state.clone(),
        )?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let beats = tokio::spawn(heartbeat.run(stop_rx));
        let tls = config.tls.server().map_err(anyhow::Error::msg)?;
        let drain = self.state.drain.clone();
        let finished = async move {
            drain.finished(config.drain_quiet, config.drain_timeout).await;
        };
        let app = http::app(self.state.clone());
        let served = runtime::server::serve(listener, tls, app, self.connections, finished).await;
        let _ = stop_tx.send(true);
        let _ = beats.await;
        served.context("serving")
    }
}

/// A new process run: now, and a random id.
pub fn new_instance(now: SystemTime, random: u64) -> Instance {
    Instance {
        started_unix_ms: now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        id: format!("{random:016x}"),
    }
}

/// Runs the edge with `config`: binds, serves, drains on the first SIGTERM
/// (or Ctrl-C) and returns when the drain is over, or at once on a second.
pub async fn run(config: Config) -> anyhow::Result<Outcome> {
    let listener = runtime::server::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let local = listener.local_addr()?;
    let edge = Edge::new(config, local, new_instance(SystemTime::now(), rand::random()))?;
    let drain = edge.drain();
    let signals = async move {
        let mut signals = Signals::new();
        signals.next().await;
        drain.start(Instant::now(), "signal");
        signals.next().await;
    };
    tokio::select! {
        served = edge.serve(listener) => served.map(|()| Outcome::Drained),
        () = signals => {
            tracing::warn!("second signal: exiting without finishing the drain");
            Ok(Outcome::Forced)
        }
    }
}

/// SIGTERM and Ctrl-C, each delivery counted.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        let term = async {
            match self.term.as_mut() {
                Some(term) => {
                    term.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            () = term => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    }
}
