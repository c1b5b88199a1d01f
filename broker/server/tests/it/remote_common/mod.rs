//! Shared by the remote store tests (`remote_store.rs` over file:// and memory://,
//! `remote_s3.rs` over a real S3-compatible server): a fjall log of real record batches,
//! upload jobs over it, fetch responses carrying remote read plans, and the round-trip
//! check every store must pass.
#![allow(dead_code)] // Helpers for every file; not each is used.

use bytes::{Bytes, BytesMut};
use object_store::path::Path;
use object_store::ObjectStoreExt;
use tempfile::TempDir;
use weir::remote::RemoteStore;
use weir::storage::fjall::FjallStorage;
use weir_core::compaction::AbortedTxn;
use weir_core::storage::{Storage, StorageOp};
use weir_core::tier::{UploadJob, Uploaded};
use weir_core::topic::PartitionId;
use weir_core::Completion;
use weir_runtime::TokioRuntime;
use weir_wire::batch::{iter_batches, set_base_offset};
use weir_wire::domain::{
    AbortedTransaction, ApiResponse, FetchPartitionResponse, FetchRecords, FetchResponse,
    FetchTopicResponse, RemoteReadPlan, TopicRef,
};
use weir_wire::error::ErrorCode;
use weir_wire::records::{encode_batch, BatchOptions, Record};

/// The partition's storage key in the test log.
pub const PARTITION_KEY: u64 = 5;

/// One stored batch.
#[derive(Debug, Clone)]
pub struct StoredBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub bytes: Bytes,
    pub max_timestamp: i64,
}

/// A partition log in fjall, and what it holds.
pub struct Log {
    pub storage: FjallStorage,
    pub batches: Vec<StoredBatch>,
    _directory: TempDir,
}

impl Log {
    /// A log of one batch per entry of `records_per_batch`, each record's value
    /// `value_bytes` long (pseudo-random, so nothing compresses), timestamps increasing.
    pub fn new(records_per_batch: &[usize], value_bytes: usize) -> Log {
        let directory = tempfile::tempdir().expect("temp dir");
        let mut storage = FjallStorage::open(directory.path()).expect("open fjall");
        let mut batches = Vec::new();
        let mut offset = 0i64;
        let mut noise = 0x9e37_79b9_7f4a_7c15u64;
        for (index, &count) in records_per_batch.iter().enumerate() {
            let timestamp = 1_000 + index as i64 * 10;
            let records: Vec<Record> = (0..count)
                .map(|delta| {
                    let value: Vec<u8> = (0..value_bytes)
                        .map(|_| {
                            noise ^= noise << 13;
                            noise ^= noise >> 7;
                            noise ^= noise << 17;
                            noise as u8
                        })
                        .collect();
                    Record {
                        offset: delta as i64,
                        timestamp: timestamp + delta as i64,
                        key: None,
                        value: Some(Bytes::from(value)),
                        headers: Vec::new(),
                    }
                })
                .collect();
            let encoded = encode_batch(&records, &BatchOptions::default()).expect("encode");
            let mut bytes = BytesMut::from(&encoded[..]);
            set_base_offset(&mut bytes, offset);
            let bytes = bytes.freeze();
            let last_offset = offset + count as i64 - 1;
            let op = StorageOp::Append {
                partition_key: PARTITION_KEY,
                base_offset: offset,
                last_offset,
                batch: bytes.clone(),
            };
            storage.apply(&op).expect("append");
            batches.push(StoredBatch {
                base_offset: offset,
                last_offset,
                bytes,
                max_timestamp: timestamp + count as i64 - 1,
            });
            offset = last_offset + 1;
        }
        Log {
            storage,
            batches,
            _directory: directory,
        }
    }

    /// One past the last offset.
    pub fn end_offset(&self) -> i64 {
        self.batches.last().map_or(0, |batch| batch.last_offset + 1)
    }

    /// Bytes of all batches.
    pub fn data_bytes(&self) -> usize {
        self.batches.iter().map(|batch| batch.bytes.len()).sum()
    }

    /// The batch holding `offset`.
    pub fn batch_holding(&self, offset: i64) -> &StoredBatch {
        (self.batches.iter())
            .find(|batch| batch.base_offset <= offset && offset <= batch.last_offset)
            .expect("an offset of the log")
    }

    /// An upload job of the whole log under `key`, reading storage `read_bytes` at a time.
    pub fn job(&self, job_id: u64, key: &str, read_bytes: u32) -> UploadJob {
        UploadJob {
            job_id,
            partition: PartitionId::new(uuid::Uuid::from_u128(0x77), 0),
            partition_key: PARTITION_KEY,
            leader_epoch: 3,
            base_offset: 0,
            end_offset: self.end_offset(),
            object_key: key.to_owned(),
            read_bytes,
            aborted: aborted(),
        }
    }
}

/// The aborted transactions every test job carries.
pub fn aborted() -> Vec<AbortedTxn> {
    vec![
        AbortedTxn {
            producer_id: 7,
            first_offset: 2,
            last_offset: 4,
        },
        AbortedTxn {
            producer_id: 8,
            first_offset: 9,
            last_offset: 11,
        },
    ]
}

