//! Streams and their audience, as the dashboard shows them. Pure.
//!
//! The origin's catalog names the streams and their renditions; each
//! rendition's bitrate comes from the multivariant playlist
//! (`AVERAGE-BANDWIDTH`, else `BANDWIDTH`). Edges report their egress per
//! stream key (`live/demo-1|240p`) in `hot_streams`; the viewers of a
//! rendition are estimated as its egress over its bitrate. Routers count
//! placements, not concurrent viewers, so this estimate is the honest live
//! figure.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::api::CatalogStream;
use crate::health::EdgeRow;

/// A stream of the catalog, with the bitrate of each rendition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamInfo {
    /// `live/demo-1`.
    pub name: String,
    /// `live/demo-1/master.m3u8`, if the stream has one.
    pub master: Option<String>,
    /// Its renditions, by name.
    pub renditions: Vec<RenditionInfo>,
}

/// One rendition of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenditionInfo {
    /// `240p`: the rendition's directory under the stream.
    pub name: String,
    /// `live/demo-1/240p/index.m3u8`.
    pub playlist: String,
    /// Average bitrate, bits/s, when the multivariant playlist says.
    pub bandwidth: Option<u64>,
}

/// A stream as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamRow {
    /// `live/demo-1`.
    pub name: String,
    /// Its multivariant playlist, if any.
    pub master: Option<String>,
    /// Egress of all its renditions over all edges, bits/s.
    pub egress_bps: u64,
    /// Estimated viewers (sum over renditions with a known bitrate).
    pub viewers: Option<u64>,
    /// Every rendition.
    pub renditions: Vec<RenditionRow>,
}

/// One rendition as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenditionRow {
    /// `240p`.
    pub name: String,
    /// Its playlist, when known (for the explain view).
    pub playlist: Option<String>,
    /// Its bitrate, when known.
    pub bandwidth: Option<u64>,
    /// Egress over all edges, bits/s.
    pub egress_bps: u64,
    /// Estimated viewers: egress / bitrate, rounded.
    pub viewers: Option<u64>,
    /// Edges serving it, busiest first.
    pub edges: Vec<String>,
}

/// `(URI, bitrate)` of each variant of a multivariant playlist.
pub fn parse_master(text: &str) -> Vec<(String, u64)> {
    let mut variants = Vec::new();
    let mut pending: Option<u64> = None;
    for line in text.lines().map(str::trim) {
        if let Some(attributes) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            let get = |name: &str| {
                attributes
                    .split(',')
                    .filter_map(|a| a.split_once('='))
                    .find(|(k, _)| k.trim() == name)
                    .and_then(|(_, v)| v.trim().parse::<u64>().ok())
            };
            pending = get("AVERAGE-BANDWIDTH").or_else(|| get("BANDWIDTH"));
        } else if !line.is_empty()
            && !line.starts_with('#')
            && let Some(bandwidth) = pending.take()
        {
            variants.push((line.to_owned(), bandwidth));
        }
    }
    variants
}

/// The rendition name of a variant URI relative to its master: its directory
/// (`240p/index.m3u8` → `240p`), query stripped.
fn rendition_of_uri(uri: &str) -> Option<&str> {
    let path = uri.split(['?', '#']).next().unwrap_or(uri);
    path.rsplit_once('/')
        .map(|(dir, _)| dir)
        .filter(|d| !d.is_empty() && !d.contains("://"))
}

/// The stream info of a catalog entry, with bitrates from its master playlist's text.
pub fn stream_info(stream: &CatalogStream, master_text: Option<&str>) -> StreamInfo {
    let bitrates: BTreeMap<String, u64> = master_text
        .map(parse_master)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(uri, bw)| rendition_of_uri(&uri).map(|r| (r.to_owned(), bw)))
        .collect();
    let prefix = format!("{}/", stream.name);
    let renditions = stream
        .playlists
        .iter()
        .filter(|p| Some(p.as_str()) != stream.master.as_deref())
        .filter_map(|p| {
            let rest = p.strip_prefix(&prefix)?;
            let (name, _) = rest.rsplit_once('/')?;
            Some(RenditionInfo {
                name: name.to_owned(),
                playlist: p.clone(),
                bandwidth: bitrates.get(name).copied(),
            })
        })
        .collect();
    StreamInfo {
        name: stream.name.clone(),
        master: stream.master.clone(),
        renditions,
    }
}

