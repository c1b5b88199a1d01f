//! Workloads: what the simulated clients do, through the real `weir-client`, and how each
//! operation is recorded. The actors are generic over `weir_runtime::Runtime`, so turmoil
//! and madsim run the same code.
//!
//! A run has two phases. In the main phase producers send values (unique per key) while a
//! consumer polls by assign and faults fly. When every producer is done the harness heals
//! everything and the final phase starts: a fresh consumer reads every partition from the
//! beginning up to its high watermark (`"phase": "final"`), and an auditor fetches raw
//! batches and checks every CRC itself (a corrupt batch must never be served).
//!
//! The history key of a record is its partition index; keyed records pick their partition
//! with Kafka's murmur2 partitioner (the client's, checked against our own computation).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use weir_client::{
    Acks, AutoOffsetReset, ClientConfig, Consumer, ConsumerConfig, Producer, ProducerConfig,
};
use weir_jepsen::{CheckConfig, Kind, Mop, Phase, Value, F};
use weir_runtime::Runtime;
use weir_wire::batch::{iter_batches, verify_crc};
use weir_wire::domain::{
    ApiRequest, ApiResponse, FetchPartition, FetchRecords, FetchRequest, FetchTopic, TopicRef,
};

use crate::disk::DiskFaults;
use crate::history::Recorder;
use crate::seed::Rng;

/// The topic every workload writes.
pub const TOPIC: &str = "sim";
/// The broker's host name under turmoil (which resolves names).
pub const BROKER_HOST: &str = "broker";
/// The broker's port.
pub const BROKER_PORT: u16 = 9092;

/// A named workload (the name is part of the reproduction command).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Workload {
    /// acks=all, keyed, no faults: the baseline.
    Produce,
    /// acks=all with broker crashes (unsynced data lost by seeded fates), fsync failures,
    /// corrupt reads and wall-clock jumps.
    ProduceCrash,
    /// acks=all, unkeyed, with partitions (one-way, two-way, isolating the broker), held
    /// links (pauses), latency and message loss.
    ProducePartition,
    /// acks=1 with crashes: on one node (no failover) acks=1 promises what acks=all does.
    Acks1,
    /// acks=0 with crashes: loss allowed, but nothing read may be invented or misplaced.
    Acks0,
    /// Idempotent producers (acks=all) under crashes, disk faults and network faults:
    /// retries of batches whose answers were lost must not be appended twice, so the
    /// checker treats a duplicate as a violation.
    IdempotentCrash,
    /// Transactional producers (commit or abort at random, several partitions per
    /// transaction, a zombie fenced by a second instance of its transactional id) and
    /// read_committed consumers, under network faults. See `workload_txn`.
    Txn,
    /// `Txn` under broker crashes, disk faults, network faults and clock jumps.
    TxnCrash,
    /// Consumer-group members (subscribe, poll, commit; leaving, rejoining and stalling
    /// past their session) while producers write. See `workload_group`.
    Group,
    /// `Group` under broker crashes, disk faults, network faults and clock jumps.
    GroupCrash,
    /// Three brokers in cluster mode, an RF=3 topic (`min.insync.replicas=2`), idempotent
    /// acks=all producers, while the harness crashes partition leaders (unsynced writes
    /// lost) and restarts them. See `workload_cluster`.
    ClusterCrash,
    /// The cluster of `ClusterCrash` while the harness isolates a partition leader (from
    /// everyone, or from the other brokers only) for longer than the broker session
    /// timeout, then heals.
    ClusterPartition,
    /// Five brokers, the RF=3 topic: two brokers that are not the controller crash at once;
    /// every partition with two live replicas must keep taking acks=all writes.
    ClusterTwoDown,
    /// Three brokers, the RF=3 topic, mixed faults: the active controller isolated past
    /// the session timeout, a broker paused (its links held, then released in a burst),
    /// added latency on a broker's links, and a power loss of every broker at once.
    ClusterMixed,
    /// `ClusterMixed` on five brokers, plus a quorum split (2|3, the controller on the
    /// minority side).
    ClusterMixed5,
    /// Three brokers, power losses only (every broker at once, unsynced writes lost, a
    /// partition leader sometimes back last): no acknowledged acks=all record may be lost
    /// (`weir.acks.all.durability = isr-fsync`, the default). Not in CI yet: it finds
    /// acknowledged writes lost (docs/simulation.md, Status).
    ClusterPower,
    /// Not in CI: three brokers with `weir.acks.all.durability = isr-memory`, power losses
    /// only. Shows that without `isr-fsync` a power loss can lose acknowledged writes.
    ClusterPowerMemory,
    /// Three brokers, the RF=3 topic, six idempotent producers: four times per run a
    /// partition leader and one other broker (a majority of brokers and of controller
    /// voters) crash at the same moment, once the leader's disk holds unsynced ops that the
    /// surviving follower already fetched, both losing every unsynced op; both restart
    /// after 0.7-2.5 s (the leader 1-3 ms after its partner) and the next fault follows
    /// 0.4-2.5 s later, without waiting for the cluster to recover. Not in CI yet: it finds
    /// acknowledged writes that a replica does not hold (docs/simulation.md, "Majority
    /// crash").
    ClusterMajorityCrash,
    /// A compacted topic (`cleanup.policy=compact`, tiny segments, the cleaner running
    /// every few milliseconds): keyed writes with tombstones from idempotent producers and
    /// a transactional producer (commits and aborts), under crashes, disk, network and
    /// clock faults; the latest acknowledged value of every key must stay readable. See
    /// `workload_compact`.
    Compact,
    /// `Compact` on three brokers in cluster mode (the RF=3 topic, the faults of
    /// `ClusterCrash`); the replicas must agree on the latest value of every key.
    ClusterCompact,
    /// `ClusterCrash` on a tiered topic (issue 14 item 3): tiny segments uploaded every
    /// 50 ms to one in-memory object store the brokers share (it survives their crashes),
    /// a seeded share of store calls failing, `local.retention.bytes=1` so local copies go
    /// as soon as the image confirms an upload; the final reads from offset 0 go through
    /// the store, and every acknowledged write must be read.
    ClusterTiered,
    /// `ClusterCrash` with the authorizer on (issue 15 item 6): the admin host denies every
    /// principal Write on a second topic through the metadata log (and allows everything
    /// else); once every broker describes that ACL, an intruder producer writes to that
    /// topic through every crash and failover. A broker that acknowledges one of its
    /// writes, or a record of that topic in the final reads, is a violation. See
    /// `workload_acl`.
    ClusterAcl,
}

