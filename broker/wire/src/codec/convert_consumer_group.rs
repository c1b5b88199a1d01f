//! Conversions for the KIP-848 consumer group APIs: ConsumerGroupHeartbeat (68) and
//! ConsumerGroupDescribe (69), v0-1.
//!
//! Same invariants as `convert.rs`: `*_from_domain(x, v)` sets only fields that exist at
//! `v` (`subscribed_topic_regex` and `member_type` are v1+), `*_to_domain` copies every
//! field, so the pair round-trips whenever `x` holds the decode default where `v` lacks a
//! field.

use kafka_protocol::messages::{
    consumer_group_describe_response as cgd, consumer_group_heartbeat_request as cgh_req,
    consumer_group_heartbeat_response as cgh_resp, ConsumerGroupDescribeRequest,
    ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
    GroupId, TopicName,
};

use super::convert_helpers::{osb, ost, sb, st};
use crate::domain as d;
use crate::error::ErrorCode;

fn at_v1<T>(v: i16, value: Option<T>) -> Option<T> {
    if v >= 1 {
        value
    } else {
        None
    }
}

// ---- ConsumerGroupHeartbeat ------------------------------------------------------------

pub(crate) fn heartbeat_req_to_domain(
    r: ConsumerGroupHeartbeatRequest,
    client_id: Option<&str>,
) -> d::ConsumerGroupHeartbeatRequest {
    d::ConsumerGroupHeartbeatRequest {
        client_id: client_id.unwrap_or_default().to_string(),
        group_id: st(&r.group_id.0),
        member_id: st(&r.member_id),
        member_epoch: r.member_epoch,
        instance_id: ost(&r.instance_id),
        rack_id: ost(&r.rack_id),
        rebalance_timeout_ms: r.rebalance_timeout_ms,
        subscribed_topic_names: (r.subscribed_topic_names)
            .map(|names| names.iter().map(|n| st(&n.0)).collect()),
        subscribed_topic_regex: ost(&r.subscribed_topic_regex),
        server_assignor: ost(&r.server_assignor),
        topic_partitions: r.topic_partitions.map(|topics| {
            (topics.into_iter())
                .map(|t| d::TopicIdPartitions {
                    topic_id: t.topic_id,
                    partitions: t.partitions,
                })
                .collect()
        }),
    }
}

pub(crate) fn heartbeat_req_from_domain(
    r: &d::ConsumerGroupHeartbeatRequest,
    v: i16,
) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(sb(&r.group_id)))
        .with_member_id(sb(&r.member_id))
        .with_member_epoch(r.member_epoch)
        .with_instance_id(osb(&r.instance_id))
        .with_rack_id(osb(&r.rack_id))
        .with_rebalance_timeout_ms(r.rebalance_timeout_ms)
        .with_subscribed_topic_names(
            (r.subscribed_topic_names.as_ref())
                .map(|names| names.iter().map(|n| TopicName(sb(n))).collect()),
        )
        .with_subscribed_topic_regex(at_v1(v, osb(&r.subscribed_topic_regex)))
        .with_server_assignor(osb(&r.server_assignor))
        .with_topic_partitions(r.topic_partitions.as_ref().map(|topics| {
            (topics.iter())
                .map(|t| {
                    cgh_req::TopicPartitions::default()
                        .with_topic_id(t.topic_id)
                        .with_partitions(t.partitions.clone())
                })
                .collect()
        }))
}

pub(crate) fn heartbeat_resp_from_domain(
    r: &d::ConsumerGroupHeartbeatResponse,
) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_throttle_time_ms(r.throttle_time_ms)
        .with_error_code(r.error.0)
        .with_error_message(osb(&r.error_message))
        .with_member_id(osb(&r.member_id))
        .with_member_epoch(r.member_epoch)
        .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
        .with_assignment(r.assignment.as_ref().map(|topics| {
            cgh_resp::Assignment::default().with_topic_partitions(
                (topics.iter())
                    .map(|t| {
                        cgh_resp::TopicPartitions::default()
                            .with_topic_id(t.topic_id)
                            .with_partitions(t.partitions.clone())
                    })
                    .collect(),
            )
        }))
}

pub(crate) fn heartbeat_resp_to_domain(
    r: ConsumerGroupHeartbeatResponse,
) -> d::ConsumerGroupHeartbeatResponse {
    d::ConsumerGroupHeartbeatResponse {
        throttle_time_ms: r.throttle_time_ms,
        error: ErrorCode(r.error_code),
        error_message: ost(&r.error_message),
        member_id: ost(&r.member_id),
        member_epoch: r.member_epoch,
        heartbeat_interval_ms: r.heartbeat_interval_ms,
        assignment: r.assignment.map(|a| {
            (a.topic_partitions.into_iter())
                .map(|t| d::TopicIdPartitions {
                    topic_id: t.topic_id,
                    partitions: t.partitions,
                })
                .collect()
        }),
    }
}

