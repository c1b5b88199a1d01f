//! DescribeLogDirs (key 35): the partition replicas this broker stores, in its one log
//! directory, with each log's size in bytes. Admin tools and consoles read topic sizes
//! from it (`kafka-log-dirs.sh --describe`, Redpanda Console, Kafbat UI).
//!
//! Kafka's answer, field by field (`ReplicaManager::describeLogDirs`):
//! - one result per log directory; Weir keeps one, named by [`NodeConfig::log_dir`] (the
//!   server passes its data directory's absolute path; the core never opens it);
//! - in it, every partition this broker holds a replica of (leader or follower) among those
//!   asked for (`topics: None` = all), grouped by topic in name order; unknown topics and
//!   partitions not stored here are left out, not errors, and a topic left with no
//!   partition is not listed;
//! - `partition_size`: the bytes of the log's segments, what retention and compaction
//!   shrink (Kafka's `UnifiedLog::size`);
//! - `offset_lag`: `max(high_watermark - log_end_offset, 0)`, Kafka's lag of a current log:
//!   0 on a leader, and on a follower whatever its log end trails the high watermark it
//!   learnt;
//! - `is_future_key`: false (Weir has no AlterReplicaLogDirs);
//! - the volume's `total_bytes` and `usable_bytes` (v4): unknown (-1), since the core reads
//!   no file system.
//!
//! - Tiered storage: with a remote store configured, a second result named
//!   [`REMOTE_LOG_DIR`] lists the tiered partitions this broker *leads* with the bytes of
//!   their uploaded segments (the image's remote log), so a tool summing a topic's sizes
//!   counts every local replica once and the remote copy once. Its volume sizes are -1.
//!
//! No authorizer, so Kafka's CLUSTER_AUTHORIZATION_FAILED never applies. The answer is
//! bounded by the partitions this broker holds; the request's filter by the frame size.
//!
//! [`NodeConfig::log_dir`]: crate::config::NodeConfig::log_dir

use std::collections::{BTreeMap, BTreeSet};

use weir_wire::domain::log_dirs::{
    DescribableLogDirTopic, DescribeLogDirsRequest, DescribeLogDirsResponse, LogDirPartition,
    LogDirResult, LogDirTopic, REMOTE_LOG_DIR, VOLUME_BYTES_UNKNOWN,
};
use weir_wire::domain::ApiResponse;
use weir_wire::error::ErrorCode;

use super::Node;
use crate::event::RequestId;
use crate::partition::PartitionLog;

impl Node {
    /// DescribeLogDirs: this broker's one log directory (see the module doc).
    pub(super) fn describe_log_dirs(&mut self, id: RequestId, request: DescribeLogDirsRequest) {
        let mut results = vec![self.log_dir_result(request.topics.as_deref(), false)];
        if self.config.remote_storage_enable {
            results.push(self.log_dir_result(request.topics.as_deref(), true));
        }
        let response = DescribeLogDirsResponse {
            throttle_time_ms: 0,
            error: ErrorCode::NONE,
            results,
        };
        self.respond(id, ApiResponse::DescribeLogDirs(response));
    }

    /// The log directory's replicas among `wanted` (`None`: all); with `remote`, the
    /// remote "directory" of the tiered partitions this broker leads.
    fn log_dir_result(
        &self,
        wanted: Option<&[DescribableLogDirTopic]>,
        remote: bool,
    ) -> LogDirResult {
        let wanted: Option<BTreeSet<(&str, i32)>> = wanted.map(|topics| {
            (topics.iter())
                .flat_map(|t| (t.partitions.iter()).map(move |p| (t.topic.as_str(), *p)))
                .collect()
        });
        let mut by_topic: BTreeMap<&str, Vec<LogDirPartition>> = BTreeMap::new();
        // Roles are keyed by (topic id, index), so each topic's partitions come in order.
        for key in self.cluster.replication.replicas.keys() {
            let Some(topic) = self.topics.get(&key.topic) else {
                continue;
            };
            let Some(log) = topic.partitions.get(key.index()) else {
                continue;
            };
            let partition = key.partition();
            let asked = (wanted.as_ref())
                .is_none_or(|wanted| wanted.contains(&(topic.name.as_str(), partition)));
            if !asked {
                continue;
            }
            let size = if remote {
                if !(self.tiered(topic) && self.leads_index(*key)) {
                    continue;
                }
                let image = &self.cluster.meta.image;
                (image.remote_log(key.topic.as_u128(), partition)).map_or(0, |r| r.size_bytes())
            } else {
                partition_size_bytes(log)
            };
            let offset_lag = (log.high_watermark() - log.log_end_offset()).max(0);
            by_topic
                .entry(topic.name.as_str())
                .or_default()
                .push(LogDirPartition {
                    partition,
                    partition_size: i64::try_from(size).unwrap_or(i64::MAX),
                    offset_lag,
                    is_future_key: false,
                });
        }
        let topics = (by_topic.into_iter())
            .map(|(name, partitions)| LogDirTopic {
                name: name.to_owned(),
                partitions,
            })
            .collect();
        LogDirResult {
            error: ErrorCode::NONE,
            log_dir: if remote {
                REMOTE_LOG_DIR.to_string()
            } else {
                self.config.log_dir.clone()
            },
            topics,
            total_bytes: VOLUME_BYTES_UNKNOWN,
            usable_bytes: VOLUME_BYTES_UNKNOWN,
        }
    }
}

/// The bytes of `log`'s segments: its size on this broker (DescribeLogDirs, `/metrics`).
pub(super) fn partition_size_bytes(log: &PartitionLog) -> u64 {
    log.segments().map(|segment| segment.bytes).sum()
}
