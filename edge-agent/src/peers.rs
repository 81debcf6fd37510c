//! The routers an edge sends ads to, and whether each answers: a small state
//! machine per router, apart from any I/O. Time comes in as arguments.
//!
//! - A router that answers is due at every heartbeat.
//! - A router that fails is retried after a backoff that doubles with each
//!   consecutive failure (one heartbeat interval, two, four, … up to
//!   [`Policy::max_backoff`]); other routers are not affected.
//! - After [`Policy::down_after`] consecutive failures a router is *down*
//!   (one log line); its first success makes it *up* again (one log line).
//!   Only these flips are reported, never each beat.
//! - Seeds (`--router`) are kept forever. Routers learned from
//!   `GET /api/v1/routers` are forgotten once they have failed without a
//!   break for [`Policy::forget_after`]; they come back if a router lists
//!   them again.

use std::time::{Duration, Instant};

/// How failures are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Backoff after the first failure (the heartbeat interval).
    pub base_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// Consecutive failures that make a router down.
    pub down_after: u32,
    /// A learned router failing without a break for this long is forgotten.
    pub forget_after: Duration,
}

impl Policy {
    /// The policy for a heartbeat `interval`: backoff from one interval up to
    /// eight, down after two failures, learned routers forgotten after `forget_after`.
    pub fn for_interval(interval: Duration, forget_after: Duration) -> Self {
        Policy {
            base_backoff: interval,
            max_backoff: interval * 8,
            down_after: 2,
            forget_after,
        }
    }
}

/// Where the edge heard of a router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Configured (`--router`): never forgotten.
    Seed,
    /// Listed by a router's `GET /api/v1/routers`.
    Learned,
}

/// A change worth one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flip {
    /// The router answers again.
    Up,
    /// The router stopped answering.
    Down,
}

/// One router and what the edge knows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Base URL, normalized (no trailing `/`).
    pub url: String,
    /// Seed or learned.
    pub source: Source,
    up: bool,
    failures: u32,
    failing_since: Option<Instant>,
    next_attempt: Instant,
    in_flight: bool,
}

impl Peer {
    fn new(url: String, source: Source, now: Instant) -> Self {
        Peer {
            url,
            source,
            up: true,
            failures: 0,
            failing_since: None,
            next_attempt: now,
            in_flight: false,
        }
    }

    /// Whether the router answered its last request (or has not been tried).
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records the outcome of a request at `now`; returns a flip if there was one.
    pub fn observe(&mut self, ok: bool, now: Instant, policy: &Policy) -> Option<Flip> {
        self.in_flight = false;
        if ok {
            self.failures = 0;
            self.failing_since = None;
            self.next_attempt = now;
            if !self.up {
                self.up = true;
                return Some(Flip::Up);
            }
            return None;
        }
        self.failures = self.failures.saturating_add(1);
        self.failing_since.get_or_insert(now);
        let doublings = self.failures.saturating_sub(1).min(16);
        let backoff = policy
            .base_backoff
            .saturating_mul(1 << doublings)
            .min(policy.max_backoff);
        self.next_attempt = now + backoff;
        if self.up && self.failures >= policy.down_after {
            self.up = false;
            return Some(Flip::Down);
        }
        None
    }

    fn is_due(&self, now: Instant) -> bool {
        !self.in_flight && now >= self.next_attempt
    }
}

/// Every router the edge knows.
#[derive(Debug, Clone)]
pub struct Peers {
    peers: Vec<Peer>,
    policy: Policy,
    next_discovery: usize,
}

impl Peers {
    /// The seeds (already normalized), all due at once.
    pub fn new(seeds: &[String], policy: Policy, now: Instant) -> Self {
        let mut peers: Vec<Peer> = Vec::with_capacity(seeds.len());
        for url in seeds {
            if !peers.iter().any(|p| &p.url == url) {
                peers.push(Peer::new(url.clone(), Source::Seed, now));
            }
        }
        Peers {
            peers,
            policy,
            next_discovery: 0,
        }
    }

    /// Every router known.
    pub fn all(&self) -> &[Peer] {
        &self.peers
    }

    /// Routers that are due an ad at `now`; each is marked in flight until
    /// its outcome is [`observe`](Self::observe)d, so a router that hangs
    /// gets one request at a time.
    pub fn take_due(&mut self, now: Instant) -> Vec<String> {
        self.peers
            .iter_mut()
            .filter(|p| p.is_due(now))
            .map(|p| {
                p.in_flight = true;
                p.url.clone()
            })
            .collect()
    }

    /// Records the outcome of a request to `url`; unknown URLs (forgotten
    /// meanwhile) are ignored.
    pub fn observe(&mut self, url: &str, ok: bool, now: Instant) -> Option<Flip> {
        let policy = self.policy;
        self.peers
            .iter_mut()
            .find(|p| p.url == url)
            .and_then(|p| p.observe(ok, now, &policy))
    }

    /// Adds routers learned from a router's list (normalized URLs); returns
    /// how many were new. They are due at once.
    pub fn learn(&mut self, urls: &[String], now: Instant) -> usize {
        let mut added = 0;
        for url in urls {
            if !self.peers.iter().any(|p| &p.url == url) {
                self.peers.push(Peer::new(url.clone(), Source::Learned, now));
                added += 1;
            }
        }
        added
    }

