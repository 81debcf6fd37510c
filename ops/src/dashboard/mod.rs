//! `hlscdn dashboard`: a small server that watches the fleet and serves the
//! dashboard and the player page.
//!
//! The server follows every router's `/api/v1/events` stream (routers it is
//! given, and the ones they know of), merges the views once a second into an
//! overview ([`crate::health::Report`] plus streams, scaling and the egress
//! sample), keeps the egress history for the chart, and pushes the overview
//! to browsers as server-sent events. The browser therefore talks to the
//! dashboard only, apart from the player, which fetches playlists from a
//! router and segments from edges like any viewer.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the dashboard page |
//! | `GET /player` | the player page (`?stream=live/demo-1`) |
//! | `GET /assets/…` | scripts, styles, hls.js |
//! | `GET /api/overview` | the latest overview (JSON) |
//! | `GET /api/events` | `event: overview` at once and every second |
//! | `GET /api/history` | egress samples of the last minutes |
//! | `GET /api/streams` | the streams to play, from the origin's catalog (or the edges' hot streams) |
//! | `GET /api/explain?router=…&path=…&session=…&group=…` | a router's `/api/v1/explain`, passed through |
//! | `GET /healthz`, `/readyz`, `/metrics` | up; a router's view arrived; Prometheus |

pub mod assets;
pub mod streams;
mod watch;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::Stream;
use runtime::config::{RoutersArg, ServerArgs};
use runtime::secret::redact_url;
use runtime::server::Connections;
use serde::{Deserialize, Serialize};

use crate::api;
pub use watch::Watcher;

/// Default listen address.
pub const DEFAULT_LISTEN: SocketAddr = runtime::config::loopback(8090);

/// `hlscdn dashboard` flags: every key of the `--config` file (`listen`,
/// `routers`, `origin`), each flag also read from its `HLSCDN_*` variable;
/// flags win over variables, which win over the file ([`runtime::config`]).
#[derive(Debug, Default, clap::Args, Serialize)]
pub struct Args {
    #[command(flatten)]
    #[serde(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub routers: RoutersArg,
    /// The origin, for the catalog of streams and their bitrates (optional).
    #[arg(long, env = "HLSCDN_ORIGIN", value_name = "URL")]
    pub origin: Option<String>,
}

/// The validated configuration of the dashboard; every field is the key of
/// the same name.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Seed routers.
    pub routers: Vec<String>,
    /// The origin's URL, if known.
    pub origin: Option<String>,
    /// HTTPS served, and how calls to routers and the origin verify.
    pub tls: runtime::tls::TlsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            routers: Vec::new(),
            origin: None,
            tls: runtime::tls::TlsConfig::default(),
        }
    }
}

impl Config {
    /// Reads the file of `--config`, lays the flags and `HLSCDN_*`
    /// variables over it, validates.
    pub fn load(args: Args) -> anyhow::Result<Config> {
        let config: Config =
            runtime::config::load(args.server.config.as_deref(), &args).map_err(anyhow::Error::msg)?;
        if config.routers.is_empty() {
            bail!("`routers` must name at least one router (--router URL)");
        }
        for router in &config.routers {
            api::check_base_url(router).context("`routers`")?;
        }
        if let Some(origin) = &config.origin {
            api::check_base_url(origin).context("`origin`")?;
        }
        config.tls.server().map_err(anyhow::Error::msg)?;
        config.tls.client().map_err(anyhow::Error::msg)?;
        Ok(Config {
            listen: config.listen,
            routers: config.routers.iter().map(|r| api::base(r).to_owned()).collect(),
            origin: config.origin.map(|o| api::base(&o).to_owned()),
            tls: config.tls,
        })
    }
}

/// Runs `hlscdn dashboard` until SIGTERM or Ctrl-C.
pub async fn run_command(args: Args) -> anyhow::Result<std::process::ExitCode> {
    let config = Config::load(args)?;
    run(config, runtime::server::shutdown_signal()).await?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Watches the fleet and serves the dashboard until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let tls = config.tls.server().map_err(anyhow::Error::msg)?;
    api::trust(config.tls.client().map_err(anyhow::Error::msg)?);
    let listener = runtime::server::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let watcher = Watcher::start(config.routers.clone(), config.origin.clone());
    let routers: Vec<String> = config.routers.iter().map(|r| redact_url(r.as_str())).collect();
    let origin = config.origin.as_ref().map(|o| redact_url(o.as_str()));
    tracing::info!(routers = ?routers, origin = ?origin, "dashboard starting");
    let closing = watcher.clone();
    let shutdown = async move {
        shutdown.await;
        closing.close_streams();
    };
    let served = runtime::server::serve(
        listener,
        tls,
        app(watcher.clone()),
        Connections::default(),
        shutdown,
    )
    .await;
    watcher.stop();
    served.context("serving")
}

