//! Transactional offsets at the group's coordinator: TxnOffsetCommit, and the transaction
//! markers that commit or drop what it wrote (the design is in [`crate::group::txn_offsets`]).
//!
//! The round trip of a consume-transform-produce loop, whichever brokers or shards hold its
//! group and its transactional id:
//! 1. AddOffsetsToTxn, at the transaction's coordinator (`node/txn.rs`), adds the group's
//!    `__consumer_offsets` partition to the transaction, so its end writes a marker there.
//! 2. TxnOffsetCommit, at the group's coordinator (here), appends the offsets as one
//!    transactional batch of the producer to that partition and holds them pending.
//! 3. EndTxn's marker reaches that partition through the one marker path (local, another
//!    shard's or another broker's leader): a commit makes the pending offsets the group's
//!    committed offsets, an abort drops them. Followers and recovery apply the same batches
//!    and markers in log order ([`apply_offsets_batch`]), so a coordinator that fails over
//!    or restarts holds exactly what the log says.
//!
//! Fencing: when this node also coordinates the transactional id it checks the producer as
//! every transaction request does (`check_txn`: current epoch, transaction ongoing, group
//! added). Otherwise it checks what the partition knows, as Kafka's group coordinator does:
//! an epoch older than the producer's last one in this partition is PRODUCER_FENCED, and a
//! marker raises that epoch, so a zombie cannot add offsets after its transaction ended.

use bytes::Bytes;
use weir_wire::batch::{control_type, parse_header, CONTROL_TYPE_COMMIT};
use weir_wire::domain::txn::{
    TxnOffsetCommitRequest, TxnOffsetCommitResponse, TxnPartitionResult, TxnTopicResult,
};
use weir_wire::domain::ApiResponse;
use weir_wire::error::ErrorCode;
use weir_wire::records::{decode_records, BatchOptions, Record};

use super::Node;
use crate::event::RequestId;
use crate::group::offsets_log::OFFSETS_TOPIC;
use crate::group::{CommittedOffset, GroupCoordinator};
use crate::time::Now;
use crate::txn::TxnState;
use crate::txn_log::TXN_STATE_TOPIC;

impl Node {
    /// TxnOffsetCommit: append the offsets as a transactional batch of the producer to the
    /// group's offsets partition and hold them until the transaction's marker. Unlike a plain
    /// OffsetCommit it checks no group membership (Kafka checks the generation only when the
    /// client sends one, KIP-447). Each partition is answered alone.
    pub(super) fn txn_offset_commit(
        &mut self,
        now: Now,
        id: RequestId,
        request: TxnOffsetCommitRequest,
    ) {
        let count: usize = request.topics.iter().map(|t| t.partitions.len()).sum();
        let refusal = if request.group_id.is_empty() {
            Some(ErrorCode::INVALID_GROUP_ID)
        } else if let Err(error) = self.check_txn_offsets_producer(&request) {
            Some(error)
        } else if self.sync_waiters.is_full()
            || !(self.groups).has_room_for_txn_offsets(request.producer_id, count)
        {
            Some(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)
        } else if !self.groups.has_room_for_offsets(&request.group_id, count) {
            Some(ErrorCode::OFFSET_METADATA_TOO_LARGE)
        } else {
            None
        };
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        let topics: Vec<TxnTopicResult> = (request.topics.iter())
            .map(|t| TxnTopicResult {
                name: t.name.clone(),
                partitions: (t.partitions.iter())
                    .map(|p| {
                        let committed = CommittedOffset {
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata: p.committed_metadata.clone().unwrap_or_default(),
                            commit_timestamp: now.wall_ms,
                        };
                        let key = (t.name.clone(), p.partition);
                        let group = &request.group_id;
                        let error = match self.offset_record(refusal, group, &key, &committed) {
                            Ok(record) => {
                                records.push(record);
                                accepted.push((group.clone(), key, committed));
                                ErrorCode::NONE
                            }
                            Err(error) => error,
                        };
                        TxnPartitionResult {
                            partition: p.partition,
                            error,
                        }
                    })
                    .collect(),
            })
            .collect();
        assert_eq!(accepted.len(), records.len(), "group {}", request.group_id);
        let mut response = TxnOffsetCommitResponse {
            throttle_time_ms: 0,
            topics,
        };
        if records.is_empty() {
            self.respond(id, ApiResponse::TxnOffsetCommit(response));
            return;
        }
        // The batch before memory and the answer after its sync (and, in a cluster, its
        // replication), as for a plain commit: once answered, a crash or a failover keeps
        // the offsets for the marker.
        let options = BatchOptions {
            producer_id: request.producer_id,
            producer_epoch: request.producer_epoch,
            transactional: true,
            ..BatchOptions::default()
        };
        let appended = self
            .offsets_partition(&request.group_id)
            .and_then(|key| self.append_internal_batch(key.topic, key.index(), &records, &options));
        if let Err(error) = appended {
            for topic in &mut response.topics {
                for partition in &mut topic.partitions {
                    if partition.error.is_ok() {
                        partition.error = error;
                    }
                }
            }
            self.respond(id, ApiResponse::TxnOffsetCommit(response));
            return;
        }
        self.groups.stage_txn_offsets(request.producer_id, accepted);
        self.respond_when_durable(id, ApiResponse::TxnOffsetCommit(response), None);
    }

