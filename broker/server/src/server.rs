//! Server wiring: bind, recover the node from storage, run the node loop and accept
//! connections.
//!
//! Invariants:
//! - The listener is bound before recovery finishes is reported, and the address reported
//!   by [`RunningServer::local_addr`] is the one actually bound (port 0 resolved).
//! - When no `advertised.listeners` is configured, the node advertises the bound address
//!   (a wildcard host becomes 127.0.0.1), so clients bootstrapping from Metadata reconnect
//!   to a reachable address.
//! - The server stops only when the node loop stops; a poisoned node surfaces as
//!   [`ServerError::Poisoned`] so `main` exits non-zero.
//! - Cluster mode (`config.node.cluster` set): the controller (peer) listener is bound
//!   before recovery too, so a taken port fails the start; without it nothing of the
//!   cluster transport runs.
//! - TLS material is loaded before anything is bound: a missing file, bad PEM or a key that
//!   does not match its certificate fails the start ([`ServerError::Tls`]). Listeners with
//!   equal settings share one [`ServerTls`], reloaded by one task while its files change.
//! - Every listener is bound before recovery; a TLS connection is handed to `conn` only
//!   after its handshake, which runs on its own task (a slow client never stalls accepts).
//! - fjall: the data directory's `meta.properties` (storage/identity.rs) is checked, or
//!   written at the first start, before the store is opened.
//! - Tiered storage: with `weir.remote.storage.url` the store is opened before recovery (a
//!   bad URL or an unusable directory fails the start) and the node is told it has one
//!   (`NodeConfig::remote_storage_enable`); [`start_with_remote`] takes a store built by
//!   the caller instead (tests, the simulator).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use weir_core::storage::StorageError;
use weir_core::Node;
use weir_runtime::{Listener, Runtime};

use crate::config::{advertised_for_bound, ServerConfig};
use crate::conn::{self, ConnContext};
use crate::limits::ClientLimits;
use crate::listener::{Advertised, ListenerSet, SecurityProtocol};
use crate::messages::{NodeInput, NODE_INPUTS_MAX};
use crate::node_loop::{self, NodeLoopError};
use crate::remote::{RemoteError, RemoteStore};
use crate::sasl::{SaslListener, SaslSettings};
use crate::shards::storage::ShardedStorage;
use crate::shards::NodeHandle;
use crate::ssl_principal::{client_principal, PrincipalMapper};
use crate::storage::StorageDriver;
use crate::tls::{ServerTls, TlsAcceptor, TlsError, TlsSettings};

/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Storage could not be opened or recovered.
    #[error("cannot recover from storage in {data_dir}: {source}")]
    Recover {
        /// The data directory.
        data_dir: String,
        /// The storage error.
        source: StorageError,
    },
    /// TLS material could not be loaded (missing file, bad PEM, mismatched key).
    // The cause is in the message, not a `source`: `{:#}` printing would repeat it.
    #[error("TLS of {listener}: {error}")]
    Tls {
        /// The listeners (or `gateway`, `metrics`) using it.
        listener: String,
        /// What is wrong.
        error: TlsError,
    },
    /// The data directory belongs to another cluster or node, or to a newer on-disk
    /// format (`meta.properties`), or that file cannot be read or written.
    #[cfg(feature = "fjall")]
    #[error(transparent)]
    Identity(#[from] crate::storage::identity::IdentityError),
    /// The remote store (`weir.remote.storage.url`) could not be opened.
    #[error("cannot open remote storage: {0}")]
    Remote(#[from] RemoteError),
    /// Storage failed while serving; the node stopped.
    #[error(transparent)]
    Poisoned(#[from] NodeLoopError),
    /// The node loop ended without reporting (a panic inside it).
    #[error("the node loop stopped unexpectedly")]
    NodeLoopLost,
    /// A broker runs 1 to `weir_core::shard::SHARDS_MAX` shards.
    #[error("{0} shards: a broker runs 1 to 256 (num.shards)")]
    Shards(usize),
}

/// A started server.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: String,
    node_id: i32,
    outcome: oneshot::Receiver<Result<(), ServerError>>,
    /// The bound metrics address, when `metrics_listen` is configured.
    metrics_addr: Option<String>,
    /// The bound WebSocket gateway address, when the gateway is on.
    gateway_addr: Option<String>,
    /// The bound REST proxy address, when it is on.
    rest_proxy_addr: Option<String>,
    /// The bound controller (peer) listener, in cluster mode.
    peer_addr: Option<String>,
    /// Every Kafka listener, the first (registered) one first.
    listeners: Vec<BoundListener>,
    /// The gateway serves wss://.
    gateway_tls: bool,
    /// `/metrics` is served over https.
    metrics_tls: bool,
    /// The HTTP services serve https (`weir.http.ssl.enable`).
    http_tls: bool,
    /// What SIGTERM asks the node loop for.
    shutdown: ShutdownHandle,
    /// The schema registry's REST API over this broker's `_schemas` log (without the HTTP
    /// stack's authentication: for in-process tests), when the registry is on.
    schema_registry: Option<axum::Router>,
    /// The bound schema registry address, when it is on.
    schema_registry_addr: Option<String>,
}

/// Asks a running server to shut down (what `weir serve` does on SIGTERM or Ctrl-C).
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    node: NodeHandle,
    settings: crate::config::ShutdownSettings,
}

