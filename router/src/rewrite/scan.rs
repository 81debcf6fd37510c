//! The one pass over a playlist that finds its URI slots.
//!
//! Lines end with LF, CRLF or a lone CR (RFC 8216 knows the first two;
//! players also break lines on the third); a line's content excludes the
//! line ending.
//! Leading and trailing spaces or tabs never belong to a URI. A line is:
//!
//! - blank: skipped;
//! - a tag: starts (in its first column) with `#EXT`; its name runs to the
//!   first `:`, its attribute list from there to the end of the line;
//! - a comment: any other line starting with `#`, or a `#` line indented by
//!   whitespace (no player reads that as a tag): skipped;
//! - a URI line: anything else.
//!
//! Tags that belong only to multivariant playlists decide the kind; a
//! playlist without any is a media playlist. Slots are collected in input
//! order, and at the end only the slots of tags that belong to the
//! playlist's kind are kept, so a stray segment line in a multivariant
//! playlist (or a media tag in it) is copied as it is.

use std::ops::Range;

use bytes::Bytes;

use super::attrs::{self, Attr};
use super::uri::{self, Origins};
use super::{Join, PlaylistKind, RewriteError, ScanOptions, Slot, SlotKind, Template, UriTag, Variant};

const BOM: &[u8] = b"\xEF\xBB\xBF";
const HEADER: &[u8] = b"#EXTM3U";

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Rejects bytes that never occur in a text playlist: C0 controls other
/// than tab, LF, vertical tab, form feed and CR.
fn check_text(src: &[u8]) -> Result<(), RewriteError> {
    match src.iter().position(|&b| b < 0x09 || (0x0E..0x20).contains(&b)) {
        Some(offset) => Err(RewriteError::Binary {
            offset,
            byte: src[offset],
        }),
        None => Ok(()),
    }
}

/// Where the line starting at `pos` ends: (end of its content, start of the next line).
/// A line ends with LF, CRLF, or a lone CR (which players also break lines on).
fn line_end(src: &[u8], pos: usize) -> (usize, usize) {
    match src[pos..].iter().position(|&b| b == b'\n' || b == b'\r') {
        None => (src.len(), src.len()),
        Some(i) => {
            let end = pos + i;
            let crlf = src[end] == b'\r' && src.get(end + 1) == Some(&b'\n');
            (end, end + if crlf { 2 } else { 1 })
        }
    }
}

/// Where the first line (the `#EXTM3U` header) ends, after its line ending.
fn header_end(src: &[u8], start: usize) -> Result<usize, RewriteError> {
    let body = &src[start..];
    if body.is_empty() {
        return Err(RewriteError::Empty);
    }
    let after = body.strip_prefix(HEADER).ok_or(RewriteError::NoHeader)?;
    match after.first() {
        None | Some(b' ' | b'\t' | b'\r' | b'\n') => Ok(line_end(src, start).1),
        Some(_) => Err(RewriteError::NoHeader),
    }
}

/// Slots, variants and facts gathered by the pass.
struct Scanner<'a> {
    src: &'a [u8],
    /// The playlist's object key in URI form (percent-encoded).
    playlist_path: String,
    origins: Origins,
    arena: String,
    slots: Vec<Slot>,
    attrs: Vec<Attr>,
    variants: Vec<Variant>,
    /// `BANDWIDTH` and `AVERAGE-BANDWIDTH` of an `EXT-X-STREAM-INF` waiting for its URI line.
    pending_variant: Option<(Option<u64>, Option<u64>)>,
    multivariant: bool,
    steered: bool,
    ended: bool,
    target_duration: Option<u64>,
    part_target: Option<f64>,
}

pub(super) fn scan(
    playlist: Bytes,
    options: &ScanOptions<'_>,
    max_uris: usize,
) -> Result<Template, RewriteError> {
    let body = playlist.clone();
    let src: &[u8] = &body;
    let start = if src.starts_with(BOM) { BOM.len() } else { 0 };
    let mut pos = header_end(src, start)?;
    check_text(src)?;
    let mut scanner = Scanner {
        src,
        playlist_path: uri::key_to_uri_path(options.playlist_key),
        origins: Origins::new(options.origin_bases),
        arena: String::new(),
        slots: Vec::new(),
        attrs: Vec::new(),
        variants: Vec::new(),
        pending_variant: None,
        multivariant: false,
        steered: false,
        ended: false,
        target_duration: None,
        part_target: None,
    };
    while pos < src.len() {
        let (content_end, next) = line_end(src, pos);
        scanner.line(pos, content_end);
        if scanner.slots.len() > max_uris {
            return Err(RewriteError::TooManyUris { limit: max_uris });
        }
        pos = next;
    }
    Ok(scanner.finish(playlist))
}

