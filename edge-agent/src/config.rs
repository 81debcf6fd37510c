//! `hlscdn-edge` configuration: a TOML file (`--config`), overridden by
//! `HLSCDN_*` environment variables, overridden by flags
//! ([`runtime::config`]); validated at start with messages that name the
//! key. Every key is also a flag (`drain_quiet` is `--drain-quiet` and
//! `HLSCDN_DRAIN_QUIET`); durations are human-readable.
//!
//! ```toml
//! listen = "0.0.0.0:9001"
//! id = "edge-1"
//! public_url = "https://edge-1.example"
//! group = "eu-west"
//! origin = "http://127.0.0.1:8000"
//! routers = ["http://127.0.0.1:8080"]
//! fleet_token = "change-me-please"
//! signing_keys = ["k2:new-secret-of-16-bytes+", "k1:old-secret-of-16-bytes+"]
//! capacity_bps = 10_000_000_000
//! max_connections = 10_000
//! cache_bytes = 8_589_934_592
//! max_object_bytes = 67_108_864
//! miss_lookups_per_sec = 100
//! heartbeat_interval = "1s"
//! drain_quiet = "5s"
//! drain_timeout = "60s"
//!
//! [origin_options]            # builder keys of a non-HTTP origin store
//! aws_region = "eu-west-1"
//! ```
//!
//! Every key and its default is listed in `docs/EDGE.md`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use router_api::fleet::{self, Ad, AdError, Capacity, EdgeState, Instance, Load};
use router_api::token::{KeyRing, SigningKey};
use runtime::config::{
    FleetTokenArg, OriginArgs, RoutersArg, ServerArgs, duration, expose_secrets, key_values, parse_duration,
};
use runtime::secret::Secret;
use serde::{Deserialize, Deserializer, Serialize};

use crate::{Error, Result};

/// Default listen address.
pub const DEFAULT_LISTEN: SocketAddr = runtime::config::loopback(9001);
/// Default egress capacity: 1 Gbit/s (what routers assume for static edges).
pub const DEFAULT_CAPACITY_BPS: u64 = fleet::DEFAULT_STATIC_CAPACITY_BPS;
/// Default connection capacity.
pub const DEFAULT_MAX_CONNECTIONS: u64 = 10_000;
/// Cache size when the machine's memory cannot be read: 1 GiB.
pub const FALLBACK_CACHE_BYTES: u64 = 1 << 30;
/// The default cache takes this share of the memory available to the process.
pub const DEFAULT_CACHE_MEMORY_SHARE: u64 = 4;
/// Upper bound of the default cache size: 64 GiB.
pub const MAX_DEFAULT_CACHE_BYTES: u64 = 64 << 30;
/// Smallest cache accepted: 1 MiB.
pub const MIN_CACHE_BYTES: u64 = 1 << 20;
/// Default largest cacheable object: 64 MiB, or a quarter of the cache if
/// that is less. Larger objects are streamed through.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 64 << 20;
/// Default budget of origin lookups that find nothing, per second (and in
/// a burst); see [`crate::misses`].
pub const DEFAULT_MISS_LOOKUPS_PER_SEC: u32 = 100;
/// Largest budget of origin lookups that find nothing, per second.
pub const MAX_MISS_LOOKUPS_PER_SEC: u32 = 100_000;
/// Default (and longest) lifetime of a playlist asked of the edge directly.
pub const DEFAULT_PLAYLIST_TTL: Duration = Duration::from_secs(1);
/// Default origin timeout, for the response head and between body chunks:
/// above 3 × a 6 s target duration, so blocking playlist reloads fit.
pub const DEFAULT_ORIGIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Default heartbeat interval.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// Default timeout of one ad POST.
pub const DEFAULT_AD_TIMEOUT: Duration = Duration::from_millis(500);
/// Default interval of `GET /api/v1/routers` discovery.
pub const DEFAULT_DISCOVERY_INTERVAL: Duration = Duration::from_secs(5);
/// A learned router that failed for this long is forgotten (seeds never are).
pub const DEFAULT_FORGET_ROUTER_AFTER: Duration = Duration::from_secs(30);
/// Default quiet period that ends a drain.
pub const DEFAULT_DRAIN_QUIET: Duration = Duration::from_secs(5);
/// Default longest drain.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time constant of the load meter's moving averages.
pub const DEFAULT_LOAD_WINDOW: Duration = Duration::from_secs(2);
/// Default number of hot streams in an ad.
pub const DEFAULT_HOT_STREAMS: usize = 10;