impl ShutdownHandle {
    /// Shut down as configured: a controlled shutdown first unless
    /// `controlled.shutdown.enable` is off (see [`NodeInput::Shutdown`]). Returns once
    /// storage is flushed and client connections are closed; `None` when the node loop had
    /// already stopped. [`RunningServer::wait`] then returns.
    pub async fn shut_down(&self) -> Option<crate::messages::ShutdownReport> {
        let (reply, report) = oneshot::channel();
        let controlled_timeout_ms = (self.settings.controlled).then_some(self.settings.timeout_ms);
        let input = NodeInput::Shutdown {
            controlled_timeout_ms,
            reply,
        };
        // Shard 0 runs the controlled part (the controller moves the broker's leaderships,
        // every shard's), then the data shards flush and stop.
        self.node.send_to(0, input).await.ok()?;
        let mut report = report.await.ok()?;
        for shard in 1..self.node.count() {
            let (reply, done) = oneshot::channel();
            let input = NodeInput::Shutdown {
                controlled_timeout_ms: None,
                reply,
            };
            if self.node.send_to(shard, input).await.is_err() {
                continue; // That loop already stopped (its end is the server's outcome).
            }
            if let Ok(done) = done.await {
                report.flush_error = report.flush_error.or(done.flush_error);
            }
        }
        Some(report)
    }
}

/// Recover every shard's node from its storage; data shards then start from shard 0's
/// image (docs/sharding.md).
fn recover_shards<R: Runtime, S: StorageDriver>(
    runtime: &R,
    storages: &[S],
    config: &ServerConfig,
    count: u16,
) -> Result<Vec<Node>, ServerError> {
    let now = node_loop::now(runtime);
    let mut nodes: Vec<Node> = Vec::with_capacity(storages.len());
    for (index, storage) in (0..count).zip(storages) {
        let mut node_config = config.node.clone();
        node_config.shard = weir_core::shard::Shard::new(index, count)
            .ok_or(ServerError::Shards(storages.len()))?;
        let node = Node::recover(node_config, storage, now).map_err(|source| {
            let dir = crate::storage::shard_dir(&config.data_dir, index);
            ServerError::Recover {
                data_dir: dir.display().to_string(),
                source,
            }
        })?;
        nodes.push(node);
    }
    if let Some((control, data)) = nodes.split_first_mut() {
        let start = control.metadata_feed_snapshot();
        for node in data {
            node.handle_metadata_feed(now, start.clone());
        }
    }
    Ok(nodes)
}

/// A node loop's end, reported once (a loop that panicked reports [`ServerError::NodeLoopLost`]
/// through the drop).
struct LoopEnd(Option<mpsc::Sender<Result<(), ServerError>>>);

impl LoopEnd {
    fn report(mut self, result: Result<(), NodeLoopError>) {
        if let Some(ends) = self.0.take() {
            let _ = ends.try_send(result.map_err(ServerError::from));
        }
    }
}

impl Drop for LoopEnd {
    fn drop(&mut self) {
        if let Some(ends) = self.0.take() {
            let _ = ends.try_send(Err(ServerError::NodeLoopLost));
        }
    }
}

/// The server's outcome from its node loops' ends: the first failure, or Ok once every
/// loop ended Ok.
async fn first_loop_end(
    mut ends: mpsc::Receiver<Result<(), ServerError>>,
    count: u16,
    outcome: oneshot::Sender<Result<(), ServerError>>,
) {
    let mut ended = 0;
    while let Some(end) = ends.recv().await {
        if end.is_err() {
            let _ = outcome.send(end);
            return;
        }
        ended += 1;
        if ended == count {
            let _ = outcome.send(Ok(()));
            return;
        }
    }
}

/// A bound Kafka listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundListener {
    /// Its name in `listeners`.
    pub name: String,
    /// Its security protocol.
    pub protocol: SecurityProtocol,
    /// The bound `host:port`.
    pub addr: String,
}

impl RunningServer {
    /// The schema registry's REST API (Confluent's), when it is on: a Router with its
    /// state, without the HTTP stack's authentication (in-process tests call it directly).
    pub fn schema_registry(&self) -> Option<axum::Router> {
        self.schema_registry.clone()
    }

