//! `cluster-acl` (issue 15 item 6): ACLs are records of the metadata log, so crashes and
//! failovers must leave every broker enforcing the same ones.
//!
//! The brokers of `cluster-crash` run with the authorizer on
//! (`allow.everyone.if.no.acl.found = true`, so the workload's own topic, which no ACL
//! covers, stays open to its anonymous producers). The intruder host creates a second
//! topic, [`DENIED_TOPIC`], and two ACLs on it through the active controller: ALLOW
//! `User:*` ALL and DENY `User:*` WRITE. A broker that lost either record would acknowledge
//! a write there (no ACL at all falls back to allow-everyone; ALLOW alone allows it). Once
//! every broker describes both, the intruder writes to that topic (acks=all, one record at a
//! time, every partition in turn) until the final phase, through the harness's crashes.
//!
//! Recorded as violations:
//! - any acknowledged intruder write (a broker accepted what the ACLs deny);
//! - any record of [`DENIED_TOPIC`] in the final phase's read of it (read access is
//!   allowed, so the read itself must succeed);
//! - a run whose intruder was never refused, or whose ACLs never reached every broker
//!   (the check would have checked nothing).
//!
//! The planted bug `planted-acl-allow-wins` (weir-core's authorizer lets an ALLOW outweigh
//! a DENY) must be caught here.

use std::time::Duration;

use bytes::Bytes;
use weir_client::driver::connection::Connection;
use weir_client::{Acks, Admin, ClientError, Consumer, NewTopic, Producer, ProducerConfig};
use weir_runtime::Runtime;
use weir_wire::domain::acl::{
    AclBinding, AclFilter, AclOperation, AclPermissionType, CreateAclsRequest, DescribeAclsRequest,
    PatternType, ResourceType,
};
use weir_wire::domain::{ApiRequest, ApiResponse};
use weir_wire::error::ErrorCode;

use crate::workload::{
    client_config, consumer_config, sleep, wait_topic, Actors, BROKER_PORT, FINAL_PHASE_BUDGET,
};
use crate::workload_cluster::{already_exists, host};

/// The topic every principal may read but none may write.
pub const DENIED_TOPIC: &str = "sim-denied";
/// How long a request of the setup waits for its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause between the intruder's sends.
const SEND_EVERY: Duration = Duration::from_millis(20);

/// Turn the authorizer on in a broker's configuration.
pub fn authorize(config: &mut weir::config::ServerConfig) {
    config.node.authorizer = weir_core::acl::AuthorizerConfig {
        enabled: true,
        allow_everyone_if_no_acl_found: true,
        ..weir_core::acl::AuthorizerConfig::default()
    };
}

/// The two ACLs on [`DENIED_TOPIC`]: everything allowed, writing denied.
fn bindings() -> [AclBinding; 2] {
    let binding = |permission_type, operation| AclBinding {
        resource_type: ResourceType::Topic,
        resource_name: DENIED_TOPIC.to_owned(),
        pattern_type: PatternType::Literal,
        principal: "User:*".to_owned(),
        host: "*".to_owned(),
        operation,
        permission_type,
    };
    [
        binding(AclPermissionType::Allow, AclOperation::All),
        binding(AclPermissionType::Deny, AclOperation::Write),
    ]
}

/// The intruder host: set the ACLs up, then write where they deny it until the final phase.
pub async fn intruder<R: Runtime>(runtime: R, actors: Actors) {
    wait_topic(&runtime, &actors).await;
    if !setup(&runtime, &actors).await {
        return;
    }
    actors.control.lock().cluster.acl_ready = true;
    let config = ProducerConfig {
        client: client_config(&actors.bootstrap, "intruder"),
        acks: Acks::All,
        retries: 0,
        ..ProducerConfig::default()
    };
    let partitions = i64::from(actors.spec.partitions.max(1));
    let mut sent: i64 = 0;
    while !actors.control.final_phase() {
        let Ok(producer) = Producer::connect(runtime.clone(), config.clone()).await else {
            sleep(&runtime, Duration::from_millis(100)).await;
            continue;
        };
        while !actors.control.final_phase() {
            let partition = i32::try_from(sent % partitions).unwrap_or(0);
            let value = Bytes::from(format!("intruder-{sent}"));
            sent += 1;
            let delivery = producer.send(DENIED_TOPIC, Some(partition), None, Some(value), vec![]);
            match delivery.await {
                Ok(metadata) => actors.recorder.violation(format!(
                    "a broker acknowledged a write the ACLs deny: {DENIED_TOPIC}-{partition} \
                     at offset {}",
                    metadata.offset
                )),
                Err(ClientError::Kafka {
                    code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                    ..
                }) => actors.control.lock().cluster.acl_denials += 1,
                Err(ClientError::Closed) => break,
                Err(_) => {}
            }
            sleep(&runtime, SEND_EVERY).await;
        }
    }
}

