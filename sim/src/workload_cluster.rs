//! Cluster workloads (`cluster-crash`, `cluster-partition`, `cluster-two-down`; turmoil
//! only): brokers in cluster mode (every node a Raft voter and a broker; three nodes, five
//! for `cluster-two-down`), one topic with replication factor 3 and
//! `min.insync.replicas=2`, idempotent acks=all producers, while the harness crashes
//! (unsynced writes lost) or isolates partition leaders.
//!
//! Actors: the `admin` host creates the topic through the native admin client (asking each
//! broker in turn: only the active controller accepts, the others answer NOT_CONTROLLER),
//! then samples every broker's Metadata; producers and the consumer wait until the topic
//! exists and producers write until the harness has run its faults
//! ([`ClusterLog::stop_producing`]); the final reader and the checker are the shared ones
//! (`weir_jepsen::check`, idempotence on, so a duplicate is a violation).
//!
//! Faults (one at a time, so a partition always keeps two live replicas, except in
//! `cluster-two-down`):
//! - `cluster-crash`: (a) crash a partition's leader at a moment its disk holds unsynced
//!   writes (waits up to [`ARM_WAIT_MS`]); (b) cut the leader from the other brokers, then
//!   crash it as soon as a producer gets an ack for that partition (acks=all must not be
//!   answered before the ISR has the data); (c) cut a follower from the leader longer than
//!   `replica.lag.time.max.ms` (it leaves the ISR while writes go on), then crash the leader
//!   (only an ISR member may take over).
//! - `cluster-partition`: isolate a partition's leader from every host, or from the other
//!   brokers only (clients still reach it), for longer than the session timeout.
//! - `cluster-two-down`: five brokers; crash two that are not the controller (preferring two
//!   that share no partition) for several seconds.
//! - `cluster-mixed` (three brokers), `cluster-mixed-5` (five): isolate the active
//!   controller (the sampled `controller_id`) past the session timeout; pause a broker
//!   (every link of it held, then released in a burst); fixed added latency on every link of
//!   one broker; and on five brokers a 2|3 quorum split with the controller on the
//!   minority side.
//! - `cluster-power` (isr-fsync) and `cluster-power-memory` (isr-memory), not in CI: a
//!   power loss of every broker at once (each disk drops what it had not synced), one
//!   partition leader coming back after its session expired.
//! - `cluster-majority-crash` (not in CI: it finds acknowledged writes a replica lacks): six
//!   producers; four times per run, once a partition leader's disk holds at least
//!   [`MAJORITY_UNSYNCED_MIN`] unsynced ops and another broker already fetched part of that
//!   unsynced tail (or after [`MAJORITY_ARM_WAIT_MS`]), crash the leader and the third
//!   broker at the same moment (a majority of the brokers and of the controller voters),
//!   both losing every unsynced op; restart both after 0.7-2.5 s (the partner first, the
//!   leader [`MAJORITY_STAGGER_MS`] later: both re-registrations reach the controller within
//!   one Raft commit window), and start the next fault 0.4-2.5 s later without waiting for
//!   the cluster to recover (ISRs may still be short).
//!
//! Harness properties (recorded as violations):
//! - at most one leader per partition per epoch: every sampling round asks each reachable
//!   broker for Metadata; broker `n` claims leadership of `p` in epoch `e` when its own
//!   answer names `n` as leader with epoch `e`. Two nodes claiming one `(p, e)` over the
//!   run is a violation;
//! - replicas converge: after the final reads every partition's ISR must become full again
//!   (within [`CONVERGE_BUDGET`]), and then every replica's log (read from its `SimDisk`)
//!   must hold exactly the leader's records at the same offsets (no divergent suffix, no
//!   hole, no extra offset);
//! - `cluster-two-down`: every partition with at most one replica down takes acknowledged
//!   writes while the two brokers are down (after leadership and ISR changes settle);
//! - mixed and power workloads: after each fault heals an acks=all write is acknowledged
//!   within `RESUME_BUDGET`, and the next fault waits for one.
//!
//! Invariant: the harness never takes down more replicas of a partition than the workload
//! names (a power loss takes all, a majority crash two of three, then restarts them), so
//! acks=all with `min.insync.replicas=2` can always make progress again after a fault
//! heals.

use std::collections::BTreeMap;
use std::time::Duration;

use weir_client::driver::connection::Connection;
use weir_client::{Admin, ClientError, NewTopic};
use weir_runtime::Runtime;
use weir_wire::domain::{ApiRequest, ApiResponse, MetadataRequest, TopicRef};

use crate::workload::{client_config, sleep, Actors, Spec, Workload, BROKER_PORT, TOPIC};

/// Brokers in `cluster-crash` and `cluster-partition`.
pub const CLUSTER_NODES: i32 = 3;
/// Brokers in `cluster-two-down`.
pub const TWO_DOWN_NODES: i32 = 5;
/// Port of every node's controller (peer) listener.
pub const PEER_PORT: u16 = 9093;
/// `broker.session.timeout.ms` in the simulation (short, so runs are quick).
pub const SESSION_TIMEOUT_MS: u64 = 1_500;
/// `broker.heartbeat.interval.ms` in the simulation.
pub const HEARTBEAT_MS: u64 = 200;
/// `controller.quorum.election.timeout.ms` in the simulation.
pub const ELECTION_TIMEOUT_MS: u64 = 300;
/// `replica.lag.time.max.ms` in the simulation.
pub const REPLICA_LAG_MS: u64 = 3_000;
/// Longest pause (links held) in the mixed workloads, past the session timeout.
pub const PAUSE_MAX_MS: u64 = SESSION_TIMEOUT_MS + 1_500;
/// Largest latency the mixed workloads set on a broker's links.
pub const LATENCY_ADDED_MS: u64 = 300;
/// Faults per run before the producers are told to stop.
pub const FAULTS_PER_RUN: u32 = 3;
/// How long an armed crash waits for the leader's disk to hold unsynced writes.
pub const ARM_WAIT_MS: u64 = 300;
/// `cluster-majority-crash`: faults per run.
pub const MAJORITY_FAULTS_PER_RUN: u32 = 4;
/// `cluster-majority-crash`: producer actors (the default is two).
pub const MAJORITY_PRODUCERS: usize = 6;
/// `cluster-majority-crash`: cap on sends per producer (the harness stops them first; four
/// faults with their down and calm times outlast the default cap).
const MAJORITY_SENDS_MAX: usize = 2_000;
/// `cluster-majority-crash`: unsynced ops the leader's disk must hold before the crash.
pub const MAJORITY_UNSYNCED_MIN: usize = 2;
/// `cluster-majority-crash`: how long an armed crash waits for them before crashing anyway.
pub const MAJORITY_ARM_WAIT_MS: u64 = 1_000;
/// `cluster-majority-crash`: how long both brokers stay down (ms, seeded in this range).
pub const MAJORITY_DOWN_MS: (u64, u64) = (700, 2_500);
/// `cluster-majority-crash`: the partner restarts first, the leader this much later (ms,
/// seeded): close enough that both re-registrations are decided on one applied image.
pub const MAJORITY_STAGGER_MS: (u64, u64) = (1, 3);
/// `cluster-majority-crash`: calm after the restart before the next fault (ms, seeded).
pub const MAJORITY_CALM_MS: (u64, u64) = (400, 2_500);
/// Simulated time after the final reads within which the replicas must converge.
pub const CONVERGE_BUDGET: Duration = Duration::from_secs(30);
/// Producers' cap on sends (the harness normally stops them first).
const SENDS_MAX: usize = 400;
/// How often the admin host samples every broker's view of leadership.
const SAMPLE_EVERY: Duration = Duration::from_millis(25);

