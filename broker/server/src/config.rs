//! Server configuration: `weir serve` flags plus an optional TOML file that uses Kafka's
//! property names (`listeners`, `log.retention.ms`, `num.partitions`, ...).
//!
//! Invariants:
//! - Every key in the file is either understood or refused: a typo must not silently fall
//!   back to a default (an operator who writes `log.retention.hour = 1` expects retention).
//! - Every refusal names the key and the file, e.g.
//!   `unknown setting "log.retention.foo" in weir.toml`.
//! - Flags override the environment, the environment overrides the file, the file the
//!   built-in defaults. The environment's settings are `WEIR_` + the key in capitals with
//!   Confluent's separator rule ([`env_key`]: `WEIR_LOG_RETENTION_MS`); a `WEIR_*`
//!   variable that names no setting is ignored with a warning (tools share the prefix),
//!   a bad value is refused naming the variable.
//! - Cluster mode is on exactly when `controller.quorum.voters` / `--voters` is set; it
//!   then needs a controller listener (`controller.listener` / `--controller-listen`).
//!   Without voters the broker runs single-node, exactly as before cluster mode existed.
//! - Keys may be written flat and quoted (`"log.retention.ms" = 1`), as TOML dotted keys
//!   (`log.retention.ms = 1`, which TOML turns into nested tables), or as nested tables:
//!   all three flatten to the same Kafka property name.
//! - Listener and TLS keys (`listeners`, `listener.security.protocol.map`, `ssl.*`, ...) are
//!   checked together in [`security`]; `--listen` replaces the first listener's address.
//! - Tiered storage is on exactly when `weir.remote.storage.url` / `--remote-storage-url`
//!   is set; its URL is checked here (scheme, bucket, absolute path), the store itself is
//!   opened at start.

mod authorizer;
mod kafkastore;
mod sasl;
mod security;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use weir_core::cluster::{AckDurability, ClusterConfig, Voter};
use weir_core::config::{CleanupPolicy, DirtyRatio, Durability, NodeConfig};
use weir_wire::frame::FRAME_BYTES_MAX;

use crate::listener::ListenerSet;
pub use kafkastore::RegistryLogin;

/// Listen address used when neither `--listen` nor `listeners` is given.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:9092";
/// Data directory used when neither `--data-dir` nor `log.dirs` is given.
pub const DATA_DIR_DEFAULT: &str = "./data";
/// Node id used when neither `--node-id` nor `node.id`/`broker.id` is given.
pub const NODE_ID_DEFAULT: i32 = 1;

/// `weir serve` flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, HOST:PORT; replaces the address of the first (inter-broker)
    /// listener of `listeners` [default: 127.0.0.1:9092]
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Directory for the broker's data [default: ./data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// This broker's node id [default: 1]
    #[arg(long, value_name = "N")]
    pub node_id: Option<i32>,
    /// TOML config file; keys are Kafka broker property names
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics [default: off]
    /// (config key `weir.metrics.listener`)
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics: Option<String>,
    /// WebSocket gateway for the WASM client, HOST:PORT or `off` [default: 127.0.0.1:9093]
    /// (config key `weir.gateway.listener`)
    #[arg(long, value_name = "HOST:PORT|off")]
    pub gateway: Option<String>,
    /// REST proxy (Confluent's API v2/v3), HOST:PORT or `off` [default: 127.0.0.1:8082]
    /// (config key `weir.rest.proxy.listener`)
    #[arg(long, value_name = "HOST:PORT|off")]
    pub rest_proxy: Option<String>,
    /// Schema registry (Confluent's API), HOST:PORT or `off` [default: 127.0.0.1:8081]
    /// (config key `weir.schema.registry.listener`)
    #[arg(long, value_name = "HOST:PORT|off")]
    pub schema_registry: Option<String>,
    /// Controller (peer) listener, HOST:PORT; other nodes dial it, so it is advertised as
    /// given (config key `controller.listener`; needed with --voters)
    #[arg(long, value_name = "HOST:PORT")]
    pub controller_listen: Option<String>,
    /// Controller quorum voters ID@HOST:PORT,... (their controller listeners); turns on
    /// cluster mode (config key `controller.quorum.voters`) [default: single node]
    #[arg(long, value_name = "ID@HOST:PORT,...")]
    pub voters: Option<String>,
    /// Tiered storage's object store: file:///DIR, s3://BUCKET[/PREFIX] (AWS_* variables
    /// configure it) or memory:// (config key `weir.remote.storage.url`) [default: off]
    #[arg(long, value_name = "URL")]
    pub remote_storage_url: Option<String>,
    /// How many shards (node loops, each with its own storage) run the partitions (config
    /// key `num.shards`); fixed when the data directory is created [default: the cores
    /// this process may run on, or an existing data directory's count]
    #[arg(long, value_name = "N", overrides_with = "num_shards")]
    pub num_shards: Option<u16>,
}

/// How many shards a broker runs (`num.shards`, docs/sharding.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardCount {
    /// `num.shards` is set: this many; a data directory created with another count is
    /// refused (the operator asked for something the directory cannot give).
    Exactly(u16),
    /// `num.shards` is not set: a data directory keeps the count it was created with
    /// (an upgrade, or a machine with other cores, starts as before); a new directory
    /// gets this many, the cores this process may run on.
    Default(u16),
}

impl ShardCount {
    /// The count a new data directory is created with.
    pub fn for_new_directory(self) -> u16 {
        match self {
            ShardCount::Exactly(count) | ShardCount::Default(count) => count.max(1),
        }
    }
}

/// The default shard count: the cores this process may run on (its affinity mask, so
/// `taskset -c 0` gives 1), within 1..=`SHARDS_MAX`.
pub fn default_shards() -> u16 {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    u16::try_from(cores)
        .unwrap_or(u16::MAX)
        .clamp(1, weir_core::shard::SHARDS_MAX)
}

/// Default of `weir.controlled.shutdown.timeout.ms`: how long SIGTERM waits for the
/// controller to move this broker's leaderships before it exits anyway.
pub const CONTROLLED_SHUTDOWN_TIMEOUT_MS_DEFAULT: u64 = 30_000;

/// What SIGTERM (or Ctrl-C) does: `controlled.shutdown.enable` (Kafka's key) and
/// `weir.controlled.shutdown.timeout.ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownSettings {
    /// Ask the controller to move every leadership this broker holds to another in-sync
    /// replica before exiting (default); off: flush and exit at once (the others then
    /// fail over as after a crash).
    pub controlled: bool,
    /// How long to wait for that before exiting anyway.
    pub timeout_ms: u64,
}

impl Default for ShutdownSettings {
    fn default() -> ShutdownSettings {
        ShutdownSettings {
            controlled: true,
            timeout_ms: CONTROLLED_SHUTDOWN_TIMEOUT_MS_DEFAULT,
        }
    }
}

/// The setting a `WEIR_*` environment variable names, or `None` for other variables:
/// the rest of the name lowercased, with Confluent's container rule for separators (`_`
/// is a dot, `__` an underscore, `___` a dash): `WEIR_LOG_RETENTION_MS` is
/// `log.retention.ms`, `WEIR_WEIR_METRICS_LISTENER` is `weir.metrics.listener`. A run of
/// four or more underscores, or one at either end, names nothing.
pub fn env_key(name: &str) -> Option<String> {
    let rest = name.strip_prefix("WEIR_")?;
    let mut key = String::with_capacity(rest.len());
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            key.extend(c.to_lowercase());
            continue;
        }
        let mut run = 1;
        while chars.next_if_eq(&'_').is_some() {
            run += 1;
        }
        key.push(match run {
            1 => '.',
            2 => '_',
            3 => '-',
            _ => return None,
        });
    }
    let bad_end = |c: Option<char>| c.is_none_or(|c| c == '.');
    if bad_end(key.chars().next()) || bad_end(key.chars().last()) {
        return None;
    }
    Some(key)
}

/// Where a service listens beside the Kafka listeners (the WebSocket gateway, the HTTP
/// services).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceListen {
    /// `host:port` to bind; port 0 picks a free port.
    pub addr: String,
    /// Configured explicitly: a failed bind fails the start. The built-in default only logs
    /// a warning (a second local broker must not fail because 9093 is taken).
    pub required: bool,
}

/// Where the WebSocket gateway listens.
pub type GatewayListen = ServiceListen;

/// Everything `serve` needs: the core's config plus the driver's own settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The broker core's configuration.
    pub node: NodeConfig,
    /// `host:port` the first listener binds (the registered one: see
    /// [`ListenerSet::first`]); port 0 picks a free port.
    pub listen: String,
    /// Every Kafka listener's name and security protocol, the others' addresses, and TLS.
    pub listeners: ListenerSet,
    /// Where fjall keeps its files.
    pub data_dir: PathBuf,
    /// `socket.request.max.bytes`: larger frames close their connection.
    pub frame_bytes_max: usize,
    /// `max.connections`, `queued.max.requests`, `queued.max.request.bytes`.
    pub client_limits: crate::limits::LimitSettings,
    /// `num.network.threads`: the async runtime's worker threads (connections, TLS, request
    /// decoding and encoding, fetch reads); `None` (the default): one per core the process
    /// may run on. The partitions' state machine is one task (docs/operations.md, "Threads").
    pub network_threads: Option<usize>,
    /// True when `advertised.listeners` names no address for the first listener: `serve`
    /// then advertises the address it actually bound (so port 0 advertises the real port,
    /// and a wildcard host advertises 127.0.0.1).
    pub advertise_bound_address: bool,
    /// Assert `Node::invariants` after every step of the node loop (no Kafka property: the
    /// simulator turns it on; it walks every partition, too slow for production).
    pub check_invariants: bool,
    /// `weir.metrics.listener` / `--metrics`: `host:port` serving Prometheus text at
    /// `GET /metrics`; `None` (the default) serves no metrics.
    pub metrics_listen: Option<String>,
    /// `weir.gateway.listener` / `--gateway`: the WebSocket gateway; `None` = off.
    pub gateway: Option<GatewayListen>,
    /// `weir.gateway.sasl.*`: how gateway sessions authenticate; `None` = they do not.
    pub gateway_sasl: Option<crate::sasl::SaslSettings>,
    /// `weir.rest.proxy.listener` / `--rest-proxy`: the REST proxy; `None` = off.
    pub rest_proxy: Option<ServiceListen>,
    /// `weir.http.authentication.method` and `weir.http.sasl.listener`: how the HTTP
    /// services check Basic credentials; `None` = callers are anonymous.
    pub http_sasl: Option<crate::sasl::SaslSettings>,
    /// `weir.http.max.request.bytes`: the largest HTTP request body.
    pub http_request_bytes_max: usize,
    /// `access.control.allow.origin` / `.methods` / `.headers` (Confluent's keys): CORS on
    /// the HTTP services; `None` (no origin, the default) = off.
    pub http_cors: Option<crate::http::Cors>,
    /// `weir.rest.consumer.instance.timeout.ms`: idle time after which a REST consumer
    /// instance is closed (Confluent's `consumer.instance.timeout.ms`, default 300000).
    pub rest_instance_timeout_ms: u64,
    /// `weir.remote.storage.url` / `--remote-storage-url`: tiered storage's object store
    /// (a URL [`crate::remote::RemoteUrl`] accepts); `None` (the default): no tiered storage.
    pub remote_storage_url: Option<String>,
    /// `num.shards` / `--num-shards`: how many node loops ("shards", docs/sharding.md) run
    /// the partitions, each on its own storage. A data directory keeps the count it was
    /// created with.
    pub shards: ShardCount,
    /// `controlled.shutdown.enable`, `weir.controlled.shutdown.timeout.ms`.
    pub shutdown: ShutdownSettings,
    /// `weir.schema.registry.listener` / `--schema-registry`: the schema registry; `None` =
    /// off (no `_schemas` tail either).
    pub schema_registry: Option<ServiceListen>,
    /// `kafkastore.security.protocol`, `kafkastore.sasl.mechanism`,
    /// `kafkastore.sasl.jaas.config` (Confluent Schema Registry's keys): how the registry
    /// logs in to brokers; `None` = it does not (`User:__weir_schema_registry` locally).
    pub schema_registry_login: Option<RegistryLogin>,
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {file}: {source}")]
    Read {
        /// The file as given.
        file: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("invalid TOML in {file}: {message}")]
    Syntax {
        /// The file as given.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// A key Weir does not know.
    #[error("unknown setting \"{key}\" in {file}")]
    UnknownKey {
        /// The Kafka property name.
        key: String,
        /// The file as given.
        file: String,
    },
    /// A known key with a value Weir cannot use.
    #[error("invalid value for \"{key}\" in {file}: {reason}")]
    InvalidValue {
        /// The Kafka property name, or the flag (`--listen`).
        key: String,
        /// The file as given, or `the command line`.
        file: String,
        /// What is wrong.
        reason: String,
    },
}

