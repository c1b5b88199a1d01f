//! Goal: FjallStorage edge cases beyond the shared conformance suite — straddling
//! truncations, the log-end check across reopen, empty logs, and the driver's refusal to
//! serve corrupt bytes. Method: apply ops directly and inspect reads, `logs()` and the
//! fetch-resolution helper.

use std::collections::BTreeMap;

use bytes::Bytes;
use weir::storage::fjall::FjallStorage;
use weir::storage::StorageDriver;
use weir_core::storage::{RangeSummary, Storage, StorageError, StorageOp, TimestampHit};
use weir_core::testing::batch_at;
use weir_wire::domain::{
    ApiResponse, FetchPartitionResponse, FetchRecords, FetchResponse, FetchTopicResponse, ReadPlan,
    TimestampLookup, TopicRef,
};
use weir_wire::error::ErrorCode;

const KEY: u64 = 3;

fn append(storage: &mut FjallStorage, base_offset: i64, count: usize) -> Bytes {
    let timestamps: Vec<i64> = (0..count as i64)
        .map(|index| 100 + base_offset + index)
        .collect();
    let batch = batch_at(base_offset, &timestamps);
    let last_offset = base_offset + count as i64 - 1;
    let op = StorageOp::Append {
        partition_key: KEY,
        base_offset,
        last_offset,
        batch: batch.clone(),
    };
    storage.apply(&op).expect("append");
    batch
}

fn read_all(storage: &FjallStorage, from: i64) -> Bytes {
    let plan = ReadPlan {
        partition_key: KEY,
        start_offset: from,
        end_offset: i64::MAX,
        max_bytes: u32::MAX,
    };
    storage.read(&plan).expect("read")
}

#[test]
fn truncations_keep_straddling_batches() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut storage = FjallStorage::open(directory.path()).expect("open");
    let first = append(&mut storage, 0, 3); // 0..=2
    let second = append(&mut storage, 3, 3); // 3..=5
    let third = append(&mut storage, 6, 3); // 6..=8

    // Reading from inside a batch starts with that whole batch.
    assert_eq!(
        read_all(&storage, 4),
        [second.clone(), third.clone()].concat()
    );

    // Suffix truncation at 4 keeps the batch 3..=5 that straddles it, drops 6..=8.
    storage
        .apply(&StorageOp::TruncateSuffix {
            partition_key: KEY,
            offset: 4,
        })
        .expect("suffix");
    assert_eq!(
        read_all(&storage, 0),
        [first.clone(), second.clone()].concat()
    );
    // The log end followed the truncation: appending at 6 again is accepted.
    let replacement = append(&mut storage, 6, 1);

    // Prefix truncation at 4 drops 0..=2 but keeps 3..=5 (it holds offset 4).
    storage
        .apply(&StorageOp::TruncatePrefix {
            partition_key: KEY,
            offset: 4,
        })
        .expect("prefix");
    assert_eq!(read_all(&storage, 0), [second, replacement].concat());
    let logs = storage.logs().expect("logs");
    assert_eq!(logs, BTreeMap::from([(KEY, Some((3, 7)))]));

    // Truncating everything leaves an empty log that still exists.
    storage
        .apply(&StorageOp::TruncatePrefix {
            partition_key: KEY,
            offset: 100,
        })
        .expect("all");
    assert_eq!(storage.logs().expect("logs"), BTreeMap::from([(KEY, None)]));
    assert!(read_all(&storage, 0).is_empty());
    let summary = storage.summarize(KEY, 100).expect("summary");
    assert_eq!(
        summary,
        RangeSummary {
            start_offset: 100,
            end_offset: 100,
            max_timestamp: -1,
            max_timestamp_offset: -1,
            ..RangeSummary::default()
        }
    );
}

#[test]
fn log_end_check_survives_reopen() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut storage = FjallStorage::open(directory.path()).expect("open");
    append(&mut storage, 0, 5);
    storage.sync().expect("sync");
    drop(storage);
    let mut storage = FjallStorage::open(directory.path()).expect("reopen");
    // An append overlapping the recovered log end is refused, not silently stored.
    let overlapping = batch_at(4, &[1]);
    let op = StorageOp::Append {
        partition_key: KEY,
        base_offset: 4,
        last_offset: 4,
        batch: overlapping,
    };
    assert!(storage.apply(&op).is_err());
    append(&mut storage, 5, 2);
    assert_eq!(
        storage.logs().expect("logs"),
        BTreeMap::from([(KEY, Some((0, 7)))])
    );
    // A batch whose header disagrees with the op is refused as corrupt.
    let mismatched = batch_at(9, &[1]);
    let op = StorageOp::Append {
        partition_key: KEY,
        base_offset: 7,
        last_offset: 7,
        batch: mismatched,
    };
    assert!(matches!(
        storage.apply(&op),
        Err(StorageError::Corrupt { .. })
    ));
}

/// Whether `haystack` holds `needle` as one contiguous run.
fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

