//! Conversions for the cluster APIs: OffsetForLeaderEpoch (v2-4), ElectLeaders
//! (v0-2), AlterPartitionReassignments (v0-1), ListPartitionReassignments (v0),
//! IncrementalAlterConfigs (v0-1), AlterConfigs (v0-2) and the KIP-853 quorum APIs:
//! DescribeQuorum (v0-2), AddRaftVoter (v0) and RemoveRaftVoter (v0).
//!
//! Same invariants as `convert.rs`: `*_from_domain(x, v)` sets only fields that exist at `v`
//! (kafka_protocol refuses to encode a non-default value in an absent field), and
//! `*_to_domain` copies every field, so the pair round-trips whenever `x` holds the schema
//! default in the fields `v` lacks. One deliberate exception: ElectLeaders v0 has no
//! top-level error, so a non-NONE one is copied into the partition results instead of lost.

use kafka_protocol::messages::{
    add_raft_voter_request as arvr, alter_configs_request as acr, alter_configs_response as acs,
    alter_partition_reassignments_request as aprr, alter_partition_reassignments_response as aprs,
    describe_quorum_request as dqr, describe_quorum_response as dqs, elect_leaders_request as elr,
    elect_leaders_response as els, incremental_alter_configs_request as iacr,
    incremental_alter_configs_response as iacs, list_partition_reassignments_request as lprr,
    list_partition_reassignments_response as lprs, offset_for_leader_epoch_request as oler,
    offset_for_leader_epoch_response as oles, AddRaftVoterRequest, AddRaftVoterResponse,
    AlterConfigsRequest, AlterConfigsResponse, AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse, BrokerId, DescribeQuorumRequest, DescribeQuorumResponse,
    ElectLeadersRequest, ElectLeadersResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    RemoveRaftVoterRequest, RemoveRaftVoterResponse,
};

use kafka_protocol::protocol::StrBytes;

use super::convert_helpers::{brokers, ids, osb, ost, sb, st, tn};
use crate::domain::cluster as d;
use crate::domain::quorum as q;
use crate::error::ErrorCode;
use crate::WireError;

// ---- OffsetForLeaderEpoch ---------------------------------------------------------------

