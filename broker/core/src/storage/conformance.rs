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
//!   the largest timestamp;
//! - gaps and compacted batches (see the [`super`] module doc): reads start at the next
//!   stored batch, empty batches are served but never answer a lookup nor set a summary's
//!   max timestamp, [`StorageOp::ReplaceBatch`] of a batch that is not stored is a no-op
//!   and applying it twice equals applying it once;
//! - an append is checked against the last batch *stored* now (what a reopen would find),
//!   so after the last batch was removed, appends continue after the one before it.

use bytes::Bytes;
use weir_wire::batch::parse_header;
use weir_wire::domain::{ReadPlan, TimestampLookup};

use super::{RangeSummary, Storage, StorageError, StorageOp};
use crate::testing::{batch_at, compacted_batch_at};

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
    compacted_reads_skip_gaps(factory);
    appends_across_gaps(factory);
    summaries_over_gaps(factory);
    timestamps_over_gaps_and_empty_batches(factory);
    truncations_across_gaps(factory);
    replace_is_idempotent_and_ignores_missing_batches(factory);
    compaction_survives_reopen(factory);
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
        (storage.lookup_timestamp(&lookup).expect("lookup succeeds"))
            .map(|hit| (hit.offset, hit.timestamp))
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

    // A hit carries the epoch its batch was written in, for ListOffsets to answer.
    let mut stamped = batch_at(8, &[60]).to_vec();
    weir_wire::batch::set_partition_leader_epoch(&mut stamped, 7);
    let op = StorageOp::Append {
        partition_key: KEY,
        base_offset: 8,
        last_offset: 8,
        batch: Bytes::from(stamped),
    };
    storage.apply(&op).expect("append applies");
    let lookup = TimestampLookup {
        partition_key: KEY,
        timestamp: 55,
        start_offset: 0,
        end_offset: 9,
    };
    let hit = storage.lookup_timestamp(&lookup).expect("lookup succeeds");
    assert_eq!(
        hit.map(|hit| (hit.offset, hit.timestamp, hit.leader_epoch)),
        Some((8, 60, 7)),
        "the batch's partition leader epoch"
    );
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

/// The log [`compact`] leaves: offsets 0-2 (CreateTime 10, 20, 30), 3-5 LogAppendTime 35
/// holding only offset 5, a gap at 6, 7-9 an empty LogAppendTime batch whose header still
/// says 90, 10-11 (CreateTime 70, 65). Returns the stored batches in offset order.
fn compacted_log<S: Storage>(storage: &mut S, key: u64) -> Vec<Bytes> {
    let originals = [
        batch_at(0, &[10, 20, 30]),
        compacted_batch_at(3, 2, &[(0, 0), (1, 0), (2, 0)], 35, true),
        batch_at(6, &[40]),
        compacted_batch_at(7, 2, &[(0, 0), (1, 0), (2, 0)], 90, true),
        batch_at(10, &[70, 65]),
    ];
    for batch in &originals {
        append_batch(storage, key, batch.clone());
    }
    let ops = compact(key);
    for op in &ops {
        storage.apply(op).expect("compaction op applies");
    }
    let replacement = |index: usize| match &ops[index] {
        StorageOp::ReplaceBatch {
            batch: Some(batch), ..
        } => batch.clone(),
        other => panic!("op {index} is not a replacement: {other:?}"),
    };
    vec![
        originals[0].clone(),
        replacement(0),
        replacement(2),
        originals[4].clone(),
    ]
}

/// The compaction of [`compacted_log`]: shrink 3-5 to offset 5, remove 6, empty 7-9.
fn compact(key: u64) -> [StorageOp; 3] {
    [
        StorageOp::ReplaceBatch {
            partition_key: key,
            base_offset: 3,
            batch: Some(compacted_batch_at(3, 2, &[(2, 0)], 35, true)),
        },
        StorageOp::ReplaceBatch {
            partition_key: key,
            base_offset: 6,
            batch: None,
        },
        StorageOp::ReplaceBatch {
            partition_key: key,
            base_offset: 7,
            batch: Some(compacted_batch_at(7, 2, &[], 90, true)),
        },
    ]
}

