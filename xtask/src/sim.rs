//! `cargo xtask sim`: build the simulation runner (`weir-sim`) for each simulator and drive
//! it. turmoil runs in the normal build and target dir; madsim needs `--cfg madsim`, so it
//! builds into `target/sim-madsim` (a normal build is never recompiled because of it).
//! Planted bugs build once (weir-sim's `planted` feature holds them all; each run switches
//! one on with `--planted-bug`): on turmoil in the normal target dir, where only the crates
//! above weir-core are built again (their feature hash differs, so both builds stay), on
//! madsim into `target/sim-madsim-planted`.
//!
//! Contract (scripts rely on it):
//! - `--sim madsim|turmoil|both --seeds N`: exit 0 only when every seed passed;
//! - `--sim X --seed S [--workload W]`: replay one run; last line `trace-hash: <hex>`;
//! - `--planted`: exit 0 only when every planted bug was caught;
//! - `--determinism`: each simulator runs seed S twice; exit 0 only if hashes agree.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::project_root;

/// Planted bugs (weir-core's `planted` module, switched on by weir-sim's `--planted-bug`)
/// and what they break.
pub(crate) const PLANTED: &[(&str, &str)] = &[
    (
        "planted-ack-before-sync",
        "acks=all answered before the data is durable",
    ),
    (
        "planted-offset-reuse",
        "recovery forgets the last batch; its offsets are assigned twice",
    ),
    (
        "planted-skip-crc",
        "fetched bytes served without checking their CRC",
    ),
    (
        "planted-skip-dedup",
        "an idempotent producer's retried batch is appended again",
    ),
    (
        "planted-skip-seq-after-restart",
        "recovery starts with empty producer state and skips the sequence check",
    ),
    (
        "planted-expose-above-lso",
        "read_committed fetches bounded by the high watermark, not the LSO",
    ),
    (
        "planted-accept-fenced-epoch",
        "a produce from a fenced (older) producer epoch is accepted",
    ),
    (
        "planted-group-double-assign",
        "a rebalance that only lost members keeps the generation: two owners per generation",
    ),
    (
        "planted-lose-offset-commit",
        "an offset commit is answered but never written, so a restart loses it",
    ),
    (
        "planted-hw-before-isr",
        "a partition leader advances the high watermark before the ISR has the data",
    ),
    (
        "planted-skip-truncation",
        "a follower keeps its divergent suffix after a leader change",
    ),
    (
        "planted-elect-outside-isr",
        "the controller elects any live replica, in the ISR or not",
    ),
    (
        "planted-stale-decisions",
        "the controller decides on the applied image alone (issue 12's majority-crash loss)",
    ),
    (
        "planted-compact-latest",
        "the log cleaner drops a key's latest record (an off-by-one in the superseded test)",
    ),
    (
        "planted-compact-past-lso",
        "the log cleaner's uncleanable offset ignores the last stable offset and the high \
         watermark",
    ),
    (
        "planted-tier-delete-unconfirmed",
        "local retention deletes a tiered segment once its upload started, before the \
         metadata log confirmed it",
    ),
    (
        "planted-acl-allow-wins",
        "the authorizer lets an ALLOW outweigh a DENY on the same resource",
    ),
    (
        "planted-abort-commits-offsets",
        "an abort marker commits a transaction's consumed offsets to the group",
    ),
];

/// The cluster workloads: CI runs each over the fixed seeds on turmoil and over
/// [`MADSIM_CLUSTER_SEEDS`] on madsim, and the cluster planted bugs are searched for with them
/// (on turmoil).
pub(crate) const CLUSTER_WORKLOADS: &[&str] = &[
    "cluster-crash",
    "cluster-partition",
    "cluster-two-down",
    "cluster-mixed",
    "cluster-mixed-5",
    "cluster-power",
    "cluster-majority-crash",
    "cluster-compact",
    "cluster-tiered",
    "cluster-acl",
];

/// The workload a planted bug is searched with (`None`: every single-node workload).
fn planted_workload(feature: &str) -> Option<&'static str> {
    match feature {
        "planted-hw-before-isr" | "planted-elect-outside-isr" => Some("cluster-crash"),
        "planted-skip-truncation" => Some("cluster-crash"),
        "planted-stale-decisions" => Some("cluster-majority-crash"),
        "planted-compact-latest" | "planted-compact-past-lso" => Some("compact"),
        "planted-tier-delete-unconfirmed" => Some("cluster-tiered"),
        "planted-acl-allow-wins" => Some("cluster-acl"),
        "planted-abort-commits-offsets" => Some("txn"),
        _ => None,
    }
}

