//! Tiered storage in a cluster (issue 14, item 3): the partition leader uploads, every
//! replica deletes local copies only below the remote end its image confirms, a new
//! leader continues the remote log where the image says it ends (nothing uploaded twice,
//! no hole), a lagging follower that rejoins after local deletion catches up from the
//! leader's local start, and every record acknowledged is read from offset 0 from each
//! leader in turn.
//!
//! Method: five in-process brokers (real `Node`s over `MemStorage`, virtual time), one
//! shared in-memory object store, a tiered one-partition topic on brokers 1-3 with small
//! segments and `local.retention.bytes=1`; the metadata quorum is 3-5 so brokers 1 and 2
//! can both be down while 3 leads.

use crate::common;

use std::collections::BTreeMap;

use common::cluster::Cluster;
use weir_wire::domain::*;

const TOPIC: &str = "t";

/// Every record `at` serves from offset 0: offset -> value.
fn read_all(cluster: &mut Cluster, at: i32) -> BTreeMap<i64, String> {
    (cluster.read_all(at, TOPIC).into_iter())
        .map(|r| {
            let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default());
            (r.offset, value.into_owned())
        })
        .collect()
}

fn write(cluster: &mut Cluster, leader: i32, value: &str) -> i64 {
    cluster.write(leader, TOPIC, common::keyed_record(Some("k"), Some(value)))
}

fn local_start(cluster: &Cluster, at: i32) -> i64 {
    cluster.members[&at]
        .node
        .partition_offsets(TOPIC, 0)
        .expect("partition")
        .0
}

/// The remote log as `at`'s image has it: (base, end) of each segment.
fn remote_segments(cluster: &Cluster, at: i32) -> Vec<(i64, i64)> {
    (cluster.members[&at].node.remote_log(TOPIC, 0).into_iter())
        .flat_map(|log| log.segments.values())
        .map(|s| (s.base_offset, s.end_offset))
        .collect()
}

fn check_all(read: &BTreeMap<i64, String>, written: &BTreeMap<i64, String>) {
    let missing: Vec<&i64> = written.keys().filter(|o| !read.contains_key(o)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged offsets not read: {missing:?}"
    );
    for (offset, value) in written {
        assert_eq!(read.get(offset), Some(value), "offset {offset}");
    }
}

/// Five brokers sharing an object store (voters 3-5), and the tiered topic on 1-3.
fn tiered_cluster() -> Cluster {
    let mut cluster = Cluster::new(&[1, 2, 3, 4, 5], &[3, 4, 5], |config| {
        config.remote_storage_enable = true;
        config.remote_log_task_interval_ms = 100;
        config.retention_check_interval_ms = 100;
    });
    let topic = CreatableTopic {
        name: TOPIC.into(),
        num_partitions: -1,
        replication_factor: -1,
        assignments: vec![(0, vec![1, 2, 3])],
        configs: [
            ("remote.storage.enable", "true"),
            ("segment.bytes", "1024"),
            ("local.retention.bytes", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), Some(v.to_string())))
        .collect(),
    };
    cluster.create(1, topic);
    cluster
}

