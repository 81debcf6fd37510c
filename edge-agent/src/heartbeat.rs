//! The heartbeat loop: every interval it samples the load, publishes it on
//! `/metrics`, and posts an ad to every router that is due one; every few
//! seconds it asks a router for the routers it knows; when a drain starts it
//! posts a `draining` ad to every router at once. It also keeps a link open
//! to every router it knows ([`crate::link`]).
//!
//! One loop, sleeping until the next deadline. Each POST runs in its own
//! task with its own timeout and reports back over a channel, so a router
//! that hangs or refuses connections never delays the ads of the others;
//! which router is due, and when a failing one is retried, is decided by
//! [`crate::peers`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use router_api::fleet::{EdgeState, Instance, Link, ListedRouter, RouterList};
use runtime::server::Connections;
use tokio::sync::{mpsc, watch};

use crate::config::{Config, normalize_router_url};
use crate::http::AppState;
use crate::link::Links;
use crate::load::{Gauges, LoadMeter};
use crate::metrics;
use crate::peers::{Flip, Peers, Policy};
use crate::sampler::Sampler;

/// Largest `GET /api/v1/routers` body read.
pub const MAX_ROUTER_LIST_BYTES: usize = 1 << 20;
/// Most routers taken from one list.
pub const MAX_ROUTERS_LEARNED: usize = 256;

/// What the send and discovery tasks report.
#[derive(Debug)]
enum Event {
    Ad { url: String, ok: bool },
    Routers { urls: Vec<String> },
}

/// When the next beat and the next discovery round are due: a beat every
/// interval from the start, skipping the beats a stalled machine missed
/// instead of sending them in a burst; a discovery round one discovery
/// interval after the last, the first one interval after the start; after
/// the draining ad, the next beat one interval later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Schedule {
    interval: Duration,
    discovery_interval: Duration,
    next_beat: tokio::time::Instant,
    next_discovery: tokio::time::Instant,
}

impl Schedule {
    fn new(now: tokio::time::Instant, interval: Duration, discovery_interval: Duration) -> Self {
        Schedule {
            interval,
            discovery_interval,
            next_beat: now,
            next_discovery: now + interval,
        }
    }

    /// A beat ended at `now`.
    fn beaten(&mut self, now: tokio::time::Instant) {
        self.next_beat += self.interval;
        if self.next_beat <= now {
            // Fell behind (a stalled machine): skip, do not burst.
            self.next_beat = now + self.interval;
        }
    }

    /// A discovery round started at `now`.
    fn discovered(&mut self, now: tokio::time::Instant) {
        self.next_discovery = now + self.discovery_interval;
    }

    /// The draining ad went out at `now`.
    fn drained(&mut self, now: tokio::time::Instant) {
        self.next_beat = now + self.interval;
    }
}

/// The heartbeat sender of one edge process.
#[derive(Debug)]
pub struct Heartbeat {
    config: Arc<Config>,
    public_url: String,
    instance: Instance,
    state: Arc<AppState>,
    http: reqwest::Client,
    sampler: Sampler,
    meter: LoadMeter,
    peers: Peers,
    links: Option<Links>,
    generation: u64,
}