/// Where a flag's value came from, for error messages.
const COMMAND_LINE: &str = "the command line";

impl ServerConfig {
    /// Defaults with flags and (if `--config` is given) the file applied.
    pub fn from_args(args: &ServeArgs) -> Result<ServerConfig, ConfigError> {
        ServerConfig::from_args_and_env(args, std::env::vars_os())
    }

    /// [`ServerConfig::from_args`] with the environment given: the file, then every
    /// `WEIR_*` variable that names a setting ([`env_key`]), then the flags, each
    /// overriding the one before. A `WEIR_*` variable that names no setting is ignored
    /// with a warning (tools use the prefix too, e.g. `WEIR_BIN`); one with a bad value is
    /// refused, naming the variable.
    pub fn from_args_and_env<I, K, V>(args: &ServeArgs, env: I) -> Result<ServerConfig, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        let mut entries = match &args.config {
            Some(path) => Settings::read_file(path)?,
            None => Vec::new(),
        };
        let mut from_env: Vec<(String, String, String)> = Vec::new();
        for (name, value) in env {
            let Some(name) = name.as_ref().to_str() else {
                continue;
            };
            let Some(key) = env_key(name) else {
                continue;
            };
            let Some(value) = value.as_ref().to_str() else {
                return Err(ConfigError::InvalidValue {
                    key,
                    file: format!("environment variable {name}"),
                    reason: "not UTF-8".to_owned(),
                });
            };
            from_env.push((key, value.to_owned(), name.to_owned()));
        }
        from_env.sort();
        for (key, value, name) in from_env {
            if !Settings::knows(&key) {
                tracing::warn!("environment variable {name} names no setting ({key}); ignored");
                continue;
            }
            entries.retain(|(known, _, _)| *known != key);
            entries.push((
                key,
                toml::Value::String(value),
                format!("environment variable {name}"),
            ));
        }
        let mut settings = Settings::from_entries(entries)?;
        settings.apply_flags(args)?;
        let source = match &args.config {
            Some(path) => path.display().to_string(),
            None => COMMAND_LINE.to_owned(),
        };
        settings.into_server_config(&source)?.validated(&source)
    }

    /// Defaults with a TOML text applied; `file` names it in error messages.
    pub fn from_toml_str(text: &str, file: &str) -> Result<ServerConfig, ConfigError> {
        Settings::from_toml_str(text, file)?
            .into_server_config(file)?
            .validated(file)
    }

    /// The core's own range checks, as a last line of defence behind the parser's, and the
    /// checks across keys.
    fn validated(self, source: &str) -> Result<ServerConfig, ConfigError> {
        if let Err(error) = self.node.validate() {
            return Err(ConfigError::InvalidValue {
                key: error.key.to_owned(),
                file: source.to_owned(),
                reason: format!("{} ({})", error.reason, error.value),
            });
        }
        if self.remote_storage_url.is_some() {
            let node = &self.node;
            let checks = [
                (
                    "log.local.retention.ms",
                    node.local_retention_ms,
                    "log.retention.ms",
                    node.retention_ms,
                ),
                (
                    "log.local.retention.bytes",
                    node.local_retention_bytes,
                    "log.retention.bytes",
                    node.retention_bytes,
                ),
            ];
            for (key, local, total_key, total) in checks {
                if let Some(reason) = local_retention_refusal(local, total, total_key) {
                    return Err(ConfigError::InvalidValue {
                        key: key.to_owned(),
                        file: source.to_owned(),
                        reason,
                    });
                }
            }
        }
        Ok(self)
    }
}

/// Parsed settings before defaults are filled in (so flags can override the file and
/// `advertised.listeners` can be told apart from "unset").
#[derive(Debug, Default)]
struct Settings {
    node: NodeConfig,
    /// `--listen`: replaces the first listener's address.
    listen: Option<HostPort>,
    /// `listeners`, `advertised.listeners`, `ssl.*` and the other listener keys.
    security: security::SecurityKeys,
    data_dir: Option<PathBuf>,
    frame_bytes_max: Option<usize>,
    client_limits: crate::limits::LimitSettings,
    network_threads: Option<usize>,
    /// `queued.max.request.bytes` as given (checked against `socket.request.max.bytes`).
    queued_request_bytes: Option<i64>,
    metrics_listen: Option<HostPort>,
    /// `None` = default, `Some(None)` = off.
    gateway: Option<Option<HostPort>>,
    /// `None` = default, `Some(None)` = off.
    rest_proxy: Option<Option<HostPort>>,
    rest_instance_timeout_ms: Option<u64>,
    /// `None` = default, `Some(None)` = off.
    schema_registry: Option<Option<HostPort>>,
    http_request_bytes_max: Option<usize>,
    /// `access.control.allow.origin`, `.methods`, `.headers` as given.
    cors: [String; 3],
    /// `controller.quorum.voters` / `--voters`, with where it came from (for messages).
    voters: Option<(Vec<Voter>, Origin)>,
    /// `controller.listener` / `--controller-listen`, with where it came from.
    controller_listen: Option<(HostPort, Origin)>,
    /// `process.roles`, with where it came from.
    roles: Option<(Roles, Origin)>,
    /// Cluster tunables set by keys; voters and addresses are filled in at the end.
    cluster: Option<ClusterConfig>,
    /// `weir.remote.storage.url` / `--remote-storage-url`.
    remote_storage_url: Option<String>,
    /// `num.shards` / `--num-shards`.
    shards: Option<u16>,
    /// `controlled.shutdown.enable`, `weir.controlled.shutdown.timeout.ms`.
    shutdown: ShutdownSettings,
}

/// The key (or flag) and file (or command line) a setting came from.
#[derive(Debug, Clone)]
struct Origin {
    key: String,
    file: String,
}

impl Origin {
    fn invalid(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError::InvalidValue {
            key: self.key.clone(),
            file: self.file.clone(),
            reason: reason.into(),
        }
    }
}

/// Settings Kafka spells in several units, by rank (the lowest rank set wins, as in Kafka:
/// `log.retention.ms` over `.minutes` over `.hours`, `log.roll.ms` over `.hours`), in ms.
#[derive(Debug, Default)]
struct Ranked {
    retention_ms: BTreeMap<u8, i64>,
    segment_ms: BTreeMap<u8, i64>,
}

/// `process.roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Roles {
    controller: bool,
    broker: bool,
}

/// A parsed `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPort {
    host: String,
    port: u16,
}

impl HostPort {
    fn to_address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl Settings {
    /// The flattened `(key, value, source)` entries of a config file.
    fn read_file(path: &Path) -> Result<Vec<(String, toml::Value, String)>, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Settings::parse_toml(&text, &file)
    }

    fn parse_toml(
        text: &str,
        file: &str,
    ) -> Result<Vec<(String, toml::Value, String)>, ConfigError> {
        let table: toml::Table =
            text.parse()
                .map_err(|error: toml::de::Error| ConfigError::Syntax {
                    file: file.to_owned(),
                    message: error.message().to_owned(),
                })?;
        let mut flat = BTreeMap::new();
        flatten("", table, &mut flat, file)?;
        let entries = flat
            .into_iter()
            .map(|(key, value)| (key, value, file.to_owned()));
        Ok(entries.collect())
    }

    fn from_toml_str(text: &str, file: &str) -> Result<Settings, ConfigError> {
        Settings::from_entries(Settings::parse_toml(text, file)?)
    }

    /// True when `key` is a setting (whatever its value): probed on a scratch copy with a
    /// value no key accepts silently, so only an unknown key answers `UnknownKey`.
    fn knows(key: &str) -> bool {
        let value = toml::Value::Array(Vec::new());
        let input = Input {
            key,
            file: "probe",
            value: &value,
        };
        let mut scratch = Settings::default();
        let outcome = scratch.apply(&input, &mut Ranked::default());
        !matches!(outcome, Err(ConfigError::UnknownKey { .. }))
    }

    /// Apply flattened entries, each naming its source in error messages.
    fn from_entries(entries: Vec<(String, toml::Value, String)>) -> Result<Settings, ConfigError> {
        let mut settings = Settings::default();
        let mut ranked = Ranked::default();
        for (key, value, file) in &entries {
            let input = Input { key, file, value };
            settings.apply(&input, &mut ranked)?;
        }
        if let Some((_, retention_ms)) = ranked.retention_ms.into_iter().next() {
            settings.node.retention_ms = retention_ms;
        }
        if let Some((_, segment_ms)) = ranked.segment_ms.into_iter().next() {
            settings.node.segment_ms = segment_ms;
        }
        Ok(settings)
    }

