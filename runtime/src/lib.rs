//! What every hls-cdn server process runs on: the hyper server loop with its
//! limits, graceful shutdown, the metrics recorder, secrets that never print,
//! configuration plumbing and the shape of a server binary's `main`.
//!
//! # Layout
//!
//! - [`server`]: serving an axum app on a listener until shutdown, with limits and timeouts.
//! - [`answer`]: error answers, given one way by every server.
//! - [`auth`]: bearer tokens, compared in constant time.
//! - [`http`]: what every server answers alike: CORS, `/healthz`, `/readyz`, `/metrics`.
//! - [`metrics`]: the process's Prometheus recorder.
//! - [`secret`]: configured secrets that `Debug` never shows, and URL redaction.
//! - [`tls`]: HTTPS served (certificates reloaded when they change) and verified when calling.
//! - [`config`]: layered configuration (TOML file, `HLSCDN_*` variables, flags) and the flags every server has.

#![forbid(unsafe_code)]

pub mod answer;
pub mod auth;
pub mod config;
pub mod http;
pub mod metrics;
pub mod secret;
pub mod server;
pub mod tls;

use std::future::Future;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
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
