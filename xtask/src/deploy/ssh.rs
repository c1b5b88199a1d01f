//! The `ssh` target: each node on a host reached with the system's OpenSSH client (`ssh`,
//! keys and `~/.ssh/config` from the usual places, plus the inventory's `[ssh]` options).
//! Files travel over the same connection (streamed to `cat`, then renamed into place, so a
//! running process keeps its binary); every remote step is one POSIX `sh` script.
//!
//! Supervision, chosen per host at install time and recorded in `DIR/supervisor`:
//! - `systemd` (the host runs systemd, `/run/systemd/system` exists): a unit
//!   `weir-node<ID>.service` (Restart=on-failure, LimitNOFILE, the node's own data dir,
//!   TimeoutStopSec above deploy's stop timeout) in /etc/systemd/system, enabled, managed
//!   with systemctl; logs in the journal.
//! - `fallback` (no systemd): `DIR/supervise.sh`, started detached with setsid/nohup,
//!   restarts the broker when it exits non-zero (Restart=on-failure's rule) after 2 s,
//!   forwards SIGTERM to it and exits with it; pid files `DIR/supervisor.pid` and
//!   `DIR/weir.pid`, log `DIR/weir.log`. It does not survive a reboot: hosts without
//!   systemd need their own init to start it (docs/deploy.md).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::inventory::{Inventory, NodeSpec, SshSection, Supervisor};
use super::{Observed, Target};

/// Bound of one ssh connection attempt, seconds.
const CONNECT_TIMEOUT_S: u32 = 10;
/// How long the fallback supervisor waits before restarting a failed broker.
const RESTART_DELAY_S: u32 = 2;
/// Open files allowed to a broker.
const NOFILE: u32 = 65536;

/// The ssh target.
pub(crate) struct Ssh {
    section: SshSection,
    cluster_id: String,
    stop_s: u64,
    /// Per node: (remote dir, remote data dir).
    dirs: BTreeMap<i32, (String, String)>,
    identity: Option<PathBuf>,
    /// sha256 of local files already hashed.
    digests: RefCell<BTreeMap<PathBuf, String>>,
}

/// `'text'` for sh, with embedded quotes escaped.
pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The node's systemd unit.
pub(crate) fn render_unit(
    cluster_id: &str,
    node: &NodeSpec,
    dir: &str,
    data: &str,
    section: &SshSection,
    stop_s: u64,
) -> String {
    let user = match &section.service_user {
        Some(user) => format!("User={user}\nGroup={user}\n"),
        None => String::new(),
    };
    format!(
        "# Weir node {id} of cluster {cluster_id}, rendered by `cargo xtask deploy`.\n\
         [Unit]\n\
         Description=Weir broker node {id} (cluster {cluster_id})\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         {user}\
         WorkingDirectory={dir}\n\
         ExecStart={dir}/weir serve --config {dir}/weir.toml\n\
         Restart=on-failure\n\
         RestartSec={RESTART_DELAY_S}\n\
         LimitNOFILE={NOFILE}\n\
         KillSignal=SIGTERM\n\
         TimeoutStopSec={stop}\n\
         ProtectSystem=full\n\
         ReadWritePaths={dir} {data}\n\
         NoNewPrivileges=yes\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        id = node.id,
        stop = stop_s + 10,
    )
}

