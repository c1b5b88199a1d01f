//! Request builders and response accessors shared by the scenario tests.
#![allow(dead_code)] // Helpers for every file; not each is used.

pub mod cluster;

use bytes::{Bytes, BytesMut};
use weir_core::testing::SingleNode;
use weir_core::NodeConfig;
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;
use weir_wire::records::{decode_records, encode_batch, BatchOptions, Record};

/// A node with default config except for `tweak`.
pub fn node_with(tweak: impl FnOnce(&mut NodeConfig)) -> SingleNode {
    let mut config = NodeConfig::default();
    tweak(&mut config);
    SingleNode::new(config)
}

/// [`node_with`] whose group and transaction coordinators a client already found.
pub fn node_with_coordinators(tweak: impl FnOnce(&mut NodeConfig)) -> SingleNode {
    let mut config = NodeConfig::default();
    tweak(&mut config);
    SingleNode::with_coordinators(config)
}

/// A one-partition produce; `acks` is the wire value (0, 1 or -1).
pub fn produce(topic: &str, partition: i32, records: Bytes, acks: i16) -> ApiRequest {
    ApiRequest::Produce(ProduceRequest {
        transactional_id: None,
        acks: Acks::from_i16(acks).expect("tests produce with acks 0, 1 or -1"),
        timeout_ms: 30_000,
        topics: vec![ProduceTopic {
            topic: TopicRef::Name(topic.into()),
            partitions: vec![ProducePartition {
                partition,
                records: Some(records),
            }],
        }],
    })
}

pub fn fetch_ref(
    topic: TopicRef,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    min_bytes: i32,
) -> ApiRequest {
    ApiRequest::Fetch(FetchRequest {
        replica_id: -1,
        max_wait_ms,
        min_bytes,
        max_bytes: 52_428_800,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic,
            partitions: vec![FetchPartition {
                partition,
                current_leader_epoch: -1,
                fetch_offset: offset,
                log_start_offset: -1,
                partition_max_bytes: 1_048_576,
            }],
        }],
        rack_id: String::new(),
    })
}

pub fn fetch(
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    min_bytes: i32,
) -> ApiRequest {
    fetch_ref(
        TopicRef::Name(topic.into()),
        partition,
        offset,
        max_wait_ms,
        min_bytes,
    )
}

pub fn create_topic(name: &str, partitions: i32, configs: &[(&str, &str)]) -> ApiRequest {
    ApiRequest::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: -1,
            assignments: Vec::new(),
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), Some(v.to_string())))
                .collect(),
        }],
        timeout_ms: 30_000,
        validate_only: false,
    })
}

pub fn delete_topic(topic: TopicRef) -> ApiRequest {
    ApiRequest::DeleteTopics(DeleteTopicsRequest {
        topics: vec![topic],
        timeout_ms: 30_000,
    })
}

pub fn list_offsets(topic: &str, partition: i32, timestamp: i64) -> ApiRequest {
    ApiRequest::ListOffsets(ListOffsetsRequest {
        replica_id: -1,
        isolation_level: 0,
        topics: vec![ListOffsetsTopic {
            name: topic.into(),
            partitions: vec![ListOffsetsPartition {
                partition,
                current_leader_epoch: -1,
                timestamp,
            }],
        }],
    })
}

pub fn metadata(topics: Option<&[&str]>, allow_auto_topic_creation: bool) -> ApiRequest {
    ApiRequest::Metadata(MetadataRequest {
        topics: topics.map(|names| {
            names
                .iter()
                .map(|n| TopicRef::Name(n.to_string()))
                .collect()
        }),
        allow_auto_topic_creation,
        include_cluster_authorized_operations: false,
        include_topic_authorized_operations: false,
    })
}

/// Create a topic and assert success.
pub fn must_create(node: &mut SingleNode, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let response = node.call(create_topic(name, partitions, configs));
    let ApiResponse::CreateTopics(response) = response else {
        panic!("not CreateTopics: {response:?}")
    };
    assert_eq!(
        response.topics[0].error,
        ErrorCode::NONE,
        "{:?}",
        response.topics[0]
    );
}

/// The only partition result of a produce response.
pub fn produce_result(response: &ApiResponse) -> &ProducePartitionResponse {
    let ApiResponse::Produce(response) = response else {
        panic!("not Produce: {response:?}")
    };
    &response.topics[0].partitions[0]
}

/// The only partition of a fetch response.
pub fn fetch_partition(response: &ApiResponse) -> &FetchPartitionResponse {
    let ApiResponse::Fetch(response) = response else {
        panic!("not Fetch: {response:?}")
    };
    &response.topics[0].partitions[0]
}

/// The records a fetch returned (resolved by the harness).
pub fn fetched_records(response: &ApiResponse) -> Vec<Record> {
    match &fetch_partition(response).records {
        FetchRecords::Empty => Vec::new(),
        FetchRecords::Bytes(bytes) => decode_records(bytes.clone()).expect("served bytes decode"),
        other @ (FetchRecords::Read(_) | FetchRecords::Remote(_)) => {
            panic!("unresolved plan {other:?}")
        }
    }
}

/// The only partition answer of a ListOffsets response.
pub fn list_result(response: &ApiResponse) -> &ListOffsetsPartitionResponse {
    let ApiResponse::ListOffsets(response) = response else {
        panic!("not ListOffsets: {response:?}")
    };
    &response.topics[0].partitions[0]
}

