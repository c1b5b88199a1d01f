//! Request/response codec: Kafka frames <-> domain values at every version in
//! [`SUPPORTED_APIS`], both directions (server: decode requests, encode responses; client:
//! encode requests, decode responses).
//!
//! Invariants:
//! - No input makes this module panic, and no length read from the wire is trusted before the
//!   allocation guard (`guard.rs`) has checked it against the bytes actually present.
//! - Request header: v1 layout is read by hand (key, version, correlation id, nullable
//!   client id), which every API shares, so an unknown API or version still yields a header
//!   to answer. Header v2 (flexible APIs) adds a tagged-field section, skipped.
//! - Response header version follows `ApiKey::response_header_version`, except ApiVersions,
//!   whose response header is always v0 (KIP-511: the client may not know our flexibility).
//! - Topic ids: Fetch v13+ and Produce v13+ carry only `TopicRef::Id`, earlier versions only
//!   `TopicRef::Name`; a response must echo the same kind or encoding fails.

mod convert;
mod convert_cluster;
mod convert_consumer_group;
mod convert_group;
mod convert_txn;
mod guard;
mod legacy;
mod unserved;

pub use legacy::{encode_legacy_produce_rejection, LegacyProduce};
#[rustfmt::skip]
mod schema;
#[rustfmt::skip]
mod schema_cluster;
#[rustfmt::skip]
mod schema_consumer_group;
#[rustfmt::skip]
mod schema_quorum;
#[rustfmt::skip]
mod schema_txn;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    api_versions_response::ApiVersion, ApiKey, ApiVersionsRequest, ApiVersionsResponse,
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, DescribeClusterRequest, DescribeClusterResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, FetchRequest, FetchResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::domain::{ApiRequest, ApiResponse};
use crate::error::ErrorCode;
use crate::WireError;

/// The request header fields the driver needs (header v1/v2; v0 has no client id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// API key.
    pub api_key: i16,
    /// API version.
    pub api_version: i16,
    /// Correlation id, echoed in the response.
    pub correlation_id: i32,
    /// Client id (nullable).
    pub client_id: Option<String>,
}

/// Outcome of decoding a request frame.
#[derive(Debug)]
pub enum Decoded {
    /// An API the core serves, at a supported version.
    Api(ApiRequest),
    /// Answer with [`encode_api_versions`] (any version, KIP-511 fallback).
    ApiVersions,
    /// Produce v0-2: advertised (KAFKA-18659) but answered UNSUPPORTED_VERSION per
    /// partition with [`encode_legacy_produce_rejection`].
    LegacyProduce(LegacyProduce),
    /// Known header, API/version we do not serve.
    Unsupported {
        /// Why, for logs.
        reason: String,
    },
}

/// API keys, named for readability.
pub mod api_key {
    /// Produce.
    pub const PRODUCE: i16 = 0;
    /// Fetch.
    pub const FETCH: i16 = 1;
    /// ListOffsets.
    pub const LIST_OFFSETS: i16 = 2;
    /// Metadata.
    pub const METADATA: i16 = 3;
    /// ApiVersions.
    pub const API_VERSIONS: i16 = 18;
    /// CreateTopics.
    pub const CREATE_TOPICS: i16 = 19;
    /// DeleteTopics.
    pub const DELETE_TOPICS: i16 = 20;
    /// DescribeConfigs.
    pub const DESCRIBE_CONFIGS: i16 = 32;
    /// CreatePartitions.
    pub const CREATE_PARTITIONS: i16 = 37;
    /// DescribeCluster.
    pub const DESCRIBE_CLUSTER: i16 = 60;
    /// InitProducerId.
    pub const INIT_PRODUCER_ID: i16 = 22;
    /// OffsetCommit.
    pub const OFFSET_COMMIT: i16 = 8;
    /// OffsetFetch.
    pub const OFFSET_FETCH: i16 = 9;
    /// FindCoordinator.
    pub const FIND_COORDINATOR: i16 = 10;
    /// JoinGroup.
    pub const JOIN_GROUP: i16 = 11;
    /// Heartbeat.
    pub const HEARTBEAT: i16 = 12;
    /// LeaveGroup.
    pub const LEAVE_GROUP: i16 = 13;
    /// SyncGroup.
    pub const SYNC_GROUP: i16 = 14;
    /// DescribeGroups.
    pub const DESCRIBE_GROUPS: i16 = 15;
    /// ListGroups.
    pub const LIST_GROUPS: i16 = 16;
    /// DeleteGroups.
    pub const DELETE_GROUPS: i16 = 42;
    /// OffsetDelete.
    pub const OFFSET_DELETE: i16 = 47;
    /// ConsumerGroupHeartbeat (KIP-848).
    pub const CONSUMER_GROUP_HEARTBEAT: i16 = 68;
    /// ConsumerGroupDescribe (KIP-848).
    pub const CONSUMER_GROUP_DESCRIBE: i16 = 69;
    /// AddPartitionsToTxn.
    pub const ADD_PARTITIONS_TO_TXN: i16 = 24;
    /// AddOffsetsToTxn.
    pub const ADD_OFFSETS_TO_TXN: i16 = 25;
    /// EndTxn.
    pub const END_TXN: i16 = 26;
    /// WriteTxnMarkers.
    pub const WRITE_TXN_MARKERS: i16 = 27;
    /// TxnOffsetCommit.
    pub const TXN_OFFSET_COMMIT: i16 = 28;
    /// DescribeProducers.
    pub const DESCRIBE_PRODUCERS: i16 = 61;
    /// DescribeTransactions.
    pub const DESCRIBE_TRANSACTIONS: i16 = 65;
    /// ListTransactions.
    pub const LIST_TRANSACTIONS: i16 = 66;
    /// OffsetForLeaderEpoch.
    pub const OFFSET_FOR_LEADER_EPOCH: i16 = 23;
    /// AlterConfigs.
    pub const ALTER_CONFIGS: i16 = 33;
    /// ElectLeaders.
    pub const ELECT_LEADERS: i16 = 43;
    /// IncrementalAlterConfigs.
    pub const INCREMENTAL_ALTER_CONFIGS: i16 = 44;
    /// AlterPartitionReassignments.
    pub const ALTER_PARTITION_REASSIGNMENTS: i16 = 45;
    /// ListPartitionReassignments.
    pub const LIST_PARTITION_REASSIGNMENTS: i16 = 46;
    /// DescribeQuorum (KIP-595, KIP-853).
    pub const DESCRIBE_QUORUM: i16 = 55;
    /// AddRaftVoter (KIP-853).
    pub const ADD_RAFT_VOTER: i16 = 80;
    /// RemoveRaftVoter (KIP-853).
    pub const REMOVE_RAFT_VOTER: i16 = 81;
}

/// The transaction APIs and the versions served, decoded whether or not they are advertised
/// in [`SUPPORTED_APIS`]. AddPartitionsToTxn stops at v3 (v4+ is the batched
/// broker-to-broker form); EndTxn, TxnOffsetCommit and AddOffsetsToTxn stop before the
/// KIP-890 part 2 versions (v5), whose epoch-bump-per-transaction Weir does not do.
pub const TXN_APIS: &[(i16, i16, i16)] = &[
    (api_key::ADD_PARTITIONS_TO_TXN, 0, 3),
    (api_key::ADD_OFFSETS_TO_TXN, 0, 3),
    (api_key::END_TXN, 0, 4),
    (api_key::WRITE_TXN_MARKERS, 1, 1),
    (api_key::TXN_OFFSET_COMMIT, 0, 4),
    (api_key::DESCRIBE_PRODUCERS, 0, 0),
    (api_key::DESCRIBE_TRANSACTIONS, 0, 0),
    (api_key::LIST_TRANSACTIONS, 0, 1),
];

