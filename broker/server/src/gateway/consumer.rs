//! A consumer on the browser's behalf: KIP-848 membership (the broker's server-side
//! assignment), positions, and polls that fetch through the node.
//!
//! Invariants:
//! - "Delivered" means sent to the client in a poll reply. A partition's position is the
//!   offset after the last delivered record; a fetch's records are delivered only if the
//!   partition is still assigned *and* its position is unchanged when the answer arrives.
//! - Revocation removes a partition from the assignment (so no later poll delivers from
//!   it) and then commits its position before the next heartbeat acknowledges it, so the
//!   next owner starts exactly after what this client received: no loss, no duplicates.
//! - A client commit only touches partitions the consumer still owns (an old position must
//!   not overwrite the next owner's commit).
//! - At most one poll per consumer is outstanding ([`Consumer::begin_poll`]).
//! - A read_committed consumer fetches with Kafka's isolation_level 1, so the broker stops
//!   at the last stable offset, and drops the records of the aborted transactions the
//!   answer lists (weir-client's `records_from_committed`, the same filter its consumer
//!   uses): it never delivers an aborted record nor anything at or above the LSO. Its
//!   "latest" start is the LSO too (ListOffsets with the same isolation level).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Notify;
use weir_client::session::fetch::records_from_committed;
use weir_edge::{EdgeError, Isolation, Position, Record as EdgeRecord, Reply, StartFrom};
use weir_runtime::Runtime;
use weir_wire::domain::{
    ApiRequest, ApiResponse, ConsumerGroupHeartbeatRequest, FetchPartition, FetchRecords,
    FetchRequest, FetchTopic, ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
    OffsetCommitPartition, OffsetCommitRequest, OffsetCommitTopic, OffsetFetchGroup,
    OffsetFetchRequest, TopicIdPartitions, TopicRef, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP,
    MEMBER_EPOCH_JOIN, MEMBER_EPOCH_LEAVE,
};
use weir_wire::error::ErrorCode;

use super::errors::{kafka_error, unexpected};
use super::lock;
use super::ops::{refresh_metadata, Meta};
use super::route::{leader_moved, Dest, Lane, Router};
use crate::remote::RemoteStore;
use crate::storage::StorageDriver;

/// Rebalance timeout the gateway announces for its members.
const REBALANCE_TIMEOUT_MS: i32 = 30_000;
/// Pause before retrying a heartbeat that failed with a retriable error.
const HEARTBEAT_RETRY_DELAY: Duration = Duration::from_millis(500);
/// Bytes per partition in one fetch.
const PARTITION_FETCH_BYTES_MAX: i32 = 1024 * 1024;
/// Bound on a poll's wait, whatever the client asks.
pub const POLL_WAIT_MS_MAX: u32 = 30_000;
/// Bound on a poll reply's record bytes, whatever the client asks.
pub const POLL_BYTES_MAX: u32 = 1024 * 1024;
/// The epoch a manually assigned consumer commits with (Kafka's simple consumer commit).
const MEMBER_EPOCH_MANUAL: i32 = -1;
/// Bound on positions a client may hand back when resuming.
pub const RESUME_POSITIONS_MAX: usize = 10_000;

type TopicPartition = (String, i32);

/// One consumer of a session.
pub struct Consumer {
    /// The upstream lane of this consumer's fetches.
    lane: Lane,
    /// Group, or `None` for a group-less reader of every partition.
    group: Option<String>,
    topics: Vec<String>,
    from: StartFrom,
    isolation: Isolation,
    state: Mutex<State>,
    /// Wakes polls waiting for an assignment, and the heartbeat loop on close.
    changed: Notify,
    closed: AtomicBool,
    polling: AtomicBool,
    /// The client id its heartbeats carry (group descriptions show it).
    client_id: &'static str,
}

#[derive(Default)]
struct State {
    member_id: String,
    member_epoch: i32,
    /// Owned partitions and their positions (`None` until resolved).
    assigned: BTreeMap<TopicPartition, Option<i64>>,
    /// Positions the client delivered in an earlier session.
    resume: BTreeMap<TopicPartition, i64>,
}

