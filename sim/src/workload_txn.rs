//! The transactional workloads (`txn`, `txn-crash`): what their actors do through the real
//! `weir-client` (transactional producer, read_committed consumers), how each operation is
//! recorded, and the properties the harness checks itself on top of `weir_jepsen`.
//!
//! Actors (the harness spawns them as `producer-0..3`, `consumer`, `final-reader`):
//! - `producer-0`, `producer-1`: transactional producers (`txn-0`, `txn-1`). Each runs
//!   [`TXNS_PER_PRODUCER`] transactions; a transaction sends 1-2 values to each of 1-3
//!   partitions, waits for their acks, polls its own read_committed consumer (which must
//!   not see the transaction's own writes: `precommitted-read`), then commits (70 %) or
//!   aborts. Each transaction also sends its ordinal (1, 2, ...) as the offset of
//!   `TOPIC`-0 for the group `eos-<k>` (`send_offsets_to_transaction`, the
//!   consume-transform-produce step; the group and the transactional id may be coordinated
//!   by different shards). It is one Jepsen `txn` op (sends + poll): `ok` when the commit
//!   succeeded, `fail` when the client never asked to commit (aborted: nothing may ever be
//!   visible), `info` when the commit's outcome is unknown. After a non-`ok` op the consumer seeks
//!   back to where the op started (Jepsen's consumer rollback); after `info` the process
//!   retires. A producer that became unusable (fenced by a timeout abort) is replaced by a
//!   new instance with the same transactional id.
//! - `producer-2`: the zombie test. Instance A (`txn-zombie`) opens a transaction and gets
//!   writes acknowledged; instance B initializes the same id, which fences A (the fence
//!   point is B's successful `init_transactions`). A then sends again to a partition it
//!   already added and tries to commit: both must fail, else a harness violation. A's op
//!   is `fail` (its transaction was aborted by B's init), so none of its values may ever
//!   be read. B then commits a transaction on the same partitions.
//! - `consumer`: read_committed, assign, polls during the main phase; after every poll it
//!   asks ListOffsets(latest, read_committed), i.e. the last stable offset, and a record
//!   read at or above it is a violation (the LSO never decreases, so the record was above
//!   the LSO when fetched).
//! - `final-reader`: read_committed, reads every partition until its position reaches the
//!   high watermark and the broker reports last stable offset = high watermark (so every
//!   transaction ended; one a dead producer left open ends at its timeout, well within the
//!   final phase), then checks from the history: every value of an `ok` transaction was
//!   read in the final phase, none of a `fail` transaction was ever read, an `info`
//!   transaction was read whole or not at all. It checks each `eos-<k>` group's committed
//!   offset: the ordinal of the producer's last `ok` transaction or of a later `info` one,
//!   never an aborted one's (`check_txn_offsets`). Then it runs the CRC audit of `workload`.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use weir_client::{
    ClientError, Consumer, ConsumerConfig, Offset, Producer, ProducerConfig, TopicPartition,
};
use weir_jepsen::history::Polled;
use weir_jepsen::{Kind, Mop, Phase, Value, F};
use weir_runtime::Runtime;
use weir_wire::domain::LATEST_TIMESTAMP;

use crate::disk::DiskFaults;
use crate::seed::Rng;
use crate::shared_log::Ended;
use crate::workload::{
    self, client_config, now_ns, sleep, Actors, Spec, BUGGIFY_PER_MILLE, FINAL_PHASE_BUDGET, TOPIC,
};

/// Transactions per transactional producer actor.
pub const TXNS_PER_PRODUCER: usize = 8;
/// Actors `producer-0..TXN_PRODUCERS` are transactional producers; the next one is the
/// zombie test.
pub const TXN_PRODUCERS: usize = 2;
/// Broker-side transaction timeout: long enough for crashes and stalls not to abort
/// every transaction, short enough that a transaction a dead instance left open is
/// aborted well within the final phase.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Chance (per mille) that a transaction commits rather than aborts.
const COMMIT_PER_MILLE: u32 = 700;

