//! The turmoil driver of the cluster workloads: one turmoil host per broker (restartable,
//! over a [`HostDisk`] that lives outside the host), one per client actor; the fault
//! schedule and the checks are [`crate::cluster_harness`]'s, reached through
//! [`ClusterSim`] on `turmoil::Sim`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::cluster_harness::{
    ClusterSim, Schedule, World, CLIENT_ADMIN, CLIENT_CONSUMER, CLIENT_FINAL, CLIENT_INTRUDER,
    RUN_TIME_MAX,
};
use crate::disk::{DiskFaults, HostDisk};
use crate::history::Recorder;
use crate::outcome::RunOutcome;
use crate::seed::Rng;
use crate::turmoil::{spawn_client, TurmoilRuntime, WallSkew, WALL_MS_START};
use crate::workload::{Actors, BrokerExit, Control, Workload};
use crate::workload_cluster::{bootstrap, host, server_config};

/// Minimum message latency outside of latency faults (the builder's setting).
const LATENCY_MIN: Duration = Duration::from_micros(200);
/// Maximum message latency outside of latency faults (the builder's setting).
const LATENCY_MAX: Duration = Duration::from_millis(3);

impl ClusterSim for turmoil::Sim<'_> {
    fn now(&self) -> Duration {
        self.elapsed()
    }

    fn crash(&mut self, host: &str) {
        turmoil::Sim::crash(self, host);
    }

    fn restart(&mut self, host: &str) {
        self.bounce(host);
    }

    fn cut(&mut self, a: &str, b: &str) {
        self.partition(a, b);
    }

    fn repair(&mut self, a: &str, b: &str) {
        turmoil::Sim::repair(self, a, b);
    }

    fn hold(&mut self, host: &str, peers: &[String]) {
        for peer in peers {
            turmoil::Sim::hold(self, host, peer.as_str());
        }
    }

    fn release(&mut self, host: &str, peers: &[String]) {
        for peer in peers {
            turmoil::Sim::release(self, host, peer.as_str());
        }
    }

    fn slow(&mut self, host: &str, peers: &[String], added: Duration) {
        for peer in peers {
            self.set_link_latency(host, peer.as_str(), added);
        }
    }

    fn fast(&mut self, host: &str, peers: &[String]) {
        for peer in peers {
            self.set_link_latency(host, peer.as_str(), LATENCY_MIN);
            self.set_link_max_message_latency(host, peer.as_str(), LATENCY_MAX);
        }
    }
}

pub fn run(seed: u64, workload: Workload) -> RunOutcome {
    crate::turmoil::init_logging();
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
    // The tiered workload's object store: one for the run, outside every broker.
    let objects: Arc<dyn weir::remote::ObjectStoreApi> = Arc::new(weir::remote::InMemory::new());
    for id in 1..=nodes {
        let shards = crate::workload::shards_of(seed, &format!("broker-{id}"));
        let disk = HostDisk::new(seed, &format!("disk-{id}"), DiskFaults::NONE, shards);
        let exit = BrokerExit::default();
        disks.push(disk.clone());
        exits.push(exit.clone());
        let incarnations = Arc::new(AtomicI64::new(0));
        let skew = skew.clone();
        let objects = objects.clone();
        sim.host(host(id).as_str(), move || {
            let incarnation = incarnations.fetch_add(1, Ordering::Relaxed);
            let runtime_seed = seed ^ (id as u64) << 40 ^ (incarnation as u64) << 48;
            let runtime = TurmoilRuntime::new(runtime_seed, skew.clone());
            let (disk, exit) = (disk.clone(), exit.clone());
            let remote = spec.tiered.then(|| {
                let store_seed =
                    Rng::fork(seed, &format!("store-{id}")).next_u64() ^ incarnation as u64;
                crate::workload::tiered_store(&objects, runtime.clone(), store_seed)
            });
            async move {
                let buggify_seed =
                    Rng::fork(seed, &format!("buggify-{id}")).next_u64() ^ incarnation as u64;
                let mut config = server_config(&spec, id, buggify_seed);
                if spec.acl {
                    crate::workload_acl::authorize(&mut config);
                }
                exit.serve(runtime, disk, config, remote).await;
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
    spawn_client(&mut sim, &actors, &skew, CLIENT_ADMIN, |rt, a| {
        crate::workload_cluster::admin(rt, a)
    });
    clients.push(CLIENT_ADMIN.to_owned());
    for index in 0..spec.producers {
        let name = format!("producer-{index}");
        spawn_client(&mut sim, &actors, &skew, &name, |rt, a| {
            crate::dispatch::producer(rt, a, index)
        });
        clients.push(name);
    }
    if spec.acl {
        spawn_client(&mut sim, &actors, &skew, CLIENT_INTRUDER, |rt, a| {
            crate::workload_acl::intruder(rt, a)
        });
        clients.push(CLIENT_INTRUDER.to_owned());
    }
    spawn_client(&mut sim, &actors, &skew, CLIENT_CONSUMER, |rt, a| {
        crate::dispatch::consumer(rt, a)
    });
    clients.push(CLIENT_CONSUMER.to_owned());
    spawn_client(&mut sim, &actors, &skew, CLIENT_FINAL, |rt, a| {
        crate::dispatch::final_reader(rt, a)
    });
    clients.push(CLIENT_FINAL.to_owned());
    let hosts: Vec<String> = (1..=nodes).map(host).chain(clients).collect();
    let log = vec![crate::cluster_harness::shards_line(&disks)];
    let mut world = World {
        sim,
        disks,
        hosts,
        log,
        rng: Rng::fork(seed, "faults"),
        control: control.clone(),
        recorder: recorder.clone(),
    };

    let mut schedule = Schedule::new(workload, &mut world);
    loop {
        if schedule.tick(&mut world, &exits) {
            break;
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
    let log = schedule.finish(world);
    RunOutcome::judge(
        "turmoil",
        seed,
        workload,
        recorder.history(),
        recorder.violations(),
        log,
    )
}