/// Command line of `hlscdn-edge`: every key of the file, each flag also
/// read from its `HLSCDN_*` variable; flags win over variables, which win
/// over the file.
#[derive(Debug, Default, Parser, Serialize)]
#[command(name = "hlscdn-edge", version, about = "hls-cdn edge: caching segment server")]
pub struct Cli {
    #[command(flatten)]
    #[serde(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub fleet: FleetTokenArg,
    #[command(flatten)]
    #[serde(flatten)]
    pub routers: RoutersArg,
    #[command(flatten)]
    #[serde(flatten)]
    pub origin: OriginArgs,
    /// Edge id, 1 to 64 bytes of A-Z a-z 0-9 . _ -
    #[arg(long, env = "HLSCDN_ID")]
    pub id: Option<String>,
    /// Base URL viewers reach this edge at (default: http://ADDR, the bound address).
    #[arg(long, env = "HLSCDN_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// The edge's group (region, POP).
    #[arg(long, env = "HLSCDN_GROUP")]
    pub group: Option<String>,
    /// Egress capacity, bits per second.
    #[arg(long, env = "HLSCDN_CAPACITY_BPS")]
    pub capacity_bps: Option<u64>,
    /// Connection capacity.
    #[arg(long, env = "HLSCDN_MAX_CONNECTIONS")]
    pub max_connections: Option<u64>,
    /// Segment URL signing key KID:SECRET; repeatable (rotation): any verifies.
    #[arg(
        long = "signing-key",
        value_name = "KID:SECRET",
        env = "HLSCDN_SIGNING_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    #[serde(serialize_with = "expose_secrets")]
    pub signing_keys: Vec<Secret>,
    /// Cache size in bytes (default: a quarter of the memory, at most 64 GiB).
    #[arg(long, env = "HLSCDN_CACHE_BYTES")]
    pub cache_bytes: Option<u64>,
    /// Largest cacheable object in bytes; larger ones are streamed through
    /// (default: 64 MiB or a quarter of the cache).
    #[arg(long, env = "HLSCDN_MAX_OBJECT_BYTES")]
    pub max_object_bytes: Option<u64>,
    /// Origin lookups that find nothing (404, errors), per second and in a
    /// burst; beyond it uncached names are answered 503 without a lookup.
    #[arg(long, env = "HLSCDN_MISS_LOOKUPS_PER_SEC")]
    pub miss_lookups_per_sec: Option<u32>,
    /// Lifetime of a cached playlist asked of the edge directly, at most 1s (0s: not cached).
    #[arg(long, env = "HLSCDN_PLAYLIST_TTL", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub playlist_ttl: Option<Duration>,
    /// Origin timeout (response head, and between body chunks).
    #[arg(long, env = "HLSCDN_ORIGIN_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub origin_timeout: Option<Duration>,
    /// Heartbeat interval, 100ms to 10s.
    #[arg(long, env = "HLSCDN_HEARTBEAT_INTERVAL", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub heartbeat_interval: Option<Duration>,
    /// Ad TTL (default 3 × the heartbeat interval).
    #[arg(long, env = "HLSCDN_AD_TTL", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub ad_ttl: Option<Duration>,
    /// Timeout of one ad POST or discovery GET.
    #[arg(long, env = "HLSCDN_AD_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub ad_timeout: Option<Duration>,
    /// Interval of router discovery (`GET /api/v1/routers`).
    #[arg(long, env = "HLSCDN_DISCOVERY_INTERVAL", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub discovery_interval: Option<Duration>,
    /// A learned router failing this long is forgotten (seeds never are).
    #[arg(long, env = "HLSCDN_FORGET_ROUTER_AFTER", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub forget_router_after: Option<Duration>,
    /// A drain ends once no request arrived for this long.
    #[arg(long, env = "HLSCDN_DRAIN_QUIET", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub drain_quiet: Option<Duration>,
    /// A drain ends after this long at most.
    #[arg(long, env = "HLSCDN_DRAIN_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub drain_timeout: Option<Duration>,
    /// Time constant of the load meter's moving averages.
    #[arg(long, env = "HLSCDN_LOAD_WINDOW", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub load_window: Option<Duration>,
    /// Hot streams listed in an ad.
    #[arg(long, env = "HLSCDN_HOT_STREAMS")]
    pub hot_streams: Option<usize>,
}

