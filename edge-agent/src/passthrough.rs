//! Objects larger than the cacheable limit, streamed from the origin to one
//! viewer without being kept: the viewer's byte range is forwarded, so a
//! byte-range playlist over one large file costs the origin only the parts
//! viewers ask for.
//!
//! Only the configured origin is contacted, at the validated key joined onto
//! its base, without redirects (the origin client was built that way).

use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode, header};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use origin_client::client::OriginClient;
use origin_client::path::ObjectKey;
use origin_client::range::{self, ByteRange, RangeRequest, Resolved};

use crate::cache::quoted_etag;
use crate::{Error, Result};

/// A streamed-through answer from the origin.
pub struct Passed {
    /// 200 or 206.
    pub status: StatusCode,
    /// Length of the body sent, when known.
    pub content_length: Option<u64>,
    /// `Content-Range` of a 206.
    pub content_range: Option<HeaderValue>,
    /// The origin's `ETag`, quoted.
    pub etag: Option<HeaderValue>,
    /// The body (empty for HEAD).
    pub body: BoxStream<'static, Result<Bytes>>,
}

impl std::fmt::Debug for Passed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passed")
            .field("status", &self.status)
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

/// Reads `key` (the bytes `range`, or the whole object) from the origin.
/// `timeout` bounds the response head and each body chunk.
pub async fn fetch(
    origin: &OriginClient,
    key: &ObjectKey,
    head: bool,
    range: RangeRequest,
    timeout: Duration,
) -> Result<Passed> {
    match origin {
        OriginClient::Http { base, http } => fetch_http(base, http, key, head, range, timeout).await,
        OriginClient::Store(store) => fetch_store(store.as_ref(), key, head, range, timeout).await,
    }
}

async fn fetch_http(
    base: &url::Url,
    http: &reqwest::Client,
    key: &ObjectKey,
    head: bool,
    range: RangeRequest,
    timeout: Duration,
) -> Result<Passed> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| Error::Config("`origin` cannot be a base URL".into()))?
        .pop_if_empty()
        .extend(key.as_str().split('/'));
    let method = if head { Method::HEAD } else { Method::GET };
    let mut request = http.request(method, url);
    if let RangeRequest::Single(r) = range {
        request = request.header(header::RANGE, range_header(r));
    }
    let response = tokio::time::timeout(timeout, request.send())
        .await
        .map_err(|_| Error::Timeout)?
        .map_err(|e| {
            if e.is_timeout() {
                Error::Timeout
            } else {
                Error::Unreachable(if e.is_connect() {
                    "cannot connect to the origin".into()
                } else {
                    "origin request failed".into()
                })
            }
        })?;
    let headers = response.headers();
    let header_u64 = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    match response.status() {
        StatusCode::OK | StatusCode::PARTIAL_CONTENT => {}
        StatusCode::NOT_FOUND => return Err(Error::NotFound),
        StatusCode::RANGE_NOT_SATISFIABLE => {
            let size = headers
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes */"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            return Err(Error::RangeNotSatisfiable { size });
        }
        other => {
            return Err(Error::Upstream {
                status: other.as_u16(),
            });
        }
    }
    let status = response.status();
    let content_length = header_u64(header::CONTENT_LENGTH);
    let content_range = headers.get(header::CONTENT_RANGE).cloned();
    let etag = headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .and_then(quoted_etag);
    let body = if head {
        futures::stream::empty().boxed()
    } else {
        let stream = response
            .bytes_stream()
            .map_err(|_| Error::Unreachable("origin body broke off".into()));
        idle_timeout(stream.boxed(), timeout)
    };
    Ok(Passed {
        status,
        content_length,
        content_range,
        etag,
        body,
    })
}

