//! The producer: `send` queues a record and returns a future of its [`RecordMetadata`];
//! a sender task batches, sends and retries in the background.
//!
//! The decisions live in [`crate::session::producer::ProducerSession`]; this module is the
//! driver: one sender task that sleeps until the session's next deadline or a wake-up, then
//! expires, routes and drains; one task per produce request; one task per metadata refresh.
//!
//! Invariants:
//! - Records are queued synchronously in `send`, so send order is queue order: with the
//!   default `in_flight_batches_per_partition_max = 1`, offsets within a partition follow
//!   the order of `send` calls.
//! - With acks=0 the driver never waits for a response (the broker sends none); records
//!   complete once their request is queued on the connection, with offset -1.
//! - Every future returned by `send` resolves exactly once (the session returns each token
//!   exactly once; a dropped sender resolves it to [`ClientError::Closed`]).
//! - Idempotent producers: one InitProducerId task at a time fetches the producer id the
//!   session asks for; each batch is encoded with the id, epoch and sequence the session
//!   fixed for it, retries included.
//! - Transactional producers (see [`transaction`]): the producer id comes from
//!   `init_transactions`; batches carry the transactional flag and the request the
//!   transactional id; records are sent only through `send_txn`, inside a transaction, to a
//!   partition already added to it.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{oneshot, Notify};
use weir_runtime::Runtime;
use weir_wire::domain::{
    ApiRequest, ApiResponse, InitProducerIdRequest, ProducePartition, ProduceRequest, ProduceTopic,
    TopicRef,
};
use weir_wire::records::{BatchOptions, Record};

use crate::config::{Acks, ProducerConfig};
use crate::driver::cluster::{unexpected, Cluster};
use crate::driver::{millis_i32, sleep_until_opt};
use crate::error::ClientError;
pub use crate::session::producer::RecordMetadata;
use crate::session::producer::{BatchOutcome, Delivery, ProducerBatch, ProducerSession};

mod transaction;

pub use transaction::TransactionPhase;

type DeliverySender = oneshot::Sender<Result<RecordMetadata, ClientError>>;

/// A Kafka producer; cheap to clone, all clones share one buffer and sender task.
/// Dropping the last clone lets the sender task deliver what is queued, then stop.
pub struct Producer<R: Runtime> {
    handle: Arc<Handle<R>>,
}

impl<R: Runtime> Clone for Producer<R> {
    fn clone(&self) -> Producer<R> {
        Producer {
            handle: Arc::clone(&self.handle),
        }
    }
}

impl<R: Runtime> std::fmt::Debug for Producer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("acks", &self.handle.shared.config.acks)
            .finish()
    }
}

/// Owned by user handles only; its drop starts the shutdown.
struct Handle<R: Runtime> {
    shared: Arc<Shared<R>>,
}

impl<R: Runtime> Drop for Handle<R> {
    fn drop(&mut self) {
        lock(&self.shared.state).shutdown = true;
        self.shared.wake.notify_one();
    }
}

struct Shared<R: Runtime> {
    cluster: Cluster<R>,
    config: ProducerConfig,
    state: Mutex<State>,
    /// Wakes the sender task (new batch, completion, metadata, shutdown).
    wake: Notify,
    /// Wakes `flush` and `ready` waiters after deliveries.
    progress: Notify,
    /// Transaction state; its lock serialises the transactional calls (held across awaits).
    txn: tokio::sync::Mutex<transaction::TxnState>,
}

struct State {
    session: ProducerSession<DeliverySender>,
    shutdown: bool,
    metadata_in_flight: bool,
    metadata_wanted: bool,
    next_metadata_at: Duration,
    /// Topics this producer has sent to; refreshed together (bounded by what the user
    /// sends to).
    topics: BTreeSet<String>,
    /// An InitProducerId task is running.
    producer_id_in_flight: bool,
    /// Earliest time of the next InitProducerId attempt (backoff after a failure).
    next_producer_id_at: Duration,
}

impl<R: Runtime> Producer<R> {
    /// Connects to the cluster and starts the sender task.
    pub async fn connect(runtime: R, config: ProducerConfig) -> Result<Producer<R>, ClientError> {
        if (config.idempotent || config.transactional_id.is_some()) && config.acks != Acks::All {
            // Kafka's rule: without acks=all an acknowledged batch may be lost and its
            // sequence reused, which idempotence cannot tell from a retry.
            return Err(ClientError::InvalidArgument(
                "an idempotent producer needs acks=all".into(),
            ));
        }
        let seed = runtime.rng_seed();
        let cluster = Cluster::connect(runtime.clone(), config.client.clone()).await?;
        let shared = Arc::new(Shared {
            cluster,
            state: Mutex::new(State {
                session: ProducerSession::new(&config, seed),
                shutdown: false,
                metadata_in_flight: false,
                metadata_wanted: false,
                next_metadata_at: Duration::ZERO,
                topics: BTreeSet::new(),
                producer_id_in_flight: false,
                next_producer_id_at: Duration::ZERO,
            }),
            config,
            wake: Notify::new(),
            progress: Notify::new(),
            txn: tokio::sync::Mutex::new(transaction::TxnState::default()),
        });
        runtime.spawn(run_sender(Arc::clone(&shared)));
        Ok(Producer {
            handle: Arc::new(Handle { shared }),
        })
    }

