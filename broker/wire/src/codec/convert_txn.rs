//! Conversions for the transaction APIs: AddPartitionsToTxn (v0-3), AddOffsetsToTxn,
//! EndTxn, TxnOffsetCommit, WriteTxnMarkers, DescribeTransactions, ListTransactions,
//! DescribeProducers.
//!
//! Same invariants as `convert.rs`: `*_from_domain(x, v)` sets only fields that exist at `v`
//! (kafka_protocol refuses to encode a non-default value in an absent field), and
//! `*_to_domain` copies every field, so the pair round-trips whenever `x` holds the schema
//! default in the fields `v` lacks.

use kafka_protocol::messages::{
    add_partitions_to_txn_request as apr, add_partitions_to_txn_response as aps,
    describe_producers_request as dpr, describe_producers_response as dps,
    describe_transactions_response as dts, list_transactions_response as lts,
    txn_offset_commit_request as tcr, txn_offset_commit_response as tcs,
    write_txn_markers_request as wmr, write_txn_markers_response as wms, AddOffsetsToTxnRequest,
    AddOffsetsToTxnResponse, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    DescribeProducersRequest, DescribeProducersResponse, DescribeTransactionsRequest,
    DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse, GroupId, ListTransactionsRequest,
    ListTransactionsResponse, ProducerId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
    WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};

use super::convert_helpers::{sb, st, tid, tn};
use crate::domain::txn as d;
use crate::error::ErrorCode;

// ---- AddPartitionsToTxn (v0-3: one transaction, top-level fields) ----------------------

pub(super) fn add_partitions_req_to_domain(
    k: AddPartitionsToTxnRequest,
) -> d::AddPartitionsToTxnRequest {
    d::AddPartitionsToTxnRequest {
        transactional_id: st(&k.v3_and_below_transactional_id.0),
        producer_id: k.v3_and_below_producer_id.0,
        producer_epoch: k.v3_and_below_producer_epoch,
        topics: k
            .v3_and_below_topics
            .into_iter()
            .map(|t| d::TxnTopic {
                name: st(&t.name.0),
                partitions: t.partitions,
            })
            .collect(),
    }
}

