//! The turmoil simulator: [`TurmoilRuntime`] (the broker's and client's runtime seam over
//! turmoil's simulated network and the host's paused tokio clock) and [`run`], which builds
//! one simulated world per seed: a broker host over a [`HostDisk`] that survives restarts,
//! client hosts running the workload's actors, and a fault schedule drawn from the seed.
//!
//! Invariants:
//! - Everything random comes from the root seed (turmoil's RNG included); the simulated
//!   epoch is fixed; hosts run in a seeded random order each step.
//! - The broker is the production code (`weir::server::start` over the storage driver
//!   seam), unmodified; only the runtime and the disk are simulated.
//! - A broker that stops on its own (fsync failure poisoned it) is crashed and restarted,
//!   just as a supervisor would restart a process that exited non-zero.

use std::io;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, UNIX_EPOCH};

use weir_runtime::{Listener, Runtime};

pub use crate::clock::WallSkew;
use crate::disk::{DiskFaults, HostDisk};
use crate::history::Recorder;
use crate::outcome::RunOutcome;
use crate::seed::Rng;
use crate::workload::{self, Actors, BrokerExit, Control, Workload, BROKER_HOST, BROKER_PORT};

/// Wall-clock start of every run: 2026-01-01T00:00:00Z (as weir-core's testing clock).
pub const WALL_MS_START: i64 = weir_core::testing::WALL_MS_START;
/// A run that has not finished after this much simulated time is reported stuck.
pub const RUN_TIME_MAX: Duration = Duration::from_secs(300);

/// `weir_runtime::Runtime` inside a turmoil host.
#[derive(Debug, Clone)]
pub struct TurmoilRuntime {
    seed: u64,
    skew: WallSkew,
    /// Latency of offloaded (blocking) work such as an fsync.
    offload_rng: Arc<Mutex<Rng>>,
}

impl TurmoilRuntime {
    /// A runtime for one host incarnation.
    pub fn new(seed: u64, skew: WallSkew) -> TurmoilRuntime {
        TurmoilRuntime {
            seed,
            skew,
            offload_rng: Arc::new(Mutex::new(Rng::fork(seed, "offload"))),
        }
    }
}

/// A turmoil listener.
pub struct TurmoilListener(turmoil::net::TcpListener);

impl Listener for TurmoilListener {
    type Stream = turmoil::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(Self::Stream, String)> {
        let (stream, peer) = self.0.accept().await?;
        Ok((stream, peer.to_string()))
    }

    fn local_addr(&self) -> io::Result<String> {
        Ok(self.0.local_addr()?.to_string())
    }
}

impl Runtime for TurmoilRuntime {
    type Stream = turmoil::net::TcpStream;
    type Listener = TurmoilListener;

    fn now(&self) -> Duration {
        turmoil::sim_elapsed().unwrap_or_default()
    }

    fn wall_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.now().as_millis()).unwrap_or(i64::MAX);
        WALL_MS_START + elapsed + self.skew.get()
    }

    fn sleep_until(
        &self,
        deadline: Duration,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        // The host's tokio clock is paused and advanced by turmoil, tick by tick.
        tokio::time::sleep(deadline.saturating_sub(self.now()))
    }

    fn spawn<F>(&self, future: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(future);
    }

    async fn bind(&self, addr: &str) -> io::Result<Self::Listener> {
        Ok(TurmoilListener(
            turmoil::net::TcpListener::bind(addr.to_owned()).await?,
        ))
    }

    async fn connect(&self, addr: &str) -> io::Result<Self::Stream> {
        turmoil::net::TcpStream::connect(addr.to_owned()).await
    }

    async fn offload<T, F>(&self, work: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        // Blocking work takes simulated time (an fsync is not free), during which the
        // broker may crash: the work then never happens.
        let micros = self
            .offload_rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .between(100, 3_000);
        tokio::time::sleep(Duration::from_micros(micros)).await;
        work()
    }

    fn rng_seed(&self) -> u64 {
        self.seed
    }
}

