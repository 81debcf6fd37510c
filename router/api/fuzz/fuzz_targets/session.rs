//! Fuzz target: the viewer session token (`s`).
//!
//! The first byte picks what the rest of the input is:
//!
//! - even: a token, decoded with a fixed key at a fixed time: never panics;
//!   a token that decodes is exactly the encoding of what it decoded to
//!   (one spelling per session), with a valid edge id, within the age limit.
//! - odd: 8 bytes of viewer id, 1 byte of age, 2 of tamper position, 1 of
//!   value, then an edge id: the session round-trips when the edge id is
//!   valid and never decodes otherwise, and with any one byte changed it
//!   does not decode (or decodes to the very same session, when the change
//!   only touched base64 padding bits that cannot occur).

#![no_main]

use libfuzzer_sys::fuzz_target;
use router_api::session::{Session, SessionKey, valid_edge_id};

const SECRET: &[u8] = b"fuzz-session-secret-0123456789";
const NOW: u64 = 1_767_225_600;
const MAX_AGE: u64 = 86_400;

fn check_decode(key: &SessionKey, token: &str) {
    if let Some(session) = key.decode(token, NOW, MAX_AGE) {
        assert!(valid_edge_id(&session.edge_id));
        assert!(session.issued_unix <= NOW + 30);
        assert!(NOW.saturating_sub(session.issued_unix) <= MAX_AGE);
        assert_eq!(key.encode(&session), token, "one spelling per session");
    }
}

fn check_roundtrip(key: &SessionKey, data: &[u8]) {
    if data.len() < 12 {
        return;
    }
    let viewer_id = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
    let age = u64::from(data[8]) * 1000;
    let at = usize::from(u16::from_be_bytes([data[9], data[10]]));
    let byte = data[11];
    let Ok(edge_id) = std::str::from_utf8(&data[12..]) else {
        return;
    };
    let session = Session {
        edge_id: edge_id.to_owned(),
        issued_unix: NOW - age,
        viewer_id,
    };
    let token = key.encode(&session);
    let decoded = key.decode(&token, NOW, MAX_AGE);
    if valid_edge_id(edge_id) && age <= MAX_AGE {
        assert_eq!(decoded.as_ref(), Some(&session));
    } else {
        assert_eq!(decoded, None);
    }
    let mut bytes = token.clone().into_bytes();
    let at = at % bytes.len().max(1);
    if bytes.get(at).is_none_or(|b| *b == byte) {
        return;
    }
    bytes[at] = byte;
    if let Ok(tampered) = String::from_utf8(bytes) {
        assert_eq!(key.decode(&tampered, NOW, MAX_AGE), None, "tampered: {tampered}");
    }
}

fuzz_target!(|data: &[u8]| {
    let key = SessionKey::new(SECRET);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(token) = std::str::from_utf8(rest) {
            check_decode(&key, token);
        }
    } else {
        check_roundtrip(&key, rest);
    }
});
