//! Scenario tests of what survives: restarts, crashes (unsynced writes lost), retention,
//! and the two durability modes.

use crate::common;

use common::*;
use weir_core::testing::{batch, batch_of_values, SingleNode};
use weir_core::{Durability, NodeConfig, SyncMode};
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

// Goal: a clean restart keeps topics, configs, ids, offsets and the high watermark, and
// appends continue at the old log end. Method: produce, restart, compare, produce again.
#[test]
fn recover_after_restart() {
    let mut node = SingleNode::new(NodeConfig::default());
    must_create(&mut node, "a", 2, &[("retention.ms", "99999")]);
    must_create(&mut node, "b", 1, &[]);
    must_produce(&mut node, "a", 1, batch(&[1, 2, 3]));
    must_produce(&mut node, "b", 0, batch(&[1]));
    let ApiResponse::Metadata(before) = node.call(metadata(None, false)) else {
        panic!()
    };
    node.restart();
    let ApiResponse::Metadata(after) = node.call(metadata(None, false)) else {
        panic!()
    };
    // A restarted broker leads again at a new leader epoch (its previous incarnation's
    // epochs are never reused), and nothing else about the topics changes.
    let without_epochs = |topics: &[MetadataTopic]| {
        let mut topics = topics.to_vec();
        for partition in topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
            partition.leader_epoch = 0;
        }
        topics
    };
    assert_eq!(
        without_epochs(&before.topics),
        without_epochs(&after.topics),
        "same topics, ids and partitions"
    );
    for (old, new) in before.topics.iter().zip(&after.topics) {
        for (old, new) in old.partitions.iter().zip(&new.partitions) {
            assert!(new.leader_epoch > old.leader_epoch, "{old:?} -> {new:?}");
        }
    }
    assert_eq!(node.node.partition_offsets("a", 1), Some((0, 3, 3)));
    assert_eq!(node.node.partition_offsets("b", 0), Some((0, 1, 1)));
    assert_eq!(must_produce(&mut node, "a", 1, batch(&[4])), 3);
    assert_eq!(
        values(&fetched_records(&node.call(fetch("a", 1, 0, 0, 1)))),
        ["v0", "v1", "v2", "v0"]
    );
    // New topics after recovery get fresh ids and partition keys.
    must_create(&mut node, "c", 1, &[]);
    assert_eq!(must_produce(&mut node, "c", 0, batch(&[1])), 0);
    assert_eq!(node.node.partition_offsets("a", 1), Some((0, 4, 4)));
}

// Goal: a crash loses only unacknowledged data: every acknowledged produce survives, and
// unsynced appends (never acknowledged) may vanish. Method: ack some, leave one waiting,
// crash, check offsets and contents; the lost offset is reused by the next produce.
#[test]
fn crash_loses_only_unacknowledged_data() {
    let mut node = SingleNode::new(NodeConfig::default());
    must_create(&mut node, "t", 1, &[]);
    must_produce(&mut node, "t", 0, batch_of_values(&[b"acked-1"], 1));
    must_produce(&mut node, "t", 0, batch_of_values(&[b"acked-2"], 1));
    let unacked = node.send(1, produce("t", 0, batch_of_values(&[b"lost"], 1), -1));
    assert!(node.take(unacked).is_none());
    assert_eq!(node.node.partition_offsets("t", 0), Some((0, 2, 3)));
    let lost = node.crash();
    assert!(lost >= 1, "the unsynced append was lost");
    assert_eq!(node.node.partition_offsets("t", 0), Some((0, 2, 2)));
    let records = fetched_records(&node.call(fetch("t", 0, 0, 0, 1)));
    assert_eq!(values(&records), ["acked-1", "acked-2"]);
    assert_eq!(must_produce(&mut node, "t", 0, batch(&[1])), 2);
}

// Goal: a topic whose creation was not yet durable disappears in a crash, and leaves no
// debris; one whose creation was answered survives. Method: crash with a creation pending.
#[test]
fn crash_during_topic_creation() {
    let mut node = SingleNode::new(NodeConfig::default());
    must_create(&mut node, "kept", 1, &[]);
    let pending = node.send(1, create_topic("pending", 3, &[]));
    assert!(node.take(pending).is_none(), "answered only when durable");
    node.crash();
    assert_eq!(node.node.topic_names(), ["kept"]);
    must_create(&mut node, "pending", 3, &[]);
    assert_eq!(node.node.topic_names(), ["kept", "pending"]);
}

