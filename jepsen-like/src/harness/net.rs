//! The test network: where each node listens, how to run a command "on" a node, and how
//! to cut links and add latency.
//!
//! Two modes, picked at start and named in the report:
//! - **netns** (root with `ip netns`): one network namespace per node, a veth pair into a
//!   bridge in the root namespace, node `i` at `10.77.S.i` (S from the run id, so parallel
//!   runs do not collide), the harness's clients at `10.77.S.254` on the bridge. A cut link
//!   `a -> b` is a `blackhole` route to `b` inside `a`'s namespace (there is no iptables on
//!   the CI machine); partitions are between nodes only, as in Jepsen — clients keep
//!   reaching every node. Latency and loss are a `tc netem` qdisc on the node's interface.
//! - **proxy** (fallback): nodes on loopback ports; every Kafka listener is fronted by a
//!   [`Proxy`] (what clients and peers use, advertised by the node), and every controller
//!   link `a -> b` gets its own proxy (node `a`'s voters list names it), so controller links
//!   can be cut one by one. Replication traffic goes through the target's front proxy, so a
//!   cut in proxy mode isolates a node's Kafka listener from everyone (clients included).
//!
//! Invariants: [`Net::heal`] undoes every cut and every netem qdisc; [`Net::teardown`]
//! (also run on drop) removes every namespace, veth and bridge this run created.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context, Result};

use super::proxy::{Faults, Proxy};

/// Runs set up by this process so far.
static RUNS: AtomicU32 = AtomicU32::new(0);

/// Kafka port inside a namespace.
const KAFKA_PORT: u16 = 9092;
/// Controller port inside a namespace.
const CONTROLLER_PORT: u16 = 9093;

/// Which network the run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetMode {
    /// One network namespace per node.
    Netns,
    /// Loopback with fault-injecting proxies.
    Proxy,
}

impl NetMode {
    /// Name shown in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Netns => "netns (one network namespace per node, veth + bridge)",
            Self::Proxy => "proxy (loopback, fault-injecting TCP proxies)",
        }
    }
}

/// The network of one run.
#[derive(Debug)]
pub struct Net {
    /// The mode in use.
    pub mode: NetMode,
    nodes: u32,
    tag: u32,
    cuts: BTreeSet<(u32, u32)>,
    netem: BTreeSet<u32>,
    /// Proxy mode: front proxies (index node-1).
    fronts: Vec<Proxy>,
    /// Proxy mode: controller link proxies (from, to, proxy).
    links: Vec<(u32, u32, Proxy)>,
    base_port: u16,
    torn_down: bool,
}

impl Net {
    /// Sets up the network for `nodes` nodes: netns when possible and `want_netns`,
    /// else proxies. `tag` makes names unique per run (use the process id).
    pub async fn setup(nodes: u32, tag: u32, want_netns: bool) -> Result<Self> {
        // Runs in one process (tests) get different tags too.
        let tag = (tag + RUNS.fetch_add(1, Ordering::SeqCst)) % 250;
        let base_port = 20_000 + u16::try_from((tag % 200) * 100).unwrap_or(0);
        let mut net = Self {
            mode: NetMode::Proxy,
            nodes,
            tag,
            cuts: BTreeSet::new(),
            netem: BTreeSet::new(),
            fronts: Vec::new(),
            links: Vec::new(),
            base_port,
            torn_down: false,
        };
        if want_netns && netns_available(tag) {
            net.mode = NetMode::Netns;
            if let Err(error) = net.setup_netns() {
                net.teardown();
                return Err(error.context("setting up network namespaces"));
            }
        } else {
            net.setup_proxies().await?;
        }
        Ok(net)
    }

    fn bridge(&self) -> String {
        format!("wj{}br", self.tag)
    }

    fn namespace(&self, node: u32) -> String {
        format!("wj{}n{node}", self.tag)
    }

    fn host_veth(&self, node: u32) -> String {
        format!("wj{}v{node}", self.tag)
    }

    fn ip(&self, node: u32) -> String {
        format!("10.77.{}.{node}", self.tag)
    }

