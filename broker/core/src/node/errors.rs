//! Whole-request error answers: the response of a request's own type with `error` in every
//! error field (a poisoned node, an overloaded one), and the same rewrite for a response
//! that was parked (a produce that timed out waiting for its sync).
//!
//! Invariant: the answer has the request's shape, so clients match it to their request and
//! report the error per topic/partition as Kafka's would.

use uuid::Uuid;
use weir_wire::domain::acl::{
    AclResult, CreateAclsResponse, DeleteAclsFilterResult, DeleteAclsResponse, DescribeAclsResponse,
};
use weir_wire::domain::quorum::RaftVoterResponse;
use weir_wire::domain::sasl::{
    AlterUserScramCredentialsResponse, AlterUserScramCredentialsResult,
    DescribeUserScramCredentialsResponse, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use weir_wire::domain::{
    ApiRequest, ApiResponse, CreatableTopicResult, CreatePartitionsResponse,
    CreatePartitionsTopicResult, CreateTopicsRequest, CreateTopicsResponse, DeletableTopicResult,
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
    DeleteTopicsRequest, DeleteTopicsResponse, DescribeClusterResponse, DescribeConfigsResponse,
    DescribeConfigsResult, FetchRequest, FetchResponse, FetchTopicResponse, InitProducerIdResponse,
    ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse,
    ListOffsetsTopicResponse, MetadataRequest, MetadataResponse, MetadataTopic,
    ProducePartitionResponse, ProduceRequest, ProduceResponse, ProduceTopicResponse, TopicRef,
};
use weir_wire::error::ErrorCode;

use super::fetch::error_partition;

/// The response to `request` with `error` everywhere.
pub(super) fn error_response(request: &ApiRequest, error: ErrorCode, message: &str) -> ApiResponse {
    let message = Some(message.to_string());
    match request {
        ApiRequest::Produce(request) => produce_error_response(request, error, message),
        ApiRequest::Fetch(request) => fetch_error_response(request, error),
        ApiRequest::ListOffsets(request) => list_offsets_error_response(request, error),
        ApiRequest::Metadata(request) => metadata_error_response(request, error),
        ApiRequest::CreateTopics(request) => create_topics_error_response(request, error, message),
        ApiRequest::DeleteTopics(request) => delete_topics_error_response(request, error, message),
        ApiRequest::DescribeConfigs(request) => {
            ApiResponse::DescribeConfigs(DescribeConfigsResponse {
                throttle_time_ms: 0,
                results: request
                    .resources
                    .iter()
                    .map(|resource| DescribeConfigsResult {
                        error,
                        error_message: message.clone(),
                        resource_type: resource.resource_type,
                        resource_name: resource.resource_name.clone(),
                        configs: Vec::new(),
                    })
                    .collect(),
            })
        }
        ApiRequest::CreatePartitions(request) => {
            ApiResponse::CreatePartitions(CreatePartitionsResponse {
                throttle_time_ms: 0,
                results: request
                    .topics
                    .iter()
                    .map(|topic| CreatePartitionsTopicResult {
                        name: topic.name.clone(),
                        error,
                        error_message: message.clone(),
                    })
                    .collect(),
            })
        }
        ApiRequest::InitProducerId(_) => ApiResponse::InitProducerId(InitProducerIdResponse {
            throttle_time_ms: 0,
            error,
            producer_id: -1,
            producer_epoch: -1,
        }),
        ApiRequest::DescribeCluster(request) => {
            ApiResponse::DescribeCluster(DescribeClusterResponse {
                error,
                error_message: message,
                endpoint_type: request.endpoint_type,
                cluster_authorized_operations: i32::MIN,
                ..DescribeClusterResponse::default()
            })
        }
        ApiRequest::OffsetForLeaderEpoch(request) => {
            ApiResponse::OffsetForLeaderEpoch(request.error_response(error))
        }
        ApiRequest::DeleteRecords(request) => ApiResponse::DeleteRecords(DeleteRecordsResponse {
            throttle_time_ms: 0,
            topics: (request.topics.iter())
                .map(|topic| DeleteRecordsTopicResult {
                    name: topic.name.clone(),
                    partitions: (topic.partitions.iter())
                        .map(|(partition, _)| DeleteRecordsPartitionResult {
                            partition: *partition,
                            low_watermark: -1,
                            error,
                        })
                        .collect(),
                })
                .collect(),
        }),
        ApiRequest::ElectLeaders(request) => {
            ApiResponse::ElectLeaders(request.error_response(error, message.as_deref()))
        }
        ApiRequest::AlterPartitionReassignments(request) => {
            let response = request.error_response(error, message.as_deref());
            ApiResponse::AlterPartitionReassignments(response)
        }
        ApiRequest::ListPartitionReassignments(request) => {
            let response = request.error_response(error, message.as_deref());
            ApiResponse::ListPartitionReassignments(response)
        }
        ApiRequest::IncrementalAlterConfigs(request) => {
            ApiResponse::IncrementalAlterConfigs(request.error_response(error, message.as_deref()))
        }
        ApiRequest::AlterConfigs(request) => {
            ApiResponse::AlterConfigs(request.error_response(error, message.as_deref()))
        }
        ApiRequest::DescribeQuorum(request) => {
            ApiResponse::DescribeQuorum(request.error_response(error, message.as_deref()))
        }
        ApiRequest::AddRaftVoter(_) => {
            ApiResponse::AddRaftVoter(RaftVoterResponse::error(error, message.as_deref()))
        }
        ApiRequest::RemoveRaftVoter(_) => {
            ApiResponse::RemoveRaftVoter(RaftVoterResponse::error(error, message.as_deref()))
        }
        ApiRequest::DescribeLogDirs(request) => {
            ApiResponse::DescribeLogDirs(request.error_response(error))
        }
        ApiRequest::SaslHandshake(_) => ApiResponse::SaslHandshake(SaslHandshakeResponse {
            error,
            mechanisms: Vec::new(),
        }),
        ApiRequest::SaslAuthenticate(_) => {
            ApiResponse::SaslAuthenticate(SaslAuthenticateResponse {
                error,
                error_message: message,
                ..SaslAuthenticateResponse::default()
            })
        }
        ApiRequest::DescribeUserScramCredentials(_) => {
            ApiResponse::DescribeUserScramCredentials(DescribeUserScramCredentialsResponse {
                error,
                error_message: message,
                ..DescribeUserScramCredentialsResponse::default()
            })
        }
        ApiRequest::AlterUserScramCredentials(request) => {
            let mut users: Vec<&String> = (request.deletions.iter().map(|d| &d.name))
                .chain(request.upsertions.iter().map(|u| &u.name))
                .collect();
            users.sort();
            users.dedup();
            let results = (users.into_iter())
                .map(|user| AlterUserScramCredentialsResult {
                    user: user.clone(),
                    error,
                    error_message: message.clone(),
                })
                .collect();
            ApiResponse::AlterUserScramCredentials(AlterUserScramCredentialsResponse {
                throttle_time_ms: 0,
                results,
            })
        }
        ApiRequest::DescribeAcls(_) => ApiResponse::DescribeAcls(DescribeAclsResponse {
            error,
            error_message: message,
            ..DescribeAclsResponse::default()
        }),
        ApiRequest::CreateAcls(request) => ApiResponse::CreateAcls(CreateAclsResponse {
            throttle_time_ms: 0,
            results: (request.creations.iter())
                .map(|_| AclResult {
                    error,
                    error_message: message.clone(),
                })
                .collect(),
        }),
        ApiRequest::DeleteAcls(request) => ApiResponse::DeleteAcls(DeleteAclsResponse {
            throttle_time_ms: 0,
            filter_results: (request.filters.iter())
                .map(|_| DeleteAclsFilterResult {
                    error,
                    error_message: message.clone(),
                    matching_acls: Vec::new(),
                })
                .collect(),
        }),
        ApiRequest::UpdateFeatures(request) => {
            ApiResponse::UpdateFeatures(super::features::failed(request, error, message))
        }
        other => match super::txn::txn_error_response(other, error) {
            Some(response) => response,
            None => super::group::group_error_response(other, error),
        },
    }
}

/// Produce: every partition fails with `error`.
fn produce_error_response(
    request: &ProduceRequest,
    error: ErrorCode,
    message: Option<String>,
) -> ApiResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| ProduceTopicResponse {
            topic: topic.topic.clone(),
            partitions: (topic.partitions.iter())
                .map(|p| produce_error(p.partition, error, message.clone()))
                .collect(),
        })
        .collect();
    ApiResponse::Produce(ProduceResponse {
        topics,
        throttle_time_ms: 0,
    })
}

