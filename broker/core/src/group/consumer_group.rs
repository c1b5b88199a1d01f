//! KIP-848 consumer groups (`group.protocol=consumer`): membership by heartbeat, server-side
//! assignment, and incremental reconciliation with member epochs.
//!
//! A group has a *group epoch* (bumped when membership, subscriptions, the assignor or the
//! metadata of subscribed topics change) and a *target assignment* computed for that epoch
//! (its *assignment epoch*). Each member moves towards its target on its own heartbeats:
//! - partitions it owns but no longer targets are **revoked** first: it stays at its epoch
//!   in `UnrevokedPartitions` until a heartbeat's owned partitions show they are gone;
//! - partitions it targets but another member still owns (assigned or being revoked) are
//!   **unreleased**: it takes the new epoch with what is free (`UnreleasedPartitions`) and
//!   picks up the rest on later heartbeats;
//! - with nothing left to revoke or wait for, it is `Stable` at the assignment epoch.
//!
//! Assignors: `uniform` (default; sticky: members keep their previous target partitions up
//! to a balanced quota, the rest go to the least loaded subscriber) and `range` (per topic,
//! contiguous ranges over the subscribers sorted by member id).
//!
//! Timers: a member that does not heartbeat within `group.consumer.session.timeout.ms` is
//! removed; a member that does not revoke within its rebalance timeout is removed (fenced).
//!
//! Why revoke before assign: a partition changes owner in two steps, each on its owner's
//! own heartbeat. The old owner is first told to give it up and keeps it (in `revoking`)
//! until a heartbeat reports it gone; only then is it free for the new owner. No moment
//! exists where two members may both consume it, which is what the classic protocol gets
//! from its stop-the-world rebalance. Epochs make stale messages harmless: a heartbeat at an
//! epoch other than the member's current one (or the one just before, when a response was
//! lost) is FENCED_MEMBER_EPOCH, and an OffsetCommit at another epoch is STALE_MEMBER_EPOCH.
//!
//! Epoch values on the wire (KIP-848): 0 joins, -1 leaves, -2 leaves but keeps a static
//! member's place until its session expires; any other value is the member's epoch.
//! Membership is kept in memory only (Kafka writes it to `__consumer_offsets`): a new
//! coordinator starts the group empty, and each member rejoins at epoch 0 when its
//! heartbeat is fenced with UNKNOWN_MEMBER_ID.
//!
//! Invariants (checked by [`GroupCoordinator::invariants`]):
//! - **no partition is owned by two members**: the members' `assigned` and `revoking` sets
//!   are pairwise disjoint (also within one member), at every step;
//! - `member_epoch <= assignment_epoch <= group_epoch`;
//! - a static instance id maps to exactly one member, which carries it;
//! - a member is in `UnrevokedPartitions` iff its `revoking` set is non-empty, and only
//!   then has a revocation timer;
//! - the target assignment gives each partition to at most one member, and only to members
//!   of the group (the assignors' postcondition, checked where the target is computed).
//!
//! Mixing protocols (documented in docs/consumer-groups.md): a consumer-protocol heartbeat into a
//! classic group with members is refused with GROUP_ID_NOT_FOUND, and a classic JoinGroup
//! into a consumer group with members with INCONSISTENT_GROUP_PROTOCOL — what Kafka 4.0
//! answers with `group.consumer.migration.policy=disabled`. Empty groups (offsets only)
//! switch type freely, keeping their offsets, as in Kafka.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;
use weir_wire::domain::{
    ApiResponse, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse,
    ConsumerGroupDescribedGroup, ConsumerGroupDescribedMember, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, DescribedTopicPartitions, TopicIdPartitions, MEMBER_EPOCH_JOIN,
    MEMBER_EPOCH_LEAVE, MEMBER_EPOCH_LEAVE_STATIC,
};
use weir_wire::error::ErrorCode;

use super::{Group, GroupCoordinator, Timer, GROUPS_MAX, GROUP_ID_BYTES_MAX, GROUP_MEMBERS_MAX};
use crate::event::RequestId;
use crate::time::Now;

/// The default server-side assignor (Kafka's first in `group.consumer.assignors`).
pub const ASSIGNOR_UNIFORM: &str = "uniform";
/// The range assignor.
pub const ASSIGNOR_RANGE: &str = "range";
/// Bound on topics a member may subscribe to.
pub const SUBSCRIBED_TOPICS_MAX: usize = 10_000;
/// Bound on a member id's length (v1 clients generate it).
pub const MEMBER_ID_BYTES_MAX: usize = 1_024;

/// A topic as the assignors see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic id.
    pub id: Uuid,
    /// Partition count.
    pub partitions: i32,
}

/// Every topic of the node by name (the node builds it for each heartbeat).
pub type TopicView = BTreeMap<String, TopicInfo>;

/// Partitions by topic id.
type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// A consumer-protocol member as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerMemberView {
    /// Member id.
    pub member_id: String,
    /// Current member epoch.
    pub member_epoch: i32,
    /// Assigned (topic id, partition), excluding partitions being revoked.
    pub assigned: Vec<(Uuid, i32)>,
}

/// A member's reconciliation state (Kafka's `MemberState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// At the assignment epoch with its whole target.
    Stable,
    /// Must revoke partitions before anything else.
    UnrevokedPartitions,
    /// At the assignment epoch, waiting for partitions other members still own.
    UnreleasedPartitions,
}

/// One consumer-protocol member.
#[derive(Debug, Clone)]
pub(super) struct ConsumerMember {
    /// Static membership (KIP-345): the id that survives the member's restarts.
    instance_id: Option<String>,
    /// Reported rack; kept for DescribeGroups (no assignor here is rack-aware).
    rack_id: Option<String>,
    client_id: String,
    client_host: String,
    /// How long the member may take to revoke before it is fenced.
    rebalance_timeout_ms: i32,
    /// Sorted, deduplicated.
    subscribed: Vec<String>,
    /// The assignor it asked for, a vote in [`ConsumerGroup::select_assignor`].
    server_assignor: Option<String>,
    /// The assignment epoch the member has reached (0 before its first assignment).
    member_epoch: i32,
    /// The epoch before `member_epoch`, so a retry after a lost response is not fenced.
    previous_epoch: i32,
    state: MemberState,
    /// Partitions the member may consume now.
    assigned: Assignment,
    /// Partitions the member must give up before it moves on.
    revoking: Assignment,
}

