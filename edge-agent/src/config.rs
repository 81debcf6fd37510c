//! `hlscdn-edge` configuration: a TOML file (`--config`), overridden by
//! `HLSCDN_*` environment variables, overridden by flags; validated at start
//! with messages that name the key.
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
//! heartbeat_interval_ms = 1000
//! drain_quiet_ms = 5000
//! drain_timeout_ms = 60000
//!
//! [origin_options]            # builder keys of a non-HTTP origin store
//! aws_region = "eu-west-1"
//! ```
//!
//! Every key and its default is listed in `docs/EDGE.md`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use router_api::fleet::{self, Ad, AdError, Capacity, EdgeState, Instance, Load};
use router_api::token::{KeyRing, SigningKey};
use runtime::secret::Secret;
use serde::Deserialize;

use crate::{Error, Result};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9001";
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

/// Command line of `hlscdn-edge`. Every flag also reads an `HLSCDN_*`
/// variable; flags win over variables, which win over the file.
#[derive(Debug, Default, Parser)]
#[command(name = "hlscdn-edge", version, about = "hls-cdn edge: caching segment server")]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "HLSCDN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "HLSCDN_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Edge id, 1 to 64 bytes of A-Z a-z 0-9 . _ -
    #[arg(long, env = "HLSCDN_ID")]
    pub id: Option<String>,
    /// Base URL viewers reach this edge at (default: http://ADDR, the bound address).
    #[arg(long, env = "HLSCDN_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The edge's group (region, POP).
    #[arg(long, env = "HLSCDN_GROUP")]
    pub group: Option<String>,
    /// Origin URL: http(s)://host[/prefix] or any object store URL (file://, s3://, ...).
    #[arg(long, env = "HLSCDN_ORIGIN")]
    pub origin: Option<String>,
    /// Origin store builder option KEY=VALUE; repeatable.
    #[arg(long = "origin-option", value_name = "KEY=VALUE", value_parser = runtime::config::parse_key_value)]
    pub origin_options: Vec<(String, String)>,
    /// A router to send ads to; repeatable. More are learned from routers.
    #[arg(
        long = "router",
        value_name = "URL",
        env = "HLSCDN_ROUTERS",
        value_delimiter = ','
    )]
    pub routers: Vec<String>,
    /// Shared secret of the fleet: ads, `POST /admin/drain`.
    #[arg(long, env = "HLSCDN_FLEET_TOKEN", hide_env_values = true)]
    pub fleet_token: Option<Secret>,
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
    pub signing_keys: Vec<Secret>,
    /// Cache size in bytes (default: a quarter of the memory, at most 64 GiB).
    #[arg(long, env = "HLSCDN_CACHE_BYTES")]
    pub cache_bytes: Option<u64>,
    /// Largest cacheable object in bytes; larger ones are streamed through.
    #[arg(long, env = "HLSCDN_MAX_OBJECT_BYTES")]
    pub max_object_bytes: Option<u64>,
    /// Origin lookups that find nothing (404, errors), per second and in a
    /// burst; beyond it uncached names are answered 503 without a lookup.
    #[arg(long, env = "HLSCDN_MISS_LOOKUPS_PER_SEC")]
    pub miss_lookups_per_sec: Option<u32>,
    /// Origin timeout (response head, and between body chunks), milliseconds.
    #[arg(long, env = "HLSCDN_ORIGIN_TIMEOUT_MS")]
    pub origin_timeout_ms: Option<u64>,
    /// Heartbeat interval, milliseconds.
    #[arg(long, env = "HLSCDN_HEARTBEAT_INTERVAL_MS")]
    pub heartbeat_interval_ms: Option<u64>,
    /// Ad TTL, milliseconds (default 3 × the heartbeat interval).
    #[arg(long, env = "HLSCDN_AD_TTL_MS")]
    pub ad_ttl_ms: Option<u64>,
    /// A drain ends once no request arrived for this long, milliseconds.
    #[arg(long, env = "HLSCDN_DRAIN_QUIET_MS")]
    pub drain_quiet_ms: Option<u64>,
    /// A drain ends after this long at most, milliseconds.
    #[arg(long, env = "HLSCDN_DRAIN_TIMEOUT_MS")]
    pub drain_timeout_ms: Option<u64>,
}

