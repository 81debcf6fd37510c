//! The model of one HLS player: a state machine with no I/O and no clock.
//!
//! Events come in — the multivariant playlist arrived, a media playlist
//! arrived, a segment finished, or simply `tick(now)` — each with the time it
//! happened; actions come out: fetch this URL at that time, the session ended,
//! the player gave up. The driver ([`crate::driver`]) performs the fetches and
//! feeds the results back; tests feed scripted playlists with a made-up clock.
//!
//! What it does, as players do (RFC 8216 section 6.3, hls.js, AVPlayer):
//!
//! - Fetches the multivariant playlist, picks a variant (a fixed rendition,
//!   or the lowest one and then by measured throughput), fetches its media
//!   playlist.
//! - Live: starts [`PlayerConfig::live_start_segments`] segments from the live
//!   edge; reloads the media playlist one target duration after the previous
//!   load *began*, half a target duration when it had not changed. VOD
//!   (`EXT-X-ENDLIST`): loads it once and starts at the first segment.
//! - Downloads segments one after the other, keeping at most
//!   [`PlayerConfig::max_buffer`] of media ahead of the playhead.
//! - Plays at 1× in wall-clock time once [`PlayerConfig::start_segments`]
//!   segments are buffered (startup time: from the first request to that
//!   moment); when the buffer runs dry it stalls, and resumes once that many
//!   segments are buffered again. A stall is counted at the exact moment the
//!   buffer ran dry, whenever the next event comes.
//! - Retries a failed request after [`PlayerConfig::retry_delay`]; skips a
//!   segment that failed [`PlayerConfig::retries`] retries; gives up when the
//!   multivariant playlist or the first media playlist cannot be had.
//! - Re-synchronizes to the live edge when it fell out of the live window.
//! - Content Steering, as hls.js (`ContentSteeringController`): the variants
//!   are grouped by `PATHWAY-ID` ([`crate::steering::Pathways`]; a master
//!   without pathways is one pathway). With `EXT-X-CONTENT-STEERING`, it starts
//!   on the tag's `PATHWAY-ID`, loads the steering manifest at once and then
//!   every `TTL` from its `RELOAD-URI` (with `_HLS_pathway` and
//!   `_HLS_throughput`), creates `PATHWAY-CLONES`, and moves to the first
//!   pathway of `PATHWAY-PRIORITY` it has not penalized. A failed segment
//!   puts its pathway in the penalty box (5 minutes) and, when another
//!   pathway of the priority (of the manifest, or the master's order before
//!   one came) can be used, switches to it at once and fetches the same
//!   segment from the new pathway's media playlist; otherwise it retries as
//!   below.
//! - Checks each media playlist URL it loads against the URIs that URL
//!   listed before ([`crate::invariants::Listed`]): a listed `(msn, part)`
//!   that changes host or path is counted, as hls.js raises
//!   `LEVEL_PARSING_ERROR` ("media sequence mismatch") for it.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use url::Url;

use crate::hls::{MasterInfo, MediaInfo};
use crate::invariants::Listed;
use crate::steering::{self, Manifest, PathwayVariant, Pathways, PenaltyBox};

/// How the player picks its rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendition {
    /// The variant with this name (e.g. `240p`); the player gives up without it.
    Fixed(String),
    /// Start with the lowest variant, then the highest whose `BANDWIDTH` fits
    /// [`PlayerConfig::abr_safety`] × measured throughput.
    Abr,
}

/// The player's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayerConfig {
    /// Rendition choice.
    pub rendition: Rendition,
    /// Live: segments before the live edge to start at (3, as RFC 8216 asks).
    pub live_start_segments: usize,
    /// Segments buffered before playback starts or resumes after a stall.
    pub start_segments: usize,
    /// Most media kept ahead of the playhead.
    pub max_buffer: Duration,
    /// Retries of a failed request before the player gives up (multivariant
    /// and first media playlist) or skips the segment.
    pub retries: u32,
    /// Wait before retrying a failed request.
    pub retry_delay: Duration,
    /// Share of the measured throughput a variant's `BANDWIDTH` may use.
    pub abr_safety: f64,
}

