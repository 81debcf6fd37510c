//! One viewer task: sessions of a [`Player`] one after the other until the
//! player gives up or the run ends. The player says what to fetch and when;
//! this performs the fetches (playlists and steering manifests through
//! [`super::failover`], segments from the edges), records each in the
//! recorder, hands media playlists to [`super::probe`], and keeps the
//! progress counters of playing and stalled viewers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc;
use url::Url;

use super::failover::get_playlist;
use super::fetch::get_segment;
use super::probe::check;
use super::{Shared, Viewer};
use crate::hls;
use crate::player::{Action, Downloaded, Failure, Fetch, FetchKind, Player, PlayerConfig};
use crate::stats::SegmentRecord;
use crate::steering;

/// How a session ended.
enum SessionEnd {
    /// Played to the end (VOD): the viewer starts over.
    Ended,
    /// The player gave up: the viewer leaves.
    GaveUp,
    /// The run is over.
    RunOver,
}

/// One viewer: sessions one after the other until the run ends.
pub(super) async fn viewer(
    id: usize,
    master: Url,
    config: PlayerConfig,
    shared: Arc<Shared>,
    end: Instant,
    probes: Option<mpsc::Sender<Url>>,
) {
    shared.active.fetch_add(1, Ordering::Relaxed);
    let me = Viewer {
        id,
        router: AtomicUsize::new(id % shared.routers.len().max(1)),
        probes,
        shared: &shared,
    };
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let (mut player, actions) = Player::new(master.clone(), config.clone(), now);
        let mut state = PlayState::default();
        let outcome = session(&me, &mut player, actions, end, &mut state).await;
        let stats = player.finish(Instant::now().min(end));
        state.set(&shared, false, false);
        shared.recorder().session(id, &stats);
        match outcome {
            SessionEnd::Ended => continue,
            SessionEnd::GaveUp | SessionEnd::RunOver => break,
        }
    }
    shared.active.fetch_sub(1, Ordering::Relaxed);
}

/// What the progress counters know of one viewer.
#[derive(Debug, Default)]
struct PlayState {
    playing: bool,
    stalled: bool,
}

impl PlayState {
    fn set(&mut self, shared: &Shared, playing: bool, stalled: bool) {
        if playing != self.playing {
            if playing {
                shared.playing.fetch_add(1, Ordering::Relaxed);
            } else {
                shared.playing.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if stalled != self.stalled {
            if stalled {
                shared.stalled.fetch_add(1, Ordering::Relaxed);
                shared.stalls.fetch_add(1, Ordering::Relaxed);
            } else {
                shared.stalled.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.playing = playing;
        self.stalled = stalled;
    }
}

/// What a finished request tells the player.
enum Done {
    Master(Result<hls::MasterInfo, Failure>),
    Media {
        url: Url,
        requested_at: Instant,
        result: Result<hls::MediaInfo, Failure>,
    },
    Segment {
        msn: u64,
        result: Result<Downloaded, Failure>,
    },
    Steering {
        url: Url,
        result: Result<steering::Manifest, Failure>,
    },
}

async fn session(
    viewer: &Viewer<'_>,
    player: &mut Player,
    first: Vec<Action>,
    end: Instant,
    state: &mut PlayState,
) -> SessionEnd {
    let shared = viewer.shared;
    let mut pending: Vec<Fetch> = Vec::new();
    let mut inflight = FuturesUnordered::new();
    let mut actions = first;
    loop {
        for action in actions.drain(..) {
            match action {
                Action::Fetch(fetch) => pending.push(fetch),
                Action::Ended => return SessionEnd::Ended,
                Action::GaveUp => return SessionEnd::GaveUp,
            }
        }
        state.set(shared, player.is_playing(), player.is_stalled());
        let now = Instant::now();
        let mut i = 0;
        while i < pending.len() {
            if pending[i].at <= now {
                let fetch = pending.swap_remove(i);
                // A reload of a playlist the player has switched away from
                // is not sent (nor checked, nor its URLs probed).
                if player.wants(&fetch) {
                    inflight.push(perform(viewer, fetch));
                }
            } else {
                i += 1;
            }
        }
        let wake = pending
            .iter()
            .map(|f| f.at)
            .chain(player.deadline().map(|d| d + Duration::from_millis(1)))
            .fold(end, Instant::min);
        tokio::select! {
            Some(done) = inflight.next(), if !inflight.is_empty() => {
                let now = Instant::now();
                actions = match done {
                    Done::Master(result) => player.on_master(now, result),
                    Done::Media { url, requested_at, result } => player.on_media(now, &url, requested_at, result),
                    Done::Segment { msn, result } => player.on_segment(now, msn, result),
                    Done::Steering { url, result } => player.on_steering(now, &url, result),
                };
            }
            () = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                if now >= end {
                    return SessionEnd::RunOver;
                }
                actions = player.tick(now);
            }
        }
    }
}

/// Sends one request, records it, and says what came of it.
async fn perform(viewer: &Viewer<'_>, fetch: Fetch) -> Done {
    let shared = viewer.shared;
    let started = Instant::now();
    match fetch.kind {
        FetchKind::Steering => {
            let (_, body) = get_playlist(viewer, &fetch.url).await;
            let elapsed = started.elapsed();
            let result = body.and_then(|b| {
                steering::parse_manifest(&b).map_err(|_| Failure("unusable steering manifest".into()))
            });
            shared
                .recorder()
                .steering(elapsed, result.as_ref().err().map(|f| f.0.as_str()));
            Done::Steering {
                url: fetch.url,
                result,
            }
        }
        FetchKind::Master | FetchKind::Media => {
            let master = fetch.kind == FetchKind::Master;
            let (answered, body) = get_playlist(viewer, &fetch.url).await;
            let elapsed = started.elapsed();
            let parsed = body.and_then(|b| {
                let parsed = if master {
                    hls::parse_master(&b).map(Ok)
                } else {
                    hls::parse_media(&b).map(Err)
                };
                parsed.map_err(|_| Failure("unusable playlist".into()))
            });
            shared
                .recorder()
                .playlist(master, elapsed, parsed.as_ref().err().map(|f| f.0.as_str()));
            match parsed {
                Ok(Ok(m)) => Done::Master(Ok(m)),
                Ok(Err(m)) => {
                    check(viewer, &answered, &m);
                    Done::Media {
                        url: fetch.url,
                        requested_at: started,
                        result: Ok(m),
                    }
                }
                Err(f) if master => Done::Master(Err(f)),
                Err(f) => Done::Media {
                    url: fetch.url,
                    requested_at: started,
                    result: Err(f),
                },
            }
        }
        FetchKind::Segment { msn } => {
            let (ttfb, bytes, result) = get_segment(&shared.client, &fetch.url).await;
            let elapsed = started.elapsed();
            shared.recorder().segment(&SegmentRecord {
                viewer: viewer.id,
                edge: &hls::edge_of(&fetch.url),
                object: hls::object_of(&fetch.url),
                ttfb,
                elapsed,
                bytes,
                error: result.as_ref().err().map(|f| f.0.as_str()),
            });
            Done::Segment {
                msn,
                result: result.map(|()| Downloaded { bytes, elapsed }),
            }
        }
    }
}
