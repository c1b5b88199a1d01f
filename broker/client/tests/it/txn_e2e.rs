//! End-to-end: the native transactional producer and read_committed consumer against a real
//! `weir serve`.
//!
//! Goal: a committed transaction is visible to read_committed consumers, an aborted one
//! never is (while read_uncommitted sees it), an open transaction holds read_committed at
//! the last stable offset, and a second producer with the same transactional id fences the
//! first. Method: spawn `target/debug/weir` (or `$WEIR_BIN`) on a free port with a fresh
//! data dir, create a 2-partition topic, run the transactions in order and read the topic
//! with both isolation levels after each step. Build the binary first with
//! `cargo build -p weir`.

use std::time::Duration;

use crate::common::Broker;
use bytes::Bytes;
use weir_client::{
    Admin, AutoOffsetReset, ClientConfig, Consumer, ConsumerConfig, NewTopic, Producer,
    ProducerConfig, TopicPartition, TransactionPhase,
};
use weir_runtime::TokioRuntime;

const TOPIC: &str = "txn-e2e";

fn producer_config(client: &ClientConfig, transactional_id: &str) -> ProducerConfig {
    ProducerConfig {
        client: client.clone(),
        linger: Duration::from_millis(1),
        delivery_timeout: Duration::from_secs(20),
        transactional_id: Some(transactional_id.to_owned()),
        transaction_timeout: Duration::from_secs(30),
        ..ProducerConfig::default()
    }
}

