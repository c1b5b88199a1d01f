//! `cargo xtask bench --peer tansu`: the same librdkafka workloads against Weir (release,
//! durable: fsync before the ack, its default) and a peer broker (Tansu with its in-memory
//! engine, not durable), in one run, alternating Weir, peer, Weir, peer, ... so that the
//! shared machine's drifting load falls on both. Prints and writes the per-workload medians,
//! the ratio Weir / peer and whether issue 19's goals are met.
//!
//! The peer is built once from its published crate (`cargo install tansu`) into
//! target/peer/ and reused; none of its code is in this repository. The broker's own CPU
//! time comes from /proc/PID/stat (utime + stime) read before and after each workload, so
//! the load generator's share is not counted. The disk's own fdatasync latency is measured
//! in the same run (1 KiB appended + fdatasync, in the directory the data directories live
//! in), which is what acks=all with fsync before the ack is held to.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::baseline::{median, records_per_sec};
use super::{free_port, wait_ready};

/// Heading of this part in docs/benchmarks.md.
pub(crate) const PEER_HEADING: &str = "## Side by side: durable Weir against Tansu in memory";

/// The peers `--peer` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Peer {
    /// Tansu (tansu-io/tansu) with its in-memory storage engine (`memory://`).
    Tansu,
}

/// The published Tansu release the comparison is made with; `dynostore` is the feature
/// that holds its `memory://` engine (the S3 and memory object stores).
const TANSU_VERSION: &str = "0.6.0";
const TANSU_FEATURES: &str = "dynostore";

/// What a run measures, beyond the rounds.
pub(crate) struct PeerOptions {
    /// Alternating rounds (each: one Weir round, one peer round).
    pub(crate) rounds: usize,
    /// Records of 100 bytes per produce run (1 KiB runs send a quarter of them).
    pub(crate) records: u64,
    /// Partition counts of the many-partition workloads (empty: skipped).
    pub(crate) partitions: Vec<u32>,
}

/// Samples of the disk's fdatasync per round.
const FSYNC_SAMPLES: usize = 2_000;
/// The fixed rate of the latency workload, records/s, and how many records it sends.
const LATENCY_RATE: u64 = 5_000;
const LATENCY_RECORDS: u64 = 25_000;

/// Which way a measurement is better, and the goal issue 19 sets for Weir / peer.
#[derive(Clone, Copy)]
enum Goal {
    /// Higher is better; Weir / peer must be at least this.
    AtLeast(f64),
    /// Lower is better; Weir / peer must be at most this.
    AtMost(f64),
    /// Lower is better; no ratio goal against the peer (the latency goal is the disk's).
    Lower,
}

/// One measured value of one round.
struct Sample {
    key: String,
    unit: &'static str,
    goal: Goal,
    value: f64,
}

