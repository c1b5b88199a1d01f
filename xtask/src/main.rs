//! cargo xtask: Weir's project automation (matklad's cargo-xtask pattern).
//!
//! `ci` is the one command CI runs: it installs what the tests need on a fresh machine,
//! then runs format, lint, unit/property tests, tidy and the real-client suites.
//! The real world (clocks, processes) is this crate's business, so the determinism bans
//! of clippy.toml do not apply here.
#![allow(clippy::disallowed_methods)]

mod bench;
mod check;
mod ci;
mod circles;
mod cluster;
mod deploy;
mod jepsen;
mod sim;
mod soak;
mod step;
mod tidy;
mod wasm;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "Weir project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install test dependencies, then run every check and test suite CI runs.
    Ci {
        /// Skip installing system/pip/npm packages (they are already there).
        #[arg(long)]
        no_install: bool,
    },
    /// Install the tools and packages the test suites need (apt, pip, npm).
    InstallDeps,
    /// Project rules checked as code: dependency directions, import circles, banned
    /// constructs, line width.
    Tidy,
    /// Run the Jepsen-style checker on a history file (config from its first line).
    Check {
        /// History in JSONL.
        file: PathBuf,
    },
    /// Benchmarks; results are written to docs/benchmarks.md with the commands that made them.
    Bench {
        /// Records for the produce/consume runs.
        #[arg(long, default_value_t = 2_000_000)]
        records: u64,
        /// Run only these parts (comma-separated); the others' text in docs/benchmarks.md
        /// is kept.
        #[arg(long, value_enum, value_delimiter = ',')]
        only: Vec<bench::Workload>,
        /// Runs of each failover, group-join and baseline measurement (the median is
        /// reported; default 3), and the rounds of the peer run (default 2).
        #[arg(long)]
        repeat: Option<usize>,
        /// The commit `--only baseline` compares this broker with.
        #[arg(long)]
        baseline: Option<String>,
        /// Run every workload against this peer broker too, alternating with Weir, and
        /// report the ratios (alone, without `--only`, it runs just that part; the rounds
        /// are `--repeat`).
        #[arg(long, value_enum)]
        peer: Option<bench::Peer>,
        /// Partition counts of the peer run's many-partition workloads (0: skip them).
        #[arg(long, value_delimiter = ',', default_value = "10000,30000")]
        peer_partitions: Vec<u32>,
        /// The security part: run the broker on CPU 0 and the load generator on CPU 1
        /// (`taskset`), so they do not compete for a core.
        #[arg(long)]
        pin: bool,
        /// Run this broker binary instead of building the tree's release binary.
        #[arg(long)]
        weir_bin: Option<PathBuf>,
    },
    /// Time the checker on a synthetic history (run by `bench` in a release build).
    CheckerScale {
        /// Operations in the synthetic history.
        #[arg(long, default_value_t = 1_000_000)]
        ops: usize,
    },
    /// Deterministic simulation (turmoil, madsim): seeds, replay, determinism, planted bugs.
    Sim(sim::SimArgs),
    /// Start a local cluster on 127.0.0.1 (Kafka ports 9092, 9094, ...); Ctrl-C stops it.
    Cluster(cluster::ClusterArgs),
    /// Deploy a cluster from an inventory: plan, apply, status, upgrade, stop, destroy.
    Deploy(deploy::DeployArgs),
    /// Jepsen-style test of a real cluster: nemesis, real clients, checked history, HTML.
    Jepsen(jepsen::JepsenArgs),
    /// The long correctness runs: many cluster simulation seeds and the Jepsen-style runs
    /// (3 nodes seeds 1..=10, 5 nodes, majority kills); a table for docs/jepsen.md.
    Soak(soak::SoakArgs),
    /// Build the WASM client's npm package into client-wasm/pkg/ (`--serve`: demo page).
    Wasm(wasm::WasmArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ci { no_install } => ci::run(!no_install).map(|()| true),
        Command::InstallDeps => ci::install_deps().map(|()| true),
        Command::Tidy => tidy::run().map(|()| true),
        Command::Check { file } => check::run(&file),
        Command::Bench {
            records,
            only,
            repeat,
            baseline,
            peer,
            peer_partitions,
            pin,
            weir_bin,
        } => {
            let partitions = peer_partitions.into_iter().filter(|p| *p > 0).collect();
            let peer = peer.map(|peer| (peer, partitions));
            let placement = bench::Placement { pin, weir_bin };
            let baseline = baseline.as_deref();
            bench::run(records, &only, repeat, baseline, peer, placement).map(|()| true)
        }
        Command::CheckerScale { ops } => bench::checker_scale_run(ops).map(|()| true),
        Command::Sim(args) => sim::run(&args),
        Command::Cluster(args) => cluster::run(&args),
        Command::Deploy(args) => deploy::run(&args),
        Command::Jepsen(args) => jepsen::run(&args),
        Command::Soak(args) => soak::run(&args),
        Command::Wasm(args) => wasm::run(&args).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// The workspace root, derived from this crate's manifest directory (rust-analyzer style).
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
