//! The router's HTTP interface.
//!
//! | route | what |
//! |---|---|
//! | `GET`/`HEAD /<path>.m3u8` | the origin playlist, rewritten for this viewer |
//! | `GET /r/<path>` | 302 to the chosen edge's URL of the object (signed) |
//! | `GET /steer/<stream>?s=…` | the viewer's Content Steering manifest (JSON) |
//! | `GET /healthz`, `/readyz`, `/metrics` | liveness, readiness, Prometheus |

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use origin_client::path::ObjectKey;
use router_api::session::{self, Session, SessionKey, SteeringTicket};
use router_api::token::{self, KeyRing};

use crate::config::{NoEdge, SegmentUrls};
use crate::counted::Counted;
use crate::error::Error;
use crate::fleet_api::{Current, ExplainQuery, Fleet};
use crate::groups::Groups;
use crate::metrics;
use crate::playlists::{Playlist, Playlists};
use crate::rendered::RenderKey;
use crate::rewrite::{Pathway, PlaylistKind, RenderContext};
use crate::select::{Choice, Request as Pick};
use crate::steer;

/// Signed URLs expire on a grid of this step (plus the token lifetime), so
/// every response within one step names the same URLs: a preload hint and
/// the later `EXT-X-PART` match, and LL-HLS delta updates merge.
pub const TOKEN_EXPIRY_STEP: u64 = 300;

/// Lifetime of signed URLs in live playlists (plus up to one expiry step):
/// a live segment is listed for seconds, and every reload signs anew.
pub const LIVE_TOKEN_TTL: Duration = Duration::from_secs(600);

/// Lifetime of the signed URL a `/r/` redirect hands out: it is followed at once.
pub const REDIRECT_TOKEN_TTL: Duration = Duration::from_secs(120);

/// What the router's handlers share.
#[derive(Debug)]
pub struct RouterState {
    /// Origin playlists as templates.
    pub playlists: Playlists,
    /// The fleet: the current selector, ads, peers.
    pub fleet: Arc<Fleet>,
    /// How viewers are put in groups.
    pub groups: Groups,
    /// Keys for signed segment URLs; `None`: URLs are not signed.
    pub signing: Option<KeyRing>,
    /// Key of viewer sessions (shared by the fleet).
    pub sessions: SessionKey,
    /// Lifetime of signed URLs.
    pub token_ttl: Duration,
    /// Lifetime of a viewer session.
    pub session_max_age: Duration,
    /// What to do when no edge can take a viewer.
    pub no_edge: NoEdge,
    /// Public base URL of the origin (no trailing slash), for the fallback.
    pub origin_public_url: Option<String>,
    /// Where segment URIs point: the edge (with steering pathways) or `/r/`.
    pub segment_urls: SegmentUrls,
    /// Content Steering pathways offered per viewer (0: no steering).
    pub pathways: usize,
    /// `TTL` of steering manifests.
    pub steering_ttl: Duration,
    /// Directories of the media of the media playlists this router served
    /// lately (their signing ACL, without `/` and `*`): what `/r/` serves
    /// to a client without a session.
    pub known_media: moka::sync::Cache<String, ()>,
    /// (viewer, edge) pairs counted toward an edge's load lately.
    pub counted: Counted,
    /// Answers counted by route and status.
    pub answers: metrics::Answers,
}

/// How many viewers [`RouterState::counted`] remembers.
pub const COUNTED_CAPACITY: usize = 500_000;
/// How long a viewer that stopped asking stays counted.
pub const COUNTED_IDLE: Duration = Duration::from_secs(60);

/// A [`RouterState::counted`] set.
pub fn counted() -> Counted {
    Counted::new(COUNTED_CAPACITY, COUNTED_IDLE.as_secs())
}

/// How many media directories [`RouterState::known_media`] remembers.
pub const KNOWN_MEDIA_CAPACITY: u64 = 100_000;
/// How long a media directory stays known after its playlist was served.
pub const KNOWN_MEDIA_TTL: Duration = Duration::from_secs(3600);

/// A [`RouterState::known_media`] cache.
pub fn known_media() -> moka::sync::Cache<String, ()> {
    moka::sync::Cache::builder()
        .max_capacity(KNOWN_MEDIA_CAPACITY)
        .time_to_idle(KNOWN_MEDIA_TTL)
        .build()
}

