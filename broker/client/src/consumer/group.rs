//! Group consumption (classic protocol, eager rebalancing, range assignor): `subscribe`,
//! `commit` and `close` on [`Consumer`], plus the group work `poll` does between fetches.
//!
//! A rebalance, as Kafka's `ConsumerCoordinator` does it: find the coordinator, JoinGroup
//! (retrying with the member id a MEMBER_ID_REQUIRED answer carries), the leader computes the
//! range assignment from every member's subscription and the topics' partition counts,
//! SyncGroup hands out the assignment, then OffsetFetch gives each assigned partition its
//! position (committed offset, else `auto.offset.reset`). The sans-IO timers live in
//! [`crate::session::group::Membership`]; this module does the IO.
//!
//! Invariants:
//! - Eager protocol: before rejoining, the member commits (with auto-commit) and gives up
//!   its whole assignment, so two members never fetch one partition in the same generation.
//! - Positions of a new assignment come from the group's committed offsets, never from
//!   this member's previous positions: another member may have moved them meanwhile.
//! - A rebalance attempt is bounded ([`JOIN_ATTEMPTS_MAX`]); errors that need no rejoin
//!   surface to the caller of `poll`.

use std::collections::BTreeMap;
use std::time::Duration;

use weir_runtime::Runtime;
use weir_wire::domain::{
    ApiRequest, ApiResponse, HeartbeatRequest, JoinGroupProtocol, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeavingMember, OffsetCommitPartition,
    OffsetCommitRequest, OffsetCommitTopic, SyncGroupRequest,
};
use weir_wire::error::ErrorCode;

use super::{Consumer, PartitionState};
use crate::config::GroupConfig;
use crate::driver::cluster::unexpected;
use crate::driver::connection::Connection;
use crate::driver::coordinator::{coordinator_connection, is_coordinator_code};
use crate::error::ClientError;
use crate::group_admin::fetch_committed;
use crate::session::group::{
    assign_range, decode_assignment, decode_subscription, encode_assignment, encode_subscription,
    Membership, TopicPartitions, CONSUMER_PROTOCOL_TYPE, RANGE_ASSIGNOR,
};
use crate::TopicPartition;

/// Bound on JoinGroup/SyncGroup round trips in one rebalance.
pub const JOIN_ATTEMPTS_MAX: u32 = 20;

/// A consumer's group membership.
pub(crate) struct GroupMember<R: Runtime> {
    config: GroupConfig,
    topics: Vec<String>,
    membership: Membership,
    coordinator: Option<Connection<R>>,
}

impl<R: Runtime> GroupMember<R> {
    /// When `poll` must come back to do group work.
    pub(crate) fn next_deadline(&self) -> Option<Duration> {
        self.membership.next_deadline()
    }
}

enum JoinStep {
    /// Joined and synced: the assignment.
    Assigned(TopicPartitions),
    /// Try again (same or new member id, already recorded).
    Retry,
}

impl<R: Runtime> Consumer<R> {
    /// Joins `group.group_id` subscribed to `topics` (classic protocol, "range" assignor).
    /// The join itself happens in the next `poll`, which also heartbeats and auto-commits.
    /// Replaces any manual assignment.
    pub async fn subscribe(
        &mut self,
        group: GroupConfig,
        topics: Vec<String>,
    ) -> Result<(), ClientError> {
        if group.group_id.is_empty() {
            return Err(ClientError::InvalidArgument("empty group id".into()));
        }
        if topics.is_empty() || topics.iter().any(String::is_empty) {
            return Err(ClientError::InvalidArgument(format!("topics {topics:?}")));
        }
        if self.group.is_some() {
            self.close_group().await;
        }
        let auto_commit = group
            .enable_auto_commit
            .then_some(group.auto_commit_interval);
        let mut topics = topics;
        topics.sort();
        topics.dedup();
        self.group = Some(GroupMember {
            membership: Membership::new(group.heartbeat_interval, auto_commit),
            config: group,
            topics,
            coordinator: None,
        });
        self.partitions.clear();
        Ok(())
    }

