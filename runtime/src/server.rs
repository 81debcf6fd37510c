//! Serving an axum app on a TCP listener until shutdown, with the limits a
//! public server needs: a header read timeout (slowloris), a cap on request
//! head size (431 past it), a cap on the request target (414 past it), a
//! count of open connections with an optional cap ([`Connections`]), and a
//! bounded graceful drain.
//!
//! The listener comes from [`bind`], which takes over a socket handed down by
//! the parent (systemd socket activation) when there is one.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::tls::{PeerCertificate, ServerTls};

/// A client must send its whole request head within this time (by default;
/// [`HEADER_TIMEOUT_ENV`] changes it).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Environment variable that overrides [`HEADER_READ_TIMEOUT`], in
/// milliseconds (100 to 600 000), for every server of the process.
pub const HEADER_TIMEOUT_ENV: &str = "HLSCDN_HEADER_TIMEOUT_MS";
/// A connection on which no request has begun for this long is closed
/// gracefully (by default; [`IDLE_TIMEOUT_ENV`] changes it). Players reload
/// playlists every few seconds, so theirs stay open; a connection a client
/// forgot costs a socket and a task for no longer than this.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Environment variable that overrides [`IDLE_TIMEOUT`], in milliseconds
/// (100 to 600 000), for every server of the process.
pub const IDLE_TIMEOUT_ENV: &str = "HLSCDN_IDLE_TIMEOUT_MS";
/// Most HTTP/2 streams a client may have open at once on one connection
/// (nginx's `http2_max_concurrent_streams`).
pub const H2_MAX_CONCURRENT_STREAMS: u32 = 128;
/// Most HTTP/2 streams a client may reset before the server answered them,
/// pending at once, before it gets `GOAWAY` (rapid reset).
pub const H2_MAX_PENDING_RESETS: usize = 20;
/// Interval of HTTP/2 keep-alive pings, and how long an answer may take
/// before the connection is closed as dead.
pub const H2_KEEPALIVE: Duration = Duration::from_secs(20);
/// Largest request head (request line + headers) accepted, in bytes; an
/// HTTP/2 header list too.
pub const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;
/// Longest request target (path and query) served, in bytes: nginx's default
/// `large_client_header_buffers` size, which every player and CDN in front
/// already fits. Longer targets get 414 before any handler, so no handler,
/// cache key or log line ever holds one. hyper's own limits sit above it:
/// a head past [`MAX_REQUEST_HEAD_BYTES`] gets 431 over HTTP/1.1 (and so does
/// any target longer than hyper's 65 534-byte URI limit); an HTTP/2 header
/// list past [`MAX_REQUEST_HEAD_BYTES`] is refused by hyper.
pub const MAX_REQUEST_TARGET_BYTES: usize = 8 * 1024;
/// How long open connections get to finish after shutdown is asked for.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections closed unanswered because the server held its
/// [`Connections`] limit (all the servers of the process together).
pub const CONNECTIONS_REFUSED: &str = "hlscdn_server_connections_refused_total";

/// The open connections of one server, and the most it keeps open at once.
///
/// Cheap to clone: every clone is a handle on the same count, which
/// [`serve`] keeps and anyone may read (the edge reports it in its ads). A
/// connection counts from its accept until it is closed, idle keep-alive
/// ones included, as each holds a socket and a task; an HTTP/2 connection
/// counts once, whatever its streams. `Default` has no limit.
#[derive(Debug, Clone, Default)]
pub struct Connections(Arc<Count>);

#[derive(Debug, Default)]
struct Count {
    limit: Option<u64>,
    open: AtomicU64,
    refused: AtomicU64,
}

impl Connections {
    /// A count whose server keeps at most `limit` connections open (none: no limit).
    pub fn new(limit: Option<u64>) -> Self {
        Connections(Arc::new(Count {
            limit,
            ..Count::default()
        }))
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.0.open.load(Ordering::Relaxed)
    }

    /// Connections refused so far for want of room.
    pub fn refused(&self) -> u64 {
        self.0.refused.load(Ordering::Relaxed)
    }

    /// The most connections kept open at once.
    pub fn limit(&self) -> Option<u64> {
        self.0.limit
    }

