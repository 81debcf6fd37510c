//! The catalog behind `GET /api/v1/streams`, shared between callers.
//!
//! Listing a store is its most expensive read: a walk of the whole tree on
//! a disk, one request per 1 000 keys on S3. Anyone may ask for the catalog,
//! so its cost must not grow with the number of callers:
//!
//! - At most one listing runs at a time. Callers that arrive while one runs
//!   share it: they wait for it when there is no catalog yet, and otherwise
//!   get the catalog in hand.
//! - A listing's answer is fresh for `refresh` after the listing ended, or
//!   for as long as the listing took if that is longer, so a slow store is
//!   never listed more than half the time. A call after that gets the
//!   catalog in hand at once and starts one listing in the background.
//! - A failed listing is remembered as long: a failing store is asked once
//!   per period, not once per call (the last good catalog is still served).
//! - A listing stops after `max_objects` keys, or when the store takes
//!   longer than [`STORE_TIMEOUT`] with some keys in hand, and the answer
//!   says `"truncated": true`. On S3 one listing thus costs at most
//!   ⌈`max_objects` / 1000⌉ requests, at most once per `refresh`.
//!
//! The answer is serialized once per listing and shared as bytes.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::ObjectStore;
use serde::Serialize;
use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;

use crate::http::STORE_TIMEOUT;
use crate::{Error, Result, catalog, metrics};

/// Default time a listing stays fresh: 5 s.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(5);
/// Default most keys one listing reads: 100 000 (100 requests on S3).
pub const DEFAULT_MAX_OBJECTS: usize = 100_000;

/// How the catalog is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogSettings {
    /// How long a listing's answer is served before the store is listed again.
    pub refresh: Duration,
    /// Most keys one listing reads before it stops and says `truncated`.
    pub max_objects: usize,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self {
            refresh: DEFAULT_REFRESH,
            max_objects: DEFAULT_MAX_OBJECTS,
        }
    }
}

/// One listing's outcome, ready to send.
#[derive(Debug)]
pub struct Listing {
    /// The JSON answer: `{"streams":[...],"truncated":false}`.
    pub body: Bytes,
    /// Streams found.
    pub streams: usize,
    /// Keys read.
    pub objects: usize,
    /// Whether the listing stopped before the end of the store.
    pub truncated: bool,
}

/// Why a listing failed, kept to answer the callers of its period.
#[derive(Debug, Clone)]
enum Failure {
    Timeout,
    Store(String),
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Timeout => Error::Timeout,
            Failure::Store(reason) => Error::Store(object_store::Error::Generic {
                store: "catalog",
                source: reason.into(),
            }),
        }
    }
}

/// The last listing's outcome.
#[derive(Debug, Default)]
struct Last {
    /// The newest catalog listed.
    good: Option<Arc<Listing>>,
    /// Whether the newest attempt failed, and how.
    failure: Option<Failure>,
    /// When the newest attempt's outcome stops being fresh.
    fresh_until: Option<Instant>,
}

/// What a call finds.
#[derive(Debug)]
enum Found {
    /// A fresh catalog: serve it.
    Fresh(Arc<Listing>),
    /// A fresh failure and nothing to fall back on: answer it.
    Failed(Failure),
    /// A catalog past its period: serve it, and list again.
    Stale(Arc<Listing>),
    /// Nothing usable: list, and wait for it.
    Nothing,
}

impl Last {
    /// What a call at `now` finds. Pure.
    fn find(&self, now: Instant) -> Found {
        let fresh = self.fresh_until.is_some_and(|until| now < until);
        match (&self.good, &self.failure) {
            (Some(good), _) if fresh => Found::Fresh(good.clone()),
            (Some(good), _) => Found::Stale(good.clone()),
            (None, Some(failure)) if fresh => Found::Failed(failure.clone()),
            (None, _) => Found::Nothing,
        }
    }
}

/// The shared catalog of one store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CatalogCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn ObjectStore>,
    settings: CatalogSettings,
    /// Held for the whole of a listing: one at a time.
    listing: Arc<tokio::sync::Mutex<()>>,
    last: Mutex<Last>,
    /// Listings started, for tests (the metric is process-wide).
    listings: std::sync::atomic::AtomicU64,
}