/// The file form; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    id: Option<String>,
    public_url: Option<String>,
    group: Option<String>,
    origin: Option<String>,
    #[serde(default)]
    origin_options: BTreeMap<String, String>,
    #[serde(default)]
    routers: Vec<String>,
    fleet_token: Option<Secret>,
    capacity_bps: Option<u64>,
    max_connections: Option<u64>,
    #[serde(default)]
    signing_keys: Vec<Secret>,
    cache_bytes: Option<u64>,
    max_object_bytes: Option<u64>,
    miss_lookups_per_sec: Option<u32>,
    playlist_ttl_ms: Option<u64>,
    origin_timeout_ms: Option<u64>,
    heartbeat_interval_ms: Option<u64>,
    ad_ttl_ms: Option<u64>,
    ad_timeout_ms: Option<u64>,
    discovery_interval_ms: Option<u64>,
    forget_router_after_ms: Option<u64>,
    drain_quiet_ms: Option<u64>,
    drain_timeout_ms: Option<u64>,
    load_window_ms: Option<u64>,
    hot_streams: Option<usize>,
}

/// The validated configuration the edge runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Edge id.
    pub id: String,
    /// Base URL viewers use; `None`: `http://<bound address>`, known once bound.
    pub public_url: Option<String>,
    /// Group (region, POP).
    pub group: Option<String>,
    /// Origin URL.
    pub origin: String,
    /// Origin store builder options (non-HTTP origins).
    pub origin_options: Vec<(String, String)>,
    /// Seed routers, normalized (no trailing `/`).
    pub routers: Vec<String>,
    /// Fleet token; without it no ads are sent and `/admin/drain` always answers 401.
    pub fleet_token: Option<Secret>,
    /// Segment URL verification keys; `None`: signing is off.
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
    pub playlist_ttl: Duration,
    /// Origin timeout: response head, and each body chunk.
    pub origin_timeout: Duration,
    /// Heartbeat interval.
    pub heartbeat_interval: Duration,
    /// TTL written in ads.
    pub ad_ttl: Duration,
    /// Timeout of one ad POST or discovery GET.
    pub ad_timeout: Duration,
    /// Interval of router discovery.
    pub discovery_interval: Duration,
    /// A learned router failing this long is forgotten.
    pub forget_router_after: Duration,
    /// Quiet period that ends a drain.
    pub drain_quiet: Duration,
    /// Longest drain.
    pub drain_timeout: Duration,
    /// Time constant of the load meter's moving averages.
    pub load_window: Duration,
    /// Hot streams listed in an ad.
    pub hot_streams: usize,
}

impl Config {
    /// Reads the file named by `--config` (if any) and applies the command line over it.
    pub fn load(cli: Cli) -> Result<Self> {
        let file = runtime::config::read_toml(cli.config.as_deref()).map_err(Error::Config)?;
        Self::merge(cli, file)
    }

