//! `hlscdn-origin` configuration: a TOML file (`--config`), overridden by
//! `HLSCDN_*` environment variables, overridden by flags; validated at start
//! with messages that name the key.
//!
//! ```toml
//! listen = "127.0.0.1:8000"
//! store = "file:///var/lib/hlscdn"
//! ingest_token = "change-me"
//! max_ingest_bytes = 268435456
//! publish_demo = false
//! catalog_refresh_ms = 5000    # /api/v1/streams: one listing per period at most
//! catalog_max_objects = 100000 # ... reading at most this many keys
//!
//! [store_options]            # builder keys of the store, e.g. for S3:
//! aws_endpoint = "http://127.0.0.1:9000"
//! aws_allow_http = "true"
//!
//! [publish]                  # the demo publisher
//! window = 6
//! target_duration_secs = 2
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use crate::catalog_cache::{self, CatalogSettings};
use crate::publisher::PublishConfig;
use crate::{Error, Result};
use runtime::secret::Secret;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8000";
/// Default largest ingest body: 256 MiB.
pub const DEFAULT_MAX_INGEST_BYTES: u64 = 256 * 1024 * 1024;
/// Default largest playlist inspected for `EXT-X-ENDLIST`: 16 MiB.
pub const DEFAULT_MAX_PLAYLIST_BYTES: u64 = 16 * 1024 * 1024;
/// Bounds of `catalog_refresh_ms`: 100 ms to 1 h.
pub const CATALOG_REFRESH_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;
/// Directory of the default `file://` store, relative to the working directory.
pub const DEFAULT_STORE_DIR: &str = "hlscdn-store";

/// Command line of `hlscdn-origin`. Every flag also reads an `HLSCDN_*`
/// variable; flags win over variables, which win over the file.
#[derive(Debug, Parser)]
#[command(
    name = "hlscdn-origin",
    version,
    about = "hls-cdn origin: HTTP over an object store, with ingest"
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "HLSCDN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "HLSCDN_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Object store URL: file:///dir, memory://, s3://bucket/prefix, gs://, az://, http(s)://.
    /// Default: `file://` + the working directory + `/hlscdn-store`.
    #[arg(long, env = "HLSCDN_STORE")]
    pub store: Option<String>,
    /// Store builder option KEY=VALUE (e.g. aws_endpoint=http://127.0.0.1:9000); repeatable.
    #[arg(long = "store-option", value_name = "KEY=VALUE", value_parser = runtime::config::parse_key_value)]
    pub store_options: Vec<(String, String)>,
    /// Bearer token that PUT and DELETE must present; without it ingest is off.
    #[arg(long, env = "HLSCDN_INGEST_TOKEN", hide_env_values = true)]
    pub ingest_token: Option<Secret>,
    /// Largest ingest body in bytes (413 past it).
    #[arg(long, env = "HLSCDN_MAX_INGEST_BYTES")]
    pub max_ingest_bytes: Option<u64>,
    /// How long the catalog (`/api/v1/streams`) is served before the store is
    /// listed again, in milliseconds (default 5000).
    #[arg(long, env = "HLSCDN_CATALOG_REFRESH_MS")]
    pub catalog_refresh_ms: Option<u64>,
    /// Most keys one catalog listing reads; past it the answer says
    /// `"truncated": true` (default 100000).
    #[arg(long, env = "HLSCDN_CATALOG_MAX_OBJECTS")]
    pub catalog_max_objects: Option<usize>,
    /// Publish the demo streams (live/demo-1..3, vod/demo) into the store.
    #[arg(long, env = "HLSCDN_PUBLISH_DEMO")]
    pub publish_demo: bool,
    /// Segments in the demo's live window.
    #[arg(long, env = "HLSCDN_PUBLISH_WINDOW")]
    pub publish_window: Option<usize>,
    /// Target duration of the demo's live segments, in seconds.
    #[arg(long, env = "HLSCDN_PUBLISH_TARGET_DURATION")]
    pub publish_target_duration: Option<u64>,
}

/// The file form; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    store: Option<String>,
    #[serde(default)]
    store_options: BTreeMap<String, String>,
    ingest_token: Option<Secret>,
    max_ingest_bytes: Option<u64>,
    max_playlist_bytes: Option<u64>,
    catalog_refresh_ms: Option<u64>,
    catalog_max_objects: Option<usize>,
    publish_demo: Option<bool>,
    #[serde(default)]
    publish: PublishFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishFile {
    window: Option<usize>,
    target_duration_secs: Option<u64>,
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
}

impl Config {
    /// Reads the file named by `--config` (if any) and applies the command line over it.
    pub fn load(cli: Cli) -> Result<Self> {
        let file = runtime::config::read_toml(cli.config.as_deref()).map_err(Error::Config)?;
        Self::merge(cli, file)
    }

