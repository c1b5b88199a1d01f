//! `cargo xtask bench --only baseline --baseline REV`: the same librdkafka load against the
//! current broker and against the broker of an earlier commit, in one run, alternating
//! (baseline, current, baseline, current, ...), so the machine's noise falls on both alike.
//! A refactoring lands only if the current broker keeps the baseline's throughput: the
//! part reports each run and the median ratio current / baseline per measurement.
//!
//! The baseline is built from a detached worktree of `REV` under target/bench-baseline
//! (its own target directory, so the two builds never share artifacts).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::{free_port, start_broker};

/// Heading of this part in docs/benchmarks.md.
pub(crate) const BASELINE_HEADING: &str =
    "## Before/after: the same load against a baseline commit";

/// One measurement: what rdkafka_load is asked, and how its answer reads.
struct Measurement {
    name: &'static str,
    args: fn(&str) -> Vec<String>,
}

const MEASUREMENTS: &[Measurement] = &[
    Measurement {
        name: "produce acks=1",
        args: |bootstrap| load_args(&["produce", bootstrap, "bench", "1000000", "100", "1"]),
    },
    Measurement {
        name: "produce acks=all",
        args: |bootstrap| load_args(&["produce", bootstrap, "bench", "1000000", "100", "all"]),
    },
    Measurement {
        name: "consume",
        args: |bootstrap| load_args(&["consume", bootstrap, "bench", "2000000", "2"]),
    },
];

fn load_args(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_string()).collect()
}

/// Builds `rev`'s release broker in a worktree of its own and returns the binary.
fn build_baseline(root: &Path, rev: &str) -> Result<PathBuf> {
    let dir = root.join("target/bench-baseline");
    let tree = dir.join("tree");
    if tree.exists() {
        let _ = Command::new("git")
            .args(["worktree", "remove", "--force"])
            .arg(&tree)
            .current_dir(root)
            .status();
        let _ = fs::remove_dir_all(&tree);
    }
    fs::create_dir_all(&dir)?;
    let status = Command::new("git")
        .args(["worktree", "add", "--detach"])
        .arg(&tree)
        .arg(rev)
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("git worktree add {rev} failed");
    }
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "weir"])
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .current_dir(&tree)
        .status()?;
    let _ = Command::new("git")
        .args(["worktree", "remove", "--force"])
        .arg(&tree)
        .current_dir(root)
        .status();
    if !status.success() {
        bail!("release build of {rev} failed");
    }
    Ok(dir.join("target/release/weir"))
}

/// records/sec from an rdkafka_load line (`... 2543917.6 records/sec ...`).
pub(super) fn records_per_sec(output: &str) -> Option<f64> {
    let words: Vec<&str> = output.split_whitespace().collect();
    let at = words.iter().position(|w| w.starts_with("records/sec"))?;
    words.get(at.checked_sub(1)?)?.parse().ok()
}

/// One round against `weir`: a fresh broker and data directory, a 2-partition topic, then
/// every measurement in order. Returns records/sec per measurement.
fn round(weir: &Path, load: &Path, label: &str) -> Result<Vec<f64>> {
    let data_dir = std::env::temp_dir().join(format!("weir-ab-{}-{label}", std::process::id()));
    let _ = fs::remove_dir_all(&data_dir);
    let bootstrap = format!("127.0.0.1:{}", free_port()?);
    let mut broker = start_broker(weir, &bootstrap, &data_dir)?;
    let result = (|| {
        let created = Command::new(weir)
            .args(["topic", "create", "bench", "--partitions", "2"])
            .args(["--bootstrap-server", &bootstrap])
            .output()?;
        if !created.status.success() {
            bail!(
                "topic create failed: {}",
                String::from_utf8_lossy(&created.stderr)
            );
        }
        let mut rates = Vec::new();
        for measurement in MEASUREMENTS {
            let output = Command::new(load)
                .args((measurement.args)(&bootstrap))
                .output()?;
            let stdout = String::from_utf8_lossy(&output.stdout).to_string();
            if !output.status.success() {
                bail!(
                    "{label} {}: rdkafka_load failed: {stdout}",
                    measurement.name
                );
            }
            let rate = records_per_sec(&stdout)
                .with_context(|| format!("no records/sec in {stdout:?}"))?;
            eprintln!("  {label} {}: {rate:.0} records/s", measurement.name);
            rates.push(rate);
        }
        Ok(rates)
    })();
    let _ = broker.kill();
    let _ = broker.wait();
    let _ = fs::remove_dir_all(&data_dir);
    result
}

pub(super) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The part: `rounds` alternating rounds of baseline and current, then the medians.
pub(crate) fn baseline_part(
    root: &Path,
    weir: &Path,
    load: &Path,
    rev: &str,
    rounds: usize,
) -> Result<String> {
    let resolved = Command::new("git")
        .args(["rev-parse", "--short", rev])
        .current_dir(root)
        .output()?;
    let short = String::from_utf8_lossy(&resolved.stdout).trim().to_string();
    let baseline = build_baseline(root, rev)?;
    let mut base: Vec<Vec<f64>> = vec![Vec::new(); MEASUREMENTS.len()];
    let mut current: Vec<Vec<f64>> = vec![Vec::new(); MEASUREMENTS.len()];
    for round_index in 0..rounds.max(1) {
        eprintln!("==> baseline round {}", round_index + 1);
        for (i, rate) in round(&baseline, load, "baseline")?.into_iter().enumerate() {
            base[i].push(rate);
        }
        for (i, rate) in round(weir, load, "current")?.into_iter().enumerate() {
            current[i].push(rate);
        }
    }
    let mut text = format!(
        "{BASELINE_HEADING}\n\n\
         `cargo xtask bench --only baseline --baseline {rev}` (baseline {short}): one broker \
         each, fresh data directory, a 2-partition topic, librdkafka producing 1 M records of \
         100 bytes with acks=1 then acks=all and consuming 2 M; {rounds} rounds, baseline \
         and current alternating. records/s per round, then the median ratio.\n\n\
         | measurement | baseline runs | current runs | median ratio current / baseline |\n\
         |---|---|---|---|\n"
    );
    for (i, measurement) in MEASUREMENTS.iter().enumerate() {
        let show = |runs: &[f64]| {
            runs.iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (shown_base, shown_current) = (show(&base[i]), show(&current[i]));
        let ratio = median(&mut current[i]) / median(&mut base[i]).max(1.0);
        text.push_str(&format!(
            "| {} | {shown_base} | {shown_current} | {ratio:.2} |\n",
            measurement.name
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the rate is read from rdkafka_load's own line format, produce and consume.
    #[test]
    fn reads_rates_and_medians() {
        let produce = "librdkafka 2.0.2: 2000000 records acked (acks=1), 2543917.6 \
                       records/sec (242.61 MB/sec), 5.643 ms 50th";
        assert_eq!(records_per_sec(produce), Some(2_543_917.6));
        let consume = "librdkafka 2.0.2: 5000000 records consumed, 2900881.5 records/sec.";
        assert_eq!(records_per_sec(consume), Some(2_900_881.5));
        assert_eq!(records_per_sec("no rate here"), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