    /// A place for one more connection, held until the [`Slot`] is dropped;
    /// `None` (and one more refusal counted) when the limit is reached.
    fn admit(&self) -> Option<Slot> {
        let limit = self.0.limit.unwrap_or(u64::MAX);
        match self
            .0
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            }) {
            Ok(_) => Some(Slot(self.clone())),
            Err(_) => {
                self.0.refused.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

/// One open connection's place in a [`Connections`] count, given back when
/// dropped (when the connection's task ends, however it ends).
#[derive(Debug)]
struct Slot(Connections);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The listener a server runs on: the socket its parent handed down when
/// there is one (systemd socket activation: `LISTEN_FDS=1`, the listening
/// socket as file descriptor 3, `LISTEN_PID` this process or unset), else a
/// new one bound to `addr`.
///
/// A parent that holds the socket (systemd with a `.socket` unit) keeps the
/// port through restarts, connections waiting in its backlog meanwhile; one
/// that binds the sockets of several servers first (the integration tests)
/// can tell each the others' addresses before any starts. The configured
/// `addr` is then not used. More than one inherited socket is an error, as
/// is one that is not a TCP socket; it must be listening.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let mut inherited = listenfd::ListenFd::from_env();
    let handed_down = match inherited.len() {
        0 => None,
        1 => inherited.take_tcp_listener(0)?,
        n => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("LISTEN_FDS={n}: one listening socket is served, not {n}"),
            ));
        }
    };
    let Some(listener) = handed_down else {
        return TcpListener::bind(addr).await;
    };
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    tracing::info!(
        addr = %listener.local_addr()?,
        configured = %addr,
        "serving on the socket handed down by the parent (LISTEN_FDS); the configured address is not bound"
    );
    Ok(listener)
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open
/// connections finish for at most [`DRAIN_TIMEOUT`]. Every connection is
/// counted in `connections`. With `tls`, every connection is TLS (HTTP/2 or
/// HTTP/1.1 as ALPN chose); without, HTTP/1.1, or HTTP/2 with prior
/// knowledge (h2c). Requests carry their client's address
/// ([`ConnectInfo`]) and, over TLS, [`Https`] and the client's verified
/// certificate ([`PeerCertificate`]) when it sent one.
///
/// Past the limit of `connections`, a new connection is accepted and closed
/// at once, unanswered, and counted in [`CONNECTIONS_REFUSED`]; it is not
/// left waiting in the kernel's backlog (nginx's and HAProxy's way), as a
/// live viewer is better served by a fast failure it retries elsewhere
/// (hls.js moves to its next pathway, the router to another edge) than by a
/// connection that hangs until the player's timeout; and it is not answered
/// 503, which would mean holding the slot until a request head arrives (up
/// to the header timeout, the very cost the limit bounds) and racing the
/// close against the unread request. Envoy's connection limits do the same
/// (`downstream_cx_overflow`). Health checks and `/metrics` share the limit.
///
/// A connection must finish its TLS handshake and send its first request
/// within the header timeout, and is closed gracefully (HTTP/2 `GOAWAY`;
/// HTTP/1.1 after the response in progress) once no request has begun on it
/// for the idle timeout ([`IDLE_TIMEOUT`]); responses in progress, such as
/// event streams, are never cut by it.
///
/// Prints `listening on http://ADDR` (`https://` with `tls`) on stdout once
/// connections are accepted, so scripts and tests that bind port 0 can find
/// the address.
pub async fn serve<S>(
    listener: TcpListener,
    tls: Option<ServerTls>,
    app: S,
    connections: Connections,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    S: App,
{
    let invalid = |e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let timeouts = Timeouts {
        header: header_read_timeout(std::env::var(HEADER_TIMEOUT_ENV).ok().as_deref()).map_err(invalid)?,
        idle: idle_timeout(std::env::var(IDLE_TIMEOUT_ENV).ok().as_deref()).map_err(invalid)?,
    };
    let app = tower::Layer::layer(&CheckTargetLayer, app);
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("listening on {scheme}://{addr}");
    tracing::info!(%addr, scheme, "listening");
    let acceptor = tls.as_ref().map(ServerTls::acceptor);
    // Certificate rotation: checked while the server runs, not after.
    let _watch = tls.map(|tls| AbortOnDrop(tokio::spawn(tls.watch())));

    let builder = Arc::new(connection_builder(timeouts.header));
    let (closing, _) = tokio::sync::watch::channel(false);
    // Each connection task holds a sender; the drain ends when all are dropped.
    let (open, mut drained) = tokio::sync::mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    let refused = metrics::counter!(CONNECTIONS_REFUSED);
    refused.increment(0);
    // Logged when refusing starts and stops, not for every connection.
    let mut refusing = false;

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
        let Some(slot) = connections.admit() else {
            refused.increment(1);
            if !refusing {
                let limit = connections.limit();
                tracing::warn!(?limit, "connection limit reached: closing new connections");
                refusing = true;
            }
            drop(stream);
            continue;
        };
        if refusing {
            tracing::info!(
                open = connections.open(),
                "below the connection limit: accepting again"
            );
            refusing = false;
        }
        let _ = stream.set_nodelay(true);
        let accepted = Accepted {
            peer,
            app: app.clone(),
            builder: builder.clone(),
            timeouts,
            closing: closing.subscribe(),
        };
        let acceptor = acceptor.clone();
        let open = open.clone();
        tokio::spawn(async move {
            // Dropped when the connection ends, however it ends.
            let _held = (slot, open);
            let Some(acceptor) = acceptor else {
                return accepted.run(stream, None).await;
            };
            match tokio::time::timeout(timeouts.header, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let client = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|cert| PeerCertificate(cert.clone().into_owned()));
                    accepted.run(stream, Some(client)).await;
                }
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => {
                    tracing::debug!(%peer, "no TLS handshake within the header timeout: connection closed")
                }
            }
        });
    }

    drop((listener, open));
    let _ = closing.send(true);
    tracing::info!("shutting down: draining open connections");
    if tokio::time::timeout(DRAIN_TIMEOUT, drained.recv()).await.is_err() {
        tracing::warn!("drain timed out; closing remaining connections");
    }
    Ok(())
}

