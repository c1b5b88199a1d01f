//! Log compaction scenarios on one node (issue 14): the latest record of every key
//! survives at its offset, older ones go; tombstones go after `delete.retention.ms`;
//! records without a key are refused; a crash mid-way loses nothing acknowledged; the
//! internal topics are compacted the same way.
//!
//! Method: a real `Node` over `MemStorage` (the `SingleNode` harness runs each compaction
//! job as soon as the node emits it), one record per batch so compaction can remove whole
//! batches, small segments so the log has closed (cleanable) segments, and
//! `log.cleaner.backoff.ms` of 100 ms; the clock is advanced past it.

use crate::common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::*;
use weir_core::testing::SingleNode;
use weir_wire::error::ErrorCode;

const TOPIC: &str = "compacted";

/// One batch holding one record `key` -> `value` (`None`: a tombstone).
fn keyed(key: Option<&str>, value: Option<&str>) -> Bytes {
    keyed_record(key, value)
}

fn compacting_node() -> SingleNode {
    let mut node = node_with(|config| config.cleaner_backoff_ms = 100);
    must_create(
        &mut node,
        TOPIC,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1024"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", "60000"),
        ],
    );
    node
}

fn put(node: &mut SingleNode, key: &str, value: Option<&str>) -> i64 {
    must_produce(node, TOPIC, 0, keyed(Some(key), value))
}

/// Every record from offset 0 on, as (offset, key, value).
fn read_all(node: &mut SingleNode) -> Vec<(i64, String, Option<String>)> {
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    (read_partition(node, TOPIC, 0).into_iter())
        .map(|r| {
            (
                r.offset,
                r.key.as_ref().map(text).unwrap_or_default(),
                r.value.as_ref().map(text),
            )
        })
        .collect()
}

/// Let the cleaner run a few times.
fn clean(node: &mut SingleNode) {
    for _ in 0..8 {
        node.advance_ms(200);
        node.complete_syncs();
    }
}

// Goal: after compaction, exactly the latest record of each key is read, at the offset it
// was written at; the log end does not move; offsets strictly increase.
#[test]
fn the_latest_record_of_every_key_survives_at_its_offset() {
    let mut node = compacting_node();
    let mut latest = BTreeMap::new();
    for round in 0..30 {
        for key in ["a", "b", "c", "d"] {
            let value = format!("{key}{round}");
            let offset = put(&mut node, key, Some(&value));
            latest.insert(key.to_string(), (offset, value));
        }
    }
    // The last write sits in the active segment, which is never cleaned: write one more
    // key so every key's latest value lies in closed segments as well as possible.
    let tail = put(&mut node, "z", Some("tail"));
    latest.insert("z".into(), (tail, "tail".into()));
    let before = read_all(&mut node);
    assert_eq!(before.len(), 121);
    clean(&mut node);
    let after = read_all(&mut node);
    assert!(
        after.len() < before.len() / 2,
        "compaction removed little: {}",
        after.len()
    );
    assert!(
        after.windows(2).all(|w| w[0].0 < w[1].0),
        "offsets increase"
    );
    // Every key's latest value is there, at its offset.
    for (key, (offset, value)) in &latest {
        let found = after.iter().find(|(o, _, _)| o == offset);
        assert_eq!(
            found,
            Some(&(*offset, key.clone(), Some(value.clone()))),
            "latest {key}"
        );
    }
    // Nothing but latest values survives below the active segment... and every surviving
    // record is one that was written (same key and value at the same offset).
    for record in &after {
        assert!(before.contains(record), "{record:?} was never written");
    }
    let (_, _, leo) = node.node.partition_offsets(TOPIC, 0).expect("partition");
    assert_eq!(leo, tail + 1, "the log end stays");
}

