//! Configuration shared by every binary: one layered system, the same for
//! every server.
//!
//! A server's settings come from three layers, later winning: the TOML file
//! named by `--config`, then `HLSCDN_*` environment variables, then flags.
//! Every key has all three forms with one name: file key `drain_quiet`
//! (`[autoscale] cooldown` for a table), flag `--drain-quiet`
//! (`--autoscale-cooldown`), variable `HLSCDN_DRAIN_QUIET`
//! (`HLSCDN_AUTOSCALE_COOLDOWN`); a repeatable flag is the singular of its
//! key (`--router` for `routers`). Durations are human-readable (`2s`,
//! `500ms`, `1h 30m`).
//!
//! clap reads each variable together with its flag (so `--help` shows it
//! and one parser checks both); the binary's flags, serialized without the
//! ones not given, are laid over the file with [`figment`], and the result
//! is deserialized into the binary's validated `Config`. Messages name the
//! key at fault and never quote a value, which may be a secret
//! (`fleet_token = …`, `signing_keys = "k1:…"`).
//!
//! The argument groups every server has are here, flattened into each
//! command line: [`ServerArgs`] (`--config`, `--listen`), [`FleetTokenArg`]
//! and [`RoutersArg`] (for the members of a fleet), [`OriginArgs`] (for
//! the servers that read the origin).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::error::{Actual, Kind};
use figment::providers::Serialized;
use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};

use crate::secret::Secret;

/// Serde helpers for [`Duration`](std::time::Duration) settings, human-readable (`2s`, `500ms`):
/// `#[serde(with = "runtime::config::duration")]`, and
/// `runtime::config::duration::option` for an `Option<Duration>`.
pub use humantime_serde as duration;

/// `--config`, `--listen` and the `[tls]` flags, which every server takes.
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct ServerArgs {
    /// TOML configuration file; its keys are the flags' names in snake_case.
    #[arg(long, env = "HLSCDN_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "HLSCDN_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
}

/// `--fleet-token`, the fleet's shared secret.
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct FleetTokenArg {
    /// Shared secret of the fleet: ads, router-to-router calls, sessions, drains.
    #[arg(
        long,
        env = "HLSCDN_FLEET_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    #[serde(serialize_with = "expose_secret")]
    pub fleet_token: Option<Secret>,
}

/// `--router`, the routers a fleet member starts from.
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct RoutersArg {
    /// A router of the fleet; repeatable. The other routers are learned from it.
    #[arg(
        long = "router",
        value_name = "URL",
        env = "HLSCDN_ROUTERS",
        value_delimiter = ','
    )]
    pub routers: Vec<String>,
}

/// `--origin` and `--origin-option`, for the servers that read the origin.
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct OriginArgs {
    /// Origin URL: http(s)://host[/prefix] or any object store URL (file://, s3://, ...).
    #[arg(long, env = "HLSCDN_ORIGIN", value_name = "URL")]
    pub origin: Option<String>,
    /// Origin store builder option KEY=VALUE (non-HTTP origins); repeatable.
    #[arg(
        long = "origin-option",
        value_name = "KEY=VALUE",
        env = "HLSCDN_ORIGIN_OPTIONS",
        value_delimiter = ',',
        value_parser = parse_key_value
    )]
    #[serde(with = "key_values")]
    pub origin_options: Vec<(String, String)>,
}

/// Serializes a secret flag for the layering, and for nothing else.
pub fn expose_secret<S: Serializer>(secret: &Option<Secret>, serializer: S) -> Result<S::Ok, S::Error> {
    secret.as_ref().map(Secret::expose).serialize(serializer)
}

/// Serializes repeated secret flags for the layering, and for nothing else.
pub fn expose_secrets<S: Serializer>(secrets: &[Secret], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(secrets.iter().map(Secret::expose))
}

/// `127.0.0.1:port`, for the default listen addresses.
pub const fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, port))
}

