//! DeleteRecords (`kafka-delete-records.sh`, AdminClient.deleteRecords, Kafka Streams'
//! purge of repartition topics): the partition's leader moves its log start offset up to
//! the offset asked for (-1: the high watermark), drops the segments wholly below it, and
//! answers the new log start (the "low watermark") once every other in-sync replica has
//! taken it (followers follow the leader's log start as their fetch answers carry it,
//! `cluster/follower.rs`, as Kafka's do, and report their own in their fetches,
//! `cluster/replication.rs`) and the change is durable here. Past the request's timeout
//! the answer is REQUEST_TIMED_OUT; the leader's own log start has moved by then.
//!
//! A tiered partition's log start spans both tiers (`node/tier.rs`, "The log start"):
//! with a remote log starting below the offset, the leader asks the controller to move the
//! remote log start up to it, and the answer also waits for the applied image to show it;
//! every replica then deletes its local records below it, and the leader the objects of
//! the remote segments wholly below it. The leader deletes locally at once only up to the
//! remote log's end, so the remote log never has to continue past a local gap.
//!
//! Refusals, as Kafka's: an offset above the high watermark (or negative other than -1)
//! is OFFSET_OUT_OF_RANGE; a topic whose `cleanup.policy` lacks `delete` is
//! POLICY_VIOLATION; a replica that does not lead is NOT_LEADER_OR_FOLLOWER.
//!
//! Invariant: the log start never passes the high watermark, so nothing a producer or an
//! acks=all waiter still waits on disappears.

use weir_wire::domain::{
    ApiResponse, DeleteRecordsPartitionResult, DeleteRecordsRequest, DeleteRecordsResponse,
    DeleteRecordsTopicResult, TopicRef,
};
use weir_wire::error::ErrorCode;

use super::Node;
use crate::event::RequestId;
use crate::time::Now;
use crate::topic::PartitionId;

/// Kafka's "delete up to the high watermark" offset.
const HIGH_WATERMARK: i64 = -1;

impl Node {
    pub(super) fn delete_records(
        &mut self,
        now: Now,
        id: RequestId,
        request: DeleteRecordsRequest,
    ) {
        if let Err((error, message)) = self.check_room_for_changes() {
            let request = weir_wire::domain::ApiRequest::DeleteRecords(request);
            let response = super::errors::error_response(&request, error, &message);
            self.respond(id, response);
            return;
        }
        // Every partition answered with its start, moved now or before: a retry after a
        // timed-out answer waits for the followers too.
        let mut served = Vec::new();
        let mut remote_starts = Vec::new();
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in &request.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for (partition, offset) in &topic.partitions {
                let result = self.delete_partition_records(now, &topic.name, *partition, *offset);
                let (low_watermark, error) = match result {
                    Ok(deleted) => {
                        served.push((deleted.key, deleted.low_watermark));
                        remote_starts.extend(deleted.remote_start.map(|s| (deleted.key, s)));
                        (deleted.low_watermark, ErrorCode::NONE)
                    }
                    Err(error) => (-1, error),
                };
                partitions.push(DeleteRecordsPartitionResult {
                    partition: *partition,
                    low_watermark,
                    error,
                });
            }
            topics.push(DeleteRecordsTopicResult {
                name: topic.name.clone(),
                partitions,
            });
        }
        let response = ApiResponse::DeleteRecords(DeleteRecordsResponse {
            throttle_time_ms: 0,
            topics,
        });
        // Kafka answers once the replicas reached the new start: here, once every other
        // in-sync replica was told it (cluster/replication.rs), then after the local sync.
        let timeout_ms = u64::try_from(request.timeout_ms).unwrap_or(0);
        if let Some(response) = self.respond_when_followers_fetched(
            now,
            id,
            response,
            &served,
            remote_starts,
            timeout_ms,
        ) {
            self.respond_when_durable(id, response, None);
        }
    }

    /// One partition's deletion, or why not.
    fn delete_partition_records(
        &mut self,
        now: Now,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<Deleted, ErrorCode> {
        let key = self.resolve_partition(&TopicRef::Name(topic.to_owned()), partition)?;
        let leader_epoch = self.serving_epoch(key)?;
        let node_config = &self.config;
        let topic_state = self
            .topics
            .get(&key.topic)
            .ok_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)?;
        if !topic_state.config.cleanup_policy(node_config).delete {
            return Err(ErrorCode::POLICY_VIOLATION);
        }
        // A tiered partition's remote log: its start and end.
        let remote = (self.tiered(topic_state))
            .then(|| {
                self.cluster
                    .meta
                    .image
                    .remote_log(key.topic.as_u128(), partition)
            })
            .flatten()
            .map(|remote| (remote.log_start_offset, remote.end_offset()));
        let log = self
            .log_mut(key)
            .ok_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)?;
        let high_watermark = log.high_watermark();
        let target = match offset {
            HIGH_WATERMARK => high_watermark,
            offset if (0..=high_watermark).contains(&offset) => offset,
            _ => return Err(ErrorCode::OFFSET_OUT_OF_RANGE),
        };
        let mut deleted = Deleted {
            key,
            low_watermark: log.log_start_offset().max(target),
            remote_start: None,
        };
        let local_target = match remote {
            Some((remote_start, remote_end)) => {
                // Both tiers together start at the remote start (it reaches the local
                // log: local copies go only once uploaded).
                deleted.low_watermark = remote_start.min(log.log_start_offset()).max(target);
                if remote_start < target {
                    deleted.remote_start = Some(target);
                }
                target.min(remote_end)
            }
            None => target,
        };
        if let Some(truncation) = self.move_log_start(key, local_target) {
            tracing::info!(
                topic,
                partition,
                log_start_offset = truncation.log_start_offset,
                segments = truncation.removed.len(),
                "records deleted (DeleteRecords)"
            );
        }
        if let Some(below) = deleted.remote_start {
            tracing::info!(
                topic,
                partition,
                below,
                "remote records deleted (DeleteRecords)"
            );
            self.ask_remote_deletion(now, key, leader_epoch, below);
        }
        Ok(deleted)
    }
}

/// What one partition's DeleteRecords did.
struct Deleted {
    key: PartitionId,
    /// The partition's log start once the deletion is done (Kafka's low watermark).
    low_watermark: i64,
    /// The remote log start the applied image must reach first (tiered partitions).
    remote_start: Option<i64>,
}