    /// Apply one flattened key; refuses unknown keys and bad values.
    fn apply(&mut self, input: &Input<'_>, ranked: &mut Ranked) -> Result<(), ConfigError> {
        if let Some(applied) = authorizer::apply(&mut self.node.authorizer, input) {
            return applied;
        }
        let node = &mut self.node;
        match input.key {
            "log.dirs" | "log.dir" => self.data_dir = Some(input.single_dir()?),
            "node.id" | "broker.id" => node.node_id = input.integer_in(0, i64::from(i32::MAX))?,
            "cluster.id" => node.cluster_id = input.non_empty_string()?,
            "num.partitions" => node.num_partitions = input.integer_in(1, 1_000_000)?,
            "default.replication.factor" => {
                node.default_replication_factor = input.integer_in(1, i64::from(i16::MAX))?;
            }
            "auto.create.topics.enable" => node.auto_create_topics = input.boolean()?,
            "delete.topic.enable" => node.delete_topic_enable = input.boolean()?,
            "message.max.bytes" => node.message_max_bytes = input.integer_in(1, i32::MAX.into())?,
            "fetch.max.bytes" => node.fetch_max_bytes = input.integer_in(1, i32::MAX.into())?,
            "group.initial.rebalance.delay.ms" => {
                node.group_initial_rebalance_delay_ms = input.integer_in(0, i64::from(i32::MAX))?;
            }
            "group.min.session.timeout.ms" => {
                node.group_min_session_timeout_ms = input.integer_in(1, i32::MAX.into())?;
            }
            "group.max.session.timeout.ms" => {
                node.group_max_session_timeout_ms = input.integer_in(1, i32::MAX.into())?;
            }
            "group.consumer.heartbeat.interval.ms" => {
                node.group_consumer_heartbeat_interval_ms = input.integer_in(1, i32::MAX.into())?;
            }
            "group.consumer.session.timeout.ms" => {
                node.group_consumer_session_timeout_ms = input.integer_in(1, i32::MAX.into())?;
            }
            "offsets.topic.num.partitions" => {
                node.offsets_topic_num_partitions = input.integer_in(1, 1000)?;
            }
            "transaction.state.log.num.partitions" => {
                node.transaction_state_log_num_partitions = input.integer_in(1, 1000)?;
            }
            "offsets.topic.segment.bytes" => {
                node.offsets_topic_segment_bytes = input.integer_in(14, i32::MAX.into())?;
            }
            "transaction.state.log.segment.bytes" => {
                node.transaction_state_log_segment_bytes = input.integer_in(14, i32::MAX.into())?;
            }
            "log.retention.ms" => {
                ranked.retention_ms.insert(0, input.retention(1)?);
            }
            "log.retention.minutes" => {
                ranked.retention_ms.insert(1, input.retention(60_000)?);
            }
            "log.retention.hours" => {
                ranked.retention_ms.insert(2, input.retention(3_600_000)?);
            }
            "log.roll.ms" => {
                ranked.segment_ms.insert(0, input.integer_in(1, i64::MAX)?);
            }
            "log.roll.hours" => {
                let hours: i64 = input.integer_in(1, i32::MAX.into())?;
                // i32::MAX hours in ms is about 7.7e15: no overflow.
                ranked.segment_ms.insert(1, hours * 3_600_000);
            }
            "log.retention.bytes" => node.retention_bytes = input.integer_or_unlimited()?,
            "log.segment.bytes" => node.segment_bytes = input.integer_in(1, i64::MAX)?,
            "log.retention.check.interval.ms" => {
                node.retention_check_interval_ms = input.integer_in(1, i64::MAX)?;
            }
            "log.flush.interval.ms" => node.flush_interval_ms = input.integer_in(1, i64::MAX)?,
            "producer.id.expiration.ms" => {
                node.producer_id_expiration_ms = input.integer_in(1, i64::MAX)?;
            }
            "transaction.max.timeout.ms" => {
                node.transaction_max_timeout_ms = input.integer_in(1, i32::MAX.into())?;
            }
            "transactional.id.expiration.ms" => {
                node.transactional_id_expiration_ms = input.integer_in(1, i64::MAX)?;
            }
            "weir.durability" => node.durability = input.durability()?,
            "weir.metrics.listener" => self.metrics_listen = Some(input.listener()?),
            "weir.gateway.listener" => {
                let text = input.string()?;
                self.gateway = Some(if is_off(text) {
                    None
                } else {
                    Some(parse_host_port(text).map_err(|reason| input.invalid(reason))?)
                });
            }
            "weir.rest.proxy.listener" => {
                let text = input.string()?;
                self.rest_proxy = Some(if is_off(text) {
                    None
                } else {
                    Some(parse_host_port(text).map_err(|reason| input.invalid(reason))?)
                });
            }
            "weir.rest.consumer.instance.timeout.ms" => {
                let value: u64 = input.integer_in(1, i64::from(i32::MAX))?;
                self.rest_instance_timeout_ms = Some(value);
            }
            "weir.schema.registry.listener" => {
                let text = input.string()?;
                self.schema_registry = Some(if is_off(text) {
                    None
                } else {
                    Some(parse_host_port(text).map_err(|reason| input.invalid(reason))?)
                });
            }
            "weir.http.max.request.bytes" => {
                self.http_request_bytes_max = Some(input.integer_in(1024, i32::MAX.into())?);
            }
            "access.control.allow.origin" => self.cors[0] = input.cors_list()?,
            "access.control.allow.methods" => self.cors[1] = input.cors_list()?,
            "access.control.allow.headers" => self.cors[2] = input.cors_list()?,
            "socket.request.max.bytes" => {
                self.frame_bytes_max = Some(input.integer_in(1, i32::MAX.into())?);
            }
            "num.network.threads" => {
                self.network_threads = Some(input.integer_in(1, 1024)?);
            }
            "num.shards" => {
                let most = weir_core::shard::SHARDS_MAX.into();
                self.shards = Some(input.integer_in(1, most)?);
            }
            "max.connections" => {
                self.client_limits.connections_max = input.integer_in(1, i32::MAX.into())?;
            }
            "queued.max.requests" => {
                self.client_limits.queued_requests_max = input.integer_in(1, i32::MAX.into())?;
            }
            "queued.max.request.bytes" => {
                let value = input.integer_or_unlimited()?;
                self.client_limits.queued_request_bytes_max =
                    usize::try_from(value).unwrap_or(usize::MAX);
                self.queued_request_bytes = Some(value);
            }
            "min.insync.replicas" => {
                node.min_insync_replicas = input.integer_in(1, i16::MAX.into())?;
            }
            _ => return self.apply_cleaner(input),
        }
        Ok(())
    }

    /// The log cleaner's keys (`log.cleanup.policy`, `log.cleaner.*`), with Kafka's ranges;
    /// hands other keys on to [`Settings::apply_cluster`].
    fn apply_cleaner(&mut self, input: &Input<'_>) -> Result<(), ConfigError> {
        let node = &mut self.node;
        match input.key {
            "log.cleanup.policy" => node.cleanup_policy = input.cleanup_policy()?,
            "log.cleaner.enable" => node.cleaner_enable = input.boolean()?,
            "log.cleaner.min.cleanable.ratio" => {
                node.min_cleanable_dirty_ratio = input.ratio()?;
            }
            "log.cleaner.delete.retention.ms" => {
                node.delete_retention_ms = input.integer_in(0, i64::MAX)?;
            }
            "log.cleaner.min.compaction.lag.ms" => {
                node.min_compaction_lag_ms = input.integer_in(0, i64::MAX)?;
            }
            "log.cleaner.max.compaction.lag.ms" => {
                node.max_compaction_lag_ms = input.integer_in(1, i64::MAX)?;
            }
            // Kafka accepts 0; a zero timer in the node would fire in a loop.
            "log.cleaner.backoff.ms" => node.cleaner_backoff_ms = input.integer_in(1, i64::MAX)?,
            "log.cleaner.dedupe.buffer.size" => {
                let floor = NodeConfig::CLEANER_DEDUPE_BUFFER_BYTES_FLOOR;
                let bytes: u64 = input.integer_in(0, i64::MAX)?;
                if bytes <= floor {
                    return Err(input.invalid(format!(
                        "{bytes} must be more than {floor} (1 MiB, Kafka's floor for a cleaner)"
                    )));
                }
                node.cleaner_dedupe_buffer_bytes = bytes;
            }
            "log.cleaner.io.buffer.size" => {
                node.cleaner_io_buffer_bytes = input.integer_in(1, i32::MAX.into())?;
            }
            "log.cleaner.io.max.bytes.per.second" => {
                // A double in Kafka; whole bytes per second here, rounded up, and anything
                // past u64 (Kafka's default, Double.MAX_VALUE) is no limit.
                let rate = input.number()?;
                if rate.is_nan() || rate <= 0.0 {
                    return Err(input.invalid(format!("{rate} must be more than 0")));
                }
                node.cleaner_io_max_bytes_per_second = if rate >= u64::MAX as f64 {
                    u64::MAX
                } else {
                    rate.ceil() as u64
                };
            }
            _ => return self.apply_remote(input),
        }
        Ok(())
    }

    /// Tiered storage's keys, with Kafka's ranges; hands other keys on to
    /// [`Settings::apply_cluster`].
    fn apply_remote(&mut self, input: &Input<'_>) -> Result<(), ConfigError> {
        let node = &mut self.node;
        match input.key {
            "weir.remote.storage.url" => {
                let url = input.non_empty_string()?;
                crate::remote::RemoteUrl::parse(&url).map_err(|e| input.invalid(e.to_string()))?;
                self.remote_storage_url = Some(url);
            }
            "remote.log.manager.task.interval.ms" => {
                node.remote_log_task_interval_ms = input.integer_in(1, i64::MAX)?;
            }
            "weir.remote.orphan.min.age.ms" => {
                node.remote_orphan_min_age_ms = input.integer_in(0, i64::MAX)?;
            }
            // -2: the same as log.retention.* (Kafka's default); -1: unlimited.
            "log.local.retention.ms" => node.local_retention_ms = input.integer_in(-2, i64::MAX)?,
            "log.local.retention.bytes" => {
                node.local_retention_bytes = input.integer_in(-2, i64::MAX)?;
            }
            _ => return self.apply_cluster(input),
        }
        Ok(())
    }

    /// The cluster keys (`controller.*`, `process.roles`, replication tunables); refuses
    /// keys nobody knows.
    fn apply_cluster(&mut self, input: &Input<'_>) -> Result<(), ConfigError> {
        const MS_MAX: i64 = i64::MAX / 1000;
        match input.key {
            "controller.quorum.voters" => {
                let voters = parse_voters(input.string()?).map_err(|e| input.invalid(e))?;
                self.voters = Some((voters, input.origin()));
            }
            "controller.listener" => {
                let text = input.non_empty_string()?;
                // Kafka writes listeners as NAME://host:port; the name does not matter here.
                let address = text.split_once("://").map_or(text.as_str(), |(_, a)| a);
                let parsed = parse_host_port(address).map_err(|e| input.invalid(e))?;
                self.controller_listen = Some((parsed, input.origin()));
            }
            "process.roles" => {
                let roles = parse_roles(input.string()?).map_err(|e| input.invalid(e))?;
                self.roles = Some((roles, input.origin()));
            }
            "replica.lag.time.max.ms" => {
                self.cluster_mut().replica_lag_time_max_ms = input.integer_in(1, MS_MAX)?;
            }
            "replica.fetch.wait.max.ms" => {
                self.cluster_mut().replica_fetch_wait_max_ms = input.integer_in(0, MS_MAX)?;
            }
            "replica.fetch.max.bytes" => {
                self.cluster_mut().replica_fetch_max_bytes =
                    input.integer_in(1, i32::MAX.into())?;
            }
            "unclean.leader.election.enable" => {
                self.cluster_mut().unclean_leader_election = input.boolean()?;
            }
            "controlled.shutdown.enable" => self.shutdown.controlled = input.boolean()?,
            "weir.controlled.shutdown.timeout.ms" => {
                self.shutdown.timeout_ms = input.integer_in(1, MS_MAX)?;
            }
            "auto.leader.rebalance.enable" => {
                self.cluster_mut().auto_leader_rebalance = input.boolean()?;
            }
            "leader.imbalance.check.interval.seconds" => {
                let seconds: u64 = input.integer_in(1, MS_MAX / 1000)?;
                self.cluster_mut().leader_imbalance_check_interval_ms = seconds * 1000;
            }
            "broker.heartbeat.interval.ms" => {
                self.cluster_mut().broker_heartbeat_interval_ms = input.integer_in(1, MS_MAX)?;
            }
            "broker.session.timeout.ms" => {
                self.cluster_mut().broker_session_timeout_ms = input.integer_in(1, MS_MAX)?;
            }
            "controller.quorum.election.timeout.ms" => {
                self.cluster_mut().election_timeout_ms = input.integer_in(1, MS_MAX)?;
            }
            "weir.metadata.version.bootstrap" => {
                // What a fresh cluster finalizes (Kafka's `kafka-storage format
                // --release-version`); an existing cluster keeps its own.
                let max = i64::from(weir_core::cluster::features::METADATA_VERSION_MAX);
                let min = i64::from(weir_core::cluster::features::METADATA_VERSION_MIN);
                self.node.bootstrap_metadata_version = input.integer_in(min, max)?;
            }
            "weir.acks.all.durability" => {
                self.cluster_mut().ack_durability = match input.string()? {
                    "isr-fsync" => AckDurability::IsrFsync,
                    "isr-memory" => AckDurability::IsrMemory,
                    other => {
                        return Err(input.invalid(format!(
                            "\"{other}\" is not \"isr-fsync\" or \"isr-memory\""
                        )))
                    }
                };
            }
            _ => {
                if self.security.apply(input)? {
                    return Ok(());
                }
                return Err(ConfigError::UnknownKey {
                    key: input.key.to_owned(),
                    file: input.file.to_owned(),
                });
            }
        }
        Ok(())
    }

