//! The storage contract between the sans-IO core and its storage drivers.
//!
//! The core never performs IO. It emits [`StorageOp`]s (buffered writes, applied by the
//! driver in emission order) and [`crate::Output::Sync`] requests (make everything applied
//! so far durable); the driver reports each sync back as a [`crate::Completion`]. Reads for
//! fetches and timestamp lookups are planned by the core ([`weir_wire::domain::ReadPlan`],
//! [`weir_wire::domain::TimestampLookup`]) and executed by the driver through [`Storage`].
//!
//! Two implementations exist: `FjallStorage` in the server (production) and
//! [`MemStorage`] here (tests and, extended with faults, the simulator). Both must pass the
//! conformance suite in [`conformance`].
//!
//! Layout every implementation must provide:
//! - a partition log per `partition_key` (a u64 the core allocates; never reused): record
//!   batches in their wire form, keyed by base offset, in offset order;
//! - a metadata map of small key/value entries the core owns (topic definitions, segment
//!   summaries, the next partition key), opaque to storage.
//!
//! # Gaps and compacted batches
//! Offsets of a partition log are not dense. Log compaction rewrites closed parts of a log
//! in place ([`StorageOp::ReplaceBatch`]): a batch keeps its base offset and last offset
//! but may hold fewer records than offsets (`record_count < last_offset_delta + 1`, down
//! to 0 for an empty batch kept for its producer state), or it is removed, which leaves a
//! gap between its neighbours. A follower may also append a batch above its log end (a gap
//! its leader's compaction made). Every read treats the log as "the stored batches, in
//! offset order": an offset inside a gap is served by the next stored batch, and only
//! records that exist answer a timestamp lookup.
//!
//! Invariant (every implementation): stored batches of one log never overlap; each one's
//! base offset is above the previous one's last offset.

use std::collections::BTreeMap;

use bytes::Bytes;
use weir_wire::batch::BatchHeader;
use weir_wire::domain::{ReadPlan, TimestampLookup};

pub mod conformance;
mod mem;

pub use mem::{MemStorage, MEM_UNSYNCED_OPS_MAX};

/// A buffered write. Applied in emission order; durable only after a later sync completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageOp {
    /// Append one batch (already carrying its assigned base offset) to a partition log.
    /// Its base offset must be above the last stored batch's last offset; it may be more
    /// than one above (a follower appending across a gap its leader's compaction left).
    /// Storage does not require `record_count == last_offset_delta + 1`: a follower copies
    /// compacted batches as the leader stores them.
    Append {
        /// The partition log.
        partition_key: u64,
        /// Base offset of the batch (bytes 0..8 of `batch` hold it too).
        base_offset: i64,
        /// Last offset in the batch (base + last_offset_delta).
        last_offset: i64,
        /// The batch in wire form.
        batch: Bytes,
    },
    /// Replace the stored batch whose base offset is `base_offset` with `batch`, or remove
    /// it when `batch` is `None` (log compaction rewriting a closed part of the log).
    ///
    /// A replacement keeps the batch's offset span: its header has the same base offset
    /// and the same last offset as the stored batch (the caller guarantees it; storage
    /// refuses a mismatch as [`StorageError::Corrupt`], which poisons the node). Its record
    /// count may be anything from 0 to `last_offset_delta + 1`; the records it keeps keep
    /// their offsets. A removal leaves a gap in the log's offsets that reads skip.
    ///
    /// When no stored batch *starts* at `base_offset` (retention or a truncation already
    /// removed it, an earlier op removed it, the log was dropped, or `base_offset` falls
    /// inside a batch), the op is a no-op, not an error: a compaction result may race with
    /// retention, and applying the op twice (a crash replaying the journal) ends in the
    /// same state as applying it once. Atomic per op and durable after the next sync, like
    /// every op.
    ///
    /// Removing the last stored batch lowers the log's end in [`Storage::logs`] and
    /// [`Storage::summarize`]; a compaction that must keep the log end replaces that batch
    /// with an empty one instead (as Kafka's cleaner keeps a producer's last batch).
    ReplaceBatch {
        /// The partition log.
        partition_key: u64,
        /// Base offset of the stored batch to replace or remove.
        base_offset: i64,
        /// The replacement in wire form (same base and last offset), `None` to remove.
        batch: Option<Bytes>,
    },
    /// Remove every batch whose last offset is below `offset` (retention, DeleteRecords).
    /// A batch holding `offset` in its span stays whole, even if the record at `offset`
    /// was compacted away; gaps need no special case.
    TruncatePrefix {
        /// The partition log.
        partition_key: u64,
        /// New log start offset.
        offset: i64,
    },
    /// Remove every batch with base offset >= `offset` (replication truncation). A batch
    /// whose span straddles `offset` stays whole. Appends may continue at any base offset
    /// above the last batch left (a follower may append across a gap).
    TruncateSuffix {
        /// The partition log.
        partition_key: u64,
        /// New log end offset.
        offset: i64,
    },
    /// Drop a whole partition log (topic deletion).
    DropPartition {
        /// The partition log.
        partition_key: u64,
    },
    /// Set a metadata entry.
    PutMeta {
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// Remove a metadata entry.
    DeleteMeta {
        /// Key.
        key: Vec<u8>,
    },
}

