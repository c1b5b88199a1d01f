//! The admin client's consumer-group operations: list, describe, committed offsets, offset
//! changes (Kafka's AlterConsumerGroupOffsets), delete, and FindCoordinator.
//!
//! Every group operation goes to the group's coordinator, except ListGroups which asks
//! every broker (each lists the groups it coordinates). Offset changes are commits from
//! outside the group (generation -1, empty member id): the broker accepts them only while the
//! group has no members and answers as Kafka does otherwise, which callers see as an error.

use std::collections::BTreeMap;

use weir_runtime::Runtime;
use weir_wire::domain::{
    ApiRequest, ApiResponse, DeleteGroupsRequest, DescribeGroupsRequest, ListGroupsRequest,
    OffsetCommitPartition, OffsetCommitRequest, OffsetCommitTopic, OffsetFetchGroup,
    OffsetFetchRequest,
};

use crate::admin::Admin;
use crate::driver::cluster::{unexpected, Cluster};
use crate::driver::coordinator::{find_coordinator, request_coordinator, CoordinatorInfo};
use crate::error::ClientError;
use crate::session::group::{decode_assignment, decode_subscription, CONSUMER_PROTOCOL_TYPE};
use crate::TopicPartition;

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// "consumer" for Kafka consumers, "" for a group with only offsets.
    pub protocol_type: String,
    /// State name (Empty, Stable, PreparingRebalance, CompletingRebalance, Dead), "" when the
    /// broker does not report states (ListGroups v0-3).
    pub state: String,
}

/// A member as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static membership id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host (Kafka spells it `/IP`).
    pub client_host: String,
    /// Subscribed topics (consumer protocol only; empty otherwise or while rebalancing).
    pub subscription: Vec<String>,
    /// Assigned partitions (consumer protocol only; empty otherwise or while rebalancing).
    pub assignment: Vec<TopicPartition>,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// State name; "Dead" for a group the coordinator does not know.
    pub state: String,
    /// Protocol type ("consumer").
    pub protocol_type: String,
    /// Chosen assignor ("range"), "" unless Stable.
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberDescription>,
    /// The coordinator's node id.
    pub coordinator: i32,
}

/// Per-group results of a batch operation.
pub type GroupResults = Vec<(String, Result<(), ClientError>)>;

impl<R: Runtime> Admin<R> {
    /// Where `group_id`'s coordinator is.
    pub async fn find_coordinator(&self, group_id: &str) -> Result<CoordinatorInfo, ClientError> {
        find_coordinator(self.cluster(), group_id).await
    }