async fn fetch_store(
    store: &dyn ObjectStore,
    key: &ObjectKey,
    head: bool,
    range: RangeRequest,
    timeout: Duration,
) -> Result<Passed> {
    let path = key.to_store_path();
    let meta = tokio::time::timeout(timeout, store.head(&path))
        .await
        .map_err(|_| Error::Timeout)?
        .map_err(origin_client::Error::from)?;
    let size = meta.size;
    let (status, bytes, content_range) = match range::resolve(range, size) {
        Resolved::Full => (StatusCode::OK, 0..size, None),
        Resolved::Partial(r) => {
            let value = HeaderValue::from_str(&range::content_range(&r, size)).ok();
            (StatusCode::PARTIAL_CONTENT, r, value)
        }
        Resolved::Unsatisfiable => return Err(Error::RangeNotSatisfiable { size }),
    };
    let etag = meta.e_tag.as_deref().and_then(quoted_etag);
    let content_length = Some(bytes.end - bytes.start);
    let body = if head || bytes.is_empty() {
        futures::stream::empty().boxed()
    } else {
        // The version just looked at: a changed object fails `if_match`
        // rather than mixing two versions.
        let options = GetOptions {
            range: Some(GetRange::Bounded(bytes)),
            if_match: meta.e_tag.clone(),
            ..GetOptions::default()
        };
        let result = tokio::time::timeout(timeout, store.get_opts(&path, options))
            .await
            .map_err(|_| Error::Timeout)?
            .map_err(origin_client::Error::from)?;
        let stream =
            origin_client::store::into_stream(result).map_err(|e| Error::from(origin_client::Error::from(e)));
        idle_timeout(stream.boxed(), timeout)
    };
    Ok(Passed {
        status,
        content_length,
        content_range,
        etag,
        body,
    })
}

/// The `Range` header value for one byte range.
pub fn range_header(range: ByteRange) -> String {
    match range {
        ByteRange::FromTo(first, last) => format!("bytes={first}-{last}"),
        ByteRange::From(first) => format!("bytes={first}-"),
        ByteRange::Suffix(n) => format!("bytes=-{n}"),
    }
}

/// Ends `stream` with [`Error::Timeout`] when no chunk arrives for `timeout`.
fn idle_timeout(
    stream: BoxStream<'static, Result<Bytes>>,
    timeout: Duration,
) -> BoxStream<'static, Result<Bytes>> {
    futures::stream::unfold(Some(stream), move |stream| async move {
        let mut stream = stream?;
        match tokio::time::timeout(timeout, stream.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(stream))),
            Ok(Some(Err(e))) => Some((Err(e), None)),
            Ok(None) => None,
            Err(_) => Some((Err(Error::Timeout), None)),
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::PutPayload;
    use object_store::memory::InMemory;
    use std::sync::Arc;

    #[tokio::test]
    async fn store_ranges_are_forwarded() {
        let store = Arc::new(InMemory::new());
        let body: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        store
            .put(
                &object_store::path::Path::from("a/b.ts"),
                PutPayload::from(body.clone()),
            )
            .await
            .expect("put");
        let origin = OriginClient::Store(store);
        let key = ObjectKey::from_key("a/b.ts").expect("key");
        let t = Duration::from_secs(5);
        let passed = fetch(&origin, &key, false, range::parse("bytes=-100"), t)
            .await
            .expect("get");
        assert_eq!(passed.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(passed.content_length, Some(100));
        assert_eq!(passed.content_range.expect("range"), "bytes 900-999/1000");
        let got: Vec<Bytes> = passed.body.map(|c| c.expect("chunk")).collect().await;
        assert_eq!(got.concat(), &body[900..]);
        let head = fetch(&origin, &key, true, RangeRequest::Full, t)
            .await
            .expect("head");
        assert_eq!((head.status, head.content_length), (StatusCode::OK, Some(1000)));
        let err = fetch(&origin, &key, false, range::parse("bytes=5000-"), t)
            .await
            .err();
        assert!(matches!(err, Some(Error::RangeNotSatisfiable { size: 1000 })));
        let missing = ObjectKey::from_key("a/c.ts").expect("key");
        let err = fetch(&origin, &missing, false, RangeRequest::Full, t).await.err();
        assert!(matches!(err, Some(Error::NotFound)));
    }

    #[test]
    fn range_headers() {
        assert_eq!(range_header(ByteRange::FromTo(0, 9)), "bytes=0-9");
        assert_eq!(range_header(ByteRange::From(5)), "bytes=5-");
        assert_eq!(range_header(ByteRange::Suffix(7)), "bytes=-7");
    }
}
