//! Goal: every domain request/response survives the wire at every served version, in both
//! directions (client encode -> server decode; server encode -> client decode).
//! Method: proptest strategies parameterised by version that generate small valid values
//! whose version-absent fields hold the value decoding yields when the field is missing
//! (the schema default), so full equality can be asserted at every version.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use uuid::Uuid;
use weir_wire::codec::{
    decode_request, decode_response, encode_request, encode_response, supported_range, Decoded,
    RequestHeader,
};
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9._-]{0,8}"
}

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 1..24).prop_map(Bytes::from)
}

fn err() -> impl Strategy<Value = ErrorCode> {
    (-1i16..120).prop_map(ErrorCode)
}

fn topic_ref(v: i16, id_since: i16) -> BoxedStrategy<TopicRef> {
    if v >= id_since {
        uuid().prop_map(TopicRef::Id).boxed()
    } else {
        name().prop_map(TopicRef::Name).boxed()
    }
}

fn at<T: Clone + std::fmt::Debug + 'static>(
    present: bool,
    s: impl Strategy<Value = T> + 'static,
    default: T,
) -> BoxedStrategy<T> {
    if present {
        s.boxed()
    } else {
        Just(default).boxed()
    }
}

fn broker(rack: bool) -> impl Strategy<Value = BrokerInfo> {
    (
        any::<i32>(),
        name(),
        any::<i32>(),
        at(rack, option::of(name()), None),
    )
        .prop_map(|(node_id, host, port, rack)| BrokerInfo {
            node_id,
            host,
            port,
            rack,
        })
}

// ---------------------------------------------------------------------------------------
// Requests

fn produce_req(v: i16) -> impl Strategy<Value = ApiRequest> {
    let partition = (any::<i32>(), option::of(bytes()))
        .prop_map(|(partition, records)| ProducePartition { partition, records });
    let topic = (topic_ref(v, 13), vec(partition, 0..3))
        .prop_map(|(topic, partitions)| ProduceTopic { topic, partitions });
    (
        option::of(name()),
        prop_oneof![Just(Acks::None), Just(Acks::Leader), Just(Acks::All)],
        any::<i32>(),
        vec(topic, 0..3),
    )
        .prop_map(|(transactional_id, acks, timeout_ms, topics)| {
            ApiRequest::Produce(ProduceRequest {
                transactional_id,
                acks,
                timeout_ms,
                topics,
            })
        })
}

fn fetch_req(v: i16) -> impl Strategy<Value = ApiRequest> {
    let partition = (
        any::<i32>(),
        at(v >= 9, any::<i32>(), -1),
        any::<i64>(),
        at(v >= 5, any::<i64>(), -1),
        any::<i32>(),
    )
        .prop_map(
            |(partition, current_leader_epoch, fetch_offset, log_start_offset, pmb)| {
                FetchPartition {
                    partition,
                    current_leader_epoch,
                    fetch_offset,
                    log_start_offset,
                    partition_max_bytes: pmb,
                }
            },
        );
    let topic = (topic_ref(v, 13), vec(partition, 0..3))
        .prop_map(|(topic, partitions)| FetchTopic { topic, partitions });
    (
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
        0i8..2,
        at(v >= 7, any::<i32>(), 0),
        at(v >= 7, any::<i32>(), -1),
        vec(topic, 0..3),
        at(v >= 11, name(), String::new()),
    )
        .prop_map(
            |(
                replica_id,
                max_wait_ms,
                min_bytes,
                max_bytes,
                isolation_level,
                sid,
                sep,
                topics,
                rack,
            )| {
                ApiRequest::Fetch(FetchRequest {
                    replica_id,
                    max_wait_ms,
                    min_bytes,
                    max_bytes,
                    isolation_level,
                    session_id: sid,
                    session_epoch: sep,
                    topics,
                    rack_id: rack,
                })
            },
        )
}

fn list_offsets_req(v: i16) -> impl Strategy<Value = ApiRequest> {
    let partition = (any::<i32>(), at(v >= 4, any::<i32>(), -1), any::<i64>()).prop_map(
        |(partition, current_leader_epoch, timestamp)| ListOffsetsPartition {
            partition,
            current_leader_epoch,
            timestamp,
        },
    );
    let topic = (name(), vec(partition, 0..3))
        .prop_map(|(name, partitions)| ListOffsetsTopic { name, partitions });
    (any::<i32>(), at(v >= 2, 0i8..2, 0), vec(topic, 0..3)).prop_map(
        |(replica_id, isolation_level, topics)| {
            ApiRequest::ListOffsets(ListOffsetsRequest {
                replica_id,
                isolation_level,
                topics,
            })
        },
    )
}

fn metadata_req(v: i16) -> impl Strategy<Value = ApiRequest> {
    let topic = if v >= 10 {
        prop_oneof![
            name().prop_map(TopicRef::Name),
            uuid().prop_map(TopicRef::Id)
        ]
        .boxed()
    } else {
        name().prop_map(TopicRef::Name).boxed()
    };
    // v0 has no null list: an empty one means "all topics".
    let topics = option::of(vec(topic, if v == 0 { 1..3 } else { 0..3 }));
    (
        topics,
        at(v >= 4, any::<bool>(), true),
        at((8..=10).contains(&v), any::<bool>(), false),
        at(v >= 8, any::<bool>(), false),
    )
        .prop_map(|(topics, auto, cluster_ops, topic_ops)| {
            ApiRequest::Metadata(MetadataRequest {
                topics,
                allow_auto_topic_creation: auto,
                include_cluster_authorized_operations: cluster_ops,
                include_topic_authorized_operations: topic_ops,
            })
        })
}