    fn apply_flags(&mut self, args: &ServeArgs) -> Result<(), ConfigError> {
        if let Some(listen) = &args.listen {
            self.listen =
                Some(
                    parse_host_port(listen).map_err(|reason| ConfigError::InvalidValue {
                        key: "--listen".to_owned(),
                        file: COMMAND_LINE.to_owned(),
                        reason,
                    })?,
                );
        }
        if let Some(data_dir) = &args.data_dir {
            self.data_dir = Some(data_dir.clone());
        }
        if let Some(metrics) = &args.metrics {
            let parsed = parse_host_port(metrics).map_err(|reason| ConfigError::InvalidValue {
                key: "--metrics".to_owned(),
                file: COMMAND_LINE.to_owned(),
                reason,
            })?;
            self.metrics_listen = Some(parsed);
        }
        if let Some(gateway) = &args.gateway {
            self.gateway = Some(if is_off(gateway) {
                None
            } else {
                Some(
                    parse_host_port(gateway).map_err(|reason| ConfigError::InvalidValue {
                        key: "--gateway".to_owned(),
                        file: COMMAND_LINE.to_owned(),
                        reason,
                    })?,
                )
            });
        }
        if let Some(rest_proxy) = &args.rest_proxy {
            self.rest_proxy = Some(if is_off(rest_proxy) {
                None
            } else {
                Some(
                    parse_host_port(rest_proxy).map_err(|reason| ConfigError::InvalidValue {
                        key: "--rest-proxy".to_owned(),
                        file: COMMAND_LINE.to_owned(),
                        reason,
                    })?,
                )
            });
        }
        if let Some(registry) = &args.schema_registry {
            self.schema_registry = Some(if is_off(registry) {
                None
            } else {
                Some(
                    parse_host_port(registry).map_err(|reason| ConfigError::InvalidValue {
                        key: "--schema-registry".to_owned(),
                        file: COMMAND_LINE.to_owned(),
                        reason,
                    })?,
                )
            });
        }
        if let Some(node_id) = args.node_id {
            if node_id < 0 {
                return Err(ConfigError::InvalidValue {
                    key: "--node-id".to_owned(),
                    file: COMMAND_LINE.to_owned(),
                    reason: format!("{node_id} is negative"),
                });
            }
            self.node.node_id = node_id;
        }
        if let Some(listen) = &args.controller_listen {
            let origin = Origin {
                key: "--controller-listen".to_owned(),
                file: COMMAND_LINE.to_owned(),
            };
            let parsed = parse_host_port(listen).map_err(|reason| origin.invalid(reason))?;
            self.controller_listen = Some((parsed, origin));
        }
        if let Some(url) = &args.remote_storage_url {
            crate::remote::RemoteUrl::parse(url).map_err(|error| ConfigError::InvalidValue {
                key: "--remote-storage-url".to_owned(),
                file: COMMAND_LINE.to_owned(),
                reason: error.to_string(),
            })?;
            self.remote_storage_url = Some(url.trim().to_owned());
        }
        if let Some(shards) = args.num_shards {
            if !(1..=weir_core::shard::SHARDS_MAX).contains(&shards) {
                return Err(ConfigError::InvalidValue {
                    key: "--num-shards".to_owned(),
                    file: COMMAND_LINE.to_owned(),
                    reason: format!(
                        "{shards} is not between 1 and {}",
                        weir_core::shard::SHARDS_MAX
                    ),
                });
            }
            self.shards = Some(shards);
        }
        if let Some(voters) = &args.voters {
            let origin = Origin {
                key: "--voters".to_owned(),
                file: COMMAND_LINE.to_owned(),
            };
            let parsed = parse_voters(voters).map_err(|reason| origin.invalid(reason))?;
            self.voters = Some((parsed, origin));
        }
        Ok(())
    }

    /// The cluster tunables, created with Weir's defaults on first use.
    fn cluster_mut(&mut self) -> &mut ClusterConfig {
        self.cluster
            .get_or_insert_with(|| ClusterConfig::new(Vec::new(), String::new()))
    }

    /// The cluster config when voters are set (`None`: single node), checked across keys.
    fn cluster_config(&mut self) -> Result<Option<ClusterConfig>, ConfigError> {
        let Some((voters, voters_origin)) = self.voters.take() else {
            // Cluster-only settings without voters would silently do nothing: refuse the
            // ones that only make sense in a cluster (the tunables are harmless defaults).
            if let Some((_, origin)) = &self.controller_listen {
                return Err(origin.invalid(NEEDS_VOTERS));
            }
            if let Some((_, origin)) = &self.roles {
                return Err(origin.invalid(NEEDS_VOTERS));
            }
            return Ok(None);
        };
        let node_id = self.node.node_id;
        let Some((listen, listen_origin)) = self.controller_listen.take() else {
            return Err(voters_origin.invalid(
                "cluster mode needs this node's controller listener \
                 (--controller-listen HOST:PORT or controller.listener)",
            ));
        };
        let own_voter = voters.iter().find(|voter| voter.id == node_id);
        let (roles, roles_origin) = match self.roles.take() {
            Some(roles) => roles,
            None => (
                Roles {
                    controller: own_voter.is_some(),
                    broker: true,
                },
                voters_origin.clone(),
            ),
        };
        if roles.controller && own_voter.is_none() {
            return Err(roles_origin.invalid(format!(
                "node {node_id} has the controller role but is not among the voters"
            )));
        }
        let peer_addr = if is_wildcard(&listen.host) {
            // A wildcard is bound, not dialed: voters are reached at their voter address.
            match own_voter {
                Some(voter) => voter.addr.clone(),
                None => {
                    return Err(listen_origin.invalid(
                        "other nodes dial this address, so it cannot be a wildcard \
                         (only a voter may bind one; it is reached at its voter address)",
                    ))
                }
            }
        } else {
            listen.to_address()
        };
        if let Some(voter) = own_voter {
            if voter.addr != peer_addr {
                tracing::warn!(
                    "node {node_id}'s voter address {} differs from its controller listener \
                     {peer_addr}; other voters dial {}",
                    voter.addr,
                    voter.addr
                );
            }
        }
        let mut cluster = self
            .cluster
            .take()
            .unwrap_or_else(|| ClusterConfig::new(Vec::new(), String::new()));
        cluster.voters = voters;
        cluster.peer_addr = peer_addr;
        cluster.controller_role = roles.controller;
        cluster.broker_role = roles.broker;
        Ok(Some(cluster))
    }

    fn into_server_config(mut self, source: &str) -> Result<ServerConfig, ConfigError> {
        let security = std::mem::take(&mut self.security).resolve(self.listen.take(), source)?;
        if let Some(controller) = security.controller {
            if let Some((_, origin)) = &self.controller_listen {
                return Err(origin.invalid(
                    "the controller listener is also named by controller.listener.names; \
                     set one of the two",
                ));
            }
            self.controller_listen = Some(controller);
        }
        self.node.cluster = self.cluster_config()?;
        // The server opens the store at start; the core learns it has one from this flag.
        self.node.remote_storage_enable = self.remote_storage_url.is_some();
        let listen = security.first_address;
        let frame_bytes_max = self.frame_bytes_max.unwrap_or(FRAME_BYTES_MAX);
        if let Some(queued) = self.queued_request_bytes.filter(|&bytes| bytes != -1) {
            if usize::try_from(queued).unwrap_or(0) < frame_bytes_max {
                return Err(ConfigError::InvalidValue {
                    key: "queued.max.request.bytes".to_owned(),
                    file: source.to_owned(),
                    reason: format!(
                        "{queued} is below socket.request.max.bytes ({frame_bytes_max}): \
                         a request of the largest allowed size could never be read"
                    ),
                });
            }
        }
        let [origin, methods, headers] = &self.cors;
        let http_cors = crate::http::Cors::new(origin, methods, headers).map_err(|reason| {
            ConfigError::InvalidValue {
                key: "access.control.allow.origin".to_owned(),
                file: source.to_owned(),
                reason,
            }
        })?;
        let mut node = self.node;
        let advertise_bound_address = security.first_advertised.is_none();
        let advertised = (security.first_advertised).unwrap_or_else(|| advertised_for(&listen));
        node.advertised_host = advertised.host;
        node.advertised_port = i32::from(advertised.port);
        Ok(ServerConfig {
            node,
            listen: listen.to_address(),
            listeners: security.set,
            gateway_sasl: security.gateway_sasl,
            http_sasl: security.http_sasl,
            http_request_bytes_max: (self.http_request_bytes_max)
                .unwrap_or(crate::http::REQUEST_BYTES_DEFAULT),
            http_cors,
            rest_proxy: service_listen(self.rest_proxy, crate::http::REST_PROXY_LISTEN_DEFAULT),
            data_dir: self
                .data_dir
                .unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT)),
            frame_bytes_max,
            client_limits: self.client_limits,
            network_threads: self.network_threads,
            advertise_bound_address,
            check_invariants: false,
            metrics_listen: self.metrics_listen.map(|address| address.to_address()),
            gateway: match self.gateway {
                None => Some(GatewayListen {
                    addr: crate::gateway::GATEWAY_LISTEN_DEFAULT.to_owned(),
                    required: false,
                }),
                Some(None) => None,
                Some(Some(address)) => Some(GatewayListen {
                    addr: address.to_address(),
                    required: true,
                }),
            },
            rest_instance_timeout_ms: self.rest_instance_timeout_ms.unwrap_or(300_000),
            remote_storage_url: self.remote_storage_url,
            shards: self.shards.map_or_else(
                || ShardCount::Default(default_shards()),
                ShardCount::Exactly,
            ),
            shutdown: self.shutdown,
            schema_registry: service_listen(
                self.schema_registry,
                crate::http::SCHEMA_REGISTRY_LISTEN_DEFAULT,
            ),
            schema_registry_login: security.registry_login,
        })
    }
}

/// Kafka's rule for a local retention (`local`, with -2 meaning "as `total`") against the
/// total one (`total`, -1 unlimited) when tiered storage is on: the local copy may not be
/// kept longer than the data itself. `None` when it holds.
fn local_retention_refusal(local: i64, total: i64, total_key: &str) -> Option<String> {
    if total == -1 || local == -2 {
        return None;
    }
    if local == -1 {
        return Some(format!(
            "-1 (unlimited) is more than {total_key} = {total}; use -2 to follow it"
        ));
    }
    (local > total).then(|| format!("{local} is more than {total_key} = {total}"))
}

/// Why a cluster-only setting without voters is refused.
const NEEDS_VOTERS: &str =
    "only used in cluster mode; set controller.quorum.voters (--voters) as well";

/// Parse `controller.quorum.voters`: `ID@HOST:PORT` entries separated by commas; ids are
/// unique and non-negative, hosts are dialable (no wildcard). Sorted by id, so nodes given
/// the list in different orders agree on it.
fn parse_voters(text: &str) -> Result<Vec<Voter>, String> {
    let mut voters: Vec<Voter> = Vec::new();
    for entry in text.split(',').map(str::trim) {
        if entry.is_empty() {
            return Err(format!(
                "\"{text}\": empty entry (expected ID@HOST:PORT,...)"
            ));
        }
        let (id, address) = entry
            .split_once('@')
            .ok_or_else(|| format!("\"{entry}\" is not ID@HOST:PORT"))?;
        let id: i32 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| format!("\"{entry}\": \"{id}\" is not a node id"))?;
        let address = parse_host_port(address)?;
        if is_wildcard(&address.host) {
            return Err(format!("\"{entry}\": a voter address cannot be a wildcard"));
        }
        if voters.iter().any(|voter| voter.id == id) {
            return Err(format!("node id {id} is listed twice"));
        }
        voters.push(Voter {
            id,
            addr: address.to_address(),
        });
    }
    voters.sort_by_key(|voter| voter.id);
    Ok(voters)
}