impl ConsumerMember {
    pub(super) fn instance_id(&self) -> Option<&str> {
        self.instance_id.as_deref()
    }

    pub(super) fn client_id(&self) -> &str {
        &self.client_id
    }
}

/// The KIP-848 part of a group.
#[derive(Debug, Clone, Default)]
pub(super) struct ConsumerGroup {
    /// Moves whenever the inputs of the assignment change (see the module doc).
    group_epoch: i32,
    /// The group epoch `target` was computed for; members catch up to it one by one.
    assignment_epoch: i32,
    pub(super) members: BTreeMap<String, ConsumerMember>,
    /// Static membership: instance id -> member id.
    static_members: BTreeMap<String, String>,
    /// Static members that left with epoch -2 (kept until their session expires): their
    /// partitions stay theirs, so a quick restart does not reshuffle the whole group.
    departed_static: BTreeSet<String>,
    /// Target assignment per member at `assignment_epoch`.
    target: BTreeMap<String, Assignment>,
    /// Subscribed topics' metadata when the group epoch last moved.
    metadata: BTreeMap<String, TopicInfo>,
    /// Assignor of the current target.
    assignor: String,
}

impl ConsumerGroup {
    /// Every partition some other member still holds, assigned or being revoked: what
    /// `member_id` may not take yet. Revoking partitions count, since their owner may still
    /// be consuming them until it reports otherwise.
    fn owned_by_others(&self, member_id: &str) -> BTreeSet<(Uuid, i32)> {
        let mut owned = BTreeSet::new();
        for (id, member) in &self.members {
            if id != member_id {
                for (topic, partitions) in member.assigned.iter().chain(&member.revoking) {
                    owned.extend(partitions.iter().map(|p| (*topic, *p)));
                }
            }
        }
        owned
    }

    /// Kafka's consumer group states.
    pub(super) fn state_name(&self) -> &'static str {
        // KIP-848's states: Assigning while the target lags the group epoch, Reconciling
        // while a member has not reached the target, Stable once every member has.
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if (self.members.values())
            .any(|m| m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Topics the members subscribe to.
    pub(super) fn subscribed_topics(&self) -> BTreeSet<String> {
        (self.members.values())
            .flat_map(|m| m.subscribed.iter().cloned())
            .collect()
    }

    /// The metadata of the subscribed topics that exist. Compared with the last one on each
    /// heartbeat: a topic created, deleted or grown moves the group epoch, which is how new
    /// partitions get assigned without any member changing its subscription.
    fn subscribed_metadata(&self, topics: &TopicView) -> BTreeMap<String, TopicInfo> {
        (self.subscribed_topics().into_iter())
            .filter_map(|name| topics.get(&name).map(|info| (name, *info)))
            .collect()
    }

    /// The assignor the members prefer most (ties: uniform first, then by name).
    fn select_assignor(&self) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(name) = &member.server_assignor {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        // Starting from uniform with no votes: a group where nobody asks gets the default.
        let mut best = (ASSIGNOR_UNIFORM, 0usize);
        for (name, count) in votes {
            if count > best.1 || (count == best.1 && name == ASSIGNOR_UNIFORM) {
                best = (name, count);
            }
        }
        // check_heartbeat admits only the assignors this broker has.
        assert!(
            best.0 == ASSIGNOR_UNIFORM || best.0 == ASSIGNOR_RANGE,
            "assignor {}",
            best.0
        );
        best.0.to_string()
    }

    /// A new target for the current group epoch. Computed lazily, on the first heartbeat
    /// after the epoch moved, and never changes what members own: they move towards it
    /// through [`reconcile`] on their own heartbeats.
    fn compute_target(&mut self, topics: &TopicView) {
        let assignor = self.select_assignor();
        let subscriptions: BTreeMap<&str, &[String]> = (self.members.iter())
            .map(|(id, m)| (id.as_str(), m.subscribed.as_slice()))
            .collect();
        // Uniform is given the previous target to stay sticky; range is a pure function of
        // the subscriptions, so with it partitions may move whenever membership changes.
        let target = if assignor == ASSIGNOR_RANGE {
            assign_range(&subscriptions, topics)
        } else {
            assign_uniform(&subscriptions, topics, &self.target)
        };
        // The assignors' postcondition; reconciliation alone keeps owners apart only if the
        // target never names a partition twice.
        let mut targeted = BTreeSet::new();
        for (member_id, assignment) in &target {
            assert!(
                self.members.contains_key(member_id),
                "target for {member_id}"
            );
            for (topic, partitions) in assignment {
                for p in partitions {
                    assert!(targeted.insert((*topic, *p)), "{topic}/{p} targeted twice");
                }
            }
        }
        self.target = target;
        self.assignor = assignor;
        // The target matches the group epoch now: the group leaves Assigning, and members
        // reconcile towards this epoch.
        self.assignment_epoch = self.group_epoch;
    }

    /// Remove a member (left, expired or fenced). Its partitions are free at once: the
    /// member either said it stopped (leave) or is presumed dead after its session or
    /// rebalance timeout, which is the bound Kafka gives it to stop consuming too.
    fn remove_member(&mut self, member_id: &str) -> Option<ConsumerMember> {
        let member = self.members.remove(member_id)?;
        if let Some(instance_id) = &member.instance_id {
            if self.static_members.get(instance_id).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance_id);
            }
        }
        // No trace of the member may remain: the target names only members.
        self.departed_static.remove(member_id);
        self.target.remove(member_id);
        // Its partitions (assigned and revoking) are free now: a new target hands them on.
        self.group_epoch += 1;
        assert!(
            self.group_epoch > self.assignment_epoch,
            "epoch did not move"
        );
        Some(member)
    }
}

