//! Fuzz target: `ObjectKey::from_request_path`, the one gate between a
//! request path and a store key (origin, router and edge all use it).
//!
//! Never panics, and every key it accepts is clean:
//!
//! - at most 1024 bytes of input, at most 32 segments;
//! - no segment is empty, `.` or `..`, or starts with a dot; none holds `/`,
//!   `\`, `#`, `?` or a control character (so no traversal survives decoding);
//! - the key is its own `ObjectKey::from_key`, and a request path made by
//!   percent-encoding each segment of the key gives the same key again
//!   (decoding happens exactly once);
//! - the store path has one part per segment and no part is `.` or `..`.
//!
//! Paths that hold `..`, `%2e%2e`, `%2f`, `%5c` or `//` are never accepted.

#![no_main]

use libfuzzer_sys::fuzz_target;
use origin_client::path::{MAX_PATH_BYTES, MAX_SEGMENTS, ObjectKey};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(key) = ObjectKey::from_request_path(raw) else {
        return;
    };
    assert!(raw.len() <= MAX_PATH_BYTES);
    let lower = raw.to_ascii_lowercase();
    for trick in ["/../", "/./", "//", "%2f", "%5c", "\\"] {
        assert!(!format!("{lower}/").contains(trick), "{raw:?} accepted");
    }
    let segments: Vec<&str> = key.as_str().split('/').collect();
    assert!(segments.len() <= MAX_SEGMENTS);
    for segment in &segments {
        assert!(!segment.is_empty(), "empty segment in {raw:?}");
        assert!(!segment.starts_with('.'), "dot segment in {raw:?}");
        assert!(
            !segment
                .chars()
                .any(|c| matches!(c, '/' | '\\' | '#' | '?') || c.is_control()),
            "forbidden character in {raw:?}"
        );
    }
    assert_eq!(ObjectKey::from_key(key.as_str()).as_ref(), Ok(&key));

    let encoded: String = segments
        .iter()
        .map(|s| format!("/{}", utf8_percent_encode(s, NON_ALPHANUMERIC)))
        .collect();
    if encoded.len() <= MAX_PATH_BYTES {
        assert_eq!(
            ObjectKey::from_request_path(&encoded).as_ref(),
            Ok(&key),
            "{encoded}"
        );
    }

    let store_path = key.to_store_path();
    let parts: Vec<_> = store_path.parts().collect();
    assert_eq!(parts.len(), segments.len(), "{raw:?} → {store_path}");
    for part in &parts {
        assert!(!matches!(part.as_ref(), "." | ".."), "{raw:?} → {store_path}");
    }
    assert!(!key.file_name().is_empty());
});
