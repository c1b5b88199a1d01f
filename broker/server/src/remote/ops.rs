//! The store calls behind [`RemoteStore`]'s operations: streaming an upload, reading an
//! object's footer, index and batches, listing and deleting. Each call races a deadline
//! on the runtime's timers ([`bounded`], [`before`]).

use std::future::Future;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, MultipartUpload, ObjectStoreExt, PutPayload};
use weir_core::tier::{
    Footer, ObjectError, SegmentIndex, SegmentReader, UploadJob, Uploaded, FOOTER_LEN,
};
use weir_runtime::Runtime;
use weir_wire::domain::{AbortedTransaction, RemoteReadPlan};

use super::{
    bounded, key_path, IndexCache, RemoteError, RemoteStore, INDEX_BYTES_MAX, SWEEP_LIST_MAX,
};
use crate::storage::StorageDriver;

/// Bytes gathered for the next part (or the whole object, if it stays small).
#[derive(Debug, Default)]
struct Part {
    chunks: Vec<Bytes>,
    len: usize,
}

impl Part {
    fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len();
        self.chunks.push(chunk);
    }

    fn take(&mut self) -> PutPayload {
        self.len = 0;
        std::mem::take(&mut self.chunks).into_iter().collect()
    }
}

/// Await `work` until `deadline` (runtime time); `None` when the deadline came first.
pub(super) async fn before<R: Runtime, T>(
    runtime: &R,
    deadline: Duration,
    work: impl Future<Output = T>,
) -> Option<T> {
    let timer = runtime.sleep_until(deadline);
    tokio::select! {
        biased;
        value = work => Some(value),
        () = timer => None,
    }
}

impl RemoteStore {
    /// Upload `job`'s segment; on failure a started multipart upload is aborted.
    pub(super) async fn try_upload<R: Runtime, S: StorageDriver>(
        &self,
        storage: &S,
        runtime: &R,
        job: &UploadJob,
    ) -> Result<Uploaded, RemoteError> {
        let path = key_path(&job.object_key)?;
        let end = runtime.now() + self.options.upload_timeout;
        let mut multipart = None;
        let result = self
            .stream_object(storage, runtime, job, &path, end, &mut multipart)
            .await;
        if let (Err(_), Some(mut upload)) = (&result, multipart) {
            let deadline = runtime.now() + self.options.request_timeout;
            let aborted = bounded(runtime, deadline, "abort", &job.object_key, upload.abort());
            if let Err(error) = aborted.await {
                // The parts stay until the store's own cleanup (an S3 lifecycle rule).
                tracing::warn!("abort of a failed upload to {}: {error}", self.label);
            }
        }
        result
    }

    /// Read the segment chunk by chunk (offloaded: storage reads block) and send it as one
    /// put when it fits in a part, as a multipart upload otherwise.
    async fn stream_object<R: Runtime, S: StorageDriver>(
        &self,
        storage: &S,
        runtime: &R,
        job: &UploadJob,
        path: &Path,
        end: Duration,
        multipart: &mut Option<Box<dyn MultipartUpload>>,
    ) -> Result<Uploaded, RemoteError> {
        let key = job.object_key.as_str();
        let mut reader = SegmentReader::new(job);
        let mut part = Part::default();
        let mut sent_bytes: u64 = 0;
        loop {
            let storage = storage.clone();
            let read = runtime.offload(move || {
                let chunk = reader.next_chunk(&storage);
                (reader, chunk)
            });
            let Some((back, chunk)) = before(runtime, end, read).await else {
                return Err(RemoteError::Timeout {
                    operation: "read segment",
                    key: key.to_owned(),
                });
            };
            reader = back;
            let chunk = chunk.map_err(|source| RemoteError::Segment {
                key: key.to_owned(),
                source,
            })?;
            let Some(chunk) = chunk else {
                break;
            };
            part.push(chunk);
            if part.len < self.options.part_bytes {
                continue;
            }
            let upload = match multipart {
                Some(upload) => upload,
                None => {
                    let deadline = self.call_deadline(runtime, end);
                    let created = self.store.put_multipart(path);
                    let created = bounded(runtime, deadline, "start upload", key, created).await?;
                    multipart.insert(created)
                }
            };
            sent_bytes += part.len as u64;
            let deadline = self.call_deadline(runtime, end);
            bounded(
                runtime,
                deadline,
                "put part",
                key,
                upload.put_part(part.take()),
            )
            .await?;
        }
        let (tail, max_timestamp) = reader.finish();
        part.push(tail);
        let size_bytes = sent_bytes + part.len as u64;
        let deadline = self.call_deadline(runtime, end);
        match multipart {
            None => {
                let put = self.store.put(path, part.take());
                bounded(runtime, deadline, "put", key, put).await?;
            }
            Some(upload) => {
                bounded(
                    runtime,
                    deadline,
                    "put part",
                    key,
                    upload.put_part(part.take()),
                )
                .await?;
                let deadline = self.call_deadline(runtime, end);
                bounded(runtime, deadline, "complete upload", key, upload.complete()).await?;
            }
        }
        Ok(Uploaded {
            job_id: job.job_id,
            size_bytes,
            max_timestamp,
        })
    }

