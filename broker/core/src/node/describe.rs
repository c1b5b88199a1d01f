//! Read-mostly cluster APIs: Metadata (with auto-create), DescribeConfigs, DescribeCluster.
//!
//! Topics and brokers come from the metadata image (a single node's one-voter quorum
//! included). Without an authorizer every operation is allowed, which is what the
//! authorized-operations bit sets say when asked.

use uuid::Uuid;
use weir_wire::domain::{
    config_source, resource_type, ApiResponse, DescribeClusterRequest, DescribeClusterResponse,
    DescribeConfigsEntry, DescribeConfigsRequest, DescribeConfigsResource, DescribeConfigsResponse,
    DescribeConfigsResult, MetadataRequest, MetadataResponse, MetadataTopic, TopicRef,
};
use weir_wire::error::ErrorCode;

use super::Node;
use crate::config::{Durability, NodeConfig};
use crate::event::RequestId;
use crate::topic::{is_internal_topic, validate_topic_name};
use crate::topic_config::{config_type, TopicConfig};

/// Kafka's "authorized operations not requested" marker.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;
/// Topic ACL operations (READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8,
/// DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11) as Kafka's bit set.
const TOPIC_OPERATIONS_ALL: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// Cluster ACL operations (CREATE 5, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9,
/// DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12) as Kafka's bit set.
const CLUSTER_OPERATIONS_ALL: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

/// The read-only DescribeConfigs key of a compacted topic's dirty ratio on the answering
/// broker (Weir's; answered only when asked for by name).
pub const DIRTY_RATIO_KEY: &str = "weir.log.cleaner.dirty.ratio";

impl Node {
    /// Metadata: all topics (`None`) or the named ones, auto-creating unknown names when both
    /// the request and `auto.create.topics.enable` allow it.
    pub(super) fn metadata(&mut self, id: RequestId, request: MetadataRequest) {
        let topic_ops = operations(
            request.include_topic_authorized_operations,
            TOPIC_OPERATIONS_ALL,
        );
        let topics = match &request.topics {
            None => self.cluster_topic_ids(),
            Some(_) => Vec::new(),
        };
        let mut described: Vec<MetadataTopic> = topics
            .iter()
            .filter_map(|id| self.describe_topic(*id, topic_ops))
            .collect();
        // All-topics listings are sorted by name, as Kafka's are.
        described.sort_by(|a, b| a.name.cmp(&b.name));
        for topic in request.topics.iter().flatten() {
            let answer = match topic {
                TopicRef::Name(name) => {
                    let auto_create =
                        request.allow_auto_topic_creation && self.config.auto_create_topics;
                    self.metadata_by_name(name, auto_create, topic_ops)
                }
                // Ids cannot be auto-created: an unknown id is just unknown.
                TopicRef::Id(topic_id) => self
                    .describe_topic(*topic_id, topic_ops)
                    .unwrap_or_else(|| metadata_error(None, ErrorCode::UNKNOWN_TOPIC_ID)),
            };
            described.push(answer);
        }
        let (brokers, controller_id) = self.metadata_brokers();
        let response = MetadataResponse {
            throttle_time_ms: 0,
            brokers,
            cluster_id: Some(self.config.cluster_id.clone()),
            controller_id,
            topics: described,
            cluster_authorized_operations: operations(
                request.include_cluster_authorized_operations,
                CLUSTER_OPERATIONS_ALL,
            ),
        };
        self.respond(id, ApiResponse::Metadata(response));
    }

