//! Kafka's per-API authorization table on one node (issue 15 item 3): each row checked
//! once with a principal that is allowed one resource and not another, so both the served
//! and the refused side are seen in one answer where Kafka splits a request per item.
//!
//! Method: a single node (`SingleNode`) with the authorizer on; its harness connection 0
//! is `User:ANONYMOUS`, made a super user to play the operator; alice is connection 5.

use crate::common;

use bytes::Bytes;
use weir_core::acl::{parse_super_users, AuthorizerConfig};
use weir_core::testing::{batch, SingleNode};
use weir_core::Principal;
use weir_wire::domain::acl::*;
use weir_wire::domain::cluster::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResource, IncrementalAlterableConfig,
};
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

const ALICE: u64 = 5;

fn secured() -> SingleNode {
    let mut node = common::node_with_coordinators(|config| {
        config.authorizer = AuthorizerConfig {
            enabled: true,
            super_users: parse_super_users("User:ANONYMOUS"),
            ..AuthorizerConfig::default()
        };
    });
    node.node
        .handle_authenticated(ALICE, Principal::user("alice"));
    node
}

/// `request` as alice, syncs completed until answered.
fn as_alice(node: &mut SingleNode, request: ApiRequest) -> ApiResponse {
    let id = node.send(ALICE, request);
    for _ in 0..4 {
        if let Some(response) = node.take(id) {
            return response;
        }
        node.complete_syncs();
    }
    panic!("not answered")
}

fn allow(resource_type: ResourceType, name: &str, operation: AclOperation) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.into(),
        pattern_type: PatternType::Literal,
        principal: "User:alice".into(),
        host: "*".into(),
        operation,
        permission_type: AclPermissionType::Allow,
    }
}

fn create_acls(node: &mut SingleNode, creations: Vec<AclBinding>) -> Vec<ErrorCode> {
    let ApiResponse::CreateAcls(r) =
        node.call(ApiRequest::CreateAcls(CreateAclsRequest { creations }))
    else {
        panic!("CreateAcls answer expected")
    };
    r.results.iter().map(|r| r.error).collect()
}

fn two_topic_produce() -> ApiRequest {
    let topic = |name: &str| ProduceTopic {
        topic: TopicRef::Name(name.into()),
        partitions: vec![ProducePartition {
            partition: 0,
            records: Some(batch(&[1])),
        }],
    };
    ApiRequest::Produce(ProduceRequest {
        transactional_id: None,
        acks: Acks::All,
        timeout_ms: 30_000,
        topics: vec![topic("a"), topic("b")],
    })
}

fn errors_by_topic(response: &ApiResponse) -> Vec<(String, ErrorCode)> {
    let mut out: Vec<(String, ErrorCode)> = match response {
        ApiResponse::Produce(r) => (r.topics.iter())
            .map(|t| (format!("{:?}", t.topic), t.partitions[0].error))
            .collect(),
        ApiResponse::Metadata(r) => (r.topics.iter())
            .map(|t| (t.name.clone().unwrap_or_default(), t.error))
            .collect(),
        other => panic!("unexpected {other:?}"),
    };
    out.sort();
    out
}

// Goal: without an authorizer the ACL APIs answer SECURITY_DISABLED and nothing is
// checked. Method: a default node, DescribeAcls and a produce by an unknown user.
#[test]
fn without_an_authorizer_nothing_is_checked() {
    let mut node = common::node_with(|_| {});
    let request = DescribeAclsRequest {
        filter: AclFilter::any(),
    };
    let ApiResponse::DescribeAcls(r) = node.call(ApiRequest::DescribeAcls(request)) else {
        panic!("DescribeAcls answer expected")
    };
    assert_eq!(r.error, ErrorCode::SECURITY_DISABLED);
    common::must_create(&mut node, "a", 1, &[]);
    assert_eq!(common::must_produce(&mut node, "a", 0, batch(&[1])), 0);
    assert_eq!(node.node.authorizer_counts().denied, 0);
}

