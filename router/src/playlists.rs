//! Origin playlists, fetched once and kept as rewrite templates.
//!
//! A `moka` cache keyed by the object key and the query passed to the origin
//! (one string, `key` or `key\nquery`: a key holds no control character):
//! only the `_HLS_*` delivery directives of blocking and delta reloads
//! ([`origin_client::query::playlist_query`]); every other parameter the
//! player sent is dropped, so that `?b=1`, `?b=2`, … cannot fill the cache or
//! reach the origin. Concurrent misses for one key collapse into one origin
//! fetch. Each entry lives as long as its kind allows:
//!
//! | playlist | kept for |
//! |---|---|
//! | live media playlist | half a target duration (half a part target with LL-HLS) |
//! | ended (VOD) media playlist | `vod_cache` (default 10 min) |
//! | multivariant playlist | `master_cache` (default 5 s) |
//!
//! The cache is bounded by the memory its entries hold (256 MiB, and 64 MiB
//! for the last-good copies), not by their count: each entry weighs its key,
//! its template and its ACL (a 5000-segment VOD weighs about as much as 800
//! live playlists), and the last-good map weighs its own copy of the key and
//! the template it keeps alive.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use moka::Expiry;
use origin_client::client::OriginClient;
use origin_client::path::ObjectKey;

use crate::error::Error;
use crate::metrics;
use crate::rendered::Renderings;
use crate::rewrite::{self, PlaylistKind, ScanOptions, Template};

/// Live playlists are never kept longer than this, whatever their target duration says.
const MAX_LIVE_TTL: Duration = Duration::from_secs(5);
/// Nor shorter than this, so a burst of viewers still shares one fetch.
const MIN_LIVE_TTL: Duration = Duration::from_millis(100);
/// Longest a last good playlist is served while the origin fails.
const MAX_STALE: Duration = Duration::from_secs(30);
/// Memory the cached playlists may hold, in bytes.
const MAX_CACHE_BYTES: u64 = 256 * 1024 * 1024;
/// Memory the variant bandwidth map may hold, in bytes.
const MAX_BANDWIDTH_BYTES: u64 = 16 * 1024 * 1024;
/// What a cache entry costs beyond its key and value bytes (moka's node,
/// the `Arc`, the deque and hash slots), roughly.
const ENTRY_OVERHEAD_BYTES: usize = 256;

/// A scanned playlist and what the router derives from it once.
#[derive(Debug)]
pub struct Playlist {
    /// The rewrite template.
    pub template: Template,
    /// The token ACL covering every media URI of the playlist (`/dir/*`).
    pub media_acl: String,
    /// How long this entry may be served from the cache.
    pub ttl: Duration,
    /// Its last renderings for viewers (media playlists).
    pub renderings: Renderings,
    /// Whether the router noted, since this copy was fetched, that it
    /// serves the playlist's media.
    pub remembered: AtomicBool,
}

impl Playlist {
    /// `template` fetched from the origin, with its media ACL.
    pub fn new(template: Template, media_acl: String, ttl: Duration) -> Self {
        Self {
            renderings: Renderings::of(&template),
            template,
            media_acl,
            ttl,
            remembered: AtomicBool::new(false),
        }
    }
}

/// The cache key of the playlist at `key` for the origin query `query`.
fn cache_key(key: &ObjectKey, query: &str) -> String {
    if query.is_empty() {
        key.as_str().to_owned()
    } else {
        format!("{key}\n{query}")
    }
}

/// The playlist cache in front of the origin.
#[derive(Debug, Clone)]
pub struct Playlists {
    cache: moka::future::Cache<String, Arc<Playlist>>,
    origin: OriginClient,
    origin_bases: Arc<[String]>,
    limits: Limits,
    /// The last playlist fetched for each key, with when: served for up to
    /// one target duration while the origin fails (a live stream survives an
    /// origin blip without a visible error).
    last_good: moka::sync::Cache<String, (Arc<Playlist>, Instant)>,
    /// `BANDWIDTH` of every variant seen in a multivariant playlist, by the
    /// variant's object key: what a viewer of that media playlist weighs.
    bandwidths: moka::sync::Cache<String, u64>,
}

/// Timeouts, sizes and lifetimes of the cache.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Timeout of ordinary origin requests.
    pub origin_timeout: Duration,
    /// Timeout of blocking reloads (requests with `_HLS_msn`).
    pub blocking_timeout: Duration,
    /// Largest playlist accepted.
    pub max_playlist_bytes: u64,
    /// Most URIs a playlist may hold.
    pub max_playlist_uris: usize,
    /// Lifetime of ended playlists.
    pub vod_cache: Duration,
    /// Lifetime of multivariant playlists.
    pub master_cache: Duration,
}

struct PerEntry;

