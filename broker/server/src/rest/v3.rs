//! API v3 administration: clusters, brokers, topics, partitions, replicas and
//! reassignments, topic configs, consumer groups with their consumers, assignments and
//! lags, in Confluent's JSON shapes (`kind`, `metadata.self`, `related` links), each
//! answered from the broker's own Metadata, CreateTopics, DeleteTopics, DescribeConfigs,
//! IncrementalAlterConfigs, ListPartitionReassignments, ListGroups, DescribeGroups,
//! ConsumerGroupDescribe, OffsetFetch and ListOffsets paths.
//!
//! Invariants: the cluster id in every path is the one `GET /v3/clusters` returns (the
//! Metadata answer's); any other answers 404. Every link an answer carries is a route of
//! this proxy (a link to something that may not exist, such as a lag without a committed
//! offset, is `null` instead); the one that can answer 404 is a partition's
//! `reassignment` while it is not being moved, as in Confluent's proxy.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use weir_edge::{Isolation, StartFrom};
use weir_runtime::Runtime;
use weir_wire::domain::cluster::{
    config_operation, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResource,
    IncrementalAlterableConfig, ListPartitionReassignmentsRequest, ListPartitionReassignmentsTopic,
};
use weir_wire::domain::{
    config_source, resource_type, ApiRequest, ApiResponse, ConsumerGroupDescribeRequest,
    CreatableTopic, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    DescribeConfigsResource, DescribeGroupsRequest, ListGroupsRequest, MetadataResponse,
    MetadataTopic, OffsetFetchGroup, OffsetFetchRequest, TopicRef,
};
use weir_wire::error::ErrorCode;

use super::error::RestError;
use super::{unexpected, Rest};
use crate::gateway::route::Dest;
use crate::storage::StorageDriver;

/// How long admin requests may take at the controller.
const ADMIN_TIMEOUT_MS: i32 = 30_000;

/// `GET /`: Confluent answers an empty object.
pub async fn root() -> Json<Value> {
    Json(json!({}))
}

/// A list resource.
fn list(kind: &str, self_url: String, data: Vec<Value>) -> Json<Value> {
    Json(json!({
        "kind": kind,
        "metadata": {"self": self_url, "next": null},
        "data": data,
    }))
}

fn related(url: String) -> Value {
    json!({ "related": url })
}

/// The cluster's id and this node's metadata, checking the path's cluster id.
async fn cluster<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    cluster_id: Option<&str>,
    topics: Option<Vec<String>>,
) -> Result<(String, MetadataResponse), RestError> {
    let metadata = state.metadata(topics).await?;
    let id = metadata.cluster_id.clone().unwrap_or_default();
    if let Some(asked) = cluster_id {
        if asked != id {
            return Err(RestError::status(
                StatusCode::NOT_FOUND,
                format!("Cluster {asked} not found."),
            ));
        }
    }
    Ok((id, metadata))
}

fn cluster_json(base: &str, id: &str, metadata: &MetadataResponse) -> Value {
    let url = format!("{base}/v3/clusters/{id}");
    json!({
        "kind": "KafkaCluster",
        "metadata": {"self": url, "resource_name": format!("crn:///kafka={id}")},
        "cluster_id": id,
        "controller": related(format!("{url}/brokers/{}", metadata.controller_id)),
        "acls": related(format!("{url}/acls")),
        "brokers": related(format!("{url}/brokers")),
        "broker_configs": related(format!("{url}/broker-configs")),
        "consumer_groups": related(format!("{url}/consumer-groups")),
        "topics": related(format!("{url}/topics")),
        "partition_reassignments": related(format!("{url}/topics/-/partitions/-/reassignment")),
    })
}

/// `GET /v3/clusters`.
pub async fn list_clusters<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
) -> Result<Json<Value>, RestError> {
    let base = state.base.clone();
    let (id, metadata) = cluster(&state, None, Some(Vec::new())).await?;
    let data = vec![cluster_json(&base, &id, &metadata)];
    Ok(list(
        "KafkaClusterList",
        format!("{base}/v3/clusters"),
        data,
    ))
}

/// `GET /v3/clusters/{cluster_id}`.
pub async fn get_cluster<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path(cluster_id): Path<String>,
) -> Result<Json<Value>, RestError> {
    let (id, metadata) = cluster(&state, Some(&cluster_id), Some(Vec::new())).await?;
    Ok(Json(cluster_json(&state.base.clone(), &id, &metadata)))
}

fn broker_json(base: &str, id: &str, broker: &weir_wire::domain::BrokerInfo) -> Value {
    let url = format!("{base}/v3/clusters/{id}/brokers/{}", broker.node_id);
    json!({
        "kind": "KafkaBroker",
        "metadata": {
            "self": url,
            "resource_name": format!("crn:///kafka={id}/broker={}", broker.node_id),
        },
        "cluster_id": id,
        "broker_id": broker.node_id,
        "host": broker.host,
        "port": broker.port,
        "rack": broker.rack,
        "configs": related(format!("{url}/configs")),
        "partition_replicas": related(format!("{url}/partition-replicas")),
    })
}

/// `GET /v3/clusters/{cluster_id}/brokers`.
pub async fn list_brokers<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path(cluster_id): Path<String>,
) -> Result<Json<Value>, RestError> {
    let base = state.base.clone();
    let (id, metadata) = cluster(&state, Some(&cluster_id), Some(Vec::new())).await?;
    let mut brokers = metadata.brokers.clone();
    brokers.sort_by_key(|b| b.node_id);
    let data = brokers.iter().map(|b| broker_json(&base, &id, b)).collect();
    let url = format!("{base}/v3/clusters/{id}/brokers");
    Ok(list("KafkaBrokerList", url, data))
}

/// `GET /v3/clusters/{cluster_id}/brokers/{broker_id}`.
pub async fn get_broker<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, broker_id)): Path<(String, String)>,
) -> Result<Json<Value>, RestError> {
    let (id, metadata) = cluster(&state, Some(&cluster_id), Some(Vec::new())).await?;
    let found = broker_id
        .parse::<i32>()
        .ok()
        .and_then(|node| metadata.brokers.iter().find(|b| b.node_id == node));
    let Some(broker) = found else {
        let message = format!("Broker {broker_id} not found.");
        return Err(RestError::status(StatusCode::NOT_FOUND, message));
    };
    Ok(Json(broker_json(&state.base.clone(), &id, broker)))
}

fn topic_json(base: &str, id: &str, topic: &MetadataTopic) -> Value {
    let name = topic.name.clone().unwrap_or_default();
    let url = format!("{base}/v3/clusters/{id}/topics/{name}");
    let replication_factor = topic
        .partitions
        .first()
        .map_or(0, |p| p.replica_nodes.len());
    json!({
        "kind": "KafkaTopic",
        "metadata": {
            "self": url,
            "resource_name": format!("crn:///kafka={id}/topic={name}"),
        },
        "cluster_id": id,
        "topic_name": name,
        "topic_id": topic.topic_id.to_string(),
        "is_internal": topic.is_internal,
        "replication_factor": replication_factor,
        "partitions_count": topic.partitions.len(),
        "partitions": related(format!("{url}/partitions")),
        "configs": related(format!("{url}/configs")),
        "partition_reassignments": related(format!("{url}/partitions/-/reassignment")),
        "authorized_operations": [],
    })
}