/// The two brokers' samples and the disk's, all rounds.
#[derive(Default)]
struct Results {
    /// Keys in the order they were first measured.
    order: Vec<(String, &'static str, Goal)>,
    weir: BTreeMap<String, Vec<f64>>,
    peer: BTreeMap<String, Vec<f64>>,
    fsync_us: Vec<f64>,
}

impl Results {
    fn add(&mut self, is_weir: bool, samples: Vec<Sample>) {
        for sample in samples {
            if !self.order.iter().any(|(key, _, _)| *key == sample.key) {
                self.order
                    .push((sample.key.clone(), sample.unit, sample.goal));
            }
            let side = if is_weir {
                &mut self.weir
            } else {
                &mut self.peer
            };
            side.entry(sample.key).or_default().push(sample.value);
        }
    }
}

/// The part: installs the peer (cached), runs the rounds, returns the text.
pub(crate) fn peer_part(
    root: &Path,
    weir: &Path,
    load: &Path,
    peer: Peer,
    options: &PeerOptions,
) -> Result<String> {
    let Peer::Tansu = peer;
    let tansu = install_tansu(root)?;
    let librdkafka = newer_librdkafka(root)?;
    let clock_ticks = clock_ticks()?;
    let mut results = Results::default();
    let rounds = options.rounds.max(1);
    let mut commands = Vec::new();
    for round in 1..=rounds {
        eprintln!("==> peer bench round {round}/{rounds}: disk fdatasync");
        results.fsync_us.extend(fdatasync_samples(FSYNC_SAMPLES)?);
        for is_weir in [true, false] {
            let name = if is_weir { "weir" } else { "tansu" };
            eprintln!("==> peer bench round {round}/{rounds}: {name}");
            let data_dir =
                std::env::temp_dir().join(format!("weir-peer-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&data_dir);
            fs::create_dir_all(&data_dir)?;
            let port = free_port()?;
            let bootstrap = format!("127.0.0.1:{port}");
            let mut broker = if is_weir {
                start_weir(weir, &bootstrap, &data_dir)?
            } else {
                start_tansu(&tansu, port)?
            };
            let pid = broker.id();
            let measured = (|| {
                let mut round_commands = Vec::new();
                let samples = round_samples(
                    &Load(load, &librdkafka),
                    &bootstrap,
                    pid,
                    clock_ticks,
                    options,
                    &mut round_commands,
                )?;
                if round == 1 && is_weir {
                    commands = round_commands;
                }
                Ok::<_, anyhow::Error>(samples)
            })();
            let _ = broker.kill();
            let _ = broker.wait();
            let _ = fs::remove_dir_all(&data_dir);
            let _ = fs::remove_file(data_dir.with_extension("toml"));
            results.add(
                is_weir,
                measured.with_context(|| format!("{name} round {round}"))?,
            );
        }
    }
    let loadavg = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    Ok(render(&results, options, rounds, &commands, loadavg.trim()))
}

/// `target/peer/tansu-VERSION/bin/tansu`, built by `cargo install` the first time.
fn install_tansu(root: &Path) -> Result<PathBuf> {
    let dir = root.join(format!("target/peer/tansu-{TANSU_VERSION}"));
    let binary = dir.join("bin/tansu");
    if binary.exists() {
        return Ok(binary);
    }
    eprintln!("==> cargo install tansu {TANSU_VERSION} (once; cached in {dir:?})");
    let build = root.join("target/peer/build");
    let status = Command::new(env!("CARGO"))
        .args(["install", "tansu", "--locked", "--no-default-features"])
        .args(["--version", TANSU_VERSION, "--features", TANSU_FEATURES])
        .arg("--root")
        .arg(&dir)
        .env("CARGO_TARGET_DIR", &build)
        .status()
        .context("running cargo install tansu")?;
    if !status.success() || !binary.exists() {
        bail!("cargo install tansu {TANSU_VERSION} failed ({status})");
    }
    // The installed binary is all that is needed; its build tree is gigabytes.
    let _ = fs::remove_dir_all(&build);
    Ok(binary)
}

/// Weir as shipped (durability `fsync`: every acknowledged batch is fdatasync'ed first),
/// except that a new group's first rebalance is not held for 3 s, so the group-join time
/// measures the protocol rather than Kafka's default delay (Tansu has no such delay).
fn start_weir(weir: &Path, bootstrap: &str, data_dir: &Path) -> Result<Child> {
    let config = data_dir.with_extension("toml");
    fs::write(&config, "\"group.initial.rebalance.delay.ms\" = 0\n")?;
    let mut command = Command::new(weir);
    command
        .args(["serve", "--listen", bootstrap, "--data-dir"])
        .arg(data_dir.join("data"))
        .arg("--config")
        .arg(&config);
    start_broker_command(command)
}

/// Starts a `weir serve` command and waits for its "listening" line.
fn start_broker_command(mut command: Command) -> Result<Child> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting weir")?;
    wait_ready(&mut child)?;
    Ok(child)
}

/// Tansu's broker with the `memory://` storage engine on 127.0.0.1:PORT.
fn start_tansu(tansu: &Path, port: u16) -> Result<Child> {
    let url = format!("tcp://127.0.0.1:{port}");
    let mut child = Command::new(tansu)
        .args(["broker", "--storage-engine", "memory://tansu/"])
        .args(["--listener-url", &url, "--advertised-listener-url", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting tansu")?;
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("tansu did not listen on port {port} within 30 s");
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!("tansu exited at start: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child)
}

/// rdkafka_load and the directory its librdkafka.so.1 is loaded from.
struct Load<'a>(&'a Path, &'a Path);

/// A directory holding a librdkafka.so.1 new enough for Tansu: Debian's 2.0.2 cannot parse
/// Tansu 0.6.0's ApiVersions v3 answer ("Protocol read buffer underflow for ApiVersion v3
/// at 267/272"), librdkafka 2.16 can. The one confluent-kafka's wheel bundles (installed
/// by `cargo xtask install-deps` for the compat tests) is linked here; rdkafka_load,
/// compiled against 2.0.2's header, runs on it unchanged (librdkafka keeps its ABI).
/// Both brokers get the same client.
fn newer_librdkafka(root: &Path) -> Result<PathBuf> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import confluent_kafka, os; \
             print(os.path.dirname(confluent_kafka.__file__) + '.libs')",
        ])
        .output()
        .context("python3 (confluent-kafka)")?;
    let libs = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if !output.status.success() {
        bail!("confluent-kafka is not installed (cargo xtask install-deps installs it)");
    }
    let library = fs::read_dir(&libs)
        .with_context(|| format!("reading {libs:?}"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("librdkafka"))
        })
        .with_context(|| format!("no librdkafka in {libs:?}"))?;
    let dir = root.join("target/peer/librdkafka");
    fs::create_dir_all(&dir)?;
    let link = dir.join("librdkafka.so.1");
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(&library, &link)?;
    Ok(dir)
}

/// Clock ticks per second of /proc/PID/stat's utime and stime.
pub(super) fn clock_ticks() -> Result<f64> {
    let output = Command::new("getconf").arg("CLK_TCK").output()?;
    let ticks: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .context("getconf CLK_TCK")?;
    Ok(ticks)
}

/// utime + stime of process `pid` (all its threads), in seconds.
pub(super) fn cpu_seconds(pid: u32, clock_ticks: f64) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    cpu_seconds_of(&stat, clock_ticks).with_context(|| format!("unreadable /proc/{pid}/stat"))
}

