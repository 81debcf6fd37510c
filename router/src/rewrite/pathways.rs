//! Content Steering pathways in a multivariant playlist (RFC 8216bis
//! §4.4.6.6): every variant offered once per pathway, each pathway naming
//! one edge, and an `EXT-X-CONTENT-STEERING` tag that points the player at
//! the router's steering manifest.
//!
//! The first pathway is the origin playlist as [`Template::render`] writes
//! it, with `PATHWAY-ID` appended to each `EXT-X-STREAM-INF` and
//! `EXT-X-I-FRAME-STREAM-INF`, and the steering tag as the second line.
//! Every further pathway appends a copy of the variant entries (the
//! `EXT-X-STREAM-INF` lines with their URI lines, the I-frame lines) and of
//! the renditions (`EXT-X-MEDIA`, except closed captions, which have no URI)
//! in input order, with its own playlist query (the session naming its
//! edge), and its rendition groups renamed `{group}-{pathway id}` so that
//! each pathway has groups of its own, as the draft asks and as hls.js does
//! for clones. Nothing else is repeated: session data, keys, `EXT-X-DEFINE`
//! and unknown tags stay once, where they were.
//!
//! A multivariant playlist is rendered once per viewer session (a media
//! playlist once per reload), so this pass works on the rendered lines
//! rather than on the template's slots.

use super::attrs::{self, Attr};
use super::{RenderContext, Template};

/// One pathway the router offers.
#[derive(Debug, Clone, Copy)]
pub struct Pathway<'a> {
    /// Its `PATHWAY-ID`: the id of the edge its media playlists name.
    pub id: &'a str,
    /// Query pair appended to its playlist URIs, e.g. `s=TOKEN`.
    pub playlist_query: &'a str,
}

/// The lines of a multivariant playlist that belong to a pathway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// `EXT-X-STREAM-INF`: its URI line follows.
    Variant,
    /// `EXT-X-I-FRAME-STREAM-INF`.
    IFrame,
    /// `EXT-X-MEDIA` of a type with URIs (not `CLOSED-CAPTIONS`).
    Rendition,
}

/// Group attributes a variant or I-frame line refers to renditions with.
const GROUP_REFS: &[&[u8]] = &[b"AUDIO", b"VIDEO", b"SUBTITLES"];

impl Template {
    /// Appends the multivariant playlist offering every variant on each of
    /// `pathways` (in that order, the first being where the player starts),
    /// with `#EXT-X-CONTENT-STEERING:SERVER-URI="{server_uri}",PATHWAY-ID="{first}"`
    /// as its second line. `edge_base` and `media_query` render the
    /// media-kind URIs (session data, session keys) as [`Template::render`]
    /// does. With no pathway, renders as [`Template::render`] with no playlist query.
    ///
    /// With `base` (the multivariant playlist's own absolute URL), the
    /// pathways' playlist URIs are written absolute, resolved against it
    /// (one holding a `{$var}` reference stays as it is): Shaka Player
    /// bans a failed location by its host name, and the host of a relative
    /// URI is empty, which it finds in every URL.
    ///
    /// Neither `server_uri` nor a pathway id or query may hold `"`, CR or LF.
    pub fn render_pathways(
        &self,
        edge_base: &str,
        media_query: Option<&str>,
        server_uri: &str,
        base: Option<&url::Url>,
        pathways: &[Pathway<'_>],
        out: &mut Vec<u8>,
    ) {
        let ctx = |playlist_query| RenderContext {
            edge_base,
            media_query,
            playlist_query,
        };
        let Some(first) = pathways.first() else {
            self.render(&ctx(""), out);
            return;
        };
        let mut rendered = Vec::with_capacity(self.rendered_len_hint(&ctx(first.playlist_query)));
        self.render(&ctx(first.playlist_query), &mut rendered);
        // Lines ending in a lone CR (pre-OS X Mac text, which RFC 8216 does
        // not allow but the scanner reads) are not split here: such a
        // playlist is offered on its first pathway only, without steering.
        if has_lone_cr(&rendered) {
            out.extend_from_slice(&rendered);
            return;
        }
        let mut lines = Lines {
            groups: Vec::new(),
            base,
            attrs: Vec::new(),
        };
        lines.groups = rendition_groups(&rendered, &mut lines.attrs);

        out.reserve(rendered.len() * pathways.len() + server_uri.len() + 64);
        let mut variant_uri_pending = false;
        for (n, line) in rendered.split_inclusive(|&b| b == b'\n').enumerate() {
            let (content, eol) = split_eol(line);
            if variant_uri_pending && is_uri_line(content) {
                variant_uri_pending = false;
                lines.uri(out, content);
                out.extend_from_slice(eol);
            } else if let Some(kind) = entry(content, &mut lines.attrs) {
                lines.tag(out, content, kind, first.id, false);
                out.extend_from_slice(eol);
                variant_uri_pending = kind == Entry::Variant;
            } else {
                out.extend_from_slice(line);
            }
            if n == 0 {
                // A one-line playlist has no line ending to copy.
                let eol = if eol.is_empty() {
                    out.push(b'\n');
                    b"\n" as &[u8]
                } else {
                    eol
                };
                out.extend_from_slice(b"#EXT-X-CONTENT-STEERING:SERVER-URI=\"");
                out.extend_from_slice(server_uri.as_bytes());
                out.extend_from_slice(b"\",PATHWAY-ID=\"");
                out.extend_from_slice(first.id.as_bytes());
                out.extend_from_slice(b"\"");
                out.extend_from_slice(eol);
            }
        }

        for pathway in &pathways[1..] {
            if out.last().is_some_and(|&b| b != b'\n') {
                out.push(b'\n');
            }
            rendered.clear();
            self.render(&ctx(pathway.playlist_query), &mut rendered);
            let mut variant_uri_pending = false;
            for line in rendered.split_inclusive(|&b| b == b'\n') {
                let (content, eol) = split_eol(line);
                let eol = if eol.is_empty() { b"\n" as &[u8] } else { eol };
                if variant_uri_pending && is_uri_line(content) {
                    variant_uri_pending = false;
                    lines.uri(out, content);
                    out.extend_from_slice(eol);
                } else if let Some(kind) = entry(content, &mut lines.attrs) {
                    lines.tag(out, content, kind, pathway.id, true);
                    out.extend_from_slice(eol);
                    variant_uri_pending = kind == Entry::Variant;
                }
            }
        }
    }
}

/// What pathway entries are written with.
struct Lines<'a> {
    /// Rendition groups that pathways copy.
    groups: Vec<Vec<u8>>,
    /// The multivariant playlist's URL, to write absolute URIs.
    base: Option<&'a url::Url>,
    attrs: Vec<Attr>,
}

