//! The Rust actors of the `queue` and `txn` workloads, through the real `weir-client`, and
//! how each of their operations is recorded (Jepsen's queue workload, §6.8 of
//! `jepsen-checker.md`).
//!
//! - History keys are partitions of one topic. Values are unique per key over the run (one
//!   counter for every Rust actor; the Python client counts from
//!   [`super::recorder::EXTERNAL_VALUE_BASE`]). No value is ever sent twice by the harness.
//! - `queue`: producers with acks=all, plain ones on the lower half of the keys and
//!   idempotent ones on the upper half (so the checker can hold the idempotent keys to "no
//!   duplicates"); one consumer by `assign`; group members by `subscribe` that commit after
//!   every poll (the op carries `committed` and the `rebalance_log`).
//! - `txn`: transactional producers whose op is one transaction (1-3 sends, then commit,
//!   or abort one time in five); read_committed consumers by `assign`.
//! - Outcomes: `ok` when the client said so; `fail` only when the write definitely did not
//!   happen (an aborted transaction, a send refused before it left the client); every other
//!   error is `info`, and the process retires (new process id, new client), as in Jepsen.
//!   A consumer that failed a poll is recreated, so its next op starts afresh.
//! - Final reads (`"phase":"final"`): after the nemesis healed everything, a fresh consumer
//!   assigns every key from the beginning and polls until its position reached every
//!   partition's high watermark.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use weir_client::{
    Acks, AutoOffsetReset, ClientConfig, ClientError, Consumer, ConsumerConfig, ConsumerRecord,
    ErrorCode, GroupConfig, Offset, Producer, ProducerConfig,
};
use weir_runtime::TokioRuntime;

use super::recorder::Recorder;
use super::schedule::Rng;
use crate::{Kind, Mop, Phase, Rebalance, RebalanceKind, Value, F};

/// Poll timeout of every consumer op.
const POLL_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause between two sends of one producer (keeps the CPU use of a run modest).
const SEND_PAUSE_MS_MAX: u64 = 20;
/// Chance (per mille) that a transaction is aborted on purpose.
const TXN_ABORT_PER_MILLE: u64 = 200;
/// Broker-side transaction timeout of the transactional producers.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(15);

/// Which workload runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// Producers and consumers, no transactions.
    Queue,
    /// Transactional producers, read_committed consumers.
    Txn,
}

impl WorkloadKind {
    /// Parses `--workload`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "queue" => Some(Self::Queue),
            "txn" => Some(Self::Txn),
            _ => None,
        }
    }

    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Queue => "queue",
            Self::Txn => "txn",
        }
    }
}

/// What every actor shares.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The history.
    pub recorder: Recorder,
    /// Bootstrap addresses (every node).
    pub bootstrap: Vec<String>,
    /// The workload topic.
    pub topic: String,
    /// Keys (= partitions of the topic).
    pub keys: u32,
    /// Set when the main phase ends; actors finish their op and return.
    pub stop: Arc<AtomicBool>,
    /// The next value.
    pub values: Arc<AtomicU64>,
    /// Root seed.
    pub seed: u64,
    /// The client runtime.
    pub runtime: TokioRuntime,
}

impl Ctx {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn next_value(&self) -> u64 {
        self.values.fetch_add(1, Ordering::SeqCst)
    }

    /// Keys written by plain (non-idempotent) producers: the lower half.
    pub fn plain_keys(&self) -> Vec<u32> {
        (0..self.keys / 2).collect()
    }

    /// Keys written by idempotent producers: the upper half.
    pub fn idempotent_keys(&self) -> Vec<u32> {
        (self.keys / 2..self.keys).collect()
    }

    fn client_config(&self, name: &str) -> ClientConfig {
        ClientConfig {
            bootstrap_servers: self.bootstrap.clone(),
            client_id: name.to_owned(),
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            metadata_max_age: Duration::from_secs(3),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(1000),
            ..ClientConfig::default()
        }
    }

    fn consumer_config(&self, name: &str, read_committed: bool) -> ConsumerConfig {
        ConsumerConfig {
            client: self.client_config(name),
            fetch_max_wait: Duration::from_millis(200),
            auto_offset_reset: AutoOffsetReset::Earliest,
            read_committed,
            ..ConsumerConfig::default()
        }
    }

    fn all_keys(&self) -> Vec<u32> {
        (0..self.keys).collect()
    }

