//! The object cache, and collapsing of concurrent misses into one origin
//! fetch that every waiting viewer is streamed from while it fills.
//!
//! - Entries live in a moka cache weighted by bytes, with LRU eviction (live
//!   HLS is about recency: a new segment must get in even when the cache is
//!   full of yesterday's popular ones) and a lifetime per entry: none for
//!   segments, `playlist_ttl` for playlists. Origin 404s are not stored: a
//!   404 answers only the requests that arrived before the lookup that found
//!   it was opened, later ones ask again (collapsed), and lookups that find
//!   nothing are limited by a global budget ([`crate::misses`]), so that a
//!   live segment asked for before it exists is served as soon as it does.
//! - A miss creates a [`Fill`] in the in-flight table and starts one origin
//!   fetch in its own task (a viewer hanging up does not stop it). Every
//!   request for the same key that arrives meanwhile joins that fill. A fill
//!   publishes the response head (size, ETag) as soon as the origin answers,
//!   then each body chunk as it arrives: joined viewers get their headers at
//!   once and their body as it comes, whatever byte range they asked for.
//! - Each chunk is also copied into one buffer of the declared size, which
//!   becomes the stored [`Bytes`]. The entry is stored before the final chunk
//!   is published (whoever has read a whole body then finds it cached), and
//!   only then is the fill removed from the table, so a request always finds
//!   either the entry or the fill.
//! - An object announced larger than `max_object_bytes` is not fetched: the
//!   fill ends with [`Error::TooLarge`] and the key is remembered for a minute
//!   as [`Cached::TooLarge`], so requests for it are streamed through
//!   ([`crate::passthrough`]) without asking first.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::BoxStream;
use moka::Expiry;
use moka::notification::RemovalCause;
use moka::policy::EvictionPolicy;
use origin_client::client::OriginClient;
use origin_client::media::{self, Kind};
use origin_client::path::ObjectKey;
use tokio::sync::watch;

use crate::metrics::{self, Counters};
use crate::misses::{self, Budget};
use crate::streams::Streams;
use crate::{Error, Result};

/// How long a key known to be too large to cache is remembered.
pub const TOO_LARGE_TTL: Duration = Duration::from_secs(60);
/// Lifetime of objects that are neither media nor playlists (the origin's `max-age=60`).
pub const OTHER_TTL: Duration = Duration::from_secs(60);
/// Bytes counted per entry on top of its body (key, headers, bookkeeping).
const ENTRY_OVERHEAD: usize = 256;
/// Times a lookup retries when an entry vanishes between two looks.
const LOOKUP_RETRIES: usize = 3;

/// A complete object in the cache.
pub struct Object {
    /// The whole body.
    pub body: Bytes,
    /// `Content-Type`.
    pub content_type: HeaderValue,
    /// `Cache-Control` for clients.
    pub cache_control: HeaderValue,
    /// The origin's `ETag`, quoted.
    pub etag: Option<HeaderValue>,
    /// `Content-Length` of the whole body, formatted once.
    pub content_length: HeaderValue,
    /// When it was stored (for `Age`).
    pub stored_at: Instant,
    /// How long the cache keeps it (`None`: until evicted).
    pub ttl: Option<Duration>,
    /// Egress counter of its stream.
    pub stream: Arc<AtomicU64>,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("len", &self.body.len())
            .field("content_type", &self.content_type)
            .field("etag", &self.etag)
            .finish_non_exhaustive()
    }
}

/// A cache entry.
#[derive(Debug, Clone)]
pub enum Cached {
    /// A complete object.
    Object(Arc<Object>),
    /// Larger than the cacheable limit: stream through.
    TooLarge,
}

/// What the origin said before the body.
#[derive(Debug, Clone)]
pub struct Head {
    /// The body's size, if the origin declared it.
    pub size: Option<u64>,
    /// The origin's `ETag`, quoted.
    pub etag: Option<HeaderValue>,
}

/// What a fill has so far.
#[derive(Debug, Default)]
pub struct FillState {
    head: Option<Result<Arc<Head>>>,
    chunks: Vec<Bytes>,
    done: Option<Result<Cached>>,
}

