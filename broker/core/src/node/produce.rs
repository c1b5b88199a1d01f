//! Produce: validate each partition's batch, assign offsets, append, and answer once the
//! append is durable (acks=1/all) or at once (acks=0).
//!
//! Invariant: a batch reaches storage only after it passed CRC and format validation, the
//! size limit, the one-batch rule and (when it carries a producer id) the idempotence
//! sequence checks of `producer_state`, and (on a topic with
//! `confluent.*.schema.validation`) the schema check of every record (`schema_check`); its
//! base offset is the partition's log end offset.
//!
//! A retry of a batch already appended (same producer, epoch and sequences as one of its last
//! five) is not appended again: it is answered with the original offsets, once the original
//! is durable. The answer waits for the sync covering the original, which is the one in
//! flight or the next; never for a sync that may not be emitted.

use bytes::BytesMut;
use weir_wire::batch::{
    set_base_offset, set_max_timestamp_log_append, set_partition_leader_epoch, validate_batches,
    BatchError, BatchHeader,
};
use weir_wire::domain::{
    Acks, ApiResponse, ProducePartition, ProducePartitionResponse, ProduceRecordError,
    ProduceRequest, ProduceResponse, ProduceTopicResponse, TopicRef,
};
use weir_wire::error::ErrorCode;

use super::append::AppendOrigin;
use super::{Node, PRODUCE_TIMEOUT_MS_MIN};
use crate::buggify::Point;
use crate::event::RequestId;
use crate::producer_state::SequenceCheck;
use crate::time::Now;
use crate::topic::PartitionId;
use crate::topic_config::TimestampType;

/// A partition-level produce failure.
type Refusal = (ErrorCode, String);

/// A refused partition: the error, its message and (INVALID_RECORD from schema
/// validation) the record that made the batch be refused.
#[derive(Debug)]
struct PartitionRefusal {
    error: ErrorCode,
    message: String,
    record_errors: Vec<ProduceRecordError>,
}

impl From<Refusal> for PartitionRefusal {
    fn from((error, message): Refusal) -> Self {
        PartitionRefusal {
            error,
            message,
            record_errors: Vec::new(),
        }
    }
}

/// A partition-level produce success.
#[derive(Debug, Clone, Copy)]
struct Accepted {
    base_offset: i64,
    log_append_time_ms: i64,
    log_start_offset: i64,
    /// The sync that must complete before the answer (None: durable already).
    durable_after: Option<u64>,
    /// The partition and the offset after the batch (acks=all in cluster mode waits for
    /// the high watermark to reach it).
    replicated_end: (PartitionId, i64),
}

