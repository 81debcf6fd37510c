//! HTTPS end to end with real processes on loopback: an origin, a router and
//! an edge each serving TLS with certificates of a CA made for the test,
//! calling each other over https and verifying with `--tls-ca-file`; curl
//! and reqwest as clients. HTTP/2 by ALPN over TLS, h2c with prior
//! knowledge on a plain listener; no mixed content (an https viewer never
//! gets a plain-http edge, and the explain answer says why); a rotated
//! certificate served without a restart; a client that does not trust the
//! CA gets no answer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use test_kit as common;

use common::{Server, eventually, run_tool};
use reqwest::{StatusCode, Version};
use runtime::tls::LocalCa;

const FLEET_TOKEN: &str = "fleet-token-for-tls-tests-0123";

/// `curl` of `url` trusting `ca` (over HTTP/2 when the server offers it):
/// (exit code, "status http_version"). Exit 60: the certificate is not trusted.
fn curl(url: &str, ca: Option<&Path>, extra: &[&str]) -> (i32, String) {
    let mut command = std::process::Command::new("curl");
    command.args([
        "-sS",
        "--max-time",
        "5",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{http_version}",
    ]);
    if let Some(ca) = ca {
        command.arg("--cacert").arg(ca);
    }
    command.args(extra).arg(url);
    let out = command.output().expect("curl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A reqwest client that trusts `ca` only besides the system's roots.
fn trusting(ca: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca).expect("ca file");
    reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).expect("pem"))
        .no_proxy()
        .build()
        .expect("client")
}

/// `GET url` as JSON; `Null` when it does not answer JSON.
async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    match http.get(url).send().await {
        Ok(answer) => answer.json().await.unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    }
}

/// Every URI of a playlist: its non-tag lines and its `URI="…"` attributes.
fn uris(playlist: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in playlist.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !line.starts_with('#') {
            out.push(line.to_owned());
            continue;
        }
        for (i, _) in line.match_indices("URI=\"") {
            let rest = &line[i + 5..];
            if let Some(end) = rest.find('"') {
                out.push(rest[..end].to_owned());
            }
        }
    }
    out
}

struct Pki {
    dir: tempfile::TempDir,
    ca: LocalCa,
    ca_file: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = LocalCa::new("hls-cdn test CA").expect("ca");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write ca");
        Pki { dir, ca, ca_file }
    }

    /// Certificate and key files for loopback, named `name`.
    fn server(&self, name: &str) -> (String, String) {
        let (cert, key) = self
            .ca
            .write(self.dir.path(), name, &["localhost", "127.0.0.1"])
            .expect("write certificate");
        (path(&cert), path(&key))
    }
}

