//! Edge ads, the fleet views routers answer with, and edge credentials.
//!
//! An edge posts an [`Ad`] (JSON) to every router it knows about once a
//! second; routers keep the newest ad per edge ([`Ad::is_newer_than`]) and
//! forward what they stored to each other. From the stored ads a router builds
//! the immutable view that edge selection works on (the `selection` crate).
//!
//! Ads are forward compatible: unknown JSON fields are ignored, so an older
//! router accepts ads from a newer edge; what is known is checked by
//! [`Ad::validate`].

use serde::{Deserialize, Serialize};

use crate::session::valid_edge_id;

/// Shortest accepted ad TTL, in milliseconds.
pub const MIN_TTL_MS: u64 = 500;
/// Longest accepted ad TTL, in milliseconds.
pub const MAX_TTL_MS: u64 = 60_000;
/// TTL edges use by default: three 1 s heartbeats.
pub const DEFAULT_TTL_MS: u64 = 3_000;
/// Most hot streams an ad may list.
pub const MAX_HOT_STREAMS: usize = 32;
/// Longest stream key in `hot_streams`, in bytes.
pub const MAX_STREAM_KEY_LEN: usize = 256;
/// Longest `public_url`, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// Capacity given to edges configured statically (`--edge ID=URL`), which
/// send no ads: 1 Gbit/s. All static edges weigh the same.
pub const DEFAULT_STATIC_CAPACITY_BPS: u64 = 1_000_000_000;

/// Path of an edge's link to a router: a `POST` with the fleet token and
/// `?edge=ID&instance=ID` whose chunked body does not end while the edge
/// process lives. When the process dies the kernel closes its sockets, and
/// the router learns at once instead of after the ad's TTL.
pub const LINK_PATH: &str = "/api/v1/link";

/// Where a router that saw an edge's last link break tells its peers: a
/// `POST` with the fleet token and a [`Link`] as JSON. Not forwarded further.
pub const LINK_LOST_PATH: &str = "/api/v1/links/lost";

/// Who holds a link (the query of [`LINK_PATH`], the body of [`LINK_LOST_PATH`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The edge id, as in its ads.
    pub edge: String,
    /// The instance id, as in its ads.
    pub instance: String,
    /// In a lost-link notice: the generation of the instance's newest ad the
    /// notifying router held when the link broke. A peer that has since
    /// stored a newer ad of that instance ignores the notice: the edge spoke
    /// after the break (a healed partition, a notice delivered late).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
}

impl Link {
    /// Whether both ids have the shape ads require.
    pub fn is_valid(&self) -> bool {
        valid_edge_id(&self.edge) && valid_edge_id(&self.instance)
    }

    /// The link URL on `router` (a base URL without a trailing `/`). The ids
    /// need no escaping: they are `[A-Za-z0-9._-]`.
    pub fn url(&self, router: &str) -> String {
        format!(
            "{router}{LINK_PATH}?edge={}&instance={}",
            self.edge, self.instance
        )
    }
}

/// Whether an edge takes new viewers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeState {
    /// Serving and taking new viewers.
    Ready,
    /// Shutting down: keeps serving the viewers it has, takes no new ones.
    Draining,
}

/// What an edge can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// Egress the edge can sustain, bits per second. Also its weight in selection.
    pub egress_bps: u64,
    /// Concurrent client connections it can hold.
    pub connections: u64,
}

/// What an edge carries now, as measured by the edge.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Load {
    /// Egress, bits per second.
    pub egress_bps: u64,
    /// Open client connections.
    pub connections: u64,
    /// Requests served per second.
    pub requests_per_sec: f64,
    /// Share of requests served from cache, 0 to 1.
    pub cache_hit_ratio: f64,
    /// Bytes held in the cache.
    pub cache_bytes: u64,
    /// CPU use of the edge process, 0 to 1 (of all cores).
    pub cpu: f64,
}

/// One of the streams an edge serves the most.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotStream {
    /// Stream key (stream + rendition, e.g. `live/demo-1|720p`).
    pub stream: String,
    /// Egress for that stream, bits per second.
    pub egress_bps: u64,
}

/// Which run of the edge process sent the ad.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// When the process started, unix milliseconds.
    pub started_unix_ms: u64,
    /// A random id drawn at process start (1 to 64 bytes of `[A-Za-z0-9._-]`,
    /// e.g. 16 hex digits), a string so that JSON readers without 64-bit
    /// integers keep it exact.
    pub id: String,
}