/// Marks a request that came over TLS, for handlers that write absolute
/// URLs (`https://` for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Https;

/// The header and idle timeouts of a server's connections.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    header: Duration,
    idle: Duration,
}

/// hyper's settings for every connection: HTTP/1.1 and HTTP/2 (by ALPN
/// over TLS, by the client's preface on plain TCP) with their limits.
fn connection_builder(header_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        // A client that closes its side right after sending a request (ffmpeg
        // does, for HLS PUTs and DELETEs) still has that request carried out.
        .half_close(true)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
        .max_header_list_size(MAX_REQUEST_HEAD_BYTES as u32)
        // Rapid reset (CVE-2023-44487): a client whose streams are reset
        // before they are answered past this count gets GOAWAY.
        .max_pending_accept_reset_streams(H2_MAX_PENDING_RESETS)
        .keep_alive_interval(H2_KEEPALIVE)
        .keep_alive_timeout(H2_KEEPALIVE);
    builder
}

/// What [`serve`] serves: an [`axum::Router`], or a service in front of one
/// that answers some requests itself (which implements this trait too).
pub trait App:
    tower::Service<
        axum::http::Request<hyper::body::Incoming>,
        Response = Response,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl App for axum::Router {}

impl<S: App> App for CheckTarget<S> {}

/// A connection accepted and admitted, about to be served.
struct Accepted<S> {
    peer: SocketAddr,
    app: S,
    builder: Arc<auto::Builder<TokioExecutor>>,
    timeouts: Timeouts,
    closing: tokio::sync::watch::Receiver<bool>,
}

