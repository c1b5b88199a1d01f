//! End-to-end consumer groups: weir-client's `subscribe` and group admin against a real
//! `weir` broker process.
//!
//! Goal: two members split a 6-partition topic without overlap and together read every
//! record; when one closes, the other takes every partition; committed offsets survive the
//! members, so a new member resumes where the group left off; the admin sees it all
//! (list, describe with decoded assignments, committed offsets, offset changes refused while
//! the group has members and accepted once it is empty, delete).
//! Method: spawn `target/debug/weir serve` with `group.initial.rebalance.delay.ms = 0`, drive
//! each member in its own task polling in a loop, and watch shared state until it settles.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::Broker;
use bytes::Bytes;
use weir_client::{
    Admin, AutoOffsetReset, ClientConfig, Consumer, ConsumerConfig, ErrorCode, GroupConfig,
    NewTopic, Producer, ProducerConfig, TopicPartition,
};
use weir_runtime::TokioRuntime;

const TOPIC: &str = "group-e2e";
const GROUP: &str = "e2e-group";
const PARTITIONS: i32 = 6;
const PER_PARTITION: usize = 10;

/// Fast group timers so rebalances settle in well under a second.
fn group_config() -> GroupConfig {
    GroupConfig {
        session_timeout: Duration::from_secs(6),
        rebalance_timeout: Duration::from_secs(10),
        heartbeat_interval: Duration::from_millis(200),
        enable_auto_commit: false,
        ..GroupConfig::new(GROUP)
    }
}