/// The streams with their egress and estimated viewers: every catalog
/// stream, then any stream edges serve that the catalog does not list.
pub fn stream_rows(catalog: &[StreamInfo], edges: &[EdgeRow]) -> Vec<StreamRow> {
    // (stream, rendition) → edge id → egress
    let mut served: BTreeMap<(String, String), BTreeMap<String, u64>> = BTreeMap::new();
    for edge in edges.iter().filter(|e| e.fresh) {
        for hot in &edge.hot_streams {
            let (stream, rendition) = hot.stream.split_once('|').unwrap_or((hot.stream.as_str(), ""));
            *served
                .entry((stream.to_owned(), rendition.to_owned()))
                .or_default()
                .entry(edge.id.clone())
                .or_default() += hot.egress_bps;
        }
    }
    let rendition_row = |name: &str,
                         playlist: Option<String>,
                         bandwidth: Option<u64>,
                         by_edge: Option<&BTreeMap<String, u64>>| {
        let egress_bps: u64 = by_edge.map_or(0, |m| m.values().sum());
        let mut edges: Vec<(&String, &u64)> = by_edge.map(|m| m.iter().collect()).unwrap_or_default();
        edges.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        RenditionRow {
            name: name.to_owned(),
            playlist,
            bandwidth,
            egress_bps,
            viewers: bandwidth
                .filter(|&b| b > 0)
                .map(|b| (egress_bps as f64 / b as f64).round() as u64),
            edges: edges.into_iter().map(|(id, _)| id.clone()).collect(),
        }
    };
    let mut rows: Vec<StreamRow> = Vec::new();
    for info in catalog {
        let mut renditions: Vec<RenditionRow> = info
            .renditions
            .iter()
            .map(|r| {
                let key = (info.name.clone(), r.name.clone());
                rendition_row(
                    &r.name,
                    Some(r.playlist.clone()),
                    r.bandwidth,
                    served.remove(&key).as_ref(),
                )
            })
            .collect();
        // Renditions served but not in the catalog (yet).
        let extra: Vec<(String, String)> = served.keys().filter(|(s, _)| *s == info.name).cloned().collect();
        for key in extra {
            let by_edge = served.remove(&key);
            renditions.push(rendition_row(&key.1, None, None, by_edge.as_ref()));
        }
        rows.push(stream_row(info.name.clone(), info.master.clone(), renditions));
    }
    let mut others: BTreeMap<String, Vec<RenditionRow>> = BTreeMap::new();
    for ((stream, rendition), by_edge) in served {
        others
            .entry(stream)
            .or_default()
            .push(rendition_row(&rendition, None, None, Some(&by_edge)));
    }
    for (name, renditions) in others {
        rows.push(stream_row(name, None, renditions));
    }
    rows
}

fn stream_row(name: String, master: Option<String>, renditions: Vec<RenditionRow>) -> StreamRow {
    let known: Vec<u64> = renditions.iter().filter_map(|r| r.viewers).collect();
    StreamRow {
        name,
        master,
        egress_bps: renditions.iter().map(|r| r.egress_bps).sum(),
        viewers: (!known.is_empty()).then(|| known.iter().sum()),
        renditions,
    }
}

#[cfg(test)]
mod tests {
    use router_api::fleet::{EdgeState, HotStream};

    use super::*;
    use crate::health::Severity;

    const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:3\n\
        #EXT-X-STREAM-INF:BANDWIDTH=276000,AVERAGE-BANDWIDTH=248000,RESOLUTION=426x240,CODECS=\"avc1.42c015,mp4a.40.2\"\n\
        240p/index.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=507000,RESOLUTION=640x360,CODECS=\"avc1.4d401e,mp4a.40.2\"\n\
        360p/index.m3u8?x=1\n";

    fn catalog() -> CatalogStream {
        CatalogStream {
            name: "live/demo-1".into(),
            master: Some("live/demo-1/master.m3u8".into()),
            playlists: vec![
                "live/demo-1/240p/index.m3u8".into(),
                "live/demo-1/360p/index.m3u8".into(),
                "live/demo-1/master.m3u8".into(),
            ],
        }
    }

    fn edge(id: &str, hot: &[(&str, u64)]) -> EdgeRow {
        EdgeRow {
            id: id.into(),
            url: String::new(),
            group: None,
            status: "ready",
            state: EdgeState::Ready,
            fresh: true,
            eligible: true,
            ad_age_ms: 0,
            capacity_bps: 1,
            max_connections: 1,
            egress_bps: 0,
            connections: 0,
            requests_per_sec: 0.0,
            cache_hit_ratio: 0.0,
            cache_bytes: 0,
            cpu: 0.0,
            utilization: 0.0,
            assigned_bps: 0,
            viewers: 0,
            configured: false,
            hot_streams: hot
                .iter()
                .map(|(s, b)| HotStream {
                    stream: (*s).into(),
                    egress_bps: *b,
                })
                .collect(),
            fresh_on: 1,
            routers_answering: 1,
            severity: Severity::Ok,
            notes: Vec::new(),
        }
    }

    #[test]
    fn master_bitrates() {
        assert_eq!(
            parse_master(MASTER),
            vec![
                ("240p/index.m3u8".into(), 248_000),
                ("360p/index.m3u8?x=1".into(), 507_000)
            ]
        );
        let info = stream_info(&catalog(), Some(MASTER));
        let renditions: Vec<(&str, Option<u64>)> = info
            .renditions
            .iter()
            .map(|r| (r.name.as_str(), r.bandwidth))
            .collect();
        assert_eq!(renditions, vec![("240p", Some(248_000)), ("360p", Some(507_000))]);
        assert!(
            stream_info(&catalog(), None)
                .renditions
                .iter()
                .all(|r| r.bandwidth.is_none())
        );
    }

    #[test]
    fn viewers_are_egress_over_bitrate() {
        let info = stream_info(&catalog(), Some(MASTER));
        let edges = [
            edge(
                "edge-1",
                &[("live/demo-1|240p", 496_000), ("vod/demo|480p", 700_000)],
            ),
            edge(
                "edge-2",
                &[("live/demo-1|240p", 744_000), ("live/demo-1|720p", 1)],
            ),
        ];
        let rows = stream_rows(&[info], &edges);
        assert_eq!(rows.len(), 2);
        let demo = &rows[0];
        assert_eq!(demo.name, "live/demo-1");
        assert_eq!(demo.renditions[0].viewers, Some(5));
        assert_eq!(demo.renditions[0].edges, vec!["edge-2", "edge-1"]);
        assert_eq!(demo.renditions[1].viewers, Some(0));
        assert_eq!(demo.renditions[2].name, "720p", "served but not in the catalog");
        assert_eq!(demo.viewers, Some(5));
        assert_eq!(demo.egress_bps, 1_240_001);
        assert_eq!(rows[1].name, "vod/demo");
        assert_eq!(rows[1].viewers, None);
    }
}