// Goal: Produce, Metadata and ACL administration follow Kafka's table per item.
// Method: alice may write "a" (which implies DESCRIBE) and nothing else.
#[test]
fn topics_are_authorized_per_item() {
    let mut node = secured();
    common::must_create(&mut node, "a", 1, &[]);
    common::must_create(&mut node, "b", 1, &[]);
    assert_eq!(
        create_acls(
            &mut node,
            vec![allow(ResourceType::Topic, "a", AclOperation::Write)]
        ),
        [ErrorCode::NONE]
    );
    // An invalid creation is refused alone.
    let mut bad = allow(ResourceType::Topic, "a", AclOperation::Any);
    bad.principal = "alice".into();
    assert_eq!(
        create_acls(&mut node, vec![bad]),
        [ErrorCode::INVALID_REQUEST]
    );

    let produced = as_alice(&mut node, two_topic_produce());
    assert_eq!(
        errors_by_topic(&produced),
        [
            ("Name(\"a\")".to_owned(), ErrorCode::NONE),
            (
                "Name(\"b\")".to_owned(),
                ErrorCode::TOPIC_AUTHORIZATION_FAILED
            )
        ]
    );
    // All topics: only the describable one is listed (internal topics are hidden too).
    let listed = as_alice(&mut node, common::metadata(None, false));
    assert_eq!(
        errors_by_topic(&listed),
        [("a".to_owned(), ErrorCode::NONE)]
    );
    // Named: the others are refused alike, whether they exist or not, and "ghost" is not
    // auto-created (no CREATE).
    let named = as_alice(
        &mut node,
        common::metadata(Some(&["a", "b", "ghost"]), true),
    );
    assert_eq!(
        errors_by_topic(&named),
        [
            ("a".to_owned(), ErrorCode::NONE),
            ("b".to_owned(), ErrorCode::TOPIC_AUTHORIZATION_FAILED),
            ("ghost".to_owned(), ErrorCode::TOPIC_AUTHORIZATION_FAILED),
        ]
    );
    let admin_view = node.call(common::metadata(Some(&["ghost"]), false));
    assert_eq!(
        errors_by_topic(&admin_view),
        [("ghost".to_owned(), ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)]
    );
    // ACL administration needs the cluster.
    let request = DescribeAclsRequest {
        filter: AclFilter::any(),
    };
    let ApiResponse::DescribeAcls(r) = as_alice(&mut node, ApiRequest::DescribeAcls(request))
    else {
        panic!("DescribeAcls answer expected")
    };
    assert_eq!(r.error, ErrorCode::CLUSTER_AUTHORIZATION_FAILED);
    let counts = node.node.authorizer_counts();
    assert!(counts.allowed >= 2 && counts.denied >= 4, "{counts:?}");
}

// Goal: groups follow Kafka's table: READ for membership, DESCRIBE per group in
// DescribeGroups, listings filtered. Method: alice may describe group "h" only.
#[test]
fn groups_are_authorized() {
    let mut node = secured();
    let describe_h = allow(ResourceType::Group, "h", AclOperation::Describe);
    assert_eq!(create_acls(&mut node, vec![describe_h]), [ErrorCode::NONE]);
    let join = ApiRequest::JoinGroup(JoinGroupRequest {
        group_id: "g".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        member_id: String::new(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupProtocol {
            name: "range".into(),
            metadata: Bytes::new(),
        }],
        reason: None,
        client_id: "c".into(),
        client_host: "h".into(),
        member_id_required: false,
    });
    let ApiResponse::JoinGroup(joined) = as_alice(&mut node, join) else {
        panic!("JoinGroup answer expected")
    };
    assert_eq!(joined.error, ErrorCode::GROUP_AUTHORIZATION_FAILED);
    let describe = ApiRequest::DescribeGroups(DescribeGroupsRequest {
        groups: vec!["g".into(), "h".into()],
        include_authorized_operations: true,
    });
    let ApiResponse::DescribeGroups(described) = as_alice(&mut node, describe) else {
        panic!("DescribeGroups answer expected")
    };
    let mut errors: Vec<(String, ErrorCode)> = (described.groups.iter())
        .map(|g| (g.group_id.clone(), g.error))
        .collect();
    errors.sort();
    assert_eq!(
        errors,
        [
            ("g".to_owned(), ErrorCode::GROUP_AUTHORIZATION_FAILED),
            ("h".to_owned(), ErrorCode::NONE)
        ]
    );
    // Asked for, h's authorized operations are what alice may do: DESCRIBE only.
    let h = (described.groups.iter())
        .find(|g| g.group_id == "h")
        .expect("h");
    assert_eq!(h.authorized_operations, 1 << AclOperation::Describe.code());
}

