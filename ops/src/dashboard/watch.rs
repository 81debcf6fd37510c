//! The dashboard's view of the fleet: one task per router following its
//! `/api/v1/events`, a discovery round that learns routers from the ones
//! known, the origin's catalog, the routers' scaling answer, and a tick that
//! merges it all into the overview once a second.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use router_api::fleet::EdgesView;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::streams::{self, StreamInfo, StreamRow};
use crate::api;
use crate::health::{self, Observation, Report};
use crate::history::{History, Sample};
use crate::sse;
use router_api::fleet::Scale;

/// Overview interval.
pub const TICK: Duration = Duration::from_secs(1);
/// A router's event stream that sent nothing (routers send every second) for
/// this long is reconnected.
pub const IDLE: Duration = Duration::from_secs(5);
/// A router whose last view is older than this counts as not answering.
pub const VIEW_MAX_AGE: Duration = Duration::from_secs(4);
/// Routers may disagree this long (an ad on its way) before it is a problem.
pub const DISAGREE_GRACE: Duration = Duration::from_secs(3);
/// Interval of router discovery.
pub const DISCOVERY: Duration = Duration::from_secs(2);
/// A learned router no router lists any more is dropped after this long.
pub const FORGET_AFTER: Duration = Duration::from_secs(30);
/// Interval of catalog reads.
pub const CATALOG: Duration = Duration::from_secs(30);
/// Interval of `/api/v1/scale` reads.
pub const SCALE: Duration = Duration::from_secs(2);

/// What the browser gets every second.
#[derive(Debug, Serialize)]
struct Overview<'a> {
    generated_unix_ms: u64,
    #[serde(flatten)]
    report: &'a Report,
    streams: Vec<StreamRow>,
    scale: Option<Scale>,
    sample: &'a Sample,
}

