//! Tiered storage's driver side (KIP-405, issue #14): the object store that closed segments
//! are uploaded to and that fetches below the local log start read from.
//!
//! The core decides everything (which segment, under which key, when local copies go, what a
//! remote fetch reads; `weir_core::tier`); a [`RemoteStore`] only does the IO, off the node
//! loop: [`RemoteStore::upload`] streams a segment object built by
//! `weir_core::tier::SegmentReader`, [`RemoteStore::delete`] and [`RemoteStore::sweep`]
//! remove objects, and [`RemoteStore::resolve`] turns a response's
//! `FetchRecords::Remote` plans into checked bytes.
//!
//! A store comes from a URL ([`RemoteStore::from_url`]: `file:///abs/dir`,
//! `s3://bucket[/prefix]`, `memory://`) or from any `object_store::ObjectStore`
//! ([`RemoteStore::with_store`]; tests and the simulator inject [`faulty::FaultyStore`]).
//!
//! # Invariants
//! - Every store call is bounded in time: an HTTP store has its client's timeouts and a
//!   bounded retry policy, and every call, whatever the store, races a deadline on the
//!   `Runtime`'s timers ([`RemoteOptions::request_timeout`], and for a whole upload
//!   [`RemoteOptions::upload_timeout`]). A dead store costs a failed upload or a
//!   KAFKA_STORAGE_ERROR, never a stuck task, and the node loop never awaits the store.
//! - Nothing read from the store is served unchecked: the footer, the index's CRC and
//!   bounds, and every served batch's CRC are checked (`weir_core::tier`). A failed or
//!   refused read answers its partition KAFKA_STORAGE_ERROR with no records, logged with
//!   the object's key; the response's other partitions are unaffected (the rule of
//!   `weir_core::resolve` for local reads).
//! - An upload never overwrites: object keys are unique per upload (the core picks them).
//!   A multipart upload that fails is aborted; an object that half happened anyway is an
//!   orphan the core's sweeps remove.
//! - Memory is bounded: an upload holds at most one part ([`RemoteOptions::part_bytes`])
//!   plus one storage chunk; decoded indexes are cached up to
//!   [`RemoteOptions::index_cache_entries`] (objects are immutable, so a cached index never
//!   goes stale) and an index larger than [`INDEX_BYTES_MAX`] is refused.

pub mod faulty;
mod ops;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::path::Path;
use object_store::ObjectStore;
/// The store types a caller needs to build a store itself (tests, the simulator).
pub use object_store::{memory::InMemory, ObjectStore as ObjectStoreApi};
use weir_core::tier::{
    DeleteJob, ObjectError, SegmentIndex, SweepJob, TierError, UploadFailed, UploadJob,
};
use weir_core::Completion;
use weir_runtime::Runtime;
use weir_wire::domain::{ApiResponse, FetchRecords};
use weir_wire::error::ErrorCode;

use crate::storage::StorageDriver;

/// The largest index section read from an object: 24 bytes per batch, so 64 MiB indexes
/// about 2.8 million batches (a 1 GiB segment of 380-byte batches). A footer naming more is
/// refused instead of read into memory.
pub const INDEX_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// S3's smallest part but the last one.
pub const PART_BYTES_MIN_S3: usize = 5 * 1024 * 1024;
/// Objects listed by one sweep at most; the rest wait for the next sweep.
pub const SWEEP_LIST_MAX: usize = 100_000;

/// Limits of a [`RemoteStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOptions {
    /// Bytes buffered before a multipart upload sends a part (S3 wants at least 5 MiB for
    /// every part but the last; stores built from a URL never go below that). An object that
    /// fits in one part is written with a single put.
    pub part_bytes: usize,
    /// Deadline of one store call (a GET, a part, a delete, a listing), and of resolving
    /// one response's remote reads altogether.
    pub request_timeout: Duration,
    /// Deadline of a whole upload, storage reads included.
    pub upload_timeout: Duration,
    /// Decoded segment indexes kept (the oldest goes first).
    pub index_cache_entries: usize,
}

