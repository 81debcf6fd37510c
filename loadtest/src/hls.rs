//! Reading playlists as a player does (with `m3u8-rs`), into the few facts
//! the player model and the stream-invariant checker need. Pure.

use std::time::SystemTime;

use url::Url;

use crate::error::{Error, Result};

/// One variant of a multivariant playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Its URI as written (relative to the multivariant playlist).
    pub uri: String,
    /// `BANDWIDTH`, bits per second.
    pub bandwidth: u64,
    /// A short name: the URI's directory (`240p` for `240p/index.m3u8?s=…`).
    pub name: String,
    /// Its `PATHWAY-ID` ([`DEFAULT_PATHWAY`] when it has none).
    pub pathway: String,
}

/// The pathway of a variant without `PATHWAY-ID` (as hls.js names it).
pub const DEFAULT_PATHWAY: &str = ".";

/// `EXT-X-CONTENT-STEERING` of a multivariant playlist (RFC 8216bis 4.4.6.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SteeringTag {
    /// `SERVER-URI`: the steering manifest, relative to the multivariant playlist.
    pub server_uri: String,
    /// `PATHWAY-ID`: the pathway to start on.
    pub pathway_id: Option<String>,
}

/// What a player reads from a multivariant playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterInfo {
    /// The variants (I-frame playlists left out), by increasing bandwidth
    /// (variants of equal bandwidth in playlist order, so pathways keep the
    /// order of their first variant).
    pub variants: Vec<Variant>,
    /// `EXT-X-CONTENT-STEERING`, if present with a `SERVER-URI`.
    pub steering: Option<SteeringTag>,
}

/// One media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Media sequence number.
    pub msn: u64,
    /// URI as written (absolute on an edge when the playlist comes from a router).
    pub uri: String,
    /// `EXTINF` duration, seconds.
    pub duration: f64,
    /// An `EXT-X-DISCONTINUITY` tag comes before it.
    pub discontinuity: bool,
    /// Its `EXT-X-PROGRAM-DATE-TIME`, when the playlist gives one for it.
    pub program_date_time: Option<SystemTime>,
}

/// One `EXT-X-PART` (low-latency HLS): part `index` of segment `msn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Media sequence number of the segment it belongs to (the segment whose
    /// URI line follows it; parts after the last segment belong to the next).
    pub msn: u64,
    /// Its index within the segment, from 0.
    pub index: u32,
    /// `URI` as written.
    pub uri: String,
}