    /// Queues a record and returns a future of where it was stored. `partition: None` uses
    /// the default partitioner (murmur2 of the key; sticky for keyless records).
    ///
    /// The record is queued before this returns, so records sent one after another keep
    /// their order. When the buffer is full the future fails at once with
    /// [`ClientError::BufferFull`]; await [`Producer::ready`] first to wait for room instead.
    ///
    /// A transactional producer sends with [`Producer::send_txn`] instead; `send` fails.
    pub fn send(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<Bytes>,
        value: Option<Bytes>,
        headers: Vec<(String, Option<Bytes>)>,
    ) -> DeliveryFuture {
        if self.handle.shared.config.transactional_id.is_some() {
            return DeliveryFuture::failed(ClientError::InvalidArgument(
                "a transactional producer sends with send_txn inside a transaction".into(),
            ));
        }
        self.enqueue(topic, partition, key, value, headers)
    }

    /// Queues a record (no transactional checks: `send` and `send_txn` do those).
    fn enqueue(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<Bytes>,
        value: Option<Bytes>,
        headers: Vec<(String, Option<Bytes>)>,
    ) -> DeliveryFuture {
        let shared = &self.handle.shared;
        let runtime = shared.cluster.runtime();
        let record = Record {
            offset: 0,
            timestamp: runtime.wall_ms(),
            key,
            value,
            headers,
        };
        let (sender, receiver) = oneshot::channel();
        let metadata = shared.cluster.metadata();
        let now = runtime.now();
        let result = {
            let mut state = lock(&shared.state);
            if state.shutdown {
                return DeliveryFuture::failed(ClientError::Closed);
            }
            if !state.topics.contains(topic) {
                state.topics.insert(topic.to_owned());
            }
            state
                .session
                .send(now, topic, partition, record, sender, &metadata)
        };
        match result {
            Ok(wake) => {
                if wake {
                    shared.wake.notify_one();
                }
                DeliveryFuture {
                    inner: Inner::Waiting(receiver),
                }
            }
            Err((error, _sender)) => DeliveryFuture::failed(error),
        }
    }

    /// Waits until the buffer has room for another record.
    pub async fn ready(&self) {
        let shared = &self.handle.shared;
        loop {
            let notified = shared.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if lock(&shared.state).session.has_room() {
                return;
            }
            notified.await;
        }
    }

