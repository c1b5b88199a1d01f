//! Log compaction in a cluster (issue 14, item 2): every replica cleans its own log, a
//! follower that was down while its leader compacted catches up across the leader's gaps,
//! and a consumer reading from whichever replica leads, before and after failovers, sees
//! the same latest value for every key at the same offset.
//!
//! Method: three in-process brokers (real `Node`s over `MemStorage`, virtual time), a
//! compacted topic replicated on all three with small segments; broker 3 is down while
//! broker 1 (the leader) takes the writes and compacts; broker 3 comes back and catches up;
//! then the leader is killed twice in turn and the log is read from each new leader.
//!
//! The internal topics (`__consumer_offsets`, `__transaction_state`), replicated on all
//! three brokers, are compacted on every replica too, and the coordinator that takes over
//! after a failover (or that recovers from its own compacted copy) knows every latest
//! record: the `*_is_compacted_on_every_replica_and_survives_failover` tests.

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

const OFFSETS: &str = "__consumer_offsets";
const GROUPS: [&str; 2] = ["g1", "g2"];

/// A simple (memberless) commit of `t`-`partition` at `offset` by `group`, with metadata
/// naming the offset so a stale record is told apart from the latest.
fn commit_to(group: &str, partition: i32, offset: i64) -> ApiRequest {
    ApiRequest::OffsetCommit(OffsetCommitRequest {
        group_id: group.into(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: vec![OffsetCommitTopic {
            name: "t".into(),
            partitions: vec![OffsetCommitPartition {
                partition,
                committed_offset: offset,
                committed_leader_epoch: 0,
                metadata: Some(format!("m{offset}")),
            }],
        }],
    })
}

/// `group`'s committed offset (and metadata) of `t`-`partition` as node `at` answers it.
fn committed(cluster: &mut Cluster, at: i32, group: &str, partition: i32) -> (i64, String) {
    let request = ApiRequest::OffsetFetch(OffsetFetchRequest {
        groups: vec![OffsetFetchGroup {
            group_id: group.into(),
            topics: Some(vec![("t".into(), vec![partition])]),
        }],
        require_stable: false,
    });
    for _ in 0..100 {
        let ApiResponse::OffsetFetch(r) = cluster.call(at, request.clone()) else {
            panic!("OffsetFetch answer expected")
        };
        let group = &r.groups[0];
        if group.error == weir_wire::error::ErrorCode::COORDINATOR_LOAD_IN_PROGRESS {
            cluster.advance_ms(100);
            continue;
        }
        assert!(group.error.is_ok(), "{r:?}");
        let p = &group.topics[0].partitions[0];
        return (p.committed_offset, p.metadata.clone().unwrap_or_default());
    }
    panic!("node {at} kept loading the offsets")
}

/// The group coordinator of the test's first group as `asked` reports it; never `not`.
fn coordinator(cluster: &mut Cluster, asked: i32, not: Option<i32>) -> i32 {
    cluster.find_coordinator(asked, 0, GROUPS[0], not)
}

/// `__consumer_offsets`-0 as node `id` holds it: (high watermark, bytes on this broker),
/// and the bytes its cleaner removed so far.
fn offsets_log(cluster: &Cluster, id: i32) -> (i64, u64, u64) {
    let snapshot = cluster.members[&id].node.metrics_snapshot(cluster.now);
    let partition = (snapshot.partitions.iter())
        .find(|p| p.topic == OFFSETS && p.partition == 0)
        .expect("every broker replicates the offsets partition");
    (
        partition.high_watermark,
        partition.size_bytes,
        snapshot.cleaner_bytes_cleaned,
    )
}

// Goal (issue 14, item 2): the internal topics are compacted in cluster mode, on the
// leader and on every follower, and a coordinator that takes over, or that recovers from
// its own compacted log, still answers every group's latest committed offset.
// Method: three brokers; `__consumer_offsets` (one partition, replication factor 3,
// 4 KiB segments so its segments close); two groups commit three partitions 400 times
// each while time passes; then every replica's copy of the partition is measured (a
// commit batch is at least 61 bytes, so 800 uncompacted commits hold at least 48 KB),
// the coordinator is killed and the new one asked for every offset, and finally the whole
// cluster is restarted from storage and asked again.
#[test]
fn offsets_topic_is_compacted_on_every_replica_and_survives_failover() {
    const ROUNDS: i64 = 400;
    let mut cluster = Cluster::new(&[1, 2, 3], &[1, 2, 3], |config| {
        config.group_initial_rebalance_delay_ms = 0;
        config.offsets_topic_segment_bytes = 4_096;
        config.cleaner_backoff_ms = 100;
    });
    let first = coordinator(&mut cluster, 1, None);
    cluster.create(
        first,
        CreatableTopic {
            name: "t".into(),
            num_partitions: 3,
            replication_factor: 3,
            assignments: Vec::new(),
            configs: Vec::new(),
        },
    );
    let leader = cluster.settle(OFFSETS, &[1, 2, 3]);
    assert_eq!(leader, first, "the coordinator leads the offsets partition");
    let mut latest = BTreeMap::new();
    for round in 0..ROUNDS {
        for group in GROUPS {
            let partition = i32::try_from(round % 3).expect("small");
            let response = cluster.call(leader, commit_to(group, partition, round));
            let ApiResponse::OffsetCommit(r) = response else {
                panic!("{response:?}")
            };
            assert!(r.topics[0].partitions[0].1.is_ok(), "{r:?}");
            latest.insert((group, partition), round);
        }
        if round % 50 == 49 {
            cluster.advance_ms(200);
        }
    }
    cluster.advance_ms(3_000);
    let commits = 2 * ROUNDS;
    for id in [1, 2, 3] {
        let (high_watermark, size, cleaned) = offsets_log(&cluster, id);
        assert!(
            high_watermark >= commits,
            "broker {id}: every commit has its offset ({high_watermark})"
        );
        assert!(cleaned > 0, "broker {id}'s cleaner removed nothing");
        assert!(
            size < 12_000,
            "broker {id} holds {size} bytes of the offsets log: not compacted"
        );
    }
    let check = |cluster: &mut Cluster, at: i32| {
        for ((group, partition), round) in &latest {
            assert_eq!(
                committed(cluster, at, group, *partition),
                (*round, format!("m{round}")),
                "{group} t-{partition} at broker {at}"
            );
        }
    };
    check(&mut cluster, leader);
    // The coordinator dies; a follower, whose copy its own cleaner compacted, takes over.
    cluster.kill(leader);
    let follower = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader)
        .expect("two followers");
    let second = coordinator(&mut cluster, follower, Some(leader));
    check(&mut cluster, second);
    let records = cluster.read_all(second, OFFSETS).len();
    assert!(
        records < 200,
        "the new leader serves a compacted log: {records} records"
    );
    // Every broker restarts from its own compacted storage: whichever leads now rebuilt
    // the offsets from it.
    for id in [1, 2, 3] {
        if !cluster.down.contains(&id) {
            cluster.kill(id);
        }
    }
    for id in [1, 2, 3] {
        cluster.restart(id);
    }
    let third = coordinator(&mut cluster, 1, None);
    check(&mut cluster, third);
}

