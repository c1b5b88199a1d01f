//! The cluster workloads' fault schedule and checks, shared by both simulators: a
//! simulator only has to crash, restart, cut, repair, hold and slow hosts
//! ([`ClusterSim`]); everything a cluster run decides (which fault, when, on whom, what
//! counts as a violation) happens here, drawn from the same seeded streams, so a fault
//! schedule is written once and both simulators run it.
//!
//! - [`World`]: the simulator, the brokers' disks (outside the simulated nodes, so a crash
//!   keeps or loses unsynced writes by the disk's seeded fate), the fault log and RNG;
//! - `Fault`: the state machine of the fault in progress (one at a time);
//! - [`Schedule`]: the harness loop's state; the simulator's driver calls
//!   [`Schedule::tick`] once per step and [`finish`] once after the loop.
//!
//! Invariant: nothing here depends on which simulator runs; the same calls in the same
//! order reach [`ClusterSim`] for a given seed and history.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use weir_jepsen::{Kind, Mop, Value, F};

use crate::disk::HostDisk;
use crate::history::Recorder;
use crate::seed::Rng;
use crate::shared_log::ClusterLog;
use crate::workload::{BrokerExit, Control, Workload};
use crate::workload_cluster::{
    compare_replicas, host, ARM_WAIT_MS, CONVERGE_BUDGET, FAULTS_PER_RUN, LATENCY_ADDED_MS,
    MAJORITY_ARM_WAIT_MS, MAJORITY_CALM_MS, MAJORITY_DOWN_MS, MAJORITY_FAULTS_PER_RUN,
    MAJORITY_STAGGER_MS, MAJORITY_UNSYNCED_MIN, PAUSE_MAX_MS, REPLICA_LAG_MS, SESSION_TIMEOUT_MS,
};

/// Host name of the admin actor (creates the topic, samples leadership).
pub const CLIENT_ADMIN: &str = "admin";
/// Host name of the consumer actor.
pub const CLIENT_CONSUMER: &str = "consumer";
/// Host name of the final reader.
pub const CLIENT_FINAL: &str = "final-reader";
/// `cluster-acl`'s intruder host (`workload_acl`).
pub const CLIENT_INTRUDER: &str = "intruder";
/// A run that has not finished after this much simulated time is reported stuck.
pub const RUN_TIME_MAX: Duration = Duration::from_secs(300);
/// Simulated time the main phase may take before the producers are stopped anyway.
const MAIN_PHASE_MAX: Duration = Duration::from_secs(60);
/// Settling time after the ISRs are full again, before the replicas are compared.
const SETTLE: Duration = Duration::from_millis(1_000);
/// Mixed workloads: after a fault heals, some acks=all write must be acknowledged
/// within this much simulated time (the cluster recovers on its own).
const RESUME_BUDGET: Duration = Duration::from_secs(15);

/// What the fault schedule needs from a simulator. Hosts are named as in
/// [`crate::workload_cluster::host`] and the client constants above.
pub trait ClusterSim {
    /// Simulated time since the run began.
    fn now(&self) -> Duration;
    /// Kill `host`'s process (its disk's fate is the caller's).
    fn crash(&mut self, host: &str);
    /// Start a crashed `host` again (its init runs anew over the same disk).
    fn restart(&mut self, host: &str);
    /// Cut both directions between `a` and `b`.
    fn cut(&mut self, a: &str, b: &str);
    /// Undo [`ClusterSim::cut`].
    fn repair(&mut self, a: &str, b: &str);
    /// A paused process: nothing between `host` and `peers` moves until released.
    fn hold(&mut self, host: &str, peers: &[String]);
    /// Undo [`ClusterSim::hold`]; what was held arrives in a burst.
    fn release(&mut self, host: &str, peers: &[String]);
    /// Add `added` latency to `host`'s links to `peers`.
    fn slow(&mut self, host: &str, peers: &[String], added: Duration);
    /// Undo [`ClusterSim::slow`].
    fn fast(&mut self, host: &str, peers: &[String]);
}

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
    /// Partitions with a send in flight at some step from `from` on: only those were
    /// offered writes. A producer sends one record at a time, so producers waiting (up to
    /// their delivery timeout) on a partition that lost two replicas offer the others none.
    offered: BTreeSet<i32>,
}

