//! Fuzz target: the ad decoder, as a router runs it on `POST /api/v1/ads`
//! bodies: `serde_json::from_slice::<Ad>`, `Ad::validate`, `Ad::is_newer_than`
//! and the snapshot built from a valid ad.
//!
//! Never panics, and for every ad that parses:
//!
//! - JSON round trip: serializing and parsing again gives an equal ad, which
//!   validates exactly when the original did;
//! - ordering is a strict order: an ad is never newer than itself, two ads
//!   are never each newer than the other, the next generation of the same
//!   instance is newer;
//! - a valid ad has a valid id and an http(s) base URL with a host and no
//!   credentials, query, fragment, whitespace or control characters, and its
//!   snapshot is fresh for exactly its TTL.

#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use router_api::fleet::{Ad, EdgeSnapshot};
use router_api::session::valid_edge_id;

fuzz_target!(|data: &[u8]| {
    let Ok(ad) = serde_json::from_slice::<Ad>(data) else {
        return;
    };
    let valid = ad.validate();

    let json = serde_json::to_vec(&ad).expect("an ad serializes");
    let again: Ad = serde_json::from_slice(&json).expect("a serialized ad parses");
    assert_eq!(again, ad);
    assert_eq!(again.validate().is_ok(), valid.is_ok());

    assert!(!ad.is_newer_than(&ad), "newer than itself");
    let mut next = ad.clone();
    if let Some(generation) = ad.generation.checked_add(1) {
        next.generation = generation;
        assert!(next.is_newer_than(&ad));
        assert!(!ad.is_newer_than(&next));
    }
    let mut other = ad.clone();
    other.instance.id.push('x');
    assert!(!(other.is_newer_than(&ad) && ad.is_newer_than(&other)));

    if valid.is_ok() {
        assert!(valid_edge_id(&ad.edge_id));
        let url = ad.public_url.to_ascii_lowercase();
        assert!(url.starts_with("http://") || url.starts_with("https://"));
        assert!(
            !ad.public_url
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b >= 0x80)
        );
        assert!(!ad.public_url.contains(['?', '#']));
        let authority = url.split('/').nth(2).unwrap_or("");
        assert!(
            !authority.is_empty() && !authority.contains('@'),
            "{}",
            ad.public_url
        );
        let now = Instant::now();
        let snapshot = EdgeSnapshot::from_ad(&ad, now, None);
        assert_eq!(snapshot.fresh_until, Some(now + Duration::from_millis(ad.ttl_ms)));
        assert!(!snapshot.base_url.ends_with('/'));
    }
});
