//! Cluster workloads (`cluster-crash`, `cluster-partition`): three brokers in cluster mode
//! (voters 1, 2, 3; every node a controller and a broker), one topic with replication factor
//! 3 and `min.insync.replicas=2`, idempotent acks=all producers, while the harness crashes
//! (unsynced writes lost) or isolates the current leader of a partition.
//!
//! Actors: the `admin` host creates the topic through the native admin client (asking each
//! broker in turn: only the active controller accepts, the others answer NOT_CONTROLLER),
//! then samples leadership; producers and the consumer wait until the topic exists; the
//! final reader and checker are the shared ones (`weir_jepsen::check`, idempotence on, so a
//! duplicate is a violation).
//!
//! Harness property (recorded as violations):
//! - at most one leader per partition per epoch: every sampling round asks each reachable
//!   broker for Metadata; broker `n` claims leadership of `p` in epoch `e` when its own
//!   answer names `n` as leader with epoch `e`. Claims accumulate over the run; two nodes
//!   claiming one `(p, e)` is a violation. (Metadata answers come from the node's image,
//!   i.e. `Node::partition_leadership`; the node's replica role follows the image.)
//!
//! Status (found by seed 0 of `cluster-crash`, turmoil): the run never gets past simulated
//! time ~407 ms, when node 1 becomes Raft leader: the broker's node loop spins. Diagnosis:
//! `Node::cluster_deadline` (broker/core/src/node/cluster.rs:425-427, and :446 for a
//! partition leader) offers `next_controller_check` as a deadline whenever the node is the
//! Raft leader, but the controller check (cluster.rs:1144) returns without advancing it
//! while `!is_active_controller()`; the deadline stays in the past, `poll_timeout` keeps
//! returning it, and `handle_timeout` never consumes it. On a real clock that is a CPU spin
//! until the controller activates; under turmoil time only moves between steps, so it never
//! ends. These workloads are therefore in `Workload::CLUSTER`, not `ALL` (not in CI).
//!
//! Invariant: one fault at a time, so two of three replicas stay up and acks=all with
//! `min.insync.replicas=2` can make progress after every fault.

use std::collections::BTreeMap;
use std::time::Duration;

use weir_client::driver::connection::Connection;
use weir_client::{Admin, ClientError, NewTopic};
use weir_runtime::Runtime;
use weir_wire::domain::{ApiRequest, ApiResponse, MetadataRequest, TopicRef};

use crate::workload::{client_config, sleep, Actors, Spec, BROKER_PORT, TOPIC};

/// Brokers in a cluster run.
pub const CLUSTER_NODES: i32 = 3;
/// Port of every node's controller (peer) listener.
pub const PEER_PORT: u16 = 9093;
/// `broker.session.timeout.ms` in the simulation (short, so runs are quick).
pub const SESSION_TIMEOUT_MS: u64 = 1_500;
/// `broker.heartbeat.interval.ms` in the simulation.
pub const HEARTBEAT_MS: u64 = 200;
/// `controller.quorum.election.timeout.ms` in the simulation.
pub const ELECTION_TIMEOUT_MS: u64 = 300;
/// How often the admin host samples every broker's view of leadership.
const SAMPLE_EVERY: Duration = Duration::from_millis(25);

/// What the harness and the cluster actors share.
#[derive(Debug, Default)]
pub struct ClusterLog {
    /// The topic was created; producers and consumers may start.
    pub topic_ready: bool,
    /// Latest claimed leader per partition (the claim with the highest epoch).
    pub leaders: BTreeMap<i32, (i32, i32)>,
    /// Every `(partition, epoch)` claimed, with the claiming node.
    pub claims: BTreeMap<(i32, i32), i32>,
}

/// The spec of a cluster workload; `partition` picks leader isolation over crashes.
pub fn spec(base: Spec, partition: bool) -> Spec {
    Spec {
        crashes: !partition,
        net_faults: partition,
        idempotent: true,
        cluster_nodes: CLUSTER_NODES,
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

/// The server configuration of broker `id` in a cluster of `nodes`.
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
    cluster.replica_lag_time_max_ms = 3_000;
    cluster.replica_fetch_wait_max_ms = 100;
    cluster.auto_leader_rebalance = false;
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
/// the final reader is done.
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
    while !actors.control.lock().final_done {
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
            let claimed: Vec<(i32, i32)> = response
                .topics
                .iter()
                .filter(|t| t.name.as_deref() == Some(TOPIC))
                .flat_map(|t| t.partitions.iter())
                .filter(|p| p.leader_id == id)
                .map(|p| (p.partition, p.leader_epoch))
                .collect();
            let mut control = actors.control.lock();
            for (partition, epoch) in claimed {
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
                }
            }
        }
        sleep(runtime, SAMPLE_EVERY).await;
    }
}

/// The turmoil harness of the cluster workloads.
#[cfg(not(madsim))]
pub mod turmoil_run {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use crate::disk::{DiskFaults, SimDisk};
    use crate::history::Recorder;
    use crate::outcome::RunOutcome;
    use crate::seed::Rng;
    use crate::turmoil::{client_runtime, TurmoilRuntime, WallSkew, RUN_TIME_MAX, WALL_MS_START};
    use crate::workload::{self, Actors, BrokerExit, Control, Workload};

    use super::{bootstrap, host, server_config, SESSION_TIMEOUT_MS};

    const CLIENT_ADMIN: &str = "admin";
    const CLIENT_CONSUMER: &str = "consumer";
    const CLIENT_FINAL: &str = "final-reader";

