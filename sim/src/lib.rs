//! weir-sim: deterministic simulation of the unmodified Weir broker and client.
//!
//! The production drivers (`weir::server::start`, the node loop, connection tasks) and the
//! real `weir-client` run inside a simulator; only the runtime seam
//! (`weir_runtime::Runtime`) and the disk ([`disk::SimDisk`]) are simulated. Faults come
//! from the seed; every run records a Jepsen-style history that `weir_jepsen::check`
//! judges, and a trace hash proves a seed replays bit for bit.
//!
//! # Code map
//! - [`seed`]: one root seed, salted child streams.
//! - [`clock`]: wall-clock jumps (`WallSkew`, the `Skewed` runtime wrapper).
//! - [`disk`]: `SimDisk` and its fault model.
//! - [`shared_log`]: what the group and cluster actors share with the harness (plain data);
//! - [`workload`]: the named workloads, their `Spec`, the shared control and the plain actors
//!   (generic over `Runtime`);
//!   [`workload_txn`]: the transactional ones (`txn`, `txn-crash`); [`workload_group`]:
//!   the consumer-group ones (`group`, `group-crash`); [`workload_cluster`]: three brokers
//!   in cluster mode (`cluster-crash`, `cluster-partition`, ...), with
//!   [`workload_acl`]'s intruder in `cluster-acl`; [`cluster_harness`]: their
//!   fault schedule and checks, shared by both simulators' drivers (`turmoil_cluster`,
//!   `madsim_cluster`) through the `ClusterSim` trait.
//! - [`dispatch`]: `Workload::spec` and the actors' entry points, picking each workload's
//!   variant; above every workload file, so no two files import each other.
//! - [`history`]: the recorder; [`outcome`]: checking a run, reproduction commands.
//! - [`trace`]: the FNV-1a trace hash.
//! - `turmoil` + `turmoil_cluster` (normal build) / `madsim` + `madsim_cluster`
//!   (`--cfg madsim`): the simulators.
//!
//! # Architecture invariants
//! - No behaviour of the broker differs by simulator except through the runtime seam.
//! - Nothing depends on this crate; it never reads a real clock or OS randomness.
//! - A failing run prints one command that reproduces it.

pub mod clock;
pub mod cluster_harness;
pub mod disk;
pub mod dispatch;
pub mod history;
pub mod outcome;
pub mod seed;
pub mod shared_log;
pub mod trace;
pub mod workload;
pub mod workload_acl;
pub mod workload_cluster;
pub mod workload_compact;
pub mod workload_group;
pub mod workload_txn;

#[cfg(madsim)]
pub mod madsim;
#[cfg(madsim)]
pub mod madsim_cluster;
#[cfg(not(madsim))]
pub mod turmoil;
#[cfg(not(madsim))]
pub mod turmoil_cluster;

use outcome::RunOutcome;
use workload::Workload;

/// The simulator this build drives.
pub const SIMULATOR: &str = if cfg!(madsim) { "madsim" } else { "turmoil" };

/// Run one seed of one workload on this build's simulator. A panic inside the simulation
/// (an invariant of the broker or the harness) is reported as a failed run.
pub fn run_seed(seed: u64, workload: Workload) -> RunOutcome {
    let result = std::panic::catch_unwind(|| run_inner(seed, workload));
    match result {
        Ok(outcome) => outcome,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panic".to_owned());
            RunOutcome::judge(
                SIMULATOR,
                seed,
                workload,
                weir_jepsen::History::default(),
                vec![format!("panic: {message}")],
                Vec::new(),
            )
        }
    }
}

#[cfg(not(madsim))]
fn run_inner(seed: u64, workload: Workload) -> RunOutcome {
    if workload.spec().cluster_nodes > 0 {
        return turmoil_cluster::run(seed, workload);
    }
    turmoil::run(seed, workload)
}

#[cfg(madsim)]
fn run_inner(seed: u64, workload: Workload) -> RunOutcome {
    if workload.spec().cluster_nodes > 0 {
        return madsim_cluster::run(seed, workload);
    }
    madsim::run(seed, workload)
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;

    // Goal: every workload passes one seed end to end on this build's simulator (the
    // bit-for-bit replay check runs the binary twice, in tests/determinism.rs).
    // Method: run seed 3 of each workload through `run_seed`.
    #[test]
    fn every_workload_passes() {
        for workload in Workload::ALL {
            let outcome = run_seed(3, workload);
            assert!(
                outcome.passed,
                "{}: {} {:?}",
                workload.name(),
                outcome.verdict,
                outcome.violations
            );
        }
    }
}
