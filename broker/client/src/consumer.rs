//! The consumer: manual assignment or group subscription, seek, and `poll` over Fetch
//! long-polling.
//!
//! With `assign` the caller owns partitions and positions; with `subscribe` (see
//! `consumer/group.rs`) the group's coordinator hands out partitions and positions start from
//! committed offsets, and `poll` also heartbeats, auto-commits and rejoins. Positions are
//! resolved lazily: a partition without one gets it from `auto.offset.reset` (ListOffsets)
//! on the next poll; `seek` resolves immediately so its errors surface at the call.
//!
//! Invariants:
//! - Records of a partition are returned in offset order, each exactly once per position:
//!   the position only moves forward over complete batches (see [`crate::session::fetch`]),
//!   except through `seek` or an `auto.offset.reset`.
//! - One Fetch per leader per poll round, sent concurrently, each bounded by the poll's
//!   remaining time.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use weir_runtime::Runtime;
use weir_wire::domain::{
    ApiRequest, ApiResponse, FetchPartition, FetchRecords, FetchRequest, FetchResponse, FetchTopic,
    TopicRef, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP,
};
use weir_wire::error::ErrorCode;

use crate::config::{AutoOffsetReset, ConsumerConfig};
use crate::driver::cluster::{no_leader, unexpected, Cluster};
use crate::driver::millis_i32;
use crate::error::ClientError;
use crate::session::fetch::records_from_committed;
use crate::session::retry::Backoff;
use crate::TopicPartition;

mod group;

/// Where to move a partition's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// The log start offset.
    Earliest,
    /// The log end offset (only records produced from now on).
    Latest,
    /// An exact offset.
    At(i64),
    /// The first record with timestamp >= this many ms since the epoch (the log end if none).
    Timestamp(i64),
}

/// A record as returned by [`Consumer::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp (ms since the epoch).
    pub timestamp: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<(String, Option<Bytes>)>,
}

#[derive(Debug, Clone, Default)]
struct PartitionState {
    /// Next offset to fetch; `None` until resolved.
    position: Option<i64>,
    /// High watermark from the last fetch, -1 before any.
    high_watermark: i64,
}

/// A consumer with manually assigned partitions.
pub struct Consumer<R: Runtime> {
    cluster: Cluster<R>,
    config: ConsumerConfig,
    partitions: BTreeMap<TopicPartition, PartitionState>,
    backoff: Backoff,
    /// Group membership after `subscribe`.
    group: Option<group::GroupMember<R>>,
}

impl<R: Runtime> std::fmt::Debug for Consumer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("assignment", &self.partitions.keys())
            .finish()
    }
}

type FetchResult = (i32, Result<FetchResponse, ClientError>);

impl<R: Runtime> Consumer<R> {
    /// Connects to the cluster.
    pub async fn connect(runtime: R, config: ConsumerConfig) -> Result<Consumer<R>, ClientError> {
        let seed = runtime.rng_seed();
        let cluster = Cluster::connect(runtime, config.client.clone()).await?;
        let backoff = Backoff::new(
            config.client.retry_backoff,
            config.client.retry_backoff_max,
            seed,
        );
        Ok(Consumer {
            cluster,
            config,
            partitions: BTreeMap::new(),
            backoff,
            group: None,
        })
    }

    /// Replaces the assignment. Partitions kept from the old assignment keep their position;
    /// new ones start per `auto.offset.reset` unless `seek`ed.
    pub async fn assign(&mut self, partitions: Vec<(String, i32)>) -> Result<(), ClientError> {
        if self.group.is_some() {
            return Err(ClientError::InvalidArgument(
                "assign after subscribe: the group owns the assignment".into(),
            ));
        }
        let mut next = BTreeMap::new();
        for (topic, partition) in partitions {
            if topic.is_empty() || partition < 0 {
                return Err(ClientError::InvalidArgument(format!(
                    "{topic:?} partition {partition}"
                )));
            }
            let tp = TopicPartition::new(topic, partition);
            let state = self.partitions.get(&tp).cloned().unwrap_or(PartitionState {
                position: None,
                high_watermark: -1,
            });
            next.insert(tp, state);
        }
        self.partitions = next;
        let topics = self.assigned_topics();
        if !topics.is_empty() {
            self.cluster.refresh_metadata(Some(&topics), false).await?;
        }
        Ok(())
    }