impl Workload {
    /// Every workload, in the order runs use.
    pub const ALL: [Workload; 11] = [
        Workload::Produce,
        Workload::ProduceCrash,
        Workload::ProducePartition,
        Workload::Acks1,
        Workload::Acks0,
        Workload::IdempotentCrash,
        Workload::Txn,
        Workload::TxnCrash,
        Workload::Group,
        Workload::GroupCrash,
        Workload::Compact,
    ];

    /// The cluster workloads (both simulators: `cluster_harness`): run only when named
    /// (`--workload cluster-crash`), not part of `ALL`; CI runs each on its own seed set
    /// (`xtask/src/sim.rs`, `CLUSTER_WORKLOADS`).
    pub const CLUSTER: [Workload; 10] = [
        Workload::ClusterCrash,
        Workload::ClusterPartition,
        Workload::ClusterTwoDown,
        Workload::ClusterMixed,
        Workload::ClusterMixed5,
        Workload::ClusterPower,
        Workload::ClusterMajorityCrash,
        Workload::ClusterCompact,
        Workload::ClusterTiered,
        Workload::ClusterAcl,
    ];

    /// Comparison runs, never in CI, run only when named: `cluster-power-memory` is the
    /// power loss of every broker with `weir.acks.all.durability = isr-memory` (Kafka's
    /// setting), which promises nothing there.
    pub const EXPECTED_TO_FAIL: [Workload; 1] = [Workload::ClusterPowerMemory];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Produce => "produce",
            Workload::ProduceCrash => "produce-crash",
            Workload::ProducePartition => "produce-partition",
            Workload::Acks1 => "acks1",
            Workload::Acks0 => "acks0",
            Workload::IdempotentCrash => "idempotent-crash",
            Workload::Txn => "txn",
            Workload::TxnCrash => "txn-crash",
            Workload::Group => "group",
            Workload::GroupCrash => "group-crash",
            Workload::ClusterCrash => "cluster-crash",
            Workload::ClusterPartition => "cluster-partition",
            Workload::ClusterTwoDown => "cluster-two-down",
            Workload::ClusterMixed => "cluster-mixed",
            Workload::ClusterMixed5 => "cluster-mixed-5",
            Workload::ClusterPower => "cluster-power",
            Workload::ClusterPowerMemory => "cluster-power-memory",
            Workload::ClusterMajorityCrash => "cluster-majority-crash",
            Workload::Compact => "compact",
            Workload::ClusterCompact => "cluster-compact",
            Workload::ClusterTiered => "cluster-tiered",
            Workload::ClusterAcl => "cluster-acl",
        }
    }

    /// Parse a command-line name.
    pub fn parse(name: &str) -> Option<Workload> {
        Workload::ALL
            .into_iter()
            .chain(Workload::CLUSTER)
            .chain(Workload::EXPECTED_TO_FAIL)
            .find(|w| w.name() == name)
    }
}

