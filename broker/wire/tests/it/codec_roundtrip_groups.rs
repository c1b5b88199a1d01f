//! Goal: every consumer-group request/response survives the wire at every served version,
//! both directions, like codec_roundtrip.rs does for the other APIs.
//! Method: proptest strategies by version whose version-absent fields hold what decoding
//! yields when the field is missing, so full equality can be asserted.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use weir_wire::codec::{
    api_key, decode_request, decode_response, encode_request, encode_response, Decoded,
    RequestHeader, SUPPORTED_APIS,
};
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9._-]{0,8}"
}

fn bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..16).prop_map(Bytes::from)
}

fn err() -> impl Strategy<Value = ErrorCode> {
    (-1i16..120).prop_map(ErrorCode)
}

/// `s` when the field exists at this version, else its decode default.
fn at<T: Clone + std::fmt::Debug + 'static>(
    present: bool,
    s: impl Strategy<Value = T> + 'static,
    default: T,
) -> BoxedStrategy<T> {
    if present {
        s.boxed()
    } else {
        Just(default).boxed()
    }
}

fn opt_name(present: bool) -> BoxedStrategy<Option<String>> {
    at(present, option::of(name()), None)
}

const CLIENT: &str = "rt-client";

fn req(key: i16, v: i16) -> BoxedStrategy<ApiRequest> {
    match key {
        10 => (
            at(v >= 1, 0i8..2, 0),
            if v >= 4 {
                vec(name(), 0..3).boxed()
            } else {
                vec(name(), 1..=1).boxed()
            },
        )
            .prop_map(|(key_type, keys)| {
                ApiRequest::FindCoordinator(FindCoordinatorRequest { key_type, keys })
            })
            .boxed(),
        11 => (
            name(),
            any::<i32>(),
            any::<i32>(),
            name(),
            opt_name(v >= 5),
            name(),
            vec((name(), bytes()), 0..3),
            opt_name(v >= 8),
        )
            .prop_map(
                move |(
                    group_id,
                    session,
                    rebalance,
                    member_id,
                    instance,
                    ptype,
                    protocols,
                    reason,
                )| {
                    ApiRequest::JoinGroup(JoinGroupRequest {
                        group_id,
                        session_timeout_ms: session,
                        rebalance_timeout_ms: if v >= 1 { rebalance } else { session },
                        member_id,
                        group_instance_id: instance,
                        protocol_type: ptype,
                        protocols: protocols
                            .into_iter()
                            .map(|(name, metadata)| JoinGroupProtocol { name, metadata })
                            .collect(),
                        reason,
                        client_id: CLIENT.into(),
                        client_host: String::new(),
                        member_id_required: v >= 4,
                    })
                },
            )
            .boxed(),
        12 => (name(), any::<i32>(), name(), opt_name(v >= 3))
            .prop_map(|(group_id, generation_id, member_id, group_instance_id)| {
                ApiRequest::Heartbeat(HeartbeatRequest {
                    group_id,
                    generation_id,
                    member_id,
                    group_instance_id,
                })
            })
            .boxed(),
        13 => {
            let member = (name(), opt_name(v >= 3), opt_name(v >= 5)).prop_map(
                |(member_id, group_instance_id, reason)| LeavingMember {
                    member_id,
                    group_instance_id,
                    reason,
                },
            );
            let members = if v >= 3 {
                vec(member, 0..3).boxed()
            } else {
                vec(member, 1..=1).boxed()
            };
            (name(), members)
                .prop_map(|(group_id, members)| {
                    ApiRequest::LeaveGroup(LeaveGroupRequest { group_id, members })
                })
                .boxed()
        }
        14 => (
            name(),
            any::<i32>(),
            name(),
            opt_name(v >= 3),
            opt_name(v >= 5),
            opt_name(v >= 5),
            vec((name(), bytes()), 0..3),
        )
            .prop_map(
                |(
                    group_id,
                    generation_id,
                    member_id,
                    group_instance_id,
                    protocol_type,
                    protocol_name,
                    assignments,
                )| {
                    ApiRequest::SyncGroup(SyncGroupRequest {
                        group_id,
                        generation_id,
                        member_id,
                        group_instance_id,
                        protocol_type,
                        protocol_name,
                        assignments,
                    })
                },
            )
            .boxed(),
        8 => {
            let partition = (
                any::<i32>(),
                any::<i64>(),
                at(v >= 6, any::<i32>(), -1),
                option::of(name()),
            )
                .prop_map(
                    |(partition, committed_offset, committed_leader_epoch, metadata)| {
                        OffsetCommitPartition {
                            partition,
                            committed_offset,
                            committed_leader_epoch,
                            metadata,
                        }
                    },
                );
            let topic = (name(), vec(partition, 0..3))
                .prop_map(|(name, partitions)| OffsetCommitTopic { name, partitions });
            (
                name(),
                any::<i32>(),
                name(),
                opt_name(v >= 7),
                at(v <= 4, any::<i64>(), -1),
                vec(topic, 0..3),
            )
                .prop_map(
                    |(
                        group_id,
                        generation_id,
                        member_id,
                        group_instance_id,
                        retention_time_ms,
                        topics,
                    )| {
                        ApiRequest::OffsetCommit(OffsetCommitRequest {
                            group_id,
                            generation_id,
                            member_id,
                            group_instance_id,
                            retention_time_ms,
                            topics,
                        })
                    },
                )
                .boxed()
        }
        9 => {
            let topics = vec((name(), vec(any::<i32>(), 0..3)), 0..3);
            let topics = if v >= 2 {
                option::of(topics).boxed()
            } else {
                topics.prop_map(Some).boxed()
            };
            let group = (name(), topics)
                .prop_map(|(group_id, topics)| OffsetFetchGroup { group_id, topics });
            let groups = if v >= 8 {
                vec(group, 0..3).boxed()
            } else {
                vec(group, 1..=1).boxed()
            };
            (groups, at(v >= 7, any::<bool>(), false))
                .prop_map(|(groups, require_stable)| {
                    ApiRequest::OffsetFetch(OffsetFetchRequest {
                        groups,
                        require_stable,
                    })
                })
                .boxed()
        }
        15 => (vec(name(), 0..3), at(v >= 3, any::<bool>(), false))
            .prop_map(|(groups, include_authorized_operations)| {
                ApiRequest::DescribeGroups(DescribeGroupsRequest {
                    groups,
                    include_authorized_operations,
                })
            })
            .boxed(),
        16 => (
            at(v >= 4, vec(name(), 0..3), vec![]),
            at(v >= 5, vec(name(), 0..3), vec![]),
        )
            .prop_map(|(states_filter, types_filter)| {
                ApiRequest::ListGroups(ListGroupsRequest {
                    states_filter,
                    types_filter,
                })
            })
            .boxed(),
        42 => vec(name(), 0..3)
            .prop_map(|groups| ApiRequest::DeleteGroups(DeleteGroupsRequest { groups }))
            .boxed(),
        47 => (name(), vec((name(), vec(any::<i32>(), 0..3)), 0..3))
            .prop_map(|(group_id, topics)| {
                ApiRequest::OffsetDelete(OffsetDeleteRequest { group_id, topics })
            })
            .boxed(),
        _ => unreachable!("api {key}"),
    }
}

