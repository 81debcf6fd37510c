//! `hlscdn-router` configuration: a TOML file (`--config`), overridden by
//! `HLSCDN_*` environment variables, overridden by flags; validated at start
//! with messages that name the key.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! origin = "http://127.0.0.1:8000"
//! fleet_token = "change-me-please"
//! signing_keys = ["k1:0123456789abcdef0123"]
//! no_edge = "origin"            # or "unavailable" (503 + Retry-After)
//! epsilon = 0.25
//! pack_below_utilization = 0.1  # streams stay on their first edge below this
//! segment_urls = "direct"       # or "redirect" (/r/ on the router, a 302 per segment)
//! pathways = 3                  # Content Steering pathways (edges) per viewer, 0 to 4
//! steering_ttl_secs = 2         # how often players ask for a new pathway order
//!
//! peers = ["http://127.0.0.1:8081"]   # other routers to start from
//! hold_down_ms = 3000           # a comeback stays fresh this long before new viewers
//! group_header = "x-viewer-group"
//!
//! [autoscale]                   # GET /api/v1/scale, hlscdn_router_desired_edges
//! target_utilization = 0.6
//! min_edges = 1
//! max_edges = 20
//! cooldown_secs = 60
//!
//! [groups]                      # viewer groups by address (longest prefix wins)
//! "10.0.0.0/8" = "eu"
//!
//! [[edges]]                     # edges that never heartbeat (always fresh)
//! id = "edge-1"
//! url = "http://127.0.0.1:9001"
//! capacity_bps = 10_000_000_000
//! group = "eu"
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use router_api::token::SigningKey;
use runtime::secret::Secret;
use serde::Deserialize;

use crate::error::ConfigError;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default capacity of an edge with none configured: 1 Gbit/s.
pub const DEFAULT_EDGE_CAPACITY_BPS: u64 = 1_000_000_000;
/// Default timeout of an ordinary origin request.
pub const DEFAULT_ORIGIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Default timeout of a blocking playlist reload (`_HLS_msn`): above 3 × a 6 s target duration.
pub const DEFAULT_BLOCKING_TIMEOUT: Duration = Duration::from_secs(20);
/// Default largest playlist accepted from the origin: 8 MiB.
pub const DEFAULT_MAX_PLAYLIST_BYTES: u64 = 8 * 1024 * 1024;
/// Default largest number of URIs in a playlist from the origin: 200 000
/// (a day of 1 s segments with room for keys and maps). Each URI costs the
/// template about 150 bytes and every rewritten copy about 200.
pub const DEFAULT_MAX_PLAYLIST_URIS: usize = 200_000;
/// Default lifetime of signed segment URLs.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(6 * 3600);
/// Default lifetime of a viewer session.
pub const DEFAULT_SESSION_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Default cache lifetime of VOD playlists.
pub const DEFAULT_VOD_TTL: Duration = Duration::from_secs(600);
/// Default cache lifetime of multivariant playlists.
pub const DEFAULT_MASTER_TTL: Duration = Duration::from_secs(5);
/// Default hold-down of an edge that comes back from stale.
pub const DEFAULT_HOLD_DOWN: Duration = Duration::from_secs(3);
/// Default interval of discovery rounds.
pub const DEFAULT_DISCOVERY_INTERVAL: Duration = Duration::from_secs(2);
/// Default longest wait for a peer's fleet view at start.
pub const DEFAULT_BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(5);
/// Default bounded-load ε.
pub const DEFAULT_EPSILON: f64 = 0.25;

/// What to do when no edge can take a viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum NoEdge {
    /// Point media URIs at the origin's public URL.
    Origin,
    /// Answer 503 with `Retry-After`.
    Unavailable,
}

/// Where media URIs of rewritten playlists point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SegmentUrls {
    /// At the viewer's edge; viewers move by Content Steering pathways.
    Direct,
    /// At the router's `/r/`, answered with a 302 to the edge chosen at fetch time.
    Redirect,
}

/// Default number of Content Steering pathways offered per viewer.
pub const DEFAULT_PATHWAYS: usize = 3;
/// Most pathways a viewer is offered (the steering ticket's bound).
pub const MAX_PATHWAYS: usize = router_api::session::MAX_PATHWAYS;
/// Default `TTL` of steering manifests.
pub const DEFAULT_STEERING_TTL: Duration = Duration::from_secs(2);

