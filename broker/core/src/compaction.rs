//! Kafka's log cleaner (`cleanup.policy=compact`) as pure functions over record batches in
//! Kafka's v2 wire format: which records of a partition's log survive a cleaning pass, and
//! the bytes of every batch after it. No IO and no clock: the driver reads batches, hands
//! them in offset order with `now_ms`, and writes back what comes out (issue 14).
//!
//! # A cleaning pass
//! 1. **Offset map.** [`OffsetMap`] is fed the batches of the *dirty* range (from the first
//!    offset not cleaned yet) in offset order and remembers, per key, the offset of its
//!    latest record. It never reads at or past the *uncleanable offset* (the last stable
//!    offset, or an earlier bound the driver chooses, e.g. for `min.compaction.lag.ms`),
//!    skips aborted transactions' records, and has a hard memory bound: once the next batch
//!    would not fit it stops, and [`OffsetMap::clean_up_to`] is the end of what it covered.
//!    The next pass starts its map there (Kafka's cleaner does the same).
//! 2. **Cleaning.** A [`CleaningPass`] is then fed *every* batch from the log start, in
//!    offset order, and answers each with [`Cleaned`]: unchanged (the same bytes), rewritten
//!    (new bytes) or removed.
//!
//! # Rules (Kafka's `LogCleaner` and `MemoryRecords.filterTo`, KIP-534 horizons)
//! - Only batches entirely below `bound = min(clean_up_to, first_unstable_offset)` are
//!   touched; every other batch is returned unchanged, so nothing at or beyond the LSO (an
//!   open transaction's data) ever changes.
//! - A record survives if its key's latest offset in the map is not above its own (a key
//!   the map never saw survives: its records all lie in the already clean range).
//! - A record without a key never survives (Kafka counts it as invalid and drops it). The
//!   produce path refuses such records in compacted topics ([`check_keys`]), so only data
//!   written before the topic became compacted can lose them.
//! - A tombstone (null value) that survives stamps its batch with a delete horizon of
//!   `now_ms + delete_retention_ms` if the batch has none (the first pass that saw it);
//!   once `now_ms` reaches the horizon, its tombstones go. The horizon is encoded Kafka's
//!   way: attribute bit 6, the horizon as the base timestamp (record timestamps unchanged).
//! - Records of an aborted transaction (a data batch of producer P whose base offset lies
//!   in one of P's aborted ranges `first_offset..=last_offset`) never survive and never
//!   enter the map, so they cannot shadow the committed value of their key.
//! - A transaction marker goes in two steps, like Kafka's: a pass that reads no batch of
//!   its transaction (all already removed) stamps a horizon on the marker; a pass at or
//!   after the horizon removes it. A marker whose transaction still has batches stays.
//! - Batches with a producer id: the batch holding an active producer's last sequence
//!   (its `last_data_offset`), or, for a producer whose last entry is a marker, its
//!   markers of the current epoch, is never removed; if all its records go, an empty
//!   batch (Kafka's `writeEmptyHeader`) keeps its offsets, epoch and sequences, so the
//!   producer's deduplication state survives compaction and recovery.
//!
//! # Invariants
//! - Offsets never change: a rewritten batch keeps its base offset and last offset delta,
//!   and every kept record keeps its offset delta, so offsets strictly increase across the
//!   output and consumers skip the gaps the way they skip them in Kafka.
//! - A batch from which nothing is removed and that needs no new horizon is returned as
//!   [`Cleaned::Unchanged`]; the driver keeps the stored bytes (byte-identical).
//! - Every rewritten batch carries a correct CRC (asserted) and the source's compression.
//! - Bytes are never trusted: a malformed batch is a [`CompactionError`], never a panic.
//! - Memory: the map holds at most `entries_max` keys of at most `key_bytes_max` bytes in
//!   total; a pass's own state is bounded by [`PASS_OPEN_TRANSACTIONS_MAX`].
//!
//! # Keys, not hashes
//! Kafka's map stores a 16-byte MD5 of each key and accepts that two keys with the same
//! hash shadow each other (a collision loses a live record). This map stores the keys
//! themselves, copied out of the batch, so it has no collisions at all; the price is that
//! its bound counts key bytes (`key_bytes_max`, plus [`OFFSET_MAP_ENTRY_OVERHEAD_BYTES`] of
//! bookkeeping per entry) instead of slots, and a log of long keys cleans in more passes.
//!
//! # Left to the driver
//! Choosing the dirty range and the uncleanable offset (`min.compaction.lag.ms`,
//! `max.compaction.lag.ms`, `min.cleanable.dirty.ratio`, segment boundaries), handing in
//! the aborted transactions overlapping the cleaned range (those whose marker lies beyond it
//! too) and the partition's active producers, and writing the output atomically.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use weir_wire::batch::{
    iter_batches, parse_header, BatchHeader, CONTROL_TYPE_ABORT, CONTROL_TYPE_COMMIT,
};
use weir_wire::error::ErrorCode;
use weir_wire::rewrite::{empty_batch, rebuild_batch, BatchRecords};

/// Bookkeeping bytes an [`OffsetMap`] entry costs besides its key: the offset, the key's
/// `Bytes` handle and a B-tree slot. Used to size `key_bytes_max` from a memory budget.
pub const OFFSET_MAP_ENTRY_OVERHEAD_BYTES: usize = 64;
/// Bound on the transactions a [`CleaningPass`] tracks at once (those with a batch read and
/// no marker read yet). Kafka's coordinator caps open transactions far below this.
pub const PASS_OPEN_TRANSACTIONS_MAX: usize = 100_000;

/// Why a batch could not be compacted or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactionError {
    /// The batch bytes are not a valid v2 batch (CRC, lengths, records, codec).
    #[error("malformed record batch: {0}")]
    Malformed(String),
    /// Batches must come in increasing offset order.
    #[error("batch at offset {base_offset} read after offset {previous_last_offset}")]
    OutOfOrder {
        /// Base offset of the batch just given.
        base_offset: i64,
        /// Last offset of the batch given before it.
        previous_last_offset: i64,
    },
    /// A record without a key, where compaction needs one on every record.
    #[error("record at offset {offset} has no key: a compacted topic needs one on every record")]
    MissingKey {
        /// Offset of the record (relative to the batch's base offset for a produce payload).
        offset: i64,
    },
    /// The rewritten batch could not be encoded (the codec failed).
    #[error("cannot rewrite the batch at offset {base_offset}: {reason}")]
    Rewrite {
        /// Base offset of the batch.
        base_offset: i64,
        /// The encoder's error.
        reason: String,
    },
    /// More transactions interleave in the log than a pass tracks.
    #[error("more than {max} transactions open at once in one cleaning pass")]
    TooManyOpenTransactions {
        /// [`PASS_OPEN_TRANSACTIONS_MAX`].
        max: usize,
    },
}

impl CompactionError {
    /// The Kafka error a produce request gets for it: INVALID_RECORD for a missing key,
    /// CORRUPT_MESSAGE for bad bytes, UNKNOWN_SERVER_ERROR otherwise.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            CompactionError::MissingKey { .. } => ErrorCode::INVALID_RECORD,
            CompactionError::Malformed(_) => ErrorCode::CORRUPT_MESSAGE,
            _ => ErrorCode::UNKNOWN_SERVER_ERROR,
        }
    }
}

