//! `weir-sim`: the simulation runner that `cargo xtask sim` builds once per simulator and
//! drives. Subcommands:
//! - `seeds --start S --count N [--workload W]`: run N seeds of every workload (or W), with
//!   a progress line on stderr; prints each failure with its reproduction command and
//!   writes its history to `target/sim-failures/`; exits 1 if any run failed.
//! - `replay --seed S [--workload W]`: run one seed; last line `trace-hash: <hex>`.
//! - `determinism --seed S`: run every workload of seed S twice, compare trace hashes.
//! - `planted --max-seeds N`: look for the first failing seed (used with a planted bug
//!   switched on); exits 0 once one is found.
//!
//! `--planted-bug NAME` (a build with the `planted` feature only) switches one planted bug
//! of weir-core on for the whole process, before any node starts.
//!
//! Every run is watched by a wall-clock guard ([`Watchdog`]): a run that takes longer than
//! `WEIR_SIM_RUN_WALL_MAX_S` real seconds (default [`RUN_WALL_MAX_S`]) is a hang (a spin
//! that never lets simulated time move); the guard prints `HANG` with the seed, the
//! workload and the reproduction command and exits with status 3.
//!
//! The throughput measurement and the guard read the real clock: this binary is the edge
//! of the simulation, not part of it.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use weir_sim::outcome::{planted_bug, RunOutcome};
use weir_sim::trace::Trace;
use weir_sim::workload::Workload;
use weir_sim::{run_seed, SIMULATOR};

struct Args {
    command: String,
    seed: u64,
    count: u64,
    workload: Option<Workload>,
    verbose: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut raw = std::env::args().skip(1);
    let command = raw.next().ok_or("missing subcommand")?;
    let mut args = Args {
        command,
        seed: 0,
        count: 20,
        workload: None,
        verbose: false,
    };
    while let Some(flag) = raw.next() {
        let mut value = || raw.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--seed" | "--start" => args.seed = parse_u64(&value()?)?,
            "--count" | "--seeds" | "--max-seeds" => args.count = parse_u64(&value()?)?,
            "--workload" => {
                let name = value()?;
                let workload =
                    Workload::parse(&name).ok_or(format!("unknown workload {name:?}"))?;
                args.workload = Some(workload);
            }
            "--verbose" => args.verbose = true,
            "--planted-bug" => plant(&value()?)?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// Switches the planted bug `name` on (weir-core's `planted` module).
fn plant(name: &str) -> Result<(), String> {
    let bug = weir_core::planted::Bug::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = (weir_core::planted::Bug::ALL.iter())
            .map(|bug| bug.name())
            .collect();
        format!("unknown planted bug {name:?}; known: {}", known.join(", "))
    })?;
    #[cfg(feature = "planted")]
    {
        weir_core::planted::activate(Some(bug));
        Ok(())
    }
    #[cfg(not(feature = "planted"))]
    {
        Err(format!(
            "{} needs a weir-sim built with the `planted` feature",
            bug.name()
        ))
    }
}

/// Real seconds one run may take before the guard calls it a hang (the slowest healthy
/// runs take a few seconds in a debug build).
const RUN_WALL_MAX_S: u64 = 120;
/// Exit status of a run the guard stopped.
const HANG_EXIT: i32 = 3;

/// The wall-clock guard: a thread that watches the run in progress.
#[derive(Clone, Default)]
struct Watchdog(Arc<Mutex<Option<(u64, Workload, Instant)>>>);

impl Watchdog {
    fn start() -> Watchdog {
        let limit = std::env::var("WEIR_SIM_RUN_WALL_MAX_S")
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(RUN_WALL_MAX_S);
        let watchdog = Watchdog::default();
        let watched = watchdog.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(250));
            let current = *watched.0.lock().unwrap_or_else(PoisonError::into_inner);
            let Some((seed, workload, started)) = current else {
                continue;
            };
            if started.elapsed() > Duration::from_secs(limit) {
                let planted = planted_bug()
                    .map(|bug| format!(" --planted-bug {bug}"))
                    .unwrap_or_default();
                println!(
                    "\nHANG {SIMULATOR} seed={seed} workload={}: no result after {limit}s of \
                     wall-clock time (simulated time stopped moving?)",
                    workload.name()
                );
                println!(
                    "  reproduce: cargo xtask sim --sim {SIMULATOR} --seed {seed} --workload {}\
                     {planted}",
                    workload.name()
                );
                let _ = std::io::stdout().flush();
                std::process::exit(HANG_EXIT);
            }
        });
        watchdog
    }

    /// Run one seed under the guard.
    fn run(&self, seed: u64, workload: Workload) -> RunOutcome {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((seed, workload, Instant::now()));
        let outcome = run_seed(seed, workload);
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
        outcome
    }
}

fn parse_u64(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("not a number: {text}"))
}

