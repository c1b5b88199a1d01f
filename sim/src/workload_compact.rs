//! Compaction workloads (`compact`, one broker; `cluster-compact`, three): keyed writes to
//! a compacted topic while the log cleaner runs every few milliseconds under faults, and
//! the properties a compacted log promises (issue 14).
//!
//! Every broker runs with `cleanup.policy=compact` as the default of every topic (the
//! workload's topic takes it), `segment.bytes` of a few batches, `min.cleanable.dirty.ratio`
//! 0.01, `log.cleaner.backoff.ms` 20 and `delete.retention.ms` 400
//! (`workload::tune_server`), so segments roll and get cleaned many times per run, and
//! tombstones are removed within it. BUGGIFY adds early rolls and the cleaner's own points.
//!
//! Actors:
//! - `producer-0`, `producer-1`: idempotent acks=all producers, [`SENDS`] sequential sends
//!   each, to one of [`KEYS`] keys (murmur2 partitioning), a tombstone (null value) with
//!   probability [`TOMBSTONE_PER_MILLE`]; values are unique over the run;
//! - `producer-2`: a transactional producer
//!   (`transactional.id` `compact-txn`), [`TXNS`]
//!   transactions of 1-3 keyed sends (single node: also to [`TXN_ONLY_KEYS`] keys of its
//!   own), acks awaited, held open 0-150 ms (so the cleaner runs
//!   while they are open and segments roll under them), then committed (60 %) or aborted;
//! - `consumer`: read_committed, assigns every partition from the beginning and polls
//!   during the main phase, restarting on errors;
//! - `final-reader`: read_committed, reads every partition from the beginning to its high
//!   watermark once the harness healed everything, then judges the run (below).
//!
//! The Jepsen checker cannot judge a compacted log (compaction removes acknowledged
//! records by design), so this workload records its operations as `debug` events (in the
//! trace hash, ignored by the checker) and checks its own properties, as harness
//! violations:
//! - (a) the latest acknowledged write of every key (plain acks, and the sends of
//!   committed transactions) is readable at its acknowledged offset in the final reads,
//!   unless a later record of that key is visible (a write whose outcome was unknown may
//!   supersede it), it is a tombstone (removed after `delete.retention.ms`), or a tombstone
//!   of that key with an unknown outcome exists (it may have superseded it, then expired);
//! - (b) nothing read was never sent: every value read was sent with the key it is read
//!   under, in that key's partition; every tombstone read is of a key that had one sent;
//!   a value acknowledged at an offset is read only there, an acknowledged offset holds
//!   only its acknowledged record, an offset never reads as two records, and every
//!   reader's offsets strictly increase per partition;
//! - (d) no value of an aborted transaction (abort acknowledged, or commit never asked)
//!   is read by any read_committed reader;
//! - compaction happened: some acknowledged, superseded record is absent from the final
//!   reads (only the cleaner removes acknowledged records), so a run cannot pass
//!   vacuously.
//!
//! In `cluster-compact` the harness (`cluster_harness`) replaces the byte-exact replica
//! comparison (replicas clean on their own schedules, so which superseded records remain
//! differs) with (c): once the ISRs are full again, every replica's log (from its
//! `HostDisk`) must give the same latest value per key as the leader's, the value the
//! final reads served; any replica could take over.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use weir_client::{Acks, ConsumerConfig, Producer, ProducerConfig};
use weir_jepsen::{Kind, Phase, Value, F};
use weir_runtime::Runtime;

use crate::disk::DiskFaults;
use crate::seed::Rng;
use crate::shared_log::{CompactLog, CompactWrite, TxnEnd};
use crate::workload::{
    self, assigned_consumer, client_config, now_ns, sleep, wait_topic, Actors, Spec,
    BUGGIFY_PER_MILLE, FINAL_PHASE_BUDGET, TOPIC,
};