/// One topic's metadata, or 404 40401.
async fn topic_metadata<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    cluster_id: &str,
    topic: &str,
) -> Result<(String, MetadataTopic), RestError> {
    let (id, metadata) = cluster(state, Some(cluster_id), Some(vec![topic.to_owned()])).await?;
    let found = metadata
        .topics
        .into_iter()
        .find(|t| t.name.as_deref() == Some(topic));
    match found {
        Some(found) if found.error == ErrorCode::NONE => Ok((id, found)),
        Some(found) if found.error != ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => {
            Err(RestError::kafka(found.error, format!("topic {topic}")))
        }
        _ => Err(RestError::topic_not_found(topic)),
    }
}

/// `GET /v3/clusters/{cluster_id}/topics`.
pub async fn list_topics<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path(cluster_id): Path<String>,
) -> Result<Json<Value>, RestError> {
    let base = state.base.clone();
    let (id, metadata) = cluster(&state, Some(&cluster_id), None).await?;
    let mut topics: Vec<&MetadataTopic> = metadata
        .topics
        .iter()
        .filter(|t| t.error == ErrorCode::NONE && t.name.is_some())
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let data = topics.iter().map(|t| topic_json(&base, &id, t)).collect();
    Ok(list(
        "KafkaTopicList",
        format!("{base}/v3/clusters/{id}/topics"),
        data,
    ))
}

/// `GET /v3/clusters/{cluster_id}/topics/{topic}`.
pub async fn get_topic<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, topic)): Path<(String, String)>,
) -> Result<Json<Value>, RestError> {
    let (id, found) = topic_metadata(&state, &cluster_id, &topic).await?;
    Ok(Json(topic_json(&state.base.clone(), &id, &found)))
}

/// A `{"name": ..., "value": ...}` config of a request body.
#[derive(Debug, Deserialize)]
struct ConfigEntry {
    name: String,
    value: Option<String>,
    #[serde(default)]
    operation: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CreateTopicBody {
    topic_name: String,
    #[serde(default)]
    partitions_count: Option<i32>,
    #[serde(default)]
    replication_factor: Option<i16>,
    #[serde(default)]
    configs: Vec<ConfigEntry>,
    #[serde(default)]
    validate_only: bool,
}

/// Parse a JSON body (any content type Confluent's clients send for JSON), or 400.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, RestError> {
    serde_json::from_slice(body)
        .map_err(|error| RestError::bad_request(format!("invalid JSON body: {error}")))
}

/// `POST /v3/clusters/{cluster_id}/topics`.
pub async fn create_topic<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path(cluster_id): Path<String>,
    body: Bytes,
) -> Result<Response, RestError> {
    let body: CreateTopicBody = json_body(&body)?;
    cluster(&state, Some(&cluster_id), Some(Vec::new())).await?;
    let request = ApiRequest::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: body.topic_name.clone(),
            num_partitions: body.partitions_count.unwrap_or(-1),
            replication_factor: body.replication_factor.unwrap_or(-1),
            assignments: Vec::new(),
            configs: body
                .configs
                .into_iter()
                .map(|c| (c.name, c.value))
                .collect(),
        }],
        timeout_ms: ADMIN_TIMEOUT_MS,
        validate_only: body.validate_only,
    });
    let ApiResponse::CreateTopics(answer) = state.admin(request).await? else {
        return Err(unexpected("CreateTopics"));
    };
    let result = answer
        .topics
        .into_iter()
        .find(|t| t.name == body.topic_name)
        .ok_or_else(|| unexpected("CreateTopics (topic missing)"))?;
    if result.error == ErrorCode::TOPIC_ALREADY_EXISTS {
        let message = format!("Topic '{}' already exists.", body.topic_name);
        return Err(RestError::new(StatusCode::BAD_REQUEST, 40002, message));
    }
    if result.error != ErrorCode::NONE {
        let message = result.error_message.unwrap_or_default();
        return Err(RestError::kafka(result.error, message));
    }
    let id = cluster_id;
    let base = state.base.clone();
    let url = format!("{base}/v3/clusters/{id}/topics/{}", body.topic_name);
    let topic = json!({
        "kind": "KafkaTopic",
        "metadata": {
            "self": url,
            "resource_name": format!("crn:///kafka={id}/topic={}", body.topic_name),
        },
        "cluster_id": id,
        "topic_name": body.topic_name,
        "topic_id": result.topic_id.to_string(),
        "is_internal": false,
        "replication_factor": result.replication_factor,
        "partitions_count": result.num_partitions,
        "partitions": related(format!("{url}/partitions")),
        "configs": related(format!("{url}/configs")),
        "partition_reassignments": related(format!("{url}/partitions/-/reassignment")),
        "authorized_operations": [],
    });
    Ok((StatusCode::CREATED, Json(topic)).into_response())
}

/// `DELETE /v3/clusters/{cluster_id}/topics/{topic}`.
pub async fn delete_topic<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, topic)): Path<(String, String)>,
) -> Result<StatusCode, RestError> {
    topic_metadata(&state, &cluster_id, &topic).await?;
    let request = ApiRequest::DeleteTopics(DeleteTopicsRequest {
        topics: vec![TopicRef::Name(topic.clone())],
        timeout_ms: ADMIN_TIMEOUT_MS,
    });
    let ApiResponse::DeleteTopics(answer) = state.admin(request).await? else {
        return Err(unexpected("DeleteTopics"));
    };
    for result in answer.responses {
        if result.error == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION {
            return Err(RestError::topic_not_found(&topic));
        }
        if result.error != ErrorCode::NONE {
            let message = result.error_message.unwrap_or_default();
            return Err(RestError::kafka(result.error, message));
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

fn partition_json(
    base: &str,
    id: &str,
    topic: &str,
    partition: &weir_wire::domain::MetadataPartition,
) -> Value {
    let url = format!(
        "{base}/v3/clusters/{id}/topics/{topic}/partitions/{}",
        partition.partition
    );
    json!({
        "kind": "KafkaPartition",
        "metadata": {
            "self": url,
            "resource_name": format!(
                "crn:///kafka={id}/topic={topic}/partition={}", partition.partition
            ),
        },
        "cluster_id": id,
        "topic_name": topic,
        "partition_id": partition.partition,
        "leader": related(format!("{url}/replicas/{}", partition.leader_id)),
        "replicas": related(format!("{url}/replicas")),
        "reassignment": related(format!("{url}/reassignment")),
    })
}

/// `GET .../topics/{topic}/partitions`.
pub async fn list_partitions<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, topic)): Path<(String, String)>,
) -> Result<Json<Value>, RestError> {
    let base = state.base.clone();
    let (id, found) = topic_metadata(&state, &cluster_id, &topic).await?;
    let mut partitions = found.partitions.clone();
    partitions.sort_by_key(|p| p.partition);
    let data = partitions
        .iter()
        .map(|p| partition_json(&base, &id, &topic, p))
        .collect();
    let url = format!("{base}/v3/clusters/{id}/topics/{topic}/partitions");
    Ok(list("KafkaPartitionList", url, data))
}