/// Checks that every record of every data batch in `batches` (whole batches, e.g. a
/// produce payload) has a key; control batches need none. The produce path of a compacted
/// topic calls it and answers an error with [`CompactionError::error_code`].
pub fn check_keys(batches: &[u8]) -> Result<(), CompactionError> {
    for item in iter_batches(batches) {
        let (header, range) = item.map_err(|e| CompactionError::Malformed(e.to_string()))?;
        if header.is_control() {
            continue;
        }
        let records = parse_records(&batches[range])?;
        let keyless = records
            .records()
            .find(|r| r.key.is_none())
            .map(|r| r.offset);
        if let Some(offset) = keyless {
            return Err(CompactionError::MissingKey { offset });
        }
    }
    Ok(())
}

/// One aborted transaction of a partition: `producer_id`'s data from `first_offset`, ended
/// by its abort marker at `last_offset` (the transaction index's entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// Producer id.
    pub producer_id: i64,
    /// Offset of the transaction's first batch here.
    pub first_offset: i64,
    /// Offset of its abort marker.
    pub last_offset: i64,
}

/// The aborted transactions a pass knows, indexed by producer and first offset. One
/// producer's transactions never overlap (a marker ends one before the next starts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AbortedTxns {
    /// `(producer_id, first_offset)` to `last_offset`.
    by_start: BTreeMap<(i64, i64), i64>,
}

impl AbortedTxns {
    /// Indexes `txns`, e.g. the transaction index's aborted list over the cleaned range.
    pub fn new(txns: impl IntoIterator<Item = AbortedTxn>) -> AbortedTxns {
        let mut by_start = BTreeMap::new();
        for txn in txns {
            assert!(
                txn.first_offset <= txn.last_offset,
                "aborted txn of {} from {} to {}",
                txn.producer_id,
                txn.first_offset,
                txn.last_offset
            );
            by_start.insert((txn.producer_id, txn.first_offset), txn.last_offset);
        }
        AbortedTxns { by_start }
    }

    /// The aborted transaction of `producer_id` whose range holds `offset`, as its
    /// `(producer_id, first_offset)` key.
    fn containing(&self, producer_id: i64, offset: i64) -> Option<(i64, i64)> {
        let range = (producer_id, i64::MIN)..=(producer_id, offset);
        let (&start, &last_offset) = self.by_start.range(range).next_back()?;
        (offset <= last_offset).then_some(start)
    }
}

/// Memory bounds of an [`OffsetMap`] (Kafka's `log.cleaner.dedupe.buffer.size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetMapLimits {
    /// Most keys held.
    pub entries_max: usize,
    /// Most key bytes held, summed over the keys.
    pub key_bytes_max: usize,
}

/// What [`OffsetMap::add_batch`] did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapFill {
    /// The batch is covered: its keys are in the map (or it had none to add).
    Covered,
    /// The batch's new keys do not fit: the map stops before it.
    Full,
    /// The batch reaches the uncleanable offset: the map stops before it.
    Uncleanable,
}

/// Key to the offset of its latest record over the dirty range, built batch by batch in
/// offset order under a memory bound (see the module doc).
#[derive(Debug, Clone)]
pub struct OffsetMap {
    limits: OffsetMapLimits,
    /// Key (copied out of its batch, so no batch stays alive) to its latest offset.
    latest: BTreeMap<Bytes, i64>,
    /// Sum of the lengths of the keys in `latest`.
    key_bytes: usize,
    /// First dirty offset: records below it are not mapped.
    start_offset: i64,
    /// No batch reaching this offset is read.
    uncleanable_offset: i64,
    /// Every offset in `start_offset..covered_end` has been read.
    covered_end: i64,
    /// Last offset of the last batch given, for the order check.
    last_read: Option<i64>,
    /// Why the map stopped, once it did; later batches get the same answer.
    stopped: Option<MapFill>,
}

impl OffsetMap {
    /// An empty map over `start_offset..uncleanable_offset`.
    pub fn new(limits: OffsetMapLimits, start_offset: i64, uncleanable_offset: i64) -> Self {
        assert!(start_offset >= 0, "start_offset={start_offset}");
        assert!(
            start_offset <= uncleanable_offset,
            "start_offset={start_offset} uncleanable_offset={uncleanable_offset}"
        );
        OffsetMap {
            limits,
            latest: BTreeMap::new(),
            key_bytes: 0,
            start_offset,
            uncleanable_offset,
            covered_end: start_offset,
            last_read: None,
            stopped: None,
        }
    }

    /// Reads the next batch of the dirty range. Aborted transactions' batches and control
    /// batches are covered without adding keys; a batch is either covered whole or not at
    /// all, so [`Self::clean_up_to`] always ends on a batch boundary.
    pub fn add_batch(
        &mut self,
        batch: &[u8],
        aborted: &AbortedTxns,
    ) -> Result<MapFill, CompactionError> {
        if let Some(stopped) = self.stopped {
            return Ok(stopped);
        }
        let header = parse_batch_header(batch)?;
        check_order(&mut self.last_read, &header)?;
        if header.last_offset() >= self.uncleanable_offset {
            self.stopped = Some(MapFill::Uncleanable);
            return Ok(MapFill::Uncleanable);
        }
        let skipped = header.is_control()
            || header.last_offset() < self.start_offset
            || is_aborted_data(&header, aborted).is_some();
        if !skipped {
            let records = parse_records(batch)?;
            let keyed: Vec<(&[u8], i64)> = (records.records())
                .filter(|r| r.offset >= self.start_offset)
                .filter_map(|r| Some((r.key?, r.offset)))
                .collect();
            if !self.fits(&keyed) {
                self.stopped = Some(MapFill::Full);
                return Ok(MapFill::Full);
            }
            for (key, offset) in keyed {
                self.insert(key, offset);
            }
        }
        self.covered_end = self.covered_end.max(header.last_offset() + 1);
        Ok(MapFill::Covered)
    }

    /// Offset of `key`'s latest record over the covered range.
    pub fn latest_offset(&self, key: &[u8]) -> Option<i64> {
        self.latest.get(key).copied()
    }

    /// End of the covered range (exclusive): a pass cleans below it. Equal to the start
    /// offset when not even the first dirty batch fitted (the map is then too small).
    pub fn clean_up_to(&self) -> i64 {
        self.covered_end
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    /// Bytes of the keys held.
    pub fn key_bytes(&self) -> usize {
        self.key_bytes
    }

    /// True when the keys of `keyed` the map lacks fit in its limits.
    fn fits(&self, keyed: &[(&[u8], i64)]) -> bool {
        let new_keys: BTreeSet<&[u8]> = (keyed.iter())
            .map(|&(key, _)| key)
            .filter(|key| !self.latest.contains_key(*key))
            .collect();
        let new_bytes: usize = new_keys.iter().map(|key| key.len()).sum();
        self.latest.len() + new_keys.len() <= self.limits.entries_max
            && self.key_bytes + new_bytes <= self.limits.key_bytes_max
    }

    fn insert(&mut self, key: &[u8], offset: i64) {
        if let Some(latest) = self.latest.get_mut(key) {
            assert!(
                *latest < offset,
                "key mapped at {latest}, then read at {offset}"
            );
            *latest = offset;
            return;
        }
        self.key_bytes += key.len();
        self.latest.insert(Bytes::copy_from_slice(key), offset);
        assert!(self.latest.len() <= self.limits.entries_max);
        assert!(self.key_bytes <= self.limits.key_bytes_max);
    }
}

/// What the partition's producer table says about one active producer (Kafka's
/// `lastRecordsOfActiveProducers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    /// Its current epoch.
    pub epoch: i16,
    /// Last offset of its last data batch (the one holding its last sequence); `None` when
    /// its last entry is a transaction marker.
    pub last_data_offset: Option<i64>,
}

