//! Router failover for playlists and steering manifests: a request that
//! fails at the transport level (refused, reset, timed out, body cut) goes at
//! once, same path and query, to the next router, which the viewer keeps; a
//! status from a live router is its answer. Each router is tried at most once
//! per request.

use std::sync::atomic::Ordering;

use url::Url;

use super::Viewer;
use super::fetch::failure;
use crate::player::Failure;

/// Why a request brought no body.
enum Miss {
    /// The server answered with this status (not 2xx).
    Status(u16),
    /// No whole answer: refused, reset, timed out, body cut.
    Transport(Failure),
}

impl Miss {
    fn into_failure(self) -> Failure {
        match self {
            Miss::Status(status) => Failure(format!("status {status}")),
            Miss::Transport(failure) => failure,
        }
    }
}

async fn get_body(client: &reqwest::Client, url: &Url) -> Result<bytes::Bytes, Miss> {
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| Miss::Transport(failure(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(Miss::Status(status.as_u16()));
    }
    response.bytes().await.map_err(|e| Miss::Transport(failure(&e)))
}

/// Fetches a playlist from the viewer's router; after a transport failure,
/// the same path and query at once from the next router, which the viewer
/// keeps (each router is tried at most once per request). Returns the URL
/// that gave the outcome.
pub(super) async fn get_playlist(viewer: &Viewer<'_>, url: &Url) -> (Url, Result<bytes::Bytes, Failure>) {
    let shared = viewer.shared;
    let routers = &shared.routers;
    let mut tried = 1;
    loop {
        let current = viewer.router.load(Ordering::Relaxed);
        let moved = routers.get(current).and_then(|to| on_router(url, routers, to));
        let can_fail_over = moved.is_some() && tried < routers.len();
        let target = moved.unwrap_or_else(|| url.clone());
        match get_body(&shared.client, &target).await {
            Err(Miss::Transport(_)) if can_fail_over => {
                tried += 1;
                viewer
                    .router
                    .store((current + 1) % routers.len(), Ordering::Relaxed);
                shared.recorder().failover(viewer.id);
            }
            result => return (target, result.map_err(Miss::into_failure)),
        }
    }
}

/// `url`, which names one of `routers`, sent to router `to` instead: same
/// path and query, as a DNS name or a load balancer in front of the routers
/// would send it. `None` for a URL on any other host.
fn on_router(url: &Url, routers: &[Url], to: &Url) -> Option<Url> {
    // Compared field by field: `Url::origin` allocates, and this runs for
    // every playlist request.
    let same_server = |r: &Url| {
        r.scheme() == url.scheme()
            && r.host_str() == url.host_str()
            && r.port_or_known_default() == url.port_or_known_default()
    };
    if !routers.iter().any(same_server) {
        return None;
    }
    let mut moved = url.clone();
    moved.set_scheme(to.scheme()).ok()?;
    moved.set_host(to.host_str()).ok()?;
    moved.set_port(to.port()).ok()?;
    Some(moved)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;
    use crate::driver::testing::{answering, refusing};
    use crate::driver::{Shared, client};

    #[test]
    fn failover_keeps_path_and_query_and_leaves_other_hosts_alone() {
        let u = |s: &str| Url::parse(s).expect("url");
        let routers = [u("http://127.0.0.1:8080/"), u("https://router.example/")];
        let media = u("http://127.0.0.1:8080/live/demo-1/240p/index.m3u8?s=tok&_HLS_msn=7");
        let moved = |to: &Url| on_router(&media, &routers, to).map(String::from);
        assert_eq!(
            moved(&routers[1]).as_deref(),
            Some("https://router.example/live/demo-1/240p/index.m3u8?s=tok&_HLS_msn=7")
        );
        assert_eq!(moved(&routers[0]).as_deref(), Some(media.as_str()));
        let back = on_router(
            &u("https://router.example/live/x/master.m3u8"),
            &routers,
            &routers[0],
        );
        assert_eq!(
            back.map(String::from).as_deref(),
            Some("http://127.0.0.1:8080/live/x/master.m3u8")
        );
        let edge = u("http://127.0.0.1:9001/live/demo-1/240p/index.m3u8");
        assert_eq!(on_router(&edge, &routers, &routers[1]), None);
    }

    async fn fetch_as_viewer(
        routers: &[Url],
        home: usize,
    ) -> (Url, Result<bytes::Bytes, Failure>, usize, u64) {
        let http = client(Duration::from_secs(2)).expect("client");
        let shared = Shared::new(http, routers.to_vec(), 1, Duration::from_secs(1));
        let viewer = Viewer {
            id: 0,
            router: AtomicUsize::new(home),
            probes: None,
            shared: &shared,
        };
        let url = routers[home].join("live/x/240p/index.m3u8?s=tok").expect("url");
        let (answered, result) = get_playlist(&viewer, &url).await;
        let failovers = shared.recorder().moves().failovers;
        (answered, result, viewer.router.load(Ordering::Relaxed), failovers)
    }

    #[tokio::test]
    async fn playlists_fail_over_on_transport_failures_only() {
        let live = answering("200 OK", "#EXTM3U\n", None).await;
        let failing = answering("502 Bad Gateway", "origin unreachable\n", None).await;
        let cut = answering("200 OK", "#EXTM3U\n", Some(5000)).await;
        let (dead, also_dead) = (refusing(), refusing());

        // Refused: the same path and query from the next router, which the viewer keeps.
        let (answered, result, router, failovers) = fetch_as_viewer(&[dead.clone(), live.clone()], 0).await;
        assert_eq!(answered.as_str(), format!("{live}live/x/240p/index.m3u8?s=tok"));
        assert_eq!(result.ok().as_deref(), Some(&b"#EXTM3U\n"[..]));
        assert_eq!((router, failovers), (1, 1));

        // A body cut short is a transport failure too.
        let (answered, result, router, failovers) =
            fetch_as_viewer(&[live.clone(), cut, live.clone()], 1).await;
        assert_eq!(answered.origin(), live.origin());
        assert!(result.is_ok());
        assert_eq!((router, failovers), (2, 1));

        // A live router's status is its answer: no failover.
        let (answered, result, router, failovers) =
            fetch_as_viewer(&[failing.clone(), live.clone()], 0).await;
        assert_eq!(answered.origin(), failing.origin());
        assert_eq!(result.err(), Some(Failure("status 502".into())));
        assert_eq!((router, failovers), (0, 0));

        // Every router refuses: each is tried once, then the player hears of it.
        let (_, result, router, failovers) = fetch_as_viewer(&[also_dead, dead], 1).await;
        assert_eq!(result.err(), Some(Failure("connect".into())));
        assert_eq!((router, failovers), (0, 1));

        // One router: nowhere to fail over to.
        let (_, result, router, failovers) = fetch_as_viewer(&[refusing()], 0).await;
        assert!(result.is_err());
        assert_eq!((router, failovers), (0, 0));
    }
}