    /// The partition indexes of `topic` (asks the cluster; Java's `partitionsFor`).
    pub async fn partitions_for(&self, topic: &str) -> Result<Vec<i32>, ClientError> {
        let metadata = self
            .cluster
            .refresh_metadata(Some(&[topic.to_owned()]), false)
            .await?;
        match metadata.topic(topic) {
            None => Err(ClientError::kafka(
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                topic,
            )),
            Some(found) if !found.error.is_ok() => Err(ClientError::kafka(found.error, topic)),
            Some(found) => Ok(found.partitions.iter().map(|p| p.partition).collect()),
        }
    }

    /// The cluster handle (metadata, connections).
    pub fn cluster(&self) -> &Cluster<R> {
        &self.cluster
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.partitions.keys().cloned().collect()
    }

    /// Moves a partition's position; returns the resolved offset.
    pub async fn seek(
        &mut self,
        topic: &str,
        partition: i32,
        offset: Offset,
    ) -> Result<i64, ClientError> {
        let tp = TopicPartition::new(topic, partition);
        if !self.partitions.contains_key(&tp) {
            return Err(ClientError::InvalidArgument(format!(
                "{tp} is not assigned"
            )));
        }
        let position = match offset {
            Offset::At(position) if position >= 0 => position,
            Offset::At(position) => {
                return Err(ClientError::InvalidArgument(format!("offset {position}")))
            }
            Offset::Earliest => self.list_offset(&tp, EARLIEST_TIMESTAMP).await?,
            Offset::Latest => self.list_offset(&tp, LATEST_TIMESTAMP).await?,
            Offset::Timestamp(ms) if ms < 0 => {
                return Err(ClientError::InvalidArgument(format!("timestamp {ms}")))
            }
            Offset::Timestamp(ms) => match self.list_offset(&tp, ms).await? {
                // No record at or after the timestamp: start at the end, as Java users do
                // after offsetsForTimes returns null.
                -1 => self.list_offset(&tp, LATEST_TIMESTAMP).await?,
                found => found,
            },
        };
        if let Some(state) = self.partitions.get_mut(&tp) {
            state.position = Some(position);
        }
        Ok(position)
    }

