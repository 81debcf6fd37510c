//! The fleet protocol's I/O (see `docs/FLEET.md`). The decisions live in
//! [`crate::fleet`], [`crate::peers`], [`crate::scale`] and
//! [`crate::select`]; this module moves bytes and keeps the selector current.
//!
//! # Layout
//!
//! - this file: the shared state ([`Fleet`], [`Current`]), who a caller is
//!   (the fleet token or an edge's credential), the routes, and the
//!   background loops.
//! - `ingest`: ads in (`POST /api/v1/ads`), and the bounded body reader of
//!   every fleet `POST`.
//! - `links`: edge links (`POST /api/v1/link`) and the lost-link notices
//!   routers send each other (`POST /api/v1/links/lost`).
//! - `gossip`: forwarding to the other routers, discovery
//!   (`GET`/`POST /api/v1/routers`), bootstrap from a peer.
//! - `views`: `GET /api/v1/edges`, `/api/v1/scale`, server-sent events
//!   (`GET /api/v1/events`), the explain query, and housekeeping (flips,
//!   gauges, the scaler).
//!
//! Every refusal is a [`crate::error::Error`], answered by its one mapping.
//! Time is read from tokio's clock (`now()`): the system's, except in tests
//! under paused time.

mod gossip;
mod ingest;
mod links;
mod views;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use router_api::fleet::{Ad, LINK_LOST_PATH, LINK_PATH, RouterInfo};
use runtime::secret::Secret;
use selection::snapshot::{EdgeSnapshot, FleetSnapshot};
use tokio::sync::{broadcast, watch};

use crate::error::Error;
use crate::fleet::{Applied, FleetView};
use crate::peers::Peers;
use crate::scale::{ScalePolicy, Scaler};
use crate::select::{Choice, Policy, Request as Pick, Selector};

pub use views::ExplainQuery;

/// Largest ad accepted, in bytes (413 past it).
pub const MAX_AD_BYTES: usize = 64 * 1024;
/// Where ads are posted.
const ADS_PATH: &str = "/api/v1/ads";
/// Header naming the router that forwarded an ad.
pub const FORWARDED_BY: &str = "x-hlscdn-forwarded-by";
/// Timeout of router-to-router calls.
const PEER_TIMEOUT: Duration = Duration::from_secs(2);
/// A stale edge is forgotten after this long.
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// Now, by tokio's clock: the system's, except under paused time in tests.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The selector and the per-request facts that go with it.
#[derive(Debug)]
pub struct Current {
    /// The selector over the current snapshot.
    pub selector: Selector,
    /// Bits per second this router assigned to each edge (selector order) since its newest ad.
    pub assigned_bps: Vec<AtomicU64>,
    /// Viewers this router placed on each edge since it started.
    pub viewers: Vec<AtomicU64>,
}

impl Current {
    /// What this router assigned to each edge since its newest ad, now.
    pub fn assigned(&self) -> Vec<u64> {
        self.assigned_bps
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect()
    }

    /// The edge `request` goes to now. Counts nothing: a viewer is counted
    /// once, when its session's first media playlist is asked for
    /// ([`Current::count`]), so that playlist fetches alone cannot forge load.
    pub fn pick(&self, request: &Pick<'_>, now: Instant) -> Choice {
        self.selector.pick(request, now, &self.assigned())
    }

    /// Counts a viewer placed on edge `index` at `bandwidth_bps`, until
    /// that edge's next ad (whose load then includes it).
    pub fn count(&self, index: usize, bandwidth_bps: u64) {
        if let Some(counter) = self.assigned_bps.get(index) {
            counter.fetch_add(bandwidth_bps, Ordering::Relaxed);
        }
        if let Some(counter) = self.viewers.get(index) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The (assigned bits/s, viewers) counters of the edge `id`; zeros for
    /// an edge the selector does not hold.
    fn counters_of(&self, id: &str) -> (u64, u64) {
        self.selector.index_of(id).map_or((0, 0), |i| {
            let load = |v: &Vec<AtomicU64>| v.get(i).map_or(0, |a| a.load(Ordering::Relaxed));
            (load(&self.assigned_bps), load(&self.viewers))
        })
    }
}

/// Fleet settings.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// This router's id and URL.
    pub me: RouterInfo,
    /// Seed routers.
    pub seeds: Vec<String>,
    /// The fleet secret.
    pub fleet_token: Secret,
    /// Configured edges (always fresh).
    pub static_edges: Vec<EdgeSnapshot>,
    /// Selection policy.
    pub policy: Policy,
    /// Hold-down of an edge that comes back.
    pub hold_down: Duration,
    /// How often peers are asked for the routers they know.
    pub discovery_interval: Duration,
    /// Longest wait for a peer's fleet view before reporting ready anyway.
    pub bootstrap_timeout: Duration,
    /// Autoscaling targets.
    pub scale: ScalePolicy,
    /// How calls to peers verify them (and identify this router).
    pub tls: runtime::tls::ClientTls,
    /// Mutual TLS (`tls.client_ca`): an edge's own ads and links must come
    /// on a connection whose client certificate names the edge.
    pub edge_certificates: bool,
}

