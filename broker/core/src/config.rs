//! Static configuration of one broker node, with Kafka's defaults.
//!
//! The server maps Kafka property names (`log.retention.ms`, ...) onto these fields; the
//! core only sees typed values. Topic-level overrides live in
//! [`crate::topic_config::TopicConfig`] and fall back to the fields here.
//! Invariant: a config that passed [`NodeConfig::validate`] never makes the node panic.

/// How appends are made durable before they are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync before acknowledging acks=1/all (Weir's default, safer than Kafka's).
    Fsync,
    /// Hand writes to the OS before acknowledging; fsync every `flush_interval_ms`
    /// (Kafka's default behaviour: a power loss can drop acknowledged records).
    Os,
}

/// Which cleanup a log gets: Kafka's `cleanup.policy` (topic) / `log.cleanup.policy` (broker).
///
/// Kafka's list `delete`, `compact` or `compact,delete`: with `delete` retention removes old
/// segments by time and size; with `compact` the log cleaner keeps the latest record of every
/// key; with both, both run. A parsed policy has at least one of the two set (an empty list is
/// refused); a policy with neither is refused by [`NodeConfig::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// `delete`: retention (`retention.ms`, `retention.bytes`) removes old segments.
    pub delete: bool,
    /// `compact`: the log cleaner removes records superseded by a later one of the same key.
    pub compact: bool,
}

/// A `cleanup.policy` list that is not Kafka's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CleanupPolicyError {
    /// No policy at all (`""`).
    #[error("the list must not be empty; valid values are compact, delete")]
    Empty,
    /// An empty item between commas (`delete,`).
    #[error("an item of the list is empty; valid values are compact, delete")]
    EmptyItem,
    /// A word other than `delete` and `compact` (Kafka's words are case-sensitive).
    #[error("unknown policy {0:?}; valid values are compact, delete")]
    Unknown(String),
    /// A policy named twice (`delete,delete`).
    #[error("policy {0:?} is listed twice")]
    Duplicate(String),
}

impl CleanupPolicy {
    /// `delete`: Kafka's default, retention only.
    pub const DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: false,
    };
    /// `compact`: the log cleaner only; retention by time and size does not apply.
    pub const COMPACT: CleanupPolicy = CleanupPolicy {
        delete: false,
        compact: true,
    };
    /// `compact,delete`: both.
    pub const COMPACT_DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: true,
    };

    /// Parse Kafka's comma-separated list (`delete`, `compact`, `compact,delete` or
    /// `delete,compact`; spaces around items are ignored).
    pub fn parse_list(text: &str) -> Result<CleanupPolicy, CleanupPolicyError> {
        if text.trim().is_empty() {
            return Err(CleanupPolicyError::Empty);
        }
        let mut policy = CleanupPolicy {
            delete: false,
            compact: false,
        };
        for item in text.split(',').map(str::trim) {
            let slot = match item {
                "" => return Err(CleanupPolicyError::EmptyItem),
                "delete" => &mut policy.delete,
                "compact" => &mut policy.compact,
                other => return Err(CleanupPolicyError::Unknown(other.to_owned())),
            };
            if *slot {
                return Err(CleanupPolicyError::Duplicate(item.to_owned()));
            }
            *slot = true;
        }
        Ok(policy)
    }

    /// The canonical list (`delete`, `compact` or `compact,delete`), as persisted and as
    /// DescribeConfigs reports it; [`CleanupPolicy::parse_list`] reads it back unchanged.
    pub fn as_list(&self) -> &'static str {
        match (self.compact, self.delete) {
            (true, true) => "compact,delete",
            (true, false) => "compact",
            (false, true) => "delete",
            // Unreachable through parse_list and validate; named rather than panicking.
            (false, false) => "",
        }
    }
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy::DELETE
    }
}

impl std::fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_list())
    }
}

/// `min.cleanable.dirty.ratio` / `log.cleaner.min.cleanable.ratio`: the share of a log's bytes
/// that must be dirty (not yet compacted) before the cleaner compacts it.
///
/// Invariant: finite and within `0.0..=1.0` (Kafka's `between(0, 1)`; Kafka lets NaN through,
/// Weir does not), and never `-0.0`; so equality is total and [`Eq`] holds.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct DirtyRatio(f64);

