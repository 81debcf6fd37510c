//! The run's timeline: every second, the viewers active and stalled and the
//! load of each edge, handed to the report, to the `live` watcher when there
//! is one, and with `--progress` printed as one line on stderr.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Shared;
use crate::report::TimelineSample;
use crate::stats::Class;

/// Samples the run every second for the timeline, and prints the progress line.
pub(super) async fn sample(
    shared: Arc<Shared>,
    start: Instant,
    end: Instant,
    progress: bool,
    live: Option<Arc<tokio::sync::watch::Sender<TimelineSample>>>,
) -> Vec<TimelineSample> {
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval_at((start + Duration::from_secs(1)).into(), Duration::from_secs(1));
    let mut last_requests = 0;
    loop {
        let now = tick.tick().await.into_std();
        let (sample, requests, errors, slow, p99) = {
            let r = shared.recorder();
            let (viewers, bytes) = r.edge_snapshot();
            let (requests, errors, slow) = r.totals();
            let sample = TimelineSample {
                secs: now.duration_since(start).as_secs_f64(),
                active: shared.active.load(Ordering::Relaxed),
                stalled: shared.stalled.load(Ordering::Relaxed),
                edges: r.edge_names(),
                viewers,
                bytes,
            };
            (
                sample,
                requests,
                errors,
                slow,
                r.percentiles(Class::Segment).p99_ms,
            )
        };
        if progress {
            let per_edge: Vec<String> = sample
                .edges
                .iter()
                .zip(&sample.viewers)
                .map(|(e, v)| format!("{e} {v}"))
                .collect();
            eprintln!(
                "[{:>4.0}s] viewers {} (arrived {}) playing {} stalled {} | stalls {} | {} req/s, errors {}, slow {} | segment p99 {:.1} ms | {}",
                sample.secs,
                sample.active,
                shared.arrived.load(Ordering::Relaxed),
                shared.playing.load(Ordering::Relaxed),
                sample.stalled,
                shared.stalls.load(Ordering::Relaxed),
                requests - last_requests,
                errors,
                slow,
                p99,
                per_edge.join(" · "),
            );
        }
        last_requests = requests;
        if let Some(live) = &live {
            live.send_replace(sample.clone());
        }
        samples.push(sample);
        if now >= end {
            return samples;
        }
    }
}
