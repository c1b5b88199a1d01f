//! Domain types of the APIs a replicated cluster serves: OffsetForLeaderEpoch (key 23,
//! v2-4), ElectLeaders (43, v0-2), AlterPartitionReassignments (45, v0-1),
//! ListPartitionReassignments (46, v0), IncrementalAlterConfigs (44, v0-1) and AlterConfigs
//! (33, v0-2).
//!
//! Same invariant as the parent module: each type round-trips through the codec at every
//! version that carries all of its fields; a field a version lacks arrives as Kafka's schema
//! default (named on the field). Broker ids are plain `i32` node ids, as in `BrokerInfo`.
//!
//! Each request has an `error_response` that answers it with one error everywhere (the
//! shape `weir-core`'s whole-request error answers need).

use crate::error::ErrorCode;

/// OffsetForLeaderEpoch `replica_id` values that are not broker ids.
pub mod replica_id {
    /// A consumer (Java client, librdkafka) validating its position.
    pub const CONSUMER: i32 = -1;
    /// Kafka's "debugging" replica; also what a v2 request (which lacks the field) decodes
    /// to.
    pub const DEBUGGING: i32 = -2;
}

/// Kafka's "no epoch" sentinel (UNDEFINED_EPOCH).
pub const UNDEFINED_EPOCH: i32 = -1;
/// Kafka's "no end offset" sentinel (UNDEFINED_EPOCH_OFFSET).
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

// ---------------------------------------------------------------------------------------
// OffsetForLeaderEpoch (key 23)

/// OffsetForLeaderEpoch request (key 23, v2-4): for each partition, the end offset of
/// `leader_epoch` (the start offset of the next larger epoch, or the log end offset when
/// `leader_epoch` is the current one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetForLeaderEpochRequest {
    /// The asking broker's id (a follower), or [`replica_id::CONSUMER`] for clients
    /// (v3+; [`replica_id::DEBUGGING`] at v2).
    pub replica_id: i32,
    /// Partitions asked about.
    pub topics: Vec<OffsetForLeaderTopic>,
}

/// A topic of an OffsetForLeaderEpoch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetForLeaderTopic {
    /// Topic name.
    pub topic: String,
    /// Partitions asked about.
    pub partitions: Vec<OffsetForLeaderPartition>,
}

/// A partition of an OffsetForLeaderEpoch request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetForLeaderPartition {
    /// Partition index.
    pub partition: i32,
    /// The epoch the asker believes current, for fencing (FENCED_LEADER_EPOCH when older
    /// than the leader's, UNKNOWN_LEADER_EPOCH when newer); [`UNDEFINED_EPOCH`] skips the
    /// check.
    pub current_leader_epoch: i32,
    /// The epoch whose end offset is asked for.
    pub leader_epoch: i32,
}

/// OffsetForLeaderEpoch response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetForLeaderEpochResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Per-topic results.
    pub topics: Vec<OffsetForLeaderTopicResult>,
}

/// A topic's OffsetForLeaderEpoch results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetForLeaderTopicResult {
    /// Topic name.
    pub topic: String,
    /// Per-partition results.
    pub partitions: Vec<EpochEndOffset>,
}

/// A partition's OffsetForLeaderEpoch result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEndOffset {
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Partition index.
    pub partition: i32,
    /// The largest epoch <= the requested one that the leader knows, or
    /// [`UNDEFINED_EPOCH`].
    pub leader_epoch: i32,
    /// The end offset of that epoch, or [`UNDEFINED_EPOCH_OFFSET`].
    pub end_offset: i64,
}