/// Everything a cleaning pass decides with besides the map.
#[derive(Debug, Clone)]
pub struct CleanContext {
    /// Batches reaching this offset are not touched; at most the map's
    /// [`OffsetMap::clean_up_to`].
    pub clean_up_to: i64,
    /// The last stable offset: the first offset of the oldest open transaction (or the
    /// high watermark). Batches reaching it are not touched.
    pub first_unstable_offset: i64,
    /// The driver's wall clock, for delete horizons.
    pub now_ms: i64,
    /// `delete.retention.ms`: how long tombstones and markers outlive their first pass.
    pub delete_retention_ms: i64,
    /// Aborted transactions overlapping the cleaned range.
    pub aborted: AbortedTxns,
    /// The partition's active producers, by producer id.
    pub producers: BTreeMap<i64, ActiveProducer>,
}

/// What became of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleaned {
    /// Keep the batch as stored.
    Unchanged,
    /// Replace the batch with these bytes (same base offset and last offset).
    Rewritten(Bytes),
    /// Drop the batch.
    Removed,
}

/// Counts of one pass, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Batches given.
    pub batches_read: u64,
    /// Batches rewritten (records removed or a horizon stamped).
    pub batches_rewritten: u64,
    /// Batches dropped.
    pub batches_removed: u64,
    /// Records dropped because a later record has their key.
    pub records_superseded: u64,
    /// Tombstones dropped past their horizon.
    pub tombstones_removed: u64,
    /// Records without a key dropped.
    pub keyless_removed: u64,
    /// Records of aborted transactions dropped.
    pub aborted_removed: u64,
    /// Transaction markers dropped.
    pub markers_removed: u64,
}

/// One cleaning pass over a partition's log: feed it every batch from the log start in
/// offset order. It carries state between batches because a marker's fate depends on
/// whether the pass read any batch of its transaction (Kafka's
/// `CleanedTransactionMetadata`).
#[derive(Debug, Clone)]
pub struct CleaningPass {
    context: CleanContext,
    /// Last offset of the last batch given, for the order check.
    last_read: Option<i64>,
    /// Producers with a batch of a non-aborted transaction read since their last marker.
    committed_read: BTreeSet<i64>,
    /// Aborted transactions, as `(producer_id, first_offset)`, with a batch read.
    aborted_read: BTreeSet<(i64, i64)>,
    stats: CleanStats,
}

impl CleaningPass {
    /// A pass deciding with `context`.
    pub fn new(context: CleanContext) -> Self {
        assert!(
            context.delete_retention_ms >= 0,
            "delete_retention_ms={}",
            context.delete_retention_ms
        );
        CleaningPass {
            context,
            last_read: None,
            committed_read: BTreeSet::new(),
            aborted_read: BTreeSet::new(),
            stats: CleanStats::default(),
        }
    }

    /// Cleans the next batch of the log against `map` (the map this pass's
    /// `clean_up_to` came from).
    pub fn clean_batch(
        &mut self,
        batch: &[u8],
        map: &OffsetMap,
    ) -> Result<Cleaned, CompactionError> {
        assert!(
            self.context.clean_up_to <= map.clean_up_to(),
            "cleaning up to {} with a map covering up to {}",
            self.context.clean_up_to,
            map.clean_up_to()
        );
        // A map that read past the LSO may hold an open transaction's record as a key's
        // latest, which would drop the committed record before it.
        assert!(
            map.uncleanable_offset <= self.context.first_unstable_offset,
            "map built up to {} with the LSO at {}",
            map.uncleanable_offset,
            self.context.first_unstable_offset
        );
        let header = parse_batch_header(batch)?;
        check_order(&mut self.last_read, &header)?;
        self.stats.batches_read += 1;
        let bound = self
            .context
            .clean_up_to
            .min(self.context.first_unstable_offset);
        if header.last_offset() >= bound {
            return Ok(Cleaned::Unchanged);
        }
        let records = parse_records(batch)?;
        let cleaned = if header.is_control() {
            self.clean_control_batch(&records)?
        } else {
            self.clean_data_batch(&records, map)?
        };
        match &cleaned {
            Cleaned::Unchanged => {}
            Cleaned::Rewritten(_) => self.stats.batches_rewritten += 1,
            Cleaned::Removed => self.stats.batches_removed += 1,
        }
        Ok(cleaned)
    }

    /// Counts so far.
    pub fn stats(&self) -> CleanStats {
        self.stats
    }

    /// A data batch: drop aborted, superseded, keyless and expired-tombstone records.
    fn clean_data_batch(
        &mut self,
        records: &BatchRecords,
        map: &OffsetMap,
    ) -> Result<Cleaned, CompactionError> {
        let header = *records.header();
        let now_ms = self.context.now_ms;
        let mut keep = Vec::with_capacity(records.len());
        if let Some(txn) = is_aborted_data(&header, &self.context.aborted) {
            self.aborted_read.insert(txn);
            self.stats.aborted_removed += records.len() as u64;
        } else {
            if header.is_transactional() {
                self.committed_read.insert(header.producer_id);
                self.check_open_transactions()?;
            }
            let horizon = header.delete_horizon_ms();
            for (index, record) in records.records().enumerate() {
                let Some(key) = record.key else {
                    self.stats.keyless_removed += 1;
                    continue;
                };
                // PLANTED BUG (weir-sim's planted suite only; never in a real build): an
                // off-by-one: a key's latest record counts as superseded by itself.
                let planted = crate::planted::on(crate::planted::Bug::CompactLatest);
                if map.latest_offset(key).is_some_and(|latest| {
                    record.offset < latest || (planted && record.offset == latest)
                }) {
                    self.stats.records_superseded += 1;
                    continue;
                }
                if record.value.is_none() && horizon.is_some_and(|h| now_ms >= h) {
                    self.stats.tombstones_removed += 1;
                    continue;
                }
                keep.push(index);
            }
        }
        let tombstone_kept = keep.iter().any(|&i| records.record(i).value.is_none());
        let horizon = match header.delete_horizon_ms() {
            None if tombstone_kept => Some(self.new_horizon()),
            horizon => horizon,
        };
        self.rewrite(records, &keep, horizon)
    }

