//! What a `players` run is asked to do: [`PlayersConfig`] with the command
//! line's defaults, the limits it must keep, and [`PlayersConfig::validate`]
//! whose messages name the flag.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};
use crate::player::PlayerConfig;
use crate::report::TimelineSample;

/// Most viewers one run may simulate.
pub const MAX_VIEWERS: usize = 1_000_000;
/// Longest run.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// The streams of `hlscdn-origin --publish-demo`.
pub const DEMO_STREAMS: [&str; 4] = ["live/demo-1", "live/demo-2", "live/demo-3", "vod/demo"];
/// Segment URL probes in flight at once.
pub const PROBE_CONCURRENCY: usize = 4;
/// Segment URLs waiting for a probe; one seen while the queue is full is not
/// probed (the report shows URLs seen and probed).
pub const PROBE_QUEUE: usize = 1024;
/// Longest a probe may take (less when `--timeout` is shorter).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the stream list comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Streams {
    /// `GET <origin>/api/v1/streams`: every stream with a multivariant playlist.
    Origin(Url),
    /// These stream names (`live/demo-1`) or playlist paths (`x/master.m3u8`).
    List(Vec<String>),
}

/// A `players` run.
#[derive(Debug, Clone)]
pub struct PlayersConfig {
    /// Routers; viewers take them in turn.
    pub routers: Vec<Url>,
    /// Viewers in all.
    pub viewers: usize,
    /// How long the run lasts; every viewer stops then.
    pub duration: Duration,
    /// Viewers arriving per second.
    pub arrival_rate: f64,
    /// Each player's settings.
    pub player: PlayerConfig,
    /// Zipf exponent of stream popularity (the first stream is the most popular).
    pub zipf: f64,
    /// The streams.
    pub streams: Streams,
    /// The origin's `/metrics`, for origin requests.
    pub origin_metrics: Option<Url>,
    /// The edges' `/metrics`; empty: every edge a router lists at the start.
    pub edge_metrics: Vec<Url>,
    /// Seed of stream choices.
    pub seed: u64,
    /// Request timeout.
    pub timeout: Duration,
    /// Requests slower than this count as slow.
    pub slow: Duration,
    /// Print a progress line every second (stderr).
    pub progress: bool,
    /// Probe every segment URL the playlists name (one byte each, once per
    /// URL) for the "every segment URL fetchable" invariant. Off by default:
    /// probes of segments no viewer plays add edge and origin requests and
    /// lower the cache figures.
    pub probe_segments: bool,
    /// Receives the timeline sample of every second while the run goes on
    /// (tests use it to pick the edge carrying the most viewers).
    pub live: Option<Arc<tokio::sync::watch::Sender<TimelineSample>>>,
}

impl PlayersConfig {
    /// A run against `routers` with the defaults of the command line.
    pub fn new(routers: Vec<Url>, viewers: usize, duration: Duration) -> Self {
        PlayersConfig {
            routers,
            viewers,
            duration,
            arrival_rate: default_arrival_rate(viewers),
            player: PlayerConfig::default(),
            zipf: 1.0,
            streams: Streams::List(DEMO_STREAMS.iter().map(|s| (*s).to_owned()).collect()),
            origin_metrics: None,
            edge_metrics: Vec::new(),
            seed: 1,
            timeout: Duration::from_secs(10),
            slow: Duration::from_secs(1),
            progress: false,
            probe_segments: false,
            live: None,
        }
    }

    /// Checks the values; messages name the flag.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::BadInput(m));
        if self.routers.is_empty() {
            return bad("`--router` is required".into());
        }
        if self.viewers == 0 || self.viewers > MAX_VIEWERS {
            return bad(format!("`--viewers` must be within 1..={MAX_VIEWERS}"));
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            return bad("`--duration` must be within 1s..=24h".into());
        }
        if !(self.arrival_rate.is_finite() && self.arrival_rate > 0.0) {
            return bad(format!(
                "`--arrival-rate` must be > 0 (got {})",
                self.arrival_rate
            ));
        }
        if self.timeout.is_zero() {
            return bad("`--timeout` must be > 0".into());
        }
        if let Streams::List(list) = &self.streams
            && list.is_empty()
        {
            return bad("`--stream` needs at least one stream".into());
        }
        Ok(())
    }
}

/// Default arrival rate: every viewer within 10 s, at least one per second.
pub fn default_arrival_rate(viewers: usize) -> f64 {
    (viewers as f64 / 10.0).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_flag() {
        let url = Url::parse("http://127.0.0.1:8080").expect("url");
        let ok = PlayersConfig::new(vec![url.clone()], 10, Duration::from_secs(5));
        assert!(ok.validate().is_ok());
        let cases: Vec<(PlayersConfig, &str)> = vec![
            (PlayersConfig::new(vec![], 10, Duration::from_secs(5)), "--router"),
            (
                PlayersConfig::new(vec![url.clone()], 0, Duration::from_secs(5)),
                "--viewers",
            ),
            (
                PlayersConfig::new(vec![url.clone()], 1, Duration::ZERO),
                "--duration",
            ),
            (
                PlayersConfig {
                    arrival_rate: 0.0,
                    ..ok.clone()
                },
                "--arrival-rate",
            ),
            (
                PlayersConfig {
                    streams: Streams::List(vec![]),
                    ..ok.clone()
                },
                "--stream",
            ),
        ];
        for (config, flag) in cases {
            let err = config.validate().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(flag), "{err:?} lacks {flag}");
        }
    }

    #[test]
    fn viewers_arrive_within_ten_seconds_at_least_one_a_second() {
        assert_eq!(default_arrival_rate(50), 5.0);
        assert_eq!(default_arrival_rate(3), 1.0);
    }
}
