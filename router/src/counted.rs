//! Viewers counted toward their edge's load lately.
//!
//! A viewer counts once per (viewer, edge) while it keeps reloading, not once
//! per reload: the first media playlist request of a pair counts, and the
//! pair is forgotten once it has not been seen for the idle time. Every
//! media playlist request asks, so this is a sharded map of the last time
//! each pair was seen (a mutex per shard, held for one lookup), with the
//! time passed in.
//!
//! Bounded: at most `capacity` pairs. A full shard first forgets its idle
//! pairs (at most once a second), then an arbitrary one, which then counts
//! again on its next request (a slight over-count, never a lost viewer).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Shards of the map: enough that the runtime's workers rarely meet.
const SHARDS: usize = 64;

/// (viewer, edge) pairs, hashed.
pub type Pair = (u64, u64);

#[derive(Debug, Default)]
struct Shard {
    /// When each pair was last seen, unix seconds.
    seen: HashMap<Pair, u64>,
    /// When the shard last forgot its idle pairs.
    swept: u64,
}

/// The pairs seen within the idle time.
#[derive(Debug)]
pub struct Counted {
    shards: Box<[Mutex<Shard>]>,
    idle_secs: u64,
    per_shard: usize,
}

impl Counted {
    /// Remembers up to `capacity` pairs, each until it has not been seen for `idle_secs`.
    pub fn new(capacity: usize, idle_secs: u64) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            idle_secs,
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// Records that `pair` was seen at `now` (unix seconds): whether it is
    /// new, or had been idle for the idle time or longer (it counts again).
    pub fn first_seen(&self, pair: Pair, now: u64) -> bool {
        let index = (pair.0 ^ pair.1.rotate_left(32)) as usize % SHARDS;
        let mut shard = self.shards[index].lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(last) = shard.seen.get_mut(&pair) {
            let idle = now.saturating_sub(*last) >= self.idle_secs;
            *last = (*last).max(now);
            return idle;
        }
        if shard.seen.len() >= self.per_shard {
            if shard.swept != now {
                let idle_secs = self.idle_secs;
                shard.seen.retain(|_, last| now.saturating_sub(*last) < idle_secs);
                shard.swept = now;
            }
            if shard.seen.len() >= self.per_shard
                && let Some(&any) = shard.seen.keys().next()
            {
                shard.seen.remove(&any);
            }
        }
        shard.seen.insert(pair, now);
        true
    }

    /// Pairs remembered now (idle ones not yet forgotten included).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).seen.len())
            .sum()
    }

    /// Whether no pair is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_pair_counts_once_while_it_keeps_coming() {
        let counted = Counted::new(100, 60);
        assert!(counted.first_seen((1, 2), 1000));
        for t in (1000..1300).step_by(30) {
            assert!(!counted.first_seen((1, 2), t), "at {t}");
        }
        assert!(counted.first_seen((1, 3), 1300), "another edge counts anew");
        assert!(
            counted.first_seen((1, 2), 1400),
            "idle for 60 s or more: counts again"
        );
    }

    proptest! {
        /// Against a model with no bound: the set answers "new" whenever the
        /// model does (no viewer is lost), exactly as the model when it has
        /// room for every pair, and never holds more than its capacity
        /// rounded up to the shards.
        #[test]
        fn never_loses_a_viewer_and_stays_bounded(
            requests in proptest::collection::vec((0u64..200, 0u64..3, 0u64..5), 1..400),
            capacity in prop_oneof![1usize..300, Just(100_000usize)],
        ) {
            let counted = Counted::new(capacity, 60);
            let mut model: HashMap<Pair, u64> = HashMap::new();
            let mut now = 1_000;
            for (viewer, edge, step) in requests {
                now += step * 7;
                let pair = (viewer, edge);
                let new_in_model = model.get(&pair).is_none_or(|last| now - last >= 60);
                model.insert(pair, now);
                let new = counted.first_seen(pair, now);
                if new_in_model {
                    prop_assert!(new, "{pair:?} at {now}");
                }
                if capacity == 100_000 {
                    // Room for every pair: exactly the model.
                    prop_assert_eq!(new, new_in_model);
                }
                prop_assert!(counted.len() <= capacity.div_ceil(SHARDS) * SHARDS);
            }
        }
    }
}
