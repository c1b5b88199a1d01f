//! Goal: the protocol rules the drivers rely on: KIP-511 ApiVersions fallback, what is
//! Unsupported (Produce v0-2, unadvertised APIs/versions), clean failure on hostile lengths,
//! error responses, correlation checks, topic ids at Fetch v13+, and unresolved plans.
//! Method: hand-built frames and byte-level assertions against the Kafka protocol guide.

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;
use weir_wire::codec::*;
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;
use weir_wire::WireError;

fn header(api_key: i16, api_version: i16) -> RequestHeader {
    RequestHeader {
        api_key,
        api_version,
        correlation_id: 7,
        client_id: Some("t".into()),
    }
}

/// A request frame (no length prefix) with a v1 header: key, version, corr 7, client "t".
fn frame_v1(api_key: i16, api_version: i16, body: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(api_key);
    b.put_i16(api_version);
    b.put_i32(7);
    b.put_i16(1);
    b.put_u8(b't');
    b.put_slice(body);
    b.freeze()
}

fn body_of(mut out: BytesMut) -> Bytes {
    let len = i32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize;
    assert_eq!(len, out.len() - 4);
    out.split_off(4).freeze()
}

#[test]
fn api_versions_in_range() {
    for v in 0..=4 {
        let (h, decoded) = decode_request(frame_v1(18, v, &[])).expect("decode");
        assert!(matches!(decoded, Decoded::ApiVersions));
        let mut out = BytesMut::new();
        encode_api_versions(&h, &mut out).expect("encode");
        let frame = body_of(out);
        // Response header v0: just the correlation id, then error_code 0.
        assert_eq!(&frame[..6], &[0, 0, 0, 7, 0, 0]);
        let table = decode_api_versions_response(&h, frame).expect("table");
        assert_eq!(table, SUPPORTED_APIS.to_vec(), "v{v}");
    }
}

#[test]
fn api_versions_kip511_fallback() {
    let h = header(18, 9);
    let mut out = BytesMut::new();
    encode_api_versions(&h, &mut out).expect("encode");
    let frame = body_of(out);
    // Header v0 (corr), error 35, then a v0 body: int32 array length (not compact).
    assert_eq!(&frame[..6], &[0, 0, 0, 7, 0, 35]);
    let n = i32::from_be_bytes([frame[6], frame[7], frame[8], frame[9]]);
    assert_eq!(n as usize, SUPPORTED_APIS.len());
    // v0 body: nothing after the array (6 bytes per entry).
    assert_eq!(frame.len(), 10 + 6 * SUPPORTED_APIS.len());
    let answer = decode_api_versions_answer(&h, frame.clone()).expect("answer");
    assert_eq!(answer.error, ErrorCode::UNSUPPORTED_VERSION);
    assert!(answer.api_keys.contains(&(18, 0, 4)));
    assert!(matches!(
        decode_api_versions_response(&h, frame),
        Err(WireError::Unsupported(_))
    ));
}

#[test]
fn api_versions_request_round_trip() {
    for v in 0..=4 {
        let h = header(18, v);
        let mut out = BytesMut::new();
        encode_api_versions_request(&h, &mut out).expect("encode");
        let (got, decoded) = decode_request(body_of(out)).expect("decode");
        assert_eq!(got, h);
        assert!(matches!(decoded, Decoded::ApiVersions));
    }
}

