//! Translating edge operations into domain requests for the node: metadata, produce and
//! admin.
//!
//! Produce comes in two shapes that share [`send_batch`]:
//! - version 1 `Produce`: one record -> one record batch; the gateway picks the partition
//!   and, for idempotent records, stamps the session's producer id and per-partition
//!   sequence ([`ProducerState`], gone with the session);
//! - version 2 `ProduceBatch`: the client is the idempotent producer (producer id from
//!   `InitProducer`, its own partitions and sequence numbers), so the gateway only checks
//!   and stamps what the frame says. A batch resent after a reconnect carries the same
//!   stamp and is deduplicated by the partition's producer state in weir-core, the path
//!   every Kafka producer's retries take; the gateway keeps no producer state for it.
//!
//! Invariants:
//! - Produce requests of one session reach the node in the order the client sent them
//!   (the session prepares and *sends* each produce before reading the next frame; only
//!   the wait for the answer runs concurrently), so records of one key stay in order and
//!   idempotent sequence numbers arrive in sequence.
//! - Keyed records land where Kafka's default partitioner puts them: murmur2 of the key
//!   (`weir_wire::murmur2`), the same function every Weir client uses.
//! - The metadata cache holds at most [`TOPICS_CACHED_MAX`] topics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use uuid::Uuid;
use weir_edge::{
    Acks, EdgeError, NewRecord, NewTopic, Produce, ProduceBatch, Reply, TopicInfo,
    BATCH_RECORDS_MAX,
};
use weir_wire::domain::{
    ApiRequest, ApiResponse, CreatableTopic, CreateTopicsRequest, InitProducerIdRequest,
    MetadataRequest, ProducePartition, ProduceRequest, ProduceTopic, TopicRef,
};
use weir_wire::error::ErrorCode;
use weir_wire::records::{encode_batch, BatchOptions, Record};

use weir_runtime::Runtime;

use super::errors::{closed_error, kafka_error, unexpected};
use super::lock;
use super::route::{leader_moved, Call, Lane, Router, Ticket, ROUTE_ATTEMPTS_MAX};

/// Topics whose metadata a session keeps; beyond it the cache starts over.
pub const TOPICS_CACHED_MAX: usize = 1024;
/// How long the broker may wait for acks=all.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;
/// Timeout for CreateTopics.
const CREATE_TOPICS_TIMEOUT_MS: i32 = 30_000;

/// A topic as the session knows it.
#[derive(Debug, Clone)]
pub struct TopicMeta {
    /// Topic id (KIP-516).
    pub id: Uuid,
    /// Partition count.
    pub partitions: i32,
}

/// Topic metadata shared by a session's operations and consumers.
#[derive(Default)]
pub struct MetaCache {
    by_name: BTreeMap<String, TopicMeta>,
}

impl MetaCache {
    /// The topic's id for a name, if cached.
    pub fn id_of(&self, topic: &str) -> Option<Uuid> {
        self.by_name.get(topic).map(|meta| meta.id)
    }

    /// The topic's name for an id, if cached.
    pub fn name_of(&self, id: Uuid) -> Option<String> {
        self.by_name
            .iter()
            .find(|(_, meta)| meta.id == id)
            .map(|(name, _)| name.clone())
    }
}

/// Shared handle on the metadata cache.
pub type Meta = Arc<Mutex<MetaCache>>;

/// Ask the node for metadata of `topics` (`None` = all) and refresh the cache.
pub async fn refresh_metadata<R: Runtime>(
    router: &Router<R>,
    meta: &Meta,
    topics: Option<Vec<String>>,
    auto_create: bool,
) -> Result<Vec<(String, ErrorCode, TopicMeta, bool)>, EdgeError> {
    let request = ApiRequest::Metadata(MetadataRequest {
        topics: topics.map(|names| names.into_iter().map(TopicRef::Name).collect()),
        allow_auto_topic_creation: auto_create,
        include_cluster_authorized_operations: false,
        include_topic_authorized_operations: false,
    });
    let answer = router.local().call(request).await.map_err(closed_error)?;
    let ApiResponse::Metadata(response) = answer else {
        return Err(unexpected("Metadata"));
    };
    router.learn(&response);
    let mut found = Vec::new();
    let mut cache = lock(meta);
    for topic in response.topics {
        let Some(name) = topic.name else { continue };
        let info = TopicMeta {
            id: topic.topic_id,
            partitions: i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX),
        };
        if topic.error == ErrorCode::NONE {
            if cache.by_name.len() >= TOPICS_CACHED_MAX && !cache.by_name.contains_key(&name) {
                cache.by_name.clear();
            }
            cache.by_name.insert(name.clone(), info.clone());
        } else {
            cache.by_name.remove(&name);
        }
        found.push((name, topic.error, info, topic.is_internal));
    }
    Ok(found)
}

