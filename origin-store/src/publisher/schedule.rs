//! The live timeline as pure arithmetic: which media sequence numbers are in
//! the window at a given time, where the source loop restarts, what wall
//! time each segment starts at, and when the next segment is due.
//!
//! No I/O and no clock reads: every time comes in as an argument.
//!
//! The stream pretends to have begun `window` segments before `start`, so the
//! window is already full at `start`. Segment `msn` covers media time
//! `[(msn - window) * D, (msn - window + 1) * D)` after `start` and is
//! published when it ends, so at time `now` the newest segment is
//! `window - 1 + floor((now - start) / D)`.

use std::ops::RangeInclusive;
use std::time::{Duration, SystemTime};

/// The live timeline of one configuration. `Copy`, cheap, and the same for
/// every live stream of a publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// Segments listed in a live playlist.
    window: u64,
    /// Duration D of one published segment, in seconds.
    segment_secs: u64,
    /// Segments in one loop of the source media.
    segments_per_loop: u64,
    /// The instant at which segment `window - 1` ends.
    start: SystemTime,
}

impl Schedule {
    /// A timeline for `window` segments of `segment_secs` seconds cut from a
    /// loop of `loop_secs` seconds. The caller has validated that
    /// `segment_secs` divides `loop_secs` and that `window` is at least 1.
    pub(crate) fn new(window: usize, segment_secs: u64, loop_secs: u64, start: SystemTime) -> Self {
        let segment_secs = segment_secs.max(1);
        Self {
            window: (window as u64).max(1),
            segment_secs,
            segments_per_loop: (loop_secs / segment_secs).max(1),
            start,
        }
    }

    /// Duration D of one published segment, in seconds.
    pub(crate) fn segment_secs(&self) -> u64 {
        self.segment_secs
    }

    /// Segments in one loop of the source media: the length of the VOD.
    pub(crate) fn segments_per_loop(&self) -> u64 {
        self.segments_per_loop
    }

    /// Whole segments elapsed since `start` (zero before it).
    fn elapsed_segments(&self, now: SystemTime) -> u64 {
        let elapsed = now.duration_since(self.start).unwrap_or(Duration::ZERO);
        elapsed.as_secs() / self.segment_secs
    }

    /// The media sequence numbers listed in the live playlist at `now`,
    /// oldest first: always exactly `window` of them.
    pub(crate) fn live_window(&self, now: SystemTime) -> RangeInclusive<u64> {
        let first = self.elapsed_segments(now);
        first..=first.saturating_add(self.window - 1)
    }

    /// Where segment `msn` starts in the source loop, counted in published
    /// segments: fixture segments `index * D .. (index + 1) * D`.
    pub(crate) fn loop_index(&self, msn: u64) -> u64 {
        msn % self.segments_per_loop
    }

    /// Whether segment `msn` carries `EXT-X-DISCONTINUITY`: it starts the
    /// source loop again, so timestamps jump back. The very first segment
    /// has nothing before it to be discontinuous with.
    pub(crate) fn is_discontinuity(&self, msn: u64) -> bool {
        msn > 0 && self.loop_index(msn) == 0
    }

    /// `EXT-X-DISCONTINUITY-SEQUENCE` for a playlist whose first segment is
    /// `first`: the discontinuities on segments that have left the playlist,
    /// i.e. on segments `1..first`.
    pub(crate) fn discontinuity_sequence(&self, first: u64) -> u64 {
        first.saturating_sub(1) / self.segments_per_loop
    }

    /// The wall time at which segment `msn` starts (`EXT-X-PROGRAM-DATE-TIME`).
    pub(crate) fn program_date_time(&self, msn: u64) -> SystemTime {
        if msn >= self.window {
            let ahead = (msn - self.window).saturating_mul(self.segment_secs);
            self.start + Duration::from_secs(ahead)
        } else {
            let behind = (self.window - msn) * self.segment_secs;
            self.start
                .checked_sub(Duration::from_secs(behind))
                .unwrap_or(SystemTime::UNIX_EPOCH)
        }
    }

    /// The next instant after `now` at which a new segment is due.
    pub(crate) fn next_boundary(&self, now: SystemTime) -> SystemTime {
        let next = self.elapsed_segments(now).saturating_add(1);
        self.start + Duration::from_secs(next.saturating_mul(self.segment_secs))
    }

