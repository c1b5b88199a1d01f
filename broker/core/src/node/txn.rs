//! The transaction coordinator at node level: InitProducerId with a transactional id,
//! AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, WriteTxnMarkers, the
//! timeout aborts, the admin views (DescribeTransactions, ListTransactions,
//! DescribeProducers), the produce-side check of transactional batches, and recovery.
//!
//! Protocol (KIP-98; the state diagram is in [`crate::txn`]). A producer's round trip:
//! InitProducerId (bumps the epoch, aborting what an earlier incarnation left open),
//! AddPartitionsToTxn before its first batch to each partition, AddOffsetsToTxn (here) and
//! TxnOffsetCommit (at the group's coordinator, `node/txn_offsets.rs`) for consumed
//! offsets, then EndTxn. EndTxn(commit) is a two-phase write
//! the coordinator runs alone: the Prepare record decides, the markers (control batches in
//! every partition of the transaction) make the data visible to read_committed consumers or
//! abort it, and the Complete record closes it. A client may retry any step: a retried
//! EndTxn finding Complete of the same kind gets the same answer.
//!
//! Fencing: every request names its producer id and epoch and is checked against the
//! transactional id's current pair (`check_txn`): an older epoch is PRODUCER_FENCED (a
//! zombie), a newer one INVALID_PRODUCER_EPOCH (it cannot exist), a request during Prepare
//! is CONCURRENT_TRANSACTIONS (the client retries once the markers are written). A timeout
//! abort first bumps the epoch, then writes markers with the new epoch, so the timed-out
//! producer's late batches and its EndTxn are fenced (Kafka's PrepareEpochFence).
//!
//! What each request checks and changes (errors are Kafka's codes, answered at once):
//!
//! | request            | precondition                          | change                       |
//! |--------------------|---------------------------------------|------------------------------|
//! | InitProducerId     | not Prepare* (CONCURRENT_TRANSACTIONS)| epoch + 1; Ongoing is aborted|
//! | AddPartitionsToTxn | current pid/epoch, partitions exist   | Ongoing, partitions added    |
//! | AddOffsetsToTxn    | current pid/epoch                     | Ongoing, group and its       |
//! |                    |                                       | offsets partition added      |
//! | EndTxn             | Ongoing (or a retry of the same end)  | Prepare*, markers, Complete* |
//!
//! Every change that succeeds is answered after the sync covering its record; a request
//! refused before any change is answered at once, since nothing needs to be durable.
//!
//! Cluster mode: the coordinator of a transactional id is the leader of its
//! `__transaction_state` partition. Markers for partitions it leads are appended here;
//! the others go to their leaders as peer messages (`node/cluster/markers.rs`), and the transaction
//! stays prepared until every leader has acknowledged, retried on a timer. A prepared
//! transaction is never re-decided, so a retried marker always carries the same outcome.
//!
//! Coordination follows leadership of the `__transaction_state` partition, like groups
//! follow `__consumer_offsets`: followers replay the records they replicate, so their
//! table is current; the node that takes a partition over finishes the transactions it
//! finds prepared (their markers, again) and starts the clocks of ongoing ones
//! (`take_over_transactions`); the node that loses it stops both (`resign_transactions`).
//! Recovery only rebuilds the table and every partition's transaction index: it finishes
//! nothing, because the recovering node may not coordinate those ids any more, and a marker
//! from a stale copy of the table could end the producer's *next* transaction (a second
//! commit marker after the next transaction's data commits it). Roles are taken after the
//! indexes exist, so the markers land in indexes that already know the data before them.
//!
//! State lives in the internal topic `__transaction_state` (format: `txn_log`; created on
//! first use, compacted like `__consumer_offsets`, see `node/internal.rs`); recovery
//! replays it, latest record per transactional id winning. Legacy `txn/{id}` meta entries
//! (written before the topic existed) are moved into the topic at recovery.
//!
//! Invariants:
//! - every state change is a record of `__transaction_state` answered only after the sync
//!   covering it;
//! - ending a transaction writes Prepare, then the markers (the one in a group's offsets
//!   partition commits the group's transactional offsets), then Complete, all before the
//!   answer's sync, so an acknowledged EndTxn is complete on disk and a crash in between
//!   leaves a Prepare state that recovery finishes;
//! - a prepared transaction changes only to its Complete state: no request moves it
//!   elsewhere (each answers CONCURRENT_TRANSACTIONS), so the markers sent and the outcome
//!   recorded always agree;
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
    TxnOffsetCommitResponse, TxnPartitionResult, TxnTopic, TxnTopicResult, WriteTxnMarkersRequest,
    WriteTxnMarkersResponse, WriteTxnMarkersResult,
};
use weir_wire::domain::{
    ApiRequest, ApiResponse, InitProducerIdRequest, InitProducerIdResponse, OffsetFetchRequest,
    OffsetFetchResponse, ReadPlan, TopicRef,
};
use weir_wire::error::ErrorCode;
use weir_wire::records::Record;

