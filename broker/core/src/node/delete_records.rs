//! DeleteRecords (`kafka-delete-records.sh`, AdminClient.deleteRecords, Kafka Streams'
//! purge of repartition topics): the partition's leader moves its log start offset up to
//! the offset asked for (-1: the high watermark), drops the segments wholly below it, and
//! answers the new log start (the "low watermark") once the change is durable. Followers
//! follow the leader's log start as their fetches report it (`cluster/follower.rs`), as
//! Kafka's do.
//!
//! Refusals, as Kafka's: an offset above the high watermark (or negative other than -1)
//! is OFFSET_OUT_OF_RANGE; a topic whose `cleanup.policy` lacks `delete` is
//! POLICY_VIOLATION; a replica that does not lead is NOT_LEADER_OR_FOLLOWER. Weir also
//! refuses tiered topics (POLICY_VIOLATION): their remote segments below the new start
//! would stay readable.
//!
//! Invariant: the log start never passes the high watermark, so nothing a producer or an
//! acks=all waiter still waits on disappears.

use weir_wire::domain::{
    ApiResponse, DeleteRecordsPartitionResult, DeleteRecordsRequest, DeleteRecordsResponse,
    DeleteRecordsTopicResult, TopicRef,
};
use weir_wire::error::ErrorCode;

use super::retention::truncation_ops;
use super::Node;
use crate::event::RequestId;

/// Kafka's "delete up to the high watermark" offset.
const HIGH_WATERMARK: i64 = -1;

impl Node {
    pub(super) fn delete_records(&mut self, id: RequestId, request: DeleteRecordsRequest) {
        if self.sync_waiters.is_full() {
            let response = super::errors::error_response(
                &weir_wire::domain::ApiRequest::DeleteRecords(request),
                ErrorCode::REQUEST_TIMED_OUT,
                "broker overloaded, retry later",
            );
            self.respond(id, response);
            return;
        }
        let topics = (request.topics.iter())
            .map(|topic| DeleteRecordsTopicResult {
                name: topic.name.clone(),
                partitions: (topic.partitions.iter())
                    .map(|(partition, offset)| {
                        let result =
                            self.delete_partition_records(&topic.name, *partition, *offset);
                        let (low_watermark, error) = match result {
                            Ok(low_watermark) => (low_watermark, ErrorCode::NONE),
                            Err(error) => (-1, error),
                        };
                        DeleteRecordsPartitionResult {
                            partition: *partition,
                            low_watermark,
                            error,
                        }
                    })
                    .collect(),
            })
            .collect();
        let response = DeleteRecordsResponse {
            throttle_time_ms: 0,
            topics,
        };
        self.respond_when_durable(id, ApiResponse::DeleteRecords(response), None);
    }

    /// One partition: its new log start, or why not.
    fn delete_partition_records(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<i64, ErrorCode> {
        let key = self.resolve_partition(&TopicRef::Name(topic.to_owned()), partition)?;
        self.serving_epoch(key)?;
        let node_config = &self.config;
        let topic_state = self
            .topics
            .get(&key.topic)
            .ok_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)?;
        if !topic_state.config.cleanup_policy(node_config).delete || self.tiered(topic_state) {
            return Err(ErrorCode::POLICY_VIOLATION);
        }
        let log = self
            .log_mut(key)
            .ok_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)?;
        let high_watermark = log.high_watermark();
        let target = match offset {
            HIGH_WATERMARK => high_watermark,
            offset if (0..=high_watermark).contains(&offset) => offset,
            _ => return Err(ErrorCode::OFFSET_OUT_OF_RANGE),
        };
        let Some(truncation) = log.delete_records_below(target) else {
            return Ok(log.log_start_offset());
        };
        tracing::info!(
            topic,
            partition,
            log_start_offset = truncation.log_start_offset,
            segments = truncation.removed.len(),
            "records deleted (DeleteRecords)"
        );
        let ops = truncation_ops(log, &truncation);
        for op in ops {
            self.emit(op);
        }
        Ok(truncation.log_start_offset)
    }
}