/// The validated configuration the edge runs with; every field is the key
/// of the same name.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Edge id.
    pub id: String,
    /// Base URL viewers use; `None`: `http(s)://<bound address>`, known once bound.
    pub public_url: Option<String>,
    /// Group (region, POP).
    pub group: Option<String>,
    /// Origin URL.
    pub origin: String,
    /// Origin store builder options (non-HTTP origins).
    #[serde(with = "key_values")]
    pub origin_options: Vec<(String, String)>,
    /// Seed routers, normalized (no trailing `/`).
    pub routers: Vec<String>,
    /// Fleet token; without it no ads are sent and `/admin/drain` always answers 401.
    pub fleet_token: Option<Secret>,
    /// Segment URL verification keys; `None`: signing is off.
    #[serde(deserialize_with = "key_ring")]
    pub signing_keys: Option<KeyRing>,
    /// Egress capacity, bits per second.
    pub capacity_bps: u64,
    /// Connection capacity.
    pub max_connections: u64,
    /// Cache size, bytes.
    pub cache_bytes: u64,
    /// Largest cacheable object, bytes.
    pub max_object_bytes: u64,
    /// Origin lookups that find nothing, per second (and in a burst).
    pub miss_lookups_per_sec: u32,
    /// Lifetime of a cached playlist (zero: not cached, fetches still collapse).
    #[serde(with = "duration")]
    pub playlist_ttl: Duration,
    /// Origin timeout: response head, and each body chunk.
    #[serde(with = "duration")]
    pub origin_timeout: Duration,
    /// Heartbeat interval.
    #[serde(with = "duration")]
    pub heartbeat_interval: Duration,
    /// TTL written in ads.
    #[serde(with = "duration")]
    pub ad_ttl: Duration,
    /// Timeout of one ad POST or discovery GET.
    #[serde(with = "duration")]
    pub ad_timeout: Duration,
    /// Interval of router discovery.
    #[serde(with = "duration")]
    pub discovery_interval: Duration,
    /// A learned router failing this long is forgotten.
    #[serde(with = "duration")]
    pub forget_router_after: Duration,
    /// Quiet period that ends a drain.
    #[serde(with = "duration")]
    pub drain_quiet: Duration,
    /// Longest drain.
    #[serde(with = "duration")]
    pub drain_timeout: Duration,
    /// Time constant of the load meter's moving averages.
    #[serde(with = "duration")]
    pub load_window: Duration,
    /// Hot streams listed in an ad.
    pub hot_streams: usize,
    /// HTTPS served, and how calls to the origin and routers verify.
    pub tls: runtime::tls::TlsConfig,
}

impl Default for Config {
    /// Every default; `id` and `origin` have none (empty: required).
    fn default() -> Self {
        let cache_bytes = default_cache_bytes();
        Self {
            listen: DEFAULT_LISTEN,
            id: String::new(),
            public_url: None,
            group: None,
            origin: String::new(),
            origin_options: Vec::new(),
            routers: Vec::new(),
            fleet_token: None,
            signing_keys: None,
            capacity_bps: DEFAULT_CAPACITY_BPS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            cache_bytes,
            max_object_bytes: default_max_object_bytes(cache_bytes),
            miss_lookups_per_sec: DEFAULT_MISS_LOOKUPS_PER_SEC,
            playlist_ttl: DEFAULT_PLAYLIST_TTL,
            origin_timeout: DEFAULT_ORIGIN_TIMEOUT,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            ad_ttl: default_ad_ttl(DEFAULT_HEARTBEAT_INTERVAL),
            ad_timeout: DEFAULT_AD_TIMEOUT,
            discovery_interval: DEFAULT_DISCOVERY_INTERVAL,
            forget_router_after: DEFAULT_FORGET_ROUTER_AFTER,
            drain_quiet: DEFAULT_DRAIN_QUIET,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            load_window: DEFAULT_LOAD_WINDOW,
            hot_streams: DEFAULT_HOT_STREAMS,
            tls: runtime::tls::TlsConfig::default(),
        }
    }
}