/// Append `batch` at the offsets its header gives.
fn append_batch<S: Storage>(storage: &mut S, key: u64, batch: Bytes) {
    let header = parse_header(&batch).expect("test batch parses");
    let op = StorageOp::Append {
        partition_key: key,
        base_offset: header.base_offset,
        last_offset: header.last_offset(),
        batch,
    };
    storage.apply(&op).expect("append applies");
}

fn lookup_at<S: Storage>(
    storage: &S,
    timestamp: i64,
    start_offset: i64,
    end_offset: i64,
) -> Option<(i64, i64)> {
    let lookup = TimestampLookup {
        partition_key: KEY,
        timestamp,
        start_offset,
        end_offset,
    };
    (storage.lookup_timestamp(&lookup).expect("lookup succeeds"))
        .map(|hit| (hit.offset, hit.timestamp))
}

/// A read starting in a gap, at a removed batch's base offset or inside a compacted batch
/// returns whole stored batches from the next (or containing) one on; empty batches are
/// served like any other.
pub fn compacted_reads_skip_gaps<F: StorageFactory>(factory: &mut F) {
    let mut storage = factory.create();
    let b = compacted_log(&mut storage, KEY);
    assert_eq!(
        read(&storage, plan(0, 12, u32::MAX)),
        concat(&b),
        "read all"
    );
    assert_eq!(
        read(&storage, plan(3, 12, u32::MAX)),
        concat(&b[1..]),
        "start at a compacted batch"
    );
    assert_eq!(
        read(&storage, plan(4, 12, u32::MAX)),
        concat(&b[1..]),
        "start at a compacted-away offset inside a batch: the batch whole"
    );
    assert_eq!(
        read(&storage, plan(6, 12, u32::MAX)),
        concat(&b[2..]),
        "start at a removed batch's base offset: the next stored batch"
    );
    assert_eq!(
        read(&storage, plan(6, 12, 0)),
        b[2],
        "the first batch after a gap is whole despite max_bytes"
    );
    assert_eq!(
        read(&storage, plan(8, 12, u32::MAX)),
        concat(&b[2..]),
        "start inside an empty batch"
    );
    assert!(
        read(&storage, plan(6, 7, u32::MAX)).is_empty(),
        "a plan that ends before the batch after the gap"
    );
    assert_eq!(
        read(&storage, plan(0, 7, u32::MAX)),
        concat(&b[..2]),
        "end_offset inside the gap"
    );
    assert!(
        read(&storage, plan(12, 13, u32::MAX)).is_empty(),
        "read at the log end"
    );
    assert_eq!(
        storage.logs().expect("logs").get(&KEY),
        Some(&Some((0, 12))),
        "compaction keeps the log's bounds"
    );
}

/// A follower appends above its log end (a gap its leader's compaction made) and copies
/// compacted batches as stored; reads in the gap start at the batch after it.
pub fn appends_across_gaps<F: StorageFactory>(factory: &mut F) {
    let mut storage = factory.create();
    let first = batch_at(0, &[10, 20, 30]);
    let after_gap = batch_at(10, &[40, 50]);
    let compacted = compacted_batch_at(12, 3, &[(3, 60)], 60, false);
    let empty = compacted_batch_at(16, 1, &[], 70, false);
    for batch in [&first, &after_gap, &compacted, &empty] {
        append_batch(&mut storage, KEY, batch.clone());
    }
    let all = [first, after_gap, compacted, empty];
    assert_eq!(
        read(&storage, plan(5, 18, u32::MAX)),
        concat(&all[1..]),
        "read from inside the gap"
    );
    assert_eq!(
        storage.logs().expect("logs").get(&KEY),
        Some(&Some((0, 18))),
        "bounds across the gap"
    );
    let overlapping = batch_at(17, &[80]);
    let op = StorageOp::Append {
        partition_key: KEY,
        base_offset: 17,
        last_offset: 17,
        batch: overlapping,
    };
    assert!(
        storage.apply(&op).is_err(),
        "an append inside an empty batch's span overlaps it"
    );
    assert_eq!(
        lookup_at(&storage, 0, 13, 18),
        Some((15, 60)),
        "the compacted batch answers from its one record"
    );
    let remove_last = StorageOp::ReplaceBatch {
        partition_key: KEY,
        base_offset: 16,
        batch: None,
    };
    storage.apply(&remove_last).expect("remove the last batch");
    let again = batch_at(16, &[90]);
    append_batch(&mut storage, KEY, again.clone());
    assert_eq!(
        read(&storage, plan(16, 17, u32::MAX)),
        again,
        "appends are checked against the last batch stored now"
    );
    assert_eq!(
        storage.logs().expect("logs").get(&KEY),
        Some(&Some((0, 17))),
        "bounds after the re-append"
    );
}