/// Fetch errors go both top-level (v7+ clients read it) and per partition (older ones).
fn fetch_error_response(request: &FetchRequest, error: ErrorCode) -> ApiResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| FetchTopicResponse {
            topic: topic.topic.clone(),
            partitions: (topic.partitions.iter())
                .map(|p| error_partition(p.partition, error))
                .collect(),
        })
        .collect();
    ApiResponse::Fetch(FetchResponse {
        error,
        topics,
        ..FetchResponse::default()
    })
}

/// ListOffsets: every queried partition fails with `error`.
fn list_offsets_error_response(request: &ListOffsetsRequest, error: ErrorCode) -> ApiResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| ListOffsetsTopicResponse {
            name: topic.name.clone(),
            partitions: (topic.partitions.iter())
                .map(|p| list_offsets_error(p.partition, error))
                .collect(),
        })
        .collect();
    ApiResponse::ListOffsets(ListOffsetsResponse {
        throttle_time_ms: 0,
        topics,
    })
}

/// Metadata has no top-level error: every named topic carries it (an all-topics request
/// gets an empty list, which clients retry).
fn metadata_error_response(request: &MetadataRequest, error: ErrorCode) -> ApiResponse {
    let topics = request
        .topics
        .iter()
        .flatten()
        .map(|topic| {
            let (name, topic_id) = name_and_id(topic);
            metadata_error(name, topic_id, error)
        })
        .collect();
    ApiResponse::Metadata(MetadataResponse {
        topics,
        cluster_authorized_operations: i32::MIN,
        ..MetadataResponse::default()
    })
}