    fn merge(cli: Cli, file: FileConfig) -> Result<Self> {
        let ms = Duration::from_millis;
        let listen = match cli.listen.or(file.listen) {
            Some(addr) => addr,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|e| Error::Config(format!("default `listen`: {e}")))?,
        };
        let heartbeat_interval = cli
            .heartbeat_interval_ms
            .or(file.heartbeat_interval_ms)
            .map_or(DEFAULT_HEARTBEAT_INTERVAL, ms);
        let default_ttl = (heartbeat_interval * 3).clamp(
            Duration::from_millis(fleet::MIN_TTL_MS),
            Duration::from_millis(fleet::MAX_TTL_MS),
        );
        let raw_keys = if cli.signing_keys.is_empty() {
            file.signing_keys
        } else {
            cli.signing_keys
        };
        let signing_keys = key_ring(&raw_keys)?;
        let raw_routers = if cli.routers.is_empty() {
            file.routers
        } else {
            cli.routers
        };
        let mut routers = Vec::new();
        for (i, raw) in raw_routers.iter().enumerate() {
            let url = normalize_router_url(raw)
                .map_err(|why| Error::Config(format!("`routers[{i}]` {raw:?} {why}")))?;
            if !routers.contains(&url) {
                routers.push(url);
            }
        }
        let cache_bytes = match cli.cache_bytes.or(file.cache_bytes) {
            Some(bytes) => bytes,
            None => default_cache_bytes(),
        };
        let mut origin_options: Vec<(String, String)> = file.origin_options.into_iter().collect();
        origin_options.extend(cli.origin_options);
        let config = Self {
            listen,
            id: cli
                .id
                .or(file.id)
                .ok_or_else(|| Error::Config("`id` is required (e.g. --id edge-1)".into()))?,
            public_url: cli
                .public_url
                .or(file.public_url)
                .map(|u| u.trim_end_matches('/').to_owned()),
            group: cli.group.or(file.group),
            origin: cli.origin.or(file.origin).ok_or_else(|| {
                Error::Config("`origin` is required (e.g. --origin http://127.0.0.1:8000)".into())
            })?,
            origin_options,
            routers,
            fleet_token: cli.fleet_token.or(file.fleet_token),
            signing_keys,
            capacity_bps: cli
                .capacity_bps
                .or(file.capacity_bps)
                .unwrap_or(DEFAULT_CAPACITY_BPS),
            max_connections: cli
                .max_connections
                .or(file.max_connections)
                .unwrap_or(DEFAULT_MAX_CONNECTIONS),
            cache_bytes,
            max_object_bytes: cli
                .max_object_bytes
                .or(file.max_object_bytes)
                .unwrap_or(DEFAULT_MAX_OBJECT_BYTES.min(cache_bytes / 4)),
            miss_lookups_per_sec: cli
                .miss_lookups_per_sec
                .or(file.miss_lookups_per_sec)
                .unwrap_or(DEFAULT_MISS_LOOKUPS_PER_SEC),
            playlist_ttl: file.playlist_ttl_ms.map_or(DEFAULT_PLAYLIST_TTL, ms),
            origin_timeout: cli
                .origin_timeout_ms
                .or(file.origin_timeout_ms)
                .map_or(DEFAULT_ORIGIN_TIMEOUT, ms),
            heartbeat_interval,
            ad_ttl: cli.ad_ttl_ms.or(file.ad_ttl_ms).map_or(default_ttl, ms),
            ad_timeout: file.ad_timeout_ms.map_or(DEFAULT_AD_TIMEOUT, ms),
            discovery_interval: file.discovery_interval_ms.map_or(DEFAULT_DISCOVERY_INTERVAL, ms),
            forget_router_after: file
                .forget_router_after_ms
                .map_or(DEFAULT_FORGET_ROUTER_AFTER, ms),
            drain_quiet: cli
                .drain_quiet_ms
                .or(file.drain_quiet_ms)
                .map_or(DEFAULT_DRAIN_QUIET, ms),
            drain_timeout: cli
                .drain_timeout_ms
                .or(file.drain_timeout_ms)
                .map_or(DEFAULT_DRAIN_TIMEOUT, ms),
            load_window: file.load_window_ms.map_or(DEFAULT_LOAD_WINDOW, ms),
            hot_streams: file.hot_streams.unwrap_or(DEFAULT_HOT_STREAMS),
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks every value, naming the key at fault.
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

    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
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
            .unwrap_or_else(|| format!("http://{}", self.listen));
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
            return bad("`playlist_ttl_ms` must be at most 1000".into());
        }
        if self.origin_timeout < Duration::from_millis(100) {
            return bad("`origin_timeout_ms` must be at least 100".into());
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(10)).contains(&self.heartbeat_interval) {
            return bad("`heartbeat_interval_ms` must be within 100..=10000".into());
        }
        if self.ad_ttl <= self.heartbeat_interval {
            return bad("`ad_ttl_ms` must be longer than `heartbeat_interval_ms`".into());
        }
        if self.ad_timeout.is_zero() || self.ad_timeout > self.ad_ttl {
            return bad("`ad_timeout_ms` must be > 0 and at most `ad_ttl_ms`".into());
        }
        if self.discovery_interval < Duration::from_millis(100) {
            return bad("`discovery_interval_ms` must be at least 100".into());
        }
        if self.forget_router_after < self.heartbeat_interval {
            return bad("`forget_router_after_ms` must be at least `heartbeat_interval_ms`".into());
        }
        if self.drain_quiet > self.drain_timeout {
            return bad("`drain_quiet_ms` must be at most `drain_timeout_ms`".into());
        }
        if self.load_window < Duration::from_millis(100) {
            return bad("`load_window_ms` must be at least 100".into());
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
            "`ad_ttl_ms` must be within {}..={}",
            fleet::MIN_TTL_MS,
            fleet::MAX_TTL_MS
        ),
        other => other.to_string(),
    }
}