/// Keys written (few, so every key is written many times and compaction has work).
pub const KEYS: u64 = 6;
/// Sends per plain producer (single node; cluster producers stop when the harness says).
pub const SENDS: usize = 50;
/// Transactions of the transactional producer.
pub const TXNS: usize = 24;
/// Keys only the transactional producer writes (after [`KEYS`]: `k6`..`k9`), single node.
/// A key's last write is then often a transaction's, so a cleaner that wrongly treats an
/// open transaction as decided (`planted-compact-past-lso`) more often removes the value
/// an abort leaves as the latest: with the shared keys alone the plain producers usually
/// wrote a key again later, and that bug was caught in 1 of 40-100 seeds.
pub const TXN_ONLY_KEYS: u64 = 4;
/// Share of plain sends that are tombstones.
pub const TOMBSTONE_PER_MILLE: u32 = 150;
/// Index of the transactional producer.
const TXN_PRODUCER: usize = 2;
/// Producer actors: two plain, one transactional.
const PRODUCERS: usize = 3;
/// Transaction timeout of the transactional producer.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(4);

/// The single-node workload's spec.
pub fn spec(base: Spec, crashy_disk: DiskFaults) -> Spec {
    Spec {
        producers: PRODUCERS,
        sends_per_producer: SENDS,
        partitions: 2,
        crashes: true,
        net_faults: true,
        clock_jumps: true,
        disk: crashy_disk,
        idempotent: true,
        buggify_per_mille: BUGGIFY_PER_MILLE,
        compact: true,
        ..base
    }
}

/// The cluster workload's spec, from `cluster-crash`'s, with all three producers. (Its
/// transactional producer found the stale-coordinator bug of docs/simulation.md, Status:
/// seeds 1, 3 and 9 at commit 3bf74c5.)
pub fn cluster_spec(cluster: Spec) -> Spec {
    Spec {
        producers: TXN_PRODUCER + 1,
        partitions: 2,
        buggify_per_mille: BUGGIFY_PER_MILLE,
        compact: true,
        ..cluster
    }
}

/// A line of the history for the trace hash and `--verbose`: a `debug` op (the Jepsen
/// checker ignores it) on a process of its own.
fn history_note<R: Runtime>(runtime: &R, actors: &Actors, note: serde_json::Value) {
    let process = actors.recorder.process();
    let now = now_ns(runtime);
    for kind in [Kind::Invoke, Kind::Ok] {
        let value = Value::Other(note.clone());
        (actors.recorder).event(
            process,
            kind,
            F::Debug,
            value,
            now,
            Phase::Main,
            None,
            false,
        );
    }
}

fn partition_of(spec: &Spec, key: &str) -> i32 {
    weir_wire::murmur2::partition_for_key(key.as_bytes(), spec.partitions)
}

/// One producer actor: plain (idempotent) or, for [`TXN_PRODUCER`], transactional.
pub async fn producer<R: Runtime>(runtime: R, actors: Actors, index: usize) {
    wait_topic(&runtime, &actors).await;
    if index == TXN_PRODUCER {
        txn_producer(&runtime, &actors).await;
    } else {
        plain_producer(&runtime, &actors, index).await;
    }
    actors.control.lock().producers_done += 1;
}

fn stop_producing(actors: &Actors) -> bool {
    actors.spec.cluster_nodes > 0 && actors.control.lock().cluster.stop_producing
}

/// Registers a write about to be sent; returns its index in the log.
fn invoke(actors: &Actors, write: CompactWrite) -> usize {
    let mut control = actors.control.lock();
    let log = &mut control.compact;
    log.writes.push(write);
    log.writes.len() - 1
}

/// Cluster runs: the harness's fault schedule watches pending sends and acks per partition.
fn cluster_pending(actors: &Actors, partition: i32, delta: i64) {
    if actors.spec.cluster_nodes == 0 {
        return;
    }
    let mut control = actors.control.lock();
    let pending = control.cluster.pending.entry(partition).or_default();
    *pending = if delta > 0 {
        *pending + 1
    } else {
        pending.saturating_sub(1)
    };
}

