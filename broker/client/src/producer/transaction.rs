//! The transactional producer (`transactional.id`): `init_transactions`,
//! `begin_transaction`, `send_txn`, `send_offsets_to_transaction`, `commit_transaction`,
//! `abort_transaction`.
//!
//! The protocol, as Kafka's `TransactionManager` drives it:
//! - `init_transactions`: FindCoordinator (key type 1) for the transactional id, then
//!   InitProducerId with it. The broker aborts whatever transaction an earlier incarnation
//!   left open and bumps the epoch, which fences that incarnation.
//! - `send_txn`: before the first write to a partition in a transaction, AddPartitionsToTxn
//!   registers it at the coordinator; records are then queued like idempotent ones, in
//!   batches flagged transactional (attributes bit 4).
//! - `send_offsets_to_transaction`: AddOffsetsToTxn at the transaction's coordinator, then
//!   TxnOffsetCommit at the group's coordinator; the offsets commit with the transaction.
//! - `commit_transaction` / `abort_transaction`: flush (commit) or drop what is queued
//!   (abort), then EndTxn. A transaction with a write that failed for good can only abort.
//!
//! Invariants:
//! - The transactional calls are serialised by `Shared::txn` (an async lock held across
//!   the coordinator round trips), so phases change in program order.
//! - Fencing is final: once the broker answered PRODUCER_FENCED or INVALID_PRODUCER_EPOCH
//!   (to a coordinator request or to a batch), the phase is `Fatal` and every later call
//!   fails with that error; the producer never writes again.
//! - Retriable failures (network, coordinator moving or loading, CONCURRENT_TRANSACTIONS)
//!   are retried with backoff until `delivery.timeout.ms` after the call started; each
//!   retry is safe to repeat (AddPartitionsToTxn and EndTxn are idempotent at the broker).
//! - After an abort that may have left a sequence hole (a batch failed or was dropped
//!   after getting a sequence), the producer re-runs InitProducerId naming its current id
//!   and epoch (KIP-360): the epoch bump restarts sequences, and a zombie is refused.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use weir_runtime::Runtime;
use weir_wire::domain::txn::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, TxnOffsetCommitPartition,
    TxnOffsetCommitRequest, TxnOffsetCommitTopic, TxnTopic,
};
use weir_wire::domain::InitProducerIdRequest;
use weir_wire::domain::{coordinator_type, ApiRequest, ApiResponse, FindCoordinatorRequest};
use weir_wire::error::ErrorCode;

use super::{lock, DeliveryFuture, Producer, Shared};
use crate::driver::cluster::unexpected;
use crate::driver::millis_i32;
use crate::error::ClientError;
use crate::TopicPartition;

/// Where a transactional producer stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TransactionPhase {
    /// `init_transactions` has not succeeded yet.
    #[default]
    Uninitialized,
    /// Between transactions.
    Ready,
    /// Inside a transaction.
    InTransaction,
    /// Inside a transaction that can only be aborted (a write or the commit failed).
    AbortOnly(ClientError),
    /// Fenced or otherwise unusable for good.
    Fatal(ClientError),
}

/// Transactional state of one producer.
#[derive(Debug, Default)]
pub(super) struct TxnState {
    phase: TransactionPhase,
    /// Partitions added to the current transaction.
    partitions: BTreeSet<TopicPartition>,
    /// Groups whose offsets joined the current transaction (AddOffsetsToTxn): the broker
    /// then has a transaction to end even with no partition written.
    groups: BTreeSet<String>,
    /// The coordinator's `host:port`, once found.
    coordinator: Option<String>,
    /// Round robin over partitions for keyless records without a partition.
    next_partition: u32,
}

/// Codes after which a transactional producer can never write again.
pub fn is_fatal_code(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::PRODUCER_FENCED
            | ErrorCode::INVALID_PRODUCER_EPOCH
            | ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    )
}

fn is_fatal(error: &ClientError) -> bool {
    error.code().is_some_and(is_fatal_code)
}

/// Worth another attempt at the coordinator (possibly after finding it again).
fn is_retriable_txn(error: &ClientError) -> bool {
    error.is_retriable() || error.code() == Some(ErrorCode::CONCURRENT_TRANSACTIONS)
}

