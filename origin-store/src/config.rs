//! `hlscdn-origin` configuration: a TOML file (`--config`), overridden by
//! `HLSCDN_*` environment variables, overridden by flags
//! ([`runtime::config`]); validated at start with messages that name the
//! key. Every key is also a flag (`catalog_refresh` is `--catalog-refresh`
//! and `HLSCDN_CATALOG_REFRESH`, `[publish] window` is `--publish-window`);
//! durations are human-readable.
//!
//! ```toml
//! listen = "127.0.0.1:8000"
//! store = "file:///var/lib/hlscdn"
//! ingest_token = "change-me"
//! max_ingest_bytes = 268435456
//! publish_demo = false
//! catalog_refresh = "5s"       # /api/v1/streams: one listing per period at most
//! catalog_max_objects = 100000 # ... reading at most this many keys
//!
//! [store_options]            # builder keys of the store, e.g. for S3:
//! aws_endpoint = "http://127.0.0.1:9000"
//! aws_allow_http = "true"
//!
//! [publish]                  # the demo publisher
//! window = 6
//! target_duration_secs = 2   # whole seconds, as EXT-X-TARGETDURATION
//! ```

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use clap::Parser;
use runtime::config::{ServerArgs, duration, expose_secret, key_values, parse_duration};
use serde::{Deserialize, Serialize};

use crate::catalog_cache::{self, CatalogSettings};
use crate::publisher::PublishConfig;
use crate::{Error, Result};
use runtime::secret::Secret;

/// Default listen address.
pub const DEFAULT_LISTEN: SocketAddr = runtime::config::loopback(8000);
/// Default largest ingest body: 256 MiB.
pub const DEFAULT_MAX_INGEST_BYTES: u64 = 256 * 1024 * 1024;
/// Default largest playlist inspected for `EXT-X-ENDLIST`: 16 MiB.
pub const DEFAULT_MAX_PLAYLIST_BYTES: u64 = 16 * 1024 * 1024;
/// Bounds of `catalog_refresh`: 100 ms to 1 h.
pub const CATALOG_REFRESH: RangeInclusive<Duration> = Duration::from_millis(100)..=Duration::from_secs(3600);
/// Directory of the default `file://` store, relative to the working directory.
pub const DEFAULT_STORE_DIR: &str = "hlscdn-store";

/// Command line of `hlscdn-origin`: every key of the file, each flag also
/// read from its `HLSCDN_*` variable; flags win over variables, which win
/// over the file.
#[derive(Debug, Parser, Serialize)]
#[command(
    name = "hlscdn-origin",
    version,
    about = "hls-cdn origin: HTTP over an object store, with ingest"
)]
pub struct Cli {
    #[command(flatten)]
    #[serde(flatten)]
    pub server: ServerArgs,
    /// Object store URL: file:///dir, memory://, s3://bucket/prefix, gs://, az://, http(s)://.
    /// Default: `file://` + the working directory + `/hlscdn-store`.
    #[arg(long, env = "HLSCDN_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// Store builder option KEY=VALUE (e.g. aws_endpoint=http://127.0.0.1:9000); repeatable.
    #[arg(
        long = "store-option",
        value_name = "KEY=VALUE",
        env = "HLSCDN_STORE_OPTIONS",
        value_delimiter = ',',
        value_parser = runtime::config::parse_key_value
    )]
    #[serde(with = "key_values")]
    pub store_options: Vec<(String, String)>,
    /// Bearer token that PUT and DELETE must present; without it ingest is off.
    #[arg(
        long,
        env = "HLSCDN_INGEST_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    #[serde(serialize_with = "expose_secret")]
    pub ingest_token: Option<Secret>,
    /// Largest ingest body in bytes (413 past it).
    #[arg(long, env = "HLSCDN_MAX_INGEST_BYTES")]
    pub max_ingest_bytes: Option<u64>,
    /// Largest playlist inspected whole (for `EXT-X-ENDLIST`), in bytes.
    #[arg(long, env = "HLSCDN_MAX_PLAYLIST_BYTES")]
    pub max_playlist_bytes: Option<u64>,
    /// How long the catalog (`/api/v1/streams`) is served before the store is
    /// listed again (default 5s, 100ms to 1h).
    #[arg(long, env = "HLSCDN_CATALOG_REFRESH", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "duration::option")]
    pub catalog_refresh: Option<Duration>,
    /// Most keys one catalog listing reads; past it the answer says
    /// `"truncated": true` (default 100000).
    #[arg(long, env = "HLSCDN_CATALOG_MAX_OBJECTS")]
    pub catalog_max_objects: Option<usize>,
    /// Publish the demo streams (live/demo-1..3, vod/demo) into the store.
    #[arg(
        long,
        env = "HLSCDN_PUBLISH_DEMO",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub publish_demo: Option<bool>,
    #[command(flatten)]
    pub publish: PublishArgs,
}

