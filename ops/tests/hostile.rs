//! Hostile HTTP against a real `hlscdn dashboard` process on loopback, the
//! fourth server of the project (origin, router and edge have their own
//! hostile tests): targets that are not origin-form, traversal, oversized
//! heads, slowloris, the explain proxy pointed at another host, and a
//! shutdown with an event stream held open.

use test_kit as common;
use test_kit::raw;

use std::time::{Duration, Instant};

use axum::Router;
use common::{Server, client};
use std::sync::{Arc, Mutex};

/// A dashboard watching `router` (which may not answer), with `envs`.
fn dashboard(router: &str, envs: &[(&str, &str)]) -> Server {
    let path = common::bin_path("ops", "hlscdn");
    Server::start(
        path.to_str().expect("utf-8"),
        &["dashboard", "--listen", "127.0.0.1:0", "--router", router],
        envs,
    )
}

async fn assert_healthy(server: &mut Server) {
    assert!(server.running(), "the process is alive");
    assert!(raw::healthy(server.addr).await, "/healthz answers 200");
}

/// Another host: records every request it gets.
async fn other_host() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let app = Router::new().fallback(move |request: axum::extract::Request| {
        let record = record.clone();
        async move {
            record.lock().expect("lock").push(request.uri().to_string());
            "{}"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_targets_traversal_and_big_heads_get_4xx() {
    let (other, seen) = other_host().await;
    let mut dash = dashboard("http://127.0.0.1:9", &[]);
    let a = dash.addr;
    for target in [
        "http://169.254.169.254/latest/meta-data/",
        "HTTP://127.0.0.1:9/",
        &format!("{other}/api/overview"),
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(raw::status(a, &request).await, 400, "{target}");
    }
    let connect = format!(
        "CONNECT {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        other.trim_start_matches("http://")
    );
    assert_eq!(raw::status(a, &connect).await, 400, "authority-form");

    // Assets are looked up in an embedded table: nothing else is readable.
    for target in [
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fCargo.toml",
        "/assets/../../Cargo.toml",
        "/%ff%fe",
        "/\\..\\Cargo.toml",
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let status = raw::status(a, &request).await;
        assert!(status == 404 || status == 400, "{target}: {status}");
    }
    let answer = raw::exchange(
        a,
        b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(2),
    )
    .await;
    assert!(
        matches!(answer.statuses.first(), Some(400 | 404)),
        "{}",
        answer.text
    );

    // The explain proxy asks only routers the dashboard watches.
    for router in [other.as_str(), "http://169.254.169.254", "file:///etc/passwd"] {
        let mut url = url::Url::parse(&format!("http://{a}/api/explain")).expect("url");
        url.query_pairs_mut()
            .append_pair("router", router)
            .append_pair("path", "/live/x/240p/index.m3u8");
        let response = client().get(url).send().await.expect("explain");
        assert_eq!(response.status(), 400, "{router}");
    }
    assert!(seen.lock().expect("lock").is_empty(), "another host was asked");

    // Only GET and HEAD: every other method, real or made up, is 405.
    for method in ["TRACE", "PUT", "DELETE", "POST", "PATCH", "FOO"] {
        for target in ["/", "/player", "/api/overview", "/nothing-here"] {
            let request = format!(
                "{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            assert_eq!(raw::status(a, &request).await, 405, "{method} {target}");
        }
    }

    // Oversized heads.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    assert_eq!(raw::status(a, &big).await, 431);
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let request = format!("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{many}\r\n");
    assert_eq!(raw::status(a, &request).await, 431);
    assert_healthy(&mut dash).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_block_nobody() {
    let timeout = Duration::from_secs(3);
    let mut dash = dashboard("http://127.0.0.1:9", &[("HLSCDN_HEADER_TIMEOUT_MS", "3000")]);
    let a = dash.addr;
    let paths = vec!["/".to_owned(); 8];
    let crowd = raw::outlast_slow_crowd(
        a,
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa",
        timeout,
        &paths,
    )
    .await;
    eprintln!("measured: 250 slow/silent clients (timeout {timeout:?}): {crowd:?}");
    assert_healthy(&mut dash).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_open_event_streams() {
    let mut dash = dashboard("http://127.0.0.1:9", &[]);
    let mut events = client()
        .get(dash.url("/api/events"))
        .send()
        .await
        .expect("events");
    assert!(events.chunk().await.expect("first event").is_some());
    dash.signal("TERM");
    let termed = Instant::now();
    let status = dash.wait_exit(Duration::from_secs(8));
    let took = termed.elapsed();
    eprintln!("dashboard with an event stream open exited {took:?} after SIGTERM");
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}