/// CreateTopics: every topic fails; no id, counts -1 as Kafka reports a failed creation.
fn create_topics_error_response(
    request: &CreateTopicsRequest,
    error: ErrorCode,
    message: Option<String>,
) -> ApiResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| CreatableTopicResult {
            name: topic.name.clone(),
            topic_id: Uuid::nil(),
            error,
            error_message: message.clone(),
            num_partitions: -1,
            replication_factor: -1,
            configs: Vec::new(),
        })
        .collect();
    ApiResponse::CreateTopics(CreateTopicsResponse {
        throttle_time_ms: 0,
        topics,
    })
}

/// DeleteTopics: every reference fails, echoed as it was given.
fn delete_topics_error_response(
    request: &DeleteTopicsRequest,
    error: ErrorCode,
    message: Option<String>,
) -> ApiResponse {
    let responses = request
        .topics
        .iter()
        .map(|topic| {
            let (name, topic_id) = name_and_id(topic);
            DeletableTopicResult {
                name,
                topic_id,
                error,
                error_message: message.clone(),
            }
        })
        .collect();
    ApiResponse::DeleteTopics(DeleteTopicsResponse {
        throttle_time_ms: 0,
        responses,
    })
}

/// Echo a topic reference the way responses carry it: a name or an id, the other empty.
fn name_and_id(topic: &TopicRef) -> (Option<String>, Uuid) {
    match topic {
        TopicRef::Name(name) => (Some(name.clone()), Uuid::nil()),
        TopicRef::Id(id) => (None, *id),
    }
}