// Goal: a tombstone removes its key's older values at once and disappears itself only
// after delete.retention.ms.
#[test]
fn tombstones_outlive_their_key_by_delete_retention() {
    let mut node = compacting_node();
    for round in 0..20 {
        put(&mut node, "gone", Some(&format!("v{round}")));
        put(&mut node, "kept", Some(&format!("k{round}")));
    }
    let tombstone = put(&mut node, "gone", None);
    for round in 0..20 {
        put(&mut node, "kept", Some(&format!("late{round}")));
    }
    clean(&mut node);
    let after = read_all(&mut node);
    let gone: Vec<_> = after.iter().filter(|(_, k, _)| k == "gone").collect();
    assert_eq!(
        gone,
        vec![&(tombstone, "gone".to_string(), None)],
        "only the tombstone"
    );
    node.advance_ms(60_000);
    // More writes so the segment holding the tombstone is cleaned again.
    for round in 0..20 {
        put(&mut node, "kept", Some(&format!("later{round}")));
    }
    clean(&mut node);
    let after = read_all(&mut node);
    assert!(
        after.iter().all(|(_, k, _)| k != "gone"),
        "the tombstone went after delete.retention.ms: {after:?}"
    );
}

// Goal: a record without a key cannot enter a compacted topic (Kafka: INVALID_RECORD), and
// nothing of the refused batch is written.
#[test]
fn records_without_a_key_are_refused() {
    let mut node = compacting_node();
    let response = node.call(produce(TOPIC, 0, keyed(None, Some("v")), -1));
    assert_eq!(produce_result(&response).error, ErrorCode::INVALID_RECORD);
    assert!(read_all(&mut node).is_empty());
    put(&mut node, "k", Some("v"));
    assert_eq!(read_all(&mut node).len(), 1);
}

// Goal: a crash right after compaction (its replacements not synced) and a restart after
// it both leave every acknowledged key's latest value readable.
#[test]
fn a_crash_during_compaction_loses_no_latest_value() {
    let mut node = compacting_node();
    let mut latest = BTreeMap::new();
    for round in 0..25 {
        for key in ["a", "b", "c"] {
            let value = format!("{key}{round}");
            latest.insert(key, (put(&mut node, key, Some(&value)), value));
        }
    }
    // Compact without completing the sync that covers the replacements, then lose them.
    for _ in 0..4 {
        node.advance_ms(200);
    }
    node.crash();
    clean(&mut node);
    node.restart();
    let after = read_all(&mut node);
    assert!(
        after.len() < 30,
        "compaction ran after the crash: {}",
        after.len()
    );
    for (key, (offset, value)) in &latest {
        assert!(
            after.contains(&(*offset, key.to_string(), Some(value.clone()))),
            "latest {key} at {offset} lost: {after:?}"
        );
    }
}

// Goal: the dirty ratio `weir topic describe` prints: asked for by name, a compacted topic
// answers it read-only, high while superseded records wait and lower once cleaned; a
// listing of all configs does not carry it (Kafka tools see Kafka's set).
#[test]
fn the_dirty_ratio_is_described_when_asked_for_by_name() {
    use weir_core::node::DIRTY_RATIO_KEY;
    use weir_wire::domain::{
        resource_type, ApiRequest, ApiResponse, DescribeConfigsRequest, DescribeConfigsResource,
    };

    let ratio_of = |node: &mut SingleNode, keys: Option<Vec<String>>| {
        let request = ApiRequest::DescribeConfigs(DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: resource_type::TOPIC,
                resource_name: TOPIC.into(),
                configuration_keys: keys,
            }],
            include_synonyms: false,
            include_documentation: false,
        });
        let ApiResponse::DescribeConfigs(response) = node.call(request) else {
            panic!("DescribeConfigs answer expected")
        };
        let result = response.results.into_iter().next().expect("one result");
        let entry = result
            .configs
            .into_iter()
            .find(|c| c.name == DIRTY_RATIO_KEY);
        entry.map(|e| {
            assert!(e.read_only);
            e.value.expect("a value").parse::<f64>().expect("a number")
        })
    };
    let mut node = node_with(|config| config.cleaner_backoff_ms = 1_000_000);
    must_create(
        &mut node,
        TOPIC,
        1,
        &[("cleanup.policy", "compact"), ("segment.bytes", "1024")],
    );
    for round in 0..30 {
        put(&mut node, "k", Some(&format!("v{round}")));
    }
    let asked = Some(vec![DIRTY_RATIO_KEY.to_string()]);
    let dirty = ratio_of(&mut node, asked.clone()).expect("asked for by name");
    assert!(
        dirty > 0.5,
        "everything is dirty before the first cleaning: {dirty}"
    );
    assert_eq!(ratio_of(&mut node, None), None, "not among all configs");
    let mut cleaning = node_with(|config| config.cleaner_backoff_ms = 100);
    must_create(
        &mut cleaning,
        TOPIC,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1024"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    );
    for round in 0..30 {
        put(&mut cleaning, "k", Some(&format!("v{round}")));
    }
    clean(&mut cleaning);
    let after = ratio_of(&mut cleaning, asked).expect("asked for by name");
    assert!(after < dirty, "cleaning lowered it: {after} vs {dirty}");
}

