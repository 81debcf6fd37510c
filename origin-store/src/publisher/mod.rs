//! The demo publisher: live streams with a sliding window of segments that
//! advances in real time, and one VOD stream, written into any
//! [`ObjectStore`] from media embedded in the binary.
//!
//! Store layout, for a live stream `live/demo-1` and a VOD `vod/demo`:
//!
//! ```text
//! live/demo-1/master.m3u8              multivariant playlist, every rendition
//! live/demo-1/<rendition>/index.m3u8   live media playlist, the last `window` segments
//! live/demo-1/<rendition>/seg-<msn>.ts segment with media sequence number <msn>
//! vod/demo/master.m3u8
//! vod/demo/<rendition>/index.m3u8      EXT-X-PLAYLIST-TYPE:VOD, EXT-X-ENDLIST
//! vod/demo/<rendition>/seg-<n>.ts      one loop of the media
//! ```
//!
//! Time comes in as an argument ([`Publisher::tick`]); only
//! [`Publisher::run`] reads the real clock. Each tick writes new segments
//! before the playlists that name them, rewrites the playlists only when the
//! window moved, and deletes segments `window + 1` segments after they left
//! the playlist (RFC 8216 section 6.2.2). The timeline itself is pure
//! arithmetic in `schedule`; the media and its rendition table are in
//! `fixtures`.

mod fixtures;
mod schedule;

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::TryStreamExt;
use futures::future::try_join_all;
use m3u8_rs::{MasterPlaylist, MediaPlaylist, MediaPlaylistType, MediaSegment, Resolution, VariantStream};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::{Error, Result};
use fixtures::{FIXTURE_SEGMENT_SECS, LOOP_SECS, RENDITIONS};
use schedule::Schedule;

/// Default number of segments in a live playlist.
pub const DEFAULT_WINDOW: usize = 6;
/// Default duration of a published segment, in seconds.
pub const DEFAULT_TARGET_DURATION_SECS: u64 = 2;
/// Default live streams.
pub const DEFAULT_LIVE_STREAMS: [&str; 3] = ["live/demo-1", "live/demo-2", "live/demo-3"];
/// Default VOD stream.
pub const DEFAULT_VOD_STREAM: &str = "vod/demo";

/// Smallest live window: players start about three target durations from
/// the live edge, so a shorter playlist cannot be played.
const MIN_WINDOW: usize = 3;
/// Largest live window, so that a typo cannot make one tick write
/// tens of thousands of segments.
const MAX_WINDOW: usize = 1_000;
/// `EXT-X-VERSION` of every playlist written: integer `EXTINF`,
/// `EXT-X-PROGRAM-DATE-TIME`, `EXT-X-DISCONTINUITY-SEQUENCE` need no more.
const PLAYLIST_VERSION: usize = 3;
/// How soon a failed tick is retried when the next segment is further away.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What the demo publisher writes. Strict TOML (`[publish]`), every key
/// optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublishConfig {
    /// Segments listed in each live media playlist.
    pub window: usize,
    /// Duration of each published segment (and `EXT-X-TARGETDURATION`), in
    /// seconds. Must divide the 12-second source loop.
    pub target_duration_secs: u64,
    /// Live stream prefixes in the store, e.g. `live/demo-1`.
    pub live_streams: Vec<String>,
    /// VOD stream prefix in the store.
    pub vod_stream: String,
}

impl Default for PublishConfig {
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW,
            target_duration_secs: DEFAULT_TARGET_DURATION_SECS,
            live_streams: DEFAULT_LIVE_STREAMS.iter().map(|s| (*s).to_owned()).collect(),
            vod_stream: DEFAULT_VOD_STREAM.to_owned(),
        }
    }
}

