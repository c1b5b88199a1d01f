//! A broker of three shards (`num.shards`, docs/sharding.md) driven with raw frames, for
//! what a real client cannot force: one request spanning every shard.
// A test of a real process's timing (a long poll ended early), measured by the real clock.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use weir::config::ServerConfig;
use weir_wire::domain::*;
use weir_wire::records;

use crate::common::{batch, InProcess};

const PARTITIONS: i32 = 6;

fn sharded(data_dir: &std::path::Path) -> InProcess {
    let mut config = ServerConfig::from_toml_str("num.shards = 3", "test").expect("valid");
    config.listen = "127.0.0.1:0".to_owned();
    config.data_dir = data_dir.to_owned();
    assert_eq!(config.shards, weir::config::ShardCount::Exactly(3));
    InProcess::start_with(config)
}

fn produce_every_partition(topic: &str, acks: i16, prefix: &str) -> ApiRequest {
    ApiRequest::Produce(ProduceRequest {
        transactional_id: None,
        acks: Acks::from_i16(acks).expect("0, 1 or -1"),
        timeout_ms: 5_000,
        topics: vec![ProduceTopic {
            topic: TopicRef::Name(topic.to_owned()),
            partitions: (0..PARTITIONS)
                .map(|partition| ProducePartition {
                    partition,
                    records: Some(batch(&format!("{prefix}{partition}"), 2)),
                })
                .collect(),
        }],
    })
}

fn fetch_every_partition(topic: &str, offset: i64, max_wait_ms: i32) -> ApiRequest {
    crate::common::fetch_request(topic, 0..PARTITIONS, offset, max_wait_ms)
}

/// Each partition's (error, high watermark, record values) of a merged fetch answer, by
/// partition; a partition answered twice fails the test.
fn by_partition(response: &ApiResponse) -> Vec<(i32, i16, i64, Vec<String>)> {
    let ApiResponse::Fetch(fetch) = response else {
        panic!("not a fetch answer: {response:?}");
    };
    assert_eq!(fetch.topics.len(), 1, "one entry per topic: {fetch:?}");
    let mut out: Vec<_> = (fetch.topics[0].partitions.iter())
        .map(|p| {
            let values = match &p.records {
                FetchRecords::Bytes(bytes) => records::decode_records(bytes.clone())
                    .expect("records decode")
                    .into_iter()
                    .map(|r| String::from_utf8_lossy(&r.value.unwrap_or_default()).into_owned())
                    .collect(),
                FetchRecords::Empty => Vec::new(),
                other => panic!("unresolved read {other:?}"),
            };
            (p.partition, p.error.0, p.high_watermark, values)
        })
        .collect();
    out.sort_by_key(|p| p.0);
    let partitions: Vec<i32> = out.iter().map(|p| p.0).collect();
    assert_eq!(
        partitions,
        (0..PARTITIONS).collect::<Vec<_>>(),
        "each partition once"
    );
    out
}

// Goal: a request spanning every shard is answered as one. A Produce to every partition is
// split and its answers merged (each partition once, every one written); an acks=0 Produce
// spanning shards gets no answer, and the request after it is answered in its turn; a
// Fetch of every partition with nothing to read parks on every shard, and once a record
// arrives on one shard the others answer at once instead of at their long-poll deadline.
// Method: an in-process broker of 3 shards, raw frames; the fetch waits up to 30 s, so an
// answer within 10 s of the produce can only come from the other parts being woken.
#[test]
fn requests_spanning_shards_are_split_and_merged() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = sharded(data_dir.path());
    let mut client = server.connect();
    assert_eq!(client.create_topic("t", PARTITIONS).topics[0].error.0, 0);

    let ApiResponse::Produce(produced) =
        client.request(0, 9, &produce_every_partition("t", 1, "a"))
    else {
        panic!("not a produce answer");
    };
    assert_eq!(produced.topics.len(), 1, "{produced:?}");
    let mut answered: Vec<(i32, i16, i64)> = (produced.topics[0].partitions.iter())
        .map(|p| (p.partition, p.error.0, p.base_offset))
        .collect();
    answered.sort_unstable();
    let expected: Vec<(i32, i16, i64)> = (0..PARTITIONS).map(|p| (p, 0, 0)).collect();
    assert_eq!(answered, expected);

    // acks=0 across shards: no answer on the wire; the Metadata after it is answered next.
    let quiet = client.header(0, 9);
    client.send(&quiet, &produce_every_partition("t", 0, "b"));
    let asked = client.header(3, 9);
    let metadata = ApiRequest::Metadata(MetadataRequest {
        topics: Some(vec![TopicRef::Name("t".to_owned())]),
        allow_auto_topic_creation: false,
        include_cluster_authorized_operations: false,
        include_topic_authorized_operations: false,
    });
    client.send(&asked, &metadata);
    let frame = client.read_frame().expect("the Metadata answer");
    let ApiResponse::Metadata(_) =
        weir_wire::codec::decode_response(&asked, frame).expect("the next answer is Metadata's")
    else {
        panic!("not Metadata");
    };
    // acks=0 records become visible once synced: read until every partition shows them.
    let mut parts = Vec::new();
    for _ in 0..100 {
        let fetch = client.request(1, 12, &fetch_every_partition("t", 0, 100));
        parts = by_partition(&fetch);
        if parts.iter().all(|p| p.2 == 4) {
            break;
        }
    }
    for (partition, error, high_watermark, values) in parts {
        assert_eq!((error, high_watermark), (0, 4), "partition {partition}");
        let wanted: Vec<String> = ["a", "b"]
            .iter()
            .flat_map(|prefix| (0..2).map(move |i| format!("{prefix}{partition}-{i}")))
            .collect();
        assert_eq!(values, wanted, "partition {partition}");
    }

    // A long poll over every shard ends as soon as one shard has a record.
    let mut waiting = server.connect();
    waiting
        .stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let header = waiting.header(1, 12);
    waiting.send(&header, &fetch_every_partition("t", 4, 30_000));
    std::thread::sleep(Duration::from_millis(300));
    let produced_at = Instant::now();
    let one = crate::common::produce_request("t", 1, batch("late", 1));
    let ApiResponse::Produce(late) = client.request(0, 9, &one) else {
        panic!("not a produce answer");
    };
    assert_eq!(late.topics[0].partitions[0].error.0, 0);
    let frame = waiting.read_frame().expect("the long poll's answer");
    let waited = produced_at.elapsed();
    let answer = weir_wire::codec::decode_response(&header, frame).expect("decodes");
    let parts = by_partition(&answer);
    assert_eq!(parts[0].3, ["late-0"], "{parts:?}");
    assert!(parts[1..].iter().all(|p| p.3.is_empty()), "{parts:?}");
    assert!(
        waited < Duration::from_secs(10),
        "the other shards' parts waited for their deadline: {waited:?}"
    );
}