#[test]
fn unsupported_requests() {
    for (key, version) in [
        (0, 12),
        (1, 3),
        (1, 17),
        (11, 10),
        (68, 2), // ConsumerGroupHeartbeat is served at v0-1 only
        (999, 0),
        (-5, 0),
    ] {
        let (h, decoded) = decode_request(frame_v1(key, version, &[1, 2, 3])).expect("header");
        assert_eq!(
            (h.api_key, h.api_version, h.correlation_id),
            (key, version, 7)
        );
        assert!(
            matches!(decoded, Decoded::Unsupported { .. }),
            "{key} v{version}: {decoded:?}"
        );
    }
    // Produce is still advertised from v0 (KAFKA-18659); v0-2 are read far enough to be
    // refused per partition, and a body too short for that is malformed.
    assert_eq!(supported_range(0), Some((0, 11)));
    for version in 0..=2 {
        let (_, decoded) =
            decode_request(frame_v1(0, version, &[0, 1, 0, 0, 0x75, 0x30, 0, 0, 0, 0]))
                .expect("empty legacy produce");
        assert!(
            matches!(decoded, Decoded::LegacyProduce(_)),
            "v{version}: {decoded:?}"
        );
        assert!(decode_request(frame_v1(0, version, &[1, 2, 3])).is_err());
    }
}

#[test]
fn unreadable_headers() {
    assert!(decode_request(Bytes::new()).is_err());
    assert!(decode_request(Bytes::from_static(&[0, 3, 0, 1, 0, 0])).is_err());
    // Client id longer than the frame.
    assert!(decode_request(Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 1, 0, 50, b'x'])).is_err());
}

#[test]
fn huge_array_lengths_fail_cleanly() {
    // Metadata v1: topics array of 2^31-1 entries in a tiny frame.
    let r = decode_request(frame_v1(3, 1, &[0x7f, 0xff, 0xff, 0xff, 0, 1]));
    assert!(r.is_err(), "{r:?}");
    // Produce v3: null txn id, acks, timeout, topics array 2^31-1.
    let mut body = vec![0xff, 0xff, 0, 1, 0, 0, 0x75, 0x30];
    body.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
    assert!(decode_request(frame_v1(0, 3, &body)).is_err());
    // Produce v9 (flexible, header v2 with empty tag buffer): compact array of u32::MAX-1.
    let mut body = vec![0u8]; // header tagged fields
    body.extend_from_slice(&[0, 0, 1, 0, 0, 0x75, 0x30]); // null compact txn id, acks, timeout
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(decode_request(frame_v1(0, 9, &body)).is_err());
    // Fetch v12: nested partitions array huge inside one topic.
    let mut body = vec![0u8];
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // replica id
    body.extend_from_slice(&[0, 0, 0, 100, 0, 0, 0, 1, 0, 0, 0, 1, 0]); // wait, min, max, iso
    body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // session id, epoch
    body.extend_from_slice(&[2, 2, b'a']); // one topic named "a"
    body.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x07]); // partitions: ~2^31
    assert!(decode_request(frame_v1(1, 12, &body)).is_err());
    // Huge tagged-field count in a flexible header.
    let body = [0xff, 0xff, 0xff, 0xff, 0x0f];
    assert!(decode_request(frame_v1(3, 9, &body)).is_err());
}

#[test]
fn fetch_topic_ids() {
    let id = Uuid::from_u128(0x1234);
    let request = ApiRequest::Fetch(FetchRequest {
        replica_id: -1,
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 1 << 20,
        isolation_level: 1,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: TopicRef::Id(id),
            partitions: vec![FetchPartition {
                partition: 0,
                current_leader_epoch: -1,
                fetch_offset: 42,
                log_start_offset: -1,
                partition_max_bytes: 1 << 20,
            }],
        }],
        rack_id: String::new(),
    });
    let h = header(1, 16);
    let mut out = BytesMut::new();
    encode_request(&h, &request, &mut out).expect("encode");
    let (_, decoded) = decode_request(body_of(out)).expect("decode");
    match decoded {
        Decoded::Api(ApiRequest::Fetch(f)) => assert_eq!(f.topics[0].topic, TopicRef::Id(id)),
        other => panic!("{other:?}"),
    }
    // A name cannot be sent at v13+, nor an id before.
    let mut out = BytesMut::new();
    assert!(encode_request(&header(1, 12), &request, &mut out).is_err());
    assert!(out.is_empty(), "failed encodes leave the buffer untouched");
}