#[derive(Debug)]
struct RouterEntry {
    id: Option<String>,
    view: Option<(EdgesView, Instant)>,
    error: Option<String>,
    seed: bool,
    listed_at: Instant,
    task: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Inner {
    routers: BTreeMap<String, RouterEntry>,
    history: History,
    catalog: Vec<StreamInfo>,
    scale: Option<Scale>,
    disagree_since: Option<Instant>,
    has_view: bool,
    latest: Arc<str>,
    latest_edges: Vec<health::EdgeRow>,
}

/// The fleet as the dashboard sees it.
#[derive(Debug)]
pub struct Watcher {
    origin: Option<String>,
    client: reqwest::Client,
    stream_client: reqwest::Client,
    inner: Mutex<Inner>,
    updates: broadcast::Sender<Arc<str>>,
    /// Turns true when the server shuts down: event streams end then.
    closing: tokio::sync::watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Watcher {
    /// Starts watching from these routers (and the origin's catalog, if given).
    pub fn start(seeds: Vec<String>, origin: Option<String>) -> Arc<Watcher> {
        let (updates, _) = broadcast::channel(16);
        let watcher = Arc::new(Watcher {
            origin,
            client: api::client(),
            stream_client: api::stream_client(),
            inner: Mutex::new(Inner {
                routers: BTreeMap::new(),
                history: History::new(crate::history::DEFAULT_SPAN),
                catalog: Vec::new(),
                scale: None,
                disagree_since: None,
                has_view: false,
                latest: Arc::from("{}"),
                latest_edges: Vec::new(),
            }),
            updates,
            closing: tokio::sync::watch::Sender::new(false),
            tasks: Mutex::new(Vec::new()),
        });
        for seed in seeds {
            watcher.add_router(seed, None, true);
        }
        watcher.tick();
        let loops = vec![
            tokio::spawn(watcher.clone().tick_loop()),
            tokio::spawn(watcher.clone().discovery_loop()),
            tokio::spawn(watcher.clone().catalog_loop()),
            tokio::spawn(watcher.clone().scale_loop()),
        ];
        lock(&watcher.tasks).extend(loops);
        watcher
    }

    /// Ends the event streams (the server is shutting down: its bounded
    /// drain need not wait for browsers that keep them open).
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Watcher::close_streams`] was called.
    pub fn closed(&self) -> impl Future<Output = ()> + Send + use<> {
        let mut closing = self.closing.subscribe();
        async move {
            let _ = closing.wait_for(|c| *c).await;
        }
    }

    /// Stops every task.
    pub fn stop(&self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        for entry in self.inner().routers.values_mut() {
            if let Some(task) = entry.task.take() {
                task.abort();
            }
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// The client for API calls.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Whether any router's view has arrived.
    pub fn has_view(&self) -> bool {
        self.inner().has_view
    }

    /// The latest overview, as JSON.
    pub fn latest(&self) -> Arc<str> {
        self.inner().latest.clone()
    }

    /// Overviews as they are made.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.updates.subscribe()
    }

    /// The egress history, as JSON: `{"samples": [{t, egress: {edge: bps}}]}`.
    pub fn history_json(&self) -> String {
        let inner = self.inner();
        let samples: Vec<&Sample> = inner.history.samples().collect();
        serde_json::json!({ "span_ms": crate::history::DEFAULT_SPAN.as_millis() as u64, "samples": samples })
            .to_string()
    }

    /// The streams to offer in the player, as JSON: the catalog when the
    /// origin is known, else what the edges serve.
    pub fn streams_json(&self) -> String {
        let inner = self.inner();
        let streams: Vec<StreamInfo> = if inner.catalog.is_empty() {
            streams::stream_rows(&[], &inner.latest_edges)
                .into_iter()
                .map(|row| StreamInfo {
                    name: row.name,
                    master: row.master,
                    renditions: Vec::new(),
                })
                .collect()
        } else {
            inner.catalog.clone()
        };
        serde_json::json!({ "streams": streams }).to_string()
    }

    /// The URL of the router named by id or URL, or of the first router that
    /// answers when none is named. Only routers being watched are returned.
    pub fn router_url(&self, name: Option<&str>) -> Option<String> {
        let inner = self.inner();
        match name.filter(|n| !n.is_empty()) {
            Some(name) => inner
                .routers
                .iter()
                .find(|(url, r)| url.as_str() == api::base(name) || r.id.as_deref() == Some(name))
                .map(|(url, _)| url.clone()),
            None => inner
                .routers
                .iter()
                .find(|(_, r)| r.view.is_some())
                .or_else(|| inner.routers.iter().next())
                .map(|(url, _)| url.clone()),
        }
    }

    fn add_router(self: &Arc<Self>, url: String, id: Option<String>, seed: bool) {
        let url = api::base(&url).to_owned();
        let mut inner = self.inner();
        if inner.routers.contains_key(&url)
            || id
                .as_ref()
                .is_some_and(|id| inner.routers.values().any(|r| r.id.as_ref() == Some(id)))
        {
            return;
        }
        tracing::info!(router = %url, "watching router");
        let task = tokio::spawn(self.clone().follow(url.clone()));
        inner.routers.insert(
            url,
            RouterEntry {
                id,
                view: None,
                error: None,
                seed,
                listed_at: Instant::now(),
                task: Some(task),
            },
        );
    }

    /// Follows one router's event stream for ever, reconnecting after errors.
    async fn follow(self: Arc<Self>, url: String) {
        let events = format!("{url}/api/v1/events");
        loop {
            let result = sse::follow(&self.stream_client, &events, IDLE, |event| {
                if event.event != "fleet" {
                    return;
                }
                let mut inner = self.inner();
                let Some(entry) = inner.routers.get_mut(&url) else {
                    return;
                };
                match serde_json::from_str::<EdgesView>(&event.data) {
                    Ok(view) => {
                        entry.id.get_or_insert_with(|| view.router.clone());
                        entry.view = Some((view, Instant::now()));
                        entry.error = None;
                        inner.has_view = true;
                    }
                    Err(error) => entry.error = Some(format!("unreadable fleet event: {error}")),
                }
            })
            .await;
            if let Err(error) = result {
                tracing::debug!(router = %url, error = %format!("{error:#}"), "router event stream ended");
                if let Some(entry) = self.inner().routers.get_mut(&url) {
                    entry.error = Some(format!("{error:#}"));
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn tick_loop(self: Arc<Self>) {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            self.tick();
        }
    }

    /// Builds the overview from what is known now and sends it out.
    fn tick(&self) {
        let now = Instant::now();
        let mut inner = self.inner();
        let observations: Vec<Observation> = inner
            .routers
            .iter()
            .map(|(url, r)| Observation {
                url: url.clone(),
                id: r.id.clone(),
                view: match &r.view {
                    Some((view, at)) if now.duration_since(*at) < VIEW_MAX_AGE => Ok(view.clone()),
                    Some((_, at)) => Err(r.error.clone().unwrap_or_else(|| {
                        format!(
                            "no fleet event for {}",
                            health::seconds(millis(now.duration_since(*at)))
                        )
                    })),
                    None => Err(r
                        .error
                        .clone()
                        .unwrap_or_else(|| "waiting for its first fleet event".into())),
                },
            })
            .collect();
        let mut report = health::assess(&observations);
        if report.problems.iter().any(|p| p.starts_with("routers disagree")) {
            let since = *inner.disagree_since.get_or_insert(now);
            if now.duration_since(since) < DISAGREE_GRACE {
                health::defer_disagreement(&mut report);
            }
        } else {
            inner.disagree_since = None;
        }
        let sample = Sample {
            t: unix_ms(),
            egress: report
                .edges
                .iter()
                .filter(|e| e.fresh)
                .map(|e| (e.id.clone(), e.egress_bps))
                .collect(),
        };
        inner.history.push(sample.clone());
        let overview = Overview {
            generated_unix_ms: sample.t,
            report: &report,
            streams: streams::stream_rows(&inner.catalog, &report.edges),
            scale: inner.scale,
            sample: &sample,
        };
        let json: Arc<str> = match serde_json::to_string(&overview) {
            Ok(json) => Arc::from(json),
            Err(error) => {
                tracing::warn!(%error, "cannot serialize the overview");
                return;
            }
        };
        inner.latest = json.clone();
        inner.latest_edges = report.edges;
        drop(inner);
        let _ = self.updates.send(json);
    }

    async fn discovery_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(DISCOVERY).await;
            let known: Vec<String> = self.inner().routers.keys().cloned().collect();
            let answers =
                futures::future::join_all(known.iter().map(|url| api::routers(&self.client, url))).await;
            let mut listed: BTreeSet<String> = BTreeSet::new();
            let mut learned = Vec::new();
            {
                let mut inner = self.inner();
                for (url, answer) in known.iter().zip(answers) {
                    let Ok(view) = answer else { continue };
                    if let Some(entry) = inner.routers.get_mut(url) {
                        entry.id = Some(view.this.id.clone());
                    }
                    listed.insert(url.clone());
                    for router in view.routers {
                        listed.insert(api::base(&router.url).to_owned());
                        learned.push(router);
                    }
                }
                let now = Instant::now();
                let mut forget = Vec::new();
                for (url, entry) in inner.routers.iter_mut() {
                    if entry.seed || listed.contains(url) {
                        entry.listed_at = now;
                    } else if now.duration_since(entry.listed_at) > FORGET_AFTER {
                        forget.push(url.clone());
                    }
                }
                for url in forget {
                    tracing::info!(router = %url, "no router lists it any more: forgotten");
                    if let Some(task) = inner.routers.remove(&url).and_then(|e| e.task) {
                        task.abort();
                    }
                }
            }
            for router in learned {
                self.add_router(router.url, Some(router.id), false);
            }
        }
    }

    async fn catalog_loop(self: Arc<Self>) {
        let Some(origin) = self.origin.clone() else { return };
        let mut failing = false;
        loop {
            match api::catalog(&self.client, &origin).await {
                Ok(catalog) => {
                    let mut infos = Vec::new();
                    for stream in &catalog.streams {
                        let master = match &stream.master {
                            Some(master) => api::get_text(&self.client, &format!("{origin}/{master}"))
                                .await
                                .ok(),
                            None => None,
                        };
                        infos.push(streams::stream_info(stream, master.as_deref()));
                    }
                    self.inner().catalog = infos;
                    failing = false;
                    tokio::time::sleep(CATALOG).await;
                }
                Err(error) => {
                    if !failing {
                        tracing::warn!(error = %format!("{error:#}"), "cannot read the origin's catalog; retrying");
                    }
                    failing = true;
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    }

    async fn scale_loop(self: Arc<Self>) {
        loop {
            if let Some(router) = self.router_url(None) {
                let scale = api::scale(&self.client, &router).await.ok().flatten();
                self.inner().scale = scale;
            }
            tokio::time::sleep(SCALE).await;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
