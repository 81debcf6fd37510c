//! Stream invariants: what every media playlist a viewer receives must keep,
//! checked as the playlists arrive. Pure: no I/O and no clock; the wall time
//! a playlist arrived comes in as an argument, and the driver probes the
//! segment URLs [`Checker::observe`] hands back and reports each outcome with
//! [`Checker::probed`].
//!
//! A *track* is one rendition: the playlist URL's path, without host and
//! query, so one rendition reached through two routers (or with two session
//! tokens) is one track. The invariants:
//!
//! - **Backwards**: the media sequence of one viewer's playlists of one track
//!   never decreases.
//! - **Discontinuity**: the discontinuity number of a media sequence number
//!   (`EXT-X-DISCONTINUITY-SEQUENCE` plus the `EXT-X-DISCONTINUITY` tags up to
//!   and including that segment) is the same in every playlist of the track,
//!   whichever viewer received it.
//! - **Too old**: a live playlist (no `EXT-X-ENDLIST`) arrives at most
//!   [`MAX_AGE_TARGET_DURATIONS`] target durations after its newest segment
//!   ended. The end is the newest `EXT-X-PROGRAM-DATE-TIME` plus the durations
//!   from that segment to the last one (a publisher stamps a segment with the
//!   time it starts and publishes it when it ends). A playlist without any
//!   program date time is too old when its newest segment was first seen, by
//!   any viewer, more than that long before: the track has not advanced since.
//! - **Unfetchable**: every distinct segment URL of every playlist answers a
//!   probe with 2xx.
//! - **Listed URI changed**: within one media playlist URL of one viewer
//!   (path and query; the router's host is left out, since a viewer failing
//!   over to another router asks the same playlist), a listed segment or
//!   part `(msn, part)` keeps the host and path it was first listed with
//!   (compared without query, as hls.js `mergeDetails` does; RFC 8216
//!   section 6.2.1 lets a server only append, drop from the front, or end).
//!   [`Listed`] is that check, also used by the player, which counts each
//!   change as a playlist error as hls.js raises `LEVEL_PARSING_ERROR`.
//!
//! Each violating playlist or URL counts once, with a one-line description.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use url::Url;

use crate::hls::{self, MediaInfo};

/// A live playlist may arrive at most this many target durations after its
/// newest segment ended.
pub const MAX_AGE_TARGET_DURATIONS: f64 = 3.0;
/// Violations kept word for word; the rest are only counted.
pub const KEPT_VIOLATIONS: usize = 20;
/// Media sequence numbers remembered per track below the highest media
/// sequence seen on it (for the discontinuity check), so that a long live run
/// stays bounded. A VOD track keeps every segment.
const KEEP_BEHIND: u64 = 1024;

/// What an invariant violation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A viewer's media sequence went backwards on a track.
    Backwards,
    /// A media sequence number changed discontinuity number.
    Discontinuity,
    /// A live playlist arrived too long after its newest segment ended.
    TooOld,
    /// A segment URL did not answer a probe with 2xx.
    Unfetchable,
    /// A listed segment or part changed host or path in one playlist URL.
    ListedUriChanged,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 5] = [
        Kind::Backwards,
        Kind::Discontinuity,
        Kind::TooOld,
        Kind::Unfetchable,
        Kind::ListedUriChanged,
    ];

    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Backwards => "backwards",
            Kind::Discontinuity => "discontinuity",
            Kind::TooOld => "too_old",
            Kind::Unfetchable => "unfetchable",
            Kind::ListedUriChanged => "listed_uri_changed",
        }
    }
}

/// One violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// What it is about.
    pub kind: Kind,
    /// One line: which viewer, track or URL, and what was seen.
    pub description: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.description)
    }
}

/// A media playlist as one viewer received it.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// The viewer's number.
    pub viewer: usize,
    /// Where it was fetched (any router); its path names the track, and
    /// relative segment URIs resolve against it.
    pub url: &'a Url,
    /// Wall-clock time it arrived.
    pub at: SystemTime,
    /// What it said.
    pub playlist: &'a MediaInfo,
}

/// How a probe of a segment URL went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A 2xx status (206 for a one-byte range).
    Fetchable,
    /// Any other status.
    Status(u16),
    /// No answer: connection refused or reset, timeout (the reason).
    NoAnswer(String),
}

/// The checker's figures, for the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InvariantFigures {
    /// Media playlists checked.
    pub playlists_checked: u64,
    /// Distinct segment URLs seen in them.
    pub uris_seen: u64,
    /// Of those, probed (the rest were still queued when the run ended, or
    /// the probe queue was full).
    pub uris_probed: u64,
    /// Violations of every kind, by name (zeros included).
    pub violations: BTreeMap<&'static str, u64>,
    /// Sum of `violations`.
    pub violations_total: u64,
    /// The first [`KEPT_VIOLATIONS`] violations, `kind: description`.
    pub first_violations: Vec<String>,
}

/// What is known of one segment of a track.
#[derive(Debug, Clone, Copy)]
struct Seen {
    discontinuity: u64,
    first_seen: SystemTime,
}