/// The topic's metadata, from the cache or the node.
pub async fn topic_meta<R: Runtime>(
    router: &Router<R>,
    meta: &Meta,
    topic: &str,
    auto_create: bool,
) -> Result<TopicMeta, EdgeError> {
    if let Some(known) = lock(meta).by_name.get(topic) {
        return Ok(known.clone());
    }
    let found = refresh_metadata(router, meta, Some(vec![topic.to_owned()]), auto_create).await?;
    found_topic(found, topic).map(|(info, _)| info)
}

/// The topic's metadata and internal flag from a metadata answer, or its error.
fn found_topic(
    found: Vec<(String, ErrorCode, TopicMeta, bool)>,
    topic: &str,
) -> Result<(TopicMeta, bool), EdgeError> {
    match found.into_iter().find(|(name, ..)| name == topic) {
        Some((_, ErrorCode::NONE, info, internal)) if info.partitions > 0 => Ok((info, internal)),
        Some((_, ErrorCode::NONE, ..)) => Err(kafka_error(
            ErrorCode::LEADER_NOT_AVAILABLE,
            format!("topic {topic} has no partitions yet"),
        )),
        Some((_, error, ..)) => Err(kafka_error(error, format!("topic {topic}"))),
        None => Err(kafka_error(
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            format!("topic {topic} does not exist"),
        )),
    }
}

/// Describe a topic from fresh metadata (version 2 clients partition by its count).
pub async fn describe_topic<R: Runtime>(
    router: &Router<R>,
    meta: &Meta,
    topic: String,
    create: bool,
) -> Result<Reply, EdgeError> {
    let found = refresh_metadata(router, meta, Some(vec![topic.clone()]), create).await?;
    let (info, internal) = found_topic(found, &topic)?;
    Ok(Reply::Topic(TopicInfo {
        name: topic,
        partitions: info.partitions,
        internal,
    }))
}

/// The session's producer: idempotence state and the keyless round robin.
#[derive(Default)]
pub struct ProducerState {
    /// (producer id, epoch) once InitProducerId succeeded.
    id: Option<(i64, i16)>,
    /// Next sequence number per partition.
    sequences: BTreeMap<(String, i32), i32>,
    /// Next partition for keyless records, per topic.
    round_robin: BTreeMap<String, i32>,
}

/// Bound on partitions with idempotent sequence state in one session.
const SEQUENCES_MAX: usize = 100_000;

/// A produce on its way: what a retry re-sends.
pub struct SentProduce<R> {
    request: ApiRequest,
    topic: String,
    partition: i32,
    ticket: Ticket<R>,
}
/// Prepare and send one version-1 produce (to the partition's leader); returns the call to
/// await.
pub async fn send_produce<R: Runtime>(
    router: &Arc<Router<R>>,
    meta: &Meta,
    producer: &mut ProducerState,
    produce: Produce,
    wall_ms: i64,
) -> Result<(Call, SentProduce<R>), EdgeError> {
    let info = topic_meta(router, meta, &produce.topic, true).await?;
    let partition = match produce.partition {
        Some(partition) if (0..info.partitions).contains(&partition) => partition,
        Some(partition) => {
            return Err(kafka_error(
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                format!("{} has no partition {partition}", produce.topic),
            ))
        }
        None => match &produce.record.key {
            Some(key) => weir_wire::murmur2::partition_for_key(key, info.partitions),
            None => {
                let next = producer
                    .round_robin
                    .entry(produce.topic.clone())
                    .or_insert(0);
                let chosen = *next % info.partitions;
                *next = (chosen + 1) % info.partitions;
                chosen
            }
        },
    };
    let mut options = BatchOptions::default();
    if produce.idempotent {
        let (producer_id, producer_epoch) = producer_id(router, producer).await?;
        let key = (produce.topic.clone(), partition);
        if !producer.sequences.contains_key(&key) && producer.sequences.len() >= SEQUENCES_MAX {
            return Err(kafka_error(
                ErrorCode::INVALID_REQUEST,
                "too many partitions written by one idempotent session",
            ));
        }
        let sequence = producer.sequences.entry(key).or_insert(0);
        options.producer_id = producer_id;
        options.producer_epoch = producer_epoch;
        options.base_sequence = *sequence;
        *sequence = sequence.wrapping_add(1) & i32::MAX;
    }
    let records = vec![produce.record];
    send_batch(
        router,
        produce.topic,
        partition,
        produce.acks,
        options,
        records,
        wall_ms,
    )
    .await
}

