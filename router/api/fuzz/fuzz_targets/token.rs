//! Fuzz target: the segment token (`hdnts`) parser and verifier.
//!
//! The first byte picks what the rest of the input is:
//!
//! - `0`: a query string for `split_token`: never panics; the token it
//!   returns is the value of the first `hdnts` parameter; the rest is every
//!   other parameter, byte for byte and in order.
//! - `1`: a `KID:SECRET` key for `SigningKey::from_str`: never panics; an
//!   accepted key has a valid id and a secret of at least 16 bytes.
//! - `2`: `PATH\nTOKEN`, verified at a fixed time by a ring of two keys:
//!   never panics; a token is accepted only if it is exactly what the ring
//!   signs for its acl and expiry, the acl covers the path and it has not
//!   expired. (The seeds hold genuine tokens of these keys to mutate.)
//! - `3`: 8 bytes of expiry, 2 of position, 1 of value, then an acl: the
//!   ring signs the acl; the token verifies exactly when the acl covers the
//!   path and the expiry is ahead; with any one byte changed it never does.

#![no_main]

use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;
use router_api::token::{KeyRing, SigningKey, TOKEN_PARAM, TokenError, split_token};

/// The keys of the ring under test (the seeds are signed with them).
const KEYS: [&str; 2] = ["k1:fuzz-secret-number-one-0123", "k2:fuzz-secret-number-two-4567"];
/// The time tokens are verified at.
const NOW: u64 = 1_767_225_600;

fn key(spec: &str) -> SigningKey {
    spec.parse().expect("valid fuzz key")
}

fn ring() -> KeyRing {
    KeyRing::new(KEYS.iter().map(|k| key(k)).collect()).expect("valid fuzz ring")
}

fn check_split(query: &str) {
    let (token, rest) = split_token(query);
    let params: Vec<&str> = query.split('&').collect();
    let is_token = |p: &&str| p.split_once('=').map_or(*p, |(name, _)| name) == TOKEN_PARAM;
    let first = params.iter().find(|p| is_token(p));
    match (token, first) {
        (None, None) => assert_eq!(rest, query),
        (Some(t), Some(p)) => {
            assert_eq!(p.get(TOKEN_PARAM.len() + 1..).unwrap_or(""), t);
            let kept: Vec<&str> = params.iter().filter(|p| !is_token(p)).copied().collect();
            assert_eq!(rest, kept.join("&"));
        }
        other => panic!("split_token disagrees on presence: {other:?}"),
    }
}

fn check_key(text: &str) {
    if let Ok(k) = text.parse::<SigningKey>() {
        let (id, secret) = text.split_once(':').expect("a separator");
        assert_eq!(k.id(), id);
        assert!(!id.is_empty() && id.len() <= 64);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        );
        assert!(secret.len() >= 16);
    }
}

/// The covered-path rule, restated.
fn covers(acl: &str, path: &str) -> bool {
    if !path.starts_with('/') || path.split('/').any(|s| s == "." || s == "..") {
        return false;
    }
    match acl.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => path == acl,
    }
}

fn check_verify(path: &str, token: &str) {
    let ring = ring();
    let result = ring.verify(token, path, NOW);
    if result.is_err() {
        return;
    }
    // Accepted: the token is exactly what the ring signs for its fields.
    let fields: Vec<&str> = token.split('~').collect();
    assert_eq!(fields.len(), 4, "{token}");
    let value = |i: usize, name: &str| {
        fields[i]
            .strip_prefix(name)
            .and_then(|v| v.strip_prefix('='))
            .unwrap_or_else(|| panic!("field {i} is not {name}: {token}"))
    };
    let exp: u64 = value(0, "exp").parse().expect("exp");
    let acl = percent_decode_str(value(1, "acl"))
        .decode_utf8()
        .expect("acl")
        .into_owned();
    let kid = value(2, "kid");
    let signer = KEYS
        .iter()
        .map(|k| key(k))
        .find(|k| k.id() == kid)
        .expect("a ring key");
    assert_eq!(KeyRing::single(signer).sign(&acl, exp), token);
    assert!(NOW < exp);
    assert!(covers(&acl, path), "{acl} does not cover {path}");
}

fn check_sign_then_tamper(data: &[u8]) {
    if data.len() < 11 {
        return;
    }
    let exp = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
    let at = usize::from(u16::from_be_bytes([data[8], data[9]]));
    let byte = data[10];
    let Ok(acl) = std::str::from_utf8(&data[11..]) else {
        return;
    };
    let ring = ring();
    let token = ring.sign(acl, exp);
    let path = match acl.strip_suffix('*') {
        Some(prefix) => format!("{prefix}x"),
        None => acl.to_owned(),
    };
    let expected = if token.len() > router_api::token::MAX_TOKEN_LEN || acl.is_empty() {
        Err(TokenError::Malformed)
    } else if !covers(acl, &path) {
        Err(TokenError::PathNotCovered)
    } else if NOW >= exp {
        Err(TokenError::Expired)
    } else {
        Ok(())
    };
    assert_eq!(ring.verify(&token, &path, NOW), expected, "{token}");

    let mut bytes = token.clone().into_bytes();
    let at = at % bytes.len();
    if bytes[at] == byte {
        return;
    }
    bytes[at] = byte;
    if let Ok(tampered) = String::from_utf8(bytes) {
        assert!(
            ring.verify(&tampered, &path, NOW).is_err(),
            "tampered token accepted: {tampered}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            if let Ok(query) = std::str::from_utf8(rest) {
                check_split(query);
            }
        }
        1 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                check_key(text);
            }
        }
        2 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let (path, token) = text.split_once('\n').unwrap_or(("/live/a/seg.ts", text));
                check_verify(path, token);
            }
        }
        _ => check_sign_then_tamper(rest),
    }
});
