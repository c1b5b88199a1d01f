//! Domain types of the KIP-853 controller-quorum APIs: DescribeQuorum (key 55, v0-2),
//! AddRaftVoter (80, v0) and RemoveRaftVoter (81, v0), the versions kafka-protocol 0.18
//! implements (what Kafka 3.9's and 4.0's `kafka-metadata-quorum.sh` send).
//!
//! Same invariant as the parent module: each type round-trips through the codec at every
//! version that carries all of its fields; a field a version lacks arrives as Kafka's schema
//! default (named on the field). Weir has no metadata log directories, so directory ids are
//! carried but always the nil UUID in what Weir sends.

use uuid::Uuid;

use crate::error::ErrorCode;

/// The metadata topic DescribeQuorum names (Kafka's `__cluster_metadata`, partition 0).
pub const METADATA_TOPIC: &str = "__cluster_metadata";

// ---------------------------------------------------------------------------------------
// DescribeQuorum (key 55)

/// DescribeQuorum request (key 55, v0-2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeQuorumRequest {
    /// Topics and partitions to describe (the Java admin asks for `__cluster_metadata`-0).
    pub topics: Vec<DescribeQuorumTopic>,
}

/// A topic and some of its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeQuorumTopic {
    /// Topic name.
    pub name: String,
    /// Partition indexes.
    pub partitions: Vec<i32>,
}

/// DescribeQuorum response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeQuorumResponse {
    /// Top-level error, or NONE.
    pub error: ErrorCode,
    /// Top-level error message (v2+; `None` before).
    pub error_message: Option<String>,
    /// One entry per topic asked about.
    pub topics: Vec<QuorumTopic>,
    /// Endpoints of the voters (v2+; empty before).
    pub nodes: Vec<QuorumNode>,
}

/// The quorum state of one topic's partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumTopic {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: Vec<QuorumPartition>,
}

/// The quorum state of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumPartition {
    /// Partition index.
    pub partition: i32,
    /// Partition error, or NONE.
    pub error: ErrorCode,
    /// Partition error message (v2+; `None` before).
    pub error_message: Option<String>,
    /// The leader, or -1.
    pub leader_id: i32,
    /// The leader's epoch (Raft term).
    pub leader_epoch: i32,
    /// The quorum's high watermark (commit index).
    pub high_watermark: i64,
    /// The voters and what the leader knows of their logs.
    pub current_voters: Vec<ReplicaState>,
    /// Replicas that follow without voting (Kafka's observers; Weir's learners).
    pub observers: Vec<ReplicaState>,
}

/// What the leader knows of one replica of the metadata log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    /// Node id.
    pub replica_id: i32,
    /// Directory id (v2+; nil before and always nil from Weir).
    pub directory_id: Uuid,
    /// Its log end offset, or -1 when unknown.
    pub log_end_offset: i64,
    /// Leader wall-clock time of its last fetch (v1+; -1 when unknown or before v1).
    pub last_fetch_timestamp: i64,
    /// Leader wall-clock time it was last caught up (v1+; -1 when unknown or before v1).
    pub last_caught_up_timestamp: i64,
}

/// A voter's endpoints (DescribeQuorum v2+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumNode {
    /// Node id.
    pub node_id: i32,
    /// Its listeners.
    pub listeners: Vec<RaftListener>,
}

/// One named endpoint of a controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftListener {
    /// Listener name (`CONTROLLER` for Weir's peer listener).
    pub name: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl DescribeQuorumRequest {
    /// `error` at the top level, nothing described.
    pub fn error_response(
        &self,
        error: ErrorCode,
        message: Option<&str>,
    ) -> DescribeQuorumResponse {
        DescribeQuorumResponse {
            error,
            error_message: message.map(str::to_owned),
            topics: Vec::new(),
            nodes: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// AddRaftVoter (key 80) and RemoveRaftVoter (key 81)

/// AddRaftVoter request (key 80, v0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddRaftVoterRequest {
    /// The cluster id, or `None` to skip the check.
    pub cluster_id: Option<String>,
    /// How long the client waits.
    pub timeout_ms: i32,
    /// The node to make a voter.
    pub voter_id: i32,
    /// Its directory id (ignored by Weir, which has none).
    pub voter_directory_id: Uuid,
    /// Its controller endpoints.
    pub listeners: Vec<RaftListener>,
}

/// RemoveRaftVoter request (key 81, v0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveRaftVoterRequest {
    /// The cluster id, or `None` to skip the check.
    pub cluster_id: Option<String>,
    /// The voter to remove.
    pub voter_id: i32,
    /// Its directory id (ignored by Weir, which has none).
    pub voter_directory_id: Uuid,
}

/// The answer to AddRaftVoter and to RemoveRaftVoter (both carry only an error).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RaftVoterResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// The outcome: NONE once the new voter set is committed.
    pub error: ErrorCode,
    /// Why, for an error.
    pub error_message: Option<String>,
}

impl RaftVoterResponse {
    /// An answer carrying `error` and `message`.
    pub fn error(error: ErrorCode, message: Option<&str>) -> RaftVoterResponse {
        RaftVoterResponse {
            throttle_time_ms: 0,
            error,
            error_message: message.map(str::to_owned),
        }
    }
}
