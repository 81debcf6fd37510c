//! The deploy files stay true to the code: every example config starts its
//! binary, and every metric the alert rules, the adapter rule and the Grafana
//! dashboard use is one the binaries export.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use support::common::{Server, bin_path};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `hlscdn_*` names in a text, histogram suffixes removed.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("hlscdn_") {
        let start = i + at;
        let preceded = start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .map_or(text.len(), |e| start + e);
        if !preceded {
            let name = &text[start..end];
            let name = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            names.insert(name.to_owned());
        }
        i = end;
    }
    names
}

#[test]
fn every_metric_in_alerts_and_dashboards_exists() {
    let mut exported = String::new();
    for file in [
        "router/src/metrics.rs",
        "edge-agent/src/metrics.rs",
        "origin-store/src/metrics.rs",
    ] {
        exported.push_str(&std::fs::read_to_string(workspace().join(file)).expect("metrics.rs"));
    }
    let mut checked = 0;
    for file in [
        "prometheus/alerts.yml",
        "prometheus/adapter-rules.yaml",
        "grafana/hlscdn.json",
        "kubernetes/40-edges-hpa.yaml",
    ] {
        let text = std::fs::read_to_string(deploy().join(file)).expect("deploy file");
        let names = metric_names(&text);
        assert!(!names.is_empty(), "{file} names no metric");
        for name in names {
            assert!(
                exported.contains(&format!("\"{name}\"")),
                "{file} uses {name}, which no metrics.rs defines"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked}");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(deploy().join("grafana/hlscdn.json")).expect("json"))
            .expect("the Grafana dashboard is JSON");
    assert!(dashboard["panels"].as_array().is_some_and(|p| p.len() >= 10));
}

/// The example config with every remote address pointed at a closed loopback
/// port (tests talk to loopback only) and the listen address on port 0.
fn localized(file: &str) -> tempfile::NamedTempFile {
    let text = std::fs::read_to_string(deploy().join("config").join(file)).expect("config");
    let mut value: toml::Table = text.parse().expect("the example is TOML");
    let nowhere = toml::Value::String("http://127.0.0.1:9".into());
    for key in ["origin", "public_url"] {
        if value.contains_key(key) {
            value.insert(key.into(), nowhere.clone());
        }
    }
    for key in ["peers", "routers"] {
        if value.contains_key(key) {
            value.insert(key.into(), toml::Value::Array(vec![nowhere.clone()]));
        }
    }
    value.insert("listen".into(), toml::Value::String("127.0.0.1:0".into()));
    if value.contains_key("store") {
        value.insert("store".into(), toml::Value::String("memory://".into()));
    }
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), toml::to_string(&value).expect("toml")).expect("write");
    file
}

#[test]
fn example_configs_start_their_binaries() {
    let secrets = [
        ("HLSCDN_FLEET_TOKEN", "deploy-test-fleet-token"),
        ("HLSCDN_SIGNING_KEYS", "k1:0123456789abcdef0123"),
        ("HLSCDN_INGEST_TOKEN", "deploy-test-ingest-token"),
    ];
    for (package, bin, file) in [
        ("origin-store", "hlscdn-origin", "origin.toml"),
        ("router", "hlscdn-router", "router.toml"),
        ("edge-agent", "hlscdn-edge", "edge.toml"),
    ] {
        let config = localized(file);
        let path = bin_path(package, bin);
        let config_path = config.path().to_str().expect("utf-8");
        let server = Server::start(
            path.to_str().expect("utf-8"),
            &["--config", config_path],
            &secrets,
        );
        drop(server);
    }
    let config = localized("dashboard.toml");
    let server = Server::start(
        support::hlscdn(),
        &["dashboard", "--config", config.path().to_str().expect("utf-8")],
        &[],
    );
    drop(server);
}

#[test]
fn metric_names_are_found() {
    let names = metric_names(
        "max(hlscdn_router_fleet_edges{state=\"fresh\"}) x_hlscdn_no rate(hlscdn_edge_x_seconds_bucket[5m])",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        vec!["hlscdn_edge_x_seconds", "hlscdn_router_fleet_edges"]
    );
}