pub(super) fn ofle_req_to_domain(k: OffsetForLeaderEpochRequest) -> d::OffsetForLeaderEpochRequest {
    d::OffsetForLeaderEpochRequest {
        replica_id: k.replica_id.0,
        topics: (k.topics.into_iter())
            .map(|t| d::OffsetForLeaderTopic {
                topic: st(&t.topic.0),
                partitions: (t.partitions.into_iter())
                    .map(|p| d::OffsetForLeaderPartition {
                        partition: p.partition,
                        current_leader_epoch: p.current_leader_epoch,
                        leader_epoch: p.leader_epoch,
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub(super) fn ofle_req_from_domain(
    x: &d::OffsetForLeaderEpochRequest,
    v: i16,
) -> OffsetForLeaderEpochRequest {
    let mut k = OffsetForLeaderEpochRequest::default();
    if v >= 3 {
        k.replica_id = BrokerId(x.replica_id);
    }
    k.topics = (x.topics.iter())
        .map(|t| {
            let mut kt = oler::OffsetForLeaderTopic::default();
            kt.topic = tn(&t.topic);
            kt.partitions = (t.partitions.iter())
                .map(|p| {
                    let mut kp = oler::OffsetForLeaderPartition::default();
                    kp.partition = p.partition;
                    kp.current_leader_epoch = p.current_leader_epoch;
                    kp.leader_epoch = p.leader_epoch;
                    kp
                })
                .collect();
            kt
        })
        .collect();
    k
}

pub(super) fn ofle_resp_from_domain(
    x: &d::OffsetForLeaderEpochResponse,
) -> OffsetForLeaderEpochResponse {
    let mut k = OffsetForLeaderEpochResponse::default();
    k.throttle_time_ms = x.throttle_time_ms;
    k.topics = (x.topics.iter())
        .map(|t| {
            let mut kt = oles::OffsetForLeaderTopicResult::default();
            kt.topic = tn(&t.topic);
            kt.partitions = (t.partitions.iter())
                .map(|p| {
                    let mut kp = oles::EpochEndOffset::default();
                    kp.error_code = p.error.0;
                    kp.partition = p.partition;
                    kp.leader_epoch = p.leader_epoch;
                    kp.end_offset = p.end_offset;
                    kp
                })
                .collect();
            kt
        })
        .collect();
    k
}

pub(super) fn ofle_resp_to_domain(
    k: OffsetForLeaderEpochResponse,
) -> d::OffsetForLeaderEpochResponse {
    d::OffsetForLeaderEpochResponse {
        throttle_time_ms: k.throttle_time_ms,
        topics: (k.topics.into_iter())
            .map(|t| d::OffsetForLeaderTopicResult {
                topic: st(&t.topic.0),
                partitions: (t.partitions.into_iter())
                    .map(|p| d::EpochEndOffset {
                        error: ErrorCode(p.error_code),
                        partition: p.partition,
                        leader_epoch: p.leader_epoch,
                        end_offset: p.end_offset,
                    })
                    .collect(),
            })
            .collect(),
    }
}

// ---- ElectLeaders -----------------------------------------------------------------------

pub(super) fn elect_req_to_domain(k: ElectLeadersRequest) -> d::ElectLeadersRequest {
    d::ElectLeadersRequest {
        election_type: k.election_type,
        topic_partitions: k.topic_partitions.map(|topics| {
            (topics.into_iter())
                .map(|t| d::ElectLeadersTopic {
                    topic: st(&t.topic.0),
                    partitions: t.partitions,
                })
                .collect()
        }),
        timeout_ms: k.timeout_ms,
    }
}

/// v0 cannot say "unclean": refused rather than silently turned into a preferred election.
pub(super) fn elect_req_from_domain(
    x: &d::ElectLeadersRequest,
    v: i16,
) -> Result<ElectLeadersRequest, WireError> {
    let mut k = ElectLeadersRequest::default();
    if v >= 1 {
        k.election_type = x.election_type;
    } else if x.election_type != d::election_type::PREFERRED {
        return Err(WireError::Encode(format!(
            "ElectLeaders v0 has no election type (asked for {})",
            x.election_type
        )));
    }
    k.topic_partitions = x.topic_partitions.as_ref().map(|topics| {
        (topics.iter())
            .map(|t| {
                let mut kt = elr::TopicPartitions::default();
                kt.topic = tn(&t.topic);
                kt.partitions = t.partitions.clone();
                kt
            })
            .collect()
    });
    k.timeout_ms = x.timeout_ms;
    Ok(k)
}

pub(super) fn elect_resp_from_domain(x: &d::ElectLeadersResponse, v: i16) -> ElectLeadersResponse {
    let mut k = ElectLeadersResponse::default();
    k.throttle_time_ms = x.throttle_time_ms;
    // v0 has no top-level error: fold it into the partitions that report none.
    let fold = v < 1 && !x.error.is_ok();
    if v >= 1 {
        k.error_code = x.error.0;
    }
    k.replica_election_results = (x.results.iter())
        .map(|t| {
            let mut kt = els::ReplicaElectionResult::default();
            kt.topic = tn(&t.topic);
            kt.partition_result = (t.partitions.iter())
                .map(|p| {
                    let mut kp = els::PartitionResult::default();
                    kp.partition_id = p.partition;
                    kp.error_code = if fold && p.error.is_ok() {
                        x.error.0
                    } else {
                        p.error.0
                    };
                    kp.error_message = osb(&p.error_message);
                    kp
                })
                .collect();
            kt
        })
        .collect();
    k
}

pub(super) fn elect_resp_to_domain(k: ElectLeadersResponse) -> d::ElectLeadersResponse {
    d::ElectLeadersResponse {
        throttle_time_ms: k.throttle_time_ms,
        error: ErrorCode(k.error_code),
        results: (k.replica_election_results.into_iter())
            .map(|t| d::ElectLeadersTopicResult {
                topic: st(&t.topic.0),
                partitions: (t.partition_result.into_iter())
                    .map(|p| d::ElectLeadersPartitionResult {
                        partition: p.partition_id,
                        error: ErrorCode(p.error_code),
                        error_message: ost(&p.error_message),
                    })
                    .collect(),
            })
            .collect(),
    }
}

// ---- AlterPartitionReassignments ---------------------------------------------------------

pub(super) fn alter_reassign_req_to_domain(
    k: AlterPartitionReassignmentsRequest,
) -> d::AlterPartitionReassignmentsRequest {
    d::AlterPartitionReassignmentsRequest {
        timeout_ms: k.timeout_ms,
        allow_replication_factor_change: k.allow_replication_factor_change,
        topics: (k.topics.into_iter())
            .map(|t| d::ReassignableTopic {
                name: st(&t.name.0),
                partitions: (t.partitions.into_iter())
                    .map(|p| d::ReassignablePartition {
                        partition: p.partition_index,
                        replicas: p.replicas.as_deref().map(ids),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// v0 cannot forbid a replication-factor change: refused rather than silently allowed.
pub(super) fn alter_reassign_req_from_domain(
    x: &d::AlterPartitionReassignmentsRequest,
    v: i16,
) -> Result<AlterPartitionReassignmentsRequest, WireError> {
    let mut k = AlterPartitionReassignmentsRequest::default();
    k.timeout_ms = x.timeout_ms;
    if v >= 1 {
        k.allow_replication_factor_change = x.allow_replication_factor_change;
    } else if !x.allow_replication_factor_change {
        return Err(WireError::Encode(
            "AlterPartitionReassignments v0 cannot forbid a replication factor change".into(),
        ));
    }
    k.topics = (x.topics.iter())
        .map(|t| {
            let mut kt = aprr::ReassignableTopic::default();
            kt.name = tn(&t.name);
            kt.partitions = (t.partitions.iter())
                .map(|p| {
                    let mut kp = aprr::ReassignablePartition::default();
                    kp.partition_index = p.partition;
                    kp.replicas = p.replicas.as_deref().map(brokers);
                    kp
                })
                .collect();
            kt
        })
        .collect();
    Ok(k)
}

pub(super) fn alter_reassign_resp_from_domain(
    x: &d::AlterPartitionReassignmentsResponse,
    v: i16,
) -> AlterPartitionReassignmentsResponse {
    let mut k = AlterPartitionReassignmentsResponse::default();
    k.throttle_time_ms = x.throttle_time_ms;
    if v >= 1 {
        k.allow_replication_factor_change = x.allow_replication_factor_change;
    }
    k.error_code = x.error.0;
    k.error_message = osb(&x.error_message);
    k.responses = (x.results.iter())
        .map(|t| {
            let mut kt = aprs::ReassignableTopicResponse::default();
            kt.name = tn(&t.name);
            kt.partitions = (t.partitions.iter())
                .map(|p| {
                    let mut kp = aprs::ReassignablePartitionResponse::default();
                    kp.partition_index = p.partition;
                    kp.error_code = p.error.0;
                    kp.error_message = osb(&p.error_message);
                    kp
                })
                .collect();
            kt
        })
        .collect();
    k
}

pub(super) fn alter_reassign_resp_to_domain(
    k: AlterPartitionReassignmentsResponse,
) -> d::AlterPartitionReassignmentsResponse {
    d::AlterPartitionReassignmentsResponse {
        throttle_time_ms: k.throttle_time_ms,
        allow_replication_factor_change: k.allow_replication_factor_change,
        error: ErrorCode(k.error_code),
        error_message: ost(&k.error_message),
        results: (k.responses.into_iter())
            .map(|t| d::ReassignableTopicResult {
                name: st(&t.name.0),
                partitions: (t.partitions.into_iter())
                    .map(|p| d::ReassignablePartitionResult {
                        partition: p.partition_index,
                        error: ErrorCode(p.error_code),
                        error_message: ost(&p.error_message),
                    })
                    .collect(),
            })
            .collect(),
    }
}

// ---- ListPartitionReassignments ----------------------------------------------------------

pub(super) fn list_reassign_req_to_domain(
    k: ListPartitionReassignmentsRequest,
) -> d::ListPartitionReassignmentsRequest {
    d::ListPartitionReassignmentsRequest {
        timeout_ms: k.timeout_ms,
        topics: k.topics.map(|topics| {
            (topics.into_iter())
                .map(|t| d::ListPartitionReassignmentsTopic {
                    name: st(&t.name.0),
                    partitions: t.partition_indexes,
                })
                .collect()
        }),
    }
}

pub(super) fn list_reassign_req_from_domain(
    x: &d::ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsRequest {
    let mut k = ListPartitionReassignmentsRequest::default();
    k.timeout_ms = x.timeout_ms;
    k.topics = x.topics.as_ref().map(|topics| {
        (topics.iter())
            .map(|t| {
                let mut kt = lprr::ListPartitionReassignmentsTopics::default();
                kt.name = tn(&t.name);
                kt.partition_indexes = t.partitions.clone();
                kt
            })
            .collect()
    });
    k
}

pub(super) fn list_reassign_resp_from_domain(
    x: &d::ListPartitionReassignmentsResponse,
) -> ListPartitionReassignmentsResponse {
    let mut k = ListPartitionReassignmentsResponse::default();
    k.throttle_time_ms = x.throttle_time_ms;
    k.error_code = x.error.0;
    k.error_message = osb(&x.error_message);
    k.topics = (x.topics.iter())
        .map(|t| {
            let mut kt = lprs::OngoingTopicReassignment::default();
            kt.name = tn(&t.name);
            kt.partitions = (t.partitions.iter())
                .map(|p| {
                    let mut kp = lprs::OngoingPartitionReassignment::default();
                    kp.partition_index = p.partition;
                    kp.replicas = brokers(&p.replicas);
                    kp.adding_replicas = brokers(&p.adding_replicas);
                    kp.removing_replicas = brokers(&p.removing_replicas);
                    kp
                })
                .collect();
            kt
        })
        .collect();
    k
}

pub(super) fn list_reassign_resp_to_domain(
    k: ListPartitionReassignmentsResponse,
) -> d::ListPartitionReassignmentsResponse {
    d::ListPartitionReassignmentsResponse {
        throttle_time_ms: k.throttle_time_ms,
        error: ErrorCode(k.error_code),
        error_message: ost(&k.error_message),
        topics: (k.topics.into_iter())
            .map(|t| d::OngoingTopicReassignment {
                name: st(&t.name.0),
                partitions: (t.partitions.into_iter())
                    .map(|p| d::OngoingPartitionReassignment {
                        partition: p.partition_index,
                        replicas: ids(&p.replicas),
                        adding_replicas: ids(&p.adding_replicas),
                        removing_replicas: ids(&p.removing_replicas),
                    })
                    .collect(),
            })
            .collect(),
    }
}

// ---- IncrementalAlterConfigs -------------------------------------------------------------

pub(super) fn incr_alter_req_to_domain(
    k: IncrementalAlterConfigsRequest,
) -> d::IncrementalAlterConfigsRequest {
    d::IncrementalAlterConfigsRequest {
        resources: (k.resources.into_iter())
            .map(|r| d::IncrementalAlterConfigsResource {
                resource_type: r.resource_type,
                resource_name: st(&r.resource_name),
                configs: (r.configs.into_iter())
                    .map(|c| d::IncrementalAlterableConfig {
                        name: st(&c.name),
                        operation: c.config_operation,
                        value: ost(&c.value),
                    })
                    .collect(),
            })
            .collect(),
        validate_only: k.validate_only,
    }
}

pub(super) fn incr_alter_req_from_domain(
    x: &d::IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsRequest {
    let mut k = IncrementalAlterConfigsRequest::default();
    k.resources = (x.resources.iter())
        .map(|r| {
            let mut kr = iacr::AlterConfigsResource::default();
            kr.resource_type = r.resource_type;
            kr.resource_name = sb(&r.resource_name);
            kr.configs = (r.configs.iter())
                .map(|c| {
                    let mut kc = iacr::AlterableConfig::default();
                    kc.name = sb(&c.name);
                    kc.config_operation = c.operation;
                    kc.value = osb(&c.value);
                    kc
                })
                .collect();
            kr
        })
        .collect();
    k.validate_only = x.validate_only;
    k
}

pub(super) fn incr_alter_resp_from_domain(
    x: &d::IncrementalAlterConfigsResponse,
) -> IncrementalAlterConfigsResponse {
    let mut k = IncrementalAlterConfigsResponse::default();
    k.throttle_time_ms = x.throttle_time_ms;
    k.responses = (x.results.iter())
        .map(|r| {
            let mut kr = iacs::AlterConfigsResourceResponse::default();
            kr.error_code = r.error.0;
            kr.error_message = osb(&r.error_message);
            kr.resource_type = r.resource_type;
            kr.resource_name = sb(&r.resource_name);
            kr
        })
        .collect();
    k
}

pub(super) fn incr_alter_resp_to_domain(
    k: IncrementalAlterConfigsResponse,
) -> d::IncrementalAlterConfigsResponse {
    d::IncrementalAlterConfigsResponse {
        throttle_time_ms: k.throttle_time_ms,
        results: (k.responses.into_iter())
            .map(|r| d::AlterConfigsResourceResult {
                error: ErrorCode(r.error_code),
                error_message: ost(&r.error_message),
                resource_type: r.resource_type,
                resource_name: st(&r.resource_name),
            })
            .collect(),
    }
}

// ---- AlterConfigs ------------------------------------------------------------------------

pub(super) fn alter_configs_req_to_domain(k: AlterConfigsRequest) -> d::AlterConfigsRequest {
    d::AlterConfigsRequest {
        resources: (k.resources.into_iter())
            .map(|r| d::AlterConfigsResource {
                resource_type: r.resource_type,
                resource_name: st(&r.resource_name),
                configs: (r.configs.into_iter())
                    .map(|c| d::AlterableConfig {
                        name: st(&c.name),
                        value: ost(&c.value),
                    })
                    .collect(),
            })
            .collect(),
        validate_only: k.validate_only,
    }
}

pub(super) fn alter_configs_req_from_domain(x: &d::AlterConfigsRequest) -> AlterConfigsRequest {
    let mut k = AlterConfigsRequest::default();
    k.resources = (x.resources.iter())
        .map(|r| {
            let mut kr = acr::AlterConfigsResource::default();
            kr.resource_type = r.resource_type;
            kr.resource_name = sb(&r.resource_name);
            kr.configs = (r.configs.iter())
                .map(|c| {
                    let mut kc = acr::AlterableConfig::default();
                    kc.name = sb(&c.name);
                    kc.value = osb(&c.value);
                    kc
                })
                .collect();
            kr
        })
        .collect();
    k.validate_only = x.validate_only;
    k
}

pub(super) fn alter_configs_resp_from_domain(x: &d::AlterConfigsResponse) -> AlterConfigsResponse {
    let mut k = AlterConfigsResponse::default();
    k.throttle_time_ms = x.throttle_time_ms;
    k.responses = (x.results.iter())
        .map(|r| {
            let mut kr = acs::AlterConfigsResourceResponse::default();
            kr.error_code = r.error.0;
            kr.error_message = osb(&r.error_message);
            kr.resource_type = r.resource_type;
            kr.resource_name = sb(&r.resource_name);
            kr
        })
        .collect();
    k
}

pub(super) fn alter_configs_resp_to_domain(k: AlterConfigsResponse) -> d::AlterConfigsResponse {
    d::AlterConfigsResponse {
        throttle_time_ms: k.throttle_time_ms,
        results: (k.responses.into_iter())
            .map(|r| d::AlterConfigsResourceResult {
                error: ErrorCode(r.error_code),
                error_message: ost(&r.error_message),
                resource_type: r.resource_type,
                resource_name: st(&r.resource_name),
            })
            .collect(),
    }
}

// ---- DescribeQuorum, AddRaftVoter, RemoveRaftVoter (KIP-853) -----------------------------

pub(super) fn describe_quorum_req_to_domain(k: DescribeQuorumRequest) -> q::DescribeQuorumRequest {
    q::DescribeQuorumRequest {
        topics: (k.topics.into_iter())
            .map(|t| q::DescribeQuorumTopic {
                name: st(&t.topic_name.0),
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| p.partition_index)
                    .collect(),
            })
            .collect(),
    }
}

pub(super) fn describe_quorum_req_from_domain(
    x: &q::DescribeQuorumRequest,
) -> DescribeQuorumRequest {
    let mut k = DescribeQuorumRequest::default();
    k.topics = (x.topics.iter())
        .map(|t| {
            let mut kt = dqr::TopicData::default();
            kt.topic_name = tn(&t.name);
            kt.partitions = (t.partitions.iter())
                .map(|p| dqr::PartitionData::default().with_partition_index(*p))
                .collect();
            kt
        })
        .collect();
    k
}

pub(super) fn replica_state_from_domain(x: &q::ReplicaState, v: i16) -> dqs::ReplicaState {
    let mut k = dqs::ReplicaState::default();
    k.replica_id = BrokerId(x.replica_id);
    if v >= 2 {
        k.replica_directory_id = x.directory_id;
    }
    k.log_end_offset = x.log_end_offset;
    if v >= 1 {
        k.last_fetch_timestamp = x.last_fetch_timestamp;
        k.last_caught_up_timestamp = x.last_caught_up_timestamp;
    }
    k
}

pub(super) fn replica_state_to_domain(k: &dqs::ReplicaState) -> q::ReplicaState {
    q::ReplicaState {
        replica_id: k.replica_id.0,
        directory_id: k.replica_directory_id,
        log_end_offset: k.log_end_offset,
        last_fetch_timestamp: k.last_fetch_timestamp,
        last_caught_up_timestamp: k.last_caught_up_timestamp,
    }
}

pub(super) fn describe_quorum_resp_from_domain(
    x: &q::DescribeQuorumResponse,
    v: i16,
) -> DescribeQuorumResponse {
    let mut k = DescribeQuorumResponse::default();
    k.error_code = x.error.0;
    if v >= 2 {
        k.error_message = osb(&x.error_message);
    }
    k.topics = (x.topics.iter())
        .map(|t| {
            let mut kt = dqs::TopicData::default();
            kt.topic_name = tn(&t.name);
            kt.partitions = (t.partitions.iter())
                .map(|p| {
                    let mut kp = dqs::PartitionData::default();
                    kp.partition_index = p.partition;
                    kp.error_code = p.error.0;
                    if v >= 2 {
                        kp.error_message = osb(&p.error_message);
                    }
                    kp.leader_id = BrokerId(p.leader_id);
                    kp.leader_epoch = p.leader_epoch;
                    kp.high_watermark = p.high_watermark;
                    kp.current_voters = (p.current_voters.iter())
                        .map(|r| replica_state_from_domain(r, v))
                        .collect();
                    kp.observers = (p.observers.iter())
                        .map(|r| replica_state_from_domain(r, v))
                        .collect();
                    kp
                })
                .collect();
            kt
        })
        .collect();
    if v >= 2 {
        k.nodes = (x.nodes.iter())
            .map(|n| {
                let mut kn = dqs::Node::default();
                kn.node_id = BrokerId(n.node_id);
                kn.listeners = (n.listeners.iter())
                    .map(|l| {
                        let mut kl = dqs::Listener::default();
                        kl.name = sb(&l.name);
                        kl.host = sb(&l.host);
                        kl.port = l.port;
                        kl
                    })
                    .collect();
                kn
            })
            .collect();
    }
    k
}

/// `v` picks the fields that exist: before v2 kafka_protocol's defaults for the absent error
/// messages are `Some("")`, not the domain's `None`.
pub(super) fn describe_quorum_resp_to_domain(
    k: DescribeQuorumResponse,
    v: i16,
) -> q::DescribeQuorumResponse {
    let message = |m: &Option<StrBytes>| if v >= 2 { ost(m) } else { None };
    q::DescribeQuorumResponse {
        error: ErrorCode(k.error_code),
        error_message: message(&k.error_message),
        topics: (k.topics.into_iter())
            .map(|t| q::QuorumTopic {
                name: st(&t.topic_name.0),
                partitions: (t.partitions.into_iter())
                    .map(|p| q::QuorumPartition {
                        partition: p.partition_index,
                        error: ErrorCode(p.error_code),
                        error_message: message(&p.error_message),
                        leader_id: p.leader_id.0,
                        leader_epoch: p.leader_epoch,
                        high_watermark: p.high_watermark,
                        current_voters: p
                            .current_voters
                            .iter()
                            .map(replica_state_to_domain)
                            .collect(),
                        observers: p.observers.iter().map(replica_state_to_domain).collect(),
                    })
                    .collect(),
            })
            .collect(),
        nodes: (k.nodes.into_iter())
            .map(|n| q::QuorumNode {
                node_id: n.node_id.0,
                listeners: (n.listeners.iter())
                    .map(|l| q::RaftListener {
                        name: st(&l.name),
                        host: st(&l.host),
                        port: l.port,
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub(super) fn add_voter_req_to_domain(k: AddRaftVoterRequest) -> q::AddRaftVoterRequest {
    q::AddRaftVoterRequest {
        cluster_id: ost(&k.cluster_id),
        timeout_ms: k.timeout_ms,
        voter_id: k.voter_id,
        voter_directory_id: k.voter_directory_id,
        listeners: (k.listeners.iter())
            .map(|l| q::RaftListener {
                name: st(&l.name),
                host: st(&l.host),
                port: l.port,
            })
            .collect(),
    }
}

pub(super) fn add_voter_req_from_domain(x: &q::AddRaftVoterRequest) -> AddRaftVoterRequest {
    let mut k = AddRaftVoterRequest::default();
    k.cluster_id = osb(&x.cluster_id);
    k.timeout_ms = x.timeout_ms;
    k.voter_id = x.voter_id;
    k.voter_directory_id = x.voter_directory_id;
    k.listeners = (x.listeners.iter())
        .map(|l| {
            let mut kl = arvr::Listener::default();
            kl.name = sb(&l.name);
            kl.host = sb(&l.host);
            kl.port = l.port;
            kl
        })
        .collect();
    k
}

pub(super) fn remove_voter_req_to_domain(k: RemoveRaftVoterRequest) -> q::RemoveRaftVoterRequest {
    q::RemoveRaftVoterRequest {
        cluster_id: ost(&k.cluster_id),
        voter_id: k.voter_id,
        voter_directory_id: k.voter_directory_id,
    }
}

pub(super) fn remove_voter_req_from_domain(
    x: &q::RemoveRaftVoterRequest,
) -> RemoveRaftVoterRequest {
    let mut k = RemoveRaftVoterRequest::default();
    k.cluster_id = osb(&x.cluster_id);
    k.voter_id = x.voter_id;
    k.voter_directory_id = x.voter_directory_id;
    k
}

pub(super) fn add_voter_resp_from_domain(x: &q::RaftVoterResponse) -> AddRaftVoterResponse {
    let mut k = AddRaftVoterResponse::default();
    k.throttle_time_ms = x.throttle_time_ms;
    k.error_code = x.error.0;
    k.error_message = osb(&x.error_message);
    k
}

pub(super) fn remove_voter_resp_from_domain(x: &q::RaftVoterResponse) -> RemoveRaftVoterResponse {
    let mut k = RemoveRaftVoterResponse::default();
    k.throttle_time_ms = x.throttle_time_ms;
    k.error_code = x.error.0;
    k.error_message = osb(&x.error_message);
    k
}

pub(super) fn voter_resp_to_domain(
    throttle_time_ms: i32,
    error: i16,
    message: &Option<StrBytes>,
) -> q::RaftVoterResponse {
    q::RaftVoterResponse {
        throttle_time_ms,
        error: ErrorCode(error),
        error_message: ost(message),
    }
}

pub(super) fn add_voter_resp_to_domain(k: AddRaftVoterResponse) -> q::RaftVoterResponse {
    voter_resp_to_domain(k.throttle_time_ms, k.error_code, &k.error_message)
}

pub(super) fn remove_voter_resp_to_domain(k: RemoveRaftVoterResponse) -> q::RaftVoterResponse {
    voter_resp_to_domain(k.throttle_time_ms, k.error_code, &k.error_message)
}