/// The default ad TTL: 3 × the heartbeat interval, within what routers accept.
fn default_ad_ttl(heartbeat_interval: Duration) -> Duration {
    (heartbeat_interval * 3).clamp(
        Duration::from_millis(fleet::MIN_TTL_MS),
        Duration::from_millis(fleet::MAX_TTL_MS),
    )
}

/// The default largest cacheable object: 64 MiB, or a quarter of the cache.
fn default_max_object_bytes(cache_bytes: u64) -> u64 {
    DEFAULT_MAX_OBJECT_BYTES.min(cache_bytes / 4)
}

impl Config {
    /// Reads the file named by `--config` (if any), lays the flags and
    /// `HLSCDN_*` variables over it, and validates the result.
    pub fn load(cli: Cli) -> Result<Self> {
        let layers = runtime::config::layers(cli.server.config.as_deref(), &cli).map_err(Error::Config)?;
        let mut config: Self = runtime::config::extract(&layers).map_err(Error::Config)?;
        // Defaults that follow other keys.
        if !layers.contains("ad_ttl") {
            config.ad_ttl = default_ad_ttl(config.heartbeat_interval);
        }
        if !layers.contains("max_object_bytes") {
            config.max_object_bytes = default_max_object_bytes(config.cache_bytes);
        }
        config.public_url = config.public_url.map(|u| u.trim_end_matches('/').to_owned());
        let mut routers: Vec<String> = Vec::new();
        for (i, raw) in config.routers.iter().enumerate() {
            let url = normalize_router_url(raw)
                .map_err(|why| Error::Config(format!("`routers[{i}]` {raw:?} {why}")))?;
            if !routers.contains(&url) {
                routers.push(url);
            }
        }
        config.routers = routers;
        config.validate()?;
        Ok(config)
    }

    /// What this edge presents to routers (ads, links) and also accepts on
    /// `/admin/drain`: its own credential (`router_api::fleet::edge_credential`),
    /// derived from the fleet token, or given as `fleet_token` itself (an
    /// edge that holds only its credential can speak for itself only).
    pub fn credential(&self) -> Option<Secret> {
        let token = self.fleet_token.as_ref()?.expose();
        let given = token
            .strip_prefix(self.id.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|mac| mac.len() == 64 && mac.bytes().all(|b| b.is_ascii_hexdigit()));
        Some(Secret::from(if given {
            token.to_owned()
        } else {
            router_api::fleet::edge_credential(token, &self.id)
        }))
    }