/// Uniform assignor: sticky to the previous target, balanced for identical subscriptions.
/// Stickiness matters more here than in the classic protocol: every partition that moves
/// costs a revocation round trip (the old owner's heartbeat) before the new owner gets it.
fn assign_uniform(
    subscriptions: &BTreeMap<&str, &[String]>,
    topics: &TopicView,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let mut result: BTreeMap<String, Assignment> = BTreeMap::new();
    if subscriptions.is_empty() {
        return result;
    }
    // Previous targets are keyed by topic id; the names let a kept partition be checked
    // against the member's current subscription.
    let names: BTreeMap<Uuid, &str> = (topics.iter())
        .map(|(name, info)| (info.id, name.as_str()))
        .collect();
    let all: BTreeSet<String> = subscriptions
        .values()
        .flat_map(|s| s.iter().cloned())
        .collect();
    // Every partition of every subscribed topic that exists, in topic-name order.
    let mut partitions: Vec<(&str, Uuid, i32)> = Vec::new();
    for name in &all {
        if let Some(info) = topics.get(name) {
            partitions.extend((0..info.partitions).map(|p| (name.as_str(), info.id, p)));
        }
    }
    // Quotas: every member gets `total / n` or one more, as long as it subscribes to enough;
    // `extra_left` counts the "one more" slots still to hand out.
    let total = partitions.len();
    let n = subscriptions.len();
    let quota_min = total / n;
    let mut extra_left = total % n;
    // Previous partitions still valid for each member.
    let mut kept: BTreeMap<&str, Vec<(Uuid, i32)>> = BTreeMap::new();
    for (member, subscribed) in subscriptions {
        // Kept only if the topic still exists under that id, the member still subscribes to
        // it, and the partition is still within the topic's count.
        let valid: Vec<(Uuid, i32)> = (previous.get(*member).into_iter())
            .flat_map(|a| a.iter())
            .filter_map(|(topic, ps)| {
                let name = names.get(topic)?;
                let info = topics.get(*name)?;
                subscribed
                    .iter()
                    .any(|s| s == name)
                    .then_some((topic, ps, info))
            })
            .flat_map(|(topic, ps, info)| {
                ps.iter()
                    .filter(move |p| **p < info.partitions)
                    .map(move |p| (*topic, *p))
            })
            .collect();
        kept.insert(member, valid);
    }
    // Members with more previous partitions get the +1 slots first, so fewer move.
    let mut order: Vec<&str> = kept.keys().copied().collect();
    order.sort_by_key(|m| (std::cmp::Reverse(kept[m].len()), *m));
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for member in order {
        let previous = &kept[member];
        // A member keeps at most its quota of what it had; the surplus goes back to the pool,
        // which is how a newcomer gets partitions without everyone else moving.
        let mut quota = quota_min.min(previous.len());
        if previous.len() > quota_min && extra_left > 0 {
            quota = quota_min + 1;
            extra_left -= 1;
        }
        let entry = result.entry(member.to_string()).or_default();
        let mut count = 0;
        for (topic, p) in previous.iter().take(quota) {
            // `taken` guarantees no partition is given twice, whatever the previous target held.
            if taken.insert((*topic, *p)) {
                entry.entry(*topic).or_default().insert(*p);
                count += 1;
            }
        }
        counts.insert(member, count);
    }
    // The rest go one by one to the least loaded subscriber (ties: smallest member id, so
    // the result is deterministic).
    for (name, topic, p) in partitions {
        if taken.contains(&(topic, p)) {
            continue;
        }
        let least = (subscriptions.iter())
            .filter(|(_, s)| s.iter().any(|t| t == name))
            .map(|(m, _)| (counts.get(m).copied().unwrap_or(0), *m))
            .min();
        if let Some((_, member)) = least {
            let entry = result.entry(member.to_string()).or_default();
            entry.entry(topic).or_default().insert(p);
            *counts.entry(member).or_default() += 1;
        }
    }
    result
}

/// Range assignor: per topic, contiguous ranges over its subscribers sorted by member id.
fn assign_range(
    subscriptions: &BTreeMap<&str, &[String]>,
    topics: &TopicView,
) -> BTreeMap<String, Assignment> {
    let mut result: BTreeMap<String, Assignment> = (subscriptions.keys())
        .map(|m| (m.to_string(), Assignment::new()))
        .collect();
    let all: BTreeSet<&String> = subscriptions.values().flat_map(|s| s.iter()).collect();
    for name in all {
        let Some(info) = topics.get(name) else {
            continue;
        };
        // Subscribers in member id order (a BTreeMap), so every run computes the same ranges.
        let members: Vec<&str> = (subscriptions.iter())
            .filter(|(_, s)| s.contains(name))
            .map(|(m, _)| *m)
            .collect();
        let n = members.len() as i32;
        if n == 0 {
            continue;
        }
        // The first `extra` members get one partition more, as in Kafka's range assignor.
        let (per, extra) = (info.partitions / n, info.partitions % n);
        let mut start = 0;
        for (i, member) in members.iter().enumerate() {
            let len = per + i32::from((i as i32) < extra);
            let entry = result.entry(member.to_string()).or_default();
            if len > 0 {
                entry.entry(info.id).or_default().extend(start..start + len);
            }
            start += len;
        }
        // The ranges tile the topic: every partition once, none past the end.
        assert_eq!(start, info.partitions, "range over {name}");
    }
    result
}

/// An assignment as the heartbeat response carries it (topics with no partition left out).
fn to_wire(assignment: &Assignment) -> Vec<TopicIdPartitions> {
    (assignment.iter())
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(topic, ps)| TopicIdPartitions {
            topic_id: *topic,
            partitions: ps.iter().copied().collect(),
        })
        .collect()
}

/// What a member reports it owns. Client input: duplicates merge, unknown topics and
/// partitions are kept as reported (they can only make a revocation wait or a stale epoch
/// be fenced, never free a partition early).
fn from_wire(topics: &[TopicIdPartitions]) -> Assignment {
    let mut out = Assignment::new();
    for t in topics {
        let entry: &mut BTreeSet<i32> = out.entry(t.topic_id).or_default();
        entry.extend(t.partitions.iter().copied());
    }
    out.retain(|_, ps| !ps.is_empty());
    out
}

