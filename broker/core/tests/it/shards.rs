//! Shards (docs/sharding.md): a node that is one shard of its broker takes partition roles
//! only for its own partitions, while everything answered for the broker as a whole (the
//! image, Metadata) still names the broker.

use crate::common;

use common::*;
use uuid::Uuid;
use weir_core::shard::{shard_of, Shard};
use weir_core::testing::{batch, ShardedBroker, SingleNode};
use weir_core::topic::PartitionId;
use weir_core::NodeConfig;
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

const PARTITIONS: i32 = 8;

fn topic_id(node: &mut SingleNode, name: &str) -> Uuid {
    let ApiResponse::Metadata(response) = node.call(metadata(Some(&[name]), false)) else {
        panic!("not Metadata");
    };
    response.topics[0].topic_id
}

// Goal: in a broker of two shards, each shard leads exactly the partitions `shard_of` puts
// in it, user topics and `__consumer_offsets` alike (so a group is coordinated by one
// shard), and a clean restart keeps the split.
// Method: `ShardedBroker` with the coordinators found; every partition's leadership on
// both shards against `Shard::holds`, before and after a restart.
#[test]
fn a_shard_leads_only_its_own_partitions() {
    let mut broker = ShardedBroker::new(NodeConfig::default(), 2);
    for key_type in [0, 1] {
        let find = ApiRequest::FindCoordinator(FindCoordinatorRequest {
            key_type,
            keys: vec!["k".into()],
        });
        broker.call(0, find);
    }
    must_create(&mut broker.shards[0], "t", PARTITIONS, &[]);
    broker.feed();
    let check = |broker: &mut ShardedBroker| {
        for (name, count) in [
            ("t", PARTITIONS),
            ("__consumer_offsets", 50),
            ("__transaction_state", 50),
        ] {
            let id = topic_id(&mut broker.shards[0], name);
            for partition in 0..count {
                let key = PartitionId::new(id, partition as usize);
                let holders: Vec<u16> = (0..2u16)
                    .filter(|index| {
                        broker.shards[usize::from(*index)]
                            .node
                            .leads(name, partition)
                    })
                    .collect();
                assert_eq!(holders, [shard_of(key, 2)], "{name}-{partition}");
                let shard = Shard::new(holders[0], 2).expect("shard");
                assert!(shard.holds(key));
            }
        }
    };
    check(&mut broker);
    broker.restart(false);
    check(&mut broker);
}

fn produce_error(broker: &mut ShardedBroker, shard: usize, partition: i32) -> ErrorCode {
    produce_result(&broker.call(shard, produce("t", partition, batch(&[1]), -1))).error
}

fn committed_offset(broker: &mut ShardedBroker, shard: usize, group: &str) -> i64 {
    let request = ApiRequest::OffsetFetch(OffsetFetchRequest {
        groups: vec![OffsetFetchGroup {
            group_id: group.into(),
            topics: Some(vec![("t".into(), vec![0])]),
        }],
        require_stable: true,
    });
    match broker.call(shard, request) {
        ApiResponse::OffsetFetch(r) => r.groups[0].topics[0].partitions[0].committed_offset,
        other => panic!("{other:?}"),
    }
}