/// Fields 14 and 15 of a /proc/PID/stat line (counted after the `(comm)`, which may hold
/// spaces).
fn cpu_seconds_of(stat: &str, clock_ticks: f64) -> Option<f64> {
    stat_seconds(stat, 11, clock_ticks)
}

/// cutime + cstime of this process: the CPU time of every child it has waited for. A
/// child's CPU time is the difference around its wait (a process's own stat is gone once
/// it was reaped).
pub(super) fn children_cpu_seconds(clock_ticks: f64) -> Result<f64> {
    let stat = fs::read_to_string("/proc/self/stat")?;
    children_cpu_seconds_of(&stat, clock_ticks).context("unreadable /proc/self/stat")
}

/// Fields 16 and 17 of a /proc/PID/stat line.
fn children_cpu_seconds_of(stat: &str, clock_ticks: f64) -> Option<f64> {
    stat_seconds(stat, 13, clock_ticks)
}

/// The sum of two adjacent tick fields of a /proc/PID/stat line, `first` counted from the
/// field after the `(comm)`, in seconds.
fn stat_seconds(stat: &str, first: usize, clock_ticks: f64) -> Option<f64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let a: f64 = fields.get(first)?.parse().ok()?;
    let b: f64 = fields.get(first + 1)?.parse().ok()?;
    Some((a + b) / clock_ticks)
}

