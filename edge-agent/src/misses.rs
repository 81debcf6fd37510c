//! Origin lookups for names the cache does not hold: when an origin 404 may
//! answer a request, and how many lookups that find nothing the origin is
//! asked for. Pure: sequence numbers and time come in as arguments; the
//! cache ([`crate::cache`]) does the I/O.
//!
//! - **No 404 from memory.** A live segment name asked for before it is
//!   published must not make a later viewer fail, so an origin 404 answers
//!   only the requests that arrived before the lookup that produced it was
//!   opened ([`not_found_answers`]). A request that joins a lookup opened
//!   earlier and sees it end in 404 asks again; concurrent askers collapse
//!   into one lookup in flight per name.
//! - **A budget for lookups that find nothing.** Every origin lookup takes a
//!   token from a global bucket ([`Budget`], `miss_lookups_per_sec` per
//!   second, as many in a burst); the token is given back as soon as the
//!   origin says the object exists. So lookups that find nothing (404, errors)
//!   are at most `rate × (1 + t)` over any `t` seconds, whatever a flood of
//!   random names does. With no token left the edge answers 503 with
//!   `Retry-After: 1` without asking the origin: a player retries a 503, not
//!   a 404, so even then no viewer is told that a segment does not exist.

use std::time::Instant;

/// Whether an origin 404 from a lookup opened at `opened` may answer a
/// request that arrived at `arrived`, both numbers drawn from one counter
/// that only grows: only if the lookup was opened after the request arrived,
/// so it saw the origin as it was when the viewer asked.
pub fn not_found_answers(opened: u64, arrived: u64) -> bool {
    opened > arrived
}

/// A token bucket of origin lookups.
#[derive(Debug, Clone)]
pub struct Budget {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl Budget {
    /// A full bucket of `per_sec` tokens, refilled at `per_sec` a second.
    pub fn new(per_sec: u32) -> Self {
        let rate = f64::from(per_sec.max(1));
        Budget {
            rate,
            burst: rate,
            tokens: rate,
            last: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        }
        // Time never runs backwards here: an earlier `now` refills nothing.
        if self.last.is_none_or(|last| now > last) {
            self.last = Some(now);
        }
    }

    /// Takes a token for one origin lookup, if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Gives a token back: the lookup found the object.
    pub fn refund(&mut self, now: Instant) {
        self.refill(now);
        self.tokens = (self.tokens + 1.0).min(self.burst);
    }

    /// Whole tokens left at `now`.
    pub fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        self.tokens as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_full_bucket_then_its_rate() {
        let t0 = Instant::now();
        let mut b = Budget::new(100);
        assert_eq!((0..1000).filter(|_| b.try_take(t0)).count(), 100);
        assert!(!b.try_take(t0));
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!((0..1000).filter(|_| b.try_take(t1)).count(), 50);
        b.refund(t1);
        assert!(b.try_take(t1), "a refunded token can be taken again");
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!(b.available(t2), 100, "never more than the burst");
    }

    #[test]
    fn a_404_answers_only_who_asked_before_the_lookup() {
        assert!(not_found_answers(5, 4));
        assert!(!not_found_answers(5, 5));
        assert!(!not_found_answers(5, 9));
    }

    proptest::proptest! {
        /// Whatever the pattern of lookups and refunds, lookups that were
        /// not refunded over any span of `t` seconds stay within
        /// `rate × (1 + t)`.
        #[test]
        fn lookups_that_find_nothing_are_bounded(
            steps in proptest::collection::vec((0u64..50, 1usize..40, proptest::bool::ANY), 1..200),
            rate in 1u32..200,
        ) {
            let t0 = Instant::now();
            let mut b = Budget::new(rate);
            let mut now = t0;
            let mut kept = 0u64;
            for (gap_ms, tries, found) in steps {
                now += Duration::from_millis(gap_ms);
                for _ in 0..tries {
                    if b.try_take(now) {
                        if found {
                            b.refund(now);
                        } else {
                            kept += 1;
                        }
                    }
                }
                let bound = f64::from(rate) * (1.0 + now.duration_since(t0).as_secs_f64());
                proptest::prop_assert!(kept as f64 <= bound + 1e-6, "{kept} > {bound}");
            }
        }

        /// A simulated name: viewers and attackers ask at random moments,
        /// lookups take random times, and the object appears at `publish`.
        /// Following the rule (a request that saw a 404 opened before it
        /// arrived asks again), no request that arrived after `publish` is
        /// answered 404, and at most one lookup is in flight at a time.
        #[test]
        fn no_viewer_after_publication_gets_404(
            arrivals in proptest::collection::vec(0u64..2000, 1..60),
            durations in proptest::collection::vec(1u64..50, 60),
            publish in 0u64..2000,
        ) {
            // Event-driven simulation on a millisecond clock; a lookup
            // sees the origin as it is when it is opened.
            let mut arrivals = arrivals;
            arrivals.sort_unstable();
            let mut seq = 0u64;
            // (arrival time, arrival seq) of requests waiting for an answer.
            let mut waiting: Vec<(u64, u64)> = Vec::new();
            // The lookup in flight: (opened seq, found, ends at).
            let mut inflight: Option<(u64, bool, u64)> = None;
            let mut next = arrivals.into_iter().peekable();
            let mut d = durations.into_iter().cycle();
            let mut clock = 0u64;
            let mut failed = Vec::new();
            loop {
                let end = inflight.map(|(_, _, at)| at);
                let arrival = next.peek().copied();
                match (arrival, end) {
                    (None, None) if waiting.is_empty() => break,
                    (Some(a), e) if e.is_none_or(|e| a < e) => {
                        clock = a;
                        next.next();
                        seq += 1;
                        waiting.push((a, seq));
                    }
                    (_, Some(e)) => {
                        clock = e;
                        let Some((opened, found, _)) = inflight.take() else { break };
                        waiting.retain(|&(at, arrived)| {
                            if found {
                                return false;
                            }
                            if not_found_answers(opened, arrived) {
                                if at >= publish {
                                    failed.push(at);
                                }
                                return false;
                            }
                            true
                        });
                    }
                    (_, None) => {}
                }
                if inflight.is_none() && !waiting.is_empty() {
                    seq += 1;
                    let dur = d.next().unwrap_or(1);
                    inflight = Some((seq, clock >= publish, clock + dur));
                }
            }
            proptest::prop_assert!(failed.is_empty(), "viewers at {failed:?} got 404 (published {publish})");
        }
    }
}