impl Consumer {
    /// A consumer; group-less ones are assigned every partition of `topics` at once.
    pub fn new(
        handle: u32,
        group: Option<String>,
        topics: Vec<String>,
        from: StartFrom,
        isolation: Isolation,
        resume: Vec<Position>,
    ) -> Consumer {
        let resume = resume
            .into_iter()
            .take(RESUME_POSITIONS_MAX)
            .map(|position| ((position.topic, position.partition), position.offset))
            .collect();
        let state = State {
            resume,
            ..State::default()
        };
        Consumer::with_state(handle, group, topics, (from, isolation), state)
    }

    /// A consumer of exactly `partitions`, chosen by the client (Kafka's `assign()`): it
    /// never joins `group` (no heartbeat loop may run for it), starts from the group's
    /// committed offsets where there are some, and commits as a consumer outside group
    /// management does (empty member id, epoch -1), which the coordinator accepts while the
    /// group has no members.
    pub fn manual(
        handle: u32,
        group: Option<String>,
        partitions: Vec<(String, i32)>,
        from: StartFrom,
        isolation: Isolation,
    ) -> Consumer {
        let mut topics: Vec<String> = partitions.iter().map(|(topic, _)| topic.clone()).collect();
        topics.sort();
        topics.dedup();
        let assigned = partitions.into_iter().map(|tp| (tp, None)).collect();
        let state = State {
            member_epoch: MEMBER_EPOCH_MANUAL,
            assigned,
            ..State::default()
        };
        Consumer::with_state(handle, group, topics, (from, isolation), state)
    }

    fn with_state(
        handle: u32,
        group: Option<String>,
        topics: Vec<String>,
        (from, isolation): (StartFrom, Isolation),
        state: State,
    ) -> Consumer {
        Consumer {
            lane: Lane::Fetch(handle),
            group,
            topics,
            from,
            isolation,
            state: Mutex::new(state),
            changed: Notify::new(),
            closed: AtomicBool::new(false),
            polling: AtomicBool::new(false),
            client_id: "weir-gateway",
        }
    }

    /// The client id its heartbeats carry (`weir-gateway` unless set).
    pub fn with_client_id(mut self, client_id: &'static str) -> Consumer {
        self.client_id = client_id;
        self
    }

    /// Claim the one poll slot; false if a poll is already outstanding.
    pub fn begin_poll(&self) -> bool {
        !self.polling.swap(true, Ordering::AcqRel)
    }

    /// Release the poll slot.
    pub fn end_poll(&self) {
        self.polling.store(false, Ordering::Release);
    }

    /// Whether this consumer is in a group.
    pub fn has_group(&self) -> bool {
        self.group.is_some()
    }