/// Create [`DENIED_TOPIC`] and its ACLs, then wait until every broker describes both ACLs.
/// False when the final phase came first.
async fn setup<R: Runtime>(runtime: &R, actors: &Actors) -> bool {
    let nodes = actors.spec.cluster_nodes;
    let addresses: Vec<String> = (1..=nodes)
        .map(|id| format!("{}:{BROKER_PORT}", host(id)))
        .collect();
    let config = client_config(&actors.bootstrap, "acl-admin");
    // The topic, through whichever broker answers (the controller decides).
    'topic: loop {
        for address in &addresses {
            if actors.control.final_phase() {
                return false;
            }
            let admin_config = client_config(address, "acl-admin");
            let Ok(admin) = Admin::connect(runtime.clone(), admin_config).await else {
                continue;
            };
            let topic = NewTopic {
                configs: vec![("min.insync.replicas".to_owned(), "2".to_owned())],
                ..NewTopic::new(DENIED_TOPIC, actors.spec.partitions, 3)
            };
            match admin.create_topic(topic).await {
                Ok(()) => break 'topic,
                Err(error) if already_exists(&error) => break 'topic,
                Err(_) => {}
            }
        }
        sleep(runtime, Duration::from_millis(100)).await;
    }
    // The ACLs: creating one that exists is a no-op, so a retry after a lost answer is safe.
    let create = ApiRequest::CreateAcls(CreateAclsRequest {
        creations: bindings().to_vec(),
    });
    'acls: loop {
        for address in &addresses {
            if actors.control.final_phase() {
                return false;
            }
            let Ok(connection) = Connection::open(runtime.clone(), address, &config).await else {
                continue;
            };
            if let Ok(ApiResponse::CreateAcls(response)) =
                connection.request(&create, REQUEST_TIMEOUT).await
            {
                if response.results.iter().all(|r| r.error == ErrorCode::NONE) {
                    break 'acls;
                }
            }
        }
        sleep(runtime, Duration::from_millis(100)).await;
    }
    // Every broker's image holds both.
    let describe = ApiRequest::DescribeAcls(DescribeAclsRequest {
        filter: AclFilter {
            resource_type: ResourceType::Topic,
            resource_name: Some(DENIED_TOPIC.to_owned()),
            pattern_type: PatternType::Literal,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission_type: AclPermissionType::Any,
        },
    });
    for address in &addresses {
        loop {
            if actors.control.final_phase() {
                return false;
            }
            if let Ok(connection) = Connection::open(runtime.clone(), address, &config).await {
                if let Ok(ApiResponse::DescribeAcls(response)) =
                    connection.request(&describe, REQUEST_TIMEOUT).await
                {
                    let described: usize = response.resources.iter().map(|r| r.acls.len()).sum();
                    if response.error == ErrorCode::NONE && described == bindings().len() {
                        break;
                    }
                }
            }
            sleep(runtime, Duration::from_millis(50)).await;
        }
    }
    true
}

/// The final phase's check of [`DENIED_TOPIC`] (run by the final reader's host before its
/// own reads): the ACLs reached every broker, the intruder was refused, and the topic is
/// empty on every partition.
pub async fn final_check<R: Runtime>(runtime: &R, actors: &Actors) {
    while !actors.control.final_phase() {
        sleep(runtime, Duration::from_millis(50)).await;
    }
    let (ready, denials) = {
        let control = actors.control.lock();
        (control.cluster.acl_ready, control.cluster.acl_denials)
    };
    if !ready {
        actors
            .recorder
            .violation("the denying ACL never reached every broker before the final phase");
        return;
    }
    if denials == 0 {
        actors
            .recorder
            .violation("the intruder was never refused: the ACL check checked nothing");
    }
    let deadline = runtime.now() + FINAL_PHASE_BUDGET;
    let partitions = actors.spec.partitions;
    while runtime.now() < deadline {
        let config = consumer_config(&actors.bootstrap, "acl-auditor");
        let Ok(mut consumer) = Consumer::connect(runtime.clone(), config).await else {
            sleep(runtime, Duration::from_millis(200)).await;
            continue;
        };
        let assignment = (0..partitions)
            .map(|p| (DENIED_TOPIC.to_owned(), p))
            .collect();
        if consumer.assign(assignment).await.is_err() {
            sleep(runtime, Duration::from_millis(200)).await;
            continue;
        }
        while runtime.now() < deadline {
            let Ok(records) = consumer.poll(Duration::from_millis(200)).await else {
                break;
            };
            if let Some(record) = records.first() {
                actors.recorder.violation(format!(
                    "{DENIED_TOPIC}-{} holds a record the ACLs deny at offset {} ({} in all)",
                    record.partition,
                    record.offset,
                    records.len()
                ));
                return;
            }
            let read_all = (0..partitions).all(|p| {
                let end = consumer.high_watermark(DENIED_TOPIC, p);
                let position = consumer.position(DENIED_TOPIC, p).unwrap_or(-1);
                end.is_some_and(|end| end >= 0 && position >= end)
            });
            if read_all {
                if let Some(p) = (0..partitions)
                    .find(|p| consumer.high_watermark(DENIED_TOPIC, *p).unwrap_or(0) > 0)
                {
                    actors.recorder.violation(format!(
                        "{DENIED_TOPIC}-{p} has a high watermark above 0: a denied write was \
                         appended"
                    ));
                }
                return;
            }
        }
    }
    actors.recorder.violation(format!(
        "the final read of {DENIED_TOPIC} did not reach its end in time"
    ));
}