    /// Checks every value, naming the key at fault.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
        self.tls.server().map_err(Error::Config)?;
        self.tls.client().map_err(Error::Config)?;
        if self.id.is_empty() {
            return bad("`id` is required (e.g. --id edge-1)".into());
        }
        if self.origin.is_empty() {
            return bad("`origin` is required (e.g. --origin http://127.0.0.1:8000)".into());
        }
        if self.public_url.is_none() && self.listen.ip().is_unspecified() {
            return bad(format!(
                "`public_url` is required when `listen` is a wildcard address ({})",
                self.listen
            ));
        }
        // The ad a router will check, with this configuration's values.
        let public_url = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{}://{}", self.tls.scheme(), self.listen));
        self.ad(
            public_url,
            EdgeState::Ready,
            Load::default(),
            Vec::new(),
            "probe",
            0,
        )
        .validate()
        .map_err(|e| Error::Config(config_message(&e)))?;
        if let Some(token) = self.fleet_token.as_ref().map(Secret::expose)
            && (token.len() < 8 || token.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return bad("`fleet_token` must be at least 8 characters with no whitespace".into());
        }
        if !self.routers.is_empty() && self.fleet_token.is_none() {
            return bad("`fleet_token` is required when `routers` are given".into());
        }
        if self.cache_bytes < MIN_CACHE_BYTES {
            return bad(format!("`cache_bytes` must be at least {MIN_CACHE_BYTES}"));
        }
        if self.max_object_bytes == 0 {
            return bad("`max_object_bytes` must be > 0".into());
        }
        if self.max_object_bytes > self.cache_bytes || self.max_object_bytes > u64::from(u32::MAX / 2) {
            return bad("`max_object_bytes` must be at most `cache_bytes` and at most 2 GiB".into());
        }
        if !(1..=MAX_MISS_LOOKUPS_PER_SEC).contains(&self.miss_lookups_per_sec) {
            return bad(format!(
                "`miss_lookups_per_sec` must be between 1 and {MAX_MISS_LOOKUPS_PER_SEC}"
            ));
        }
        if self.playlist_ttl > DEFAULT_PLAYLIST_TTL {
            return bad("`playlist_ttl` must be at most 1s".into());
        }
        if self.origin_timeout < Duration::from_millis(100) {
            return bad("`origin_timeout` must be at least 100ms".into());
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(10)).contains(&self.heartbeat_interval) {
            return bad("`heartbeat_interval` must be within 100ms and 10s".into());
        }
        if self.ad_ttl <= self.heartbeat_interval {
            return bad("`ad_ttl` must be longer than `heartbeat_interval`".into());
        }
        if self.ad_timeout.is_zero() || self.ad_timeout > self.ad_ttl {
            return bad("`ad_timeout` must be > 0 and at most `ad_ttl`".into());
        }
        if self.discovery_interval < Duration::from_millis(100) {
            return bad("`discovery_interval` must be at least 100ms".into());
        }
        if self.forget_router_after < self.heartbeat_interval {
            return bad("`forget_router_after` must be at least `heartbeat_interval`".into());
        }
        if self.drain_quiet > self.drain_timeout {
            return bad("`drain_quiet` must be at most `drain_timeout`".into());
        }
        if self.load_window < Duration::from_millis(100) {
            return bad("`load_window` must be at least 100ms".into());
        }
        if self.hot_streams > fleet::MAX_HOT_STREAMS {
            return bad(format!(
                "`hot_streams` must be at most {}",
                fleet::MAX_HOT_STREAMS
            ));
        }
        Ok(())
    }

    /// The ad this edge sends, with the measured parts given.
    pub fn ad(
        &self,
        public_url: String,
        state: EdgeState,
        load: Load,
        hot_streams: Vec<fleet::HotStream>,
        instance: &str,
        started_unix_ms: u64,
    ) -> Ad {
        Ad {
            edge_id: self.id.clone(),
            public_url,
            group: self.group.clone(),
            state,
            capacity: Capacity {
                egress_bps: self.capacity_bps,
                connections: self.max_connections,
            },
            load,
            hot_streams,
            ttl_ms: u64::try_from(self.ad_ttl.as_millis()).unwrap_or(u64::MAX),
            instance: Instance {
                started_unix_ms,
                id: instance.to_owned(),
            },
            generation: 0,
        }
    }
}

/// An [`AdError`] in terms of this file's keys.
fn config_message(error: &AdError) -> String {
    match error {
        AdError::EmptyEdgeId | AdError::BadEdgeId => "`id` must be 1 to 64 bytes of A-Z a-z 0-9 . _ -".into(),
        AdError::BadPublicUrl(why) => format!("`public_url` {why}"),
        AdError::BadGroup => "`group` must be 1 to 64 bytes of A-Z a-z 0-9 . _ -".into(),
        AdError::ZeroCapacity("capacity.egress_bps") => "`capacity_bps` must be > 0".into(),
        AdError::ZeroCapacity(_) => "`max_connections` must be > 0".into(),
        AdError::TtlOutOfRange(_) => format!(
            "`ad_ttl` must be within {}ms and {}ms",
            fleet::MIN_TTL_MS,
            fleet::MAX_TTL_MS
        ),
        other => other.to_string(),
    }
}

