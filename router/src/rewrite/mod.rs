//! Playlist rewriting, with no I/O: an HLS playlist (multivariant or media)
//! is scanned once into a [`Template`] — the byte runs between URI slots, as
//! shared [`Bytes`] slices of the fetched body, and the slots with the object
//! key of each URI worked out in advance — and every response is assembled
//! from the template, an edge base URL and the viewer's tokens, with no
//! re-parse and no allocation per URI.
//!
//! The rules (which tags carry URIs, which URIs point back to the router and
//! which to an edge, what is left alone) are in `docs/REWRITE.md`; in short:
//!
//! - [`SlotKind::Playlist`] URIs (variants, renditions, I-frame and image
//!   playlists, rendition reports) keep their text, so a relative URI still
//!   points to the router, and get `playlist_query` appended (`?` or `&`);
//!   one written as an absolute URL to the origin becomes `/{key}` + query.
//! - [`SlotKind::Media`] URIs (segments, parts, maps, preload hints, keys,
//!   session data, the steering manifest) become `{edge_base}/{key}`, their
//!   own query, then `media_query`.
//! - Every byte outside a slot is copied as it is.
//!
//! # Layout
//!
//! - `attrs`: the RFC 8216 attribute-list parser.
//! - `uri`: which URIs are the origin's, and their object keys.
//! - `scan`: the single pass that finds the slots.
//! - this module: the public types and rendering.
//!
//! ```
//! use router::rewrite::{scan, RenderContext, ScanOptions};
//!
//! let body = bytes::Bytes::from_static(b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nseg1.ts\n");
//! let bases = ["http://127.0.0.1:8000/".to_owned()];
//! let options = ScanOptions { playlist_key: "live/a/240p/index.m3u8", origin_bases: &bases };
//! let template = scan(body, &options).expect("a playlist");
//! let ctx = RenderContext { edge_base: "http://edge-1", media_query: Some("t=1"), playlist_query: "s=2" };
//! let mut out = Vec::new();
//! template.render(&ctx, &mut out);
//! assert_eq!(out, b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nhttp://edge-1/live/a/240p/seg1.ts?t=1\n");
//! ```

mod attrs;
mod pathways;
#[cfg(test)]
mod proptests;
mod scan;
mod uri;

use std::fmt;
use std::ops::Range;

use bytes::Bytes;

pub use pathways::Pathway;

/// A key in URI form (as [`Template::slot_key`] gives it) as an object key:
/// percent-decoded, as the edge reads a request path. Signed ACLs are built
/// over this form.
pub fn decode_key(uri_path: &str) -> String {
    uri::decode_key(uri_path)
}

/// Where a playlist was fetched from, for resolving its URIs.
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions<'a> {
    /// Object key of the playlist in the origin, e.g. `live/demo-1/240p/index.m3u8`,
    /// percent-decoded (as `ObjectKey::as_str` gives it: `live/a b/index.m3u8`);
    /// relative URIs resolve against its directory, written in URI form
    /// (`live/a%20b/`).
    pub playlist_key: &'a str,
    /// Base URLs under which absolute URIs are the origin's own (e.g.
    /// `["http://127.0.0.1:8000/"]`); an absolute URI under one of them is
    /// treated like a relative one (resolved to its object key); any other
    /// absolute URI is foreign and left alone.
    pub origin_bases: &'a [String],
}

/// A body that cannot be rewritten because it is not a playlist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// The body is empty.
    #[error("not an HLS playlist: the body is empty")]
    Empty,
    /// The first line is not `#EXTM3U` (after an optional UTF-8 BOM).
    #[error("not an HLS playlist: the first line is not #EXTM3U")]
    NoHeader,
    /// A control byte that text playlists never hold.
    #[error("not an HLS playlist: control byte 0x{byte:02x} at offset {offset} (binary data)")]
    Binary {
        /// Offset of the byte in the body.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// More URIs than the caller allows ([`scan_bounded`]): every URI costs
    /// memory in the template and bytes in each rendering, far more than its
    /// bytes in the input.
    #[error("the playlist has more than {limit} URIs")]
    TooManyUris {
        /// The limit.
        limit: usize,
    },
}

