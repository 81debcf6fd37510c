//! Bad input and attacks against a real `hlscdn-router` process: oversized
//! heads and ads, slow and silent clients, malformed targets on every route,
//! smuggling basics, crowds of idle connections, hostile origins (huge,
//! endless, binary, redirecting playlists), redirects that must stay on the
//! fleet, fleet changes without the fleet token, and signing-key rotation
//! through real edges without a failed viewer.

use test_kit as common;
use test_kit::raw;
mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::{Server, client};
use router_api::fleet::{Ad, Capacity, EdgeState, Instance, Load};
use router_api::token::TOKEN_PARAM;

const FLEET_TOKEN: &str = "hostile-fleet-token-0123456789";
const K1: &str = "k1:first-signing-secret-0123";
const K2: &str = "k2:second-signing-secret-4567";
/// `max_playlist_bytes` of the routers under test.
const PLAYLIST_LIMIT: u64 = 1024 * 1024;
const VOD: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n\
#EXTINF:2.0,\nseg-0.ts\n#EXTINF:2.0,\nseg-1.ts\n#EXTINF:2.0,\nseg-2.ts\n#EXT-X-ENDLIST\n";

/// An origin that misbehaves on purpose, and a second host that must never
/// be contacted (it records every request it gets).
struct HostileOrigin {
    url: String,
    /// Bytes the endless playlist wrote before the router hung up.
    endless_bytes: Arc<AtomicU64>,
    /// Requests the second host received.
    elsewhere: Arc<Mutex<Vec<String>>>,
}

async fn record_host() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |request: Request| {
        let record = record.clone();
        async move {
            record
                .lock()
                .expect("lock")
                .push(format!("{} {}", request.method(), request.uri()));
            VOD
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

#[derive(Clone)]
struct OriginState {
    endless_bytes: Arc<AtomicU64>,
    elsewhere: String,
}

/// A playlist body of `len` bytes of two-byte segment URI lines.
fn dense_playlist(len: usize) -> Vec<u8> {
    let mut body = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n".to_vec();
    while body.len() + 2 <= len {
        body.extend_from_slice(b"s\n");
    }
    body
}

async fn hostile_origin_handler(State(state): State<OriginState>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let redirect = |status: StatusCode| {
        (
            status,
            [(header::LOCATION, format!("{}/stolen/index.m3u8", state.elsewhere))],
        )
            .into_response()
    };
    match path.as_str() {
        "/vod/ok/index.m3u8" => VOD.into_response(),
        // 20 MiB, declared up front.
        "/huge/declared.m3u8" => {
            let chunk = bytes::Bytes::from(vec![b'#'; 64 * 1024]);
            let chunks = futures::stream::iter((0..320).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
            let mut response = Body::from_stream(chunks).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, (320 * 64 * 1024).into());
            response
        }
        // A body that never ends, undeclared.
        "/huge/endless.m3u8" => {
            let counter = state.endless_bytes.clone();
            let chunk = bytes::Bytes::from_static(&[b'#'; 16 * 1024]);
            let chunks = futures::stream::repeat_with(move || {
                counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                Ok::<_, std::io::Error>(chunk.clone())
            });
            Body::from_stream(chunks).into_response()
        }
        // A body that trickles one byte every 100 ms.
        "/huge/drip.m3u8" => {
            let chunks = futures::stream::unfold(0u64, |n| async move {
                if n > 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"#")), n + 1))
            });
            Body::from_stream(chunks).into_response()
        }
        // Just under the limit, but one URI per two bytes.
        "/huge/dense.m3u8" => dense_playlist(PLAYLIST_LIMIT as usize - 1).into_response(),
        "/huge/binary.m3u8" => b"#EXTM3U\n#EXTINF:2,\nseg\0.ts\n".to_vec().into_response(),
        "/huge/html.m3u8" => "<html><script>alert(1)</script></html>".into_response(),
        "/redirect/301.m3u8" => redirect(StatusCode::MOVED_PERMANENTLY),
        "/redirect/302.m3u8" => redirect(StatusCode::FOUND),
        "/redirect/303.m3u8" => redirect(StatusCode::SEE_OTHER),
        "/redirect/307.m3u8" => redirect(StatusCode::TEMPORARY_REDIRECT),
        "/redirect/308.m3u8" => redirect(StatusCode::PERMANENT_REDIRECT),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn hostile_origin() -> HostileOrigin {
    let (elsewhere_url, elsewhere) = record_host().await;
    let endless_bytes = Arc::new(AtomicU64::new(0));
    let state = OriginState {
        endless_bytes: endless_bytes.clone(),
        elsewhere: elsewhere_url,
    };
    let app = axum::Router::new()
        .fallback(hostile_origin_handler)
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    HostileOrigin {
        url: format!("http://{addr}"),
        endless_bytes,
        elsewhere,
    }
}