// Goal: see the module doc.
#[test]
fn leaders_upload_in_turn_and_every_record_stays_readable() {
    let mut cluster = tiered_cluster();
    let first = cluster.settle(TOPIC, &[1, 2, 3]);
    assert_eq!(first, 1, "the preferred replica leads");
    // Broker 3 misses the first writes, their uploads and the local deletions.
    cluster.kill(3);
    let mut written = BTreeMap::new();
    for i in 0..150 {
        let value = format!("a{i:04}-{}", "x".repeat(40));
        written.insert(write(&mut cluster, 1, &value), value);
    }
    cluster.advance_ms(3_000);
    let uploaded = remote_segments(&cluster, 1);
    assert!(!uploaded.is_empty(), "the leader uploaded");
    assert!(uploaded.iter().all(|s| s.0 >= 0));
    assert!(
        uploaded.windows(2).all(|w| w[0].1 == w[1].0),
        "no hole: {uploaded:?}"
    );
    for at in [1, 2] {
        let start = local_start(&cluster, at);
        assert!(start > 0, "broker {at} deleted uploaded local copies");
        assert!(
            start <= uploaded.last().expect("segments").1,
            "only confirmed ones"
        );
    }
    check_all(&read_all(&mut cluster, 1), &written);
    // The lagging broker rejoins: it resets to the leader's local start and catches up.
    cluster.restart(3);
    cluster.settle(TOPIC, &[1, 2, 3]);
    // The leader fails over to 2, which continues the remote log; then to 3.
    cluster.kill(1);
    let second = cluster.settle(TOPIC, &[]);
    assert_eq!(second, 2);
    for i in 0..100 {
        let value = format!("b{i:04}-{}", "y".repeat(40));
        written.insert(write(&mut cluster, 2, &value), value);
    }
    cluster.advance_ms(3_000);
    let after = remote_segments(&cluster, 2);
    assert!(
        after.len() > uploaded.len(),
        "the new leader uploads: {after:?}"
    );
    assert!(
        after.windows(2).all(|w| w[0].1 == w[1].0),
        "no hole: {after:?}"
    );
    check_all(&read_all(&mut cluster, 2), &written);
    cluster.settle(TOPIC, &[2, 3]);
    cluster.advance_ms(1_000);
    cluster.kill(2);
    let third = cluster.settle(TOPIC, &[]);
    assert_eq!(third, 3);
    check_all(&read_all(&mut cluster, 3), &written);
    // Every object in the store is a segment of the remote log, except at most one upload
    // per deposed leader that was in flight when it lost leadership (an orphan younger
    // than the sweep's minimum age).
    let referenced: Vec<String> = (cluster.members[&3].node.remote_log(TOPIC, 0).into_iter())
        .flat_map(|log| log.segments.values())
        .map(|s| s.object_key.clone())
        .collect();
    let strays: Vec<String> = (cluster.remote.keys().into_iter())
        .filter(|key| !referenced.contains(key))
        .collect();
    assert!(strays.len() <= 2, "stray objects {strays:?}");
}

// Goal: records DeleteRecords deleted from a tiered partition stay deleted after a
// failover, in both tiers: the remote log start moves through the metadata quorum (every
// leader elected after the answer applied it first), and the answer waits for every
// in-sync follower's local log to start there too. Method: three replicas, uploads, a few
// records only the local logs hold, DeleteRecords past the remote end, then kill the
// leader and read from its successor.
#[test]
fn deleted_records_stay_deleted_in_both_tiers_after_a_failover() {
    use crate::delete_records::{delete_records, deleted};
    let mut cluster = tiered_cluster();
    assert_eq!(cluster.settle(TOPIC, &[1, 2, 3]), 1);
    for i in 0..150 {
        write(&mut cluster, 1, &format!("a{i:04}-{}", "x".repeat(40)));
    }
    // A few small records after the last upload: the active segment, local only.
    let mut end = 150;
    let remote_end = loop {
        cluster.advance_ms(1_000);
        let remote_end = remote_segments(&cluster, 1).last().expect("uploads").1;
        if end - remote_end >= 3 {
            break remote_end;
        }
        end = write(&mut cluster, 1, "b") + 1;
    };
    for at in [1, 2, 3] {
        assert!(local_start(&cluster, at) <= remote_end, "broker {at}");
    }
    let target = remote_end + 2;
    let response = cluster.call(1, delete_records(TOPIC, 0, target));
    assert_eq!(
        deleted(&response),
        (weir_wire::error::ErrorCode::NONE, target)
    );
    let remote = cluster.members[&1]
        .node
        .remote_log(TOPIC, 0)
        .expect("remote");
    assert_eq!(
        (remote.log_start_offset, remote.segments.len()),
        (target, 0)
    );
    for at in [1, 2, 3] {
        assert_eq!(local_start(&cluster, at), target, "broker {at}");
    }
    cluster.kill(1);
    let next = cluster.settle(TOPIC, &[]);
    assert_ne!(next, 1);
    let below = cluster.call(next, common::fetch(TOPIC, 0, target - 1, 0, 1));
    assert_eq!(
        common::fetch_partition(&below).error,
        weir_wire::error::ErrorCode::OFFSET_OUT_OF_RANGE,
        "nothing below the start"
    );
    let read: Vec<i64> = (cluster.read_from(next, TOPIC, target).into_iter())
        .map(|r| r.offset)
        .collect();
    assert_eq!(read, (target..end).collect::<Vec<_>>());
}
