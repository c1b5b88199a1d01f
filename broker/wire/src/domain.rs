//! Domain requests and responses: the vocabulary shared by the broker core, the server
//! drivers and the native client.
//!
//! These types are Kafka's messages with the version differences folded away: a field that
//! only exists in some versions is here unconditionally, and the codec in this crate fills
//! defaults or drops it according to the negotiated version. The state machines in
//! `weir-core` see only these types, never `kafka_protocol`'s.
//!
//! Invariant: every type here round-trips through the codec at every version that can carry
//! all of its fields (`decode(encode(x, v), v) == x`), checked by proptest.

use bytes::Bytes;
use uuid::Uuid;

use crate::error::ErrorCode;

mod consumer_group;
pub use consumer_group::*;

pub mod acl;
pub mod cluster;
pub mod features;
pub mod log_dirs;
pub mod quorum;
pub mod sasl;
pub mod txn;

/// Kafka's "no timestamp" / "no offset" sentinel.
pub const NO_TIMESTAMP: i64 = -1;
/// ListOffsets timestamp meaning "the log end (or LSO for read_committed)".
pub const LATEST_TIMESTAMP: i64 = -1;
/// ListOffsets timestamp meaning "the log start offset".
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets timestamp meaning "the offset of the record with the largest timestamp".
pub const MAX_TIMESTAMP: i64 = -3;

/// A topic named either by name (most APIs, older versions) or by id (Fetch v13+,
/// Produce v13+, DeleteTopics v6+, Metadata v10+ requests may use either).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TopicRef {
    /// The topic's name.
    Name(String),
    /// The topic's stable id (KIP-516).
    Id(Uuid),
}

/// Every request the broker core handles. ApiVersions is answered by the wire layer itself
/// (it needs no state), so it is not here.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiRequest {
    /// Produce (key 0).
    Produce(ProduceRequest),
    /// Fetch (key 1).
    Fetch(FetchRequest),
    /// ListOffsets (key 2).
    ListOffsets(ListOffsetsRequest),
    /// Metadata (key 3).
    Metadata(MetadataRequest),
    /// CreateTopics (key 19).
    CreateTopics(CreateTopicsRequest),
    /// DeleteTopics (key 20).
    DeleteTopics(DeleteTopicsRequest),
    /// DescribeConfigs (key 32).
    DescribeConfigs(DescribeConfigsRequest),
    /// CreatePartitions (key 37).
    CreatePartitions(CreatePartitionsRequest),
    /// DescribeCluster (key 60).
    DescribeCluster(DescribeClusterRequest),
    /// InitProducerId (key 22).
    InitProducerId(InitProducerIdRequest),
    /// OffsetCommit (key 8).
    OffsetCommit(OffsetCommitRequest),
    /// OffsetFetch (key 9).
    OffsetFetch(OffsetFetchRequest),
    /// FindCoordinator (key 10).
    FindCoordinator(FindCoordinatorRequest),
    /// JoinGroup (key 11).
    JoinGroup(JoinGroupRequest),
    /// Heartbeat (key 12).
    Heartbeat(HeartbeatRequest),
    /// LeaveGroup (key 13).
    LeaveGroup(LeaveGroupRequest),
    /// SyncGroup (key 14).
    SyncGroup(SyncGroupRequest),
    /// DescribeGroups (key 15).
    DescribeGroups(DescribeGroupsRequest),
    /// ListGroups (key 16).
    ListGroups(ListGroupsRequest),
    /// DeleteGroups (key 42).
    DeleteGroups(DeleteGroupsRequest),
    /// OffsetDelete (key 47).
    OffsetDelete(OffsetDeleteRequest),
    /// DeleteRecords (key 21).
    DeleteRecords(DeleteRecordsRequest),
    /// ConsumerGroupHeartbeat (key 68, KIP-848).
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest),
    /// ConsumerGroupDescribe (key 69, KIP-848).
    ConsumerGroupDescribe(ConsumerGroupDescribeRequest),
    /// AddPartitionsToTxn (key 24).
    AddPartitionsToTxn(txn::AddPartitionsToTxnRequest),
    /// AddOffsetsToTxn (key 25).
    AddOffsetsToTxn(txn::AddOffsetsToTxnRequest),
    /// EndTxn (key 26).
    EndTxn(txn::EndTxnRequest),
    /// WriteTxnMarkers (key 27).
    WriteTxnMarkers(txn::WriteTxnMarkersRequest),
    /// TxnOffsetCommit (key 28).
    TxnOffsetCommit(txn::TxnOffsetCommitRequest),
    /// DescribeProducers (key 61).
    DescribeProducers(txn::DescribeProducersRequest),
    /// DescribeTransactions (key 65).
    DescribeTransactions(txn::DescribeTransactionsRequest),
    /// ListTransactions (key 66).
    ListTransactions(txn::ListTransactionsRequest),
    /// OffsetForLeaderEpoch (key 23).
    OffsetForLeaderEpoch(cluster::OffsetForLeaderEpochRequest),
    /// ElectLeaders (key 43).
    ElectLeaders(cluster::ElectLeadersRequest),
    /// AlterPartitionReassignments (key 45).
    AlterPartitionReassignments(cluster::AlterPartitionReassignmentsRequest),
    /// ListPartitionReassignments (key 46).
    ListPartitionReassignments(cluster::ListPartitionReassignmentsRequest),
    /// IncrementalAlterConfigs (key 44).
    IncrementalAlterConfigs(cluster::IncrementalAlterConfigsRequest),
    /// AlterConfigs (key 33).
    AlterConfigs(cluster::AlterConfigsRequest),
    /// DescribeQuorum (key 55).
    DescribeQuorum(quorum::DescribeQuorumRequest),
    /// AddRaftVoter (key 80).
    AddRaftVoter(quorum::AddRaftVoterRequest),
    /// RemoveRaftVoter (key 81).
    RemoveRaftVoter(quorum::RemoveRaftVoterRequest),
    /// DescribeLogDirs (key 35).
    DescribeLogDirs(log_dirs::DescribeLogDirsRequest),
    /// SaslHandshake (key 17): answered by the connection, never by the node.
    SaslHandshake(sasl::SaslHandshakeRequest),
    /// SaslAuthenticate (key 36): answered by the connection, never by the node.
    SaslAuthenticate(sasl::SaslAuthenticateRequest),
    /// DescribeUserScramCredentials (key 50, KIP-554).
    DescribeUserScramCredentials(sasl::DescribeUserScramCredentialsRequest),
    /// AlterUserScramCredentials (key 51, KIP-554).
    AlterUserScramCredentials(sasl::AlterUserScramCredentialsRequest),
    /// DescribeAcls (key 29).
    DescribeAcls(acl::DescribeAclsRequest),
    /// CreateAcls (key 30).
    CreateAcls(acl::CreateAclsRequest),
    /// DeleteAcls (key 31).
    DeleteAcls(acl::DeleteAclsRequest),
    /// UpdateFeatures (key 57, KIP-584).
    UpdateFeatures(features::UpdateFeaturesRequest),
}