/// The fallback supervisor script (hosts without systemd).
pub(crate) fn render_supervisor(node: &NodeSpec) -> String {
    format!(
        r#"#!/bin/sh
# Weir node {id}: fallback supervisor for hosts without systemd, rendered by
# `cargo xtask deploy`. Restarts the broker when it exits non-zero (like systemd's
# Restart=on-failure), forwards SIGTERM to it and then exits. Start it detached:
#   setsid nohup sh supervise.sh >> weir.log 2>&1 < /dev/null &
d=$(cd "$(dirname "$0")" && pwd)
echo $$ > "$d/supervisor.pid"
# LimitNOFILE's counterpart: {NOFILE}, or as close as the hard limit allows.
ulimit -n {NOFILE} 2>/dev/null || ulimit -n "$(ulimit -H -n)" 2>/dev/null
stopping=0
child=0
trap 'stopping=1; [ "$child" -gt 0 ] && kill -TERM "$child" 2>/dev/null' TERM INT
while :; do
  "$d/weir" serve --config "$d/weir.toml" &
  child=$!
  echo "$child" > "$d/weir.pid"
  wait "$child"
  status=$?
  # A trapped signal interrupts wait: wait again for the broker's own exit.
  while kill -0 "$child" 2>/dev/null; do wait "$child"; status=$?; done
  rm -f "$d/weir.pid"
  if [ "$stopping" = 1 ] || [ "$status" = 0 ]; then break; fi
  echo "supervisor: weir exited with status $status; restarting in {RESTART_DELAY_S} s" >&2
  sleep {RESTART_DELAY_S}
  [ "$stopping" = 1 ] && break
done
rm -f "$d/supervisor.pid"
"#,
        id = node.id
    )
}

impl Ssh {
    pub(crate) fn new(inventory: &Inventory) -> Result<Ssh> {
        let section = inventory.ssh.clone().unwrap_or_default();
        let dirs = (inventory.nodes.iter())
            .map(|node| {
                let dir = section.dir.replace("{id}", &node.id.to_string());
                let data = match &node.data_dir {
                    Some(path) if path.is_absolute() => path.display().to_string(),
                    Some(path) => format!("{dir}/{}", path.display()),
                    None => format!("{dir}/data"),
                };
                (node.id, (dir, data))
            })
            .collect();
        let identity = section.identity_file.as_ref().map(|p| inventory.resolve(p));
        Ok(Ssh {
            section,
            cluster_id: inventory.cluster.id.clone(),
            stop_s: inventory.timeouts.stop_s,
            dirs,
            identity,
            digests: RefCell::new(BTreeMap::new()),
        })
    }

    fn dirs(&self, node: &NodeSpec) -> (String, String) {
        self.dirs
            .get(&node.id)
            .cloned()
            .unwrap_or_else(|| (format!("/opt/weir/node{}", node.id), String::new()))
    }

    fn unit(node: &NodeSpec) -> String {
        format!("weir-node{}.service", node.id)
    }

    fn destination(&self, node: &NodeSpec) -> String {
        match &self.section.user {
            Some(user) => format!("{user}@{}", node.host),
            None => node.host.clone(),
        }
    }

    fn ssh(&self, node: &NodeSpec) -> Command {
        let mut command = Command::new("ssh");
        command
            .args(["-o", "BatchMode=yes"])
            .args(["-o", &format!("ConnectTimeout={CONNECT_TIMEOUT_S}")]);
        if let Some(port) = self.section.port {
            command.args(["-p", &port.to_string()]);
        }
        if let Some(identity) = &self.identity {
            command.arg("-i").arg(identity);
        }
        for option in &self.section.options {
            command.args(["-o", option]);
        }
        command.arg(self.destination(node)).arg("--");
        command
    }