fn path(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fleet_over_https_speaks_h2_and_gives_https_viewers_only_https_urls() {
    let pki = Pki::new();
    let ca = path(&pki.ca_file);
    let store = tempfile::tempdir().expect("store");
    let store_url = url::Url::from_directory_path(store.path())
        .expect("url")
        .to_string();

    let (cert, key) = pki.server("origin");
    let origin = Server::origin(
        &[
            "--store",
            &store_url,
            "--publish-demo",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
        &[],
    );
    assert_eq!(origin.scheme, "https", "the origin says it listens on https");

    let (cert, key) = pki.server("router");
    let origin_url = origin.url("");
    let router = Server::binary(
        "router",
        "hlscdn-router",
        &[
            "--origin",
            &origin_url,
            "--fleet-token",
            FLEET_TOKEN,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-ca-file",
            &ca,
            // A plain-http edge: never a candidate for an https viewer.
            "--edge",
            "plain=http://127.0.0.1:9",
        ],
        &[],
    );
    assert_eq!(router.scheme, "https");

    let (cert, key) = pki.server("edge");
    let router_url = router.url("");
    let edge = Server::binary(
        "edge-agent",
        "hlscdn-edge",
        &[
            "--id",
            "secure",
            "--origin",
            &origin_url,
            "--router",
            &router_url,
            "--fleet-token",
            FLEET_TOKEN,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-ca-file",
            &ca,
            "--heartbeat-interval",
            "200ms",
        ],
        &[],
    );
    assert_eq!(edge.scheme, "https");

    // Every server answers curl over HTTP/2, verified against the CA.
    for server in [&origin, &router, &edge] {
        let (code, answer) = curl(&server.url("/healthz"), Some(&pki.ca_file), &["--http2"]);
        assert_eq!((code, answer.as_str()), (0, "200 2"), "{}", server.url(""));
    }
    // Without the CA, curl refuses the certificate (exit 60).
    let (code, _) = curl(&router.url("/healthz"), None, &[]);
    assert_eq!(code, 60, "an unknown CA is refused");

    // The edge's ads reach the router over https (the edge verifies it).
    let http = trusting(&pki.ca_file);
    let explain = router.url("/api/v1/explain?path=/live/demo-1/master.m3u8&https=true");
    eventually(Duration::from_secs(10), "the https edge is chosen", || async {
        get_json(&http, &explain).await["chosen"] == "secure"
    })
    .await;
    let json = get_json(&http, &explain).await;
    let plain = json["explanation"]["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .find(|c| c["edge_id"] == "plain")
        .expect("the plain edge is listed")
        .clone();
    assert_eq!(plain["verdict"], "plain_http", "{plain}");

    // An https master gives https URLs only, all of the https edge or router.
    let master = http
        .get(router.url("/live/demo-1/master.m3u8"))
        .send()
        .await
        .expect("master");
    assert_eq!(master.status(), StatusCode::OK);
    assert_eq!(master.version(), Version::HTTP_2, "ALPN chose h2");
    let master = master.text().await.expect("body");
    let master_uris = uris(&master);
    assert!(!master_uris.is_empty());
    for uri in &master_uris {
        assert!(uri.starts_with("https://"), "{uri} in\n{master}");
        assert!(!uri.contains("127.0.0.1:9/"), "the plain edge is offered: {uri}");
    }
    let media_url = master_uris
        .iter()
        .find(|u| u.contains(".m3u8") && !u.contains("/steer/"))
        .expect("a media playlist");
    let media = http
        .get(media_url)
        .send()
        .await
        .expect("media")
        .text()
        .await
        .expect("body");
    let segments = uris(&media);
    assert!(!segments.is_empty(), "{media}");
    let edge_base = edge.url("/");
    for uri in &segments {
        assert!(
            uri.starts_with(&edge_base),
            "{uri} is not on the https edge {edge_base}"
        );
    }
    // The segment comes through the edge, which read it from the https origin.
    let segment = http
        .get(&segments[segments.len() - 1])
        .send()
        .await
        .expect("segment");
    assert_eq!(segment.status(), StatusCode::OK);
    assert_eq!(segment.version(), Version::HTTP_2);
    assert!(!segment.bytes().await.expect("bytes").is_empty());

    // An edge that does not trust the origin's CA cannot fill its cache.
    let blind = Server::binary(
        "edge-agent",
        "hlscdn-edge",
        &["--id", "blind", "--origin", &origin_url],
        &[],
    );
    let path = url::Url::parse(&segments[0]).expect("url");
    let through_blind = format!("{}{}", blind.url("").trim_end_matches('/'), path.path());
    let answer = common::client()
        .get(&through_blind)
        .send()
        .await
        .expect("blind edge answers");
    assert!(
        answer.status().is_server_error(),
        "an unverified origin must not be read: {}",
        answer.status()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_listeners_speak_h2c_with_prior_knowledge() {
    let store = tempfile::tempdir().expect("store");
    let store_url = url::Url::from_directory_path(store.path())
        .expect("url")
        .to_string();
    let origin = Server::origin(&["--store", &store_url, "--publish-demo"], &[]);
    let (code, answer) = curl(&origin.url("/healthz"), None, &["--http2-prior-knowledge"]);
    assert_eq!((code, answer.as_str()), (0, "200 2"));
    let out = run_tool(
        "curl",
        &[
            "-sS",
            "--http2-prior-knowledge",
            &origin.url("/live/demo-1/master.m3u8"),
        ],
    );
    assert!(out.starts_with("#EXTM3U"), "{out}");
    // HTTP/1.1 still works on the same listener.
    let (code, answer) = curl(&origin.url("/healthz"), None, &["--http1.1"]);
    assert_eq!((code, answer.as_str()), (0, "200 1.1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_certificate_is_served_without_a_restart() {
    let pki = Pki::new();
    let (cert, key) = pki.server("router");
    let store = tempfile::tempdir().expect("store");
    let store_url = url::Url::from_directory_path(store.path())
        .expect("url")
        .to_string();
    let origin = Server::origin(
        &["--store", &store_url, "--tls-cert", &cert, "--tls-key", &key],
        &[],
    );
    let url = origin.url("/healthz");
    assert_eq!(curl(&url, Some(&pki.ca_file), &[]).0, 0);

    // A connection opened before the rotation keeps working after it.
    let before = trusting(&pki.ca_file);
    assert_eq!(
        before.get(&url).send().await.expect("get").status(),
        StatusCode::OK
    );

    // Rotate to a certificate of another CA: key first, then the chain, as
    // a deploy tool writing two files would; the half-written moment in
    // between keeps the old pair.
    let next = Pki::new();
    let issued = next.ca.issue(&["localhost", "127.0.0.1"]).expect("issue");
    std::fs::write(&key, &issued.key).expect("write key");
    std::fs::write(&cert, &issued.chain).expect("write chain");
    eventually(Duration::from_secs(10), "the new certificate is served", || {
        let url = url.clone();
        let ca = next.ca_file.clone();
        async move { curl(&url, Some(&ca), &[]).0 == 0 }
    })
    .await;
    assert_eq!(
        curl(&url, Some(&pki.ca_file), &[]).0,
        60,
        "the old CA no longer verifies it"
    );
    assert_eq!(
        before.get(&url).send().await.expect("kept connection").status(),
        StatusCode::OK,
        "an open connection is not dropped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn under_mutual_tls_an_edge_speaks_only_with_a_certificate_that_names_it() {
    let pki = Pki::new();
    let ca = path(&pki.ca_file);
    let (cert, key) = pki.server("router");
    let router = Server::binary(
        "router",
        "hlscdn-router",
        &[
            "--origin",
            "http://127.0.0.1:9",
            "--fleet-token",
            FLEET_TOKEN,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &ca,
        ],
        &[],
    );
    let router_url = router.url("");
    // Each edge: its id, and the name on the client certificate it presents (if any).
    let edge = |id: &str, named: Option<&str>| {
        let mut args: Vec<String> = [
            "--id",
            id,
            "--origin",
            "http://127.0.0.1:9",
            "--router",
            &router_url,
            "--fleet-token",
            FLEET_TOKEN,
            "--tls-ca-file",
            &ca,
            "--heartbeat-interval",
            "200ms",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if let Some(name) = named {
            let (cert, key) = pki
                .ca
                .write(pki.dir.path(), &format!("client-{id}"), &[name])
                .expect("client cert");
            args.extend([
                "--tls-client-cert".into(),
                path(&cert),
                "--tls-client-key".into(),
                path(&key),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::binary("edge-agent", "hlscdn-edge", &args, &[])
    };
    let _good = edge("edge-a", Some("edge-a"));
    let _impostor = edge("edge-b", Some("edge-a"));
    let _anonymous = edge("edge-c", None);

    let http = trusting(&pki.ca_file);
    let edges_url = router.url("/api/v1/edges");
    eventually(Duration::from_secs(10), "edge-a is fresh", || async {
        get_json(&http, &edges_url).await["edges"]
            .as_array()
            .is_some_and(|edges| edges.iter().any(|e| e["id"] == "edge-a" && e["fresh"] == true))
    })
    .await;
    // Several heartbeats later, the other two are still unknown.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let view = get_json(&http, &edges_url).await;
    let ids: Vec<&str> = view["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        ["edge-a"],
        "only the edge whose certificate names it is taken: {view}"
    );
    let text = http
        .get(router.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let series: router_api::prometheus::Series = "hlscdn_router_ads_total{result=\"unauthorized\"}"
        .parse()
        .expect("series");
    let refused =
        router_api::prometheus::value(&router_api::prometheus::parse(&text), &series).unwrap_or(0.0);
    assert!(refused > 0.0, "refused ads are counted");
}
