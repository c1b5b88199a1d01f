//! The madsim driver of the cluster workloads (compiled only with `--cfg madsim`): one
//! madsim node per broker (its own IP and DNS name `broker-<id>`; restartable: its init
//! closure starts the production server over a [`HostDisk`] that lives outside the node, so
//! a kill keeps or loses unsynced writes by the disk's seeded fate), one node per client
//! actor. The fault schedule and the checks are [`crate::cluster_harness`]'s, reached
//! through [`ClusterSim`]:
//! - crash / restart: `Handle::kill` / `Handle::restart` (the disk's fate is the
//!   schedule's: seeded, or lose-all for the majority crash);
//! - cut / repair: `NetSim::clog_link` / `unclog_link`, both directions;
//! - hold / release (a paused process): `Handle::pause` / `resume` of the broker's node —
//!   nothing it sends or receives is handled until it resumes;
//! - slow / fast: madsim has one latency range for every link, so a slowed broker slows
//!   the whole network by the same added latency (turmoil slows only that broker's links).
//!
//! Invariant: the same seed gives the same run (madsim's scheduler, RNG and clock are
//! seeded; the schedule draws from the same salted streams as under turmoil).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use madsim::net::NetSim;
use madsim::runtime::{Handle, Runtime};
use madsim::task::NodeId;
use weir_runtime::TokioRuntime;

use crate::clock::{Skewed, WallSkew};
use crate::cluster_harness::{
    ClusterSim, Schedule, World, CLIENT_ADMIN, CLIENT_CONSUMER, CLIENT_FINAL, CLIENT_INTRUDER,
    RUN_TIME_MAX,
};
use crate::disk::{DiskFaults, HostDisk};
use crate::history::Recorder;
use crate::outcome::RunOutcome;
use crate::seed::Rng;
use crate::workload::{Actors, BrokerExit, Control, Workload};
use crate::workload_cluster::{bootstrap, host, server_config};

/// Harness step: how often the fault schedule and the cluster's state are looked at (the
/// turmoil tick).
const STEP: Duration = Duration::from_millis(1);

/// Message latency outside of latency faults (turmoil's builder setting).
fn latency_normal() -> Range<Duration> {
    Duration::from_micros(200)..Duration::from_millis(3)
}

fn broker_ip(id: i32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, id as u8))
}

fn client_ip(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 2, index as u8 + 1))
}

/// The madsim side of [`ClusterSim`]: hosts by name, the clock the harness started.
struct MadsimCluster {
    handle: Handle,
    net: Arc<NetSim>,
    nodes: BTreeMap<String, NodeId>,
    start: tokio::time::Instant,
}

impl MadsimCluster {
    fn node(&self, host: &str) -> NodeId {
        *self
            .nodes
            .get(host)
            .unwrap_or_else(|| panic!("harness names an unknown host {host:?}"))
    }
}

impl ClusterSim for MadsimCluster {
    // Inside madsim `Instant` is simulated (madsim intercepts it): the harness's clock.
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn crash(&mut self, host: &str) {
        self.handle.kill(self.node(host));
    }

    fn restart(&mut self, host: &str) {
        self.handle.restart(self.node(host));
    }

    fn cut(&mut self, a: &str, b: &str) {
        let (a, b) = (self.node(a), self.node(b));
        self.net.clog_link(a, b);
        self.net.clog_link(b, a);
    }

    fn repair(&mut self, a: &str, b: &str) {
        let (a, b) = (self.node(a), self.node(b));
        self.net.unclog_link(a, b);
        self.net.unclog_link(b, a);
    }

    fn hold(&mut self, host: &str, _peers: &[String]) {
        self.handle.pause(self.node(host));
    }

    fn release(&mut self, host: &str, _peers: &[String]) {
        self.handle.resume(self.node(host));
    }

    fn slow(&mut self, _host: &str, _peers: &[String], added: Duration) {
        let normal = latency_normal();
        self.net.update_config(|config| {
            config.send_latency = normal.start + added..normal.end + added;
        });
    }

    fn fast(&mut self, _host: &str, _peers: &[String]) {
        self.net
            .update_config(|config| config.send_latency = latency_normal());
    }
}

/// Run one seed of a cluster workload under madsim.
pub fn run(seed: u64, workload: Workload) -> RunOutcome {
    let mut config = madsim::Config::default();
    config.net.send_latency = latency_normal();
    if std::env::var_os("WEIR_SIM_LOG").is_some() {
        madsim::runtime::init_logger();
    }
    let runtime = Runtime::with_seed_and_config(seed, config);
    let (recorder, log) = runtime.block_on(simulate(seed, workload));
    RunOutcome::judge(
        "madsim",
        seed,
        workload,
        recorder.history(),
        recorder.violations(),
        log,
    )
}