    /// Describe one named topic; an unknown one the request may auto-create was asked of
    /// the controller (and the request held until it exists, see `hold_request`), so it is
    /// LEADER_NOT_AVAILABLE only when that wait ran out.
    fn metadata_by_name(&mut self, name: &str, auto_create: bool, topic_ops: i32) -> MetadataTopic {
        let name_owned = Some(name.to_string());
        if let Some(&id) = self.cluster.meta.image.names.get(name) {
            if let Some(topic) = self.describe_topic(Uuid::from_u128(id), topic_ops) {
                return topic;
            }
        }
        // Checked before auto-creation so a typo like `a/b` is reported, not created.
        if validate_topic_name(name).is_err() {
            return metadata_error(name_owned, ErrorCode::INVALID_TOPIC_EXCEPTION);
        }
        if !auto_create || is_internal_topic(name) {
            return metadata_error(name_owned, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
        }
        self.cluster_auto_create(name);
        metadata_error(name_owned, ErrorCode::LEADER_NOT_AVAILABLE)
    }

    /// A topic as Metadata describes it, from the metadata image.
    fn describe_topic(&self, topic_id: Uuid, topic_ops: i32) -> Option<MetadataTopic> {
        self.cluster_describe_topic(topic_id, topic_ops)
    }

    /// DescribeConfigs for topics and this broker.
    pub(super) fn describe_configs(
        &mut self,
        now: crate::time::Now,
        id: RequestId,
        request: DescribeConfigsRequest,
    ) {
        let results = request
            .resources
            .iter()
            .map(|resource| self.describe_resource(now, resource))
            .collect();
        let response = DescribeConfigsResponse {
            throttle_time_ms: 0,
            results,
        };
        self.respond(id, ApiResponse::DescribeConfigs(response));
    }

    /// One resource's configs, filtered to the requested keys (unknown keys are omitted, as
    /// Kafka does). Asked for by name only, a topic also answers [`DIRTY_RATIO_KEY`]: a
    /// read-only Weir figure (what `weir topic describe` prints), never listed among all
    /// configs, so Kafka tools see exactly Kafka's set.
    fn describe_resource(
        &self,
        now: crate::time::Now,
        resource: &DescribeConfigsResource,
    ) -> DescribeConfigsResult {
        let mut result = DescribeConfigsResult {
            error: ErrorCode::NONE,
            error_message: None,
            resource_type: resource.resource_type,
            resource_name: resource.resource_name.clone(),
            configs: Vec::new(),
        };
        let entries = match resource.resource_type {
            resource_type::TOPIC => match self.topic_by_name(&resource.resource_name) {
                Some(topic) => {
                    let mut entries = self.describe_topic_config(&topic.config);
                    let asked = (resource.configuration_keys.as_ref())
                        .is_some_and(|keys| keys.iter().any(|k| k == DIRTY_RATIO_KEY));
                    if asked {
                        entries.extend(self.dirty_ratio_entry(now, topic));
                    }
                    Ok(entries)
                }
                None => Err((
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("Topic '{}' does not exist.", resource.resource_name),
                )),
            },
            resource_type::BROKER => {
                // An empty name asks for cluster-wide defaults, which on one node are this node's.
                let own = resource.resource_name.is_empty()
                    || resource.resource_name == self.config.node_id.to_string();
                if own {
                    Ok(broker_entries(&self.config))
                } else {
                    let message = format!(
                        "Unexpected broker id, expected {} or empty string, but received {}",
                        self.config.node_id, resource.resource_name
                    );
                    Err((ErrorCode::INVALID_REQUEST, message))
                }
            }
            other => Err((
                ErrorCode::INVALID_REQUEST,
                format!("Unsupported resource type {other}"),
            )),
        };
        match entries {
            Ok(mut entries) => {
                if let Some(keys) = &resource.configuration_keys {
                    entries.retain(|entry| keys.contains(&entry.name));
                }
                result.configs = entries;
            }
            Err((error, message)) => {
                result.error = error;
                result.error_message = Some(message);
            }
        }
        result
    }

    /// A topic's configs as DescribeConfigs entries (CreateTopics reports the same).
    /// The largest dirty ratio among `topic`'s partitions on this broker (each replica
    /// cleans its own log), `None` for a topic that is not compacted.
    fn dirty_ratio_entry(
        &self,
        now: crate::time::Now,
        topic: &super::Topic,
    ) -> Option<DescribeConfigsEntry> {
        if !self.compacts(topic) {
            return None;
        }
        let min_lag_ms = topic.config.min_compaction_lag_ms(&self.config);
        let ratio = (topic.partitions.iter().enumerate())
            .map(|(index, log)| {
                let key = crate::topic::PartitionId::new(topic.id, index);
                super::compact::dirty_ratio(key, log, now.wall_ms, min_lag_ms)
            })
            .fold(0.0_f64, f64::max);
        Some(DescribeConfigsEntry {
            name: DIRTY_RATIO_KEY.to_string(),
            value: Some(format!("{ratio:.3}")),
            read_only: true,
            config_source: config_source::DYNAMIC_TOPIC_CONFIG,
            is_sensitive: false,
            config_type: config_type::DOUBLE,
            documentation: None,
        })
    }

    pub(super) fn describe_topic_config(&self, config: &TopicConfig) -> Vec<DescribeConfigsEntry> {
        config
            .describe(&self.config)
            .into_iter()
            .map(|entry| DescribeConfigsEntry {
                name: entry.name.to_string(),
                value: Some(entry.value),
                read_only: false,
                config_source: if entry.is_default {
                    config_source::DEFAULT_CONFIG
                } else {
                    config_source::DYNAMIC_TOPIC_CONFIG
                },
                is_sensitive: false,
                config_type: entry.config_type,
                documentation: None,
            })
            .collect()
    }

    /// DescribeCluster (kafka-python's admin client): this node is the cluster and its
    /// controller.
    pub(super) fn describe_cluster(&mut self, id: RequestId, request: DescribeClusterRequest) {
        let response = DescribeClusterResponse {
            throttle_time_ms: 0,
            error: ErrorCode::NONE,
            error_message: None,
            endpoint_type: request.endpoint_type,
            cluster_id: self.config.cluster_id.clone(),
            controller_id: self.cluster_brokers().1,
            brokers: self.cluster_brokers().0,
            cluster_authorized_operations: operations(
                request.include_cluster_authorized_operations,
                CLUSTER_OPERATIONS_ALL,
            ),
        };
        self.respond(id, ApiResponse::DescribeCluster(response));
    }
}

/// Authorized operations as Kafka encodes them: the bit set when asked, i32::MIN when not.
fn operations(requested: bool, all: i32) -> i32 {
    if requested {
        all
    } else {
        OPERATIONS_NOT_REQUESTED
    }
}

/// A topic that could not be described.
fn metadata_error(name: Option<String>, error: ErrorCode) -> MetadataTopic {
    MetadataTopic {
        error,
        name,
        topic_id: Uuid::nil(),
        is_internal: false,
        partitions: Vec::new(),
        topic_authorized_operations: OPERATIONS_NOT_REQUESTED,
    }
}

/// The node's static configs under their Kafka names; read-only (no dynamic configs yet).
/// A value equal to Weir's default is reported as DEFAULT_CONFIG, otherwise as
/// STATIC_BROKER_CONFIG (it came from the config file or a flag).
fn broker_entries(config: &NodeConfig) -> Vec<DescribeConfigsEntry> {
    let defaults = broker_values(&NodeConfig::default());
    broker_values(config)
        .into_iter()
        .zip(defaults)
        .map(
            |((name, value, config_type), (_, default, _))| DescribeConfigsEntry {
                name: name.to_string(),
                config_source: if value == default {
                    config_source::DEFAULT_CONFIG
                } else {
                    config_source::STATIC_BROKER_CONFIG
                },
                value: Some(value),
                read_only: true,
                is_sensitive: false,
                config_type,
                documentation: None,
            },
        )
        .collect()
}

/// `(Kafka property, value, ConfigType)` of every broker config, sorted by name.
fn broker_values(config: &NodeConfig) -> Vec<(&'static str, String, i8)> {
    use config_type::{BOOLEAN, DOUBLE, INT, LIST, LONG, STRING};
    let durability = match config.durability {
        Durability::Fsync => "fsync",
        Durability::Os => "os",
    };
    let listener = format!(
        "PLAINTEXT://{}:{}",
        config.advertised_host, config.advertised_port
    );
    vec![
        ("advertised.listeners", listener, LIST),
        (
            "auto.create.topics.enable",
            config.auto_create_topics.to_string(),
            BOOLEAN,
        ),
        ("broker.id", config.node_id.to_string(), INT),
        (
            "default.replication.factor",
            config.default_replication_factor.to_string(),
            INT,
        ),
        (
            "delete.topic.enable",
            config.delete_topic_enable.to_string(),
            BOOLEAN,
        ),
        ("fetch.max.bytes", config.fetch_max_bytes.to_string(), INT),
        (
            "log.cleaner.backoff.ms",
            config.cleaner_backoff_ms.to_string(),
            LONG,
        ),
        (
            "log.cleaner.dedupe.buffer.size",
            config.cleaner_dedupe_buffer_bytes.to_string(),
            LONG,
        ),
        (
            "log.cleaner.delete.retention.ms",
            config.delete_retention_ms.to_string(),
            LONG,
        ),
        (
            "log.cleaner.enable",
            config.cleaner_enable.to_string(),
            BOOLEAN,
        ),
        (
            "log.cleaner.io.max.bytes.per.second",
            // Java's Double.toString, as Kafka describes its default (Double.MAX_VALUE).
            if config.cleaner_io_max_bytes_per_second == u64::MAX {
                "1.7976931348623157E308".to_owned()
            } else {
                config.cleaner_io_max_bytes_per_second.to_string()
            },
            DOUBLE,
        ),
        (
            "log.cleaner.max.compaction.lag.ms",
            config.max_compaction_lag_ms.to_string(),
            LONG,
        ),
        (
            "log.cleaner.min.cleanable.ratio",
            config.min_cleanable_dirty_ratio.get().to_string(),
            DOUBLE,
        ),
        (
            "log.cleaner.min.compaction.lag.ms",
            config.min_compaction_lag_ms.to_string(),
            LONG,
        ),
        (
            "log.cleanup.policy",
            config.cleanup_policy.as_list().to_string(),
            LIST,
        ),
        (
            "log.flush.interval.ms",
            config.flush_interval_ms.to_string(),
            LONG,
        ),
        (
            "log.retention.bytes",
            config.retention_bytes.to_string(),
            LONG,
        ),
        (
            "log.retention.check.interval.ms",
            config.retention_check_interval_ms.to_string(),
            LONG,
        ),
        ("log.retention.ms", config.retention_ms.to_string(), LONG),
        ("log.roll.ms", config.segment_ms.to_string(), LONG),
        ("log.segment.bytes", config.segment_bytes.to_string(), LONG),
        (
            "message.max.bytes",
            config.message_max_bytes.to_string(),
            INT,
        ),
        ("node.id", config.node_id.to_string(), INT),
        ("num.partitions", config.num_partitions.to_string(), INT),
        ("weir.durability", durability.to_string(), STRING),
    ]
}