/// Seeds searched per planted bug before it counts as missed.
const PLANTED_SEEDS_MAX: u64 = 50;

/// Seeds searched for `feature`: [`PLANTED_SEEDS_MAX`], but twice that for the bug whose
/// workload exposes it in about one seed of 17 (measured over seeds 0..50 on 2026-12-06:
/// 31, 34, 46): a search that happens to meet no catching seed in 50 would fail CI for a
/// bug that is still caught (about one chance in 20 each time the seeds shift), while 100
/// make that about one in 400. The search stops at the first catch, so this costs time
/// only when the early seeds miss.
fn planted_seeds_max(feature: &str) -> u64 {
    match feature {
        "planted-compact-past-lso" => 2 * PLANTED_SEEDS_MAX,
        _ => PLANTED_SEEDS_MAX,
    }
}

/// Which simulator(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Simulator {
    /// turmoil (simulated net, tokio paused clock).
    Turmoil,
    /// madsim (`--cfg madsim`).
    Madsim,
    /// Both, turmoil first.
    Both,
}

/// Options of `cargo xtask sim`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SimArgs {
    /// Simulator to run.
    #[arg(long, value_enum, default_value_t = Simulator::Both)]
    sim: Simulator,
    /// How many seeds (each runs every workload, or --workload).
    #[arg(long, default_value_t = 20)]
    seeds: u64,
    /// Replay this one seed (prints `trace-hash: <hex>` last).
    #[arg(long)]
    seed: Option<u64>,
    /// First seed of a --seeds run.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Only this workload.
    #[arg(long)]
    workload: Option<String>,
    /// Run the planted-bug suite.
    #[arg(long)]
    planted: bool,
    /// Run seed --seed (default 1) twice per simulator and compare trace hashes.
    #[arg(long)]
    determinism: bool,
    /// Replay with the whole history and fault log.
    #[arg(long)]
    verbose: bool,
    /// Run with this planted bug switched on, e.g. to replay a caught seed.
    #[arg(long)]
    planted_bug: Option<String>,
    /// Run exactly `cargo xtask ci`'s simulation step (every other option is ignored).
    #[arg(long)]
    ci: bool,
}

pub(crate) fn run(args: &SimArgs) -> Result<bool> {
    if args.ci {
        ci()?;
        return Ok(true);
    }
    let root = project_root();
    if args.planted {
        return planted(&root);
    }
    if let Some(bug) = &args.planted_bug {
        if !PLANTED.iter().any(|(feature, _)| feature == bug) {
            let known: Vec<&str> = PLANTED.iter().map(|(feature, _)| *feature).collect();
            bail!("unknown planted bug {bug:?}; known: {}", known.join(", "));
        }
    }
    let simulators: &[Simulator] = match args.sim {
        Simulator::Both => &[Simulator::Turmoil, Simulator::Madsim],
        Simulator::Turmoil => &[Simulator::Turmoil],
        Simulator::Madsim => &[Simulator::Madsim],
    };
    let mut passed = true;
    let mut failed = Vec::new();
    for simulator in simulators {
        let binary = build(&root, *simulator, args.planted_bug.is_some())?;
        let mut command = Command::new(&binary);
        command.current_dir(&root);
        if args.determinism {
            command.args(["determinism", "--seed", &args.seed.unwrap_or(1).to_string()]);
        } else if let Some(seed) = args.seed {
            command.args(["replay", "--seed", &seed.to_string()]);
            if args.verbose {
                command.arg("--verbose");
            }
        } else {
            command.args([
                "seeds",
                "--start",
                &args.start.to_string(),
                "--count",
                &args.seeds.to_string(),
            ]);
        }
        if let Some(workload) = &args.workload {
            command.args(["--workload", workload]);
        }
        // After the subcommand: weir-sim reads its subcommand first.
        if let Some(bug) = &args.planted_bug {
            command.args(["--planted-bug", bug]);
        }
        let status = command
            .status()
            .with_context(|| format!("running {}", binary.display()))?;
        if !status.success() {
            failed.push(format!("{simulator:?}").to_lowercase());
        }
        passed &= status.success();
    }
    // A replay's last line must stay `trace-hash: <hex>`: the overall line is for --seeds.
    let seeds_mode = args.seed.is_none() && !args.determinism;
    if simulators.len() > 1 && seeds_mode {
        if failed.is_empty() {
            println!("sim: every simulator passed");
        } else {
            println!("sim: FAILED on {}", failed.join(", "));
        }
    }
    Ok(passed)
}