/// The directory of the stream `key` belongs to for a viewer of `session`:
/// the ancestor directory the session was minted for, else `key`'s own
/// directory.
fn stream_dir<'k>(key: &'k ObjectKey, session: Option<&Session>) -> &'k str {
    session
        .and_then(|s| s.stream_dir(key.as_str()))
        .unwrap_or_else(|| dir_of(key))
}

/// The router's HTTP service: [`app`], behind a front that answers viewers'
/// playlist requests itself.
///
/// A playlist reload is nearly every request a router serves, so it skips
/// what the app's other routes need: axum's route lookup, its boxed and
/// cloned route services, and the CORS layer's per-request header map (the
/// same headers are added, [`runtime::http::add_cors_headers`]). It counts in
/// the same `playlist` series. Everything else, preflights and other methods
/// on playlists included, goes to [`app`].
#[derive(Debug, Clone)]
pub struct Service {
    state: Arc<RouterState>,
    app: Router,
}

impl runtime::server::App for Service {}

/// The router's [`Service`].
pub fn service(state: Arc<RouterState>) -> Service {
    Service {
        app: app(state.clone()),
        state,
    }
}

/// A playlist answer from [`Service`]'s front.
type PlaylistFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>>;

impl<B> tower::Service<axum::http::Request<B>> for Service
where
    Router: tower::Service<axum::http::Request<B>, Response = Response, Error = std::convert::Infallible>,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future =
        futures::future::Either<PlaylistFuture, <Router as tower::Service<axum::http::Request<B>>>::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        tower::Service::<axum::http::Request<B>>::poll_ready(&mut self.app, cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let viewer_playlist = matches!(*request.method(), Method::GET | Method::HEAD)
            && route_label(request.uri().path()) == "playlist";
        if !viewer_playlist {
            return futures::future::Either::Right(self.app.call(request));
        }
        // The body of a GET or HEAD is not read (as in the app).
        let (parts, _) = request.into_parts();
        let state = self.state.clone();
        futures::future::Either::Left(Box::pin(async move {
            let mut response = playlist(State(state.clone()), parts)
                .await
                .unwrap_or_else(IntoResponse::into_response);
            runtime::http::add_cors_headers(response.headers_mut());
            state.answers.count("playlist", response.status().as_u16());
            Ok(response)
        }))
    }
}

/// The router's HTTP app.
pub fn app(state: Arc<RouterState>) -> Router {
    Router::new()
        .route("/r/{*path}", get(redirect))
        .route("/steer/{*stream}", get(steering))
        .route("/api/v1/explain", get(explain))
        .fallback(playlist)
        .with_state(state.clone())
        .merge(crate::fleet_api::routes(state.fleet.clone()))
        .merge(runtime::http::probe_routes(state.clone()))
        .layer(runtime::http::cors())
        .layer(CountAnswersLayer(state))
}

/// Counts answers, preflights included, by route and status (absolute-form
/// targets are refused by `runtime::server::serve`). A plain layer (no boxed
/// future, no clone of the service per request): every request passes it.
#[derive(Debug, Clone)]
struct CountAnswersLayer(Arc<RouterState>);

impl<S> tower::Layer<S> for CountAnswersLayer {
    type Service = CountAnswers<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountAnswers {
            inner,
            state: self.0.clone(),
        }
    }
}

/// See [`CountAnswersLayer`].
#[derive(Debug, Clone)]
struct CountAnswers<S> {
    inner: S,
    state: Arc<RouterState>,
}

impl<S> tower::Service<Request> for CountAnswers<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Counting<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        Counting {
            route: route_label(request.uri().path()),
            state: self.state.clone(),
            answer: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// An answer on its way, counted when it is ready.
    struct Counting<F> {
        route: &'static str,
        state: Arc<RouterState>,
        #[pin]
        answer: F,
    }
}

impl<F, E> std::future::Future for Counting<F>
where
    F: std::future::Future<Output = Result<Response, E>>,
{
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let answer = std::task::ready!(this.answer.poll(cx));
        if let Ok(response) = &answer {
            this.state.answers.count(this.route, response.status().as_u16());
        }
        std::task::Poll::Ready(answer)
    }
}

fn route_label(path: &str) -> &'static str {
    match path {
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        "/metrics" => "metrics",
        p if p.starts_with("/r/") => "redirect",
        p if p.starts_with("/steer/") => "steering",
        "/api/v1/ads" => "ads",
        "/api/v1/edges" => "edges",
        "/api/v1/routers" => "routers",
        "/api/v1/explain" => "explain",
        "/api/v1/events" => "events",
        "/api/v1/scale" => "scale",
        p if p.ends_with(".m3u8") => "playlist",
        _ => "other",
    }
}