/// A fault in progress, undone at `until`.
#[derive(Debug, Clone)]
enum Heal {
    Repair(String, String),
    RepairOneway(String, String),
    Release(String, String),
    Latency,
    Loss,
}

const CLIENT_FINAL: &str = "final-reader";
const CLIENT_CONSUMER: &str = "consumer";
/// Message latency outside of latency faults.
const LATENCY_MAX: Duration = Duration::from_millis(3);

/// Stamps tracing lines with turmoil's simulated time (the host clock means nothing here).
struct SimTimer;

impl tracing_subscriber::fmt::time::FormatTime for SimTimer {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let elapsed = turmoil::sim_elapsed().unwrap_or_default();
        write!(w, "{:>10.3}ms", elapsed.as_secs_f64() * 1000.0)
    }
}

/// Debugging aid: with `WEIR_SIM_LOG` set, the broker's and clients' tracing goes to stderr
/// (filtered by `RUST_LOG`, default `debug`), stamped with simulated time and the host.
pub(crate) fn init_logging() {
    if std::env::var_os("WEIR_SIM_LOG").is_none() {
        return;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug"));
    // A second run in the same process keeps the first subscriber: that is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(SimTimer)
        .with_writer(io::stderr)
        .try_init();
}

/// Run one seed of one workload under turmoil.
pub fn run(seed: u64, workload: Workload) -> RunOutcome {
    init_logging();
    let spec = workload.spec();
    let recorder = Recorder::default();
    let control = Control::default();
    let disk = HostDisk::new(seed, "disk", spec.disk, workload::shards_of(seed, "broker"));
    let skew = WallSkew::default();
    let exit = BrokerExit::default();
    let mut faults_rng = Rng::fork(seed, "faults");
    let mut builder = turmoil::Builder::new();
    builder
        .simulation_duration(RUN_TIME_MAX + Duration::from_secs(60))
        .tick_duration(Duration::from_millis(1))
        .rng_seed(Rng::fork(seed, "turmoil").next_u64())
        .epoch(UNIX_EPOCH + Duration::from_millis(WALL_MS_START as u64))
        .min_message_latency(Duration::from_micros(200))
        .max_message_latency(LATENCY_MAX)
        .repair_rate(0.5)
        .tcp_capacity(4096)
        .enable_random_order();
    let mut sim = builder.build();

    let incarnations = Arc::new(AtomicI64::new(0));
    {
        let (disk, skew, exit) = (disk.clone(), skew.clone(), exit.clone());
        sim.host(BROKER_HOST, move || {
            let incarnation = incarnations.fetch_add(1, Ordering::Relaxed);
            let runtime = TurmoilRuntime::new(seed ^ (incarnation as u64) << 48, skew.clone());
            let (disk, exit) = (disk.clone(), exit.clone());
            async move {
                let buggify_seed = Rng::fork(seed, "buggify").next_u64() ^ incarnation as u64;
                let config = workload::server_config(&spec, BROKER_HOST, buggify_seed);
                exit.serve(runtime, disk, config, None).await;
                Ok(())
            }
        });
    }
    let actors = Actors {
        spec,
        recorder: recorder.clone(),
        control: control.clone(),
        seed,
        bootstrap: format!("{BROKER_HOST}:{BROKER_PORT}"),
    };
    let mut clients = Vec::new();
    for index in 0..spec.producers {
        let name = format!("producer-{index}");
        spawn_client(&mut sim, &actors, &skew, &name, |rt, a| {
            crate::dispatch::producer(rt, a, index)
        });
        clients.push(name);
    }
    spawn_client(&mut sim, &actors, &skew, CLIENT_CONSUMER, |rt, a| {
        crate::dispatch::consumer(rt, a)
    });
    clients.push(CLIENT_CONSUMER.to_owned());
    // Consumer-group members, one host each so that faults hit them apart.
    for index in 0..spec.group_members {
        let name = crate::workload_group::member_name(index);
        let disk = disk.clone();
        spawn_client(&mut sim, &actors, &skew, &name, |rt, a| {
            crate::workload_group::member(rt, a, index, disk)
        });
        clients.push(name);
    }
    spawn_client(&mut sim, &actors, &skew, CLIENT_FINAL, |rt, a| {
        crate::dispatch::final_reader(rt, a)
    });

    let mut log: Vec<String> = vec![format!("broker shards {}", disk.shard_count())];
    let mut heals: Vec<(Duration, Heal)> = Vec::new();
    let mut restart_at: Option<Duration> = None;
    let mut next_fault = Duration::from_millis(faults_rng.between(100, 600));
    let any_faults = spec.crashes || spec.net_faults || spec.clock_jumps;
    let mut final_phase = false;
    loop {
        let now = sim.elapsed();
        let stamp = now.as_millis();
        if let Some(exit) = exit.take() {
            match exit {
                Ok(reason) => {
                    log.push(format!("{stamp} broker poisoned ({reason}): restart"));
                    sim.crash(BROKER_HOST);
                    let fate = disk.crash();
                    log.push(format!("{stamp} disk crash fate {fate:?}"));
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
            sim.bounce(BROKER_HOST);
        }
        while let Some(index) = heals.iter().position(|(at, _)| *at <= now) {
            let (_, heal) = heals.remove(index);
            log.push(format!("{stamp} heal {heal:?}"));
            apply_heal(&mut sim, heal, &clients);
        }
        if !final_phase && any_faults && now >= next_fault {
            next_fault = now + Duration::from_millis(faults_rng.between(50, 800));
            let action = choose_fault(&mut faults_rng, &spec, &clients, now, restart_at);
            if let Some(action) = action {
                log.push(format!("{stamp} {}", action.describe()));
                match action {
                    Fault::Crash { down } => {
                        sim.crash(BROKER_HOST);
                        let fate = disk.crash();
                        log.push(format!("{stamp} disk crash fate {fate:?}"));
                        restart_at = Some(now + down);
                    }
                    Fault::ClockJump { delta_ms } => skew.jump(delta_ms),
                    Fault::Net { heal, until } => {
                        apply_fault(&mut sim, &heal, &clients);
                        heals.push((until, heal));
                    }
                }
            }
        }
        if !final_phase && control.lock().producers_done == spec.producers {
            // Heal everything, then let the final reads judge what survived.
            final_phase = true;
            for (_, heal) in std::mem::take(&mut heals) {
                apply_heal(&mut sim, heal, &clients);
            }
            disk.set_faults(DiskFaults::NONE);
            if restart_at.is_some() {
                restart_at = None;
                sim.bounce(BROKER_HOST);
            }
            log.push(format!("{stamp} final phase: all healed"));
            control.lock().final_phase = true;
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
    let stats = disk.stats();
    log.push(format!("disk {stats:?}"));
    RunOutcome::judge(
        "turmoil",
        seed,
        workload,
        recorder.history(),
        recorder.violations(),
        log,
    )
}

pub(crate) fn client_runtime(seed: u64, name: &str, skew: &WallSkew) -> TurmoilRuntime {
    TurmoilRuntime::new(Rng::fork(seed, name).next_u64(), skew.clone())
}

/// Start client actor `name` on its own host, with its own runtime seeded from the run's
/// seed and the name (so adding an actor never shifts another's draws).
pub(crate) fn spawn_client<F, Fut>(
    sim: &mut turmoil::Sim<'_>,
    actors: &Actors,
    skew: &WallSkew,
    name: &str,
    actor: F,
) where
    F: FnOnce(TurmoilRuntime, Actors) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let runtime = client_runtime(actors.seed, name, skew);
    let run = actor(runtime, actors.clone());
    sim.client(name, async move {
        run.await;
        Ok(())
    });
}

enum Fault {
    Crash { down: Duration },
    ClockJump { delta_ms: i64 },
    Net { heal: Heal, until: Duration },
}

impl Fault {
    fn describe(&self) -> String {
        match self {
            Fault::Crash { down } => format!("crash broker for {}ms", down.as_millis()),
            Fault::ClockJump { delta_ms } => format!("wall clock jumps {delta_ms}ms"),
            Fault::Net { heal, until } => {
                format!("net fault until {}ms ({heal:?})", until.as_millis())
            }
        }
    }
}

fn choose_fault(
    rng: &mut Rng,
    spec: &workload::Spec,
    clients: &[String],
    now: Duration,
    restart_at: Option<Duration>,
) -> Option<Fault> {
    let mut kinds = Vec::new();
    if spec.crashes && restart_at.is_none() {
        kinds.push(0);
    }
    if spec.clock_jumps {
        kinds.push(1);
    }
    if spec.net_faults {
        kinds.extend([2, 3, 4, 5, 6, 7]);
    }
    let kind = *kinds.get(rng.below(kinds.len() as u64) as usize)?;
    let until = now + Duration::from_millis(rng.between(50, 2_500));
    let client = clients[rng.below(clients.len() as u64) as usize].clone();
    let broker = BROKER_HOST.to_owned();
    Some(match kind {
        0 => Fault::Crash {
            down: Duration::from_millis(rng.between(1, 1_500)),
        },
        1 => Fault::ClockJump {
            delta_ms: rng.between(0, 7_200_000) as i64 - 3_600_000,
        },
        2 => Fault::Net {
            heal: Heal::Repair(broker, client),
            until,
        },
        3 => {
            // One-way: either direction.
            let (from, to) = if rng.chance(500) {
                (broker, client)
            } else {
                (client, broker)
            };
            Fault::Net {
                heal: Heal::RepairOneway(from, to),
                until,
            }
        }
        4 => Fault::Net {
            // A paused process: its messages wait, then arrive in a burst.
            heal: Heal::Release(broker, client),
            until,
        },
        5 => Fault::Net {
            heal: Heal::Latency,
            until,
        },
        6 => Fault::Net {
            heal: Heal::Loss,
            until,
        },
        _ => Fault::Net {
            // Isolate the broker from every client.
            heal: Heal::Repair(broker, "*".into()),
            until,
        },
    })
}

/// Start the fault that `heal` will undo.
fn apply_fault(sim: &mut turmoil::Sim<'_>, heal: &Heal, clients: &[String]) {
    match heal {
        Heal::Repair(a, b) if b == "*" => {
            for client in clients {
                sim.partition(a.as_str(), client.as_str());
            }
        }
        Heal::Repair(a, b) => sim.partition(a.as_str(), b.as_str()),
        Heal::RepairOneway(from, to) => sim.partition_oneway(from.as_str(), to.as_str()),
        Heal::Release(a, b) => sim.hold(a.as_str(), b.as_str()),
        Heal::Latency => sim.set_max_message_latency(Duration::from_millis(150)),
        Heal::Loss => sim.set_fail_rate(0.02),
    }
}

fn apply_heal(sim: &mut turmoil::Sim<'_>, heal: Heal, clients: &[String]) {
    match heal {
        Heal::Repair(a, b) if b == "*" => {
            for client in clients {
                sim.repair(a.as_str(), client.as_str());
            }
        }
        Heal::Repair(a, b) => sim.repair(a.as_str(), b.as_str()),
        Heal::RepairOneway(from, to) => sim.repair_oneway(from.as_str(), to.as_str()),
        Heal::Release(a, b) => sim.release(a.as_str(), b.as_str()),
        Heal::Latency => sim.set_max_message_latency(LATENCY_MAX),
        Heal::Loss => sim.set_fail_rate(0.0),
    }
}
