//! Reading the origin, the same way from every part that does (router,
//! edge): an `http(s)://` origin through `reqwest`, so query parameters
//! (`_HLS_*`), upstream statuses and streaming bodies pass through as they
//! are; any other store URL through `object_store`.
//!
//! Only the configured origin is ever contacted: keys are validated
//! [`ObjectKey`]s joined onto the configured base, and redirects are not
//! followed (a 3xx from the origin is an upstream error), so no request can
//! be steered to another host.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::{GetOptions, ObjectStore};

use crate::path::ObjectKey;
use crate::{Error, Result, store};

/// How long to wait for a TCP connection to an HTTP origin.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A body read from the origin.
pub struct Fetched {
    /// The origin's `ETag`, if any.
    pub etag: Option<String>,
    /// The object's size if the origin said it.
    pub size: Option<u64>,
    /// The body, streaming.
    pub body: BoxStream<'static, Result<Bytes>>,
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("etag", &self.etag)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// A client of one origin.
#[derive(Debug, Clone)]
pub enum OriginClient {
    /// An HTTP origin (an `hlscdn-origin`, a packager, any web server).
    Http {
        /// Base URL, ending in `/`; keys are appended to it.
        base: url::Url,
        /// The HTTP client.
        http: reqwest::Client,
    },
    /// Any `object_store` store.
    Store(Arc<dyn ObjectStore>),
}

impl OriginClient {
    /// Opens the origin named by `url` (see [`store::open`] for non-HTTP URLs).
    pub fn open(url: &str, options: &[(String, String)], tls: &runtime::tls::ClientTls) -> Result<Self> {
        let parsed = url::Url::parse(url).map_err(|e| {
            Error::Config(format!(
                "`origin` {:?} is not a URL: {e}",
                runtime::secret::redact_url(url)
            ))
        })?;
        match parsed.scheme() {
            "http" | "https" => {
                if parsed.query().is_some() || parsed.fragment().is_some() {
                    return Err(Error::Config(format!(
                        "`origin` {:?} must not have a query or fragment",
                        runtime::secret::redact_url(url)
                    )));
                }
                let mut base = parsed;
                if !base.path().ends_with('/') {
                    let path = format!("{}/", base.path());
                    base.set_path(&path);
                }
                let http = tls
                    .apply(reqwest::Client::builder())
                    .connect_timeout(CONNECT_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .pool_idle_timeout(Duration::from_secs(60))
                    .build()
                    .map_err(|e| Error::Config(format!("`origin` HTTP client: {e}")))?;
                Ok(Self::Http { base, http })
            }
            _ => Ok(Self::Store(store::open(url, options)?)),
        }
    }

    /// The URL a key has at an HTTP origin (for the `origin` fallback and
    /// for recognizing the origin's own absolute URIs in playlists).
    pub fn base_url(&self) -> Option<&url::Url> {
        match self {
            Self::Http { base, .. } => Some(base),
            Self::Store(_) => None,
        }
    }

    /// Starts reading `key` (with `query` passed through to an HTTP origin),
    /// giving up after `timeout` for the response head.
    pub async fn get(&self, key: &ObjectKey, query: Option<&str>, timeout: Duration) -> Result<Fetched> {
        match self {
            Self::Http { base, http } => {
                let mut url = base.clone();
                url.path_segments_mut()
                    .map_err(|()| Error::Config("`origin` cannot be a base URL".into()))?
                    .pop_if_empty()
                    .extend(key.as_str().split('/'));
                url.set_query(query.filter(|q| !q.is_empty()));
                let response = tokio::time::timeout(timeout, http.get(url).send())
                    .await
                    .map_err(|_| Error::Timeout)?
                    .map_err(|e| {
                        if e.is_timeout() {
                            Error::Timeout
                        } else {
                            Error::Unreachable(without_url(&e))
                        }
                    })?;
                let status = response.status();
                if status == reqwest::StatusCode::NOT_FOUND {
                    return Err(Error::NotFound(key.to_string()));
                }
                if !status.is_success() {
                    return Err(Error::Upstream {
                        status: status.as_u16(),
                    });
                }
                let etag = response
                    .headers()
                    .get(reqwest::header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let size = response.content_length();
                let body = response
                    .bytes_stream()
                    .map_err(|e| Error::Unreachable(without_url(&e)))
                    .boxed();
                Ok(Fetched { etag, size, body })
            }
            Self::Store(store) => {
                let result = tokio::time::timeout(
                    timeout,
                    store.get_opts(&key.to_store_path(), GetOptions::default()),
                )
                .await
                .map_err(|_| Error::Timeout)??;
                let etag = result.meta.e_tag.clone();
                let size = Some(result.meta.size);
                let body = store::into_stream(result).map_err(Error::from).boxed();
                Ok(Fetched { etag, size, body })
            }
        }
    }

    /// Reads `key` whole, refusing bodies over `limit` bytes with
    /// [`Error::TooLarge`]; the whole read is bounded by `timeout`.
    pub async fn get_bytes(
        &self,
        key: &ObjectKey,
        query: Option<&str>,
        timeout: Duration,
        limit: u64,
    ) -> Result<(Bytes, Option<String>)> {
        let read = async {
            let fetched = self.get(key, query, timeout).await?;
            if fetched.size.is_some_and(|n| n > limit) {
                return Err(Error::TooLarge { limit });
            }
            let mut body = fetched.body;
            let mut buf = bytes::BytesMut::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                if (buf.len() + chunk.len()) as u64 > limit {
                    return Err(Error::TooLarge { limit });
                }
                buf.extend_from_slice(&chunk);
            }
            Ok((buf.freeze(), fetched.etag))
        };
        tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| Error::Timeout)?
    }
}

/// A reqwest error's text without its URL (which may carry tokens).
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "<origin>");
    }
    let text = runtime::secret::redact_url(&text);
    if error.is_connect() {
        return format!("cannot connect to the origin ({text})");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn store_origin_reads_and_limits() {
        let store = Arc::new(InMemory::new());
        store
            .put(
                &object_store::path::Path::from("a/b.m3u8"),
                Bytes::from_static(b"#EXTM3U\n").into(),
            )
            .await
            .expect("put");
        let client = OriginClient::Store(store);
        let key = ObjectKey::from_key("a/b.m3u8").expect("key");
        let (body, _) = client
            .get_bytes(&key, None, Duration::from_secs(1), 100)
            .await
            .expect("get");
        assert_eq!(body.as_ref(), b"#EXTM3U\n");
        let err = client.get_bytes(&key, None, Duration::from_secs(1), 3).await;
        assert!(matches!(err, Err(Error::TooLarge { limit: 3 })));
        let missing = ObjectKey::from_key("a/c.m3u8").expect("key");
        let err = client
            .get_bytes(&missing, None, Duration::from_secs(1), 100)
            .await;
        assert!(matches!(
            err,
            Err(Error::Store(object_store::Error::NotFound { .. }))
        ));
    }

    #[test]
    fn http_origins_must_be_plain_bases() {
        assert!(OriginClient::open("http://127.0.0.1:8000/?x=1", &[], &Default::default()).is_err());
        let client =
            OriginClient::open("http://127.0.0.1:8000/media", &[], &Default::default()).expect("open");
        assert_eq!(
            client.base_url().map(url::Url::as_str),
            Some("http://127.0.0.1:8000/media/")
        );
    }
}