fn cluster_acked(actors: &Actors, partition: i32) {
    if actors.spec.cluster_nodes > 0 {
        *actors
            .control
            .lock()
            .cluster
            .acks
            .entry(partition)
            .or_default() += 1;
    }
}

async fn plain_producer<R: Runtime>(runtime: &R, actors: &Actors, index: usize) {
    let spec = actors.spec;
    let mut rng = Rng::fork(actors.seed, &format!("compact-producer-{index}"));
    let config = ProducerConfig {
        client: client_config(&actors.bootstrap, &format!("producer-{index}")),
        acks: Acks::All,
        linger: Duration::from_millis(2),
        delivery_timeout: Duration::from_secs(8),
        ack_timeout: Duration::from_secs(3),
        idempotent: true,
        ..ProducerConfig::default()
    };
    let mut client: Option<Producer<R>> = None;
    for sequence in 0..spec.sends_per_producer {
        if stop_producing(actors) {
            break;
        }
        sleep(runtime, Duration::from_millis(rng.between(0, 30))).await;
        let producer = loop {
            if let Some(producer) = &client {
                break producer.clone();
            }
            match Producer::connect(runtime.clone(), config.clone()).await {
                Ok(producer) => client = Some(producer),
                Err(_) => sleep(runtime, Duration::from_millis(100)).await,
            }
        };
        let key = format!("k{}", rng.below(KEYS));
        let value = (!rng.chance(TOMBSTONE_PER_MILLE)).then(|| format!("p{index}-{sequence}"));
        let partition = partition_of(&spec, &key);
        let write = invoke(
            actors,
            CompactWrite {
                key: key.clone(),
                value: value.clone(),
                txn: None,
                acked: None,
                unknown: false,
            },
        );
        cluster_pending(actors, partition, 1);
        let result = producer
            .send(
                TOPIC,
                None,
                Some(Bytes::from(key.clone())),
                value.clone().map(Bytes::from),
                Vec::new(),
            )
            .await;
        cluster_pending(actors, partition, -1);
        match result {
            Ok(metadata) => {
                cluster_acked(actors, partition);
                if metadata.partition != partition {
                    actors.recorder.violation(format!(
                        "key {key}: client partitioner chose {} not {partition}",
                        metadata.partition
                    ));
                }
                actors.control.lock().compact.writes[write].acked =
                    Some((metadata.partition, metadata.offset));
                let note = serde_json::json!({"send": key, "value": value,
                    "partition": metadata.partition, "offset": metadata.offset});
                history_note(runtime, actors, note);
            }
            Err(error) => {
                actors.control.lock().compact.writes[write].unknown = true;
                let note = serde_json::json!({"send": key, "value": value,
                    "error": error.to_string()});
                history_note(runtime, actors, note);
                client = None;
            }
        }
    }
}