impl Heartbeat {
    /// A sender for the edge described by `config`, reachable at `public_url`,
    /// serving the `connections` it counts, running as `instance`.
    pub fn new(
        config: Arc<Config>,
        public_url: String,
        connections: Connections,
        instance: Instance,
        state: Arc<AppState>,
    ) -> anyhow::Result<Self> {
        let http = config
            .tls
            .client()
            .map_err(anyhow::Error::msg)?
            .apply(reqwest::Client::builder())
            .connect_timeout(config.ad_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        let policy = Policy::for_interval(config.heartbeat_interval, config.forget_router_after);
        let links = config.credential().map(|token| {
            let link = Link {
                edge: config.id.clone(),
                instance: instance.id.clone(),
                generation: None,
            };
            Links::new(http.clone(), token, link, config.heartbeat_interval)
        });
        Ok(Heartbeat {
            links,
            peers: Peers::new(&config.routers, policy, Instant::now()),
            meter: LoadMeter::new(config.load_window),
            sampler: Sampler::new(connections),
            config,
            public_url,
            instance,
            state,
            http,
            generation: 0,
        })
    }

    /// Runs until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let (tx, mut events) = mpsc::unbounded_channel();
        let mut drain = self.state.drain.subscribe();
        let mut drain_open = true;
        let mut schedule = Schedule::new(
            tokio::time::Instant::now(),
            self.config.heartbeat_interval,
            self.config.discovery_interval,
        );
        let sends = self.config.fleet_token.is_some();
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(schedule.next_beat) => {
                    self.beat(&tx).await;
                    schedule.beaten(tokio::time::Instant::now());
                }
                () = tokio::time::sleep_until(schedule.next_discovery), if sends => {
                    self.discover(&tx);
                    schedule.discovered(tokio::time::Instant::now());
                }
                changed = drain.changed(), if drain_open => {
                    if changed.is_err() {
                        drain_open = false;
                    } else if drain.borrow_and_update().is_some() {
                        self.state.published.draining.set(1.0);
                        if sends {
                            self.announce_draining(&tx);
                        }
                        schedule.drained(tokio::time::Instant::now());
                    }
                }
                Some(event) = events.recv() => self.handle(event),
                _ = stop.changed() => break,
            }
        }
    }

    /// Samples, publishes, and sends an ad to the routers that are due.
    async fn beat(&mut self, tx: &mpsc::UnboundedSender<Event>) {
        let now = Instant::now();
        self.sample(now).await;
        if self.config.fleet_token.is_none() {
            return;
        }
        if let Some(links) = &mut self.links {
            links.sync(self.peers.all().iter().map(|p| p.url.as_str()));
        }
        let due = self.peers.take_due(now);
        if due.is_empty() {
            return;
        }
        let body = self.next_ad();
        for url in due {
            self.send(url, body.clone(), tx);
        }
    }

    /// A `draining` ad to every router, whatever its backoff.
    fn announce_draining(&mut self, tx: &mpsc::UnboundedSender<Event>) {
        let body = self.next_ad();
        let urls: Vec<String> = self.peers.all().iter().map(|p| p.url.clone()).collect();
        tracing::info!(routers = urls.len(), "sending draining ads");
        for url in urls {
            self.send(url, body.clone(), tx);
        }
    }

    async fn sample(&mut self, now: Instant) {
        let state = &self.state;
        state.cache.maintain().await;
        let reading = self.sampler.read(now);
        let streams = state.cache.streams().snapshot();
        let gauges = Gauges {
            connections: reading.connections,
            cache_bytes: state.cache.weighted_size(),
            cpu: reading.cpu,
        };
        self.meter.observe(now, state.counters.totals(), gauges, &streams);
        // Streams no cached object refers to and that went quiet are dropped.
        let meter = &self.meter;
        state.cache.streams().prune(|name| meter.stream_bps(name) < 1.0);
        let registry = state.cache.streams();
        self.meter.retain_streams(|name| registry.contains(name));

        let load = self.meter.load();
        let published = &state.published;
        published.publish(&state.counters);
        published.egress.set(load.egress_bps as f64);
        published.request_rate.set(load.requests_per_sec);
        published.hit_ratio.set(load.cache_hit_ratio);
        published.connections.set(load.connections as f64);
        published.cpu.set(load.cpu);
        published.cache_bytes.set(load.cache_bytes as f64);
        published.cache_objects.set(state.cache.entry_count() as f64);
    }

    /// The next ad, serialized once for every router.
    fn next_ad(&mut self) -> Bytes {
        self.generation += 1;
        let state = if self.state.drain.is_draining() {
            EdgeState::Draining
        } else {
            EdgeState::Ready
        };
        let mut ad = self.config.ad(
            self.public_url.clone(),
            state,
            self.meter.load(),
            self.meter.hot_streams(self.config.hot_streams),
            &self.instance.id,
            self.instance.started_unix_ms,
        );
        ad.generation = self.generation;
        if let Err(error) = ad.validate() {
            // Measured values are clamped, so this is a bug; send it anyway
            // and let the router say no.
            tracing::error!(%error, "ad does not validate");
        }
        serde_json::to_vec(&ad).map(Bytes::from).unwrap_or_default()
    }

    fn send(&self, url: String, body: Bytes, tx: &mpsc::UnboundedSender<Event>) {
        let http = self.http.clone();
        let token = self.config.credential().unwrap_or_default();
        let timeout = self.config.ad_timeout;
        let tx = tx.clone();
        tokio::spawn(async move {
            let ok = post_ad(&http, &url, token.expose(), body, timeout).await;
            metrics::ad(ok);
            let _ = tx.send(Event::Ad { url, ok });
        });
    }

    fn discover(&mut self, tx: &mpsc::UnboundedSender<Event>) {
        let now = Instant::now();
        for url in self.peers.prune(now) {
            tracing::info!(router = %url, "forgetting a learned router that stopped answering");
        }
        let Some(url) = self.peers.discovery_target() else {
            return;
        };
        let http = self.http.clone();
        let token = self.config.credential().unwrap_or_default();
        let timeout = self.config.ad_timeout;
        let tx = tx.clone();
        tokio::spawn(async move {
            if let Some(urls) = fetch_routers(&http, &url, token.expose(), timeout).await {
                let _ = tx.send(Event::Routers { urls });
            }
        });
    }

    fn handle(&mut self, event: Event) {
        let now = Instant::now();
        match event {
            Event::Ad { url, ok } => match self.peers.observe(&url, ok, now) {
                Some(Flip::Down) => tracing::warn!(router = %url, "router stopped taking ads"),
                Some(Flip::Up) => {
                    tracing::info!(router = %url, "router takes ads again");
                    if let Some(links) = &mut self.links {
                        links.restart(&url);
                    }
                }
                None => {}
            },
            Event::Routers { urls } => {
                let added = self.peers.learn(&urls, now);
                if added > 0 {
                    tracing::info!(added, known = self.peers.all().len(), "learned routers");
                }
            }
        }
        let up = self.peers.all().iter().filter(|p| p.is_up()).count();
        self.state.published.routers_up.set(up as f64);
        self.state
            .published
            .routers_down
            .set((self.peers.all().len() - up) as f64);
    }
}