fn resp(key: i16, v: i16) -> BoxedStrategy<ApiResponse> {
    let throttle = move |since: i16| at(v >= since, any::<i32>(), 0);
    match key {
        10 => {
            let coordinator = (
                at(v >= 4, name(), String::new()),
                any::<i32>(),
                name(),
                any::<i32>(),
                err(),
                opt_name(v >= 1),
            )
                .prop_map(
                    |(key, node_id, host, port, error, error_message)| Coordinator {
                        key,
                        node_id,
                        host,
                        port,
                        error,
                        error_message,
                    },
                );
            let coordinators = if v >= 4 {
                vec(coordinator, 0..3).boxed()
            } else {
                vec(coordinator, 1..=1).boxed()
            };
            (throttle(1), coordinators)
                .prop_map(|(throttle_time_ms, coordinators)| {
                    ApiResponse::FindCoordinator(FindCoordinatorResponse {
                        throttle_time_ms,
                        coordinators,
                    })
                })
                .boxed()
        }
        11 => {
            let member = (name(), opt_name(v >= 5), bytes()).prop_map(
                |(member_id, group_instance_id, metadata)| JoinGroupMember {
                    member_id,
                    group_instance_id,
                    metadata,
                },
            );
            let protocol_name = if v >= 7 {
                option::of(name()).boxed()
            } else {
                name().prop_map(Some).boxed()
            };
            (
                throttle(2),
                err(),
                any::<i32>(),
                opt_name(v >= 7),
                protocol_name,
                name(),
                at(v >= 9, any::<bool>(), false),
                name(),
                vec(member, 0..3),
            )
                .prop_map(
                    |(
                        throttle_time_ms,
                        error,
                        generation_id,
                        protocol_type,
                        protocol_name,
                        leader,
                        skip_assignment,
                        member_id,
                        members,
                    )| {
                        ApiResponse::JoinGroup(JoinGroupResponse {
                            throttle_time_ms,
                            error,
                            generation_id,
                            protocol_type,
                            protocol_name,
                            leader,
                            skip_assignment,
                            member_id,
                            members,
                        })
                    },
                )
                .boxed()
        }
        12 => (throttle(1), err())
            .prop_map(|(throttle_time_ms, error)| {
                ApiResponse::Heartbeat(HeartbeatResponse {
                    throttle_time_ms,
                    error,
                })
            })
            .boxed(),
        13 => {
            let member = (name(), option::of(name()), err()).prop_map(
                |(member_id, group_instance_id, error)| LeftMember {
                    member_id,
                    group_instance_id,
                    error,
                },
            );
            (throttle(1), err(), at(v >= 3, vec(member, 0..3), vec![]))
                .prop_map(|(throttle_time_ms, error, members)| {
                    ApiResponse::LeaveGroup(LeaveGroupResponse {
                        throttle_time_ms,
                        error,
                        members,
                    })
                })
                .boxed()
        }
        14 => (
            throttle(1),
            err(),
            opt_name(v >= 5),
            opt_name(v >= 5),
            bytes(),
        )
            .prop_map(
                |(throttle_time_ms, error, protocol_type, protocol_name, assignment)| {
                    ApiResponse::SyncGroup(SyncGroupResponse {
                        throttle_time_ms,
                        error,
                        protocol_type,
                        protocol_name,
                        assignment,
                    })
                },
            )
            .boxed(),
        8 => {
            let topic = (name(), vec((any::<i32>(), err()), 0..3))
                .prop_map(|(name, partitions)| OffsetCommitTopicResponse { name, partitions });
            (throttle(3), vec(topic, 0..3))
                .prop_map(|(throttle_time_ms, topics)| {
                    ApiResponse::OffsetCommit(OffsetCommitResponse {
                        throttle_time_ms,
                        topics,
                    })
                })
                .boxed()
        }
        9 => {
            let partition = (
                any::<i32>(),
                any::<i64>(),
                at(v >= 5, any::<i32>(), -1),
                option::of(name()),
                err(),
            )
                .prop_map(
                    |(partition, committed_offset, committed_leader_epoch, metadata, error)| {
                        OffsetFetchPartition {
                            partition,
                            committed_offset,
                            committed_leader_epoch,
                            metadata,
                            error,
                        }
                    },
                );
            let topic = (name(), vec(partition, 0..3))
                .prop_map(|(name, partitions)| OffsetFetchTopic { name, partitions });
            let group = (
                at(v >= 8, name(), String::new()),
                vec(topic, 0..3),
                at(v >= 2, err(), ErrorCode::NONE),
            )
                .prop_map(|(group_id, topics, error)| OffsetFetchGroupResponse {
                    group_id,
                    topics,
                    error,
                });
            let groups = if v >= 8 {
                vec(group, 0..3).boxed()
            } else {
                vec(group, 1..=1).boxed()
            };
            (throttle(3), groups)
                .prop_map(|(throttle_time_ms, groups)| {
                    ApiResponse::OffsetFetch(OffsetFetchResponse {
                        throttle_time_ms,
                        groups,
                    })
                })
                .boxed()
        }
        15 => {
            let member = (name(), opt_name(v >= 4), name(), name(), bytes(), bytes()).prop_map(
                |(
                    member_id,
                    group_instance_id,
                    client_id,
                    client_host,
                    member_metadata,
                    member_assignment,
                )| DescribedMember {
                    member_id,
                    group_instance_id,
                    client_id,
                    client_host,
                    member_metadata,
                    member_assignment,
                },
            );
            let group = (
                err(),
                name(),
                name(),
                name(),
                name(),
                vec(member, 0..3),
                at(v >= 3, any::<i32>(), i32::MIN),
            )
                .prop_map(
                    |(
                        error,
                        group_id,
                        group_state,
                        protocol_type,
                        protocol_data,
                        members,
                        authorized_operations,
                    )| DescribedGroup {
                        error,
                        group_id,
                        group_state,
                        protocol_type,
                        protocol_data,
                        members,
                        authorized_operations,
                    },
                );
            (throttle(1), vec(group, 0..3))
                .prop_map(|(throttle_time_ms, groups)| {
                    ApiResponse::DescribeGroups(DescribeGroupsResponse {
                        throttle_time_ms,
                        groups,
                    })
                })
                .boxed()
        }
        16 => {
            let group = (
                name(),
                name(),
                at(v >= 4, name(), String::new()),
                at(v >= 5, name(), String::new()),
            )
                .prop_map(
                    |(group_id, protocol_type, group_state, group_type)| ListedGroup {
                        group_id,
                        protocol_type,
                        group_state,
                        group_type,
                    },
                );
            (throttle(1), err(), vec(group, 0..3))
                .prop_map(|(throttle_time_ms, error, groups)| {
                    ApiResponse::ListGroups(ListGroupsResponse {
                        throttle_time_ms,
                        error,
                        groups,
                    })
                })
                .boxed()
        }
        42 => (any::<i32>(), vec((name(), err()), 0..3))
            .prop_map(|(throttle_time_ms, results)| {
                ApiResponse::DeleteGroups(DeleteGroupsResponse {
                    throttle_time_ms,
                    results,
                })
            })
            .boxed(),
        47 => (
            err(),
            any::<i32>(),
            vec((name(), vec((any::<i32>(), err()), 0..3)), 0..3),
        )
            .prop_map(|(error, throttle_time_ms, topics)| {
                ApiResponse::OffsetDelete(OffsetDeleteResponse {
                    error,
                    throttle_time_ms,
                    topics,
                })
            })
            .boxed(),
        _ => unreachable!("api {key}"),
    }
}

