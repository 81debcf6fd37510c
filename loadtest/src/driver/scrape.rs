//! `/metrics` of the origin, the edges and the routers, scraped before and
//! after the run for the report's deltas; a server that does not answer is
//! left out of the figures, not an error.

use url::Url;

use crate::report::Scrape;
use router_api::prometheus;

/// The `/metrics` URL of a server: `base` itself if it ends with
/// `/metrics`, else `base` + `/metrics`.
pub fn metrics_url(base: &str) -> Option<Url> {
    let mut url = Url::parse(base).ok()?;
    if url.cannot_be_a_base() || !url.scheme().starts_with("http") {
        return None;
    }
    if !url.path().ends_with("/metrics") {
        let path = format!("{}/metrics", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    Some(url)
}

async fn scrape_one(client: &reqwest::Client, url: &Url) -> Option<Vec<prometheus::Sample>> {
    let response = client.get(url.clone()).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    Some(prometheus::parse(&response.text().await.ok()?))
}

pub(super) async fn scrape(
    client: &reqwest::Client,
    origin: Option<&Url>,
    edges: &[Url],
    routers: &[Url],
) -> Scrape {
    let origin = match origin {
        Some(url) => scrape_one(client, url).await,
        None => None,
    };
    let edges = futures::future::join_all(
        edges
            .iter()
            .map(|u| async move { (u.to_string(), scrape_one(client, u).await) }),
    )
    .await;
    let routers = futures::future::join_all(
        routers
            .iter()
            .map(|u| async move { (u.to_string(), scrape_one(client, u).await) }),
    )
    .await;
    Scrape {
        origin,
        edges,
        routers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_urls() {
        let u = |s: &str| metrics_url(s).map(|u| u.to_string());
        assert_eq!(
            u("http://127.0.0.1:9001").as_deref(),
            Some("http://127.0.0.1:9001/metrics")
        );
        assert_eq!(
            u("http://127.0.0.1:9001/").as_deref(),
            Some("http://127.0.0.1:9001/metrics")
        );
        assert_eq!(u("http://h:1/x/metrics").as_deref(), Some("http://h:1/x/metrics"));
        assert_eq!(
            u("http://h:1/edge-1/").as_deref(),
            Some("http://h:1/edge-1/metrics")
        );
        assert_eq!(u("nope"), None);
    }
}
