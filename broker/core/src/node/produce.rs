//! Produce: validate each partition's batch, assign offsets, append, and answer once the
//! append is durable (acks=1/all) or at once (acks=0).
//!
//! Invariant: a batch reaches storage only after it passed CRC and format validation, the
//! size limit and the one-batch rule; its base offset is the partition's log end offset.

use bytes::BytesMut;
use weir_wire::batch::{
    set_base_offset, set_max_timestamp_log_append, set_partition_leader_epoch, validate_batches,
    BatchError, BatchHeader,
};
use weir_wire::domain::{
    ApiResponse, ProducePartition, ProducePartitionResponse, ProduceRequest, ProduceResponse,
    ProduceTopicResponse, TopicRef,
};
use weir_wire::error::ErrorCode;

use super::{Node, LEADER_EPOCH, PRODUCE_TIMEOUT_MS_MIN};
use crate::event::RequestId;
use crate::meta;
use crate::partition::BatchAppend;
use crate::storage::StorageOp;
use crate::time::Now;
use crate::topic_config::TimestampType;

/// A partition-level produce failure.
type Refusal = (ErrorCode, String);

impl Node {
    /// Produce: validate and append each partition's batch, then answer. acks=0 is answered
    /// at once (the driver drops the answer unless it carries an error); acks=1/all once the
    /// sync covering the appends completes, or REQUEST_TIMED_OUT if it takes too long.
    pub(super) fn produce(&mut self, now: Now, id: RequestId, request: ProduceRequest) {
        let acks_valid = matches!(request.acks, -1..=1);
        let waits = request.acks != 0;
        if waits && self.sync_waiters.is_full() {
            // Back-pressure before appending: nothing is written that could not be answered.
            let message = "broker overloaded: too many produce requests waiting for a sync";
            let request = weir_wire::domain::ApiRequest::Produce(request);
            let response =
                super::errors::error_response(&request, ErrorCode::REQUEST_TIMED_OUT, message);
            self.respond(id, response);
            return;
        }
        // Partitions are independent: one refused batch does not stop the others (Kafka's rule).
        let mut appended = false;
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in &request.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for partition in &topic.partitions {
                let result = if acks_valid {
                    self.produce_partition(now, &topic.topic, partition)
                } else {
                    Err((
                        ErrorCode::INVALID_REQUIRED_ACKS,
                        format!("acks={}", request.acks),
                    ))
                };
                appended |= result.is_ok();
                partitions.push(partition_response(partition.partition, result));
            }
            topics.push(ProduceTopicResponse {
                topic: topic.topic.clone(),
                partitions,
            });
        }
        let response = ApiResponse::Produce(ProduceResponse {
            topics,
            throttle_time_ms: 0,
        });
        // Every append of this request is covered by the same (next) sync id, so one waiter
        // suffices. A request whose partitions all failed wrote nothing and is answered now.
        if appended && waits {
            let timeout_ms = u64::try_from(request.timeout_ms)
                .unwrap_or(0)
                .max(PRODUCE_TIMEOUT_MS_MIN);
            self.respond_when_durable(id, response, Some(now.instant.add_ms(timeout_ms)));
        } else {
            self.respond(id, response);
        }
    }

    /// Validate and append one partition's batch; returns (base offset, log append time,
    /// log start offset).
    fn produce_partition(
        &mut self,
        now: Now,
        topic: &TopicRef,
        partition: &ProducePartition,
    ) -> Result<(i64, i64, i64), Refusal> {
        let (topic_id, index) = self
            .resolve_partition(topic, partition.partition)
            .map_err(|code| (code, String::new()))?;
        let topic = self.topics.get(&topic_id).expect("resolved topic exists");
        let max_message_bytes = topic.config.max_message_bytes(&self.config);
        let segment_bytes = topic.config.segment_bytes(&self.config);
        let timestamp_type = topic.config.timestamp_type();
        // A null record set is treated as empty and refused below.
        let records = partition.records.as_deref().unwrap_or_default();
        let header = validate_one_batch(records, max_message_bytes)?;
        // Kafka stores what the producer sent with the broker's offsets, epoch and (for
        // LogAppendTime topics) timestamp; the CRC covers neither offset nor epoch.
        let mut batch = BytesMut::from(records);
        let log = &self.topics[&topic_id].partitions[index];
        let base_offset = log.log_end_offset();
        // The batch occupies last_offset_delta + 1 offsets, whatever its record count says
        // (validate_batches checked that the two agree for client batches).
        let offset_count = i64::from(header.last_offset_delta) + 1;
        if base_offset.checked_add(offset_count).is_none() {
            return Err((ErrorCode::INVALID_RECORD, "offsets exhausted".into()));
        }
        set_base_offset(&mut batch, base_offset);
        set_partition_leader_epoch(&mut batch, LEADER_EPOCH);
        let (max_timestamp, log_append_time) = match timestamp_type {
            TimestampType::LogAppendTime => {
                set_max_timestamp_log_append(&mut batch, now.wall_ms);
                (now.wall_ms, now.wall_ms)
            }
            TimestampType::CreateTime => (header.max_timestamp, -1),
        };
        let append = BatchAppend {
            offset_count,
            bytes: batch.len() as u64,
            max_timestamp,
        };
        // The next sync covers this append; group commit guarantees it will be emitted.
        let sync_id = self.sync.next_id;
        let log = self
            .topics
            .get_mut(&topic_id)
            .and_then(|t| t.partitions.get_mut(index));
        let log = log.expect("resolved partition exists");
        let appended = log.append(append, sync_id, segment_bytes);
        let (partition_key, log_start_offset) = (log.partition_key(), log.log_start_offset());
        assert_eq!(
            appended.base_offset, base_offset,
            "append must land at the log end"
        );
        // A closed segment's summary goes to meta before the append into the new segment, so a
        // durable summary always describes durable data.
        if let Some(rolled) = appended.rolled {
            let key = meta::segment_key(partition_key, rolled.base_offset);
            self.emit(StorageOp::PutMeta {
                key,
                value: meta::encode(&rolled),
            });
        }
        self.emit(StorageOp::Append {
            partition_key,
            base_offset,
            last_offset: appended.last_offset,
            batch: batch.freeze(),
        });
        self.unsynced_partitions.insert((topic_id, index));
        Ok((base_offset, log_append_time, log_start_offset))
    }
}