/// The router's fleet state, shared by handlers and loops.
#[derive(Debug)]
pub struct Fleet {
    settings: FleetSettings,
    view: Mutex<FleetView>,
    peers: Mutex<Peers>,
    current: ArcSwap<Current>,
    ready: AtomicBool,
    events: broadcast::Sender<String>,
    http: reqwest::Client,
    scaler: Mutex<Scaler>,
    /// Turns true when the router shuts down; set by [`Fleet::start`].
    stopping: OnceLock<watch::Receiver<bool>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these maps half-updated in
    // a way that matters more than stopping the router would.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Fleet {
    /// A fleet state; not ready until [`Fleet::start`] has bootstrapped.
    pub fn new(settings: FleetSettings) -> anyhow::Result<Arc<Self>> {
        let http = settings
            .tls
            .apply(reqwest::Client::builder())
            .timeout(PEER_TIMEOUT)
            .connect_timeout(PEER_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        let view = FleetView::new(settings.hold_down, FORGET_AFTER);
        let peers = Peers::new(settings.me.clone(), &settings.seeds);
        let current = build_current(&settings, &view, None, &[]);
        let (events, _) = broadcast::channel(256);
        Ok(Arc::new(Self {
            ready: AtomicBool::new(settings.seeds.is_empty()),
            scaler: Mutex::new(Scaler::new(settings.scale)),
            settings,
            view: Mutex::new(view),
            peers: Mutex::new(peers),
            current: ArcSwap::from_pointee(current),
            events,
            http,
            stopping: OnceLock::new(),
        }))
    }

    /// The current selector and counters.
    pub fn current(&self) -> arc_swap::Guard<Arc<Current>> {
        self.current.load()
    }

    /// Whether the router has its fleet view.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// This router.
    pub fn me(&self) -> &RouterInfo {
        &self.settings.me
    }

    /// Resolves when the router starts shutting down (never before
    /// [`Fleet::start`]): long requests (links, event streams) end then, so
    /// the bounded drain does not wait for them.
    fn stopped(&self) -> impl Future<Output = ()> + Send + use<> {
        let stopping = self.stopping.get().cloned();
        async move {
            match stopping {
                Some(mut stop) => {
                    let _ = stop.wait_for(|s| *s).await;
                }
                None => std::future::pending().await,
            }
        }
    }

    /// Starts bootstrap and discovery, and housekeeping; they stop with `shutdown`.
    pub fn start(self: &Arc<Self>, shutdown: watch::Receiver<bool>) {
        let _ = self.stopping.set(shutdown);
        self.spawn_until_stopped(self.clone().gossip());
        self.spawn_until_stopped(self.clone().housekeeping_loop());
    }

    fn spawn_until_stopped(&self, task: impl Future<Output = ()> + Send + 'static) {
        let stopped = self.stopped();
        tokio::spawn(async move {
            tokio::select! {
                () = task => {}
                () = stopped => {}
            }
        });
    }

    /// Applies a validated ad; rebuilds the selector when it was stored.
    fn apply(&self, ad: Ad, age: Duration) -> Applied {
        let edge = ad.edge_id.clone();
        let mut view = lock(&self.view);
        let applied = view.apply(ad, now(), age);
        if applied == Applied::Stored {
            self.rebuild(&view, &[edge.as_str()]);
        }
        applied
    }

    /// Rebuilds the selector from `view`; `reset`: edges whose assignment
    /// counters start over (see [`build_current`]).
    fn rebuild(&self, view: &FleetView, reset: &[&str]) {
        let current = build_current(&self.settings, view, Some(&self.current.load()), reset);
        self.current.store(Arc::new(current));
    }

    /// Who the bearer token says the caller is: the fleet (the fleet
    /// token), or one edge (its credential, `router_api::fleet::edge_credential`).
    fn caller(&self, headers: &HeaderMap) -> Option<Caller> {
        let bearer = runtime::auth::Bearer::from_headers(headers)?;
        if bearer.is(&self.settings.fleet_token) {
            return Some(Caller::Fleet);
        }
        router_api::fleet::edge_of_credential(self.settings.fleet_token.expose(), bearer.token())
            .map(|id| Caller::Edge(id.to_owned()))
    }

    /// Under mutual TLS, whether `caller` presented a client certificate
    /// that names it, as an edge speaking for itself must (holders of the
    /// fleet token are routers and operators, checked by the token alone).
    fn certified(&self, caller: &Caller, extensions: &axum::http::Extensions) -> Result<(), Error> {
        let Caller::Edge(id) = caller else { return Ok(()) };
        if !self.settings.edge_certificates {
            return Ok(());
        }
        match extensions.get::<runtime::tls::PeerCertificate>() {
            Some(cert) if cert.is_for(id) => Ok(()),
            Some(_) => Err(Error::Forbidden("the client certificate does not name this edge")),
            None => Err(Error::Forbidden(
                "mutual TLS is required: an edge presents its client certificate (--tls-client-cert)",
            )),
        }
    }

    /// Whether the caller holds the fleet token (routers, operators).
    fn authorized(&self, headers: &HeaderMap) -> bool {
        matches!(self.caller(headers), Some(Caller::Fleet))
    }
}

/// Who made a fleet call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Caller {
    /// A holder of the fleet token: a router, or an operator.
    Fleet,
    /// The edge with this id, by its own credential: it may speak for itself only.
    Edge(String),
}