/// Every response the broker core produces, one variant per [`ApiRequest`] variant.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiResponse {
    /// Produce (key 0).
    Produce(ProduceResponse),
    /// Fetch (key 1).
    Fetch(FetchResponse),
    /// ListOffsets (key 2).
    ListOffsets(ListOffsetsResponse),
    /// Metadata (key 3).
    Metadata(MetadataResponse),
    /// CreateTopics (key 19).
    CreateTopics(CreateTopicsResponse),
    /// DeleteTopics (key 20).
    DeleteTopics(DeleteTopicsResponse),
    /// DescribeConfigs (key 32).
    DescribeConfigs(DescribeConfigsResponse),
    /// CreatePartitions (key 37).
    CreatePartitions(CreatePartitionsResponse),
    /// DescribeCluster (key 60).
    DescribeCluster(DescribeClusterResponse),
    /// InitProducerId (key 22).
    InitProducerId(InitProducerIdResponse),
    /// OffsetCommit (key 8).
    OffsetCommit(OffsetCommitResponse),
    /// OffsetFetch (key 9).
    OffsetFetch(OffsetFetchResponse),
    /// FindCoordinator (key 10).
    FindCoordinator(FindCoordinatorResponse),
    /// JoinGroup (key 11).
    JoinGroup(JoinGroupResponse),
    /// Heartbeat (key 12).
    Heartbeat(HeartbeatResponse),
    /// LeaveGroup (key 13).
    LeaveGroup(LeaveGroupResponse),
    /// SyncGroup (key 14).
    SyncGroup(SyncGroupResponse),
    /// DescribeGroups (key 15).
    DescribeGroups(DescribeGroupsResponse),
    /// ListGroups (key 16).
    ListGroups(ListGroupsResponse),
    /// DeleteGroups (key 42).
    DeleteGroups(DeleteGroupsResponse),
    /// OffsetDelete (key 47).
    OffsetDelete(OffsetDeleteResponse),
    /// DeleteRecords (key 21).
    DeleteRecords(DeleteRecordsResponse),
    /// ConsumerGroupHeartbeat (key 68, KIP-848).
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse),
    /// ConsumerGroupDescribe (key 69, KIP-848).
    ConsumerGroupDescribe(ConsumerGroupDescribeResponse),
    /// AddPartitionsToTxn (key 24).
    AddPartitionsToTxn(txn::AddPartitionsToTxnResponse),
    /// AddOffsetsToTxn (key 25).
    AddOffsetsToTxn(txn::AddOffsetsToTxnResponse),
    /// EndTxn (key 26).
    EndTxn(txn::EndTxnResponse),
    /// WriteTxnMarkers (key 27).
    WriteTxnMarkers(txn::WriteTxnMarkersResponse),
    /// TxnOffsetCommit (key 28).
    TxnOffsetCommit(txn::TxnOffsetCommitResponse),
    /// DescribeProducers (key 61).
    DescribeProducers(txn::DescribeProducersResponse),
    /// DescribeTransactions (key 65).
    DescribeTransactions(txn::DescribeTransactionsResponse),
    /// ListTransactions (key 66).
    ListTransactions(txn::ListTransactionsResponse),
    /// OffsetForLeaderEpoch (key 23).
    OffsetForLeaderEpoch(cluster::OffsetForLeaderEpochResponse),
    /// ElectLeaders (key 43).
    ElectLeaders(cluster::ElectLeadersResponse),
    /// AlterPartitionReassignments (key 45).
    AlterPartitionReassignments(cluster::AlterPartitionReassignmentsResponse),
    /// ListPartitionReassignments (key 46).
    ListPartitionReassignments(cluster::ListPartitionReassignmentsResponse),
    /// IncrementalAlterConfigs (key 44).
    IncrementalAlterConfigs(cluster::IncrementalAlterConfigsResponse),
    /// AlterConfigs (key 33).
    AlterConfigs(cluster::AlterConfigsResponse),
    /// DescribeQuorum (key 55).
    DescribeQuorum(quorum::DescribeQuorumResponse),
    /// AddRaftVoter (key 80).
    AddRaftVoter(quorum::RaftVoterResponse),
    /// RemoveRaftVoter (key 81).
    RemoveRaftVoter(quorum::RaftVoterResponse),
    /// DescribeLogDirs (key 35).
    DescribeLogDirs(log_dirs::DescribeLogDirsResponse),
    /// SaslHandshake (key 17).
    SaslHandshake(sasl::SaslHandshakeResponse),
    /// SaslAuthenticate (key 36).
    SaslAuthenticate(sasl::SaslAuthenticateResponse),
    /// DescribeUserScramCredentials (key 50, KIP-554).
    DescribeUserScramCredentials(sasl::DescribeUserScramCredentialsResponse),
    /// AlterUserScramCredentials (key 51, KIP-554).
    AlterUserScramCredentials(sasl::AlterUserScramCredentialsResponse),
    /// DescribeAcls (key 29).
    DescribeAcls(acl::DescribeAclsResponse),
    /// CreateAcls (key 30).
    CreateAcls(acl::CreateAclsResponse),
    /// DeleteAcls (key 31).
    DeleteAcls(acl::DeleteAclsResponse),
    /// UpdateFeatures (key 57, KIP-584).
    UpdateFeatures(features::UpdateFeaturesResponse),
}

