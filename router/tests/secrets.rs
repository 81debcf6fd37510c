//! The fleet's secrets never leave the processes that hold them. A whole
//! cluster (origin, two routers, an edge) runs with distinctive secrets and
//! verbose logs; it is exercised, including failing authentication, bad
//! requests and bad configurations; then every log line, every `/metrics`,
//! `/api/v1/*` and error answer, and the `--help`/`--version` text of each
//! binary is searched for the secrets.

use test_kit as common;
use test_kit::raw;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Server, client, eventually};
use router_api::fleet::EdgesView;

const FLEET: &str = "FLEETSECRET7f3a9c2e5b1d4a60";
const INGEST: &str = "INGESTSECRET1b9e4d7c2a5f8e03";
const SIGN_ONE: &str = "SIGNSECRETONE5d2c8f1a7e4b9c06";
const SIGN_TWO: &str = "SIGNSECRETTWO9a4e1c7d3b8f2a51";
const SECRETS: [&str; 4] = [FLEET, INGEST, SIGN_ONE, SIGN_TWO];

/// The log filter the processes run with: everything our crates log, at
/// every level, and the HTTP libraries at debug.
const LOG: &str = "trace,hyper=debug,hyper_util=debug,h2=debug,reqwest=debug,tower=debug";

fn key(id: &str, secret: &str) -> String {
    format!("{id}:{secret}")
}

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{what} shows the secret {secret}:\n{}",
            text.lines()
                .filter(|l| l.contains(secret))
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// Everything a GET answers: status line, headers and body, as text.
async fn dump(url: &str, auth: Option<&str>) -> String {
    let mut request = client().get(url);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let r = request.send().await.expect("get");
    let mut text = format!("{}\n{:?}\n", r.status(), r.headers());
    text.push_str(&r.text().await.unwrap_or_default());
    text
}

/// Every answer of a raw request, whole.
async fn raw_dump(addr: std::net::SocketAddr, request: &str) -> String {
    raw::exchange(addr, request.as_bytes(), Duration::from_secs(5))
        .await
        .text
}

/// The first server-sent event of `/api/v1/events`.
async fn first_event(router: &Server) -> String {
    let mut r = client()
        .get(router.url("/api/v1/events"))
        .send()
        .await
        .expect("events");
    let mut text = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(Some(chunk)) = r.chunk().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("\n\n") {
                break;
            }
        }
    })
    .await;
    assert!(text.contains("event: fleet"), "{text}");
    text
}