impl Lines<'_> {
    /// Writes the tag line `content` of an entry of `pathway`: with its
    /// `URI` absolute (with a base), its rendition groups suffixed
    /// `-{pathway}` when `rename`, and `,PATHWAY-ID="{pathway}"` appended to
    /// a variant or I-frame line.
    fn tag(&mut self, out: &mut Vec<u8>, content: &[u8], kind: Entry, pathway: &str, rename: bool) {
        let renames: &[&[u8]] = match kind {
            _ if !rename => &[],
            Entry::Rendition => &[b"GROUP-ID"],
            Entry::Variant | Entry::IFrame => GROUP_REFS,
        };
        let colon = content
            .iter()
            .position(|&b| b == b':')
            .map_or(content.len(), |c| c + 1);
        let (tag, list) = content.split_at(colon);
        out.extend_from_slice(tag);
        let mut copied = 0;
        if attrs::parse(list, &mut self.attrs).is_ok() {
            for a in &self.attrs {
                if !a.quoted {
                    continue;
                }
                let name = &list[a.name.clone()];
                let value = &list[a.value.clone()];
                if renames.contains(&name) && self.groups.iter().any(|g| g == value) {
                    out.extend_from_slice(&list[copied..a.value.end]);
                    out.push(b'-');
                    out.extend_from_slice(pathway.as_bytes());
                    copied = a.value.end;
                } else if name == b"URI"
                    && let Some(absolute) = self.absolute(value)
                {
                    out.extend_from_slice(&list[copied..a.value.start]);
                    out.extend_from_slice(absolute.as_bytes());
                    copied = a.value.end;
                }
            }
        }
        out.extend_from_slice(&list[copied..]);
        if kind != Entry::Rendition {
            out.extend_from_slice(b",PATHWAY-ID=\"");
            out.extend_from_slice(pathway.as_bytes());
            out.push(b'"');
        }
    }

    /// Writes a variant's URI line, absolute with a base.
    fn uri(&self, out: &mut Vec<u8>, content: &[u8]) {
        let start = content.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(0);
        let end = content
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(content.len(), |i| i + 1);
        match self.absolute(&content[start..end]) {
            Some(absolute) => {
                out.extend_from_slice(&content[..start]);
                out.extend_from_slice(absolute.as_bytes());
                out.extend_from_slice(&content[end..]);
            }
            None => out.extend_from_slice(content),
        }
    }

    /// `uri` resolved against the base, unless it uses a variable.
    fn absolute(&self, uri: &[u8]) -> Option<String> {
        let base = self.base?;
        let uri = std::str::from_utf8(uri).ok()?;
        if uri.contains("{$") {
            return None;
        }
        base.join(uri).ok().map(String::from)
    }
}