    /// The bound schema registry address, when it is on.
    pub fn schema_registry_addr(&self) -> Option<&str> {
        self.schema_registry_addr.as_deref()
    }

    /// The bound `host:port`.
    pub fn local_addr(&self) -> &str {
        &self.local_addr
    }

    /// This broker's node id.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The bound `host:port` serving `GET /metrics`, if metrics are on.
    pub fn metrics_addr(&self) -> Option<&str> {
        self.metrics_addr.as_deref()
    }

    /// The bound `host:port` of the WebSocket gateway, if it is on.
    pub fn gateway_addr(&self) -> Option<&str> {
        self.gateway_addr.as_deref()
    }

    /// Every bound Kafka listener, the first (registered, [`RunningServer::local_addr`])
    /// one first.
    pub fn listeners(&self) -> &[BoundListener] {
        &self.listeners
    }

    /// The bound address of the listener called `name` (case-insensitive).
    pub fn listener_addr(&self, name: &str) -> Option<&str> {
        (self.listeners.iter())
            .find(|listener| listener.name.eq_ignore_ascii_case(name))
            .map(|listener| listener.addr.as_str())
    }

    /// The bound `host:port` of the REST proxy, if it is on.
    pub fn rest_proxy_addr(&self) -> Option<&str> {
        self.rest_proxy_addr.as_deref()
    }

    /// Whether the HTTP services serve https (`weir.http.ssl.enable`).
    pub fn http_tls(&self) -> bool {
        self.http_tls
    }

    /// Whether the gateway serves wss:// (`weir.gateway.ssl.enable`).
    pub fn gateway_tls(&self) -> bool {
        self.gateway_tls
    }

    /// Whether `/metrics` is served over https (`weir.metrics.ssl.enable`).
    pub fn metrics_tls(&self) -> bool {
        self.metrics_tls
    }

    /// The bound `host:port` of the controller (peer) listener, in cluster mode.
    pub fn peer_addr(&self) -> Option<&str> {
        self.peer_addr.as_deref()
    }

    /// A handle that shuts this server down (usable while [`RunningServer::wait`] runs).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Wait until the server stops; an error means the node was poisoned.
    pub async fn wait(self) -> Result<(), ServerError> {
        match self.outcome.await {
            Ok(result) => result,
            Err(_) => Err(ServerError::NodeLoopLost),
        }
    }
}

/// Bind, recover and start serving over any storage driver (tests and the simulator pass
/// their own), with the remote store `weir.remote.storage.url` names, if any. Returns once
/// the listener is bound and the node recovered.
pub async fn start<R: Runtime, S: StorageDriver>(
    runtime: R,
    storage: S,
    config: ServerConfig,
) -> Result<RunningServer, ServerError> {
    let remote = match &config.remote_storage_url {
        Some(url) => Some(RemoteStore::from_url(url)?),
        None => None,
    };
    start_with_remote(runtime, storage, config, remote).await
}

/// [`start`] with a remote store built by the caller (`None`: no tiered storage, whatever
/// the config says).
pub async fn start_with_remote<R: Runtime, S: StorageDriver>(
    runtime: R,
    storage: S,
    config: ServerConfig,
    remote: Option<RemoteStore>,
) -> Result<RunningServer, ServerError> {
    start_shards(runtime, vec![storage], config, remote).await
}

