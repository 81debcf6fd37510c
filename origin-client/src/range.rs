//! `Range` request headers (RFC 9110 §14): parsing, and resolution against
//! the size of an object. Pure code: no I/O.
//!
//! One byte range is served as 206. A header that lists several ranges is
//! answered with the whole object (200), which RFC 9110 allows; a header
//! that is not a byte range at all is ignored, as the RFC asks.

use std::ops::Range;

/// A single byte range as the client wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last` (inclusive).
    FromTo(u64, u64),
    /// `bytes=first-`.
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

/// What a `Range` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: serve the whole object.
    Full,
    /// Exactly one byte range.
    Single(ByteRange),
}

/// The outcome of resolving a request against an object's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Serve the whole object with 200.
    Full,
    /// Serve these bytes (half-open) with 206.
    Partial(Range<u64>),
    /// Answer 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// Parses a `Range` header value. Multi-range and non-byte units give `Full`;
/// a syntactically broken byte range also gives `Full` (RFC 9110 §14.2: a
/// server may ignore an invalid Range header).
pub fn parse(header: &str) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let range = match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, false) => num(last).map(ByteRange::Suffix),
        (false, true) => num(first).map(ByteRange::From),
        (false, false) => match (num(first), num(last)) {
            (Some(a), Some(b)) if a <= b => Some(ByteRange::FromTo(a, b)),
            _ => None,
        },
        (true, true) => None,
    };
    range.map_or(RangeRequest::Full, RangeRequest::Single)
}

/// Resolves a request against an object of `size` bytes.
pub fn resolve(request: RangeRequest, size: u64) -> Resolved {
    let RangeRequest::Single(range) = request else {
        return Resolved::Full;
    };
    match range {
        ByteRange::FromTo(first, last) if first < size => {
            Resolved::Partial(first..last.saturating_add(1).min(size))
        }
        ByteRange::From(first) if first < size => Resolved::Partial(first..size),
        ByteRange::Suffix(n) if n > 0 && size > 0 => Resolved::Partial(size.saturating_sub(n)..size),
        _ => Resolved::Unsatisfiable,
    }
}

/// The `Content-Range` value for a partial response.
pub fn content_range(range: &Range<u64>, size: u64) -> String {
    format!("bytes {}-{}/{}", range.start, range.end.saturating_sub(1), size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            parse("bytes=0-99"),
            RangeRequest::Single(ByteRange::FromTo(0, 99))
        );
        assert_eq!(parse("bytes=100-"), RangeRequest::Single(ByteRange::From(100)));
        assert_eq!(parse("bytes=-500"), RangeRequest::Single(ByteRange::Suffix(500)));
    }

    #[test]
    fn ignores_what_it_cannot_serve_as_one_range() {
        for h in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=5-1",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "",
        ] {
            assert_eq!(parse(h), RangeRequest::Full, "{h}");
        }
    }

    #[test]
    fn resolves_against_size() {
        let r = |h| resolve(parse(h), 1000);
        assert_eq!(r("bytes=0-99"), Resolved::Partial(0..100));
        assert_eq!(r("bytes=900-5000"), Resolved::Partial(900..1000));
        assert_eq!(r("bytes=-100"), Resolved::Partial(900..1000));
        assert_eq!(r("bytes=-5000"), Resolved::Partial(0..1000));
        assert_eq!(r("bytes=1000-"), Resolved::Unsatisfiable);
        assert_eq!(r("bytes=-0"), Resolved::Unsatisfiable);
        assert_eq!(resolve(parse("bytes=0-0"), 0), Resolved::Unsatisfiable);
        assert_eq!(content_range(&(900..1000), 1000), "bytes 900-999/1000");
    }

    proptest! {
        #[test]
        fn partial_ranges_are_inside_the_object(a in 0u64..2000, b in 0u64..2000, size in 0u64..1500) {
            for h in [format!("bytes={a}-{b}"), format!("bytes={a}-"), format!("bytes=-{b}")] {
                if let Resolved::Partial(r) = resolve(parse(&h), size) {
                    prop_assert!(r.start < r.end);
                    prop_assert!(r.end <= size);
                }
            }
        }
    }
}
