//! `cargo xtask deploy --inventory FILE plan|apply|status|upgrade|stop|destroy --yes`:
//! a Weir cluster described by an inventory (`inventory.rs`, docs/deploy.md) brought up,
//! inspected, rolled and torn down on a target (`local.rs`: background processes here).
//!
//! Contract (scripts rely on it): exit 0 only on success; every error names the node, its
//! host and the step (`node 2 (127.0.0.1): start: ...`); `apply` can be re-run after a
//! failure and only does what is left (install what differs, start what is not running);
//! `destroy` deletes data and needs `--yes`.
//!
//! Health comes from the brokers themselves: `/healthz` and `/readyz` on each node's metrics
//! listener, and the cluster's own view (DescribeCluster, Metadata) through the `weir` CLI
//! of the binary being deployed (`weir cluster describe`, `weir topic describe`).
//!
//! Rolling upgrade, one node at a time (the active controller last), each step bounded by
//! the inventory's `[timeouts]`: wait until no partition is under-replicated, SIGTERM (the
//! broker's controlled shutdown moves its leaderships away) and wait for the exit, install
//! the new binary and config, start, wait for `/readyz`, wait until the ISR has refilled,
//! then a preferred-leader election. Any step that fails or times out stops the upgrade
//! and is reported; the nodes already rolled keep running the new binary.

mod inventory;
mod k8s;
mod local;
mod probe;
mod ssh;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::project_root;
use inventory::{Inventory, NodeSpec, TargetKind};
use probe::{ClusterView, Probe, Readiness};

/// How often readiness and the ISR are polled.
const POLL: Duration = Duration::from_millis(200);

/// `cargo xtask deploy` flags.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct DeployArgs {
    /// The inventory (see docs/deploy.md), e.g. deploy/local-3.toml.
    #[arg(long)]
    pub inventory: PathBuf,
    /// Deploy this `weir` binary instead of building the release binary.
    #[arg(long, global = true)]
    pub binary: Option<PathBuf>,
    /// Confirm `destroy` (it deletes every node's data).
    #[arg(long, global = true)]
    pub yes: bool,
    #[command(subcommand)]
    pub action: Action,
}

/// What to do.
#[derive(clap::Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Print what apply would change, node by node.
    Plan,
    /// Build the release binary, install and start every node, wait until all are ready.
    Apply,
    /// Each node as the cluster reports it; exit 1 unless all are up, ready and in sync.
    Status,
    /// Rolling restart of every node onto the binary just built and the current config.
    Upgrade,
    /// Stop every node (SIGTERM: controlled shutdown).
    Stop,
    /// Stop every node and delete its files and data (needs --yes).
    Destroy,
}

/// What a target finds of a node on its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Observed {
    /// `None`: no binary installed; else whether it is the one being deployed.
    pub binary_same: Option<bool>,
    /// The installed config's text.
    pub config: Option<String>,
    /// A process of this node is running.
    pub running: bool,
}

/// One way of running nodes (local processes, ssh hosts). Every call is about one node;
/// errors say what failed, the caller adds which node and step.
pub(crate) trait Target {
    /// Where the node's files are (for messages).
    fn where_is(&self, node: &NodeSpec) -> String;
    /// The node's data directory, as its config names it.
    fn data_dir(&self, node: &NodeSpec) -> String;
    /// The node's TLS directory, as its config names it.
    fn tls_dir(&self, node: &NodeSpec) -> String;
    /// What is installed and running.
    fn observe(&self, node: &NodeSpec, binary: &Path) -> Result<Observed>;
    /// Installs `binary` as the node's (a running process keeps its old one).
    fn install_binary(&self, node: &NodeSpec, binary: &Path) -> Result<()>;
    /// Writes the config and TLS files, creates the data directory.
    fn install_files(&self, node: &NodeSpec, config: &str, tls: &[(PathBuf, &str)]) -> Result<()>;
    /// Starts the node unless it runs.
    fn start(&self, node: &NodeSpec) -> Result<()>;
    /// Whether the node's process is alive.
    fn running(&self, node: &NodeSpec) -> Result<bool>;
    /// SIGTERM and wait for the exit; an error when it has not exited by `timeout`.
    fn stop(&self, node: &NodeSpec, timeout: Duration) -> Result<()>;
    /// SIGKILL (destroy only).
    fn kill(&self, node: &NodeSpec) -> Result<()>;
    /// Deletes the node's files and data.
    fn destroy(&self, node: &NodeSpec) -> Result<()>;
    /// `weir --version` of the binary the running process executes.
    fn version(&self, node: &NodeSpec) -> Option<String>;
    /// The end of the node's log, for error messages.
    fn log_tail(&self, node: &NodeSpec) -> String;
}

