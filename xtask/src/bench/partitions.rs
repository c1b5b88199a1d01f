//! `cargo xtask bench --only partitions`: a 3-node cluster holding many partitions at
//! replication factor 3. Per run, a fresh cluster: a topic of N partitions (RF 3,
//! min.insync.replicas 2) is created and every partition given a leader and a full ISR;
//! then the brokers' CPU is read over [`IDLE`] with no client connected (each follower
//! partition long-polls its leader, so this is what holding the partitions costs); then
//! librdkafka produces records of 100 B with acks=all, keyed so they spread over all N
//! partitions: records/s and the three brokers' CPU seconds per million records. The sizes
//! alternate. What holding partitions costs shows as idle CPU growing with N; work per
//! record should not.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::availability::BenchCluster;
use super::baseline::{median, records_per_sec};
use super::peer::{clock_ticks, cpu_seconds};

/// Heading of this part in docs/benchmarks.md.
pub(crate) const PARTITIONS_HEADING: &str = "## Many partitions in a 3-node cluster";

/// Partition counts, alternated per round.
const SIZES: [u32; 2] = [1_000, 10_000];
/// How long the idle CPU is read.
const IDLE: Duration = Duration::from_secs(10);
/// Wait after the ISR is full before reading the idle CPU (the controller's and leaders'
/// first rounds after the creation are over by then).
const SETTLE: Duration = Duration::from_secs(3);
/// Distinct keys of the produced records: more than the partitions, so every partition
/// gets records.
const KEYS: &str = "100000";

/// One run's figures.
struct Run {
    /// CPU seconds per wall second of each broker while idle.
    idle_cores: [f64; 3],
    rate: f64,
    /// The three brokers' CPU seconds per million records produced.
    cpu_per_million: f64,
}

pub(crate) fn partitions_part(
    weir: &Path,
    load: &Path,
    root: &Path,
    records: u64,
    rounds: usize,
) -> Result<String> {
    let ticks = clock_ticks()?;
    // A tenth of the throughput part's records: each record is acknowledged by three
    // replicas on the same cores.
    let records = (records / 10).max(10_000);
    let mut runs: Vec<(u32, Run)> = Vec::new();
    for round in 0..rounds {
        let mut sizes = SIZES;
        if round % 2 == 1 {
            sizes.reverse();
        }
        for partitions in sizes {
            eprintln!(
                "==> partitions: round {}, {partitions} partitions",
                round + 1
            );
            let base = root.join(format!("target/bench-partitions/{partitions}"));
            runs.push((
                partitions,
                one_run(weir, load, &base, partitions, records, ticks)?,
            ));
        }
    }
    Ok(render(&runs, records, rounds))
}

fn one_run(
    weir: &Path,
    load: &Path,
    base: &Path,
    partitions: u32,
    records: u64,
    ticks: f64,
) -> Result<Run> {
    let mut cluster = BenchCluster::start(weir, base, "")?;
    cluster.wait_ready()?;
    cluster
        .create_topic("many", partitions)
        .context("creating the topic")?;
    std::thread::sleep(SETTLE);
    let pids = cluster.pids()?;
    let cpu = |pids: &[u32; 3]| -> Result<[f64; 3]> {
        Ok([
            cpu_seconds(pids[0], ticks)?,
            cpu_seconds(pids[1], ticks)?,
            cpu_seconds(pids[2], ticks)?,
        ])
    };
    let before = cpu(&pids)?;
    let started = Instant::now();
    std::thread::sleep(IDLE);
    let after = cpu(&pids)?;
    let wall = started.elapsed().as_secs_f64();
    let idle_cores = [0, 1, 2].map(|i| (after[i] - before[i]) / wall);
    let count = records.to_string();
    let bootstrap = cluster.bootstrap();
    let args = [
        "produce", &bootstrap, "many", &count, "100", "all", "0", KEYS,
    ];
    let output = Command::new(load).args(args).output()?;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    if !output.status.success() {
        bail!("rdkafka_load {} failed: {stdout}", args.join(" "));
    }
    let done = cpu(&pids)?;
    let rate = records_per_sec(&stdout).with_context(|| format!("no records/sec in {stdout:?}"))?;
    let spent: f64 = (0..3).map(|i| done[i] - after[i]).sum();
    Ok(Run {
        idle_cores,
        rate,
        cpu_per_million: spent * 1e6 / records.max(1) as f64,
    })
}

fn render(runs: &[(u32, Run)], records: u64, rounds: usize) -> String {
    let mut text = format!(
        "{PARTITIONS_HEADING}\n\n\
         `cargo xtask bench --only partitions --repeat {rounds}`: three `weir serve` \
         processes (release build, defaults, every node a broker and a controller voter) on \
         the same 2 cores as the load generator, a fresh cluster per run; a topic of N \
         partitions at replication factor 3 is created (`weir topic create`, \
         min.insync.replicas 2) and every partition given a leader and a full ISR. Idle: the \
         CPU seconds per wall second of each broker over {} s with no client connected, {} s \
         after the ISR was full (each follower partition long-polls its leader: this is what \
         holding the partitions costs). Produce: librdkafka (rdkafka_load) sends {records} \
         records of 100 B with acks=all and keys spread over all N partitions; records/s, \
         and the three brokers' CPU seconds (user + system, /proc/PID/stat) per million \
         records. Sizes alternate per round.\n\n\
         | partitions (x 3 replicas) | idle: cores busy per broker, each run | median \
         (all brokers) | produce records/s | median | CPU s/M (3 brokers) | median |\n\
         |---|---|---|---|---|---|---|\n",
        IDLE.as_secs(),
        SETTLE.as_secs(),
    );
    for size in SIZES {
        let of_size: Vec<&Run> = (runs.iter())
            .filter(|(p, _)| *p == size)
            .map(|(_, r)| r)
            .collect();
        let idle: Vec<String> = (of_size.iter())
            .map(|r| {
                let each: Vec<String> = r.idle_cores.iter().map(|c| format!("{c:.3}")).collect();
                each.join(" / ")
            })
            .collect();
        let mut all_idle: Vec<f64> = (of_size.iter()).flat_map(|r| r.idle_cores).collect();
        let rates: Vec<String> = of_size.iter().map(|r| format!("{:.0}", r.rate)).collect();
        let mut rate: Vec<f64> = of_size.iter().map(|r| r.rate).collect();
        let cpus: Vec<String> = (of_size.iter())
            .map(|r| format!("{:.2}", r.cpu_per_million))
            .collect();
        let mut cpu: Vec<f64> = of_size.iter().map(|r| r.cpu_per_million).collect();
        text.push_str(&format!(
            "| {size} | {} | {:.3} | {} | {:.0} | {} | {:.2} |\n",
            idle.join("; "),
            median(&mut all_idle),
            rates.join(", "),
            median(&mut rate),
            cpus.join(", "),
            median(&mut cpu),
        ));
    }
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.push_str(&format!(
        "\n`cat /proc/loadavg` at the end: `{}`\n",
        loadavg.trim()
    ));
    text
}