async fn partition_metadata<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    cluster_id: &str,
    topic: &str,
    partition: &str,
) -> Result<(String, weir_wire::domain::MetadataPartition), RestError> {
    let (id, found) = topic_metadata(state, cluster_id, topic).await?;
    let index = partition.parse::<i32>().ok();
    let found = found
        .partitions
        .into_iter()
        .find(|p| Some(p.partition) == index);
    match found {
        Some(found) => Ok((id, found)),
        None => Err(RestError::partition_not_found(topic, index.unwrap_or(-1))),
    }
}

/// `GET .../topics/{topic}/partitions/{partition}`.
pub async fn get_partition<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, topic, partition)): Path<(String, String, String)>,
) -> Result<Json<Value>, RestError> {
    let (id, found) = partition_metadata(&state, &cluster_id, &topic, &partition).await?;
    Ok(Json(partition_json(
        &state.base.clone(),
        &id,
        &topic,
        &found,
    )))
}

fn replica_json(
    base: &str,
    id: &str,
    topic: &str,
    partition: &weir_wire::domain::MetadataPartition,
    broker: i32,
) -> Value {
    let index = partition.partition;
    let url = format!("{base}/v3/clusters/{id}/topics/{topic}/partitions/{index}/replicas");
    json!({
        "kind": "KafkaReplica",
        "metadata": {
            "self": format!("{url}/{broker}"),
            "resource_name": format!(
                "crn:///kafka={id}/topic={topic}/partition={index}/replica={broker}"
            ),
        },
        "cluster_id": id,
        "topic_name": topic,
        "partition_id": index,
        "broker_id": broker,
        "is_leader": broker == partition.leader_id,
        "is_in_sync": partition.isr_nodes.contains(&broker),
        "broker": related(format!("{base}/v3/clusters/{id}/brokers/{broker}")),
    })
}

/// `GET .../topics/{topic}/partitions/{partition}/replicas`: leader and ISR flags.
pub async fn list_replicas<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, topic, partition)): Path<(String, String, String)>,
) -> Result<Json<Value>, RestError> {
    let base = state.base.clone();
    let (id, found) = partition_metadata(&state, &cluster_id, &topic, &partition).await?;
    let index = found.partition;
    let url = format!("{base}/v3/clusters/{id}/topics/{topic}/partitions/{index}/replicas");
    let data = (found.replica_nodes.iter())
        .map(|broker| replica_json(&base, &id, &topic, &found, *broker))
        .collect();
    Ok(list("KafkaReplicaList", url, data))
}

/// `GET .../topics/{topic}/partitions/{partition}/replicas/{broker_id}`: one replica, or
/// 404 when that broker holds none of the partition.
pub async fn get_replica<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, topic, partition, broker)): Path<(String, String, String, String)>,
) -> Result<Json<Value>, RestError> {
    let (id, found) = partition_metadata(&state, &cluster_id, &topic, &partition).await?;
    let node = broker.parse::<i32>().ok();
    match node.filter(|node| found.replica_nodes.contains(node)) {
        Some(node) => Ok(Json(replica_json(&state.base, &id, &topic, &found, node))),
        None => Err(RestError::status(
            StatusCode::NOT_FOUND,
            format!(
                "Replica {broker} of partition {} of topic {topic} not found.",
                found.partition
            ),
        )),
    }
}

/// `GET .../brokers/{broker_id}/partition-replicas`: every replica the broker holds, of
/// every topic the caller may describe.
pub async fn list_broker_replicas<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, broker)): Path<(String, String)>,
) -> Result<Json<Value>, RestError> {
    let base = state.base.clone();
    let (id, node) = broker_owner(&state, &cluster_id, &broker).await?;
    let (_, metadata) = cluster(&state, Some(&cluster_id), None).await?;
    let mut topics: Vec<&MetadataTopic> = (metadata.topics.iter())
        .filter(|t| t.error == ErrorCode::NONE && t.name.is_some())
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let mut data = Vec::new();
    for topic in topics {
        let name = topic.name.clone().unwrap_or_default();
        let mut partitions: Vec<_> = topic.partitions.iter().collect();
        partitions.sort_by_key(|p| p.partition);
        for partition in partitions {
            if partition.replica_nodes.contains(&node) {
                data.push(replica_json(&base, &id, &name, partition, node));
            }
        }
    }
    let url = format!("{base}/v3/clusters/{id}/brokers/{node}/partition-replicas");
    Ok(list("KafkaReplicaList", url, data))
}

/// `GET /v3/clusters/{cluster_id}/broker-configs`: the cluster-wide dynamic broker
/// configs. Weir's broker configuration is static (each broker's file), so there are none.
pub async fn list_cluster_configs<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path(cluster_id): Path<String>,
) -> Result<Json<Value>, RestError> {
    let (id, _) = cluster(&state, Some(&cluster_id), Some(Vec::new())).await?;
    let url = format!("{}/v3/clusters/{id}/broker-configs", state.base);
    Ok(list("KafkaClusterConfigList", url, Vec::new()))
}

/// `GET .../topics/{topic}/partitions/{partition}/reassignment`, where `-` means every
/// topic or partition: the reassignments in progress (ListPartitionReassignments). The
/// list forms (`partitions/-`) answer a `KafkaReassignmentList`; one partition answers its
/// `KafkaReassignment`, or 404 when it is not being moved (as Confluent's proxy does).
pub async fn reassignments<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, topic, partition)): Path<(String, String, String)>,
) -> Result<Json<Value>, RestError> {
    let base = state.base.clone();
    let (id, _) = cluster(&state, Some(&cluster_id), Some(Vec::new())).await?;
    let one = if partition == "-" {
        None
    } else {
        Some(
            partition_metadata(&state, &cluster_id, &topic, &partition)
                .await?
                .1
                .partition,
        )
    };
    let topics = if topic == "-" {
        None
    } else {
        // Kafka lists a topic's partitions by index: without one, all of the topic's.
        let partitions = match one {
            Some(index) => vec![index],
            None => (topic_metadata(&state, &cluster_id, &topic)
                .await?
                .1
                .partitions)
                .iter()
                .map(|p| p.partition)
                .collect(),
        };
        Some(vec![ListPartitionReassignmentsTopic {
            name: topic.clone(),
            partitions,
        }])
    };
    let request = ApiRequest::ListPartitionReassignments(ListPartitionReassignmentsRequest {
        timeout_ms: ADMIN_TIMEOUT_MS,
        topics,
    });
    let ApiResponse::ListPartitionReassignments(answer) = state.admin(request).await? else {
        return Err(unexpected("ListPartitionReassignments"));
    };
    if answer.error != ErrorCode::NONE {
        let message = answer.error_message.unwrap_or_default();
        return Err(RestError::kafka(answer.error, message));
    }
    let mut data = Vec::new();
    for moving in &answer.topics {
        for p in &moving.partitions {
            let url = format!(
                "{base}/v3/clusters/{id}/topics/{}/partitions/{}",
                moving.name, p.partition
            );
            data.push(json!({
                "kind": "KafkaReassignment",
                "metadata": {
                    "self": format!("{url}/reassignment"),
                    "resource_name": format!(
                        "crn:///kafka={id}/topic={}/partition={}", moving.name, p.partition
                    ),
                },
                "cluster_id": id,
                "topic_name": moving.name,
                "partition_id": p.partition,
                "adding_replicas": p.adding_replicas,
                "removing_replicas": p.removing_replicas,
                "replicas": related(format!("{url}/replicas")),
            }));
        }
    }
    if let Some(index) = one {
        return match data.into_iter().next() {
            Some(found) => Ok(Json(found)),
            None => Err(RestError::status(
                StatusCode::NOT_FOUND,
                format!("No reassignment of partition {index} of topic {topic} is in progress."),
            )),
        };
    }
    let url = format!("{base}/v3/clusters/{id}/topics/{topic}/partitions/-/reassignment");
    Ok(list("KafkaReassignmentList", url, data))
}

