//! Goal: no byte sequence makes the decoders panic or allocate absurdly; they return a
//! value or a WireError. Method: proptest over arbitrary bytes, over arbitrary bytes behind a
//! valid header of every served API/version, and over valid frames with random byte flips,
//! truncations and 0xff runs (which turn lengths into huge values).

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use weir_wire::codec::*;
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;
use weir_wire::records::decode_records;

fn served() -> Vec<(i16, i16)> {
    let mut out = Vec::new();
    for &(key, min, max) in SUPPORTED_APIS {
        for v in min..=max {
            out.push((key, v));
        }
    }
    out
}

/// Valid request frames (without prefix) of every served API at every served version.
fn valid_frames() -> Vec<Bytes> {
    let topic = |v: i16| {
        if v >= 13 {
            TopicRef::Id(uuid::Uuid::from_u128(9))
        } else {
            TopicRef::Name("t".into())
        }
    };
    let mut frames = Vec::new();
    for (key, v) in served() {
        let request = match key {
            0 if v >= 3 => ApiRequest::Produce(ProduceRequest {
                transactional_id: Some("tx".into()),
                acks: Acks::All,
                timeout_ms: 1000,
                topics: vec![ProduceTopic {
                    topic: topic(v),
                    partitions: vec![ProducePartition {
                        partition: 0,
                        records: Some(Bytes::from_static(&[1; 70])),
                    }],
                }],
            }),
            1 => ApiRequest::Fetch(FetchRequest {
                replica_id: -1,
                max_wait_ms: 100,
                min_bytes: 1,
                max_bytes: 1000,
                isolation_level: 1,
                session_id: 0,
                session_epoch: -1,
                topics: vec![FetchTopic {
                    topic: topic(v),
                    partitions: vec![FetchPartition {
                        partition: 0,
                        current_leader_epoch: -1,
                        fetch_offset: 5,
                        log_start_offset: -1,
                        partition_max_bytes: 100,
                    }],
                }],
                rack_id: String::new(),
            }),
            3 => ApiRequest::Metadata(MetadataRequest {
                topics: Some(vec![TopicRef::Name("t".into())]),
                allow_auto_topic_creation: true,
                include_cluster_authorized_operations: false,
                include_topic_authorized_operations: false,
            }),
            19 => ApiRequest::CreateTopics(CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: "t".into(),
                    num_partitions: 3,
                    replication_factor: 1,
                    assignments: vec![(0, vec![1])],
                    configs: vec![("retention.ms".into(), Some("1".into()))],
                }],
                timeout_ms: 1000,
                validate_only: false,
            }),
            23 => ApiRequest::OffsetForLeaderEpoch(cluster::OffsetForLeaderEpochRequest {
                replica_id: if v >= 3 {
                    -1
                } else {
                    cluster::replica_id::DEBUGGING
                },
                topics: vec![cluster::OffsetForLeaderTopic {
                    topic: "t".into(),
                    partitions: vec![cluster::OffsetForLeaderPartition {
                        partition: 0,
                        current_leader_epoch: 3,
                        leader_epoch: 2,
                    }],
                }],
            }),
            33 => ApiRequest::AlterConfigs(cluster::AlterConfigsRequest {
                resources: vec![cluster::AlterConfigsResource {
                    resource_type: resource_type::TOPIC,
                    resource_name: "t".into(),
                    configs: vec![cluster::AlterableConfig {
                        name: "retention.ms".into(),
                        value: Some("1".into()),
                    }],
                }],
                validate_only: false,
            }),
            43 => ApiRequest::ElectLeaders(cluster::ElectLeadersRequest {
                election_type: cluster::election_type::PREFERRED,
                topic_partitions: Some(vec![cluster::ElectLeadersTopic {
                    topic: "t".into(),
                    partitions: vec![0, 1],
                }]),
                timeout_ms: 1000,
            }),
            44 => ApiRequest::IncrementalAlterConfigs(cluster::IncrementalAlterConfigsRequest {
                resources: vec![cluster::IncrementalAlterConfigsResource {
                    resource_type: resource_type::TOPIC,
                    resource_name: "t".into(),
                    configs: vec![cluster::IncrementalAlterableConfig {
                        name: "retention.ms".into(),
                        operation: cluster::config_operation::SET,
                        value: Some("1".into()),
                    }],
                }],
                validate_only: false,
            }),
            45 => ApiRequest::AlterPartitionReassignments(
                cluster::AlterPartitionReassignmentsRequest {
                    timeout_ms: 1000,
                    allow_replication_factor_change: true,
                    topics: vec![cluster::ReassignableTopic {
                        name: "t".into(),
                        partitions: vec![cluster::ReassignablePartition {
                            partition: 0,
                            replicas: Some(vec![1, 2, 3]),
                        }],
                    }],
                },
            ),
            46 => {
                ApiRequest::ListPartitionReassignments(cluster::ListPartitionReassignmentsRequest {
                    timeout_ms: 1000,
                    topics: Some(vec![cluster::ListPartitionReassignmentsTopic {
                        name: "t".into(),
                        partitions: vec![0],
                    }]),
                })
            }
            55 => ApiRequest::DescribeQuorum(quorum::DescribeQuorumRequest {
                topics: vec![quorum::DescribeQuorumTopic {
                    name: quorum::METADATA_TOPIC.into(),
                    partitions: vec![0],
                }],
            }),
            80 => ApiRequest::AddRaftVoter(quorum::AddRaftVoterRequest {
                cluster_id: None,
                timeout_ms: 30_000,
                voter_id: 4,
                voter_directory_id: uuid::Uuid::nil(),
                listeners: vec![quorum::RaftListener {
                    name: "CONTROLLER".into(),
                    host: "h".into(),
                    port: 9093,
                }],
            }),
            81 => ApiRequest::RemoveRaftVoter(quorum::RemoveRaftVoterRequest {
                cluster_id: Some("c".into()),
                voter_id: 2,
                voter_directory_id: uuid::Uuid::nil(),
            }),
            35 => ApiRequest::DescribeLogDirs(log_dirs::DescribeLogDirsRequest {
                topics: Some(vec![log_dirs::DescribableLogDirTopic {
                    topic: "t".into(),
                    partitions: vec![0, 1],
                }]),
            }),
            _ => continue,
        };
        let header = RequestHeader {
            api_key: key,
            api_version: v,
            correlation_id: 1,
            client_id: Some("c".into()),
        };
        let mut out = BytesMut::new();
        encode_request(&header, &request, &mut out).expect("valid frame");
        frames.push(out.split_off(4).freeze());
    }
    frames
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_request(Bytes::from(data.clone()));
        let _ = decode_records(Bytes::from(data.clone()));
        let _ = weir_wire::batch::validate_batches(&data);
    }

    #[test]
    fn arbitrary_bodies(
        pick in any::<prop::sample::Index>(),
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let all = served();
        let (key, v) = all[pick.index(all.len())];
        let mut frame = BytesMut::new();
        frame.put_i16(key);
        frame.put_i16(v);
        frame.put_i32(1);
        frame.put_i16(-1);
        frame.put_slice(&body);
        let _ = decode_request(frame.freeze());
        // Same bytes as a response to that request (client direction).
        let header =
            RequestHeader { api_key: key, api_version: v, correlation_id: 1, client_id: None };
        let mut response = BytesMut::new();
        response.put_i32(1);
        response.put_slice(&body);
        let _ = decode_response(&header, response.clone().freeze());
        let _ = decode_api_versions_answer(&header, response.freeze());
    }

    #[test]
    fn mutated_valid_frames(
        pick in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ff_run in proptest::option::of((any::<prop::sample::Index>(), 1usize..6)),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let frames = valid_frames();
        let mut frame = frames[pick.index(frames.len())].to_vec();
        for (at, byte) in flips {
            let i = at.index(frame.len());
            frame[i] = byte;
        }
        if let Some((at, n)) = ff_run {
            let i = at.index(frame.len());
            for b in frame.iter_mut().skip(i).take(n) {
                *b = 0xff;
            }
        }
        if let Some(at) = cut {
            frame.truncate(at.index(frame.len()));
        }
        let _ = decode_request(Bytes::from(frame));
    }
}

#[test]
fn valid_frames_decode() {
    for frame in valid_frames() {
        let (_, decoded) = decode_request(frame).expect("valid");
        assert!(matches!(decoded, Decoded::Api(_)));
    }
}

#[test]
fn error_code_names() {
    assert_eq!(ErrorCode::UNSUPPORTED_VERSION.name(), "UNSUPPORTED_VERSION");
}