/// Multivariant (master) or media playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlaylistKind {
    /// Has `EXT-X-STREAM-INF`, `EXT-X-MEDIA`, or another multivariant-only tag.
    Multivariant,
    /// Everything else.
    Media,
}

/// How a slot is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotKind {
    /// Points back to the router: text kept, `playlist_query` appended.
    Playlist,
    /// Points to the edge: `{edge_base}/{key}` + query + `media_query`.
    Media,
}

/// The element a URI slot comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UriTag {
    /// The URI line after `EXT-X-STREAM-INF`.
    StreamInf,
    /// `EXT-X-MEDIA` `URI=`.
    Media,
    /// `EXT-X-I-FRAME-STREAM-INF` `URI=`.
    IFrameStreamInf,
    /// `EXT-X-IMAGE-STREAM-INF` `URI=`.
    ImageStreamInf,
    /// `EXT-X-SESSION-DATA` `URI=`.
    SessionData,
    /// `EXT-X-SESSION-KEY` `URI=`.
    SessionKey,
    /// `EXT-X-CONTENT-STEERING` `SERVER-URI=`.
    ContentSteering,
    /// A segment's URI line.
    Segment,
    /// `EXT-X-KEY` `URI=`.
    Key,
    /// `EXT-X-MAP` `URI=`.
    Map,
    /// `EXT-X-PART` `URI=`.
    Part,
    /// `EXT-X-PRELOAD-HINT` `URI=`.
    PreloadHint,
    /// `EXT-X-RENDITION-REPORT` `URI=`.
    RenditionReport,
}

impl UriTag {
    /// Every URI-bearing element.
    pub const ALL: [UriTag; 13] = [
        UriTag::StreamInf,
        UriTag::Media,
        UriTag::IFrameStreamInf,
        UriTag::ImageStreamInf,
        UriTag::SessionData,
        UriTag::SessionKey,
        UriTag::ContentSteering,
        UriTag::Segment,
        UriTag::Key,
        UriTag::Map,
        UriTag::Part,
        UriTag::PreloadHint,
        UriTag::RenditionReport,
    ];

    /// The tag's name without `#`; for a URI line, the tag that introduces it
    /// (`EXT-X-STREAM-INF`, or `EXTINF` for a segment).
    pub fn name(self) -> &'static str {
        match self {
            UriTag::StreamInf => "EXT-X-STREAM-INF",
            UriTag::Media => "EXT-X-MEDIA",
            UriTag::IFrameStreamInf => "EXT-X-I-FRAME-STREAM-INF",
            UriTag::ImageStreamInf => "EXT-X-IMAGE-STREAM-INF",
            UriTag::SessionData => "EXT-X-SESSION-DATA",
            UriTag::SessionKey => "EXT-X-SESSION-KEY",
            UriTag::ContentSteering => "EXT-X-CONTENT-STEERING",
            UriTag::Segment => "EXTINF",
            UriTag::Key => "EXT-X-KEY",
            UriTag::Map => "EXT-X-MAP",
            UriTag::Part => "EXT-X-PART",
            UriTag::PreloadHint => "EXT-X-PRELOAD-HINT",
            UriTag::RenditionReport => "EXT-X-RENDITION-REPORT",
        }
    }

    /// The attribute holding the URI (`URI` or `SERVER-URI`); `None` for a URI line.
    pub fn attribute(self) -> Option<&'static str> {
        match self {
            UriTag::StreamInf | UriTag::Segment => None,
            UriTag::ContentSteering => Some("SERVER-URI"),
            _ => Some("URI"),
        }
    }

    /// How URIs of this element are rendered.
    pub fn kind(self) -> SlotKind {
        match self {
            UriTag::StreamInf
            | UriTag::Media
            | UriTag::IFrameStreamInf
            | UriTag::ImageStreamInf
            | UriTag::RenditionReport => SlotKind::Playlist,
            UriTag::SessionData
            | UriTag::SessionKey
            | UriTag::ContentSteering
            | UriTag::Segment
            | UriTag::Key
            | UriTag::Map
            | UriTag::Part
            | UriTag::PreloadHint => SlotKind::Media,
        }
    }

    /// The kind of playlist this element belongs to.
    pub fn scope(self) -> PlaylistKind {
        match self {
            UriTag::StreamInf
            | UriTag::Media
            | UriTag::IFrameStreamInf
            | UriTag::ImageStreamInf
            | UriTag::SessionData
            | UriTag::SessionKey
            | UriTag::ContentSteering => PlaylistKind::Multivariant,
            UriTag::Segment
            | UriTag::Key
            | UriTag::Map
            | UriTag::Part
            | UriTag::PreloadHint
            | UriTag::RenditionReport => PlaylistKind::Media,
        }
    }

    fn is_variant(self) -> bool {
        self == UriTag::StreamInf
    }
}

