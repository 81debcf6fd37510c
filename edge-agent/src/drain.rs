//! Draining: the edge stops taking new viewers (its ads say `draining`),
//! keeps serving whoever still comes, and exits once no object request has
//! arrived for a quiet period, or the drain timeout passes.
//!
//! [`decide`] is the rule, a pure function of instants; [`Drain`] holds the
//! shared state (set by SIGTERM or `POST /admin/drain`, touched by every
//! object request while draining) and waits on the rule.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Why a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// No request for the quiet period.
    Quiet,
    /// The drain timeout passed.
    Timeout,
}

/// What to do at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Stop serving.
    Exit(End),
    /// Look again at this instant.
    WaitUntil(Instant),
}

/// The drain rule: exit when the last request (or the drain start, if no
/// request came since) is `quiet` ago, or the drain started `timeout` ago.
pub fn decide(
    started: Instant,
    last_request: Option<Instant>,
    now: Instant,
    quiet: Duration,
    timeout: Duration,
) -> Decision {
    let deadline = started + timeout;
    if now >= deadline {
        return Decision::Exit(End::Timeout);
    }
    let last = last_request.map_or(started, |t| t.max(started));
    let quiet_at = last + quiet;
    if now >= quiet_at {
        return Decision::Exit(End::Quiet);
    }
    Decision::WaitUntil(quiet_at.min(deadline))
}

/// The edge's drain state, shared by the HTTP handlers, the heartbeat loop
/// and the server.
#[derive(Debug)]
pub struct Drain {
    epoch: Instant,
    draining: AtomicBool,
    /// Milliseconds after `epoch` of the last object request while draining.
    last_request_ms: AtomicU64,
    state: watch::Sender<Option<Instant>>,
}

impl Drain {
    /// Not draining.
    pub fn new(epoch: Instant) -> Self {
        Drain {
            epoch,
            draining: AtomicBool::new(false),
            last_request_ms: AtomicU64::new(0),
            state: watch::channel(None).0,
        }
    }

    /// Starts draining at `now`; returns false if it already was.
    pub fn start(&self, now: Instant, reason: &'static str) -> bool {
        if self.draining.swap(true, Ordering::SeqCst) {
            return false;
        }
        tracing::info!(reason, "draining: no new viewers, serving the ones who come");
        self.state.send_replace(Some(now));
        true
    }

    /// Whether the edge is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Records an object request at `now` (a no-op unless draining, so the
    /// serving path pays one relaxed load).
    pub fn touch(&self, now: Instant) {
        if self.is_draining() {
            let ms = u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX);
            self.last_request_ms.fetch_max(ms, Ordering::Relaxed);
        }
    }

    /// Changes when the drain starts (`Some(start)`).
    pub fn subscribe(&self) -> watch::Receiver<Option<Instant>> {
        self.state.subscribe()
    }

    /// Resolves once a drain has started and then ended by [`decide`].
    pub async fn finished(&self, quiet: Duration, timeout: Duration) -> End {
        let mut rx = self.subscribe();
        let started = loop {
            if let Some(started) = *rx.borrow_and_update() {
                break started;
            }
            if rx.changed().await.is_err() {
                // Cannot happen: `self` owns the sender.
                std::future::pending::<()>().await;
            }
        };
        loop {
            let ms = self.last_request_ms.load(Ordering::Relaxed);
            let last = (ms > 0).then(|| self.epoch + Duration::from_millis(ms));
            // tokio's clock: the same as std's, but pausable in tests.
            let now = tokio::time::Instant::now().into_std();
            match decide(started, last, now, quiet, timeout) {
                Decision::Exit(end) => {
                    tracing::info!(end = ?end, "drain finished");
                    return end;
                }
                Decision::WaitUntil(at) => tokio::time::sleep_until(at.into()).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn quiet_period_and_timeout() {
        let t0 = Instant::now();
        let (quiet, timeout) = (5 * S, 60 * S);
        assert_eq!(
            decide(t0, None, t0, quiet, timeout),
            Decision::WaitUntil(t0 + 5 * S)
        );
        assert_eq!(
            decide(t0, None, t0 + 5 * S, quiet, timeout),
            Decision::Exit(End::Quiet)
        );
        let last = Some(t0 + 3 * S);
        assert_eq!(
            decide(t0, last, t0 + 5 * S, quiet, timeout),
            Decision::WaitUntil(t0 + 8 * S)
        );
        assert_eq!(
            decide(t0, last, t0 + 8 * S, quiet, timeout),
            Decision::Exit(End::Quiet)
        );
        // A request before the drain started does not extend it.
        let before = t0.checked_sub(S);
        assert_eq!(
            decide(t0, before, t0 + 5 * S, quiet, timeout),
            Decision::Exit(End::Quiet)
        );
        // Busy to the end: the timeout wins.
        let busy = Some(t0 + 58 * S);
        assert_eq!(
            decide(t0, busy, t0 + 59 * S, quiet, timeout),
            Decision::WaitUntil(t0 + 60 * S)
        );
        assert_eq!(
            decide(t0, busy, t0 + 60 * S, quiet, timeout),
            Decision::Exit(End::Timeout)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn requests_keep_a_drain_going() {
        let now = || tokio::time::Instant::now().into_std();
        let drain = std::sync::Arc::new(Drain::new(now()));
        drain.touch(now());
        assert!(!drain.is_draining());
        let waiter = {
            let drain = drain.clone();
            tokio::spawn(async move { drain.finished(2 * S, 60 * S).await })
        };
        tokio::time::sleep(10 * S).await;
        assert!(!waiter.is_finished(), "no drain, no end");
        assert!(drain.start(now(), "test"));
        assert!(!drain.start(now(), "test"), "once");
        for _ in 0..5 {
            tokio::time::sleep(S).await;
            drain.touch(now());
        }
        assert!(!waiter.is_finished());
        let quiet_from = now();
        assert_eq!(waiter.await.expect("task"), End::Quiet);
        let waited = now() - quiet_from;
        assert!(waited >= 2 * S && waited < 3 * S, "{waited:?}");
    }
}