/// [`start_with_remote`] for a broker of several shards (docs/sharding.md): shard `k`'s
/// node loop applies its writes to `storages[k]` (at least one; `config.shards` is not
/// consulted: the storages are the shards).
pub async fn start_shards<R: Runtime, S: StorageDriver>(
    runtime: R,
    storages: Vec<S>,
    mut config: ServerConfig,
    remote: Option<RemoteStore>,
) -> Result<RunningServer, ServerError> {
    let count = u16::try_from(storages.len())
        .ok()
        .filter(|count| (1..=weir_core::shard::SHARDS_MAX).contains(count))
        .ok_or(ServerError::Shards(storages.len()))?;
    config.node.remote_storage_enable = remote.is_some();
    if let Some(remote) = &remote {
        tracing::info!("tiered storage in {}", remote.label());
    }
    let tls = LoadedTls::load(&runtime, &config.listeners).await?;
    let peer_tls = load_peer_tls(&runtime, &config.listeners).await?;
    let bind_error = |source| ServerError::Bind {
        addr: config.listen.clone(),
        source,
    };
    let listener = runtime.bind(&config.listen).await.map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    let mut others = Vec::with_capacity(config.listeners.others.len());
    for extra in &config.listeners.others {
        let bind_error = |source| ServerError::Bind {
            addr: extra.addr.clone(),
            source,
        };
        let bound_listener = runtime.bind(&extra.addr).await.map_err(bind_error)?;
        let bound = bound_listener.local_addr().map_err(bind_error)?;
        others.push((extra.clone(), bound_listener, bound));
    }
    // Bound before recovery too, so a taken metrics port fails the start, not a scrape.
    let metrics_listener = match &config.metrics_listen {
        None => None,
        Some(addr) => {
            let metrics_error = |source| ServerError::Bind {
                addr: addr.clone(),
                source,
            };
            let metrics_listener = runtime.bind(addr).await.map_err(metrics_error)?;
            let bound = metrics_listener.local_addr().map_err(metrics_error)?;
            Some((metrics_listener, bound))
        }
    };
    let gateway_listener = bind_gateway(&runtime, config.gateway.as_ref()).await?;
    let rest_listener = bind_service(
        &runtime,
        config.rest_proxy.as_ref(),
        "REST proxy",
        "--rest-proxy",
    )
    .await?;
    let registry_listener = bind_service(
        &runtime,
        config.schema_registry.as_ref(),
        "schema registry",
        "--schema-registry",
    )
    .await?;
    let peer_listener = bind_peer(&runtime, &config).await?;
    if config.advertise_bound_address {
        if let Some((host, port)) = advertised_for_bound(&local_addr) {
            config.node.advertised_host = host;
            config.node.advertised_port = port;
        }
    }
    let node_id = config.node.node_id;
    // Every draw the node makes (Raft timeouts, incarnation) comes from the runtime's seed.
    config.node.seed = runtime.rng_seed();
    // DescribeLogDirs names the data directory as Kafka names a log directory: by its
    // absolute path. The core only reports it; it never opens it.
    config.node.log_dir = std::path::absolute(&config.data_dir)
        .unwrap_or_else(|_| config.data_dir.clone())
        .display()
        .to_string();
    let nodes = recover_shards(&runtime, &storages, &config, count)?;
    let mut senders = Vec::with_capacity(nodes.len());
    let mut inputs = Vec::with_capacity(nodes.len());
    for _ in 0..count {
        let (sender, receiver) = mpsc::channel(NODE_INPUTS_MAX);
        senders.push(sender);
        inputs.push(receiver);
    }
    let node_sender = NodeHandle::new(senders, nodes[0].placement());
    let (outcome_sender, outcome) = oneshot::channel();
    let (ends_sender, ends) = mpsc::channel(usize::from(count));
    runtime.spawn(first_loop_end(ends, count, outcome_sender));
    let check_invariants = config.check_invariants;
    let loops = nodes.into_iter().zip(inputs).zip(storages.iter().cloned());
    for ((node, node_inputs), loop_storage) in loops {
        let loop_runtime = runtime.clone();
        let loop_remote = remote.clone();
        let loop_peer_tls = peer_tls.clone();
        let shards = node_sender.downgrade();
        let end = LoopEnd(Some(ends_sender.clone()));
        runtime.spawn(async move {
            let settings = node_loop::LoopSettings {
                check_invariants,
                remote: loop_remote,
                peer_tls: loop_peer_tls,
                shards,
            };
            let result =
                node_loop::run(loop_runtime, loop_storage, node, node_inputs, settings).await;
            end.report(result);
        });
    }
    drop(ends_sender);
    // Responses' reads resolve against the store of the shard that planned them.
    let storage = ShardedStorage::new(storages);
    let listeners_config = &config.listeners;
    let timeout = listeners_config.handshake_timeout;
    let metrics_tls = tls.acceptor(listeners_config.metrics_tls.as_ref(), timeout);
    let metrics_on_tls = metrics_tls.is_some();
    let limits = ClientLimits::new(config.client_limits);
    let metrics_addr = metrics_listener.map(|(metrics_listener, bound)| {
        let node = node_sender.clone();
        let scrapes = crate::metrics::serve(
            runtime.clone(),
            metrics_listener,
            node,
            metrics_tls,
            Arc::clone(&limits),
        );
        runtime.spawn(scrapes);
        bound
    });
    let gateway_tls = tls.acceptor(listeners_config.gateway_tls.as_ref(), timeout);
    let gateway_on_tls = gateway_tls.is_some();
    let gateway_addr = gateway_listener.map(|(gateway_listener, bound)| {
        let context = crate::gateway::GatewayContext::new(
            runtime.clone(),
            storage.clone(),
            node_sender.clone(),
            node_id,
        )
        .with_remote(remote.clone())
        .with_sasl(
            sasl_listener(&runtime, "weir-gateway", config.gateway_sasl.as_ref()),
            config.listeners.first.protocol.uses_sasl(),
        )
        .with_upstream_tls(gateway_upstream_tls(&config.listeners.first));
        runtime.spawn(crate::gateway::serve(
            context,
            gateway_listener,
            gateway_tls,
        ));
        bound
    });
    let http_tls = tls.acceptor(listeners_config.http_tls.as_ref(), timeout);
    let http_on_tls = http_tls.is_some();
    let platform = crate::http::Platform::new(
        runtime.clone(),
        storage.clone(),
        node_sender.clone(),
        node_id,
    )
    .with_remote(remote.clone())
    .with_auth(
        match sasl_listener(&runtime, "weir-http", config.http_sasl.as_ref()) {
            Some(listener) => crate::http::HttpAuth::Basic(listener),
            None => crate::http::HttpAuth::None,
        },
        config.listeners.first.protocol.uses_sasl(),
    )
    .with_upstream_tls(gateway_upstream_tls(&config.listeners.first))
    .with_request_bytes_max(config.http_request_bytes_max)
    .with_cors(config.http_cors.clone());
    let platform = Arc::new(platform);
    let mut schema_registry = None;
    let mut schema_registry_addr = None;
    // The registry starts first: the REST proxy's schema formats go through its log.
    let mut schema_log = None;
    if let Some((registry_listener, bound)) = registry_listener {
        let first = &config.listeners.first;
        let access = crate::registry::BrokerAccess {
            tls: gateway_upstream_tls(first),
            login: config.schema_registry_login.clone(),
            sasl_listener: first.protocol.uses_sasl().then(|| first.name.clone()),
        };
        let reason = access
            .cannot_log_in()
            .filter(|_| config.node.cluster.is_some());
        if let Some(reason) = reason {
            tracing::warn!(
                "schema registry: {reason}; its requests to other brokers will be refused"
            );
        }
        let (storage, remote) = (storage.clone(), remote.clone());
        let node = node_sender.clone();
        let routes =
            crate::registry::routes(runtime.clone(), storage, remote, node, node_id, access).await;
        if let Some((routes, log)) = routes {
            schema_log = Some(log);
            runtime.spawn(crate::http::serve(
                Arc::clone(&platform),
                "schema registry",
                registry_listener,
                http_tls.clone(),
                crate::registry::served(routes.clone()),
            ));
            schema_registry = Some(routes);
            schema_registry_addr = Some(bound);
        }
    }
    let rest_proxy_addr = rest_listener.map(|(rest_listener, bound)| {
        let timeout = Duration::from_millis(config.rest_instance_timeout_ms);
        runtime.spawn(crate::http::serve(
            Arc::clone(&platform),
            "REST proxy",
            rest_listener,
            http_tls.clone(),
            crate::rest::routes(timeout, schema_log.clone()),
        ));
        bound
    });
    let peer_addr = peer_listener.map(|(peer_listener, bound)| {
        let cluster_id = config.node.cluster_id.clone();
        let accept = crate::peer::accept_loop(
            runtime.clone(),
            peer_listener,
            cluster_id,
            node_sender.clone(),
            peer_tls.clone(),
        );
        runtime.spawn(accept);
        bound
    });
    let first = &listeners_config.first;
    let mut listeners = vec![BoundListener {
        name: first.name.clone(),
        protocol: first.protocol,
        addr: local_addr.clone(),
    }];
    // One connection id sequence for every listener: the node loop keys connections by it.
    let conn_ids = Arc::new(AtomicU64::new(1));
    let listening = Listening {
        name: first.name.clone(),
        tls: tls.acceptor(first.tls.as_ref(), timeout),
        advertised: None,
        frame_bytes_max: config.frame_bytes_max,
        sasl: sasl_listener(&runtime, &first.name, first.sasl.as_ref()),
        principal_mapping: first.principal_mapping.clone(),
        conn_ids: Arc::clone(&conn_ids),
        limits: Arc::clone(&limits),
    };
    let accept = accept_loop(
        runtime.clone(),
        listener,
        storage.clone(),
        node_sender.clone(),
        listening,
        remote.clone(),
    );
    runtime.spawn(accept);
    for (extra, bound_listener, bound) in others {
        let (host, port) = match extra.advertised.clone() {
            Some(advertised) => advertised,
            None => advertised_for_bound(&bound).unwrap_or_else(|| {
                // A bound address always parses; keep the configured one if not.
                (
                    config.node.advertised_host.clone(),
                    config.node.advertised_port,
                )
            }),
        };
        let listening = Listening {
            name: extra.kind.name.clone(),
            tls: tls.acceptor(extra.kind.tls.as_ref(), timeout),
            advertised: Some(Arc::new(Advertised {
                node_id,
                host,
                port,
            })),
            frame_bytes_max: config.frame_bytes_max,
            sasl: sasl_listener(&runtime, &extra.kind.name, extra.kind.sasl.as_ref()),
            principal_mapping: extra.kind.principal_mapping.clone(),
            conn_ids: Arc::clone(&conn_ids),
            limits: Arc::clone(&limits),
        };
        let accept = accept_loop(
            runtime.clone(),
            bound_listener,
            storage.clone(),
            node_sender.clone(),
            listening,
            remote.clone(),
        );
        runtime.spawn(accept);
        listeners.push(BoundListener {
            name: extra.kind.name,
            protocol: extra.kind.protocol,
            addr: bound,
        });
    }
    tls.spawn_reloads(&runtime, listeners_config.reload_interval);
    Ok(RunningServer {
        local_addr,
        node_id,
        outcome,
        metrics_addr,
        gateway_addr,
        rest_proxy_addr,
        peer_addr,
        listeners,
        gateway_tls: gateway_on_tls,
        http_tls: http_on_tls,
        metrics_tls: metrics_on_tls,
        shutdown: ShutdownHandle {
            node: node_sender,
            settings: config.shutdown,
        },
        schema_registry,
        schema_registry_addr,
    })
}

