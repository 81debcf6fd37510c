//! The hls-cdn origin: an HTTP server over any `object_store` store, with
//! authenticated streaming ingest, and the demo live publisher.
//!
//! The router and edge agents reuse this crate's store opening, path rules and
//! HTTP plumbing, so that every part reads the origin the same way.
//!
//! # Layout
//!
//! - [`config`]: TOML + `HLSCDN_*` + flags, validated with messages that name the key.
//! - [`store`]: opening a store from its URL (`file://`, `memory://`, `s3://`, `gs://`, `az://`, `http(s)://`).
//! - [`path`]: request path normalization (traversal, encoded slashes, NUL refused). Pure.
//! - [`query`]: the part of a playlist query that reaches the origin and cache keys (`_HLS_*` directives). Pure.
//! - [`range`]: `Range` header parsing and resolution against an object size. Pure.
//! - [`media`]: `Content-Type` by extension and HLS-fitting `Cache-Control`. Pure.
//! - [`http`]: the axum app: GET/HEAD/PUT/DELETE, `/api/v1/streams`, health, metrics.
//! - [`client`]: reading an origin (HTTP through reqwest, stores through `object_store`), for routers and edges.
//! - [`catalog`]: which streams a store holds (for `/api/v1/streams`). Pure.
//! - [`catalog_cache`]: the catalog shared between callers: one bounded listing at a time, refreshed every few seconds.
//! - [`ingest`]: streaming a request body into the store under a size limit.
//! - [`server`]: serving an app on a listener until shutdown.
//! - [`secret`]: configured secrets that `Debug` never shows.
//! - [`metrics`]: metric names and the Prometheus recorder.
//! - [`publisher`]: the demo live and VOD streams, on an injected clock.
//! - [`error`]: the crate's error type.

#![forbid(unsafe_code)]

pub mod catalog;
pub mod catalog_cache;
pub mod client;
pub mod config;
pub mod error;
pub mod http;
pub mod ingest;
pub mod media;
pub mod metrics;
pub mod path;
pub mod publisher;
pub mod query;
pub mod range;
pub mod secret;
pub mod server;
pub mod store;

pub use error::{Error, Result};

use std::future::Future;

use anyhow::Context;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs the origin with `config` until `shutdown` resolves: opens the store,
/// starts the demo publisher when asked, and serves HTTP.
pub async fn run(
    config: config::Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = store::open(&config.store, &config.store_options)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let publisher = match config.publish {
        Some(publish) => {
            let mut publisher =
                publisher::Publisher::new(store.clone(), publish, std::time::SystemTime::now())?;
            // The streams exist before the server says it is listening.
            publisher.tick(std::time::SystemTime::now()).await?;
            let mut stop = stop_rx.clone();
            Some(tokio::spawn(publisher.run(async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            })))
        }
        None => None,
    };
    let state = http::OriginState {
        catalog: catalog_cache::CatalogCache::new(store.clone(), config.catalog),
        store,
        ingest_token: config.ingest_token,
        max_ingest_bytes: config.max_ingest_bytes,
        max_playlist_bytes: config.max_playlist_bytes,
    };
    tracing::info!(store = %secret::redact_url(&config.store), publish_demo = publisher.is_some(), "origin starting");
    let served = server::serve(listener, http::app(state), shutdown).await;
    let _ = stop_tx.send(true);
    if let Some(task) = publisher {
        task.await.context("publisher task")??;
    }
    served.context("serving")
}

/// The body of every hls-cdn server binary: logs to stderr, then runs with
/// `config` until SIGTERM or Ctrl-C. Exits 2 on a bad configuration, 1 when
/// running fails, 0 after a clean shutdown.
pub async fn run_binary<C, E, Fut>(
    name: &str,
    config: std::result::Result<C, E>,
    run: impl FnOnce(C) -> Fut,
) -> std::process::ExitCode
where
    E: std::fmt::Display,
    Fut: Future<Output = anyhow::Result<()>>,
{
    init_tracing();
    let config = match config {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{name}: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
