//! The admin client's transaction operations (Kafka's `kafka-transactions.sh` views):
//! ListTransactions, DescribeTransactions and DescribeProducers.
//!
//! Routing follows Kafka's admin client: ListTransactions asks every broker (each lists the
//! transactional ids it coordinates), DescribeTransactions goes to each id's transaction
//! coordinator (FindCoordinator with key type 1), DescribeProducers to each partition's
//! leader. Per-id and per-partition failures are returned, not raised, so one unknown id
//! does not hide the others.

use std::collections::BTreeMap;
use std::time::Duration;

use weir_runtime::Runtime;
use weir_wire::domain::txn::{
    DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest, TxnTopic,
};
use weir_wire::domain::{coordinator_type, ApiRequest, ApiResponse, FindCoordinatorRequest};

use crate::admin::Admin;
use crate::driver::cluster::{no_leader, unexpected, Cluster};
use crate::driver::coordinator::{is_coordinator_error, CoordinatorInfo, COORDINATOR_ATTEMPTS_MAX};
use crate::error::ClientError;
use crate::TopicPartition;

/// A transaction as ListTransactions reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    /// Transactional id.
    pub transactional_id: String,
    /// Its current producer id.
    pub producer_id: i64,
    /// Kafka's state name (Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit,
    /// CompleteAbort, ...).
    pub state: String,
    /// Node id of the coordinator that listed it.
    pub coordinator: i32,
}