/// Command line of `hlscdn-router`. Every flag also reads an `HLSCDN_*`
/// variable; flags win over variables, which win over the file.
#[derive(Debug, Parser)]
#[command(
    name = "hlscdn-router",
    version,
    about = "hls-cdn router: rewrites playlists onto edges"
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "HLSCDN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "HLSCDN_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Origin URL: http(s)://host[/prefix] or any object store URL (file://, s3://, ...).
    #[arg(long, env = "HLSCDN_ORIGIN")]
    pub origin: Option<String>,
    /// Public URL of the origin, for media URIs when no edge can take a viewer
    /// (default: the origin URL when it is http(s)).
    #[arg(long, env = "HLSCDN_ORIGIN_PUBLIC_URL")]
    pub origin_public_url: Option<String>,
    /// Shared secret of the fleet (ads, router-to-router calls, sessions).
    #[arg(long, env = "HLSCDN_FLEET_TOKEN", hide_env_values = true)]
    pub fleet_token: Option<Secret>,
    /// URL other routers and edges reach this router at (default: http://LISTEN).
    #[arg(long, env = "HLSCDN_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// A router of the fleet to start from; repeatable.
    #[arg(
        long = "peer",
        value_name = "URL",
        env = "HLSCDN_PEERS",
        value_delimiter = ','
    )]
    pub peers: Vec<String>,
    /// An edge of a static fleet, ID=URL; repeatable.
    #[arg(long = "edge", value_name = "ID=URL")]
    pub edges: Vec<String>,
    /// Segment URL signing key KID:SECRET; repeatable, the first signs, all verify.
    #[arg(
        long = "signing-key",
        value_name = "KID:SECRET",
        env = "HLSCDN_SIGNING_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub signing_keys: Vec<Secret>,
    /// What to do when no edge can take a viewer.
    #[arg(long, env = "HLSCDN_NO_EDGE", value_enum)]
    pub no_edge: Option<NoEdge>,
    /// Bounded-load ε: an edge takes new viewers while under (1 + ε) × the fleet's average utilization.
    #[arg(long, env = "HLSCDN_EPSILON")]
    pub epsilon: Option<f64>,
    /// Where segment URIs point: `direct` (the edge, with Content Steering
    /// pathways) or `redirect` (the router's /r/, a 302 per segment).
    #[arg(long, env = "HLSCDN_SEGMENT_URLS", value_enum)]
    pub segment_urls: Option<SegmentUrls>,
    /// Content Steering pathways (edges) offered to each viewer, 1 to 4; 0 turns steering off.
    #[arg(long, env = "HLSCDN_PATHWAYS")]
    pub pathways: Option<usize>,
    /// TTL of steering manifests, seconds: how often players ask for a new order.
    #[arg(long, env = "HLSCDN_STEERING_TTL")]
    pub steering_ttl: Option<u64>,
}

/// One edge of a static fleet, in the file form.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Edge id.
    pub id: String,
    /// Public base URL players fetch segments from.
    pub url: String,
    /// Egress capacity in bits per second.
    #[serde(default = "default_capacity")]
    pub capacity_bps: u64,
    /// Viewer group (e.g. a region).
    #[serde(default)]
    pub group: Option<String>,
}