/// Rewrite a parked response so every item that succeeded carries `error` instead (items
/// that already failed keep their own error).
pub(super) fn with_error(response: ApiResponse, error: ErrorCode, message: &str) -> ApiResponse {
    let message = Some(message.to_string());
    match response {
        ApiResponse::Produce(mut response) => {
            for partition in response
                .topics
                .iter_mut()
                .flat_map(|t| t.partitions.iter_mut())
            {
                if partition.error.is_ok() {
                    *partition = produce_error(partition.partition, error, message.clone());
                }
            }
            ApiResponse::Produce(response)
        }
        ApiResponse::CreateTopics(mut response) => {
            for topic in response.topics.iter_mut().filter(|t| t.error.is_ok()) {
                topic.error = error;
                topic.error_message = message.clone();
            }
            ApiResponse::CreateTopics(response)
        }
        ApiResponse::DeleteTopics(mut response) => {
            for topic in response.responses.iter_mut().filter(|t| t.error.is_ok()) {
                topic.error = error;
                topic.error_message = message.clone();
            }
            ApiResponse::DeleteTopics(response)
        }
        ApiResponse::CreatePartitions(mut response) => {
            for topic in response.results.iter_mut().filter(|t| t.error.is_ok()) {
                topic.error = error;
                topic.error_message = message.clone();
            }
            ApiResponse::CreatePartitions(response)
        }
        ApiResponse::Metadata(mut response) => {
            for topic in response.topics.iter_mut().filter(|t| t.error.is_ok()) {
                *topic = metadata_error(topic.name.take(), topic.topic_id, error);
            }
            ApiResponse::Metadata(response)
        }
        ApiResponse::InitProducerId(response) if response.error.is_ok() => {
            ApiResponse::InitProducerId(InitProducerIdResponse {
                throttle_time_ms: response.throttle_time_ms,
                error,
                producer_id: -1,
                producer_epoch: -1,
            })
        }
        // Already a failure: it stays as it is.
        other @ ApiResponse::InitProducerId(_) => other,
        // Group writes parked for their sync: a commit that never became durable must not
        // be answered NONE (a crash would then lose an acknowledged commit).
        ApiResponse::OffsetCommit(mut response) => {
            for (_, e) in response
                .topics
                .iter_mut()
                .flat_map(|t| t.partitions.iter_mut())
            {
                if e.is_ok() {
                    *e = error;
                }
            }
            ApiResponse::OffsetCommit(response)
        }
        ApiResponse::DeleteGroups(mut response) => {
            for (_, e) in response.results.iter_mut().filter(|(_, e)| e.is_ok()) {
                *e = error;
            }
            ApiResponse::DeleteGroups(response)
        }
        ApiResponse::OffsetDelete(mut response) => {
            if response.error.is_ok() {
                response.error = error;
            }
            ApiResponse::OffsetDelete(response)
        }
        // A deletion whose log start never became durable could come back after a crash.
        ApiResponse::DeleteRecords(mut response) => {
            for partition in (response.topics.iter_mut())
                .flat_map(|t| t.partitions.iter_mut())
                .filter(|p| p.error.is_ok())
            {
                partition.error = error;
                partition.low_watermark = -1;
            }
            ApiResponse::DeleteRecords(response)
        }
        // The node's own marker for a group metadata write (`node/group.rs`): a write that
        // never became durable must not complete the rebalance.
        ApiResponse::SyncGroup(mut response) => {
            if response.error.is_ok() {
                response.error = error;
            }
            ApiResponse::SyncGroup(response)
        }
        // Transaction writes parked for their sync: an EndTxn answered NONE whose Prepare,
        // markers and Complete were never durable is a commit a crash silently undoes.
        ApiResponse::AddPartitionsToTxn(mut response) => {
            fail_txn_topics(&mut response.results, error);
            ApiResponse::AddPartitionsToTxn(response)
        }
        ApiResponse::AddOffsetsToTxn(mut response) => {
            if response.error.is_ok() {
                response.error = error;
            }
            ApiResponse::AddOffsetsToTxn(response)
        }
        ApiResponse::TxnOffsetCommit(mut response) => {
            fail_txn_topics(&mut response.topics, error);
            ApiResponse::TxnOffsetCommit(response)
        }
        ApiResponse::EndTxn(mut response) => {
            if response.error.is_ok() {
                response.error = error;
            }
            ApiResponse::EndTxn(response)
        }
        ApiResponse::WriteTxnMarkers(mut response) => {
            for marker in &mut response.markers {
                fail_txn_topics(&mut marker.topics, error);
            }
            ApiResponse::WriteTxnMarkers(response)
        }
        // Controller-bound answers that wait for their metadata records to commit.
        ApiResponse::ElectLeaders(mut response) => {
            if response.error.is_ok() {
                response.error = error;
            }
            for partition in response
                .results
                .iter_mut()
                .flat_map(|t| t.partitions.iter_mut())
            {
                if partition.error.is_ok() {
                    partition.error = error;
                    partition.error_message = message.clone();
                }
            }
            ApiResponse::ElectLeaders(response)
        }
        ApiResponse::AlterPartitionReassignments(mut response) => {
            if response.error.is_ok() {
                response.error = error;
                response.error_message = message;
            }
            ApiResponse::AlterPartitionReassignments(response)
        }
        ApiResponse::IncrementalAlterConfigs(mut response) => {
            fail_config_results(&mut response.results, error, &message);
            ApiResponse::IncrementalAlterConfigs(response)
        }
        ApiResponse::AlterConfigs(mut response) => {
            fail_config_results(&mut response.results, error, &message);
            ApiResponse::AlterConfigs(response)
        }
        ApiResponse::AlterUserScramCredentials(mut response) => {
            for result in response.results.iter_mut().filter(|r| r.error.is_ok()) {
                result.error = error;
                result.error_message = message.clone();
            }
            ApiResponse::AlterUserScramCredentials(response)
        }
        ApiResponse::CreateAcls(mut response) => {
            for result in response.results.iter_mut().filter(|r| r.error.is_ok()) {
                result.error = error;
                result.error_message = message.clone();
            }
            ApiResponse::CreateAcls(response)
        }
        ApiResponse::DeleteAcls(mut response) => {
            // A filter whose deletions may not commit reports the error and no matches.
            for result in response
                .filter_results
                .iter_mut()
                .filter(|r| r.error.is_ok())
            {
                result.error = error;
                result.error_message = message.clone();
                result.matching_acls.clear();
            }
            ApiResponse::DeleteAcls(response)
        }
        ApiResponse::UpdateFeatures(mut response) => {
            for result in response.results.iter_mut().filter(|r| r.error.is_ok()) {
                result.error = error;
                result.error_message = message.clone();
            }
            if response.error.is_ok() && response.results.is_empty() {
                response.error = error;
                response.error_message = message;
            }
            ApiResponse::UpdateFeatures(response)
        }
        ApiResponse::AddRaftVoter(response) if response.error.is_ok() => {
            ApiResponse::AddRaftVoter(RaftVoterResponse::error(error, message.as_deref()))
        }
        ApiResponse::RemoveRaftVoter(response) if response.error.is_ok() => {
            ApiResponse::RemoveRaftVoter(RaftVoterResponse::error(error, message.as_deref()))
        }
        // Never parked (`may_wait_for_sync` is false, and parking asserts it). Listed one by
        // one, without a wildcard, so that a new response type must be placed here or above.
        other @ (ApiResponse::Fetch(_)
        | ApiResponse::ListOffsets(_)
        | ApiResponse::DescribeConfigs(_)
        | ApiResponse::DescribeCluster(_)
        | ApiResponse::OffsetFetch(_)
        | ApiResponse::FindCoordinator(_)
        | ApiResponse::JoinGroup(_)
        | ApiResponse::Heartbeat(_)
        | ApiResponse::LeaveGroup(_)
        | ApiResponse::DescribeGroups(_)
        | ApiResponse::ListGroups(_)
        | ApiResponse::ConsumerGroupHeartbeat(_)
        | ApiResponse::ConsumerGroupDescribe(_)
        | ApiResponse::DescribeProducers(_)
        | ApiResponse::DescribeTransactions(_)
        | ApiResponse::ListTransactions(_)
        | ApiResponse::OffsetForLeaderEpoch(_)
        | ApiResponse::ListPartitionReassignments(_)
        | ApiResponse::DescribeQuorum(_)
        | ApiResponse::AddRaftVoter(_)
        | ApiResponse::RemoveRaftVoter(_)
        | ApiResponse::DescribeLogDirs(_)
        | ApiResponse::SaslHandshake(_)
        | ApiResponse::SaslAuthenticate(_)
        | ApiResponse::DescribeUserScramCredentials(_)
        | ApiResponse::DescribeAcls(_)) => other,
    }
}