/// True when the two assignments share a partition.
fn intersects(a: &Assignment, b: &Assignment) -> bool {
    a.iter()
        .any(|(t, ps)| b.get(t).is_some_and(|other| !ps.is_disjoint(other)))
}

/// True when every partition of `a` is in `b`.
fn is_subset(a: &Assignment, b: &Assignment) -> bool {
    a.iter()
        .all(|(t, ps)| ps.is_empty() || b.get(t).is_some_and(|other| ps.is_subset(other)))
}

/// An assignment for ConsumerGroupDescribe, with topic names (empty for a deleted topic).
fn describe_assignment(
    assignment: &Assignment,
    names: &BTreeMap<Uuid, String>,
) -> Vec<DescribedTopicPartitions> {
    (assignment.iter())
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(topic, ps)| DescribedTopicPartitions {
            topic_id: *topic,
            topic_name: names.get(topic).cloned().unwrap_or_default(),
            partitions: ps.iter().copied().collect(),
        })
        .collect()
}

/// What a heartbeat validated to.
enum Join {
    /// A new member (or a static member taking over its old place).
    New,
    /// A known member.
    Known,
    /// A static member's new incarnation replaced the member with this id.
    Replaced(String),
}

impl GroupCoordinator {
    /// ConsumerGroupHeartbeat: join, leave, or heartbeat-and-reconcile. Always answered now.
    pub fn consumer_heartbeat(
        &mut self,
        now: Now,
        id: RequestId,
        request: ConsumerGroupHeartbeatRequest,
        topics: &TopicView,
    ) {
        let client_id = request.client_id.clone();
        let response = match self.consumer_heartbeat_inner(now, request, &client_id, topics) {
            Ok(response) => response,
            Err((error, message)) => ConsumerGroupHeartbeatResponse {
                error,
                error_message: Some(message),
                member_epoch: -1,
                heartbeat_interval_ms: self.config.consumer_heartbeat_interval_ms,
                ..ConsumerGroupHeartbeatResponse::default()
            },
        };
        (self.responses).push((id, ApiResponse::ConsumerGroupHeartbeat(response)));
    }