impl Default for RemoteOptions {
    fn default() -> RemoteOptions {
        RemoteOptions {
            part_bytes: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(60),
            upload_timeout: Duration::from_secs(15 * 60),
            index_cache_entries: 256,
        }
    }
}

/// Why a remote store could not be built or an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The URL is not one Weir can use.
    #[error("invalid remote storage URL \"{url}\": {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store refused to be built (a directory that cannot be created, bad S3 settings).
    #[error("cannot open remote storage {url}: {source}")]
    Open {
        /// The URL as given.
        url: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// An object key that is not a valid store path.
    #[error("invalid object key \"{key}\": {reason}")]
    Key {
        /// The key.
        key: String,
        /// The path parser's message.
        reason: String,
    },
    /// A store call failed.
    #[error("{operation} {key}: {source}")]
    Store {
        /// What was done (`put`, `get`, ...).
        operation: &'static str,
        /// The object key or prefix.
        key: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// A store call did not finish before its deadline.
    #[error("{operation} {key}: no answer within its deadline")]
    Timeout {
        /// What was done.
        operation: &'static str,
        /// The object key or prefix.
        key: String,
    },
    /// Reading the segment from local storage, or building its object, failed.
    #[error("segment {key}: {source}")]
    Segment {
        /// The object key.
        key: String,
        /// The reader's error.
        source: TierError,
    },
    /// The object's bytes are not a valid segment object.
    #[error("object {key}: {source}")]
    Object {
        /// The object key.
        key: String,
        /// What is wrong.
        source: ObjectError,
    },
}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepOutcome {
    /// Objects listed under the prefix.
    pub listed: usize,
    /// Keys deleted.
    pub deleted: Vec<String>,
    /// Deletes that failed (logged; the next sweep tries again).
    pub failed: usize,
}

/// The object store of tiered storage, shared by the node loop's upload/delete/sweep tasks,
/// the connection writers and the gateway (clones share the store and the index cache).
#[derive(Clone)]
pub struct RemoteStore {
    store: Arc<dyn ObjectStore>,
    /// The URL or label, for logs.
    label: Arc<str>,
    options: RemoteOptions,
    indexes: Arc<Mutex<IndexCache>>,
}

impl std::fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStore")
            .field("label", &self.label)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A parsed `weir.remote.storage.url`, before anything is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteUrl {
    /// `file:///abs/dir`: a local directory (created if missing).
    File {
        /// The directory.
        directory: std::path::PathBuf,
    },
    /// `s3://bucket[/prefix]`: an S3-compatible store, configured from `AWS_*` variables.
    S3 {
        /// The bucket.
        bucket: String,
        /// Key prefix inside it (no leading or trailing `/`; empty for none).
        prefix: String,
    },
    /// `memory://[prefix]`: objects in this process's memory (tests, simulation).
    Memory {
        /// Key prefix (empty for none).
        prefix: String,
    },
}

impl RemoteUrl {
    /// Parse a URL; the error says what Weir accepts.
    pub fn parse(url: &str) -> Result<RemoteUrl, RemoteError> {
        let invalid = |reason: &str| RemoteError::Url {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let Some((scheme, rest)) = url.trim().split_once("://") else {
            return Err(invalid(
                "expected file:///ABSOLUTE/DIR, s3://BUCKET[/PREFIX] or memory://",
            ));
        };
        if rest.contains(['?', '#']) {
            return Err(invalid("query strings and fragments are not supported"));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                if !rest.starts_with('/') {
                    return Err(invalid(
                        "a file URL needs an absolute path: file:///ABSOLUTE/DIR",
                    ));
                }
                Ok(RemoteUrl::File {
                    directory: std::path::PathBuf::from(rest),
                })
            }
            "s3" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(invalid("an s3 URL needs a bucket: s3://BUCKET[/PREFIX]"));
                }
                Ok(RemoteUrl::S3 {
                    bucket: bucket.to_owned(),
                    prefix: clean_prefix(url, prefix)?,
                })
            }
            "memory" => Ok(RemoteUrl::Memory {
                prefix: clean_prefix(url, rest)?,
            }),
            other => Err(invalid(&format!(
                "scheme \"{other}\" is not file, s3 or memory"
            ))),
        }
    }
}

