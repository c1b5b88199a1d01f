//! The madsim simulator (compiled only with `RUSTFLAGS="--cfg madsim"`): the workspace's
//! `tokio` is then madsim's, so the production `TokioRuntime` itself is simulated — the
//! broker runs exactly as in production, on simulated sockets, timers and clocks.
//!
//! One madsim runtime per seed; nodes: the broker (restartable: its init closure starts
//! the server over a [`HostDisk`] that lives outside the node), one node per client actor.
//! Faults: kill/restart with seeded disk fates, pause/resume (a stopped process), clogged
//! nodes and links (one-way either way and two-way partitions, broker isolation, a split
//! that cuts the producers off while the consumers keep the broker), packet loss, latency
//! spikes, wall-clock jumps ([`WallSkew`] through the [`Skewed`] runtime) and whole-world
//! stalls (`madsim::time::advance`: both clocks leap forward, every timer fires).
//!
//! Invariant: the same seed gives the same run (madsim's scheduler, RNG and clock are
//! seeded); a broker that poisons itself is killed and restarted by the harness.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle, Runtime};
use weir_runtime::TokioRuntime;

use crate::clock::{Skewed, WallSkew};
use crate::disk::{DiskFaults, HostDisk};
use crate::history::Recorder;
use crate::outcome::RunOutcome;
use crate::seed::Rng;
use crate::workload::{self, Actors, BrokerExit, Control, Workload, BROKER_HOST, BROKER_PORT};

/// A run that has not finished after this much simulated time is reported stuck.
pub const RUN_TIME_MAX: Duration = Duration::from_secs(300);
/// Harness step: how often the fault schedule and the broker's state are looked at.
const STEP: Duration = Duration::from_millis(1);

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

/// Run one seed of one workload under madsim.
pub fn run(seed: u64, workload: Workload) -> RunOutcome {
    assert_eq!(
        workload.spec().cluster_nodes,
        0,
        "cluster workloads run in madsim_cluster"
    );
    let mut config = madsim::Config::default();
    config.net.send_latency = latency_normal();
    // Debugging aid: madsim's and the broker's tracing, stamped with simulated time.
    if std::env::var_os("WEIR_SIM_LOG").is_some() {
        madsim::runtime::init_logger();
    }
    let runtime = Runtime::with_seed_and_config(seed, config);
    let (recorder, faults) = runtime.block_on(simulate(seed, workload));
    RunOutcome::judge(
        "madsim",
        seed,
        workload,
        recorder.history(),
        recorder.violations(),
        faults,
    )
}