/// The simulator-only target dirs (`--cfg madsim`, with and without the planted bugs):
/// each is a whole second build of the workspace, about 1.2 GB.
const SIM_TARGET_DIRS: [&str; 2] = ["target/sim-madsim", "target/sim-madsim-planted"];

/// Deletes the simulator-only target dirs. `cargo xtask ci` calls it once the simulation
/// step has passed: no later step reads them, and CI's disk is small (a full one stopped
/// the release build). A later `cargo xtask sim` rebuilds what it needs.
pub(crate) fn remove_build_dirs(root: &Path) -> Result<()> {
    for dir in SIM_TARGET_DIRS {
        let dir = root.join(dir);
        if dir.is_dir() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
    }
    Ok(())
}

/// Build weir-sim for `simulator` (with the planted bugs compiled in when `planted`);
/// returns the binary.
fn build(root: &Path, simulator: Simulator, planted: bool) -> Result<PathBuf> {
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(root)
        .args(["build", "-q", "-p", "weir-sim", "--bin", "weir-sim"]);
    // Never export RUSTFLAGS globally: --cfg madsim must not leak into the normal build.
    command.env_remove("RUSTFLAGS");
    let target = match (simulator, planted) {
        (Simulator::Madsim, false) => {
            command.env("RUSTFLAGS", "--cfg madsim");
            root.join(SIM_TARGET_DIRS[0])
        }
        // Its own dir, so a planted replay does not invalidate the normal madsim build.
        (Simulator::Madsim, true) => {
            command.env("RUSTFLAGS", "--cfg madsim");
            root.join(SIM_TARGET_DIRS[1])
        }
        _ => root.join("target"),
    };
    if target != root.join("target") {
        // The simulator-only target dirs: incremental state and debug info there would grow
        // by gigabytes (a full disk once stopped CI) and buy nothing; failures print their
        // seed for a full replay.
        command.env("CARGO_INCREMENTAL", "0");
        command.env("CARGO_PROFILE_DEV_DEBUG", "0");
    }
    if planted {
        command.args(["--features", "planted"]);
    }
    command.env("CARGO_TARGET_DIR", &target);
    let started = Instant::now();
    let label = format!("{simulator:?}{}", if planted { " +planted" } else { "" });
    eprintln!("==> building weir-sim ({label})");
    let status = command.status().context("running cargo build")?;
    if !status.success() {
        bail!("building weir-sim ({label}) failed");
    }
    eprintln!("<== built in {:.1?}", started.elapsed());
    Ok(target.join("debug/weir-sim"))
}

fn planted(root: &Path) -> Result<bool> {
    let binary = build(root, Simulator::Turmoil, true)?;
    let results = run_jobs(root, planted_jobs(&binary), workers())?;
    Ok(planted_summary(&results))
}

/// One job per planted bug: search [`planted_seeds_max`] seeds of its workload for a run
/// the checker refuses.
fn planted_jobs(binary: &Path) -> Vec<Job> {
    (PLANTED.iter())
        .map(|(feature, _)| {
            let seeds = planted_seeds_max(feature).to_string();
            let mut args = vec!["planted", "--max-seeds", &seeds, "--planted-bug", feature];
            if let Some(workload) = planted_workload(feature) {
                args.extend(["--workload", workload]);
            }
            Job::new(
                format!("planted bug {feature}"),
                binary,
                args,
                Verdict::Caught,
            )
        })
        .collect()
}

/// Prints the planted-bug summary of `results`; true when every planted bug was caught.
fn planted_summary(results: &[JobResult]) -> bool {
    println!("planted-bug summary:");
    let mut all_caught = true;
    for result in results
        .iter()
        .filter(|result| result.verdict == Verdict::Caught)
    {
        let bug = result.label.trim_start_matches("planted bug ");
        let what = (PLANTED.iter())
            .find(|(feature, _)| *feature == bug)
            .map_or("", |(_, description)| description);
        match &result.caught {
            Some(line) if result.passed => println!("  CAUGHT {bug} ({what}): {line}"),
            _ => {
                all_caught = false;
                println!("  MISSED {bug} ({what}): no failing seed in {PLANTED_SEEDS_MAX}");
            }
        }
    }
    all_caught
}