impl OffsetForLeaderEpochRequest {
    /// Every partition asked about fails with `error` (epoch and offset undefined).
    pub fn error_response(&self, error: ErrorCode) -> OffsetForLeaderEpochResponse {
        OffsetForLeaderEpochResponse {
            throttle_time_ms: 0,
            topics: (self.topics.iter())
                .map(|t| OffsetForLeaderTopicResult {
                    topic: t.topic.clone(),
                    partitions: (t.partitions.iter())
                        .map(|p| EpochEndOffset {
                            error,
                            partition: p.partition,
                            leader_epoch: UNDEFINED_EPOCH,
                            end_offset: UNDEFINED_EPOCH_OFFSET,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// ElectLeaders (key 43)

/// ElectLeaders `election_type` values.
pub mod election_type {
    /// Move leadership to the preferred (first assigned) replica.
    pub const PREFERRED: i8 = 0;
    /// Elect any live replica when no in-sync replica is left (may lose data).
    pub const UNCLEAN: i8 = 1;
}

/// ElectLeaders request (key 43, v0-2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectLeadersRequest {
    /// See [`election_type`] (v1+; v0 is always [`election_type::PREFERRED`]).
    pub election_type: i8,
    /// Partitions to elect leaders for; `None` = every partition.
    pub topic_partitions: Option<Vec<ElectLeadersTopic>>,
    /// How long to wait for the elections.
    pub timeout_ms: i32,
}

/// A topic and some of its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectLeadersTopic {
    /// Topic name.
    pub topic: String,
    /// Partition indexes.
    pub partitions: Vec<i32>,
}

/// ElectLeaders response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ElectLeadersResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Top-level error (v1+). At v0 the codec copies a non-NONE value into every partition
    /// result whose own error is NONE, since v0 has no field for it.
    pub error: ErrorCode,
    /// Per-topic results.
    pub results: Vec<ElectLeadersTopicResult>,
}

/// A topic's election results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectLeadersTopicResult {
    /// Topic name.
    pub topic: String,
    /// Per-partition results.
    pub partitions: Vec<ElectLeadersPartitionResult>,
}

/// A partition's election result (ELECTION_NOT_NEEDED when the leader already is the
/// preferred replica).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectLeadersPartitionResult {
    /// Partition index.
    pub partition: i32,
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Error message.
    pub error_message: Option<String>,
}

impl ElectLeadersRequest {
    /// `error` at the top level and for every named partition.
    pub fn error_response(&self, error: ErrorCode, message: Option<&str>) -> ElectLeadersResponse {
        let results = (self.topic_partitions.iter().flatten())
            .map(|t| ElectLeadersTopicResult {
                topic: t.topic.clone(),
                partitions: (t.partitions.iter())
                    .map(|&partition| ElectLeadersPartitionResult {
                        partition,
                        error,
                        error_message: message.map(str::to_owned),
                    })
                    .collect(),
            })
            .collect();
        ElectLeadersResponse {
            throttle_time_ms: 0,
            error,
            results,
        }
    }
}

// ---------------------------------------------------------------------------------------
// AlterPartitionReassignments (key 45)

/// AlterPartitionReassignments request (key 45, v0-1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionReassignmentsRequest {
    /// How long to wait.
    pub timeout_ms: i32,
    /// Whether the new replica list may change the replication factor (v1+, KIP-860;
    /// `true` at v0).
    pub allow_replication_factor_change: bool,
    /// Partitions to move.
    pub topics: Vec<ReassignableTopic>,
}

/// A topic of an AlterPartitionReassignments request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignableTopic {
    /// Topic name.
    pub name: String,
    /// Partitions to move.
    pub partitions: Vec<ReassignablePartition>,
}

/// A partition to move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignablePartition {
    /// Partition index.
    pub partition: i32,
    /// The target replica broker ids, preferred leader first; `None` cancels a pending
    /// reassignment.
    pub replicas: Option<Vec<i32>>,
}

/// AlterPartitionReassignments response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionReassignmentsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Echo of the request's flag (v1+; `true` at v0).
    pub allow_replication_factor_change: bool,
    /// Top-level error, or NONE.
    pub error: ErrorCode,
    /// Top-level error message.
    pub error_message: Option<String>,
    /// Per-topic results.
    pub results: Vec<ReassignableTopicResult>,
}

impl Default for AlterPartitionReassignmentsResponse {
    /// Kafka's defaults: the flag is `true`, no error, no results.
    fn default() -> Self {
        AlterPartitionReassignmentsResponse {
            throttle_time_ms: 0,
            allow_replication_factor_change: true,
            error: ErrorCode::NONE,
            error_message: None,
            results: Vec::new(),
        }
    }
}

/// A topic's reassignment results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignableTopicResult {
    /// Topic name.
    pub name: String,
    /// Per-partition results.
    pub partitions: Vec<ReassignablePartitionResult>,
}

/// A partition's reassignment result (NO_REASSIGNMENT_IN_PROGRESS for a cancel with none
/// pending, INVALID_REPLICA_ASSIGNMENT for a bad list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignablePartitionResult {
    /// Partition index.
    pub partition: i32,
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Error message.
    pub error_message: Option<String>,
}

impl AlterPartitionReassignmentsRequest {
    /// `error` at the top level and for every partition.
    pub fn error_response(
        &self,
        error: ErrorCode,
        message: Option<&str>,
    ) -> AlterPartitionReassignmentsResponse {
        let results = (self.topics.iter())
            .map(|t| ReassignableTopicResult {
                name: t.name.clone(),
                partitions: (t.partitions.iter())
                    .map(|p| ReassignablePartitionResult {
                        partition: p.partition,
                        error,
                        error_message: message.map(str::to_owned),
                    })
                    .collect(),
            })
            .collect();
        AlterPartitionReassignmentsResponse {
            throttle_time_ms: 0,
            allow_replication_factor_change: self.allow_replication_factor_change,
            error,
            error_message: message.map(str::to_owned),
            results,
        }
    }
}

// ---------------------------------------------------------------------------------------
// ListPartitionReassignments (key 46)

/// ListPartitionReassignments request (key 46, v0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPartitionReassignmentsRequest {
    /// How long to wait.
    pub timeout_ms: i32,
    /// Partitions to list; `None` = every partition with a reassignment in progress.
    pub topics: Option<Vec<ListPartitionReassignmentsTopic>>,
}

/// A topic and some of its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPartitionReassignmentsTopic {
    /// Topic name.
    pub name: String,
    /// Partition indexes.
    pub partitions: Vec<i32>,
}

