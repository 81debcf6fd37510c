//! The egress of each edge over the last minutes, one sample a second: what
//! the dashboard's chart draws. The dashboard keeps it, so a page opened at
//! 3 a.m. shows the minutes before it was opened. Pure.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::Serialize;

/// How far back the dashboard keeps samples.
pub const DEFAULT_SPAN: Duration = Duration::from_secs(10 * 60);

/// Egress per edge at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Unix milliseconds.
    pub t: u64,
    /// Egress in bits/s by edge id (fresh edges only).
    pub egress: BTreeMap<String, u64>,
}

/// Samples within a time span, oldest first.
#[derive(Debug, Clone)]
pub struct History {
    span_ms: u64,
    samples: VecDeque<Sample>,
}

impl History {
    /// An empty history keeping `span`.
    pub fn new(span: Duration) -> Self {
        History {
            span_ms: u64::try_from(span.as_millis()).unwrap_or(u64::MAX),
            samples: VecDeque::new(),
        }
    }

    /// Adds a sample taken at `t` (unix ms) and drops those older than the
    /// span. A sample not later than the newest is ignored (clock steps).
    pub fn push(&mut self, sample: Sample) {
        if self.samples.back().is_some_and(|last| sample.t <= last.t) {
            return;
        }
        let oldest = sample.t.saturating_sub(self.span_ms);
        self.samples.push_back(sample);
        while self.samples.front().is_some_and(|s| s.t < oldest) {
            self.samples.pop_front();
        }
    }

    /// Every sample, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.samples.iter()
    }

    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample is held.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: u64, bps: u64) -> Sample {
        Sample {
            t,
            egress: BTreeMap::from([("edge-1".to_owned(), bps)]),
        }
    }

    #[test]
    fn keeps_the_span_in_order() {
        let mut history = History::new(Duration::from_secs(10));
        assert!(history.is_empty());
        for s in 0..30u64 {
            history.push(sample(s * 1000, s));
        }
        history.push(sample(29_000, 0));
        history.push(sample(5_000, 0));
        let ts: Vec<u64> = history.samples().map(|s| s.t).collect();
        assert_eq!(ts, (19..30).map(|s| s * 1000).collect::<Vec<_>>());
        assert_eq!(history.len(), 11);
    }
}