// Inside madsim `Instant` is simulated (madsim intercepts it): the harness's clock.
#[allow(clippy::disallowed_methods)]
async fn simulate(seed: u64, workload: Workload) -> (Recorder, Vec<String>) {
    let spec = workload.spec();
    let handle = Handle::current();
    let net = NetSim::current();
    net.add_dns_record(BROKER_HOST, ip(1));
    let recorder = Recorder::default();
    let control = Control::default();
    let disk = HostDisk::new(seed, "disk", spec.disk, workload::shards_of(seed, "broker"));
    let exit = BrokerExit::default();
    let skew = WallSkew::default();
    let mut faults_rng = Rng::fork(seed, "faults");
    let mut log = vec![format!("broker shards {}", disk.shard_count())];

    let incarnation = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let broker = {
        let (disk, exit, skew) = (disk.clone(), exit.clone(), skew.clone());
        handle
            .create_node()
            .name(BROKER_HOST)
            .ip(ip(1))
            .init(move || {
                let (disk, exit, skew) = (disk.clone(), exit.clone(), skew.clone());
                let n = incarnation.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                async move {
                    let runtime = Skewed::new(TokioRuntime::new(seed ^ (n << 48)), skew);
                    let buggify_seed = Rng::fork(seed, "buggify").next_u64() ^ n;
                    let config = workload::server_config(&spec, &ip(1).to_string(), buggify_seed);
                    exit.serve(runtime, disk, config, None).await;
                }
            })
            .build()
    };
    let actors = Actors {
        spec,
        recorder: recorder.clone(),
        control: control.clone(),
        seed,
        bootstrap: format!("{}:{BROKER_PORT}", ip(1)),
    };
    let mut clients: Vec<NodeHandle> = Vec::new();
    let mut tasks = Vec::new();
    for index in 0..spec.producers {
        let node = client_node(&handle, &format!("producer-{index}"), 10 + index as u8);
        let name = format!("producer-{index}");
        let (actors, client_seed) = (actors.clone(), Rng::fork(seed, &name).next_u64());
        let skew = skew.clone();
        tasks.push(node.spawn(async move {
            let runtime = Skewed::new(TokioRuntime::new(client_seed), skew);
            crate::dispatch::producer(runtime, actors, index).await;
        }));
        clients.push(node);
    }
    {
        let node = client_node(&handle, "consumer", 30);
        let (actors, skew) = (actors.clone(), skew.clone());
        let client_seed = Rng::fork(seed, "consumer").next_u64();
        tasks.push(node.spawn(async move {
            let runtime = Skewed::new(TokioRuntime::new(client_seed), skew);
            crate::dispatch::consumer(runtime, actors).await;
        }));
        clients.push(node);
    }
    // Consumer-group members, one node each so that faults hit them apart.
    for index in 0..spec.group_members {
        let name = crate::workload_group::member_name(index);
        let node = client_node(&handle, &name, 40 + index as u8);
        let (actors, skew, disk) = (actors.clone(), skew.clone(), disk.clone());
        let client_seed = Rng::fork(seed, &name).next_u64();
        tasks.push(node.spawn(async move {
            let runtime = Skewed::new(TokioRuntime::new(client_seed), skew);
            crate::workload_group::member(runtime, actors, index, disk).await;
        }));
        clients.push(node);
    }
    {
        let node = client_node(&handle, "final-reader", 31);
        let (actors, skew) = (actors.clone(), skew.clone());
        let client_seed = Rng::fork(seed, "final-reader").next_u64();
        tasks.push(node.spawn(async move {
            let runtime = Skewed::new(TokioRuntime::new(client_seed), skew);
            crate::dispatch::final_reader(runtime, actors).await;
        }));
    }

    let start = tokio::time::Instant::now();
    let mut restart_at: Option<Duration> = None;
    let mut paused_until: Option<Duration> = None;
    let mut heals: Vec<(Duration, Heal)> = Vec::new();
    let mut next_fault = Duration::from_millis(faults_rng.between(100, 600));
    let any_faults = spec.crashes || spec.net_faults || spec.clock_jumps;
    let mut final_phase = false;
    loop {
        let now = start.elapsed();
        let stamp = now.as_millis();
        if let Some(exit) = exit.take() {
            match exit {
                Ok(reason) => {
                    log.push(format!("{stamp} broker poisoned ({reason}): restart"));
                    handle.kill(broker.id());
                    log.push(format!("{stamp} disk crash fate {:?}", disk.crash()));
                    restart_at = Some(now + Duration::from_millis(20));
                }
                Err(reason) => {
                    recorder.violation(reason);
                    break;
                }
            }
        }
        if restart_at.is_some_and(|at| now >= at) {
            log.push(format!("{stamp} broker restart"));
            restart_at = None;
            handle.restart(broker.id());
        }
        if paused_until.is_some_and(|at| now >= at) {
            log.push(format!("{stamp} broker resumed"));
            paused_until = None;
            handle.resume(broker.id());
        }
        while let Some(index) = heals.iter().position(|(at, _)| *at <= now) {
            let (_, heal) = heals.remove(index);
            log.push(format!("{stamp} heal {heal:?}"));
            heal.undo(&net, broker.id(), &clients);
        }
        if !final_phase && any_faults && now >= next_fault {
            next_fault = now + Duration::from_millis(faults_rng.between(50, 800));
            let until = now + Duration::from_millis(faults_rng.between(50, 2_500));
            let mut kinds = Vec::new();
            if spec.crashes && restart_at.is_none() && paused_until.is_none() {
                kinds.extend([0, 1]);
            }
            if spec.net_faults {
                kinds.extend([2, 3, 4, 5, 6, 7, 8]);
            }
            if spec.clock_jumps {
                kinds.extend([9, 10]);
            }
            let kind = kinds
                .get(faults_rng.below(kinds.len() as u64) as usize)
                .copied();
            let client = faults_rng.below(clients.len() as u64) as usize;
            match kind {
                Some(0) => {
                    let down = Duration::from_millis(faults_rng.between(1, 1_500));
                    log.push(format!("{stamp} kill broker for {}ms", down.as_millis()));
                    handle.kill(broker.id());
                    log.push(format!("{stamp} disk crash fate {:?}", disk.crash()));
                    restart_at = Some(now + down);
                }
                Some(1) => {
                    log.push(format!("{stamp} pause broker until {}", until.as_millis()));
                    handle.pause(broker.id());
                    paused_until = Some(until);
                }
                Some(9) => {
                    let delta_ms = faults_rng.between(0, 7_200_000) as i64 - 3_600_000;
                    log.push(format!("{stamp} wall clock jumps {delta_ms}ms"));
                    skew.jump(delta_ms);
                }
                Some(10) => {
                    // Every node stalls at once and wakes up late: both clocks leap
                    // forward and every timer due meanwhile fires together.
                    let leap = Duration::from_millis(faults_rng.between(10, 4_000));
                    log.push(format!("{stamp} world stalls {}ms", leap.as_millis()));
                    madsim::time::advance(leap);
                }
                Some(kind) => {
                    let heal = match kind {
                        2 => Heal::Link(client, Direction::Both),
                        3 => Heal::Link(client, Direction::ToClient),
                        4 => Heal::Link(client, Direction::ToBroker),
                        5 => Heal::Isolate,
                        6 => Heal::Split(spec.producers),
                        7 => Heal::Latency,
                        _ => Heal::Loss,
                    };
                    log.push(format!(
                        "{stamp} fault {heal:?} until {}",
                        until.as_millis()
                    ));
                    heal.apply(&net, broker.id(), &clients);
                    heals.push((until, heal));
                }
                None => {}
            }
        }
        if !final_phase && control.lock().producers_done == spec.producers {
            final_phase = true;
            for (_, heal) in std::mem::take(&mut heals) {
                heal.undo(&net, broker.id(), &clients);
            }
            disk.set_faults(DiskFaults::NONE);
            if paused_until.take().is_some() {
                handle.resume(broker.id());
            }
            if restart_at.take().is_some() {
                handle.restart(broker.id());
            }
            log.push(format!("{stamp} final phase: all healed"));
            control.lock().final_phase = true;
        }
        if control.lock().final_done {
            break;
        }
        if now > RUN_TIME_MAX {
            recorder.violation(format!(
                "run did not finish in {RUN_TIME_MAX:?} of simulated time"
            ));
            break;
        }
        tokio::time::sleep(STEP).await;
    }
    drop(tasks);
    log.push(format!("disk {:?}", disk.stats()));
    (recorder, log)
}