// Goal: a broker of three shards serves like one. Every data shard follows shard 0's
// metadata (same applied index, topics created through shard 0 appear in it); each
// partition is led by exactly the shard `shard_for` names, which takes its produces and
// serves its fetches while the others answer NOT_LEADER_OR_FOLLOWER; a group's offsets are
// committed and read on the shard holding its `__consumer_offsets` partition; acknowledged
// data and commits survive a crash of the whole broker; each shard hands out producer ids
// from its own part of the broker's range, never one twice; a topic deleted through shard
// 0 is gone from every shard.
// Method: `ShardedBroker` (the harness drives the shards as the server's driver will:
// shard 0's feed to every data shard after each step), a topic of 12 partitions.
#[test]
fn a_broker_of_three_shards_serves_every_partition_once() {
    let mut broker = ShardedBroker::new(NodeConfig::default(), 3);
    assert!(broker.shards.iter().all(|s| s.node.is_serving()));
    must_create(&mut broker.shards[0], "t", 12, &[]);
    broker.feed();
    let applied = broker.shards[0].node.applied_metadata_index();
    for shard in &broker.shards {
        assert_eq!(shard.node.applied_metadata_index(), applied);
        assert_eq!(shard.node.partition_offsets("t", 11), Some((0, 0, 0)));
    }
    let mut per_shard = [0; 3];
    for partition in 0..12 {
        let home = broker.shard_for("t", partition);
        per_shard[home] += 1;
        for shard in 0..3 {
            let error = produce_error(&mut broker, shard, partition);
            let expected = if shard == home {
                ErrorCode::NONE
            } else {
                ErrorCode::NOT_LEADER_OR_FOLLOWER
            };
            assert_eq!(error, expected, "partition {partition} on shard {shard}");
            assert_eq!(
                broker.shards[shard].node.leads("t", partition),
                shard == home
            );
        }
    }
    assert_eq!(per_shard, [4, 4, 4], "a topic spreads evenly");
    // The router's table (built off the loops) places every partition where its shard is.
    let placement = broker.shards[0].node.placement();
    assert_eq!(placement.applied_index, applied);
    assert_eq!(placement, broker.shards[2].node.placement(), "same image");
    let (id, _) = placement.names["t"];
    for partition in 0..12 {
        let home = u16::try_from(broker.shard_for("t", partition)).expect("fits");
        assert_eq!(placement.by_name("t", partition), Some(home));
        assert_eq!(placement.by_id(id, partition), Some(home));
    }
    assert_eq!(placement.by_name("t", 12), None, "no such partition");
    assert_eq!(placement.by_name("missing", 0), None);
    // A data shard's Metadata is the broker's: it leads every partition.
    let ApiResponse::Metadata(response) = broker.call(2, metadata(Some(&["t"]), false)) else {
        panic!("not Metadata");
    };
    assert_eq!(response.topics[0].partitions.len(), 12);
    assert!(response.topics[0]
        .partitions
        .iter()
        .all(|p| p.leader_id == 1));

    // Groups: coordinated by the shard holding the group's offsets partition.
    let find = ApiRequest::FindCoordinator(FindCoordinatorRequest {
        key_type: 0,
        keys: vec!["g".into()],
    });
    let ApiResponse::FindCoordinator(found) = broker.call(1, find) else {
        panic!("not FindCoordinator");
    };
    assert_eq!(found.coordinators[0].node_id, 1, "{found:?}");
    broker.feed();
    let offsets_partition = weir_core::group::offsets_log::partition_for("g", 50);
    let coordinator = broker.shard_for("__consumer_offsets", offsets_partition);
    let placement = broker.shards[0].node.placement();
    assert_eq!(
        placement.coordinator("g", false).map(usize::from),
        Some(coordinator)
    );
    assert_eq!(
        broker.shards[1].node.coordinator_shard("g", false),
        placement.coordinator("g", false)
    );
    let ApiResponse::OffsetCommit(committed) =
        broker.call(coordinator, offset_commit("g", "", -1, 42))
    else {
        panic!("not OffsetCommit");
    };
    assert_eq!(committed.topics[0].partitions[0].1, ErrorCode::NONE);
    let elsewhere = (coordinator + 1) % 3;
    let ApiResponse::OffsetCommit(refused) = broker.call(elsewhere, offset_commit("g", "", -1, 43))
    else {
        panic!("not OffsetCommit");
    };
    assert_eq!(
        refused.topics[0].partitions[0].1,
        ErrorCode::NOT_COORDINATOR
    );

    // Producer ids: each shard hands out its own part of the broker's range.
    let mut ids = std::collections::BTreeSet::new();
    for round in 0..2 {
        for shard in 0..3 {
            let ApiResponse::InitProducerId(r) = broker.call(shard, init_producer_id(None)) else {
                panic!("not InitProducerId");
            };
            assert_eq!(r.error, ErrorCode::NONE);
            assert_eq!(r.producer_id >> 40, 1, "node 1's range");
            assert_eq!(
                (r.producer_id >> 32) & 0xff,
                shard as i64,
                "shard {shard}'s part"
            );
            assert!(
                ids.insert(r.producer_id),
                "id {} twice (round {round})",
                r.producer_id
            );
        }
    }

    broker.restart(true);
    assert!(broker.shards.iter().all(|s| s.node.is_serving()));
    for shard in 0..3 {
        let ApiResponse::InitProducerId(r) = broker.call(shard, init_producer_id(None)) else {
            panic!("not InitProducerId");
        };
        assert!(
            ids.insert(r.producer_id),
            "id {} reused after a crash",
            r.producer_id
        );
    }
    for partition in 0..12 {
        let home = broker.shard_for("t", partition);
        let response = broker.call(home, fetch("t", partition, 0, 0, 1));
        assert_eq!(fetch_partition(&response).error, ErrorCode::NONE);
        assert_eq!(fetched_records(&response).len(), 1, "partition {partition}");
        assert_eq!(produce_error(&mut broker, home, partition), ErrorCode::NONE);
    }
    assert_eq!(committed_offset(&mut broker, coordinator, "g"), 42);

    let ApiResponse::DeleteTopics(deleted) =
        broker.call(0, delete_topic(TopicRef::Name("t".into())))
    else {
        panic!("not DeleteTopics");
    };
    assert_eq!(deleted.responses[0].error, ErrorCode::NONE);
    broker.advance_ms(10);
    for shard in &broker.shards {
        assert_eq!(shard.node.partition_offsets("t", 0), None);
    }
}

