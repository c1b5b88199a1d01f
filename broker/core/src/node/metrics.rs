//! A read-only snapshot of the numbers operators chart: per-partition log offsets, sizes
//! and the log cleaner's dirty ratio, the cleaner's byte totals and, per consumer group,
//! members, committed offsets and lag.
//!
//! The driver asks for it between inputs (the node loop serves a metrics request like any
//! other input), so a snapshot is consistent: every number was read at the same point of the
//! node's history. Taking one changes nothing: no output, no timer, no storage op.
//!
//! Lag follows kafka_exporter: `high_watermark - committed_offset`, floored at 0 (a commit
//! ahead of the log, e.g. after truncation, is not negative lag). A committed offset for a
//! partition the catalog no longer has is reported with lag and log end offset unknown
//! (`None`), so the exporter can skip it rather than invent a number.
//!
//! Size is the bytes of a log's segments on this broker (what DescribeLogDirs reports);
//! the dirty ratio is the share of a compacted log's cleanable bytes past the cleaner's
//! checkpoint, computed as the cleaner's scheduler does (`compact::dirty_ratio`), so an
//! operator sees the number `min.cleanable.dirty.ratio` is compared with.

use super::compact::dirty_ratio;
use super::log_dirs::partition_size_bytes;
use super::Node;
use crate::time::Now;
use crate::topic::PartitionId;

/// One partition's offsets and size.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionOffsets {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The log start offset (kafka_exporter's "oldest offset").
    pub log_start_offset: i64,
    /// The high watermark (kafka_exporter's "current offset": what consumers can read).
    pub high_watermark: i64,
    /// Bytes of the log's segments on this broker.
    pub size_bytes: u64,
    /// The log cleaner's dirty ratio (0..=1); `None` when the topic is not compacted.
    pub cleaner_dirty_ratio: Option<f64>,
    /// Tiered storage; `None` when the topic is not tiered.
    pub remote: Option<RemotePartitionMetrics>,
}

/// A tiered partition's remote side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemotePartitionMetrics {
    /// Bytes of its uploaded segments (the committed remote log).
    pub size_bytes: u64,
    /// The log start offset of the local log and remote log together.
    pub log_start_offset: i64,
    /// Bytes of closed, stable segments not uploaded yet; `None` on a follower (only the
    /// leader uploads).
    pub upload_lag_bytes: Option<u64>,
}

/// One committed offset of a group, with the lag behind its partition's high watermark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPartitionLag {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The committed offset (next offset to consume).
    pub committed_offset: i64,
    /// The partition's high watermark, `None` when the partition does not exist (any more).
    pub high_watermark: Option<i64>,
    /// `high_watermark - committed_offset` floored at 0, `None` with the high watermark.
    pub lag: Option<i64>,
}

/// One group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetrics {
    /// Group id.
    pub group_id: String,
    /// Kafka's state name (Empty, Stable, ...).
    pub state: String,
    /// Members now.
    pub member_count: usize,
    /// Committed offsets in (topic, partition) order.
    pub partitions: Vec<GroupPartitionLag>,
}

/// Everything `/metrics` reports, taken at one point of the node's history.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricsSnapshot {
    /// This broker's id.
    pub node_id: i32,
    /// Live brokers in the cluster, as the metadata image has them.
    pub broker_count: usize,
    /// Partitions of every topic, internal ones included, in (topic, partition) order.
    pub partitions: Vec<PartitionOffsets>,
    /// Groups in id order.
    pub groups: Vec<GroupMetrics>,
    /// Bytes the log cleaner's jobs read since the node started.
    pub cleaner_bytes_read: u64,
    /// Bytes the log cleaner removed from logs since the node started.
    pub cleaner_bytes_cleaned: u64,
    /// Bytes of segment objects uploaded since the node started.
    pub remote_bytes_uploaded: u64,
    /// Uploads completed since the node started.
    pub remote_uploads: u64,
    /// Uploads failed since the node started (each is retried).
    pub remote_upload_failures: u64,
    /// The authorizer's decisions since the node started (zero while it is off).
    pub authorizer: super::acl::AuthorizerCounts,
    /// Time the driver's loop spent handling events (this node's state machine included)
    /// since it started, by the runtime's clock. The driver fills it in; the node leaves
    /// it zero (it cannot see its own driver).
    pub state_machine_busy: std::time::Duration,
    /// A broker of several shards: each shard loop's `state_machine_busy`, shard 0 first
    /// (the driver fills it in when it merges the shards' snapshots; empty otherwise).
    pub shard_busy: Vec<std::time::Duration>,
    /// Time the driver's compaction jobs ran (reading and rewriting, off the node loop)
    /// since it started, by the runtime's clock; the driver fills it in, like
    /// `state_machine_busy`. Bytes read over it is the cleaner's own throughput.
    pub cleaner_busy: std::time::Duration,
}