/// Runs one deploy action; Ok(false) when it ran but the outcome is a failure (status
/// found an unhealthy cluster).
pub(crate) fn run(args: &DeployArgs) -> Result<bool> {
    let inventory = Inventory::load(&args.inventory)?;
    if args.action == Action::Destroy && !args.yes {
        bail!(
            "destroy deletes every node's data; run it again with --yes to confirm \
             ({} nodes of cluster {})",
            inventory.nodes.len(),
            inventory.cluster.id
        );
    }
    let target: Box<dyn Target> = match inventory.cluster.target {
        TargetKind::Local => Box::new(local::Local::new(&inventory)?),
        TargetKind::Ssh => Box::new(ssh::Ssh::new(&inventory)?),
        // Kubernetes runs the processes itself: the StatefulSet is the unit of change.
        TargetKind::K8s => return k8s::K8s::new(&inventory)?.act(&inventory, args.action),
    };
    let deploy = Deploy {
        inventory,
        target,
        explicit_binary: args.binary.clone(),
    };
    match args.action {
        Action::Plan => deploy.plan().map(|()| true),
        Action::Apply => deploy.apply().map(|()| true),
        Action::Status => deploy.status(),
        Action::Upgrade => deploy.upgrade().map(|()| true),
        Action::Stop => deploy.stop().map(|()| true),
        Action::Destroy => deploy.destroy().map(|()| true),
    }
}

struct Deploy {
    inventory: Inventory,
    target: Box<dyn Target>,
    explicit_binary: Option<PathBuf>,
}

/// `node 2 (10.0.0.2)`, the prefix of every message about a node.
fn who(node: &NodeSpec) -> String {
    format!("node {} ({})", node.id, node.host)
}

impl Deploy {
    /// The binary `plan` compares with: the given one, else the release build's output.
    fn planned_binary(&self) -> PathBuf {
        match &self.explicit_binary {
            Some(path) => path.clone(),
            None => target_dir().join("release/weir"),
        }
    }

    /// The binary to deploy: the given one, else a fresh release build.
    fn binary(&self) -> Result<PathBuf> {
        if let Some(path) = &self.explicit_binary {
            if !path.is_file() {
                bail!("--binary {}: no such file", path.display());
            }
            return std::path::absolute(path).context("resolving --binary");
        }
        let root = project_root();
        eprintln!("deploy: building the release binary (cargo build --release -p weir)");
        let status = Command::new(env!("CARGO"))
            .current_dir(&root)
            .args(["build", "--release", "-p", "weir"])
            .status()
            .context("build: running cargo build --release -p weir")?;
        if !status.success() {
            bail!("build: cargo build --release -p weir failed ({status})");
        }
        Ok(target_dir().join("release/weir"))
    }

    fn render(&self, node: &NodeSpec) -> Result<String> {
        self.inventory.render_config(
            node,
            &self.target.data_dir(node),
            &self.target.tls_dir(node),
        )
    }

    fn probe(&self, weir: &Path) -> Result<Probe> {
        Probe::new(&self.inventory, weir)
    }

    fn plan(&self) -> Result<()> {
        let binary = self.planned_binary();
        let built = binary.is_file();
        println!(
            "cluster {} ({} nodes, target {:?}), binary {}{}",
            self.inventory.cluster.id,
            self.inventory.nodes.len(),
            self.inventory.cluster.target,
            binary.display(),
            if built { "" } else { " (to be built)" }
        );
        for node in &self.inventory.nodes {
            let config = self
                .render(node)
                .with_context(|| format!("{}: render", who(node)))?;
            let observed = if built {
                (self.target.observe(node, &binary))
                    .with_context(|| format!("{}: observe", who(node)))?
            } else {
                Observed {
                    binary_same: None,
                    config: None,
                    running: (self.target.running(node))
                        .with_context(|| format!("{}: observe", who(node)))?,
                }
            };
            let steps = planned_steps(&observed, &config);
            let rack = node.rack.as_deref().unwrap_or("-");
            println!(
                "{} rack {rack} at {}: {}",
                who(node),
                self.target.where_is(node),
                steps.join(", ")
            );
        }
        Ok(())
    }