/// A prefix without its surrounding slashes, checked as a store path.
fn clean_prefix(url: &str, prefix: &str) -> Result<String, RemoteError> {
    let prefix = prefix.trim_matches('/');
    if !prefix.is_empty() {
        Path::parse(prefix).map_err(|error| RemoteError::Url {
            url: url.to_owned(),
            reason: format!("prefix \"{prefix}\": {error}"),
        })?;
    }
    Ok(prefix.to_owned())
}

impl RemoteStore {
    /// Open the store a URL names (see [`RemoteUrl`]). For `s3://`, credentials, region and
    /// endpoint come from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION` (default us-east-1), `AWS_ENDPOINT_URL` or `AWS_ENDPOINT`; plain http is
    /// allowed when the endpoint is http://), with path-style requests.
    pub fn from_url(url: &str) -> Result<RemoteStore, RemoteError> {
        RemoteStore::from_url_with(url, RemoteOptions::default())
    }

    /// [`RemoteStore::from_url`] with other limits (tests: small parts, short deadlines).
    /// An S3 store's parts are never smaller than [`PART_BYTES_MIN_S3`].
    pub fn from_url_with(
        url: &str,
        mut options: RemoteOptions,
    ) -> Result<RemoteStore, RemoteError> {
        let open_error = |source| RemoteError::Open {
            url: url.to_owned(),
            source,
        };
        let (store, prefix): (Arc<dyn ObjectStore>, String) = match RemoteUrl::parse(url)? {
            RemoteUrl::File { directory } => {
                std::fs::create_dir_all(&directory).map_err(|error| RemoteError::Url {
                    url: url.to_owned(),
                    reason: format!("cannot create {}: {error}", directory.display()),
                })?;
                let local = object_store::local::LocalFileSystem::new_with_prefix(&directory)
                    .map_err(open_error)?;
                (Arc::new(local), String::new())
            }
            RemoteUrl::S3 { bucket, prefix } => {
                options.part_bytes = options.part_bytes.max(PART_BYTES_MIN_S3);
                (s3(&bucket).map_err(open_error)?, prefix)
            }
            RemoteUrl::Memory { prefix } => (Arc::new(InMemory::new()), prefix),
        };
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            store
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(
                store,
                prefix.as_str(),
            ))
        };
        Ok(RemoteStore::with_store(store, url, options))
    }

    /// A remote store over any object store (tests and the simulator inject faulty ones).
    /// `part_bytes` is taken as given, so tests can make multipart uploads of small segments
    /// on stores without S3's 5 MiB rule.
    pub fn with_store(
        store: Arc<dyn ObjectStore>,
        label: &str,
        options: RemoteOptions,
    ) -> RemoteStore {
        assert!(options.part_bytes > 0, "part_bytes must be positive");
        RemoteStore {
            store,
            label: Arc::from(label),
            indexes: Arc::new(Mutex::new(IndexCache::new(options.index_cache_entries))),
            options,
        }
    }

    /// The URL or label it was built from.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The store underneath (tests read and corrupt objects through it).
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Run an upload job: stream the segment from `storage` into a new object, and report
    /// the outcome as the node expects it. Never panics on a store or storage failure.
    pub async fn upload<R: Runtime, S: StorageDriver>(
        &self,
        storage: &S,
        runtime: &R,
        job: &UploadJob,
    ) -> Completion {
        let outcome = match self.try_upload(storage, runtime, job).await {
            Ok(uploaded) => {
                tracing::debug!(
                    "uploaded {} ({} bytes) to {}",
                    job.object_key,
                    uploaded.size_bytes,
                    self.label
                );
                Ok(uploaded)
            }
            Err(error) => {
                tracing::warn!("upload to {} failed: {error}", self.label);
                Err(UploadFailed {
                    job_id: job.job_id,
                    reason: error.to_string(),
                })
            }
        };
        Completion::Uploaded(outcome)
    }

    /// Delete the job's keys. Missing objects are fine; other failures are logged and left
    /// to the next sweep. Returns how many deletes failed.
    pub async fn delete<R: Runtime>(&self, runtime: &R, job: &DeleteJob) -> usize {
        let mut failed = 0;
        for key in &job.keys {
            self.forget_index(key);
            let deadline = runtime.now() + self.options.request_timeout;
            if let Err(error) = self.delete_key(runtime, deadline, key).await {
                tracing::warn!("remote delete in {} failed: {error}", self.label);
                failed += 1;
            }
        }
        failed
    }

    /// List the job's prefix and delete every object that is not in `keep` and was last
    /// modified at least `min_age_ms` before `now_wall_ms`.
    pub async fn sweep<R: Runtime>(
        &self,
        runtime: &R,
        job: &SweepJob,
        now_wall_ms: i64,
    ) -> Result<SweepOutcome, RemoteError> {
        let prefix = key_path(&job.prefix)?;
        let deadline = runtime.now() + self.options.request_timeout;
        let listed = self.list(runtime, deadline, &prefix, &job.prefix).await?;
        let keep: BTreeSet<&str> = job.keep.iter().map(String::as_str).collect();
        let min_age_ms = i64::try_from(job.min_age_ms).unwrap_or(i64::MAX);
        let mut outcome = SweepOutcome {
            listed: listed.len(),
            ..SweepOutcome::default()
        };
        for (key, modified_ms) in listed {
            if keep.contains(key.as_str()) || now_wall_ms.saturating_sub(modified_ms) < min_age_ms {
                continue;
            }
            self.forget_index(&key);
            let deadline = runtime.now() + self.options.request_timeout;
            match self.delete_key(runtime, deadline, &key).await {
                Ok(()) => outcome.deleted.push(key),
                Err(error) => {
                    tracing::warn!("sweep of {} in {} failed: {error}", job.prefix, self.label);
                    outcome.failed += 1;
                }
            }
        }
        Ok(outcome)
    }

    /// Replace every `FetchRecords::Remote` plan of `response` with the batches it names,
    /// read and checked; the aborted transactions go along for read_committed fetches. A
    /// failed read answers its partition KAFKA_STORAGE_ERROR, logged with the key and `peer`.
    /// All of it within one [`RemoteOptions::request_timeout`].
    pub async fn resolve<R: Runtime>(&self, runtime: &R, response: &mut ApiResponse, peer: &str) {
        let ApiResponse::Fetch(fetch) = response else {
            return;
        };
        let deadline = runtime.now() + self.options.request_timeout;
        let partitions = fetch
            .topics
            .iter_mut()
            .flat_map(|t| t.partitions.iter_mut());
        for partition in partitions {
            let FetchRecords::Remote(plan) = &partition.records else {
                continue;
            };
            let plan = plan.clone();
            match self.read(runtime, deadline, &plan).await {
                Ok((bytes, _)) if bytes.is_empty() => partition.records = FetchRecords::Empty,
                Ok((bytes, aborted)) => {
                    partition.records = FetchRecords::Bytes(bytes);
                    if plan.read_committed {
                        partition.aborted_transactions = aborted;
                    }
                }
                Err(error) => {
                    tracing::error!(
                        "remote read for {peer} from {} failed; partition {} answered with \
                         an error: {error}",
                        self.label,
                        partition.partition
                    );
                    partition.error = ErrorCode::KAFKA_STORAGE_ERROR;
                    partition.records = FetchRecords::Empty;
                }
            }
        }
    }
}