/// The TLS material of every distinct [`TlsSettings`] in use, loaded once each.
struct LoadedTls {
    loaded: Vec<ServerTls>,
}

impl LoadedTls {
    /// Load the material of every TLS listener, the gateway's and `/metrics`'; listeners
    /// with equal settings share one load (and one reload task).
    async fn load<R: Runtime>(runtime: &R, set: &ListenerSet) -> Result<LoadedTls, ServerError> {
        let mut users: Vec<(TlsSettings, Vec<String>)> = Vec::new();
        let others = set.others.iter().map(|extra| &extra.kind);
        let kafka = std::iter::once(&set.first).chain(others);
        let kafka = kafka.filter_map(|kind| Some((kind.tls.as_ref()?, kind.name.clone())));
        let http = [
            (set.gateway_tls.as_ref(), "gateway"),
            (set.metrics_tls.as_ref(), "metrics"),
            (set.http_tls.as_ref(), "http"),
        ];
        let http = (http.into_iter()).filter_map(|(tls, name)| Some((tls?, name.to_owned())));
        for (settings, name) in kafka.chain(http) {
            match users.iter_mut().find(|(known, _)| known == settings) {
                Some((_, names)) => names.push(name),
                None => users.push((settings.clone(), vec![name])),
            }
        }
        let mut loaded = Vec::with_capacity(users.len());
        for (settings, names) in users {
            let label = names.join(", ");
            let load_label = label.clone();
            let result = runtime
                .offload(move || ServerTls::load(&load_label, &settings))
                .await;
            let tls = result.map_err(|error| ServerError::Tls {
                listener: label,
                error,
            })?;
            loaded.push(tls);
        }
        Ok(LoadedTls { loaded })
    }

