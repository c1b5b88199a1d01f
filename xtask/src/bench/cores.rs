//! `cargo xtask bench --only cores`: what the broker does with one core and with two, and
//! with two cores and two shards (`num.shards`, docs/sharding.md). The broker runs under
//! `taskset` (its runtime takes one worker thread per core it may run on,
//! `num.network.threads`' default), a fresh broker per run; librdkafka produces (100 B,
//! acks=1) and consumes (from offset 0) on the cores the broker does not have where the
//! machine has them (with two cores, the two-core broker shares them with the load
//! generator). Rounds alternate the placements. Per run: records/s, the broker's CPU
//! seconds per million records (work per record: flat when adding cores adds no
//! overhead), its cores busy (CPU seconds over wall seconds: how much of what it was given
//! it used) and the state machine's busy seconds per million records, summed over its
//! shards (`weir_state_machine_busy_seconds_total` on /metrics): each shard is one task,
//! so with `N` shards one broker takes about `N` million records/s over that figure, and
//! the figure stays flat as shards are added when sharding adds no work.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::baseline::{median, records_per_sec};
use super::compaction::scrape;
use super::peer::{clock_ticks, cpu_seconds};
use super::{free_port, wait_ready};

/// Heading of this part in docs/benchmarks.md.
pub(crate) const CORES_HEADING: &str = "## Cores: the broker on one core, then two";

/// Partitions of the benchmark topic.
const PARTITIONS: &str = "2";
/// Record size, bytes.
const RECORD_BYTES: &str = "100";

/// Where the broker and the load generator run (`taskset -c` lists).
struct Placement {
    label: &'static str,
    broker: String,
    client: String,
    /// The broker's `num.shards`.
    shards: u16,
}

/// One run's measurements of one direction.
#[derive(Debug, Clone, Copy)]
struct Run {
    rate: f64,
    /// Broker CPU seconds per million records.
    cpu_per_million: f64,
    /// Broker CPU seconds per wall second.
    cores_busy: f64,
    /// Seconds the state machine's task was busy per million records.
    state_machine_per_million: f64,
}

/// The two placements on a machine of `cores` CPUs (at least 2).
fn placements(cores: usize) -> Vec<Placement> {
    let last = cores - 1;
    let rest = |from: usize| {
        if from >= last {
            format!("{last}")
        } else {
            format!("{from}-{last}")
        }
    };
    let two = if cores >= 3 {
        rest(2)
    } else {
        "0-1".to_owned()
    };
    vec![
        Placement {
            label: "1 core",
            broker: "0".to_owned(),
            client: rest(1),
            shards: 1,
        },
        Placement {
            label: "2 cores",
            broker: "0-1".to_owned(),
            client: two.clone(),
            shards: 1,
        },
        Placement {
            label: "2 cores, 2 shards",
            broker: "0-1".to_owned(),
            client: two,
            shards: 2,
        },
    ]
}

/// The part: `rounds` rounds of both placements, `records` records per run.
pub(crate) fn cores_part(weir: &Path, load: &Path, records: u64, rounds: usize) -> Result<String> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if cores < 2 {
        bail!("--only cores needs at least 2 CPUs (this process may use {cores})");
    }
    let ticks = clock_ticks()?;
    let placements = placements(cores);
    let mut runs: Vec<Vec<(Run, Run)>> = vec![Vec::new(); placements.len()];
    for round in 0..rounds.max(1) {
        eprintln!("==> cores round {}", round + 1);
        let mut order: Vec<usize> = (0..placements.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for index in order {
            let placement = &placements[index];
            let measured = one_run(weir, load, placement, records, ticks)?;
            eprintln!(
                "  {}: produce {:.0} records/s ({:.3} CPU s/M, {:.2} cores busy, state \
                 machine {:.3} s/M), consume {:.0} records/s ({:.3} CPU s/M, {:.2} cores \
                 busy, state machine {:.3} s/M)",
                placement.label,
                measured.0.rate,
                measured.0.cpu_per_million,
                measured.0.cores_busy,
                measured.0.state_machine_per_million,
                measured.1.rate,
                measured.1.cpu_per_million,
                measured.1.cores_busy,
                measured.1.state_machine_per_million
            );
            runs[index].push(measured);
        }
    }
    let mut text = render(&placements, &runs, records, rounds, cores);
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.push_str(&format!(
        "\n`cat /proc/loadavg` at the end: `{}`\n",
        load.trim()
    ));
    Ok(text)
}

