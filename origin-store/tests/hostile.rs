//! Bad input and attacks against a real `hlscdn-origin` process, through raw
//! sockets where an HTTP client library would clean the request up: heads
//! and bodies over the limits, slow and silent clients, malformed and
//! traversing targets, request smuggling basics, crowds of idle connections,
//! and writes without the ingest token. Each gets a clear 4xx (or the
//! connection closed), and the origin stays healthy.

use test_kit as common;
use test_kit::raw;

use std::time::{Duration, Instant};

use common::{Server, client};
use reqwest::StatusCode;

const TOKEN: &str = "hostile-ingest-token-0123";
const LIMIT: usize = 100_000;

fn origin_on(store: &str) -> Server {
    Server::origin(
        &[
            "--store",
            store,
            "--ingest-token",
            TOKEN,
            "--max-ingest-bytes",
            &LIMIT.to_string(),
        ],
        &[],
    )
}

fn origin() -> Server {
    origin_on("memory://")
}

async fn assert_healthy(server: &mut Server) {
    assert!(server.running(), "the process is alive");
    assert!(raw::healthy(server.addr).await, "/healthz answers 200");
}

async fn get_status(server: &Server, path: &str) -> StatusCode {
    client().get(server.url(path)).send().await.expect("get").status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_heads_get_431_and_the_origin_stays_healthy() {
    let mut origin = origin();
    let a = origin.addr;
    let big_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    assert_eq!(raw::status(a, &big_header).await, 431, "one 70 KiB header");
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many_headers = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    assert_eq!(raw::status(a, &many_headers).await, 431, "150 headers");
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70 * 1024));
    let status = raw::status(a, &long_target).await;
    assert!(matches!(status, 414 | 431), "a 70 KiB target: {status}");
    // Endless header bytes without a blank line: refused once past the limit.
    let endless = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: {}",
        "b".repeat(200 * 1024)
    );
    assert_eq!(raw::status(a, &endless).await, 431, "a head that never ends");
    // Just under the limit is served.
    let under = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(60 * 1024)
    );
    assert_eq!(raw::status(a, &under).await, 200, "a 60 KiB head is fine");
    assert_healthy(&mut origin).await;
}

