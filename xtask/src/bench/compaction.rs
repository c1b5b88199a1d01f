//! `cargo xtask bench --only compaction`: what log compaction costs and how fast it cleans.
//!
//! Rounds alternate two brokers started the same way except `log.cleaner.enable`, each with
//! a fresh data directory and one compacted topic (1 MiB segments, `min.cleanable.dirty.ratio`
//! 0.01, `log.cleaner.backoff.ms` 200): librdkafka produces the same keyed load (100-byte
//! values over 1,000 keys, acks=1) into both, so the produce ratio is the cost of a cleaner
//! running beside the writes; the cleaner-on round's counters must have moved by the end of
//! its produce (else the round did not run with compaction and the bench fails). Then the
//! broker that ran without its cleaner is restarted on the same data with the cleaner on,
//! and its own counters (`weir_log_cleaner_bytes_read_total`,
//! `weir_log_cleaner_bytes_cleaned_total`, `weir_log_cleaner_busy_seconds_total` on
//! /metrics) are sampled every [`POLL`] until they stop moving. The cleaner's throughput is
//! the bytes its jobs read over the seconds its jobs ran, both counted by the broker (the
//! jobs' own time, not a polling window); the wall time from the broker's readiness to the
//! counters' last movement is reported beside it as an upper bound, with the polling
//! resolution.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::baseline::{median, records_per_sec};
use super::free_port;

/// Heading of this part in docs/benchmarks.md.
pub(crate) const COMPACTION_HEADING: &str =
    "## Compaction: produce with the cleaner running, and the cleaner's throughput";

/// Records per produce run, and the keys they cycle over.
const RECORDS: &str = "1000000";
const KEYS: &str = "1000";
/// The cleaner counts as done once its counters stood still this long.
const QUIET: Duration = Duration::from_secs(3);
/// Longest wait for the cleaner to finish after the produce.
const CLEAN_WAIT: Duration = Duration::from_secs(120);
/// Interval between /metrics samples while the cleaner runs.
const POLL: Duration = Duration::from_millis(10);

/// The cleaner's counters on /metrics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Counters {
    /// `weir_log_cleaner_bytes_read_total`.
    read: u64,
    /// `weir_log_cleaner_bytes_cleaned_total`.
    cleaned: u64,
    /// `weir_log_cleaner_busy_seconds_total`.
    busy_seconds: f64,
}

/// One run of the cleaner over a log it finds all dirty.
struct Cleaning {
    counters: Counters,
    /// Wall seconds from the broker's readiness to the last movement of the counters
    /// (within [`POLL`] plus a scrape): an upper bound of the cleaning time.
    window_seconds: f64,
}

/// What one round measured.
struct Round {
    /// Produce records/sec.
    produce: f64,
    /// The cleaner-on round: its counters at the end of the produce.
    during: Option<Counters>,
    /// The cleaner-off round: the cleaner's run over its data after a restart.
    cleaned: Option<Cleaning>,
}

