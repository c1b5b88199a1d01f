//! Scenario tests of topic administration and cluster description: CreateTopics,
//! DeleteTopics, CreatePartitions, Metadata (auto-create), DescribeConfigs, DescribeCluster.

use crate::common;

use common::*;
use weir_core::testing::{batch, SingleNode};
use weir_core::NodeConfig;
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

fn create_result(node: &mut SingleNode, request: ApiRequest) -> CreatableTopicResult {
    let ApiResponse::CreateTopics(response) = node.call(request) else {
        panic!("not CreateTopics")
    };
    response.topics.into_iter().next().expect("one result")
}

fn creatable(name: &str, partitions: i32, replication_factor: i16) -> ApiRequest {
    ApiRequest::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor,
            assignments: Vec::new(),
            configs: Vec::new(),
        }],
        timeout_ms: 1_000,
        validate_only: false,
    })
}

// Goal: CreateTopics validation mirrors Kafka's error codes. Method: one bad topic per rule.
#[test]
fn create_topics_validation() {
    let mut node = SingleNode::new(NodeConfig::default());
    must_create(&mut node, "taken", 2, &[]);
    let error = |node: &mut SingleNode, request| create_result(node, request).error;
    assert_eq!(
        error(&mut node, creatable("taken", 1, 1)),
        ErrorCode::TOPIC_ALREADY_EXISTS
    );
    assert_eq!(
        error(&mut node, creatable("bad name", 1, 1)),
        ErrorCode::INVALID_TOPIC_EXCEPTION
    );
    assert_eq!(
        error(&mut node, creatable("..", 1, 1)),
        ErrorCode::INVALID_TOPIC_EXCEPTION
    );
    assert_eq!(
        error(&mut node, creatable("zero", 0, 1)),
        ErrorCode::INVALID_PARTITIONS
    );
    assert_eq!(
        error(&mut node, creatable("three", 1, 3)),
        ErrorCode::INVALID_REPLICATION_FACTOR
    );
    let shred = create_topic("c", 1, &[("cleanup.policy", "compact,shred")]);
    let result = create_result(&mut node, shred);
    assert_eq!(result.error, ErrorCode::INVALID_CONFIG);
    assert!(result
        .error_message
        .as_deref()
        .unwrap_or_default()
        .contains("unknown policy \"shred\""));
    let unknown = create_topic("u", 1, &[("banana.ms", "1")]);
    assert_eq!(
        create_result(&mut node, unknown).error,
        ErrorCode::INVALID_CONFIG
    );
    assert_eq!(node.node.topic_names(), ["taken"]);
}

// Goal: defaults (-1), the returned configs, and validate_only creating nothing.
#[test]
fn create_topics_defaults_and_validate_only() {
    let mut node = node_with(|config| config.num_partitions = 3);
    let result = create_result(&mut node, creatable("d", -1, -1));
    assert_eq!(result.error, ErrorCode::NONE);
    assert_eq!((result.num_partitions, result.replication_factor), (3, 1));
    assert!(!result.topic_id.is_nil());
    let retention = result
        .configs
        .iter()
        .find(|c| c.name == "retention.ms")
        .expect("listed");
    assert_eq!(retention.config_source, config_source::DEFAULT_CONFIG);
    let ApiRequest::CreateTopics(mut request) = create_topic("dry", 2, &[("retention.ms", "5")])
    else {
        panic!()
    };
    request.validate_only = true;
    let result = create_result(&mut node, ApiRequest::CreateTopics(request));
    assert_eq!(result.error, ErrorCode::NONE);
    assert_eq!(
        node.node.topic_names(),
        ["d"],
        "validate_only creates nothing"
    );
}

// Goal: delete then recreate gives a fresh, empty topic with a new id; deletion answers
// parked fetches; deletion can be disabled. Method: produce, park a fetch, delete, recreate.
#[test]
fn delete_and_recreate_topic() {
    let mut node = SingleNode::new(NodeConfig::default());
    must_create(&mut node, "t", 1, &[]);
    must_produce(&mut node, "t", 0, batch(&[1, 2, 3]));
    let first_id = topic_id(&mut node, "t");
    let parked = node.send(5, fetch("t", 0, 3, 30_000, 1));
    let ApiResponse::DeleteTopics(deleted) = node.call(delete_topic(TopicRef::Name("t".into())))
    else {
        panic!()
    };
    assert_eq!(deleted.responses[0].error, ErrorCode::NONE);
    assert_eq!(deleted.responses[0].topic_id, first_id);
    let answered = node
        .take(parked)
        .expect("parked fetch answered on deletion");
    assert_eq!(
        fetch_partition(&answered).error,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
    );
    assert!(node.storage_is_empty_of_logs());
    must_create(&mut node, "t", 1, &[]);
    assert_ne!(topic_id(&mut node, "t"), first_id);
    assert_eq!(node.node.partition_offsets("t", 0), Some((0, 0, 0)));
    let by_id = node.call(delete_topic(TopicRef::Id(first_id)));
    let ApiResponse::DeleteTopics(by_id) = by_id else {
        panic!()
    };
    assert_eq!(by_id.responses[0].error, ErrorCode::UNKNOWN_TOPIC_ID);

    let mut locked = node_with(|config| config.delete_topic_enable = false);
    must_create(&mut locked, "keep", 1, &[]);
    let ApiResponse::DeleteTopics(refused) =
        locked.call(delete_topic(TopicRef::Name("keep".into())))
    else {
        panic!()
    };
    assert_eq!(
        refused.responses[0].error,
        ErrorCode::TOPIC_DELETION_DISABLED
    );
}