/// The spec of `txn` (`crashes = false`: network faults only) and `txn-crash`.
pub fn spec(base: Spec, crashes: bool, crashy_disk: DiskFaults) -> Spec {
    Spec {
        keyed: false,
        producers: TXN_PRODUCERS + 1,
        sends_per_producer: TXNS_PER_PRODUCER,
        crashes,
        net_faults: true,
        clock_jumps: crashes,
        disk: if crashes {
            crashy_disk
        } else {
            DiskFaults::NONE
        },
        idempotent: true,
        buggify_per_mille: BUGGIFY_PER_MILLE,
        txn: true,
        ..base
    }
}

fn producer_config(actors: &Actors, name: &str, transactional_id: &str) -> ProducerConfig {
    ProducerConfig {
        client: client_config(&actors.bootstrap, name),
        linger: Duration::from_millis(2),
        delivery_timeout: Duration::from_secs(8),
        ack_timeout: Duration::from_secs(3),
        transactional_id: Some(transactional_id.to_owned()),
        transaction_timeout: TRANSACTION_TIMEOUT,
        ..ProducerConfig::default()
    }
}

fn read_committed_config(actors: &Actors, name: &str) -> ConsumerConfig {
    ConsumerConfig {
        read_committed: true,
        fetch_max_wait: Duration::from_millis(100),
        ..workload::consumer_config(&actors.bootstrap, name)
    }
}

fn key_of(partition: i32) -> u32 {
    u32::try_from(partition).unwrap_or_default()
}

/// A transactional producer instance, initialized; retries until it is (the faults heal).
async fn init_producer<R: Runtime>(
    runtime: &R,
    actors: &Actors,
    name: &str,
    transactional_id: &str,
) -> Producer<R> {
    let config = producer_config(actors, name, transactional_id);
    loop {
        if let Ok(producer) = Producer::connect(runtime.clone(), config.clone()).await {
            if producer.init_transactions().await.is_ok() {
                return producer;
            }
        }
        sleep(runtime, Duration::from_millis(100)).await;
    }
}

/// A read_committed consumer assigned every partition (see `workload::assigned_consumer`).
async fn assigned<R: Runtime>(
    runtime: &R,
    actors: &Actors,
    process: u64,
    name: &str,
    phase: Phase,
) -> Option<Consumer<R>> {
    let config = read_committed_config(actors, name);
    workload::assigned_consumer(runtime, actors, process, config, phase).await
}

/// Records of a poll as Jepsen reads (per partition, in order); unparseable values are
/// harness violations.
fn reads_of(actors: &Actors, records: &[weir_client::ConsumerRecord]) -> Polled {
    let mut reads: Polled = Vec::new();
    for record in records {
        let key = key_of(record.partition);
        let value = record
            .value
            .as_ref()
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok());
        let Some(value) = value else {
            actors.recorder.violation(format!(
                "partition {} offset {}: unparseable value {:?}",
                record.partition, record.offset, record.value
            ));
            continue;
        };
        match reads.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push((record.offset, value)),
            None => reads.push((key, vec![(record.offset, value)])),
        }
    }
    reads.sort_by_key(|(key, _)| *key);
    reads
}

/// The positions of every partition (to roll back to after a non-`ok` op).
fn positions<R: Runtime>(consumer: &Consumer<R>, partitions: i32) -> Vec<(i32, i64)> {
    (0..partitions)
        .filter_map(|p| consumer.position(TOPIC, p).map(|position| (p, position)))
        .collect()
}

async fn roll_back<R: Runtime>(consumer: &mut Consumer<R>, to: &[(i32, i64)]) -> bool {
    for (partition, position) in to {
        if consumer
            .seek(TOPIC, *partition, Offset::At(*position))
            .await
            .is_err()
        {
            return false;
        }
    }
    true
}

/// The group a producer actor's transactions commit offsets to.
fn eos_group(index: usize) -> String {
    format!("eos-{index}")
}

/// How one transaction ended.
enum Outcome {
    /// Committed.
    Committed,
    /// Never asked to commit (aborted, or given up before the commit).
    Aborted(String),
    /// Commit asked, outcome unknown.
    Unknown(String),
}

