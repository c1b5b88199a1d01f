//! Asking the brokers: `/healthz` and `/readyz` on a node's metrics listener (plain HTTP/1.1
//! over a TCP stream, bounded in time), and the cluster's view through the deployed
//! binary's CLI (`weir cluster describe`, `weir topic describe`, `weir cluster
//! elect-leaders`), each run under coreutils' `timeout` so a hung broker cannot hang deploy.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::inventory::{Inventory, NodeSpec};

/// Bound of one HTTP probe (connect, then the whole answer).
const HTTP_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound of one CLI call, in seconds (coreutils `timeout`).
const CLI_TIMEOUT_S: &str = "20";
/// How long a preferred-leader election is retried (a replica just back may not be in the
/// ISR of every partition the controller looks at yet).
const ELECT_TRIES: usize = 20;

/// A node's readiness as its `/readyz` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// 200.
    Ready,
    /// Another status; the body says why.
    NotReady(String),
    /// No HTTP answer.
    Unreachable(String),
}

impl std::fmt::Display for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Readiness::Ready => write!(f, "yes"),
            Readiness::NotReady(why) => write!(f, "no ({why})"),
            Readiness::Unreachable(why) => write!(f, "no (unreachable: {why})"),
        }
    }
}

/// One partition as Metadata reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionView {
    /// `topic-partition`.
    pub name: String,
    /// Leader id, -1 when none.
    pub leader: i32,
    /// Assigned replicas.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
}

/// The cluster as one broker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterView {
    /// The active controller (-1 when unknown).
    pub controller: i32,
    /// Registered, unfenced brokers.
    pub brokers: BTreeSet<i32>,
    /// Every partition, internal topics included.
    pub partitions: Vec<PartitionView>,
}

impl ClusterView {
    fn is_under_replicated(p: &PartitionView) -> bool {
        p.leader >= 0 && p.isr.len() < p.replicas.len()
    }

    /// Partitions with fewer in-sync replicas than replicas (and a leader).
    pub(crate) fn under_replicated(&self) -> usize {
        (self.partitions.iter())
            .filter(|p| Self::is_under_replicated(p))
            .count()
    }

    /// Partitions without a leader.
    pub(crate) fn offline(&self) -> usize {
        self.partitions.iter().filter(|p| p.leader < 0).count()
    }

    /// Under-replicated partitions node `id` leads (Kafka's per-broker URP count).
    pub(crate) fn under_replicated_led_by(&self, id: i32) -> usize {
        (self.partitions.iter())
            .filter(|p| p.leader == id && Self::is_under_replicated(p))
            .count()
    }

    /// Up to `count` under-replicated or offline partitions, as `topic-p (leader L, isr
    /// I of replicas R)`.
    pub(crate) fn lagging(&self, count: usize) -> Vec<String> {
        (self.partitions.iter())
            .filter(|p| p.leader < 0 || Self::is_under_replicated(p))
            .take(count)
            .map(|p| {
                format!(
                    "{} (leader {}, isr {:?} of replicas {:?})",
                    p.name, p.leader, p.isr, p.replicas
                )
            })
            .collect()
    }

    /// Offline partitions node `id` is a replica of.
    pub(crate) fn offline_on(&self, id: i32) -> usize {
        (self.partitions.iter())
            .filter(|p| p.leader < 0 && p.replicas.contains(&id))
            .count()
    }

