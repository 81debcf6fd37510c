//! Which streams a store holds: the top-most prefixes that contain a
//! playlist. Pure code over a list of keys.

use std::collections::BTreeMap;

use serde::Serialize;

/// One stream: a prefix holding playlists, e.g. `live/demo-1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stream {
    /// The prefix, e.g. `live/demo-1`.
    pub name: String,
    /// `name/master.m3u8` when the stream has a multivariant playlist at its root.
    pub master: Option<String>,
    /// Every playlist under the prefix, sorted.
    pub playlists: Vec<String>,
}

/// Groups playlist keys into streams. A prefix that contains a playlist and
/// has no ancestor that also does is a stream; playlists below it (renditions)
/// belong to it. Keys that are not playlists are ignored.
pub fn streams<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<Stream> {
    let mut by_dir: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for key in keys {
        if !key.to_ascii_lowercase().ends_with(".m3u8") {
            continue;
        }
        let dir = key.rsplit_once('/').map_or("", |(dir, _)| dir);
        by_dir.entry(dir).or_default().push(key);
    }
    // The top-most ancestor of `dir` that holds playlists (itself if none).
    let root_of = |dir: &'a str| -> &'a str {
        let mut root = dir;
        let mut cursor = dir;
        while let Some((parent, _)) = cursor.rsplit_once('/') {
            if by_dir.contains_key(parent) {
                root = parent;
            }
            cursor = parent;
        }
        if !dir.is_empty() && by_dir.contains_key("") {
            ""
        } else {
            root
        }
    };
    let mut out: BTreeMap<&str, Stream> = BTreeMap::new();
    for (dir, playlists) in &by_dir {
        let stream = out.entry(root_of(dir)).or_insert_with_key(|name| Stream {
            name: (*name).to_owned(),
            master: None,
            playlists: Vec::new(),
        });
        stream.playlists.extend(playlists.iter().map(|p| (*p).to_owned()));
    }
    out.into_values()
        .map(|mut stream| {
            stream.playlists.sort();
            let master = format!("{}/master.m3u8", stream.name);
            let master = master.trim_start_matches('/');
            stream.master = stream.playlists.iter().find(|p| *p == master).cloned();
            stream
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renditions_belong_to_their_stream() {
        let keys = [
            "live/demo-1/master.m3u8",
            "live/demo-1/240p/index.m3u8",
            "live/demo-1/240p/seg-1.ts",
            "live/demo-10/index.m3u8",
            "live/demo-1-x/index.m3u8",
            "vod/demo/master.m3u8",
            "vod/demo/480p/index.m3u8",
            "other/readme.txt",
        ];
        let got = streams(keys);
        let names: Vec<_> = got.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["live/demo-1", "live/demo-1-x", "live/demo-10", "vod/demo"]
        );
        assert_eq!(got[0].master.as_deref(), Some("live/demo-1/master.m3u8"));
        assert_eq!(
            got[0].playlists,
            ["live/demo-1/240p/index.m3u8", "live/demo-1/master.m3u8"]
        );
        assert_eq!(got[2].master, None);
    }
}
