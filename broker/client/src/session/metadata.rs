//! The metadata cache: brokers, topics, partitions and their leaders, as of the last
//! Metadata response.
//!
//! Invariants:
//! - Partitions of a topic are sorted by index.
//! - `leader_for` answers only with a leader whose address is known, so a caller that gets a
//!   node id can always connect to it.
//! - A response for some topics updates only those topics; a response for all topics
//!   replaces the topic set (deleted topics disappear).

use std::collections::BTreeMap;
use std::time::Duration;

use weir_wire::domain::{BrokerInfo, MetadataResponse};
use weir_wire::error::ErrorCode;

/// What the cache knows about one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// Name.
    pub name: String,
    /// Topic-level error (e.g. UNKNOWN_TOPIC_OR_PARTITION while it is being created).
    pub error: ErrorCode,
    /// Stable topic id as text (all zeros when the broker sends none).
    pub topic_id: String,
    /// Internal topics such as `__consumer_offsets`.
    pub is_internal: bool,
    /// Partitions sorted by index.
    pub partitions: Vec<PartitionMetadata>,
}

/// What the cache knows about one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// Partition index.
    pub partition: i32,
    /// Partition-level error.
    pub error: ErrorCode,
    /// Leader node id, -1 if none.
    pub leader_id: i32,
    /// Leader epoch, -1 if unknown.
    pub leader_epoch: i32,
    /// Replica node ids.
    pub replica_nodes: Vec<i32>,
    /// In-sync replica node ids.
    pub isr_nodes: Vec<i32>,
    /// Offline replica node ids.
    pub offline_replicas: Vec<i32>,
}

/// Brokers and topics as last seen.
#[derive(Debug, Clone, Default)]
pub struct MetadataCache {
    brokers: BTreeMap<i32, BrokerInfo>,
    topics: BTreeMap<String, TopicMetadata>,
    controller_id: i32,
    cluster_id: Option<String>,
    updated_at: Option<Duration>,
}

impl MetadataCache {
    /// Applies a Metadata response. `all_topics` says whether the request asked for every
    /// topic (then topics missing from the response are gone).
    pub fn update(&mut self, now: Duration, response: &MetadataResponse, all_topics: bool) {
        if !response.brokers.is_empty() {
            self.brokers = response
                .brokers
                .iter()
                .map(|broker| (broker.node_id, broker.clone()))
                .collect();
        }
        self.controller_id = response.controller_id;
        if response.cluster_id.is_some() {
            self.cluster_id.clone_from(&response.cluster_id);
        }
        if all_topics {
            self.topics.clear();
        }
        for topic in &response.topics {
            // Id-only answers for unknown ids carry no name; nothing to key them by.
            let Some(name) = &topic.name else { continue };
            let mut partitions: Vec<PartitionMetadata> = topic
                .partitions
                .iter()
                .map(|partition| PartitionMetadata {
                    partition: partition.partition,
                    error: partition.error,
                    leader_id: partition.leader_id,
                    leader_epoch: partition.leader_epoch,
                    replica_nodes: partition.replica_nodes.clone(),
                    isr_nodes: partition.isr_nodes.clone(),
                    offline_replicas: partition.offline_replicas.clone(),
                })
                .collect();
            partitions.sort_by_key(|partition| partition.partition);
            let metadata = TopicMetadata {
                name: name.clone(),
                error: topic.error,
                topic_id: topic.topic_id.to_string(),
                is_internal: topic.is_internal,
                partitions,
            };
            self.topics.insert(name.clone(), metadata);
        }
        self.updated_at = Some(now);
    }

    /// The topic, if the last response mentioned it.
    pub fn topic(&self, name: &str) -> Option<&TopicMetadata> {
        self.topics.get(name)
    }

    /// Every known topic, by name.
    pub fn topics(&self) -> impl Iterator<Item = &TopicMetadata> {
        self.topics.values()
    }

    /// Partition count of a topic that exists without error.
    pub fn partition_count(&self, topic: &str) -> Option<i32> {
        let metadata = self.topics.get(topic)?;
        if !metadata.error.is_ok() || metadata.partitions.is_empty() {
            return None;
        }
        i32::try_from(metadata.partitions.len()).ok()
    }

    /// The leader of a partition, if it has one whose address we know.
    pub fn leader_for(&self, topic: &str, partition: i32) -> Option<i32> {
        let metadata = self.topics.get(topic)?;
        let entry = metadata
            .partitions
            .iter()
            .find(|p| p.partition == partition)?;
        if entry.leader_id < 0 || !self.brokers.contains_key(&entry.leader_id) {
            return None;
        }
        Some(entry.leader_id)
    }