/// True for the response types that may wait for a sync: those [`with_error`] rewrites,
/// so a parked answer whose sync fails or times out is never sent as a success. (It also
/// rewrites the controller-bound answers that wait for a metadata commit instead.)
pub(super) fn may_wait_for_sync(response: &ApiResponse) -> bool {
    matches!(
        response,
        ApiResponse::Produce(_)
            | ApiResponse::CreateTopics(_)
            | ApiResponse::DeleteTopics(_)
            | ApiResponse::CreatePartitions(_)
            | ApiResponse::Metadata(_)
            | ApiResponse::InitProducerId(_)
            | ApiResponse::OffsetCommit(_)
            | ApiResponse::DeleteGroups(_)
            | ApiResponse::OffsetDelete(_)
            | ApiResponse::DeleteRecords(_)
            | ApiResponse::SyncGroup(_)
            | ApiResponse::AddPartitionsToTxn(_)
            | ApiResponse::AddOffsetsToTxn(_)
            | ApiResponse::TxnOffsetCommit(_)
            | ApiResponse::EndTxn(_)
            | ApiResponse::WriteTxnMarkers(_)
    )
}

/// Every successful resource of an (Incremental)AlterConfigs answer gets `error`.
fn fail_config_results(
    results: &mut [weir_wire::domain::cluster::AlterConfigsResourceResult],
    error: ErrorCode,
    message: &Option<String>,
) {
    for result in results.iter_mut().filter(|r| r.error.is_ok()) {
        result.error = error;
        result.error_message = message.clone();
    }
}

