//! Goal: every transaction API request/response survives the wire at every served version,
//! both directions (server decode of what a client encodes, client decode of what the
//! server encodes).
//! Method: one representative value per API, adjusted per version to hold the decode
//! default in the fields that version lacks, then full equality after a round trip.

use bytes::{Bytes, BytesMut};
use weir_wire::codec::{
    api_key, decode_request, decode_response, encode_request, encode_response, Decoded,
    RequestHeader, SUPPORTED_APIS,
};
use weir_wire::domain::txn::*;
use weir_wire::domain::{ApiRequest, ApiResponse};
use weir_wire::error::ErrorCode;

fn topics() -> Vec<TxnTopic> {
    vec![
        TxnTopic {
            name: "orders".into(),
            partitions: vec![0, 2],
        },
        TxnTopic {
            name: "audit".into(),
            partitions: vec![1],
        },
    ]
}

fn results() -> Vec<TxnTopicResult> {
    vec![TxnTopicResult {
        name: "orders".into(),
        partitions: vec![
            TxnPartitionResult {
                partition: 0,
                error: ErrorCode::NONE,
            },
            TxnPartitionResult {
                partition: 2,
                error: ErrorCode::INVALID_TXN_STATE,
            },
        ],
    }]
}

fn request(key: i16, v: i16) -> ApiRequest {
    match key {
        24 => ApiRequest::AddPartitionsToTxn(AddPartitionsToTxnRequest {
            transactional_id: "tid".into(),
            producer_id: 42,
            producer_epoch: 3,
            topics: topics(),
        }),
        25 => ApiRequest::AddOffsetsToTxn(AddOffsetsToTxnRequest {
            transactional_id: "tid".into(),
            producer_id: 42,
            producer_epoch: 3,
            group_id: "g".into(),
        }),
        26 => ApiRequest::EndTxn(EndTxnRequest {
            transactional_id: "tid".into(),
            producer_id: 42,
            producer_epoch: 3,
            committed: true,
        }),
        27 => ApiRequest::WriteTxnMarkers(WriteTxnMarkersRequest {
            markers: vec![WritableTxnMarker {
                producer_id: 42,
                producer_epoch: 3,
                committed: false,
                topics: topics(),
                coordinator_epoch: 7,
            }],
        }),
        28 => ApiRequest::TxnOffsetCommit(TxnOffsetCommitRequest {
            transactional_id: "tid".into(),
            group_id: "g".into(),
            producer_id: 42,
            producer_epoch: 3,
            generation_id: if v >= 3 { 5 } else { -1 },
            member_id: if v >= 3 { "m-1".into() } else { String::new() },
            group_instance_id: if v >= 3 { Some("static".into()) } else { None },
            topics: vec![TxnOffsetCommitTopic {
                name: "orders".into(),
                partitions: vec![TxnOffsetCommitPartition {
                    partition: 1,
                    committed_offset: 99,
                    committed_leader_epoch: if v >= 2 { 4 } else { -1 },
                    committed_metadata: Some("meta".into()),
                }],
            }],
        }),
        61 => ApiRequest::DescribeProducers(DescribeProducersRequest { topics: topics() }),
        65 => ApiRequest::DescribeTransactions(DescribeTransactionsRequest {
            transactional_ids: vec!["a".into(), "b".into()],
        }),
        66 => ApiRequest::ListTransactions(ListTransactionsRequest {
            state_filters: vec!["Ongoing".into()],
            producer_id_filters: vec![42],
            duration_filter_ms: if v >= 1 { 1000 } else { -1 },
        }),
        other => panic!("no request for {other}"),
    }
}