/// `signing_keys`: KID:SECRET each; `None` when there are none.
fn key_ring<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Option<KeyRing>, D::Error> {
    let raw = Vec::<Secret>::deserialize(deserializer)?;
    if raw.is_empty() {
        return Ok(None);
    }
    let mut keys = Vec::with_capacity(raw.len());
    for (i, text) in raw.iter().enumerate() {
        let key: SigningKey = text
            .expose()
            .trim()
            .parse()
            .map_err(|e| serde::de::Error::custom(format!("`signing_keys[{i}]`: {e}")))?;
        keys.push(key);
    }
    KeyRing::new(keys)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("`signing_keys`: {e}")))
}

/// A router base URL as the edge keeps it: `http(s)://host[:port][/path]`
/// without credentials, query, fragment or a trailing `/`. The error says why not.
pub fn normalize_router_url(raw: &str) -> std::result::Result<String, &'static str> {
    let url = url::Url::parse(raw.trim()).map_err(|_| "is not a URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be http:// or https://");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment");
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// A quarter of the memory this process may use (the machine's, or its
/// cgroup's limit when lower), at most [`MAX_DEFAULT_CACHE_BYTES`];
/// [`FALLBACK_CACHE_BYTES`] when neither can be read.
pub fn default_cache_bytes() -> u64 {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total(&text));
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok());
    let available = match (machine, cgroup) {
        (Some(m), Some(c)) => m.min(c),
        (Some(m), None) => m,
        (None, Some(c)) => c,
        (None, None) => return FALLBACK_CACHE_BYTES,
    };
    (available / DEFAULT_CACHE_MEMORY_SHARE).clamp(MIN_CACHE_BYTES, MAX_DEFAULT_CACHE_BYTES)
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line.split_whitespace().skip(1);
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => value.checked_mul(1024),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::parse_from(std::iter::once("hlscdn-edge").chain(args.iter().copied()))
    }

    const BASE: [(&str, &str); 2] = [("--id", "edge-1"), ("--origin", "http://127.0.0.1:8000")];

    /// The base flags, each unless `extra` gives it, then `extra`.
    fn with(extra: &[&str]) -> Result<Config> {
        let mut args: Vec<&str> = BASE
            .iter()
            .filter(|(flag, _)| !extra.contains(flag))
            .flat_map(|(flag, value)| [*flag, *value])
            .collect();
        args.extend_from_slice(extra);
        Config::load(cli(&args))
    }

    /// `args` over a file holding `text`.
    fn with_file(args: &[&str], text: &str) -> Result<Config> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("edge.toml");
        std::fs::write(&path, text).expect("write");
        let mut all = vec!["--config", path.to_str().expect("utf-8")];
        all.extend_from_slice(args);
        Config::load(cli(&all))
    }

    #[test]
    fn defaults() {
        let c = with(&[]).expect("valid");
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.ad_ttl, Duration::from_secs(3));
        assert_eq!(c.miss_lookups_per_sec, DEFAULT_MISS_LOOKUPS_PER_SEC);
        assert!(c.cache_bytes >= MIN_CACHE_BYTES);
        assert!(c.signing_keys.is_none());
        assert!(c.routers.is_empty());
    }

    #[test]
    fn debug_output_never_shows_the_fleet_token_or_keys() {
        let extra = [
            "--fleet-token",
            "fleet-secret-debug-0123",
            "--signing-key",
            "k1:signing-secret-debug-0123",
        ];
        let mut args: Vec<&str> = BASE.iter().flat_map(|(flag, value)| [*flag, *value]).collect();
        args.extend_from_slice(&extra);
        let parsed = cli(&args);
        assert!(!format!("{parsed:?}").contains("secret-debug"));
        let c = with(&extra).expect("valid");
        assert_eq!(
            c.fleet_token.as_ref().map(Secret::expose),
            Some("fleet-secret-debug-0123")
        );
        assert!(c.signing_keys.is_some());
        let shown = format!("{c:?}");
        assert!(!shown.contains("secret-debug"), "{shown}");
        let c = with_file(
            &["--id", "edge-1", "--origin", "http://127.0.0.1:8000"],
            "fleet_token = \"fleet-secret-debug-0123\"\nsigning_keys = [\"k1:signing-secret-debug-0123\"]",
        )
        .expect("valid");
        assert!(!format!("{c:?}").contains("secret-debug"));
    }

    #[test]
    fn flags_win_over_the_file() {
        let c = with_file(
            &[
                "--id",
                "flag-edge",
                "--router",
                "http://127.0.0.1:1",
                "--router",
                "http://127.0.0.1:1/",
                "--heartbeat-interval",
                "200ms",
            ],
            "id = \"file-edge\"\norigin = \"memory://\"\nrouters = [\"http://10.0.0.1:8080/\"]\n\
             fleet_token = \"file-token\"\ncache_bytes = 2000000\ndrain_quiet = \"1m\"\n[origin_options]\na = \"b\"\n",
        )
        .expect("valid");
        assert_eq!(c.id, "flag-edge");
        assert_eq!(c.origin, "memory://");
        assert_eq!(c.routers, vec!["http://127.0.0.1:1".to_owned()]);
        assert_eq!(c.cache_bytes, 2_000_000);
        assert_eq!(c.max_object_bytes, 500_000, "a quarter of the cache");
        assert_eq!(c.origin_options, vec![("a".to_owned(), "b".to_owned())]);
        assert_eq!(c.heartbeat_interval, Duration::from_millis(200));
        assert_eq!(c.ad_ttl, Duration::from_millis(600), "3 × the heartbeat interval");
        assert_eq!(c.drain_quiet, Duration::from_secs(60));
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases: &[(&[&str], &str)] = &[
            (&["--id", "edge/1"], "`id`"),
            (&["--public-url", "ftp://x"], "`public_url`"),
            (&["--listen", "0.0.0.0:9001"], "`public_url` is required"),
            (&["--capacity-bps", "0"], "`capacity_bps`"),
            (&["--max-connections", "0"], "`max_connections`"),
            (&["--router", "http://r:1"], "`fleet_token` is required"),
            (
                &["--router", "http://r:1/?x", "--fleet-token", "12345678"],
                "`routers[0]`",
            ),
            (&["--fleet-token", "short"], "`fleet_token`"),
            (&["--signing-key", "k1:short"], "`signing_keys[0]`"),
            (
                &[
                    "--signing-key",
                    "k1:0123456789abcdef",
                    "--signing-key",
                    "k1:0123456789abcdef",
                ],
                "appears twice",
            ),
            (&["--cache-bytes", "10"], "`cache_bytes`"),
            (
                &["--cache-bytes", "2000000", "--max-object-bytes", "3000000"],
                "`max_object_bytes`",
            ),
            (&["--miss-lookups-per-sec", "0"], "`miss_lookups_per_sec`"),
            (&["--heartbeat-interval", "50ms"], "`heartbeat_interval`"),
            (&["--ad-ttl", "100ms"], "`ad_ttl`"),
            (&["--drain-quiet", "5s", "--drain-timeout", "1s"], "`drain_quiet`"),
        ];
        for (args, expected) in cases {
            let err = with(args).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(expected), "{args:?}: {err:?} lacks {expected:?}");
        }
        let err = Config::load(cli(&[])).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("`id`")));
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        for (text, key) in [
            ("cache_byte = 1", "unknown key `cache_byte`"),
            ("drain_quiet_ms = 1", "unknown key `drain_quiet_ms`"),
            ("drain_quiet = 1", "`drain_quiet`: invalid type: integer"),
        ] {
            let err = with_file(&["--id", "e", "--origin", "memory://"], text)
                .err()
                .map(|e| e.to_string());
            assert!(err.as_ref().is_some_and(|e| e.contains(key)), "{text}: {err:?}");
        }
    }

    #[test]
    fn router_urls_are_normalized() {
        assert_eq!(normalize_router_url("http://a:1/").as_deref(), Ok("http://a:1"));
        assert_eq!(normalize_router_url("https://a/x/").as_deref(), Ok("https://a/x"));
        assert!(normalize_router_url("ftp://a").is_err());
        assert!(normalize_router_url("http://u:p@a").is_err());
        assert!(normalize_router_url("nonsense").is_err());
    }

    #[test]
    fn meminfo() {
        assert_eq!(
            mem_total("MemTotal:       16318412 kB\nMemFree: 1 kB\n"),
            Some(16_318_412 * 1024)
        );
        assert_eq!(mem_total("nothing"), None);
    }
}