/// What the harness and the cluster actors share.
#[derive(Debug, Default)]
pub struct ClusterLog {
    /// The topic was created; producers and consumers may start.
    pub topic_ready: bool,
    /// Latest claimed leader per partition (the claim with the highest epoch).
    pub leaders: BTreeMap<i32, (i32, i32)>,
    /// Replicas and ISR per partition, as the latest leader reported them.
    pub replicas: BTreeMap<i32, (Vec<i32>, Vec<i32>)>,
    /// Sampling rounds after the final phase began in which every ISR was full.
    pub full_isr_rounds: u32,
    /// The active controller, as the latest answer named it (-1 unknown).
    pub controller: i32,
    /// Every `(partition, epoch)` claimed, with the claiming node.
    pub claims: BTreeMap<(i32, i32), i32>,
    /// The harness ran its faults: producers stop.
    pub stop_producing: bool,
    /// The harness is done with the run: the sampler stops.
    pub sampling_done: bool,
    /// Acknowledged sends per partition.
    pub acks: BTreeMap<i32, u64>,
    /// The partition of every value sent so far (values are unique per run).
    pub sent: BTreeMap<u64, i32>,
}

/// The spec of a cluster workload.
pub fn spec(base: Spec, workload: Workload) -> Spec {
    let net = matches!(
        workload,
        Workload::ClusterPartition | Workload::ClusterMixed | Workload::ClusterMixed5
    );
    let majority = workload == Workload::ClusterMajorityCrash;
    Spec {
        crashes: workload != Workload::ClusterPartition,
        net_faults: net,
        idempotent: true,
        producers: if majority {
            MAJORITY_PRODUCERS
        } else {
            base.producers
        },
        sends_per_producer: if majority {
            MAJORITY_SENDS_MAX
        } else {
            SENDS_MAX
        },
        cluster_nodes: if matches!(workload, Workload::ClusterTwoDown | Workload::ClusterMixed5) {
            TWO_DOWN_NODES
        } else {
            CLUSTER_NODES
        },
        isr_memory: workload == Workload::ClusterPowerMemory,
        ..base
    }
}

/// Host name of broker `id`.
pub fn host(id: i32) -> String {
    format!("broker-{id}")
}

/// Every broker's client address, comma separated (the actors' bootstrap list).
pub fn bootstrap(nodes: i32) -> String {
    (1..=nodes)
        .map(|id| format!("{}:{BROKER_PORT}", host(id)))
        .collect::<Vec<_>>()
        .join(",")
}

/// The server configuration of broker `id` in a cluster of `spec.cluster_nodes`.
pub fn server_config(spec: &Spec, id: i32, buggify_seed: u64) -> weir::config::ServerConfig {
    let name = host(id);
    let mut config = crate::workload::server_config(spec, &name, buggify_seed);
    config.node.node_id = id;
    let voters = (1..=spec.cluster_nodes)
        .map(|voter| weir_core::cluster::Voter {
            id: voter,
            addr: format!("{}:{PEER_PORT}", host(voter)),
        })
        .collect();
    let mut cluster = weir_core::cluster::ClusterConfig::new(voters, format!("{name}:{PEER_PORT}"));
    cluster.broker_session_timeout_ms = SESSION_TIMEOUT_MS;
    cluster.broker_heartbeat_interval_ms = HEARTBEAT_MS;
    cluster.election_timeout_ms = ELECTION_TIMEOUT_MS;
    cluster.replica_lag_time_max_ms = REPLICA_LAG_MS;
    cluster.replica_fetch_wait_max_ms = 100;
    cluster.auto_leader_rebalance = false;
    if spec.isr_memory {
        cluster.ack_durability = weir_core::cluster::AckDurability::IsrMemory;
    }
    config.node.cluster = Some(cluster);
    config.node.min_insync_replicas = 2;
    config
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

/// The admin host: create the topic through the controller, then sample leadership until
/// the harness is done.
pub async fn admin<R: Runtime>(runtime: R, actors: Actors) {
    let nodes = actors.spec.cluster_nodes;
    'create: loop {
        for id in 1..=nodes {
            let address = format!("{}:{BROKER_PORT}", host(id));
            let config = client_config(&address, "admin");
            let Ok(admin) = Admin::connect(runtime.clone(), config).await else {
                continue;
            };
            let topic = NewTopic {
                configs: vec![("min.insync.replicas".to_owned(), "2".to_owned())],
                ..NewTopic::new(TOPIC, actors.spec.partitions, 3)
            };
            match admin.create_topic(topic).await {
                Ok(()) => break 'create,
                Err(error) if already_exists(&error) => break 'create,
                Err(_) => {}
            }
        }
        sleep(&runtime, Duration::from_millis(100)).await;
    }
    actors.control.lock().cluster.topic_ready = true;
    sample_leadership(&runtime, &actors).await;
}

fn already_exists(error: &ClientError) -> bool {
    error
        .to_string()
        .to_ascii_uppercase()
        .contains("ALREADY_EXISTS")
        || error.to_string().contains("already exists")
}

async fn sample_leadership<R: Runtime>(runtime: &R, actors: &Actors) {
    let nodes = actors.spec.cluster_nodes;
    let mut config = client_config("unused:0", "leadership-sampler");
    config.connect_timeout = Duration::from_millis(200);
    let timeout = Duration::from_millis(300);
    let mut connections: BTreeMap<i32, Connection<R>> = BTreeMap::new();
    let request = ApiRequest::Metadata(MetadataRequest {
        topics: Some(vec![TopicRef::Name(TOPIC.to_owned())]),
        allow_auto_topic_creation: false,
        include_cluster_authorized_operations: false,
        include_topic_authorized_operations: false,
    });
    while !actors.control.lock().cluster.sampling_done {
        for id in 1..=nodes {
            if connections.get(&id).is_none_or(Connection::is_closed) {
                connections.remove(&id);
                let address = format!("{}:{BROKER_PORT}", host(id));
                if let Ok(connection) = Connection::open(runtime.clone(), &address, &config).await {
                    connections.insert(id, connection);
                }
            }
            let Some(connection) = connections.get(&id) else {
                continue;
            };
            let Ok(ApiResponse::Metadata(response)) = connection.request(&request, timeout).await
            else {
                connections.remove(&id);
                continue;
            };
            let claimed: Vec<(i32, i32, Vec<i32>, Vec<i32>)> = response
                .topics
                .iter()
                .filter(|t| t.name.as_deref() == Some(TOPIC))
                .flat_map(|t| t.partitions.iter())
                .filter(|p| p.leader_id == id)
                .map(|p| {
                    let replicas = p.replica_nodes.clone();
                    (p.partition, p.leader_epoch, replicas, p.isr_nodes.clone())
                })
                .collect();
            let mut control = actors.control.lock();
            if response.controller_id >= 0 {
                control.cluster.controller = response.controller_id;
            }
            for (partition, epoch, replicas, isr) in claimed {
                let log = &mut control.cluster;
                match log.claims.get(&(partition, epoch)) {
                    Some(&other) if other != id => actors.recorder.violation(format!(
                        "two leaders of partition {partition} in epoch {epoch}: \
                         nodes {other} and {id}"
                    )),
                    Some(_) => {}
                    None => {
                        log.claims.insert((partition, epoch), id);
                    }
                }
                let newer = log
                    .leaders
                    .get(&partition)
                    .is_none_or(|&(_, known)| epoch >= known);
                if newer {
                    log.leaders.insert(partition, (id, epoch));
                    log.replicas.insert(partition, (replicas, isr));
                }
            }
        }
        {
            let mut control = actors.control.lock();
            if control.final_done {
                let partitions = actors.spec.partitions;
                let log = &mut control.cluster;
                let full = (0..partitions).all(|p| {
                    log.replicas
                        .get(&p)
                        .is_some_and(|(replicas, isr)| isr.len() >= replicas.len())
                });
                log.full_isr_rounds = if full { log.full_isr_rounds + 1 } else { 0 };
            }
        }
        sleep(runtime, SAMPLE_EVERY).await;
    }
}