    /// Sends every queued record now (ignoring linger) and waits until all are delivered.
    pub async fn flush(&self) {
        let shared = &self.handle.shared;
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

    /// Bytes of records not yet delivered.
    pub fn buffered_bytes(&self) -> usize {
        lock(&self.handle.shared.state).session.buffered_bytes()
    }

    /// The cluster handle (metadata, connections).
    pub fn cluster(&self) -> &Cluster<R> {
        &self.handle.shared.cluster
    }
}

/// The future returned by [`Producer::send`].
#[derive(Debug)]
pub struct DeliveryFuture {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Failed(Option<ClientError>),
    Waiting(oneshot::Receiver<Result<RecordMetadata, ClientError>>),
}

impl DeliveryFuture {
    fn failed(error: ClientError) -> DeliveryFuture {
        DeliveryFuture {
            inner: Inner::Failed(Some(error)),
        }
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.inner {
            Inner::Failed(error) => Poll::Ready(Err(error.take().unwrap_or(ClientError::Closed))),
            Inner::Waiting(receiver) => Pin::new(receiver)
                .poll(cx)
                .map(|result| result.unwrap_or(Err(ClientError::Closed))),
        }
    }
}

/// What one turn of the sender loop decided, computed under the lock and applied outside.
struct Turn {
    deliveries: Vec<Delivery<DeliverySender>>,
    requests: BTreeMap<i32, Vec<ProducerBatch<DeliverySender>>>,
    refresh: Option<Vec<String>>,
    init_producer_id: bool,
    deadline: Option<Duration>,
    exit: bool,
}

async fn run_sender<R: Runtime>(shared: Arc<Shared<R>>) {
    loop {
        let turn = plan_turn(&shared);
        deliver(&shared, turn.deliveries);
        if let Some(topics) = turn.refresh {
            shared
                .cluster
                .runtime()
                .spawn(refresh_metadata(Arc::clone(&shared), topics));
        }
        if turn.init_producer_id {
            shared
                .cluster
                .runtime()
                .spawn(init_producer_id(Arc::clone(&shared)));
        }
        for (node, batches) in turn.requests {
            shared
                .cluster
                .runtime()
                .spawn(produce(Arc::clone(&shared), node, batches));
        }
        if turn.exit {
            tracing::debug!("producer sender task finished");
            return;
        }
        let runtime = shared.cluster.runtime();
        tokio::select! {
            biased;
            () = shared.wake.notified() => {}
            () = sleep_until_opt(runtime, turn.deadline) => {}
        }
    }
}

fn plan_turn<R: Runtime>(shared: &Shared<R>) -> Turn {
    let runtime = shared.cluster.runtime();
    let now = runtime.now();
    let metadata = shared.cluster.metadata();
    let mut state = lock(&shared.state);
    let mut deliveries = state.session.expire(now);
    deliveries.extend(state.session.on_metadata(now, &metadata));
    let drained = state.session.drain(now, &metadata);
    let idle = state.session.is_idle();
    let stale = !idle && metadata.is_stale(now, shared.config.client.metadata_max_age);
    let wanted = drained.needs_metadata
        || !state.session.topics_awaiting_metadata().is_empty()
        || state.metadata_wanted
        || stale;
    let mut deadline = state.session.poll_timeout(now);
    let mut refresh = None;
    if wanted && !state.metadata_in_flight {
        if now >= state.next_metadata_at {
            state.metadata_in_flight = true;
            state.metadata_wanted = false;
            refresh = Some(state.topics.iter().cloned().collect());
        } else {
            let at = state.next_metadata_at;
            deadline = Some(deadline.map_or(at, |d| d.min(at)));
        }
    }
    let mut init_producer_id = false;
    if state.session.needs_producer_id() && !state.producer_id_in_flight {
        if now >= state.next_producer_id_at {
            state.producer_id_in_flight = true;
            init_producer_id = true;
        } else {
            let at = state.next_producer_id_at;
            deadline = Some(deadline.map_or(at, |d| d.min(at)));
        }
    }
    Turn {
        deliveries,
        requests: drained.by_node,
        refresh,
        init_producer_id,
        deadline,
        exit: state.shutdown && idle && !state.metadata_in_flight,
    }
}

async fn refresh_metadata<R: Runtime>(shared: Arc<Shared<R>>, topics: Vec<String>) {
    let allow = shared.config.allow_auto_create_topics;
    let result = shared.cluster.refresh_metadata(Some(&topics), allow).await;
    let now = shared.cluster.runtime().now();
    {
        let mut state = lock(&shared.state);
        state.metadata_in_flight = false;
        // Space refreshes by the retry backoff: a topic being created answers
        // LEADER_NOT_AVAILABLE for a while and must not be polled in a hot loop.
        state.next_metadata_at = now.saturating_add(shared.config.client.retry_backoff);
        if let Err(error) = result {
            tracing::debug!(%error, "producer metadata refresh failed");
            state.metadata_wanted = true;
        }
    }
    shared.wake.notify_one();
}

/// Gets a producer id for the session (idempotence); on failure, the next attempt waits for
/// the retry backoff.
async fn init_producer_id<R: Runtime>(shared: Arc<Shared<R>>) {
    let request = ApiRequest::InitProducerId(InitProducerIdRequest {
        transactional_id: None,
        // Kafka's default transaction.timeout.ms; brokers ignore it without a transaction.
        transaction_timeout_ms: 60_000,
        producer_id: -1,
        producer_epoch: -1,
    });
    let result = shared.cluster.request_any(&request).await;
    let now = shared.cluster.runtime().now();
    {
        let mut state = lock(&shared.state);
        state.producer_id_in_flight = false;
        match result {
            Ok(ApiResponse::InitProducerId(response)) if response.error.is_ok() => {
                tracing::debug!(
                    producer_id = response.producer_id,
                    epoch = response.producer_epoch,
                    "got a producer id"
                );
                state
                    .session
                    .set_producer_id(response.producer_id, response.producer_epoch);
            }
            other => {
                let reason = match other {
                    Ok(ApiResponse::InitProducerId(response)) => response.error.to_string(),
                    Ok(other) => unexpected("InitProducerId", &other).to_string(),
                    Err(error) => error.to_string(),
                };
                tracing::debug!(%reason, "InitProducerId failed; retrying after a backoff");
                state.next_producer_id_at = now.saturating_add(shared.config.client.retry_backoff);
            }
        }
    }
    shared.wake.notify_one();
}

async fn produce<R: Runtime>(
    shared: Arc<Shared<R>>,
    node: i32,
    batches: Vec<ProducerBatch<DeliverySender>>,
) {
    let config = &shared.config;
    let mut outcomes: Vec<(ProducerBatch<DeliverySender>, BatchOutcome)> = Vec::new();
    let mut sendable = Vec::new();
    let mut topics: BTreeMap<String, Vec<ProducePartition>> = BTreeMap::new();
    for batch in batches {
        let mut options = BatchOptions {
            compression: config.compression,
            transactional: config.transactional_id.is_some(),
            ..BatchOptions::default()
        };
        if let Some((producer_id, epoch, base_sequence)) = batch.sequence {
            options.producer_id = producer_id;
            options.producer_epoch = epoch;
            options.base_sequence = base_sequence;
        }
        match weir_wire::records::encode_batch(&batch.records, &options) {
            Ok(bytes) => {
                let tp = &batch.topic_partition;
                topics
                    .entry(tp.topic.clone())
                    .or_default()
                    .push(ProducePartition {
                        partition: tp.partition,
                        records: Some(bytes),
                    });
                sendable.push(batch);
            }
            Err(error) => outcomes.push((batch, BatchOutcome::Failed(error.into()))),
        }
    }
    if !sendable.is_empty() {
        let request = ApiRequest::Produce(ProduceRequest {
            transactional_id: config.transactional_id.clone(),
            acks: config.acks,
            timeout_ms: millis_i32(config.ack_timeout),
            topics: topics
                .into_iter()
                .map(|(name, partitions)| ProduceTopic {
                    topic: TopicRef::Name(name),
                    partitions,
                })
                .collect(),
        });
        let result = send_produce(&shared, node, &request).await;
        for batch in sendable {
            let outcome = batch_outcome(&result, &batch);
            outcomes.push((batch, outcome));
        }
    }
    let now = shared.cluster.runtime().now();
    let mut deliveries = Vec::new();
    {
        let mut state = lock(&shared.state);
        for (batch, outcome) in outcomes {
            let completed = state.session.complete(now, batch, outcome);
            state.metadata_wanted |= completed.refresh_metadata;
            deliveries.extend(completed.deliveries);
        }
    }
    deliver(&shared, deliveries);
    shared.wake.notify_one();
}

/// `Ok(None)` for acks=0: no response exists.
async fn send_produce<R: Runtime>(
    shared: &Shared<R>,
    node: i32,
    request: &ApiRequest,
) -> Result<Option<ApiResponse>, ClientError> {
    let connection = shared.cluster.connection_to(node).await?;
    if shared.config.acks == Acks::None {
        connection.send_without_response(request).await?;
        return Ok(None);
    }
    let timeout = shared
        .config
        .client
        .request_timeout
        .max(shared.config.ack_timeout);
    connection.request(request, timeout).await.map(Some)
}

fn batch_outcome<T>(
    result: &Result<Option<ApiResponse>, ClientError>,
    batch: &ProducerBatch<T>,
) -> BatchOutcome {
    let tp = &batch.topic_partition;
    let response = match result {
        Err(error) => return BatchOutcome::Failed(error.clone()),
        Ok(None) => {
            return BatchOutcome::Acked {
                base_offset: -1,
                log_append_time_ms: -1,
            }
        }
        Ok(Some(ApiResponse::Produce(response))) => response,
        Ok(Some(other)) => return BatchOutcome::Failed(unexpected("Produce", other)),
    };
    let answer = response
        .topics
        .iter()
        .filter(|topic| matches!(&topic.topic, TopicRef::Name(name) if *name == tp.topic))
        .flat_map(|topic| &topic.partitions)
        .find(|partition| partition.partition == tp.partition);
    match answer {
        None => BatchOutcome::Failed(ClientError::Protocol(format!("no produce answer for {tp}"))),
        Some(answer) if answer.error.is_ok() => BatchOutcome::Acked {
            base_offset: answer.base_offset,
            log_append_time_ms: answer.log_append_time_ms,
        },
        Some(answer) => BatchOutcome::Failed(ClientError::Kafka {
            code: answer.error,
            context: tp.to_string(),
            message: answer.error_message.clone(),
        }),
    }
}

fn deliver<R: Runtime>(shared: &Shared<R>, deliveries: Vec<Delivery<DeliverySender>>) {
    if deliveries.is_empty() {
        return;
    }
    for delivery in deliveries {
        // The caller may have dropped its future; that is allowed.
        drop(delivery.token.send(delivery.result));
    }
    shared.progress.notify_waiters();
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
