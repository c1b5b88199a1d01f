//! Internal topics (`__consumer_offsets`, `__transaction_state`): creation on first use,
//! appends of the coordinators' own records, recovery's replay, and compaction.
//!
//! Both topics are key-value logs whose readers (the coordinators, at recovery) want only
//! the latest record per key. They are created with infinite retention and compacted like
//! any compacted topic (`node/compact.rs`, Kafka's log cleaner): in place, offsets kept,
//! on every replica. Recovery replays each partition from its log start, latest record per
//! key winning, so a partly cleaned log (a crash between two jobs) replays to the same
//! state as a clean one.

use bytes::{Bytes, BytesMut};
use uuid::Uuid;
use weir_wire::batch::{parse_header, set_base_offset, set_partition_leader_epoch};
use weir_wire::domain::ReadPlan;
use weir_wire::error::ErrorCode;
use weir_wire::records::{decode_records, encode_batch, BatchOptions, Record};

use super::append::AppendOrigin;
use super::Node;
use crate::group::offsets_log;
use crate::storage::{Storage, StorageError};
use crate::topic::PartitionId;

/// Bytes read per storage call when replaying an internal topic at recovery.
const REPLAY_READ_BYTES: u32 = 1 << 20;

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
        self.append_internal_batch(topic_id, index, records, &BatchOptions::default())
    }

    /// [`Node::append_internal`] with the batch's producer fields: a transactional batch
    /// (a TxnOffsetCommit's offsets) joins its producer's open transaction in the partition's
    /// producer table and transaction index, like a client's transactional batch.
    pub(super) fn append_internal_batch(
        &mut self,
        topic_id: Uuid,
        index: usize,
        records: &[Record],
        options: &BatchOptions,
    ) -> Result<(), ErrorCode> {
        if records.is_empty() {
            return Ok(());
        }
        let batch = encode_batch(records, options).map_err(|error| {
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
/// decoded is logged and skipped. Control batches (transaction markers) carry no record.
pub(super) fn replay_internal(
    storage: &impl Storage,
    name: &str,
    ranges: &[StoredRange],
    mut apply: impl FnMut(Record),
) -> Result<u64, StorageError> {
    replay_internal_batches(storage, name, ranges, |batch, from| {
        if parse_header(&batch).is_ok_and(|h| h.is_control()) {
            return 0;
        }
        match decode_records(batch) {
            Ok(records) => {
                let mut applied = 0;
                for record in records.into_iter().filter(|r| r.offset >= from) {
                    applied += 1;
                    apply(record);
                }
                applied
            }
            Err(error) => {
                tracing::warn!(%error, "unreadable {name} batch skipped");
                0
            }
        }
    })
}

/// [`replay_internal`] batch by batch, control batches included: `apply` gets each whole
/// stored batch and the first offset to replay in it (a read may start inside the batch
/// that holds the log start), and returns how many records it applied.
pub(super) fn replay_internal_batches(
    storage: &impl Storage,
    name: &str,
    ranges: &[StoredRange],
    mut apply: impl FnMut(Bytes, i64) -> u64,
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
                let Ok((header, range)) = item else {
                    tracing::warn!("unreadable {name} batch skipped");
                    break;
                };
                next = next.max(header.last_offset() + 1);
                if header.last_offset() < position {
                    continue;
                }
                replayed += apply(bytes.slice(range), position);
            }
            if next <= position {
                break; // Nothing readable past here (a torn tail was truncated).
            }
            position = next;
        }
    }
    Ok(replayed)
}