/// The replica comparison: every broker's log of each partition (read from its disk) must
/// hold the leader's records at the same offsets. `value_partition` maps each sent value
/// to its partition (values are unique per run); returns the violations.
pub fn compare_replicas(
    disks: &[(i32, crate::disk::SimDisk)],
    leaders: &BTreeMap<i32, (i32, i32)>,
    value_partition: &BTreeMap<u64, i32>,
) -> Vec<String> {
    type Log = BTreeMap<i64, Option<u64>>;
    let mut logs: BTreeMap<(i32, i32), Log> = BTreeMap::new();
    for (id, disk) in disks {
        for records in disk.records().into_values() {
            let parse = |value: &Option<bytes::Bytes>| {
                value
                    .as_ref()
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.parse::<u64>().ok())
            };
            let partition = records
                .iter()
                .find_map(|(_, value)| parse(value).and_then(|v| value_partition.get(&v)));
            let Some(&partition) = partition else {
                continue; // not the workload's topic
            };
            let log = records.iter().map(|(o, v)| (*o, parse(v))).collect();
            logs.insert((partition, *id), log);
        }
    }
    let mut violations = Vec::new();
    for (&partition, &(leader, epoch)) in leaders {
        let holders = logs
            .iter()
            .filter(|((p, _), log)| *p == partition && !log.is_empty())
            .count();
        if holders == 0 {
            // No replica's log could be attributed to this partition (nothing acknowledged
            // there, or only values the run did not record): nothing to compare. Lost
            // acknowledged values are the checker's to find, from the final reads.
            continue;
        }
        let Some(reference) = logs.get(&(partition, leader)) else {
            violations.push(format!(
                "partition {partition}: leader {leader} (epoch {epoch}) holds no records \
                 (replicas with records: {:?})",
                logs.iter()
                    .filter(|((p, _), log)| *p == partition && !log.is_empty())
                    .map(|((_, id), log)| (*id, log.len()))
                    .collect::<Vec<_>>()
            ));
            continue;
        };
        let reference_end = reference.last_key_value().map_or(0, |(o, _)| o + 1);
        for ((p, id), log) in &logs {
            if *p != partition || *id == leader {
                continue;
            }
            let start = log.first_key_value().map_or(0, |(o, _)| *o);
            let problem = log
                .iter()
                .find_map(|(offset, value)| match reference.get(offset) {
                    Some(expected) if expected != value => Some(format!(
                        "offset {offset}: broker {id} holds {value:?}, leader {leader} \
                         holds {expected:?}"
                    )),
                    None if *offset >= reference_end => Some(format!(
                        "broker {id} holds offset {offset} beyond leader {leader}'s end \
                         {reference_end}"
                    )),
                    _ => None,
                })
                .or_else(|| {
                    reference
                        .range(start..)
                        .find(|(offset, _)| !log.contains_key(offset))
                        .map(|(offset, _)| {
                            format!("broker {id} lacks offset {offset} of leader {leader}")
                        })
                });
            if let Some(problem) = problem {
                violations.push(format!(
                    "replicas diverge, partition {partition} (leader {leader}, epoch \
                     {epoch}): {problem}"
                ));
            }
        }
    }
    violations
}

/// The turmoil harness of the cluster workloads.
#[cfg(not(madsim))]
pub mod turmoil_run {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use weir_jepsen::{Kind, Mop, Value, F};

    use crate::disk::{DiskFaults, SimDisk};
    use crate::history::Recorder;
    use crate::outcome::RunOutcome;
    use crate::seed::Rng;
    use crate::turmoil::{client_runtime, TurmoilRuntime, WallSkew, RUN_TIME_MAX, WALL_MS_START};
    use crate::workload::{self, Actors, BrokerExit, Control, Workload};

    use super::{
        bootstrap, compare_replicas, host, server_config, ARM_WAIT_MS, CONVERGE_BUDGET,
        FAULTS_PER_RUN, LATENCY_ADDED_MS, MAJORITY_ARM_WAIT_MS, MAJORITY_CALM_MS, MAJORITY_DOWN_MS,
        MAJORITY_FAULTS_PER_RUN, MAJORITY_STAGGER_MS, MAJORITY_UNSYNCED_MIN, PAUSE_MAX_MS,
        REPLICA_LAG_MS, SESSION_TIMEOUT_MS,
    };

    const CLIENT_ADMIN: &str = "admin";
    const CLIENT_CONSUMER: &str = "consumer";
    const CLIENT_FINAL: &str = "final-reader";
    /// Simulated time the main phase may take before the producers are stopped anyway.
    const MAIN_PHASE_MAX: Duration = Duration::from_secs(60);
    /// Settling time after the ISRs are full again, before the replicas are compared.
    const SETTLE: Duration = Duration::from_millis(1_000);
    /// Minimum message latency outside of latency faults (the builder's setting).
    const LATENCY_MIN: Duration = Duration::from_micros(200);
    /// Maximum message latency outside of latency faults (the builder's setting).
    const LATENCY_MAX: Duration = Duration::from_millis(3);
    /// Mixed workloads: after a fault heals, some acks=all write must be acknowledged
    /// within this much simulated time (the cluster recovers on its own).
    const RESUME_BUDGET: Duration = Duration::from_secs(15);

    /// The fault in progress (one at a time).
    enum Fault {
        /// Crash `id` (leader of `partition`) once its disk holds unsynced writes.
        Armed {
            id: i32,
            partition: i32,
            deadline: Duration,
        },
        /// Crash `id` (leader of `partition`) and one other broker at once, both losing
        /// every unsynced op, once `id`'s disk holds `MAJORITY_UNSYNCED_MIN` unsynced ops and
        /// a follower already holds part of that unsynced tail (that follower survives), or
        /// at `deadline` with whatever is unsynced (then `other` goes down with `id`).
        MajorityArmed {
            id: i32,
            other: i32,
            partition: i32,
            deadline: Duration,
        },
        /// `id` and `other` down: `other` restarts at `until`, `id` `stagger` later (a few
        /// milliseconds: both re-register within one Raft commit window, `other` first).
        MajorityDown {
            id: i32,
            other: i32,
            until: Duration,
            stagger: Duration,
            other_up: bool,
        },
        /// `id` is cut from the other brokers: crash it at the next ack on `partition`.
        Stalled {
            id: i32,
            partition: i32,
            acks_before: u64,
            deadline: Duration,
        },
        /// `follower` is cut from leader `id` of `partition`: crash `id` at `until`.
        Lagging {
            id: i32,
            follower: i32,
            partition: i32,
            until: Duration,
        },
        /// Brokers down until `until`; `check` is the two-down progress window.
        Crashed {
            ids: Vec<i32>,
            until: Duration,
            check: Option<ProgressCheck>,
        },
        /// `id` cut from `peers` until `until`.
        Isolated {
            id: i32,
            peers: Vec<String>,
            until: Duration,
        },
        /// Every link between `minority` and `majority` cut until `until`.
        Split {
            minority: Vec<i32>,
            majority: Vec<i32>,
            until: Duration,
        },
        /// `id`'s links to `peers` held (a paused process) until `until`, then released.
        Paused {
            id: i32,
            peers: Vec<String>,
            until: Duration,
        },
        /// `id`'s links to `peers` slowed until `until`.
        Slow {
            id: i32,
            peers: Vec<String>,
            until: Duration,
        },
        /// Power loss of every broker, once some disk holds unsynced writes (or at
        /// `deadline`); `late` (a partition leader) comes back after the session timeout.
        PowerArmed {
            deadline: Duration,
            late: Option<i32>,
        },
        /// Every broker down: all but `late` restart at `until`, `late` at `late_until`.
        PowerOut {
            until: Duration,
            late: Option<i32>,
            late_until: Duration,
            early_up: bool,
        },
    }

