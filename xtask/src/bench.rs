//! `cargo xtask bench`: runs the benchmark set against a real release `weir` and writes
//! docs/benchmarks.md with every command and its output.
//!
//! The machine is shared and noisy, so numbers are quoted next to this machine's loopback
//! limit measured in the same run by the same binary (`weir bench loopback`); compare ratios,
//! not absolute values. The load generator the targets are stated for is librdkafka:
//! bench/rdkafka_load.c, compiled here against the system librdkafka.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::project_root;

mod availability;
mod baseline;
mod compaction;
mod cores;
mod partitions;
mod peer;
mod security;

pub(crate) use peer::Peer;

/// The parts of `cargo xtask bench`, each a part of docs/benchmarks.md; `--only` runs some
/// and keeps the others' text as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Workload {
    /// One broker's and a 3-node cluster's produce/consume throughput and latency, and the
    /// checker's speed (the sections before the first `##` heading).
    Throughput,
    /// The longest gap between acks=all acknowledgements when a partition leader is
    /// SIGKILLed (3-node cluster).
    Failover,
    /// A new consumer group's subscribe() to first assignment.
    GroupJoin,
    /// The same librdkafka load against this broker and a baseline commit's, alternating
    /// (needs `--baseline REV`; not part of the default run).
    Baseline,
    /// Produce into a compacted topic with the cleaner off and on, alternating, and the
    /// cleaner's own throughput.
    Compaction,
    /// Produce/consume throughput over SASL_SSL (TLS + SCRAM-SHA-256) against PLAINTEXT on
    /// one broker, alternating.
    Security,
    /// The broker on one core then two (`taskset`): throughput, CPU per record and cores
    /// busy, alternating.
    Cores,
    /// A 3-node cluster holding 1,000 then 10,000 partitions at replication factor 3: the
    /// brokers' idle CPU, and produce throughput and CPU per record over all partitions.
    Partitions,
    /// Every workload against Weir and a peer broker, alternating, with ratios and issue
    /// 19's goals (needs `--peer`; `--peer tansu` alone runs only this part).
    Peer,
}

/// How the processes of a run are placed and which broker binary they run.
#[derive(Debug, Default)]
pub(crate) struct Placement {
    /// `--pin`: the security part runs the broker on CPU 0 and the load generator on CPU 1.
    pub(crate) pin: bool,
    /// `--weir-bin`: this broker binary instead of a fresh release build of the tree.
    pub(crate) weir_bin: Option<PathBuf>,
}

