//! The playlist corpus (`tests/playlists/*.m3u8`) through the rewriter.
//!
//! For every file, an oracle written independently of the rewriter (its own
//! attribute splitter, and the `url` crate to resolve URIs) lists every
//! URI-bearing element and says what must become of it: rewritten to the
//! edge, rewritten back to the router with the session, or left alone for a
//! stated reason. The test then checks that
//!
//! - the template's slots are exactly the oracle's rewritten URIs (same
//!   place, same tag, same kind, same rendered text);
//! - the rendered playlist equals the input with those URIs replaced, and
//!   nothing else: the bytes outside the slots are identical;
//! - per file, the number of media, playlist and left-alone URIs matches a
//!   table counted by hand, so the oracle itself is held to account.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use router::rewrite::{PlaylistKind, RenderContext, ScanOptions, SlotKind, Template, UriTag, scan};
use url::Url;

/// Where the corpus playlists are taken to live in the origin.
const PLAYLIST_KEY: &str = "live/demo/hd/index.m3u8";
const ORIGIN_BASES: [&str; 2] = [
    "http://origin.example.com/",
    "https://origin.example.com:8443/hls/",
];
const EDGE: &str = "http://edge-7.example.net:9001";
const MEDIA_QUERY: &str = "hdnts=exp=1700000000~acl=/live/demo/*~hmac=0a1b2c";
const PLAYLIST_QUERY: &str = "s=SESSIONTOKEN";

fn ctx() -> RenderContext<'static> {
    RenderContext {
        edge_base: EDGE,
        media_query: Some(MEDIA_QUERY),
        playlist_query: PLAYLIST_QUERY,
    }
}

/// Per file: URIs rewritten to the edge, rewritten back to the router, and
/// left alone (including URI-bearing tags whose attribute list is malformed).
const EXPECTED_COUNTS: &[(&str, usize, usize, usize)] = &[
    ("absolute_and_relative_media_mix.m3u8", 8, 0, 3),
    ("absolute_origin_and_foreign_multivariant.m3u8", 0, 5, 3),
    ("aes128_key_rotation.m3u8", 9, 0, 1),
    ("apple_advanced_fmp4_multivariant.m3u8", 0, 13, 0),
    ("attribute_edge_cases.m3u8", 8, 0, 4),
    ("bento4_single_file_byterange.m3u8", 6, 0, 0),
    ("content_steering.m3u8", 1, 3, 3),
    ("crlf_line_endings.m3u8", 5, 0, 0),
    ("daterange_interstitials.m3u8", 3, 0, 0),
    ("define_import_media.m3u8", 1, 0, 3),
    ("define_queryparam_multivariant.m3u8", 0, 1, 3),
    ("event_gap_bitrate.m3u8", 6, 0, 0),
    ("ffmpeg_fmp4_vod.m3u8", 6, 0, 0),
    ("ffmpeg_ts_live_window.m3u8", 6, 0, 0),
    ("ffmpeg_ts_vod.m3u8", 6, 0, 0),
    ("hevc_hdr_dolby_vision_multivariant.m3u8", 0, 5, 0),
    ("iframes_only_byterange.m3u8", 4, 0, 0),
    ("image_media_tiles.m3u8", 3, 0, 0),
    ("image_stream_multivariant.m3u8", 0, 4, 0),
    ("llhls_byterange_parts_map_hint.m3u8", 7, 1, 0),
    ("llhls_delta_update_skip.m3u8", 9, 2, 0),
    ("llhls_multivariant.m3u8", 0, 3, 0),
    ("llhls_rfc8216bis_media.m3u8", 23, 2, 0),
    ("method_none_clear_lead.m3u8", 6, 0, 1),
    ("multivariant_existing_queries.m3u8", 0, 4, 0),
    ("no_final_newline.m3u8", 3, 0, 0),
    ("packed_audio_aac.m3u8", 4, 0, 0),
    ("sample_aes_fairplay_ts.m3u8", 5, 0, 1),
    ("scte35_cues_unknown_tags.m3u8", 4, 0, 0),
    ("session_data_and_keys.m3u8", 2, 2, 2),
    ("shaka_packager_cenc_fmp4.m3u8", 5, 0, 3),
    ("ssai_discontinuity_ads.m3u8", 5, 0, 2),
    ("ts_byterange_implicit_offsets.m3u8", 5, 0, 0),
    ("utf8_bom_titles.m3u8", 3, 0, 0),
    ("vod_5000_segments.m3u8", 5000, 0, 0),
    ("webvtt_subtitles_media.m3u8", 4, 0, 0),
];

