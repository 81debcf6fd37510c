//! The hls-cdn origin: an HTTP server over any `object_store` store, with
//! authenticated streaming ingest, and the demo live publisher.
//!
//! What routers and edges share with it (store opening, path, query, range
//! and media rules, the error type) is the `origin-client` crate; the server
//! loop, metrics recorder and secrets are the `runtime` crate.
//!
//! # Layout
//!
//! - [`config`]: TOML + `HLSCDN_*` + flags, validated with messages that name the key.
//! - [`http`]: the axum app: GET/HEAD/PUT/DELETE, `/api/v1/streams`, health, metrics.
//! - [`catalog`]: which streams a store holds (for `/api/v1/streams`). Pure.
//! - [`catalog_cache`]: the catalog shared between callers: one bounded listing at a time, refreshed every few seconds.
//! - [`ingest`]: streaming a request body into the store under a size limit.
//! - [`metrics`]: metric names and the Prometheus recorder.
//! - [`publisher`]: the demo live and VOD streams, on an injected clock.

#![forbid(unsafe_code)]

pub mod catalog;
pub mod catalog_cache;
pub mod config;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod publisher;

pub use origin_client::{Error, Result};
use origin_client::{media, path, range, store};

use std::future::Future;

use anyhow::Context;
use runtime::server::Connections;

/// Runs the origin with `config` until `shutdown` resolves: opens the store,
/// starts the demo publisher when asked, and serves HTTP.
pub async fn run(
    config: config::Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = store::open(&config.store, &config.store_options)?;
    let listener = runtime::server::bind(config.listen)
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
    tracing::info!(store = %runtime::secret::redact_url(&config.store), publish_demo = publisher.is_some(), "origin starting");
    let served = runtime::server::serve(
        listener,
        config.tls,
        http::app(state),
        Connections::default(),
        shutdown,
    )
    .await;
    let _ = stop_tx.send(true);
    if let Some(task) = publisher {
        task.await.context("publisher task")??;
    }
    served.context("serving")
}