/// Builds the release binary and the librdkafka load generator, runs the chosen workloads
/// (all when `only` is empty) and rewrites their parts of docs/benchmarks.md.
pub(crate) fn run(
    records: u64,
    only: &[Workload],
    repeat: Option<usize>,
    baseline: Option<&str>,
    peer: Option<(Peer, Vec<u32>)>,
    placement: Placement,
) -> Result<()> {
    let peer_rounds = repeat.unwrap_or(2);
    let repeat = repeat.unwrap_or(3);
    // `--peer X` without `--only` is the side-by-side run alone.
    let only = if only.is_empty() && peer.is_some() {
        &[Workload::Peer][..]
    } else {
        only
    };
    let root = project_root();
    let weir = match placement.weir_bin {
        Some(weir) => weir,
        None => {
            let status = Command::new(env!("CARGO"))
                .args(["build", "--release", "-p", "weir"])
                .current_dir(&root)
                .status()?;
            if !status.success() {
                bail!("release build failed");
            }
            // Where cargo put it: CARGO_TARGET_DIR when set, as for any cargo build.
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| root.join("target"), PathBuf::from);
            target.join("release/weir")
        }
    };
    let load = build_rdkafka_load(&root)?;
    let wanted = |workload| {
        (only.is_empty() && !matches!(workload, Workload::Baseline | Workload::Peer))
            || only.contains(&workload)
    };
    let mut parts = Vec::new();
    if wanted(Workload::Throughput) {
        parts.push((None, throughput_part(&weir, &load, records)?));
    }
    if wanted(Workload::Failover) {
        let part = availability::failover_part(&weir, &load, &root, repeat)?;
        parts.push((Some(availability::FAILOVER_HEADING), part));
    }
    if wanted(Workload::GroupJoin) {
        let part = availability::group_join_part(&weir, &load, repeat)?;
        parts.push((Some(availability::GROUP_JOIN_HEADING), part));
    }
    if wanted(Workload::Compaction) {
        let part = compaction::compaction_part(&weir, &load, repeat)?;
        parts.push((Some(compaction::COMPACTION_HEADING), part));
    }
    if wanted(Workload::Security) {
        let part = security::security_part(&weir, &load, records, repeat, placement.pin)?;
        parts.push((Some(security::SECURITY_HEADING), part));
    }
    if wanted(Workload::Cores) {
        let part = cores::cores_part(&weir, &load, records, repeat)?;
        parts.push((Some(cores::CORES_HEADING), part));
    }
    if wanted(Workload::Partitions) {
        let part = partitions::partitions_part(&weir, &load, &root, records, repeat)?;
        parts.push((Some(partitions::PARTITIONS_HEADING), part));
    }
    if wanted(Workload::Baseline) {
        let Some(rev) = baseline else {
            bail!("--only baseline needs --baseline REV (a commit to compare with)");
        };
        let part = baseline::baseline_part(&root, &weir, &load, rev, repeat)?;
        parts.push((Some(baseline::BASELINE_HEADING), part));
    }
    if wanted(Workload::Peer) {
        let Some((peer, partitions)) = peer else {
            bail!("--only peer needs --peer NAME (tansu)");
        };
        let options = peer::PeerOptions {
            rounds: peer_rounds,
            records,
            partitions,
        };
        let part = peer::peer_part(&root, &weir, &load, peer, &options)?;
        eprintln!("\n{part}");
        parts.push((Some(peer::PEER_HEADING), part));
    }
    let path = root.join("docs/benchmarks.md");
    let previous = if only.is_empty() {
        String::new()
    } else {
        fs::read_to_string(&path).unwrap_or_default()
    };
    let mut doc = compose(&previous, parts);
    // The simulator's seeds/s are measured by `cargo xtask sim` and kept beside this file.
    if let Ok(simulation) = fs::read_to_string(root.join("docs/benchmarks-sim.md")) {
        let _ = write!(doc, "\n{simulation}");
    }
    fs::write(&path, doc)?;
    eprintln!("xtask bench: wrote docs/benchmarks.md");
    Ok(())
}

/// Heading of the part appended from docs/benchmarks-sim.md (dropped here, appended anew).
const SIMULATION_HEADING: &str = "## Simulation";