impl Default for PlayerConfig {
    fn default() -> Self {
        PlayerConfig {
            rendition: Rendition::Abr,
            live_start_segments: 3,
            start_segments: 1,
            max_buffer: Duration::from_secs(30),
            retries: 3,
            retry_delay: Duration::from_secs(1),
            abr_safety: 0.7,
        }
    }
}

/// What a fetch is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchKind {
    /// The multivariant playlist.
    Master,
    /// The current media playlist.
    Media,
    /// A segment.
    Segment {
        /// Its media sequence number.
        msn: u64,
    },
    /// The steering manifest (JSON).
    Steering,
}

/// A request the driver should send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// What it is for.
    pub kind: FetchKind,
    /// Where.
    pub url: Url,
    /// Not before this time.
    pub at: Instant,
}

/// What the player asks of its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this request at its time, and report the outcome.
    Fetch(Fetch),
    /// The session played to the end (VOD).
    Ended,
    /// The player gave up (the reason is in [`PlayerStats::gave_up`]).
    GaveUp,
}

/// A segment that arrived whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Downloaded {
    /// Body bytes.
    pub bytes: u64,
    /// From sending the request to the last byte.
    pub elapsed: Duration,
}

/// Why a request failed, as the driver saw it (e.g. `status 503`, `timeout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

/// What one session of the player amounted to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlayerStats {
    /// From the first request to the start of playback; `None` if it never started.
    pub startup: Option<Duration>,
    /// Times the buffer ran dry after playback started.
    pub stalls: u32,
    /// Time spent stalled.
    pub stall_time: Duration,
    /// Time spent playing.
    pub play_time: Duration,
    /// From the first request to the end of the session.
    pub watch_time: Duration,
    /// Segments downloaded.
    pub segments: u64,
    /// Segments given up on after retries.
    pub skipped_segments: u32,
    /// Jumps back to the live edge after falling out of the window.
    pub resyncs: u32,
    /// Rendition switches.
    pub switches: u32,
    /// Failed requests.
    pub errors: u32,
    /// Why the player gave up, if it did.
    pub gave_up: Option<String>,
    /// The rendition at the end.
    pub rendition: Option<String>,
    /// Pathway switches (Content Steering): by a manifest or after a failed segment.
    pub pathway_switches: u32,
    /// Steering manifest requests.
    pub steering_fetches: u32,
    /// Steering manifest requests that failed (included in `errors`).
    pub steering_errors: u32,
    /// Listed `(msn, part)`s that changed host or path within one media
    /// playlist URL: the playlist errors hls.js raises as `LEVEL_PARSING_ERROR`.
    pub listed_uri_changes: u32,
    /// The pathway at the end.
    pub pathway: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Before playback starts.
    Loading,
    /// Playing since `since`, at media position `position` then.
    Playing { since: Instant, position: f64 },
    /// Stalled since `since` at media position `position`.
    Stalled { since: Instant, position: f64 },
    /// Done: played to the end, gave up, or finished by the driver.
    Over,
}

#[derive(Debug, Clone)]
struct Known {
    uri: String,
    url: Url,
    duration: f64,
    /// The pathway whose playlist listed it.
    pathway: usize,
}

/// Where the player stands with the steering server.
#[derive(Debug, Clone)]
struct Steering {
    /// The manifest URL to load next, without the `_HLS_` parameters.
    reload: Url,
    /// When the next load is due; `None` while one is in flight.
    due: Option<Instant>,
    /// The URL of the load in flight.
    inflight: Option<Url>,
    /// The latest `PATHWAY-PRIORITY`.
    priority: Option<Vec<String>>,
    /// The latest `TTL`.
    ttl: Duration,
}