/// One `EXT-X-STREAM-INF` of a multivariant playlist that has a URI line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// The URI line as written.
    pub uri: String,
    /// The object key it names, if it is the origin's (see [`SlotKind`]),
    /// percent-decoded: as `ObjectKey::as_str` gives it.
    pub key: Option<String>,
    /// `BANDWIDTH`, bits per second.
    pub bandwidth: Option<u64>,
    /// `AVERAGE-BANDWIDTH`, bits per second.
    pub average_bandwidth: Option<u64>,
}

/// What joins an appended query pair to a URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    /// No query yet: `?`.
    Question,
    /// A query that does not end with `&`: `&`.
    Ampersand,
    /// An empty query (`x?`) or one ending with `&`: nothing.
    Nothing,
}

impl Join {
    fn push(self, out: &mut Vec<u8>) {
        match self {
            Join::Question => out.push(b'?'),
            Join::Ampersand => out.push(b'&'),
            Join::Nothing => {}
        }
    }

    fn len(self) -> usize {
        usize::from(self != Join::Nothing)
    }
}

/// A URI the template rewrites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    tag: UriTag,
    /// The URI's bytes in the input (inside the quotes of an attribute).
    range: Range<usize>,
    /// The object key, in the template's arena.
    key: Range<usize>,
    /// What is written first: `/` + key + query (media kind, or an origin URL
    /// of playlist kind) or the URI as written up to its fragment (playlist
    /// kind), in the arena; always in URI form (bytes a URI cannot hold
    /// percent-encoded).
    head: Range<usize>,
    /// The fragment (with `#`), in the arena; usually empty.
    tail: Range<usize>,
    join: Join,
}

impl Slot {
    /// How the slot is rendered.
    pub fn kind(&self) -> SlotKind {
        self.tag.kind()
    }

    /// The element the URI comes from.
    pub fn tag(&self) -> UriTag {
        self.tag
    }

    /// Where the URI is in the input (for an attribute: inside its quotes).
    pub fn range(&self) -> Range<usize> {
        self.range.clone()
    }
}

/// The facts the scan records besides the slots.
#[derive(Debug, Clone)]
struct Facts {
    kind: PlaylistKind,
    /// The origin already steers: `EXT-X-CONTENT-STEERING` or a `PATHWAY-ID`.
    steered: bool,
    ended: bool,
    target_duration: Option<u64>,
    part_target: Option<f64>,
    variants: Vec<Variant>,
}

/// Per slot kind, for the exact rendered length.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    slots: usize,
    joins: usize,
}

/// A scanned playlist, ready to render for any edge and viewer. `Send + Sync`;
/// share it behind an `Arc`.
#[derive(Clone)]
pub struct Template {
    source: Bytes,
    /// `slots.len() + 1` runs of the input: before, between and after the slots.
    runs: Vec<Bytes>,
    slots: Vec<Slot>,
    /// Keys and heads of all slots.
    arena: String,
    facts: Facts,
    /// Bytes of every run, head and tail: what every rendering writes.
    fixed_len: usize,
    media: Counts,
    playlist: Counts,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template")
            .field("kind", &self.facts.kind)
            .field("bytes", &self.source.len())
            .field("slots", &self.slots.len())
            .field("ended", &self.facts.ended)
            .field("target_duration", &self.facts.target_duration)
            .field("part_target", &self.facts.part_target)
            .field("variants", &self.facts.variants.len())
            .finish()
    }
}