/// Check and send one version-2 batch, stamped as the client says.
pub async fn send_produce_batch<R: Runtime>(
    router: &Arc<Router<R>>,
    meta: &Meta,
    batch: ProduceBatch,
    wall_ms: i64,
) -> Result<(Call, SentProduce<R>), EdgeError> {
    let options = batch_options(&batch)?;
    let mut info = topic_meta(router, meta, &batch.topic, false).await?;
    if !(0..info.partitions).contains(&batch.partition) {
        // The cache may predate partitions added since: look once more.
        let found = refresh_metadata(router, meta, Some(vec![batch.topic.clone()]), false).await?;
        info = found_topic(found, &batch.topic)?.0;
    }
    if !(0..info.partitions).contains(&batch.partition) {
        return Err(kafka_error(
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            format!("{} has no partition {}", batch.topic, batch.partition),
        ));
    }
    let ProduceBatch {
        topic,
        partition,
        acks,
        records,
        ..
    } = batch;
    send_batch(router, topic, partition, acks, options, records, wall_ms).await
}

/// The record batch options a version-2 batch asks for, or why it is malformed.
fn batch_options(batch: &ProduceBatch) -> Result<BatchOptions, EdgeError> {
    let invalid = |message: String| Err(kafka_error(ErrorCode::INVALID_REQUEST, message));
    let count = batch.records.len();
    if count == 0 || count > BATCH_RECORDS_MAX {
        return invalid(format!(
            "a batch holds 1 to {BATCH_RECORDS_MAX} records, not {count}"
        ));
    }
    let mut options = BatchOptions::default();
    let Some(stamp) = batch.sequence else {
        return Ok(options);
    };
    if stamp.producer_id < 0 || stamp.producer_epoch < 0 || stamp.base_sequence < 0 {
        return invalid(format!(
            "producer id {}, epoch {} and base sequence {} must be >= 0",
            stamp.producer_id, stamp.producer_epoch, stamp.base_sequence
        ));
    }
    // `count <= BATCH_RECORDS_MAX` fits an i32; a batch must not wrap its sequences.
    let last_delta = i32::try_from(count - 1).unwrap_or(i32::MAX);
    if stamp.base_sequence.checked_add(last_delta).is_none() {
        return invalid(format!(
            "sequences {}+{count} wrap inside the batch: end the batch at {}",
            stamp.base_sequence,
            i32::MAX
        ));
    }
    options.producer_id = stamp.producer_id;
    options.producer_epoch = stamp.producer_epoch;
    options.base_sequence = stamp.base_sequence;
    Ok(options)
}

/// Encode `records` as one batch and send it to the partition's leader (the REST proxy's
/// produce path too).
pub(crate) async fn send_batch<R: Runtime>(
    router: &Arc<Router<R>>,
    topic: String,
    partition: i32,
    acks: Acks,
    options: BatchOptions,
    records: Vec<NewRecord>,
    wall_ms: i64,
) -> Result<(Call, SentProduce<R>), EdgeError> {
    let batch_records: Vec<Record> = records
        .into_iter()
        .map(|record| Record {
            offset: 0,
            timestamp: record.timestamp.unwrap_or(wall_ms),
            key: record.key.map(Bytes::from),
            value: record.value.map(Bytes::from),
            headers: record
                .headers
                .into_iter()
                .map(|header| (header.key, header.value.map(Bytes::from)))
                .collect(),
        })
        .collect();
    let batch = encode_batch(&batch_records, &options)
        .map_err(|error| kafka_error(ErrorCode::INVALID_RECORD, error.to_string()))?;
    let request = ApiRequest::Produce(ProduceRequest {
        transactional_id: None,
        acks: match acks {
            Acks::Leader => weir_wire::domain::Acks::Leader,
            Acks::All => weir_wire::domain::Acks::All,
        },
        timeout_ms: PRODUCE_TIMEOUT_MS,
        topics: vec![ProduceTopic {
            topic: TopicRef::Name(topic.clone()),
            partitions: vec![ProducePartition {
                partition,
                records: Some(batch),
            }],
        }],
    });
    let dest = router.leader(&topic, partition).await?;
    let ticket = router.ticket(&topic, partition);
    let call = router.send(dest, Lane::Control, request.clone()).await?;
    ticket.sent(1);
    let sent = SentProduce {
        request,
        topic,
        partition,
        ticket,
    };
    Ok((call, sent))
}

