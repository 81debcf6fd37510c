//! Request path normalization, shared by every server that maps a URL path
//! onto an object key.
//!
//! The rule is strict on purpose: an object key is a sequence of non-empty,
//! percent-decoded UTF-8 segments, none of which is `.` or `..`, starts with a
//! dot, or contains a separator, NUL, control character or `#`. Anything else
//! is refused with a reason rather than "fixed", so that `..`, `%2e%2e`,
//! `%2f`, `%5c`, doubled slashes and absolute-URL tricks never reach a store.
//! Pure code: no I/O.

use std::fmt;

use percent_encoding::percent_decode_str;

/// Longest accepted request path, in bytes, before decoding.
pub const MAX_PATH_BYTES: usize = 1024;
/// Most segments accepted in one path.
pub const MAX_SEGMENTS: usize = 32;

/// A validated object key: segments joined by `/`, no leading slash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

/// Why a path was refused. Every variant is a client error (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("path must start with '/'")]
    NotAbsolute,
    /// The path is empty or only `/`.
    #[error("path names no object")]
    Empty,
    /// Too long or too many segments.
    #[error("path is longer than {MAX_PATH_BYTES} bytes or {MAX_SEGMENTS} segments")]
    TooLong,
    /// A percent escape is malformed or decodes to invalid UTF-8.
    #[error("path has an invalid percent-encoding or is not UTF-8")]
    BadEncoding,
    /// An empty segment (`//`), `.` or `..`, or a segment starting with a dot.
    #[error("path has an empty, '.' or '..' segment")]
    DotOrEmptySegment,
    /// An encoded `/` or `\`, a NUL, a control character or `#` inside a segment.
    #[error("path has a forbidden character")]
    ForbiddenChar,
}

impl ObjectKey {
    /// Normalizes the raw (still percent-encoded) path of a request URI.
    pub fn from_request_path(raw: &str) -> Result<Self, PathError> {
        let rest = raw.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
        if raw.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong);
        }
        if rest.is_empty() {
            return Err(PathError::Empty);
        }
        let mut key = String::with_capacity(rest.len());
        for (i, raw_segment) in rest.split('/').enumerate() {
            if i >= MAX_SEGMENTS {
                return Err(PathError::TooLong);
            }
            let segment = percent_decode_str(raw_segment)
                .decode_utf8()
                .map_err(|_| PathError::BadEncoding)?;
            if !well_formed_escapes(raw_segment) {
                return Err(PathError::BadEncoding);
            }
            check_segment(&segment)?;
            if i > 0 {
                key.push('/');
            }
            key.push_str(&segment);
        }
        Ok(Self(key))
    }

    /// Builds a key from segments already split (e.g. a stored key), with the
    /// same rules as a request path.
    pub fn from_key(key: &str) -> Result<Self, PathError> {
        if key.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong);
        }
        if key.is_empty() {
            return Err(PathError::Empty);
        }
        let mut count = 0;
        for segment in key.split('/') {
            count += 1;
            if count > MAX_SEGMENTS {
                return Err(PathError::TooLong);
            }
            check_segment(segment)?;
        }
        Ok(Self(key.to_owned()))
    }

    /// The key as a string, without a leading slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key as an `object_store` path.
    pub fn to_store_path(&self) -> object_store::path::Path {
        // Every segment passed `check_segment`, which is stricter than
        // `object_store`'s own rules, so the parts are taken as they are.
        object_store::path::Path::from_iter(self.0.split('/'))
    }

    /// The file name: the last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The extension of the file name, lowercase ASCII comparison left to the caller.
    pub fn extension(&self) -> Option<&str> {
        let name = self.file_name();
        name.rsplit_once('.').map(|(_, ext)| ext)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_segment(segment: &str) -> Result<(), PathError> {
    if segment.is_empty() || segment.starts_with('.') {
        return Err(PathError::DotOrEmptySegment);
    }
    if segment
        .chars()
        .any(|c| c == '/' || c == '\\' || c == '#' || c == '?' || c.is_control())
    {
        return Err(PathError::ForbiddenChar);
    }
    Ok(())
}

/// `percent_decode` passes a lone or truncated `%` through unchanged; we refuse it.
fn well_formed_escapes(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: Option<&u8>| b.is_some_and(u8::is_ascii_hexdigit);
            if !(hex(bytes.get(i + 1)) && hex(bytes.get(i + 2))) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(raw: &str) -> Result<String, PathError> {
        ObjectKey::from_request_path(raw).map(|k| k.as_str().to_owned())
    }

    #[test]
    fn plain_paths_are_kept() {
        assert_eq!(
            key("/live/demo-1/master.m3u8").as_deref(),
            Ok("live/demo-1/master.m3u8")
        );
        assert_eq!(key("/a%20b/c.ts").as_deref(), Ok("a b/c.ts"));
        assert_eq!(key("/%41bc.ts").as_deref(), Ok("Abc.ts"));
    }

    #[test]
    fn traversal_in_every_spelling_is_refused() {
        for raw in [
            "/../etc/passwd",
            "/a/../../etc/passwd",
            "/a/./b",
            "/%2e%2e/etc/passwd",
            "/%2E%2E/etc/passwd",
            "/.%2e/x",
            "/a/%2e/b",
            "/a%2f..%2fb",
            "/a%2F..%2Fb",
            "/a%5c..%5cb",
            "/a\\..\\b",
            "/a//b",
            "//evil.example/x",
            "/http://evil.example/x",
            "/a%00b",
            "/a%0ab",
            "/a%23b",
            "/a%3fb",
            "/.hidden",
            "/a%",
            "/a%zz",
            "/a%c3%28",
            "relative/path",
            "/",
            "",
        ] {
            assert!(key(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn limits_are_enforced() {
        let long = format!("/{}", "a".repeat(MAX_PATH_BYTES));
        assert_eq!(key(&long), Err(PathError::TooLong));
        let deep = "/a".repeat(MAX_SEGMENTS + 1);
        assert_eq!(key(&deep), Err(PathError::TooLong));
        let ok = "/a".repeat(MAX_SEGMENTS);
        assert!(key(&ok).is_ok());
    }

    #[test]
    fn store_path_matches_key() {
        let k = ObjectKey::from_request_path("/vod/demo/480p/seg-1.ts").expect("valid");
        assert_eq!(k.to_store_path().as_ref(), "vod/demo/480p/seg-1.ts");
        assert_eq!(k.extension(), Some("ts"));
        assert_eq!(k.file_name(), "seg-1.ts");
    }

    proptest! {
        /// Whatever is accepted is a clean key: no traversal survives decoding.
        #[test]
        fn accepted_keys_are_clean(raw in "/[a-zA-Z0-9%./\\\\#?-]{0,40}") {
            if let Ok(k) = ObjectKey::from_request_path(&raw) {
                for segment in k.as_str().split('/') {
                    prop_assert!(!segment.is_empty());
                    prop_assert!(!segment.starts_with('.'));
                    prop_assert!(!segment.contains('\\'));
                }
                prop_assert_eq!(ObjectKey::from_key(k.as_str()), Ok(k.clone()));
            }
        }
    }
}