/// One player; see the module docs.
#[derive(Debug, Clone)]
pub struct Player {
    config: PlayerConfig,
    started: Instant,
    master_url: Url,
    pathways: Pathways,
    /// Index of the pathway in use.
    pathway: usize,
    steering: Option<Steering>,
    penalties: PenaltyBox,
    /// What each media playlist URL listed, for the listed-URI check.
    listed: HashMap<String, Listed>,
    current: Option<usize>,
    media_url: Option<Url>,
    phase: Phase,

    // Playlist lane.
    playlist_inflight: Option<Url>,
    /// `(media sequence, segment count, ended)` of the last playlist.
    last_signature: Option<(u64, usize, bool)>,
    target_duration: f64,
    ended: bool,
    have_playlist: bool,
    master_failures: u32,
    playlist_failures: u32,

    // Segment lane.
    known: BTreeMap<u64, Known>,
    next_msn: Option<u64>,
    segment_inflight: Option<u64>,
    /// The pathway of the segment in flight.
    segment_pathway: Option<usize>,
    segment_failures: u32,

    // Buffer, in media seconds downloaded since the start.
    buffered: f64,
    downloaded_since_wait: usize,
    throughput_bps: Option<f64>,
    stats: PlayerStats,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn duration(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX)
}

impl Player {
    /// A player that starts at `now` by fetching `master_url`.
    pub fn new(master_url: Url, config: PlayerConfig, now: Instant) -> (Player, Vec<Action>) {
        let player = Player {
            config,
            started: now,
            master_url: master_url.clone(),
            pathways: Pathways::default(),
            pathway: 0,
            steering: None,
            penalties: PenaltyBox::default(),
            listed: HashMap::new(),
            current: None,
            media_url: None,
            phase: Phase::Loading,
            playlist_inflight: None,
            last_signature: None,
            target_duration: 0.0,
            ended: false,
            have_playlist: false,
            master_failures: 0,
            playlist_failures: 0,
            known: BTreeMap::new(),
            next_msn: None,
            segment_inflight: None,
            segment_pathway: None,
            segment_failures: 0,
            buffered: 0.0,
            downloaded_since_wait: 0,
            throughput_bps: None,
            stats: PlayerStats::default(),
        };
        let fetch = Action::Fetch(Fetch {
            kind: FetchKind::Master,
            url: master_url,
            at: now,
        });
        (player, vec![fetch])
    }

    /// The multivariant playlist arrived (or failed) at `now`.
    pub fn on_master(&mut self, now: Instant, result: Result<MasterInfo, Failure>) -> Vec<Action> {
        let mut out = Vec::new();
        if self.phase == Phase::Over || !self.pathways.is_empty() {
            return out;
        }
        let master = match result {
            Ok(master) => master,
            Err(failure) => {
                self.stats.errors += 1;
                self.master_failures += 1;
                if self.master_failures > self.config.retries {
                    self.give_up(now, format!("multivariant playlist: {}", failure.0), &mut out);
                } else {
                    out.push(Action::Fetch(Fetch {
                        kind: FetchKind::Master,
                        url: self.master_url.clone(),
                        at: now + self.config.retry_delay,
                    }));
                }
                return out;
            }
        };
        let pathways = Pathways::from_master(&self.master_url, &master);
        let start = master
            .steering
            .as_ref()
            .and_then(|s| s.pathway_id.as_deref())
            .and_then(|id| pathways.index(id))
            .unwrap_or(0);
        let variants = pathways.get(start).map_or(&[][..], |p| p.variants.as_slice());
        let index = match &self.config.rendition {
            Rendition::Abr => Some(0),
            Rendition::Fixed(name) => variants.iter().position(|v| &v.name == name),
        };
        let Some(index) = index.filter(|&i| i < variants.len()) else {
            let reason = match &self.config.rendition {
                Rendition::Fixed(name) => format!("no rendition named {name}"),
                Rendition::Abr => "no variant".to_owned(),
            };
            self.give_up(now, reason, &mut out);
            return out;
        };
        self.stats.pathway = pathways.get(start).map(|p| p.id.clone());
        self.pathways = pathways;
        self.pathway = start;
        self.switch_to(index, now, &mut out);
        if let Some(reload) = master
            .steering
            .and_then(|tag| self.master_url.join(&tag.server_uri).ok())
        {
            self.steering = Some(Steering {
                reload,
                due: None,
                inflight: None,
                priority: None,
                ttl: steering::DEFAULT_TTL,
            });
            self.load_steering(now, &mut out);
        }
        out
    }