    /// The next offset to be returned for a partition, if resolved.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.partitions
            .get(&TopicPartition::new(topic, partition))
            .and_then(|s| s.position)
    }

    /// The high watermark seen by the last fetch of a partition (-1 before any).
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.partitions
            .get(&TopicPartition::new(topic, partition))
            .map(|s| s.high_watermark)
    }

    /// Fetches records, waiting up to `timeout` for at least one. Returns an empty vector on
    /// timeout.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>, ClientError> {
        let runtime = self.cluster.runtime().clone();
        let deadline = runtime.now().saturating_add(timeout);
        let mut failures = 0u32;
        loop {
            let round = self.poll_round(deadline).await;
            let now = runtime.now();
            match round {
                Ok(records) if !records.is_empty() || now >= deadline => return Ok(records),
                Ok(_) => failures = 0,
                Err(error) if error.is_retriable() && now < deadline => {
                    failures += 1;
                    tracing::debug!(%error, failures, "fetch round failed, backing off");
                    let wake = now
                        .saturating_add(self.backoff.delay(failures))
                        .min(deadline);
                    runtime.sleep_until(wake).await;
                }
                Err(error) if error.is_retriable() => return Ok(Vec::new()),
                Err(error) => return Err(error),
            }
        }
    }

    /// One fetch round: resolve positions, one Fetch per leader, process the answers.
    async fn poll_round(&mut self, deadline: Duration) -> Result<Vec<ConsumerRecord>, ClientError> {
        self.maintain_group().await?;
        // Come back in time for the next heartbeat or auto-commit.
        let group_deadline = self.group.as_ref().and_then(|g| g.next_deadline());
        let deadline = group_deadline.map_or(deadline, |due| due.min(deadline));
        self.resolve_positions().await?;
        if self.partitions.is_empty() {
            let runtime = self.cluster.runtime();
            runtime.sleep_until(deadline).await;
            return Ok(Vec::new());
        }
        let metadata = self.cluster.metadata();
        let mut by_node: BTreeMap<i32, Vec<(TopicPartition, i64)>> = BTreeMap::new();
        let mut leaderless = None;
        for (tp, state) in &self.partitions {
            let Some(position) = state.position else {
                continue;
            };
            match metadata.leader_for(&tp.topic, tp.partition) {
                Some(leader) => by_node
                    .entry(leader)
                    .or_default()
                    .push((tp.clone(), position)),
                None => leaderless = Some(no_leader(&metadata, tp)),
            }
        }
        if let Some(error) = leaderless {
            self.refresh_metadata().await?;
            if by_node.is_empty() {
                return Err(error);
            }
        }
        let now = self.cluster.runtime().now();
        let max_wait = self.config.fetch_max_wait.min(deadline.saturating_sub(now));
        let results = self.fetch_all(by_node, max_wait).await;
        let mut records = Vec::new();
        let mut refresh = false;
        for (_node, result) in results {
            match result {
                Ok(response) => refresh |= self.apply_fetch(response, &mut records)?,
                Err(error) if error.is_retriable() => {
                    tracing::debug!(%error, "fetch failed");
                    refresh = true;
                }
                Err(error) => return Err(error),
            }
        }
        if refresh {
            // Positions already moved past `records`: returning an error now would drop them
            // and the next round would skip them. Deliver them; the next round refreshes.
            if let Err(error) = self.refresh_metadata().await {
                if records.is_empty() {
                    return Err(error);
                }
                tracing::debug!(%error, "metadata refresh failed after a fetch with records");
            }
        }
        Ok(records)
    }

    /// Sends one Fetch per leader concurrently and collects the answers in node order.
    async fn fetch_all(
        &self,
        by_node: BTreeMap<i32, Vec<(TopicPartition, i64)>>,
        max_wait: Duration,
    ) -> Vec<FetchResult> {
        let metadata = self.cluster.metadata();
        let mut receivers = Vec::new();
        for (node, partitions) in by_node {
            let mut topics: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
            for (tp, position) in partitions {
                topics
                    .entry(tp.topic.clone())
                    .or_default()
                    .push(FetchPartition {
                        partition: tp.partition,
                        current_leader_epoch: metadata.leader_epoch(&tp.topic, tp.partition),
                        fetch_offset: position,
                        log_start_offset: -1,
                        partition_max_bytes: self.config.partition_fetch_bytes_max,
                    });
            }
            let request = ApiRequest::Fetch(FetchRequest {
                replica_id: -1,
                max_wait_ms: millis_i32(max_wait),
                min_bytes: self.config.fetch_min_bytes,
                max_bytes: self.config.fetch_max_bytes,
                isolation_level: i8::from(self.config.read_committed),
                // Sessionless full fetches (id 0, epoch -1): every request lists every
                // partition, which every broker accepts.
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
            let (sender, receiver) = oneshot::channel();
            let cluster = self.cluster.clone();
            // The broker may hold the fetch for max_wait; allow that plus the request timeout.
            let timeout = self.config.client.request_timeout.saturating_add(max_wait);
            self.cluster.runtime().spawn(async move {
                let result = async {
                    let connection = cluster.connection_to(node).await?;
                    match connection.request(&request, timeout).await? {
                        ApiResponse::Fetch(response) => Ok(response),
                        other => Err(unexpected("Fetch", &other)),
                    }
                }
                .await;
                drop(sender.send(result));
            });
            receivers.push((node, receiver));
        }
        let mut results = Vec::new();
        for (node, receiver) in receivers {
            let result = receiver.await.unwrap_or(Err(ClientError::Closed));
            results.push((node, result));
        }
        results
    }

    /// Applies one Fetch response; returns whether metadata should be refreshed.
    fn apply_fetch(
        &mut self,
        response: FetchResponse,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<bool, ClientError> {
        if !response.error.is_ok() {
            let error = ClientError::kafka(response.error, "fetch");
            return if error.is_retriable() {
                Ok(true)
            } else {
                Err(error)
            };
        }
        let mut refresh = false;
        for topic in response.topics {
            let TopicRef::Name(name) = topic.topic else {
                return Err(ClientError::Protocol(
                    "fetch response names a topic by id".into(),
                ));
            };
            for partition in topic.partitions {
                let tp = TopicPartition::new(name.clone(), partition.partition);
                let Some(state) = self.partitions.get_mut(&tp) else {
                    continue;
                };
                let Some(position) = state.position else {
                    continue;
                };
                match partition.error {
                    ErrorCode::NONE => {}
                    ErrorCode::OFFSET_OUT_OF_RANGE => {
                        if self.config.auto_offset_reset == AutoOffsetReset::None {
                            let message = Some(format!("fetch offset {position}"));
                            let code = ErrorCode::OFFSET_OUT_OF_RANGE;
                            return Err(ClientError::Kafka {
                                code,
                                context: tp.to_string(),
                                message,
                            });
                        }
                        tracing::info!(%tp, position, "offset out of range, resetting");
                        state.position = None;
                        continue;
                    }
                    code if crate::error::is_retriable_code(code) => {
                        refresh |= crate::error::needs_metadata_refresh(code);
                        continue;
                    }
                    code => return Err(ClientError::kafka(code, tp.to_string())),
                }
                state.high_watermark = partition.high_watermark;
                let bytes = match partition.records {
                    FetchRecords::Bytes(bytes) => bytes,
                    FetchRecords::Empty => continue,
                    FetchRecords::Read(_) | FetchRecords::Remote(_) => {
                        return Err(ClientError::Protocol("unresolved read plan".into()))
                    }
                };
                // read_committed: the broker stopped at the last stable offset; drop the
                // records of the aborted transactions it listed.
                let aborted = (self.config.read_committed)
                    .then_some(partition.aborted_transactions.as_slice());
                let fetched = records_from_committed(bytes, position, aborted)?;
                state.position = Some(fetched.next_position);
                out.extend(fetched.records.into_iter().map(|record| ConsumerRecord {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset: record.offset,
                    timestamp: record.timestamp,
                    key: record.key,
                    value: record.value,
                    headers: record.headers,
                }));
            }
        }
        Ok(refresh)
    }

    /// Gives every partition without a position one, per `auto.offset.reset`.
    async fn resolve_positions(&mut self) -> Result<(), ClientError> {
        let missing: Vec<TopicPartition> = self
            .partitions
            .iter()
            .filter(|(_, state)| state.position.is_none())
            .map(|(tp, _)| tp.clone())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let timestamp = match self.config.auto_offset_reset {
            AutoOffsetReset::Earliest => EARLIEST_TIMESTAMP,
            AutoOffsetReset::Latest => LATEST_TIMESTAMP,
            AutoOffsetReset::None => return Err(ClientError::NoOffset(missing[0].to_string())),
        };
        let queries: Vec<(TopicPartition, i64)> =
            missing.into_iter().map(|tp| (tp, timestamp)).collect();
        let answers = self
            .cluster
            .list_offsets(&queries, self.config.read_committed)
            .await?;
        let mut first_error = None;
        for (tp, answer) in answers {
            match answer {
                Ok(answer) => {
                    if let Some(state) = self.partitions.get_mut(&tp) {
                        state.position = Some(answer.offset.max(0));
                    }
                }
                Err(error) => first_error = first_error.or(Some(error)),
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn list_offset(&self, tp: &TopicPartition, timestamp: i64) -> Result<i64, ClientError> {
        let queries = [(tp.clone(), timestamp)];
        let answers = self
            .cluster
            .list_offsets(&queries, self.config.read_committed)
            .await?;
        match answers.into_iter().next() {
            Some((_, answer)) => Ok(answer?.offset),
            None => Err(ClientError::Protocol(format!(
                "no ListOffsets answer for {tp}"
            ))),
        }
    }

    async fn refresh_metadata(&self) -> Result<(), ClientError> {
        let topics = self.assigned_topics();
        self.cluster
            .refresh_metadata(Some(&topics), false)
            .await
            .map(|_| ())
    }

    fn assigned_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.partitions.keys().map(|tp| tp.topic.clone()).collect();
        topics.dedup();
        topics
    }
}