// ---------------------------------------------------------------------------------------
// Produce

/// Produce request. `records` of each partition are the raw record-batch bytes as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ProduceRequest {
    /// Transactional id (v3+), `None` for non-transactional producers.
    pub transactional_id: Option<String>,
    /// How many replicas must have the batches before the answer (parsed at decode: an
    /// invalid value never reaches the core, see [`crate::codec::Decoded::Rejected`]).
    pub acks: Acks,
    /// How long the broker may wait for acks=all.
    pub timeout_ms: i32,
    /// Per-topic data.
    pub topics: Vec<ProduceTopic>,
}

/// A produce's `acks`: how many replicas must have the batches before the broker answers.
/// Kafka's wire values are 0, 1 and -1; any other is INVALID_REQUIRED_ACKS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks=0`: the broker sends no response at all (an error closes the connection).
    None,
    /// `acks=1`: the leader has appended (and, on Weir, synced) the batch.
    Leader,
    /// `acks=all` (-1): every in-sync replica has the batch; Kafka's producer default.
    #[default]
    All,
}

impl Acks {
    /// The wire value, or `None` for a value Kafka refuses (INVALID_REQUIRED_ACKS).
    pub fn from_i16(value: i16) -> Option<Acks> {
        match value {
            0 => Some(Acks::None),
            1 => Some(Acks::Leader),
            -1 => Some(Acks::All),
            _ => None,
        }
    }

    /// The wire value.
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Kafka's `acks` property spelling: `0`, `1`, `all` or `-1`.
impl std::str::FromStr for Acks {
    type Err = String;

    fn from_str(text: &str) -> Result<Acks, String> {
        match text {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            other => Err(format!("acks must be 0, 1 or all, not {other:?}")),
        }
    }
}

/// One topic of a produce request.
#[derive(Debug, Clone, PartialEq)]
pub struct ProduceTopic {
    /// By name (v0-12) or by id (v13+).
    pub topic: TopicRef,
    /// Per-partition data.
    pub partitions: Vec<ProducePartition>,
}

/// One partition of a produce request.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducePartition {
    /// Partition index.
    pub partition: i32,
    /// Record batches exactly as the client sent them.
    pub records: Option<Bytes>,
}

/// Produce response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProduceResponse {
    /// Per-topic results.
    pub topics: Vec<ProduceTopicResponse>,
    /// Quota throttle (always 0 until quotas exist).
    pub throttle_time_ms: i32,
}

/// Per-topic produce results.
#[derive(Debug, Clone, PartialEq)]
pub struct ProduceTopicResponse {
    /// Echoes the request's topic reference.
    pub topic: TopicRef,
    /// Per-partition results.
    pub partitions: Vec<ProducePartitionResponse>,
}

/// Per-partition produce result.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducePartitionResponse {
    /// Partition index.
    pub partition: i32,
    /// Error, or [`ErrorCode::NONE`].
    pub error: ErrorCode,
    /// Offset assigned to the first record, -1 on error.
    pub base_offset: i64,
    /// LogAppendTime if the topic uses it, else -1.
    pub log_append_time_ms: i64,
    /// The partition's log start offset (v5+).
    pub log_start_offset: i64,
    /// Human-readable error (v8+).
    pub error_message: Option<String>,
    /// The records that made the batch be refused (v8+; INVALID_RECORD).
    pub record_errors: Vec<ProduceRecordError>,
}

/// One record that made a produce batch be refused (Kafka's `BatchIndexAndErrorMessage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceRecordError {
    /// The record's index in the batch.
    pub batch_index: i32,
    /// Why it was refused.
    pub message: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Fetch

/// Fetch request (consumers; replicas later).
#[derive(Debug, Clone, PartialEq)]
pub struct FetchRequest {
    /// -1 for consumers; a broker id for follower fetches.
    pub replica_id: i32,
    /// Long-poll bound.
    pub max_wait_ms: i32,
    /// Answer early once this many bytes are available.
    pub min_bytes: i32,
    /// Response size bound (v3+).
    pub max_bytes: i32,
    /// 0 read_uncommitted, 1 read_committed (v4+).
    pub isolation_level: i8,
    /// Fetch session id (v7+); Weir answers 0 (no session), so clients send full fetches.
    pub session_id: i32,
    /// Fetch session epoch (v7+).
    pub session_epoch: i32,
    /// Partitions to fetch.
    pub topics: Vec<FetchTopic>,
    /// Rack of the consumer (v11+), ignored.
    pub rack_id: String,
}