    /// An acceptor for `settings` (`None`: plaintext).
    fn acceptor(&self, settings: Option<&TlsSettings>, timeout: Duration) -> Option<TlsAcceptor> {
        let settings = settings?;
        let tls = self.loaded.iter().find(|tls| tls.settings() == settings);
        // Every settings value in the set was loaded by `load`.
        let tls = tls.expect("TLS settings loaded at start");
        Some(TlsAcceptor::new(tls.clone(), timeout))
    }

    /// One reload task per material read from files.
    fn spawn_reloads<R: Runtime>(self, runtime: &R, interval: Duration) {
        for tls in self.loaded.into_iter().filter(ServerTls::watches_files) {
            runtime.spawn(crate::tls::reload_loop(runtime.clone(), tls, interval));
        }
    }
}

/// What an accept loop knows about its listener.
struct Listening {
    /// The listener's name, for logs.
    name: String,
    /// Its TLS, when the protocol is SSL.
    tls: Option<TlsAcceptor>,
    /// This broker's endpoint on it, when it is not the registered listener.
    advertised: Option<Arc<Advertised>>,
    /// `socket.request.max.bytes`.
    frame_bytes_max: usize,
    /// Its SASL, when the protocol is SASL_PLAINTEXT or SASL_SSL.
    sasl: Option<Arc<SaslListener>>,
    /// `ssl.principal.mapping.rules`, when the protocol is SSL: a client certificate names
    /// the connection's principal.
    principal_mapping: Option<PrincipalMapper>,
    /// The connection ids every listener draws from.
    conn_ids: Arc<AtomicU64>,
    /// The broker-wide connection and request budgets every listener shares.
    limits: Arc<ClientLimits>,
}

