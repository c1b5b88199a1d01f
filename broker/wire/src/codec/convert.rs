//! Conversions between `kafka_protocol` message structs and the domain types, per API and
//! version.
//!
//! Invariants:
//! - `*_from_domain(x, v)` sets only fields that exist at version `v`; every other field keeps
//!   `kafka_protocol`'s schema default, so encoding never fails for a field the version lacks.
//!   A domain value that cannot be expressed at `v` at all (a topic id before Fetch v13, a
//!   topic name at v13+, an unresolved read plan) is an [`WireError::Encode`].
//! - `*_to_domain(k, v)` copies every field; fields absent at `v` arrive as the schema
//!   default, so `to_domain(from_domain(x, v), v) == x` whenever `x` holds defaults there.

use bytes::Bytes;
use kafka_protocol::messages::{
    create_partitions_request, create_partitions_response, create_topics_request,
    create_topics_response, delete_topics_request, delete_topics_response,
    describe_cluster_response, describe_configs_request, describe_configs_response, fetch_request,
    fetch_response, list_offsets_request, list_offsets_response, metadata_request,
    metadata_response, produce_request, produce_response, BrokerId, CreatePartitionsRequest,
    CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, DescribeClusterRequest, DescribeClusterResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, TopicName, TransactionalId,
};
use uuid::Uuid;

use super::convert_helpers::{brokers, ids, osb, ost, sb, st, tn};
use super::Decoded;
use crate::domain::*;
use crate::error::ErrorCode;
use crate::WireError;

// ---------------------------------------------------------------------------------------
// Topic references (name before `id_since`, id from it)

/// The topic reference a name-or-id field pair carries at `v` (ids from `id_since`).
fn topic_ref(name: &TopicName, id: Uuid, v: i16, id_since: i16) -> TopicRef {
    if v >= id_since {
        TopicRef::Id(id)
    } else {
        TopicRef::Name(st(&name.0))
    }
}

/// Splits a topic reference into the (name, id) pair for version `v`.
fn topic_fields(
    topic: &TopicRef,
    v: i16,
    id_since: i16,
    api: &str,
) -> Result<(TopicName, Uuid), WireError> {
    match (topic, v >= id_since) {
        (TopicRef::Name(n), false) => Ok((tn(n), Uuid::nil())),
        (TopicRef::Id(id), true) => Ok((TopicName::default(), *id)),
        (TopicRef::Name(n), true) => Err(WireError::Encode(format!(
            "{api} v{v} names topics by id, got name {n:?}"
        ))),
        (TopicRef::Id(id), false) => Err(WireError::Encode(format!(
            "{api} v{v} names topics by name, got id {id}"
        ))),
    }
}

// ---------------------------------------------------------------------------------------
// Produce

/// Server direction. An `acks` other than 0, 1 or -1 is not a request the core could serve:
/// `Err` is [`Decoded::Rejected`] with Kafka's answer to it, INVALID_REQUIRED_ACKS for
/// every partition (ReplicaManager answers before looking at any partition).
pub(super) fn produce_req_to_domain(
    k: ProduceRequest,
    v: i16,
) -> Result<crate::domain::ProduceRequest, Box<Decoded>> {
    let topics = k
        .topic_data
        .into_iter()
        .map(|t| ProduceTopic {
            topic: topic_ref(&t.name, t.topic_id, v, 13),
            partitions: t
                .partition_data
                .into_iter()
                .map(|p| ProducePartition {
                    partition: p.index,
                    records: p.records,
                })
                .collect(),
        })
        .collect();
    let Some(acks) = Acks::from_i16(k.acks) else {
        return Err(Box::new(Decoded::Rejected {
            response: ApiResponse::Produce(invalid_acks_response(k.acks, topics)),
            reason: format!("Produce with acks={}", k.acks),
        }));
    };
    Ok(crate::domain::ProduceRequest {
        transactional_id: k.transactional_id.map(|t| st(&t.0)),
        acks,
        timeout_ms: k.timeout_ms,
        topics,
    })
}

fn invalid_acks_response(acks: i16, topics: Vec<ProduceTopic>) -> crate::domain::ProduceResponse {
    let partition_refused = |p: ProducePartition| ProducePartitionResponse {
        partition: p.partition,
        error: ErrorCode::INVALID_REQUIRED_ACKS,
        base_offset: -1,
        log_append_time_ms: -1,
        log_start_offset: -1,
        error_message: Some(format!("acks={acks}")),
        record_errors: Vec::new(),
    };
    crate::domain::ProduceResponse {
        throttle_time_ms: 0,
        topics: topics
            .into_iter()
            .map(|t| ProduceTopicResponse {
                topic: t.topic,
                partitions: t.partitions.into_iter().map(partition_refused).collect(),
            })
            .collect(),
    }
}

pub(super) fn produce_req_from_domain(
    d: &crate::domain::ProduceRequest,
    v: i16,
) -> Result<ProduceRequest, WireError> {
    let mut topics = Vec::with_capacity(d.topics.len());
    for t in &d.topics {
        let (name, id) = topic_fields(&t.topic, v, 13, "Produce")?;
        topics.push(
            produce_request::TopicProduceData::default()
                .with_name(name)
                .with_topic_id(id)
                .with_partition_data(
                    t.partitions
                        .iter()
                        .map(|p| {
                            produce_request::PartitionProduceData::default()
                                .with_index(p.partition)
                                .with_records(p.records.clone())
                        })
                        .collect(),
                ),
        );
    }
    Ok(ProduceRequest::default()
        .with_transactional_id(
            d.transactional_id
                .as_deref()
                .map(|t| TransactionalId(sb(t))),
        )
        .with_acks(d.acks.as_i16())
        .with_timeout_ms(d.timeout_ms)
        .with_topic_data(topics))
}