/// One transactional producer actor.
async fn txn_producer<R: Runtime>(runtime: R, actors: Actors, index: usize) {
    let name = format!("producer-{index}");
    let transactional_id = format!("txn-{index}");
    let mut rng = Rng::fork(actors.seed, &format!("txn-{index}"));
    let recorder = actors.recorder.clone();
    let partitions = actors.spec.partitions;
    let mut process = recorder.process();
    let mut producer: Option<Producer<R>> = None;
    let mut consumer: Option<Consumer<R>> = None;
    let mut next_value = (index as u64) * 1_000_000;
    let group = eos_group(index);
    for round in 0..actors.spec.sends_per_producer {
        let ordinal = i64::try_from(round).unwrap_or(i64::MAX - 1) + 1;
        sleep(&runtime, Duration::from_millis(rng.between(0, 30))).await;
        let txn_producer = match &producer {
            Some(p) => p.clone(),
            None => {
                let p = init_producer(&runtime, &actors, &name, &transactional_id).await;
                producer = Some(p.clone());
                p
            }
        };
        let mut reader = match consumer.take() {
            Some(c) => c,
            None => loop {
                let reader_name = format!("{name}-reader");
                let phase = Phase::Main;
                if let Some(c) = assigned(&runtime, &actors, process, &reader_name, phase).await {
                    break c;
                }
                sleep(&runtime, Duration::from_millis(100)).await;
            },
        };
        // The plan: 1-3 distinct partitions, 1-2 values each; values unique in the run.
        let mut chosen: Vec<i32> = (0..partitions).collect();
        let wanted = rng.between(1, chosen.len().min(3) as u64) as usize;
        let mut targets = Vec::new();
        while targets.len() < wanted {
            let at = rng.below(chosen.len() as u64) as usize;
            targets.push(chosen.remove(at));
        }
        let mut writes: Vec<(i32, u64)> = Vec::new();
        for partition in targets {
            for _ in 0..rng.between(1, 2) {
                writes.push((partition, next_value));
                next_value += 1;
            }
        }
        let commit = rng.chance(COMMIT_PER_MILLE);
        let before = positions(&reader, partitions);
        let mut invoke: Vec<Mop> = writes
            .iter()
            .map(|(p, v)| Mop::send(key_of(*p), *v))
            .collect();
        invoke.push(Mop::poll());
        recorder.event(
            process,
            Kind::Invoke,
            F::Txn,
            Value::Mops(invoke),
            now_ns(&runtime),
            Phase::Main,
            None,
            false,
        );
        let consumed = (group.as_str(), ordinal);
        let (outcome, offsets, reads) =
            run_txn(&txn_producer, &mut reader, &writes, consumed, commit).await;
        let ended = match &outcome {
            Outcome::Committed => Ended::Committed,
            Outcome::Aborted(_) => Ended::Aborted,
            Outcome::Unknown(_) => Ended::Unknown,
        };
        (actors.control.lock().txn_offsets.entry(index).or_default()).push((ordinal, ended));
        let mut mops: Vec<Mop> = writes
            .iter()
            .zip(&offsets)
            .map(|((p, v), offset)| match offset {
                Some(offset) => Mop::sent(key_of(*p), *offset, *v),
                None => Mop::send(key_of(*p), *v),
            })
            .collect();
        mops.push(Mop::polled(reads_of(&actors, &reads)));
        let end = now_ns(&runtime);
        let (kind, error) = match &outcome {
            Outcome::Committed => (Kind::Ok, None),
            Outcome::Aborted(why) => (Kind::Fail, Some(why.clone())),
            Outcome::Unknown(why) => (Kind::Info, Some(why.clone())),
        };
        recorder.event(
            process,
            kind,
            F::Txn,
            Value::Mops(mops),
            end,
            Phase::Main,
            error,
            false,
        );
        if !matches!(outcome, Outcome::Committed) {
            // Jepsen's consumer rollback: the op's polls did not happen.
            let rolled_back = roll_back(&mut reader, &before).await;
            if matches!(outcome, Outcome::Unknown(_)) || !rolled_back {
                process = recorder.process();
                drop(reader);
                reader = loop {
                    let reader_name = format!("{name}-reader");
                    let phase = Phase::Main;
                    if let Some(c) = assigned(&runtime, &actors, process, &reader_name, phase).await
                    {
                        break c;
                    }
                    sleep(&runtime, Duration::from_millis(100)).await;
                };
                // A fresh consumer starts from the beginning; move it to the positions
                // the last `ok` op left (nothing in between counted).
                if !roll_back(&mut reader, &before).await {
                    consumer = None;
                    producer = producer.filter(usable);
                    continue;
                }
            }
            // A producer that could not abort cleanly is replaced (its successor's
            // init aborts whatever it left open).
            producer = producer.filter(usable);
        }
        consumer = Some(reader);
    }
    drop(producer);
    actors.control.lock().producers_done += 1;
}