/// Why a storage call failed. Any error from `apply` or `sync` poisons the node: the driver
/// stops serving and exits non-zero rather than risk acknowledging lost data.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The underlying engine failed (IO error, fjall poisoned, injected fault).
    #[error("storage io: {0}")]
    Io(String),
    /// Stored bytes failed their checksum or could not be parsed.
    #[error("storage corruption in partition log {partition_key} at offset {offset}: {reason}")]
    Corrupt {
        /// The partition log.
        partition_key: u64,
        /// Offset at (or near) the damage.
        offset: i64,
        /// What was wrong.
        reason: String,
    },
}

/// One metadata entry: `(key, value)`.
pub type MetaPair = (Vec<u8>, Vec<u8>);

/// Summary of the stored batches of a range of a partition log, from batch headers. The
/// range may hold gaps (see the module doc): only stored batches count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RangeSummary {
    /// Base offset of the first stored batch in the range, or the range start when empty.
    pub start_offset: i64,
    /// One past the last offset of the last stored batch (the log end offset of the
    /// range), or the range start when empty.
    pub end_offset: i64,
    /// Sum of the stored batches' sizes in bytes.
    pub bytes: u64,
    /// Number of stored batches, empty (compacted) batches included.
    pub batch_count: u64,
    /// Largest max_timestamp of any batch holding records, -1 if none does. An empty
    /// batch's header keeps the timestamp of records that no longer exist, so it does not
    /// count: a lookup of this timestamp finds a record.
    pub max_timestamp: i64,
    /// Base offset of the first batch holding `max_timestamp` (ListOffsets -3), -1 if none.
    pub max_timestamp_offset: i64,
}

impl RangeSummary {
    /// The summary of no batches at `from_offset`.
    pub fn empty(from_offset: i64) -> RangeSummary {
        RangeSummary {
            start_offset: from_offset,
            end_offset: from_offset,
            bytes: 0,
            batch_count: 0,
            max_timestamp: -1,
            max_timestamp_offset: -1,
        }
    }

    /// Add the next stored batch (in offset order) of `size_bytes` bytes to the summary.
    pub fn push(&mut self, header: &BatchHeader, size_bytes: u64) {
        if self.batch_count == 0 {
            self.start_offset = header.base_offset;
        } else {
            // Stored batches never overlap (the module's invariant); a gap is fine.
            assert!(
                header.base_offset >= self.end_offset,
                "batch at {} overlaps the range ending at {}",
                header.base_offset,
                self.end_offset
            );
        }
        self.end_offset = header.last_offset() + 1;
        self.bytes += size_bytes;
        self.batch_count += 1;
        if header.record_count > 0 && header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.max_timestamp_offset = header.base_offset;
        }
    }
}

/// The record a timestamp lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampHit {
    /// The record's offset.
    pub offset: i64,
    /// The record's timestamp (a LogAppendTime batch's for all its records).
    pub timestamp: i64,
    /// The leader epoch its batch was written in (the batch's partition leader epoch):
    /// what ListOffsets answers with it, so a consumer that seeks there validates its
    /// position against the epoch the record belongs to (KIP-320).
    pub leader_epoch: i32,
}