/// The consumer-group APIs (classic protocol) and the versions served. Decoded whether or
/// not they are advertised in [`SUPPORTED_APIS`]: advertising them changes how librdkafka
/// drives every consumer, so they are advertised only once real clients pass the group suite.
pub const GROUP_APIS: &[(i16, i16, i16)] = &[
    (api_key::OFFSET_COMMIT, 2, 9),
    (api_key::OFFSET_FETCH, 1, 9),
    (api_key::FIND_COORDINATOR, 0, 6),
    (api_key::JOIN_GROUP, 0, 9),
    (api_key::HEARTBEAT, 0, 4),
    (api_key::LEAVE_GROUP, 0, 5),
    (api_key::SYNC_GROUP, 0, 5),
    (api_key::DESCRIBE_GROUPS, 0, 5),
    (api_key::LIST_GROUPS, 0, 5),
    (api_key::DELETE_GROUPS, 0, 2),
    (api_key::OFFSET_DELETE, 0, 0),
];

/// The KIP-848 consumer group APIs and the versions served; decoded whether or not they are
/// advertised (librdkafka uses them only with `group.protocol=consumer`).
pub const CONSUMER_GROUP_APIS: &[(i16, i16, i16)] = &[
    (api_key::CONSUMER_GROUP_HEARTBEAT, 0, 1),
    (api_key::CONSUMER_GROUP_DESCRIBE, 0, 1),
];

/// The cluster APIs (leader epochs, elections, reassignments, config changes, the KIP-853
/// controller quorum) and the versions served: every version kafka-protocol 0.18 knows
/// (OffsetForLeaderEpoch v0-1 were removed in Kafka 4.0, KIP-896; AddRaftVoter v1, Kafka
/// 4.1's AckWhenCommitted, is beyond it). Decoded whether or not they are advertised.
pub const CLUSTER_APIS: &[(i16, i16, i16)] = &[
    (api_key::OFFSET_FOR_LEADER_EPOCH, 2, 4),
    (api_key::ALTER_CONFIGS, 0, 2),
    (api_key::ELECT_LEADERS, 0, 2),
    (api_key::INCREMENTAL_ALTER_CONFIGS, 0, 1),
    (api_key::ALTER_PARTITION_REASSIGNMENTS, 0, 1),
    (api_key::LIST_PARTITION_REASSIGNMENTS, 0, 0),
    (api_key::DESCRIBE_QUORUM, 0, 2),
    (api_key::ADD_RAFT_VOTER, 0, 0),
    (api_key::REMOVE_RAFT_VOTER, 0, 0),
];

/// The ApiVersions table: (api_key, min_version, max_version), each range within what
/// kafka-protocol 0.18 can encode. Produce is advertised from v0 (librdkafka <= 2.0 turns
/// compression off otherwise, KAFKA-18659) but v0-2 decode as Unsupported; Produce stops at
/// v11 (v12 announces KIP-890 server-side transaction verification, v13 topic ids).
pub const SUPPORTED_APIS: &[(i16, i16, i16)] = &[
    (api_key::PRODUCE, 0, 11),
    (api_key::FETCH, 4, 16),
    (api_key::LIST_OFFSETS, 1, 10),
    (api_key::METADATA, 0, 13),
    (api_key::API_VERSIONS, 0, 4),
    (api_key::CREATE_TOPICS, 2, 7),
    (api_key::DELETE_TOPICS, 1, 6),
    (api_key::DESCRIBE_CONFIGS, 1, 4),
    (api_key::CREATE_PARTITIONS, 0, 3),
    (api_key::DESCRIBE_CLUSTER, 0, 2),
    // v6 (KIP-939 two-phase commit) is beyond kafka-protocol 0.18's request struct.
    (api_key::INIT_PRODUCER_ID, 0, 5),
    // Transactions: the same ranges as TXN_APIS.
    (api_key::ADD_PARTITIONS_TO_TXN, 0, 3),
    (api_key::ADD_OFFSETS_TO_TXN, 0, 3),
    (api_key::END_TXN, 0, 4),
    (api_key::WRITE_TXN_MARKERS, 1, 1),
    (api_key::TXN_OFFSET_COMMIT, 0, 4),
    (api_key::DESCRIBE_PRODUCERS, 0, 0),
    (api_key::DESCRIBE_TRANSACTIONS, 0, 0),
    (api_key::LIST_TRANSACTIONS, 0, 1),
    // Consumer groups (classic protocol): the same ranges as GROUP_APIS.
    (api_key::OFFSET_COMMIT, 2, 9),
    (api_key::OFFSET_FETCH, 1, 9),
    (api_key::FIND_COORDINATOR, 0, 6),
    (api_key::JOIN_GROUP, 0, 9),
    (api_key::HEARTBEAT, 0, 4),
    (api_key::LEAVE_GROUP, 0, 5),
    (api_key::SYNC_GROUP, 0, 5),
    (api_key::DESCRIBE_GROUPS, 0, 5),
    (api_key::LIST_GROUPS, 0, 5),
    (api_key::DELETE_GROUPS, 0, 2),
    (api_key::OFFSET_DELETE, 0, 0),
    // KIP-848 consumer groups: the same ranges as CONSUMER_GROUP_APIS. Clients use them
    // only when asked to (librdkafka: group.protocol=consumer).
    (api_key::CONSUMER_GROUP_HEARTBEAT, 0, 1),
    (api_key::CONSUMER_GROUP_DESCRIBE, 0, 1),
    // Cluster APIs: the same ranges as CLUSTER_APIS. librdkafka >= 2.1 and the Java client
    // validate positions with OffsetForLeaderEpoch once it is advertised.
    (api_key::OFFSET_FOR_LEADER_EPOCH, 2, 4),
    (api_key::ALTER_CONFIGS, 0, 2),
    (api_key::ELECT_LEADERS, 0, 2),
    (api_key::INCREMENTAL_ALTER_CONFIGS, 0, 1),
    (api_key::ALTER_PARTITION_REASSIGNMENTS, 0, 1),
    (api_key::LIST_PARTITION_REASSIGNMENTS, 0, 0),
    (api_key::DESCRIBE_QUORUM, 0, 2),
    (api_key::ADD_RAFT_VOTER, 0, 0),
    (api_key::REMOVE_RAFT_VOTER, 0, 0),
];

/// Lowest Produce version actually served (v0-2 were removed in Kafka 4.0).
pub const PRODUCE_MIN_SERVED: i16 = 3;

/// Highest ApiVersions version we answer in kind; above it, the KIP-511 v0 fallback.
pub const API_VERSIONS_MAX: i16 = 4;

/// The (min, max) of an API key we serve (advertised or a group API), if any.
pub fn supported_range(api_key: i16) -> Option<(i16, i16)> {
    SUPPORTED_APIS
        .iter()
        .chain(GROUP_APIS)
        .chain(CONSUMER_GROUP_APIS)
        .chain(TXN_APIS)
        .chain(CLUSTER_APIS)
        .find(|e| e.0 == api_key)
        .map(|e| (e.1, e.2))
}