/// Scans `playlist` into a template. Fails only when the body is not a
/// playlist: empty, not starting with `#EXTM3U` (a UTF-8 BOM before it is
/// fine), or holding control bytes (binary data). Never panics.
pub fn scan(playlist: Bytes, options: &ScanOptions<'_>) -> Result<Template, RewriteError> {
    scan::scan(playlist, options, usize::MAX)
}

/// [`scan`], refusing a playlist with more than `max_uris` URI slots with
/// [`RewriteError::TooManyUris`] as soon as the scan finds one too many, so
/// that a playlist of tiny URIs cannot make a template (and renderings)
/// many times larger than its body.
pub fn scan_bounded(
    playlist: Bytes,
    options: &ScanOptions<'_>,
    max_uris: usize,
) -> Result<Template, RewriteError> {
    scan::scan(playlist, options, max_uris)
}

/// What one response is rendered with.
///
/// None of these may hold `"`, CR or LF: they are written inside quoted
/// attribute values and URI lines as they are.
#[derive(Debug, Clone, Copy)]
pub struct RenderContext<'a> {
    /// e.g. `http://127.0.0.1:9001` (a trailing `/` is ignored). Media-kind
    /// URIs become `{edge_base}/{object key}` + query.
    pub edge_base: &'a str,
    /// Query pair appended to media-kind URIs, e.g. `hdnts=exp=...~acl=...~hmac=...`
    /// (`None` or empty: nothing appended).
    pub media_query: Option<&'a str>,
    /// Query pair appended to playlist-kind URIs, e.g. `s=TOKEN` (empty: nothing appended).
    pub playlist_query: &'a str,
}

impl RenderContext<'_> {
    fn edge_base(&self) -> &[u8] {
        self.edge_base
            .strip_suffix('/')
            .unwrap_or(self.edge_base)
            .as_bytes()
    }

    fn media_query(&self) -> &[u8] {
        self.media_query.unwrap_or("").as_bytes()
    }
}

impl Template {
    fn assemble(source: Bytes, slots: Vec<Slot>, arena: String, facts: Facts) -> Self {
        let mut runs = Vec::with_capacity(slots.len() + 1);
        let mut fixed_len = 0;
        let mut media = Counts::default();
        let mut playlist = Counts::default();
        let mut prev = 0;
        for slot in &slots {
            runs.push(source.slice(prev..slot.range.start));
            prev = slot.range.end;
            fixed_len += slot.head.len() + slot.tail.len();
            let counts = match slot.kind() {
                SlotKind::Media => &mut media,
                SlotKind::Playlist => &mut playlist,
            };
            counts.slots += 1;
            counts.joins += slot.join.len();
        }
        runs.push(source.slice(prev..));
        fixed_len += runs.iter().map(Bytes::len).sum::<usize>();
        Self {
            source,
            runs,
            slots,
            arena,
            facts,
            fixed_len,
            media,
            playlist,
        }
    }

    /// Multivariant or media playlist.
    pub fn kind(&self) -> PlaylistKind {
        self.facts.kind
    }

    /// Whether the origin playlist already uses Content Steering
    /// (`EXT-X-CONTENT-STEERING`, or a variant with `PATHWAY-ID`): the router
    /// then leaves its pathways alone.
    pub fn is_steered(&self) -> bool {
        self.facts.steered
    }

    /// Whether the playlist names other playlists (variants, renditions,
    /// rendition reports): its renderings then carry the viewer's session.
    pub fn names_playlists(&self) -> bool {
        self.playlist.slots > 0
    }

    /// Whether the playlist has `EXT-X-ENDLIST` (VOD, or an ended event).
    pub fn is_ended(&self) -> bool {
        self.facts.ended
    }

    /// `EXT-X-TARGETDURATION`, seconds.
    pub fn target_duration(&self) -> Option<u64> {
        self.facts.target_duration
    }

    /// `PART-TARGET` of `EXT-X-PART-INF`, seconds (LL-HLS).
    pub fn part_target(&self) -> Option<f64> {
        self.facts.part_target
    }

    /// The variants of a multivariant playlist, in order.
    pub fn variants(&self) -> &[Variant] {
        &self.facts.variants
    }

