//! Log compaction in a cluster (issue 14, item 2): every replica cleans its own log, a
//! follower that was down while its leader compacted catches up across the leader's gaps,
//! and a consumer reading from whichever replica leads, before and after failovers, sees
//! the same latest value for every key at the same offset.
//!
//! Method: three in-process brokers (real `Node`s over `MemStorage`, virtual time), a
//! compacted topic replicated on all three with small segments; broker 3 is down while
//! broker 1 (the leader) takes the writes and compacts; broker 3 comes back and catches up;
//! then the leader is killed twice in turn and the log is read from each new leader.

use crate::common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::cluster::Cluster;
use weir_wire::domain::*;

const TOPIC: &str = "c";

fn keyed(key: &str, value: &str) -> Bytes {
    common::keyed_record(Some(key), Some(value))
}

fn write(cluster: &mut Cluster, leader: i32, key: &str, value: &str) -> i64 {
    cluster.write(leader, TOPIC, keyed(key, value))
}

/// Every record `at` serves from offset 0: offset -> (key, value).
fn read_all(cluster: &mut Cluster, at: i32) -> BTreeMap<i64, (String, String)> {
    let text =
        |b: &Option<Bytes>| String::from_utf8_lossy(b.as_deref().unwrap_or_default()).into_owned();
    (cluster.read_all(at, TOPIC).into_iter())
        .map(|r| (r.offset, (text(&r.key), text(&r.value))))
        .collect()
}

fn check_latest(read: &BTreeMap<i64, (String, String)>, latest: &BTreeMap<String, (i64, String)>) {
    for (key, (offset, value)) in latest {
        assert_eq!(
            read.get(offset),
            Some(&(key.clone(), value.clone())),
            "latest {key}"
        );
    }
    // Nothing older than a key's latest value survives in front of it... except what the
    // never-cleaned active segment still holds: every record read must be one written.
    for (offset, (key, _)) in read {
        let (latest_offset, _) = &latest[key];
        assert!(
            offset <= latest_offset,
            "{key} read at {offset} past its latest"
        );
    }
}

#[test]
fn replicas_compact_and_agree_across_failovers() {
    // Brokers 1-3 hold the partition; the metadata quorum is 3-5, so brokers 1 and 2 can
    // both be down while 3 leads.
    let mut cluster = Cluster::new(&[1, 2, 3, 4, 5], &[3, 4, 5], |config| {
        config.cleaner_backoff_ms = 100;
    });
    cluster.create(
        1,
        CreatableTopic {
            name: TOPIC.into(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: vec![(0, vec![1, 2, 3])],
            configs: [
                ("cleanup.policy", "compact"),
                ("segment.bytes", "1024"),
                ("min.cleanable.dirty.ratio", "0.01"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect(),
        },
    );
    let first = cluster.settle(TOPIC, &[1, 2, 3]);
    assert_eq!(first, 1, "the preferred replica leads");
    // Broker 3 misses everything the leader writes and compacts.
    let behind = 3;
    cluster.kill(behind);
    let leader_now = cluster.settle(TOPIC, &[1]);
    let mut latest = BTreeMap::new();
    for round in 0..40 {
        for key in ["a", "b", "c"] {
            let value = format!("{key}{round}");
            let offset = write(&mut cluster, leader_now, key, &value);
            latest.insert(key.to_string(), (offset, value));
        }
    }
    let tail = write(&mut cluster, leader_now, "z", "tail");
    latest.insert("z".to_string(), (tail, "tail".to_string()));
    cluster.advance_ms(2_000);
    let compacted = read_all(&mut cluster, leader_now);
    assert!(
        compacted.len() < 60,
        "the leader compacted: {} records left",
        compacted.len()
    );
    check_latest(&compacted, &latest);
    // The lagging broker fetches across the leader's gaps and rejoins the ISR.
    cluster.restart(behind);
    cluster.settle(TOPIC, &[1, 2, 3]);
    cluster.advance_ms(2_000);
    // Brokers 1 and then 2 are killed: 2 and then 3 (which caught up across the gaps) lead,
    // and each serves every key's latest value at its offset.
    cluster.kill(1);
    let second = cluster.settle(TOPIC, &[]);
    assert_eq!(second, 2);
    check_latest(&read_all(&mut cluster, 2), &latest);
    cluster.kill(2);
    let third = cluster.settle(TOPIC, &[]);
    assert_eq!(third, 3, "the broker that caught up leads");
    check_latest(&read_all(&mut cluster, 3), &latest);
    // And it compacts on: its own cleaner keeps only latest values as writes go on.
    for round in 0..40 {
        let value = format!("late{round}");
        let offset = write(&mut cluster, 3, "a", &value);
        latest.insert("a".to_string(), (offset, value));
    }
    let tail = write(&mut cluster, 3, "z", "tail2");
    latest.insert("z".to_string(), (tail, "tail2".to_string()));
    cluster.advance_ms(2_000);
    let read = read_all(&mut cluster, 3);
    check_latest(&read, &latest);
    assert!(
        read.len() < 40,
        "broker 3 compacted: {} records",
        read.len()
    );
}
