//! Tiered storage on one node (issue 14, item 3): closed segments of a topic with
//! `remote.storage.enable=true` are uploaded, local copies go by the local retention
//! settings only once the image confirms the upload, a fetch below the local log start is
//! served from the object store transparently, an unreachable store holds local data
//! back instead of losing it, remote retention deletes objects, and deleting the topic
//! deletes its objects.
//!
//! Method: a real `Node` over `MemStorage` with the `SingleNode` harness, whose in-memory
//! object store (`tier::MemObjects`) runs uploads as soon as the node emits them and
//! resolves remote read plans the way the production driver does (footer, index, checked
//! batches). Small segments so the log has closed segments; the task and retention
//! intervals are 100 ms and the clock is advanced past them.

use crate::common;

use common::*;
use weir_core::testing::SingleNode;
use weir_wire::error::ErrorCode;

const TOPIC: &str = "tiered";

fn tiered_node(configs: &[(&str, &str)]) -> SingleNode {
    let mut node = node_with(|config| {
        config.remote_storage_enable = true;
        config.remote_log_task_interval_ms = 100;
        config.retention_check_interval_ms = 100;
        config.remote_orphan_min_age_ms = 1_000;
    });
    let mut all = vec![
        ("remote.storage.enable", "true"),
        ("segment.bytes", "1024"),
        ("local.retention.bytes", "1"),
    ];
    all.extend_from_slice(configs);
    must_create(&mut node, TOPIC, 1, &all);
    node
}

fn put(node: &mut SingleNode, n: usize) -> Vec<i64> {
    (0..n)
        .map(|i| {
            let value = format!("value-{i:04}-{}", "x".repeat(40));
            must_produce(node, TOPIC, 0, keyed_record(Some("k"), Some(&value)))
        })
        .collect()
}

/// Every record from `from` on, as (offset, value), fetching as a consumer does.
fn read_from(node: &mut SingleNode, from: i64) -> Vec<(i64, String)> {
    (read_partition(node, TOPIC, from).into_iter())
        .filter(|r| r.offset >= from)
        .map(|r| {
            let value = r
                .value
                .as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned());
            (r.offset, value.unwrap_or_default())
        })
        .collect()
}

fn run(node: &mut SingleNode, ms: u64) {
    for _ in 0..ms / 100 {
        node.advance_ms(100);
        node.complete_syncs();
    }
}

fn local_start(node: &SingleNode) -> i64 {
    node.node.partition_offsets(TOPIC, 0).expect("partition").0
}

// Goal: closed segments are uploaded and their local copies deleted; every record is still
// read from offset 0, at its offset, through the remote store; ListOffsets earliest is 0
// and earliest-local (-4) is the local start.
#[test]
fn old_offsets_are_served_from_the_remote_store() {
    let mut node = tiered_node(&[]);
    let offsets = put(&mut node, 200);
    run(&mut node, 2_000);
    let start = local_start(&node);
    assert!(start > 0, "local copies of uploaded segments went");
    let remote = node.node.remote_log(TOPIC, 0).expect("a remote log");
    assert!(
        remote.end_offset() >= start,
        "nothing deleted before its upload"
    );
    assert!(!node.remote.keys().is_empty());
    let read = read_from(&mut node, 0);
    assert_eq!(read.iter().map(|(o, _)| *o).collect::<Vec<_>>(), offsets);
    assert_eq!(read[7].1, format!("value-0007-{}", "x".repeat(40)));
    // A fetch in the middle of a remote segment starts at the offset asked for.
    let middle = read_from(&mut node, 3);
    assert_eq!(middle.first().map(|(o, _)| *o), Some(3));
    let earliest = node.call(list_offsets(TOPIC, 0, -2));
    assert_eq!(list_result(&earliest).offset, 0);
    let local = node.call(list_offsets(TOPIC, 0, -4));
    assert_eq!(list_result(&local).offset, start);
    let fetch_start = node.call(fetch(TOPIC, 0, 0, 0, 1));
    assert_eq!(fetch_partition(&fetch_start).log_start_offset, 0);
}