/// Parse `process.roles`: `broker`, `controller` or both, comma-separated.
fn parse_roles(text: &str) -> Result<Roles, String> {
    let mut roles = Roles {
        controller: false,
        broker: false,
    };
    for role in text.split(',').map(str::trim) {
        match role {
            "broker" => roles.broker = true,
            "controller" => roles.controller = true,
            other => {
                return Err(format!(
                    "\"{other}\" is not a role (broker, controller, or broker,controller)"
                ))
            }
        }
    }
    Ok(roles)
}

/// The address clients are told to connect to when only the listen address is known:
/// a wildcard listen address is not connectable, so advertise loopback.
pub fn advertised_for_bound(bound: &str) -> Option<(String, i32)> {
    let parsed = parse_host_port(bound).ok()?;
    let advertised = advertised_for(&parsed);
    Some((advertised.host, i32::from(advertised.port)))
}

fn advertised_for(listen: &HostPort) -> HostPort {
    if is_wildcard(&listen.host) {
        HostPort {
            host: "127.0.0.1".to_owned(),
            port: listen.port,
        }
    } else {
        listen.clone()
    }
}

/// `off`/`none`/`false`/empty turn a listener off.
/// A service's address: the built-in default (a failed bind only warns), off, or given.
fn service_listen(setting: Option<Option<HostPort>>, default: &str) -> Option<ServiceListen> {
    match setting {
        None => Some(ServiceListen {
            addr: default.to_owned(),
            required: false,
        }),
        Some(None) => None,
        Some(Some(address)) => Some(ServiceListen {
            addr: address.to_address(),
            required: true,
        }),
    }
}

fn is_off(text: &str) -> bool {
    let text = text.trim();
    text.is_empty()
        || ["off", "none", "false"]
            .iter()
            .any(|off| text.eq_ignore_ascii_case(off))
}

fn is_wildcard(host: &str) -> bool {
    matches!(host, "0.0.0.0" | "::" | "")
}

/// One flattened key with its value, plus helpers that turn the value into a typed setting
/// or an error naming the key.
struct Input<'a> {
    key: &'a str,
    file: &'a str,
    value: &'a toml::Value,
}

impl Input<'_> {
    fn invalid(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError::InvalidValue {
            key: self.key.to_owned(),
            file: self.file.to_owned(),
            reason: reason.into(),
        }
    }

    fn origin(&self) -> Origin {
        Origin {
            key: self.key.to_owned(),
            file: self.file.to_owned(),
        }
    }

    fn string(&self) -> Result<&str, ConfigError> {
        match self.value {
            toml::Value::String(text) => Ok(text.trim()),
            other => Err(self.invalid(format!("expected a string, found {}", other.type_str()))),
        }
    }

    /// A comma-separated list of CORS origins, methods or headers (checked as header values).
    fn cors_list(&self) -> Result<String, ConfigError> {
        let text = self.string()?;
        crate::http::Cors::new(text, text, text).map_err(|reason| self.invalid(reason))?;
        Ok(text.to_owned())
    }

    fn non_empty_string(&self) -> Result<String, ConfigError> {
        let text = self.string()?;
        if text.is_empty() {
            return Err(self.invalid("must not be empty"));
        }
        Ok(text.to_owned())
    }

    /// An integer; a quoted integer is accepted too, because values copied from a Kafka
    /// `server.properties` file are all strings.
    fn integer(&self) -> Result<i64, ConfigError> {
        match self.value {
            toml::Value::Integer(value) => Ok(*value),
            toml::Value::String(text) => text
                .trim()
                .parse::<i64>()
                .map_err(|_| self.invalid(format!("\"{text}\" is not an integer"))),
            other => Err(self.invalid(format!("expected an integer, found {}", other.type_str()))),
        }
    }

    fn integer_in<T: TryFrom<i64>>(&self, min: i64, max: i64) -> Result<T, ConfigError> {
        let value = self.integer()?;
        if value < min || value > max {
            return Err(self.invalid(format!("{value} is outside {min}..={max}")));
        }
        T::try_from(value).map_err(|_| self.invalid(format!("{value} is out of range")))
    }

    /// A positive integer or -1 for "no limit".
    fn integer_or_unlimited(&self) -> Result<i64, ConfigError> {
        let value = self.integer()?;
        if value == -1 || value > 0 {
            Ok(value)
        } else {
            Err(self.invalid(format!("{value} must be positive or -1 (unlimited)")))
        }
    }

    /// A retention time in units of `unit_ms`, returned in ms; -1 means forever.
    fn retention(&self, unit_ms: i64) -> Result<i64, ConfigError> {
        let value = self.integer_or_unlimited()?;
        if value == -1 {
            return Ok(-1);
        }
        value
            .checked_mul(unit_ms)
            .ok_or_else(|| self.invalid(format!("{value} is too large")))
    }

    fn boolean(&self) -> Result<bool, ConfigError> {
        match self.value {
            toml::Value::Boolean(value) => Ok(*value),
            toml::Value::String(text) => match text.trim() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(self.invalid(format!("\"{text}\" is not true or false"))),
            },
            other => Err(self.invalid(format!("expected a boolean, found {}", other.type_str()))),
        }
    }

    /// Kafka's list as one string (`"compact,delete"`, as in `server.properties`) or as a
    /// TOML array of strings (`["compact", "delete"]`).
    fn cleanup_policy(&self) -> Result<CleanupPolicy, ConfigError> {
        let text = match self.value {
            toml::Value::String(text) => text.clone(),
            toml::Value::Array(items) => {
                let mut words = Vec::with_capacity(items.len());
                for item in items {
                    let Some(word) = item.as_str() else {
                        let found = item.type_str();
                        return Err(self.invalid(format!("expected strings, found {found}")));
                    };
                    words.push(word);
                }
                words.join(",")
            }
            other => {
                let found = other.type_str();
                return Err(self.invalid(format!("expected a string or an array, found {found}")));
            }
        };
        CleanupPolicy::parse_list(&text)
            .map_err(|error| self.invalid(format!("\"{text}\": {error}")))
    }

    /// A ratio in 0..=1: a TOML float or integer, or a quoted number (as copied from a Kafka
    /// `server.properties`).
    fn ratio(&self) -> Result<DirtyRatio, ConfigError> {
        let value = self.number()?;
        DirtyRatio::new(value).ok_or_else(|| self.invalid(format!("{value} is outside 0..=1")))
    }

    /// A number: a TOML float or integer, or a quoted one (Java's spelling of a double
    /// too, `1.7976931348623157E308`).
    fn number(&self) -> Result<f64, ConfigError> {
        match self.value {
            toml::Value::Float(value) => Ok(*value),
            toml::Value::Integer(value) => Ok(*value as f64),
            toml::Value::String(text) => text
                .trim()
                .parse::<f64>()
                .map_err(|_| self.invalid(format!("\"{text}\" is not a number"))),
            other => Err(self.invalid(format!("expected a number, found {}", other.type_str()))),
        }
    }

    fn durability(&self) -> Result<Durability, ConfigError> {
        match self.string()? {
            "fsync" => Ok(Durability::Fsync),
            "os" => Ok(Durability::Os),
            other => Err(self.invalid(format!("\"{other}\" is not \"fsync\" or \"os\""))),
        }
    }

    /// `log.dirs` is a comma-separated list in Kafka; Weir keeps one data directory.
    fn single_dir(&self) -> Result<PathBuf, ConfigError> {
        let text = self.non_empty_string()?;
        if text.contains(',') {
            return Err(self.invalid("only one data directory is supported"));
        }
        Ok(PathBuf::from(text))
    }

    /// `PLAINTEXT://host:port` or plain `host:port`; exactly one listener.
    fn listener(&self) -> Result<HostPort, ConfigError> {
        let text = self.non_empty_string()?;
        if text.contains(',') {
            return Err(self.invalid("only one listener is supported"));
        }
        let address = match text.split_once("://") {
            None => text.as_str(),
            Some((name, address)) if name.eq_ignore_ascii_case("PLAINTEXT") => address,
            Some((name, _)) => {
                return Err(self.invalid(format!(
                    "listener \"{name}\" is not supported (only PLAINTEXT)"
                )))
            }
        };
        parse_host_port(address).map_err(|reason| self.invalid(reason))
    }
}