/// What a read_committed fetch of `[start, end)` must be told (Kafka's overlap rule).
pub fn aborted_overlapping(start: i64, end: i64) -> Vec<AbortedTransaction> {
    (aborted().into_iter())
        .filter(|txn| txn.last_offset >= start && txn.first_offset < end)
        .map(|txn| AbortedTransaction {
            producer_id: txn.producer_id,
            first_offset: txn.first_offset,
        })
        .collect()
}

/// A remote read plan.
pub fn plan(key: &str, start: i64, end: i64, max_bytes: u32, committed: bool) -> RemoteReadPlan {
    RemoteReadPlan {
        object_key: key.to_owned(),
        start_offset: start,
        end_offset: end,
        max_bytes,
        read_committed: committed,
    }
}

/// A fetch response with one partition per plan (partition = its index).
pub fn fetch(plans: Vec<RemoteReadPlan>) -> ApiResponse {
    let partitions = (plans.into_iter().enumerate())
        .map(|(index, plan)| FetchPartitionResponse {
            partition: index as i32,
            error: ErrorCode::NONE,
            high_watermark: 1_000,
            last_stable_offset: 1_000,
            log_start_offset: 0,
            aborted_transactions: vec![],
            preferred_read_replica: -1,
            records: FetchRecords::Remote(plan),
        })
        .collect();
    ApiResponse::Fetch(FetchResponse {
        topics: vec![FetchTopicResponse {
            topic: TopicRef::Name("tiered".to_owned()),
            partitions,
        }],
        ..FetchResponse::default()
    })
}

/// The partitions of a fetch response.
pub fn partitions(response: &ApiResponse) -> &[FetchPartitionResponse] {
    match response {
        ApiResponse::Fetch(fetch) => &fetch.topics[0].partitions,
        other => panic!("not a fetch: {other:?}"),
    }
}

/// Resolve one plan and return its partition.
pub async fn resolve_one(
    remote: &RemoteStore,
    runtime: &TokioRuntime,
    plan: RemoteReadPlan,
) -> FetchPartitionResponse {
    let mut response = fetch(vec![plan]);
    remote.resolve(runtime, &mut response, "test").await;
    partitions(&response)[0].clone()
}

/// Upload `log` whole under `key`; panics unless the store reports success.
pub async fn upload(
    remote: &RemoteStore,
    runtime: &TokioRuntime,
    log: &Log,
    key: &str,
    read_bytes: u32,
) -> Uploaded {
    let job = log.job(1, key, read_bytes);
    match remote.upload(&log.storage, runtime, &job).await {
        Completion::Uploaded(Ok(uploaded)) => uploaded,
        other => panic!("upload of {key} to {} failed: {other:?}", remote.label()),
    }
}

/// The round trip every store must pass, on an object uploaded from `log` under `key`:
/// the report is right; every offset is served from the batch holding it, whole; a read
/// stops before `end`; read_committed reads get the aborted transactions, others none; a
/// read past the object answers nothing.
pub async fn check_round_trip(
    remote: &RemoteStore,
    runtime: &TokioRuntime,
    log: &Log,
    key: &str,
    uploaded: &Uploaded,
) {
    let head = remote
        .object_store()
        .head(&Path::from(key))
        .await
        .expect("head");
    assert_eq!(uploaded.size_bytes, head.size, "reported size of {key}");
    let max_timestamp = log.batches.iter().map(|b| b.max_timestamp).max();
    assert_eq!(Some(uploaded.max_timestamp), max_timestamp);
    let end = log.end_offset();
    for offset in 0..end {
        let partition = resolve_one(remote, runtime, plan(key, offset, end, 1, false)).await;
        assert_eq!(partition.error, ErrorCode::NONE, "offset {offset}");
        let expected = &log.batch_holding(offset).bytes;
        assert_eq!(
            partition.records,
            FetchRecords::Bytes(expected.clone()),
            "at {offset}"
        );
        assert!(partition.aborted_transactions.is_empty());
    }
    let all = resolve_one(remote, runtime, plan(key, 0, end, u32::MAX, true)).await;
    let concatenated: Vec<u8> = log.batches.iter().flat_map(|b| b.bytes.to_vec()).collect();
    assert_eq!(all.records, FetchRecords::Bytes(Bytes::from(concatenated)));
    assert_eq!(all.aborted_transactions, aborted_overlapping(0, end));
    // A read ending inside the log serves only batches starting before its end.
    let cut = log.batches[log.batches.len() / 2].base_offset;
    let head_read = resolve_one(remote, runtime, plan(key, 0, cut, u32::MAX, true)).await;
    let FetchRecords::Bytes(bytes) = &head_read.records else {
        panic!("no bytes below {cut}: {head_read:?}");
    };
    let served: Vec<i64> = iter_batches(bytes)
        .map(|item| item.expect("batch").0.base_offset)
        .collect();
    let expected: Vec<i64> = (log.batches.iter())
        .map(|b| b.base_offset)
        .filter(|&base| base < cut)
        .collect();
    assert_eq!(served, expected);
    assert_eq!(head_read.aborted_transactions, aborted_overlapping(0, cut));
    let past = resolve_one(remote, runtime, plan(key, end, end + 10, 1, true)).await;
    assert_eq!(past.error, ErrorCode::NONE);
    assert_eq!(past.records, FetchRecords::Empty);
}