/// A line without its line ending (`\n` or `\r\n`), and the ending.
fn split_eol(line: &[u8]) -> (&[u8], &[u8]) {
    let without_lf = line.strip_suffix(b"\n").unwrap_or(line);
    let content = without_lf.strip_suffix(b"\r").unwrap_or(without_lf);
    (content, &line[content.len()..])
}

fn has_lone_cr(text: &[u8]) -> bool {
    text.iter()
        .enumerate()
        .any(|(i, &b)| b == b'\r' && text.get(i + 1) != Some(&b'\n'))
}

/// A URI line: not blank, not a tag or comment.
fn is_uri_line(content: &[u8]) -> bool {
    content
        .iter()
        .find(|&&b| b != b' ' && b != b'\t')
        .is_some_and(|&b| b != b'#')
}

/// Which pathway entry `content` starts, if any (a tag at column 0 with a
/// well-formed attribute list, parsed into `attrs`).
fn entry(content: &[u8], attrs: &mut Vec<Attr>) -> Option<Entry> {
    let (kind, list) = if let Some(list) = content.strip_prefix(b"#EXT-X-STREAM-INF:") {
        (Entry::Variant, list)
    } else if let Some(list) = content.strip_prefix(b"#EXT-X-I-FRAME-STREAM-INF:") {
        (Entry::IFrame, list)
    } else if let Some(list) = content.strip_prefix(b"#EXT-X-MEDIA:") {
        (Entry::Rendition, list)
    } else {
        return None;
    };
    attrs::parse(list, attrs).ok()?;
    if kind == Entry::Rendition && attrs::find(list, attrs, b"TYPE") == Some(b"CLOSED-CAPTIONS") {
        return None;
    }
    Some(kind)
}