async fn txn_producer<R: Runtime>(runtime: &R, actors: &Actors) {
    let spec = actors.spec;
    let name = format!("producer-{TXN_PRODUCER}");
    let mut rng = Rng::fork(actors.seed, "compact-txn");
    let config = ProducerConfig {
        client: client_config(&actors.bootstrap, &name),
        linger: Duration::from_millis(2),
        delivery_timeout: Duration::from_secs(8),
        ack_timeout: Duration::from_secs(3),
        transactional_id: Some("compact-txn".to_owned()),
        transaction_timeout: TRANSACTION_TIMEOUT,
        ..ProducerConfig::default()
    };
    let mut client: Option<Producer<R>> = None;
    let txns = if spec.cluster_nodes > 0 { 400 } else { TXNS };
    for number in 0..txns {
        if stop_producing(actors) {
            break;
        }
        sleep(runtime, Duration::from_millis(rng.between(0, 60))).await;
        let producer = loop {
            if let Some(producer) = &client {
                break producer.clone();
            }
            if let Ok(producer) = Producer::connect(runtime.clone(), config.clone()).await {
                if producer.init_transactions().await.is_ok() {
                    client = Some(producer);
                    continue;
                }
            }
            sleep(runtime, Duration::from_millis(100)).await;
        };
        let txn = {
            let mut control = actors.control.lock();
            control.compact.txns.push(TxnEnd::Open);
            control.compact.txns.len() - 1
        };
        let commit = rng.chance(600);
        let sends = rng.between(1, 3) as usize;
        let keys = match spec.cluster_nodes {
            0 => KEYS + TXN_ONLY_KEYS,
            _ => KEYS,
        };
        let mut writes = Vec::new();
        for i in 0..sends {
            let key = format!("k{}", rng.below(keys));
            let value = format!("t{number}-{i}");
            writes.push((key, value));
        }
        let hold = Duration::from_millis(rng.between(0, 150));
        let end = run_txn(runtime, actors, &producer, txn, &writes, commit, hold).await;
        actors.control.lock().compact.txns[txn] = end;
        let note = serde_json::json!({"txn": number, "writes": writes, "end": format!("{end:?}")});
        history_note(runtime, actors, note);
        let clean = end == TxnEnd::Committed || (end == TxnEnd::Aborted && !commit);
        if !clean {
            // Anything but a clean commit or a clean abort: a fresh producer (its
            // init_transactions ends whatever the old one left open).
            client = None;
        }
    }
}

