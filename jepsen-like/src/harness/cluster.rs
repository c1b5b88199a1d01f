//! Cluster control: `weir serve` processes, one per node, each with its own data directory
//! and log file, started, killed (`SIGKILL`), restarted, paused (`SIGSTOP`) and resumed
//! (`SIGCONT`) by the nemesis.
//!
//! A node runs `weir serve --node-id N --listen ... --data-dir ... --config FILE` and, in a
//! cluster of more than one node, `--controller-listen ... --voters ...` (issue #4's CLI).
//! In netns mode the command is prefixed by `ip netns exec NS`, which execs, so the child's
//! pid is the broker's and signals reach it directly.
//!
//! Invariants: a node is in exactly one [`NodeState`]; a paused node is resumed before
//! anything else is done to it except a kill; every restart appends to the same log file,
//! after a harness marker line, so the log tells the whole story of the node.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::net::Net;
use super::recorder::monotonic_ns;

/// How long a node may take to accept TCP connections after a start.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What a node process is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Running.
    Up,
    /// Killed, not restarted yet.
    Down,
    /// Stopped with `SIGSTOP`.
    Paused,
}

/// One node.
#[derive(Debug)]
pub struct Node {
    /// 1-based node id.
    pub id: u32,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Log file (stdout and stderr of every incarnation).
    pub log_path: PathBuf,
    config_path: PathBuf,
    child: Option<Child>,
    /// Current state.
    pub state: NodeState,
    /// Times this node was started.
    pub starts: u32,
}

/// The cluster's processes.
#[derive(Debug)]
pub struct Cluster {
    /// Nodes, index `id - 1`.
    pub nodes: Vec<Node>,
    weir: PathBuf,
    /// Whether the `weir` binary has the cluster flags (`--voters`).
    pub cluster_flags: bool,
}

/// The broker settings every node gets (Kafka property names, TOML).
pub fn broker_config(nodes: u32, partitions: u32, advertised: Option<&str>) -> String {
    let replication = nodes.min(3);
    let mut text = format!(
        "num.partitions = {partitions}\n\
         default.replication.factor = {replication}\n\
         transaction.max.timeout.ms = 60000\n\
         group.initial.rebalance.delay.ms = 0\n"
    );
    if let Some(address) = advertised {
        text.push_str(&format!(
            "advertised.listeners = \"PLAINTEXT://{address}\"\n"
        ));
    }
    text
}