impl Expiry<String, Arc<Playlist>> for PerEntry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<Playlist>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

impl Playlists {
    /// A cache reading from `origin`; absolute URIs under `origin_bases` are the origin's own.
    pub fn new(origin: OriginClient, origin_bases: Vec<String>, limits: Limits) -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(MAX_CACHE_BYTES)
            .weigher(|key: &String, value: &Arc<Playlist>| entry_weight(key, value))
            .expire_after(PerEntry)
            .build();
        let bandwidths = moka::sync::Cache::builder()
            .max_capacity(MAX_BANDWIDTH_BYTES)
            .weigher(|key: &String, _| u32::try_from(key.len() + ENTRY_OVERHEAD_BYTES).unwrap_or(u32::MAX))
            .time_to_idle(Duration::from_secs(3600))
            .build();
        let last_good = moka::sync::Cache::builder()
            .max_capacity(MAX_CACHE_BYTES / 4)
            .weigher(|key: &String, value: &(Arc<Playlist>, Instant)| entry_weight(key, &value.0))
            .time_to_idle(MAX_STALE)
            .build();
        Self {
            cache,
            last_good,
            origin,
            origin_bases: origin_bases.into(),
            limits,
            bandwidths,
        }
    }

    /// The playlist at `key`, for a request with `query` (the session
    /// already removed): only its `_HLS_*` delivery directives take part in
    /// the cache key and the origin request.
    pub async fn get(&self, key: &ObjectKey, query: &str) -> Result<Arc<Playlist>, Error> {
        let query = origin_client::query::playlist_query(query);
        let query = query.as_str();
        // Most requests: a live window fetched lately, no directive.
        if query.is_empty()
            && let Some(entry) = self.cache.get(key.as_str()).await
        {
            metrics::playlist_cache(true);
            return Ok(entry);
        }
        let cache_key = cache_key(key, query);
        let mut fetched = false;
        let outcome = self
            .cache
            .try_get_with(cache_key.clone(), async {
                fetched = true;
                self.fetch(key, query).await.map(Arc::new)
            })
            .await
            .map_err(|e| (*e).clone());
        metrics::playlist_cache(!fetched);
        match outcome {
            Ok(entry) => {
                if fetched {
                    self.last_good.insert(cache_key, (entry.clone(), Instant::now()));
                }
                Ok(entry)
            }
            Err(error) if error.is_origin_failure() => match self.last_good.get(&cache_key) {
                Some((entry, at)) if serve_stale(&entry, at.elapsed()) => {
                    metrics::stale_served();
                    tracing::warn!(key = %key, %error, "origin failing: serving the last good playlist");
                    Ok(entry)
                }
                _ => Err(error),
            },
            Err(error) => Err(error),
        }
    }

    async fn fetch(&self, key: &ObjectKey, query: &str) -> Result<Playlist, Error> {
        let blocking = query.split('&').any(|pair| pair.starts_with("_HLS_msn="));
        let timeout = if blocking {
            self.limits.blocking_timeout
        } else {
            self.limits.origin_timeout
        };
        let started = Instant::now();
        let (body, _etag) = self
            .origin
            .get_bytes(key, Some(query), timeout, self.limits.max_playlist_bytes)
            .await
            .map_err(|e| Error::from_origin(e, timeout))?;
        metrics::origin_fetch(started.elapsed());
        let options = ScanOptions {
            playlist_key: key.as_str(),
            origin_bases: &self.origin_bases,
        };
        let template = rewrite::scan_bounded(body, &options, self.limits.max_playlist_uris)?;
        for variant in template.variants() {
            if let (Some(key), Some(bandwidth)) = (&variant.key, variant.bandwidth) {
                self.bandwidths.insert(key.clone(), bandwidth);
            }
        }
        let ttl = self.ttl_of(&template);
        let media_acl = media_acl(key, &template);
        Ok(Playlist::new(template, media_acl, ttl))
    }

    /// The `BANDWIDTH` a multivariant playlist declared for this media
    /// playlist (0 if none was seen).
    pub fn bandwidth_of(&self, key: &ObjectKey) -> u64 {
        self.bandwidths.get(key.as_str()).unwrap_or(0)
    }

    fn ttl_of(&self, template: &Template) -> Duration {
        match template.kind() {
            PlaylistKind::Multivariant => self.limits.master_cache,
            PlaylistKind::Media if template.is_ended() => self.limits.vod_cache,
            PlaylistKind::Media => {
                let target = template.target_duration().map_or(2.0, |t| t as f64);
                let half = template.part_target().map_or(target, |p| p.min(target)) / 2.0;
                Duration::from_secs_f64(half).clamp(MIN_LIVE_TTL, MAX_LIVE_TTL)
            }
        }
    }
}