    /// Stop heartbeating and leave the group (if any).
    pub async fn close<R: Runtime>(&self, router: &Router<R>) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        router.close_lane(self.lane);
        self.changed.notify_waiters();
        let Some(group) = &self.group else { return };
        let member_id = lock(&self.state).member_id.clone();
        if member_id.is_empty() {
            return;
        }
        let leave = heartbeat_request(
            (group, self.client_id),
            &member_id,
            MEMBER_EPOCH_LEAVE,
            None,
            None,
        );
        // A failure means the session is gone anyway; the member's session timeout cleans up.
        let leave = ApiRequest::ConsumerGroupHeartbeat(leave);
        let _ = router.call_group(group, leave).await;
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The subscribed topics.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The partitions this consumer owns now.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        lock(&self.state).assigned.keys().cloned().collect()
    }

    /// The positions of owned partitions whose start is resolved: the next offset each
    /// poll delivers from.
    pub fn positions(&self) -> Vec<Position> {
        let state = lock(&self.state);
        state
            .assigned
            .iter()
            .filter_map(|((topic, partition), position)| {
                position.map(|offset| Position {
                    topic: topic.clone(),
                    partition: *partition,
                    offset,
                })
            })
            .collect()
    }

    /// Give back records a poll delivered but its caller did not pass on: move the
    /// partition's position back to `first`, the first of them, if it is still past `last`
    /// (where the poll left it; a seek meanwhile to an earlier offset wins).
    pub fn rewind(&self, topic: &str, partition: i32, first: i64, last: i64) -> bool {
        let mut state = lock(&self.state);
        match state.assigned.get_mut(&(topic.to_owned(), partition)) {
            Some(slot) if slot.is_some_and(|at| at > last) => {
                *slot = Some(first);
                true
            }
            _ => false,
        }
    }

    /// Move an owned partition's position (a seek); false if the partition is not owned.
    /// Later polls deliver from `offset`; a poll in flight delivers nothing from the
    /// partition (its fetched position no longer matches).
    pub fn seek(&self, topic: &str, partition: i32, offset: i64) -> bool {
        let mut state = lock(&self.state);
        match state.assigned.get_mut(&(topic.to_owned(), partition)) {
            Some(slot) => {
                *slot = Some(offset);
                true
            }
            None => false,
        }
    }
}

/// Set up a group-less consumer's assignment: every partition of its topics.
pub async fn assign_all<R: Runtime>(
    consumer: &Consumer,
    router: &Router<R>,
    meta: &Meta,
) -> Result<(), EdgeError> {
    let found = refresh_metadata(router, meta, Some(consumer.topics.clone()), false).await?;
    let mut state = lock(&consumer.state);
    for (name, error, info, _) in found {
        if error != ErrorCode::NONE {
            return Err(kafka_error(error, format!("topic {name}")));
        }
        for partition in 0..info.partitions {
            state
                .assigned
                .entry((name.clone(), partition))
                .or_insert(None);
        }
    }
    Ok(())
}

/// The KIP-848 membership loop of a group consumer; ends when the consumer closes or the
/// session's link does.
pub async fn heartbeat_loop<R: Runtime>(
    runtime: R,
    consumer: Arc<Consumer>,
    router: Arc<Router<R>>,
    meta: Meta,
) {
    let router = &*router;
    let Some(group) = consumer.group.clone() else {
        return;
    };
    let mut subscribed = false;
    while !consumer.is_closed() {
        let (member_id, member_epoch, owned) = {
            let state = lock(&consumer.state);
            let owned = owned_by_id(&state, &meta);
            (state.member_id.clone(), state.member_epoch, owned)
        };
        let topics =
            (!subscribed || member_epoch == MEMBER_EPOCH_JOIN).then(|| consumer.topics.clone());
        let request = heartbeat_request(
            (&group, consumer.client_id),
            &member_id,
            member_epoch,
            topics,
            Some(owned),
        );
        let answer = router
            .call_group(&group, ApiRequest::ConsumerGroupHeartbeat(request))
            .await;
        let answer = match answer {
            Ok(ApiResponse::ConsumerGroupHeartbeat(answer)) => answer,
            Ok(_) => return,
            Err(_) if router.is_closed() => return,
            Err(error) => {
                // Re-routing gave up for now (coordinator moving, broker down): try again.
                tracing::debug!(group, "gateway heartbeat failed: {}", error.name);
                let sleep = runtime.sleep_until(runtime.now() + HEARTBEAT_RETRY_DELAY);
                tokio::select! {
                    biased;
                    () = consumer.changed.notified() => {}
                    () = sleep => {}
                }
                continue;
            }
        };
        if consumer.is_closed() {
            return;
        }
        let mut delay =
            Duration::from_millis(u64::try_from(answer.heartbeat_interval_ms).unwrap_or(0));
        match answer.error {
            ErrorCode::NONE => {
                subscribed = true;
                let changed = apply_assignment(&consumer, router, &meta, answer).await;
                if changed {
                    // Acknowledge the reconciled assignment at once, as Kafka clients do.
                    delay = Duration::ZERO;
                }
                let _ = resolve_positions(&consumer, router).await;
                consumer.changed.notify_waiters();
            }
            ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::FENCED_MEMBER_EPOCH => {
                // Fenced: the partitions are someone else's now; rejoin without them.
                tracing::info!(
                    group,
                    "gateway consumer fenced ({}); rejoining",
                    answer.error.name()
                );
                let mut state = lock(&consumer.state);
                state.member_epoch = MEMBER_EPOCH_JOIN;
                state.assigned.clear();
                subscribed = false;
                delay = Duration::ZERO;
            }
            other => {
                tracing::debug!(group, "gateway heartbeat failed: {}", other.name());
                delay = HEARTBEAT_RETRY_DELAY;
            }
        }
        if delay > Duration::ZERO {
            let sleep = runtime.sleep_until(runtime.now() + delay);
            tokio::select! {
                biased;
                () = consumer.changed.notified() => {}
                () = sleep => {}
            }
        }
    }
}

