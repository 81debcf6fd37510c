//! Bad input and attacks against a real `hlscdn-edge` process: oversized
//! heads, slow and silent clients, malformed targets (none of which may reach
//! the origin), smuggling basics, crowds of idle connections, an origin that
//! redirects elsewhere (never followed), keys that must stay under the
//! origin's base, drain without the fleet token, and signed-URL attacks.

use test_kit as common;
use test_kit::raw;
mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::{Server, client};
use router_api::token::{KeyRing, SigningKey, acl_for_stream};
use support::{FLEET_TOKEN, OtherHost, origin, origin_gets, publish};

const K1: &str = "k1:edge-hostile-secret-one-0123";
const K2: &str = "k2:edge-hostile-secret-two-4567";

fn edge(args: &[&str], envs: &[(&str, &str)]) -> Server {
    let mut all = vec!["--listen", "127.0.0.1:0", "--cache-bytes", "67108864"];
    all.extend_from_slice(args);
    Server::start(env!("CARGO_BIN_EXE_hlscdn-edge"), &all, envs)
}

async fn assert_healthy(server: &mut Server) {
    assert!(server.running(), "the process is alive");
    assert!(raw::healthy(server.addr).await, "/healthz answers 200");
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn ring(spec: &str) -> KeyRing {
    KeyRing::single(spec.parse::<SigningKey>().expect("key"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_slow_and_silent_clients_and_idle_crowds() {
    let fake_origin = OtherHost::start(b"segment").await;
    let origin_url = format!("http://{}", fake_origin.addr);
    let timeout = Duration::from_secs(4);
    let mut edge = edge(
        &["--id", "edge-hostile", "--origin", &origin_url],
        &[("HLSCDN_HEADER_TIMEOUT_MS", "4000")],
    );
    let a = edge.addr;
    let big = format!(
        "GET /live/s/a.ts HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    assert_eq!(raw::status(a, &big).await, 431);
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    assert_eq!(
        raw::status(a, &format!("GET /live/s/a.ts HTTP/1.1\r\nHost: x\r\n{many}\r\n")).await,
        431
    );
    let range_bomb: String = (0..4_000).map(|i| format!("{i}-{i},")).collect();
    let status = raw::status(
        a,
        &format!("GET /live/s/a.ts HTTP/1.1\r\nHost: x\r\nRange: bytes={range_bomb}0-1\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(
        status, 200,
        "a Range header of 4 000 ranges gets the whole object"
    );

    // 200 slow heads and 50 silent connections, while viewers are served.
    let paths: Vec<String> = (0..10).map(|i| format!("/live/s/seg-{i}.ts")).collect();
    let crowd = raw::outlast_slow_crowd(
        a,
        b"GET /live/s/a.ts HTTP/1.1\r\nHost: x\r\nRange: bytes=0-",
        timeout,
        &paths,
    )
    .await;
    eprintln!("measured: 250 slow/silent clients (timeout {timeout:?}): {crowd:?}");

    // 500 idle connections, and a viewer still gets its segment at once.
    let mut idle = raw::idle_connections(a, 500).await;
    let (status, took) = raw::timed_get(a, "/live/s/seg-0.ts").await;
    assert_eq!(status, 200);
    eprintln!("measured: a segment with 500 idle connections open took {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(raw::closed_count(&mut idle).await, 0);
    drop(idle);

    // HTTP/1.0 without Host: served, then closed.
    let answer = raw::exchange(
        a,
        b"GET /live/s/seg-0.ts HTTP/1.0\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(answer.statuses, [200], "{}", answer.text);
    assert!(answer.closed);
    assert_healthy(&mut edge).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_targets_get_400_and_never_reach_the_origin() {
    let fake_origin = OtherHost::start(b"segment").await;
    let elsewhere = OtherHost::start(b"elsewhere").await;
    let origin_url = format!("http://{}/base", fake_origin.addr);
    let mut edge = edge(&["--id", "edge-paths", "--origin", &origin_url], &[]);
    let a = edge.addr;
    let o = elsewhere.addr;
    let absolute = [
        format!("http://{o}/live/s/a.ts"),
        format!("https://{o}/live/s/a.ts"),
        format!("HTTP://{o}/live/s/a.ts"),
        format!("http://user@{o}/live/s/a.ts"),
    ];
    let mut targets: Vec<Vec<u8>> = [
        &b"/live/s/\xff.ts"[..],
        b"/live/s/%ff.ts",
        b"/live/s/%c3%28.ts",
        b"/%c0%ae%c0%ae/etc/passwd",
        b"/live/s/%zz.ts",
        b"/live/s/%",
        b"/../etc/passwd",
        b"/live/../../etc/passwd",
        b"/live/./s/a.ts",
        b"/%2e%2e/etc/passwd",
        b"/.%2E/etc/passwd",
        b"/live%2f..%2f..%2fetc/passwd",
        b"/live%5c..%5cs/a.ts",
        b"/live\\..\\s/a.ts",
        b"//evil.example/a.ts",
        b"/live//s/a.ts",
        b"/live/s/",
        b"/live/s/a%00.ts",
        b"/live/s/a%0d%0aX-Injected:%201.ts",
        b"/.well-known/x",
        b"*",
    ]
    .iter()
    .map(|t| t.to_vec())
    .collect();
    targets.extend(absolute.iter().map(|t| t.as_bytes().to_vec()));
    targets.push(format!("/http://{o}/a.ts").into_bytes());
    targets.push(format!("/{}", "a".repeat(1100)).into_bytes());
    for target in &targets {
        for method in ["GET", "HEAD"] {
            let mut request = format!("{method} ").into_bytes();
            request.extend_from_slice(target);
            request
                .extend_from_slice(format!(" HTTP/1.1\r\nHost: {o}\r\nConnection: close\r\n\r\n").as_bytes());
            let answer = raw::exchange(a, &request, Duration::from_secs(5)).await;
            assert_eq!(
                answer.status(),
                400,
                "{method} {}: {}",
                String::from_utf8_lossy(target),
                answer.text
            );
        }
    }
    for request in [
        format!("CONNECT {o} HTTP/1.1\r\nHost: {o}\r\nConnection: close\r\n\r\n"),
        format!("OPTIONS http://{o}/ HTTP/1.1\r\nHost: {o}\r\nConnection: close\r\n\r\n"),
    ] {
        assert_eq!(raw::status(a, &request).await, 400, "{request}");
    }
    for method in ["POST", "PUT", "DELETE", "PATCH", "TRACE"] {
        let request = format!(
            "{method} /live/s/a.ts HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(raw::status(a, &request).await, 405, "{method}");
    }
    assert!(fake_origin.seen().is_empty(), "{:?}", fake_origin.seen());
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());

    // Keys are decoded once and re-encoded for the origin: `%252e%252e` is
    // the literal name `%2e%2e` under the origin's base path, never `..`.
    for (path, origin_sees) in [
        ("/%252e%252e/secret.ts", "GET /base/%252e%252e/secret.ts"),
        (
            "/a/%252e%252e%252fsecret.ts",
            "GET /base/a/%252e%252e%252fsecret.ts",
        ),
        ("/a%20b/c%2Bd.ts", "GET /base/a%20b/c+d.ts"),
    ] {
        let r = client().get(edge.url(path)).send().await.expect("get");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let seen = fake_origin.seen();
        assert_eq!(seen.last().map(String::as_str), Some(origin_sees), "{path}");
    }
    assert!(elsewhere.seen().is_empty());
    assert_healthy(&mut edge).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggled_requests_never_run() {
    let fake_origin = OtherHost::start(b"segment").await;
    let origin_url = format!("http://{}", fake_origin.addr);
    let mut edge = edge(
        &[
            "--id",
            "edge-smuggle",
            "--origin",
            &origin_url,
            "--fleet-token",
            FLEET_TOKEN,
        ],
        &[],
    );
    let a = edge.addr;
    let read_for = Duration::from_secs(5);
    // A drain and a segment fetch hidden behind a body whose framing conflicts.
    let hidden = format!(
        "POST /admin/drain HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {FLEET_TOKEN}\r\n\r\n\
         GET /hidden/seg.ts HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    let request = format!(
        "GET /front/seg.ts HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}",
        5 + hidden.len()
    );
    let answer = raw::exchange(a, request.as_bytes(), read_for).await;
    assert_eq!(answer.statuses.len(), 1, "{}", answer.text);
    assert!(answer.closed);
    for (what, head) in [
        (
            "two Content-Lengths",
            "Content-Length: 0\r\nContent-Length: 5\r\n",
        ),
        ("a non-chunked coding", "Transfer-Encoding: compress\r\n"),
        ("a space before the colon", "Content-Length : 0\r\n"),
        ("an obsolete line folding", "X-A: a\r\n b\r\n"),
    ] {
        let request = format!("GET /live/s/a.ts HTTP/1.1\r\nHost: x\r\n{head}\r\n");
        let answer = raw::exchange(a, request.as_bytes(), read_for).await;
        assert_eq!(answer.statuses, [400], "{what}: {}", answer.text);
    }
    let seen = fake_origin.seen();
    assert!(seen.iter().all(|s| !s.contains("hidden")), "{seen:?}");
    let r = client().get(edge.url("/readyz")).send().await.expect("readyz");
    assert_eq!(r.status(), StatusCode::OK, "not draining");
    assert_healthy(&mut edge).await;
}

#[derive(Clone)]
struct Redirecting {
    elsewhere: String,
}

async fn redirecting_origin(State(state): State<Redirecting>, request: Request) -> Response {
    let code = request
        .uri()
        .path()
        .rsplit('/')
        .next()
        .and_then(|name| name.split('.').next())
        .and_then(|n| n.parse::<u16>().ok())
        .and_then(|n| StatusCode::from_u16(n).ok())
        .unwrap_or(StatusCode::FOUND);
    let location = format!("{}{}", state.elsewhere, request.uri().path());
    (
        code,
        [
            (header::LOCATION, location),
            (header::CONTENT_LENGTH, "0".to_owned()),
        ],
    )
        .into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_redirects_are_never_followed() {
    let elsewhere = OtherHost::start(b"stolen").await;
    let state = Redirecting {
        elsewhere: format!("http://{}", elsewhere.addr),
    };
    let app = axum::Router::new().fallback(redirecting_origin).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin_addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let origin_url = format!("http://{origin_addr}");
    // Objects over 1 KiB stream through uncached: that path must not follow either.
    let mut edge = edge(
        &[
            "--id",
            "edge-redirect",
            "--origin",
            &origin_url,
            "--max-object-bytes",
            "1024",
        ],
        &[],
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for code in [301, 302, 303, 307, 308] {
        for (path, range) in [
            (format!("/live/s/{code}.ts"), None),
            (format!("/live/s/{code}.m3u8"), None),
            (format!("/live/s/big/{code}.mp4"), Some("bytes=0-99")),
        ] {
            let mut request = http.get(edge.url(&path));
            if let Some(range) = range {
                request = request.header("range", range);
            }
            let r = request.send().await.expect("get");
            assert_eq!(r.status(), StatusCode::BAD_GATEWAY, "{path}");
            assert!(r.headers().get("location").is_none(), "{path}");
            let r = http.head(edge.url(&path)).send().await.expect("head");
            assert_eq!(r.status(), StatusCode::BAD_GATEWAY, "HEAD {path}");
        }
    }
    assert!(
        elsewhere.seen().is_empty(),
        "the redirect target was contacted: {:?}",
        elsewhere.seen()
    );
    assert_healthy(&mut edge).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_without_the_fleet_token_drains_the_edge() {
    let with_token = edge(
        &[
            "--id",
            "edge-drain",
            "--origin",
            "http://127.0.0.1:9",
            "--fleet-token",
            FLEET_TOKEN,
        ],
        &[],
    );
    let without_token = edge(&["--id", "edge-open", "--origin", "http://127.0.0.1:9"], &[]);
    let prefix = &FLEET_TOKEN[..FLEET_TOKEN.len() - 1];
    for edge in [&with_token, &without_token] {
        for auth in [
            None,
            Some("Bearer wrong-token-0123".to_owned()),
            Some(format!("Bearer {prefix}")),
            Some(format!("Bearer {FLEET_TOKEN}x")),
            Some(format!("Basic {FLEET_TOKEN}")),
            Some(FLEET_TOKEN.to_owned()),
            Some("Bearer ".to_owned()),
            Some("Bearer".to_owned()),
        ] {
            let auth_line = auth
                .as_ref()
                .map(|a| format!("Authorization: {a}\r\n"))
                .unwrap_or_default();
            let request = format!(
                "POST /admin/drain?token={FLEET_TOKEN} HTTP/1.1\r\nHost: x\r\n{auth_line}X-Fleet-Token: {FLEET_TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let answer = raw::exchange(edge.addr, request.as_bytes(), Duration::from_secs(5)).await;
            assert_eq!(answer.status(), 401, "{auth:?}: {}", answer.text);
        }
        // Only POST drains; other methods on the route change nothing either.
        let answer = raw::exchange(
            edge.addr,
            format!("GET /admin/drain HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {FLEET_TOKEN}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(answer.status(), 405, "{}", answer.text);
        let r = client().get(edge.url("/readyz")).send().await.expect("readyz");
        assert_eq!(r.status(), StatusCode::OK, "still ready");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_url_attacks_are_refused_before_the_origin() {
    let origin = origin();
    for path in ["/live/s1/480p/a.ts", "/live/s10/480p/a.ts", "/live/s2/480p/a.ts"] {
        publish(&origin, path, vec![7u8; 1000]).await;
    }
    let origin_url = origin.url("");
    let mut edge = edge(
        &[
            "--id",
            "edge-signed",
            "--origin",
            &origin_url,
            "--signing-key",
            K1,
            "--signing-key",
            K2,
        ],
        &[],
    );
    let a = edge.addr;
    let now = unix_now();
    let k1 = ring(K1);
    let good = k1.sign(&acl_for_stream("live/s1"), now + 600);
    let (signed, tag) = good.split_once("~hmac=").expect("hmac");
    let status_of = |target: String| async move {
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        raw::status(a, &request).await
    };
    let before = origin_gets(&origin).await;
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "a sibling stream with the same prefix",
            format!("/live/s10/480p/a.ts?hdnts={good}"),
            403,
        ),
        (
            "traversal out of the covered stream",
            format!("/live/s1/../s2/480p/a.ts?hdnts={good}"),
            400,
        ),
        (
            "encoded traversal out of the covered stream",
            format!("/live/s1/%2e%2e/s2/480p/a.ts?hdnts={good}"),
            400,
        ),
        (
            "an exact-path token on another file",
            format!(
                "/live/s1/480p/a.ts?hdnts={}",
                k1.sign("/live/s1/480p/a.tsx", now + 600)
            ),
            403,
        ),
        (
            "the parameter under another name",
            format!("/live/s1/480p/a.ts?HDNTS={good}&token={good}"),
            403,
        ),
        (
            "a forged token first, the good one second",
            format!(
                "/live/s1/480p/a.ts?hdnts={}&hdnts={good}",
                ring("k1:not-the-secret-0123456789").sign("/*", now + 600)
            ),
            403,
        ),
        (
            "the key id swapped to the other ring key",
            format!(
                "/live/s1/480p/a.ts?hdnts={}~hmac={tag}",
                signed.replace("~kid=k1", "~kid=k2")
            ),
            403,
        ),
        (
            "the acl widened after signing",
            format!(
                "/live/s1/480p/a.ts?hdnts={}~hmac={tag}",
                signed.replace("acl=/live/s1/*", "acl=/*")
            ),
            403,
        ),
        (
            "an expiry that overflows",
            format!(
                "/live/s1/480p/a.ts?hdnts={}~hmac={tag}",
                signed.replacen(&format!("exp={}", now + 600), "exp=99999999999999999999999", 1)
            ),
            403,
        ),
        (
            "an encoded separator",
            format!("/live/s1/480p/a.ts?hdnts={}", good.replace('~', "%7E")),
            403,
        ),
        (
            "a token over 4 KiB",
            format!("/live/s1/480p/a.ts?hdnts={good}{}", "0".repeat(5000)),
            403,
        ),
        (
            "a token from an unknown key for everything",
            format!(
                "/live/s1/480p/a.ts?hdnts={}",
                ring("k9:attacker-secret-0123456789").sign("/*", now + 600)
            ),
            403,
        ),
    ];
    for (what, target, want) in cases {
        assert_eq!(status_of(target.clone()).await, want, "{what}: {target}");
    }
    let after = origin_gets(&origin).await;
    assert_eq!(after - before - 1, 0, "no refused request reached the origin");

    // The genuine token works, and replaying it after its expiry is 410.
    assert_eq!(status_of(format!("/live/s1/480p/a.ts?hdnts={good}")).await, 200);
    let expires = unix_now() + 2;
    let short = k1.sign(&acl_for_stream("live/s1"), expires);
    let url = format!("/live/s1/480p/a.ts?hdnts={short}");
    assert_eq!(status_of(url.clone()).await, 200, "before expiry");
    let started = Instant::now();
    while unix_now() < expires {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    assert_eq!(status_of(url).await, 410, "replayed after expiry");
    assert_healthy(&mut edge).await;
}