/// Whether a producer instance can run another transaction.
fn usable<R: Runtime>(producer: &Producer<R>) -> bool {
    producer.is_ready_for_transactions()
}

/// Send `writes` and the consumed offset (`consumed`: group, offset of `TOPIC`-0) in one
/// transaction, poll the reader, commit or abort. Returns the outcome, each write's
/// acknowledged offset, and what the poll read.
async fn run_txn<R: Runtime>(
    producer: &Producer<R>,
    reader: &mut Consumer<R>,
    writes: &[(i32, u64)],
    consumed: (&str, i64),
    commit: bool,
) -> (Outcome, Vec<Option<i64>>, Vec<weir_client::ConsumerRecord>) {
    let mut offsets = vec![None; writes.len()];
    if let Err(error) = producer.begin_transaction().await {
        return (Outcome::Aborted(error.to_string()), offsets, Vec::new());
    }
    let mut failure: Option<String> = None;
    let mut pending = Vec::new();
    for (partition, value) in writes {
        let payload = Some(Bytes::from(value.to_string()));
        match producer
            .send_txn(TOPIC, Some(*partition), None, payload, Vec::new())
            .await
        {
            Ok(delivery) => pending.push(Some(delivery)),
            Err(error) => {
                failure = Some(error.to_string());
                pending.push(None);
                break;
            }
        }
    }
    for (slot, delivery) in offsets.iter_mut().zip(pending) {
        let Some(delivery) = delivery else { continue };
        match delivery.await {
            Ok(metadata) => *slot = Some(metadata.offset),
            Err(error) => {
                failure.get_or_insert_with(|| error.to_string());
            }
        }
    }
    if failure.is_none() {
        let (group, offset) = consumed;
        let offsets = [(TopicPartition::new(TOPIC, 0), offset)];
        if let Err(error) = producer.send_offsets_to_transaction(&offsets, group).await {
            failure = Some(format!("offsets: {error}"));
        }
    }
    let reads = match reader.poll(Duration::from_millis(100)).await {
        Ok(records) => records,
        Err(error) => {
            failure.get_or_insert_with(|| format!("poll: {error}"));
            Vec::new()
        }
    };
    if commit && failure.is_none() {
        return match producer.commit_transaction().await {
            Ok(()) => (Outcome::Committed, offsets, reads),
            Err(error) => {
                let why = format!("commit: {error}");
                // Settle the transaction either way (abort or re-init).
                let _ = producer.abort_transaction().await;
                (Outcome::Unknown(why), offsets, reads)
            }
        };
    }
    let why = failure.unwrap_or_else(|| "aborted by the workload".to_owned());
    let _ = producer.abort_transaction().await;
    (Outcome::Aborted(why), offsets, reads)
}

