//! The one append path. Every batch that enters a partition's log goes through
//! [`Node::append_batch`]: a client's produce (`produce.rs`), a coordinator's records in an
//! internal topic (`internal.rs`), a transaction marker (`txn.rs`) and a follower's copy of
//! its leader's batches (`cluster/follower.rs`). Before this function existed the sequence was
//! written four times, and a step forgotten in one copy is a durability bug.
//!
//! The steps, in this order:
//! 1. (followers) a new leader epoch in the batch enters the partition's epoch cache;
//! 2. the batch takes the partition's log end offset (a follower's batch may start past it,
//!    after a gap its leader's compaction left) and is covered by the next sync
//!    (`sync.next_id`: group commit guarantees that sync will be emitted); the active
//!    segment rolls first by `segment.bytes` or `segment.ms`;
//! 3. a segment the append closed has its summary written to meta *before* the append,
//!    so a durable summary always describes durable data;
//! 4. the batch bytes leave as `StorageOp::Append`;
//! 5. the partition's idempotent-producer table and transaction index learn the batch;
//! 6. a roll snapshots the producer table after the append it includes (retention deletes
//!    only closed segments, so recovery never needs producer state from deleted data);
//! 7. the partition is marked unsynced (the sync completion advances its durable offset);
//! 8. (coordinators) the append is noted so the answer that follows waits for its
//!    replication;
//! 9. replica fetches parked on the partition are woken.
//!
//! Invariants (asserted): offsets increase; a batch lands exactly at the log end, except a
//! follower's after a compacted gap; the batch carries the offsets it is stored at.

use bytes::Bytes;
use weir_wire::batch::{control_type, parse_header, CONTROL_TYPE_COMMIT};
use weir_wire::error::ErrorCode;

use super::Node;
use crate::meta;
use crate::partition::{BatchAppend, Roll};
use crate::storage::StorageOp;
use crate::topic::PartitionId;

/// Who appends: decides only the bookkeeping that differs between the paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AppendOrigin {
    /// A client's produce on the partition's leader.
    Client,
    /// A coordinator's own write (internal-topic records, transaction markers): its answer
    /// waits for the append's replication.
    Coordinator,
    /// A follower's copy of a batch its leader stamped (offset and epoch already set).
    Follower,
}

/// Where a batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Appended {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// The sync whose completion makes it durable.
    pub sync_id: u64,
    /// The partition's log start offset after the append.
    pub log_start_offset: i64,
}

impl Node {
    /// Append one whole, stamped v2 batch (base offset = the partition's log end offset,
    /// leader epoch and timestamps set) to partition `key`, doing every step of the module
    /// doc. `segment_bytes` is the roll size the caller decided (BUGGIFY may shrink it);
    /// `wall_ms` is the wall clock now (a producer's last-write time).
    ///
    /// Errors: the partition is unknown, or the batch does not parse (a caller bug: every
    /// caller hands in a batch it validated or encoded; logged, nothing is written).
    pub(super) fn append_batch(
        &mut self,
        wall_ms: i64,
        key: PartitionId,
        batch: Bytes,
        segment_bytes: u64,
        origin: AppendOrigin,
    ) -> Result<Appended, ErrorCode> {
        let header = parse_header(&batch).map_err(|error| {
            tracing::error!(%error, ?origin, "append of a batch that does not parse");
            ErrorCode::CORRUPT_MESSAGE
        })?;
        let (topic_id, index) = (key.topic, key.index());
        let segment_ms = (self.topics.get(&topic_id))
            .map_or(i64::MAX, |t| t.config.segment_roll_ms(&self.config));
        let sync_id = self.sync.next_id;
        let log = self
            .log_mut(key)
            .ok_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)?;
        // Offsets are dense at the log end, except on a follower whose leader's compaction
        // removed the batches before this one (the gap is the leader's, replicated).
        let gap = header.base_offset - log.log_end_offset();
        assert!(
            gap == 0 || (gap > 0 && origin == AppendOrigin::Follower),
            "a batch at {} appended at the log end {} ({origin:?})",
            header.base_offset,
            log.log_end_offset()
        );
        assert_eq!(
            header.size_bytes(),
            batch.len(),
            "append_batch takes exactly one whole batch"
        );
        // 1. A follower's log learns each leader epoch where it starts (leaders pushed
        //    theirs when they took the role).
        let epochs = (origin == AppendOrigin::Follower
            && log.push_epoch(header.partition_leader_epoch, header.base_offset))
        .then(|| meta::epochs_op(log));
        // 2. Offsets and the covering sync.
        let append = BatchAppend {
            gap,
            offset_count: i64::from(header.last_offset_delta) + 1,
            bytes: batch.len() as u64,
            max_timestamp: header.max_timestamp,
        };
        let roll = Roll {
            bytes: segment_bytes,
            ms: segment_ms,
            wall_ms,
        };
        let appended = log.append(append, sync_id, roll);
        assert_eq!(
            appended.base_offset, header.base_offset,
            "append at the log end"
        );
        assert_eq!(
            appended.last_offset,
            header.last_offset(),
            "offsets are dense"
        );
        let partition_key = log.partition_key();
        // 3. A closed segment's summary before the data of the new one.
        let summary = appended.rolled.map(|rolled| StorageOp::PutMeta {
            key: meta::segment_key(partition_key, rolled.base_offset),
            value: meta::encode(&rolled),
        });
        // 5. Producer table (control batches are ignored there) and transaction index.
        log.producers.replay(&header, wall_ms);
        if header.is_transactional() && header.producer_id >= 0 {
            if header.is_control() {
                if let Some(kind) = control_type(&batch) {
                    let committed = kind == CONTROL_TYPE_COMMIT;
                    log.txns
                        .on_marker(header.producer_id, committed, header.base_offset);
                }
            } else {
                log.txns.on_data(header.producer_id, header.base_offset);
            }
        }
        // 6. A roll snapshots the producer table, after the append (see the module doc).
        let snapshot =
            (appended.rolled.is_some()).then(|| super::producer_id::producer_snapshot_op(log));
        let log_start_offset = log.log_start_offset();
        // 4. The data, in the order above: epochs, summary, batch, snapshot.
        let data = StorageOp::Append {
            partition_key,
            base_offset: appended.base_offset,
            last_offset: appended.last_offset,
            batch,
        };
        for op in epochs
            .into_iter()
            .chain(summary)
            .chain([data])
            .chain(snapshot)
        {
            self.emit(op);
        }
        // 7. Unsynced until the covering sync completes.
        self.unsynced_partitions.insert(key);
        // 8. A coordinator's answer waits for this append's replication.
        if origin == AppendOrigin::Coordinator {
            self.note_internal_append(key, appended.last_offset + 1);
        }
        // 9. Followers waiting for data.
        self.wake_replica_fetches(PartitionId::new(topic_id, index));
        Ok(Appended {
            base_offset: appended.base_offset,
            last_offset: appended.last_offset,
            sync_id,
            log_start_offset,
        })
    }
}
