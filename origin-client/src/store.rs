//! Opening an object store from its URL.
//!
//! | URL | store |
//! |---|---|
//! | `file:///dir` | local directory (created if missing); nothing outside it is reachable |
//! | `memory://` | in-process memory (tests, throwaway demos) |
//! | `s3://bucket/prefix` | S3 or any S3-compatible server: `AWS_*` environment variables (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`, ...) and `KEY=VALUE` builder options (`--store-option` on the origin, `--origin-option` on routers and edges) |
//! | `gs://bucket/prefix` | Google Cloud Storage: `GOOGLE_*` variables and options |
//! | `az://container/prefix` | Azure Blob Storage: `AZURE_*` variables and options |
//! | `http(s)://host/prefix` | an HTTP/WebDAV server through `object_store`'s HTTP store |
//!
//! A prefix in the URL becomes the root: keys are always relative to it.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use object_store::{GetResult, GetResultPayload, ObjectStore};
use url::Url;

use crate::{Error, Result};

/// Opens the store named by `url`, applying `options` (builder config keys
/// such as `aws_endpoint` or `aws_allow_http`) on top of the environment.
pub fn open(url: &str, options: &[(String, String)]) -> Result<Arc<dyn ObjectStore>> {
    let parsed = Url::parse(url).map_err(|e| {
        Error::Config(format!(
            "`store` {:?} is not a URL: {e}",
            runtime::secret::redact_url(url)
        ))
    })?;
    let scheme = parsed.scheme();
    let prefix = parsed.path().trim_matches('/').to_owned();
    let store: Arc<dyn ObjectStore> = match scheme {
        "file" => {
            let dir = parsed.to_file_path().map_err(|()| {
                Error::Config(format!(
                    "`store` {:?} is not a local directory path",
                    runtime::secret::redact_url(url)
                ))
            })?;
            std::fs::create_dir_all(&dir)?;
            return Ok(Arc::new(LocalFileSystem::new_with_prefix(&dir)?));
        }
        "memory" => Arc::new(InMemory::new()),
        "s3" | "s3a" => {
            let builder = AmazonS3Builder::from_env().with_url(url);
            Arc::new(configure(builder, options, scheme, |b, k, v| b.with_config(k, v))?.build()?)
        }
        "gs" => {
            let builder = GoogleCloudStorageBuilder::from_env().with_url(url);
            Arc::new(configure(builder, options, scheme, |b, k, v| b.with_config(k, v))?.build()?)
        }
        "az" | "azure" | "abfs" | "abfss" => {
            let builder = MicrosoftAzureBuilder::from_env().with_url(url);
            Arc::new(configure(builder, options, scheme, |b, k, v| b.with_config(k, v))?.build()?)
        }
        "http" | "https" => {
            let builder = HttpBuilder::new().with_url(&parsed[..url::Position::BeforePath]);
            Arc::new(configure(builder, options, scheme, |b, k, v| b.with_config(k, v))?.build()?)
        }
        other => {
            return Err(Error::Config(format!(
                "`store` scheme {other:?} is not supported (file, memory, s3, gs, az, http, https)"
            )));
        }
    };
    // For cloud stores the bucket is the host and the URL path is the prefix.
    if prefix.is_empty() {
        Ok(store)
    } else {
        Ok(Arc::new(PrefixStore::new(store, prefix)))
    }
}

/// Read size for local files: `object_store` reads them 8 KiB at a time,
/// one blocking task per read, which caps a local origin far below the disk.
pub const LOCAL_READ_BYTES: usize = 256 * 1024;

/// The body of a `get`, streamed; local files are read in
/// [`LOCAL_READ_BYTES`] chunks.
pub fn into_stream(result: GetResult) -> BoxStream<'static, object_store::Result<Bytes>> {
    match result.payload {
        GetResultPayload::File(file, path) => {
            let range = result.range;
            let state = (file, path, range.start, range.end, false);
            futures::stream::try_unfold(state, |(mut file, path, pos, end, seeked)| async move {
                if pos >= end {
                    return Ok(None);
                }
                let want = usize::try_from(end - pos)
                    .unwrap_or(usize::MAX)
                    .min(LOCAL_READ_BYTES);
                let read = tokio::task::spawn_blocking(move || {
                    use std::io::{Read, Seek, SeekFrom};
                    if !seeked {
                        file.seek(SeekFrom::Start(pos))?;
                    }
                    let mut buf = vec![0u8; want];
                    let mut filled = 0;
                    while filled < want {
                        match file.read(&mut buf[filled..])? {
                            0 => break,
                            n => filled += n,
                        }
                    }
                    buf.truncate(filled);
                    Ok::<_, std::io::Error>((file, buf))
                })
                .await;
                let (file, buf) = match read {
                    Ok(Ok(done)) => done,
                    Ok(Err(source)) => {
                        return Err(object_store::Error::Generic {
                            store: "local",
                            source: Box::new(source),
                        });
                    }
                    Err(join) => return Err(object_store::Error::JoinError { source: join }),
                };
                if buf.is_empty() {
                    let source = format!("{path:?} ended before its size");
                    return Err(object_store::Error::Generic {
                        store: "local",
                        source: source.into(),
                    });
                }
                let next = pos + buf.len() as u64;
                Ok(Some((Bytes::from(buf), (file, path, next, end, true))))
            })
            .boxed()
        }
        GetResultPayload::Stream(stream) => stream,
    }
}

/// Applies `key=value` options to a store builder, refusing unknown keys.
fn configure<B, K: std::str::FromStr>(
    mut builder: B,
    options: &[(String, String)],
    scheme: &str,
    set: impl Fn(B, K, &str) -> B,
) -> Result<B> {
    for (key, value) in options {
        let parsed = key.parse().map_err(|_| {
            Error::Config(format!(
                "`store_options`: {key:?} is not an option of a {scheme} store"
            ))
        })?;
        builder = set(builder, parsed, value);
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::path::Path;

    #[tokio::test]
    async fn file_store_is_rooted_at_its_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let url = Url::from_directory_path(&root).expect("url").to_string();
        let store = open(&url, &[]).expect("open");
        store.put(&Path::from("a/b.ts"), "x".into()).await.expect("put");
        assert!(root.join("a/b.ts").is_file());
    }

    #[test]
    fn bad_urls_name_the_key() {
        let err = open("ftp://host/x", &[]).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("`store`")));
        let err = open("not a url", &[]).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("`store`")));
        let err = open("s3://bucket", &[("no_such_key".into(), "1".into())])
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("`store_options`")));
    }
}