// ---------------------------------------------------------------------------
// The oracle
// ---------------------------------------------------------------------------

const MULTIVARIANT_TAGS: [&str; 7] = [
    "EXT-X-STREAM-INF",
    "EXT-X-MEDIA",
    "EXT-X-I-FRAME-STREAM-INF",
    "EXT-X-IMAGE-STREAM-INF",
    "EXT-X-SESSION-DATA",
    "EXT-X-SESSION-KEY",
    "EXT-X-CONTENT-STEERING",
];

/// Tags with a URI attribute: (tag, attribute, kind, belongs to multivariant playlists).
const URI_ATTRIBUTES: [(&str, &str, SlotKind, bool); 11] = [
    ("EXT-X-MEDIA", "URI", SlotKind::Playlist, true),
    ("EXT-X-I-FRAME-STREAM-INF", "URI", SlotKind::Playlist, true),
    ("EXT-X-IMAGE-STREAM-INF", "URI", SlotKind::Playlist, true),
    ("EXT-X-SESSION-DATA", "URI", SlotKind::Media, true),
    ("EXT-X-SESSION-KEY", "URI", SlotKind::Media, true),
    ("EXT-X-CONTENT-STEERING", "SERVER-URI", SlotKind::Media, true),
    ("EXT-X-KEY", "URI", SlotKind::Media, false),
    ("EXT-X-MAP", "URI", SlotKind::Media, false),
    ("EXT-X-PART", "URI", SlotKind::Media, false),
    ("EXT-X-PRELOAD-HINT", "URI", SlotKind::Media, false),
    ("EXT-X-RENDITION-REPORT", "URI", SlotKind::Playlist, false),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Rewrite { kind: SlotKind, rendered: String },
    Leave(&'static str),
}

#[derive(Debug, Clone)]
struct Occurrence {
    range: Range<usize>,
    tag: &'static str,
    expect: Expect,
}

#[derive(Debug, Default)]
struct Oracle {
    kind: Option<PlaylistKind>,
    occurrences: Vec<Occurrence>,
    malformed_tags: usize,
}

/// Lines as (offset of content, content without the line ending).
fn lines(input: &[u8]) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in input.iter().enumerate() {
        if b == b'\n' {
            let mut end = i;
            if end > start && input[end - 1] == b'\r' {
                end -= 1;
            }
            out.push((start, &input[start..end]));
            start = i + 1;
        }
    }
    if start < input.len() {
        out.push((start, &input[start..]));
    }
    out
}