impl CatalogCache {
    /// A cache over `store`; nothing is listed before the first call.
    pub fn new(store: Arc<dyn ObjectStore>, settings: CatalogSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                settings,
                listing: Arc::new(tokio::sync::Mutex::new(())),
                last: Mutex::new(Last::default()),
                listings: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// How many listings this cache has started.
    pub fn listings(&self) -> u64 {
        self.inner.listings.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The catalog: the one in hand while fresh, else the one in hand while a
    /// new listing runs in the background, else (first call, or after a
    /// failure's period) the outcome of a listing, shared with every caller
    /// that arrives meanwhile.
    pub async fn get(&self) -> Result<Arc<Listing>> {
        if let Some(answer) = self.answer(self.inner.find(Instant::now())) {
            return answer;
        }
        // Nothing in hand: wait for the listing in flight, or start one.
        let guard = self.inner.listing.clone().lock_owned().await;
        if let Some(answer) = self.answer(self.inner.find(Instant::now())) {
            return answer;
        }
        // A task of its own: a caller that hangs up does not cancel it.
        tokio::spawn(list(self.inner.clone(), guard))
            .await
            .map_err(|e| Error::Internal(format!("catalog task: {e}")))?
            .map_err(Error::from)
    }

    /// The answer for what a call found; `None` when it must wait for a listing.
    fn answer(&self, found: Found) -> Option<Result<Arc<Listing>>> {
        match found {
            Found::Fresh(listing) => Some(Ok(listing)),
            Found::Failed(failure) => Some(Err(failure.into())),
            Found::Stale(listing) => {
                // One listing at a time: if one runs, it is the refresh.
                if let Ok(guard) = self.inner.listing.clone().try_lock_owned() {
                    let inner = self.inner.clone();
                    tokio::spawn(async move {
                        // Another caller's listing may have ended just now.
                        if matches!(inner.find(Instant::now()), Found::Stale(_)) {
                            let _ = list(inner, guard).await;
                        }
                    });
                }
                Some(Ok(listing))
            }
            Found::Nothing => None,
        }
    }
}

impl Inner {
    fn find(&self, now: Instant) -> Found {
        self.last.lock().unwrap_or_else(PoisonError::into_inner).find(now)
    }
}

/// Lists the store (holding `_guard`, the one-at-a-time lock) and records the outcome.
async fn list(inner: Arc<Inner>, _guard: OwnedMutexGuard<()>) -> Result<Arc<Listing>, Failure> {
    inner.listings.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ::metrics::counter!(metrics::CATALOG_LISTINGS).increment(1);
    let started = Instant::now();
    let outcome = read_catalog(
        inner.store.as_ref(),
        inner.settings.max_objects,
        started + STORE_TIMEOUT,
    )
    .await;
    let took = started.elapsed();
    metrics::store_latency("list", took);
    let fresh_until = Instant::now() + inner.settings.refresh.max(took);
    let mut last = inner.last.lock().unwrap_or_else(PoisonError::into_inner);
    last.fresh_until = Some(fresh_until);
    match outcome {
        Ok(listing) => {
            let listing = Arc::new(listing);
            if listing.truncated {
                tracing::warn!(
                    objects = listing.objects,
                    streams = listing.streams,
                    took_ms = took.as_millis() as u64,
                    "catalog listing truncated"
                );
            } else {
                tracing::debug!(
                    objects = listing.objects,
                    streams = listing.streams,
                    took_ms = took.as_millis() as u64,
                    "catalog listed"
                );
            }
            last.good = Some(listing.clone());
            last.failure = None;
            Ok(listing)
        }
        Err(failure) => {
            tracing::warn!(error = ?failure, "catalog listing failed");
            last.failure = Some(failure.clone());
            Err(failure)
        }
    }
}

/// Whether `key` names a playlist (what [`catalog::streams`] keeps).
fn is_playlist(key: &str) -> bool {
    let bytes = key.as_bytes();
    bytes.len() >= 5 && bytes[bytes.len() - 5..].eq_ignore_ascii_case(b".m3u8")
}

/// Reads at most `max_objects` keys before `deadline` and builds the answer.
async fn read_catalog(
    store: &dyn ObjectStore,
    max_objects: usize,
    deadline: Instant,
) -> Result<Listing, Failure> {
    let mut keys = store.list(None);
    let mut playlists = Vec::new();
    let mut objects = 0usize;
    let mut truncated = false;
    loop {
        let next = match tokio::time::timeout_at(deadline, keys.next()).await {
            Ok(next) => next,
            // Out of time: what was read is the catalog, unless nothing was.
            Err(_) if objects > 0 => {
                truncated = true;
                break;
            }
            Err(_) => return Err(Failure::Timeout),
        };
        let Some(meta) = next else { break };
        let meta = meta.map_err(|e| Failure::Store(runtime::secret::redact_url(&e.to_string())))?;
        if objects == max_objects {
            truncated = true;
            break;
        }
        objects += 1;
        let key: &str = meta.location.as_ref();
        if is_playlist(key) {
            playlists.push(key.to_owned());
        }
    }
    let streams = catalog::streams(playlists.iter().map(String::as_str));
    #[derive(Serialize)]
    struct Answer<'a> {
        streams: &'a [catalog::Stream],
        truncated: bool,
    }
    let body = serde_json::to_vec(&Answer {
        streams: &streams,
        truncated,
    })
    .map_err(|e| Failure::Store(format!("serializing the catalog: {e}")))?;
    Ok(Listing {
        body: Bytes::from(body),
        streams: streams.len(),
        objects,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;

    async fn store_with(keys: &[&str]) -> Arc<dyn ObjectStore> {
        let store = Arc::new(InMemory::new());
        for key in keys {
            store
                .put(&Path::from(*key), PutPayload::from_static(b"x"))
                .await
                .expect("put");
        }
        store
    }

    fn text(listing: &Listing) -> &str {
        std::str::from_utf8(&listing.body).expect("utf-8")
    }

    #[test]
    fn what_a_call_finds() {
        let now = Instant::now();
        let listing = Arc::new(Listing {
            body: Bytes::new(),
            streams: 0,
            objects: 0,
            truncated: false,
        });
        let at = |good: bool, failure: bool, until: Option<Instant>| Last {
            good: good.then(|| listing.clone()),
            failure: failure.then_some(Failure::Timeout),
            fresh_until: until,
        };
        let later = Some(now + Duration::from_secs(1));
        let past = Some(now);
        assert!(matches!(Last::default().find(now), Found::Nothing));
        assert!(matches!(at(true, false, later).find(now), Found::Fresh(_)));
        assert!(matches!(at(true, false, past).find(now), Found::Stale(_)));
        // After a failure the last good catalog is still served.
        assert!(matches!(at(true, true, later).find(now), Found::Fresh(_)));
        assert!(matches!(at(false, true, later).find(now), Found::Failed(_)));
        assert!(matches!(at(false, true, past).find(now), Found::Nothing));
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_listing() {
        let store = store_with(&["live/a/index.m3u8", "live/a/seg-1.ts", "vod/b/master.m3u8"]).await;
        let cache = CatalogCache::new(store, CatalogSettings::default());
        let calls: Vec<_> = (0..32)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.get().await })
            })
            .collect();
        for call in calls {
            let listing = call.await.expect("task").expect("catalog");
            assert_eq!(listing.streams, 2);
            assert_eq!(listing.objects, 3);
        }
        assert_eq!(cache.listings(), 1);
        let listing = cache.get().await.expect("catalog");
        assert_eq!(
            text(&listing),
            r#"{"streams":[{"name":"live/a","master":null,"playlists":["live/a/index.m3u8"]},{"name":"vod/b","master":"vod/b/master.m3u8","playlists":["vod/b/master.m3u8"]}],"truncated":false}"#
        );
        assert_eq!(cache.listings(), 1);
    }

