//! The storage conformance suite: one set of cases every [`Storage`] must pass, so the
//! simulator's disk is never kinder (or stranger) than the production one.
//!
//! Run it with a [`StorageFactory`]: `weir_core::storage::conformance::run_all(&mut f)`.
//! Cases panic with a message naming the broken rule; they are tests, not library code.
//!
//! Rules pinned here (beyond the [`Storage`] docs):
//! - reads, summaries and lookups of a partition key without a log are empty, not errors;
//! - a key whose log became empty maps to `None` in [`Storage::logs`] or is absent;
//! - [`RangeSummary::max_timestamp_offset`] is the base offset of the first batch holding
//!   the largest timestamp.

use bytes::Bytes;
use weir_wire::domain::{ReadPlan, TimestampLookup};

use super::{RangeSummary, Storage, StorageOp};
use crate::testing::batch_at;

/// Opens storages for the suite.
pub trait StorageFactory {
    /// The storage under test.
    type Storage: Storage;
    /// A fresh, empty storage.
    fn create(&mut self) -> Self::Storage;
    /// Close `storage` cleanly and open the same one again (data applied and synced
    /// before must be there).
    fn reopen(&mut self, storage: Self::Storage) -> Self::Storage;
}

/// Run every case.
pub fn run_all<F: StorageFactory>(factory: &mut F) {
    append_and_read_in_order(factory);
    read_plan_bounds(factory);
    truncate_prefix_and_suffix(factory);
    drop_partition(factory);
    meta_put_delete_list(factory);
    logs_bounds(factory);
    summarize_ranges(factory);
    lookup_timestamps(factory);
    synced_data_survives_reopen(factory);
    unknown_partitions_are_empty(factory);
}

/// Partition key used by the cases.
const KEY: u64 = 7;

/// Timestamps of the four standard batches: offsets 0-2, 3, 4-6, 7.
const STANDARD_TIMESTAMPS: [&[i64]; 4] = [&[10, 20, 30], &[25], &[40, 35, 50], &[45]];

/// Append the standard batches to `key`; returns them.
fn append_standard<S: Storage>(storage: &mut S, key: u64) -> Vec<Bytes> {
    let mut base_offset = 0;
    let mut batches = Vec::new();
    for timestamps in STANDARD_TIMESTAMPS {
        let batch = batch_at(base_offset, timestamps);
        let last_offset = base_offset + timestamps.len() as i64 - 1;
        let op = StorageOp::Append {
            partition_key: key,
            base_offset,
            last_offset,
            batch: batch.clone(),
        };
        storage.apply(&op).expect("append applies");
        batches.push(batch);
        base_offset = last_offset + 1;
    }
    batches
}

fn concat(batches: &[Bytes]) -> Bytes {
    batches
        .iter()
        .flat_map(|b| b.iter().copied())
        .collect::<Vec<u8>>()
        .into()
}

fn plan(start_offset: i64, end_offset: i64, max_bytes: u32) -> ReadPlan {
    ReadPlan {
        partition_key: KEY,
        start_offset,
        end_offset,
        max_bytes,
    }
}

fn read<S: Storage>(storage: &S, plan: ReadPlan) -> Bytes {
    storage.read(&plan).expect("read succeeds")
}

/// Batches come back exactly as appended, in offset order.
pub fn append_and_read_in_order<F: StorageFactory>(factory: &mut F) {
    let mut storage = factory.create();
    let batches = append_standard(&mut storage, KEY);
    assert_eq!(
        read(&storage, plan(0, 8, u32::MAX)),
        concat(&batches),
        "read all"
    );
    storage.sync().expect("sync succeeds");
    assert_eq!(
        read(&storage, plan(0, 8, u32::MAX)),
        concat(&batches),
        "read after sync"
    );
}

/// Start inside a batch, the first batch always whole, max_bytes and end_offset bounds.
pub fn read_plan_bounds<F: StorageFactory>(factory: &mut F) {
    let mut storage = factory.create();
    let b = append_standard(&mut storage, KEY);
    let two = (b[0].len() + b[1].len()) as u32;
    assert_eq!(
        read(&storage, plan(1, 8, u32::MAX)),
        concat(&b),
        "start inside the first batch"
    );
    assert_eq!(
        read(&storage, plan(3, 8, u32::MAX)),
        concat(&b[1..]),
        "start at a batch"
    );
    assert_eq!(
        read(&storage, plan(5, 8, u32::MAX)),
        concat(&b[2..]),
        "start inside a later batch"
    );
    assert_eq!(
        read(&storage, plan(0, 8, 1)),
        b[0],
        "first batch is whole despite max_bytes"
    );
    assert_eq!(
        read(&storage, plan(0, 8, 0)),
        b[0],
        "first batch is whole with max_bytes 0"
    );
    assert_eq!(
        read(&storage, plan(0, 8, two)),
        concat(&b[..2]),
        "max_bytes fits two batches"
    );
    assert_eq!(
        read(&storage, plan(0, 8, two - 1)),
        b[0],
        "never exceed max_bytes after the first"
    );
    assert_eq!(
        read(&storage, plan(0, 4, u32::MAX)),
        concat(&b[..2]),
        "end_offset excludes base 4"
    );
    assert_eq!(
        read(&storage, plan(0, 5, u32::MAX)),
        concat(&b[..3]),
        "end_offset 5 includes base 4"
    );
    assert!(
        read(&storage, plan(8, 9, u32::MAX)).is_empty(),
        "read at the log end is empty"
    );
    assert!(
        read(&storage, plan(100, 200, u32::MAX)).is_empty(),
        "read past the end is empty"
    );
}