/// Kafka's produce-side checks on a partition's records (v3+: exactly one v2 batch).
/// The checks run in Kafka's order, so clients see the same error Kafka would give for
/// a request that breaks several rules.
fn validate_one_batch(records: &[u8], max_message_bytes: i32) -> Result<BatchHeader, Refusal> {
    if records.is_empty() {
        let message = "Produce requests must have at least one record batch per partition";
        return Err((ErrorCode::INVALID_RECORD, message.into()));
    }
    let headers = validate_batches(records).map_err(batch_refusal)?;
    let [header] = headers.as_slice() else {
        let message = "Produce requests must have exactly one record batch per partition";
        return Err((ErrorCode::INVALID_RECORD, message.into()));
    };
    if header.size_bytes() != records.len() {
        let message = format!(
            "{} bytes of records hold a {}-byte batch",
            records.len(),
            header.size_bytes()
        );
        return Err((ErrorCode::CORRUPT_MESSAGE, message));
    }
    if header.record_count <= 0 || header.last_offset_delta < 0 {
        return Err((
            ErrorCode::INVALID_RECORD,
            "a record batch must hold records".into(),
        ));
    }
    if header.is_control() {
        return Err((
            ErrorCode::INVALID_RECORD,
            "clients cannot produce control batches".into(),
        ));
    }
    // Appending a transactional batch without a transaction coordinator would leave its
    // records invisible to read_committed consumers forever (no commit marker will come).
    if header.is_transactional() {
        let message = "transactional batches need a transaction (not supported yet)";
        return Err((ErrorCode::INVALID_TXN_STATE, message.into()));
    }
    let size = header.size_bytes();
    if size > usize::try_from(max_message_bytes).unwrap_or(0) {
        let message = format!(
            "The record batch is {size} bytes, above max.message.bytes {max_message_bytes}"
        );
        return Err((ErrorCode::MESSAGE_TOO_LARGE, message));
    }
    Ok(*header)
}

/// Map a batch validation failure to Kafka's error code.
fn batch_refusal(error: BatchError) -> Refusal {
    let code = match error {
        BatchError::UnsupportedMagic(_) => ErrorCode::INVALID_RECORD,
        _ => ErrorCode::CORRUPT_MESSAGE,
    };
    (code, error.to_string())
}

/// The per-partition answer: offsets on success, -1s and the message on failure.
fn partition_response(
    partition: i32,
    result: Result<(i64, i64, i64), Refusal>,
) -> ProducePartitionResponse {
    match result {
        Ok((base_offset, log_append_time_ms, log_start_offset)) => ProducePartitionResponse {
            partition,
            error: ErrorCode::NONE,
            base_offset,
            log_append_time_ms,
            log_start_offset,
            error_message: None,
        },
        Err((error, message)) => ProducePartitionResponse {
            partition,
            error,
            base_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: -1,
            error_message: (!message.is_empty()).then_some(message),
        },
    }
}