/// The parameters of a workload.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Producer acks.
    pub acks: Acks,
    /// Records carry keys (murmur2 partitioning) or not (explicit partitions).
    pub keyed: bool,
    /// Concurrent producer actors.
    pub producers: usize,
    /// Sends per producer actor.
    pub sends_per_producer: usize,
    /// Partitions of the topic.
    pub partitions: i32,
    /// Broker crash/restart in the fault schedule.
    pub crashes: bool,
    /// Network faults in the fault schedule.
    pub net_faults: bool,
    /// Wall-clock jumps in the fault schedule.
    pub clock_jumps: bool,
    /// Disk faults during the main phase.
    pub disk: DiskFaults,
    /// Producers are idempotent (`enable.idempotence=true`): duplicates are violations.
    pub idempotent: bool,
    /// BUGGIFY rate inside the broker (0 = off), see `weir_core::buggify`.
    pub buggify_per_mille: u32,
    /// Transactional actors (`workload_txn`) instead of the plain producers and consumers.
    pub txn: bool,
    /// Consumer-group members (`workload_group`) instead of the assigning consumer; 0 in
    /// the other workloads.
    pub group_members: usize,
    /// Brokers in cluster mode (`workload_cluster`); 0 = the single-node broker.
    pub cluster_nodes: i32,
    /// Cluster workloads: `weir.acks.all.durability = isr-memory` instead of the default
    /// `isr-fsync` (only `cluster-power-memory`, which is expected to fail).
    pub isr_memory: bool,
    /// The compaction actors (`workload_compact`) on a compacted topic.
    pub compact: bool,
    /// The topic is tiered and the brokers share an object store (`ClusterTiered`).
    pub tiered: bool,
    /// The brokers authorize with ACLs and an intruder writes where it is denied
    /// (`ClusterAcl`, `workload_acl`).
    pub acl: bool,
}

/// BUGGIFY rate of the fault workloads: often enough that every run meets late acks,
/// short fetches and early segment rolls, rare enough that the run still makes progress.
pub const BUGGIFY_PER_MILLE: u32 = 50;

impl Spec {
    /// The checker's configuration for this workload.
    pub fn check_config(&self) -> CheckConfig {
        let acks = match self.acks {
            // One node, no failover, sync before ack: acks=1 promises what acks=all does.
            Acks::All | Acks::Leader => weir_jepsen::Acks::All,
            Acks::None => weir_jepsen::Acks::Zero,
        };
        CheckConfig {
            acks,
            idempotence: self.idempotent,
            txn: self.txn,
            // Group members subscribe (group-gap applies); the final reader assigns.
            sub_via: if self.group_members > 0 {
                weir_jepsen::SubVia::Both
            } else {
                weir_jepsen::SubVia::Assign
            },
            ..CheckConfig::default()
        }
    }
}

/// Why the broker host stopped on its own.
#[derive(Debug, Clone, Default)]
pub struct BrokerExit(Arc<Mutex<Option<Result<String, String>>>>);

impl BrokerExit {
    /// `Ok(reason)`: poisoned (restart it); `Err(reason)`: a bug (report it).
    pub fn set(&self, exit: Result<String, String>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(exit);
    }

