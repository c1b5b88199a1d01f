//! `cargo xtask bench`: runs the benchmark set against a real release `weir` and writes
//! docs/benchmarks.md with every command and its output.
//!
//! The machine is shared and noisy, so numbers are quoted next to this machine's loopback
//! limit measured in the same run by the same binary (`weir bench loopback`); compare ratios,
//! not absolute values.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::project_root;

/// Builds the release binary, starts a broker on a temporary data dir, runs each benchmark,
/// and rewrites docs/benchmarks.md.
pub(crate) fn run(records: u64) -> Result<()> {
    let root = project_root();
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "weir"])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("release build failed");
    }
    let weir = root.join("target/release/weir");
    let data_dir = std::env::temp_dir().join(format!("weir-bench-{}", std::process::id()));
    let _ = fs::remove_dir_all(&data_dir);
    let port = free_port()?;
    let bootstrap = format!("127.0.0.1:{port}");
    let mut broker = start_broker(&weir, &bootstrap, &data_dir)?;
    let result = run_suite(&weir, &bootstrap, records);
    let _ = broker.kill();
    let _ = broker.wait();
    let _ = fs::remove_dir_all(&data_dir);
    let sections = result?;
    let mut doc = String::from(HEADER);
    for (command, output) in sections {
        let _ = write!(
            doc,
            "\n### `{command}`\n\n```text\n{}\n```\n",
            output.trim_end()
        );
    }
    fs::write(root.join("docs/benchmarks.md"), doc)?;
    eprintln!("xtask bench: wrote docs/benchmarks.md");
    Ok(())
}

const HEADER: &str = "# Benchmarks\n\n\
Made by `cargo xtask bench` (release build, one broker, client and broker on the same\n\
2-core machine, data durable: `weir.durability = fsync`, every acknowledged batch is\n\
fdatasync'ed before the ack, with group commit). The machine is shared and noisy: compare\n\
the ratios to the loopback limit measured in the same run, not absolute numbers.\n";

fn run_suite(weir: &Path, bootstrap: &str, records: u64) -> Result<Vec<(String, String)>> {
    let records = records.to_string();
    let latency_records = "25000".to_string();
    let runs: Vec<Vec<String>> = vec![
        vec!["bench".into(), "loopback".into()],
        args(&[
            "topic",
            "create",
            "bench",
            "--partitions",
            "2",
            "--bootstrap-server",
            bootstrap,
        ]),
        bench_produce(bootstrap, &records, "1", None),
        bench_produce(bootstrap, &records, "all", None),
        args(&[
            "bench",
            "consume",
            "--topic",
            "bench",
            "--num-records",
            &records,
        ])
        .into_iter()
        .chain(args(&["--bootstrap-server", bootstrap]))
        .collect(),
        bench_produce(bootstrap, &latency_records, "all", Some("5000")),
    ];
    let mut sections = Vec::new();
    for run in runs {
        let shown = format!("weir {}", run.join(" "));
        eprintln!("==> {shown}");
        let output = Command::new(weir)
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

fn bench_produce(bootstrap: &str, records: &str, acks: &str, rate: Option<&str>) -> Vec<String> {
    let mut run = args(&[
        "bench",
        "produce",
        "--topic",
        "bench",
        "--num-records",
        records,
        "--record-size",
        "100",
        "--acks",
        acks,
        "--bootstrap-server",
        bootstrap,
    ]);
    if let Some(rate) = rate {
        run.extend(args(&["--throughput", rate]));
    }
    run
}

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_string()).collect()
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_broker(weir: &Path, bootstrap: &str, data_dir: &Path) -> Result<Child> {
    let mut child = Command::new(weir)
        .args(["serve", "--listen", bootstrap, "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting weir")?;
    let started = Instant::now();
    let stderr = child.stderr.take().context("broker stderr")?;
    let stdout = child.stdout.take().context("broker stdout")?;
    // The ready line may go to either stream depending on the logger; watch both.
    let (sender, receiver) = std::sync::mpsc::channel();
    for stream in [
        Box::new(stderr) as Box<dyn std::io::Read + Send>,
        Box::new(stdout),
    ] {
        let sender = sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if line.contains("weir listening on") {
                    let _ = sender.send(());
                }
            }
        });
    }
    if receiver.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        bail!("broker did not report ready within {:?}", started.elapsed());
    }
    Ok(child)
}
