//! The `local` target: every node a background process on this machine, as the ssh target
//! would run it on a host, so deploy's plan/apply/status/upgrade/stop/destroy can be tried
//! (and tested) without any host.
//!
//! Node N lives in `DIR/nodeN/`: `weir` (its own copy of the binary, replaced by rename so
//! a running process keeps its old one), `weir.toml`, `tls/`, `weir.pid`, `weir.log`
//! (appended across restarts) and `data/` (unless the node names another data dir).
//! Processes are started in their own process group, so a Ctrl-C of the command that
//! started them does not reach them; a pid counts as the node only while the process is
//! alive (not a zombie) and runs `serve --config` with this node's config file, so a
//! recycled pid is never signalled.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::inventory::{Inventory, NodeSpec};
use super::{same_file_contents, Observed, Target};

/// How often a stopping process is looked at.
const POLL: Duration = Duration::from_millis(50);
/// How long `start` waits for a new process to show its command line (see there).
const START_VISIBLE: Duration = Duration::from_secs(5);

/// The local target over the inventory's `[local] dir`.
pub(crate) struct Local {
    dir: PathBuf,
    data_dirs: Vec<(i32, PathBuf)>,
}

impl Local {
    pub(crate) fn new(inventory: &Inventory) -> Result<Local> {
        let section = inventory
            .local
            .as_ref()
            .context("target \"local\" needs a [local] section")?;
        let dir = inventory.resolve(&section.dir);
        let data_dirs = (inventory.nodes.iter())
            .map(|node| {
                let node_dir = dir.join(format!("node{}", node.id));
                let data = match &node.data_dir {
                    Some(path) if path.is_absolute() => path.clone(),
                    Some(path) => node_dir.join(path),
                    None => node_dir.join("data"),
                };
                (node.id, data)
            })
            .collect();
        Ok(Local { dir, data_dirs })
    }

    fn node_dir(&self, node: &NodeSpec) -> PathBuf {
        self.dir.join(format!("node{}", node.id))
    }

    fn binary(&self, node: &NodeSpec) -> PathBuf {
        self.node_dir(node).join("weir")
    }

    fn config(&self, node: &NodeSpec) -> PathBuf {
        self.node_dir(node).join("weir.toml")
    }

    fn pid_file(&self, node: &NodeSpec) -> PathBuf {
        self.node_dir(node).join("weir.pid")
    }

    fn log(&self, node: &NodeSpec) -> PathBuf {
        self.node_dir(node).join("weir.log")
    }

    fn data(&self, node: &NodeSpec) -> PathBuf {
        (self.data_dirs.iter())
            .find(|(id, _)| *id == node.id)
            .map_or_else(|| self.node_dir(node).join("data"), |(_, d)| d.clone())
    }

    /// The node's live pid, if its pid file names a live process running its config.
    fn live_pid(&self, node: &NodeSpec) -> Option<u32> {
        let text = std::fs::read_to_string(self.pid_file(node)).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The state follows the parenthesised command name: "PID (comm) S ...".
        let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start())?;
        if state.starts_with('Z') || state.starts_with('X') {
            return None;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let config = self.config(node);
        let ours = cmdline
            .split(|b| *b == 0)
            .any(|arg| Path::new(std::ffi::OsStr::from_bytes(arg)) == config);
        ours.then_some(pid)
    }

    /// True when `pid` is gone or a zombie.
    fn exited(pid: u32) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return true;
        };
        let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
        state.is_none_or(|s| s.starts_with('Z') || s.starts_with('X'))
    }

    fn signal(pid: u32, signal: &str) -> Result<()> {
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill {signal} {pid} failed ({status})");
        }
        Ok(())
    }
}

impl Target for Local {
    fn where_is(&self, node: &NodeSpec) -> String {
        self.node_dir(node).display().to_string()
    }

    fn data_dir(&self, node: &NodeSpec) -> String {
        self.data(node).display().to_string()
    }

    fn tls_dir(&self, node: &NodeSpec) -> String {
        self.node_dir(node).join("tls").display().to_string()
    }

    fn observe(&self, node: &NodeSpec, binary: &Path) -> Result<Observed> {
        let installed = self.binary(node);
        let binary_same = if installed.exists() {
            Some(same_file_contents(&installed, binary)?)
        } else {
            None
        };
        Ok(Observed {
            binary_same,
            config: std::fs::read_to_string(self.config(node)).ok(),
            running: self.live_pid(node).is_some(),
        })
    }

