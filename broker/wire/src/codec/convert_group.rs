//! Conversions for the consumer-group APIs (classic protocol): FindCoordinator, JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups,
//! DeleteGroups, OffsetDelete.
//!
//! Same invariants as `convert.rs`: `*_from_domain(x, v)` sets only fields that exist at
//! `v` (kafka_protocol refuses to encode a non-default value in an absent field), and
//! `*_to_domain` copies every field, so the pair round-trips whenever `x` holds the schema
//! default in the fields `v` lacks. The batched shapes of newer versions (FindCoordinator
//! v4+, LeaveGroup v3+, OffsetFetch v8+) are the domain shape; older versions carry exactly
//! one element, and a domain value with another count cannot be encoded at them.

use kafka_protocol::messages::{
    delete_groups_response, describe_groups_response, find_coordinator_response,
    join_group_request, join_group_response, leave_group_request, leave_group_response,
    list_groups_response, offset_commit_request, offset_commit_response, offset_delete_request,
    offset_delete_response, offset_fetch_request, offset_fetch_response, sync_group_request,
    BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse,
    SyncGroupRequest, SyncGroupResponse,
};

use super::convert_helpers::{gid, osb, ost, sb, st, tn};
use crate::domain as d;
use crate::error::ErrorCode;
use crate::WireError;

/// The one element an old, unbatched version carries.
fn single<'a, T>(items: &'a [T], api: &str, v: i16) -> Result<&'a T, WireError> {
    match items {
        [one] => Ok(one),
        _ => Err(WireError::Encode(format!(
            "{api} v{v} carries exactly one entry, got {}",
            items.len()
        ))),
    }
}