/// A SASL listener's shared state, its nonces keyed by the runtime's secret seed salted
/// with the listener's name (so two listeners never draw the same sequence).
fn sasl_listener<R: Runtime>(
    runtime: &R,
    name: &str,
    settings: Option<&SaslSettings>,
) -> Option<Arc<SaslListener>> {
    let settings = settings?;
    let mut seed = runtime.secret_seed();
    for (index, byte) in name.bytes().enumerate() {
        seed[index % seed.len()] ^= byte.rotate_left(index as u32 % 8);
    }
    Some(Arc::new(SaslListener::new(settings.clone(), seed)))
}

/// Load the peer links' TLS (`CONTROLLER:SSL`) and start its reload task; `None` when the
/// controller listener is plaintext.
async fn load_peer_tls<R: Runtime>(
    runtime: &R,
    set: &ListenerSet,
) -> Result<Option<crate::peer::PeerTls>, ServerError> {
    let Some(settings) = set.peer_tls.clone() else {
        return Ok(None);
    };
    let listener = format!("controller listener {}", settings.listener);
    let loaded = runtime
        .offload(move || ServerTls::load_peer(&settings))
        .await;
    let tls = loaded.map_err(|error| ServerError::Tls { listener, error })?;
    if tls.watches_files() {
        let reload = crate::tls::reload_loop(runtime.clone(), tls.clone(), set.reload_interval);
        runtime.spawn(reload);
    }
    let peer_tls = crate::peer::PeerTls::new(tls, set.handshake_timeout);
    Ok(Some(peer_tls.expect("load_peer builds the client side")))
}

/// Bind the controller (peer) listener in cluster mode; see [`crate::peer::bind_address`].
async fn bind_peer<R: Runtime>(
    runtime: &R,
    config: &ServerConfig,
) -> Result<Option<(R::Listener, String)>, ServerError> {
    let Some(cluster) = &config.node.cluster else {
        return Ok(None);
    };
    let addr = crate::peer::bind_address(&cluster.peer_addr);
    let peer_error = |source| ServerError::Bind {
        addr: addr.clone(),
        source,
    };
    let listener = runtime.bind(&addr).await.map_err(peer_error)?;
    let bound = listener.local_addr().map_err(peer_error)?;
    Ok(Some((listener, bound)))
}

/// TLS for the gateway's upstream connections when the registered listener (which other
/// brokers' Metadata endpoints name) is SSL or SASL_SSL: its truststore verifies them.
/// Without a usable truststore the gateway cannot reach other brokers over TLS; that is
/// logged, and routed requests fail with NETWORK_EXCEPTION (a single node is unaffected).
fn gateway_upstream_tls(
    first: &crate::listener::ListenerKind,
) -> Option<Arc<rustls::ClientConfig>> {
    let settings = first.tls.as_ref().filter(|_| first.protocol.uses_tls())?;
    match crate::gateway::upstream::client_tls(settings) {
        Ok(Some(config)) => Some(config),
        Ok(None) => {
            tracing::warn!(
                "gateway: listener {} is TLS but has no ssl.truststore.*: requests routed \
                 to other brokers cannot verify them and will fail",
                first.name
            );
            None
        }
        Err(error) => {
            tracing::warn!("gateway: no TLS for routed requests: {error}");
            None
        }
    }
}

/// Bind the gateway's listener. A failed bind of the built-in default address is logged and
/// the broker runs without a gateway; an explicitly configured one fails the start.
async fn bind_gateway<R: Runtime>(
    runtime: &R,
    gateway: Option<&crate::config::GatewayListen>,
) -> Result<Option<(R::Listener, String)>, ServerError> {
    bind_service(runtime, gateway, "WebSocket gateway", "--gateway").await
}

/// Bind a service's listener (`what`, set by `flag`): a failed bind of the built-in default
/// address is logged and the broker runs without the service; an explicitly configured
/// one fails the start.
async fn bind_service<R: Runtime>(
    runtime: &R,
    gateway: Option<&crate::config::ServiceListen>,
    what: &str,
    flag: &str,
) -> Result<Option<(R::Listener, String)>, ServerError> {
    let Some(gateway) = gateway else {
        return Ok(None);
    };
    let bound = match runtime.bind(&gateway.addr).await {
        Ok(listener) => listener.local_addr().map(|addr| (listener, addr)),
        Err(error) => Err(error),
    };
    match bound {
        Ok(bound) => Ok(Some(bound)),
        Err(source) if gateway.required => Err(ServerError::Bind {
            addr: gateway.addr.clone(),
            source,
        }),
        Err(error) => {
            tracing::warn!(
                "{what} off: cannot listen on {} ({error}); set {flag}",
                gateway.addr
            );
            Ok(None)
        }
    }
}