    /// The oldest segment kept in the store while `first` is the oldest one
    /// in the playlist.
    ///
    /// RFC 8216 section 6.2.2: a segment removed from the playlist must stay
    /// available for its own duration plus the duration of the longest
    /// playlist that contained it, so a player that loaded the previous
    /// playlist can still fetch every segment it names. That is `window + 1`
    /// segments after it leaves the playlist, so the store holds
    /// `2 * window + 1` segments per rendition.
    pub(crate) fn keep_from(&self, first: u64) -> u64 {
        first.saturating_sub(self.window + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LOOP: u64 = 12;

    fn at(schedule: &Schedule, secs: u64) -> SystemTime {
        schedule.start + Duration::from_secs(secs)
    }

    fn schedule(window: usize, d: u64) -> Schedule {
        Schedule::new(
            window,
            d,
            LOOP,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
    }

    #[test]
    fn window_is_full_at_start_and_slides_every_segment() {
        let s = schedule(6, 2);
        assert_eq!(s.live_window(at(&s, 0)), 0..=5);
        assert_eq!(s.live_window(at(&s, 1)), 0..=5);
        assert_eq!(s.live_window(at(&s, 2)), 1..=6);
        assert_eq!(s.live_window(at(&s, 3)), 1..=6);
        assert_eq!(s.live_window(at(&s, 20)), 10..=15);
    }

    #[test]
    fn before_start_is_start() {
        let s = schedule(6, 2);
        let early = s.start - Duration::from_secs(100);
        assert_eq!(s.live_window(early), 0..=5);
        assert_eq!(s.next_boundary(early), at(&s, 2));
    }

    #[test]
    fn discontinuities_fall_where_the_loop_restarts() {
        let s = schedule(6, 2);
        assert_eq!(s.segments_per_loop(), 6);
        let marked: Vec<u64> = (0..20).filter(|&m| s.is_discontinuity(m)).collect();
        assert_eq!(marked, vec![6, 12, 18]);
        assert_eq!(s.loop_index(6), 0);
        assert_eq!(s.loop_index(11), 5);
        // The tag on 6 is counted once segment 6 has left the playlist.
        assert_eq!(s.discontinuity_sequence(6), 0);
        assert_eq!(s.discontinuity_sequence(7), 1);
        assert_eq!(s.discontinuity_sequence(12), 1);
        assert_eq!(s.discontinuity_sequence(13), 2);
    }

    #[test]
    fn program_date_times_are_contiguous_and_end_at_start() {
        let s = schedule(6, 2);
        // The newest segment at start ends exactly at start.
        assert_eq!(s.program_date_time(5) + Duration::from_secs(2), s.start);
        assert_eq!(s.program_date_time(0), s.start - Duration::from_secs(12));
        assert_eq!(s.program_date_time(6), s.start);
        assert_eq!(s.program_date_time(9), at(&s, 6));
    }

    #[test]
    fn keeps_window_plus_one_segments_after_they_leave() {
        let s = schedule(6, 2);
        assert_eq!(s.keep_from(0), 0);
        assert_eq!(s.keep_from(7), 0);
        assert_eq!(s.keep_from(8), 1);
        assert_eq!(s.keep_from(100), 93);
    }

    proptest! {
        #[test]
        fn timeline_invariants(
            window in 1usize..64,
            d in prop::sample::select(vec![1u64, 2, 3, 4, 6, 12]),
            elapsed_ms in 0u64..10_000_000_000,
        ) {
            let s = schedule(window, d);
            let now = s.start + Duration::from_millis(elapsed_ms);
            let w = s.live_window(now);
            let (first, last) = (*w.start(), *w.end());

            // Exactly `window` segments, newest as specified.
            prop_assert_eq!(last - first + 1, window as u64);
            prop_assert_eq!(last, window as u64 - 1 + (elapsed_ms / 1000) / d);

            // The newest segment has ended by `now`, the next one has not.
            let newest_end = s.program_date_time(last) + Duration::from_secs(d);
            prop_assert!(newest_end <= now);
            prop_assert!(newest_end + Duration::from_secs(d) > now);

            // The next boundary is in (now, now + D] and is where the window moves.
            let next = s.next_boundary(now);
            prop_assert!(next > now);
            prop_assert!(next <= now + Duration::from_secs(d));
            prop_assert_eq!(*s.live_window(next).start(), first + 1);

            // Every segment's discontinuity sequence number, counted from the
            // playlist header, is the same in this window as in the next one.
            let dsn_in = |first: u64, msn: u64| {
                s.discontinuity_sequence(first)
                    + (first..=msn).filter(|&m| s.is_discontinuity(m)).count() as u64
            };
            for msn in first..=last {
                prop_assert_eq!(dsn_in(first, msn), msn / s.segments_per_loop());
                if msn > first {
                    prop_assert_eq!(dsn_in(first, msn), dsn_in(first + 1, msn));
                }
            }

            // Program date times advance by exactly D.
            for msn in first..last {
                prop_assert_eq!(
                    s.program_date_time(msn) + Duration::from_secs(d),
                    s.program_date_time(msn + 1)
                );
            }

            // A published segment never crosses the loop boundary.
            prop_assert!((s.loop_index(last) + 1) * d <= LOOP);

            // Segments are kept for at least window + 1 after they leave.
            prop_assert!(s.keep_from(first) <= first);
            prop_assert!(first - s.keep_from(first) <= window as u64 + 1);
        }
    }
}
