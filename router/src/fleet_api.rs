//! The fleet protocol's I/O: ads in (`POST /api/v1/ads`), edge links
//! (`POST /api/v1/link`), forwarding to the other routers, discovery (`GET`/`POST /api/v1/routers`), the fleet view
//! (`GET /api/v1/edges`), explanations (`GET /api/v1/explain`), server-sent
//! events (`GET /api/v1/events`), bootstrap from a peer, and the background
//! loops. The decisions live in [`crate::fleet`], [`crate::peers`] and
//! [`crate::select`]; this module moves bytes and keeps the selector current.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use router_api::fleet::{Ad, Capacity, EdgeView, EdgesView, LINK_LOST_PATH, LINK_PATH, Link, Load};
use runtime::secret::Secret;
use selection::snapshot::{EdgeSnapshot, FleetSnapshot};
use serde::Deserialize;
use tokio::sync::{broadcast, watch};

use crate::fleet::{Applied, FleetView, Transition};
use crate::metrics;
use crate::peers::Peers;
use crate::scale::{ScalePolicy, Scaler};
use crate::select::{Choice, Policy, Request as Pick, Selector};
use router_api::fleet::{RouterInfo, RoutersView, Scale};

/// Largest ad accepted, in bytes (413 past it).
pub const MAX_AD_BYTES: usize = 64 * 1024;
/// Where ads are posted.
const ADS_PATH: &str = "/api/v1/ads";
/// Header naming the router that forwarded an ad.
pub const FORWARDED_BY: &str = "x-hlscdn-forwarded-by";
/// Timeout of router-to-router calls.
const PEER_TIMEOUT: Duration = Duration::from_secs(2);
/// How often flips are looked for.
const HOUSEKEEPING: Duration = Duration::from_millis(200);

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
        let http = reqwest::Client::builder()
            .timeout(PEER_TIMEOUT)
            .connect_timeout(PEER_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        let view = FleetView::new(settings.hold_down, Duration::from_secs(600));
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

    /// This router.
    pub fn me(&self) -> &RouterInfo {
        &self.settings.me
    }

    /// Applies a validated ad; rebuilds the selector when it was stored.
    fn apply(&self, ad: Ad, age: Duration) -> Applied {
        let now = Instant::now();
        let edge = ad.edge_id.clone();
        let mut view = lock(&self.view);
        let applied = view.apply(ad, now, age);
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

    /// An edge linked itself to this router.
    fn link_opened(&self, link: &Link) {
        let mut view = lock(&self.view);
        let ended_a_loss = view.link_opened(&link.edge, &link.instance, Instant::now());
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
        let lost = view.link_closed(&link.edge, &link.instance, Instant::now());
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
        if view.lost_elsewhere(&link.edge, &link.instance, link.generation, Instant::now()) {
            tracing::warn!(edge = %link.edge, "a peer saw the edge's link break: stale now");
            self.rebuild(&view, &[]);
        }
    }

    /// Starts bootstrap, discovery and housekeeping; they stop with `shutdown`.
    pub fn start(self: &Arc<Self>, shutdown: watch::Receiver<bool>) {
        let _ = self.stopping.set(shutdown.clone());
        let stopped = |mut stop: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let fleet = self.clone();
        let stop = stopped(shutdown.clone());
        tokio::spawn(async move {
            tokio::pin!(stop);
            tokio::select! {
                () = fleet.bootstrap() => {},
                () = &mut stop => return,
            }
            let mut discovery = tokio::time::interval(fleet.settings.discovery_interval);
            discovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = discovery.tick() => fleet.discover().await,
                    () = &mut stop => return,
                }
            }
        });
        let fleet = self.clone();
        let stop = stopped(shutdown);
        tokio::spawn(async move {
            tokio::pin!(stop);
            let mut tick = tokio::time::interval(HOUSEKEEPING);
            let mut since_event = Duration::ZERO;
            loop {
                tokio::select! {
                    _ = tick.tick() => {},
                    () = &mut stop => return,
                }
                since_event += HOUSEKEEPING;
                let changed = fleet.housekeeping();
                // The dashboard gets every change at once and the view once a second.
                if changed || since_event >= Duration::from_secs(1) {
                    since_event = Duration::ZERO;
                    fleet.publish_view();
                }
            }
        });
    }

    /// Copies the fleet view from the first seed that answers; then ready.
    async fn bootstrap(&self) {
        let started = Instant::now();
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
                        for edge in view.edges {
                            if let Some(ad) = edge.ad
                                && ad.validate().is_ok()
                            {
                                self.apply(ad, Duration::from_millis(edge.ad_age_ms));
                                copied += 1;
                            }
                        }
                        tracing::info!(peer = %seed, edges = copied, "fleet view copied from a peer");
                        self.ready.store(true, Ordering::Relaxed);
                        return;
                    }
                    Err(error) => tracing::debug!(peer = %seed, %error, "bootstrap peer did not answer"),
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        tracing::warn!("no peer answered within the bootstrap timeout: starting with an empty fleet view");
        self.ready.store(true, Ordering::Relaxed);
    }

    async fn fetch_edges(&self, peer: &str) -> anyhow::Result<EdgesView> {
        let response = self
            .http
            .get(format!("{peer}/api/v1/edges"))
            .bearer_auth(self.settings.fleet_token.expose())
            .send()
            .await?
            .error_for_status()?;
        Ok(response.json().await?)
    }

    /// One discovery round: ask every peer whom it knows, announce ourselves.
    async fn discover(&self) {
        let targets = lock(&self.peers).to_probe();
        let probes = targets.into_iter().map(|peer| async move {
            let answer = self
                .http
                .get(format!("{peer}/api/v1/routers"))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status);
            let view = match answer {
                Ok(response) => response.json::<RoutersView>().await.ok(),
                Err(_) => None,
            };
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
    fn forward(self: &Arc<Self>, path: &'static str, body: Bytes, from: Option<String>) {
        let targets: Vec<String> = {
            let peers = lock(&self.peers);
            let from_url = from.as_deref().and_then(|id| {
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
        };
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

    /// Logs flips and refreshes gauges; true when something changed.
    fn housekeeping(&self) -> bool {
        let now = Instant::now();
        let mut view = lock(&self.view);
        let transitions = view.transitions(now);
        for transition in &transitions {
            match transition {
                Transition::Joined(edge) => tracing::info!(edge = %edge, "edge joined"),
                Transition::Stale(edge) => tracing::warn!(edge = %edge, "edge became stale"),
                Transition::Fresh(edge) => tracing::info!(edge = %edge, "edge is fresh again"),
                Transition::State(edge, state) => {
                    tracing::info!(edge = %edge, state = ?state, "edge changed state")
                }
                Transition::Forgotten(edge) => tracing::info!(edge = %edge, "stale edge forgotten"),
            }
        }
        if transitions.iter().any(|t| matches!(t, Transition::Forgotten(_))) {
            self.rebuild(&view, &[]);
        }
        let (mut fresh, mut stale, mut draining, mut held) = (0u64, 0u64, 0u64, 0u64);
        for record in view.records(now) {
            match (record.fresh, record.ad.state, record.eligible) {
                (false, _, _) => stale += 1,
                (true, router_api::fleet::EdgeState::Draining, _) => draining += 1,
                (true, _, false) => held += 1,
                (true, _, true) => fresh += 1,
            }
            metrics::ad_age(&record.ad.edge_id, record.age);
        }
        fresh += self.settings.static_edges.len() as u64;
        metrics::fleet_size(fresh, stale, draining, held);
        drop(view);
        self.observe_scale(now);
        !transitions.is_empty()
    }

    /// Fresh, ready, eligible edges, and their utilization.
    fn measure_scale(&self, now: Instant) -> (u32, f64) {
        let current = self.current.load();
        let (mut edges, mut used, mut capacity) = (0u32, 0f64, 0f64);
        for (i, edge) in current.selector.edges().iter().enumerate() {
            if edge.is_fresh(now)
                && edge.is_eligible(now)
                && edge.state == router_api::fleet::EdgeState::Ready
            {
                edges += 1;
                // This router's own estimate since the edge's last ad counts
                // at most as much as the edge measured itself: requests alone
                // cannot scale the fleet.
                let assigned = current
                    .assigned_bps
                    .get(i)
                    .map_or(0, |a| a.load(Ordering::Relaxed))
                    .min(edge.load_bps);
                used += (edge.load_bps + assigned) as f64;
                capacity += edge.capacity_bps as f64;
            }
        }
        let utilization = if capacity > 0.0 { used / capacity } else { 0.0 };
        (edges, utilization)
    }

    /// Records the fleet's utilization in the scaler (housekeeping does, every round).
    fn observe_scale(&self, now: Instant) -> Scale {
        let (edges, utilization) = self.measure_scale(now);
        let scale = lock(&self.scaler).observe(edges, utilization, now);
        metrics::scale(&scale);
        scale
    }

    /// What `GET /api/v1/scale` answers: the scaler's answer now, changing nothing.
    pub fn scale_now(&self, now: Instant) -> Scale {
        let (edges, utilization) = self.measure_scale(now);
        lock(&self.scaler).preview(edges, utilization, now)
    }

    /// The fleet as `GET /api/v1/edges` shows it.
    pub fn edges_view(&self) -> EdgesView {
        let now = Instant::now();
        let current = self.current.load();
        let counters = |id: &str| {
            current.selector.index_of(id).map_or((0, 0), |i| {
                let load = |v: &Vec<AtomicU64>| v.get(i).map_or(0, |a| a.load(Ordering::Relaxed));
                (load(&current.assigned_bps), load(&current.viewers))
            })
        };
        let utilization = |load: u64, assigned: u64, capacity: u64| {
            if capacity == 0 {
                0.0
            } else {
                (load + assigned) as f64 / capacity as f64
            }
        };
        let mut edges: Vec<EdgeView> = self
            .settings
            .static_edges
            .iter()
            .map(|e| {
                let (assigned_bps, viewers_assigned) = counters(&e.id);
                EdgeView {
                    id: e.id.clone(),
                    url: e.base_url.clone(),
                    group: e.group.clone(),
                    state: e.state,
                    fresh: true,
                    eligible: true,
                    ad_age_ms: 0,
                    capacity: Capacity {
                        egress_bps: e.capacity_bps,
                        connections: 0,
                    },
                    load: Load::default(),
                    hot_streams: Vec::new(),
                    utilization: utilization(0, assigned_bps, e.capacity_bps),
                    assigned_bps,
                    viewers_assigned,
                    configured: true,
                    ad: None,
                }
            })
            .collect();
        let view = lock(&self.view);
        for record in view.records(now) {
            let ad = record.ad;
            let (assigned_bps, viewers_assigned) = counters(&ad.edge_id);
            edges.push(EdgeView {
                id: ad.edge_id.clone(),
                url: ad.public_url.clone(),
                group: ad.group.clone(),
                state: ad.state,
                fresh: record.fresh,
                eligible: record.eligible,
                ad_age_ms: u64::try_from(record.age.as_millis()).unwrap_or(u64::MAX),
                capacity: ad.capacity,
                load: ad.load,
                hot_streams: ad.hot_streams.clone(),
                utilization: utilization(ad.load.egress_bps, assigned_bps, ad.capacity.egress_bps),
                assigned_bps,
                viewers_assigned,
                configured: false,
                ad: Some(ad.clone()),
            });
        }
        EdgesView {
            router: self.settings.me.id.clone(),
            edges,
        }
    }

    fn publish_view(&self) {
        if self.events.receiver_count() == 0 {
            return;
        }
        if let Ok(json) = serde_json::to_string(&self.edges_view()) {
            let _ = self.events.send(json);
        }
    }

    /// Whether the caller holds the fleet token (routers, operators).
    fn authorized(&self, headers: &HeaderMap) -> bool {
        matches!(self.caller(headers), Some(Caller::Fleet))
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
            post(receive_ad).layer(DefaultBodyLimit::max(MAX_AD_BYTES)),
        )
        .route(LINK_PATH, post(link))
        .route(
            LINK_LOST_PATH,
            post(link_lost).layer(DefaultBodyLimit::max(MAX_AD_BYTES)),
        )
        .route("/api/v1/edges", get(list_edges))
        .route(
            "/api/v1/routers",
            get(list_routers)
                .post(announce)
                .layer(DefaultBodyLimit::max(MAX_AD_BYTES)),
        )
        .route("/api/v1/events", get(events))
        .route("/api/v1/scale", get(scale))
        .with_state(fleet)
}

fn refuse(status: StatusCode, reason: impl Into<String>) -> Response {
    let mut response = (status, format!("{}\n", reason.into())).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// The answer to a fleet call without the fleet token. The body is not
/// read, so the connection is not reused.
fn unauthorized() -> Response {
    let mut response = refuse(StatusCode::UNAUTHORIZED, "missing or invalid fleet token");
    let headers = response.headers_mut();
    headers.insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    headers.insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    response
}

/// Reads the body of an authorized fleet call: at most [`MAX_AD_BYTES`],
/// refused with 413 at once when `Content-Length` announces more.
async fn read_body(request: Request) -> Result<Bytes, Response> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_AD_BYTES as u64) {
        let mut response = refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {MAX_AD_BYTES} bytes"),
        );
        response
            .headers_mut()
            .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        return Err(response);
    }
    Bytes::from_request(request, &())
        .await
        .map_err(IntoResponse::into_response)
}

// The token is checked before the body is read: a caller without it cannot
// make the router wait for (or buffer) a body.
async fn receive_ad(State(fleet): State<Arc<Fleet>>, request: Request) -> Response {
    let Some(caller) = fleet.caller(request.headers()) else {
        metrics::ad_received("unauthorized");
        return unauthorized();
    };
    let from = request
        .headers()
        .get(FORWARDED_BY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match read_body(request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let ad: Ad = match serde_json::from_slice(&body) {
        Ok(ad) => ad,
        Err(error) => {
            metrics::ad_received("rejected");
            return refuse(StatusCode::BAD_REQUEST, format!("malformed ad: {error}"));
        }
    };
    if let Err(error) = ad.validate() {
        metrics::ad_received("rejected");
        return refuse(StatusCode::BAD_REQUEST, format!("invalid ad: {error}"));
    }
    if !caller.speaks_for(&ad.edge_id) {
        metrics::ad_received("unauthorized");
        return refuse(
            StatusCode::FORBIDDEN,
            "an edge's credential covers its own ads only",
        );
    }
    match fleet.apply(ad, Duration::ZERO) {
        Applied::Stored => {
            metrics::ad_received("stored");
            fleet.forward(ADS_PATH, body, from);
            axum::Json(serde_json::json!({ "stored": true })).into_response()
        }
        Applied::NotNewer => {
            metrics::ad_received("not_newer");
            axum::Json(serde_json::json!({ "stored": false })).into_response()
        }
        Applied::Contested => {
            metrics::ad_received("contested");
            tracing::warn!("an ad claimed the id of an edge whose live instance holds a link: refused");
            refuse(
                StatusCode::CONFLICT,
                "another instance of this edge id is linked and fresh",
            )
        }
    }
}

/// Marks the link closed when the request ends, however it ends: hyper drops
/// the handler when the edge's connection dies.
struct LinkGuard {
    fleet: Arc<Fleet>,
    link: Link,
}

impl Drop for LinkGuard {
    fn drop(&mut self) {
        self.fleet.link_closed(&self.link);
    }
}

// Reads and drops the keep-alive bytes until the edge's connection ends or
// the router stops; no answer is sent before then.
async fn link(
    State(fleet): State<Arc<Fleet>>,
    query: Result<Query<Link>, axum::extract::rejection::QueryRejection>,
    request: Request,
) -> Response {
    let Some(caller) = fleet.caller(request.headers()) else {
        return unauthorized();
    };
    let link = match query {
        Ok(Query(link)) if link.is_valid() && caller.speaks_for(&link.edge) => link,
        Ok(Query(link)) if link.is_valid() => {
            return refuse(
                StatusCode::FORBIDDEN,
                "an edge's credential covers its own link only",
            );
        }
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "expected ?edge=ID&instance=ID, each 1 to 64 bytes of A-Z a-z 0-9 . _ -",
            );
        }
    };
    fleet.link_opened(&link);
    let _guard = LinkGuard {
        fleet: fleet.clone(),
        link,
    };
    let stopped = fleet.stopped();
    tokio::pin!(stopped);
    let mut body = request.into_body().into_data_stream();
    loop {
        tokio::select! {
            chunk = futures::StreamExt::next(&mut body) => match chunk {
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return StatusCode::NO_CONTENT.into_response(),
            },
            () = &mut stopped => {
                let mut response = refuse(StatusCode::SERVICE_UNAVAILABLE, "router shutting down");
                response
                    .headers_mut()
                    .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
                return response;
            }
        }
    }
}

async fn link_lost(State(fleet): State<Arc<Fleet>>, request: Request) -> Response {
    if !fleet.authorized(request.headers()) {
        return unauthorized();
    }
    let body = match read_body(request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    match serde_json::from_slice::<Link>(&body) {
        Ok(link) if link.is_valid() => {
            fleet.lost_elsewhere(&link);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => refuse(
            StatusCode::BAD_REQUEST,
            "expected {\"edge\": ID, \"instance\": ID}, each 1 to 64 bytes of A-Z a-z 0-9 . _ -",
        ),
    }
}

async fn scale(State(fleet): State<Arc<Fleet>>) -> Response {
    axum::Json(fleet.scale_now(Instant::now())).into_response()
}

async fn list_edges(State(fleet): State<Arc<Fleet>>) -> Response {
    axum::Json(fleet.edges_view()).into_response()
}

async fn list_routers(State(fleet): State<Arc<Fleet>>) -> Response {
    axum::Json(lock(&fleet.peers).view()).into_response()
}

async fn announce(State(fleet): State<Arc<Fleet>>, request: Request) -> Response {
    if !fleet.authorized(request.headers()) {
        return unauthorized();
    }
    let body = match read_body(request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Ok(info) = serde_json::from_slice::<RouterInfo>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "expected {\"id\": ..., \"url\": ...}");
    };
    let valid = url::Url::parse(&info.url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.query().is_none() && u.host().is_some());
    if !valid || info.id.is_empty() || info.id.len() > 64 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "`url` must be an http(s) base URL and `id` 1 to 64 bytes",
        );
    }
    if info.id != fleet.me().id && lock(&fleet.peers).add(&info.url) {
        tracing::info!(peer = %info.url, "router announced itself");
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn events(State(fleet): State<Arc<Fleet>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let first = serde_json::to_string(&fleet.edges_view()).unwrap_or_default();
    let receiver = fleet.events.subscribe();
    let updates = futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(json) => return Some((Ok(Event::default().event("fleet").data(json)), receiver)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let stream = futures::StreamExt::chain(
        futures::stream::once(async move { Ok(Event::default().event("fleet").data(first)) }),
        updates,
    );
    // A viewer of the stream may be gone without the router noticing until
    // it writes; it writes nothing once stopping, so the stream ends then.
    Sse::new(futures::StreamExt::take_until(stream, fleet.stopped())).keep_alive(KeepAlive::default())
}

/// Query of `GET /api/v1/explain`.
#[derive(Debug, Deserialize)]
pub struct ExplainQuery {
    /// The playlist or object path, e.g. `/live/demo-1/240p/index.m3u8`.
    pub path: String,
    /// A session token, as on the player's playlist URL.
    #[serde(default)]
    pub session: Option<String>,
    /// The viewer's group.
    #[serde(default)]
    pub group: Option<String>,
    /// The viewer's bandwidth, bits per second.
    #[serde(default)]
    pub bandwidth: Option<u64>,
    /// A steering ticket (the `s` of the steering `SERVER-URI`): adds the
    /// steering plan the viewer would get now.
    #[serde(default)]
    pub ticket: Option<String>,
    /// The pathway the player says it is on (`_HLS_pathway`), with `ticket`.
    #[serde(default)]
    pub pathway: Option<String>,
}