/// Runs rdkafka_load; fails with its output when it fails.
fn run_load(load: &Load, args: &[String], commands: &mut Vec<String>) -> Result<String> {
    let shown = format!("rdkafka_load {}", args.join(" "));
    eprintln!("  {shown}");
    commands.push(shown.clone());
    let output = Command::new(load.0)
        .args(args)
        .env("LD_LIBRARY_PATH", load.1)
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    if !output.status.success() {
        bail!(
            "`{shown}` failed ({}): {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    eprintln!("    {}", stdout.trim());
    Ok(stdout)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_string()).collect()
}

/// `X ms 50th, Y ms 99th, Z ms 99.9th` of an rdkafka_load produce line, in ms.
fn latencies_ms(output: &str) -> Option<[f64; 3]> {
    let words: Vec<&str> = output.split_whitespace().collect();
    let at = |label: &str| -> Option<f64> {
        let i = words
            .iter()
            .position(|w| w.trim_end_matches(',') == label)?;
        words.get(i.checked_sub(2)?)?.parse().ok()
    };
    Some([at("50th")?, at("99th")?, at("99.9th")?])
}

/// `created in X ms`, `acked (acks=all) in Y ms`, `Z ms in all` of an rdkafka_load spread
/// line, in ms.
fn spread_ms(output: &str) -> Option<[f64; 3]> {
    let words: Vec<&str> = output.split_whitespace().collect();
    let before = |pattern: &[&str]| -> Option<f64> {
        let i = words.windows(pattern.len()).position(|w| w == pattern)?;
        words.get(i.checked_sub(1)?)?.parse().ok()
    };
    let after_in = |label: &str| -> Option<f64> {
        let i = words.iter().position(|w| *w == label)?;
        words.get(i + 2)?.parse().ok()
    };
    Some([
        after_in("created")?,
        after_in("(acks=all)")?,
        before(&["ms", "in", "all,"])?,
    ])
}

/// `... X ms after subscribe()` of an rdkafka_load join line.
fn join_ms(output: &str) -> Option<f64> {
    let words: Vec<&str> = output.split_whitespace().collect();
    let i = words.iter().position(|w| w.starts_with("subscribe()"))?;
    words.get(i.checked_sub(3)?)?.parse().ok()
}

/// Every workload once against the broker at `bootstrap` (process `pid`).
fn round_samples(
    load: &Load,
    bootstrap: &str,
    pid: u32,
    clock_ticks: f64,
    options: &PeerOptions,
    commands: &mut Vec<String>,
) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for (topic, partitions) in [("bench", "1"), ("bench-1k", "1"), ("latency", "1")] {
        run_load(
            load,
            &strings(&["create", bootstrap, topic, partitions]),
            commands,
        )?;
    }
    let records = options.records.max(1000);
    let kib_records = (records / 4).max(1000);
    let throughput: [(&str, Vec<String>, u64); 4] = [
        (
            "produce 100 B acks=1",
            strings(&[
                "produce",
                bootstrap,
                "bench",
                &records.to_string(),
                "100",
                "1",
            ]),
            records,
        ),
        (
            "produce 100 B acks=all",
            strings(&[
                "produce",
                bootstrap,
                "bench",
                &records.to_string(),
                "100",
                "all",
            ]),
            records,
        ),
        (
            "produce 1 KiB acks=all",
            strings(&[
                "produce",
                bootstrap,
                "bench-1k",
                &kib_records.to_string(),
                "1024",
                "all",
            ]),
            kib_records,
        ),
        (
            "consume 100 B from the start",
            strings(&[
                "consume",
                bootstrap,
                "bench",
                &(2 * records).to_string(),
                "1",
            ]),
            2 * records,
        ),
    ];
    for (name, args, count) in throughput {
        let before = cpu_seconds(pid, clock_ticks)?;
        let output = run_load(load, &args, commands)?;
        let after = cpu_seconds(pid, clock_ticks)?;
        let rate = records_per_sec(&output).with_context(|| format!("no rate in {output:?}"))?;
        let goal = if name.starts_with("consume") {
            Goal::AtLeast(2.0)
        } else {
            Goal::AtLeast(1.5)
        };
        samples.push(Sample {
            key: format!("{name}: records/s"),
            unit: "",
            goal,
            value: rate,
        });
        samples.push(Sample {
            key: format!("{name}: broker CPU s per M records"),
            unit: " s",
            goal: Goal::AtMost(0.5),
            value: (after - before) * 1e6 / count as f64,
        });
    }
    let output = run_load(
        load,
        &strings(&[
            "produce",
            bootstrap,
            "latency",
            &LATENCY_RECORDS.to_string(),
            "100",
            "all",
            &LATENCY_RATE.to_string(),
        ]),
        commands,
    )?;
    let [p50, p99, p999] =
        latencies_ms(&output).with_context(|| format!("no latencies in {output:?}"))?;
    for (label, value) in [("p50", p50), ("p99", p99), ("p99.9", p999)] {
        samples.push(Sample {
            key: format!("acks=all at 5 k records/s: {label}"),
            unit: " ms",
            goal: Goal::Lower,
            value,
        });
    }
    let output = run_load(
        load,
        &strings(&["join", bootstrap, "bench", &format!("join-{pid}")]),
        commands,
    )?;
    samples.push(Sample {
        key: "consumer group: subscribe() to first assignment".into(),
        unit: " ms",
        goal: Goal::Lower,
        value: join_ms(&output).with_context(|| format!("no join time in {output:?}"))?,
    });
    for &partitions in &options.partitions {
        let topic = format!("spread-{partitions}");
        let output = run_load(
            load,
            &strings(&["spread", bootstrap, &topic, &partitions.to_string()]),
            commands,
        )?;
        let [create, produce, total] =
            spread_ms(&output).with_context(|| format!("no spread times in {output:?}"))?;
        for (label, value, goal) in [
            ("create the topic", create, Goal::Lower),
            ("one record to each, acked", produce, Goal::Lower),
            ("in all", total, Goal::AtMost(1.0)),
        ] {
            samples.push(Sample {
                key: format!("{partitions} partitions: {label}"),
                unit: " s",
                goal,
                value: value / 1000.0,
            });
        }
    }
    Ok(samples)
}

