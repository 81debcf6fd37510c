//! `hlscdn-router` configuration: a TOML file (`--config`), overridden by
//! `HLSCDN_*` environment variables, overridden by flags
//! ([`runtime::config`]); validated at start with messages that name the
//! key. Every key is also a flag (`steering_ttl` is `--steering-ttl` and
//! `HLSCDN_STEERING_TTL`, `[autoscale] cooldown` is `--autoscale-cooldown`);
//! durations are human-readable.
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
//! steering_ttl = "2s"           # how often players ask for a new pathway order
//!
//! peers = ["http://127.0.0.1:8081"]   # other routers to start from
//! hold_down = "3s"              # a comeback stays fresh this long before new viewers
//! group_header = "x-viewer-group"
//!
//! [origin_options]              # builder keys of a non-HTTP origin store
//! aws_region = "eu-west-1"
//!
//! [autoscale]                   # GET /api/v1/scale, hlscdn_router_desired_edges
//! target_utilization = 0.6
//! min_edges = 1
//! max_edges = 20
//! cooldown = "60s"
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
use std::time::Duration;

use clap::Parser;
use router_api::token::SigningKey;
use runtime::config::{
    FleetTokenArg, OriginArgs, ServerArgs, duration, expose_secrets, key_values, parse_duration,
};
use runtime::secret::Secret;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::ConfigError;
use crate::groups::Cidr;
use crate::scale::ScalePolicy;

/// Default listen address.
pub const DEFAULT_LISTEN: SocketAddr = runtime::config::loopback(8080);
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
/// Default utilization above which a sticky viewer is moved.
pub const DEFAULT_STICKY_MAX_UTILIZATION: f64 = 0.95;

/// What to do when no edge can take a viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum NoEdge {
    /// Point media URIs at the origin's public URL.
    Origin,
    /// Answer 503 with `Retry-After`.
    Unavailable,
}

/// Where media URIs of rewritten playlists point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
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

