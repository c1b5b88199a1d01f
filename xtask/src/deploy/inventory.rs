//! The inventory (`deploy.toml`): what cluster to run where, read once, checked as a whole,
//! and rendered into each node's `weir.toml` (docs/deploy.md documents every field).
//!
//! Invariants:
//! - Every key is known (`deny_unknown_fields`): a typo fails the load, naming the key.
//! - Relative paths are relative to the inventory file's directory, never to the caller's
//!   working directory, so `deploy/local-3.toml` means the same thing from anywhere.
//! - The keys the inventory manages itself (node id, cluster id, listeners, voters, data
//!   dir, metrics listener) cannot also be given in `settings`: one value, one place.
//! - Rendering is pure: the same inventory gives the same bytes, so `plan` can compare the
//!   rendered config with the installed one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Kafka property names the inventory sets itself.
const MANAGED_KEYS: &[&str] = &[
    "node.id",
    "broker.id",
    "cluster.id",
    "process.roles",
    "listeners",
    "advertised.listeners",
    "controller.listener",
    "controller.quorum.voters",
    "log.dirs",
    "log.dir",
    "weir.metrics.listener",
    "ssl.keystore.location",
    "ssl.truststore.location",
];

/// Where the cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TargetKind {
    /// Background processes on this machine.
    Local,
    /// Hosts reached with the system's ssh/scp.
    Ssh,
    /// Kubernetes manifests.
    K8s,
}

/// A node's roles (`process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    /// Serves clients, holds partitions.
    Broker,
    /// Votes in the controller quorum.
    Controller,
}

/// `[cluster]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterSection {
    /// `cluster.id`, the same on every node; a node of another cluster is never dialled.
    pub id: String,
    /// `local`, `ssh` or `k8s`.
    pub target: TargetKind,
}

/// `[local]`: where the local target keeps its nodes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LocalSection {
    /// Base directory: node N lives in `DIR/nodeN` (binary, config, pid file, log, data).
    pub dir: PathBuf,
}

/// How the ssh target keeps a node running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Supervisor {
    /// systemd when the host runs it, else the fallback supervisor.
    #[default]
    Auto,
    /// A systemd unit.
    Systemd,
    /// The fallback supervisor script.
    Fallback,
}

/// `[ssh]`: how the ssh target reaches hosts and where it puts a node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SshSection {
    /// The node's directory on its host (binary, config, tls/, supervisor, pid files,
    /// log; data under `data/` unless the node names a `data_dir`); `{id}` is replaced.
    pub dir: String,
    /// Remote user (default: ssh's own choice, e.g. from ~/.ssh/config).
    pub user: Option<String>,
    /// Remote port (default: ssh's).
    pub port: Option<u16>,
    /// Private key (`ssh -i`).
    pub identity_file: Option<PathBuf>,
    /// Extra `ssh -o` options, e.g. `"StrictHostKeyChecking=accept-new"`.
    pub options: Vec<String>,
    /// `auto`, `systemd` or `fallback`.
    pub supervisor: Supervisor,
    /// Run remote steps through `sudo -n` (for a non-root ssh user).
    pub sudo: bool,
    /// The systemd unit's `User=`/`Group=`, owner of the node's files (default: root).
    pub service_user: Option<String>,
}

impl Default for SshSection {
    fn default() -> SshSection {
        SshSection {
            dir: "/opt/weir".to_owned(),
            user: None,
            port: None,
            identity_file: None,
            options: Vec::new(),
            supervisor: Supervisor::Auto,
            sudo: false,
            service_user: None,
        }
    }
}