/// The Kafka API key of a request.
pub fn api_key_of(request: &ApiRequest) -> i16 {
    match request {
        ApiRequest::Produce(_) => api_key::PRODUCE,
        ApiRequest::Fetch(_) => api_key::FETCH,
        ApiRequest::ListOffsets(_) => api_key::LIST_OFFSETS,
        ApiRequest::Metadata(_) => api_key::METADATA,
        ApiRequest::CreateTopics(_) => api_key::CREATE_TOPICS,
        ApiRequest::DeleteTopics(_) => api_key::DELETE_TOPICS,
        ApiRequest::DescribeConfigs(_) => api_key::DESCRIBE_CONFIGS,
        ApiRequest::CreatePartitions(_) => api_key::CREATE_PARTITIONS,
        ApiRequest::DescribeCluster(_) => api_key::DESCRIBE_CLUSTER,
        ApiRequest::InitProducerId(_) => api_key::INIT_PRODUCER_ID,
        ApiRequest::OffsetCommit(_) => api_key::OFFSET_COMMIT,
        ApiRequest::OffsetFetch(_) => api_key::OFFSET_FETCH,
        ApiRequest::FindCoordinator(_) => api_key::FIND_COORDINATOR,
        ApiRequest::JoinGroup(_) => api_key::JOIN_GROUP,
        ApiRequest::Heartbeat(_) => api_key::HEARTBEAT,
        ApiRequest::LeaveGroup(_) => api_key::LEAVE_GROUP,
        ApiRequest::SyncGroup(_) => api_key::SYNC_GROUP,
        ApiRequest::DescribeGroups(_) => api_key::DESCRIBE_GROUPS,
        ApiRequest::ListGroups(_) => api_key::LIST_GROUPS,
        ApiRequest::DeleteGroups(_) => api_key::DELETE_GROUPS,
        ApiRequest::OffsetDelete(_) => api_key::OFFSET_DELETE,
        ApiRequest::ConsumerGroupHeartbeat(_) => api_key::CONSUMER_GROUP_HEARTBEAT,
        ApiRequest::ConsumerGroupDescribe(_) => api_key::CONSUMER_GROUP_DESCRIBE,
        ApiRequest::AddPartitionsToTxn(_) => api_key::ADD_PARTITIONS_TO_TXN,
        ApiRequest::AddOffsetsToTxn(_) => api_key::ADD_OFFSETS_TO_TXN,
        ApiRequest::EndTxn(_) => api_key::END_TXN,
        ApiRequest::WriteTxnMarkers(_) => api_key::WRITE_TXN_MARKERS,
        ApiRequest::TxnOffsetCommit(_) => api_key::TXN_OFFSET_COMMIT,
        ApiRequest::DescribeProducers(_) => api_key::DESCRIBE_PRODUCERS,
        ApiRequest::DescribeTransactions(_) => api_key::DESCRIBE_TRANSACTIONS,
        ApiRequest::ListTransactions(_) => api_key::LIST_TRANSACTIONS,
        ApiRequest::OffsetForLeaderEpoch(_) => api_key::OFFSET_FOR_LEADER_EPOCH,
        ApiRequest::ElectLeaders(_) => api_key::ELECT_LEADERS,
        ApiRequest::AlterPartitionReassignments(_) => api_key::ALTER_PARTITION_REASSIGNMENTS,
        ApiRequest::ListPartitionReassignments(_) => api_key::LIST_PARTITION_REASSIGNMENTS,
        ApiRequest::IncrementalAlterConfigs(_) => api_key::INCREMENTAL_ALTER_CONFIGS,
        ApiRequest::AlterConfigs(_) => api_key::ALTER_CONFIGS,
        ApiRequest::DescribeQuorum(_) => api_key::DESCRIBE_QUORUM,
        ApiRequest::AddRaftVoter(_) => api_key::ADD_RAFT_VOTER,
        ApiRequest::RemoveRaftVoter(_) => api_key::REMOVE_RAFT_VOTER,
    }
}

/// The Kafka API key of a response.
pub fn api_key_of_response(response: &ApiResponse) -> i16 {
    match response {
        ApiResponse::Produce(_) => api_key::PRODUCE,
        ApiResponse::Fetch(_) => api_key::FETCH,
        ApiResponse::ListOffsets(_) => api_key::LIST_OFFSETS,
        ApiResponse::Metadata(_) => api_key::METADATA,
        ApiResponse::CreateTopics(_) => api_key::CREATE_TOPICS,
        ApiResponse::DeleteTopics(_) => api_key::DELETE_TOPICS,
        ApiResponse::DescribeConfigs(_) => api_key::DESCRIBE_CONFIGS,
        ApiResponse::CreatePartitions(_) => api_key::CREATE_PARTITIONS,
        ApiResponse::DescribeCluster(_) => api_key::DESCRIBE_CLUSTER,
        ApiResponse::InitProducerId(_) => api_key::INIT_PRODUCER_ID,
        ApiResponse::OffsetCommit(_) => api_key::OFFSET_COMMIT,
        ApiResponse::OffsetFetch(_) => api_key::OFFSET_FETCH,
        ApiResponse::FindCoordinator(_) => api_key::FIND_COORDINATOR,
        ApiResponse::JoinGroup(_) => api_key::JOIN_GROUP,
        ApiResponse::Heartbeat(_) => api_key::HEARTBEAT,
        ApiResponse::LeaveGroup(_) => api_key::LEAVE_GROUP,
        ApiResponse::SyncGroup(_) => api_key::SYNC_GROUP,
        ApiResponse::DescribeGroups(_) => api_key::DESCRIBE_GROUPS,
        ApiResponse::ListGroups(_) => api_key::LIST_GROUPS,
        ApiResponse::DeleteGroups(_) => api_key::DELETE_GROUPS,
        ApiResponse::OffsetDelete(_) => api_key::OFFSET_DELETE,
        ApiResponse::ConsumerGroupHeartbeat(_) => api_key::CONSUMER_GROUP_HEARTBEAT,
        ApiResponse::ConsumerGroupDescribe(_) => api_key::CONSUMER_GROUP_DESCRIBE,
        ApiResponse::AddPartitionsToTxn(_) => api_key::ADD_PARTITIONS_TO_TXN,
        ApiResponse::AddOffsetsToTxn(_) => api_key::ADD_OFFSETS_TO_TXN,
        ApiResponse::EndTxn(_) => api_key::END_TXN,
        ApiResponse::WriteTxnMarkers(_) => api_key::WRITE_TXN_MARKERS,
        ApiResponse::TxnOffsetCommit(_) => api_key::TXN_OFFSET_COMMIT,
        ApiResponse::DescribeProducers(_) => api_key::DESCRIBE_PRODUCERS,
        ApiResponse::DescribeTransactions(_) => api_key::DESCRIBE_TRANSACTIONS,
        ApiResponse::ListTransactions(_) => api_key::LIST_TRANSACTIONS,
        ApiResponse::OffsetForLeaderEpoch(_) => api_key::OFFSET_FOR_LEADER_EPOCH,
        ApiResponse::ElectLeaders(_) => api_key::ELECT_LEADERS,
        ApiResponse::AlterPartitionReassignments(_) => api_key::ALTER_PARTITION_REASSIGNMENTS,
        ApiResponse::ListPartitionReassignments(_) => api_key::LIST_PARTITION_REASSIGNMENTS,
        ApiResponse::IncrementalAlterConfigs(_) => api_key::INCREMENTAL_ALTER_CONFIGS,
        ApiResponse::AlterConfigs(_) => api_key::ALTER_CONFIGS,
        ApiResponse::DescribeQuorum(_) => api_key::DESCRIBE_QUORUM,
        ApiResponse::AddRaftVoter(_) => api_key::ADD_RAFT_VOTER,
        ApiResponse::RemoveRaftVoter(_) => api_key::REMOVE_RAFT_VOTER,
    }
}

// ---------------------------------------------------------------------------------------
// Plumbing

fn malformed(what: &str, e: impl std::fmt::Display) -> WireError {
    WireError::Malformed(format!("{what}: {e:#}"))
}

fn kafka_api(api_key: i16) -> Result<ApiKey, WireError> {
    ApiKey::try_from(api_key).map_err(|()| WireError::Unsupported(format!("api key {api_key}")))
}