/// Splits a request query into the session token and the rest, in order, as
/// sent (of which `Playlists::get` passes only the `_HLS_*` directives on).
/// Borrowed when the session is the only parameter.
fn split_query(query: Option<&str>) -> (Option<&str>, Cow<'_, str>) {
    fn session_of(pair: &str) -> Option<&str> {
        pair.strip_prefix(session::SESSION_PARAM)
            .and_then(|v| v.strip_prefix('='))
    }
    let query = query.unwrap_or("");
    if !query.contains('&') {
        return match session_of(query) {
            Some(value) => (Some(value), Cow::Borrowed("")),
            None => (None, Cow::Borrowed(query)),
        };
    }
    let mut session = None;
    let mut rest = String::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match session_of(pair) {
            Some(value) => session = Some(value),
            None => {
                if !rest.is_empty() {
                    rest.push('&');
                }
                rest.push_str(pair);
            }
        }
    }
    (session, Cow::Owned(rest))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The client's address, as the server recorded it.
fn client_ip(request: &Parts) -> Option<std::net::IpAddr> {
    request
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The directory of a key: the stream of a multivariant playlist.
fn dir_of(key: &ObjectKey) -> &str {
    key.as_str().rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Where the viewer's media goes, with the session that records it.
struct Placement<'a> {
    /// Base URL of the edge (or the origin, in the fallback), no trailing slash.
    base: &'a str,
    /// The edge id recorded in the session (`None` in the fallback).
    edge: Option<&'a str>,
}

impl RouterState {
    /// Whether this router served a media playlist whose media lie under
    /// `dir` or one of its ancestors (not the root).
    fn serves_media_under(&self, dir: &str) -> bool {
        let mut dir = dir;
        while !dir.is_empty() {
            if self.known_media.contains_key(dir) {
                return true;
            }
            dir = dir.rsplit_once('/').map_or("", |(parent, _)| parent);
        }
        false
    }

    /// Whether this is the first media playlist request of the viewer of
    /// `session` on its edge that this router sees lately: a viewer counts
    /// toward its edge's load once, not once per playlist fetch.
    fn first_request_of(&self, session: &Session, now_unix: u64) -> bool {
        let key = (
            session.viewer_id,
            crate::select::hash::stable_hash(session.edge_id.as_bytes()),
        );
        // One lookup under the shard's lock: two reloads at once count
        // once, and each reload keeps the pair from idling out.
        self.counted.first_seen(key, now_unix)
    }

    /// Remembers the media directory of a media playlist served: once per
    /// copy fetched from the origin (a live playlist is fetched every few
    /// seconds, a VOD every `vod_cache`), which keeps it known.
    fn remember_media(&self, playlist: &Playlist) {
        if playlist.remembered.swap(true, Ordering::Relaxed) {
            return;
        }
        let dir = playlist
            .media_acl
            .trim_start_matches('/')
            .trim_end_matches('*')
            .trim_end_matches('/');
        if !dir.is_empty() {
            self.known_media.insert(dir.to_owned(), ());
        }
    }

    /// The session in `token`, if it is genuine, fresh and minted for the
    /// stream `key` lies under (a session of another stream is ignored).
    fn session(&self, token: Option<&str>, key: &ObjectKey, now_unix: u64) -> Option<Session> {
        let session = self
            .sessions
            .decode(token?, now_unix, self.session_max_age.as_secs())?;
        session.covers(key.as_str()).then_some(session)
    }

    /// Chooses where `stream_key`'s media goes for a viewer stuck to `sticky`.
    fn place<'s>(&'s self, current: &'s Current, pick: &Pick<'_>) -> Result<Placement<'s>, Error> {
        match current.pick(pick, Instant::now()) {
            Choice::Edge { index, .. } => {
                let edge = &current.selector.edges()[index];
                metrics::choice(Some(&edge.id));
                Ok(Placement {
                    base: edge.base_url.trim_end_matches('/'),
                    edge: Some(&edge.id),
                })
            }
            Choice::NoEdge => {
                metrics::choice(None);
                match (self.no_edge, self.origin_public_url.as_deref()) {
                    // Not a plain-http origin for an https viewer: no mixed content.
                    (NoEdge::Origin, Some(origin)) if !pick.https || is_https(origin) => Ok(Placement {
                        base: origin,
                        edge: None,
                    }),
                    _ => Err(Error::NoEdge),
                }
            }
        }
    }

    /// The signed-URL query pair for media under `acl`, valid until
    /// `expires_unix`, if signing is on.
    fn media_query(&self, acl: &str, expires_unix: u64) -> Option<String> {
        let ring = self.signing.as_ref()?;
        Some(format!("{}={}", token::TOKEN_PARAM, ring.sign(acl, expires_unix)))
    }

    /// The signed-URL query pair for the media of `playlist` (at `key`, for
    /// a viewer of `session`'s stream), if signing is on: see [`Self::media_grant`].
    fn playlist_media_query(
        &self,
        playlist: &Playlist,
        key: &ObjectKey,
        session: Option<&Session>,
        now_unix: u64,
    ) -> Option<String> {
        let (acl, expires) = self.media_grant(playlist, key, session, now_unix)?;
        self.media_query(&acl, expires)
    }

    /// The ACL and expiry of the signed token for the media of `playlist`
    /// (at `key`, for a viewer of `session`'s stream), if signing is on.
    /// The ACL is the playlist's, but never wider than its stream (the
    /// session's stream directory, else the playlist's own directory): a
    /// root-relative URI elsewhere does not widen the token to the whole
    /// origin. Live playlists get [`LIVE_TOKEN_TTL`], ended ones the
    /// configured lifetime.
    fn media_grant<'p>(
        &self,
        playlist: &'p Playlist,
        key: &ObjectKey,
        session: Option<&Session>,
        now_unix: u64,
    ) -> Option<(Cow<'p, str>, u64)> {
        self.signing.as_ref()?;
        let floor = stream_dir(key, session);
        let acl = &playlist.media_acl;
        let inside = acl
            .strip_prefix('/')
            .and_then(|a| a.strip_suffix('*'))
            .is_some_and(|dir| {
                floor.is_empty() || dir.starts_with(floor) && dir[floor.len()..].starts_with('/')
            });
        let acl = if inside {
            Cow::Borrowed(acl.as_str())
        } else {
            Cow::Owned(token::acl_for_stream(floor))
        };
        let ttl = if playlist.template.is_ended() {
            self.token_ttl
        } else {
            self.token_ttl.min(LIVE_TOKEN_TTL)
        };
        let expires = (now_unix / TOKEN_EXPIRY_STEP + 1) * TOKEN_EXPIRY_STEP + ttl.as_secs();
        Some((acl, expires))
    }
}

