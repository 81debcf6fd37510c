//! The stream invariants, checked on every media playlist a viewer
//! receives, and the probes behind "every segment URL is fetchable": each
//! segment URL the playlists name, queued once, fetched one byte at a time,
//! [`PROBE_CONCURRENCY`] at once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use tokio::sync::mpsc;
use url::Url;

use super::fetch::failure;
use super::{PROBE_CONCURRENCY, Shared, Viewer};
use crate::hls;
use crate::invariants::{Probe, Received};

/// Checks a media playlist the viewer received from `url` against the
/// stream invariants, and queues the segment URLs nobody saw before for a
/// probe (one that does not fit in the queue is left unprobed).
pub(super) fn check(viewer: &Viewer<'_>, url: &Url, media: &hls::MediaInfo) {
    let fresh = viewer.shared.checker().observe(Received {
        viewer: viewer.id,
        url,
        at: SystemTime::now(),
        playlist: media,
    });
    let Some(probes) = &viewer.probes else {
        return;
    };
    for segment in fresh {
        if probes.try_send(segment).is_err() {
            break;
        }
    }
}

/// Probes the queued segment URLs, [`PROBE_CONCURRENCY`] at a time, until
/// the queue is closed and empty, and reports each outcome to the checker.
pub(super) async fn probe_all(shared: Arc<Shared>, queued: mpsc::Receiver<Url>, timeout: Duration) {
    let urls = futures::stream::unfold(queued, |mut queued| async move {
        queued.recv().await.map(|url| (url, queued))
    });
    urls.for_each_concurrent(PROBE_CONCURRENCY, |url| {
        let shared = &shared;
        async move {
            let outcome = probe(&shared.client, &url, timeout).await;
            if outcome == Probe::Fetchable {
                shared.recorder().object(hls::object_of(&url));
            }
            shared.checker().probed(&url, outcome);
        }
    })
    .await;
}

/// `GET` of the first byte of a segment: a 2xx is fetchable.
async fn probe(client: &reqwest::Client, url: &Url, timeout: Duration) -> Probe {
    let sent = client
        .get(url.clone())
        .header(reqwest::header::RANGE, "bytes=0-0")
        .timeout(timeout)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => match response.bytes().await {
            Ok(_) => Probe::Fetchable,
            Err(e) => Probe::NoAnswer(failure(&e).0),
        },
        Ok(response) => Probe::Status(response.status().as_u16()),
        Err(e) => Probe::NoAnswer(failure(&e).0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::client;
    use crate::driver::testing::{answering, refusing};

    #[tokio::test]
    async fn probes_tell_fetchable_from_status_and_silence() {
        let http = client(Duration::from_secs(2)).expect("client");
        let timeout = Duration::from_secs(1);
        let partial = answering("206 Partial Content", "G", None).await;
        assert_eq!(probe(&http, &partial, timeout).await, Probe::Fetchable);
        let missing = answering("404 Not Found", "", None).await;
        assert_eq!(probe(&http, &missing, timeout).await, Probe::Status(404));
        assert_eq!(
            probe(&http, &refusing(), timeout).await,
            Probe::NoAnswer("connect".into())
        );
    }
}