impl PublishConfig {
    /// Checks every key; the error names the key that is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.window < MIN_WINDOW {
            return Err(config_error(format!(
                "`publish.window` must be >= {MIN_WINDOW}, got {}",
                self.window
            )));
        }
        if self.window > MAX_WINDOW {
            return Err(config_error(format!(
                "`publish.window` must be <= {MAX_WINDOW}, got {}",
                self.window
            )));
        }
        let d = self.target_duration_secs;
        if d == 0 || !LOOP_SECS.is_multiple_of(d) {
            let divisors: Vec<String> = (1..=LOOP_SECS)
                .filter(|x| LOOP_SECS.is_multiple_of(*x))
                .map(|x| x.to_string())
                .collect();
            return Err(config_error(format!(
                "`publish.target_duration_secs` must divide the {LOOP_SECS} s demo loop (one of {}), got {d}",
                divisors.join(", ")
            )));
        }
        for name in &self.live_streams {
            check_stream_name("publish.live_streams", name)?;
        }
        check_stream_name("publish.vod_stream", &self.vod_stream)?;
        let all: Vec<&str> = self
            .live_streams
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(self.vod_stream.as_str()))
            .collect();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                if a == b || is_nested(a, b) || is_nested(b, a) {
                    return Err(config_error(format!(
                        "`publish.live_streams` and `publish.vod_stream` must be distinct and not nested, got `{a}` and `{b}`"
                    )));
                }
            }
        }
        Ok(())
    }
}

fn config_error(message: String) -> Error {
    Error::Config(message)
}