/// One topic of a fetch request.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchTopic {
    /// By name (v0-12) or by id (v13+).
    pub topic: TopicRef,
    /// Partitions to fetch.
    pub partitions: Vec<FetchPartition>,
}

/// One partition of a fetch request.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchPartition {
    /// Partition index.
    pub partition: i32,
    /// Leader epoch the client believes in (v9+), -1 if unknown.
    pub current_leader_epoch: i32,
    /// First offset wanted.
    pub fetch_offset: i64,
    /// Follower's log start offset (v5+), -1 for consumers.
    pub log_start_offset: i64,
    /// Bytes bound for this partition.
    pub partition_max_bytes: i32,
}

/// Fetch response. The core fills everything but the record bytes: each partition carries a
/// [`FetchRecords::Read`] plan that the driver turns into [`FetchRecords::Bytes`] by
/// reading stored batches, so a fetch serves stored bytes without re-encoding.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FetchResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Top-level error (v7+), e.g. FETCH_SESSION_ID_NOT_FOUND.
    pub error: ErrorCode,
    /// Fetch session id: always 0 (sessionless) in Weir.
    pub session_id: i32,
    /// Per-topic results.
    pub topics: Vec<FetchTopicResponse>,
}

/// Per-topic fetch results.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchTopicResponse {
    /// Echoes the request's topic reference.
    pub topic: TopicRef,
    /// Per-partition results.
    pub partitions: Vec<FetchPartitionResponse>,
}

/// Per-partition fetch result.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchPartitionResponse {
    /// Partition index.
    pub partition: i32,
    /// Error, or NONE.
    pub error: ErrorCode,
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset (v4+).
    pub last_stable_offset: i64,
    /// Log start offset (v5+).
    pub log_start_offset: i64,
    /// Aborted transactions overlapping the returned range (v4+, read_committed only).
    pub aborted_transactions: Vec<AbortedTransaction>,
    /// Preferred read replica (v11+), -1.
    pub preferred_read_replica: i32,
    /// The records: a plan from the core, bytes once the driver has read them.
    pub records: FetchRecords,
}

/// An aborted transaction in a fetch response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    /// Producer id of the aborted transaction.
    pub producer_id: i64,
    /// First offset of the aborted transaction.
    pub first_offset: i64,
}

/// Where a fetched partition's bytes come from.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchRecords {
    /// Nothing to return.
    Empty,
    /// Read whole stored batches of `partition_key` covering `[start_offset, end_offset)`,
    /// at most `max_bytes` except that the first batch is always returned whole (Kafka's
    /// rule, so one oversized batch cannot stall a consumer).
    Read(ReadPlan),
    /// Stored batches, concatenated, exactly as stored.
    Bytes(Bytes),
    /// Read whole batches from a segment object in the remote store (tiered storage):
    /// the driver turns it into [`FetchRecords::Bytes`] like a [`FetchRecords::Read`].
    Remote(RemoteReadPlan),
}

/// A remote read the core asks the driver to perform: batches of one uploaded segment
/// object covering `[start_offset, end_offset)`, at most `max_bytes` except that the first
/// batch is always returned whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteReadPlan {
    /// The object's key, relative to the store's root.
    pub object_key: String,
    /// First offset wanted; the batch containing it is the first returned.
    pub start_offset: i64,
    /// Exclusive upper bound (the object's end, or the high watermark or LSO before it).
    pub end_offset: i64,
    /// Soft byte bound.
    pub max_bytes: u32,
    /// A read_committed fetch: the driver also fills the partition's aborted transactions
    /// from the object's own list (local memory may no longer know them).
    pub read_committed: bool,
}

/// A storage read the core asks the driver to perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadPlan {
    /// The storage key of the partition (see weir-core's storage contract).
    pub partition_key: u64,
    /// First offset wanted; the batch containing it is the first returned.
    pub start_offset: i64,
    /// Exclusive upper bound (high watermark or last stable offset).
    pub end_offset: i64,
    /// Soft byte bound.
    pub max_bytes: u32,
}

// ---------------------------------------------------------------------------------------
// ListOffsets

/// ListOffsets request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListOffsetsRequest {
    /// -1 for consumers.
    pub replica_id: i32,
    /// 0 read_uncommitted, 1 read_committed (v2+).
    pub isolation_level: i8,
    /// Queries.
    pub topics: Vec<ListOffsetsTopic>,
}

/// One topic of a ListOffsets request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListOffsetsTopic {
    /// Topic name.
    pub name: String,
    /// Queries per partition.
    pub partitions: Vec<ListOffsetsPartition>,
}

/// One partition query: a timestamp in ms or one of the negative sentinels.
#[derive(Debug, Clone, PartialEq)]
pub struct ListOffsetsPartition {
    /// Partition index.
    pub partition: i32,
    /// Client's leader epoch (v4+), -1 if unknown.
    pub current_leader_epoch: i32,
    /// Target timestamp, or LATEST/EARLIEST/MAX_TIMESTAMP.
    pub timestamp: i64,
}

/// ListOffsets response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListOffsetsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Per-topic answers.
    pub topics: Vec<ListOffsetsTopicResponse>,
}

/// Per-topic ListOffsets answers.
#[derive(Debug, Clone, PartialEq)]
pub struct ListOffsetsTopicResponse {
    /// Topic name.
    pub name: String,
    /// Per-partition answers.
    pub partitions: Vec<ListOffsetsPartitionResponse>,
}