/// Parallel simulator jobs: one per CPU this process may use.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// Seeds of every workload CI runs on each simulator (fixed: 0..CI_SEEDS).
const CI_SEEDS: u64 = 8;
/// Seeds of each cluster workload CI runs on madsim (fixed: 0..MADSIM_CLUSTER_SEEDS). Few:
/// a madsim cluster seed costs 1-3 s on two cores, and turmoil already runs CI_SEEDS of the
/// same schedules (docs/simulation.md, "Cluster workloads", has the measured times).
const MADSIM_CLUSTER_SEEDS: u64 = 2;
/// The cluster workload whose seed CI replays twice on madsim to compare trace hashes.
const MADSIM_CLUSTER_DETERMINISM: &str = "cluster-crash";

/// `seeds` seeds of one cluster workload on turmoil (the soak); `Ok(true)` when all passed.
pub(crate) fn run_cluster_seeds(workload: &str, seeds: u64) -> Result<bool> {
    run(&SimArgs {
        sim: Simulator::Turmoil,
        seeds,
        seed: None,
        start: 0,
        workload: Some(workload.to_string()),
        planted: false,
        determinism: false,
        verbose: false,
        planted_bug: None,
        ci: false,
    })
}

/// The CI step: a fixed, fast seed set on both simulators (the cluster workloads on turmoil
/// and, fewer seeds, on madsim), the determinism check on both (and on one madsim cluster
/// workload), and the planted-bug suite.
///
/// Each run is one simulator process on one thread, so the runs go out as jobs over every
/// core ([`run_jobs`]); the three builds come first, one after the other (cargo uses every
/// core itself). Each job's output is printed whole when it ends, with its reproduction
/// lines; the verdict of each is the run's own (exit status, `caught:` for a planted bug).
pub(crate) fn ci() -> Result<()> {
    let root = project_root();
    // Each binary is linked under its own name first: the planted build writes the same
    // `target/debug/weir-sim` as the plain turmoil one, and both run at once.
    let turmoil = keep_binary(&root, build(&root, Simulator::Turmoil, false)?, "turmoil")?;
    let madsim = keep_binary(&root, build(&root, Simulator::Madsim, false)?, "madsim")?;
    let planted = keep_binary(&root, build(&root, Simulator::Turmoil, true)?, "planted")?;
    let seeds = CI_SEEDS.to_string();
    let madsim_cluster_seeds = MADSIM_CLUSTER_SEEDS.to_string();
    let mut jobs = planted_jobs(&planted);
    for (name, binary) in [("turmoil", &turmoil), ("madsim", &madsim)] {
        jobs.push(Job::new(
            format!("{name} seeds 0..{CI_SEEDS}, every workload"),
            binary,
            ["seeds", "--start", "0", "--count", &seeds],
            Verdict::Exit,
        ));
    }
    for workload in CLUSTER_WORKLOADS {
        let args = [
            "seeds",
            "--start",
            "0",
            "--count",
            &seeds,
            "--workload",
            workload,
        ];
        jobs.push(Job::new(
            format!("turmoil {workload} seeds 0..{CI_SEEDS}"),
            &turmoil,
            args,
            Verdict::Exit,
        ));
        let args = [
            "seeds",
            "--start",
            "0",
            "--count",
            &madsim_cluster_seeds,
            "--workload",
            workload,
        ];
        jobs.push(Job::new(
            format!("madsim {workload} seeds 0..{MADSIM_CLUSTER_SEEDS}"),
            &madsim,
            args,
            Verdict::Exit,
        ));
    }
    for (name, binary) in [("turmoil", &turmoil), ("madsim", &madsim)] {
        jobs.push(Job::new(
            format!("{name} determinism, seed 1"),
            binary,
            ["determinism", "--seed", "1"],
            Verdict::Exit,
        ));
    }
    jobs.push(Job::new(
        format!("madsim {MADSIM_CLUSTER_DETERMINISM} determinism, seed 1"),
        &madsim,
        [
            "determinism",
            "--seed",
            "1",
            "--workload",
            MADSIM_CLUSTER_DETERMINISM,
        ],
        Verdict::Exit,
    ));
    // Longest first, so no core idles at the end: the two slowest planted-bug searches
    // (14 and 38 seeds), the turmoil runs (13-36 s each), the other planted bugs, madsim.
    jobs.sort_by_key(|job| {
        let slow_search = ["stale-decisions", "compact-past-lso"]
            .iter()
            .any(|bug| job.label.ends_with(bug));
        match (slow_search, job.verdict, job.label.starts_with("turmoil")) {
            (true, _, _) => 0,
            (_, Verdict::Exit, true) => 1,
            (_, Verdict::Caught, _) => 2,
            _ => 3,
        }
    });
    let results = run_jobs(&root, jobs, workers())?;
    planted_summary(&results);
    let failed: Vec<&str> = results
        .iter()
        .filter(|result| !result.passed)
        .map(|result| result.label.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "simulation: {} job(s) failed (reproduction commands in their output above): {}",
            failed.len(),
            failed.join("; ")
        );
    }
    Ok(())
}

