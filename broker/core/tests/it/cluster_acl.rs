//! ACLs in a cluster (issue 15 item 3): CreateAcls sent to a broker that is not the
//! controller is forwarded with the client's principal, committed through the metadata
//! quorum and then in every broker's image, so every broker denies the same write; the
//! ACLs survive a controller failover (the new controller describes and deletes them) and
//! a restart (replayed from the node's own metadata log).
//!
//! Method: three in-process brokers (real `Node`s over `MemStorage`, virtual time, all
//! three controller voters, authorizer on, `super.users = User:admin`), driven by
//! `tests/it/common/cluster.rs`; each principal has its own client connection on every node.

use crate::common;

use common::cluster::Cluster;
use weir_core::acl::{parse_super_users, AuthorizerConfig};
use weir_wire::domain::acl::*;
use weir_wire::domain::{ApiRequest, ApiResponse, CreatableTopic};
use weir_wire::error::ErrorCode;

const ADMIN: u64 = 7;
const ALICE: u64 = 8;
const MALLORY: u64 = 9;

fn acl(
    name: &str,
    pattern_type: PatternType,
    principal: &str,
    operation: AclOperation,
    permission_type: AclPermissionType,
) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::Topic,
        resource_name: name.into(),
        pattern_type,
        principal: principal.into(),
        host: "*".into(),
        operation,
        permission_type,
    }
}

fn create_acls(
    cluster: &mut Cluster,
    at: i32,
    conn: u64,
    creations: Vec<AclBinding>,
) -> Vec<ErrorCode> {
    let request = ApiRequest::CreateAcls(CreateAclsRequest { creations });
    let ApiResponse::CreateAcls(response) = cluster.call_on(at, conn, request) else {
        panic!("CreateAcls answer expected")
    };
    response.results.iter().map(|r| r.error).collect()
}

fn describe_acls(cluster: &mut Cluster, at: i32) -> Vec<AclResource> {
    let request = ApiRequest::DescribeAcls(DescribeAclsRequest {
        filter: AclFilter::any(),
    });
    let ApiResponse::DescribeAcls(response) = cluster.call_on(at, ADMIN, request) else {
        panic!("DescribeAcls answer expected")
    };
    assert_eq!(response.error, ErrorCode::NONE, "{response:?}");
    response.resources
}

fn produce_error(cluster: &mut Cluster, at: i32, conn: u64, topic: &str) -> ErrorCode {
    let batch = weir_core::testing::batch(&[1]);
    let response = cluster.call_on(at, conn, common::produce(topic, 0, batch, -1));
    common::produce_result(&response).error
}

fn topic(name: &str) -> CreatableTopic {
    CreatableTopic {
        name: name.into(),
        num_partitions: 1,
        replication_factor: 3,
        assignments: Vec::new(),
        configs: Vec::new(),
    }
}