    /// Every group of every broker, sorted by id.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>, ClientError> {
        let cluster = self.cluster();
        let request = ApiRequest::ListGroups(ListGroupsRequest::default());
        let metadata = cluster.refresh_metadata(Some(&[]), false).await?;
        let nodes: Vec<i32> = metadata.brokers().map(|b| b.node_id).collect();
        let mut groups = BTreeMap::new();
        for node in nodes {
            let response = match cluster.request_node(node, &request).await? {
                ApiResponse::ListGroups(response) => response,
                other => return Err(unexpected("ListGroups", &other)),
            };
            if !response.error.is_ok() {
                return Err(ClientError::kafka(
                    response.error,
                    format!("ListGroups on {node}"),
                ));
            }
            for group in response.groups {
                let listing = GroupListing {
                    group_id: group.group_id.clone(),
                    protocol_type: group.protocol_type,
                    state: group.group_state,
                };
                groups.insert(group.group_id, listing);
            }
        }
        Ok(groups.into_values().collect())
    }

    /// Describes one group; members' subscriptions and assignments are decoded for
    /// consumer-protocol groups.
    pub async fn describe_group(&self, group_id: &str) -> Result<GroupDescription, ClientError> {
        let coordinator = self.find_coordinator(group_id).await?;
        let request = ApiRequest::DescribeGroups(DescribeGroupsRequest {
            groups: vec![group_id.to_owned()],
            include_authorized_operations: false,
        });
        let response = match request_coordinator(self.cluster(), group_id, &request).await? {
            ApiResponse::DescribeGroups(response) => response,
            other => return Err(unexpected("DescribeGroups", &other)),
        };
        let Some(group) = response.groups.into_iter().next() else {
            return Err(ClientError::Protocol(
                "empty DescribeGroups response".into(),
            ));
        };
        if !group.error.is_ok() {
            return Err(ClientError::kafka(group.error, format!("group {group_id}")));
        }
        let consumer = group.protocol_type == CONSUMER_PROTOCOL_TYPE;
        let members = group
            .members
            .into_iter()
            .map(|member| {
                let (subscription, assignment) = if consumer {
                    let subscription = decode_subscription(&member.member_metadata)
                        .map(|s| s.topics)
                        .unwrap_or_default();
                    let assignment = decode_assignment(&member.member_assignment)
                        .unwrap_or_default()
                        .into_iter()
                        .flat_map(|(topic, partitions)| {
                            partitions
                                .into_iter()
                                .map(move |p| TopicPartition::new(topic.clone(), p))
                        })
                        .collect();
                    (subscription, assignment)
                } else {
                    (Vec::new(), Vec::new())
                };
                MemberDescription {
                    member_id: member.member_id,
                    group_instance_id: member.group_instance_id,
                    client_id: member.client_id,
                    client_host: member.client_host,
                    subscription,
                    assignment,
                }
            })
            .collect();
        Ok(GroupDescription {
            group_id: group.group_id,
            state: group.group_state,
            protocol_type: group.protocol_type,
            protocol: group.protocol_data,
            members,
            coordinator: coordinator.node_id,
        })
    }

    /// Committed offsets of a group (all partitions when `partitions` is `None`); partitions
    /// without a committed offset are left out.
    pub async fn list_group_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, i64>, ClientError> {
        let topics = partitions.map(|partitions| {
            let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for tp in partitions {
                by_topic
                    .entry(tp.topic.clone())
                    .or_default()
                    .push(tp.partition);
            }
            by_topic.into_iter().collect()
        });
        fetch_committed(self.cluster(), group_id, topics).await
    }

    /// Sets committed offsets from outside the group (Kafka's AlterConsumerGroupOffsets):
    /// only allowed while the group has no members. Fails with the first partition error.
    pub async fn alter_group_offsets(
        &self,
        group_id: &str,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<(), ClientError> {
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
            group_id: group_id.to_owned(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            retention_time_ms: -1,
            topics: by_topic
                .into_iter()
                .map(|(name, partitions)| OffsetCommitTopic { name, partitions })
                .collect(),
        });
        let response = match request_coordinator(self.cluster(), group_id, &request).await? {
            ApiResponse::OffsetCommit(response) => response,
            other => return Err(unexpected("OffsetCommit", &other)),
        };
        for topic in response.topics {
            for (partition, error) in topic.partitions {
                if !error.is_ok() {
                    let context = format!("group {group_id} {}-{partition}", topic.name);
                    return Err(ClientError::kafka(error, context));
                }
            }
        }
        Ok(())
    }

    /// Deletes groups (only empty ones; Kafka answers NON_EMPTY_GROUP otherwise).
    pub async fn delete_groups(&self, group_ids: Vec<String>) -> Result<GroupResults, ClientError> {
        let mut results = Vec::with_capacity(group_ids.len());
        // One request per group: each group may have its own coordinator.
        for group_id in group_ids {
            let request = ApiRequest::DeleteGroups(DeleteGroupsRequest {
                groups: vec![group_id.clone()],
            });
            let response = match request_coordinator(self.cluster(), &group_id, &request).await? {
                ApiResponse::DeleteGroups(response) => response,
                other => return Err(unexpected("DeleteGroups", &other)),
            };
            let error = response
                .results
                .into_iter()
                .find(|(id, _)| *id == group_id)
                .map(|(_, error)| error);
            let result = match error {
                Some(error) if error.is_ok() => Ok(()),
                Some(error) => Err(ClientError::kafka(error, format!("group {group_id}"))),
                None => Err(ClientError::Protocol(format!(
                    "no result for group {group_id}"
                ))),
            };
            results.push((group_id, result));
        }
        Ok(results)
    }
}

/// OffsetFetch for one group; shared with the consumer.
pub(crate) async fn fetch_committed<R: Runtime>(
    cluster: &Cluster<R>,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<BTreeMap<TopicPartition, i64>, ClientError> {
    let request = ApiRequest::OffsetFetch(OffsetFetchRequest {
        groups: vec![OffsetFetchGroup {
            group_id: group_id.to_owned(),
            topics,
        }],
        require_stable: false,
    });
    let response = match request_coordinator(cluster, group_id, &request).await? {
        ApiResponse::OffsetFetch(response) => response,
        other => return Err(unexpected("OffsetFetch", &other)),
    };
    let Some(group) = response.groups.into_iter().next() else {
        return Err(ClientError::Protocol("empty OffsetFetch response".into()));
    };
    if !group.error.is_ok() {
        return Err(ClientError::kafka(group.error, format!("group {group_id}")));
    }
    let mut committed = BTreeMap::new();
    for topic in group.topics {
        for partition in topic.partitions {
            if !partition.error.is_ok() {
                let context = format!("group {group_id} {}-{}", topic.name, partition.partition);
                return Err(ClientError::kafka(partition.error, context));
            }
            if partition.committed_offset >= 0 {
                let tp = TopicPartition::new(topic.name.clone(), partition.partition);
                committed.insert(tp, partition.committed_offset);
            }
        }
    }
    Ok(committed)
}