/// What an entry of the cache or of the last-good map costs: its own copy
/// of the key, the template (shared between the two maps, but a last-good
/// entry keeps it alive after the cache dropped it), and the ACL.
fn entry_weight(key: &str, playlist: &Playlist) -> u32 {
    let bytes = key.len()
        + playlist.template.memory_size()
        + playlist.renderings.max_memory()
        + playlist.media_acl.len()
        + ENTRY_OVERHEAD_BYTES;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// Whether a live media playlist fetched `age` ago may stand in while the
/// origin fails: for at most one target duration (after that a player would
/// see a frozen window, and a clear error is better). VOD and multivariant
/// playlists are cached long anyway.
fn serve_stale(playlist: &Playlist, age: Duration) -> bool {
    let template = &playlist.template;
    template.kind() == PlaylistKind::Media
        && !template.is_ended()
        && age <= Duration::from_secs(template.target_duration().unwrap_or(0))
}

/// The ACL of the signed token for a playlist's media: the longest directory
/// that holds every media URI (at worst the playlist's own directory).
///
/// The ACL is over object keys, percent-decoded, as the edge compares it
/// with the request path it decoded (`/live/a b/*`, which the token writes
/// `acl=/live/a%20b/*`): the one canonical form on both sides, however the
/// playlist spelled its URIs (`a%20b/`, `a b/`, `a%20%62/`).
fn media_acl(key: &ObjectKey, template: &Template) -> String {
    let own_dir = key.as_str().rsplit_once('/').map_or("", |(dir, _)| dir);
    let mut common: Option<&str> = None;
    for media_key in template.media_keys() {
        let dir = media_key.rsplit_once('/').map_or("", |(dir, _)| dir);
        common = Some(match common {
            None => dir,
            Some(prefix) => common_dir(prefix, dir),
        });
    }
    // Directories are compared in URI form (an encoded `%2F` never splits a
    // segment), and only the result is decoded.
    let decoded = common.map(rewrite::decode_key);
    let dir = decoded.as_deref().unwrap_or(own_dir);
    if dir.is_empty() {
        "/*".to_owned()
    } else {
        format!("/{dir}/*")
    }
}

/// The longest common whole-segment prefix of two directories.
fn common_dir<'a>(a: &'a str, b: &str) -> &'a str {
    let mut end = 0;
    for (sa, sb) in a.split('/').zip(b.split('/')) {
        if sa != sb {
            break;
        }
        end += sa.len() + 1;
    }
    &a[..end.saturating_sub(1).min(a.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_weighs_its_key_and_its_template() {
        let key = ObjectKey::from_key("live/a/index.m3u8").expect("key");
        let options = ScanOptions {
            playlist_key: key.as_str(),
            origin_bases: &[],
        };
        let body = bytes::Bytes::from_static(b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\ns1.ts\n");
        let template = rewrite::scan_bounded(body, &options, 100).expect("scan");
        let template_bytes = template.memory_size();
        let playlist = Playlist::new(template, "/live/a/*".to_owned(), Duration::from_secs(1));
        let short = entry_weight(&cache_key(&key, ""), &playlist);
        let long = entry_weight(&cache_key(&key, &"x".repeat(7000)), &playlist);
        assert!(short as usize > template_bytes + key.as_str().len());
        assert_eq!(long - short, 7001);
    }

    #[test]
    fn the_acl_is_over_decoded_keys() {
        let key =
            ObjectKey::from_request_path("/vod/a%20b/r%C3%A9%20%22x%22%20100%25/index.m3u8").expect("key");
        let options = ScanOptions {
            playlist_key: key.as_str(),
            origin_bases: &[],
        };
        for body in [
            "#EXTM3U\n#EXTINF:2,\ns 1.ts\n#EXTINF:2,\ns%202.ts\n",
            "#EXTM3U\n#EXTINF:2,\n../r%C3%A9%20%22x%22%20100%25/s.ts\n",
            "#EXTM3U\n#EXTINF:2,\n/vod/a%20b/r\u{e9} \"x\" 100%25/s.ts\n",
        ] {
            let template =
                rewrite::scan(bytes::Bytes::copy_from_slice(body.as_bytes()), &options).expect("scan");
            assert_eq!(
                media_acl(&key, &template),
                "/vod/a b/r\u{e9} \"x\" 100%/*",
                "{body}"
            );
        }
    }

    #[test]
    fn common_dirs() {
        assert_eq!(common_dir("live/a/240p", "live/a/240p"), "live/a/240p");
        assert_eq!(common_dir("live/a/240p", "live/a/360p"), "live/a");
        assert_eq!(common_dir("live/a", "live/a/360p"), "live/a");
        assert_eq!(common_dir("live/a/360p", "live/a"), "live/a");
        assert_eq!(common_dir("live/ab", "live/a"), "live");
        assert_eq!(common_dir("x", "y"), "");
    }
}