async fn post_ad(http: &reqwest::Client, router: &str, token: &str, body: Bytes, timeout: Duration) -> bool {
    let sent = http
        .post(format!("{router}/api/v1/ads"))
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .timeout(timeout)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => true,
        Ok(response) => {
            tracing::debug!(router, status = response.status().as_u16(), "ad refused");
            false
        }
        Err(error) => {
            tracing::debug!(
                router,
                timeout = error.is_timeout(),
                connect = error.is_connect(),
                "ad not delivered"
            );
            false
        }
    }
}

async fn fetch_routers(
    http: &reqwest::Client,
    router: &str,
    token: &str,
    timeout: Duration,
) -> Option<Vec<String>> {
    let sent = http
        .get(format!("{router}/api/v1/routers"))
        .bearer_auth(token)
        .timeout(timeout)
        .send()
        .await;
    let response = match sent {
        Ok(response) if response.status().is_success() => response,
        Ok(response) => {
            // 404: that router does not list peers (yet); nothing to learn.
            tracing::debug!(router, status = response.status().as_u16(), "no router list");
            return None;
        }
        Err(_) => return None,
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ROUTER_LIST_BYTES as u64)
    {
        return None;
    }
    let body = response.bytes().await.ok()?;
    if body.len() > MAX_ROUTER_LIST_BYTES {
        return None;
    }
    let urls = parse_router_list(&body);
    if urls.is_none() {
        tracing::debug!(router, "router list is not in a known shape");
    }
    urls
}