/// The run log's first line: how many shards each broker runs (drawn from the seed).
pub(crate) fn shards_line(disks: &[HostDisk]) -> String {
    let counts: Vec<String> = (1..)
        .zip(disks)
        .map(|(id, disk)| format!("{id}:{}", disk.shard_count()))
        .collect();
    format!("broker shards {}", counts.join(" "))
}

/// The world of one run: the simulator behind [`ClusterSim`] and what the schedule keeps.
pub(crate) struct World<S> {
    pub(crate) sim: S,
    /// Broker `id`'s disk at index `id - 1` (they live outside the simulated nodes).
    pub(crate) disks: Vec<HostDisk>,
    /// Every host: the brokers first, then the clients.
    pub(crate) hosts: Vec<String>,
    pub(crate) log: Vec<String>,
    pub(crate) rng: Rng,
    pub(crate) control: Control,
    pub(crate) recorder: Recorder,
}

impl<S: ClusterSim> World<S> {
    fn crash(&mut self, id: i32, why: &str) {
        let stamp = self.sim.now().as_millis();
        self.sim.crash(&host(id));
        let fate = self.disks[(id - 1) as usize].crash();
        self.log.push(format!(
            "{stamp} crash broker {id} ({why}), disk fate {fate:?}"
        ));
    }

    /// Crash `id` losing every unsynced op on its disk (not a seeded fate).
    fn crash_lose_all(&mut self, id: i32, why: &str) {
        let stamp = self.sim.now().as_millis();
        self.sim.crash(&host(id));
        let disk = &self.disks[(id - 1) as usize];
        let lost_before = disk.stats().ops_lost;
        let fate = disk.crash_lose_all();
        let lost = disk.stats().ops_lost - lost_before;
        self.log.push(format!(
            "{stamp} crash broker {id} ({why}), disk fate {fate:?}, {lost} unsynced ops lost"
        ));
    }

    fn restart(&mut self, id: i32) {
        let stamp = self.sim.now().as_millis();
        self.log.push(format!("{stamp} broker {id} restart"));
        self.sim.restart(&host(id));
    }

    fn cut(&mut self, a: &str, b: &str) {
        self.sim.cut(a, b);
    }

    fn repair(&mut self, a: &str, b: &str) {
        self.sim.repair(a, b);
    }