/// An edge's liveness and load report, `POST /api/v1/ads`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ad {
    /// The edge's id: 1 to 64 bytes of `[A-Za-z0-9._-]`.
    pub edge_id: String,
    /// Base URL viewers fetch segments from: `http(s)://host[:port][/path]`,
    /// without query or fragment.
    pub public_url: String,
    /// The edge's group (region, POP); viewers of a group prefer its edges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Whether the edge takes new viewers.
    pub state: EdgeState,
    /// What the edge can carry.
    pub capacity: Capacity,
    /// What it carries now.
    #[serde(default)]
    pub load: Load,
    /// Its busiest streams, busiest first, at most [`MAX_HOT_STREAMS`].
    #[serde(default)]
    pub hot_streams: Vec<HotStream>,
    /// How long this ad stays valid after a router receives it, milliseconds
    /// ([`MIN_TTL_MS`] to [`MAX_TTL_MS`]).
    pub ttl_ms: u64,
    /// The process run that sent it.
    pub instance: Instance,
    /// Counter the instance increments with every ad.
    pub generation: u64,
}

/// Why an ad was refused; the message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdError {
    /// `edge_id` is empty.
    #[error("`edge_id` must not be empty")]
    EmptyEdgeId,
    /// `edge_id` is too long or holds a byte outside `[A-Za-z0-9._-]`.
    #[error("`edge_id` must be at most 64 bytes of A-Z a-z 0-9 . _ -")]
    BadEdgeId,
    /// `public_url` is not a usable base URL; the text says why.
    #[error("`public_url` {0}")]
    BadPublicUrl(&'static str),
    /// `group` is empty, too long or holds a byte outside `[A-Za-z0-9._-]`.
    #[error("`group` must be 1 to 64 bytes of A-Z a-z 0-9 . _ -")]
    BadGroup,
    /// A capacity field is zero.
    #[error("`{0}` must be > 0")]
    ZeroCapacity(&'static str),
    /// `ttl_ms` is outside [`MIN_TTL_MS`]..=[`MAX_TTL_MS`].
    #[error("`ttl_ms` must be within {MIN_TTL_MS}..={MAX_TTL_MS} (got {0})")]
    TtlOutOfRange(u64),
    /// A ratio is outside 0..=1 or not a number.
    #[error("`{field}` must be within 0..=1 (got {value})")]
    RatioOutOfRange {
        /// The field, e.g. `load.cpu`.
        field: &'static str,
        /// The value received.
        value: f64,
    },
    /// `load.requests_per_sec` is negative or not finite.
    #[error("`load.requests_per_sec` must be a finite number >= 0 (got {0})")]
    BadRequestRate(f64),
    /// `hot_streams` is longer than [`MAX_HOT_STREAMS`].
    #[error("`hot_streams` may list at most {MAX_HOT_STREAMS} streams (got {0})")]
    TooManyHotStreams(usize),
    /// A hot stream key is empty, too long or holds control characters.
    #[error("`hot_streams[{0}].stream` must be 1 to 256 bytes without control characters")]
    BadHotStream(usize),
    /// `instance.id` is empty, too long or holds a byte outside `[A-Za-z0-9._-]`.
    #[error("`instance.id` must be 1 to 64 bytes of A-Z a-z 0-9 . _ -")]
    BadInstanceId,
}

impl Ad {
    /// Checks every field a router relies on.
    pub fn validate(&self) -> Result<(), AdError> {
        if self.edge_id.is_empty() {
            return Err(AdError::EmptyEdgeId);
        }
        if !valid_edge_id(&self.edge_id) {
            return Err(AdError::BadEdgeId);
        }
        validate_base_url(&self.public_url).map_err(AdError::BadPublicUrl)?;
        if self.group.as_deref().is_some_and(|g| !valid_edge_id(g)) {
            return Err(AdError::BadGroup);
        }
        if self.capacity.egress_bps == 0 {
            return Err(AdError::ZeroCapacity("capacity.egress_bps"));
        }
        if self.capacity.connections == 0 {
            return Err(AdError::ZeroCapacity("capacity.connections"));
        }
        if !(MIN_TTL_MS..=MAX_TTL_MS).contains(&self.ttl_ms) {
            return Err(AdError::TtlOutOfRange(self.ttl_ms));
        }
        for (field, value) in [
            ("load.cache_hit_ratio", self.load.cache_hit_ratio),
            ("load.cpu", self.load.cpu),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(AdError::RatioOutOfRange { field, value });
            }
        }
        let rps = self.load.requests_per_sec;
        if !(rps.is_finite() && rps >= 0.0) {
            return Err(AdError::BadRequestRate(rps));
        }
        if self.hot_streams.len() > MAX_HOT_STREAMS {
            return Err(AdError::TooManyHotStreams(self.hot_streams.len()));
        }
        for (i, hot) in self.hot_streams.iter().enumerate() {
            let s = &hot.stream;
            if s.is_empty() || s.len() > MAX_STREAM_KEY_LEN || s.chars().any(char::is_control) {
                return Err(AdError::BadHotStream(i));
            }
        }
        if !valid_edge_id(&self.instance.id) {
            return Err(AdError::BadInstanceId);
        }
        Ok(())
    }

    /// Whether this ad should replace `other`, an ad of the same edge.
    ///
    /// Ads are ordered by `(instance.started_unix_ms, instance.id, generation)`:
    /// within one instance the higher generation is newer; a different
    /// instance is newer when it started later, and two instances that claim
    /// the same start time are ordered by id so that every router decides the
    /// same way. An ad is never newer than itself, so forwarding stops.
    ///
    /// An edge whose clock stepped back across a restart starts "older" than
    /// its previous run; routers therefore let any valid ad replace a stored ad
    /// that is already past its TTL.
    pub fn is_newer_than(&self, other: &Ad) -> bool {
        fn key(ad: &Ad) -> (u64, &str, u64) {
            (
                ad.instance.started_unix_ms,
                ad.instance.id.as_str(),
                ad.generation,
            )
        }
        key(self) > key(other)
    }
}