    /// The URI slots, in input order.
    pub fn slots(&self) -> impl ExactSizeIterator<Item = &Slot> + '_ {
        self.slots.iter()
    }

    /// The object key a slot names, in URI form (no leading `/`; escapes as
    /// written, bytes a URI cannot hold percent-encoded): what is written
    /// after the edge base. [`decode_key`] gives the object key.
    pub fn slot_key(&self, slot: &Slot) -> &str {
        self.arena.get(slot.key.clone()).unwrap_or("")
    }

    /// The object keys of every media-kind slot, in URI form (see
    /// [`Template::slot_key`]), in input order (repeats included).
    pub fn media_keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.slots
            .iter()
            .filter(|s| s.kind() == SlotKind::Media)
            .map(|s| self.slot_key(s))
    }

    /// The playlist as fetched.
    pub fn source(&self) -> &Bytes {
        &self.source
    }

    /// About how many bytes the template keeps alive (the fetched body, the
    /// runs, the slots and their keys), for a cache weigher.
    pub fn memory_size(&self) -> usize {
        let variants: usize = self
            .facts
            .variants
            .iter()
            .map(|v| size_of::<Variant>() + v.uri.capacity() + v.key.as_ref().map_or(0, String::capacity))
            .sum();
        size_of::<Self>()
            + self.source.len()
            + self.runs.capacity() * size_of::<Bytes>()
            + self.slots.capacity() * size_of::<Slot>()
            + self.arena.capacity()
            + variants
    }

    /// The exact length [`render`](Self::render) appends for `ctx`.
    pub fn rendered_len_hint(&self, ctx: &RenderContext<'_>) -> usize {
        let media_query = ctx.media_query().len();
        let playlist_query = ctx.playlist_query.len();
        let mut len = self.fixed_len + self.media.slots * ctx.edge_base().len();
        if media_query > 0 {
            len += self.media.slots * media_query + self.media.joins;
        }
        if playlist_query > 0 {
            len += self.playlist.slots * playlist_query + self.playlist.joins;
        }
        len
    }

    /// Appends the rewritten playlist to `out`. Allocates nothing but the
    /// growth of `out` (reserved once, exactly).
    pub fn render(&self, ctx: &RenderContext<'_>, out: &mut Vec<u8>) {
        out.reserve(self.rendered_len_hint(ctx));
        let edge_base = ctx.edge_base();
        let media_query = ctx.media_query();
        let playlist_query = ctx.playlist_query.as_bytes();
        let arena = self.arena.as_bytes();
        for (run, slot) in self.runs.iter().zip(&self.slots) {
            out.extend_from_slice(run);
            self.write_slot(slot, arena, edge_base, media_query, playlist_query, out);
        }
        if let Some(last) = self.runs.last() {
            out.extend_from_slice(last);
        }
    }

    /// Appends what `slot` renders to for `ctx` (for tests and tracing).
    pub fn render_slot(&self, slot: &Slot, ctx: &RenderContext<'_>, out: &mut Vec<u8>) {
        let arena = self.arena.as_bytes();
        let playlist_query = ctx.playlist_query.as_bytes();
        self.write_slot(
            slot,
            arena,
            ctx.edge_base(),
            ctx.media_query(),
            playlist_query,
            out,
        );
    }

    #[inline]
    fn write_slot(
        &self,
        slot: &Slot,
        arena: &[u8],
        edge_base: &[u8],
        media_query: &[u8],
        playlist_query: &[u8],
        out: &mut Vec<u8>,
    ) {
        let query = match slot.kind() {
            SlotKind::Media => {
                out.extend_from_slice(edge_base);
                media_query
            }
            SlotKind::Playlist => playlist_query,
        };
        out.extend_from_slice(arena.get(slot.head.clone()).unwrap_or_default());
        if !query.is_empty() {
            slot.join.push(out);
            out.extend_from_slice(query);
        }
        out.extend_from_slice(arena.get(slot.tail.clone()).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASES: &[&str] = &["http://origin.test:8000/"];

    fn template(playlist: &str, key: &str) -> Template {
        let bases: Vec<String> = BASES.iter().map(|b| (*b).to_owned()).collect();
        let options = ScanOptions {
            playlist_key: key,
            origin_bases: &bases,
        };
        match scan(Bytes::copy_from_slice(playlist.as_bytes()), &options) {
            Ok(t) => t,
            Err(e) => panic!("scan failed: {e}"),
        }
    }

    fn render(t: &Template, ctx: &RenderContext<'_>) -> String {
        let mut out = Vec::new();
        t.render(ctx, &mut out);
        assert_eq!(out.len(), t.rendered_len_hint(ctx));
        String::from_utf8(out).unwrap_or_default()
    }

    const CTX: RenderContext<'static> = RenderContext {
        edge_base: "http://e1:9001",
        media_query: Some("tok=1"),
        playlist_query: "s=S",
    };

    #[test]
    fn scan_bounded_counts_uris_not_bytes() {
        let bases: Vec<String> = Vec::new();
        let options = ScanOptions {
            playlist_key: "live/x/index.m3u8",
            origin_bases: &bases,
        };
        let dense = |n: usize| {
            let mut body = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"i.mp4\"\n");
            for _ in 1..n {
                body.push_str("s\n");
            }
            Bytes::from(body)
        };
        // Three URIs (the map and two segments) pass a limit of three.
        let t = scan_bounded(dense(3), &options, 3).expect("within the limit");
        assert_eq!(t.slots().len(), 3);
        assert_eq!(
            scan_bounded(dense(4), &options, 3).err(),
            Some(RewriteError::TooManyUris { limit: 3 })
        );
        // 100 000 two-byte URI lines: refused, however small the body.
        let err = scan_bounded(dense(100_000), &options, 1000).err();
        assert_eq!(err, Some(RewriteError::TooManyUris { limit: 1000 }));
        assert!(scan(dense(100_000), &options).is_ok(), "scan itself has no limit");
    }

    #[test]
    fn multivariant() {
        let t = template(
            "#EXTM3U\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en, US\",URI=\"audio/en.m3u8?lang=en\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=700000,CODECS=\"avc1.4d401f,mp4a.40.2\",AUDIO=\"a\"\n\
             240p/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2000000\r\n\
             http://origin.test:8000/live/x/720p/index.m3u8\r\n\
             #EXT-X-SESSION-DATA:DATA-ID=\"com.example\",URI=\"meta.json\"\n\
             #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"http://cdn.other/iframe.m3u8\"\n",
            "live/x/master.m3u8",
        );
        assert_eq!(t.kind(), PlaylistKind::Multivariant);
        assert_eq!(
            render(&t, &CTX),
            "#EXTM3U\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en, US\",URI=\"audio/en.m3u8?lang=en&s=S\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=700000,CODECS=\"avc1.4d401f,mp4a.40.2\",AUDIO=\"a\"\n\
             240p/index.m3u8?s=S\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2000000\r\n\
             /live/x/720p/index.m3u8?s=S\r\n\
             #EXT-X-SESSION-DATA:DATA-ID=\"com.example\",URI=\"http://e1:9001/live/x/meta.json?tok=1\"\n\
             #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"http://cdn.other/iframe.m3u8\"\n"
        );
        assert_eq!(
            t.variants(),
            &[
                Variant {
                    uri: "240p/index.m3u8".into(),
                    key: Some("live/x/240p/index.m3u8".into()),
                    bandwidth: Some(800_000),
                    average_bandwidth: Some(700_000),
                },
                Variant {
                    uri: "http://origin.test:8000/live/x/720p/index.m3u8".into(),
                    key: Some("live/x/720p/index.m3u8".into()),
                    bandwidth: Some(2_000_000),
                    average_bandwidth: None,
                },
            ]
        );
    }

    #[test]
    fn media() {
        let t = template(
            "\u{feff}#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PART-INF:PART-TARGET=1.002\n\
             #EXT-X-KEY:METHOD=NONE,URI=\"none.key\"\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"../keys/k1.key?v=2\",IV=0x01\n\
             #EXT-X-MAP:URI=\"init.mp4\"\n\
             #EXTINF:4.000,\n  seg1.m4s?x=1#t=2  \n\
             #EXT-X-PART:DURATION=1.0,URI=\"seg2.0.m4s\"\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg2.1.m4s\"\n\
             #EXT-X-RENDITION-REPORT:URI=\"../720p/index.m3u8\",LAST-MSN=2\n\
             #EXT-X-DATERANGE:ID=\"a\",X-ASSET-URI=\"ad.m3u8\"\n\
             #EXT-X-UNKNOWN:URI=\"x.ts\"\n\
             # URI=\"comment\"\n\
             #EXT-X-ENDLIST",
            "live/x/240p/index.m3u8",
        );
        assert_eq!(t.kind(), PlaylistKind::Media);
        assert!(t.is_ended());
        assert_eq!(t.target_duration(), Some(4));
        assert_eq!(t.part_target(), Some(1.002));
        assert_eq!(
            render(&t, &CTX),
            "\u{feff}#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PART-INF:PART-TARGET=1.002\n\
             #EXT-X-KEY:METHOD=NONE,URI=\"none.key\"\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"http://e1:9001/live/x/keys/k1.key?v=2&tok=1\",IV=0x01\n\
             #EXT-X-MAP:URI=\"http://e1:9001/live/x/240p/init.mp4?tok=1\"\n\
             #EXTINF:4.000,\n  http://e1:9001/live/x/240p/seg1.m4s?x=1&tok=1#t=2  \n\
             #EXT-X-PART:DURATION=1.0,URI=\"http://e1:9001/live/x/240p/seg2.0.m4s?tok=1\"\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"http://e1:9001/live/x/240p/seg2.1.m4s?tok=1\"\n\
             #EXT-X-RENDITION-REPORT:URI=\"../720p/index.m3u8?s=S\",LAST-MSN=2\n\
             #EXT-X-DATERANGE:ID=\"a\",X-ASSET-URI=\"ad.m3u8\"\n\
             #EXT-X-UNKNOWN:URI=\"x.ts\"\n\
             # URI=\"comment\"\n\
             #EXT-X-ENDLIST"
        );
        let keys: Vec<&str> = t.media_keys().collect();
        assert_eq!(
            keys,
            [
                "live/x/keys/k1.key",
                "live/x/240p/init.mp4",
                "live/x/240p/seg1.m4s",
                "live/x/240p/seg2.0.m4s",
                "live/x/240p/seg2.1.m4s"
            ]
        );
    }

    #[test]
    fn empty_queries_append_nothing() {
        let t = template("#EXTM3U\n#EXTINF:1,\na.ts?\n#EXTINF:1,\nb.ts?x&\n", "v/i.m3u8");
        let ctx = RenderContext {
            edge_base: "http://e/",
            media_query: None,
            playlist_query: "",
        };
        assert_eq!(
            render(&t, &ctx),
            "#EXTM3U\n#EXTINF:1,\nhttp://e/v/a.ts?\n#EXTINF:1,\nhttp://e/v/b.ts?x&\n"
        );
        assert_eq!(
            render(&t, &CTX),
            "#EXTM3U\n#EXTINF:1,\nhttp://e1:9001/v/a.ts?tok=1\n#EXTINF:1,\nhttp://e1:9001/v/b.ts?x&tok=1\n"
        );
    }

    #[test]
    fn not_playlists() {
        let options = ScanOptions {
            playlist_key: "a.m3u8",
            origin_bases: &[],
        };
        let scan = |b: &'static [u8]| super::scan(Bytes::from_static(b), &options).map(|_| ());
        assert_eq!(scan(b""), Err(RewriteError::Empty));
        assert_eq!(scan(b"\xEF\xBB\xBF"), Err(RewriteError::Empty));
        assert_eq!(scan(b"<html></html>"), Err(RewriteError::NoHeader));
        assert_eq!(
            scan(b"#EXTM3U\n\x00\x01"),
            Err(RewriteError::Binary { offset: 8, byte: 0 })
        );
        assert_eq!(scan(b"#EXTM3U"), Ok(()));
    }

    #[test]
    fn memory_size_counts_the_body_and_the_slots() {
        let t = template("#EXTM3U\n#EXTINF:1,\na.ts\n#EXTINF:1,\nb.ts\n", "v/i.m3u8");
        assert!(t.memory_size() > t.source().len() + 2 * size_of::<Slot>());
    }

    #[test]
    fn template_is_shareable() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Template>();
    }
}