async fn run_txn<R: Runtime>(
    runtime: &R,
    actors: &Actors,
    producer: &Producer<R>,
    txn: usize,
    writes: &[(String, String)],
    commit: bool,
    hold: Duration,
) -> TxnEnd {
    if producer.begin_transaction().await.is_err() {
        return TxnEnd::Aborted;
    }
    let mut failed = false;
    let mut pending = Vec::new();
    for (key, value) in writes {
        let index = invoke(
            actors,
            CompactWrite {
                key: key.clone(),
                value: Some(value.clone()),
                txn: Some(txn),
                acked: None,
                unknown: false,
            },
        );
        let sent = producer
            .send_txn(
                TOPIC,
                None,
                Some(Bytes::from(key.clone())),
                Some(Bytes::from(value.clone())),
                Vec::new(),
            )
            .await;
        match sent {
            Ok(delivery) => pending.push((index, delivery)),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    for (index, delivery) in pending {
        match delivery.await {
            Ok(metadata) => {
                actors.control.lock().compact.writes[index].acked =
                    Some((metadata.partition, metadata.offset));
            }
            Err(_) => failed = true,
        }
    }
    sleep(runtime, hold).await;
    if commit && !failed {
        return match producer.commit_transaction().await {
            Ok(()) => TxnEnd::Committed,
            Err(_) => {
                let _ = producer.abort_transaction().await;
                TxnEnd::Unknown
            }
        };
    }
    // The commit was never asked: whatever the abort's answer, the transaction aborts
    // (explicitly, at its timeout, or at the next producer's init_transactions).
    let _ = producer.abort_transaction().await;
    TxnEnd::Aborted
}

fn read_committed(actors: &Actors, name: &str) -> ConsumerConfig {
    ConsumerConfig {
        read_committed: true,
        fetch_max_wait: Duration::from_millis(100),
        ..workload::consumer_config(&actors.bootstrap, name)
    }
}

/// What one reader process saw last per partition (offsets must strictly increase).
#[derive(Default)]
struct ReaderState {
    last: BTreeMap<i32, i64>,
}

/// Records the records of one poll (checks (b)'s per-read parts at once).
fn observe(
    actors: &Actors,
    reader: &mut ReaderState,
    records: &[weir_client::ConsumerRecord],
    final_phase: bool,
) {
    let mut control = actors.control.lock();
    let log = &mut control.compact;
    for record in records {
        let (partition, offset) = (record.partition, record.offset);
        if let Some(&last) = reader.last.get(&partition) {
            if offset <= last {
                actors.recorder.violation(format!(
                    "partition {partition}: offset {offset} read after offset {last}"
                ));
            }
        }
        reader.last.insert(partition, offset);
        let text = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
        let Some(key) = text(&record.key) else {
            actors.recorder.violation(format!(
                "partition {partition} offset {offset}: a record without a key"
            ));
            continue;
        };
        let read = (key, text(&record.value));
        match log.reads.get(&(partition, offset)) {
            Some(before) if *before != read => actors.recorder.violation(format!(
                "partition {partition} offset {offset} read as {before:?} and as {read:?}"
            )),
            Some(_) => {}
            None => {
                log.reads.insert((partition, offset), read.clone());
            }
        }
        if final_phase {
            log.final_records += 1;
            log.final_reads.insert((partition, offset), read);
        }
    }
}

/// The main-phase consumer: read_committed, every partition from the beginning.
pub async fn consumer<R: Runtime>(runtime: R, actors: Actors) {
    wait_topic(&runtime, &actors).await;
    while !actors.control.final_phase() {
        let process = actors.recorder.process();
        let config = read_committed(&actors, "consumer");
        let Some(mut consumer) =
            assigned_consumer(&runtime, &actors, process, config, Phase::Main).await
        else {
            sleep(&runtime, Duration::from_millis(200)).await;
            continue;
        };
        let mut reader = ReaderState::default();
        while !actors.control.final_phase() {
            match consumer.poll(Duration::from_millis(300)).await {
                Ok(records) => observe(&actors, &mut reader, &records, false),
                Err(_) => break,
            }
        }
    }
}

/// The final phase: read everything, then judge the run.
pub async fn final_reader<R: Runtime>(runtime: R, actors: Actors) {
    while !actors.control.final_phase() {
        sleep(&runtime, Duration::from_millis(50)).await;
    }
    let deadline = runtime.now() + FINAL_PHASE_BUDGET;
    let mut caught_up = false;
    'process: while runtime.now() < deadline {
        let process = actors.recorder.process();
        let config = read_committed(&actors, "final-reader");
        let Some(mut consumer) =
            assigned_consumer(&runtime, &actors, process, config, Phase::Final).await
        else {
            sleep(&runtime, Duration::from_millis(200)).await;
            continue;
        };
        // A new process reads from the beginning: its reads replace the last one's.
        actors.control.lock().compact.final_reads.clear();
        let mut reader = ReaderState::default();
        while runtime.now() < deadline {
            match consumer.poll(Duration::from_millis(300)).await {
                Ok(records) => observe(&actors, &mut reader, &records, true),
                Err(_) => continue 'process,
            }
            let done = (0..actors.spec.partitions).all(|p| {
                let position = consumer.position(TOPIC, p).unwrap_or(-1);
                let high_watermark = consumer.high_watermark(TOPIC, p).unwrap_or(-1);
                high_watermark >= 0 && position >= high_watermark
            });
            if done {
                caught_up = true;
                break 'process;
            }
        }
    }
    if !caught_up {
        actors
            .recorder
            .violation("final reads did not reach the high watermark in time");
    } else {
        let control = actors.control.lock();
        let (violations, removed) = judge(&actors.spec, &control.compact);
        drop(control);
        for violation in violations {
            actors.recorder.violation(violation);
        }
        let note = serde_json::json!({"acknowledged records compacted away": removed});
        history_note(&runtime, &actors, note);
    }
    actors.control.lock().final_done = true;
}

/// The end-of-run properties (see the module doc); returns the violations and how many
/// acknowledged, superseded records compaction removed.
pub fn judge(spec: &Spec, log: &CompactLog) -> (Vec<String>, usize) {
    let mut violations = Vec::new();
    let mut by_value: BTreeMap<&str, &CompactWrite> = BTreeMap::new();
    let mut acked_at: BTreeMap<(i32, i64), &CompactWrite> = BTreeMap::new();
    let mut tombstone_keys = BTreeSet::new();
    let mut unknown_tombstones = BTreeSet::new();
    for write in &log.writes {
        if let Some(value) = &write.value {
            by_value.insert(value, write);
        } else {
            tombstone_keys.insert(write.key.as_str());
            if write.acked.is_none() {
                unknown_tombstones.insert(write.key.as_str());
            }
        }
        if let Some(at) = write.acked {
            if let Some(other) = acked_at.insert(at, write) {
                violations.push(format!(
                    "partition {} offset {}: acknowledged for {other:?} and {write:?}",
                    at.0, at.1
                ));
            }
        }
    }
    let aborted = |write: &CompactWrite| {
        write
            .txn
            .is_some_and(|t| log.txns.get(t) == Some(&TxnEnd::Aborted))
    };
    // (b) and (d): every record read.
    for (&(partition, offset), (key, value)) in &log.reads {
        let at = format!("partition {partition} offset {offset}");
        if partition_of(spec, key) != partition {
            violations.push(format!("{at}: key {key} read in the wrong partition"));
        }
        if let Some(acked) = acked_at.get(&(partition, offset)) {
            if acked.key != *key || acked.value != *value {
                violations.push(format!(
                    "{at}: read {key}={value:?}, acknowledged {}={:?}",
                    acked.key, acked.value
                ));
            }
        }
        match value {
            Some(value) => match by_value.get(value.as_str()) {
                None => violations.push(format!("{at}: value {value} was never sent")),
                Some(sent) => {
                    if sent.key != *key {
                        violations.push(format!(
                            "{at}: value {value} read under key {key}, sent under {}",
                            sent.key
                        ));
                    }
                    if let Some(acked) = sent.acked {
                        if acked != (partition, offset) {
                            violations.push(format!(
                                "{at}: value {value} read there, acknowledged at partition \
                                 {} offset {}",
                                acked.0, acked.1
                            ));
                        }
                    }
                    if aborted(sent) {
                        violations.push(format!(
                            "{at}: value {value} of an aborted transaction read (read_committed)"
                        ));
                    }
                }
            },
            None if !tombstone_keys.contains(key.as_str()) => {
                violations.push(format!("{at}: a tombstone of {key}, never sent"));
            }
            None => {}
        }
    }
    // (a): the latest acknowledged write of every key.
    let mut latest: BTreeMap<(i32, &str), (i64, &CompactWrite)> = BTreeMap::new();
    for write in &log.writes {
        let committed = write
            .txn
            .is_none_or(|t| log.txns.get(t) == Some(&TxnEnd::Committed));
        let Some((partition, offset)) = write.acked else {
            continue;
        };
        if !committed {
            continue;
        }
        let slot = latest
            .entry((partition, write.key.as_str()))
            .or_insert((offset, write));
        if offset > slot.0 {
            *slot = (offset, write);
        }
    }
    for (&(partition, key), &(offset, write)) in &latest {
        let superseded = (log
            .final_reads
            .range((partition, offset + 1)..(partition + 1, 0)))
        .any(|(_, (k, _))| k == key);
        if superseded {
            continue;
        }
        match log.final_reads.get(&(partition, offset)) {
            Some((k, v)) if k == key && *v == write.value => {}
            Some(other) => violations.push(format!(
                "key {key}: latest acknowledged write {:?} at partition {partition} offset \
                 {offset} reads as {other:?}",
                write.value
            )),
            None if write.value.is_none() || unknown_tombstones.contains(key) => {}
            None => violations.push(format!(
                "key {key}: latest acknowledged value {:?} (partition {partition} offset \
                 {offset}) is gone from the final reads",
                write.value
            )),
        }
    }
    // Evidence that the cleaner ran: acknowledged plain records absent from the final
    // reads (aborted transactions' records are absent without it).
    let removed = (log.writes.iter())
        .filter(|w| w.txn.is_none())
        .filter_map(|w| w.acked)
        .filter(|at| !log.final_reads.contains_key(at))
        .count();
    if removed == 0 {
        violations.push(
            "no acknowledged record was compacted away: the run did not exercise compaction"
                .to_owned(),
        );
    }
    (violations, removed)
}

/// Latest value per key, as a read_committed consumer would see it.
type Latest = BTreeMap<String, String>;

/// The latest value per key of one log, `(offset, key, value)` in offset order, as a
/// read_committed consumer sees it: tombstones count as absent (one replica may have
/// removed a tombstone another still holds), values of transactions that did not commit
/// are skipped (a transaction whose commit outcome is unknown counts as committed when
/// some reader saw one of its values). Records of other topics (internal ones, markers)
/// have no workload key and are skipped.
fn latest_of<'a>(
    records: impl Iterator<Item = (Option<String>, Option<String>)> + 'a,
    log: &CompactLog,
    seen: &BTreeSet<&str>,
) -> Latest {
    let txn_of: BTreeMap<&str, usize> = (log.writes.iter())
        .filter_map(|w| Some((w.value.as_deref()?, w.txn?)))
        .collect();
    let mut latest = Latest::new();
    for (key, value) in records {
        let Some(key) = key.filter(|k| is_workload_key(k)) else {
            continue;
        };
        let Some(value) = value else {
            latest.remove(&key);
            continue;
        };
        if let Some(&txn) = txn_of.get(value.as_str()) {
            let visible = match log.txns.get(txn) {
                Some(TxnEnd::Committed) => true,
                Some(TxnEnd::Unknown) => seen.contains(value.as_str()),
                _ => false,
            };
            if !visible {
                continue;
            }
        }
        latest.insert(key, value);
    }
    latest
}