/// summarize() counts the stored batches only: from a gap it starts at the next batch,
/// and an empty batch counts bytes but not its header's timestamp.
pub fn summaries_over_gaps<F: StorageFactory>(factory: &mut F) {
    let mut storage = factory.create();
    let b = compacted_log(&mut storage, KEY);
    let bytes = |batches: &[Bytes]| batches.iter().map(|b| b.len() as u64).sum::<u64>();
    let whole = storage.summarize(KEY, 0).expect("summarize");
    let expected = RangeSummary {
        start_offset: 0,
        end_offset: 12,
        bytes: bytes(&b),
        batch_count: 4,
        // The empty batch at 7 says 90, but no record carries it.
        max_timestamp: 70,
        max_timestamp_offset: 10,
    };
    assert_eq!(whole, expected, "summary of the compacted log");
    let from_gap = storage.summarize(KEY, 6).expect("summarize");
    let expected = RangeSummary {
        start_offset: 7,
        end_offset: 12,
        bytes: bytes(&b[2..]),
        batch_count: 2,
        max_timestamp: 70,
        max_timestamp_offset: 10,
    };
    assert_eq!(from_gap, expected, "summary from inside the gap");
    let from_compacted = storage.summarize(KEY, 4).expect("summarize");
    assert_eq!(
        (
            from_compacted.start_offset,
            from_compacted.batch_count,
            from_compacted.bytes
        ),
        (3, 3, bytes(&b[1..])),
        "summary from a compacted-away offset starts at its batch"
    );
    let inside_empty = storage.summarize(KEY, 8).expect("summarize");
    assert_eq!(
        (inside_empty.start_offset, inside_empty.batch_count),
        (7, 2),
        "summary from inside an empty batch starts at it"
    );
    storage
        .apply(&StorageOp::ReplaceBatch {
            partition_key: KEY,
            base_offset: 10,
            batch: None,
        })
        .expect("remove the last batch");
    let tail = storage.summarize(KEY, 8).expect("summarize");
    let expected = RangeSummary {
        start_offset: 7,
        end_offset: 10,
        bytes: bytes(&b[2..3]),
        batch_count: 1,
        max_timestamp: -1,
        max_timestamp_offset: -1,
    };
    assert_eq!(tail, expected, "only an empty batch left: no max timestamp");
    let past = storage.summarize(KEY, 10).expect("summarize");
    assert_eq!(
        past,
        RangeSummary::empty(10),
        "from past the last stored batch"
    );
}

