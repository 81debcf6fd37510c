//! A real `hlscdn-router` process in front of an origin that misbehaves on
//! purpose (an HTTP server run by the test): each failure gets the status
//! DESIGN.md names, quickly; `_HLS_*` parameters reach the origin and never
//! the rewritten URIs; concurrent misses collapse into one origin fetch.

use test_kit as common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use common::{Server, client};

const LIVE: &str = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:10\n\
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0\n#EXT-X-PART-INF:PART-TARGET=0.5\n\
#EXTINF:2.0,\nseg-10.ts\n#EXTINF:2.0,\nseg-11.ts\n\
#EXT-X-PART:DURATION=0.5,URI=\"part-12.0.ts\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-12.1.ts\"\n";

#[derive(Default)]
struct Seen {
    queries: Vec<(String, String)>,
    /// `/live/flaky/index.m3u8` answers 500 while set.
    down: bool,
}

async fn origin(
    State(seen): State<Arc<Mutex<Seen>>>,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> axum::response::Response {
    let path = uri.path().to_owned();
    if let Ok(mut seen) = seen.lock() {
        seen.queries
            .push((path.clone(), query.clone().unwrap_or_default()));
    }
    let down = seen.lock().map(|s| s.down).unwrap_or(false);
    match path.as_str() {
        "/live/flaky/index.m3u8" if down => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "/live/flaky/index.m3u8" => LIVE.into_response(),
        "/missing.m3u8" => StatusCode::NOT_FOUND.into_response(),
        "/error.m3u8" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "/slow.m3u8" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            LIVE.into_response()
        }
        "/garbage.m3u8" => "<html><body>not a playlist</body></html>".into_response(),
        "/huge.m3u8" => {
            let mut body = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:2\n");
            while body.len() < 200_000 {
                body.push_str("#EXTINF:2.0,\nsegment-with-a-long-name.ts\n");
            }
            body.into_response()
        }
        "/busy.m3u8" => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        "/live/a/index.m3u8" => {
            // Slow enough that concurrent viewers overlap.
            tokio::time::sleep(Duration::from_millis(200)).await;
            LIVE.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn start_origin() -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = axum::Router::new().fallback(origin).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

fn start_router(origin: &str, dir: &std::path::Path) -> Server {
    let config = dir.join("router.toml");
    std::fs::write(
        &config,
        "origin_timeout = \"500ms\"\nblocking_timeout = \"1500ms\"\nmax_playlist_bytes = 65536\n\
         [[edges]]\nid = \"e1\"\nurl = \"http://127.0.0.1:9\"\n",
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
            "fleet-token-for-tests-0123",
        ],
        &[],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_origins_give_the_right_status_quickly() {
    let (origin_url, _) = start_origin().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let router = start_router(&origin_url, dir.path());
    let http = client();
    for (path, status, within) in [
        ("/missing.m3u8", 404, Duration::from_secs(1)),
        ("/error.m3u8", 502, Duration::from_secs(1)),
        ("/slow.m3u8", 504, Duration::from_millis(1500)),
        ("/garbage.m3u8", 502, Duration::from_secs(1)),
        ("/huge.m3u8", 502, Duration::from_secs(1)),
        ("/busy.m3u8?_HLS_msn=13", 503, Duration::from_secs(1)),
    ] {
        let started = Instant::now();
        let r = http.get(router.url(path)).send().await.expect("request");
        let elapsed = started.elapsed();
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert!(elapsed < within, "{path} took {elapsed:?}");
        let reason = r.text().await.expect("text");
        assert_eq!(reason.lines().count(), 1, "one-line reason: {reason:?}");
    }
    // The router is still healthy.
    assert_eq!(
        http.get(router.url("/healthz"))
            .send()
            .await
            .expect("get")
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_parameters_pass_through_and_misses_collapse() {
    let (origin_url, seen) = start_origin().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let router = start_router(&origin_url, dir.path());
    let http = client();

    // Twenty viewers at once: one origin fetch.
    let url = router.url("/live/a/index.m3u8");
    let requests = (0..20).map(|_| http.get(&url).send());
    for r in futures::future::join_all(requests).await {
        assert_eq!(r.expect("request").status(), 200);
    }
    let fetches = seen
        .lock()
        .expect("lock")
        .queries
        .iter()
        .filter(|(p, _)| p == "/live/a/index.m3u8")
        .count();
    assert_eq!(fetches, 1, "concurrent misses collapse");

    // A blocking reload: `_HLS_*` reaches the origin, the session does not,
    // and no written URI carries `_HLS_*`.
    let body = common::text(router.url("/live/a/index.m3u8?_HLS_msn=12&_HLS_part=1&s=whatever")).await;
    let last = seen
        .lock()
        .expect("lock")
        .queries
        .last()
        .cloned()
        .expect("a fetch");
    assert_eq!(
        last,
        (
            "/live/a/index.m3u8".to_owned(),
            "_HLS_msn=12&_HLS_part=1".to_owned()
        )
    );
    assert!(!body.contains("_HLS_"), "{body}");
    assert!(
        body.contains("URI=\"http://127.0.0.1:9/live/a/part-12.1.ts"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_origin_is_bridged_for_one_target_duration_then_502() {
    let (origin_url, seen) = start_origin().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let router = start_router(&origin_url, dir.path());
    let http = client();
    let url = router.url("/live/flaky/index.m3u8");
    let good = http.get(&url).send().await.expect("request");
    assert_eq!(good.status(), 200);
    let good = good.text().await.expect("text");

    seen.lock().expect("lock").down = true;
    let failed_at = Instant::now();
    // The router's copy expires after half a target duration (1 s); until one
    // target duration (2 s) after the last good fetch it still serves it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let bridged = http.get(&url).send().await.expect("request");
    assert_eq!(bridged.status(), 200, "bridged");
    assert_eq!(bridged.text().await.expect("text"), good);
    tokio::time::sleep(Duration::from_millis(2200).saturating_sub(failed_at.elapsed())).await;
    let r = http.get(&url).send().await.expect("request");
    assert_eq!(r.status(), 502, "then a clear error");

    seen.lock().expect("lock").down = false;
    assert_eq!(
        http.get(&url).send().await.expect("request").status(),
        200,
        "recovers by itself"
    );
}