    /// The exit, once.
    pub fn take(&self) -> Option<Result<String, String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl BrokerExit {
    /// Run the real broker (`weir::server::start_shards`: one node loop per shard of `disk`)
    /// until it stops, record why in `self`, then stay "up" as a dead process would until
    /// the harness restarts the host.
    /// Every simulator and harness starts its brokers through this.
    pub async fn serve<R: Runtime>(
        &self,
        runtime: R,
        disk: crate::disk::HostDisk,
        mut config: weir::config::ServerConfig,
        remote: Option<weir::remote::RemoteStore>,
    ) {
        let count = u16::try_from(disk.shard_count()).unwrap_or(u16::MAX);
        config.shards = weir::config::ShardCount::Exactly(count);
        match weir::server::start_shards(runtime, disk.shards(), config, remote).await {
            Ok(server) => match server.wait().await {
                Ok(()) => self.set(Err("broker stopped without a reason".into())),
                Err(weir::server::ServerError::Poisoned(reason)) => {
                    self.set(Ok(reason.to_string()))
                }
                Err(error) => self.set(Err(format!("broker stopped: {error}"))),
            },
            Err(error) => self.set(Err(format!("broker could not start: {error}"))),
        }
        std::future::pending::<()>().await;
    }
}

/// Most shards (node loops) a simulated broker runs.
pub const SIM_SHARDS_MAX: u16 = 3;

/// How many shards (node loops, docs/sharding.md) broker `host` runs in the run of `seed`:
/// 1 to [`SIM_SHARDS_MAX`], from its own stream (so the draw moves no other choice of the
/// run), fixed for the run (a directory keeps its shard count across restarts). Each
/// broker of a cluster draws its own: brokers of one cluster may differ, as they may in
/// production.
pub fn shards_of(seed: u64, host: &str) -> u16 {
    let draw = Rng::fork(seed, &format!("shards-{host}")).below(u64::from(SIM_SHARDS_MAX));
    1 + u16::try_from(draw).unwrap_or(0)
}

/// Run-wide coordination between the harness and the actors.
#[derive(Debug, Default)]
pub struct ControlState {
    /// Producer actors that finished.
    pub producers_done: usize,
    /// The harness healed everything; main-phase actors stop, final reads start.
    pub final_phase: bool,
    /// The final reader finished.
    pub final_done: bool,
    /// Consumer-group workloads: what the members and the watcher share.
    pub group: crate::shared_log::GroupLog,
    /// Cluster workloads: topic creation and sampled leadership.
    pub cluster: crate::shared_log::ClusterLog,
    /// Compaction workloads: writes, transactions and reads.
    pub compact: crate::shared_log::CompactLog,
    /// Transactional workloads: per producer actor, the offsets each transaction sent to
    /// its group (`eos-<actor>`) and how the transaction ended.
    pub txn_offsets: std::collections::BTreeMap<usize, Vec<(i64, crate::shared_log::Ended)>>,
}

/// Shared handle on [`ControlState`].
#[derive(Debug, Clone, Default)]
pub struct Control(Arc<Mutex<ControlState>>);

impl Control {
    /// Lock the state.
    pub fn lock(&self) -> MutexGuard<'_, ControlState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn final_phase(&self) -> bool {
        self.lock().final_phase
    }
}

/// What every actor needs.
#[derive(Debug, Clone)]
pub struct Actors {
    /// The workload's parameters.
    pub spec: Spec,
    /// The history.
    pub recorder: Recorder,
    /// Coordination.
    pub control: Control,
    /// Root seed.
    pub seed: u64,
    /// The broker's `host:port` as clients dial it.
    pub bootstrap: String,
}

/// The broker's configuration in every simulation, advertising `host`; `buggify_seed`
/// seeds the broker's BUGGIFY points (on at the spec's rate).
pub fn server_config(spec: &Spec, host: &str, buggify_seed: u64) -> weir::config::ServerConfig {
    let mut config = weir::config::ServerConfig {
        node: weir_core::NodeConfig {
            node_id: 1,
            advertised_host: host.to_owned(),
            advertised_port: i32::from(BROKER_PORT),
            num_partitions: spec.partitions,
            buggify: weir_core::buggify::BuggifyConfig {
                seed: buggify_seed,
                per_mille: spec.buggify_per_mille,
            },
            ..weir_core::NodeConfig::default()
        },
        listen: format!("0.0.0.0:{BROKER_PORT}"),
        listeners: weir::listener::ListenerSet::default(),
        data_dir: "sim-disk".into(),
        frame_bytes_max: weir_wire::frame::FRAME_BYTES_MAX,
        client_limits: weir::limits::LimitSettings::default(),
        network_threads: None,
        advertise_bound_address: false,
        check_invariants: true,
        metrics_listen: None,
        gateway: None,
        gateway_sasl: None,
        rest_proxy: None,
        rest_instance_timeout_ms: 300_000,
        schema_registry: None,
        schema_registry_login: None,
        http_sasl: None,
        http_request_bytes_max: weir::http::REQUEST_BYTES_DEFAULT,
        http_cors: None,
        remote_storage_url: None,
        // `BrokerExit::serve` sets the host's count (its disks are the shards).
        shards: weir::config::ShardCount::Exactly(1),
        shutdown: weir::config::ShutdownSettings::default(),
    };
    tune_server(spec, &mut config);
    config
}