/// Checks a base URL: `http://` or `https://`, a host, no credentials, no
/// query or fragment, no whitespace or control characters.
fn validate_base_url(url: &str) -> Result<(), &'static str> {
    if url.len() > MAX_URL_LEN {
        return Err("must be at most 2048 bytes");
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &url[7..]
    } else if lower.starts_with("https://") {
        &url[8..]
    } else {
        return Err("must start with http:// or https://");
    };
    if url
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b >= 0x80)
    {
        return Err("must not contain spaces, control or non-ASCII characters");
    }
    if url.contains(['?', '#']) {
        return Err("must not have a query or fragment");
    }
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return Err("must not contain credentials");
    }
    let (host, port) = match authority.strip_prefix('[') {
        // An IPv6 literal: `[::1]` or `[::1]:9001`.
        Some(v6) => match v6.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, after)) => (host, Some(after.strip_prefix(':').ok_or("has a bad port")?)),
            None => return Err("has a bad IPv6 host"),
        },
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if port.is_some_and(|p| p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit())) {
        return Err("has a bad port");
    }
    if host.is_empty() {
        return Err("must name a host");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ad() -> Ad {
        Ad {
            edge_id: "edge-1".into(),
            public_url: "http://127.0.0.1:9001".into(),
            group: Some("eu-west".into()),
            state: EdgeState::Ready,
            capacity: Capacity {
                egress_bps: 10_000_000_000,
                connections: 10_000,
            },
            load: Load {
                egress_bps: 1_000_000,
                connections: 12,
                requests_per_sec: 30.5,
                cache_hit_ratio: 0.97,
                cache_bytes: 1 << 30,
                cpu: 0.2,
            },
            hot_streams: vec![HotStream {
                stream: "live/demo-1|720p".into(),
                egress_bps: 800_000,
            }],
            ttl_ms: DEFAULT_TTL_MS,
            instance: Instance {
                started_unix_ms: 1_767_225_600_000,
                id: "9f2c4e6a8b0d1f3e".into(),
            },
            generation: 7,
        }
    }

    #[test]
    fn json_shape_and_forward_compatibility() {
        let json = serde_json::to_value(ad()).expect("serialize");
        assert_eq!(json["state"], "ready");
        assert_eq!(json["capacity"]["egress_bps"], 10_000_000_000u64);
        assert_eq!(json["instance"]["id"], "9f2c4e6a8b0d1f3e");
        let mut with_extra = json.clone();
        with_extra["future_field"] = serde_json::json!({"x": 1});
        with_extra["load"]["gpu"] = serde_json::json!(0.5);
        let back: Ad = serde_json::from_value(with_extra).expect("unknown fields are ignored");
        assert_eq!(back, ad());

        let minimal = r#"{"edge_id":"e","public_url":"https://e.example","state":"draining",
            "capacity":{"egress_bps":1,"connections":1},"ttl_ms":3000,
            "instance":{"started_unix_ms":1,"id":"a"},"generation":0}"#;
        let m: Ad = serde_json::from_str(minimal).expect("optional fields default");
        assert_eq!(m.state, EdgeState::Draining);
        assert_eq!(m.group, None);
        assert_eq!(m.validate(), Ok(()));
        assert!(serde_json::from_str::<Ad>(&minimal.replace("draining", "Draining")).is_err());
    }

    /// Found by the `ad` fuzz target: without serde_json's `float_roundtrip`
    /// a float in an ad came back one ULP off after a JSON round trip (what a
    /// router does when it copies a peer's view), so routers could hold
    /// different ads for one edge.
    #[test]
    fn floats_survive_a_json_round_trip_exactly() {
        let crash = r#"{"edge_id": "edge-1", "public_url": "https://[::1]:944/3edge/", "group": "eu",
            "state": "draining", "capacity": {"egress_bps": 1000000000, "connections": 10000},
            "load": {"cpu": 0.2184467440737095516165}, "hot_streams": [{"stream": "live/demo-1|720p",
            "egress_bps": 4000000}], "ttl_ms": 3000, "instance": {"started_unix_ms": 1767225600000,
            "id": "0123456789abcdef"}, "generation": 42}"#;
        let parsed: Ad = serde_json::from_str(crash).expect("parses");
        let again: Ad = serde_json::from_slice(&serde_json::to_vec(&parsed).expect("json")).expect("parses");
        assert_eq!(again, parsed);
        let mut load = ad();
        for value in [
            0.1,
            1.0 / 3.0,
            0.2184467440737095,
            0.999_999_999_999_999_9,
            5e-324,
        ] {
            load.load.cpu = value;
            load.load.requests_per_sec = value * 1e6;
            let back: Ad =
                serde_json::from_str(&serde_json::to_string(&load).expect("json")).expect("parses");
            assert_eq!(back, load, "{value}");
        }
    }

    #[test]
    fn validate_names_the_field() {
        assert_eq!(ad().validate(), Ok(()));
        type Case = (fn(&mut Ad), AdError);
        let cases: Vec<Case> = vec![
            (|a| a.edge_id.clear(), AdError::EmptyEdgeId),
            (|a| a.edge_id = "edge/1".into(), AdError::BadEdgeId),
            (|a| a.edge_id = "e".repeat(65), AdError::BadEdgeId),
            (
                |a| a.public_url = "ftp://x".into(),
                AdError::BadPublicUrl("must start with http:// or https://"),
            ),
            (
                |a| a.public_url = "http://x/?a=1".into(),
                AdError::BadPublicUrl("must not have a query or fragment"),
            ),
            (
                |a| a.public_url = "http://x/#f".into(),
                AdError::BadPublicUrl("must not have a query or fragment"),
            ),
            (
                |a| a.public_url = "http://".into(),
                AdError::BadPublicUrl("must name a host"),
            ),
            (
                |a| a.public_url = "http://u:p@x".into(),
                AdError::BadPublicUrl("must not contain credentials"),
            ),
            (
                |a| a.public_url = "http://x:80a".into(),
                AdError::BadPublicUrl("has a bad port"),
            ),
            (
                |a| a.public_url = "http://x y".into(),
                AdError::BadPublicUrl("must not contain spaces, control or non-ASCII characters"),
            ),
            (|a| a.group = Some(String::new()), AdError::BadGroup),
            (
                |a| a.capacity.egress_bps = 0,
                AdError::ZeroCapacity("capacity.egress_bps"),
            ),
            (
                |a| a.capacity.connections = 0,
                AdError::ZeroCapacity("capacity.connections"),
            ),
            (|a| a.ttl_ms = 499, AdError::TtlOutOfRange(499)),
            (|a| a.ttl_ms = 60_001, AdError::TtlOutOfRange(60_001)),
            (
                |a| a.load.cpu = 1.5,
                AdError::RatioOutOfRange {
                    field: "load.cpu",
                    value: 1.5,
                },
            ),
            (
                |a| a.load.cache_hit_ratio = -0.1,
                AdError::RatioOutOfRange {
                    field: "load.cache_hit_ratio",
                    value: -0.1,
                },
            ),
            (|a| a.load.requests_per_sec = -1.0, AdError::BadRequestRate(-1.0)),
            (
                |a| {
                    a.hot_streams = vec![
                        HotStream {
                            stream: "s".into(),
                            egress_bps: 1
                        };
                        33
                    ]
                },
                AdError::TooManyHotStreams(33),
            ),
            (
                |a| a.hot_streams[0].stream = "a\nb".into(),
                AdError::BadHotStream(0),
            ),
            (|a| a.instance.id = String::new(), AdError::BadInstanceId),
        ];
        for (mutate, expected) in cases {
            let mut a = ad();
            mutate(&mut a);
            assert_eq!(a.validate(), Err(expected.clone()), "{expected}");
        }
        let mut nan = ad();
        nan.load.cpu = f64::NAN;
        assert!(matches!(
            nan.validate(),
            Err(AdError::RatioOutOfRange {
                field: "load.cpu",
                ..
            })
        ));
        assert_eq!(
            AdError::TtlOutOfRange(5).to_string(),
            "`ttl_ms` must be within 500..=60000 (got 5)"
        );
    }

    #[test]
    fn accepted_urls() {
        for url in [
            "http://127.0.0.1:9001",
            "HTTPS://edge.example/cdn/",
            "http://[::1]:9001",
            "http://[::1]",
            "https://edge.example:443/a/b",
        ] {
            assert_eq!(validate_base_url(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn ordering_of_ads() {
        let a = ad();
        let mut next = ad();
        next.generation += 1;
        assert!(next.is_newer_than(&a));
        assert!(!a.is_newer_than(&next));
        assert!(!a.is_newer_than(&a), "never newer than itself");

        let mut restarted = ad();
        restarted.instance = Instance {
            started_unix_ms: a.instance.started_unix_ms + 1,
            id: "0".into(),
        };
        restarted.generation = 0;
        assert!(
            restarted.is_newer_than(&a),
            "a later instance wins whatever its generation"
        );
        assert!(!a.is_newer_than(&restarted));

        let mut twin = ad();
        twin.instance.id = "ffff".into();
        twin.generation = 0;
        assert!(
            twin.is_newer_than(&a) != a.is_newer_than(&twin),
            "same start: decided by id"
        );
    }

    /// An ad of `ad()`'s edge from instance (`started`, `id`), generation
    /// `generation`, with a load that differs between any two of them.
    fn ad_of((started, id, generation): (u64, String, u64)) -> Ad {
        let mut ad = ad();
        ad.instance = Instance {
            started_unix_ms: started,
            id,
        };
        ad.generation = generation;
        ad.load.egress_bps = started ^ generation.rotate_left(32);
        ad
    }

    /// Small ranges, so that equal starts, ids and generations are common.
    fn arbitrary_ad() -> impl proptest::strategy::Strategy<Value = Ad> {
        use proptest::prelude::*;
        (0u64..4, "[ab0]{1,2}", 0u64..4).prop_map(ad_of)
    }

    proptest::proptest! {
        #[test]
        fn newer_is_a_strict_total_order_over_instance_and_generation(
            a in arbitrary_ad(),
            b in arbitrary_ad(),
            c in arbitrary_ad(),
        ) {
            proptest::prop_assert!(!a.is_newer_than(&a), "irreflexive");
            if a.is_newer_than(&b) {
                proptest::prop_assert!(!b.is_newer_than(&a), "asymmetric");
            }
            if a.is_newer_than(&b) && b.is_newer_than(&c) {
                proptest::prop_assert!(a.is_newer_than(&c), "transitive");
            }
            let same = a.instance == b.instance && a.generation == b.generation;
            proptest::prop_assert_eq!(
                a.is_newer_than(&b) || b.is_newer_than(&a),
                !same,
                "total over distinct (instance, generation), and only those"
            );
        }
    }

    #[test]
    fn a_router_list_reads_a_routers_view_and_what_else_routers_answer() {
        let info = |id: &str, url: &str| RouterInfo {
            id: id.into(),
            url: url.into(),
        };
        let view = RoutersView {
            this: info("r1", "http://a:1"),
            routers: vec![info("r1", "http://a:1"), info("r2", "http://b:2")],
        };
        let urls = |list: &RouterList| -> Vec<String> {
            list.entries()
                .iter()
                .filter_map(ListedRouter::url)
                .map(str::to_owned)
                .collect()
        };
        let json = serde_json::to_vec(&view).expect("json");
        let list: RouterList = serde_json::from_slice(&json).expect("a routers view");
        assert_eq!(urls(&list), ["http://a:1", "http://b:2"]);

        let odd = br#"{"routers":[{"url":"http://a:1","id":"r1","zone":"x"},{"url":7},{"nourl":1},"http://b:2",null],"extra":true}"#;
        let list: RouterList = serde_json::from_slice(odd).expect("no self, odd entries");
        assert_eq!(list.entries().len(), 5);
        assert_eq!(urls(&list), ["http://a:1", "http://b:2"]);
        let bare: RouterList =
            serde_json::from_slice(br#"["http://a:1", {"url": "http://b:2"}]"#).expect("bare");
        assert_eq!(urls(&bare), ["http://a:1", "http://b:2"]);
        for not_a_list in [&b"{}"[..], b"<html>", br#"{"routers":null}"#, b"7"] {
            assert!(serde_json::from_slice::<RouterList>(not_a_list).is_err());
        }
    }
}

/// One edge as a router sees it: `GET /api/v1/edges`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeView {
    /// The edge id.
    pub id: String,
    /// Its public base URL.
    pub url: String,
    /// Its group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `ready` or `draining`, as it last said.
    pub state: EdgeState,
    /// Its newest ad is within its TTL.
    pub fresh: bool,
    /// Out of its flap hold-down: it may get new viewers.
    pub eligible: bool,
    /// Milliseconds since its newest ad arrived (for a configured edge: 0).
    pub ad_age_ms: u64,
    /// Its capacity.
    pub capacity: Capacity,
    /// Its load, as it last reported.
    pub load: Load,
    /// Its busiest streams.
    #[serde(default)]
    pub hot_streams: Vec<HotStream>,
    /// (Reported egress + what this router assigned since) / capacity.
    pub utilization: f64,
    /// Bits per second this router assigned to it since its newest ad.
    pub assigned_bps: u64,
    /// Viewers this router placed on it since the router started.
    pub viewers_assigned: u64,
    /// The edge is configured, not heard from.
    #[serde(default)]
    pub configured: bool,
    /// The newest ad itself (absent for a configured edge); a router that
    /// starts late copies the fleet from these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad: Option<Ad>,
}

/// The answer of `GET /api/v1/edges`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgesView {
    /// Id of the router that answered.
    pub router: String,
    /// Every edge it knows, by id.
    pub edges: Vec<EdgeView>,
}

/// A router as `GET /api/v1/routers` names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterInfo {
    /// Random id of the router process.
    pub id: String,
    /// URL other routers, edges and operators reach it at.
    pub url: String,
}

/// The answer of `GET /api/v1/routers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutersView {
    /// The router that answered.
    #[serde(rename = "self")]
    pub this: RouterInfo,
    /// The live routers it knows, itself included.
    pub routers: Vec<RouterInfo>,
}