trait StorageProbe {
    fn storage_is_empty_of_logs(&self) -> bool;
}

impl StorageProbe for SingleNode {
    fn storage_is_empty_of_logs(&self) -> bool {
        use weir_core::storage::Storage;
        self.storage.logs().expect("logs").is_empty()
    }
}

fn topic_id(node: &mut SingleNode, name: &str) -> uuid::Uuid {
    let ApiResponse::Metadata(metadata) = node.call(metadata(Some(&[name]), false)) else {
        panic!()
    };
    metadata.topics[0].topic_id
}

// Goal: CreatePartitions grows a topic and refuses to shrink it.
#[test]
fn create_partitions_grows_only() {
    let mut node = SingleNode::new(NodeConfig::default());
    must_create(&mut node, "t", 2, &[]);
    let grow = |node: &mut SingleNode, count| {
        let request = ApiRequest::CreatePartitions(CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: "t".into(),
                count,
                assignments: None,
            }],
            timeout_ms: 1_000,
            validate_only: false,
        });
        let ApiResponse::CreatePartitions(response) = node.call(request) else {
            panic!()
        };
        response.results[0].error
    };
    assert_eq!(grow(&mut node, 2), ErrorCode::INVALID_PARTITIONS);
    assert_eq!(grow(&mut node, 1), ErrorCode::INVALID_PARTITIONS);
    assert_eq!(grow(&mut node, 4), ErrorCode::NONE);
    assert_eq!(must_produce(&mut node, "t", 3, batch(&[1])), 0);
    node.restart();
    assert_eq!(node.node.partition_offsets("t", 3), Some((0, 1, 1)));
}

// Goal: Metadata lists this node as broker, controller and leader; auto-creates only when
// both the request and the config allow it; flags invalid names.
#[test]
fn metadata_and_auto_create() {
    let mut node = SingleNode::new(NodeConfig::default());
    let ApiResponse::Metadata(response) = node.call(metadata(Some(&["auto"]), true)) else {
        panic!()
    };
    assert_eq!(response.controller_id, 1);
    assert_eq!(response.brokers.len(), 1);
    assert_eq!(response.cluster_id.as_deref(), Some("weir-local-cluster"));
    let topic = &response.topics[0];
    assert_eq!(topic.error, ErrorCode::NONE);
    assert_eq!(topic.partitions[0].leader_id, 1);
    assert_eq!(topic.partitions[0].isr_nodes, [1]);
    let ApiResponse::Metadata(response) = node.call(metadata(Some(&["manual"]), false)) else {
        panic!()
    };
    assert_eq!(
        response.topics[0].error,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
    );
    let ApiResponse::Metadata(response) = node.call(metadata(Some(&["bad/name"]), true)) else {
        panic!()
    };
    assert_eq!(response.topics[0].error, ErrorCode::INVALID_TOPIC_EXCEPTION);
    let mut off = node_with(|config| config.auto_create_topics = false);
    let ApiResponse::Metadata(response) = off.call(metadata(Some(&["auto"]), true)) else {
        panic!()
    };
    assert_eq!(
        response.topics[0].error,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
    );
    must_create(&mut node, "b", 1, &[]);
    let ApiResponse::Metadata(all) = node.call(metadata(None, true)) else {
        panic!()
    };
    let names: Vec<_> = all
        .topics
        .iter()
        .map(|t| t.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["auto", "b"]);
}