/// Per-partition ListOffsets answer. A timestamp query the core cannot answer from memory
/// carries a [`TimestampLookup`]; the driver resolves it against storage and fills
/// `timestamp`/`offset` before encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct ListOffsetsPartitionResponse {
    /// Partition index.
    pub partition: i32,
    /// Error, or NONE. While `lookup` is pending: the answer if the lookup finds nothing
    /// (NONE for offset -1), replaced by NONE when it finds a record.
    pub error: ErrorCode,
    /// Timestamp of the found record, -1 if none.
    pub timestamp: i64,
    /// Found offset, -1 if none.
    pub offset: i64,
    /// Leader epoch of the found offset (v4+): the epoch its batch was written in.
    pub leader_epoch: i32,
    /// A lookup left for the driver, `None` once resolved.
    pub lookup: Option<TimestampLookup>,
}

/// "Find the first offset whose record timestamp is >= `timestamp`, below `end_offset`."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampLookup {
    /// The storage key of the partition.
    pub partition_key: u64,
    /// Target timestamp (ms).
    pub timestamp: i64,
    /// First offset to consider (log start).
    pub start_offset: i64,
    /// Exclusive upper bound (high watermark or LSO).
    pub end_offset: i64,
}

// ---------------------------------------------------------------------------------------
// Metadata

/// Metadata request.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataRequest {
    /// `None` = all topics; `Some(vec![])` = no topics.
    pub topics: Option<Vec<TopicRef>>,
    /// Create unknown topics if the broker allows it (v4+; true before).
    pub allow_auto_topic_creation: bool,
    /// v8-10.
    pub include_cluster_authorized_operations: bool,
    /// v8+.
    pub include_topic_authorized_operations: bool,
}

/// Metadata response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetadataResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Live brokers.
    pub brokers: Vec<BrokerInfo>,
    /// Cluster id (v2+).
    pub cluster_id: Option<String>,
    /// Active controller's node id (v1+), a real broker id.
    pub controller_id: i32,
    /// Topics.
    pub topics: Vec<MetadataTopic>,
    /// v8-10, i32::MIN when not requested.
    pub cluster_authorized_operations: i32,
}

/// A broker endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Node id.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, if configured.
    pub rack: Option<String>,
}

/// A topic in a metadata response.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataTopic {
    /// Error, e.g. UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC_EXCEPTION.
    pub error: ErrorCode,
    /// Name (nullable in v12+ responses to id-only requests for unknown ids).
    pub name: Option<String>,
    /// Stable topic id (v10+), nil for errors.
    pub topic_id: Uuid,
    /// Internal topics (e.g. __consumer_offsets).
    pub is_internal: bool,
    /// Partitions.
    pub partitions: Vec<MetadataPartition>,
    /// v8+, i32::MIN when not requested.
    pub topic_authorized_operations: i32,
}

/// A partition in a metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataPartition {
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Partition index.
    pub partition: i32,
    /// Leader node id, -1 if none.
    pub leader_id: i32,
    /// Leader epoch (v7+).
    pub leader_epoch: i32,
    /// Replica node ids.
    pub replica_nodes: Vec<i32>,
    /// In-sync replica node ids.
    pub isr_nodes: Vec<i32>,
    /// Offline replica node ids (v5+).
    pub offline_replicas: Vec<i32>,
}

// ---------------------------------------------------------------------------------------
// CreateTopics / DeleteTopics / CreatePartitions

/// CreateTopics request.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateTopicsRequest {
    /// Topics to create.
    pub topics: Vec<CreatableTopic>,
    /// How long to wait for creation.
    pub timeout_ms: i32,
    /// Validate only, create nothing (v1+).
    pub validate_only: bool,
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatableTopic {
    /// Name.
    pub name: String,
    /// Partition count, -1 for the broker default (v4+).
    pub num_partitions: i32,
    /// Replication factor, -1 for the broker default (v4+).
    pub replication_factor: i16,
    /// Manual assignment: (partition, broker ids).
    pub assignments: Vec<(i32, Vec<i32>)>,
    /// Topic configs: (name, value).
    pub configs: Vec<(String, Option<String>)>,
}

/// CreateTopics response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreateTopicsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Per-topic results.
    pub topics: Vec<CreatableTopicResult>,
}

/// Per-topic CreateTopics result.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatableTopicResult {
    /// Name.
    pub name: String,
    /// Id (v7+).
    pub topic_id: Uuid,
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Error message (v1+).
    pub error_message: Option<String>,
    /// Partition count (v5+), -1 on error.
    pub num_partitions: i32,
    /// Replication factor (v5+), -1 on error.
    pub replication_factor: i16,
    /// Resulting configs (v5+).
    pub configs: Vec<CreatableTopicConfig>,
}

/// A config entry of a created topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatableTopicConfig {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Option<String>,
    /// Read only.
    pub read_only: bool,
    /// Source (see [`ConfigSource`] constants).
    pub config_source: i8,
    /// Sensitive.
    pub is_sensitive: bool,
}

/// DeleteTopics request.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteTopicsRequest {
    /// Topics by name (v0-5) or name/id (v6+).
    pub topics: Vec<TopicRef>,
    /// How long to wait.
    pub timeout_ms: i32,
}

/// DeleteTopics response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteTopicsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Per-topic results.
    pub responses: Vec<DeletableTopicResult>,
}

/// Per-topic DeleteTopics result.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletableTopicResult {
    /// Name, if known.
    pub name: Option<String>,
    /// Id (v6+), nil if unknown.
    pub topic_id: Uuid,
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Error message (v5+).
    pub error_message: Option<String>,
}

/// CreatePartitions request: grow topics to `count` partitions.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatePartitionsRequest {
    /// Topics to grow.
    pub topics: Vec<CreatePartitionsTopic>,
    /// How long to wait.
    pub timeout_ms: i32,
    /// Validate only.
    pub validate_only: bool,
}