    /// The heartbeat's steps, in this order: validate, leave, join or check the epoch,
    /// apply the changes that move the group epoch, recompute the target if it is behind,
    /// reconcile this member, then arm its timers. Errors change nothing.
    fn consumer_heartbeat_inner(
        &mut self,
        now: Now,
        request: ConsumerGroupHeartbeatRequest,
        client_id: &str,
        topics: &TopicView,
    ) -> Result<ConsumerGroupHeartbeatResponse, (ErrorCode, String)> {
        check_heartbeat(&request)?;
        let group_id = request.group_id.clone();
        // Only a join (epoch 0) may create the group. Any other epoch names membership this
        // coordinator does not have (it may have just taken the group over); the answer
        // UNKNOWN_MEMBER_ID makes the client rejoin at epoch 0.
        if !self.groups.contains_key(&group_id) {
            if request.member_epoch != MEMBER_EPOCH_JOIN {
                return Err((ErrorCode::UNKNOWN_MEMBER_ID, "unknown group".into()));
            }
            if self.groups.len() >= GROUPS_MAX {
                let message = "too many groups".into();
                return Err((ErrorCode::COORDINATOR_NOT_AVAILABLE, message));
            }
            self.groups
                .insert(group_id.clone(), Group::new(now.instant, true));
        }
        let group = self.groups.get_mut(&group_id).expect("group exists");
        // A replayed copy is never joined: see the module doc of `group`.
        if !group.coordinated {
            let message = format!("this broker does not coordinate group {group_id}");
            return Err((ErrorCode::NOT_COORDINATOR, message));
        }
        // A classic group in use (members, or ids handed out by KIP-394) is not joined: see
        // "Mixing protocols" in the module doc.
        if !group.members.is_empty() || !group.pending_members.is_empty() {
            let message = format!("group {group_id} is not a consumer group");
            return Err((ErrorCode::GROUP_ID_NOT_FOUND, message));
        }
        // An empty classic group (offsets only) becomes a consumer group, keeping offsets.
        group.protocol_type = None;
        group.protocol_name = None;
        let consumer = group.consumer.get_or_insert_with(Box::default);

        // ---- leave -------------------------------------------------------------------
        // A leave frees the member's partitions at once: the client stopped consuming
        // before it sent it (KIP-848's leave is the last thing a consumer does).
        if request.member_epoch == MEMBER_EPOCH_LEAVE
            || request.member_epoch == MEMBER_EPOCH_LEAVE_STATIC
        {
            let member_id = request.member_id.clone();
            let Some(member) = consumer.members.get(&member_id) else {
                return Err((ErrorCode::UNKNOWN_MEMBER_ID, "unknown member".into()));
            };
            let static_leave =
                request.member_epoch == MEMBER_EPOCH_LEAVE_STATIC && member.instance_id.is_some();
            if static_leave {
                // Keep the assignment for the member's return until its session expires.
                consumer.departed_static.insert(member_id.clone());
            } else {
                consumer.remove_member(&member_id);
                self.disarm(&group_id, &Timer::ConsumerSession(member_id.clone()));
                self.disarm(&group_id, &Timer::ConsumerRevoke(member_id.clone()));
                tracing::info!(group = %group_id, member = %member_id, "consumer member left");
                self.drop_if_unused(&group_id);
            }
            // The leave is acknowledged by echoing its epoch (-1 or -2), as Kafka answers.
            return Ok(ConsumerGroupHeartbeatResponse {
                member_id: Some(member_id),
                member_epoch: request.member_epoch,
                heartbeat_interval_ms: 0,
                ..ConsumerGroupHeartbeatResponse::default()
            });
        }

        // ---- join or validate --------------------------------------------------------
        let mut member_id = request.member_id.clone();
        let join = if request.member_epoch == MEMBER_EPOCH_JOIN {
            // A client that sends no id gets one from the coordinator; newer clients generate
            // their own (KIP-1082).
            if member_id.is_empty() {
                member_id = self.new_member_id(client_id);
            }
            let consumer = self.consumer_group_mut(&group_id);
            consumer_join(consumer, &member_id, &request, client_id)?
        } else {
            let consumer = self.consumer_group_mut(&group_id);
            let Some(member) = consumer.members.get(&member_id) else {
                return Err((ErrorCode::UNKNOWN_MEMBER_ID, "unknown member".into()));
            };
            // A member whose last response was lost still sends the previous epoch; it is
            // let through only if it owns nothing it was not given, so a zombie of that
            // epoch cannot use the gap to hold on to partitions.
            let owned = request.topic_partitions.as_deref().map(from_wire);
            let lost_response = request.member_epoch == member.previous_epoch
                && owned
                    .as_ref()
                    .is_none_or(|o| is_subset(o, &member.assigned));
            if request.member_epoch != member.member_epoch && !lost_response {
                let message = format!(
                    "member epoch {} is not the current {}",
                    request.member_epoch, member.member_epoch
                );
                return Err((ErrorCode::FENCED_MEMBER_EPOCH, message));
            }
            Join::Known
        };
        let heartbeat_interval_ms = self.config.consumer_heartbeat_interval_ms;
        // The member exists from here on: joined, validated, or taken over.
        assert!(
            self.consumer_group_mut(&group_id)
                .members
                .contains_key(&member_id),
            "group {group_id}: {member_id} missing after join"
        );
        if let Join::Replaced(old_id) = &join {
            // The old incarnation's timers go; the new one's are armed below.
            self.disarm(&group_id, &Timer::ConsumerSession(old_id.clone()));
            self.disarm(&group_id, &Timer::ConsumerRevoke(old_id.clone()));
        }
        let consumer = self.consumer_group_mut(&group_id);
        consumer.departed_static.remove(&member_id);
        let member = consumer.members.get_mut(&member_id).expect("member exists");

        // ---- updates that move the group epoch -----------------------------------------
        // A new member moves the epoch: the target must give it partitions. A known member
        // rejoining at epoch 0, or a static replacement, keeps the target it had.
        let mut bump = matches!(join, Join::New);
        if let Some(names) = &request.subscribed_topic_names {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            if names != member.subscribed {
                member.subscribed = names;
                bump = true;
            }
        }
        if request.server_assignor.is_some() && request.server_assignor != member.server_assignor {
            member.server_assignor = request.server_assignor.clone();
            bump = true;
        }
        // Timeouts and rack change nothing the assignors read, so they do not move the epoch.
        if request.rebalance_timeout_ms >= 0 {
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        }
        if request.rack_id.is_some() {
            member.rack_id = request.rack_id.clone();
        }
        let metadata = consumer.subscribed_metadata(topics);
        if metadata != consumer.metadata {
            consumer.metadata = metadata;
            bump = true;
        }
        if bump {
            consumer.group_epoch += 1;
        }
        // Recomputed on whichever heartbeat first sees the new epoch; every member then
        // reconciles against that same target.
        if consumer.group_epoch > consumer.assignment_epoch {
            consumer.compute_target(topics);
        }

        // ---- reconcile ---------------------------------------------------------------
        // `None` (field absent): the member reported nothing, which never counts as having
        // revoked (see `reconcile`).
        let owned = request.topic_partitions.as_deref().map(from_wire);
        let before = consumer.members.get(&member_id).map(|m| m.assigned.clone());
        let revoke_timer = Timer::ConsumerRevoke(member_id.clone());
        let was_revoking =
            (self.groups.get(&group_id)).is_some_and(|g| g.armed.contains_key(&revoke_timer));
        let consumer = self.consumer_group_mut(&group_id);
        reconcile(consumer, &member_id, owned.as_ref());
        let member = &consumer.members[&member_id];
        assert!(
            member.member_epoch <= consumer.assignment_epoch,
            "group {group_id}: {member_id} epoch {} ahead of {}",
            member.member_epoch,
            consumer.assignment_epoch
        );
        let now_revoking = member.state == MemberState::UnrevokedPartitions;
        let rebalance_ms = u64::try_from(member.rebalance_timeout_ms).unwrap_or(0);
        let changed = before.as_ref() != Some(&member.assigned);
        // The assignment is sent when it changed, when the member joins, or when what it
        // reports differs from what it was given (it missed an answer): KIP-848 leaves it
        // out otherwise, to keep heartbeats small.
        let full = request.member_epoch == MEMBER_EPOCH_JOIN
            || owned.as_ref().is_some_and(|o| o != &member.assigned);
        let response = ConsumerGroupHeartbeatResponse {
            member_id: Some(member_id.clone()),
            member_epoch: member.member_epoch,
            heartbeat_interval_ms,
            assignment: (changed || full || request.member_epoch != member.member_epoch)
                .then(|| to_wire(&member.assigned)),
            ..ConsumerGroupHeartbeatResponse::default()
        };
        let session_ms = u64::try_from(self.config.consumer_session_timeout_ms).unwrap_or(0);
        let at = now.instant.add_ms(session_ms);
        self.arm(&group_id, Timer::ConsumerSession(member_id.clone()), at);
        // The revocation deadline is armed once, when revoking starts; later heartbeats
        // must not push it back, or a member could hold partitions forever by heartbeating.
        if now_revoking && !was_revoking {
            let at = now.instant.add_ms(rebalance_ms);
            self.arm(&group_id, Timer::ConsumerRevoke(member_id.clone()), at);
        } else if !now_revoking && was_revoking {
            self.disarm(&group_id, &Timer::ConsumerRevoke(member_id.clone()));
        }
        Ok(response)
    }

    /// The KIP-848 state of a group the caller just made sure is a consumer group.
    fn consumer_group_mut(&mut self, group_id: &str) -> &mut ConsumerGroup {
        (self.groups.get_mut(group_id))
            .and_then(|g| g.consumer.as_deref_mut())
            .expect("consumer group exists")
    }