/// A router in front of `origin` with two static edges that are never
/// contacted (their hosts do not resolve), signing with [`K1`].
fn router(origin: &str, dir: &std::path::Path, envs: &[(&str, &str)]) -> Server {
    let config = dir.join("router.toml");
    std::fs::write(
        &config,
        format!(
            "origin_timeout = \"1500ms\"\nblocking_timeout = \"3s\"\nmax_playlist_bytes = {PLAYLIST_LIMIT}\n\
             [[edges]]\nid = \"e1\"\nurl = \"http://edge-1.test:9001\"\n\
             [[edges]]\nid = \"e2\"\nurl = \"http://edge-2.test:9002\"\n"
        ),
    )
    .expect("write config");
    Server::binary(
        "router",
        "hlscdn-router",
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--origin",
            origin,
            "--fleet-token",
            FLEET_TOKEN,
            "--signing-key",
            K1,
        ],
        envs,
    )
}

async fn assert_healthy(server: &mut Server) {
    assert!(server.running(), "the process is alive");
    assert!(raw::healthy(server.addr).await, "/healthz answers 200");
}

fn ad(edge: &str, generation: u64) -> Ad {
    Ad {
        edge_id: edge.to_owned(),
        public_url: format!("http://{edge}.test:9000"),
        group: None,
        state: EdgeState::Ready,
        capacity: Capacity {
            egress_bps: 1_000_000_000,
            connections: 1000,
        },
        load: Load::default(),
        hot_streams: Vec::new(),
        ttl_ms: 30_000,
        instance: Instance {
            started_unix_ms: 1_700_000_000_000,
            id: "0123456789abcdef".into(),
        },
        generation,
    }
}

