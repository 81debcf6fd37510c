//! What edge selection reads: the fleet at one moment, built from the ads a
//! router stored (or from `--edge` flags), with the instants that decide
//! freshness and hold-down.

use std::time::{Duration, Instant};

use router_api::fleet::{Ad, DEFAULT_STATIC_CAPACITY_BPS, EdgeState};

/// What edge selection needs to know about one edge, at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeSnapshot {
    /// The edge id.
    pub id: String,
    /// Base URL for segment URIs, without a trailing `/`: a URI is
    /// `base_url` + the object path (which starts with `/`).
    pub base_url: String,
    /// The edge's group, if any.
    pub group: Option<String>,
    /// Whether it takes new viewers.
    pub state: EdgeState,
    /// Egress capacity, bits per second; the edge's weight. Selection skips an
    /// edge with capacity 0.
    pub capacity_bps: u64,
    /// Egress the edge reported in its last ad, bits per second.
    pub load_bps: u64,
    /// The edge is fresh while `now < fresh_until` (ad receipt + TTL).
    /// `None`: a statically configured edge, always fresh.
    pub fresh_until: Option<Instant>,
    /// The edge may get viewers once `now >= eligible_since` (a hold-down
    /// after it flapped). `None`: eligible now.
    pub eligible_since: Option<Instant>,
}

impl EdgeSnapshot {
    /// The snapshot of an edge from its (validated) ad, received at `received_at`.
    pub fn from_ad(ad: &Ad, received_at: Instant, eligible_since: Option<Instant>) -> Self {
        let ttl = Duration::from_millis(ad.ttl_ms);
        EdgeSnapshot {
            id: ad.edge_id.clone(),
            base_url: ad.public_url.trim_end_matches('/').to_owned(),
            group: ad.group.clone(),
            state: ad.state,
            capacity_bps: ad.capacity.egress_bps,
            load_bps: ad.load.egress_bps,
            // Overflow cannot happen with a TTL of at most a minute; if it did,
            // the edge would count as stale rather than fresh forever.
            fresh_until: Some(received_at.checked_add(ttl).unwrap_or(received_at)),
            eligible_since,
        }
    }

    /// A statically configured edge (`--edge ID=URL`): ready, always fresh,
    /// eligible, with no reported load and [`DEFAULT_STATIC_CAPACITY_BPS`].
    pub fn new_static(id: impl Into<String>, base_url: &str) -> Self {
        EdgeSnapshot {
            id: id.into(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            group: None,
            state: EdgeState::Ready,
            capacity_bps: DEFAULT_STATIC_CAPACITY_BPS,
            load_bps: 0,
            fresh_until: None,
            eligible_since: None,
        }
    }

    /// Whether the edge's ad is still within its TTL at `now`.
    pub fn is_fresh(&self, now: Instant) -> bool {
        self.fresh_until.is_none_or(|until| now < until)
    }

    /// Whether the edge is out of its hold-down at `now`.
    pub fn is_eligible(&self, now: Instant) -> bool {
        self.eligible_since.is_none_or(|since| now >= since)
    }
}

/// The immutable fleet view selection is built from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetSnapshot {
    /// Every known edge, stale and draining ones included (selection and the
    /// explain page say why they are passed over). Ids are unique.
    pub edges: Vec<EdgeSnapshot>,
}

impl FleetSnapshot {
    /// A snapshot of these edges.
    pub fn new(edges: Vec<EdgeSnapshot>) -> Self {
        FleetSnapshot { edges }
    }

    /// A fleet configured statically from `(id, base_url)` pairs: every edge
    /// always fresh, ready and of equal weight (see [`EdgeSnapshot::new_static`]).
    pub fn from_static<I, S, U>(edges: I) -> Self
    where
        I: IntoIterator<Item = (S, U)>,
        S: Into<String>,
        U: AsRef<str>,
    {
        FleetSnapshot {
            edges: edges
                .into_iter()
                .map(|(id, url)| EdgeSnapshot::new_static(id, url.as_ref()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An edge's ad as it arrives on the wire.
    fn ad() -> Ad {
        serde_json::from_str(
            r#"{"edge_id":"edge-1","public_url":"http://127.0.0.1:9001","state":"ready",
                "capacity":{"egress_bps":10000000000,"connections":10000},
                "load":{"egress_bps":1000000,"connections":12},
                "ttl_ms":3000,"instance":{"started_unix_ms":1767225600000,"id":"9f2c4e6a8b0d1f3e"},
                "generation":7}"#,
        )
        .expect("a valid ad")
    }

    #[test]
    fn snapshots() {
        let t0 = Instant::now();
        let mut a = ad();
        a.public_url = "http://edge.example/cdn/".into();
        let e = EdgeSnapshot::from_ad(&a, t0, None);
        assert_eq!(e.base_url, "http://edge.example/cdn");
        assert_eq!(e.capacity_bps, 10_000_000_000);
        assert!(e.is_fresh(t0 + Duration::from_millis(2_999)));
        assert!(!e.is_fresh(t0 + Duration::from_millis(3_000)));
        assert!(e.is_eligible(t0));
        let held = EdgeSnapshot::from_ad(&a, t0, Some(t0 + Duration::from_secs(10)));
        assert!(!held.is_eligible(t0));
        assert!(held.is_eligible(t0 + Duration::from_secs(10)));

        let fleet = FleetSnapshot::from_static([("e1", "http://a:1/"), ("e2", "http://b:2")]);
        assert_eq!(fleet.edges.len(), 2);
        assert_eq!(fleet.edges[0].base_url, "http://a:1");
        let far = t0 + Duration::from_secs(100 * 365 * 86_400);
        assert!(fleet.edges.iter().all(|e| e.is_fresh(far) && e.is_eligible(t0)));
    }
}
