//! The group coordinator (classic protocol): membership, rebalances and committed offsets of
//! consumer groups, as a sans-IO state machine the [`crate::Node`] drives.
//!
//! A group moves through Kafka's states: `Empty` -> `PreparingRebalance` (members (re)join;
//! JoinGroup requests are parked) -> `CompletingRebalance` (join answered, the leader's
//! SyncGroup carries the assignment; SyncGroup requests are parked) -> `Stable`. A member
//! that stops heartbeating for `session_timeout_ms` is removed and the group rebalances; a
//! rebalance that outlives the members' `rebalance_timeout_ms` removes the laggards.
//!
//! ```text
//!   Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance
//!     ▲                ▲   │ (no member left)                        │ leader's SyncGroup,
//!     │                │   └────────────▶ Empty                      │ record durable
//!     │                └── join, leave, expiry, write failure ◀──────┤
//!     └──────── last member gone ◀──── Stable ◀──────────────────────┘
//! ```
//!
//! Kafka's `Dead` is a group that is gone: here it is simply absent from the map (and
//! DescribeGroups reports an unknown group as Dead). Each completed join phase starts a new
//! generation; every request names its generation, so a member of an older one is told
//! ILLEGAL_GENERATION instead of acting on an assignment it no longer holds. That is what
//! keeps two members from consuming one partition: the old owner's commits and heartbeats
//! are refused as soon as the new generation exists. KIP-345 (static membership) lets a
//! member keep its place across restarts by instance id; KIP-394 hands a new member its id
//! before it joins. KIP-848 groups (the `consumer` protocol) run their own state machine in
//! [`consumer_group`]; a group holds one kind of member at a time.
//!
//! The coordinator answers requests into its own queue ([`GroupCoordinator::take_responses`]);
//! the node moves them to its outputs. Offsets are decided here but written by the node
//! (`__consumer_offsets`, see [`offsets_log`]); the coordinator only keeps the latest value
//! per partition in memory.
//!
//! Membership survives a coordinator move or restart as in Kafka: a classic group's metadata
//! (generation, protocol, leader, members with subscriptions and assignments) is a record of
//! `__consumer_offsets` ([`MetadataWrite`], written by the node). The leader's SyncGroup
//! parks every member's SyncGroup until the record of the new generation is durable (and,
//! in a cluster, replicated: [`GroupCoordinator::metadata_write_done`]); only then is the
//! group Stable and the assignment handed out, so no member holds an assignment the next
//! coordinator would not know. A group that becomes Empty writes an Empty record, one that
//! is dropped a tombstone. Replaying a record ([`GroupCoordinator::replay_record`]) rebuilds
//! the group Stable (or Empty) with its members and no parked request.
//!
//! A group is *coordinated* when this node is its coordinator. Replayed groups are not
//! (a follower of the group's offsets partition, or a node still recovering): they run no
//! timers. [`GroupCoordinator::take_over`] makes them coordinated and gives every member a
//! full session from that moment to find the new coordinator;
//! [`GroupCoordinator::resign`] answers parked requests NOT_COORDINATOR, disarms timers and
//! puts each group back to what its last record says.
//!
//! What a failure does at each step (the reason for the order above):
//! - crash or move in `PreparingRebalance` / `CompletingRebalance` before the record: the
//!   next coordinator loads the previous generation's record; members' JoinGroup/SyncGroup
//!   fail with NOT_COORDINATOR, they find the new coordinator and rejoin. The lost
//!   generation's number may be handed out again, but no assignment was ever given under
//!   it (assignments leave only after the record), so nothing can be consumed or
//!   committed twice under one number;
//! - crash after the record, before the SyncGroup answers: the record says Stable with the
//!   new assignment; members that did not receive it rejoin, which starts a new generation,
//!   so nobody consumes under an assignment that was not durable;
//! - a committed offset is answered after its record is durable, so it survives both.
//!
//! Every request gets exactly one answer: a parked JoinGroup or SyncGroup is answered when
//! its phase ends, when a newer request of the same member replaces it (REBALANCE_IN_PROGRESS),
//! when its member is removed or fenced, or when the node resigns (NOT_COORDINATOR); a
//! closed connection's parked requests are dropped unanswered.
//!
//! Invariants (checked by [`GroupCoordinator::invariants`]):
//! - every armed timer appears once in the ordered deadline set and once in its group's
//!   `armed` map, and nothing else is in the set;
//! - a parked JoinGroup exists only in `PreparingRebalance`/`CompletingRebalance` handoff, a
//!   parked SyncGroup only in `CompletingRebalance`;
//! - a static instance id maps to exactly one member, which carries that id;
//! - the leader, when set, is a member; a group with members has a protocol type;
//! - groups, members per group and offsets per group stay within their `*_MAX` bounds;
//! - a group that is not coordinated has no timer, no parked request, no pending member and
//!   no pending assignment, and is Empty or Stable;
//! - a pending assignment (the leader's, waiting for its record) exists only in
//!   `CompletingRebalance`;
//! - an Empty group has no member; a `CompletingRebalance` or `Stable` group has members, a
//!   leader, a selected protocol and a generation >= 1 (a SyncGroup answer hands out an
//!   assignment only in `Stable`, after its record is durable).
//!
//! Member ids are `client_id + "-" + counter` (the counter is the coordinator's), so runs
//! are deterministic; Kafka uses a UUID suffix, which clients treat as opaque either way.

pub mod consumer_group;
pub mod consumer_protocol;
pub mod offsets_log;
pub mod txn_offsets;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use weir_wire::domain::{
    ApiResponse, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    DescribedGroup, DescribedMember, HeartbeatRequest, HeartbeatResponse, JoinGroupMember,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, LeftMember,
    ListGroupsRequest, ListGroupsResponse, ListedGroup, OffsetFetchGroup, OffsetFetchGroupResponse,
    OffsetFetchPartition, OffsetFetchTopic, SyncGroupRequest, SyncGroupResponse,
};
use weir_wire::error::ErrorCode;

use self::offsets_log::{GroupMetadata, MemberMetadata, OffsetsTopicRecord};
use crate::event::RequestId;
use crate::time::{Instant, Now};

/// Bound on groups per node (offset-only groups included).
pub const GROUPS_MAX: usize = 100_000;
/// Bound on members per group (Kafka's `group.max.size` is unbounded by default; a bound
/// keeps one runaway client from growing the coordinator without limit).
pub const GROUP_MEMBERS_MAX: usize = 1_000;
/// Bound on members waiting to rejoin with an id from MEMBER_ID_REQUIRED, per group.
pub const GROUP_PENDING_MEMBERS_MAX: usize = 1_000;
/// Bound on committed offsets per group.
pub const GROUP_OFFSETS_MAX: usize = 1_000_000;
/// Kafka's `offset.metadata.max.bytes`.
pub const OFFSET_METADATA_BYTES_MAX: usize = 4_096;
/// Bound on a group id's length (Kafka has none; ids land in record keys).
pub const GROUP_ID_BYTES_MAX: usize = 32_767;

/// Kafka's group states, named as DescribeGroups and ListGroups report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupState {
    /// No members (offsets may exist).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Assignment handed out; members heartbeat.
    Stable,
}

impl GroupState {
    /// Kafka's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

/// Group coordinator settings (from the node config).
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms` (KIP-848 groups).
    pub consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.session.timeout.ms` (KIP-848 groups).
    pub consumer_session_timeout_ms: i32,
}

/// A committed offset as kept in memory and in `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// Next offset to consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record, -1 if unknown.
    pub leader_epoch: i32,
    /// Client metadata ("" when none was given).
    pub metadata: String,
    /// Broker wall clock at commit (ms).
    pub commit_timestamp: i64,
}

/// One member of a group.
#[derive(Debug, Clone)]
struct Member {
    /// Static membership (KIP-345): the id the member keeps across restarts.
    group_instance_id: Option<String>,
    /// For DescribeGroups and the metadata record; also the prefix of the member id.
    client_id: String,
    client_host: String,
    /// How long the member may go without a heartbeat (or a parked request).
    session_timeout_ms: i32,
    /// How long a rebalance waits for the member to rejoin; at least its session timeout,
    /// so a member that heartbeats in time is never dropped by a rebalance.
    rebalance_timeout_ms: i32,
    /// Supported protocols, preferred first.
    protocols: Vec<(String, Bytes)>,
    /// Assignment from the last completed sync.
    assignment: Bytes,
    /// Parked JoinGroup. At most one: a newer one answers the older REBALANCE_IN_PROGRESS,
    /// so every request gets exactly one answer.
    awaiting_join: Option<RequestId>,
    /// Parked SyncGroup (same rule).
    awaiting_sync: Option<RequestId>,
}

impl Member {
    /// The member's subscription for `protocol` (what the leader's assignor reads); empty
    /// when it does not support it, which `supports` keeps from happening for the selected
    /// protocol.
    fn metadata_for(&self, protocol: &str) -> Bytes {
        (self.protocols.iter())
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    /// A rejoin with the same protocols and metadata changes nothing the leader would
    /// assign from, so a Stable group need not rebalance for it.
    fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }
}

/// What a timer is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// A member's session (no heartbeat within its session timeout).
    Session(String),
    /// A member id handed out with MEMBER_ID_REQUIRED and not yet used.
    Pending(String),
    /// The join phase: check whether it can complete (initial delay, rebalance timeout).
    Join,
    /// The sync phase outlived the rebalance timeout.
    Sync,
    /// A consumer-protocol member's session (KIP-848).
    ConsumerSession(String),
    /// A consumer-protocol member did not revoke within its rebalance timeout.
    ConsumerRevoke(String),
}

/// A group metadata record for the node to append to the group's `__consumer_offsets`
/// partition (the same append path as offset commits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataWrite {
    /// The group.
    pub group_id: String,
    /// The record's value; `None` is a tombstone (the group is gone).
    pub record: Option<GroupMetadata>,
    /// Set when the write carries a rebalance's assignment: the group's SyncGroup answers
    /// wait for it, and the node reports its outcome with
    /// [`GroupCoordinator::metadata_write_done`] for this generation.
    pub completes_generation: Option<i32>,
}

/// One group.
#[derive(Debug, Clone)]
struct Group {
    state: GroupState,
    /// "consumer", "connect", ...: set by the first member; later members must match.
    protocol_type: Option<String>,
    /// The protocol (assignor) selected at the last join phase; `None` when Empty.
    protocol_name: Option<String>,
    /// Bumped at every completed join phase; what every request is checked against.
    generation_id: i32,
    /// The member that computes the assignment (client-side, in the classic protocol).
    leader_id: Option<String>,
    /// By member id (a BTreeMap, so the default leader and every listing are deterministic).
    members: BTreeMap<String, Member>,
    /// Static membership: instance id -> member id.
    static_members: BTreeMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED.
    pending_members: BTreeSet<String>,
    /// The join phase may not complete before this (initial rebalance delay).
    join_not_before: Instant,
    /// The join phase completes at the latest here (rebalance timeout).
    join_deadline: Instant,
    /// Timers of this group and when they fire.
    armed: BTreeMap<Timer, Instant>,
    /// Latest committed offset per (topic, partition); kept even while the group is Empty,
    /// since that is how a consumer group resumes where it stopped.
    offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// KIP-848 state when this is a consumer-protocol group (then `members` is empty).
    consumer: Option<Box<consumer_group::ConsumerGroup>>,
    /// This node coordinates the group (see the module doc).
    coordinated: bool,
    /// The group's latest metadata record in `__consumer_offsets` (appended or replayed),
    /// what another coordinator would load; `None` when there is none (or a tombstone).
    persisted: Option<Box<GroupMetadata>>,
    /// The leader's assignment, waiting for its record to become durable.
    pending_assignment: Option<BTreeMap<String, Bytes>>,
}

impl Group {
    fn new(now: Instant, coordinated: bool) -> Group {
        Group {
            state: GroupState::Empty,
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_members: BTreeSet::new(),
            join_not_before: now,
            join_deadline: now,
            armed: BTreeMap::new(),
            offsets: BTreeMap::new(),
            consumer: None,
            coordinated,
            persisted: None,
            pending_assignment: None,
        }
    }

    /// Protocols every member supports (in the first member's order of preference). A
    /// joiner must support one of them (`supports`), so the set never becomes empty while
    /// the group has members.
    fn candidate_protocols(&self) -> Vec<String> {
        let mut members = self.members.values();
        let Some(first) = members.next() else {
            return Vec::new();
        };
        let mut candidates: Vec<String> = first.protocols.iter().map(|p| p.0.clone()).collect();
        for member in members {
            candidates.retain(|name| member.protocols.iter().any(|p| &p.0 == name));
        }
        candidates
    }

