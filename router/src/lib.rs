//! hls-cdn router: fetches playlists from the origin, rewrites every URI onto
//! a chosen edge (or back to itself, with the viewer's session), and answers
//! players; also the 302 redirector and the fleet API.
//!
//! # Layout
//!
//! - [`rewrite`]: playlist scanning into a template of byte runs and URI slots, and rendering. Pure.
//! - [`steer`]: Content Steering: the order of a viewer's pathways, and clones onto other edges. Pure.
//! - [`fleet_api`]: the fleet protocol: ads in, links, forwarding, discovery, bootstrap, `/api/v1/*` fleet views, events.
//! - [`groups`]: viewer groups by trusted header or CIDR. Pure.
//! - [`playlists`]: origin playlists fetched once (collapsed) and cached as templates.
//! - [`http`]: the axum app: rewritten playlists, `/r/` redirects, health, metrics.
//! - [`config`]: TOML + `HLSCDN_*` + flags, validated.
//! - [`metrics`]: metric names.
//! - [`error`]: the error type and its one mapping to HTTP answers.
//!
//! Edge selection, the fleet state machine, peers and scale are the pure
//! `selection` crate; the HTTP server loop, metrics recorder and secrets are
//! the `runtime` crate; reading the origin is the `origin-client` crate.

#![forbid(unsafe_code)]

pub mod config;
pub mod counted;
pub mod error;
pub mod fleet_api;
pub mod groups;
pub mod http;
pub mod metrics;
pub mod playlists;
pub mod rendered;
pub mod rewrite;
pub mod steer;

use selection::{fleet, peers, scale, select};

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use origin_client::client::OriginClient;
use router_api::session::SessionKey;
use router_api::token::KeyRing;
use runtime::server::Connections;
use selection::snapshot::{EdgeSnapshot, FleetSnapshot};

/// The fleet view of a statically configured fleet.
pub fn static_fleet(edges: &[config::EdgeConfig]) -> FleetSnapshot {
    FleetSnapshot::new(
        edges
            .iter()
            .map(|edge| EdgeSnapshot {
                capacity_bps: edge.capacity_bps,
                group: edge.group.clone(),
                ..EdgeSnapshot::new_static(edge.id.clone(), &edge.url)
            })
            .collect(),
    )
}

/// Builds the router's shared state from its configuration; `public_url` is
/// where other routers and edges reach this one.
pub fn state(config: &config::Config, public_url: &str) -> anyhow::Result<http::RouterState> {
    let client_tls = config.tls.client().map_err(anyhow::Error::msg)?;
    let origin = OriginClient::open(&config.origin, &config.origin_options, &client_tls)?;
    let mut origin_bases: Vec<String> = Vec::new();
    if let Some(base) = origin.base_url() {
        origin_bases.push(base.to_string());
    }
    let origin_public_url = config
        .origin_public_url
        .clone()
        .or_else(|| origin.base_url().map(|u| u.to_string()))
        .map(|u| u.trim_end_matches('/').to_owned());
    if let Some(public) = &origin_public_url {
        origin_bases.push(format!("{public}/"));
    }
    let limits = playlists::Limits {
        origin_timeout: config.origin_timeout,
        blocking_timeout: config.blocking_timeout,
        max_playlist_bytes: config.max_playlist_bytes,
        max_playlist_uris: config.max_playlist_uris,
        vod_cache: config.vod_cache,
        master_cache: config.master_cache,
    };
    let policy = select::Policy {
        epsilon: config.epsilon,
        sticky_max_utilization: config.sticky_max_utilization,
        pack_below_utilization: config.pack_below_utilization,
    };
    let signing = if config.signing_keys.is_empty() {
        None
    } else {
        Some(KeyRing::new(config.signing_keys.clone()).context("`signing_keys`")?)
    };
    let fleet = fleet_api::Fleet::new(fleet_api::FleetSettings {
        me: router_api::fleet::RouterInfo {
            id: format!("{:016x}", rand::random::<u64>()),
            url: public_url.to_owned(),
        },
        seeds: config.peers.clone(),
        fleet_token: config.fleet_token.clone(),
        static_edges: static_fleet(&config.edges).edges,
        policy,
        hold_down: config.hold_down,
        discovery_interval: config.discovery_interval,
        bootstrap_timeout: config.bootstrap_timeout,
        scale: config.autoscale,
        tls: client_tls,
        edge_certificates: config.tls.client_ca.is_some(),
    })?;
    let groups = groups::Groups {
        cidrs: config.groups.clone(),
        header: match &config.group_header {
            Some(name) => {
                Some(axum::http::HeaderName::from_bytes(name.as_bytes()).context("`group_header`")?)
            }
            None => None,
        },
    };
    Ok(http::RouterState {
        playlists: playlists::Playlists::new(origin, origin_bases, limits),
        fleet,
        groups,
        signing,
        sessions: SessionKey::new(config.fleet_token.expose().as_bytes()),
        token_ttl: config.token_ttl,
        session_max_age: config.session_max_age,
        no_edge: config.no_edge,
        origin_public_url,
        segment_urls: config.segment_urls,
        pathways: config.pathways,
        steering_ttl: config.steering_ttl,
        known_media: http::known_media(),
        counted: http::counted(),
        answers: metrics::Answers::default(),
    })
}

/// Runs the router with `config` until `shutdown` resolves.
pub async fn run(
    config: config::Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tls = config.tls.server().map_err(anyhow::Error::msg)?;
    let listener = runtime::server::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let public_url = match &config.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("{}://{}", config.tls.scheme(), listener.local_addr()?),
    };
    let state = Arc::new(state(&config, &public_url)?);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    state.fleet.start(stop_rx);
    tracing::info!(
        origin = %runtime::secret::redact_url(&config.origin),
        public_url = %public_url,
        id = %state.fleet.me().id,
        peers = config.peers.len(),
        edges = config.edges.len(),
        "router starting"
    );
    // The fleet loops and edge links stop when shutdown starts, so the
    // bounded drain does not wait for links that never end by themselves.
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    runtime::server::serve(
        listener,
        tls,
        http::service(state),
        Connections::default(),
        shutdown,
    )
    .await
    .context("serving")
}
