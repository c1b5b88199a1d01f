//! The transaction coordinator at node level: InitProducerId with a transactional id,
//! AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn, WriteTxnMarkers, the
//! timeout aborts, the admin views (DescribeTransactions, ListTransactions,
//! DescribeProducers), the produce-side check of transactional batches, and recovery.
//!
//! State lives in the internal topic `__transaction_state` (format: `txn_log`; created on
//! first use, compacted like `__consumer_offsets`, see `node/internal.rs`); recovery
//! replays it, latest record per transactional id winning. Legacy `txn/{id}` meta entries
//! (written before the topic existed) are moved into the topic at recovery.
//!
//! Invariants:
//! - every state change is a record of `__transaction_state` answered only after the sync
//!   covering it;
//! - ending a transaction writes Prepare, then the markers and (commit) the group offsets,
//!   then Complete, all before the answer's sync, so an acknowledged EndTxn is complete on
//!   disk and a crash in between leaves a Prepare state that recovery finishes;
//! - a transactional batch is appended only for a partition the producer's current epoch
//!   added to its ongoing transaction (KIP-890's verification, done locally).

use std::collections::BTreeMap;

use bytes::BytesMut;
use weir_wire::batch::{
    control_type, encode_control_batch, iter_batches, set_base_offset, set_partition_leader_epoch,
    BatchHeader, CONTROL_TYPE_COMMIT,
};
use weir_wire::domain::txn::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, DescribeProducersPartition, DescribeProducersRequest,
    DescribeProducersResponse, DescribeProducersTopic, DescribeTransactionsRequest,
    DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse, ListTransactionsRequest,
    ListTransactionsResponse, ProducerDescription, TransactionDescription, TransactionListing,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse, TxnPartitionResult, TxnTopic, TxnTopicResult,
    WriteTxnMarkersRequest, WriteTxnMarkersResponse, WriteTxnMarkersResult,
};
use weir_wire::domain::{
    ApiRequest, ApiResponse, InitProducerIdRequest, InitProducerIdResponse, OffsetFetchRequest,
    OffsetFetchResponse, ReadPlan, TopicRef,
};
use weir_wire::error::ErrorCode;
use weir_wire::records::Record;

use uuid::Uuid;

use super::append::AppendOrigin;
use super::internal::replay_internal;
use super::{Node, LEADER_EPOCH};
use crate::event::RequestId;
use crate::group::offsets_log;
use crate::group::CommittedOffset;
use crate::meta;
use crate::storage::{Storage, StorageError, StorageOp};
use crate::time::Now;
use crate::txn::{
    PendingOffset, TxnMetadata, TxnState, TXNS_MAX, TXN_META_PREFIX, TXN_PARTITIONS_MAX,
};
use crate::txn_log::{self, TRANSACTIONAL_ID_BYTES_MAX, TXN_STATE_TOPIC};

/// Bytes read per storage call while rebuilding transaction indexes at recovery.
const REPLAY_READ_BYTES: u32 = 4 << 20;
/// Coordinator epoch written in markers (one node, never fails over).
const COORDINATOR_EPOCH: i32 = 0;

/// The legacy meta key of a transaction's state (read only to migrate it).
fn legacy_txn_key(transactional_id: &str) -> Vec<u8> {
    format!("{TXN_META_PREFIX}{transactional_id}").into_bytes()
}

impl Node {
    /// Route a transaction request; gives it back if it is not one.
    pub(super) fn handle_txn_request(
        &mut self,
        now: Now,
        id: RequestId,
        request: ApiRequest,
    ) -> Option<ApiRequest> {
        match request {
            ApiRequest::AddPartitionsToTxn(r) => self.add_partitions_to_txn(now, id, r),
            ApiRequest::AddOffsetsToTxn(r) => self.add_offsets_to_txn(now, id, r),
            ApiRequest::TxnOffsetCommit(r) => self.txn_offset_commit(now, id, r),
            ApiRequest::EndTxn(r) => self.end_txn(now, id, r),
            ApiRequest::WriteTxnMarkers(r) => self.write_txn_markers(now, id, r),
            ApiRequest::DescribeTransactions(r) => self.describe_transactions(id, r),
            ApiRequest::ListTransactions(r) => self.list_transactions(now, id, r),
            ApiRequest::DescribeProducers(r) => self.describe_producers(id, r),
            other => return Some(other),
        }
        None
    }

