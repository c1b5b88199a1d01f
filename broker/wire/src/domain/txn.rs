//! Domain types of the transaction APIs: AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
//! TxnOffsetCommit, WriteTxnMarkers, DescribeTransactions, ListTransactions and
//! DescribeProducers.
//!
//! Same invariant as the parent module: each type round-trips through the codec at every
//! version that carries all of its fields. AddPartitionsToTxn is the client shape (v0-3,
//! one transaction per request); the batched broker-to-broker shape of v4+ (KIP-890) is
//! not served.

use crate::error::ErrorCode;

/// A topic and some of its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnTopic {
    /// Topic name.
    pub name: String,
    /// Partition indexes.
    pub partitions: Vec<i32>,
}

/// A partition's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnPartitionResult {
    /// Partition index.
    pub partition: i32,
    /// Error, or NONE.
    pub error: ErrorCode,
}

/// A topic's per-partition outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnTopicResult {
    /// Topic name.
    pub name: String,
    /// Outcome of each partition.
    pub partitions: Vec<TxnPartitionResult>,
}

/// AddPartitionsToTxn request (key 24, v0-3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPartitionsToTxnRequest {
    /// The transaction.
    pub transactional_id: String,
    /// Its producer id.
    pub producer_id: i64,
    /// Its producer epoch.
    pub producer_epoch: i16,
    /// Partitions to add.
    pub topics: Vec<TxnTopic>,
}

/// AddPartitionsToTxn response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPartitionsToTxnResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Outcome of each partition.
    pub results: Vec<TxnTopicResult>,
}

/// AddOffsetsToTxn request (key 25).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOffsetsToTxnRequest {
    /// The transaction.
    pub transactional_id: String,
    /// Its producer id.
    pub producer_id: i64,
    /// Its producer epoch.
    pub producer_epoch: i16,
    /// The group whose offsets the transaction will commit.
    pub group_id: String,
}

/// AddOffsetsToTxn response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOffsetsToTxnResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Error, or NONE.
    pub error: ErrorCode,
}

/// EndTxn request (key 26).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndTxnRequest {
    /// The transaction.
    pub transactional_id: String,
    /// Its producer id.
    pub producer_id: i64,
    /// Its producer epoch.
    pub producer_epoch: i16,
    /// True to commit, false to abort.
    pub committed: bool,
}

/// EndTxn response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndTxnResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Producer id after the transaction (v5+, KIP-890), -1 otherwise.
    pub producer_id: i64,
    /// Producer epoch after the transaction (v5+), -1 otherwise.
    pub producer_epoch: i16,
}

/// One partition's offset in a TxnOffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitPartition {
    /// Partition index.
    pub partition: i32,
    /// Offset to commit.
    pub committed_offset: i64,
    /// Leader epoch of the last consumed record (v2+), -1 if unknown.
    pub committed_leader_epoch: i32,
    /// Client metadata.
    pub committed_metadata: Option<String>,
}

/// A topic's offsets in a TxnOffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitTopic {
    /// Topic name.
    pub name: String,
    /// Offsets per partition.
    pub partitions: Vec<TxnOffsetCommitPartition>,
}

/// TxnOffsetCommit request (key 28).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitRequest {
    /// The transaction.
    pub transactional_id: String,
    /// The consumer group.
    pub group_id: String,
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Group generation (v3+, KIP-447), -1 when not given.
    pub generation_id: i32,
    /// Member id (v3+), empty when not given.
    pub member_id: String,
    /// Static member id (v3+).
    pub group_instance_id: Option<String>,
    /// Offsets.
    pub topics: Vec<TxnOffsetCommitTopic>,
}

/// TxnOffsetCommit response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Outcome per partition.
    pub topics: Vec<TxnTopicResult>,
}

/// One marker to write (WriteTxnMarkers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritableTxnMarker {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// True for a commit marker, false for abort.
    pub committed: bool,
    /// Partitions to write it to.
    pub topics: Vec<TxnTopic>,
    /// Coordinator epoch written in the marker.
    pub coordinator_epoch: i32,
}

/// WriteTxnMarkers request (key 27, v1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteTxnMarkersRequest {
    /// Markers.
    pub markers: Vec<WritableTxnMarker>,
}

/// One marker's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteTxnMarkersResult {
    /// Producer id.
    pub producer_id: i64,
    /// Per partition.
    pub topics: Vec<TxnTopicResult>,
}

/// WriteTxnMarkers response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteTxnMarkersResponse {
    /// Per marker.
    pub markers: Vec<WriteTxnMarkersResult>,
}

/// DescribeTransactions request (key 65).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeTransactionsRequest {
    /// Transactions to describe.
    pub transactional_ids: Vec<String>,
}

/// One transaction, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// Error (TRANSACTIONAL_ID_NOT_FOUND), or NONE.
    pub error: ErrorCode,
    /// Transactional id.
    pub transactional_id: String,
    /// Kafka's state name: Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit,
    /// CompleteAbort, Dead, PrepareEpochFence.
    pub state: String,
    /// transaction.timeout.ms.
    pub timeout_ms: i32,
    /// Wall-clock ms the ongoing transaction started, -1 when none.
    pub start_time_ms: i64,
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Partitions in the transaction.
    pub topics: Vec<TxnTopic>,
}

/// DescribeTransactions response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeTransactionsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// One per requested id.
    pub transactions: Vec<TransactionDescription>,
}

/// ListTransactions request (key 66).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListTransactionsRequest {
    /// States to list (empty: all).
    pub state_filters: Vec<String>,
    /// Producer ids to list (empty: all).
    pub producer_id_filters: Vec<i64>,
    /// Only transactions running longer than this (v1+), -1 for all.
    pub duration_filter_ms: i64,
}

/// One transaction, listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    /// Transactional id.
    pub transactional_id: String,
    /// Producer id.
    pub producer_id: i64,
    /// Kafka's state name.
    pub state: String,
}

/// ListTransactions response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListTransactionsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Requested state filters that are not state names.
    pub unknown_state_filters: Vec<String>,
    /// The transactions.
    pub transactions: Vec<TransactionListing>,
}

/// DescribeProducers request (key 61).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeProducersRequest {
    /// Partitions to describe.
    pub topics: Vec<TxnTopic>,
}

/// One producer active on a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerDescription {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i32,
    /// Last sequence written, -1 when none.
    pub last_sequence: i32,
    /// Wall-clock ms of its last write.
    pub last_timestamp: i64,
    /// Coordinator epoch of its last marker, -1 when none.
    pub coordinator_epoch: i32,
    /// First offset of its open transaction, -1 when none.
    pub current_txn_start_offset: i64,
}

/// One partition's producers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeProducersPartition {
    /// Partition index.
    pub partition: i32,
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Error message.
    pub error_message: Option<String>,
    /// Active producers.
    pub producers: Vec<ProducerDescription>,
}

/// One topic's partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeProducersTopic {
    /// Topic name.
    pub name: String,
    /// Per partition.
    pub partitions: Vec<DescribeProducersPartition>,
}

/// DescribeProducers response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeProducersResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Per topic.
    pub topics: Vec<DescribeProducersTopic>,
}