    fn install_binary(&self, node: &NodeSpec, binary: &Path) -> Result<()> {
        let dir = self.node_dir(node);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Copy beside, then rename: a running process keeps executing the old inode.
        let staged = dir.join("weir.new");
        std::fs::copy(binary, &staged)
            .with_context(|| format!("copying {} to {}", binary.display(), staged.display()))?;
        std::fs::rename(&staged, self.binary(node)).context("replacing the binary")?;
        Ok(())
    }

    fn install_files(&self, node: &NodeSpec, config: &str, tls: &[(PathBuf, &str)]) -> Result<()> {
        let dir = self.node_dir(node);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let data = self.data(node);
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        if !tls.is_empty() {
            let tls_dir = dir.join("tls");
            std::fs::create_dir_all(&tls_dir)
                .with_context(|| format!("creating {}", tls_dir.display()))?;
            for (source, name) in tls {
                std::fs::copy(source, tls_dir.join(name))
                    .with_context(|| format!("copying {}", source.display()))?;
            }
        }
        let staged = dir.join("weir.toml.new");
        std::fs::write(&staged, config).with_context(|| format!("writing {}", staged.display()))?;
        std::fs::rename(&staged, self.config(node)).context("replacing weir.toml")?;
        Ok(())
    }

    fn start(&self, node: &NodeSpec) -> Result<()> {
        use std::os::unix::process::CommandExt;
        if self.live_pid(node).is_some() {
            return Ok(());
        }
        let log_path = self.log(node);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let child = Command::new(self.binary(node))
            .arg("serve")
            .arg("--config")
            .arg(self.config(node))
            .current_dir(self.node_dir(node))
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("log file handle")?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", self.binary(node).display()))?;
        // The child is left running: it outlives this command (a zombie only until then
        // if it dies early, which live_pid treats as dead).
        let pid_file = self.pid_file(node);
        std::fs::write(&pid_file, format!("{}\n", child.id()))
            .with_context(|| format!("writing {}", pid_file.display()))?;
        // `spawn` returns once the exec closed the child's close-on-exec files, which the
        // kernel does before it lays out the new program's arguments: for a moment
        // /proc/PID/cmdline is empty and `live_pid` would call the node not running (a
        // busy machine made "wait for /readyz: the process exited" out of a broker that was
        // starting, and the stop that followed killed it before its SIGTERM handler was
        // installed). Wait until the process shows its command line, or exits.
        let deadline = Instant::now() + START_VISIBLE;
        while self.live_pid(node).is_none() && Instant::now() < deadline {
            if Local::exited(child.id()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    fn running(&self, node: &NodeSpec) -> Result<bool> {
        Ok(self.live_pid(node).is_some())
    }

    fn stop(&self, node: &NodeSpec, timeout: Duration) -> Result<()> {
        let Some(pid) = self.live_pid(node) else {
            let _ = std::fs::remove_file(self.pid_file(node));
            return Ok(());
        };
        Local::signal(pid, "-TERM")?;
        let deadline = Instant::now() + timeout;
        while self.live_pid(node).is_some() {
            if Instant::now() >= deadline {
                bail!(
                    "pid {pid} still running {}s after SIGTERM (controlled shutdown did not \
                     finish); see {}",
                    timeout.as_secs(),
                    self.log(node).display()
                );
            }
            std::thread::sleep(POLL);
        }
        let _ = std::fs::remove_file(self.pid_file(node));
        Ok(())
    }

    fn kill(&self, node: &NodeSpec) -> Result<()> {
        if let Some(pid) = self.live_pid(node) {
            Local::signal(pid, "-KILL")?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.live_pid(node).is_some() && Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
        }
        let _ = std::fs::remove_file(self.pid_file(node));
        Ok(())
    }

    fn destroy(&self, node: &NodeSpec) -> Result<()> {
        for dir in [self.data(node), self.node_dir(node)] {
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
            }
        }
        // The base directory goes with its last node.
        let empty = std::fs::read_dir(&self.dir).is_ok_and(|mut d| d.next().is_none());
        if empty {
            let _ = std::fs::remove_dir(&self.dir);
        }
        Ok(())
    }

    fn version(&self, node: &NodeSpec) -> Option<String> {
        // The binary the process runs (even if replaced on disk since), not the file.
        let pid = self.live_pid(node)?;
        let out = Command::new(format!("/proc/{pid}/exe"))
            .arg("--version")
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn log_tail(&self, node: &NodeSpec) -> String {
        let path = self.log(node);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        format!("log {}:\n{tail}", path.display())
    }
}