/// Inside a transaction that can still commit: the precondition of `call`.
fn in_transaction(phase: &TransactionPhase, call: &str) -> Result<(), ClientError> {
    match phase {
        TransactionPhase::InTransaction => Ok(()),
        TransactionPhase::Fatal(error) | TransactionPhase::AbortOnly(error) => Err(error.clone()),
        other => Err(ClientError::InvalidArgument(format!(
            "{call} in phase {other:?}: begin a transaction first"
        ))),
    }
}

/// The phase after a transactional call failed with `error`: fatal when fenced, else the
/// transaction can only abort.
fn failed(error: &ClientError) -> TransactionPhase {
    if is_fatal(error) {
        TransactionPhase::Fatal(error.clone())
    } else {
        TransactionPhase::AbortOnly(error.clone())
    }
}

fn kafka(code: ErrorCode, context: &str) -> Result<(), ClientError> {
    if code.is_ok() {
        Ok(())
    } else {
        Err(ClientError::kafka(code, context))
    }
}

impl<R: Runtime> Producer<R> {
    fn transactional_id(&self) -> Result<String, ClientError> {
        self.handle
            .shared
            .config
            .transactional_id
            .clone()
            .ok_or_else(|| ClientError::InvalidArgument("no transactional.id configured".into()))
    }

    /// The transaction phase (for diagnostics and tests).
    pub async fn transaction_phase(&self) -> TransactionPhase {
        self.handle.shared.txn.lock().await.phase.clone()
    }

    /// True when the producer is between transactions and can begin one (false while a
    /// transactional call is running).
    pub fn is_ready_for_transactions(&self) -> bool {
        self.handle
            .shared
            .txn
            .try_lock()
            .is_ok_and(|state| state.phase == TransactionPhase::Ready)
    }

    /// Gets the producer id and epoch for `transactional.id`, fencing any earlier producer
    /// with the same id and aborting the transaction it left open. Call once before the
    /// first transaction (again after an error that left the phase `Uninitialized`).
    pub async fn init_transactions(&self) -> Result<(), ClientError> {
        let shared = &self.handle.shared;
        let mut state = shared.txn.lock().await;
        if let TransactionPhase::Fatal(error) = &state.phase {
            return Err(error.clone());
        }
        if matches!(
            state.phase,
            TransactionPhase::InTransaction | TransactionPhase::AbortOnly(_)
        ) {
            return Err(ClientError::InvalidArgument(
                "init_transactions inside a transaction".into(),
            ));
        }
        let current = lock(&shared.state).session.producer_id();
        let result = init_producer_id(shared, &mut state, current).await;
        state.phase = match &result {
            Ok(()) => TransactionPhase::Ready,
            Err(error) if is_fatal(error) => TransactionPhase::Fatal(error.clone()),
            Err(_) => TransactionPhase::Uninitialized,
        };
        result
    }

    /// Starts a transaction (local only: the broker learns of it at the first write).
    pub async fn begin_transaction(&self) -> Result<(), ClientError> {
        let shared = &self.handle.shared;
        let mut state = shared.txn.lock().await;
        match &state.phase {
            TransactionPhase::Ready => {}
            TransactionPhase::Fatal(error) => return Err(error.clone()),
            other => {
                return Err(ClientError::InvalidArgument(format!(
                    "begin_transaction in phase {other:?}"
                )))
            }
        }
        lock(&shared.state).session.take_failure();
        state.partitions.clear();
        state.groups.clear();
        state.phase = TransactionPhase::InTransaction;
        Ok(())
    }

