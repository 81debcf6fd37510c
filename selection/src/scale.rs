//! How many edges the fleet should have: the fleet's utilization against a
//! target, within bounds, with a cool-down before scaling down. Pure code,
//! time passed in.
//!
//! `desired = clamp(ceil(edges × utilization / target), min, max)`. A rise is
//! taken at once (viewers are waiting); a fall only once `cooldown` has
//! passed since the last change, so a dip does not drain an edge that the
//! next minute needs again.

use std::time::{Duration, Instant};

use router_api::fleet::Scale;

/// Autoscaling targets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalePolicy {
    /// Utilization the fleet should run at (0 < target ≤ 1).
    pub target_utilization: f64,
    /// Fewest edges.
    pub min_edges: u32,
    /// Most edges.
    pub max_edges: u32,
    /// Time between a change and a scale-down.
    pub cooldown: Duration,
}

impl Default for ScalePolicy {
    fn default() -> Self {
        Self {
            target_utilization: 0.6,
            min_edges: 1,
            max_edges: 20,
            cooldown: Duration::from_secs(60),
        }
    }
}

/// The scaler's memory: the last answer and when it changed.
#[derive(Debug, Clone)]
pub struct Scaler {
    policy: ScalePolicy,
    desired: Option<u32>,
    changed_at: Option<Instant>,
}

impl Scaler {
    /// A scaler with no history.
    pub fn new(policy: ScalePolicy) -> Self {
        Self {
            policy,
            desired: None,
            changed_at: None,
        }
    }

    /// What [`Scaler::observe`] would answer, without remembering it (for
    /// readers: only the router's own rounds move the scaler).
    pub fn preview(&self, edges: u32, utilization: f64, now: Instant) -> Scale {
        self.clone().observe(edges, utilization, now)
    }

    /// The desired edge count for `edges` fresh ready edges at `utilization`.
    pub fn observe(&mut self, edges: u32, utilization: f64, now: Instant) -> Scale {
        let p = self.policy;
        let wanted = if edges == 0 {
            p.min_edges
        } else {
            let raw = (f64::from(edges) * utilization.max(0.0) / p.target_utilization).ceil();
            if raw.is_finite() {
                raw.min(f64::from(u32::MAX)) as u32
            } else {
                p.max_edges
            }
        };
        let wanted = wanted.clamp(p.min_edges, p.max_edges.max(p.min_edges));
        let desired = match self.desired {
            Some(previous) if wanted < previous => {
                let cooled = self
                    .changed_at
                    .is_none_or(|at| now.saturating_duration_since(at) >= p.cooldown);
                if cooled { wanted } else { previous }
            }
            _ => wanted,
        };
        if self.desired != Some(desired) {
            self.desired = Some(desired);
            self.changed_at = Some(now);
        }
        Scale {
            utilization,
            target_utilization: p.target_utilization,
            edges,
            desired_edges: desired,
            min_edges: p.min_edges,
            max_edges: p.max_edges,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_changes_nothing() {
        let t0 = Instant::now();
        let mut s = Scaler::new(ScalePolicy::default());
        assert_eq!(s.observe(3, 0.3, t0).desired_edges, 2);
        assert_eq!(s.preview(3, 0.9, t0).desired_edges, 5);
        assert_eq!(
            s.preview(3, 0.3, t0).desired_edges,
            2,
            "the preview was not remembered"
        );
        // A fall still waits for the cool-down from the last real change.
        assert_eq!(s.preview(3, 0.0, t0 + Duration::from_secs(1)).desired_edges, 2);
    }

    #[test]
    fn up_at_once_down_after_cooldown() {
        let t0 = Instant::now();
        let mut s = Scaler::new(ScalePolicy {
            cooldown: Duration::from_secs(60),
            ..ScalePolicy::default()
        });
        assert_eq!(s.observe(3, 0.3, t0).desired_edges, 2, "3 × 0.3 / 0.6 = 1.5 → 2");
        assert_eq!(s.observe(3, 0.9, t0).desired_edges, 5, "up at once");
        assert_eq!(
            s.observe(5, 0.1, t0 + Duration::from_secs(30)).desired_edges,
            5,
            "cooling down"
        );
        assert_eq!(
            s.observe(5, 0.1, t0 + Duration::from_secs(61)).desired_edges,
            1,
            "down after the cool-down"
        );
        assert_eq!(
            s.observe(0, 0.0, t0 + Duration::from_secs(200)).desired_edges,
            1,
            "never below min"
        );
        assert_eq!(
            s.observe(10, 5.0, t0 + Duration::from_secs(200)).desired_edges,
            20,
            "never above max"
        );
    }
}