/// Whose configs: a topic (asked of this broker) or a broker (asked of that broker: each
/// broker describes its own configuration).
#[derive(Clone, Copy)]
enum ConfigOwner<'a> {
    Topic(&'a str),
    Broker(i32),
}

impl ConfigOwner<'_> {
    fn resource(self) -> (i8, String) {
        match self {
            ConfigOwner::Topic(topic) => (resource_type::TOPIC, topic.to_owned()),
            ConfigOwner::Broker(node) => (resource_type::BROKER, node.to_string()),
        }
    }

    /// A resource-level error of DescribeConfigs or IncrementalAlterConfigs as the proxy
    /// answers it (an unknown topic is Confluent's 404 40401).
    fn error(self, error: ErrorCode, message: Option<String>) -> RestError {
        match self {
            ConfigOwner::Topic(topic) if error == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => {
                RestError::topic_not_found(topic)
            }
            _ => RestError::kafka(error, message.unwrap_or_default()),
        }
    }
}

/// The owner's config entries (DescribeConfigs), all or the named ones.
async fn describe_configs<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    owner: ConfigOwner<'_>,
    keys: Option<Vec<String>>,
) -> Result<Vec<weir_wire::domain::DescribeConfigsEntry>, RestError> {
    let (resource_type, resource_name) = owner.resource();
    let request = ApiRequest::DescribeConfigs(DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type,
            resource_name,
            configuration_keys: keys,
        }],
        include_synonyms: false,
        include_documentation: false,
    });
    let answer = match owner {
        ConfigOwner::Broker(node) if node != state.node_id() => {
            let lane = crate::gateway::route::Lane::Control;
            (state.router())
                .call(Dest::Remote(node), lane, request)
                .await?
        }
        _ => state.admin(request).await?,
    };
    let ApiResponse::DescribeConfigs(answer) = answer else {
        return Err(unexpected("DescribeConfigs"));
    };
    let result = (answer.results.into_iter().next())
        .ok_or_else(|| unexpected("DescribeConfigs (resource missing)"))?;
    if result.error != ErrorCode::NONE {
        return Err(owner.error(result.error, result.error_message));
    }
    Ok(result.configs)
}

fn source_name(source: i8) -> &'static str {
    match source {
        config_source::DYNAMIC_TOPIC_CONFIG => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        config_source::STATIC_BROKER_CONFIG => "STATIC_BROKER_CONFIG",
        config_source::DEFAULT_CONFIG => "DEFAULT_CONFIG",
        _ => "UNKNOWN",
    }
}

fn config_json(
    base: &str,
    id: &str,
    owner: ConfigOwner<'_>,
    entry: &weir_wire::domain::DescribeConfigsEntry,
) -> Value {
    let (kind, path, key, owner_name) = match owner {
        ConfigOwner::Topic(topic) => ("KafkaTopicConfig", "topics", "topic", topic.to_owned()),
        ConfigOwner::Broker(node) => ("KafkaBrokerConfig", "brokers", "broker", node.to_string()),
    };
    let mut object = json!({
        "kind": kind,
        "metadata": {
            "self": format!("{base}/v3/clusters/{id}/{path}/{owner_name}/configs/{}", entry.name),
            "resource_name": format!("crn:///kafka={id}/{key}={owner_name}/config={}", entry.name),
        },
        "cluster_id": id,
        "name": entry.name,
        "value": if entry.is_sensitive { None } else { entry.value.clone() },
        "is_read_only": entry.read_only,
        "is_sensitive": entry.is_sensitive,
        "is_default": entry.config_source == config_source::DEFAULT_CONFIG,
        "source": source_name(entry.config_source),
        "synonyms": [],
    });
    match owner {
        ConfigOwner::Topic(topic) => object["topic_name"] = json!(topic),
        ConfigOwner::Broker(node) => object["broker_id"] = json!(node),
    }
    object
}

/// The owner's configs as Confluent's list.
async fn list_configs<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    id: &str,
    owner: ConfigOwner<'_>,
) -> Result<Json<Value>, RestError> {
    let base = &state.base;
    let configs = describe_configs(state, owner, None).await?;
    let data = (configs.iter())
        .map(|c| config_json(base, id, owner, c))
        .collect();
    let (kind, url) = match owner {
        ConfigOwner::Topic(topic) => (
            "KafkaTopicConfigList",
            format!("{base}/v3/clusters/{id}/topics/{topic}/configs"),
        ),
        ConfigOwner::Broker(node) => (
            "KafkaBrokerConfigList",
            format!("{base}/v3/clusters/{id}/brokers/{node}/configs"),
        ),
    };
    Ok(list(kind, url, data))
}

/// One of the owner's configs, or 404.
async fn get_config<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    id: &str,
    owner: ConfigOwner<'_>,
    name: &str,
) -> Result<Json<Value>, RestError> {
    let configs = describe_configs(state, owner, Some(vec![name.to_owned()])).await?;
    match configs.iter().find(|c| c.name == name) {
        Some(entry) => Ok(Json(config_json(&state.base, id, owner, entry))),
        None => {
            let (what, of) = match owner {
                ConfigOwner::Topic(topic) => ("topic", topic.to_owned()),
                ConfigOwner::Broker(node) => ("broker", node.to_string()),
            };
            Err(RestError::status(
                StatusCode::NOT_FOUND,
                format!("Config {name} not found for {what} {of}."),
            ))
        }
    }
}

/// `GET .../topics/{topic}/configs`.
pub async fn list_topic_configs<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, topic)): Path<(String, String)>,
) -> Result<Json<Value>, RestError> {
    let (id, _) = cluster(&state, Some(&cluster_id), Some(Vec::new())).await?;
    list_configs(&state, &id, ConfigOwner::Topic(&topic)).await
}