/// Wait for a produce's answer, re-sending it (a bounded number of times) when the answer
/// says it was not written and another try may succeed: the partition's leader moved;
/// another broker answered UNKNOWN_TOPIC_OR_PARTITION (it may lag behind this node's
/// metadata); or OUT_OF_ORDER_SEQUENCE_NUMBER from another broker (an earlier produce of
/// the partition is being re-sent). Re-sends of a partition go out in the original send
/// order (tickets), so per-key order and idempotent sequences hold.
pub async fn finish_produce<R: Runtime>(
    router: &Router<R>,
    mut call: Call,
    sent: SentProduce<R>,
) -> Result<Reply, EdgeError> {
    let mut attempt = 1;
    let mut sends = 1;
    loop {
        let remote = call.is_remote();
        let outcome = produce_reply(router.answer(call).await?, sent.partition);
        let retry = match &outcome {
            Ok(_) => false,
            Err(error) => {
                let code = ErrorCode(error.code);
                leader_moved(code)
                    || (remote
                        && matches!(
                            code,
                            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                                | ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
                        ))
            }
        };
        if !retry {
            return outcome;
        }
        router.forget_leader(&sent.topic, sent.partition);
        loop {
            if attempt >= ROUTE_ATTEMPTS_MAX {
                return outcome;
            }
            router.backoff(attempt).await;
            attempt += 1;
            sent.ticket.await_turn(sends + 1).await;
            let resent = match router.leader(&sent.topic, sent.partition).await {
                Ok(dest) => router.send(dest, Lane::Control, sent.request.clone()).await,
                Err(error) => Err(error),
            };
            // A failed send wrote nothing: try again; a sent one is awaited above.
            if let Ok(resent) = resent {
                sends += 1;
                sent.ticket.sent(sends);
                call = resent;
                break;
            }
        }
    }
}

/// The produce's outcome from the node's answer.
fn produce_reply(response: ApiResponse, partition: i32) -> Result<Reply, EdgeError> {
    let ApiResponse::Produce(response) = response else {
        return Err(unexpected("Produce"));
    };
    let answer = response
        .topics
        .into_iter()
        .flat_map(|topic| topic.partitions)
        .find(|answer| answer.partition == partition)
        .ok_or_else(|| unexpected("Produce (partition missing)"))?;
    if answer.error != ErrorCode::NONE {
        let message = answer.error_message.unwrap_or_default();
        return Err(kafka_error(answer.error, message));
    }
    Ok(Reply::Produced {
        partition,
        offset: answer.base_offset,
    })
}

async fn producer_id<R: Runtime>(
    router: &Router<R>,
    producer: &mut ProducerState,
) -> Result<(i64, i16), EdgeError> {
    if let Some(id) = producer.id {
        return Ok(id);
    }
    let id = new_producer_id(router).await?;
    producer.id = Some(id);
    Ok(id)
}

/// A new idempotent producer for a version-2 client.
pub async fn init_producer<R: Runtime>(router: &Router<R>) -> Result<Reply, EdgeError> {
    let (producer_id, producer_epoch) = new_producer_id(router).await?;
    Ok(Reply::Producer {
        producer_id,
        producer_epoch,
    })
}

/// Ask the local node for a producer id, retrying (bounded) while it is busy.
async fn new_producer_id<R: Runtime>(router: &Router<R>) -> Result<(i64, i16), EdgeError> {
    let mut attempt = 1;
    loop {
        let request = ApiRequest::InitProducerId(InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: -1,
            producer_id: -1,
            producer_epoch: -1,
        });
        let answer = router.local().call(request).await.map_err(closed_error)?;
        let ApiResponse::InitProducerId(answer) = answer else {
            return Err(unexpected("InitProducerId"));
        };
        if answer.error == ErrorCode::NONE {
            return Ok((answer.producer_id, answer.producer_epoch));
        }
        if answer.error != ErrorCode::COORDINATOR_LOAD_IN_PROGRESS || attempt >= ROUTE_ATTEMPTS_MAX
        {
            return Err(kafka_error(
                answer.error,
                "cannot start an idempotent producer",
            ));
        }
        router.backoff(attempt).await;
        attempt += 1;
    }
}