    /// The deadline of one call of an operation that must end by `end`.
    fn call_deadline<R: Runtime>(&self, runtime: &R, end: Duration) -> Duration {
        (runtime.now() + self.options.request_timeout).min(end)
    }

    /// Read what `plan` names: the batches and the aborted transactions overlapping it.
    pub(super) async fn read<R: Runtime>(
        &self,
        runtime: &R,
        deadline: Duration,
        plan: &RemoteReadPlan,
    ) -> Result<(Bytes, Vec<AbortedTransaction>), RemoteError> {
        let key = plan.object_key.as_str();
        let path = key_path(key)?;
        let index = self.index(runtime, deadline, key, &path).await?;
        let Some(read) = index.range_for(plan.start_offset, plan.end_offset, plan.max_bytes) else {
            return Ok((Bytes::new(), Vec::new()));
        };
        let get = self.store.get_range(&path, read.range.clone());
        let bytes = bounded(runtime, deadline, "get", key, get).await?;
        let bytes = index
            .check(&read, bytes)
            .map_err(|source| RemoteError::Object {
                key: key.to_owned(),
                source,
            })?;
        let aborted = index.aborted_overlapping(plan.start_offset, plan.end_offset);
        Ok((bytes, aborted))
    }

    /// The object's index, from the cache or read (footer by a suffix range, the object's
    /// size from that GET's metadata, then the index section) and checked.
    async fn index<R: Runtime>(
        &self,
        runtime: &R,
        deadline: Duration,
        key: &str,
        path: &Path,
    ) -> Result<Arc<SegmentIndex>, RemoteError> {
        if let Some(index) = self.cache().get(key) {
            return Ok(index);
        }
        let object_error = |source| RemoteError::Object {
            key: key.to_owned(),
            source,
        };
        let options = GetOptions::new().with_range(Some(GetRange::Suffix(FOOTER_LEN as u64)));
        let get = self.store.get_opts(path, options);
        let result = bounded(runtime, deadline, "get footer", key, get).await?;
        let object_len = result.meta.size;
        let footer = bounded(runtime, deadline, "get footer", key, result.bytes()).await?;
        let footer = Footer::decode(&footer, object_len).map_err(object_error)?;
        let index_len = footer.index_len();
        if index_len > INDEX_BYTES_MAX {
            let reason = format!("an index of {index_len} bytes (at most {INDEX_BYTES_MAX})");
            return Err(object_error(ObjectError::Index(reason)));
        }
        let index = if index_len == 0 {
            Bytes::new()
        } else {
            let range = footer.index_position..footer.index_position + index_len;
            let get = self.store.get_range(path, range);
            bounded(runtime, deadline, "get index", key, get).await?
        };
        let index = Arc::new(SegmentIndex::decode(&index, &footer).map_err(object_error)?);
        self.cache().insert(key, Arc::clone(&index));
        Ok(index)
    }

    /// The keys under `prefix` with their last-modified wall time (ms), sorted by key.
    pub(super) async fn list<R: Runtime>(
        &self,
        runtime: &R,
        deadline: Duration,
        prefix: &Path,
        label: &str,
    ) -> Result<Vec<(String, i64)>, RemoteError> {
        let mut stream = self.store.list(Some(prefix));
        let mut listed = Vec::new();
        loop {
            let Some(next) = before(runtime, deadline, stream.next()).await else {
                return Err(RemoteError::Timeout {
                    operation: "list",
                    key: label.to_owned(),
                });
            };
            let Some(meta) = next else {
                break;
            };
            let meta = meta.map_err(|source| RemoteError::Store {
                operation: "list",
                key: label.to_owned(),
                source,
            })?;
            let modified_ms = meta.last_modified.timestamp_millis();
            listed.push((meta.location.to_string(), modified_ms));
            if listed.len() >= SWEEP_LIST_MAX {
                tracing::info!("{label}: listed {SWEEP_LIST_MAX} objects; the rest wait");
                break;
            }
        }
        // Stores list in no promised order; deletes go in key (= offset) order.
        listed.sort();
        Ok(listed)
    }

    /// Delete one key; a missing object is not an error.
    pub(super) async fn delete_key<R: Runtime>(
        &self,
        runtime: &R,
        deadline: Duration,
        key: &str,
    ) -> Result<(), RemoteError> {
        let path = key_path(key)?;
        let delete = self.store.delete(&path);
        match bounded(runtime, deadline, "delete", key, delete).await {
            Err(RemoteError::Store {
                source: object_store::Error::NotFound { .. },
                ..
            }) => Ok(()),
            other => other,
        }
    }

    /// Drop a key's cached index (its object is going).
    pub(super) fn forget_index(&self, key: &str) {
        self.cache().remove(key);
    }

    fn cache(&self) -> MutexGuard<'_, IndexCache> {
        // Every critical section is one insert, lookup or removal: a poisoned lock still
        // holds a consistent cache.
        self.indexes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
