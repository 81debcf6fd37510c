//! Rendered media playlists, kept beside their template.
//!
//! Every viewer of one media playlist on one edge gets the same bytes while
//! the template and the token's expiry step last: the edge's base URL and
//! the signed media query are all that differ between edges, and the
//! session is not in the body (a media playlist that names other playlists
//! — rendition reports, say — carries the session and is never kept). So a
//! playlist remembers its last few renderings, keyed by what they were
//! rendered with, and most answers are a `Bytes` clone: no signing, no
//! rendering, no allocation.
//!
//! Bounded: at most [`RENDERINGS`] renderings per playlist, each no longer
//! than the template's source with [`URI_ALLOWANCE`] bytes per media URI,
//! and none over [`MAX_RENDERING_BYTES`] (a long VOD is rendered each
//! time): the playlist cache weighs that much more per entry, and the
//! renderings go with the template when the cache drops it.

use std::collections::VecDeque;
use std::sync::{PoisonError, RwLock};

use bytes::Bytes;

use crate::rewrite::Template;

/// Renderings kept per playlist: about one per edge its viewers are on, for
/// the current and the next expiry step.
pub const RENDERINGS: usize = 8;

/// Largest rendering kept (a live window; a long VOD is not kept).
pub const MAX_RENDERING_BYTES: usize = 16 * 1024;

/// Bytes a rendering may add to each media URI of its source: an edge base
/// and a signed token.
pub const URI_ALLOWANCE: usize = 384;

/// What a rendering was made with, besides its template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderKey<'a> {
    /// Base URL of the edge in the media URIs.
    pub edge_base: &'a str,
    /// ACL of the signed token (empty: not signed).
    pub acl: &'a str,
    /// Expiry of the signed token (0: not signed).
    pub expires: u64,
}

#[derive(Debug)]
struct Entry {
    edge_base: Box<str>,
    acl: Box<str>,
    expires: u64,
    body: Bytes,
}

impl Entry {
    fn is(&self, key: &RenderKey<'_>) -> bool {
        self.expires == key.expires && *self.edge_base == *key.edge_base && *self.acl == *key.acl
    }
}

/// The last [`RENDERINGS`] renderings of one template.
#[derive(Debug)]
pub struct Renderings {
    /// Longest rendering kept (0: none).
    limit: usize,
    entries: RwLock<VecDeque<Entry>>,
}

impl Renderings {
    /// Keeps renderings of up to `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.min(MAX_RENDERING_BYTES),
            entries: RwLock::default(),
        }
    }

    /// Renderings of `template`: none if they could be longer than
    /// [`MAX_RENDERING_BYTES`].
    pub fn of(template: &Template) -> Self {
        let longest = template.source().len() + template.media_keys().count() * URI_ALLOWANCE;
        Self::new(if longest > MAX_RENDERING_BYTES { 0 } else { longest })
    }

    /// The rendering made with `key`, if kept.
    pub fn get(&self, key: &RenderKey<'_>) -> Option<Bytes> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.iter().find(|e| e.is(key)).map(|e| e.body.clone())
    }

    /// Keeps `body`, rendered with `key` (unless it is too large), in place
    /// of the oldest rendering once [`RENDERINGS`] are kept.
    pub fn insert(&self, key: &RenderKey<'_>, body: Bytes) {
        if body.len() > self.limit {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.iter().any(|e| e.is(key)) {
            return;
        }
        if entries.len() == RENDERINGS {
            entries.pop_front();
        }
        entries.push_back(Entry {
            edge_base: key.edge_base.into(),
            acl: key.acl.into(),
            expires: key.expires,
            body,
        });
    }

    /// Bytes these renderings may hold at most (bodies, their keys, the
    /// entries): for the cache's weigher. Keys are an edge base and an ACL,
    /// counted at up to [`URI_ALLOWANCE`] bytes.
    pub fn max_memory(&self) -> usize {
        if self.limit == 0 {
            0
        } else {
            RENDERINGS * (self.limit + size_of::<Entry>() + URI_ALLOWANCE)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn body_of(k: &RenderKey<'_>) -> Bytes {
        Bytes::from(format!("{} {} {}", k.edge_base, k.acl, k.expires))
    }

    fn key(edge: u8, acl: u8, expires: u64) -> (String, String, u64) {
        (format!("http://edge-{edge}"), format!("/live/{acl}/*"), expires)
    }

    proptest! {
        /// Whatever the sequence of insertions, a lookup answers the body
        /// last inserted under exactly that key or nothing, and no more than
        /// RENDERINGS are kept.
        #[test]
        fn a_lookup_never_answers_another_keys_body(
            ops in proptest::collection::vec((0u8..4, 0u8..2, 0u64..3), 1..40),
        ) {
            let renderings = Renderings::new(MAX_RENDERING_BYTES);
            let mut seen = Vec::new();
            for (edge, acl, expires) in ops {
                seen.push(key(edge, acl, expires));
                let (base, acl, expires) = seen[seen.len() - 1].clone();
                let k = RenderKey { edge_base: &base, acl: &acl, expires };
                renderings.insert(&k, body_of(&k));
                prop_assert_eq!(renderings.get(&k), Some(body_of(&k)));
                for (base, acl, expires) in &seen {
                    let k = RenderKey { edge_base: base, acl, expires: *expires };
                    if let Some(kept) = renderings.get(&k) {
                        prop_assert_eq!(kept, body_of(&k));
                    }
                }
                prop_assert!(renderings.entries.read().map_or(0, |e| e.len()) <= RENDERINGS);
            }
        }
    }

    #[test]
    fn a_large_rendering_is_not_kept() {
        let renderings = Renderings::new(100);
        let k = RenderKey {
            edge_base: "http://e",
            acl: "",
            expires: 0,
        };
        renderings.insert(&k, Bytes::from(vec![b'#'; 101]));
        assert_eq!(renderings.get(&k), None);
        renderings.insert(&k, Bytes::from(vec![b'#'; 100]));
        assert!(renderings.get(&k).is_some());
        assert!(renderings.max_memory() >= RENDERINGS * 100);
        assert_eq!(Renderings::new(0).max_memory(), 0);
    }

    #[test]
    fn the_oldest_rendering_goes_first() {
        let renderings = Renderings::new(MAX_RENDERING_BYTES);
        let bases: Vec<String> = (0..=RENDERINGS).map(|i| format!("http://edge-{i}")).collect();
        let keys: Vec<RenderKey<'_>> = bases
            .iter()
            .map(|b| RenderKey {
                edge_base: b,
                acl: "/a/*",
                expires: 1,
            })
            .collect();
        for k in &keys {
            renderings.insert(k, Bytes::from(k.edge_base.to_owned()));
        }
        assert_eq!(renderings.get(&keys[0]), None);
        for k in &keys[1..] {
            assert_eq!(renderings.get(k), Some(Bytes::from(k.edge_base.to_owned())));
        }
    }
}