fn create_topics_req(_v: i16) -> impl Strategy<Value = ApiRequest> {
    let topic = (
        name(),
        any::<i32>(),
        any::<i16>(),
        vec((any::<i32>(), vec(any::<i32>(), 0..3)), 0..3),
        vec((name(), option::of(name())), 0..3),
    )
        .prop_map(
            |(name, num_partitions, replication_factor, assignments, configs)| CreatableTopic {
                name,
                num_partitions,
                replication_factor,
                assignments,
                configs,
            },
        );
    (vec(topic, 0..3), any::<i32>(), any::<bool>()).prop_map(
        |(topics, timeout_ms, validate_only)| {
            ApiRequest::CreateTopics(CreateTopicsRequest {
                topics,
                timeout_ms,
                validate_only,
            })
        },
    )
}

fn delete_topics_req(v: i16) -> impl Strategy<Value = ApiRequest> {
    let topic = if v >= 6 {
        prop_oneof![
            name().prop_map(TopicRef::Name),
            uuid().prop_map(TopicRef::Id)
        ]
        .boxed()
    } else {
        name().prop_map(TopicRef::Name).boxed()
    };
    (vec(topic, 0..4), any::<i32>()).prop_map(|(topics, timeout_ms)| {
        ApiRequest::DeleteTopics(DeleteTopicsRequest { topics, timeout_ms })
    })
}

fn describe_configs_req(v: i16) -> impl Strategy<Value = ApiRequest> {
    let resource = (any::<i8>(), name(), option::of(vec(name(), 0..3))).prop_map(
        |(resource_type, resource_name, configuration_keys)| DescribeConfigsResource {
            resource_type,
            resource_name,
            configuration_keys,
        },
    );
    (
        vec(resource, 0..3),
        any::<bool>(),
        at(v >= 3, any::<bool>(), false),
    )
        .prop_map(|(resources, include_synonyms, include_documentation)| {
            ApiRequest::DescribeConfigs(DescribeConfigsRequest {
                resources,
                include_synonyms,
                include_documentation,
            })
        })
}

fn create_partitions_req(_v: i16) -> impl Strategy<Value = ApiRequest> {
    let topic = (
        name(),
        any::<i32>(),
        option::of(vec(vec(any::<i32>(), 0..3), 0..3)),
    )
        .prop_map(|(name, count, assignments)| CreatePartitionsTopic {
            name,
            count,
            assignments,
        });
    (vec(topic, 0..3), any::<i32>(), any::<bool>()).prop_map(
        |(topics, timeout_ms, validate_only)| {
            ApiRequest::CreatePartitions(CreatePartitionsRequest {
                topics,
                timeout_ms,
                validate_only,
            })
        },
    )
}

fn describe_cluster_req(v: i16) -> impl Strategy<Value = ApiRequest> {
    (any::<bool>(), at(v >= 1, 1i8..3, 1)).prop_map(|(ops, endpoint_type)| {
        ApiRequest::DescribeCluster(DescribeClusterRequest {
            include_cluster_authorized_operations: ops,
            endpoint_type,
        })
    })
}

// ---------------------------------------------------------------------------------------
// Responses

fn produce_resp(v: i16) -> impl Strategy<Value = ApiResponse> {
    let partition = (
        any::<i32>(),
        err(),
        any::<i64>(),
        any::<i64>(),
        at(v >= 5, any::<i64>(), -1),
        at(v >= 8, option::of(name()), None),
        at(
            v >= 8,
            vec(
                (any::<i32>(), option::of(name())).prop_map(|(batch_index, message)| {
                    ProduceRecordError {
                        batch_index,
                        message,
                    }
                }),
                0..3,
            ),
            Vec::new(),
        ),
    )
        .prop_map(
            |(partition, error, base_offset, lat, lso, error_message, record_errors)| {
                ProducePartitionResponse {
                    partition,
                    error,
                    base_offset,
                    log_append_time_ms: lat,
                    log_start_offset: lso,
                    error_message,
                    record_errors,
                }
            },
        );
    let topic = (topic_ref(v, 13), vec(partition, 0..3))
        .prop_map(|(topic, partitions)| ProduceTopicResponse { topic, partitions });
    (vec(topic, 0..3), any::<i32>()).prop_map(|(topics, throttle_time_ms)| {
        ApiResponse::Produce(ProduceResponse {
            topics,
            throttle_time_ms,
        })
    })
}