/// docs/benchmarks.md from the `previous` text with the `fresh` parts put in: the part
/// without a heading (the title, [`HEADER`], the throughput sections) first, then one part
/// per `## ` heading, in their previous order; new parts go last.
fn compose(previous: &str, fresh: Vec<(Option<&str>, String)>) -> String {
    let mut parts: Vec<(Option<String>, String)> = Vec::new();
    for line in previous.lines() {
        if line.starts_with("## ") || parts.is_empty() {
            let heading = line.starts_with("## ").then(|| line.to_string());
            parts.push((heading, String::new()));
        }
        if let Some((_, text)) = parts.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    parts.retain(|(heading, _)| {
        heading
            .as_deref()
            .is_none_or(|h| !h.starts_with(SIMULATION_HEADING))
    });
    // The introduction is this file's text, not a measurement: keep it current even when
    // the throughput sections under it are kept.
    if let Some((None, text)) = parts.first_mut() {
        if let Some(sections) = text.find("\n### ") {
            *text = format!("{HEADER}{}", &text[sections..]);
        }
    }
    for (heading, text) in fresh {
        let heading = heading.map(str::to_string);
        match parts.iter_mut().find(|(h, _)| *h == heading) {
            Some(slot) => slot.1 = text,
            None if heading.is_none() => parts.insert(0, (heading, text)),
            None => parts.push((heading, text)),
        }
    }
    let mut doc = parts
        .iter()
        .map(|(_, text)| text.trim_end())
        .collect::<Vec<_>>()
        .join("\n\n");
    doc.push('\n');
    doc
}

/// Appends one `### `command`` section per (command, output).
fn render_sections(doc: &mut String, sections: &[(String, String)]) {
    for (command, output) in sections {
        let _ = write!(
            doc,
            "\n### `{command}`\n\n```text\n{}\n```\n",
            output.trim_end()
        );
    }
}

/// The title, the introduction and the throughput sections.
fn throughput_part(weir: &Path, load: &Path, records: u64) -> Result<String> {
    let data_dir = std::env::temp_dir().join(format!("weir-bench-{}", std::process::id()));
    let _ = fs::remove_dir_all(&data_dir);
    let port = free_port()?;
    let bootstrap = format!("127.0.0.1:{port}");
    let mut broker = start_broker(weir, &bootstrap, &data_dir)?;
    let result = run_suite(weir, load, &bootstrap, records);
    let _ = broker.kill();
    let _ = broker.wait();
    let _ = fs::remove_dir_all(&data_dir);
    let mut sections = result?;
    // Replication: a 3-node cluster on this machine, RF=3, min.insync.replicas=2, acks=all,
    // once with followers counting only fsynced data (Weir's default) and once Kafka's way.
    for mode in ["isr-fsync", "isr-memory"] {
        sections.extend(run_cluster_suite(weir, load, mode, records)?);
    }
    // The machine is shared: say how busy it was, so a noisy run is recognisable as one.
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    sections.insert(
        0,
        ("cat /proc/loadavg  # at the end of the run".into(), load),
    );
    sections.push(checker_scale(1_000_000)?);
    let mut doc = String::from(HEADER);
    render_sections(&mut doc, &sections);
    Ok(doc)
}

const HEADER: &str = "# Benchmarks\n\n\
Made by `cargo xtask bench` (release build, one broker, load generator and broker on the\n\
same 2-core machine, data durable: `weir.durability = fsync`, every acknowledged batch is\n\
fdatasync'ed before the ack, with group commit). Load generators: `rdkafka_load`\n\
(bench/rdkafka_load.c over librdkafka, the client the targets are stated for) and\n\
`weir bench` (the native Rust client). The machine is shared and noisy: compare ratios\n\
to the loopback limit measured in the same run, not absolute numbers. Each section is\n\
the command that ran and its output. The last sections run a 3-node cluster on the same\n\
machine (three brokers, their replication and the load generator share the 2 cores):\n\
acks=all with `weir.acks.all.durability = isr-fsync` (Weir's default: every in-sync\n\
replica has fsynced before the ack) against `isr-memory` (Kafka's: followers count once\n\
they hold the batch) is the cost of surviving a power loss of all replicas at once.\n\
The parts after these sections measure availability: the failover gap when a partition\n\
leader is SIGKILLed, and a new consumer group's first join; then what log compaction\n\
costs, what TLS + SASL cost, the broker on one core then two, and a 3-node cluster\n\
holding many partitions. `cargo xtask bench --only\n\
throughput,failover,group-join,compaction,security,cores,partitions` (any of them)\n\
reruns some parts and keeps the others;\n\
`--only baseline --baseline REV` runs the same load against this broker and REV's,\n\
alternating, and reports the ratios (how a refactoring shows it costs no throughput);\n\
`--peer tansu` runs every workload against Weir and Tansu's in-memory broker, alternating,\n\
and reports the ratios against issue 19's goals (its own part below).\n";

fn run_suite(
    weir: &Path,
    load: &Path,
    bootstrap: &str,
    records: u64,
) -> Result<Vec<(String, String)>> {
    let load_records = (records * 2).to_string();
    let all_records = (records * 5).to_string();
    let records = records.to_string();
    let runs: Vec<(&Path, Vec<String>)> = vec![
        (weir, args(&["bench", "loopback"])),
        (
            weir,
            args(&[
                "topic",
                "create",
                "bench",
                "--partitions",
                "2",
                "--bootstrap-server",
            ]),
        ),
        (
            load,
            args(&["produce", bootstrap, "bench", &load_records, "100", "1"]),
        ),
        (
            load,
            args(&["produce", bootstrap, "bench", &load_records, "100", "all"]),
        ),
        (weir, bench_produce(&records)),
        (
            load,
            args(&["consume", bootstrap, "bench", &all_records, "2"]),
        ),
        (
            weir,
            args(&[
                "bench",
                "consume",
                "--topic",
                "bench",
                "--num-records",
                &all_records,
            ]),
        ),
        // acks=all latency at a fixed 5 k records/s, every ack after an fsync.
        (
            load,
            args(&["produce", bootstrap, "bench", "25000", "100", "all", "5000"]),
        ),
    ];
    let mut sections = Vec::new();
    for (program, mut run) in runs {
        let takes_bootstrap = run.get(1).map(String::as_str) != Some("loopback");
        if program == weir && takes_bootstrap {
            if run.last().map(String::as_str) != Some("--bootstrap-server") {
                run.push("--bootstrap-server".into());
            }
            run.push(bootstrap.into());
        }
        let name = program
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into());
        let shown = format!("{name} {}", run.join(" "));
        eprintln!("==> {shown}");
        let output = Command::new(program)
            .args(&run)
            .stderr(Stdio::inherit())
            .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        if !output.status.success() {
            bail!("`{shown}` failed ({}): {stdout}", output.status);
        }
        sections.push((shown, stdout));
    }
    Ok(sections)
}

