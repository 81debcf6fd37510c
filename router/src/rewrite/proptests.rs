//! Property tests: generated playlists whose expected rewriting is known by
//! construction, and garbage that must never panic.
//!
//! The generator assembles playlists from elements (segments, keys, maps,
//! parts, hints, reports, variants, renditions, session data, steering,
//! date ranges with `X-` URIs, unknown tags, comments, blank lines), with
//! URIs of every shape (relative, `..`, root-relative, origin URLs, foreign
//! URLs, `data:`/`skd:`, `{$var}`, queries, fragments), shuffled attribute
//! order, quoted values holding commas and `URI=`, LF or CRLF per line,
//! stray whitespace, an optional BOM and an optional missing final newline.
//! Each element knows which of its URIs must become slots and how they
//! render, so the whole expected output is known.

use std::ops::Range;

use bytes::Bytes;
use proptest::prelude::*;

use super::{PlaylistKind, RenderContext, ScanOptions, SlotKind, Template, UriTag, scan};

const PLAYLIST_KEY: &str = "live/s/v/index.m3u8";
const DIR: [&str; 3] = ["live", "s", "v"];
const ORIGIN: &str = "http://origin.test/";
const EDGE: &str = "http://edge.test:9001";
const MEDIA_QUERY: &str = "tok=m";
const PLAYLIST_QUERY: &str = "s=p";

fn ctx() -> RenderContext<'static> {
    RenderContext {
        edge_base: EDGE,
        media_query: Some(MEDIA_QUERY),
        playlist_query: PLAYLIST_QUERY,
    }
}

fn options(bases: &[String]) -> ScanOptions<'_> {
    ScanOptions {
        playlist_key: PLAYLIST_KEY,
        origin_bases: bases,
    }
}

/// A generated URI and what must become of it.
#[derive(Debug, Clone)]
struct Uri {
    text: String,
    /// `Some((key, absolute form))` when it is the origin's.
    own: Option<(String, bool)>,
    query: Option<String>,
    fragment: String,
}

impl Uri {
    fn rendered(&self, kind: SlotKind) -> Option<String> {
        let (key, absolute) = self.own.as_ref()?;
        let join = match self.query.as_deref() {
            None => "?",
            Some(q) if q.is_empty() || q.ends_with('&') => "",
            Some(_) => "&",
        };
        let with_query = self.query.as_ref().map(|q| format!("?{q}")).unwrap_or_default();
        let fragment = &self.fragment;
        Some(match kind {
            SlotKind::Media => format!("{EDGE}/{key}{with_query}{join}{MEDIA_QUERY}{fragment}"),
            SlotKind::Playlist if *absolute => format!("/{key}{with_query}{join}{PLAYLIST_QUERY}{fragment}"),
            SlotKind::Playlist => {
                let before = self.text.split('#').next().unwrap_or("");
                format!("{before}{join}{PLAYLIST_QUERY}{fragment}")
            }
        })
    }
}

fn name() -> impl Strategy<Value = String> {
    (
        "[a-z0-9_-]{1,8}",
        prop::sample::select(vec![".ts", ".m4s", ".mp4", ".key", ".m3u8", ".vtt", ""]),
    )
        .prop_map(|(n, ext)| format!("{n}{ext}"))
}

fn query() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::sample::select(vec![
        "",
        "a=1",
        "x=1&y=2",
        "k&",
        "sig=a%2Fb",
    ]))
    .prop_map(|q| q.map(str::to_owned))
}

fn fragment() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["", "", "", "#t=1"]).prop_map(str::to_owned)
}

