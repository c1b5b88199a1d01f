//! `cargo xtask cluster`: a local Weir cluster on 127.0.0.1 for trying things out.
//!
//! Builds `weir`, then starts `--nodes` processes (node ids 1..=N, all voters):
//! node N listens for Kafka clients on 9092 + 2(N-1) (9092, 9094, 9096, ...; the odd ports
//! stay free for other tools), for its peers on 19092 + 2(N-1), keeps its data in
//! `target/cluster/nodeN/data` and logs to `target/cluster/nodeN/weir.log`. Gateways and
//! metrics are off. Once every node's Metadata lists all brokers the cluster is reported
//! ready; it then runs until Ctrl-C (which reaches every node: they share the terminal's
//! process group) or until any node exits, which stops the others.
//!
//! `--fresh` deletes the data directories first; otherwise a restart recovers them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::project_root;

/// First Kafka port; node N uses `KAFKA_PORT_BASE + PORT_STRIDE * (N - 1)`.
const KAFKA_PORT_BASE: u16 = 9092;
/// First controller (peer) port.
const CONTROLLER_PORT_BASE: u16 = 19092;
/// Ports of consecutive nodes are this far apart.
const PORT_STRIDE: u16 = 2;
/// Largest cluster this command starts.
const NODES_MAX: u16 = 9;
/// How long to wait for every node's Metadata to list all brokers.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Poll interval of the readiness and liveness checks.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// The flags of `cargo xtask cluster`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct ClusterArgs {
    /// Number of nodes (each is a broker and a controller voter).
    #[arg(long, default_value_t = 3)]
    pub nodes: u16,
    /// Build and run the release binary (default: debug, quicker to build).
    #[arg(long)]
    pub release: bool,
    /// Delete target/cluster/nodeN/data before starting.
    #[arg(long)]
    pub fresh: bool,
    /// Kafka port of node 1 (node N: + 2(N-1)).
    #[arg(long, default_value_t = KAFKA_PORT_BASE)]
    pub kafka_port: u16,
    /// Controller (peer) port of node 1 (node N: + 2(N-1)).
    #[arg(long, default_value_t = CONTROLLER_PORT_BASE)]
    pub controller_port: u16,
}

/// One started node.
struct Node {
    id: u16,
    kafka: String,
    log: PathBuf,
    child: Child,
}

/// Start the cluster and run until Ctrl-C or a node exits; Ok(false) when a node failed.
pub(crate) fn run(args: &ClusterArgs) -> Result<bool> {
    if args.nodes == 0 || args.nodes > NODES_MAX {
        bail!("--nodes must be 1..={NODES_MAX}");
    }
    let root = project_root();
    let mut build = Command::new(env!("CARGO"));
    build.current_dir(&root).args(["build", "-p", "weir"]);
    if args.release {
        build.arg("--release");
    }
    let status = build.status().context("running cargo build -p weir")?;
    if !status.success() {
        bail!("cargo build -p weir failed");
    }
    let profile = if args.release { "release" } else { "debug" };
    let weir = root.join("target").join(profile).join("weir");
    let voters: Vec<String> = (1..=args.nodes)
        .map(|id| format!("{id}@127.0.0.1:{}", port(args.controller_port, id)))
        .collect();
    let voters = voters.join(",");
    let base = root.join("target/cluster");
    let mut nodes = Vec::new();
    for id in 1..=args.nodes {
        match start_node(&weir, &base, id, &voters, args) {
            Ok(node) => nodes.push(node),
            Err(error) => {
                stop_all(&mut nodes);
                return Err(error);
            }
        }
    }
    let bootstrap = nodes[0].kafka.clone();
    println!("cluster: {} nodes, voters {voters}", nodes.len());
    for node in &nodes {
        println!(
            "  node {}: kafka {}  log {}",
            node.id,
            node.kafka,
            node.log.display()
        );
    }
    let ready = wait_ready(&weir, &mut nodes);
    match ready {
        Ok(true) => println!(
            "cluster ready. Try: {} cluster describe --bootstrap {}\nCtrl-C stops every node.",
            weir.display(),
            bootstrap
        ),
        Ok(false) => println!(
            "cluster not ready after {}s (see the logs); still running. Ctrl-C stops it.",
            READY_TIMEOUT.as_secs()
        ),
        Err(error) => {
            stop_all(&mut nodes);
            return Err(error);
        }
    }
    let exited = wait_any_exit(&mut nodes)?;
    stop_all(&mut nodes);
    Ok(exited)
}

fn port(base: u16, id: u16) -> u16 {
    base.saturating_add(PORT_STRIDE * (id - 1))
}

fn start_node(weir: &Path, base: &Path, id: u16, voters: &str, args: &ClusterArgs) -> Result<Node> {
    let dir = base.join(format!("node{id}"));
    let data = dir.join("data");
    if args.fresh && data.exists() {
        std::fs::remove_dir_all(&data).with_context(|| format!("removing {}", data.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log_path = dir.join("weir.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let kafka = format!("127.0.0.1:{}", port(args.kafka_port, id));
    let controller = format!("127.0.0.1:{}", port(args.controller_port, id));
    let child = Command::new(weir)
        .arg("serve")
        .args(["--node-id", &id.to_string()])
        .args(["--listen", &kafka])
        .arg("--data-dir")
        .arg(&data)
        .args(["--controller-listen", &controller])
        .args(["--voters", voters])
        .args(["--gateway", "off"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("log file handle")?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", weir.display()))?;
    Ok(Node {
        id,
        kafka,
        log: log_path,
        child,
    })
}

/// Wait until every node's `weir cluster describe` counts all brokers. Err when a node
/// exits meanwhile; Ok(false) on timeout.
fn wait_ready(weir: &Path, nodes: &mut [Node]) -> Result<bool> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let want = format!("BrokerCount: {}", nodes.len());
    while Instant::now() < deadline {
        check_alive(nodes)?;
        let ready = nodes.iter().all(|node| {
            Command::new(weir)
                .args(["cluster", "describe", "--bootstrap", &node.kafka])
                .stderr(Stdio::null())
                .output()
                .map(|out| {
                    let text = String::from_utf8_lossy(&out.stdout).replace('\t', "\n");
                    out.status.success() && text.lines().any(|field| field == want)
                })
                .unwrap_or(false)
        });
        if ready {
            return Ok(true);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    Ok(false)
}

fn check_alive(nodes: &mut [Node]) -> Result<()> {
    for node in nodes.iter_mut() {
        if let Some(status) = node.child.try_wait().context("polling a node")? {
            bail!(
                "node {} exited ({status}); see {}",
                node.id,
                node.log.display()
            );
        }
    }
    Ok(())
}

/// Block until some node exits (Ctrl-C stops them all at once). Ok(true) when it exited
/// cleanly (an interrupt), Ok(false) when it failed.
fn wait_any_exit(nodes: &mut [Node]) -> Result<bool> {
    loop {
        for node in nodes.iter_mut() {
            if let Some(status) = node.child.try_wait().context("polling a node")? {
                if !status.success() {
                    eprintln!(
                        "node {} exited ({status}); stopping the others. Log: {}",
                        node.id,
                        node.log.display()
                    );
                }
                return Ok(status.success());
            }
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

fn stop_all(nodes: &mut [Node]) {
    for node in nodes.iter_mut() {
        // Already-exited children make kill fail; nothing to do then.
        let _ = node.child.kill();
        let _ = node.child.wait();
    }
}