pub(super) fn add_partitions_req_from_domain(
    x: &d::AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnRequest {
    let mut k = AddPartitionsToTxnRequest::default();
    k.v3_and_below_transactional_id = tid(&x.transactional_id);
    k.v3_and_below_producer_id = ProducerId(x.producer_id);
    k.v3_and_below_producer_epoch = x.producer_epoch;
    k.v3_and_below_topics = x
        .topics
        .iter()
        .map(|t| {
            let mut kt = apr::AddPartitionsToTxnTopic::default();
            kt.name = tn(&t.name);
            kt.partitions = t.partitions.clone();
            kt
        })
        .collect();
    k
}

pub(super) fn add_partitions_resp_from_domain(
    x: &d::AddPartitionsToTxnResponse,
) -> AddPartitionsToTxnResponse {
    let mut k = AddPartitionsToTxnResponse::default();
    k.throttle_time_ms = x.throttle_time_ms;
    k.results_by_topic_v3_and_below = x
        .results
        .iter()
        .map(|t| {
            let mut kt = aps::AddPartitionsToTxnTopicResult::default();
            kt.name = tn(&t.name);
            kt.results_by_partition = t
                .partitions
                .iter()
                .map(|p| {
                    let mut kp = aps::AddPartitionsToTxnPartitionResult::default();
                    kp.partition_index = p.partition;
                    kp.partition_error_code = p.error.0;
                    kp
                })
                .collect();
            kt
        })
        .collect();
    k
}

pub(super) fn add_partitions_resp_to_domain(
    k: AddPartitionsToTxnResponse,
) -> d::AddPartitionsToTxnResponse {
    d::AddPartitionsToTxnResponse {
        throttle_time_ms: k.throttle_time_ms,
        results: k
            .results_by_topic_v3_and_below
            .into_iter()
            .map(|t| d::TxnTopicResult {
                name: st(&t.name.0),
                partitions: t
                    .results_by_partition
                    .into_iter()
                    .map(|p| d::TxnPartitionResult {
                        partition: p.partition_index,
                        error: ErrorCode(p.partition_error_code),
                    })
                    .collect(),
            })
            .collect(),
    }
}

// ---- AddOffsetsToTxn -------------------------------------------------------------------

pub(super) fn add_offsets_req_to_domain(k: AddOffsetsToTxnRequest) -> d::AddOffsetsToTxnRequest {
    d::AddOffsetsToTxnRequest {
        transactional_id: st(&k.transactional_id.0),
        producer_id: k.producer_id.0,
        producer_epoch: k.producer_epoch,
        group_id: st(&k.group_id.0),
    }
}

pub(super) fn add_offsets_req_from_domain(x: &d::AddOffsetsToTxnRequest) -> AddOffsetsToTxnRequest {
    let mut k = AddOffsetsToTxnRequest::default();
    k.transactional_id = tid(&x.transactional_id);
    k.producer_id = ProducerId(x.producer_id);
    k.producer_epoch = x.producer_epoch;
    k.group_id = GroupId(sb(&x.group_id));
    k
}

pub(super) fn add_offsets_resp_from_domain(
    x: &d::AddOffsetsToTxnResponse,
) -> AddOffsetsToTxnResponse {
    let mut k = AddOffsetsToTxnResponse::default();
    k.throttle_time_ms = x.throttle_time_ms;
    k.error_code = x.error.0;
    k
}

pub(super) fn add_offsets_resp_to_domain(k: AddOffsetsToTxnResponse) -> d::AddOffsetsToTxnResponse {
    d::AddOffsetsToTxnResponse {
        throttle_time_ms: k.throttle_time_ms,
        error: ErrorCode(k.error_code),
    }
}

// ---- EndTxn ------------------------------------------------------------------------------

pub(super) fn end_txn_req_to_domain(k: EndTxnRequest) -> d::EndTxnRequest {
    d::EndTxnRequest {
        transactional_id: st(&k.transactional_id.0),
        producer_id: k.producer_id.0,
        producer_epoch: k.producer_epoch,
        committed: k.committed,
    }
}

pub(super) fn end_txn_req_from_domain(x: &d::EndTxnRequest) -> EndTxnRequest {
    let mut k = EndTxnRequest::default();
    k.transactional_id = tid(&x.transactional_id);
    k.producer_id = ProducerId(x.producer_id);
    k.producer_epoch = x.producer_epoch;
    k.committed = x.committed;
    k
}

pub(super) fn end_txn_resp_from_domain(x: &d::EndTxnResponse, v: i16) -> EndTxnResponse {
    let mut k = EndTxnResponse::default();
    k.throttle_time_ms = x.throttle_time_ms;
    k.error_code = x.error.0;
    if v >= 5 {
        k.producer_id = ProducerId(x.producer_id);
        k.producer_epoch = x.producer_epoch;
    }
    k
}

pub(super) fn end_txn_resp_to_domain(k: EndTxnResponse) -> d::EndTxnResponse {
    d::EndTxnResponse {
        throttle_time_ms: k.throttle_time_ms,
        error: ErrorCode(k.error_code),
        producer_id: k.producer_id.0,
        producer_epoch: k.producer_epoch,
    }
}

// ---- TxnOffsetCommit ---------------------------------------------------------------------

pub(super) fn txn_offset_commit_req_to_domain(
    k: TxnOffsetCommitRequest,
) -> d::TxnOffsetCommitRequest {
    d::TxnOffsetCommitRequest {
        transactional_id: st(&k.transactional_id.0),
        group_id: st(&k.group_id.0),
        producer_id: k.producer_id.0,
        producer_epoch: k.producer_epoch,
        generation_id: k.generation_id,
        member_id: st(&k.member_id),
        group_instance_id: k.group_instance_id.as_ref().map(st),
        topics: k
            .topics
            .into_iter()
            .map(|t| d::TxnOffsetCommitTopic {
                name: st(&t.name.0),
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| d::TxnOffsetCommitPartition {
                        partition: p.partition_index,
                        committed_offset: p.committed_offset,
                        committed_leader_epoch: p.committed_leader_epoch,
                        committed_metadata: p.committed_metadata.as_ref().map(st),
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub(super) fn txn_offset_commit_req_from_domain(
    x: &d::TxnOffsetCommitRequest,
    v: i16,
) -> TxnOffsetCommitRequest {
    let mut k = TxnOffsetCommitRequest::default();
    k.transactional_id = tid(&x.transactional_id);
    k.group_id = GroupId(sb(&x.group_id));
    k.producer_id = ProducerId(x.producer_id);
    k.producer_epoch = x.producer_epoch;
    if v >= 3 {
        k.generation_id = x.generation_id;
        k.member_id = sb(&x.member_id);
        k.group_instance_id = x.group_instance_id.as_deref().map(sb);
    }
    k.topics = x
        .topics
        .iter()
        .map(|t| {
            let mut kt = tcr::TxnOffsetCommitRequestTopic::default();
            kt.name = tn(&t.name);
            kt.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut kp = tcr::TxnOffsetCommitRequestPartition::default();
                    kp.partition_index = p.partition;
                    kp.committed_offset = p.committed_offset;
                    if v >= 2 {
                        kp.committed_leader_epoch = p.committed_leader_epoch;
                    }
                    kp.committed_metadata = p.committed_metadata.as_deref().map(sb);
                    kp
                })
                .collect();
            kt
        })
        .collect();
    k
}

pub(super) fn txn_offset_commit_resp_from_domain(
    x: &d::TxnOffsetCommitResponse,
) -> TxnOffsetCommitResponse {
    let mut k = TxnOffsetCommitResponse::default();
    k.throttle_time_ms = x.throttle_time_ms;
    k.topics = x
        .topics
        .iter()
        .map(|t| {
            let mut kt = tcs::TxnOffsetCommitResponseTopic::default();
            kt.name = tn(&t.name);
            kt.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut kp = tcs::TxnOffsetCommitResponsePartition::default();
                    kp.partition_index = p.partition;
                    kp.error_code = p.error.0;
                    kp
                })
                .collect();
            kt
        })
        .collect();
    k
}

pub(super) fn txn_offset_commit_resp_to_domain(
    k: TxnOffsetCommitResponse,
) -> d::TxnOffsetCommitResponse {
    d::TxnOffsetCommitResponse {
        throttle_time_ms: k.throttle_time_ms,
        topics: k
            .topics
            .into_iter()
            .map(|t| d::TxnTopicResult {
                name: st(&t.name.0),
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| d::TxnPartitionResult {
                        partition: p.partition_index,
                        error: ErrorCode(p.error_code),
                    })
                    .collect(),
            })
            .collect(),
    }
}

// ---- WriteTxnMarkers (v1) ------------------------------------------------------------------

pub(super) fn write_markers_req_to_domain(k: WriteTxnMarkersRequest) -> d::WriteTxnMarkersRequest {
    d::WriteTxnMarkersRequest {
        markers: k
            .markers
            .into_iter()
            .map(|m| d::WritableTxnMarker {
                producer_id: m.producer_id.0,
                producer_epoch: m.producer_epoch,
                committed: m.transaction_result,
                topics: m
                    .topics
                    .into_iter()
                    .map(|t| d::TxnTopic {
                        name: st(&t.name.0),
                        partitions: t.partition_indexes,
                    })
                    .collect(),
                coordinator_epoch: m.coordinator_epoch,
            })
            .collect(),
    }
}

pub(super) fn write_markers_req_from_domain(
    x: &d::WriteTxnMarkersRequest,
) -> WriteTxnMarkersRequest {
    let mut k = WriteTxnMarkersRequest::default();
    k.markers = x
        .markers
        .iter()
        .map(|m| {
            let mut km = wmr::WritableTxnMarker::default();
            km.producer_id = ProducerId(m.producer_id);
            km.producer_epoch = m.producer_epoch;
            km.transaction_result = m.committed;
            km.coordinator_epoch = m.coordinator_epoch;
            km.topics = m
                .topics
                .iter()
                .map(|t| {
                    let mut kt = wmr::WritableTxnMarkerTopic::default();
                    kt.name = tn(&t.name);
                    kt.partition_indexes = t.partitions.clone();
                    kt
                })
                .collect();
            km
        })
        .collect();
    k
}

pub(super) fn write_markers_resp_from_domain(
    x: &d::WriteTxnMarkersResponse,
) -> WriteTxnMarkersResponse {
    let mut k = WriteTxnMarkersResponse::default();
    k.markers = x
        .markers
        .iter()
        .map(|m| {
            let mut km = wms::WritableTxnMarkerResult::default();
            km.producer_id = ProducerId(m.producer_id);
            km.topics = m
                .topics
                .iter()
                .map(|t| {
                    let mut kt = wms::WritableTxnMarkerTopicResult::default();
                    kt.name = tn(&t.name);
                    kt.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut kp = wms::WritableTxnMarkerPartitionResult::default();
                            kp.partition_index = p.partition;
                            kp.error_code = p.error.0;
                            kp
                        })
                        .collect();
                    kt
                })
                .collect();
            km
        })
        .collect();
    k
}