fn uri() -> impl Strategy<Value = Uri> {
    let relative = (
        0usize..=4,
        prop::collection::vec("[a-z]{1,4}", 0..3),
        name(),
        query(),
        fragment(),
    )
        .prop_map(|(ups, subs, name, query, fragment)| {
            let mut text = "../".repeat(ups);
            for s in &subs {
                text.push_str(s);
                text.push('/');
            }
            text.push_str(&name);
            let own = (ups <= DIR.len()).then(|| {
                let mut parts: Vec<&str> = DIR[..DIR.len() - ups].to_vec();
                parts.extend(subs.iter().map(String::as_str));
                parts.push(&name);
                (parts.join("/"), false)
            });
            let suffix = format!(
                "{}{fragment}",
                query.as_ref().map(|q| format!("?{q}")).unwrap_or_default()
            );
            Uri {
                text: format!("{text}{suffix}"),
                own,
                query,
                fragment,
            }
        });
    let rooted = (
        prop::collection::vec("[a-z]{1,4}", 0..3),
        name(),
        query(),
        any::<bool>(),
    )
        .prop_map(|(dirs, name, query, absolute)| {
            let mut key = dirs.join("/");
            if !key.is_empty() {
                key.push('/');
            }
            key.push_str(&name);
            let q = query.as_ref().map(|q| format!("?{q}")).unwrap_or_default();
            let text = if absolute {
                format!("{ORIGIN}{key}{q}")
            } else {
                format!("/{key}{q}")
            };
            Uri {
                text,
                own: Some((key, absolute)),
                query,
                fragment: String::new(),
            }
        });
    let left_alone = prop::sample::select(vec![
        "https://cdn.other.example/a/b.ts",
        "http://origin.test.evil/x.ts",
        "//elsewhere.example/x.m3u8",
        "data:text/plain;base64,QUJD",
        "skd://key-42",
        "seg-{$n}.ts",
        "{$base}/index.m3u8?t={$tok}",
        "../../../../../escape.ts",
        "https://origin.test/x.ts",
    ])
    .prop_map(|t| Uri {
        text: t.to_owned(),
        own: None,
        query: None,
        fragment: String::new(),
    });
    prop_oneof![4 => relative, 2 => rooted, 1 => left_alone]
}

/// One generated line (or two, for a tag followed by its URI line).
#[derive(Debug, Clone)]
struct Element {
    text: String,
    /// (offset in `text`, the URI, its tag) for URIs that must become slots or be left alone.
    uris: Vec<(usize, Uri, UriTag, bool)>,
}

fn attrs_with_uri(
    tag: &'static str,
    uri: Uri,
    mut others: Vec<String>,
    attribute: &'static str,
) -> impl Strategy<Value = (String, usize, Uri)> {
    others.push(format!("{attribute}=\"\u{0}\""));
    (
        Just(others).prop_shuffle(),
        Just(uri),
        prop::sample::select(vec![",", ", "]),
    )
        .prop_map(move |(list, uri, sep)| {
            let joined = list.join(sep);
            let line = format!("#{tag}:{joined}");
            let at = line.find('\u{0}').unwrap_or(0);
            (line.replacen('\u{0}', &uri.text, 1), at, uri)
        })
}

fn attr_element(tag: UriTag, others: Vec<String>, slot: bool) -> impl Strategy<Value = Element> {
    let attribute = tag.attribute().unwrap_or("URI");
    uri()
        .prop_flat_map(move |u| attrs_with_uri(tag.name(), u, others.clone(), attribute))
        .prop_map(move |(text, at, uri)| Element {
            text,
            uris: vec![(at, uri, tag, slot)],
        })
}

fn uri_line_element(tag_line: &'static str, tag: UriTag) -> impl Strategy<Value = Element> {
    (
        uri(),
        prop::sample::select(vec!["", " ", "\t"]),
        prop::sample::select(vec!["", " ", " \t"]),
        eol(),
    )
        .prop_map(move |(uri, lead, trail, eol)| {
            let head = format!("{tag_line}{eol}{lead}");
            let at = head.len();
            Element {
                text: format!("{head}{}{trail}", uri.text),
                uris: vec![(at, uri, tag, true)],
            }
        })
}

fn eol() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["\n", "\n", "\r\n"])
}

/// Lines with no slot, and URIs that must stay as they are.
fn inert() -> impl Strategy<Value = Element> {
    let fixed = prop::sample::select(vec![
        "",
        "   ",
        "#EXT-X-DISCONTINUITY",
        "#EXT-X-BYTERANGE:1000@0",
        "#EXT-X-PROGRAM-DATE-TIME:2025-01-01T00:00:00.000Z",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        "#EXT-X-VERSION:9",
        "#EXT-X-START:TIME-OFFSET=-3.0",
        "#EXT-X-DEFINE:NAME=\"n\",VALUE=\"1\"",
        "#EXT-X-SKIP:SKIPPED-SEGMENTS=3",
        "#EXT-X-KEY:METHOD=NONE",
    ])
    .prop_map(|t| Element {
        text: t.to_owned(),
        uris: vec![],
    });
    let with_uri = (uri(), 0usize..6).prop_map(|(u, shape)| {
        let text = match shape {
            0 => format!("# comment URI=\"{}\"", u.text),
            1 => format!("#EXT-X-VENDOR-THING:URI=\"{}\",N=1", u.text),
            2 => format!(
                "#EXT-X-DATERANGE:ID=\"d\",X-ASSET-URI=\"{}\",X-URI=\"{}\"",
                u.text, u.text
            ),
            3 => format!("#EXT-X-KEY:METHOD=NONE,URI=\"{}\"", u.text),
            4 => format!("#EXT-X-MAP:X-URI=\"{}\",NAME=\"a, URI=b\"", u.text),
            _ => format!("  #EXT-X-MAP:URI=\"{}\"", u.text),
        };
        Element { text, uris: vec![] }
    });
    prop_oneof![fixed, with_uri]
}

