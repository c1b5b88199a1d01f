//! Internal topics (`__consumer_offsets`, `__transaction_state`): creation on first use,
//! appends of the coordinators' own records, recovery's replay, and compaction.
//!
//! Both topics are key-value logs whose readers (the coordinators, at recovery) want only
//! the latest record per key. They are created with infinite retention and compacted here:
//! when a partition holds more than `max(COMPACTION_LIVE_FACTOR × live keys,
//! COMPACTION_MIN_RECORDS)` records, a fresh copy of every live key's latest record is
//! appended at the log end (in a new segment, a few batches), and once the sync covering
//! that copy completes, everything before the copy is dropped (`TruncatePrefix`, like
//! retention). Tombstones are not copied: the keys they delete are absent from memory, and
//! what they would shadow is dropped with them.
//!
//! Crash safety: recovery replays from the log start, latest record per key winning, so
//! the records duplicated by a copy are harmless; a crash between the copy and the
//! truncation leaves extra records, and a crash mid-copy leaves a prefix of it after
//! records that already hold every key's value. A copy is built from the coordinators'
//! memory, which matches "the latest record per key" exactly at the end of each input (every
//! handler appends a record and updates memory together), which is where this runs (from
//! `flush_syncs`).
//!
//! Differences from Kafka's log cleaner: surviving records get new offsets (the copy is
//! appended, not rewritten in place) and the log start moves past every old record, so the
//! offsets of these topics are not stable. Only the broker reads them; a consumer of the
//! topic reading from below the new log start gets OFFSET_OUT_OF_RANGE. User topics cannot
//! ask for compaction (`cleanup.policy=compact` stays INVALID_CONFIG).
//!
//! Invariants (checked by [`Node::compaction_invariants`]): a pending truncation waits for
//! a sync not yet completed and never reaches past its partition's log end; at most one
//! compaction per partition is in flight.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use uuid::Uuid;
use weir_wire::batch::{set_base_offset, set_partition_leader_epoch};
use weir_wire::domain::ReadPlan;
use weir_wire::error::ErrorCode;
use weir_wire::records::{decode_records, encode_batch, BatchOptions, Record};

use super::append::AppendOrigin;
use super::Node;
use crate::group::offsets_log::{self, OFFSETS_TOPIC};
use crate::meta;
use crate::storage::{Storage, StorageError, StorageOp};
use crate::topic::is_internal_topic;
use crate::topic::PartitionId;
use crate::txn_log::{self, TXN_STATE_TOPIC};

/// A partition of an internal topic is never compacted below this many records, so small
/// logs are left alone and a compaction always removes at least half of a partition.
pub(crate) const COMPACTION_MIN_RECORDS: i64 = 1_000;
/// Compact once records exceed this many times the live keys (the copy is then at most half
/// of what it replaces).
pub(crate) const COMPACTION_LIVE_FACTOR: i64 = 2;
/// Records per batch of a compaction copy.
const COMPACTION_BATCH_RECORDS: usize = 1_000;
/// Fewest appended offsets between two counts of a partition's live keys, so a partition
/// near its threshold does not recount its keys on every append.
const COMPACTION_RECHECK_RECORDS: i64 = COMPACTION_MIN_RECORDS / 8;
/// Bytes read per storage call when replaying an internal topic at recovery.
const REPLAY_READ_BYTES: u32 = 1 << 20;

/// A copy appended, waiting for its sync before the prefix before it is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PendingCompaction {
    /// First offset of the copy: the new log start.
    copy_start: i64,
    /// The sync that makes the copy durable.
    sync_id: u64,
}

/// The node's compaction bookkeeping.
#[derive(Debug, Clone, Default)]
pub(super) struct Compactions {
    /// Internal partitions appended to since they were last considered.
    candidates: BTreeSet<PartitionId>,
    /// Log end offset below which a partition is not considered again (its live keys were
    /// counted recently and it was under its threshold).
    next_check: BTreeMap<PartitionId, i64>,
    /// Copies waiting for their sync, by partition.
    pending: BTreeMap<PartitionId, PendingCompaction>,
}

impl Compactions {
    /// An internal partition was appended to: consider it at the end of this input.
    pub(super) fn note_append(&mut self, key: PartitionId) {
        self.candidates.insert(key);
    }
}

/// The stored range of one partition: `(partition_key, log start, high watermark)`.
pub(super) type StoredRange = (u64, i64, i64);