async fn playlist(State(state): State<Arc<RouterState>>, request: Parts) -> Result<Response, Error> {
    if !matches!(request.method, Method::GET | Method::HEAD) {
        return Ok((
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD, OPTIONS")],
            "method not allowed\n",
        )
            .into_response());
    }
    let uri = &request.uri;
    let key = ObjectKey::from_request_path(uri.path())?;
    if !key.extension().is_some_and(|e| e.eq_ignore_ascii_case("m3u8")) {
        return Err(Error::BadInput(
            "the router serves playlists (.m3u8); segments come from edges, or through /r/<path>".into(),
        ));
    }
    let (session_token, origin_query) = split_query(uri.query());
    let playlist = state.playlists.get(&key, &origin_query).await?;
    let now_unix = unix_now();
    let session = state.session(session_token, &key, now_unix);

    let current = state.fleet.current();
    let is_master = playlist.template.kind() == PlaylistKind::Multivariant;
    let head = request.method == Method::HEAD;
    if !is_master {
        state.remember_media(&playlist);
    }
    // A media playlist names the session's edge for as long as the router
    // knows its URL, whatever its health: a listed segment keeps its URI,
    // and viewers move by switching pathway (docs/STEERING.md).
    if !is_master
        && let (Some(token), Some(s)) = (session_token, &session)
        && let Some(index) = current.selector.index_of(&s.edge_id)
    {
        let edge = &current.selector.edges()[index];
        if !head && state.first_request_of(s, now_unix) {
            current.count(index, state.playlists.bandwidth_of(&key));
        }
        let placement = Placement {
            base: edge.base_url.trim_end_matches('/'),
            edge: Some(&edge.id),
        };
        return render_media(&state, &playlist, &key, s, &placement, token, now_unix, head);
    }
    // A multivariant playlist places the viewer for the whole stream, counted
    // at its first variant's bandwidth; a media playlist without a usable
    // session is placed on its own, counted at the bandwidth its variant declared.
    let (stream_key, bandwidth_bps) = if is_master {
        (
            dir_of(&key),
            playlist
                .template
                .variants()
                .first()
                .and_then(|v| v.bandwidth)
                .unwrap_or(0),
        )
    } else {
        (key.as_str(), state.playlists.bandwidth_of(&key))
    };
    let pick = Pick {
        stream_key,
        sticky: session.as_ref().map(|s| s.edge_id.as_str()),
        group: state.groups.group_of(&request.headers, client_ip(&request)),
        bandwidth_bps,
        https: viewer_on_https(&request),
    };
    let placement = state.place(&current, &pick)?;
    let viewer_id = session.as_ref().map_or_else(rand::random::<u64>, |s| s.viewer_id);
    // A new session is bound to the stream: the multivariant playlist's
    // directory, or what the old session named for a media playlist.
    let stream = match &session {
        Some(s) if !is_master => s.stream,
        _ => session::stream_id(dir_of(&key)),
    };
    let session_of = |edge: &str| {
        state.sessions.encode(&Session {
            edge_id: edge.to_owned(),
            issued_unix: now_unix,
            viewer_id,
            stream,
        })
    };
    let first = placement.edge.and_then(|id| current.selector.index_of(id));
    if let Some(first) = first
        && is_master
        && state.segment_urls == SegmentUrls::Direct
        && state.pathways > 0
        && !playlist.template.is_steered()
    {
        let mut ranked = Vec::new();
        current.selector.ranked(&pick, Instant::now(), &mut ranked);
        let edges = current.selector.edges();
        let ids: Vec<String> = std::iter::once(first)
            .chain(ranked.into_iter().filter(|&i| i != first))
            .take(state.pathways)
            .map(|i| edges[i].id.clone())
            .collect();
        let queries: Vec<String> = ids
            .iter()
            .map(|id| format!("{}={}", session::SESSION_PARAM, session_of(id)))
            .collect();
        let pathways: Vec<Pathway<'_>> = ids
            .iter()
            .zip(&queries)
            .map(|(id, query)| Pathway {
                id,
                playlist_query: query,
            })
            .collect();
        let ticket = state.sessions.encode_ticket(&SteeringTicket {
            issued_unix: now_unix,
            viewer_id,
            stream,
            pathways: ids.clone(),
        });
        let origin = request_origin(&request);
        let server_uri = format!(
            "{}{}",
            origin.as_deref().unwrap_or_default(),
            steering_uri(dir_of(&key), &ticket)
        );
        let base = origin.and_then(|o| url::Url::parse(&format!("{o}{}", request.uri.path())).ok());
        let started = Instant::now();
        let media_query = state.playlist_media_query(&playlist, &key, session.as_ref(), now_unix);
        let mut body = Vec::new();
        playlist.template.render_pathways(
            placement.base,
            media_query.as_deref(),
            &server_uri,
            base.as_ref(),
            &pathways,
            &mut body,
        );
        metrics::rewrite(started.elapsed());
        return Ok(playlist_response(&playlist, body, head));
    }
    let minted = session_of(placement.edge.unwrap_or_default());
    let signed = state.playlist_media_query(&playlist, &key, session.as_ref(), now_unix);
    let body = render_body(&state, &playlist, &placement, &minted, signed.as_deref());
    Ok(playlist_response(&playlist, body, head))
}