/// lookup_timestamp() answers from records that are stored: it skips gaps, offsets
/// compacted out of a batch (also in LogAppendTime batches) and empty batches, whatever
/// their headers say.
pub fn timestamps_over_gaps_and_empty_batches<F: StorageFactory>(factory: &mut F) {
    let mut storage = factory.create();
    compacted_log(&mut storage, KEY);
    assert_eq!(
        lookup_at(&storage, 0, 3, 12),
        Some((5, 35)),
        "a compacted LogAppendTime batch answers with its first stored record"
    );
    assert_eq!(
        lookup_at(&storage, 31, 0, 12),
        Some((5, 35)),
        "skips a batch below the target, then a compacted one"
    );
    assert_eq!(
        lookup_at(&storage, 36, 0, 12),
        Some((10, 70)),
        "an empty batch never answers, even when its header's timestamp reaches the target"
    );
    assert_eq!(
        lookup_at(&storage, 0, 6, 12),
        Some((10, 70)),
        "start in the gap, then an empty batch"
    );
    assert_eq!(
        lookup_at(&storage, 66, 0, 12),
        Some((10, 70)),
        "first record in offset order"
    );
    assert_eq!(lookup_at(&storage, 71, 0, 12), None, "beyond every record");
    assert_eq!(
        lookup_at(&storage, 0, 3, 5),
        None,
        "the only record of 3-5 is at 5, past end_offset"
    );
    assert_eq!(
        lookup_at(&storage, 0, 6, 7),
        None,
        "a range that holds only a gap"
    );
}

/// Truncations treat gaps and compacted batches by their offset spans: a prefix cut in a
/// gap starts the log at the next batch, an empty batch still holds its span, a suffix cut
/// in a gap drops what follows and appends may continue across it.
pub fn truncations_across_gaps<F: StorageFactory>(factory: &mut F) {
    let mut storage = factory.create();
    let b = compacted_log(&mut storage, KEY);
    let truncate_prefix = |offset| StorageOp::TruncatePrefix {
        partition_key: KEY,
        offset,
    };
    storage.apply(&truncate_prefix(6)).expect("truncate");
    assert_eq!(
        read(&storage, plan(0, 12, u32::MAX)),
        concat(&b[2..]),
        "prefix truncated inside the gap"
    );
    assert_eq!(
        storage.logs().expect("logs").get(&KEY),
        Some(&Some((7, 12))),
        "the log starts at the batch after the gap"
    );
    storage.apply(&truncate_prefix(9)).expect("truncate");
    assert_eq!(
        read(&storage, plan(0, 12, u32::MAX)),
        concat(&b[2..]),
        "an empty batch holding 9 stays"
    );
    let truncate_suffix = |offset| StorageOp::TruncateSuffix {
        partition_key: KEY,
        offset,
    };
    storage.apply(&truncate_suffix(11)).expect("truncate");
    assert_eq!(
        read(&storage, plan(0, 12, u32::MAX)),
        concat(&b[2..]),
        "a batch straddling 11 stays"
    );
    storage.apply(&truncate_suffix(8)).expect("truncate");
    assert_eq!(
        read(&storage, plan(0, 12, u32::MAX)),
        b[2],
        "an empty batch straddling 8 stays, the batch after it goes"
    );

    let mut storage = factory.create();
    let b = compacted_log(&mut storage, KEY);
    storage.apply(&truncate_suffix(6)).expect("truncate");
    assert_eq!(
        storage.logs().expect("logs").get(&KEY),
        Some(&Some((0, 6))),
        "suffix truncated at the gap"
    );
    let after_gap = batch_at(8, &[80]);
    append_batch(&mut storage, KEY, after_gap.clone());
    assert_eq!(
        read(&storage, plan(4, 9, u32::MAX)),
        concat(&[b[1].clone(), after_gap]),
        "an append across a new gap"
    );
    storage
        .apply(&StorageOp::DropPartition { partition_key: KEY })
        .expect("drop");
    assert!(
        !storage.logs().expect("logs").contains_key(&KEY),
        "a compacted log drops like any other"
    );
}