fn fetch_resp(v: i16) -> impl Strategy<Value = ApiResponse> {
    let aborted =
        (any::<i64>(), any::<i64>()).prop_map(|(producer_id, first_offset)| AbortedTransaction {
            producer_id,
            first_offset,
        });
    let records = prop_oneof![
        Just(FetchRecords::Empty),
        bytes().prop_map(FetchRecords::Bytes)
    ];
    let partition = (
        any::<i32>(),
        err(),
        any::<i64>(),
        any::<i64>(),
        at(v >= 5, any::<i64>(), -1),
        vec(aborted, 0..3),
        at(v >= 11, any::<i32>(), -1),
        records,
    )
        .prop_map(
            |(partition, error, hw, lso, log_start, aborted, prr, records)| {
                FetchPartitionResponse {
                    partition,
                    error,
                    high_watermark: hw,
                    last_stable_offset: lso,
                    log_start_offset: log_start,
                    aborted_transactions: aborted,
                    preferred_read_replica: prr,
                    records,
                }
            },
        );
    let topic = (topic_ref(v, 13), vec(partition, 0..3))
        .prop_map(|(topic, partitions)| FetchTopicResponse { topic, partitions });
    (
        any::<i32>(),
        at(v >= 7, err(), ErrorCode::NONE),
        at(v >= 7, any::<i32>(), 0),
        vec(topic, 0..3),
    )
        .prop_map(|(throttle_time_ms, error, session_id, topics)| {
            ApiResponse::Fetch(FetchResponse {
                throttle_time_ms,
                error,
                session_id,
                topics,
            })
        })
}

fn list_offsets_resp(v: i16) -> impl Strategy<Value = ApiResponse> {
    // OFFSET_NOT_AVAILABLE is v5+: older versions carry LEADER_NOT_AVAILABLE instead
    // (`offset_not_available_before_v5_is_leader_not_available`).
    let error = err().prop_filter("v5+ code", move |e| {
        v >= 5 || *e != ErrorCode::OFFSET_NOT_AVAILABLE
    });
    let partition = (
        any::<i32>(),
        error,
        any::<i64>(),
        any::<i64>(),
        at(v >= 4, any::<i32>(), -1),
    )
        .prop_map(|(partition, error, timestamp, offset, leader_epoch)| {
            ListOffsetsPartitionResponse {
                partition,
                error,
                timestamp,
                offset,
                leader_epoch,
                lookup: None,
            }
        });
    let topic = (name(), vec(partition, 0..3))
        .prop_map(|(name, partitions)| ListOffsetsTopicResponse { name, partitions });
    (at(v >= 2, any::<i32>(), 0), vec(topic, 0..3)).prop_map(|(throttle_time_ms, topics)| {
        ApiResponse::ListOffsets(ListOffsetsResponse {
            throttle_time_ms,
            topics,
        })
    })
}

fn delete_records_req(_v: i16) -> impl Strategy<Value = ApiRequest> {
    let topic = (name(), vec((any::<i32>(), any::<i64>()), 0..4))
        .prop_map(|(name, partitions)| DeleteRecordsTopic { name, partitions });
    (vec(topic, 0..3), any::<i32>()).prop_map(|(topics, timeout_ms)| {
        ApiRequest::DeleteRecords(DeleteRecordsRequest { topics, timeout_ms })
    })
}

fn delete_records_resp(_v: i16) -> impl Strategy<Value = ApiResponse> {
    let partition =
        (any::<i32>(), any::<i64>(), err()).prop_map(|(partition, low_watermark, error)| {
            DeleteRecordsPartitionResult {
                partition,
                low_watermark,
                error,
            }
        });
    let topic = (name(), vec(partition, 0..4))
        .prop_map(|(name, partitions)| DeleteRecordsTopicResult { name, partitions });
    (any::<i32>(), vec(topic, 0..3)).prop_map(|(throttle_time_ms, topics)| {
        ApiResponse::DeleteRecords(DeleteRecordsResponse {
            throttle_time_ms,
            topics,
        })
    })
}

fn metadata_resp(v: i16) -> impl Strategy<Value = ApiResponse> {
    let partition = (
        err(),
        any::<i32>(),
        any::<i32>(),
        at(v >= 7, any::<i32>(), -1),
        vec(any::<i32>(), 0..3),
        vec(any::<i32>(), 0..3),
        at(v >= 5, vec(any::<i32>(), 0..3), vec![]),
    )
        .prop_map(
            |(error, partition, leader_id, leader_epoch, replica_nodes, isr_nodes, offline)| {
                MetadataPartition {
                    error,
                    partition,
                    leader_id,
                    leader_epoch,
                    replica_nodes,
                    isr_nodes,
                    offline_replicas: offline,
                }
            },
        );
    let topic = (
        err(),
        if v >= 12 {
            option::of(name()).boxed()
        } else {
            name().prop_map(Some).boxed()
        },
        at(v >= 10, uuid(), Uuid::nil()),
        at(v >= 1, any::<bool>(), false),
        vec(partition, 0..3),
        at(v >= 8, any::<i32>(), i32::MIN),
    )
        .prop_map(
            |(error, name, topic_id, is_internal, partitions, ops)| MetadataTopic {
                error,
                name,
                topic_id,
                is_internal,
                partitions,
                topic_authorized_operations: ops,
            },
        );
    (
        at(v >= 3, any::<i32>(), 0),
        vec(broker(v >= 1), 0..3),
        at(v >= 2, option::of(name()), None),
        at(v >= 1, any::<i32>(), -1),
        vec(topic, 0..3),
        at((8..=10).contains(&v), any::<i32>(), i32::MIN),
    )
        .prop_map(
            |(throttle_time_ms, brokers, cluster_id, controller_id, topics, ops)| {
                ApiResponse::Metadata(MetadataResponse {
                    throttle_time_ms,
                    brokers,
                    cluster_id,
                    controller_id,
                    topics,
                    cluster_authorized_operations: ops,
                })
            },
        )
}