    /// One fault at a time against a partition leader.
    enum Down {
        Crashed { id: i32, until: Duration },
        Isolated { id: i32, until: Duration },
    }

    /// Run one seed of a cluster workload under turmoil.
    pub fn run(seed: u64, workload: Workload) -> RunOutcome {
        let spec = workload.spec();
        let nodes = spec.cluster_nodes;
        let recorder = Recorder::default();
        let control = Control::default();
        let skew = WallSkew::default();
        let mut faults_rng = Rng::fork(seed, "faults");
        let mut builder = turmoil::Builder::new();
        builder
            .simulation_duration(RUN_TIME_MAX + Duration::from_secs(60))
            .tick_duration(Duration::from_millis(1))
            .rng_seed(Rng::fork(seed, "turmoil").next_u64())
            .epoch(UNIX_EPOCH + Duration::from_millis(WALL_MS_START as u64))
            .min_message_latency(Duration::from_micros(200))
            .max_message_latency(Duration::from_millis(3))
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

        let mut log: Vec<String> = Vec::new();
        let mut down: Option<Down> = None;
        let mut restarts: Vec<(Duration, i32)> = Vec::new();
        let mut next_fault = Duration::from_millis(faults_rng.between(500, 1_500));
        let mut final_phase = false;
        loop {
            let now = sim.elapsed();
            let stamp = now.as_millis();
            for (index, exit) in exits.iter().enumerate() {
                let id = index as i32 + 1;
                match exit.take() {
                    None => {}
                    Some(Ok(reason)) => {
                        log.push(format!("{stamp} broker {id} poisoned ({reason}): restart"));
                        sim.crash(host(id).as_str());
                        let fate = disks[index].crash();
                        log.push(format!("{stamp} disk {id} crash fate {fate:?}"));
                        restarts.push((now + Duration::from_millis(20), id));
                    }
                    Some(Err(reason)) => recorder.violation(format!("broker {id}: {reason}")),
                }
            }
            while let Some(index) = restarts.iter().position(|(at, _)| *at <= now) {
                let (_, id) = restarts.remove(index);
                log.push(format!("{stamp} broker {id} restart"));
                sim.bounce(host(id).as_str());
            }
            let heal_due = match &down {
                Some(Down::Crashed { until, .. } | Down::Isolated { until, .. }) => {
                    *until <= now || final_phase
                }
                None => false,
            };
            if heal_due {
                match down.take() {
                    Some(Down::Crashed { id, .. }) => {
                        log.push(format!("{stamp} broker {id} restart"));
                        sim.bounce(host(id).as_str());
                    }
                    Some(Down::Isolated { id, .. }) => {
                        log.push(format!("{stamp} broker {id} rejoins"));
                        for other in &hosts {
                            if *other != host(id) {
                                sim.repair(host(id).as_str(), other.as_str());
                            }
                        }
                    }
                    None => {}
                }
                next_fault = now + Duration::from_millis(faults_rng.between(300, 1_500));
            }
            let ready = control.lock().cluster.topic_ready;
            if ready && !final_phase && down.is_none() && now >= next_fault {
                let partition = faults_rng.below(spec.partitions as u64) as i32;
                let leader = control.lock().cluster.leaders.get(&partition).copied();
                if let Some((id, epoch)) = leader {
                    if spec.crashes {
                        let until = now + Duration::from_millis(faults_rng.between(100, 2_500));
                        sim.crash(host(id).as_str());
                        let fate = disks[(id - 1) as usize].crash();
                        log.push(format!(
                            "{stamp} crash broker {id} (leader of {partition} in epoch \
                             {epoch}) until {}ms, disk fate {fate:?}",
                            until.as_millis()
                        ));
                        down = Some(Down::Crashed { id, until });
                    } else {
                        let hold = faults_rng.between(SESSION_TIMEOUT_MS + 300, 4_000);
                        let until = now + Duration::from_millis(hold);
                        for other in &hosts {
                            if *other != host(id) {
                                sim.partition(host(id).as_str(), other.as_str());
                            }
                        }
                        log.push(format!(
                            "{stamp} isolate broker {id} (leader of {partition} in epoch \
                             {epoch}) until {}ms",
                            until.as_millis()
                        ));
                        down = Some(Down::Isolated { id, until });
                    }
                } else {
                    next_fault = now + Duration::from_millis(200);
                }
            }
            if !final_phase && control.lock().producers_done == spec.producers {
                final_phase = true;
                log.push(format!("{stamp} final phase: all healed"));
                match down.take() {
                    Some(Down::Crashed { id, .. }) => sim.bounce(host(id).as_str()),
                    Some(Down::Isolated { id, .. }) => {
                        for other in &hosts {
                            if *other != host(id) {
                                sim.repair(host(id).as_str(), other.as_str());
                            }
                        }
                    }
                    None => {}
                }
                control.lock().final_phase = true;
            }
            if control.lock().final_done {
                break;
            }
            match sim.step() {
                Ok(true) => break,
                Ok(false) => {}
                Err(error) => {
                    recorder.violation(format!("simulation error: {error}"));
                    break;
                }
            }
            if sim.elapsed() > RUN_TIME_MAX {
                recorder.violation(format!(
                    "run did not finish in {RUN_TIME_MAX:?} of simulated time"
                ));
                break;
            }
        }
        let claims = control.lock().cluster.claims.len();
        log.push(format!("leadership claims sampled: {claims}"));
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