    /// Parses `weir cluster describe` and `weir topic describe` output.
    pub(crate) fn parse(cluster: &str, topics: &str) -> Result<ClusterView> {
        let field = |line: &str, key: &str| -> Option<String> {
            (line.split('\t'))
                .filter_map(|f| f.split_once(": "))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_owned())
        };
        let header = cluster
            .lines()
            .next()
            .context("empty cluster description")?;
        let controller = field(header, "ControllerId")
            .and_then(|v| v.parse().ok())
            .context("no ControllerId in the cluster description")?;
        let brokers = (cluster.lines().skip(1))
            .filter_map(|line| field(line, "Broker")?.parse().ok())
            .collect();
        let ids = |text: String| -> Vec<i32> {
            text.split(',')
                .filter_map(|id| id.trim().parse().ok())
                .collect()
        };
        let mut partitions = Vec::new();
        for line in topics.lines().filter(|l| l.starts_with('\t')) {
            let (Some(topic), Some(index), Some(leader)) = (
                field(line, "Topic"),
                field(line, "Partition"),
                field(line, "Leader"),
            ) else {
                continue;
            };
            partitions.push(PartitionView {
                name: format!("{topic}-{index}"),
                leader: leader.parse().unwrap_or(-1),
                replicas: field(line, "Replicas").map(ids).unwrap_or_default(),
                isr: field(line, "Isr").map(ids).unwrap_or_default(),
            });
        }
        Ok(ClusterView {
            controller,
            brokers,
            partitions,
        })
    }
}

/// What the probes need of the inventory, plus the CLI binary.
pub(crate) struct Probe {
    weir: PathBuf,
    /// (node id, Kafka bootstrap, metrics address).
    nodes: Vec<(i32, String, String)>,
    /// `--command-config` for a TLS cluster (written next to the inventory's state).
    command_config: Option<PathBuf>,
}

impl Probe {
    pub(crate) fn new(inventory: &Inventory, weir: &Path) -> Result<Probe> {
        let nodes = (inventory.nodes.iter())
            .map(|n| (n.id, inventory.bootstrap(n), inventory.metrics_address(n)))
            .collect();
        let command_config = match inventory.client_properties() {
            None => None,
            Some(text) => {
                let path = std::env::temp_dir().join(format!(
                    "weir-deploy-{}-{}.properties",
                    inventory.cluster.id,
                    std::process::id()
                ));
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                Some(path)
            }
        };
        Ok(Probe {
            weir: weir.to_path_buf(),
            nodes,
            command_config,
        })
    }

    fn addresses(&self, node: &NodeSpec) -> Option<&(i32, String, String)> {
        self.nodes.iter().find(|(id, _, _)| *id == node.id)
    }

    /// Whether `/healthz` answers 200.
    pub(crate) fn healthz(&self, node: &NodeSpec) -> bool {
        let Some((_, _, metrics)) = self.addresses(node) else {
            return false;
        };
        matches!(http_get(metrics, "/healthz"), Ok((200, _)))
    }

    /// `/readyz`.
    pub(crate) fn readiness(&self, node: &NodeSpec) -> Readiness {
        let Some((_, _, metrics)) = self.addresses(node) else {
            return Readiness::Unreachable("not in the inventory".into());
        };
        match http_get(metrics, "/readyz") {
            Ok((200, _)) => Readiness::Ready,
            Ok((status, body)) => {
                Readiness::NotReady(format!("{status} {}", body.trim().replace('\n', "; ")))
            }
            Err(error) => Readiness::Unreachable(format!("{error:#}")),
        }
    }