/// Output (stdout and stderr) of a binary run with `args` and `envs`, and
/// whether it exited by itself within 10 s (it is killed otherwise).
fn run_to_end(package: &str, bin: &str, args: &[&str], envs: &[(&str, &str)]) -> (String, bool) {
    let path = common::bin_path(package, bin);
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let file = || out.reopen().expect("reopen");
    let mut command = Command::new(path);
    command
        .args(args)
        .env("RUST_LOG", LOG)
        .stdout(file())
        .stderr(file());
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("run");
    let started = std::time::Instant::now();
    let exited = loop {
        if let Ok(Some(_)) = child.try_wait() {
            break true;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read(out.path()).expect("read output");
    (String::from_utf8_lossy(&text).into_owned(), exited)
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_logs_answers_or_help() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path();
    let envs = [("RUST_LOG", LOG)];
    let k1 = key("k1", SIGN_ONE);
    let k2 = key("k2", SIGN_TWO);

    let origin = Server::binary_logged(
        "origin-store",
        "hlscdn-origin",
        &["--store", "memory://", "--ingest-token", INGEST],
        &envs,
        &logs.join("origin.log"),
    );
    let origin_url = origin.url("");
    let http = client();
    for (path, body) in [
        (
            "/vod/x/index.m3u8",
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg-0.ts\n#EXT-X-ENDLIST\n",
        ),
        ("/vod/x/seg-0.ts", "segment"),
    ] {
        let r = http
            .put(origin.url(path))
            .bearer_auth(INGEST)
            .body(body)
            .send()
            .await
            .expect("put");
        assert_eq!(r.status(), 201);
    }

    let config = logs.join("router.toml");
    std::fs::write(
        &config,
        "discovery_interval = \"300ms\"\nbootstrap_timeout = \"2s\"\n",
    )
    .expect("config");
    let config = config.to_str().expect("utf-8");
    // The fleet token and keys come from the environment for one router and
    // from flags for the other: both ways must stay quiet.
    let router = Server::binary_logged(
        "router",
        "hlscdn-router",
        &["--config", config, "--origin", &origin_url],
        &[
            ("RUST_LOG", LOG),
            ("HLSCDN_FLEET_TOKEN", FLEET),
            ("HLSCDN_SIGNING_KEYS", &format!("{k2},{k1}")),
        ],
        &logs.join("router-1.log"),
    );
    let router_url = router.url("");
    let peer = Server::binary_logged(
        "router",
        "hlscdn-router",
        &[
            "--config",
            config,
            "--origin",
            &origin_url,
            "--fleet-token",
            FLEET,
            "--signing-key",
            &k2,
            "--signing-key",
            &k1,
            "--peer",
            &router_url,
        ],
        &envs,
        &logs.join("router-2.log"),
    );
    let edge = Server::binary_logged(
        "edge-agent",
        "hlscdn-edge",
        &[
            "--id",
            "edge-s",
            "--origin",
            &origin_url,
            "--router",
            &router_url,
            "--fleet-token",
            FLEET,
            "--signing-key",
            &k1,
            "--signing-key",
            &k2,
            "--heartbeat-interval",
            "200ms",
            "--drain-quiet",
            "300ms",
        ],
        &envs,
        &logs.join("edge.log"),
    );

    // The edge is learned by both routers (ads, forwarding, discovery, bootstrap).
    for r in [&router, &peer] {
        eventually(Duration::from_secs(10), "the edge is advertised", || async {
            let view: EdgesView = match client().get(r.url("/api/v1/edges")).send().await {
                Ok(resp) => resp.json().await.unwrap_or(EdgesView {
                    router: String::new(),
                    edges: Vec::new(),
                }),
                Err(_) => return false,
            };
            view.edges.iter().any(|e| e.id == "edge-s" && e.fresh)
        })
        .await;
    }

    let mut answers = Vec::new();
    // A viewer, through both routers, onto the edge; a redirect.
    for r in [&router, &peer] {
        let body = common::text(r.url("/vod/x/index.m3u8")).await;
        let segment = body
            .lines()
            .find(|l| l.starts_with("http"))
            .expect("a segment URL")
            .to_owned();
        assert_eq!(http.get(&segment).send().await.expect("segment").status(), 200);
        answers.push(body);
        let tampered = segment.replace("hmac=", "hmac=0");
        answers.push(dump(&tampered, None).await);
        answers.push(dump(&segment.replace("vod/x", "vod/y"), None).await);
        answers.push(dump(&r.url("/r/vod/x/seg-0.ts"), None).await);
    }

    // Failing authentication everywhere, with tokens that look close.
    let near = |s: &str| format!("Bearer {}", &s[..s.len() - 1]);
    for auth in [
        None,
        Some(near(FLEET)),
        Some(near(INGEST)),
        Some("Bearer x".to_owned()),
    ] {
        let auth = auth.as_deref();
        let mut put = http.put(origin.url("/vod/x/evil.ts")).body("evil");
        let mut ad = http.post(router.url("/api/v1/ads")).body("{}");
        let mut announce = http
            .post(router.url("/api/v1/routers"))
            .body("{\"id\":\"x\",\"url\":\"http://127.0.0.1:1\"}");
        let mut drain = http.post(edge.url("/admin/drain"));
        if let Some(auth) = auth {
            put = put.header("authorization", auth);
            ad = ad.header("authorization", auth);
            announce = announce.header("authorization", auth);
            drain = drain.header("authorization", auth);
        }
        for request in [put, ad, announce, drain] {
            let r = request.send().await.expect("send");
            assert!(r.status() == 401 || r.status() == 403, "{}", r.status());
            let headers = format!("{:?}", r.headers());
            answers.push(format!("{headers}\n{}", r.text().await.unwrap_or_default()));
        }
    }
    // With the right token but a bad body: the reason must not echo the token.
    let r = http
        .post(router.url("/api/v1/ads"))
        .bearer_auth(FLEET)
        .body(format!("{{\"edge_id\":\"{FLEET}\"}}"))
        .send()
        .await
        .expect("ad");
    assert_eq!(r.status(), 400);
    answers.push(r.text().await.unwrap_or_default());

    // Bad requests at every server.
    for server in [&origin, &router, &edge] {
        let a = server.addr;
        for request in [
            "GET /../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
            "GET http://evil.example/x.ts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
            "DELETE /vod/x/seg-0.ts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
            format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(70 * 1024)
            ),
            "GET /nothing/here.m3u8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
        ] {
            answers.push(raw_dump(a, &request).await);
        }
    }

    // Every read-only view and endpoint.
    for server in [&origin, &router, &peer, &edge] {
        for path in ["/metrics", "/healthz", "/readyz"] {
            answers.push(dump(&server.url(path), None).await);
        }
    }
    for r in [&router, &peer] {
        for path in [
            "/api/v1/edges",
            "/api/v1/routers",
            "/api/v1/scale",
            "/api/v1/explain?path=/vod/x/index.m3u8",
            "/api/v1/explain?path=/../x",
        ] {
            answers.push(dump(&r.url(path), None).await);
            // Presenting the token to a read-only view reveals nothing more.
            answers.push(dump(&r.url(path), Some(&format!("Bearer {FLEET}"))).await);
        }
        answers.push(first_event(r).await);
    }
    answers.push(dump(&origin.url("/api/v1/streams"), None).await);
    for (i, answer) in answers.iter().enumerate() {
        assert_clean(&format!("answer {i}"), answer);
    }

    // A drain with the token (logged by the edge and the routers), then every
    // process stops, so its shutdown is in its log too.
    let r = http
        .post(edge.url("/admin/drain"))
        .bearer_auth(FLEET)
        .send()
        .await
        .expect("drain");
    assert_eq!(r.status(), 202);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for server in [edge, peer, router, origin] {
        server.terminate();
    }
    let mut total = 0;
    for name in ["origin.log", "router-1.log", "router-2.log", "edge.log"] {
        let log = log_of(&logs.join(name));
        assert!(log.lines().count() >= 3, "{name} was written:\n{log}");
        total += log.len();
        assert_clean(name, &log);
    }
    assert!(total > 10_000, "the logs were written ({total} bytes)");

    // `--help` and `--version`, with every secret in the environment.
    let all_envs = [
        ("HLSCDN_FLEET_TOKEN", FLEET),
        ("HLSCDN_INGEST_TOKEN", INGEST),
        ("HLSCDN_SIGNING_KEYS", &format!("{k1},{k2}")[..]),
    ];
    for (package, bin) in [
        ("origin-store", "hlscdn-origin"),
        ("router", "hlscdn-router"),
        ("edge-agent", "hlscdn-edge"),
    ] {
        for flag in ["--help", "-h", "--version"] {
            let (out, exited) = run_to_end(package, bin, &[flag], &all_envs);
            assert!(exited && !out.is_empty(), "{bin} {flag}");
            assert_clean(&format!("{bin} {flag}"), &out);
        }
    }
}

#[test]
fn configuration_errors_do_not_echo_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let k1 = key("k1", SIGN_ONE);
    // Mistakes on the very line that holds a secret, in a TOML file.
    let files = [
        format!("origin = \"http://127.0.0.1:9\"\nfleet_tokn = \"{FLEET}\"\n"),
        format!("origin = \"http://127.0.0.1:9\"\nfleet_token = \"{FLEET}\n"),
        format!("origin = \"http://127.0.0.1:9\"\nfleet_token = \"{FLEET}\" x\n"),
        format!("origin = \"http://127.0.0.1:9\"\nfleet_token = \"{FLEET}\"\nsigning_keys = \"{k1}\"\n"),
        format!("origin = \"http://127.0.0.1:9\"\nfleet_token = \"{FLEET}\"\nsigning_keys = [\"{k1}\"]]\n"),
        format!(
            "origin = \"http://127.0.0.1:9\"\nfleet_token = \"{FLEET}\"\nsigning_keys = [\"bad id:{SIGN_ONE}\"]\n"
        ),
        format!(
            "origin = \"http://127.0.0.1:9\"\nfleet_token = \"{FLEET}\"\nsigning_keys = [\"k1:{SIGN_ONE}\", \"k1:{SIGN_TWO}\"]\n"
        ),
        format!("store = \"memory://\"\ningest_tokn = \"{INGEST}\"\n"),
        format!("store = \"memory://\"\ningest_token = \"{INGEST} with space\"\n"),
        format!("id = \"e1\"\norigin = \"http://127.0.0.1:9\"\nfleet_token = [\"{FLEET}\"]\n"),
    ];
    for (i, text) in files.iter().enumerate() {
        let path = dir.path().join(format!("bad-{i}.toml"));
        std::fs::write(&path, text).expect("write");
        let path = path.to_str().expect("utf-8");
        for (package, bin) in [
            ("origin-store", "hlscdn-origin"),
            ("router", "hlscdn-router"),
            ("edge-agent", "hlscdn-edge"),
        ] {
            let (out, exited) = run_to_end(package, bin, &["--config", path, "--listen", "127.0.0.1:0"], &[]);
            assert!(
                exited && !out.contains("listening on"),
                "{bin} accepted {text}: {out}"
            );
            assert_clean(&format!("{bin} with bad-{i}.toml"), &out);
        }
    }
    // Mistakes in flags and variables.
    let one = format!("k1:{SIGN_ONE}");
    let spaced_key = format!("k 1:{SIGN_ONE}");
    let two_k1 = format!("k1:{SIGN_ONE},k1:{SIGN_TWO}");
    let spaced_fleet = format!("{FLEET} x");
    let spaced_ingest = format!("{INGEST} x");
    let router = ("router", "hlscdn-router");
    let edge = ("edge-agent", "hlscdn-edge");
    type Envs<'a> = Vec<(&'a str, &'a str)>;
    let flag_cases: Vec<((&str, &str), Vec<&str>, Envs)> = vec![
        (
            router,
            vec![
                "--origin",
                "http://127.0.0.1:9",
                "--fleet-token",
                FLEET,
                "--signing-key",
                &spaced_key,
            ],
            vec![],
        ),
        (
            router,
            vec!["--origin", "http://127.0.0.1:9", "--epsilon", "-1"],
            vec![("HLSCDN_FLEET_TOKEN", FLEET), ("HLSCDN_SIGNING_KEYS", &two_k1)],
        ),
        (
            edge,
            vec!["--id", "e1", "--origin", "http://127.0.0.1:9"],
            vec![
                ("HLSCDN_FLEET_TOKEN", &spaced_fleet),
                ("HLSCDN_SIGNING_KEYS", &one),
            ],
        ),
        (
            edge,
            vec![
                "--id",
                "bad id",
                "--origin",
                "http://127.0.0.1:9",
                "--fleet-token",
                FLEET,
                "--signing-key",
                &one,
            ],
            vec![],
        ),
        (
            ("origin-store", "hlscdn-origin"),
            vec!["--store", "nope://x", "--ingest-token", &spaced_ingest],
            vec![],
        ),
    ];
    for ((package, bin), args, envs) in flag_cases {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(&args);
        let (out, exited) = run_to_end(package, bin, &all, &envs);
        assert!(
            exited && !out.contains("listening on"),
            "{bin} {args:?} started: {out}"
        );
        assert_clean(&format!("{bin} {args:?}"), &out);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_origin_urls_never_reach_the_logs() {
    const PASSWORD: &str = "URLPASSWORD4c9e1b7a";
    const QUERY_TOKEN: &str = "URLTOKEN8d2f6a3c";
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path();
    let envs = [("RUST_LOG", LOG)];
    // An origin that is not there, reached with credentials in its URL.
    let origin = format!("http://admin:{PASSWORD}@127.0.0.1:9/base");
    // A URL refused at start is named without its credentials too.
    let with_query = format!("{origin}?token={QUERY_TOKEN}");
    let (out, exited) = run_to_end(
        "router",
        "hlscdn-router",
        &[
            "--origin",
            &with_query,
            "--fleet-token",
            FLEET,
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert!(exited && out.contains("must not have a query"), "{out}");
    assert!(!out.contains(PASSWORD) && !out.contains(QUERY_TOKEN), "{out}");
    let mut router = Server::binary_logged(
        "router",
        "hlscdn-router",
        &[
            "--origin",
            &origin,
            "--fleet-token",
            FLEET,
            "--edge",
            "e1=http://127.0.0.1:9",
        ],
        &envs,
        &logs.join("router.log"),
    );
    let mut edge = Server::binary_logged(
        "edge-agent",
        "hlscdn-edge",
        &["--id", "e1", "--origin", &origin, "--fleet-token", FLEET],
        &envs,
        &logs.join("edge.log"),
    );
    let mut store = Server::binary_logged(
        "origin-store",
        "hlscdn-origin",
        &["--store", &origin],
        &envs,
        &logs.join("origin.log"),
    );
    // Every one of them fails at the origin, and says so in its log.
    let http = client();
    for (server, path) in [
        (&router, "/live/x/master.m3u8"),
        (&edge, "/live/x/seg-1.ts"),
        (&store, "/live/x/seg-1.ts"),
    ] {
        let status = http.get(server.url(path)).send().await.expect("request").status();
        assert!(status.is_server_error() || status == 404, "{path}: {status}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for server in [&mut router, &mut edge, &mut store] {
        server.signal("TERM");
        let _ = server.wait_exit(Duration::from_secs(10));
    }
    for name in ["router.log", "edge.log", "origin.log"] {
        let text = log_of(&logs.join(name));
        assert!(
            text.contains("127.0.0.1:9"),
            "{name} names the origin's host:\n{text}"
        );
        for secret in [PASSWORD, QUERY_TOKEN] {
            assert!(
                !text.contains(secret),
                "{name} shows {secret}:\n{}",
                text.lines()
                    .filter(|l| l.contains(secret))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}
