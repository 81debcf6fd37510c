//! The edge serving viewers: real `hlscdn-origin` and `hlscdn-edge`
//! processes on loopback. Hits and misses are proven by the origin's own
//! request count, not by the edge's word.

use test_kit as common;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;

use common::{client, raw_status};
use reqwest::StatusCode;
use router_api::token::{KeyRing, SigningKey, acl_for_stream};
use support::{
    EdgeProc, OtherHost, concurrent_gets, edge_metrics, fetches_between, origin, origin_gets, payload,
    publish, sample, start_edge,
};

const SEG: &str = "/live/s1/480p/seg-1.ts";

fn edge_for(origin: &common::Server, extra: &[&str]) -> EdgeProc {
    let url = origin.url("");
    let mut args = vec![
        "--id",
        "edge-test",
        "--origin",
        url.as_str(),
        "--cache-bytes",
        "67108864",
    ];
    args.extend_from_slice(extra);
    start_edge(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_request_is_a_hit_by_the_origin_count() {
    let origin = origin();
    let body = payload(200_000, 1);
    publish(&origin, SEG, body.clone()).await;
    let edge = edge_for(&origin, &[]);
    let http = client();

    let before = origin_gets(&origin).await;
    let r = http.get(edge.url(SEG)).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    assert_eq!(h["x-cache"], "MISS");
    assert_eq!(h["content-type"], "video/mp2t");
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(h["content-length"], "200000");
    let etag = h["etag"].to_str().expect("etag").to_owned();
    assert!(etag.starts_with('"'), "{etag}");
    assert_eq!(r.bytes().await.expect("body").as_ref(), body.as_slice());
    let after_miss = origin_gets(&origin).await;
    assert_eq!(
        fetches_between(before, after_miss),
        1,
        "the miss went to the origin"
    );

    for _ in 0..3 {
        let r = http.get(edge.url(SEG)).send().await.expect("get");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-cache"], "HIT");
        assert_eq!(r.headers()["etag"], etag.as_str());
        assert!(r.headers().contains_key("age"));
        assert_eq!(r.bytes().await.expect("body").as_ref(), body.as_slice());
    }
    // HEAD, a conditional GET and a token-less query do not reach the origin either.
    let r = http.head(edge.url(SEG)).send().await.expect("head");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], "200000");
    let r = http
        .get(edge.url(SEG))
        .header("if-none-match", etag.as_str())
        .send()
        .await
        .expect("conditional");
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = http
        .get(edge.url(&format!("{SEG}?cachebuster=1")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.headers()["x-cache"], "HIT", "segments are cached by path");
    let after_hits = origin_gets(&origin).await;
    assert_eq!(
        fetches_between(after_miss, after_hits),
        0,
        "hits never reach the origin"
    );

    let m = edge_metrics(&edge).await;
    assert_eq!(sample(&m, "hlscdn_edge_cache_misses_total", &[]), 1.0);
    assert_eq!(sample(&m, "hlscdn_edge_cache_hits_total", &[]), 6.0);
    assert!(sample(&m, "hlscdn_edge_bytes_out_total", &[]) >= 800_000.0);
    assert_eq!(
        sample(&m, "hlscdn_edge_requests_total", &[("status", "304")]),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_misses_make_one_origin_fetch() {
    let origin = origin();
    let body = payload(2 << 20, 7);
    publish(&origin, SEG, body.clone()).await;
    let edge = edge_for(&origin, &[]);
    let before = origin_gets(&origin).await;
    // All 100 connections are open before any request is written.
    let answers = concurrent_gets(edge.addr, SEG, 100).await;
    assert_eq!(answers.len(), 100);
    for (status, got) in &answers {
        assert_eq!(*status, 200);
        assert!(got == &body, "every viewer gets the full, identical bytes");
    }
    let after = origin_gets(&origin).await;
    assert_eq!(fetches_between(before, after), 1, "exactly one origin fetch");
    let m = edge_metrics(&edge).await;
    let (misses, collapsed, hits) = (
        sample(&m, "hlscdn_edge_cache_misses_total", &[]),
        sample(&m, "hlscdn_edge_cache_collapsed_total", &[]),
        sample(&m, "hlscdn_edge_cache_hits_total", &[]),
    );
    assert_eq!(misses, 1.0);
    assert_eq!(misses + collapsed + hits, 100.0);
    assert!(
        collapsed >= 1.0,
        "requests joined the fetch in flight ({collapsed} of 100)"
    );
    assert!(sample(&m, "hlscdn_edge_origin_fetch_seconds_count", &[("result", "ok")]) >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_viewers_are_streamed_to_while_the_fill_runs() {
    // An origin that sends half the body, pauses a second, sends the rest.
    let body = payload(200_000, 8);
    let served = Arc::new(AtomicUsize::new(0));
    let app = {
        let (body, served) = (body.clone(), served.clone());
        axum::Router::new().fallback(move || {
            let (body, served) = (body.clone(), served.clone());
            async move {
                served.fetch_add(1, Ordering::SeqCst);
                let (first, second) = (
                    Bytes::copy_from_slice(&body[..100_000]),
                    Bytes::copy_from_slice(&body[100_000..]),
                );
                let chunks = futures::stream::iter([Ok::<_, std::io::Error>(first)]).chain(
                    futures::stream::once(async move {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Ok(second)
                    }),
                );
                (
                    [("content-length", "200000")],
                    axum::body::Body::from_stream(chunks),
                )
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin_url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let edge = start_edge(&["--id", "edge-slow", "--origin", &origin_url]);
    let viewer = |delay: u64| {
        let url = edge.url("/live/s1/480p/slow.ts");
        async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let started = Instant::now();
            let mut r = client().get(url).send().await.expect("get");
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(r.headers()["content-length"], "200000");
            let mut got = r.chunk().await.expect("chunk").expect("a first chunk").to_vec();
            let first_bytes = started.elapsed();
            while let Some(chunk) = r.chunk().await.expect("chunk") {
                got.extend_from_slice(&chunk);
            }
            (first_bytes, started.elapsed(), got)
        }
    };
    let (leader, joined) = tokio::join!(viewer(0), viewer(200));
    for (first_bytes, total, got) in [leader, joined] {
        assert!(got == body, "full, identical bytes");
        assert!(
            first_bytes < Duration::from_millis(500),
            "first bytes after {first_bytes:?}"
        );
        assert!(
            total >= Duration::from_millis(600),
            "the body came as the origin sent it ({total:?})"
        );
    }
    assert_eq!(served.load(Ordering::SeqCst), 1, "one origin fetch");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_on_uncached_and_cached_objects() {
    let origin = origin();
    let body = payload(300_000, 3);
    publish(&origin, "/vod/v/720p/a.mp4", body.clone()).await;
    publish(&origin, "/vod/v/720p/b.mp4", body.clone()).await;
    let edge = edge_for(&origin, &[]);
    let http = client();
    let get = |path: &str, range: &str| http.get(edge.url(path)).header("range", range.to_owned()).send();

    let before = origin_gets(&origin).await;
    // Uncached: a middle range (answered while the fill runs), then a suffix of another object.
    let r = get("/vod/v/720p/a.mp4", "bytes=100000-100999")
        .await
        .expect("range");
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 100000-100999/300000");
    assert_eq!(r.headers()["content-length"], "1000");
    assert_eq!(r.bytes().await.expect("body").as_ref(), &body[100_000..101_000]);
    let r = get("/vod/v/720p/b.mp4", "bytes=-500").await.expect("range");
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 299500-299999/300000");
    assert_eq!(r.bytes().await.expect("body").as_ref(), &body[299_500..]);

    // Cached: first bytes, open-ended, out of range, If-Range.
    let r = get("/vod/v/720p/a.mp4", "bytes=0-9").await.expect("range");
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["x-cache"], "HIT");
    assert_eq!(r.bytes().await.expect("body").as_ref(), &body[..10]);
    let r = get("/vod/v/720p/a.mp4", "bytes=299990-").await.expect("range");
    assert_eq!(r.headers()["content-range"], "bytes 299990-299999/300000");
    assert_eq!(r.bytes().await.expect("body").as_ref(), &body[299_990..]);
    let r = get("/vod/v/720p/a.mp4", "bytes=300000-").await.expect("range");
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.headers()["content-range"], "bytes */300000");
    let etag = r.headers().get("etag").cloned();
    assert!(etag.is_none(), "errors carry no validator");
    let r = http
        .get(edge.url("/vod/v/720p/a.mp4"))
        .header("range", "bytes=0-9")
        .header("if-range", "\"another-version\"")
        .send()
        .await
        .expect("if-range");
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "If-Range of another version: the whole object"
    );
    assert_eq!(r.bytes().await.expect("body").len(), 300_000);
    let r = http
        .head(edge.url("/vod/v/720p/b.mp4"))
        .header("range", "bytes=0-99")
        .send()
        .await
        .expect("head");
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-length"], "100");

    let after = origin_gets(&origin).await;
    assert_eq!(
        fetches_between(before, after),
        2,
        "one fetch per object, whatever the ranges"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_is_not_remembered_the_published_segment_is_served_at_once() {
    let origin = origin();
    let edge = edge_for(&origin, &[]);
    let http = client();
    let seg = "/live/s1/480p/seg-9.ts";
    for _ in 0..3 {
        let r = http.get(edge.url(seg)).send().await.expect("get");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()["x-cache"], "MISS");
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
    let body = payload(50_000, 9);
    publish(&origin, seg, body.clone()).await;
    let r = http.get(edge.url(seg)).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::OK, "served right after it was published");
    assert_eq!(r.bytes().await.expect("body").as_ref(), body.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_over_the_cacheable_size_stream_through_with_their_range() {
    let origin = origin();
    let body = payload(300_000, 5);
    publish(&origin, "/vod/big/1080p/all.ts", body.clone()).await;
    let edge = edge_for(&origin, &["--max-object-bytes", "100000"]);
    let http = client();
    let url = edge.url("/vod/big/1080p/all.ts");
    let before = origin_gets(&origin).await;
    let r = http.get(&url).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], "300000");
    assert_eq!(r.bytes().await.expect("body").as_ref(), body.as_slice());
    let r = http
        .get(&url)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .expect("range");
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["x-cache"], "MISS");
    assert_eq!(r.headers()["content-range"], "bytes 1000-1999/300000");
    assert_eq!(r.bytes().await.expect("body").as_ref(), &body[1000..2000]);
    let after = origin_gets(&origin).await;
    // The first GET: a fill that stops at the announced size, then a
    // pass-through GET (200); the range is forwarded (a 206 at the origin).
    assert_eq!(fetches_between(before, after), 2, "nothing is cached");
    let m = edge_metrics(&edge).await;
    assert_eq!(sample(&m, "hlscdn_edge_passthrough_total", &[]), 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playlists_pass_through_keyed_with_their_query_for_a_second() {
    let origin = origin();
    let playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg-1.ts\n".to_vec();
    publish(&origin, "/live/s1/480p/index.m3u8", playlist.clone()).await;
    let edge = edge_for(&origin, &[]);
    let http = client();
    let before = origin_gets(&origin).await;
    for _ in 0..3 {
        let r = http
            .get(edge.url("/live/s1/480p/index.m3u8?_HLS_msn=5&_HLS_part=1"))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "application/vnd.apple.mpegurl");
        assert_eq!(r.headers()["cache-control"], "public, max-age=1");
        assert_eq!(r.bytes().await.expect("body").as_ref(), playlist.as_slice());
    }
    let r = http
        .get(edge.url("/live/s1/480p/index.m3u8?_HLS_msn=6"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.headers()["x-cache"], "MISS", "another query is another entry");
    let after = origin_gets(&origin).await;
    assert_eq!(fetches_between(before, after), 2);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = http
        .get(edge.url("/live/s1/480p/index.m3u8?_HLS_msn=6"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.headers()["x-cache"], "MISS", "playlists live at most a second");
}

/// Issue 13 item 8: the playlist pass-through was keyed with the whole
/// query, so `?b=1`, `?b=2`, … each cost an origin fetch. Only `_HLS_*`
/// delivery directives take part in the key and the origin request now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_busting_queries_do_not_reach_the_origin() {
    const REQUESTS: usize = 1_000;
    let origin = origin();
    let playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg-1.ts\n".to_vec();
    publish(&origin, "/live/s1/480p/index.m3u8", playlist.clone()).await;
    let edge = edge_for(&origin, &[]);
    let http = client();
    let before = origin_gets(&origin).await;
    let started = Instant::now();
    let bodies: Vec<(StatusCode, Bytes)> = futures::stream::iter(0..REQUESTS)
        .map(|i| {
            // Plain junk, and junk dressed as a directive.
            let query = if i % 2 == 0 {
                format!("b={i}")
            } else {
                format!("_HLS_b={i}&_HLS_msn=x{i}")
            };
            let request = http.get(edge.url(&format!("/live/s1/480p/index.m3u8?{query}")));
            async move {
                let r = request.send().await.expect("get");
                (r.status(), r.bytes().await.expect("body"))
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let took = started.elapsed();
    let after = origin_gets(&origin).await;
    let fetches = fetches_between(before, after);
    eprintln!(
        "measured: {REQUESTS} playlist requests with distinct `?b=N` in {took:?}: {fetches} origin fetches"
    );
    for (status, body) in &bodies {
        assert_eq!(*status, StatusCode::OK);
        assert_eq!(body.as_ref(), playlist.as_slice());
    }
    // The pass-through keeps a playlist for a second: one fetch per second
    // the burst lasted, at most.
    assert!(
        fetches <= 1 + took.as_secs(),
        "{fetches} origin fetches in {took:?}"
    );
    // A target past 8 KiB never gets as far as the cache.
    let long = edge.url(&format!("/live/s1/480p/index.m3u8?b={}", "x".repeat(9000)));
    let r = http.get(long).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::URI_TOO_LONG);
    assert_eq!(origin_gets(&origin).await, after + 1, "nothing fetched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_targets_and_traversal_are_refused_and_no_other_host_is_contacted() {
    let origin = origin();
    let other = OtherHost::start(b"other host").await;
    publish(&origin, SEG, payload(1000, 0)).await;
    let edge = edge_for(&origin, &[]);
    let o = other.addr;
    let requests = [
        format!("GET http://{o}/live/s1/480p/seg-1.ts HTTP/1.1\r\nHost: {o}\r\n\r\n"),
        format!("GET https://{o}/x.ts HTTP/1.1\r\nHost: {o}\r\n\r\n"),
        format!("HEAD http://{o}/x.ts HTTP/1.1\r\nHost: {o}\r\n\r\n"),
        format!("CONNECT {o} HTTP/1.1\r\nHost: {o}\r\n\r\n"),
        format!("GET //{o}/x.ts HTTP/1.1\r\nHost: x\r\n\r\n"),
        format!("GET /http://{o}/x.ts HTTP/1.1\r\nHost: x\r\n\r\n"),
        "GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
        "GET /live/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
        "GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
        "GET /live%2f..%2f..%2fetc/passwd HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
        "GET /live/%5c..%5cx.ts HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
        "GET /a%00b.ts HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
        "GET /.env HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
    ];
    let before = origin_gets(&origin).await;
    for request in requests {
        let addr = edge.addr;
        let status = tokio::task::spawn_blocking(move || raw_status(addr, request.as_bytes()))
            .await
            .expect("task");
        assert_eq!(status, 400, "refused with 400");
    }
    // A Host header naming another host changes nothing: the origin serves.
    let request = format!("GET {SEG} HTTP/1.1\r\nHost: {o}\r\n\r\n");
    let addr = edge.addr;
    let status = tokio::task::spawn_blocking(move || raw_status(addr, request.as_bytes()))
        .await
        .expect("task");
    assert_eq!(status, 200);
    let r = client().post(edge.url(SEG)).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let after = origin_gets(&origin).await;
    assert_eq!(
        fetches_between(before, after),
        1,
        "only the valid request reached the origin"
    );
    assert!(
        other.seen().is_empty(),
        "the other host was contacted: {:?}",
        other.seen()
    );
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn ring(spec: &str) -> KeyRing {
    KeyRing::single(spec.parse::<SigningKey>().expect("key"))
}

const K1: &str = "k1:first-secret-0123456789";
const K2: &str = "k2:second-secret-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_urls_are_checked_before_any_cache_or_origin_work() {
    let origin = origin();
    let body = payload(10_000, 2);
    publish(&origin, SEG, body.clone()).await;
    let edge = edge_for(&origin, &["--signing-key", K1, "--signing-key", K2]);
    let http = client();
    let stream = acl_for_stream("live/s1");
    let in_an_hour = unix_now() + 3600;
    let status = |query: String| {
        let url = edge.url(&format!("{SEG}{query}"));
        let http = http.clone();
        async move { http.get(url).send().await.expect("get").status() }
    };

    let before = origin_gets(&origin).await;
    assert_eq!(status(String::new()).await, StatusCode::FORBIDDEN, "no token");
    assert_eq!(
        status("?hdnts=".into()).await,
        StatusCode::FORBIDDEN,
        "empty token"
    );
    let good = ring(K1).sign(&stream, in_an_hour);
    let mut tampered = good.clone();
    let last = tampered.pop().expect("char");
    tampered.push(if last == '0' { '1' } else { '0' });
    assert_eq!(
        status(format!("?hdnts={tampered}")).await,
        StatusCode::FORBIDDEN,
        "tampered"
    );
    let tampered_exp = good.replacen(
        &format!("exp={in_an_hour}"),
        &format!("exp={}", in_an_hour + 1),
        1,
    );
    assert_eq!(
        status(format!("?hdnts={tampered_exp}")).await,
        StatusCode::FORBIDDEN,
        "tampered expiry"
    );
    let other_stream = ring(K1).sign(&acl_for_stream("live/s2"), in_an_hour);
    assert_eq!(
        status(format!("?hdnts={other_stream}")).await,
        StatusCode::FORBIDDEN,
        "another stream"
    );
    let unknown_kid = ring("k9:first-secret-0123456789").sign(&stream, in_an_hour);
    assert_eq!(
        status(format!("?hdnts={unknown_kid}")).await,
        StatusCode::FORBIDDEN,
        "wrong key id"
    );
    let expired = ring(K1).sign(&stream, unix_now() - 10);
    assert_eq!(
        status(format!("?hdnts={expired}")).await,
        StatusCode::GONE,
        "expired"
    );
    let expired_forged = ring("k1:not-the-right-secret-000").sign(&stream, unix_now() - 10);
    assert_eq!(
        status(format!("?hdnts={expired_forged}")).await,
        StatusCode::FORBIDDEN,
        "a forged token is 403 even when expired"
    );
    let after_refusals = origin_gets(&origin).await;
    assert_eq!(
        fetches_between(before, after_refusals),
        0,
        "refused before any origin work"
    );

    // Good tokens, from the current key and from the rotated-in key, with
    // other query parameters around them: one cached object.
    let r = http
        .get(edge.url(&format!("{SEG}?a=1&hdnts={good}&b=2")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-cache"], "MISS");
    assert_eq!(r.bytes().await.expect("body").as_ref(), body.as_slice());
    let rotated = ring(K2).sign(&stream, in_an_hour + 60);
    let r = http
        .get(edge.url(&format!("{SEG}?hdnts={rotated}")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK, "rotated key");
    assert_eq!(
        r.headers()["x-cache"],
        "HIT",
        "the token is not part of the cache key"
    );
    let after = origin_gets(&origin).await;
    assert_eq!(fetches_between(after_refusals, after), 1);

    // After rotation the old key is retired: its tokens are refused.
    let retired = edge_for(&origin, &["--signing-key", K2]);
    let r = http
        .get(retired.url(&format!("{SEG}?hdnts={good}")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "retired key");
    let r = http
        .get(retired.url(&format!("{SEG}?hdnts={rotated}")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    let m = edge_metrics(&edge).await;
    assert_eq!(
        sample(&m, "hlscdn_edge_requests_total", &[("status", "403")]),
        7.0
    );
    assert_eq!(
        sample(&m, "hlscdn_edge_requests_total", &[("status", "410")]),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_never_sees_tokens_nor_media_queries() {
    let fake_origin = OtherHost::start(b"#EXTM3U\n").await;
    let origin_url = format!("http://{}", fake_origin.addr);
    let edge = start_edge(&["--id", "edge-q", "--origin", &origin_url, "--signing-key", K1]);
    let token = ring(K1).sign(&acl_for_stream("live/s1"), unix_now() + 600);
    let http = client();
    let r = http
        .get(edge.url(&format!("/live/s1/480p/seg-1.ts?x=1&hdnts={token}")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    let r = http
        .get(edge.url(&format!(
            "/live/s1/480p/index.m3u8?_HLS_msn=3&hdnts={token}&_HLS_part=0"
        )))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        fake_origin.seen(),
        [
            "GET /live/s1/480p/seg-1.ts",
            "GET /live/s1/480p/index.m3u8?_HLS_msn=3&_HLS_part=0"
        ]
    );
}
