//! Content Steering as hls.js plays it (RFC 8216bis section 4.4.6.6 and
//! section 7; hls.js `ContentSteeringController`). Pure: no I/O, and the
//! clock comes in as an argument.
//!
//! - [`Pathways`]: the variants of a multivariant playlist grouped by
//!   `PATHWAY-ID`, in the order their first variant appears; a playlist
//!   without pathways is one pathway, [`crate::hls::DEFAULT_PATHWAY`].
//! - [`Manifest`]: a steering manifest (`VERSION`, `TTL`, `RELOAD-URI`,
//!   `PATHWAY-PRIORITY`, `PATHWAY-CLONES`), read strictly where a player must
//!   (`VERSION` 1, a priority list) and leniently elsewhere (unknown keys).
//! - [`clone_url`]: a clone's variant URL from its base pathway's
//!   (`URI-REPLACEMENT`: `HOST`, `PARAMS`).
//! - [`manifest_url`]: the reload URL with `_HLS_pathway` and `_HLS_throughput`.
//! - [`PenaltyBox`] and [`next_pathway`]: which pathway to use, given the
//!   priority and the pathways that failed lately.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

use crate::hls::MasterInfo;

/// How long a pathway that failed a segment stays out of use (hls.js:
/// `PATHWAY_PENALTY_DURATION_MS`, 5 minutes).
pub const PENALTY: Duration = Duration::from_secs(300);
/// Steering manifest reload interval when the server gives none (the spec's
/// default `TTL`), and after a failed load before any manifest arrived.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Shortest reload interval taken from a manifest, so that a `TTL` of 0 does
/// not turn the player into a busy loop.
pub const MIN_TTL: Duration = Duration::from_millis(100);
/// Most pathways a player keeps (master pathways and clones), so that a
/// manifest cannot make it grow without end.
pub const MAX_PATHWAYS: usize = 64;

/// One variant of a pathway, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathwayVariant {
    /// Rendition name (`240p`), the same across pathways.
    pub name: String,
    /// `BANDWIDTH`, bits per second.
    pub bandwidth: u64,
    /// Its media playlist URL.
    pub url: Url,
}

/// One pathway: its id and its variants by increasing bandwidth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pathway {
    /// `PATHWAY-ID` (for the router, an edge id).
    pub id: String,
    /// Its variants, by increasing bandwidth.
    pub variants: Vec<PathwayVariant>,
    /// Made from a `PATHWAY-CLONES` entry.
    pub cloned: bool,
}

/// Every pathway a player knows, in master order, then clones in the order
/// they came.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pathways {
    list: Vec<Pathway>,
}

impl Pathways {
    /// The pathways of a multivariant playlist fetched from `master_url`.
    /// Variants whose URI does not resolve are left out, and so is a pathway
    /// left without variants.
    pub fn from_master(master_url: &Url, master: &MasterInfo) -> Pathways {
        let mut list: Vec<Pathway> = Vec::new();
        // Master order of pathways: the order of their first variant as written
        // is lost to the bandwidth sort, so the first appearance in the sorted
        // list, which keeps playlist order among equal bandwidths, is used.
        for v in &master.variants {
            let Ok(url) = master_url.join(&v.uri) else {
                continue;
            };
            let variant = PathwayVariant {
                name: v.name.clone(),
                bandwidth: v.bandwidth,
                url,
            };
            match list.iter().position(|p| p.id == v.pathway) {
                Some(i) => list[i].variants.push(variant),
                None if list.len() < MAX_PATHWAYS => list.push(Pathway {
                    id: v.pathway.clone(),
                    variants: vec![variant],
                    cloned: false,
                }),
                None => {}
            }
        }
        Pathways { list }
    }

    /// The pathways, master ones first.
    pub fn list(&self) -> &[Pathway] {
        &self.list
    }

    /// Number of pathways.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// No pathway at all.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Index of the pathway `id`.
    pub fn index(&self, id: &str) -> Option<usize> {
        self.list.iter().position(|p| p.id == id)
    }

    /// Pathway `i`.
    pub fn get(&self, i: usize) -> Option<&Pathway> {
        self.list.get(i)
    }

    /// The pathway ids, in order (the priority hls.js falls back to when no
    /// manifest gave one).
    pub fn ids(&self) -> Vec<String> {
        self.list.iter().map(|p| p.id.clone()).collect()
    }