/// Request targets past 8 KiB (nginx's default header buffer) get 414 on
/// every server: they all run `server::serve`. Issue 13 item 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_targets_past_eight_kib_get_414() {
    let mut origin = origin();
    let a = origin.addr;
    let get = |len: usize| {
        let target = format!("/healthz?{}", "q".repeat(len - "/healthz?".len()));
        format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    };
    assert_eq!(raw::status(a, &get(8 * 1024)).await, 200, "an 8 KiB target");
    assert_eq!(raw::status(a, &get(8 * 1024 + 1)).await, 414, "one byte more");
    assert_eq!(raw::status(a, &get(60_000)).await, 414, "a 60 KB target");
    let long_path = format!(
        "GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "p".repeat(9000)
    );
    assert_eq!(raw::status(a, &long_path).await, 414, "a 9 KB path");
    assert_healthy(&mut origin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_at_once_and_nothing_is_stored() {
    let mut origin = origin();
    let a = origin.addr;
    // A declared length over the limit is refused before any body byte is sent.
    let started = Instant::now();
    let declared = format!(
        "PUT /big/declared.ts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 10000000\r\n\r\n"
    );
    let answer = raw::exchange(a, declared.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(answer.status(), 413, "{}", answer.text);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered without waiting for the body"
    );
    assert!(
        answer.text.to_ascii_lowercase().contains("connection: close"),
        "the unread body ends the connection: {}",
        answer.text
    );
    // A chunked body that grows past the limit.
    let mut chunked = format!(
        "PUT /big/chunked.ts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..(3 * LIMIT / 16_384) {
        chunked.extend_from_slice(b"4000\r\n");
        chunked.extend_from_slice(&[b'x'; 16_384]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let answer = raw::exchange(a, &chunked, Duration::from_secs(5)).await;
    assert_eq!(answer.status(), 413, "{}", answer.text);
    for path in ["/big/declared.ts", "/big/chunked.ts"] {
        assert_eq!(get_status(&origin, path).await, StatusCode::NOT_FOUND, "{path}");
    }
    // Just under the limit is stored.
    assert_eq!(
        common::put(origin.url("/big/fits.ts"), TOKEN, vec![b'y'; LIMIT]).await,
        StatusCode::CREATED
    );
    assert_healthy(&mut origin).await;
}

/// Open file descriptors of a process.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(Iterator::count)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_clients_are_cut_off_at_the_header_timeout_and_block_nobody() {
    // The default header timeout (10 s): this is the setting that ships.
    let timeout = runtime::server::HEADER_READ_TIMEOUT;
    let mut origin = origin();
    let a = origin.addr;
    let baseline = fds(origin.pid());
    let every = Duration::from_secs(1);
    let give_up = timeout + Duration::from_secs(6);
    let mut clients = Vec::new();
    // 200 clients sending a head one byte per second, 50 that connect and
    // say nothing, 20 that start an HTTP/2 preface and stop.
    for _ in 0..200 {
        let head: &'static [u8] =
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        clients.push(tokio::spawn(raw::slow_client(a, head, every, give_up)));
    }
    for _ in 0..50 {
        clients.push(tokio::spawn(raw::slow_client(a, b"", every, give_up)));
    }
    for _ in 0..20 {
        clients.push(tokio::spawn(raw::slow_client(
            a,
            b"PRI * HTTP/2.0\r\n",
            every,
            give_up,
        )));
    }
    let pid = origin.pid();
    common::eventually(
        Duration::from_secs(3),
        "the origin holds the 270 connections",
        || async move { fds(pid) >= baseline + 270 },
    )
    .await;
    let held = fds(pid);

    // Meanwhile ordinary requests are served promptly, on new connections.
    let mut slowest = Duration::ZERO;
    for i in 0..12 {
        let (status, took) = raw::timed_get(a, "/healthz").await;
        assert_eq!(status, 200);
        slowest = slowest.max(took);
        let path = format!("/during/slowloris-{i}.ts");
        assert_eq!(
            common::put(origin.url(&path), TOKEN, "x").await,
            StatusCode::CREATED
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(slowest < Duration::from_secs(1), "slowest answer {slowest:?}");

    let mut closed_after = Vec::new();
    for client in clients {
        let closed = client.await.expect("task");
        closed_after.push(closed.expect("the server closed the connection"));
    }
    let first = closed_after.iter().min().copied().unwrap_or_default();
    let last = closed_after.iter().max().copied().unwrap_or_default();
    assert!(
        first >= timeout - Duration::from_millis(500),
        "no connection is cut before the timeout: {first:?}"
    );
    assert!(
        last <= timeout + Duration::from_secs(3),
        "every slow connection closed within the timeout + 3 s: {last:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = fds(origin.pid());
    eprintln!(
        "measured: 270 slow/silent clients closed after {first:?}..{last:?}; slowest normal request {slowest:?}; \
         origin fds {baseline} → {held} → {after}"
    );
    assert!(
        after <= baseline + 5,
        "descriptors released: {baseline} → {held} → {after}"
    );
    assert_healthy(&mut origin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_traversing_targets_get_400_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    std::fs::create_dir(&root).expect("mkdir");
    let store = url::Url::from_directory_path(&root).expect("url").to_string();
    let mut origin = origin_on(&store);
    let a = origin.addr;
    let targets: &[&[u8]] = &[
        // Not UTF-8, raw and encoded; overlong encodings of '.'.
        b"/live/\xff\xfe.ts",
        b"/live/%ff.ts",
        b"/live/%c3%28.ts",
        b"/%c0%ae%c0%ae/etc/passwd",
        b"/%e0%80%ae%e0%80%ae/etc/passwd",
        // Bad percent-encoding.
        b"/live/%zz.ts",
        b"/live/%2.ts",
        b"/live/%",
        b"/live/%%32%65.ts",
        // Traversal in every spelling.
        b"/../etc/passwd",
        b"/live/../../etc/passwd",
        b"/./live/seg.ts",
        b"/live/./seg.ts",
        b"/%2e%2e/etc/passwd",
        b"/%2E%2e/etc/passwd",
        b"/.%2e/etc/passwd",
        b"/%2e./etc/passwd",
        b"/live/%2e/seg.ts",
        b"/live%2f..%2f..%2fetc%2fpasswd",
        b"/live%2F..%2Fsecret",
        b"/live%5c..%5csecret",
        b"/live\\..\\secret",
        b"/live/..%5csecret",
        b"//etc/passwd",
        b"/live//seg.ts",
        b"/live/",
        b"/.env",
        b"/live/.git/config",
        // Control characters and header injection, encoded.
        b"/live/seg%00.ts",
        b"/live/seg%0d%0aSet-Cookie:%20x.ts",
        b"/live/seg%7f.ts",
        b"/live/a%23b.ts",
        b"/live/a%3fb.ts",
        // Absolute-form, authority-form and asterisk-form targets.
        b"http://169.254.169.254/latest/meta-data",
        b"https://evil.example/x.ts",
        b"HTTP://evil.example/x.ts",
        b"http://user:pass@evil.example/x.ts",
        b"*",
        b"evil.example:443",
    ];
    let long_path = format!("/{}", "a".repeat(1100));
    let deep_path = "/a".repeat(40);
    let mut all: Vec<&[u8]> = targets.to_vec();
    all.push(long_path.as_bytes());
    all.push(deep_path.as_bytes());
    for target in all {
        for method in ["GET", "HEAD", "PUT", "DELETE"] {
            let mut request = format!("{method} ").into_bytes();
            request.extend_from_slice(target);
            request.extend_from_slice(
                format!(
                    " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
                )
                .as_bytes(),
            );
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
    let answer = raw::exchange(
        a,
        b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(answer.status(), 400, "CONNECT: {}", answer.text);

    // Decoded exactly once: `%252e%252e` is the literal name `%2e%2e`, not `..`.
    assert_eq!(
        common::put(origin.url("/lit/%252e%252e/x.ts"), TOKEN, "literal").await,
        StatusCode::CREATED
    );
    let answer = raw::exchange(
        a,
        b"GET /lit/%252e%252e/x.ts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(answer.status(), 200);
    assert!(answer.text.ends_with("literal"), "{}", answer.text);

    // Nothing was written outside the store, and inside it only the literal object.
    let beside: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    assert_eq!(beside, ["store"], "{beside:?}");
    let mut inside = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else {
                inside.push(entry.path());
            }
        }
    }
    assert_eq!(inside.len(), 1, "{inside:?}");
    assert_healthy(&mut origin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_attempts_are_refused_or_answered_once_and_closed() {
    let mut origin = origin();
    let a = origin.addr;
    let read_for = Duration::from_secs(5);

    // Both Content-Length and Transfer-Encoding: the chunked framing wins,
    // the connection is closed after the answer, and the request hidden
    // behind the body is never carried out (RFC 9112 §6.3).
    let both = format!(
        "PUT /smuggle/front.ts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: 60\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
         PUT /smuggle/hidden.ts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 1\r\n\r\nx"
    );
    let answer = raw::exchange(a, both.as_bytes(), read_for).await;
    assert!(
        answer.statuses == [400] || answer.statuses == [201],
        "one answer: {}",
        answer.text
    );
    assert!(answer.closed, "the connection is closed after it");
    // The same with the fields in the other order.
    let reversed = format!(
        "PUT /smuggle/front2.ts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Transfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\n\
         PUT /smuggle/hidden.ts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 1\r\n\r\nx"
    );
    let answer = raw::exchange(a, reversed.as_bytes(), read_for).await;
    assert_eq!(answer.statuses.len(), 1, "{}", answer.text);
    assert!(answer.closed);
    assert_eq!(
        get_status(&origin, "/smuggle/hidden.ts").await,
        StatusCode::NOT_FOUND,
        "the hidden request never ran"
    );

    // Framing the server cannot trust: 400 from the HTTP parser.
    for (what, head) in [
        (
            "two different Content-Lengths",
            "Content-Length: 1\r\nContent-Length: 30\r\n",
        ),
        ("a Content-Length list", "Content-Length: 1, 30\r\n"),
        ("a signed Content-Length", "Content-Length: +3\r\n"),
        ("a negative Content-Length", "Content-Length: -1\r\n"),
        ("a non-chunked coding", "Transfer-Encoding: gzip\r\n"),
        ("chunked not last", "Transfer-Encoding: chunked, identity\r\n"),
        ("a lookalike coding", "Transfer-Encoding: xchunked\r\n"),
        ("a space before the colon", "Transfer-Encoding : chunked\r\n"),
        ("an obsolete line folding", "X-Folded: a\r\n b\r\n"),
        ("a NUL in a value", "X-Nul: a\0b\r\n"),
    ] {
        let request = format!(
            "PUT /smuggle/bad.ts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n{head}\r\nabc"
        );
        let answer = raw::exchange(a, request.as_bytes(), read_for).await;
        assert_eq!(answer.statuses, [400], "{what}: {}", answer.text);
    }
    let answer = raw::exchange(
        a,
        b"PUT /smuggle/bad.ts HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        read_for,
    )
    .await;
    assert_eq!(answer.statuses, [400], "chunked in HTTP/1.0: {}", answer.text);
    assert_eq!(
        get_status(&origin, "/smuggle/bad.ts").await,
        StatusCode::NOT_FOUND
    );

    // A chunked body with a bad chunk size is not stored.
    let request = format!(
        "PUT /smuggle/chunk.ts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
    );
    let answer = raw::exchange(a, request.as_bytes(), read_for).await;
    assert!(
        answer.status() == 0 || (400..500).contains(&answer.status()),
        "{}",
        answer.text
    );
    assert_eq!(
        get_status(&origin, "/smuggle/chunk.ts").await,
        StatusCode::NOT_FOUND
    );

    // Pipelining itself is fine: two requests, two answers, in order.
    let answer = raw::exchange(
        a,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /smuggle/none.ts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        read_for,
    )
    .await;
    assert_eq!(answer.statuses, [200, 404], "{}", answer.text);
    assert_healthy(&mut origin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_and_odd_protocol_versions() {
    let mut origin = origin();
    let a = origin.addr;
    let read_for = Duration::from_secs(5);
    // HTTP/1.0 needs no Host: served, then closed.
    let answer = raw::exchange(a, b"GET /healthz HTTP/1.0\r\n\r\n", read_for).await;
    assert_eq!(answer.statuses, [200], "{}", answer.text);
    assert!(answer.closed, "HTTP/1.0 without keep-alive is closed");
    // HTTP/1.1 without Host: the origin serves by path alone, the Host is never used.
    let answer = raw::exchange(a, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", read_for).await;
    assert!(matches!(answer.status(), 200 | 400), "{}", answer.text);
    // HTTP/0.9, unknown versions and garbage: refused.
    for request in [
        &b"GET /healthz\r\n\r\n"[..],
        b"GET /healthz HTTP/9.9\r\n\r\n",
        b"GET /healthz FOO/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"G\xc3\x89T /healthz HTTP/1.1\r\n\r\n",
        b"GET  /healthz  HTTP/1.1\r\n\r\n",
    ] {
        let answer = raw::exchange(a, request, read_for).await;
        assert!(
            answer.status() == 400 || (answer.statuses.is_empty() && answer.closed),
            "{:?}: {}",
            String::from_utf8_lossy(request),
            answer.text
        );
    }
    assert_healthy(&mut origin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_idle_connections_do_not_stop_service() {
    let mut origin = origin();
    let mut idle = raw::idle_connections(origin.addr, 500).await;
    let started = Instant::now();
    let (status, took) = raw::timed_get(origin.addr, "/healthz").await;
    assert_eq!(status, 200);
    eprintln!("measured: /healthz with 500 idle connections open took {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(
        common::put(origin.url("/idle/seg.ts"), TOKEN, "x").await,
        StatusCode::CREATED
    );
    assert_eq!(get_status(&origin, "/idle/seg.ts").await, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(raw::closed_count(&mut idle).await, 0, "idle ones are still open");
    drop(idle);
    assert_healthy(&mut origin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_without_the_ingest_token_writes_or_deletes() {
    let mut origin = origin();
    let http = client();
    assert_eq!(
        common::put(origin.url("/auth/kept.ts"), TOKEN, "original").await,
        StatusCode::CREATED
    );
    let prefix = &TOKEN[..TOKEN.len() - 1];
    let attempts = [
        None,
        Some("Bearer wrong-token-0123456789".to_owned()),
        Some(format!("Bearer {prefix}")),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Basic {TOKEN}")),
        Some(format!("Token {TOKEN}")),
        Some(TOKEN.to_owned()),
        Some(format!("Bearer{TOKEN}")),
        Some("Bearer ".to_owned()),
        Some(format!("bearer {}", TOKEN.to_uppercase())),
    ];
    for auth in &attempts {
        for (method, path) in [
            ("PUT", "/auth/new.ts"),
            ("PUT", "/auth/kept.ts"),
            ("DELETE", "/auth/kept.ts"),
        ] {
            let auth_line = auth
                .as_ref()
                .map(|a| format!("Authorization: {a}\r\n"))
                .unwrap_or_default();
            let request = format!(
                "{method} {path}?token={TOKEN}&ingest_token={TOKEN} HTTP/1.1\r\nHost: x\r\n{auth_line}\
                 X-Ingest-Token: {TOKEN}\r\nContent-Length: 4\r\nConnection: close\r\n\r\nevil"
            );
            let answer = raw::exchange(origin.addr, request.as_bytes(), Duration::from_secs(5)).await;
            assert_eq!(answer.status(), 401, "{method} with {auth:?}: {}", answer.text);
            assert!(
                answer
                    .text
                    .to_ascii_lowercase()
                    .contains("www-authenticate: bearer"),
                "{}",
                answer.text
            );
        }
    }
    assert_eq!(get_status(&origin, "/auth/new.ts").await, StatusCode::NOT_FOUND);
    let kept = common::text(origin.url("/auth/kept.ts")).await;
    assert_eq!(kept, "original", "neither replaced nor deleted");
    assert_healthy(&mut origin).await;

    // An origin started without a token takes no writes at all.
    let mut closed = Server::origin(&["--store", "memory://"], &[]);
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE] {
        let r = http
            .request(method.clone(), closed.url("/auth/x.ts"))
            .bearer_auth(TOKEN)
            .body("x")
            .send()
            .await
            .expect("write");
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method}");
    }
    assert_healthy(&mut closed).await;
}