/// The `GROUP-ID`s of the renditions that pathways copy.
fn rendition_groups(rendered: &[u8], attrs: &mut Vec<Attr>) -> Vec<Vec<u8>> {
    let mut groups: Vec<Vec<u8>> = Vec::new();
    for line in rendered.split(|&b| b == b'\n') {
        let (content, _) = split_eol(line);
        if entry(content, attrs) == Some(Entry::Rendition) {
            let list = &content[b"#EXT-X-MEDIA:".len()..];
            if let Some(group) = attrs::find(list, attrs, b"GROUP-ID")
                && !groups.iter().any(|g| g == group)
            {
                groups.push(group.to_vec());
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::rewrite::{ScanOptions, scan};

    fn template(body: &str) -> Template {
        let options = ScanOptions {
            playlist_key: "live/a/master.m3u8",
            origin_bases: &[],
        };
        scan(Bytes::copy_from_slice(body.as_bytes()), &options).expect("a playlist")
    }

    fn render(body: &str, pathways: &[Pathway<'_>]) -> String {
        let mut out = Vec::new();
        template(body).render_pathways("http://e1", None, "/steer/live/a?s=T", None, pathways, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    const TWO: &[Pathway<'static>] = &[
        Pathway {
            id: "edge-1",
            playlist_query: "s=A",
        },
        Pathway {
            id: "edge-2",
            playlist_query: "s=B",
        },
    ];

    #[test]
    fn each_pathway_offers_every_variant_with_its_own_session() {
        let master = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n\
            #EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n360p/index.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1400000,RESOLUTION=854x480\n480p/index.m3u8?x=1\n";
        assert_eq!(
            render(master, TWO),
            "#EXTM3U\n\
             #EXT-X-CONTENT-STEERING:SERVER-URI=\"/steer/live/a?s=T\",PATHWAY-ID=\"edge-1\"\n\
             #EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,PATHWAY-ID=\"edge-1\"\n360p/index.m3u8?s=A\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1400000,RESOLUTION=854x480,PATHWAY-ID=\"edge-1\"\n480p/index.m3u8?x=1&s=A\n\
             #EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,PATHWAY-ID=\"edge-2\"\n360p/index.m3u8?s=B\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1400000,RESOLUTION=854x480,PATHWAY-ID=\"edge-2\"\n480p/index.m3u8?x=1&s=B\n"
        );
    }

    #[test]
    fn rendition_groups_are_copied_and_renamed_per_pathway() {
        let master = "#EXTM3U\r\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",URI=\"audio/en.m3u8\"\r\n\
            #EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"cc1\",INSTREAM-ID=\"CC1\"\r\n\
            #EXT-X-SESSION-DATA:DATA-ID=\"com.example\",VALUE=\"x\"\r\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"aud\",CLOSED-CAPTIONS=\"cc\"\r\n\
            # a comment\r\n\
            v/index.m3u8\r\n\
            #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"v/iframes.m3u8\"\r\n";
        assert_eq!(
            render(master, TWO),
            "#EXTM3U\r\n\
             #EXT-X-CONTENT-STEERING:SERVER-URI=\"/steer/live/a?s=T\",PATHWAY-ID=\"edge-1\"\r\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",URI=\"audio/en.m3u8?s=A\"\r\n\
             #EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"cc1\",INSTREAM-ID=\"CC1\"\r\n\
             #EXT-X-SESSION-DATA:DATA-ID=\"com.example\",VALUE=\"x\"\r\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"aud\",CLOSED-CAPTIONS=\"cc\",PATHWAY-ID=\"edge-1\"\r\n\
             # a comment\r\n\
             v/index.m3u8?s=A\r\n\
             #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"v/iframes.m3u8?s=A\",PATHWAY-ID=\"edge-1\"\r\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud-edge-2\",NAME=\"en\",URI=\"audio/en.m3u8?s=B\"\r\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"aud-edge-2\",CLOSED-CAPTIONS=\"cc\",PATHWAY-ID=\"edge-2\"\r\n\
             v/index.m3u8?s=B\r\n\
             #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"v/iframes.m3u8?s=B\",PATHWAY-ID=\"edge-2\"\r\n"
        );
    }

    #[test]
    fn no_final_newline_and_a_bom_are_kept() {
        let master = "\u{feff}#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8";
        assert_eq!(
            render(master, TWO),
            "\u{feff}#EXTM3U\n\
             #EXT-X-CONTENT-STEERING:SERVER-URI=\"/steer/live/a?s=T\",PATHWAY-ID=\"edge-1\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1,PATHWAY-ID=\"edge-1\"\nv.m3u8?s=A\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1,PATHWAY-ID=\"edge-2\"\nv.m3u8?s=B\n"
        );
    }

    #[test]
    fn m3u8_rs_reads_every_pathway() {
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n360p/index.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1400000\n480p/index.m3u8\n";
        let three = [
            TWO[0],
            TWO[1],
            Pathway {
                id: "edge-3",
                playlist_query: "s=C",
            },
        ];
        let out = render(master, &three);
        match m3u8_rs::parse_master_playlist_res(out.as_bytes()) {
            Ok(parsed) => {
                let uris: Vec<&str> = parsed.variants.iter().map(|v| v.uri.as_str()).collect();
                assert_eq!(
                    uris,
                    [
                        "360p/index.m3u8?s=A",
                        "480p/index.m3u8?s=A",
                        "360p/index.m3u8?s=B",
                        "480p/index.m3u8?s=B",
                        "360p/index.m3u8?s=C",
                        "480p/index.m3u8?s=C",
                    ]
                );
            }
            Err(e) => panic!("m3u8-rs refused {out}: {e:?}"),
        }
    }

    #[test]
    fn lone_cr_line_endings_get_the_first_pathway_only() {
        let master = "#EXTM3U\r#EXT-X-STREAM-INF:BANDWIDTH=1\rv.m3u8\r";
        assert_eq!(
            render(master, TWO),
            "#EXTM3U\r#EXT-X-STREAM-INF:BANDWIDTH=1\rv.m3u8?s=A\r"
        );
    }

    #[test]
    fn with_a_base_playlist_uris_are_absolute() {
        let master = "#EXTM3U\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",URI=\"audio/en.m3u8\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"aud\"\n  v/index.m3u8  \n\
            #EXT-X-STREAM-INF:BANDWIDTH=2\n{$host}/w.m3u8\n";
        let base = url::Url::parse("http://router.test:8080/live/a/master.m3u8").expect("url");
        let mut out = Vec::new();
        template(master).render_pathways("http://e1", None, "/steer/live/a?s=T", Some(&base), TWO, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "#EXTM3U\n\
             #EXT-X-CONTENT-STEERING:SERVER-URI=\"/steer/live/a?s=T\",PATHWAY-ID=\"edge-1\"\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",URI=\"http://router.test:8080/live/a/audio/en.m3u8?s=A\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"aud\",PATHWAY-ID=\"edge-1\"\n  http://router.test:8080/live/a/v/index.m3u8?s=A  \n\
             #EXT-X-STREAM-INF:BANDWIDTH=2,PATHWAY-ID=\"edge-1\"\n{$host}/w.m3u8\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud-edge-2\",NAME=\"en\",URI=\"http://router.test:8080/live/a/audio/en.m3u8?s=B\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"aud-edge-2\",PATHWAY-ID=\"edge-2\"\n  http://router.test:8080/live/a/v/index.m3u8?s=B  \n\
             #EXT-X-STREAM-INF:BANDWIDTH=2,PATHWAY-ID=\"edge-2\"\n{$host}/w.m3u8\n"
        );
    }

    #[test]
    fn without_pathways_it_is_the_plain_rendering() {
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n";
        assert_eq!(render(master, &[]), master);
    }
}