fn media_element() -> impl Strategy<Value = Element> {
    prop_oneof![
        4 => uri_line_element("#EXTINF:4.004,title, URI=\"x\"", UriTag::Segment),
        2 => uri_line_element("#EXTINF:2,", UriTag::Segment),
        1 => (uri(), prop::sample::select(vec!["AES-128", "SAMPLE-AES", "NONE"])).prop_flat_map(|(u, method)| {
            let others = vec![
                format!("METHOD={method}"),
                "IV=0x0123456789abcdef0123456789abcdef".to_owned(),
                "KEYFORMAT=\"identity,v1\"".to_owned(),
            ];
            attrs_with_uri("EXT-X-KEY", u, others, "URI").prop_map(move |(text, at, uri)| Element {
                text,
                uris: vec![(at, uri, UriTag::Key, method != "NONE")],
            })
        }),
        1 => attr_element(UriTag::Map, vec!["BYTERANGE=\"812@0\"".to_owned()], true),
        2 => attr_element(UriTag::Part, vec!["DURATION=0.33334".to_owned(), "INDEPENDENT=YES".to_owned()], true),
        1 => attr_element(UriTag::PreloadHint, vec!["TYPE=PART".to_owned()], true),
        1 => attr_element(UriTag::RenditionReport, vec!["LAST-MSN=10".to_owned(), "LAST-PART=2".to_owned()], true),
        3 => inert(),
    ]
}

fn multivariant_element() -> impl Strategy<Value = Element> {
    prop_oneof![
        4 => uri_line_element(
            "#EXT-X-STREAM-INF:BANDWIDTH=1280000,CODECS=\"avc1.4d401f,mp4a.40.2\",NAME=\"URI=x\"",
            UriTag::StreamInf
        ),
        2 => attr_element(
            UriTag::Media,
            vec!["TYPE=AUDIO".to_owned(), "GROUP-ID=\"aud\"".to_owned(), "NAME=\"English, US\"".to_owned()],
            true
        ),
        1 => attr_element(UriTag::IFrameStreamInf, vec!["BANDWIDTH=90000".to_owned()], true),
        1 => attr_element(UriTag::ImageStreamInf, vec!["BANDWIDTH=9000".to_owned(), "CODECS=\"jpeg\"".to_owned()], true),
        1 => attr_element(UriTag::SessionData, vec!["DATA-ID=\"com.example\"".to_owned()], true),
        1 => attr_element(UriTag::SessionKey, vec!["METHOD=AES-128".to_owned()], true),
        1 => attr_element(UriTag::ContentSteering, vec!["PATHWAY-ID=\"A\"".to_owned()], true),
        3 => inert(),
        1 => Just(Element {
            text: "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC, 1\",INSTREAM-ID=\"CC1\"".to_owned(),
            uris: vec![],
        }),
    ]
}

/// A generated playlist, what the template must find, and what it must render.
#[derive(Debug, Clone)]
struct Generated {
    bytes: Vec<u8>,
    kind: PlaylistKind,
    slots: Vec<(Range<usize>, UriTag)>,
    rendered: Vec<u8>,
}