impl Node {
    /// Produce: validate and append each partition's batch, then answer. acks=0 is answered
    /// at once (the driver drops the answer unless it carries an error); acks=1/all once the
    /// sync covering the appends completes, or REQUEST_TIMED_OUT if it takes too long.
    pub(super) fn produce(&mut self, now: Now, id: RequestId, request: ProduceRequest) {
        let waits = request.acks != Acks::None;
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
        let mut durable_after: Option<u64> = None;
        let mut replicated_needs = Vec::new();
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in &request.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for partition in &topic.partitions {
                let result = self.produce_partition(now, &topic.topic, partition, request.acks);
                if let Ok(accepted) = &result {
                    durable_after = durable_after.max(accepted.durable_after);
                    let (key, end) = accepted.replicated_end;
                    replicated_needs.push((key, end));
                }
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
        // Every append of this request is covered by the same (next) sync id and duplicates
        // by that one or the one in flight, so one waiter on the latest suffices. A request
        // whose partitions all failed wrote nothing and is answered now.
        // acks=all: the answer waits for the in-sync replicas (the high
        // watermark), which covers the leader's own sync too.
        if request.acks == Acks::All && !replicated_needs.is_empty() {
            let timeout_ms = u64::try_from(request.timeout_ms)
                .unwrap_or(0)
                .max(PRODUCE_TIMEOUT_MS_MIN);
            self.respond_when_replicated(now, id, response, replicated_needs, timeout_ms);
            return;
        }
        match durable_after {
            Some(sync_id) if waits => {
                let timeout_ms = u64::try_from(request.timeout_ms)
                    .unwrap_or(0)
                    .max(PRODUCE_TIMEOUT_MS_MIN);
                let deadline = Some(now.instant.add_ms(timeout_ms));
                if sync_id == self.sync.next_id {
                    self.respond_when_durable(id, response, deadline);
                } else {
                    self.respond_after_sync(id, response, deadline, sync_id);
                }
            }
            _ => self.respond(id, response),
        }
    }

    /// Park `response` until sync `sync_id` (emitted, in flight) completes: the answer to a
    /// duplicate whose original is not durable yet.
    fn respond_after_sync(
        &mut self,
        id: RequestId,
        response: ApiResponse,
        deadline: Option<crate::time::Instant>,
        sync_id: u64,
    ) {
        assert!(
            sync_id > self.sync.completed,
            "sync {sync_id} already completed ({})",
            self.sync.completed
        );
        assert!(
            self.sync.in_flight == Some(sync_id),
            "sync {sync_id} is not in flight ({:?})",
            self.sync.in_flight
        );
        let waiter = super::SyncWaiter { sync_id, response };
        match self.sync_waiters.insert(id, deadline, waiter) {
            Ok(()) => {
                self.sync_order.insert((sync_id, id));
            }
            // produce() checked for room before changing anything.
            Err(_) => panic!("sync waiters full for {id:?}: produce checks first"),
        }
    }

    /// Validate and append one partition's batch; returns (base offset, log append time,
    /// log start offset).
    fn produce_partition(
        &mut self,
        now: Now,
        topic: &TopicRef,
        partition: &ProducePartition,
        acks: Acks,
    ) -> Result<Accepted, PartitionRefusal> {
        let key = self
            .resolve_partition(topic, partition.partition)
            .map_err(|code| (code, String::new()))?;
        let (topic_id, index) = (key.topic, key.index());
        let leader_epoch = self.check_produce_leadership(key, acks)?;
        let topic = self.topics.get(&topic_id).expect("resolved topic exists");
        let max_message_bytes = topic.config.max_message_bytes(&self.config);
        // BUGGIFY: roll the active segment at this append, however full it is.
        let segment_bytes = if self.buggify.fire(Point::EarlyRoll) {
            1
        } else {
            topic.config.segment_bytes(&self.config)
        };
        let timestamp_type = topic.config.timestamp_type();
        // A null record set is treated as empty and refused below.
        let records = partition.records.as_deref().unwrap_or_default();
        let header = validate_one_batch(records, max_message_bytes)?;
        // A compacted topic keeps the latest record of each key: a record without one could
        // never be found again, so Kafka refuses it (INVALID_RECORD).
        if self.compacts(topic) && !header.is_control() {
            crate::compaction::check_keys(records).map_err(|error| {
                let message = format!("compacted topic: {error}");
                (error.error_code(), message)
            })?;
        }
        if let Some(validation) = topic.config.schema_validation() {
            let validator = self.schema_validator.as_deref();
            crate::schema_check::check_batch(&topic.name, records, validation, validator)
                .map_err(schema_refusal)?;
        }
        let idempotent = header.producer_id >= 0;
        let transactional = header.is_transactional();
        if transactional {
            if !idempotent {
                let message = "a transactional batch needs a producer id";
                return Err((ErrorCode::INVALID_RECORD, message.into()).into());
            }
            // KIP-890: only partitions the producer's current epoch added to its ongoing
            // transaction take its batches, or an unfinished transaction could hold the LSO.
            let name = self.topics[&topic_id].name.clone();
            self.check_transactional_batch(&header, &name, partition.partition)?;
        }
        if idempotent {
            let log = &self.topics[&topic_id].partitions[index];
            if let SequenceCheck::Duplicate(original) = log.producers.check(&header)? {
                tracing::debug!(
                    producer_id = header.producer_id,
                    base_sequence = header.base_sequence,
                    base_offset = original.base_offset,
                    "duplicate batch answered with its original offsets"
                );
                return Ok(Accepted {
                    base_offset: original.base_offset,
                    log_append_time_ms: original.log_append_time_ms,
                    log_start_offset: log.log_start_offset(),
                    durable_after: log.sync_covering(original.last_offset),
                    replicated_end: (key, original.last_offset + 1),
                });
            }
        }
        // Kafka stores what the producer sent with the broker's offsets, epoch and (for
        // LogAppendTime topics) timestamp; the CRC covers neither offset nor epoch.
        let mut batch = BytesMut::from(records);
        let log = &self.topics[&topic_id].partitions[index];
        let base_offset = log.log_end_offset();
        // The batch occupies last_offset_delta + 1 offsets, whatever its record count says
        // (validate_batches checked that the two agree for client batches).
        let offset_count = i64::from(header.last_offset_delta) + 1;
        if base_offset.checked_add(offset_count).is_none() {
            return Err((ErrorCode::INVALID_RECORD, "offsets exhausted".into()).into());
        }
        set_base_offset(&mut batch, base_offset);
        set_partition_leader_epoch(&mut batch, leader_epoch);
        let log_append_time = match timestamp_type {
            TimestampType::LogAppendTime => {
                set_max_timestamp_log_append(&mut batch, now.wall_ms);
                now.wall_ms
            }
            TimestampType::CreateTime => -1,
        };
        let appended = self
            .append_batch(
                now.wall_ms,
                key,
                batch.freeze(),
                segment_bytes,
                AppendOrigin::Client,
            )
            .map_err(|code| (code, String::new()))?;
        Ok(Accepted {
            base_offset,
            log_append_time_ms: log_append_time,
            log_start_offset: appended.log_start_offset,
            durable_after: Some(appended.sync_id),
            replicated_end: (key, appended.last_offset + 1),
        })
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
    let size = header.size_bytes();
    if size > usize::try_from(max_message_bytes).unwrap_or(0) {
        let message = format!(
            "The record batch is {size} bytes, above max.message.bytes {max_message_bytes}"
        );
        return Err((ErrorCode::MESSAGE_TOO_LARGE, message));
    }
    Ok(*header)
}

/// A batch schema validation refused: INVALID_RECORD naming the record (in
/// `record_errors` too), or, when the registry could not answer yet, a retriable error
/// (Kafka clients retry NOT_ENOUGH_REPLICAS; the registry is catching up on `_schemas`).
fn schema_refusal(refusal: crate::schema_check::BatchRefusal) -> PartitionRefusal {
    if refusal.unavailable {
        return PartitionRefusal::from((ErrorCode::NOT_ENOUGH_REPLICAS, refusal.message));
    }
    PartitionRefusal {
        error: ErrorCode::INVALID_RECORD,
        record_errors: vec![ProduceRecordError {
            batch_index: refusal.batch_index,
            message: Some(refusal.message.clone()),
        }],
        message: refusal.message,
    }
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
    result: Result<Accepted, PartitionRefusal>,
) -> ProducePartitionResponse {
    match result {
        Ok(accepted) => ProducePartitionResponse {
            partition,
            error: ErrorCode::NONE,
            base_offset: accepted.base_offset,
            log_append_time_ms: accepted.log_append_time_ms,
            log_start_offset: accepted.log_start_offset,
            error_message: None,
            record_errors: Vec::new(),
        },
        Err(refusal) => ProducePartitionResponse {
            partition,
            error: refusal.error,
            base_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: -1,
            error_message: (!refusal.message.is_empty()).then_some(refusal.message),
            record_errors: refusal.record_errors,
        },
    }
}