    /// Adds the clones of a manifest (hls.js: a clone whose id exists
    /// already, or whose base is unknown, is ignored). Returns how many were added.
    pub fn add_clones(&mut self, clones: &[PathwayClone]) -> usize {
        let mut added = 0;
        for c in clones {
            if self.list.len() >= MAX_PATHWAYS || self.index(&c.id).is_some() {
                continue;
            }
            let Some(base) = self.index(&c.base_id).and_then(|i| self.list.get(i)) else {
                continue;
            };
            let variants = base
                .variants
                .iter()
                .map(|v| PathwayVariant {
                    name: v.name.clone(),
                    bandwidth: v.bandwidth,
                    url: clone_url(&v.url, &c.uri_replacement),
                })
                .collect();
            self.list.push(Pathway {
                id: c.id.clone(),
                variants,
                cloned: true,
            });
            added += 1;
        }
        added
    }
}

/// `URI-REPLACEMENT` of a pathway clone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
pub struct UriReplacement {
    /// Replaces the host of every URI.
    #[serde(default)]
    pub host: Option<String>,
    /// Query parameters to set (replacing any of the same name) on every URI.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// One `PATHWAY-CLONES` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
pub struct PathwayClone {
    /// The new pathway's id.
    pub id: String,
    /// The pathway whose variants it copies.
    pub base_id: String,
    /// How its URIs differ from the base's.
    #[serde(default)]
    pub uri_replacement: UriReplacement,
}

/// A steering manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Reload after this long.
    pub ttl: Duration,
    /// Where to reload it from, as written (relative to the manifest's URL).
    pub reload_uri: Option<String>,
    /// Pathway ids, most preferred first.
    pub priority: Vec<String>,
    /// Pathways to create.
    pub clones: Vec<PathwayClone>,
}

#[derive(Deserialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
struct Wire {
    version: Option<u64>,
    ttl: Option<f64>,
    reload_uri: Option<String>,
    #[serde(default)]
    pathway_priority: Vec<String>,
    #[serde(default)]
    pathway_clones: Vec<PathwayClone>,
}

/// Reads a steering manifest. Refused, with a short reason: not JSON, a
/// `VERSION` other than 1, no `PATHWAY-PRIORITY`, a `TTL` that is not a
/// finite number ≥ 0.
pub fn parse_manifest(body: &[u8]) -> Result<Manifest, String> {
    let wire: Wire = serde_json::from_slice(body).map_err(|e| {
        let mut reason = e.to_string();
        reason.truncate(120);
        format!("not a steering manifest: {reason}")
    })?;
    if wire.version != Some(1) {
        return Err(format!("VERSION {:?}, not 1", wire.version));
    }
    if wire.pathway_priority.is_empty() {
        return Err("no PATHWAY-PRIORITY".into());
    }
    let ttl = match wire.ttl {
        None => DEFAULT_TTL,
        Some(t) => Duration::try_from_secs_f64(t)
            .map_err(|_| format!("TTL {t} is not a number of seconds"))?
            .max(MIN_TTL),
    };
    Ok(Manifest {
        ttl,
        reload_uri: wire.reload_uri.filter(|u| !u.is_empty()),
        priority: wire.pathway_priority,
        clones: wire.pathway_clones,
    })
}

/// A clone's URL from its base's: the host replaced when `HOST` is given,
/// each `PARAMS` entry set (an existing parameter of that name replaced in
/// place, a new one appended), everything else kept.
pub fn clone_url(base: &Url, replacement: &UriReplacement) -> Url {
    let mut url = base.clone();
    if let Some(host) = &replacement.host {
        let mut moved = url.clone();
        if moved.set_host(Some(host)).is_ok() {
            url = moved;
        }
    }
    set_params(
        &mut url,
        replacement.params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    url
}

/// The steering manifest URL to load: `reload` with `_HLS_pathway` (the
/// pathway in use) and `_HLS_throughput` (bits per second, when measured) set.
pub fn manifest_url(reload: &Url, pathway: &str, throughput_bps: Option<u64>) -> Url {
    let mut url = reload.clone();
    let throughput = throughput_bps.map(|t| t.to_string());
    let mut params = vec![("_HLS_pathway", pathway)];
    if let Some(t) = &throughput {
        params.push(("_HLS_throughput", t.as_str()));
    }
    set_params(&mut url, params);
    url
}

fn set_params<'a>(url: &mut Url, params: impl IntoIterator<Item = (&'a str, &'a str)>) {
    let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let mut changed = false;
    // As `URLSearchParams.set`: the first of that name takes the value in
    // place, the others go; a new name is appended.
    for (key, value) in params {
        changed = true;
        match pairs.iter().position(|(k, _)| k == key) {
            Some(first) => {
                value.clone_into(&mut pairs[first].1);
                let mut i = 0;
                pairs.retain(|(k, _)| {
                    i += 1;
                    i - 1 == first || k != key
                });
            }
            None => pairs.push((key.to_owned(), value.to_owned())),
        }
    }
    if changed {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
}

/// Pathways that failed lately, each with the moment it failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PenaltyBox {
    since: BTreeMap<String, Instant>,
}

