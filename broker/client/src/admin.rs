//! The admin client: topics, partitions, configs, offsets, the cluster description and the
//! controller quorum (KIP-853's DescribeQuorum, AddRaftVoter, RemoveRaftVoter; any broker
//! forwards these to the active controller).
//!
//! Topic changes go to the controller (Kafka answers NOT_CONTROLLER elsewhere); reads go to
//! any broker, ListOffsets to each partition's leader. Per-topic failures are reported per
//! topic, so one bad name does not hide the others' results.

use weir_runtime::Runtime;
use weir_wire::domain::cluster::{election_type, ElectLeadersRequest};
use weir_wire::domain::quorum::{
    AddRaftVoterRequest, DescribeQuorumRequest, DescribeQuorumTopic, QuorumNode, QuorumPartition,
    RaftListener, RaftVoterResponse, RemoveRaftVoterRequest, METADATA_TOPIC,
};
use weir_wire::domain::{
    resource_type, ApiRequest, ApiResponse, CreatableTopic, CreatePartitionsRequest,
    CreatePartitionsTopic, CreateTopicsRequest, DeleteTopicsRequest, DescribeClusterRequest,
    DescribeConfigsRequest, DescribeConfigsResource, TopicRef, EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP, MAX_TIMESTAMP,
};
use weir_wire::error::ErrorCode;

use crate::config::ClientConfig;
use crate::driver::cluster::{unexpected, Cluster};
use crate::driver::millis_i32;
use crate::error::ClientError;
use crate::session::metadata::PartitionMetadata;
use crate::{BrokerInfo, TopicPartition};

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partitions (-1 = broker default).
    pub partitions: i32,
    /// Replication factor (-1 = broker default).
    pub replication_factor: i16,
    /// Topic configs, e.g. `("retention.ms", "60000")`.
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with `partitions` and `replication_factor` and no configs.
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor,
            configs: Vec::new(),
        }
    }
}

/// What `describe_topics` reports about a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// Name.
    pub name: String,
    /// Stable id as text.
    pub topic_id: String,
    /// Internal topic.
    pub is_internal: bool,
    /// Partitions with leaders, replicas and ISR.
    pub partitions: Vec<PartitionMetadata>,
}

/// A config entry of a topic or broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Name.
    pub name: String,
    /// Value (`None` when sensitive or unset).
    pub value: Option<String>,
    /// Read-only.
    pub read_only: bool,
    /// True when set on the resource rather than inherited.
    pub is_default: bool,
    /// Sensitive (value hidden).
    pub is_sensitive: bool,
}

/// Which offset `list_offsets` should find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (high watermark).
    Latest,
    /// The offset of the record with the largest timestamp.
    MaxTimestamp,
    /// The first offset whose record timestamp is >= this (ms).
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire_timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => EARLIEST_TIMESTAMP,
            OffsetSpec::Latest => LATEST_TIMESTAMP,
            OffsetSpec::MaxTimestamp => MAX_TIMESTAMP,
            OffsetSpec::Timestamp(ms) => ms,
        }
    }
}

/// One `list_offsets` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedOffset {
    /// The partition.
    pub topic_partition: TopicPartition,
    /// The offset, -1 when no record matches a timestamp query.
    pub offset: i64,
    /// The found record's timestamp, -1 for earliest/latest.
    pub timestamp: i64,
}

/// What `describe_cluster` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// Cluster id.
    pub cluster_id: String,
    /// The controller's node id.
    pub controller_id: i32,
    /// Brokers.
    pub brokers: Vec<BrokerInfo>,
}

/// What `describe_quorum` reports: the metadata partition's quorum state (leader, epoch,
/// high watermark, voters and observers with their log ends) and the voters' endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumDescription {
    /// `__cluster_metadata`-0's state.
    pub partition: QuorumPartition,
    /// The voters' controller endpoints.
    pub nodes: Vec<QuorumNode>,
}

/// An admin client; cheap to clone.
#[derive(Debug)]
pub struct Admin<R: Runtime> {
    cluster: Cluster<R>,
}

impl<R: Runtime> Clone for Admin<R> {
    fn clone(&self) -> Admin<R> {
        Admin {
            cluster: self.cluster.clone(),
        }
    }
}

/// Per-topic results of a batch operation.
pub type TopicResults = Vec<(String, Result<(), ClientError>)>;

impl<R: Runtime> Admin<R> {
    /// Connects to the cluster.
    pub async fn connect(runtime: R, config: ClientConfig) -> Result<Admin<R>, ClientError> {
        Ok(Admin {
            cluster: Cluster::connect(runtime, config).await?,
        })
    }