fn create_topics_resp(v: i16) -> impl Strategy<Value = ApiResponse> {
    let config = (
        name(),
        option::of(name()),
        any::<bool>(),
        any::<i8>(),
        any::<bool>(),
    )
        .prop_map(|(name, value, read_only, config_source, is_sensitive)| {
            CreatableTopicConfig {
                name,
                value,
                read_only,
                config_source,
                is_sensitive,
            }
        });
    let topic = (
        name(),
        at(v >= 7, uuid(), Uuid::nil()),
        err(),
        option::of(name()),
        at(v >= 5, any::<i32>(), -1),
        at(v >= 5, any::<i16>(), -1),
        at(v >= 5, vec(config, 0..3), vec![]),
    )
        .prop_map(|(name, topic_id, error, error_message, np, rf, configs)| {
            CreatableTopicResult {
                name,
                topic_id,
                error,
                error_message,
                num_partitions: np,
                replication_factor: rf,
                configs,
            }
        });
    (any::<i32>(), vec(topic, 0..3)).prop_map(|(throttle_time_ms, topics)| {
        ApiResponse::CreateTopics(CreateTopicsResponse {
            throttle_time_ms,
            topics,
        })
    })
}

fn delete_topics_resp(v: i16) -> impl Strategy<Value = ApiResponse> {
    let result = (
        if v >= 6 {
            option::of(name()).boxed()
        } else {
            name().prop_map(Some).boxed()
        },
        at(v >= 6, uuid(), Uuid::nil()),
        err(),
        at(v >= 5, option::of(name()), None),
    )
        .prop_map(
            |(name, topic_id, error, error_message)| DeletableTopicResult {
                name,
                topic_id,
                error,
                error_message,
            },
        );
    (any::<i32>(), vec(result, 0..3)).prop_map(|(throttle_time_ms, responses)| {
        ApiResponse::DeleteTopics(DeleteTopicsResponse {
            throttle_time_ms,
            responses,
        })
    })
}

fn describe_configs_resp(v: i16) -> impl Strategy<Value = ApiResponse> {
    let entry = (
        name(),
        option::of(name()),
        any::<bool>(),
        any::<i8>(),
        any::<bool>(),
        at(v >= 3, any::<i8>(), 0),
        at(v >= 3, option::of(name()), None),
    )
        .prop_map(
            |(name, value, read_only, config_source, is_sensitive, config_type, doc)| {
                DescribeConfigsEntry {
                    name,
                    value,
                    read_only,
                    config_source,
                    is_sensitive,
                    config_type,
                    documentation: doc,
                }
            },
        );
    let result = (
        err(),
        option::of(name()),
        any::<i8>(),
        name(),
        vec(entry, 0..3),
    )
        .prop_map(
            |(error, error_message, resource_type, resource_name, configs)| DescribeConfigsResult {
                error,
                error_message,
                resource_type,
                resource_name,
                configs,
            },
        );
    (any::<i32>(), vec(result, 0..3)).prop_map(|(throttle_time_ms, results)| {
        ApiResponse::DescribeConfigs(DescribeConfigsResponse {
            throttle_time_ms,
            results,
        })
    })
}

fn create_partitions_resp(_v: i16) -> impl Strategy<Value = ApiResponse> {
    let result = (name(), err(), option::of(name())).prop_map(|(name, error, error_message)| {
        CreatePartitionsTopicResult {
            name,
            error,
            error_message,
        }
    });
    (any::<i32>(), vec(result, 0..3)).prop_map(|(throttle_time_ms, results)| {
        ApiResponse::CreatePartitions(CreatePartitionsResponse {
            throttle_time_ms,
            results,
        })
    })
}

fn describe_cluster_resp(v: i16) -> impl Strategy<Value = ApiResponse> {
    (
        any::<i32>(),
        err(),
        option::of(name()),
        at(v >= 1, 1i8..3, 1),
        name(),
        any::<i32>(),
        vec(broker(true), 0..3),
        any::<i32>(),
    )
        .prop_map(
            |(
                throttle,
                error,
                error_message,
                endpoint_type,
                cluster_id,
                controller_id,
                brokers,
                ops,
            )| {
                ApiResponse::DescribeCluster(DescribeClusterResponse {
                    throttle_time_ms: throttle,
                    error,
                    error_message,
                    endpoint_type,
                    cluster_id,
                    controller_id,
                    brokers,
                    cluster_authorized_operations: ops,
                })
            },
        )
}

fn init_producer_id_req(v: i16) -> impl Strategy<Value = ApiRequest> {
    (
        option::of(name()),
        any::<i32>(),
        at(v >= 3, any::<i64>(), -1),
        at(v >= 3, any::<i16>(), -1),
    )
        .prop_map(
            |(transactional_id, transaction_timeout_ms, producer_id, producer_epoch)| {
                ApiRequest::InitProducerId(InitProducerIdRequest {
                    transactional_id,
                    transaction_timeout_ms,
                    producer_id,
                    producer_epoch,
                })
            },
        )
}

fn init_producer_id_resp(_v: i16) -> impl Strategy<Value = ApiResponse> {
    (any::<i32>(), err(), any::<i64>(), any::<i16>()).prop_map(
        |(throttle_time_ms, error, producer_id, producer_epoch)| {
            ApiResponse::InitProducerId(InitProducerIdResponse {
                throttle_time_ms,
                error,
                producer_id,
                producer_epoch,
            })
        },
    )
}