/// The compacted partition's dirty ratio as the cleaner weighs it, and the bytes the
/// node's cleaner jobs have read so far (they move only when a job ran).
fn cleaner_view(node: &SingleNode, topic: &str) -> (f64, u64) {
    let snapshot = node.node.metrics_snapshot(node.now);
    let partition = (snapshot.partitions.iter())
        .find(|p| p.topic == topic && p.partition == 0)
        .expect("the partition");
    let ratio = partition.cleaner_dirty_ratio.expect("a compacted topic");
    (ratio, snapshot.cleaner_bytes_read)
}

/// Records of `key` read from offset 0.
fn count_key(node: &mut SingleNode, key: &str) -> usize {
    read_all(node).iter().filter(|(_, k, _)| k == key).count()
}

/// A compacted topic (`min.cleanable.dirty.ratio` 0.5, plus `extra` settings) whose first
/// cleaning already ran over 100 distinct keys (nothing to remove, but the cleaner's
/// checkpoint now sits past them: they are clean bytes), then `updates` values of one key
/// `hot`, each stamped with the node's clock.
fn checkpointed_then_updated(extra: &[(&str, &str)], updates: usize) -> SingleNode {
    let mut node = node_with(|config| config.cleaner_backoff_ms = 100);
    let mut configs = vec![
        ("cleanup.policy", "compact"),
        ("segment.bytes", "1024"),
        ("min.cleanable.dirty.ratio", "0.5"),
    ];
    configs.extend_from_slice(extra);
    must_create(&mut node, TOPIC, 1, &configs);
    let stamp = |node: &SingleNode, key: &str, value: &str| {
        keyed_record_at(Some(key), Some(value), node.now.wall_ms)
    };
    for index in 0..100 {
        let key = format!("k{index}");
        let batch = stamp(&node, &key, "v");
        must_produce(&mut node, TOPIC, 0, batch);
    }
    clean(&mut node);
    let (ratio, read) = cleaner_view(&node, TOPIC);
    assert!(read > 0, "the first cleaning ran");
    assert_eq!(ratio, 0.0, "everything cleanable is clean");
    for round in 0..updates {
        let batch = stamp(&node, "hot", &format!("h{round}"));
        must_produce(&mut node, TOPIC, 0, batch);
    }
    node
}

// Goal: `min.cleanable.dirty.ratio` holds the cleaner back: a partition whose dirty share
// is below it is not cleaned however often the cleaner looks. Method: 100 clean keys, then
// 20 values of one key (dirty ratio about 0.2 < 0.5); 40 cleaner backoffs pass.
#[test]
fn a_partition_below_the_dirty_ratio_is_not_cleaned() {
    let mut node = checkpointed_then_updated(&[], 20);
    let (ratio, read) = cleaner_view(&node, TOPIC);
    assert!(ratio > 0.0 && ratio < 0.5, "below the ratio: {ratio}");
    for _ in 0..5 {
        clean(&mut node);
    }
    assert_eq!(cleaner_view(&node, TOPIC).1, read, "no job ran");
    assert_eq!(
        count_key(&mut node, "hot"),
        20,
        "every superseded value is kept"
    );
}