/// `samples` fdatasync latencies (µs) of appending 1 KiB to a file in the directory the
/// brokers' data directories are made in.
fn fdatasync_samples(samples: usize) -> Result<Vec<f64>> {
    let path = std::env::temp_dir().join(format!("weir-peer-fsync-{}", std::process::id()));
    let mut file = fs::File::create(&path)?;
    let block = [b'x'; 1024];
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        out.push(started.elapsed().as_secs_f64() * 1e6);
    }
    drop(file);
    let _ = fs::remove_file(&path);
    Ok(out)
}

/// The `p`-quantile (0..=1) of `values` (nearest rank below, as rdkafka_load reports).
fn quantile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return 0.0;
    }
    let i = (p * (values.len() - 1) as f64) as usize;
    values[i.min(values.len() - 1)]
}

fn show(values: &[f64], unit: &str) -> String {
    values
        .iter()
        .map(|v| format_value(*v, unit))
        .collect::<Vec<_>>()
        .join(", ")
}

fn format_value(value: f64, unit: &str) -> String {
    if unit.is_empty() {
        format!("{value:.0}")
    } else if value >= 100.0 {
        format!("{value:.0}{unit}")
    } else if value >= 1.0 {
        format!("{value:.2}{unit}")
    } else {
        format!("{value:.3}{unit}")
    }
}

