//! `weir-jepsen`: runs one Jepsen-style test against a real Weir cluster (issue #8).
//!
//! Usually started by `cargo xtask jepsen ...`, which builds `weir` and this binary in
//! release first. Exit code: 0 when the history is valid, 1 when it is not (or unknown),
//! 2 when the harness itself failed. The report's path is printed on the last line.
#![allow(clippy::disallowed_methods)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use weir_jepsen::harness::schedule::FaultKind;
use weir_jepsen::harness::workload::WorkloadKind;
use weir_jepsen::harness::{self, Options, Plant};

#[derive(Parser, Debug)]
#[command(
    name = "weir-jepsen",
    about = "Jepsen-style test of a real Weir cluster"
)]
struct Cli {
    /// Cluster size: 1, 3 or 5.
    #[arg(long, default_value_t = 3)]
    nodes: u32,
    /// Main phase, seconds.
    #[arg(long, default_value_t = 60)]
    time: u64,
    /// Faults, comma separated ("none" for none): kill, pause, partition, netem,
    /// kill-majority (a majority killed at once, down 1-4 s, restarted together),
    /// kill-leader-controller (the partition leader killed; while it is down the active
    /// controller is killed and restarted; then the leader restarts). See docs/jepsen.md.
    #[arg(long, default_value = "kill,partition")]
    nemesis: String,
    /// queue or txn.
    #[arg(long, default_value = "queue")]
    workload: String,
    /// Seed (default: derived from the time).
    #[arg(long)]
    seed: Option<u64>,
    /// Only the "two nodes down" scenario (5 nodes).
    #[arg(long)]
    scenario: Option<String>,
    /// The weir binary.
    #[arg(long, default_value = "target/release/weir")]
    weir: PathBuf,
    /// Reports go under DIR/<seed>-<time>/.
    #[arg(long, default_value = "target/jepsen")]
    out: PathBuf,
    /// Keys (partitions of the workload topic).
    #[arg(long, default_value_t = 4)]
    keys: u32,
    /// Do not run the librdkafka (confluent-kafka) client.
    #[arg(long)]
    no_rdkafka: bool,
    /// Use the proxy network even when network namespaces work.
    #[arg(long)]
    no_netns: bool,
    /// Plant a harness bug the checker must catch: drop-acked.
    #[arg(long)]
    plant: Option<String>,
    /// The Python client script.
    #[arg(long, default_value = "jepsen-like/clients/queue_client.py")]
    python_client: PathBuf,
}

fn options(cli: Cli) -> anyhow::Result<Options> {
    if ![1, 3, 5].contains(&cli.nodes) {
        anyhow::bail!("--nodes must be 1, 3 or 5");
    }
    let mut nemesis = Vec::new();
    for name in cli
        .nemesis
        .split(',')
        .filter(|n| !n.is_empty() && *n != "none")
    {
        match FaultKind::parse(name) {
            Some(kind) => nemesis.push(kind),
            None => anyhow::bail!("unknown nemesis {name:?} ({})", FaultKind::names()),
        }
    }
    let Some(workload) = WorkloadKind::parse(&cli.workload) else {
        anyhow::bail!("unknown workload {:?} (queue, txn)", cli.workload);
    };
    let two_down_only = match cli.scenario.as_deref() {
        None => false,
        Some("two-down") => true,
        Some(other) => anyhow::bail!("unknown scenario {other:?} (two-down)"),
    };
    let plant = match cli.plant.as_deref() {
        None => None,
        Some("drop-acked") => Some(Plant::DropAcked),
        Some(other) => anyhow::bail!("unknown plant {other:?} (drop-acked)"),
    };
    let seed = cli.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() % 1_000_000)
            .unwrap_or(1)
    });
    Ok(Options {
        nodes: cli.nodes,
        time_s: cli.time,
        nemesis,
        workload,
        seed,
        out: cli.out,
        weir: cli.weir,
        keys: cli.keys.max(2),
        rdkafka: !cli.no_rdkafka,
        netns: !cli.no_netns,
        two_down_only,
        plant,
        python_client: cli.python_client,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = match options(cli) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("weir-jepsen: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("weir-jepsen: tokio runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(harness::run(options)) {
        Ok(outcome) => {
            for summary in &outcome.summaries {
                println!("{summary}");
            }
            println!(
                "verdict: {}",
                if outcome.valid { "valid" } else { "INVALID" }
            );
            println!("report: {}", outcome.html.display());
            if outcome.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("weir-jepsen: harness failed: {error:#}");
            ExitCode::from(2)
        }
    }
}
