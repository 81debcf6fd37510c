//! The fleet as a router shows it, for the router's integration tests (each
//! test binary uses a part of it).

#![allow(dead_code)]

use router_api::fleet::EdgesView;

use crate::common::{Server, client};

/// `GET /api/v1/edges` of `router`.
pub async fn edges(router: &Server) -> EdgesView {
    client()
        .get(router.url("/api/v1/edges"))
        .send()
        .await
        .expect("edges")
        .json()
        .await
        .expect("json")
}

/// (fresh, eligible) of `edge` on `router`; `None` while it does not know it.
pub async fn edge_state(router: &Server, edge: &str) -> Option<(bool, bool)> {
    edges(router)
        .await
        .edges
        .iter()
        .find(|e| e.id == edge)
        .map(|e| (e.fresh, e.eligible))
}