/// What is known of one track.
#[derive(Debug)]
struct Track {
    name: String,
    segments: BTreeMap<u64, Seen>,
    highest_sequence: u64,
}

/// Checks every playlist it is given; see the module docs.
#[derive(Debug, Default)]
pub struct Checker {
    track_ids: HashMap<String, usize>,
    tracks: Vec<Track>,
    /// Latest media sequence per (viewer, track).
    positions: HashMap<(usize, usize), u64>,
    /// Listed URIs per (viewer, playlist path and query).
    listed: HashMap<(usize, String), Listed>,
    uris: HashSet<String>,
    playlists: u64,
    probed: u64,
    counts: BTreeMap<Kind, u64>,
    kept: Vec<Violation>,
}

impl Checker {
    /// A checker that has seen nothing.
    pub fn new() -> Self {
        Checker::default()
    }

    /// Checks one received playlist. Returns the segment URLs no playlist
    /// named before, for the driver to probe (each once) and report with
    /// [`Checker::probed`].
    pub fn observe(&mut self, r: Received<'_>) -> Vec<Url> {
        self.playlists += 1;
        let p = r.playlist;
        let id = self.track_id(r.url.path());
        let mut found = Vec::new();

        let position = self.positions.entry((r.viewer, id)).or_insert(p.media_sequence);
        if p.media_sequence < *position {
            found.push(Violation {
                kind: Kind::Backwards,
                description: format!(
                    "viewer {} {}: media sequence {} after {}",
                    r.viewer, self.tracks[id].name, p.media_sequence, position
                ),
            });
        }
        *position = p.media_sequence;

        let track = &mut self.tracks[id];
        let mut discontinuity = p.discontinuity_sequence;
        let mut changed: Option<(u64, u64, u64)> = None;
        for s in &p.segments {
            if s.discontinuity {
                discontinuity += 1;
            }
            match track.segments.entry(s.msn) {
                Entry::Occupied(seen) => {
                    if seen.get().discontinuity != discontinuity {
                        changed.get_or_insert((s.msn, discontinuity, seen.get().discontinuity));
                    }
                }
                Entry::Vacant(slot) => {
                    slot.insert(Seen {
                        discontinuity,
                        first_seen: r.at,
                    });
                }
            }
        }
        if let Some((msn, now, before)) = changed {
            found.push(Violation {
                kind: Kind::Discontinuity,
                description: format!(
                    "viewer {} {}: segment {msn} in discontinuity {now}, {before} in an earlier playlist",
                    r.viewer, track.name
                ),
            });
        }

        if let Some(newest) = p.segments.last()
            && !p.ended
            && p.target_duration > 0.0
        {
            let limit = MAX_AGE_TARGET_DURATIONS * p.target_duration;
            let (since, how) = match newest_end(p) {
                Some(end) => (end, "ended"),
                None => (
                    track.segments.get(&newest.msn).map_or(r.at, |s| s.first_seen),
                    "was first seen (no program date time)",
                ),
            };
            let age = r.at.duration_since(since).unwrap_or(Duration::ZERO).as_secs_f64();
            if age > limit {
                found.push(Violation {
                    kind: Kind::TooOld,
                    description: format!(
                        "viewer {} {}: newest segment {} {how} {age:.1} s before the playlist arrived (limit {limit:.1} s)",
                        r.viewer, track.name, newest.msn
                    ),
                });
            }
        }

        track.highest_sequence = track.highest_sequence.max(p.media_sequence);
        let floor = track.highest_sequence.saturating_sub(KEEP_BEHIND);
        while let Some(oldest) = track.segments.first_entry()
            && *oldest.key() < floor
        {
            oldest.remove();
        }

        let playlist = match r.url.query() {
            Some(q) => format!("{}?{q}", r.url.path()),
            None => r.url.path().to_owned(),
        };
        let changes = self
            .listed
            .entry((r.viewer, playlist.clone()))
            .or_default()
            .observe(r.url, p);
        if let Some(c) = changes.first() {
            found.push(Violation {
                kind: Kind::ListedUriChanged,
                description: format!(
                    "viewer {} {playlist}: {} listed as {} after {}{}",
                    r.viewer,
                    c.what(),
                    c.now,
                    c.before,
                    match changes.len() {
                        1 => String::new(),
                        n => format!(" ({} more in this playlist)", n - 1),
                    }
                ),
            });
        }

        let mut fresh = Vec::new();
        for s in &p.segments {
            if self.uris.contains(&s.uri) {
                continue;
            }
            match r.url.join(&s.uri) {
                Ok(url) => {
                    if self.uris.insert(url.as_str().to_owned()) {
                        fresh.push(url);
                    }
                }
                Err(e) => {
                    self.uris.insert(s.uri.clone());
                    found.push(Violation {
                        kind: Kind::Unfetchable,
                        description: format!("segment URI {:?} in {}: {e}", s.uri, r.url.path()),
                    });
                }
            }
        }
        for v in found {
            self.record(v);
        }
        fresh
    }