    /// The steering manifest fetched from `url` arrived (or failed) at `now`.
    pub fn on_steering(&mut self, now: Instant, url: &Url, result: Result<Manifest, Failure>) -> Vec<Action> {
        let mut out = Vec::new();
        self.advance(now, &mut out);
        let Some(s) = self.steering.as_mut() else {
            return out;
        };
        if self.phase == Phase::Over || s.inflight.as_ref() != Some(url) {
            return out;
        }
        s.inflight = None;
        let manifest = match result {
            Ok(manifest) => manifest,
            Err(failure) => {
                self.stats.errors += 1;
                self.stats.steering_errors += 1;
                if failure.0 == "status 410" {
                    // hls.js: 410 Gone turns steering off for the session.
                    self.steering = None;
                } else {
                    s.due = Some(now + s.ttl);
                }
                return out;
            }
        };
        if let Some(reload) = manifest.reload_uri.as_deref().and_then(|r| url.join(r).ok()) {
            s.reload = reload;
        }
        s.ttl = manifest.ttl;
        s.due = Some(now + manifest.ttl);
        s.priority = Some(manifest.priority.clone());
        self.pathways.add_clones(&manifest.clones);
        self.penalties.expire(now);
        let current = self.pathway_id().to_owned();
        if let Some(to) =
            steering::next_pathway(&manifest.priority, &current, &self.pathways, &self.penalties, now)
                .and_then(|id| self.pathways.index(id))
        {
            self.switch_pathway(to, now, &mut out);
        }
        out
    }

    /// The media playlist fetched from `url`, whose request began at
    /// `requested_at`, arrived (or failed) at `now`.
    pub fn on_media(
        &mut self,
        now: Instant,
        url: &Url,
        requested_at: Instant,
        result: Result<MediaInfo, Failure>,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        self.advance(now, &mut out);
        if self.phase == Phase::Over || self.playlist_inflight.as_ref() != Some(url) {
            // A playlist of a rendition the player has switched away from.
            return out;
        }
        self.playlist_inflight = None;
        let media = match result {
            Ok(media) => media,
            Err(failure) => {
                self.stats.errors += 1;
                self.playlist_failures += 1;
                if !self.have_playlist && self.playlist_failures > self.config.retries {
                    self.give_up(now, format!("media playlist: {}", failure.0), &mut out);
                    return out;
                }
                let wait = if self.target_duration > 0.0 {
                    duration(self.target_duration / 2.0)
                } else {
                    self.config.retry_delay
                };
                self.fetch_playlist(now + wait, &mut out);
                return out;
            }
        };
        self.playlist_failures = 0;
        self.have_playlist = true;
        let changes = self
            .listed
            .entry(url.to_string())
            .or_default()
            .observe(url, &media);
        self.stats.listed_uri_changes += u32::try_from(changes.len()).unwrap_or(u32::MAX);
        self.target_duration = if media.target_duration > 0.0 {
            media.target_duration
        } else {
            media.segments.iter().map(|s| s.duration).fold(1.0, f64::max)
        };
        let signature = (media.media_sequence, media.segments.len(), media.ended);
        let changed = self.last_signature != Some(signature);
        self.last_signature = Some(signature);
        self.ended = media.ended;

        let live_start = media
            .end_msn()
            .saturating_sub(self.config.live_start_segments as u64)
            .max(media.media_sequence);
        match self.next_msn {
            None => {
                self.next_msn = Some(if media.ended {
                    media.media_sequence
                } else {
                    live_start
                });
            }
            Some(next) if !media.ended && next < media.media_sequence => {
                // Fell out of the live window: jump back to the live edge.
                self.stats.resyncs += 1;
                self.next_msn = Some(live_start);
                self.known.clear();
            }
            Some(_) => {}
        }
        let base = self.media_url.clone().unwrap_or_else(|| url.clone());
        let next = self.next_msn.unwrap_or(0);
        for segment in &media.segments {
            // A reload names the same URIs unless the viewer was moved to
            // another edge: only new or changed ones are resolved again.
            let same = self.known.get(&segment.msn).is_some_and(|k| k.uri == segment.uri);
            if segment.msn < next || same {
                continue;
            }
            if let Ok(segment_url) = base.join(&segment.uri) {
                self.known.insert(
                    segment.msn,
                    Known {
                        uri: segment.uri.clone(),
                        url: segment_url,
                        duration: segment.duration,
                        pathway: self.pathway,
                    },
                );
            }
        }
        if !media.ended {
            let wait = if changed {
                self.target_duration
            } else {
                self.target_duration / 2.0
            };
            self.fetch_playlist((requested_at + duration(wait)).max(now), &mut out);
        }
        self.schedule_segment(now, &mut out);
        self.maybe_play(now);
        out
    }

