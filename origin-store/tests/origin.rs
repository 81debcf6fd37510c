//! The origin over real HTTP: one conformance suite run against `memory://`,
//! `file://` and `s3://` (a real S3-protocol server, moto), each in its own
//! `hlscdn-origin` process on loopback.

use test_kit as common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Server, client, raw_status};
use reqwest::StatusCode;

const TOKEN: &str = "test-ingest-token";

/// What every store must do the same.
async fn conformance(origin: &Server) {
    let http = client();
    let seg = origin.url("/live/s1/480p/seg-1.ts");
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();

    // Ingest needs the token; a refused PUT writes nothing.
    let r = http.put(&seg).body(payload.clone()).send().await.expect("put");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = http
        .put(&seg)
        .bearer_auth("wrong-token-x")
        .body(payload.clone())
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        http.get(&seg).send().await.expect("get").status(),
        StatusCode::NOT_FOUND
    );

    // A chunked PUT (no Content-Length), as packagers send.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = payload.chunks(7000).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    assert_eq!(common::put(&seg, TOKEN, body).await, StatusCode::CREATED);

    // GET: bytes, type, caching, validators, CORS.
    let r = http.get(&seg).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "video/mp2t");
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(h["accept-ranges"], "bytes");
    assert!(h.contains_key("last-modified"));
    let etag = h["etag"].to_str().expect("etag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert_eq!(r.bytes().await.expect("body").as_ref(), payload.as_slice());

    // HEAD: same headers, no body.
    let r = http.head(&seg).send().await.expect("head");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], payload.len().to_string().as_str());
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert!(r.bytes().await.expect("body").is_empty());

    // Ranges: first bytes, suffix, open-ended, out of range, several (whole object).
    let range = |spec: &'static str| http.get(&seg).header("range", spec).send();
    let r = range("bytes=0-99").await.expect("range");
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 0-99/200000");
    assert_eq!(r.bytes().await.expect("body").as_ref(), &payload[..100]);
    let r = range("bytes=-500").await.expect("range");
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 199500-199999/200000");
    assert_eq!(r.bytes().await.expect("body").as_ref(), &payload[199_500..]);
    let r = range("bytes=150000-").await.expect("range");
    assert_eq!(r.bytes().await.expect("body").as_ref(), &payload[150_000..]);
    let r = range("bytes=200000-200100").await.expect("range");
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.headers()["content-range"], "bytes */200000");
    let r = range("bytes=0-1,5-6").await.expect("range");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.expect("body").len(), payload.len());

    // Conditional requests.
    let r = http
        .get(&seg)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert!(r.bytes().await.expect("body").is_empty());
    let r = http
        .get(&seg)
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);

    // Playlists: content type, and caching by liveness.
    let live = origin.url("/live/s1/480p/index.m3u8");
    let live_body = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:2.0,\nseg-1.ts\n";
    let vod = origin.url("/vod/v1/index.m3u8");
    let vod_body = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg-1.ts\n#EXT-X-ENDLIST\n";
    for (url, body) in [(&live, live_body), (&vod, vod_body)] {
        assert_eq!(common::put(url, TOKEN, body).await, StatusCode::CREATED);
    }
    let r = http.get(&live).send().await.expect("get");
    assert_eq!(r.headers()["content-type"], "application/vnd.apple.mpegurl");
    assert_eq!(r.headers()["cache-control"], "public, max-age=1");
    assert_eq!(r.text().await.expect("body"), live_body);
    let r = http.get(&vod).send().await.expect("get");
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );

    // The catalog.
    let streams: serde_json::Value = http
        .get(origin.url("/api/v1/streams"))
        .send()
        .await
        .expect("streams")
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = streams["streams"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["live/s1/480p", "vod/v1"]);
    assert_eq!(streams["truncated"], false, "a whole listing says so");

    // Size limit: declared and chunked bodies past it get 413 and write nothing.
    let big = origin.url("/live/s1/480p/big.ts");
    assert_eq!(
        common::put(&big, TOKEN, vec![0u8; 300_000]).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..30).map(|_| Ok(vec![1u8; 10_000])).collect();
    let r = http
        .put(&big)
        .bearer_auth(TOKEN)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;
    // The server may answer 413 before the whole body is sent, or close the stream.
    if let Ok(r) = r {
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    assert_eq!(
        http.get(&big).send().await.expect("get").status(),
        StatusCode::NOT_FOUND
    );

    // Traversal and other path tricks: 400, through a raw socket so no client cleans them up.
    for target in [
        "/../../etc/passwd",
        "/live/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/live/%2E%2E/secret",
        "/live%2f..%2f..%2fetc%2fpasswd",
        "/live%5c..%5csecret",
        "/live//seg.ts",
        "/live/seg%00.ts",
        "/.hidden",
        "http://169.254.169.254/latest/meta-data",
        "//evil.example/x.ts",
    ] {
        for method in ["GET", "PUT"] {
            let request = format!(
                "{method} {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
            );
            assert_eq!(
                raw_status(origin.addr, request.as_bytes()),
                400,
                "{method} {target}"
            );
        }
    }

    // DELETE needs the token too.
    let r = http.delete(&seg).send().await.expect("delete");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(http.get(&seg).send().await.expect("get").status(), StatusCode::OK);
    let r = http.delete(&seg).bearer_auth(TOKEN).send().await.expect("delete");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        http.get(&seg).send().await.expect("get").status(),
        StatusCode::NOT_FOUND
    );

    // Health, readiness, metrics.
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            http.get(origin.url(path)).send().await.expect("get").status(),
            StatusCode::OK
        );
    }
    let metrics = common::text(origin.url("/metrics")).await;
    for name in [
        "hlscdn_origin_requests_total{method=\"PUT\",status=\"401\"}",
        "hlscdn_origin_bytes_out_total",
        "hlscdn_origin_bytes_in_total",
        "hlscdn_origin_store_latency_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}:\n{metrics}");
    }
}