// ---------------------------------------------------------------------------------------
// Cluster APIs: OffsetForLeaderEpoch, ElectLeaders, Alter/ListPartitionReassignments,
// IncrementalAlterConfigs, AlterConfigs

fn broker_ids() -> impl Strategy<Value = Vec<i32>> {
    vec(-1i32..100, 0..4)
}

fn offset_for_leader_epoch_req(v: i16) -> impl Strategy<Value = ApiRequest> {
    let partition = (any::<i32>(), any::<i32>(), any::<i32>()).prop_map(
        |(partition, current_leader_epoch, leader_epoch)| cluster::OffsetForLeaderPartition {
            partition,
            current_leader_epoch,
            leader_epoch,
        },
    );
    let topic = (name(), vec(partition, 0..3))
        .prop_map(|(topic, partitions)| cluster::OffsetForLeaderTopic { topic, partitions });
    (
        at(v >= 3, any::<i32>(), cluster::replica_id::DEBUGGING),
        vec(topic, 0..3),
    )
        .prop_map(|(replica_id, topics)| {
            ApiRequest::OffsetForLeaderEpoch(cluster::OffsetForLeaderEpochRequest {
                replica_id,
                topics,
            })
        })
}

fn offset_for_leader_epoch_resp(_v: i16) -> impl Strategy<Value = ApiResponse> {
    let partition = (err(), any::<i32>(), any::<i32>(), any::<i64>()).prop_map(
        |(error, partition, leader_epoch, end_offset)| cluster::EpochEndOffset {
            error,
            partition,
            leader_epoch,
            end_offset,
        },
    );
    let topic = (name(), vec(partition, 0..3))
        .prop_map(|(topic, partitions)| cluster::OffsetForLeaderTopicResult { topic, partitions });
    (any::<i32>(), vec(topic, 0..3)).prop_map(|(throttle_time_ms, topics)| {
        ApiResponse::OffsetForLeaderEpoch(cluster::OffsetForLeaderEpochResponse {
            throttle_time_ms,
            topics,
        })
    })
}

fn elect_leaders_req(v: i16) -> impl Strategy<Value = ApiRequest> {
    let topic = (name(), vec(any::<i32>(), 0..4))
        .prop_map(|(topic, partitions)| cluster::ElectLeadersTopic { topic, partitions });
    (
        at(v >= 1, 0i8..2, cluster::election_type::PREFERRED),
        option::of(vec(topic, 0..3)),
        any::<i32>(),
    )
        .prop_map(|(election_type, topic_partitions, timeout_ms)| {
            ApiRequest::ElectLeaders(cluster::ElectLeadersRequest {
                election_type,
                topic_partitions,
                timeout_ms,
            })
        })
}

fn elect_leaders_resp(v: i16) -> impl Strategy<Value = ApiResponse> {
    let partition =
        (any::<i32>(), err(), option::of(name())).prop_map(|(partition, error, error_message)| {
            cluster::ElectLeadersPartitionResult {
                partition,
                error,
                error_message,
            }
        });
    let topic = (name(), vec(partition, 0..3))
        .prop_map(|(topic, partitions)| cluster::ElectLeadersTopicResult { topic, partitions });
    (
        any::<i32>(),
        at(v >= 1, err(), ErrorCode::NONE),
        vec(topic, 0..3),
    )
        .prop_map(|(throttle_time_ms, error, results)| {
            ApiResponse::ElectLeaders(cluster::ElectLeadersResponse {
                throttle_time_ms,
                error,
                results,
            })
        })
}

fn alter_reassignments_req(v: i16) -> impl Strategy<Value = ApiRequest> {
    let partition = (any::<i32>(), option::of(broker_ids())).prop_map(|(partition, replicas)| {
        cluster::ReassignablePartition {
            partition,
            replicas,
        }
    });
    let topic = (name(), vec(partition, 0..3))
        .prop_map(|(name, partitions)| cluster::ReassignableTopic { name, partitions });
    (
        any::<i32>(),
        at(v >= 1, any::<bool>(), true),
        vec(topic, 0..3),
    )
        .prop_map(|(timeout_ms, allow_replication_factor_change, topics)| {
            ApiRequest::AlterPartitionReassignments(cluster::AlterPartitionReassignmentsRequest {
                timeout_ms,
                allow_replication_factor_change,
                topics,
            })
        })
}

fn alter_reassignments_resp(v: i16) -> impl Strategy<Value = ApiResponse> {
    let partition =
        (any::<i32>(), err(), option::of(name())).prop_map(|(partition, error, error_message)| {
            cluster::ReassignablePartitionResult {
                partition,
                error,
                error_message,
            }
        });
    let topic = (name(), vec(partition, 0..3))
        .prop_map(|(name, partitions)| cluster::ReassignableTopicResult { name, partitions });
    (
        any::<i32>(),
        at(v >= 1, any::<bool>(), true),
        err(),
        option::of(name()),
        vec(topic, 0..3),
    )
        .prop_map(|(throttle, allow, error, error_message, results)| {
            ApiResponse::AlterPartitionReassignments(cluster::AlterPartitionReassignmentsResponse {
                throttle_time_ms: throttle,
                allow_replication_factor_change: allow,
                error,
                error_message,
                results,
            })
        })
}