/// One topic to grow.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatePartitionsTopic {
    /// Name.
    pub name: String,
    /// New total partition count.
    pub count: i32,
    /// Manual assignment of the new partitions.
    pub assignments: Option<Vec<Vec<i32>>>,
}

/// CreatePartitions response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreatePartitionsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Per-topic results.
    pub results: Vec<CreatePartitionsTopicResult>,
}

/// Per-topic CreatePartitions result.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatePartitionsTopicResult {
    /// Name.
    pub name: String,
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Error message.
    pub error_message: Option<String>,
}

// ---------------------------------------------------------------------------------------
// DescribeConfigs / DescribeCluster

/// Kafka's ConfigResource types.
pub mod resource_type {
    /// Topic.
    pub const TOPIC: i8 = 2;
    /// Broker.
    pub const BROKER: i8 = 4;
    /// Broker logger.
    pub const BROKER_LOGGER: i8 = 8;
}

/// Kafka's DescribeConfigs config_source values.
pub mod config_source {
    /// Unknown.
    pub const UNKNOWN: i8 = 0;
    /// Set on the topic.
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    /// Static broker config file.
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    /// Built-in default.
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// DescribeConfigs request.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribeConfigsRequest {
    /// Resources to describe.
    pub resources: Vec<DescribeConfigsResource>,
    /// v1+.
    pub include_synonyms: bool,
    /// v3+.
    pub include_documentation: bool,
}

/// One resource to describe.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribeConfigsResource {
    /// See [`resource_type`].
    pub resource_type: i8,
    /// Topic name or broker id as a string.
    pub resource_name: String,
    /// `None` = all keys.
    pub configuration_keys: Option<Vec<String>>,
}

/// DescribeConfigs response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribeConfigsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Per-resource results.
    pub results: Vec<DescribeConfigsResult>,
}

/// Per-resource DescribeConfigs result.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribeConfigsResult {
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Error message.
    pub error_message: Option<String>,
    /// Echo.
    pub resource_type: i8,
    /// Echo.
    pub resource_name: String,
    /// Entries.
    pub configs: Vec<DescribeConfigsEntry>,
}

/// A config entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeConfigsEntry {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Option<String>,
    /// Read only.
    pub read_only: bool,
    /// Source (see [`config_source`]).
    pub config_source: i8,
    /// Sensitive.
    pub is_sensitive: bool,
    /// Kafka's ConfigType (v3+): 1 BOOLEAN, 2 STRING, 3 INT, 5 LONG, 7 LIST...
    pub config_type: i8,
    /// Documentation (v3+).
    pub documentation: Option<String>,
}

/// DescribeCluster request.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribeClusterRequest {
    /// Include authorized operations.
    pub include_cluster_authorized_operations: bool,
    /// v1+: 1 brokers, 2 controllers.
    pub endpoint_type: i8,
}

/// DescribeCluster response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribeClusterResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Error message.
    pub error_message: Option<String>,
    /// Echo of the endpoint type (v1+).
    pub endpoint_type: i8,
    /// Cluster id.
    pub cluster_id: String,
    /// Controller id.
    pub controller_id: i32,
    /// Brokers.
    pub brokers: Vec<BrokerInfo>,
    /// Authorized operations, i32::MIN when not requested.
    pub cluster_authorized_operations: i32,
}

// ---------------------------------------------------------------------------------------
// Consumer groups (classic protocol)

/// FindCoordinator key types.
pub mod coordinator_type {
    /// A consumer group.
    pub const GROUP: i8 = 0;
    /// A transactional id.
    pub const TRANSACTION: i8 = 1;
}

/// FindCoordinator request. v0-3 carry exactly one key; v4+ a batch (KIP-699).
#[derive(Debug, Clone, PartialEq)]
pub struct FindCoordinatorRequest {
    /// See [`coordinator_type`] (v1+; 0 before).
    pub key_type: i8,
    /// Group ids (or transactional ids) to locate.
    pub keys: Vec<String>,
}

/// FindCoordinator response: one entry per requested key (v0-3: exactly one).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FindCoordinatorResponse {
    /// Quota throttle (v1+).
    pub throttle_time_ms: i32,
    /// One answer per key.
    pub coordinators: Vec<Coordinator>,
}

/// Where one key's coordinator lives.
#[derive(Debug, Clone, PartialEq)]
pub struct Coordinator {
    /// The key asked about (empty before v4, which has no per-key answers).
    pub key: String,
    /// Coordinator node id, -1 on error.
    pub node_id: i32,
    /// Coordinator host.
    pub host: String,
    /// Coordinator port, -1 on error.
    pub port: i32,
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Error message (v1+).
    pub error_message: Option<String>,
}

/// A protocol (assignor) a joining member supports, in its order of preference.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinGroupProtocol {
    /// Protocol name, e.g. "range", "cooperative-sticky".
    pub name: String,
    /// Opaque subscription metadata for that protocol.
    pub metadata: Bytes,
}

/// JoinGroup request.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinGroupRequest {
    /// Group id.
    pub group_id: String,
    /// Member is removed when no heartbeat arrives within this.
    pub session_timeout_ms: i32,
    /// Bound on a rebalance (v1+; the session timeout before, as in Kafka).
    pub rebalance_timeout_ms: i32,
    /// Empty on a first join.
    pub member_id: String,
    /// Static membership id (v5+).
    pub group_instance_id: Option<String>,
    /// E.g. "consumer", "connect".
    pub protocol_type: String,
    /// Supported protocols, preferred first.
    pub protocols: Vec<JoinGroupProtocol>,
    /// Why the member (re)joins (v8+).
    pub reason: Option<String>,
    /// From the request header (not the body): DescribeGroups reports it.
    pub client_id: String,
    /// The peer address, filled by the server driver (empty otherwise).
    pub client_host: String,
    /// From the version (v4+, KIP-394): a first join without member id is answered
    /// MEMBER_ID_REQUIRED with the id to rejoin with.
    pub member_id_required: bool,
}