#[test]
fn unresolved_plans_are_rejected() {
    let response = ApiResponse::Fetch(FetchResponse {
        topics: vec![FetchTopicResponse {
            topic: TopicRef::Name("t".into()),
            partitions: vec![FetchPartitionResponse {
                partition: 0,
                error: ErrorCode::NONE,
                high_watermark: 10,
                last_stable_offset: 10,
                log_start_offset: 0,
                aborted_transactions: vec![],
                preferred_read_replica: -1,
                records: FetchRecords::Read(ReadPlan {
                    partition_key: 1,
                    start_offset: 0,
                    end_offset: 10,
                    max_bytes: 100,
                }),
            }],
        }],
        ..FetchResponse::default()
    });
    let mut out = BytesMut::from(&b"keep"[..]);
    assert!(encode_response(&header(1, 11), &response, &mut out).is_err());
    assert_eq!(&out[..], b"keep");
    // Mismatched API.
    let metadata = ApiResponse::Metadata(MetadataResponse::default());
    assert!(encode_response(&header(1, 11), &metadata, &mut out).is_err());
}

#[test]
fn error_responses() {
    // Fetch v11 carries a top-level error from v7.
    let h = header(1, 11);
    let mut out = BytesMut::new();
    assert!(encode_error_response(&h, ErrorCode::UNKNOWN_SERVER_ERROR, &mut out).expect("enc"));
    match decode_response(&h, body_of(out)).expect("decode") {
        ApiResponse::Fetch(f) => assert_eq!(f.error, ErrorCode::UNKNOWN_SERVER_ERROR),
        other => panic!("{other:?}"),
    }
    // DescribeCluster.
    let h = header(60, 1);
    let mut out = BytesMut::new();
    assert!(encode_error_response(&h, ErrorCode::INVALID_REQUEST, &mut out).expect("enc"));
    match decode_response(&h, body_of(out)).expect("decode") {
        ApiResponse::DescribeCluster(d) => assert_eq!(d.error, ErrorCode::INVALID_REQUEST),
        other => panic!("{other:?}"),
    }
    // Every served API at every served version encodes something decodable.
    for &(key, min, max) in SUPPORTED_APIS {
        for v in min.max(if key == 0 { 3 } else { min })..=max {
            let h = header(key, v);
            let mut out = BytesMut::new();
            assert!(
                encode_error_response(&h, ErrorCode::UNSUPPORTED_VERSION, &mut out).expect("enc")
            );
            if key != 18 {
                decode_response(&h, body_of(out)).expect("decodable");
            }
        }
    }
    // ApiVersions at an unknown version: the KIP-511 body.
    let mut out = BytesMut::new();
    assert!(
        encode_error_response(&header(18, 77), ErrorCode::UNSUPPORTED_VERSION, &mut out)
            .expect("enc")
    );
    // Unserved APIs with a top-level error code are answered with it (SaslHandshake v1:
    // the body starts with error_code).
    let mut out = BytesMut::new();
    assert!(
        encode_error_response(&header(17, 1), ErrorCode::UNSUPPORTED_VERSION, &mut out)
            .expect("enc")
    );
    assert_eq!(
        &out[8..10],
        &35i16.to_be_bytes(),
        "length, correlation id, then error_code"
    );
    // Cannot: unknown API, Produce v0-2 (answered per partition by the legacy path),
    // CreateAcls (per-item errors only).
    for (key, v) in [(999, 0), (0, 2), (30, 0)] {
        let mut out = BytesMut::new();
        assert!(
            !encode_error_response(&header(key, v), ErrorCode::UNSUPPORTED_VERSION, &mut out)
                .expect("enc")
        );
        assert!(out.is_empty());
    }
}

#[test]
fn correlation_id_is_checked() {
    let h = header(3, 1);
    let mut out = BytesMut::new();
    encode_response(
        &h,
        &ApiResponse::Metadata(MetadataResponse::default()),
        &mut out,
    )
    .expect("enc");
    let other = RequestHeader {
        correlation_id: 8,
        ..h.clone()
    };
    assert!(decode_response(&other, body_of(out.clone())).is_err());
    assert!(decode_response(&h, body_of(out)).is_ok());
}