/// Every value of the topic (both partitions) one consumer reads within `wait`.
async fn read_all(
    runtime: &TokioRuntime,
    client: &ClientConfig,
    read_committed: bool,
    wait: Duration,
) -> Vec<String> {
    let config = ConsumerConfig {
        client: client.clone(),
        auto_offset_reset: AutoOffsetReset::Earliest,
        fetch_max_wait: Duration::from_millis(50),
        read_committed,
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::connect(runtime.clone(), config)
        .await
        .expect("consumer");
    consumer
        .assign(vec![(TOPIC.to_owned(), 0), (TOPIC.to_owned(), 1)])
        .await
        .expect("assign");
    let mut values = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < deadline {
        for record in consumer
            .poll(Duration::from_millis(100))
            .await
            .expect("poll")
        {
            let value = record.value.expect("value");
            values.push(String::from_utf8_lossy(&value).into_owned());
        }
    }
    values.sort();
    values
}

/// A broker started with `config`, a runtime seeded with `seed`, a client configuration
/// for it with short backoffs, and an admin client that created the 2-partition topic.
async fn start(
    config: &str,
    seed: u64,
) -> (Broker, TokioRuntime, ClientConfig, Admin<TokioRuntime>) {
    let broker = Broker::start(config);
    let runtime = TokioRuntime::new(seed);
    let mut client = ClientConfig::with_bootstrap(broker.address.clone());
    client.retry_backoff = Duration::from_millis(20);
    client.retry_backoff_max = Duration::from_millis(200);
    let admin = Admin::connect(runtime.clone(), client.clone())
        .await
        .expect("admin connects");
    admin
        .create_topic(NewTopic::new(TOPIC, 2, 1))
        .await
        .expect("create topic");
    (broker, runtime, client, admin)
}

async fn send_all(producer: &Producer<TokioRuntime>, values: &[(i32, &str)]) {
    let mut deliveries = Vec::new();
    for (partition, value) in values {
        let value = Some(Bytes::from(value.to_string()));
        let delivery = producer
            .send_txn(TOPIC, Some(*partition), None, value, Vec::new())
            .await
            .expect("send_txn");
        deliveries.push(delivery);
    }
    for delivery in deliveries {
        delivery.await.expect("acknowledged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_abort_and_fence_against_the_real_broker() {
    let (_broker, runtime, client, _admin) = start("", 5).await;
    let producer = Producer::connect(runtime.clone(), producer_config(&client, "e2e"))
        .await
        .expect("producer");
    // Plain send is refused on a transactional producer.
    assert!(producer
        .send(
            TOPIC,
            Some(0),
            None,
            Some(Bytes::from_static(b"x")),
            Vec::new()
        )
        .await
        .is_err());
    producer.init_transactions().await.expect("init");

    // Committed: visible to read_committed.
    producer.begin_transaction().await.expect("begin");
    send_all(&producer, &[(0, "c1"), (1, "c2")]).await;
    producer.commit_transaction().await.expect("commit");
    let committed = read_all(&runtime, &client, true, Duration::from_millis(800)).await;
    assert_eq!(committed, vec!["c1", "c2"]);

    // Aborted: never visible to read_committed, visible to read_uncommitted.
    producer.begin_transaction().await.expect("begin");
    send_all(&producer, &[(0, "a1"), (1, "a2")]).await;
    producer.abort_transaction().await.expect("abort");
    let committed = read_all(&runtime, &client, true, Duration::from_millis(800)).await;
    assert_eq!(committed, vec!["c1", "c2"]);
    let uncommitted = read_all(&runtime, &client, false, Duration::from_millis(800)).await;
    assert_eq!(uncommitted, vec!["a1", "a2", "c1", "c2"]);

    // Open: read_committed stops at the last stable offset, below the open transaction.
    producer.begin_transaction().await.expect("begin");
    send_all(&producer, &[(0, "o1")]).await;
    let committed = read_all(&runtime, &client, true, Duration::from_millis(800)).await;
    assert_eq!(committed, vec!["c1", "c2"]);
    let probe = Consumer::connect(
        runtime.clone(),
        ConsumerConfig {
            client: client.clone(),
            ..ConsumerConfig::default()
        },
    )
    .await
    .expect("probe");
    let query = [(TopicPartition::new(TOPIC, 0), -1)];
    let offset = |answers: Vec<(TopicPartition, Result<_, _>)>| {
        let (_, answer) = answers.into_iter().next().expect("one answer");
        let answer: weir_client::driver::cluster::OffsetAnswer = answer.expect("offset");
        answer.offset
    };
    let latest = offset(
        probe
            .cluster()
            .list_offsets(&query, false)
            .await
            .expect("latest"),
    );
    let stable = offset(
        probe
            .cluster()
            .list_offsets(&query, true)
            .await
            .expect("stable"),
    );
    assert!(stable < latest, "LSO {stable} below the log end {latest}");

    // A second instance fences the first and aborts its open transaction.
    let successor = Producer::connect(runtime.clone(), producer_config(&client, "e2e"))
        .await
        .expect("successor");
    successor.init_transactions().await.expect("successor init");
    let zombie_send = producer
        .send_txn(
            TOPIC,
            Some(0),
            None,
            Some(Bytes::from_static(b"z")),
            Vec::new(),
        )
        .await;
    if let Ok(delivery) = zombie_send {
        assert!(delivery.await.is_err(), "a fenced producer's write failed");
    }
    assert!(producer.commit_transaction().await.is_err());
    assert!(matches!(
        producer.transaction_phase().await,
        TransactionPhase::Fatal(_)
    ));
    successor.begin_transaction().await.expect("begin");
    send_all(&successor, &[(0, "s1")]).await;
    successor.commit_transaction().await.expect("commit");
    let committed = read_all(&runtime, &client, true, Duration::from_millis(800)).await;
    assert_eq!(committed, vec!["c1", "c2", "s1"]);
}

// Goal: `send_offsets_to_transaction` makes consumed offsets the group's committed offsets
// exactly when the transaction commits, whichever shard coordinates each group.
// Method: a broker of three shards; one transaction commits offsets for eight groups (so
// groups land on other shards than the transactional id), the next aborts new ones; the
// committed offsets are read back with the admin client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_sent_to_a_transaction_commit_and_abort_with_it() {
    let (_broker, runtime, client, admin) = start("num.shards = 3\n", 7).await;
    let producer = Producer::connect(runtime.clone(), producer_config(&client, "eos"))
        .await
        .expect("producer");
    producer.init_transactions().await.expect("init");
    let groups: Vec<String> = (0..8).map(|i| format!("eos-group-{i}")).collect();
    let tp = TopicPartition::new(TOPIC, 0);
    for (offset, commit) in [(5, true), (9, false)] {
        producer.begin_transaction().await.expect("begin");
        send_all(&producer, &[(1, &format!("out-{offset}"))]).await;
        for group in &groups {
            producer
                .send_offsets_to_transaction(&[(tp.clone(), offset)], group)
                .await
                .expect("send offsets");
        }
        if commit {
            producer.commit_transaction().await.expect("commit");
        } else {
            producer.abort_transaction().await.expect("abort");
        }
    }
    // The markers of a group on another shard are written after EndTxn's answer (as in
    // Kafka, where a committed transaction's offsets are unstable for a moment).
    let committed_offset = |group: String, want: i64| {
        let (admin, tp) = (&admin, tp.clone());
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let offsets = admin
                    .list_group_offsets(&group, Some(std::slice::from_ref(&tp)))
                    .await
                    .expect("offsets");
                let found = offsets.get(&tp).copied();
                if found == Some(want) || tokio::time::Instant::now() > deadline {
                    return found;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    for group in &groups {
        assert_eq!(committed_offset(group.clone(), 5).await, Some(5), "{group}");
    }
    // Offsets alone (no record written) still make a transaction to commit.
    producer.begin_transaction().await.expect("begin");
    producer
        .send_offsets_to_transaction(&[(tp.clone(), 12)], &groups[0])
        .await
        .expect("send offsets");
    producer.commit_transaction().await.expect("commit");
    assert_eq!(committed_offset(groups[0].clone(), 12).await, Some(12));
}