fn list_reassignments_req(_v: i16) -> impl Strategy<Value = ApiRequest> {
    let topic = (name(), vec(any::<i32>(), 0..4)).prop_map(|(name, partitions)| {
        cluster::ListPartitionReassignmentsTopic { name, partitions }
    });
    (any::<i32>(), option::of(vec(topic, 0..3))).prop_map(|(timeout_ms, topics)| {
        ApiRequest::ListPartitionReassignments(cluster::ListPartitionReassignmentsRequest {
            timeout_ms,
            topics,
        })
    })
}

fn list_reassignments_resp(_v: i16) -> impl Strategy<Value = ApiResponse> {
    let partition = (any::<i32>(), broker_ids(), broker_ids(), broker_ids()).prop_map(
        |(partition, replicas, adding_replicas, removing_replicas)| {
            cluster::OngoingPartitionReassignment {
                partition,
                replicas,
                adding_replicas,
                removing_replicas,
            }
        },
    );
    let topic = (name(), vec(partition, 0..3))
        .prop_map(|(name, partitions)| cluster::OngoingTopicReassignment { name, partitions });
    (any::<i32>(), err(), option::of(name()), vec(topic, 0..3)).prop_map(
        |(throttle_time_ms, error, error_message, topics)| {
            ApiResponse::ListPartitionReassignments(cluster::ListPartitionReassignmentsResponse {
                throttle_time_ms,
                error,
                error_message,
                topics,
            })
        },
    )
}

fn resource_results() -> impl Strategy<Value = Vec<cluster::AlterConfigsResourceResult>> {
    let result = (err(), option::of(name()), any::<i8>(), name()).prop_map(
        |(error, error_message, resource_type, resource_name)| {
            cluster::AlterConfigsResourceResult {
                error,
                error_message,
                resource_type,
                resource_name,
            }
        },
    );
    vec(result, 0..3)
}

fn incremental_alter_configs_req(_v: i16) -> impl Strategy<Value = ApiRequest> {
    let config = (name(), 0i8..4, option::of(name())).prop_map(|(name, operation, value)| {
        cluster::IncrementalAlterableConfig {
            name,
            operation,
            value,
        }
    });
    let resource = (any::<i8>(), name(), vec(config, 0..3)).prop_map(
        |(resource_type, resource_name, configs)| cluster::IncrementalAlterConfigsResource {
            resource_type,
            resource_name,
            configs,
        },
    );
    (vec(resource, 0..3), any::<bool>()).prop_map(|(resources, validate_only)| {
        ApiRequest::IncrementalAlterConfigs(cluster::IncrementalAlterConfigsRequest {
            resources,
            validate_only,
        })
    })
}

fn incremental_alter_configs_resp(_v: i16) -> impl Strategy<Value = ApiResponse> {
    (any::<i32>(), resource_results()).prop_map(|(throttle_time_ms, results)| {
        ApiResponse::IncrementalAlterConfigs(cluster::IncrementalAlterConfigsResponse {
            throttle_time_ms,
            results,
        })
    })
}

fn alter_configs_req(_v: i16) -> impl Strategy<Value = ApiRequest> {
    let config = (name(), option::of(name()))
        .prop_map(|(name, value)| cluster::AlterableConfig { name, value });
    let resource = (any::<i8>(), name(), vec(config, 0..3)).prop_map(
        |(resource_type, resource_name, configs)| cluster::AlterConfigsResource {
            resource_type,
            resource_name,
            configs,
        },
    );
    (vec(resource, 0..3), any::<bool>()).prop_map(|(resources, validate_only)| {
        ApiRequest::AlterConfigs(cluster::AlterConfigsRequest {
            resources,
            validate_only,
        })
    })
}

fn alter_configs_resp(_v: i16) -> impl Strategy<Value = ApiResponse> {
    (any::<i32>(), resource_results()).prop_map(|(throttle_time_ms, results)| {
        ApiResponse::AlterConfigs(cluster::AlterConfigsResponse {
            throttle_time_ms,
            results,
        })
    })
}

// ---------------------------------------------------------------------------------------
// KIP-853 quorum APIs: DescribeQuorum, AddRaftVoter, RemoveRaftVoter

fn raft_listener() -> impl Strategy<Value = quorum::RaftListener> {
    (name(), name(), any::<u16>()).prop_map(|(name, host, port)| quorum::RaftListener {
        name,
        host,
        port,
    })
}

fn describe_quorum_req(_v: i16) -> impl Strategy<Value = ApiRequest> {
    let topic = (name(), vec(any::<i32>(), 0..3))
        .prop_map(|(name, partitions)| quorum::DescribeQuorumTopic { name, partitions });
    vec(topic, 0..3)
        .prop_map(|topics| ApiRequest::DescribeQuorum(quorum::DescribeQuorumRequest { topics }))
}

fn replica_state(v: i16) -> impl Strategy<Value = quorum::ReplicaState> {
    (
        any::<i32>(),
        at(v >= 2, uuid(), Uuid::nil()),
        any::<i64>(),
        at(v >= 1, any::<i64>(), -1),
        at(v >= 1, any::<i64>(), -1),
    )
        .prop_map(
            |(replica_id, directory_id, log_end_offset, fetch, caught_up)| quorum::ReplicaState {
                replica_id,
                directory_id,
                log_end_offset,
                last_fetch_timestamp: fetch,
                last_caught_up_timestamp: caught_up,
            },
        )
}