/// Splits an attribute list on commas outside double quotes, and returns
/// (name, value, value offset) with the value unquoted, or `None` when the
/// quotes do not pair up or a piece is not `NAME=VALUE`.
fn split_attributes(list: &str) -> Option<Vec<(String, String, usize, bool)>> {
    let mut pieces = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    for (i, c) in list.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                pieces.push((start, &list[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    if in_quotes {
        return None;
    }
    pieces.push((start, &list[start..]));
    let last = pieces.len() - 1;
    let mut out = Vec::new();
    for (n, (offset, piece)) in pieces.into_iter().enumerate() {
        if piece.trim().is_empty() && n == last {
            continue;
        }
        let (name, value) = piece.split_once('=')?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return None;
        }
        let value_offset = offset + name.len() + (piece.len() - piece.trim_start().len()) + 1;
        let lead = value.len() - value.trim_start().len();
        let trimmed = value.trim();
        let quoted = trimmed.len() >= 2 && trimmed.starts_with('"') && trimmed.ends_with('"');
        if !quoted && trimmed.contains('"') {
            return None;
        }
        let value_start = piece.find('=').map_or(value_offset, |eq| offset + eq + 1) + lead;
        if quoted {
            out.push((
                name.to_owned(),
                trimmed[1..trimmed.len() - 1].to_owned(),
                value_start + 1,
                true,
            ));
        } else {
            out.push((name.to_owned(), trimmed.to_owned(), value_start, false));
        }
    }
    Some(out)
}

fn origin_bases() -> Vec<Url> {
    ORIGIN_BASES.iter().filter_map(|b| Url::parse(b).ok()).collect()
}

/// The object key of an absolute URL, if it is under an origin base.
fn origin_key(url: &Url, scheme_given: bool) -> Option<String> {
    origin_bases().iter().find_map(|base| {
        let same = (!scheme_given || base.scheme() == url.scheme())
            && base.host_str() == url.host_str()
            && base.port_or_known_default() == url.port_or_known_default()
            && url.username().is_empty();
        let path = url.path();
        (same && path.starts_with(base.path())).then(|| path[base.path().len()..].to_owned())
    })
}

fn join_for(query: Option<&str>) -> &'static str {
    match query {
        None => "?",
        Some(q) if q.is_empty() || q.ends_with('&') => "",
        Some(_) => "&",
    }
}

/// What must become of `uri`, written in an element of `kind`.
fn expect_for(uri: &str, kind: SlotKind) -> Expect {
    if uri.is_empty() {
        return Expect::Leave("empty");
    }
    if uri.contains("{$") {
        return Expect::Leave("variable reference");
    }
    let guarded_root = "http://origin.example.com/GUARD/";
    let (resolved, absolute) = match Url::parse(uri) {
        Ok(url) => {
            if url.scheme() != "http" && url.scheme() != "https" {
                return Expect::Leave("not http(s)");
            }
            (url, true)
        }
        Err(_) if uri.starts_with("//") => match Url::parse(&format!("http:{uri}")) {
            Ok(url) => (url, true),
            Err(_) => return Expect::Leave("unparseable"),
        },
        Err(_) => {
            let base = if uri.starts_with('/') {
                format!("{guarded_root}..{uri}")
            } else {
                format!("{guarded_root}{PLAYLIST_KEY}")
            };
            let joined = Url::parse(&base).and_then(|b| b.join(uri.trim_start_matches('/')));
            let joined = if uri.starts_with('/') {
                Url::parse("http://origin.example.com/").and_then(|b| b.join(uri))
            } else {
                joined
            };
            match joined {
                Ok(url) => (url, false),
                Err(_) => return Expect::Leave("unparseable"),
            }
        }
    };
    let key = if absolute {
        match origin_key(&resolved, !uri.starts_with("//")) {
            Some(key) => key,
            None => return Expect::Leave("foreign"),
        }
    } else if uri.starts_with('/') {
        resolved.path()[1..].to_owned()
    } else {
        match resolved.path().strip_prefix("/GUARD/") {
            Some(key) => key.to_owned(),
            None => return Expect::Leave("escapes the origin root"),
        }
    };
    let query = resolved.query();
    let fragment = resolved.fragment().map(|f| format!("#{f}")).unwrap_or_default();
    let with_query = query.map(|q| format!("?{q}")).unwrap_or_default();
    let join = join_for(query);
    let rendered = match kind {
        SlotKind::Media => format!("{EDGE}/{key}{with_query}{join}{MEDIA_QUERY}{fragment}"),
        SlotKind::Playlist if absolute => format!("/{key}{with_query}{join}{PLAYLIST_QUERY}{fragment}"),
        SlotKind::Playlist => {
            let text = uri.split('#').next().unwrap_or(uri);
            format!("{text}{join}{PLAYLIST_QUERY}{fragment}")
        }
    };
    Expect::Rewrite { kind, rendered }
}

fn oracle(input: &[u8]) -> Oracle {
    let all = lines(input);
    let is_multivariant = all.iter().any(|(_, line)| {
        MULTIVARIANT_TAGS.iter().any(|t| {
            line.strip_prefix(b"#")
                .and_then(|l| l.strip_prefix(t.as_bytes()))
                .is_some_and(|rest| rest.is_empty() || rest[0] == b':')
        })
    });
    let mut oracle = Oracle {
        kind: Some(if is_multivariant {
            PlaylistKind::Multivariant
        } else {
            PlaylistKind::Media
        }),
        ..Oracle::default()
    };
    let mut after_stream_inf = false;
    for (offset, raw) in all.into_iter().skip(1) {
        let Ok(line) = std::str::from_utf8(raw) else {
            continue;
        };
        let trimmed = line.trim_matches([' ', '\t']);
        if trimmed.is_empty() {
            continue;
        }
        if trimmed.starts_with('#') {
            // Tags sit in the first column; indented `#` lines are comments.
            let Some(tag_line) = line.strip_prefix("#EXT") else {
                continue;
            };
            let (name, list) = match tag_line.split_once(':') {
                Some((name, list)) => (format!("EXT{name}"), list),
                None => (format!("EXT{}", tag_line.trim_end()), ""),
            };
            if name == "EXT-X-STREAM-INF" {
                after_stream_inf = true;
                continue;
            }
            let Some(&(tag, attribute, kind, multivariant)) =
                URI_ATTRIBUTES.iter().find(|(t, ..)| *t == name)
            else {
                continue;
            };
            if multivariant != is_multivariant {
                continue;
            }
            let list_offset = offset + line.len() - list.len();
            let list = list.trim_end_matches([' ', '\t']);
            let Some(attributes) = split_attributes(list) else {
                oracle.malformed_tags += 1;
                continue;
            };
            let method_none = attributes.iter().any(|(n, v, _, _)| n == "METHOD" && v == "NONE");
            for (n, value, at, quoted) in &attributes {
                if n != attribute {
                    continue;
                }
                let expect = if !quoted {
                    Expect::Leave("unquoted")
                } else if method_none && (tag == "EXT-X-KEY" || tag == "EXT-X-SESSION-KEY") {
                    Expect::Leave("METHOD=NONE")
                } else {
                    expect_for(value, kind)
                };
                let start = list_offset + at;
                oracle.occurrences.push(Occurrence {
                    range: start..start + value.len(),
                    tag,
                    expect,
                });
            }
        } else {
            let lead = line.len() - line.trim_start_matches([' ', '\t']).len();
            let start = offset + lead;
            let range = start..start + trimmed.len();
            let (tag, kind) = if std::mem::take(&mut after_stream_inf) {
                ("EXT-X-STREAM-INF", SlotKind::Playlist)
            } else if is_multivariant {
                continue;
            } else {
                ("EXTINF", SlotKind::Media)
            };
            oracle.occurrences.push(Occurrence {
                range,
                tag,
                expect: expect_for(trimmed, kind),
            });
        }
    }
    oracle
}

// ---------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/playlists")
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir())
        .expect("corpus dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "m3u8"))
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes = std::fs::read(&p).expect("read corpus file");
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

fn scan_corpus(bytes: &[u8]) -> Template {
    let bases: Vec<String> = ORIGIN_BASES.iter().map(|b| (*b).to_owned()).collect();
    let options = ScanOptions {
        playlist_key: PLAYLIST_KEY,
        origin_bases: &bases,
    };
    scan(Bytes::copy_from_slice(bytes), &options).expect("corpus playlists scan")
}

fn render(template: &Template) -> Vec<u8> {
    let mut out = Vec::new();
    template.render(&ctx(), &mut out);
    out
}

/// Checks one file; returns the tags of its slots.
fn check(name: &str, input: &[u8]) -> BTreeSet<&'static str> {
    let template = scan_corpus(input);
    let oracle = oracle(input);
    assert_eq!(Some(template.kind()), oracle.kind, "{name}: playlist kind");

    // The slots are exactly the URIs the oracle rewrites.
    let expected: Vec<(Range<usize>, &str, SlotKind, String)> = oracle
        .occurrences
        .iter()
        .filter_map(|o| match &o.expect {
            Expect::Rewrite { kind, rendered } => Some((o.range.clone(), o.tag, *kind, rendered.clone())),
            Expect::Leave(_) => None,
        })
        .collect();
    let actual: Vec<(Range<usize>, &str, SlotKind, String)> = template
        .slots()
        .map(|s| {
            let mut out = Vec::new();
            template.render_slot(s, &ctx(), &mut out);
            (
                s.range(),
                s.tag().name(),
                s.kind(),
                String::from_utf8_lossy(&out).into_owned(),
            )
        })
        .collect();
    for (e, a) in expected.iter().zip(&actual) {
        assert_eq!(
            e,
            a,
            "{name}: slot at {:?} ({:?})",
            e.0,
            String::from_utf8_lossy(&input[e.0.clone()])
        );
    }
    assert_eq!(expected.len(), actual.len(), "{name}: number of slots");

    // The rendering is the input with those URIs replaced, nothing else.
    let output = render(&template);
    let mut want = Vec::new();
    let mut prev = 0;
    for (range, _, _, rendered) in &expected {
        want.extend_from_slice(&input[prev..range.start]);
        want.extend_from_slice(rendered.as_bytes());
        prev = range.end;
    }
    want.extend_from_slice(&input[prev..]);
    assert!(
        output == want,
        "{name}: rendering differs:\n{}",
        String::from_utf8_lossy(&output)
    );
    assert_eq!(
        output.len(),
        template.rendered_len_hint(&ctx()),
        "{name}: length hint"
    );

    // Bytes outside the slots, walked with the template's own slot ranges.
    let mut at = 0;
    let mut prev = 0;
    for slot in template.slots() {
        let run = &input[prev..slot.range().start];
        assert_eq!(
            &output[at..at + run.len()],
            run,
            "{name}: bytes before slot {:?}",
            slot.range()
        );
        at += run.len();
        let mut rendered = Vec::new();
        template.render_slot(slot, &ctx(), &mut rendered);
        assert_eq!(&output[at..at + rendered.len()], &rendered[..]);
        at += rendered.len();
        prev = slot.range().end;
    }
    assert_eq!(&output[at..], &input[prev..], "{name}: bytes after the last slot");

    // Same lines, same line endings.
    assert_eq!(
        output.iter().filter(|&&b| b == b'\n').count(),
        input.iter().filter(|&&b| b == b'\n').count(),
        "{name}: line count"
    );
    assert_eq!(
        output.windows(2).filter(|w| w == b"\r\n").count(),
        input.windows(2).filter(|w| w == b"\r\n").count(),
        "{name}: CRLF count"
    );

    // Deterministic.
    assert!(render(&template) == output, "{name}: second rendering differs");
    assert!(
        render(&scan_corpus(input)) == output,
        "{name}: rendering of a second scan differs"
    );

    // The hand-counted table.
    let count = |kind: SlotKind| actual.iter().filter(|a| a.2 == kind).count();
    let left = oracle
        .occurrences
        .iter()
        .filter(|o| matches!(o.expect, Expect::Leave(_)))
        .count()
        + oracle.malformed_tags;
    let counted = EXPECTED_COUNTS
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|&(_, m, p, l)| (m, p, l));
    assert_eq!(
        Some((count(SlotKind::Media), count(SlotKind::Playlist), left)),
        counted,
        "{name}: (media, playlist, left alone) counts; left alone: {:?}",
        oracle
            .occurrences
            .iter()
            .filter_map(|o| match o.expect {
                Expect::Leave(why) =>
                    Some((String::from_utf8_lossy(&input[o.range.clone()]).into_owned(), why)),
                Expect::Rewrite { .. } => None,
            })
            .collect::<Vec<_>>()
    );

    template.slots().map(|s| s.tag().name()).collect()
}