use super::append::AppendOrigin;
use super::internal::replay_internal;
use super::Node;
use crate::event::RequestId;
use crate::group::offsets_log::{self, OFFSETS_TOPIC};
use crate::group::CommittedOffset;
use crate::meta;
use crate::storage::{Storage, StorageError, StorageOp};
use crate::time::Now;
use crate::topic::PartitionId;
use crate::txn::{
    PendingOffset, TxnMetadata, TxnState, TXNS_MAX, TXN_META_PREFIX, TXN_PARTITIONS_MAX,
};
use crate::txn_log::{self, TRANSACTIONAL_ID_BYTES_MAX, TXN_STATE_TOPIC};

/// Bytes read per storage call while rebuilding transaction indexes at recovery.
const REPLAY_READ_BYTES: u32 = 4 << 20;
/// Coordinator epoch written in markers (one node, never fails over).
const COORDINATOR_EPOCH: i32 = 0;

/// The legacy meta key of a transaction's state (read only to migrate it). Deleted once
/// the state is in the topic, so a node migrates each id at most once.
fn legacy_txn_key(transactional_id: &str) -> Vec<u8> {
    format!("{TXN_META_PREFIX}{transactional_id}").into_bytes()
}

impl Node {
    /// The ongoing transaction of `transactional_id` if `producer_id`/`epoch` is its
    /// current producer. The order of the checks is Kafka's: a client that sees
    /// PRODUCER_FENCED must stop for good, so it is reported only for a real zombie (an older
    /// epoch of the same producer id), never for a mapping the client got wrong.
    pub(super) fn check_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
    ) -> Result<&TxnMetadata, ErrorCode> {
        // An unknown id, or a producer id this id does not hold, is a mapping the client got
        // wrong: INVALID_PRODUCER_ID_MAPPING, never PRODUCER_FENCED (see above).
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
        // The right producer, but a decision is being written: CONCURRENT_TRANSACTIONS is
        // retriable, and the retry finds the transaction complete.
        if matches!(txn.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(ErrorCode::CONCURRENT_TRANSACTIONS);
        }
        // What the callers may rely on: the current producer, and no decision in flight.
        debug_assert!(!matches!(
            txn.state,
            TxnState::PrepareCommit | TxnState::PrepareAbort
        ));
        Ok(txn)
    }

    /// The `__transaction_state` partition of `transactional_id` (the controller creates
    /// the topic for the first request that needs it). The partition is a pure function of
    /// the id, so every record of one id lands in one partition and compaction keeps its
    /// latest.
    fn txn_state_partition(&mut self, transactional_id: &str) -> Result<PartitionId, ErrorCode> {
        self.internal_partition(TXN_STATE_TOPIC, transactional_id)
    }

    /// Append `transactional_id`'s record (`None` = tombstone) to `__transaction_state`;
    /// the next sync covers it.
    fn append_txn_record(
        &mut self,
        transactional_id: &str,
        value: Option<bytes::Bytes>,
        timestamp: i64,
    ) -> Result<(), ErrorCode> {
        let key = self.txn_state_partition(transactional_id)?;
        let (topic_id, index) = (key.topic, key.index());
        let record = Record {
            offset: 0,
            timestamp,
            key: Some(txn_log::key(transactional_id)),
            value,
            headers: Vec::new(),
        };
        self.append_internal(topic_id, index, &[record])
    }

    /// Persist `txn` and make it current. The record goes first: an answer that depends on
    /// this state waits for a sync, which then covers the record too.
    fn put_txn(&mut self, txn: TxnMetadata) {
        assert_eq!(
            txn.state == TxnState::Ongoing,
            txn.deadline.is_some(),
            "{}: deadline iff ongoing ({:?})",
            txn.transactional_id,
            txn.state
        );
        // The deadline is an Instant of this node and stays out of the record; a coordinator
        // that loads the record starts its own clock (`take_over_transactions`).
        let value = txn_log::value(&txn);
        let result = self.append_txn_record(&txn.transactional_id, Some(value), txn.last_update_ms);
        if let Err(error) = result {
            // InitProducerId made sure the topic exists before the id had any state, and
            // nothing changes an id's state where this node does not lead its partition
            // (requests are refused then, `coordinator_refusal`; clocks and markers run only
            // while leading), so this is an internal error; the state still changes in
            // memory.
            tracing::error!(
                transactional_id = txn.transactional_id,
                error = error.name(),
                "transaction state not persisted"
            );
        }
        self.txns.put(txn);
    }

    /// Mark `txn` Ongoing (starting its clock if it was not). The timeout counts from the
    /// first Add* call, as in Kafka: a transaction that keeps adding partitions does not
    /// extend its own life.
    fn begin(txn: &mut TxnMetadata, now: Now) {
        txn.last_update_ms = now.wall_ms;
        if txn.state != TxnState::Ongoing {
            txn.state = TxnState::Ongoing;
            txn.start_ms = now.wall_ms;
            let timeout_ms = u64::try_from(txn.timeout_ms).unwrap_or(0);
            txn.deadline = Some(now.instant.add_ms(timeout_ms));
        }
        if txn.deadline.is_none() {
            // Ongoing under a previous coordinator: `take_over_transactions` starts clocks,
            // and a transaction found without one gets a full timeout from now.
            let timeout_ms = u64::try_from(txn.timeout_ms).unwrap_or(0);
            txn.deadline = Some(now.instant.add_ms(timeout_ms));
        }
        // A prepared transaction must never reopen (check_txn refuses them).
        assert_eq!(txn.state, TxnState::Ongoing, "{}", txn.transactional_id);
        assert!(
            txn.deadline.is_some(),
            "{} has no deadline",
            txn.transactional_id
        );
    }

    /// InitProducerId with a transactional id: the id's producer id at a bumped epoch (a new
    /// id at epoch 0 the first time), after aborting any transaction it left open.
    ///
    /// The epoch is what fences: every partition and this coordinator refuse the old
    /// epoch from now on. When the epoch would overflow (`i16::MAX - 1`, Kafka's limit, one
    /// below so an abort can still bump it) a new producer id starts at epoch 0 instead;
    /// the old id's state in the partitions then expires on its own.
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
        // Kafka's `transaction.max.timeout.ms`: a longer timeout would let a dead producer
        // hold the LSO of its partitions that much longer.
        if timeout_ms <= 0 || timeout_ms > self.config.transaction_max_timeout_ms {
            self.respond(id, respond(ErrorCode::INVALID_TRANSACTION_TIMEOUT, -1, -1));
            return;
        }
        // Every success is a parked answer; with the waiter table full it could not be
        // parked, so refuse with a code every client retries rather than answer early.
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
        // The topic exists now, so every put below persists; that is what lets `put_txn`
        // treat an append failure as an internal error.
        let existing = self.txns.txns.get(&transactional_id).cloned();
        // A decided transaction finishes first (Kafka answers the same): re-initializing
        // now would rewrite the state while the markers of the decision are still being
        // written, and the Complete record would then contradict the markers.
        let prepared = (existing.as_ref())
            .is_some_and(|t| matches!(t.state, TxnState::PrepareCommit | TxnState::PrepareAbort));
        if prepared {
            self.respond(id, respond(ErrorCode::CONCURRENT_TRANSACTIONS, -1, -1));
            return;
        }
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
                match self.bumped_epoch(txn) {
                    Some(bumped) => bumped,
                    None => {
                        self.respond(id, respond(ErrorCode::UNKNOWN_SERVER_ERROR, -1, -1));
                        return;
                    }
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
        let existing_new = existing.is_none();
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
        assert!(
            txn.producer_id != producer_id || producer_epoch > txn.producer_epoch || existing_new,
            "{transactional_id}: epoch not bumped ({} -> {producer_epoch})",
            txn.producer_epoch
        );
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
            // The abort's markers carry the epoch just bumped, and that epoch is never handed
            // to a producer (Kafka's rule): a marker of the abort that reaches a leader late
            // (a resend whose first copy was answered slowly) would otherwise end the new
            // producer's first transaction, which the leader could not tell from the old one
            // by its epoch, and an acknowledged commit would be lost. With markers still owed
            // by other leaders the producer is told CONCURRENT_TRANSACTIONS and retries; the
            // retry, once the abort completed, bumps the epoch a second time. With the abort
            // complete here already, the second bump is made at once.
            let state = self.txns.txns.get(&transactional_id).map(|t| t.state);
            if state == Some(TxnState::PrepareAbort) {
                let response = respond(ErrorCode::CONCURRENT_TRANSACTIONS, -1, -1);
                self.respond_when_durable(id, response, None);
                return;
            }
            let Some(mut txn) = self.txns.txns.get(&transactional_id).cloned() else {
                self.respond(id, respond(ErrorCode::UNKNOWN_SERVER_ERROR, -1, -1));
                return;
            };
            let Some((producer_id, producer_epoch)) = self.bumped_epoch(&txn) else {
                self.respond(id, respond(ErrorCode::UNKNOWN_SERVER_ERROR, -1, -1));
                return;
            };
            txn.producer_id = producer_id;
            txn.producer_epoch = producer_epoch;
            txn.state = TxnState::Empty;
            txn.last_update_ms = now.wall_ms;
            self.put_txn(txn);
            self.respond_when_durable(
                id,
                respond(ErrorCode::NONE, producer_id, producer_epoch),
                None,
            );
            return;
        } else if let Some(txn) = self.txns.txns.get(&transactional_id).cloned() {
            // An idle id restarts Empty: a Complete state left from the old epoch would make
            // the new producer's first EndTxn, with no transaction, look like a retry.
            let mut txn = txn;
            txn.state = TxnState::Empty;
            self.put_txn(txn);
        }
        // Either way the id is now idle under the new epoch (an abort completes here, or
        // waits in PrepareAbort for remote markers in a cluster).
        let now_state = self.txns.txns.get(&transactional_id).map(|t| t.state);
        assert!(
            matches!(
                now_state,
                Some(TxnState::Empty | TxnState::CompleteAbort | TxnState::PrepareAbort)
            ),
            "{transactional_id} after InitProducerId: {now_state:?}"
        );
        self.respond_when_durable(
            id,
            respond(ErrorCode::NONE, producer_id, producer_epoch),
            None,
        );
    }

    /// `txn`'s producer with its epoch bumped; past the last epoch, a fresh producer id at
    /// epoch 0 (see `init_producer_id`). `None` when no id is left.
    fn bumped_epoch(&mut self, txn: &TxnMetadata) -> Option<(i64, i16)> {
        if txn.producer_epoch >= i16::MAX - 1 {
            self.allocate_producer_id()
                .map(|producer_id| (producer_id, 0))
        } else {
            Some((txn.producer_id, txn.producer_epoch + 1))
        }
    }

    /// The next producer id, its counter persisted (answers wait for the sync). The counter
    /// is written before any id is used, so a crash can skip ids but never hand one out
    /// twice: a reused id would inherit another producer's sequence state.
    fn allocate_producer_id(&mut self) -> Option<i64> {
        let producer_id = self.next_producer_id;
        assert!(producer_id >= 0, "next_producer_id={producer_id}");
        // Past this node's range lie another broker's (or shard's) ids.
        let next =
            (producer_id.checked_add(1)).filter(|next| *next <= self.own_producer_ids().end)?;
        self.next_producer_id = next;
        self.emit(StorageOp::PutMeta {
            key: meta::NEXT_PRODUCER_ID.to_vec(),
            value: meta::encode(&next),
        });
        Some(producer_id)
    }

    /// AddPartitionsToTxn: the partitions join the ongoing transaction (starting it). A
    /// transactional batch for a partition not added first is refused on produce, which is
    /// what keeps a partition's LSO from being held by a transaction the coordinator would
    /// never send a marker for.
    pub(super) fn add_partitions_to_txn(
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
            // Every partition costs a marker at the end, hence the bound. Duplicates and
            // partitions already added are counted too, so the check errs on the safe side.
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
        // All or nothing, as in Kafka: a client that sees any partition refused retries the
        // whole request, so adding the others now would only open a transaction it has not
        // agreed to.
        if any_unknown {
            error = Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
        }
        // Refusals change nothing, so they need no sync: answered at once.
        let (None, Ok(mut txn)) = (error, checked) else {
            self.respond(id, response);
            return;
        };
        // The first Add* starts the transaction and its timeout clock (`begin`).
        Self::begin(&mut txn, now);
        for topic in &request.topics {
            for partition in &topic.partitions {
                txn.partitions.insert((topic.name.clone(), *partition));
            }
        }
        // Checked before any change: the request's count bounds the growth.
        assert!(
            txn.partitions.len() <= TXN_PARTITIONS_MAX,
            "{}",
            txn.transactional_id
        );
        self.put_txn(txn);
        self.respond_when_durable(id, response, None);
    }

    /// AddOffsetsToTxn: the group joins the ongoing transaction (starting it), and with it
    /// the group's `__consumer_offsets` partition, as in Kafka: the transaction's end writes
    /// a marker there, which commits or drops the offsets TxnOffsetCommit left with the
    /// group's coordinator (`node/txn_offsets.rs`), wherever that coordinator is.
    pub(super) fn add_offsets_to_txn(
        &mut self,
        now: Now,
        id: RequestId,
        request: AddOffsetsToTxnRequest,
    ) {
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
            // An empty id names no group a TxnOffsetCommit could later commit to.
            Ok(_) if request.group_id.is_empty() => {
                return self.respond(id, respond(ErrorCode::INVALID_GROUP_ID))
            }
            Ok(txn) => txn,
        };
        // The controller created the offsets topic before this request was released
        // (`hold_request`); without it (not creatable now) the client retries.
        let offsets = match self.offsets_partition(&request.group_id) {
            Ok(key) => match i32::try_from(key.index()) {
                Ok(index) => (OFFSETS_TOPIC.to_string(), index),
                Err(_) => return self.respond(id, respond(ErrorCode::COORDINATOR_NOT_AVAILABLE)),
            },
            Err(error) => return self.respond(id, respond(error)),
        };
        // Every partition costs a marker at the end (AddPartitionsToTxn's bound).
        if !txn.partitions.contains(&offsets) && txn.partitions.len() >= TXN_PARTITIONS_MAX {
            return self.respond(id, respond(ErrorCode::INVALID_REQUEST));
        }
        Self::begin(&mut txn, now);
        // Recorded so TxnOffsetCommit can check the group was added first, when this node
        // coordinates the group too.
        txn.groups.insert(request.group_id.clone());
        txn.partitions.insert(offsets);
        self.put_txn(txn);
        self.respond_when_durable(id, respond(ErrorCode::NONE), None);
    }

    /// EndTxn: commit or abort the ongoing transaction. Answered after the sync that covers
    /// Prepare, the local markers and Complete; in a cluster, with markers still owed by
    /// other leaders, the answer is released with the Prepare record (the decision), as in
    /// Kafka, and the client's next request waits on CONCURRENT_TRANSACTIONS.
    pub(super) fn end_txn(&mut self, now: Now, id: RequestId, request: EndTxnRequest) {
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
            // Committing a transaction that never began, or ending a completed one the other
            // way: the client's view of its transaction is wrong.
            _ => ErrorCode::INVALID_TXN_STATE,
        };
        // Answered after the sync even for a refusal or a retry: the state it reports (and a
        // retry's earlier Complete record) is then durable, never only in memory.
        let txn = self.txns.txns.get(&request.transactional_id).cloned();
        self.respond_when_durable(id, respond(error, txn.as_ref()), None);
    }

    /// End `transactional_id`'s ongoing transaction: Prepare, markers, offsets, Complete.
    fn end_transaction(&mut self, now: Now, transactional_id: &str, committed: bool) {
        let Some(mut txn) = self.txns.txns.get(transactional_id).cloned() else {
            return;
        };
        // Every caller found it Ongoing (EndTxn, InitProducerId, the timeout).
        assert_eq!(txn.state, TxnState::Ongoing, "{transactional_id}");
        // The Prepare record is the decision: it is queued before any marker, and storage
        // keeps a prefix of the writes, so no marker can survive a crash without it.
        txn.state = if committed {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        // A decided transaction can no longer time out: its outcome is fixed.
        txn.deadline = None;
        self.put_txn(txn.clone());
        self.finish_transaction(now, txn);
    }

    /// Write the markers (and on commit the offsets) of a prepared transaction, then
    /// complete it. Also the recovery path for a Prepare record found without its Complete:
    /// rewriting a marker the crash already wrote is harmless, since a marker for a producer
    /// with no open transaction in that partition changes nothing there.
    fn finish_transaction(&mut self, now: Now, txn: TxnMetadata) {
        assert!(
            matches!(txn.state, TxnState::PrepareCommit | TxnState::PrepareAbort),
            "{} finished in {:?}",
            txn.transactional_id,
            txn.state
        );
        let committed = txn.state == TxnState::PrepareCommit;
        let mut remote = Vec::new();
        for (topic, partition) in &txn.partitions {
            // Partitions led elsewhere get their marker from their leader; the transaction
            // stays prepared until every one is acknowledged.
            if !self.leads(topic, *partition) {
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
        // Complete only once every marker is written: the remote leaders' acknowledgements
        // complete it (`node/cluster/markers.rs`), resent until they arrive.
        if !remote.is_empty() {
            self.send_remote_markers(now, &txn, remote);
            return;
        }
        self.complete_transaction(now, txn);
    }

    /// Every marker of a prepared transaction is written: commit its offsets (on commit)
    /// and mark it complete.
    pub(super) fn complete_transaction(&mut self, now: Now, mut txn: TxnMetadata) {
        // The outcome comes from the Prepare record, the one the markers were written for;
        // nothing moves a prepared transaction elsewhere (module invariants).
        assert!(
            matches!(txn.state, TxnState::PrepareCommit | TxnState::PrepareAbort),
            "{} completed in {:?}",
            txn.transactional_id,
            txn.state
        );
        let committed = txn.state == TxnState::PrepareCommit;
        // Offsets travel with the markers to the group's offsets partition
        // (`node/txn_offsets.rs`). `pending_offsets` is only non-empty in a transaction
        // record written before that (legacy data directories): its offsets are written
        // here, after the markers and before Complete, so a crash before Complete redoes
        // the markers and rewrites the same offsets, which is idempotent.
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
        // A completed transaction keeps only its outcome: a retried EndTxn compares against
        // it, and the next Add* starts from empty sets.
        txn.partitions.clear();
        txn.groups.clear();
        txn.pending_offsets.clear();
        txn.start_ms = -1;
        txn.last_update_ms = now.wall_ms;
        txn.deadline = None;
        self.put_txn(txn);
    }

    /// Commit a transaction's offsets to `group` as plain offset records. The group's
    /// membership is not checked: the transaction was committed, so its offsets must land
    /// even if the consumer left the group meanwhile.
    fn apply_txn_offsets(&mut self, now: Now, group: &str, offsets: Vec<PendingOffset>) {
        assert!(!offsets.is_empty(), "no offsets for {group}");
        assert!(
            offsets.iter().all(|o| o.group == group),
            "offsets of another group"
        );
        let mut records = Vec::with_capacity(offsets.len());
        let mut accepted = Vec::with_capacity(offsets.len());
        for offset in offsets {
            let committed = CommittedOffset {
                offset: offset.offset,
                leader_epoch: offset.leader_epoch,
                metadata: offset.metadata,
                commit_timestamp: now.wall_ms,
            };
            records.push(offsets_log::offset_record(
                group,
                &offset.topic,
                offset.partition,
                &committed,
            ));
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
        // No member id: a transactional commit renews no member's session.
        self.groups.commit(now, group, "", accepted);
    }

    /// Append a marker to a partition and update its transaction index. The marker carries
    /// the producer's current epoch, so the partition's producer state fences anything the
    /// producer sends later at an older one.
    pub(super) fn write_marker(
        &mut self,
        now: Now,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        committed: bool,
    ) -> Result<(), ErrorCode> {
        let key = self.resolve_partition(&TopicRef::Name(topic.to_string()), partition)?;
        let (topic_id, index) = (key.topic, key.index());
        // The marker lands at the log end; the append path assigns nothing else, so the
        // offset set here is the one the partition's transaction index records.
        let batch = encode_control_batch(
            producer_id,
            producer_epoch,
            committed,
            COORDINATOR_EPOCH,
            now.wall_ms,
        );
        let topic = &self.topics[&topic_id];
        // A marker of an older epoch than the producer's here is stale (a resend of a
        // decision already written, arriving after the producer's next epoch appended):
        // written, it would end a transaction it does not belong to. Kafka's leaders refuse
        // it the same way.
        let current = topic.partitions[index].producers.epoch_of(producer_id);
        if current.is_some_and(|current| producer_epoch < current) {
            return Err(ErrorCode::INVALID_PRODUCER_EPOCH);
        }
        let segment_bytes = topic.config.segment_bytes(&self.config);
        let base_offset = topic.partitions[index].log_end_offset();
        // Only the partition's leader writes the marker (an error otherwise), stamped with
        // its leader epoch like any batch it appends.
        let epoch = self.serving_epoch(PartitionId::new(topic_id, index))?;
        let mut batch = BytesMut::from(&batch[..]);
        set_base_offset(&mut batch, base_offset);
        set_partition_leader_epoch(&mut batch, epoch);
        let origin = AppendOrigin::Coordinator;
        self.append_batch(now.wall_ms, key, batch.freeze(), segment_bytes, origin)?;
        // In a group's offsets partition the marker also ends the producer's pending
        // transactional offsets (`node/txn_offsets.rs`); this node leads the partition, so
        // it coordinates those groups.
        if self.topics[&topic_id].name == OFFSETS_TOPIC {
            (self.groups).end_txn_offsets(now, producer_id, committed, true);
        }
        Ok(())
    }

    /// WriteTxnMarkers (admin / completeness): append each marker where asked. Kafka's
    /// coordinators send it to partition leaders; here it serves tools that abort a hanging
    /// transaction by hand, and each marker is answered only once durable.
    pub(super) fn write_txn_markers(
        &mut self,
        now: Now,
        id: RequestId,
        request: WriteTxnMarkersRequest,
    ) {
        // Checked once for the whole request: a marker written must be answered after its
        // sync, so none is written when the answer could not be parked.
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
        assert_eq!(
            markers.len(),
            request.markers.len(),
            "one result per marker"
        );
        // Only an answer that reports a written marker waits for the sync.
        let response = ApiResponse::WriteTxnMarkers(WriteTxnMarkersResponse { markers });
        if wrote {
            self.respond_when_durable(id, response, None);
        } else {
            self.respond(id, response);
        }
    }

    /// DescribeTransactions: the current state of each id, read from memory (which is what
    /// the last durable record says, plus changes whose answers are still waiting).
    pub(super) fn describe_transactions(
        &mut self,
        id: RequestId,
        request: DescribeTransactionsRequest,
    ) {
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
            .collect::<Vec<TransactionDescription>>();
        assert_eq!(
            transactions.len(),
            request.transactional_ids.len(),
            "one per id"
        );
        let response = DescribeTransactionsResponse {
            throttle_time_ms: 0,
            transactions,
        };
        self.respond(id, ApiResponse::DescribeTransactions(response));
    }

    /// ListTransactions with Kafka's filters: states (unknown names reported back), producer
    /// ids, and a minimum running time (KIP-994) that only open transactions can meet.
    pub(super) fn list_transactions(
        &mut self,
        now: Now,
        id: RequestId,
        request: ListTransactionsRequest,
    ) {
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
            // KIP-994: only open transactions (start_ms set) running at least that long.
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

    /// DescribeProducers (KIP-664): each partition's producer table, with the first offset of
    /// every open transaction, which is what an operator needs to find what holds the LSO.
    pub(super) fn describe_producers(&mut self, id: RequestId, request: DescribeProducersRequest) {
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
                            Ok(key) => {
                                let log = &self.topics[&key.topic].partitions[key.index()];
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

    /// Produce-side check of a transactional batch for `topic`/`partition`: the producer's
    /// current epoch added this partition to its ongoing transaction. Without it a batch
    /// sent after the transaction ended (a late retry) would open a transaction no marker
    /// ever closes, and the partition's LSO would stop for good (KIP-890's hanging
    /// transaction).
    pub(super) fn check_transactional_batch(
        &self,
        header: &BatchHeader,
        topic: &str,
        partition: i32,
    ) -> Result<(), (ErrorCode, String)> {
        // The produce path calls this only for transactional batches with a producer id.
        assert!(header.is_transactional(), "not a transactional batch");
        assert!(
            header.producer_id >= 0,
            "producer_id={}",
            header.producer_id
        );
        // The producer id names the transaction: ids are unique per transactional id, and
        // the epoch check below rejects a zombie of the same id.
        let Some(txn) = self.txns.by_producer(header.producer_id) else {
            // The coordinator may be another broker, which knows the id; the partition's
            // producer state still fences old epochs (Kafka before KIP-890). Only a node
            // that coordinates every transactional id knows this producer has none.
            if !self.coordinates_every_transaction() {
                return Ok(());
            }
            let message = format!("producer {} has no transactional id", header.producer_id);
            return Err((ErrorCode::INVALID_PRODUCER_ID_MAPPING, message));
        };
        // PLANTED BUG (weir-sim's planted suite only; never in a real build): a batch of a
        // fenced (older) epoch passes the transaction check.
        if header.producer_epoch < txn.producer_epoch
            && crate::planted::on(crate::planted::Bug::AcceptFencedEpoch)
        {
            return Ok(());
        }
        // A newer epoch than the coordinator's cannot be real and an older one is a zombie:
        // either way the batch must not open a transaction here.
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
    /// `transaction.timeout.ms`. Without the timeout a producer that died mid-transaction
    /// would hold the LSO of its partitions, and so every read_committed consumer, forever.
    pub(super) fn expire_transactions(&mut self, now: Now) {
        // Collected first: each abort changes the table being scanned.
        let expired: Vec<String> = (self.txns.txns.values())
            .filter(|t| t.deadline.is_some_and(|d| d <= now.instant))
            .map(|t| t.transactional_id.clone())
            .collect();
        for transactional_id in expired {
            let Some(mut txn) = self.txns.txns.get(&transactional_id).cloned() else {
                continue;
            };
            tracing::info!(transactional_id, "transaction timed out; aborting");
            assert_eq!(txn.state, TxnState::Ongoing, "{transactional_id}: deadline");
            // Bump first, then abort: the markers carry the new epoch, so the timed-out
            // producer's late batches and EndTxn are fenced (Kafka's PrepareEpochFence).
            // At the last epoch no bump is possible; the zombie's late batches are still
            // refused, since the transaction they name is no longer Ongoing.
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
            // The tombstone follows the removal in the same input, so the table and the
            // topic agree once its sync completes (and a crash before leaves the id, which
            // then expires again).
            let removed = self.txns.remove(&transactional_id);
            assert!(
                removed.is_some(),
                "{transactional_id} listed but not in the table"
            );
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
    /// A consumer starting on a partition must not read an offset that an open transaction
    /// is about to replace (KIP-447): it would reprocess what the transaction already did.
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
                    let (group_id, p) = (&group.group_id, partition.partition);
                    // Held by the group (`node/txn_offsets.rs`), or by a transaction record
                    // written before offsets moved there (legacy, until it ends).
                    if self.groups.has_pending_txn_offset(group_id, &topic.name, p)
                        || self.txns.has_pending(group_id, &topic.name, p)
                    {
                        partition.error = ErrorCode::UNSTABLE_OFFSET_COMMIT;
                    }
                }
            }
        }
    }

    /// Recovery: load the coordinator from `__transaction_state` (moving legacy meta
    /// entries into it), rebuild every partition's transaction index from its log, finish
    /// transactions a crash left prepared, restart the clocks of ongoing ones. An ongoing
    /// transaction gets a full timeout from now: its producer may still be alive and about
    /// to end it, and the clock it ran under before the crash is not on this node.
    pub(super) fn recover_transactions(
        &mut self,
        storage: &impl Storage,
        now: Now,
    ) -> Result<(), StorageError> {
        // 1. The table: latest record per id (a tombstone, `None`, forgets the id).
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
        // 2. Legacy entries, from before the topic existed; a corrupt one stops recovery, as
        // losing a transaction's state would silently expose or drop its data.
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
        // Tombstoned ids (`None`) are simply not restored.
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
                // Restored first; an Ongoing one gets its deadline (not persisted) before
                // `put_txn` writes it to the topic (a single node's legacy table: this node
                // coordinates it).
                self.restore_txn(txn, now);
                if let Some(mut restored) = self.txns.txns.get(&transactional_id).cloned() {
                    if restored.state == TxnState::Ongoing {
                        let timeout_ms = u64::try_from(restored.timeout_ms).unwrap_or(0);
                        restored.deadline = Some(now.instant.add_ms(timeout_ms));
                    }
                    self.put_txn(restored);
                }
            }
            // Removed after the record above (same sync or a later one): a crash between
            // keeps the legacy entry, and the next recovery moves it again.
            self.emit(StorageOp::DeleteMeta {
                key: legacy_txn_key(&transactional_id),
            });
        }
        // 3. Each partition's index, before any marker below is appended to it.
        for topic in self.topics.values_mut() {
            for log in &mut topic.partitions {
                rebuild_index(storage, log)?;
            }
        }
        // 4. What a crash left decided but not complete is finished by whichever node
        // coordinates it once it takes its `__transaction_state` partition over
        // (`take_over_transactions`): this node may not be that coordinator any more, and
        // markers from a stale copy of the table could end a later transaction.
        Ok(())
    }

    /// A follower of a `__transaction_state` partition applies a record its leader wrote,
    /// so its table is current the moment it takes the partition (and the coordination of
    /// its transactional ids) over. No clock runs here: deadlines start at the take-over.
    pub(in crate::node) fn replay_txn_record(&mut self, key: &[u8], value: Option<&[u8]>) {
        let Some((transactional_id, txn)) = txn_log::decode(key, value) else {
            tracing::warn!("unreadable replicated transaction record");
            return;
        };
        match txn {
            Some(mut txn) => {
                txn.deadline = None;
                self.next_producer_id = self.next_producer_id.max(txn.producer_id + 1);
                self.txns.replace_replayed(txn);
            }
            None => self.txns.forget_replayed(&transactional_id),
        }
    }

    /// The transactional ids whose state lives in `__transaction_state` partition `index`
    /// of `count`.
    fn ids_of_txn_partition(&self, index: usize, count: i32) -> Vec<String> {
        let index = i32::try_from(index).unwrap_or(-1);
        (self.txns.txns.keys())
            .filter(|id| offsets_log::partition_for(id, count) == index)
            .cloned()
            .collect()
    }

    /// This node now leads `__transaction_state` partition `index` of `count`: it
    /// coordinates those ids. An ongoing transaction gets a full timeout from now (its
    /// producer may still be about to end it); one decided but not complete (the previous
    /// coordinator crashed or lost the partition before its markers were all written) is
    /// finished: its markers are written again, which ends nothing twice because no later
    /// transaction of that producer can have begun while it was unfinished.
    pub(in crate::node) fn take_over_transactions(&mut self, now: Now, index: usize, count: i32) {
        let mut finish = Vec::new();
        for id in self.ids_of_txn_partition(index, count) {
            let Some(txn) = self.txns.txns.get_mut(&id) else {
                continue;
            };
            match txn.state {
                TxnState::Ongoing => {
                    let timeout_ms = u64::try_from(txn.timeout_ms).unwrap_or(0);
                    txn.deadline = Some(now.instant.add_ms(timeout_ms));
                }
                TxnState::PrepareCommit | TxnState::PrepareAbort => finish.push(txn.clone()),
                _ => {}
            }
        }
        // Finished after the scan, since finishing appends records and changes the table.
        for txn in finish {
            tracing::info!(txn.transactional_id, ?txn.state, "finishing a prepared transaction");
            self.finish_transaction(now, txn);
        }
    }

    /// This node stops leading `__transaction_state` partition `index` of `count`: it no
    /// longer coordinates those ids, so no clock of theirs runs here and no marker of theirs
    /// is sent from here any more (the new coordinator decides).
    pub(in crate::node) fn resign_transactions(&mut self, index: usize, count: i32) {
        for id in self.ids_of_txn_partition(index, count) {
            if let Some(txn) = self.txns.txns.get_mut(&id) {
                txn.deadline = None;
            }
            // Markers still owed are the new coordinator's to send: it finds the transaction
            // prepared and writes them again.
            self.forget_pending_markers(&id);
        }
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
        // No clock runs before this node takes the id's partition over (a node may recover
        // a copy of the table for ids another node coordinates now).
        txn.deadline = None;
        // The counter in meta may be behind a recovered id (it is written separately), and an
        // id handed out twice would mix two producers' sequences.
        self.next_producer_id = self.next_producer_id.max(txn.producer_id.saturating_add(1));
        // A producer id allocated after recovery must not collide with a recovered one.
        assert!(
            self.next_producer_id > txn.producer_id,
            "{}",
            txn.transactional_id
        );
        self.txns.put(txn);
    }
}

/// One transaction as DescribeTransactions shows it: partitions grouped by topic.
fn describe(txn: &TxnMetadata) -> TransactionDescription {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in &txn.partitions {
        topics.entry(topic).or_default().push(*partition);
    }
    let listed: usize = topics.values().map(Vec::len).sum();
    assert_eq!(listed, txn.partitions.len(), "{}", txn.transactional_id);
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
/// The whole log, not a tail: a transaction opened long ago and never ended still holds the
/// LSO, and only its first batch says where.
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
            // Only transactional batches matter: an idempotent one never opens a
            // transaction, and a control batch of a non-transactional producer is not ours.
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
        // A read that yields no whole batch ends the scan (a torn tail recovery already
        // cut); otherwise each pass moves forward, which bounds the loop.
        if offset == before {
            break;
        }
        assert!(
            offset > before,
            "replay went back from {before} to {offset}"
        );
    }
    Ok(())
}

/// The response to a transaction request with `error` everywhere (poisoned node); `None`
/// for other requests. Every partition and id of the request gets an entry, because
/// clients match results to what they asked and treat a missing one as a protocol error.
pub(super) fn txn_error_response(request: &ApiRequest, error: ErrorCode) -> Option<ApiResponse> {
    // For the requests that list topics with bare partition numbers.
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
        // No producer id or epoch is confirmed: -1 for both.
        ApiRequest::EndTxn(_) => ApiResponse::EndTxn(EndTxnResponse {
            throttle_time_ms: 0,
            error,
            producer_id: -1,
            producer_epoch: -1,
        }),
        // Its partitions carry offsets, so `topic_results` does not fit.
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
        // One top-level error; nothing is listed.
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
        // Not a transaction request: the caller answers it another way.
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use weir_wire::domain::txn::DescribeTransactionsRequest;
    use weir_wire::domain::{ApiRequest, ApiResponse};

    use crate::storage::{Storage, StorageOp};
    use crate::testing::SingleNode;
    use crate::NodeConfig;

    // Goal: a legacy `txn/{id}` meta entry of an Ongoing transaction migrates into
    // `__transaction_state` at recovery with its timeout clock running (an Ongoing state
    // must have a deadline before it is persisted). Method: write the legacy entry by hand,
    // restart, describe the id and check the legacy key is gone.
    #[test]
    fn legacy_ongoing_transaction_migrates_with_a_deadline() {
        let mut node = SingleNode::new(NodeConfig::default());
        let legacy = r#"{"transactional_id":"old","producer_id":7,"producer_epoch":2,
            "timeout_ms":60000,"state":"Ongoing","partitions":[],"groups":["g"],
            "pending_offsets":[],"start_ms":1,"last_update_ms":1}"#;
        let op = StorageOp::PutMeta {
            key: b"txn/old".to_vec(),
            value: legacy.as_bytes().to_vec(),
        };
        node.storage.apply(&op).expect("MemStorage apply");
        node.restart();
        let request = DescribeTransactionsRequest {
            transactional_ids: vec!["old".into()],
        };
        let response = node.call(ApiRequest::DescribeTransactions(request));
        let ApiResponse::DescribeTransactions(described) = response else {
            panic!("{response:?}")
        };
        let txn = &described.transactions[0];
        assert_eq!((txn.state.as_str(), txn.producer_id), ("Ongoing", 7));
        node.restart();
        let entries = node.storage.meta_entries().expect("meta readable");
        assert!(entries.iter().all(|(key, _)| !key.starts_with(b"txn/")));
    }
}