fn heartbeat_request(
    (group, client_id): (&str, &str),
    member_id: &str,
    member_epoch: i32,
    topics: Option<Vec<String>>,
    owned: Option<Vec<TopicIdPartitions>>,
) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: group.to_owned(),
        member_id: member_id.to_owned(),
        member_epoch,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: REBALANCE_TIMEOUT_MS,
        subscribed_topic_names: topics,
        subscribed_topic_regex: None,
        server_assignor: None,
        topic_partitions: owned,
        client_id: client_id.to_owned(),
    }
}

fn owned_by_id(state: &State, meta: &Meta) -> Vec<TopicIdPartitions> {
    let cache = lock(meta);
    let mut by_topic: BTreeMap<uuid::Uuid, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in state.assigned.keys() {
        if let Some(id) = cache_id(&cache, topic) {
            by_topic.entry(id).or_default().push(*partition);
        }
    }
    by_topic
        .into_iter()
        .map(|(topic_id, partitions)| TopicIdPartitions {
            topic_id,
            partitions,
        })
        .collect()
}

fn cache_id(cache: &super::ops::MetaCache, topic: &str) -> Option<uuid::Uuid> {
    cache.id_of(topic)
}

/// Apply a heartbeat answer; returns true if the owned set changed.
async fn apply_assignment<R: Runtime>(
    consumer: &Consumer,
    router: &Router<R>,
    meta: &Meta,
    answer: weir_wire::domain::ConsumerGroupHeartbeatResponse,
) -> bool {
    {
        let mut state = lock(&consumer.state);
        if let Some(member_id) = answer.member_id {
            state.member_id = member_id;
        }
        state.member_epoch = answer.member_epoch;
    }
    let Some(target) = answer.assignment else {
        return false;
    };
    let unknown = target
        .iter()
        .any(|t| lock(meta).name_of(t.topic_id).is_none());
    if unknown {
        let _ = refresh_metadata(router, meta, Some(consumer.topics.clone()), false).await;
    }
    let target: BTreeSet<TopicPartition> = {
        let cache = lock(meta);
        target
            .iter()
            .filter_map(|t| cache.name_of(t.topic_id).map(|name| (name, &t.partitions)))
            .flat_map(|(name, partitions)| partitions.iter().map(move |p| (name.clone(), *p)))
            .collect()
    };
    let (revoked, added, epoch, member_id) = {
        let mut state = lock(&consumer.state);
        let revoked: Vec<(TopicPartition, Option<i64>)> = state
            .assigned
            .iter()
            .filter(|(tp, _)| !target.contains(*tp))
            .map(|(tp, position)| (tp.clone(), *position))
            .collect();
        for (tp, _) in &revoked {
            state.assigned.remove(tp);
        }
        let mut added = false;
        for tp in &target {
            if !state.assigned.contains_key(tp) {
                state.assigned.insert(tp.clone(), None);
                added = true;
            }
        }
        (revoked, added, state.member_epoch, state.member_id.clone())
    };
    let positions: Vec<Position> = revoked
        .iter()
        .filter_map(|((topic, partition), position)| {
            position.map(|offset| Position {
                topic: topic.clone(),
                partition: *partition,
                offset,
            })
        })
        .collect();
    if let Some(group) = &consumer.group {
        if !positions.is_empty() {
            if let Err(error) = commit(router, group, &member_id, epoch, positions).await {
                tracing::info!(group, "commit on revocation failed: {}", error.name);
            }
        }
    }
    added || !revoked.is_empty()
}