    /// The producer of a TxnOffsetCommit may add offsets to its transaction (module doc).
    fn check_txn_offsets_producer(
        &mut self,
        request: &TxnOffsetCommitRequest,
    ) -> Result<(), ErrorCode> {
        // No transactional id exists before `__transaction_state` does (InitProducerId
        // creates it first).
        if request.producer_id < 0 || !self.topic_ids.contains_key(TXN_STATE_TOPIC) {
            return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        }
        if self.coordinates(&request.transactional_id, true) {
            let txn = self.check_txn(
                &request.transactional_id,
                request.producer_id,
                request.producer_epoch,
            )?;
            // Offsets join an open transaction only, for a group it added with
            // AddOffsetsToTxn: otherwise no marker would ever commit or drop them.
            if txn.state != TxnState::Ongoing || !txn.groups.contains(&request.group_id) {
                return Err(ErrorCode::INVALID_TXN_STATE);
            }
            return Ok(());
        }
        let key = self.offsets_partition(&request.group_id)?;
        let known =
            (self.partition(key)).and_then(|log| log.producers.epoch_of(request.producer_id));
        if known.is_some_and(|epoch| request.producer_epoch < epoch) {
            return Err(ErrorCode::PRODUCER_FENCED);
        }
        Ok(())
    }
}

/// Apply one batch of `__consumer_offsets` copied from the leader or replayed at recovery,
/// from offset `from`: plain records replace the group's state (latest wins), a
/// transactional batch's offsets wait for their producer's marker, and a marker commits or
/// drops them. Returns how many records it applied.
pub(super) fn apply_offsets_batch(
    groups: &mut GroupCoordinator,
    now: Now,
    batch: Bytes,
    from: i64,
) -> u64 {
    let Ok(header) = parse_header(&batch) else {
        return 0;
    };
    if header.is_control() {
        if header.is_transactional() && header.producer_id >= 0 {
            if let Some(kind) = control_type(&batch) {
                let committed = kind == CONTROL_TYPE_COMMIT;
                groups.end_txn_offsets(now, header.producer_id, committed, false);
            }
        }
        return 0;
    }
    let records = match decode_records(batch) {
        Ok(records) => records,
        Err(error) => {
            tracing::warn!(%error, "unreadable {OFFSETS_TOPIC} batch skipped");
            return 0;
        }
    };
    let records: Vec<Record> = records.into_iter().filter(|r| r.offset >= from).collect();
    let applied = records.len() as u64;
    if header.is_transactional() && header.producer_id >= 0 {
        let pairs = (records.iter()).filter_map(|r| Some((r.key.as_deref()?, r.value.as_deref())));
        groups.stage_txn_records(header.producer_id, pairs);
        return applied;
    }
    for record in &records {
        let Some(key) = record.key.as_deref() else {
            continue;
        };
        if !groups.replay_record(now, key, record.value.as_deref()) {
            tracing::debug!(offset = record.offset, "unknown record skipped");
        }
    }
    applied
}

#[cfg(test)]
mod tests {
    use weir_wire::batch::{encode_control_batch, set_base_offset};
    use weir_wire::records::encode_batch;

    use super::*;
    use crate::group::offsets_log;
    use crate::time::Instant;

    fn offsets_batch(base: i64, producer_id: i64, group: &str, offset: i64) -> Bytes {
        let committed = CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 1,
        };
        let record = offsets_log::offset_record(group, "t", 0, &committed);
        let options = BatchOptions {
            producer_id,
            producer_epoch: 0,
            transactional: producer_id >= 0,
            ..BatchOptions::default()
        };
        let batch = encode_batch(&[record], &options).expect("encode");
        let mut batch = bytes::BytesMut::from(&batch[..]);
        set_base_offset(&mut batch, base);
        batch.freeze()
    }

    fn committed(groups: &GroupCoordinator, group: &str) -> i64 {
        let request = weir_wire::domain::OffsetFetchGroup {
            group_id: group.into(),
            topics: Some(vec![("t".into(), vec![0])]),
        };
        groups.fetch_offsets(&request).topics[0].partitions[0].committed_offset
    }

    #[test]
    fn a_replayed_log_commits_only_what_a_commit_marker_ends() {
        let now = Now::new(Instant::from_nanos(0), 1_000);
        let mut groups = GroupCoordinator::new(crate::group::test_config());
        let marker = |base, producer_id, committed| {
            let batch = encode_control_batch(producer_id, 0, committed, 0, 1);
            let mut batch = bytes::BytesMut::from(&batch[..]);
            set_base_offset(&mut batch, base);
            batch.freeze()
        };
        // A plain commit, then two transactions: producer 7 commits, producer 8 aborts.
        apply_offsets_batch(&mut groups, now, offsets_batch(0, -1, "g", 3), 0);
        apply_offsets_batch(&mut groups, now, offsets_batch(1, 7, "g", 10), 0);
        apply_offsets_batch(&mut groups, now, offsets_batch(2, 8, "h", 20), 0);
        assert_eq!(committed(&groups, "g"), 3, "pending until the marker");
        assert!(groups.has_pending_txn_offset("g", "t", 0));
        apply_offsets_batch(&mut groups, now, marker(3, 7, true), 0);
        apply_offsets_batch(&mut groups, now, marker(4, 8, false), 0);
        assert_eq!(committed(&groups, "g"), 10);
        assert_eq!(committed(&groups, "h"), -1, "aborted offsets are dropped");
        assert!(!groups.has_pending_txn_offset("g", "t", 0));
        groups.invariants();
    }
}
