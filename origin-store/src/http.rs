//! The origin's HTTP interface.
//!
//! | route | what |
//! |---|---|
//! | `GET`/`HEAD /<key>` | an object, with `Range` (206/416), `ETag`/`Last-Modified` and conditional requests (304) |
//! | `PUT /<key>` | ingest with `Authorization: Bearer <ingest token>`; streamed; 413 past the limit |
//! | `DELETE /<key>` | delete, same token |
//! | `OPTIONS /<any path>` | CORS preflight ([`runtime::http::cors`]) |
//! | `GET /api/v1/streams` | the streams in the store, JSON, from [`CatalogCache`] |
//! | `GET /healthz`, `/readyz`, `/metrics` | liveness, store reachability, Prometheus |
//!
//! Errors map to statuses in one place ([`Error`]'s `IntoResponse`), with a
//! one-line reason for the client and details in the logs.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::TryStreamExt;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt};

use crate::catalog_cache::CatalogCache;
use crate::media::{self, Kind};
use crate::path::ObjectKey;
use crate::range::{self, Resolved};
use crate::{Error, Result, ingest, metrics, store};
use runtime::secret::Secret;

/// Store operations slower than this answer 504.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(20);

/// What the origin's handlers share.
#[derive(Debug, Clone)]
pub struct OriginState {
    /// The store objects are read from and written to.
    pub store: Arc<dyn ObjectStore>,
    /// Bearer token for PUT and DELETE; `None` disables ingest.
    pub ingest_token: Option<Secret>,
    /// Largest body a PUT may carry.
    pub max_ingest_bytes: u64,
    /// Playlists larger than this are served as plain objects, without
    /// looking inside them for `EXT-X-ENDLIST`.
    pub max_playlist_bytes: u64,
    /// The catalog of `store`, listed one bounded listing at a time.
    pub catalog: CatalogCache,
}

/// The origin's router.
pub fn app(state: OriginState) -> Router {
    let state = Arc::new(state);
    Router::new()
        .route("/api/v1/streams", get(list_streams))
        .fallback(object)
        .with_state(state.clone())
        .merge(runtime::http::probe_routes(state))
        .layer(runtime::http::cors())
        .layer(middleware::from_fn(count_answers))
}

/// Counts every answer, preflights included, by method and status
/// (absolute-form targets are refused by [`runtime::server::serve`]).
async fn count_answers(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    ::metrics::counter!(
        metrics::REQUESTS,
        "method" => method_label(&method),
        "status" => response.status().as_u16().to_string()
    )
    .increment(1);
    response
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::POST => "POST",
        _ => "other",
    }
}

/// Ready while the store answers.
impl runtime::http::Probe for OriginState {
    async fn ready(&self) -> std::result::Result<(), std::borrow::Cow<'static, str>> {
        let probe = object_store::path::Path::from("readyz-probe");
        match timed("head", self.store.head(&probe)).await {
            Ok(_) | Err(Error::Store(object_store::Error::NotFound { .. })) => Ok(()),
            Err(error) => {
                tracing::warn!(%error, "store is not reachable");
                Err("store is not reachable".into())
            }
        }
    }
}

/// The catalog, as the cache has it: `{"streams":[...],"truncated":false}`.
async fn list_streams(State(state): State<Arc<OriginState>>) -> Result<Response, Failure> {
    let listing = state.catalog.get().await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], listing.body.clone()).into_response())
}