    /// Can a member with `protocols` of `protocol_type` join?
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let candidates = self.candidate_protocols();
        protocols.iter().any(|(name, _)| candidates.contains(name))
    }

    /// Kafka's selection: each member votes for its most preferred protocol among those all
    /// members support; the most votes wins, ties going to the earlier candidate.
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            let vote = (member.protocols.iter()).find(|p| candidates.contains(&p.0));
            if let Some((name, _)) = vote {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for name in &candidates {
            let count = votes.get(name.as_str()).copied().unwrap_or(0);
            if best.is_none_or(|(_, best_count)| count > best_count) {
                best = Some((name.as_str(), count));
            }
        }
        best.map(|(name, _)| name.to_string())
    }

    /// Consumer-protocol members, if any.
    fn has_consumer_members(&self) -> bool {
        self.consumer
            .as_ref()
            .is_some_and(|c| !c.members.is_empty())
    }

    /// The join phase may end early: every member rejoined and no handed-out id is still
    /// expected to join.
    fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    /// The longest rebalance timeout of the members: the join phase waits for the slowest
    /// one, as in Kafka.
    fn rebalance_timeout_ms(&self) -> u64 {
        let max = self.members.values().map(|m| m.rebalance_timeout_ms).max();
        u64::try_from(max.unwrap_or(0)).unwrap_or(0)
    }

    /// The group's metadata record: its members with `assignments` (their current ones
    /// when `None`); an Empty group's has no protocol, leader or member.
    fn metadata(
        &self,
        wall_ms: i64,
        assignments: Option<&BTreeMap<String, Bytes>>,
    ) -> GroupMetadata {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = (self.members.iter())
            .map(|(member_id, m)| MemberMetadata {
                member_id: member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                subscription: m.metadata_for(&protocol),
                assignment: match assignments {
                    Some(assignments) => assignments.get(member_id).cloned().unwrap_or_default(),
                    None => m.assignment.clone(),
                },
            })
            .collect();
        GroupMetadata {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation_id: self.generation_id,
            protocol_name: self.protocol_name.clone(),
            leader_id: self.leader_id.clone(),
            current_state_timestamp: wall_ms,
            members,
        }
    }

    /// Nothing left to remember: Empty, no offsets, no pending member, no KIP-848 member.
    /// Such a group is dropped (Kafka's Dead), which keeps `groups` bounded by live use.
    fn is_unused(&self) -> bool {
        self.state == GroupState::Empty
            && self.offsets.is_empty()
            && self.pending_members.is_empty()
            && !self.has_consumer_members()
    }
}

/// Result of validating an OffsetCommit against the group's membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitCheck {
    /// Commit; the group exists (or is created offsets-only).
    Accept,
    /// Refuse every partition with this error.
    Refuse(ErrorCode),
}

/// Settings for unit tests: no first-rebalance delay, Kafka's session bounds.
#[cfg(test)]
pub(crate) fn test_config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: 0,
        min_session_timeout_ms: 1_000,
        max_session_timeout_ms: 60_000,
        consumer_heartbeat_interval_ms: 5_000,
        consumer_session_timeout_ms: 45_000,
    }
}

/// The coordinator of every group on this node.
#[derive(Debug)]
pub struct GroupCoordinator {
    config: GroupConfig,
    /// Every group this node knows: the ones it coordinates and the replayed copies of the
    /// others (see the module doc).
    groups: BTreeMap<String, Group>,
    /// Every armed timer of every group, ordered by deadline: `next_deadline` is its first,
    /// and firing pops from the front. Mirrored by each group's `armed` map.
    timers: BTreeSet<(Instant, String, Timer)>,
    /// Counter behind member ids; only grows (see `new_member_id`).
    next_member_seq: u64,
    /// Answers for the node, in the order the requests were decided.
    responses: Vec<(RequestId, ApiResponse)>,
    /// Group metadata records for the node to write, in order.
    writes: Vec<MetadataWrite>,
    /// Offsets of open transactions, applied or dropped by their markers.
    txn_offsets: txn_offsets::TxnOffsets,
}

impl GroupCoordinator {
    /// A coordinator without groups.
    pub fn new(config: GroupConfig) -> GroupCoordinator {
        GroupCoordinator {
            config,
            groups: BTreeMap::new(),
            timers: BTreeSet::new(),
            next_member_seq: 0,
            responses: Vec::new(),
            writes: Vec::new(),
            txn_offsets: txn_offsets::TxnOffsets::default(),
        }
    }

    /// Responses produced since the last call, in order.
    pub fn take_responses(&mut self) -> Vec<(RequestId, ApiResponse)> {
        std::mem::take(&mut self.responses)
    }

    /// Group metadata records to write since the last call, in order. The node appends each
    /// and reports it with [`GroupCoordinator::metadata_appended`] (or, for a write that
    /// completes a generation and could not be appended, `metadata_write_done` with the
    /// error).
    pub fn take_metadata_writes(&mut self) -> Vec<MetadataWrite> {
        std::mem::take(&mut self.writes)
    }

    /// True when answers or records wait to be taken (the node drains both after every
    /// input, so this is false between inputs).
    pub fn has_outputs(&self) -> bool {
        !self.responses.is_empty() || !self.writes.is_empty()
    }