    /// `cluster-two-down`: partitions that must take acks between `from` and the restart.
    struct ProgressCheck {
        from: Duration,
        partitions: Vec<i32>,
        acks_at_from: Option<BTreeMap<i32, u64>>,
    }

    /// The world of one run.
    struct World<'a> {
        sim: turmoil::Sim<'a>,
        disks: Vec<SimDisk>,
        hosts: Vec<String>,
        log: Vec<String>,
        rng: Rng,
        control: Control,
        recorder: Recorder,
    }

    impl World<'_> {
        fn crash(&mut self, id: i32, why: &str) {
            let stamp = self.sim.elapsed().as_millis();
            self.sim.crash(host(id).as_str());
            let fate = self.disks[(id - 1) as usize].crash();
            self.log.push(format!(
                "{stamp} crash broker {id} ({why}), disk fate {fate:?}"
            ));
        }

        /// Crash `id` losing every unsynced op on its disk (not a seeded fate).
        fn crash_lose_all(&mut self, id: i32, why: &str) {
            let stamp = self.sim.elapsed().as_millis();
            self.sim.crash(host(id).as_str());
            let disk = &self.disks[(id - 1) as usize];
            let lost_before = disk.stats().ops_lost;
            let fate = disk.crash_lose_all();
            let lost = disk.stats().ops_lost - lost_before;
            self.log.push(format!(
                "{stamp} crash broker {id} ({why}), disk fate {fate:?}, {lost} unsynced ops lost"
            ));
        }

        fn restart(&mut self, id: i32) {
            let stamp = self.sim.elapsed().as_millis();
            self.log.push(format!("{stamp} broker {id} restart"));
            self.sim.bounce(host(id).as_str());
        }

        fn cut(&mut self, a: &str, b: &str) {
            self.sim.partition(a, b);
        }

        fn repair(&mut self, a: &str, b: &str) {
            self.sim.repair(a, b);
        }

        fn cluster<T>(&self, f: impl FnOnce(&super::ClusterLog) -> T) -> T {
            f(&self.control.lock().cluster)
        }

        /// A partition and its leader, drawn from the sampled leadership.
        fn pick_leader(&mut self, partitions: i32) -> Option<(i32, i32)> {
            let partition = self.rng.below(partitions as u64) as i32;
            let leader = self.cluster(|c| c.leaders.get(&partition).map(|(id, _)| *id))?;
            Some((partition, leader))
        }

        /// Start the next fault of `workload`; `None` when leadership is not known yet.
        fn start_fault(&mut self, workload: Workload, partitions: i32) -> Option<Fault> {
            let now = self.sim.elapsed();
            let stamp = now.as_millis();
            if workload == Workload::ClusterTwoDown {
                return self.two_down(partitions);
            }
            if workload == Workload::ClusterMajorityCrash {
                return self.majority(partitions);
            }
            if matches!(
                workload,
                Workload::ClusterMixed
                    | Workload::ClusterMixed5
                    | Workload::ClusterPower
                    | Workload::ClusterPowerMemory
            ) {
                return self.mixed(workload);
            }
            let (partition, id) = self.pick_leader(partitions)?;
            let brokers: Vec<String> = (1..=self.disks.len() as i32)
                .filter(|other| *other != id)
                .map(host)
                .collect();
            if workload == Workload::ClusterPartition {
                let hold = self.rng.between(SESSION_TIMEOUT_MS + 300, 4_000);
                let until = now + Duration::from_millis(hold);
                let everyone = self.rng.chance(500);
                let peers: Vec<String> = if everyone {
                    self.hosts
                        .iter()
                        .filter(|h| **h != host(id))
                        .cloned()
                        .collect()
                } else {
                    brokers
                };
                for peer in &peers {
                    self.cut(&host(id), peer);
                }
                let whom = if everyone {
                    "every host"
                } else {
                    "the other brokers"
                };
                self.log.push(format!(
                    "{stamp} isolate broker {id} (leader of {partition}) from {whom} until {}ms",
                    until.as_millis()
                ));
                return Some(Fault::Isolated { id, peers, until });
            }
            match self.rng.below(3) {
                0 => {
                    self.log.push(format!(
                        "{stamp} arm crash of broker {id} (leader of {partition})"
                    ));
                    let deadline = now + Duration::from_millis(ARM_WAIT_MS);
                    Some(Fault::Armed {
                        id,
                        partition,
                        deadline,
                    })
                }
                1 => {
                    for peer in &brokers {
                        self.cut(&host(id), peer);
                    }
                    let acks_before =
                        self.cluster(|c| c.acks.get(&partition).copied().unwrap_or(0));
                    let deadline = now + Duration::from_millis(self.rng.between(200, 600));
                    self.log.push(format!(
                        "{stamp} cut broker {id} (leader of {partition}) from the brokers; \
                         crash at the next ack"
                    ));
                    Some(Fault::Stalled {
                        id,
                        partition,
                        acks_before,
                        deadline,
                    })
                }
                _ => self.lagging(partitions).or_else(|| {
                    let deadline = now + Duration::from_millis(ARM_WAIT_MS);
                    Some(Fault::Armed {
                        id,
                        partition,
                        deadline,
                    })
                }),
            }
        }

        /// A follower cut from its leader until it leaves the ISR, then the leader crashes.
        /// Needs a partition whose leader is not the controller (the follower must stay
        /// live); prefers one where the follower precedes the controller in the replica
        /// list (an election that ignores the ISR would pick it).
        fn lagging(&mut self, partitions: i32) -> Option<Fault> {
            let now = self.sim.elapsed();
            let (controller, candidates) = self.cluster(|c| {
                let candidates: Vec<(i32, i32, i32, bool)> = (0..partitions)
                    .filter_map(|p| {
                        let (leader, _) = *c.leaders.get(&p)?;
                        let (replicas, _) = c.replicas.get(&p)?;
                        if leader == c.controller || !replicas.contains(&c.controller) {
                            return None;
                        }
                        let order: Vec<i32> =
                            replicas.iter().copied().filter(|r| *r != leader).collect();
                        let follower = *order.iter().find(|r| **r != c.controller)?;
                        let first = order.first() == Some(&follower);
                        Some((p, leader, follower, first))
                    })
                    .collect();
                (c.controller, candidates)
            });
            let preferred: Vec<_> = candidates.iter().filter(|c| c.3).collect();
            let pool: Vec<_> = if preferred.is_empty() {
                candidates.iter().collect()
            } else {
                preferred
            };
            let &&(partition, id, follower, _) =
                pool.get(self.rng.below(pool.len().max(1) as u64) as usize)?;
            self.cut(&host(id), &host(follower));
            let lag = REPLICA_LAG_MS + self.rng.between(500, 1_500);
            let until = now + Duration::from_millis(lag);
            self.log.push(format!(
                "{} cut follower {follower} from broker {id} (leader of {partition}, \
                 controller {controller}) until {}ms, then crash the leader",
                now.as_millis(),
                until.as_millis()
            ));
            Some(Fault::Lagging {
                id,
                follower,
                partition,
                until,
            })
        }

        /// `cluster-mixed`, `cluster-mixed-5`, `cluster-power-memory`: the next fault;
        /// `None` while the controller is not known yet.
        fn mixed(&mut self, workload: Workload) -> Option<Fault> {
            let now = self.sim.elapsed();
            let stamp = now.as_millis();
            let nodes = self.disks.len() as i32;
            let controller = self.cluster(|c| c.controller);
            if controller < 1 || controller > nodes {
                return None;
            }
            let kind = match workload {
                Workload::ClusterPower | Workload::ClusterPowerMemory => 3,
                // No power loss in the CI workloads while it can lose acknowledged writes
                // (docs/simulation.md, Status): isolation, pause, latency, split.
                Workload::ClusterMixed5 => [0, 1, 2, 4][self.rng.below(4) as usize],
                _ => self.rng.below(3),
            };
            let others: Vec<i32> = (1..=nodes).filter(|id| *id != controller).collect();
            match kind {
                0 => {
                    // The active controller, cut past the session timeout.
                    let hold = self.rng.between(SESSION_TIMEOUT_MS + 300, 4_000);
                    let until = now + Duration::from_millis(hold);
                    let everyone = self.rng.chance(500);
                    let peers: Vec<String> = if everyone {
                        let me = host(controller);
                        self.hosts.iter().filter(|h| **h != me).cloned().collect()
                    } else {
                        others.iter().copied().map(host).collect()
                    };
                    for peer in &peers {
                        self.cut(&host(controller), peer);
                    }
                    let whom = if everyone {
                        "every host"
                    } else {
                        "the other brokers"
                    };
                    self.log.push(format!(
                        "{stamp} isolate controller {controller} from {whom} until {}ms",
                        until.as_millis()
                    ));
                    Some(Fault::Isolated {
                        id: controller,
                        peers,
                        until,
                    })
                }
                1 => {
                    // A paused process: nothing in or out, then a burst.
                    let id = self.rng.between(1, nodes as u64) as i32;
                    let hold = self.rng.between(200, PAUSE_MAX_MS);
                    let until = now + Duration::from_millis(hold);
                    let me = host(id);
                    let peers: Vec<String> =
                        self.hosts.iter().filter(|h| **h != me).cloned().collect();
                    for peer in &peers {
                        self.sim.hold(me.as_str(), peer.as_str());
                    }
                    self.log.push(format!(
                        "{stamp} pause broker {id} (controller {controller}) until {}ms",
                        until.as_millis()
                    ));
                    Some(Fault::Paused { id, peers, until })
                }
                2 => {
                    // Added latency on every link of one broker.
                    let id = self.rng.between(1, nodes as u64) as i32;
                    let added = Duration::from_millis(self.rng.between(20, LATENCY_ADDED_MS));
                    let until = now + Duration::from_millis(self.rng.between(1_000, 4_000));
                    let me = host(id);
                    let peers: Vec<String> =
                        self.hosts.iter().filter(|h| **h != me).cloned().collect();
                    for peer in &peers {
                        self.sim.set_link_latency(me.as_str(), peer.as_str(), added);
                    }
                    self.log.push(format!(
                        "{stamp} slow broker {id}'s links to {}ms (controller {controller}) \
                         until {}ms",
                        added.as_millis(),
                        until.as_millis()
                    ));
                    Some(Fault::Slow { id, peers, until })
                }
                3 => {
                    // Sometimes a partition leader comes back last, after its session
                    // expired: a follower that lost unsynced data may then be elected.
                    let stagger = matches!(
                        workload,
                        Workload::ClusterPower | Workload::ClusterPowerMemory
                    ) || self.rng.chance(500);
                    let late = if stagger {
                        self.pick_leader(workload.spec().partitions)
                            .map(|(_, id)| id)
                    } else {
                        None
                    };
                    self.log.push(format!(
                        "{stamp} arm power loss of every broker (controller {controller}, \
                         late {late:?})"
                    ));
                    Some(Fault::PowerArmed {
                        deadline: now + Duration::from_millis(ARM_WAIT_MS),
                        late,
                    })
                }
                _ => {
                    // Quorum split: the controller and one other broker on the minority.
                    let partner = others[self.rng.below(others.len() as u64) as usize];
                    let minority = vec![controller, partner];
                    let majority: Vec<i32> =
                        others.iter().copied().filter(|id| *id != partner).collect();
                    for a in &minority {
                        for b in &majority {
                            self.cut(&host(*a), &host(*b));
                        }
                    }
                    let hold = self.rng.between(SESSION_TIMEOUT_MS + 300, 4_000);
                    let until = now + Duration::from_millis(hold);
                    self.log.push(format!(
                        "{stamp} split brokers {minority:?} (controller {controller}) | \
                         {majority:?} until {}ms",
                        until.as_millis()
                    ));
                    Some(Fault::Split {
                        minority,
                        majority,
                        until,
                    })
                }
            }
        }

        /// Brokers other than `id` that already hold records of `id`'s unsynced tail of a
        /// partition `id` leads (as sampled): `(broker, partition, where a lose-all crash
        /// cuts id's log, the broker's log end)`. A log is matched across disks by the value
        /// at offset 0 (values are unique per run); the partition comes from the values sent.
        fn tail_holders(&self, id: i32) -> Vec<(i32, i32, i64, i64)> {
            let disk = &self.disks[(id - 1) as usize];
            let parse = |value: Option<bytes::Bytes>| {
                value
                    .as_ref()
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.parse::<u64>().ok())
            };
            let mut holders = Vec::new();
            for (key, cut) in disk.unsynced_append_starts() {
                if cut == 0 {
                    continue;
                }
                let Some(first) = parse(disk.value_at(key, 0)) else {
                    continue;
                };
                let partition = self.cluster(|c| {
                    let partition = *c.sent.get(&first)?;
                    let led = c.leaders.get(&partition).is_some_and(|(l, _)| *l == id);
                    led.then_some(partition)
                });
                let Some(partition) = partition else {
                    continue;
                };
                for (index, other) in self.disks.iter().enumerate() {
                    let other_id = index as i32 + 1;
                    if other_id == id {
                        continue;
                    }
                    for (other_key, end) in other.log_ends() {
                        if end > cut && parse(other.value_at(other_key, 0)) == Some(first) {
                            holders.push((other_id, partition, cut, end));
                        }
                    }
                }
            }
            holders
        }

        /// `cluster-majority-crash`: arm the crash of a partition's leader and one other
        /// broker (the fallback partner drawn from the seed now); `None` while leadership is
        /// not known yet.
        fn majority(&mut self, partitions: i32) -> Option<Fault> {
            let now = self.sim.elapsed();
            let (partition, id) = self.pick_leader(partitions)?;
            let others: Vec<i32> = (1..=self.disks.len() as i32)
                .filter(|other| *other != id)
                .collect();
            let other = others[self.rng.below(others.len() as u64) as usize];
            let controller = self.cluster(|c| c.controller);
            self.log.push(format!(
                "{} arm majority crash of broker {id} (leader of {partition}) and another \
                 broker (fallback {other}; controller {controller})",
                now.as_millis()
            ));
            Some(Fault::MajorityArmed {
                id,
                other,
                partition,
                deadline: now + Duration::from_millis(MAJORITY_ARM_WAIT_MS),
            })
        }

        /// `cluster-two-down`: crash two brokers that are not the controller, preferring
        /// a pair that shares no partition (then every partition keeps two replicas).
        fn two_down(&mut self, partitions: i32) -> Option<Fault> {
            let now = self.sim.elapsed();
            let nodes = self.disks.len() as i32;
            let (controller, replicas) = self.cluster(|c| (c.controller, c.replicas.clone()));
            if controller < 0 || (0..partitions).any(|p| !replicas.contains_key(&p)) {
                return None;
            }
            let shared = |a: i32, b: i32| {
                replicas
                    .values()
                    .any(|(r, _)| r.contains(&a) && r.contains(&b))
            };
            let mut pairs = Vec::new();
            for a in 1..=nodes {
                for b in a + 1..=nodes {
                    if a != controller && b != controller {
                        pairs.push((a, b));
                    }
                }
            }
            let apart: Vec<(i32, i32)> = pairs
                .iter()
                .copied()
                .filter(|(a, b)| !shared(*a, *b))
                .collect();
            let pool = if apart.is_empty() { pairs } else { apart };
            let (a, b) = *pool.get(self.rng.below(pool.len() as u64) as usize)?;
            self.crash(a, "two down, first");
            self.crash(b, "two down, second");
            let partitions: Vec<i32> = replicas
                .iter()
                .filter(|(_, (r, _))| !(r.contains(&a) && r.contains(&b)))
                .map(|(p, _)| *p)
                .collect();
            // Fencing (session timeout) and ISR shrinking (lag time) must both have run.
            let settle = SESSION_TIMEOUT_MS.max(REPLICA_LAG_MS) + 1_000;
            let from = now + Duration::from_millis(settle);
            let until = from + Duration::from_millis(self.rng.between(1_500, 3_000));
            self.log.push(format!(
                "{} brokers {a} and {b} down until {}ms (controller {controller}); \
                 partitions {partitions:?} must take acks from {}ms",
                now.as_millis(),
                until.as_millis(),
                from.as_millis()
            ));
            Some(Fault::Crashed {
                ids: vec![a, b],
                until,
                check: Some(ProgressCheck {
                    from,
                    partitions,
                    acks_at_from: None,
                }),
            })
        }

        /// Advance `fault`; returns it back while it lasts, `None` once healed.
        fn advance(&mut self, fault: Fault, heal_now: bool) -> Option<Fault> {
            let now = self.sim.elapsed();
            let stamp = now.as_millis();
            let down_for = |rng: &mut Rng| now + Duration::from_millis(rng.between(100, 2_500));
            match fault {
                Fault::Armed {
                    id,
                    partition,
                    deadline,
                } => {
                    let unsynced = self.disks[(id - 1) as usize].unsynced();
                    if unsynced == 0 && now < deadline && !heal_now {
                        return Some(Fault::Armed {
                            id,
                            partition,
                            deadline,
                        });
                    }
                    let why = format!("leader of {partition}, {unsynced} unsynced ops");
                    self.crash(id, &why);
                    let until = down_for(&mut self.rng);
                    self.advance_crashed(vec![id], until, heal_now)
                }
                Fault::MajorityArmed {
                    id,
                    other,
                    partition,
                    deadline,
                } => {
                    let unsynced = self.disks[(id - 1) as usize].unsynced();
                    let holders = if unsynced >= MAJORITY_UNSYNCED_MIN {
                        self.tail_holders(id)
                    } else {
                        Vec::new()
                    };
                    if holders.is_empty() && now < deadline && !heal_now {
                        return Some(Fault::MajorityArmed {
                            id,
                            other,
                            partition,
                            deadline,
                        });
                    }
                    let mut other = other;
                    if let Some(&(survivor, held, cut, end)) = holders.first() {
                        // The broker holding the tail survives; the third one goes down.
                        other = (1..=self.disks.len() as i32)
                            .find(|b| *b != id && *b != survivor)
                            .unwrap_or(other);
                        self.log.push(format!(
                            "{stamp} broker {survivor} holds partition {held} up to {end}, past \
                             {cut} where broker {id}'s unsynced tail starts"
                        ));
                    }
                    let other_unsynced = self.disks[(other - 1) as usize].unsynced();
                    self.crash_lose_all(
                        id,
                        &format!("leader of {partition}, {unsynced} unsynced ops"),
                    );
                    self.crash_lose_all(
                        other,
                        &format!("with the leader of {partition}, {other_unsynced} unsynced ops"),
                    );
                    let (low, high) = MAJORITY_DOWN_MS;
                    let until = now + Duration::from_millis(self.rng.between(low, high));
                    let (low, high) = MAJORITY_STAGGER_MS;
                    let stagger = Duration::from_millis(self.rng.between(low, high));
                    self.log.push(format!(
                        "{stamp} brokers {id} and {other} down: {other} back at {}ms, {id} \
                         {}ms later",
                        until.as_millis(),
                        stagger.as_millis()
                    ));
                    self.advance(
                        Fault::MajorityDown {
                            id,
                            other,
                            until,
                            stagger,
                            other_up: false,
                        },
                        heal_now,
                    )
                }
                Fault::MajorityDown {
                    id,
                    other,
                    until,
                    stagger,
                    other_up,
                } => {
                    let mut other_up = other_up;
                    if !other_up && (now >= until || heal_now) {
                        self.restart(other);
                        other_up = true;
                    }
                    if now < until + stagger && !heal_now {
                        return Some(Fault::MajorityDown {
                            id,
                            other,
                            until,
                            stagger,
                            other_up,
                        });
                    }
                    self.restart(id);
                    None
                }
                Fault::Stalled {
                    id,
                    partition,
                    acks_before,
                    deadline,
                } => {
                    let acks = self.cluster(|c| c.acks.get(&partition).copied().unwrap_or(0));
                    if acks == acks_before && now < deadline && !heal_now {
                        return Some(Fault::Stalled {
                            id,
                            partition,
                            acks_before,
                            deadline,
                        });
                    }
                    let why = format!(
                        "leader of {partition} cut from the brokers, {} acks since",
                        acks - acks_before
                    );
                    self.crash(id, &why);
                    for other in 1..=self.disks.len() as i32 {
                        if other != id {
                            self.repair(&host(id), &host(other));
                        }
                    }
                    let until = down_for(&mut self.rng);
                    self.advance_crashed(vec![id], until, heal_now)
                }
                Fault::Lagging {
                    id,
                    follower,
                    partition,
                    until,
                } => {
                    if now < until && !heal_now {
                        return Some(Fault::Lagging {
                            id,
                            follower,
                            partition,
                            until,
                        });
                    }
                    self.crash(
                        id,
                        &format!("leader of {partition}, follower {follower} lags"),
                    );
                    self.repair(&host(id), &host(follower));
                    let until = down_for(&mut self.rng);
                    self.advance_crashed(vec![id], until, heal_now)
                }
                Fault::Crashed { ids, until, check } => {
                    let mut check = check;
                    if let Some(progress) = check.as_mut() {
                        if progress.acks_at_from.is_none() && now >= progress.from {
                            progress.acks_at_from = Some(self.cluster(|c| c.acks.clone()));
                        }
                    }
                    if now < until && !heal_now {
                        return Some(Fault::Crashed { ids, until, check });
                    }
                    if let Some(ProgressCheck {
                        from,
                        partitions,
                        acks_at_from: Some(before),
                    }) = check
                    {
                        let after = self.cluster(|c| c.acks.clone());
                        for p in partitions {
                            let (was, is) = (before.get(&p), after.get(&p));
                            if was.copied().unwrap_or(0) >= is.copied().unwrap_or(0) {
                                self.recorder.violation(format!(
                                    "partition {p} took no acks=all write in {}ms..{stamp}ms \
                                     with brokers {ids:?} down (two live replicas remain)",
                                    from.as_millis()
                                ));
                            }
                        }
                    }
                    for id in ids {
                        self.restart(id);
                    }
                    None
                }
                Fault::Isolated { id, peers, until } => {
                    if now < until && !heal_now {
                        return Some(Fault::Isolated { id, peers, until });
                    }
                    self.log.push(format!("{stamp} broker {id} rejoins"));
                    for peer in &peers {
                        self.repair(&host(id), peer);
                    }
                    None
                }
                Fault::Split {
                    minority,
                    majority,
                    until,
                } => {
                    if now < until && !heal_now {
                        return Some(Fault::Split {
                            minority,
                            majority,
                            until,
                        });
                    }
                    self.log.push(format!("{stamp} split heals"));
                    for a in &minority {
                        for b in &majority {
                            self.repair(&host(*a), &host(*b));
                        }
                    }
                    None
                }
                Fault::Paused { id, peers, until } => {
                    if now < until && !heal_now {
                        return Some(Fault::Paused { id, peers, until });
                    }
                    self.log.push(format!("{stamp} broker {id} resumes"));
                    for peer in &peers {
                        self.sim.release(host(id).as_str(), peer.as_str());
                    }
                    None
                }
                Fault::Slow { id, peers, until } => {
                    if now < until && !heal_now {
                        return Some(Fault::Slow { id, peers, until });
                    }
                    self.log
                        .push(format!("{stamp} broker {id}'s links fast again"));
                    for peer in &peers {
                        let (a, b) = (host(id), peer.as_str());
                        self.sim.set_link_latency(a.as_str(), b, LATENCY_MIN);
                        self.sim
                            .set_link_max_message_latency(a.as_str(), b, LATENCY_MAX);
                    }
                    None
                }
                Fault::PowerArmed { deadline, late } => {
                    let unsynced: usize = self.disks.iter().map(SimDisk::unsynced).sum();
                    if unsynced == 0 && now < deadline && !heal_now {
                        return Some(Fault::PowerArmed { deadline, late });
                    }
                    for id in 1..=self.disks.len() as i32 {
                        self.crash(id, &format!("power loss, {unsynced} unsynced ops in all"));
                    }
                    let until = down_for(&mut self.rng);
                    let later = SESSION_TIMEOUT_MS + self.rng.between(300, 1_500);
                    let late_until = until + Duration::from_millis(later);
                    self.advance(
                        Fault::PowerOut {
                            until,
                            late,
                            late_until,
                            early_up: false,
                        },
                        heal_now,
                    )
                }
                Fault::PowerOut {
                    until,
                    late,
                    late_until,
                    early_up,
                } => {
                    let mut early_up = early_up;
                    if !early_up && (now >= until || heal_now) {
                        early_up = true;
                        for id in 1..=self.disks.len() as i32 {
                            if Some(id) != late {
                                self.restart(id);
                            }
                        }
                    }
                    let late_due = late.is_none() || now >= late_until;
                    if !(heal_now || early_up && late_due) {
                        return Some(Fault::PowerOut {
                            until,
                            late,
                            late_until,
                            early_up,
                        });
                    }
                    if let Some(id) = late {
                        self.restart(id);
                    }
                    None
                }
            }
        }

        fn advance_crashed(&mut self, ids: Vec<i32>, until: Duration, heal: bool) -> Option<Fault> {
            self.advance(
                Fault::Crashed {
                    ids,
                    until,
                    check: None,
                },
                heal,
            )
        }
    }

    /// Which partition each sent value went to (values are unique per run).
    fn value_partitions(recorder: &Recorder) -> BTreeMap<u64, i32> {
        let mut map = BTreeMap::new();
        for event in recorder.history().events {
            if event.f != F::Send || event.kind != Kind::Invoke {
                continue;
            }
            if let Value::Mops(mops) = &event.value {
                for mop in mops {
                    if let Mop::Send { key, value, .. } = mop {
                        map.insert(*value, *key as i32);
                    }
                }
            }
        }
        map
    }

    /// Run one seed of a cluster workload under turmoil.
    pub fn run(seed: u64, workload: Workload) -> RunOutcome {
        let spec = workload.spec();
        let nodes = spec.cluster_nodes;
        let recorder = Recorder::default();
        let control = Control::default();
        let skew = WallSkew::default();
        let mut builder = turmoil::Builder::new();
        builder
            .simulation_duration(RUN_TIME_MAX + Duration::from_secs(60))
            .tick_duration(Duration::from_millis(1))
            .rng_seed(Rng::fork(seed, "turmoil").next_u64())
            .epoch(UNIX_EPOCH + Duration::from_millis(WALL_MS_START as u64))
            .min_message_latency(LATENCY_MIN)
            .max_message_latency(LATENCY_MAX)
            .tcp_capacity(4096)
            .enable_random_order();
        let mut sim = builder.build();

        let mut disks = Vec::new();
        let mut exits = Vec::new();
        for id in 1..=nodes {
            let disk = SimDisk::new(Rng::fork(seed, &format!("disk-{id}")), DiskFaults::NONE);
            let exit = BrokerExit::default();
            disks.push(disk.clone());
            exits.push(exit.clone());
            let incarnations = Arc::new(AtomicI64::new(0));
            let skew = skew.clone();
            sim.host(host(id).as_str(), move || {
                let incarnation = incarnations.fetch_add(1, Ordering::Relaxed);
                let runtime_seed = seed ^ (id as u64) << 40 ^ (incarnation as u64) << 48;
                let runtime = TurmoilRuntime::new(runtime_seed, skew.clone());
                let (disk, exit) = (disk.clone(), exit.clone());
                async move {
                    let buggify_seed =
                        Rng::fork(seed, &format!("buggify-{id}")).next_u64() ^ incarnation as u64;
                    let config = server_config(&spec, id, buggify_seed);
                    match weir::server::start(runtime, disk, config).await {
                        Ok(server) => match server.wait().await {
                            Ok(()) => exit.set(Err("broker stopped without a reason".into())),
                            Err(weir::server::ServerError::Poisoned(reason)) => {
                                exit.set(Ok(reason.to_string()))
                            }
                            Err(error) => exit.set(Err(format!("broker stopped: {error}"))),
                        },
                        Err(error) => exit.set(Err(format!("broker could not start: {error}"))),
                    }
                    std::future::pending::<()>().await;
                    Ok(())
                }
            });
        }
        let actors = Actors {
            spec,
            recorder: recorder.clone(),
            control: control.clone(),
            seed,
            bootstrap: bootstrap(nodes),
        };
        let mut clients = Vec::new();
        {
            let (actors, runtime) = (actors.clone(), client_runtime(seed, CLIENT_ADMIN, &skew));
            sim.client(CLIENT_ADMIN, async move {
                super::admin(runtime, actors).await;
                Ok(())
            });
            clients.push(CLIENT_ADMIN.to_owned());
        }
        for index in 0..spec.producers {
            let name = format!("producer-{index}");
            let (actors, runtime) = (actors.clone(), client_runtime(seed, &name, &skew));
            sim.client(name.as_str(), async move {
                workload::producer(runtime, actors, index).await;
                Ok(())
            });
            clients.push(name);
        }
        {
            let (actors, runtime) = (actors.clone(), client_runtime(seed, CLIENT_CONSUMER, &skew));
            sim.client(CLIENT_CONSUMER, async move {
                workload::consumer(runtime, actors).await;
                Ok(())
            });
            clients.push(CLIENT_CONSUMER.to_owned());
        }
        {
            let (actors, runtime) = (actors.clone(), client_runtime(seed, CLIENT_FINAL, &skew));
            sim.client(CLIENT_FINAL, async move {
                workload::final_reader(runtime, actors).await;
                Ok(())
            });
            clients.push(CLIENT_FINAL.to_owned());
        }
        let hosts: Vec<String> = (1..=nodes).map(host).chain(clients).collect();
        let mut world = World {
            sim,
            disks,
            hosts,
            log: Vec::new(),
            rng: Rng::fork(seed, "faults"),
            control: control.clone(),
            recorder: recorder.clone(),
        };

        let faults_max = match workload {
            Workload::ClusterTwoDown => 1,
            Workload::ClusterMajorityCrash => MAJORITY_FAULTS_PER_RUN,
            _ => FAULTS_PER_RUN,
        };
        // The calm between a heal and the next fault (no wait for the cluster to recover).
        let (calm_low, calm_high) = if workload == Workload::ClusterMajorityCrash {
            MAJORITY_CALM_MS
        } else {
            (300, 1_200)
        };
        let mut fault: Option<Fault> = None;
        let mut faults_done = 0u32;
        let mut restarts: Vec<(Duration, i32)> = Vec::new();
        let mut next_fault = Duration::from_millis(world.rng.between(500, 1_500));
        let mut main_started: Option<Duration> = None;
        let mut final_phase = false;
        let mut final_done_at: Option<Duration> = None;
        let mut converged_at: Option<Duration> = None;
        // Mixed workloads: (when, total acks) at the last heal (or the topic's creation);
        // the next fault waits for an ack after it, which must come within RESUME_BUDGET.
        let mixed = matches!(
            workload,
            Workload::ClusterMixed
                | Workload::ClusterMixed5
                | Workload::ClusterPower
                | Workload::ClusterPowerMemory
        );
        let mut resume_from: Option<(Duration, u64)> = None;
        let total_acks = |control: &Control| control.lock().cluster.acks.values().sum::<u64>();
        loop {
            let now = world.sim.elapsed();
            let stamp = now.as_millis();
            for (index, exit) in exits.iter().enumerate() {
                let id = index as i32 + 1;
                match exit.take() {
                    None => {}
                    Some(Ok(reason)) => {
                        world.crash(id, &format!("poisoned: {reason}"));
                        restarts.push((now + Duration::from_millis(20), id));
                    }
                    Some(Err(reason)) => recorder.violation(format!("broker {id}: {reason}")),
                }
            }
            while let Some(index) = restarts.iter().position(|(at, _)| *at <= now) {
                let (_, id) = restarts.remove(index);
                world.restart(id);
            }
            let ready = control.lock().cluster.topic_ready;
            if ready && main_started.is_none() {
                main_started = Some(now);
            }
            if mixed && ready && main_started == Some(now) {
                resume_from = Some((now, 0));
            }
            let resumed = match resume_from {
                None => true,
                Some((since, acks)) => {
                    let resumed = total_acks(&control) > acks;
                    if resumed {
                        resume_from = None;
                    } else if !final_phase && now > since + RESUME_BUDGET {
                        recorder.violation(format!(
                            "no acks=all write acknowledged in the {}s after {}ms (fault \
                             healed or topic created)",
                            RESUME_BUDGET.as_secs(),
                            since.as_millis()
                        ));
                        resume_from = None;
                    }
                    resumed
                }
            };
            if let Some(current) = fault.take() {
                fault = world.advance(current, final_phase);
                if fault.is_none() {
                    faults_done += 1;
                    next_fault =
                        now + Duration::from_millis(world.rng.between(calm_low, calm_high));
                    if mixed {
                        resume_from = Some((now, total_acks(&control)));
                    }
                }
            } else if ready
                && resumed
                && !final_phase
                && faults_done < faults_max
                && now >= next_fault
            {
                fault = world.start_fault(workload, spec.partitions);
                if fault.is_none() {
                    next_fault = now + Duration::from_millis(200);
                }
            }
            let stop = faults_done >= faults_max && now >= next_fault && resumed
                || main_started.is_some_and(|at| now > at + MAIN_PHASE_MAX);
            if stop && !control.lock().cluster.stop_producing {
                world
                    .log
                    .push(format!("{stamp} faults done: producers stop"));
                control.lock().cluster.stop_producing = true;
            }
            if !final_phase && control.lock().producers_done == spec.producers {
                final_phase = true;
                world.log.push(format!("{stamp} final phase: all healed"));
                if let Some(current) = fault.take() {
                    fault = world.advance(current, true);
                }
                control.lock().final_phase = true;
            }
            if final_done_at.is_none() && control.lock().final_done {
                final_done_at = Some(now);
            }
            if let Some(done) = final_done_at {
                let rounds = control.lock().cluster.full_isr_rounds;
                if converged_at.is_none() && rounds >= 2 {
                    converged_at = Some(now);
                }
                if converged_at.is_some_and(|at| now >= at + SETTLE) {
                    break;
                }
                if now > done + CONVERGE_BUDGET {
                    let isr = control.lock().cluster.replicas.clone();
                    recorder.violation(format!(
                        "replicas did not converge: ISRs not full {}s after the final \
                         reads ({isr:?})",
                        CONVERGE_BUDGET.as_secs()
                    ));
                    break;
                }
            }
            match world.sim.step() {
                Ok(true) => break,
                Ok(false) => {}
                Err(error) => {
                    recorder.violation(format!("simulation error: {error}"));
                    break;
                }
            }
            if world.sim.elapsed() > RUN_TIME_MAX {
                recorder.violation(format!(
                    "run did not finish in {RUN_TIME_MAX:?} of simulated time"
                ));
                break;
            }
        }
        control.lock().cluster.sampling_done = true;
        if converged_at.is_some() {
            let leaders = control.lock().cluster.leaders.clone();
            let numbered: Vec<(i32, SimDisk)> =
                (1..=nodes).zip(world.disks.iter().cloned()).collect();
            for violation in compare_replicas(&numbered, &leaders, &value_partitions(&recorder)) {
                recorder.violation(violation);
            }
        }
        let mut log = world.log;
        let claims = control.lock().cluster.claims.len();
        log.push(format!("leadership claims sampled: {claims}"));
        log.push(format!("{} end", world.sim.elapsed().as_millis()));
        RunOutcome::judge(
            "turmoil",
            seed,
            workload,
            recorder.history(),
            recorder.violations(),
            log,
        )
    }
}