// Goal: shard 0 keeps a bounded backlog for the data shards; past it, the next feed is
// the whole image, and a data shard that installs it ends where shard 0 is.
// Method: more topic creations than FEED_PENDING_MAX entries without feeding, then feed.
#[test]
fn a_feed_backlog_past_its_bound_becomes_the_image() {
    let mut broker = ShardedBroker::new(NodeConfig::default(), 2);
    let topics = weir_core::node::shard::FEED_PENDING_MAX + 10;
    let names: Vec<String> = (0..topics).map(|i| format!("t{i}")).collect();
    for chunk in names.chunks(500) {
        let request = ApiRequest::CreateTopics(CreateTopicsRequest {
            topics: chunk
                .iter()
                .map(|name| match create_topic(name, 1, &[]) {
                    ApiRequest::CreateTopics(mut r) => r.topics.remove(0),
                    _ => unreachable!("create_topic builds CreateTopics"),
                })
                .collect(),
            timeout_ms: 30_000,
            validate_only: false,
        });
        broker.shards[0].call(request);
    }
    let feed = broker.shards[0]
        .node
        .take_metadata_feed()
        .expect("a feed is due");
    assert!(feed.snapshot.is_some() && feed.committed.is_empty());
    broker.shards[1].feed(feed);
    assert_eq!(
        broker.shards[1].node.applied_metadata_index(),
        broker.shards[0].node.applied_metadata_index()
    );
    let last = names.last().expect("names");
    assert_eq!(
        broker.shards[1].node.partition_offsets(last, 0),
        Some((0, 0, 0))
    );
}

fn txn_batch(producer_id: i64, epoch: i16, sequence: i32, value: &str) -> bytes::Bytes {
    let record = weir_wire::records::Record {
        offset: 0,
        timestamp: weir_core::testing::WALL_MS_START,
        key: None,
        value: Some(bytes::Bytes::copy_from_slice(value.as_bytes())),
        headers: Vec::new(),
    };
    let options = weir_wire::records::BatchOptions {
        producer_id,
        producer_epoch: epoch,
        base_sequence: sequence,
        transactional: true,
        ..weir_wire::records::BatchOptions::default()
    };
    let encoded = weir_wire::records::encode_batch(&[record], &options).expect("encodes");
    bytes::Bytes::copy_from_slice(&encoded)
}

/// EndTxn of `tx` at `coordinator`, answered NONE, then 10 ms for the markers.
fn end_txn(
    broker: &mut ShardedBroker,
    coordinator: usize,
    (pid, epoch): (i64, i16),
    committed: bool,
) {
    let end = ApiRequest::EndTxn(txn::EndTxnRequest {
        transactional_id: "tx".into(),
        producer_id: pid,
        producer_epoch: epoch,
        committed,
    });
    let ApiResponse::EndTxn(ended) = broker.call(coordinator, end) else {
        panic!("not EndTxn");
    };
    assert_eq!(ended.error, ErrorCode::NONE);
    broker.advance_ms(10);
}

