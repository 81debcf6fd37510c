//! What a run learns before its first viewer: the multivariant playlist of
//! every stream (from the flags, or the origin's catalog), and the fleet as
//! the first router that answers sees it (edge ids and `/metrics` URLs).

use serde::Deserialize;
use url::Url;

use super::Streams;
use crate::error::{Error, Result};

/// The multivariant playlist path of every stream, relative to a router.
pub(super) async fn streams(client: &reqwest::Client, streams: &Streams) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Catalog {
        streams: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        master: Option<String>,
    }
    match streams {
        Streams::List(list) => Ok(list
            .iter()
            .map(|s| {
                let s = s.trim_matches('/');
                if s.ends_with(".m3u8") {
                    s.to_owned()
                } else {
                    format!("{s}/master.m3u8")
                }
            })
            .collect()),
        Streams::Origin(origin) => {
            let url = origin
                .join("/api/v1/streams")
                .map_err(|e| Error::BadInput(format!("`--origin` {origin}: {e}")))?;
            let what = format!("GET {url}");
            let response = client
                .get(url.clone())
                .send()
                .await
                .map_err(|source| Error::Upstream {
                    what: what.clone(),
                    source,
                })?;
            if !response.status().is_success() {
                return Err(Error::Status {
                    what,
                    status: response.status().as_u16(),
                });
            }
            let catalog: Catalog = response.json().await.map_err(|e| Error::BadBody {
                what: what.clone(),
                reason: e.to_string(),
            })?;
            let masters: Vec<String> = catalog.streams.into_iter().filter_map(|s| s.master).collect();
            if masters.is_empty() {
                return Err(Error::BadInput(format!("{what}: no stream with a master.m3u8")));
            }
            Ok(masters)
        }
    }
}

/// The fleet as the first router that answers sees it.
pub(super) async fn fleet_view(
    client: &reqwest::Client,
    routers: &[Url],
) -> Option<router_api::fleet::EdgesView> {
    for router in routers {
        let Ok(url) = router.join("/api/v1/edges") else {
            continue;
        };
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
            && let Ok(view) = response.json().await
        {
            return Some(view);
        }
    }
    None
}