impl<S: App> Accepted<S> {
    /// Serves requests on `io` until the client closes, the connection
    /// stays idle past the timeout, or the server drains. `tls` is `Some`
    /// over TLS, with the client's certificate when it sent one.
    async fn run<I>(mut self, io: I, tls: Option<Option<PeerCertificate>>)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let peer = self.peer;
        let started = tokio::time::Instant::now();
        // Milliseconds from `started` to the start of the last request, plus
        // one (0: no request yet).
        let last_request = Arc::new(AtomicU64::new(0));
        let seen = last_request.clone();
        // The first request moves the deadline from the header timeout to the
        // idle timeout, which may be sooner; later ones only push it back.
        let first_request = Arc::new(tokio::sync::Notify::new());
        let first_seen = first_request.clone();
        let service = TowerToHyperService::new(self.app.map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                let since = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
                if seen.swap(since + 1, Ordering::Relaxed) == 0 {
                    first_seen.notify_one();
                }
                let extensions = request.extensions_mut();
                // Handlers that need the client's address read `ConnectInfo`.
                extensions.insert(ConnectInfo(peer));
                if let Some(client) = &tls {
                    extensions.insert(Https);
                    if let Some(cert) = client {
                        extensions.insert(cert.clone());
                    }
                }
                request
            },
        ));
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service);
        let mut conn = std::pin::pin!(conn);
        let mut closing = false;
        let ended = loop {
            // hyper's header timeout starts once the protocol is known; until
            // then (a client that sends nothing, or an HTTP/2 preface and
            // nothing after it) the connection would be held for ever. So the
            // first request must arrive within the header timeout too.
            let deadline = |last: u64| match last {
                0 => started + self.timeouts.header,
                last => started + Duration::from_millis(last - 1) + self.timeouts.idle,
            };
            tokio::select! {
                ended = conn.as_mut() => break ended,
                () = first_request.notified(), if !closing => {}
                _ = self.closing.changed(), if !closing => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = tokio::time::sleep_until(deadline(last_request.load(Ordering::Relaxed))), if !closing => {
                    // Requests may have begun since this sleep started: the
                    // deadline is worked out again from the latest one.
                    let last = last_request.load(Ordering::Relaxed);
                    if last == 0 {
                        tracing::debug!(%peer, "no request within the header timeout: connection closed");
                        return;
                    }
                    if tokio::time::Instant::now() >= deadline(last) {
                        tracing::debug!(%peer, "idle: connection closed");
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
            }
        };
        if let Err(error) = ended {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Checks every request target before any handler:
/// - longer than [`MAX_REQUEST_TARGET_BYTES`]: 414 (the outermost check);
/// - absolute-form (`GET http://host/…`) or authority-form (`CONNECT
///   host:443`): 400, as no server here is a proxy, and a handler must
///   never mistake another host for its own. HTTP/2 requests always carry a
///   scheme and an authority (`:scheme`, `:authority`; the target is
///   `:path`), so only `CONNECT` is refused there.
///
/// A plain layer (no boxed future, no clone of the service per request):
/// every request of every server passes it.
#[derive(Debug, Clone, Copy)]
struct CheckTargetLayer;

impl<S> tower::Layer<S> for CheckTargetLayer {
    type Service = CheckTarget<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CheckTarget { inner }
    }
}

/// See [`CheckTargetLayer`].
#[derive(Debug, Clone)]
struct CheckTarget<S> {
    inner: S,
}

impl<S, B> tower::Service<axum::http::Request<B>> for CheckTarget<S>
where
    S: tower::Service<axum::http::Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = futures::future::Either<std::future::Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        match refusal(&request) {
            Some(refused) => futures::future::Either::Left(std::future::ready(Ok(refused))),
            None => futures::future::Either::Right(self.inner.call(request)),
        }
    }
}

/// The answer to a request whose target is refused (see [`CheckTargetLayer`]).
fn refusal<B>(request: &axum::http::Request<B>) -> Option<Response> {
    if target_too_long(request.uri()) {
        return Some(
            (
                StatusCode::URI_TOO_LONG,
                format!("request targets longer than {MAX_REQUEST_TARGET_BYTES} bytes are not served\n"),
            )
                .into_response(),
        );
    }
    let proxy_form = if request.version() >= axum::http::Version::HTTP_2 {
        request.method() == axum::http::Method::CONNECT
    } else {
        request.uri().scheme().is_some() || request.uri().authority().is_some()
    };
    proxy_form.then(|| {
        (
            StatusCode::BAD_REQUEST,
            "absolute-form request targets are not served\n",
        )
            .into_response()
    })
}