/// A member as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinGroupMember {
    /// Member id.
    pub member_id: String,
    /// Static id (v5+).
    pub group_instance_id: Option<String>,
    /// The member's metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// JoinGroup response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JoinGroupResponse {
    /// Quota throttle (v2+).
    pub throttle_time_ms: i32,
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Generation of the group, -1 on error.
    pub generation_id: i32,
    /// Protocol type (v7+).
    pub protocol_type: Option<String>,
    /// Chosen protocol (nullable from v7; "" on error before).
    pub protocol_name: Option<String>,
    /// Leader's member id.
    pub leader: String,
    /// v9+: the leader must not compute an assignment (static leader rejoin).
    pub skip_assignment: bool,
    /// The receiver's member id.
    pub member_id: String,
    /// All members (only to the leader).
    pub members: Vec<JoinGroupMember>,
}

/// SyncGroup request.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncGroupRequest {
    /// Group id.
    pub group_id: String,
    /// Generation.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// Static id (v3+).
    pub group_instance_id: Option<String>,
    /// v5+.
    pub protocol_type: Option<String>,
    /// v5+.
    pub protocol_name: Option<String>,
    /// The leader's assignment: (member id, assignment bytes).
    pub assignments: Vec<(String, Bytes)>,
}

/// SyncGroup response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncGroupResponse {
    /// Quota throttle (v1+).
    pub throttle_time_ms: i32,
    /// Error, or NONE.
    pub error: ErrorCode,
    /// v5+.
    pub protocol_type: Option<String>,
    /// v5+.
    pub protocol_name: Option<String>,
    /// This member's assignment.
    pub assignment: Bytes,
}

/// Heartbeat request.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatRequest {
    /// Group id.
    pub group_id: String,
    /// Generation.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// Static id (v3+).
    pub group_instance_id: Option<String>,
}

/// Heartbeat response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeartbeatResponse {
    /// Quota throttle (v1+).
    pub throttle_time_ms: i32,
    /// Error, or NONE (REBALANCE_IN_PROGRESS asks the member to rejoin).
    pub error: ErrorCode,
}

/// A member leaving (LeaveGroup v3+ batches them; v0-2 carry one member id).
#[derive(Debug, Clone, PartialEq)]
pub struct LeavingMember {
    /// Member id (may be empty for a static member identified by instance id).
    pub member_id: String,
    /// Static id.
    pub group_instance_id: Option<String>,
    /// Why (v5+).
    pub reason: Option<String>,
}

/// LeaveGroup request.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaveGroupRequest {
    /// Group id.
    pub group_id: String,
    /// Members leaving (v0-2: exactly one, without instance id or reason).
    pub members: Vec<LeavingMember>,
}

/// Per-member LeaveGroup result (v3+).
#[derive(Debug, Clone, PartialEq)]
pub struct LeftMember {
    /// Member id.
    pub member_id: String,
    /// Static id.
    pub group_instance_id: Option<String>,
    /// Error, or NONE.
    pub error: ErrorCode,
}

/// LeaveGroup response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LeaveGroupResponse {
    /// Quota throttle (v1+).
    pub throttle_time_ms: i32,
    /// Top-level error.
    pub error: ErrorCode,
    /// Per-member results (v3+).
    pub members: Vec<LeftMember>,
}

/// One partition's offset to commit.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetCommitPartition {
    /// Partition index.
    pub partition: i32,
    /// Next offset to consume.
    pub committed_offset: i64,
    /// Leader epoch of the last consumed record (v6+), -1 if unknown.
    pub committed_leader_epoch: i32,
    /// Client metadata.
    pub metadata: Option<String>,
}

/// One topic of an OffsetCommit request.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetCommitTopic {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: Vec<OffsetCommitPartition>,
}

/// OffsetCommit request (v2+).
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetCommitRequest {
    /// Group id.
    pub group_id: String,
    /// Generation, -1 for a commit from outside the group (simple consumer, admin).
    pub generation_id: i32,
    /// Member id, "" outside the group.
    pub member_id: String,
    /// Static id (v7+).
    pub group_instance_id: Option<String>,
    /// v2-4, -1 = broker default; ignored.
    pub retention_time_ms: i64,
    /// Offsets.
    pub topics: Vec<OffsetCommitTopic>,
}

/// Per-topic OffsetCommit results.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetCommitTopicResponse {
    /// Topic name.
    pub name: String,
    /// (partition, error).
    pub partitions: Vec<(i32, ErrorCode)>,
}

/// OffsetCommit response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetCommitResponse {
    /// Quota throttle (v3+).
    pub throttle_time_ms: i32,
    /// Per-topic results.
    pub topics: Vec<OffsetCommitTopicResponse>,
}

/// One group of an OffsetFetch request (v8+ batch several; v1-7 carry one).
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetFetchGroup {
    /// Group id.
    pub group_id: String,
    /// Topics and partitions, `None` = every committed offset (v2+).
    pub topics: Option<Vec<(String, Vec<i32>)>>,
}

/// OffsetFetch request.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetFetchRequest {
    /// Groups (v1-7: exactly one).
    pub groups: Vec<OffsetFetchGroup>,
    /// Fail with UNSTABLE_OFFSET_COMMIT while transactional offsets are pending (v7+).
    pub require_stable: bool,
}