#[test]
fn frame_prefix() {
    use weir_wire::frame::{frame_len, FRAME_BYTES_MAX};
    assert_eq!(
        frame_len(100i32.to_be_bytes(), FRAME_BYTES_MAX).expect("ok"),
        100
    );
    assert!(frame_len((-1i32).to_be_bytes(), FRAME_BYTES_MAX).is_err());
}

// Goal: ElectLeaders v0 (no top-level error field) still tells the client about a
// top-level error. Method: encode a NOT_CONTROLLER response with one NONE and one failed
// partition at v0 and v1, decode, and compare.
#[test]
fn elect_leaders_v0_folds_the_top_level_error_into_partitions() {
    let partition = |partition, error| cluster::ElectLeadersPartitionResult {
        partition,
        error,
        error_message: None,
    };
    let response = cluster::ElectLeadersResponse {
        throttle_time_ms: 0,
        error: ErrorCode::NOT_CONTROLLER,
        results: vec![cluster::ElectLeadersTopicResult {
            topic: "t".into(),
            partitions: vec![
                partition(0, ErrorCode::NONE),
                partition(1, ErrorCode::ELECTION_NOT_NEEDED),
            ],
        }],
    };
    let round_trip = |v| {
        let h = header(api_key::ELECT_LEADERS, v);
        let mut out = BytesMut::new();
        encode_response(&h, &ApiResponse::ElectLeaders(response.clone()), &mut out)
            .expect("encode");
        match decode_response(&h, body_of(out)).expect("decode") {
            ApiResponse::ElectLeaders(r) => r,
            other => panic!("{other:?}"),
        }
    };
    let v0 = round_trip(0);
    assert_eq!(v0.error, ErrorCode::NONE, "v0 has no top-level error");
    let errors: Vec<_> = v0.results[0].partitions.iter().map(|p| p.error).collect();
    assert_eq!(
        errors,
        vec![ErrorCode::NOT_CONTROLLER, ErrorCode::ELECTION_NOT_NEEDED]
    );
    assert_eq!(round_trip(1), response, "v1 carries it as is");
}

// Goal: a client request a version cannot express is refused, not silently changed.
// Method: an unclean ElectLeaders at v0 and a "keep the replication factor" reassignment at
// v0 fail to encode and leave the buffer empty; the same requests encode at v1.
#[test]
fn requests_a_version_cannot_express_are_refused() {
    let elect = ApiRequest::ElectLeaders(cluster::ElectLeadersRequest {
        election_type: cluster::election_type::UNCLEAN,
        topic_partitions: None,
        timeout_ms: 1000,
    });
    let reassign =
        ApiRequest::AlterPartitionReassignments(cluster::AlterPartitionReassignmentsRequest {
            timeout_ms: 1000,
            allow_replication_factor_change: false,
            topics: Vec::new(),
        });
    for (key, request) in [
        (api_key::ELECT_LEADERS, elect),
        (api_key::ALTER_PARTITION_REASSIGNMENTS, reassign),
    ] {
        let mut out = BytesMut::new();
        let refused = encode_request(&header(key, 0), &request, &mut out);
        assert!(matches!(refused, Err(WireError::Encode(_))), "key {key}");
        assert!(out.is_empty(), "key {key}");
        encode_request(&header(key, 1), &request, &mut out).expect("v1 encodes");
    }
}