    /// The leader epoch the client believes in, -1 if unknown.
    pub fn leader_epoch(&self, topic: &str, partition: i32) -> i32 {
        self.topics
            .get(topic)
            .and_then(|metadata| {
                metadata
                    .partitions
                    .iter()
                    .find(|p| p.partition == partition)
            })
            .map_or(-1, |entry| entry.leader_epoch)
    }

    /// `host:port` of a broker.
    pub fn broker_address(&self, node_id: i32) -> Option<String> {
        let broker = self.brokers.get(&node_id)?;
        Some(format!("{}:{}", broker.host, broker.port))
    }

    /// Known brokers by node id.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerInfo> {
        self.brokers.values()
    }

    /// The controller's node id (-1 if unknown).
    pub fn controller_id(&self) -> i32 {
        self.controller_id
    }

    /// The cluster id, if the broker sent one.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// True when never updated or older than `max_age`.
    pub fn is_stale(&self, now: Duration, max_age: Duration) -> bool {
        match self.updated_at {
            None => true,
            Some(at) => now.saturating_sub(at) >= max_age,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    // Goal: the cache answers leaders only for reachable brokers and handles partial vs full
    // refreshes. Method: apply hand-built Metadata responses.
    use weir_wire::domain::{MetadataPartition, MetadataTopic};

    use super::*;

    /// A response with one broker (node 1 at 127.0.0.1:9092) and `topics` whose partitions
    /// are all led by `leader`.
    pub(crate) fn response(topics: &[(&str, i32)], leader: i32) -> MetadataResponse {
        MetadataResponse {
            brokers: vec![BrokerInfo {
                node_id: 1,
                host: "127.0.0.1".into(),
                port: 9092,
                rack: None,
            }],
            cluster_id: Some("c".into()),
            controller_id: 1,
            topics: topics
                .iter()
                .map(|&(name, count)| MetadataTopic {
                    error: ErrorCode::NONE,
                    name: Some(name.into()),
                    topic_id: Default::default(),
                    is_internal: false,
                    partitions: (0..count)
                        .rev()
                        .map(|partition| MetadataPartition {
                            error: ErrorCode::NONE,
                            partition,
                            leader_id: leader,
                            leader_epoch: 0,
                            replica_nodes: vec![leader],
                            isr_nodes: vec![leader],
                            offline_replicas: vec![],
                        })
                        .collect(),
                    topic_authorized_operations: i32::MIN,
                })
                .collect(),
            ..MetadataResponse::default()
        }
    }

    #[test]
    fn leaders_and_counts() {
        let mut cache = MetadataCache::default();
        assert!(cache.is_stale(Duration::ZERO, Duration::from_secs(1)));
        cache.update(Duration::from_secs(5), &response(&[("a", 3)], 1), true);
        assert_eq!(cache.partition_count("a"), Some(3));
        assert_eq!(cache.leader_for("a", 2), Some(1));
        assert_eq!(cache.leader_for("a", 3), None);
        assert_eq!(cache.broker_address(1).as_deref(), Some("127.0.0.1:9092"));
        let indexes: Vec<i32> = cache.topic("a").map_or(vec![], |t| {
            t.partitions.iter().map(|p| p.partition).collect()
        });
        assert_eq!(indexes, vec![0, 1, 2], "partitions are sorted");
        assert!(!cache.is_stale(Duration::from_secs(6), Duration::from_secs(2)));
        assert!(cache.is_stale(Duration::from_secs(7), Duration::from_secs(2)));
    }

    #[test]
    fn leader_on_unknown_broker_is_no_leader() {
        let mut cache = MetadataCache::default();
        cache.update(Duration::ZERO, &response(&[("a", 1)], 7), true);
        assert_eq!(cache.leader_for("a", 0), None);
    }

    #[test]
    fn partial_refresh_keeps_other_topics_full_refresh_drops_them() {
        let mut cache = MetadataCache::default();
        cache.update(Duration::ZERO, &response(&[("a", 1), ("b", 2)], 1), true);
        cache.update(Duration::ZERO, &response(&[("b", 4)], 1), false);
        assert_eq!(cache.partition_count("a"), Some(1));
        assert_eq!(cache.partition_count("b"), Some(4));
        cache.update(Duration::ZERO, &response(&[("b", 4)], 1), true);
        assert!(cache.topic("a").is_none());
    }
}