/// Prefix truncation drops whole batches below the offset; suffix truncation drops batches
/// at or above it, and appends continue after it.
pub fn truncate_prefix_and_suffix<F: StorageFactory>(factory: &mut F) {
    let mut storage = factory.create();
    let b = append_standard(&mut storage, KEY);
    storage
        .apply(&StorageOp::TruncatePrefix {
            partition_key: KEY,
            offset: 4,
        })
        .expect("truncate");
    assert_eq!(
        read(&storage, plan(0, 8, u32::MAX)),
        concat(&b[2..]),
        "prefix truncated at 4"
    );
    storage
        .apply(&StorageOp::TruncatePrefix {
            partition_key: KEY,
            offset: 5,
        })
        .expect("truncate");
    assert_eq!(
        read(&storage, plan(0, 8, u32::MAX)),
        concat(&b[2..]),
        "a batch holding 5 stays"
    );
    storage
        .apply(&StorageOp::TruncateSuffix {
            partition_key: KEY,
            offset: 7,
        })
        .expect("truncate");
    assert_eq!(
        read(&storage, plan(0, 8, u32::MAX)),
        b[2],
        "suffix truncated at 7"
    );
    assert_eq!(
        storage.logs().expect("logs").get(&KEY),
        Some(&Some((4, 7))),
        "bounds after truncation"
    );
    let again = batch_at(7, &[60]);
    let op = StorageOp::Append {
        partition_key: KEY,
        base_offset: 7,
        last_offset: 7,
        batch: again.clone(),
    };
    storage.apply(&op).expect("append after suffix truncation");
    assert_eq!(
        read(&storage, plan(7, 8, u32::MAX)),
        again,
        "re-appended batch"
    );
}

/// A dropped partition has no log and reads empty; other partitions are untouched.
pub fn drop_partition<F: StorageFactory>(factory: &mut F) {
    let mut storage = factory.create();
    append_standard(&mut storage, KEY);
    let other = append_standard(&mut storage, KEY + 1);
    storage
        .apply(&StorageOp::DropPartition { partition_key: KEY })
        .expect("drop");
    assert!(
        read(&storage, plan(0, 8, u32::MAX)).is_empty(),
        "dropped log reads empty"
    );
    let logs = storage.logs().expect("logs");
    assert!(
        !logs.contains_key(&KEY),
        "dropped log is not listed: {logs:?}"
    );
    let other_plan = ReadPlan {
        partition_key: KEY + 1,
        ..plan(0, 8, u32::MAX)
    };
    assert_eq!(
        read(&storage, other_plan),
        concat(&other),
        "other partition untouched"
    );
}

/// Metadata: put, overwrite, delete (also of a missing key), listed in key order.
pub fn meta_put_delete_list<F: StorageFactory>(factory: &mut F) {
    let mut storage = factory.create();
    let put = |key: &[u8], value: &[u8]| StorageOp::PutMeta {
        key: key.to_vec(),
        value: value.to_vec(),
    };
    let delete = |key: &[u8]| StorageOp::DeleteMeta { key: key.to_vec() };
    for op in [
        put(b"c", b"3"),
        put(b"a", b"1"),
        put(b"b", b"2"),
        put(b"b", b"22"),
        delete(b"a"),
        delete(b"zz"),
    ] {
        storage.apply(&op).expect("meta op applies");
    }
    let expected = vec![
        (b"b".to_vec(), b"22".to_vec()),
        (b"c".to_vec(), b"3".to_vec()),
    ];
    assert_eq!(
        storage.meta_entries().expect("meta"),
        expected,
        "meta in key order"
    );
}

/// logs() reports every log's first base offset and end offset.
pub fn logs_bounds<F: StorageFactory>(factory: &mut F) {
    let mut storage = factory.create();
    append_standard(&mut storage, KEY);
    append_standard(&mut storage, KEY + 1);
    storage
        .apply(&StorageOp::TruncatePrefix {
            partition_key: KEY + 1,
            offset: 8,
        })
        .expect("truncate");
    let logs = storage.logs().expect("logs");
    assert_eq!(
        logs.get(&KEY),
        Some(&Some((0, 8))),
        "full log bounds: {logs:?}"
    );
    let emptied = logs.get(&(KEY + 1));
    assert!(
        matches!(emptied, None | Some(None)),
        "emptied log: {emptied:?}"
    );
}

