//! The edge's connection limit, with a real `hlscdn-edge` process and real
//! connections on loopback: `--max-connections` connections are served and
//! counted in its ads, one more is closed at once unanswered and counted on
//! `/metrics`, and a closed connection makes room again.

use test_kit as common;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use router_api::fleet::Ad;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::{FLEET_TOKEN, FakeRouter, edge_metrics, sample, start_edge};

const LIMIT: u64 = 3;

/// Waits for an ad of a generation after `after` that `pred` accepts.
async fn ad_after(router: &FakeRouter, after: u64, what: &str, pred: impl Fn(&Ad) -> bool) -> Ad {
    router
        .wait_for(Duration::from_secs(5), |ad| ad.generation > after && pred(ad))
        .await
        .unwrap_or_else(|| panic!("no ad: {what}"))
        .1
}

/// A connection that asked for `/healthz` and got 200, kept open (idle, keep-alive).
async fn served(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: edge\r\n\r\n")
        .await
        .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(1))), "answered: {read:?}");
        head.push(byte[0]);
    }
    assert_eq!(head, b"HTTP/1.1 200 OK\r\n");
    stream
}

/// A connection past the limit: the kernel accepts it, the edge closes it
/// at once without reading or answering anything.
async fn refused(addr: SocketAddr) {
    let mut stream = TcpStream::connect(addr).await.expect("the kernel accepts");
    let closed = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut [0u8; 64])).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))),
        "closed at once, unanswered: {closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_are_closed_and_the_count_is_advertised() {
    let router = FakeRouter::start(None).await;
    let router_url = router.url();
    let limit = LIMIT.to_string();
    let edge = start_edge(&[
        "--id",
        "edge-full",
        "--origin",
        "http://127.0.0.1:9",
        "--router",
        &router_url,
        "--fleet-token",
        FLEET_TOKEN,
        "--heartbeat-interval",
        "100ms",
        "--max-connections",
        &limit,
    ]);

    let mut held = Vec::new();
    for _ in 0..LIMIT {
        held.push(served(edge.addr).await);
    }
    let ad = ad_after(&router, 0, "counting the open connections", |ad| {
        ad.load.connections == LIMIT
    })
    .await;
    assert_eq!(ad.capacity.connections, LIMIT);

    const EXTRA: u64 = 4;
    for _ in 0..EXTRA {
        refused(edge.addr).await;
    }
    // Those that were served are still open and still served.
    let mut first = held.remove(0);
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    first.read_to_end(&mut answer).await.expect("read");
    // The rest of the first answer, then the second.
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(answer.matches("HTTP/1.1 200 OK\r\n").count(), 1, "{answer}");
    drop(first);

    // One closed: room for one more, once the edge has seen the close.
    let ad = ad_after(&router, ad.generation, "one connection less", |ad| {
        ad.load.connections == LIMIT - 1
    })
    .await;
    let metrics = edge_metrics(&edge).await;
    assert_eq!(
        sample(&metrics, "hlscdn_server_connections_refused_total", &[]),
        EXTRA as f64,
        "every refusal counted"
    );
    assert_eq!(
        sample(&metrics, "hlscdn_edge_capacity_connections", &[]),
        LIMIT as f64
    );
    drop(held);
    ad_after(&router, ad.generation, "no connection left", |ad| {
        ad.load.connections == 0
    })
    .await;
}