/// One origin fetch in progress, shared by every viewer waiting for it.
#[derive(Debug)]
pub struct Fill {
    state: watch::Sender<FillState>,
    /// When it was opened, on the cache's request counter.
    opened: u64,
}

impl Fill {
    fn new(opened: u64) -> Self {
        Fill {
            state: watch::channel(FillState::default()).0,
            opened,
        }
    }

    /// Whether it has ended without an object (it is about to leave the
    /// in-flight table; a new request must not join it).
    fn failed(&self) -> bool {
        matches!(self.state.borrow().done, Some(Err(_)))
    }

    fn set_head(&self, head: Head) {
        self.state.send_modify(|s| s.head = Some(Ok(Arc::new(head))));
    }

    fn push(&self, chunk: Bytes) {
        self.state.send_modify(|s| s.chunks.push(chunk));
    }

    fn finish(&self, outcome: Result<Cached>) {
        self.state.send_modify(|s| {
            if s.head.is_none() {
                s.head = Some(match &outcome {
                    Ok(Cached::Object(o)) => Ok(Arc::new(Head {
                        size: Some(o.body.len() as u64),
                        etag: o.etag.clone(),
                    })),
                    Ok(Cached::TooLarge) => Err(Error::Internal("too large".into())),
                    Err(e) => Err(e.clone()),
                });
            }
            s.done = Some(outcome);
        });
    }

    /// Waits for the origin's response head (or the fetch's failure).
    pub async fn head(&self) -> Result<Arc<Head>> {
        let mut rx = self.state.subscribe();
        loop {
            if let Some(head) = &rx.borrow_and_update().head {
                return head.clone();
            }
            rx.changed()
                .await
                .map_err(|_| Error::Internal("origin fetch vanished".into()))?;
        }
    }

    /// Waits for the fetch to end: the stored entry, or why it failed.
    pub async fn done(&self) -> Result<Cached> {
        let mut rx = self.state.subscribe();
        loop {
            if let Some(done) = &rx.borrow_and_update().done {
                return done.clone();
            }
            rx.changed()
                .await
                .map_err(|_| Error::Internal("origin fetch vanished".into()))?;
        }
    }

    /// The bytes `range` of the body, streamed as they arrive. A failed
    /// fetch ends the stream with its error (the client sees a cut body).
    pub fn body(self: Arc<Self>, range: Range<u64>) -> BoxStream<'static, Result<Bytes>> {
        struct Cursor {
            rx: watch::Receiver<FillState>,
            _fill: Arc<Fill>,
            index: usize,
            offset: u64,
            range: Range<u64>,
        }
        enum Step {
            Chunk(Bytes),
            End,
            Fail(Error),
            Wait,
        }
        let cursor = Cursor {
            rx: self.state.subscribe(),
            _fill: self,
            index: 0,
            offset: 0,
            range,
        };
        futures::stream::unfold(Some(cursor), |cursor| async move {
            let mut c = cursor?;
            loop {
                if c.offset >= c.range.end {
                    return None;
                }
                let step = {
                    let s = c.rx.borrow_and_update();
                    match (s.chunks.get(c.index), &s.done) {
                        (Some(chunk), _) => Step::Chunk(chunk.clone()),
                        (None, Some(Ok(_))) => Step::End,
                        (None, Some(Err(e))) => Step::Fail(e.clone()),
                        (None, None) => Step::Wait,
                    }
                };
                match step {
                    Step::Chunk(chunk) => {
                        c.index += 1;
                        let start = c.offset;
                        c.offset += chunk.len() as u64;
                        let from = c.range.start.max(start);
                        let to = c.range.end.min(c.offset);
                        if from < to {
                            let piece = chunk.slice((from - start) as usize..(to - start) as usize);
                            return Some((Ok(piece), Some(c)));
                        }
                    }
                    Step::End => return None,
                    Step::Fail(e) => return Some((Err(e), None)),
                    Step::Wait => {
                        if c.rx.changed().await.is_err() {
                            return Some((Err(Error::Internal("origin fetch vanished".into())), None));
                        }
                    }
                }
            }
        })
        .boxed()
    }
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// A stored entry.
    Hit(Cached),
    /// An origin fetch in progress, started by this request (`leader`) or joined.
    Miss {
        /// The fetch.
        fill: Arc<Fill>,
        /// Whether this request started it.
        leader: bool,
    },
    /// Not held, and the budget of origin lookups is spent: answer 503
    /// without asking the origin.
    OverBudget,
}