/// Whether a response carries remote reads still to resolve.
pub fn has_remote_reads(response: &ApiResponse) -> bool {
    let ApiResponse::Fetch(fetch) = response else {
        return false;
    };
    (fetch.topics.iter())
        .flat_map(|t| t.partitions.iter())
        .any(|p| matches!(p.records, FetchRecords::Remote(_)))
}

/// Resolve a response's remote reads through `remote`, or, without a store (or a plan
/// that should not exist), answer each such partition KAFKA_STORAGE_ERROR.
pub async fn resolve_remote<R: Runtime>(
    remote: Option<&RemoteStore>,
    runtime: &R,
    response: &mut ApiResponse,
    peer: &str,
) {
    match remote {
        Some(remote) => remote.resolve(runtime, response, peer).await,
        None => refuse_remote(response, peer),
    }
}

/// Answer every remote read of `response` KAFKA_STORAGE_ERROR: no store is configured.
pub fn refuse_remote(response: &mut ApiResponse, peer: &str) {
    let ApiResponse::Fetch(fetch) = response else {
        return;
    };
    for partition in fetch
        .topics
        .iter_mut()
        .flat_map(|t| t.partitions.iter_mut())
    {
        if let FetchRecords::Remote(plan) = &partition.records {
            tracing::error!(
                "remote read of {} for {peer}: no remote store configured \
                 (weir.remote.storage.url)",
                plan.object_key
            );
            partition.error = ErrorCode::KAFKA_STORAGE_ERROR;
            partition.records = FetchRecords::Empty;
        }
    }
}