/// The `[publish]` keys as flags (`--publish-window`): the demo publisher.
#[derive(Debug, Default, clap::Args, Serialize)]
pub struct PublishArgs {
    /// Segments in the demo's live window.
    #[arg(long = "publish-window", env = "HLSCDN_PUBLISH_WINDOW")]
    pub window: Option<usize>,
    /// Target duration of the demo's live segments, whole seconds dividing 12.
    #[arg(
        long = "publish-target-duration-secs",
        env = "HLSCDN_PUBLISH_TARGET_DURATION_SECS"
    )]
    pub target_duration_secs: Option<u64>,
    /// A demo live stream prefix in the store (default live/demo-1..3); repeatable.
    #[arg(
        long = "publish-live-stream",
        value_name = "PREFIX",
        env = "HLSCDN_PUBLISH_LIVE_STREAMS",
        value_delimiter = ','
    )]
    pub live_streams: Vec<String>,
    /// The demo VOD stream prefix in the store (default vod/demo).
    #[arg(
        long = "publish-vod-stream",
        value_name = "PREFIX",
        env = "HLSCDN_PUBLISH_VOD_STREAM"
    )]
    pub vod_stream: Option<String>,
}

/// What the layers hold; every key optional.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    listen: SocketAddr,
    store: Option<String>,
    #[serde(with = "key_values")]
    store_options: Vec<(String, String)>,
    ingest_token: Option<Secret>,
    max_ingest_bytes: u64,
    max_playlist_bytes: u64,
    #[serde(with = "duration")]
    catalog_refresh: Duration,
    catalog_max_objects: usize,
    publish_demo: bool,
    publish: PublishConfig,
    tls: runtime::tls::TlsConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            store: None,
            store_options: Vec::new(),
            ingest_token: None,
            max_ingest_bytes: DEFAULT_MAX_INGEST_BYTES,
            max_playlist_bytes: DEFAULT_MAX_PLAYLIST_BYTES,
            catalog_refresh: catalog_cache::DEFAULT_REFRESH,
            catalog_max_objects: catalog_cache::DEFAULT_MAX_OBJECTS,
            publish_demo: false,
            publish: PublishConfig::default(),
            tls: runtime::tls::TlsConfig::default(),
        }
    }
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Store URL.
    pub store: String,
    /// Store builder options.
    pub store_options: Vec<(String, String)>,
    /// Ingest token; `None` disables PUT and DELETE.
    pub ingest_token: Option<Secret>,
    /// Largest ingest body.
    pub max_ingest_bytes: u64,
    /// Largest playlist inspected whole.
    pub max_playlist_bytes: u64,
    /// How `/api/v1/streams` lists the store.
    pub catalog: CatalogSettings,
    /// The demo publisher's settings, when it runs.
    pub publish: Option<PublishConfig>,
    /// HTTPS, when `[tls]` has a certificate.
    pub tls: Option<runtime::tls::ServerTls>,
}

