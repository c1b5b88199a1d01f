//! Domain types of the KIP-848 consumer group protocol: ConsumerGroupHeartbeat (key 68)
//! and ConsumerGroupDescribe (key 69), v0-1.
//!
//! Same invariant as the parent module: each type round-trips through the codec at every
//! version that carries all of its fields (`subscribed_topic_regex` exists from v1 on; at v0
//! it must be `None`). Partitions are named by topic id, as on the wire.

use uuid::Uuid;

use crate::error::ErrorCode;

/// Member epoch a member sends to join (or rejoin after being fenced).
pub const MEMBER_EPOCH_JOIN: i32 = 0;
/// Member epoch a dynamic member sends to leave the group.
pub const MEMBER_EPOCH_LEAVE: i32 = -1;
/// Member epoch a static member sends to leave temporarily (its assignment is kept
/// until its session expires).
pub const MEMBER_EPOCH_LEAVE_STATIC: i32 = -2;

/// Partitions of one topic, by topic id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TopicIdPartitions {
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition indexes.
    pub partitions: Vec<i32>,
}

/// ConsumerGroupHeartbeat request. Optional fields are `None` when unchanged since the
/// previous heartbeat (KIP-848's incremental requests).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerGroupHeartbeatRequest {
    /// Group id.
    pub group_id: String,
    /// Member id: "" for the first join at v0 (the coordinator picks one); at v1 the
    /// client generates it.
    pub member_id: String,
    /// Current member epoch: 0 to join, -1 to leave, -2 static leave.
    pub member_epoch: i32,
    /// Static member id.
    pub instance_id: Option<String>,
    /// Rack id.
    pub rack_id: Option<String>,
    /// Rebalance timeout, -1 when unchanged.
    pub rebalance_timeout_ms: i32,
    /// Subscribed topic names, `None` when unchanged.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// Subscribed topic regex (v1+), `None` when unchanged.
    pub subscribed_topic_regex: Option<String>,
    /// Server-side assignor, `None` = the group's.
    pub server_assignor: Option<String>,
    /// Partitions the member owns, `None` when unchanged.
    pub topic_partitions: Option<Vec<TopicIdPartitions>>,
    /// From the request header (not the body): ConsumerGroupDescribe reports it.
    pub client_id: String,
}

/// ConsumerGroupHeartbeat response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsumerGroupHeartbeatResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Error message.
    pub error_message: Option<String>,
    /// The member id (the one the coordinator chose at v0).
    pub member_id: Option<String>,
    /// The member's epoch.
    pub member_epoch: i32,
    /// How often the member should heartbeat.
    pub heartbeat_interval_ms: i32,
    /// The member's whole current assignment, `None` when unchanged.
    pub assignment: Option<Vec<TopicIdPartitions>>,
}

/// ConsumerGroupDescribe request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescribeRequest {
    /// Group ids.
    pub group_ids: Vec<String>,
    /// Include the group's authorized operations.
    pub include_authorized_operations: bool,
}

/// Partitions of one topic in ConsumerGroupDescribe, by id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedTopicPartitions {
    /// Topic id.
    pub topic_id: Uuid,
    /// Topic name.
    pub topic_name: String,
    /// Partition indexes.
    pub partitions: Vec<i32>,
}

/// A member in ConsumerGroupDescribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescribedMember {
    /// Member id.
    pub member_id: String,
    /// Static member id.
    pub instance_id: Option<String>,
    /// Rack id.
    pub rack_id: Option<String>,
    /// Current member epoch.
    pub member_epoch: i32,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Subscribed topic names.
    pub subscribed_topic_names: Vec<String>,
    /// Subscribed regex.
    pub subscribed_topic_regex: Option<String>,
    /// Current assignment.
    pub assignment: Vec<DescribedTopicPartitions>,
    /// Target assignment.
    pub target_assignment: Vec<DescribedTopicPartitions>,
    /// v1+: 0 = consumer protocol, 1 = classic, -1 unknown (v0 decodes as -1).
    pub member_type: i8,
}

/// A group in ConsumerGroupDescribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescribedGroup {
    /// Error, or NONE.
    pub error: ErrorCode,
    /// Error message.
    pub error_message: Option<String>,
    /// Group id.
    pub group_id: String,
    /// "Empty", "Assigning", "Reconciling", "Stable", "Dead".
    pub group_state: String,
    /// Group epoch.
    pub group_epoch: i32,
    /// Target assignment epoch.
    pub assignment_epoch: i32,
    /// Selected server-side assignor.
    pub assignor_name: String,
    /// Members.
    pub members: Vec<ConsumerGroupDescribedMember>,
    /// Authorized operations bit set, i32::MIN when not requested.
    pub authorized_operations: i32,
}

/// ConsumerGroupDescribe response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerGroupDescribeResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// One per requested group.
    pub groups: Vec<ConsumerGroupDescribedGroup>,
}