    /// The group's current member id and generation (`None` without a group).
    pub fn group_generation(&self) -> Option<(String, i32)> {
        let group = self.group.as_ref()?;
        let membership = &group.membership;
        Some((membership.member_id.clone(), membership.generation_id))
    }

    /// Commits the position of every assigned partition (the next offset `poll` would
    /// return) to the group. Fails with the coordinator's error; after
    /// REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID the next `poll` rejoins.
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        let offsets: Vec<(TopicPartition, i64)> = (self.partitions.iter())
            .filter_map(|(tp, state)| state.position.map(|position| (tp.clone(), position)))
            .collect();
        self.commit_offsets(&offsets).await
    }

    /// Leaves the group (commits first with auto-commit) and closes the consumer.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.close_group().await;
        Ok(())
    }

    /// Heartbeats, auto-commits and rejoins as due; called by `poll` before each round.
    pub(crate) async fn maintain_group(&mut self) -> Result<(), ClientError> {
        let Some(group) = self.group.as_mut() else {
            return Ok(());
        };
        let now = self.cluster.runtime().now();
        if group.membership.auto_commit_due(now) {
            group.membership.on_auto_commit(now);
            if let Err(error) = self.commit().await {
                tracing::warn!(%error, "auto-commit failed");
            }
        }
        let now = self.cluster.runtime().now();
        let heartbeat_due = (self.group.as_ref()).is_some_and(|g| g.membership.heartbeat_due(now));
        if heartbeat_due {
            self.heartbeat(now).await?;
        }
        if self
            .group
            .as_ref()
            .is_some_and(|g| g.membership.needs_join())
        {
            self.rebalance().await?;
        }
        Ok(())
    }

    async fn heartbeat(&mut self, now: Duration) -> Result<(), ClientError> {
        let Some(group) = self.group.as_mut() else {
            return Ok(());
        };
        group.membership.on_heartbeat_sent(now);
        let request = ApiRequest::Heartbeat(HeartbeatRequest {
            group_id: group.config.group_id.clone(),
            generation_id: group.membership.generation_id,
            member_id: group.membership.member_id.clone(),
            group_instance_id: group.config.group_instance_id.clone(),
        });
        let error = match self.coordinator_request(&request, None).await {
            Ok(ApiResponse::Heartbeat(response)) => response.error,
            Ok(other) => return Err(unexpected("Heartbeat", &other)),
            Err(error) if error.is_retriable() => {
                tracing::debug!(%error, "heartbeat failed; retrying at the next interval");
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        self.on_group_error(error, "heartbeat")
    }

    /// Applies a group error code from a heartbeat or commit; Ok when handled here.
    fn on_group_error(&mut self, error: ErrorCode, context: &str) -> Result<(), ClientError> {
        let Some(group) = self.group.as_mut() else {
            return Ok(());
        };
        match error {
            ErrorCode::NONE => Ok(()),
            ErrorCode::REBALANCE_IN_PROGRESS | ErrorCode::ILLEGAL_GENERATION => {
                tracing::info!(group = %group.config.group_id, %error, "rejoining the group");
                group.membership.on_rebalance();
                Ok(())
            }
            ErrorCode::UNKNOWN_MEMBER_ID => {
                tracing::info!(group = %group.config.group_id, "member expired; rejoining");
                group.membership.on_fenced();
                Ok(())
            }
            code if is_coordinator_code(code) => {
                group.coordinator = None;
                Ok(())
            }
            code => Err(ClientError::kafka(code, context.to_owned())),
        }
    }

    /// A full eager rebalance: commit, drop the assignment, join, sync, fetch offsets.
    async fn rebalance(&mut self) -> Result<(), ClientError> {
        if self
            .group
            .as_ref()
            .is_some_and(|g| g.config.enable_auto_commit)
            && !self.partitions.is_empty()
        {
            // Kafka's onJoinPrepare: commit what was consumed before giving partitions up.
            if let Err(error) = self.commit().await {
                tracing::debug!(%error, "commit before rejoin failed");
            }
        }
        let owned: TopicPartitions = group_by_topic(self.partitions.keys().cloned());
        self.partitions.clear();
        for attempt in 1..=JOIN_ATTEMPTS_MAX {
            match self.join_and_sync(&owned).await {
                Ok(JoinStep::Assigned(assignment)) => return self.adopt(assignment).await,
                Ok(JoinStep::Retry) => {
                    // A moved or loading coordinator needs time; a new member id does not.
                    if self.group.as_ref().is_some_and(|g| g.coordinator.is_none()) {
                        let runtime = self.cluster.runtime().clone();
                        let wake = runtime.now().saturating_add(self.backoff.delay(attempt));
                        runtime.sleep_until(wake).await;
                    }
                }
                Err(error) if error.is_retriable() && attempt < JOIN_ATTEMPTS_MAX => {
                    tracing::debug!(%error, attempt, "join failed; retrying");
                    if let Some(group) = self.group.as_mut() {
                        group.coordinator = None;
                    }
                    let runtime = self.cluster.runtime().clone();
                    let wake = runtime.now().saturating_add(self.backoff.delay(attempt));
                    runtime.sleep_until(wake).await;
                }
                Err(error) => return Err(error),
            }
        }
        Err(ClientError::Timeout {
            context: format!("joining the group ({JOIN_ATTEMPTS_MAX} attempts)"),
            timeout_ms: 0,
        })
    }

    async fn join_and_sync(&mut self, owned: &TopicPartitions) -> Result<JoinStep, ClientError> {
        let Some(group) = self.group.as_ref() else {
            return Ok(JoinStep::Assigned(Vec::new()));
        };
        let config = &group.config;
        let join = ApiRequest::JoinGroup(JoinGroupRequest {
            group_id: config.group_id.clone(),
            session_timeout_ms: crate::driver::millis_i32(config.session_timeout),
            rebalance_timeout_ms: crate::driver::millis_i32(config.rebalance_timeout),
            member_id: group.membership.member_id.clone(),
            group_instance_id: config.group_instance_id.clone(),
            protocol_type: CONSUMER_PROTOCOL_TYPE.to_owned(),
            protocols: vec![JoinGroupProtocol {
                name: RANGE_ASSIGNOR.to_owned(),
                metadata: encode_subscription(&group.topics, owned),
            }],
            reason: None,
            client_id: self.cluster.config().client_id.clone(),
            client_host: String::new(),
            member_id_required: false,
        });
        // The coordinator holds a JoinGroup until every member rejoined: up to the
        // rebalance timeout (Java waits rebalance timeout + 5 s).
        let wait = config
            .rebalance_timeout
            .saturating_add(Duration::from_secs(5));
        let response = match self.coordinator_request(&join, Some(wait)).await? {
            ApiResponse::JoinGroup(response) => response,
            other => return Err(unexpected("JoinGroup", &other)),
        };
        let Some(group) = self.group.as_mut() else {
            return Ok(JoinStep::Retry);
        };
        match response.error {
            ErrorCode::NONE => {}
            ErrorCode::MEMBER_ID_REQUIRED => {
                group.membership.member_id = response.member_id;
                return Ok(JoinStep::Retry);
            }
            ErrorCode::UNKNOWN_MEMBER_ID => {
                group.membership.on_fenced();
                return Ok(JoinStep::Retry);
            }
            ErrorCode::REBALANCE_IN_PROGRESS => return Ok(JoinStep::Retry),
            code if is_coordinator_code(code) => {
                group.coordinator = None;
                return Ok(JoinStep::Retry);
            }
            code => {
                return Err(ClientError::kafka(
                    code,
                    format!("join {}", group.config.group_id),
                ))
            }
        }
        group.membership.member_id = response.member_id.clone();
        let assignments = if response.leader == response.member_id {
            self.leader_assignments(&response).await?
        } else {
            Vec::new()
        };
        self.sync(&response, assignments).await
    }

    async fn sync(
        &mut self,
        joined: &JoinGroupResponse,
        assignments: Vec<(String, bytes::Bytes)>,
    ) -> Result<JoinStep, ClientError> {
        let Some(group) = self.group.as_ref() else {
            return Ok(JoinStep::Retry);
        };
        let request = ApiRequest::SyncGroup(SyncGroupRequest {
            group_id: group.config.group_id.clone(),
            generation_id: joined.generation_id,
            member_id: joined.member_id.clone(),
            group_instance_id: group.config.group_instance_id.clone(),
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_owned()),
            protocol_name: joined.protocol_name.clone(),
            assignments,
        });
        let wait = group
            .config
            .rebalance_timeout
            .saturating_add(Duration::from_secs(5));
        let response = match self.coordinator_request(&request, Some(wait)).await? {
            ApiResponse::SyncGroup(response) => response,
            other => return Err(unexpected("SyncGroup", &other)),
        };
        let Some(group) = self.group.as_mut() else {
            return Ok(JoinStep::Retry);
        };
        match response.error {
            ErrorCode::NONE => {}
            ErrorCode::REBALANCE_IN_PROGRESS | ErrorCode::ILLEGAL_GENERATION => {
                return Ok(JoinStep::Retry)
            }
            ErrorCode::UNKNOWN_MEMBER_ID => {
                group.membership.on_fenced();
                return Ok(JoinStep::Retry);
            }
            code if is_coordinator_code(code) => {
                group.coordinator = None;
                return Ok(JoinStep::Retry);
            }
            code => {
                return Err(ClientError::kafka(
                    code,
                    format!("sync {}", group.config.group_id),
                ))
            }
        }
        let assignment = decode_assignment(&response.assignment)
            .map_err(|error| ClientError::Protocol(error.to_string()))?;
        let now = self.cluster.runtime().now();
        group
            .membership
            .on_synced(now, joined.member_id.clone(), joined.generation_id);
        tracing::info!(
            group = %group.config.group_id,
            generation = joined.generation_id,
            member = %joined.member_id,
            ?assignment,
            "joined the group"
        );
        Ok(JoinStep::Assigned(assignment))
    }

    /// The leader's job: the range assignment of every member's subscription.
    async fn leader_assignments(
        &self,
        joined: &JoinGroupResponse,
    ) -> Result<Vec<(String, bytes::Bytes)>, ClientError> {
        let mut subscriptions = BTreeMap::new();
        for member in &joined.members {
            let subscription = decode_subscription(&member.metadata)
                .map_err(|error| ClientError::Protocol(error.to_string()))?;
            subscriptions.insert(member.member_id.clone(), subscription.topics);
        }
        let mut topics: Vec<String> = subscriptions.values().flatten().cloned().collect();
        topics.sort();
        topics.dedup();
        let metadata = self.cluster.refresh_metadata(Some(&topics), false).await?;
        let counts: BTreeMap<String, i32> = (topics.iter())
            .filter_map(|topic| Some((topic.clone(), metadata.partition_count(topic)?)))
            .collect();
        let assignment = assign_range(&subscriptions, &counts);
        Ok(assignment
            .into_iter()
            .map(|(member, assigned)| (member, encode_assignment(&assigned)))
            .collect())
    }

    /// Takes an assignment: positions from committed offsets, others per auto.offset.reset.
    async fn adopt(&mut self, assignment: TopicPartitions) -> Result<(), ClientError> {
        let Some(group) = self.group.as_ref() else {
            return Ok(());
        };
        let group_id = group.config.group_id.clone();
        let committed = if assignment.is_empty() {
            BTreeMap::new()
        } else {
            fetch_committed(&self.cluster, &group_id, Some(assignment.clone())).await?
        };
        let mut partitions = BTreeMap::new();
        for (topic, indexes) in &assignment {
            for index in indexes {
                let tp = TopicPartition::new(topic.clone(), *index);
                let position = committed.get(&tp).copied();
                partitions.insert(
                    tp,
                    PartitionState {
                        position,
                        high_watermark: -1,
                    },
                );
            }
        }
        self.partitions = partitions;
        let topics = self.assigned_topics();
        if !topics.is_empty() {
            self.cluster.refresh_metadata(Some(&topics), false).await?;
        }
        Ok(())
    }

    async fn commit_offsets(
        &mut self,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<(), ClientError> {
        let Some(group) = self.group.as_ref() else {
            return Err(ClientError::InvalidArgument(
                "commit needs subscribe".into(),
            ));
        };
        // A member that was told to rejoin still commits with its last generation: the
        // coordinator accepts that while it prepares the rebalance (Kafka's onJoinPrepare
        // relies on it), so consumed records are not handed to the next owner again.
        if offsets.is_empty() || group.membership.generation_id < 0 {
            return Ok(());
        }
        let mut by_topic: BTreeMap<String, Vec<OffsetCommitPartition>> = BTreeMap::new();
        for (tp, offset) in offsets {
            by_topic
                .entry(tp.topic.clone())
                .or_default()
                .push(OffsetCommitPartition {
                    partition: tp.partition,
                    committed_offset: *offset,
                    committed_leader_epoch: -1,
                    metadata: None,
                });
        }
        let request = ApiRequest::OffsetCommit(OffsetCommitRequest {
            group_id: group.config.group_id.clone(),
            generation_id: group.membership.generation_id,
            member_id: group.membership.member_id.clone(),
            group_instance_id: group.config.group_instance_id.clone(),
            retention_time_ms: -1,
            topics: by_topic
                .into_iter()
                .map(|(name, partitions)| OffsetCommitTopic { name, partitions })
                .collect(),
        });
        let response = match self.coordinator_request(&request, None).await? {
            ApiResponse::OffsetCommit(response) => response,
            other => return Err(unexpected("OffsetCommit", &other)),
        };
        let first_error = (response.topics.iter())
            .flat_map(|topic| topic.partitions.iter().map(move |p| (&topic.name, p)))
            .find(|(_, (_, error))| !error.is_ok())
            .map(|(name, (partition, error))| (format!("{name}-{partition}"), *error));
        match first_error {
            None => Ok(()),
            Some((context, code)) => {
                // Rejoin if the coordinator says so, and tell the caller the commit failed.
                self.on_group_error(code, &context)?;
                Err(ClientError::kafka(code, format!("commit {context}")))
            }
        }
    }

    /// Commit (with auto-commit) and LeaveGroup; errors are logged, not returned: the
    /// session timeout removes the member anyway.
    pub(crate) async fn close_group(&mut self) {
        let Some(group) = self.group.as_ref() else {
            return;
        };
        if group.config.enable_auto_commit {
            if let Err(error) = self.commit().await {
                tracing::warn!(%error, "commit on close failed");
            }
        }
        if let Some(group) = self.group.as_ref() {
            // Static members stay in the group across restarts (KIP-345): no LeaveGroup.
            // A member that never got an id has nothing to leave.
            let joined = !group.membership.member_id.is_empty();
            if joined && group.config.group_instance_id.is_none() {
                let request = ApiRequest::LeaveGroup(LeaveGroupRequest {
                    group_id: group.config.group_id.clone(),
                    members: vec![LeavingMember {
                        member_id: group.membership.member_id.clone(),
                        group_instance_id: None,
                        reason: Some("the consumer is being closed".into()),
                    }],
                });
                if let Err(error) = self.coordinator_request(&request, None).await {
                    tracing::debug!(%error, "LeaveGroup failed");
                }
            }
        }
        self.group = None;
        self.partitions.clear();
    }

    /// Sends to the cached coordinator (looked up when unknown); `timeout` defaults to the
    /// request timeout. A failed request forgets the coordinator.
    async fn coordinator_request(
        &mut self,
        request: &ApiRequest,
        timeout: Option<Duration>,
    ) -> Result<ApiResponse, ClientError> {
        let Some(group) = self.group.as_mut() else {
            return Err(ClientError::InvalidArgument("no group".into()));
        };
        let connection = match &group.coordinator {
            Some(connection) if !connection.is_closed() => connection.clone(),
            _ => {
                let connection =
                    coordinator_connection(&self.cluster, &group.config.group_id).await?;
                group.coordinator = Some(connection.clone());
                connection
            }
        };
        let timeout = timeout.unwrap_or(self.cluster.config().request_timeout);
        let result = connection.request(request, timeout).await;
        if result.is_err() {
            group.coordinator = None;
        }
        result
    }
}

fn group_by_topic(partitions: impl Iterator<Item = TopicPartition>) -> TopicPartitions {
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(tp.topic).or_default().push(tp.partition);
    }
    by_topic.into_iter().collect()
}