fn is_workload_key(key: &str) -> bool {
    key.strip_prefix('k')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// (c), cluster runs, once the ISRs are full again: every replica's log of a partition
/// (read from its disk) gives the same latest value per key as the leader's, and the
/// leader's is what the final reads served. `leaders` maps partitions to `(leader,
/// epoch)`. Returns the violations and how many replica logs were compared.
pub fn compare_latest(
    spec: &Spec,
    disks: &[(i32, crate::disk::HostDisk)],
    leaders: &BTreeMap<i32, (i32, i32)>,
    log: &CompactLog,
) -> (Vec<String>, usize) {
    let text = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    let seen: BTreeSet<&str> = (log.reads.values())
        .filter_map(|(_, v)| v.as_deref())
        .collect();
    let mut replicas: BTreeMap<(i32, i32), Latest> = BTreeMap::new();
    for (id, disk) in disks {
        for records in disk.keyed_records().into_values() {
            let partition = (records.iter())
                .filter_map(|(_, key, _)| text(key))
                .find(|key| is_workload_key(key))
                .map(|key| partition_of(spec, &key));
            let Some(partition) = partition else {
                continue; // another topic
            };
            let pairs = records.iter().map(|(_, k, v)| (text(k), text(v)));
            replicas.insert((partition, *id), latest_of(pairs, log, &seen));
        }
    }
    let mut violations = Vec::new();
    let mut compared = 0;
    for (&partition, &(leader, epoch)) in leaders {
        let served = (log.final_reads.range((partition, 0)..(partition + 1, 0)))
            .map(|(_, (k, v))| (Some(k.clone()), v.clone()));
        let served = latest_of(served, log, &seen);
        let Some(reference) = replicas.get(&(partition, leader)) else {
            if !served.is_empty() {
                violations.push(format!(
                    "partition {partition}: leader {leader} (epoch {epoch}) holds no records"
                ));
            }
            continue;
        };
        if *reference != served {
            violations.push(format!(
                "partition {partition}: leader {leader} (epoch {epoch}) holds latest values \
                 {reference:?}, the final reads served {served:?}"
            ));
        }
        for ((p, id), latest) in &replicas {
            compared += usize::from(*p == partition);
            if *p == partition && *id != leader && latest != reference {
                violations.push(format!(
                    "replicas disagree on the latest values, partition {partition}: broker \
                         {id} holds {latest:?}, leader {leader} (epoch {epoch}) holds \
                         {reference:?}"
                ));
            }
        }
    }
    (violations, compared)
}