    /// A transaction marker: it may go once no batch of its transaction is left (see the
    /// module doc), in two passes around its horizon.
    fn clean_control_batch(&mut self, records: &BatchRecords) -> Result<Cleaned, CompactionError> {
        let header = *records.header();
        let transaction_gone = self.end_transaction(records);
        let all: Vec<usize> = (0..records.len()).collect();
        let keep: &[usize] = match header.delete_horizon_ms() {
            // An emptied marker batch (already cleaned) is kept only as a producer's last.
            _ if records.is_empty() => &[],
            _ if !transaction_gone => &all,
            None => {
                let horizon = Some(self.new_horizon());
                return self.rewrite(records, &all, horizon);
            }
            Some(horizon) if self.context.now_ms < horizon => &all,
            Some(_) => {
                self.stats.markers_removed += records.len() as u64;
                &[]
            }
        };
        self.rewrite(records, keep, header.delete_horizon_ms())
    }

    /// Ends the transaction a marker closes; true when the pass read none of its batches.
    /// An unreadable marker (unknown type) counts as read, so it stays.
    fn end_transaction(&mut self, records: &BatchRecords) -> bool {
        let header = records.header();
        let producer_id = header.producer_id;
        let committed_read = self.committed_read.remove(&producer_id);
        // A marker batch without its record was emptied by an earlier pass: nothing left.
        let Some(marker) = records.records().next() else {
            return true;
        };
        let aborted_read = match control_type(marker) {
            Some(CONTROL_TYPE_ABORT) => (self.context.aborted)
                .containing(producer_id, header.base_offset)
                .is_some_and(|txn| self.aborted_read.remove(&txn)),
            Some(CONTROL_TYPE_COMMIT) => false,
            _ => return false,
        };
        !committed_read && !aborted_read
    }

    /// The bytes of `records` keeping `keep`, with `horizon`: unchanged when that is the
    /// batch as it is, an empty batch when nothing is kept from a producer's last batch.
    fn rewrite(
        &mut self,
        records: &BatchRecords,
        keep: &[usize],
        horizon: Option<i64>,
    ) -> Result<Cleaned, CompactionError> {
        let header = records.header();
        // An empty batch (emptied by an earlier pass) goes once it is no producer's last.
        if keep.is_empty() && !self.is_producer_last(header) {
            return Ok(Cleaned::Removed);
        }
        if keep.len() == records.len() && horizon == header.delete_horizon_ms() {
            return Ok(Cleaned::Unchanged);
        }
        if keep.is_empty() {
            return Ok(Cleaned::Rewritten(empty_batch(header)));
        }
        let bytes =
            rebuild_batch(records, keep, horizon).map_err(|e| CompactionError::Rewrite {
                base_offset: header.base_offset,
                reason: e.to_string(),
            })?;
        Ok(Cleaned::Rewritten(bytes))
    }

    /// True for the batch that keeps an active producer's state (see the module doc).
    fn is_producer_last(&self, header: &BatchHeader) -> bool {
        if header.producer_id < 0 {
            return false;
        }
        let Some(producer) = self.context.producers.get(&header.producer_id) else {
            return false;
        };
        match producer.last_data_offset {
            Some(offset) => header.last_offset() == offset,
            None => header.is_control() && header.producer_epoch == producer.epoch,
        }
    }

    fn new_horizon(&self) -> i64 {
        (self.context.now_ms).saturating_add(self.context.delete_retention_ms)
    }

    fn check_open_transactions(&self) -> Result<(), CompactionError> {
        if self.committed_read.len() + self.aborted_read.len() > PASS_OPEN_TRANSACTIONS_MAX {
            return Err(CompactionError::TooManyOpenTransactions {
                max: PASS_OPEN_TRANSACTIONS_MAX,
            });
        }
        Ok(())
    }
}

/// The aborted transaction a data batch belongs to, as `(producer_id, first_offset)`.
fn is_aborted_data(header: &BatchHeader, aborted: &AbortedTxns) -> Option<(i64, i64)> {
    if !header.is_transactional() || header.is_control() {
        return None;
    }
    aborted.containing(header.producer_id, header.base_offset)
}

/// A marker record's type: its key is `version: i16, type: i16`.
fn control_type(record: weir_wire::rewrite::RawRecord<'_>) -> Option<i16> {
    let key = record.key?;
    let type_bytes = key.get(2..4)?;
    Some(i16::from_be_bytes([type_bytes[0], type_bytes[1]]))
}

fn parse_batch_header(batch: &[u8]) -> Result<BatchHeader, CompactionError> {
    parse_header(batch).map_err(|e| CompactionError::Malformed(e.to_string()))
}

fn parse_records(batch: &[u8]) -> Result<BatchRecords, CompactionError> {
    BatchRecords::parse(batch).map_err(|e| CompactionError::Malformed(e.to_string()))
}

/// Batches must arrive in increasing offset order; records `header` as the last one read.
fn check_order(last_read: &mut Option<i64>, header: &BatchHeader) -> Result<(), CompactionError> {
    if let Some(previous_last_offset) = *last_read {
        if header.base_offset <= previous_last_offset {
            return Err(CompactionError::OutOfOrder {
                base_offset: header.base_offset,
                previous_last_offset,
            });
        }
    }
    if header.last_offset_delta < 0 {
        return Err(CompactionError::Malformed(format!(
            "last offset delta {} at {}",
            header.last_offset_delta, header.base_offset
        )));
    }
    *last_read = Some(header.last_offset());
    Ok(())
}

#[cfg(test)]
mod tests {
    // Goal: each cleaner rule, one test each, written so that dropping the rule from the
    // code makes its test fail; then a proptest over generated logs for the properties
    // that hold whatever the rules combine to. Method: logs of real v2 batches built with
    // the client encoder and Kafka's marker encoder, cleaned through OffsetMap and
    // CleaningPass as the driver will, and read back with BatchRecords.
    use super::*;
    use weir_wire::batch::{encode_control_batch, set_base_offset, verify_crc};
    use weir_wire::records::{encode_batch, BatchOptions, Compression, Record};

    const BIG: OffsetMapLimits = OffsetMapLimits {
        entries_max: 1_000,
        key_bytes_max: 1 << 20,
    };

    /// A log under construction: batches with their offsets assigned as the broker does.
    #[derive(Default)]
    struct Log {
        batches: Vec<Bytes>,
        next_offset: i64,
    }

    impl Log {
        /// Appends a data batch of `(key, value)` records; returns its base offset.
        fn data(
            &mut self,
            records: &[(Option<&str>, Option<&str>)],
            options: &BatchOptions,
        ) -> i64 {
            let records: Vec<Record> = (records.iter().enumerate())
                .map(|(i, (key, value))| Record {
                    offset: i as i64,
                    timestamp: 1_000 + self.next_offset + i as i64,
                    key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
                    value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
                    headers: Vec::new(),
                })
                .collect();
            let batch = encode_batch(&records, options).expect("encode");
            self.push(batch.to_vec())
        }

        /// Appends a plain (non-idempotent) batch.
        fn plain(&mut self, records: &[(Option<&str>, Option<&str>)]) -> i64 {
            self.data(records, &BatchOptions::default())
        }

        /// Appends a transaction marker of `producer_id` (epoch 0).
        fn marker(&mut self, producer_id: i64, committed: bool) -> i64 {
            let batch = encode_control_batch(producer_id, 0, committed, 0, 5_000);
            self.push(batch.to_vec())
        }