#[test]
fn every_corpus_playlist_is_rewritten_as_specified() {
    let files = corpus();
    assert!(files.len() >= 25, "the corpus has {} playlists", files.len());
    let mut tags = BTreeSet::new();
    for (name, bytes) in &files {
        tags.extend(check(name, bytes));
    }
    let names: BTreeSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let listed: BTreeSet<&str> = EXPECTED_COUNTS.iter().map(|(n, ..)| *n).collect();
    assert_eq!(
        names, listed,
        "every corpus file has counts, and every count a file"
    );
    let all: BTreeSet<&str> = UriTag::ALL.iter().map(|t| t.name()).collect();
    assert_eq!(tags, all, "the corpus exercises every URI-bearing element");
}

/// The generator of `vod_5000_segments.m3u8`.
fn vod_5000() -> String {
    let mut s = String::from(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n",
    );
    for i in 0..5000 {
        s.push_str(&format!("#EXTINF:6.006,\nsegment_{i:05}.ts\n"));
    }
    s.push_str("#EXT-X-ENDLIST\n");
    s
}

#[test]
fn the_5000_segment_vod_is_what_its_generator_makes() {
    let file = std::fs::read(corpus_dir().join("vod_5000_segments.m3u8")).expect("read");
    assert!(file == vod_5000().as_bytes());
    let template = scan_corpus(&file);
    assert_eq!(template.slots().len(), 5000);
    assert!(template.is_ended());
    assert_eq!(template.target_duration(), Some(6));
}