// Goal: a transaction spanning shards commits or aborts on every partition: the
// coordinator's shard sends each marker to the shard holding the partition (a peer message
// to its own broker, routed by `shard::peer_route`) and the answer comes back to the
// coordinator's shard by its correlation id. read_committed consumers then see the
// committed records and not the aborted ones, on each shard.
// Method: `ShardedBroker` of three shards; a transactional id and two partitions on two
// other shards than each other; one committed transaction, then one aborted.
#[test]
fn a_transaction_across_shards_commits_and_aborts_everywhere() {
    use weir_wire::domain::txn::*;
    let mut broker = ShardedBroker::new(NodeConfig::default(), 3);
    must_create(&mut broker.shards[0], "t", 12, &[]);
    broker.feed();
    let find = ApiRequest::FindCoordinator(FindCoordinatorRequest {
        key_type: 1,
        keys: vec!["tx".into()],
    });
    broker.call(0, find);
    let coordinator = usize::from(
        (broker.shards[0].node.coordinator_shard("tx", true)).expect("txn topic exists"),
    );
    // Two partitions on two shards other than each other.
    let first = (0..12)
        .find(|p| broker.shard_for("t", *p) != coordinator)
        .expect("some");
    let second = (0..12)
        .find(|p| broker.shard_for("t", *p) != broker.shard_for("t", first))
        .expect("some");
    let ApiResponse::InitProducerId(init) = broker.call(
        coordinator,
        ApiRequest::InitProducerId(InitProducerIdRequest {
            transactional_id: Some("tx".into()),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
        }),
    ) else {
        panic!("not InitProducerId");
    };
    assert_eq!(init.error, ErrorCode::NONE);
    let (pid, epoch) = (init.producer_id, init.producer_epoch);
    for (round, committed) in [(0, true), (1, false)] {
        let add = ApiRequest::AddPartitionsToTxn(AddPartitionsToTxnRequest {
            transactional_id: "tx".into(),
            producer_id: pid,
            producer_epoch: epoch,
            topics: vec![TxnTopic {
                name: "t".into(),
                partitions: vec![first, second],
            }],
        });
        let ApiResponse::AddPartitionsToTxn(added) = broker.call(coordinator, add) else {
            panic!("not AddPartitionsToTxn");
        };
        assert!(added.results[0]
            .partitions
            .iter()
            .all(|p| p.error == ErrorCode::NONE));
        for partition in [first, second] {
            let home = broker.shard_for("t", partition);
            let value = format!("r{round}");
            let request = produce("t", partition, txn_batch(pid, epoch, round, &value), -1);
            assert_eq!(
                produce_result(&broker.call(home, request)).error,
                ErrorCode::NONE
            );
        }
        end_txn(&mut broker, coordinator, (pid, epoch), committed);
    }
    for partition in [first, second] {
        let home = broker.shard_for("t", partition);
        let mut request = fetch("t", partition, 0, 0, 0);
        if let ApiRequest::Fetch(f) = &mut request {
            f.isolation_level = 1;
        }
        let response = broker.call(home, request);
        let answer = fetch_partition(&response);
        // Two records and two markers: everything decided, nothing open.
        assert_eq!(
            (answer.high_watermark, answer.last_stable_offset),
            (4, 4),
            "partition {partition} on shard {home}"
        );
        assert_eq!(
            answer.aborted_transactions,
            vec![AbortedTransaction {
                producer_id: pid,
                first_offset: 2
            }]
        );
    }
}

mod random {
    //! Property test: random interleavings of produce (all acks levels) on the shard of
    //! each partition, per-shard sync completion, time, and restarts and crashes of the
    //! whole broker (each shard losing its own unsynced writes) keep every shard's
    //! invariants (checked by the harness after every step), keep each partition led by
    //! exactly one shard, and never lose an acknowledged record.

    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use weir_core::testing::{batch_of_values, WALL_MS_START};
    use weir_core::RequestId;

    const TOPIC_PARTITIONS: i32 = 5;