/// What to fetch on a miss.
#[derive(Debug, Clone)]
pub struct FetchSpec {
    /// The object.
    pub key: ObjectKey,
    /// Query passed to the origin (playlists only).
    pub query: Option<String>,
    /// Its kind.
    pub kind: Kind,
    /// Its `Content-Type`.
    pub content_type: &'static str,
}

/// Cache settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Total weight, bytes.
    pub capacity_bytes: u64,
    /// Largest cacheable object.
    pub max_object_bytes: u64,
    /// Origin lookups that find nothing, per second (and in a burst).
    pub miss_lookups_per_sec: u32,
    /// Lifetime of a cached playlist (zero: not cached).
    pub playlist_ttl: Duration,
    /// Origin timeout: response head, and between body chunks.
    pub origin_timeout: Duration,
}

struct Lifetimes;

impl Lifetimes {
    fn of(&self, value: &Cached) -> Option<Duration> {
        match value {
            Cached::Object(o) => o.ttl,
            Cached::TooLarge => Some(TOO_LARGE_TTL),
        }
    }
}

impl Expiry<String, Cached> for Lifetimes {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Cached,
        _at: std::time::Instant,
    ) -> Option<Duration> {
        self.of(value)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Cached,
        _at: std::time::Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        self.of(value)
    }
}