    /// The shell prelude every script starts with: the node's paths and helpers.
    fn prelude(&self, node: &NodeSpec) -> String {
        let (dir, data) = self.dirs(node);
        format!(
            r#"set -u
d={dir}; data={data}; unit={unit}
mode=$(cat "$d/supervisor" 2>/dev/null || echo none)
alive() {{
  [ -n "$1" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' < "/proc/$1/cmdline" | grep -qF "$2"
}}
weir_pid() {{
  case $mode in
    systemd)
      p=$(systemctl show -p MainPID --value "$unit" 2>/dev/null)
      [ "$p" != 0 ] && echo "$p";;
    *) cat "$d/weir.pid" 2>/dev/null;;
  esac
}}
is_running() {{ alive "$(weir_pid)" "$d/weir.toml"; }}
sup_running() {{ alive "$(cat "$d/supervisor.pid" 2>/dev/null)" "$d/supervise.sh"; }}
"#,
            dir = quote(&dir),
            data = quote(&data),
            unit = quote(&Ssh::unit(node)),
        )
    }

    /// Runs `script` (after the prelude) on the node's host; its stdout.
    fn run(&self, node: &NodeSpec, script: &str, stdin: Option<&[u8]>) -> Result<String> {
        let full = format!("{}{script}", self.prelude(node));
        let remote = if self.section.sudo {
            format!("sudo -n sh -c {}", quote(&full))
        } else {
            format!("sh -c {}", quote(&full))
        };
        let mut command = self.ssh(node);
        command
            .arg(remote)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().context("running ssh")?;
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(bytes).context("sending over ssh")?;
        }
        let output = child.wait_with_output().context("waiting for ssh")?;
        if !output.status.success() {
            bail!(
                "ssh {}: {} ({})",
                self.destination(node),
                String::from_utf8_lossy(&output.stderr).trim(),
                output.status
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Writes `bytes` to `path` (mode `mode`) through a temporary file and a rename.
    fn upload(&self, node: &NodeSpec, bytes: &[u8], path: &str, mode: &str) -> Result<()> {
        let script = format!(
            "p={path}; mkdir -p \"$(dirname \"$p\")\" && cat > \"$p.new\" \
             && chmod {mode} \"$p.new\" && mv \"$p.new\" \"$p\"\n",
            path = quote(path),
        );
        self.run(node, &script, Some(bytes))
            .with_context(|| format!("writing {path}"))
            .map(drop)
    }

    fn local_digest(&self, path: &Path) -> Result<String> {
        if let Some(digest) = self.digests.borrow().get(path) {
            return Ok(digest.clone());
        }
        let output = Command::new("sha256sum")
            .arg(path)
            .output()
            .context("running sha256sum")?;
        if !output.status.success() {
            bail!("sha256sum {} failed", path.display());
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let digest = text.split_whitespace().next().unwrap_or("").to_owned();
        self.digests
            .borrow_mut()
            .insert(path.to_path_buf(), digest.clone());
        Ok(digest)
    }
}

impl Target for Ssh {
    fn where_is(&self, node: &NodeSpec) -> String {
        format!("{}:{}", self.destination(node), self.dirs(node).0)
    }

    fn data_dir(&self, node: &NodeSpec) -> String {
        self.dirs(node).1
    }

    fn tls_dir(&self, node: &NodeSpec) -> String {
        format!("{}/tls", self.dirs(node).0)
    }

    fn observe(&self, node: &NodeSpec, binary: &Path) -> Result<Observed> {
        let script = r#"
[ -f "$d/weir" ] && echo "binary $(sha256sum < "$d/weir" | cut -d' ' -f1)"
[ -f "$d/weir.toml" ] && echo "config $(base64 -w0 < "$d/weir.toml")"
is_running && echo running
exit 0
"#;
        let text = self.run(node, script, None)?;
        let mut observed = Observed {
            binary_same: None,
            config: None,
            running: false,
        };
        for line in text.lines() {
            if let Some(digest) = line.strip_prefix("binary ") {
                observed.binary_same = Some(digest.trim() == self.local_digest(binary)?);
            } else if let Some(encoded) = line.strip_prefix("config ") {
                observed.config = Some(decode_base64(encoded.trim())?);
            } else if line == "running" {
                observed.running = true;
            }
        }
        Ok(observed)
    }

    fn install_binary(&self, node: &NodeSpec, binary: &Path) -> Result<()> {
        let bytes =
            std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
        let path = format!("{}/weir", self.dirs(node).0);
        self.upload(node, &bytes, &path, "755")
    }

    fn install_files(&self, node: &NodeSpec, config: &str, tls: &[(PathBuf, &str)]) -> Result<()> {
        let (dir, data) = self.dirs(node);
        for (source, name) in tls {
            let bytes =
                std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
            self.upload(node, &bytes, &format!("{dir}/tls/{name}"), "600")?;
        }
        self.upload(node, config.as_bytes(), &format!("{dir}/weir.toml"), "644")?;
        let supervise = render_supervisor(node);
        self.upload(
            node,
            supervise.as_bytes(),
            &format!("{dir}/supervise.sh"),
            "755",
        )?;
        let unit = render_unit(
            &self.cluster_id,
            node,
            &dir,
            &data,
            &self.section,
            self.stop_s,
        );
        let owner = match &self.section.service_user {
            Some(user) => format!("chown -R {u}:{u} \"$data\" \"$d\"\n", u = quote(user)),
            None => String::new(),
        };
        let choose = match self.section.supervisor {
            Supervisor::Auto => {
                "if [ -d /run/systemd/system ]; then m=systemd; else m=fallback; fi"
            }
            Supervisor::Systemd => "m=systemd",
            Supervisor::Fallback => "m=fallback",
        };
        let script = format!(
            "mkdir -p \"$data\"\n{owner}{choose}\n\
             if [ \"$m\" = systemd ]; then\n\
               cat > \"/etc/systemd/system/$unit\" <<'WEIR_UNIT'\n{unit}WEIR_UNIT\n\
               systemctl daemon-reload && systemctl enable --quiet \"$unit\"\n\
             fi\n\
             echo \"$m\" > \"$d/supervisor\"\n"
        );
        self.run(node, &script, None).map(drop)
    }

    fn start(&self, node: &NodeSpec) -> Result<()> {
        let script = r#"
case $mode in
  systemd) systemctl start "$unit";;
  fallback)
    is_running || sup_running ||
      (cd "$d" && setsid nohup sh "$d/supervise.sh" >> "$d/weir.log" 2>&1 < /dev/null &);;
  *) echo "not installed (no $d/supervisor)" >&2; exit 1;;
esac
"#;
        self.run(node, script, None).map(drop)
    }

    fn running(&self, node: &NodeSpec) -> Result<bool> {
        let text = self.run(node, "is_running && echo running; exit 0\n", None)?;
        Ok(text.lines().any(|l| l == "running"))
    }

    fn stop(&self, node: &NodeSpec, timeout: Duration) -> Result<()> {
        let tenths = timeout.as_millis() / 100;
        let script = format!(
            r#"
case $mode in
  systemd)
    timeout {secs} systemctl stop "$unit" ||
      {{ echo "systemctl stop did not finish in {secs}s" >&2; exit 3; }};;
  fallback)
    if sup_running; then kill -TERM "$(cat "$d/supervisor.pid")"
    elif is_running; then kill -TERM "$(weir_pid)"; fi
    n=0
    while is_running || sup_running; do
      n=$((n + 1))
      [ $n -gt {tenths} ] && {{ echo "still running {secs}s after SIGTERM" >&2; exit 3; }}
      sleep 0.1
    done;;