/// Appends a length-prefixed frame written by `body`; on error `out` is left as it was.
fn write_frame(
    out: &mut BytesMut,
    body: impl FnOnce(&mut BytesMut) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let start = out.len();
    out.put_i32(0);
    let result = body(out).and_then(|()| {
        let len = out.len() - start - 4;
        i32::try_from(len).map_err(|_| WireError::TooLarge {
            len: len as i64,
            max: i32::MAX as usize,
        })
    });
    match result {
        Ok(len) => {
            out[start..start + 4].copy_from_slice(&len.to_be_bytes());
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

fn encode<T: Encodable>(message: &T, out: &mut BytesMut, version: i16) -> Result<(), WireError> {
    message
        .encode(out, version)
        .map_err(|e| WireError::Encode(format!("{e:#}")))
}

fn decode<T: Decodable>(mut body: Bytes, version: i16, what: &str) -> Result<T, WireError> {
    T::decode(&mut body, version).map_err(|e| malformed(what, e))
}

fn schema_of(api_key: i16, request: bool) -> Option<&'static guard::Message> {
    use schema::*;
    Some(match (api_key, request) {
        (api_key::PRODUCE, true) => &PRODUCE_REQUEST,
        (api_key::PRODUCE, false) => &PRODUCE_RESPONSE,
        (api_key::FETCH, true) => &FETCH_REQUEST,
        (api_key::FETCH, false) => &FETCH_RESPONSE,
        (api_key::LIST_OFFSETS, true) => &LIST_OFFSETS_REQUEST,
        (api_key::LIST_OFFSETS, false) => &LIST_OFFSETS_RESPONSE,
        (api_key::METADATA, true) => &METADATA_REQUEST,
        (api_key::METADATA, false) => &METADATA_RESPONSE,
        (api_key::API_VERSIONS, true) => &API_VERSIONS_REQUEST,
        (api_key::API_VERSIONS, false) => &API_VERSIONS_RESPONSE,
        (api_key::CREATE_TOPICS, true) => &CREATE_TOPICS_REQUEST,
        (api_key::CREATE_TOPICS, false) => &CREATE_TOPICS_RESPONSE,
        (api_key::DELETE_TOPICS, true) => &DELETE_TOPICS_REQUEST,
        (api_key::DELETE_TOPICS, false) => &DELETE_TOPICS_RESPONSE,
        (api_key::DESCRIBE_CONFIGS, true) => &DESCRIBE_CONFIGS_REQUEST,
        (api_key::DESCRIBE_CONFIGS, false) => &DESCRIBE_CONFIGS_RESPONSE,
        (api_key::CREATE_PARTITIONS, true) => &CREATE_PARTITIONS_REQUEST,
        (api_key::CREATE_PARTITIONS, false) => &CREATE_PARTITIONS_RESPONSE,
        (api_key::DESCRIBE_CLUSTER, true) => &DESCRIBE_CLUSTER_REQUEST,
        (api_key::DESCRIBE_CLUSTER, false) => &DESCRIBE_CLUSTER_RESPONSE,
        (api_key::INIT_PRODUCER_ID, true) => &INIT_PRODUCER_ID_REQUEST,
        (api_key::INIT_PRODUCER_ID, false) => &INIT_PRODUCER_ID_RESPONSE,
        (api_key::OFFSET_COMMIT, true) => &OFFSET_COMMIT_REQUEST,
        (api_key::OFFSET_COMMIT, false) => &OFFSET_COMMIT_RESPONSE,
        (api_key::OFFSET_FETCH, true) => &OFFSET_FETCH_REQUEST,
        (api_key::OFFSET_FETCH, false) => &OFFSET_FETCH_RESPONSE,
        (api_key::FIND_COORDINATOR, true) => &FIND_COORDINATOR_REQUEST,
        (api_key::FIND_COORDINATOR, false) => &FIND_COORDINATOR_RESPONSE,
        (api_key::JOIN_GROUP, true) => &JOIN_GROUP_REQUEST,
        (api_key::JOIN_GROUP, false) => &JOIN_GROUP_RESPONSE,
        (api_key::HEARTBEAT, true) => &HEARTBEAT_REQUEST,
        (api_key::HEARTBEAT, false) => &HEARTBEAT_RESPONSE,
        (api_key::LEAVE_GROUP, true) => &LEAVE_GROUP_REQUEST,
        (api_key::LEAVE_GROUP, false) => &LEAVE_GROUP_RESPONSE,
        (api_key::SYNC_GROUP, true) => &SYNC_GROUP_REQUEST,
        (api_key::SYNC_GROUP, false) => &SYNC_GROUP_RESPONSE,
        (api_key::DESCRIBE_GROUPS, true) => &DESCRIBE_GROUPS_REQUEST,
        (api_key::DESCRIBE_GROUPS, false) => &DESCRIBE_GROUPS_RESPONSE,
        (api_key::LIST_GROUPS, true) => &LIST_GROUPS_REQUEST,
        (api_key::LIST_GROUPS, false) => &LIST_GROUPS_RESPONSE,
        (api_key::DELETE_GROUPS, true) => &DELETE_GROUPS_REQUEST,
        (api_key::DELETE_GROUPS, false) => &DELETE_GROUPS_RESPONSE,
        (api_key::OFFSET_DELETE, true) => &OFFSET_DELETE_REQUEST,
        (api_key::OFFSET_DELETE, false) => &OFFSET_DELETE_RESPONSE,
        (api_key::CONSUMER_GROUP_HEARTBEAT, true) => {
            &schema_consumer_group::CONSUMER_GROUP_HEARTBEAT_REQUEST
        }
        (api_key::CONSUMER_GROUP_HEARTBEAT, false) => {
            &schema_consumer_group::CONSUMER_GROUP_HEARTBEAT_RESPONSE
        }
        (api_key::CONSUMER_GROUP_DESCRIBE, true) => {
            &schema_consumer_group::CONSUMER_GROUP_DESCRIBE_REQUEST
        }
        (api_key::CONSUMER_GROUP_DESCRIBE, false) => {
            &schema_consumer_group::CONSUMER_GROUP_DESCRIBE_RESPONSE
        }
        (key, request) if convert_txn::is_txn_api(key) => {
            return convert_txn::schema_of(key, request)
        }
        (key, request) if convert_cluster::is_cluster_api(key) => {
            return convert_cluster::schema_of(key, request)
        }
        _ => return None,
    })
}

/// Runs the allocation guard over a body before kafka_protocol sees it.
fn guard(api_key: i16, request: bool, version: i16, body: &[u8]) -> Result<(), WireError> {
    match schema_of(api_key, request) {
        Some(message) => guard::check(message, version, body),
        None => Err(WireError::Unsupported(format!(
            "no schema for api key {api_key}"
        ))),
    }
}

/// Reads the v1 layout shared by every request header; returns it and the bytes consumed.
fn read_header(frame: &[u8]) -> Result<(RequestHeader, usize), WireError> {
    let mut buf = frame;
    if buf.remaining() < 10 {
        return Err(WireError::Truncated);
    }
    let api_key = buf.get_i16();
    let api_version = buf.get_i16();
    let correlation_id = buf.get_i32();
    let len = buf.get_i16();
    let client_id = if len < 0 {
        None
    } else {
        let len = len as usize;
        if buf.remaining() < len {
            return Err(WireError::Truncated);
        }
        // Kafka requires UTF-8; a lossy copy keeps logging possible for odd clients.
        let id = String::from_utf8_lossy(&buf[..len]).into_owned();
        buf.advance(len);
        Some(id)
    };
    let consumed = frame.len() - buf.remaining();
    Ok((
        RequestHeader {
            api_key,
            api_version,
            correlation_id,
            client_id,
        },
        consumed,
    ))
}

// ---------------------------------------------------------------------------------------
// Server direction

/// Decodes a request frame (bytes after the length prefix). Err only when even the header is
/// unreadable or the body is malformed (then the driver logs and closes the connection).
pub fn decode_request(frame: Bytes) -> Result<(RequestHeader, Decoded), WireError> {
    let (header, mut pos) = read_header(&frame)?;
    let (key, v) = (header.api_key, header.api_version);
    if key == api_key::API_VERSIONS {
        // Any version: too new ones get the KIP-511 fallback, so the body is not read.
        return Ok((header, Decoded::ApiVersions));
    }
    let Some((min, max)) = supported_range(key) else {
        let reason = match ApiKey::try_from(key) {
            Ok(api) => format!("{api:?} (key {key}) is not served"),
            Err(()) => format!("unknown api key {key}"),
        };
        return Ok((header, Decoded::Unsupported { reason }));
    };
    if v < min || v > max {
        let reason = format!("api key {key} v{v} outside supported {min}-{max}");
        return Ok((header, Decoded::Unsupported { reason }));
    }
    if key == api_key::PRODUCE && v < PRODUCE_MIN_SERVED {
        // Removed in Kafka 4.0 but advertised (KAFKA-18659); answered per partition.
        let legacy = legacy::decode_body(frame.slice(pos..))?;
        return Ok((header, Decoded::LegacyProduce(legacy)));
    }
    let api = kafka_api(key)?;
    if api.request_header_version(v) >= 2 {
        pos += guard::skip_tagged_fields(&frame[pos..])?;
    }
    let body = frame.slice(pos..);
    guard(key, true, v, &body)?;
    let request = match key {
        api_key::PRODUCE => ApiRequest::Produce(convert::produce_req_to_domain(
            decode::<ProduceRequest>(body, v, "Produce")?,
            v,
        )),
        api_key::FETCH => ApiRequest::Fetch(convert::fetch_req_to_domain(
            decode::<FetchRequest>(body, v, "Fetch")?,
            v,
        )),
        api_key::LIST_OFFSETS => {
            ApiRequest::ListOffsets(convert::list_offsets_req_to_domain(decode::<
                ListOffsetsRequest,
            >(
                body,
                v,
                "ListOffsets",
            )?))
        }
        api_key::METADATA => ApiRequest::Metadata(convert::metadata_req_to_domain(
            decode::<MetadataRequest>(body, v, "Metadata")?,
            v,
        )?),
        api_key::CREATE_TOPICS => {
            ApiRequest::CreateTopics(convert::create_topics_req_to_domain(decode::<
                CreateTopicsRequest,
            >(
                body,
                v,
                "CreateTopics",
            )?))
        }
        api_key::DELETE_TOPICS => ApiRequest::DeleteTopics(convert::delete_topics_req_to_domain(
            decode::<DeleteTopicsRequest>(body, v, "DeleteTopics")?,
            v,
        )),
        api_key::DESCRIBE_CONFIGS => {
            ApiRequest::DescribeConfigs(convert::describe_configs_req_to_domain(decode::<
                DescribeConfigsRequest,
            >(
                body,
                v,
                "DescribeConfigs",
            )?))
        }
        api_key::CREATE_PARTITIONS => {
            ApiRequest::CreatePartitions(convert::create_partitions_req_to_domain(decode::<
                CreatePartitionsRequest,
            >(
                body,
                v,
                "CreatePartitions",
            )?))
        }
        api_key::DESCRIBE_CLUSTER => {
            ApiRequest::DescribeCluster(convert::describe_cluster_req_to_domain(decode::<
                DescribeClusterRequest,
            >(
                body,
                v,
                "DescribeCluster",
            )?))
        }
        api_key::INIT_PRODUCER_ID => {
            ApiRequest::InitProducerId(convert::init_producer_id_req_to_domain(decode::<
                kafka_protocol::messages::InitProducerIdRequest,
            >(
                body,
                v,
                "InitProducerId",
            )?))
        }
        key if convert_txn::is_txn_api(key) => convert_txn::decode_request(key, body, v)?,
        key if convert_cluster::is_cluster_api(key) => {
            convert_cluster::decode_request(key, body, v)?
        }
        key if is_group_api(key) => {
            convert_group_decode_request(key, body, v, header.client_id.as_deref())?
        }
        _ => {
            let reason = format!("api key {key} has no decoder");
            return Ok((header, Decoded::Unsupported { reason }));
        }
    };
    Ok((header, Decoded::Api(request)))
}

fn write_response_header(header: &RequestHeader, out: &mut BytesMut) -> Result<(), WireError> {
    let api = kafka_api(header.api_key)?;
    let hv = if header.api_key == api_key::API_VERSIONS {
        0
    } else {
        api.response_header_version(header.api_version)
    };
    encode(
        &ResponseHeader::default().with_correlation_id(header.correlation_id),
        out,
        hv,
    )
}

/// Writes length prefix + response header (flexible-aware) + body at `header.api_version`.
/// Fetch partitions must carry `FetchRecords::Bytes` or `::Empty` and ListOffsets partitions
/// no pending lookup; otherwise (or on an API/response mismatch) it is an error and `out` is
/// unchanged.
pub fn encode_response(
    header: &RequestHeader,
    response: &ApiResponse,
    out: &mut BytesMut,
) -> Result<(), WireError> {
    let key = api_key_of_response(response);
    if key != header.api_key {
        return Err(WireError::Encode(format!(
            "response for api key {key} to a request with api key {}",
            header.api_key
        )));
    }
    let v = header.api_version;
    write_frame(out, |out| {
        write_response_header(header, out)?;
        match response {
            ApiResponse::Produce(r) => encode(&convert::produce_resp_from_domain(r, v)?, out, v),
            ApiResponse::Fetch(r) => encode(&convert::fetch_resp_from_domain(r, v)?, out, v),
            ApiResponse::ListOffsets(r) => {
                encode(&convert::list_offsets_resp_from_domain(r, v)?, out, v)
            }
            ApiResponse::Metadata(r) => encode(&convert::metadata_resp_from_domain(r, v), out, v),
            ApiResponse::CreateTopics(r) => {
                encode(&convert::create_topics_resp_from_domain(r, v), out, v)
            }
            ApiResponse::DeleteTopics(r) => {
                encode(&convert::delete_topics_resp_from_domain(r, v), out, v)
            }
            ApiResponse::DescribeConfigs(r) => {
                encode(&convert::describe_configs_resp_from_domain(r, v), out, v)
            }
            ApiResponse::CreatePartitions(r) => {
                encode(&convert::create_partitions_resp_from_domain(r), out, v)
            }
            ApiResponse::DescribeCluster(r) => {
                encode(&convert::describe_cluster_resp_from_domain(r, v), out, v)
            }
            ApiResponse::InitProducerId(r) => {
                encode(&convert::init_producer_id_resp_from_domain(r), out, v)
            }
            r if convert_txn::is_txn_api(api_key_of_response(r)) => {
                convert_txn::encode_response(r, out, v)
            }
            r if convert_cluster::is_cluster_api(api_key_of_response(r)) => {
                convert_cluster::encode_response(r, out, v)
            }
            r => encode_group_response(r, out, v),
        }
    })
}

fn api_versions_body(error: ErrorCode) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(error.0)
        .with_api_keys(
            SUPPORTED_APIS
                .iter()
                .map(|&(k, min, max)| {
                    ApiVersion::default()
                        .with_api_key(k)
                        .with_min_version(min)
                        .with_max_version(max)
                })
                .collect(),
        )
}

fn encode_api_versions_with(
    header: &RequestHeader,
    error: ErrorCode,
    out: &mut BytesMut,
) -> Result<(), WireError> {
    let requested = header.api_version;
    // KIP-511: a client newer than us gets a v0 body (which every version can parse) with
    // UNSUPPORTED_VERSION and our table, and retries at our max.
    let (version, error) = if (0..=API_VERSIONS_MAX).contains(&requested) {
        (requested, error)
    } else {
        (0, ErrorCode::UNSUPPORTED_VERSION)
    };
    write_frame(out, |out| {
        encode(
            &ResponseHeader::default().with_correlation_id(header.correlation_id),
            out,
            0,
        )?;
        encode(&api_versions_body(error), out, version)
    })
}

/// ApiVersions response: error 35 + v0-format body when the requested version is above our
/// max (KIP-511); response header always v0.
pub fn encode_api_versions(header: &RequestHeader, out: &mut BytesMut) -> Result<(), WireError> {
    encode_api_versions_with(header, ErrorCode::NONE, out)
}

/// Best-effort error response of `header.api_key`'s type at `header.api_version` with `error`
/// in its top-level error fields (a header-only request has no items to echo). `Ok(false)`
/// when it cannot be encoded (unknown API, a version kafka-protocol lacks, Produce v0-2):
/// the driver then logs and closes.
pub fn encode_error_response(
    header: &RequestHeader,
    error: ErrorCode,
    out: &mut BytesMut,
) -> Result<bool, WireError> {
    let key = header.api_key;
    let v = header.api_version;
    if key == api_key::API_VERSIONS {
        encode_api_versions_with(header, error, out)?;
        return Ok(true);
    }
    let Ok(api) = ApiKey::try_from(key) else {
        return Ok(false);
    };
    let range = api.valid_versions();
    if v < range.min || v > range.max {
        return Ok(false);
    }
    let result = write_frame(out, |out| {
        write_response_header(header, out)?;
        match key {
            api_key::PRODUCE => encode(&ProduceResponse::default(), out, v),
            api_key::FETCH => {
                let mut r = FetchResponse::default();
                if v >= 7 {
                    r.error_code = error.0;
                }
                encode(&r, out, v)
            }
            api_key::LIST_OFFSETS => encode(&ListOffsetsResponse::default(), out, v),
            api_key::METADATA => {
                let mut r = MetadataResponse::default();
                if v >= 13 {
                    r.error_code = error.0;
                }
                encode(&r, out, v)
            }
            api_key::CREATE_TOPICS => encode(&CreateTopicsResponse::default(), out, v),
            api_key::DELETE_TOPICS => encode(&DeleteTopicsResponse::default(), out, v),
            api_key::DESCRIBE_CONFIGS => encode(&DescribeConfigsResponse::default(), out, v),
            api_key::CREATE_PARTITIONS => encode(&CreatePartitionsResponse::default(), out, v),
            api_key::DESCRIBE_CLUSTER => encode(
                &DescribeClusterResponse::default().with_error_code(error.0),
                out,
                v,
            ),
            api_key::INIT_PRODUCER_ID => encode(
                &kafka_protocol::messages::InitProducerIdResponse::default()
                    .with_error_code(error.0)
                    .with_producer_epoch(-1),
                out,
                v,
            ),
            key if convert_txn::is_txn_api(key) => convert_txn::encode_error(key, error, out, v),
            key if convert_cluster::is_cluster_api(key) => {
                convert_cluster::encode_error(key, error, out, v)
            }
            key if is_group_api(key) => encode_group_error(key, error, out, v),
            key => unserved::encode_unserved(key, error, out, v),
        }
    });
    match result {
        Ok(()) => Ok(true),
        Err(WireError::Unsupported(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------
// Client direction

fn write_request_header(header: &RequestHeader, out: &mut BytesMut) -> Result<(), WireError> {
    let api = kafka_api(header.api_key)?;
    let hv = api.request_header_version(header.api_version);
    let h = kafka_protocol::messages::RequestHeader::default()
        .with_request_api_key(header.api_key)
        .with_request_api_version(header.api_version)
        .with_correlation_id(header.correlation_id)
        .with_client_id(header.client_id.clone().map(StrBytes::from_string));
    encode(&h, out, hv)
}

/// Client direction: encodes `request` with its length prefix and header at
/// `header.api_version` (`header.api_key` must match the request).
pub fn encode_request(
    header: &RequestHeader,
    request: &ApiRequest,
    out: &mut BytesMut,
) -> Result<(), WireError> {
    let key = api_key_of(request);
    if key != header.api_key {
        return Err(WireError::Encode(format!(
            "request of api key {key} with a header for api key {}",
            header.api_key
        )));
    }
    let v = header.api_version;
    write_frame(out, |out| {
        write_request_header(header, out)?;
        match request {
            ApiRequest::Produce(r) => encode(&convert::produce_req_from_domain(r, v)?, out, v),
            ApiRequest::Fetch(r) => encode(&convert::fetch_req_from_domain(r, v)?, out, v),
            ApiRequest::ListOffsets(r) => {
                encode(&convert::list_offsets_req_from_domain(r, v), out, v)
            }
            ApiRequest::Metadata(r) => encode(&convert::metadata_req_from_domain(r, v)?, out, v),
            ApiRequest::CreateTopics(r) => {
                encode(&convert::create_topics_req_from_domain(r), out, v)
            }
            ApiRequest::DeleteTopics(r) => {
                encode(&convert::delete_topics_req_from_domain(r, v)?, out, v)
            }
            ApiRequest::DescribeConfigs(r) => {
                encode(&convert::describe_configs_req_from_domain(r, v), out, v)
            }
            ApiRequest::CreatePartitions(r) => {
                encode(&convert::create_partitions_req_from_domain(r), out, v)
            }
            ApiRequest::DescribeCluster(r) => {
                encode(&convert::describe_cluster_req_from_domain(r, v), out, v)
            }
            ApiRequest::InitProducerId(r) => {
                encode(&convert::init_producer_id_req_from_domain(r, v), out, v)
            }
            r if convert_txn::is_txn_api(api_key_of(r)) => convert_txn::encode_request(r, out, v),
            r if convert_cluster::is_cluster_api(api_key_of(r)) => {
                convert_cluster::encode_request(r, out, v)
            }
            r => encode_group_request(r, out, v),
        }
    })
}

/// Client direction: an ApiVersions request (v3+ carries client software name "weir" and
/// this crate's version) with its length prefix.
pub fn encode_api_versions_request(
    header: &RequestHeader,
    out: &mut BytesMut,
) -> Result<(), WireError> {
    if header.api_key != api_key::API_VERSIONS {
        return Err(WireError::Encode(format!(
            "ApiVersions request with a header for api key {}",
            header.api_key
        )));
    }
    let mut body = ApiVersionsRequest::default();
    if header.api_version >= 3 {
        body.client_software_name = StrBytes::from_static_str("weir");
        body.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
    }
    write_frame(out, |out| {
        write_request_header(header, out)?;
        encode(&body, out, header.api_version)
    })
}

/// Checks the response header's correlation id; returns the body.
fn response_body(header: &RequestHeader, frame: Bytes) -> Result<Bytes, WireError> {
    let api = kafka_api(header.api_key)?;
    let hv = if header.api_key == api_key::API_VERSIONS {
        0
    } else {
        api.response_header_version(header.api_version)
    };
    if frame.len() < 4 {
        return Err(WireError::Truncated);
    }
    let correlation_id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
    if correlation_id != header.correlation_id {
        return Err(WireError::Malformed(format!(
            "correlation id {correlation_id}, expected {}",
            header.correlation_id
        )));
    }
    let mut pos = 4;
    if hv >= 1 {
        pos += guard::skip_tagged_fields(&frame[pos..])?;
    }
    Ok(frame.slice(pos..))
}

/// Client direction: decodes a response frame (without length prefix) to the request
/// described by `header`; checks the correlation id.
pub fn decode_response(header: &RequestHeader, frame: Bytes) -> Result<ApiResponse, WireError> {
    let key = header.api_key;
    let v = header.api_version;
    let body = response_body(header, frame)?;
    guard(key, false, v, &body)?;
    Ok(match key {
        api_key::PRODUCE => ApiResponse::Produce(convert::produce_resp_to_domain(
            decode::<ProduceResponse>(body, v, "Produce response")?,
            v,
        )),
        api_key::FETCH => ApiResponse::Fetch(convert::fetch_resp_to_domain(
            decode::<FetchResponse>(body, v, "Fetch response")?,
            v,
        )),
        api_key::LIST_OFFSETS => {
            ApiResponse::ListOffsets(convert::list_offsets_resp_to_domain(decode::<
                ListOffsetsResponse,
            >(
                body,
                v,
                "ListOffsets response",
            )?))
        }
        api_key::METADATA => {
            ApiResponse::Metadata(convert::metadata_resp_to_domain(
                decode::<MetadataResponse>(body, v, "Metadata response")?,
            ))
        }
        api_key::CREATE_TOPICS => {
            ApiResponse::CreateTopics(convert::create_topics_resp_to_domain(decode::<
                CreateTopicsResponse,
            >(
                body,
                v,
                "CreateTopics response",
            )?))
        }
        api_key::DELETE_TOPICS => {
            ApiResponse::DeleteTopics(convert::delete_topics_resp_to_domain(decode::<
                DeleteTopicsResponse,
            >(
                body,
                v,
                "DeleteTopics response",
            )?))
        }
        api_key::DESCRIBE_CONFIGS => {
            ApiResponse::DescribeConfigs(convert::describe_configs_resp_to_domain(
                decode::<DescribeConfigsResponse>(body, v, "DescribeConfigs response")?,
                v,
            ))
        }
        api_key::CREATE_PARTITIONS => {
            ApiResponse::CreatePartitions(convert::create_partitions_resp_to_domain(decode::<
                CreatePartitionsResponse,
            >(
                body,
                v,
                "CreatePartitions response",
            )?))
        }
        api_key::DESCRIBE_CLUSTER => {
            ApiResponse::DescribeCluster(convert::describe_cluster_resp_to_domain(decode::<
                DescribeClusterResponse,
            >(
                body,
                v,
                "DescribeCluster response",
            )?))
        }
        api_key::INIT_PRODUCER_ID => {
            ApiResponse::InitProducerId(convert::init_producer_id_resp_to_domain(decode::<
                kafka_protocol::messages::InitProducerIdResponse,
            >(
                body,
                v,
                "InitProducerId response",
            )?))
        }
        key if convert_txn::is_txn_api(key) => convert_txn::decode_response(key, body, v)?,
        key if convert_cluster::is_cluster_api(key) => {
            convert_cluster::decode_response(key, body, v)?
        }
        key if is_group_api(key) => decode_group_response(key, body, v)?,
        _ => {
            return Err(WireError::Unsupported(format!(
                "no response decoder for api key {key}"
            )))
        }
    })
}

/// A decoded ApiVersions response, error included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersionsAnswer {
    /// NONE, or UNSUPPORTED_VERSION when the broker fell back to a v0 body (KIP-511).
    pub error: ErrorCode,
    /// (api_key, min_version, max_version) per API the broker serves.
    pub api_keys: Vec<(i16, i16, i16)>,
}

/// Client direction: decodes an ApiVersions response including its error code. A non-zero
/// error means the body is in v0 format (KIP-511), so it is decoded as v0.
pub fn decode_api_versions_answer(
    header: &RequestHeader,
    frame: Bytes,
) -> Result<ApiVersionsAnswer, WireError> {
    let body = response_body(header, frame)?;
    if body.len() < 2 {
        return Err(WireError::Truncated);
    }
    // error_code is the first field at every version.
    let error = ErrorCode(i16::from_be_bytes([body[0], body[1]]));
    let v = if error.is_ok() { header.api_version } else { 0 };
    guard(api_key::API_VERSIONS, false, v, &body)?;
    let r = decode::<ApiVersionsResponse>(body, v, "ApiVersions response")?;
    Ok(ApiVersionsAnswer {
        error,
        api_keys: r
            .api_keys
            .iter()
            .map(|a| (a.api_key, a.min_version, a.max_version))
            .collect(),
    })
}

/// Client direction: decodes an ApiVersions response into (key, min, max); a broker error
/// (e.g. UNSUPPORTED_VERSION: retry at a lower version, see [`decode_api_versions_answer`])
/// is `WireError::Unsupported`.
pub fn decode_api_versions_response(
    header: &RequestHeader,
    frame: Bytes,
) -> Result<Vec<(i16, i16, i16)>, WireError> {
    let answer = decode_api_versions_answer(header, frame)?;
    if !answer.error.is_ok() {
        let max = answer
            .api_keys
            .iter()
            .find(|a| a.0 == api_key::API_VERSIONS)
            .map_or(-1, |a| a.2);
        return Err(WireError::Unsupported(format!(
            "ApiVersions v{} answered {}; broker's ApiVersions max is v{max}",
            header.api_version, answer.error
        )));
    }
    Ok(answer.api_keys)
}

// ---------------------------------------------------------------------------------------
// Consumer-group APIs (classic protocol)

fn is_group_api(api_key: i16) -> bool {
    GROUP_APIS
        .iter()
        .chain(CONSUMER_GROUP_APIS)
        .any(|e| e.0 == api_key)
}

/// Server direction: a group API's body to its domain request. JoinGroup also takes the
/// header's client id (DescribeGroups reports it per member).
fn convert_group_decode_request(
    key: i16,
    body: Bytes,
    v: i16,
    client_id: Option<&str>,
) -> Result<ApiRequest, WireError> {
    use kafka_protocol::messages as k;
    Ok(match key {
        api_key::OFFSET_COMMIT => {
            ApiRequest::OffsetCommit(convert_group::offset_commit_req_to_domain(decode::<
                k::OffsetCommitRequest,
            >(
                body,
                v,
                "OffsetCommit",
            )?))
        }
        api_key::OFFSET_FETCH => {
            ApiRequest::OffsetFetch(convert_group::offset_fetch_req_to_domain(
                decode::<k::OffsetFetchRequest>(body, v, "OffsetFetch")?,
                v,
            ))
        }
        api_key::FIND_COORDINATOR => {
            ApiRequest::FindCoordinator(convert_group::find_coordinator_req_to_domain(
                decode::<k::FindCoordinatorRequest>(body, v, "FindCoordinator")?,
                v,
            ))
        }
        api_key::JOIN_GROUP => ApiRequest::JoinGroup(convert_group::join_group_req_to_domain(
            decode::<k::JoinGroupRequest>(body, v, "JoinGroup")?,
            v,
            client_id,
        )),
        api_key::HEARTBEAT => {
            ApiRequest::Heartbeat(convert_group::heartbeat_req_to_domain(decode::<
                k::HeartbeatRequest,
            >(
                body,
                v,
                "Heartbeat",
            )?))
        }
        api_key::LEAVE_GROUP => ApiRequest::LeaveGroup(convert_group::leave_group_req_to_domain(
            decode::<k::LeaveGroupRequest>(body, v, "LeaveGroup")?,
            v,
        )),
        api_key::SYNC_GROUP => {
            ApiRequest::SyncGroup(convert_group::sync_group_req_to_domain(decode::<
                k::SyncGroupRequest,
            >(
                body,
                v,
                "SyncGroup",
            )?))
        }
        api_key::DESCRIBE_GROUPS => {
            ApiRequest::DescribeGroups(convert_group::describe_groups_req_to_domain(decode::<
                k::DescribeGroupsRequest,
            >(
                body,
                v,
                "DescribeGroups",
            )?))
        }
        api_key::LIST_GROUPS => {
            ApiRequest::ListGroups(convert_group::list_groups_req_to_domain(decode::<
                k::ListGroupsRequest,
            >(
                body,
                v,
                "ListGroups",
            )?))
        }
        api_key::DELETE_GROUPS => {
            ApiRequest::DeleteGroups(convert_group::delete_groups_req_to_domain(decode::<
                k::DeleteGroupsRequest,
            >(
                body,
                v,
                "DeleteGroups",
            )?))
        }
        api_key::OFFSET_DELETE => {
            ApiRequest::OffsetDelete(convert_group::offset_delete_req_to_domain(decode::<
                k::OffsetDeleteRequest,
            >(
                body,
                v,
                "OffsetDelete",
            )?))
        }
        api_key::CONSUMER_GROUP_HEARTBEAT => {
            ApiRequest::ConsumerGroupHeartbeat(convert_consumer_group::heartbeat_req_to_domain(
                decode::<k::ConsumerGroupHeartbeatRequest>(body, v, "ConsumerGroupHeartbeat")?,
                client_id,
            ))
        }
        api_key::CONSUMER_GROUP_DESCRIBE => {
            ApiRequest::ConsumerGroupDescribe(convert_consumer_group::describe_req_to_domain(
                decode::<k::ConsumerGroupDescribeRequest>(body, v, "ConsumerGroupDescribe")?,
            ))
        }
        _ => return Err(WireError::Unsupported(format!("api key {key}"))),
    })
}

fn encode_group_response(
    response: &ApiResponse,
    out: &mut BytesMut,
    v: i16,
) -> Result<(), WireError> {
    use convert_group as c;
    match response {
        ApiResponse::OffsetCommit(r) => encode(&c::offset_commit_resp_from_domain(r, v), out, v),
        ApiResponse::OffsetFetch(r) => encode(&c::offset_fetch_resp_from_domain(r, v)?, out, v),
        ApiResponse::FindCoordinator(r) => {
            encode(&c::find_coordinator_resp_from_domain(r, v)?, out, v)
        }
        ApiResponse::JoinGroup(r) => encode(&c::join_group_resp_from_domain(r, v), out, v),
        ApiResponse::Heartbeat(r) => encode(&c::heartbeat_resp_from_domain(r, v), out, v),
        ApiResponse::LeaveGroup(r) => encode(&c::leave_group_resp_from_domain(r, v), out, v),
        ApiResponse::SyncGroup(r) => encode(&c::sync_group_resp_from_domain(r, v), out, v),
        ApiResponse::DescribeGroups(r) => {
            encode(&c::describe_groups_resp_from_domain(r, v), out, v)
        }
        ApiResponse::ListGroups(r) => encode(&c::list_groups_resp_from_domain(r, v), out, v),
        ApiResponse::DeleteGroups(r) => encode(&c::delete_groups_resp_from_domain(r), out, v),
        ApiResponse::OffsetDelete(r) => encode(&c::offset_delete_resp_from_domain(r), out, v),
        ApiResponse::ConsumerGroupHeartbeat(r) => encode(
            &convert_consumer_group::heartbeat_resp_from_domain(r),
            out,
            v,
        ),
        ApiResponse::ConsumerGroupDescribe(r) => encode(
            &convert_consumer_group::describe_resp_from_domain(r, v),
            out,
            v,
        ),
        other => Err(WireError::Encode(format!(
            "no encoder for response of api key {}",
            api_key_of_response(other)
        ))),
    }
}

fn encode_group_request(request: &ApiRequest, out: &mut BytesMut, v: i16) -> Result<(), WireError> {
    use convert_group as c;
    match request {
        ApiRequest::OffsetCommit(r) => encode(&c::offset_commit_req_from_domain(r, v), out, v),
        ApiRequest::OffsetFetch(r) => encode(&c::offset_fetch_req_from_domain(r, v)?, out, v),
        ApiRequest::FindCoordinator(r) => {
            encode(&c::find_coordinator_req_from_domain(r, v)?, out, v)
        }
        ApiRequest::JoinGroup(r) => encode(&c::join_group_req_from_domain(r, v), out, v),
        ApiRequest::Heartbeat(r) => encode(&c::heartbeat_req_from_domain(r, v), out, v),
        ApiRequest::LeaveGroup(r) => encode(&c::leave_group_req_from_domain(r, v)?, out, v),
        ApiRequest::SyncGroup(r) => encode(&c::sync_group_req_from_domain(r, v), out, v),
        ApiRequest::DescribeGroups(r) => encode(&c::describe_groups_req_from_domain(r, v), out, v),
        ApiRequest::ListGroups(r) => encode(&c::list_groups_req_from_domain(r, v), out, v),
        ApiRequest::DeleteGroups(r) => encode(&c::delete_groups_req_from_domain(r), out, v),
        ApiRequest::OffsetDelete(r) => encode(&c::offset_delete_req_from_domain(r), out, v),
        ApiRequest::ConsumerGroupHeartbeat(r) => encode(
            &convert_consumer_group::heartbeat_req_from_domain(r, v),
            out,
            v,
        ),
        ApiRequest::ConsumerGroupDescribe(r) => {
            encode(&convert_consumer_group::describe_req_from_domain(r), out, v)
        }
        other => Err(WireError::Encode(format!(
            "no encoder for request of api key {}",
            api_key_of(other)
        ))),
    }
}

/// A group API's response with `error` at the top level (or in its only entry).
fn encode_group_error(
    key: i16,
    error: ErrorCode,
    out: &mut BytesMut,
    v: i16,
) -> Result<(), WireError> {
    use kafka_protocol::messages as k;
    let e = error.0;
    match key {
        api_key::OFFSET_COMMIT => encode(&k::OffsetCommitResponse::default(), out, v),
        api_key::OFFSET_FETCH => {
            let mut r = k::OffsetFetchResponse::default();
            if (2..=7).contains(&v) {
                r.error_code = e;
            }
            encode(&r, out, v)
        }
        api_key::FIND_COORDINATOR => {
            let mut r = k::FindCoordinatorResponse::default();
            if v <= 3 {
                r.error_code = e;
                r.node_id = kafka_protocol::messages::BrokerId(-1);
                r.port = -1;
            }
            encode(&r, out, v)
        }
        api_key::JOIN_GROUP => encode(&k::JoinGroupResponse::default().with_error_code(e), out, v),
        api_key::HEARTBEAT => encode(&k::HeartbeatResponse::default().with_error_code(e), out, v),
        api_key::LEAVE_GROUP => {
            encode(&k::LeaveGroupResponse::default().with_error_code(e), out, v)
        }
        api_key::SYNC_GROUP => encode(&k::SyncGroupResponse::default().with_error_code(e), out, v),
        api_key::DESCRIBE_GROUPS => encode(&k::DescribeGroupsResponse::default(), out, v),
        api_key::LIST_GROUPS => {
            encode(&k::ListGroupsResponse::default().with_error_code(e), out, v)
        }
        api_key::DELETE_GROUPS => encode(&k::DeleteGroupsResponse::default(), out, v),
        api_key::OFFSET_DELETE => encode(
            &k::OffsetDeleteResponse::default().with_error_code(e),
            out,
            v,
        ),
        api_key::CONSUMER_GROUP_HEARTBEAT => encode(
            &k::ConsumerGroupHeartbeatResponse::default().with_error_code(e),
            out,
            v,
        ),
        api_key::CONSUMER_GROUP_DESCRIBE => {
            encode(&k::ConsumerGroupDescribeResponse::default(), out, v)
        }
        _ => Err(WireError::Unsupported(format!(
            "no error response for api key {key}"
        ))),
    }
}

/// Client direction: a group API's response body to its domain response.
fn decode_group_response(key: i16, body: Bytes, v: i16) -> Result<ApiResponse, WireError> {
    use convert_group as c;
    use kafka_protocol::messages as k;
    Ok(match key {
        api_key::OFFSET_COMMIT => {
            ApiResponse::OffsetCommit(c::offset_commit_resp_to_domain(decode::<
                k::OffsetCommitResponse,
            >(
                body,
                v,
                "OffsetCommit response",
            )?))
        }
        api_key::OFFSET_FETCH => ApiResponse::OffsetFetch(c::offset_fetch_resp_to_domain(
            decode::<k::OffsetFetchResponse>(body, v, "OffsetFetch response")?,
            v,
        )),
        api_key::FIND_COORDINATOR => {
            ApiResponse::FindCoordinator(c::find_coordinator_resp_to_domain(
                decode::<k::FindCoordinatorResponse>(body, v, "FindCoordinator response")?,
                v,
            ))
        }
        api_key::JOIN_GROUP => {
            ApiResponse::JoinGroup(c::join_group_resp_to_domain(
                decode::<k::JoinGroupResponse>(body, v, "JoinGroup response")?,
            ))
        }
        api_key::HEARTBEAT => {
            ApiResponse::Heartbeat(c::heartbeat_resp_to_domain(decode::<k::HeartbeatResponse>(
                body,
                v,
                "Heartbeat response",
            )?))
        }
        api_key::LEAVE_GROUP => ApiResponse::LeaveGroup(c::leave_group_resp_to_domain(decode::<
            k::LeaveGroupResponse,
        >(
            body,
            v,
            "LeaveGroup response",
        )?)),
        api_key::SYNC_GROUP => {
            ApiResponse::SyncGroup(c::sync_group_resp_to_domain(
                decode::<k::SyncGroupResponse>(body, v, "SyncGroup response")?,
            ))
        }
        api_key::DESCRIBE_GROUPS => {
            ApiResponse::DescribeGroups(c::describe_groups_resp_to_domain(decode::<
                k::DescribeGroupsResponse,
            >(
                body,
                v,
                "DescribeGroups response",
            )?))
        }
        api_key::LIST_GROUPS => ApiResponse::ListGroups(c::list_groups_resp_to_domain(decode::<
            k::ListGroupsResponse,
        >(
            body,
            v,
            "ListGroups response",
        )?)),
        api_key::DELETE_GROUPS => {
            ApiResponse::DeleteGroups(c::delete_groups_resp_to_domain(decode::<
                k::DeleteGroupsResponse,
            >(
                body,
                v,
                "DeleteGroups response",
            )?))
        }
        api_key::OFFSET_DELETE => {
            ApiResponse::OffsetDelete(c::offset_delete_resp_to_domain(decode::<
                k::OffsetDeleteResponse,
            >(
                body,
                v,
                "OffsetDelete response",
            )?))
        }
        api_key::CONSUMER_GROUP_HEARTBEAT => {
            ApiResponse::ConsumerGroupHeartbeat(convert_consumer_group::heartbeat_resp_to_domain(
                decode::<k::ConsumerGroupHeartbeatResponse>(
                    body,
                    v,
                    "ConsumerGroupHeartbeat response",
                )?,
            ))
        }
        api_key::CONSUMER_GROUP_DESCRIBE => {
            ApiResponse::ConsumerGroupDescribe(convert_consumer_group::describe_resp_to_domain(
                decode::<k::ConsumerGroupDescribeResponse>(
                    body,
                    v,
                    "ConsumerGroupDescribe response",
                )?,
            ))
        }
        _ => {
            return Err(WireError::Unsupported(format!(
                "no response decoder for api key {key}"
            )))
        }
    })
}