/// Parses a human-readable duration flag (`2s`, `500ms`, `1h 30m`).
pub use humantime::parse_duration;

/// Serde helpers for `KEY=VALUE` settings kept as pairs (store builder
/// options): a table in the file, `--…-option KEY=VALUE` flags.
pub mod key_values {
    use serde::{Deserialize, Deserializer, Serializer};

    /// The pairs as a table.
    pub fn serialize<S: Serializer>(pairs: &[(String, String)], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(pairs.iter().map(|(k, v)| (k, v)))
    }

    /// A table as pairs, ordered by key.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<(String, String)>, D::Error> {
        let table = std::collections::BTreeMap::<String, String>::deserialize(deserializer)?;
        Ok(table.into_iter().collect())
    }
}

/// Parses a `KEY=VALUE` command-line argument.
pub fn parse_key_value(s: &str) -> std::result::Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

/// The layers of a server's settings, later winning: the TOML file (if
/// any), then `flags`, which hold the `HLSCDN_*` variables clap read under
/// each flag not given. `flags` serializes only what was given.
pub fn layers(file: Option<&Path>, flags: &impl Serialize) -> Result<Figment, String> {
    let mut figment = Figment::new();
    if let Some(path) = file {
        let table: toml::Table = read_toml(Some(path))?;
        figment = figment.merge(Layer {
            name: path.display().to_string(),
            value: table,
            flags: false,
        });
    }
    Ok(figment.merge(Layer {
        name: "flags and HLSCDN_* variables".into(),
        value: flags,
        flags: true,
    }))
}

/// Deserializes `C` from the layers; the message names the key at fault
/// and the layer it came from, and never quotes a value.
pub fn extract<C: DeserializeOwned>(figment: &Figment) -> Result<C, String> {
    figment.extract().map_err(|error| message(&error))
}

/// [`extract`] of [`layers`]: a server's settings from its file and flags.
pub fn load<C: DeserializeOwned>(file: Option<&Path>, flags: &impl Serialize) -> Result<C, String> {
    extract(&layers(file, flags)?)
}

/// One layer, named in messages.
struct Layer<T> {
    name: String,
    value: T,
    /// Flags: a flag not given (`None`, empty) is left out.
    flags: bool,
}

impl<T: Serialize> Provider for Layer<T> {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let data = Serialized::defaults(&self.value).data()?;
        if !self.flags {
            return Ok(data);
        }
        Ok(data
            .into_iter()
            .map(|(profile, dict)| (profile, given(dict)))
            .collect())
    }
}

/// `dict` without what was not given (`None`, no repeated flag, an empty
/// table), so that it never hides a lower layer's value.
fn given(dict: Dict) -> Dict {
    dict.into_iter()
        .filter_map(|(key, value)| match value {
            Value::Empty(..) => None,
            Value::Array(_, items) if items.is_empty() => None,
            Value::Dict(tag, dict) => {
                let dict = given(dict);
                (!dict.is_empty()).then_some((key, Value::Dict(tag, dict)))
            }
            value => Some((key, value)),
        })
        .collect()
}

/// A figment error as one line that names the key and never quotes a value.
/// A custom message that starts with a backquote already names its key
/// (`` `routers[1]` must be http(s) ``) and is kept as it is.
fn message(error: &figment::Error) -> String {
    let key = error.path.join(".");
    let named = |field: &str| {
        if key.is_empty() {
            field.to_owned()
        } else {
            format!("{key}.{field}")
        }
    };
    let text = match &error.kind {
        Kind::MissingField(field) => return format!("`{}` is required", named(field)),
        Kind::Message(text) if text.starts_with('`') => return text.clone(),
        Kind::UnknownField(field, _) if key.is_empty() => format!("unknown key `{field}`"),
        Kind::UnknownField(..) => format!("unknown key `{key}`"),
        Kind::InvalidType(actual, expected) => {
            format!("invalid type: {}, expected {expected}", kind_of(actual))
        }
        Kind::InvalidValue(actual, expected) => {
            format!("invalid value: {}, expected {expected}", kind_of(actual))
        }
        other => other.to_string(),
    };
    let text = match &error.kind {
        Kind::UnknownField(..) => text,
        _ if key.is_empty() => text,
        _ => format!("`{key}`: {text}"),
    };
    match &error.metadata {
        Some(layer) => format!("{text} (in {})", layer.name),
        None => text,
    }
}