pub(crate) fn client_config(bootstrap: &str, name: &str) -> ClientConfig {
    ClientConfig {
        // Cluster workloads pass every broker, comma separated.
        bootstrap_servers: bootstrap.split(',').map(str::to_owned).collect(),
        client_id: name.to_owned(),
        request_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(2),
        metadata_max_age: Duration::from_secs(5),
        retry_backoff: Duration::from_millis(50),
        retry_backoff_max: Duration::from_millis(500),
        ..ClientConfig::default()
    }
}

pub(crate) fn consumer_config(bootstrap: &str, name: &str) -> ConsumerConfig {
    ConsumerConfig {
        client: client_config(bootstrap, name),
        fetch_max_wait: Duration::from_millis(200),
        auto_offset_reset: AutoOffsetReset::Earliest,
        ..ConsumerConfig::default()
    }
}

pub(crate) fn now_ns<R: Runtime>(runtime: &R) -> u64 {
    u64::try_from(runtime.now().as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) async fn sleep<R: Runtime>(runtime: &R, duration: Duration) {
    runtime.sleep_until(runtime.now() + duration).await;
}

/// One producer actor: `sends_per_producer` sequential sends, each recorded invoke then
/// ok (with the acknowledged offset) or info (outcome unknown: the process retires).
pub(crate) async fn plain_producer<R: Runtime>(runtime: R, actors: Actors, index: usize) {
    let spec = actors.spec;
    let mut rng = Rng::fork(actors.seed, &format!("producer-{index}"));
    let config = ProducerConfig {
        client: client_config(&actors.bootstrap, &format!("producer-{index}")),
        acks: spec.acks,
        linger: Duration::from_millis(2),
        delivery_timeout: Duration::from_secs(8),
        ack_timeout: Duration::from_secs(3),
        idempotent: spec.idempotent,
        ..ProducerConfig::default()
    };
    wait_topic(&runtime, &actors).await;
    let recorder = &actors.recorder;
    let mut process = recorder.process();
    let mut client: Option<Producer<R>> = None;
    for sequence in 0..spec.sends_per_producer {
        // Cluster runs: the harness says when its faults are done (the count is a cap).
        if spec.cluster_nodes > 0 && actors.control.lock().cluster.stop_producing {
            break;
        }
        sleep(&runtime, Duration::from_millis(rng.between(0, 30))).await;
        let producer = loop {
            if let Some(producer) = &client {
                break producer.clone();
            }
            match Producer::connect(runtime.clone(), config.clone()).await {
                Ok(producer) => client = Some(producer),
                Err(_) => sleep(&runtime, Duration::from_millis(100)).await,
            }
        };
        // Values are unique over the whole run (hence per key).
        let value = (index as u64) * 1_000_000 + sequence as u64;
        let (key, record_key, partition) = if spec.keyed {
            let record_key = format!("k{}", rng.below(16));
            let key = weir_wire::murmur2::partition_for_key(record_key.as_bytes(), spec.partitions);
            (key, Some(Bytes::from(record_key)), None)
        } else {
            let key = rng.below(spec.partitions as u64) as i32;
            (key, None, Some(key))
        };
        let key_u32 = u32::try_from(key).unwrap_or_default();
        if spec.cluster_nodes > 0 {
            actors.control.lock().cluster.sent.insert(value, key);
        }
        let invoke = Value::Mops(vec![Mop::send(key_u32, value)]);
        let start = now_ns(&runtime);
        recorder.event(
            process,
            Kind::Invoke,
            F::Send,
            invoke,
            start,
            Phase::Main,
            None,
            false,
        );
        let payload = Some(Bytes::from(value.to_string()));
        if spec.cluster_nodes > 0 {
            *actors
                .control
                .lock()
                .cluster
                .pending
                .entry(key)
                .or_default() += 1;
        }
        let result = producer
            .send(TOPIC, partition, record_key, payload, Vec::new())
            .await;
        if spec.cluster_nodes > 0 {
            let mut control = actors.control.lock();
            let pending = control.cluster.pending.entry(key).or_default();
            *pending = pending.saturating_sub(1);
        }
        let end = now_ns(&runtime);
        match result {
            Ok(metadata) => {
                if metadata.partition != key {
                    recorder.violation(format!(
                        "value {value}: client partitioner chose {} not {key}",
                        metadata.partition
                    ));
                }
                if spec.cluster_nodes > 0 {
                    *actors.control.lock().cluster.acks.entry(key).or_default() += 1;
                }
                let offset = (metadata.offset >= 0).then_some(metadata.offset);
                let mop = Mop::Send {
                    key: key_u32,
                    offset,
                    value,
                };
                let value = Value::Mops(vec![mop]);
                recorder.event(
                    process,
                    Kind::Ok,
                    F::Send,
                    value,
                    end,
                    Phase::Main,
                    None,
                    false,
                );
            }
            Err(error) => {
                let value = Value::Mops(vec![Mop::send(key_u32, value)]);
                let error = Some(error.to_string());
                recorder.event(
                    process,
                    Kind::Info,
                    F::Send,
                    value,
                    end,
                    Phase::Main,
                    error,
                    false,
                );
                process = recorder.process();
                // A fresh client after an unknown outcome, as a restarted process would be.
                client = None;
            }
        }
    }
    drop(client);
    actors.control.lock().producers_done += 1;
}

pub(crate) fn all_keys(spec: &Spec) -> Vec<u32> {
    (0..spec.partitions)
        .map(|p| u32::try_from(p).unwrap_or_default())
        .collect()
}

/// A consumer assigned every partition, built from `config`, its assign op recorded for
/// `process`; `None` when it failed (recorded as such). Shared by every workload's readers.
pub(crate) async fn assigned_consumer<R: Runtime>(
    runtime: &R,
    actors: &Actors,
    process: u64,
    config: ConsumerConfig,
    phase: Phase,
) -> Option<Consumer<R>> {
    let recorder = &actors.recorder;
    let keys = Value::Keys(all_keys(&actors.spec));
    let start = now_ns(runtime);
    recorder.event(
        process,
        Kind::Invoke,
        F::Assign,
        keys.clone(),
        start,
        phase,
        None,
        true,
    );
    let result = async {
        let mut consumer = Consumer::connect(runtime.clone(), config).await?;
        let partitions = (0..actors.spec.partitions)
            .map(|p| (TOPIC.to_owned(), p))
            .collect();
        consumer.assign(partitions).await?;
        Ok::<_, weir_client::ClientError>(consumer)
    }
    .await;
    let end = now_ns(runtime);
    match result {
        Ok(consumer) => {
            recorder.event(process, Kind::Ok, F::Assign, keys, end, phase, None, true);
            Some(consumer)
        }
        Err(error) => {
            let error = Some(error.to_string());
            recorder.event(
                process,
                Kind::Fail,
                F::Assign,
                keys,
                end,
                phase,
                error,
                true,
            );
            None
        }
    }
}

/// One recorded poll; `Err` means the process must retire (info recorded).
async fn recorded_poll<R: Runtime>(
    runtime: &R,
    actors: &Actors,
    process: u64,
    consumer: &mut Consumer<R>,
    phase: Phase,
) -> Result<usize, ()> {
    let recorder = &actors.recorder;
    let start = now_ns(runtime);
    let invoke = Value::Mops(vec![Mop::poll()]);
    recorder.event(
        process,
        Kind::Invoke,
        F::Poll,
        invoke.clone(),
        start,
        phase,
        None,
        false,
    );
    let result = consumer.poll(Duration::from_millis(500)).await;
    let end = now_ns(runtime);
    match result {
        Ok(records) => {
            let mut reads: Vec<(u32, Vec<(i64, u64)>)> = Vec::new();
            for record in &records {
                let key = u32::try_from(record.partition).unwrap_or_default();
                let value = record
                    .value
                    .as_ref()
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let Some(value) = value else {
                    recorder.violation(format!(
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
            let value = Value::Mops(vec![Mop::polled(reads)]);
            recorder.event(process, Kind::Ok, F::Poll, value, end, phase, None, false);
            Ok(records.len())
        }
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
            Err(())
        }
    }
}

/// The main-phase consumer: assign every partition from the beginning and poll until the
/// final phase starts.
pub(crate) async fn plain_consumer<R: Runtime>(runtime: R, actors: Actors) {
    wait_topic(&runtime, &actors).await;
    'process: while !actors.control.final_phase() {
        let process = actors.recorder.process();
        let config = consumer_config(&actors.bootstrap, "consumer");
        let Some(mut consumer) =
            assigned_consumer(&runtime, &actors, process, config, Phase::Main).await
        else {
            sleep(&runtime, Duration::from_millis(200)).await;
            continue;
        };
        while !actors.control.final_phase() {
            if recorded_poll(&runtime, &actors, process, &mut consumer, Phase::Main)
                .await
                .is_err()
            {
                continue 'process;
            }
        }
    }
}

/// Simulated time the final phase may take before the run is declared stuck.
pub const FINAL_PHASE_BUDGET: Duration = Duration::from_secs(60);

/// The final phase: wait for the harness to heal, read everything, audit the CRCs.
pub(crate) async fn plain_final_reader<R: Runtime>(runtime: R, actors: Actors) {
    while !actors.control.final_phase() {
        sleep(&runtime, Duration::from_millis(50)).await;
    }
    let deadline = runtime.now() + FINAL_PHASE_BUDGET;
    let caught_up = read_to_end(&runtime, &actors, deadline).await;
    if !caught_up {
        actors
            .recorder
            .violation("final reads did not reach the high watermark in time");
    }
    audit(&runtime, &actors, deadline).await;
    wait_done(&runtime, &actors).await;
    actors.control.lock().final_done = true;
}

async fn read_to_end<R: Runtime>(runtime: &R, actors: &Actors, deadline: Duration) -> bool {
    'process: while runtime.now() < deadline {
        let process = actors.recorder.process();
        let config = consumer_config(&actors.bootstrap, "final-reader");
        let Some(mut consumer) =
            assigned_consumer(runtime, actors, process, config, Phase::Final).await
        else {
            sleep(runtime, Duration::from_millis(200)).await;
            continue;
        };
        while runtime.now() < deadline {
            if recorded_poll(runtime, actors, process, &mut consumer, Phase::Final)
                .await
                .is_err()
            {
                continue 'process;
            }
            let done = (0..actors.spec.partitions).all(|p| {
                let position = consumer.position(TOPIC, p).unwrap_or(-1);
                let high_watermark = consumer.high_watermark(TOPIC, p).unwrap_or(-1);
                high_watermark >= 0 && position >= high_watermark
            });
            if done {
                return true;
            }
        }
    }
    false
}

/// Fetch every partition from offset 0 several times with raw Fetch requests and check each
/// returned batch's CRC: the broker must never serve a damaged batch.
pub(crate) async fn audit<R: Runtime>(runtime: &R, actors: &Actors, deadline: Duration) {
    let Ok(cluster) = weir_client::driver::cluster::Cluster::connect(
        runtime.clone(),
        client_config(&actors.bootstrap, "auditor"),
    )
    .await
    else {
        return;
    };
    for round in 0..6 {
        for partition in 0..actors.spec.partitions {
            let mut offset = 0;
            while runtime.now() < deadline {
                let request = ApiRequest::Fetch(FetchRequest {
                    replica_id: -1,
                    max_wait_ms: 0,
                    min_bytes: 0,
                    max_bytes: 1 << 20,
                    isolation_level: 0,
                    session_id: 0,
                    session_epoch: -1,
                    topics: vec![FetchTopic {
                        topic: TopicRef::Name(TOPIC.to_owned()),
                        partitions: vec![FetchPartition {
                            partition,
                            current_leader_epoch: -1,
                            fetch_offset: offset,
                            log_start_offset: -1,
                            partition_max_bytes: 4096,
                        }],
                    }],
                    rack_id: String::new(),
                });
                let Ok(ApiResponse::Fetch(response)) =
                    request_leader(&cluster, actors, partition, &request).await
                else {
                    sleep(runtime, Duration::from_millis(50)).await;
                    continue;
                };
                let Some(answer) = response.topics.first().and_then(|t| t.partitions.first())
                else {
                    break;
                };
                let FetchRecords::Bytes(bytes) = &answer.records else {
                    // Empty: the end, or a read the broker refused (it must say so).
                    if answer.error == weir_wire::error::ErrorCode::NONE {
                        break;
                    }
                    if actors.spec.cluster_nodes > 0 {
                        // Leadership moved (or is moving): ask again where it is.
                        let topics = [TOPIC.to_owned()];
                        let _ = cluster.refresh_metadata(Some(&topics), false).await;
                    }
                    sleep(runtime, Duration::from_millis(10)).await;
                    continue;
                };
                let mut next = offset;
                for item in iter_batches(bytes) {
                    let Ok((header, range)) = item else {
                        actors.recorder.violation(format!(
                            "round {round}: partition {partition} at {offset}: \
                             unparseable batch served"
                        ));
                        return;
                    };
                    if !verify_crc(&bytes[range]) {
                        actors.recorder.violation(format!(
                            "partition {partition}: batch at offset {} served with a bad CRC",
                            header.base_offset
                        ));
                        return;
                    }
                    next = header.last_offset() + 1;
                }
                if next == offset {
                    break;
                }
                offset = next;
            }
        }
    }
}

/// Sends a partition request where it can be served: the partition's leader in a cluster
/// (followers refuse client fetches), any broker on a single node.
async fn request_leader<R: Runtime>(
    cluster: &weir_client::driver::cluster::Cluster<R>,
    actors: &Actors,
    partition: i32,
    request: &ApiRequest,
) -> Result<ApiResponse, weir_client::ClientError> {
    if actors.spec.cluster_nodes == 0 {
        return cluster.request_any(request).await;
    }
    let mut leader = cluster.metadata().leader_for(TOPIC, partition);
    if leader.is_none() {
        let topics = [TOPIC.to_owned()];
        leader = cluster
            .refresh_metadata(Some(&topics), false)
            .await?
            .leader_for(TOPIC, partition);
    }
    match leader {
        Some(node) => cluster.request_node(node, request).await,
        None => Err(weir_client::ClientError::NoBroker(format!(
            "no leader of {TOPIC}-{partition}"
        ))),
    }
}

/// Group settings of the broker in the group workloads (Kafka's defaults would make a run
/// last minutes): a short initial rebalance delay, short sessions allowed.
pub fn tune_server(spec: &Spec, config: &mut weir::config::ServerConfig) {
    if spec.compact {
        // Every topic compacted (the workload's topic takes the broker defaults), segments
        // of a few batches, the cleaner looking every few milliseconds at any dirt, and
        // tombstones gone soon after their first cleaning: compaction happens many times
        // per run, under the faults.
        let node = &mut config.node;
        node.cleanup_policy = weir_core::config::CleanupPolicy::COMPACT;
        node.segment_bytes = COMPACT_SEGMENT_BYTES;
        node.min_cleanable_dirty_ratio =
            weir_core::config::DirtyRatio::new(0.01).unwrap_or(node.min_cleanable_dirty_ratio);
        node.cleaner_backoff_ms = COMPACT_CLEANER_BACKOFF_MS;
        node.delete_retention_ms = COMPACT_DELETE_RETENTION_MS;
        node.min_compaction_lag_ms = 0;
    }
    if spec.tiered {
        // Uploads and local retention every 50 ms; orphans older than 2 s swept.
        let node = &mut config.node;
        node.remote_log_task_interval_ms = TIERED_TASK_INTERVAL_MS;
        node.retention_check_interval_ms = TIERED_TASK_INTERVAL_MS;
        node.remote_orphan_min_age_ms = 2_000;
    }
    if spec.group_members == 0 {
        return;
    }
    config.node.group_initial_rebalance_delay_ms = 200;
    config.node.group_min_session_timeout_ms = 500;
}

/// How often a tiered workload's leaders upload and its replicas apply local retention.
pub const TIERED_TASK_INTERVAL_MS: u64 = 50;
/// A tiered workload's object store: one per run, shared by every broker (another system:
/// it survives their crashes), failing a seeded share of calls.
pub fn tiered_store<R: Runtime>(
    objects: &Arc<dyn weir::remote::ObjectStoreApi>,
    runtime: R,
    seed: u64,
) -> weir::remote::RemoteStore {
    use weir::remote::faulty::{FaultPlan, FaultyStore};
    let faulty = FaultyStore::new(objects.clone(), runtime, seed).stamp_clock();
    faulty.faults().set(FaultPlan {
        fail_per_mille: TIERED_STORE_FAIL_PER_MILLE,
        ..FaultPlan::default()
    });
    let store: Arc<dyn weir::remote::ObjectStoreApi> = Arc::new(faulty);
    weir::remote::RemoteStore::with_store(store, "sim://objects", Default::default())
}

/// Store calls in a thousand that fail in the tiered workload.
pub const TIERED_STORE_FAIL_PER_MILLE: u32 = 100;

/// `segment.bytes` of the compaction workloads: a segment rolls every few batches.
pub const COMPACT_SEGMENT_BYTES: u64 = 400;
/// `log.cleaner.backoff.ms` of the compaction workloads.
pub const COMPACT_CLEANER_BACKOFF_MS: u64 = 20;
/// `delete.retention.ms` of the compaction workloads: tombstones go within the run.
pub const COMPACT_DELETE_RETENTION_MS: i64 = 400;

/// For `final_reader`: in the group workloads, hold the end of the run until the watcher
/// finished (madsim ends the run when the final reader is done).
pub async fn wait_done<R: Runtime>(runtime: &R, actors: &Actors) {
    if actors.spec.group_members == 0 {
        return;
    }
    while !actors.control.lock().group.done {
        sleep(runtime, Duration::from_millis(50)).await;
    }
}

/// Producers and consumers wait here until the admin host created the topic.
pub(crate) async fn wait_topic<R: Runtime>(runtime: &R, actors: &Actors) {
    if actors.spec.cluster_nodes == 0 {
        return;
    }
    while !actors.control.lock().cluster.topic_ready {
        sleep(runtime, Duration::from_millis(50)).await;
    }
}