// Goal and method: see the module comment.
#[test]
fn acls_reach_every_broker_and_survive_failover_and_restart() {
    let mut cluster = Cluster::new(&[1, 2, 3], &[1, 2, 3], |config| {
        config.authorizer = AuthorizerConfig {
            enabled: true,
            super_users: parse_super_users("User:admin"),
            ..AuthorizerConfig::default()
        };
    });
    cluster.authenticate(ADMIN, "admin");
    cluster.authenticate(ALICE, "alice");
    cluster.authenticate(MALLORY, "mallory");
    let first = cluster.agreed_controller();
    let other = (1..=3).find(|id| *id != first).expect("a non-controller");
    // The harness's own connection is User:ANONYMOUS: denied everything (no ACL covers
    // the cluster, allow.everyone.if.no.acl.found is false).
    let create = ApiRequest::CreateTopics(weir_wire::domain::CreateTopicsRequest {
        topics: vec![topic("orders")],
        timeout_ms: 30_000,
        validate_only: false,
    });
    let ApiResponse::CreateTopics(refused) = cluster.call(other, create.clone()) else {
        panic!("CreateTopics answer expected")
    };
    assert_eq!(
        refused.topics[0].error,
        ErrorCode::TOPIC_AUTHORIZATION_FAILED
    );
    // The super user creates the topic and the ACLs, both through a non-controller.
    let ApiResponse::CreateTopics(created) = cluster.call_on(other, ADMIN, create) else {
        panic!("CreateTopics answer expected")
    };
    assert_eq!(created.topics[0].error, ErrorCode::NONE, "{created:?}");
    let leader = cluster.settle("orders", &[1, 2, 3]);
    use AclOperation::*;
    use AclPermissionType::{Allow, Deny};
    let acls = vec![
        acl("orders", PatternType::Literal, "User:*", Write, Allow),
        acl("*", PatternType::Literal, "User:mallory", Write, Deny),
        acl("alice-", PatternType::Prefixed, "User:alice", Create, Allow),
    ];
    // Alice may not change ACLs (ALTER on the cluster), wherever she asks.
    let alice_tries = create_acls(&mut cluster, other, ALICE, acls.clone());
    assert_eq!(alice_tries, [ErrorCode::CLUSTER_AUTHORIZATION_FAILED; 3]);
    let errors = create_acls(&mut cluster, other, ADMIN, acls);
    assert_eq!(errors, [ErrorCode::NONE; 3]);
    // An invalid creation is refused alone, as Kafka does.
    let bad = acl("orders", PatternType::Match, "User:x", Read, Allow);
    let errors = create_acls(&mut cluster, first, ADMIN, vec![bad]);
    assert_eq!(errors, [ErrorCode::INVALID_REQUEST]);
    cluster.advance_ms(500);
    for id in [1, 2, 3] {
        assert_eq!(describe_acls(&mut cluster, id).len(), 3, "node {id}");
        // Every broker refuses mallory's write (the deny wins over User:*'s allow) and
        // alice's write to a topic no ACL lets her write (it does not exist: the same
        // answer, no existence leak).
        assert_eq!(
            produce_error(&mut cluster, id, MALLORY, "orders"),
            ErrorCode::TOPIC_AUTHORIZATION_FAILED,
            "node {id}"
        );
        assert_eq!(
            produce_error(&mut cluster, id, ALICE, "hidden"),
            ErrorCode::TOPIC_AUTHORIZATION_FAILED,
            "node {id}"
        );
    }
    assert_eq!(
        produce_error(&mut cluster, leader, ALICE, "orders"),
        ErrorCode::NONE
    );
    // Forwarding carries the principal: alice's CreateTopics through a non-controller is
    // authorized on the controller as alice (CREATE on the prefix), not as anonymous.
    let create_own = ApiRequest::CreateTopics(weir_wire::domain::CreateTopicsRequest {
        topics: vec![topic("alice-1"), topic("bob-1")],
        timeout_ms: 30_000,
        validate_only: false,
    });
    let ApiResponse::CreateTopics(mixed) = cluster.call_on(other, ALICE, create_own) else {
        panic!("CreateTopics answer expected")
    };
    let outcome: Vec<(&str, ErrorCode)> = (mixed.topics.iter())
        .map(|t| (t.name.as_str(), t.error))
        .collect();
    assert!(
        outcome.contains(&("alice-1", ErrorCode::NONE)),
        "{outcome:?}"
    );
    assert!(
        outcome.contains(&("bob-1", ErrorCode::TOPIC_AUTHORIZATION_FAILED)),
        "{outcome:?}"
    );

    // The controller dies: the new one describes the ACLs and deletes by filter.
    cluster.kill(first);
    let second = cluster.agreed_controller();
    assert_ne!(second, first);
    assert_eq!(describe_acls(&mut cluster, second).len(), 3);
    let survivor = (1..=3)
        .find(|id| *id != first && *id != second)
        .expect("a third");
    let mut filter = AclFilter::any();
    filter.principal = Some("User:alice".into());
    let request = ApiRequest::DeleteAcls(DeleteAclsRequest {
        filters: vec![filter],
    });
    let ApiResponse::DeleteAcls(deleted) = cluster.call_on(survivor, ADMIN, request) else {
        panic!("DeleteAcls answer expected")
    };
    assert_eq!(
        deleted.filter_results[0].error,
        ErrorCode::NONE,
        "{deleted:?}"
    );
    let matched: Vec<&str> = (deleted.filter_results[0].matching_acls.iter())
        .map(|m| m.acl.resource_name.as_str())
        .collect();
    assert_eq!(matched, ["alice-"]);
    cluster.advance_ms(500);
    assert_eq!(describe_acls(&mut cluster, survivor).len(), 2);

    // The old controller comes back: it replays the ACLs (and the deletion) from its own
    // log and denies mallory too.
    cluster.restart(first);
    cluster.authenticate(MALLORY, "mallory");
    cluster.authenticate(ADMIN, "admin");
    cluster.advance_ms(2_000);
    assert_eq!(describe_acls(&mut cluster, first).len(), 2);
    assert_eq!(
        produce_error(&mut cluster, first, MALLORY, "orders"),
        ErrorCode::TOPIC_AUTHORIZATION_FAILED
    );
    let counts = cluster.members[&first].node.authorizer_counts();
    assert!(counts.denied > 0 && counts.allowed > 0, "{counts:?}");
}