/// Parse `host:port`, `[v6]:port` or `:port` (all interfaces, as in Kafka).
fn parse_host_port(text: &str) -> Result<HostPort, String> {
    let text = text.trim();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("\"{text}\": unclosed '['"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("\"{text}\": missing :PORT"))?;
        (host, port)
    } else {
        text.rsplit_once(':')
            .ok_or_else(|| format!("\"{text}\" is not HOST:PORT"))?
    };
    if host.contains(':') && !text.starts_with('[') {
        return Err(format!("\"{text}\": write IPv6 hosts as [host]:port"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("\"{text}\": \"{port}\" is not a port"))?;
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok(HostPort {
        host: host.to_owned(),
        port,
    })
}

/// Flatten nested tables into dotted Kafka property names.
fn flatten(
    prefix: &str,
    table: toml::Table,
    flat: &mut BTreeMap<String, toml::Value>,
    file: &str,
) -> Result<(), ConfigError> {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(&name, inner, flat, file)?,
            value => {
                // `"a.b" = 1` together with `a.b = 2` spells one property twice.
                if flat.insert(name.clone(), value).is_some() {
                    return Err(ConfigError::InvalidValue {
                        key: name,
                        file: file.to_owned(),
                        reason: "set more than once".to_owned(),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    // Goal: every accepted spelling maps to the right setting, and every refusal names its
    // key. Method: parse small TOML texts and compare fields or error messages.
    use super::*;

    /// The config `text` parses to (shared with the submodules' tests).
    pub(super) fn parse(text: &str) -> ServerConfig {
        match ServerConfig::from_toml_str(text, "weir.toml") {
            Ok(config) => config,
            Err(error) => panic!("unexpected refusal: {error}"),
        }
    }

    /// The message `text` is refused with.
    pub(super) fn refusal(text: &str) -> String {
        match ServerConfig::from_toml_str(text, "weir.toml") {
            Ok(config) => panic!("accepted {text:?} as {config:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn defaults() {
        let config = parse("");
        assert_eq!(config.listen, "127.0.0.1:9092");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.node.node_id, NODE_ID_DEFAULT);
        assert_eq!(config.node.advertised_host, "127.0.0.1");
        assert_eq!(config.node.advertised_port, 9092);
        assert_eq!(config.frame_bytes_max, FRAME_BYTES_MAX);
        assert!(config.advertise_bound_address);
    }

    #[test]
    fn kafka_names_dotted_quoted_and_nested() {
        let config = parse(
            r#"
            listeners = "PLAINTEXT://0.0.0.0:19092"
            "log.dirs" = "/var/lib/weir"
            node.id = 7
            num.partitions = "3"
            auto.create.topics.enable = "false"
            delete.topic.enable = false
            message.max.bytes = 2000000
            log.retention.bytes = -1
            log.segment.bytes = 1048576
            log.retention.check.interval.ms = 1000
            log.flush.interval.ms = 50
            producer.id.expiration.ms = 60000
            transaction.max.timeout.ms = 120000
            transactional.id.expiration.ms = 3600000
            weir.durability = "os"
            cluster.id = "abc"
            socket.request.max.bytes = 1000
            [default]
            replication.factor = 1
            "#,
        );
        assert_eq!(config.listen, "0.0.0.0:19092");
        // A wildcard listener is advertised as loopback.
        assert_eq!(config.node.advertised_host, "127.0.0.1");
        assert_eq!(config.node.advertised_port, 19092);
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/weir"));
        assert_eq!(config.node.node_id, 7);
        assert_eq!(config.node.num_partitions, 3);
        assert!(!config.node.auto_create_topics);
        assert!(!config.node.delete_topic_enable);
        assert_eq!(config.node.message_max_bytes, 2_000_000);
        assert_eq!(config.node.retention_bytes, -1);
        assert_eq!(config.node.segment_bytes, 1_048_576);
        assert_eq!(config.node.retention_check_interval_ms, 1000);
        assert_eq!(config.node.flush_interval_ms, 50);
        assert_eq!(config.node.producer_id_expiration_ms, 60_000);
        assert_eq!(config.node.transaction_max_timeout_ms, 120_000);
        assert_eq!(config.node.transactional_id_expiration_ms, 3_600_000);
        assert_eq!(config.node.durability, Durability::Os);
        assert_eq!(config.node.cluster_id, "abc");
        assert_eq!(config.frame_bytes_max, 1000);
        assert_eq!(config.node.default_replication_factor, 1);
    }

    #[test]
    fn client_limits_take_kafka_keys() {
        // Goal: Kafka's names bound connections and queued requests; -1 lifts the byte
        // bound as in Kafka; the defaults are Weir's documented ones.
        let config = parse("");
        assert_eq!(
            config.client_limits,
            crate::limits::LimitSettings::default()
        );
        let config = parse(
            "max.connections = 7\nqueued.max.requests = 9\n\
             queued.max.request.bytes = 104857600",
        );
        let limits = config.client_limits;
        assert_eq!(limits.connections_max, 7);
        assert_eq!(limits.queued_requests_max, 9);
        assert_eq!(limits.queued_request_bytes_max, 104_857_600);
        let config = parse("queued.max.request.bytes = -1");
        assert_eq!(config.client_limits.queued_request_bytes_max, usize::MAX);
    }

    #[test]
    fn shards_default_to_the_cores_and_take_the_key() {
        // Goal: unset means one shard per core and lets a data directory keep its own
        // count (ShardCount::Default); the key and the flag ask for exactly a count; out of
        // range is refused naming the key.
        assert_eq!(parse("").shards, ShardCount::Default(default_shards()));
        assert!(default_shards() >= 1);
        assert_eq!(parse("num.shards = 3").shards, ShardCount::Exactly(3));
        for bad in ["num.shards = 0", "num.shards = 257"] {
            let error = refusal(bad);
            assert!(error.contains("num.shards"), "{bad}: {error}");
        }
    }

    #[test]
    fn network_threads_take_kafka_key() {
        // Goal: unset means "one per core" (decided at start); Kafka's key sets it; out of
        // range is refused naming the key.
        assert_eq!(parse("").network_threads, None);
        assert_eq!(parse("num.network.threads = 6").network_threads, Some(6));
        for bad in ["num.network.threads = 0", "num.network.threads = 5000"] {
            let error = refusal(bad);
            assert!(error.contains("num.network.threads"), "{bad}: {error}");
        }
    }

    #[test]
    fn env_names_map_to_kafka_keys() {
        // Goal: Confluent's container rule, exactly; other variables name nothing.
        assert_eq!(
            env_key("WEIR_LOG_RETENTION_MS").as_deref(),
            Some("log.retention.ms")
        );
        assert_eq!(env_key("WEIR_NODE_ID").as_deref(), Some("node.id"));
        assert_eq!(
            env_key("WEIR_WEIR_METRICS_LISTENER").as_deref(),
            Some("weir.metrics.listener")
        );
        assert_eq!(env_key("WEIR_A__B___C_D").as_deref(), Some("a_b-c.d"));
        for nothing in [
            "KAFKA_NODE_ID",
            "WEIR_",
            "WEIR__X",
            "WEIR_X_",
            "WEIR_A____B",
            "weir_x",
        ] {
            assert_eq!(env_key(nothing), None, "{nothing}");
        }
    }

    #[test]
    fn env_overrides_the_file_and_flags_override_env() {
        // Goal: file < env < flags, the environment's bad values name their variable, and
        // variables naming no setting are ignored (tools share the prefix: WEIR_BIN).
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("weir.toml");
        std::fs::write(
            &file,
            "node.id = 2\nlog.retention.ms = 1\nnum.partitions = 4\n",
        )
        .expect("config");
        let args = ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        };
        let env = [
            ("WEIR_NODE_ID", "3"),
            ("WEIR_LOG_RETENTION_MS", "5000"),
            ("WEIR_WEIR_METRICS_LISTENER", "127.0.0.1:9644"),
            ("WEIR_CONTROLLED_SHUTDOWN_ENABLE", "false"),
            ("WEIR_BIN", "/usr/bin/weir"),
            ("PATH", "/bin"),
        ];
        let config = ServerConfig::from_args_and_env(&args, env).expect("valid");
        assert_eq!(config.node.node_id, 3, "env over file");
        assert_eq!(config.node.retention_ms, 5_000);
        assert_eq!(
            config.node.num_partitions, 4,
            "file kept where env is silent"
        );
        assert_eq!(config.metrics_listen.as_deref(), Some("127.0.0.1:9644"));
        assert!(!config.shutdown.controlled);
        let flagged = ServeArgs {
            node_id: Some(7),
            ..args.clone()
        };
        let config = ServerConfig::from_args_and_env(&flagged, env).expect("valid");
        assert_eq!(config.node.node_id, 7, "flags over env");
        let error = ServerConfig::from_args_and_env(&args, [("WEIR_NODE_ID", "x")])
            .expect_err("bad value")
            .to_string();
        assert!(
            error.contains("environment variable WEIR_NODE_ID"),
            "{error}"
        );
        assert!(error.contains("node.id"), "{error}");
    }

    #[test]
    fn controlled_shutdown_is_on_by_default_and_configurable() {
        // Goal: SIGTERM hands leaderships over unless told not to, and waits 30 s at most
        // by default; a bad value names its key.
        assert_eq!(parse("").shutdown, ShutdownSettings::default());
        assert!(ShutdownSettings::default().controlled);
        assert_eq!(ShutdownSettings::default().timeout_ms, 30_000);
        let config = parse(
            "\"controlled.shutdown.enable\" = false\n\
             \"weir.controlled.shutdown.timeout.ms\" = 5000",
        );
        assert_eq!(
            config.shutdown,
            ShutdownSettings {
                controlled: false,
                timeout_ms: 5_000
            }
        );
        let error = ServerConfig::from_toml_str("\"weir.controlled.shutdown.timeout.ms\" = 0", "f")
            .expect_err("zero refused")
            .to_string();
        assert!(
            error.contains("weir.controlled.shutdown.timeout.ms"),
            "{error}"
        );
    }

    #[test]
    fn metrics_listener_is_off_by_default_and_set_by_key_or_flag() {
        // Goal: metrics stay off unless asked for; the flag overrides the file; a bad
        // address is refused naming the key. Method: parse small configs and flags.
        assert_eq!(parse("").metrics_listen, None);
        let config = parse("weir.metrics.listener = \"127.0.0.1:9644\"");
        assert_eq!(config.metrics_listen.as_deref(), Some("127.0.0.1:9644"));
        let error = ServerConfig::from_toml_str("\"weir.metrics.listener\" = \"x\"", "f")
            .expect_err("refused")
            .to_string();
        assert!(error.contains("weir.metrics.listener"), "{error}");
        let args = ServeArgs {
            metrics: Some(":9645".to_owned()),
            ..ServeArgs::default()
        };
        let config = ServerConfig::from_args(&args).expect("valid");
        assert_eq!(config.metrics_listen.as_deref(), Some("0.0.0.0:9645"));
    }

    // Goal: the gateway is on at 127.0.0.1:9093 by default (soft), set or turned off by key
    // or flag (then required). Method: parse configs and flags.
    #[test]
    fn gateway_listener_default_key_flag_and_off() {
        let default = parse("").gateway.expect("on by default");
        assert_eq!(default.addr, "127.0.0.1:9093");
        assert!(!default.required);
        let keyed = parse("\"weir.gateway.listener\" = \"0.0.0.0:9500\"").gateway;
        assert_eq!(
            keyed,
            Some(GatewayListen {
                addr: "0.0.0.0:9500".into(),
                required: true
            })
        );
        assert_eq!(parse("\"weir.gateway.listener\" = \"off\"").gateway, None);
        let args = ServeArgs {
            gateway: Some("off".into()),
            ..ServeArgs::default()
        };
        assert_eq!(
            ServerConfig::from_args(&args).map(|c| c.gateway).ok(),
            Some(None)
        );
        let args = ServeArgs {
            gateway: Some("127.0.0.1:0".into()),
            ..ServeArgs::default()
        };
        let flagged = ServerConfig::from_args(&args).ok().and_then(|c| c.gateway);
        assert_eq!(flagged.map(|g| g.addr), Some("127.0.0.1:0".to_owned()));
        let bad = ServeArgs {
            gateway: Some("nope".into()),
            ..ServeArgs::default()
        };
        assert!(ServerConfig::from_args(&bad).is_err());
    }

    // Goal: cluster mode follows the voters (flags and keys), defaults roles from them, and
    // refuses inconsistent cluster settings naming the key. Method: parse flags and TOML.
    #[test]
    fn cluster_flags_and_keys() {
        assert!(
            parse("").node.cluster.is_none(),
            "single node without voters"
        );
        let args = ServeArgs {
            node_id: Some(2),
            controller_listen: Some("127.0.0.1:19094".into()),
            voters: Some("3@127.0.0.1:19096, 1@127.0.0.1:19092,2@127.0.0.1:19094".into()),
            ..ServeArgs::default()
        };
        let config = ServerConfig::from_args(&args).expect("valid");
        let cluster = config.node.cluster.expect("cluster mode");
        let ids: Vec<i32> = cluster.voters.iter().map(|voter| voter.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(cluster.voter_addr(3), Some("127.0.0.1:19096"));
        assert_eq!(cluster.peer_addr, "127.0.0.1:19094");
        assert!(cluster.controller_role && cluster.broker_role);

        let config = parse(
            r#"
            node.id = 4
            controller.quorum.voters = "1@a:1,2@b:2,3@c:3"
            controller.listener = "CONTROLLER://d:4"
            min.insync.replicas = 2
            default.replication.factor = 3
            replica.lag.time.max.ms = 10000
            replica.fetch.wait.max.ms = 100
            replica.fetch.max.bytes = 65536
            unclean.leader.election.enable = true
            auto.leader.rebalance.enable = "false"
            leader.imbalance.check.interval.seconds = 7
            broker.heartbeat.interval.ms = 200
            broker.session.timeout.ms = 3000
            controller.quorum.election.timeout.ms = 400
            weir.acks.all.durability = "isr-memory"
            "#,
        );
        assert_eq!(config.node.min_insync_replicas, 2);
        assert_eq!(config.node.default_replication_factor, 3);
        let cluster = config.node.cluster.expect("cluster mode");
        assert!(
            !cluster.controller_role,
            "a non-voter defaults to broker only"
        );
        assert!(cluster.broker_role);
        assert_eq!(cluster.peer_addr, "d:4");
        assert_eq!(cluster.replica_lag_time_max_ms, 10_000);
        assert_eq!(cluster.replica_fetch_wait_max_ms, 100);
        assert_eq!(cluster.replica_fetch_max_bytes, 65_536);
        assert!(cluster.unclean_leader_election);
        assert!(!cluster.auto_leader_rebalance);
        assert_eq!(cluster.leader_imbalance_check_interval_ms, 7_000);
        assert_eq!(cluster.broker_heartbeat_interval_ms, 200);
        assert_eq!(cluster.broker_session_timeout_ms, 3_000);
        assert_eq!(cluster.election_timeout_ms, 400);
        assert_eq!(cluster.ack_durability, AckDurability::IsrMemory);

        // A voter binding a wildcard is advertised at its voter address.
        let wildcard = parse(
            "node.id = 1\ncontroller.quorum.voters = \"1@a:1\"\n\
             controller.listener = \"0.0.0.0:1\"\nprocess.roles = \"controller\"",
        );
        let cluster = wildcard.node.cluster.expect("cluster mode");
        assert_eq!(cluster.peer_addr, "a:1");
        assert!(cluster.controller_role && !cluster.broker_role);
    }

    #[test]
    fn cluster_refusals_name_the_key() {
        let voters_only = ServeArgs {
            voters: Some("1@127.0.0.1:19092".into()),
            ..ServeArgs::default()
        };
        let message = ServerConfig::from_args(&voters_only)
            .expect_err("refused")
            .to_string();
        assert!(
            message.starts_with("invalid value for \"--voters\""),
            "{message}"
        );
        assert!(message.contains("--controller-listen"), "{message}");
        let cases = [
            (
                "controller.quorum.voters = \"1@a:1,1@b:2\"",
                "controller.quorum.voters",
            ),
            (
                "controller.quorum.voters = \"x@a:1\"",
                "controller.quorum.voters",
            ),
            (
                "controller.quorum.voters = \"1@0.0.0.0:1\"",
                "controller.quorum.voters",
            ),
            (
                "controller.quorum.voters = \"1@a:1,\"",
                "controller.quorum.voters",
            ),
            (
                "controller.quorum.voters = \"1@a\"",
                "controller.quorum.voters",
            ),
            ("controller.listener = \"a:1\"", "controller.listener"),
            ("process.roles = \"broker\"", "process.roles"),
            (
                "controller.quorum.voters = \"2@a:1\"\ncontroller.listener = \"b:1\"\n\
                 process.roles = \"broker,controller\"",
                "process.roles",
            ),
            (
                "controller.quorum.voters = \"2@a:1\"\ncontroller.listener = \"0.0.0.0:1\"",
                "controller.listener",
            ),
            (
                "controller.quorum.voters = \"1@a:1\"\ncontroller.listener = \"a:1\"\n\
                 process.roles = \"leader\"",
                "process.roles",
            ),
            ("min.insync.replicas = 0", "min.insync.replicas"),
            ("replica.lag.time.max.ms = 0", "replica.lag.time.max.ms"),
            ("replica.fetch.max.bytes = -1", "replica.fetch.max.bytes"),
            (
                "unclean.leader.election.enable = \"maybe\"",
                "unclean.leader.election.enable",
            ),
            (
                "weir.acks.all.durability = \"fsync\"",
                "weir.acks.all.durability",
            ),
            (
                "leader.imbalance.check.interval.seconds = 0",
                "leader.imbalance.check.interval.seconds",
            ),
        ];
        for (text, key) in cases {
            let message = refusal(text);
            let expected = format!("invalid value for \"{key}\" in weir.toml");
            assert!(message.starts_with(&expected), "{text:?} gave {message:?}");
        }
    }

    #[test]
    fn listener_forms() {
        assert_eq!(parse("listeners = \"127.0.0.2:1\"").listen, "127.0.0.2:1");
        assert_eq!(
            parse("listeners = \"PLAINTEXT://:9093\"").listen,
            "0.0.0.0:9093"
        );
        assert_eq!(parse("listeners = \"[::1]:9093\"").listen, "[::1]:9093");
        let config = parse(
            "listeners = \"0.0.0.0:9092\"\nadvertised.listeners = \"PLAINTEXT://kafka1:29092\"",
        );
        assert_eq!(config.node.advertised_host, "kafka1");
        assert_eq!(config.node.advertised_port, 29092);
        assert!(!config.advertise_bound_address);
    }

    #[test]
    fn retention_precedence_ms_over_minutes_over_hours() {
        assert_eq!(
            parse("log.retention.hours = 2").node.retention_ms,
            7_200_000
        );
        assert_eq!(
            parse("log.retention.hours = 2\nlog.retention.minutes = 3")
                .node
                .retention_ms,
            180_000
        );
        let all = "log.retention.hours = 2\nlog.retention.minutes = 3\nlog.retention.ms = 5";
        assert_eq!(parse(all).node.retention_ms, 5);
        assert_eq!(parse("log.retention.ms = -1").node.retention_ms, -1);
    }

    // Goal: the log cleaner's keys reach NodeConfig, in every spelling Kafka's
    // server.properties uses (quoted numbers and booleans, a list as one string) and as
    // TOML arrays and floats. Method: one file setting every key, compared field by field.
    #[test]
    fn cleaner_keys() {
        let config = parse(
            r#"
            log.cleanup.policy = "compact, delete"
            log.cleaner.enable = "false"
            log.cleaner.min.cleanable.ratio = 0.25
            log.cleaner.delete.retention.ms = 0
            log.cleaner.min.compaction.lag.ms = "100"
            log.cleaner.max.compaction.lag.ms = 200
            log.cleaner.backoff.ms = 500
            log.cleaner.dedupe.buffer.size = 2097152
            log.cleaner.io.buffer.size = 4096
            log.cleaner.io.max.bytes.per.second = "1048576.0"
            "#,
        );
        let node = &config.node;
        assert_eq!(node.cleanup_policy, CleanupPolicy::COMPACT_DELETE);
        assert!(!node.cleaner_enable);
        assert_eq!(node.min_cleanable_dirty_ratio.get(), 0.25);
        assert_eq!(node.delete_retention_ms, 0);
        assert_eq!(node.min_compaction_lag_ms, 100);
        assert_eq!(node.max_compaction_lag_ms, 200);
        assert_eq!(node.cleaner_backoff_ms, 500);
        assert_eq!(node.cleaner_dedupe_buffer_bytes, 2_097_152);
        assert_eq!(node.cleaner_io_buffer_bytes, 4096);
        assert_eq!(node.cleaner_io_max_bytes_per_second, 1_048_576);
        let java_max = parse(r#"log.cleaner.io.max.bytes.per.second = "1.7976931348623157E308""#);
        assert_eq!(java_max.node.cleaner_io_max_bytes_per_second, u64::MAX);
        assert_eq!(parse("").node.cleaner_io_max_bytes_per_second, u64::MAX);
        let array = parse(r#"log.cleanup.policy = ["compact"]"#);
        assert_eq!(array.node.cleanup_policy, CleanupPolicy::COMPACT);
        let integer = parse("log.cleaner.min.cleanable.ratio = 1");
        assert_eq!(integer.node.min_cleanable_dirty_ratio.get(), 1.0);
        let quoted = parse(r#"log.cleaner.min.cleanable.ratio = "0.75""#);
        assert_eq!(quoted.node.min_cleanable_dirty_ratio.get(), 0.75);
        // Unset, they keep Kafka's defaults.
        assert_eq!(parse("").node.cleanup_policy, CleanupPolicy::DELETE);
        assert_eq!(parse("").node.cleaner_backoff_ms, 15_000);
    }

    // Goal: log.roll.ms wins over log.roll.hours, and hours are converted to ms.
    // Method: each alone, then both.
    #[test]
    fn roll_precedence_ms_over_hours() {
        assert_eq!(parse("").node.segment_ms, 604_800_000);
        assert_eq!(parse("log.roll.hours = 2").node.segment_ms, 7_200_000);
        assert_eq!(parse("log.roll.ms = 5").node.segment_ms, 5);
        let both = "log.roll.hours = 2\nlog.roll.ms = 5";
        assert_eq!(parse(both).node.segment_ms, 5);
    }

    // Goal: bad cleaner values are refused with the key and why. Method: exact messages
    // for the rules Weir words itself (policy lists, ratio, dedupe floor, lag conflict).
    #[test]
    fn cleaner_refusals_say_why() {
        let prefix = |key: &str| format!("invalid value for \"{key}\" in weir.toml: ");
        let policy = prefix("log.cleanup.policy");
        assert_eq!(
            refusal(r#"log.cleanup.policy = "compact,shred""#),
            format!(
                "{policy}\"compact,shred\": unknown policy \"shred\"; valid values are \
                 compact, delete"
            )
        );
        assert_eq!(
            refusal(r#"log.cleanup.policy = """#),
            format!("{policy}\"\": the list must not be empty; valid values are compact, delete")
        );
        assert_eq!(
            refusal("log.cleanup.policy = [1]"),
            format!("{policy}expected strings, found integer")
        );
        let ratio = prefix("log.cleaner.min.cleanable.ratio");
        assert_eq!(
            refusal("log.cleaner.min.cleanable.ratio = 1.5"),
            format!("{ratio}1.5 is outside 0..=1")
        );
        assert_eq!(
            refusal("log.cleaner.min.cleanable.ratio = nan"),
            format!("{ratio}NaN is outside 0..=1")
        );
        let io = prefix("log.cleaner.io.max.bytes.per.second");
        assert_eq!(
            refusal("log.cleaner.io.max.bytes.per.second = 0"),
            format!("{io}0 must be more than 0")
        );
        assert_eq!(
            refusal(r#"log.cleaner.io.max.bytes.per.second = "fast""#),
            format!("{io}\"fast\" is not a number")
        );
        let dedupe = prefix("log.cleaner.dedupe.buffer.size");
        assert_eq!(
            refusal("log.cleaner.dedupe.buffer.size = 1048576"),
            format!(
                "{dedupe}1048576 must be more than 1048576 (1 MiB, Kafka's floor for a cleaner)"
            )
        );
        // Each lag is in range alone; the core's validate() refuses the pair.
        let lags = "log.cleaner.min.compaction.lag.ms = 10\nlog.cleaner.max.compaction.lag.ms = 9";
        assert_eq!(
            refusal(lags),
            format!(
                "{}must be <= log.cleaner.max.compaction.lag.ms (10)",
                prefix("log.cleaner.min.compaction.lag.ms")
            )
        );
    }

    #[test]
    fn refuses_unknown_keys() {
        assert_eq!(
            refusal("log.retention.foo = 1"),
            "unknown setting \"log.retention.foo\" in weir.toml"
        );
        assert_eq!(
            refusal("[socket]\nfoo = 1"),
            "unknown setting \"socket.foo\" in weir.toml"
        );
    }

    #[test]
    fn refuses_invalid_values() {
        let cases = [
            ("num.partitions = 0", "num.partitions"),
            ("num.partitions = \"many\"", "num.partitions"),
            ("node.id = -1", "node.id"),
            ("broker.id = 3000000000", "broker.id"),
            ("message.max.bytes = true", "message.max.bytes"),
            (
                "auto.create.topics.enable = \"yes\"",
                "auto.create.topics.enable",
            ),
            ("delete.topic.enable = 1", "delete.topic.enable"),
            ("log.retention.ms = 0", "log.retention.ms"),
            (
                "log.retention.hours = 9223372036854775807",
                "log.retention.hours",
            ),
            ("log.retention.bytes = -2", "log.retention.bytes"),
            ("log.segment.bytes = 0", "log.segment.bytes"),
            ("log.roll.ms = 0", "log.roll.ms"),
            ("log.roll.hours = 0", "log.roll.hours"),
            ("log.roll.hours = 2147483648", "log.roll.hours"),
            ("log.cleanup.policy = \"Delete\"", "log.cleanup.policy"),
            (
                "log.cleanup.policy = \"delete,delete\"",
                "log.cleanup.policy",
            ),
            ("log.cleanup.policy = true", "log.cleanup.policy"),
            ("log.cleaner.enable = \"yes\"", "log.cleaner.enable"),
            (
                "log.cleaner.min.cleanable.ratio = -0.1",
                "log.cleaner.min.cleanable.ratio",
            ),
            (
                "log.cleaner.min.cleanable.ratio = \"half\"",
                "log.cleaner.min.cleanable.ratio",
            ),
            (
                "log.cleaner.delete.retention.ms = -1",
                "log.cleaner.delete.retention.ms",
            ),
            (
                "log.cleaner.min.compaction.lag.ms = -1",
                "log.cleaner.min.compaction.lag.ms",
            ),
            (
                "log.cleaner.max.compaction.lag.ms = 0",
                "log.cleaner.max.compaction.lag.ms",
            ),
            ("log.cleaner.backoff.ms = 0", "log.cleaner.backoff.ms"),
            (
                "log.cleaner.dedupe.buffer.size = -1",
                "log.cleaner.dedupe.buffer.size",
            ),
            (
                "log.cleaner.io.buffer.size = 0",
                "log.cleaner.io.buffer.size",
            ),
            (
                "log.cleaner.io.buffer.size = 2147483648",
                "log.cleaner.io.buffer.size",
            ),
            ("log.flush.interval.ms = -1", "log.flush.interval.ms"),
            (
                "transaction.max.timeout.ms = 0",
                "transaction.max.timeout.ms",
            ),
            (
                "transactional.id.expiration.ms = -5",
                "transactional.id.expiration.ms",
            ),
            ("weir.durability = \"sometimes\"", "weir.durability"),
            ("cluster.id = \"\"", "cluster.id"),
            ("socket.request.max.bytes = 0", "socket.request.max.bytes"),
            ("max.connections = 0", "max.connections"),
            ("queued.max.requests = 0", "queued.max.requests"),
            ("queued.max.request.bytes = 0", "queued.max.request.bytes"),
            (
                "queued.max.request.bytes = 1000\nsocket.request.max.bytes = 2000",
                "queued.max.request.bytes",
            ),
            ("listeners = \"SSL://127.0.0.1:9093\"", "listeners"),
            ("listeners = \"a:1,b:2\"", "listeners"),
            ("listeners = \"localhost\"", "listeners"),
            ("listeners = \"localhost:99999\"", "listeners"),
            (
                "advertised.listeners = \"0.0.0.0:9092\"",
                "advertised.listeners",
            ),
            ("log.dirs = \"/a,/b\"", "log.dirs"),
            (
                "default.replication.factor = 0",
                "default.replication.factor",
            ),
        ];
        for (text, key) in cases {
            let message = refusal(text);
            let expected = format!("invalid value for \"{key}\" in weir.toml");
            assert!(message.starts_with(&expected), "{text:?} gave {message:?}");
        }
    }

    #[test]
    fn cors_keys_are_confluent_s_and_off_by_default() {
        assert_eq!(parse("").http_cors, None);
        let config = parse(
            "\"access.control.allow.origin\" = \"http://127.0.0.1:8000\"\n\
             \"access.control.allow.methods\" = \"GET,POST,OPTIONS\"\n\
             \"access.control.allow.headers\" = \"Content-Type,Authorization\"",
        );
        let expected = crate::http::Cors::new(
            "http://127.0.0.1:8000",
            "GET,POST,OPTIONS",
            "Content-Type,Authorization",
        );
        assert_eq!(Ok(config.http_cors), expected.clone());
        assert!(expected.is_ok_and(|cors| cors.is_some()));
        // Methods and headers alone do not turn CORS on (no origin is allowed).
        assert_eq!(
            parse("\"access.control.allow.methods\" = \"GET\"").http_cors,
            None
        );
        let message = refusal("\"access.control.allow.origin\" = \"http://a\\u007f\"");
        assert!(
            message.starts_with("invalid value for \"access.control.allow.origin\""),
            "{message}"
        );
    }

    #[test]
    fn refuses_bad_toml_and_duplicates() {
        assert!(refusal("num.partitions = ").starts_with("invalid TOML in weir.toml"));
        let duplicate = refusal("\"log.retention.ms\" = 1\nlog.retention.ms = 2");
        assert!(duplicate.contains("log.retention.ms"), "{duplicate}");
    }

    #[test]
    fn flags_override_file() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(
            file.path(),
            "listeners = \"127.0.0.1:1111\"\nlog.dirs = \"/from/file\"\nnode.id = 4",
        )
        .expect("write temp file");
        let args = ServeArgs {
            listen: Some("127.0.0.1:2222".to_owned()),
            data_dir: Some(PathBuf::from("/from/flag")),
            node_id: Some(9),
            config: Some(file.path().to_owned()),
            ..ServeArgs::default()
        };
        let config = ServerConfig::from_args(&args).expect("valid");
        assert_eq!(config.listen, "127.0.0.1:2222");
        assert_eq!(config.node.advertised_port, 2222);
        assert_eq!(config.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(config.node.node_id, 9);

        let file_only = ServeArgs {
            config: Some(file.path().to_owned()),
            ..ServeArgs::default()
        };
        let config = ServerConfig::from_args(&file_only).expect("valid");
        assert_eq!(config.listen, "127.0.0.1:1111");
        assert_eq!(config.node.node_id, 4);
    }

    #[test]
    fn refuses_bad_flags_and_missing_file() {
        let bad_listen = ServeArgs {
            listen: Some("nope".to_owned()),
            ..ServeArgs::default()
        };
        let message = ServerConfig::from_args(&bad_listen)
            .expect_err("refused")
            .to_string();
        assert!(
            message.starts_with("invalid value for \"--listen\""),
            "{message}"
        );
        let bad_id = ServeArgs {
            node_id: Some(-3),
            ..ServeArgs::default()
        };
        assert!(ServerConfig::from_args(&bad_id).is_err());
        let missing = ServeArgs {
            config: Some(PathBuf::from("/nonexistent/weir.toml")),
            ..ServeArgs::default()
        };
        let message = ServerConfig::from_args(&missing)
            .expect_err("refused")
            .to_string();
        assert!(
            message.starts_with("cannot read config file /nonexistent/weir.toml"),
            "{message}"
        );
    }

    // Goal: tiered storage's keys reach the node config, the URL turns tiered storage on,
    // and unset keys keep Kafka's defaults. Method: one file with every key, then none.
    #[test]
    fn remote_storage_keys() {
        let config = parse(
            r#"
            weir.remote.storage.url = "s3://bucket/weir/tiered"
            remote.log.manager.task.interval.ms = 500
            weir.remote.orphan.min.age.ms = "60000"
            log.local.retention.ms = 3600000
            log.local.retention.bytes = -2
            log.retention.bytes = 1073741824
            "#,
        );
        let url = config.remote_storage_url.as_deref();
        assert_eq!(url, Some("s3://bucket/weir/tiered"));
        let node = &config.node;
        assert!(node.remote_storage_enable);
        assert_eq!(node.remote_log_task_interval_ms, 500);
        assert_eq!(node.remote_orphan_min_age_ms, 60_000);
        assert_eq!(node.local_retention_ms, 3_600_000);
        assert_eq!(node.local_retention_bytes, -2);
        let defaults = parse("");
        assert_eq!(defaults.remote_storage_url, None);
        assert!(!defaults.node.remote_storage_enable);
        assert_eq!(defaults.node.remote_log_task_interval_ms, 30_000);
        assert_eq!(defaults.node.remote_orphan_min_age_ms, 600_000);
        assert_eq!(defaults.node.local_retention_ms, -2);
        assert_eq!(defaults.node.local_retention_bytes, -2);
        for url in ["file:///var/lib/weir-tier", "memory://", "s3://b"] {
            let config = parse(&format!("weir.remote.storage.url = \"{url}\""));
            assert_eq!(config.remote_storage_url.as_deref(), Some(url));
        }
    }

    // Goal: bad tiered-storage values are refused under their key with the reason: bad
    // URLs, out-of-range numbers, and (only when tiered storage is on, as in Kafka) a local
    // retention longer than the total one. Method: one refusal per case; then the same
    // local retentions without a URL are accepted.
    #[test]
    fn remote_storage_refusals_say_why() {
        let url = "weir.remote.storage.url = \"memory://\"\n";
        let cases = [
            (
                "weir.remote.storage.url = \"ftp://x\"",
                "weir.remote.storage.url",
                "scheme",
            ),
            (
                "weir.remote.storage.url = \"s3://\"",
                "weir.remote.storage.url",
                "bucket",
            ),
            (
                "weir.remote.storage.url = \"file://rel\"",
                "weir.remote.storage.url",
                "absolute",
            ),
            (
                "weir.remote.storage.url = \"bucket\"",
                "weir.remote.storage.url",
                "s3://",
            ),
            (
                "weir.remote.storage.url = \"\"",
                "weir.remote.storage.url",
                "empty",
            ),
            (
                "remote.log.manager.task.interval.ms = 0",
                "remote.log.manager.task.interval.ms",
                "",
            ),
            (
                "weir.remote.orphan.min.age.ms = -1",
                "weir.remote.orphan.min.age.ms",
                "",
            ),
            (
                "log.local.retention.ms = -3",
                "log.local.retention.ms",
                "-3",
            ),
            (
                "log.local.retention.bytes = -3",
                "log.local.retention.bytes",
                "-3",
            ),
        ];
        let crossed = [
            "log.retention.ms = 1000\nlog.local.retention.ms = 2000",
            "log.retention.ms = 1000\nlog.local.retention.ms = -1",
            "log.retention.bytes = 1000\nlog.local.retention.bytes = 1001",
            "log.retention.bytes = 1000\nlog.local.retention.bytes = -1",
        ];
        for (text, key, reason) in cases {
            let message = refusal(text);
            let expected = format!("invalid value for \"{key}\" in weir.toml");
            assert!(message.starts_with(&expected), "{text:?} gave {message:?}");
            assert!(message.contains(reason), "{text:?} gave {message:?}");
        }
        for text in crossed {
            let message = refusal(&format!("{url}{text}"));
            assert!(
                message.contains("more than log.retention"),
                "{text:?}: {message}"
            );
            let config = parse(text);
            assert!(!config.node.remote_storage_enable);
        }
        // Equal, -2 and an unlimited total are fine with tiered storage on.
        parse(&format!(
            "{url}log.retention.ms = 1000\nlog.local.retention.ms = 1000"
        ));
        parse(&format!(
            "{url}log.retention.ms = -1\nlog.local.retention.ms = -1"
        ));
        parse(&format!(
            "{url}log.retention.bytes = 5\nlog.local.retention.bytes = -2"
        ));
    }

    // Goal: `--remote-storage-url` sets tiered storage like the key and is checked the
    // same way. Method: a good and a bad flag.
    #[test]
    fn remote_storage_flag() {
        let args = ServeArgs {
            remote_storage_url: Some("file:///tmp/tier".to_owned()),
            ..ServeArgs::default()
        };
        let config = ServerConfig::from_args(&args).expect("valid");
        assert_eq!(
            config.remote_storage_url.as_deref(),
            Some("file:///tmp/tier")
        );
        assert!(config.node.remote_storage_enable);
        let bad = ServeArgs {
            remote_storage_url: Some("gs://bucket".to_owned()),
            ..ServeArgs::default()
        };
        let message = ServerConfig::from_args(&bad)
            .expect_err("refused")
            .to_string();
        assert!(
            message.starts_with("invalid value for \"--remote-storage-url\""),
            "{message}"
        );
    }
}