impl Node {
    /// A consistent read-only snapshot of offsets, sizes, groups and lag (see the module
    /// doc); `now` dates the cleaner's view (`min.compaction.lag.ms`).
    pub fn metrics_snapshot(&self, now: Now) -> MetricsSnapshot {
        let mut partitions = Vec::with_capacity(self.partition_count);
        // topic_ids is ordered by name, so the output is too.
        for id in self.topic_ids.values() {
            let Some(topic) = self.topics.get(id) else {
                continue;
            };
            let compacts = self.compacts(topic);
            let tiered = self.tiered(topic);
            let min_lag_ms = topic.config.min_compaction_lag_ms(&self.config);
            for (index, log) in topic.partitions.iter().enumerate() {
                let key = PartitionId::new(topic.id, index);
                partitions.push(PartitionOffsets {
                    topic: topic.name.clone(),
                    partition: key.partition(),
                    log_start_offset: log.log_start_offset(),
                    high_watermark: log.high_watermark(),
                    size_bytes: partition_size_bytes(log),
                    cleaner_dirty_ratio: compacts
                        .then(|| dirty_ratio(key, log, now.wall_ms, min_lag_ms)),
                    remote: tiered.then(|| self.remote_partition_metrics(key, log)),
                });
            }
        }
        let listed = self
            .groups
            .list_groups(&weir_wire::domain::ListGroupsRequest::default());
        let groups = listed
            .groups
            .into_iter()
            .map(|listed| self.group_metrics(listed.group_id, listed.group_state))
            .collect();
        let (remote_bytes_uploaded, remote_uploads, remote_upload_failures) = self.tier_totals();
        MetricsSnapshot {
            node_id: self.config.node_id,
            broker_count: self.cluster_brokers().0.len(),
            partitions,
            groups,
            cleaner_bytes_read: self.compactor.bytes_read,
            cleaner_bytes_cleaned: self.compactor.bytes_cleaned,
            authorizer: self.authorizer_counts,
            remote_bytes_uploaded,
            remote_uploads,
            remote_upload_failures,
            state_machine_busy: std::time::Duration::ZERO,
            shard_busy: Vec::new(),
            cleaner_busy: std::time::Duration::ZERO,
        }
    }

    fn remote_partition_metrics(
        &self,
        key: PartitionId,
        log: &crate::partition::PartitionLog,
    ) -> RemotePartitionMetrics {
        let image = &self.cluster.meta.image;
        let remote = image.remote_log(key.topic.as_u128(), key.partition());
        RemotePartitionMetrics {
            size_bytes: remote.map_or(0, |r| r.size_bytes()),
            log_start_offset: self.total_log_start(key, log.log_start_offset()),
            upload_lag_bytes: (self.leads_index(key)).then(|| self.upload_lag_bytes(key)),
        }
    }

    fn group_metrics(&self, group_id: String, state: String) -> GroupMetrics {
        let member_count = self.groups.member_ids(&group_id).len();
        let partitions = (self.groups.committed(&group_id).into_iter())
            .map(|((topic, partition), committed)| {
                let high_watermark = self
                    .topic_by_name(&topic)
                    .and_then(|t| {
                        usize::try_from(partition)
                            .ok()
                            .and_then(|p| t.partitions.get(p))
                    })
                    .map(|log| log.high_watermark());
                GroupPartitionLag {
                    lag: high_watermark.map(|hw| (hw - committed.offset).max(0)),
                    topic,
                    partition,
                    committed_offset: committed.offset,
                    high_watermark,
                }
            })
            .collect();
        GroupMetrics {
            group_id,
            state,
            member_count,
            partitions,
        }
    }
}
