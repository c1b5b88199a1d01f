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

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use weir_client::{
    Admin, AutoOffsetReset, ClientConfig, Consumer, ConsumerConfig, NewTopic, Producer,
    ProducerConfig, TopicPartition, TransactionPhase,
};
use weir_runtime::TokioRuntime;

const TOPIC: &str = "txn-e2e";

fn weir_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("WEIR_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("debug").join("weir")
}

struct Broker {
    child: Child,
    address: String,
    _data_dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
    }
}

fn start_broker() -> Broker {
    let binary = weir_binary();
    assert!(
        binary.exists(),
        "{} not found: run `cargo build -p weir` first or set WEIR_BIN",
        binary.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let address = format!("127.0.0.1:{port}");
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(&binary)
        .args(["serve", "--listen", &address, "--data-dir"])
        .arg(data_dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn weir");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    let mut reader = BufReader::new(stdout);
    let mut read = reader.read_line(&mut line);
    // Other listeners (the WebSocket gateway) may announce themselves first.
    while matches!(read, Ok(n) if n > 0) && !line.contains("listening") {
        line.clear();
        read = reader.read_line(&mut line);
    }
    assert!(
        matches!(read, Ok(n) if n > 0) && line.contains("listening"),
        "weir did not start: {read:?} {line:?}"
    );
    Broker {
        child,
        address,
        _data_dir: data_dir,
    }
}

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
    let broker = start_broker();
    let runtime = TokioRuntime::new(5);
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