async fn object(State(state): State<Arc<OriginState>>, request: Request) -> Result<Response, Failure> {
    let key =
        ObjectKey::from_request_path(request.uri().path()).map_err(|e| Error::BadInput(e.to_string()))?;
    match *request.method() {
        Method::GET | Method::HEAD => read(&state, &key, request.method() == Method::HEAD, request.headers())
            .await
            .map_err(Failure),
        Method::PUT => {
            authorize(&state, request.headers())?;
            put(&state, &key, request).await.map_err(Failure)
        }
        Method::DELETE => {
            authorize(&state, request.headers())?;
            // Like uploads, deletes finish even if the client hangs up first.
            let store = state.store.clone();
            let path = key.to_store_path();
            tokio::spawn(async move { timed("delete", store.delete(&path)).await })
                .await
                .map_err(|e| Error::Internal(format!("delete task: {e}")))??;
            tracing::info!(key = %key, "object deleted");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Ok((
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD, PUT, DELETE, OPTIONS")],
            "method not allowed\n",
        )
            .into_response()),
    }
}

/// Checks `Authorization: Bearer <token>` in constant time.
fn authorize(state: &OriginState, headers: &HeaderMap) -> Result<()> {
    let Some(expected) = state.ingest_token.as_ref() else {
        return Err(Error::Forbidden(
            "ingest is disabled: start the origin with --ingest-token".into(),
        ));
    };
    match runtime::auth::Bearer::from_headers(headers) {
        Some(bearer) if bearer.is(expected) => Ok(()),
        _ => Err(Error::Unauthorized),
    }
}

async fn put(state: &OriginState, key: &ObjectKey, request: Request) -> Result<Response> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_ingest_bytes) {
        return Err(Error::TooLarge {
            limit: state.max_ingest_bytes,
        });
    }
    let body = request.into_body().into_data_stream().inspect_ok(|chunk| {
        ::metrics::counter!(metrics::BYTES_IN).increment(chunk.len() as u64);
    });
    // The upload runs in its own task: packagers such as ffmpeg close their
    // side as soon as the body is sent, which drops this handler, and a body
    // received whole must still be stored (a cut-off body still aborts).
    let store = state.store.clone();
    let path = key.to_store_path();
    let limit = state.max_ingest_bytes;
    let started = Instant::now();
    let stored = tokio::spawn(async move { ingest::put_stream(store.as_ref(), &path, body, limit).await })
        .await
        .map_err(|e| Error::Internal(format!("upload task: {e}")))??;
    metrics::store_latency("put", started.elapsed());
    tracing::debug!(key = %key, bytes = stored, "object stored");
    Ok(StatusCode::CREATED.into_response())
}

async fn read(state: &OriginState, key: &ObjectKey, head: bool, headers: &HeaderMap) -> Result<Response> {
    let path = key.to_store_path();
    let (kind, content_type) = media::classify(key.extension());
    let range_request = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(range::RangeRequest::Full, range::parse);

    // Playlists are read whole (they are small) to tell live from VOD. For
    // a HEAD or a byte range of anything else, metadata comes first.
    let read_whole = kind == Kind::Playlist;
    let probe_only = !read_whole && (head || range_request != range::RangeRequest::Full);
    let options = GetOptions {
        head: probe_only,
        ..GetOptions::default()
    };
    let result = timed("get", state.store.get_opts(&path, options)).await?;
    let meta = result.meta.clone();
    let etag = etag_of(&meta);
    let last_modified = SystemTime::from(meta.last_modified);

    let whole = if read_whole && meta.size <= state.max_playlist_bytes {
        Payload::Whole(timed("get", result.bytes()).await?)
    } else if probe_only {
        Payload::Probed
    } else {
        Payload::Streaming(result)
    };
    let cache_control = match &whole {
        Payload::Whole(bytes) => media::cache_control(kind, Some(bytes)),
        _ => media::cache_control(kind, None),
    };

    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ETAG, &etag)
        .header(header::LAST_MODIFIED, httpdate::fmt_http_date(last_modified))
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, cache_control);

    if not_modified(headers, &etag, last_modified) {
        return finish(response.status(StatusCode::NOT_MODIFIED), Body::empty());
    }

    let (status, range) = match range::resolve(range_request, meta.size) {
        Resolved::Full => (StatusCode::OK, 0..meta.size),
        Resolved::Partial(r) => {
            response = response.header(header::CONTENT_RANGE, range::content_range(&r, meta.size));
            (StatusCode::PARTIAL_CONTENT, r)
        }
        Resolved::Unsatisfiable => return Err(Error::RangeNotSatisfiable { size: meta.size }),
    };
    response = response
        .status(status)
        .header(header::CONTENT_LENGTH, range.end - range.start);
    if head {
        return finish(response, Body::empty());
    }

    let stream = match whole {
        Payload::Whole(bytes) => {
            let start = usize::try_from(range.start)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let end = usize::try_from(range.end).unwrap_or(usize::MAX).min(bytes.len());
            ::metrics::counter!(metrics::BYTES_OUT).increment((end - start) as u64);
            return finish(response, Body::from(bytes.slice(start..end)));
        }
        Payload::Streaming(result) if status == StatusCode::OK => store::into_stream(result),
        Payload::Streaming(_) | Payload::Probed => {
            // A byte range of the version just looked at: a changed object
            // fails the `if_match` rather than mixing two versions.
            let ranged = GetOptions {
                range: Some(GetRange::Bounded(range.clone())),
                if_match: meta.e_tag.clone(),
                ..GetOptions::default()
            };
            store::into_stream(timed("get", state.store.get_opts(&path, ranged)).await?)
        }
    };
    let body = Body::from_stream(stream.inspect_ok(|chunk| {
        ::metrics::counter!(metrics::BYTES_OUT).increment(chunk.len() as u64);
    }));
    finish(response, body)
}