fn assemble(
    kind: PlaylistKind,
    elements: &[Element],
    bom: bool,
    final_newline: bool,
    eols: &[&str],
) -> Generated {
    let mut bytes = Vec::new();
    if bom {
        bytes.extend_from_slice("\u{feff}".as_bytes());
    }
    bytes.extend_from_slice(b"#EXTM3U");
    let mut expected: Vec<(Range<usize>, UriTag, String)> = Vec::new();
    for (i, element) in elements.iter().enumerate() {
        bytes.extend_from_slice(eols[i % eols.len()].as_bytes());
        let base = bytes.len();
        for (at, uri, tag, slot) in &element.uris {
            if let Some(rendered) = uri.rendered(tag.kind()).filter(|_| *slot) {
                expected.push((base + at..base + at + uri.text.len(), *tag, rendered));
            }
        }
        bytes.extend_from_slice(element.text.as_bytes());
    }
    if final_newline {
        bytes.push(b'\n');
    }
    let mut rendered = Vec::new();
    let mut prev = 0;
    for (range, _, text) in &expected {
        rendered.extend_from_slice(&bytes[prev..range.start]);
        rendered.extend_from_slice(text.as_bytes());
        prev = range.end;
    }
    rendered.extend_from_slice(&bytes[prev..]);
    let slots = expected.into_iter().map(|(range, tag, _)| (range, tag)).collect();
    Generated {
        bytes,
        kind,
        slots,
        rendered,
    }
}

fn playlist() -> impl Strategy<Value = Generated> {
    let media = prop::collection::vec(media_element(), 0..40).prop_map(|e| (PlaylistKind::Media, e));
    let multivariant = (
        multivariant_element(),
        prop::collection::vec(multivariant_element(), 0..20),
    )
        .prop_map(|(first, mut rest)| {
            // A URI-less EXT-X-STREAM-INF first, so the kind never depends on chance.
            rest.insert(0, first);
            rest.insert(
                0,
                Element {
                    text: "#EXT-X-STREAM-INF:BANDWIDTH=1".to_owned(),
                    uris: vec![],
                },
            );
            (PlaylistKind::Multivariant, rest)
        });
    (
        prop_oneof![media, multivariant],
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(eol(), 64),
    )
        .prop_map(|((kind, elements), bom, final_newline, eols)| {
            assemble(kind, &elements, bom, final_newline, &eols)
        })
}

/// Invariants that hold for any input the scanner accepts.
pub(super) fn check_invariants(template: &Template, input: &[u8]) -> Result<(), TestCaseError> {
    let ctx = ctx();
    let mut out = Vec::new();
    template.render(&ctx, &mut out);
    prop_assert_eq!(out.len(), template.rendered_len_hint(&ctx));
    let mut again = Vec::new();
    template.render(&ctx, &mut again);
    prop_assert!(again == out, "rendering is deterministic");

    let mut at = 0;
    let mut prev = 0;
    for slot in template.slots() {
        let range = slot.range();
        prop_assert!(prev <= range.start && range.start < range.end && range.end <= input.len());
        // The slot sits in a URI line or in its tag's own line.
        let line_start = input[..range.start]
            .iter()
            .rposition(|&b| b == b'\n' || b == b'\r')
            .map_or(0, |i| i + 1);
        let line = &input[line_start..];
        match slot.tag().attribute() {
            Some(_) => {
                let prefix = format!("#{}:", slot.tag().name());
                prop_assert!(
                    line.starts_with(prefix.as_bytes()),
                    "slot of {:?} outside its tag",
                    slot.tag()
                );
            }
            None => {
                let before = &input[line_start..range.start];
                prop_assert!(
                    before.iter().all(|&b| b == b' ' || b == b'\t'),
                    "URI line slot not at line start"
                );
                prop_assert!(input[range.start] != b'#');
            }
        }
        let run = &input[prev..range.start];
        prop_assert!(&out[at..at + run.len()] == run, "bytes before a slot changed");
        at += run.len();
        let mut rendered = Vec::new();
        template.render_slot(slot, &ctx, &mut rendered);
        prop_assert!(!rendered.contains(&b'\n') && !rendered.contains(&b'\r'));
        check_valid_uri(&rendered)?;
        prop_assert!(out[at..at + rendered.len()] == rendered[..]);
        at += rendered.len();
        prev = range.end;
    }
    prop_assert!(out[at..] == input[prev..], "bytes after the last slot changed");
    Ok(())
}

/// A rendered slot is a valid URI: no space, `"` or other byte a URI
/// cannot hold, and it parses as a URL (a relative one against the URL the
/// player fetched the playlist at).
fn check_valid_uri(rendered: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(
        rendered.iter().all(|&b| b > b' ' && b < 0x7f && b != b'"'),
        "rendered URI holds a byte a URI cannot: {:?}",
        String::from_utf8_lossy(rendered)
    );
    let text = std::str::from_utf8(rendered).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let base = url::Url::parse(&format!("http://router.test/{PLAYLIST_KEY}"))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(base.join(text).is_ok(), "rendered URI does not parse: {text:?}");
    Ok(())
}