/// `[k8s]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct K8sSection {
    /// The image: `weir` on a base with `sh` (the rendered Dockerfile builds one).
    pub image: String,
    /// Namespace of every object.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Name of the StatefulSet and prefix of the other objects.
    #[serde(default = "default_name")]
    pub name: String,
    /// Size of each broker's PersistentVolumeClaim.
    #[serde(default = "default_storage")]
    pub storage: String,
    /// StorageClass of the claims (default: the cluster's default class).
    #[serde(default)]
    pub storage_class: Option<String>,
    /// Where the manifests are written (relative to the inventory).
    #[serde(default = "default_out_dir")]
    pub out_dir: PathBuf,
    /// Apply with kubectl when it is on the PATH and reaches a cluster.
    #[serde(default = "yes")]
    pub kubectl: bool,
    /// Topology label brokers are spread over (racks/zones).
    #[serde(default = "default_topology_key")]
    pub topology_key: String,
    /// Container resource requests/limits, e.g. `{ requests = { memory = "2Gi" } }`.
    #[serde(default)]
    pub resources: Option<toml::Value>,
}

fn default_namespace() -> String {
    "default".into()
}
fn default_name() -> String {
    "weir".into()
}
fn default_storage() -> String {
    "10Gi".into()
}
fn default_out_dir() -> PathBuf {
    PathBuf::from("k8s")
}
fn yes() -> bool {
    true
}
fn default_topology_key() -> String {
    "topology.kubernetes.io/zone".into()
}

/// `[tls]`: optional TLS material, copied to every node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsSection {
    /// PEM CA certificate(s): the brokers' truststore and the admin client's CA.
    pub ca: PathBuf,
    /// Each node's PEM keystore (private key and chain); `{id}` is replaced by the node id
    /// (without it every node gets the same one, e.g. a certificate naming all hosts).
    pub keystore: String,
    /// `ssl.client.auth`: `none`, `requested` or `required`.
    #[serde(default)]
    pub client_auth: Option<String>,
    /// The admin client's certificate and key (PEM), for `ssl.client.auth = "required"`.
    #[serde(default)]
    pub admin_certificate: Option<PathBuf>,
    /// Key of `admin_certificate`.
    #[serde(default)]
    pub admin_key: Option<PathBuf>,
}

/// `[timeouts]`: how long each step of apply and upgrade may take (seconds).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Timeouts {
    /// A started node answering 200 on `/readyz`.
    pub ready_s: u64,
    /// A node exiting after SIGTERM (its controlled shutdown included).
    pub stop_s: u64,
    /// The cluster having no under-replicated partition.
    pub isr_s: u64,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            ready_s: 60,
            stop_s: 60,
            isr_s: 120,
        }
    }
}

/// One `[[node]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeSpec {
    /// `node.id`.
    pub id: i32,
    /// Where it runs: the ssh destination, `127.0.0.1` for local.
    pub host: String,
    /// `process.roles` (default: both).
    #[serde(default = "both_roles")]
    pub roles: Vec<Role>,
    /// `listeners`, Kafka's `NAME://host:port,...`; the first is the inter-broker one.
    pub listeners: String,
    /// `advertised.listeners` (default: the bound addresses).
    #[serde(default)]
    pub advertised_listeners: Option<String>,
    /// `controller.listener`, `host:port`: peers dial it; a voter is reached there.
    pub controller_listener: String,
    /// `weir.metrics.listener`, `host:port`: /metrics, /healthz and /readyz.
    pub metrics_listener: String,
    /// Data directory (default per target); relative paths: under the node's directory.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Rack or zone (Kubernetes anti-affinity; recorded, not a broker setting yet).
    #[serde(default)]
    pub rack: Option<String>,
    /// Kafka properties for this node only (override `[settings]`).
    #[serde(default)]
    pub settings: BTreeMap<String, toml::Value>,
}

