//! The client's view of the cluster: bootstrap, metadata refresh, and one connection per
//! broker address.
//!
//! Invariants:
//! - At most one connection per address is kept; a closed one is replaced on next use.
//! - The metadata cache is swapped as a whole (`Arc` snapshot), so readers never see a
//!   half-applied response and never hold a lock across an await.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use weir_runtime::Runtime;
use weir_wire::domain::{
    ApiRequest, ApiResponse, DeleteRecordsRequest, DeleteRecordsTopic, ListOffsetsPartition,
    ListOffsetsRequest, ListOffsetsTopic, MetadataRequest, TopicRef,
};
use weir_wire::error::ErrorCode;

use crate::config::ClientConfig;
use crate::driver::connection::Connection;
use crate::error::ClientError;
use crate::session::metadata::MetadataCache;
use crate::TopicPartition;

/// Shared handle to the cluster; cheap to clone.
pub struct Cluster<R: Runtime> {
    shared: Arc<Shared<R>>,
}

impl<R: Runtime> Clone for Cluster<R> {
    fn clone(&self) -> Cluster<R> {
        Cluster {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<R: Runtime> std::fmt::Debug for Cluster<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("bootstrap", &self.shared.config.bootstrap_servers)
            .finish()
    }
}

struct Shared<R: Runtime> {
    runtime: R,
    config: ClientConfig,
    metadata: Mutex<Arc<MetadataCache>>,
    /// Held across connect so two tasks never open two connections to one broker.
    connections: tokio::sync::Mutex<BTreeMap<String, Connection<R>>>,
}

/// The answer to one ListOffsets query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAnswer {
    /// The offset found, -1 if none (a timestamp after the last record).
    pub offset: i64,
    /// The found record's timestamp, -1 for the earliest/latest sentinels.
    pub timestamp: i64,
}

/// [`Cluster::by_leader`]'s answer: the metadata used, the items by leader, and the
/// items without a leader with the reason.
type LeaderGroups<'a, T> = (
    Arc<MetadataCache>,
    BTreeMap<i32, Vec<&'a T>>,
    Vec<(TopicPartition, ClientError)>,
);

impl<R: Runtime> Cluster<R> {
    /// Connects to the first reachable bootstrap server and learns the brokers.
    pub async fn connect(runtime: R, config: ClientConfig) -> Result<Cluster<R>, ClientError> {
        if config.bootstrap_servers.is_empty() {
            return Err(ClientError::InvalidArgument("no bootstrap servers".into()));
        }
        let cluster = Cluster {
            shared: Arc::new(Shared {
                runtime,
                config,
                metadata: Mutex::new(Arc::new(MetadataCache::default())),
                connections: tokio::sync::Mutex::new(BTreeMap::new()),
            }),
        };
        cluster.refresh_metadata(Some(&[]), false).await?;
        Ok(cluster)
    }

    /// The runtime.
    pub fn runtime(&self) -> &R {
        &self.shared.runtime
    }

    /// The connection settings.
    pub fn config(&self) -> &ClientConfig {
        &self.shared.config
    }

    /// The current metadata snapshot.
    pub fn metadata(&self) -> Arc<MetadataCache> {
        Arc::clone(&lock(&self.shared.metadata))
    }

    /// Asks any broker for metadata of `topics` (`None` = all) and updates the cache.
    pub async fn refresh_metadata(
        &self,
        topics: Option<&[String]>,
        allow_auto_create: bool,
    ) -> Result<Arc<MetadataCache>, ClientError> {
        let request = ApiRequest::Metadata(MetadataRequest {
            topics: topics.map(|names| names.iter().cloned().map(TopicRef::Name).collect()),
            allow_auto_topic_creation: allow_auto_create,
            include_cluster_authorized_operations: false,
            include_topic_authorized_operations: false,
        });
        let response = match self.request_any(&request).await? {
            ApiResponse::Metadata(response) => response,
            other => return Err(unexpected("Metadata", &other)),
        };
        let now = self.shared.runtime.now();
        let mut guard = lock(&self.shared.metadata);
        let mut updated = MetadataCache::clone(&guard);
        updated.update(now, &response, topics.is_none());
        let updated = Arc::new(updated);
        *guard = Arc::clone(&updated);
        Ok(updated)
    }

    /// A live connection to broker `node_id`.
    pub async fn connection_to(&self, node_id: i32) -> Result<Connection<R>, ClientError> {
        let address = self.metadata().broker_address(node_id).ok_or_else(|| {
            ClientError::NoBroker(format!("node {node_id} is not in the metadata"))
        })?;
        self.connection_at(&address).await
    }

