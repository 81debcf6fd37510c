//! The fleet as a router shows it, for the router's integration tests (each
//! test binary uses a part of it).

#![allow(dead_code)]

use router_api::fleet::EdgesView;

use crate::common::{Server, client};

/// `GET /api/v1/edges` of `router`.
pub async fn edges(router: &Server) -> EdgesView {
    client()
        .get(router.url("/api/v1/edges"))
        .send()
        .await
        .expect("edges")
        .json()
        .await
        .expect("json")
}

/// (fresh, eligible) of `edge` on `router`; `None` while it does not know it.
pub async fn edge_state(router: &Server, edge: &str) -> Option<(bool, bool)> {
    edges(router)
        .await
        .edges
        .iter()
        .find(|e| e.id == edge)
        .map(|e| (e.fresh, e.eligible))
}

/// A player that follows Content Steering as hls.js does, for the liveness
/// and steering tests: it plays the first variant of its current pathway,
/// reloads that pathway's media playlist, fetches the newest segments, and
/// on [`Viewer::steer`] takes the first pathway of the router's manifest
/// (building clones from their `PARAMS`). It checks the rule players
/// enforce: within one media playlist URL, a listed media sequence number
/// never changes its URI (query aside).
pub struct Viewer {
    /// The multivariant playlist's URL.
    pub master_url: url::Url,
    /// Media playlist URL of the first variant of each pathway, by pathway id.
    pub pathways: std::collections::BTreeMap<String, url::Url>,
    /// The pathway being played.
    pub current: String,
    /// The steering manifest URL (`None`: the master had no steering).
    pub steering: Option<url::Url>,
    /// Segment paths fetched.
    pub fetched: std::collections::BTreeSet<String>,
    /// Segment fetches that failed.
    pub failures: usize,
    /// (media playlist URL, msn) → segment URI without query, as first listed.
    pub listed: std::collections::HashMap<(String, u64), String>,
    /// Listed segments whose URI changed at a later reload (must stay 0).
    pub uri_changes: usize,
    /// Pathway switches.
    pub switches: usize,
}

/// The URI lines of `EXT-X-STREAM-INF`s, with their `PATHWAY-ID` (`.` when absent).
pub fn variants_by_pathway(master: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending: Option<String> = None;
    for line in master.lines() {
        if let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            let id = attrs
                .split_once("PATHWAY-ID=\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map_or(".", |(id, _)| id);
            pending = Some(id.to_owned());
        } else if !line.starts_with('#')
            && !line.trim().is_empty()
            && let Some(id) = pending.take()
        {
            out.push((id, line.trim().to_owned()));
        }
    }
    out
}

impl Viewer {
    /// Joins `stream` through `router`.
    pub async fn join(router: &Server, stream: &str) -> Viewer {
        let master_url = url::Url::parse(&router.url(&format!("/{stream}/master.m3u8"))).expect("url");
        let body = crate::common::text(master_url.as_str()).await;
        let mut pathways = std::collections::BTreeMap::new();
        let mut first = None;
        for (id, uri) in variants_by_pathway(&body) {
            first.get_or_insert_with(|| id.clone());
            pathways
                .entry(id)
                .or_insert_with(|| master_url.join(&uri).expect("variant URL"));
        }
        let steering = body
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-CONTENT-STEERING:"))
            .and_then(|attrs| attrs.split_once("SERVER-URI=\""))
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(uri, _)| master_url.join(uri).expect("steering URL"));
        Viewer {
            master_url,
            pathways,
            current: first.expect("a variant"),
            steering,
            fetched: Default::default(),
            failures: 0,
            listed: Default::default(),
            uri_changes: 0,
            switches: 0,
        }
    }

    fn on(url: &url::Url, router: &Server) -> url::Url {
        let mut url = url.clone();
        url.set_port(Some(router.addr.port())).expect("port");
        url
    }

    /// The current pathway's media playlist URL.
    pub fn media_url(&self) -> &url::Url {
        &self.pathways[&self.current]
    }

    /// Reloads the current pathway's media playlist from `router`, checks
    /// that no listed segment changed its URI, fetches the two newest
    /// segments not fetched yet; returns the segment URLs of this reload.
    pub async fn reload(&mut self, router: &Server) -> Vec<String> {
        let url = Self::on(self.media_url(), router);
        let r = client().get(url.as_str()).send().await.expect("media");
        assert_eq!(r.status(), 200, "media playlist");
        let body = r.bytes().await.expect("body");
        let media = m3u8_rs::parse_media_playlist_res(&body).expect("media");
        let uris: Vec<String> = media.segments.iter().map(|s| s.uri.clone()).collect();
        let key = self.media_url().to_string();
        for (i, uri) in uris.iter().enumerate() {
            let msn = media.media_sequence + i as u64;
            let bare = uri.split('?').next().unwrap_or_default().to_owned();
            let first = self
                .listed
                .entry((key.clone(), msn))
                .or_insert_with(|| bare.clone());
            if *first != bare {
                eprintln!("listed segment {msn} changed: {first} -> {bare}");
                self.uri_changes += 1;
            }
        }
        for uri in uris.iter().rev().take(2) {
            let path = url::Url::parse(uri)
                .map(|u| u.path().to_owned())
                .unwrap_or_default();
            if self.fetched.insert(path) {
                let ok = client().get(uri).send().await.is_ok_and(|r| r.status() == 200);
                if !ok {
                    self.failures += 1;
                }
            }
        }
        uris
    }

    /// Fetches the steering manifest from `router` (reporting the current
    /// pathway) and switches to its first pathway; returns the manifest.
    pub async fn steer(&mut self, router: &Server) -> serde_json::Value {
        let mut url = Self::on(self.steering.as_ref().expect("a steered master"), router);
        url.query_pairs_mut().append_pair("_HLS_pathway", &self.current);
        let manifest: serde_json::Value = client()
            .get(url.as_str())
            .send()
            .await
            .expect("steering")
            .json()
            .await
            .expect("steering JSON");
        for clone in manifest["PATHWAY-CLONES"].as_array().into_iter().flatten() {
            let (Some(id), Some(base)) = (clone["ID"].as_str(), clone["BASE-ID"].as_str()) else {
                panic!("clone without ID or BASE-ID: {clone}");
            };
            if self.pathways.contains_key(id) {
                continue;
            }
            let mut url = self.pathways[base].clone();
            let params = clone["URI-REPLACEMENT"]["PARAMS"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| !params.contains_key(k.as_ref()))
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            url.query_pairs_mut().clear().extend_pairs(kept);
            for (k, v) in &params {
                url.query_pairs_mut()
                    .append_pair(k, v.as_str().unwrap_or_default());
            }
            self.pathways.insert(id.to_owned(), url);
        }
        if let Some(first) = manifest["PATHWAY-PRIORITY"][0].as_str()
            && first != self.current
            && self.pathways.contains_key(first)
        {
            self.current = first.to_owned();
            self.switches += 1;
        }
        manifest
    }
}