fn default_capacity() -> u64 {
    DEFAULT_EDGE_CAPACITY_BPS
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    origin: Option<String>,
    origin_public_url: Option<String>,
    #[serde(default)]
    origin_options: std::collections::BTreeMap<String, String>,
    fleet_token: Option<Secret>,
    public_url: Option<String>,
    #[serde(default)]
    peers: Vec<String>,
    #[serde(default)]
    edges: Vec<EdgeConfig>,
    #[serde(default)]
    groups: std::collections::BTreeMap<String, String>,
    group_header: Option<String>,
    hold_down_ms: Option<u64>,
    #[serde(default)]
    autoscale: AutoscaleFile,
    discovery_interval_ms: Option<u64>,
    bootstrap_timeout_ms: Option<u64>,
    #[serde(default)]
    signing_keys: Vec<Secret>,
    no_edge: Option<NoEdge>,
    epsilon: Option<f64>,
    sticky_max_utilization: Option<f64>,
    pack_below_utilization: Option<f64>,
    origin_timeout_ms: Option<u64>,
    blocking_timeout_ms: Option<u64>,
    max_playlist_bytes: Option<u64>,
    max_playlist_uris: Option<usize>,
    token_ttl_secs: Option<u64>,
    session_max_age_secs: Option<u64>,
    vod_cache_secs: Option<u64>,
    master_cache_secs: Option<u64>,
    segment_urls: Option<SegmentUrls>,
    pathways: Option<usize>,
    steering_ttl_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AutoscaleFile {
    target_utilization: Option<f64>,
    min_edges: Option<u32>,
    max_edges: Option<u32>,
    cooldown_secs: Option<u64>,
}

/// The validated configuration the router runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Origin URL.
    pub origin: String,
    /// Store builder options for a non-HTTP origin.
    pub origin_options: Vec<(String, String)>,
    /// Public base URL of the origin for the no-edge fallback.
    pub origin_public_url: Option<String>,
    /// Fleet secret.
    pub fleet_token: Secret,
    /// URL other routers and edges reach this router at (`None`: http:// + the bound address).
    pub public_url: Option<String>,
    /// Seed routers.
    pub peers: Vec<String>,
    /// Static edges.
    pub edges: Vec<EdgeConfig>,
    /// Viewer groups by CIDR block.
    pub groups: Vec<(crate::groups::Cidr, String)>,
    /// A trusted header naming the viewer's group.
    pub group_header: Option<String>,
    /// Hold-down of an edge that comes back from stale.
    pub hold_down: Duration,
    /// Interval of discovery rounds.
    pub discovery_interval: Duration,
    /// Longest wait for a peer's fleet view at start.
    pub bootstrap_timeout: Duration,
    /// Autoscaling targets.
    pub autoscale: crate::scale::ScalePolicy,
    /// Segment signing keys; empty: URLs are not signed.
    pub signing_keys: Vec<SigningKey>,
    /// No-edge behaviour.
    pub no_edge: NoEdge,
    /// Bounded-load ε.
    pub epsilon: f64,
    /// Utilization above which a sticky viewer is moved.
    pub sticky_max_utilization: f64,
    /// Utilization under which an edge takes a stream's viewers whatever the average.
    pub pack_below_utilization: f64,
    /// Timeout of ordinary origin requests.
    pub origin_timeout: Duration,
    /// Timeout of blocking playlist reloads.
    pub blocking_timeout: Duration,
    /// Largest playlist accepted from the origin.
    pub max_playlist_bytes: u64,
    /// Most URIs a playlist from the origin may hold.
    pub max_playlist_uris: usize,
    /// Lifetime of signed segment URLs.
    pub token_ttl: Duration,
    /// Lifetime of a viewer session.
    pub session_max_age: Duration,
    /// Cache lifetime of VOD playlists.
    pub vod_cache: Duration,
    /// Cache lifetime of multivariant playlists.
    pub master_cache: Duration,
    /// Where segment URIs point.
    pub segment_urls: SegmentUrls,
    /// Content Steering pathways per viewer (0: off).
    pub pathways: usize,
    /// TTL of steering manifests.
    pub steering_ttl: Duration,
}

impl Config {
    /// Reads the file named by `--config` (if any) and applies the command line over it.
    pub fn load(cli: Cli) -> Result<Self, ConfigError> {
        let file = runtime::config::read_toml(cli.config.as_deref()).map_err(ConfigError)?;
        Self::merge(cli, file)
    }

