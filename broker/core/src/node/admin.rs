//! Topic administration shared by the controller and every broker: Kafka's checks of a
//! CreateTopics/CreatePartitions entry (the controller validates, `cluster_api.rs` turns
//! it into metadata records), and the local catalog a broker keeps of the topics the
//! metadata image holds (create, grow, delete, persist).
//!
//! Invariants: a change is answered only once its metadata writes are durable; names and
//! ids are never reused while a topic holds them; partition keys are never reused at all.
//! Write order (see `meta`): a topic record is written after the counters it consumed and
//! deleted before its partitions' data.

use uuid::Uuid;
use weir_wire::domain::{CreatableTopic, CreatableTopicConfig, CreatableTopicResult};
use weir_wire::error::ErrorCode;

use super::{Node, Topic, PARTITIONS_MAX, TOPICS_MAX};
use crate::meta::{self, TopicRecord};
use crate::partition::PartitionLog;
use crate::storage::StorageOp;
use crate::topic::PartitionId;
use crate::topic::{derive_topic_id, validate_topic_name};
use crate::topic_config::TopicConfig;

/// A refusal: Kafka's error code and message.
pub(super) type Refusal = (ErrorCode, String);

/// A validated topic to create.
pub(super) struct TopicSpec {
    pub partitions: i32,
    pub replication_factor: i16,
    pub config: TopicConfig,
}

/// Bound on draws when a derived topic id collides with a live topic's.
const TOPIC_ID_COLLISIONS_MAX: u64 = 16;