impl Node {
    /// Partition of internal topic `name` that holds `key`'s records (Kafka's
    /// `abs(key.hashCode) % partitions`). The controller creates internal topics (asked by
    /// the first request that needs one, see `hold_request`); until this node has applied
    /// the creation the coordinator is not available.
    pub(super) fn internal_partition(
        &mut self,
        name: &str,
        key: &str,
    ) -> Result<PartitionId, ErrorCode> {
        let Some(&topic_id) = self.topic_ids.get(name) else {
            return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
        };
        let count = self.topics[&topic_id].partitions.len();
        let count = i32::try_from(count).map_err(|_| ErrorCode::COORDINATOR_NOT_AVAILABLE)?;
        if count == 0 {
            return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
        }
        // Both internal topics share Kafka's rule (the same Java string hash).
        let index = offsets_log::partition_for(key, count);
        Ok(PartitionId::new(topic_id, index as usize))
    }

    /// Append `records` as one batch at the end of an internal partition; the next sync
    /// covers it. The partition becomes a compaction candidate.
    pub(super) fn append_internal(
        &mut self,
        topic_id: Uuid,
        index: usize,
        records: &[Record],
    ) -> Result<(), ErrorCode> {
        if records.is_empty() {
            return Ok(());
        }
        let batch = encode_batch(records, &BatchOptions::default()).map_err(|error| {
            tracing::error!(%error, "cannot encode an internal batch");
            ErrorCode::UNKNOWN_SERVER_ERROR
        })?;
        let topic = self
            .topics
            .get(&topic_id)
            .ok_or(ErrorCode::UNKNOWN_TOPIC_ID)?;
        let segment_bytes = topic.config.segment_bytes(&self.config);
        let log = (topic.partitions.get(index)).ok_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)?;
        let base_offset = log.log_end_offset();
        // Cluster mode: only the partition's leader (the coordinator) writes here.
        let epoch = self.serving_epoch(PartitionId::new(topic_id, index))?;
        let mut batch = BytesMut::from(&batch[..]);
        set_base_offset(&mut batch, base_offset);
        set_partition_leader_epoch(&mut batch, epoch);
        // Internal records carry the wall clock of the write that made them.
        let wall_ms = records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
        let key = PartitionId::new(topic_id, index);
        let origin = AppendOrigin::Coordinator;
        self.append_batch(wall_ms, key, batch.freeze(), segment_bytes, origin)?;
        Ok(())
    }

    /// Consider every internal partition appended to since the last call, and start the
    /// compaction of those over their threshold. Runs at the end of each input, when the
    /// coordinators' memory matches their logs (see the module doc).
    pub(super) fn compact_internal_topics(&mut self) {
        // A replicated internal partition is not compacted: the prefix a copy replaces may
        // only go once the copy is below the *replicated* high watermark on a leader that
        // may change meanwhile, and until that is built (issue 14) only partitions whose
        // one replica is this node are (the first Jepsen-style 5-node run crashed three
        // successive leaders on compaction of replicated ones).
        for key in std::mem::take(&mut self.compactions.candidates) {
            if !self.sole_replica(key) {
                continue;
            }
            if self.compactions.pending.contains_key(&key) {
                continue;
            }
            let (topic_id, index) = (key.topic, key.index());
            let Some(topic) = self.topics.get(&topic_id) else {
                self.compactions.next_check.remove(&key);
                continue;
            };
            let Some(log) = topic.partitions.get(index) else {
                continue;
            };
            let records = log.log_end_offset() - log.log_start_offset();
            let log_end = log.log_end_offset();
            let recheck_at = self.compactions.next_check.get(&key).copied();
            if records <= COMPACTION_MIN_RECORDS || recheck_at.is_some_and(|at| log_end < at) {
                continue;
            }
            let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
            let live = self.live_records(&topic.name.clone(), count, index);
            let live_count = i64::try_from(live.len()).unwrap_or(i64::MAX);
            let threshold = live_count
                .saturating_mul(COMPACTION_LIVE_FACTOR)
                .max(COMPACTION_MIN_RECORDS);
            if records <= threshold {
                let gap = ((threshold - records) / 2).max(COMPACTION_RECHECK_RECORDS);
                self.compactions.next_check.insert(key, log_end + gap);
                continue;
            }
            self.compactions.next_check.remove(&key);
            self.start_compaction(PartitionId::new(topic_id, index), live);
        }
    }

    /// The latest record of every live key of internal partition `index` of `topic` (with
    /// `count` partitions), rebuilt from the coordinators' memory, in key order.
    fn live_records(&self, topic: &str, count: i32, index: usize) -> Vec<Record> {
        let index = i32::try_from(index).unwrap_or(-1);
        let record = |key: Bytes, value: Bytes, timestamp: i64| Record {
            offset: 0,
            timestamp,
            key: Some(key),
            value: Some(value),
            headers: Vec::new(),
        };
        let mut records = Vec::new();
        if topic == OFFSETS_TOPIC {
            for (group, offsets) in self.groups.committed_offsets() {
                if offsets_log::partition_for(group, count) != index {
                    continue;
                }
                for ((topic, partition), committed) in offsets {
                    let key = offsets_log::offset_key(group, topic, *partition);
                    let value = offsets_log::offset_value(committed);
                    records.push(record(key, value, committed.commit_timestamp));
                }
            }
            // Groups' membership: the latest metadata record of each.
            for (group, metadata) in self.groups.metadata_records() {
                if offsets_log::partition_for(group, count) != index {
                    continue;
                }
                let key = offsets_log::group_key(group);
                let value = offsets_log::group_value(metadata);
                records.push(record(key, value, metadata.current_state_timestamp));
            }
        } else if topic == TXN_STATE_TOPIC {
            for (transactional_id, txn) in &self.txns.txns {
                if txn_log::partition_for(transactional_id, count) != index {
                    continue;
                }
                let key = txn_log::key(transactional_id);
                records.push(record(key, txn_log::value(txn), txn.last_update_ms));
            }
        }
        records
    }

    /// Append the copy of `live` in a new segment and remember to drop what precedes it
    /// once the copy is durable.
    fn start_compaction(&mut self, id: PartitionId, live: Vec<Record>) {
        let (topic_id, index) = (id.topic, id.index());
        let Some(log) = self.log_mut(PartitionId::new(topic_id, index)) else {
            return;
        };
        let copy_start = log.log_end_offset();
        let partition_key = log.partition_key();
        let before = log.log_end_offset() - log.log_start_offset();
        let sync_id = if live.is_empty() {
            // Nothing live: drop everything once what is stored is durable.
            log.log_end_offset()
                .checked_sub(1)
                .and_then(|last| log.sync_covering(last))
        } else {
            // The copy starts a segment, so the truncation removes whole segments.
            if let Some(rolled) = log.roll() {
                self.emit(StorageOp::PutMeta {
                    key: meta::segment_key(partition_key, rolled.base_offset),
                    value: meta::encode(&rolled),
                });
            }
            for chunk in live.chunks(COMPACTION_BATCH_RECORDS) {
                if let Err(error) = self.append_internal(topic_id, index, chunk) {
                    // Nothing is dropped unless the whole copy is in the log.
                    tracing::error!(error = error.name(), "compaction copy not written");
                    return;
                }
            }
            Some(self.sync.next_id)
        };
        tracing::debug!(
            partition_key,
            records = before,
            live = live.len(),
            copy_start,
            "compacting an internal partition"
        );
        match sync_id {
            Some(sync_id) => {
                let pending = PendingCompaction {
                    copy_start,
                    sync_id,
                };
                self.compactions
                    .pending
                    .insert(PartitionId::new(topic_id, index), pending);
            }
            // Nothing live and everything stored is durable: drop it all now.
            None => self.truncate_compacted(PartitionId::new(topic_id, index), copy_start),
        }
    }

    /// Sync `sync_id` completed: drop the prefixes whose copies it made durable.
    pub(super) fn finish_compactions(&mut self, sync_id: u64) {
        let done: Vec<(PartitionId, PendingCompaction)> = (self.compactions.pending.iter())
            .filter(|(_, pending)| pending.sync_id <= sync_id)
            .map(|(key, pending)| (*key, *pending))
            .collect();
        for (key, pending) in done {
            let (topic_id, index) = (key.topic, key.index());
            self.compactions
                .pending
                .remove(&PartitionId::new(topic_id, index));
            self.truncate_compacted(PartitionId::new(topic_id, index), pending.copy_start);
        }
    }

    /// Drop everything below `copy_start` (durable) of an internal partition.
    fn truncate_compacted(&mut self, id: PartitionId, copy_start: i64) {
        let (topic_id, index) = (id.topic, id.index());
        let Some(log) = self.log_mut(PartitionId::new(topic_id, index)) else {
            return; // Deleted meanwhile.
        };
        let Some(truncation) = log.truncate_prefix_to(copy_start) else {
            return;
        };
        log.txns.truncate_prefix(truncation.log_start_offset);
        let partition_key = log.partition_key();
        tracing::debug!(
            partition_key,
            log_start_offset = truncation.log_start_offset,
            "compaction dropped the prefix before its copy"
        );
        // Data first, then the meta saying it is gone, as retention does.
        self.emit(StorageOp::TruncatePrefix {
            partition_key,
            offset: truncation.log_start_offset,
        });
        for segment in &truncation.removed {
            self.emit(StorageOp::DeleteMeta {
                key: meta::segment_key(partition_key, segment.base_offset),
            });
        }
        self.emit(StorageOp::PutMeta {
            key: meta::log_start_key(partition_key),
            value: meta::encode(&truncation.log_start_offset),
        });
    }

    /// The stored ranges of every partition of internal topic `name` (none if it does not
    /// exist), for [`replay_internal`].
    pub(super) fn internal_ranges(&self, name: &str) -> Vec<StoredRange> {
        let Some(topic) = self.topic_by_name(name) else {
            return Vec::new();
        };
        (topic.partitions.iter())
            .map(|log| {
                let (start, end) = (log.log_start_offset(), log.high_watermark());
                (log.partition_key(), start, end)
            })
            .collect()
    }

    /// Assert the compaction invariants (module doc).
    pub(super) fn compaction_invariants(&self) {
        for (key, pending) in &self.compactions.pending {
            let (topic_id, index) = (key.topic, key.index());
            assert!(
                pending.sync_id > self.sync.completed || self.poisoned.is_some(),
                "compaction of {topic_id}/{index} waits for completed sync {}",
                pending.sync_id
            );
            if let Some(log) = self.partition(*key) {
                assert!(
                    pending.copy_start <= log.log_end_offset(),
                    "copy at {} beyond log end {}",
                    pending.copy_start,
                    log.log_end_offset()
                );
                let name = &self.topics[&topic_id].name;
                assert!(is_internal_topic(name), "compaction of user topic {name}");
            }
        }
    }
}