/// Command line of `hlscdn-router`: every key of the file, each flag also
/// read from its `HLSCDN_*` variable; flags win over variables, which win
/// over the file.
#[derive(Debug, Parser, Serialize)]
#[command(
    name = "hlscdn-router",
    version,
    about = "hls-cdn router: rewrites playlists onto edges"
)]
pub struct Cli {
    #[command(flatten)]
    #[serde(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub fleet: FleetTokenArg,
    #[command(flatten)]
    #[serde(flatten)]
    pub origin: OriginArgs,
    /// Public URL of the origin, for media URIs when no edge can take a viewer
    /// (default: the origin URL when it is http(s)).
    #[arg(long, env = "HLSCDN_ORIGIN_PUBLIC_URL", value_name = "URL")]
    pub origin_public_url: Option<String>,
    /// URL other routers and edges reach this router at (default: http://LISTEN).
    #[arg(long, env = "HLSCDN_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// A router of the fleet to start from; repeatable.
    #[arg(
        long = "peer",
        value_name = "URL",
        env = "HLSCDN_PEERS",
        value_delimiter = ','
    )]
    pub peers: Vec<String>,
    /// An edge of a static fleet, ID=URL (1 Gbit/s; the file's `[[edges]]` take more); repeatable.
    #[arg(
        long = "edge",
        value_name = "ID=URL",
        env = "HLSCDN_EDGES",
        value_delimiter = ',',
        value_parser = parse_edge
    )]
    pub edges: Vec<EdgeConfig>,
    /// A viewer group by address, CIDR=GROUP (longest prefix wins); repeatable.
    #[arg(
        long = "group",
        value_name = "CIDR=GROUP",
        env = "HLSCDN_GROUPS",
        value_delimiter = ',',
        value_parser = runtime::config::parse_key_value
    )]
    #[serde(with = "key_values")]
    pub groups: Vec<(String, String)>,
    /// A trusted request header naming the viewer's group (it wins over `--group`).
    #[arg(long, env = "HLSCDN_GROUP_HEADER", value_name = "NAME")]
    pub group_header: Option<String>,
    /// How long an edge that comes back from stale waits before new viewers.
    #[arg(long, env = "HLSCDN_HOLD_DOWN", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub hold_down: Option<Duration>,
    /// Interval of discovery rounds (asking peers for the routers they know).
    #[arg(long, env = "HLSCDN_DISCOVERY_INTERVAL", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub discovery_interval: Option<Duration>,
    /// Longest wait for a peer's fleet view at start.
    #[arg(long, env = "HLSCDN_BOOTSTRAP_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub bootstrap_timeout: Option<Duration>,
    #[command(flatten)]
    pub autoscale: AutoscaleArgs,
    /// Segment URL signing key KID:SECRET; repeatable, the first signs, all verify.
    #[arg(
        long = "signing-key",
        value_name = "KID:SECRET",
        env = "HLSCDN_SIGNING_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    #[serde(serialize_with = "expose_secrets")]
    pub signing_keys: Vec<Secret>,
    /// What to do when no edge can take a viewer.
    #[arg(long, env = "HLSCDN_NO_EDGE", value_enum)]
    pub no_edge: Option<NoEdge>,
    /// Bounded-load ε: an edge takes new viewers while under (1 + ε) × the fleet's average utilization.
    #[arg(long, env = "HLSCDN_EPSILON")]
    pub epsilon: Option<f64>,
    /// Utilization above which a sticky viewer is moved, (0, 1].
    #[arg(long, env = "HLSCDN_STICKY_MAX_UTILIZATION")]
    pub sticky_max_utilization: Option<f64>,
    /// Utilization under which an edge takes a stream's viewers whatever the average, 0 to 1.
    #[arg(long, env = "HLSCDN_PACK_BELOW_UTILIZATION")]
    pub pack_below_utilization: Option<f64>,
    /// Timeout of ordinary origin requests.
    #[arg(long, env = "HLSCDN_ORIGIN_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub origin_timeout: Option<Duration>,
    /// Timeout of blocking playlist reloads (`_HLS_msn`), at least `--origin-timeout`.
    #[arg(long, env = "HLSCDN_BLOCKING_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub blocking_timeout: Option<Duration>,
    /// Largest playlist accepted from the origin, bytes.
    #[arg(long, env = "HLSCDN_MAX_PLAYLIST_BYTES")]
    pub max_playlist_bytes: Option<u64>,
    /// Most URIs a playlist from the origin may hold.
    #[arg(long, env = "HLSCDN_MAX_PLAYLIST_URIS")]
    pub max_playlist_uris: Option<usize>,
    /// Lifetime of signed segment URLs, at least 60s.
    #[arg(long, env = "HLSCDN_TOKEN_TTL", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub token_ttl: Option<Duration>,
    /// Lifetime of a viewer session.
    #[arg(long, env = "HLSCDN_SESSION_MAX_AGE", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub session_max_age: Option<Duration>,
    /// Cache lifetime of VOD playlists.
    #[arg(long, env = "HLSCDN_VOD_CACHE", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub vod_cache: Option<Duration>,
    /// Cache lifetime of multivariant playlists.
    #[arg(long, env = "HLSCDN_MASTER_CACHE", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub master_cache: Option<Duration>,
    /// Where segment URIs point: `direct` (the edge, with Content Steering
    /// pathways) or `redirect` (the router's /r/, a 302 per segment).
    #[arg(long, env = "HLSCDN_SEGMENT_URLS", value_enum)]
    pub segment_urls: Option<SegmentUrls>,
    /// Content Steering pathways (edges) offered to each viewer, 1 to 4; 0 turns steering off.
    #[arg(long, env = "HLSCDN_PATHWAYS")]
    pub pathways: Option<usize>,
    /// TTL of steering manifests (1s to 300s): how often players ask for a new order.
    #[arg(long, env = "HLSCDN_STEERING_TTL", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub steering_ttl: Option<Duration>,
}

