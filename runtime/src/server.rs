//! Serving an axum app on a TCP listener until shutdown, with the limits a
//! public server needs: a header read timeout (slowloris), a cap on request
//! head size (431 past it), a cap on the request target (414 past it), and a
//! bounded graceful drain.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::ServiceExt;

/// A client must send its whole request head within this time (by default;
/// [`HEADER_TIMEOUT_ENV`] changes it).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Environment variable that overrides [`HEADER_READ_TIMEOUT`], in
/// milliseconds (100 to 600 000), for every server of the process.
pub const HEADER_TIMEOUT_ENV: &str = "HLSCDN_HEADER_TIMEOUT_MS";
/// Largest request head (request line + headers) accepted, in bytes.
pub const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;
/// Longest request target (path and query) served, in bytes: nginx's default
/// `large_client_header_buffers` size, which every player and CDN in front
/// already fits. Longer targets get 414 before any handler, so no handler,
/// cache key or log line ever holds one. hyper's own limits sit above it:
/// a head past [`MAX_REQUEST_HEAD_BYTES`] gets 431 over HTTP/1.1 (and so does
/// any target longer than hyper's 65 534-byte URI limit); an HTTP/2 header
/// list past 16 KiB is refused by hyper.
pub const MAX_REQUEST_TARGET_BYTES: usize = 8 * 1024;
/// How long open connections get to finish after shutdown is asked for.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` resolves, then lets open
/// connections finish for at most [`DRAIN_TIMEOUT`].
///
/// Prints `listening on http://ADDR` on stdout once connections are
/// accepted, so scripts and tests that bind port 0 can find the address.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let header_timeout = header_read_timeout(std::env::var(HEADER_TIMEOUT_ENV).ok().as_deref())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let app = app
        .layer(middleware::from_fn(origin_form_only))
        .layer(middleware::from_fn(bounded_target));
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    tracing::info!(%addr, "listening");

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        // A client that closes its side right after sending a request (ffmpeg
        // does, for HLS PUTs and DELETEs) still has that request carried out.
        .half_close(true)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let first_request = Arc::new(Notify::new());
        let request_seen = first_request.clone();
        // Handlers that need the client's address read `ConnectInfo`.
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request_seen.notify_one();
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            // hyper's header timeout starts once the protocol is known; until
            // then (a client that sends nothing, or an HTTP/2 preface and
            // nothing after it) the connection would be held for ever. So the
            // first request must arrive within the header timeout too.
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                arrived = tokio::time::timeout(header_timeout, first_request.notified()) => match arrived {
                    Ok(()) => conn.as_mut().await,
                    Err(_) => {
                        tracing::debug!(%peer, "no request within the header timeout: connection closed");
                        return;
                    }
                },
            };
            if let Err(error) = ended {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }

    drop(listener);
    tracing::info!("shutting down: draining open connections");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timed out; closing remaining connections");
    }
    Ok(())
}

/// Refuses absolute-form (`GET http://host/…`) and authority-form
/// (`CONNECT host:443`) targets with 400 before any handler: no server here
/// is a proxy, and a handler must never mistake another host for its own.
async fn origin_form_only(request: Request, next: Next) -> Response {
    if request.uri().scheme().is_some() || request.uri().authority().is_some() {
        return (
            StatusCode::BAD_REQUEST,
            "absolute-form request targets are not served\n",
        )
            .into_response();
    }
    next.run(request).await
}

/// Refuses request targets longer than [`MAX_REQUEST_TARGET_BYTES`] with 414
/// (the outermost check: nothing else runs for them).
async fn bounded_target(request: Request, next: Next) -> Response {
    if target_too_long(request.uri()) {
        return (
            StatusCode::URI_TOO_LONG,
            format!("request targets longer than {MAX_REQUEST_TARGET_BYTES} bytes are not served\n"),
        )
            .into_response();
    }
    next.run(request).await
}

/// Whether the path and query of `uri` exceed [`MAX_REQUEST_TARGET_BYTES`].
fn target_too_long(uri: &axum::http::Uri) -> bool {
    uri.path_and_query().map_or(0, |p| p.as_str().len()) > MAX_REQUEST_TARGET_BYTES
}

/// The header read timeout: [`HEADER_READ_TIMEOUT`], or the value of
/// [`HEADER_TIMEOUT_ENV`] when it is set.
pub fn header_read_timeout(env: Option<&str>) -> Result<Duration, String> {
    let Some(raw) = env else {
        return Ok(HEADER_READ_TIMEOUT);
    };
    match raw.trim().parse::<u64>() {
        Ok(ms @ 100..=600_000) => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "`{HEADER_TIMEOUT_ENV}` must be a number of milliseconds from 100 to 600000 (got {raw:?})"
        )),
    }
}

/// Resolves on the first SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_capped_at_eight_kib() {
        let target = |len: usize| -> axum::http::Uri {
            format!("/a.m3u8?{}", "x".repeat(len - "/a.m3u8?".len()))
                .parse()
                .expect("uri")
        };
        assert!(!target_too_long(&target(MAX_REQUEST_TARGET_BYTES)));
        assert!(target_too_long(&target(MAX_REQUEST_TARGET_BYTES + 1)));
        assert!(!target_too_long(&"/healthz".parse().expect("uri")));
    }

    #[test]
    fn the_header_timeout_can_be_set_from_the_environment() {
        assert_eq!(header_read_timeout(None), Ok(HEADER_READ_TIMEOUT));
        assert_eq!(header_read_timeout(Some("2500")), Ok(Duration::from_millis(2500)));
        for bad in ["0", "99", "600001", "ten", "", "-5"] {
            let error = header_read_timeout(Some(bad)).err();
            assert!(error.is_some_and(|e| e.contains(HEADER_TIMEOUT_ENV)), "{bad:?}");
        }
    }
}