fn workloads(args: &Args) -> Vec<Workload> {
    match args.workload {
        Some(workload) => vec![workload],
        None => Workload::ALL.to_vec(),
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("weir-sim: {error}");
            eprintln!(
                "usage: weir-sim seeds|replay|determinism|planted [--seed S] [--count N] \
                 [--workload W] [--verbose] [--planted-bug NAME]"
            );
            return ExitCode::from(2);
        }
    };
    let guard = Watchdog::start();
    let passed = match args.command.as_str() {
        "seeds" => seeds(&args, &guard),
        "replay" => replay(&args, &guard),
        "determinism" => determinism(&args),
        "planted" => planted(&args, &guard),
        other => {
            eprintln!("weir-sim: unknown subcommand {other}");
            return ExitCode::from(2);
        }
    };
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn report_failure(outcome: &RunOutcome) {
    println!(
        "FAIL {} seed={} workload={}",
        outcome.simulator,
        outcome.seed,
        outcome.workload.name()
    );
    println!("  checker: {}", outcome.verdict);
    for violation in outcome.violations.iter().take(5) {
        println!("  violation: {violation}");
    }
    let root = std::env::current_dir().unwrap_or_default();
    match outcome.write_history(&root) {
        Ok(path) => println!("  history: {}", path.display()),
        Err(error) => println!("  history not written: {error}"),
    }
    println!("  reproduce: {}", outcome.repro_command());
}

fn seeds(args: &Args, guard: &Watchdog) -> bool {
    let started = Instant::now();
    let workloads = workloads(args);
    let mut failures = Vec::new();
    let mut runs = 0u64;
    for index in 0..args.count {
        let seed = args.seed + index;
        for workload in &workloads {
            let outcome = guard.run(seed, *workload);
            runs += 1;
            if !outcome.passed {
                eprintln!();
                report_failure(&outcome);
                failures.push(outcome.repro_command());
            }
        }
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        let done = index + 1;
        let width = 30;
        let filled = (done * width / args.count.max(1)) as usize;
        eprint!(
            "\r{SIMULATOR:>7} [{}{}] {done}/{} seeds  {:.1} seeds/s  failures: {}",
            "#".repeat(filled),
            " ".repeat(width as usize - filled),
            args.count,
            done as f64 / elapsed,
            failures.len()
        );
        let _ = std::io::stderr().flush();
    }
    eprintln!();
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "summary: simulator={SIMULATOR} seeds={} workloads={} runs={runs} failures={} \
         seconds={elapsed:.1} seeds_per_s={:.2} runs_per_s={:.2}",
        args.count,
        workloads.len(),
        failures.len(),
        args.count as f64 / elapsed,
        runs as f64 / elapsed,
    );
    for command in &failures {
        println!("reproduce: {command}");
    }
    failures.is_empty()
}

fn replay(args: &Args, guard: &Watchdog) -> bool {
    let mut trace = Trace::default();
    let mut passed = true;
    for workload in workloads(args) {
        let outcome = guard.run(args.seed, workload);
        if args.verbose {
            for line in &outcome.faults {
                println!("  fault: {line}");
            }
            print!("{}", outcome.history.to_jsonl());
        }
        println!(
            "{} seed={} workload={}: {} {} trace={:016x}",
            outcome.simulator,
            outcome.seed,
            workload.name(),
            if outcome.passed { "PASS" } else { "FAIL" },
            outcome.verdict,
            outcome.trace_hash
        );
        if !outcome.passed {
            passed = false;
            report_failure(&outcome);
        }
        trace.add(&outcome.trace_hash.to_le_bytes());
    }
    println!("trace-hash: {:016x}", trace.finish());
    passed
}

/// Replays each workload's seed twice, each time in a fresh process (exactly what a
/// reproduction command does), and compares the trace hashes. Two runs inside one process
/// are not compared: on turmoil a host restarted mid-run builds a new tokio runtime whose
/// timer wheel is anchored to the real clock, and a second run in the same process has been
/// seen to drift by a tick after a restart (see docs/simulation.md, Status).
fn determinism(args: &Args) -> bool {
    let mut same = true;
    for workload in workloads(args) {
        let first = replay_in_child(args.seed, workload);
        let second = replay_in_child(args.seed, workload);
        let verdict = match (&first, &second) {
            (Some(a), Some(b)) if a == b => "same",
            _ => "DIFFERENT",
        };
        println!(
            "{SIMULATOR} seed={} workload={}: {} {} {verdict}",
            args.seed,
            workload.name(),
            first.as_deref().unwrap_or("?"),
            second.as_deref().unwrap_or("?"),
        );
        same &= verdict == "same";
    }
    same
}

/// Runs `weir-sim replay --seed S --workload W` as a child and returns its trace hash.
fn replay_in_child(seed: u64, workload: Workload) -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let output = std::process::Command::new(exe)
        .args([
            "replay",
            "--seed",
            &seed.to_string(),
            "--workload",
            workload.name(),
        ])
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("trace-hash: "))
        .map(str::to_owned)
}

fn planted(args: &Args, guard: &Watchdog) -> bool {
    let started = Instant::now();
    for index in 0..args.count {
        let seed = args.seed + index;
        for workload in workloads(args) {
            let outcome = guard.run(seed, workload);
            if !outcome.passed {
                report_failure(&outcome);
                println!(
                    "caught: simulator={SIMULATOR} seed={seed} workload={} after {} seeds \
                     in {:.1}s",
                    workload.name(),
                    index + 1,
                    started.elapsed().as_secs_f64()
                );
                return true;
            }
        }
    }
    println!(
        "not caught: {} seeds from {} all passed",
        args.count, args.seed
    );
    false
}