/// Whether the path and query of `uri` exceed [`MAX_REQUEST_TARGET_BYTES`].
fn target_too_long(uri: &axum::http::Uri) -> bool {
    uri.path_and_query().map_or(0, |p| p.as_str().len()) > MAX_REQUEST_TARGET_BYTES
}

/// The header read timeout: [`HEADER_READ_TIMEOUT`], or the value of
/// [`HEADER_TIMEOUT_ENV`] when it is set.
pub fn header_read_timeout(env: Option<&str>) -> Result<Duration, String> {
    millis_from_env(env, HEADER_READ_TIMEOUT, HEADER_TIMEOUT_ENV)
}

/// The idle timeout: [`IDLE_TIMEOUT`], or the value of [`IDLE_TIMEOUT_ENV`]
/// when it is set.
pub fn idle_timeout(env: Option<&str>) -> Result<Duration, String> {
    millis_from_env(env, IDLE_TIMEOUT, IDLE_TIMEOUT_ENV)
}

/// A timeout of `default`, or the milliseconds (100 to 600 000) of the
/// variable `name` when it is set to `env`.
fn millis_from_env(env: Option<&str>, default: Duration, name: &str) -> Result<Duration, String> {
    let Some(raw) = env else {
        return Ok(default);
    };
    match raw.trim().parse::<u64>() {
        Ok(ms @ 100..=600_000) => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "`{name}` must be a number of milliseconds from 100 to 600000 (got {raw:?})"
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
    fn connections_are_counted_up_to_the_limit() {
        let connections = Connections::new(Some(2));
        let a = connections.admit().expect("room for one");
        let b = connections.admit().expect("room for two");
        assert_eq!(connections.open(), 2);
        assert!(connections.admit().is_none(), "full");
        assert_eq!((connections.open(), connections.refused()), (2, 1));
        drop(a);
        assert_eq!(connections.open(), 1, "a closed connection gives its place back");
        let c = connections.clone().admit().expect("room again");
        assert_eq!(connections.open(), 2, "clones share the count");
        drop((b, c));
        assert_eq!(connections.open(), 0);

        let unlimited = Connections::default();
        let slots: Vec<Slot> = (0..1000).filter_map(|_| unlimited.admit()).collect();
        assert_eq!((unlimited.open(), unlimited.refused()), (1000, 0));
        drop(slots);
        assert_eq!(unlimited.open(), 0);
    }

    /// A GET of `/` on `stream`: the status line, or `None` when the server
    /// closed the connection instead of answering.
    async fn status_line(stream: &mut tokio::net::TcpStream) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .ok()?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => return None,
            }
        }
        Some(String::from_utf8_lossy(&head).trim_end().to_owned())
    }

    #[tokio::test]
    async fn connections_past_the_limit_are_closed_at_once_and_counted() {
        use tokio::io::AsyncReadExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Connections::new(Some(1));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let server = tokio::spawn(serve(listener, None, app, connections.clone(), async {
            let _ = stopped.await;
        }));

        let mut held = tokio::net::TcpStream::connect(addr).await.expect("connect");
        assert_eq!(status_line(&mut held).await.as_deref(), Some("HTTP/1.1 200 OK"));
        assert_eq!(connections.open(), 1, "an idle keep-alive connection counts");

        let mut extra = tokio::net::TcpStream::connect(addr)
            .await
            .expect("the kernel accepts");
        let closed = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut [0u8; 1])).await;
        assert!(
            matches!(closed, Ok(Ok(0) | Err(_))),
            "closed at once, unanswered: {closed:?}"
        );
        assert_eq!((connections.open(), connections.refused()), (1, 1));

        drop(held);
        let next = loop {
            let mut next = tokio::net::TcpStream::connect(addr).await.expect("connect");
            if let Some(line) = status_line(&mut next).await {
                assert_eq!(line, "HTTP/1.1 200 OK");
                break next;
            }
            // The server may not have seen the first connection close yet.
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(connections.open(), 1);
        drop(next);
        let _ = stop.send(());
        server.await.expect("joined").expect("served");
        assert_eq!(connections.open(), 0, "every place given back");
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
