//! What routers say to each other: a stored ad (or a lost link) forwarded
//! once to every other router, except the one it came from
//! ([`FORWARDED_BY`]); discovery, a round every `discovery_interval` that asks
//! each known router `GET /api/v1/routers` and announces this one
//! (`POST /api/v1/routers`) where it is not listed; and bootstrap, the copy
//! of a peer's fleet view (`GET /api/v1/edges`) before the router reports
//! ready. Who is known, and who is dropped, is [`crate::peers::Peers`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use router_api::fleet::{Ad, EdgesView, RouterInfo, RoutersView};

use super::ingest::read_body;
use super::{ADS_PATH, FORWARDED_BY, Fleet, lock};
use crate::error::Error;
use crate::metrics;
use crate::peers::Peers;

/// Wait between bootstrap rounds when no seed answered.
const BOOTSTRAP_RETRY: Duration = Duration::from_millis(250);

/// Where to forward what came from the router with id `from` (none: this
/// router's own news): every forward target but that router's URL.
fn targets_except(peers: &Peers, from: Option<&str>) -> Vec<String> {
    let from_url = from.and_then(|id| {
        peers
            .view()
            .routers
            .into_iter()
            .find(|r| r.id == id)
            .map(|r| r.url)
    });
    peers
        .forward_targets()
        .into_iter()
        .filter(|t| Some(t) != from_url.as_ref())
        .collect()
}

/// The valid ads of a peer's fleet view, each with its age there.
fn copyable(view: EdgesView) -> impl Iterator<Item = (Ad, Duration)> {
    view.edges.into_iter().filter_map(|edge| {
        let ad = edge.ad.filter(|ad| ad.validate().is_ok())?;
        Some((ad, Duration::from_millis(edge.ad_age_ms)))
    })
}

/// Whether a router's announcement names an http(s) base URL and a usable id.
fn valid_announcement(info: &RouterInfo) -> bool {
    let url = url::Url::parse(&info.url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.query().is_none() && u.host().is_some());
    url && !info.id.is_empty() && info.id.len() <= 64
}

impl Fleet {
    /// Bootstrap, then a discovery round every `discovery_interval`.
    pub(super) async fn gossip(self: Arc<Self>) {
        self.bootstrap().await;
        let mut discovery = tokio::time::interval(self.settings.discovery_interval);
        discovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            discovery.tick().await;
            self.discover().await;
        }
    }

    /// Copies the fleet view from the first seed that answers; then ready.
    async fn bootstrap(&self) {
        let started = tokio::time::Instant::now();
        let seeds: Vec<String> = lock(&self.peers).to_probe();
        if seeds.is_empty() {
            self.ready.store(true, Ordering::Relaxed);
            return;
        }
        while started.elapsed() < self.settings.bootstrap_timeout {
            for seed in &seeds {
                match self.fetch_edges(seed).await {
                    Ok(view) => {
                        let mut copied = 0;
                        for (ad, age) in copyable(view) {
                            self.apply(ad, age);
                            copied += 1;
                        }
                        tracing::info!(peer = %seed, edges = copied, "fleet view copied from a peer");
                        self.ready.store(true, Ordering::Relaxed);
                        return;
                    }
                    Err(error) => tracing::debug!(peer = %seed, %error, "bootstrap peer did not answer"),
                }
            }
            tokio::time::sleep(BOOTSTRAP_RETRY).await;
        }
        tracing::warn!("no peer answered within the bootstrap timeout: starting with an empty fleet view");
        self.ready.store(true, Ordering::Relaxed);
    }

    async fn fetch_edges(&self, peer: &str) -> reqwest::Result<EdgesView> {
        self.http
            .get(format!("{peer}/api/v1/edges"))
            .bearer_auth(self.settings.fleet_token.expose())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
    }

    async fn fetch_routers(&self, peer: &str) -> reqwest::Result<RoutersView> {
        self.http
            .get(format!("{peer}/api/v1/routers"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
    }

    /// One discovery round: ask every peer whom it knows, announce ourselves.
    async fn discover(&self) {
        let targets = lock(&self.peers).to_probe();
        let probes = targets.into_iter().map(|peer| async move {
            let view = self.fetch_routers(&peer).await.ok();
            (peer, view)
        });
        for (peer, view) in futures::future::join_all(probes).await {
            let Some(view) = view else {
                if lock(&self.peers).failed(&peer) {
                    tracing::info!(peer = %peer, "router dropped after failing discovery rounds");
                    metrics::peer_dropped();
                }
                continue;
            };
            let learned = lock(&self.peers).answered(&peer, &view);
            for url in &learned.new {
                tracing::info!(peer = %url, via = %peer, "router learned");
            }
            if learned.announce {
                let announce = self
                    .http
                    .post(format!("{peer}/api/v1/routers"))
                    .bearer_auth(self.settings.fleet_token.expose())
                    .json(self.me())
                    .send()
                    .await;
                if let Err(error) = announce {
                    tracing::debug!(peer = %peer, %error, "announcing to a router failed");
                }
            }
        }
    }

    /// Posts `body` to `path` on every other router, except the one it came
    /// from: newly stored ads, and link losses this router saw.
    pub(super) fn forward(self: &Arc<Self>, path: &'static str, body: Bytes, from: Option<String>) {
        let targets = targets_except(&lock(&self.peers), from.as_deref());
        // Also called from a drop guard, which may run as the runtime stops.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for target in targets {
            let fleet = self.clone();
            let body = body.clone();
            runtime.spawn(async move {
                let sent = fleet
                    .http
                    .post(format!("{target}{path}"))
                    .bearer_auth(fleet.settings.fleet_token.expose())
                    .header(FORWARDED_BY, &fleet.settings.me.id)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status);
                if path == ADS_PATH {
                    metrics::ad_forwarded(sent.is_ok());
                }
                if let Err(error) = sent {
                    tracing::debug!(peer = %target, path, %error, "forwarding failed");
                }
            });
        }
    }
}