// ---- ConsumerGroupDescribe -------------------------------------------------------------

pub(crate) fn describe_req_to_domain(
    r: ConsumerGroupDescribeRequest,
) -> d::ConsumerGroupDescribeRequest {
    d::ConsumerGroupDescribeRequest {
        group_ids: r.group_ids.iter().map(|g| st(&g.0)).collect(),
        include_authorized_operations: r.include_authorized_operations,
    }
}

pub(crate) fn describe_req_from_domain(
    r: &d::ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeRequest {
    ConsumerGroupDescribeRequest::default()
        .with_group_ids(r.group_ids.iter().map(|g| GroupId(sb(g))).collect())
        .with_include_authorized_operations(r.include_authorized_operations)
}

fn assignment_from_domain(topics: &[d::DescribedTopicPartitions]) -> cgd::Assignment {
    cgd::Assignment::default().with_topic_partitions(
        (topics.iter())
            .map(|t| {
                cgd::TopicPartitions::default()
                    .with_topic_id(t.topic_id)
                    .with_topic_name(TopicName(sb(&t.topic_name)))
                    .with_partitions(t.partitions.clone())
            })
            .collect(),
    )
}

fn assignment_to_domain(a: cgd::Assignment) -> Vec<d::DescribedTopicPartitions> {
    (a.topic_partitions.into_iter())
        .map(|t| d::DescribedTopicPartitions {
            topic_id: t.topic_id,
            topic_name: st(&t.topic_name.0),
            partitions: t.partitions,
        })
        .collect()
}

pub(crate) fn describe_resp_from_domain(
    r: &d::ConsumerGroupDescribeResponse,
    v: i16,
) -> ConsumerGroupDescribeResponse {
    let groups = (r.groups.iter())
        .map(|g| {
            let members = (g.members.iter())
                .map(|m| {
                    cgd::Member::default()
                        .with_member_id(sb(&m.member_id))
                        .with_instance_id(osb(&m.instance_id))
                        .with_rack_id(osb(&m.rack_id))
                        .with_member_epoch(m.member_epoch)
                        .with_client_id(sb(&m.client_id))
                        .with_client_host(sb(&m.client_host))
                        .with_subscribed_topic_names(
                            (m.subscribed_topic_names.iter())
                                .map(|n| TopicName(sb(n)))
                                .collect(),
                        )
                        .with_subscribed_topic_regex(osb(&m.subscribed_topic_regex))
                        .with_assignment(assignment_from_domain(&m.assignment))
                        .with_target_assignment(assignment_from_domain(&m.target_assignment))
                        .with_member_type(if v >= 1 { m.member_type } else { -1 })
                })
                .collect();
            cgd::DescribedGroup::default()
                .with_error_code(g.error.0)
                .with_error_message(osb(&g.error_message))
                .with_group_id(GroupId(sb(&g.group_id)))
                .with_group_state(sb(&g.group_state))
                .with_group_epoch(g.group_epoch)
                .with_assignment_epoch(g.assignment_epoch)
                .with_assignor_name(sb(&g.assignor_name))
                .with_members(members)
                .with_authorized_operations(g.authorized_operations)
        })
        .collect();
    ConsumerGroupDescribeResponse::default()
        .with_throttle_time_ms(r.throttle_time_ms)
        .with_groups(groups)
}

pub(crate) fn describe_resp_to_domain(
    r: ConsumerGroupDescribeResponse,
) -> d::ConsumerGroupDescribeResponse {
    d::ConsumerGroupDescribeResponse {
        throttle_time_ms: r.throttle_time_ms,
        groups: (r.groups.into_iter())
            .map(|g| d::ConsumerGroupDescribedGroup {
                error: ErrorCode(g.error_code),
                error_message: ost(&g.error_message),
                group_id: st(&g.group_id.0),
                group_state: st(&g.group_state),
                group_epoch: g.group_epoch,
                assignment_epoch: g.assignment_epoch,
                assignor_name: st(&g.assignor_name),
                members: (g.members.into_iter())
                    .map(|m| d::ConsumerGroupDescribedMember {
                        member_id: st(&m.member_id),
                        instance_id: ost(&m.instance_id),
                        rack_id: ost(&m.rack_id),
                        member_epoch: m.member_epoch,
                        client_id: st(&m.client_id),
                        client_host: st(&m.client_host),
                        subscribed_topic_names: (m.subscribed_topic_names.iter())
                            .map(|n| st(&n.0))
                            .collect(),
                        subscribed_topic_regex: ost(&m.subscribed_topic_regex),
                        assignment: assignment_to_domain(m.assignment),
                        target_assignment: assignment_to_domain(m.target_assignment),
                        member_type: m.member_type,
                    })
                    .collect(),
                authorized_operations: g.authorized_operations,
            })
            .collect(),
    }
}