/// summarize() over the whole log and from a batch boundary.
pub fn summarize_ranges<F: StorageFactory>(factory: &mut F) {
    let mut storage = factory.create();
    let b = append_standard(&mut storage, KEY);
    let bytes = |batches: &[Bytes]| batches.iter().map(|b| b.len() as u64).sum::<u64>();
    let whole = storage.summarize(KEY, 0).expect("summarize");
    let expected = RangeSummary {
        start_offset: 0,
        end_offset: 8,
        bytes: bytes(&b),
        batch_count: 4,
        max_timestamp: 50,
        max_timestamp_offset: 4,
    };
    assert_eq!(whole, expected, "summary of the whole log");
    let tail = storage.summarize(KEY, 7).expect("summarize");
    let expected = RangeSummary {
        start_offset: 7,
        end_offset: 8,
        bytes: bytes(&b[3..]),
        batch_count: 1,
        max_timestamp: 45,
        max_timestamp_offset: 7,
    };
    assert_eq!(tail, expected, "summary of the last batch");
    let empty = storage.summarize(KEY, 8).expect("summarize");
    assert_eq!(
        (empty.batch_count, empty.bytes, empty.max_timestamp),
        (0, 0, -1),
        "empty range"
    );
}

/// lookup_timestamp() finds the first offset (in offset order) with a timestamp >= target.
pub fn lookup_timestamps<F: StorageFactory>(factory: &mut F) {
    let mut storage = factory.create();
    append_standard(&mut storage, KEY);
    let lookup = |timestamp, start_offset, end_offset| {
        let lookup = TimestampLookup {
            partition_key: KEY,
            timestamp,
            start_offset,
            end_offset,
        };
        storage.lookup_timestamp(&lookup).expect("lookup succeeds")
    };
    assert_eq!(lookup(0, 0, 8), Some((0, 10)), "before everything");
    assert_eq!(lookup(15, 0, 8), Some((1, 20)), "inside the first batch");
    assert_eq!(
        lookup(26, 0, 8),
        Some((2, 30)),
        "batch max reaches the target"
    );
    assert_eq!(
        lookup(31, 0, 8),
        Some((4, 40)),
        "skips batches below the target"
    );
    assert_eq!(
        lookup(41, 0, 8),
        Some((6, 50)),
        "offset order, not timestamp order"
    );
    assert_eq!(lookup(51, 0, 8), None, "beyond every timestamp");
    assert_eq!(
        lookup(0, 1, 8),
        Some((1, 20)),
        "respects start_offset inside a batch"
    );
    assert_eq!(lookup(31, 0, 4), None, "respects end_offset");
}

/// Everything applied and synced is there after a clean close and reopen.
pub fn synced_data_survives_reopen<F: StorageFactory>(factory: &mut F) {
    let mut storage = factory.create();
    let b = append_standard(&mut storage, KEY);
    let meta = StorageOp::PutMeta {
        key: b"topic/x".to_vec(),
        value: b"{}".to_vec(),
    };
    storage.apply(&meta).expect("meta");
    storage.sync().expect("sync");
    let mut storage = factory.reopen(storage);
    assert_eq!(
        read(&storage, plan(0, 8, u32::MAX)),
        concat(&b),
        "log after reopen"
    );
    assert_eq!(
        storage.logs().expect("logs").get(&KEY),
        Some(&Some((0, 8))),
        "bounds after reopen"
    );
    assert_eq!(
        storage.meta_entries().expect("meta").len(),
        1,
        "meta after reopen"
    );
    let next = batch_at(8, &[70]);
    let op = StorageOp::Append {
        partition_key: KEY,
        base_offset: 8,
        last_offset: 8,
        batch: next.clone(),
    };
    storage.apply(&op).expect("append after reopen");
    assert_eq!(
        read(&storage, plan(8, 9, u32::MAX)),
        next,
        "appends continue after reopen"
    );
}

/// Keys without a log read empty instead of failing.
pub fn unknown_partitions_are_empty<F: StorageFactory>(factory: &mut F) {
    let storage = factory.create();
    assert!(
        read(&storage, plan(0, 10, 100)).is_empty(),
        "read of an unknown log"
    );
    let summary = storage.summarize(KEY, 3).expect("summarize unknown");
    assert_eq!(
        (
            summary.batch_count,
            summary.start_offset,
            summary.end_offset
        ),
        (0, 3, 3)
    );
    let lookup = TimestampLookup {
        partition_key: KEY,
        timestamp: 0,
        start_offset: 0,
        end_offset: 9,
    };
    assert_eq!(
        storage.lookup_timestamp(&lookup).expect("lookup unknown"),
        None
    );
    assert!(
        storage.logs().expect("logs").is_empty(),
        "no logs in a fresh storage"
    );
    assert!(
        storage.meta_entries().expect("meta").is_empty(),
        "no meta in a fresh storage"
    );
}