/// `GET /api/v1/routers` as an edge reads it: a [`RoutersView`], or what an
/// older or foreign router answers. An edge learns only URLs from it, so it
/// reads what it can and skips the rest: `self` and `id` may be missing,
/// unknown fields are ignored, an entry may be a bare URL, and entries
/// without a string `url` are skipped. (Routers read each other strictly,
/// as [`RoutersView`]: they need the ids.)
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum RouterList {
    /// `{"routers": [...], ...}`, the shape of [`RoutersView`].
    View {
        /// The routers listed.
        routers: Vec<ListedRouter>,
    },
    /// A bare list: `[...]`.
    Bare(Vec<ListedRouter>),
}

impl RouterList {
    /// The entries, in the order listed.
    pub fn entries(&self) -> &[ListedRouter] {
        match self {
            RouterList::View { routers } | RouterList::Bare(routers) => routers,
        }
    }
}

/// One entry of a [`RouterList`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ListedRouter {
    /// A [`RouterInfo`]-like object: its `url`, whatever else it holds.
    Info {
        /// The router's URL, unchecked.
        url: String,
    },
    /// A bare URL, unchecked.
    Url(String),
    /// Anything else: nothing to learn from it.
    Other(serde::de::IgnoredAny),
}

impl ListedRouter {
    /// The URL the entry names, if any (unchecked).
    pub fn url(&self) -> Option<&str> {
        match self {
            ListedRouter::Info { url } | ListedRouter::Url(url) => Some(url),
            ListedRouter::Other(_) => None,
        }
    }
}