    /// Forgets learned routers that have failed without a break for
    /// [`Policy::forget_after`]; returns their URLs.
    pub fn prune(&mut self, now: Instant) -> Vec<String> {
        let forget_after = self.policy.forget_after;
        let mut forgotten = Vec::new();
        self.peers.retain(|p| {
            let gone = p.source == Source::Learned
                && p.failing_since
                    .is_some_and(|since| now.saturating_duration_since(since) >= forget_after);
            if gone {
                forgotten.push(p.url.clone());
            }
            !gone
        });
        forgotten
    }

    /// The router to ask for the router list next: the routers that are up,
    /// in turn; the seeds when none is.
    pub fn discovery_target(&mut self) -> Option<String> {
        let up: Vec<&Peer> = self.peers.iter().filter(|p| p.up).collect();
        let pool: Vec<&Peer> = if up.is_empty() {
            self.peers.iter().filter(|p| p.source == Source::Seed).collect()
        } else {
            up
        };
        if pool.is_empty() {
            return None;
        }
        let pick = pool[self.next_discovery % pool.len()].url.clone();
        self.next_discovery = self.next_discovery.wrapping_add(1);
        Some(pick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn policy() -> Policy {
        Policy::for_interval(S, Duration::from_secs(30))
    }

    #[test]
    fn failures_back_off_and_flip_once() {
        let t0 = Instant::now();
        let mut peers = Peers::new(&["http://a".into(), "http://b".into()], policy(), t0);
        assert_eq!(peers.take_due(t0), ["http://a", "http://b"]);
        assert!(peers.take_due(t0).is_empty(), "in flight: not sent twice");
        assert_eq!(peers.observe("http://b", true, t0), None);
        assert_eq!(
            peers.observe("http://a", false, t0),
            None,
            "one failure is not down"
        );
        // b is due at the next beat; a waits one interval.
        assert_eq!(peers.take_due(t0 + S / 2), ["http://b"]);
        peers.observe("http://b", true, t0 + S / 2);
        assert_eq!(peers.take_due(t0 + S), ["http://a", "http://b"]);
        assert_eq!(peers.observe("http://a", false, t0 + S), Some(Flip::Down));
        peers.observe("http://b", true, t0 + S);
        // Backoff doubles: 2 s after the second failure, then 4 s, 8 s, capped at 8 s.
        let a = "http://a".to_owned();
        let mut t = t0 + S;
        for expected in [2u64, 4, 8, 8, 8] {
            let due_at = t + Duration::from_secs(expected);
            assert!(!peers.take_due(due_at - Duration::from_millis(1)).contains(&a));
            peers.observe("http://b", true, due_at);
            assert!(peers.take_due(due_at).contains(&a));
            assert_eq!(
                peers.observe("http://a", false, due_at),
                None,
                "down already: no new flip"
            );
            t = due_at;
        }
        assert_eq!(peers.observe("http://a", true, t), Some(Flip::Up));
        peers.observe("http://b", true, t);
        assert_eq!(peers.take_due(t), ["http://a", "http://b"]);
    }

    #[test]
    fn learned_routers_that_stay_gone_are_forgotten_seeds_never() {
        let t0 = Instant::now();
        let mut peers = Peers::new(&["http://seed".into()], policy(), t0);
        let learned = vec![
            "http://l1".to_owned(),
            "http://seed".to_owned(),
            "http://l2".to_owned(),
        ];
        assert_eq!(peers.learn(&learned, t0), 2);
        assert_eq!(peers.learn(&learned, t0), 0);
        for url in peers.take_due(t0) {
            peers.observe(&url, url == "http://l2", t0);
        }
        let later = t0 + Duration::from_secs(29);
        assert!(peers.prune(later).is_empty());
        // A success resets the clock; l1 and the seed keep failing.
        let t = t0 + Duration::from_secs(30);
        assert_eq!(peers.prune(t), ["http://l1"]);
        let urls: Vec<&str> = peers.all().iter().map(|p| p.url.as_str()).collect();
        assert_eq!(urls, ["http://seed", "http://l2"]);
        assert!(peers.prune(t + Duration::from_secs(3600)).is_empty());
        assert_eq!(peers.observe("http://l1", true, t), None, "forgotten: ignored");
        assert_eq!(peers.learn(&learned, t), 1, "listed again: back");
    }

    #[test]
    fn discovery_rotates_over_live_routers() {
        let t0 = Instant::now();
        let mut peers = Peers::new(&["http://a".into(), "http://b".into()], policy(), t0);
        let picks: Vec<String> = (0..4).filter_map(|_| peers.discovery_target()).collect();
        assert_eq!(picks, ["http://a", "http://b", "http://a", "http://b"]);
        for _ in 0..2 {
            peers.take_due(t0 + Duration::from_secs(60));
            peers.observe("http://a", false, t0);
        }
        assert_eq!(peers.discovery_target().as_deref(), Some("http://b"));
        assert_eq!(peers.discovery_target().as_deref(), Some("http://b"));
        for _ in 0..2 {
            peers.observe("http://b", false, t0);
        }
        assert!(
            peers.discovery_target().is_some(),
            "all down: the seeds are asked"
        );
        assert_eq!(Peers::new(&[], policy(), t0).discovery_target(), None);
    }
}