/// The zombie test (see the module doc).
async fn zombie<R: Runtime>(runtime: R, actors: Actors, index: usize) {
    let name = format!("producer-{index}");
    let transactional_id = "txn-zombie";
    let recorder = actors.recorder.clone();
    let mut rng = Rng::fork(actors.seed, "txn-zombie");
    let mut next_value = (index as u64) * 1_000_000;
    let partitions = actors.spec.partitions;
    let first = rng.below(partitions as u64) as i32;
    let second = (first + 1) % partitions;
    // A: a transaction with acknowledged writes (retried until one gets them).
    let (zombie, process, mut writes, mut offsets) = loop {
        let process = recorder.process();
        let zombie = init_producer(&runtime, &actors, &format!("{name}-a"), transactional_id).await;
        let writes: Vec<(i32, u64)> = vec![(first, next_value), (second, next_value + 1)];
        next_value += 2;
        let invoke = writes
            .iter()
            .map(|(p, v)| Mop::send(key_of(*p), *v))
            .collect();
        recorder.event(
            process,
            Kind::Invoke,
            F::Txn,
            Value::Mops(invoke),
            now_ns(&runtime),
            Phase::Main,
            None,
            false,
        );
        let mut offsets: Vec<Option<i64>> = vec![None; writes.len()];
        let mut acked = zombie.begin_transaction().await.is_ok();
        for ((partition, value), slot) in writes.iter().zip(offsets.iter_mut()) {
            if !acked {
                break;
            }
            let payload = Some(Bytes::from(value.to_string()));
            acked = match zombie
                .send_txn(TOPIC, Some(*partition), None, payload, Vec::new())
                .await
            {
                Ok(delivery) => match delivery.await {
                    Ok(metadata) => {
                        *slot = Some(metadata.offset);
                        true
                    }
                    Err(_) => false,
                },
                Err(_) => false,
            };
        }
        if acked {
            break (zombie, process, writes, offsets);
        }
        let _ = zombie.abort_transaction().await;
        record_txn(
            &runtime,
            &actors,
            process,
            &writes,
            &offsets,
            Kind::Fail,
            "zombie setup failed",
        );
    };
    // B fences A.
    let successor = init_producer(&runtime, &actors, &format!("{name}-b"), transactional_id).await;
    let fence_ns = now_ns(&runtime);
    // A must never write again: a send to a partition it already added (no coordinator
    // round trip on the client side, so only the broker's epoch check stops it), then a
    // commit.
    let value = next_value;
    next_value += 1;
    writes.push((first, value));
    offsets.push(None);
    let payload = Some(Bytes::from(value.to_string()));
    if let Ok(delivery) = zombie
        .send_txn(TOPIC, Some(first), None, payload, Vec::new())
        .await
    {
        if let Ok(metadata) = delivery.await {
            recorder.violation(format!(
                "fenced producer wrote value {value} to partition {first} at offset {} \
                 after the fence at {fence_ns} ns",
                metadata.offset
            ));
            if let Some(slot) = offsets.last_mut() {
                *slot = Some(metadata.offset);
            }
        }
    }
    if zombie.commit_transaction().await.is_ok() {
        recorder.violation(format!(
            "fenced producer committed after the fence at {fence_ns} ns"
        ));
    }
    let again = Some(Bytes::from(next_value.to_string()));
    if zombie
        .send_txn(TOPIC, Some(second), None, again, Vec::new())
        .await
        .is_ok()
    {
        recorder.violation("a fenced producer accepted another send");
    }
    drop(zombie);
    // Its transaction was aborted by B's init: nothing of it may ever be visible.
    record_txn(
        &runtime,
        &actors,
        process,
        &writes,
        &offsets,
        Kind::Fail,
        "fenced by a newer instance",
    );
    // B commits a transaction on the same partitions (its markers must not make any of
    // A's writes visible).
    let process = recorder.process();
    let writes: Vec<(i32, u64)> = vec![(first, next_value + 1), (second, next_value + 2)];
    let invoke = writes
        .iter()
        .map(|(p, v)| Mop::send(key_of(*p), *v))
        .collect();
    recorder.event(
        process,
        Kind::Invoke,
        F::Txn,
        Value::Mops(invoke),
        now_ns(&runtime),
        Phase::Main,
        None,
        false,
    );
    let mut offsets = vec![None; writes.len()];
    let mut failure = successor
        .begin_transaction()
        .await
        .err()
        .map(|e| e.to_string());
    for ((partition, value), slot) in writes.iter().zip(offsets.iter_mut()) {
        if failure.is_some() {
            break;
        }
        let payload = Some(Bytes::from(value.to_string()));
        match successor
            .send_txn(TOPIC, Some(*partition), None, payload, Vec::new())
            .await
        {
            Ok(delivery) => match delivery.await {
                Ok(metadata) => *slot = Some(metadata.offset),
                Err(error) => failure = Some(error.to_string()),
            },
            Err(error) => failure = Some(error.to_string()),
        }
    }
    match failure {
        Some(why) => {
            let _ = successor.abort_transaction().await;
            record_txn(
                &runtime,
                &actors,
                process,
                &writes,
                &offsets,
                Kind::Fail,
                &why,
            );
        }
        None => match successor.commit_transaction().await {
            Ok(()) => record_txn(&runtime, &actors, process, &writes, &offsets, Kind::Ok, ""),
            Err(error) => {
                let why = format!("commit: {error}");
                let _ = successor.abort_transaction().await;
                record_txn(
                    &runtime,
                    &actors,
                    process,
                    &writes,
                    &offsets,
                    Kind::Info,
                    &why,
                );
            }
        },
    }
    drop(successor);
    actors.control.lock().producers_done += 1;
}