fn describe_quorum_resp(v: i16) -> impl Strategy<Value = ApiResponse> {
    let partition = (
        (any::<i32>(), err(), at(v >= 2, option::of(name()), None)),
        (any::<i32>(), any::<i32>(), any::<i64>()),
        vec(replica_state(v), 0..3),
        vec(replica_state(v), 0..3),
    )
        .prop_map(
            |(
                (partition, error, error_message),
                (leader_id, leader_epoch, high_watermark),
                current_voters,
                observers,
            )| {
                quorum::QuorumPartition {
                    partition,
                    error,
                    error_message,
                    leader_id,
                    leader_epoch,
                    high_watermark,
                    current_voters,
                    observers,
                }
            },
        );
    let topic = (name(), vec(partition, 0..2))
        .prop_map(|(name, partitions)| quorum::QuorumTopic { name, partitions });
    let node = (any::<i32>(), vec(raft_listener(), 0..3))
        .prop_map(|(node_id, listeners)| quorum::QuorumNode { node_id, listeners });
    (
        err(),
        at(v >= 2, option::of(name()), None),
        vec(topic, 0..2),
        at(v >= 2, vec(node, 0..3), Vec::new()),
    )
        .prop_map(|(error, error_message, topics, nodes)| {
            ApiResponse::DescribeQuorum(quorum::DescribeQuorumResponse {
                error,
                error_message,
                topics,
                nodes,
            })
        })
}

fn raft_voter_resp() -> impl Strategy<Value = quorum::RaftVoterResponse> {
    (any::<i32>(), err(), option::of(name())).prop_map(
        |(throttle_time_ms, error, error_message)| quorum::RaftVoterResponse {
            throttle_time_ms,
            error,
            error_message,
        },
    )
}

fn add_raft_voter_req(_v: i16) -> impl Strategy<Value = ApiRequest> {
    (
        option::of(name()),
        any::<i32>(),
        any::<i32>(),
        uuid(),
        vec(raft_listener(), 0..3),
    )
        .prop_map(
            |(cluster_id, timeout_ms, voter_id, voter_directory_id, listeners)| {
                ApiRequest::AddRaftVoter(quorum::AddRaftVoterRequest {
                    cluster_id,
                    timeout_ms,
                    voter_id,
                    voter_directory_id,
                    listeners,
                })
            },
        )
}

fn add_raft_voter_resp(_v: i16) -> impl Strategy<Value = ApiResponse> {
    raft_voter_resp().prop_map(ApiResponse::AddRaftVoter)
}

fn remove_raft_voter_req(_v: i16) -> impl Strategy<Value = ApiRequest> {
    (option::of(name()), any::<i32>(), uuid()).prop_map(
        |(cluster_id, voter_id, voter_directory_id)| {
            ApiRequest::RemoveRaftVoter(quorum::RemoveRaftVoterRequest {
                cluster_id,
                voter_id,
                voter_directory_id,
            })
        },
    )
}

fn remove_raft_voter_resp(_v: i16) -> impl Strategy<Value = ApiResponse> {
    raft_voter_resp().prop_map(ApiResponse::RemoveRaftVoter)
}

// ---------------------------------------------------------------------------------------
// DescribeLogDirs: the top-level error exists from v3, the volume sizes from v4.

fn describe_log_dirs_req(_v: i16) -> impl Strategy<Value = ApiRequest> {
    let topic = (name(), vec(any::<i32>(), 0..4))
        .prop_map(|(topic, partitions)| log_dirs::DescribableLogDirTopic { topic, partitions });
    option::of(vec(topic, 0..3))
        .prop_map(|topics| ApiRequest::DescribeLogDirs(log_dirs::DescribeLogDirsRequest { topics }))
}

fn describe_log_dirs_resp(v: i16) -> impl Strategy<Value = ApiResponse> {
    let partition = (any::<i32>(), any::<i64>(), any::<i64>(), any::<bool>()).prop_map(
        |(partition, partition_size, offset_lag, is_future_key)| log_dirs::LogDirPartition {
            partition,
            partition_size,
            offset_lag,
            is_future_key,
        },
    );
    let topic = (name(), vec(partition, 0..3))
        .prop_map(|(name, partitions)| log_dirs::LogDirTopic { name, partitions });
    let unknown = log_dirs::VOLUME_BYTES_UNKNOWN;
    let result = (
        err(),
        name(),
        vec(topic, 0..3),
        at(v >= 4, any::<i64>(), unknown),
        at(v >= 4, any::<i64>(), unknown),
    )
        .prop_map(|(error, log_dir, topics, total_bytes, usable_bytes)| {
            log_dirs::LogDirResult {
                error,
                log_dir,
                topics,
                total_bytes,
                usable_bytes,
            }
        });
    (
        any::<i32>(),
        at(v >= 3, err(), ErrorCode::NONE),
        vec(result, 0..3),
    )
        .prop_map(|(throttle_time_ms, error, results)| {
            ApiResponse::DescribeLogDirs(log_dirs::DescribeLogDirsResponse {
                throttle_time_ms,
                error,
                results,
            })
        })
}

// ---------------------------------------------------------------------------------------
// The round trips