impl Scanner<'_> {
    fn line(&mut self, start: usize, end: usize) {
        let line = &self.src[start..end];
        let Some(lead) = line.iter().position(|&b| !is_space(b)) else {
            return;
        };
        let trail = line
            .iter()
            .rposition(|&b| !is_space(b))
            .map_or(line.len(), |i| i + 1);
        let text = &line[lead..trail];
        if text[0] != b'#' {
            self.uri_line(start + lead..start + trail);
            return;
        }
        if lead != 0 || !text.starts_with(b"#EXT") {
            return;
        }
        let (name, list) = match text.iter().position(|&b| b == b':') {
            Some(colon) => (&text[1..colon], start + colon + 1..start + trail),
            None => (&text[1..], start + trail..start + trail),
        };
        self.tag(name, list);
    }

    fn tag(&mut self, name: &[u8], list: Range<usize>) {
        match name {
            b"EXT-X-STREAM-INF" => {
                self.multivariant = true;
                let src = self.src;
                let list = &src[list];
                self.pending_variant = Some(match attrs::parse(list, &mut self.attrs) {
                    Ok(()) => {
                        self.steered |= attrs::find(list, &self.attrs, b"PATHWAY-ID").is_some();
                        (
                            attr_u64(list, &self.attrs, b"BANDWIDTH"),
                            attr_u64(list, &self.attrs, b"AVERAGE-BANDWIDTH"),
                        )
                    }
                    Err(_) => (None, None),
                });
            }
            b"EXT-X-MEDIA" => self.uri_attr(UriTag::Media, list),
            b"EXT-X-I-FRAME-STREAM-INF" => self.uri_attr(UriTag::IFrameStreamInf, list),
            b"EXT-X-IMAGE-STREAM-INF" => self.uri_attr(UriTag::ImageStreamInf, list),
            b"EXT-X-SESSION-DATA" => self.uri_attr(UriTag::SessionData, list),
            b"EXT-X-SESSION-KEY" => self.uri_attr(UriTag::SessionKey, list),
            b"EXT-X-CONTENT-STEERING" => {
                self.steered = true;
                self.uri_attr(UriTag::ContentSteering, list);
            }
            b"EXT-X-KEY" => self.uri_attr(UriTag::Key, list),
            b"EXT-X-MAP" => self.uri_attr(UriTag::Map, list),
            b"EXT-X-PART" => self.uri_attr(UriTag::Part, list),
            b"EXT-X-PRELOAD-HINT" => self.uri_attr(UriTag::PreloadHint, list),
            b"EXT-X-RENDITION-REPORT" => self.uri_attr(UriTag::RenditionReport, list),
            b"EXT-X-ENDLIST" => self.ended = true,
            b"EXT-X-TARGETDURATION" => self.target_duration = parse_duration(&self.src[list]),
            b"EXT-X-PART-INF" => {
                let src = self.src;
                let list = &src[list];
                if attrs::parse(list, &mut self.attrs).is_ok() {
                    self.part_target = attrs::find(list, &self.attrs, b"PART-TARGET")
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|v| v.parse::<f64>().ok())
                        .filter(|v| v.is_finite() && *v > 0.0);
                }
            }
            _ => {}
        }
    }

    /// The `URI` (or `SERVER-URI`) attributes of a URI-bearing tag.
    fn uri_attr(&mut self, tag: UriTag, list: Range<usize>) {
        if tag.scope() == PlaylistKind::Multivariant {
            self.multivariant = true;
        }
        let src = self.src;
        let bytes = &src[list.clone()];
        if attrs::parse(bytes, &mut self.attrs).is_err() {
            return;
        }
        if matches!(tag, UriTag::Key | UriTag::SessionKey)
            && attrs::find(bytes, &self.attrs, b"METHOD") == Some(b"NONE")
        {
            return;
        }
        let attr_name = tag.attribute().unwrap_or("URI").as_bytes();
        let mut i = 0;
        while i < self.attrs.len() {
            let a = &self.attrs[i];
            if a.quoted && &bytes[a.name.clone()] == attr_name {
                let range = list.start + a.value.start..list.start + a.value.end;
                self.add_slot(tag, range);
            }
            i += 1;
        }
    }

    fn uri_line(&mut self, range: Range<usize>) {
        match self.pending_variant.take() {
            Some((bandwidth, average_bandwidth)) => {
                let key = self.add_slot(UriTag::StreamInf, range.clone());
                self.variants.push(Variant {
                    uri: String::from_utf8_lossy(&self.src[range]).into_owned(),
                    key,
                    bandwidth,
                    average_bandwidth,
                });
            }
            None => {
                self.add_slot(UriTag::Segment, range);
            }
        }
    }

    /// Makes a slot of the URI at `range` if it is the origin's; returns its key.
    fn add_slot(&mut self, tag: UriTag, range: Range<usize>) -> Option<String> {
        let src = self.src;
        let own = uri::resolve(
            &src[range.clone()],
            &self.playlist_path,
            uri::dir_of(&self.playlist_path),
            &self.origins,
            &mut self.arena,
        )
        .ok()?;
        let key = own.slash_key.start + 1..own.slash_key.end;
        // Everything written is in URI form: bytes a URI cannot hold (a
        // stored name's space or `"`) are percent-encoded, so a quoted
        // attribute or a URI line always stays valid.
        let head = match tag.kind() {
            SlotKind::Playlist if !own.absolute => {
                let start = self.arena.len();
                uri::push_uri_text(&mut self.arena, own.text);
                start..self.arena.len()
            }
            // Media kind, and playlist kind written as an origin URL: `/` + key + query.
            _ => {
                if let Some(query) = own.query {
                    self.arena.push('?');
                    uri::push_uri_text(&mut self.arena, query);
                }
                own.slash_key.start..self.arena.len()
            }
        };
        let join = match own.query {
            None => Join::Question,
            Some(q) if q.is_empty() || q.ends_with('&') => Join::Nothing,
            Some(_) => Join::Ampersand,
        };
        let tail_start = self.arena.len();
        uri::push_uri_text(&mut self.arena, own.fragment);
        let tail = tail_start..self.arena.len();
        let owned_key = tag
            .is_variant()
            .then(|| uri::decode_key(&self.arena[key.clone()]));
        self.slots.push(Slot {
            tag,
            range,
            key,
            head,
            tail,
            join,
        });
        owned_key
    }

    fn finish(self, source: Bytes) -> Template {
        let kind = if self.multivariant {
            PlaylistKind::Multivariant
        } else {
            PlaylistKind::Media
        };
        let mut slots = self.slots;
        slots.retain(|s| s.tag.scope() == kind);
        Template::assemble(
            source,
            slots,
            self.arena,
            super::Facts {
                kind,
                steered: self.steered,
                ended: self.ended,
                target_duration: self.target_duration,
                part_target: self.part_target,
                variants: self.variants,
            },
        )
    }
}