fn record_txn<R: Runtime>(
    runtime: &R,
    actors: &Actors,
    process: u64,
    writes: &[(i32, u64)],
    offsets: &[Option<i64>],
    kind: Kind,
    why: &str,
) {
    let mops = writes
        .iter()
        .zip(offsets)
        .map(|((p, v), offset)| match offset {
            Some(offset) => Mop::sent(key_of(*p), *offset, *v),
            None => Mop::send(key_of(*p), *v),
        })
        .collect();
    let error = (kind != Kind::Ok).then(|| why.to_owned());
    actors.recorder.event(
        process,
        kind,
        F::Txn,
        Value::Mops(mops),
        now_ns(runtime),
        Phase::Main,
        error,
        false,
    );
}

/// Producer actor `index`: a transactional producer, or the zombie test.
pub async fn producer<R: Runtime>(runtime: R, actors: Actors, index: usize) {
    if index < TXN_PRODUCERS {
        txn_producer(runtime, actors, index).await;
    } else {
        zombie(runtime, actors, index).await;
    }
}

/// One recorded read_committed poll plus the LSO check; `Err` means the process retires.
async fn checked_poll<R: Runtime>(
    runtime: &R,
    actors: &Actors,
    process: u64,
    consumer: &mut Consumer<R>,
    phase: Phase,
) -> Result<(), ()> {
    let recorder = &actors.recorder;
    let invoke = Value::Mops(vec![Mop::poll()]);
    recorder.event(
        process,
        Kind::Invoke,
        F::Poll,
        invoke.clone(),
        now_ns(runtime),
        phase,
        None,
        false,
    );
    let result = consumer.poll(Duration::from_millis(300)).await;
    let end = now_ns(runtime);
    let records = match result {
        Ok(records) => records,
        Err(error) => {
            let error = Some(error.to_string());
            recorder.event(
                process,
                Kind::Info,
                F::Poll,
                invoke,
                end,
                phase,
                error,
                false,
            );
            return Err(());
        }
    };
    let reads = reads_of(actors, &records);
    recorder.event(
        process,
        Kind::Ok,
        F::Poll,
        Value::Mops(vec![Mop::polled(reads)]),
        end,
        phase,
        None,
        false,
    );
    if records.is_empty() {
        return Ok(());
    }
    // The last stable offset now is >= the one the fetch saw (it never decreases), so a
    // record at or above it was above the LSO when it was served.
    let queries: Vec<(TopicPartition, i64)> = (0..actors.spec.partitions)
        .map(|p| (TopicPartition::new(TOPIC, p), LATEST_TIMESTAMP))
        .collect();
    let Ok(answers) = consumer.cluster().list_offsets(&queries, true).await else {
        return Ok(());
    };
    for (tp, answer) in answers {
        let Ok(answer) = answer else { continue };
        let beyond = records
            .iter()
            .filter(|r| r.partition == tp.partition && r.offset >= answer.offset)
            .map(|r| r.offset)
            .max();
        if let Some(offset) = beyond {
            recorder.violation(format!(
                "read_committed poll returned {tp} offset {offset} at or above the last \
                 stable offset {}",
                answer.offset
            ));
        }
    }
    Ok(())
}

/// The main-phase read_committed consumer.
pub async fn consumer<R: Runtime>(runtime: R, actors: Actors) {
    'process: while !actors.control.final_phase() {
        let process = actors.recorder.process();
        let Some(mut consumer) =
            assigned(&runtime, &actors, process, "consumer", Phase::Main).await
        else {
            sleep(&runtime, Duration::from_millis(200)).await;
            continue;
        };
        while !actors.control.final_phase() {
            if checked_poll(&runtime, &actors, process, &mut consumer, Phase::Main)
                .await
                .is_err()
            {
                continue 'process;
            }
        }
    }
}

