//! The one table of every API weir-wire speaks: key, served versions, guard schemas and, for
//! APIs with domain types, the kafka_protocol structs and the five conversions. The `apis!`
//! macro turns it into the public `api_key` constants and [`SUPPORTED_APIS`] (the
//! ApiVersions table, in row order) and into every per-API dispatch `codec/mod.rs` needs, so
//! adding an API is one row here plus its field mapping in a `convert*.rs` file.
//!
//! Invariants:
//! - [`SUPPORTED_APIS`] lists the rows in table order; that order is on the wire (the
//!   ApiVersions response), so rows are appended, never reordered (`tests/it/codec_pins.rs`).
//! - The domain-side matches (`api_key_of`, `encode_response`, `encode_request`) have no
//!   catch-all arm: an `ApiRequest`/`ApiResponse` variant without a row does not compile.
//! - Each conversion is an expression over the names the row binds, evaluated inside a
//!   function returning `Result<_, WireError>`, so it may use `?`; `decode_request` returns
//!   `Result<Decoded, WireError>` and may `return Ok(Decoded::Rejected { .. })`.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages as k;

use super::convert as c;
use super::convert_acl as acl;
use super::convert_cluster as cl;
use super::convert_consumer_group as cg;
use super::convert_features as fe;
use super::convert_group as g;
use super::convert_log_dirs as ld;
use super::convert_sasl as sa;
use super::convert_txn as t;
use super::schema::*;
use super::schema_acl::*;
use super::schema_cluster::*;
use super::schema_consumer_group::*;
use super::schema_features::*;
use super::schema_log_dirs::*;
use super::schema_quorum::*;
use super::schema_sasl::*;
use super::schema_txn::*;
use super::{decode, encode, guard, unserved, Decoded};
use crate::domain::{ApiRequest, ApiResponse};
use crate::error::ErrorCode;
use crate::WireError;

/// Row syntax (one per API, in ApiVersions order):
///
/// ```text
/// KEY_NAME = key, min..=max, REQUEST_SCHEMA, RESPONSE_SCHEMA => Variant {
///     kafka: KafkaRequest, KafkaResponse;
///     decode_request(message, version, client_id) = <domain request>;    // server
///     encode_response(domain, version) = <kafka response>;             // server
///     encode_request(domain, version) = <kafka request>;               // client
///     decode_response(message, version) = <domain response>;             // client
///     error_response(error_code_i16, version) = <kafka response>;      // server, no items
/// };
/// ```
///
/// A row without `=> Variant { .. }` (ApiVersions) is advertised and guarded but answered
/// by hand in `codec/mod.rs`.
macro_rules! apis {
    ($(
        $key:ident = $n:literal, $min:literal..=$max:literal, $sreq:ident, $sresp:ident
        $(=> $variant:ident {
            kafka: $kreq:ty, $kresp:ty;
            decode_request($dq_k:pat, $dq_v:pat, $dq_c:pat) = $dq:expr;
            encode_response($er_d:pat, $er_v:pat) = $er:expr;
            encode_request($eq_d:pat, $eq_v:pat) = $eq:expr;
            decode_response($dr_k:pat, $dr_v:pat) = $dr:expr;
            error_response($ee_e:pat, $ee_v:pat) = $ee:expr;
        })?;
    )*) => {
        /// API keys, named for readability.
        pub mod api_key {
            $(
                #[doc = concat!("Kafka API key ", stringify!($n), ".")]
                pub const $key: i16 = $n;
            )*
        }

        /// The ApiVersions table: (api_key, min_version, max_version), one entry per row of
        /// `codec/apis.rs` in row order, each range within what kafka-protocol 0.18 encodes.
        pub const SUPPORTED_APIS: &[(i16, i16, i16)] = &[$((api_key::$key, $min, $max),)*];

        /// The Kafka API key of a request.
        pub fn api_key_of(request: &ApiRequest) -> i16 {
            match request {
                $($(ApiRequest::$variant(_) => api_key::$key,)?)*
            }
        }

        /// The Kafka API key of a response.
        pub fn api_key_of_response(response: &ApiResponse) -> i16 {
            match response {
                $($(ApiResponse::$variant(_) => api_key::$key,)?)*
            }
        }

        /// The guard schema of an API's request or response.
        pub(super) fn schema_of(key: i16, request: bool) -> Option<&'static guard::Message> {
            match key {
                $(api_key::$key => Some(if request { &$sreq } else { &$sresp }),)*
                _ => None,
            }
        }

        /// Server direction: a served API's body (after the header) to its domain request.
        pub(super) fn decode_request(
            key: i16,
            body: Bytes,
            v: i16,
            client_id: Option<&str>,
        ) -> Result<Decoded, WireError> {
            let request = match key {
                $($(api_key::$key => {
                    let $dq_k: $kreq = decode(body, v, stringify!($variant))?;
                    let ($dq_v, $dq_c) = (v, client_id);
                    ApiRequest::$variant($dq)
                })?)*
                _ => {
                    let reason = format!("api key {key} has no decoder");
                    return Ok(Decoded::Unsupported { reason });
                }
            };
            Ok(Decoded::Api(request))
        }

        /// Server direction: a domain response's body at `v`.
        pub(super) fn encode_response(
            response: &ApiResponse,
            out: &mut BytesMut,
            v: i16,
        ) -> Result<(), WireError> {
            match response {
                $($(ApiResponse::$variant(domain) => {
                    let ($er_d, $er_v) = (domain, v);
                    let message: $kresp = $er;
                    encode(&message, out, v)
                })?)*
            }
        }

        /// Server direction: the response of `key` at `v` with `error` in its top-level
        /// error fields (per-item responses get no items: the request's are not known here).
        pub(super) fn encode_error(
            key: i16,
            error: ErrorCode,
            out: &mut BytesMut,
            v: i16,
        ) -> Result<(), WireError> {
            match key {
                $($(api_key::$key => {
                    let ($ee_e, $ee_v) = (error.0, v);
                    let message: $kresp = $ee;
                    encode(&message, out, v)
                })?)*
                key => unserved::encode_unserved(key, error, out, v),
            }
        }

        /// Client direction: a domain request's body at `v`.
        pub(super) fn encode_request(
            request: &ApiRequest,
            out: &mut BytesMut,
            v: i16,
        ) -> Result<(), WireError> {
            match request {
                $($(ApiRequest::$variant(domain) => {
                    let ($eq_d, $eq_v) = (domain, v);
                    let message: $kreq = $eq;
                    encode(&message, out, v)
                })?)*
            }
        }

        /// Client direction: a response body to its domain response.
        pub(super) fn decode_response(
            key: i16,
            body: Bytes,
            v: i16,
        ) -> Result<ApiResponse, WireError> {
            Ok(match key {
                $($(api_key::$key => {
                    let what = concat!(stringify!($variant), " response");
                    let $dr_k: $kresp = decode(body, v, what)?;
                    let $dr_v = v;
                    ApiResponse::$variant($dr)
                })?)*
                _ => {
                    return Err(WireError::Unsupported(format!(
                        "no response decoder for api key {key}"
                    )))
                }
            })
        }
    };
}