/// ReplaceBatch is a no-op for a batch that is not stored (removed, truncated, inside
/// another batch, past the end, unknown log), applying it twice equals once, and a
/// replacement that changes the offset span is refused and changes nothing.
pub fn replace_is_idempotent_and_ignores_missing_batches<F: StorageFactory>(factory: &mut F) {
    let mut storage = factory.create();
    let b = compacted_log(&mut storage, KEY);
    for op in compact(KEY) {
        storage.apply(&op).expect("applying a compaction op again");
    }
    assert_eq!(
        read(&storage, plan(0, 12, u32::MAX)),
        concat(&b),
        "compaction applied twice equals once"
    );
    storage
        .apply(&StorageOp::TruncatePrefix {
            partition_key: KEY,
            offset: 3,
        })
        .expect("truncate");
    let stray = |base_offset: i64, last_offset_delta: i32| StorageOp::ReplaceBatch {
        partition_key: KEY,
        base_offset,
        batch: Some(compacted_batch_at(
            base_offset,
            last_offset_delta,
            &[],
            1,
            false,
        )),
    };
    for (op, case) in [
        (stray(0, 2), "a batch retention truncated"),
        (stray(6, 0), "a removed batch is not brought back"),
        (stray(4, 1), "an offset inside a batch"),
        (stray(20, 0), "past the log end"),
    ] {
        storage.apply(&op).expect(case);
        assert_eq!(
            read(&storage, plan(0, 12, u32::MAX)),
            concat(&b[1..]),
            "{case}"
        );
    }
    let unknown = StorageOp::ReplaceBatch {
        partition_key: KEY + 1,
        base_offset: 0,
        batch: None,
    };
    storage.apply(&unknown).expect("unknown log");
    assert!(
        !storage.logs().expect("logs").contains_key(&(KEY + 1)),
        "a replacement in an unknown log creates no log"
    );
    let wider = StorageOp::ReplaceBatch {
        partition_key: KEY,
        base_offset: 10,
        batch: Some(compacted_batch_at(10, 2, &[(0, 70)], 70, false)),
    };
    assert!(
        matches!(storage.apply(&wider), Err(StorageError::Corrupt { .. })),
        "a replacement with another last offset is refused"
    );
    let lying = StorageOp::ReplaceBatch {
        partition_key: KEY,
        base_offset: 10,
        batch: Some(compacted_batch_at(9, 2, &[(2, 70)], 70, false)),
    };
    assert!(
        matches!(storage.apply(&lying), Err(StorageError::Corrupt { .. })),
        "a replacement whose header says another base offset is refused"
    );
    assert_eq!(
        read(&storage, plan(0, 12, u32::MAX)),
        concat(&b[1..]),
        "refused replacements change nothing"
    );
}

/// Replacements and removals are durable after sync; replaying them after a reopen changes
/// nothing; removing the last batch moves the log end the append check uses, the same way
/// before and after a reopen.
pub fn compaction_survives_reopen<F: StorageFactory>(factory: &mut F) {
    let mut storage = factory.create();
    let b = compacted_log(&mut storage, KEY);
    let remove_last = StorageOp::ReplaceBatch {
        partition_key: KEY,
        base_offset: 10,
        batch: None,
    };
    storage.apply(&remove_last).expect("remove the last batch");
    assert_eq!(
        storage.logs().expect("logs").get(&KEY),
        Some(&Some((0, 10))),
        "removing the last batch lowers the log end"
    );
    storage.sync().expect("sync");
    let summary = storage.summarize(KEY, 0).expect("summarize");
    let mut storage = factory.reopen(storage);
    assert_eq!(
        read(&storage, plan(0, 12, u32::MAX)),
        concat(&b[..3]),
        "compacted log after reopen"
    );
    assert_eq!(
        storage.logs().expect("logs").get(&KEY),
        Some(&Some((0, 10))),
        "bounds after reopen"
    );
    assert_eq!(
        storage.summarize(KEY, 0).expect("summarize"),
        summary,
        "summary after reopen"
    );
    for op in compact(KEY).iter().chain([&remove_last]) {
        storage.apply(op).expect("replayed compaction op");
    }
    assert_eq!(
        read(&storage, plan(0, 12, u32::MAX)),
        concat(&b[..3]),
        "replay after reopen changes nothing"
    );
    let next = batch_at(10, &[75]);
    append_batch(&mut storage, KEY, next.clone());
    assert_eq!(
        read(&storage, plan(10, 11, u32::MAX)),
        next,
        "appends continue after the last stored batch"
    );
}