    fn merge(cli: Cli, file: FileConfig) -> Result<Self> {
        let store = match cli.store.or(file.store) {
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
        let mut store_options: Vec<(String, String)> = file.store_options.into_iter().collect();
        store_options.extend(cli.store_options);
        let publish = if cli.publish_demo || file.publish_demo.unwrap_or(false) {
            let mut publish = PublishConfig::default();
            if let Some(window) = cli.publish_window.or(file.publish.window) {
                publish.window = window;
            }
            if let Some(secs) = cli.publish_target_duration.or(file.publish.target_duration_secs) {
                publish.target_duration_secs = secs;
            }
            Some(publish)
        } else {
            None
        };
        let config = Self {
            listen: match cli.listen.or(file.listen) {
                Some(addr) => addr,
                None => DEFAULT_LISTEN
                    .parse()
                    .map_err(|e| Error::Config(format!("default `listen`: {e}")))?,
            },
            store,
            store_options,
            ingest_token: cli.ingest_token.or(file.ingest_token),
            max_ingest_bytes: cli
                .max_ingest_bytes
                .or(file.max_ingest_bytes)
                .unwrap_or(DEFAULT_MAX_INGEST_BYTES),
            max_playlist_bytes: file.max_playlist_bytes.unwrap_or(DEFAULT_MAX_PLAYLIST_BYTES),
            catalog: CatalogSettings {
                refresh: cli
                    .catalog_refresh_ms
                    .or(file.catalog_refresh_ms)
                    .map_or(catalog_cache::DEFAULT_REFRESH, Duration::from_millis),
                max_objects: cli
                    .catalog_max_objects
                    .or(file.catalog_max_objects)
                    .unwrap_or(catalog_cache::DEFAULT_MAX_OBJECTS),
            },
            publish,
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
        let refresh_ms = u64::try_from(self.catalog.refresh.as_millis()).unwrap_or(u64::MAX);
        if !CATALOG_REFRESH_MS.contains(&refresh_ms) {
            return Err(Error::Config(format!(
                "`catalog_refresh_ms` must be between {} and {}",
                CATALOG_REFRESH_MS.start(),
                CATALOG_REFRESH_MS.end()
            )));
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

    #[test]
    fn flags_win_over_the_file() {
        let file: FileConfig = toml::from_str(
            "listen = \"127.0.0.1:1\"\nstore = \"memory://\"\n[store_options]\naws_region = \"x\"\n",
        )
        .expect("toml");
        let config =
            Config::merge(cli(&["--listen", "127.0.0.1:2", "--store-option", "a=b"]), file).expect("valid");
        assert_eq!(config.listen.port(), 2);
        assert_eq!(config.store, "memory://");
        assert_eq!(config.store_options.len(), 2);
        assert!(config.publish.is_none());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = toml::from_str::<FileConfig>("lisen = \"x\"")
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("lisen")));
        let err = Config::merge(cli(&["--max-ingest-bytes", "0"]), FileConfig::default()).err();
        assert!(err.is_some_and(|e| e.to_string().contains("`max_ingest_bytes`")));
        let err = Config::merge(cli(&["--ingest-token", "short"]), FileConfig::default()).err();
        assert!(err.is_some_and(|e| e.to_string().contains("`ingest_token`")));
        for (flag, value, key) in [
            ("--catalog-refresh-ms", "0", "`catalog_refresh_ms`"),
            ("--catalog-refresh-ms", "99", "`catalog_refresh_ms`"),
            ("--catalog-refresh-ms", "3600001", "`catalog_refresh_ms`"),
            ("--catalog-max-objects", "0", "`catalog_max_objects`"),
        ] {
            let err = Config::merge(cli(&[flag, value]), FileConfig::default()).err();
            assert!(err.is_some_and(|e| e.to_string().contains(key)), "{flag} {value}");
        }
        let file: FileConfig = toml::from_str("catalog_refresh_ms = 50").expect("toml");
        let err = Config::merge(cli(&[]), file).err();
        assert!(err.is_some_and(|e| e.to_string().contains("`catalog_refresh_ms`")));
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
        let config = Config::merge(cli, FileConfig::default()).expect("valid");
        assert_eq!(
            config.ingest_token.as_ref().map(Secret::expose),
            Some("ingest-secret-debug-0123")
        );
        assert!(
            !format!("{config:?}").contains("ingest-secret-debug"),
            "{config:?}"
        );
        let file: FileConfig = toml::from_str("ingest_token = \"ingest-secret-debug-0123\"").expect("toml");
        assert!(!format!("{file:?}").contains("ingest-secret-debug"));
    }

    #[test]
    fn default_store_is_a_local_directory() {
        let config = Config::merge(cli(&[]), FileConfig::default()).expect("valid");
        assert!(config.store.starts_with("file:///"));
        assert!(config.store.trim_end_matches('/').ends_with(DEFAULT_STORE_DIR));
        assert_eq!(config.catalog, CatalogSettings::default());
    }

    #[test]
    fn catalog_settings_from_file_and_flags() {
        let file: FileConfig =
            toml::from_str("catalog_refresh_ms = 2000\ncatalog_max_objects = 500\n").expect("toml");
        let config = Config::merge(cli(&["--catalog-max-objects", "700"]), file).expect("valid");
        assert_eq!(config.catalog.refresh, Duration::from_secs(2));
        assert_eq!(config.catalog.max_objects, 700, "the flag wins");
    }
}