/// Whether `url` is an https URL.
fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// Whether the viewer reached this router over https: over its own TLS, or
/// through a proxy in front that says so with `X-Forwarded-Proto`. Its
/// segment URLs must then be https too (no mixed content).
fn viewer_on_https(request: &Parts) -> bool {
    request.extensions.get::<runtime::server::Https>().is_some()
        || request
            .headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// `scheme://authority` the player reached this router at: the request's
/// authority (HTTP/2) or `Host`, `https` when it came over TLS or a proxy
/// in front says so with `X-Forwarded-Proto`. `None` without a valid one.
fn request_origin(request: &Parts) -> Option<String> {
    let authority = match request.uri.authority() {
        Some(a) => a.clone(),
        None => request
            .headers
            .get(header::HOST)?
            .to_str()
            .ok()?
            .parse::<axum::http::uri::Authority>()
            .ok()?,
    };
    if authority.as_str().contains('@') {
        return None;
    }
    let https = viewer_on_https(request);
    Some(format!("{}://{authority}", if https { "https" } else { "http" }))
}

/// `/steer/{stream}?s={ticket}`: where a viewer's steering manifest is.
fn steering_uri(stream: &str, ticket: &str) -> String {
    format!(
        "/steer/{}?{}={ticket}",
        encode_path(stream),
        session::SESSION_PARAM
    )
}

/// The query of a steering manifest request.
#[derive(Debug, serde::Deserialize)]
struct SteeringQuery {
    /// The viewer's steering ticket.
    s: Option<String>,
    /// The pathway the player is on (RFC 8216bis §7.2).
    #[serde(rename = "_HLS_pathway")]
    pathway: Option<String>,
}

/// `GET /steer/<stream>?s=<ticket>[&_HLS_pathway=<id>]`: the viewer's
/// Content Steering manifest (RFC 8216bis §7.1), ordered by the fleet now.
async fn steering(State(state): State<Arc<RouterState>>, request: Parts) -> Result<Response, Error> {
    let path = request.uri.path().strip_prefix("/steer").unwrap_or("/");
    let stream = ObjectKey::from_request_path(path)?;
    let query: SteeringQuery = serde_urlencoded_query(request.uri.query())?;
    let ticket = query
        .s
        .as_deref()
        .and_then(|t| {
            state
                .sessions
                .decode_ticket(t, unix_now(), state.session_max_age.as_secs())
        })
        .filter(|t| t.stream == session::stream_id(stream.as_str()))
        .ok_or_else(|| {
            Error::BadInput(
                "missing, forged or expired steering ticket (`s`), or one of another stream".into(),
            )
        })?;
    let current_pathway = query.pathway.as_deref().filter(|id| session::valid_edge_id(id));
    let current = state.fleet.current();
    let assigned = current.assigned();
    let pick = Pick {
        stream_key: stream.as_str(),
        sticky: None,
        group: state.groups.group_of(&request.headers, client_ip(&request)),
        bandwidth_bps: 0,
        https: viewer_on_https(&request),
    };
    let plan = steer::plan(
        &current.selector,
        Instant::now(),
        &assigned,
        &pick,
        &ticket.pathways,
        current_pathway,
        state.pathways.max(1),
    );
    metrics::steering(plan.moved.map(|m| m.label()));
    let clones: Vec<serde_json::Value> = plan
        .clones
        .iter()
        .map(|id| {
            serde_json::json!({
                "ID": id,
                "BASE-ID": plan.base,
                "URI-REPLACEMENT": {
                    "PARAMS": { session::SESSION_PARAM: state.sessions.encode(&ticket.session(id)) }
                }
            })
        })
        .collect();
    // Absolute: Shaka Player appends its `_HLS_*` parameters with
    // `new URL(uri)`, which throws on a relative one.
    let reload = format!(
        "{}{}",
        request_origin(&request).unwrap_or_default(),
        steering_uri(stream.as_str(), query.s.as_deref().unwrap_or_default())
    );
    let manifest = serde_json::json!({
        "VERSION": 1,
        "TTL": state.steering_ttl.as_secs().max(1),
        "RELOAD-URI": reload,
        "PATHWAY-PRIORITY": plan.priority,
        "PATHWAY-CLONES": clones,
    });
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
        manifest.to_string(),
    )
        .into_response())
}