/// Whether `weir serve --help` lists the cluster flags.
pub fn has_cluster_flags(weir: &Path) -> bool {
    Command::new(weir)
        .args(["serve", "--help"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("--voters"))
        .unwrap_or(false)
}

impl Cluster {
    /// Prepares `count` nodes under `dir` (data dirs, config files); starts nothing.
    pub fn new(weir: &Path, dir: &Path, count: u32, partitions: u32, net: &Net) -> Result<Self> {
        let cluster_flags = has_cluster_flags(weir);
        if count > 1 && !cluster_flags {
            bail!(
                "{} has no cluster flags (`weir serve --voters`, issue #4); \
                 only --nodes 1 runs with this build",
                weir.display()
            );
        }
        let mut nodes = Vec::new();
        for id in 1..=count {
            let node_dir = dir.join(format!("n{id}"));
            fs::create_dir_all(&node_dir).with_context(|| format!("creating {node_dir:?}"))?;
            let config_path = node_dir.join("weir.toml");
            let advertised = net.advertised_addr(id);
            fs::write(
                &config_path,
                broker_config(count, partitions, advertised.as_deref()),
            )?;
            nodes.push(Node {
                id,
                data_dir: node_dir.join("data"),
                log_path: node_dir.join("weir.log"),
                config_path,
                child: None,
                state: NodeState::Down,
                starts: 0,
            });
        }
        Ok(Self {
            nodes,
            weir: weir.to_path_buf(),
            cluster_flags,
        })
    }

    fn node_mut(&mut self, id: u32) -> Result<&mut Node> {
        let index = usize::try_from(id).unwrap_or(0).wrapping_sub(1);
        match self.nodes.get_mut(index) {
            Some(node) => Ok(node),
            None => bail!("no node {id}"),
        }
    }

    /// Node ids.
    pub fn ids(&self) -> Vec<u32> {
        self.nodes.iter().map(|node| node.id).collect()
    }

    /// Starts node `id` (it must be down) and waits until it accepts connections.
    pub async fn start(&mut self, id: u32, net: &Net) -> Result<()> {
        self.spawn(id, net)?;
        self.wait_listening(id, net).await
    }

    /// Starts every node of `ids` (each must be down) at once, then waits until each
    /// accepts connections: no node waits for another's start (or for the cluster to
    /// recover) before it is spawned. Returns the first error after trying every node.
    pub async fn start_all(&mut self, ids: &[u32], net: &Net) -> Result<()> {
        let mut first_error = None;
        let mut spawned = Vec::new();
        for &id in ids {
            match self.spawn(id, net) {
                Ok(()) => spawned.push(id),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        for id in spawned {
            if let Err(error) = self.wait_listening(id, net).await {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Spawns node `id`'s process (it must be down); does not wait for it.
    fn spawn(&mut self, id: u32, net: &Net) -> Result<()> {
        let count = u32::try_from(self.nodes.len()).unwrap_or(1);
        let weir = self.weir.clone();
        let cluster_flags = self.cluster_flags && count > 1;
        let node = self.node_mut(id)?;
        if node.state != NodeState::Down {
            bail!("node {id} is {:?}, not down", node.state);
        }
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)?;
        writeln!(
            log,
            "=== weir-jepsen: start #{} of node {id} at monotonic {} ns",
            node.starts + 1,
            monotonic_ns()
        )?;
        let prefix = net.exec_prefix(id);
        let mut command = match prefix.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(&weir);
                command
            }
            None => Command::new(&weir),
        };
        command
            .arg("serve")
            .args(["--node-id", &id.to_string()])
            .args(["--listen", &net.listen_addr(id)])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .arg("--config")
            .arg(&node.config_path);
        if cluster_flags {
            command
                .args(["--controller-listen", &net.controller_listen(id)])
                .args(["--voters", &net.voters_for(id)]);
        }
        let stderr = log.try_clone()?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .env(
                "RUST_LOG",
                std::env::var("WEIR_JEPSEN_RUST_LOG").unwrap_or_else(|_| "info".into()),
            );
        let child = command
            .spawn()
            .with_context(|| format!("starting node {id}: {command:?}"))?;
        node.child = Some(child);
        node.state = NodeState::Up;
        node.starts += 1;
        Ok(())
    }

    async fn wait_listening(&mut self, id: u32, net: &Net) -> Result<()> {
        let address = net.listen_addr(id);
        let started = tokio::time::Instant::now();
        loop {
            // Connect from the node's own namespace's point of view is not needed: the root
            // namespace reaches every node through the bridge (or loopback).
            if let Ok(Ok(_)) = tokio::time::timeout(
                Duration::from_millis(500),
                tokio::net::TcpStream::connect(&address),
            )
            .await
            {
                return Ok(());
            }
            let node = self.node_mut(id)?;
            if let Some(child) = node.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    node.state = NodeState::Down;
                    node.child = None;
                    bail!(
                        "node {id} exited at start ({status}); see {}",
                        node.log_path.display()
                    );
                }
            }
            if started.elapsed() > START_TIMEOUT {
                bail!("node {id} did not listen on {address} within {START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kill -9` node `id` (no-op when already down) and reaps it.
    pub fn kill(&mut self, id: u32) -> Result<()> {
        let node = self.node_mut(id)?;
        if let Some(mut child) = node.child.take() {
            child.kill().with_context(|| format!("kill -9 node {id}"))?;
            child.wait()?;
        }
        node.state = NodeState::Down;
        Ok(())
    }

    /// `kill -9` every node of `ids` at the same instant: the signals are all sent before
    /// any process is reaped (no-op for nodes already down).
    pub fn kill_all(&mut self, ids: &[u32]) -> Result<()> {
        let mut first_error = None;
        let mut killed = Vec::new();
        for &id in ids {
            let node = match self.node_mut(id) {
                Ok(node) => node,
                Err(error) => {
                    first_error.get_or_insert(error);
                    continue;
                }
            };
            if let Some(mut child) = node.child.take() {
                if let Err(error) = child.kill() {
                    first_error.get_or_insert(
                        anyhow::Error::new(error).context(format!("kill -9 node {id}")),
                    );
                }
                killed.push(child);
            }
            node.state = NodeState::Down;
        }
        for mut child in killed {
            if let Err(error) = child.wait() {
                first_error.get_or_insert(error.into());
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// `SIGSTOP` node `id` (only when up).
    pub fn pause(&mut self, id: u32) -> Result<()> {
        let node = self.node_mut(id)?;
        if node.state == NodeState::Up {
            signal(node, rustix::process::Signal::STOP)?;
            node.state = NodeState::Paused;
        }
        Ok(())
    }

    /// `SIGCONT` node `id` (only when paused).
    pub fn resume(&mut self, id: u32) -> Result<()> {
        let node = self.node_mut(id)?;
        if node.state == NodeState::Paused {
            signal(node, rustix::process::Signal::CONT)?;
            node.state = NodeState::Up;
        }
        Ok(())
    }

    /// Nodes whose process exited on its own (a crash the nemesis did not cause).
    pub fn reap_crashed(&mut self) -> Vec<(u32, String)> {
        let mut crashed = Vec::new();
        for node in &mut self.nodes {
            if let Some(child) = node.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    crashed.push((node.id, status.to_string()));
                    node.child = None;
                    node.state = NodeState::Down;
                }
            }
        }
        crashed
    }

    /// Resumes paused nodes and starts down ones.
    pub async fn heal(&mut self, net: &Net) -> Result<()> {
        for id in self.ids() {
            self.resume(id)?;
        }
        let mut down = Vec::new();
        for id in self.ids() {
            if self.node_mut(id)?.state == NodeState::Down {
                down.push(id);
            }
        }
        self.start_all(&down, net).await
    }

    /// Stops every node (resume, then kill) — the end of the run.
    pub fn stop_all(&mut self) {
        for id in self.ids() {
            let _ = self.resume(id);
            let _ = self.kill(id);
        }
    }

    /// The last `lines` lines of node `id`'s log.
    pub fn log_tail(&self, id: u32, lines: usize) -> String {
        let index = usize::try_from(id).unwrap_or(0).wrapping_sub(1);
        let Some(node) = self.nodes.get(index) else {
            return String::new();
        };
        let text = fs::read(&node.log_path).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn signal(node: &Node, signal: rustix::process::Signal) -> Result<()> {
    let Some(child) = node.child.as_ref() else {
        bail!("node {} has no process", node.id);
    };
    let pid = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    let Some(pid) = pid else {
        bail!("node {}: bad pid {}", node.id, child.id());
    };
    rustix::process::kill_process(pid, signal).with_context(|| format!("signal node {}", node.id))
}