/// What a value was, without the value.
fn kind_of(actual: &Actual) -> String {
    match actual {
        Actual::Bool(_) => "bool".into(),
        Actual::Unsigned(_) | Actual::Signed(_) => "integer".into(),
        Actual::Float(_) => "float".into(),
        Actual::Char(_) => "char".into(),
        Actual::Str(_) => "string".into(),
        Actual::Bytes(_) => "bytes".into(),
        Actual::Other(_) => "value".into(),
        other => other.to_string(),
    }
}

/// Reads an optional TOML file into `T` (its default when there is no
/// file); the message names the file, the line and, from serde, the key at
/// fault.
pub fn read_toml<T: serde::de::DeserializeOwned + Default>(
    path: Option<&std::path::Path>,
) -> Result<T, String> {
    let Some(path) = path else { return Ok(T::default()) };
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), toml_error(&text, &e)))
}

/// A TOML error as a one-line message that never quotes the file: the
/// excerpt `toml`'s `Display` adds is the offending line, and serde's
/// "invalid type" messages quote the value, either of which may be a secret
/// (`fleet_token = …`, `signing_keys = "k1:…"`).
fn toml_error(text: &str, error: &toml::de::Error) -> String {
    let mut message = error.message().trim().replace('\n', " ");
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((found, expected)) = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once(", expected "))
        {
            let kind = found.split_whitespace().next().unwrap_or("value");
            message = format!("{prefix}{kind}, expected {expected}");
            break;
        }
    }
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn toml_errors_name_the_line_but_never_quote_it() {
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Secrets {
            token: Option<String>,
            keys: Option<Vec<String>>,
        }
        let dir = tempfile::tempdir().expect("tempdir");
        for (text, expect) in [
            ("tokn = \"SECRET-1\"\n", "line 1, column 1: unknown field `tokn`"),
            ("\ntoken = \"SECRET-1\n", "line 2"),
            ("token = \"SECRET-1\" x\n", "line 1"),
            (
                "keys = \"k1:SECRET-1\"\n",
                "line 1, column 8: invalid type: string, expected a sequence",
            ),
            ("token = 1234567890\n", "invalid type: integer, expected a string"),
        ] {
            let path = dir.path().join("c.toml");
            std::fs::write(&path, text).expect("write");
            let error = read_toml::<Secrets>(Some(&path)).err().unwrap_or_default();
            assert!(error.contains(expect), "{text:?}: {error}");
            assert!(
                !error.contains("SECRET") && !error.contains("1234567890"),
                "{error}"
            );
            assert_eq!(error.lines().count(), 1, "{error}");
        }
    }

    /// A server's settings, as a binary declares them.
    #[derive(Debug, Clone, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        listen: SocketAddr,
        token: Option<Secret>,
        #[serde(default)]
        keys: Vec<Secret>,
        #[serde(with = "duration", default)]
        quiet: Duration,
        #[serde(default)]
        nested: Nested,
    }

    #[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Nested {
        size: Option<u64>,
    }

    #[derive(Debug, Default, clap::Parser, Serialize)]
    struct Flags {
        #[command(flatten)]
        #[serde(flatten)]
        server: ServerArgs,
        #[arg(long, value_parser = parse_duration)]
        #[serde(with = "duration::option")]
        quiet: Option<Duration>,
    }

    fn load_text(text: &str, flags: &Flags) -> Result<Settings, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).expect("write");
        load(Some(&path), flags)
    }

    #[test]
    fn flags_win_over_the_file_and_durations_read_as_people_write_them() {
        use clap::Parser;
        let flags = Flags::parse_from(["test", "--listen", "127.0.0.1:2", "--quiet", "1m 30s"]);
        let text = "listen = \"127.0.0.1:1\"\nquiet = \"2s\"\ntoken = \"t\"\n[nested]\nsize = 3\n";
        let settings = load_text(text, &flags).expect("valid");
        assert_eq!(settings.listen.port(), 2);
        assert_eq!(settings.quiet, Duration::from_secs(90));
        assert_eq!(settings.token.as_ref().map(Secret::expose), Some("t"));
        assert_eq!(settings.nested.size, Some(3));
        let settings = load_text(text, &Flags::default()).expect("valid");
        assert_eq!(settings.quiet, Duration::from_secs(2));
        let missing: Result<Settings, _> = load(None, &Flags::default());
        assert_eq!(missing.err().as_deref(), Some("`listen` is required"));
    }

    #[test]
    fn layered_errors_name_the_key_but_never_quote_the_value() {
        for (text, expect) in [
            (
                "listen = \"127.0.0.1:1\"\ntokn = \"SECRET-1\"\n",
                "unknown key `tokn` (in ",
            ),
            (
                "listen = \"127.0.0.1:1\"\nkeys = \"k1:SECRET-1\"\n",
                "`keys`: invalid type: string, expected a sequence (in ",
            ),
            (
                "listen = \"127.0.0.1:1\"\ntoken = 1234567890\n",
                "`token`: invalid type: integer, expected a string",
            ),
            (
                "listen = \"127.0.0.1:1\"\nquiet = 5\n",
                "`quiet`: invalid type: integer",
            ),
            (
                "listen = \"127.0.0.1:1\"\n[nested]\nsize = \"SECRET-1\"\n",
                "`nested.size`: invalid type: string",
            ),
            (
                "listen = \"127.0.0.1:1\"\n[nested]\nsiz = 1\n",
                "unknown key `nested.siz`",
            ),
            ("listen = \"127.0.0.1:1\"\ntoken = \"SECRET-1\n", "line 2"),
            ("listen = \"127.0.0.1:1\"\nkeyz = []\n", "unknown key `keyz`"),
        ] {
            let error = load_text(text, &Flags::default()).err().unwrap_or_default();
            assert!(error.contains(expect), "{text:?}: {error}");
            assert!(
                !error.contains("SECRET") && !error.contains("1234567890"),
                "{error}"
            );
            assert_eq!(error.lines().count(), 1, "{error}");
        }
    }

    #[test]
    fn secrets_and_pairs_serialize_for_the_layering() {
        #[derive(Serialize)]
        struct Given {
            #[serde(serialize_with = "expose_secret")]
            token: Option<Secret>,
            #[serde(serialize_with = "expose_secrets")]
            keys: Vec<Secret>,
            #[serde(with = "key_values")]
            options: Vec<(String, String)>,
        }
        let given = Given {
            token: Some(Secret::from("t0")),
            keys: vec![Secret::from("k1:a")],
            options: vec![("b".into(), "2".into()), ("a".into(), "1".into())],
        };
        let table = toml::Table::try_from(&given).expect("serializes");
        assert_eq!(table["token"].as_str(), Some("t0"));
        assert_eq!(table["keys"][0].as_str(), Some("k1:a"));
        assert_eq!(table["options"]["a"].as_str(), Some("1"));
        #[derive(serde::Deserialize)]
        struct Read {
            #[serde(with = "key_values")]
            options: Vec<(String, String)>,
        }
        let read: Read = table.try_into().expect("deserializes");
        assert_eq!(read.options[0], ("a".to_owned(), "1".to_owned()));
    }
}