fn header(api_key: i16, api_version: i16, correlation_id: i32) -> RequestHeader {
    RequestHeader {
        api_key,
        api_version,
        correlation_id,
        client_id: Some("rt-client".into()),
    }
}

fn strip_prefix(mut out: BytesMut) -> Bytes {
    let len = i32::from_be_bytes([out[0], out[1], out[2], out[3]]);
    assert_eq!(len as usize, out.len() - 4, "length prefix");
    out.split_off(4).freeze()
}

fn request_round_trip(h: &RequestHeader, request: &ApiRequest) -> Result<(), TestCaseError> {
    let mut out = BytesMut::new();
    encode_request(h, request, &mut out)
        .map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
    let (got_header, decoded) = decode_request(strip_prefix(out))
        .map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
    prop_assert_eq!(&got_header, h);
    match decoded {
        Decoded::Api(got) => prop_assert_eq!(&got, request),
        other => return Err(TestCaseError::fail(format!("decoded as {other:?}"))),
    }
    Ok(())
}

/// KIP-207's OFFSET_NOT_AVAILABLE reaches clients of ListOffsets v5+; older ones get the
/// retriable LEADER_NOT_AVAILABLE Kafka gives them for the same state.
#[test]
fn offset_not_available_before_v5_is_leader_not_available() {
    for (v, expected) in [
        (1, ErrorCode::LEADER_NOT_AVAILABLE),
        (4, ErrorCode::LEADER_NOT_AVAILABLE),
        (5, ErrorCode::OFFSET_NOT_AVAILABLE),
        (10, ErrorCode::OFFSET_NOT_AVAILABLE),
    ] {
        let response = ApiResponse::ListOffsets(ListOffsetsResponse {
            throttle_time_ms: 0,
            topics: vec![ListOffsetsTopicResponse {
                name: "t".into(),
                partitions: vec![ListOffsetsPartitionResponse {
                    partition: 0,
                    error: ErrorCode::OFFSET_NOT_AVAILABLE,
                    timestamp: -1,
                    offset: -1,
                    leader_epoch: -1,
                    lookup: None,
                }],
            }],
        });
        let h = header(2, v, 7);
        let mut out = BytesMut::new();
        encode_response(&h, &response, &mut out).expect("encodes");
        let Ok(ApiResponse::ListOffsets(got)) = decode_response(&h, strip_prefix(out)) else {
            panic!("v{v}: a ListOffsets answer")
        };
        assert_eq!(got.topics[0].partitions[0].error, expected, "v{v}");
    }
}

fn response_round_trip(h: &RequestHeader, response: &ApiResponse) -> Result<(), TestCaseError> {
    let mut out = BytesMut::new();
    encode_response(h, response, &mut out)
        .map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
    let got = decode_response(h, strip_prefix(out))
        .map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
    prop_assert_eq!(&got, response);
    Ok(())
}

macro_rules! round_trip_tests {
    ($($test:ident: $key:expr, $req:ident, $resp:ident;)*) => {
        $(
            #[test]
            fn $test() {
                let (min, max) = supported_range($key).expect("served");
                // Produce v0-2 are advertised but never served.
                let min = if $key == 0 { 3 } else { min };
                for v in min..=max {
                    let config = ProptestConfig { cases: 24, ..ProptestConfig::default() };
                    let mut runner = proptest::test_runner::TestRunner::new(config);
                    runner
                        .run(&($req(v), $resp(v), any::<i32>()), |(req, resp, corr)| {
                            let h = header($key, v, corr);
                            request_round_trip(&h, &req)?;
                            response_round_trip(&h, &resp)
                        })
                        .unwrap_or_else(|e| panic!("api {} v{v}: {e}", $key));
                }
            }
        )*
    };
}

round_trip_tests! {
    produce: 0, produce_req, produce_resp;
    fetch: 1, fetch_req, fetch_resp;
    list_offsets: 2, list_offsets_req, list_offsets_resp;
    metadata: 3, metadata_req, metadata_resp;
    create_topics: 19, create_topics_req, create_topics_resp;
    delete_topics: 20, delete_topics_req, delete_topics_resp;
    describe_configs: 32, describe_configs_req, describe_configs_resp;
    create_partitions: 37, create_partitions_req, create_partitions_resp;
    describe_cluster: 60, describe_cluster_req, describe_cluster_resp;
    init_producer_id: 22, init_producer_id_req, init_producer_id_resp;
    offset_for_leader_epoch: 23, offset_for_leader_epoch_req, offset_for_leader_epoch_resp;
    elect_leaders: 43, elect_leaders_req, elect_leaders_resp;
    alter_partition_reassignments: 45, alter_reassignments_req, alter_reassignments_resp;
    list_partition_reassignments: 46, list_reassignments_req, list_reassignments_resp;
    incremental_alter_configs: 44, incremental_alter_configs_req, incremental_alter_configs_resp;
    alter_configs: 33, alter_configs_req, alter_configs_resp;
    describe_quorum: 55, describe_quorum_req, describe_quorum_resp;
    add_raft_voter: 80, add_raft_voter_req, add_raft_voter_resp;
    remove_raft_voter: 81, remove_raft_voter_req, remove_raft_voter_resp;
    describe_log_dirs: 35, describe_log_dirs_req, describe_log_dirs_resp;
    delete_records: 21, delete_records_req, delete_records_resp;
}
