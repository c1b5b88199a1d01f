//! End-to-end: weir-client against a real `weir` broker process.
//!
//! Goal: producer, consumer and admin interoperate with the real server over TCP — keys land
//! on Java's murmur2 partitions, records come back in order per key with the offsets the
//! producer was told, and seek by earliest/timestamp/latest resolves through ListOffsets.
//! Method: spawn `target/debug/weir serve` (or `$WEIR_BIN`) on a free port with a temporary
//! data dir, then drive it with the client on the tokio runtime. Build the binary first with
//! `cargo build -p weir`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::Broker;
use bytes::Bytes;
use weir_client::{
    Acks, Admin, AutoOffsetReset, ClientConfig, Consumer, ConsumerConfig, ConsumerRecord, NewTopic,
    Offset, OffsetSpec, Producer, ProducerConfig, RecordMetadata, TopicPartition,
};
use weir_runtime::{Runtime, TokioRuntime};

const TOPIC: &str = "e2e-keys";
const PARTITIONS: i32 = 3;
const RECORDS: usize = 1000;
const KEYS: usize = 20;

async fn poll_until(
    consumer: &mut Consumer<TokioRuntime>,
    count: usize,
    timeout: Duration,
) -> Vec<ConsumerRecord> {
    let runtime = consumer.cluster().runtime().clone();
    let deadline = runtime.now() + timeout;
    let mut records = Vec::new();
    while records.len() < count && runtime.now() < deadline {
        records.extend(
            consumer
                .poll(Duration::from_millis(500))
                .await
                .expect("poll"),
        );
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_consume_seek_against_real_broker() {
    let broker = Broker::start("");
    let runtime = TokioRuntime::new(7);
    let client = ClientConfig::with_bootstrap(broker.address.clone());

    // Admin: create the topic and see it.
    let admin = Admin::connect(runtime.clone(), client.clone())
        .await
        .expect("admin connects");
    admin
        .create_topic(NewTopic::new(TOPIC, PARTITIONS, 1))
        .await
        .expect("create topic");
    let again = admin
        .create_topic(NewTopic::new(TOPIC, PARTITIONS, 1))
        .await;
    assert_eq!(
        again.err().and_then(|e| e.code()),
        Some(weir_client::ErrorCode::TOPIC_ALREADY_EXISTS)
    );
    assert!(admin
        .list_topics(false)
        .await
        .expect("list")
        .contains(&TOPIC.to_owned()));
    let described = admin
        .describe_topics(&[TOPIC.to_owned()])
        .await
        .expect("describe");
    let description = described
        .into_iter()
        .next()
        .expect("one topic")
        .expect("described");
    assert_eq!(description.partitions.len(), 3);
    let cluster = admin.describe_cluster().await.expect("describe cluster");
    assert_eq!(cluster.brokers.len(), 1);

    // Produce 1000 keyed records with acks=all; a pause in the middle marks a timestamp.
    let producer_config = ProducerConfig {
        client: client.clone(),
        acks: Acks::All,
        ..ProducerConfig::default()
    };
    let producer = Producer::connect(runtime.clone(), producer_config)
        .await
        .expect("producer");
    let mut acks: Vec<(String, RecordMetadata)> = Vec::new();
    let mut middle_ms = 0;
    for half in 0..2 {
        let mut pending = Vec::new();
        for index in half * RECORDS / 2..(half + 1) * RECORDS / 2 {
            let key = format!("key-{}", index % KEYS);
            let value = Bytes::from(index.to_string());
            producer.ready().await;
            let delivery = producer.send(
                TOPIC,
                None,
                Some(Bytes::from(key.clone())),
                Some(value),
                Vec::new(),
            );
            pending.push((key, delivery));
        }
        for (key, delivery) in pending {
            acks.push((key, delivery.await.expect("acks=all delivery")));
        }
        if half == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            middle_ms = runtime.wall_ms();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    producer.flush().await;

    // Same key -> same partition, and that partition is Java's murmur2 choice.
    let mut partition_of_key: BTreeMap<String, i32> = BTreeMap::new();
    let mut last_offset: BTreeMap<i32, i64> = BTreeMap::new();
    for (key, metadata) in &acks {
        let expected = weir_wire::murmur2::partition_for_key(key.as_bytes(), PARTITIONS);
        assert_eq!(metadata.partition, expected, "key {key}");
        assert_eq!(
            *partition_of_key
                .entry(key.clone())
                .or_insert(metadata.partition),
            metadata.partition
        );
        // Offsets grow in send order within a partition.
        let previous = last_offset.insert(metadata.partition, metadata.offset);
        assert!(
            previous.is_none_or(|p| p < metadata.offset),
            "{metadata:?} after {previous:?}"
        );
    }
    let counts: BTreeMap<i32, i64> = last_offset.iter().map(|(&p, &o)| (p, o + 1)).collect();
    assert_eq!(
        counts.values().sum::<i64>(),
        RECORDS as i64,
        "offsets start at 0, no gaps"
    );

    // Consume everything from the earliest offsets.
    let consumer_config = ConsumerConfig {
        client: client.clone(),
        auto_offset_reset: AutoOffsetReset::None,
        fetch_max_wait: Duration::from_millis(100),
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::connect(runtime.clone(), consumer_config)
        .await
        .expect("consumer");
    let all: Vec<(String, i32)> = (0..PARTITIONS).map(|p| (TOPIC.to_owned(), p)).collect();
    consumer.assign(all.clone()).await.expect("assign");
    for partition in 0..PARTITIONS {
        assert_eq!(
            consumer
                .seek(TOPIC, partition, Offset::Earliest)
                .await
                .expect("seek"),
            0
        );
    }
    let records = poll_until(&mut consumer, RECORDS, Duration::from_secs(30)).await;
    assert_eq!(records.len(), RECORDS);
    let acked: BTreeMap<(i32, i64), &str> = acks
        .iter()
        .map(|(key, m)| ((m.partition, m.offset), key.as_str()))
        .collect();
    let mut last_value_of_key: BTreeMap<String, usize> = BTreeMap::new();
    for record in &records {
        let key = String::from_utf8(record.key.as_deref().unwrap_or_default().to_vec())
            .expect("utf8 key");
        assert_eq!(
            acked.get(&(record.partition, record.offset)),
            Some(&key.as_str())
        );
        assert_eq!(partition_of_key.get(&key), Some(&record.partition));
        let value: usize = std::str::from_utf8(record.value.as_deref().unwrap_or_default())
            .ok()
            .and_then(|text| text.parse().ok())
            .expect("numeric value");
        let previous = last_value_of_key.insert(key.clone(), value);
        assert!(
            previous.is_none_or(|p| p < value),
            "key {key}: {value} after {previous:?}"
        );
    }
    for partition in 0..PARTITIONS {
        assert_eq!(
            consumer.position(TOPIC, partition),
            counts.get(&partition).copied()
        );
    }

    // Admin ListOffsets agrees with what was produced.
    let queries = (0..PARTITIONS)
        .map(|p| (TopicPartition::new(TOPIC, p), OffsetSpec::Latest))
        .collect();
    for listed in admin.list_offsets(queries).await.expect("list offsets") {
        assert_eq!(
            Some(listed.offset),
            counts.get(&listed.topic_partition.partition).copied()
        );
    }

    // Seek by timestamp: exactly the second half comes back.
    for partition in 0..PARTITIONS {
        consumer
            .seek(TOPIC, partition, Offset::Timestamp(middle_ms))
            .await
            .expect("seek ts");
    }
    let second_half = poll_until(&mut consumer, RECORDS / 2, Duration::from_secs(30)).await;
    assert_eq!(second_half.len(), RECORDS / 2);
    assert!(second_half
        .iter()
        .all(|record| record.timestamp >= middle_ms));
    let mut values: Vec<usize> = second_half
        .iter()
        .filter_map(|r| std::str::from_utf8(r.value.as_deref()?).ok()?.parse().ok())
        .collect();
    values.sort_unstable();
    assert_eq!(values, (RECORDS / 2..RECORDS).collect::<Vec<_>>());

    // Seek latest: nothing old comes back, a new record (acks=1) does.
    for partition in 0..PARTITIONS {
        let end = consumer
            .seek(TOPIC, partition, Offset::Latest)
            .await
            .expect("seek latest");
        assert_eq!(Some(end), counts.get(&partition).copied());
    }
    assert!(consumer
        .poll(Duration::from_millis(300))
        .await
        .expect("poll")
        .is_empty());
    let leader_ack = Producer::connect(
        runtime.clone(),
        ProducerConfig {
            client: client.clone(),
            acks: Acks::Leader,
            ..ProducerConfig::default()
        },
    )
    .await
    .expect("acks=1 producer");
    let metadata = leader_ack
        .send(
            TOPIC,
            Some(1),
            None,
            Some(Bytes::from_static(b"late")),
            Vec::new(),
        )
        .await
        .expect("acks=1 delivery");
    assert_eq!(Some(metadata.offset), counts.get(&1).copied());
    let late = poll_until(&mut consumer, 1, Duration::from_secs(10)).await;
    assert_eq!(late.len(), 1);
    assert_eq!(
        (late[0].partition, late[0].value.as_deref()),
        (1, Some(&b"late"[..]))
    );

    // acks=0: the broker sends no response; the records still arrive.
    let fire_and_forget = Producer::connect(
        runtime.clone(),
        ProducerConfig {
            client,
            acks: Acks::None,
            ..ProducerConfig::default()
        },
    )
    .await
    .expect("acks=0 producer");
    let mut deliveries = Vec::new();
    for index in 0..10 {
        let value = Bytes::from(format!("zero-{index}"));
        deliveries.push(fire_and_forget.send(TOPIC, Some(2), None, Some(value), Vec::new()));
    }
    for delivery in deliveries {
        assert_eq!(delivery.await.expect("acks=0 delivery").offset, -1);
    }
    let unacked = poll_until(&mut consumer, 10, Duration::from_secs(10)).await;
    let values: Vec<&[u8]> = unacked.iter().filter_map(|r| r.value.as_deref()).collect();
    let expected: Vec<Vec<u8>> = (0..10).map(|i| format!("zero-{i}").into_bytes()).collect();
    assert_eq!(
        values,
        expected.iter().map(Vec::as_slice).collect::<Vec<_>>()
    );
}