/// The final phase: read everything read_committed, check the transactions' visibility,
/// audit the CRCs.
pub async fn final_reader<R: Runtime>(runtime: R, actors: Actors) {
    while !actors.control.final_phase() {
        sleep(&runtime, Duration::from_millis(50)).await;
    }
    let deadline = runtime.now() + FINAL_PHASE_BUDGET;
    if read_to_end(&runtime, &actors, deadline).await {
        check_visibility(&actors);
        check_txn_offsets(&runtime, &actors, deadline).await;
    } else {
        actors
            .recorder
            .violation("final read_committed reads did not reach the high watermark in time");
    }
    workload::audit(&runtime, &actors, deadline).await;
    actors.control.lock().final_done = true;
}

async fn read_to_end<R: Runtime>(runtime: &R, actors: &Actors, deadline: Duration) -> bool {
    'process: while runtime.now() < deadline {
        let process = actors.recorder.process();
        let Some(mut consumer) =
            assigned(runtime, actors, process, "final-reader", Phase::Final).await
        else {
            sleep(runtime, Duration::from_millis(200)).await;
            continue;
        };
        while runtime.now() < deadline {
            if checked_poll(runtime, actors, process, &mut consumer, Phase::Final)
                .await
                .is_err()
            {
                continue 'process;
            }
            let behind: Vec<(i32, i64, i64)> = (0..actors.spec.partitions)
                .map(|p| {
                    let position = consumer.position(TOPIC, p).unwrap_or(-1);
                    let high_watermark = consumer.high_watermark(TOPIC, p).unwrap_or(-1);
                    (p, position, high_watermark)
                })
                .filter(|(_, position, high_watermark)| {
                    *high_watermark < 0 || position < high_watermark
                })
                .collect();
            // The fetched high watermarks may be stale: ask the broker for the live ones
            // and the last stable offsets too, so that a transaction still open (a dead
            // producer's, aborted only at its timeout) is waited out, never read past.
            if behind.is_empty() && settled(actors, &consumer).await {
                return true;
            }
            if runtime.now() >= deadline {
                actors.recorder.violation(format!(
                    "final reads stuck: (partition, position, high watermark) {behind:?}"
                ));
            }
        }
    }
    false
}

/// True when, by the broker's answers now, every partition's last stable offset equals its
/// high watermark (no transaction is open) and `consumer`'s position has reached it. A
/// failed query is "not yet": the caller polls again until its deadline.
async fn settled<R: Runtime>(actors: &Actors, consumer: &Consumer<R>) -> bool {
    let queries: Vec<(TopicPartition, i64)> = (0..actors.spec.partitions)
        .map(|p| (TopicPartition::new(TOPIC, p), LATEST_TIMESTAMP))
        .collect();
    let cluster = consumer.cluster();
    let (Ok(stable), Ok(high)) = (
        cluster.list_offsets(&queries, true).await,
        cluster.list_offsets(&queries, false).await,
    ) else {
        return false;
    };
    let offsets = |answers: Vec<(
        TopicPartition,
        Result<weir_client::driver::cluster::OffsetAnswer, ClientError>,
    )>| {
        (answers.into_iter())
            .map(|(tp, answer)| (tp.partition, answer.map_or(-1, |a| a.offset)))
            .collect::<std::collections::BTreeMap<i32, i64>>()
    };
    let (stable, high) = (offsets(stable), offsets(high));
    (0..actors.spec.partitions).all(|p| {
        let (lso, hw) = (stable.get(&p).copied(), high.get(&p).copied());
        let position = consumer.position(TOPIC, p).unwrap_or(-1);
        matches!((lso, hw), (Some(lso), Some(hw)) if lso >= 0 && lso == hw && position >= hw)
    })
}