/// An S3 (or S3-compatible) store from the environment, bounded in time per request.
fn s3(bucket: &str) -> Result<Arc<dyn ObjectStore>, object_store::Error> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if builder
        .get_config_value(&AmazonS3ConfigKey::Region)
        .is_none()
    {
        builder = builder.with_region("us-east-1");
    }
    let endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint);
    let plain_http = endpoint.is_some_and(|endpoint| endpoint.starts_with("http://"));
    let client = object_store::ClientOptions::new()
        .with_allow_http(plain_http)
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(30));
    // A few quick retries (503 SlowDown, dropped connections), all within a minute: the
    // driver's own deadline bounds every call anyway, and the core retries uploads later.
    let retry = object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 5,
        retry_timeout: Duration::from_secs(50),
    };
    // reqwest (built without a provider of its own) takes the process-wide rustls provider:
    // install Weir's, unless one already is (a second install is refused, harmlessly).
    let _ =
        rustls::crypto::CryptoProvider::install_default(crate::tls::provider().as_ref().clone());
    let store = builder
        .with_virtual_hosted_style_request(false)
        .with_client_options(client)
        .with_retry(retry)
        .build()?;
    Ok(Arc::new(store))
}

/// A core key as a store path.
fn key_path(key: &str) -> Result<Path, RemoteError> {
    Path::parse(key).map_err(|error| RemoteError::Key {
        key: key.to_owned(),
        reason: error.to_string(),
    })
}

/// Await `work` until `deadline` (runtime time), naming the operation and key in errors.
async fn bounded<R: Runtime, T>(
    runtime: &R,
    deadline: Duration,
    operation: &'static str,
    key: &str,
    work: impl Future<Output = object_store::Result<T>>,
) -> Result<T, RemoteError> {
    let timer = runtime.sleep_until(deadline);
    tokio::select! {
        biased;
        result = work => result.map_err(|source| RemoteError::Store {
            operation,
            key: key.to_owned(),
            source,
        }),
        () = timer => Err(RemoteError::Timeout {
            operation,
            key: key.to_owned(),
        }),
    }
}

/// Decoded indexes by object key, the oldest evicted first.
#[derive(Debug)]
struct IndexCache {
    entries: BTreeMap<String, Arc<SegmentIndex>>,
    order: VecDeque<String>,
    capacity: usize,
}