pub(super) fn write_markers_resp_to_domain(
    k: WriteTxnMarkersResponse,
) -> d::WriteTxnMarkersResponse {
    d::WriteTxnMarkersResponse {
        markers: k
            .markers
            .into_iter()
            .map(|m| d::WriteTxnMarkersResult {
                producer_id: m.producer_id.0,
                topics: m
                    .topics
                    .into_iter()
                    .map(|t| d::TxnTopicResult {
                        name: st(&t.name.0),
                        partitions: t
                            .partitions
                            .into_iter()
                            .map(|p| d::TxnPartitionResult {
                                partition: p.partition_index,
                                error: ErrorCode(p.error_code),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

// ---- DescribeTransactions ------------------------------------------------------------------

pub(super) fn describe_txns_req_to_domain(
    k: DescribeTransactionsRequest,
) -> d::DescribeTransactionsRequest {
    d::DescribeTransactionsRequest {
        transactional_ids: k.transactional_ids.iter().map(|t| st(&t.0)).collect(),
    }
}

pub(super) fn describe_txns_req_from_domain(
    x: &d::DescribeTransactionsRequest,
) -> DescribeTransactionsRequest {
    let mut k = DescribeTransactionsRequest::default();
    k.transactional_ids = x.transactional_ids.iter().map(|t| tid(t)).collect();
    k
}

pub(super) fn describe_txns_resp_from_domain(
    x: &d::DescribeTransactionsResponse,
) -> DescribeTransactionsResponse {
    let mut k = DescribeTransactionsResponse::default();
    k.throttle_time_ms = x.throttle_time_ms;
    k.transaction_states = x
        .transactions
        .iter()
        .map(|t| {
            let mut ks = dts::TransactionState::default();
            ks.error_code = t.error.0;
            ks.transactional_id = tid(&t.transactional_id);
            ks.transaction_state = sb(&t.state);
            ks.transaction_timeout_ms = t.timeout_ms;
            ks.transaction_start_time_ms = t.start_time_ms;
            ks.producer_id = ProducerId(t.producer_id);
            ks.producer_epoch = t.producer_epoch;
            ks.topics = t
                .topics
                .iter()
                .map(|topic| {
                    let mut kt = dts::TopicData::default();
                    kt.topic = tn(&topic.name);
                    kt.partitions = topic.partitions.clone();
                    kt
                })
                .collect();
            ks
        })
        .collect();
    k
}

pub(super) fn describe_txns_resp_to_domain(
    k: DescribeTransactionsResponse,
) -> d::DescribeTransactionsResponse {
    d::DescribeTransactionsResponse {
        throttle_time_ms: k.throttle_time_ms,
        transactions: k
            .transaction_states
            .into_iter()
            .map(|t| d::TransactionDescription {
                error: ErrorCode(t.error_code),
                transactional_id: st(&t.transactional_id.0),
                state: st(&t.transaction_state),
                timeout_ms: t.transaction_timeout_ms,
                start_time_ms: t.transaction_start_time_ms,
                producer_id: t.producer_id.0,
                producer_epoch: t.producer_epoch,
                topics: t
                    .topics
                    .into_iter()
                    .map(|topic| d::TxnTopic {
                        name: st(&topic.topic.0),
                        partitions: topic.partitions,
                    })
                    .collect(),
            })
            .collect(),
    }
}

// ---- ListTransactions ------------------------------------------------------------------------

pub(super) fn list_txns_req_to_domain(k: ListTransactionsRequest) -> d::ListTransactionsRequest {
    d::ListTransactionsRequest {
        state_filters: k.state_filters.iter().map(st).collect(),
        producer_id_filters: k.producer_id_filters.iter().map(|p| p.0).collect(),
        duration_filter_ms: k.duration_filter,
    }
}

pub(super) fn list_txns_req_from_domain(
    x: &d::ListTransactionsRequest,
    v: i16,
) -> ListTransactionsRequest {
    let mut k = ListTransactionsRequest::default();
    k.state_filters = x.state_filters.iter().map(|s| sb(s)).collect();
    k.producer_id_filters = x
        .producer_id_filters
        .iter()
        .map(|p| ProducerId(*p))
        .collect();
    if v >= 1 {
        k.duration_filter = x.duration_filter_ms;
    }
    k
}

pub(super) fn list_txns_resp_from_domain(
    x: &d::ListTransactionsResponse,
) -> ListTransactionsResponse {
    let mut k = ListTransactionsResponse::default();
    k.throttle_time_ms = x.throttle_time_ms;
    k.error_code = x.error.0;
    k.unknown_state_filters = x.unknown_state_filters.iter().map(|s| sb(s)).collect();
    k.transaction_states = x
        .transactions
        .iter()
        .map(|t| {
            let mut ks = lts::TransactionState::default();
            ks.transactional_id = tid(&t.transactional_id);
            ks.producer_id = ProducerId(t.producer_id);
            ks.transaction_state = sb(&t.state);
            ks
        })
        .collect();
    k
}

pub(super) fn list_txns_resp_to_domain(k: ListTransactionsResponse) -> d::ListTransactionsResponse {
    d::ListTransactionsResponse {
        throttle_time_ms: k.throttle_time_ms,
        error: ErrorCode(k.error_code),
        unknown_state_filters: k.unknown_state_filters.iter().map(st).collect(),
        transactions: k
            .transaction_states
            .into_iter()
            .map(|t| d::TransactionListing {
                transactional_id: st(&t.transactional_id.0),
                producer_id: t.producer_id.0,
                state: st(&t.transaction_state),
            })
            .collect(),
    }
}

// ---- DescribeProducers -----------------------------------------------------------------------

pub(super) fn describe_producers_req_to_domain(
    k: DescribeProducersRequest,
) -> d::DescribeProducersRequest {
    d::DescribeProducersRequest {
        topics: k
            .topics
            .into_iter()
            .map(|t| d::TxnTopic {
                name: st(&t.name.0),
                partitions: t.partition_indexes,
            })
            .collect(),
    }
}

pub(super) fn describe_producers_req_from_domain(
    x: &d::DescribeProducersRequest,
) -> DescribeProducersRequest {
    let mut k = DescribeProducersRequest::default();
    k.topics = x
        .topics
        .iter()
        .map(|t| {
            let mut kt = dpr::TopicRequest::default();
            kt.name = tn(&t.name);
            kt.partition_indexes = t.partitions.clone();
            kt
        })
        .collect();
    k
}

pub(super) fn describe_producers_resp_from_domain(
    x: &d::DescribeProducersResponse,
) -> DescribeProducersResponse {
    let mut k = DescribeProducersResponse::default();
    k.throttle_time_ms = x.throttle_time_ms;
    k.topics = x
        .topics
        .iter()
        .map(|t| {
            let mut kt = dps::TopicResponse::default();
            kt.name = tn(&t.name);
            kt.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut kp = dps::PartitionResponse::default();
                    kp.partition_index = p.partition;
                    kp.error_code = p.error.0;
                    kp.error_message = p.error_message.as_deref().map(sb);
                    kp.active_producers = p
                        .producers
                        .iter()
                        .map(|s| {
                            let mut ks = dps::ProducerState::default();
                            ks.producer_id = ProducerId(s.producer_id);
                            ks.producer_epoch = s.producer_epoch;
                            ks.last_sequence = s.last_sequence;
                            ks.last_timestamp = s.last_timestamp;
                            ks.coordinator_epoch = s.coordinator_epoch;
                            ks.current_txn_start_offset = s.current_txn_start_offset;
                            ks
                        })
                        .collect();
                    kp
                })
                .collect();
            kt
        })
        .collect();
    k
}

pub(super) fn describe_producers_resp_to_domain(
    k: DescribeProducersResponse,
) -> d::DescribeProducersResponse {
    d::DescribeProducersResponse {
        throttle_time_ms: k.throttle_time_ms,
        topics: k
            .topics
            .into_iter()
            .map(|t| d::DescribeProducersTopic {
                name: st(&t.name.0),
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| d::DescribeProducersPartition {
                        partition: p.partition_index,
                        error: ErrorCode(p.error_code),
                        error_message: p.error_message.as_ref().map(st),
                        producers: p
                            .active_producers
                            .into_iter()
                            .map(|s| d::ProducerDescription {
                                producer_id: s.producer_id.0,
                                producer_epoch: s.producer_epoch,
                                last_sequence: s.last_sequence,
                                last_timestamp: s.last_timestamp,
                                coordinator_epoch: s.coordinator_epoch,
                                current_txn_start_offset: s.current_txn_start_offset,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}