/// A fresh broker on `placement.broker`; produce then consume `records` records.
fn one_run(
    weir: &Path,
    load: &Path,
    placement: &Placement,
    records: u64,
    ticks: f64,
) -> Result<(Run, Run)> {
    let dir = std::env::temp_dir().join(format!(
        "weir-bench-cores-{}-{}-{}",
        std::process::id(),
        placement.broker,
        placement.shards
    ));
    let _ = fs::remove_dir_all(&dir);
    let bootstrap = format!("127.0.0.1:{}", free_port()?);
    let metrics = format!("127.0.0.1:{}", free_port()?);
    let mut broker = Command::new("taskset")
        .args(["-c", &placement.broker])
        .arg(weir)
        .args(["serve", "--listen", &bootstrap, "--gateway", "off"])
        .args(["--metrics", &metrics])
        .args(["--num-shards", &placement.shards.to_string()])
        .args([
            "--rest-proxy",
            "off",
            "--schema-registry",
            "off",
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting weir under taskset (util-linux)")?;
    let result = (|| {
        wait_ready(&mut broker)?;
        let created = Command::new(weir)
            .args(["topic", "create", "cores", "--partitions", PARTITIONS])
            .args(["--bootstrap-server", &bootstrap])
            .output()?;
        if !created.status.success() {
            bail!(
                "weir topic create failed: {}",
                String::from_utf8_lossy(&created.stderr)
            );
        }
        let count = records.to_string();
        let produce = ["produce", &bootstrap, "cores", &count, RECORD_BYTES, "1"];
        let broker_id = (broker.id(), metrics.as_str());
        let produce = measure(load, placement, broker_id, &produce, records, ticks)?;
        let consume = ["consume", &bootstrap, "cores", &count, PARTITIONS];
        let consume = measure(load, placement, broker_id, &consume, records, ticks)?;
        Ok((produce, consume))
    })();
    let _ = broker.kill();
    let _ = broker.wait();
    let _ = fs::remove_dir_all(&dir);
    result
}

/// One rdkafka_load run on `placement.client`, with the broker's CPU time and its state
/// machine's busy time (`broker`: pid, /metrics address) around it.
fn measure(
    load: &Path,
    placement: &Placement,
    (broker, metrics): (u32, &str),
    args: &[&str],
    records: u64,
    ticks: f64,
) -> Result<Run> {
    let busy_before = state_machine_busy(metrics)?;
    let before = cpu_seconds(broker, ticks)?;
    let started = Instant::now();
    let output = Command::new("taskset")
        .args(["-c", &placement.client])
        .arg(load)
        .args(args)
        .stderr(Stdio::inherit())
        .output()?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(broker, ticks)? - before;
    let busy = state_machine_busy(metrics)? - busy_before;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    if !output.status.success() {
        bail!("rdkafka_load {} failed: {stdout}", args.join(" "));
    }
    let rate = records_per_sec(&stdout).with_context(|| format!("no records/sec in {stdout:?}"))?;
    Ok(Run {
        rate,
        cpu_per_million: cpu * 1e6 / records.max(1) as f64,
        cores_busy: cpu / wall.max(f64::MIN_POSITIVE),
        state_machine_per_million: busy * 1e6 / records.max(1) as f64,
    })
}

/// `weir_state_machine_busy_seconds_total` from the broker's /metrics.
fn state_machine_busy(metrics: &str) -> Result<f64> {
    let name = "weir_state_machine_busy_seconds_total ";
    let text = scrape(metrics)?;
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .with_context(|| format!("no {name}in the broker's /metrics"))
}

fn render(
    placements: &[Placement],
    runs: &[Vec<(Run, Run)>],
    records: u64,
    rounds: usize,
    cores: usize,
) -> String {
    let mut text = format!(
        "{CORES_HEADING}\n\n\
         `cargo xtask bench --only cores --repeat {rounds}` ({cores} CPUs here): a fresh \
         broker (fsync durability) per run under `taskset -c CPUS` (its runtime takes one \
         worker thread per CPU it may use, `num.network.threads`' default); librdkafka \
         (rdkafka_load) produces {records} records of 100 B with acks=1 into 2 partitions, \
         then consumes them from offset 0. Rounds alternate the placements. CPU s/M: the \
         broker's CPU seconds (user + system, /proc/PID/stat) per million records, the \
         work per record; cores busy: the broker's CPU seconds per wall second; state \
         machine s/M: seconds its shards' tasks were busy, summed \
         (`weir_state_machine_busy_seconds_total`), per million records: flat as shards \
         are added when sharding adds no work, and with `N` shards one broker takes about \
         `N` million records/s over it (`num.shards`, docs/sharding.md).\n\n\
         | placement (broker / load generator CPUs) | produce records/s | median | CPU s/M | \
         cores busy | state machine s/M | consume records/s | median | CPU s/M | cores busy | \
         state machine s/M |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n"
    );
    for (placement, runs) in placements.iter().zip(runs) {
        let column = |pick: fn(&(Run, Run)) -> Run| {
            let picked: Vec<Run> = runs.iter().map(pick).collect();
            let rates: Vec<String> = picked.iter().map(|r| format!("{:.0}", r.rate)).collect();
            let middle = |field: fn(&Run) -> f64| {
                median(&mut picked.iter().map(field).collect::<Vec<f64>>())
            };
            format!(
                " {} | {:.0} | {:.3} | {:.2} | {:.4} |",
                rates.join(", "),
                middle(|r| r.rate),
                middle(|r| r.cpu_per_million),
                middle(|r| r.cores_busy),
                middle(|r| r.state_machine_per_million)
            )
        };
        text.push_str(&format!(
            "| {} ({} / {}) |{}{}\n",
            placement.label,
            placement.broker,
            placement.client,
            column(|run| run.0),
            column(|run| run.1)
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the load generator gets the CPUs the broker does not, where there are any, and
    // the sharded placement differs from the two-core one in its shards only.
    #[test]
    fn placements_keep_the_load_generator_off_the_broker_where_possible() {
        let two = placements(2);
        assert_eq!((two[0].broker.as_str(), two[0].client.as_str()), ("0", "1"));
        assert_eq!(
            (two[1].broker.as_str(), two[1].client.as_str()),
            ("0-1", "0-1")
        );
        let eight = placements(8);
        assert_eq!(
            (eight[0].broker.as_str(), eight[0].client.as_str()),
            ("0", "1-7")
        );
        assert_eq!(
            (eight[1].broker.as_str(), eight[1].client.as_str()),
            ("0-1", "2-7")
        );
        let three = placements(3);
        assert_eq!(three[0].client, "1-2");
        assert_eq!(three[1].client, "2");
        // The sharded run has the two-core run's CPUs, so the two differ in shards only.
        for set in [&two, &eight, &three] {
            assert_eq!((set[1].shards, set[2].shards), (1, 2));
            assert_eq!(
                (&set[1].broker, &set[1].client),
                (&set[2].broker, &set[2].client)
            );
        }
    }
}
