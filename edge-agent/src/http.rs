//! The edge's HTTP interface.
//!
//! | route | what |
//! |---|---|
//! | `GET`/`HEAD /<key>` | an origin object, from the cache; `Range` (206/416), `If-None-Match` (304), `If-Range` |
//! | `OPTIONS /<any path>` | CORS preflight ([`runtime::http::cors`]) |
//! | `POST /admin/drain` | start draining; `Authorization: Bearer <fleet token>`, 401 otherwise |
//! | `GET /healthz`, `/readyz`, `/metrics` | liveness; 503 `draining` while draining; Prometheus |
//!
//! The order of work for an object: absolute-form target (400), method,
//! path normalization (400), token check when signing is on (403/410), and
//! only then the cache and, on a miss, the origin. The token is never part
//! of the cache key nor of the origin request; for media the query is
//! dropped altogether (objects are cached by path), for playlists only the
//! `_HLS_*` delivery directives (`_HLS_msn`, `_HLS_part`, `_HLS_skip`) are
//! kept in the key and passed to the origin, so `?b=N` cannot bust the cache.
//!
//! Every answer carries CORS headers; object answers carry `X-Cache: HIT`
//! or `MISS`, and cached objects an `Age`.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::TryStreamExt;
use origin_client::media::{self, Kind};
use origin_client::path::ObjectKey;
use origin_client::range::{self, RangeRequest, Resolved};
use router_api::token::{KeyRing, split_token};
use runtime::auth::Bearer;
use runtime::secret::Secret;

use crate::cache::{Cache, Cached, FetchSpec, Fill, Lookup, Object};
use crate::drain::Drain;
use crate::metrics::{Counters, Published};
use crate::{Error, Result, passthrough};

/// `X-Cache`.
pub static X_CACHE: HeaderName = HeaderName::from_static("x-cache");
const HIT: HeaderValue = HeaderValue::from_static("HIT");
const MISS: HeaderValue = HeaderValue::from_static("MISS");
const BYTES: HeaderValue = HeaderValue::from_static("bytes");

/// What the handlers share.
#[derive(Debug)]
pub struct AppState {
    /// The object cache (and through it, the origin).
    pub cache: Cache,
    /// Segment URL verification keys; `None`: signing is off.
    pub keys: Option<KeyRing>,
    /// Serving counters.
    pub counters: Arc<Counters>,
    /// Their Prometheus series.
    pub published: Arc<Published>,
    /// Drain state.
    pub drain: Arc<Drain>,
    /// Fleet token for `/admin/drain`.
    pub fleet_token: Option<Secret>,
    /// The edge's own credential, also accepted on `/admin/drain`.
    pub credential: Option<Secret>,
}

/// The edge's router.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/admin/drain", post(admin_drain))
        .fallback(object)
        .with_state(state.clone())
        .merge(runtime::http::probe_routes(state.clone()))
        .layer(runtime::http::cors())
        .layer(middleware::from_fn_with_state(state, count_answers))
}

/// Counts answers, preflights included (absolute-form targets are refused
/// by `runtime::server::serve`).
async fn count_answers(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    state.counters.count_status(response.status());
    response
}

/// Ready unless draining; `/metrics` publishes the serving counters and
/// the cache's size first.
impl runtime::http::Probe for AppState {
    async fn ready(&self) -> std::result::Result<(), std::borrow::Cow<'static, str>> {
        if self.drain.is_draining() {
            Err("draining".into())
        } else {
            Ok(())
        }
    }

    fn refresh(&self) {
        self.published.publish(&self.counters);
        self.published.cache_bytes.set(self.cache.weighted_size() as f64);
        self.published.cache_objects.set(self.cache.entry_count() as f64);
    }
}

async fn admin_drain(State(state): State<Arc<AppState>>, bearer: Option<Bearer>) -> Response {
    let authorized =
        bearer.is_some_and(|b| b.is_any([&state.fleet_token, &state.credential].into_iter().flatten()));
    if !authorized {
        return Error::Unauthorized.into_response();
    }
    state.drain.start(Instant::now(), "admin request");
    (StatusCode::ACCEPTED, "draining\n").into_response()
}

async fn object(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    match serve(&state, &parts).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// What a request asks beyond its path.
struct Facts<'a> {
    head: bool,
    range: Option<&'a HeaderValue>,
    if_range: Option<&'a HeaderValue>,
    if_none_match: Option<&'a HeaderValue>,
}

impl<'a> Facts<'a> {
    fn new(headers: &'a HeaderMap, head: bool) -> Self {
        Facts {
            head,
            range: headers.get(header::RANGE),
            if_range: headers.get(header::IF_RANGE),
            if_none_match: headers.get(header::IF_NONE_MATCH),
        }
    }