impl Node {
    /// Kafka's CreateTopics checks, in Kafka's order.
    pub(super) fn validate_creatable(&self, topic: &CreatableTopic) -> Result<TopicSpec, Refusal> {
        self.check_room_for_changes()?;
        validate_topic_name(&topic.name).map_err(|e| (ErrorCode::INVALID_TOPIC_EXCEPTION, e.0))?;
        if self.topic_ids.contains_key(&topic.name) {
            return Err((
                ErrorCode::TOPIC_ALREADY_EXISTS,
                format!("Topic '{}' already exists.", topic.name),
            ));
        }
        // Either counts or a manual assignment, never both (Kafka's rule).
        let (partitions, replication_factor) = if topic.assignments.is_empty() {
            (
                self.resolve_partition_count(topic.num_partitions)?,
                self.resolve_replication(topic.replication_factor)?,
            )
        } else {
            if topic.num_partitions != -1 || topic.replication_factor != -1 {
                let message =
                    "Both numPartitions or replicationFactor and replicasAssignments were set. \
                               Both cannot be used at the same time.";
                return Err((ErrorCode::INVALID_REQUEST, message.into()));
            }
            self.check_assignments(topic.assignments.iter().map(|(p, r)| (*p, r.as_slice())), 0)?
        };
        // Limits last: a request that is wrong anyway gets the more useful error.
        self.check_partition_room(i64::from(partitions))?;
        if self.topics.len() >= TOPICS_MAX {
            return Err((
                ErrorCode::POLICY_VIOLATION,
                format!("the node holds {TOPICS_MAX} topics already"),
            ));
        }
        // Configs are validated whole before anything is created: a topic never exists with a
        // config it was refused.
        let pairs = topic
            .configs
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_deref()));
        let config = TopicConfig::from_overrides(pairs)
            .map_err(|e| (ErrorCode::INVALID_CONFIG, e.message))?;
        // Overrides must also agree with the broker's defaults they leave in force.
        (config.check_against(&self.config)).map_err(|e| (ErrorCode::INVALID_CONFIG, e.message))?;
        Ok(TopicSpec {
            partitions,
            replication_factor,
            config,
        })
    }

    /// Requests that change metadata park their answer: refuse before changing anything
    /// when no room is left to park it.
    pub(super) fn check_room_for_changes(&self) -> Result<(), Refusal> {
        if self.sync_waiters.is_full() {
            return Err((
                ErrorCode::REQUEST_TIMED_OUT,
                "broker overloaded, retry later".into(),
            ));
        }
        Ok(())
    }

    /// -1 means the broker default; anything else must be positive.
    pub(super) fn resolve_partition_count(&self, requested: i32) -> Result<i32, Refusal> {
        match requested {
            -1 => Ok(self.config.num_partitions),
            count if count <= 0 => Err((
                ErrorCode::INVALID_PARTITIONS,
                "Number of partitions must be larger than 0.".into(),
            )),
            count => Ok(count),
        }
    }

    /// -1 means the broker default; the factor must not exceed the registered brokers.
    pub(super) fn resolve_replication(&self, requested: i16) -> Result<i16, Refusal> {
        let factor = if requested == -1 {
            self.config.default_replication_factor
        } else {
            requested
        };
        if factor <= 0 {
            return Err((
                ErrorCode::INVALID_REPLICATION_FACTOR,
                "Replication factor must be larger than 0.".into(),
            ));
        }
        let live = self.cluster.meta.image.live_brokers().len();
        if usize::try_from(factor).unwrap_or(usize::MAX) > live {
            let message = format!(
                "Unable to replicate the partition {factor} time(s): The target replication \
                 factor of {factor} cannot be reached because only {live} broker(s) are \
                 registered."
            );
            return Err((ErrorCode::INVALID_REPLICATION_FACTOR, message));
        }
        Ok(factor)
    }

    /// Manual assignments: partitions `first..` in order, each on distinct registered
    /// brokers. Returns the partition count and the replication factor of the first.
    fn check_assignments<'a>(
        &self,
        assignments: impl Iterator<Item = (i32, &'a [i32])>,
        first: i32,
    ) -> Result<(i32, i16), Refusal> {
        let mut count = 0;
        for (partition, replicas) in assignments {
            if partition != first + count {
                let message = format!(
                    "Partitions should be a consecutive 0-based integer sequence, got {partition}"
                );
                return Err((ErrorCode::INVALID_REPLICA_ASSIGNMENT, message));
            }
            let mut distinct = replicas.to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            let known = (replicas.iter()).all(|r| self.cluster.meta.image.brokers.contains_key(r));
            if replicas.is_empty() || distinct.len() != replicas.len() || !known {
                let message = format!("Replica assignment {replicas:?} is invalid");
                return Err((ErrorCode::INVALID_REPLICA_ASSIGNMENT, message));
            }
            count += 1;
        }
        Ok((count, 1))
    }

    /// PARTITIONS_MAX bounds the catalog (and recovery time); refuse growth beyond it.
    fn check_partition_room(&self, added: i64) -> Result<(), Refusal> {
        let total = self.partition_count as i64 + added;
        if total > PARTITIONS_MAX as i64 {
            let message = format!("the node would hold {total} partitions, above {PARTITIONS_MAX}");
            return Err((ErrorCode::INVALID_PARTITIONS, message));
        }
        Ok(())
    }

    /// Create a topic with a given id (the one the metadata log holds) or
    /// a fresh one.
    pub(super) fn create_topic_with_id(
        &mut self,
        name: &str,
        partitions: i32,
        config: TopicConfig,
        given_id: Option<Uuid>,
    ) -> Uuid {
        let mut topic_id = given_id.unwrap_or(Uuid::nil());
        // Ids are derived from a counter, so after a crash that lost the counter's last write an
        // id may be drawn again; skip any that a live topic holds.
        for _ in 0..TOPIC_ID_COLLISIONS_MAX {
            if given_id.is_some() {
                break;
            }
            topic_id = derive_topic_id(
                &self.config.cluster_id,
                self.config.node_id,
                self.next_topic_seq,
            );
            self.next_topic_seq += 1;
            if !self.topics.contains_key(&topic_id) {
                break;
            }
        }
        assert!(
            !self.topics.contains_key(&topic_id),
            "topic id {topic_id} collides repeatedly"
        );
        let count = usize::try_from(partitions).expect("validated partition count is positive");
        let logs: Vec<PartitionLog> = (0..count)
            .map(|_| PartitionLog::new(self.allocate_partition_key()))
            .collect();
        let topic = Topic {
            name: name.to_string(),
            id: topic_id,
            config,
            partitions: logs,
        };
        // Counters before the record that uses them (see `meta`): a durable record implies durable
        // counters, so no id or key is ever handed out twice.
        self.emit(StorageOp::PutMeta {
            key: meta::NEXT_TOPIC_SEQ.to_vec(),
            value: meta::encode(&self.next_topic_seq),
        });
        self.persist_topic(&topic);
        self.partition_count += count;
        self.topic_ids.insert(name.to_string(), topic_id);
        self.topics.insert(topic_id, topic);
        topic_id
    }

    /// Add empty partitions up to `count` and persist the topic record.
    pub(super) fn grow_topic(&mut self, topic_id: Uuid, count: i32) {
        let Some(current) = self.topics.get(&topic_id).map(|t| t.partitions.len()) else {
            return;
        };
        let target = usize::try_from(count).expect("validated partition count is positive");
        let added: Vec<PartitionLog> = (current..target)
            .map(|_| PartitionLog::new(self.allocate_partition_key()))
            .collect();
        self.partition_count += added.len();
        let topic = self
            .topics
            .get_mut(&topic_id)
            .expect("validated topic exists");
        topic.partitions.extend(added);
        // The record lists every partition key, so it is rewritten whole.
        let topic = topic.clone();
        self.persist_topic(&topic);
    }

    /// Remove a topic from the catalog and storage; returns it.
    pub(super) fn delete_topic(&mut self, topic_id: Uuid) -> Topic {
        let topic = self
            .topics
            .remove(&topic_id)
            .expect("resolved topic exists");
        self.topic_ids.remove(&topic.name);
        self.partition_count -= topic.partitions.len();
        // The topic record goes first: a crash midway leaves orphans, not a broken topic.
        self.emit(StorageOp::DeleteMeta {
            key: meta::topic_key(topic_id),
        });
        // Segment keys are deleted one by one: the meta map has no range delete, and a topic
        // has few segments per partition (segment.bytes is large).
        for (index, log) in topic.partitions.iter().enumerate() {
            let partition_key = log.partition_key();
            self.emit(StorageOp::DropPartition { partition_key });
            self.emit(StorageOp::DeleteMeta {
                key: meta::log_start_key(partition_key),
            });
            self.emit(StorageOp::DeleteMeta {
                key: meta::producers_key(partition_key),
            });
            self.emit(StorageOp::DeleteMeta {
                key: meta::cleaned_key(partition_key),
            });
            let bases: Vec<i64> = log.segments().map(|s| s.base_offset).collect();
            for base_offset in bases {
                self.emit(StorageOp::DeleteMeta {
                    key: meta::segment_key(partition_key, base_offset),
                });
            }
            self.unsynced_partitions
                .remove(&PartitionId::new(topic_id, index));
        }
        topic
    }

    /// A never-used partition key, persisted before use. Keys are never reused, so a stale
    /// read plan or a half-deleted log can never meet a new partition's data.
    fn allocate_partition_key(&mut self) -> u64 {
        let key = self.next_partition_key;
        self.next_partition_key += 1;
        self.emit(StorageOp::PutMeta {
            key: meta::NEXT_PARTITION_KEY.to_vec(),
            value: meta::encode(&self.next_partition_key),
        });
        key
    }

    /// Write the topic record (name, id, overrides, partition keys) to meta.
    pub(super) fn persist_topic(&mut self, topic: &Topic) {
        let record = TopicRecord {
            name: topic.name.clone(),
            id: topic.id.hyphenated().to_string(),
            configs: topic.config.overrides(),
            partition_keys: topic
                .partitions
                .iter()
                .map(PartitionLog::partition_key)
                .collect(),
        };
        self.emit(StorageOp::PutMeta {
            key: meta::topic_key(topic.id),
            value: meta::encode(&record),
        });
    }

    /// A successful CreateTopics result with the topic's resolved configs (v5+ carries them).
    pub(super) fn creatable_success(
        &self,
        name: &str,
        topic_id: Uuid,
        spec: &TopicSpec,
    ) -> CreatableTopicResult {
        let configs = self
            .describe_topic_config(&spec.config)
            .into_iter()
            .map(|entry| CreatableTopicConfig {
                name: entry.name,
                value: entry.value,
                read_only: entry.read_only,
                config_source: entry.config_source,
                is_sensitive: entry.is_sensitive,
            })
            .collect();
        CreatableTopicResult {
            name: name.to_string(),
            topic_id,
            error: ErrorCode::NONE,
            error_message: None,
            num_partitions: spec.partitions,
            replication_factor: spec.replication_factor,
            configs,
        }
    }
}

/// A refused CreateTopics entry.
pub(super) fn creatable_error(
    name: &str,
    error: ErrorCode,
    message: String,
) -> CreatableTopicResult {
    CreatableTopicResult {
        name: name.to_string(),
        topic_id: Uuid::nil(),
        error,
        error_message: Some(message),
        num_partitions: -1,
        replication_factor: -1,
        configs: Vec::new(),
    }
}
