//! HTTP for the viewers: the one pooled client every request goes through,
//! segment downloads timed to the response head, and the short name a
//! failed request gets in the figures (`timeout`, `connect`, `body`,
//! `request`).

use std::time::{Duration, Instant};

use url::Url;

use crate::error::{Error, Result};
use crate::player::Failure;

/// The shared HTTP client: pooled connections, a timeout, no proxy.
pub fn client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .no_proxy()
        .build()
        .map_err(|source| Error::Upstream {
            what: "building the HTTP client".into(),
            source,
        })
}

pub(super) fn failure(e: &reqwest::Error) -> Failure {
    Failure(
        if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "connect"
        } else if e.is_body() || e.is_decode() {
            "body"
        } else {
            "request"
        }
        .to_owned(),
    )
}

/// Time to the response head, body bytes, and the outcome.
pub(super) async fn get_segment(
    client: &reqwest::Client,
    url: &Url,
) -> (Option<Duration>, u64, Result<(), Failure>) {
    let started = Instant::now();
    let mut response = match client.get(url.clone()).send().await {
        Ok(r) => r,
        Err(e) => return (None, 0, Err(failure(&e))),
    };
    let ttfb = Some(started.elapsed());
    let status = response.status();
    if !status.is_success() {
        return (ttfb, 0, Err(Failure(format!("status {}", status.as_u16()))));
    }
    let mut bytes = 0u64;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes += chunk.len() as u64,
            Ok(None) => return (ttfb, bytes, Ok(())),
            Err(e) => return (ttfb, bytes, Err(failure(&e))),
        }
    }
}