// Goal: retention by bytes deletes whole old segments and moves the log start; consumers
// below it get OFFSET_OUT_OF_RANGE and -2 reports the new start; it survives a restart.
// Method: tiny segments, retention.bytes of two batches, run the retention timer.
#[test]
fn retention_by_bytes_moves_log_start() {
    // Fresh timestamps, so retention by time (7 days by default) keeps everything.
    let one = batch(&[weir_core::testing::WALL_MS_START]);
    let segment_bytes = one.len().to_string();
    let retention_bytes = (2 * one.len()).to_string();
    let mut node = node_with(|config| config.retention_check_interval_ms = 1_000);
    let configs = [
        ("segment.bytes", segment_bytes.as_str()),
        ("retention.bytes", retention_bytes.as_str()),
    ];
    must_create(&mut node, "t", 1, &configs);
    for _ in 0..5 {
        must_produce(&mut node, "t", 0, one.clone());
    }
    node.advance_ms(1_000);
    node.complete_syncs();
    assert_eq!(node.node.partition_offsets("t", 0), Some((3, 5, 5)));
    assert_eq!(
        list_result(&node.call(list_offsets("t", 0, EARLIEST_TIMESTAMP))).offset,
        3
    );
    let below = fetch_partition(&node.call(fetch("t", 0, 0, 0, 1))).error;
    assert_eq!(below, ErrorCode::OFFSET_OUT_OF_RANGE);
    assert_eq!(fetched_records(&node.call(fetch("t", 0, 3, 0, 1))).len(), 2);
    node.restart();
    assert_eq!(node.node.partition_offsets("t", 0), Some((3, 5, 5)));
    node.crash();
    assert_eq!(node.node.partition_offsets("t", 0), Some((3, 5, 5)));
}

// Goal: retention by time deletes segments whose newest record is older than retention.ms,
// including an entirely expired active segment. Method: old timestamps, advance the clock.
#[test]
fn retention_by_time_moves_log_start() {
    let mut node = node_with(|config| config.retention_check_interval_ms = 1_000);
    must_create(&mut node, "t", 1, &[("retention.ms", "60000")]);
    let now = node.now.wall_ms;
    must_produce(&mut node, "t", 0, batch(&[now - 120_000, now - 90_000]));
    must_produce(&mut node, "t", 0, batch(&[now]));
    node.advance_ms(1_000);
    // One segment holds everything and its newest record is fresh: nothing expires.
    assert_eq!(node.node.partition_offsets("t", 0), Some((0, 3, 3)));
    node.advance_ms(61_000);
    node.complete_syncs();
    assert_eq!(node.node.partition_offsets("t", 0), Some((3, 3, 3)));
    let fresh = batch(&[node.now.wall_ms]);
    assert_eq!(must_produce(&mut node, "t", 0, fresh), 3);
    node.restart();
    assert_eq!(node.node.partition_offsets("t", 0), Some((3, 4, 4)));
}

// Goal: durability Os acknowledges after an OsBuffer sync and fsyncs periodically.
// Method: produce, check the sync mode, then let flush_interval_ms pass.
#[test]
fn os_durability_flushes_periodically() {
    let mut node = node_with(|config| {
        config.durability = Durability::Os;
        config.flush_interval_ms = 500;
    });
    must_create(&mut node, "t", 1, &[]);
    let id = node.send(1, produce("t", 0, batch(&[1]), 1));
    assert_eq!(
        node.pending_syncs().iter().map(|s| s.1).collect::<Vec<_>>(),
        [SyncMode::OsBuffer]
    );
    node.complete_syncs();
    assert!(node.take(id).is_some());
    node.advance_ms(500);
    assert_eq!(
        node.pending_syncs().iter().map(|s| s.1).collect::<Vec<_>>(),
        [SyncMode::Fsync]
    );
    node.complete_syncs();
    node.advance_ms(500);
    assert!(node.pending_syncs().is_empty(), "nothing new to flush");
}

// Goal: a produce whose sync never completes is answered REQUEST_TIMED_OUT after its
// timeout (and the data still becomes visible once the sync does complete).
#[test]
fn produce_times_out_waiting_for_sync() {
    let mut node = SingleNode::new(NodeConfig::default());
    must_create(&mut node, "t", 1, &[]);
    let id = node.send(1, produce("t", 0, batch(&[1]), -1));
    node.advance_ms(30_000);
    let response = node.take(id).expect("timed out");
    assert_eq!(
        produce_result(&response).error,
        ErrorCode::REQUEST_TIMED_OUT
    );
    node.complete_syncs();
    assert_eq!(node.node.partition_offsets("t", 0), Some((0, 1, 1)));
}