/// The `[autoscale]` keys as flags (`--autoscale-cooldown`): the figures of
/// `GET /api/v1/scale`.
#[derive(Debug, Default, clap::Args, Serialize)]
pub struct AutoscaleArgs {
    /// Utilization the fleet should run at, (0, 1].
    #[arg(
        long = "autoscale-target-utilization",
        env = "HLSCDN_AUTOSCALE_TARGET_UTILIZATION"
    )]
    pub target_utilization: Option<f64>,
    /// Fewest edges.
    #[arg(long = "autoscale-min-edges", env = "HLSCDN_AUTOSCALE_MIN_EDGES")]
    pub min_edges: Option<u32>,
    /// Most edges.
    #[arg(long = "autoscale-max-edges", env = "HLSCDN_AUTOSCALE_MAX_EDGES")]
    pub max_edges: Option<u32>,
    /// How long a lower count must hold before scaling down.
    #[arg(
        long = "autoscale-cooldown",
        env = "HLSCDN_AUTOSCALE_COOLDOWN",
        value_name = "DURATION",
        value_parser = parse_duration
    )]
    #[serde(with = "duration::option")]
    pub cooldown: Option<Duration>,
}

/// One edge of a static fleet: `--edge ID=URL`, or `[[edges]]` in the file.
#[derive(Debug, Clone, Deserialize, Serialize)]
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

/// `--edge ID=URL`.
fn parse_edge(spec: &str) -> Result<EdgeConfig, String> {
    let (id, url) = runtime::config::parse_key_value(spec)?;
    Ok(EdgeConfig {
        id,
        url,
        capacity_bps: DEFAULT_EDGE_CAPACITY_BPS,
        group: None,
    })
}

/// The validated configuration the router runs with; every field is the
/// key of the same name.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Origin URL.
    pub origin: String,
    /// Store builder options for a non-HTTP origin.
    #[serde(with = "key_values")]
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
    #[serde(deserialize_with = "groups")]
    pub groups: Vec<(Cidr, String)>,
    /// A trusted header naming the viewer's group.
    pub group_header: Option<String>,
    /// Hold-down of an edge that comes back from stale.
    #[serde(with = "duration")]
    pub hold_down: Duration,
    /// Interval of discovery rounds.
    #[serde(with = "duration")]
    pub discovery_interval: Duration,
    /// Longest wait for a peer's fleet view at start.
    #[serde(with = "duration")]
    pub bootstrap_timeout: Duration,
    /// Autoscaling targets.
    #[serde(deserialize_with = "autoscale")]
    pub autoscale: ScalePolicy,
    /// Segment signing keys; empty: URLs are not signed.
    #[serde(deserialize_with = "signing_keys")]
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
    #[serde(with = "duration")]
    pub origin_timeout: Duration,
    /// Timeout of blocking playlist reloads.
    #[serde(with = "duration")]
    pub blocking_timeout: Duration,
    /// Largest playlist accepted from the origin.
    pub max_playlist_bytes: u64,
    /// Most URIs a playlist from the origin may hold.
    pub max_playlist_uris: usize,
    /// Lifetime of signed segment URLs.
    #[serde(with = "duration")]
    pub token_ttl: Duration,
    /// Lifetime of a viewer session.
    #[serde(with = "duration")]
    pub session_max_age: Duration,
    /// Cache lifetime of VOD playlists.
    #[serde(with = "duration")]
    pub vod_cache: Duration,
    /// Cache lifetime of multivariant playlists.
    #[serde(with = "duration")]
    pub master_cache: Duration,
    /// Where segment URIs point.
    pub segment_urls: SegmentUrls,
    /// Content Steering pathways per viewer (0: off).
    pub pathways: usize,
    /// TTL of steering manifests.
    #[serde(with = "duration")]
    pub steering_ttl: Duration,
    /// HTTPS served, and how calls to the origin and peers verify.
    pub tls: runtime::tls::TlsConfig,
}

impl Default for Config {
    /// Every default; `origin` and `fleet_token` have none (empty: required).
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            origin: String::new(),
            origin_options: Vec::new(),
            origin_public_url: None,
            fleet_token: Secret::default(),
            public_url: None,
            peers: Vec::new(),
            edges: Vec::new(),
            groups: Vec::new(),
            group_header: None,
            hold_down: DEFAULT_HOLD_DOWN,
            discovery_interval: DEFAULT_DISCOVERY_INTERVAL,
            bootstrap_timeout: DEFAULT_BOOTSTRAP_TIMEOUT,
            autoscale: ScalePolicy::default(),
            signing_keys: Vec::new(),
            no_edge: NoEdge::Origin,
            epsilon: DEFAULT_EPSILON,
            sticky_max_utilization: DEFAULT_STICKY_MAX_UTILIZATION,
            pack_below_utilization: crate::select::DEFAULT_PACK_BELOW_UTILIZATION,
            origin_timeout: DEFAULT_ORIGIN_TIMEOUT,
            blocking_timeout: DEFAULT_BLOCKING_TIMEOUT,
            max_playlist_bytes: DEFAULT_MAX_PLAYLIST_BYTES,
            max_playlist_uris: DEFAULT_MAX_PLAYLIST_URIS,
            token_ttl: DEFAULT_TOKEN_TTL,
            session_max_age: DEFAULT_SESSION_MAX_AGE,
            vod_cache: DEFAULT_VOD_TTL,
            master_cache: DEFAULT_MASTER_TTL,
            segment_urls: SegmentUrls::Direct,
            pathways: DEFAULT_PATHWAYS,
            steering_ttl: DEFAULT_STEERING_TTL,
            tls: runtime::tls::TlsConfig::default(),
        }
    }
}