/// Reads a query string into `T`, refusing a malformed one with 400.
fn serde_urlencoded_query<T: serde::de::DeserializeOwned>(query: Option<&str>) -> Result<T, Error> {
    let uri: axum::http::Uri = format!("/?{}", query.unwrap_or(""))
        .parse()
        .map_err(|_| Error::BadInput("malformed query".into()))?;
    Query::<T>::try_from_uri(&uri).map(|q| q.0).map_err(Error::from)
}

/// Ready once the router has its fleet view.
impl runtime::http::Probe for RouterState {
    async fn ready(&self) -> Result<(), std::borrow::Cow<'static, str>> {
        if self.fleet.is_ready() {
            Ok(())
        } else {
            Err("waiting for the fleet view of a peer".into())
        }
    }
}

/// `GET /api/v1/explain?path=…&session=…&group=…&bandwidth=…`: the choice a
/// playlist request would get now, with every edge's inputs.
async fn explain(
    State(state): State<Arc<RouterState>>,
    Query(query): Query<ExplainQuery>,
) -> Result<Response, Error> {
    let key = ObjectKey::from_request_path(&query.path)?;
    let session = state.session(query.session.as_deref(), &key, unix_now());
    // Without the playlist at hand, a path of a multivariant playlist is
    // recognised by its name; anything else is placed per rendition.
    let is_master = key.file_name().eq_ignore_ascii_case("master.m3u8");
    let stream_key = if is_master { dir_of(&key) } else { key.as_str() };
    let pick = Pick {
        stream_key,
        sticky: session.as_ref().map(|s| s.edge_id.as_str()),
        group: query.group.as_deref(),
        bandwidth_bps: query
            .bandwidth
            .unwrap_or_else(|| state.playlists.bandwidth_of(&key)),
        https: query.https,
    };
    let current = state.fleet.current();
    let assigned = current.assigned();
    let explanation = current.selector.explain(&pick, Instant::now(), &assigned);
    let chosen = match current.selector.pick(&pick, Instant::now(), &assigned) {
        Choice::Edge { index, .. } => current.selector.edges().get(index).map(|e| e.id.clone()),
        Choice::NoEdge => None,
    };
    let steering = query.ticket.as_deref().map(|ticket| {
        explain_steering(
            &state,
            &current,
            &assigned,
            &pick,
            ticket,
            query.pathway.as_deref(),
        )
    });
    Ok(axum::Json(serde_json::json!({
        "path": query.path,
        "session_valid": session.is_some(),
        "chosen": chosen,
        "explanation": explanation,
        "steering": steering,
    }))
    .into_response())
}