/// ListPartitionReassignments response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPartitionReassignmentsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Top-level error, or NONE.
    pub error: ErrorCode,
    /// Top-level error message.
    pub error_message: Option<String>,
    /// Ongoing reassignments, per topic.
    pub topics: Vec<OngoingTopicReassignment>,
}

/// A topic's ongoing reassignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingTopicReassignment {
    /// Topic name.
    pub name: String,
    /// Partitions being moved.
    pub partitions: Vec<OngoingPartitionReassignment>,
}

/// A partition being moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingPartitionReassignment {
    /// Partition index.
    pub partition: i32,
    /// The current replica set (old and new replicas while the move runs).
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding_replicas: Vec<i32>,
    /// Replicas being removed.
    pub removing_replicas: Vec<i32>,
}

impl ListPartitionReassignmentsRequest {
    /// `error` at the top level, nothing listed.
    pub fn error_response(
        &self,
        error: ErrorCode,
        message: Option<&str>,
    ) -> ListPartitionReassignmentsResponse {
        ListPartitionReassignmentsResponse {
            throttle_time_ms: 0,
            error,
            error_message: message.map(str::to_owned),
            topics: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// IncrementalAlterConfigs (key 44) and AlterConfigs (key 33)

/// IncrementalAlterConfigs `operation` values.
pub mod config_operation {
    /// Set the value.
    pub const SET: i8 = 0;
    /// Revert to the default (the value is ignored).
    pub const DELETE: i8 = 1;
    /// Add to a list-valued config.
    pub const APPEND: i8 = 2;
    /// Remove from a list-valued config.
    pub const SUBTRACT: i8 = 3;
}

/// IncrementalAlterConfigs request (key 44, v0-1): per-key changes; keys not named keep
/// their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncrementalAlterConfigsRequest {
    /// Resources to change.
    pub resources: Vec<IncrementalAlterConfigsResource>,
    /// Validate only, change nothing.
    pub validate_only: bool,
}

/// A resource of an IncrementalAlterConfigs request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncrementalAlterConfigsResource {
    /// See [`super::resource_type`].
    pub resource_type: i8,
    /// Topic name, or broker id as a string (empty = cluster-wide broker default).
    pub resource_name: String,
    /// Changes.
    pub configs: Vec<IncrementalAlterableConfig>,
}

/// One config change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncrementalAlterableConfig {
    /// Config key.
    pub name: String,
    /// See [`config_operation`].
    pub operation: i8,
    /// Value (`None` for DELETE).
    pub value: Option<String>,
}

/// IncrementalAlterConfigs response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IncrementalAlterConfigsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Per-resource results.
    pub results: Vec<AlterConfigsResourceResult>,
}

/// AlterConfigs request (key 33, v0-2): replaces each resource's whole set of dynamic
/// configs with `configs` (keys not named revert to their defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterConfigsRequest {
    /// Resources to change.
    pub resources: Vec<AlterConfigsResource>,
    /// Validate only, change nothing.
    pub validate_only: bool,
}

/// A resource of an AlterConfigs request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterConfigsResource {
    /// See [`super::resource_type`].
    pub resource_type: i8,
    /// Topic name, or broker id as a string.
    pub resource_name: String,
    /// The new set: (key, value).
    pub configs: Vec<AlterableConfig>,
}

/// One config of an AlterConfigs request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterableConfig {
    /// Config key.
    pub name: String,
    /// Value.
    pub value: Option<String>,
}

/// AlterConfigs response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlterConfigsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Per-resource results.
    pub results: Vec<AlterConfigsResourceResult>,
}

/// A resource's outcome (both AlterConfigs and IncrementalAlterConfigs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterConfigsResourceResult {
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Error message.
    pub error_message: Option<String>,
    /// Echo.
    pub resource_type: i8,
    /// Echo.
    pub resource_name: String,
}

fn resource_errors<'a>(
    resources: impl Iterator<Item = (i8, &'a str)>,
    error: ErrorCode,
    message: Option<&str>,
) -> Vec<AlterConfigsResourceResult> {
    resources
        .map(|(resource_type, name)| AlterConfigsResourceResult {
            error,
            error_message: message.map(str::to_owned),
            resource_type,
            resource_name: name.to_owned(),
        })
        .collect()
}

impl IncrementalAlterConfigsRequest {
    /// Every resource fails with `error`.
    pub fn error_response(
        &self,
        error: ErrorCode,
        message: Option<&str>,
    ) -> IncrementalAlterConfigsResponse {
        let resources = (self.resources.iter()).map(|r| (r.resource_type, &*r.resource_name));
        IncrementalAlterConfigsResponse {
            throttle_time_ms: 0,
            results: resource_errors(resources, error, message),
        }
    }
}

impl AlterConfigsRequest {
    /// Every resource fails with `error`.
    pub fn error_response(&self, error: ErrorCode, message: Option<&str>) -> AlterConfigsResponse {
        let resources = (self.resources.iter()).map(|r| (r.resource_type, &*r.resource_name));
        AlterConfigsResponse {
            throttle_time_ms: 0,
            results: resource_errors(resources, error, message),
        }
    }
}