pub(super) fn produce_resp_from_domain(
    d: &crate::domain::ProduceResponse,
    v: i16,
) -> Result<ProduceResponse, WireError> {
    let mut topics = Vec::with_capacity(d.topics.len());
    for t in &d.topics {
        let (name, id) = topic_fields(&t.topic, v, 13, "Produce")?;
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                let mut r = produce_response::PartitionProduceResponse::default()
                    .with_index(p.partition)
                    .with_error_code(p.error.0)
                    .with_base_offset(p.base_offset)
                    .with_log_append_time_ms(p.log_append_time_ms);
                if v >= 5 {
                    r.log_start_offset = p.log_start_offset;
                }
                if v >= 8 {
                    r.error_message = osb(&p.error_message);
                    r.record_errors = (p.record_errors.iter())
                        .map(|e| {
                            produce_response::BatchIndexAndErrorMessage::default()
                                .with_batch_index(e.batch_index)
                                .with_batch_index_error_message(osb(&e.message))
                        })
                        .collect();
                }
                r
            })
            .collect();
        topics.push(
            produce_response::TopicProduceResponse::default()
                .with_name(name)
                .with_topic_id(id)
                .with_partition_responses(partitions),
        );
    }
    Ok(ProduceResponse::default()
        .with_responses(topics)
        .with_throttle_time_ms(d.throttle_time_ms))
}