fn render(
    results: &Results,
    options: &PeerOptions,
    rounds: usize,
    commands: &[String],
    loadavg: &str,
) -> String {
    let mut fsync = results.fsync_us.clone();
    let disk = [
        quantile(&mut fsync, 0.5) / 1000.0,
        quantile(&mut fsync, 0.99) / 1000.0,
        quantile(&mut fsync, 0.999) / 1000.0,
    ];
    let partitions = if options.partitions.is_empty() {
        "0".to_string()
    } else {
        options
            .partitions
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut text = format!(
        "{PEER_HEADING}\n\n\
         `cargo xtask bench --peer tansu --repeat {rounds} --records {} --peer-partitions \
         {partitions}`: Weir (release build, default durability `fsync`: every acknowledged \
         batch is fdatasync'ed before the ack) against Tansu {TANSU_VERSION} (`cargo install \
         tansu --features {TANSU_FEATURES}`, `tansu broker --storage-engine memory://tansu/`: \
         not durable), one broker each, fresh per round, {rounds} rounds alternating Weir / \
         Tansu. Load generator: bench/rdkafka_load.c on librdkafka 2.16 (confluent-kafka's; \
         Debian's 2.0.2 cannot parse Tansu 0.6.0's ApiVersions answer), one partition per topic, \
         client and broker on the same 2 cores, which other builds share (load average at \
         the end: `{loadavg}`). Weir's only non-default setting: \
         `group.initial.rebalance.delay.ms = 0` (Tansu holds no first rebalance). Broker CPU \
         = utime + stime of the broker process from /proc/PID/stat around each workload (the \
         load generator excluded). The peer's memory engine is one node, so it has no \
         failover: Weir's failover gap is in the failover part (`--only failover`).\n\n\
         Values are per round; ratio = median Weir / median Tansu (throughput: higher is \
         better for Weir; time, latency and CPU: lower is).\n\n\
         | workload | Weir | Tansu | Weir / Tansu | goal | met |\n\
         |---|---|---|---|---|---|\n",
        options.records,
    );
    let mut latency = BTreeMap::new();
    for (key, unit, goal) in &results.order {
        let mut weir = results.weir.get(key).cloned().unwrap_or_default();
        let mut peer = results.peer.get(key).cloned().unwrap_or_default();
        let (shown_weir, shown_peer) = (show(&weir, unit), show(&peer, unit));
        let (weir_median, peer_median) = (median(&mut weir), median(&mut peer));
        let ratio = if peer_median > 0.0 {
            weir_median / peer_median
        } else {
            f64::NAN
        };
        let (goal_text, met) = match goal {
            Goal::AtLeast(at_least) => (format!("≥ {at_least}"), ratio >= *at_least),
            Goal::AtMost(at_most) => (format!("≤ {at_most}"), ratio <= *at_most),
            Goal::Lower => (String::new(), true),
        };
        let met = match goal {
            Goal::Lower => String::new(),
            _ if met => "yes".into(),
            _ => "**no**".into(),
        };
        if key.starts_with("acks=all at 5 k") {
            latency.insert(key.clone(), weir_median);
        }
        let _ = writeln!(
            text,
            "| {key} | {shown_weir} | {shown_peer} | {ratio:.2} | {goal_text} | {met} |"
        );
    }
    let _ = write!(
        text,
        "\nThe disk's own fdatasync (1 KiB appended, then fdatasync, {} samples in the \
         directory the data directories are in, taken before each round): p50 {:.3} ms, \
         p99 {:.3} ms, p99.9 {:.3} ms. The acks=all goal holds Weir's latency at 5 k \
         records/s to the disk's, not to the peer's (which does not sync):\n\n\
         | acks=all at 5 k records/s | Weir (median) | disk fdatasync | Weir / disk | goal | \
         met |\n|---|---|---|---|---|---|\n",
        results.fsync_us.len(),
        disk[0],
        disk[1],
        disk[2],
    );
    for (label, disk_value, goal) in [
        ("p50", disk[0], None),
        ("p99", disk[1], Some(1.2)),
        ("p99.9", disk[2], Some(2.0)),
    ] {
        let key = format!("acks=all at 5 k records/s: {label}");
        let weir = latency.get(&key).copied().unwrap_or(f64::NAN);
        let ratio = weir / disk_value;
        let (goal_text, met) = match goal {
            Some(g) => (format!("≤ {g}"), if ratio <= g { "yes" } else { "**no**" }),
            None => (String::new(), ""),
        };
        let _ = writeln!(
            text,
            "| {label} | {weir:.3} ms | {disk_value:.3} ms | {ratio:.2} | {goal_text} | {met} |"
        );
    }
    let _ = write!(
        text,
        "\nThe load generator's commands of one round (127.0.0.1:PORT is the broker of that \
         round):\n\n```text\n{}\n```\n",
        commands
            .iter()
            .map(|c| strip_port(c))
            .collect::<Vec<_>>()
            .join("\n")
    );
    text
}

/// `rdkafka_load produce 127.0.0.1:40349 ...` → `rdkafka_load produce 127.0.0.1:PORT ...`.
fn strip_port(command: &str) -> String {
    command
        .split(' ')
        .map(|word| match word.strip_prefix("127.0.0.1:") {
            Some(port) if port.chars().all(|c| c.is_ascii_digit()) => "127.0.0.1:PORT",
            _ => word,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the numbers are read from rdkafka_load's own lines and /proc's stat format.
    #[test]
    fn reads_rdkafka_load_and_proc_stat() {
        let produce = "librdkafka 2.0.2: 25000 records acked (acks=all), 4999.7 records/sec \
                       (0.48 MB/sec), 0.178 ms 50th, 3.791 ms 99th, 10.153 ms 99.9th, \
                       15.150 ms max latency, 0 failed.";
        assert_eq!(latencies_ms(produce), Some([0.178, 3.791, 10.153]));
        let spread = "librdkafka 2.0.2: spread-10000: 10000 partitions created in 812.5 ms, \
                      one record each acked (acks=all) in 2301.0 ms, 3113.5 ms in all, \
                      10000 acked, 0 failed.";
        assert_eq!(spread_ms(spread), Some([812.5, 2301.0, 3113.5]));
        let join = "librdkafka 2.0.2: group g, first assignment (1 partition(s) of bench) \
                    3007.4 ms after subscribe().";
        assert_eq!(join_ms(join), Some(3007.4));
        let stat = "1234 (weir (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0";
        assert_eq!(cpu_seconds_of(stat, 100.0), Some(3.0));
        assert_eq!(cpu_seconds_of("garbage", 100.0), None);
        let stat = "1234 (weir (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 70 30 20 0";
        assert_eq!(children_cpu_seconds_of(stat, 100.0), Some(1.0));
        assert_eq!(children_cpu_seconds_of("1 (a) S 1 2", 100.0), None);
        assert_eq!(quantile(&mut [4.0, 1.0, 3.0, 2.0, 5.0], 0.5), 3.0);
        assert_eq!(
            strip_port("rdkafka_load consume 127.0.0.1:40349 bench 10 1"),
            "rdkafka_load consume 127.0.0.1:PORT bench 10 1"
        );
    }

    // Goal: a real file on this machine's disk gives positive fdatasync times.
    #[test]
    fn measures_fdatasync() {
        let samples = fdatasync_samples(5).expect("fdatasync");
        assert_eq!(samples.len(), 5);
        assert!(samples.iter().all(|s| *s > 0.0), "{samples:?}");
    }
}