    fn merge(cli: Cli, file: FileConfig) -> Result<Self, ConfigError> {
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        let secs = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_secs);
        let mut edges = file.edges;
        for spec in &cli.edges {
            let (id, url) = spec
                .split_once('=')
                .ok_or_else(|| ConfigError(format!("`edge` {spec:?} is not ID=URL")))?;
            edges.push(EdgeConfig {
                id: id.to_owned(),
                url: url.to_owned(),
                capacity_bps: DEFAULT_EDGE_CAPACITY_BPS,
                group: None,
            });
        }
        let listen = match cli.listen.or(file.listen) {
            Some(addr) => addr,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|e| ConfigError(format!("default `listen`: {e}")))?,
        };
        let groups = file
            .groups
            .iter()
            .map(|(cidr, group)| {
                cidr.parse()
                    .map(|c| (c, group.clone()))
                    .map_err(|e| ConfigError(format!("`groups`: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut peers = file.peers;
        peers.extend(cli.peers);
        let key_specs = if cli.signing_keys.is_empty() {
            file.signing_keys
        } else {
            cli.signing_keys
        };
        let signing_keys = key_specs
            .iter()
            .map(|spec| {
                spec.expose()
                    .parse()
                    .map_err(|e| ConfigError(format!("`signing_keys`: {e}")))
            })
            .collect::<Result<Vec<SigningKey>, _>>()?;
        let config = Self {
            listen,
            public_url: cli.public_url.or(file.public_url),
            peers,
            groups,
            group_header: file.group_header,
            hold_down: ms(file.hold_down_ms, DEFAULT_HOLD_DOWN),
            discovery_interval: ms(file.discovery_interval_ms, DEFAULT_DISCOVERY_INTERVAL),
            bootstrap_timeout: ms(file.bootstrap_timeout_ms, DEFAULT_BOOTSTRAP_TIMEOUT),
            autoscale: {
                let d = crate::scale::ScalePolicy::default();
                crate::scale::ScalePolicy {
                    target_utilization: file.autoscale.target_utilization.unwrap_or(d.target_utilization),
                    min_edges: file.autoscale.min_edges.unwrap_or(d.min_edges),
                    max_edges: file.autoscale.max_edges.unwrap_or(d.max_edges),
                    cooldown: file
                        .autoscale
                        .cooldown_secs
                        .map_or(d.cooldown, Duration::from_secs),
                }
            },
            origin: cli
                .origin
                .or(file.origin)
                .ok_or_else(|| ConfigError("`origin` is required".into()))?,
            origin_options: file.origin_options.into_iter().collect(),
            origin_public_url: cli.origin_public_url.or(file.origin_public_url),
            fleet_token: cli
                .fleet_token
                .or(file.fleet_token)
                .ok_or_else(|| ConfigError("`fleet_token` is required".into()))?,
            edges,
            signing_keys,
            no_edge: cli.no_edge.or(file.no_edge).unwrap_or(NoEdge::Origin),
            epsilon: cli.epsilon.or(file.epsilon).unwrap_or(DEFAULT_EPSILON),
            sticky_max_utilization: file.sticky_max_utilization.unwrap_or(0.95),
            pack_below_utilization: file
                .pack_below_utilization
                .unwrap_or(crate::select::DEFAULT_PACK_BELOW_UTILIZATION),
            origin_timeout: ms(file.origin_timeout_ms, DEFAULT_ORIGIN_TIMEOUT),
            blocking_timeout: ms(file.blocking_timeout_ms, DEFAULT_BLOCKING_TIMEOUT),
            max_playlist_bytes: file.max_playlist_bytes.unwrap_or(DEFAULT_MAX_PLAYLIST_BYTES),
            max_playlist_uris: file.max_playlist_uris.unwrap_or(DEFAULT_MAX_PLAYLIST_URIS),
            token_ttl: secs(file.token_ttl_secs, DEFAULT_TOKEN_TTL),
            session_max_age: secs(file.session_max_age_secs, DEFAULT_SESSION_MAX_AGE),
            segment_urls: cli
                .segment_urls
                .or(file.segment_urls)
                .unwrap_or(SegmentUrls::Direct),
            pathways: cli.pathways.or(file.pathways).unwrap_or(DEFAULT_PATHWAYS),
            steering_ttl: secs(cli.steering_ttl.or(file.steering_ttl_secs), DEFAULT_STEERING_TTL),
            vod_cache: secs(file.vod_cache_secs, DEFAULT_VOD_TTL),
            master_cache: secs(file.master_cache_secs, DEFAULT_MASTER_TTL),
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks every value, naming the key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |msg: &str| Err(ConfigError(msg.to_owned()));
        if self.fleet_token.expose().len() < 16 {
            return fail("`fleet_token` must be at least 16 characters");
        }
        if !(self.epsilon > 0.0 && self.epsilon <= 10.0) {
            return fail("`epsilon` must be in (0, 10]");
        }
        if !(self.sticky_max_utilization > 0.0 && self.sticky_max_utilization <= 1.0) {
            return fail("`sticky_max_utilization` must be in (0, 1]");
        }
        if !(0.0..=1.0).contains(&self.pack_below_utilization) {
            return fail("`pack_below_utilization` must be within 0 and 1");
        }
        if self.max_playlist_bytes == 0 {
            return fail("`max_playlist_bytes` must be > 0");
        }
        if self.max_playlist_uris == 0 {
            return fail("`max_playlist_uris` must be > 0");
        }
        if self.origin_timeout.is_zero() || self.blocking_timeout < self.origin_timeout {
            return fail("`origin_timeout_ms` must be > 0 and `blocking_timeout_ms` at least as long");
        }
        if self.token_ttl < Duration::from_secs(60) {
            return fail("`token_ttl_secs` must be at least 60");
        }
        if self.pathways > MAX_PATHWAYS {
            return Err(ConfigError(format!(
                "`pathways` must be at most {MAX_PATHWAYS} (0 turns steering off)"
            )));
        }
        if self.steering_ttl.is_zero() || self.steering_ttl > Duration::from_secs(300) {
            return fail("`steering_ttl_secs` must be within 1 and 300");
        }
        for url in self.public_url.iter().chain(&self.peers) {
            let parsed = url::Url::parse(url)
                .map_err(|e| ConfigError(format!("`public_url`/`peers` {url:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() {
                return Err(ConfigError(format!(
                    "`public_url`/`peers` {url:?} must be http(s) without a query"
                )));
            }
        }
        let a = &self.autoscale;
        if !(a.target_utilization > 0.0 && a.target_utilization <= 1.0) {
            return fail("`autoscale.target_utilization` must be in (0, 1]");
        }
        if a.max_edges == 0 || a.min_edges > a.max_edges {
            return fail("`autoscale.max_edges` must be > 0 and at least `autoscale.min_edges`");
        }
        if self.discovery_interval < Duration::from_millis(100) {
            return fail("`discovery_interval_ms` must be at least 100");
        }
        if let Some(name) = &self.group_header
            && axum::http::HeaderName::from_bytes(name.as_bytes()).is_err()
        {
            return Err(ConfigError(format!(
                "`group_header` {name:?} is not a header name"
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for edge in &self.edges {
            if !seen.insert(edge.id.as_str()) {
                return Err(ConfigError(format!("`edges`: id {:?} appears twice", edge.id)));
            }
            if edge.capacity_bps == 0 {
                return Err(ConfigError(format!(
                    "`edges.capacity_bps` of {:?} must be > 0",
                    edge.id
                )));
            }
            let url = url::Url::parse(&edge.url)
                .map_err(|e| ConfigError(format!("`edges.url` of {:?}: {e}", edge.id)))?;
            if !matches!(url.scheme(), "http" | "https") || url.query().is_some() {
                return Err(ConfigError(format!(
                    "`edges.url` of {:?} must be http(s) without a query",
                    edge.id
                )));
            }
        }
        if self.no_edge == NoEdge::Origin
            && self.origin_public_url.is_none()
            && !(self.origin.starts_with("http://") || self.origin.starts_with("https://"))
        {
            return fail("`origin_public_url` is required with `no_edge = \"origin\"` and a non-HTTP origin");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_fleet_token_or_keys() {
        let cli = Cli::parse_from([
            "hlscdn-router",
            "--origin",
            "http://127.0.0.1:9",
            "--fleet-token",
            "fleet-secret-debug-0123",
            "--signing-key",
            "k1:signing-secret-debug-0123",
        ]);
        let shown = format!("{cli:?}");
        assert!(!shown.contains("secret-debug"), "{shown}");
        let config = Config::merge(cli, FileConfig::default()).expect("valid");
        assert_eq!(config.fleet_token.expose(), "fleet-secret-debug-0123");
        assert_eq!(config.signing_keys.len(), 1);
        let shown = format!("{config:?}");
        assert!(!shown.contains("secret-debug"), "{shown}");
        let file: FileConfig = toml::from_str(
            "fleet_token = \"fleet-secret-debug-0123\"\nsigning_keys = [\"k1:signing-secret-debug-0123\"]",
        )
        .expect("toml");
        assert!(!format!("{file:?}").contains("secret-debug"));
        let state = crate::state(&config, "http://127.0.0.1:8080").expect("state");
        let shown = format!("{state:?}");
        assert!(!shown.contains("secret-debug"), "{shown}");
    }
}