// Goal: whole-request error answers of the cluster APIs carry the error where the client
// reads it. Method: encode_error_response for the three APIs with a top-level error code at
// their highest version, then decode; and the domain error_response helpers echo every item.
#[test]
fn cluster_api_error_answers() {
    let e = ErrorCode::NOT_CONTROLLER;
    for key in [
        api_key::ELECT_LEADERS,
        api_key::ALTER_PARTITION_REASSIGNMENTS,
        api_key::LIST_PARTITION_REASSIGNMENTS,
        api_key::DESCRIBE_QUORUM,
        api_key::ADD_RAFT_VOTER,
        api_key::REMOVE_RAFT_VOTER,
    ] {
        let (_, max) = supported_range(key).expect("served");
        let h = header(key, max);
        let mut out = BytesMut::new();
        assert!(encode_error_response(&h, e, &mut out).expect("enc"));
        let got = match decode_response(&h, body_of(out)).expect("decode") {
            ApiResponse::ElectLeaders(r) => r.error,
            ApiResponse::AlterPartitionReassignments(r) => r.error,
            ApiResponse::ListPartitionReassignments(r) => r.error,
            ApiResponse::DescribeQuorum(r) => r.error,
            ApiResponse::AddRaftVoter(r) | ApiResponse::RemoveRaftVoter(r) => r.error,
            other => panic!("{other:?}"),
        };
        assert_eq!(got, e, "key {key}");
    }
    let request = cluster::OffsetForLeaderEpochRequest {
        replica_id: cluster::replica_id::CONSUMER,
        topics: vec![cluster::OffsetForLeaderTopic {
            topic: "t".into(),
            partitions: vec![cluster::OffsetForLeaderPartition {
                partition: 4,
                current_leader_epoch: 1,
                leader_epoch: 1,
            }],
        }],
    };
    let answer = request.error_response(ErrorCode::NOT_LEADER_OR_FOLLOWER);
    assert_eq!(
        answer.topics[0].partitions,
        vec![cluster::EpochEndOffset {
            error: ErrorCode::NOT_LEADER_OR_FOLLOWER,
            partition: 4,
            leader_epoch: cluster::UNDEFINED_EPOCH,
            end_offset: cluster::UNDEFINED_EPOCH_OFFSET,
        }]
    );
    let request = cluster::IncrementalAlterConfigsRequest {
        resources: vec![cluster::IncrementalAlterConfigsResource {
            resource_type: resource_type::TOPIC,
            resource_name: "t".into(),
            configs: Vec::new(),
        }],
        validate_only: false,
    };
    let answer = request.error_response(ErrorCode::INVALID_CONFIG, Some("no"));
    assert_eq!(answer.results.len(), 1);
    assert_eq!(answer.results[0].error, ErrorCode::INVALID_CONFIG);
    assert_eq!(answer.results[0].resource_name, "t");
    assert_eq!(answer.results[0].error_message.as_deref(), Some("no"));
}

