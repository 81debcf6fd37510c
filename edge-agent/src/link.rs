//! Links: one long-lived `POST /api/v1/link` to every router the heartbeat
//! knows ([`router_api::fleet::LINK_PATH`]). The body is a newline every
//! heartbeat interval and never ends, so the request lasts as long as this
//! process: when it dies, even by `kill -9`, the kernel closes the sockets
//! and every router stops choosing this edge at once instead of waiting for
//! the ad's TTL. A link that ends is opened again: after 100 ms when it had
//! lasted, after one heartbeat interval when it failed at once (a router
//! that is down or refuses is not hammered).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use router_api::fleet::Link;
use runtime::secret::Secret;
use tokio::task::JoinHandle;

/// Wait before opening again a link that had lasted.
const RELINK_AFTER: Duration = Duration::from_millis(100);

/// The links of one edge process, by router URL.
#[derive(Debug)]
pub struct Links {
    http: reqwest::Client,
    token: Secret,
    link: Link,
    interval: Duration,
    held: BTreeMap<String, JoinHandle<()>>,
}

impl Links {
    /// No links yet; [`Links::sync`] opens them.
    pub fn new(http: reqwest::Client, token: Secret, link: Link, interval: Duration) -> Self {
        Links {
            http,
            token,
            link,
            interval,
            held: BTreeMap::new(),
        }
    }

    /// Holds a link to each of `routers` and drops the links to routers no
    /// longer among them.
    pub fn sync<'a>(&mut self, routers: impl IntoIterator<Item = &'a str>) {
        let wanted: Vec<&str> = routers.into_iter().collect();
        self.held.retain(|url, task| {
            let keep = wanted.contains(&url.as_str());
            if !keep {
                task.abort();
            }
            keep
        });
        for url in wanted {
            if !self.held.contains_key(url) {
                self.open(url);
            }
        }
    }

    /// Opens `router`'s link again: it answers again after failing, and the
    /// old link may hang on a connection that died silently.
    pub fn restart(&mut self, router: &str) {
        if let Some(task) = self.held.remove(router) {
            task.abort();
            self.open(router);
        }
    }

    fn open(&mut self, router: &str) {
        let task = tokio::spawn(hold(
            self.http.clone(),
            self.link.url(router),
            self.token.clone(),
            self.interval,
        ));
        self.held.insert(router.to_owned(), task);
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        for task in self.held.values() {
            task.abort();
        }
    }
}

/// Keeps one link open, opening it again whenever it ends.
async fn hold(http: reqwest::Client, url: String, token: Secret, interval: Duration) {
    loop {
        let opened = tokio::time::Instant::now();
        let beats = futures::stream::unfold(true, move |first| async move {
            if !first {
                tokio::time::sleep(interval).await;
            }
            Some((Ok::<_, Infallible>(Bytes::from_static(b"\n")), false))
        });
        let ended = http
            .post(&url)
            .bearer_auth(token.expose())
            .body(reqwest::Body::wrap_stream(beats))
            .send()
            .await;
        match ended {
            Ok(response) => tracing::debug!(%url, status = response.status().as_u16(), "link ended"),
            Err(error) => tracing::debug!(%url, connect = error.is_connect(), "link ended"),
        }
        tokio::time::sleep(relink_after(opened.elapsed(), interval)).await;
    }
}

/// How long to wait before opening again a link that ended after `lasted`:
/// [`RELINK_AFTER`] when it had lasted a heartbeat `interval`, a whole
/// interval when it failed at once (a router that is down or refuses is
/// not hammered).
fn relink_after(lasted: Duration, interval: Duration) -> Duration {
    if lasted >= interval {
        RELINK_AFTER
    } else {
        interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_that_failed_at_once_waits_a_heartbeat() {
        let interval = Duration::from_secs(1);
        assert_eq!(relink_after(Duration::from_secs(3600), interval), RELINK_AFTER);
        assert_eq!(relink_after(interval, interval), RELINK_AFTER);
        assert_eq!(relink_after(Duration::from_millis(5), interval), interval);
    }
}