esac
exit 0
"#,
            secs = timeout.as_secs(),
        );
        self.run(node, &script, None).map(drop)
    }

    fn kill(&self, node: &NodeSpec) -> Result<()> {
        let script = r#"
case $mode in
  systemd) systemctl kill -s KILL "$unit" 2>/dev/null; systemctl stop "$unit" 2>/dev/null;;
  *)
    sup_running && kill -KILL "$(cat "$d/supervisor.pid")"
    is_running && kill -KILL "$(weir_pid)";;
esac
exit 0
"#;
        self.run(node, script, None).map(drop)
    }

    fn destroy(&self, node: &NodeSpec) -> Result<()> {
        let script = r#"
if [ "$mode" = systemd ]; then
  systemctl disable --quiet "$unit" 2>/dev/null
  rm -f "/etc/systemd/system/$unit"; systemctl daemon-reload
fi
rm -rf "$data" "$d"
"#;
        self.run(node, script, None).map(drop)
    }

    fn version(&self, node: &NodeSpec) -> Option<String> {
        let script = "is_running && \"/proc/$(weir_pid)/exe\" --version\nexit 0\n";
        let text = self.run(node, script, None).ok()?;
        let version = text.trim();
        (!version.is_empty()).then(|| version.to_owned())
    }

    fn log_tail(&self, node: &NodeSpec) -> String {
        let script = r#"
if [ "$mode" = systemd ]; then journalctl -u "$unit" -n 15 --no-pager 2>&1
else echo "log $d/weir.log:"; tail -n 15 "$d/weir.log" 2>&1; fi
exit 0
"#;
        self.run(node, script, None)
            .unwrap_or_else(|error| format!("(no log: {error:#})"))
    }
}