    /// The segment `msn` finished (or failed) at `now`.
    pub fn on_segment(&mut self, now: Instant, msn: u64, result: Result<Downloaded, Failure>) -> Vec<Action> {
        let mut out = Vec::new();
        self.advance(now, &mut out);
        if self.phase == Phase::Over || self.segment_inflight != Some(msn) {
            return out;
        }
        self.segment_inflight = None;
        let from = self.segment_pathway.take().unwrap_or(self.pathway);
        match result {
            Ok(done) => {
                let length = self.known.get(&msn).map_or(0.0, |k| k.duration);
                self.buffered += length;
                self.stats.segments += 1;
                self.segment_failures = 0;
                self.downloaded_since_wait += 1;
                self.next_msn = Some(msn + 1);
                self.known = self.known.split_off(&(msn + 1));
                self.measure(done);
                self.maybe_play(now);
                self.adapt(now, &mut out);
            }
            Err(_) => {
                self.stats.errors += 1;
                self.segment_failures += 1;
                if self.pathways.len() > 1 {
                    let failed = self.pathways.get(from).map(|p| p.id.clone()).unwrap_or_default();
                    self.penalties.penalize(&failed, now);
                    let moved = if from != self.pathway {
                        // A manifest moved the player while this segment
                        // was in flight: fetch it on the current pathway.
                        if self.known.get(&msn).is_some_and(|k| k.pathway != self.pathway) {
                            self.known.remove(&msn);
                        }
                        true
                    } else {
                        self.fail_over(now, &mut out)
                    };
                    if moved {
                        self.segment_failures = 0;
                        self.schedule_segment(now, &mut out);
                        self.maybe_play(now);
                        return out;
                    }
                }
                if self.segment_failures > self.config.retries {
                    self.stats.skipped_segments += 1;
                    self.segment_failures = 0;
                    self.next_msn = Some(msn + 1);
                    self.known.remove(&msn);
                } else if !self.ended && self.playlist_inflight.is_some() {
                    // Live: like real players, ask the playlist again before
                    // retrying: the reload already scheduled resolves the
                    // segment anew (the router may have moved the viewer to
                    // another edge) and fetches it then.
                    self.known.remove(&msn);
                    return out;
                } else if let Some(known) = self.known.get(&msn) {
                    out.push(Action::Fetch(Fetch {
                        kind: FetchKind::Segment { msn },
                        url: known.url.clone(),
                        at: now + self.config.retry_delay,
                    }));
                    self.segment_inflight = Some(msn);
                    self.segment_pathway = Some(known.pathway);
                    return out;
                }
            }
        }
        self.schedule_segment(now, &mut out);
        self.maybe_play(now);
        out
    }