        fn push(&mut self, mut batch: Vec<u8>) -> i64 {
            let base_offset = self.next_offset;
            set_base_offset(&mut batch, base_offset);
            let header = parse_header(&batch).expect("header");
            self.next_offset = header.last_offset() + 1;
            self.batches.push(Bytes::from(batch));
            base_offset
        }
    }

    fn txn(producer_id: i64, base_sequence: i32) -> BatchOptions {
        BatchOptions {
            producer_id,
            producer_epoch: 0,
            base_sequence,
            transactional: true,
            compression: Compression::None,
        }
    }

    fn idempotent(producer_id: i64, base_sequence: i32) -> BatchOptions {
        BatchOptions {
            transactional: false,
            ..txn(producer_id, base_sequence)
        }
    }

    fn context_at(map: &OffsetMap, now_ms: i64) -> CleanContext {
        CleanContext {
            clean_up_to: map.clean_up_to(),
            first_unstable_offset: i64::MAX,
            now_ms,
            delete_retention_ms: 1_000,
            aborted: AbortedTxns::default(),
            producers: BTreeMap::new(),
        }
    }

    /// Builds a map over the whole of `log` below `uncleanable`.
    fn map_of(
        log: &[Bytes],
        limits: OffsetMapLimits,
        uncleanable: i64,
        aborted: &AbortedTxns,
    ) -> OffsetMap {
        let mut map = OffsetMap::new(limits, 0, uncleanable);
        for batch in log {
            if map.add_batch(batch, aborted).expect("map") != MapFill::Covered {
                break;
            }
        }
        map
    }

    /// One pass over `log`; returns each batch's outcome and the log after it.
    fn pass(log: &[Bytes], map: &OffsetMap, context: CleanContext) -> (Vec<Cleaned>, Vec<Bytes>) {
        let mut pass = CleaningPass::new(context);
        let mut outcomes = Vec::new();
        let mut out = Vec::new();
        for batch in log {
            let cleaned = pass.clean_batch(batch, map).expect("clean");
            match &cleaned {
                Cleaned::Unchanged => out.push(batch.clone()),
                Cleaned::Rewritten(bytes) => out.push(bytes.clone()),
                Cleaned::Removed => {}
            }
            outcomes.push(cleaned);
        }
        (outcomes, out)
    }

    /// Cleans `log` once with a map over all of it and default context at `now_ms`.
    fn clean(log: &[Bytes], now_ms: i64) -> (Vec<Cleaned>, Vec<Bytes>) {
        let map = map_of(log, BIG, i64::MAX, &AbortedTxns::default());
        let context = context_at(&map, now_ms);
        pass(log, &map, context)
    }

    /// `(offset, key, value)` of every data record of `log`.
    fn records_of(log: &[Bytes]) -> Vec<(i64, Option<String>, Option<String>)> {
        let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
        let mut out = Vec::new();
        for batch in log {
            let parsed = BatchRecords::parse(batch).expect("parse");
            if parsed.header().is_control() {
                continue;
            }
            for r in parsed.records() {
                out.push((r.offset, text(r.key), text(r.value)));
            }
        }
        out
    }

    fn kv(offset: i64, key: &str, value: &str) -> (i64, Option<String>, Option<String>) {
        (offset, Some(key.into()), Some(value.into()))
    }

    #[test]
    fn superseded_records_go_and_offsets_stay() {
        // A key written twice keeps only its later record, at its original offset, in a
        // batch that keeps its base offset and last offset delta.
        let mut log = Log::default();
        log.plain(&[
            (Some("a"), Some("1")),
            (Some("b"), Some("1")),
            (Some("c"), Some("1")),
        ]);
        log.plain(&[(Some("a"), Some("2"))]);
        let (outcomes, out) = clean(&log.batches, 0);
        assert!(matches!(outcomes[0], Cleaned::Rewritten(_)));
        assert_eq!(outcomes[1], Cleaned::Unchanged);
        assert_eq!(
            records_of(&out),
            [kv(1, "b", "1"), kv(2, "c", "1"), kv(3, "a", "2")]
        );
        let header = parse_header(&out[0]).expect("header");
        assert_eq!((header.base_offset, header.last_offset_delta), (0, 2));
        assert_eq!(header.record_count, 2);
        assert!(verify_crc(&out[0]));
    }

    #[test]
    fn untouched_batches_are_unchanged() {
        // A batch whose records are all latest comes back Unchanged (the stored bytes), and
        // a whole pass over an already clean log changes nothing.
        let mut log = Log::default();
        log.plain(&[(Some("a"), Some("1")), (Some("a"), Some("2"))]);
        log.plain(&[(Some("b"), Some("1"))]);
        let (_, once) = clean(&log.batches, 0);
        let (outcomes, twice) = clean(&once, 0);
        assert!(outcomes.iter().all(|c| *c == Cleaned::Unchanged));
        assert_eq!(once, twice);
        assert_eq!(records_of(&twice), [kv(1, "a", "2"), kv(2, "b", "1")]);
    }

    #[test]
    fn tombstones_get_a_horizon_then_go() {
        // A tombstone survives its first pass, which stamps horizon = now + retention on its
        // batch (even though nothing was removed); it goes at the first pass at or after it.
        let mut log = Log::default();
        log.plain(&[(Some("a"), Some("1"))]);
        log.plain(&[(Some("a"), None), (Some("b"), Some("1"))]);
        let (outcomes, first) = clean(&log.batches, 10_000);
        assert_eq!(outcomes[0], Cleaned::Removed);
        assert!(matches!(outcomes[1], Cleaned::Rewritten(_)));
        let header = parse_header(&first[0]).expect("header");
        assert_eq!(header.delete_horizon_ms(), Some(11_000));
        assert_eq!(
            records_of(&first),
            [(1, Some("a".into()), None), kv(2, "b", "1")]
        );
        // Record timestamps do not move with the base timestamp.
        let parsed = BatchRecords::parse(&first[0]).expect("parse");
        assert_eq!(parsed.record(1).timestamp, 1_002);
        let (outcomes, before) = clean(&first, 10_999);
        assert_eq!(outcomes, [Cleaned::Unchanged]);
        assert_eq!(before, first);
        let (_, after) = clean(&first, 11_000);
        assert_eq!(records_of(&after), [kv(2, "b", "1")]);
        let header = parse_header(&after[0]).expect("header");
        assert_eq!(header.delete_horizon_ms(), Some(11_000), "a horizon stays");
    }

    #[test]
    fn keyless_records_go_and_are_refused_at_produce() {
        // The cleaner drops records without a key; check_keys refuses them with
        // INVALID_RECORD and accepts keyed data and markers.
        let mut log = Log::default();
        log.plain(&[(None, Some("x")), (Some("a"), Some("1"))]);
        let (_, out) = clean(&log.batches, 0);
        assert_eq!(records_of(&out), [kv(1, "a", "1")]);
        let error = check_keys(&log.batches[0]).expect_err("keyless");
        assert_eq!(error, CompactionError::MissingKey { offset: 0 });
        assert_eq!(error.error_code(), ErrorCode::INVALID_RECORD);
        assert_eq!(check_keys(&out[0]), Ok(()));
        assert_eq!(check_keys(&encode_control_batch(1, 0, true, 0, 0)), Ok(()));
        let mut corrupt = out[0].to_vec();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        let error = check_keys(&corrupt).expect_err("crc");
        assert_eq!(error.error_code(), ErrorCode::CORRUPT_MESSAGE);
    }

