//! Retention: every `retention_check_interval_ms`, delete whole logical segments that are
//! older than `retention.ms` or beyond `retention.bytes`, and move the log start offset.
//!
//! Invariant: only data below the high watermark is deleted, so the log start offset never
//! passes the high watermark and nothing a producer waits on disappears.

use std::collections::BTreeMap;

use super::Node;
use crate::meta;
use crate::partition::{PartitionLog, Truncation};
use crate::storage::StorageOp;
use crate::time::Now;
use crate::topic::PartitionId;

impl Node {
    pub(super) fn enforce_retention(&mut self, now: Now) {
        let mut ops = Vec::new();
        // A tiered partition's local copies go only below the remote end the applied image
        // confirms (`tier::local_delete_bound`), by the local retention settings.
        let bounds: BTreeMap<PartitionId, i64> = (self.topics.values())
            .filter(|topic| self.tiered(topic))
            .flat_map(|topic| (0..topic.partitions.len()).map(|i| PartitionId::new(topic.id, i)))
            .map(|key| (key, self.local_delete_bound(key)))
            .collect();
        let config = &self.config;
        for topic in self.topics.values_mut() {
            // `cleanup.policy=compact` alone keeps data by key, not by time or size.
            if !topic.config.cleanup_policy(config).delete {
                continue;
            }
            let tiered = config.remote_storage_enable && topic.config.remote_storage_enable(config);
            let (retention_ms, retention_bytes) = if tiered {
                let local_ms = topic.config.local_retention_ms(config);
                let local_bytes = topic.config.local_retention_bytes(config);
                (local_ms, local_bytes)
            } else {
                (
                    topic.config.retention_ms(config),
                    topic.config.retention_bytes(config),
                )
            };
            for (index, log) in topic.partitions.iter_mut().enumerate() {
                let key = PartitionId::new(topic.id, index);
                let bound = if tiered {
                    bounds.get(&key).copied().unwrap_or(i64::MIN)
                } else {
                    i64::MAX
                };
                let Some(truncation) =
                    log.enforce_retention_below(now.wall_ms, retention_ms, retention_bytes, bound)
                else {
                    continue;
                };
                assert!(
                    truncation.log_start_offset <= bound,
                    "{key}: retention deleted past the bound {bound}"
                );
                tracing::debug!(
                    topic = topic.name,
                    partition_key = log.partition_key(),
                    log_start_offset = truncation.log_start_offset,
                    segments = truncation.removed.len(),
                    "retention deleted segments"
                );
                ops.extend(truncation_ops(log, &truncation));
            }
        }
        for op in ops {
            self.emit(op);
        }
        // A tiered partition's local log follows its remote log start (applied at each image
        // change; here too for a node that restarted from a snapshot past the change).
        for key in bounds.into_keys() {
            self.follow_remote_start(key);
        }
    }
}

impl Node {
    /// Move `key`'s log start up to `offset`, bounded by its high watermark (the log start
    /// never passes it), and emit what that changes in storage: the one way DeleteRecords,
    /// a follower taking its leader's log start and a tiered replica following its remote
    /// log start move it. `None` when nothing moved.
    pub(super) fn move_log_start(&mut self, key: PartitionId, offset: i64) -> Option<Truncation> {
        let log = self.log_mut(key)?;
        let truncation = log.delete_records_below(offset.min(log.high_watermark()))?;
        for op in truncation_ops(log, &truncation) {
            self.emit(op);
        }
        Some(truncation)
    }
}

/// What a moved log start changes besides the log (retention, DeleteRecords, a follower
/// following its leader's log start), and the storage ops that make it so: the data first,
/// then the meta saying it is gone (recovery tolerates storage being ahead of the meta, see
/// `partition::plan_recovery`).
pub(super) fn truncation_ops(log: &mut PartitionLog, truncation: &Truncation) -> Vec<StorageOp> {
    let partition_key = log.partition_key();
    log.txns.truncate_prefix(truncation.log_start_offset);
    let mut ops = vec![StorageOp::TruncatePrefix {
        partition_key,
        offset: truncation.log_start_offset,
    }];
    for segment in &truncation.removed {
        ops.push(StorageOp::DeleteMeta {
            key: meta::segment_key(partition_key, segment.base_offset),
        });
    }
    ops.push(StorageOp::PutMeta {
        key: meta::log_start_key(partition_key),
        value: meta::encode(&truncation.log_start_offset),
    });
    ops
}