/// A transaction as DescribeTransactions reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// Transactional id.
    pub transactional_id: String,
    /// Kafka's state name.
    pub state: String,
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms` the producer asked for.
    pub timeout_ms: i32,
    /// Wall-clock ms the ongoing transaction started, -1 when none is ongoing.
    pub start_time_ms: i64,
    /// Partitions in the ongoing transaction, sorted.
    pub partitions: Vec<TopicPartition>,
    /// The coordinator's node id.
    pub coordinator: i32,
}

/// A producer active on a partition (DescribeProducers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerState {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i32,
    /// Last sequence written, -1 when none.
    pub last_sequence: i32,
    /// Wall-clock ms of its last write, -1 when unknown.
    pub last_timestamp: i64,
    /// Coordinator epoch of its last marker, -1 when none.
    pub coordinator_epoch: i32,
    /// First offset of its open transaction on the partition, `None` when none is open.
    pub current_txn_start_offset: Option<i64>,
}

/// One partition's answer to `describe_producers`.
pub type PartitionProducers = (TopicPartition, Result<Vec<ProducerState>, ClientError>);

impl<R: Runtime> Admin<R> {
    /// Transactions of every broker, sorted by transactional id; `states` and
    /// `producer_ids` filter (empty: no filter). A state filter that is not a state name is
    /// refused.
    pub async fn list_transactions(
        &self,
        states: &[String],
        producer_ids: &[i64],
    ) -> Result<Vec<TransactionListing>, ClientError> {
        let cluster = self.cluster();
        let request = ApiRequest::ListTransactions(ListTransactionsRequest {
            state_filters: states.to_vec(),
            producer_id_filters: producer_ids.to_vec(),
            duration_filter_ms: -1,
        });
        let metadata = cluster.refresh_metadata(Some(&[]), false).await?;
        let nodes: Vec<i32> = metadata.brokers().map(|b| b.node_id).collect();
        let mut listed = BTreeMap::new();
        for node in nodes {
            let response = match cluster.request_node(node, &request).await? {
                ApiResponse::ListTransactions(response) => response,
                other => return Err(unexpected("ListTransactions", &other)),
            };
            if !response.error.is_ok() {
                return Err(ClientError::kafka(
                    response.error,
                    format!("ListTransactions on {node}"),
                ));
            }
            if !response.unknown_state_filters.is_empty() {
                return Err(ClientError::InvalidArgument(format!(
                    "unknown transaction state(s): {}",
                    response.unknown_state_filters.join(", ")
                )));
            }
            for txn in response.transactions {
                let listing = TransactionListing {
                    transactional_id: txn.transactional_id.clone(),
                    producer_id: txn.producer_id,
                    state: txn.state,
                    coordinator: node,
                };
                listed.insert(txn.transactional_id, listing);
            }
        }
        Ok(listed.into_values().collect())
    }

    /// Describes transactional ids at their coordinators; one result per id, in order
    /// (TRANSACTIONAL_ID_NOT_FOUND for an id the coordinator does not know).
    pub async fn describe_transactions(
        &self,
        transactional_ids: &[String],
    ) -> Result<Vec<(String, Result<TransactionDescription, ClientError>)>, ClientError> {
        let mut results = Vec::with_capacity(transactional_ids.len());
        for transactional_id in transactional_ids {
            let result = self.describe_transaction(transactional_id).await;
            results.push((transactional_id.clone(), result));
        }
        Ok(results)
    }

    async fn describe_transaction(
        &self,
        transactional_id: &str,
    ) -> Result<TransactionDescription, ClientError> {
        let request = ApiRequest::DescribeTransactions(DescribeTransactionsRequest {
            transactional_ids: vec![transactional_id.to_owned()],
        });
        let (coordinator, response) =
            request_txn_coordinator(self.cluster(), transactional_id, &request).await?;
        let response = match response {
            ApiResponse::DescribeTransactions(response) => response,
            other => return Err(unexpected("DescribeTransactions", &other)),
        };
        let Some(txn) =
            (response.transactions.into_iter()).find(|t| t.transactional_id == transactional_id)
        else {
            return Err(ClientError::Protocol(format!(
                "no DescribeTransactions answer for {transactional_id}"
            )));
        };
        if !txn.error.is_ok() {
            return Err(ClientError::kafka(
                txn.error,
                format!("transactional id {transactional_id}"),
            ));
        }
        let mut partitions: Vec<TopicPartition> = (txn.topics.iter())
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| TopicPartition::new(&t.name, *p))
            })
            .collect();
        partitions.sort();
        Ok(TransactionDescription {
            transactional_id: txn.transactional_id,
            state: txn.state,
            producer_id: txn.producer_id,
            producer_epoch: txn.producer_epoch,
            timeout_ms: txn.timeout_ms,
            start_time_ms: txn.start_time_ms,
            partitions,
            coordinator: coordinator.node_id,
        })
    }

    /// Active producers of each partition, asked of the partition's leader; one result per
    /// partition, in the order given.
    pub async fn describe_producers(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<PartitionProducers>, ClientError> {
        let cluster = self.cluster();
        let mut metadata = cluster.metadata();
        if (partitions.iter()).any(|tp| metadata.leader_for(&tp.topic, tp.partition).is_none()) {
            let mut topics: Vec<String> = partitions.iter().map(|tp| tp.topic.clone()).collect();
            topics.sort();
            topics.dedup();
            metadata = cluster.refresh_metadata(Some(&topics), false).await?;
        }
        let mut answers: BTreeMap<TopicPartition, Result<Vec<ProducerState>, ClientError>> =
            BTreeMap::new();
        let mut by_node: BTreeMap<i32, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
        for tp in partitions {
            match metadata.leader_for(&tp.topic, tp.partition) {
                Some(leader) => (by_node.entry(leader).or_default())
                    .entry(&tp.topic)
                    .or_default()
                    .push(tp.partition),
                None => {
                    answers.insert(tp.clone(), Err(no_leader(&metadata, tp)));
                }
            }
        }
        for (node, topics) in by_node {
            let asked: Vec<TopicPartition> = (topics.iter())
                .flat_map(|(topic, ps)| ps.iter().map(|p| TopicPartition::new(*topic, *p)))
                .collect();
            let request = ApiRequest::DescribeProducers(DescribeProducersRequest {
                topics: (topics.into_iter())
                    .map(|(name, partitions)| TxnTopic {
                        name: name.to_owned(),
                        partitions,
                    })
                    .collect(),
            });
            let response = match cluster.request_node(node, &request).await {
                Ok(ApiResponse::DescribeProducers(response)) => response,
                Ok(other) => return Err(unexpected("DescribeProducers", &other)),
                Err(error) => {
                    for tp in asked {
                        answers.insert(tp, Err(error.clone()));
                    }
                    continue;
                }
            };
            for topic in response.topics {
                for partition in topic.partitions {
                    let tp = TopicPartition::new(&topic.name, partition.partition);
                    let answer = if partition.error.is_ok() {
                        Ok((partition.producers.iter())
                            .map(|p| ProducerState {
                                producer_id: p.producer_id,
                                producer_epoch: p.producer_epoch,
                                last_sequence: p.last_sequence,
                                last_timestamp: p.last_timestamp,
                                coordinator_epoch: p.coordinator_epoch,
                                current_txn_start_offset: (p.current_txn_start_offset >= 0)
                                    .then_some(p.current_txn_start_offset),
                            })
                            .collect())
                    } else {
                        Err(ClientError::Kafka {
                            code: partition.error,
                            context: tp.to_string(),
                            message: partition.error_message,
                        })
                    };
                    answers.insert(tp, answer);
                }
            }
        }
        Ok((partitions.iter())
            .map(|tp| {
                let answer = answers.get(tp).cloned().unwrap_or_else(|| {
                    Err(ClientError::Protocol(format!(
                        "no DescribeProducers answer for {tp}"
                    )))
                });
                (tp.clone(), answer)
            })
            .collect())
    }

    /// Where `transactional_id`'s transaction coordinator is.
    pub async fn find_transaction_coordinator(
        &self,
        transactional_id: &str,
    ) -> Result<CoordinatorInfo, ClientError> {
        find_txn_coordinator(self.cluster(), transactional_id).await
    }
}

/// Asks any broker where `transactional_id`'s coordinator is (FindCoordinator key type 1).
async fn find_txn_coordinator<R: Runtime>(
    cluster: &Cluster<R>,
    transactional_id: &str,
) -> Result<CoordinatorInfo, ClientError> {
    let request = ApiRequest::FindCoordinator(FindCoordinatorRequest {
        key_type: coordinator_type::TRANSACTION,
        keys: vec![transactional_id.to_owned()],
    });
    let response = match cluster.request_any(&request).await? {
        ApiResponse::FindCoordinator(response) => response,
        other => return Err(unexpected("FindCoordinator", &other)),
    };
    let Some(found) = response.coordinators.into_iter().next() else {
        return Err(ClientError::Protocol(
            "empty FindCoordinator response".into(),
        ));
    };
    if !found.error.is_ok() {
        return Err(ClientError::Kafka {
            code: found.error,
            context: format!("transactional id {transactional_id}"),
            message: found.error_message,
        });
    }
    Ok(CoordinatorInfo {
        node_id: found.node_id,
        host: found.host,
        port: found.port,
    })
}

/// Sends `request` to `transactional_id`'s coordinator, looking it up again (after a
/// backoff) while it is loading, moving or unreachable, up to `COORDINATOR_ATTEMPTS_MAX`.
async fn request_txn_coordinator<R: Runtime>(
    cluster: &Cluster<R>,
    transactional_id: &str,
    request: &ApiRequest,
) -> Result<(CoordinatorInfo, ApiResponse), ClientError> {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let result = async {
            let coordinator = find_txn_coordinator(cluster, transactional_id).await?;
            let connection = cluster.connection_at(&coordinator.address()).await?;
            let response = connection
                .request(request, cluster.config().request_timeout)
                .await?;
            Ok((coordinator, response))
        }
        .await;
        match result {
            Err(error) if attempt < COORDINATOR_ATTEMPTS_MAX && is_coordinator_error(&error) => {
                let runtime = cluster.runtime();
                let delay = (cluster.config().retry_backoff).max(Duration::from_millis(10));
                runtime
                    .sleep_until(runtime.now().saturating_add(delay))
                    .await;
            }
            other => return other,
        }
    }
}