    /// Queues a record in the current transaction, first adding its partition to the
    /// transaction (AddPartitionsToTxn) if this is the transaction's first write there.
    /// `partition: None` picks murmur2 of the key, or round robin for keyless records.
    /// The returned future resolves when the batch is acknowledged (the record is visible
    /// to read_committed consumers only after the commit).
    pub async fn send_txn(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<Bytes>,
        value: Option<Bytes>,
        headers: Vec<(String, Option<Bytes>)>,
    ) -> Result<DeliveryFuture, ClientError> {
        let shared = &self.handle.shared;
        let transactional_id = self.transactional_id()?;
        let mut state = shared.txn.lock().await;
        in_transaction(&state.phase, "send_txn")?;
        if let Some(error) = fenced_batch(shared) {
            state.phase = failed(&error);
            return Err(error);
        }
        let count = partition_count(shared, topic).await?;
        let partition = match (partition, key.as_deref()) {
            (Some(p), _) if (0..count).contains(&p) => p,
            (Some(p), _) => {
                return Err(ClientError::InvalidArgument(format!(
                    "partition {p} of {topic} (it has {count})"
                )))
            }
            (None, Some(key)) => weir_wire::murmur2::partition_for_key(key, count),
            (None, None) => {
                state.next_partition = state.next_partition.wrapping_add(1);
                i32::try_from(state.next_partition % u32::try_from(count).unwrap_or(1)).unwrap_or(0)
            }
        };
        let tp = TopicPartition::new(topic, partition);
        if !state.partitions.contains(&tp) {
            let Some((producer_id, producer_epoch)) = lock(&shared.state).session.producer_id()
            else {
                let error = ClientError::InvalidArgument("no producer id: abort first".into());
                state.phase = TransactionPhase::AbortOnly(error.clone());
                return Err(error);
            };
            let request = ApiRequest::AddPartitionsToTxn(AddPartitionsToTxnRequest {
                transactional_id,
                producer_id,
                producer_epoch,
                topics: vec![TxnTopic {
                    name: topic.to_owned(),
                    partitions: vec![partition],
                }],
            });
            let context = tp.to_string();
            let result = coordinator_call(shared, &mut state, &request, |response| {
                let ApiResponse::AddPartitionsToTxn(response) = response else {
                    return Err(unexpected("AddPartitionsToTxn", &response));
                };
                let code = response
                    .results
                    .iter()
                    .flat_map(|topic| &topic.partitions)
                    .map(|p| p.error)
                    .find(|code| !code.is_ok())
                    .unwrap_or(ErrorCode::NONE);
                kafka(code, &context)
            })
            .await;
            match result {
                Ok(()) => {
                    state.partitions.insert(tp);
                }
                Err(error) => {
                    state.phase = failed(&error);
                    return Err(error);
                }
            }
        }
        Ok(self.enqueue(topic, Some(partition), key, value, headers))
    }

    /// Adds a consumer group's consumed offsets to the current transaction (Kafka's
    /// `sendOffsetsToTransaction`): they become the group's committed offsets if and only if
    /// the transaction commits, which is what makes a consume-transform-produce loop
    /// exactly-once. AddOffsetsToTxn at the transaction's coordinator, then TxnOffsetCommit
    /// at the group's coordinator (another broker, possibly), each retried like the other
    /// transactional calls. A failure leaves the transaction abort-only (fenced: fatal).
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &[(TopicPartition, i64)],
        group_id: &str,
    ) -> Result<(), ClientError> {
        let shared = &self.handle.shared;
        let transactional_id = self.transactional_id()?;
        let mut state = shared.txn.lock().await;
        in_transaction(&state.phase, "send_offsets_to_transaction")?;
        if let Some(error) = fenced_batch(shared) {
            state.phase = failed(&error);
            return Err(error);
        }
        let result = add_offsets(shared, &mut state, transactional_id, offsets, group_id).await;
        if let Err(error) = &result {
            state.phase = failed(error);
        }
        result
    }

    /// Flushes the transaction's records and commits it (EndTxn). A write that failed for
    /// good makes the commit fail (the phase becomes `AbortOnly`, or `Fatal` when fenced).
    /// An error from EndTxn itself leaves the outcome unknown; abort to go on.
    pub async fn commit_transaction(&self) -> Result<(), ClientError> {
        let shared = &self.handle.shared;
        let transactional_id = self.transactional_id()?;
        let mut state = shared.txn.lock().await;
        in_transaction(&state.phase, "commit_transaction")?;
        if let Some(error) = flush_or_fail(shared).await {
            state.phase = failed(&error);
            return Err(error);
        }
        if state.partitions.is_empty() && state.groups.is_empty() {
            // Nothing was written: there is no transaction at the broker to end.
            state.phase = TransactionPhase::Ready;
            return Ok(());
        }
        let result = end_txn(shared, &mut state, transactional_id, true).await;
        state.phase = match &result {
            Ok(()) => TransactionPhase::Ready,
            Err(error) => failed(error),
        };
        result
    }

    /// Drops the transaction's queued records, waits for those in flight, and aborts it
    /// (EndTxn). Its records never become visible to read_committed consumers.
    pub async fn abort_transaction(&self) -> Result<(), ClientError> {
        let shared = &self.handle.shared;
        let transactional_id = self.transactional_id()?;
        let mut state = shared.txn.lock().await;
        match &state.phase {
            TransactionPhase::InTransaction | TransactionPhase::AbortOnly(_) => {}
            TransactionPhase::Fatal(error) => return Err(error.clone()),
            other => {
                return Err(ClientError::InvalidArgument(format!(
                    "abort_transaction in phase {other:?}"
                )))
            }
        }
        let mut reinit = matches!(state.phase, TransactionPhase::AbortOnly(_));
        let dropped = {
            let mut inner = lock(&shared.state);
            let error = ClientError::InvalidArgument("the transaction was aborted".into());
            inner.session.fail_queued(&error)
        };
        // A dropped batch may have had a sequence (a retry waiting for its backoff).
        reinit |= !dropped.is_empty();
        super::deliver(shared, dropped);
        shared.wake.notify_one();
        wait_idle(shared).await;
        {
            let mut inner = lock(&shared.state);
            if let Some(error) = inner.session.take_failure() {
                if is_fatal(&error) {
                    state.phase = TransactionPhase::Fatal(error.clone());
                    return Err(error);
                }
                reinit = true;
            }
            reinit |= inner.session.producer_id().is_none();
        }
        if !state.partitions.is_empty() || !state.groups.is_empty() {
            match end_txn(shared, &mut state, transactional_id, false).await {
                Ok(()) => {}
                Err(error) if is_fatal(&error) => {
                    state.phase = TransactionPhase::Fatal(error.clone());
                    return Err(error);
                }
                // Already ended (a commit whose answer was lost went through, or a timeout
                // aborted it): the re-init below settles it either way.
                Err(_) => reinit = true,
            }
        }
        state.partitions.clear();
        state.groups.clear();
        if reinit {
            let current = lock(&shared.state).session.producer_id();
            if let Err(error) = init_producer_id(shared, &mut state, current).await {
                state.phase = if is_fatal(&error) {
                    TransactionPhase::Fatal(error.clone())
                } else {
                    TransactionPhase::Uninitialized
                };
                return Err(error);
            }
        }
        state.phase = TransactionPhase::Ready;
        Ok(())
    }
}