/// The steering plan a viewer with `ticket`, on `pathway`, would get now,
/// with why each of its pathways can or cannot serve.
fn explain_steering(
    state: &RouterState,
    current: &Current,
    assigned: &[u64],
    pick: &Pick<'_>,
    ticket: &str,
    pathway: Option<&str>,
) -> serde_json::Value {
    let Some(ticket) = state
        .sessions
        .decode_ticket(ticket, unix_now(), state.session_max_age.as_secs())
    else {
        return serde_json::json!({ "error": "missing, forged or expired steering ticket" });
    };
    let now = Instant::now();
    let plan = steer::plan(
        &current.selector,
        now,
        assigned,
        pick,
        &ticket.pathways,
        pathway,
        state.pathways.max(1),
    );
    let mut ids: Vec<&str> = ticket.pathways.iter().map(String::as_str).collect();
    ids.extend(plan.clones.iter().copied());
    let pathways: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| {
            let why = match current.selector.index_of(id) {
                Some(i) => current.selector.unavailable(i, now, assigned, pick.https),
                None => Some(crate::select::Unavailable::Stale),
            };
            serde_json::json!({ "pathway": id, "unavailable": why.map(|w| w.label()) })
        })
        .collect();
    serde_json::json!({
        "priority": plan.priority,
        "clones": plan.clones,
        "clone_base": plan.base,
        "moved": plan.moved.map(|m| m.label()),
        "pathways": pathways,
    })
}

/// A media playlist for the viewer of `session` on the edge of `placement`:
/// a rendering kept for the same edge and token when the body does not
/// carry the session (see [`crate::rendered`]), else rendered now.
#[allow(clippy::too_many_arguments)]
fn render_media(
    state: &RouterState,
    playlist: &Playlist,
    key: &ObjectKey,
    session: &Session,
    placement: &Placement<'_>,
    session_value: &str,
    now_unix: u64,
    head: bool,
) -> Result<Response, Error> {
    let grant = state.media_grant(playlist, key, Some(session), now_unix);
    let keep = state.segment_urls == SegmentUrls::Direct && !playlist.template.names_playlists();
    let render_key = RenderKey {
        edge_base: placement.base,
        acl: grant.as_ref().map_or("", |(acl, _)| acl),
        expires: grant.as_ref().map_or(0, |&(_, expires)| expires),
    };
    if keep && let Some(body) = playlist.renderings.get(&render_key) {
        return Ok(playlist_response(playlist, body, head));
    }
    let signed = grant
        .as_ref()
        .and_then(|(acl, expires)| state.media_query(acl, *expires));
    let body = render_body(state, playlist, placement, session_value, signed.as_deref());
    if keep {
        playlist.renderings.insert(&render_key, body.clone());
    }
    Ok(playlist_response(playlist, body, head))
}

