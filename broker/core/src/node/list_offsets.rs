//! ListOffsets: the sentinels (-1 latest, -2 earliest, -3 max timestamp, -4 earliest
//! local) are answered from memory; a timestamp query becomes a [`TimestampLookup`] the
//! driver resolves in storage, narrowed to the first segment that can hold the answer.
//!
//! Invariant: no answer points at or above the high watermark.
//!
//! A new leader whose high watermark has not reached the start of its epoch answers
//! OFFSET_NOT_AVAILABLE (KIP-207; LEADER_NOT_AVAILABLE before v5) where the answer would
//! be the watermark or "nothing that new": the watermark may still lag records the
//! previous leader acknowledged. A timestamp lookup the driver resolves is bounded by the
//! watermark too, and carries that error for the driver to answer if it finds nothing.
//!
//! A record found by timestamp is answered with the epoch its batch was written in, as
//! Kafka does: a consumer seeking there validates against that epoch (KIP-320), and an
//! epoch older than the record's would look like a truncation to it.

use weir_wire::domain::{
    ApiResponse, ListOffsetsPartition, ListOffsetsPartitionResponse, ListOffsetsRequest,
    ListOffsetsResponse, ListOffsetsTopicResponse, TimestampLookup, TopicRef, EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP, MAX_TIMESTAMP,
};
use weir_wire::error::ErrorCode;

use super::Node;
use crate::cluster::image::RemoteLog;
use crate::event::RequestId;
use crate::partition::PartitionLog;

/// KIP-405's "earliest offset still on local disk": the log start without tiered storage.
const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
/// KIP-1005's "latest tiered offset": nothing is tiered, so there is none.
const LATEST_TIERED_TIMESTAMP: i64 = -5;

impl Node {
    /// ListOffsets: answered at once; timestamp queries carry a lookup for the driver.
    pub(super) fn list_offsets(&mut self, id: RequestId, request: ListOffsetsRequest) {
        let topics = request
            .topics
            .iter()
            .map(|topic| ListOffsetsTopicResponse {
                name: topic.name.clone(),
                partitions: topic
                    .partitions
                    .iter()
                    .map(|partition| {
                        let mut answer = self.list_partition_offset(&topic.name, partition);
                        // read_committed: "latest" is the last stable offset.
                        if request.isolation_level == 1
                            && partition.timestamp == LATEST_TIMESTAMP
                            && answer.error.is_ok()
                        {
                            if let Some(lso) =
                                self.last_stable_offset(&topic.name, partition.partition)
                            {
                                answer.offset = lso;
                            }
                        }
                        answer
                    })
                    .collect(),
            })
            .collect();
        let response = ListOffsetsResponse {
            throttle_time_ms: 0,
            topics,
        };
        self.respond(id, ApiResponse::ListOffsets(response));
    }

    /// A partition's last stable offset.
    fn last_stable_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        let key = (self.resolve_partition(&TopicRef::Name(topic.to_string()), partition)).ok()?;
        let log = self.partition(key)?;
        Some(log.txns.last_stable_offset(log.high_watermark()))
    }

    /// One partition's answer, or the error resolving it.
    fn list_partition_offset(
        &self,
        topic: &str,
        query: &ListOffsetsPartition,
    ) -> ListOffsetsPartitionResponse {
        let topic = TopicRef::Name(topic.to_string());
        let resolved = self
            .resolve_partition(&topic, query.partition)
            .and_then(|key| {
                let epoch = self.serving_epoch(key)?;
                super::check_epoch_against(query.current_leader_epoch, epoch)?;
                Ok((
                    key,
                    self.partition(key).expect("resolved partition exists"),
                    epoch,
                ))
            });
        match resolved {
            Ok((key, log, epoch)) => {
                let remote = self.remote_view(key, log);
                let mut answer = answer(log, remote, query, epoch);
                // KIP-207: an answer at or past the watermark is not final while the
                // watermark lags the epoch start (earliest offsets and found records are).
                // A refused query (a bad timestamp) keeps its own error; a lookup left for
                // the driver carries the error to answer if it finds nothing.
                let past_end = answer.error.is_ok()
                    && match query.timestamp {
                        LATEST_TIMESTAMP => true,
                        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => false,
                        _ => answer.offset < 0,
                    };
                if past_end && self.epoch_start_unreached(key, log.high_watermark()) {
                    if answer.lookup.is_none() {
                        return not_found(query.partition, ErrorCode::OFFSET_NOT_AVAILABLE);
                    }
                    answer.error = ErrorCode::OFFSET_NOT_AVAILABLE;
                }
                answer
            }
            Err(error) => not_found(query.partition, error),
        }
    }
}