/// The failure of a batch, if it says the producer was fenced (kept for commit otherwise).
fn fenced_batch<R: Runtime>(shared: &Shared<R>) -> Option<ClientError> {
    let mut inner = lock(&shared.state);
    let error = inner.session.take_failure()?;
    if is_fatal(&error) {
        Some(error)
    } else {
        // Not fatal: put it back for commit/abort to see.
        inner.session.restore_failure(error);
        None
    }
}

/// The partition count of `topic`, refreshing metadata (with backoff) until it is known.
async fn partition_count<R: Runtime>(shared: &Shared<R>, topic: &str) -> Result<i32, ClientError> {
    if let Some(count) = shared.cluster.metadata().partition_count(topic) {
        return Ok(count);
    }
    let runtime = shared.cluster.runtime();
    let deadline = runtime.now().saturating_add(shared.config.delivery_timeout);
    let topics = [topic.to_owned()];
    loop {
        let allow = shared.config.allow_auto_create_topics;
        match shared.cluster.refresh_metadata(Some(&topics), allow).await {
            Ok(metadata) => {
                if let Some(count) = metadata.partition_count(topic) {
                    return Ok(count);
                }
            }
            Err(error) if !error.is_retriable() => return Err(error),
            Err(error) if runtime.now() >= deadline => return Err(error),
            Err(_) => {}
        }
        if runtime.now() >= deadline {
            return Err(ClientError::Timeout {
                context: format!("metadata for topic {topic}"),
                timeout_ms: u64::try_from(shared.config.delivery_timeout.as_millis())
                    .unwrap_or(u64::MAX),
            });
        }
        let wake = runtime
            .now()
            .saturating_add(shared.config.client.retry_backoff);
        runtime.sleep_until(wake).await;
    }
}

/// Sends every queued record now and waits until all are delivered or one failed for good;
/// returns that failure.
async fn flush_or_fail<R: Runtime>(shared: &Shared<R>) -> Option<ClientError> {
    lock(&shared.state).session.begin_flush();
    shared.wake.notify_one();
    let failure = loop {
        let notified = shared.progress.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut inner = lock(&shared.state);
            if let Some(error) = inner.session.take_failure() {
                break Some(error);
            }
            if inner.session.is_idle() {
                break None;
            }
        }
        notified.await;
    };
    lock(&shared.state).session.end_flush();
    failure
}