/// Reads of an internal partition retried when a batch fails its CRC before recovery gives up.
const REPLAY_READ_ATTEMPTS: u32 = 8;

/// Read `plan`, retrying while a complete batch in the answer fails its CRC: a damaged
/// read (the stored copy is intact) must not make recovery skip committed records.
fn read_verified(storage: &impl Storage, plan: &ReadPlan) -> Result<Bytes, StorageError> {
    let mut damaged_at = plan.start_offset;
    for _ in 0..REPLAY_READ_ATTEMPTS {
        let bytes = storage.read(plan)?;
        let damaged = weir_wire::batch::iter_batches(&bytes).find_map(|item| match item {
            Ok((header, range)) => {
                (!weir_wire::batch::verify_crc(&bytes[range])).then_some(header.base_offset)
            }
            Err(_) => None,
        });
        match damaged {
            None => return Ok(bytes),
            Some(offset) => damaged_at = offset,
        }
    }
    Err(StorageError::Corrupt {
        partition_key: plan.partition_key,
        offset: damaged_at,
        reason: format!("batch failed its CRC in {REPLAY_READ_ATTEMPTS} reads"),
    })
}

/// Replay every record of the given partitions (from their log start to their high
/// watermark) in offset order, partition by partition; returns how many were applied.
/// Reads are CRC-checked and retried ([`read_verified`]); a batch that still cannot be
/// decoded is logged and skipped.
pub(super) fn replay_internal(
    storage: &impl Storage,
    name: &str,
    ranges: &[StoredRange],
    mut apply: impl FnMut(Record),
) -> Result<u64, StorageError> {
    let mut replayed = 0u64;
    for &(partition_key, start_offset, end_offset) in ranges {
        let mut position = start_offset;
        while position < end_offset {
            let plan = ReadPlan {
                partition_key,
                start_offset: position,
                end_offset,
                max_bytes: REPLAY_READ_BYTES,
            };
            let bytes = read_verified(storage, &plan)?;
            let mut next = position;
            for item in weir_wire::batch::iter_batches(&bytes) {
                match item {
                    Ok((header, _)) => next = next.max(header.last_offset() + 1),
                    Err(_) => break,
                }
            }
            match decode_records(bytes) {
                Ok(records) => {
                    for record in records.into_iter().filter(|r| r.offset >= position) {
                        replayed += 1;
                        apply(record);
                    }
                }
                Err(error) => tracing::warn!(%error, "unreadable {name} batch skipped"),
            }
            if next <= position {
                break; // Nothing readable past here (a torn tail was truncated).
            }
            position = next;
        }
    }
    Ok(replayed)
}