// Goal: DescribeConfigs reports overrides as DYNAMIC_TOPIC_CONFIG and the rest as
// defaults; broker configs for this node; unknown topics are errors.
#[test]
fn describe_configs() {
    let mut node = SingleNode::new(NodeConfig::default());
    must_create(&mut node, "t", 1, &[("retention.ms", "1234")]);
    let describe = |node: &mut SingleNode, resource_type, name: &str, keys: Option<Vec<String>>| {
        let request = ApiRequest::DescribeConfigs(DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type,
                resource_name: name.into(),
                configuration_keys: keys,
            }],
            include_synonyms: false,
            include_documentation: false,
        });
        let ApiResponse::DescribeConfigs(response) = node.call(request) else {
            panic!()
        };
        response.results.into_iter().next().expect("one result")
    };
    let topic = describe(&mut node, resource_type::TOPIC, "t", None);
    assert_eq!(topic.error, ErrorCode::NONE);
    let retention = topic
        .configs
        .iter()
        .find(|c| c.name == "retention.ms")
        .expect("listed");
    assert_eq!(retention.value.as_deref(), Some("1234"));
    assert_eq!(retention.config_source, config_source::DYNAMIC_TOPIC_CONFIG);
    let segment = topic
        .configs
        .iter()
        .find(|c| c.name == "segment.bytes")
        .expect("listed");
    assert_eq!(segment.config_source, config_source::DEFAULT_CONFIG);
    let filtered = describe(
        &mut node,
        resource_type::TOPIC,
        "t",
        Some(vec!["segment.bytes".into()]),
    );
    assert_eq!(filtered.configs.len(), 1);
    let missing = describe(&mut node, resource_type::TOPIC, "nope", None);
    assert_eq!(missing.error, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
    let broker = describe(&mut node, resource_type::BROKER, "1", None);
    assert_eq!(broker.error, ErrorCode::NONE);
    assert!(broker.configs.iter().any(|c| c.name == "log.retention.ms"));
    let other = describe(&mut node, resource_type::BROKER, "2", None);
    assert_eq!(other.error, ErrorCode::INVALID_REQUEST);
}

// Goal: a compacted topic is created with Kafka's compaction configs and DescribeConfigs
// reports them with their types (DOUBLE for the ratio), while a lag conflict is refused.
// Method: CreateTopics with every compaction config, then DescribeConfigs on the topic.
#[test]
fn compaction_configs_through_create_and_describe() {
    let mut node = SingleNode::new(NodeConfig::default());
    let overrides = [
        ("cleanup.policy", "delete, compact"),
        ("min.cleanable.dirty.ratio", "0.1"),
        ("delete.retention.ms", "1000"),
        ("min.compaction.lag.ms", "5"),
        ("max.compaction.lag.ms", "60000"),
        ("segment.ms", "30000"),
    ];
    must_create(&mut node, "compacted", 1, &overrides);
    let request = ApiRequest::DescribeConfigs(DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type: resource_type::TOPIC,
            resource_name: "compacted".into(),
            configuration_keys: None,
        }],
        include_synonyms: false,
        include_documentation: false,
    });
    let ApiResponse::DescribeConfigs(response) = node.call(request) else {
        panic!("DescribeConfigs answers DescribeConfigs")
    };
    let result = response.results.into_iter().next().expect("one result");
    let shown = |name: &str| {
        let entry = (result.configs.iter())
            .find(|c| c.name == name)
            .expect("listed");
        assert_eq!(entry.config_source, config_source::DYNAMIC_TOPIC_CONFIG);
        (entry.value.clone().unwrap_or_default(), entry.config_type)
    };
    assert_eq!(shown("cleanup.policy"), ("compact,delete".into(), 7));
    assert_eq!(shown("min.cleanable.dirty.ratio"), ("0.1".into(), 6));
    assert_eq!(shown("delete.retention.ms"), ("1000".into(), 5));
    assert_eq!(shown("min.compaction.lag.ms"), ("5".into(), 5));
    assert_eq!(shown("max.compaction.lag.ms"), ("60000".into(), 5));
    assert_eq!(shown("segment.ms"), ("30000".into(), 5));
    let conflict = [
        ("min.compaction.lag.ms", "10"),
        ("max.compaction.lag.ms", "9"),
    ];
    let result = create_result(&mut node, create_topic("lags", 1, &conflict));
    assert_eq!(result.error, ErrorCode::INVALID_CONFIG);
    let message = result.error_message.unwrap_or_default();
    assert!(message.contains("min.compaction.lag.ms (10) > max.compaction.lag.ms (9)"));
}

// Goal: DescribeCluster names this node as the whole cluster.
#[test]
fn describe_cluster() {
    let mut node = SingleNode::new(NodeConfig::default());
    let request = ApiRequest::DescribeCluster(DescribeClusterRequest {
        include_cluster_authorized_operations: true,
        endpoint_type: 1,
    });
    let ApiResponse::DescribeCluster(response) = node.call(request) else {
        panic!()
    };
    assert_eq!(response.error, ErrorCode::NONE);
    assert_eq!((response.controller_id, response.brokers.len()), (1, 1));
    assert_ne!(response.cluster_authorized_operations, i32::MIN);
}