/// Waits until nothing is queued or in flight.
async fn wait_idle<R: Runtime>(shared: &Shared<R>) {
    lock(&shared.state).session.begin_flush();
    shared.wake.notify_one();
    loop {
        let notified = shared.progress.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if lock(&shared.state).session.is_idle() {
            break;
        }
        notified.await;
    }
    lock(&shared.state).session.end_flush();
}

/// InitProducerId for the transactional id; `current` names this producer's id and epoch
/// when it has one, so the broker refuses a zombie (PRODUCER_FENCED) instead of bumping.
async fn init_producer_id<R: Runtime>(
    shared: &Shared<R>,
    state: &mut TxnState,
    current: Option<(i64, i16)>,
) -> Result<(), ClientError> {
    let transactional_id = shared.config.transactional_id.clone();
    let context = format!(
        "InitProducerId {}",
        transactional_id.as_deref().unwrap_or("")
    );
    let (producer_id, producer_epoch) = current.unwrap_or((-1, -1));
    let request = ApiRequest::InitProducerId(InitProducerIdRequest {
        transactional_id,
        transaction_timeout_ms: millis_i32(shared.config.transaction_timeout),
        producer_id,
        producer_epoch,
    });
    let (producer_id, epoch) = coordinator_call(shared, state, &request, |response| {
        let ApiResponse::InitProducerId(response) = response else {
            return Err(unexpected("InitProducerId", &response));
        };
        kafka(response.error, &context)?;
        Ok((response.producer_id, response.producer_epoch))
    })
    .await?;
    tracing::debug!(producer_id, epoch, "transactional producer initialized");
    lock(&shared.state)
        .session
        .set_producer_id(producer_id, epoch);
    Ok(())
}

async fn end_txn<R: Runtime>(
    shared: &Shared<R>,
    state: &mut TxnState,
    transactional_id: String,
    committed: bool,
) -> Result<(), ClientError> {
    let Some((producer_id, producer_epoch)) = lock(&shared.state).session.producer_id() else {
        return Err(ClientError::InvalidArgument("no producer id".into()));
    };
    let context = format!("EndTxn {transactional_id}");
    let request = ApiRequest::EndTxn(EndTxnRequest {
        transactional_id,
        producer_id,
        producer_epoch,
        committed,
    });
    coordinator_call(shared, state, &request, |response| {
        let ApiResponse::EndTxn(response) = response else {
            return Err(unexpected("EndTxn", &response));
        };
        kafka(response.error, &context)
    })
    .await
}