    /// The ongoing transaction of `transactional_id` if `producer_id`/`epoch` is its
    /// current producer.
    fn check_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
    ) -> Result<&TxnMetadata, ErrorCode> {
        let txn =
            (self.txns.txns.get(transactional_id)).ok_or(ErrorCode::INVALID_PRODUCER_ID_MAPPING)?;
        if txn.producer_id != producer_id {
            return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        }
        if epoch < txn.producer_epoch {
            return Err(ErrorCode::PRODUCER_FENCED);
        }
        if epoch > txn.producer_epoch {
            return Err(ErrorCode::INVALID_PRODUCER_EPOCH);
        }
        if matches!(txn.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(ErrorCode::CONCURRENT_TRANSACTIONS);
        }
        Ok(txn)
    }

    /// The `__transaction_state` partition of `transactional_id`, creating the topic on
    /// first use.
    fn txn_state_partition(&mut self, transactional_id: &str) -> Result<(Uuid, usize), ErrorCode> {
        let partitions = self.config.transaction_state_log_num_partitions;
        self.internal_partition(TXN_STATE_TOPIC, partitions, transactional_id)
    }

    /// Append `transactional_id`'s record (`None` = tombstone) to `__transaction_state`;
    /// the next sync covers it.
    fn append_txn_record(
        &mut self,
        transactional_id: &str,
        value: Option<bytes::Bytes>,
        timestamp: i64,
    ) -> Result<(), ErrorCode> {
        let (topic_id, index) = self.txn_state_partition(transactional_id)?;
        let record = Record {
            offset: 0,
            timestamp,
            key: Some(txn_log::key(transactional_id)),
            value,
            headers: Vec::new(),
        };
        self.append_internal(topic_id, index, &[record])
    }

    /// Persist `txn` and make it current.
    fn put_txn(&mut self, txn: TxnMetadata) {
        let value = txn_log::value(&txn);
        let result = self.append_txn_record(&txn.transactional_id, Some(value), txn.last_update_ms);
        if let Err(error) = result {
            // InitProducerId made sure the topic exists before the id had any state, so
            // this is an internal error; the state still changes in memory (answers go on).
            tracing::error!(
                transactional_id = txn.transactional_id,
                error = error.name(),
                "transaction state not persisted"
            );
        }
        self.txns.put(txn);
    }

    /// Mark `txn` Ongoing (starting its clock if it was not).
    fn begin(txn: &mut TxnMetadata, now: Now) {
        txn.last_update_ms = now.wall_ms;
        if txn.state != TxnState::Ongoing {
            txn.state = TxnState::Ongoing;
            txn.start_ms = now.wall_ms;
            let timeout_ms = u64::try_from(txn.timeout_ms).unwrap_or(0);
            txn.deadline = Some(now.instant.add_ms(timeout_ms));
        }
    }

    /// InitProducerId with a transactional id: the id's producer id at a bumped epoch (a new
    /// id at epoch 0 the first time), after aborting any transaction it left open.
    pub(super) fn init_transactional_producer(
        &mut self,
        now: Now,
        id: RequestId,
        request: InitProducerIdRequest,
    ) {
        let respond = |error, producer_id, producer_epoch| {
            ApiResponse::InitProducerId(InitProducerIdResponse {
                throttle_time_ms: 0,
                error,
                producer_id,
                producer_epoch,
            })
        };
        let transactional_id = request.transactional_id.clone().unwrap_or_default();
        let timeout_ms = request.transaction_timeout_ms;
        if transactional_id.is_empty() || transactional_id.len() > TRANSACTIONAL_ID_BYTES_MAX {
            self.respond(id, respond(ErrorCode::INVALID_REQUEST, -1, -1));
            return;
        }
        if timeout_ms <= 0 || timeout_ms > self.config.transaction_max_timeout_ms {
            self.respond(id, respond(ErrorCode::INVALID_TRANSACTION_TIMEOUT, -1, -1));
            return;
        }
        if self.sync_waiters.is_full()
            || (self.txns.txns.len() >= TXNS_MAX && !self.txns.txns.contains_key(&transactional_id))
        {
            self.respond(id, respond(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS, -1, -1));
            return;
        }
        // The state topic must exist before the id has state to persist.
        if let Err(error) = self.txn_state_partition(&transactional_id) {
            self.respond(id, respond(error, -1, -1));
            return;
        }
        let existing = self.txns.txns.get(&transactional_id).cloned();
        let (producer_id, producer_epoch) = match &existing {
            Some(txn) => {
                // KIP-360: a producer naming its current id must name this one and not an
                // older epoch (an older one is a zombie).
                if request.producer_id >= 0 {
                    if request.producer_id != txn.producer_id {
                        self.respond(id, respond(ErrorCode::INVALID_PRODUCER_EPOCH, -1, -1));
                        return;
                    }
                    if request.producer_epoch < txn.producer_epoch {
                        self.respond(id, respond(ErrorCode::PRODUCER_FENCED, -1, -1));
                        return;
                    }
                }
                if txn.producer_epoch >= i16::MAX - 1 {
                    match self.allocate_producer_id() {
                        Some(producer_id) => (producer_id, 0),
                        None => {
                            self.respond(id, respond(ErrorCode::UNKNOWN_SERVER_ERROR, -1, -1));
                            return;
                        }
                    }
                } else {
                    (txn.producer_id, txn.producer_epoch + 1)
                }
            }
            None => match self.allocate_producer_id() {
                Some(producer_id) => (producer_id, 0),
                None => {
                    self.respond(id, respond(ErrorCode::UNKNOWN_SERVER_ERROR, -1, -1));
                    return;
                }
            },
        };
        let mut txn = existing.unwrap_or(TxnMetadata {
            transactional_id: transactional_id.clone(),
            producer_id,
            producer_epoch,
            timeout_ms,
            state: TxnState::Empty,
            partitions: Default::default(),
            groups: Default::default(),
            pending_offsets: Vec::new(),
            start_ms: -1,
            last_update_ms: now.wall_ms,
            deadline: None,
        });
        // The bumped epoch fences the old producer everywhere before its transaction is
        // aborted with markers carrying the new epoch.
        let ongoing = txn.state == TxnState::Ongoing;
        txn.producer_id = producer_id;
        txn.producer_epoch = producer_epoch;
        txn.timeout_ms = timeout_ms;
        txn.last_update_ms = now.wall_ms;
        self.put_txn(txn);
        if ongoing {
            tracing::info!(
                transactional_id,
                "aborting the open transaction of a re-initialized producer"
            );
            self.end_transaction(now, &transactional_id, false);
        } else if let Some(txn) = self.txns.txns.get(&transactional_id).cloned() {
            let mut txn = txn;
            txn.state = TxnState::Empty;
            self.put_txn(txn);
        }
        self.respond_when_durable(
            id,
            respond(ErrorCode::NONE, producer_id, producer_epoch),
            None,
        );
    }

    /// The next producer id, its counter persisted (answers wait for the sync).
    fn allocate_producer_id(&mut self) -> Option<i64> {
        let producer_id = self.next_producer_id;
        let next = producer_id.checked_add(1)?;
        self.next_producer_id = next;
        self.emit(StorageOp::PutMeta {
            key: meta::NEXT_PRODUCER_ID.to_vec(),
            value: meta::encode(&next),
        });
        Some(producer_id)
    }

    fn add_partitions_to_txn(
        &mut self,
        now: Now,
        id: RequestId,
        request: AddPartitionsToTxnRequest,
    ) {
        let checked = self
            .check_txn(
                &request.transactional_id,
                request.producer_id,
                request.producer_epoch,
            )
            .cloned();
        let count: usize = request.topics.iter().map(|t| t.partitions.len()).sum();
        let mut error = match checked {
            Err(error) => Some(error),
            Ok(_) if self.sync_waiters.is_full() => Some(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS),
            Ok(ref txn) if txn.partitions.len() + count > TXN_PARTITIONS_MAX => {
                Some(ErrorCode::INVALID_REQUEST)
            }
            Ok(_) => None,
        };
        // Unknown partitions fail the whole request (the others: OPERATION_NOT_ATTEMPTED).
        let unknown = |node: &Node, topic: &str, partition: i32| {
            node.resolve_partition(&TopicRef::Name(topic.to_string()), partition)
                .is_err()
        };
        let any_unknown = (request.topics.iter())
            .any(|t| t.partitions.iter().any(|p| unknown(self, &t.name, *p)));
        let results = (request.topics.iter())
            .map(|t| TxnTopicResult {
                name: t.name.clone(),
                partitions: (t.partitions.iter())
                    .map(|p| TxnPartitionResult {
                        partition: *p,
                        error: match error {
                            Some(error) => error,
                            None if unknown(self, &t.name, *p) => {
                                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                            }
                            None if any_unknown => ErrorCode::OPERATION_NOT_ATTEMPTED,
                            None => ErrorCode::NONE,
                        },
                    })
                    .collect(),
            })
            .collect();
        let response = ApiResponse::AddPartitionsToTxn(AddPartitionsToTxnResponse {
            throttle_time_ms: 0,
            results,
        });
        if any_unknown {
            error = Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
        }
        let (None, Ok(mut txn)) = (error, checked) else {
            self.respond(id, response);
            return;
        };
        Self::begin(&mut txn, now);
        for topic in &request.topics {
            for partition in &topic.partitions {
                txn.partitions.insert((topic.name.clone(), *partition));
            }
        }
        self.put_txn(txn);
        self.respond_when_durable(id, response, None);
    }

    fn add_offsets_to_txn(&mut self, now: Now, id: RequestId, request: AddOffsetsToTxnRequest) {
        let checked = self
            .check_txn(
                &request.transactional_id,
                request.producer_id,
                request.producer_epoch,
            )
            .cloned();
        let respond = |error| {
            ApiResponse::AddOffsetsToTxn(AddOffsetsToTxnResponse {
                throttle_time_ms: 0,
                error,
            })
        };
        let mut txn = match checked {
            Err(error) => return self.respond(id, respond(error)),
            Ok(_) if self.sync_waiters.is_full() => {
                return self.respond(id, respond(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS))
            }
            Ok(_) if request.group_id.is_empty() => {
                return self.respond(id, respond(ErrorCode::INVALID_GROUP_ID))
            }
            Ok(txn) => txn,
        };
        Self::begin(&mut txn, now);
        txn.groups.insert(request.group_id.clone());
        self.put_txn(txn);
        self.respond_when_durable(id, respond(ErrorCode::NONE), None);
    }

    fn txn_offset_commit(&mut self, _now: Now, id: RequestId, request: TxnOffsetCommitRequest) {
        let checked = self
            .check_txn(
                &request.transactional_id,
                request.producer_id,
                request.producer_epoch,
            )
            .cloned();
        let error = match &checked {
            Err(error) => Some(*error),
            Ok(_) if self.sync_waiters.is_full() => Some(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS),
            Ok(txn)
                if txn.state != TxnState::Ongoing || !txn.groups.contains(&request.group_id) =>
            {
                Some(ErrorCode::INVALID_TXN_STATE)
            }
            Ok(_) => None,
        };
        let mut pending = Vec::new();
        let topics = (request.topics.iter())
            .map(|t| TxnTopicResult {
                name: t.name.clone(),
                partitions: (t.partitions.iter())
                    .map(|p| {
                        let error = match error {
                            Some(error) => error,
                            None if self
                                .partition(
                                    self.topic_ids.get(&t.name).copied().unwrap_or_default(),
                                    usize::try_from(p.partition).unwrap_or(usize::MAX),
                                )
                                .is_none() =>
                            {
                                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                            }
                            None => {
                                pending.push(PendingOffset {
                                    group: request.group_id.clone(),
                                    topic: t.name.clone(),
                                    partition: p.partition,
                                    offset: p.committed_offset,
                                    leader_epoch: p.committed_leader_epoch,
                                    metadata: p.committed_metadata.clone().unwrap_or_default(),
                                });
                                ErrorCode::NONE
                            }
                        };
                        TxnPartitionResult {
                            partition: p.partition,
                            error,
                        }
                    })
                    .collect(),
            })
            .collect();
        let response = ApiResponse::TxnOffsetCommit(TxnOffsetCommitResponse {
            throttle_time_ms: 0,
            topics,
        });
        let (None, Ok(mut txn)) = (error, checked) else {
            self.respond(id, response);
            return;
        };
        for offset in pending {
            // The latest offset per group partition wins, as with plain commits.
            txn.pending_offsets.retain(|p| {
                !(p.group == offset.group
                    && p.topic == offset.topic
                    && p.partition == offset.partition)
            });
            txn.pending_offsets.push(offset);
        }
        self.put_txn(txn);
        self.respond_when_durable(id, response, None);
    }

    fn end_txn(&mut self, now: Now, id: RequestId, request: EndTxnRequest) {
        let respond = |error, txn: Option<&TxnMetadata>| {
            ApiResponse::EndTxn(EndTxnResponse {
                throttle_time_ms: 0,
                error,
                producer_id: txn.map_or(-1, |t| t.producer_id),
                producer_epoch: txn.map_or(-1, |t| t.producer_epoch),
            })
        };
        let checked = self
            .check_txn(
                &request.transactional_id,
                request.producer_id,
                request.producer_epoch,
            )
            .cloned();
        let txn = match checked {
            Err(error) => return self.respond(id, respond(error, None)),
            Ok(_) if self.sync_waiters.is_full() => {
                return self.respond(id, respond(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS, None))
            }
            Ok(txn) => txn,
        };
        let error = match (txn.state, request.committed) {
            (TxnState::Ongoing, committed) => {
                self.end_transaction(now, &request.transactional_id, committed);
                ErrorCode::NONE
            }
            // A retry of an EndTxn that completed: same answer.
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => ErrorCode::NONE,
            // Aborting a transaction that never started (or was already aborted by a timeout
            // whose epoch bump this producer has not seen) is harmless.
            (TxnState::Empty, false) => ErrorCode::NONE,
            _ => ErrorCode::INVALID_TXN_STATE,
        };
        let txn = self.txns.txns.get(&request.transactional_id).cloned();
        self.respond_when_durable(id, respond(error, txn.as_ref()), None);
    }

    /// End `transactional_id`'s ongoing transaction: Prepare, markers, offsets, Complete.
    fn end_transaction(&mut self, now: Now, transactional_id: &str, committed: bool) {
        let Some(mut txn) = self.txns.txns.get(transactional_id).cloned() else {
            return;
        };
        txn.state = if committed {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        txn.deadline = None;
        self.put_txn(txn.clone());
        self.finish_transaction(now, txn);
    }

    /// Write the markers (and on commit the offsets) of a prepared transaction, then
    /// complete it.
    fn finish_transaction(&mut self, now: Now, txn: TxnMetadata) {
        let committed = txn.state == TxnState::PrepareCommit;
        let mut remote = Vec::new();
        for (topic, partition) in &txn.partitions {
            // Cluster mode: partitions led elsewhere get their marker from their leader;
            // the transaction stays prepared until every one is acknowledged.
            if self.is_cluster() && !self.leads(topic, *partition) {
                remote.push((topic.clone(), *partition));
                continue;
            }
            let result = self.write_marker(
                now,
                topic,
                *partition,
                txn.producer_id,
                txn.producer_epoch,
                committed,
            );
            if let Err(error) = result {
                // A partition deleted mid-transaction has nothing to mark.
                tracing::warn!(
                    topic,
                    partition,
                    error = error.name(),
                    "transaction marker not written"
                );
            }
        }
        if !remote.is_empty() {
            self.send_remote_markers(now, &txn, remote);
            return;
        }
        self.complete_transaction(now, txn);
    }

    /// Every marker of a prepared transaction is written: commit its offsets (on commit)
    /// and mark it complete.
    pub(super) fn complete_transaction(&mut self, now: Now, mut txn: TxnMetadata) {
        let committed = txn.state == TxnState::PrepareCommit;
        if committed {
            let mut by_group: BTreeMap<String, Vec<PendingOffset>> = BTreeMap::new();
            for offset in std::mem::take(&mut txn.pending_offsets) {
                by_group
                    .entry(offset.group.clone())
                    .or_default()
                    .push(offset);
            }
            for (group, offsets) in by_group {
                self.apply_txn_offsets(now, &group, offsets);
            }
        }
        txn.state = if committed {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        txn.partitions.clear();
        txn.groups.clear();
        txn.pending_offsets.clear();
        txn.start_ms = -1;
        txn.last_update_ms = now.wall_ms;
        txn.deadline = None;
        self.put_txn(txn);
    }

    /// Commit a transaction's offsets to `group` as plain offset records.
    fn apply_txn_offsets(&mut self, now: Now, group: &str, offsets: Vec<PendingOffset>) {
        let mut records = Vec::with_capacity(offsets.len());
        let mut accepted = Vec::with_capacity(offsets.len());
        for offset in offsets {
            let committed = CommittedOffset {
                offset: offset.offset,
                leader_epoch: offset.leader_epoch,
                metadata: offset.metadata,
                commit_timestamp: now.wall_ms,
            };
            records.push(Record {
                offset: 0,
                timestamp: now.wall_ms,
                key: Some(offsets_log::offset_key(
                    group,
                    &offset.topic,
                    offset.partition,
                )),
                value: Some(offsets_log::offset_value(&committed)),
                headers: Vec::new(),
            });
            accepted.push(((offset.topic, offset.partition), committed));
        }
        if let Err(error) = self.append_offset_records(now, group, &records) {
            tracing::error!(
                group,
                error = error.name(),
                "transactional offsets not written"
            );
            return;
        }
        self.groups.commit(now, group, "", accepted);
    }

    /// Append a marker to a partition and update its transaction index.
    pub(super) fn write_marker(
        &mut self,
        now: Now,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        committed: bool,
    ) -> Result<(), ErrorCode> {
        let (topic_id, index) =
            self.resolve_partition(&TopicRef::Name(topic.to_string()), partition)?;
        let batch = encode_control_batch(
            producer_id,
            producer_epoch,
            committed,
            COORDINATOR_EPOCH,
            now.wall_ms,
        );
        let topic = &self.topics[&topic_id];
        let segment_bytes = topic.config.segment_bytes(&self.config);
        let base_offset = topic.partitions[index].log_end_offset();
        let epoch = self.serving_epoch(topic_id, index).unwrap_or(LEADER_EPOCH);
        let mut batch = BytesMut::from(&batch[..]);
        set_base_offset(&mut batch, base_offset);
        set_partition_leader_epoch(&mut batch, epoch);
        let key = (topic_id, index);
        let origin = AppendOrigin::Coordinator;
        self.append_batch(now.wall_ms, key, batch.freeze(), segment_bytes, origin)?;
        Ok(())
    }

    /// WriteTxnMarkers (admin / completeness): append each marker where asked.
    fn write_txn_markers(&mut self, now: Now, id: RequestId, request: WriteTxnMarkersRequest) {
        let full = self.sync_waiters.is_full();
        let mut wrote = false;
        let mut markers = Vec::with_capacity(request.markers.len());
        for marker in &request.markers {
            let mut topics = Vec::with_capacity(marker.topics.len());
            for topic in &marker.topics {
                let mut partitions = Vec::with_capacity(topic.partitions.len());
                for partition in &topic.partitions {
                    let error = if full {
                        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
                    } else {
                        match self.write_marker(
                            now,
                            &topic.name,
                            *partition,
                            marker.producer_id,
                            marker.producer_epoch,
                            marker.committed,
                        ) {
                            Ok(()) => {
                                wrote = true;
                                ErrorCode::NONE
                            }
                            Err(error) => error,
                        }
                    };
                    partitions.push(TxnPartitionResult {
                        partition: *partition,
                        error,
                    });
                }
                topics.push(TxnTopicResult {
                    name: topic.name.clone(),
                    partitions,
                });
            }
            markers.push(WriteTxnMarkersResult {
                producer_id: marker.producer_id,
                topics,
            });
        }
        let response = ApiResponse::WriteTxnMarkers(WriteTxnMarkersResponse { markers });
        if wrote {
            self.respond_when_durable(id, response, None);
        } else {
            self.respond(id, response);
        }
    }

    fn describe_transactions(&mut self, id: RequestId, request: DescribeTransactionsRequest) {
        let transactions = (request.transactional_ids.iter())
            .map(|tid| match self.txns.txns.get(tid) {
                Some(txn) => describe(txn),
                None => TransactionDescription {
                    error: ErrorCode::TRANSACTIONAL_ID_NOT_FOUND,
                    transactional_id: tid.clone(),
                    state: String::new(),
                    timeout_ms: 0,
                    start_time_ms: -1,
                    producer_id: -1,
                    producer_epoch: -1,
                    topics: Vec::new(),
                },
            })
            .collect();
        let response = DescribeTransactionsResponse {
            throttle_time_ms: 0,
            transactions,
        };
        self.respond(id, ApiResponse::DescribeTransactions(response));
    }

    fn list_transactions(&mut self, now: Now, id: RequestId, request: ListTransactionsRequest) {
        let unknown_state_filters: Vec<String> = (request.state_filters.iter())
            .filter(|s| !TxnState::NAMES.contains(&s.as_str()))
            .cloned()
            .collect();
        let transactions = (self.txns.txns.values())
            .filter(|t| {
                request.state_filters.is_empty()
                    || request.state_filters.iter().any(|s| s == t.state.name())
            })
            .filter(|t| {
                request.producer_id_filters.is_empty()
                    || request.producer_id_filters.contains(&t.producer_id)
            })
            .filter(|t| {
                request.duration_filter_ms < 0
                    || (t.start_ms >= 0
                        && now.wall_ms.saturating_sub(t.start_ms) >= request.duration_filter_ms)
            })
            .map(|t| TransactionListing {
                transactional_id: t.transactional_id.clone(),
                producer_id: t.producer_id,
                state: t.state.name().to_string(),
            })
            .collect();
        let response = ListTransactionsResponse {
            throttle_time_ms: 0,
            error: ErrorCode::NONE,
            unknown_state_filters,
            transactions,
        };
        self.respond(id, ApiResponse::ListTransactions(response));
    }

    fn describe_producers(&mut self, id: RequestId, request: DescribeProducersRequest) {
        let topics = (request.topics.iter())
            .map(|t| DescribeProducersTopic {
                name: t.name.clone(),
                partitions: (t.partitions.iter())
                    .map(|p| {
                        let resolved = self.resolve_partition(&TopicRef::Name(t.name.clone()), *p);
                        match resolved {
                            Err(error) => DescribeProducersPartition {
                                partition: *p,
                                error,
                                error_message: None,
                                producers: Vec::new(),
                            },
                            Ok((topic_id, index)) => {
                                let log = &self.topics[&topic_id].partitions[index];
                                let producers = (log.producers.entries())
                                    .map(|(producer_id, entry)| ProducerDescription {
                                        producer_id,
                                        producer_epoch: i32::from(entry.epoch),
                                        last_sequence: entry
                                            .batches
                                            .back()
                                            .map_or(-1, |b| b.last_seq),
                                        last_timestamp: entry.last_write_ms,
                                        coordinator_epoch: -1,
                                        current_txn_start_offset: log
                                            .txns
                                            .open_first_offset(producer_id)
                                            .unwrap_or(-1),
                                    })
                                    .collect();
                                DescribeProducersPartition {
                                    partition: *p,
                                    error: ErrorCode::NONE,
                                    error_message: None,
                                    producers,
                                }
                            }
                        }
                    })
                    .collect(),
            })
            .collect();
        let response = DescribeProducersResponse {
            throttle_time_ms: 0,
            topics,
        };
        self.respond(id, ApiResponse::DescribeProducers(response));
    }

    /// Produce-side check of a transactional batch for `topic`/`partition`.
    pub(super) fn check_transactional_batch(
        &self,
        header: &BatchHeader,
        topic: &str,
        partition: i32,
    ) -> Result<(), (ErrorCode, String)> {
        let Some(txn) = self.txns.by_producer(header.producer_id) else {
            // Cluster mode: the coordinator is usually another broker; the partition's
            // producer state still fences old epochs (Kafka before KIP-890).
            if self.is_cluster() {
                return Ok(());
            }
            let message = format!("producer {} has no transactional id", header.producer_id);
            return Err((ErrorCode::INVALID_PRODUCER_ID_MAPPING, message));
        };
        // PLANTED BUG (weir-sim's planted suite only; never in a real build): a batch of a
        // fenced (older) epoch passes the transaction check.
        if header.producer_epoch < txn.producer_epoch
            && cfg!(feature = "planted-accept-fenced-epoch")
        {
            return Ok(());
        }
        if header.producer_epoch != txn.producer_epoch {
            let message = format!(
                "producer {} epoch {} is not the current epoch {}",
                header.producer_id, header.producer_epoch, txn.producer_epoch
            );
            return Err((ErrorCode::INVALID_PRODUCER_EPOCH, message));
        }
        if txn.state != TxnState::Ongoing
            || !txn.partitions.contains(&(topic.to_string(), partition))
        {
            let message = format!(
                "{topic}-{partition} is not in an ongoing transaction of {}",
                txn.transactional_id
            );
            return Err((ErrorCode::INVALID_TXN_STATE, message));
        }
        Ok(())
    }

    /// Abort (with an epoch bump, fencing the producer) every transaction past its
    /// `transaction.timeout.ms`.
    pub(super) fn expire_transactions(&mut self, now: Now) {
        let expired: Vec<String> = (self.txns.txns.values())
            .filter(|t| t.deadline.is_some_and(|d| d <= now.instant))
            .map(|t| t.transactional_id.clone())
            .collect();
        for transactional_id in expired {
            let Some(mut txn) = self.txns.txns.get(&transactional_id).cloned() else {
                continue;
            };
            tracing::info!(transactional_id, "transaction timed out; aborting");
            if txn.producer_epoch < i16::MAX - 1 {
                txn.producer_epoch += 1;
            }
            self.put_txn(txn);
            self.end_transaction(now, &transactional_id, false);
        }
    }

    /// Forget transactional ids idle (no ongoing transaction, no state change) for
    /// `transactional.id.expiration.ms`, as Kafka does: a tombstone is written for each (and
    /// compaction drops their records), so the table stays bounded by the ids in use. Runs
    /// on the retention timer. A producer of an expired id gets INVALID_PRODUCER_ID_MAPPING
    /// and must call InitProducerId again.
    pub(super) fn expire_transactional_ids(&mut self, now: Now) {
        let expiration_ms = self.config.transactional_id_expiration_ms;
        for transactional_id in self.txns.expired_ids(now.wall_ms, expiration_ms) {
            tracing::info!(transactional_id, "transactional id expired");
            self.txns.remove(&transactional_id);
            if let Err(error) = self.append_txn_record(&transactional_id, None, now.wall_ms) {
                tracing::error!(
                    transactional_id,
                    error = error.name(),
                    "transactional id tombstone not written"
                );
            }
        }
    }

    /// OffsetFetch `require_stable`: offsets an open transaction will commit are unstable.
    pub(super) fn mark_unstable_offsets(
        &self,
        request: &OffsetFetchRequest,
        response: &mut OffsetFetchResponse,
    ) {
        if !request.require_stable {
            return;
        }
        for group in &mut response.groups {
            for topic in &mut group.topics {
                for partition in &mut topic.partitions {
                    if self
                        .txns
                        .has_pending(&group.group_id, &topic.name, partition.partition)
                    {
                        partition.error = ErrorCode::UNSTABLE_OFFSET_COMMIT;
                    }
                }
            }
        }
    }

    /// Recovery: load the coordinator from `__transaction_state` (moving legacy meta
    /// entries into it), rebuild every partition's transaction index from its log, finish
    /// transactions a crash left prepared, restart the clocks of ongoing ones.
    pub(super) fn recover_transactions(
        &mut self,
        storage: &impl Storage,
        now: Now,
    ) -> Result<(), StorageError> {
        let ranges = self.internal_ranges(TXN_STATE_TOPIC);
        let mut latest: BTreeMap<String, Option<TxnMetadata>> = BTreeMap::new();
        let replayed = replay_internal(storage, TXN_STATE_TOPIC, &ranges, |record| {
            let decoded = (record.key.as_deref())
                .and_then(|key| txn_log::decode(key, record.value.as_deref()));
            match decoded {
                Some((transactional_id, txn)) => {
                    latest.insert(transactional_id, txn);
                }
                None => tracing::warn!(offset = record.offset, "unreadable transaction record"),
            }
        })?;
        tracing::info!(records = replayed, "replayed {TXN_STATE_TOPIC}");
        let mut legacy = Vec::new();
        for (key, value) in storage.meta_entries()? {
            let Some(tid) = std::str::from_utf8(&key)
                .ok()
                .and_then(|k| k.strip_prefix(TXN_META_PREFIX))
            else {
                continue;
            };
            let txn: TxnMetadata =
                serde_json::from_slice(&value).map_err(|error| StorageError::Corrupt {
                    partition_key: 0,
                    offset: -1,
                    reason: format!("transaction {tid}: {error}"),
                })?;
            legacy.push(txn);
        }
        for txn in latest.into_values().flatten() {
            self.restore_txn(txn, now);
        }
        for mut txn in legacy {
            // The topic wins over a legacy entry (the topic is only written later).
            let transactional_id = txn.transactional_id.clone();
            if !self.txns.txns.contains_key(&transactional_id) {
                tracing::info!(
                    transactional_id,
                    "moving transaction state to {TXN_STATE_TOPIC}"
                );
                if txn.last_update_ms < 0 {
                    txn.last_update_ms = now.wall_ms;
                }
                self.put_txn(txn.clone());
                self.restore_txn(txn, now);
            }
            // Removed after the record above (same sync or a later one): a crash between
            // keeps the legacy entry, and the next recovery moves it again.
            self.emit(StorageOp::DeleteMeta {
                key: legacy_txn_key(&transactional_id),
            });
        }
        for topic in self.topics.values_mut() {
            for log in &mut topic.partitions {
                rebuild_index(storage, log)?;
            }
        }
        let prepared: Vec<TxnMetadata> = (self.txns.txns.values())
            .filter(|t| matches!(t.state, TxnState::PrepareCommit | TxnState::PrepareAbort))
            .cloned()
            .collect();
        for txn in prepared {
            tracing::info!(txn.transactional_id, ?txn.state, "finishing a prepared transaction");
            self.finish_transaction(now, txn);
        }
        Ok(())
    }
}

impl Node {
    /// Make a recovered transaction current: restart the clock of an ongoing one, keep the
    /// producer id counter above it.
    fn restore_txn(&mut self, mut txn: TxnMetadata, now: Now) {
        if txn.last_update_ms < 0 {
            // Unknown: a full expiration period from now.
            txn.last_update_ms = now.wall_ms;
        }
        txn.deadline = (txn.state == TxnState::Ongoing).then(|| {
            let timeout_ms = u64::try_from(txn.timeout_ms).unwrap_or(0);
            now.instant.add_ms(timeout_ms)
        });
        self.next_producer_id = self.next_producer_id.max(txn.producer_id.saturating_add(1));
        self.txns.put(txn);
    }
}

fn describe(txn: &TxnMetadata) -> TransactionDescription {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in &txn.partitions {
        topics.entry(topic).or_default().push(*partition);
    }
    TransactionDescription {
        error: ErrorCode::NONE,
        transactional_id: txn.transactional_id.clone(),
        state: txn.state.name().to_string(),
        timeout_ms: txn.timeout_ms,
        start_time_ms: txn.start_ms,
        producer_id: txn.producer_id,
        producer_epoch: txn.producer_epoch,
        topics: topics
            .into_iter()
            .map(|(name, partitions)| TxnTopic {
                name: name.to_string(),
                partitions,
            })
            .collect(),
    }
}

/// Rebuild a partition's transaction index from its whole log (headers and control keys).
fn rebuild_index(
    storage: &impl Storage,
    log: &mut crate::partition::PartitionLog,
) -> Result<(), StorageError> {
    let partition_key = log.partition_key();
    let end_offset = log.log_end_offset();
    let mut offset = log.log_start_offset();
    while offset < end_offset {
        let plan = ReadPlan {
            partition_key,
            start_offset: offset,
            end_offset,
            max_bytes: REPLAY_READ_BYTES,
        };
        // CRC-checked (and retried) like the producer-state replay: a damaged read would
        // lose a marker or a transactional flag and expose an aborted transaction.
        let bytes = super::producer_id::read_for_replay(storage, &plan)?;
        let before = offset;
        for item in iter_batches(&bytes) {
            let Ok((header, range)) = item else { break };
            if header.last_offset() < offset {
                continue;
            }
            if header.is_transactional() && header.producer_id >= 0 {
                if header.is_control() {
                    if let Some(kind) = bytes.get(range).and_then(control_type) {
                        let committed = kind == CONTROL_TYPE_COMMIT;
                        log.txns
                            .on_marker(header.producer_id, committed, header.base_offset);
                    }
                } else {
                    log.txns.on_data(header.producer_id, header.base_offset);
                }
            }
            offset = header.last_offset() + 1;
        }
        if offset == before {
            break;
        }
    }
    Ok(())
}

/// The response to a transaction request with `error` everywhere (poisoned node); `None`
/// for other requests.
pub(super) fn txn_error_response(request: &ApiRequest, error: ErrorCode) -> Option<ApiResponse> {
    let topic_results = |topics: &[TxnTopic]| -> Vec<TxnTopicResult> {
        (topics.iter())
            .map(|t| TxnTopicResult {
                name: t.name.clone(),
                partitions: (t.partitions.iter())
                    .map(|p| TxnPartitionResult {
                        partition: *p,
                        error,
                    })
                    .collect(),
            })
            .collect()
    };
    Some(match request {
        ApiRequest::AddPartitionsToTxn(r) => {
            ApiResponse::AddPartitionsToTxn(AddPartitionsToTxnResponse {
                throttle_time_ms: 0,
                results: topic_results(&r.topics),
            })
        }
        ApiRequest::AddOffsetsToTxn(_) => ApiResponse::AddOffsetsToTxn(AddOffsetsToTxnResponse {
            throttle_time_ms: 0,
            error,
        }),
        ApiRequest::EndTxn(_) => ApiResponse::EndTxn(EndTxnResponse {
            throttle_time_ms: 0,
            error,
            producer_id: -1,
            producer_epoch: -1,
        }),
        ApiRequest::TxnOffsetCommit(r) => ApiResponse::TxnOffsetCommit(TxnOffsetCommitResponse {
            throttle_time_ms: 0,
            topics: (r.topics.iter())
                .map(|t| TxnTopicResult {
                    name: t.name.clone(),
                    partitions: (t.partitions.iter())
                        .map(|p| TxnPartitionResult {
                            partition: p.partition,
                            error,
                        })
                        .collect(),
                })
                .collect(),
        }),
        ApiRequest::WriteTxnMarkers(r) => ApiResponse::WriteTxnMarkers(WriteTxnMarkersResponse {
            markers: (r.markers.iter())
                .map(|m| WriteTxnMarkersResult {
                    producer_id: m.producer_id,
                    topics: topic_results(&m.topics),
                })
                .collect(),
        }),
        ApiRequest::DescribeTransactions(r) => {
            ApiResponse::DescribeTransactions(DescribeTransactionsResponse {
                throttle_time_ms: 0,
                transactions: (r.transactional_ids.iter())
                    .map(|tid| TransactionDescription {
                        error,
                        transactional_id: tid.clone(),
                        state: String::new(),
                        timeout_ms: 0,
                        start_time_ms: -1,
                        producer_id: -1,
                        producer_epoch: -1,
                        topics: Vec::new(),
                    })
                    .collect(),
            })
        }
        ApiRequest::ListTransactions(_) => {
            ApiResponse::ListTransactions(ListTransactionsResponse {
                throttle_time_ms: 0,
                error,
                unknown_state_filters: Vec::new(),
                transactions: Vec::new(),
            })
        }
        ApiRequest::DescribeProducers(r) => {
            ApiResponse::DescribeProducers(DescribeProducersResponse {
                throttle_time_ms: 0,
                topics: (r.topics.iter())
                    .map(|t| DescribeProducersTopic {
                        name: t.name.clone(),
                        partitions: (t.partitions.iter())
                            .map(|p| DescribeProducersPartition {
                                partition: *p,
                                error,
                                error_message: None,
                                producers: Vec::new(),
                            })
                            .collect(),
                    })
                    .collect(),
            })
        }
        _ => return None,
    })
}