    /// A consumer timer fired: a session expired or a revocation took too long.
    pub(super) fn fire_consumer(&mut self, group_id: &str, member_id: &str, why: &str) {
        let Some(consumer) = (self.groups.get_mut(group_id)).and_then(|g| g.consumer.as_mut())
        else {
            return;
        };
        if consumer.remove_member(member_id).is_none() {
            return;
        }
        // Removing the member released its partitions; the next heartbeat of any other
        // member computes a new target that hands them on.
        assert!(
            !consumer.members.contains_key(member_id),
            "{member_id} still a member"
        );
        tracing::info!(
            group = group_id,
            member = member_id,
            "{why}: member removed"
        );
        self.disarm(group_id, &Timer::ConsumerSession(member_id.to_string()));
        self.disarm(group_id, &Timer::ConsumerRevoke(member_id.to_string()));
        self.drop_if_unused(group_id);
    }

    /// ConsumerGroupDescribe.
    pub fn consumer_group_describe(
        &self,
        request: &ConsumerGroupDescribeRequest,
        topics: &TopicView,
    ) -> ConsumerGroupDescribeResponse {
        // Assignments are kept by topic id; the answer names them (empty for a deleted topic).
        let names: BTreeMap<Uuid, String> = (topics.iter())
            .map(|(name, info)| (info.id, name.clone()))
            .collect();
        let groups = (request.group_ids.iter())
            .map(|group_id| {
                // Kafka's bit set for a group, as in DescribeGroups: READ(3), DELETE(6),
                // DESCRIBE(8); i32::MIN when not requested.
                let authorized_operations = if request.include_authorized_operations {
                    (1 << 3) | (1 << 6) | (1 << 8)
                } else {
                    i32::MIN
                };
                let mut described = ConsumerGroupDescribedGroup {
                    error: ErrorCode::NONE,
                    error_message: None,
                    group_id: group_id.clone(),
                    group_state: String::new(),
                    group_epoch: 0,
                    assignment_epoch: 0,
                    assignor_name: String::new(),
                    members: Vec::new(),
                    authorized_operations,
                };
                let group = self.groups.get(group_id);
                let consumer = group.and_then(|g| g.consumer.as_deref());
                // Not a consumer group: GROUP_ID_NOT_FOUND either way, the message telling a
                // classic group apart from a missing one.
                let Some(consumer) = consumer else {
                    let classic = group.is_some_and(|g| !g.members.is_empty());
                    described.error = ErrorCode::GROUP_ID_NOT_FOUND;
                    described.error_message = Some(if classic {
                        format!("group {group_id} is not a consumer group")
                    } else {
                        format!("group {group_id} not found")
                    });
                    return described;
                };
                described.group_state = consumer.state_name().to_string();
                described.group_epoch = consumer.group_epoch;
                described.assignment_epoch = consumer.assignment_epoch;
                described.assignor_name = consumer.assignor.clone();
                // Each member with what it owns now (`assignment`, without what it is revoking) and
                // what it moves towards (`target_assignment`): the gap is reconciliation to come.
                described.members = (consumer.members.iter())
                    .map(|(id, m)| ConsumerGroupDescribedMember {
                        member_id: id.clone(),
                        instance_id: m.instance_id.clone(),
                        rack_id: m.rack_id.clone(),
                        member_epoch: m.member_epoch,
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        subscribed_topic_names: m.subscribed.clone(),
                        subscribed_topic_regex: None,
                        assignment: describe_assignment(&m.assigned, &names),
                        target_assignment: describe_assignment(
                            consumer.target.get(id).unwrap_or(&Assignment::new()),
                            &names,
                        ),
                        member_type: 0,
                    })
                    .collect();
                described
            })
            .collect();
        ConsumerGroupDescribeResponse {
            throttle_time_ms: 0,
            groups,
        }
    }

    /// A consumer group's members, for the operator view and tests.
    pub fn consumer_members(&self, group_id: &str) -> Vec<ConsumerMemberView> {
        let consumer = (self.groups.get(group_id)).and_then(|g| g.consumer.as_deref());
        (consumer.into_iter())
            .flat_map(|c| c.members.iter())
            .map(|(id, m)| ConsumerMemberView {
                member_id: id.clone(),
                member_epoch: m.member_epoch,
                assigned: (m.assigned.iter())
                    .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
                    .collect(),
            })
            .collect()
    }

    /// OffsetCommit check for a consumer group with members (KIP-848 rules): the member
    /// exists and commits at its current epoch. A member keeps its epoch while it revokes,
    /// so it can still commit what it consumed from the partitions it is giving up; any
    /// other epoch is STALE_MEMBER_EPOCH (the client refreshes and retries).
    pub(super) fn check_consumer_commit(
        consumer: &ConsumerGroup,
        member_id: &str,
        member_epoch: i32,
    ) -> Result<(), ErrorCode> {
        let member = (consumer.members.get(member_id)).ok_or(ErrorCode::UNKNOWN_MEMBER_ID)?;
        if member_epoch != member.member_epoch {
            return Err(ErrorCode::STALE_MEMBER_EPOCH);
        }
        Ok(())
    }

    /// Assert the consumer-group invariants listed in the module doc.
    pub(super) fn consumer_invariants(&self, group_id: &str, group: &Group) {
        let Some(consumer) = group.consumer.as_deref() else {
            return;
        };
        // The two protocols never share a group's membership ("Mixing protocols").
        assert!(
            consumer.members.is_empty() || group.members.is_empty(),
            "group {group_id} has classic and consumer members"
        );
        assert!(
            consumer.assignment_epoch <= consumer.group_epoch,
            "group {group_id}"
        );
        // The protocol's safety property: one owner per partition at most, counting the
        // partitions being revoked (their owner may still be consuming them).
        let mut owners: BTreeMap<(Uuid, i32), &str> = BTreeMap::new();
        for (member_id, member) in &consumer.members {
            assert!(
                member.member_epoch <= consumer.assignment_epoch,
                "group {group_id} member {member_id} epoch {} > {}",
                member.member_epoch,
                consumer.assignment_epoch
            );
            for (topic, partitions) in member.assigned.iter().chain(&member.revoking) {
                for p in partitions {
                    if let Some(other) = owners.insert((*topic, *p), member_id) {
                        panic!("group {group_id}: {topic}/{p} owned by {other} and {member_id}");
                    }
                }
            }
            let revoking = member.revoking.values().any(|ps| !ps.is_empty());
            assert_eq!(
                member.state == MemberState::UnrevokedPartitions,
                revoking,
                "group {group_id} member {member_id} state"
            );
            // A revocation deadline exists exactly while something is being revoked: without
            // one a member could hold partitions forever; a stale one would remove a member that
            // is done revoking.
            let timer = Timer::ConsumerRevoke(member_id.clone());
            assert_eq!(
                group.armed.contains_key(&timer),
                revoking,
                "group {group_id} member {member_id} revoke timer"
            );
            if let Some(instance_id) = &member.instance_id {
                assert_eq!(
                    consumer.static_members.get(instance_id),
                    Some(member_id),
                    "group {group_id} instance {instance_id}"
                );
            }
        }
        // And the reverse: every mapping names a member that carries that instance id.
        for (instance_id, member_id) in &consumer.static_members {
            let carried = (consumer.members.get(member_id)).and_then(|m| m.instance_id.as_ref());
            assert_eq!(carried, Some(instance_id), "group {group_id}");
        }
    }
}