fn weight(key: &str, value: &Cached) -> u32 {
    let body = match value {
        Cached::Object(o) => o.body.len(),
        Cached::TooLarge => 0,
    };
    u32::try_from(body + key.len() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
}

struct Inner {
    entries: moka::future::Cache<String, Cached>,
    inflight: Mutex<HashMap<String, Arc<Fill>>>,
    /// Request counter: arrivals and fill openings, in order.
    seq: AtomicU64,
    budget: Mutex<Budget>,
    counters: Arc<Counters>,
    origin: OriginClient,
    settings: Settings,
    streams: Arc<Streams>,
}

/// The edge's cache of origin objects.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("settings", &self.inner.settings)
            .field("entries", &self.inner.entries.entry_count())
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// An empty cache in front of `origin`.
    pub fn new(
        origin: OriginClient,
        settings: Settings,
        streams: Arc<Streams>,
        counters: Arc<Counters>,
    ) -> Self {
        let entries = moka::future::Cache::builder()
            .max_capacity(settings.capacity_bytes)
            .weigher(|key: &String, value: &Cached| weight(key, value))
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(Lifetimes)
            .eviction_listener({
                let counters = counters.clone();
                move |_key, _value, cause| {
                    if cause == RemovalCause::Size {
                        Counters::add(&counters.evictions, 1);
                    }
                }
            })
            .build();
        Cache {
            inner: Arc::new(Inner {
                entries,
                inflight: Mutex::new(HashMap::new()),
                seq: AtomicU64::new(0),
                budget: Mutex::new(Budget::new(settings.miss_lookups_per_sec)),
                counters,
                origin,
                settings,
                streams,
            }),
        }
    }

    /// The origin this cache fetches from.
    pub fn origin(&self) -> &OriginClient {
        &self.inner.origin
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The per-stream egress counters.
    pub fn streams(&self) -> &Arc<Streams> {
        &self.inner.streams
    }

    /// Bytes held (weights, as of the last maintenance).
    pub fn weighted_size(&self) -> u64 {
        self.inner.entries.weighted_size()
    }

    /// Objects held (as of the last maintenance).
    pub fn entry_count(&self) -> u64 {
        self.inner.entries.entry_count()
    }

    /// Applies pending evictions and expirations, so sizes are current.
    pub async fn maintain(&self) {
        self.inner.entries.run_pending_tasks().await;
    }

    /// Finds `cache_key`: a stored entry, or a fetch to wait on (started
    /// with `spec()` if none is in progress and the budget allows one).
    ///
    /// A request that joins a fetch opened before it arrived waits for the
    /// origin's answer here: if it is 404, that answer may be older than the
    /// object (a live segment published meanwhile), so the request looks
    /// again, joining or opening a newer fetch ([`misses::not_found_answers`]).
    pub async fn lookup(&self, cache_key: &str, spec: impl FnOnce() -> FetchSpec) -> Lookup {
        enum Found {
            Joined(Arc<Fill>),
            Started(Arc<Fill>),
            OverBudget,
        }
        let inner = &self.inner;
        let arrived = inner.seq.fetch_add(1, Ordering::SeqCst);
        let mut attempts = 0;
        loop {
            if let Some(hit) = inner.entries.get(cache_key).await {
                return Lookup::Hit(hit);
            }
            let found = {
                let mut inflight = inner.inflight.lock().unwrap_or_else(PoisonError::into_inner);
                match inflight.get(cache_key) {
                    // A fill that already failed is leaving the table: open a new one.
                    Some(fill) if !fill.failed() => Found::Joined(fill.clone()),
                    _ => {
                        attempts += 1;
                        // Stored between the two looks (its fill already gone): look again.
                        if attempts <= LOOKUP_RETRIES && inner.entries.contains_key(cache_key) {
                            continue;
                        }
                        let allowed = inner
                            .budget
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .try_take(Instant::now());
                        if allowed {
                            let fill = Arc::new(Fill::new(inner.seq.fetch_add(1, Ordering::SeqCst)));
                            inflight.insert(cache_key.to_owned(), fill.clone());
                            Found::Started(fill)
                        } else {
                            Found::OverBudget
                        }
                    }
                }
            };
            match found {
                Found::OverBudget => {
                    Counters::add(&inner.counters.over_budget, 1);
                    return Lookup::OverBudget;
                }
                Found::Started(fill) => {
                    tokio::spawn(inner.clone().run_fill(fill.clone(), cache_key.to_owned(), spec()));
                    return Lookup::Miss { fill, leader: true };
                }
                Found::Joined(fill) => {
                    if misses::not_found_answers(fill.opened, arrived)
                        || !matches!(fill.head().await, Err(Error::NotFound))
                    {
                        return Lookup::Miss { fill, leader: false };
                    }
                    // Opened before this request and found nothing: ask again.
                    Counters::add(&inner.counters.revalidated, 1);
                }
            }
        }
    }
}

impl Inner {
    async fn run_fill(self: Arc<Self>, fill: Arc<Fill>, cache_key: String, spec: FetchSpec) {
        let started = Instant::now();
        // The fetch runs in its own task so that a panic in it still ends
        // the fill (with an error) instead of leaving waiters hanging.
        let fetch = {
            let inner = self.clone();
            let fill = fill.clone();
            tokio::spawn(async move { inner.fetch(&fill, &spec).await })
        };
        let (outcome, last_chunk) = match fetch.await {
            Ok(Ok((cached, last_chunk))) => (Ok(cached), last_chunk),
            Ok(Err(e)) => (Err(e), None),
            Err(e) => (Err(Error::Internal(format!("origin fetch task: {e}"))), None),
        };
        let label = match &outcome {
            Ok(_) => "ok",
            Err(Error::NotFound) => "not_found",
            Err(Error::TooLarge { .. }) => "too_large",
            Err(_) => "error",
        };
        metrics::origin_fetch(label, started.elapsed().as_secs_f64());
        if let Err(error) = &outcome
            && !matches!(error, Error::NotFound | Error::TooLarge { .. })
        {
            tracing::warn!(key = %cache_key, %error, "origin fetch failed");
        }
        let entry = match &outcome {
            Ok(Cached::Object(o)) if o.ttl.is_none_or(|ttl| !ttl.is_zero()) => {
                Some(Cached::Object(o.clone()))
            }
            Err(Error::TooLarge { .. }) => Some(Cached::TooLarge),
            _ => None,
        };
        let stored = entry.is_some();
        if let Some(entry) = entry {
            self.entries.insert(cache_key.clone(), entry).await;
        }
        // Viewers get the last bytes only now: whoever has read a whole body
        // finds the object stored when they ask again.
        if let Some(chunk) = last_chunk {
            fill.push(chunk);
        }
        fill.finish(outcome);
        {
            let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
            if inflight.get(&cache_key).is_some_and(|f| Arc::ptr_eq(f, &fill)) {
                inflight.remove(&cache_key);
            }
        }
        if stored {
            // Evict now rather than at some later read, so memory stays
            // within the configured size while objects pour in.
            self.entries.run_pending_tasks().await;
        }
    }

    /// Fetches the object, publishing its head and chunks to `fill`, except
    /// the final chunk of a body of declared length, which is returned for
    /// [`Inner::run_fill`] to publish once the object is stored.
    async fn fetch(&self, fill: &Fill, spec: &FetchSpec) -> Result<(Cached, Option<Bytes>)> {
        let settings = &self.settings;
        let limit = settings.max_object_bytes;
        let fetched = self
            .origin
            .get(&spec.key, spec.query.as_deref(), settings.origin_timeout)
            .await?;
        // The object exists: this lookup does not count against the budget.
        self.budget
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .refund(Instant::now());
        if fetched.size.is_some_and(|n| n > limit) {
            return Err(Error::TooLarge { limit });
        }
        let etag = fetched.etag.as_deref().and_then(quoted_etag);
        let size = fetched.size;
        fill.set_head(Head {
            size,
            etag: etag.clone(),
        });
        let mut body = fetched.body;
        let capacity = usize::try_from(size.unwrap_or(0)).unwrap_or(0);
        let mut buf = BytesMut::with_capacity(capacity);
        let mut last_chunk = None;
        loop {
            let next = tokio::time::timeout(settings.origin_timeout, body.next())
                .await
                .map_err(|_| Error::Timeout)?;
            let Some(chunk) = next else { break };
            let chunk = chunk?;
            // HTTP/2 may end a body with an empty DATA frame, after the
            // last bytes: it must not take the place of the final chunk.
            if chunk.is_empty() {
                continue;
            }
            let total = (buf.len() + chunk.len()) as u64;
            if total > limit {
                return Err(Error::TooLarge { limit });
            }
            if size.is_some_and(|n| total > n) {
                return Err(Error::BadBody("longer than its Content-Length".into()));
            }
            buf.extend_from_slice(&chunk);
            if size == Some(total) {
                last_chunk = Some(chunk);
            } else {
                fill.push(chunk);
            }
        }
        if size.is_some_and(|n| n != buf.len() as u64) {
            return Err(Error::BadBody("shorter than its Content-Length".into()));
        }
        // A body of unknown length grew by doubling: keep it without the slack.
        let body = if buf.capacity() - buf.len() > buf.len() / 8 + 4096 {
            Bytes::copy_from_slice(&buf)
        } else {
            buf.freeze()
        };
        let (cache_control, ttl) = match spec.kind {
            Kind::Playlist => (
                media::cache_control(Kind::Playlist, Some(&body)),
                Some(settings.playlist_ttl),
            ),
            Kind::Media => (media::cache_control(Kind::Media, None), None),
            Kind::Other => (media::cache_control(Kind::Other, None), Some(OTHER_TTL)),
        };
        let object = Object {
            content_length: HeaderValue::from(body.len()),
            body,
            content_type: HeaderValue::from_static(spec.content_type),
            cache_control: HeaderValue::from_static(cache_control),
            etag,
            stored_at: Instant::now(),
            ttl,
            stream: self.streams.counter(spec.key.as_str()),
        };
        Ok((Cached::Object(Arc::new(object)), last_chunk))
    }
}

/// An origin `ETag` as a header value, quoted when the origin left it bare
/// (object stores do).
pub fn quoted_etag(raw: &str) -> Option<HeaderValue> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    if raw.starts_with('"') || raw.starts_with("W/") {
        HeaderValue::from_str(raw).ok()
    } else {
        HeaderValue::from_str(&format!("\"{raw}\"")).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

    async fn cache_over(store: Arc<InMemory>, settings: Settings) -> Cache {
        Cache::new(
            OriginClient::Store(store as Arc<dyn ObjectStore>),
            settings,
            Arc::new(Streams::default()),
            Arc::new(Counters::default()),
        )
    }

    fn settings() -> Settings {
        Settings {
            capacity_bytes: 10 << 20,
            max_object_bytes: 1 << 20,
            miss_lookups_per_sec: 100,
            playlist_ttl: Duration::from_secs(1),
            origin_timeout: Duration::from_secs(5),
        }
    }

    fn spec(key: &str) -> FetchSpec {
        let key = ObjectKey::from_key(key).expect("key");
        let (kind, content_type) = media::classify(key.extension());
        FetchSpec {
            key,
            query: None,
            kind,
            content_type,
        }
    }

    async fn put(store: &InMemory, key: &str, body: Vec<u8>) {
        store
            .put(&object_store::path::Path::from(key), PutPayload::from(body))
            .await
            .expect("put");
    }

    #[tokio::test]
    async fn misses_collapse_and_fill_the_cache() {
        let store = Arc::new(InMemory::new());
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        put(&store, "s/r/1.ts", body.clone()).await;
        let cache = cache_over(store, settings()).await;
        let mut fills = Vec::new();
        for _ in 0..20 {
            match cache.lookup("s/r/1.ts", || spec("s/r/1.ts")).await {
                Lookup::Miss { fill, leader } => fills.push((fill, leader)),
                Lookup::Hit(_) | Lookup::OverBudget => {}
            }
        }
        assert_eq!(fills.iter().filter(|(_, leader)| *leader).count(), 1, "one fetch");
        for (fill, _) in fills {
            let head = fill.head().await.expect("head");
            assert_eq!(head.size, Some(300_000));
            assert!(head.etag.is_some());
            let part: Vec<Bytes> = fill
                .clone()
                .body(1000..200_000)
                .map(|c| c.expect("chunk"))
                .collect()
                .await;
            assert_eq!(part.concat(), &body[1000..200_000]);
            assert!(matches!(fill.done().await, Ok(Cached::Object(_))));
        }
        match cache.lookup("s/r/1.ts", || spec("s/r/1.ts")).await {
            Lookup::Hit(Cached::Object(o)) => assert_eq!(o.body.as_ref(), body.as_slice()),
            other => panic!("expected a hit, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_404_is_never_remembered_and_too_large_is_for_a_minute() {
        let store = Arc::new(InMemory::new());
        put(&store, "big.ts", vec![0; 2 << 20]).await;
        let cache = cache_over(store.clone(), settings()).await;
        let Lookup::Miss { fill, .. } = cache.lookup("a.ts", || spec("a.ts")).await else {
            panic!("miss expected");
        };
        assert!(matches!(fill.head().await, Err(Error::NotFound)));
        // Published right after the 404: the next request gets it.
        put(&store, "a.ts", vec![1; 10]).await;
        let Lookup::Miss { fill, leader } = cache.lookup("a.ts", || spec("a.ts")).await else {
            panic!("a 404 is not stored: miss expected");
        };
        assert!(leader);
        assert!(matches!(fill.done().await, Ok(Cached::Object(_))));

        let Lookup::Miss { fill, .. } = cache.lookup("big.ts", || spec("big.ts")).await else {
            panic!("miss expected");
        };
        assert!(matches!(fill.head().await, Err(Error::TooLarge { .. })));
        assert!(matches!(
            cache.lookup("big.ts", || spec("big.ts")).await,
            Lookup::Hit(Cached::TooLarge)
        ));
    }

    #[tokio::test]
    async fn lookups_that_find_nothing_are_budgeted_and_found_ones_are_not() {
        let store = Arc::new(InMemory::new());
        let mut s = settings();
        s.miss_lookups_per_sec = 10;
        let cache = cache_over(store.clone(), s).await;
        let mut over = 0;
        for i in 0..30 {
            let key = format!("s/r/missing-{i}.ts");
            match cache.lookup(&key, || spec(&key)).await {
                Lookup::Miss { fill, .. } => assert!(matches!(fill.done().await, Err(Error::NotFound))),
                Lookup::OverBudget => over += 1,
                Lookup::Hit(_) => panic!("nothing is stored"),
            }
        }
        assert!((19..=20).contains(&over), "10 lookups, then 503s: {over}");
        // Found objects give their token back: a spent budget recovers at
        // its rate and is not spent by them.
        tokio::time::sleep(Duration::from_millis(250)).await;
        for i in 0..10 {
            let key = format!("s/r/{i}.ts");
            put(&store, &key, vec![1; 100]).await;
            let Lookup::Miss { fill, .. } = cache.lookup(&key, || spec(&key)).await else {
                panic!("within the budget: miss expected");
            };
            assert!(matches!(fill.done().await, Ok(Cached::Object(_))));
        }
    }

    #[tokio::test]
    async fn a_request_joining_an_earlier_lookup_that_found_nothing_asks_again() {
        let store = Arc::new(InMemory::new());
        let cache = cache_over(store.clone(), settings()).await;
        // A lookup opened before the object is published is in flight; a
        // viewer arrives after publication and joins it.
        let earlier = Arc::new(Fill::new(cache.inner.seq.fetch_add(1, Ordering::SeqCst)));
        cache
            .inner
            .inflight
            .lock()
            .expect("lock")
            .insert("s/r/7.ts".into(), earlier.clone());
        put(&store, "s/r/7.ts", vec![7; 1000]).await;
        let viewer = {
            let cache = cache.clone();
            tokio::spawn(async move {
                match cache.lookup("s/r/7.ts", || spec("s/r/7.ts")).await {
                    Lookup::Miss { fill, .. } => fill.done().await.map(|_| ()),
                    other => panic!("miss expected, got {other:?}"),
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The earlier lookup ends in 404 and leaves the table.
        earlier.finish(Err(Error::NotFound));
        cache.inner.inflight.lock().expect("lock").remove("s/r/7.ts");
        let got = viewer.await.expect("viewer task");
        assert!(got.is_ok(), "the viewer asked again and got the object: {got:?}");
    }

    #[tokio::test]
    async fn size_is_bounded_by_eviction() {
        let store = Arc::new(InMemory::new());
        let mut s = settings();
        s.capacity_bytes = 1 << 20;
        let cache = cache_over(store.clone(), s).await;
        for i in 0..10 {
            let key = format!("s/r/{i}.ts");
            put(&store, &key, vec![i as u8; 200_000]).await;
            let Lookup::Miss { fill, .. } = cache.lookup(&key, || spec(&key)).await else {
                panic!("miss expected");
            };
            fill.done().await.expect("stored");
        }
        cache.maintain().await;
        assert!(cache.weighted_size() <= 1 << 20, "{}", cache.weighted_size());
        assert!(cache.entry_count() >= 4);
        // LRU: the newest object is there.
        assert!(matches!(
            cache.lookup("s/r/9.ts", || spec("s/r/9.ts")).await,
            Lookup::Hit(_)
        ));
    }

    proptest::proptest! {
        /// However the origin chunks a body, and whether a viewer joins
        /// before or after the chunks arrive, any range read from a fill is
        /// exactly those bytes of the body.
        #[test]
        fn fill_ranges_are_exact(
            cuts in proptest::collection::vec(0usize..5000, 0..12),
            a in 0u64..6000,
            b in 0u64..6000,
            early in proptest::bool::ANY,
        ) {
            let body: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
            let mut cuts = cuts;
            cuts.extend([0, body.len()]);
            cuts.sort_unstable();
            cuts.dedup();
            let range = a.min(b)..a.max(b).min(body.len() as u64);
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let got = runtime.block_on(async {
                let fill = Arc::new(Fill::new(0));
                fill.set_head(Head { size: Some(body.len() as u64), etag: None });
                let reader = early.then(|| fill.clone().body(range.clone()));
                for w in cuts.windows(2) {
                    fill.push(Bytes::copy_from_slice(&body[w[0]..w[1]]));
                }
                fill.finish(Ok(Cached::TooLarge));
                let reader = reader.unwrap_or_else(|| fill.clone().body(range.clone()));
                let parts: Vec<Bytes> = reader.map(|c| c.expect("chunk")).collect().await;
                parts.concat()
            });
            let expected = body.get(range.start as usize..range.end as usize).unwrap_or(&[]);
            proptest::prop_assert_eq!(got.as_slice(), expected);
        }
    }

    #[test]
    fn etags_are_quoted() {
        assert_eq!(quoted_etag("abc").expect("etag"), "\"abc\"");
        assert_eq!(quoted_etag("\"abc\"").expect("etag"), "\"abc\"");
        assert_eq!(quoted_etag("W/\"abc\"").expect("etag"), "W/\"abc\"");
        assert!(quoted_etag(" ").is_none());
    }
}