/// List the cluster's topics.
pub async fn list_topics<R: Runtime>(router: &Router<R>, meta: &Meta) -> Result<Reply, EdgeError> {
    let found = refresh_metadata(router, meta, None, false).await?;
    let topics = found
        .into_iter()
        .filter(|(_, error, ..)| *error == ErrorCode::NONE)
        .map(|(name, _, info, internal)| TopicInfo {
            name,
            partitions: info.partitions,
            internal,
        })
        .collect();
    Ok(Reply::Topics(topics))
}

/// Create topics; each topic's outcome is reported separately.
pub async fn create_topics<R: Runtime>(
    router: &Router<R>,
    topics: Vec<NewTopic>,
) -> Result<Reply, EdgeError> {
    let request = ApiRequest::CreateTopics(CreateTopicsRequest {
        topics: topics
            .into_iter()
            .map(|topic| CreatableTopic {
                name: topic.name,
                num_partitions: topic.partitions,
                replication_factor: topic.replication_factor,
                assignments: Vec::new(),
                configs: Vec::new(),
            })
            .collect(),
        timeout_ms: CREATE_TOPICS_TIMEOUT_MS,
        validate_only: false,
    });
    let answer = router.local().call(request).await.map_err(closed_error)?;
    let ApiResponse::CreateTopics(answer) = answer else {
        return Err(unexpected("CreateTopics"));
    };
    let results = answer
        .topics
        .into_iter()
        .map(|topic| {
            let error = (topic.error != ErrorCode::NONE)
                .then(|| kafka_error(topic.error, topic.error_message.unwrap_or_default()));
            (topic.name, error)
        })
        .collect();
    Ok(Reply::Created(results))
}

#[cfg(test)]
mod tests {
    use weir_edge::ProducerSequence;

    use super::*;

    // Goal: the partitioner version-2 clients run (weir-edge's copy, which may not depend on
    // weir-wire) agrees with the gateway's (weir-wire's) on every key shape. Method: compare
    // both on keys of length 0..=64 with varied bytes, for several partition counts.
    #[test]
    fn client_and_gateway_partitioners_agree() {
        for length in 0..=64u8 {
            let key: Vec<u8> = (0..length)
                .map(|i| i.wrapping_mul(37).wrapping_add(length))
                .collect();
            assert_eq!(
                weir_edge::murmur2(&key),
                weir_wire::murmur2::murmur2(&key),
                "{key:?}"
            );
            for count in [1, 3, 4, 16, 1000] {
                assert_eq!(
                    weir_edge::partition_for_key(&key, count),
                    weir_wire::murmur2::partition_for_key(&key, count)
                );
            }
        }
    }

    // Goal: a version-2 batch is stamped exactly as the frame says, and malformed frames
    // (no records, negative stamps, sequences wrapping inside the batch) are refused with
    // INVALID_REQUEST before anything is sent. Method: batch_options on hand-built frames.
    #[test]
    fn batch_stamps_are_checked() {
        let frame = |count: usize, sequence: Option<ProducerSequence>| ProduceBatch {
            topic: "t".into(),
            partition: 0,
            acks: Acks::All,
            sequence,
            records: vec![
                NewRecord {
                    key: None,
                    value: None,
                    headers: Vec::new(),
                    timestamp: None,
                };
                count
            ],
        };
        let stamp = |base_sequence| {
            Some(ProducerSequence {
                producer_id: 4,
                producer_epoch: 1,
                base_sequence,
            })
        };
        let options = batch_options(&frame(3, stamp(7))).expect("valid");
        assert_eq!(
            (
                options.producer_id,
                options.producer_epoch,
                options.base_sequence
            ),
            (4, 1, 7)
        );
        let plain = batch_options(&frame(1, None)).expect("valid");
        assert_eq!(plain.producer_id, BatchOptions::default().producer_id);
        assert!(batch_options(&frame(1, stamp(i32::MAX))).is_ok());
        for bad in [
            frame(0, None),
            frame(2, stamp(i32::MAX)),
            frame(1, stamp(-1)),
        ] {
            let error = batch_options(&bad).expect_err("malformed");
            assert_eq!(error.name, "INVALID_REQUEST");
        }
    }
}