/// `playlist` rendered for a viewer on the edge of `placement`, with its
/// session and the signed media query.
fn render_body(
    state: &RouterState,
    playlist: &Playlist,
    placement: &Placement<'_>,
    session_value: &str,
    signed: Option<&str>,
) -> bytes::Bytes {
    let started = Instant::now();
    let playlist_query = format!("{}={session_value}", session::SESSION_PARAM);
    // Redirect mode: media URIs on the router's `/r/`, with the session, so
    // each fetch is sent to the edge chosen then.
    let (edge_base, media_query) = match state.segment_urls {
        SegmentUrls::Direct => (placement.base, signed),
        SegmentUrls::Redirect => ("/r", Some(playlist_query.as_str())),
    };
    let ctx = RenderContext {
        edge_base,
        media_query,
        playlist_query: &playlist_query,
    };
    let mut body = Vec::with_capacity(playlist.template.rendered_len_hint(&ctx));
    playlist.template.render(&ctx, &mut body);
    metrics::rewrite(started.elapsed());
    body.into()
}

/// A rendered playlist as an answer: type, caching, length.
fn playlist_response(playlist: &Playlist, body: impl Into<bytes::Bytes>, head: bool) -> Response {
    let body = body.into();
    let cache_control = match playlist.template.kind() {
        PlaylistKind::Multivariant => "private, no-cache",
        PlaylistKind::Media if playlist.template.is_ended() => "private, max-age=3600",
        PlaylistKind::Media => "private, max-age=1",
    };
    let length = body.len();
    let mut response = if head {
        ().into_response()
    } else {
        body.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(origin_client::media::PLAYLIST_CONTENT_TYPE),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    // A GET's Content-Length is hyper's, from the body; a HEAD's is the GET's.
    if head {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    response
}

async fn redirect(State(state): State<Arc<RouterState>>, request: Parts) -> Result<Response, Error> {
    let path = request.uri.path().strip_prefix("/r").unwrap_or("/");
    let key = ObjectKey::from_request_path(path)?;
    let (session_token, _) = split_query(request.uri.query());
    let now_unix = unix_now();
    let session = state.session(session_token, &key, now_unix);
    let stream = dir_of(&key);
    // Only objects of a stream: one a session of this fleet was minted for,
    // or one whose media playlist this router has served.
    if stream.is_empty() || (session.is_none() && !state.serves_media_under(stream)) {
        return Err(Error::UnknownStream(
            "not an object of a stream this router serves (fetch its playlist first)".into(),
        ));
    }
    let current = state.fleet.current();
    let pick = Pick {
        stream_key: stream,
        sticky: session.as_ref().map(|s| s.edge_id.as_str()),
        group: state.groups.group_of(&request.headers, client_ip(&request)),
        bandwidth_bps: 0,
        https: viewer_on_https(&request),
    };
    let placement = state.place(&current, &pick)?;
    // The token covers the object's rendition directory, briefly.
    let acl = token::acl_for_stream(stream);
    let mut location = format!("{}/{}", placement.base, encode_key(&key));
    if let Some(query) = state.media_query(&acl, now_unix + REDIRECT_TOKEN_TTL.as_secs()) {
        location.push('?');
        location.push_str(&query);
    }
    let location = HeaderValue::from_str(&location)?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
    )
        .into_response())
}

/// A key as a URL path: each segment percent-encoded.
fn encode_key(key: &ObjectKey) -> String {
    encode_path(key.as_str())
}

/// A `/`-separated path with each segment percent-encoded.
fn encode_path(path: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    path.split('/')
        .map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_is_taken_out_of_the_origin_query() {
        let split = |q| {
            let (session, rest) = split_query(q);
            (session, rest.into_owned())
        };
        assert_eq!(split(None), (None, String::new()));
        assert_eq!(split(Some("s=abc")), (Some("abc"), String::new()));
        assert_eq!(split(Some("_HLS_msn=5")), (None, "_HLS_msn=5".to_owned()));
        assert_eq!(
            split(Some("_HLS_msn=5&s=abc&_HLS_part=1&token=x")),
            (Some("abc"), "_HLS_msn=5&_HLS_part=1&token=x".to_owned())
        );
        assert_eq!(split(Some("ss=1&s2=3")), (None, "ss=1&s2=3".to_owned()));
        assert_eq!(split(Some("s2=3")), (None, "s2=3".to_owned()));
    }

    #[test]
    fn keys_are_encoded_for_locations() {
        let key = ObjectKey::from_request_path("/live/a%20b/seg-1.ts").expect("key");
        assert_eq!(encode_key(&key), "live/a%20b/seg-1.ts");
    }
}