async fn member(client: &ClientConfig) -> Consumer<TokioRuntime> {
    let config = ConsumerConfig {
        client: client.clone(),
        auto_offset_reset: AutoOffsetReset::Earliest,
        fetch_max_wait: Duration::from_millis(100),
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::connect(TokioRuntime::new(3), config)
        .await
        .expect("consumer connects");
    consumer
        .subscribe(group_config(), vec![TOPIC.to_owned()])
        .await
        .expect("subscribe");
    consumer
}

/// What a polling member shares with the test: its assignment and the records it read.
#[derive(Default)]
struct Seen {
    assignment: Vec<TopicPartition>,
    records: Vec<(i32, i64)>,
}

/// Polls (committing after each poll) until `stop` is set; returns the consumer.
fn drive(
    mut consumer: Consumer<TokioRuntime>,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<Mutex<bool>>,
) -> tokio::task::JoinHandle<Consumer<TokioRuntime>> {
    tokio::spawn(async move {
        while !*stop.lock().expect("lock") {
            let records = consumer
                .poll(Duration::from_millis(100))
                .await
                .expect("poll");
            if !records.is_empty() {
                // A commit racing a rebalance fails; the next poll rejoins.
                drop(consumer.commit().await);
            }
            let mut seen = seen.lock().expect("lock");
            seen.assignment = consumer.assignment();
            seen.records
                .extend(records.iter().map(|r| (r.partition, r.offset)));
        }
        consumer
    })
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..300 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn produce(client: &ClientConfig, per_partition: usize) {
    let producer = Producer::connect(
        TokioRuntime::new(5),
        ProducerConfig {
            client: client.clone(),
            ..ProducerConfig::default()
        },
    )
    .await
    .expect("producer");
    let mut pending = Vec::new();
    for partition in 0..PARTITIONS {
        for index in 0..per_partition {
            let value = Bytes::from(format!("{partition}-{index}"));
            pending.push(producer.send(TOPIC, Some(partition), None, Some(value), Vec::new()));
        }
    }
    for delivery in pending {
        delivery.await.expect("delivered");
    }
}

fn all_partitions() -> BTreeSet<TopicPartition> {
    (0..PARTITIONS)
        .map(|p| TopicPartition::new(TOPIC, p))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_split_take_over_and_resume() {
    let broker = Broker::start("group.initial.rebalance.delay.ms = 0\n");
    let client = ClientConfig::with_bootstrap(broker.address.clone());
    let admin = Admin::connect(TokioRuntime::new(1), client.clone())
        .await
        .expect("admin");
    admin
        .create_topic(NewTopic::new(TOPIC, PARTITIONS, 1))
        .await
        .expect("create topic");
    produce(&client, PER_PARTITION).await;

    // Two members split the six partitions and together read all sixty records.
    let stop_a = Arc::new(Mutex::new(false));
    let stop_b = Arc::new(Mutex::new(false));
    let seen_a = Arc::new(Mutex::new(Seen::default()));
    let seen_b = Arc::new(Mutex::new(Seen::default()));
    let task_a = drive(member(&client).await, seen_a.clone(), stop_a.clone());
    let task_b = drive(member(&client).await, seen_b.clone(), stop_b.clone());
    wait_until("a 3/3 split covering every record", || {
        let a = seen_a.lock().expect("lock");
        let b = seen_b.lock().expect("lock");
        let read: BTreeSet<(i32, i64)> = a.records.iter().chain(&b.records).copied().collect();
        a.assignment.len() == 3 && b.assignment.len() == 3 && read.len() == 60
    })
    .await;
    {
        let a = seen_a.lock().expect("lock");
        let b = seen_b.lock().expect("lock");
        let a_set: BTreeSet<_> = a.assignment.iter().cloned().collect();
        let b_set: BTreeSet<_> = b.assignment.iter().cloned().collect();
        assert!(a_set.is_disjoint(&b_set), "overlap: {a_set:?} {b_set:?}");
        let union: BTreeSet<_> = a_set.union(&b_set).cloned().collect();
        assert_eq!(union, all_partitions());
    }

    // The admin sees a Stable consumer group with two members and decoded assignments.
    let groups = admin.list_groups().await.expect("list groups");
    assert!(groups
        .iter()
        .any(|g| g.group_id == GROUP && g.protocol_type == "consumer"));
    let described = admin.describe_group(GROUP).await.expect("describe");
    assert_eq!(described.state, "Stable");
    assert_eq!(described.protocol, "range");
    assert_eq!(described.members.len(), 2);
    let assigned: BTreeSet<_> = (described.members.iter())
        .flat_map(|m| m.assignment.iter().cloned())
        .collect();
    assert_eq!(assigned, all_partitions());
    assert!(described
        .members
        .iter()
        .all(|m| m.client_host.starts_with('/')));
    // Offsets cannot be changed from outside while the group has members.
    let refused = admin
        .alter_group_offsets(GROUP, &[(TopicPartition::new(TOPIC, 0), 0)])
        .await;
    assert!(
        refused.is_err(),
        "alter offsets of a live group: {refused:?}"
    );

    // A leaves; B takes all six partitions and reads what is produced next.
    *stop_a.lock().expect("lock") = true;
    let consumer_a = task_a.await.expect("task a");
    consumer_a.close().await.expect("close a");
    wait_until("b owns every partition", || {
        seen_b.lock().expect("lock").assignment.len() == 6
    })
    .await;
    produce(&client, 1).await;
    wait_until("b reads the new records", || {
        let b = seen_b.lock().expect("lock");
        (0..PARTITIONS).all(|p| b.records.contains(&(p, 10)))
    })
    .await;
    *stop_b.lock().expect("lock") = true;
    let mut consumer_b = task_b.await.expect("task b");
    consumer_b.commit().await.expect("final commit");
    consumer_b.close().await.expect("close b");

    // The group is empty with offset 11 everywhere; a new member resumes there.
    let committed = admin
        .list_group_offsets(GROUP, None)
        .await
        .expect("offsets");
    let expected: BTreeMap<TopicPartition, i64> =
        all_partitions().into_iter().map(|tp| (tp, 11)).collect();
    assert_eq!(committed, expected);
    let described = admin.describe_group(GROUP).await.expect("describe");
    assert_eq!(described.state, "Empty");
    produce(&client, 1).await;
    let seen_c = Arc::new(Mutex::new(Seen::default()));
    let stop_c = Arc::new(Mutex::new(false));
    let task_c = drive(member(&client).await, seen_c.clone(), stop_c.clone());
    wait_until("c reads the six newest records", || {
        seen_c.lock().expect("lock").records.len() >= 6
    })
    .await;
    *stop_c.lock().expect("lock") = true;
    let consumer_c = task_c.await.expect("task c");
    let read: BTreeSet<(i32, i64)> = seen_c
        .lock()
        .expect("lock")
        .records
        .iter()
        .copied()
        .collect();
    let expected: BTreeSet<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 11)).collect();
    assert_eq!(read, expected, "resumed from the committed offsets");
    consumer_c.close().await.expect("close c");

    // Empty again: offsets can be reset from outside, and the group deleted.
    admin
        .alter_group_offsets(GROUP, &[(TopicPartition::new(TOPIC, 0), 3)])
        .await
        .expect("alter offsets of an empty group");
    let committed = admin
        .list_group_offsets(GROUP, None)
        .await
        .expect("offsets");
    assert_eq!(committed[&TopicPartition::new(TOPIC, 0)], 3);
    let deleted = admin
        .delete_groups(vec![GROUP.to_owned()])
        .await
        .expect("delete");
    assert!(deleted[0].1.is_ok(), "{deleted:?}");
    let missing = admin
        .delete_groups(vec![GROUP.to_owned()])
        .await
        .expect("delete");
    assert_eq!(
        missing[0].1.as_ref().err().and_then(|e| e.code()),
        Some(ErrorCode::GROUP_ID_NOT_FOUND)
    );
}