/// The answer of `GET /api/v1/scale`: how many edges the fleet should have.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scale {
    /// (Reported + assigned egress) / capacity over fresh, ready edges (the
    /// assigned part at most what each edge reported).
    pub utilization: f64,
    /// The utilization the router scales towards.
    pub target_utilization: f64,
    /// Fresh, ready edges now.
    pub edges: u32,
    /// Edges the fleet should have.
    pub desired_edges: u32,
    /// Lower bound of `desired_edges`.
    pub min_edges: u32,
    /// Upper bound of `desired_edges`.
    pub max_edges: u32,
}

/// HMAC domain of edge credentials.
const EDGE_CREDENTIAL_DOMAIN: &[u8] = b"hlscdn-edge-credential\0";

/// The credential of edge `edge_id` in a fleet whose token is
/// `fleet_token`: `{edge_id}.{hex(HMAC-SHA256(fleet_token, "hlscdn-edge-credential\0" ‖ edge_id))}`.
///
/// An edge sends it as its bearer token on ads and links instead of the
/// fleet token, so that it can speak only for itself: a router reads the
/// edge id from it, checks the HMAC, and refuses an ad or a link of any
/// other edge. Routers derive it from the fleet token; nothing per edge is
/// configured on them. `hlscdn edge-credential ID` prints it for an
/// operator who gives an edge its credential instead of the fleet token.
pub fn edge_credential(fleet_token: &str, edge_id: &str) -> String {
    format!("{edge_id}.{}", hex::encode(edge_mac(fleet_token, edge_id)))
}