fn key_ring(raw: &[Secret]) -> Result<Option<KeyRing>> {
    if raw.is_empty() {
        return Ok(None);
    }
    let mut keys = Vec::with_capacity(raw.len());
    for (i, text) in raw.iter().enumerate() {
        let key: SigningKey = text
            .expose()
            .trim()
            .parse()
            .map_err(|e| Error::Config(format!("`signing_keys[{i}]`: {e}")))?;
        keys.push(key);
    }
    KeyRing::new(keys)
        .map(Some)
        .map_err(|e| Error::Config(format!("`signing_keys`: {e}")))
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
        Config::merge(cli(&args), FileConfig::default())
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
        let file: FileConfig = toml::from_str(
            "fleet_token = \"fleet-secret-debug-0123\"\nsigning_keys = [\"k1:signing-secret-debug-0123\"]",
        )
        .expect("toml");
        assert!(!format!("{file:?}").contains("secret-debug"));
    }

    #[test]
    fn flags_win_over_the_file() {
        let file: FileConfig = toml::from_str(
            "id = \"file-edge\"\norigin = \"memory://\"\nrouters = [\"http://10.0.0.1:8080/\"]\n\
             fleet_token = \"file-token\"\ncache_bytes = 2000000\n[origin_options]\na = \"b\"\n",
        )
        .expect("toml");
        let c = Config::merge(
            cli(&[
                "--id",
                "flag-edge",
                "--router",
                "http://127.0.0.1:1",
                "--router",
                "http://127.0.0.1:1/",
            ]),
            file,
        )
        .expect("valid");
        assert_eq!(c.id, "flag-edge");
        assert_eq!(c.origin, "memory://");
        assert_eq!(c.routers, vec!["http://127.0.0.1:1".to_owned()]);
        assert_eq!(c.cache_bytes, 2_000_000);
        assert_eq!(c.origin_options, vec![("a".to_owned(), "b".to_owned())]);
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
            (&["--heartbeat-interval-ms", "50"], "`heartbeat_interval_ms`"),
            (&["--ad-ttl-ms", "100"], "`ad_ttl_ms`"),
            (
                &["--drain-quiet-ms", "5000", "--drain-timeout-ms", "1000"],
                "`drain_quiet_ms`",
            ),
        ];
        for (args, expected) in cases {
            let err = with(args).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(expected), "{args:?}: {err:?} lacks {expected:?}");
        }
        let err = Config::merge(cli(&[]), FileConfig::default())
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("`id`")));
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let err = toml::from_str::<FileConfig>("cache_byte = 1")
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("cache_byte")));
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