/// `GET .../topics/{topic}/configs/{name}`.
pub async fn get_topic_config<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, topic, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, RestError> {
    let (id, _) = cluster(&state, Some(&cluster_id), Some(Vec::new())).await?;
    get_config(&state, &id, ConfigOwner::Topic(&topic), &name).await
}

/// Apply config changes to the owner with IncrementalAlterConfigs (on this broker, which
/// forwards them to the controller; a broker's configs are static, which it answers).
async fn alter_configs<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    owner: ConfigOwner<'_>,
    configs: Vec<IncrementalAlterableConfig>,
    validate_only: bool,
) -> Result<(), RestError> {
    let (resource_type, resource_name) = owner.resource();
    let request = ApiRequest::IncrementalAlterConfigs(IncrementalAlterConfigsRequest {
        resources: vec![IncrementalAlterConfigsResource {
            resource_type,
            resource_name,
            configs,
        }],
        validate_only,
    });
    let ApiResponse::IncrementalAlterConfigs(answer) = state.admin(request).await? else {
        return Err(unexpected("IncrementalAlterConfigs"));
    };
    for result in answer.results {
        if result.error != ErrorCode::NONE {
            return Err(owner.error(result.error, result.error_message));
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
struct ValueBody {
    value: Option<String>,
}

/// One config set (`PUT` with `{"value": ...}`) or reset to its default (`DELETE`).
async fn put_or_delete<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    owner: ConfigOwner<'_>,
    name: String,
    method: &axum::http::Method,
    body: &Bytes,
) -> Result<StatusCode, RestError> {
    let change = if *method == axum::http::Method::DELETE {
        IncrementalAlterableConfig {
            name,
            operation: config_operation::DELETE,
            value: None,
        }
    } else {
        let body: ValueBody = json_body(body)?;
        IncrementalAlterableConfig {
            name,
            operation: config_operation::SET,
            value: body.value,
        }
    };
    alter_configs(state, owner, vec![change], false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT .../topics/{topic}/configs/{name}` with `{"value": ...}`, or `DELETE` (back to
/// the default).
pub async fn put_topic_config<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    method: axum::http::Method,
    Path((cluster_id, topic, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<StatusCode, RestError> {
    cluster(&state, Some(&cluster_id), Some(Vec::new())).await?;
    put_or_delete(&state, ConfigOwner::Topic(&topic), name, &method, &body).await
}

#[derive(Debug, Deserialize)]
struct AlterBody {
    data: Vec<ConfigEntry>,
    #[serde(default)]
    validate_only: bool,
}

/// A `configs:alter` body (`{"data": [{"name", "value", "operation": "SET"|"DELETE"|
/// "APPEND"|"SUBTRACT"}]}`) applied in one IncrementalAlterConfigs.
async fn alter_batch<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    owner: ConfigOwner<'_>,
    body: &Bytes,
) -> Result<StatusCode, RestError> {
    let body: AlterBody = json_body(body)?;
    let mut changes = Vec::with_capacity(body.data.len());
    for entry in body.data {
        let operation = match entry.operation.as_deref().map(str::to_ascii_uppercase) {
            None => config_operation::SET,
            Some(op) if op == "SET" => config_operation::SET,
            Some(op) if op == "DELETE" => config_operation::DELETE,
            Some(op) if op == "APPEND" => config_operation::APPEND,
            Some(op) if op == "SUBTRACT" => config_operation::SUBTRACT,
            Some(op) => {
                return Err(RestError::bad_request(format!(
                    "unknown operation {op:?}: use SET, DELETE, APPEND or SUBTRACT"
                )))
            }
        };
        changes.push(IncrementalAlterableConfig {
            name: entry.name,
            operation,
            value: entry.value,
        });
    }
    alter_configs(state, owner, changes, body.validate_only).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST .../topics/{topic}/configs:alter`.
pub async fn alter_topic_configs<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, topic)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, RestError> {
    cluster(&state, Some(&cluster_id), Some(Vec::new())).await?;
    alter_batch(&state, ConfigOwner::Topic(&topic), &body).await
}

/// Every group of the cluster: ListGroups of each broker (each lists the groups it
/// coordinates).
async fn all_groups<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    metadata: &MetadataResponse,
) -> Result<Vec<weir_wire::domain::ListedGroup>, RestError> {
    let router = Arc::clone(state.router());
    let mut groups = BTreeMap::new();
    for broker in &metadata.brokers {
        let dest = if broker.node_id == state.node_id() || metadata.brokers.len() == 1 {
            Dest::Local
        } else {
            Dest::Remote(broker.node_id)
        };
        let request = ApiRequest::ListGroups(ListGroupsRequest::default());
        let lane = crate::gateway::route::Lane::Control;
        let answer = router.call(dest, lane, request).await?;
        let ApiResponse::ListGroups(answer) = answer else {
            return Err(unexpected("ListGroups"));
        };
        if answer.error != ErrorCode::NONE {
            return Err(RestError::kafka(answer.error, "listing groups"));
        }
        for group in answer.groups {
            groups.insert(group.group_id.clone(), group);
        }
    }
    Ok(groups.into_values().collect())
}

/// What a group looks like, whichever protocol it runs.
struct GroupView {
    state: String,
    is_simple: bool,
    partition_assignor: String,
    /// The group coordinator's node id.
    coordinator: i32,
    /// (member id, instance id, client id, host, assigned (topic, partition)s).
    members: Vec<MemberView>,
}

struct MemberView {
    member_id: String,
    instance_id: Option<String>,
    client_id: String,
    host: String,
    assignment: Vec<(String, i32)>,
}

/// Describe a group: ConsumerGroupDescribe for KIP-848 groups, else DescribeGroups.
async fn describe_group<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    group: &str,
) -> Result<GroupView, RestError> {
    let router = Arc::clone(state.router());
    let request = ApiRequest::ConsumerGroupDescribe(ConsumerGroupDescribeRequest {
        group_ids: vec![group.to_owned()],
        include_authorized_operations: false,
    });
    if let ApiResponse::ConsumerGroupDescribe(answer) = router.call_group(group, request).await? {
        if let Some(found) = answer
            .groups
            .into_iter()
            .find(|g| g.error == ErrorCode::NONE)
        {
            let members = found
                .members
                .into_iter()
                .map(|member| MemberView {
                    member_id: member.member_id,
                    instance_id: member.instance_id,
                    client_id: member.client_id,
                    host: member.client_host,
                    assignment: member
                        .assignment
                        .into_iter()
                        .flat_map(|t| {
                            let name = t.topic_name;
                            t.partitions.into_iter().map(move |p| (name.clone(), p))
                        })
                        .collect(),
                })
                .collect();
            return Ok(GroupView {
                state: found.group_state.to_ascii_uppercase(),
                is_simple: false,
                partition_assignor: found.assignor_name,
                coordinator: coordinator_id(&router, group).await,
                members,
            });
        }
    }
    let request = ApiRequest::DescribeGroups(DescribeGroupsRequest {
        groups: vec![group.to_owned()],
        include_authorized_operations: false,
    });
    let ApiResponse::DescribeGroups(answer) = router.call_group(group, request).await? else {
        return Err(unexpected("DescribeGroups"));
    };
    let found = answer
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| unexpected("DescribeGroups (group missing)"))?;
    if found.error != ErrorCode::NONE {
        return Err(RestError::kafka(found.error, format!("group {group}")));
    }
    if found.group_state == "Dead" {
        return Err(group_not_found(group));
    }
    let members = found
        .members
        .into_iter()
        .map(|member| MemberView {
            member_id: member.member_id,
            instance_id: member.group_instance_id,
            client_id: member.client_id,
            host: member.client_host,
            assignment: decode_assignment(&member.member_assignment),
        })
        .collect();
    Ok(GroupView {
        state: classic_state(&found.group_state).to_owned(),
        is_simple: found.protocol_type.is_empty(),
        partition_assignor: found.protocol_data,
        coordinator: coordinator_id(&router, group).await,
        members,
    })
}

/// The node id of `group`'s coordinator (known: the request just went there), or -1 when
/// it can no longer be found.
async fn coordinator_id<R: Runtime>(router: &crate::gateway::route::Router<R>, group: &str) -> i32 {
    match router.coordinator(group).await {
        Ok(dest) => router.node_of(dest),
        Err(_) => -1,
    }
}

fn group_not_found(group: &str) -> RestError {
    RestError::new(
        StatusCode::NOT_FOUND,
        super::error::GROUP_NOT_FOUND,
        format!("Consumer group {group} not found."),
    )
}

/// Confluent's upper-case state names.
fn classic_state(state: &str) -> &'static str {
    match state {
        "Stable" => "STABLE",
        "PreparingRebalance" => "PREPARING_REBALANCE",
        "CompletingRebalance" => "COMPLETING_REBALANCE",
        "Empty" => "EMPTY",
        "Dead" => "DEAD",
        _ => "UNKNOWN",
    }
}

/// A classic consumer's assignment bytes (ConsumerProtocolAssignment, any version):
/// version i16, then topics (i32 count; i16-length name, i32 count of i32 partitions).
/// Malformed bytes give an empty assignment rather than an error.
fn decode_assignment(bytes: &[u8]) -> Vec<(String, i32)> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (bytes.get(..n)?, bytes.get(n..)?);
        *bytes = tail;
        Some(head)
    }
    fn int(bytes: &mut &[u8]) -> Option<i32> {
        Some(i32::from_be_bytes(take(bytes, 4)?.try_into().ok()?))
    }
    fn parse(mut bytes: &[u8]) -> Option<Vec<(String, i32)>> {
        let bytes = &mut bytes;
        take(bytes, 2)?;
        let mut found = Vec::new();
        for _ in 0..int(bytes)?.clamp(0, 100_000) {
            let length = i16::from_be_bytes(take(bytes, 2)?.try_into().ok()?);
            let name = String::from_utf8(take(bytes, usize::try_from(length).ok()?)?.to_vec());
            let name = name.ok()?;
            for _ in 0..int(bytes)?.clamp(0, 100_000) {
                found.push((name.clone(), int(bytes)?));
            }
        }
        Some(found)
    }
    parse(bytes).unwrap_or_default()
}

fn group_json(base: &str, id: &str, group: &str, view: &GroupView) -> Value {
    let url = format!("{base}/v3/clusters/{id}/consumer-groups/{group}");
    json!({
        "kind": "KafkaConsumerGroup",
        "metadata": {
            "self": url,
            "resource_name": format!("crn:///kafka={id}/consumer-group={group}"),
        },
        "cluster_id": id,
        "consumer_group_id": group,
        "is_simple": view.is_simple,
        "partition_assignor": view.partition_assignor,
        "state": view.state,
        "coordinator": related(format!("{base}/v3/clusters/{id}/brokers/{}", view.coordinator)),
        "consumer": related(format!("{url}/consumers")),
        "lag_summary": related(format!("{url}/lag-summary")),
    })
}

/// `GET /v3/clusters/{cluster_id}/consumer-groups`.
pub async fn list_groups<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path(cluster_id): Path<String>,
) -> Result<Json<Value>, RestError> {
    let base = state.base.clone();
    let (id, metadata) = cluster(&state, Some(&cluster_id), Some(Vec::new())).await?;
    let mut data = Vec::new();
    for listed in all_groups(&state, &metadata).await? {
        match describe_group(&state, &listed.group_id).await {
            Ok(view) => data.push(group_json(&base, &id, &listed.group_id, &view)),
            // A group deleted meanwhile is simply not listed.
            Err(error) if error.status == StatusCode::NOT_FOUND => {}
            Err(error) => return Err(error),
        }
    }
    let url = format!("{base}/v3/clusters/{id}/consumer-groups");
    Ok(list("KafkaConsumerGroupList", url, data))
}

/// `GET /v3/clusters/{cluster_id}/consumer-groups/{group}`.
pub async fn get_group<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, group)): Path<(String, String)>,
) -> Result<Json<Value>, RestError> {
    let (id, _) = cluster(&state, Some(&cluster_id), Some(Vec::new())).await?;
    let view = describe_group(&state, &group).await?;
    Ok(Json(group_json(&state.base.clone(), &id, &group, &view)))
}

fn consumer_json(base: &str, id: &str, group: &str, member: &MemberView) -> Value {
    let url = format!(
        "{base}/v3/clusters/{id}/consumer-groups/{group}/consumers/{}",
        member.member_id
    );
    json!({
        "kind": "KafkaConsumer",
        "metadata": {
            "self": url,
            "resource_name": format!(
                "crn:///kafka={id}/consumer-group={group}/consumer={}", member.member_id
            ),
        },
        "cluster_id": id,
        "consumer_group_id": group,
        "consumer_id": member.member_id,
        "instance_id": member.instance_id,
        "client_id": member.client_id,
        "host": member.host,
        "assignments": related(format!("{url}/assignments")),
    })
}

/// One assignment; its `lag` link only when the group has committed an offset on the
/// partition (the lag endpoint has nothing to say about one without).
fn assignment_json(
    base: &str,
    id: &str,
    group: &str,
    member: &str,
    tp: &(String, i32),
    lags: &[PartitionLag],
) -> Value {
    let (topic, partition) = tp;
    let group_url = format!("{base}/v3/clusters/{id}/consumer-groups/{group}");
    let committed = (lags.iter()).any(|l| l.topic == *topic && l.partition == *partition);
    let lag =
        committed.then(|| related(format!("{group_url}/lags/{topic}/partitions/{partition}")));
    json!({
        "kind": "KafkaConsumerAssignment",
        "metadata": {
            "self": format!(
                "{group_url}/consumers/{member}/assignments/{topic}/partitions/{partition}"
            ),
            "resource_name": format!(
                "crn:///kafka={id}/consumer-group={group}/consumer={member}\
                 /assignment=topic={topic}/partition={partition}"
            ),
        },
        "cluster_id": id,
        "consumer_group_id": group,
        "consumer_id": member,
        "topic_name": topic,
        "partition_id": partition,
        "partition": related(format!(
            "{base}/v3/clusters/{id}/topics/{topic}/partitions/{partition}"
        )),
        "lag": lag,
    })
}

/// `GET /v3/clusters/{cluster_id}/consumer-groups/{group}/consumers`.
pub async fn list_group_consumers<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, group)): Path<(String, String)>,
) -> Result<Json<Value>, RestError> {
    let base = state.base.clone();
    let (id, _) = cluster(&state, Some(&cluster_id), Some(Vec::new())).await?;
    let view = describe_group(&state, &group).await?;
    let url = format!("{base}/v3/clusters/{id}/consumer-groups/{group}/consumers");
    let data = (view.members.iter())
        .map(|member| consumer_json(&base, &id, &group, member))
        .collect();
    Ok(list("KafkaConsumerList", url, data))
}

/// The group's member `consumer` (404 when the group has no such member).
async fn group_member<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    cluster_id: &str,
    group: &str,
    consumer: &str,
) -> Result<(String, MemberView), RestError> {
    let (id, _) = cluster(state, Some(cluster_id), Some(Vec::new())).await?;
    let view = describe_group(state, group).await?;
    Ok((id, member_of(view, group, consumer)?))
}

fn member_of(view: GroupView, group: &str, consumer: &str) -> Result<MemberView, RestError> {
    match view.members.into_iter().find(|m| m.member_id == consumer) {
        Some(member) => Ok(member),
        None => Err(RestError::status(
            StatusCode::NOT_FOUND,
            format!("Consumer {consumer} not found in consumer group {group}."),
        )),
    }
}

/// `GET .../consumer-groups/{group}/consumers/{consumer_id}`.
pub async fn get_group_consumer<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, group, consumer)): Path<(String, String, String)>,
) -> Result<Json<Value>, RestError> {
    let (id, member) = group_member(&state, &cluster_id, &group, &consumer).await?;
    Ok(Json(consumer_json(&state.base, &id, &group, &member)))
}

/// `GET .../consumer-groups/{group}/consumers/{consumer_id}/assignments`.
pub async fn list_consumer_assignments<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, group, consumer)): Path<(String, String, String)>,
) -> Result<Json<Value>, RestError> {
    let base = state.base.clone();
    let (id, _) = cluster(&state, Some(&cluster_id), Some(Vec::new())).await?;
    let (view, lags) = group_lags(&state, &group).await?;
    let member = member_of(view, &group, &consumer)?;
    let mut assigned = member.assignment.clone();
    assigned.sort();
    let data = (assigned.iter())
        .map(|tp| assignment_json(&base, &id, &group, &member.member_id, tp, &lags))
        .collect();
    let url = format!(
        "{base}/v3/clusters/{id}/consumer-groups/{group}/consumers/{}/assignments",
        member.member_id
    );
    Ok(list("KafkaConsumerAssignmentList", url, data))
}

/// `GET .../consumers/{consumer_id}/assignments/{topic}/partitions/{partition}`: 404 when
/// the consumer does not own that partition.
pub async fn get_consumer_assignment<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, group, consumer, topic, partition)): Path<(
        String,
        String,
        String,
        String,
        String,
    )>,
) -> Result<Json<Value>, RestError> {
    let (id, _) = cluster(&state, Some(&cluster_id), Some(Vec::new())).await?;
    let (view, lags) = group_lags(&state, &group).await?;
    let member = member_of(view, &group, &consumer)?;
    let tp = (topic.clone(), partition.parse::<i32>().unwrap_or(-1));
    if !member.assignment.contains(&tp) {
        let message = format!(
            "Consumer {consumer} of group {group} is not assigned partition {partition} of \
             topic {topic}."
        );
        return Err(RestError::status(StatusCode::NOT_FOUND, message));
    }
    let (base, member_id) = (&state.base, &member.member_id);
    Ok(Json(assignment_json(
        base, &id, &group, member_id, &tp, &lags,
    )))
}

/// One partition's lag of a group: its committed offset against the partition's end.
struct PartitionLag {
    topic: String,
    partition: i32,
    committed: i64,
    end: i64,
}

impl PartitionLag {
    fn lag(&self) -> i64 {
        (self.end - self.committed).max(0)
    }
}

/// The group's view and its lag on every partition it has committed an offset for
/// (OffsetFetch, then ListOffsets latest), in (topic, partition) order.
async fn group_lags<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    group: &str,
) -> Result<(GroupView, Vec<PartitionLag>), RestError> {
    let view = describe_group(state, group).await?;
    let router = Arc::clone(state.router());
    let request = ApiRequest::OffsetFetch(OffsetFetchRequest {
        groups: vec![OffsetFetchGroup {
            group_id: group.to_owned(),
            topics: None,
        }],
        require_stable: false,
    });
    let ApiResponse::OffsetFetch(answer) = router.call_group(group, request).await? else {
        return Err(unexpected("OffsetFetch"));
    };
    let mut committed = BTreeMap::new();
    for group_answer in answer.groups {
        if group_answer.error != ErrorCode::NONE {
            return Err(RestError::kafka(
                group_answer.error,
                format!("group {group}"),
            ));
        }
        for topic in group_answer.topics {
            for partition in topic.partitions {
                if partition.error == ErrorCode::NONE && partition.committed_offset >= 0 {
                    let key = (topic.name.clone(), partition.partition);
                    committed.insert(key, partition.committed_offset);
                }
            }
        }
    }
    let partitions: Vec<(String, i32)> = committed.keys().cloned().collect();
    let ends = crate::gateway::consumer::list_offsets(
        &router,
        &partitions,
        StartFrom::Latest,
        Isolation::ReadUncommitted,
    )
    .await?;
    let lags = (committed.into_iter())
        .map(|((topic, partition), offset)| {
            let end = ends.get(&(topic.clone(), partition)).copied();
            PartitionLag {
                topic,
                partition,
                committed: offset,
                // A partition whose end is unknown (deleted meanwhile) counts no lag.
                end: end.unwrap_or(offset).max(offset),
            }
        })
        .collect();
    Ok((view, lags))
}

/// The member that owns `topic`/`partition`, if any.
fn owner<'a>(view: &'a GroupView, topic: &str, partition: i32) -> Option<&'a MemberView> {
    (view.members.iter()).find(|m| {
        m.assignment
            .iter()
            .any(|(t, p)| t == topic && *p == partition)
    })
}

fn lag_json(base: &str, id: &str, group: &str, view: &GroupView, lag: &PartitionLag) -> Value {
    let (topic, partition) = (&lag.topic, lag.partition);
    let owner = owner(view, topic, partition);
    let group_url = format!("{base}/v3/clusters/{id}/consumer-groups/{group}");
    json!({
        "kind": "KafkaConsumerLag",
        "metadata": {
            "self": format!("{group_url}/lags/{topic}/partitions/{partition}"),
            "resource_name": format!(
                "crn:///kafka={id}/consumer-group={group}/lag=topic={topic}/partition={partition}"
            ),
        },
        "cluster_id": id,
        "consumer_group_id": group,
        "topic_name": topic,
        "partition_id": partition,
        "current_offset": lag.committed,
        "log_end_offset": lag.end,
        "lag": lag.lag(),
        "consumer_id": owner.map_or("", |m| m.member_id.as_str()),
        "instance_id": owner.and_then(|m| m.instance_id.clone()),
        "client_id": owner.map_or("", |m| m.client_id.as_str()),
    })
}

/// `GET .../consumer-groups/{group}/lags`: the group's lag on every partition it has
/// committed an offset for.
pub async fn list_group_lags<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, group)): Path<(String, String)>,
) -> Result<Json<Value>, RestError> {
    let base = state.base.clone();
    let (id, _) = cluster(&state, Some(&cluster_id), Some(Vec::new())).await?;
    let (view, lags) = group_lags(&state, &group).await?;
    let data = (lags.iter())
        .map(|lag| lag_json(&base, &id, &group, &view, lag))
        .collect();
    let url = format!("{base}/v3/clusters/{id}/consumer-groups/{group}/lags");
    Ok(list("KafkaConsumerLagList", url, data))
}

/// `GET .../consumer-groups/{group}/lags/{topic}/partitions/{partition}`: 404 when the
/// group has no committed offset there.
pub async fn get_group_lag<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, group, topic, partition)): Path<(String, String, String, String)>,
) -> Result<Json<Value>, RestError> {
    let (id, _) = cluster(&state, Some(&cluster_id), Some(Vec::new())).await?;
    let (view, lags) = group_lags(&state, &group).await?;
    let index = partition.parse::<i32>().ok();
    match lags
        .iter()
        .find(|l| l.topic == topic && Some(l.partition) == index)
    {
        Some(lag) => Ok(Json(lag_json(&state.base, &id, &group, &view, lag))),
        None => Err(RestError::status(
            StatusCode::NOT_FOUND,
            format!(
                "Consumer group {group} has no committed offset on partition {partition} of \
                 topic {topic}."
            ),
        )),
    }
}

/// `GET /v3/clusters/{cluster_id}/consumer-groups/{group}/lag-summary`: committed offsets
/// (OffsetFetch) against the partitions' ends (ListOffsets latest).
pub async fn group_lag_summary<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, group)): Path<(String, String)>,
) -> Result<Json<Value>, RestError> {
    let base = state.base.clone();
    let (id, _) = cluster(&state, Some(&cluster_id), Some(Vec::new())).await?;
    let (view, lags) = group_lags(&state, &group).await?;
    let total_lag: i64 = lags.iter().map(PartitionLag::lag).sum();
    // The first partition with the largest lag, in (topic, partition) order.
    let max = lags
        .iter()
        .fold(None::<&PartitionLag>, |most, lag| match most {
            Some(most) if most.lag() >= lag.lag() => Some(most),
            _ => Some(lag),
        });
    let (max_topic, max_partition, max_lag) = max.map_or((String::new(), -1, 0), |l| {
        (l.topic.clone(), l.partition, l.lag())
    });
    let owner = owner(&view, &max_topic, max_partition);
    let url = format!("{base}/v3/clusters/{id}/consumer-groups/{group}");
    // Links only to what exists: no consumer link when no member owns the partition, no
    // partition link when the group has committed nothing.
    let consumer_link = owner.map(|m| related(format!("{url}/consumers/{}", m.member_id)));
    let partition_link = max.map(|_| {
        related(format!(
            "{base}/v3/clusters/{id}/topics/{max_topic}/partitions/{max_partition}"
        ))
    });
    Ok(Json(json!({
        "kind": "KafkaConsumerGroupLagSummary",
        "metadata": {
            "self": format!("{url}/lag-summary"),
            "resource_name": format!("crn:///kafka={id}/consumer-group={group}/lag-summary"),
        },
        "cluster_id": id,
        "consumer_group_id": group,
        "max_lag_consumer_id": owner.map_or("", |m| m.member_id.as_str()),
        "max_lag_instance_id": owner.and_then(|m| m.instance_id.clone()),
        "max_lag_client_id": owner.map_or("", |m| m.client_id.as_str()),
        "max_lag_topic_name": max_topic,
        "max_lag_partition_id": max_partition,
        "max_lag": max_lag,
        "total_lag": total_lag,
        "max_lag_consumer": consumer_link,
        "max_lag_partition": partition_link,
    })))
}

/// The cluster id and broker `broker_id` names (404 when it is not in the cluster).
async fn broker_owner<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    cluster_id: &str,
    broker_id: &str,
) -> Result<(String, i32), RestError> {
    let (id, metadata) = cluster(state, Some(cluster_id), Some(Vec::new())).await?;
    let node = (broker_id.parse::<i32>().ok())
        .filter(|node| metadata.brokers.iter().any(|b| b.node_id == *node));
    match node {
        Some(node) => Ok((id, node)),
        None => Err(RestError::status(
            StatusCode::NOT_FOUND,
            format!("Broker {broker_id} not found."),
        )),
    }
}

/// `GET .../brokers/{broker_id}/configs`.
pub async fn list_broker_configs<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, broker)): Path<(String, String)>,
) -> Result<Json<Value>, RestError> {
    let (id, node) = broker_owner(&state, &cluster_id, &broker).await?;
    list_configs(&state, &id, ConfigOwner::Broker(node)).await
}

/// `GET .../brokers/{broker_id}/configs/{name}`.
pub async fn get_broker_config<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, broker, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, RestError> {
    let (id, node) = broker_owner(&state, &cluster_id, &broker).await?;
    get_config(&state, &id, ConfigOwner::Broker(node), &name).await
}

/// `PUT`/`DELETE .../brokers/{broker_id}/configs/{name}`: asked of the broker, whose
/// answer is returned (Weir's broker configuration is static: it refuses, saying so).
pub async fn put_broker_config<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    method: axum::http::Method,
    Path((cluster_id, broker, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<StatusCode, RestError> {
    let (_, node) = broker_owner(&state, &cluster_id, &broker).await?;
    put_or_delete(&state, ConfigOwner::Broker(node), name, &method, &body).await
}

/// `POST .../brokers/{broker_id}/configs:alter`.
pub async fn alter_broker_configs<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, broker)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, RestError> {
    let (_, node) = broker_owner(&state, &cluster_id, &broker).await?;
    alter_batch(&state, ConfigOwner::Broker(node), &body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a classic member's assignment bytes decode to its partitions, and garbage
    // decodes to nothing instead of failing. Method: hand-encoded v0 assignment.
    #[test]
    fn classic_assignments_decode() {
        let mut bytes = vec![0, 0, 0, 0, 0, 1, 0, 1, b't'];
        bytes.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 5]);
        assert_eq!(
            decode_assignment(&bytes),
            vec![("t".to_owned(), 3), ("t".to_owned(), 5)]
        );
        assert!(decode_assignment(&[0, 0, 0, 0, 0, 9]).is_empty());
        assert!(decode_assignment(&[]).is_empty());
    }
}