    fn apply(&self) -> Result<()> {
        let binary = self.binary()?;
        let tls_missing = (self.inventory.nodes.iter())
            .flat_map(|n| self.inventory.tls_files(n))
            .find(|(path, _)| !path.is_file());
        if let Some((path, _)) = tls_missing {
            bail!("tls: {} does not exist", path.display());
        }
        for node in &self.inventory.nodes {
            let at = who(node);
            let config = self.render(node).with_context(|| format!("{at}: render"))?;
            let observed =
                (self.target.observe(node, &binary)).with_context(|| format!("{at}: observe"))?;
            if observed.running {
                if observed.binary_same != Some(true) || observed.config.as_ref() != Some(&config) {
                    println!(
                        "{at}: running with another binary or config; `deploy upgrade` rolls it"
                    );
                } else {
                    println!("{at}: running, up to date");
                }
                continue;
            }
            if observed.binary_same != Some(true) {
                (self.target.install_binary(node, &binary))
                    .with_context(|| format!("{at}: install binary"))?;
            }
            let files = self.inventory.tls_files(node);
            (self.target.install_files(node, &config, &files))
                .with_context(|| format!("{at}: install config"))?;
            self.target
                .start(node)
                .with_context(|| format!("{at}: start"))?;
            println!("{at}: started ({})", self.target.where_is(node));
        }
        // Nodes wait for each other (a quorum must form), so readiness is waited for once
        // all are started.
        let probe = self.probe(&binary)?;
        for node in &self.inventory.nodes {
            self.wait_ready(&probe, node)
                .with_context(|| format!("{}: wait for /readyz", who(node)))?;
            println!("{}: ready", who(node));
        }
        println!("cluster {} is up", self.inventory.cluster.id);
        Ok(())
    }