// Goal: above `min.cleanable.dirty.ratio` the same partition is cleaned at the next look.
// Method: as above with 200 values of the key (dirty ratio about 0.7 > 0.5).
#[test]
fn a_partition_above_the_dirty_ratio_is_cleaned() {
    let mut node = checkpointed_then_updated(&[], 200);
    let (ratio, read) = cleaner_view(&node, TOPIC);
    assert!(ratio > 0.5, "above the ratio: {ratio}");
    clean(&mut node);
    assert!(cleaner_view(&node, TOPIC).1 > read, "a job ran");
    let hot = count_key(&mut node, "hot");
    assert!(hot < 40, "superseded values went: {hot} of 200 left");
}

// Goal: `max.compaction.lag.ms` overrides the ratio: dirty data older than it is cleaned
// although the partition is below `min.cleanable.dirty.ratio`, and not before.
// Method: as in the below-the-ratio test, with max.compaction.lag.ms 30 s: a few seconds
// on nothing is cleaned; once the records are 30 s old the next look cleans them.
#[test]
fn an_overdue_partition_is_cleaned_below_the_dirty_ratio() {
    let mut node = checkpointed_then_updated(&[("max.compaction.lag.ms", "30000")], 20);
    let (ratio, read) = cleaner_view(&node, TOPIC);
    assert!(ratio > 0.0 && ratio < 0.5, "below the ratio: {ratio}");
    clean(&mut node);
    clean(&mut node);
    assert_eq!(
        cleaner_view(&node, TOPIC).1,
        read,
        "not overdue yet: no job"
    );
    assert_eq!(count_key(&mut node, "hot"), 20);
    node.advance_ms(30_000);
    clean(&mut node);
    assert!(cleaner_view(&node, TOPIC).1 > read, "overdue: a job ran");
    let hot = count_key(&mut node, "hot");
    assert!(hot < 20, "superseded values went: {hot} of 20 left");
}

// Goal: `cleanup.policy=compact,delete` does both: retention deletes whole segments older
// than `retention.ms` (latest values of keys included, which compaction alone keeps
// forever) while compaction keeps the latest value of every key in what is retained.
// Method: 20 distinct keys written at t0; 40 s later 30 rounds of keys a, b, c; the
// retention check and the cleaner then run (retention.ms 30 s).
#[test]
fn compact_delete_applies_retention_and_compaction() {
    let mut node = node_with(|config| {
        config.cleaner_backoff_ms = 100;
        config.retention_check_interval_ms = 100;
    });
    must_create(
        &mut node,
        TOPIC,
        1,
        &[
            ("cleanup.policy", "compact,delete"),
            ("segment.bytes", "1024"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("retention.ms", "30000"),
        ],
    );
    for index in 0..20 {
        let batch = keyed_record_at(Some(&format!("old{index}")), Some("v"), node.now.wall_ms);
        must_produce(&mut node, TOPIC, 0, batch);
    }
    node.advance_ms(40_000);
    let mut latest = BTreeMap::new();
    for round in 0..30 {
        for key in ["a", "b", "c"] {
            let value = format!("{key}{round}");
            let batch = keyed_record_at(Some(key), Some(&value), node.now.wall_ms);
            latest.insert(key, (must_produce(&mut node, TOPIC, 0, batch), value));
        }
    }
    clean(&mut node);
    let (start, _, _) = node.node.partition_offsets(TOPIC, 0).expect("partition");
    assert!(
        start >= 20,
        "the log start moved past the expired keys: {start}"
    );
    let text = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    let after: Vec<_> = (read_partition(&mut node, TOPIC, start).into_iter())
        .map(|r| (r.offset, text(&r.key).unwrap_or_default(), text(&r.value)))
        .collect();
    assert!(
        after.iter().all(|(_, key, _)| !key.starts_with("old")),
        "retention deleted the expired keys: {after:?}"
    );
    for (key, (offset, value)) in &latest {
        assert!(
            after.contains(&(*offset, key.to_string(), Some(value.clone()))),
            "latest {key} kept"
        );
    }
    assert!(
        after.len() < 45,
        "superseded values were compacted: {} of 90 left",
        after.len()
    );
}
