//! Streaming a request body into the store under a size limit.
//!
//! Bodies up to [`SINGLE_PUT_BYTES`] (every HLS segment and playlist in
//! practice) are buffered and written with one `put`, which stores make
//! atomic. Larger bodies switch to a multipart upload that is fed as the
//! body arrives, so memory per upload stays bounded whatever its size. A body
//! past the limit aborts the upload and leaves the store as it was.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::{Error, Result};

/// Bodies up to this size are written with a single `put`.
pub const SINGLE_PUT_BYTES: usize = 8 * 1024 * 1024;
/// Part size of multipart uploads (S3's minimum is 5 MiB).
const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts in flight at once during a multipart upload.
const PARTS_IN_FLIGHT: usize = 2;

/// Writes `body` to `path`, refusing it with [`Error::TooLarge`] past `limit`
/// bytes. Returns the number of bytes stored.
pub async fn put_stream<S, E>(store: &dyn ObjectStore, path: &Path, body: S, limit: u64) -> Result<u64>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let mut body = body;
    let mut buffered: Vec<Bytes> = Vec::new();
    let mut total: u64 = 0;

    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Error::BadInput(format!("request body: {e}")))?;
        total += chunk.len() as u64;
        if total > limit {
            return Err(Error::TooLarge { limit });
        }
        buffered.push(chunk);
        if total as usize > SINGLE_PUT_BYTES {
            return put_multipart(store, path, buffered, body, total, limit).await;
        }
    }
    store.put(path, PutPayload::from_iter(buffered)).await?;
    Ok(total)
}

async fn put_multipart<S, E>(
    store: &dyn ObjectStore,
    path: &Path,
    buffered: Vec<Bytes>,
    mut body: S,
    mut total: u64,
    limit: u64,
) -> Result<u64>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let upload = store.put_multipart(path).await?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    for chunk in buffered {
        writer.put(chunk);
    }
    let outcome: Result<()> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Error::BadInput(format!("request body: {e}")))?;
            total += chunk.len() as u64;
            if total > limit {
                return Err(Error::TooLarge { limit });
            }
            writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
            writer.put(chunk);
        }
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => {
            writer.finish().await?;
            Ok(total)
        }
        Err(error) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(path = %path, error = %abort, "aborting a refused upload failed");
            }
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn body(chunks: usize, size: usize) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures::stream::iter((0..chunks).map(move |i| Ok(Bytes::from(vec![i as u8; size]))))
    }

    #[tokio::test]
    async fn small_and_large_bodies_are_stored_whole() {
        let store = InMemory::new();
        for (name, chunks, size) in [("small", 3, 1000), ("large", 20, 1024 * 1024)] {
            let path = Path::from(name);
            let n = put_stream(&store, &path, body(chunks, size), u64::MAX)
                .await
                .expect("put");
            assert_eq!(n, (chunks * size) as u64);
            let got = store.get(&path).await.expect("get").bytes().await.expect("bytes");
            assert_eq!(got.len(), chunks * size);
            assert_eq!(got[size * (chunks - 1)], (chunks - 1) as u8);
        }
    }

    #[tokio::test]
    async fn bodies_past_the_limit_write_nothing() {
        let store = InMemory::new();
        for (name, chunks, size) in [("small", 10, 1000), ("large", 20, 1024 * 1024)] {
            let path = Path::from(name);
            let limit = (chunks * size - 1) as u64;
            let err = put_stream(&store, &path, body(chunks, size), limit).await;
            assert!(matches!(err, Err(Error::TooLarge { .. })), "{name}: {err:?}");
            assert!(store.head(&path).await.is_err(), "{name} was written");
        }
    }
}