/// The router URLs in a `GET /api/v1/routers` body ([`RouterList`]: a
/// router's `RoutersView`, `{"routers":["http://…"]}` or `["http://…", …]`),
/// normalized. Entries that are not usable URLs are skipped; of the first
/// [`MAX_ROUTERS_LEARNED`] entries, the URLs are taken.
pub fn parse_router_list(body: &[u8]) -> Option<Vec<String>> {
    let list: RouterList = serde_json::from_slice(body).ok()?;
    let mut urls: Vec<String> = Vec::new();
    for raw in list
        .entries()
        .iter()
        .take(MAX_ROUTERS_LEARNED)
        .filter_map(ListedRouter::url)
    {
        if let Ok(url) = normalize_router_url(raw)
            && !urls.contains(&url)
        {
            urls.push(url);
        }
    }
    Some(urls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_lists_in_every_accepted_shape() {
        let objects = br#"{"routers":[{"url":"http://a:1/","id":"r1"},{"url":"ftp://x"},{"nourl":1},{"url":"http://b:2"}]}"#;
        assert_eq!(
            parse_router_list(objects),
            Some(vec!["http://a:1".to_owned(), "http://b:2".to_owned()])
        );
        let strings = br#"["http://a:1", "http://a:1/", "not a url", 7]"#;
        assert_eq!(parse_router_list(strings), Some(vec!["http://a:1".to_owned()]));
        assert_eq!(
            parse_router_list(br#"{"routers":["https://r.example"]}"#),
            Some(vec!["https://r.example".to_owned()])
        );
        assert_eq!(parse_router_list(b"{}"), None);
        assert_eq!(parse_router_list(b"<html>"), None);
        let info = |id: &str, url: &str| router_api::fleet::RouterInfo {
            id: id.into(),
            url: url.into(),
        };
        let view = router_api::fleet::RoutersView {
            this: info("r1", "http://a:1"),
            routers: vec![info("r1", "http://a:1"), info("r2", "http://b:2/")],
        };
        let json = serde_json::to_vec(&view).expect("json");
        assert_eq!(
            parse_router_list(&json),
            Some(vec!["http://a:1".to_owned(), "http://b:2".to_owned()]),
            "what routers answer"
        );
        let many: Vec<String> = (0..1000).map(|i| format!("http://r{i}:1")).collect();
        let json = serde_json::to_vec(&many).expect("json");
        assert_eq!(
            parse_router_list(&json).map(|v| v.len()),
            Some(MAX_ROUTERS_LEARNED)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn beats_keep_their_interval_and_skip_what_a_stall_missed() {
        const S: Duration = Duration::from_secs(1);
        let start = tokio::time::Instant::now();
        let mut schedule = Schedule::new(start, S, 5 * S);
        let mut beats = Vec::new();
        for beat in 0..6 {
            tokio::time::sleep_until(schedule.next_beat).await;
            beats.push(start.elapsed().as_millis());
            match beat {
                // A slow beat does not shift the next ones.
                0 => tokio::time::sleep(S * 3 / 10).await,
                // A stall of 2.5 intervals: the missed beats are skipped.
                2 => tokio::time::sleep(S * 5 / 2).await,
                _ => {}
            }
            schedule.beaten(tokio::time::Instant::now());
        }
        assert_eq!(beats, [0, 1000, 2000, 5500, 6500, 7500]);
    }

    #[tokio::test(start_paused = true)]
    async fn discovery_waits_its_interval_and_a_drain_moves_the_next_beat() {
        const S: Duration = Duration::from_secs(1);
        let start = tokio::time::Instant::now();
        let mut schedule = Schedule::new(start, S, 5 * S);
        assert_eq!(
            schedule.next_discovery,
            start + S,
            "the first round after one beat"
        );
        tokio::time::sleep_until(schedule.next_discovery).await;
        schedule.discovered(tokio::time::Instant::now());
        assert_eq!(schedule.next_discovery, start + 6 * S);
        tokio::time::advance(S / 4).await;
        schedule.drained(tokio::time::Instant::now());
        assert_eq!(
            schedule.next_beat,
            start + S * 9 / 4,
            "one interval after the draining ad"
        );
    }
}