    fn cli(&self, args: &[&str], bootstrap: &str) -> Result<Output> {
        let mut command = Command::new("timeout");
        command
            .arg(CLI_TIMEOUT_S)
            .arg(&self.weir)
            .args(args)
            .args(["--bootstrap-server", bootstrap])
            .stdin(Stdio::null());
        if let Some(config) = &self.command_config {
            command.arg("--command-config").arg(config);
        }
        let output = command
            .output()
            .with_context(|| format!("running {}", self.weir.display()))?;
        if !output.status.success() {
            bail!(
                "`weir {}` via {bootstrap} failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(output)
    }

    /// The cluster as the first node that answers reports it.
    pub(crate) fn cluster(&self) -> Result<ClusterView> {
        let mut last = None;
        for (_, bootstrap, _) in &self.nodes {
            let view = self
                .cli(&["cluster", "describe"], bootstrap)
                .and_then(|cluster| {
                    let topics = self.cli(&["topic", "describe"], bootstrap)?;
                    ClusterView::parse(
                        &String::from_utf8_lossy(&cluster.stdout),
                        &String::from_utf8_lossy(&topics.stdout),
                    )
                });
            match view {
                Ok(view) => return Ok(view),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no node in the inventory")))
    }

    /// Runs a preferred-leader election of every partition; the number of leaderships
    /// moved. Retried while the controller answers that a preferred replica is not ready.
    pub(crate) fn elect_preferred_leaders(&self) -> Result<usize> {
        let mut last = None;
        for _ in 0..ELECT_TRIES {
            for (_, bootstrap, _) in &self.nodes {
                match self.cli(&["cluster", "elect-leaders"], bootstrap) {
                    Ok(output) => {
                        let text = String::from_utf8_lossy(&output.stdout);
                        let moved = (text.lines())
                            .find_map(|l| l.strip_prefix("Moved: "))
                            .and_then(|n| n.trim().parse().ok())
                            .context("no `Moved:` line in `weir cluster elect-leaders`")?;
                        return Ok(moved);
                    }
                    Err(error) => last = Some(error),
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no node in the inventory")))
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if let Some(path) = &self.command_config {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `GET path` on `address`: (status, body).
pub(crate) fn http_get(address: &str, path: &str) -> Result<(u16, String)> {
    let socket = (address.to_socket_addrs())
        .with_context(|| format!("resolving {address}"))?
        .next()
        .with_context(|| format!("{address} resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&socket, HTTP_TIMEOUT)
        .with_context(|| format!("connecting to {address}"))?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    // One write: `write!` on an unbuffered stream sends each fragment as its own segment.
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .with_context(|| format!("reading {path} from {address}"))?;
    let text = String::from_utf8_lossy(&answer);
    let status = (text.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{address}{path}: not an HTTP answer"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_cli_views() {
        let cluster = "ClusterId: c\tControllerId: 2\tBrokerCount: 2\n\
            \tBroker: 1\tHost: h\tPort: 1\tRack: -\tController: no\n\
            \tBroker: 2\tHost: h\tPort: 2\tRack: -\tController: yes\n";
        let topics = "Topic: t\tTopicId: x\tPartitionCount: 3\n\
            \tTopic: t\tPartition: 0\tLeader: 1\tLeaderEpoch: 0\tReplicas: 1,2\tIsr: 1,2\n\
            \tTopic: t\tPartition: 1\tLeader: 1\tLeaderEpoch: 0\tReplicas: 1,2\tIsr: 1\n\
            \tTopic: t\tPartition: 2\tLeader: -1\tLeaderEpoch: 0\tReplicas: 3\tIsr: \n";
        let view = ClusterView::parse(cluster, topics).expect("parses");
        assert_eq!(view.controller, 2);
        assert_eq!(view.brokers, BTreeSet::from([1, 2]));
        assert_eq!(view.partitions.len(), 3);
        assert_eq!(view.under_replicated(), 1);
        assert_eq!(view.under_replicated_led_by(1), 1);
        assert_eq!(view.under_replicated_led_by(2), 0);
        assert_eq!(view.offline(), 1);
        assert_eq!(view.offline_on(3), 1);
        assert_eq!(
            view.lagging(5),
            [
                "t-1 (leader 1, isr [1] of replicas [1, 2])",
                "t-2 (leader -1, isr [] of replicas [3])"
            ]
        );
        assert!(ClusterView::parse("", topics).is_err());
    }

    #[test]
    fn http_probe_reads_status_and_body() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            // Read the whole head: closing with unread bytes would reset the connection.
            let mut head = Vec::new();
            let mut chunk = [0u8; 256];
            while !head.ends_with(b"\r\n\r\n") {
                let read = stream.read(&mut chunk).expect("read");
                assert!(read > 0, "the request ended before its head");
                head.extend_from_slice(&chunk[..read]);
            }
            let asked = String::from_utf8_lossy(&head).into_owned();
            stream
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 7\r\n\r\nfenced\n")
                .expect("write");
            asked
        });
        let (status, body) = http_get(&address, "/readyz").expect("answer");
        assert_eq!((status, body.as_str()), (503, "fenced\n"));
        let asked = server.join().expect("server");
        assert!(asked.starts_with("GET /readyz HTTP/1.1\r\n"), "{asked}");
        assert!(http_get("127.0.0.1:1", "/readyz").is_err());
    }
}