    /// Polls the node's readiness until it is ready, its process dies, or the timeout.
    fn wait_ready(&self, probe: &Probe, node: &NodeSpec) -> Result<()> {
        let timeout = Duration::from_secs(self.inventory.timeouts.ready_s);
        let deadline = Instant::now() + timeout;
        let mut last = Readiness::Unreachable(String::from("not asked yet"));
        while Instant::now() < deadline {
            if !self.target.running(node)? {
                bail!("the process exited; {}", self.target.log_tail(node));
            }
            last = probe.readiness(node);
            if last == Readiness::Ready {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
        bail!(
            "not ready after {}s (last answer: {last}); {}",
            timeout.as_secs(),
            self.target.log_tail(node)
        )
    }

    /// Waits until the cluster reports no under-replicated and no offline partition.
    fn wait_in_sync(&self, probe: &Probe, timeout: Duration) -> Result<ClusterView> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no broker answered");
        while Instant::now() < deadline {
            match probe.cluster() {
                Ok(view) if view.under_replicated() == 0 && view.offline() == 0 => return Ok(view),
                Ok(view) => {
                    last = format!(
                        "{} under-replicated, {} offline partitions (e.g. {})",
                        view.under_replicated(),
                        view.offline(),
                        view.lagging(5).join(", ")
                    );
                }
                Err(error) => last = format!("{error:#}"),
            }
            std::thread::sleep(POLL);
        }
        bail!("still {last} after {}s", timeout.as_secs())
    }

    fn status(&self) -> Result<bool> {
        let weir = self.cli_binary()?;
        let probe = self.probe(&weir)?;
        let view = probe.cluster();
        let mut healthy = true;
        for node in &self.inventory.nodes {
            let up = self.target.running(node).unwrap_or(false);
            let live = probe.healthz(node);
            let ready = probe.readiness(node);
            let version = self.target.version(node).unwrap_or_else(|| "-".into());
            let (registered, controller, under, offline) = match &view {
                Ok(v) => (
                    yes_no(v.brokers.contains(&node.id)),
                    yes_no(v.controller == node.id),
                    v.under_replicated_led_by(node.id).to_string(),
                    v.offline_on(node.id).to_string(),
                ),
                Err(_) => ("?", "?", "?".into(), "?".into()),
            };
            healthy &= up && ready == Readiness::Ready;
            println!(
                "Node: {}\tHost: {}\tUp: {}\tAlive: {}\tReady: {ready}\tRegistered: {registered}\t\
                 Controller: {controller}\tUnderReplicated: {under}\tOffline: {offline}\t\
                 Version: {version}",
                node.id,
                node.host,
                yes_no(up),
                yes_no(live),
            );
        }
        match view {
            Ok(v) => {
                healthy &= v.under_replicated() == 0 && v.offline() == 0;
                healthy &= v.brokers.len() == self.inventory.brokers().count();
                println!(
                    "Cluster: {}\tControllerId: {}\tBrokers: {}/{}\tPartitions: {}\t\
                     UnderReplicated: {}\tOffline: {}",
                    self.inventory.cluster.id,
                    v.controller,
                    v.brokers.len(),
                    self.inventory.brokers().count(),
                    v.partitions.len(),
                    v.under_replicated(),
                    v.offline()
                );
            }
            Err(error) => {
                healthy = false;
                println!(
                    "Cluster: {}\tunreachable: {error:#}",
                    self.inventory.cluster.id
                );
            }
        }
        Ok(healthy)
    }

    /// The `weir` binary whose CLI asks the cluster (`--binary`, else the release build);
    /// status builds nothing, so a missing binary is an error.
    fn cli_binary(&self) -> Result<PathBuf> {
        let binary = self.planned_binary();
        if binary.is_file() {
            return Ok(binary);
        }
        bail!(
            "status asks the brokers with the weir CLI, and {} does not exist (build it or \
             pass --binary)",
            binary.display()
        )
    }

    fn upgrade(&self) -> Result<()> {
        let binary = self.binary()?;
        let probe = self.probe(&binary)?;
        let isr_timeout = Duration::from_secs(self.inventory.timeouts.isr_s);
        let stop_timeout = Duration::from_secs(self.inventory.timeouts.stop_s);
        for node in &self.inventory.nodes {
            if !self.target.running(node)? {
                bail!(
                    "{}: upgrade: not running (run `deploy apply` first)",
                    who(node)
                );
            }
        }
        let view = (self.wait_in_sync(&probe, isr_timeout))
            .context("upgrade: the cluster must have no under-replicated partition first")?;
        // The active controller goes last: one controller election instead of several.
        let mut order: Vec<&NodeSpec> = self.inventory.nodes.iter().collect();
        order.sort_by_key(|n| (n.id == view.controller, n.id));
        let started = Instant::now();
        for node in order {
            let at = who(node);
            let step_started = Instant::now();
            (self.wait_in_sync(&probe, isr_timeout))
                .with_context(|| format!("{at}: wait for in-sync replicas before the restart"))?;
            (self.target.stop(node, stop_timeout))
                .with_context(|| format!("{at}: stop (SIGTERM, controlled shutdown)"))?;
            let stopped = step_started.elapsed();
            (self.target.install_binary(node, &binary))
                .with_context(|| format!("{at}: install binary"))?;
            let config = self.render(node).with_context(|| format!("{at}: render"))?;
            (self
                .target
                .install_files(node, &config, &self.inventory.tls_files(node)))
            .with_context(|| format!("{at}: install config"))?;
            self.target
                .start(node)
                .with_context(|| format!("{at}: start"))?;
            self.wait_ready(&probe, node)
                .with_context(|| format!("{at}: wait for /readyz"))?;
            let ready = step_started.elapsed();
            (self.wait_in_sync(&probe, isr_timeout))
                .with_context(|| format!("{at}: wait for the ISR to refill"))?;
            let moved = (probe.elect_preferred_leaders())
                .with_context(|| format!("{at}: preferred leader election"))?;
            println!(
                "{at}: upgraded (stopped in {:.1?}, ready after {:.1?}, in sync after {:.1?}, \
                 {moved} leaderships moved back); version {}",
                stopped,
                ready,
                step_started.elapsed(),
                self.target.version(node).unwrap_or_else(|| "-".into())
            );
        }
        println!(
            "cluster {} upgraded in {:.1?}",
            self.inventory.cluster.id,
            started.elapsed()
        );
        // Finalizing a new metadata.version ends the way back, so it stays the operator's
        // step (docs/deploy.md, "Upgrade and rollback").
        println!(
            "metadata.version is unchanged (rollback stays possible): `weir features \
             describe` shows whether this build supports a higher one, `weir features \
             upgrade --metadata N` finalizes it"
        );
        Ok(())
    }

    fn stop(&self) -> Result<()> {
        let timeout = Duration::from_secs(self.inventory.timeouts.stop_s);
        let mut first_error = None;
        // Controllers last: the brokers' controlled shutdowns need a controller.
        let mut order: Vec<&NodeSpec> = self.inventory.nodes.iter().collect();
        order.sort_by_key(|n| (n.roles.contains(&inventory::Role::Controller), n.id));
        for node in order {
            match self.target.stop(node, timeout) {
                Ok(()) => println!("{}: stopped", who(node)),
                Err(error) => {
                    let error = error.context(format!("{}: stop", who(node)));
                    eprintln!("{error:#}");
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            None => Ok(()),
            Some(error) => Err(error),
        }
    }

    fn destroy(&self) -> Result<()> {
        let timeout = Duration::from_secs(self.inventory.timeouts.stop_s);
        for node in &self.inventory.nodes {
            let at = who(node);
            if let Err(error) = self.target.stop(node, timeout) {
                eprintln!("{at}: stop failed ({error:#}); killing it");
                self.target
                    .kill(node)
                    .with_context(|| format!("{at}: kill"))?;
            }
            self.target
                .destroy(node)
                .with_context(|| format!("{at}: destroy"))?;
            println!("{at}: destroyed ({})", self.target.where_is(node));
        }
        Ok(())
    }
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

/// What apply would do to a node in the `observed` state to run `config`.
fn planned_steps(observed: &Observed, config: &str) -> Vec<String> {
    let binary_differs = observed.binary_same != Some(true);
    let config_differs = observed.config.as_deref() != Some(config);
    if observed.running {
        return vec![if binary_differs || config_differs {
            "running an older binary or config: `deploy upgrade` restarts it".to_owned()
        } else {
            "running, up to date: nothing to do".to_owned()
        }];
    }
    let mut steps = Vec::new();
    match observed.binary_same {
        None => steps.push("install binary".to_owned()),
        Some(false) => steps.push("replace binary".to_owned()),
        Some(true) => {}
    }
    if config_differs {
        steps.push(
            if observed.config.is_none() {
                "write config"
            } else {
                "rewrite config"
            }
            .to_owned(),
        );
    }
    steps.push("start".to_owned());
    steps
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the workspace) or `target/`.
fn target_dir() -> PathBuf {
    let root = project_root();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// Whether two files have the same bytes (length first, then chunk by chunk).
pub(crate) fn same_file_contents(a: &Path, b: &Path) -> Result<bool> {
    let open =
        |p: &Path| std::fs::File::open(p).with_context(|| format!("opening {}", p.display()));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (la, lb) = (fa.metadata()?.len(), fb.metadata()?.len());
    if la != lb {
        return Ok(false);
    }
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])
            .map_err(|e| anyhow!("reading {}: {e}", b.display()))?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_only_what_is_left() {
        let fresh = Observed {
            binary_same: None,
            config: None,
            running: false,
        };
        assert_eq!(
            planned_steps(&fresh, "c"),
            ["install binary", "write config", "start"]
        );
        let half = Observed {
            binary_same: Some(true),
            config: Some("c".into()),
            running: false,
        };
        assert_eq!(planned_steps(&half, "c"), ["start"]);
        let stale = Observed {
            binary_same: Some(false),
            config: Some("old".into()),
            running: true,
        };
        assert!(planned_steps(&stale, "c")[0].contains("deploy upgrade"));
    }

    #[test]
    fn compares_file_contents() {
        let dir = std::env::temp_dir().join(format!("xtask-deploy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
        std::fs::write(&a, vec![7u8; 3 << 20]).expect("write");
        std::fs::write(&b, vec![7u8; 3 << 20]).expect("write");
        let mut other = vec![7u8; 3 << 20];
        other[(3 << 20) - 1] = 8;
        std::fs::write(&c, other).expect("write");
        assert!(same_file_contents(&a, &b).expect("compare"));
        assert!(!same_file_contents(&a, &c).expect("compare"));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