fn both_roles() -> Vec<Role> {
    vec![Role::Broker, Role::Controller]
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Inventory {
    /// `[cluster]`.
    pub cluster: ClusterSection,
    /// Kafka properties shared by every node.
    #[serde(default)]
    pub settings: BTreeMap<String, toml::Value>,
    /// `[local]`.
    #[serde(default)]
    pub local: Option<LocalSection>,
    /// `[ssh]`.
    #[serde(default)]
    pub ssh: Option<SshSection>,
    /// `[k8s]`.
    #[serde(default)]
    pub k8s: Option<K8sSection>,
    /// `[tls]`.
    #[serde(default)]
    pub tls: Option<TlsSection>,
    /// `[timeouts]`.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// `[[node]]`.
    #[serde(rename = "node")]
    pub nodes: Vec<NodeSpec>,
    /// Directory of the file, which relative paths are resolved against.
    #[serde(skip)]
    pub base: PathBuf,
    /// The file as given.
    #[serde(skip)]
    pub source: PathBuf,
}

impl Inventory {
    /// Reads and checks `path`.
    pub(crate) fn load(path: &Path) -> Result<Inventory> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading inventory {}", path.display()))?;
        let absolute =
            std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))?;
        let base = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
        Inventory::parse(&text, path, &base)
    }

    /// Parses and checks an inventory text; `source` names it in errors, `base` resolves
    /// relative paths.
    pub(crate) fn parse(text: &str, source: &Path, base: &Path) -> Result<Inventory> {
        let mut inventory: Inventory = toml::from_str(text)
            .with_context(|| format!("invalid inventory {}", source.display()))?;
        inventory.base = base.to_path_buf();
        inventory.source = source.to_path_buf();
        inventory
            .check()
            .with_context(|| format!("invalid inventory {}", source.display()))?;
        Ok(inventory)
    }

    fn check(&self) -> Result<()> {
        if self.cluster.id.trim().is_empty() {
            bail!("[cluster] id must not be empty");
        }
        if self.nodes.is_empty() {
            bail!("no [[node]]");
        }
        let mut ids = BTreeSet::new();
        let mut addresses = BTreeSet::new();
        for node in &self.nodes {
            let at = format!("node {}", node.id);
            if node.id < 0 {
                bail!("{at}: id must be 0 or more");
            }
            if !ids.insert(node.id) {
                bail!("{at}: id used twice");
            }
            if node.host.trim().is_empty() {
                bail!("{at}: host must not be empty");
            }
            if node.roles.is_empty() {
                bail!("{at}: roles must name broker, controller or both");
            }
            let kafka =
                listener_addresses(&node.listeners).with_context(|| format!("{at}: listeners"))?;
            let controller = host_port(&node.controller_listener)
                .with_context(|| format!("{at}: controller_listener"))?;
            let metrics = host_port(&node.metrics_listener)
                .with_context(|| format!("{at}: metrics_listener"))?;
            for (host, port) in kafka.into_iter().chain([controller, metrics]) {
                if !addresses.insert((node.host.clone(), host.clone(), port)) {
                    bail!("{at}: {host}:{port} is used twice on host {}", node.host);
                }
            }
            for key in node.settings.keys() {
                check_setting(key).with_context(|| format!("{at}: settings"))?;
            }
        }
        for key in self.settings.keys() {
            check_setting(key).context("[settings]")?;
        }
        if !self
            .nodes
            .iter()
            .any(|n| n.roles.contains(&Role::Controller))
        {
            bail!("no node has the controller role");
        }
        if !self.nodes.iter().any(|n| n.roles.contains(&Role::Broker)) {
            bail!("no node has the broker role");
        }
        if self.cluster.target == TargetKind::Local && self.local.is_none() {
            bail!("target \"local\" needs a [local] section with dir");
        }
        if self.cluster.target == TargetKind::K8s && self.k8s.is_none() {
            bail!("target \"k8s\" needs a [k8s] section with image");
        }
        if self.cluster.target == TargetKind::Ssh {
            let dir = self.ssh.as_ref().map_or("/opt/weir", |s| s.dir.as_str());
            if !dir.starts_with('/') {
                bail!("[ssh] dir must be an absolute path on the hosts");
            }
            let mut per_host = BTreeSet::new();
            for node in &self.nodes {
                if !per_host.insert((node.host.clone(), dir.replace("{id}", &node.id.to_string())))
                {
                    bail!(
                        "node {}: another node on host {} has the same [ssh] dir; put {{id}} in it",
                        node.id,
                        node.host
                    );
                }
            }
        }
        if let Some(tls) = &self.tls {
            if tls.admin_certificate.is_some() != tls.admin_key.is_some() {
                bail!("[tls] admin_certificate and admin_key go together");
            }
        }
        Ok(())
    }

    /// `path` resolved against the inventory's directory, `..` and `.` folded away
    /// lexically (`deploy/../target` reads as `target`).
    pub(crate) fn resolve(&self, path: &Path) -> PathBuf {
        use std::path::Component;
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base.join(path)
        };
        let mut out = PathBuf::new();
        for component in joined.components() {
            match component {
                Component::CurDir => {}
                Component::ParentDir => {
                    if !out.pop() {
                        out.push(component);
                    }
                }
                other => out.push(other),
            }
        }
        out
    }

    /// The nodes with the broker role.
    pub(crate) fn brokers(&self) -> impl Iterator<Item = &NodeSpec> {
        (self.nodes.iter()).filter(|n| n.roles.contains(&Role::Broker))
    }

    /// `controller.quorum.voters`: the controller nodes' controller listeners.
    pub(crate) fn voters(&self) -> String {
        let voters: Vec<String> = (self.nodes.iter())
            .filter(|n| n.roles.contains(&Role::Controller))
            .map(|n| format!("{}@{}", n.id, n.controller_listener))
            .collect();
        voters.join(",")
    }

    /// The files node `node` needs besides its binary and config: (source, name in the
    /// node's `tls/` directory).
    pub(crate) fn tls_files(&self, node: &NodeSpec) -> Vec<(PathBuf, &'static str)> {
        match &self.tls {
            None => Vec::new(),
            Some(tls) => vec![
                (self.resolve(&tls.ca), "ca.pem"),
                (
                    self.resolve(Path::new(
                        &tls.keystore.replace("{id}", &node.id.to_string()),
                    )),
                    "keystore.pem",
                ),
            ],
        }
    }

    /// The Kafka address the deploy machine reaches `node` at: its first advertised (else
    /// bound) listener, a wildcard host replaced by the node's host.
    pub(crate) fn bootstrap(&self, node: &NodeSpec) -> String {
        let listeners = node
            .advertised_listeners
            .as_deref()
            .unwrap_or(&node.listeners);
        let first = listener_addresses(listeners)
            .ok()
            .and_then(|all| all.into_iter().next());
        match first {
            Some((host, port)) => format!("{}:{port}", reachable_host(&host, &node.host)),
            None => node.host.clone(),
        }
    }

    /// The metrics address the deploy machine reaches `node` at.
    pub(crate) fn metrics_address(&self, node: &NodeSpec) -> String {
        match host_port(&node.metrics_listener) {
            Ok((host, port)) => format!("{}:{port}", reachable_host(&host, &node.host)),
            Err(_) => node.metrics_listener.clone(),
        }
    }

    /// Whether the first listener speaks TLS (its name is SSL/SASL_SSL or maps to it).
    pub(crate) fn first_listener_is_tls(&self, node: &NodeSpec) -> bool {
        let name = node
            .listeners
            .split(',')
            .next()
            .and_then(|l| l.split_once("://"))
            .map_or("PLAINTEXT", |(name, _)| name.trim());
        let map_key = "listener.security.protocol.map";
        let map = (node.settings.get(map_key))
            .or_else(|| self.settings.get(map_key))
            .and_then(toml::Value::as_str)
            .unwrap_or("");
        let protocol = (map.split(','))
            .filter_map(|entry| entry.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map_or(name, |(_, p)| p.trim());
        protocol.eq_ignore_ascii_case("SSL") || protocol.eq_ignore_ascii_case("SASL_SSL")
    }

    /// The properties file the admin client (`weir ... --command-config`) uses to reach the
    /// cluster, or `None` for plaintext.
    pub(crate) fn client_properties(&self) -> Option<String> {
        let tls = self.tls.as_ref()?;
        let node = self.nodes.first()?;
        if !self.first_listener_is_tls(node) {
            return None;
        }
        let mut text = format!(
            "security.protocol=SSL\nssl.ca.location={}\n",
            self.resolve(&tls.ca).display()
        );
        if let (Some(cert), Some(key)) = (&tls.admin_certificate, &tls.admin_key) {
            text.push_str(&format!(
                "ssl.certificate.location={}\nssl.key.location={}\n",
                self.resolve(cert).display(),
                self.resolve(key).display()
            ));
        }
        Some(text)
    }

    /// Node `node`'s `weir.toml`: `data_dir` and `tls_dir` are where the target puts them.
    pub(crate) fn render_config(
        &self,
        node: &NodeSpec,
        data_dir: &str,
        tls_dir: &str,
    ) -> Result<String> {
        let mut table = toml::Table::new();
        let mut put = |key: &str, value: toml::Value| {
            table.insert(key.to_owned(), value);
        };
        put("node.id", toml::Value::Integer(node.id.into()));
        put("cluster.id", self.cluster.id.clone().into());
        let roles: Vec<&str> = (node.roles.iter().collect::<BTreeSet<_>>().into_iter())
            .map(|role| match role {
                Role::Broker => "broker",
                Role::Controller => "controller",
            })
            .collect();
        put("process.roles", roles.join(",").into());
        put("listeners", node.listeners.clone().into());
        if let Some(advertised) = &node.advertised_listeners {
            put("advertised.listeners", advertised.clone().into());
        }
        put(
            "controller.listener",
            node.controller_listener.clone().into(),
        );
        put("controller.quorum.voters", self.voters().into());
        put("log.dirs", data_dir.into());
        put(
            "weir.metrics.listener",
            node.metrics_listener.clone().into(),
        );
        // The WASM gateway is opt-in here: its built-in default port would collide between
        // two nodes on one host.
        put("weir.gateway.listener", "off".into());
        if let Some(tls) = &self.tls {
            put(
                "ssl.keystore.location",
                format!("{tls_dir}/keystore.pem").into(),
            );
            put(
                "ssl.truststore.location",
                format!("{tls_dir}/ca.pem").into(),
            );
            if let Some(auth) = &tls.client_auth {
                put("ssl.client.auth", auth.clone().into());
            }
        }
        for (key, value) in self.settings.iter().chain(&node.settings) {
            put(key, value.clone());
        }
        let body = toml::to_string(&table).context("rendering the node's config")?;
        Ok(format!(
            "# weir.toml of node {} ({}), rendered by `cargo xtask deploy` from {}.\n\
             # Edit the inventory, not this file: apply and upgrade overwrite it.\n{body}",
            node.id,
            node.host,
            self.source.display()
        ))
    }
}