fn strip_prefix(mut out: BytesMut) -> Bytes {
    let len = i32::from_be_bytes([out[0], out[1], out[2], out[3]]);
    assert_eq!(len as usize, out.len() - 4, "length prefix");
    out.split_off(4).freeze()
}

/// The consumer-group (classic) APIs with their served ranges, from the ApiVersions table.
fn group_apis() -> Vec<(i16, i16, i16)> {
    let keys = [
        api_key::OFFSET_COMMIT,
        api_key::OFFSET_FETCH,
        api_key::FIND_COORDINATOR,
        api_key::JOIN_GROUP,
        api_key::HEARTBEAT,
        api_key::LEAVE_GROUP,
        api_key::SYNC_GROUP,
        api_key::DESCRIBE_GROUPS,
        api_key::LIST_GROUPS,
        api_key::DELETE_GROUPS,
        api_key::OFFSET_DELETE,
    ];
    let apis: Vec<_> = SUPPORTED_APIS
        .iter()
        .copied()
        .filter(|e| keys.contains(&e.0))
        .collect();
    assert_eq!(
        apis.len(),
        keys.len(),
        "every consumer-group (classic) API is served"
    );
    apis
}

#[test]
fn group_apis_round_trip_at_every_version() {
    for &(key, min, max) in &group_apis() {
        for v in min..=max {
            let config = ProptestConfig {
                cases: 24,
                ..ProptestConfig::default()
            };
            let mut runner = proptest::test_runner::TestRunner::new(config);
            runner
                .run(
                    &(req(key, v), resp(key, v), any::<i32>()),
                    |(request, response, corr)| {
                        let h = RequestHeader {
                            api_key: key,
                            api_version: v,
                            correlation_id: corr,
                            client_id: Some(CLIENT.into()),
                        };
                        let mut out = BytesMut::new();
                        encode_request(&h, &request, &mut out)
                            .map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
                        let (got_header, decoded) = decode_request(strip_prefix(out))
                            .map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
                        prop_assert_eq!(&got_header, &h);
                        match decoded {
                            Decoded::Api(got) => prop_assert_eq!(&got, &request),
                            other => {
                                return Err(TestCaseError::fail(format!("decoded as {other:?}")))
                            }
                        }
                        let mut out = BytesMut::new();
                        encode_response(&h, &response, &mut out)
                            .map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
                        let got = decode_response(&h, strip_prefix(out))
                            .map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
                        // LeaveGroup v0-2 fold the one member's error into the top level.
                        prop_assert_eq!(&got, &response);
                        Ok(())
                    },
                )
                .unwrap_or_else(|e| panic!("api {key} v{v}: {e}"));
        }
    }
}