/// What a player reads from a media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    /// `EXT-X-TARGETDURATION`, seconds.
    pub target_duration: f64,
    /// `EXT-X-MEDIA-SEQUENCE`.
    pub media_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE`.
    pub discontinuity_sequence: u64,
    /// The segments, in order.
    pub segments: Vec<Segment>,
    /// `EXT-X-ENDLIST` is present: no more segments will come.
    pub ended: bool,
    /// The `EXT-X-PART`s, in order (empty without low-latency HLS).
    pub parts: Vec<Part>,
}

impl MediaInfo {
    /// The media sequence number after the last segment.
    pub fn end_msn(&self) -> u64 {
        self.media_sequence + self.segments.len() as u64
    }
}

/// Reads a multivariant playlist.
pub fn parse_master(body: &[u8]) -> Result<MasterInfo> {
    let master = m3u8_rs::parse_master_playlist_res(body).map_err(|e| Error::BadBody {
        what: "multivariant playlist".into(),
        reason: short(&format!("{e:?}")),
    })?;
    let mut variants: Vec<Variant> = master
        .variants
        .into_iter()
        .filter(|v| !v.is_i_frame)
        .map(|v| Variant {
            name: rendition_name(&v.uri),
            pathway: v
                .other_attributes
                .as_ref()
                .and_then(|a| a.get("PATHWAY-ID"))
                .map_or_else(|| DEFAULT_PATHWAY.to_owned(), |p| p.as_str().to_owned()),
            uri: v.uri,
            bandwidth: v.bandwidth,
        })
        .collect();
    if variants.is_empty() {
        return Err(Error::BadBody {
            what: "multivariant playlist".into(),
            reason: "no variant".into(),
        });
    }
    variants.sort_by_key(|v| v.bandwidth);
    let steering = master
        .unknown_tags
        .iter()
        .find(|t| t.tag == "X-CONTENT-STEERING")
        .and_then(|t| steering_tag(t.rest.as_deref().unwrap_or("")));
    Ok(MasterInfo { variants, steering })
}

/// Reads the attribute list of `EXT-X-CONTENT-STEERING`; `None` without a
/// `SERVER-URI` (the tag is then of no use to a player).
pub fn steering_tag(attributes: &str) -> Option<SteeringTag> {
    let list = attribute_list(attributes);
    let get = |name: &str| list.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    Some(SteeringTag {
        server_uri: get("SERVER-URI").filter(|u| !u.is_empty())?,
        pathway_id: get("PATHWAY-ID"),
    })
}

/// An HLS attribute list (`KEY=VALUE,KEY="quoted, value"`) as pairs, quotes
/// removed. Malformed pieces are skipped, not fatal: a player reads what it can.
pub fn attribute_list(list: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.split_once('"') {
                Some((value, after)) => (value.to_owned(), after),
                None => (quoted.to_owned(), ""),
            }
        } else {
            match after.split_once(',') {
                Some((value, after)) => (value.trim().to_owned(), after),
                None => (after.trim().to_owned(), ""),
            }
        };
        if !key.is_empty() {
            out.push((key, value));
        }
        rest = after.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// The `EXT-X-PART`s of a media playlist body, numbered from `media_sequence`
/// (m3u8-rs drops the parts after the last segment, so they are read here).
fn parts(body: &[u8], media_sequence: u64) -> Vec<Part> {
    let Ok(text) = std::str::from_utf8(body) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut msn = media_sequence;
    let mut index = 0u32;
    for line in text.lines().map(str::trim) {
        if let Some(attributes) = line.strip_prefix("#EXT-X-PART:") {
            if let Some((_, uri)) = attribute_list(attributes).into_iter().find(|(k, _)| k == "URI") {
                out.push(Part { msn, index, uri });
            }
            index += 1;
        } else if !line.is_empty() && !line.starts_with('#') {
            msn += 1;
            index = 0;
        }
    }
    out
}

/// Reads a media playlist.
pub fn parse_media(body: &[u8]) -> Result<MediaInfo> {
    let media = m3u8_rs::parse_media_playlist_res(body).map_err(|e| Error::BadBody {
        what: "media playlist".into(),
        reason: short(&format!("{e:?}")),
    })?;
    let segments = media
        .segments
        .into_iter()
        .enumerate()
        .map(|(i, s)| Segment {
            msn: media.media_sequence + i as u64,
            uri: s.uri,
            duration: f64::from(s.duration),
            discontinuity: s.discontinuity,
            program_date_time: s.program_date_time.map(SystemTime::from),
        })
        .collect();
    Ok(MediaInfo {
        target_duration: media.target_duration as f64,
        media_sequence: media.media_sequence,
        discontinuity_sequence: media.discontinuity_sequence,
        segments,
        ended: media.end_list,
        parts: parts(body, media.media_sequence),
    })
}

/// The rendition name of a variant URI: its first directory
/// (`240p/index.m3u8?s=…` → `240p`), or the file name without its query.
pub fn rendition_name(uri: &str) -> String {
    let path = uri.split(['?', '#']).next().unwrap_or(uri);
    let path = path.rsplit_once("://").map_or(path, |(_, rest)| rest);
    let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() >= 2 {
        parts.pop();
        parts.last().map_or_else(String::new, |p| (*p).to_owned())
    } else {
        parts.first().map_or_else(String::new, |p| (*p).to_owned())
    }
}

/// The edge a URL points at, as `host:port` (the port is always written).
pub fn edge_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// A URL's path, the cache identity of a segment (query and fragment dropped).
pub fn object_of(url: &Url) -> &str {
    url.path()
}

fn short(s: &str) -> String {
    s.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:3\n\
#EXT-X-STREAM-INF:BANDWIDTH=775000,RESOLUTION=854x480\n480p/index.m3u8?s=abc\n\
#EXT-X-STREAM-INF:BANDWIDTH=276000,RESOLUTION=426x240\n240p/index.m3u8?s=abc\n\
#EXT-X-STREAM-INF:BANDWIDTH=507000,RESOLUTION=640x360\n360p/index.m3u8?s=abc\n";

    const LIVE: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
#EXTINF:2,\nhttp://127.0.0.1:9001/live/demo-1/240p/seg-7.ts\n\
#EXTINF:2,\nhttp://127.0.0.1:9001/live/demo-1/240p/seg-8.ts\n\
#EXTINF:1.5,\nhttp://127.0.0.1:9001/live/demo-1/240p/seg-9.ts\n";

    #[test]
    fn master_variants_sorted_by_bandwidth_with_names() {
        let m = parse_master(MASTER.as_bytes()).expect("master");
        let names: Vec<&str> = m.variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["240p", "360p", "480p"]);
        assert_eq!(m.variants[0].bandwidth, 276_000);
        assert_eq!(m.variants[0].uri, "240p/index.m3u8?s=abc");
        assert!(m.variants.iter().all(|v| v.pathway == DEFAULT_PATHWAY));
        assert_eq!(m.steering, None);
        assert!(parse_master(b"#EXTM3U\n").is_err());
        assert!(parse_master(b"not a playlist").is_err());
    }

    #[test]
    fn master_with_content_steering_and_pathways() {
        let body = "#EXTM3U\n\
#EXT-X-CONTENT-STEERING:SERVER-URI=\"/steer/live/demo-1?s=AbC=,x\",PATHWAY-ID=\"edge-2\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=507000,PATHWAY-ID=\"edge-2\"\n360p/index.m3u8?s=two\n\
#EXT-X-STREAM-INF:BANDWIDTH=276000,PATHWAY-ID=\"edge-2\"\n240p/index.m3u8?s=two\n\
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,URI=\"iframe.m3u8\",PATHWAY-ID=\"edge-2\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=507000,PATHWAY-ID=\"edge-1\"\n360p/index.m3u8?s=one\n\
#EXT-X-STREAM-INF:BANDWIDTH=276000,PATHWAY-ID=\"edge-1\"\n240p/index.m3u8?s=one\n";
        let m = parse_master(body.as_bytes()).expect("master");
        let got: Vec<(&str, &str)> = m
            .variants
            .iter()
            .map(|v| (v.pathway.as_str(), v.uri.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("edge-2", "240p/index.m3u8?s=two"),
                ("edge-1", "240p/index.m3u8?s=one"),
                ("edge-2", "360p/index.m3u8?s=two"),
                ("edge-1", "360p/index.m3u8?s=one"),
            ]
        );
        assert_eq!(
            m.steering,
            Some(SteeringTag {
                server_uri: "/steer/live/demo-1?s=AbC=,x".into(),
                pathway_id: Some("edge-2".into()),
            })
        );
        assert_eq!(steering_tag("PATHWAY-ID=\"a\""), None, "no SERVER-URI");
        assert_eq!(
            attribute_list("A=1,B=\"x,y=z\", C=abc ,D"),
            [
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "x,y=z".to_owned()),
                ("C".to_owned(), "abc".to_owned()),
            ]
        );
    }

    #[test]
    fn media_parts_are_numbered_like_their_segments() {
        let body = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:4\n\
#EXT-X-PART:DURATION=1,URI=\"p4.0.ts\"\n#EXT-X-PART:DURATION=1,URI=\"p4.1.ts\"\n#EXTINF:2,\nseg-4.ts\n\
#EXTINF:2,\nseg-5.ts\n#EXT-X-PART:DURATION=1,URI=\"p6.0.ts\",INDEPENDENT=YES\n\
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p6.1.ts\"\n";
        let m = parse_media(body.as_bytes()).expect("media");
        let got: Vec<(u64, u32, &str)> = m.parts.iter().map(|p| (p.msn, p.index, p.uri.as_str())).collect();
        assert_eq!(got, [(4, 0, "p4.0.ts"), (4, 1, "p4.1.ts"), (6, 0, "p6.0.ts")]);
        assert!(parse_media(LIVE.as_bytes()).expect("media").parts.is_empty());
    }

    #[test]
    fn media_segments_are_numbered() {
        let m = parse_media(LIVE.as_bytes()).expect("media");
        assert_eq!(m.target_duration, 2.0);
        assert_eq!(m.media_sequence, 7);
        assert!(!m.ended);
        assert_eq!(m.end_msn(), 10);
        assert_eq!(m.segments[2].msn, 9);
        assert_eq!(m.segments[2].duration, 1.5);
        let vod = format!("{LIVE}#EXT-X-ENDLIST\n");
        assert!(parse_media(vod.as_bytes()).expect("vod").ended);
    }

    #[test]
    fn media_discontinuities_and_program_date_times() {
        let body = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-DISCONTINUITY-SEQUENCE:3\n\
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:20.500+00:00\n#EXTINF:2,\nseg-10.ts\n\
#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T01:00:22Z\n#EXTINF:2,\nseg-11.ts\n\
#EXTINF:2,\nseg-12.ts\n";
        let m = parse_media(body.as_bytes()).expect("media");
        assert_eq!(m.discontinuity_sequence, 3);
        let flags: Vec<bool> = m.segments.iter().map(|s| s.discontinuity).collect();
        assert_eq!(flags, [false, true, false]);
        let unix = |s: &Segment| {
            s.program_date_time
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64())
        };
        assert_eq!(unix(&m.segments[0]), Some(1_767_225_620.5));
        assert_eq!(unix(&m.segments[1]), Some(1_767_229_222.0));
        assert_eq!(unix(&m.segments[2]), None);
        let plain = parse_media(LIVE.as_bytes()).expect("media");
        assert_eq!(plain.discontinuity_sequence, 0);
        assert!(
            plain
                .segments
                .iter()
                .all(|s| !s.discontinuity && s.program_date_time.is_none())
        );
    }

    #[test]
    fn names_edges_and_objects() {
        assert_eq!(rendition_name("240p/index.m3u8?s=x"), "240p");
        assert_eq!(rendition_name("a/b/720p/index.m3u8"), "720p");
        assert_eq!(rendition_name("low.m3u8?x"), "low.m3u8");
        assert_eq!(rendition_name("http://h:1/x/hi/index.m3u8"), "hi");
        let u = Url::parse("http://127.0.0.1:9001/live/x/seg-1.ts?hdnts=abc").expect("url");
        assert_eq!(edge_of(&u), "127.0.0.1:9001");
        assert_eq!(object_of(&u), "/live/x/seg-1.ts");
        let u = Url::parse("http://cdn.example/seg.ts").expect("url");
        assert_eq!(edge_of(&u), "cdn.example:80");
    }
}