    #[tokio::test]
    async fn refreshed_in_the_background_after_its_period() {
        let store = store_with(&["live/a/index.m3u8"]).await;
        let settings = CatalogSettings {
            refresh: Duration::from_secs(1),
            max_objects: 100,
        };
        let cache = CatalogCache::new(store.clone(), settings);
        assert_eq!(cache.get().await.expect("catalog").streams, 1);
        store
            .put(&Path::from("live/b/index.m3u8"), PutPayload::from_static(b"x"))
            .await
            .expect("put");
        assert_eq!(cache.get().await.expect("catalog").streams, 1, "still fresh");
        assert_eq!(cache.listings(), 1);
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        // Past its period: the catalog in hand at once, one listing behind it.
        assert_eq!(cache.get().await.expect("catalog").streams, 1, "stale, at once");
        let started = Instant::now();
        while cache.get().await.expect("catalog").streams == 1 {
            assert!(started.elapsed() < Duration::from_secs(5), "not refreshed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(cache.listings(), 2);
    }

    #[tokio::test]
    async fn a_listing_stops_at_max_objects_and_says_so() {
        let keys: Vec<String> = (0..5).map(|i| format!("s{i}/index.m3u8")).collect();
        let store = store_with(&keys.iter().map(String::as_str).collect::<Vec<_>>()).await;
        for (max_objects, truncated, streams) in [(3, true, 3), (5, false, 5), (6, false, 5)] {
            let settings = CatalogSettings {
                refresh: DEFAULT_REFRESH,
                max_objects,
            };
            let listing = CatalogCache::new(store.clone(), settings)
                .get()
                .await
                .expect("catalog");
            assert_eq!(listing.truncated, truncated, "max {max_objects}");
            assert_eq!(listing.streams, streams, "max {max_objects}");
            assert!(text(&listing).ends_with(&format!(",\"truncated\":{truncated}}}")));
        }
    }
}