/// Produce one batch with acks=all and return its base offset.
pub fn must_produce(node: &mut SingleNode, topic: &str, partition: i32, records: Bytes) -> i64 {
    let response = node.call(produce(topic, partition, records, -1));
    let result = produce_result(&response);
    assert_eq!(result.error, ErrorCode::NONE, "{result:?}");
    result.base_offset
}

/// Values of records, as strings.
pub fn values(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

/// An OffsetCommit of one partition (`t`-0) by a classic group member.
pub fn offset_commit(group: &str, member_id: &str, generation_id: i32, offset: i64) -> ApiRequest {
    ApiRequest::OffsetCommit(OffsetCommitRequest {
        group_id: group.into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: vec![OffsetCommitTopic {
            name: "t".into(),
            partitions: vec![OffsetCommitPartition {
                partition: 0,
                committed_offset: offset,
                committed_leader_epoch: -1,
                metadata: None,
            }],
        }],
    })
}

/// An idempotent batch of `values` from producer `producer_id`/`epoch` at `base_sequence`.
pub fn idempotent_batch(
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    values: &[&str],
) -> Bytes {
    producer_batch(producer_id, epoch, base_sequence, values, false)
}

/// [`idempotent_batch`] inside the producer's transaction.
pub fn txn_batch(producer_id: i64, epoch: i16, base_sequence: i32, values: &[&str]) -> Bytes {
    producer_batch(producer_id, epoch, base_sequence, values, true)
}

fn producer_batch(
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    values: &[&str],
    transactional: bool,
) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(index, value)| Record {
            offset: index as i64,
            timestamp: weir_core::testing::WALL_MS_START,
            key: None,
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            headers: Vec::new(),
        })
        .collect();
    let options = BatchOptions {
        producer_id,
        producer_epoch: epoch,
        base_sequence,
        transactional,
        ..BatchOptions::default()
    };
    let encoded = encode_batch(&records, &options).expect("test batch encodes");
    BytesMut::from(&encoded[..]).freeze()
}

pub fn init_producer_id(transactional_id: Option<&str>) -> ApiRequest {
    ApiRequest::InitProducerId(InitProducerIdRequest {
        transactional_id: transactional_id.map(str::to_owned),
        transaction_timeout_ms: 60_000,
        producer_id: -1,
        producer_epoch: -1,
    })
}

/// TxnOffsetCommit of `offset` for `group`'s `t`-0 in `transactional_id`'s transaction
/// (producer `pid` at `epoch`), without group generation (as librdkafka sends it outside a
/// group).
pub fn txn_offset_commit(
    transactional_id: &str,
    group: &str,
    (pid, epoch): (i64, i16),
    offset: i64,
) -> ApiRequest {
    use weir_wire::domain::txn::{
        TxnOffsetCommitPartition, TxnOffsetCommitRequest, TxnOffsetCommitTopic,
    };
    ApiRequest::TxnOffsetCommit(TxnOffsetCommitRequest {
        transactional_id: transactional_id.into(),
        group_id: group.into(),
        producer_id: pid,
        producer_epoch: epoch,
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        topics: vec![TxnOffsetCommitTopic {
            name: "t".into(),
            partitions: vec![TxnOffsetCommitPartition {
                partition: 0,
                committed_offset: offset,
                committed_leader_epoch: -1,
                committed_metadata: None,
            }],
        }],
    })
}

/// One batch holding one record `key` -> `value` (`None`: no key, or a tombstone), as a
/// client writes to a compacted topic.
pub fn keyed_record(key: Option<&str>, value: Option<&str>) -> Bytes {
    keyed_record_at(key, value, weir_core::testing::WALL_MS_START)
}

/// [`keyed_record`] with the record's create time `timestamp` (what retention.ms and the
/// compaction lags weigh).
pub fn keyed_record_at(key: Option<&str>, value: Option<&str>, timestamp: i64) -> Bytes {
    let record = Record {
        offset: 0,
        timestamp,
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
        headers: Vec::new(),
    };
    let encoded = encode_batch(&[record], &BatchOptions::default()).expect("test batch encodes");
    BytesMut::from(&encoded[..]).freeze()
}

/// Every record of `topic`-0 from `from` to the high watermark, fetching as a consumer
/// does (a batch starting before `from` is returned whole; its earlier records are kept).
pub fn read_partition(node: &mut SingleNode, topic: &str, from: i64) -> Vec<Record> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let response = node.call(fetch(topic, 0, offset, 0, 1));
        let partition = fetch_partition(&response);
        assert_eq!(partition.error, ErrorCode::NONE, "{partition:?}");
        let records = fetched_records(&response);
        let Some(last) = records.last() else {
            return out;
        };
        offset = last.offset + 1;
        let high_watermark = partition.high_watermark;
        out.extend(records);
        if offset >= high_watermark {
            return out;
        }
    }
}

/// A property test's record of an answered produce: an acknowledged one (acks 1 or all,
/// no error) is added to `acked` by (partition, offset); one offset acknowledged twice is
/// a bug.
pub fn note_ack(
    acked: &mut std::collections::BTreeMap<(i32, i64), u8>,
    (partition, value, acks): (i32, u8, i16),
    response: &ApiResponse,
) {
    let result = produce_result(response);
    if acks != 0 && result.error == ErrorCode::NONE {
        let previous = acked.insert((partition, result.base_offset), value);
        assert!(
            previous.is_none(),
            "offset {} acknowledged twice",
            result.base_offset
        );
    }
}
