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

use bytes::Bytes;

pub mod conformance;
mod mem;

pub use mem::{MemStorage, MEM_UNSYNCED_OPS_MAX};

/// A buffered write. Applied in emission order; durable only after a later sync completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageOp {
    /// Append one batch (already carrying its assigned base offset) to a partition log.
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
    /// Remove every batch whose last offset is below `offset` (retention, DeleteRecords).
    TruncatePrefix {
        /// The partition log.
        partition_key: u64,
        /// New log start offset.
        offset: i64,
    },
    /// Remove every batch with base offset >= `offset` (replication truncation, later).
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

use std::collections::BTreeMap;

use weir_wire::domain::{ReadPlan, TimestampLookup};

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

/// Summary of a contiguous range of a partition log, computed from batch headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RangeSummary {
    /// Base offset of the first batch in the range, or the range start when empty.
    pub start_offset: i64,
    /// One past the last offset of the last batch (the log end offset of the range).
    pub end_offset: i64,
    /// Sum of the batches' sizes in bytes.
    pub bytes: u64,
    /// Number of batches.
    pub batch_count: u64,
    /// Largest max_timestamp of any batch, -1 if empty.
    pub max_timestamp: i64,
    /// Offset of the record batch holding `max_timestamp` (ListOffsets -3), -1 if empty.
    pub max_timestamp_offset: i64,
}

/// The storage interface drivers implement. Calls are synchronous; a driver decides what to
/// run off its event loop (fjall's fsync goes to `Runtime::offload`).
pub trait Storage {
    /// Apply one buffered write (not yet durable).
    fn apply(&mut self, op: &StorageOp) -> Result<(), StorageError>;
    /// Make every op applied so far durable (fsync). Blocking.
    fn sync(&self) -> Result<(), StorageError>;
    /// Whole batches of `plan.partition_key` starting with the batch that contains
    /// `plan.start_offset`, none with base offset >= `plan.end_offset`, stopping before
    /// `plan.max_bytes` would be exceeded — except that the first batch is always returned.
    /// Returns the batches concatenated exactly as stored.
    fn read(&self, plan: &ReadPlan) -> Result<Bytes, StorageError>;
    /// The first record whose timestamp is >= `lookup.timestamp` among offsets
    /// `[lookup.start_offset, lookup.end_offset)`: `Some((offset, timestamp))`, or `None`.
    fn lookup_timestamp(
        &self,
        lookup: &TimestampLookup,
    ) -> Result<Option<(i64, i64)>, StorageError>;
    /// All batches' headers of `[from_offset, ..)` summarized (recovery of a log's tail).
    fn summarize(&self, partition_key: u64, from_offset: i64)
        -> Result<RangeSummary, StorageError>;
    /// Every metadata entry, in key order.
    fn meta_entries(&self) -> Result<Vec<MetaPair>, StorageError>;
    /// Every partition key that has a log, with (first base offset, last offset + 1), or
    /// `None` bounds for an empty log.
    fn logs(&self) -> Result<BTreeMap<u64, Option<(i64, i64)>>, StorageError>;
}