    /// The range asked for, unless `If-Range` names another version (or a
    /// date, which the edge cannot compare): then the whole object.
    fn range_request(&self, etag: Option<&HeaderValue>) -> RangeRequest {
        let Some(raw) = self.range.and_then(|v| v.to_str().ok()) else {
            return RangeRequest::Full;
        };
        if let Some(if_range) = self.if_range
            && etag.is_none_or(|e| e != if_range || e.as_bytes().starts_with(b"W/"))
        {
            return RangeRequest::Full;
        }
        range::parse(raw)
    }

    /// Status and bytes to send of an object of `size` bytes.
    fn resolve(&self, size: u64, etag: Option<&HeaderValue>) -> Result<(StatusCode, Range<u64>)> {
        match range::resolve(self.range_request(etag), size) {
            Resolved::Full => Ok((StatusCode::OK, 0..size)),
            Resolved::Partial(r) => Ok((StatusCode::PARTIAL_CONTENT, r)),
            Resolved::Unsatisfiable => Err(Error::RangeNotSatisfiable { size }),
        }
    }

    /// `If-None-Match` matches `etag` (weak comparison, RFC 9110 §13.1.2).
    fn not_modified(&self, etag: Option<&HeaderValue>) -> bool {
        let (Some(list), Some(etag)) = (self.if_none_match.and_then(|v| v.to_str().ok()), etag) else {
            return false;
        };
        let Ok(etag) = etag.to_str() else {
            return false;
        };
        let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
        list.split(',').any(|t| t.trim() == "*" || bare(t) == bare(etag))
    }
}

async fn serve(state: &AppState, parts: &Parts) -> Result<Response> {
    let head = match parts.method {
        Method::GET => false,
        Method::HEAD => true,
        _ => return Err(Error::MethodNotAllowed),
    };
    let key = ObjectKey::from_request_path(parts.uri.path()).map_err(|e| Error::BadInput(e.to_string()))?;
    Counters::add(&state.counters.requests, 1);
    if state.drain.is_draining() {
        state.drain.touch(Instant::now());
    }
    let (token, rest) = split_token(parts.uri.query().unwrap_or(""));
    if let Some(keys) = &state.keys {
        let path = format!("/{}", key.as_str());
        keys.verify(token.unwrap_or(""), &path, unix_now())?;
    }
    let (kind, content_type) = media::classify(key.extension());
    let facts = Facts::new(&parts.headers, head);
    // Playlists keep their `_HLS_*` directives (key and origin request);
    // media are cached by path alone.
    let query = (kind == Kind::Playlist)
        .then(|| origin_client::query::playlist_query(&rest))
        .filter(|q| !q.is_empty());
    let cache_key: Cow<'_, str> = match &query {
        Some(q) => Cow::Owned(format!("{}?{q}", key.as_str())),
        None => Cow::Borrowed(key.as_str()),
    };
    let lookup = state
        .cache
        .lookup(&cache_key, || FetchSpec {
            key: key.clone(),
            query: query.clone(),
            kind,
            content_type,
        })
        .await;
    let counters = &state.counters;
    match lookup {
        Lookup::Hit(Cached::Object(object)) => {
            Counters::add(&counters.hits, 1);
            answer_object(state, &facts, &object, HIT)
        }
        Lookup::OverBudget => Err(Error::OverBudget),
        Lookup::Hit(Cached::TooLarge) => {
            Counters::add(&counters.misses, 1);
            pass_through(state, &facts, &key, content_type).await
        }
        Lookup::Miss { fill, leader } => {
            Counters::add(
                if leader {
                    &counters.misses
                } else {
                    &counters.collapsed
                },
                1,
            );
            match answer_fill(state, &facts, &key, kind, content_type, fill).await {
                Err(Error::TooLarge { .. }) => pass_through(state, &facts, &key, content_type).await,
                Err(error) => Ok(with_x_cache(error.into_response(), MISS)),
                ok => ok,
            }
        }
    }
}

/// Serves a complete object: no copy, the body is a slice of the cached `Bytes`.
fn answer_object(
    state: &AppState,
    facts: &Facts<'_>,
    object: &Object,
    x_cache: HeaderValue,
) -> Result<Response> {
    let size = object.body.len() as u64;
    let etag = object.etag.as_ref();
    let mut headers = HeaderMap::with_capacity(12);
    headers.insert(header::CONTENT_TYPE, object.content_type.clone());
    headers.insert(header::CACHE_CONTROL, object.cache_control.clone());
    if let Some(etag) = etag {
        headers.insert(header::ETAG, etag.clone());
    }
    headers.insert(header::ACCEPT_RANGES, BYTES);
    headers.insert(X_CACHE.clone(), x_cache);
    headers.insert(
        header::AGE,
        HeaderValue::from(object.stored_at.elapsed().as_secs()),
    );
    if facts.not_modified(etag) {
        return Ok(response(StatusCode::NOT_MODIFIED, headers, Body::empty()));
    }
    let (status, bytes) = facts.resolve(size, etag)?;
    if status == StatusCode::OK {
        headers.insert(header::CONTENT_LENGTH, object.content_length.clone());
    } else {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.end - bytes.start));
        headers.insert(header::CONTENT_RANGE, content_range(&bytes, size));
    }
    let body = if facts.head {
        Body::empty()
    } else {
        count_out(state, &object.stream, bytes.end - bytes.start);
        // `bytes` lies within `size`, which came from a usize.
        Body::from(object.body.slice(bytes.start as usize..bytes.end as usize))
    };
    Ok(response(status, headers, body))
}