    /// Time passed: accounts for playback up to `now`, and loads the
    /// steering manifest when its reload is due.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        self.advance(now, &mut out);
        if self.phase != Phase::Over
            && self
                .steering
                .as_ref()
                .and_then(|s| s.due)
                .is_some_and(|due| due <= now)
        {
            self.load_steering(now, &mut out);
        }
        out
    }

    /// The next moment the player wants a [`Player::tick`]: when the buffer
    /// runs dry if no segment arrives first, or when the steering manifest is
    /// due. The driver ticks any time after it (a stall is counted from the
    /// moment the buffer ran dry, not from the tick).
    pub fn deadline(&self) -> Option<Instant> {
        let dry = match self.phase {
            Phase::Playing { since, position } => Some(since + duration(self.buffered - position)),
            _ => None,
        };
        let steering = match self.phase {
            Phase::Over => None,
            _ => self.steering.as_ref().and_then(|s| s.due),
        };
        match (dry, steering) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether `fetch`, asked for earlier, is still wanted when its time
    /// comes: a playlist reload of a rendition or pathway the player has
    /// left since is not (hls.js loads only the playlist of the level in
    /// use), nor a manifest or segment it no longer waits for.
    pub fn wants(&self, fetch: &Fetch) -> bool {
        if self.phase == Phase::Over {
            return false;
        }
        match fetch.kind {
            FetchKind::Master => self.pathways.is_empty(),
            FetchKind::Media => self.playlist_inflight.as_ref() == Some(&fetch.url),
            FetchKind::Segment { msn } => self.segment_inflight == Some(msn),
            FetchKind::Steering => self
                .steering
                .as_ref()
                .is_some_and(|s| s.inflight.as_ref() == Some(&fetch.url)),
        }
    }

    /// The pathway in use (`.` without Content Steering pathways).
    pub fn pathway(&self) -> Option<&str> {
        self.pathways.get(self.pathway).map(|p| p.id.as_str())
    }

    /// Whether playback is currently stalled (after having started).
    pub fn is_stalled(&self) -> bool {
        matches!(self.phase, Phase::Stalled { .. })
    }

    /// Whether playback is running.
    pub fn is_playing(&self) -> bool {
        matches!(self.phase, Phase::Playing { .. })
    }

    /// Media ahead of the playhead at `now`, seconds.
    pub fn buffer_ahead(&self, now: Instant) -> f64 {
        match self.phase {
            Phase::Playing { since, position } => {
                (self.buffered - position - secs(now.saturating_duration_since(since))).max(0.0)
            }
            Phase::Stalled { position, .. } => (self.buffered - position).max(0.0),
            Phase::Loading => self.buffered,
            Phase::Over => 0.0,
        }
    }

    /// The current media playlist URL.
    pub fn media_url(&self) -> Option<&Url> {
        self.media_url.as_ref()
    }

    /// The figures so far (without closing the session).
    pub fn stats(&self) -> &PlayerStats {
        &self.stats
    }

    /// Ends the session at `now` (the run is over, or the driver stops the
    /// viewer) and returns its figures. A stall in progress counts until `now`.
    pub fn finish(&mut self, now: Instant) -> PlayerStats {
        let mut ignored = Vec::new();
        self.advance(now, &mut ignored);
        match self.phase {
            Phase::Playing { since, .. } => self.stats.play_time += now.saturating_duration_since(since),
            Phase::Stalled { since, .. } => self.stats.stall_time += now.saturating_duration_since(since),
            Phase::Loading | Phase::Over => {}
        }
        if self.phase != Phase::Over {
            self.stats.watch_time = now.saturating_duration_since(self.started);
        }
        self.phase = Phase::Over;
        self.stats.clone()
    }

    // ---- internals

    /// Moves playback on to `now`: the buffer may have run dry meanwhile.
    fn advance(&mut self, now: Instant, out: &mut Vec<Action>) {
        if let Phase::Playing { since, position } = self.phase {
            let dry_at = since + duration(self.buffered - position);
            // A segment that lands exactly as the buffer runs dry is in time.
            if now > dry_at {
                self.stats.play_time += dry_at.saturating_duration_since(since);
                let nothing_left = self.ended && self.segment_inflight.is_none() && self.known.is_empty();
                if nothing_left {
                    self.phase = Phase::Over;
                    self.stats.watch_time = dry_at.saturating_duration_since(self.started);
                    out.push(Action::Ended);
                } else {
                    self.stats.stalls += 1;
                    self.downloaded_since_wait = 0;
                    self.phase = Phase::Stalled {
                        since: dry_at,
                        position: self.buffered,
                    };
                }
            }
        }
    }

    /// Starts or resumes playback when enough is buffered.
    fn maybe_play(&mut self, now: Instant) {
        let (position, stalled_since) = match self.phase {
            Phase::Loading => (0.0, None),
            Phase::Stalled { since, position } => (position, Some(since)),
            Phase::Playing { .. } | Phase::Over => return,
        };
        let rest_is_buffered = self.ended && self.segment_inflight.is_none() && self.known.is_empty();
        let enough = self.downloaded_since_wait >= self.config.start_segments.max(1)
            || (rest_is_buffered && self.buffered > position);
        if !enough {
            return;
        }
        match stalled_since {
            None => self.stats.startup = Some(now.saturating_duration_since(self.started)),
            Some(since) => self.stats.stall_time += now.saturating_duration_since(since),
        }
        self.phase = Phase::Playing { since: now, position };
    }

    fn fetch_playlist(&mut self, at: Instant, out: &mut Vec<Action>) {
        if let Some(url) = self.media_url.clone() {
            self.playlist_inflight = Some(url.clone());
            out.push(Action::Fetch(Fetch {
                kind: FetchKind::Media,
                url,
                at,
            }));
        }
    }

    fn schedule_segment(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.segment_inflight.is_some() || self.phase == Phase::Over {
            return;
        }
        let Some(next) = self.next_msn else { return };
        let Some(known) = self.known.get(&next) else {
            return;
        };
        let ahead = self.buffer_ahead(now);
        let max = secs(self.config.max_buffer);
        let at = if ahead > max && self.is_playing() {
            now + duration(ahead - max)
        } else {
            now
        };
        out.push(Action::Fetch(Fetch {
            kind: FetchKind::Segment { msn: next },
            url: known.url.clone(),
            at,
        }));
        self.segment_inflight = Some(next);
        self.segment_pathway = Some(known.pathway);
    }

    fn measure(&mut self, done: Downloaded) {
        let elapsed = secs(done.elapsed).max(0.001);
        let sample = done.bytes as f64 * 8.0 / elapsed;
        self.throughput_bps = Some(match self.throughput_bps {
            None => sample,
            Some(previous) => 0.5 * previous + 0.5 * sample,
        });
    }

    /// Throughput-based rendition choice (ABR only).
    fn adapt(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.config.rendition != Rendition::Abr {
            return;
        }
        let (Some(current), Some(bps)) = (self.current, self.throughput_bps) else {
            return;
        };
        let budget = bps * self.config.abr_safety;
        let wanted = self
            .variants()
            .iter()
            .rposition(|v| v.bandwidth as f64 <= budget)
            .unwrap_or(0);
        if wanted != current {
            self.stats.switches += 1;
            self.switch_to(wanted, now, out);
        }
    }

    /// The variants of the pathway in use, by increasing bandwidth.
    fn variants(&self) -> &[PathwayVariant] {
        self.pathways
            .get(self.pathway)
            .map_or(&[][..], |p| p.variants.as_slice())
    }

    /// The id of the pathway in use.
    fn pathway_id(&self) -> &str {
        self.pathway().unwrap_or(crate::hls::DEFAULT_PATHWAY)
    }

    /// Variant `index` of the pathway in use.
    fn switch_to(&mut self, index: usize, now: Instant, out: &mut Vec<Action>) {
        let Some(variant) = self.variants().get(index) else {
            return;
        };
        let (name, url) = (variant.name.clone(), variant.url.clone());
        self.current = Some(index);
        self.stats.rendition = Some(name);
        self.media_url = Some(url);
        // Segment URIs of the old rendition or pathway are of no use any
        // more (but for the one in flight, whose length counts when it
        // lands); the next segment number carries over (renditions and
        // pathways are aligned).
        let inflight = self.segment_inflight;
        self.known.retain(|&msn, _| Some(msn) == inflight);
        self.last_signature = None;
        self.fetch_playlist(now, out);
    }

    /// Moves to pathway `to`, on the variant of the same rendition.
    fn switch_pathway(&mut self, to: usize, now: Instant, out: &mut Vec<Action>) {
        let Some(pathway) = self.pathways.get(to) else {
            return;
        };
        let name = self
            .current
            .and_then(|i| self.variants().get(i))
            .map(|v| v.name.clone());
        let index = pathway
            .variants
            .iter()
            .position(|v| Some(&v.name) == name.as_ref())
            .unwrap_or_else(|| {
                self.current
                    .unwrap_or(0)
                    .min(pathway.variants.len().saturating_sub(1))
            });
        self.stats.pathway = Some(pathway.id.clone());
        self.stats.pathway_switches += 1;
        self.pathway = to;
        self.switch_to(index, now, out);
    }

    /// After a failed segment on the pathway in use (already penalized):
    /// switches at once to the next pathway of the priority (the manifest's,
    /// or the master's order before one came), as hls.js does. Returns
    /// whether it switched.
    fn fail_over(&mut self, now: Instant, out: &mut Vec<Action>) -> bool {
        let priority = self
            .steering
            .as_ref()
            .and_then(|s| s.priority.clone())
            .unwrap_or_else(|| self.pathways.ids());
        if priority.len() < 2 {
            return false;
        }
        let current = self.pathway_id().to_owned();
        let to = steering::next_pathway(&priority, &current, &self.pathways, &self.penalties, now)
            .and_then(|id| self.pathways.index(id));
        match to {
            Some(to) => {
                self.switch_pathway(to, now, out);
                true
            }
            None => false,
        }
    }

    /// Sends the steering manifest request now, with `_HLS_pathway` and
    /// `_HLS_throughput` as they are now.
    fn load_steering(&mut self, now: Instant, out: &mut Vec<Action>) {
        let pathway = self.pathway_id().to_owned();
        let throughput = self.throughput_bps.map(|b| b.round() as u64);
        let Some(s) = self.steering.as_mut() else {
            return;
        };
        let url = steering::manifest_url(&s.reload, &pathway, throughput);
        s.due = None;
        s.inflight = Some(url.clone());
        self.stats.steering_fetches += 1;
        out.push(Action::Fetch(Fetch {
            kind: FetchKind::Steering,
            url,
            at: now,
        }));
    }

    fn give_up(&mut self, now: Instant, reason: String, out: &mut Vec<Action>) {
        self.stats.gave_up = Some(reason);
        self.stats.watch_time = now.saturating_duration_since(self.started);
        if let Phase::Stalled { since, .. } = self.phase {
            self.stats.stall_time += now.saturating_duration_since(since);
        }
        if let Phase::Playing { since, .. } = self.phase {
            self.stats.play_time += now.saturating_duration_since(since);
        }
        self.phase = Phase::Over;
        out.push(Action::GaveUp);
    }
}

#[cfg(test)]
mod tests;