/// The checks that need no group: ids and epochs well formed, the fields a join requires,
/// and bounds on what the member may ask for. Everything here is client input, so every
/// failure is an error code.
fn check_heartbeat(request: &ConsumerGroupHeartbeatRequest) -> Result<(), (ErrorCode, String)> {
    let invalid = |message: &str| Err((ErrorCode::INVALID_REQUEST, message.to_string()));
    if request.group_id.is_empty() || request.group_id.len() > GROUP_ID_BYTES_MAX {
        return Err((ErrorCode::INVALID_GROUP_ID, "invalid group id".into()));
    }
    if request.member_id.len() > MEMBER_ID_BYTES_MAX {
        return invalid("member id too long");
    }
    if request.member_epoch != MEMBER_EPOCH_JOIN && request.member_id.is_empty() {
        return invalid("member id is required unless joining");
    }
    // -2 is the lowest value with a meaning on the wire (module doc).
    if request.member_epoch < MEMBER_EPOCH_LEAVE_STATIC {
        return invalid("invalid member epoch");
    }
    // A regex subscription would need the broker to match it against every topic; it is
    // refused by name rather than silently ignored, which would leave the member idle.
    if request
        .subscribed_topic_regex
        .as_deref()
        .is_some_and(|r| !r.is_empty())
    {
        return invalid(
            "subscribed_topic_regex is not supported by this broker; subscribe by names",
        );
    }
    // A join must carry what the assignor and the timers need; later heartbeats may leave
    // out fields that did not change (KIP-848 sends only what changed).
    if request.member_epoch == MEMBER_EPOCH_JOIN {
        if request.rebalance_timeout_ms < 0 {
            return invalid("rebalance_timeout_ms is required when joining");
        }
        if request.subscribed_topic_names.is_none() {
            return invalid("subscribed_topic_names is required when joining");
        }
        if request
            .topic_partitions
            .as_ref()
            .is_some_and(|t| !t.is_empty())
        {
            return invalid("a joining member owns no partitions");
        }
    }
    if (request.subscribed_topic_names.as_ref()).is_some_and(|n| n.len() > SUBSCRIBED_TOPICS_MAX) {
        return invalid("too many subscribed topics");
    }
    // UNSUPPORTED_ASSIGNOR rather than a silent fallback: the client asked for a specific
    // strategy. This is also what lets `select_assignor` assert its result.
    if let Some(assignor) = &request.server_assignor {
        if assignor != ASSIGNOR_UNIFORM && assignor != ASSIGNOR_RANGE {
            let message = format!("assignor {assignor} is not one of uniform, range");
            return Err((ErrorCode::UNSUPPORTED_ASSIGNOR, message));
        }
    }
    Ok(())
}

/// Epoch 0: a new member, a member that lost its state (it owns nothing now), or a static
/// member's new incarnation taking over the old one's place.
fn consumer_join(
    consumer: &mut ConsumerGroup,
    member_id: &str,
    request: &ConsumerGroupHeartbeatRequest,
    client_id: &str,
) -> Result<Join, (ErrorCode, String)> {
    if let Some(instance_id) = &request.instance_id {
        if let Some(old_id) = consumer.static_members.get(instance_id).cloned() {
            // A live static member keeps its instance id: a second process with the same
            // id is refused, rather than two of them sharing an assignment.
            if old_id != member_id && !consumer.departed_static.contains(&old_id) {
                let message = format!("instance {instance_id} is still used by {old_id}");
                return Err((ErrorCode::UNRELEASED_INSTANCE_ID, message));
            }
            if old_id != member_id {
                // The new incarnation keeps the old one's partitions and epoch.
                if let Some(member) = consumer.members.remove(&old_id) {
                    consumer.departed_static.remove(&old_id);
                    if let Some(target) = consumer.target.remove(&old_id) {
                        consumer.target.insert(member_id.to_string(), target);
                    }
                    consumer.members.insert(member_id.to_string(), member);
                    consumer
                        .static_members
                        .insert(instance_id.clone(), member_id.to_string());
                    return Ok(Join::Replaced(old_id));
                }
            }
        }
    }
    if let Some(member) = consumer.members.get_mut(member_id) {
        // The client rejoined after being fenced: it dropped everything it owned. Its
        // epoch restarts at 0, so it reconciles from scratch on this same heartbeat.
        member.assigned.clear();
        member.revoking.clear();
        member.previous_epoch = member.member_epoch;
        member.member_epoch = 0;
        member.state = MemberState::Stable;
        return Ok(Join::Known);
    }
    // Checked before the static mapping is written, so a refusal leaves no trace.
    if consumer.members.len() >= GROUP_MEMBERS_MAX {
        return Err((ErrorCode::GROUP_MAX_SIZE_REACHED, "group is full".into()));
    }
    if let Some(instance_id) = &request.instance_id {
        consumer
            .static_members
            .insert(instance_id.clone(), member_id.to_string());
    }
    let mut subscribed = request.subscribed_topic_names.clone().unwrap_or_default();
    subscribed.sort();
    subscribed.dedup();
    consumer.members.insert(
        member_id.to_string(),
        ConsumerMember {
            instance_id: request.instance_id.clone(),
            rack_id: request.rack_id.clone(),
            client_id: client_id.to_string(),
            client_host: String::new(),
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            subscribed,
            server_assignor: request.server_assignor.clone(),
            member_epoch: 0,
            previous_epoch: -1,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            revoking: Assignment::new(),
        },
    );
    assert!(consumer.members.len() <= GROUP_MEMBERS_MAX, "checked above");
    Ok(Join::New)
}