    fn partitions(&self) -> Vec<(String, i32)> {
        (0..self.keys)
            .map(|k| (self.topic.clone(), i32::try_from(k).unwrap_or(0)))
            .collect()
    }
}

async fn pause(rng: &mut Rng, max_ms: u64) {
    tokio::time::sleep(Duration::from_millis(rng.between(0, max_ms))).await;
}

/// Errors after which a send definitely did not happen.
fn send_definitely_failed(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::BufferFull { .. } | ClientError::InvalidArgument(_) | ClientError::Closed
    )
}

/// A queue producer on `keys`: one send per op, acks=all.
pub async fn producer(ctx: Ctx, index: usize, keys: Vec<u32>, idempotent: bool) {
    let mut rng = Rng::new(ctx.seed, &format!("producer-{index}"));
    let name = format!("producer-{index}");
    let config = ProducerConfig {
        client: ctx.client_config(&name),
        acks: Acks::All,
        linger: Duration::from_millis(1),
        delivery_timeout: Duration::from_secs(10),
        ack_timeout: Duration::from_secs(5),
        idempotent,
        ..ProducerConfig::default()
    };
    let mut process = ctx.recorder.process();
    let mut client: Option<Producer<TokioRuntime>> = None;
    while !ctx.stopped() && !keys.is_empty() {
        pause(&mut rng, SEND_PAUSE_MS_MAX).await;
        let producer = match &client {
            Some(producer) => producer.clone(),
            None => match Producer::connect(ctx.runtime.clone(), config.clone()).await {
                Ok(producer) => {
                    client = Some(producer.clone());
                    producer
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let key = keys[usize::try_from(rng.below(keys.len() as u64)).unwrap_or(0)];
        let value = ctx.next_value();
        let recorder = &ctx.recorder;
        recorder.client(
            process,
            Kind::Invoke,
            F::Send,
            Value::Mops(vec![Mop::send(key, value)]),
            Phase::Main,
        );
        let partition = i32::try_from(key).unwrap_or(0);
        let payload = Some(Bytes::from(value.to_string()));
        let result = producer
            .send(&ctx.topic, Some(partition), None, payload, Vec::new())
            .await;
        match result {
            Ok(metadata) => {
                let offset = (metadata.offset >= 0).then_some(metadata.offset);
                let mop = Mop::Send { key, offset, value };
                recorder.client(
                    process,
                    Kind::Ok,
                    F::Send,
                    Value::Mops(vec![mop]),
                    Phase::Main,
                );
            }
            Err(error) => {
                let definite = send_definitely_failed(&error);
                let kind = if definite { Kind::Fail } else { Kind::Info };
                let mops = Value::Mops(vec![Mop::send(key, value)]);
                recorder.client_error(process, kind, F::Send, mops, Phase::Main, error.to_string());
                if !definite {
                    process = recorder.process();
                    client = None;
                }
            }
        }
    }
}

/// Polled records as history reads: per key, (offset, value) in the order returned.
fn reads_of(records: &[ConsumerRecord]) -> Vec<(u32, Vec<(i64, u64)>)> {
    let mut reads: BTreeMap<u32, Vec<(i64, u64)>> = BTreeMap::new();
    for record in records {
        let value = record
            .value
            .as_ref()
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok());
        // A value that does not parse cannot be ours; u64::MAX is never sent, so the
        // checker reports it as unexpected-value instead of the harness hiding it.
        let value = value.unwrap_or(u64::MAX);
        let key = u32::try_from(record.partition).unwrap_or(u32::MAX);
        reads.entry(key).or_default().push((record.offset, value));
    }
    reads.into_iter().collect()
}

/// Assigns every key from the beginning; the assign op is recorded.
async fn assigned(
    ctx: &Ctx,
    process: u64,
    name: &str,
    phase: Phase,
    read_committed: bool,
) -> Option<Consumer<TokioRuntime>> {
    let keys = Value::Keys(ctx.all_keys());
    let mut invoke = crate::Event::new(process, Kind::Invoke, F::Assign, keys.clone());
    invoke.phase = phase;
    invoke.seek_to_beginning = true;
    ctx.recorder.record(invoke.clone());
    let result = async {
        let mut consumer = Consumer::connect(
            ctx.runtime.clone(),
            ctx.consumer_config(name, read_committed),
        )
        .await?;
        consumer.assign(ctx.partitions()).await?;
        for (topic, partition) in ctx.partitions() {
            consumer.seek(&topic, partition, Offset::Earliest).await?;
        }
        Ok::<_, ClientError>(consumer)
    }
    .await;
    let mut done = invoke;
    match result {
        Ok(consumer) => {
            done.kind = Kind::Ok;
            ctx.recorder.record(done);
            Some(consumer)
        }
        Err(error) => {
            done.kind = Kind::Fail;
            done.error = Some(error.to_string());
            ctx.recorder.record(done);
            None
        }
    }
}

/// One recorded poll; `Err` means the process must retire (info recorded).
async fn recorded_poll(
    ctx: &Ctx,
    process: u64,
    consumer: &mut Consumer<TokioRuntime>,
    phase: Phase,
) -> Result<usize, ()> {
    let invoke = Value::Mops(vec![Mop::poll()]);
    ctx.recorder
        .client(process, Kind::Invoke, F::Poll, invoke.clone(), phase);
    match consumer.poll(POLL_TIMEOUT).await {
        Ok(records) => {
            let value = Value::Mops(vec![Mop::polled(reads_of(&records))]);
            ctx.recorder
                .client(process, Kind::Ok, F::Poll, value, phase);
            Ok(records.len())
        }
        Err(error) => {
            ctx.recorder.client_error(
                process,
                Kind::Info,
                F::Poll,
                invoke,
                phase,
                error.to_string(),
            );
            Err(())
        }
    }
}

/// The main-phase consumer by `assign`.
pub async fn assign_consumer(ctx: Ctx, read_committed: bool) {
    'process: while !ctx.stopped() {
        let process = ctx.recorder.process();
        let Some(mut consumer) =
            assigned(&ctx, process, "consumer", Phase::Main, read_committed).await
        else {
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        };
        while !ctx.stopped() {
            if recorded_poll(&ctx, process, &mut consumer, Phase::Main)
                .await
                .is_err()
            {
                continue 'process;
            }
        }
    }
}

/// Commit errors that prove the offsets were not committed.
fn commit_definitely_failed(error: &ClientError) -> bool {
    match error {
        ClientError::Kafka { code, .. } => [
            ErrorCode::REBALANCE_IN_PROGRESS,
            ErrorCode::ILLEGAL_GENERATION,
            ErrorCode::UNKNOWN_MEMBER_ID,
        ]
        .contains(code),
        ClientError::InvalidArgument(_) | ClientError::Closed => true,
        _ => false,
    }
}

/// A consumer-group member: subscribe, then poll + commit per op.
pub async fn group_member(ctx: Ctx, index: usize) {
    let name = format!("member-{index}");
    'process: while !ctx.stopped() {
        let process = ctx.recorder.process();
        let keys = Value::Keys(ctx.all_keys());
        ctx.recorder.client(
            process,
            Kind::Invoke,
            F::Subscribe,
            keys.clone(),
            Phase::Main,
        );
        let subscribed = async {
            let mut consumer =
                Consumer::connect(ctx.runtime.clone(), ctx.consumer_config(&name, false)).await?;
            let group = GroupConfig {
                session_timeout: Duration::from_secs(10),
                heartbeat_interval: Duration::from_secs(1),
                enable_auto_commit: false,
                ..GroupConfig::new("jepsen-group")
            };
            consumer.subscribe(group, vec![ctx.topic.clone()]).await?;
            Ok::<_, ClientError>(consumer)
        }
        .await;
        let mut consumer = match subscribed {
            Ok(consumer) => {
                ctx.recorder
                    .client(process, Kind::Ok, F::Subscribe, keys, Phase::Main);
                consumer
            }
            Err(error) => {
                ctx.recorder.client_error(
                    process,
                    Kind::Fail,
                    F::Subscribe,
                    keys,
                    Phase::Main,
                    error.to_string(),
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
        };
        let mut owned: Vec<u32> = Vec::new();
        while !ctx.stopped() {
            if group_poll(&ctx, process, &mut consumer, &mut owned)
                .await
                .is_err()
            {
                let _ = consumer.close().await;
                continue 'process;
            }
        }
        let _ = consumer.close().await;
    }
}

/// One group op: poll, then commit; `Err` retires the process.
async fn group_poll(
    ctx: &Ctx,
    process: u64,
    consumer: &mut Consumer<TokioRuntime>,
    owned: &mut Vec<u32>,
) -> Result<(), ()> {
    let invoke = Value::Mops(vec![Mop::poll()]);
    ctx.recorder
        .client(process, Kind::Invoke, F::Poll, invoke.clone(), Phase::Main);
    let records = match consumer.poll(POLL_TIMEOUT).await {
        Ok(records) => records,
        Err(error) => {
            ctx.recorder.client_error(
                process,
                Kind::Info,
                F::Poll,
                invoke,
                Phase::Main,
                error.to_string(),
            );
            return Err(());
        }
    };
    let mut now: Vec<u32> = consumer
        .assignment()
        .iter()
        .filter(|tp| tp.topic == ctx.topic)
        .filter_map(|tp| u32::try_from(tp.partition).ok())
        .collect();
    now.sort_unstable();
    let mut rebalance_log = Vec::new();
    if now != *owned {
        let revoked: Vec<u32> = owned.iter().copied().filter(|k| !now.contains(k)).collect();
        let assigned: Vec<u32> = now.iter().copied().filter(|k| !owned.contains(k)).collect();
        if !revoked.is_empty() {
            rebalance_log.push(Rebalance {
                keys: revoked,
                kind: RebalanceKind::Revoked,
            });
        }
        if !assigned.is_empty() {
            rebalance_log.push(Rebalance {
                keys: assigned,
                kind: RebalanceKind::Assigned,
            });
        }
        *owned = now;
    }
    let reads = reads_of(&records);
    let (committed, error) = if records.is_empty() {
        (false, None)
    } else {
        match consumer.commit().await {
            Ok(()) => (true, None),
            // Unknown outcome: the offsets may have been committed, so the reads count.
            Err(error) => (!commit_definitely_failed(&error), Some(error)),
        }
    };
    if error.is_some() {
        // Read again what this op read: from the op's first offsets.
        for (key, list) in &reads {
            if let Some((offset, _)) = list.first() {
                let partition = i32::try_from(*key).unwrap_or(0);
                let _ = consumer
                    .seek(&ctx.topic, partition, Offset::At(*offset))
                    .await;
            }
        }
    }
    let mut event = crate::Event::new(
        process,
        Kind::Ok,
        F::Poll,
        Value::Mops(vec![Mop::polled(reads)]),
    );
    event.committed = committed;
    event.rebalance_log = rebalance_log;
    event.error = error.map(|e| e.to_string());
    ctx.recorder.record(event);
    Ok(())
}

/// A transactional producer: one op = one transaction of 1-3 sends, committed or aborted.
pub async fn txn_producer(ctx: Ctx, index: usize) {
    let mut rng = Rng::new(ctx.seed, &format!("txn-producer-{index}"));
    let config = ProducerConfig {
        client: ctx.client_config(&format!("txn-producer-{index}")),
        acks: Acks::All,
        linger: Duration::from_millis(1),
        delivery_timeout: Duration::from_secs(10),
        ack_timeout: Duration::from_secs(5),
        idempotent: true,
        transactional_id: Some(format!("jepsen-txn-{index}")),
        transaction_timeout: TRANSACTION_TIMEOUT,
        ..ProducerConfig::default()
    };
    let mut process = ctx.recorder.process();
    let mut client: Option<Producer<TokioRuntime>> = None;
    while !ctx.stopped() {
        pause(&mut rng, SEND_PAUSE_MS_MAX * 2).await;
        let producer = match &client {
            Some(producer) => producer.clone(),
            None => {
                let connected = async {
                    let producer = Producer::connect(ctx.runtime.clone(), config.clone()).await?;
                    producer.init_transactions().await?;
                    Ok::<_, ClientError>(producer)
                }
                .await;
                match connected {
                    Ok(producer) => {
                        client = Some(producer.clone());
                        producer
                    }
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        continue;
                    }
                }
            }
        };
        let count = rng.between(1, 3);
        let writes: Vec<(u32, u64)> = (0..count)
            .map(|_| {
                (
                    u32::try_from(rng.below(u64::from(ctx.keys))).unwrap_or(0),
                    ctx.next_value(),
                )
            })
            .collect();
        let abort_on_purpose = rng.below(1000) < TXN_ABORT_PER_MILLE;
        let invoke: Vec<Mop> = writes.iter().map(|&(k, v)| Mop::send(k, v)).collect();
        ctx.recorder.client(
            process,
            Kind::Invoke,
            F::Txn,
            Value::Mops(invoke.clone()),
            Phase::Main,
        );
        let outcome = run_txn(&ctx, &producer, &writes, abort_on_purpose).await;
        let recorder = &ctx.recorder;
        match outcome {
            TxnOutcome::Committed(offsets) => {
                let mops = writes
                    .iter()
                    .zip(offsets)
                    .map(|(&(key, value), offset)| Mop::Send { key, offset, value })
                    .collect();
                recorder.client(process, Kind::Ok, F::Txn, Value::Mops(mops), Phase::Main);
            }
            TxnOutcome::Aborted(why) => {
                recorder.client_error(
                    process,
                    Kind::Fail,
                    F::Txn,
                    Value::Mops(invoke),
                    Phase::Main,
                    why,
                );
            }
            TxnOutcome::Unknown(why) => {
                recorder.client_error(
                    process,
                    Kind::Info,
                    F::Txn,
                    Value::Mops(invoke),
                    Phase::Main,
                    why,
                );
                process = recorder.process();
                client = None;
            }
        }
    }
}

enum TxnOutcome {
    Committed(Vec<Option<i64>>),
    Aborted(String),
    Unknown(String),
}

async fn run_txn(
    ctx: &Ctx,
    producer: &Producer<TokioRuntime>,
    writes: &[(u32, u64)],
    abort_on_purpose: bool,
) -> TxnOutcome {
    if let Err(error) = producer.begin_transaction().await {
        return abort(producer, format!("begin: {error}")).await;
    }
    let mut offsets = Vec::new();
    for &(key, value) in writes {
        let partition = i32::try_from(key).unwrap_or(0);
        let payload = Some(Bytes::from(value.to_string()));
        let sent = match producer
            .send_txn(&ctx.topic, Some(partition), None, payload, Vec::new())
            .await
        {
            Ok(delivery) => delivery.await,
            Err(error) => Err(error),
        };
        match sent {
            Ok(metadata) => offsets.push((metadata.offset >= 0).then_some(metadata.offset)),
            Err(error) => return abort(producer, format!("send: {error}")).await,
        }
    }
    if abort_on_purpose {
        return abort(producer, "aborted on purpose".to_owned()).await;
    }
    match producer.commit_transaction().await {
        Ok(()) => TxnOutcome::Committed(offsets),
        Err(error) => {
            // The commit's outcome is unknown; abort so the producer may go on (the
            // process retires anyway).
            let _ = producer.abort_transaction().await;
            TxnOutcome::Unknown(format!("commit: {error}"))
        }
    }
}

/// Aborts after an error before the commit: `Aborted` when the abort was acknowledged
/// (nothing of the transaction may ever be visible), `Unknown` otherwise.
async fn abort(producer: &Producer<TokioRuntime>, why: String) -> TxnOutcome {
    match producer.abort_transaction().await {
        Ok(()) => TxnOutcome::Aborted(why),
        Err(error) => TxnOutcome::Unknown(format!("{why}; abort: {error}")),
    }
}

/// Final reads: a fresh consumer per attempt reads every key from the beginning until its
/// position reached every high watermark. Returns whether it caught up before `deadline`.
pub async fn final_reads(ctx: Ctx, read_committed: bool, deadline: tokio::time::Instant) -> bool {
    'process: while tokio::time::Instant::now() < deadline {
        let process = ctx.recorder.process();
        let Some(mut consumer) =
            assigned(&ctx, process, "final-reader", Phase::Final, read_committed).await
        else {
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        };
        let mut empty_polls = 0;
        while tokio::time::Instant::now() < deadline {
            match recorded_poll(&ctx, process, &mut consumer, Phase::Final).await {
                Err(()) => continue 'process,
                Ok(0) => empty_polls += 1,
                Ok(_) => empty_polls = 0,
            }
            let caught_up = (0..ctx.keys).all(|key| {
                let partition = i32::try_from(key).unwrap_or(0);
                let position = consumer.position(&ctx.topic, partition).unwrap_or(-1);
                let high_watermark = consumer.high_watermark(&ctx.topic, partition).unwrap_or(-1);
                high_watermark >= 0 && position >= high_watermark
            });
            // Two empty polls in a row at the high watermark: nothing more is coming.
            if caught_up && empty_polls >= 2 {
                return true;
            }
        }
    }
    false
}