    #[derive(Debug, Clone)]
    enum Step {
        Produce {
            partition: i32,
            acks: i16,
            value: u8,
        },
        CompleteSyncs {
            shard: usize,
        },
        Advance {
            ms: u64,
        },
        Restart,
        Crash,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0..TOPIC_PARTITIONS, prop::sample::select(vec![0i16, 1, -1]), any::<u8>())
                .prop_map(|(partition, acks, value)| Step::Produce { partition, acks, value }),
            3 => (0..3usize).prop_map(|shard| Step::CompleteSyncs { shard }),
            1 => (0..2_000u64).prop_map(|ms| Step::Advance { ms }),
            1 => Just(Step::Restart),
            1 => Just(Step::Crash),
        ]
    }

    #[derive(Default)]
    struct Model {
        /// Acknowledged records: (partition, offset) -> value.
        acked: BTreeMap<(i32, i64), u8>,
        /// Produces not answered yet: (shard, id) -> (partition, value, acks).
        pending: BTreeMap<(usize, RequestId), (i32, u8, i16)>,
    }

    impl Model {
        fn collect(&mut self, broker: &mut ShardedBroker) {
            let keys: Vec<(usize, RequestId)> = self.pending.keys().copied().collect();
            for (shard, id) in keys {
                let node = &mut broker.shards[shard];
                if node.take_no_response(id).is_some() {
                    self.pending.remove(&(shard, id));
                    continue;
                }
                let Some(response) = node.take(id) else {
                    continue;
                };
                let produced = self.pending.remove(&(shard, id)).expect("pending");
                note_ack(&mut self.acked, produced, &response);
            }
        }

        fn check(&self, broker: &mut ShardedBroker) {
            for partition in 0..TOPIC_PARTITIONS {
                let home = broker.shard_for("t", partition);
                let leaders: Vec<usize> = (0..broker.shards.len())
                    .filter(|s| broker.shards[*s].node.leads("t", partition))
                    .collect();
                assert_eq!(leaders, [home], "partition {partition}");
                let response = broker.call(home, fetch("t", partition, 0, 0, 1));
                let stored: BTreeMap<i64, Vec<u8>> = fetched_records(&response)
                    .into_iter()
                    .map(|r| (r.offset, r.value.map(|v| v.to_vec()).unwrap_or_default()))
                    .collect();
                for ((_, offset), value) in self.acked.range((partition, 0)..(partition + 1, 0)) {
                    assert_eq!(
                        stored.get(offset),
                        Some(&vec![*value]),
                        "acked {offset} lost"
                    );
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        // Goal and method: see the module doc.
        #[test]
        fn random_schedules_on_shards_keep_acked_records(
            count in 2..=3u16,
            steps in prop::collection::vec(step(), 1..50),
        ) {
            let mut broker = ShardedBroker::new(NodeConfig::default(), count);
            must_create(&mut broker.shards[0], "t", TOPIC_PARTITIONS, &[]);
            broker.feed();
            let mut model = Model::default();
            for (conn, step) in steps.into_iter().enumerate() {
                match step {
                    Step::Produce { partition, acks, value } => {
                        let home = broker.shard_for("t", partition);
                        let records = batch_of_values(&[&[value]], WALL_MS_START);
                        let request = produce("t", partition, records, acks);
                        let id = broker.shards[home].send(conn as u64, request);
                        model.pending.insert((home, id), (partition, value, acks));
                    }
                    Step::CompleteSyncs { shard } => {
                        if let Some(node) = broker.shards.get_mut(shard) {
                            node.complete_syncs();
                        }
                    }
                    Step::Advance { ms } => broker.advance_ms(ms),
                    Step::Restart | Step::Crash => {
                        model.collect(&mut broker);
                        model.pending.clear();
                        broker.restart(matches!(step, Step::Crash));
                        model.check(&mut broker);
                    }
                }
                broker.feed();
                model.collect(&mut broker);
            }
            for shard in &mut broker.shards {
                shard.complete_syncs();
            }
            model.collect(&mut broker);
            model.check(&mut broker);
        }
    }
}

// Goal: a group request sent before `__consumer_offsets` exists (a client that skipped
// FindCoordinator on a fresh broker: the router, with no table entry yet, sends it to
// shard 0) is answered by the shard that coordinates the group, as an unsharded broker
// answers it: a first JoinGroup v5 gets MEMBER_ID_REQUIRED, never NOT_COORDINATOR.
// Method: fresh brokers of three shards, one raw-style JoinGroup each to shard 0 for
// groups until one is coordinated by a data shard (shard 0 holds it, creates the topic,
// then reroutes it: `Output::Reroute`); the answer and the shard that gave it.
#[test]
fn a_group_request_before_the_offsets_topic_reaches_its_shard() {
    let join = |group: &str| {
        ApiRequest::JoinGroup(JoinGroupRequest {
            group_id: group.into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            member_id: String::new(),
            group_instance_id: None,
            protocol_type: "consumer".into(),
            protocols: vec![JoinGroupProtocol {
                name: "range".into(),
                metadata: bytes::Bytes::from_static(b"\x00\x01"),
            }],
            reason: None,
            client_id: "raw".into(),
            client_host: "/127.0.0.1".into(),
            member_id_required: true,
        })
    };
    let mut other_shard = 0;
    for n in 0..6 {
        let group = format!("g{n}");
        let mut broker = ShardedBroker::new(NodeConfig::default(), 3);
        let ApiResponse::JoinGroup(answer) = broker.call(0, join(&group)) else {
            panic!("not a JoinGroup answer");
        };
        assert_eq!(answer.error, ErrorCode::MEMBER_ID_REQUIRED, "group {group}");
        assert!(!answer.member_id.is_empty(), "the id to rejoin with");
        let coordinator = broker.shards[0].node.placement().coordinator(&group, false);
        if coordinator != Some(0) {
            other_shard += 1;
        }
    }
    assert!(
        other_shard > 0,
        "no group of six was coordinated by a data shard"
    );
}

// Goal: a consume-transform-produce transaction commits its consumed offsets to a group
// whose coordinator is another shard than the transaction's (KIP-98's design: the group's
// offsets partition joins the transaction, TxnOffsetCommit goes to the group's shard and
// waits there for the marker). The offsets are unstable until the end, committed by a
// commit, dropped by an abort, and kept across a crash of the whole broker.
// Method: `ShardedBroker` of three shards; a transactional id and a group id coordinated by
// different shards; one committed transaction (offset 5), one aborted (offset 9).
#[test]
fn a_transaction_commits_offsets_of_a_group_on_another_shard() {
    use weir_wire::domain::txn::*;
    let mut broker = ShardedBroker::new(NodeConfig::default(), 3);
    must_create(&mut broker.shards[0], "t", 1, &[]);
    for key_type in [0, 1] {
        let find = ApiRequest::FindCoordinator(FindCoordinatorRequest {
            key_type,
            keys: vec!["k".into()],
        });
        broker.call(0, find);
    }
    broker.feed();
    let shard_of_key = |broker: &ShardedBroker, key: &str, transaction: bool| {
        usize::from((broker.shards[0].node.coordinator_shard(key, transaction)).expect("topic"))
    };
    let coordinator = shard_of_key(&broker, "tx", true);
    let group = (0..100)
        .map(|i| format!("g{i}"))
        .find(|g| shard_of_key(&broker, g, false) != coordinator)
        .expect("a group on another shard");
    let group_shard = shard_of_key(&broker, &group, false);
    let ApiResponse::InitProducerId(init) = broker.call(
        coordinator,
        ApiRequest::InitProducerId(InitProducerIdRequest {
            transactional_id: Some("tx".into()),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
        }),
    ) else {
        panic!("not InitProducerId");
    };
    let (pid, epoch) = (init.producer_id, init.producer_epoch);
    let commit_offsets = |offset| txn_offset_commit("tx", &group, (pid, epoch), offset);
    let offset_error = |response: &ApiResponse| match response {
        ApiResponse::TxnOffsetCommit(r) => r.topics[0].partitions[0].error,
        other => panic!("{other:?}"),
    };
    // The transaction's shard is not the group's coordinator.
    let misrouted = broker.call(coordinator, commit_offsets(5));
    assert_eq!(offset_error(&misrouted), ErrorCode::NOT_COORDINATOR);
    for (offset, committed, expected) in [(5, true, 5), (9, false, 5)] {
        let add = ApiRequest::AddOffsetsToTxn(AddOffsetsToTxnRequest {
            transactional_id: "tx".into(),
            producer_id: pid,
            producer_epoch: epoch,
            group_id: group.clone(),
        });
        let ApiResponse::AddOffsetsToTxn(added) = broker.call(coordinator, add) else {
            panic!("not AddOffsetsToTxn");
        };
        assert_eq!(added.error, ErrorCode::NONE);
        let response = broker.call(group_shard, commit_offsets(offset));
        assert_eq!(offset_error(&response), ErrorCode::NONE);
        // Unstable while the transaction is open: require_stable gets an error.
        let request = ApiRequest::OffsetFetch(OffsetFetchRequest {
            groups: vec![OffsetFetchGroup {
                group_id: group.clone(),
                topics: Some(vec![("t".into(), vec![0])]),
            }],
            require_stable: true,
        });
        let ApiResponse::OffsetFetch(fetched) = broker.call(group_shard, request) else {
            panic!("not OffsetFetch");
        };
        let error = fetched.groups[0].topics[0].partitions[0].error;
        assert_eq!(error, ErrorCode::UNSTABLE_OFFSET_COMMIT);
        end_txn(&mut broker, coordinator, (pid, epoch), committed);
        assert_eq!(committed_offset(&mut broker, group_shard, &group), expected);
    }
    broker.restart(true);
    assert_eq!(committed_offset(&mut broker, group_shard, &group), 5);
}
