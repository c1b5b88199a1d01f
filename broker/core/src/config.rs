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
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            node_id: 1,
            cluster_id: "weir-local-cluster".to_string(),
            advertised_host: "127.0.0.1".to_string(),
            advertised_port: 9092,
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics: true,
            delete_topic_enable: true,
            message_max_bytes: 1_048_588,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            segment_bytes: 1 << 30,
            retention_check_interval_ms: 300_000,
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
            producer_id_expiration_ms: 86_400_000,
            transaction_max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 604_800_000,
            buggify: crate::buggify::BuggifyConfig::OFF,
            seed: 0,
            min_insync_replicas: 1,
            cluster: None,
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

    /// Check every field against the range Kafka accepts (and the node can run with).
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn refuse(key: &'static str, value: impl ToString, reason: &'static str) -> ConfigError {
            ConfigError {
                key,
                value: value.to_string(),
                reason,
            }
        }
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
        Ok(())
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
}