impl DirtyRatio {
    /// Kafka's default, 0.5.
    pub const DEFAULT: DirtyRatio = DirtyRatio(0.5);

    /// The ratio, or `None` when `value` is not a finite number in `0.0..=1.0`.
    pub fn new(value: f64) -> Option<DirtyRatio> {
        if !value.is_finite() || !(0.0..=1.0).contains(&value) {
            return None;
        }
        // -0.0 passes the range check; store 0.0 so it prints and persists as "0.0".
        Some(DirtyRatio(if value == 0.0 { 0.0 } else { value }))
    }

    /// The ratio as a number in `0.0..=1.0`.
    pub fn get(self) -> f64 {
        self.0
    }
}

// NaN is never stored (see `new`), so f64's equality is an equivalence here.
impl Eq for DirtyRatio {}

impl Default for DirtyRatio {
    fn default() -> Self {
        DirtyRatio::DEFAULT
    }
}

impl std::fmt::Display for DirtyRatio {
    /// Shortest form that parses back to the same value, with a fractional part as Java
    /// prints doubles (`0.5`, `1.0`, `0.0`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Configuration of one node. Field comments give the Kafka property and default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// `node.id` / `broker.id` (1).
    pub node_id: i32,
    /// `cluster.id`: returned in Metadata and DescribeCluster.
    pub cluster_id: String,
    /// Host from `advertised.listeners`, returned to clients.
    pub advertised_host: String,
    /// Port from `advertised.listeners`.
    pub advertised_port: i32,
    /// The log directory DescribeLogDirs names (`log.dirs`; Weir keeps one). The server
    /// passes its data directory's absolute path; to the core it is only a label.
    pub log_dir: String,
    /// `num.partitions` (1): partitions of auto-created topics and of CreateTopics with -1.
    pub num_partitions: i32,
    /// `default.replication.factor` (1).
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable` (true).
    pub auto_create_topics: bool,
    /// `delete.topic.enable` (true).
    pub delete_topic_enable: bool,
    /// `message.max.bytes` (1048588): the largest record batch accepted.
    pub message_max_bytes: i32,
    /// `log.retention.ms` (604800000 = 7 days); -1 keeps data forever.
    pub retention_ms: i64,
    /// `log.retention.bytes` (-1 = unbounded), per partition.
    pub retention_bytes: i64,
    /// `log.segment.bytes` (1 GiB): size of a logical segment, the unit retention deletes.
    pub segment_bytes: u64,
    /// `log.retention.check.interval.ms` (300000).
    pub retention_check_interval_ms: u64,
    /// `log.roll.ms`, else `log.roll.hours` (168 hours = 604800000 ms): the default of a
    /// topic's `segment.ms`, the age at which the active segment is closed even if not full.
    pub segment_ms: i64,
    /// `log.cleanup.policy` (delete): the default of a topic's `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `log.cleaner.min.cleanable.ratio` (0.5): the default of a topic's
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: DirtyRatio,
    /// `log.cleaner.delete.retention.ms` (86400000 = 1 day): the default of a topic's
    /// `delete.retention.ms`, how long a tombstone survives compaction.
    pub delete_retention_ms: i64,
    /// `log.cleaner.min.compaction.lag.ms` (0): the default of a topic's
    /// `min.compaction.lag.ms`, the least age of a record before it may be compacted.
    pub min_compaction_lag_ms: i64,
    /// `log.cleaner.max.compaction.lag.ms` (`i64::MAX`): the default of a topic's
    /// `max.compaction.lag.ms`, the most age of a dirty record before its log is compacted
    /// whatever its dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `log.cleaner.enable` (true): run the log cleaner. Off, compacted topics (internal
    /// ones included) grow without bound, as in Kafka.
    pub cleaner_enable: bool,
    /// `log.cleaner.backoff.ms` (15000): how long the cleaner waits before looking again
    /// when no log is eligible. Weir refuses 0 (Kafka accepts it): the wait is a timer of
    /// the sans-IO node, and a zero timer would fire in a loop.
    pub cleaner_backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size` (134217728 = 128 MiB): memory for the key → offset
    /// map of one cleaning pass; bounds how much dirty log one pass can compact. More than
    /// 1 MiB (Kafka's rule for one cleaner thread; Weir runs one cleaner).
    pub cleaner_dedupe_buffer_bytes: u64,
    /// `log.cleaner.io.buffer.size` (524288 = 512 KiB): read and write buffer memory of the
    /// cleaner. At least 1 (Kafka accepts 0, with which its cleaner cannot read a batch).
    pub cleaner_io_buffer_bytes: u32,
    /// `log.cleaner.io.max.bytes.per.second` (Kafka's default `Double.MAX_VALUE`: no limit,
    /// `u64::MAX` here): the rate the log cleaner reads the log at; the driver paces a
    /// job's reads to it. At least 1.
    pub cleaner_io_max_bytes_per_second: u64,
    /// Tiered storage is available: the broker has a remote store (`remote.log.storage.
    /// system.enable`, set by the server when `weir.remote.storage.url` is configured).
    /// Without it, `remote.storage.enable=true` on a topic is refused, as Kafka does.
    pub remote_storage_enable: bool,
    /// `remote.log.manager.task.interval.ms` (30000): how often a leader looks for closed
    /// segments to upload, and runs remote retention.
    pub remote_log_task_interval_ms: u64,
    /// `remote.log.manager.copy.max.jobs` (Weir's; 2): uploads in flight node-wide.
    pub remote_copy_jobs_max: usize,
    /// `weir.remote.orphan.min.age.ms` (600000): an object no image references is deleted
    /// by the sweeper only once it is this old (an upload in flight is not referenced yet).
    pub remote_orphan_min_age_ms: u64,
    /// `log.local.retention.ms` (-2: `retention.ms`): the broker default of the topic
    /// config `local.retention.ms`.
    pub local_retention_ms: i64,
    /// `log.local.retention.bytes` (-2: `retention.bytes`).
    pub local_retention_bytes: i64,
    /// `weir.durability` (fsync).
    pub durability: Durability,
    /// `log.flush.interval.ms` (1000): periodic fsync when durability is [`Durability::Os`].
    pub flush_interval_ms: u64,
    /// `fetch.max.bytes` (57671680): upper bound on one fetch response's record bytes.
    pub fetch_max_bytes: i32,
    /// `group.initial.rebalance.delay.ms` (3000): how long a new group's first rebalance
    /// waits for more members before completing.
    pub group_initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms` (6000).
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (1800000).
    pub group_max_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms` (5000): heartbeat interval of KIP-848 members.
    pub group_consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.session.timeout.ms` (45000): session of KIP-848 members.
    pub group_consumer_session_timeout_ms: i32,
    /// `offsets.topic.num.partitions` (50): partitions of `__consumer_offsets`, fixed once
    /// the topic exists.
    pub offsets_topic_num_partitions: i32,
    /// `transaction.state.log.num.partitions` (50): partitions of `__transaction_state`,
    /// fixed once the topic exists.
    pub transaction_state_log_num_partitions: i32,
    /// `offsets.topic.segment.bytes` (104857600): `segment.bytes` of `__consumer_offsets`,
    /// kept small so its segments close and compaction (which never touches the active
    /// segment) keeps the log, and recovery's replay, short.
    pub offsets_topic_segment_bytes: i32,
    /// `transaction.state.log.segment.bytes` (104857600): `segment.bytes` of
    /// `__transaction_state`, for the same reason.
    pub transaction_state_log_segment_bytes: i32,
    /// `producer.id.expiration.ms` (86400000): an idempotent producer that has not written
    /// to a partition for this long is forgotten there (checked on the retention timer).
    pub producer_id_expiration_ms: i64,
    /// `transaction.max.timeout.ms` (900000): the largest `transaction.timeout.ms` a
    /// transactional producer may ask for (INVALID_TRANSACTION_TIMEOUT above it).
    pub transaction_max_timeout_ms: i32,
    /// `transactional.id.expiration.ms` (604800000 = 7 days): a transactional id with no
    /// ongoing transaction whose state has not changed for this long is forgotten (checked
    /// on the retention timer); its producer then has to call InitProducerId again.
    pub transactional_id_expiration_ms: i64,
    /// BUGGIFY fault points (no Kafka property; off unless a simulation turns it on).
    pub buggify: crate::buggify::BuggifyConfig,
    /// Seed of the node's [`crate::rng::Rng`] (no Kafka property): the driver passes its
    /// runtime's seed (`Runtime::rng_seed`), so a simulation replays every draw.
    pub seed: u64,
    /// `min.insync.replicas` (1): acks=all produce needs this many in-sync replicas.
    pub min_insync_replicas: i32,
    /// `controller.quorum.voters` and the cluster settings; `None` runs a single node as a
    /// quorum of one (no controller listener, no peers).
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// The authorizer (`authorizer.class.name`, `super.users`,
    /// `allow.everyone.if.no.acl.found`, `weir.authorizer.audit.log`); off by default.
    pub authorizer: crate::acl::AuthorizerConfig,
    /// `weir.metadata.version.bootstrap`: the `metadata.version` a fresh cluster's first
    /// controller finalizes (the build's highest; a single node too). Level 1 writes no
    /// level record: the cluster then looks like one created by a build without levels.
    pub bootstrap_metadata_version: u16,
    /// Which of its broker's shards this node is (docs/sharding.md): it takes partition
    /// roles only for the partitions [`crate::shard::Shard::holds`]. [`Shard::ONLY`]
    /// (the default) holds every partition.
    ///
    /// [`Shard::ONLY`]: crate::shard::Shard::ONLY
    pub shard: crate::shard::Shard,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            node_id: 1,
            cluster_id: "weir-local-cluster".to_string(),
            advertised_host: "127.0.0.1".to_string(),
            advertised_port: 9092,
            log_dir: "data".to_string(),
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics: true,
            delete_topic_enable: true,
            message_max_bytes: 1_048_588,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            segment_bytes: 1 << 30,
            retention_check_interval_ms: 300_000,
            segment_ms: Self::SEGMENT_MS_DEFAULT,
            cleanup_policy: CleanupPolicy::DELETE,
            min_cleanable_dirty_ratio: DirtyRatio::DEFAULT,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            cleaner_enable: true,
            cleaner_backoff_ms: 15_000,
            cleaner_dedupe_buffer_bytes: 128 * 1024 * 1024,
            cleaner_io_buffer_bytes: 512 * 1024,
            cleaner_io_max_bytes_per_second: u64::MAX,
            remote_storage_enable: false,
            remote_log_task_interval_ms: 30_000,
            remote_copy_jobs_max: 2,
            remote_orphan_min_age_ms: 600_000,
            local_retention_ms: -2,
            local_retention_bytes: -2,
            durability: Durability::Fsync,
            flush_interval_ms: 1_000,
            fetch_max_bytes: 57_671_680,
            group_initial_rebalance_delay_ms: 3_000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_consumer_heartbeat_interval_ms: 5_000,
            group_consumer_session_timeout_ms: 45_000,
            offsets_topic_num_partitions: 50,
            transaction_state_log_num_partitions: 50,
            offsets_topic_segment_bytes: 104_857_600,
            transaction_state_log_segment_bytes: 104_857_600,
            producer_id_expiration_ms: 86_400_000,
            transaction_max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 604_800_000,
            buggify: crate::buggify::BuggifyConfig::OFF,
            seed: 0,
            min_insync_replicas: 1,
            cluster: None,
            authorizer: crate::acl::AuthorizerConfig::default(),
            bootstrap_metadata_version: crate::cluster::features::METADATA_VERSION_MAX,
            shard: crate::shard::Shard::ONLY,
        }
    }
}

/// A configuration value the node cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value {value} for {key}: {reason}")]
pub struct ConfigError {
    /// Kafka property name of the offending setting.
    pub key: &'static str,
    /// The value given.
    pub value: String,
    /// Why it is refused.
    pub reason: &'static str,
}

impl NodeConfig {
    /// Smallest segment Kafka accepts (`LegacyRecord.RECORD_OVERHEAD_V0`).
    pub const SEGMENT_BYTES_MIN: u64 = 14;
    /// Kafka's default `segment.ms` / `log.roll.hours`: 7 days.
    pub const SEGMENT_MS_DEFAULT: i64 = 168 * 3_600_000;
    /// `log.cleaner.dedupe.buffer.size` must exceed this: Kafka's 1 MiB per cleaner thread.
    pub const CLEANER_DEDUPE_BUFFER_BYTES_FLOOR: u64 = 1024 * 1024;

    /// Check every field against the range Kafka accepts (and the node can run with).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id < 0 {
            return Err(refuse("node.id", self.node_id, "must be >= 0"));
        }
        if self.cluster_id.is_empty() {
            return Err(refuse("cluster.id", "", "must not be empty"));
        }
        if self.num_partitions < 1 {
            return Err(refuse(
                "num.partitions",
                self.num_partitions,
                "must be >= 1",
            ));
        }
        if self.default_replication_factor < 1 {
            let value = self.default_replication_factor;
            return Err(refuse("default.replication.factor", value, "must be >= 1"));
        }
        if self.message_max_bytes < 0 {
            return Err(refuse(
                "message.max.bytes",
                self.message_max_bytes,
                "must be >= 0",
            ));
        }
        if self.retention_ms < -1 {
            return Err(refuse(
                "log.retention.ms",
                self.retention_ms,
                "must be >= -1",
            ));
        }
        if self.retention_bytes < -1 {
            return Err(refuse(
                "log.retention.bytes",
                self.retention_bytes,
                "must be >= -1",
            ));
        }
        if self.segment_bytes < Self::SEGMENT_BYTES_MIN {
            return Err(refuse(
                "log.segment.bytes",
                self.segment_bytes,
                "must be >= 14",
            ));
        }
        if self.retention_check_interval_ms == 0 {
            return Err(refuse("log.retention.check.interval.ms", 0, "must be >= 1"));
        }
        if self.flush_interval_ms == 0 {
            return Err(refuse("log.flush.interval.ms", 0, "must be >= 1"));
        }
        if self.group_min_session_timeout_ms < 1 {
            let value = self.group_min_session_timeout_ms;
            return Err(refuse(
                "group.min.session.timeout.ms",
                value,
                "must be >= 1",
            ));
        }
        if self.group_max_session_timeout_ms < self.group_min_session_timeout_ms {
            let value = self.group_max_session_timeout_ms;
            let reason = "must be >= group.min.session.timeout.ms";
            return Err(refuse("group.max.session.timeout.ms", value, reason));
        }
        if self.group_consumer_heartbeat_interval_ms < 1 {
            let value = self.group_consumer_heartbeat_interval_ms;
            return Err(refuse(
                "group.consumer.heartbeat.interval.ms",
                value,
                "must be >= 1",
            ));
        }
        if self.group_consumer_session_timeout_ms <= self.group_consumer_heartbeat_interval_ms {
            let value = self.group_consumer_session_timeout_ms;
            let reason = "must be > group.consumer.heartbeat.interval.ms";
            return Err(refuse("group.consumer.session.timeout.ms", value, reason));
        }
        if !(1..=1000).contains(&self.offsets_topic_num_partitions) {
            let value = self.offsets_topic_num_partitions;
            let reason = "must be in 1..=1000";
            return Err(refuse("offsets.topic.num.partitions", value, reason));
        }
        if !(1..=1000).contains(&self.transaction_state_log_num_partitions) {
            let value = self.transaction_state_log_num_partitions;
            let reason = "must be in 1..=1000";
            return Err(refuse(
                "transaction.state.log.num.partitions",
                value,
                reason,
            ));
        }
        if self.producer_id_expiration_ms < 1 {
            return Err(refuse(
                "producer.id.expiration.ms",
                self.producer_id_expiration_ms,
                "must be >= 1",
            ));
        }
        if self.transaction_max_timeout_ms < 1 {
            return Err(refuse(
                "transaction.max.timeout.ms",
                self.transaction_max_timeout_ms,
                "must be >= 1",
            ));
        }
        if self.transactional_id_expiration_ms < 1 {
            return Err(refuse(
                "transactional.id.expiration.ms",
                self.transactional_id_expiration_ms,
                "must be >= 1",
            ));
        }
        if self.fetch_max_bytes < 0 {
            return Err(refuse(
                "fetch.max.bytes",
                self.fetch_max_bytes,
                "must be >= 0",
            ));
        }
        self.validate_cleaner()
    }

    /// The log cleaner's and segment rolling's settings, with Kafka's ranges (deviations are
    /// on the fields' docs).
    fn validate_cleaner(&self) -> Result<(), ConfigError> {
        if self.segment_ms < 1 {
            return Err(refuse("log.roll.ms", self.segment_ms, "must be >= 1"));
        }
        if !self.cleanup_policy.delete && !self.cleanup_policy.compact {
            let reason = "must name delete, compact or both";
            return Err(refuse("log.cleanup.policy", "", reason));
        }
        if self.delete_retention_ms < 0 {
            let value = self.delete_retention_ms;
            return Err(refuse(
                "log.cleaner.delete.retention.ms",
                value,
                "must be >= 0",
            ));
        }
        if self.min_compaction_lag_ms < 0 {
            let value = self.min_compaction_lag_ms;
            return Err(refuse(
                "log.cleaner.min.compaction.lag.ms",
                value,
                "must be >= 0",
            ));
        }
        if self.max_compaction_lag_ms < 1 {
            let value = self.max_compaction_lag_ms;
            return Err(refuse(
                "log.cleaner.max.compaction.lag.ms",
                value,
                "must be >= 1",
            ));
        }
        // Kafka's LogConfig.validateValues, applied to the broker's defaults too.
        if self.min_compaction_lag_ms > self.max_compaction_lag_ms {
            let value = self.min_compaction_lag_ms;
            let reason = "must be <= log.cleaner.max.compaction.lag.ms";
            return Err(refuse("log.cleaner.min.compaction.lag.ms", value, reason));
        }
        if self.cleaner_backoff_ms == 0 {
            return Err(refuse("log.cleaner.backoff.ms", 0, "must be >= 1"));
        }
        if self.cleaner_dedupe_buffer_bytes <= Self::CLEANER_DEDUPE_BUFFER_BYTES_FLOOR {
            let value = self.cleaner_dedupe_buffer_bytes;
            let reason = "must be more than 1048576 (1 MiB)";
            return Err(refuse("log.cleaner.dedupe.buffer.size", value, reason));
        }
        if self.cleaner_io_buffer_bytes == 0 || self.cleaner_io_buffer_bytes > i32::MAX as u32 {
            let value = self.cleaner_io_buffer_bytes;
            let reason = "must be in 1..=2147483647";
            return Err(refuse("log.cleaner.io.buffer.size", value, reason));
        }
        if self.cleaner_io_max_bytes_per_second == 0 {
            let reason = "must be at least 1 byte per second";
            return Err(refuse("log.cleaner.io.max.bytes.per.second", 0, reason));
        }
        Ok(())
    }
}

/// A [`ConfigError`] for `key`.
fn refuse(key: &'static str, value: impl ToString, reason: &'static str) -> ConfigError {
    ConfigError {
        key,
        value: value.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the defaults are Kafka's and valid; a bad field is named in the error.
    // Method: validate the default, then break one field.
    #[test]
    fn defaults_validate_and_errors_name_the_key() {
        let config = NodeConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.message_max_bytes, 1_048_588);
        let broken = NodeConfig {
            segment_bytes: 3,
            ..NodeConfig::default()
        };
        let error = broken
            .validate()
            .expect_err("segment.bytes 3 is below the minimum");
        assert_eq!(error.key, "log.segment.bytes");
        assert!(error.to_string().contains("log.segment.bytes"));
    }

    // Goal: the cleaner's and rolling's defaults are Kafka's. Method: read each field of
    // the default config.
    #[test]
    fn cleaner_defaults_are_kafkas() {
        let config = NodeConfig::default();
        assert_eq!(config.cleanup_policy, CleanupPolicy::DELETE);
        assert_eq!(config.min_cleanable_dirty_ratio.get(), 0.5);
        assert_eq!(config.delete_retention_ms, 86_400_000);
        assert_eq!(config.min_compaction_lag_ms, 0);
        assert_eq!(config.max_compaction_lag_ms, i64::MAX);
        assert_eq!(config.segment_ms, 604_800_000);
        assert!(config.cleaner_enable);
        assert_eq!(config.cleaner_backoff_ms, 15_000);
        assert_eq!(config.cleaner_dedupe_buffer_bytes, 134_217_728);
        assert_eq!(config.cleaner_io_buffer_bytes, 524_288);
    }

    // Goal: each cleaner setting out of range is refused under its Kafka name, and the
    // edges Kafka accepts pass. Method: break one field per case; then the edges together.
    #[test]
    fn cleaner_settings_are_validated() {
        const NEITHER: CleanupPolicy = CleanupPolicy {
            delete: false,
            compact: false,
        };
        type Breakage = fn(&mut NodeConfig);
        let cases: [(Breakage, &str); 9] = [
            (|c| c.segment_ms = 0, "log.roll.ms"),
            (|c| c.cleanup_policy = NEITHER, "log.cleanup.policy"),
            (
                |c| c.delete_retention_ms = -1,
                "log.cleaner.delete.retention.ms",
            ),
            (
                |c| c.min_compaction_lag_ms = -1,
                "log.cleaner.min.compaction.lag.ms",
            ),
            (
                |c| c.max_compaction_lag_ms = 0,
                "log.cleaner.max.compaction.lag.ms",
            ),
            (|c| c.cleaner_backoff_ms = 0, "log.cleaner.backoff.ms"),
            (
                |c| c.cleaner_dedupe_buffer_bytes = 1024 * 1024,
                "log.cleaner.dedupe.buffer.size",
            ),
            (
                |c| c.cleaner_io_buffer_bytes = 0,
                "log.cleaner.io.buffer.size",
            ),
            (
                |c| {
                    c.min_compaction_lag_ms = 10;
                    c.max_compaction_lag_ms = 9;
                },
                "log.cleaner.min.compaction.lag.ms",
            ),
        ];
        for (breakage, key) in cases {
            let mut config = NodeConfig::default();
            breakage(&mut config);
            let error = config.validate().expect_err(key);
            assert_eq!(error.key, key);
        }
        let edges = NodeConfig {
            segment_ms: 1,
            cleanup_policy: CleanupPolicy::COMPACT,
            min_cleanable_dirty_ratio: DirtyRatio::new(1.0).expect("in range"),
            delete_retention_ms: 0,
            min_compaction_lag_ms: 1,
            max_compaction_lag_ms: 1,
            cleaner_backoff_ms: 1,
            cleaner_dedupe_buffer_bytes: 1024 * 1024 + 1,
            cleaner_io_buffer_bytes: 1,
            ..NodeConfig::default()
        };
        assert_eq!(edges.validate(), Ok(()));
    }

    // Goal: Kafka's cleanup.policy lists parse, in either order and with spaces, and print
    // canonically; every malformed list gets its own error. Method: table of inputs.
    #[test]
    fn cleanup_policy_lists() {
        let parsed = [
            ("delete", CleanupPolicy::DELETE),
            ("compact", CleanupPolicy::COMPACT),
            ("compact,delete", CleanupPolicy::COMPACT_DELETE),
            (" delete ,compact", CleanupPolicy::COMPACT_DELETE),
        ];
        for (text, policy) in parsed {
            assert_eq!(CleanupPolicy::parse_list(text), Ok(policy), "{text:?}");
            let canonical = policy.to_string();
            assert_eq!(CleanupPolicy::parse_list(&canonical), Ok(policy));
        }
        assert_eq!(CleanupPolicy::COMPACT_DELETE.to_string(), "compact,delete");
        use CleanupPolicyError::{Duplicate, Empty, EmptyItem, Unknown};
        let refused = [
            ("", Empty),
            (" ", Empty),
            (",", EmptyItem),
            ("compact, ,delete", EmptyItem),
            ("COMPACT", Unknown("COMPACT".into())),
            ("delete,retain", Unknown("retain".into())),
            ("compact,compact", Duplicate("compact".into())),
        ];
        for (text, error) in refused {
            assert_eq!(CleanupPolicy::parse_list(text), Err(error), "{text:?}");
        }
    }

    // Goal: a DirtyRatio holds only finite numbers in 0..=1, stores -0 as 0, and prints as
    // Java prints doubles. Method: accepted and refused values, then Display.
    #[test]
    fn dirty_ratio_range_and_display() {
        for value in [0.0, 0.5, 1.0] {
            let ratio = DirtyRatio::new(value).expect("in range");
            assert_eq!(ratio.get(), value);
        }
        for value in [-0.01, 1.000_001, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(DirtyRatio::new(value), None, "{value}");
        }
        let negative_zero = DirtyRatio::new(-0.0).expect("-0 is 0");
        assert!(negative_zero.get().is_sign_positive());
        assert_eq!(negative_zero.to_string(), "0.0");
        assert_eq!(DirtyRatio::DEFAULT.to_string(), "0.5");
        assert_eq!(
            DirtyRatio::new(1.0).map(|r| r.to_string()),
            Some("1.0".into())
        );
    }
}