// Goal: `sync` (which fdatasyncs outside fjall's journal lock, on its own descriptor of the
// active journal) makes the journal it syncs hold every op applied before it, also while
// another thread appends meanwhile (the node loop does, during a sync). Method: read the
// synced journal file back from the file system after each sync.
#[test]
fn sync_covers_appends_in_the_journal_it_fdatasyncs() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut storage = FjallStorage::open(directory.path()).expect("open");
    assert_eq!(storage.synced_journal(), None);
    let first = append(&mut storage, 0, 3);
    storage.sync().expect("sync");
    let journal = storage.synced_journal().expect("a synced journal");
    assert!(holds(&std::fs::read(&journal).expect("journal"), &first));
    let syncer = storage.clone();
    let last = std::thread::scope(|scope| {
        let syncs = scope.spawn(move || {
            for _ in 0..50 {
                syncer.sync().expect("concurrent sync");
            }
        });
        let mut last = Bytes::new();
        for index in 0..200 {
            last = append(&mut storage, 3 + index * 2, 2);
        }
        syncs.join().expect("sync thread");
        last
    });
    storage.sync().expect("sync");
    let journal = storage.synced_journal().expect("a synced journal");
    assert!(holds(&std::fs::read(&journal).expect("journal"), &last));
    assert_eq!(
        storage.logs().expect("logs"),
        BTreeMap::from([(KEY, Some((0, 403)))])
    );
}

#[test]
fn timestamp_lookup_and_read_bounds() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut storage = FjallStorage::open(directory.path()).expect("open");
    append(&mut storage, 0, 3); // timestamps 100, 101, 102
    let second = append(&mut storage, 3, 3); // timestamps 103, 104, 105
    let lookup = |timestamp, start_offset, end_offset| {
        let lookup = TimestampLookup {
            partition_key: KEY,
            timestamp,
            start_offset,
            end_offset,
        };
        (storage.lookup_timestamp(&lookup).expect("lookup")).map(|hit| (hit.offset, hit.timestamp))
    };
    assert_eq!(lookup(101, 0, 6), Some((1, 101)));
    assert_eq!(lookup(104, 0, 6), Some((4, 104)));
    assert_eq!(lookup(0, 2, 6), Some((2, 102)));
    assert_eq!(lookup(106, 0, 6), None);
    // end_offset excludes the second batch entirely.
    assert_eq!(lookup(103, 0, 3), None);
    // A read stops before the batch starting at end_offset and respects max_bytes after
    // the first batch.
    let plan = ReadPlan {
        partition_key: KEY,
        start_offset: 0,
        end_offset: 3,
        max_bytes: u32::MAX,
    };
    assert_eq!(storage.read(&plan).expect("read").len(), second.len());
    let plan = ReadPlan {
        partition_key: KEY,
        start_offset: 0,
        end_offset: 6,
        max_bytes: 1,
    };
    assert_eq!(storage.read(&plan).expect("read").len(), second.len());
}

/// A storage whose every read returns the same (possibly damaged) bytes.
#[derive(Clone)]
struct FixedRead(Bytes);

impl Storage for FixedRead {
    fn apply(&mut self, _op: &StorageOp) -> Result<(), StorageError> {
        Ok(())
    }
    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }
    fn read(&self, _plan: &ReadPlan) -> Result<Bytes, StorageError> {
        Ok(self.0.clone())
    }
    fn lookup_timestamp(
        &self,
        _lookup: &TimestampLookup,
    ) -> Result<Option<TimestampHit>, StorageError> {
        Ok(None)
    }
    fn summarize(&self, _key: u64, _from: i64) -> Result<RangeSummary, StorageError> {
        Ok(RangeSummary::default())
    }
    fn meta_entries(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StorageError> {
        Ok(vec![])
    }
    fn logs(&self) -> Result<BTreeMap<u64, Option<(i64, i64)>>, StorageError> {
        Ok(BTreeMap::new())
    }
}

impl StorageDriver for FixedRead {
    fn flush_to_os(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

fn fetch_response() -> ApiResponse {
    let plan = ReadPlan {
        partition_key: KEY,
        start_offset: 0,
        end_offset: 10,
        max_bytes: 1 << 20,
    };
    ApiResponse::Fetch(FetchResponse {
        topics: vec![FetchTopicResponse {
            topic: TopicRef::Name("t".to_owned()),
            partitions: vec![FetchPartitionResponse {
                partition: 0,
                error: ErrorCode::NONE,
                high_watermark: 10,
                last_stable_offset: 10,
                log_start_offset: 0,
                aborted_transactions: vec![],
                preferred_read_replica: -1,
                records: FetchRecords::Read(plan),
            }],
        }],
        ..FetchResponse::default()
    })
}

fn resolved_partition(storage: &FixedRead) -> FetchPartitionResponse {
    let mut response = fetch_response();
    weir::conn::resolve_reads(storage, &mut response, "test-peer");
    let ApiResponse::Fetch(fetch) = response else {
        panic!("not a fetch")
    };
    fetch.topics[0].partitions[0].clone()
}

#[test]
fn corrupt_reads_are_never_served() {
    // Goal: the driver checks every batch's CRC after reading and answers a damaged
    // partition with KAFKA_STORAGE_ERROR instead of serving it. Method: feed the fetch
    // resolver a storage returning a good batch, a bit-flipped one and a truncated one.
    let good = [batch_at(0, &[1, 2]), batch_at(2, &[3])].concat();
    let partition = resolved_partition(&FixedRead(Bytes::from(good.clone())));
    assert_eq!(partition.error, ErrorCode::NONE);
    assert_eq!(
        partition.records,
        FetchRecords::Bytes(Bytes::from(good.clone()))
    );

    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    let partition = resolved_partition(&FixedRead(Bytes::from(flipped)));
    assert_eq!(partition.error, ErrorCode::KAFKA_STORAGE_ERROR);
    assert_eq!(partition.records, FetchRecords::Empty);

    let truncated = Bytes::from(good[..good.len() - 3].to_vec());
    let partition = resolved_partition(&FixedRead(truncated));
    assert_eq!(partition.error, ErrorCode::KAFKA_STORAGE_ERROR);
}