apis! {
    // Advertised from v0 (librdkafka <= 2.0 turns compression off otherwise, KAFKA-18659)
    // but v0-2 decode as LegacyProduce (PRODUCE_MIN_SERVED); stops at v11 (v12 announces
    // KIP-890 server-side transaction verification, v13 topic ids).
    PRODUCE = 0, 0..=11, PRODUCE_REQUEST, PRODUCE_RESPONSE => Produce {
        kafka: k::ProduceRequest, k::ProduceResponse;
        decode_request(msg, v, _) = match c::produce_req_to_domain(msg, v) {
            Ok(request) => request,
            Err(rejected) => return Ok(*rejected),
        };
        encode_response(d, v) = c::produce_resp_from_domain(d, v)?;
        encode_request(d, v) = c::produce_req_from_domain(d, v)?;
        decode_response(msg, v) = c::produce_resp_to_domain(msg, v);
        error_response(_, _) = k::ProduceResponse::default();
    };
    FETCH = 1, 4..=16, FETCH_REQUEST, FETCH_RESPONSE => Fetch {
        kafka: k::FetchRequest, k::FetchResponse;
        decode_request(msg, v, _) = c::fetch_req_to_domain(msg, v);
        encode_response(d, v) = c::fetch_resp_from_domain(d, v)?;
        encode_request(d, v) = c::fetch_req_from_domain(d, v)?;
        decode_response(msg, v) = c::fetch_resp_to_domain(msg, v);
        error_response(e, v) = {
            let mut r = k::FetchResponse::default();
            if v >= 7 {
                r.error_code = e;
            }
            r
        };
    };
    LIST_OFFSETS = 2, 1..=10, LIST_OFFSETS_REQUEST, LIST_OFFSETS_RESPONSE => ListOffsets {
        kafka: k::ListOffsetsRequest, k::ListOffsetsResponse;
        decode_request(msg, _, _) = c::list_offsets_req_to_domain(msg);
        encode_response(d, v) = c::list_offsets_resp_from_domain(d, v)?;
        encode_request(d, v) = c::list_offsets_req_from_domain(d, v);
        decode_response(msg, _) = c::list_offsets_resp_to_domain(msg);
        error_response(_, _) = k::ListOffsetsResponse::default();
    };
    METADATA = 3, 0..=13, METADATA_REQUEST, METADATA_RESPONSE => Metadata {
        kafka: k::MetadataRequest, k::MetadataResponse;
        decode_request(msg, v, _) = c::metadata_req_to_domain(msg, v)?;
        encode_response(d, v) = c::metadata_resp_from_domain(d, v);
        encode_request(d, v) = c::metadata_req_from_domain(d, v)?;
        decode_response(msg, _) = c::metadata_resp_to_domain(msg);
        error_response(e, v) = {
            let mut r = k::MetadataResponse::default();
            if v >= 13 {
                r.error_code = e;
            }
            r
        };
    };
    API_VERSIONS = 18, 0..=4, API_VERSIONS_REQUEST, API_VERSIONS_RESPONSE;
    CREATE_TOPICS = 19, 2..=7, CREATE_TOPICS_REQUEST, CREATE_TOPICS_RESPONSE => CreateTopics {
        kafka: k::CreateTopicsRequest, k::CreateTopicsResponse;
        decode_request(msg, _, _) = c::create_topics_req_to_domain(msg);
        encode_response(d, v) = c::create_topics_resp_from_domain(d, v);
        encode_request(d, _) = c::create_topics_req_from_domain(d);
        decode_response(msg, _) = c::create_topics_resp_to_domain(msg);
        error_response(_, _) = k::CreateTopicsResponse::default();
    };
    DELETE_TOPICS = 20, 1..=6, DELETE_TOPICS_REQUEST, DELETE_TOPICS_RESPONSE => DeleteTopics {
        kafka: k::DeleteTopicsRequest, k::DeleteTopicsResponse;
        decode_request(msg, v, _) = c::delete_topics_req_to_domain(msg, v);
        encode_response(d, v) = c::delete_topics_resp_from_domain(d, v);
        encode_request(d, v) = c::delete_topics_req_from_domain(d, v)?;
        decode_response(msg, _) = c::delete_topics_resp_to_domain(msg);
        error_response(_, _) = k::DeleteTopicsResponse::default();
    };
    DESCRIBE_CONFIGS = 32, 1..=4, DESCRIBE_CONFIGS_REQUEST, DESCRIBE_CONFIGS_RESPONSE
    => DescribeConfigs {
        kafka: k::DescribeConfigsRequest, k::DescribeConfigsResponse;
        decode_request(msg, _, _) = c::describe_configs_req_to_domain(msg);
        encode_response(d, v) = c::describe_configs_resp_from_domain(d, v);
        encode_request(d, v) = c::describe_configs_req_from_domain(d, v);
        decode_response(msg, v) = c::describe_configs_resp_to_domain(msg, v);
        error_response(_, _) = k::DescribeConfigsResponse::default();
    };
    CREATE_PARTITIONS = 37, 0..=3, CREATE_PARTITIONS_REQUEST, CREATE_PARTITIONS_RESPONSE
    => CreatePartitions {
        kafka: k::CreatePartitionsRequest, k::CreatePartitionsResponse;
        decode_request(msg, _, _) = c::create_partitions_req_to_domain(msg);
        encode_response(d, _) = c::create_partitions_resp_from_domain(d);
        encode_request(d, _) = c::create_partitions_req_from_domain(d);
        decode_response(msg, _) = c::create_partitions_resp_to_domain(msg);
        error_response(_, _) = k::CreatePartitionsResponse::default();
    };
    DESCRIBE_CLUSTER = 60, 0..=2, DESCRIBE_CLUSTER_REQUEST, DESCRIBE_CLUSTER_RESPONSE
    => DescribeCluster {
        kafka: k::DescribeClusterRequest, k::DescribeClusterResponse;
        decode_request(msg, _, _) = c::describe_cluster_req_to_domain(msg);
        encode_response(d, v) = c::describe_cluster_resp_from_domain(d, v);
        encode_request(d, v) = c::describe_cluster_req_from_domain(d, v);
        decode_response(msg, _) = c::describe_cluster_resp_to_domain(msg);
        error_response(e, _) = k::DescribeClusterResponse::default().with_error_code(e);
    };
    // v6 (KIP-939 two-phase commit) is beyond kafka-protocol 0.18's request struct.
    INIT_PRODUCER_ID = 22, 0..=5, INIT_PRODUCER_ID_REQUEST, INIT_PRODUCER_ID_RESPONSE
    => InitProducerId {
        kafka: k::InitProducerIdRequest, k::InitProducerIdResponse;
        decode_request(msg, _, _) = c::init_producer_id_req_to_domain(msg);
        encode_response(d, _) = c::init_producer_id_resp_from_domain(d);
        encode_request(d, v) = c::init_producer_id_req_from_domain(d, v);
        decode_response(msg, _) = c::init_producer_id_resp_to_domain(msg);
        error_response(e, _) = k::InitProducerIdResponse::default()
            .with_error_code(e)
            .with_producer_epoch(-1);
    };

    // Transactions. AddPartitionsToTxn stops at v3 (v4+ is the batched broker-to-broker
    // form); EndTxn, TxnOffsetCommit and AddOffsetsToTxn stop before the KIP-890 part 2
    // versions (v5), whose epoch-bump-per-transaction Weir does not do.
    ADD_PARTITIONS_TO_TXN = 24, 0..=3,
        ADD_PARTITIONS_TO_TXN_REQUEST, ADD_PARTITIONS_TO_TXN_RESPONSE => AddPartitionsToTxn {
        kafka: k::AddPartitionsToTxnRequest, k::AddPartitionsToTxnResponse;
        decode_request(msg, _, _) = t::add_partitions_req_to_domain(msg);
        encode_response(d, _) = t::add_partitions_resp_from_domain(d);
        encode_request(d, _) = t::add_partitions_req_from_domain(d);
        decode_response(msg, _) = t::add_partitions_resp_to_domain(msg);
        error_response(_, _) = k::AddPartitionsToTxnResponse::default();
    };
    ADD_OFFSETS_TO_TXN = 25, 0..=3, ADD_OFFSETS_TO_TXN_REQUEST, ADD_OFFSETS_TO_TXN_RESPONSE
    => AddOffsetsToTxn {
        kafka: k::AddOffsetsToTxnRequest, k::AddOffsetsToTxnResponse;
        decode_request(msg, _, _) = t::add_offsets_req_to_domain(msg);
        encode_response(d, _) = t::add_offsets_resp_from_domain(d);
        encode_request(d, _) = t::add_offsets_req_from_domain(d);
        decode_response(msg, _) = t::add_offsets_resp_to_domain(msg);
        error_response(e, _) = k::AddOffsetsToTxnResponse::default().with_error_code(e);
    };
    END_TXN = 26, 0..=4, END_TXN_REQUEST, END_TXN_RESPONSE => EndTxn {
        kafka: k::EndTxnRequest, k::EndTxnResponse;
        decode_request(msg, _, _) = t::end_txn_req_to_domain(msg);
        encode_response(d, v) = t::end_txn_resp_from_domain(d, v);
        encode_request(d, _) = t::end_txn_req_from_domain(d);
        decode_response(msg, _) = t::end_txn_resp_to_domain(msg);
        error_response(e, _) = k::EndTxnResponse::default().with_error_code(e);
    };
    WRITE_TXN_MARKERS = 27, 1..=1, WRITE_TXN_MARKERS_REQUEST, WRITE_TXN_MARKERS_RESPONSE
    => WriteTxnMarkers {
        kafka: k::WriteTxnMarkersRequest, k::WriteTxnMarkersResponse;
        decode_request(msg, _, _) = t::write_markers_req_to_domain(msg);
        encode_response(d, _) = t::write_markers_resp_from_domain(d);
        encode_request(d, _) = t::write_markers_req_from_domain(d);
        decode_response(msg, _) = t::write_markers_resp_to_domain(msg);
        error_response(_, _) = k::WriteTxnMarkersResponse::default();
    };
    TXN_OFFSET_COMMIT = 28, 0..=4, TXN_OFFSET_COMMIT_REQUEST, TXN_OFFSET_COMMIT_RESPONSE
    => TxnOffsetCommit {
        kafka: k::TxnOffsetCommitRequest, k::TxnOffsetCommitResponse;
        decode_request(msg, _, _) = t::txn_offset_commit_req_to_domain(msg);
        encode_response(d, _) = t::txn_offset_commit_resp_from_domain(d);
        encode_request(d, v) = t::txn_offset_commit_req_from_domain(d, v);
        decode_response(msg, _) = t::txn_offset_commit_resp_to_domain(msg);
        error_response(_, _) = k::TxnOffsetCommitResponse::default();
    };
    DESCRIBE_PRODUCERS = 61, 0..=0, DESCRIBE_PRODUCERS_REQUEST, DESCRIBE_PRODUCERS_RESPONSE
    => DescribeProducers {
        kafka: k::DescribeProducersRequest, k::DescribeProducersResponse;
        decode_request(msg, _, _) = t::describe_producers_req_to_domain(msg);
        encode_response(d, _) = t::describe_producers_resp_from_domain(d);
        encode_request(d, _) = t::describe_producers_req_from_domain(d);
        decode_response(msg, _) = t::describe_producers_resp_to_domain(msg);
        error_response(_, _) = k::DescribeProducersResponse::default();
    };
    DESCRIBE_TRANSACTIONS = 65, 0..=0,
        DESCRIBE_TRANSACTIONS_REQUEST, DESCRIBE_TRANSACTIONS_RESPONSE => DescribeTransactions {
        kafka: k::DescribeTransactionsRequest, k::DescribeTransactionsResponse;
        decode_request(msg, _, _) = t::describe_txns_req_to_domain(msg);
        encode_response(d, _) = t::describe_txns_resp_from_domain(d);
        encode_request(d, _) = t::describe_txns_req_from_domain(d);
        decode_response(msg, _) = t::describe_txns_resp_to_domain(msg);
        error_response(_, _) = k::DescribeTransactionsResponse::default();
    };
    LIST_TRANSACTIONS = 66, 0..=1, LIST_TRANSACTIONS_REQUEST, LIST_TRANSACTIONS_RESPONSE
    => ListTransactions {
        kafka: k::ListTransactionsRequest, k::ListTransactionsResponse;
        decode_request(msg, _, _) = t::list_txns_req_to_domain(msg);
        encode_response(d, _) = t::list_txns_resp_from_domain(d);
        encode_request(d, v) = t::list_txns_req_from_domain(d, v);
        decode_response(msg, _) = t::list_txns_resp_to_domain(msg);
        error_response(e, _) = k::ListTransactionsResponse::default().with_error_code(e);
    };

    // Consumer groups (classic protocol).
    OFFSET_COMMIT = 8, 2..=9, OFFSET_COMMIT_REQUEST, OFFSET_COMMIT_RESPONSE => OffsetCommit {
        kafka: k::OffsetCommitRequest, k::OffsetCommitResponse;
        decode_request(msg, _, _) = g::offset_commit_req_to_domain(msg);
        encode_response(d, v) = g::offset_commit_resp_from_domain(d, v);
        encode_request(d, v) = g::offset_commit_req_from_domain(d, v);
        decode_response(msg, _) = g::offset_commit_resp_to_domain(msg);
        error_response(_, _) = k::OffsetCommitResponse::default();
    };
    OFFSET_FETCH = 9, 1..=9, OFFSET_FETCH_REQUEST, OFFSET_FETCH_RESPONSE => OffsetFetch {
        kafka: k::OffsetFetchRequest, k::OffsetFetchResponse;
        decode_request(msg, v, _) = g::offset_fetch_req_to_domain(msg, v);
        encode_response(d, v) = g::offset_fetch_resp_from_domain(d, v)?;
        encode_request(d, v) = g::offset_fetch_req_from_domain(d, v)?;
        decode_response(msg, v) = g::offset_fetch_resp_to_domain(msg, v);
        error_response(e, v) = {
            let mut r = k::OffsetFetchResponse::default();
            if (2..=7).contains(&v) {
                r.error_code = e;
            }
            r
        };
    };
    FIND_COORDINATOR = 10, 0..=6, FIND_COORDINATOR_REQUEST, FIND_COORDINATOR_RESPONSE
    => FindCoordinator {
        kafka: k::FindCoordinatorRequest, k::FindCoordinatorResponse;
        decode_request(msg, v, _) = g::find_coordinator_req_to_domain(msg, v);
        encode_response(d, v) = g::find_coordinator_resp_from_domain(d, v)?;
        encode_request(d, v) = g::find_coordinator_req_from_domain(d, v)?;
        decode_response(msg, v) = g::find_coordinator_resp_to_domain(msg, v);
        error_response(e, v) = {
            let mut r = k::FindCoordinatorResponse::default();
            if v <= 3 {
                r.error_code = e;
                r.node_id = k::BrokerId(-1);
                r.port = -1;
            }
            r
        };
    };
    // JoinGroup takes the header's client id (DescribeGroups reports it per member).
    JOIN_GROUP = 11, 0..=9, JOIN_GROUP_REQUEST, JOIN_GROUP_RESPONSE => JoinGroup {
        kafka: k::JoinGroupRequest, k::JoinGroupResponse;
        decode_request(msg, v, client_id) = g::join_group_req_to_domain(msg, v, client_id);
        encode_response(d, v) = g::join_group_resp_from_domain(d, v);
        encode_request(d, v) = g::join_group_req_from_domain(d, v);
        decode_response(msg, _) = g::join_group_resp_to_domain(msg);
        error_response(e, _) = k::JoinGroupResponse::default().with_error_code(e);
    };
    HEARTBEAT = 12, 0..=4, HEARTBEAT_REQUEST, HEARTBEAT_RESPONSE => Heartbeat {
        kafka: k::HeartbeatRequest, k::HeartbeatResponse;
        decode_request(msg, _, _) = g::heartbeat_req_to_domain(msg);
        encode_response(d, v) = g::heartbeat_resp_from_domain(d, v);
        encode_request(d, v) = g::heartbeat_req_from_domain(d, v);
        decode_response(msg, _) = g::heartbeat_resp_to_domain(msg);
        error_response(e, _) = k::HeartbeatResponse::default().with_error_code(e);
    };
    LEAVE_GROUP = 13, 0..=5, LEAVE_GROUP_REQUEST, LEAVE_GROUP_RESPONSE => LeaveGroup {
        kafka: k::LeaveGroupRequest, k::LeaveGroupResponse;
        decode_request(msg, v, _) = g::leave_group_req_to_domain(msg, v);
        encode_response(d, v) = g::leave_group_resp_from_domain(d, v);
        encode_request(d, v) = g::leave_group_req_from_domain(d, v)?;
        decode_response(msg, _) = g::leave_group_resp_to_domain(msg);
        error_response(e, _) = k::LeaveGroupResponse::default().with_error_code(e);
    };
    SYNC_GROUP = 14, 0..=5, SYNC_GROUP_REQUEST, SYNC_GROUP_RESPONSE => SyncGroup {
        kafka: k::SyncGroupRequest, k::SyncGroupResponse;
        decode_request(msg, _, _) = g::sync_group_req_to_domain(msg);
        encode_response(d, v) = g::sync_group_resp_from_domain(d, v);
        encode_request(d, v) = g::sync_group_req_from_domain(d, v);
        decode_response(msg, _) = g::sync_group_resp_to_domain(msg);
        error_response(e, _) = k::SyncGroupResponse::default().with_error_code(e);
    };
    DESCRIBE_GROUPS = 15, 0..=5, DESCRIBE_GROUPS_REQUEST, DESCRIBE_GROUPS_RESPONSE
    => DescribeGroups {
        kafka: k::DescribeGroupsRequest, k::DescribeGroupsResponse;
        decode_request(msg, _, _) = g::describe_groups_req_to_domain(msg);
        encode_response(d, v) = g::describe_groups_resp_from_domain(d, v);
        encode_request(d, v) = g::describe_groups_req_from_domain(d, v);
        decode_response(msg, _) = g::describe_groups_resp_to_domain(msg);
        error_response(_, _) = k::DescribeGroupsResponse::default();
    };
    LIST_GROUPS = 16, 0..=5, LIST_GROUPS_REQUEST, LIST_GROUPS_RESPONSE => ListGroups {
        kafka: k::ListGroupsRequest, k::ListGroupsResponse;
        decode_request(msg, _, _) = g::list_groups_req_to_domain(msg);
        encode_response(d, v) = g::list_groups_resp_from_domain(d, v);
        encode_request(d, v) = g::list_groups_req_from_domain(d, v);
        decode_response(msg, _) = g::list_groups_resp_to_domain(msg);
        error_response(e, _) = k::ListGroupsResponse::default().with_error_code(e);
    };
    DELETE_GROUPS = 42, 0..=2, DELETE_GROUPS_REQUEST, DELETE_GROUPS_RESPONSE => DeleteGroups {
        kafka: k::DeleteGroupsRequest, k::DeleteGroupsResponse;
        decode_request(msg, _, _) = g::delete_groups_req_to_domain(msg);
        encode_response(d, _) = g::delete_groups_resp_from_domain(d);
        encode_request(d, _) = g::delete_groups_req_from_domain(d);
        decode_response(msg, _) = g::delete_groups_resp_to_domain(msg);
        error_response(_, _) = k::DeleteGroupsResponse::default();
    };
    OFFSET_DELETE = 47, 0..=0, OFFSET_DELETE_REQUEST, OFFSET_DELETE_RESPONSE => OffsetDelete {
        kafka: k::OffsetDeleteRequest, k::OffsetDeleteResponse;
        decode_request(msg, _, _) = g::offset_delete_req_to_domain(msg);
        encode_response(d, _) = g::offset_delete_resp_from_domain(d);
        encode_request(d, _) = g::offset_delete_req_from_domain(d);
        decode_response(msg, _) = g::offset_delete_resp_to_domain(msg);
        error_response(e, _) = k::OffsetDeleteResponse::default().with_error_code(e);
    };

    // KIP-848 consumer groups. Clients use them only when asked to (librdkafka:
    // group.protocol=consumer).
    CONSUMER_GROUP_HEARTBEAT = 68, 0..=1,
        CONSUMER_GROUP_HEARTBEAT_REQUEST, CONSUMER_GROUP_HEARTBEAT_RESPONSE
    => ConsumerGroupHeartbeat {
        kafka: k::ConsumerGroupHeartbeatRequest, k::ConsumerGroupHeartbeatResponse;
        decode_request(msg, _, client_id) = cg::heartbeat_req_to_domain(msg, client_id);
        encode_response(d, _) = cg::heartbeat_resp_from_domain(d);
        encode_request(d, v) = cg::heartbeat_req_from_domain(d, v);
        decode_response(msg, _) = cg::heartbeat_resp_to_domain(msg);
        error_response(e, _) = k::ConsumerGroupHeartbeatResponse::default().with_error_code(e);
    };
    CONSUMER_GROUP_DESCRIBE = 69, 0..=1,
        CONSUMER_GROUP_DESCRIBE_REQUEST, CONSUMER_GROUP_DESCRIBE_RESPONSE
    => ConsumerGroupDescribe {
        kafka: k::ConsumerGroupDescribeRequest, k::ConsumerGroupDescribeResponse;
        decode_request(msg, _, _) = cg::describe_req_to_domain(msg);
        encode_response(d, v) = cg::describe_resp_from_domain(d, v);
        encode_request(d, _) = cg::describe_req_from_domain(d);
        decode_response(msg, _) = cg::describe_resp_to_domain(msg);
        error_response(_, _) = k::ConsumerGroupDescribeResponse::default();
    };

    // Cluster APIs: every version kafka-protocol 0.18 knows (OffsetForLeaderEpoch v0-1
    // were removed in Kafka 4.0, KIP-896). librdkafka >= 2.1 and the Java client validate
    // positions with OffsetForLeaderEpoch once it is advertised.
    OFFSET_FOR_LEADER_EPOCH = 23, 2..=4,
        OFFSET_FOR_LEADER_EPOCH_REQUEST, OFFSET_FOR_LEADER_EPOCH_RESPONSE
    => OffsetForLeaderEpoch {
        kafka: k::OffsetForLeaderEpochRequest, k::OffsetForLeaderEpochResponse;
        decode_request(msg, _, _) = cl::ofle_req_to_domain(msg);
        encode_response(d, _) = cl::ofle_resp_from_domain(d);
        encode_request(d, v) = cl::ofle_req_from_domain(d, v);
        decode_response(msg, _) = cl::ofle_resp_to_domain(msg);
        error_response(_, _) = k::OffsetForLeaderEpochResponse::default();
    };
    ALTER_CONFIGS = 33, 0..=2, ALTER_CONFIGS_REQUEST, ALTER_CONFIGS_RESPONSE => AlterConfigs {
        kafka: k::AlterConfigsRequest, k::AlterConfigsResponse;
        decode_request(msg, _, _) = cl::alter_configs_req_to_domain(msg);
        encode_response(d, _) = cl::alter_configs_resp_from_domain(d);
        encode_request(d, _) = cl::alter_configs_req_from_domain(d);
        decode_response(msg, _) = cl::alter_configs_resp_to_domain(msg);
        error_response(_, _) = k::AlterConfigsResponse::default();
    };
    ELECT_LEADERS = 43, 0..=2, ELECT_LEADERS_REQUEST, ELECT_LEADERS_RESPONSE => ElectLeaders {
        kafka: k::ElectLeadersRequest, k::ElectLeadersResponse;
        decode_request(msg, _, _) = cl::elect_req_to_domain(msg);
        encode_response(d, v) = cl::elect_resp_from_domain(d, v);
        encode_request(d, v) = cl::elect_req_from_domain(d, v)?;
        decode_response(msg, _) = cl::elect_resp_to_domain(msg);
        error_response(e, v) = {
            let mut r = k::ElectLeadersResponse::default();
            if v >= 1 {
                r.error_code = e;
            }
            r
        };
    };
    INCREMENTAL_ALTER_CONFIGS = 44, 0..=1,
        INCREMENTAL_ALTER_CONFIGS_REQUEST, INCREMENTAL_ALTER_CONFIGS_RESPONSE
    => IncrementalAlterConfigs {
        kafka: k::IncrementalAlterConfigsRequest, k::IncrementalAlterConfigsResponse;
        decode_request(msg, _, _) = cl::incr_alter_req_to_domain(msg);
        encode_response(d, _) = cl::incr_alter_resp_from_domain(d);
        encode_request(d, _) = cl::incr_alter_req_from_domain(d);
        decode_response(msg, _) = cl::incr_alter_resp_to_domain(msg);
        error_response(_, _) = k::IncrementalAlterConfigsResponse::default();
    };
    ALTER_PARTITION_REASSIGNMENTS = 45, 0..=1,
        ALTER_PARTITION_REASSIGNMENTS_REQUEST, ALTER_PARTITION_REASSIGNMENTS_RESPONSE
    => AlterPartitionReassignments {
        kafka: k::AlterPartitionReassignmentsRequest, k::AlterPartitionReassignmentsResponse;
        decode_request(msg, _, _) = cl::alter_reassign_req_to_domain(msg);
        encode_response(d, v) = cl::alter_reassign_resp_from_domain(d, v);
        encode_request(d, v) = cl::alter_reassign_req_from_domain(d, v)?;
        decode_response(msg, _) = cl::alter_reassign_resp_to_domain(msg);
        error_response(e, _) =
            k::AlterPartitionReassignmentsResponse::default().with_error_code(e);
    };
    LIST_PARTITION_REASSIGNMENTS = 46, 0..=0,
        LIST_PARTITION_REASSIGNMENTS_REQUEST, LIST_PARTITION_REASSIGNMENTS_RESPONSE
    => ListPartitionReassignments {
        kafka: k::ListPartitionReassignmentsRequest, k::ListPartitionReassignmentsResponse;
        decode_request(msg, _, _) = cl::list_reassign_req_to_domain(msg);
        encode_response(d, _) = cl::list_reassign_resp_from_domain(d);
        encode_request(d, _) = cl::list_reassign_req_from_domain(d);
        decode_response(msg, _) = cl::list_reassign_resp_to_domain(msg);
        error_response(e, _) =
            k::ListPartitionReassignmentsResponse::default().with_error_code(e);
    };
    DESCRIBE_QUORUM = 55, 0..=2, DESCRIBE_QUORUM_REQUEST, DESCRIBE_QUORUM_RESPONSE
    => DescribeQuorum {
        kafka: k::DescribeQuorumRequest, k::DescribeQuorumResponse;
        decode_request(msg, _, _) = cl::describe_quorum_req_to_domain(msg);
        encode_response(d, v) = cl::describe_quorum_resp_from_domain(d, v);
        encode_request(d, _) = cl::describe_quorum_req_from_domain(d);
        decode_response(msg, v) = cl::describe_quorum_resp_to_domain(msg, v);
        error_response(e, _) = k::DescribeQuorumResponse::default().with_error_code(e);
    };
    ADD_RAFT_VOTER = 80, 0..=0, ADD_RAFT_VOTER_REQUEST, ADD_RAFT_VOTER_RESPONSE
    => AddRaftVoter {
        kafka: k::AddRaftVoterRequest, k::AddRaftVoterResponse;
        decode_request(msg, _, _) = cl::add_voter_req_to_domain(msg);
        encode_response(d, _) = cl::add_voter_resp_from_domain(d);
        encode_request(d, _) = cl::add_voter_req_from_domain(d);
        decode_response(msg, _) = cl::add_voter_resp_to_domain(msg);
        error_response(e, _) = k::AddRaftVoterResponse::default().with_error_code(e);
    };
    REMOVE_RAFT_VOTER = 81, 0..=0, REMOVE_RAFT_VOTER_REQUEST, REMOVE_RAFT_VOTER_RESPONSE
    => RemoveRaftVoter {
        kafka: k::RemoveRaftVoterRequest, k::RemoveRaftVoterResponse;
        decode_request(msg, _, _) = cl::remove_voter_req_to_domain(msg);
        encode_response(d, _) = cl::remove_voter_resp_from_domain(d);
        encode_request(d, _) = cl::remove_voter_req_from_domain(d);
        decode_response(msg, _) = cl::remove_voter_resp_to_domain(msg);
        error_response(e, _) = k::RemoveRaftVoterResponse::default().with_error_code(e);
    };

    // Per-broker partition sizes (admin tools, consoles). v5 (KIP-1066's cordoned
    // directories) is beyond kafka-protocol 0.18; v1-2 have no top-level error, so a
    // refusal there is an empty answer, as Kafka's.
    DESCRIBE_LOG_DIRS = 35, 1..=4, DESCRIBE_LOG_DIRS_REQUEST, DESCRIBE_LOG_DIRS_RESPONSE
    => DescribeLogDirs {
        kafka: k::DescribeLogDirsRequest, k::DescribeLogDirsResponse;
        decode_request(msg, _, _) = ld::req_to_domain(msg);
        encode_response(d, v) = ld::resp_from_domain(d, v);
        encode_request(d, _) = ld::req_from_domain(d);
        decode_response(msg, _) = ld::resp_to_domain(msg);
        error_response(e, v) = {
            let mut r = k::DescribeLogDirsResponse::default();
            if v >= 3 {
                r.error_code = e;
            }
            r
        };
    };

    // SASL (answered by the connection's authentication state machine, not the node) and
    // KIP-554's SCRAM credentials (served by the active controller). SaslHandshake v0
    // (raw-frame tokens) decodes, and the connection refuses it.
    SASL_HANDSHAKE = 17, 0..=1, SASL_HANDSHAKE_REQUEST, SASL_HANDSHAKE_RESPONSE => SaslHandshake {
        kafka: k::SaslHandshakeRequest, k::SaslHandshakeResponse;
        decode_request(msg, v, _) = sa::handshake_req_to_domain(msg, v);
        encode_response(d, _) = sa::handshake_resp_from_domain(d);
        encode_request(d, _) = sa::handshake_req_from_domain(d);
        decode_response(msg, _) = sa::handshake_resp_to_domain(msg);
        error_response(e, _) = k::SaslHandshakeResponse::default().with_error_code(e);
    };
    SASL_AUTHENTICATE = 36, 0..=2, SASL_AUTHENTICATE_REQUEST, SASL_AUTHENTICATE_RESPONSE
    => SaslAuthenticate {
        kafka: k::SaslAuthenticateRequest, k::SaslAuthenticateResponse;
        decode_request(msg, _, _) = sa::authenticate_req_to_domain(msg);
        encode_response(d, v) = sa::authenticate_resp_from_domain(d, v);
        encode_request(d, _) = sa::authenticate_req_from_domain(d);
        decode_response(msg, _) = sa::authenticate_resp_to_domain(msg);
        error_response(e, _) = k::SaslAuthenticateResponse::default().with_error_code(e);
    };
    DESCRIBE_USER_SCRAM_CREDENTIALS = 50, 0..=0,
        DESCRIBE_USER_SCRAM_CREDENTIALS_REQUEST, DESCRIBE_USER_SCRAM_CREDENTIALS_RESPONSE
    => DescribeUserScramCredentials {
        kafka: k::DescribeUserScramCredentialsRequest, k::DescribeUserScramCredentialsResponse;
        decode_request(msg, _, _) = sa::describe_req_to_domain(msg);
        encode_response(d, _) = sa::describe_resp_from_domain(d);
        encode_request(d, _) = sa::describe_req_from_domain(d);
        decode_response(msg, _) = sa::describe_resp_to_domain(msg);
        error_response(e, _) =
            k::DescribeUserScramCredentialsResponse::default().with_error_code(e);
    };
    ALTER_USER_SCRAM_CREDENTIALS = 51, 0..=0,
        ALTER_USER_SCRAM_CREDENTIALS_REQUEST, ALTER_USER_SCRAM_CREDENTIALS_RESPONSE
    => AlterUserScramCredentials {
        kafka: k::AlterUserScramCredentialsRequest, k::AlterUserScramCredentialsResponse;
        decode_request(msg, _, _) = sa::alter_req_to_domain(msg);
        encode_response(d, _) = sa::alter_resp_from_domain(d);
        encode_request(d, _) = sa::alter_req_from_domain(d);
        decode_response(msg, _) = sa::alter_resp_to_domain(msg);
        error_response(_, _) = k::AlterUserScramCredentialsResponse::default();
    };

    // Kafka's ACL administration (`kafka-acls.sh`, every AdminClient): v1-3, the versions
    // with a pattern type (Kafka 4.0 serves no other). Describe is answered from the local
    // metadata image; Create and Delete go through the active controller.
    DESCRIBE_ACLS = 29, 1..=3, DESCRIBE_ACLS_REQUEST, DESCRIBE_ACLS_RESPONSE => DescribeAcls {
        kafka: k::DescribeAclsRequest, k::DescribeAclsResponse;
        decode_request(msg, _, _) = acl::describe_req_to_domain(msg);
        encode_response(d, _) = acl::describe_resp_from_domain(d);
        encode_request(d, _) = acl::describe_req_from_domain(d);
        decode_response(msg, _) = acl::describe_resp_to_domain(msg);
        error_response(e, _) = k::DescribeAclsResponse::default().with_error_code(e);
    };
    CREATE_ACLS = 30, 1..=3, CREATE_ACLS_REQUEST, CREATE_ACLS_RESPONSE => CreateAcls {
        kafka: k::CreateAclsRequest, k::CreateAclsResponse;
        decode_request(msg, _, _) = acl::create_req_to_domain(msg);
        encode_response(d, _) = acl::create_resp_from_domain(d);
        encode_request(d, _) = acl::create_req_from_domain(d);
        decode_response(msg, _) = acl::create_resp_to_domain(msg);
        error_response(_, _) = k::CreateAclsResponse::default();
    };
    DELETE_ACLS = 31, 1..=3, DELETE_ACLS_REQUEST, DELETE_ACLS_RESPONSE => DeleteAcls {
        kafka: k::DeleteAclsRequest, k::DeleteAclsResponse;
        decode_request(msg, _, _) = acl::delete_req_to_domain(msg);
        encode_response(d, _) = acl::delete_resp_from_domain(d);
        encode_request(d, _) = acl::delete_req_from_domain(d);
        decode_response(msg, _) = acl::delete_resp_to_domain(msg);
        error_response(_, _) = k::DeleteAclsResponse::default();
    };

    // KIP-584's feature levels (`kafka-features.sh upgrade`, `weir features upgrade`):
    // served by the active controller; the finalized levels are described in ApiVersions.
    UPDATE_FEATURES = 57, 0..=2, UPDATE_FEATURES_REQUEST, UPDATE_FEATURES_RESPONSE
    => UpdateFeatures {
        kafka: k::UpdateFeaturesRequest, k::UpdateFeaturesResponse;
        decode_request(msg, v, _) = fe::req_to_domain(msg, v);
        encode_response(d, v) = fe::resp_from_domain(d, v);
        encode_request(d, v) = fe::req_from_domain(d, v);
        decode_response(msg, _) = fe::resp_to_domain(msg);
        error_response(e, _) = k::UpdateFeaturesResponse::default().with_error_code(e);
    };

    // Kafka's record deletion (`kafka-delete-records.sh`, AdminClient.deleteRecords, Kafka
    // Streams' repartition purges): each partition's leader moves its log start offset.
    DELETE_RECORDS = 21, 0..=2, DELETE_RECORDS_REQUEST, DELETE_RECORDS_RESPONSE
    => DeleteRecords {
        kafka: k::DeleteRecordsRequest, k::DeleteRecordsResponse;
        decode_request(msg, _, _) = c::delete_records_req_to_domain(msg);
        encode_response(d, _) = c::delete_records_resp_from_domain(d);
        encode_request(d, _) = c::delete_records_req_from_domain(d);
        decode_response(msg, _) = c::delete_records_resp_to_domain(msg);
        error_response(_, _) = k::DeleteRecordsResponse::default();
    };
}