/// All-or-nothing for committed and unknown transactions, nothing for aborted ones,
/// judged from the history once the final reads caught up.
fn check_visibility(actors: &Actors) {
    let history = actors.recorder.history();
    let mut final_reads: BTreeSet<(u32, u64)> = BTreeSet::new();
    let mut any_reads: BTreeSet<(u32, u64)> = BTreeSet::new();
    for event in &history.events {
        if event.kind != Kind::Ok {
            continue;
        }
        for mop in event.mops() {
            if let Mop::Poll(Some(reads)) = mop {
                for (key, records) in reads {
                    for (_, value) in records {
                        any_reads.insert((*key, *value));
                        if event.phase == Phase::Final {
                            final_reads.insert((*key, *value));
                        }
                    }
                }
            }
        }
    }
    for event in &history.events {
        if event.f != F::Txn || event.kind == Kind::Invoke {
            continue;
        }
        let sent: Vec<(u32, u64)> = event
            .mops()
            .iter()
            .filter_map(|mop| match mop {
                Mop::Send { key, value, .. } => Some((*key, *value)),
                _ => None,
            })
            .collect();
        let seen: Vec<&(u32, u64)> = sent.iter().filter(|w| final_reads.contains(w)).collect();
        match event.kind {
            Kind::Ok if seen.len() != sent.len() => actors.recorder.violation(format!(
                "committed transaction {sent:?}: only {seen:?} visible to read_committed"
            )),
            Kind::Info if !seen.is_empty() && seen.len() != sent.len() => {
                actors.recorder.violation(format!(
                    "transaction {sent:?} (commit outcome unknown) partly visible: {seen:?}"
                ))
            }
            Kind::Fail => {
                let read: Vec<&(u32, u64)> =
                    sent.iter().filter(|w| any_reads.contains(w)).collect();
                if !read.is_empty() {
                    actors.recorder.violation(format!(
                        "aborted or fenced transaction {sent:?}: {read:?} read by \
                         read_committed consumers"
                    ));
                }
            }
            _ => {}
        }
    }
}

/// How long the final check waits for a group's committed offset to reach the last
/// committed transaction's (its marker may still travel to the group's shard).
const OFFSETS_SETTLE: Duration = Duration::from_secs(10);

/// Exactly-once offsets: each `eos-<k>` group's committed offset of `TOPIC`-0 is the
/// ordinal of its producer's last committed transaction, or of a later one whose commit's
/// outcome is unknown; never an aborted transaction's (it would make a consumer skip
/// input whose output was discarded), never an older one once a later one committed (the
/// consumer would process input twice).
async fn check_txn_offsets<R: Runtime>(runtime: &R, actors: &Actors, deadline: Duration) {
    let sent = actors.control.lock().txn_offsets.clone();
    let admin = loop {
        let config = client_config(&actors.bootstrap, "offsets-checker");
        match weir_client::Admin::connect(runtime.clone(), config).await {
            Ok(admin) => break admin,
            Err(_) if runtime.now() < deadline => sleep(runtime, Duration::from_millis(100)).await,
            Err(error) => {
                actors
                    .recorder
                    .violation(format!("offsets check: no admin client: {error}"));
                return;
            }
        }
    };
    let tp = TopicPartition::new(TOPIC, 0);
    for (index, transactions) in sent {
        let group = eos_group(index);
        let latest = (transactions.iter())
            .filter(|(_, ended)| *ended == Ended::Committed)
            .map(|(ordinal, _)| *ordinal)
            .max();
        let ended_of = |offset: i64| {
            (transactions.iter())
                .find(|(ordinal, _)| *ordinal == offset)
                .map(|(_, ended)| *ended)
        };
        let settle = runtime.now() + OFFSETS_SETTLE;
        loop {
            let found = (admin.list_group_offsets(&group, Some(std::slice::from_ref(&tp)))).await;
            let verdict = match found {
                Err(error) => Err(format!("not readable: {error}")),
                Ok(offsets) => {
                    let committed = offsets.get(&tp).copied();
                    match (committed, latest) {
                        (None, None) => Ok(()),
                        (Some(offset), _) if ended_of(offset) == Some(Ended::Aborted) => {
                            actors.recorder.violation(format!(
                                "group {group} committed offset {offset}, sent by an aborted \
                                 transaction"
                            ));
                            return;
                        }
                        (Some(offset), _) if ended_of(offset).is_none() => {
                            actors.recorder.violation(format!(
                                "group {group} committed offset {offset}, which no \
                                 transaction sent"
                            ));
                            return;
                        }
                        (Some(offset), latest) if latest.is_none_or(|l| offset >= l) => Ok(()),
                        (committed, latest) => Err(format!(
                            "committed {committed:?}, last committed transaction's {latest:?}"
                        )),
                    }
                }
            };
            match verdict {
                Ok(()) => break,
                Err(why) if runtime.now() >= settle.min(deadline) => {
                    actors
                        .recorder
                        .violation(format!("group {group}: lost transactional offset: {why}"));
                    break;
                }
                Err(_) => sleep(runtime, Duration::from_millis(200)).await,
            }
        }
    }
}