impl PenaltyBox {
    /// Puts `pathway` in the box at `now` (hls.js keeps the first moment
    /// while it is in).
    pub fn penalize(&mut self, pathway: &str, now: Instant) {
        self.expire(now);
        self.since.entry(pathway.to_owned()).or_insert(now);
    }

    /// Whether `pathway` is in the box at `now`.
    pub fn is_penalized(&self, pathway: &str, now: Instant) -> bool {
        self.since
            .get(pathway)
            .is_some_and(|&t| now.saturating_duration_since(t) <= PENALTY)
    }

    /// Lets out the pathways that served their [`PENALTY`].
    pub fn expire(&mut self, now: Instant) {
        self.since
            .retain(|_, t| now.saturating_duration_since(*t) <= PENALTY);
    }

    /// Pathways in the box (some may be due out).
    pub fn len(&self) -> usize {
        self.since.len()
    }

    /// Nobody in the box.
    pub fn is_empty(&self) -> bool {
        self.since.is_empty()
    }
}

/// hls.js `updatePathwayPriority`: the first pathway of `priority` that is
/// not penalized and that the player has, unless the current one comes
/// first. `None`: stay where it is (the current pathway comes first, or no
/// pathway of the list can be used).
pub fn next_pathway<'a>(
    priority: &'a [String],
    current: &str,
    pathways: &Pathways,
    penalties: &PenaltyBox,
    now: Instant,
) -> Option<&'a str> {
    for id in priority {
        if penalties.is_penalized(id, now) {
            continue;
        }
        if id == current {
            return None;
        }
        if pathways
            .index(id)
            .and_then(|i| pathways.get(i))
            .is_some_and(|p| !p.variants.is_empty())
        {
            return Some(id);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hls::{DEFAULT_PATHWAY, Variant};
    use proptest::prelude::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    fn master(pathways: &[&str]) -> MasterInfo {
        let mut variants = Vec::new();
        for name in ["240p", "480p"] {
            for p in pathways {
                variants.push(Variant {
                    uri: format!("{name}/index.m3u8?s=tok-{p}"),
                    bandwidth: if name == "240p" { 276_000 } else { 775_000 },
                    name: name.into(),
                    pathway: (*p).to_owned(),
                });
            }
        }
        MasterInfo {
            variants,
            steering: None,
        }
    }

    const MASTER: &str = "http://router:8080/live/x/master.m3u8";

    #[test]
    fn pathways_group_variants_in_master_order() {
        let p = Pathways::from_master(&url(MASTER), &master(&["edge-2", "edge-1"]));
        assert_eq!(p.ids(), ["edge-2", "edge-1"]);
        let first = p.get(0).expect("pathway");
        let names: Vec<&str> = first.variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["240p", "480p"]);
        assert_eq!(
            first.variants[0].url.as_str(),
            "http://router:8080/live/x/240p/index.m3u8?s=tok-edge-2"
        );
        let single = Pathways::from_master(&url(MASTER), &master(&[DEFAULT_PATHWAY]));
        assert_eq!(single.ids(), ["."]);
        assert_eq!(single.get(0).map(|p| p.variants.len()), Some(2));
    }

    #[test]
    fn manifests_are_read_as_hls_js_reads_them() {
        let body = br#"{"VERSION":1,"TTL":5,"RELOAD-URI":"/steer/live/x?s=t","PATHWAY-PRIORITY":["edge-2","edge-1"],
            "PATHWAY-CLONES":[{"ID":"edge-3","BASE-ID":"edge-2","URI-REPLACEMENT":{"PARAMS":{"s":"tok-3"}}}],"X-OTHER":1}"#;
        let m = parse_manifest(body).expect("manifest");
        assert_eq!(m.ttl, Duration::from_secs(5));
        assert_eq!(m.reload_uri.as_deref(), Some("/steer/live/x?s=t"));
        assert_eq!(m.priority, ["edge-2", "edge-1"]);
        assert_eq!(m.clones.len(), 1);
        assert_eq!(m.clones[0].uri_replacement.params["s"], "tok-3");
        let m = parse_manifest(br#"{"VERSION":1,"PATHWAY-PRIORITY":["a"]}"#).expect("minimal");
        assert_eq!((m.ttl, m.reload_uri, m.clones.len()), (DEFAULT_TTL, None, 0));
        let tiny = parse_manifest(br#"{"VERSION":1,"TTL":0,"PATHWAY-PRIORITY":["a"]}"#).expect("ttl 0");
        assert_eq!(tiny.ttl, MIN_TTL);
        for bad in [
            &br#"{"VERSION":2,"PATHWAY-PRIORITY":["a"]}"#[..],
            br#"{"PATHWAY-PRIORITY":["a"]}"#,
            br#"{"VERSION":1,"PATHWAY-PRIORITY":[]}"#,
            br#"{"VERSION":1,"TTL":-1,"PATHWAY-PRIORITY":["a"]}"#,
            br#"{"VERSION":1,"PATHWAY-PRIORITY":"a"}"#,
            b"<html>",
        ] {
            assert!(parse_manifest(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn clones_copy_their_base_with_params_replaced() {
        let mut p = Pathways::from_master(&url(MASTER), &master(&["edge-1", "edge-2"]));
        let clone = |id: &str, base: &str| PathwayClone {
            id: id.into(),
            base_id: base.into(),
            uri_replacement: UriReplacement {
                host: None,
                params: [("s".to_owned(), format!("tok-{id}"))].into(),
            },
        };
        let added = p.add_clones(&[
            clone("edge-3", "edge-1"),
            clone("edge-1", "edge-2"),
            clone("edge-4", "nope"),
        ]);
        assert_eq!(added, 1, "an existing id and an unknown base are ignored");
        assert_eq!(p.ids(), ["edge-1", "edge-2", "edge-3"]);
        let c = p.get(2).expect("clone");
        assert!(c.cloned);
        assert_eq!(
            c.variants[1].url.as_str(),
            "http://router:8080/live/x/480p/index.m3u8?s=tok-edge-3"
        );
        assert_eq!(
            p.add_clones(&[clone("edge-3", "edge-2")]),
            0,
            "a clone is made once"
        );

        let host = UriReplacement {
            host: Some("cdn-b.example".into()),
            params: [("new".to_owned(), "1".to_owned())].into(),
        };
        assert_eq!(
            clone_url(&url("http://cdn-a.example:81/x/a.m3u8?s=1&k=2#f"), &host).as_str(),
            "http://cdn-b.example:81/x/a.m3u8?s=1&k=2&new=1#f"
        );
        let none = UriReplacement::default();
        assert_eq!(
            clone_url(&url("http://a/x.m3u8"), &none).as_str(),
            "http://a/x.m3u8"
        );
    }

    #[test]
    fn manifest_urls_carry_pathway_and_throughput() {
        let reload = url("http://router:8080/steer/live/x?s=t&_HLS_pathway=old");
        assert_eq!(
            manifest_url(&reload, "edge-2", Some(2_500_000)).as_str(),
            "http://router:8080/steer/live/x?s=t&_HLS_pathway=edge-2&_HLS_throughput=2500000"
        );
        assert_eq!(
            manifest_url(&url("http://r/steer/x?s=t"), ".", None).as_str(),
            "http://r/steer/x?s=t&_HLS_pathway=."
        );
    }

    #[test]
    fn penalties_last_five_minutes() {
        let t0 = Instant::now();
        let mut b = PenaltyBox::default();
        b.penalize("a", t0);
        b.penalize("a", t0 + Duration::from_secs(10));
        assert!(b.is_penalized("a", t0 + PENALTY));
        assert!(!b.is_penalized("a", t0 + PENALTY + Duration::from_millis(1)));
        assert!(!b.is_penalized("b", t0));
        b.expire(t0 + PENALTY + Duration::from_secs(1));
        assert!(b.is_empty());
    }

    #[test]
    fn next_pathway_follows_priority_around_penalties() {
        let p = Pathways::from_master(&url(MASTER), &master(&["a", "b", "c"]));
        let t0 = Instant::now();
        let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let mut b = PenaltyBox::default();
        assert_eq!(next_pathway(&ids(&["a", "b"]), "a", &p, &b, t0), None);
        assert_eq!(next_pathway(&ids(&["b", "a"]), "a", &p, &b, t0), Some("b"));
        assert_eq!(
            next_pathway(&ids(&["x", "c"]), "a", &p, &b, t0),
            Some("c"),
            "unknown ids skipped"
        );
        b.penalize("a", t0);
        assert_eq!(next_pathway(&ids(&["a", "b", "c"]), "a", &p, &b, t0), Some("b"));
        b.penalize("b", t0);
        assert_eq!(next_pathway(&ids(&["a", "b", "c"]), "b", &p, &b, t0), Some("c"));
        b.penalize("c", t0);
        assert_eq!(
            next_pathway(&ids(&["a", "b", "c"]), "c", &p, &b, t0),
            None,
            "all penalized: stay"
        );
        let later = t0 + PENALTY + Duration::from_secs(1);
        assert_eq!(
            next_pathway(&ids(&["a", "b", "c"]), "c", &p, &b, later),
            Some("a")
        );
    }

    proptest! {
        /// The chosen pathway is never penalized, exists, differs from the
        /// current one, and nothing before it in the priority could be used;
        /// `None` only when the current pathway is first usable or nothing is.
        #[test]
        fn next_pathway_is_the_first_usable(
            priority in proptest::collection::vec(0usize..5, 0..8),
            penalized in proptest::collection::vec(any::<bool>(), 5),
            current in 0usize..5,
        ) {
            let names = ["a", "b", "c", "d", "zz"]; // "zz" is no pathway of the master
            let p = Pathways::from_master(&url(MASTER), &master(&names[..4]));
            let t0 = Instant::now();
            let mut b = PenaltyBox::default();
            for (i, &pen) in penalized.iter().enumerate() {
                if pen {
                    b.penalize(names[i], t0);
                }
            }
            let priority: Vec<String> = priority.iter().map(|&i| names[i].to_owned()).collect();
            let usable = |id: &str| !b.is_penalized(id, t0) && (p.index(id).is_some() || id == names[current]);
            let first = priority.iter().find(|id| usable(id));
            match next_pathway(&priority, names[current], &p, &b, t0) {
                Some(id) => {
                    prop_assert!(!b.is_penalized(id, t0));
                    prop_assert!(p.index(id).is_some());
                    prop_assert_ne!(id, names[current]);
                    prop_assert_eq!(first.map(String::as_str), Some(id));
                }
                None => prop_assert!(first.is_none_or(|id| id == names[current])),
            }
        }

        /// A clone URL differs from its base only in the parameters it sets.
        #[test]
        fn clone_urls_change_only_their_params(
            key in "[a-z]{1,3}",
            value in "[A-Za-z0-9]{0,8}",
            query in proptest::collection::vec(("[a-z]{1,3}", "[a-z0-9]{0,4}"), 0..4),
        ) {
            let mut base = url("http://edge:9001/live/x/240p/index.m3u8");
            if !query.is_empty() {
                base.query_pairs_mut().extend_pairs(&query);
            }
            let r = UriReplacement { host: None, params: [(key.clone(), value.clone())].into() };
            let c = clone_url(&base, &r);
            prop_assert_eq!(c.host_str(), base.host_str());
            prop_assert_eq!(c.path(), base.path());
            let got: Vec<(String, String)> = c.query_pairs().into_owned().collect();
            prop_assert_eq!(got.iter().filter(|(k, _)| *k == key).count(), 1);
            prop_assert!(got.iter().any(|(k, v)| *k == key && *v == value));
            for (k, v) in &query {
                if *k != key {
                    prop_assert!(got.iter().any(|(gk, gv)| gk == k && gv == v));
                }
            }
        }
    }
}
