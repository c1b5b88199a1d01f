//! DescribeLogDirs on one node (issue 14): the broker's one log directory lists every
//! partition it holds, each with the bytes of its log, which grow with appends and shrink
//! when the cleaner compacts; the request's filter works as Kafka's (null = all, unknown
//! topics and partitions left out). The metrics snapshot reports the same sizes, the
//! cleaner's dirty ratio and its byte totals.
//!
//! Method: a real `Node` over `MemStorage` through the `SingleNode` harness. Compaction as
//! in `compaction.rs`: `cleanup.policy=compact`, 1 KiB segments, `min.cleanable.dirty.ratio`
//! 0.01, `log.cleaner.backoff.ms` 100, one record per batch, many values of few keys; the
//! clock is advanced past the backoff so the harness runs the jobs.

use crate::common;

use bytes::Bytes;
use common::*;
use weir_core::testing::SingleNode;
use weir_wire::domain::log_dirs::{
    DescribableLogDirTopic, DescribeLogDirsRequest, DescribeLogDirsResponse, LogDirPartition,
    VOLUME_BYTES_UNKNOWN,
};
use weir_wire::domain::ApiResponse;
use weir_wire::error::ErrorCode;

const COMPACTED: &str = "compacted";
const PLAIN: &str = "plain";
const LOG_DIR: &str = "/var/lib/weir-test";

/// One batch holding one record `key` -> `value`.
fn keyed(key: &str, value: &str) -> Bytes {
    keyed_record(Some(key), Some(value))
}