    fn setup_netns(&mut self) -> Result<()> {
        let bridge = self.bridge();
        run("ip", &["link", "add", &bridge, "type", "bridge"])?;
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("10.77.{}.254/24", self.tag),
                "dev",
                &bridge,
            ],
        )?;
        run("ip", &["link", "set", &bridge, "up"])?;
        for node in 1..=self.nodes {
            let ns = self.namespace(node);
            let veth = self.host_veth(node);
            let peer = format!("wj{}p{node}", self.tag);
            run("ip", &["netns", "add", &ns])?;
            run(
                "ip",
                &["link", "add", &veth, "type", "veth", "peer", "name", &peer],
            )?;
            run("ip", &["link", "set", &peer, "netns", &ns])?;
            run("ip", &["link", "set", &veth, "master", &bridge])?;
            run("ip", &["link", "set", &veth, "up"])?;
            in_ns(&ns, &["ip", "link", "set", &peer, "name", "eth0"])?;
            in_ns(
                &ns,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("{}/24", self.ip(node)),
                    "dev",
                    "eth0",
                ],
            )?;
            in_ns(&ns, &["ip", "link", "set", "eth0", "up"])?;
            in_ns(&ns, &["ip", "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    async fn setup_proxies(&mut self) -> Result<()> {
        for node in 1..=self.nodes {
            let front = self.front_addr(node);
            let upstream = self.real_kafka_addr(node);
            let proxy = Proxy::start(front, upstream, u64::from(node))
                .await
                .with_context(|| format!("starting the front proxy of node {node} on {front}"))?;
            self.fronts.push(proxy);
        }
        for from in 1..=self.nodes {
            for to in 1..=self.nodes {
                if from == to {
                    continue;
                }
                let listen = self.link_addr(from, to);
                let upstream = self.real_controller_addr(to);
                let proxy = Proxy::start(listen, upstream, u64::from(from * 100 + to))
                    .await
                    .with_context(|| format!("starting the link proxy {from}->{to}"))?;
                self.links.push((from, to, proxy));
            }
        }
        Ok(())
    }

    fn real_kafka_addr(&self, node: u32) -> SocketAddr {
        let port = self.base_port + u16::try_from(node).unwrap_or(0);
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn real_controller_addr(&self, node: u32) -> SocketAddr {
        let port = self.base_port + 20 + u16::try_from(node).unwrap_or(0);
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn front_addr(&self, node: u32) -> SocketAddr {
        let octet = u8::try_from(10 + node).unwrap_or(10);
        SocketAddr::from(([127, 0, 0, octet], self.base_port + 50))
    }

    fn link_addr(&self, from: u32, to: u32) -> SocketAddr {
        let octet = u8::try_from(10 + from).unwrap_or(10);
        SocketAddr::from((
            [127, 0, 0, octet],
            self.base_port + 60 + u16::try_from(to).unwrap_or(0),
        ))
    }

    /// Where node `node`'s Kafka listener binds.
    pub fn listen_addr(&self, node: u32) -> String {
        match self.mode {
            NetMode::Netns => format!("{}:{KAFKA_PORT}", self.ip(node)),
            NetMode::Proxy => self.real_kafka_addr(node).to_string(),
        }
    }

    /// The address node `node` advertises (`None`: the bound address).
    pub fn advertised_addr(&self, node: u32) -> Option<String> {
        match self.mode {
            NetMode::Netns => None,
            NetMode::Proxy => Some(self.front_addr(node).to_string()),
        }
    }

    /// The address clients dial for node `node`.
    pub fn client_addr(&self, node: u32) -> String {
        match self.mode {
            NetMode::Netns => self.listen_addr(node),
            NetMode::Proxy => self.front_addr(node).to_string(),
        }
    }

    /// Where node `node`'s controller listener binds.
    pub fn controller_listen(&self, node: u32) -> String {
        match self.mode {
            NetMode::Netns => format!("{}:{CONTROLLER_PORT}", self.ip(node)),
            NetMode::Proxy => self.real_controller_addr(node).to_string(),
        }
    }

    /// Node `node`'s `--voters` list (in proxy mode, peers are reached through link proxies).
    pub fn voters_for(&self, node: u32) -> String {
        (1..=self.nodes)
            .map(|voter| {
                let address = match self.mode {
                    NetMode::Proxy if voter != node => self.link_addr(node, voter).to_string(),
                    _ => self.controller_listen(voter),
                };
                format!("{voter}@{address}")
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The command prefix that runs a program "on" node `node`.
    pub fn exec_prefix(&self, node: u32) -> Vec<String> {
        match self.mode {
            NetMode::Netns => vec![
                "ip".into(),
                "netns".into(),
                "exec".into(),
                self.namespace(node),
            ],
            NetMode::Proxy => Vec::new(),
        }
    }

    /// Cuts the directed links `links` (from cannot send to `to`), in addition to any cut.
    pub fn cut(&mut self, links: &[(u32, u32)]) -> Result<()> {
        for &(from, to) in links {
            if !self.cuts.insert((from, to)) {
                continue;
            }
            match self.mode {
                NetMode::Netns => {
                    let ns = self.namespace(from);
                    in_ns(
                        &ns,
                        &[
                            "ip",
                            "route",
                            "add",
                            "blackhole",
                            &format!("{}/32", self.ip(to)),
                        ],
                    )?;
                }
                NetMode::Proxy => self.set_link(from, to, true),
            }
        }
        if self.mode == NetMode::Proxy {
            // Replication has no per-link proxy: a node that lost every peer loses its front.
            for node in 1..=self.nodes {
                let isolated = self.nodes > 1
                    && (1..=self.nodes)
                        .filter(|&o| o != node)
                        .all(|o| self.cuts.contains(&(node, o)) && self.cuts.contains(&(o, node)));
                if isolated {
                    self.set_front(
                        node,
                        Faults {
                            blocked: true,
                            ..Faults::default()
                        },
                    );
                }
            }
        }
        Ok(())
    }

    fn set_link(&self, from: u32, to: u32, blocked: bool) {
        for (f, t, proxy) in &self.links {
            if (*f, *t) == (from, to) {
                proxy.set(Faults {
                    blocked,
                    ..proxy.faults()
                });
            }
        }
    }

    fn set_front(&self, node: u32, faults: Faults) {
        if let Some(proxy) = self.fronts.get(usize::try_from(node).unwrap_or(1) - 1) {
            proxy.set(faults);
        }
    }

    /// Adds delay and loss to the nodes' traffic.
    pub fn netem(
        &mut self,
        nodes: &[u32],
        delay_ms: u32,
        jitter_ms: u32,
        loss_percent: u32,
    ) -> Result<()> {
        for &node in nodes {
            match self.mode {
                NetMode::Netns => {
                    let ns = self.namespace(node);
                    let verb = if self.netem.contains(&node) {
                        "change"
                    } else {
                        "add"
                    };
                    in_ns(
                        &ns,
                        &[
                            "tc",
                            "qdisc",
                            verb,
                            "dev",
                            "eth0",
                            "root",
                            "netem",
                            "delay",
                            &format!("{delay_ms}ms"),
                            &format!("{jitter_ms}ms"),
                            "loss",
                            &format!("{loss_percent}%"),
                        ],
                    )?;
                }
                NetMode::Proxy => self.set_front(
                    node,
                    Faults {
                        blocked: false,
                        delay_ms,
                        loss_per_mille: loss_percent * 10,
                    },
                ),
            }
            self.netem.insert(node);
        }
        Ok(())
    }

    /// Removes every cut and qdisc; returns the first error but tries everything.
    pub fn heal(&mut self) -> Result<()> {
        let links = self.heal_links();
        let netem = self.clear_netem();
        links.and(netem)
    }

    /// Restores every cut link.
    pub fn heal_links(&mut self) -> Result<()> {
        let mut first_error = None;
        let cuts: Vec<(u32, u32)> = std::mem::take(&mut self.cuts).into_iter().collect();
        for (from, to) in cuts {
            let result = match self.mode {
                NetMode::Netns => in_ns(
                    &self.namespace(from),
                    &[
                        "ip",
                        "route",
                        "del",
                        "blackhole",
                        &format!("{}/32", self.ip(to)),
                    ],
                ),
                NetMode::Proxy => {
                    self.set_link(from, to, false);
                    Ok(())
                }
            };
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
        }
        self.reset_fronts();
        first_error.map_or(Ok(()), Err)
    }

    /// Removes every netem qdisc.
    pub fn clear_netem(&mut self) -> Result<()> {
        let mut first_error = None;
        for node in std::mem::take(&mut self.netem) {
            if self.mode == NetMode::Netns {
                let args = ["tc", "qdisc", "del", "dev", "eth0", "root"];
                if let Err(error) = in_ns(&self.namespace(node), &args) {
                    first_error.get_or_insert(error);
                }
            }
        }
        self.reset_fronts();
        first_error.map_or(Ok(()), Err)
    }

    /// Proxy mode: front proxies carry both isolation and netem; recompute them.
    fn reset_fronts(&self) {
        for node in 1..=self.nodes {
            if !self.netem.contains(&node) {
                self.set_front(node, Faults::default());
            }
        }
    }

    /// Links cut right now.
    pub fn cuts(&self) -> Vec<(u32, u32)> {
        self.cuts.iter().copied().collect()
    }

    /// Removes namespaces, veths and the bridge (idempotent; errors are ignored).
    pub fn teardown(&mut self) {
        if self.torn_down {
            return;
        }
        self.torn_down = true;
        self.fronts.clear();
        self.links.clear();
        if self.mode != NetMode::Netns {
            return;
        }
        for node in 1..=self.nodes {
            let _ = quiet("ip", &["netns", "del", &self.namespace(node)]);
            let _ = quiet("ip", &["link", "del", &self.host_veth(node)]);
        }
        let _ = quiet("ip", &["link", "del", &self.bridge()]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Whether this process may create network namespaces (tries one and removes it).
pub fn netns_available(tag: u32) -> bool {
    let probe = format!("wj{tag}probe");
    let ok = quiet("ip", &["netns", "add", &probe]).is_ok();
    if ok {
        let _ = quiet("ip", &["netns", "del", &probe]);
    }
    ok && quiet("tc", &["-V"]).is_ok()
}

fn in_ns(ns: &str, args: &[&str]) -> Result<()> {
    let mut full = vec!["netns", "exec", ns];
    full.extend_from_slice(args);
    run("ip", &full)
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program} {}", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn quiet(program: &str, args: &[&str]) -> Result<()> {
    run(program, args)
}