/// Answer one query against a partition.
///
/// `remote` is a tiered partition's remote log and the log start it gives. Timestamp
/// queries answered from remote data are coarser than local ones: the first offset of the
/// first uploaded segment whose newest record reaches the timestamp (never after the
/// record asked for, so a consumer seeking there skips nothing).
fn answer(
    log: &PartitionLog,
    remote: Option<(&RemoteLog, i64)>,
    query: &ListOffsetsPartition,
    leader_epoch: i32,
) -> ListOffsetsPartitionResponse {
    let found = |offset: i64, timestamp: i64| ListOffsetsPartitionResponse {
        partition: query.partition,
        error: ErrorCode::NONE,
        timestamp,
        offset,
        leader_epoch,
        lookup: None,
    };
    match query.timestamp {
        // read_committed gets the last stable offset instead (list_offsets).
        LATEST_TIMESTAMP => found(log.high_watermark(), -1),
        EARLIEST_TIMESTAMP => found(remote.map_or(log.log_start_offset(), |(_, s)| s), -1),
        EARLIEST_LOCAL_TIMESTAMP => found(log.log_start_offset(), -1),
        // Memory knows the batch holding the largest timestamp; Kafka answers the offset of
        // the record itself, so the driver searches that batch for the first record carrying
        // it (a timestamp lookup starting at the batch).
        MAX_TIMESTAMP => match log.max_timestamp() {
            Some((timestamp, batch_offset)) if batch_offset < log.high_watermark() => {
                ListOffsetsPartitionResponse {
                    lookup: Some(TimestampLookup {
                        partition_key: log.partition_key(),
                        timestamp,
                        start_offset: batch_offset,
                        end_offset: log.high_watermark(),
                    }),
                    ..not_found(query.partition, ErrorCode::NONE)
                }
            }
            // The newest timestamp is not committed yet: Kafka answers none rather than an
            // offset at or past the watermark.
            Some(_) | None => not_found(query.partition, ErrorCode::NONE),
        },
        // KIP-1005: the highest offset in remote storage.
        LATEST_TIERED_TIMESTAMP => match remote {
            Some((remote, _)) => found(remote.end_offset() - 1, -1),
            None => not_found(query.partition, ErrorCode::NONE),
        },
        timestamp if timestamp < 0 => not_found(query.partition, ErrorCode::INVALID_REQUEST),
        timestamp => match remote.and_then(|(remote, start)| {
            (remote.segments.values())
                .filter(|s| s.base_offset < log.log_start_offset())
                .find(|s| s.max_timestamp >= timestamp)
                .map(|s| (s.base_offset.max(start), s.max_timestamp))
        }) {
            Some((offset, segment_max)) => found(offset, segment_max),
            None => local_timestamp_answer(log, query, timestamp),
        },
    }
}

/// A timestamp query over the local log.
fn local_timestamp_answer(
    log: &PartitionLog,
    query: &ListOffsetsPartition,
    timestamp: i64,
) -> ListOffsetsPartitionResponse {
    {
        match log.timestamp_search_start(timestamp) {
            Some(start_offset) => ListOffsetsPartitionResponse {
                lookup: Some(TimestampLookup {
                    partition_key: log.partition_key(),
                    timestamp,
                    start_offset,
                    end_offset: log.high_watermark(),
                }),
                ..not_found(query.partition, ErrorCode::NONE)
            },
            // No record that new: Kafka answers offset -1, timestamp -1.
            None => not_found(query.partition, ErrorCode::NONE),
        }
    }
}

/// An answer without an offset: `error`, or NONE with -1/-1 for "no such record".
fn not_found(partition: i32, error: ErrorCode) -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse {
        partition,
        error,
        timestamp: -1,
        offset: -1,
        leader_epoch: -1,
        lookup: None,
    }
}