/// Every successful partition of a transaction response gets `error`.
fn fail_txn_topics(topics: &mut [weir_wire::domain::txn::TxnTopicResult], error: ErrorCode) {
    for partition in topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
        if partition.error.is_ok() {
            partition.error = error;
        }
    }
}

/// A failed produce partition: Kafka reports -1 for every offset field.
fn produce_error(
    partition: i32,
    error: ErrorCode,
    error_message: Option<String>,
) -> ProducePartitionResponse {
    ProducePartitionResponse {
        partition,
        error,
        base_offset: -1,
        log_append_time_ms: -1,
        log_start_offset: -1,
        error_message,
        record_errors: Vec::new(),
    }
}

/// A failed ListOffsets partition.
fn list_offsets_error(partition: i32, error: ErrorCode) -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse {
        partition,
        error,
        timestamp: -1,
        offset: -1,
        leader_epoch: -1,
        lookup: None,
    }
}

/// A failed Metadata topic.
fn metadata_error(name: Option<String>, topic_id: Uuid, error: ErrorCode) -> MetadataTopic {
    MetadataTopic {
        error,
        name,
        topic_id,
        is_internal: false,
        partitions: Vec::new(),
        topic_authorized_operations: i32::MIN,
    }
}

#[cfg(test)]
mod tests {
    use weir_wire::domain::{Acks, ProducePartition, ProduceTopic};

    use super::*;

    // Goal: a whole-request error keeps the request's shape, and rewriting a parked
    // response keeps the errors it already had. Method: a two-partition produce.
    #[test]
    fn errors_keep_shape_and_existing_errors() {
        let request = ApiRequest::Produce(ProduceRequest {
            transactional_id: None,
            acks: Acks::All,
            timeout_ms: 1,
            topics: vec![ProduceTopic {
                topic: TopicRef::Name("t".into()),
                partitions: vec![
                    ProducePartition {
                        partition: 0,
                        records: None,
                    },
                    ProducePartition {
                        partition: 1,
                        records: None,
                    },
                ],
            }],
        });
        let failed = error_response(&request, ErrorCode::KAFKA_STORAGE_ERROR, "down");
        let ApiResponse::Produce(produce) = &failed else {
            panic!("not a produce")
        };
        assert_eq!(produce.topics[0].partitions.len(), 2);
        let mut parked = produce.clone();
        parked.topics[0].partitions[0].error = ErrorCode::NONE;
        let rewritten = with_error(
            ApiResponse::Produce(parked),
            ErrorCode::REQUEST_TIMED_OUT,
            "slow",
        );
        let ApiResponse::Produce(rewritten) = rewritten else {
            panic!("not a produce")
        };
        let errors: Vec<ErrorCode> = rewritten.topics[0]
            .partitions
            .iter()
            .map(|p| p.error)
            .collect();
        assert_eq!(
            errors,
            [ErrorCode::REQUEST_TIMED_OUT, ErrorCode::KAFKA_STORAGE_ERROR]
        );
    }
}