// Goal: with the object store down, uploads fail, are retried, and local data past its
// local retention stays (nothing is deleted that the store does not hold); once the store
// is back, uploads catch up and local copies go.
#[test]
fn an_unreachable_store_holds_local_data_back() {
    let mut node = tiered_node(&[]);
    node.remote.failing = true;
    let offsets = put(&mut node, 200);
    run(&mut node, 5_000);
    assert_eq!(local_start(&node), 0, "nothing deleted while uploads fail");
    assert!(node.node.remote_log(TOPIC, 0).is_none());
    let snapshot = node.node.metrics_snapshot(node.now);
    assert!(snapshot.remote_upload_failures > 0);
    let lag = snapshot
        .partitions
        .iter()
        .find(|p| p.topic == TOPIC)
        .and_then(|p| p.remote);
    assert!(
        lag.and_then(|r| r.upload_lag_bytes).is_some_and(|b| b > 0),
        "{lag:?}"
    );
    node.remote.failing = false;
    run(&mut node, 130_000);
    assert!(
        local_start(&node) > 0,
        "uploads caught up after the backoff"
    );
    let read = read_from(&mut node, 0);
    assert_eq!(read.iter().map(|(o, _)| *o).collect::<Vec<_>>(), offsets);
}

// Goal: remote retention drops expired remote segments (their objects go too) and moves the
// earliest offset up; the records left are still read in order.
#[test]
fn remote_retention_deletes_objects() {
    let mut node = tiered_node(&[("retention.bytes", "3000"), ("local.retention.bytes", "1")]);
    put(&mut node, 300);
    // Long enough for every closed segment to be uploaded and retention to settle (one
    // upload per 100 ms task interval).
    run(&mut node, 10_000);
    let remote = node.node.remote_log(TOPIC, 0).expect("a remote log");
    assert!(
        remote.log_start_offset > 0,
        "remote retention ran: {remote:?}"
    );
    let referenced: Vec<String> = remote
        .segments
        .values()
        .map(|s| s.object_key.clone())
        .collect();
    // Objects of deleted segments are gone; those of the remote log are there.
    assert_eq!(node.remote.keys(), referenced);
    let earliest = node.call(list_offsets(TOPIC, 0, -2));
    let first = list_result(&earliest).offset;
    assert!(first > 0);
    let read = read_from(&mut node, first);
    assert!(read.windows(2).all(|w| w[0].0 + 1 == w[1].0), "no hole");
    assert_eq!(read.last().map(|(o, _)| *o), Some(299));
    // Below the earliest offset is out of range, as in Kafka.
    let below = node.call(fetch(TOPIC, 0, 0, 0, 1));
    assert_eq!(
        fetch_partition(&below).error,
        ErrorCode::OFFSET_OUT_OF_RANGE
    );
}

// Goal: deleting a tiered topic deletes its objects.
#[test]
fn deleting_the_topic_deletes_its_objects() {
    let mut node = tiered_node(&[]);
    put(&mut node, 100);
    run(&mut node, 1_000);
    assert!(!node.remote.keys().is_empty());
    let response = node.call(delete_topic(weir_wire::domain::TopicRef::Name(
        TOPIC.into(),
    )));
    assert!(
        format!("{response:?}").contains("error: ErrorCode(0)"),
        "{response:?}"
    );
    run(&mut node, 500);
    assert!(node.remote.keys().is_empty(), "{:?}", node.remote.keys());
}

// Goal: Kafka's config rules: no tiered topic without a remote store, none compacted,
// local retention within total retention, and no turning tiered storage off.
#[test]
fn tiered_topic_configs_are_checked() {
    let mut plain = node_with(|_| {});
    let refused = plain.call(create_topic("t", 1, &[("remote.storage.enable", "true")]));
    assert!(
        format!("{refused:?}").contains("ErrorCode(40)"),
        "{refused:?}"
    );
    let mut node = tiered_node(&[]);
    for configs in [
        &[
            ("remote.storage.enable", "true"),
            ("cleanup.policy", "compact"),
        ][..],
        &[
            ("remote.storage.enable", "true"),
            ("retention.ms", "1000"),
            ("local.retention.ms", "2000"),
        ][..],
        &[("remote.storage.enable", "maybe")][..],
    ] {
        let refused = node.call(create_topic("t2", 1, configs));
        assert!(
            format!("{refused:?}").contains("ErrorCode(40)"),
            "{configs:?}: {refused:?}"
        );
    }
    let alter = weir_wire::domain::ApiRequest::IncrementalAlterConfigs(
        weir_wire::domain::cluster::IncrementalAlterConfigsRequest {
            resources: vec![
                weir_wire::domain::cluster::IncrementalAlterConfigsResource {
                    resource_type: weir_wire::domain::resource_type::TOPIC,
                    resource_name: TOPIC.into(),
                    configs: vec![weir_wire::domain::cluster::IncrementalAlterableConfig {
                        name: "remote.storage.enable".into(),
                        operation: 0,
                        value: Some("false".into()),
                    }],
                },
            ],
            validate_only: false,
        },
    );
    let refused = node.call(alter);
    assert!(
        format!("{refused:?}").contains("ErrorCode(40)"),
        "{refused:?}"
    );
}