// Inside madsim `Instant` is simulated (madsim intercepts it): the harness's clock.
#[allow(clippy::disallowed_methods)]
async fn simulate(seed: u64, workload: Workload) -> (Recorder, Vec<String>) {
    let spec = workload.spec();
    let nodes = spec.cluster_nodes;
    let handle = Handle::current();
    let net = NetSim::current();
    let recorder = Recorder::default();
    let control = Control::default();
    let skew = WallSkew::default();
    let mut hosts = BTreeMap::new();

    let mut disks = Vec::new();
    let mut exits = Vec::new();
    // The tiered workload's object store: one for the run, outside every broker.
    let objects: Arc<dyn weir::remote::ObjectStoreApi> = Arc::new(weir::remote::InMemory::new());
    for id in 1..=nodes {
        net.add_dns_record(&host(id), broker_ip(id));
        let shards = crate::workload::shards_of(seed, &format!("broker-{id}"));
        let disk = HostDisk::new(seed, &format!("disk-{id}"), DiskFaults::NONE, shards);
        let exit = BrokerExit::default();
        disks.push(disk.clone());
        exits.push(exit.clone());
        let incarnations = Arc::new(AtomicU64::new(0));
        let skew = skew.clone();
        let objects = objects.clone();
        let node = handle
            .create_node()
            .name(host(id))
            .ip(broker_ip(id))
            .init(move || {
                let incarnation = incarnations.fetch_add(1, Ordering::Relaxed);
                let runtime_seed = seed ^ (id as u64) << 40 ^ incarnation << 48;
                // Blocking work (an fsync) takes simulated time, as under turmoil: the
                // window in which a crash finds unsynced writes on the disk.
                let offload_rng = Rng::fork(runtime_seed, "offload");
                let runtime = Skewed::with_offload_latency(
                    TokioRuntime::new(runtime_seed),
                    skew.clone(),
                    offload_rng,
                );
                let (disk, exit) = (disk.clone(), exit.clone());
                let remote = spec.tiered.then(|| {
                    let store_seed =
                        Rng::fork(seed, &format!("store-{id}")).next_u64() ^ incarnation;
                    crate::workload::tiered_store(&objects, runtime.clone(), store_seed)
                });
                async move {
                    let buggify_seed =
                        Rng::fork(seed, &format!("buggify-{id}")).next_u64() ^ incarnation;
                    let mut config = server_config(&spec, id, buggify_seed);
                    if spec.acl {
                        crate::workload_acl::authorize(&mut config);
                    }
                    exit.serve(runtime, disk, config, remote).await;
                }
            })
            .build();
        hosts.insert(host(id), node.id());
    }
    let actors = Actors {
        spec,
        recorder: recorder.clone(),
        control: control.clone(),
        seed,
        bootstrap: bootstrap(nodes),
    };
    let mut client_names = Vec::new();
    let mut tasks = Vec::new();
    let mut client = |name: &str| {
        let node = handle
            .create_node()
            .name(name)
            .ip(client_ip(client_names.len()))
            .build();
        hosts.insert(name.to_owned(), node.id());
        client_names.push(name.to_owned());
        let runtime = Skewed::new(
            TokioRuntime::new(Rng::fork(seed, name).next_u64()),
            skew.clone(),
        );
        (node, runtime, actors.clone())
    };
    {
        let (node, runtime, actors) = client(CLIENT_ADMIN);
        tasks.push(node.spawn(crate::workload_cluster::admin(runtime, actors)));
    }
    for index in 0..spec.producers {
        let (node, runtime, actors) = client(&format!("producer-{index}"));
        tasks.push(node.spawn(crate::dispatch::producer(runtime, actors, index)));
    }
    if spec.acl {
        let (node, runtime, actors) = client(CLIENT_INTRUDER);
        tasks.push(node.spawn(crate::workload_acl::intruder(runtime, actors)));
    }
    {
        let (node, runtime, actors) = client(CLIENT_CONSUMER);
        tasks.push(node.spawn(crate::dispatch::consumer(runtime, actors)));
    }
    {
        let (node, runtime, actors) = client(CLIENT_FINAL);
        tasks.push(node.spawn(crate::dispatch::final_reader(runtime, actors)));
    }
    let names: Vec<String> = (1..=nodes).map(host).chain(client_names).collect();
    let log = vec![crate::cluster_harness::shards_line(&disks)];
    let mut world = World {
        sim: MadsimCluster {
            handle,
            net,
            nodes: hosts,
            start: tokio::time::Instant::now(),
        },
        disks,
        hosts: names,
        log,
        rng: Rng::fork(seed, "faults"),
        control,
        recorder: recorder.clone(),
    };
    let mut schedule = Schedule::new(workload, &mut world);
    loop {
        if schedule.tick(&mut world, &exits) {
            break;
        }
        tokio::time::sleep(STEP).await;
        if world.sim.now() > RUN_TIME_MAX {
            recorder.violation(format!(
                "run did not finish in {RUN_TIME_MAX:?} of simulated time"
            ));
            break;
        }
    }
    let log = schedule.finish(world);
    drop(tasks);
    (recorder, log)
}