async fn post_ad(router: &Server, body: impl Into<reqwest::Body>, auth: Option<&str>) -> (u16, String) {
    let mut request = client()
        .post(router.url("/api/v1/ads"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let r = request.send().await.expect("post ad");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

async fn advertised(router: &Server) -> Vec<Ad> {
    support::edges(router)
        .await
        .edges
        .into_iter()
        .filter_map(|e| e.ad)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_and_ads_are_refused_and_the_router_stays_healthy() {
    let origin = hostile_origin().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut router = router(&origin.url, dir.path(), &[]);
    let a = router.addr;
    let big = format!(
        "GET /vod/ok/index.m3u8 HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    assert_eq!(raw::status(a, &big).await, 431);
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    assert_eq!(
        raw::status(a, &format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n")).await,
        431
    );
    let long = format!("GET /{}.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70 * 1024));
    assert!(matches!(raw::status(a, &long).await, 414 | 431));

    // Ads over 64 KiB: 413, declared or not, with or without the token.
    let padded = format!(
        "{{\"pad\":\"{}\",{}",
        "x".repeat(70 * 1024),
        &serde_json::to_string(&ad("big", 1)).expect("json")[1..]
    );
    let auth = format!("Bearer {FLEET_TOKEN}");
    assert_eq!(post_ad(&router, padded.clone(), Some(&auth)).await.0, 413);
    let declared = format!(
        "POST /api/v1/ads HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n"
    );
    let started = Instant::now();
    let answer = raw::exchange(a, declared.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(answer.status(), 413, "{}", answer.text);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused before the body"
    );
    // Without the token, the router answers at once: it neither waits for
    // nor reads a body it was promised.
    for path in ["/api/v1/ads", "/api/v1/routers"] {
        let promised = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{\"edge_id\""
        );
        let started = Instant::now();
        let answer = raw::exchange(a, promised.as_bytes(), Duration::from_secs(5)).await;
        assert_eq!(answer.status(), 401, "{path}: {}", answer.text);
        assert!(answer.closed, "{path}: the connection is closed");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{path}: answered at once"
        );
    }
    let mut chunked = format!(
        "POST /api/v1/ads HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..50 {
        chunked.extend_from_slice(b"1000\r\n");
        chunked.extend_from_slice(&[b' '; 4096]);
        chunked.extend_from_slice(b"\r\n");
    }
    let answer = raw::exchange(a, &chunked, Duration::from_secs(5)).await;
    assert_eq!(
        answer.status(),
        413,
        "a chunked ad body past 64 KiB: {}",
        answer.text
    );
    assert!(advertised(&router).await.is_empty(), "nothing stored");
    assert_healthy(&mut router).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_clients_are_cut_off_and_block_nobody() {
    let origin = hostile_origin().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let timeout = Duration::from_secs(4);
    let mut router = router(&origin.url, dir.path(), &[("HLSCDN_HEADER_TIMEOUT_MS", "4000")]);
    let a = router.addr;
    let paths = vec!["/vod/ok/index.m3u8".to_owned(); 10];
    let crowd = raw::outlast_slow_crowd(
        a,
        b"GET /vod/ok/index.m3u8 HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa",
        timeout,
        &paths,
    )
    .await;
    eprintln!("measured: 250 slow/silent clients (timeout {timeout:?}): {crowd:?}");
    assert_healthy(&mut router).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_targets_get_400_on_every_route() {
    let origin = hostile_origin().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut router = router(&origin.url, dir.path(), &[]);
    let a = router.addr;
    let targets: &[&[u8]] = &[
        b"/vod/ok/\xff.m3u8",
        b"/vod/ok/%ff.m3u8",
        b"/vod/%c0%ae%c0%ae/ok/index.m3u8",
        b"/vod/ok/%zz.m3u8",
        b"/vod/ok/%",
        b"/../vod/ok/index.m3u8",
        b"/vod/../../etc/index.m3u8",
        b"/vod/./ok/index.m3u8",
        b"/%2e%2e/vod/ok/index.m3u8",
        b"/vod/%2E%2E/ok/index.m3u8",
        b"/vod%2f..%2fok/index.m3u8",
        b"/vod%5c..%5cok/index.m3u8",
        b"/vod\\..\\ok/index.m3u8",
        b"//evil.example/index.m3u8",
        b"/vod//ok/index.m3u8",
        b"/vod/ok/index%00.m3u8",
        b"/vod/ok/index%0d%0aX:%20y.m3u8",
        b"/.hidden/index.m3u8",
        b"http://evil.example/vod/ok/index.m3u8",
        b"https://127.0.0.1:1/index.m3u8",
        b"*",
        b"evil.example:443",
    ];
    for target in targets {
        for prefix in [&b""[..], b"/r"] {
            // Under `/r`, an absolute or asterisk target becomes a bad path.
            let mut full = prefix.to_vec();
            full.extend_from_slice(target);
            let mut request = b"GET ".to_vec();
            request.extend_from_slice(&full);
            request.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let answer = raw::exchange(a, &request, Duration::from_secs(5)).await;
            assert_eq!(
                answer.status(),
                400,
                "{}: {}",
                String::from_utf8_lossy(&full),
                answer.text
            );
            assert_eq!(
                answer.text.lines().filter(|l| l.is_empty()).count(),
                1,
                "one-line reason, no reflected header: {}",
                answer.text
            );
        }
    }
    for path in [
        "../etc/passwd",
        "/..%2fetc/index.m3u8",
        "http://evil.example/x.m3u8",
        "/a/%ff/index.m3u8",
    ] {
        let mut url = url::Url::parse(&router.url("/api/v1/explain")).expect("url");
        url.query_pairs_mut().append_pair("path", path);
        let r = client().get(url).send().await.expect("explain");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "explain {path}");
    }
    assert!(
        origin.elsewhere.lock().expect("lock").is_empty(),
        "no other host contacted"
    );
    assert_healthy(&mut router).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggled_ads_and_unframed_requests_change_nothing() {
    let origin = hostile_origin().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut router = router(&origin.url, dir.path(), &[]);
    let a = router.addr;
    let read_for = Duration::from_secs(5);
    // An unauthenticated request with a framing conflict hides an
    // authenticated-looking ad behind its body: one answer, then the
    // connection closes; the hidden ad is never read.
    let hidden = serde_json::to_string(&ad("smuggled", 1)).expect("json");
    let request = format!(
        "POST /api/v1/ads HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
         POST /api/v1/ads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {FLEET_TOKEN}\r\nContent-Length: {}\r\n\r\n{hidden}",
        5 + hidden.len(),
        hidden.len()
    );
    let answer = raw::exchange(a, request.as_bytes(), read_for).await;
    assert_eq!(answer.statuses.len(), 1, "{}", answer.text);
    assert!(matches!(answer.status(), 400 | 401), "{}", answer.text);
    assert!(answer.closed);
    for (what, head) in [
        (
            "two Content-Lengths",
            "Content-Length: 2\r\nContent-Length: 20\r\n",
        ),
        ("a non-chunked coding", "Transfer-Encoding: gzip, identity\r\n"),
        ("a space before the colon", "Content-Length : 2\r\n"),
    ] {
        let request = format!(
            "POST /api/v1/ads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {FLEET_TOKEN}\r\n{head}\r\n{{}}"
        );
        let answer = raw::exchange(a, request.as_bytes(), read_for).await;
        assert_eq!(answer.statuses, [400], "{what}: {}", answer.text);
    }
    // HTTP/1.0 without Host is served, then closed.
    let answer = raw::exchange(a, b"GET /vod/ok/index.m3u8 HTTP/1.0\r\n\r\n", read_for).await;
    assert_eq!(answer.statuses, [200], "{}", answer.text);
    assert!(answer.closed);
    assert!(advertised(&router).await.is_empty(), "no ad stored");
    assert_healthy(&mut router).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_idle_connections_do_not_stop_service() {
    let origin = hostile_origin().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut router = router(&origin.url, dir.path(), &[]);
    let mut idle = raw::idle_connections(router.addr, 500).await;
    let (status, took) = raw::timed_get(router.addr, "/vod/ok/index.m3u8").await;
    assert_eq!(status, 200);
    eprintln!("measured: a playlist with 500 idle connections open took {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(raw::closed_count(&mut idle).await, 0);
    drop(idle);
    assert_healthy(&mut router).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_endless_and_unusable_origin_playlists_get_502_with_bounded_memory() {
    let origin = hostile_origin().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut router = router(&origin.url, dir.path(), &[]);
    let http = client();
    for (path, status, within) in [
        ("/huge/declared.m3u8", 502, Duration::from_secs(1)),
        ("/huge/endless.m3u8", 502, Duration::from_secs(2)),
        ("/huge/drip.m3u8", 504, Duration::from_millis(2500)),
        ("/huge/binary.m3u8", 502, Duration::from_secs(1)),
        ("/huge/html.m3u8", 502, Duration::from_secs(1)),
    ] {
        let started = Instant::now();
        let r = http.get(router.url(path)).send().await.expect("get");
        assert_eq!(r.status().as_u16(), status, "{path}");
        let took = started.elapsed();
        assert!(took < within, "{path} took {took:?}");
        let body = r.text().await.expect("text");
        assert_eq!(body.lines().count(), 1, "{path}: {body:?}");
        assert!(!body.contains('<'), "no origin content reflected: {body:?}");
    }
    // The router stopped reading the endless body near the limit: what the
    // origin managed to write is the limit plus socket buffers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let written = origin.endless_bytes.load(Ordering::Relaxed);
    eprintln!("measured: the endless playlist wrote {written} bytes before the router hung up");
    assert!(
        written < PLAYLIST_LIMIT + 16 * 1024 * 1024,
        "the origin wrote {written} bytes"
    );

    // Twenty viewers at once, each with its own cache key (a blocking reload
    // of its own part), on endless bodies: all refused, and the router's
    // memory stays near 20 × the limit.
    let baseline = raw::rss_kib(router.pid());
    let requests = (0..20).map(|i| {
        http.get(router.url(&format!("/huge/endless.m3u8?_HLS_msn=1&_HLS_part={i}")))
            .send()
    });
    for r in futures::future::join_all(requests).await {
        assert_eq!(r.expect("get").status(), StatusCode::BAD_GATEWAY);
    }
    let grown = raw::rss_kib(router.pid()).saturating_sub(baseline);
    eprintln!("measured: 20 concurrent endless playlists: router RSS grew {grown} KiB");
    assert!(
        grown < 20 * 2 * PLAYLIST_LIMIT / 1024 + 64 * 1024,
        "RSS grew by {grown} KiB"
    );

    // A playlist under the byte limit made of one-character URIs would cost
    // ~70 × its size in every rewritten copy: refused by its URI count.
    let baseline = raw::rss_kib(router.pid());
    let started = Instant::now();
    let r = http
        .get(router.url("/huge/dense.m3u8"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let reason = r.text().await.expect("text");
    assert!(reason.contains("more than 200000 URIs"), "{reason}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let grown = raw::rss_kib(router.pid()).saturating_sub(baseline);
    eprintln!("measured: dense playlist refused in {took:?}, router RSS grew {grown} KiB");
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
    assert_healthy(&mut router).await;
}

/// Memory the router's playlist cache may hold (`MAX_CACHE_BYTES`).
const CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// Sends `count` playlist requests over `CONNECTIONS` keep-alive sockets
/// (raw, so that the client's URL parsing is not what the test measures),
/// the `i`-th with the query `b=i&pad=…` of `query_len` bytes; returns how
/// many answers each status got.
async fn distinct_queries(router: &Server, count: usize, query_len: usize) -> BTreeMap<u16, usize> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const CONNECTIONS: usize = 8;
    let pad: Arc<str> = "x".repeat(query_len).into();
    let tasks = (0..CONNECTIONS).map(|c| {
        let pad = pad.clone();
        let addr = router.addr;
        tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let mut statuses = BTreeMap::new();
            let mut buf = Vec::with_capacity(64 * 1024);
            for i in (c..count).step_by(CONNECTIONS) {
                let head = format!("b={i}&pad=");
                let fill = &pad[..query_len.saturating_sub(head.len())];
                let request = format!("GET /vod/ok/index.m3u8?{head}{fill} HTTP/1.1\r\nHost: x\r\n\r\n");
                stream.write_all(request.as_bytes()).await.expect("write");
                // One answer: a head, then `Content-Length` bytes of body.
                buf.clear();
                let head_end = loop {
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break end + 4;
                    }
                    let mut chunk = [0u8; 16 * 1024];
                    let n = stream.read(&mut chunk).await.expect("read");
                    assert!(n > 0, "the router closed the connection");
                    buf.extend_from_slice(&chunk[..n]);
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).expect("status");
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .expect("content-length");
                let mut body = vec![0u8; (head_end + length).saturating_sub(buf.len())];
                stream.read_exact(&mut body).await.expect("body");
                *statuses.entry(status).or_insert(0) += 1;
            }
            statuses
        })
    });
    let mut statuses = BTreeMap::new();
    for task in futures::future::join_all(tasks).await {
        for (status, n) in task.expect("task") {
            *statuses.entry(status).or_insert(0) += n;
        }
    }
    statuses
}

/// Issue 13 item 1: distinct query strings on one playlist once each cost a
/// cache entry (the query was part of the key, kept twice, and not weighed):
/// 3 000 requests with 60 KB queries grew the router by ~352 MiB. Now only
/// `_HLS_*` directives take part in the key and the origin request, and
/// targets past 8 KiB get 414.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_query_strings_leave_router_memory_bounded() {
    const REQUESTS: usize = 10_000;
    let origin = hostile_origin().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut router = router(&origin.url, dir.path(), &[]);
    let warm = client()
        .get(router.url("/vod/ok/index.m3u8"))
        .send()
        .await
        .expect("get");
    assert_eq!(warm.status(), StatusCode::OK);
    let misses = r#"hlscdn_router_playlist_cache_total{result="miss"}"#;
    let baseline = raw::rss_kib(router.pid());
    let limit_kib = (CACHE_BYTES + 64 * 1024 * 1024) / 1024;

    // Just under the 8 KiB target cap: served, from one cache entry.
    let started = Instant::now();
    let statuses = distinct_queries(&router, REQUESTS, 7 * 1024).await;
    let rss = raw::rss_kib(router.pid());
    let fetched = common::metric(&router, misses).await;
    eprintln!(
        "measured: {REQUESTS} distinct 7 KiB queries in {:?}: {statuses:?}, {fetched} origin fetches, \
         router RSS {baseline} -> {rss} KiB (grew {} KiB)",
        started.elapsed(),
        rss.saturating_sub(baseline)
    );
    assert_eq!(statuses.get(&200), Some(&REQUESTS), "{statuses:?}");
    assert!(fetched <= 2.0, "{fetched} origin fetches");
    assert!(rss < limit_kib, "router RSS {rss} KiB");
    assert!(
        rss.saturating_sub(baseline) < 64 * 1024,
        "router RSS grew by {} KiB",
        rss.saturating_sub(baseline)
    );

    // 60 KB queries (under hyper's 64 KiB head limit): 414 before any handler.
    let started = Instant::now();
    let statuses = distinct_queries(&router, REQUESTS, 60_000).await;
    let rss = raw::rss_kib(router.pid());
    eprintln!(
        "measured: {REQUESTS} distinct 60 KB queries in {:?}: {statuses:?}, router RSS {baseline} -> {rss} KiB (grew {} KiB)",
        started.elapsed(),
        rss.saturating_sub(baseline)
    );
    assert_eq!(statuses.get(&414), Some(&REQUESTS), "{statuses:?}");
    assert!(rss < limit_kib, "router RSS {rss} KiB");
    assert!(
        rss.saturating_sub(baseline) < 64 * 1024,
        "router RSS grew by {} KiB",
        rss.saturating_sub(baseline)
    );
    assert_eq!(
        common::metric(&router, misses).await,
        fetched,
        "no fetch for a refused target"
    );
    assert_healthy(&mut router).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_redirects_are_never_followed() {
    let origin = hostile_origin().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut router = router(&origin.url, dir.path(), &[]);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for code in [301, 302, 303, 307, 308] {
        let r = http
            .get(router.url(&format!("/redirect/{code}.m3u8")))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY, "{code}");
        assert!(
            r.headers().get("location").is_none(),
            "{code}: no Location passed on"
        );
    }
    assert!(
        origin.elsewhere.lock().expect("lock").is_empty(),
        "the redirect target was contacted: {:?}",
        origin.elsewhere.lock().expect("lock")
    );
    assert_healthy(&mut router).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_never_leave_the_fleet() {
    let origin = hostile_origin().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let router = router(&origin.url, dir.path(), &[]);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let fleet = ["http://edge-1.test:9001/", "http://edge-2.test:9002/"];
    // Nothing is served before the router has served the stream's playlist:
    // `/r/` is no way to have any object of the origin signed.
    assert_eq!(
        http.get(router.url("/r/vod/ok/seg-0.ts"))
            .send()
            .await
            .expect("r")
            .status(),
        StatusCode::NOT_FOUND
    );
    let playlist = http
        .get(router.url("/vod/ok/index.m3u8"))
        .send()
        .await
        .expect("playlist");
    assert_eq!(playlist.status(), StatusCode::OK);
    for path in [
        "/r/vod/ok/seg-0.ts",
        "/r/vod/ok/seg-0.ts?url=http://evil.example/",
        "/r/vod/ok/seg%20@evil.example.ts",
        "/r/vod/ok/seg-0.ts?s=forged-session-token",
        "/r/a",
        "/r/x.ts",
        "/r/vod/other/seg-0.ts",
        "/r/%40evil.example/x.ts",
        "/r/evil.example%3a80/x.ts",
    ] {
        let served = path.starts_with("/r/vod/ok/");
        for host in ["x", "evil.example", "edge-1.test:9001@evil.example"] {
            let r = http
                .get(router.url(path))
                .header("host", host)
                .header("x-forwarded-host", "evil.example")
                .header("forwarded", "host=evil.example;proto=https")
                .send()
                .await
                .expect("redirect");
            if !served {
                assert_eq!(
                    r.status(),
                    StatusCode::NOT_FOUND,
                    "{path}: not a stream this router serves"
                );
                assert!(r.headers().get("location").is_none(), "{path}");
                continue;
            }
            assert_eq!(r.status(), StatusCode::FOUND, "{path}");
            let location = r.headers()["location"].to_str().expect("ascii").to_owned();
            assert!(
                fleet.iter().any(|edge| location.starts_with(edge)),
                "{path} with Host {host}: {location}"
            );
            let parsed = url::Url::parse(&location).expect("an absolute URL");
            assert!(
                matches!(parsed.host_str(), Some("edge-1.test" | "edge-2.test")),
                "{location}"
            );
            assert!(parsed.username().is_empty(), "{location}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_changes_need_the_fleet_token_and_garbage_changes_nothing() {
    let origin = hostile_origin().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut router = router(&origin.url, dir.path(), &[]);
    let good = serde_json::to_string(&ad("e9", 5)).expect("json");
    let auth = format!("Bearer {FLEET_TOKEN}");
    let prefix = &FLEET_TOKEN[..FLEET_TOKEN.len() - 1];
    for bad in [
        None,
        Some("Bearer wrong-fleet-token-0123456789".to_owned()),
        Some(format!("Bearer {prefix}")),
        Some(format!("Bearer {FLEET_TOKEN}x")),
        Some(format!("Basic {FLEET_TOKEN}")),
        Some(FLEET_TOKEN.to_owned()),
        Some("Bearer ".to_owned()),
    ] {
        let (status, body) = post_ad(&router, good.clone(), bad.as_deref()).await;
        assert_eq!(status, 401, "{bad:?}");
        assert!(!body.contains(FLEET_TOKEN));
        let r = client()
            .post(router.url("/api/v1/routers"))
            .header("authorization", bad.clone().unwrap_or_default())
            .json(&serde_json::json!({"id": "intruder", "url": "http://evil.example:1"}))
            .send()
            .await
            .expect("announce");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "announce with {bad:?}");
    }
    // The token in the query or another header is not the token.
    let r = client()
        .post(router.url(&format!("/api/v1/ads?token={FLEET_TOKEN}")))
        .header("x-fleet-token", FLEET_TOKEN)
        .header("cookie", format!("token={FLEET_TOKEN}"))
        .body(good.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(advertised(&router).await.is_empty(), "no edge registered");
    let routers = common::text(router.url("/api/v1/routers")).await;
    assert!(!routers.contains("evil.example"), "{routers}");

    // With the token, garbage is 400 and stores nothing.
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    let mut wrong_types = serde_json::to_value(ad("e9", 6)).expect("json");
    wrong_types["generation"] = serde_json::json!("6");
    let mut overflow = serde_json::to_value(ad("e9", 6)).expect("json");
    overflow["generation"] = serde_json::json!(1e300);
    let mut negative = serde_json::to_value(ad("e9", 6)).expect("json");
    negative["capacity"]["egress_bps"] = serde_json::json!(-1);
    let mut unicode_id = ad("e9", 6);
    unicode_id.edge_id = "e9\u{202e}".into();
    let mut script_url = ad("e9", 6);
    script_url.public_url = "javascript:alert(1)//".into();
    let mut userinfo_url = ad("e9", 6);
    userinfo_url.public_url = "http://edge@evil.example/".into();
    let mut newline_url = ad("e9", 6);
    newline_url.public_url = "http://e9.test/\r\nLocation: http://evil.example/".into();
    let mut nan_ratio = serde_json::to_value(ad("e9", 6)).expect("json");
    nan_ratio["load"]["cpu"] = serde_json::json!(7.5);
    let mut many_hot = ad("e9", 6);
    many_hot.hot_streams = (0..1000)
        .map(|i| router_api::fleet::HotStream {
            stream: format!("s{i}"),
            egress_bps: 1,
        })
        .collect();
    let garbage: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("not JSON", "{not json".into()),
        ("an array", "[]".into()),
        ("null", "null".into()),
        ("a string", "\"ad\"".into()),
        ("nested arrays", deep),
        ("nested objects", deep_object),
        ("wrong types", wrong_types.to_string()),
        ("a huge number", overflow.to_string()),
        ("a negative capacity", negative.to_string()),
        ("a ratio over 1", nan_ratio.to_string()),
        (
            "bidi control in the id",
            serde_json::to_string(&unicode_id).expect("json"),
        ),
        (
            "a javascript: URL",
            serde_json::to_string(&script_url).expect("json"),
        ),
        (
            "credentials in the URL",
            serde_json::to_string(&userinfo_url).expect("json"),
        ),
        (
            "CRLF in the URL",
            serde_json::to_string(&newline_url).expect("json"),
        ),
        (
            "1000 hot streams",
            serde_json::to_string(&many_hot).expect("json"),
        ),
        ("trailing garbage", format!("{good} {{}}")),
        (
            "invalid UTF-8",
            String::from_utf8_lossy(b"{\"edge_id\":\"\xff\"}").into_owned(),
        ),
    ];
    for (what, body) in garbage {
        let (status, reason) = post_ad(&router, body, Some(&auth)).await;
        assert!(status == 400 || status == 413, "{what}: {status} {reason}");
        assert_eq!(reason.lines().count(), 1, "{what}: {reason:?}");
    }
    let raw_utf8 = b"{\"edge_id\":\"\xff\xfe\"}".to_vec();
    assert_eq!(post_ad(&router, raw_utf8, Some(&auth)).await.0, 400);
    assert!(advertised(&router).await.is_empty(), "nothing stored");
    assert_healthy(&mut router).await;

    // A genuine ad is stored once; replaying it, or an older one, is not.
    let (status, body) = post_ad(&router, good.clone(), Some(&auth)).await;
    assert_eq!((status, body.trim()), (200, "{\"stored\":true}"));
    for replay in [good.clone(), serde_json::to_string(&ad("e9", 4)).expect("json")] {
        let (status, body) = post_ad(&router, replay, Some(&auth)).await;
        assert_eq!((status, body.trim()), (200, "{\"stored\":false}"));
    }
    let stored = advertised(&router).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].generation, 5);
    assert_eq!(
        common::metric(&router, "hlscdn_router_ads_total{result=\"stored\"}").await,
        1.0
    );
}

/// Fetches `url`, returning status and body.
async fn fetch(url: &str) -> (StatusCode, bytes::Bytes) {
    let r = client().get(url).send().await.expect("get");
    (r.status(), r.bytes().await.expect("body"))
}

/// The segment URLs of a media playlist.
fn segment_urls(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter(|l| l.starts_with("http"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_rotate_without_a_failed_viewer() {
    const INGEST: &str = "rotation-ingest-token";
    let origin = Server::origin(&["--store", "memory://", "--ingest-token", INGEST], &[]);
    for (path, body) in [
        ("/vod/rot/index.m3u8", VOD.as_bytes().to_vec()),
        ("/vod/rot/seg-0.ts", vec![0u8; 1000]),
        ("/vod/rot/seg-1.ts", vec![1u8; 1000]),
        ("/vod/rot/seg-2.ts", vec![2u8; 1000]),
        ("/vod/other/seg-0.ts", vec![3u8; 1000]),
    ] {
        let r = client()
            .put(origin.url(path))
            .bearer_auth(INGEST)
            .body(body)
            .send()
            .await
            .expect("put");
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let origin_url = origin.url("");
    // Step 1: every edge accepts the current key and the new one.
    let edge = |id: &str, keys: &[&str]| {
        let mut args = vec!["--id", id, "--origin", origin_url.as_str()];
        for key in keys {
            args.extend_from_slice(&["--signing-key", key]);
        }
        Server::binary("edge-agent", "hlscdn-edge", &args, &[])
    };
    let edges = [edge("e1", &[K1, K2]), edge("e2", &[K1, K2])];
    let specs: Vec<String> = edges
        .iter()
        .enumerate()
        .map(|(i, e)| format!("e{}={}", i + 1, e.url("")))
        .collect();
    let router_with = |keys: &[&str]| {
        let mut args = vec!["--origin", origin_url.as_str(), "--fleet-token", FLEET_TOKEN];
        for key in keys {
            args.extend_from_slice(&["--signing-key", key]);
        }
        for spec in &specs {
            args.extend_from_slice(&["--edge", spec]);
        }
        Server::binary("router", "hlscdn-router", &args, &[])
    };
    let mut failures = Vec::new();
    let mut check = async |urls: &[String], want_kid: &str| {
        for url in urls {
            assert!(url.contains(&format!("~kid={want_kid}~")), "{url}");
            let (status, _) = fetch(url).await;
            if status != StatusCode::OK {
                failures.push(format!("{status} {url}"));
            }
        }
    };

    let before = router_with(&[K1]);
    let (status, body) = fetch(&before.url("/vod/rot/index.m3u8")).await;
    assert_eq!(status, StatusCode::OK);
    let old_urls = segment_urls(&body);
    assert_eq!(old_urls.len(), 3);
    check(&old_urls, "k1").await;

    // Step 2: routers sign with the new key, and still list the old one.
    let after = router_with(&[K2, K1]);
    let (_, body) = fetch(&after.url("/vod/rot/index.m3u8")).await;
    let new_urls = segment_urls(&body);
    check(&new_urls, "k2").await;
    // A viewer still holding the old playlist keeps playing.
    check(&old_urls, "k1").await;
    assert!(
        failures.is_empty(),
        "viewers failed during rotation: {failures:?}"
    );

    // A token is for its stream only, whichever key signed it.
    for url in old_urls.iter().chain(&new_urls) {
        let moved = url.replace("/vod/rot/seg-0.ts", "/vod/other/seg-0.ts");
        if moved != *url {
            assert_eq!(fetch(&moved).await.0, StatusCode::FORBIDDEN, "{moved}");
        }
    }

    // Step 3: the old key is retired on the edges: its tokens are refused,
    // the new ones are served.
    let retired = edge("e3", &[K2]);
    let on_retired = |url: &String| {
        let u = url::Url::parse(url).expect("url");
        format!("{}{}?{}", retired.url(""), u.path(), u.query().unwrap_or(""))
    };
    for url in &old_urls {
        assert_eq!(fetch(&on_retired(url)).await.0, StatusCode::FORBIDDEN, "{url}");
    }
    for url in &new_urls {
        assert_eq!(fetch(&on_retired(url)).await.0, StatusCode::OK, "{url}");
    }
    assert!(new_urls.iter().all(|u| u.contains(&format!("{TOKEN_PARAM}="))));
}