    /// Creates topics; one result per topic.
    pub async fn create_topics(&self, topics: Vec<NewTopic>) -> Result<TopicResults, ClientError> {
        let timeout_ms = millis_i32(self.cluster.config().request_timeout);
        let request = ApiRequest::CreateTopics(CreateTopicsRequest {
            topics: topics
                .into_iter()
                .map(|topic| CreatableTopic {
                    name: topic.name,
                    num_partitions: topic.partitions,
                    replication_factor: topic.replication_factor,
                    assignments: Vec::new(),
                    configs: topic
                        .configs
                        .into_iter()
                        .map(|(k, v)| (k, Some(v)))
                        .collect(),
                })
                .collect(),
            timeout_ms,
            validate_only: false,
        });
        match self.cluster.request_controller(&request).await? {
            ApiResponse::CreateTopics(response) => Ok(response
                .topics
                .into_iter()
                .map(|topic| {
                    let result = topic_result(&topic.name, topic.error, topic.error_message);
                    (topic.name, result)
                })
                .collect()),
            other => Err(unexpected("CreateTopics", &other)),
        }
    }

    /// Creates one topic.
    pub async fn create_topic(&self, topic: NewTopic) -> Result<(), ClientError> {
        let name = topic.name.clone();
        single(name, self.create_topics(vec![topic]).await?)
    }

    /// Deletes topics by name; one result per topic.
    pub async fn delete_topics(&self, names: Vec<String>) -> Result<TopicResults, ClientError> {
        let request = ApiRequest::DeleteTopics(DeleteTopicsRequest {
            topics: names.into_iter().map(TopicRef::Name).collect(),
            timeout_ms: millis_i32(self.cluster.config().request_timeout),
        });
        match self.cluster.request_controller(&request).await? {
            ApiResponse::DeleteTopics(response) => Ok(response
                .responses
                .into_iter()
                .map(|topic| {
                    let name = topic.name.unwrap_or_default();
                    (
                        name.clone(),
                        topic_result(&name, topic.error, topic.error_message),
                    )
                })
                .collect()),
            other => Err(unexpected("DeleteTopics", &other)),
        }
    }

    /// Deletes one topic.
    pub async fn delete_topic(&self, name: &str) -> Result<(), ClientError> {
        single(
            name.to_owned(),
            self.delete_topics(vec![name.to_owned()]).await?,
        )
    }

    /// Names of all topics, sorted; internal topics only when `include_internal`.
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<String>, ClientError> {
        let metadata = self.cluster.refresh_metadata(None, false).await?;
        Ok(metadata
            .topics()
            .filter(|topic| topic.error.is_ok() && (include_internal || !topic.is_internal))
            .map(|topic| topic.name.clone())
            .collect())
    }

    /// Describes topics (all when `names` is empty).
    pub async fn describe_topics(
        &self,
        names: &[String],
    ) -> Result<Vec<Result<TopicDescription, ClientError>>, ClientError> {
        let requested = if names.is_empty() { None } else { Some(names) };
        let metadata = self.cluster.refresh_metadata(requested, false).await?;
        let describe = |name: &str| match metadata.topic(name) {
            None => Err(ClientError::kafka(
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                name,
            )),
            Some(topic) if !topic.error.is_ok() => Err(ClientError::kafka(topic.error, name)),
            Some(topic) => Ok(TopicDescription {
                name: topic.name.clone(),
                topic_id: topic.topic_id.clone(),
                is_internal: topic.is_internal,
                partitions: topic.partitions.clone(),
            }),
        };
        Ok(match requested {
            Some(names) => names.iter().map(|name| describe(name)).collect(),
            None => metadata
                .topics()
                .map(|topic| describe(&topic.name))
                .collect(),
        })
    }