const TXN_STATE: &str = "__transaction_state";

/// The transaction coordinator of `id` as `asked` reports it; never `not`.
fn txn_coordinator(cluster: &mut Cluster, asked: i32, id: &str, not: Option<i32>) -> i32 {
    cluster.find_coordinator(asked, 1, id, not)
}

/// InitProducerId for `id` at `at`, retrying while the coordinator loads or moves:
/// (producer id, epoch).
fn init_producer(cluster: &mut Cluster, at: i32, id: &str) -> (i64, i16) {
    for _ in 0..100 {
        let response = cluster.call(at, common::init_producer_id(Some(id)));
        let ApiResponse::InitProducerId(r) = response else {
            panic!("InitProducerId answer expected: {response:?}")
        };
        if r.error.is_ok() {
            return (r.producer_id, r.producer_epoch);
        }
        cluster.advance_ms(100);
    }
    panic!("InitProducerId of {id} kept failing at {at}")
}

// Goal (issue 14, item 2): `__transaction_state` is compacted in cluster mode on every
// replica too, and the transaction coordinator that takes over after a failover knows
// every transactional id's latest state. Method: three brokers, `__transaction_state`
// with one partition (replication factor 3, 4 KiB segments); InitProducerId for one id
// 300 times (each bumps its epoch and writes the id's state record) and once for a
// second id; every replica's copy is measured; the coordinator is killed and the new one
// must bump both ids from their latest epochs under the same producer ids.
#[test]
fn transaction_state_is_compacted_on_every_replica_and_survives_failover() {
    let mut cluster = Cluster::new(&[1, 2, 3], &[1, 2, 3], |config| {
        config.transaction_state_log_num_partitions = 1;
        config.transaction_state_log_segment_bytes = 4_096;
        config.cleaner_backoff_ms = 100;
    });
    let first = txn_coordinator(&mut cluster, 1, "busy", None);
    cluster.settle(TXN_STATE, &[1, 2, 3]);
    let (idle_pid, idle_epoch) = init_producer(&mut cluster, first, "idle");
    let (busy_pid, mut busy_epoch) = init_producer(&mut cluster, first, "busy");
    for round in 1..300 {
        let (pid, epoch) = init_producer(&mut cluster, first, "busy");
        assert_eq!((pid, epoch), (busy_pid, busy_epoch + 1), "round {round}");
        busy_epoch = epoch;
        if round % 50 == 49 {
            cluster.advance_ms(200);
        }
    }
    cluster.advance_ms(3_000);
    for id in [1, 2, 3] {
        let snapshot = cluster.members[&id].node.metrics_snapshot(cluster.now);
        let partition = (snapshot.partitions.iter())
            .find(|p| p.topic == TXN_STATE && p.partition == 0)
            .expect("every broker replicates the transaction state partition");
        assert!(
            partition.high_watermark >= 301,
            "broker {id}: every state record has its offset ({})",
            partition.high_watermark
        );
        assert!(
            snapshot.cleaner_bytes_cleaned > 0,
            "broker {id}'s cleaner removed nothing"
        );
        // At least 301 records of at least 61 bytes: over 18 KB uncompacted.
        assert!(
            partition.size_bytes < 7_000,
            "broker {id} holds {} bytes of the transaction state log: not compacted",
            partition.size_bytes
        );
    }
    cluster.kill(first);
    let other = [1, 2, 3]
        .into_iter()
        .find(|id| *id != first)
        .expect("two followers");
    let second = txn_coordinator(&mut cluster, other, "busy", Some(first));
    assert_eq!(
        init_producer(&mut cluster, second, "busy"),
        (busy_pid, busy_epoch + 1),
        "the new coordinator knew busy's latest epoch"
    );
    assert_eq!(
        init_producer(&mut cluster, second, "idle"),
        (idle_pid, idle_epoch + 1),
        "the new coordinator knew idle, written once at the start"
    );
}