fn attr_u64(list: &[u8], attrs: &[Attr], name: &[u8]) -> Option<u64> {
    attrs::find(list, attrs, name)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
}

/// `EXT-X-TARGETDURATION` is a decimal integer; a decimal float is rounded up.
fn parse_duration(value: &[u8]) -> Option<u64> {
    let value = std::str::from_utf8(value).ok()?.trim();
    value.parse::<u64>().ok().or_else(|| {
        let secs = value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e12)?;
        Some(secs.ceil() as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_required() {
        assert_eq!(header_end(b"", 0), Err(RewriteError::Empty));
        assert_eq!(header_end(b"#EXTM3", 0), Err(RewriteError::NoHeader));
        assert_eq!(header_end(b"#EXTM3UX\n", 0), Err(RewriteError::NoHeader));
        assert_eq!(header_end(b"<html>", 0), Err(RewriteError::NoHeader));
        assert_eq!(header_end(b"#EXTM3U", 0), Ok(7));
        assert_eq!(header_end(b"#EXTM3U\r\n#", 0), Ok(9));
        assert_eq!(header_end(b"#EXTM3U x-tvg-url=\"a\"\nx", 0), Ok(22));
        assert_eq!(header_end(b"\xEF\xBB\xBF#EXTM3U\n", 3), Ok(11));
        assert_eq!(header_end(b"#EXTM3U\r#EXTINF", 0), Ok(8));
    }

    #[test]
    fn line_endings() {
        assert_eq!(line_end(b"ab\ncd", 0), (2, 3));
        assert_eq!(line_end(b"ab\r\ncd", 0), (2, 4));
        assert_eq!(line_end(b"ab\rcd", 0), (2, 3));
        assert_eq!(line_end(b"ab\r", 0), (2, 3));
        assert_eq!(line_end(b"ab", 0), (2, 2));
        assert_eq!(line_end(b"ab\n", 3), (3, 3));
    }

    #[test]
    fn control_bytes_are_binary() {
        assert_eq!(check_text(b"#EXTM3U\n\t\r\n\x0b\x0c"), Ok(()));
        assert_eq!(
            check_text(b"#EXTM3U\n\0"),
            Err(RewriteError::Binary { offset: 8, byte: 0 })
        );
        assert_eq!(
            check_text(b"#EXTM3U\x1b"),
            Err(RewriteError::Binary {
                offset: 7,
                byte: 0x1b
            })
        );
    }

    #[test]
    fn target_durations() {
        assert_eq!(parse_duration(b"6"), Some(6));
        assert_eq!(parse_duration(b" 10 "), Some(10));
        assert_eq!(parse_duration(b"5.005"), Some(6));
        assert_eq!(parse_duration(b"-1"), None);
        assert_eq!(parse_duration(b"NaN"), None);
        assert_eq!(parse_duration(b"inf"), None);
    }
}
