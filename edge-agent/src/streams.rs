//! Per-stream egress counters. A cached object holds its stream's counter,
//! so a cache hit adds its bytes with one relaxed atomic add; the registry's
//! lock is taken only when an object is fetched and once per heartbeat.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::load::stream_of;

/// Egress bytes per stream key (see [`crate::load::stream_of`]).
#[derive(Debug, Default)]
pub struct Streams {
    map: Mutex<HashMap<Arc<str>, Arc<AtomicU64>>>,
}

impl Streams {
    /// The counter of the stream that object `key` belongs to.
    pub fn counter(&self, key: &str) -> Arc<AtomicU64> {
        let stream = stream_of(key);
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(counter) = map.get(stream.as_str()) {
            return counter.clone();
        }
        let counter = Arc::new(AtomicU64::new(0));
        map.insert(stream.into(), counter.clone());
        counter
    }

    /// Every stream's cumulative egress bytes.
    pub fn snapshot(&self) -> Vec<(Arc<str>, u64)> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.iter()
            .map(|(name, counter)| (name.clone(), counter.load(Ordering::Relaxed)))
            .collect()
    }

    /// Drops the streams that no cached object refers to any more and for
    /// which `idle` says so; returns how many are left.
    pub fn prune(&self, mut idle: impl FnMut(&str) -> bool) -> usize {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|name, counter| Arc::strong_count(counter) > 1 || !idle(name));
        map.len()
    }

    /// Whether a stream is tracked.
    pub fn contains(&self, stream: &str) -> bool {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_of_a_rendition_share_a_counter() {
        let streams = Streams::default();
        let a = streams.counter("live/s/720p/1.ts");
        let b = streams.counter("live/s/720p/2.ts");
        a.fetch_add(5, Ordering::Relaxed);
        b.fetch_add(5, Ordering::Relaxed);
        let c = streams.counter("live/s/480p/1.ts");
        let mut snap = streams.snapshot();
        snap.sort();
        assert_eq!(snap, vec![("live/s|480p".into(), 0), ("live/s|720p".into(), 10)]);
        assert_eq!(streams.prune(|_| true), 2, "still referenced");
        drop((a, b));
        assert_eq!(streams.prune(|name| name == "live/s|720p"), 1);
        assert!(!streams.contains("live/s|720p"));
        drop(c);
        assert_eq!(streams.prune(|_| false), 1, "not idle yet");
    }
}