    #[test]
    fn aborted_records_go_and_never_shadow() {
        // An aborted write of a key must not count as its latest record: the committed
        // value before it survives, the aborted one goes, and the abort marker stays while
        // the pass read batches of its transaction.
        let mut log = Log::default();
        log.plain(&[(Some("a"), Some("committed"))]);
        let first = log.data(&[(Some("a"), Some("aborted"))], &txn(7, 0));
        let marker = log.marker(7, false);
        let aborted = AbortedTxns::new([AbortedTxn {
            producer_id: 7,
            first_offset: first,
            last_offset: marker,
        }]);
        let map = map_of(&log.batches, BIG, i64::MAX, &aborted);
        assert_eq!(map.latest_offset(b"a"), Some(0));
        let mut context = context_at(&map, 0);
        context.aborted = aborted;
        let (outcomes, out) = pass(&log.batches, &map, context);
        assert_eq!(
            outcomes,
            [Cleaned::Unchanged, Cleaned::Removed, Cleaned::Unchanged]
        );
        assert_eq!(records_of(&out), [kv(0, "a", "committed")]);
    }

    #[test]
    fn nothing_at_or_past_the_lso_changes() {
        // An open transaction at offset 2 holds the LSO: the map stops before it, so its
        // record cannot shadow key a, and batches from it on come back unchanged even when
        // superseded.
        let mut log = Log::default();
        log.plain(&[(Some("a"), Some("1")), (Some("b"), Some("1"))]);
        let lso = log.data(&[(Some("a"), Some("open"))], &txn(7, 0));
        log.plain(&[(Some("b"), Some("2"))]);
        log.plain(&[(Some("b"), Some("3"))]);
        let map = map_of(&log.batches, BIG, lso, &AbortedTxns::default());
        assert_eq!(map.clean_up_to(), lso);
        assert_eq!(map.latest_offset(b"a"), Some(0));
        let mut context = context_at(&map, 0);
        context.first_unstable_offset = lso;
        let (outcomes, out) = pass(&log.batches, &map, context);
        assert!(
            outcomes.iter().all(|c| *c == Cleaned::Unchanged),
            "{outcomes:?}"
        );
        assert_eq!(out, log.batches);
        // A map built past the LSO would let the open record shadow a@0 (and the pass
        // would then drop a committed value for an uncommitted one): refused.
        let map = map_of(&log.batches, BIG, i64::MAX, &AbortedTxns::default());
        let mut context = context_at(&map, 0);
        context.first_unstable_offset = lso;
        let refused = std::panic::catch_unwind(|| {
            CleaningPass::new(context).clean_batch(&log.batches[0], &map)
        });
        assert!(refused.is_err());
    }

    #[test]
    fn producer_last_batch_stays_empty() {
        // Idempotent producer 9: its last batch loses its records to later writes but stays
        // as an empty batch with its offsets, epoch and sequences; its earlier batch goes.
        let mut log = Log::default();
        log.data(&[(Some("a"), Some("1"))], &idempotent(9, 0));
        let last = log.data(
            &[(Some("a"), Some("2")), (Some("b"), Some("2"))],
            &idempotent(9, 1),
        );
        log.plain(&[(Some("a"), Some("3")), (Some("b"), Some("3"))]);
        let map = map_of(&log.batches, BIG, i64::MAX, &AbortedTxns::default());
        let mut context = context_at(&map, 0);
        context.producers.insert(
            9,
            ActiveProducer {
                epoch: 0,
                last_data_offset: Some(last + 1),
            },
        );
        let (outcomes, out) = pass(&log.batches, &map, context.clone());
        assert_eq!(outcomes[0], Cleaned::Removed);
        let header = parse_header(&out[0]).expect("header");
        assert_eq!((header.producer_id, header.producer_epoch), (9, 0));
        assert_eq!((header.base_offset, header.last_offset()), (1, 2));
        assert_eq!((header.base_sequence, header.record_count), (1, 0));
        assert!(verify_crc(&out[0]));
        // Once the producer has written a later batch, the empty one goes too.
        context.producers.insert(
            9,
            ActiveProducer {
                epoch: 0,
                last_data_offset: Some(99),
            },
        );
        let (outcomes, _) = pass(&out, &map, context);
        assert_eq!(outcomes[0], Cleaned::Removed);
    }

    #[test]
    fn markers_go_two_passes_after_their_data() {
        // A commit marker stays while its transaction has batches; the pass that finds them
        // all gone stamps a horizon on it; the first pass at or after the horizon removes
        // it, unless it is the producer's last entry, which keeps an empty marker batch.
        let mut log = Log::default();
        log.data(&[(Some("a"), Some("1"))], &txn(7, 0));
        log.marker(7, true);
        log.plain(&[(Some("a"), Some("2"))]);
        let (outcomes, first) = clean(&log.batches, 0);
        assert_eq!(
            outcomes,
            [Cleaned::Removed, Cleaned::Unchanged, Cleaned::Unchanged]
        );
        let (outcomes, second) = clean(&first, 0);
        assert!(matches!(outcomes[0], Cleaned::Rewritten(_)));
        assert_eq!(
            parse_header(&second[0])
                .expect("header")
                .delete_horizon_ms(),
            Some(1_000)
        );
        let (outcomes, _) = clean(&second, 999);
        assert_eq!(outcomes[0], Cleaned::Unchanged);
        let (outcomes, third) = clean(&second, 1_000);
        assert_eq!(outcomes[0], Cleaned::Removed);
        assert_eq!(records_of(&third), [kv(2, "a", "2")]);
        // The same marker as the producer's last entry (no data batch since).
        let map = map_of(&second, BIG, i64::MAX, &AbortedTxns::default());
        let mut context = context_at(&map, 1_000);
        context.producers.insert(
            7,
            ActiveProducer {
                epoch: 0,
                last_data_offset: None,
            },
        );
        let (outcomes, kept) = pass(&second, &map, context.clone());
        assert!(matches!(outcomes[0], Cleaned::Rewritten(_)));
        let header = parse_header(&kept[0]).expect("header");
        assert!(header.is_control());
        assert_eq!((header.base_offset, header.record_count), (1, 0));
        let (outcomes, _) = pass(&kept, &map, context);
        assert_eq!(outcomes[0], Cleaned::Unchanged);
    }

    #[test]
    fn abort_marker_stays_while_its_data_is_read() {
        // An abort marker whose aborted batch the pass read stays (a read_committed reader
        // still needs it); once the batch is gone, it gets its horizon.
        let mut log = Log::default();
        let first = log.data(&[(Some("a"), Some("x"))], &txn(7, 0));
        let marker = log.marker(7, false);
        let aborted = AbortedTxns::new([AbortedTxn {
            producer_id: 7,
            first_offset: first,
            last_offset: marker,
        }]);
        let run = |log: &[Bytes]| {
            let map = map_of(log, BIG, i64::MAX, &aborted);
            let mut context = context_at(&map, 0);
            context.aborted = aborted.clone();
            pass(log, &map, context)
        };
        let (outcomes, first_pass) = run(&log.batches);
        assert_eq!(outcomes, [Cleaned::Removed, Cleaned::Unchanged]);
        let (outcomes, _) = run(&first_pass);
        assert!(matches!(outcomes[0], Cleaned::Rewritten(_)), "{outcomes:?}");
    }