/// Find start positions for assigned partitions that have none: the resumed position, else
/// the group's committed offset, else earliest/latest.
pub async fn resolve_positions<R: Runtime>(
    consumer: &Consumer,
    router: &Router<R>,
) -> Result<(), EdgeError> {
    let unresolved: Vec<TopicPartition> = {
        let mut state = lock(&consumer.state);
        let mut unresolved = Vec::new();
        let keys: Vec<TopicPartition> = state.assigned.keys().cloned().collect();
        for tp in keys {
            if state.assigned.get(&tp).copied().flatten().is_some() {
                continue;
            }
            if let Some(offset) = state.resume.remove(&tp) {
                state.assigned.insert(tp, Some(offset));
            } else {
                unresolved.push(tp);
            }
        }
        unresolved
    };
    if unresolved.is_empty() {
        return Ok(());
    }
    let mut found = BTreeMap::new();
    if let Some(group) = &consumer.group {
        found = committed(router, group, &unresolved).await?;
    }
    let missing: Vec<TopicPartition> = unresolved
        .into_iter()
        .filter(|tp| !found.contains_key(tp))
        .collect();
    if !missing.is_empty() {
        let isolation = consumer.isolation;
        found.extend(list_offsets(router, &missing, consumer.from, isolation).await?);
    }
    let mut state = lock(&consumer.state);
    for (tp, offset) in found {
        if let Some(slot @ None) = state.assigned.get_mut(&tp) {
            *slot = Some(offset);
        }
    }
    Ok(())
}

fn group_topics(partitions: &[TopicPartition]) -> BTreeMap<String, Vec<i32>> {
    let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        topics.entry(topic.clone()).or_default().push(*partition);
    }
    topics
}