impl IndexCache {
    fn new(capacity: usize) -> IndexCache {
        IndexCache {
            entries: BTreeMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    fn get(&self, key: &str) -> Option<Arc<SegmentIndex>> {
        self.entries.get(key).cloned()
    }

    fn insert(&mut self, key: &str, index: Arc<SegmentIndex>) {
        if self.capacity == 0 || self.entries.contains_key(key) {
            return;
        }
        while self.entries.len() >= self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        self.entries.insert(key.to_owned(), index);
        self.order.push_back(key.to_owned());
        assert!(
            self.entries.len() <= self.capacity,
            "index cache holds {} > {}",
            self.entries.len(),
            self.capacity
        );
    }

    fn remove(&mut self, key: &str) {
        if self.entries.remove(key).is_some() {
            self.order.retain(|held| held != key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the URLs Weir accepts parse to what they name (prefixes without their
    // slashes), and the rest are refused with a reason. Method: a table of both.
    #[test]
    fn urls_parse_or_say_why_not() {
        let file = RemoteUrl::File {
            directory: "/var/lib/tier".into(),
        };
        assert_eq!(RemoteUrl::parse("file:///var/lib/tier").ok(), Some(file));
        let s3 = |bucket: &str, prefix: &str| RemoteUrl::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        };
        assert_eq!(RemoteUrl::parse("s3://b").ok(), Some(s3("b", "")));
        assert_eq!(RemoteUrl::parse("S3://b/").ok(), Some(s3("b", "")));
        assert_eq!(
            RemoteUrl::parse("s3://b/weir/t/").ok(),
            Some(s3("b", "weir/t"))
        );
        let memory = RemoteUrl::Memory {
            prefix: "p".to_owned(),
        };
        assert_eq!(RemoteUrl::parse("memory:///p/").ok(), Some(memory));
        let refused = [
            ("", "expected"),
            ("/abs/dir", "expected"),
            ("file://relative", "absolute"),
            ("s3:///prefix", "bucket"),
            ("s3://b/a//c", "prefix"),
            ("s3://b?region=x", "query"),
            ("gs://b", "scheme \"gs\""),
        ];
        for (url, reason) in refused {
            match RemoteUrl::parse(url) {
                Err(error) => assert!(error.to_string().contains(reason), "{url}: {error}"),
                Ok(parsed) => panic!("{url} accepted as {parsed:?}"),
            }
        }
    }

    // Goal: the index cache holds at most its capacity, evicts the oldest insert first,
    // forgets removed keys, and with capacity 0 holds nothing. Method: insert past the
    // bound and look each key up.
    #[test]
    fn index_cache_is_bounded_and_evicts_oldest() {
        // The index of an object holding no batches, only `aborted` transactions.
        let index = |aborted: i64| {
            let job = UploadJob {
                job_id: 1,
                partition: weir_core::topic::PartitionId::new(uuid::Uuid::from_u128(1), 0),
                partition_key: 1,
                leader_epoch: 0,
                base_offset: 0,
                end_offset: 0,
                object_key: "k".to_owned(),
                read_bytes: 1,
                aborted: (0..aborted)
                    .map(|first_offset| weir_core::compaction::AbortedTxn {
                        producer_id: 1,
                        first_offset,
                        last_offset: first_offset,
                    })
                    .collect(),
            };
            let (tail, _) = weir_core::tier::SegmentReader::new(&job).finish();
            let split = tail.len() - weir_core::tier::FOOTER_LEN;
            let footer = weir_core::tier::Footer::decode(&tail[split..], tail.len() as u64);
            let footer = footer.expect("footer");
            Arc::new(SegmentIndex::decode(&tail[..split], &footer).expect("index"))
        };
        let mut cache = IndexCache::new(2);
        cache.insert("a", index(1));
        cache.insert("b", index(2));
        cache.insert("c", index(3));
        assert!(cache.get("a").is_none());
        assert!(cache.get("b").is_some() && cache.get("c").is_some());
        cache.remove("b");
        cache.insert("d", index(4));
        assert!(cache.get("c").is_some() && cache.get("d").is_some());
        assert_eq!(cache.entries.len(), 2);
        assert_eq!(cache.order.len(), 2);
        let mut none = IndexCache::new(0);
        none.insert("a", index(1));
        assert!(none.get("a").is_none());
    }
}
