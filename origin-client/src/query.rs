//! The part of a playlist request's query that reaches the origin and the
//! cache keys of routers and edges.
//!
//! Only the HLS delivery directives of a blocking or delta reload take part:
//! `_HLS_msn` and `_HLS_part` (decimal integers) and `_HLS_skip` (`YES` or
//! `v2`), the first of each, in the order sent. Every other parameter a
//! player (or an attacker) sends is dropped: a cache keyed by the query as
//! sent can be filled, and its origin hammered, by `?b=1`, `?b=2`, … . The
//! `_HLS_` prefix alone is not enough for the same reason (`?_HLS_b=N`);
//! HLS reserves the prefix and defines these three for playlists (and
//! `_HLS_pathway`/`_HLS_throughput` for steering manifests, which no origin
//! serves here). Pure code: no I/O.

/// Longest value of `_HLS_msn` or `_HLS_part` kept (`u64::MAX` has 20 digits).
const MAX_NUMBER_DIGITS: usize = 20;

/// The directives of `query` that reach the origin, joined by `&` (empty
/// when there are none). A malformed directive is dropped too, so the origin
/// sees an ordinary request rather than one the player did not mean.
pub fn playlist_query(query: &str) -> String {
    let mut kept = String::new();
    let mut seen = [false; 3];
    for pair in query.split('&') {
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        let slot = match name {
            "_HLS_msn" if is_number(value) => 0,
            "_HLS_part" if is_number(value) => 1,
            "_HLS_skip" if matches!(value, "YES" | "v2") => 2,
            _ => continue,
        };
        if std::mem::replace(&mut seen[slot], true) {
            continue;
        }
        if !kept.is_empty() {
            kept.push('&');
        }
        kept.push_str(pair);
    }
    kept
}

fn is_number(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_NUMBER_DIGITS && value.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_delivery_directives_are_kept() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("b=1", ""),
            ("_HLS_msn=5", "_HLS_msn=5"),
            ("_HLS_msn=5&_HLS_part=1", "_HLS_msn=5&_HLS_part=1"),
            ("_HLS_part=1&b=2&_HLS_msn=5", "_HLS_part=1&_HLS_msn=5"),
            (
                "token=x&_HLS_msn=12&v=3&_HLS_skip=YES",
                "_HLS_msn=12&_HLS_skip=YES",
            ),
            ("_HLS_skip=v2", "_HLS_skip=v2"),
            ("_HLS_skip=no&_HLS_skip=YES", "_HLS_skip=YES"),
            ("_HLS_msn=5&_HLS_msn=6", "_HLS_msn=5"),
            ("_HLS_msn=&_HLS_msn=x1&_HLS_msn=-1&_HLS_msn", ""),
            ("_HLS_msn=123456789012345678901", ""),
            ("_HLS_msn=12345678901234567890", "_HLS_msn=12345678901234567890"),
            ("_HLS_b=1&_hls_msn=1&_HLS_pathway=e1&_HLS_MSN=2", ""),
            ("&&_HLS_msn=1&", "_HLS_msn=1"),
        ];
        for (query, kept) in cases {
            assert_eq!(playlist_query(query), *kept, "{query:?}");
        }
    }

    #[test]
    fn distinct_junk_gives_one_key() {
        let keys: std::collections::HashSet<String> = (0..1000)
            .map(|i| playlist_query(&format!("b={i}&_HLS_msn=7&x{i}=y")))
            .collect();
        assert_eq!(keys.len(), 1);
    }
}