/// The first record of one stored batch that answers `lookup`: at an offset in
/// `[lookup.start_offset, lookup.end_offset)` with a timestamp >= `lookup.timestamp`.
/// Shared by every implementation so their lookups cannot drift apart.
///
/// Control batches and empty (compacted) batches never answer. A LogAppendTime batch
/// stamps every record with its max timestamp, so a dense one answers without decoding; a
/// compacted one is decoded, because its first offsets may hold no record any more.
pub fn first_record_in_batch(
    lookup: &TimestampLookup,
    header: &BatchHeader,
    batch: &Bytes,
) -> Result<Option<TimestampHit>, StorageError> {
    let hit = |offset, timestamp| TimestampHit {
        offset,
        timestamp,
        leader_epoch: header.partition_leader_epoch,
    };
    if header.is_control() || header.record_count <= 0 {
        return Ok(None);
    }
    // The batch header bounds every record's timestamp: rule the batch out undecoded.
    if header.max_timestamp < lookup.timestamp {
        return Ok(None);
    }
    let dense = i64::from(header.record_count) == i64::from(header.last_offset_delta) + 1;
    if header.is_log_append_time() && dense {
        let offset = header.base_offset.max(lookup.start_offset);
        let in_range = offset <= header.last_offset() && offset < lookup.end_offset;
        return Ok(in_range.then(|| hit(offset, header.max_timestamp)));
    }
    let records = weir_wire::records::decode_records(batch.clone()).map_err(|error| {
        StorageError::Corrupt {
            partition_key: lookup.partition_key,
            offset: header.base_offset,
            reason: format!("cannot decode records: {error}"),
        }
    })?;
    let found = records.iter().find(|record| {
        record.offset >= lookup.start_offset
            && record.offset < lookup.end_offset
            && record.timestamp >= lookup.timestamp
    });
    Ok(found.map(|record| hit(record.offset, record.timestamp)))
}

/// The storage interface drivers implement. Calls are synchronous; a driver decides what to
/// run off its event loop (fjall's fsync goes to `Runtime::offload`).
pub trait Storage {
    /// Apply one buffered write (not yet durable).
    fn apply(&mut self, op: &StorageOp) -> Result<(), StorageError>;
    /// Make every op applied so far durable (fsync). Blocking.
    fn sync(&self) -> Result<(), StorageError>;
    /// Whole stored batches of `plan.partition_key` starting with the batch whose offset
    /// span contains `plan.start_offset` (returned whole, even if the records before
    /// `start_offset` or at it were compacted away), or, when no stored batch contains it
    /// (a gap, a removed batch's offsets, or below the log start), the first stored batch
    /// after it; none with base offset >= `plan.end_offset`; stopping before
    /// `plan.max_bytes` would be exceeded — except that the first batch is always returned.
    /// Empty (compacted) batches are returned like any other: a consumer skips their offsets.
    /// Returns the batches concatenated exactly as stored.
    fn read(&self, plan: &ReadPlan) -> Result<Bytes, StorageError>;
    /// The first record whose timestamp is >= `lookup.timestamp` among offsets
    /// `[lookup.start_offset, lookup.end_offset)`, in offset order, or `None`. Only records
    /// that are stored count: gaps, offsets compacted out of a batch, empty batches and
    /// control batches never answer (the per-batch rule is [`first_record_in_batch`]).
    fn lookup_timestamp(
        &self,
        lookup: &TimestampLookup,
    ) -> Result<Option<TimestampHit>, StorageError>;
    /// The stored batches of `[from_offset, ..)` summarized from their headers (recovery
    /// of a log's tail): the batch containing `from_offset` if one does, else the first
    /// stored batch after it, then every later one. `start_offset` is that first batch's
    /// base offset, `end_offset` one past the last stored batch's last offset; gaps
    /// contribute nothing. With no such batch: `start_offset == end_offset == from_offset`
    /// and nothing counted. See [`RangeSummary`] for the timestamp fields.
    fn summarize(&self, partition_key: u64, from_offset: i64)
        -> Result<RangeSummary, StorageError>;
    /// Every metadata entry, in key order.
    fn meta_entries(&self) -> Result<Vec<MetaPair>, StorageError>;
    /// Every partition key that has a log, with (first stored batch's base offset, last
    /// stored batch's last offset + 1), or `None` bounds for a log with no batch. Gaps
    /// inside the bounds are not reported.
    fn logs(&self) -> Result<BTreeMap<u64, Option<(i64, i64)>>, StorageError>;
}