/// A field that exists only from `since`: its value there, `None` (null default) before.
fn from_version<T>(v: i16, since: i16, value: Option<T>) -> Option<T> {
    if v >= since {
        value
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------
// FindCoordinator

pub(super) fn find_coordinator_req_to_domain(
    k: FindCoordinatorRequest,
    v: i16,
) -> d::FindCoordinatorRequest {
    let keys = if v >= 4 {
        k.coordinator_keys.iter().map(st).collect()
    } else {
        vec![st(&k.key)]
    };
    d::FindCoordinatorRequest {
        key_type: k.key_type,
        keys,
    }
}

pub(super) fn find_coordinator_req_from_domain(
    r: &d::FindCoordinatorRequest,
    v: i16,
) -> Result<FindCoordinatorRequest, WireError> {
    let mut k = FindCoordinatorRequest::default();
    if v >= 4 {
        k.coordinator_keys = r.keys.iter().map(|s| sb(s)).collect();
    } else {
        k.key = sb(single(&r.keys, "FindCoordinator", v)?);
    }
    if v >= 1 {
        k.key_type = r.key_type;
    }
    Ok(k)
}

pub(super) fn find_coordinator_resp_from_domain(
    r: &d::FindCoordinatorResponse,
    v: i16,
) -> Result<FindCoordinatorResponse, WireError> {
    let mut k = FindCoordinatorResponse::default();
    if v >= 1 {
        k.throttle_time_ms = r.throttle_time_ms;
    }
    if v >= 4 {
        k.coordinators = r
            .coordinators
            .iter()
            .map(|c| {
                find_coordinator_response::Coordinator::default()
                    .with_key(sb(&c.key))
                    .with_node_id(BrokerId(c.node_id))
                    .with_host(sb(&c.host))
                    .with_port(c.port)
                    .with_error_code(c.error.0)
                    .with_error_message(osb(&c.error_message))
            })
            .collect();
    } else {
        let c = single(&r.coordinators, "FindCoordinator response", v)?;
        k.error_code = c.error.0;
        k.error_message = from_version(v, 1, osb(&c.error_message));
        k.node_id = BrokerId(c.node_id);
        k.host = sb(&c.host);
        k.port = c.port;
    }
    Ok(k)
}

pub(super) fn find_coordinator_resp_to_domain(
    k: FindCoordinatorResponse,
    v: i16,
) -> d::FindCoordinatorResponse {
    let coordinators = if v >= 4 {
        k.coordinators
            .iter()
            .map(|c| d::Coordinator {
                key: st(&c.key),
                node_id: c.node_id.0,
                host: st(&c.host),
                port: c.port,
                error: ErrorCode(c.error_code),
                error_message: ost(&c.error_message),
            })
            .collect()
    } else {
        vec![d::Coordinator {
            key: String::new(),
            node_id: k.node_id.0,
            host: st(&k.host),
            port: k.port,
            error: ErrorCode(k.error_code),
            // v0 has no message (kafka_protocol's default there is "", not null).
            error_message: if v >= 1 { ost(&k.error_message) } else { None },
        }]
    };
    d::FindCoordinatorResponse {
        throttle_time_ms: k.throttle_time_ms,
        coordinators,
    }
}

// ---------------------------------------------------------------------------------------
// JoinGroup

pub(super) fn join_group_req_to_domain(
    k: JoinGroupRequest,
    v: i16,
    client_id: Option<&str>,
) -> d::JoinGroupRequest {
    d::JoinGroupRequest {
        group_id: st(&k.group_id.0),
        session_timeout_ms: k.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout for both.
        rebalance_timeout_ms: if v >= 1 {
            k.rebalance_timeout_ms
        } else {
            k.session_timeout_ms
        },
        member_id: st(&k.member_id),
        group_instance_id: ost(&k.group_instance_id),
        protocol_type: st(&k.protocol_type),
        protocols: k
            .protocols
            .iter()
            .map(|p| d::JoinGroupProtocol {
                name: st(&p.name),
                metadata: p.metadata.clone(),
            })
            .collect(),
        reason: ost(&k.reason),
        client_id: client_id.unwrap_or_default().to_owned(),
        client_host: String::new(),
        member_id_required: v >= 4,
    }
}

pub(super) fn join_group_req_from_domain(r: &d::JoinGroupRequest, v: i16) -> JoinGroupRequest {
    let mut k = JoinGroupRequest::default()
        .with_group_id(gid(&r.group_id))
        .with_session_timeout_ms(r.session_timeout_ms)
        .with_member_id(sb(&r.member_id))
        .with_protocol_type(sb(&r.protocol_type))
        .with_protocols(
            r.protocols
                .iter()
                .map(|p| {
                    join_group_request::JoinGroupRequestProtocol::default()
                        .with_name(sb(&p.name))
                        .with_metadata(p.metadata.clone())
                })
                .collect(),
        );
    if v >= 1 {
        k.rebalance_timeout_ms = r.rebalance_timeout_ms;
    }
    k.group_instance_id = from_version(v, 5, osb(&r.group_instance_id));
    k.reason = from_version(v, 8, osb(&r.reason));
    k
}

pub(super) fn join_group_resp_from_domain(r: &d::JoinGroupResponse, v: i16) -> JoinGroupResponse {
    let mut k = JoinGroupResponse::default()
        .with_error_code(r.error.0)
        .with_generation_id(r.generation_id)
        .with_leader(sb(&r.leader))
        .with_member_id(sb(&r.member_id))
        .with_members(
            r.members
                .iter()
                .map(|m| {
                    join_group_response::JoinGroupResponseMember::default()
                        .with_member_id(sb(&m.member_id))
                        .with_group_instance_id(from_version(v, 5, osb(&m.group_instance_id)))
                        .with_metadata(m.metadata.clone())
                })
                .collect(),
        );
    if v >= 2 {
        k.throttle_time_ms = r.throttle_time_ms;
    }
    k.protocol_type = from_version(v, 7, osb(&r.protocol_type));
    // Before v7 the protocol name is not nullable: "" stands for "none chosen".
    k.protocol_name = if v >= 7 {
        osb(&r.protocol_name)
    } else {
        Some(sb(r.protocol_name.as_deref().unwrap_or_default()))
    };
    if v >= 9 {
        k.skip_assignment = r.skip_assignment;
    }
    k
}

pub(super) fn join_group_resp_to_domain(k: JoinGroupResponse) -> d::JoinGroupResponse {
    d::JoinGroupResponse {
        throttle_time_ms: k.throttle_time_ms,
        error: ErrorCode(k.error_code),
        generation_id: k.generation_id,
        protocol_type: ost(&k.protocol_type),
        protocol_name: ost(&k.protocol_name),
        leader: st(&k.leader),
        skip_assignment: k.skip_assignment,
        member_id: st(&k.member_id),
        members: k
            .members
            .iter()
            .map(|m| d::JoinGroupMember {
                member_id: st(&m.member_id),
                group_instance_id: ost(&m.group_instance_id),
                metadata: m.metadata.clone(),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// SyncGroup

pub(super) fn sync_group_req_to_domain(k: SyncGroupRequest) -> d::SyncGroupRequest {
    d::SyncGroupRequest {
        group_id: st(&k.group_id.0),
        generation_id: k.generation_id,
        member_id: st(&k.member_id),
        group_instance_id: ost(&k.group_instance_id),
        protocol_type: ost(&k.protocol_type),
        protocol_name: ost(&k.protocol_name),
        assignments: k
            .assignments
            .iter()
            .map(|a| (st(&a.member_id), a.assignment.clone()))
            .collect(),
    }
}

pub(super) fn sync_group_req_from_domain(r: &d::SyncGroupRequest, v: i16) -> SyncGroupRequest {
    SyncGroupRequest::default()
        .with_group_id(gid(&r.group_id))
        .with_generation_id(r.generation_id)
        .with_member_id(sb(&r.member_id))
        .with_group_instance_id(from_version(v, 3, osb(&r.group_instance_id)))
        .with_protocol_type(from_version(v, 5, osb(&r.protocol_type)))
        .with_protocol_name(from_version(v, 5, osb(&r.protocol_name)))
        .with_assignments(
            r.assignments
                .iter()
                .map(|(member, assignment)| {
                    sync_group_request::SyncGroupRequestAssignment::default()
                        .with_member_id(sb(member))
                        .with_assignment(assignment.clone())
                })
                .collect(),
        )
}

pub(super) fn sync_group_resp_from_domain(r: &d::SyncGroupResponse, v: i16) -> SyncGroupResponse {
    let mut k = SyncGroupResponse::default()
        .with_error_code(r.error.0)
        .with_assignment(r.assignment.clone())
        .with_protocol_type(from_version(v, 5, osb(&r.protocol_type)))
        .with_protocol_name(from_version(v, 5, osb(&r.protocol_name)));
    if v >= 1 {
        k.throttle_time_ms = r.throttle_time_ms;
    }
    k
}

pub(super) fn sync_group_resp_to_domain(k: SyncGroupResponse) -> d::SyncGroupResponse {
    d::SyncGroupResponse {
        throttle_time_ms: k.throttle_time_ms,
        error: ErrorCode(k.error_code),
        protocol_type: ost(&k.protocol_type),
        protocol_name: ost(&k.protocol_name),
        assignment: k.assignment,
    }
}

// ---------------------------------------------------------------------------------------
// Heartbeat

pub(super) fn heartbeat_req_to_domain(k: HeartbeatRequest) -> d::HeartbeatRequest {
    d::HeartbeatRequest {
        group_id: st(&k.group_id.0),
        generation_id: k.generation_id,
        member_id: st(&k.member_id),
        group_instance_id: ost(&k.group_instance_id),
    }
}

pub(super) fn heartbeat_req_from_domain(r: &d::HeartbeatRequest, v: i16) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(gid(&r.group_id))
        .with_generation_id(r.generation_id)
        .with_member_id(sb(&r.member_id))
        .with_group_instance_id(from_version(v, 3, osb(&r.group_instance_id)))
}

pub(super) fn heartbeat_resp_from_domain(r: &d::HeartbeatResponse, v: i16) -> HeartbeatResponse {
    let mut k = HeartbeatResponse::default().with_error_code(r.error.0);
    if v >= 1 {
        k.throttle_time_ms = r.throttle_time_ms;
    }
    k
}

pub(super) fn heartbeat_resp_to_domain(k: HeartbeatResponse) -> d::HeartbeatResponse {
    d::HeartbeatResponse {
        throttle_time_ms: k.throttle_time_ms,
        error: ErrorCode(k.error_code),
    }
}

// ---------------------------------------------------------------------------------------
// LeaveGroup

pub(super) fn leave_group_req_to_domain(k: LeaveGroupRequest, v: i16) -> d::LeaveGroupRequest {
    let members = if v >= 3 {
        k.members
            .iter()
            .map(|m| d::LeavingMember {
                member_id: st(&m.member_id),
                group_instance_id: ost(&m.group_instance_id),
                reason: ost(&m.reason),
            })
            .collect()
    } else {
        vec![d::LeavingMember {
            member_id: st(&k.member_id),
            group_instance_id: None,
            reason: None,
        }]
    };
    d::LeaveGroupRequest {
        group_id: st(&k.group_id.0),
        members,
    }
}

pub(super) fn leave_group_req_from_domain(
    r: &d::LeaveGroupRequest,
    v: i16,
) -> Result<LeaveGroupRequest, WireError> {
    let mut k = LeaveGroupRequest::default().with_group_id(gid(&r.group_id));
    if v >= 3 {
        k.members = r
            .members
            .iter()
            .map(|m| {
                leave_group_request::MemberIdentity::default()
                    .with_member_id(sb(&m.member_id))
                    .with_group_instance_id(osb(&m.group_instance_id))
                    .with_reason(from_version(v, 5, osb(&m.reason)))
            })
            .collect();
    } else {
        k.member_id = sb(&single(&r.members, "LeaveGroup", v)?.member_id);
    }
    Ok(k)
}

pub(super) fn leave_group_resp_from_domain(
    r: &d::LeaveGroupResponse,
    v: i16,
) -> LeaveGroupResponse {
    // v0-2 carry no per-member results: the one member's error is the request's (Kafka).
    let error = match r.members.first() {
        Some(member) if v <= 2 && r.error.is_ok() => member.error,
        _ => r.error,
    };
    let mut k = LeaveGroupResponse::default().with_error_code(error.0);
    if v >= 1 {
        k.throttle_time_ms = r.throttle_time_ms;
    }
    if v >= 3 {
        k.members = r
            .members
            .iter()
            .map(|m| {
                leave_group_response::MemberResponse::default()
                    .with_member_id(sb(&m.member_id))
                    .with_group_instance_id(osb(&m.group_instance_id))
                    .with_error_code(m.error.0)
            })
            .collect();
    }
    k
}

pub(super) fn leave_group_resp_to_domain(k: LeaveGroupResponse) -> d::LeaveGroupResponse {
    d::LeaveGroupResponse {
        throttle_time_ms: k.throttle_time_ms,
        error: ErrorCode(k.error_code),
        members: k
            .members
            .iter()
            .map(|m| d::LeftMember {
                member_id: st(&m.member_id),
                group_instance_id: ost(&m.group_instance_id),
                error: ErrorCode(m.error_code),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// OffsetCommit

pub(super) fn offset_commit_req_to_domain(k: OffsetCommitRequest) -> d::OffsetCommitRequest {
    d::OffsetCommitRequest {
        group_id: st(&k.group_id.0),
        generation_id: k.generation_id_or_member_epoch,
        member_id: st(&k.member_id),
        group_instance_id: ost(&k.group_instance_id),
        retention_time_ms: k.retention_time_ms,
        topics: k
            .topics
            .iter()
            .map(|t| d::OffsetCommitTopic {
                name: st(&t.name.0),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| d::OffsetCommitPartition {
                        partition: p.partition_index,
                        committed_offset: p.committed_offset,
                        committed_leader_epoch: p.committed_leader_epoch,
                        metadata: ost(&p.committed_metadata),
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub(super) fn offset_commit_req_from_domain(
    r: &d::OffsetCommitRequest,
    v: i16,
) -> OffsetCommitRequest {
    let mut k = OffsetCommitRequest::default()
        .with_group_id(gid(&r.group_id))
        .with_generation_id_or_member_epoch(r.generation_id)
        .with_member_id(sb(&r.member_id))
        .with_group_instance_id(from_version(v, 7, osb(&r.group_instance_id)))
        .with_topics(
            r.topics
                .iter()
                .map(|t| {
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(tn(&t.name))
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| commit_partition(p, v))
                                .collect(),
                        )
                })
                .collect(),
        );
    if v <= 4 {
        k.retention_time_ms = r.retention_time_ms;
    }
    k
}

fn commit_partition(
    p: &d::OffsetCommitPartition,
    v: i16,
) -> offset_commit_request::OffsetCommitRequestPartition {
    let mut k = offset_commit_request::OffsetCommitRequestPartition::default()
        .with_partition_index(p.partition)
        .with_committed_offset(p.committed_offset)
        .with_committed_metadata(osb(&p.metadata));
    if v >= 6 {
        k.committed_leader_epoch = p.committed_leader_epoch;
    }
    k
}

pub(super) fn offset_commit_resp_from_domain(
    r: &d::OffsetCommitResponse,
    v: i16,
) -> OffsetCommitResponse {
    let mut k = OffsetCommitResponse::default().with_topics(
        r.topics
            .iter()
            .map(|t| {
                offset_commit_response::OffsetCommitResponseTopic::default()
                    .with_name(tn(&t.name))
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|(partition, error)| {
                                offset_commit_response::OffsetCommitResponsePartition::default()
                                    .with_partition_index(*partition)
                                    .with_error_code(error.0)
                            })
                            .collect(),
                    )
            })
            .collect(),
    );
    if v >= 3 {
        k.throttle_time_ms = r.throttle_time_ms;
    }
    k
}

pub(super) fn offset_commit_resp_to_domain(k: OffsetCommitResponse) -> d::OffsetCommitResponse {
    d::OffsetCommitResponse {
        throttle_time_ms: k.throttle_time_ms,
        topics: k
            .topics
            .iter()
            .map(|t| d::OffsetCommitTopicResponse {
                name: st(&t.name.0),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| (p.partition_index, ErrorCode(p.error_code)))
                    .collect(),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// OffsetFetch

pub(super) fn offset_fetch_req_to_domain(k: OffsetFetchRequest, v: i16) -> d::OffsetFetchRequest {
    let groups = if v >= 8 {
        k.groups
            .iter()
            .map(|g| d::OffsetFetchGroup {
                group_id: st(&g.group_id.0),
                topics: g.topics.as_ref().map(|topics| {
                    topics
                        .iter()
                        .map(|t| (st(&t.name.0), t.partition_indexes.clone()))
                        .collect()
                }),
            })
            .collect()
    } else {
        vec![d::OffsetFetchGroup {
            group_id: st(&k.group_id.0),
            topics: k.topics.as_ref().map(|topics| {
                topics
                    .iter()
                    .map(|t| (st(&t.name.0), t.partition_indexes.clone()))
                    .collect()
            }),
        }]
    };
    d::OffsetFetchRequest {
        groups,
        require_stable: k.require_stable,
    }
}

pub(super) fn offset_fetch_req_from_domain(
    r: &d::OffsetFetchRequest,
    v: i16,
) -> Result<OffsetFetchRequest, WireError> {
    let mut k = OffsetFetchRequest::default();
    if v >= 8 {
        k.groups = r
            .groups
            .iter()
            .map(|g| {
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(gid(&g.group_id))
                    .with_topics(g.topics.as_ref().map(|topics| {
                        topics
                            .iter()
                            .map(|(name, partitions)| {
                                offset_fetch_request::OffsetFetchRequestTopics::default()
                                    .with_name(tn(name))
                                    .with_partition_indexes(partitions.clone())
                            })
                            .collect()
                    }))
            })
            .collect();
    } else {
        let g = single(&r.groups, "OffsetFetch", v)?;
        k.group_id = gid(&g.group_id);
        k.topics = match &g.topics {
            Some(topics) => Some(
                topics
                    .iter()
                    .map(|(name, partitions)| {
                        offset_fetch_request::OffsetFetchRequestTopic::default()
                            .with_name(tn(name))
                            .with_partition_indexes(partitions.clone())
                    })
                    .collect(),
            ),
            None if v >= 2 => None,
            None => {
                return Err(WireError::Encode(format!(
                    "OffsetFetch v{v} cannot ask for all topics"
                )))
            }
        };
    }
    if v >= 7 {
        k.require_stable = r.require_stable;
    }
    Ok(k)
}

pub(super) fn offset_fetch_resp_from_domain(
    r: &d::OffsetFetchResponse,
    v: i16,
) -> Result<OffsetFetchResponse, WireError> {
    let mut k = OffsetFetchResponse::default();
    if v >= 3 {
        k.throttle_time_ms = r.throttle_time_ms;
    }
    if v >= 8 {
        k.groups = r
            .groups
            .iter()
            .map(|g| {
                offset_fetch_response::OffsetFetchResponseGroup::default()
                    .with_group_id(gid(&g.group_id))
                    .with_error_code(g.error.0)
                    .with_topics(
                        g.topics
                            .iter()
                            .map(|t| {
                                offset_fetch_response::OffsetFetchResponseTopics::default()
                                    .with_name(tn(&t.name))
                                    .with_partitions(
                                        t.partitions.iter().map(fetched_partition_v8).collect(),
                                    )
                            })
                            .collect(),
                    )
            })
            .collect();
    } else {
        let g = single(&r.groups, "OffsetFetch response", v)?;
        if v >= 2 {
            k.error_code = g.error.0;
        }
        k.topics = g
            .topics
            .iter()
            .map(|t| {
                offset_fetch_response::OffsetFetchResponseTopic::default()
                    .with_name(tn(&t.name))
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                let mut kp =
                                    offset_fetch_response::OffsetFetchResponsePartition::default()
                                        .with_partition_index(p.partition)
                                        .with_committed_offset(p.committed_offset)
                                        .with_metadata(osb(&p.metadata))
                                        .with_error_code(p.error.0);
                                if v >= 5 {
                                    kp.committed_leader_epoch = p.committed_leader_epoch;
                                }
                                kp
                            })
                            .collect(),
                    )
            })
            .collect();
    }
    Ok(k)
}

fn fetched_partition_v8(
    p: &d::OffsetFetchPartition,
) -> offset_fetch_response::OffsetFetchResponsePartitions {
    offset_fetch_response::OffsetFetchResponsePartitions::default()
        .with_partition_index(p.partition)
        .with_committed_offset(p.committed_offset)
        .with_committed_leader_epoch(p.committed_leader_epoch)
        .with_metadata(osb(&p.metadata))
        .with_error_code(p.error.0)
}

/// `group_id` names the group of a v1-7 response (not on the wire: the request's).
pub(super) fn offset_fetch_resp_to_domain(
    k: OffsetFetchResponse,
    v: i16,
) -> d::OffsetFetchResponse {
    let groups = if v >= 8 {
        k.groups
            .iter()
            .map(|g| d::OffsetFetchGroupResponse {
                group_id: st(&g.group_id.0),
                error: ErrorCode(g.error_code),
                topics: g
                    .topics
                    .iter()
                    .map(|t| d::OffsetFetchTopic {
                        name: st(&t.name.0),
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| d::OffsetFetchPartition {
                                partition: p.partition_index,
                                committed_offset: p.committed_offset,
                                committed_leader_epoch: p.committed_leader_epoch,
                                metadata: ost(&p.metadata),
                                error: ErrorCode(p.error_code),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect()
    } else {
        vec![d::OffsetFetchGroupResponse {
            group_id: String::new(),
            error: ErrorCode(k.error_code),
            topics: k
                .topics
                .iter()
                .map(|t| d::OffsetFetchTopic {
                    name: st(&t.name.0),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| d::OffsetFetchPartition {
                            partition: p.partition_index,
                            committed_offset: p.committed_offset,
                            committed_leader_epoch: p.committed_leader_epoch,
                            metadata: ost(&p.metadata),
                            error: ErrorCode(p.error_code),
                        })
                        .collect(),
                })
                .collect(),
        }]
    };
    d::OffsetFetchResponse {
        throttle_time_ms: k.throttle_time_ms,
        groups,
    }
}

// ---------------------------------------------------------------------------------------
// ListGroups / DescribeGroups / DeleteGroups / OffsetDelete

pub(super) fn list_groups_req_to_domain(k: ListGroupsRequest) -> d::ListGroupsRequest {
    d::ListGroupsRequest {
        states_filter: k.states_filter.iter().map(st).collect(),
        types_filter: k.types_filter.iter().map(st).collect(),
    }
}

pub(super) fn list_groups_req_from_domain(r: &d::ListGroupsRequest, v: i16) -> ListGroupsRequest {
    let mut k = ListGroupsRequest::default();
    if v >= 4 {
        k.states_filter = r.states_filter.iter().map(|s| sb(s)).collect();
    }
    if v >= 5 {
        k.types_filter = r.types_filter.iter().map(|s| sb(s)).collect();
    }
    k
}

pub(super) fn list_groups_resp_from_domain(
    r: &d::ListGroupsResponse,
    v: i16,
) -> ListGroupsResponse {
    let mut k = ListGroupsResponse::default()
        .with_error_code(r.error.0)
        .with_groups(
            r.groups
                .iter()
                .map(|g| {
                    let mut kg = list_groups_response::ListedGroup::default()
                        .with_group_id(gid(&g.group_id))
                        .with_protocol_type(sb(&g.protocol_type));
                    if v >= 4 {
                        kg.group_state = sb(&g.group_state);
                    }
                    if v >= 5 {
                        kg.group_type = sb(&g.group_type);
                    }
                    kg
                })
                .collect(),
        );
    if v >= 1 {
        k.throttle_time_ms = r.throttle_time_ms;
    }
    k
}

pub(super) fn list_groups_resp_to_domain(k: ListGroupsResponse) -> d::ListGroupsResponse {
    d::ListGroupsResponse {
        throttle_time_ms: k.throttle_time_ms,
        error: ErrorCode(k.error_code),
        groups: k
            .groups
            .iter()
            .map(|g| d::ListedGroup {
                group_id: st(&g.group_id.0),
                protocol_type: st(&g.protocol_type),
                group_state: st(&g.group_state),
                group_type: st(&g.group_type),
            })
            .collect(),
    }
}

pub(super) fn describe_groups_req_to_domain(k: DescribeGroupsRequest) -> d::DescribeGroupsRequest {
    d::DescribeGroupsRequest {
        groups: k.groups.iter().map(|g| st(&g.0)).collect(),
        include_authorized_operations: k.include_authorized_operations,
    }
}

pub(super) fn describe_groups_req_from_domain(
    r: &d::DescribeGroupsRequest,
    v: i16,
) -> DescribeGroupsRequest {
    let mut k =
        DescribeGroupsRequest::default().with_groups(r.groups.iter().map(|g| gid(g)).collect());
    if v >= 3 {
        k.include_authorized_operations = r.include_authorized_operations;
    }
    k
}

pub(super) fn describe_groups_resp_from_domain(
    r: &d::DescribeGroupsResponse,
    v: i16,
) -> DescribeGroupsResponse {
    let mut k = DescribeGroupsResponse::default().with_groups(
        r.groups
            .iter()
            .map(|g| {
                let mut kg = describe_groups_response::DescribedGroup::default()
                    .with_error_code(g.error.0)
                    .with_group_id(gid(&g.group_id))
                    .with_group_state(sb(&g.group_state))
                    .with_protocol_type(sb(&g.protocol_type))
                    .with_protocol_data(sb(&g.protocol_data))
                    .with_members(
                        g.members
                            .iter()
                            .map(|m| {
                                describe_groups_response::DescribedGroupMember::default()
                                    .with_member_id(sb(&m.member_id))
                                    .with_group_instance_id(from_version(
                                        v,
                                        4,
                                        osb(&m.group_instance_id),
                                    ))
                                    .with_client_id(sb(&m.client_id))
                                    .with_client_host(sb(&m.client_host))
                                    .with_member_metadata(m.member_metadata.clone())
                                    .with_member_assignment(m.member_assignment.clone())
                            })
                            .collect(),
                    );
                if v >= 3 {
                    kg.authorized_operations = g.authorized_operations;
                }
                kg
            })
            .collect(),
    );
    if v >= 1 {
        k.throttle_time_ms = r.throttle_time_ms;
    }
    k
}

pub(super) fn describe_groups_resp_to_domain(
    k: DescribeGroupsResponse,
) -> d::DescribeGroupsResponse {
    d::DescribeGroupsResponse {
        throttle_time_ms: k.throttle_time_ms,
        groups: k
            .groups
            .iter()
            .map(|g| d::DescribedGroup {
                error: ErrorCode(g.error_code),
                group_id: st(&g.group_id.0),
                group_state: st(&g.group_state),
                protocol_type: st(&g.protocol_type),
                protocol_data: st(&g.protocol_data),
                members: g
                    .members
                    .iter()
                    .map(|m| d::DescribedMember {
                        member_id: st(&m.member_id),
                        group_instance_id: ost(&m.group_instance_id),
                        client_id: st(&m.client_id),
                        client_host: st(&m.client_host),
                        member_metadata: m.member_metadata.clone(),
                        member_assignment: m.member_assignment.clone(),
                    })
                    .collect(),
                authorized_operations: g.authorized_operations,
            })
            .collect(),
    }
}

pub(super) fn delete_groups_req_to_domain(k: DeleteGroupsRequest) -> d::DeleteGroupsRequest {
    d::DeleteGroupsRequest {
        groups: k.groups_names.iter().map(|g| st(&g.0)).collect(),
    }
}

pub(super) fn delete_groups_req_from_domain(r: &d::DeleteGroupsRequest) -> DeleteGroupsRequest {
    DeleteGroupsRequest::default().with_groups_names(r.groups.iter().map(|g| gid(g)).collect())
}

pub(super) fn delete_groups_resp_from_domain(r: &d::DeleteGroupsResponse) -> DeleteGroupsResponse {
    DeleteGroupsResponse::default()
        .with_throttle_time_ms(r.throttle_time_ms)
        .with_results(
            r.results
                .iter()
                .map(|(group, error)| {
                    delete_groups_response::DeletableGroupResult::default()
                        .with_group_id(gid(group))
                        .with_error_code(error.0)
                })
                .collect(),
        )
}

pub(super) fn delete_groups_resp_to_domain(k: DeleteGroupsResponse) -> d::DeleteGroupsResponse {
    d::DeleteGroupsResponse {
        throttle_time_ms: k.throttle_time_ms,
        results: k
            .results
            .iter()
            .map(|r| (st(&r.group_id.0), ErrorCode(r.error_code)))
            .collect(),
    }
}

pub(super) fn offset_delete_req_to_domain(k: OffsetDeleteRequest) -> d::OffsetDeleteRequest {
    d::OffsetDeleteRequest {
        group_id: st(&k.group_id.0),
        topics: k
            .topics
            .iter()
            .map(|t| {
                let partitions = t.partitions.iter().map(|p| p.partition_index).collect();
                (st(&t.name.0), partitions)
            })
            .collect(),
    }
}

pub(super) fn offset_delete_req_from_domain(r: &d::OffsetDeleteRequest) -> OffsetDeleteRequest {
    OffsetDeleteRequest::default()
        .with_group_id(gid(&r.group_id))
        .with_topics(
            r.topics
                .iter()
                .map(|(name, partitions)| {
                    offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(tn(name))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|p| {
                                    offset_delete_request::OffsetDeleteRequestPartition::default()
                                        .with_partition_index(*p)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

pub(super) fn offset_delete_resp_from_domain(r: &d::OffsetDeleteResponse) -> OffsetDeleteResponse {
    OffsetDeleteResponse::default()
        .with_error_code(r.error.0)
        .with_throttle_time_ms(r.throttle_time_ms)
        .with_topics(
            r.topics
                .iter()
                .map(|(name, partitions)| {
                    offset_delete_response::OffsetDeleteResponseTopic::default()
                        .with_name(tn(name))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|(p, e)| {
                                    offset_delete_response::OffsetDeleteResponsePartition::default()
                                        .with_partition_index(*p)
                                        .with_error_code(e.0)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

pub(super) fn offset_delete_resp_to_domain(k: OffsetDeleteResponse) -> d::OffsetDeleteResponse {
    d::OffsetDeleteResponse {
        error: ErrorCode(k.error_code),
        throttle_time_ms: k.throttle_time_ms,
        topics: k
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| (p.partition_index, ErrorCode(p.error_code)))
                    .collect();
                (st(&t.name.0), partitions)
            })
            .collect(),
    }
}