/// `[groups]`: CIDR block = group.
fn groups<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<(Cidr, String)>, D::Error> {
    key_values::deserialize(deserializer)?
        .into_iter()
        .map(|(cidr, group)| {
            cidr.parse()
                .map(|c| (c, group))
                .map_err(|e| serde::de::Error::custom(format!("`groups`: {e}")))
        })
        .collect()
}

/// `signing_keys`: KID:SECRET each.
fn signing_keys<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<SigningKey>, D::Error> {
    Vec::<Secret>::deserialize(deserializer)?
        .iter()
        .map(|spec| {
            spec.expose()
                .parse()
                .map_err(|e| serde::de::Error::custom(format!("`signing_keys`: {e}")))
        })
        .collect()
}

/// `[autoscale]`, each key defaulting to [`ScalePolicy::default`]'s.
fn autoscale<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ScalePolicy, D::Error> {
    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Autoscale {
        target_utilization: f64,
        min_edges: u32,
        max_edges: u32,
        #[serde(with = "duration")]
        cooldown: Duration,
    }
    impl Default for Autoscale {
        fn default() -> Self {
            let d = ScalePolicy::default();
            Self {
                target_utilization: d.target_utilization,
                min_edges: d.min_edges,
                max_edges: d.max_edges,
                cooldown: d.cooldown,
            }
        }
    }
    let a = Autoscale::deserialize(deserializer)?;
    Ok(ScalePolicy {
        target_utilization: a.target_utilization,
        min_edges: a.min_edges,
        max_edges: a.max_edges,
        cooldown: a.cooldown,
    })
}

impl Config {
    /// Reads the file named by `--config` (if any), lays the flags and
    /// `HLSCDN_*` variables over it, and validates the result.
    pub fn load(cli: Cli) -> Result<Self, ConfigError> {
        let config: Self = runtime::config::load(cli.server.config.as_deref(), &cli).map_err(ConfigError)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value, naming the key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |msg: &str| Err(ConfigError(msg.to_owned()));
        self.tls.server().map_err(ConfigError)?;
        self.tls.client().map_err(ConfigError)?;
        if self.origin.is_empty() {
            return fail("`origin` is required");
        }
        if self.fleet_token.expose().is_empty() {
            return fail("`fleet_token` is required");
        }
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
            return fail("`origin_timeout` must be > 0 and `blocking_timeout` at least as long");
        }
        if self.token_ttl < Duration::from_secs(60) {
            return fail("`token_ttl` must be at least 60s");
        }
        if self.pathways > MAX_PATHWAYS {
            return Err(ConfigError(format!(
                "`pathways` must be at most {MAX_PATHWAYS} (0 turns steering off)"
            )));
        }
        if self.steering_ttl.is_zero() || self.steering_ttl > Duration::from_secs(300) {
            return fail("`steering_ttl` must be within 1s and 300s");
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
            return fail("`discovery_interval` must be at least 100ms");
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

    fn load(args: &[&str], file: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("router.toml");
        std::fs::write(&path, file).expect("write");
        let config = path.to_str().expect("utf-8");
        let base = ["hlscdn-router", "--config", config];
        Config::load(Cli::parse_from(base.iter().chain(args)))
    }

    const BASE: &str = "origin = \"http://127.0.0.1:9\"\nfleet_token = \"fleet-token-0123456789\"\n";

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
        let config = Config::load(cli).expect("valid");
        assert_eq!(config.fleet_token.expose(), "fleet-secret-debug-0123");
        assert_eq!(config.signing_keys.len(), 1);
        let shown = format!("{config:?}");
        assert!(!shown.contains("secret-debug"), "{shown}");
        let config = load(
            &["--origin", "http://127.0.0.1:9"],
            "fleet_token = \"fleet-secret-debug-0123\"\nsigning_keys = [\"k1:signing-secret-debug-0123\"]",
        )
        .expect("valid");
        assert!(!format!("{config:?}").contains("secret-debug"));
        let state = crate::state(&config, "http://127.0.0.1:8080").expect("state");
        let shown = format!("{state:?}");
        assert!(!shown.contains("secret-debug"), "{shown}");
    }

