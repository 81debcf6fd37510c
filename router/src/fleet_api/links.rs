//! Edge links: `POST /api/v1/link?edge=ID&instance=ID`, a request whose
//! body does not end while the edge process lives. When it ends, however it
//! ends (hyper drops the handler when the connection dies), and it was the
//! instance's last link, the edge is stale at once and the peers are told
//! (`POST /api/v1/links/lost`). A peer's notice marks the edge stale here
//! too, unless this router holds its own link from that instance; notices
//! are not forwarded further. The state is [`crate::fleet::FleetView`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use router_api::fleet::{LINK_LOST_PATH, Link};

use super::ingest::read_body;
use super::{Fleet, lock, now};
use crate::error::Error;
use crate::metrics;

impl Fleet {
    /// An edge linked itself to this router.
    fn link_opened(&self, link: &Link) {
        let mut view = lock(&self.view);
        let ended_a_loss = view.link_opened(&link.edge, &link.instance, now());
        metrics::links_open(view.open_links());
        if ended_a_loss {
            tracing::info!(edge = %link.edge, "edge linked again; held down until its next ad and the hold-down");
            self.rebuild(&view, &[]);
        }
    }

    /// An edge's link ended: if it was its last, the edge process is gone,
    /// and the peers are told.
    fn link_closed(self: &Arc<Self>, link: &Link) {
        let mut view = lock(&self.view);
        let lost = view.link_closed(&link.edge, &link.instance, now());
        metrics::links_open(view.open_links());
        if lost {
            tracing::warn!(edge = %link.edge, "edge link broke: stale now");
            metrics::link_lost();
            self.rebuild(&view, &[]);
            let notice = Link {
                generation: view.generation_of(&link.edge, &link.instance),
                ..link.clone()
            };
            drop(view);
            if let Ok(body) = serde_json::to_vec(&notice) {
                self.forward(LINK_LOST_PATH, Bytes::from(body), None);
            }
        }
    }

    /// A peer saw an edge's last link break.
    fn lost_elsewhere(&self, link: &Link) {
        let mut view = lock(&self.view);
        if view.lost_elsewhere(&link.edge, &link.instance, link.generation, now()) {
            tracing::warn!(edge = %link.edge, "a peer saw the edge's link break: stale now");
            self.rebuild(&view, &[]);
        }
    }
}

/// Marks the link closed when the request ends, however it ends: hyper drops
/// the handler when the edge's connection dies.
struct LinkGuard {
    fleet: Arc<Fleet>,
    link: Link,
}

impl LinkGuard {
    fn open(fleet: Arc<Fleet>, link: Link) -> Self {
        fleet.link_opened(&link);
        LinkGuard { fleet, link }
    }
}

impl Drop for LinkGuard {
    fn drop(&mut self) {
        self.fleet.link_closed(&self.link);
    }
}

// Reads and drops the keep-alive bytes until the edge's connection ends or
// the router stops; no answer is sent before then.
pub(super) async fn link(
    State(fleet): State<Arc<Fleet>>,
    query: Result<Query<Link>, QueryRejection>,
    request: Request,
) -> Result<Response, Error> {
    let Some(caller) = fleet.caller(request.headers()) else {
        return Err(Error::Unauthorized);
    };
    let link = match query {
        Ok(Query(link)) if link.is_valid() && caller.speaks_for(&link.edge) => link,
        Ok(Query(link)) if link.is_valid() => {
            return Err(Error::Forbidden("an edge's credential covers its own link only"));
        }
        _ => {
            return Err(Error::BadFleetCall(
                "expected ?edge=ID&instance=ID, each 1 to 64 bytes of A-Z a-z 0-9 . _ -",
            ));
        }
    };
    fleet.certified(&caller, request.extensions())?;
    let _guard = LinkGuard::open(fleet.clone(), link);
    let stopped = fleet.stopped();
    tokio::pin!(stopped);
    let mut body = request.into_body().into_data_stream();
    loop {
        tokio::select! {
            chunk = futures::StreamExt::next(&mut body) => match chunk {
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Ok(StatusCode::NO_CONTENT.into_response()),
            },
            () = &mut stopped => return Err(Error::ShuttingDown),
        }
    }
}

pub(super) async fn link_lost(
    State(fleet): State<Arc<Fleet>>,
    request: Request,
) -> Result<StatusCode, Error> {
    if !fleet.authorized(request.headers()) {
        return Err(Error::Unauthorized);
    }
    let body = read_body(request).await?;
    match serde_json::from_slice::<Link>(&body) {
        Ok(link) if link.is_valid() => {
            fleet.lost_elsewhere(&link);
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(Error::BadFleetCall(
            "expected {\"edge\": ID, \"instance\": ID}, each 1 to 64 bytes of A-Z a-z 0-9 . _ -",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::fleet_api::tests::{FLEET_TOKEN, ad, answer, fleet, post};

    fn link_of(edge: &str) -> Link {
        Link {
            edge: edge.into(),
            instance: ad(edge, 1).instance.id,
            generation: None,
        }
    }

    fn fresh(fleet: &Fleet, edge: &str) -> Option<bool> {
        let view = fleet.edges_view();
        view.edges.iter().find(|e| e.id == edge).map(|e| e.fresh)
    }

    #[tokio::test(start_paused = true)]
    async fn the_last_link_ending_makes_the_edge_stale_at_once() {
        let fleet = fleet(&[]);
        fleet.apply(ad("edge-1", 1), Duration::ZERO);
        let first = LinkGuard::open(fleet.clone(), link_of("edge-1"));
        let second = LinkGuard::open(fleet.clone(), link_of("edge-1"));
        drop(first);
        assert_eq!(fresh(&fleet, "edge-1"), Some(true), "another link is open");
        drop(second);
        assert_eq!(fresh(&fleet, "edge-1"), Some(false), "its last link broke");
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_s_notice_counts_unless_a_link_is_held_here() {
        let fleet = fleet(&[]);
        fleet.apply(ad("edge-1", 1), Duration::ZERO);
        fleet.apply(ad("edge-2", 1), Duration::ZERO);
        let _held = LinkGuard::open(fleet.clone(), link_of("edge-1"));
        for edge in ["edge-1", "edge-2"] {
            let notice = serde_json::to_vec(&link_of(edge)).expect("json");
            let (status, _) = answer(&fleet, post(LINK_LOST_PATH, Some(FLEET_TOKEN), notice)).await;
            assert_eq!(status, StatusCode::NO_CONTENT);
        }
        assert_eq!(fresh(&fleet, "edge-1"), Some(true), "its own link is trusted");
        assert_eq!(fresh(&fleet, "edge-2"), Some(false));

        let credential = router_api::fleet::edge_credential(FLEET_TOKEN, "edge-2");
        let notice = serde_json::to_vec(&link_of("edge-2")).expect("json");
        let (status, _) = answer(&fleet, post(LINK_LOST_PATH, Some(&credential), notice)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "routers only");
        let (status, _) = answer(&fleet, post(LINK_LOST_PATH, Some(FLEET_TOKEN), b"{}".to_vec())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn a_link_for_another_edge_is_refused() {
        let fleet = fleet(&[]);
        let credential = router_api::fleet::edge_credential(FLEET_TOKEN, "edge-2");
        let url = link_of("edge-1").url("");
        let (status, _) = answer(&fleet, post(&url, Some(&credential), Vec::new())).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = answer(
            &fleet,
            post("/api/v1/link?edge=a/b", Some(FLEET_TOKEN), Vec::new()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(lock(&fleet.view).open_links(), 0);
    }
}