    /// The probe of `url` (handed out by [`Checker::observe`]) came back.
    pub fn probed(&mut self, url: &Url, probe: Probe) {
        self.probed += 1;
        let host = hls::edge_of(url);
        let description = match probe {
            Probe::Fetchable => return,
            Probe::Status(status) => format!("{url}: {host} answered {status}"),
            Probe::NoAnswer(reason) => format!("{url}: no answer from {host} ({reason})"),
        };
        self.record(Violation {
            kind: Kind::Unfetchable,
            description,
        });
    }

    /// Violations of `kind` so far.
    pub fn count(&self, kind: Kind) -> u64 {
        self.counts.get(&kind).copied().unwrap_or(0)
    }

    /// The first [`KEPT_VIOLATIONS`] violations.
    pub fn first_violations(&self) -> &[Violation] {
        &self.kept
    }

    /// The figures so far.
    pub fn figures(&self) -> InvariantFigures {
        InvariantFigures {
            playlists_checked: self.playlists,
            uris_seen: self.uris.len() as u64,
            uris_probed: self.probed,
            violations: Kind::ALL.iter().map(|&k| (k.name(), self.count(k))).collect(),
            violations_total: self.counts.values().sum(),
            first_violations: self.kept.iter().map(Violation::to_string).collect(),
        }
    }

    fn track_id(&mut self, name: &str) -> usize {
        if let Some(&id) = self.track_ids.get(name) {
            return id;
        }
        self.tracks.push(Track {
            name: name.to_owned(),
            segments: BTreeMap::new(),
            highest_sequence: 0,
        });
        self.track_ids.insert(name.to_owned(), self.tracks.len() - 1);
        self.tracks.len() - 1
    }

    fn record(&mut self, violation: Violation) {
        *self.counts.entry(violation.kind).or_default() += 1;
        if self.kept.len() < KEPT_VIOLATIONS {
            self.kept.push(violation);
        }
    }
}

/// A change of a listed URI, as [`Listed::observe`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Media sequence number.
    pub msn: u64,
    /// Part index, for an `EXT-X-PART`.
    pub part: Option<u32>,
    /// Scheme, host and path listed before.
    pub before: String,
    /// Scheme, host and path listed now.
    pub now: String,
}

impl Change {
    /// `segment 12` or `segment 12 part 3`.
    pub fn what(&self) -> String {
        match self.part {
            Some(part) => format!("segment {} part {part}", self.msn),
            None => format!("segment {}", self.msn),
        }
    }
}

/// What one media playlist URL listed: for each `(msn, part)` still in its
/// window, the URI resolved and without query and fragment. Pure; bounded
/// by the playlist's window (older entries are dropped as the media
/// sequence moves on; an ended playlist is compared, then forgotten, since
/// a player does not reload it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed {
    uris: BTreeMap<(u64, Option<u32>), String>,
}

impl Listed {
    /// Compares a playlist fetched from `url` with what earlier ones listed,
    /// and remembers it. Returns each `(msn, part)` whose host or path
    /// changed (each change once: the new URI is remembered).
    pub fn observe(&mut self, url: &Url, p: &MediaInfo) -> Vec<Change> {
        let listed = p
            .segments
            .iter()
            .map(|s| ((s.msn, None), s.uri.as_str()))
            .chain(p.parts.iter().map(|x| ((x.msn, Some(x.index)), x.uri.as_str())));
        let mut changes = Vec::new();
        for (key, uri) in listed {
            let Some(now) = without_query(url, uri) else {
                continue;
            };
            match self.uris.entry(key) {
                Entry::Occupied(mut seen) => {
                    if *seen.get() != now {
                        changes.push(Change {
                            msn: key.0,
                            part: key.1,
                            before: seen.insert(now.clone()),
                            now,
                        });
                    }
                }
                Entry::Vacant(slot) => {
                    slot.insert(now);
                }
            }
        }
        if p.ended {
            self.uris.clear();
        } else {
            self.uris = self.uris.split_off(&(p.media_sequence, None));
        }
        changes
    }

    /// Entries remembered.
    pub fn len(&self) -> usize {
        self.uris.len()
    }

    /// Nothing remembered.
    pub fn is_empty(&self) -> bool {
        self.uris.is_empty()
    }
}

/// `uri` resolved against `base`, without query and fragment.
fn without_query(base: &Url, uri: &str) -> Option<String> {
    let mut url = base.join(uri).ok()?;
    url.set_query(None);
    url.set_fragment(None);
    Some(url.into())
}

/// When the newest segment ended, by the last program date time in the
/// playlist plus the durations from that segment to the end.
fn newest_end(p: &MediaInfo) -> Option<SystemTime> {
    let (i, start) = p
        .segments
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, s)| s.program_date_time.map(|t| (i, t)))?;
    let span: f64 = p.segments[i..].iter().map(|s| s.duration).sum();
    start.checked_add(Duration::try_from_secs_f64(span).ok()?)
}

#[cfg(test)]
mod tests;