/// Move `member_id` towards its target (Kafka's CurrentAssignmentBuilder, simplified):
/// revoke first, then take the new epoch with whatever is free.
fn reconcile(consumer: &mut ConsumerGroup, member_id: &str, owned: Option<&Assignment>) {
    // The member moves only to the current assignment epoch, never beyond (the target is
    // computed before reconciling, so it is at the group epoch here).
    let epoch = consumer.assignment_epoch;
    let target = consumer.target.get(member_id).cloned().unwrap_or_default();
    let others = consumer.owned_by_others(member_id);
    let Some(member) = consumer.members.get_mut(member_id) else {
        return;
    };
    // Until the member has revoked, it may not move: `others` would otherwise be computed
    // while its own revoked partitions still count as someone's.
    match member.state {
        MemberState::UnrevokedPartitions => {
            // Still owned (or not reported): keep waiting.
            let revoked = owned.is_some_and(|o| !intersects(o, &member.revoking));
            if !revoked {
                return;
            }
            member.revoking.clear();
        }
        MemberState::Stable if member.member_epoch == epoch => return,
        _ => {}
    }
    // Split what the member holds: kept if still targeted, revoked otherwise.
    let mut keep = Assignment::new();
    let mut revoke = Assignment::new();
    for (topic, partitions) in &member.assigned {
        let wanted = target.get(topic);
        for p in partitions {
            let side = if wanted.is_some_and(|w| w.contains(p)) {
                &mut keep
            } else {
                &mut revoke
            };
            side.entry(*topic).or_default().insert(*p);
        }
    }
    // Revocation first, at the member's current epoch: it must confirm the partitions are
    // gone before it may take new ones (or move to the new epoch).
    if !revoke.is_empty() {
        member.assigned = keep;
        member.revoking = revoke;
        member.state = MemberState::UnrevokedPartitions;
        return;
    }
    // Nothing to revoke: take every targeted partition no other member holds; the rest
    // arrive on later heartbeats, once their owners have revoked them.
    let mut unreleased = false;
    for (topic, partitions) in &target {
        for p in partitions {
            if others.contains(&(*topic, *p)) {
                unreleased = true;
            } else {
                keep.entry(*topic).or_default().insert(*p);
            }
        }
    }
    member.assigned = keep;
    // The epoch advances only here, past revocation: a member at the new epoch holds
    // nothing the target gave to another. The old epoch is kept for a lost response.
    if member.member_epoch != epoch {
        member.previous_epoch = member.member_epoch;
        member.member_epoch = epoch;
    }
    member.state = if unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
    // The safety property of the protocol: nothing taken here is held by another member.
    let clash =
        (member.assigned.iter()).any(|(t, ps)| ps.iter().any(|p| others.contains(&(*t, *p))));
    assert!(!clash, "{member_id} took a partition another member owns");
    assert!(
        member.revoking.is_empty(),
        "{member_id} moved on while revoking"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(spec: &[(&str, u128, i32)]) -> TopicView {
        (spec.iter())
            .map(|(name, id, partitions)| {
                let info = TopicInfo {
                    id: Uuid::from_u128(*id),
                    partitions: *partitions,
                };
                (name.to_string(), info)
            })
            .collect()
    }

    fn counts(assignment: &BTreeMap<String, Assignment>) -> Vec<usize> {
        (assignment.values())
            .map(|a| a.values().map(BTreeSet::len).sum())
            .collect()
    }

    // Goal: uniform balances identical subscriptions and is sticky when a member joins.
    // Method: 6 partitions over 2 then 3 members; check counts and how many partitions move.
    #[test]
    fn uniform_balances_and_sticks() {
        let view = topics(&[("t", 1, 6)]);
        let subs = ["t".to_string()];
        let two: BTreeMap<&str, &[String]> = [("a", &subs[..]), ("b", &subs[..])].into();
        let first = assign_uniform(&two, &view, &BTreeMap::new());
        assert_eq!(counts(&first), vec![3, 3]);
        let three: BTreeMap<&str, &[String]> =
            [("a", &subs[..]), ("b", &subs[..]), ("c", &subs[..])].into();
        let second = assign_uniform(&three, &view, &first);
        assert_eq!(counts(&second), vec![2, 2, 2]);
        for member in ["a", "b"] {
            assert!(
                is_subset(&second[member], &first[member]),
                "{member} kept its own"
            );
        }
        let eight: BTreeMap<&str, &[String]> = (["a", "b", "c", "d", "e", "f", "g", "h"]
            .into_iter())
        .map(|m| (m, &subs[..]))
        .collect();
        let idle = assign_uniform(&eight, &view, &second);
        let mut c = counts(&idle);
        c.sort();
        assert_eq!(c, vec![0, 0, 1, 1, 1, 1, 1, 1]);
    }

    // Goal: range gives contiguous ranges per topic, extra partitions to the first members.
    // Method: 7 partitions over 3 members.
    #[test]
    fn range_is_contiguous() {
        let view = topics(&[("t", 1, 7)]);
        let subs = ["t".to_string()];
        let three: BTreeMap<&str, &[String]> =
            [("a", &subs[..]), ("b", &subs[..]), ("c", &subs[..])].into();
        let result = assign_range(&three, &view);
        let id = Uuid::from_u128(1);
        assert_eq!(result["a"][&id], [0, 1, 2].into());
        assert_eq!(result["b"][&id], [3, 4].into());
        assert_eq!(result["c"][&id], [5, 6].into());
    }
}