/// What a read has in hand once the object's metadata is known.
enum Payload {
    /// A playlist, read whole.
    Whole(bytes::Bytes),
    /// The object's body, not yet read.
    Streaming(object_store::GetResult),
    /// Only metadata (HEAD, or a byte range still to fetch).
    Probed,
}

fn finish(builder: axum::http::response::Builder, body: Body) -> Result<Response> {
    builder
        .body(body)
        .map_err(|e| Error::Internal(format!("building a response: {e}")))
}

/// A strong `ETag` for an object: the store's own when it has one, quoted.
fn etag_of(meta: &ObjectMeta) -> String {
    match meta.e_tag.as_deref() {
        Some(tag) if tag.starts_with('"') || tag.starts_with("W/") => tag.to_owned(),
        Some(tag) => format!("\"{tag}\""),
        None => format!("\"{:x}-{:x}\"", meta.last_modified.timestamp_micros(), meta.size),
    }
}

/// RFC 9110 §13.1: `If-None-Match` wins over `If-Modified-Since`.
fn not_modified(headers: &HeaderMap, etag: &str, last_modified: SystemTime) -> bool {
    if let Some(list) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
        return list.split(',').any(|t| t.trim() == "*" || bare(t) == bare(etag));
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .is_some_and(|since| {
            // HTTP dates have one-second resolution.
            let modified = last_modified
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let since = since
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            modified <= since
        })
}

/// Runs a store operation under [`STORE_TIMEOUT`], recording its latency.
async fn timed<T>(
    op: &'static str,
    future: impl std::future::Future<Output = object_store::Result<T>>,
) -> Result<T> {
    let started = Instant::now();
    let outcome = tokio::time::timeout(STORE_TIMEOUT, future).await;
    metrics::store_latency(op, started.elapsed());
    outcome.map_err(|_| Error::Timeout)?.map_err(Error::from)
}

/// An [`Error`] as the origin answers it over HTTP.
#[derive(Debug)]
pub struct Failure(pub Error);

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure(error)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let Failure(error) = self;
        let (status, reason) = match &error {
            Error::NotFound(_) | Error::Store(object_store::Error::NotFound { .. }) => {
                (StatusCode::NOT_FOUND, "not found".to_owned())
            }
            Error::BadInput(reason) => (StatusCode::BAD_REQUEST, reason.clone()),
            Error::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "missing or invalid bearer token".to_owned(),
            ),
            Error::Forbidden(reason) => (StatusCode::FORBIDDEN, reason.clone()),
            Error::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, error.to_string()),
            Error::RangeNotSatisfiable { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, error.to_string()),
            Error::Store(object_store::Error::Precondition { .. }) => (
                StatusCode::PRECONDITION_FAILED,
                "object changed while being read".to_owned(),
            ),
            Error::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "object store did not answer in time".to_owned(),
            ),
            Error::Store(_) | Error::Upstream { .. } | Error::Unreachable(_) => {
                (StatusCode::BAD_GATEWAY, "object store error".to_owned())
            }
            Error::Config(_) | Error::Io(_) | Error::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".to_owned())
            }
        };
        let mut response = runtime::answer::error_answer(status, &reason, &error, tracing::Level::ERROR);
        let headers = response.headers_mut();
        if matches!(
            error,
            Error::Unauthorized | Error::Forbidden(_) | Error::TooLarge { .. }
        ) {
            // Refused before the body was read: the connection cannot be reused.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        match error {
            Error::Unauthorized => runtime::answer::ask_for_bearer(headers),
            Error::RangeNotSatisfiable { size } => runtime::answer::unsatisfiable_range(headers, size),
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_requests() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        assert!(!not_modified(&h, "\"a\"", t));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"b\", W/\"a\""));
        assert!(not_modified(&h, "\"a\"", t));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"b\""));
        h.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_static("Thu, 01 Jan 2099 00:00:00 GMT"),
        );
        assert!(!not_modified(&h, "\"a\"", t), "If-None-Match wins");
        h.remove(header::IF_NONE_MATCH);
        assert!(not_modified(&h, "\"a\"", t));
        h.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
        );
        assert!(!not_modified(&h, "\"a\"", t));
    }
}
