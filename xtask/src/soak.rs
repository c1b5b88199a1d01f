//! `cargo xtask soak`: the long correctness runs CI has no time for (issue 12).
//!
//! Four parts, each skippable: the real-client tests marked `soak` (the rolling upgrades
//! over ssh, to 127.0.0.1 and to three network-namespace hosts), many seeds of every
//! cluster simulation (turmoil), the Jepsen-style runs the issue names (3 nodes, 60 s,
//! `kill,partition`, seeds 1..=10 — all of them, not a chosen one; 5 nodes with
//! `kill,pause,partition`), runs of the nemeses that crash a majority at once or restart
//! the controller while a leader is down, and the txn workload on 3 nodes. It prints one
//! line per run and a Markdown table (also written to `target/soak/summary.md`) for
//! docs/jepsen.md; the exit code is 0 only when every run passed.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::jepsen::JepsenArgs;
use crate::project_root;

/// The flags of `cargo xtask soak`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct SoakArgs {
    /// Seeds of each cluster simulation workload.
    #[arg(long, default_value_t = 200)]
    pub sim_seeds: u64,
    /// Main phase of each Jepsen-style run, seconds.
    #[arg(long, default_value_t = 60)]
    pub time: u64,
    /// Skip the simulations.
    #[arg(long)]
    pub no_sim: bool,
    /// Skip the Jepsen-style runs.
    #[arg(long)]
    pub no_jepsen: bool,
    /// Skip the real-client tests marked `soak` (tests/compat).
    #[arg(long)]
    pub no_compat: bool,
}

/// One Jepsen-style run of the soak: nodes, nemesis, workload, seed.
fn jepsen_runs() -> Vec<(u32, &'static str, &'static str, u64)> {
    let mut runs = Vec::new();
    for seed in 1..=10 {
        runs.push((3, "kill,partition", "queue", seed));
    }
    for seed in 1..=3 {
        runs.push((5, "kill,pause,partition", "queue", seed));
    }
    for seed in 1..=3 {
        runs.push((
            3,
            "kill-majority,kill-leader-controller,partition",
            "queue",
            seed,
        ));
    }
    // Transactions on three nodes: seed 106 found a restarted coordinator answering an
    // EndTxn(abort) it could not persist (docs/cluster.md, "Coordinators").
    for seed in [106, 107, 108] {
        runs.push((3, "kill,partition,kill-majority", "txn", seed));
    }
    runs
}

/// Runs the soak; `Ok(true)` when every run passed.
pub(crate) fn run(args: &SoakArgs) -> Result<bool> {
    let started = Instant::now();
    let mut rows: Vec<(String, bool, u64)> = Vec::new();
    if !args.no_compat {
        let t = Instant::now();
        let ok = compat_soak()?;
        rows.push((
            "`python3 -m pytest -q tests/compat -m soak`".to_owned(),
            ok,
            t.elapsed().as_secs(),
        ));
        eprintln!("soak: compat -m soak: {}", verdict(ok));
    }
    if !args.no_sim {
        for workload in crate::sim::CLUSTER_WORKLOADS {
            let t = Instant::now();
            let ok = crate::sim::run_cluster_seeds(workload, args.sim_seeds)?;
            rows.push((
                format!(
                    "`cargo xtask sim --sim turmoil --seeds {} --workload {workload}`",
                    args.sim_seeds
                ),
                ok,
                t.elapsed().as_secs(),
            ));
            eprintln!("soak: sim {workload}: {}", verdict(ok));
        }
    }
    if !args.no_jepsen {
        for (nodes, nemesis, workload, seed) in jepsen_runs() {
            let t = Instant::now();
            let run = JepsenArgs {
                nodes,
                time: args.time,
                nemesis: nemesis.into(),
                workload: workload.into(),
                seed: Some(seed),
                scenario: None,
                plant: None,
                no_rdkafka: false,
                no_netns: false,
            };
            let ok = crate::jepsen::run(&run)?;
            let command = format!(
                "`cargo xtask jepsen --nodes {nodes} --time {} --workload {workload} --nemesis \
                 {nemesis} --seed {seed}`",
                args.time
            );
            eprintln!("soak: {command}: {}", verdict(ok));
            rows.push((command, ok, t.elapsed().as_secs()));
        }
    }
    let mut table = String::from("| run | verdict | seconds |\n|---|---|---|\n");
    for (command, ok, seconds) in &rows {
        let _ = writeln!(table, "| {command} | {} | {seconds} |", verdict(*ok));
    }
    let dir = project_root().join("target/soak");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("summary.md");
    std::fs::write(&path, &table).with_context(|| format!("writing {}", path.display()))?;
    println!("{table}");
    let failed = rows.iter().filter(|(_, ok, _)| !ok).count();
    eprintln!(
        "soak: {} runs, {failed} failed, {:.0?} (table in {})",
        rows.len(),
        started.elapsed(),
        path.display()
    );
    Ok(failed == 0)
}

/// The real-client tests marked `soak`, against a release build, with the environment
/// CI's compat step gives them (this xtask for `deploy`, the debug build to upgrade from).
fn compat_soak() -> Result<bool> {
    let root = project_root();
    let built = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "weir"])
        .current_dir(&root)
        .status()
        .context("building weir")?;
    if !built.success() {
        anyhow::bail!("cargo build --release -p weir failed");
    }
    let mut pytest = std::process::Command::new("python3");
    pytest
        .args(["-m", "pytest", "-q", "tests/compat", "-m", "soak"])
        .current_dir(&root)
        .env("WEIR_BIN", root.join("target/release/weir"));
    if let Ok(xtask) = std::env::current_exe() {
        pytest.env("XTASK_BIN", xtask);
    }
    let debug_weir = root.join("target/debug/weir");
    if debug_weir.is_file() {
        pytest.env("WEIR_FROM_BIN", debug_weir);
    }
    let status = pytest.status().context("running pytest")?;
    Ok(status.success())
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "valid"
    } else {
        "INVALID"
    }
}