pub(super) fn produce_resp_to_domain(k: ProduceResponse, v: i16) -> crate::domain::ProduceResponse {
    crate::domain::ProduceResponse {
        throttle_time_ms: k.throttle_time_ms,
        topics: k
            .responses
            .into_iter()
            .map(|t| ProduceTopicResponse {
                topic: topic_ref(&t.name, t.topic_id, v, 13),
                partitions: t
                    .partition_responses
                    .into_iter()
                    .map(|p| ProducePartitionResponse {
                        partition: p.index,
                        error: ErrorCode(p.error_code),
                        base_offset: p.base_offset,
                        log_append_time_ms: p.log_append_time_ms,
                        log_start_offset: p.log_start_offset,
                        error_message: ost(&p.error_message),
                        record_errors: (p.record_errors.iter())
                            .map(|e| ProduceRecordError {
                                batch_index: e.batch_index,
                                message: ost(&e.batch_index_error_message),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// Fetch

pub(super) fn fetch_req_to_domain(k: FetchRequest, v: i16) -> crate::domain::FetchRequest {
    crate::domain::FetchRequest {
        // v15+ moved the replica id into the tagged ReplicaState (default -1).
        replica_id: if v >= 15 {
            k.replica_state.replica_id.0
        } else {
            k.replica_id.0
        },
        max_wait_ms: k.max_wait_ms,
        min_bytes: k.min_bytes,
        max_bytes: k.max_bytes,
        isolation_level: k.isolation_level,
        session_id: k.session_id,
        session_epoch: k.session_epoch,
        topics: k
            .topics
            .into_iter()
            .map(|t| FetchTopic {
                topic: topic_ref(&t.topic, t.topic_id, v, 13),
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| FetchPartition {
                        partition: p.partition,
                        current_leader_epoch: p.current_leader_epoch,
                        fetch_offset: p.fetch_offset,
                        log_start_offset: p.log_start_offset,
                        partition_max_bytes: p.partition_max_bytes,
                    })
                    .collect(),
            })
            .collect(),
        rack_id: st(&k.rack_id),
    }
}

pub(super) fn fetch_req_from_domain(
    d: &crate::domain::FetchRequest,
    v: i16,
) -> Result<FetchRequest, WireError> {
    let mut topics = Vec::with_capacity(d.topics.len());
    for t in &d.topics {
        let (name, id) = topic_fields(&t.topic, v, 13, "Fetch")?;
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                let mut r = fetch_request::FetchPartition::default()
                    .with_partition(p.partition)
                    .with_fetch_offset(p.fetch_offset)
                    .with_partition_max_bytes(p.partition_max_bytes);
                if v >= 9 {
                    r.current_leader_epoch = p.current_leader_epoch;
                }
                if v >= 5 {
                    r.log_start_offset = p.log_start_offset;
                }
                r
            })
            .collect();
        topics.push(
            fetch_request::FetchTopic::default()
                .with_topic(name)
                .with_topic_id(id)
                .with_partitions(partitions),
        );
    }
    let mut k = FetchRequest::default()
        .with_max_wait_ms(d.max_wait_ms)
        .with_min_bytes(d.min_bytes)
        .with_max_bytes(d.max_bytes)
        .with_isolation_level(d.isolation_level)
        .with_topics(topics);
    if v >= 15 {
        k.replica_state.replica_id = BrokerId(d.replica_id);
    } else {
        k.replica_id = BrokerId(d.replica_id);
    }
    if v >= 7 {
        k.session_id = d.session_id;
        k.session_epoch = d.session_epoch;
    }
    if v >= 11 {
        k.rack_id = sb(&d.rack_id);
    }
    Ok(k)
}

pub(super) fn fetch_resp_from_domain(
    d: &crate::domain::FetchResponse,
    v: i16,
) -> Result<FetchResponse, WireError> {
    let mut topics = Vec::with_capacity(d.topics.len());
    for t in &d.topics {
        let (name, id) = topic_fields(&t.topic, v, 13, "Fetch")?;
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let records = match &p.records {
                // Kafka sends an empty record set, not null, when there is nothing.
                FetchRecords::Empty => Bytes::new(),
                FetchRecords::Bytes(b) => b.clone(),
                FetchRecords::Read(plan) => {
                    return Err(WireError::Encode(format!(
                        "fetch partition {} still carries a read plan {plan:?}",
                        p.partition
                    )))
                }
                FetchRecords::Remote(plan) => {
                    return Err(WireError::Encode(format!(
                        "fetch partition {} still carries a remote read plan {plan:?}",
                        p.partition
                    )))
                }
            };
            let mut r = fetch_response::PartitionData::default()
                .with_partition_index(p.partition)
                .with_error_code(p.error.0)
                .with_high_watermark(p.high_watermark)
                .with_last_stable_offset(p.last_stable_offset)
                .with_records(Some(records));
            if v >= 5 {
                r.log_start_offset = p.log_start_offset;
            }
            // Null (not empty) when there are none, as Kafka does for read_uncommitted.
            if !p.aborted_transactions.is_empty() {
                r.aborted_transactions = Some(
                    p.aborted_transactions
                        .iter()
                        .map(|a| {
                            fetch_response::AbortedTransaction::default()
                                .with_producer_id(a.producer_id.into())
                                .with_first_offset(a.first_offset)
                        })
                        .collect(),
                );
            }
            if v >= 11 {
                r.preferred_read_replica = BrokerId(p.preferred_read_replica);
            }
            partitions.push(r);
        }
        topics.push(
            fetch_response::FetchableTopicResponse::default()
                .with_topic(name)
                .with_topic_id(id)
                .with_partitions(partitions),
        );
    }
    let mut k = FetchResponse::default()
        .with_throttle_time_ms(d.throttle_time_ms)
        .with_responses(topics);
    if v >= 7 {
        k.error_code = d.error.0;
        k.session_id = d.session_id;
    }
    Ok(k)
}

pub(super) fn fetch_resp_to_domain(k: FetchResponse, v: i16) -> crate::domain::FetchResponse {
    crate::domain::FetchResponse {
        throttle_time_ms: k.throttle_time_ms,
        error: ErrorCode(k.error_code),
        session_id: k.session_id,
        topics: k
            .responses
            .into_iter()
            .map(|t| FetchTopicResponse {
                topic: topic_ref(&t.topic, t.topic_id, v, 13),
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| FetchPartitionResponse {
                        partition: p.partition_index,
                        error: ErrorCode(p.error_code),
                        high_watermark: p.high_watermark,
                        last_stable_offset: p.last_stable_offset,
                        log_start_offset: p.log_start_offset,
                        aborted_transactions: p
                            .aborted_transactions
                            .unwrap_or_default()
                            .into_iter()
                            .map(|a| AbortedTransaction {
                                producer_id: a.producer_id.0,
                                first_offset: a.first_offset,
                            })
                            .collect(),
                        preferred_read_replica: p.preferred_read_replica.0,
                        records: match p.records {
                            Some(b) if !b.is_empty() => FetchRecords::Bytes(b),
                            _ => FetchRecords::Empty,
                        },
                    })
                    .collect(),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// ListOffsets

pub(super) fn list_offsets_req_to_domain(
    k: ListOffsetsRequest,
) -> crate::domain::ListOffsetsRequest {
    crate::domain::ListOffsetsRequest {
        replica_id: k.replica_id.0,
        isolation_level: k.isolation_level,
        topics: k
            .topics
            .into_iter()
            .map(|t| ListOffsetsTopic {
                name: st(&t.name.0),
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| ListOffsetsPartition {
                        partition: p.partition_index,
                        current_leader_epoch: p.current_leader_epoch,
                        timestamp: p.timestamp,
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub(super) fn list_offsets_req_from_domain(
    d: &crate::domain::ListOffsetsRequest,
    v: i16,
) -> ListOffsetsRequest {
    let topics = d
        .topics
        .iter()
        .map(|t| {
            list_offsets_request::ListOffsetsTopic::default()
                .with_name(tn(&t.name))
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let mut r = list_offsets_request::ListOffsetsPartition::default()
                                .with_partition_index(p.partition)
                                .with_timestamp(p.timestamp);
                            if v >= 4 {
                                r.current_leader_epoch = p.current_leader_epoch;
                            }
                            r
                        })
                        .collect(),
                )
        })
        .collect();
    let mut k = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(d.replica_id))
        .with_topics(topics);
    if v >= 2 {
        k.isolation_level = d.isolation_level;
    }
    k
}

pub(super) fn list_offsets_resp_from_domain(
    d: &crate::domain::ListOffsetsResponse,
    v: i16,
) -> Result<ListOffsetsResponse, WireError> {
    let mut topics = Vec::with_capacity(d.topics.len());
    for t in &d.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            if let Some(lookup) = &p.lookup {
                return Err(WireError::Encode(format!(
                    "list offsets partition {} still carries a lookup {lookup:?}",
                    p.partition
                )));
            }
            // OFFSET_NOT_AVAILABLE is v5+ (KIP-207); older clients get the retriable code
            // Kafka gives them for the same state.
            let error = if p.error == ErrorCode::OFFSET_NOT_AVAILABLE && v < 5 {
                ErrorCode::LEADER_NOT_AVAILABLE
            } else {
                p.error
            };
            let mut r = list_offsets_response::ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition)
                .with_error_code(error.0)
                .with_timestamp(p.timestamp)
                .with_offset(p.offset);
            if v >= 4 {
                r.leader_epoch = p.leader_epoch;
            }
            partitions.push(r);
        }
        topics.push(
            list_offsets_response::ListOffsetsTopicResponse::default()
                .with_name(tn(&t.name))
                .with_partitions(partitions),
        );
    }
    let mut k = ListOffsetsResponse::default().with_topics(topics);
    if v >= 2 {
        k.throttle_time_ms = d.throttle_time_ms;
    }
    Ok(k)
}

pub(super) fn list_offsets_resp_to_domain(
    k: ListOffsetsResponse,
) -> crate::domain::ListOffsetsResponse {
    crate::domain::ListOffsetsResponse {
        throttle_time_ms: k.throttle_time_ms,
        topics: k
            .topics
            .into_iter()
            .map(|t| ListOffsetsTopicResponse {
                name: st(&t.name.0),
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| ListOffsetsPartitionResponse {
                        partition: p.partition_index,
                        error: ErrorCode(p.error_code),
                        timestamp: p.timestamp,
                        offset: p.offset,
                        leader_epoch: p.leader_epoch,
                        lookup: None,
                    })
                    .collect(),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// Metadata

pub(super) fn metadata_req_to_domain(
    k: MetadataRequest,
    v: i16,
) -> Result<crate::domain::MetadataRequest, WireError> {
    let topics = match k.topics {
        // v0 has no null: an empty list means "all topics".
        Some(ts) if v == 0 && ts.is_empty() => None,
        None => None,
        Some(ts) => {
            let mut out = Vec::with_capacity(ts.len());
            for t in ts {
                match t.name {
                    Some(n) => out.push(TopicRef::Name(st(&n.0))),
                    None if v >= 10 => out.push(TopicRef::Id(t.topic_id)),
                    None => {
                        return Err(WireError::Malformed(format!(
                            "Metadata v{v}: null topic name"
                        )))
                    }
                }
            }
            Some(out)
        }
    };
    Ok(crate::domain::MetadataRequest {
        topics,
        allow_auto_topic_creation: k.allow_auto_topic_creation,
        include_cluster_authorized_operations: k.include_cluster_authorized_operations,
        include_topic_authorized_operations: k.include_topic_authorized_operations,
    })
}

pub(super) fn metadata_req_from_domain(
    d: &crate::domain::MetadataRequest,
    v: i16,
) -> Result<MetadataRequest, WireError> {
    let topics = match &d.topics {
        None if v == 0 => Some(Vec::new()),
        None => None,
        Some(ts) => {
            let mut out = Vec::with_capacity(ts.len());
            for t in ts {
                out.push(match t {
                    TopicRef::Name(n) => {
                        metadata_request::MetadataRequestTopic::default().with_name(Some(tn(n)))
                    }
                    TopicRef::Id(id) if v >= 10 => {
                        metadata_request::MetadataRequestTopic::default()
                            .with_name(None)
                            .with_topic_id(*id)
                    }
                    TopicRef::Id(id) => {
                        return Err(WireError::Encode(format!(
                            "Metadata v{v} cannot name topic id {id}"
                        )))
                    }
                });
            }
            Some(out)
        }
    };
    let mut k = MetadataRequest::default().with_topics(topics);
    if v >= 4 {
        k.allow_auto_topic_creation = d.allow_auto_topic_creation;
    }
    if (8..=10).contains(&v) {
        k.include_cluster_authorized_operations = d.include_cluster_authorized_operations;
    }
    if v >= 8 {
        k.include_topic_authorized_operations = d.include_topic_authorized_operations;
    }
    Ok(k)
}

pub(super) fn metadata_resp_from_domain(
    d: &crate::domain::MetadataResponse,
    v: i16,
) -> MetadataResponse {
    let brokers = d
        .brokers
        .iter()
        .map(|b| {
            let mut r = metadata_response::MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.node_id))
                .with_host(sb(&b.host))
                .with_port(b.port);
            if v >= 1 {
                r.rack = osb(&b.rack);
            }
            r
        })
        .collect();
    let topics = d
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = metadata_response::MetadataResponsePartition::default()
                        .with_error_code(p.error.0)
                        .with_partition_index(p.partition)
                        .with_leader_id(BrokerId(p.leader_id))
                        .with_replica_nodes(brokers_of(&p.replica_nodes))
                        .with_isr_nodes(brokers_of(&p.isr_nodes));
                    if v >= 7 {
                        r.leader_epoch = p.leader_epoch;
                    }
                    if v >= 5 {
                        r.offline_replicas = brokers_of(&p.offline_replicas);
                    }
                    r
                })
                .collect();
            // A null name is only expressible from v12; before, it cannot arise (topic ids
            // are only looked up from v10 and answered with names), so "" is a safe filler.
            let name = match &t.name {
                Some(n) => Some(tn(n)),
                None if v >= 12 => None,
                None => Some(TopicName::default()),
            };
            let mut r = metadata_response::MetadataResponseTopic::default()
                .with_error_code(t.error.0)
                .with_name(name)
                .with_partitions(partitions);
            if v >= 10 {
                r.topic_id = t.topic_id;
            }
            if v >= 1 {
                r.is_internal = t.is_internal;
            }
            if v >= 8 {
                r.topic_authorized_operations = t.topic_authorized_operations;
            }
            r
        })
        .collect();
    let mut k = MetadataResponse::default()
        .with_brokers(brokers)
        .with_topics(topics);
    if v >= 3 {
        k.throttle_time_ms = d.throttle_time_ms;
    }
    if v >= 2 {
        k.cluster_id = osb(&d.cluster_id);
    }
    if v >= 1 {
        k.controller_id = BrokerId(d.controller_id);
    }
    if (8..=10).contains(&v) {
        k.cluster_authorized_operations = d.cluster_authorized_operations;
    }
    k
}

fn brokers_of(ids: &[i32]) -> Vec<BrokerId> {
    brokers(ids)
}

pub(super) fn metadata_resp_to_domain(k: MetadataResponse) -> crate::domain::MetadataResponse {
    crate::domain::MetadataResponse {
        throttle_time_ms: k.throttle_time_ms,
        brokers: k
            .brokers
            .into_iter()
            .map(|b| BrokerInfo {
                node_id: b.node_id.0,
                host: st(&b.host),
                port: b.port,
                rack: ost(&b.rack),
            })
            .collect(),
        cluster_id: ost(&k.cluster_id),
        controller_id: k.controller_id.0,
        topics: k
            .topics
            .into_iter()
            .map(|t| MetadataTopic {
                error: ErrorCode(t.error_code),
                name: t.name.map(|n| st(&n.0)),
                topic_id: t.topic_id,
                is_internal: t.is_internal,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| MetadataPartition {
                        error: ErrorCode(p.error_code),
                        partition: p.partition_index,
                        leader_id: p.leader_id.0,
                        leader_epoch: p.leader_epoch,
                        replica_nodes: ids(&p.replica_nodes),
                        isr_nodes: ids(&p.isr_nodes),
                        offline_replicas: ids(&p.offline_replicas),
                    })
                    .collect(),
                topic_authorized_operations: t.topic_authorized_operations,
            })
            .collect(),
        cluster_authorized_operations: k.cluster_authorized_operations,
    }
}

// ---------------------------------------------------------------------------------------
// CreateTopics

pub(super) fn create_topics_req_to_domain(
    k: CreateTopicsRequest,
) -> crate::domain::CreateTopicsRequest {
    crate::domain::CreateTopicsRequest {
        topics: k
            .topics
            .into_iter()
            .map(|t| CreatableTopic {
                name: st(&t.name.0),
                num_partitions: t.num_partitions,
                replication_factor: t.replication_factor,
                assignments: t
                    .assignments
                    .into_iter()
                    .map(|a| (a.partition_index, ids(&a.broker_ids)))
                    .collect(),
                configs: t
                    .configs
                    .into_iter()
                    .map(|c| (st(&c.name), ost(&c.value)))
                    .collect(),
            })
            .collect(),
        timeout_ms: k.timeout_ms,
        validate_only: k.validate_only,
    }
}

pub(super) fn create_topics_req_from_domain(
    d: &crate::domain::CreateTopicsRequest,
) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_topics(
            d.topics
                .iter()
                .map(|t| {
                    create_topics_request::CreatableTopic::default()
                        .with_name(tn(&t.name))
                        .with_num_partitions(t.num_partitions)
                        .with_replication_factor(t.replication_factor)
                        .with_assignments(
                            t.assignments
                                .iter()
                                .map(|(p, b)| {
                                    create_topics_request::CreatableReplicaAssignment::default()
                                        .with_partition_index(*p)
                                        .with_broker_ids(brokers(b))
                                })
                                .collect(),
                        )
                        .with_configs(
                            t.configs
                                .iter()
                                .map(|(n, val)| {
                                    create_topics_request::CreatableTopicConfig::default()
                                        .with_name(sb(n))
                                        .with_value(osb(val))
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
        .with_timeout_ms(d.timeout_ms)
        .with_validate_only(d.validate_only)
}

pub(super) fn create_topics_resp_from_domain(
    d: &crate::domain::CreateTopicsResponse,
    v: i16,
) -> CreateTopicsResponse {
    let topics = d
        .topics
        .iter()
        .map(|t| {
            let mut r = create_topics_response::CreatableTopicResult::default()
                .with_name(tn(&t.name))
                .with_error_code(t.error.0)
                .with_error_message(osb(&t.error_message));
            if v >= 7 {
                r.topic_id = t.topic_id;
            }
            if v >= 5 {
                r.num_partitions = t.num_partitions;
                r.replication_factor = t.replication_factor;
                r.configs = Some(
                    t.configs
                        .iter()
                        .map(|c| {
                            create_topics_response::CreatableTopicConfigs::default()
                                .with_name(sb(&c.name))
                                .with_value(osb(&c.value))
                                .with_read_only(c.read_only)
                                .with_config_source(c.config_source)
                                .with_is_sensitive(c.is_sensitive)
                        })
                        .collect(),
                );
            }
            r
        })
        .collect();
    CreateTopicsResponse::default()
        .with_throttle_time_ms(d.throttle_time_ms)
        .with_topics(topics)
}

pub(super) fn create_topics_resp_to_domain(
    k: CreateTopicsResponse,
) -> crate::domain::CreateTopicsResponse {
    crate::domain::CreateTopicsResponse {
        throttle_time_ms: k.throttle_time_ms,
        topics: k
            .topics
            .into_iter()
            .map(|t| CreatableTopicResult {
                name: st(&t.name.0),
                topic_id: t.topic_id,
                error: ErrorCode(t.error_code),
                error_message: ost(&t.error_message),
                num_partitions: t.num_partitions,
                replication_factor: t.replication_factor,
                configs: t
                    .configs
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| CreatableTopicConfig {
                        name: st(&c.name),
                        value: ost(&c.value),
                        read_only: c.read_only,
                        config_source: c.config_source,
                        is_sensitive: c.is_sensitive,
                    })
                    .collect(),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// DeleteTopics

pub(super) fn delete_topics_req_to_domain(
    k: DeleteTopicsRequest,
    v: i16,
) -> crate::domain::DeleteTopicsRequest {
    let topics = if v >= 6 {
        k.topics
            .into_iter()
            .map(|t| match t.name {
                Some(n) => TopicRef::Name(st(&n.0)),
                None => TopicRef::Id(t.topic_id),
            })
            .collect()
    } else {
        k.topic_names
            .into_iter()
            .map(|n| TopicRef::Name(st(&n.0)))
            .collect()
    };
    crate::domain::DeleteTopicsRequest {
        topics,
        timeout_ms: k.timeout_ms,
    }
}

pub(super) fn delete_topics_req_from_domain(
    d: &crate::domain::DeleteTopicsRequest,
    v: i16,
) -> Result<DeleteTopicsRequest, WireError> {
    let mut k = DeleteTopicsRequest::default().with_timeout_ms(d.timeout_ms);
    for t in &d.topics {
        match t {
            TopicRef::Name(n) if v >= 6 => k
                .topics
                .push(delete_topics_request::DeleteTopicState::default().with_name(Some(tn(n)))),
            TopicRef::Name(n) => k.topic_names.push(tn(n)),
            TopicRef::Id(id) if v >= 6 => k.topics.push(
                delete_topics_request::DeleteTopicState::default()
                    .with_name(None)
                    .with_topic_id(*id),
            ),
            TopicRef::Id(id) => {
                return Err(WireError::Encode(format!(
                    "DeleteTopics v{v} cannot name topic id {id}"
                )))
            }
        }
    }
    Ok(k)
}

pub(super) fn delete_topics_resp_from_domain(
    d: &crate::domain::DeleteTopicsResponse,
    v: i16,
) -> DeleteTopicsResponse {
    let responses = d
        .responses
        .iter()
        .map(|t| {
            let name = match &t.name {
                Some(n) => Some(tn(n)),
                None if v >= 6 => None,
                None => Some(TopicName::default()),
            };
            let mut r = delete_topics_response::DeletableTopicResult::default()
                .with_name(name)
                .with_error_code(t.error.0);
            if v >= 6 {
                r.topic_id = t.topic_id;
            }
            if v >= 5 {
                r.error_message = osb(&t.error_message);
            }
            r
        })
        .collect();
    DeleteTopicsResponse::default()
        .with_throttle_time_ms(d.throttle_time_ms)
        .with_responses(responses)
}

pub(super) fn delete_topics_resp_to_domain(
    k: DeleteTopicsResponse,
) -> crate::domain::DeleteTopicsResponse {
    crate::domain::DeleteTopicsResponse {
        throttle_time_ms: k.throttle_time_ms,
        responses: k
            .responses
            .into_iter()
            .map(|t| DeletableTopicResult {
                name: t.name.map(|n| st(&n.0)),
                topic_id: t.topic_id,
                error: ErrorCode(t.error_code),
                error_message: ost(&t.error_message),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// DescribeConfigs

pub(super) fn describe_configs_req_to_domain(
    k: DescribeConfigsRequest,
) -> crate::domain::DescribeConfigsRequest {
    crate::domain::DescribeConfigsRequest {
        resources: k
            .resources
            .into_iter()
            .map(|r| DescribeConfigsResource {
                resource_type: r.resource_type,
                resource_name: st(&r.resource_name),
                configuration_keys: r.configuration_keys.map(|ks| ks.iter().map(st).collect()),
            })
            .collect(),
        include_synonyms: k.include_synonyms,
        include_documentation: k.include_documentation,
    }
}

pub(super) fn describe_configs_req_from_domain(
    d: &crate::domain::DescribeConfigsRequest,
    v: i16,
) -> DescribeConfigsRequest {
    let mut k = DescribeConfigsRequest::default()
        .with_resources(
            d.resources
                .iter()
                .map(|r| {
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(r.resource_type)
                        .with_resource_name(sb(&r.resource_name))
                        .with_configuration_keys(
                            r.configuration_keys
                                .as_ref()
                                .map(|ks| ks.iter().map(|s| sb(s)).collect()),
                        )
                })
                .collect(),
        )
        .with_include_synonyms(d.include_synonyms);
    if v >= 3 {
        k.include_documentation = d.include_documentation;
    }
    k
}

pub(super) fn describe_configs_resp_from_domain(
    d: &crate::domain::DescribeConfigsResponse,
    v: i16,
) -> DescribeConfigsResponse {
    let results = d
        .results
        .iter()
        .map(|r| {
            describe_configs_response::DescribeConfigsResult::default()
                .with_error_code(r.error.0)
                .with_error_message(osb(&r.error_message))
                .with_resource_type(r.resource_type)
                .with_resource_name(sb(&r.resource_name))
                .with_configs(
                    r.configs
                        .iter()
                        .map(|c| {
                            let mut e =
                                describe_configs_response::DescribeConfigsResourceResult::default()
                                    .with_name(sb(&c.name))
                                    .with_value(osb(&c.value))
                                    .with_read_only(c.read_only)
                                    .with_config_source(c.config_source)
                                    .with_is_sensitive(c.is_sensitive);
                            if v >= 3 {
                                e.config_type = c.config_type;
                                e.documentation = osb(&c.documentation);
                            }
                            e
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeConfigsResponse::default()
        .with_throttle_time_ms(d.throttle_time_ms)
        .with_results(results)
}

pub(super) fn describe_configs_resp_to_domain(
    k: DescribeConfigsResponse,
    v: i16,
) -> crate::domain::DescribeConfigsResponse {
    crate::domain::DescribeConfigsResponse {
        throttle_time_ms: k.throttle_time_ms,
        results: k
            .results
            .into_iter()
            .map(|r| DescribeConfigsResult {
                error: ErrorCode(r.error_code),
                error_message: ost(&r.error_message),
                resource_type: r.resource_type,
                resource_name: st(&r.resource_name),
                configs: r
                    .configs
                    .into_iter()
                    .map(|c| DescribeConfigsEntry {
                        name: st(&c.name),
                        value: ost(&c.value),
                        read_only: c.read_only,
                        config_source: c.config_source,
                        is_sensitive: c.is_sensitive,
                        config_type: c.config_type,
                        // kafka_protocol's default for the absent field is Some("").
                        documentation: if v >= 3 { ost(&c.documentation) } else { None },
                    })
                    .collect(),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// CreatePartitions

pub(super) fn create_partitions_req_to_domain(
    k: CreatePartitionsRequest,
) -> crate::domain::CreatePartitionsRequest {
    crate::domain::CreatePartitionsRequest {
        topics: k
            .topics
            .into_iter()
            .map(|t| CreatePartitionsTopic {
                name: st(&t.name.0),
                count: t.count,
                assignments: t
                    .assignments
                    .map(|a| a.into_iter().map(|x| ids(&x.broker_ids)).collect()),
            })
            .collect(),
        timeout_ms: k.timeout_ms,
        validate_only: k.validate_only,
    }
}

pub(super) fn create_partitions_req_from_domain(
    d: &crate::domain::CreatePartitionsRequest,
) -> CreatePartitionsRequest {
    CreatePartitionsRequest::default()
        .with_topics(
            d.topics
                .iter()
                .map(|t| {
                    create_partitions_request::CreatePartitionsTopic::default()
                        .with_name(tn(&t.name))
                        .with_count(t.count)
                        .with_assignments(t.assignments.as_ref().map(|a| {
                            a.iter()
                                .map(|b| {
                                    create_partitions_request::CreatePartitionsAssignment::default()
                                        .with_broker_ids(brokers(b))
                                })
                                .collect()
                        }))
                })
                .collect(),
        )
        .with_timeout_ms(d.timeout_ms)
        .with_validate_only(d.validate_only)
}

pub(super) fn create_partitions_resp_from_domain(
    d: &crate::domain::CreatePartitionsResponse,
) -> CreatePartitionsResponse {
    CreatePartitionsResponse::default()
        .with_throttle_time_ms(d.throttle_time_ms)
        .with_results(
            d.results
                .iter()
                .map(|r| {
                    create_partitions_response::CreatePartitionsTopicResult::default()
                        .with_name(tn(&r.name))
                        .with_error_code(r.error.0)
                        .with_error_message(osb(&r.error_message))
                })
                .collect(),
        )
}

pub(super) fn create_partitions_resp_to_domain(
    k: CreatePartitionsResponse,
) -> crate::domain::CreatePartitionsResponse {
    crate::domain::CreatePartitionsResponse {
        throttle_time_ms: k.throttle_time_ms,
        results: k
            .results
            .into_iter()
            .map(|r| CreatePartitionsTopicResult {
                name: st(&r.name.0),
                error: ErrorCode(r.error_code),
                error_message: ost(&r.error_message),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// DescribeCluster

pub(super) fn describe_cluster_req_to_domain(
    k: DescribeClusterRequest,
) -> crate::domain::DescribeClusterRequest {
    crate::domain::DescribeClusterRequest {
        include_cluster_authorized_operations: k.include_cluster_authorized_operations,
        endpoint_type: k.endpoint_type,
    }
}

pub(super) fn describe_cluster_req_from_domain(
    d: &crate::domain::DescribeClusterRequest,
    v: i16,
) -> DescribeClusterRequest {
    let mut k = DescribeClusterRequest::default()
        .with_include_cluster_authorized_operations(d.include_cluster_authorized_operations);
    if v >= 1 {
        k.endpoint_type = d.endpoint_type;
    }
    k
}

pub(super) fn describe_cluster_resp_from_domain(
    d: &crate::domain::DescribeClusterResponse,
    v: i16,
) -> DescribeClusterResponse {
    let mut k = DescribeClusterResponse::default()
        .with_throttle_time_ms(d.throttle_time_ms)
        .with_error_code(d.error.0)
        .with_error_message(osb(&d.error_message))
        .with_cluster_id(sb(&d.cluster_id))
        .with_controller_id(BrokerId(d.controller_id))
        .with_cluster_authorized_operations(d.cluster_authorized_operations)
        .with_brokers(
            d.brokers
                .iter()
                .map(|b| {
                    describe_cluster_response::DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(b.node_id))
                        .with_host(sb(&b.host))
                        .with_port(b.port)
                        .with_rack(osb(&b.rack))
                })
                .collect(),
        );
    if v >= 1 {
        k.endpoint_type = d.endpoint_type;
    }
    k
}

pub(super) fn describe_cluster_resp_to_domain(
    k: DescribeClusterResponse,
) -> crate::domain::DescribeClusterResponse {
    crate::domain::DescribeClusterResponse {
        throttle_time_ms: k.throttle_time_ms,
        error: ErrorCode(k.error_code),
        error_message: ost(&k.error_message),
        endpoint_type: k.endpoint_type,
        cluster_id: st(&k.cluster_id),
        controller_id: k.controller_id.0,
        brokers: k
            .brokers
            .into_iter()
            .map(|b| BrokerInfo {
                node_id: b.broker_id.0,
                host: st(&b.host),
                port: b.port,
                rack: ost(&b.rack),
            })
            .collect(),
        cluster_authorized_operations: k.cluster_authorized_operations,
    }
}

// ---------------------------------------------------------------------------------------
// InitProducerId

pub(super) fn init_producer_id_req_to_domain(
    k: kafka_protocol::messages::InitProducerIdRequest,
) -> InitProducerIdRequest {
    InitProducerIdRequest {
        transactional_id: k.transactional_id.as_ref().map(|t| st(&t.0)),
        transaction_timeout_ms: k.transaction_timeout_ms,
        // Before v3 the fields are absent and decode as their schema default, -1.
        producer_id: k.producer_id.0,
        producer_epoch: k.producer_epoch,
    }
}

pub(super) fn init_producer_id_req_from_domain(
    d: &InitProducerIdRequest,
    v: i16,
) -> kafka_protocol::messages::InitProducerIdRequest {
    let mut k = kafka_protocol::messages::InitProducerIdRequest::default()
        .with_transactional_id(
            d.transactional_id
                .as_deref()
                .map(|t| TransactionalId(sb(t))),
        )
        .with_transaction_timeout_ms(d.transaction_timeout_ms);
    if v >= 3 {
        k.producer_id = kafka_protocol::messages::ProducerId(d.producer_id);
        k.producer_epoch = d.producer_epoch;
    }
    k
}

pub(super) fn init_producer_id_resp_from_domain(
    d: &InitProducerIdResponse,
) -> kafka_protocol::messages::InitProducerIdResponse {
    kafka_protocol::messages::InitProducerIdResponse::default()
        .with_throttle_time_ms(d.throttle_time_ms)
        .with_error_code(d.error.0)
        .with_producer_id(kafka_protocol::messages::ProducerId(d.producer_id))
        .with_producer_epoch(d.producer_epoch)
}

pub(super) fn init_producer_id_resp_to_domain(
    k: kafka_protocol::messages::InitProducerIdResponse,
) -> InitProducerIdResponse {
    InitProducerIdResponse {
        throttle_time_ms: k.throttle_time_ms,
        error: ErrorCode(k.error_code),
        producer_id: k.producer_id.0,
        producer_epoch: k.producer_epoch,
    }
}

// ---------------------------------------------------------------------------------------
// DeleteRecords

pub(super) fn delete_records_req_to_domain(
    k: kafka_protocol::messages::DeleteRecordsRequest,
) -> DeleteRecordsRequest {
    DeleteRecordsRequest {
        topics: (k.topics.iter())
            .map(|t| DeleteRecordsTopic {
                name: st(&t.name.0),
                partitions: (t.partitions.iter())
                    .map(|p| (p.partition_index, p.offset))
                    .collect(),
            })
            .collect(),
        timeout_ms: k.timeout_ms,
    }
}

pub(super) fn delete_records_req_from_domain(
    d: &DeleteRecordsRequest,
) -> kafka_protocol::messages::DeleteRecordsRequest {
    use kafka_protocol::messages::delete_records_request as r;
    kafka_protocol::messages::DeleteRecordsRequest::default()
        .with_timeout_ms(d.timeout_ms)
        .with_topics(
            (d.topics.iter())
                .map(|t| {
                    r::DeleteRecordsTopic::default()
                        .with_name(tn(&t.name))
                        .with_partitions(
                            (t.partitions.iter())
                                .map(|(partition, offset)| {
                                    r::DeleteRecordsPartition::default()
                                        .with_partition_index(*partition)
                                        .with_offset(*offset)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

pub(super) fn delete_records_resp_from_domain(
    d: &DeleteRecordsResponse,
) -> kafka_protocol::messages::DeleteRecordsResponse {
    use kafka_protocol::messages::delete_records_response as r;
    kafka_protocol::messages::DeleteRecordsResponse::default()
        .with_throttle_time_ms(d.throttle_time_ms)
        .with_topics(
            (d.topics.iter())
                .map(|t| {
                    r::DeleteRecordsTopicResult::default()
                        .with_name(tn(&t.name))
                        .with_partitions(
                            (t.partitions.iter())
                                .map(|p| {
                                    r::DeleteRecordsPartitionResult::default()
                                        .with_partition_index(p.partition)
                                        .with_low_watermark(p.low_watermark)
                                        .with_error_code(p.error.0)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

pub(super) fn delete_records_resp_to_domain(
    k: kafka_protocol::messages::DeleteRecordsResponse,
) -> DeleteRecordsResponse {
    DeleteRecordsResponse {
        throttle_time_ms: k.throttle_time_ms,
        topics: (k.topics.iter())
            .map(|t| DeleteRecordsTopicResult {
                name: st(&t.name.0),
                partitions: (t.partitions.iter())
                    .map(|p| DeleteRecordsPartitionResult {
                        partition: p.partition_index,
                        low_watermark: p.low_watermark,
                        error: ErrorCode(p.error_code),
                    })
                    .collect(),
            })
            .collect(),
    }
}