/// Whether `inner` lies under the `outer/` prefix.
fn is_nested(outer: &str, inner: &str) -> bool {
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// A stream name is a relative store path of plain segments.
fn check_stream_name(key: &str, name: &str) -> Result<()> {
    let plain = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if name.split('/').all(plain) {
        Ok(())
    } else {
        Err(config_error(format!(
            "`{key}` entries must be relative paths of [A-Za-z0-9._-] segments separated by `/`, got `{name}`"
        )))
    }
}

/// What has been written for one live stream.
#[derive(Debug)]
struct LiveStream {
    name: String,
    /// Stale segments left by an earlier run have been removed.
    swept: bool,
    master_written: bool,
    /// Segments present in the store for every rendition.
    written: BTreeSet<u64>,
    /// First media sequence number of the playlists last written.
    playlist_first: Option<u64>,
}

impl LiveStream {
    fn new(name: String) -> Self {
        Self {
            name,
            swept: false,
            master_written: false,
            written: BTreeSet::new(),
            playlist_first: None,
        }
    }
}

/// Writes the demo streams into a store, one [`tick`](Publisher::tick) at a time.
pub struct Publisher {
    writer: Writer,
    config: PublishConfig,
    live: Vec<LiveStream>,
    vod_written: bool,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("store", &self.writer.store.to_string())
            .field("config", &self.config)
            .field("schedule", &self.writer.schedule)
            .field("live", &self.live)
            .field("vod_written", &self.vod_written)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// A publisher whose live streams are already `window` segments old at
    /// `start`. Fails with [`Error::Config`] if `config` is invalid.
    pub fn new(store: Arc<dyn ObjectStore>, config: PublishConfig, start: SystemTime) -> Result<Self> {
        config.validate()?;
        let schedule = Schedule::new(config.window, config.target_duration_secs, LOOP_SECS, start);
        let fixtures_per_segment = (schedule.segment_secs() / FIXTURE_SEGMENT_SECS) as usize;
        let media = RENDITIONS
            .iter()
            .map(|r| {
                r.segments
                    .chunks(fixtures_per_segment)
                    .map(|chunk| match chunk {
                        [one] => Bytes::from_static(one),
                        many => Bytes::from(many.concat()),
                    })
                    .collect()
            })
            .collect();
        let live = config.live_streams.iter().cloned().map(LiveStream::new).collect();
        Ok(Self {
            writer: Writer {
                store,
                schedule,
                media,
            },
            config,
            live,
            vod_written: false,
        })
    }

    /// Brings the store up to date for time `now`: VOD written once, every
    /// live stream's segments written/deleted and playlists rewritten.
    ///
    /// Idempotent: a second tick at the same time writes nothing. A tick far
    /// ahead of the last one writes only the current window.
    pub async fn tick(&mut self, now: SystemTime) -> Result<()> {
        if !self.vod_written {
            self.writer.publish_vod(&self.config.vod_stream).await?;
            self.vod_written = true;
        }
        for stream in &mut self.live {
            self.writer.tick_live(stream, now).await?;
        }
        Ok(())
    }

    /// Real-clock loop: tick, sleep until the next segment boundary, until
    /// `shutdown` resolves. Store errors are logged and retried, never fatal.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let mut shutdown = std::pin::pin!(shutdown);
        info!(
            streams = self.live.len(),
            vod = %self.config.vod_stream,
            window = self.config.window,
            target_duration_secs = self.config.target_duration_secs,
            "publisher started"
        );
        loop {
            let failed = tokio::select! {
                () = &mut shutdown => break,
                result = self.tick(SystemTime::now()) => match result {
                    Ok(()) => false,
                    Err(error) => {
                        warn!(%error, "publish tick failed, will retry");
                        true
                    }
                },
            };
            let now = SystemTime::now();
            let mut wait = self
                .writer
                .schedule
                .next_boundary(now)
                .duration_since(now)
                .unwrap_or(Duration::ZERO);
            if failed {
                wait = wait.min(RETRY_AFTER);
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        info!("publisher stopped");
        Ok(())
    }
}

/// The store, the timeline and the media: everything a tick needs besides
/// the per-stream bookkeeping.
struct Writer {
    store: Arc<dyn ObjectStore>,
    schedule: Schedule,
    /// `media[rendition][loop_index]`: the published segment that starts at
    /// `loop_index * D` in the loop.
    media: Vec<Vec<Bytes>>,
}

impl Writer {
    /// Writes one loop of every rendition, then the playlists.
    async fn publish_vod(&self, stream: &str) -> Result<()> {
        let count = self.schedule.segments_per_loop();
        for (r, rendition) in RENDITIONS.iter().enumerate() {
            let puts =
                (0..count).map(|n| self.put(segment_path(stream, rendition.name, n), self.segment(r, n)));
            try_join_all(puts).await?;
            let playlist = MediaPlaylist {
                version: Some(PLAYLIST_VERSION),
                target_duration: self.schedule.segment_secs(),
                segments: (0..count).map(|n| self.media_segment(n)).collect(),
                end_list: true,
                playlist_type: Some(MediaPlaylistType::Vod),
                independent_segments: true,
                ..MediaPlaylist::default()
            };
            let path = Path::from(format!("{stream}/{}/index.m3u8", rendition.name));
            self.put(path, media_playlist_bytes(&playlist)?).await?;
        }
        let master = Path::from(format!("{stream}/master.m3u8"));
        self.put(master, master_playlist_bytes()?).await?;
        info!(stream = %stream, segments = count, "vod published");
        Ok(())
    }

    /// Brings one live stream up to date for `now`: new segments, then the
    /// playlists naming them, then deletion of expired segments.
    async fn tick_live(&self, stream: &mut LiveStream, now: SystemTime) -> Result<()> {
        let window = self.schedule.live_window(now);
        let (first, newest) = (*window.start(), *window.end());
        let name = stream.name.as_str();

        if !stream.swept {
            self.sweep(name, first, newest).await?;
            stream.swept = true;
        }
        if !stream.master_written {
            let master = Path::from(format!("{name}/master.m3u8"));
            self.put(master, master_playlist_bytes()?).await?;
            stream.master_written = true;
            info!(stream = %name, first, newest, "live stream started");
        }

        for msn in window {
            if stream.written.contains(&msn) {
                continue;
            }
            let loop_index = self.schedule.loop_index(msn);
            let puts = RENDITIONS.iter().enumerate().map(|(r, rendition)| {
                self.put(
                    segment_path(name, rendition.name, msn),
                    self.segment(r, loop_index),
                )
            });
            try_join_all(puts).await?;
            stream.written.insert(msn);
            debug!(stream = %name, msn, "segment published");
        }

        if stream.playlist_first != Some(first) {
            // Segment URIs are relative, so every rendition's playlist is the same.
            let playlist = media_playlist_bytes(&self.live_playlist(first, newest))?;
            for rendition in &RENDITIONS {
                let path = Path::from(format!("{name}/{}/index.m3u8", rendition.name));
                self.put(path, playlist.clone()).await?;
            }
            stream.playlist_first = Some(first);
            debug!(stream = %name, media_sequence = first, "playlists updated");
        }

        let keep_from = self.schedule.keep_from(first);
        let expired: Vec<u64> = stream.written.range(..keep_from).copied().collect();
        for msn in expired {
            let deletes = RENDITIONS
                .iter()
                .map(|rendition| self.delete(segment_path(name, rendition.name, msn)));
            try_join_all(deletes).await?;
            stream.written.remove(&msn);
            debug!(stream = %name, msn, "segment deleted");
        }
        Ok(())
    }

    /// Removes segments of this stream that an earlier run left outside the
    /// current window, so a restarted publisher does not leak them.
    async fn sweep(&self, name: &str, first: u64, newest: u64) -> Result<()> {
        let prefix = Path::from(name);
        let objects: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        let stale: Vec<Path> = objects
            .into_iter()
            .map(|meta| meta.location)
            .filter(|location| segment_msn(&prefix, location).is_some_and(|msn| msn < first || msn > newest))
            .collect();
        if !stale.is_empty() {
            info!(stream = %name, count = stale.len(), "removing segments left by an earlier run");
        }
        for location in stale {
            self.delete(location).await?;
        }
        Ok(())
    }

    /// The live media playlist listing segments `first..=newest`.
    fn live_playlist(&self, first: u64, newest: u64) -> MediaPlaylist {
        let segments = (first..=newest)
            .map(|msn| MediaSegment {
                discontinuity: self.schedule.is_discontinuity(msn),
                program_date_time: Some(
                    chrono::DateTime::<chrono::Utc>::from(self.schedule.program_date_time(msn))
                        .fixed_offset(),
                ),
                ..self.media_segment(msn)
            })
            .collect();
        MediaPlaylist {
            version: Some(PLAYLIST_VERSION),
            target_duration: self.schedule.segment_secs(),
            media_sequence: first,
            discontinuity_sequence: self.schedule.discontinuity_sequence(first),
            segments,
            independent_segments: true,
            ..MediaPlaylist::default()
        }
    }

    /// Playlist entry for segment `n`: its URI and its real duration (every
    /// fixture lasts exactly one second, so a segment lasts exactly D).
    fn media_segment(&self, n: u64) -> MediaSegment {
        MediaSegment {
            uri: format!("seg-{n}.ts"),
            duration: self.schedule.segment_secs() as f32,
            ..MediaSegment::default()
        }
    }

    /// The bytes of published segment `loop_index` of rendition `r`.
    fn segment(&self, r: usize, loop_index: u64) -> Bytes {
        self.media
            .get(r)
            .and_then(|loop_segments| loop_segments.get(loop_index as usize))
            .cloned()
            .unwrap_or_default()
    }

    async fn put(&self, path: Path, bytes: Bytes) -> Result<()> {
        self.store.put(&path, PutPayload::from(bytes)).await?;
        metrics::counter!(crate::metrics::PUBLISHED).increment(1);
        Ok(())
    }

    /// Deletes an object; one that is already gone is fine.
    async fn delete(&self, path: Path) -> Result<()> {
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn segment_path(stream: &str, rendition: &str, n: u64) -> Path {
    Path::from(format!("{stream}/{rendition}/seg-{n}.ts"))
}

/// The media sequence number of `location` if it is a segment of one of
/// our renditions directly under `prefix` (`<prefix>/<rendition>/seg-<n>.ts`).
fn segment_msn(prefix: &Path, location: &Path) -> Option<u64> {
    let mut parts = location.prefix_match(prefix)?;
    let rendition = parts.next()?;
    let file = parts.next()?;
    if parts.next().is_some() || !RENDITIONS.iter().any(|r| r.name == rendition.as_ref()) {
        return None;
    }
    file.as_ref()
        .strip_prefix("seg-")?
        .strip_suffix(".ts")?
        .parse()
        .ok()
}

/// The multivariant playlist: every rendition, lowest bit rate first.
fn master_playlist_bytes() -> Result<Bytes> {
    let playlist = MasterPlaylist {
        version: Some(PLAYLIST_VERSION),
        independent_segments: true,
        variants: RENDITIONS
            .iter()
            .map(|r| VariantStream {
                uri: format!("{}/index.m3u8", r.name),
                bandwidth: r.bandwidth,
                average_bandwidth: Some(r.average_bandwidth),
                codecs: Some(r.codecs.to_owned()),
                resolution: Some(Resolution {
                    width: r.width,
                    height: r.height,
                }),
                frame_rate: Some(r.frame_rate),
                ..VariantStream::default()
            })
            .collect(),
        ..MasterPlaylist::default()
    };
    let mut out = Vec::new();
    playlist.write_to(&mut out)?;
    Ok(Bytes::from(out))
}

fn media_playlist_bytes(playlist: &MediaPlaylist) -> Result<Bytes> {
    let mut out = Vec::new();
    playlist.write_to(&mut out)?;
    Ok(Bytes::from(out))
}