pub(crate) async fn committed<R: Runtime>(
    router: &Router<R>,
    group: &str,
    partitions: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, i64>, EdgeError> {
    let request = ApiRequest::OffsetFetch(OffsetFetchRequest {
        groups: vec![OffsetFetchGroup {
            group_id: group.to_owned(),
            topics: Some(group_topics(partitions).into_iter().collect()),
        }],
        require_stable: false,
    });
    let ApiResponse::OffsetFetch(answer) = router.call_group(group, request).await? else {
        return Err(unexpected("OffsetFetch"));
    };
    let mut found = BTreeMap::new();
    for group_answer in answer.groups {
        if group_answer.error != ErrorCode::NONE {
            return Err(kafka_error(
                group_answer.error,
                "cannot read committed offsets",
            ));
        }
        for topic in group_answer.topics {
            for partition in topic.partitions {
                if partition.error == ErrorCode::NONE && partition.committed_offset >= 0 {
                    found.insert(
                        (topic.name.clone(), partition.partition),
                        partition.committed_offset,
                    );
                }
            }
        }
    }
    Ok(found)
}

pub(crate) async fn list_offsets<R: Runtime>(
    router: &Router<R>,
    partitions: &[TopicPartition],
    from: StartFrom,
    isolation: Isolation,
) -> Result<BTreeMap<TopicPartition, i64>, EdgeError> {
    let timestamp = match from {
        StartFrom::Earliest => EARLIEST_TIMESTAMP,
        StartFrom::Latest => LATEST_TIMESTAMP,
    };
    let mut by_dest: BTreeMap<Dest, Vec<TopicPartition>> = BTreeMap::new();
    for tp in partitions {
        let dest = router.leader(&tp.0, tp.1).await?;
        by_dest.entry(dest).or_default().push(tp.clone());
    }
    let mut found = BTreeMap::new();
    for (dest, partitions) in by_dest {
        let request = ApiRequest::ListOffsets(ListOffsetsRequest {
            replica_id: -1,
            isolation_level: isolation_level(isolation),
            topics: group_topics(partitions.as_slice())
                .into_iter()
                .map(|(name, partitions)| ListOffsetsTopic {
                    name,
                    partitions: partitions
                        .into_iter()
                        .map(|partition| ListOffsetsPartition {
                            partition,
                            current_leader_epoch: -1,
                            timestamp,
                        })
                        .collect(),
                })
                .collect(),
        });
        let answer = match router.call(dest, Lane::Control, request).await {
            Ok(answer) => answer,
            Err(error) if router.is_closed() => return Err(error),
            // Unresolved positions are looked up again by the next poll round.
            Err(_) => continue,
        };
        let ApiResponse::ListOffsets(answer) = answer else {
            return Err(unexpected("ListOffsets"));
        };
        for topic in answer.topics {
            for partition in topic.partitions {
                if partition.error == ErrorCode::NONE && partition.offset >= 0 {
                    found.insert((topic.name.clone(), partition.partition), partition.offset);
                } else if leader_moved(partition.error) {
                    router.forget_leader(&topic.name, partition.partition);
                }
            }
        }
    }
    Ok(found)
}

/// Commit positions for the member.
async fn commit<R: Runtime>(
    router: &Router<R>,
    group: &str,
    member_id: &str,
    member_epoch: i32,
    positions: Vec<Position>,
) -> Result<(), EdgeError> {
    let mut topics: BTreeMap<String, Vec<OffsetCommitPartition>> = BTreeMap::new();
    for position in positions {
        topics
            .entry(position.topic)
            .or_default()
            .push(OffsetCommitPartition {
                partition: position.partition,
                committed_offset: position.offset,
                committed_leader_epoch: -1,
                metadata: None,
            });
    }
    let request = ApiRequest::OffsetCommit(OffsetCommitRequest {
        group_id: group.to_owned(),
        generation_id: member_epoch,
        member_id: member_id.to_owned(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: topics
            .into_iter()
            .map(|(name, partitions)| OffsetCommitTopic { name, partitions })
            .collect(),
    });
    let ApiResponse::OffsetCommit(answer) = router.call_group(group, request).await? else {
        return Err(unexpected("OffsetCommit"));
    };
    for topic in answer.topics {
        for (partition, error) in topic.partitions {
            if error != ErrorCode::NONE {
                let message = format!("commit of {}[{partition}]", topic.name);
                return Err(kafka_error(error, message));
            }
        }
    }
    Ok(())
}

/// The client's commit: positions of partitions the consumer still owns.
pub async fn client_commit<R: Runtime>(
    consumer: &Consumer,
    router: &Router<R>,
    offsets: Vec<Position>,
) -> Result<Reply, EdgeError> {
    let Some(group) = &consumer.group else {
        return Err(kafka_error(
            ErrorCode::INVALID_GROUP_ID,
            "this consumer has no group",
        ));
    };
    let (member_id, epoch, owned) = {
        let state = lock(&consumer.state);
        let owned: Vec<Position> = offsets
            .into_iter()
            .filter(|p| state.assigned.contains_key(&(p.topic.clone(), p.partition)))
            .collect();
        (state.member_id.clone(), state.member_epoch, owned)
    };
    if !owned.is_empty() {
        commit(router, group, &member_id, epoch, owned).await?;
    }
    Ok(Reply::Committed)
}

/// One poll: wait for an assignment, fetch once from the positions, deliver.
pub async fn poll<R: Runtime, S: StorageDriver>(
    runtime: &R,
    storage: &S,
    remote: Option<&RemoteStore>,
    consumer: &Consumer,
    router: &Router<R>,
    max_wait_ms: u32,
    max_bytes: u32,
) -> Result<Reply, EdgeError> {
    let wait = Duration::from_millis(u64::from(max_wait_ms.min(POLL_WAIT_MS_MAX)));
    let deadline = runtime.now() + wait;
    let mut attempt = 0;
    loop {
        if consumer.is_closed() {
            return Ok(Reply::Records(Vec::new()));
        }
        resolve_positions(consumer, router).await?;
        let targets: Vec<(TopicPartition, i64)> = lock(&consumer.state)
            .assigned
            .iter()
            .filter_map(|(tp, position)| position.map(|offset| (tp.clone(), offset)))
            .collect();
        let now = runtime.now();
        if targets.is_empty() {
            if now >= deadline {
                return Ok(Reply::Records(Vec::new()));
            }
            let sleep = runtime.sleep_until(deadline);
            tokio::select! {
                biased;
                () = consumer.changed.notified() => {}
                () = sleep => {}
            }
            continue;
        }
        let remaining = deadline.saturating_sub(now);
        let wait_ms = i32::try_from(remaining.as_millis()).unwrap_or(i32::MAX);
        let reads = (storage, remote);
        let fetched = fetch_once(reads, consumer, router, &targets, wait_ms, max_bytes).await?;
        if !fetched.records.is_empty() || runtime.now() >= deadline {
            return Ok(Reply::Records(fetched.records));
        }
        if fetched.rerouted {
            // A partition failed or a broker is unreachable: pause instead of spinning.
            attempt += 1;
            let pause = router.backoff(attempt);
            tokio::select! {
                biased;
                () = pause => {}
                () = runtime.sleep_until(deadline) => {}
            }
        }
    }
}

/// What one fetch round delivered.
struct Fetched {
    records: Vec<EdgeRecord>,
    /// Some partition answered an error or its broker failed (a moved leader's route was
    /// forgotten): the next round waits a backoff instead of spinning.
    rerouted: bool,
}

/// Fetch from every target's leader at once (one request per broker); the first answer
/// with records is delivered and the others are abandoned (nothing of theirs was
/// delivered, so their positions are unchanged).
async fn fetch_once<R: Runtime, S: StorageDriver>(
    (storage, remote): (&S, Option<&RemoteStore>),
    consumer: &Consumer,
    router: &Router<R>,
    targets: &[(TopicPartition, i64)],
    wait_ms: i32,
    max_bytes: u32,
) -> Result<Fetched, EdgeError> {
    let mut by_dest: BTreeMap<Dest, BTreeMap<String, Vec<FetchPartition>>> = BTreeMap::new();
    for ((topic, partition), offset) in targets {
        let dest = router.leader(topic, *partition).await?;
        by_dest
            .entry(dest)
            .or_default()
            .entry(topic.clone())
            .or_default()
            .push(FetchPartition {
                partition: *partition,
                current_leader_epoch: -1,
                fetch_offset: *offset,
                log_start_offset: -1,
                partition_max_bytes: PARTITION_FETCH_BYTES_MAX,
            });
    }
    let max_bytes = max_bytes.clamp(1, POLL_BYTES_MAX);
    let mut calls = FuturesUnordered::new();
    for (dest, topics) in by_dest {
        let request = ApiRequest::Fetch(FetchRequest {
            replica_id: -1,
            max_wait_ms: wait_ms,
            min_bytes: 1,
            max_bytes: i32::try_from(max_bytes).unwrap_or(i32::MAX),
            isolation_level: isolation_level(consumer.isolation),
            session_id: 0,
            session_epoch: -1,
            topics: topics
                .into_iter()
                .map(|(name, partitions)| FetchTopic {
                    topic: TopicRef::Name(name),
                    partitions,
                })
                .collect(),
            rack_id: String::new(),
        });
        calls.push(async move { (dest, router.call(dest, consumer.lane, request).await) });
    }
    let mut fetched = Fetched {
        records: Vec::new(),
        rerouted: false,
    };
    while let Some((dest, answer)) = calls.next().await {
        let mut answer = match answer {
            Ok(answer) => answer,
            Err(error) if router.is_closed() => return Err(error),
            Err(_) => {
                // The router forgot the broker's routes; the next round looks them up.
                fetched.rerouted = true;
                continue;
            }
        };
        if dest == Dest::Local {
            // Local answers carry read plans (of local storage, and of the object store for
            // offsets tiered away); other brokers' answers arrive as record bytes.
            let runtime = router.runtime();
            crate::remote::resolve_remote(remote, runtime, &mut answer, "gateway").await;
            crate::conn::resolve_reads(storage, &mut answer, "gateway");
        }
        let ApiResponse::Fetch(answer) = answer else {
            return Err(unexpected("Fetch"));
        };
        deliver(consumer, router, targets, answer, &mut fetched)?;
        if !fetched.records.is_empty() {
            break;
        }
    }
    Ok(fetched)
}

/// Take a fetch answer's records whose partitions are still assigned at the fetched
/// positions, and advance those positions.
fn deliver<R: Runtime>(
    consumer: &Consumer,
    router: &Router<R>,
    targets: &[(TopicPartition, i64)],
    answer: weir_wire::domain::FetchResponse,
    fetched: &mut Fetched,
) -> Result<(), EdgeError> {
    let delivered = &mut fetched.records;
    for topic in answer.topics {
        let TopicRef::Name(name) = topic.topic else {
            continue;
        };
        for partition in topic.partitions {
            let tp = (name.clone(), partition.partition);
            let Some(start) = targets.iter().find(|(t, _)| *t == tp).map(|(_, o)| *o) else {
                continue;
            };
            if partition.error == ErrorCode::OFFSET_OUT_OF_RANGE {
                // Start over from the reset policy, as Kafka's auto.offset.reset does.
                let mut state = lock(&consumer.state);
                if let Some(slot) = state.assigned.get_mut(&tp) {
                    if *slot == Some(start) {
                        *slot = None;
                    }
                }
                continue;
            }
            if leader_moved(partition.error) {
                router.forget_leader(&tp.0, tp.1);
            }
            if partition.error != ErrorCode::NONE {
                fetched.rerouted = true;
                tracing::debug!(
                    "gateway fetch {}[{}]: {}",
                    tp.0,
                    tp.1,
                    partition.error.name()
                );
                continue;
            }
            let FetchRecords::Bytes(bytes) = partition.records else {
                continue;
            };
            // The next position is after the last whole batch, even if it held no data
            // records (transaction markers, aborted batches), so neither can stall the
            // consumer.
            let aborted = (consumer.isolation == Isolation::ReadCommitted)
                .then_some(partition.aborted_transactions.as_slice());
            let decoded = records_from_committed(bytes, start, aborted)
                .map_err(|error| kafka_error(ErrorCode::CORRUPT_MESSAGE, error.to_string()))?;
            let (records, next) = (decoded.records, decoded.next_position);
            if next <= start {
                continue;
            }
            let mut state = lock(&consumer.state);
            match state.assigned.get_mut(&tp) {
                Some(slot) if *slot == Some(start) => *slot = Some(next),
                _ => continue, // Revoked or moved meanwhile: deliver nothing from it.
            }
            delivered.extend(records.into_iter().map(|record| {
                EdgeRecord {
                    topic: tp.0.clone(),
                    partition: tp.1,
                    offset: record.offset,
                    timestamp: record.timestamp,
                    key: record.key.map(|b| b.to_vec()),
                    value: record.value.map(|b| b.to_vec()),
                    headers: record
                        .headers
                        .into_iter()
                        .map(|(key, value)| weir_edge::Header {
                            key,
                            value: value.map(|b| b.to_vec()),
                        })
                        .collect(),
                }
            }));
        }
    }
    Ok(())
}

/// Kafka's isolation_level for Fetch and ListOffsets.
fn isolation_level(isolation: Isolation) -> i8 {
    match isolation {
        Isolation::ReadUncommitted => 0,
        Isolation::ReadCommitted => 1,
    }
}
