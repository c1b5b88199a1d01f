//! Cluster workloads (`cluster-crash`, `cluster-partition`, `cluster-two-down`, ...; both
//! simulators): brokers in cluster mode (every node a Raft voter and a broker; three nodes,
//! five for `cluster-two-down`), one topic with replication factor 3 and
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
//! This file holds the workloads' specs, the brokers' configuration, the admin actor and
//! the replica comparison; the fault schedule is [`crate::cluster_harness`]'s, driven by
//! `turmoil_cluster` or `madsim_cluster`.
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
//! - `cluster-two-down`: every partition with at most one replica down that is offered
//!   writes (a send to it in flight) takes acknowledged writes while the two brokers are
//!   down (after leadership and ISR changes settle);
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
            let mut configs = vec![("min.insync.replicas".to_owned(), "2".to_owned())];
            if actors.spec.tiered {
                // Segments of a few batches, uploaded and trimmed locally at once.
                for (name, value) in [
                    ("remote.storage.enable", "true"),
                    ("segment.bytes", "400"),
                    ("local.retention.bytes", "1"),
                ] {
                    configs.push((name.to_owned(), value.to_owned()));
                }
            }
            let topic = NewTopic {
                configs,
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

pub(crate) fn already_exists(error: &ClientError) -> bool {
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
    disks: &[(i32, crate::disk::HostDisk)],
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
