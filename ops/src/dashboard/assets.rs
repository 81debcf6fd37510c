//! The pages and scripts the dashboard serves, embedded in the binary: our
//! own (`ops/web/`) and hls.js from npm (copied by `build.rs`). The pages
//! load nothing else, from anywhere.

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// URL path.
    pub path: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The bytes.
    pub body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Every embedded file.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: HTML,
        body: include_bytes!("../../web/index.html"),
    },
    Asset {
        path: "/player",
        content_type: HTML,
        body: include_bytes!("../../web/player.html"),
    },
    Asset {
        path: "/assets/style.css",
        content_type: CSS,
        body: include_bytes!("../../web/style.css"),
    },
    Asset {
        path: "/assets/common.js",
        content_type: JS,
        body: include_bytes!("../../web/common.js"),
    },
    Asset {
        path: "/assets/dashboard.js",
        content_type: JS,
        body: include_bytes!("../../web/dashboard.js"),
    },
    Asset {
        path: "/assets/player.js",
        content_type: JS,
        body: include_bytes!("../../web/player.js"),
    },
    Asset {
        path: "/assets/hls.min.js",
        content_type: JS,
        body: include_bytes!(concat!(env!("OUT_DIR"), "/hls.min.js")),
    },
    Asset {
        path: "/assets/hls.js.LICENSE.txt",
        content_type: TEXT,
        body: include_bytes!(concat!(env!("OUT_DIR"), "/hls.js.LICENSE")),
    },
];

/// The asset served at `path`.
pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/index.html" { "/" } else { path };
    let path = if path == "/player.html" { "/player" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_is_there_and_loads_nothing_from_outside() {
        for asset in ASSETS {
            assert!(!asset.body.is_empty(), "{}", asset.path);
        }
        assert!(find("/index.html").is_some_and(|a| a.path == "/"));
        assert!(find("/player").is_some());
        assert!(find("/nope").is_none());
        for asset in ASSETS
            .iter()
            .filter(|a| a.content_type != TEXT && !a.path.contains("hls"))
        {
            let text = String::from_utf8_lossy(asset.body);
            for needle in ["http://", "https://", "//cdn", "@import"] {
                assert!(
                    !text.contains(needle),
                    "{} mentions {needle}: pages must load nothing from outside",
                    asset.path
                );
            }
        }
    }
}