    /// A live connection to `address`, opening one if needed.
    pub async fn connection_at(&self, address: &str) -> Result<Connection<R>, ClientError> {
        let mut connections = self.shared.connections.lock().await;
        if let Some(existing) = connections.get(address) {
            if !existing.is_closed() {
                return Ok(existing.clone());
            }
            connections.remove(address);
        }
        let shared = &self.shared;
        let connection = Connection::open(shared.runtime.clone(), address, &shared.config).await?;
        connections.insert(address.to_owned(), connection.clone());
        Ok(connection)
    }

    /// Sends `request` to any reachable broker: an open connection first, then known
    /// brokers, then the bootstrap list.
    pub async fn request_any(&self, request: &ApiRequest) -> Result<ApiResponse, ClientError> {
        let mut candidates: Vec<String> = {
            let connections = self.shared.connections.lock().await;
            connections
                .iter()
                .filter(|(_, connection)| !connection.is_closed())
                .map(|(address, _)| address.clone())
                .collect()
        };
        let metadata = self.metadata();
        candidates.extend(metadata.brokers().map(|b| format!("{}:{}", b.host, b.port)));
        candidates.extend(self.shared.config.bootstrap_servers.iter().cloned());
        let mut last_error = None;
        let mut tried: Vec<&str> = Vec::new();
        for address in &candidates {
            if tried.contains(&address.as_str()) {
                continue;
            }
            tried.push(address);
            let attempt = async {
                let connection = self.connection_at(address).await?;
                connection
                    .request(request, self.shared.config.request_timeout)
                    .await
            };
            match attempt.await {
                Ok(response) => return Ok(response),
                Err(error) if error.is_retriable() => {
                    tracing::debug!(address, %error, "broker unavailable, trying the next");
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(ClientError::NoBroker(last_error.map_or_else(
            || "no candidates".to_owned(),
            |error| error.to_string(),
        )))
    }

    /// Sends `request` to broker `node_id`.
    pub async fn request_node(
        &self,
        node_id: i32,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ClientError> {
        let connection = self.connection_to(node_id).await?;
        connection
            .request(request, self.shared.config.request_timeout)
            .await
    }

    /// Sends `request` to the controller if known, else to any broker.
    pub async fn request_controller(
        &self,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ClientError> {
        let controller = self.metadata().controller_id();
        if controller >= 0 && self.metadata().broker_address(controller).is_some() {
            return self.request_node(controller, request).await;
        }
        self.request_any(request).await
    }

    /// Groups `items` by the leader of their partition (`tp` names it), refreshing the
    /// metadata once when a leader is unknown; items still without one are answered
    /// with the reason.
    async fn by_leader<'a, T>(
        &self,
        items: &'a [T],
        tp: impl Fn(&T) -> &TopicPartition,
    ) -> Result<LeaderGroups<'a, T>, ClientError> {
        let mut metadata = self.metadata();
        let missing = (items.iter()).any(|item| {
            metadata
                .leader_for(&tp(item).topic, tp(item).partition)
                .is_none()
        });
        if missing {
            let mut topics: Vec<String> = items.iter().map(|item| tp(item).topic.clone()).collect();
            topics.sort();
            topics.dedup();
            metadata = self.refresh_metadata(Some(&topics), false).await?;
        }
        let mut by_node: BTreeMap<i32, Vec<&T>> = BTreeMap::new();
        let mut leaderless = Vec::new();
        for item in items {
            let tp = tp(item);
            match metadata.leader_for(&tp.topic, tp.partition) {
                Some(leader) => by_node.entry(leader).or_default().push(item),
                None => leaderless.push((tp.clone(), no_leader(&metadata, tp))),
            }
        }
        Ok((metadata, by_node, leaderless))
    }

    /// DeleteRecords at each partition's leader: records below each offset (-1: the high
    /// watermark) are deleted. Per-partition answers are the new log start offset (the low
    /// watermark) or the failure; they are returned, not raised.
    pub async fn delete_records(
        &self,
        deletions: &[(TopicPartition, i64)],
        timeout_ms: i32,
    ) -> Result<Vec<(TopicPartition, Result<i64, ClientError>)>, ClientError> {
        let (_, by_node, leaderless) = self.by_leader(deletions, |(tp, _)| tp).await?;
        let mut out: Vec<(TopicPartition, Result<i64, ClientError>)> = (leaderless.into_iter())
            .map(|(tp, e)| (tp, Err(e)))
            .collect();
        for (node, node_deletions) in by_node {
            let topics = by_topic(&node_deletions, |(tp, offset)| {
                (tp, (tp.partition, *offset))
            });
            let request = ApiRequest::DeleteRecords(DeleteRecordsRequest {
                topics: (topics.into_iter())
                    .map(|(name, partitions)| DeleteRecordsTopic { name, partitions })
                    .collect(),
                timeout_ms,
            });
            let response = match self.request_node(node, &request).await {
                Ok(ApiResponse::DeleteRecords(response)) => Ok(response),
                Ok(other) => Err(unexpected("DeleteRecords", &other)),
                Err(error) => Err(error),
            };
            for (tp, _) in node_deletions {
                let answer = partition_answer(&response, "DeleteRecords", tp, |response| {
                    (response.topics.iter())
                        .filter(|topic| topic.name == tp.topic)
                        .flat_map(|topic| &topic.partitions)
                        .find(|partition| partition.partition == tp.partition)
                        .map(|partition| (partition.error, partition.low_watermark))
                });
                out.push((tp.clone(), answer));
            }
        }
        Ok(out)
    }

    /// Resolves ListOffsets queries (`timestamp` or an EARLIEST/LATEST/MAX sentinel) at each
    /// partition's leader. Per-partition failures are returned, not raised.
    pub async fn list_offsets(
        &self,
        queries: &[(TopicPartition, i64)],
        read_committed: bool,
    ) -> Result<Vec<(TopicPartition, Result<OffsetAnswer, ClientError>)>, ClientError> {
        let (metadata, by_node, leaderless) = self.by_leader(queries, |(tp, _)| tp).await?;
        let mut answers: Vec<(TopicPartition, Result<OffsetAnswer, ClientError>)> = (leaderless
            .into_iter())
        .map(|(tp, e)| (tp, Err(e)))
        .collect();
        for (node, node_queries) in by_node {
            let topics = by_topic(&node_queries, |(tp, timestamp)| {
                let partition = ListOffsetsPartition {
                    partition: tp.partition,
                    current_leader_epoch: metadata.leader_epoch(&tp.topic, tp.partition),
                    timestamp: *timestamp,
                };
                (tp, partition)
            });
            let request = ApiRequest::ListOffsets(ListOffsetsRequest {
                replica_id: -1,
                isolation_level: i8::from(read_committed),
                topics: (topics.into_iter())
                    .map(|(name, partitions)| ListOffsetsTopic { name, partitions })
                    .collect(),
            });
            let response = match self.request_node(node, &request).await {
                Ok(ApiResponse::ListOffsets(response)) => Ok(response),
                Ok(other) => Err(unexpected("ListOffsets", &other)),
                Err(error) => Err(error),
            };
            for (tp, _) in node_queries {
                let answer = partition_answer(&response, "ListOffsets", tp, |response| {
                    (response.topics.iter())
                        .filter(|topic| topic.name == tp.topic)
                        .flat_map(|topic| &topic.partitions)
                        .find(|partition| partition.partition == tp.partition)
                        .map(|partition| {
                            let answer = OffsetAnswer {
                                offset: partition.offset,
                                timestamp: partition.timestamp,
                            };
                            (partition.error, answer)
                        })
                });
                answers.push((tp.clone(), answer));
            }
        }
        Ok(answers)
    }
}

/// One leader's `items` as (topic, its parts) in topic order, the shape of per-topic
/// requests; `split` gives an item's partition and its part of the request.
fn by_topic<T, P>(
    items: &[&T],
    split: impl Fn(&T) -> (&TopicPartition, P),
) -> Vec<(String, Vec<P>)> {
    let mut topics: BTreeMap<String, Vec<P>> = BTreeMap::new();
    for item in items {
        let (tp, part) = split(item);
        topics.entry(tp.topic.clone()).or_default().push(part);
    }
    topics.into_iter().collect()
}

/// One partition's answer out of a leader's `response`: `find` gives its (error, value);
/// a partition the response lacks is a protocol error.
fn partition_answer<R, T>(
    response: &Result<R, ClientError>,
    api: &str,
    tp: &TopicPartition,
    find: impl FnOnce(&R) -> Option<(ErrorCode, T)>,
) -> Result<T, ClientError> {
    let response = response.as_ref().map_err(Clone::clone)?;
    match find(response) {
        None => Err(ClientError::Protocol(format!("no {api} answer for {tp}"))),
        Some((error, value)) if error.is_ok() => Ok(value),
        Some((error, _)) => Err(ClientError::kafka(error, tp.to_string())),
    }
}

/// Why a partition has no usable leader.
pub fn no_leader(metadata: &MetadataCache, tp: &TopicPartition) -> ClientError {
    let code = match metadata.topic(&tp.topic) {
        None => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
        Some(topic) if !topic.error.is_ok() => topic.error,
        Some(topic) if !topic.partitions.iter().any(|p| p.partition == tp.partition) => {
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        }
        Some(_) => ErrorCode::LEADER_NOT_AVAILABLE,
    };
    ClientError::kafka(code, tp.to_string())
}

/// A response of the wrong type for the request.
pub fn unexpected(expected: &str, got: &ApiResponse) -> ClientError {
    let got = format!("{got:?}");
    let got: String = got.chars().take(60).collect();
    ClientError::Protocol(format!("expected a {expected} response, got {got}"))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