/// Compiles bench/rdkafka_load.c against the system librdkafka (Debian's librdkafka-dev,
/// installed when missing).
fn build_rdkafka_load(root: &Path) -> Result<PathBuf> {
    if !Path::new("/usr/include/librdkafka/rdkafka.h").exists() {
        let status = Command::new("apt-get")
            .args(["install", "-y", "-q", "librdkafka-dev", "gcc"])
            .status()?;
        if !status.success() {
            bail!("apt-get install librdkafka-dev failed");
        }
    }
    let output = root.join("target/rdkafka_load");
    // target/ is absent when CARGO_TARGET_DIR points elsewhere.
    fs::create_dir_all(root.join("target"))?;
    let status = Command::new("gcc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&output)
        .arg(root.join("bench/rdkafka_load.c"))
        .arg("-lrdkafka")
        .status()?;
    if !status.success() {
        bail!("compiling bench/rdkafka_load.c failed");
    }
    Ok(output)
}

fn bench_produce(records: &str) -> Vec<String> {
    args(&[
        "bench",
        "produce",
        "--topic",
        "bench",
        "--num-records",
        records,
        "--record-size",
        "100",
        "--acks",
        "all",
        "--batch-size",
        "1000000",
    ])
}

/// Runs `xtask checker-scale` in a release build (the checker's speed in a debug build says
/// little) and returns its report line.
fn checker_scale(ops: usize) -> Result<(String, String)> {
    let ops = ops.to_string();
    let command = [
        "run",
        "--release",
        "-q",
        "-p",
        "xtask",
        "--",
        "checker-scale",
        "--ops",
        &ops,
    ];
    let output = Command::new(env!("CARGO"))
        .args(command)
        .current_dir(project_root())
        .stderr(Stdio::inherit())
        .output()?;
    if !output.status.success() {
        bail!("checker-scale failed: {}", output.status);
    }
    let shown = format!("cargo {}", command.join(" "));
    Ok((shown, String::from_utf8_lossy(&output.stdout).to_string()))
}

/// Times the Jepsen-style checker on a synthetic history of `ops` operations: it must cost
/// time linear in the history, so a million operations check in seconds.
pub(crate) fn checker_scale_run(ops: usize) -> Result<()> {
    let workload = weir_jepsen::Workload::new(ops, 1);
    let generated = Instant::now();
    let history = workload.history();
    let generated = generated.elapsed();
    let started = Instant::now();
    let report = weir_jepsen::check(&workload.config(), &history)
        .map_err(|error| anyhow::anyhow!("synthetic history rejected: {error}"))?;
    let elapsed = started.elapsed();
    println!(
        "{} events ({} operations, generated in {:.2} s) checked in {:.2} s: valid={}",
        history.events.len(),
        report.op_count,
        generated.as_secs_f64(),
        elapsed.as_secs_f64(),
        report.valid
    );
    Ok(())
}

/// Three nodes on 127.0.0.1, RF=3 topic, acks=all throughput and latency at 5 k/s.
fn run_cluster_suite(
    weir: &Path,
    load: &Path,
    mode: &str,
    records: u64,
) -> Result<Vec<(String, String)>> {
    let base = std::env::temp_dir().join(format!("weir-bench-cluster-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    fs::create_dir_all(&base)?;
    let kafka: Vec<u16> = (0..3).map(|_| free_port()).collect::<Result<_>>()?;
    let peer: Vec<u16> = (0..3).map(|_| free_port()).collect::<Result<_>>()?;
    let voters = (0..3)
        .map(|i| format!("{}@127.0.0.1:{}", i + 1, peer[i]))
        .collect::<Vec<_>>()
        .join(",");
    let config = base.join("weir.toml");
    fs::write(&config, format!("weir.acks.all.durability = \"{mode}\"\n"))?;
    let mut nodes = Vec::new();
    for i in 0..3 {
        let child = Command::new(weir)
            .args(["serve", "--node-id", &(i + 1).to_string()])
            .args(["--listen", &format!("127.0.0.1:{}", kafka[i])])
            .arg("--data-dir")
            .arg(base.join(format!("n{}", i + 1)))
            .args(["--controller-listen", &format!("127.0.0.1:{}", peer[i])])
            .args(["--voters", &voters, "--gateway", "off"])
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting a cluster node")?;
        nodes.push(child);
    }
    let bootstrap = kafka
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let result = (|| -> Result<Vec<(String, String)>> {
        // The quorum elects and the brokers register within a few seconds; retry creation.
        let topic = format!("bench-{mode}");
        let started = Instant::now();
        loop {
            let status = Command::new(weir)
                .args(["topic", "create", &topic, "--partitions", "2"])
                .args([
                    "--replication-factor",
                    "3",
                    "--config",
                    "min.insync.replicas=2",
                ])
                .args(["--bootstrap-server", &format!("127.0.0.1:{}", kafka[0])])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            if status.success() {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("cluster did not accept the topic within 60 s");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        std::thread::sleep(Duration::from_secs(2));
        let mut sections = Vec::new();
        let count = records.to_string();
        for run in [
            args(&["produce", &bootstrap, &topic, &count, "100", "all"]),
            args(&["produce", &bootstrap, &topic, "25000", "100", "all", "5000"]),
        ] {
            let shown = format!(
                "rdkafka_load {}  # 3-node cluster, RF=3, min.insync.replicas=2, \
                 weir.acks.all.durability={mode}",
                run.join(" ")
            );
            eprintln!("==> {shown}");
            let output = Command::new(load)
                .args(&run)
                .stderr(Stdio::inherit())
                .output()?;
            let stdout = String::from_utf8_lossy(&output.stdout).to_string();
            if !output.status.success() {
                bail!("`{shown}` failed ({}): {stdout}", output.status);
            }
            sections.push((shown, stdout));
        }
        Ok(sections)
    })();
    for mut node in nodes {
        let _ = node.kill();
        let _ = node.wait();
    }
    let _ = fs::remove_dir_all(&base);
    result
}

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_string()).collect()
}

/// A loopback port nothing listens on now and not handed out before by this process (the
/// kernel may give one ephemeral port to two sockets bound and closed in turn).
fn free_port() -> Result<u16> {
    static ISSUED: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut issued = ISSUED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if !issued.contains(&port) {
            issued.push(port);
            return Ok(port);
        }
    }
}

fn start_broker(weir: &Path, bootstrap: &str, data_dir: &Path) -> Result<Child> {
    let mut child = Command::new(weir)
        .args(["serve", "--listen", bootstrap, "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting weir")?;
    wait_ready(&mut child)?;
    Ok(child)
}

/// Waits until a broker started with piped stdout prints that it listens (30 s at most);
/// kills it and fails otherwise.
fn wait_ready(child: &mut Child) -> Result<()> {
    let started = Instant::now();
    let stdout = child.stdout.take().context("broker stdout")?;
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("weir listening on") {
                let _ = sender.send(());
            }
        }
    });
    if receiver.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        bail!("broker did not report ready within {:?}", started.elapsed());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_replaces_only_the_fresh_parts() {
        let previous = "# Benchmarks\n\nold intro\n\n### `a`\n\nkept\n\n\
                        ## Failover\n\nold failover\n\n## Join\n\nold join\n\n\
                        ## Simulation\n\nsim\n";
        let doc = compose(
            previous,
            vec![(Some("## Failover"), "## Failover\n\nnew".into())],
        );
        assert!(doc.starts_with(HEADER), "{doc}");
        assert!(doc.contains("### `a`\n\nkept\n\n## Failover\n\nnew\n\n## Join\n\nold join\n"));
        assert!(
            !doc.contains("old intro") && !doc.contains("Simulation"),
            "{doc}"
        );
        let fresh = compose("", vec![(None, "# Benchmarks\n".into())]);
        assert_eq!(fresh, "# Benchmarks\n");
    }
}