fn origin_args(store: &str) -> Vec<&str> {
    vec![
        "--store",
        store,
        "--ingest-token",
        TOKEN,
        "--max-ingest-bytes",
        "250000",
    ]
}

#[tokio::test]
async fn memory_store() {
    let origin = Server::origin(&origin_args("memory://"), &[]);
    conformance(&origin).await;
}

#[tokio::test]
async fn file_store_and_nothing_outside_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    let url = url::Url::from_directory_path(&root).expect("url").to_string();
    let origin = Server::origin(&origin_args(&url), &[]);
    conformance(&origin).await;

    // Objects land under the root, and nothing lands beside it.
    assert_eq!(
        common::put(origin.url("/a/b.ts"), TOKEN, "x").await,
        StatusCode::CREATED
    );
    assert!(root.join("a/b.ts").is_file());
    std::fs::write(dir.path().join("secret.txt"), "secret").expect("write");
    for target in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/a/%2e%2e/%2e%2e/secret.txt",
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(raw_status(origin.addr, request.as_bytes()), 400, "{target}");
    }
    let outside: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    assert_eq!(outside.len(), 2, "only store/ and secret.txt: {outside:?}");
    assert_eq!(origin.terminate().code(), Some(0), "SIGTERM exits cleanly");
}

/// A moto S3 server on a free loopback port, killed when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m moto.server (run scripts/deps.sh to install moto)");
        let endpoint = format!("http://127.0.0.1:{port}");
        let moto = Moto { child, endpoint };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto did not start listening within 20 s (is moto[server] installed? run scripts/deps.sh)");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn s3_store_against_a_real_s3_server() {
    let moto = Moto::start();
    // moto's server accepts any credentials; the bucket must exist first.
    let r = client()
        .put(format!("{}/media", moto.endpoint))
        .send()
        .await
        .expect("create bucket");
    assert!(r.status().is_success(), "create bucket: {}", r.status());

    let envs = [
        ("AWS_ENDPOINT", moto.endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    let origin = Server::origin(&origin_args("s3://media/prefix"), &envs);
    conformance(&origin).await;

    // The objects really are in the bucket, under the prefix.
    assert_eq!(
        common::put(origin.url("/x/y.ts"), TOKEN, "in-s3").await,
        StatusCode::CREATED
    );
    let listing = common::text(format!("{}/media?list-type=2&prefix=prefix/", moto.endpoint)).await;
    assert!(listing.contains("<Key>prefix/x/y.ts</Key>"), "{listing}");
}