impl Caller {
    /// Whether the caller may speak for edge `id`.
    fn speaks_for(&self, id: &str) -> bool {
        match self {
            Caller::Fleet => true,
            Caller::Edge(own) => own == id,
        }
    }
}

/// Builds the selector over configured + advertised edges; carries the
/// per-edge counters over by id, except those of `reset` (edges whose new ad
/// already counts what this router assigned them).
fn build_current(
    settings: &FleetSettings,
    view: &FleetView,
    previous: Option<&Current>,
    reset: &[&str],
) -> Current {
    let mut edges = settings.static_edges.clone();
    edges.extend(
        view.snapshot()
            .edges
            .into_iter()
            .filter(|e| !settings.static_edges.iter().any(|s| s.id == e.id)),
    );
    let selector = Selector::build(&FleetSnapshot::new(edges), settings.policy);
    let carry = |pick: fn(&Current) -> &Vec<AtomicU64>, keep_reset: bool| -> Vec<AtomicU64> {
        selector
            .edges()
            .iter()
            .map(|edge| {
                let value = previous
                    .filter(|_| keep_reset || !reset.contains(&edge.id.as_str()))
                    .and_then(|p| p.selector.index_of(&edge.id).and_then(|i| pick(p).get(i)))
                    .map_or(0, |a| a.load(Ordering::Relaxed));
                AtomicU64::new(value)
            })
            .collect()
    };
    let assigned_bps = carry(|c| &c.assigned_bps, false);
    let viewers = carry(|c| &c.viewers, true);
    Current {
        selector,
        assigned_bps,
        viewers,
    }
}

/// The fleet routes, to merge into the router's app.
pub fn routes(fleet: Arc<Fleet>) -> Router {
    Router::new()
        .route(
            ADS_PATH,
            post(ingest::receive_ad).layer(DefaultBodyLimit::max(MAX_AD_BYTES)),
        )
        .route(LINK_PATH, post(links::link))
        .route(
            LINK_LOST_PATH,
            post(links::link_lost).layer(DefaultBodyLimit::max(MAX_AD_BYTES)),
        )
        .route("/api/v1/edges", get(views::list_edges))
        .route(
            "/api/v1/routers",
            get(gossip::list_routers)
                .post(gossip::announce)
                .layer(DefaultBodyLimit::max(MAX_AD_BYTES)),
        )
        .route("/api/v1/events", get(views::events))
        .route("/api/v1/scale", get(views::scale))
        .with_state(fleet)
}

#[cfg(test)]
mod tests;