impl Config {
    /// Reads the file named by `--config` (if any), lays the flags and
    /// `HLSCDN_*` variables over it, and validates the result.
    pub fn load(cli: Cli) -> Result<Self> {
        let settings: Settings =
            runtime::config::load(cli.server.config.as_deref(), &cli).map_err(Error::Config)?;
        let store = match settings.store {
            Some(store) => store,
            None => {
                let dir = std::env::current_dir()?.join(DEFAULT_STORE_DIR);
                url::Url::from_directory_path(&dir)
                    .map_err(|()| {
                        Error::Config(format!("`store`: {} is not an absolute path", dir.display()))
                    })?
                    .to_string()
            }
        };
        let config = Self {
            listen: settings.listen,
            store,
            store_options: settings.store_options,
            ingest_token: settings.ingest_token,
            max_ingest_bytes: settings.max_ingest_bytes,
            max_playlist_bytes: settings.max_playlist_bytes,
            catalog: CatalogSettings {
                refresh: settings.catalog_refresh,
                max_objects: settings.catalog_max_objects,
            },
            publish: settings.publish_demo.then_some(settings.publish),
            tls: settings.tls.server().map_err(Error::Config)?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks every value, naming the key at fault.
    pub fn validate(&self) -> Result<()> {
        if self.max_ingest_bytes == 0 {
            return Err(Error::Config("`max_ingest_bytes` must be > 0".into()));
        }
        if self.max_playlist_bytes == 0 {
            return Err(Error::Config("`max_playlist_bytes` must be > 0".into()));
        }
        if !CATALOG_REFRESH.contains(&self.catalog.refresh) {
            return Err(Error::Config(
                "`catalog_refresh` must be between 100ms and 1h".into(),
            ));
        }
        if self.catalog.max_objects == 0 {
            return Err(Error::Config("`catalog_max_objects` must be > 0".into()));
        }
        if let Some(token) = self.ingest_token.as_ref().map(Secret::expose)
            && (token.len() < 8 || token.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(Error::Config(
                "`ingest_token` must be at least 8 characters with no whitespace".into(),
            ));
        }
        if let Some(publish) = &self.publish {
            publish.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::parse_from(std::iter::once("hlscdn-origin").chain(args.iter().copied()))
    }

    /// `args` over a file holding `text`.
    fn with_file(args: &[&str], text: &str) -> Result<Config> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("origin.toml");
        std::fs::write(&path, text).expect("write");
        let mut all = vec!["--config", path.to_str().expect("utf-8")];
        all.extend_from_slice(args);
        Config::load(cli(&all))
    }

    #[test]
    fn flags_win_over_the_file() {
        let config = with_file(
            &["--listen", "127.0.0.1:2", "--store-option", "a=b"],
            "listen = \"127.0.0.1:1\"\nstore = \"memory://\"\n[store_options]\naws_region = \"x\"\n",
        )
        .expect("valid");
        assert_eq!(config.listen.port(), 2);
        assert_eq!(config.store, "memory://");
        assert_eq!(config.store_options.len(), 2);
        assert!(config.publish.is_none());
    }

    #[test]
    fn the_demo_publisher_from_file_and_flags() {
        let text = "publish_demo = true\n[publish]\nwindow = 8\ntarget_duration_secs = 4\n";
        let config = with_file(&["--store", "memory://", "--publish-window", "10"], text).expect("valid");
        let publish = config.publish.expect("publishing");
        assert_eq!((publish.window, publish.target_duration_secs), (10, 4));
        let config = with_file(&["--store", "memory://", "--publish-demo=false"], text).expect("valid");
        assert!(config.publish.is_none(), "the flag turns it off");
        let config = Config::load(cli(&["--store", "memory://", "--publish-demo"])).expect("valid");
        assert!(config.publish.is_some());
        let err = with_file(&["--publish-target-duration-secs", "5"], text).err();
        assert!(err.is_some_and(|e| e.to_string().contains("`publish.target_duration_secs`")));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = with_file(&[], "lisen = \"x\"").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("unknown key `lisen`")));
        let err = Config::load(cli(&["--max-ingest-bytes", "0"])).err();
        assert!(err.is_some_and(|e| e.to_string().contains("`max_ingest_bytes`")));
        let err = Config::load(cli(&["--ingest-token", "short"])).err();
        assert!(err.is_some_and(|e| e.to_string().contains("`ingest_token`")));
        for (flag, value, key) in [
            ("--catalog-refresh", "0s", "`catalog_refresh`"),
            ("--catalog-refresh", "99ms", "`catalog_refresh`"),
            ("--catalog-refresh", "3600001ms", "`catalog_refresh`"),
            ("--catalog-max-objects", "0", "`catalog_max_objects`"),
        ] {
            let err = Config::load(cli(&[flag, value])).err();
            assert!(err.is_some_and(|e| e.to_string().contains(key)), "{flag} {value}");
        }
        for text in [
            "catalog_refresh = \"50ms\"",
            "catalog_refresh_ms = 5000",
            "catalog_refresh = 5000",
        ] {
            let err = with_file(&[], text).err();
            assert!(
                err.is_some_and(|e| e.to_string().contains("catalog_refresh")),
                "{text}"
            );
        }
    }

    #[test]
    fn debug_output_never_shows_the_ingest_token() {
        let cli = cli(&[
            "--store",
            "memory://",
            "--ingest-token",
            "ingest-secret-debug-0123",
        ]);
        assert!(!format!("{cli:?}").contains("ingest-secret-debug"));
        let config = Config::load(cli).expect("valid");
        assert_eq!(
            config.ingest_token.as_ref().map(Secret::expose),
            Some("ingest-secret-debug-0123")
        );
        assert!(
            !format!("{config:?}").contains("ingest-secret-debug"),
            "{config:?}"
        );
        let config = with_file(&[], "ingest_token = \"ingest-secret-debug-0123\"").expect("valid");
        assert!(!format!("{config:?}").contains("ingest-secret-debug"));
    }

    #[test]
    fn default_store_is_a_local_directory() {
        let config = Config::load(cli(&[])).expect("valid");
        assert!(config.store.starts_with("file:///"));
        assert!(config.store.trim_end_matches('/').ends_with(DEFAULT_STORE_DIR));
        assert_eq!(config.catalog, CatalogSettings::default());
    }

    #[test]
    fn catalog_settings_from_file_and_flags() {
        let config = with_file(
            &["--catalog-max-objects", "700"],
            "catalog_refresh = \"2s\"\ncatalog_max_objects = 500\n",
        )
        .expect("valid");
        assert_eq!(config.catalog.refresh, Duration::from_secs(2));
        assert_eq!(config.catalog.max_objects, 700, "the flag wins");
    }
}