/// The part: `rounds` alternating rounds without and with the cleaner.
pub(crate) fn compaction_part(weir: &Path, load: &Path, rounds: usize) -> Result<String> {
    let mut off = Vec::new();
    let mut on = Vec::new();
    let mut cleaning = Vec::new();
    let mut during = Vec::new();
    for index in 0..rounds.max(1) {
        eprintln!("==> compaction round {}", index + 1);
        let without = round(weir, load, false)?;
        off.push(without.produce);
        cleaning.extend(without.cleaned);
        let with = round(weir, load, true)?;
        on.push(with.produce);
        during.extend(with.during);
    }
    let show = |runs: &[f64]| {
        runs.iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ratio = median(&mut on.clone()) / median(&mut off.clone()).max(1.0);
    let mut text = format!(
        "{COMPACTION_HEADING}\n\n\
         `cargo xtask bench --only compaction`: one broker per round, fresh data directory, a \
         compacted topic (segment.bytes 1 MiB, min.cleanable.dirty.ratio 0.01, \
         log.cleaner.backoff.ms 200); librdkafka produces {RECORDS} records of 100 bytes over \
         {KEYS} keys with acks=1. Rounds alternate log.cleaner.enable=false and true.\n\n\
         | measurement | cleaner off | cleaner on | median ratio on / off |\n\
         |---|---|---|---|\n\
         | produce records/s | {} | {} | {ratio:.2} |\n\n\
         The cleaner ran during every cleaner-on produce (its counters at the end of the \
         produce; the bench fails if they did not move): {}.\n",
        show(&off),
        show(&on),
        during
            .iter()
            .map(|c| format!(
                "{:.1} MB read, {:.1} MB removed, {:.2} s of jobs",
                c.read as f64 / 1_048_576.0,
                c.cleaned as f64 / 1_048_576.0,
                c.busy_seconds
            ))
            .collect::<Vec<_>>()
            .join("; "),
    );
    if cleaning.is_empty() {
        text.push_str("\nThe cleaner did not run within the wait (no counters moved).\n");
        return Ok(text);
    }
    let resolution_ms = POLL.as_millis();
    text.push_str(&format!(
        "\nCleaner run: the cleaner-off round's broker restarted on its data with the cleaner \
         on. Job seconds: `weir_log_cleaner_busy_seconds_total`, the time the cleaner's jobs \
         ran as the broker clocks them; MB/s = MB read / job seconds. Wall seconds: from the \
         broker's readiness to the last movement of the counters, sampled every \
         {resolution_ms} ms: an upper bound of the cleaning time (it also holds recovery's \
         tail and the first cleaner backoff, up to 200 ms; a log cleaned by one job moves \
         the counters once, so there is no first-to-last window to time).\n\n\
         | cleaner run | MB read | MB removed | job seconds | MB/s read | wall seconds |\n\
         |---|---|---|---|---|---|\n",
    ));
    for run in &cleaning {
        let mb = |bytes: u64| bytes as f64 / 1_048_576.0;
        let c = run.counters;
        let rate = if c.busy_seconds > 0.0 {
            format!("{:.1}", mb(c.read) / c.busy_seconds)
        } else {
            "not measured (busy seconds 0)".to_string()
        };
        text.push_str(&format!(
            "| | {:.1} | {:.1} | {:.3} | {rate} | {:.2} |\n",
            mb(c.read),
            mb(c.cleaned),
            c.busy_seconds,
            run.window_seconds,
        ));
    }
    Ok(text)
}

fn round(weir: &Path, load: &Path, cleaner: bool) -> Result<Round> {
    let label = if cleaner { "on" } else { "off" };
    let data_dir =
        std::env::temp_dir().join(format!("weir-compact-{}-{label}", std::process::id()));
    let _ = fs::remove_dir_all(&data_dir);
    fs::create_dir_all(&data_dir)?;
    let config = data_dir.with_extension("toml");
    fs::write(
        &config,
        format!("\"log.cleaner.enable\" = {cleaner}\n\"log.cleaner.backoff.ms\" = 200\n"),
    )?;
    let bootstrap = format!("127.0.0.1:{}", free_port()?);
    let metrics = format!("127.0.0.1:{}", free_port()?);
    let mut broker = start(weir, &bootstrap, &metrics, &data_dir, &config)?;
    let result = (|| {
        let created = Command::new(weir)
            .args(["topic", "create", "compacted", "--partitions", "1"])
            .args(["--config", "cleanup.policy=compact"])
            .args(["--config", "segment.bytes=1048576"])
            .args(["--config", "min.cleanable.dirty.ratio=0.01"])
            .args(["--bootstrap-server", &bootstrap])
            .output()?;
        if !created.status.success() {
            bail!(
                "topic create failed: {}",
                String::from_utf8_lossy(&created.stderr)
            );
        }
        let output = Command::new(load)
            .args([
                "produce",
                &bootstrap,
                "compacted",
                RECORDS,
                "100",
                "1",
                "0",
                KEYS,
            ])
            .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        if !output.status.success() {
            bail!("cleaner {label}: rdkafka_load failed: {stdout}");
        }
        let produce =
            records_per_sec(&stdout).with_context(|| format!("no records/sec in {stdout:?}"))?;
        eprintln!("  cleaner {label}: {produce:.0} records/s");
        // The counters at the end of the produce: the cleaner-on round must have cleaned
        // while it wrote, or it measured nothing about compaction.
        let during = counters(&metrics)?;
        if cleaner && during.read == 0 {
            bail!("cleaner on: the cleaner read nothing during the produce ({during:?})");
        }
        if !cleaner && during != Counters::default() {
            bail!("cleaner off: the cleaner's counters moved ({during:?})");
        }
        Ok((produce, cleaner.then_some(during)))
    })();
    let _ = broker.kill();
    let _ = broker.wait();
    // The cleaner's throughput: the same data, now with the cleaner on from the start.
    let cleaned = match result {
        Ok(_) if !cleaner => {
            fs::write(&config, "\"log.cleaner.backoff.ms\" = 200\n")?;
            let mut broker = start(weir, &bootstrap, &metrics, &data_dir, &config)?;
            let cleaned = wait_for_cleaner(&metrics);
            let _ = broker.kill();
            let _ = broker.wait();
            cleaned?
        }
        _ => None,
    };
    let _ = fs::remove_dir_all(&data_dir);
    let _ = fs::remove_file(&config);
    let (produce, during) = result?;
    Ok(Round {
        produce,
        during,
        cleaned,
    })
}

/// Samples the cleaner's counters every [`POLL`] until they stood still for [`QUIET`]
/// (the call is made when the broker is ready; the counters start at zero with it).
fn wait_for_cleaner(metrics: &str) -> Result<Option<Cleaning>> {
    let started = Instant::now();
    let mut first_move: Option<Instant> = None;
    let mut last_move = Instant::now();
    let mut last = Counters::default();
    while started.elapsed() < CLEAN_WAIT {
        std::thread::sleep(POLL);
        let now = counters(metrics)?;
        if now != last {
            // The counters start at zero with the process: the first movement is the
            // first job's result.
            first_move.get_or_insert_with(Instant::now);
            last = now;
            last_move = Instant::now();
        } else if last_move.elapsed() >= QUIET && first_move.is_some() {
            break;
        }
    }
    if first_move.is_none() {
        return Ok(None);
    }
    Ok(Some(Cleaning {
        counters: last,
        window_seconds: last_move.saturating_duration_since(started).as_secs_f64(),
    }))
}

/// The cleaner's counters from the broker's /metrics (0 for one it does not export).
fn counters(metrics: &str) -> Result<Counters> {
    let text = scrape(metrics)?;
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' '))
            })
            .and_then(|line| line.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok(Counters {
        read: value("weir_log_cleaner_bytes_read_total") as u64,
        cleaned: value("weir_log_cleaner_bytes_cleaned_total") as u64,
        busy_seconds: value("weir_log_cleaner_busy_seconds_total"),
    })
}

/// GET /metrics over a plain socket (one request, the server closes after answering).
pub(crate) fn scrape(addr: &str) -> Result<String> {
    let mut stream = TcpStream::connect(addr).context("connecting to /metrics")?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}

fn start(
    weir: &Path,
    bootstrap: &str,
    metrics: &str,
    data_dir: &Path,
    config: &Path,
) -> Result<Child> {
    let mut child = Command::new(weir)
        .args([
            "serve",
            "--listen",
            bootstrap,
            "--metrics",
            metrics,
            "--data-dir",
        ])
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting weir")?;
    super::wait_ready(&mut child)?;
    Ok(child)
}