// Goal: acks is parsed once, at decode: 0, 1 and -1 become `Acks`, any other value is
// refused with Kafka's INVALID_REQUIRED_ACKS for every partition and never reaches the core.
// Method: encode a two-topic Produce, patch its acks field in the bytes, decode, and check
// the ready answer encodes and decodes back (client direction) unchanged.
#[test]
fn produce_acks_are_parsed_at_decode() {
    let partitions = |indexes: &[i32]| {
        indexes
            .iter()
            .map(|&partition| ProducePartition {
                partition,
                records: None,
            })
            .collect()
    };
    let request = ApiRequest::Produce(ProduceRequest {
        transactional_id: None,
        acks: Acks::All,
        timeout_ms: 1000,
        topics: vec![
            ProduceTopic {
                topic: TopicRef::Name("a".into()),
                partitions: partitions(&[0, 2]),
            },
            ProduceTopic {
                topic: TopicRef::Name("b".into()),
                partitions: partitions(&[1]),
            },
        ],
    });
    // (version, offset of acks in the frame): prefix 4 + header 11 (+1 tag section at v9)
    // + null transactional id (2 bytes at v3, 1 compact byte at v9).
    for (v, at) in [(3, 17), (9, 17)] {
        let h = header(0, v);
        let mut out = BytesMut::new();
        encode_request(&h, &request, &mut out).expect("encode");
        assert_eq!(&out[at..at + 2], &(-1i16).to_be_bytes(), "v{v} acks");
        for (wire, acks) in [(0i16, Acks::None), (1, Acks::Leader), (-1, Acks::All)] {
            let mut frame = out.clone();
            frame[at..at + 2].copy_from_slice(&wire.to_be_bytes());
            match decode_request(body_of(frame)).expect("decode") {
                (_, Decoded::Api(ApiRequest::Produce(p))) => assert_eq!(p.acks, acks),
                other => panic!("v{v} acks={wire}: {other:?}"),
            }
        }
        for wire in [2i16, -2, i16::MIN] {
            let mut frame = out.clone();
            frame[at..at + 2].copy_from_slice(&wire.to_be_bytes());
            let (h, decoded) = decode_request(body_of(frame)).expect("decode");
            let Decoded::Rejected { response, .. } = decoded else {
                panic!("v{v} acks={wire}: {decoded:?}");
            };
            let ApiResponse::Produce(produce) = &response else {
                panic!("{response:?}");
            };
            let refused: Vec<(i32, ErrorCode, i64)> = produce
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter())
                .map(|p| (p.partition, p.error, p.base_offset))
                .collect();
            let invalid = ErrorCode::INVALID_REQUIRED_ACKS;
            assert_eq!(
                refused,
                vec![(0, invalid, -1), (2, invalid, -1), (1, invalid, -1)]
            );
            let mut answer = BytesMut::new();
            encode_response(&h, &response, &mut answer).expect("encode answer");
            let decoded = decode_response(&h, body_of(answer)).expect("decode answer");
            let mut expected = produce.clone();
            if v < 8 {
                // error_message is a v8+ field.
                for p in expected
                    .topics
                    .iter_mut()
                    .flat_map(|t| t.partitions.iter_mut())
                {
                    p.error_message = None;
                }
            }
            assert_eq!(decoded, ApiResponse::Produce(expected), "v{v} acks={wire}");
        }
    }
}

// Goal: a refused DescribeLogDirs reads as the error where the version has a top-level
// error (v3+) and as an empty answer before it (v1-2, which Kafka answers the same way);
// volume sizes a version lacks decode as unknown. Method: encode_error_response at every
// served version and decode it; encode a success at v3 and read its volume sizes.
#[test]
fn describe_log_dirs_error_answer_and_volume_sizes() {
    let key = api_key::DESCRIBE_LOG_DIRS;
    let (min, max) = supported_range(key).expect("served");
    assert_eq!((min, max), (1, 4));
    for v in min..=max {
        let h = header(key, v);
        let mut out = BytesMut::new();
        assert!(
            encode_error_response(&h, ErrorCode::CLUSTER_AUTHORIZATION_FAILED, &mut out)
                .expect("enc")
        );
        let ApiResponse::DescribeLogDirs(got) = decode_response(&h, body_of(out)).expect("dec")
        else {
            panic!("v{v}: not a DescribeLogDirs answer");
        };
        let expected = if v >= 3 {
            ErrorCode::CLUSTER_AUTHORIZATION_FAILED
        } else {
            ErrorCode::NONE
        };
        assert_eq!(got.error, expected, "v{v}");
        assert!(got.results.is_empty(), "v{v}");
    }
    let answer = log_dirs::DescribeLogDirsResponse {
        throttle_time_ms: 0,
        error: ErrorCode::NONE,
        results: vec![log_dirs::LogDirResult {
            error: ErrorCode::NONE,
            log_dir: "/var/lib/weir".into(),
            topics: Vec::new(),
            total_bytes: 1 << 40,
            usable_bytes: 1 << 39,
        }],
    };
    let h = header(key, 3);
    let mut out = BytesMut::new();
    encode_response(&h, &ApiResponse::DescribeLogDirs(answer), &mut out).expect("enc");
    let ApiResponse::DescribeLogDirs(got) = decode_response(&h, body_of(out)).expect("dec") else {
        panic!("not a DescribeLogDirs answer");
    };
    assert_eq!(got.results[0].total_bytes, log_dirs::VOLUME_BYTES_UNKNOWN);
    assert_eq!(got.results[0].usable_bytes, log_dirs::VOLUME_BYTES_UNKNOWN);
}