/// Open fjall in the configured data directory and serve until the node stops.
#[cfg(feature = "fjall")]
pub async fn serve<R: Runtime>(runtime: R, config: ServerConfig) -> Result<(), ServerError> {
    let server = start_fjall(runtime, config.clone()).await?;
    tracing::info!(
        "weir listening on {} (node {}, data {})",
        server.local_addr(),
        server.node_id(),
        config.data_dir.display()
    );
    server.wait().await
}

/// [`start`] over [`crate::storage::fjall::FjallStorage`] opened in `config.data_dir`.
#[cfg(feature = "fjall")]
pub async fn start_fjall<R: Runtime>(
    runtime: R,
    config: ServerConfig,
) -> Result<RunningServer, ServerError> {
    let data_dir = config.data_dir.clone();
    // The directory's identity first: a directory of another cluster or node, or of a
    // newer format, is refused before anything in it is opened.
    let (identity_dir, cluster_id) = (data_dir.clone(), config.node.cluster_id.clone());
    let node_id = config.node.node_id;
    let wanted = config.shards;
    let identity = runtime
        .offload(move || {
            crate::storage::identity::check_or_write(&identity_dir, &cluster_id, node_id, wanted)
        })
        .await?;
    let shards = identity.shards;
    tracing::info!(shards, "num.shards: {shards} node loop(s)");
    let mut storages = Vec::with_capacity(usize::from(shards));
    for index in 0..shards {
        let open_dir = data_dir.clone();
        // Opening replays fjall's journal: blocking work.
        let storage = runtime
            .offload(move || crate::storage::fjall::FjallStorage::open_shard(&open_dir, index))
            .await
            .map_err(|source| ServerError::Recover {
                data_dir: crate::storage::shard_dir(&data_dir, index)
                    .display()
                    .to_string(),
                source,
            })?;
        storages.push(storage);
    }
    let remote = match &config.remote_storage_url {
        Some(url) => Some(RemoteStore::from_url(url)?),
        None => None,
    };
    start_shards(runtime, storages, config, remote).await
}

async fn accept_loop<R: Runtime, S: StorageDriver>(
    runtime: R,
    mut listener: R::Listener,
    storage: S,
    node: NodeHandle,
    listening: Listening,
    remote: Option<RemoteStore>,
) {
    loop {
        let (stream, peer) = loop {
            match listener.accept().await {
                Ok(accepted) => break accepted,
                Err(error) => {
                    tracing::warn!("accept failed: {error}");
                    runtime
                        .sleep_until(runtime.now() + ACCEPT_RETRY_DELAY)
                        .await;
                }
            }
        };
        if node.is_closed() {
            return; // The node loop has stopped: stop accepting.
        }
        let Some(slot) = listening.limits.try_connect() else {
            // Over max.connections: closed before any byte is read, as Kafka does.
            let max = listening.limits.usage().settings.connections_max;
            tracing::warn!(
                "closing connection from {peer} on listener {}: max.connections ({max}) open",
                listening.name
            );
            drop(stream);
            continue;
        };
        let conn = listening.conn_ids.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            "connection {conn} from {peer} on listener {}",
            listening.name
        );
        let context = ConnContext {
            conn,
            peer,
            frame_bytes_max: listening.frame_bytes_max,
            advertised: listening.advertised.clone(),
            remote: remote.clone(),
            sasl: listening.sasl.clone(),
            principal: None,
            limits: Arc::clone(&listening.limits),
            slot: Some(Arc::new(slot)),
        };
        let Some(acceptor) = &listening.tls else {
            conn::start(&runtime, stream, storage.clone(), context, node.clone()).await;
            continue;
        };
        // The handshake runs on its own task, bounded in time and in number (TlsAcceptor).
        let (acceptor, task_runtime) = (acceptor.clone(), runtime.clone());
        let (storage, node, name) = (storage.clone(), node.clone(), listening.name.clone());
        let mapping = listening.principal_mapping.clone();
        runtime.spawn(async move {
            let mut context = context;
            let stream = match acceptor.accept(&task_runtime, stream).await {
                Ok(stream) => stream,
                Err(error) => {
                    let peer = &context.peer;
                    tracing::info!("closing connection from {peer} on listener {name}: {error}");
                    return;
                }
            };
            // mTLS: a client certificate names the principal (Kafka fails the
            // authentication, so the connection, when no mapping rule applies).
            if let Some(mapping) = &mapping {
                match client_principal(stream.get_ref().1, mapping) {
                    Ok(principal) => context.principal = principal,
                    Err(error) => {
                        let peer = &context.peer;
                        tracing::info!(
                            "closing connection from {peer} on listener {name}: {error}"
                        );
                        return;
                    }
                }
            }
            conn::start(&task_runtime, stream, storage, context, node).await;
        });
    }
}