    fn cluster<T>(&self, f: impl FnOnce(&ClusterLog) -> T) -> T {
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
        let now = self.sim.now();
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
                let acks_before = self.cluster(|c| c.acks.get(&partition).copied().unwrap_or(0));
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
        let now = self.sim.now();
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
        let now = self.sim.now();
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
                let peers: Vec<String> = self.hosts.iter().filter(|h| **h != me).cloned().collect();
                self.sim.hold(&me, &peers);
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
                let peers: Vec<String> = self.hosts.iter().filter(|h| **h != me).cloned().collect();
                self.sim.slow(&me, &peers, added);
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
        let now = self.sim.now();
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
        let now = self.sim.now();
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
                offered: BTreeSet::new(),
            }),
        })
    }

    /// Advance `fault`; returns it back while it lasts, `None` once healed.
    fn advance(&mut self, fault: Fault, heal_now: bool) -> Option<Fault> {
        let now = self.sim.now();
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
                    if progress.acks_at_from.is_some() {
                        self.cluster(|c| {
                            let pending = c.pending.iter().filter(|(_, n)| **n > 0);
                            progress.offered.extend(pending.map(|(p, _)| *p));
                        });
                    }
                }
                if now < until && !heal_now {
                    return Some(Fault::Crashed { ids, until, check });
                }
                if let Some(ProgressCheck {
                    from,
                    partitions,
                    acks_at_from: Some(before),
                    offered,
                }) = check
                {
                    let after = self.cluster(|c| c.acks.clone());
                    for p in partitions.into_iter().filter(|p| offered.contains(p)) {
                        let (was, is) = (before.get(&p), after.get(&p));
                        if was.copied().unwrap_or(0) >= is.copied().unwrap_or(0) {
                            self.recorder.violation(format!(
                                "partition {p} took no acks=all write in {}ms..{stamp}ms \
                                 with brokers {ids:?} down (two live replicas remain, a \
                                 send was in flight)",
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
                self.sim.release(&host(id), &peers);
                None
            }
            Fault::Slow { id, peers, until } => {
                if now < until && !heal_now {
                    return Some(Fault::Slow { id, peers, until });
                }
                self.log
                    .push(format!("{stamp} broker {id}'s links fast again"));
                self.sim.fast(&host(id), &peers);
                None
            }
            Fault::PowerArmed { deadline, late } => {
                let unsynced: usize = self.disks.iter().map(HostDisk::unsynced).sum();
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

/// The harness loop's state between steps.
pub(crate) struct Schedule {
    workload: Workload,
    producers: usize,
    partitions: i32,
    faults_max: u32,
    /// The calm between a heal and the next fault (no wait for the cluster to recover).
    calm_ms: (u64, u64),
    fault: Option<Fault>,
    faults_done: u32,
    restarts: Vec<(Duration, i32)>,
    next_fault: Duration,
    main_started: Option<Duration>,
    final_phase: bool,
    final_done_at: Option<Duration>,
    converged_at: Option<Duration>,
    /// Mixed and power workloads check that acks resume after each heal.
    mixed: bool,
    /// Mixed workloads: (when, total acks) at the last heal (or the topic's creation);
    /// the next fault waits for an ack after it, which must come within RESUME_BUDGET.
    resume_from: Option<(Duration, u64)>,
}

impl Schedule {
    /// The schedule of `workload`; draws the first fault's time from `world`'s RNG.
    pub(crate) fn new<S: ClusterSim>(workload: Workload, world: &mut World<S>) -> Schedule {
        let spec = workload.spec();
        let faults_max = match workload {
            Workload::ClusterTwoDown => 1,
            Workload::ClusterMajorityCrash => MAJORITY_FAULTS_PER_RUN,
            _ => FAULTS_PER_RUN,
        };
        let calm_ms = if workload == Workload::ClusterMajorityCrash {
            MAJORITY_CALM_MS
        } else {
            (300, 1_200)
        };
        let mixed = matches!(
            workload,
            Workload::ClusterMixed
                | Workload::ClusterMixed5
                | Workload::ClusterPower
                | Workload::ClusterPowerMemory
        );
        Schedule {
            workload,
            producers: spec.producers,
            partitions: spec.partitions,
            faults_max,
            calm_ms,
            fault: None,
            faults_done: 0,
            restarts: Vec::new(),
            next_fault: Duration::from_millis(world.rng.between(500, 1_500)),
            main_started: None,
            final_phase: false,
            final_done_at: None,
            converged_at: None,
            mixed,
            resume_from: None,
        }
    }

    /// One harness step at `world.sim.now()`: poisoned brokers, restarts, the fault in
    /// progress or the next one, the phases. Returns true once the run is over (converged,
    /// or a violation ended it).
    pub(crate) fn tick<S: ClusterSim>(
        &mut self,
        world: &mut World<S>,
        exits: &[BrokerExit],
    ) -> bool {
        let now = world.sim.now();
        let stamp = now.as_millis();
        let control = world.control.clone();
        let recorder = world.recorder.clone();
        let total_acks = |control: &Control| control.lock().cluster.acks.values().sum::<u64>();
        for (index, exit) in exits.iter().enumerate() {
            let id = index as i32 + 1;
            match exit.take() {
                None => {}
                Some(Ok(reason)) => {
                    world.crash(id, &format!("poisoned: {reason}"));
                    self.restarts.push((now + Duration::from_millis(20), id));
                }
                Some(Err(reason)) => recorder.violation(format!("broker {id}: {reason}")),
            }
        }
        while let Some(index) = self.restarts.iter().position(|(at, _)| *at <= now) {
            let (_, id) = self.restarts.remove(index);
            world.restart(id);
        }
        let ready = control.lock().cluster.topic_ready;
        if ready && self.main_started.is_none() {
            self.main_started = Some(now);
        }
        if self.mixed && ready && self.main_started == Some(now) {
            self.resume_from = Some((now, 0));
        }
        let resumed = match self.resume_from {
            None => true,
            Some((since, acks)) => {
                let resumed = total_acks(&control) > acks;
                if resumed {
                    self.resume_from = None;
                } else if !self.final_phase && now > since + RESUME_BUDGET {
                    recorder.violation(format!(
                        "no acks=all write acknowledged in the {}s after {}ms (fault \
                         healed or topic created)",
                        RESUME_BUDGET.as_secs(),
                        since.as_millis()
                    ));
                    self.resume_from = None;
                }
                resumed
            }
        };
        if let Some(current) = self.fault.take() {
            self.fault = world.advance(current, self.final_phase);
            if self.fault.is_none() {
                self.faults_done += 1;
                let (low, high) = self.calm_ms;
                self.next_fault = now + Duration::from_millis(world.rng.between(low, high));
                if self.mixed {
                    self.resume_from = Some((now, total_acks(&control)));
                }
            }
        } else if ready
            && resumed
            && !self.final_phase
            && self.faults_done < self.faults_max
            && now >= self.next_fault
        {
            self.fault = world.start_fault(self.workload, self.partitions);
            if self.fault.is_none() {
                self.next_fault = now + Duration::from_millis(200);
            }
        }
        let stop = self.faults_done >= self.faults_max && now >= self.next_fault && resumed
            || self
                .main_started
                .is_some_and(|at| now > at + MAIN_PHASE_MAX);
        if stop && !control.lock().cluster.stop_producing {
            world
                .log
                .push(format!("{stamp} faults done: producers stop"));
            control.lock().cluster.stop_producing = true;
        }
        if !self.final_phase && control.lock().producers_done == self.producers {
            self.final_phase = true;
            world.log.push(format!("{stamp} final phase: all healed"));
            if let Some(current) = self.fault.take() {
                self.fault = world.advance(current, true);
            }
            control.lock().final_phase = true;
        }
        if self.final_done_at.is_none() && control.lock().final_done {
            self.final_done_at = Some(now);
        }
        if let Some(done) = self.final_done_at {
            let rounds = control.lock().cluster.full_isr_rounds;
            if self.converged_at.is_none() && rounds >= 2 {
                self.converged_at = Some(now);
            }
            if self.converged_at.is_some_and(|at| now >= at + SETTLE) {
                return true;
            }
            if now > done + CONVERGE_BUDGET {
                let isr = control.lock().cluster.replicas.clone();
                recorder.violation(format!(
                    "replicas did not converge: ISRs not full {}s after the final \
                     reads ({isr:?})",
                    CONVERGE_BUDGET.as_secs()
                ));
                return true;
            }
        }
        false
    }

    /// After the loop: stop the sampler, compare the replicas if the ISRs converged;
    /// returns the fault log.
    pub(crate) fn finish<S: ClusterSim>(&self, mut world: World<S>) -> Vec<String> {
        let control = &world.control;
        control.lock().cluster.sampling_done = true;
        if self.converged_at.is_some() {
            let leaders = control.lock().cluster.leaders.clone();
            let numbered: Vec<(i32, HostDisk)> = (1..).zip(world.disks.iter().cloned()).collect();
            let spec = self.workload.spec();
            let violations = if spec.compact {
                // Replicas clean on their own schedules: compare latest values per key.
                let (violations, compared) = crate::workload_compact::compare_latest(
                    &spec,
                    &numbered,
                    &leaders,
                    &control.lock().compact,
                );
                (world.log).push(format!("latest values per key compared: {compared} logs"));
                violations
            } else {
                let values = value_partitions(&world.recorder);
                compare_replicas(&numbered, &leaders, &values)
            };
            for violation in violations {
                world.recorder.violation(violation);
            }
        }
        let now = world.sim.now();
        let mut log = world.log;
        let claims = control.lock().cluster.claims.len();
        log.push(format!("leadership claims sampled: {claims}"));
        log.push(format!("{} end", now.as_millis()));
        log
    }
}