/// Standard base64 (what `base64 -w0` prints) to text.
fn decode_base64(text: &str) -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for byte in text.bytes().filter(|b| *b != b'=') {
        let value = ALPHABET
            .iter()
            .position(|a| *a == byte)
            .context("not base64")?;
        bits = (bits << 6) | value as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    String::from_utf8(out).context("config is not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeSpec {
        let text = r#"
            id = 2
            host = "10.0.0.2"
            listeners = "PLAINTEXT://0.0.0.0:9092"
            controller_listener = "10.0.0.2:19092"
            metrics_listener = "10.0.0.2:9192"
        "#;
        toml::from_str(text).expect("node")
    }

    #[test]
    fn quotes_for_sh() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn decodes_base64() {
        assert_eq!(decode_base64("aGVsbG8K").expect("b64"), "hello\n");
        assert_eq!(decode_base64("YQ==").expect("b64"), "a");
        assert!(decode_base64("a*b").is_err());
    }

    #[test]
    fn unit_restarts_on_failure_with_its_data_dir() {
        let section = SshSection {
            service_user: Some("weir".into()),
            ..SshSection::default()
        };
        let unit = render_unit("c1", &node(), "/opt/weir", "/var/lib/weir", &section, 60);
        for line in [
            "ExecStart=/opt/weir/weir serve --config /opt/weir/weir.toml",
            "Restart=on-failure",
            "LimitNOFILE=65536",
            "TimeoutStopSec=70",
            "ReadWritePaths=/opt/weir /var/lib/weir",
            "User=weir",
        ] {
            assert!(unit.lines().any(|l| l == line), "{line} in\n{unit}");
        }
    }

    /// `systemd-analyze verify` accepts the rendered unit (warnings count as failures).
    /// The CI install step provides systemd-analyze (Debian package `systemd`).
    #[test]
    fn systemd_analyze_verifies_the_unit() {
        let dir = std::env::temp_dir().join(format!("xtask-unit-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).expect("temp dir");
        // ExecStart must name an executable: any will do for the verifier.
        std::fs::copy("/bin/true", dir.join("weir")).expect("copy /bin/true");
        let dir_text = dir.display().to_string();
        let data = format!("{dir_text}/data");
        let unit = render_unit("c1", &node(), &dir_text, &data, &SshSection::default(), 60);
        let path = dir.join("weir-node2.service");
        std::fs::write(&path, unit).expect("write unit");
        let output = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("systemd-analyze (apt-get install systemd) runs");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert!(output.status.success() && said.trim().is_empty(), "{said}");
    }

    #[test]
    fn supervisor_script_parses() {
        let script = render_supervisor(&node());
        let status = Command::new("sh")
            .arg("-n")
            .stdin(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                child
                    .stdin
                    .take()
                    .map(|mut pipe| pipe.write_all(script.as_bytes()))
                    .transpose()?;
                child.wait()
            })
            .expect("sh -n");
        assert!(status.success());
        assert!(script.contains("Restart=on-failure"));
    }
}