/// With one pathway, the rendering is [`Template::render`]'s once the
/// steering line and the `PATHWAY-ID`s are taken out; a second pathway only
/// appends lines: pathway entries with its id, URI lines with its query.
fn check_pathways(template: &Template) -> Result<(), TestCaseError> {
    let ctx = ctx();
    let one = [crate::rewrite::Pathway {
        id: "p0",
        playlist_query: PLAYLIST_QUERY,
    }];
    let two = [
        one[0],
        crate::rewrite::Pathway {
            id: "p1",
            playlist_query: "s=q1",
        },
    ];
    let render = |pathways: &[crate::rewrite::Pathway<'_>]| {
        let mut out = Vec::new();
        template.render_pathways(
            ctx.edge_base,
            ctx.media_query,
            "/steer/x?s=t",
            None,
            pathways,
            &mut out,
        );
        String::from_utf8_lossy(&out).into_owned()
    };
    let first = render(&one);
    let mut plain = Vec::new();
    template.render(&ctx, &mut plain);
    let plain = String::from_utf8_lossy(&plain).into_owned();
    if !first.contains("#EXT-X-CONTENT-STEERING:SERVER-URI=\"/steer/x") {
        // Lone-CR line endings: the first pathway only, as rendered.
        prop_assert_eq!(first, plain);
        return Ok(());
    }
    let steering = "#EXT-X-CONTENT-STEERING:SERVER-URI=\"/steer/x?s=t\",PATHWAY-ID=\"p0\"";
    let at = first.find(steering).unwrap_or_default();
    let eol_len = first[at + steering.len()..].find('\n').map_or(0, |n| n + 1);
    let mut without = first.clone();
    without.replace_range(at..at + steering.len() + eol_len, "");
    let without = without.replace(",PATHWAY-ID=\"p0\"", "");
    // A one-line playlist gets the line ending it lacked.
    prop_assert!(
        without == plain || without == format!("{plain}\n"),
        "got:\n{}\nwant:\n{}",
        without,
        plain
    );

    let both = render(&two);
    let appended = both
        .strip_prefix(first.as_str())
        .or_else(|| both.strip_prefix(&format!("{first}\n")));
    prop_assert!(appended.is_some(), "{}\n---\n{}", both, first);
    for line in appended.unwrap_or_default().lines() {
        let entry = ["#EXT-X-STREAM-INF:", "#EXT-X-I-FRAME-STREAM-INF:"]
            .iter()
            .any(|t| line.starts_with(t));
        let ok = if entry {
            line.ends_with(",PATHWAY-ID=\"p1\"")
        } else {
            line.starts_with("#EXT-X-MEDIA:") || !line.starts_with('#')
        };
        prop_assert!(ok, "unexpected line {:?} in\n{}", line, both);
    }
    Ok(())
}

fn bases() -> Vec<String> {
    vec![ORIGIN.to_owned()]
}