fn check_setting(key: &str) -> Result<()> {
    if MANAGED_KEYS.contains(&key) {
        bail!("\"{key}\" is set by the inventory itself (see docs/deploy.md), not in settings");
    }
    Ok(())
}

/// A wildcard bind address is reached at the node's host.
fn reachable_host<'a>(host: &'a str, node_host: &'a str) -> &'a str {
    match host {
        "" | "0.0.0.0" | "::" | "[::]" => node_host,
        other => other,
    }
}

/// `host:port` split, the port checked.
pub(crate) fn host_port(text: &str) -> Result<(String, u16)> {
    let (host, port) = text
        .trim()
        .rsplit_once(':')
        .with_context(|| format!("{text:?} is not host:port"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("{text:?}: bad port"))?;
    if port == 0 {
        bail!("{text:?}: port 0 cannot be deployed (peers and probes need the real port)");
    }
    Ok((host.to_owned(), port))
}

/// The addresses of a `NAME://host:port,...` list (a bare `host:port` is PLAINTEXT).
pub(crate) fn listener_addresses(text: &str) -> Result<Vec<(String, u16)>> {
    let mut out = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let address = entry.split_once("://").map_or(entry, |(_, a)| a);
        out.push(host_port(address)?);
    }
    if out.is_empty() {
        bail!("no listener");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: &str = r#"
        [cluster]
        id = "c1"
        target = "local"
        [local]
        dir = "../target/deploy/t"
        [settings]
        "default.replication.factor" = 3
        "min.insync.replicas" = 2
        [[node]]
        id = 1
        host = "127.0.0.1"
        listeners = "PLAINTEXT://127.0.0.1:9092"
        controller_listener = "127.0.0.1:19092"
        metrics_listener = "127.0.0.1:9192"
        [[node]]
        id = 2
        host = "127.0.0.1"
        roles = ["broker"]
        listeners = "PLAINTEXT://0.0.0.0:9094"
        controller_listener = "127.0.0.1:19094"
        metrics_listener = "127.0.0.1:9194"
        settings = { "num.partitions" = 6 }
    "#;

    fn parse(text: &str) -> Result<Inventory> {
        Inventory::parse(text, Path::new("t.toml"), Path::new("/inv"))
    }

    #[test]
    fn renders_a_node_config() {
        let inventory = parse(THREE).expect("valid");
        assert_eq!(inventory.voters(), "1@127.0.0.1:19092");
        let node = &inventory.nodes[1];
        let text = inventory
            .render_config(node, "/d/data", "/d/tls")
            .expect("renders");
        let table: toml::Table = toml::from_str(&text).expect("TOML");
        let get = |key: &str| table.get(key).cloned();
        assert_eq!(get("node.id"), Some(toml::Value::Integer(2)));
        assert_eq!(get("process.roles"), Some("broker".into()));
        assert_eq!(
            get("controller.quorum.voters"),
            Some("1@127.0.0.1:19092".into())
        );
        assert_eq!(get("log.dirs"), Some("/d/data".into()));
        assert_eq!(get("num.partitions"), Some(toml::Value::Integer(6)));
        assert_eq!(get("min.insync.replicas"), Some(toml::Value::Integer(2)));
        assert_eq!(get("ssl.keystore.location"), None);
        assert_eq!(inventory.bootstrap(node), "127.0.0.1:9094");
        assert_eq!(inventory.resolve(Path::new("x")), PathBuf::from("/inv/x"));
        assert_eq!(
            inventory.resolve(Path::new("../t/./x")),
            PathBuf::from("/t/x")
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        let cases = [
            (THREE.replace("id = 2", "id = 1"), "id used twice"),
            (THREE.replace("19094", "19092"), "used twice on host"),
            (
                THREE.replace("\"num.partitions\"", "\"node.id\""),
                "set by the inventory",
            ),
            (
                THREE.replace("target = \"local\"", "target = \"moon\""),
                "moon",
            ),
            (
                THREE.replace("rack", "x").replace(
                    "host = \"127.0.0.1\"\n        roles",
                    "hots = \"1\"\n        roles",
                ),
                "hots",
            ),
            (THREE.replace("9192", "0"), "port 0"),
            (
                THREE.replace("[local]\n        dir = \"../target/deploy/t\"", ""),
                "[local]",
            ),
        ];
        for (text, want) in cases {
            let error = format!("{:#}", parse(&text).expect_err(want));
            assert!(error.contains(want), "{want}: {error}");
        }
    }

    #[test]
    fn tls_renders_material_and_client_properties() {
        let text = THREE.replace("PLAINTEXT://127.0.0.1:9092", "SSL://127.0.0.1:9092")
            + "[tls]\nca = \"ca.pem\"\nkeystore = \"node{id}.pem\"\nclient_auth = \"none\"\n";
        let inventory = parse(&text).expect("valid");
        let node = &inventory.nodes[0];
        let config = inventory.render_config(node, "/d", "/t").expect("renders");
        assert!(
            config.contains("\"ssl.keystore.location\" = \"/t/keystore.pem\""),
            "{config}"
        );
        let files = inventory.tls_files(node);
        assert_eq!(files[1].0, PathBuf::from("/inv/node1.pem"));
        let properties = inventory.client_properties().expect("TLS first listener");
        assert!(
            properties.contains("ssl.ca.location=/inv/ca.pem"),
            "{properties}"
        );
    }

    #[test]
    fn the_shipped_local_inventory_loads() {
        let path = crate::project_root().join("deploy/local-3.toml");
        let inventory = Inventory::load(&path).expect("deploy/local-3.toml is valid");
        assert_eq!(inventory.nodes.len(), 3);
        assert_eq!(inventory.cluster.target, TargetKind::Local);
    }
}