/// One partition's committed offset.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetFetchPartition {
    /// Partition index.
    pub partition: i32,
    /// Committed offset, -1 if none.
    pub committed_offset: i64,
    /// Leader epoch (v5+), -1 if unknown.
    pub committed_leader_epoch: i32,
    /// Client metadata.
    pub metadata: Option<String>,
    /// Error, or NONE.
    pub error: ErrorCode,
}

/// One topic's committed offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetFetchTopic {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: Vec<OffsetFetchPartition>,
}

/// One group's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetFetchGroupResponse {
    /// Group id (not on the wire before v8: the request's).
    pub group_id: String,
    /// Topics.
    pub topics: Vec<OffsetFetchTopic>,
    /// Group-level error (v2+).
    pub error: ErrorCode,
}

/// OffsetFetch response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetFetchResponse {
    /// Quota throttle (v3+).
    pub throttle_time_ms: i32,
    /// One per requested group (v1-7: exactly one).
    pub groups: Vec<OffsetFetchGroupResponse>,
}

/// ListGroups request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListGroupsRequest {
    /// Only groups in these states (v4+), empty = all.
    pub states_filter: Vec<String>,
    /// Only groups of these types (v5+), empty = all.
    pub types_filter: Vec<String>,
}

/// A listed group.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedGroup {
    /// Group id.
    pub group_id: String,
    /// Protocol type ("consumer"), "" for an empty group.
    pub protocol_type: String,
    /// State (v4+).
    pub group_state: String,
    /// "classic" (v5+).
    pub group_type: String,
}

/// ListGroups response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListGroupsResponse {
    /// Quota throttle (v1+).
    pub throttle_time_ms: i32,
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Groups.
    pub groups: Vec<ListedGroup>,
}

/// DescribeGroups request.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribeGroupsRequest {
    /// Group ids.
    pub groups: Vec<String>,
    /// v3+.
    pub include_authorized_operations: bool,
}

/// A member in DescribeGroups.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribedMember {
    /// Member id.
    pub member_id: String,
    /// Static id (v4+).
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata for the group's protocol.
    pub member_metadata: Bytes,
    /// Current assignment.
    pub member_assignment: Bytes,
}

/// A described group.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribedGroup {
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Group id.
    pub group_id: String,
    /// State name: Empty, PreparingRebalance, CompletingRebalance, Stable, Dead.
    pub group_state: String,
    /// Protocol type.
    pub protocol_type: String,
    /// Chosen protocol name.
    pub protocol_data: String,
    /// Members.
    pub members: Vec<DescribedMember>,
    /// v3+, i32::MIN when not requested.
    pub authorized_operations: i32,
}

/// DescribeGroups response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribeGroupsResponse {
    /// Quota throttle (v1+).
    pub throttle_time_ms: i32,
    /// One per requested group.
    pub groups: Vec<DescribedGroup>,
}

/// DeleteGroups request.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteGroupsRequest {
    /// Group ids.
    pub groups: Vec<String>,
}

/// DeleteGroups response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteGroupsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// (group id, error).
    pub results: Vec<(String, ErrorCode)>,
}

/// OffsetDelete request.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetDeleteRequest {
    /// Group id.
    pub group_id: String,
    /// (topic, partitions).
    pub topics: Vec<(String, Vec<i32>)>,
}

/// OffsetDelete response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetDeleteResponse {
    /// Group-level error.
    pub error: ErrorCode,
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// (topic, [(partition, error)]).
    pub topics: Vec<(String, Vec<(i32, ErrorCode)>)>,
}

// ---------------------------------------------------------------------------------------
// DeleteRecords (kafka-delete-records.sh, AdminClient.deleteRecords)

/// DeleteRecords request: move each partition's log start offset up to an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteRecordsRequest {
    /// Topics and their partitions.
    pub topics: Vec<DeleteRecordsTopic>,
    /// How long the leader may wait for its replicas to delete too.
    pub timeout_ms: i32,
}

/// One topic of a DeleteRecords request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteRecordsTopic {
    /// Topic name.
    pub name: String,
    /// (partition, offset): records below `offset` go; -1 is the high watermark.
    pub partitions: Vec<(i32, i64)>,
}

/// DeleteRecords response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteRecordsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Per-topic results, in request order.
    pub topics: Vec<DeleteRecordsTopicResult>,
}

/// One topic's results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteRecordsTopicResult {
    /// Topic name.
    pub name: String,
    /// Per-partition results.
    pub partitions: Vec<DeleteRecordsPartitionResult>,
}

/// One partition's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteRecordsPartitionResult {
    /// Partition index.
    pub partition: i32,
    /// The partition's log start offset after the deletion (-1 on error).
    pub low_watermark: i64,
    /// Error, or NONE.
    pub error: ErrorCode,
}

// ---------------------------------------------------------------------------------------
// InitProducerId (idempotent producers; transactions later)

/// InitProducerId request: a producer asks for its id and epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdRequest {
    /// Transactional id, `None` for idempotent-only producers.
    pub transactional_id: Option<String>,
    /// Transaction timeout (only meaningful with a transactional id).
    pub transaction_timeout_ms: i32,
    /// The producer's current id (v3+, KIP-360), -1 when it has none.
    pub producer_id: i64,
    /// The producer's current epoch (v3+, KIP-360), -1 when it has none.
    pub producer_epoch: i16,
}

/// InitProducerId response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Error, or NONE.
    pub error: ErrorCode,
    /// The producer id, -1 on error.
    pub producer_id: i64,
    /// The producer epoch, -1 on error.
    pub producer_epoch: i16,
}