fn client_node(handle: &Handle, name: &str, last: u8) -> NodeHandle {
    handle.create_node().name(name).ip(ip(last)).build()
}

/// Which way a clogged link drops messages.
#[derive(Debug, Clone, Copy)]
enum Direction {
    /// Two-way partition.
    Both,
    /// Broker -> client lost (requests arrive, answers do not).
    ToClient,
    /// Client -> broker lost.
    ToBroker,
}

/// A network fault in progress.
#[derive(Debug, Clone, Copy)]
enum Heal {
    /// One client's link to the broker.
    Link(usize, Direction),
    /// The broker cut off from everyone.
    Isolate,
    /// The cluster split in two: the first `n` clients (the producers) lose the broker,
    /// the consumers keep it.
    Split(usize),
    /// Latency spikes to 150 ms.
    Latency,
    /// Packet loss.
    Loss,
}

/// Message latency outside of latency faults.
fn latency_normal() -> std::ops::Range<Duration> {
    Duration::from_micros(200)..Duration::from_millis(3)
}

impl Heal {
    fn apply(self, net: &NetSim, broker: madsim::task::NodeId, clients: &[NodeHandle]) {
        match self {
            Heal::Link(index, direction) => {
                let client = clients[index].id();
                if matches!(direction, Direction::Both | Direction::ToClient) {
                    net.clog_link(broker, client);
                }
                if matches!(direction, Direction::Both | Direction::ToBroker) {
                    net.clog_link(client, broker);
                }
            }
            Heal::Isolate => net.clog_node(broker),
            Heal::Split(producers) => {
                for client in clients.iter().take(producers) {
                    net.clog_link(broker, client.id());
                    net.clog_link(client.id(), broker);
                }
            }
            Heal::Latency => net.update_config(|config| {
                config.send_latency = Duration::from_micros(200)..Duration::from_millis(150)
            }),
            Heal::Loss => net.update_config(|config| config.packet_loss_rate = 0.02),
        }
    }

    fn undo(self, net: &NetSim, broker: madsim::task::NodeId, clients: &[NodeHandle]) {
        match self {
            Heal::Link(index, _) => {
                let client = clients[index].id();
                net.unclog_link(broker, client);
                net.unclog_link(client, broker);
            }
            Heal::Isolate => net.unclog_node(broker),
            Heal::Split(producers) => {
                for client in clients.iter().take(producers) {
                    net.unclog_link(broker, client.id());
                    net.unclog_link(client.id(), broker);
                }
            }
            Heal::Latency => net.update_config(|config| config.send_latency = latency_normal()),
            Heal::Loss => net.update_config(|config| config.packet_loss_rate = 0.0),
        }
    }
}
