//! End-to-end: the idempotent producer writes every record exactly once while the broker is
//! SIGKILLed and restarted under it.
//!
//! Goal: retries after connection drops and broker restarts never duplicate (the broker
//! recognises a retried batch by producer id and sequence, its producer state rebuilt at
//! recovery) and never reorder. Method: spawn `target/debug/weir serve` (or `$WEIR_BIN`) on a
//! fixed port and data dir; a task sends RECORDS records to one partition; the broker is
//! killed with SIGKILL twice mid-stream and restarted on the same port and data dir; then a
//! consumer reads the partition and every value must appear once, in send order, at the
//! offset its delivery reported. Build the binary first with `cargo build -p weir`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::Broker;
use bytes::Bytes;
use weir_client::{
    Acks, Admin, AutoOffsetReset, ClientConfig, Consumer, ConsumerConfig, NewTopic, Offset,
    Producer, ProducerConfig,
};
use weir_runtime::{Runtime, TokioRuntime};

const TOPIC: &str = "idempotent-e2e";
const RECORDS: usize = 3000;
const KILL_AFTER_ACKS: [usize; 2] = [700, 1800];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_survives_broker_kills() {
    let mut broker = Broker::start("");
    let runtime = TokioRuntime::new(11);
    let mut client = ClientConfig::with_bootstrap(broker.address.clone());
    client.retry_backoff = Duration::from_millis(20);
    client.retry_backoff_max = Duration::from_millis(200);
    let admin = Admin::connect(runtime.clone(), client.clone())
        .await
        .expect("admin connects");
    admin
        .create_topic(NewTopic::new(TOPIC, 1, 1))
        .await
        .expect("create topic");

    let producer_config = ProducerConfig {
        client: client.clone(),
        acks: Acks::All,
        idempotent: true,
        batch_bytes_max: 512,
        linger: Duration::from_millis(1),
        ..ProducerConfig::default()
    };
    let producer = Producer::connect(runtime.clone(), producer_config)
        .await
        .expect("producer");
    let acked = Arc::new(AtomicUsize::new(0));
    let sender = {
        let producer = producer.clone();
        let acked = Arc::clone(&acked);
        tokio::spawn(async move {
            let mut deliveries = Vec::new();
            for index in 0..RECORDS {
                producer.ready().await;
                let value = Bytes::from(format!("r{index:05}"));
                let delivery = producer.send(TOPIC, Some(0), None, Some(value), Vec::new());
                let acked = Arc::clone(&acked);
                deliveries.push(tokio::spawn(async move {
                    let result = delivery.await;
                    acked.fetch_add(1, Ordering::SeqCst);
                    result
                }));
                if index % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            let mut offsets = Vec::new();
            for delivery in deliveries {
                let metadata = delivery.await.expect("delivery task").expect("delivered");
                offsets.push(metadata.offset);
            }
            offsets
        })
    };
    let mut kills = 0;
    for mark in KILL_AFTER_ACKS {
        let deadline = runtime.now() + Duration::from_secs(60);
        while acked.load(Ordering::SeqCst) < mark && runtime.now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if acked.load(Ordering::SeqCst) >= RECORDS {
            break;
        }
        broker.kill9();
        tokio::time::sleep(Duration::from_millis(200)).await;
        broker.spawn();
        kills += 1;
    }
    let offsets = tokio::time::timeout(Duration::from_secs(120), sender)
        .await
        .expect("all records delivered in time")
        .expect("sender task");
    producer.flush().await;
    assert!(kills >= 1, "the stream ended before the first kill");
    let expected: Vec<i64> = (0..RECORDS as i64).collect();
    assert_eq!(offsets, expected, "acknowledged offsets are 0..n in order");

    let consumer_config = ConsumerConfig {
        client,
        auto_offset_reset: AutoOffsetReset::None,
        fetch_max_wait: Duration::from_millis(100),
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::connect(runtime.clone(), consumer_config)
        .await
        .expect("consumer");
    consumer
        .assign(vec![(TOPIC.to_owned(), 0)])
        .await
        .expect("assign");
    consumer
        .seek(TOPIC, 0, Offset::Earliest)
        .await
        .expect("seek");
    let deadline = runtime.now() + Duration::from_secs(30);
    let mut values = Vec::new();
    while values.len() < RECORDS && runtime.now() < deadline {
        for record in consumer
            .poll(Duration::from_millis(500))
            .await
            .expect("poll")
        {
            let value = record.value.clone().unwrap_or_default();
            values.push(String::from_utf8_lossy(&value).into_owned());
        }
    }
    // Anything beyond RECORDS would be a duplicate: give it a moment to show up.
    values.extend(
        consumer
            .poll(Duration::from_millis(300))
            .await
            .expect("poll")
            .into_iter()
            .map(|r| String::from_utf8_lossy(&r.value.unwrap_or_default()).into_owned()),
    );
    let expected: Vec<String> = (0..RECORDS).map(|i| format!("r{i:05}")).collect();
    assert_eq!(values.len(), RECORDS, "records read (duplicates or losses)");
    assert_eq!(values, expected);
}
