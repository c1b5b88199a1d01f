//! Goal: ConsumerGroupHeartbeat and ConsumerGroupDescribe (KIP-848) survive the wire at
//! every served version, both directions, and the allocation guard accepts what we encode.
//! Method: proptest strategies by version (v1-only fields hold their decode default at v0),
//! encode -> decode -> full equality, like codec_roundtrip_groups.rs.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use uuid::Uuid;
use weir_wire::codec::{
    api_key, decode_request, decode_response, encode_request, encode_response, Decoded,
    RequestHeader, SUPPORTED_APIS,
};
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9._-]{0,8}"
}

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn topic_partitions() -> impl Strategy<Value = Vec<TopicIdPartitions>> {
    vec(
        (uuid(), vec(0i32..64, 0..4)).prop_map(|(topic_id, partitions)| TopicIdPartitions {
            topic_id,
            partitions,
        }),
        0..3,
    )
}

fn described_partitions() -> impl Strategy<Value = Vec<DescribedTopicPartitions>> {
    vec(
        (uuid(), name(), vec(0i32..64, 0..4)).prop_map(|(topic_id, topic_name, partitions)| {
            DescribedTopicPartitions {
                topic_id,
                topic_name,
                partitions,
            }
        }),
        0..3,
    )
}

fn req(key: i16, v: i16) -> BoxedStrategy<ApiRequest> {
    match key {
        68 => (
            (
                name(),
                name(),
                any::<i32>(),
                option::of(name()),
                option::of(name()),
            ),
            (
                any::<i32>(),
                option::of(vec(name(), 0..3)),
                if v >= 1 {
                    option::of(name()).boxed()
                } else {
                    Just(None).boxed()
                },
                option::of(name()),
                option::of(topic_partitions()),
            ),
        )
            .prop_map(
                |(
                    (group_id, member_id, member_epoch, instance_id, rack_id),
                    (rebalance, names, regex, assignor, owned),
                )| {
                    ApiRequest::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest {
                        group_id,
                        member_id,
                        member_epoch,
                        instance_id,
                        rack_id,
                        rebalance_timeout_ms: rebalance,
                        subscribed_topic_names: names,
                        subscribed_topic_regex: regex,
                        server_assignor: assignor,
                        topic_partitions: owned,
                        client_id: "rt-client".into(),
                    })
                },
            )
            .boxed(),
        69 => (vec(name(), 0..3), any::<bool>())
            .prop_map(|(group_ids, include_authorized_operations)| {
                ApiRequest::ConsumerGroupDescribe(ConsumerGroupDescribeRequest {
                    group_ids,
                    include_authorized_operations,
                })
            })
            .boxed(),
        _ => unreachable!("api {key}"),
    }
}

fn resp(key: i16, v: i16) -> BoxedStrategy<ApiResponse> {
    match key {
        68 => (
            any::<i32>(),
            (-1i16..120).prop_map(ErrorCode),
            option::of(name()),
            option::of(name()),
            any::<i32>(),
            any::<i32>(),
            option::of(topic_partitions()),
        )
            .prop_map(
                |(throttle, error, message, member_id, epoch, interval, assignment)| {
                    ApiResponse::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse {
                        throttle_time_ms: throttle,
                        error,
                        error_message: message,
                        member_id,
                        member_epoch: epoch,
                        heartbeat_interval_ms: interval,
                        assignment,
                    })
                },
            )
            .boxed(),
        69 => {
            let member = (
                (name(), option::of(name()), option::of(name()), any::<i32>()),
                (name(), name(), vec(name(), 0..3), option::of(name())),
                (described_partitions(), described_partitions(), -1i8..2),
            )
                .prop_map(
                    move |(
                        (member_id, instance_id, rack_id, member_epoch),
                        (client_id, client_host, names, regex),
                        (assignment, target_assignment, member_type),
                    )| ConsumerGroupDescribedMember {
                        member_id,
                        instance_id,
                        rack_id,
                        member_epoch,
                        client_id,
                        client_host,
                        subscribed_topic_names: names,
                        subscribed_topic_regex: regex,
                        assignment,
                        target_assignment,
                        member_type: if v >= 1 { member_type } else { -1 },
                    },
                );
            let group = (
                (-1i16..120).prop_map(ErrorCode),
                option::of(name()),
                (name(), name(), any::<i32>(), any::<i32>(), name()),
                vec(member, 0..3),
                any::<i32>(),
            )
                .prop_map(
                    |(
                        error,
                        error_message,
                        (group_id, state, epoch, aepoch, assignor),
                        members,
                        ops,
                    )| {
                        ConsumerGroupDescribedGroup {
                            error,
                            error_message,
                            group_id,
                            group_state: state,
                            group_epoch: epoch,
                            assignment_epoch: aepoch,
                            assignor_name: assignor,
                            members,
                            authorized_operations: ops,
                        }
                    },
                );
            (any::<i32>(), vec(group, 0..3))
                .prop_map(|(throttle_time_ms, groups)| {
                    ApiResponse::ConsumerGroupDescribe(ConsumerGroupDescribeResponse {
                        throttle_time_ms,
                        groups,
                    })
                })
                .boxed()
        }
        _ => unreachable!("api {key}"),
    }
}

fn strip_prefix(mut out: BytesMut) -> Bytes {
    out.split_off(4).freeze()
}

/// The KIP-848 consumer group APIs with their served ranges, from the ApiVersions table.
fn consumer_group_apis() -> Vec<(i16, i16, i16)> {
    let keys = [
        api_key::CONSUMER_GROUP_HEARTBEAT,
        api_key::CONSUMER_GROUP_DESCRIBE,
    ];
    let apis: Vec<_> = SUPPORTED_APIS
        .iter()
        .copied()
        .filter(|e| keys.contains(&e.0))
        .collect();
    assert_eq!(
        apis.len(),
        keys.len(),
        "every KIP-848 consumer group API is served"
    );
    apis
}

#[test]
fn consumer_group_apis_round_trip_at_every_version() {
    for &(key, min, max) in &consumer_group_apis() {
        for v in min..=max {
            let config = ProptestConfig {
                cases: 48,
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
                            client_id: Some("rt-client".into()),
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
                        prop_assert_eq!(&got, &response);
                        Ok(())
                    },
                )
                .unwrap_or_else(|e| panic!("api {key} v{v}: {e}"));
        }
    }
}