    #[test]
    fn flags_win_over_the_file_and_durations_read_as_written() {
        let file = format!(
            "{BASE}steering_ttl = \"3s\"\nhold_down = \"1500ms\"\nepsilon = 0.5\npeers = [\"http://10.0.0.1:1\"]\n\
             [autoscale]\ncooldown = \"5m\"\n[groups]\n\"10.0.0.0/8\" = \"eu\"\n[origin_options]\na = \"1\"\n\
             [[edges]]\nid = \"e1\"\nurl = \"http://127.0.0.1:1\"\ncapacity_bps = 5\n"
        );
        let config = load(
            &[
                "--steering-ttl",
                "4s",
                "--autoscale-min-edges",
                "2",
                "--origin-option",
                "b=2",
            ],
            &file,
        )
        .expect("valid");
        assert_eq!(config.steering_ttl, Duration::from_secs(4), "the flag wins");
        assert_eq!(config.hold_down, Duration::from_millis(1500));
        assert_eq!(config.epsilon, 0.5);
        assert_eq!(config.peers, vec!["http://10.0.0.1:1".to_owned()]);
        assert_eq!(config.autoscale.cooldown, Duration::from_secs(300));
        assert_eq!(config.autoscale.min_edges, 2);
        assert_eq!(config.autoscale.max_edges, ScalePolicy::default().max_edges);
        assert_eq!(config.groups.len(), 1);
        assert_eq!(config.origin_options.len(), 2, "tables merge by key");
        assert_eq!(config.edges[0].capacity_bps, 5);
        assert_eq!(config.token_ttl, DEFAULT_TOKEN_TTL);
        let config = load(&["--edge", "e2=http://127.0.0.1:2"], &file).expect("valid");
        assert_eq!(config.edges.len(), 1, "a flag's list replaces the file's");
        assert_eq!(config.edges[0].capacity_bps, DEFAULT_EDGE_CAPACITY_BPS);
    }

    #[test]
    fn bad_values_name_their_key() {
        let only = |file: &str| file.to_owned();
        let with_base = |file: &str| format!("{BASE}{file}");
        let cases: [(&[&str], String, &str); 10] = [
            (
                &[],
                only("fleet_token = \"fleet-token-0123456789\"\n"),
                "`origin` is required",
            ),
            (
                &[],
                only("origin = \"http://127.0.0.1:9\"\n"),
                "`fleet_token` is required",
            ),
            (&["--steering-ttl", "0s"], with_base(""), "`steering_ttl`"),
            (&["--token-ttl", "59s"], with_base(""), "`token_ttl`"),
            (
                &["--autoscale-max-edges", "0"],
                with_base(""),
                "`autoscale.max_edges`",
            ),
            (&["--group", "10.0.0.0/33=eu"], with_base(""), "`groups`"),
            (&["--group-header", "bad header"], with_base(""), "`group_header`"),
            (
                &[],
                with_base("steering_ttl_secs = 2\n"),
                "unknown key `steering_ttl_secs`",
            ),
            (
                &[],
                with_base("hold_down = 3000\n"),
                "`hold_down`: invalid type: integer",
            ),
            (
                &[],
                with_base("[autoscale]\ncooldown_secs = 1\n"),
                "unknown key `autoscale.cooldown_secs`",
            ),
        ];
        for (args, file, key) in cases {
            let error = load(args, &file).err().map(|e| e.to_string());
            assert!(
                error.as_ref().is_some_and(|e| e.contains(key)),
                "{args:?} {file:?}: {error:?}"
            );
        }
    }
}
