//! The admin client's log directory view (Kafka's `kafka-log-dirs.sh --describe`):
//! DescribeLogDirs, which every broker answers for the partition replicas it stores.
//!
//! Routing follows Kafka's admin client: the request goes to each broker asked about (all
//! the metadata names by default), and one broker's failure is returned for that broker,
//! not raised, so an unreachable broker does not hide the others' answers.
//! [`Admin::partition_sizes`] asks each partition's leader only, for its copy's size.

use std::collections::{BTreeMap, BTreeSet};

use weir_runtime::Runtime;
use weir_wire::domain::log_dirs::{
    DescribableLogDirTopic, DescribeLogDirsRequest, DescribeLogDirsResponse, REMOTE_LOG_DIR,
};
use weir_wire::domain::{ApiRequest, ApiResponse};
use weir_wire::error::ErrorCode;

use crate::admin::Admin;
use crate::driver::cluster::unexpected;
use crate::error::ClientError;
use crate::TopicPartition;

/// One log directory of a broker, as DescribeLogDirs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirDescription {
    /// The directory's absolute path on the broker.
    pub path: String,
    /// The directory's error (e.g. KAFKA_STORAGE_ERROR when offline), or NONE.
    pub error: ErrorCode,
    /// Size of the volume holding it, -1 when the broker does not say.
    pub total_bytes: i64,
    /// Usable bytes left on that volume, -1 when the broker does not say.
    pub usable_bytes: i64,
    /// The partition replicas stored in it, in (topic, partition) order.
    pub replicas: Vec<ReplicaLogInfo>,
}

/// One partition replica's log in a log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLogInfo {
    /// The partition.
    pub topic_partition: TopicPartition,
    /// Bytes of its log segments.
    pub size_bytes: i64,
    /// How far its log end trails the high watermark.
    pub offset_lag: i64,
    /// True for a log being moved into this directory (AlterReplicaLogDirs).
    pub is_future: bool,
}

/// Per-broker results of [`Admin::describe_log_dirs`]: (broker id, its directories).
pub type BrokerLogDirs = Vec<(i32, Result<Vec<LogDirDescription>, ClientError>)>;

impl<R: Runtime> Admin<R> {
    /// Every broker's log directories with the replicas of `topics` each stores (all
    /// topics when `topics` is empty; names the metadata does not know are left out).
    pub async fn describe_log_dirs(&self, topics: &[String]) -> Result<BrokerLogDirs, ClientError> {
        let requested = if topics.is_empty() {
            None
        } else {
            Some(topics)
        };
        let metadata = self.cluster().refresh_metadata(requested, false).await?;
        // Kafka names partitions in the request; the metadata gives every one of a topic.
        let filter = requested.map(|names| {
            (names.iter())
                .filter_map(|name| metadata.topic(name))
                .map(|topic| DescribableLogDirTopic {
                    topic: topic.name.clone(),
                    partitions: topic.partitions.iter().map(|p| p.partition).collect(),
                })
                .collect()
        });
        let request = DescribeLogDirsRequest { topics: filter };
        let mut results = Vec::new();
        for broker_id in metadata.brokers().map(|b| b.node_id) {
            results.push((broker_id, self.log_dirs_of(broker_id, &request).await));
        }
        Ok(results)
    }

    /// The size in bytes of each partition of `topics` (all topics when empty) as its
    /// leader stores it locally. Best effort: a partition without a leader, or whose leader
    /// did not answer, is missing from the map.
    pub async fn partition_sizes(
        &self,
        topics: &[String],
    ) -> Result<BTreeMap<TopicPartition, i64>, ClientError> {
        let sizes = self.partition_sizes_by_tier(topics).await?;
        Ok((sizes.into_iter())
            .filter_map(|(tp, (local, _))| Some((tp, local?)))
            .collect())
    }

    /// [`Admin::partition_sizes`] with tiered storage: per partition, the leader's local
    /// bytes and, for a tiered partition of a Weir broker, its uploaded bytes (the
    /// `remote-storage` entry of DescribeLogDirs).
    pub async fn partition_sizes_by_tier(
        &self,
        topics: &[String],
    ) -> Result<BTreeMap<TopicPartition, (Option<i64>, Option<i64>)>, ClientError> {
        let requested = if topics.is_empty() {
            None
        } else {
            Some(topics)
        };
        let metadata = self.cluster().refresh_metadata(requested, false).await?;
        // Each leader is asked for the partitions it leads, and only those are read back.
        let mut led: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        let mut wanted = BTreeSet::new();
        for topic in metadata.topics() {
            if requested.is_some_and(|names| !names.contains(&topic.name)) {
                continue;
            }
            for partition in topic.partitions.iter().filter(|p| p.leader_id >= 0) {
                let partitions = led.entry(partition.leader_id).or_default();
                partitions
                    .entry(topic.name.clone())
                    .or_default()
                    .push(partition.partition);
                wanted.insert((
                    partition.leader_id,
                    TopicPartition::new(topic.name.clone(), partition.partition),
                ));
            }
        }
        let mut sizes: BTreeMap<TopicPartition, (Option<i64>, Option<i64>)> = BTreeMap::new();
        for (leader, topics) in led {
            let filter = (topics.into_iter())
                .map(|(topic, partitions)| DescribableLogDirTopic { topic, partitions })
                .collect();
            let request = DescribeLogDirsRequest {
                topics: Some(filter),
            };
            let Ok(dirs) = self.log_dirs_of(leader, &request).await else {
                continue;
            };
            let replicas = (dirs.into_iter())
                .filter(|dir| dir.error.is_ok())
                .flat_map(|dir| {
                    let remote = dir.path == REMOTE_LOG_DIR;
                    dir.replicas
                        .into_iter()
                        .map(move |replica| (remote, replica))
                })
                .filter(|(_, replica)| !replica.is_future);
            for (remote, replica) in replicas {
                if wanted.contains(&(leader, replica.topic_partition.clone())) {
                    let entry = sizes.entry(replica.topic_partition).or_default();
                    if remote {
                        entry.1 = Some(replica.size_bytes);
                    } else {
                        entry.0 = Some(replica.size_bytes);
                    }
                }
            }
        }
        Ok(sizes)
    }

    /// DescribeLogDirs at broker `broker_id`.
    async fn log_dirs_of(
        &self,
        broker_id: i32,
        request: &DescribeLogDirsRequest,
    ) -> Result<Vec<LogDirDescription>, ClientError> {
        let request = ApiRequest::DescribeLogDirs(request.clone());
        let response = match self.cluster().request_node(broker_id, &request).await? {
            ApiResponse::DescribeLogDirs(response) => response,
            other => return Err(unexpected("DescribeLogDirs", &other)),
        };
        if !response.error.is_ok() {
            return Err(ClientError::kafka(
                response.error,
                format!("describe log dirs on broker {broker_id}"),
            ));
        }
        Ok(descriptions(response))
    }
}

fn descriptions(response: DescribeLogDirsResponse) -> Vec<LogDirDescription> {
    (response.results.into_iter())
        .map(|dir| LogDirDescription {
            path: dir.log_dir,
            error: dir.error,
            total_bytes: dir.total_bytes,
            usable_bytes: dir.usable_bytes,
            replicas: (dir.topics.into_iter())
                .flat_map(|topic| {
                    let name = topic.name;
                    (topic.partitions.into_iter()).map(move |p| ReplicaLogInfo {
                        topic_partition: TopicPartition::new(name.clone(), p.partition),
                        size_bytes: p.partition_size,
                        offset_lag: p.offset_lag,
                        is_future: p.is_future_key,
                    })
                })
                .collect(),
        })
        .collect()
}
