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
                if map
                    .latest_offset(key)
                    .is_some_and(|latest| record.offset < latest)
                {
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