/// Serves from an origin fetch in progress: headers as soon as the origin
/// answered, the body as it arrives.
async fn answer_fill(
    state: &AppState,
    facts: &Facts<'_>,
    key: &ObjectKey,
    kind: Kind,
    content_type: &'static str,
    fill: Arc<Fill>,
) -> Result<Response> {
    let head = fill.head().await?;
    // Playlists: `Cache-Control` depends on the body (live or VOD). Ranges
    // and HEAD of a body of unknown length: the length is needed first.
    let whole = kind == Kind::Playlist || (head.size.is_none() && (facts.head || facts.range.is_some()));
    if whole {
        return match fill.done().await? {
            Cached::Object(object) => answer_object(state, facts, &object, MISS),
            Cached::TooLarge => Err(Error::TooLarge { limit: 0 }),
        };
    }
    let etag = head.etag.as_ref();
    let mut headers = HeaderMap::with_capacity(12);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(media::cache_control(kind, None)),
    );
    if let Some(etag) = etag {
        headers.insert(header::ETAG, etag.clone());
    }
    headers.insert(header::ACCEPT_RANGES, BYTES);
    headers.insert(X_CACHE.clone(), MISS);
    if facts.not_modified(etag) {
        return Ok(response(StatusCode::NOT_MODIFIED, headers, Body::empty()));
    }
    let stream_counter = state.cache.streams().counter(key.as_str());
    let Some(size) = head.size else {
        // Unknown length, whole body: chunked, counted as it goes.
        let counters = state.counters.clone();
        let body = fill.body(0..u64::MAX).inspect_ok(move |chunk| {
            Counters::add(&counters.bytes_out, chunk.len() as u64);
            stream_counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        });
        return Ok(response(StatusCode::OK, headers, Body::from_stream(body)));
    };
    let (status, bytes) = facts.resolve(size, etag)?;
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.end - bytes.start));
    if status == StatusCode::PARTIAL_CONTENT {
        headers.insert(header::CONTENT_RANGE, content_range(&bytes, size));
    }
    let body = if facts.head {
        Body::empty()
    } else {
        count_out(state, &stream_counter, bytes.end - bytes.start);
        Body::from_stream(fill.body(bytes))
    };
    Ok(response(status, headers, body))
}

/// Streams an object over the cacheable size from the origin, uncached.
async fn pass_through(
    state: &AppState,
    facts: &Facts<'_>,
    key: &ObjectKey,
    content_type: &'static str,
) -> Result<Response> {
    Counters::add(&state.counters.passthrough, 1);
    let settings = state.cache.settings();
    // No `If-Range` check here: the version is not known before asking.
    let range = if facts.if_range.is_some() {
        RangeRequest::Full
    } else {
        facts.range_request(None)
    };
    let timeout = settings.origin_timeout;
    let passed = passthrough::fetch(state.cache.origin(), key, facts.head, range, timeout).await?;
    let mut headers = HeaderMap::with_capacity(12);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(media::cache_control(media::classify(key.extension()).0, None)),
    );
    if let Some(etag) = passed.etag {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(header::ACCEPT_RANGES, BYTES);
    headers.insert(X_CACHE.clone(), MISS);
    if let Some(n) = passed.content_length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    if let Some(value) = passed.content_range {
        headers.insert(header::CONTENT_RANGE, value);
    }
    let counters = state.counters.clone();
    let stream_counter = state.cache.streams().counter(key.as_str());
    let body = passed.body.inspect_ok(move |chunk| {
        Counters::add(&counters.bytes_out, chunk.len() as u64);
        stream_counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    });
    Ok(response(passed.status, headers, Body::from_stream(body)))
}

fn count_out(state: &AppState, stream: &AtomicU64, n: u64) {
    Counters::add(&state.counters.bytes_out, n);
    stream.fetch_add(n, Ordering::Relaxed);
}

fn response(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn with_x_cache(mut response: Response, x_cache: HeaderValue) -> Response {
    response.headers_mut().insert(X_CACHE.clone(), x_cache);
    response
}

fn content_range(bytes: &Range<u64>, size: u64) -> HeaderValue {
    HeaderValue::from_str(&range::content_range(bytes, size)).unwrap_or(HeaderValue::from_static("bytes */0"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