    /// Grows a topic to `total_count` partitions.
    pub async fn create_partitions(&self, name: &str, total_count: i32) -> Result<(), ClientError> {
        let request = ApiRequest::CreatePartitions(CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: name.to_owned(),
                count: total_count,
                assignments: None,
            }],
            timeout_ms: millis_i32(self.cluster.config().request_timeout),
            validate_only: false,
        });
        match self.cluster.request_controller(&request).await? {
            ApiResponse::CreatePartitions(response) => single(
                name.to_owned(),
                response
                    .results
                    .into_iter()
                    .map(|r| {
                        (
                            r.name.clone(),
                            topic_result(&r.name, r.error, r.error_message),
                        )
                    })
                    .collect(),
            ),
            other => Err(unexpected("CreatePartitions", &other)),
        }
    }

    /// The configs of a topic (all keys).
    pub async fn describe_topic_configs(
        &self,
        name: &str,
    ) -> Result<Vec<ConfigEntry>, ClientError> {
        self.describe_configs(resource_type::TOPIC, name).await
    }

    /// Only the named configs of a topic (a broker may answer keys it does not list among
    /// all its configs, e.g. Weir's read-only `weir.log.cleaner.dirty.ratio`).
    pub async fn describe_topic_config_keys(
        &self,
        name: &str,
        keys: &[&str],
    ) -> Result<Vec<ConfigEntry>, ClientError> {
        let keys = keys.iter().map(|k| (*k).to_owned()).collect();
        self.describe_configs_of(resource_type::TOPIC, name, Some(keys))
            .await
    }

    /// The configs of a resource ([`resource_type`] TOPIC or BROKER with the broker id).
    pub async fn describe_configs(
        &self,
        resource_type: i8,
        resource_name: &str,
    ) -> Result<Vec<ConfigEntry>, ClientError> {
        self.describe_configs_of(resource_type, resource_name, None)
            .await
    }

    async fn describe_configs_of(
        &self,
        resource_type: i8,
        resource_name: &str,
        configuration_keys: Option<Vec<String>>,
    ) -> Result<Vec<ConfigEntry>, ClientError> {
        let request = ApiRequest::DescribeConfigs(DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type,
                resource_name: resource_name.to_owned(),
                configuration_keys,
            }],
            include_synonyms: false,
            include_documentation: false,
        });
        let response = match self.cluster.request_any(&request).await? {
            ApiResponse::DescribeConfigs(response) => response,
            other => return Err(unexpected("DescribeConfigs", &other)),
        };
        let Some(result) = response.results.into_iter().next() else {
            return Err(ClientError::Protocol(
                "empty DescribeConfigs response".into(),
            ));
        };
        if !result.error.is_ok() {
            return Err(ClientError::Kafka {
                code: result.error,
                context: resource_name.to_owned(),
                message: result.error_message,
            });
        }
        Ok(result
            .configs
            .into_iter()
            .map(|entry| ConfigEntry {
                name: entry.name,
                value: entry.value,
                read_only: entry.read_only,
                is_default: entry.config_source == weir_wire::domain::config_source::DEFAULT_CONFIG,
                is_sensitive: entry.is_sensitive,
            })
            .collect())
    }

    /// Offsets per partition; fails on the first partition that cannot be answered.
    pub async fn list_offsets(
        &self,
        queries: Vec<(TopicPartition, OffsetSpec)>,
    ) -> Result<Vec<ListedOffset>, ClientError> {
        let queries: Vec<(TopicPartition, i64)> = queries
            .into_iter()
            .map(|(tp, spec)| (tp, spec.wire_timestamp()))
            .collect();
        let answers = self.cluster.list_offsets(&queries, false).await?;
        answers
            .into_iter()
            .map(|(topic_partition, answer)| {
                let answer = answer?;
                Ok(ListedOffset {
                    topic_partition,
                    offset: answer.offset,
                    timestamp: answer.timestamp,
                })
            })
            .collect()
    }

    /// Deletes the records below each offset (-1: the partition's high watermark), as
    /// `kafka-delete-records.sh` does; per partition, the new log start offset (the low
    /// watermark) or the failure.
    pub async fn delete_records(
        &self,
        deletions: Vec<(TopicPartition, i64)>,
    ) -> Result<Vec<(TopicPartition, Result<i64, ClientError>)>, ClientError> {
        let timeout_ms = millis_i32(self.cluster.config().request_timeout);
        self.cluster.delete_records(&deletions, timeout_ms).await
    }

    /// The cluster id, controller and brokers.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription, ClientError> {
        let request = ApiRequest::DescribeCluster(DescribeClusterRequest {
            include_cluster_authorized_operations: false,
            endpoint_type: 1,
        });
        match self.cluster.request_any(&request).await? {
            ApiResponse::DescribeCluster(response) if response.error.is_ok() => {
                Ok(ClusterDescription {
                    cluster_id: response.cluster_id,
                    controller_id: response.controller_id,
                    brokers: response.brokers,
                })
            }
            ApiResponse::DescribeCluster(response) => Err(ClientError::Kafka {
                code: response.error,
                context: "describe cluster".into(),
                message: response.error_message,
            }),
            other => Err(unexpected("DescribeCluster", &other)),
        }
    }

    /// The controller quorum as the active controller reports it.
    pub async fn describe_quorum(&self) -> Result<QuorumDescription, ClientError> {
        let request = ApiRequest::DescribeQuorum(DescribeQuorumRequest {
            topics: vec![DescribeQuorumTopic {
                name: METADATA_TOPIC.into(),
                partitions: vec![0],
            }],
        });
        let response = match self.cluster.request_any(&request).await? {
            ApiResponse::DescribeQuorum(response) => response,
            other => return Err(unexpected("DescribeQuorum", &other)),
        };
        let context = "describe quorum";
        if !response.error.is_ok() {
            return Err(ClientError::Kafka {
                code: response.error,
                context: context.into(),
                message: response.error_message,
            });
        }
        let partition = response
            .topics
            .into_iter()
            .find(|t| t.name == METADATA_TOPIC)
            .and_then(|t| t.partitions.into_iter().find(|p| p.partition == 0))
            .ok_or_else(|| ClientError::kafka(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, context))?;
        if !partition.error.is_ok() {
            return Err(ClientError::Kafka {
                code: partition.error,
                context: context.into(),
                message: partition.error_message,
            });
        }
        Ok(QuorumDescription {
            partition,
            nodes: response.nodes,
        })
    }

    /// Makes node `voter_id`, reachable on its controller listener `host:port`, a voter of
    /// the controller quorum. Returns once the new voter set is committed.
    pub async fn add_raft_voter(
        &self,
        voter_id: i32,
        host: &str,
        port: u16,
    ) -> Result<(), ClientError> {
        let request = ApiRequest::AddRaftVoter(AddRaftVoterRequest {
            cluster_id: None,
            timeout_ms: millis_i32(self.cluster.config().request_timeout),
            voter_id,
            // The nil UUID: Weir keeps no metadata directory ids.
            voter_directory_id: Default::default(),
            listeners: vec![RaftListener {
                name: "CONTROLLER".into(),
                host: host.into(),
                port,
            }],
        });
        match self.cluster.request_any(&request).await? {
            ApiResponse::AddRaftVoter(response) => voter_result(response, "add voter", voter_id),
            other => Err(unexpected("AddRaftVoter", &other)),
        }
    }

    /// Removes voter `voter_id` from the controller quorum. Returns once the new voter set
    /// is committed.
    pub async fn remove_raft_voter(&self, voter_id: i32) -> Result<(), ClientError> {
        let request = ApiRequest::RemoveRaftVoter(RemoveRaftVoterRequest {
            cluster_id: None,
            voter_id,
            // The nil UUID: Weir keeps no metadata directory ids.
            voter_directory_id: Default::default(),
        });
        match self.cluster.request_any(&request).await? {
            ApiResponse::RemoveRaftVoter(response) => {
                voter_result(response, "remove voter", voter_id)
            }
            other => Err(unexpected("RemoveRaftVoter", &other)),
        }
    }

    /// Preferred-leader election (ElectLeaders, key 43) for every partition, as
    /// `kafka-leader-election.sh --election-type PREFERRED --all-topic-partitions` asks it.
    /// Returns the partitions whose leadership moved; a partition whose leader already is
    /// its preferred replica (ELECTION_NOT_NEEDED) is not an error, any other per-partition
    /// error is (`PREFERRED_LEADER_NOT_AVAILABLE`: the preferred replica is not live and in
    /// sync).
    pub async fn elect_preferred_leaders(&self) -> Result<Vec<TopicPartition>, ClientError> {
        let request = ApiRequest::ElectLeaders(ElectLeadersRequest {
            election_type: election_type::PREFERRED,
            topic_partitions: None,
            timeout_ms: millis_i32(self.cluster.config().request_timeout),
        });
        let response = match self.cluster.request_controller(&request).await? {
            ApiResponse::ElectLeaders(response) => response,
            other => return Err(unexpected("ElectLeaders", &other)),
        };
        if !response.error.is_ok() {
            return Err(ClientError::Kafka {
                code: response.error,
                context: "elect leaders".into(),
                message: None,
            });
        }
        let mut moved = Vec::new();
        for topic in response.results {
            for partition in topic.partitions {
                let here = TopicPartition::new(topic.topic.clone(), partition.partition);
                match partition.error {
                    ErrorCode::NONE => moved.push(here),
                    ErrorCode::ELECTION_NOT_NEEDED => {}
                    code => {
                        return Err(ClientError::Kafka {
                            code,
                            context: format!("elect leader of {here}"),
                            message: partition.error_message,
                        })
                    }
                }
            }
        }
        Ok(moved)
    }

    /// The cluster handle.
    pub fn cluster(&self) -> &Cluster<R> {
        &self.cluster
    }
}

fn voter_result(response: RaftVoterResponse, what: &str, id: i32) -> Result<(), ClientError> {
    if response.error.is_ok() {
        return Ok(());
    }
    Err(ClientError::Kafka {
        code: response.error,
        context: format!("{what} {id}"),
        message: response.error_message,
    })
}

fn topic_result(name: &str, error: ErrorCode, message: Option<String>) -> Result<(), ClientError> {
    if error.is_ok() {
        Ok(())
    } else {
        Err(ClientError::Kafka {
            code: error,
            context: name.to_owned(),
            message,
        })
    }
}

fn single(name: String, results: TopicResults) -> Result<(), ClientError> {
    match results
        .into_iter()
        .find(|(result_name, _)| *result_name == name)
    {
        Some((_, result)) => result,
        None => Err(ClientError::Protocol(format!("no result for topic {name}"))),
    }
}