/// A node with a compacted one-partition topic and a plain three-partition one.
fn node() -> SingleNode {
    let mut node = node_with(|config| {
        config.cleaner_backoff_ms = 100;
        config.log_dir = LOG_DIR.to_owned();
    });
    must_create(
        &mut node,
        COMPACTED,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1024"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    );
    must_create(&mut node, PLAIN, 3, &[]);
    node
}

fn describe(
    node: &mut SingleNode,
    topics: Option<Vec<(&str, Vec<i32>)>>,
) -> DescribeLogDirsResponse {
    let topics = topics.map(|topics| {
        (topics.into_iter())
            .map(|(topic, partitions)| DescribableLogDirTopic {
                topic: topic.to_owned(),
                partitions,
            })
            .collect()
    });
    match node.call(weir_wire::domain::ApiRequest::DescribeLogDirs(
        DescribeLogDirsRequest { topics },
    )) {
        ApiResponse::DescribeLogDirs(response) => response,
        other => panic!("not DescribeLogDirs: {other:?}"),
    }
}

/// (topic, partition) -> the partition's entry, from the one log directory.
fn partitions(response: &DescribeLogDirsResponse) -> Vec<(String, LogDirPartition)> {
    assert_eq!(response.error, ErrorCode::NONE);
    assert_eq!(response.results.len(), 1, "one log directory");
    let dir = &response.results[0];
    assert_eq!(dir.error, ErrorCode::NONE);
    assert_eq!(dir.log_dir, LOG_DIR);
    assert_eq!(dir.total_bytes, VOLUME_BYTES_UNKNOWN);
    assert_eq!(dir.usable_bytes, VOLUME_BYTES_UNKNOWN);
    (dir.topics.iter())
        .flat_map(|t| (t.partitions.iter()).map(|p| (t.name.clone(), *p)))
        .collect()
}

fn size_of(node: &mut SingleNode, topic: &str, partition: i32) -> i64 {
    let response = describe(node, Some(vec![(topic, vec![partition])]));
    let found = partitions(&response);
    assert_eq!(found.len(), 1, "{found:?}");
    let (_, entry) = &found[0];
    assert_eq!(entry.partition, partition);
    assert_eq!(
        entry.offset_lag, 0,
        "a leader's log end is its high watermark or past it"
    );
    assert!(!entry.is_future_key);
    entry.partition_size
}

// Goal: a partition's size is the bytes of the batches it stores: it grows by each
// appended batch, and shrinks by exactly what the cleaner removed once compaction ran,
// while the metrics snapshot agrees with DescribeLogDirs and shows the dirty ratio fall.
#[test]
fn sizes_grow_with_appends_and_shrink_after_compaction() {
    let mut node = node();
    assert_eq!(size_of(&mut node, COMPACTED, 0), 0, "empty log");
    let mut appended = 0i64;
    for round in 0..40 {
        for key in ["a", "b", "c"] {
            let batch = keyed(key, &format!("{key}-value-{round}"));
            appended += i64::try_from(batch.len()).expect("small batch");
            must_produce(&mut node, COMPACTED, 0, batch);
        }
        if round % 10 == 0 {
            assert_eq!(size_of(&mut node, COMPACTED, 0), appended, "round {round}");
        }
    }
    let before = size_of(&mut node, COMPACTED, 0);
    assert_eq!(before, appended);
    let plain = keyed("p", "plain");
    must_produce(&mut node, PLAIN, 1, plain.clone());
    assert_eq!(size_of(&mut node, PLAIN, 1), plain.len() as i64);
    assert_eq!(size_of(&mut node, PLAIN, 0), 0);

    let snapshot = node.node.metrics_snapshot(node.now);
    let compacted = (snapshot.partitions.iter())
        .find(|p| p.topic == COMPACTED)
        .expect("in the snapshot");
    assert_eq!(compacted.size_bytes, before as u64);
    let dirty_before = compacted.cleaner_dirty_ratio.expect("compacted topic");
    assert!(dirty_before > 0.5, "never cleaned: {dirty_before}");
    let plain_metrics = (snapshot.partitions.iter())
        .find(|p| p.topic == PLAIN && p.partition == 1)
        .expect("in the snapshot");
    assert_eq!(plain_metrics.size_bytes, plain.len() as u64);
    assert_eq!(plain_metrics.cleaner_dirty_ratio, None, "not compacted");
    assert_eq!(snapshot.cleaner_bytes_cleaned, 0);

    for _ in 0..8 {
        node.advance_ms(200);
        node.complete_syncs();
    }
    let after = size_of(&mut node, COMPACTED, 0);
    assert!(
        after < before / 2,
        "compaction shrank the log: {before} -> {after}"
    );
    let snapshot = node.node.metrics_snapshot(node.now);
    assert!(snapshot.cleaner_bytes_read > 0);
    assert_eq!(
        snapshot.cleaner_bytes_cleaned,
        (before - after) as u64,
        "the cleaner's total is what left the log"
    );
    let compacted = (snapshot.partitions.iter())
        .find(|p| p.topic == COMPACTED)
        .expect("in the snapshot");
    assert_eq!(compacted.size_bytes, after as u64);
    let dirty_after = compacted.cleaner_dirty_ratio.expect("compacted topic");
    assert!(
        dirty_after < dirty_before,
        "cleaning lowers the dirty ratio: {dirty_before} -> {dirty_after}"
    );
    // The plain topic is not touched.
    assert_eq!(size_of(&mut node, PLAIN, 1), plain.len() as i64);
}

// Goal: the filter works as Kafka's: null lists every partition the broker holds, grouped
// by topic in name order; named partitions list only themselves; unknown topics and
// partitions are left out without an error; a topic asked with no partitions is not listed.
#[test]
fn the_filter_lists_held_partitions_and_leaves_unknown_ones_out() {
    let mut node = node();
    let all = partitions(&describe(&mut node, None));
    let names: Vec<(String, i32)> = (all.iter())
        .map(|(topic, p)| (topic.clone(), p.partition))
        .collect();
    assert_eq!(
        names,
        vec![
            (COMPACTED.to_owned(), 0),
            (PLAIN.to_owned(), 0),
            (PLAIN.to_owned(), 1),
            (PLAIN.to_owned(), 2),
        ]
    );
    let some = describe(
        &mut node,
        Some(vec![
            (PLAIN, vec![2, 0, 7, -1]),
            ("no-such-topic", vec![0]),
            (COMPACTED, vec![]),
        ]),
    );
    assert_eq!(some.results[0].topics.len(), 1, "{some:?}");
    let names: Vec<(String, i32)> = (partitions(&some).iter())
        .map(|(topic, p)| (topic.clone(), p.partition))
        .collect();
    assert_eq!(names, vec![(PLAIN.to_owned(), 0), (PLAIN.to_owned(), 2)]);
    let none = describe(&mut node, Some(Vec::new()));
    assert!(partitions(&none).is_empty());
}
