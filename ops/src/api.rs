//! The JSON the routers and the origin serve, and the calls that read it.
//!
//! Edge views come from `router_api::fleet` (the wire contract); the smaller
//! shapes a router answers with outside that contract (`/api/v1/routers`,
//! `/api/v1/scale`) and the origin's catalog are mirrored here, tolerant of
//! fields added later.

use std::time::Duration;

use anyhow::{Context, bail};
use router_api::fleet::{EdgesView, RoutersView, Scale};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Longest wait for one API call.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How this process's API calls verify HTTPS: set once, by [`trust`].
static TRUST: std::sync::OnceLock<runtime::tls::ClientTls> = std::sync::OnceLock::new();

/// Makes every later API call verify HTTPS with `tls` (the system roots
/// and the dashboard's `--tls-ca-file`); only the first call counts.
pub fn trust(tls: runtime::tls::ClientTls) {
    let _ = TRUST.set(tls);
}

/// `--tls-ca-file` of the one-shot commands (`status`, `drain`,
/// `autoscale`): the CA of a fleet that serves HTTPS with its own.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TrustArg {
    /// Trust the CAs in FILE (PEM) besides the system's roots, calling the fleet over https.
    #[arg(
        long = "tls-ca-file",
        alias = "ca-file",
        env = "HLSCDN_TLS_CA_FILE",
        value_name = "FILE"
    )]
    pub ca_file: Option<std::path::PathBuf>,
}

impl TrustArg {
    /// Makes this process's API calls trust the file's CAs ([`trust`]).
    pub fn apply(&self) -> anyhow::Result<()> {
        if let Some(file) = &self.ca_file {
            trust(runtime::tls::ClientTls::load(Some(file), None, None).map_err(anyhow::Error::msg)?);
        }
        Ok(())
    }
}

/// A client builder that verifies as [`trust`] said.
fn builder() -> reqwest::ClientBuilder {
    match TRUST.get() {
        Some(tls) => tls.apply(reqwest::Client::builder()),
        None => reqwest::Client::builder(),
    }
}

/// A client for API calls: short timeouts, no proxy (every call goes to the fleet itself).
pub fn client() -> reqwest::Client {
    builder()
        .timeout(TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// A client for long-lived streams (server-sent events): a connect timeout only.
pub fn stream_client() -> reqwest::Client {
    builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// A base URL without its trailing `/`.
pub fn base(url: &str) -> &str {
    url.trim_end_matches('/')
}

/// Checks that `url` is an `http(s)://host[:port][/path]` base URL.
pub fn check_base_url(url: &str) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url).with_context(|| format!("{url:?} is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        bail!("{url:?} must be an http:// or https:// URL with a host");
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        bail!("{url:?} must not have a query or fragment");
    }
    Ok(())
}

/// One stream of the origin's catalog (`GET /api/v1/streams`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogStream {
    /// The stream's prefix, e.g. `live/demo-1`.
    pub name: String,
    /// Its multivariant playlist, if it has one.
    #[serde(default)]
    pub master: Option<String>,
    /// Every playlist under it.
    #[serde(default)]
    pub playlists: Vec<String>,
}

/// The answer of the origin's `GET /api/v1/streams`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Every stream.
    pub streams: Vec<CatalogStream>,
}

/// `GET url`, checks the status, parses the JSON body.
pub async fn get_json<T: DeserializeOwned>(client: &reqwest::Client, url: &str) -> anyhow::Result<T> {
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        bail!("GET {url}: {status} {}", body.trim());
    }
    response
        .json()
        .await
        .with_context(|| format!("GET {url}: unexpected answer"))
}

/// A router's `GET /api/v1/routers`.
pub async fn routers(client: &reqwest::Client, router: &str) -> anyhow::Result<RoutersView> {
    get_json(client, &format!("{}/api/v1/routers", base(router))).await
}

/// A router's `GET /api/v1/edges`.
pub async fn edges(client: &reqwest::Client, router: &str) -> anyhow::Result<EdgesView> {
    get_json(client, &format!("{}/api/v1/edges", base(router))).await
}

/// A router's `GET /api/v1/scale`; `None` when the router does not serve it (404).
pub async fn scale(client: &reqwest::Client, router: &str) -> anyhow::Result<Option<Scale>> {
    let url = format!("{}/api/v1/scale", base(router));
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !response.status().is_success() {
        bail!("GET {url}: {}", response.status());
    }
    Ok(Some(
        response
            .json()
            .await
            .with_context(|| format!("GET {url}: unexpected answer"))?,
    ))
}

/// The origin's `GET /api/v1/streams`.
pub async fn catalog(client: &reqwest::Client, origin: &str) -> anyhow::Result<Catalog> {
    get_json(client, &format!("{}/api/v1/streams", base(origin))).await
}

/// `GET url` as text (a playlist).
pub async fn get_text(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    if !response.status().is_success() {
        bail!("GET {url}: {}", response.status());
    }
    Ok(response.text().await?)
}

/// `POST <edge>/admin/drain` with the fleet token.
pub async fn drain_edge(client: &reqwest::Client, edge_url: &str, fleet_token: &str) -> anyhow::Result<()> {
    let url = format!("{}/admin/drain", base(edge_url));
    let response = client
        .post(&url)
        .bearer_auth(fleet_token)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!("POST {url}: 401: the edge refused the fleet token");
        }
        bail!("POST {url}: {status} {}", body.trim());
    }
    Ok(())
}

/// Whether `GET <url>/readyz` answers 200.
pub async fn is_ready(client: &reqwest::Client, url: &str) -> bool {
    client
        .get(format!("{}/readyz", base(url)))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_of_the_router_answers() {
        let routers: RoutersView = serde_json::from_str(
            r#"{"self":{"id":"a1","url":"http://127.0.0.1:8080"},
                "routers":[{"id":"a1","url":"http://127.0.0.1:8080"},{"id":"b2","url":"http://127.0.0.1:8081","extra":1}]}"#,
        )
        .expect("routers view");
        assert_eq!(routers.this.id, "a1");
        assert_eq!(routers.routers.len(), 2);
        let scale: Scale = serde_json::from_str(
            r#"{"utilization":0.7,"target_utilization":0.6,"edges":3,"desired_edges":4,"min_edges":1,"max_edges":20}"#,
        )
        .expect("scale view");
        assert_eq!(scale.desired_edges, 4);
        let catalog: Catalog = serde_json::from_str(
            r#"{"streams":[{"name":"live/demo-1","master":"live/demo-1/master.m3u8","playlists":["live/demo-1/240p/index.m3u8"]},{"name":"x"}]}"#,
        )
        .expect("catalog");
        assert_eq!(catalog.streams[1].master, None);
    }

    #[test]
    fn base_urls() {
        assert_eq!(base("http://a:1/"), "http://a:1");
        assert!(check_base_url("http://127.0.0.1:8080").is_ok());
        assert!(check_base_url("https://router.example/cdn").is_ok());
        assert!(check_base_url("ftp://x").is_err());
        assert!(check_base_url("http://x/?a=1").is_err());
        assert!(check_base_url("127.0.0.1:8080").is_err());
    }
}
