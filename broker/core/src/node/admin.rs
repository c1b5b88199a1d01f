//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions, and the topic
//! creation Metadata's auto-create shares.
//!
//! Invariants: a change is answered only once its metadata writes are durable; names and
//! ids are never reused while a topic holds them; partition keys are never reused at all.
//! Write order (see `meta`): a topic record is written after the counters it consumed and
//! deleted before its partitions' data.

use std::collections::BTreeMap;

use uuid::Uuid;
use weir_wire::domain::{
    ApiResponse, CreatableTopic, CreatableTopicConfig, CreatableTopicResult,
    CreatePartitionsRequest, CreatePartitionsResponse, CreatePartitionsTopic,
    CreatePartitionsTopicResult, CreateTopicsRequest, CreateTopicsResponse, DeletableTopicResult,
    DeleteTopicsRequest, DeleteTopicsResponse, TopicRef,
};
use weir_wire::error::ErrorCode;

use super::{Node, Topic, PARTITIONS_MAX, TOPICS_MAX};
use crate::event::RequestId;
use crate::meta::{self, TopicRecord};
use crate::partition::PartitionLog;
use crate::storage::StorageOp;
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
    /// CreateTopics: each topic is validated and created on its own (Kafka answers per topic,
    /// so one bad topic does not fail the others); the answer waits for the metadata sync.
    pub(super) fn create_topics(&mut self, id: RequestId, request: CreateTopicsRequest) {
        let duplicates = duplicate_names(request.topics.iter().map(|t| t.name.as_str()));
        let mut changed = false;
        let mut results = Vec::with_capacity(request.topics.len());
        // Kafka refuses every occurrence of a name listed twice, not just the second one.
        for topic in &request.topics {
            let spec = if duplicates.contains_key(topic.name.as_str()) {
                Err((
                    ErrorCode::INVALID_REQUEST,
                    format!("Duplicate topic name: {}", topic.name),
                ))
            } else {
                self.validate_creatable(topic)
            };
            let result = match spec {
                Err((error, message)) => creatable_error(&topic.name, error, message),
                Ok(spec) => {
                    // validate_only reports what would be created, with a nil id: nothing
                    // is allocated.
                    let topic_id = if request.validate_only {
                        Uuid::nil()
                    } else {
                        changed = true;
                        self.create_topic(&topic.name, spec.partitions, spec.config.clone())
                    };
                    self.creatable_success(&topic.name, topic_id, &spec)
                }
            };
            results.push(result);
        }
        let response = ApiResponse::CreateTopics(CreateTopicsResponse {
            throttle_time_ms: 0,
            topics: results,
        });
        self.respond_after_writes(id, response, changed);
    }

    /// DeleteTopics, by name or id. The data goes at once (DropPartition); the answer waits
    /// for the sync so a crash cannot resurrect a topic whose deletion was acknowledged.
    pub(super) fn delete_topics(&mut self, id: RequestId, request: DeleteTopicsRequest) {
        let mut changed = false;
        let mut results = Vec::with_capacity(request.topics.len());
        for topic in &request.topics {
            let (name, topic_id) = match topic {
                TopicRef::Name(name) => (Some(name.clone()), Uuid::nil()),
                TopicRef::Id(topic_id) => (None, *topic_id),
            };
            let mut result = DeletableTopicResult {
                name,
                topic_id,
                error: ErrorCode::NONE,
                error_message: None,
            };
            // Checked per topic so each result carries the reason, as Kafka's do.
            if let Err((error, message)) = self.check_room_for_changes() {
                result.error = error;
                result.error_message = Some(message);
            } else if !self.config.delete_topic_enable {
                result.error = ErrorCode::TOPIC_DELETION_DISABLED;
                result.error_message =
                    Some("Topic deletion is disabled (delete.topic.enable=false)".into());
            } else {
                match self.resolve_topic(topic) {
                    Ok(resolved) => {
                        let deleted = self.delete_topic(resolved);
                        result.name = Some(deleted.name);
                        result.topic_id = deleted.id;
                        changed = true;
                    }
                    Err(error) => result.error = error,
                }
            }
            results.push(result);
        }
        if changed {
            // Fetches parked on deleted partitions now resolve to errors: answer them.
            self.wake_fetches(|_| true);
        }
        let response = ApiResponse::DeleteTopics(DeleteTopicsResponse {
            throttle_time_ms: 0,
            responses: results,
        });
        self.respond_after_writes(id, response, changed);
    }

    /// CreatePartitions: grow topics; new partitions start empty at offset 0.
    pub(super) fn create_partitions(&mut self, id: RequestId, request: CreatePartitionsRequest) {
        let duplicates = duplicate_names(request.topics.iter().map(|t| t.name.as_str()));
        let mut changed = false;
        let mut results = Vec::with_capacity(request.topics.len());
        for topic in &request.topics {
            let checked = if duplicates.contains_key(topic.name.as_str()) {
                Err((
                    ErrorCode::INVALID_REQUEST,
                    format!("Duplicate topic name: {}", topic.name),
                ))
            } else {
                self.validate_partition_growth(topic)
            };
            let (error, error_message) = match checked {
                Ok(topic_id) => {
                    if !request.validate_only {
                        self.grow_topic(topic_id, topic.count);
                        changed = true;
                    }
                    (ErrorCode::NONE, None)
                }
                Err((error, message)) => (error, Some(message)),
            };
            results.push(CreatePartitionsTopicResult {
                name: topic.name.clone(),
                error,
                error_message,
            });
        }
        let response = ApiResponse::CreatePartitions(CreatePartitionsResponse {
            throttle_time_ms: 0,
            results,
        });
        self.respond_after_writes(id, response, changed);
    }

    /// Answer now, or once the writes just emitted are durable.
    pub(super) fn respond_after_writes(
        &mut self,
        id: RequestId,
        response: ApiResponse,
        wrote: bool,
    ) {
        if wrote {
            self.respond_when_durable(id, response, None);
        } else {
            self.respond(id, response);
        }
    }

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
        Ok(TopicSpec {
            partitions,
            replication_factor,
            config,
        })
    }

    /// Requests that change metadata park their answer: refuse before changing anything
    /// when no room is left to park it.
    fn check_room_for_changes(&self) -> Result<(), Refusal> {
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

    /// -1 means the broker default; a single node holds exactly one replica.
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
        if let Some(cluster) = &self.cluster {
            let live = cluster.image.live_brokers().len();
            if usize::try_from(factor).unwrap_or(usize::MAX) > live {
                let message = format!(
                    "Unable to replicate the partition {factor} time(s): The target replication \
                     factor of {factor} cannot be reached because only {live} broker(s) are \
                     registered."
                );
                return Err((ErrorCode::INVALID_REPLICATION_FACTOR, message));
            }
            return Ok(factor);
        }
        if factor > 1 {
            let message = format!(
                "Unable to replicate the partition {factor} time(s): The target replication \
                 factor of {factor} cannot be reached because only 1 broker(s) are registered."
            );
            return Err((ErrorCode::INVALID_REPLICATION_FACTOR, message));
        }
        Ok(factor)
    }

    /// Manual assignments: partitions `first..` in order, each on exactly this node.
    /// A single node can only place replicas on itself, so the only valid assignment of each
    /// partition is `[node_id]`; anything else is refused rather than silently changed.
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
            if let Some(cluster) = &self.cluster {
                let mut distinct = replicas.to_vec();
                distinct.sort_unstable();
                distinct.dedup();
                let known = replicas
                    .iter()
                    .all(|r| cluster.image.brokers.contains_key(r));
                if replicas.is_empty() || distinct.len() != replicas.len() || !known {
                    let message = format!("Replica assignment {replicas:?} is invalid");
                    return Err((ErrorCode::INVALID_REPLICA_ASSIGNMENT, message));
                }
                count += 1;
                continue;
            }
            if replicas != [self.config.node_id] {
                let message = format!(
                    "Replica assignment {replicas:?} must be exactly [{}]",
                    self.config.node_id
                );
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

    /// Kafka's CreatePartitions checks; returns the topic to grow.
    fn validate_partition_growth(&self, topic: &CreatePartitionsTopic) -> Result<Uuid, Refusal> {
        self.check_room_for_changes()?;
        let Some(&topic_id) = self.topic_ids.get(&topic.name) else {
            let message = format!("The topic '{}' does not exist.", topic.name);
            return Err((ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, message));
        };
        let current = self.topics.get(&topic_id).map_or(0, |t| t.partitions.len()) as i32;
        // Kafka cannot shrink a topic: keyed records would move to other partitions.
        if topic.count < current {
            let message = format!(
                "Topic currently has {current} partitions, which is higher than the requested {}.",
                topic.count
            );
            return Err((ErrorCode::INVALID_PARTITIONS, message));
        }
        if topic.count == current {
            return Err((
                ErrorCode::INVALID_PARTITIONS,
                format!("Topic already has {current} partitions."),
            ));
        }
        if let Some(assignments) = &topic.assignments {
            let numbered = assignments
                .iter()
                .zip(current..)
                .map(|(replicas, p)| (p, replicas.as_slice()));
            let (assigned, _) = self.check_assignments(numbered, current)?;
            if assigned != topic.count - current {
                let added = topic.count - current;
                let message = format!(
                    "Increasing the number of partitions by {added} but {assigned} assignments \
                     provided."
                );
                return Err((ErrorCode::INVALID_REPLICA_ASSIGNMENT, message));
            }
        }
        self.check_partition_room(i64::from(topic.count - current))?;
        Ok(topic_id)
    }

    /// Create a validated topic: allocate its id and partition keys, persist, add.
    pub(super) fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        config: TopicConfig,
    ) -> Uuid {
        self.create_topic_with_id(name, partitions, config, None)
    }

    /// Create a topic with a given id (cluster mode: the id comes from the metadata log) or
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
            let bases: Vec<i64> = log.segments().map(|s| s.base_offset).collect();
            for base_offset in bases {
                self.emit(StorageOp::DeleteMeta {
                    key: meta::segment_key(partition_key, base_offset),
                });
            }
            self.unsynced_partitions.remove(&(topic_id, index));
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

/// Names that occur more than once, with their counts.
/// Kafka answers INVALID_REQUEST for names repeated in one request.
fn duplicate_names<'a>(names: impl Iterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for name in names {
        *counts.entry(name).or_default() += 1;
    }
    counts.retain(|_, count| *count > 1);
    counts
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