// Goal: DeleteRecords on a tiered topic deletes across both tiers, as Kafka's does: inside
// the remote log (the remote log start moves, the objects of segments wholly below it go)
// and past its end (local records not uploaded yet go too, and uploads go on from the new
// start, so the remote log has no gap); below the new start reads are OFFSET_OUT_OF_RANGE
// and earliest is the new start.
#[test]
fn delete_records_reaches_the_remote_log() {
    use crate::delete_records::{delete_records, deleted};
    let mut node = tiered_node(&[]);
    put(&mut node, 200);
    run(&mut node, 2_000);
    let remote = node.node.remote_log(TOPIC, 0).expect("a remote log");
    let segments: Vec<(i64, i64)> = (remote.segments.values())
        .map(|s| (s.base_offset, s.end_offset))
        .collect();
    let first_object = (remote.segments.values().next()).map(|s| s.object_key.clone());
    assert!(segments.len() >= 3, "{segments:?}");
    assert!(local_start(&node) > segments[1].1, "local copies went");
    let inside = (segments[1].0 + segments[1].1) / 2;
    assert!(inside > segments[1].0);

    let response = node.call(delete_records(TOPIC, 0, inside));
    assert_eq!(deleted(&response), (ErrorCode::NONE, inside));
    let remote = node.node.remote_log(TOPIC, 0).expect("a remote log");
    assert_eq!(remote.log_start_offset, inside);
    assert_eq!(remote.segments.keys().next(), Some(&segments[1].0));
    run(&mut node, 200);
    let remote = node.node.remote_log(TOPIC, 0).expect("a remote log");
    let referenced: Vec<String> = (remote.segments.values())
        .map(|s| s.object_key.clone())
        .collect();
    // (An upload not reported yet may hold an object the remote log does not list.)
    let objects = node.remote.keys();
    assert!(referenced.iter().all(|key| objects.contains(key)));
    assert!(!objects.contains(&first_object.expect("a first segment")));
    let earliest = node.call(list_offsets(TOPIC, 0, -2));
    assert_eq!(list_result(&earliest).offset, inside);
    let below = node.call(fetch(TOPIC, 0, inside - 1, 0, 1));
    assert_eq!(
        fetch_partition(&below).error,
        ErrorCode::OFFSET_OUT_OF_RANGE
    );
    let read = read_from(&mut node, inside);
    let offsets: Vec<i64> = read.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, (inside..200).collect::<Vec<_>>());

    // Past the remote end: records only the local log holds.
    put(&mut node, 20);
    let remote_end = node.node.remote_log(TOPIC, 0).expect("remote").end_offset();
    let past = remote_end + 5;
    let objects_before = node.remote.keys();
    assert!(past < 220, "remote end {remote_end}");
    let response = node.call(delete_records(TOPIC, 0, past));
    assert_eq!(deleted(&response), (ErrorCode::NONE, past));
    let remote = node.node.remote_log(TOPIC, 0).expect("a remote log");
    assert_eq!((remote.log_start_offset, remote.segments.len()), (past, 0));
    assert_eq!(local_start(&node), past);
    run(&mut node, 200);
    let objects = node.remote.keys();
    assert!(
        objects_before.iter().all(|key| !objects.contains(key)),
        "every object of before went: {objects:?}"
    );
    let read = read_from(&mut node, past);
    let offsets: Vec<i64> = read.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, (past..220).collect::<Vec<_>>());

    // Uploads go on from the new start.
    put(&mut node, 200);
    run(&mut node, 5_000);
    let remote = node.node.remote_log(TOPIC, 0).expect("a remote log");
    assert_eq!(remote.log_start_offset, past);
    assert!(remote.end_offset() > 300, "{remote:?}");
    assert!(
        local_start(&node) > past,
        "local copies of the new uploads went"
    );
    let read = read_from(&mut node, past);
    let offsets: Vec<i64> = read.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, (past..420).collect::<Vec<_>>());
}