#[test]
fn facts_of_corpus_playlists() {
    let read = |name: &str| std::fs::read(corpus_dir().join(name)).expect("read");
    let live = scan_corpus(&read("ffmpeg_ts_live_window.m3u8"));
    assert_eq!(live.kind(), PlaylistKind::Media);
    assert!(!live.is_ended());
    assert_eq!(live.target_duration(), Some(2));
    assert_eq!(live.part_target(), None);

    let ll = scan_corpus(&read("llhls_rfc8216bis_media.m3u8"));
    assert_eq!(ll.part_target(), Some(0.33334));
    assert_eq!(ll.target_duration(), Some(4));

    let master = scan_corpus(&read("apple_advanced_fmp4_multivariant.m3u8"));
    assert_eq!(master.kind(), PlaylistKind::Multivariant);
    let variants: Vec<(Option<&str>, Option<u64>)> = master
        .variants()
        .iter()
        .map(|v| (v.key.as_deref(), v.bandwidth))
        .collect();
    assert_eq!(variants.len(), 6);
    assert_eq!(
        variants[0],
        (Some("live/demo/hd/v5/prog_index.m3u8"), Some(2_177_116))
    );
    assert_eq!(master.media_keys().count(), 0);

    let mixed = scan_corpus(&read("absolute_origin_and_foreign_multivariant.m3u8"));
    let keys: Vec<Option<&str>> = mixed.variants().iter().map(|v| v.key.as_deref()).collect();
    assert_eq!(
        keys,
        [
            Some("live/demo/hd/index.m3u8"),
            Some("live/demo/sd/index.m3u8"),
            Some("live/demo/ld/index.m3u8"),
            None,
            None
        ]
    );
}

#[test]
fn the_oracle_splits_attributes_like_rfc_8216() {
    let attrs = split_attributes(r#"A=1,B="x,URI=y", URI = "z" ,"#).expect("well formed");
    let names: Vec<(&str, &str, bool)> = attrs
        .iter()
        .map(|(n, v, _, q)| (n.as_str(), v.as_str(), *q))
        .collect();
    assert_eq!(
        names,
        [("A", "1", false), ("B", "x,URI=y", true), ("URI", "z", true)]
    );
    let list = r#"A=1,B="x,URI=y", URI = "z" ,"#;
    assert_eq!(&list[attrs[2].2..attrs[2].2 + 1], "z");
    assert!(split_attributes(r#"URI="open"#).is_none());
}