    /// Earliest armed timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _, _)| *at)
    }

    /// Fire every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Now) {
        // Deadline order; ties fall to (group id, timer) order, so every run fires alike.
        while let Some((at, _, _)) = self.timers.first() {
            if *at > now.instant {
                break;
            }
            let Some((at, group_id, timer)) = self.timers.pop_first() else {
                break;
            };
            assert!(at <= now.instant, "timer fired early");
            // The set and each group's `armed` map change together (arm, disarm,
            // remove_group), so a timer in the set belongs to a live group.
            let group = self.groups.get_mut(&group_id);
            let armed = group.and_then(|g| g.armed.remove(&timer));
            assert_eq!(armed, Some(at), "group {group_id} timer {timer:?}");
            self.fire(now, &group_id, timer);
        }
    }

    /// Forget the parked requests of a closed connection (members stay until their
    /// session expires, as in Kafka). Nothing is answered: the connection is gone. A member
    /// without a parked request is judged by its session timer again, so a client that
    /// vanished mid-rebalance is dropped after one session instead of holding the group.
    pub fn handle_disconnect(&mut self, conn: u64) {
        // Only requests parked by this connection go: a member that reconnected may have
        // parked a newer request on another one, and that one must still be answered.
        for group in self.groups.values_mut() {
            for member in group.members.values_mut() {
                if member
                    .awaiting_join
                    .is_some_and(|id| id.conn() == Some(conn))
                {
                    member.awaiting_join = None;
                }
                if member
                    .awaiting_sync
                    .is_some_and(|id| id.conn() == Some(conn))
                {
                    member.awaiting_sync = None;
                }
            }
        }
    }

    // ---- JoinGroup -----------------------------------------------------------------

    /// JoinGroup: answered now (errors, MEMBER_ID_REQUIRED, a rejoin without change) or
    /// parked until the join phase completes.
    pub fn join_group(&mut self, now: Now, id: RequestId, request: JoinGroupRequest) {
        if let Err(error) = self.check_join(&request) {
            self.answer_join_error(id, error, &request.member_id);
            return;
        }
        let group_id = request.group_id.clone();
        // A classic group comes into being with its first JoinGroup. At the bound the answer
        // is retriable (COORDINATOR_NOT_AVAILABLE): the client backs off and asks again.
        if !self.groups.contains_key(&group_id) {
            if self.groups.len() >= GROUPS_MAX {
                self.answer_join_error(id, ErrorCode::COORDINATOR_NOT_AVAILABLE, "");
                return;
            }
            self.groups
                .insert(group_id.clone(), Group::new(now.instant, true));
            assert!(
                self.groups.len() <= GROUPS_MAX,
                "groups={}",
                self.groups.len()
            );
        }
        let group = self.groups.get_mut(&group_id).expect("group exists");
        // A replayed copy only mirrors the log; joining it would fork the group's history
        // from what its real coordinator writes.
        if !group.coordinated {
            self.answer_join_error(id, ErrorCode::NOT_COORDINATOR, &request.member_id);
            return;
        }
        // KIP-848 mixing: a consumer group with members refuses classic joins (Kafka 4.0
        // with migration disabled); an empty one becomes classic again, keeping offsets.
        // The two protocols cannot share a generation: a classic member would be assigned
        // partitions the KIP-848 members already own.
        if group.has_consumer_members() {
            self.answer_join_error(
                id,
                ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                &request.member_id,
            );
            return;
        }
        // Dropping an empty KIP-848 part here loses nothing: offsets live on `Group`.
        group.consumer = None;
        let group = self.groups.get(&group_id).expect("group exists");
        let protocols: Vec<(String, Bytes)> = (request.protocols.iter())
            .map(|p| (p.name.clone(), p.metadata.clone()))
            .collect();
        if !group.supports(&request.protocol_type, &protocols) {
            self.answer_join_error(
                id,
                ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                &request.member_id,
            );
            return;
        }
        // No member id: the client has none yet (first join, or a static member restarting).
        // Any other id must be one this coordinator handed out (a member or a KIP-394 id).
        if request.member_id.is_empty() {
            self.join_unknown_member(now, id, request, protocols);
        } else {
            self.join_known_member(now, id, request, protocols);
        }
    }

    /// The checks that need no group: id, session timeout within the broker's bounds (a
    /// session shorter than the minimum would expire between heartbeats), a protocol.
    fn check_join(&self, request: &JoinGroupRequest) -> Result<(), ErrorCode> {
        if request.group_id.is_empty() || request.group_id.len() > GROUP_ID_BYTES_MAX {
            return Err(ErrorCode::INVALID_GROUP_ID);
        }
        let session = request.session_timeout_ms;
        if session < self.config.min_session_timeout_ms
            || session > self.config.max_session_timeout_ms
        {
            return Err(ErrorCode::INVALID_SESSION_TIMEOUT);
        }
        // With no protocol there is nothing to vote for (`select_protocol`): no group could
        // take the member.
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return Err(ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
        }
        Ok(())
    }

    /// A JoinGroup refusal. The member id is echoed: MEMBER_ID_REQUIRED carries the new id,
    /// and other errors let the client tell which of its members was refused.
    fn answer_join_error(&mut self, id: RequestId, error: ErrorCode, member_id: &str) {
        let response = JoinGroupResponse {
            error,
            generation_id: -1,
            protocol_name: None,
            member_id: member_id.to_string(),
            ..JoinGroupResponse::default()
        };
        self.responses.push((id, ApiResponse::JoinGroup(response)));
    }

    fn new_member_id(&mut self, client_id: &str) -> String {
        // Ids must never repeat: a reused id would let a departed member's requests pass
        // for a live one's. The counter also skips past ids replayed from records.
        self.next_member_seq = (self.next_member_seq.checked_add(1)).expect("u64 ids last");
        format!("{client_id}-{}", self.next_member_seq)
    }

    /// A JoinGroup without a member id: a static member returning (it takes over its old
    /// place), a client asked to come back with an id (KIP-394), or a plain new member.
    fn join_unknown_member(
        &mut self,
        now: Now,
        id: RequestId,
        request: JoinGroupRequest,
        protocols: Vec<(String, Bytes)>,
    ) {
        let group_id = request.group_id.clone();
        // Drawn before any check: a refusal below burns a counter value, which costs nothing,
        // since ids must be unique, not dense.
        let member_id = self.new_member_id(&request.client_id);
        let group = self.groups.get_mut(&group_id).expect("group exists");
        // A static member skips the MEMBER_ID_REQUIRED round trip (as in Kafka): its instance
        // id already names it, so a retried join cannot leave a ghost member behind.
        if let Some(instance_id) = &request.group_instance_id {
            if let Some(old_member_id) = group.static_members.get(instance_id).cloned() {
                self.replace_static_member(now, id, request, protocols, old_member_id, member_id);
                return;
            }
        } else if request.member_id_required {
            // KIP-394: hand out the id first, so a client that times out on its JoinGroup
            // and retries does not leave a ghost member behind.
            if group.pending_members.len() >= GROUP_PENDING_MEMBERS_MAX {
                self.answer_join_error(id, ErrorCode::GROUP_MAX_SIZE_REACHED, "");
                return;
            }
            let fresh = group.pending_members.insert(member_id.clone());
            assert!(fresh, "member id {member_id} handed out twice");
            let session_ms = u64::try_from(request.session_timeout_ms).unwrap_or(0);
            // The id lapses after one session: a client that never comes back must not hold up
            // the join phase, which waits for every pending id (`all_members_joined`).
            let at = now.instant.add_ms(session_ms);
            self.arm(&group_id, Timer::Pending(member_id.clone()), at);
            self.answer_join_error(id, ErrorCode::MEMBER_ID_REQUIRED, &member_id);
            return;
        }
        self.add_member_and_rebalance(now, id, request, protocols, member_id);
    }

    /// A JoinGroup naming a member id: a pending id being used, or a member rejoining. A
    /// rejoin that changes nothing is answered from the current generation; any other one
    /// starts (or joins) a rebalance.
    fn join_known_member(
        &mut self,
        now: Now,
        id: RequestId,
        request: JoinGroupRequest,
        protocols: Vec<(String, Bytes)>,
    ) {
        let group_id = request.group_id.clone();
        let member_id = request.member_id.clone();
        let group = self.groups.get_mut(&group_id).expect("group exists");
        // KIP-394's second step: the id handed out with MEMBER_ID_REQUIRED comes back, and
        // only now does its client become a member.
        if group.pending_members.remove(&member_id) {
            self.disarm(&group_id, &Timer::Pending(member_id.clone()));
            self.add_member_and_rebalance(now, id, request, protocols, member_id);
            return;
        }
        // Fencing before the member lookup: a zombie incarnation must get FENCED_INSTANCE_ID
        // (stop), not UNKNOWN_MEMBER_ID, which would make it rejoin and fence the live one.
        if let Err(error) = check_static(group, &member_id, request.group_instance_id.as_deref()) {
            self.answer_join_error(id, error, &member_id);
            return;
        }
        let Some(member) = group.members.get(&member_id) else {
            self.answer_join_error(id, ErrorCode::UNKNOWN_MEMBER_ID, &member_id);
            return;
        };
        let unchanged = member.same_protocols(&protocols);
        let is_leader = group.leader_id.as_deref() == Some(member_id.as_str());
        match group.state {
            // Already rebalancing: park the rejoin in this phase; it may be the last one awaited.
            GroupState::PreparingRebalance => {
                self.update_member(now, id, &group_id, &member_id, &request, protocols);
                self.try_complete_join(now, &group_id);
            }
            // A member that lost its JoinGroup answer rejoins unchanged: give it again.
            GroupState::CompletingRebalance if unchanged => {
                self.touch_session(now, &group_id, &member_id);
                let response = self.join_response(&group_id, &member_id, false);
                self.responses.push((id, ApiResponse::JoinGroup(response)));
            }
            // A follower rejoining unchanged gets the current generation back. A leader's rejoin
            // always rebalances: in Kafka that is how the leader asks to assign again (e.g. after
            // it saw new partitions of the subscribed topics).
            GroupState::Stable if unchanged && !is_leader => {
                self.touch_session(now, &group_id, &member_id);
                let response = self.join_response(&group_id, &member_id, false);
                self.responses.push((id, ApiResponse::JoinGroup(response)));
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member(now, id, &group_id, &member_id, &request, protocols);
                self.prepare_rebalance(now, &group_id);
            }
            // An Empty group has no member, so the lookup above has already refused this id.
            GroupState::Empty => {
                self.answer_join_error(id, ErrorCode::UNKNOWN_MEMBER_ID, &member_id);
            }
        }
    }

    /// Add a member, parked on its JoinGroup, and start or advance the join phase.
    fn add_member_and_rebalance(
        &mut self,
        now: Now,
        id: RequestId,
        request: JoinGroupRequest,
        protocols: Vec<(String, Bytes)>,
        member_id: String,
    ) {
        let group_id = request.group_id.clone();
        let group = self.groups.get_mut(&group_id).expect("group exists");
        assert!(
            group.coordinated,
            "group {group_id}: join on a non-coordinator"
        );
        assert!(
            !group.members.contains_key(&member_id),
            "group {group_id}: {member_id} added twice"
        );
        // Checked before any change, so a refused join leaves no static mapping and no
        // session timer behind.
        if group.members.len() >= GROUP_MEMBERS_MAX {
            self.answer_join_error(id, ErrorCode::GROUP_MAX_SIZE_REACHED, "");
            return;
        }
        // The first member fixes the protocol type; `supports` holds every later one to it.
        if group.members.is_empty() {
            group.protocol_type = Some(request.protocol_type.clone());
        }
        // Mapped by instance id, so the instance's next restart (a join without a member id)
        // finds this place in `join_unknown_member`.
        if let Some(instance_id) = &request.group_instance_id {
            group
                .static_members
                .insert(instance_id.clone(), member_id.clone());
        }
        let member = Member {
            group_instance_id: request.group_instance_id.clone(),
            client_id: request.client_id.clone(),
            client_host: request.client_host.clone(),
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: request.rebalance_timeout_ms.max(request.session_timeout_ms),
            protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(id),
            awaiting_sync: None,
        };
        group.members.insert(member_id.clone(), member);
        // The session runs from the join; `fire` renews it while the join stays parked.
        self.touch_session(now, &group_id, &member_id);
        let group = self.groups.get_mut(&group_id).expect("group exists");
        if group.state == GroupState::PreparingRebalance {
            // A newcomer during the initial delay buys the others a little more time.
            if group.join_not_before > now.instant {
                let extended = now
                    .instant
                    .add_ms(self.config.initial_rebalance_delay_ms)
                    .min(group.join_deadline);
                group.join_not_before = extended;
                self.arm(&group_id, Timer::Join, extended);
            }
            self.try_complete_join(now, &group_id);
        } else {
            // Empty, CompletingRebalance or Stable: a newcomer always needs a new generation,
            // since only the leader's next assignment can give it partitions.
            self.prepare_rebalance(now, &group_id);
        }
    }

    /// Static member rejoining with an unknown member id: it takes over the old member's
    /// place under a new id; the old id is fenced.
    fn replace_static_member(
        &mut self,
        now: Now,
        id: RequestId,
        request: JoinGroupRequest,
        protocols: Vec<(String, Bytes)>,
        old_member_id: String,
        new_member_id: String,
    ) {
        let group_id = request.group_id.clone();
        let group = self.groups.get_mut(&group_id).expect("group exists");
        assert_ne!(
            old_member_id, new_member_id,
            "group {group_id}: fresh id reused"
        );
        let Some(mut member) = group.members.remove(&old_member_id) else {
            // The mapping always names a member (invariant); treat a miss as a new member.
            self.add_member_and_rebalance(now, id, request, protocols, new_member_id);
            return;
        };
        // The old incarnation's parked requests learn they were fenced.
        let fenced_join = member.awaiting_join.take();
        let fenced_sync = member.awaiting_sync.take();
        let unchanged = member.same_protocols(&protocols);
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms.max(request.session_timeout_ms);
        member.protocols = protocols;
        group.members.insert(new_member_id.clone(), member);
        if let Some(instance_id) = &request.group_instance_id {
            (group.static_members).insert(instance_id.clone(), new_member_id.clone());
        }
        // The leader role follows the instance; otherwise `leader_id` would name an id that
        // is no longer a member (see `invariants`).
        let was_leader = group.leader_id.as_deref() == Some(old_member_id.as_str());
        if was_leader {
            group.leader_id = Some(new_member_id.clone());
        }
        let state = group.state;
        if let Some(join) = fenced_join {
            self.answer_join_error(join, ErrorCode::FENCED_INSTANCE_ID, &old_member_id);
        }
        if let Some(sync) = fenced_sync {
            self.answer_sync(sync, &group_id, ErrorCode::FENCED_INSTANCE_ID, Bytes::new());
        }
        // The old id's session timer would otherwise stay armed for an id no member has.
        self.disarm(&group_id, &Timer::Session(old_member_id));
        self.touch_session(now, &group_id, &new_member_id);
        match state {
            // Same subscription, stable group: no rebalance (KIP-345). The leader learns the
            // members but must not reassign (v9 skip_assignment; older leaders' SyncGroup in
            // Stable just gets their stored assignment back).
            GroupState::Stable if unchanged => {
                // The record names members by id: the next coordinator must know the new
                // one (Kafka writes the group here too). Not waited for: a member the next
                // coordinator does not know rejoins by its instance id, keeping its place.
                self.persist(now, &group_id, None, None);
                let response = self.join_response(&group_id, &new_member_id, was_leader);
                self.responses.push((id, ApiResponse::JoinGroup(response)));
            }
            GroupState::PreparingRebalance => {
                let group = self.groups.get_mut(&group_id).expect("group exists");
                if let Some(member) = group.members.get_mut(&new_member_id) {
                    member.awaiting_join = Some(id);
                }
                self.try_complete_join(now, &group_id);
            }
            // Stable with new protocols, or CompletingRebalance (the leader was handed the old
            // id): assign again. Empty cannot occur, since a mapped instance is a member.
            _ => {
                let group = self.groups.get_mut(&group_id).expect("group exists");
                if let Some(member) = group.members.get_mut(&new_member_id) {
                    member.awaiting_join = Some(id);
                }
                self.prepare_rebalance(now, &group_id);
            }
        }
    }

    /// A member's rejoin during or into a rebalance: its JoinGroup is parked with its new
    /// protocols and timeouts.
    fn update_member(
        &mut self,
        now: Now,
        id: RequestId,
        group_id: &str,
        member_id: &str,
        request: &JoinGroupRequest,
        protocols: Vec<(String, Bytes)>,
    ) {
        let group = self.groups.get_mut(group_id).expect("group exists");
        let Some(member) = group.members.get_mut(member_id) else {
            return;
        };
        // Only a rebalance parks joins; a Stable group's join first enters one.
        assert!(
            matches!(
                group.state,
                GroupState::PreparingRebalance
                    | GroupState::CompletingRebalance
                    | GroupState::Stable
            ),
            "group {group_id} update in {:?}",
            group.state
        );
        let replaced = member.awaiting_join.replace(id);
        member.protocols = protocols;
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms.max(request.session_timeout_ms);
        if let Some(old) = replaced {
            // Every request is answered once: the superseded join learns to retry.
            let response = JoinGroupResponse {
                error: ErrorCode::REBALANCE_IN_PROGRESS,
                generation_id: -1,
                member_id: member_id.to_string(),
                ..JoinGroupResponse::default()
            };
            self.responses.push((old, ApiResponse::JoinGroup(response)));
        }
        self.touch_session(now, group_id, member_id);
    }

    /// Enter PreparingRebalance: pending syncs are told to rejoin, the join phase is armed.
    fn prepare_rebalance(&mut self, now: Now, group_id: &str) {
        let delay_ms = self.config.initial_rebalance_delay_ms;
        let group = self.groups.get_mut(group_id).expect("group exists");
        let was_empty = group.state == GroupState::Empty;
        // A rebalance abandons an assignment still being written.
        group.pending_assignment = None;
        // Parked SyncGroups belong to the generation being abandoned: they are answered
        // REBALANCE_IN_PROGRESS (below) and their members rejoin into the new phase.
        let mut rejoin = Vec::new();
        if group.state == GroupState::CompletingRebalance {
            for member in group.members.values_mut() {
                if let Some(sync) = member.awaiting_sync.take() {
                    rejoin.push(sync);
                }
            }
        }
        group.state = GroupState::PreparingRebalance;
        let timeout_ms = group.rebalance_timeout_ms();
        // The phase waits at most the longest member rebalance timeout; whoever has not
        // rejoined by then is dropped by `complete_join`.
        group.join_deadline = now.instant.add_ms(timeout_ms);
        // Kafka delays only a new group's first rebalance, so a burst of starting consumers
        // forms one generation instead of one per arrival.
        group.join_not_before = if was_empty {
            now.instant.add_ms(delay_ms.min(timeout_ms))
        } else {
            now.instant
        };
        let (not_before, deadline) = (group.join_not_before, group.join_deadline);
        for sync in rejoin {
            let response = SyncGroupResponse {
                error: ErrorCode::REBALANCE_IN_PROGRESS,
                ..SyncGroupResponse::default()
            };
            self.responses
                .push((sync, ApiResponse::SyncGroup(response)));
        }
        assert!(
            not_before <= deadline,
            "group {group_id}: delay past the deadline"
        );
        // The abandoned sync phase's deadline has nothing left to guard; the next
        // `complete_join` arms a fresh one.
        self.disarm(group_id, &Timer::Sync);
        self.arm(group_id, Timer::Join, not_before.min(deadline));
        self.try_complete_join(now, group_id);
    }

    /// Complete the join phase if every member rejoined (after the initial delay) or the
    /// rebalance timeout passed.
    fn try_complete_join(&mut self, now: Now, group_id: &str) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        let expired = now.instant >= group.join_deadline;
        let ready = group.all_members_joined() && now.instant >= group.join_not_before;
        if !(expired || ready) {
            // Check again when the delay ends (if that is what holds us back) or at the end.
            let at = if group.all_members_joined() {
                group.join_not_before
            } else {
                group.join_deadline
            };
            self.arm(group_id, Timer::Join, at);
            return;
        }
        self.complete_join(now, group_id);
    }

    /// End the join phase: drop laggards, start the new generation, pick protocol and
    /// leader, answer every parked JoinGroup (the leader with the member list), and give the
    /// leader a rebalance timeout to send the assignment.
    fn complete_join(&mut self, now: Now, group_id: &str) {
        self.disarm(group_id, &Timer::Join);
        // Members that did not rejoin in time are out (Kafka: static ones too).
        let group = self.groups.get(group_id).expect("group exists");
        let laggards: Vec<String> = (group.members.iter())
            .filter(|(_, m)| m.awaiting_join.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        // Ids handed out but never used: the clients did not come back within the phase,
        // and a new generation must not wait for them.
        let pending: Vec<String> = group.pending_members.iter().cloned().collect();
        for member_id in laggards {
            self.remove_member(group_id, &member_id, ErrorCode::UNKNOWN_MEMBER_ID);
        }
        for member_id in pending {
            self.disarm(group_id, &Timer::Pending(member_id.clone()));
            let group = self.groups.get_mut(group_id).expect("group exists");
            group.pending_members.remove(&member_id);
        }
        let group = self.groups.get_mut(group_id).expect("group exists");
        // PLANTED BUG (weir-sim's planted suite only; never in a real build): a rebalance
        // that only lost members (leave, session expiry) keeps the generation, so the
        // survivors' new assignment and the departed members' old one share a generation id:
        // a partition is handed to a new owner while the old owner's claim (and its commits)
        // stay valid under the same generation.
        let planted = crate::planted::on(crate::planted::Bug::GroupDoubleAssign);
        let bump = !planted
            || group.generation_id == 0
            || group.members.values().any(|m| m.assignment.is_empty());
        let generation_before = group.generation_id;
        if bump {
            group.generation_id = group.generation_id.wrapping_add(1).max(1);
        }
        // A new generation per join phase: what fences the previous owners of every
        // partition (only the planted bug keeps it).
        assert!(
            group.generation_id != generation_before || planted,
            "group {group_id} generation stayed {generation_before}"
        );
        assert!(group.generation_id >= 1, "group {group_id}");
        // Nobody rejoined in time: the group goes Empty, and its record must forget the
        // members a new coordinator would otherwise load (`persist_empty`).
        if group.members.is_empty() {
            group.state = GroupState::Empty;
            group.protocol_name = None;
            group.leader_id = None;
            self.persist_empty(now, group_id);
            return;
        }
        group.protocol_name = group.select_protocol();
        // The previous leader keeps the role if it rejoined; otherwise the smallest member id
        // takes it (deterministic, where Kafka picks an arbitrary member).
        let leader_ok = (group.leader_id.as_ref()).is_some_and(|l| group.members.contains_key(l));
        if !leader_ok {
            group.leader_id = group.members.keys().next().cloned();
        }
        // Every member that is left joined with a protocol every other member supports
        // (`supports` at join), so one is always selected.
        assert!(
            group.protocol_name.is_some(),
            "group {group_id}: no common protocol"
        );
        assert!(group.leader_id.is_some(), "group {group_id}: no leader");
        group.state = GroupState::CompletingRebalance;
        let timeout_ms = group.rebalance_timeout_ms();
        let joined: Vec<(String, RequestId)> = (group.members.iter_mut())
            .filter_map(|(id, m)| m.awaiting_join.take().map(|r| (id.clone(), r)))
            .collect();
        let member_ids: Vec<String> = group.members.keys().cloned().collect();
        for (member_id, request) in joined {
            let response = self.join_response(group_id, &member_id, false);
            self.responses
                .push((request, ApiResponse::JoinGroup(response)));
        }
        // Each member gets a fresh session from the answer, the moment it can act on it.
        for member_id in member_ids {
            self.touch_session(now, group_id, &member_id);
        }
        // The leader has one rebalance timeout to send the assignment; then `fire` drops every
        // member that has not sent its SyncGroup.
        self.arm(group_id, Timer::Sync, now.instant.add_ms(timeout_ms));
    }

    /// The JoinGroup answer for `member_id` in the current generation; the leader gets the
    /// member list.
    fn join_response(
        &self,
        group_id: &str,
        member_id: &str,
        skip_assignment: bool,
    ) -> JoinGroupResponse {
        let group = &self.groups[group_id];
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let is_leader = group.leader_id.as_deref() == Some(member_id);
        // Only the leader runs the assignor, so only it receives every member's subscription.
        let members = if is_leader {
            (group.members.iter())
                .map(|(id, m)| JoinGroupMember {
                    member_id: id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinGroupResponse {
            throttle_time_ms: 0,
            error: ErrorCode::NONE,
            generation_id: group.generation_id,
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol_name.clone(),
            leader: group.leader_id.clone().unwrap_or_default(),
            skip_assignment,
            member_id: member_id.to_string(),
            members,
        }
    }

    // ---- SyncGroup / Heartbeat / LeaveGroup ----------------------------------------

    /// SyncGroup: the leader's call carries the assignment and completes the rebalance;
    /// followers wait for it.
    pub fn sync_group(&mut self, now: Now, id: RequestId, request: SyncGroupRequest) {
        let group_id = request.group_id.clone();
        let member_id = request.member_id.clone();
        let error = self.check_member(
            &group_id,
            &member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
        );
        // KIP-559: the client names the protocol type and name it joined with; a mismatch
        // gets INCONSISTENT_GROUP_PROTOCOL, not an assignment in a format it did not expect.
        let error = error.or_else(|| {
            let group = &self.groups[&group_id];
            let type_differs = (request.protocol_type.as_ref())
                .is_some_and(|t| group.protocol_type.as_ref() != Some(t));
            let name_differs = (request.protocol_name.as_ref())
                .is_some_and(|n| group.protocol_name.as_ref() != Some(n));
            (type_differs || name_differs).then_some(ErrorCode::INCONSISTENT_GROUP_PROTOCOL)
        });
        if let Some(error) = error {
            self.answer_sync(id, &group_id, error, Bytes::new());
            return;
        }
        self.touch_session(now, &group_id, &member_id);
        let group = self.groups.get_mut(&group_id).expect("checked");
        match group.state {
            GroupState::Empty => {
                self.answer_sync(id, &group_id, ErrorCode::UNKNOWN_MEMBER_ID, Bytes::new())
            }
            // The group moved on after this member's join: it must rejoin before it may sync.
            GroupState::PreparingRebalance => self.answer_sync(
                id,
                &group_id,
                ErrorCode::REBALANCE_IN_PROGRESS,
                Bytes::new(),
            ),
            // A retry (its answer was lost) or a static member's replacement (KIP-345): the
            // stored assignment of this generation, which the record already holds.
            GroupState::Stable => {
                let assignment = group.members[&member_id].assignment.clone();
                self.answer_sync(id, &group_id, ErrorCode::NONE, assignment);
            }
            GroupState::CompletingRebalance => {
                let member = group.members.get_mut(&member_id).expect("checked");
                // Every member parks here until the leader's assignment is durable; a second
                // SyncGroup replaces the first, which is answered so none goes unanswered.
                if let Some(old) = member.awaiting_sync.replace(id) {
                    let error = ErrorCode::REBALANCE_IN_PROGRESS;
                    self.answer_sync(old, &group_id, error, Bytes::new());
                }
                let group = self.groups.get_mut(&group_id).expect("checked");
                let is_leader = group.leader_id.as_deref() == Some(member_id.as_str());
                // A leader's retry while its assignment is being written just waits too.
                if is_leader && group.pending_assignment.is_none() {
                    let assignments: BTreeMap<String, Bytes> =
                        request.assignments.into_iter().collect();
                    let generation_id = group.generation_id;
                    self.disarm(&group_id, &Timer::Sync);
                    // Every SyncGroup (the leader's too) waits for the record (Kafka's
                    // storeGroup callback); `metadata_write_done` hands the assignment out.
                    self.persist(now, &group_id, Some(&assignments), Some(generation_id));
                    let group = self.groups.get_mut(&group_id).expect("checked");
                    // Kept aside, not given to members: a failed write must leave them on
                    // their previous assignment (or none), never on an unrecorded one.
                    group.pending_assignment = Some(assignments);
                }
            }
        }
    }

    /// The node's report on a write that completes `generation_id` of `group_id`: durable
    /// (and replicated) with NONE, or failed. On success the group becomes Stable and every
    /// parked SyncGroup gets its assignment; on failure they get the error (mapped to one a
    /// client reacts to by finding the coordinator again) and the group rebalances, as in
    /// Kafka. A report for a generation the group has left behind is ignored.
    pub fn metadata_write_done(
        &mut self,
        now: Now,
        group_id: &str,
        generation_id: i32,
        error: ErrorCode,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        // A report for an older generation (the group rebalanced, or resigned and came back
        // while the write was in flight) must not install that generation's assignment.
        let current = group.state == GroupState::CompletingRebalance
            && group.generation_id == generation_id
            && group.coordinated;
        let Some(assignments) = group.pending_assignment.take_if(|_| current) else {
            return;
        };
        if error.is_ok() {
            // Install, go Stable, then answer: `answer_sync` hands out an assignment only in
            // Stable. A member that has not synced yet gets its part from `sync_group`'s Stable
            // arm.
            for (id, member) in group.members.iter_mut() {
                member.assignment = assignments.get(id).cloned().unwrap_or_default();
            }
            group.state = GroupState::Stable;
            let waiting: Vec<(RequestId, Bytes)> = (group.members.values_mut())
                .filter_map(|m| m.awaiting_sync.take().map(|r| (r, m.assignment.clone())))
                .collect();
            for (request, assignment) in waiting {
                self.answer_sync(request, group_id, ErrorCode::NONE, assignment);
            }
            return;
        }
        assert!(
            group.pending_assignment.is_none(),
            "group {group_id} kept the assignment"
        );
        tracing::warn!(
            group = group_id,
            generation_id,
            error = error.name(),
            "group metadata not written; rebalancing"
        );
        // Errors that mean the partition moved send the client to find the coordinator
        // again; the others are retriable at the same one.
        let error = match error {
            ErrorCode::NOT_LEADER_OR_FOLLOWER
            | ErrorCode::NOT_COORDINATOR
            | ErrorCode::KAFKA_STORAGE_ERROR => ErrorCode::NOT_COORDINATOR,
            _ => ErrorCode::COORDINATOR_NOT_AVAILABLE,
        };
        let waiting: Vec<RequestId> = (group.members.values_mut())
            .filter_map(|m| m.awaiting_sync.take())
            .collect();
        for request in waiting {
            self.answer_sync(request, group_id, error, Bytes::new());
        }
        self.prepare_rebalance(now, group_id);
    }

    /// Queue the group's metadata record (see [`MetadataWrite`]).
    fn persist(
        &mut self,
        now: Now,
        group_id: &str,
        assignments: Option<&BTreeMap<String, Bytes>>,
        completes_generation: Option<i32>,
    ) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        assert!(
            group.coordinated,
            "group {group_id} persisted by a non-coordinator"
        );
        if let Some(generation_id) = completes_generation {
            // Only the generation being completed is written with an assignment.
            assert_eq!(generation_id, group.generation_id, "group {group_id}");
            assert_eq!(
                group.state,
                GroupState::CompletingRebalance,
                "group {group_id}"
            );
            assert!(assignments.is_some(), "group {group_id}: no assignment");
        }
        let record = group.metadata(now.wall_ms, assignments);
        self.writes.push(MetadataWrite {
            group_id: group_id.to_string(),
            record: Some(record),
            completes_generation,
        });
    }

    /// The group just became Empty: the log must not keep members a new coordinator would
    /// load. Dropped (no offsets): a tombstone; else an Empty record, when there is a
    /// record to replace.
    fn persist_empty(&mut self, now: Now, group_id: &str) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        assert_eq!(group.state, GroupState::Empty, "group {group_id}");
        assert!(
            group.members.is_empty(),
            "group {group_id} Empty with members"
        );
        // Nothing left: the group goes, with a tombstone. Offsets left: an Empty record
        // replaces the one naming members; with no record yet there is nothing stale.
        if group.is_unused() {
            self.remove_group(group_id, true);
        } else if group.persisted.is_some() && group.coordinated {
            self.persist(now, group_id, None, None);
        }
    }

    /// The node appended a group's metadata record (`None`: a tombstone): what a new
    /// coordinator would now load. The group may be gone already (a tombstone's).
    pub fn metadata_appended(&mut self, group_id: &str, record: Option<GroupMetadata>) {
        if let Some(group) = self.groups.get_mut(group_id) {
            group.persisted = record.map(Box::new);
        }
    }

    fn answer_sync(&mut self, id: RequestId, group_id: &str, error: ErrorCode, assignment: Bytes) {
        let group = self.groups.get(group_id);
        if error.is_ok() {
            // An assignment leaves only once its generation's record is durable (Stable).
            let state = group.map(|g| g.state);
            assert_eq!(
                state,
                Some(GroupState::Stable),
                "group {group_id} sync answered"
            );
        }
        // KIP-559: the protocol is echoed only with an assignment, for the client to check.
        let (protocol_type, protocol_name) = match (group, error.is_ok()) {
            (Some(group), true) => (group.protocol_type.clone(), group.protocol_name.clone()),
            _ => (None, None),
        };
        let response = SyncGroupResponse {
            throttle_time_ms: 0,
            error,
            protocol_type,
            protocol_name,
            assignment,
        };
        self.responses.push((id, ApiResponse::SyncGroup(response)));
    }

    /// Heartbeat: keeps the session; tells members to rejoin during a rebalance.
    pub fn heartbeat(&mut self, now: Now, id: RequestId, request: HeartbeatRequest) {
        let error = self.check_member(
            &request.group_id,
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
        );
        let error = match error {
            Some(error) => error,
            None => {
                self.touch_session(now, &request.group_id, &request.member_id);
                // How a member learns of a rebalance: REBALANCE_IN_PROGRESS while the group
                // waits for rejoins. In CompletingRebalance the member has joined: NONE, and it
                // goes on to sync.
                match self.groups[&request.group_id].state {
                    GroupState::PreparingRebalance => ErrorCode::REBALANCE_IN_PROGRESS,
                    GroupState::Empty => ErrorCode::UNKNOWN_MEMBER_ID,
                    GroupState::CompletingRebalance | GroupState::Stable => ErrorCode::NONE,
                }
            }
        };
        // A member is told all is well only by its coordinator, in its current generation.
        debug_assert!(
            !error.is_ok() || self.groups[&request.group_id].coordinated,
            "group {} heartbeat on a non-coordinator",
            request.group_id
        );
        let response = HeartbeatResponse {
            throttle_time_ms: 0,
            error,
        };
        self.responses.push((id, ApiResponse::Heartbeat(response)));
    }

    /// The membership checks JoinGroup, SyncGroup, Heartbeat and OffsetCommit share.
    fn check_member(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Option<ErrorCode> {
        // Order matters: an unknown group has no member; a replayed copy cannot judge
        // (NOT_COORDINATOR); a zombie must stop (fencing) rather than rejoin; the generation
        // comes last, so ILLEGAL_GENERATION means "a real member that missed a rebalance".
        let Some(group) = self.groups.get(group_id) else {
            return Some(ErrorCode::UNKNOWN_MEMBER_ID);
        };
        if !group.coordinated {
            return Some(ErrorCode::NOT_COORDINATOR);
        }
        if let Err(error) = check_static(group, member_id, instance_id) {
            return Some(error);
        }
        if !group.members.contains_key(member_id) {
            return Some(ErrorCode::UNKNOWN_MEMBER_ID);
        }
        if generation_id != group.generation_id {
            return Some(ErrorCode::ILLEGAL_GENERATION);
        }
        None
    }

    /// LeaveGroup: each listed member leaves (static ones may be named by instance id).
    pub fn leave_group(&mut self, now: Now, id: RequestId, request: LeaveGroupRequest) {
        let group_id = request.group_id;
        let leaving_count = request.members.len();
        let mut results = Vec::with_capacity(leaving_count);
        let mut left = false;
        for leaving in request.members {
            let error = match self.groups.get(&group_id) {
                None => ErrorCode::UNKNOWN_MEMBER_ID,
                Some(group) if !group.coordinated => ErrorCode::NOT_COORDINATOR,
                Some(group) => match resolve_leaving(group, &leaving.member_id, &leaving) {
                    Ok(member_id) => {
                        self.remove_member(&group_id, &member_id, ErrorCode::UNKNOWN_MEMBER_ID);
                        left = true;
                        ErrorCode::NONE
                    }
                    Err(error) => error,
                },
            };
            results.push(LeftMember {
                member_id: leaving.member_id,
                group_instance_id: leaving.group_instance_id,
                error,
            });
        }
        // One membership change for the whole batch: several members leaving start one
        // rebalance, not one each.
        if left {
            self.after_membership_change(now, &group_id);
        }
        assert_eq!(
            results.len(),
            leaving_count,
            "one result per leaving member"
        );
        // The outcome is per member (v3+ batches, KIP-345); the top-level error stays NONE.
        let response = LeaveGroupResponse {
            throttle_time_ms: 0,
            error: ErrorCode::NONE,
            members: results,
        };
        self.responses.push((id, ApiResponse::LeaveGroup(response)));
    }

    /// After members left or expired: rebalance, finish a join, or become Empty.
    fn after_membership_change(&mut self, now: Now, group_id: &str) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        // In PreparingRebalance an emptied group is left to `try_complete_join`, which ends the
        // phase with a new generation and makes the group Empty there.
        if group.members.is_empty() && group.state != GroupState::PreparingRebalance {
            group.state = GroupState::Empty;
            group.generation_id = group.generation_id.wrapping_add(1).max(1);
            group.protocol_name = None;
            group.leader_id = None;
            group.pending_assignment = None;
            self.disarm(group_id, &Timer::Sync);
            self.disarm(group_id, &Timer::Join);
            // The generation moved on, so a late commit of the last members is refused
            // (ILLEGAL_GENERATION) rather than applied to a group they have left.
            self.persist_empty(now, group_id);
            return;
        }
        match group.state {
            // The departed members' partitions have no owner until a new generation hands
            // them on.
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, group_id)
            }
            GroupState::PreparingRebalance => self.try_complete_join(now, group_id),
            GroupState::Empty => {}
        }
        self.drop_if_unused(group_id);
    }

    /// Remove a member; its parked requests are answered with `error`.
    fn remove_member(&mut self, group_id: &str, member_id: &str, error: ErrorCode) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let Some(member) = group.members.remove(member_id) else {
            return;
        };
        if let Some(instance_id) = &member.group_instance_id {
            if group.static_members.get(instance_id).map(String::as_str) == Some(member_id) {
                group.static_members.remove(instance_id);
            }
        }
        if group.leader_id.as_deref() == Some(member_id) {
            group.leader_id = None;
        }
        // No name of the member survives it: the static map and the leader are cleared.
        assert!(
            !group.static_members.values().any(|m| m == member_id),
            "group {group_id}: static id still maps to {member_id}"
        );
        // Its parked requests are answered now: every request gets exactly one answer.
        if let Some(join) = member.awaiting_join {
            let response = JoinGroupResponse {
                error,
                generation_id: -1,
                member_id: member_id.to_string(),
                ..JoinGroupResponse::default()
            };
            self.responses
                .push((join, ApiResponse::JoinGroup(response)));
        }
        if let Some(sync) = member.awaiting_sync {
            let response = SyncGroupResponse {
                error,
                ..SyncGroupResponse::default()
            };
            self.responses
                .push((sync, ApiResponse::SyncGroup(response)));
        }
        self.disarm(group_id, &Timer::Session(member_id.to_string()));
    }

    /// An Empty group without offsets has nothing left to remember (Kafka marks it Dead).
    fn drop_if_unused(&mut self, group_id: &str) {
        if self.groups.get(group_id).is_some_and(Group::is_unused) {
            self.remove_group(group_id, true);
        }
    }

    /// Forget a group. Its coordinator tombstones its metadata record, if it has one, when
    /// `tombstone` (DeleteGroups writes its own).
    fn remove_group(&mut self, group_id: &str, tombstone: bool) {
        if let Some(group) = self.groups.remove(group_id) {
            for (timer, at) in group.armed {
                self.timers.remove(&(at, group_id.to_string(), timer));
            }
            debug_assert!(
                self.timers.iter().all(|(_, g, _)| g != group_id),
                "group {group_id} left timers behind"
            );
            // Only the coordinator writes the group's records (another node's copy follows
            // the log and would write a tombstone the coordinator did not decide).
            if tombstone && group.coordinated && group.persisted.is_some() {
                self.writes.push(MetadataWrite {
                    group_id: group_id.to_string(),
                    record: None,
                    completes_generation: None,
                });
            }
        }
    }

    /// One timer is due (already removed from both indexes by `handle_timeout`).
    fn fire(&mut self, now: Now, group_id: &str, timer: Timer) {
        match timer {
            Timer::Session(member_id) => {
                let Some(group) = self.groups.get(group_id) else {
                    return;
                };
                let Some(member) = group.members.get(&member_id) else {
                    return;
                };
                // A member whose join or sync is parked is alive: it waits on us.
                if member.awaiting_join.is_some() || member.awaiting_sync.is_some() {
                    self.touch_session(now, group_id, &member_id);
                    return;
                }
                // Parked requests keep a member alive (above), so only an idle one expires.
                assert!(
                    group.coordinated,
                    "group {group_id}: timer on a non-coordinator"
                );
                tracing::info!(group = group_id, member = %member_id, "session expired");
                self.remove_member(group_id, &member_id, ErrorCode::UNKNOWN_MEMBER_ID);
                self.after_membership_change(now, group_id);
            }
            Timer::Pending(member_id) => {
                // The handed-out id was never used: stop waiting for it, which may end the
                // join phase.
                if let Some(group) = self.groups.get_mut(group_id) {
                    group.pending_members.remove(&member_id);
                }
                self.try_complete_join(now, group_id);
                self.drop_if_unused(group_id);
            }
            Timer::Join => self.try_complete_join(now, group_id),
            Timer::ConsumerSession(member_id) => {
                self.fire_consumer(group_id, &member_id, "session expired");
            }
            Timer::ConsumerRevoke(member_id) => {
                self.fire_consumer(group_id, &member_id, "revocation timed out");
            }
            Timer::Sync => {
                // The leader never sent the assignment: members that did not sync are out.
                let Some(group) = self.groups.get(group_id) else {
                    return;
                };
                if group.state != GroupState::CompletingRebalance {
                    return;
                }
                let laggards: Vec<String> = (group.members.iter())
                    .filter(|(_, m)| m.awaiting_sync.is_none())
                    .map(|(id, _)| id.clone())
                    .collect();
                for member_id in laggards {
                    self.remove_member(group_id, &member_id, ErrorCode::UNKNOWN_MEMBER_ID);
                }
                self.after_membership_change(now, group_id);
            }
        }
    }

    // ---- timers ----------------------------------------------------------------------

    /// Arm (or re-arm) a timer of a group: one entry in the group's `armed` map and one in
    /// the ordered set, changed together so neither index can hold a stale deadline.
    fn arm(&mut self, group_id: &str, timer: Timer, at: Instant) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        // Only the coordinator runs a group's timers.
        if !group.coordinated {
            return;
        }
        if let Some(old) = group.armed.insert(timer.clone(), at) {
            let removed = self
                .timers
                .remove(&(old, group_id.to_string(), timer.clone()));
            assert!(
                removed,
                "group {group_id}: {timer:?} armed but not in the set"
            );
        }
        let fresh = self.timers.insert((at, group_id.to_string(), timer));
        assert!(fresh, "group {group_id}: timer already in the set");
    }

    /// Disarm a timer if armed (both indexes, as in `arm`).
    fn disarm(&mut self, group_id: &str, timer: &Timer) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        if let Some(at) = group.armed.remove(timer) {
            let removed = self
                .timers
                .remove(&(at, group_id.to_string(), timer.clone()));
            assert!(
                removed,
                "group {group_id}: {timer:?} armed but not in the set"
            );
        }
    }

    /// A sign of life from a member: its session restarts from `now`. Every request a
    /// member sends counts, as in Kafka, not only Heartbeat.
    fn touch_session(&mut self, now: Now, group_id: &str, member_id: &str) {
        let Some(member) = self
            .groups
            .get(group_id)
            .and_then(|g| g.members.get(member_id))
        else {
            return;
        };
        let session_ms = u64::try_from(member.session_timeout_ms).unwrap_or(0);
        let at = now.instant.add_ms(session_ms);
        self.arm(group_id, Timer::Session(member_id.to_string()), at);
    }

    // ---- offsets ---------------------------------------------------------------------

    /// May this OffsetCommit write? Kafka's rules: an Empty (or unknown) group accepts
    /// commits from outside (generation < 0); otherwise the member and generation must match.
    pub fn check_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> CommitCheck {
        if group_id.is_empty() || group_id.len() > GROUP_ID_BYTES_MAX {
            return CommitCheck::Refuse(ErrorCode::INVALID_GROUP_ID);
        }
        // An unknown group takes only commits from outside any group (generation -1: a
        // standalone consumer or an admin tool); `commit` then creates it offsets-only. A
        // commit naming a generation presumes a group this coordinator does not have.
        let Some(group) = self.groups.get(group_id) else {
            if generation_id < 0 {
                if self.groups.len() >= GROUPS_MAX {
                    return CommitCheck::Refuse(ErrorCode::COORDINATOR_NOT_AVAILABLE);
                }
                return CommitCheck::Accept;
            }
            return CommitCheck::Refuse(ErrorCode::ILLEGAL_GENERATION);
        };
        if !group.coordinated {
            return CommitCheck::Refuse(ErrorCode::NOT_COORDINATOR);
        }
        // A consumer group is checked by member epoch; a classic one by instance id, then
        // Empty's outside commits, then member and generation.
        if let Some(consumer) = group.consumer.as_deref().filter(|c| !c.members.is_empty()) {
            // KIP-848: the generation field carries the member epoch.
            return match Self::check_consumer_commit(consumer, member_id, generation_id) {
                Ok(()) => CommitCheck::Accept,
                Err(error) => CommitCheck::Refuse(error),
            };
        }
        if let Err(error) = check_static(group, member_id, instance_id) {
            return CommitCheck::Refuse(error);
        }
        if generation_id < 0 && group.state == GroupState::Empty {
            return CommitCheck::Accept;
        }
        // Between join and sync nobody holds a settled assignment; a commit now would be
        // for partitions the member may be about to lose (Kafka answers the same).
        if group.state == GroupState::CompletingRebalance {
            return CommitCheck::Refuse(ErrorCode::REBALANCE_IN_PROGRESS);
        }
        if !group.members.contains_key(member_id) {
            return CommitCheck::Refuse(ErrorCode::UNKNOWN_MEMBER_ID);
        }
        if generation_id != group.generation_id {
            return CommitCheck::Refuse(ErrorCode::ILLEGAL_GENERATION);
        }
        CommitCheck::Accept
    }

    /// Room for `count` more offsets in the group?
    pub fn has_room_for_offsets(&self, group_id: &str, count: usize) -> bool {
        let held = self.groups.get(group_id).map_or(0, |g| g.offsets.len());
        held.saturating_add(count) <= GROUP_OFFSETS_MAX
    }

    /// Record a commit (the node has written it to `__consumer_offsets`); a commit from a
    /// member also keeps its session alive, as in Kafka.
    pub fn commit(
        &mut self,
        now: Now,
        group_id: &str,
        member_id: &str,
        offsets: Vec<((String, i32), CommittedOffset)>,
    ) {
        let group = (self.groups)
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(now.instant, true));
        // Called after the records were appended (node/group.rs), never before: memory may
        // run ahead of the disk only until the answer's sync. (Transactional offsets arrive
        // with their commit marker, see `end_txn_offsets`.)
        for (key, offset) in offsets {
            group.offsets.insert(key, offset);
        }
        self.touch_session(now, group_id, member_id);
    }

    /// True when a TxnOffsetCommit of `count` offsets by `producer_id` may be accepted
    /// ([`txn_offsets`]).
    pub fn has_room_for_txn_offsets(&self, producer_id: i64, count: usize) -> bool {
        self.txn_offsets.has_room_for(producer_id, count)
    }

    /// Hold offsets of `producer_id`'s open transaction until its marker: written by this
    /// coordinator (TxnOffsetCommit), copied from the leader, or replayed at recovery.
    pub fn stage_txn_offsets(
        &mut self,
        producer_id: i64,
        offsets: Vec<txn_offsets::PendingTxnOffset>,
    ) {
        self.txn_offsets.stage(producer_id, offsets);
    }

    /// Stage the offset records of a transactional batch of `producer_id` (a follower's copy
    /// or recovery); other records in it are not offsets and are skipped.
    pub fn stage_txn_records<'a>(
        &mut self,
        producer_id: i64,
        records: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    ) {
        let offsets: Vec<_> = (records.into_iter())
            .filter_map(
                |(key, value)| match offsets_log::decode_record(key, value) {
                    Some(OffsetsTopicRecord::Offset((group, topic, partition, Some(offset)))) => {
                        Some((group, (topic, partition), offset))
                    }
                    _ => None,
                },
            )
            .collect();
        if !offsets.is_empty() {
            self.stage_txn_offsets(producer_id, offsets);
        }
    }

    /// A marker of `producer_id` reached the group's offsets partition: a commit makes its
    /// pending offsets committed, an abort drops them. `coordinated`: this node wrote the
    /// marker as the partition's leader (it coordinates the groups); otherwise it is a copy,
    /// and groups it creates are replayed ones.
    pub fn end_txn_offsets(
        &mut self,
        now: Now,
        producer_id: i64,
        committed: bool,
        coordinated: bool,
    ) {
        let ended = self.txn_offsets.end(producer_id);
        // PLANTED BUG (weir-sim's planted suite only; never in a real build): an abort
        // marker commits the offsets too, so a consumer skips input whose output was
        // discarded.
        let committed = committed || crate::planted::on(crate::planted::Bug::AbortCommitsOffsets);
        if !committed {
            return;
        }
        for (group, key, offset) in ended {
            if coordinated {
                // No member id: a transactional commit renews no member's session.
                self.commit(now, &group, "", vec![(key, offset)]);
            } else {
                self.replay(now, &group, key, Some(offset));
            }
        }
    }

    /// True when an open transaction holds an offset for this group partition (KIP-447).
    pub fn has_pending_txn_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.txn_offsets.is_pending(group, topic, partition)
    }

    /// Apply a record replayed from `__consumer_offsets` at recovery (latest wins; `None`
    /// is a tombstone).
    pub fn replay(
        &mut self,
        now: Now,
        group_id: &str,
        key: (String, i32),
        value: Option<CommittedOffset>,
    ) {
        // Groups created here are not coordinated: a replayed record only says what the
        // coordinator decided, and `take_over` decides when this node starts deciding.
        match value {
            Some(offset) => {
                let group = (self.groups)
                    .entry(group_id.to_string())
                    .or_insert_with(|| Group::new(now.instant, false));
                group.offsets.insert(key, offset);
            }
            None => {
                if let Some(group) = self.groups.get_mut(group_id) {
                    group.offsets.remove(&key);
                }
                self.drop_if_unused(group_id);
            }
        }
    }

    /// Apply one record of `__consumer_offsets` replayed at recovery or replicated from the
    /// partition's leader (latest wins); false for records this broker does not know.
    pub fn replay_record(&mut self, now: Now, key: &[u8], value: Option<&[u8]>) -> bool {
        match offsets_log::decode_record(key, value) {
            Some(OffsetsTopicRecord::Offset((group_id, topic, partition, offset))) => {
                self.replay(now, &group_id, (topic, partition), offset);
                true
            }
            Some(OffsetsTopicRecord::Group(group_id, record)) => {
                self.replay_metadata(now, &group_id, record);
                true
            }
            None => false,
        }
    }

    /// A replayed group metadata record (`None`: tombstone) replaces the group's membership;
    /// the group is not coordinated here (the record was written by its coordinator).
    pub fn replay_metadata(&mut self, now: Now, group_id: &str, record: Option<GroupMetadata>) {
        if !self.groups.contains_key(group_id) {
            if record.is_none() || self.groups.len() >= GROUPS_MAX {
                return;
            }
            let group = Group::new(now.instant, false);
            self.groups.insert(group_id.to_string(), group);
        }
        // Member ids are `client_id-counter`: new ones handed out here must not collide
        // with ids another coordinator (or this one before a restart) handed out.
        let seqs = (record.iter().flat_map(|r| r.members.iter()))
            .filter_map(|m| m.member_id.rsplit_once('-')?.1.parse::<u64>().ok());
        self.next_member_seq = seqs.fold(self.next_member_seq, u64::max);
        self.load(now, group_id, record);
        if let Some(group) = self.groups.get_mut(group_id) {
            group.coordinated = false;
            assert!(
                group.armed.is_empty(),
                "group {group_id}: replayed with timers"
            );
        }
        self.drop_if_unused(group_id);
    }

    /// This node became the coordinator of the groups `owns` selects (it took the
    /// leadership of their `__consumer_offsets` partition, or finished recovering): their
    /// timers run from now, each member getting a full session to find this coordinator.
    /// Returns how many groups it took over.
    pub fn take_over(&mut self, now: Now, owns: impl Fn(&str) -> bool) -> usize {
        let taken: Vec<String> = (self.groups.iter())
            .filter(|(id, g)| !g.coordinated && owns(id))
            .map(|(id, _)| id.clone())
            .collect();
        for group_id in &taken {
            let group = self.groups.get_mut(group_id).expect("listed");
            group.coordinated = true;
            // Sessions restart here: while the group moved, its members had no coordinator to
            // heartbeat to, and expiring them for that would force a needless rebalance.
            let members: Vec<String> = group.members.keys().cloned().collect();
            for member_id in members {
                self.touch_session(now, group_id, &member_id);
            }
            // A loaded group is Empty or Stable: nothing parked that a timer must finish.
            let group = &self.groups[group_id];
            assert!(
                matches!(group.state, GroupState::Empty | GroupState::Stable),
                "group {group_id} taken over in {:?}",
                group.state
            );
        }
        taken.len()
    }

    /// This node stopped coordinating the groups `owns` selects: parked requests are answered
    /// NOT_COORDINATOR, timers disarmed, and each group goes back to what its last record
    /// says (a rebalance in progress here is abandoned; KIP-848 membership, kept only in
    /// memory, is dropped). Returns how many groups it resigned.
    pub fn resign(&mut self, now: Now, owns: impl Fn(&str) -> bool) -> usize {
        let resigned: Vec<String> = (self.groups.iter())
            .filter(|(id, g)| g.coordinated && owns(id))
            .map(|(id, _)| id.clone())
            .collect();
        // Back to the last record, not to memory: memory may hold a generation whose record
        // never became durable, and the next coordinator will load the record.
        for group_id in &resigned {
            let record = self.groups[group_id].persisted.as_deref().cloned();
            self.load(now, group_id, record);
            if let Some(group) = self.groups.get_mut(group_id) {
                group.coordinated = false;
            }
            self.drop_if_unused(group_id);
        }
        resigned.len()
    }

    /// Replace a group's membership with `record` (Stable with its members, or Empty; a
    /// tombstone leaves no generation either). Parked requests are answered NOT_COORDINATOR
    /// and timers disarmed; offsets stay.
    fn load(&mut self, now: Now, group_id: &str, record: Option<GroupMetadata>) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        // Collected first and answered last: answering needs `&mut self`, and the group must
        // already look like its record when the answers are built.
        let armed: Vec<Timer> = group.armed.keys().cloned().collect();
        let mut parked: Vec<(RequestId, bool)> = Vec::new();
        for member in group.members.values_mut() {
            parked.extend(member.awaiting_join.take().map(|id| (id, true)));
            parked.extend(member.awaiting_sync.take().map(|id| (id, false)));
        }
        // Membership is rebuilt from the record alone. Offsets have records of their own and
        // stay; KIP-848 membership has none, so it is dropped.
        group.members.clear();
        group.static_members.clear();
        group.pending_members.clear();
        group.pending_assignment = None;
        group.consumer = None;
        group.join_not_before = now.instant;
        group.join_deadline = now.instant;
        match &record {
            Some(record) => {
                group.generation_id = record.generation_id;
                let protocol_type = Some(record.protocol_type.clone()).filter(|t| !t.is_empty());
                // Static members come back mapped by instance id, so a restarted instance finds its
                // place once this node coordinates the group.
                for m in &record.members {
                    let protocol = record.protocol_name.clone().unwrap_or_default();
                    if let Some(instance_id) = &m.group_instance_id {
                        let member_id = m.member_id.clone();
                        group.static_members.insert(instance_id.clone(), member_id);
                    }
                    let member = Member {
                        group_instance_id: m.group_instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        session_timeout_ms: m.session_timeout_ms,
                        rebalance_timeout_ms: m.rebalance_timeout_ms,
                        // Kafka's record keeps only the selected protocol's metadata.
                        protocols: vec![(protocol, m.subscription.clone())],
                        assignment: m.assignment.clone(),
                        awaiting_join: None,
                        awaiting_sync: None,
                    };
                    group.members.insert(m.member_id.clone(), member);
                }
                // A record with members was written when a generation completed (or a
                // static member was replaced in one), so the group resumes Stable in it.
                if group.members.is_empty() {
                    group.state = GroupState::Empty;
                    group.protocol_type = protocol_type;
                    group.protocol_name = None;
                    group.leader_id = None;
                } else {
                    group.state = GroupState::Stable;
                    group.protocol_type = protocol_type.or(Some(String::new()));
                    group.protocol_name = record.protocol_name.clone();
                    // A leader the record does not list as a member falls back to the
                    // smallest member id, keeping the leader invariant.
                    let leader = record.leader_id.clone();
                    group.leader_id = leader
                        .filter(|l| group.members.contains_key(l))
                        .or_else(|| group.members.keys().next().cloned());
                }
            }
            None => {
                group.state = GroupState::Empty;
                group.generation_id = 0;
                group.protocol_type = None;
                group.protocol_name = None;
                group.leader_id = None;
            }
        }
        // What the log says now; a later `resign` reloads exactly this.
        group.persisted = record.map(Box::new);
        for timer in armed {
            self.disarm(group_id, &timer);
        }
        let group = &self.groups[group_id];
        assert!(
            group.armed.is_empty(),
            "group {group_id}: loaded with timers"
        );
        assert_eq!(
            group.state == GroupState::Empty,
            group.members.is_empty(),
            "group {group_id}: loaded {:?}",
            group.state
        );
        // NOT_COORDINATOR sends the clients to FindCoordinator; the next coordinator loads
        // this same record, so they rejoin a group it knows.
        for (id, join) in parked {
            if join {
                self.answer_join_error(id, ErrorCode::NOT_COORDINATOR, "");
            } else {
                self.answer_sync(id, group_id, ErrorCode::NOT_COORDINATOR, Bytes::new());
            }
        }
    }

    /// Forget offsets (after their tombstones were written). A group left with nothing is
    /// dropped, as if its last record were a tombstone.
    pub fn delete_offsets(&mut self, group_id: &str, keys: &[(String, i32)]) {
        if let Some(group) = self.groups.get_mut(group_id) {
            for key in keys {
                group.offsets.remove(key);
            }
        }
        self.drop_if_unused(group_id);
    }

    /// Committed offsets of a group, for OffsetFetch: the requested partitions (-1 where
    /// nothing is committed) or every committed one.
    pub fn fetch_offsets(&self, request: &OffsetFetchGroup) -> OffsetFetchGroupResponse {
        let group = self.groups.get(&request.group_id);
        let offsets = group.map(|g| &g.offsets);
        // An unknown group is not an error here: it simply has no offsets.
        let partition = |topic: &str, partition: i32| {
            let committed = offsets.and_then(|o| o.get(&(topic.to_string(), partition)));
            match committed {
                Some(c) => OffsetFetchPartition {
                    partition,
                    committed_offset: c.offset,
                    committed_leader_epoch: c.leader_epoch,
                    metadata: Some(c.metadata.clone()),
                    error: ErrorCode::NONE,
                },
                // Kafka's answer for nothing committed: offset -1 with NONE, after which the
                // consumer applies its `auto.offset.reset` policy.
                None => OffsetFetchPartition {
                    partition,
                    committed_offset: -1,
                    committed_leader_epoch: -1,
                    metadata: Some(String::new()),
                    error: ErrorCode::NONE,
                },
            }
        };
        let topics = match &request.topics {
            Some(topics) => (topics.iter())
                .map(|(name, partitions)| OffsetFetchTopic {
                    name: name.clone(),
                    partitions: partitions.iter().map(|p| partition(name, *p)).collect(),
                })
                .collect(),
            // No topic list (null, v2+): every partition the group has committed.
            None => {
                let mut by_topic: BTreeMap<&str, Vec<OffsetFetchPartition>> = BTreeMap::new();
                for (topic, p) in offsets.into_iter().flat_map(|o| o.keys()) {
                    by_topic
                        .entry(topic)
                        .or_default()
                        .push(partition(topic, *p));
                }
                (by_topic.into_iter())
                    .map(|(name, partitions)| OffsetFetchTopic {
                        name: name.to_string(),
                        partitions,
                    })
                    .collect()
            }
        };
        OffsetFetchGroupResponse {
            group_id: request.group_id.clone(),
            topics,
            error: ErrorCode::NONE,
        }
    }

    /// Every group holding committed offsets, with them (the live records of
    /// `__consumer_offsets`, which compaction copies).
    pub fn committed_offsets(
        &self,
    ) -> impl Iterator<Item = (&str, &BTreeMap<(String, i32), CommittedOffset>)> {
        (self.groups.iter())
            .filter(|(_, g)| !g.offsets.is_empty())
            .map(|(id, g)| (id.as_str(), &g.offsets))
    }

    /// Every committed offset of a group, for the operator view.
    pub fn committed(&self, group_id: &str) -> Vec<((String, i32), CommittedOffset)> {
        (self.groups.get(group_id).into_iter())
            .flat_map(|g| g.offsets.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect()
    }

    /// OffsetDelete precondition: the group exists; returns the topics its members are
    /// subscribed to (consumer protocol metadata), so those offsets are refused.
    pub fn subscribed_topics(&self, group_id: &str) -> Option<BTreeSet<String>> {
        let group = self.groups.get(group_id)?;
        let mut topics = BTreeSet::new();
        if let Some(consumer) = &group.consumer {
            topics.extend(consumer.subscribed_topics());
        }
        // Only the "consumer" protocol type has a subscription format the broker can read;
        // other types' metadata (e.g. Connect's) stays opaque and protects nothing.
        if group.protocol_type.as_deref() == Some("consumer") {
            let protocol = group.protocol_name.clone().unwrap_or_default();
            for member in group.members.values() {
                let metadata = member.metadata_for(&protocol);
                if let Some(subscription) = consumer_protocol::parse_subscription(&metadata) {
                    topics.extend(subscription);
                }
            }
        }
        Some(topics)
    }

    /// DeleteGroups precondition per group: NONE (deletable, offsets to tombstone returned),
    /// GROUP_ID_NOT_FOUND or NON_EMPTY_GROUP.
    pub fn check_delete(&self, group_id: &str) -> Result<Vec<(String, i32)>, ErrorCode> {
        let group = self
            .groups
            .get(group_id)
            .ok_or(ErrorCode::GROUP_ID_NOT_FOUND)?;
        if group.state != GroupState::Empty || group.has_consumer_members() {
            return Err(ErrorCode::NON_EMPTY_GROUP);
        }
        Ok(group.offsets.keys().cloned().collect())
    }

    /// Delete an empty group (its tombstones were written, the metadata record's too when
    /// [`GroupCoordinator::has_metadata_record`]).
    pub fn delete_group(&mut self, group_id: &str) {
        // check_delete said Empty; deleting a live group would strand its members.
        let state = self.groups.get(group_id).map(|g| g.state);
        assert!(
            matches!(state, None | Some(GroupState::Empty)),
            "group {group_id} deleted in {state:?}"
        );
        self.remove_group(group_id, false);
    }

    /// The group has a metadata record in the log (a deletion must tombstone it).
    pub fn has_metadata_record(&self, group_id: &str) -> bool {
        (self.groups.get(group_id)).is_some_and(|g| g.persisted.is_some())
    }

    /// Every group's latest metadata record (the live group records of `__consumer_offsets`,
    /// which compaction copies).
    pub fn metadata_records(&self) -> impl Iterator<Item = (&str, &GroupMetadata)> {
        (self.groups.iter()).filter_map(|(id, g)| Some((id.as_str(), g.persisted.as_deref()?)))
    }

    // ---- ListGroups / DescribeGroups ------------------------------------------------

    /// ListGroups, filtered by state (case-insensitive) and type ("classic").
    pub fn list_groups(&self, request: &ListGroupsRequest) -> ListGroupsResponse {
        let state_ok = |state: &str| {
            request.states_filter.is_empty()
                || (request.states_filter.iter()).any(|s| s.eq_ignore_ascii_case(state))
        };
        let type_ok = |group_type: &str| {
            request.types_filter.is_empty()
                || (request.types_filter.iter()).any(|t| t.eq_ignore_ascii_case(group_type))
        };
        let groups = (self.groups.iter())
            .map(|(id, g)| match &g.consumer {
                Some(consumer) => ListedGroup {
                    group_id: id.clone(),
                    protocol_type: "consumer".to_string(),
                    group_state: consumer.state_name().to_string(),
                    group_type: "consumer".to_string(),
                },
                None => ListedGroup {
                    group_id: id.clone(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    group_state: g.state.name().to_string(),
                    group_type: "classic".to_string(),
                },
            })
            .filter(|g| type_ok(&g.group_type) && state_ok(&g.group_state))
            .collect();
        ListGroupsResponse {
            throttle_time_ms: 0,
            error: ErrorCode::NONE,
            groups,
        }
    }

    /// DescribeGroups: members with metadata and assignment while Stable (Kafka's rule);
    /// an unknown group is reported Dead.
    pub fn describe_groups(&self, request: &DescribeGroupsRequest) -> DescribeGroupsResponse {
        let groups = (request.groups.iter())
            .map(|group_id| self.describe_group(group_id, request.include_authorized_operations))
            .collect();
        DescribeGroupsResponse {
            throttle_time_ms: 0,
            groups,
        }
    }

    fn describe_group(&self, group_id: &str, include_operations: bool) -> DescribedGroup {
        // Kafka's bit set for a group: READ(3), DELETE(6), DESCRIBE(8).
        let authorized_operations = if include_operations {
            (1 << 3) | (1 << 6) | (1 << 8)
        } else {
            // i32::MIN: the protocol's "not requested" value.
            i32::MIN
        };
        // An unknown group is described as Dead with NONE, as Kafka does, not as an error.
        let Some(group) = self.groups.get(group_id) else {
            return DescribedGroup {
                error: ErrorCode::NONE,
                group_id: group_id.to_string(),
                group_state: "Dead".to_string(),
                protocol_type: String::new(),
                protocol_data: String::new(),
                members: Vec::new(),
                authorized_operations,
            };
        };
        if let Some(consumer) = &group.consumer {
            // Kafka answers DescribeGroups for a consumer group with the group's state and
            // members (no classic metadata); ConsumerGroupDescribe has the details.
            let members = (consumer.members.iter())
                .map(|(id, m)| DescribedMember {
                    member_id: id.clone(),
                    group_instance_id: m.instance_id().map(str::to_string),
                    client_id: m.client_id().to_string(),
                    client_host: String::new(),
                    member_metadata: Bytes::new(),
                    member_assignment: Bytes::new(),
                })
                .collect();
            return DescribedGroup {
                error: ErrorCode::NONE,
                group_id: group_id.to_string(),
                group_state: consumer.state_name().to_string(),
                protocol_type: "consumer".to_string(),
                protocol_data: String::new(),
                members,
                authorized_operations,
            };
        }
        // Kafka shows metadata and assignments only for Stable groups: in a rebalance they
        // belong to a generation that is being replaced.
        let stable = group.state == GroupState::Stable;
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let members = (group.members.iter())
            .map(|(id, m)| DescribedMember {
                member_id: id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                member_metadata: if stable {
                    m.metadata_for(&protocol)
                } else {
                    Bytes::new()
                },
                member_assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        DescribedGroup {
            error: ErrorCode::NONE,
            group_id: group_id.to_string(),
            group_state: group.state.name().to_string(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol_data: if stable { protocol } else { String::new() },
            members,
            authorized_operations,
        }
    }

    /// Answer for groups the node cannot serve (DeleteGroups with nothing to write).
    pub fn delete_groups_response(results: Vec<(String, ErrorCode)>) -> DeleteGroupsResponse {
        DeleteGroupsResponse {
            throttle_time_ms: 0,
            results,
        }
    }

    /// State of a group, for tests and tools.
    pub fn state(&self, group_id: &str) -> Option<GroupState> {
        self.groups.get(group_id).map(|g| g.state)
    }

    /// Member ids of a group, for tests.
    pub fn member_ids(&self, group_id: &str) -> Vec<String> {
        (self.groups.get(group_id).into_iter())
            .flat_map(|g| g.members.keys().cloned())
            .collect()
    }

    /// Assert the invariants listed in the module doc.
    pub fn invariants(&self) {
        self.txn_offsets.invariants();
        assert!(
            self.groups.len() <= GROUPS_MAX,
            "groups={}",
            self.groups.len()
        );
        let mut armed_count = 0;
        for (group_id, group) in &self.groups {
            assert!(
                group.members.len() <= GROUP_MEMBERS_MAX,
                "group {group_id} members={}",
                group.members.len()
            );
            // Each armed timer is in the ordered set; the count at the end catches the reverse.
            for (timer, at) in &group.armed {
                armed_count += 1;
                let entry = (*at, group_id.clone(), timer.clone());
                assert!(
                    self.timers.contains(&entry),
                    "group {group_id} timer {timer:?} not in the set"
                );
            }
            // Every instance id names a member carrying it: a stale mapping would make
            // `check_static` fence a member that did nothing wrong.
            for (instance_id, member_id) in &group.static_members {
                let member = group.members.get(member_id);
                assert!(
                    member.is_some(),
                    "group {group_id} instance {instance_id} -> missing {member_id}"
                );
                let carried = member.and_then(|m| m.group_instance_id.as_deref());
                assert_eq!(carried, Some(instance_id.as_str()), "group {group_id}");
            }
            // The leader is who sends the assignment: it must be a member that can.
            if let Some(leader) = &group.leader_id {
                assert!(
                    group.members.contains_key(leader),
                    "group {group_id} leader {leader} is not a member"
                );
            }
            if !group.members.is_empty() {
                assert!(group.protocol_type.is_some(), "group {group_id} no type");
            }
            if group.state == GroupState::Empty {
                assert!(
                    group.members.is_empty(),
                    "group {group_id} Empty with members"
                );
            }
            if matches!(
                group.state,
                GroupState::CompletingRebalance | GroupState::Stable
            ) {
                // What a SyncGroup answer and the metadata record are built from.
                assert!(
                    !group.members.is_empty(),
                    "group {group_id} without members"
                );
                assert!(group.leader_id.is_some(), "group {group_id} without leader");
                assert!(
                    group.protocol_name.is_some(),
                    "group {group_id} no protocol"
                );
                assert!(group.generation_id >= 1, "group {group_id} generation 0");
            }
            assert!(
                group.pending_members.len() <= GROUP_PENDING_MEMBERS_MAX,
                "group {group_id} pending={}",
                group.pending_members.len()
            );
            // An assignment waits for its record only between the leader's SyncGroup and the
            // write's outcome; every way out of CompletingRebalance takes or drops it.
            if group.pending_assignment.is_some() {
                assert_eq!(
                    group.state,
                    GroupState::CompletingRebalance,
                    "group {group_id} pending assignment"
                );
            }
            if !group.coordinated {
                self.uncoordinated_invariants(group_id, group);
            }
            self.consumer_invariants(group_id, group);
            // A parked request exists only in the phase that answers it; in any other state
            // nothing would ever answer it.
            for (member_id, member) in &group.members {
                if member.awaiting_sync.is_some() {
                    assert_eq!(
                        group.state,
                        GroupState::CompletingRebalance,
                        "group {group_id} member {member_id} parked sync"
                    );
                }
                if member.awaiting_join.is_some() {
                    assert_eq!(
                        group.state,
                        GroupState::PreparingRebalance,
                        "group {group_id} member {member_id} parked join"
                    );
                }
            }
        }
        // No stray in the set: a timer no group knows about would fire into a group that
        // never armed it.
        assert_eq!(armed_count, self.timers.len(), "timer set has strays");
    }
}

impl GroupCoordinator {
    /// A group this node does not coordinate only mirrors its log: no timer, nothing parked.
    fn uncoordinated_invariants(&self, group_id: &str, group: &Group) {
        assert!(
            group.armed.is_empty(),
            "group {group_id} uncoordinated, armed"
        );
        assert!(
            matches!(group.state, GroupState::Empty | GroupState::Stable),
            "group {group_id} uncoordinated in {:?}",
            group.state
        );
        assert!(
            group.pending_members.is_empty(),
            "group {group_id} uncoordinated, pending members"
        );
        assert!(
            group.pending_assignment.is_none(),
            "group {group_id} uncoordinated, pending assignment"
        );
        let parked = (group.members.values())
            .any(|m| m.awaiting_join.is_some() || m.awaiting_sync.is_some());
        assert!(!parked, "group {group_id} uncoordinated, parked requests");
    }
}

/// Static membership check: an instance id must map to this member id. A mismatch means
/// another incarnation of the instance took the place: this one is a zombie and must stop
/// (FENCED_INSTANCE_ID), not rejoin.
fn check_static(
    group: &Group,
    member_id: &str,
    instance_id: Option<&str>,
) -> Result<(), ErrorCode> {
    // A dynamic member has no instance id to be fenced by.
    let Some(instance_id) = instance_id else {
        return Ok(());
    };
    match group.static_members.get(instance_id) {
        Some(known) if known != member_id => Err(ErrorCode::FENCED_INSTANCE_ID),
        _ => Ok(()),
    }
}

/// The member a LeaveGroup entry names: by instance id for static members (KIP-345 lets
/// an operator remove one without knowing its current member id), else by member id.
fn resolve_leaving(
    group: &Group,
    member_id: &str,
    leaving: &weir_wire::domain::LeavingMember,
) -> Result<String, ErrorCode> {
    if let Some(instance_id) = &leaving.group_instance_id {
        let Some(known) = group.static_members.get(instance_id) else {
            return Err(ErrorCode::UNKNOWN_MEMBER_ID);
        };
        // An empty member id means "this instance, whatever its id" (an operator removing
        // it); a named one must still be the instance's current id.
        if !member_id.is_empty() && known != member_id {
            return Err(ErrorCode::FENCED_INSTANCE_ID);
        }
        return Ok(known.clone());
    }
    if group.members.contains_key(member_id) {
        Ok(member_id.to_string())
    } else {
        Err(ErrorCode::UNKNOWN_MEMBER_ID)
    }
}

#[cfg(test)]
mod tests {
    use weir_wire::domain::JoinGroupProtocol;

    use super::*;

    const GROUP: &str = "g";
    const SESSION_MS: i32 = 10_000;

    fn config() -> GroupConfig {
        test_config()
    }

    fn at(ms: u64) -> Now {
        Now::new(Instant::from_nanos(ms * 1_000_000), 1_000_000 + ms as i64)
    }

    fn request_id(seq: u64) -> RequestId {
        RequestId::client(1, seq)
    }

    fn join(member_id: &str) -> JoinGroupRequest {
        JoinGroupRequest {
            group_id: GROUP.into(),
            session_timeout_ms: SESSION_MS,
            rebalance_timeout_ms: 20_000,
            member_id: member_id.into(),
            group_instance_id: None,
            protocol_type: "consumer".into(),
            protocols: vec![JoinGroupProtocol {
                name: "range".into(),
                metadata: Bytes::from_static(b"sub"),
            }],
            reason: None,
            client_id: "c".into(),
            client_host: "/h".into(),
            member_id_required: false,
        }
    }

    fn sync(member_id: &str, generation_id: i32, assignment: &'static [u8]) -> SyncGroupRequest {
        SyncGroupRequest {
            group_id: GROUP.into(),
            generation_id,
            member_id: member_id.into(),
            group_instance_id: None,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![(member_id.into(), Bytes::from_static(assignment))],
        }
    }

    fn heartbeat(coordinator: &mut GroupCoordinator, now: Now, member_id: &str) -> ErrorCode {
        let request = HeartbeatRequest {
            group_id: GROUP.into(),
            generation_id: 1,
            member_id: member_id.into(),
            group_instance_id: None,
        };
        coordinator.heartbeat(now, request_id(99), request);
        match coordinator.take_responses().pop() {
            Some((_, ApiResponse::Heartbeat(r))) => r.error,
            other => panic!("expected a heartbeat answer, got {other:?}"),
        }
    }

    /// A one-member group through its first rebalance, the leader's SyncGroup parked on the
    /// record; returns the member id and the write.
    fn rebalanced(coordinator: &mut GroupCoordinator) -> (String, MetadataWrite) {
        coordinator.join_group(at(0), request_id(1), join(""));
        let Some((_, ApiResponse::JoinGroup(joined))) = coordinator.take_responses().pop() else {
            panic!("join answered at once (no initial delay)")
        };
        assert_eq!(joined.generation_id, 1);
        let member_id = joined.member_id;
        coordinator.sync_group(at(1), request_id(2), sync(&member_id, 1, b"p0"));
        let mut writes = coordinator.take_metadata_writes();
        assert_eq!(writes.len(), 1, "the assignment's record");
        coordinator.invariants();
        (member_id, writes.remove(0))
    }

    // Goal: the leader's SyncGroup answers only once the group's record is durable: the group
    // stays CompletingRebalance meanwhile, a failed write makes the members find the
    // coordinator again and the group rebalance. Method: drive a coordinator alone, reporting
    // the write's outcome by hand.
    #[test]
    fn sync_waits_for_the_group_record() {
        let mut coordinator = GroupCoordinator::new(config());
        let (member_id, write) = rebalanced(&mut coordinator);
        assert_eq!(write.completes_generation, Some(1));
        let record = write.record.clone().expect("not a tombstone");
        assert_eq!(record.generation_id, 1);
        assert_eq!(record.leader_id.as_deref(), Some(member_id.as_str()));
        assert_eq!(record.members[0].assignment, Bytes::from_static(b"p0"));
        assert_eq!(record.members[0].subscription, Bytes::from_static(b"sub"));
        assert!(
            coordinator.take_responses().is_empty(),
            "parked on the record"
        );
        assert_eq!(
            coordinator.state(GROUP),
            Some(GroupState::CompletingRebalance)
        );
        coordinator.metadata_appended(GROUP, write.record);
        // A report for an older generation changes nothing.
        coordinator.metadata_write_done(at(2), GROUP, 0, ErrorCode::NONE);
        assert!(coordinator.take_responses().is_empty());
        coordinator.metadata_write_done(at(2), GROUP, 1, ErrorCode::NONE);
        let Some((id, ApiResponse::SyncGroup(synced))) = coordinator.take_responses().pop() else {
            panic!("the leader's SyncGroup is answered")
        };
        assert_eq!((id, synced.error), (request_id(2), ErrorCode::NONE));
        assert_eq!(synced.assignment, Bytes::from_static(b"p0"));
        assert_eq!(coordinator.state(GROUP), Some(GroupState::Stable));
        coordinator.invariants();

        // The same, but the write fails (leadership moved before the ISR had it).
        let mut coordinator = GroupCoordinator::new(config());
        let (_, _write) = rebalanced(&mut coordinator);
        coordinator.metadata_write_done(at(2), GROUP, 1, ErrorCode::NOT_LEADER_OR_FOLLOWER);
        let Some((_, ApiResponse::SyncGroup(synced))) = coordinator.take_responses().pop() else {
            panic!("the leader's SyncGroup is answered")
        };
        assert_eq!(synced.error, ErrorCode::NOT_COORDINATOR);
        assert_ne!(coordinator.state(GROUP), Some(GroupState::Stable));
        coordinator.invariants();
    }

    // Goal: replaying a group's record builds it Stable with its members, generation, protocol
    // and leader, with no timer until this node takes the group over; then a member's
    // heartbeat and commit with the old generation are accepted and its session runs from
    // the take-over. A later tombstone removes the membership. Method: encode coordinator A's
    // record as Kafka bytes and replay them into coordinator B.
    #[test]
    fn replay_builds_stable_group_and_take_over_arms_sessions() {
        let mut a = GroupCoordinator::new(config());
        let (member_id, write) = rebalanced(&mut a);
        let record = write.record.expect("not a tombstone");
        let key = offsets_log::group_key(GROUP);
        let value = offsets_log::group_value(&record);

        let mut b = GroupCoordinator::new(config());
        assert!(b.replay_record(at(5), &key, Some(&value)));
        b.invariants();
        assert_eq!(b.state(GROUP), Some(GroupState::Stable));
        assert_eq!(b.member_ids(GROUP), vec![member_id.clone()]);
        assert_eq!(
            b.next_deadline(),
            None,
            "no timer on a node that does not coordinate"
        );
        assert_eq!(
            heartbeat(&mut b, at(6), &member_id),
            ErrorCode::NOT_COORDINATOR
        );
        assert_eq!(
            b.check_commit(GROUP, &member_id, None, 1),
            CommitCheck::Refuse(ErrorCode::NOT_COORDINATOR)
        );
        let described = b.describe_groups(&DescribeGroupsRequest {
            groups: vec![GROUP.into()],
            include_authorized_operations: false,
        });
        assert_eq!(described.groups[0].protocol_data, "range");
        assert_eq!(
            described.groups[0].members[0].member_assignment,
            Bytes::from_static(b"p0")
        );

        // Take over at t=1000: a full session from then.
        assert_eq!(b.take_over(at(1_000), |_| true), 1);
        b.invariants();
        assert_eq!(
            b.next_deadline(),
            Some(at(1_000 + SESSION_MS as u64).instant)
        );
        assert_eq!(heartbeat(&mut b, at(1_001), &member_id), ErrorCode::NONE);
        assert_eq!(
            b.check_commit(GROUP, &member_id, None, 1),
            CommitCheck::Accept
        );
        b.sync_group(at(1_002), request_id(3), sync(&member_id, 1, b""));
        let Some((_, ApiResponse::SyncGroup(synced))) = b.take_responses().pop() else {
            panic!("a SyncGroup in Stable is answered at once")
        };
        assert_eq!(synced.assignment, Bytes::from_static(b"p0"));
        // New members get ids that cannot collide with the replayed ones.
        assert!(b.next_member_seq >= 1);

        // A tombstone (replayed on a follower) drops the membership.
        let mut c = GroupCoordinator::new(config());
        c.replay_record(at(5), &key, Some(&value));
        c.replay_record(at(6), &key, None);
        assert_eq!(c.state(GROUP), None);
        c.invariants();
    }

    // Goal: resigning answers parked requests NOT_COORDINATOR, disarms every timer and puts
    // the group back to its last record; a group that empties writes an Empty record (it
    // has offsets) or a tombstone (it has none). Method: a Stable group with a record, a
    // second member parked in a rebalance, then resign; a leave on another coordinator.
    #[test]
    fn resign_and_empty_groups() {
        let mut coordinator = GroupCoordinator::new(config());
        let (member_id, write) = rebalanced(&mut coordinator);
        coordinator.metadata_appended(GROUP, write.record.clone());
        coordinator.metadata_write_done(at(2), GROUP, 1, ErrorCode::NONE);
        coordinator.take_responses();
        // A newcomer parks a JoinGroup and starts a rebalance.
        coordinator.join_group(at(3), request_id(4), join(""));
        assert!(coordinator.take_responses().is_empty());
        assert!(coordinator.next_deadline().is_some());
        assert_eq!(coordinator.resign(at(4), |_| true), 1);
        coordinator.invariants();
        let answers = coordinator.take_responses();
        assert_eq!(answers.len(), 1);
        assert!(matches!(
            &answers[0],
            (_, ApiResponse::JoinGroup(r)) if r.error == ErrorCode::NOT_COORDINATOR
        ));
        assert_eq!(coordinator.next_deadline(), None);
        assert_eq!(coordinator.state(GROUP), Some(GroupState::Stable));
        assert_eq!(coordinator.member_ids(GROUP), vec![member_id.clone()]);

        // Back as coordinator, the member leaves: no offsets, so the group goes (tombstone).
        coordinator.take_over(at(5), |_| true);
        let leave = LeaveGroupRequest {
            group_id: GROUP.into(),
            members: vec![weir_wire::domain::LeavingMember {
                member_id: member_id.clone(),
                group_instance_id: None,
                reason: None,
            }],
        };
        coordinator.leave_group(at(6), request_id(5), leave.clone());
        let writes = coordinator.take_metadata_writes();
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].record, None, "a tombstone");
        assert_eq!(coordinator.state(GROUP), None);

        // With offsets the group stays, Empty, and its record says so.
        let mut coordinator = GroupCoordinator::new(config());
        let (member_id, write) = rebalanced(&mut coordinator);
        coordinator.metadata_appended(GROUP, write.record);
        coordinator.metadata_write_done(at(2), GROUP, 1, ErrorCode::NONE);
        let offset = CommittedOffset {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 0,
        };
        coordinator.commit(at(3), GROUP, &member_id, vec![(("t".into(), 0), offset)]);
        let mut leave = leave;
        leave.members[0].member_id = member_id;
        coordinator.leave_group(at(4), request_id(6), leave);
        let writes = coordinator.take_metadata_writes();
        let record = writes[0].record.as_ref().expect("an Empty record");
        assert!(record.members.is_empty());
        assert_eq!(
            (record.generation_id, record.protocol_name.as_deref()),
            (2, None)
        );
        assert_eq!(coordinator.state(GROUP), Some(GroupState::Empty));
        coordinator.invariants();
    }
}