/// The dashboard's HTTP app.
pub fn app(watcher: Arc<Watcher>) -> Router {
    Router::new()
        .route("/api/overview", get(overview))
        .route("/api/events", get(events))
        .route("/api/history", get(history))
        .route("/api/streams", get(streams))
        .route("/api/explain", get(explain))
        .fallback(asset)
        .with_state(watcher.clone())
        .merge(runtime::http::probe_routes(watcher))
}

async fn asset(method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, HeaderValue::from_static("GET, HEAD"))],
            "method not allowed\n",
        )
            .into_response();
    }
    match assets::find(uri.path()) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            asset.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

fn json(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// Ready once a router's view arrived.
impl runtime::http::Probe for Watcher {
    async fn ready(&self) -> Result<(), std::borrow::Cow<'static, str>> {
        if self.has_view() {
            Ok(())
        } else {
            Err("no router has answered yet".into())
        }
    }
}

async fn overview(State(watcher): State<Arc<Watcher>>) -> Response {
    json(watcher.latest().to_string())
}

async fn history(State(watcher): State<Arc<Watcher>>) -> Response {
    json(watcher.history_json())
}

async fn streams(State(watcher): State<Arc<Watcher>>) -> Response {
    json(watcher.streams_json())
}

async fn events(
    State(watcher): State<Arc<Watcher>>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let first = watcher.latest();
    let receiver = watcher.subscribe();
    let updates = futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(json) => {
                    return Some((Ok(SseEvent::default().event("overview").data(&*json)), receiver));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let stream = futures::StreamExt::chain(
        futures::stream::once(async move { Ok(SseEvent::default().event("overview").data(&*first)) }),
        updates,
    );
    Sse::new(futures::StreamExt::take_until(stream, watcher.closed())).keep_alive(KeepAlive::default())
}

/// Query of `GET /api/explain`.
#[derive(Debug, Deserialize)]
struct ExplainQuery {
    /// A router's id or URL (default: the first that answers).
    router: Option<String>,
    path: String,
    session: Option<String>,
    group: Option<String>,
    bandwidth: Option<u64>,
    /// The viewer is on https: plain-http edges cannot serve it.
    #[serde(default)]
    https: bool,
}

/// Passes the question on to a router of the fleet (never to any other
/// address: the router must be one the dashboard watches).
async fn explain(State(watcher): State<Arc<Watcher>>, Query(query): Query<ExplainQuery>) -> Response {
    let Some(router) = watcher.router_url(query.router.as_deref()) else {
        return (StatusCode::BAD_REQUEST, "unknown router\n").into_response();
    };
    let mut url = match url::Url::parse(&format!("{router}/api/v1/explain")) {
        Ok(url) => url,
        Err(error) => return (StatusCode::BAD_GATEWAY, format!("{error}\n")).into_response(),
    };
    {
        let mut pairs = url.query_pairs_mut();
        pairs.append_pair("path", &query.path);
        if let Some(session) = query.session.as_deref().filter(|s| !s.is_empty()) {
            pairs.append_pair("session", session);
        }
        if let Some(group) = query.group.as_deref().filter(|s| !s.is_empty()) {
            pairs.append_pair("group", group);
        }
        if let Some(bandwidth) = query.bandwidth {
            pairs.append_pair("bandwidth", &bandwidth.to_string());
        }
        if query.https {
            pairs.append_pair("https", "true");
        }
    }
    match watcher.client().get(url.as_str()).send().await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let body = answer.text().await.unwrap_or_default();
            let mut response = json(body);
            *response.status_mut() = status;
            if !status.is_success() {
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
            }
            response
        }
        Err(error) => (StatusCode::BAD_GATEWAY, format!("router {router}: {error}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_names_the_key() {
        let error = Config::load(Args::default()).expect_err("no router");
        assert!(error.to_string().contains("`routers`"), "{error}");
        let routers = |url: &str| RoutersArg {
            routers: vec![url.to_owned()],
        };
        let error = Config::load(Args {
            routers: routers("127.0.0.1:8080"),
            ..Args::default()
        })
        .expect_err("not a URL");
        assert!(format!("{error:#}").contains("`routers`"), "{error:#}");
        let config = Config::load(Args {
            routers: routers("http://127.0.0.1:8080/"),
            origin: Some("http://127.0.0.1:8000".into()),
            ..Args::default()
        })
        .expect("valid");
        assert_eq!(config.routers, vec!["http://127.0.0.1:8080"]);
        assert_eq!(config.listen.port(), 8090);

        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("dashboard.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:0\"\nrouters = [\"http://127.0.0.1:8080\"]\n",
        )
        .expect("write");
        let from_file = |file: &std::path::Path| Args {
            server: ServerArgs {
                config: Some(file.to_owned()),
                ..ServerArgs::default()
            },
            ..Args::default()
        };
        let config = Config::load(from_file(&file)).expect("from the file");
        assert_eq!(config.listen.port(), 0);
        std::fs::write(&file, "routerz = []\n").expect("write");
        let error = Config::load(from_file(&file)).expect_err("unknown key");
        assert!(error.to_string().contains("unknown key `routerz`"), "{error}");
    }
}