/// Hard-links `binary` as `target/sim-ci/weir-sim-<name>` (copies it where links fail): a
/// later build that writes the same path leaves this one in place.
fn keep_binary(root: &Path, binary: PathBuf, name: &str) -> Result<PathBuf> {
    let dir = root.join("target/sim-ci");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let kept = dir.join(format!("weir-sim-{name}"));
    match std::fs::remove_file(&kept) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("removing {}", kept.display())),
    }
    if std::fs::hard_link(&binary, &kept).is_err() {
        std::fs::copy(&binary, &kept)
            .with_context(|| format!("copying {} to {}", binary.display(), kept.display()))?;
    }
    Ok(kept)
}

/// How a CI simulation job is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Passed when the run exits 0 (every seed passed, or the trace hashes agreed).
    Exit,
    /// A planted-bug search: passed when it exits 0 with a `caught:` line.
    Caught,
}

/// One simulator run of the CI step.
struct Job {
    label: String,
    binary: PathBuf,
    args: Vec<String>,
    verdict: Verdict,
}

impl Job {
    fn new<I, A>(label: String, binary: &Path, args: I, verdict: Verdict) -> Job
    where
        I: IntoIterator<Item = A>,
        A: AsRef<str>,
    {
        Job {
            label,
            binary: binary.to_path_buf(),
            args: args
                .into_iter()
                .map(|arg| arg.as_ref().to_string())
                .collect(),
            verdict,
        }
    }
}

/// What a finished [`Job`] gave.
struct JobResult {
    label: String,
    verdict: Verdict,
    passed: bool,
    /// A planted-bug search's `caught:` line.
    caught: Option<String>,
}

/// Runs `jobs` on `workers` threads, each job a child process whose output is captured and
/// printed whole (under one lock) when it ends, between `==>` and `<==` lines. Results come
/// back in the jobs' order.
fn run_jobs(root: &Path, jobs: Vec<Job>, workers: usize) -> Result<Vec<JobResult>> {
    let total = jobs.len();
    let queue = std::sync::Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let printing = std::sync::Mutex::new(());
    let results = std::sync::Mutex::new(Vec::with_capacity(total));
    let started = Instant::now();
    eprintln!("==> {total} simulation jobs on {workers} workers");
    std::thread::scope(|scope| -> Result<()> {
        let mut handles = Vec::new();
        for _ in 0..workers.max(1) {
            handles.push(scope.spawn(|| -> Result<()> {
                loop {
                    let next = {
                        let mut queue = queue.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                        if queue.is_empty() {
                            None
                        } else {
                            Some(queue.remove(0))
                        }
                    };
                    let Some((index, job)) = next else {
                        return Ok(());
                    };
                    let job_started = Instant::now();
                    let output = Command::new(&job.binary)
                        .current_dir(root)
                        .args(&job.args)
                        .output()
                        .with_context(|| format!("running {}", job.binary.display()))?;
                    let stdout = String::from_utf8_lossy(&output.stdout);
                    let caught = stdout
                        .lines()
                        .find(|line| line.starts_with("caught:"))
                        .map(str::to_string);
                    let passed = output.status.success()
                        && (job.verdict == Verdict::Exit || caught.is_some());
                    {
                        let _printing = printing.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                        eprintln!("==> {}", job.label);
                        eprint!("{}", String::from_utf8_lossy(&output.stderr));
                        print!("{stdout}");
                        eprintln!(
                            "<== {}: {} in {:.1?} ({}, {}/{total} at {:.0?})",
                            job.label,
                            if passed { "ok" } else { "FAILED" },
                            job_started.elapsed(),
                            output.status,
                            index + 1,
                            started.elapsed(),
                        );
                    }
                    results
                        .lock()
                        .map_err(|_| anyhow::anyhow!("poisoned"))?
                        .push((
                            index,
                            JobResult {
                                label: job.label,
                                verdict: job.verdict,
                                passed,
                                caught,
                            },
                        ));
                }
            }));
        }
        for handle in handles {
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("a simulation worker panicked"))??;
        }
        Ok(())
    })?;
    let mut results = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    results.sort_by_key(|(index, _)| *index);
    eprintln!("<== {total} simulation jobs in {:.1?}", started.elapsed());
    Ok(results.into_iter().map(|(_, result)| result).collect())
}