    #[test]
    fn full_map_stops_on_a_batch_boundary() {
        // A map of two entries covers the first two batches only; the pass cleans below that
        // point and leaves the rest alone, so a record superseded only beyond it survives.
        let mut log = Log::default();
        log.plain(&[(Some("a"), Some("1")), (Some("b"), Some("1"))]);
        log.plain(&[(Some("a"), Some("2"))]);
        let third = log.plain(&[(Some("c"), Some("1")), (Some("b"), Some("2"))]);
        let limits = OffsetMapLimits {
            entries_max: 2,
            key_bytes_max: 100,
        };
        let mut map = OffsetMap::new(limits, 0, i64::MAX);
        let aborted = AbortedTxns::default();
        let fills: Vec<MapFill> = (log.batches.iter())
            .map(|b| map.add_batch(b, &aborted).expect("map"))
            .collect();
        assert_eq!(fills, [MapFill::Covered, MapFill::Covered, MapFill::Full]);
        assert_eq!(map.clean_up_to(), third);
        assert_eq!((map.len(), map.key_bytes()), (2, 2));
        let context = context_at(&map, 0);
        let (_, out) = pass(&log.batches, &map, context);
        assert_eq!(
            records_of(&out),
            [
                kv(1, "b", "1"),
                kv(2, "a", "2"),
                kv(3, "c", "1"),
                kv(4, "b", "2")
            ]
        );
        // The byte bound binds the same way.
        let limits = OffsetMapLimits {
            entries_max: 10,
            key_bytes_max: 1,
        };
        let mut map = OffsetMap::new(limits, 0, i64::MAX);
        assert_eq!(map.add_batch(&log.batches[0], &aborted), Ok(MapFill::Full));
        assert_eq!(map.clean_up_to(), 0);
    }

    #[test]
    fn bad_input_is_an_error() {
        // Truncated or corrupt batches and batches out of order are errors, never panics.
        let mut log = Log::default();
        log.plain(&[(Some("a"), Some("1"))]);
        log.plain(&[(Some("a"), Some("2"))]);
        let map = map_of(&log.batches, BIG, i64::MAX, &AbortedTxns::default());
        let batch = &log.batches[0];
        for cut in 0..batch.len() {
            let mut pass = CleaningPass::new(context_at(&map, 0));
            assert!(pass.clean_batch(&batch[..cut], &map).is_err(), "cut {cut}");
            let mut fresh = OffsetMap::new(BIG, 0, i64::MAX);
            assert!(fresh
                .add_batch(&batch[..cut], &AbortedTxns::default())
                .is_err());
        }
        let mut corrupt = batch.to_vec();
        corrupt[40] ^= 1;
        let mut pass = CleaningPass::new(context_at(&map, 0));
        assert!(matches!(
            pass.clean_batch(&corrupt, &map),
            Err(CompactionError::Malformed(_))
        ));
        let mut pass = CleaningPass::new(context_at(&map, 0));
        pass.clean_batch(&log.batches[1], &map).expect("clean");
        let error = pass.clean_batch(&log.batches[0], &map).expect_err("order");
        assert!(matches!(
            error,
            CompactionError::OutOfOrder { base_offset: 0, .. }
        ));
    }

    mod generated {
        // Goal: whatever mix of keys, tombstones, keyless records, idempotent producers and
        // committed, aborted and open transactions a log holds, and however small the map,
        // every pass keeps the properties of the module doc, and passes with time moving
        // past the horizons reach a log no further pass changes. Method: generated
        // operations become a log; six passes run with now advancing by the retention;
        // after each, the output is checked against a model read from the pass's input.
        use super::*;
        use proptest::prelude::*;

        /// One operation of a generated log. Producers: 0 plain, 1-2 idempotent, 3-4
        /// transactional (producer ids 101-104).
        #[derive(Debug, Clone)]
        enum Op {
            Data {
                producer: u8,
                records: Vec<(Option<u8>, Option<u8>)>,
                codec: u8,
            },
            End {
                producer: u8,
                commit: bool,
            },
        }

        fn op() -> impl Strategy<Value = Op> {
            let key = prop_oneof![9 => (0u8..5).prop_map(Some), 1 => Just(None)];
            let value = prop_oneof![4 => any::<u8>().prop_map(Some), 1 => Just(None)];
            let data = (0u8..5, prop::collection::vec((key, value), 1..5), 0u8..3).prop_map(
                |(producer, records, codec)| Op::Data {
                    producer,
                    records,
                    codec,
                },
            );
            let end =
                (3u8..5, any::<bool>()).prop_map(|(producer, commit)| Op::End { producer, commit });
            prop_oneof![4 => data, 1 => end]
        }

        /// A generated log and what the broker's indexes would say about it.
        struct Generated {
            log: Log,
            aborted: AbortedTxns,
            producers: BTreeMap<i64, ActiveProducer>,
            lso: i64,
            /// Finished transactions with data: `(producer_id, first_offset, marker)`.
            finished: Vec<(i64, i64, i64)>,
        }

        fn generate(ops: &[Op]) -> Generated {
            let mut log = Log::default();
            let mut sequences: BTreeMap<i64, i32> = BTreeMap::new();
            let mut open: BTreeMap<i64, i64> = BTreeMap::new();
            let mut aborted = Vec::new();
            let mut producers = BTreeMap::new();
            let mut finished = Vec::new();
            for op in ops {
                match op {
                    Op::Data {
                        producer,
                        records,
                        codec,
                    } => {
                        let producer_id = if *producer == 0 {
                            -1
                        } else {
                            100 + i64::from(*producer)
                        };
                        let text: Vec<(Option<String>, Option<String>)> = (records.iter())
                            .map(|(k, v)| (k.map(|k| format!("k{k}")), v.map(|v| format!("v{v}"))))
                            .collect();
                        let records: Vec<(Option<&str>, Option<&str>)> = text
                            .iter()
                            .map(|(k, v)| (k.as_deref(), v.as_deref()))
                            .collect();
                        let sequence = sequences.entry(producer_id).or_insert(0);
                        let mut options = match producer {
                            0 => BatchOptions::default(),
                            1 | 2 => idempotent(producer_id, *sequence),
                            _ => txn(producer_id, *sequence),
                        };
                        options.compression =
                            [Compression::None, Compression::Lz4, Compression::Zstd]
                                [usize::from(*codec)];
                        *sequence += records.len() as i32;
                        let base = log.data(&records, &options);
                        if *producer >= 3 {
                            open.entry(producer_id).or_insert(base);
                        }
                        if producer_id >= 0 {
                            let last_data_offset = Some(log.next_offset - 1);
                            producers.insert(
                                producer_id,
                                ActiveProducer {
                                    epoch: 0,
                                    last_data_offset,
                                },
                            );
                        }
                    }
                    Op::End { producer, commit } => {
                        let producer_id = 100 + i64::from(*producer);
                        let marker = log.marker(producer_id, *commit);
                        let first = open.remove(&producer_id);
                        if let Some(first_offset) = first {
                            finished.push((producer_id, first_offset, marker));
                        }
                        if let (Some(first_offset), false) = (first, *commit) {
                            aborted.push(AbortedTxn {
                                producer_id,
                                first_offset,
                                last_offset: marker,
                            });
                        }
                        (producers.entry(producer_id)).or_insert(ActiveProducer {
                            epoch: 0,
                            last_data_offset: None,
                        });
                    }
                }
            }
            let lso = open.values().copied().min().unwrap_or(log.next_offset);
            Generated {
                log,
                aborted: AbortedTxns::new(aborted),
                producers,
                lso,
                finished,
            }
        }