// Goal: ACL hosts match the connection's client address: a DENY for one host stops
// alice there only. Method: alice on two connections from two addresses, a `*` allow and
// a deny for 10.0.0.9.
#[test]
fn hosts_match_the_client_address() {
    let mut node = secured();
    common::must_create(&mut node, "a", 1, &[]);
    node.node.handle_client_host(ALICE, "10.0.0.9".into());
    let other = ALICE + 1;
    node.node
        .handle_authenticated(other, Principal::user("alice"));
    node.node.handle_client_host(other, "10.0.0.10".into());
    let mut deny = allow(ResourceType::Topic, "a", AclOperation::Write);
    deny.permission_type = AclPermissionType::Deny;
    deny.host = "10.0.0.9".into();
    let creations = vec![allow(ResourceType::Topic, "a", AclOperation::Write), deny];
    assert_eq!(create_acls(&mut node, creations), [ErrorCode::NONE; 2]);
    let denied = as_alice(&mut node, common::produce("a", 0, batch(&[1]), -1));
    assert_eq!(
        common::produce_result(&denied).error,
        ErrorCode::TOPIC_AUTHORIZATION_FAILED
    );
    let id = node.send(other, common::produce("a", 0, batch(&[1]), -1));
    node.complete_syncs();
    node.complete_syncs();
    let allowed = node.take(id).expect("answered");
    assert_eq!(common::produce_result(&allowed).error, ErrorCode::NONE);
}

// Goal: authorized-operations bit sets list only what the principal may do. Method:
// alice may write "a"; Metadata with include_*_authorized_operations.
#[test]
fn authorized_operations_follow_the_acls() {
    let mut node = secured();
    common::must_create(&mut node, "a", 1, &[]);
    let acls = vec![allow(ResourceType::Topic, "a", AclOperation::Write)];
    assert_eq!(create_acls(&mut node, acls), [ErrorCode::NONE]);
    let request = ApiRequest::Metadata(MetadataRequest {
        topics: Some(vec![TopicRef::Name("a".into())]),
        allow_auto_topic_creation: false,
        include_cluster_authorized_operations: true,
        include_topic_authorized_operations: true,
    });
    let ApiResponse::Metadata(r) = as_alice(&mut node, request) else {
        panic!("Metadata answer expected")
    };
    let bit = |op: AclOperation| 1i32 << op.code();
    // WRITE, and DESCRIBE implied by it.
    assert_eq!(
        r.topics[0].topic_authorized_operations,
        bit(AclOperation::Write) | bit(AclOperation::Describe)
    );
    assert_eq!(r.cluster_authorized_operations, 0);
}