/// AddOffsetsToTxn for `group_id` (once per transaction), then TxnOffsetCommit of
/// `offsets` at the group's coordinator, retried until `delivery.timeout.ms`.
async fn add_offsets<R: Runtime>(
    shared: &Shared<R>,
    state: &mut TxnState,
    transactional_id: String,
    offsets: &[(TopicPartition, i64)],
    group_id: &str,
) -> Result<(), ClientError> {
    let Some((producer_id, producer_epoch)) = lock(&shared.state).session.producer_id() else {
        return Err(ClientError::InvalidArgument(
            "no producer id: abort first".into(),
        ));
    };
    if !state.groups.contains(group_id) {
        let request = ApiRequest::AddOffsetsToTxn(AddOffsetsToTxnRequest {
            transactional_id: transactional_id.clone(),
            producer_id,
            producer_epoch,
            group_id: group_id.to_owned(),
        });
        let context = format!("AddOffsetsToTxn {group_id}");
        coordinator_call(shared, state, &request, |response| {
            let ApiResponse::AddOffsetsToTxn(response) = response else {
                return Err(unexpected("AddOffsetsToTxn", &response));
            };
            kafka(response.error, &context)
        })
        .await?;
        state.groups.insert(group_id.to_owned());
    }
    let mut by_topic: std::collections::BTreeMap<&str, Vec<TxnOffsetCommitPartition>> =
        std::collections::BTreeMap::new();
    for (tp, offset) in offsets {
        by_topic
            .entry(tp.topic.as_str())
            .or_default()
            .push(TxnOffsetCommitPartition {
                partition: tp.partition,
                committed_offset: *offset,
                committed_leader_epoch: -1,
                committed_metadata: None,
            });
    }
    let request = ApiRequest::TxnOffsetCommit(TxnOffsetCommitRequest {
        transactional_id,
        group_id: group_id.to_owned(),
        producer_id,
        producer_epoch,
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        topics: (by_topic.into_iter())
            .map(|(name, partitions)| TxnOffsetCommitTopic {
                name: name.to_owned(),
                partitions,
            })
            .collect(),
    });
    let runtime = shared.cluster.runtime();
    let deadline = runtime.now().saturating_add(shared.config.delivery_timeout);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let result = async {
            let connection =
                crate::driver::coordinator::coordinator_connection(&shared.cluster, group_id)
                    .await?;
            let response = connection
                .request(&request, shared.config.client.request_timeout)
                .await?;
            let ApiResponse::TxnOffsetCommit(response) = response else {
                return Err(unexpected("TxnOffsetCommit", &response));
            };
            let code = (response.topics.iter())
                .flat_map(|t| &t.partitions)
                .map(|p| p.error)
                .find(|code| !code.is_ok())
                .unwrap_or(ErrorCode::NONE);
            kafka(code, &format!("TxnOffsetCommit {group_id}"))
        }
        .await;
        match result {
            Ok(()) => return Ok(()),
            Err(error) if is_retriable_txn(&error) && runtime.now() < deadline => {
                tracing::debug!(%error, attempts, "TxnOffsetCommit failed; retrying");
                let backoff = (shared.config.client.retry_backoff)
                    .saturating_mul(attempts.min(8))
                    .min(shared.config.client.retry_backoff_max)
                    .max(Duration::from_millis(1));
                let wake = runtime.now().saturating_add(backoff).min(deadline);
                runtime.sleep_until(wake).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Sends `request` to the transaction coordinator and interprets the answer with
/// `extract`, retrying retriable failures (finding the coordinator again when it moved or
/// the connection failed) until `delivery.timeout.ms` has passed.
async fn coordinator_call<R: Runtime, T>(
    shared: &Shared<R>,
    state: &mut TxnState,
    request: &ApiRequest,
    extract: impl Fn(ApiResponse) -> Result<T, ClientError>,
) -> Result<T, ClientError> {
    let runtime = shared.cluster.runtime();
    let deadline = runtime.now().saturating_add(shared.config.delivery_timeout);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let result = async {
            let address = match &state.coordinator {
                Some(address) => address.clone(),
                None => {
                    let address = find_coordinator(shared).await?;
                    state.coordinator = Some(address.clone());
                    address
                }
            };
            let connection = shared.cluster.connection_at(&address).await?;
            let response = connection
                .request(request, shared.config.client.request_timeout)
                .await?;
            extract(response)
        }
        .await;
        match result {
            Ok(value) => return Ok(value),
            Err(error) if is_retriable_txn(&error) && runtime.now() < deadline => {
                if error.code() != Some(ErrorCode::CONCURRENT_TRANSACTIONS) {
                    state.coordinator = None;
                }
                tracing::debug!(%error, attempts, "transaction coordinator call failed; retrying");
                let backoff = shared
                    .config
                    .client
                    .retry_backoff
                    .saturating_mul(attempts.min(8))
                    .min(shared.config.client.retry_backoff_max)
                    .max(Duration::from_millis(1));
                let wake = runtime.now().saturating_add(backoff).min(deadline);
                runtime.sleep_until(wake).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// FindCoordinator (key type TRANSACTION) for this producer's transactional id.
async fn find_coordinator<R: Runtime>(shared: &Shared<R>) -> Result<String, ClientError> {
    let transactional_id = shared.config.transactional_id.clone().unwrap_or_default();
    let request = ApiRequest::FindCoordinator(FindCoordinatorRequest {
        key_type: coordinator_type::TRANSACTION,
        keys: vec![transactional_id.clone()],
    });
    let response = match shared.cluster.request_any(&request).await? {
        ApiResponse::FindCoordinator(response) => response,
        other => return Err(unexpected("FindCoordinator", &other)),
    };
    let Some(found) = response.coordinators.into_iter().next() else {
        return Err(ClientError::Protocol(
            "empty FindCoordinator response".into(),
        ));
    };
    if !found.error.is_ok() {
        return Err(ClientError::Kafka {
            code: found.error,
            context: format!("transactional id {transactional_id}"),
            message: found.error_message,
        });
    }
    let info = crate::driver::coordinator::CoordinatorInfo {
        node_id: found.node_id,
        host: found.host,
        port: found.port,
    };
    Ok(info.address())
}