// Goal: the metadata write order makes every crash point recoverable: from any prefix of
// a burst of changes (segment rolls, retention, topic deletion and creation), recovery
// yields a node that passes its invariants, and after its repairs are applied a second
// recovery finds nothing left to repair. Method: run the burst without completing any
// sync, then crash keeping k of the unsynced ops, for every k.
#[test]
fn recovery_from_every_crash_point() {
    use weir_core::storage::Storage;
    use weir_core::{Node, Output};

    let one = batch(&[weir_core::testing::WALL_MS_START]);
    let mut node = node_with(|config| config.retention_check_interval_ms = 100);
    let segment = one.len().to_string();
    let retention = (2 * one.len()).to_string();
    let configs = [
        ("segment.bytes", segment.as_str()),
        ("retention.bytes", retention.as_str()),
    ];
    must_create(&mut node, "old", 2, &configs);
    must_create(&mut node, "kept", 1, &configs);
    must_produce(&mut node, "old", 1, one.clone());
    // The deletion and creation are records of the metadata log: once it has them (one
    // sync), the node deletes and creates the topics' data, which the burst covers.
    node.send(1, delete_topic(TopicRef::Name("old".into())));
    node.send(1, create_topic("new", 2, &configs));
    node.complete_syncs();
    // The burst: nothing below is synced.
    for _ in 0..4 {
        node.send(1, produce("kept", 0, one.clone(), 1));
    }
    node.advance_ms(100);
    node.send(1, produce("new", 1, one.clone(), 1));
    let burst = node.storage.clone();
    let op_count = burst.unsynced_ops().len();
    assert!(op_count > 15, "the burst covers many ops ({op_count})");
    for keep in 0..=op_count {
        let mut storage = burst.clone();
        storage.crash_keeping(keep);
        let mut recovered =
            Node::recover(node.config.clone(), &storage, node.now).expect("recovers");
        recovered.invariants();
        while let Some(output) = recovered.poll_output() {
            if let Output::Storage(op) = output {
                storage.apply(&op).expect("repair applies");
            }
        }
        storage.sync().expect("sync");
        let mut again = Node::recover(node.config.clone(), &storage, node.now).expect("recovers");
        assert_eq!(
            again.poll_output(),
            None,
            "repairs incomplete after keeping {keep} ops"
        );
        let names = again.topic_names();
        assert!(
            names.contains(&"kept".to_string()),
            "kept topic lost at {keep}: {names:?}"
        );
    }
}

// Goal: a data directory of a single node from before it ran a one-voter metadata quorum
// (topics, logs and committed offsets, but no metadata log) opens with everything in it:
// the node adopts its topics, same ids and partitions, and serves and appends on. Method:
// write with the current node, strip what the old one never wrote (the metadata log and
// the leader-epoch caches), restart, compare.
#[test]
fn a_single_node_directory_without_a_metadata_log_is_adopted() {
    use weir_core::storage::{Storage, StorageOp};

    let mut node = SingleNode::new(NodeConfig::default());
    must_create(&mut node, "a", 2, &[("retention.ms", "99999")]);
    must_produce(&mut node, "a", 1, batch_of_values(&[b"x", b"y"], 1));
    let ApiResponse::Metadata(before) = node.call(metadata(Some(&["a"]), false)) else {
        panic!()
    };
    node.restart();
    let stripped: Vec<Vec<u8>> = (node.storage.meta_entries().expect("meta reads"))
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| key.starts_with(b"raft/") || key.starts_with(b"epochs/"))
        .collect();
    assert!(!stripped.is_empty(), "the metadata log was stored");
    for key in stripped {
        node.storage
            .apply(&StorageOp::DeleteMeta { key })
            .expect("delete applies");
    }
    node.restart();
    let ApiResponse::Metadata(after) = node.call(metadata(Some(&["a"]), false)) else {
        panic!()
    };
    let (old, new) = (&before.topics[0], &after.topics[0]);
    assert_eq!((&old.name, old.topic_id), (&new.name, new.topic_id));
    assert_eq!(old.partitions.len(), new.partitions.len());
    for partition in &new.partitions {
        assert_eq!(partition.error, ErrorCode::NONE, "{partition:?}");
        assert_eq!(partition.leader_id, 1);
    }
    let records = fetched_records(&node.call(fetch("a", 1, 0, 0, 1)));
    assert_eq!(values(&records), ["x", "y"]);
    assert_eq!(must_produce(&mut node, "a", 1, batch(&[1])), 2);
    // The adoption is in the metadata log now: a further restart keeps it.
    node.restart();
    assert_eq!(node.node.partition_offsets("a", 1), Some((0, 3, 3)));
}