fn response(key: i16, v: i16) -> ApiResponse {
    match key {
        24 => ApiResponse::AddPartitionsToTxn(AddPartitionsToTxnResponse {
            throttle_time_ms: 1,
            results: results(),
        }),
        25 => ApiResponse::AddOffsetsToTxn(AddOffsetsToTxnResponse {
            throttle_time_ms: 1,
            error: ErrorCode::PRODUCER_FENCED,
        }),
        26 => ApiResponse::EndTxn(EndTxnResponse {
            throttle_time_ms: 1,
            error: ErrorCode::NONE,
            producer_id: if v >= 5 { 42 } else { -1 },
            producer_epoch: if v >= 5 { 4 } else { -1 },
        }),
        27 => ApiResponse::WriteTxnMarkers(WriteTxnMarkersResponse {
            markers: vec![WriteTxnMarkersResult {
                producer_id: 42,
                topics: results(),
            }],
        }),
        28 => ApiResponse::TxnOffsetCommit(TxnOffsetCommitResponse {
            throttle_time_ms: 1,
            topics: results(),
        }),
        61 => ApiResponse::DescribeProducers(DescribeProducersResponse {
            throttle_time_ms: 1,
            topics: vec![DescribeProducersTopic {
                name: "orders".into(),
                partitions: vec![DescribeProducersPartition {
                    partition: 0,
                    error: ErrorCode::NONE,
                    error_message: None,
                    producers: vec![ProducerDescription {
                        producer_id: 42,
                        producer_epoch: 3,
                        last_sequence: 10,
                        last_timestamp: 1_700_000_000_000,
                        coordinator_epoch: -1,
                        current_txn_start_offset: 5,
                    }],
                }],
            }],
        }),
        65 => ApiResponse::DescribeTransactions(DescribeTransactionsResponse {
            throttle_time_ms: 1,
            transactions: vec![TransactionDescription {
                error: ErrorCode::NONE,
                transactional_id: "tid".into(),
                state: "Ongoing".into(),
                timeout_ms: 60_000,
                start_time_ms: 1_700_000_000_000,
                producer_id: 42,
                producer_epoch: 3,
                topics: topics(),
            }],
        }),
        66 => ApiResponse::ListTransactions(ListTransactionsResponse {
            throttle_time_ms: 1,
            error: ErrorCode::NONE,
            unknown_state_filters: vec!["Bogus".into()],
            transactions: vec![TransactionListing {
                transactional_id: "tid".into(),
                producer_id: 42,
                state: "Ongoing".into(),
            }],
        }),
        other => panic!("no response for {other}"),
    }
}

fn strip_prefix(out: BytesMut) -> Bytes {
    out.freeze().slice(4..)
}

/// The transaction APIs with their served ranges, from the ApiVersions table.
fn txn_apis() -> Vec<(i16, i16, i16)> {
    let keys = [
        api_key::ADD_PARTITIONS_TO_TXN,
        api_key::ADD_OFFSETS_TO_TXN,
        api_key::END_TXN,
        api_key::WRITE_TXN_MARKERS,
        api_key::TXN_OFFSET_COMMIT,
        api_key::DESCRIBE_PRODUCERS,
        api_key::DESCRIBE_TRANSACTIONS,
        api_key::LIST_TRANSACTIONS,
    ];
    let apis: Vec<_> = SUPPORTED_APIS
        .iter()
        .copied()
        .filter(|e| keys.contains(&e.0))
        .collect();
    assert_eq!(apis.len(), keys.len(), "every transaction API is served");
    apis
}

#[test]
fn every_txn_api_round_trips_at_every_served_version() {
    for &(key, min, max) in &txn_apis() {
        for v in min..=max {
            let header = RequestHeader {
                api_key: key,
                api_version: v,
                correlation_id: 9,
                client_id: Some("rt".into()),
            };
            let sent = request(key, v);
            let mut out = BytesMut::new();
            encode_request(&header, &sent, &mut out).expect("encode request");
            let (got_header, decoded) = decode_request(strip_prefix(out)).expect("decode request");
            assert_eq!(got_header, header, "key {key} v{v}");
            match decoded {
                Decoded::Api(got) => assert_eq!(got, sent, "key {key} v{v} request"),
                other => panic!("key {key} v{v}: {other:?}"),
            }
            let answer = response(key, v);
            let mut out = BytesMut::new();
            encode_response(&header, &answer, &mut out).expect("encode response");
            let got = decode_response(&header, strip_prefix(out)).expect("decode response");
            assert_eq!(got, answer, "key {key} v{v} response");
        }
    }
}