fn commit(group: &str, topics: &[&str]) -> ApiRequest {
    ApiRequest::OffsetCommit(OffsetCommitRequest {
        group_id: group.into(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: (topics.iter())
            .map(|name| OffsetCommitTopic {
                name: (*name).into(),
                partitions: vec![OffsetCommitPartition {
                    partition: 0,
                    committed_offset: 7,
                    committed_leader_epoch: -1,
                    metadata: None,
                }],
            })
            .collect(),
    })
}

fn fetch_offsets(groups: &[(&str, Option<&[&str]>)]) -> ApiRequest {
    ApiRequest::OffsetFetch(OffsetFetchRequest {
        groups: (groups.iter())
            .map(|(group, topics)| OffsetFetchGroup {
                group_id: (*group).into(),
                topics: topics.map(|names| {
                    (names.iter())
                        .map(|name| ((*name).to_owned(), vec![0]))
                        .collect()
                }),
            })
            .collect(),
        require_stable: false,
    })
}

/// (group, topic, error, offset) of an OffsetFetch answer, sorted; a group-level error
/// is listed with topic "".
fn fetched(response: &ApiResponse) -> Vec<(String, String, ErrorCode, i64)> {
    let ApiResponse::OffsetFetch(r) = response else {
        panic!("OffsetFetch answer expected, got {response:?}")
    };
    let mut out = Vec::new();
    for g in &r.groups {
        if g.error != ErrorCode::NONE {
            out.push((g.group_id.clone(), String::new(), g.error, -1));
        }
        for t in &g.topics {
            for p in &t.partitions {
                out.push((
                    g.group_id.clone(),
                    t.name.clone(),
                    p.error,
                    p.committed_offset,
                ));
            }
        }
    }
    out.sort();
    out
}

// Goal: requests with several topics, groups or resources are split per item as Kafka's
// authorizer splits them (OffsetCommit, OffsetFetch by group and topic, CreatePartitions,
// IncrementalAlterConfigs by resource kind), and AddPartitionsToTxn adds nothing when one
// of its topics is denied. Method: alice may read group g and topic a, alter and
// alter-configs a, write a and transactional id t; the operator commits to b as well.
#[test]
fn multi_item_requests_are_authorized_per_item() {
    let mut node = secured();
    common::must_create(&mut node, "a", 1, &[]);
    common::must_create(&mut node, "b", 1, &[]);
    let acls = vec![
        allow(ResourceType::Group, "g", AclOperation::Read),
        allow(ResourceType::Topic, "a", AclOperation::Read),
        allow(ResourceType::Topic, "a", AclOperation::Alter),
        allow(ResourceType::Topic, "a", AclOperation::AlterConfigs),
        allow(ResourceType::Topic, "a", AclOperation::Write),
        allow(ResourceType::TransactionalId, "t", AclOperation::Write),
    ];
    assert!(create_acls(&mut node, acls)
        .iter()
        .all(|e| *e == ErrorCode::NONE));

    // OffsetCommit: a is committed, b refused, in one answer.
    let ApiResponse::OffsetCommit(committed) = as_alice(&mut node, commit("g", &["a", "b"])) else {
        panic!("OffsetCommit answer expected")
    };
    let mut errors: Vec<(String, ErrorCode)> = (committed.topics.iter())
        .map(|t| (t.name.clone(), t.partitions[0].1))
        .collect();
    errors.sort();
    assert_eq!(
        errors,
        [
            ("a".to_owned(), ErrorCode::NONE),
            ("b".to_owned(), ErrorCode::TOPIC_AUTHORIZATION_FAILED)
        ]
    );
    // The operator commits g's offset of b too.
    let ApiResponse::OffsetCommit(by_operator) = node.call(commit("g", &["b"])) else {
        panic!("OffsetCommit answer expected")
    };
    assert_eq!(by_operator.topics[0].partitions[0].1, ErrorCode::NONE);

    // OffsetFetch: per topic for named topics, per group for groups, and all of g's
    // topics shows only a.
    let named = as_alice(
        &mut node,
        fetch_offsets(&[("g", Some(&["a", "b"])), ("h", None)]),
    );
    assert_eq!(
        fetched(&named),
        [
            ("g".into(), "a".into(), ErrorCode::NONE, 7),
            (
                "g".into(),
                "b".into(),
                ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                -1
            ),
            (
                "h".into(),
                String::new(),
                ErrorCode::GROUP_AUTHORIZATION_FAILED,
                -1
            ),
        ]
    );
    let all = as_alice(&mut node, fetch_offsets(&[("g", None)]));
    assert_eq!(
        fetched(&all),
        [("g".into(), "a".into(), ErrorCode::NONE, 7)]
    );
    let operator_view = node.call(fetch_offsets(&[("g", None)]));
    assert_eq!(
        fetched(&operator_view).len(),
        2,
        "the operator sees a and b"
    );

    // CreatePartitions: a grows, b is refused.
    let grow = |name: &str| CreatePartitionsTopic {
        name: name.into(),
        count: 2,
        assignments: None,
    };
    let request = ApiRequest::CreatePartitions(CreatePartitionsRequest {
        topics: vec![grow("a"), grow("b")],
        timeout_ms: 30_000,
        validate_only: true,
    });
    let ApiResponse::CreatePartitions(grown) = as_alice(&mut node, request) else {
        panic!("CreatePartitions answer expected")
    };
    let mut errors: Vec<(String, ErrorCode)> = (grown.results.iter())
        .map(|r| (r.name.clone(), r.error))
        .collect();
    errors.sort();
    assert_eq!(
        errors,
        [
            ("a".to_owned(), ErrorCode::NONE),
            ("b".to_owned(), ErrorCode::TOPIC_AUTHORIZATION_FAILED)
        ]
    );

    // IncrementalAlterConfigs: topic a altered, topic b and the broker refused with their
    // own kind's error.
    let resource = |resource_type: i8, name: &str| IncrementalAlterConfigsResource {
        resource_type,
        resource_name: name.into(),
        configs: vec![IncrementalAlterableConfig {
            name: if resource_type == resource_type::TOPIC {
                "retention.ms".into()
            } else {
                "log.retention.ms".into()
            },
            operation: 0,
            value: Some("60000".into()),
        }],
    };
    let request = ApiRequest::IncrementalAlterConfigs(IncrementalAlterConfigsRequest {
        resources: vec![
            resource(resource_type::TOPIC, "a"),
            resource(resource_type::TOPIC, "b"),
            resource(resource_type::BROKER, "1"),
        ],
        validate_only: true,
    });
    let ApiResponse::IncrementalAlterConfigs(altered) = as_alice(&mut node, request) else {
        panic!("IncrementalAlterConfigs answer expected")
    };
    let mut errors: Vec<(String, ErrorCode)> = (altered.results.iter())
        .map(|r| (r.resource_name.clone(), r.error))
        .collect();
    errors.sort();
    assert_eq!(
        errors,
        [
            ("1".to_owned(), ErrorCode::CLUSTER_AUTHORIZATION_FAILED),
            ("a".to_owned(), ErrorCode::NONE),
            ("b".to_owned(), ErrorCode::TOPIC_AUTHORIZATION_FAILED)
        ]
    );

    // AddPartitionsToTxn: nothing is added when b is denied.
    let request = ApiRequest::AddPartitionsToTxn(txn::AddPartitionsToTxnRequest {
        transactional_id: "t".into(),
        producer_id: 1,
        producer_epoch: 0,
        topics: vec![
            txn::TxnTopic {
                name: "a".into(),
                partitions: vec![0],
            },
            txn::TxnTopic {
                name: "b".into(),
                partitions: vec![0],
            },
        ],
    });
    let ApiResponse::AddPartitionsToTxn(added) = as_alice(&mut node, request) else {
        panic!("AddPartitionsToTxn answer expected")
    };
    let mut errors: Vec<(String, ErrorCode)> = (added.results.iter())
        .map(|r| (r.name.clone(), r.partitions[0].error))
        .collect();
    errors.sort();
    assert_eq!(
        errors,
        [
            ("a".to_owned(), ErrorCode::OPERATION_NOT_ATTEMPTED),
            ("b".to_owned(), ErrorCode::TOPIC_AUTHORIZATION_FAILED)
        ]
    );
}

// Goal: DeleteRecords needs DELETE on each topic (Kafka's table), per topic: the allowed
// topic's records go, the other answers TOPIC_AUTHORIZATION_FAILED and keeps its records.
// Method: alice may delete in "a" only; one request for "a" and "b".
#[test]
fn delete_records_needs_delete_on_each_topic() {
    let mut node = secured();
    for name in ["a", "b"] {
        common::must_create(&mut node, name, 1, &[]);
        common::must_produce(&mut node, name, 0, batch(&[1, 2]));
    }
    let created = create_acls(
        &mut node,
        vec![allow(ResourceType::Topic, "a", AclOperation::Delete)],
    );
    assert_eq!(created, [ErrorCode::NONE]);
    let request = ApiRequest::DeleteRecords(DeleteRecordsRequest {
        topics: ["a", "b"]
            .iter()
            .map(|name| DeleteRecordsTopic {
                name: name.to_string(),
                partitions: vec![(0, 1)],
            })
            .collect(),
        timeout_ms: 30_000,
    });
    let ApiResponse::DeleteRecords(answer) = as_alice(&mut node, request) else {
        panic!("DeleteRecords answer expected")
    };
    let mut results: Vec<(String, ErrorCode, i64)> = (answer.topics.iter())
        .map(|t| {
            (
                t.name.clone(),
                t.partitions[0].error,
                t.partitions[0].low_watermark,
            )
        })
        .collect();
    results.sort();
    assert_eq!(
        results,
        [
            ("a".to_string(), ErrorCode::NONE, 1),
            ("b".to_string(), ErrorCode::TOPIC_AUTHORIZATION_FAILED, -1)
        ]
    );
    let earliest = |node: &mut SingleNode, name: &str| {
        let response = node.call(common::list_offsets(name, 0, -2));
        common::list_result(&response).offset
    };
    assert_eq!((earliest(&mut node, "a"), earliest(&mut node, "b")), (1, 0));
}
