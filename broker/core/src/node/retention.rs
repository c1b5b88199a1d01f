//! Retention: every `retention_check_interval_ms`, delete whole logical segments that are
//! older than `retention.ms` or beyond `retention.bytes`, and move the log start offset.
//!
//! Invariant: only data below the high watermark is deleted, so the log start offset never
//! passes the high watermark and nothing a producer waits on disappears.

use super::Node;
use crate::meta;
use crate::storage::StorageOp;
use crate::time::Now;

impl Node {
    pub(super) fn enforce_retention(&mut self, now: Now) {
        let mut ops = Vec::new();
        let config = &self.config;
        for topic in self.topics.values_mut() {
            // `cleanup.policy=compact` alone keeps data by key, not by time or size.
            if !topic.config.cleanup_policy(config).delete {
                continue;
            }
            let retention_ms = topic.config.retention_ms(&self.config);
            let retention_bytes = topic.config.retention_bytes(&self.config);
            for log in &mut topic.partitions {
                let Some(truncation) =
                    log.enforce_retention(now.wall_ms, retention_ms, retention_bytes)
                else {
                    continue;
                };
                let partition_key = log.partition_key();
                log.txns.truncate_prefix(truncation.log_start_offset);
                tracing::debug!(
                    topic = topic.name,
                    partition_key,
                    log_start_offset = truncation.log_start_offset,
                    segments = truncation.removed.len(),
                    "retention deleted segments"
                );
                // Data first, then the meta saying it is gone (recovery tolerates storage
                // being ahead of the meta, see partition::plan_recovery).
                ops.push(StorageOp::TruncatePrefix {
                    partition_key,
                    offset: truncation.log_start_offset,
                });
                for segment in &truncation.removed {
                    ops.push(StorageOp::DeleteMeta {
                        key: meta::segment_key(partition_key, segment.base_offset),
                    });
                }
                ops.push(StorageOp::PutMeta {
                    key: meta::log_start_key(partition_key),
                    value: meta::encode(&truncation.log_start_offset),
                });
            }
        }
        for op in ops {
            self.emit(op);
        }
    }
}