        /// A record's key and value, owned.
        type KeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

        /// A data record of a pass's input, with what decides its fate.
        struct ModelRecord {
            key: Option<Vec<u8>>,
            value: Option<Vec<u8>>,
            aborted: bool,
            horizon: Option<i64>,
        }

        /// The data records of `log` below `bound`, by offset.
        fn model(log: &[Bytes], bound: i64, aborted: &AbortedTxns) -> BTreeMap<i64, ModelRecord> {
            let mut records = BTreeMap::new();
            for batch in log {
                let parsed = BatchRecords::parse(batch).expect("input parses");
                let header = parsed.header();
                if header.is_control() || header.last_offset() >= bound {
                    continue;
                }
                for r in parsed.records() {
                    let record = ModelRecord {
                        key: r.key.map(<[u8]>::to_vec),
                        value: r.value.map(<[u8]>::to_vec),
                        aborted: is_aborted_data(header, aborted).is_some(),
                        horizon: header.delete_horizon_ms(),
                    };
                    records.insert(r.offset, record);
                }
            }
            records
        }

        /// Checks the output of one pass against its input (see the goal above).
        fn check_pass(
            input: &[Bytes],
            output: &[Bytes],
            context: &CleanContext,
            bound: i64,
            finished: &[(i64, i64, i64)],
        ) -> Result<(), TestCaseError> {
            // Every output batch is valid, and offsets strictly increase across the output.
            let mut previous: Option<i64> = None;
            let mut survivors: BTreeMap<i64, KeyValue> = BTreeMap::new();
            for batch in output {
                prop_assert!(verify_crc(batch));
                let parsed = BatchRecords::parse(batch).expect("output parses");
                let header = parsed.header();
                prop_assert!(previous.is_none_or(|p| p < header.base_offset));
                previous = Some(header.last_offset());
                let mut inner = header.base_offset - 1;
                for r in parsed.records() {
                    prop_assert!(inner < r.offset && r.offset <= header.last_offset());
                    inner = r.offset;
                    if !header.is_control() {
                        survivors.insert(
                            r.offset,
                            (r.key.map(<[u8]>::to_vec), r.value.map(<[u8]>::to_vec)),
                        );
                    }
                }
            }
            // Nothing reaching the bound (so nothing at or past the LSO) changed.
            let beyond = |log: &[Bytes]| -> Vec<Bytes> {
                (log.iter())
                    .filter(|b| parse_header(b).expect("header").last_offset() >= bound)
                    .cloned()
                    .collect()
            };
            prop_assert_eq!(beyond(input), beyond(output));
            // Below the bound: only each key's latest committed record survives, and it does
            // (a tombstone until the pass at or after its horizon).
            let records = model(input, bound, &context.aborted);
            let mut latest: BTreeMap<&[u8], i64> = BTreeMap::new();
            for (&offset, record) in &records {
                if let (Some(key), false) = (&record.key, record.aborted) {
                    latest.insert(key, offset);
                }
            }
            for (offset, (key, _)) in survivors.range(..bound) {
                let key = key.as_deref().expect("keyless record survived");
                prop_assert_eq!(latest.get(key), Some(offset), "offset {} survived", offset);
            }
            for &offset in latest.values() {
                let record = &records[&offset];
                let expired = record.horizon.is_some_and(|h| context.now_ms >= h);
                if record.value.is_none() && expired {
                    prop_assert!(!survivors.contains_key(&offset));
                    continue;
                }
                let want = (record.key.clone(), record.value.clone());
                prop_assert_eq!(survivors.get(&offset), Some(&want), "latest at {}", offset);
            }
            // A finished transaction's marker stays while any batch of its data does.
            for &(producer_id, first_offset, marker) in finished {
                let data_left = (output.iter())
                    .map(|b| parse_header(b).expect("header"))
                    .any(|h| {
                        h.producer_id == producer_id
                            && !h.is_control()
                            && (first_offset..marker).contains(&h.base_offset)
                    });
                let marker_left =
                    (output.iter()).any(|b| parse_header(b).expect("header").base_offset == marker);
                prop_assert!(
                    !data_left || marker_left,
                    "marker at {} went before its data",
                    marker
                );
            }
            // Every active producer's last batch (offsets, epoch, sequences) is still there.
            for (producer_id, producer) in &context.producers {
                let Some(last_offset) = producer.last_data_offset else {
                    continue;
                };
                let find = |log: &[Bytes]| {
                    log.iter()
                        .map(|b| parse_header(b).expect("header"))
                        .find(|h| h.producer_id == *producer_id && h.last_offset() == last_offset)
                };
                let Some(before) = find(input) else {
                    continue;
                };
                let after = find(output).expect("producer's last batch kept");
                prop_assert_eq!(
                    (after.base_offset, after.producer_epoch, after.base_sequence),
                    (
                        before.base_offset,
                        before.producer_epoch,
                        before.base_sequence
                    )
                );
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn passes_keep_the_cleaner_properties(
                ops in prop::collection::vec(op(), 1..30),
                entries_max in prop_oneof![Just(2usize), Just(3), Just(1_000)],
                delete_retention_ms in 0i64..3_000,
            ) {
                let generated = generate(&ops);
                let limits = OffsetMapLimits { entries_max, key_bytes_max: 1 << 20 };
                let mut log = generated.log.batches.clone();
                let mut now_ms = 10_000;
                let mut last_outcomes = Vec::new();
                for _ in 0..6 {
                    let map = map_of(&log, limits, generated.lso, &generated.aborted);
                    let context = CleanContext {
                        clean_up_to: map.clean_up_to(),
                        first_unstable_offset: generated.lso,
                        now_ms,
                        delete_retention_ms,
                        aborted: generated.aborted.clone(),
                        producers: generated.producers.clone(),
                    };
                    let (outcomes, output) = pass(&log, &map, context.clone());
                    let bound = map.clean_up_to().min(generated.lso);
                    check_pass(&log, &output, &context, bound, &generated.finished)?;
                    log = output;
                    last_outcomes = outcomes;
                    now_ms += delete_retention_ms;
                }
                // With a map that holds every key, six passes reach a fixed point.
                if entries_max == 1_000 {
                    prop_assert!(last_outcomes.iter().all(|c| *c == Cleaned::Unchanged));
                }
            }
        }
    }
}
