//! What the unit tests of the fleet API share: a fleet without I/O of its
//! own (no seeds unless given), ads, and requests answered in memory.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use router_api::fleet::{Ad, Capacity, EdgeState, Instance, Load, RouterInfo};
use tower::ServiceExt as _;

use super::{Fleet, FleetSettings, routes};

/// The fleet token of test fleets.
pub(super) const FLEET_TOKEN: &str = "fleet-token-for-unit-tests-0123";

/// A router with `seeds`, not started.
pub(super) fn fleet(seeds: &[String]) -> Arc<Fleet> {
    Fleet::new(FleetSettings {
        me: RouterInfo {
            id: "me".into(),
            url: "http://127.0.0.1:1".into(),
        },
        seeds: seeds.to_vec(),
        fleet_token: FLEET_TOKEN.into(),
        static_edges: Vec::new(),
        policy: Default::default(),
        hold_down: Duration::from_secs(3),
        discovery_interval: Duration::from_secs(2),
        bootstrap_timeout: Duration::from_secs(5),
        scale: Default::default(),
        tls: Default::default(),
        edge_certificates: false,
    })
    .expect("fleet")
}

/// The URL of a port nothing listens on: connections are refused.
pub(super) fn unreachable_seed() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    format!("http://{address}")
}

/// A valid ad of edge `edge`, generation `generation` of its one instance.
pub(super) fn ad(edge: &str, generation: u64) -> Ad {
    Ad {
        edge_id: edge.into(),
        public_url: format!("http://{edge}.example:8080"),
        group: None,
        state: EdgeState::Ready,
        capacity: Capacity {
            egress_bps: 1_000_000_000,
            connections: 1000,
        },
        load: Load::default(),
        hot_streams: Vec::new(),
        ttl_ms: 600,
        instance: Instance {
            started_unix_ms: 1,
            id: format!("{edge}-run"),
        },
        generation,
    }
}

/// A `POST` of `body` to `path`, with `token` as its bearer token.
pub(super) fn post(path: &str, token: Option<&str>, body: Vec<u8>) -> Request {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::from(body)).expect("request")
}

/// The fleet routes' answer to `request`: its status and body.
pub(super) async fn answer(fleet: &Arc<Fleet>, request: Request) -> (StatusCode, String) {
    let response = routes(fleet.clone()).oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}