/// A name as a packager might write a stored object's: spaces, `"`,
/// `%` (escapes and lone), non-ASCII letters, bytes a URI cannot hold.
fn hostile_name() -> impl Strategy<Value = String> {
    "[a-z \"%<>{}|^`\\\\\u{e9}\u{4e2d}\u{b}]{1,8}|%[0-9A-F]{2}[a-z]{0,3}"
        .prop_filter("not a dot segment", |n| !matches!(n.trim(), "" | "." | ".."))
        .prop_filter("not a variable", |n| !n.contains("{$"))
        .prop_filter("no leading or trailing space", |n| n.trim() == n)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_playlists_rewrite_as_constructed(g in playlist()) {
        let bases = bases();
        let template = scan(Bytes::from(g.bytes.clone()), &options(&bases));
        prop_assert!(template.is_ok(), "{:?}", template.err());
        let Ok(template) = template else { return Ok(()) };
        prop_assert_eq!(template.kind(), g.kind);
        let slots: Vec<(Range<usize>, UriTag)> = template.slots().map(|s| (s.range(), s.tag())).collect();
        prop_assert_eq!(&slots, &g.slots);
        let mut out = Vec::new();
        template.render(&ctx(), &mut out);
        prop_assert!(
            out == g.rendered,
            "got:\n{}\nwant:\n{}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&g.rendered)
        );
        check_invariants(&template, &g.bytes)?;
    }

    #[test]
    fn pathways_change_nothing_but_add_their_lines(g in playlist(), garbage in prop::collection::vec(any::<u8>(), 0..256)) {
        let bases = bases();
        for bytes in [g.bytes.clone(), garbage] {
            let Ok(template) = scan(Bytes::from(bytes), &options(&bases)) else { continue };
            check_pathways(&template)?;
        }
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let bases = bases();
        if let Ok(template) = scan(Bytes::from(bytes.clone()), &options(&bases)) {
            check_invariants(&template, &bytes)?;
        }
    }

    #[test]
    fn playlist_like_garbage_never_panics(
        pieces in prop::collection::vec(
            prop::sample::select(vec![
                "#EXT-X-STREAM-INF:", "#EXT-X-KEY:", "#EXT-X-MAP:", "#EXT-X-PART:", "#EXTINF:1,",
                "#EXT-X-MEDIA:", "#EXT-X-CONTENT-STEERING:", "#EXT-X-RENDITION-REPORT:", "#EXT-X-ENDLIST",
                "#EXT-X-TARGETDURATION:", "#EXT-X-PART-INF:PART-TARGET=", "URI=", "SERVER-URI=", "METHOD=NONE",
                "\"", ",", "=", "\n", "\r\n", "\r", " ", "\t", "a.ts", "../", "/", "?", "&", "#", "{$", "}",
                "%2e", ".", "..", "http://origin.test", "//", "data:", "\u{e9}", "\u{feff}", "\u{0b}",
                "1.5", "-1", "99999999999999999999",
            ]),
            0..80,
        )
    ) {
        let mut bytes = b"#EXTM3U\n".to_vec();
        for p in pieces {
            bytes.extend_from_slice(p.as_bytes());
        }
        let bases = bases();
        let template = scan(Bytes::from(bytes.clone()), &options(&bases));
        prop_assert!(template.is_ok());
        if let Ok(template) = template {
            check_invariants(&template, &bytes)?;
        }
    }

    #[test]
    fn mutated_corpus_never_panics(
        file in 0usize..64,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..16),
    ) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/playlists");
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.sort();
        names.retain(|p| p.metadata().map(|m| m.len() < 20_000).unwrap_or(false));
        prop_assume!(!names.is_empty());
        let mut bytes = std::fs::read(&names[file % names.len()]).unwrap_or_default();
        for (index, byte, op) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = index.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => {
                    bytes.remove(i);
                }
            }
        }
        let bases = bases();
        if let Ok(template) = scan(Bytes::from(bytes.clone()), &options(&bases)) {
            check_invariants(&template, &bytes)?;
        }
    }

    /// Stored names with spaces, `"`, `%` and non-ASCII letters, in a
    /// rendition directory of such a name: every slot renders to a valid
    /// URL whose path, percent-decoded, is the object key the packager
    /// meant (escapes as written decoded, every other byte as it is).
    #[test]
    fn hostile_names_render_as_valid_uris(
        dir in hostile_name(),
        names in prop::collection::vec(hostile_name(), 1..5),
    ) {
        let key = format!("live/{dir}/index.m3u8");
        let bases = bases();
        let options = ScanOptions { playlist_key: &key, origin_bases: &bases };
        let mut body = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:2\n");
        for name in &names {
            if !name.contains('"') {
                body.push_str(&format!("#EXT-X-PART:DURATION=1,URI=\"p{name}.m4s\"\n"));
            }
            body.push_str(&format!("#EXTINF:2,\n{name}.ts\n"));
        }
        let template = scan(Bytes::from(body.clone()), &options).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_invariants(&template, body.as_bytes())?;
        let ctx = ctx();
        let mut expected = names.iter().flat_map(|n| {
            let part = (!n.contains('"')).then(|| format!("p{n}.m4s"));
            part.into_iter().chain([format!("{n}.ts")])
        });
        for slot in template.slots() {
            let mut rendered = Vec::new();
            template.render_slot(slot, &ctx, &mut rendered);
            let text = String::from_utf8_lossy(&rendered).into_owned();
            let url = url::Url::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            let path = percent_encoding::percent_decode_str(url.path()).decode_utf8_lossy().into_owned();
            let name = expected.next().unwrap_or_default();
            let name = percent_encoding::percent_decode_str(&name).decode_utf8_lossy().into_owned();
            prop_assert_eq!(path, format!("/live/{dir}/{name}"));
            prop_assert_eq!(super::decode_key(template.slot_key(slot)), format!("live/{dir}/{name}"));
        }
    }
}