/// The edge id `credential` speaks for, if it is a genuine credential of
/// this fleet (compared in constant time).
pub fn edge_of_credential<'c>(fleet_token: &str, credential: &'c str) -> Option<&'c str> {
    let (edge_id, mac) = credential.rsplit_once('.')?;
    if !crate::session::valid_edge_id(edge_id) || mac.len() != 64 {
        return None;
    }
    let given = hex::decode(mac).ok()?;
    let expected = edge_mac(fleet_token, edge_id);
    bool::from(subtle::ConstantTimeEq::ct_eq(
        given.as_slice(),
        expected.as_slice(),
    ))
    .then_some(edge_id)
}

fn edge_mac(fleet_token: &str, edge_id: &str) -> Vec<u8> {
    use hmac::Mac as _;
    // HMAC takes keys of any length, so the fallback is never used.
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(fleet_token.as_bytes())
        .unwrap_or_else(|_| <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new(&Default::default()));
    mac.update(EDGE_CREDENTIAL_DOMAIN);
    mac.update(edge_id.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod credential_tests {
    use super::*;

    #[test]
    fn an_edge_credential_speaks_for_its_edge_only() {
        let fleet = "fleet-token-for-tests-0123";
        let c = edge_credential(fleet, "edge-1");
        assert!(c.starts_with("edge-1."), "{c}");
        assert_eq!(edge_of_credential(fleet, &c), Some("edge-1"));
        assert_eq!(edge_of_credential("another-fleet-token-0123", &c), None);
        let forged = c.replacen("edge-1.", "edge-2.", 1);
        assert_eq!(
            edge_of_credential(fleet, &forged),
            None,
            "the id is under the MAC"
        );
        for bad in [
            "",
            "edge-1",
            "edge-1.",
            "edge-1.zz",
            fleet,
            "a/b.00",
            &format!("{c}0"),
        ] {
            assert_eq!(edge_of_credential(fleet, bad), None, "{bad}");
        }
    }
}
