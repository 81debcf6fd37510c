//! Helpers for the edge's end-to-end tests: an `hlscdn-edge` process whose
//! pid the test can signal, in-process stand-ins for routers and other
//! hosts, and readers of Prometheus counters.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use router_api::fleet::Ad;
use router_api::prometheus;

use super::common;

pub const FLEET_TOKEN: &str = "test-fleet-token";
pub const INGEST_TOKEN: &str = "test-ingest-token";

/// An `hlscdn-edge` process on `127.0.0.1:0`, killed when dropped.
pub type EdgeProc = common::Server;

/// Starts the edge with `args` and waits for its listening line.
pub fn start_edge(args: &[&str]) -> EdgeProc {
    let mut all = vec!["--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    common::Server::start(env!("CARGO_BIN_EXE_hlscdn-edge"), &all, &[])
}

/// An origin on `memory://` that takes PUTs with [`INGEST_TOKEN`].
pub fn origin() -> common::Server {
    common::Server::origin(&["--store", "memory://", "--ingest-token", INGEST_TOKEN], &[])
}

/// Stores `body` at `path` on the origin.
pub async fn publish(origin: &common::Server, path: &str, body: Vec<u8>) {
    let r = common::client()
        .put(origin.url(path))
        .bearer_auth(INGEST_TOKEN)
        .body(body)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), reqwest::StatusCode::CREATED, "publishing {path}");
}

/// Deterministic bytes of a given length, different per `seed`.
pub fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| ((i % 251) as u8).wrapping_add(seed)).collect()
}

/// The sum of the Prometheus samples of `name` in a `/metrics` text with
/// every one of `labels`, 0 if there is none.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    prometheus::sum(&prometheus::parse(text), name, labels)
}

/// GETs with status 200 the origin has answered, by its own `/metrics`.
/// Each call is itself one such GET, counted after it is answered.
pub async fn origin_gets(origin: &common::Server) -> u64 {
    let text = common::client()
        .get(origin.url("/metrics"))
        .send()
        .await
        .expect("origin metrics")
        .text()
        .await
        .expect("text");
    sample(
        &text,
        "hlscdn_origin_requests_total",
        &[("method", "GET"), ("status", "200")],
    ) as u64
}

/// Object fetches by the edge between two [`origin_gets`] readings.
pub fn fetches_between(before: u64, after: u64) -> u64 {
    after - before - 1
}

/// The edge's `/metrics` text.
pub async fn edge_metrics(edge: &EdgeProc) -> String {
    common::client()
        .get(edge.url("/metrics"))
        .send()
        .await
        .expect("edge metrics")
        .text()
        .await
        .expect("text")
}

/// Every ad a [`FakeRouter`] received, with the time it arrived.
pub type Received = Arc<Mutex<Vec<(Instant, Ad)>>>;

/// A router stand-in: records ads posted with the edge's own credential, answers
/// `GET /api/v1/routers` with a given body (404 without one).
pub struct FakeRouter {
    pub addr: SocketAddr,
    pub ads: Received,
    pub refused: Arc<Mutex<u32>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeRouter {
    pub async fn start(routers: Option<serde_json::Value>) -> FakeRouter {
        #[derive(Clone)]
        struct S {
            ads: Received,
            refused: Arc<Mutex<u32>>,
            routers: Option<serde_json::Value>,
        }
        async fn ad(State(s): State<S>, headers: HeaderMap, body: String) -> Response {
            let bearer = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default()
                .to_owned();
            let Ok(ad) = serde_json::from_str::<Ad>(&body) else {
                *s.refused.lock().expect("lock") += 1;
                return StatusCode::BAD_REQUEST.into_response();
            };
            // As a router does: the edge's own credential, for its own ads
            // (the edge never sends the fleet token itself).
            if router_api::fleet::edge_of_credential(FLEET_TOKEN, &bearer) != Some(ad.edge_id.as_str()) {
                *s.refused.lock().expect("lock") += 1;
                return StatusCode::UNAUTHORIZED.into_response();
            }
            if ad.validate().is_err() {
                *s.refused.lock().expect("lock") += 1;
                return StatusCode::BAD_REQUEST.into_response();
            }
            s.ads.lock().expect("lock").push((Instant::now(), ad));
            StatusCode::NO_CONTENT.into_response()
        }
        async fn list(State(s): State<S>) -> Response {
            match s.routers {
                Some(body) => axum::Json(body).into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
        let state = S {
            ads: Arc::default(),
            refused: Arc::default(),
            routers,
        };
        let app = Router::new()
            .route("/api/v1/ads", post(ad))
            .route("/api/v1/routers", get(list))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeRouter {
            addr,
            ads: state.ads,
            refused: state.refused,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A copy of the ads so far.
    pub fn ads(&self) -> Vec<(Instant, Ad)> {
        self.ads.lock().expect("lock").clone()
    }

    /// Waits (at most `limit`) for an ad that `pred` accepts; returns it and its arrival time.
    pub async fn wait_for(&self, limit: Duration, pred: impl Fn(&Ad) -> bool) -> Option<(Instant, Ad)> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(found) = self.ads().into_iter().find(|(_, ad)| pred(ad)) {
                return Some(found);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        None
    }
}

impl Drop for FakeRouter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Any other host: records every request it gets.
pub struct OtherHost {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl OtherHost {
    /// Answers every request with `body` (200) and records its method and target.
    pub async fn start(body: &'static [u8]) -> OtherHost {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = seen.clone();
        let app = Router::new().fallback(move |request: Request| {
            let record = record.clone();
            async move {
                record
                    .lock()
                    .expect("lock")
                    .push(format!("{} {}", request.method(), request.uri()));
                body
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        OtherHost { addr, seen, task }
    }

    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for OtherHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// GETs `path` from `addr` on each of `n` connections opened first, so that
/// all the requests are in flight together; returns each status and body.
pub async fn concurrent_gets(addr: SocketAddr, path: &str, n: usize) -> Vec<(u16, Vec<u8>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connects = (0..n).map(|_| tokio::net::TcpStream::connect(addr));
    let streams: Vec<tokio::net::TcpStream> = futures::future::join_all(connects)
        .await
        .into_iter()
        .map(|s| s.expect("connect"))
        .collect();
    let request = format!("GET {path} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n");
    let exchanges = streams.into_iter().map(|mut stream| {
        let request = request.clone();
        async move {
            stream.write_all(request.as_bytes()).await.expect("write");
            let mut raw = Vec::new();
            tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw))
                .await
                .expect("answered in time")
                .expect("read");
            let split = raw
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("end of head");
            let head = String::from_utf8_lossy(&raw[..split]).to_string();
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("status");
            let body = raw[split + 4..].to_vec();
            let declared = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok());
            assert_eq!(declared, Some(body.len()), "body length as declared");
            (status, body)
        }
    });
    futures::future::join_all(exchanges).await
}