pub(super) async fn list_routers(State(fleet): State<Arc<Fleet>>) -> Response {
    axum::Json(lock(&fleet.peers).view()).into_response()
}

pub(super) async fn announce(State(fleet): State<Arc<Fleet>>, request: Request) -> Result<StatusCode, Error> {
    if !fleet.authorized(request.headers()) {
        return Err(Error::Unauthorized);
    }
    let body = read_body(request).await?;
    let Ok(info) = serde_json::from_slice::<RouterInfo>(&body) else {
        return Err(Error::BadFleetCall("expected {\"id\": ..., \"url\": ...}"));
    };
    if !valid_announcement(&info) {
        return Err(Error::BadFleetCall(
            "`url` must be an http(s) base URL and `id` 1 to 64 bytes",
        ));
    }
    if info.id != fleet.me().id && lock(&fleet.peers).add(&info.url) {
        tracing::info!(peer = %info.url, "router announced itself");
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use router_api::fleet::{Capacity, EdgeState, EdgeView, Load};

    use super::*;
    use crate::fleet_api::tests::{FLEET_TOKEN, ad, answer, fleet, post, unreachable_seed};

    fn info(id: &str, url: &str) -> RouterInfo {
        RouterInfo {
            id: id.into(),
            url: url.into(),
        }
    }

    #[test]
    fn news_goes_to_every_peer_but_its_sender() {
        let mut peers = Peers::new(info("me", "http://r0"), &["http://r1".into(), "http://r2".into()]);
        let view = RoutersView {
            this: info("one", "http://r1"),
            routers: vec![info("one", "http://r1")],
        };
        peers.answered("http://r1", &view);
        assert_eq!(targets_except(&peers, None), ["http://r1", "http://r2"]);
        assert_eq!(targets_except(&peers, Some("one")), ["http://r2"]);
        assert_eq!(
            targets_except(&peers, Some("unknown")),
            ["http://r1", "http://r2"],
            "a sender not known by id is no reason to skip anyone"
        );
    }

    #[test]
    fn only_valid_ads_are_copied_with_their_age() {
        let edge = |ad: Option<Ad>, age: u64| EdgeView {
            id: "e".into(),
            url: "http://e".into(),
            group: None,
            state: EdgeState::Ready,
            fresh: true,
            eligible: true,
            ad_age_ms: age,
            capacity: Capacity {
                egress_bps: 1,
                connections: 1,
            },
            load: Load::default(),
            hot_streams: Vec::new(),
            utilization: 0.0,
            assigned_bps: 0,
            viewers_assigned: 0,
            configured: ad.is_none(),
            ad,
        };
        let mut invalid = ad("edge-2", 1);
        invalid.ttl_ms = 0;
        let view = EdgesView {
            router: "peer".into(),
            edges: vec![
                edge(Some(ad("edge-1", 3)), 1500),
                edge(None, 0),
                edge(Some(invalid), 0),
            ],
        };
        let copied: Vec<(Ad, Duration)> = copyable(view).collect();
        assert_eq!(copied, [(ad("edge-1", 3), Duration::from_millis(1500))]);
    }

    #[test]
    fn announcements_name_a_base_url_and_an_id() {
        assert!(valid_announcement(&info("r", "http://127.0.0.1:8080")));
        assert!(valid_announcement(&info("r", "https://router.example/base")));
        for (id, url) in [
            ("", "http://a"),
            ("r", "ftp://a"),
            ("r", "http://a/?q=1"),
            ("r", "not a url"),
            (&"x".repeat(65), "http://a"),
        ] {
            assert!(!valid_announcement(&info(id, url)), "{id} {url}");
        }
    }

    #[tokio::test]
    async fn an_announced_router_is_listed_once_it_answers() {
        let fleet = fleet(&[]);
        let body = serde_json::to_vec(&info("r2", "http://127.0.0.1:9")).expect("json");
        let (status, _) = answer(&fleet, post("/api/v1/routers", None, body.clone())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = answer(&fleet, post("/api/v1/routers", Some(FLEET_TOKEN), body)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(lock(&fleet.peers).to_probe(), ["http://127.0.0.1:9"]);
        let bad = serde_json::to_vec(&info("r3", "ftp://x")).expect("json");
        let (status, _) = answer(&fleet, post("/api/v1/routers", Some(FLEET_TOKEN), bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test(start_paused = true)]
    async fn without_an_answering_seed_the_router_is_ready_after_the_bootstrap_timeout() {
        let fleet = fleet(&[unreachable_seed()]);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        fleet.start(stopped);
        let timeout = fleet.settings.bootstrap_timeout;
        tokio::time::sleep(timeout - BOOTSTRAP_RETRY).await;
        assert!(!fleet.is_ready(), "still waiting for a peer");
        // The last round may have begun just before the timeout.
        tokio::time::sleep(super::super::PEER_TIMEOUT + 2 * BOOTSTRAP_RETRY).await;
        assert!(fleet.is_ready(), "ready with an empty view");
        let _ = stop.send(true);
    }
}
