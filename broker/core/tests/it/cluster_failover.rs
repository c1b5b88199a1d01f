//! Failover in a cluster of in-process nodes: a killed partition leader is fenced within
//! the closed-connection grace (not a whole session), a classic consumer group survives
//! the move of its coordinator, and an admin answer whose record a new controller replaced
//! is an error, never a success.
//!
//! Fencing goal: when a broker's process dies its peer connections close at once; the
//! controller fences it `PEER_CLOSED_GRACE_MS` later unless it heartbeats, so a partition
//! it led gets a new leader, with a new epoch, about a second after the kill rather than
//! after `broker.session.timeout.ms` (6 s). Method: the harness below; kill the leader of
//! a topic partition (not the controller), check the survivors still name it just before
//! the grace ends and name a new leader at a higher epoch shortly after.
//!
//! Goal: a group that is Stable on coordinator A (the leader of the group's partition of
//! `__consumer_offsets`) keeps its members when A dies: the other brokers replay A's group
//! record as they replicate the partition, the one that takes the partition's leadership
//! takes the group over, and the member's Heartbeat, SyncGroup and OffsetCommit with its old
//! id and generation are accepted there without a rejoin (before group records they got
//! UNKNOWN_MEMBER_ID). The new coordinator gives the member a full session from the
//! take-over, and expires it one session later if it stays silent.
//!
//! Method: three `Node`s in cluster mode driven in one thread with virtual time (10 ms
//! steps): outputs applied to each node's `MemStorage`, syncs completed at once, peer
//! messages delivered between live nodes. "Killing" a node stops delivering to and from it
//! and tells the others its connections closed, as a SIGKILL does.

use crate::common;

use common::cluster::Cluster;

use bytes::Bytes;
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

const GROUP: &str = "g";
const SESSION_MS: i32 = 10_000;

/// The group calls of these scenarios.
trait GroupCalls {
    fn coordinator(&mut self, asked: i32) -> Option<i32>;
    fn call_coordinated(&mut self, to: i32, request: ApiRequest) -> ApiResponse;
}

impl GroupCalls for Cluster {
    /// The group's coordinator as `asked` reports it, once it reports one.
    fn coordinator(&mut self, asked: i32) -> Option<i32> {
        let request = ApiRequest::FindCoordinator(FindCoordinatorRequest {
            key_type: 0,
            keys: vec![GROUP.into()],
        });
        match self.call(asked, request) {
            ApiResponse::FindCoordinator(r) if r.coordinators[0].error.is_ok() => {
                Some(r.coordinators[0].node_id)
            }
            _ => None,
        }
    }

    /// Retry `request` on `to` while it answers with a retriable coordinator error.
    fn call_coordinated(&mut self, to: i32, request: ApiRequest) -> ApiResponse {
        for _ in 0..100 {
            let response = self.call(to, request.clone());
            if !matches!(
                group_error(&response),
                Some(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)
            ) {
                return response;
            }
            self.advance_ms(100);
        }
        panic!("node {to} kept loading the group's coordinator")
    }
}

/// The active controller as node 1 knows it, looking every 100 ms for up to 20 s.
fn wait_for_controller(cluster: &mut Cluster) -> Option<i32> {
    for _ in 0..200 {
        if let Some(controller) = cluster.members[&1].node.controller_id() {
            return Some(controller);
        }
        cluster.advance_ms(100);
    }
    None
}

/// The group's coordinator as node 1 reports it, asking every 100 ms for up to 20 s.
fn wait_for_coordinator(cluster: &mut Cluster) -> Option<i32> {
    for _ in 0..200 {
        if let Some(coordinator) = cluster.coordinator(1) {
            return Some(coordinator);
        }
        cluster.advance_ms(100);
    }
    None
}

fn group_error(response: &ApiResponse) -> Option<ErrorCode> {
    match response {
        ApiResponse::JoinGroup(r) => Some(r.error),
        ApiResponse::SyncGroup(r) => Some(r.error),
        ApiResponse::Heartbeat(r) => Some(r.error),
        ApiResponse::OffsetCommit(r) => Some(r.topics[0].partitions[0].1),
        _ => None,
    }
}

fn join() -> ApiRequest {
    ApiRequest::JoinGroup(JoinGroupRequest {
        group_id: GROUP.into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: 20_000,
        member_id: String::new(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupProtocol {
            name: "range".into(),
            metadata: Bytes::from_static(b"sub"),
        }],
        reason: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        member_id_required: false,
    })
}

fn sync(member_id: &str, assignment: &'static [u8]) -> ApiRequest {
    let assignments = if assignment.is_empty() {
        Vec::new()
    } else {
        vec![(member_id.to_string(), Bytes::from_static(assignment))]
    };
    ApiRequest::SyncGroup(SyncGroupRequest {
        group_id: GROUP.into(),
        generation_id: 1,
        member_id: member_id.into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments,
    })
}

fn heartbeat(member_id: &str) -> ApiRequest {
    ApiRequest::Heartbeat(HeartbeatRequest {
        group_id: GROUP.into(),
        generation_id: 1,
        member_id: member_id.into(),
        group_instance_id: None,
    })
}

fn commit(member_id: &str, offset: i64) -> ApiRequest {
    common::offset_commit(GROUP, member_id, 1, offset)
}

fn describe_state(cluster: &mut Cluster, at: i32) -> (String, Vec<String>) {
    let request = ApiRequest::DescribeGroups(DescribeGroupsRequest {
        groups: vec![GROUP.into()],
        include_authorized_operations: false,
    });
    let ApiResponse::DescribeGroups(r) = cluster.call(at, request) else {
        panic!("DescribeGroups answer expected")
    };
    let group = &r.groups[0];
    let members = group.members.iter().map(|m| m.member_id.clone()).collect();
    (group.group_state.clone(), members)
}

#[test]
fn group_survives_coordinator_failover() {
    let mut cluster = Cluster::new(&[1, 2, 3], &[1, 2, 3], |c| {
        c.group_initial_rebalance_delay_ms = 0
    });
    // The controller creates __consumer_offsets on the first FindCoordinator.
    let a = wait_for_coordinator(&mut cluster).expect("a coordinator within 20 s");
    let create = ApiRequest::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: "t".into(),
            num_partitions: 1,
            replication_factor: 3,
            assignments: Vec::new(),
            configs: Vec::new(),
        }],
        timeout_ms: 30_000,
        validate_only: false,
    });
    let ApiResponse::CreateTopics(created) = cluster.call(a, create) else {
        panic!("CreateTopics answer expected")
    };
    assert_eq!(created.topics[0].error, ErrorCode::NONE, "{created:?}");
    cluster.advance_ms(1_000);

    // Stable on A: one member, generation 1, an assignment.
    let ApiResponse::JoinGroup(joined) = cluster.call_coordinated(a, join()) else {
        panic!("JoinGroup answer expected")
    };
    assert_eq!((joined.error, joined.generation_id), (ErrorCode::NONE, 1));
    let member_id = joined.member_id;
    let ApiResponse::SyncGroup(synced) = cluster.call(a, sync(&member_id, b"p0")) else {
        panic!("SyncGroup answer expected")
    };
    assert_eq!(synced.error, ErrorCode::NONE);
    assert_eq!(synced.assignment, Bytes::from_static(b"p0"));
    let committed = cluster.call(a, commit(&member_id, 5));
    assert_eq!(group_error(&committed), Some(ErrorCode::NONE));
    // The followers replayed the group's record while replicating: they mirror it.
    cluster.advance_ms(1_000);
    let followers: Vec<i32> = cluster.live().into_iter().filter(|id| *id != a).collect();
    for follower in &followers {
        let (state, members) = describe_state(&mut cluster, *follower);
        assert_eq!(
            (state.as_str(), members),
            ("Stable", vec![member_id.clone()])
        );
    }

    // A dies; another broker takes the offsets partition and the group.
    cluster.kill(a);
    let mut b = None;
    for _ in 0..300 {
        cluster.advance_ms(100);
        b = cluster.coordinator(followers[0]).filter(|c| *c != a);
        if b.is_some() {
            break;
        }
    }
    let b = b.expect("a new coordinator within 30 s");
    let taken_over_at = cluster.now.instant;
    // The member, which kept its id and generation, carries on without a rejoin.
    let response = cluster.call_coordinated(b, heartbeat(&member_id));
    assert_eq!(
        group_error(&response),
        Some(ErrorCode::NONE),
        "{response:?}"
    );
    let response = cluster.call_coordinated(b, commit(&member_id, 6));
    assert_eq!(
        group_error(&response),
        Some(ErrorCode::NONE),
        "{response:?}"
    );
    let ApiResponse::SyncGroup(again) = cluster.call_coordinated(b, sync(&member_id, b"")) else {
        panic!("SyncGroup answer expected")
    };
    assert_eq!(
        (again.error, again.assignment),
        (ErrorCode::NONE, Bytes::from_static(b"p0"))
    );

    // Silent from now on: expired one session after its last heartbeat, not before.
    let waited_ms = cluster
        .now
        .instant
        .saturating_duration_since(taken_over_at)
        .as_millis();
    assert!(
        waited_ms < u128::from(SESSION_MS.unsigned_abs()),
        "took {waited_ms} ms"
    );
    cluster.advance_ms(u64::from(SESSION_MS.unsigned_abs()) - 2_000);
    assert_eq!(describe_state(&mut cluster, b).0, "Stable");
    cluster.advance_ms(3_000);
    let (state, members) = describe_state(&mut cluster, b);
    assert_eq!((state.as_str(), members.len()), ("Empty", 0));
}

/// `(leader, leader epoch)` of `topic`-0 in `at`'s Metadata.
fn leadership(cluster: &mut Cluster, at: i32, topic: &str) -> Option<(i32, i32)> {
    let request = common::metadata(Some(&[topic]), false);
    let ApiResponse::Metadata(r) = cluster.call(at, request) else {
        panic!("Metadata answer expected")
    };
    let partition = r.topics.first()?.partitions.first()?;
    Some((partition.leader_id, partition.leader_epoch))
}

#[test]
fn killed_leader_is_fenced_within_the_closed_connection_grace() {
    let mut cluster = Cluster::new(&[1, 2, 3], &[1, 2, 3], |c| {
        c.group_initial_rebalance_delay_ms = 0
    });
    let controller = wait_for_controller(&mut cluster).expect("a controller within 20 s");
    // The victim leads the partition and is not the controller (a dead controller first
    // needs a Raft election, a different path).
    let victim = cluster
        .live()
        .into_iter()
        .find(|id| *id != controller)
        .expect("three nodes");
    let mut replicas = vec![victim];
    replicas.extend(cluster.live().into_iter().filter(|id| *id != victim));
    let create = ApiRequest::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: "f".into(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: vec![(0, replicas)],
            configs: Vec::new(),
        }],
        timeout_ms: 30_000,
        validate_only: false,
    });
    // Brokers register and are unfenced within a few heartbeats; until then the
    // assignment names brokers the controller does not know as live.
    let mut outcome = None;
    for _ in 0..100 {
        let ApiResponse::CreateTopics(created) = cluster.call(controller, create.clone()) else {
            panic!("CreateTopics answer expected")
        };
        outcome = Some(created.topics[0].clone());
        if created.topics[0].error == ErrorCode::NONE {
            break;
        }
        cluster.advance_ms(200);
    }
    let outcome = outcome.expect("at least one attempt");
    assert_eq!(outcome.error, ErrorCode::NONE, "{outcome:?}");
    cluster.advance_ms(1_000);
    let survivor = controller;
    let (leader, epoch) = leadership(&mut cluster, survivor, "f").expect("a leader");
    assert_eq!(leader, victim, "the first assigned replica leads");
    cluster.kill(victim);
    let grace = weir_core::node::PEER_CLOSED_GRACE_MS;
    cluster.advance_ms(grace - 100);
    let (before, _) = leadership(&mut cluster, survivor, "f").expect("a leader entry");
    assert_eq!(before, victim, "fenced before the grace ended");
    cluster.advance_ms(400);
    let (after, after_epoch) = leadership(&mut cluster, survivor, "f").expect("a leader");
    assert!(
        after != victim && after >= 0 && after_epoch > epoch,
        "leader {after} epoch {after_epoch} ({grace} ms + 300 ms after killing leader \
         {victim} at epoch {epoch})"
    );
}

// Goal: a controller-bound admin answer is a success only if the record it proposed
// committed. Before commit waiters checked the entry's term, a controller cut off right
// after proposing answered CreateTopics with success once the index it waited for was
// applied, although the new controller had replaced that entry: the topic did not exist.
// Method: cut the controller off, send it CreateTopics (proposed, never committed), let the
// other two elect a new controller, heal; the old controller truncates its entry and must
// answer NOT_CONTROLLER, and no node knows the topic.
#[test]
fn admin_answer_for_a_replaced_record_is_an_error() {
    let mut cluster = Cluster::new(&[1, 2, 3], &[1, 2, 3], |_| {});
    let controller = wait_for_controller(&mut cluster).expect("a controller within 20 s");
    // Brokers register within a few heartbeats; until then a creation is refused.
    let mut registered = false;
    for _ in 0..100 {
        let ApiResponse::CreateTopics(r) =
            cluster.call(controller, common::create_topic("warm", 1, &[]))
        else {
            panic!("CreateTopics answer expected")
        };
        registered = r.topics[0].error == ErrorCode::NONE;
        if registered {
            break;
        }
        cluster.advance_ms(200);
    }
    assert!(registered, "the brokers registered");
    cluster.cut.insert(controller);
    let id = cluster.send(controller, common::create_topic("lost", 1, &[]));
    // Long enough for the others to elect a new controller and commit in its term.
    cluster.advance_ms(10_000);
    let early = cluster.take(controller, id);
    assert!(
        early.is_none(),
        "answered while its record could not commit: {early:?}"
    );
    let others: Vec<i32> = (1..=3).filter(|n| *n != controller).collect();
    let new_controller = cluster.members[&others[0]].node.controller_id();
    assert!(
        new_controller.is_some_and(|c| c != controller),
        "the other two elected a new controller ({new_controller:?})"
    );
    cluster.cut.clear();
    let mut answer = None;
    for _ in 0..1_000 {
        answer = cluster.take(controller, id);
        if answer.is_some() {
            break;
        }
        cluster.advance_ms(10);
    }
    let Some(ApiResponse::CreateTopics(created)) = answer else {
        panic!("CreateTopics answered after the heal: {answer:?}")
    };
    assert_eq!(created.topics[0].error, ErrorCode::NOT_CONTROLLER);
    for id in 1..=3 {
        assert!(
            leadership(&mut cluster, id, "lost").is_none(),
            "node {id} knows a topic whose record never committed"
        );
    }
}

// Goal: internal topics are never created under-replicated. Method: keep one of three
// brokers off the network from the start; the first FindCoordinator calls (which ask the
// controller to create __consumer_offsets) find no coordinator while only two brokers are
// live; once the third joins, the topic is created with all three as replicas. Fails if
// the controller creates the topic with as many replicas as happen to be live (two).
#[test]
fn internal_topics_wait_for_their_replication_factor() {
    let mut cluster = Cluster::new(&[1, 2, 3], &[1, 2, 3], |_| {});
    cluster.cut.insert(3);
    cluster.advance_ms(3_000);
    for _ in 0..20 {
        assert_eq!(
            cluster.coordinator(1),
            None,
            "created with two live brokers"
        );
        cluster.advance_ms(100);
    }
    cluster.cut.remove(&3);
    let coordinator = wait_for_coordinator(&mut cluster);
    assert!(
        coordinator.is_some(),
        "a coordinator once three brokers are live"
    );
    let node = &cluster.members[&1].node;
    let (_, _, isr) = node
        .partition_leadership("__consumer_offsets", 0)
        .expect("__consumer_offsets exists");
    assert_eq!(isr.len(), 3, "{isr:?}");
}

/// Deleting a topic replicated on every broker drops its leader and follower roles
/// everywhere, and with them their entries in the replication indexes (the follower
/// timers, the sync waits): `Node::invariants`, checked after every pumped round, compares
/// those indexes and the leader count with the roles, so a role removed behind their back
/// fails here.
#[test]
fn deleting_a_replicated_topic_drops_its_roles_on_every_broker() {
    let mut cluster = Cluster::new(&[1, 2, 3], &[1, 2, 3], |_| {});
    cluster.create(
        1,
        CreatableTopic {
            name: "gone".into(),
            num_partitions: 4,
            replication_factor: 3,
            assignments: Vec::new(),
            configs: Vec::new(),
        },
    );
    cluster.settle("gone", &[1, 2, 3]);
    cluster.advance_ms(1_000);
    let delete = common::delete_topic(TopicRef::Name("gone".into()));
    let ApiResponse::DeleteTopics(deleted) = cluster.call(1, delete) else {
        panic!("DeleteTopics answer expected")
    };
    assert!(
        deleted.responses.iter().all(|r| r.error == ErrorCode::NONE),
        "{deleted:?}"
    );
    cluster.advance_ms(2_000);
    for id in [1, 2, 3] {
        let node = &cluster.members[&id].node;
        assert!(
            !node.topic_names().contains(&"gone".to_string()),
            "node {id}"
        );
        assert!((0..4).all(|p| node.partition_leadership("gone", p).is_none()));
    }
}

// Goal (KIP-207): a new leader whose high watermark has not reached the start of its epoch
// does not answer ListOffsets LATEST with that watermark: records the old leader
// acknowledged may lie between the two, and a consumer starting from "latest" would start
// before them. It answers OFFSET_NOT_AVAILABLE (retriable) until a follower's fetch carries
// the watermark past the epoch start, then the end. Method: six nodes, voters 1-3, the
// partition on 4 (leader), 5 and 6; cut 6 off, produce with acks=1 (5 copies the record,
// the watermark waits for 6), kill 4: 5 leads with its log end above its watermark. Heal 6.
// Timestamp queries answer the same way when they would find nothing below the watermark,
// and a record found by timestamp carries the epoch its batch was written in (KIP-320).
#[test]
fn a_new_leader_answers_offset_not_available_until_its_watermark_reaches_its_epoch() {
    let mut cluster = Cluster::new(&[1, 2, 3, 4, 5, 6], &[1, 2, 3], |_| {});
    let controller = wait_for_controller(&mut cluster).expect("a controller within 20 s");
    assert_eq!(cluster.create_placed(controller, "e", &[4, 5, 6]), 4);
    let first = common::keyed_record(Some("k"), Some("acked by all"));
    assert_eq!(cluster.write(4, "e", first), 0);
    let latest = |cluster: &mut Cluster, at: i32| {
        let response = cluster.call(at, common::list_offsets("e", 0, -1));
        let answer = common::list_result(&response);
        (answer.error, answer.offset)
    };
    assert_eq!(latest(&mut cluster, 4), (ErrorCode::NONE, 1));

    cluster.cut.insert(6);
    let t0 = weir_core::testing::WALL_MS_START;
    let second = common::keyed_record_at(Some("k"), Some("acked by the leader"), t0 + 1000);
    let response = cluster.call(4, common::produce("e", 0, second, 1));
    assert_eq!(common::produce_result(&response).error, ErrorCode::NONE);
    cluster.advance_ms(100);
    assert_eq!(
        latest(&mut cluster, 4),
        (ErrorCode::NONE, 1),
        "6 is in the ISR and lags: the watermark waits for it"
    );
    cluster.kill(4);
    let mut leader = None;
    for _ in 0..50 {
        cluster.advance_ms(100);
        if cluster.members[&5].node.leads("e", 0) {
            leader = Some(5);
            break;
        }
    }
    assert_eq!(leader, Some(5), "5 leads after 4's grace");
    assert_eq!(
        latest(&mut cluster, 5),
        (ErrorCode::OFFSET_NOT_AVAILABLE, -1),
        "watermark 1 lags the epoch start 2"
    );
    // Earliest offsets do not depend on the watermark; a bad timestamp keeps its error.
    let response = cluster.call(5, common::list_offsets("e", 0, -2));
    assert_eq!(common::list_result(&response).error, ErrorCode::NONE);
    let response = cluster.call(5, common::list_offsets("e", 0, -7));
    assert_eq!(
        common::list_result(&response).error,
        ErrorCode::INVALID_REQUEST
    );
    // A timestamp only the record above the watermark reaches: the storage lookup finds
    // nothing below it, and the answer is the window's error, not "none". The same for the
    // newest timestamp (-3), which lies above the watermark.
    for timestamp in [t0 + 500, -3] {
        let response = cluster.call(5, common::list_offsets("e", 0, timestamp));
        let answer = common::list_result(&response);
        assert_eq!(
            (answer.error, answer.offset),
            (ErrorCode::OFFSET_NOT_AVAILABLE, -1),
            "timestamp {timestamp} in the window"
        );
    }
    let response = cluster.call(5, common::list_offsets("e", 0, t0));
    assert_eq!(
        (
            common::list_result(&response).error,
            common::list_result(&response).offset
        ),
        (ErrorCode::NONE, 0),
        "a record below the watermark is final"
    );

    cluster.cut.remove(&6);
    let mut answer = latest(&mut cluster, 5);
    for _ in 0..50 {
        if answer.0 == ErrorCode::NONE {
            break;
        }
        cluster.advance_ms(100);
        answer = latest(&mut cluster, 5);
    }
    assert_eq!(
        answer,
        (ErrorCode::NONE, 2),
        "6 fetched past the epoch start"
    );
    assert_eq!(cluster.read_all(5, "e").len(), 2);

    // A record found by timestamp comes with the epoch its batch was written in (KIP-320):
    // 4's for the second record, 5's for one written now.
    let third = common::keyed_record_at(Some("k"), Some("written by 5"), t0 + 2000);
    assert_eq!(cluster.write(5, "e", third), 2);
    let response = cluster.call(5, common::list_offsets("e", 0, -1));
    let current = common::list_result(&response).leader_epoch;
    assert!(current > 0, "5 leads in a later epoch than 4: {current}");
    let found = |cluster: &mut Cluster, timestamp: i64| {
        let response = cluster.call(5, common::list_offsets("e", 0, timestamp));
        let answer = common::list_result(&response);
        (answer.error, answer.offset, answer.leader_epoch)
    };
    let by_4 = found(&mut cluster, t0 + 500);
    assert_eq!((by_4.0, by_4.1), (ErrorCode::NONE, 1));
    assert!(by_4.2 < current, "written in 4's epoch: {by_4:?}");
    assert_eq!(
        found(&mut cluster, t0 + 1500),
        (ErrorCode::NONE, 2, current)
    );
    assert_eq!(found(&mut cluster, -3), (ErrorCode::NONE, 2, current));
}

// Goal: records deleted by DeleteRecords stay deleted when the leader fails: followers take
// their leader's log start from its fetch answers (up to their own high watermark), as
// Kafka's do, and the leader answers only once every in-sync follower has, so the replica
// that takes over serves from there. Method: three nodes, the partition led by a node that
// is not the controller, three batches, DeleteRecords at 4 (inside the second batch), kill
// the leader as soon as it answered.
#[test]
fn deleted_records_stay_deleted_after_a_failover() {
    let mut cluster = Cluster::new(&[1, 2, 3], &[1, 2, 3], |_| {});
    let controller = wait_for_controller(&mut cluster).expect("a controller within 20 s");
    let leader = (cluster.live().into_iter())
        .find(|id| *id != controller)
        .expect("three nodes");
    let mut replicas = vec![leader];
    replicas.extend(cluster.live().into_iter().filter(|id| *id != leader));
    assert_eq!(cluster.create_placed(controller, "d", &replicas), leader);
    for round in 0..3 {
        let batch = weir_core::testing::batch(&[1, 2, 3]);
        assert_eq!(cluster.write(leader, "d", batch), round * 3);
    }
    let response = cluster.call(leader, crate::delete_records::delete_records("d", 0, 4));
    assert_eq!(
        crate::delete_records::deleted(&response),
        (ErrorCode::NONE, 4)
    );
    // A follower's own answer is NOT_LEADER_OR_FOLLOWER: only the leader deletes.
    let follower = replicas[1];
    let response = cluster.call(follower, crate::delete_records::delete_records("d", 0, 5));
    assert_eq!(
        crate::delete_records::deleted(&response),
        (ErrorCode::NOT_LEADER_OR_FOLLOWER, -1)
    );
    // The answer came after every in-sync follower took the new start: the leader may die
    // at once.
    cluster.kill(leader);
    let mut new_leader = None;
    for _ in 0..50 {
        cluster.advance_ms(100);
        new_leader = (replicas[1..].iter())
            .copied()
            .find(|id| cluster.members[id].node.leads("d", 0));
        if new_leader.is_some() {
            break;
        }
    }
    let new_leader = new_leader.expect("a new leader after the grace");
    let response = cluster.call(new_leader, common::list_offsets("d", 0, -2));
    assert_eq!(
        (
            common::list_result(&response).error,
            common::list_result(&response).offset
        ),
        (ErrorCode::NONE, 4)
    );
    let below = cluster.call(new_leader, common::fetch("d", 0, 2, 0, 1));
    assert_eq!(
        common::fetch_partition(&below).error,
        ErrorCode::OFFSET_OUT_OF_RANGE
    );
    let from = cluster.call(new_leader, common::fetch("d", 0, 4, 0, 1));
    let offsets: Vec<i64> = (common::fetched_records(&from).iter())
        .map(|r| r.offset)
        .filter(|offset| *offset >= 4)
        .collect();
    assert_eq!(offsets, (4..9).collect::<Vec<i64>>());
}

// Goal: DeleteRecords waits for the in-sync followers, bounded by the request's timeout:
// with one cut off (still in the ISR) the answer is REQUEST_TIMED_OUT after the timeout,
// and once it is back a retry succeeds. Method: three nodes, the follower that is not the
// controller cut off, DeleteRecords with a 2 s timeout; heal; the same request again.
#[test]
fn delete_records_times_out_while_an_in_sync_follower_is_away() {
    let mut cluster = Cluster::new(&[1, 2, 3], &[1, 2, 3], |_| {});
    let controller = wait_for_controller(&mut cluster).expect("a controller within 20 s");
    let others: Vec<i32> = (cluster.live().into_iter())
        .filter(|id| *id != controller)
        .collect();
    let (leader, away) = (others[0], others[1]);
    let replicas = vec![leader, away, controller];
    assert_eq!(cluster.create_placed(controller, "t", &replicas), leader);
    assert_eq!(
        cluster.write(leader, "t", weir_core::testing::batch(&[1, 2, 3])),
        0
    );
    cluster.cut.insert(away);
    let mut request = crate::delete_records::delete_records("t", 0, 2);
    if let ApiRequest::DeleteRecords(r) = &mut request {
        r.timeout_ms = 2_000;
    }
    let id = cluster.send(leader, request.clone());
    cluster.advance_ms(1_500);
    assert!(
        cluster.take(leader, id).is_none(),
        "answered before the timeout"
    );
    cluster.advance_ms(1_000);
    let answer = cluster.take(leader, id).expect("answered at the timeout");
    assert_eq!(
        crate::delete_records::deleted(&answer),
        (ErrorCode::REQUEST_TIMED_OUT, -1)
    );
    // Healed: its fetches (dropped while cut) resume on the follower's timer.
    cluster.cut.remove(&away);
    cluster.advance_ms(10_000);
    let answer = cluster.call(leader, request);
    assert_eq!(
        crate::delete_records::deleted(&answer),
        (ErrorCode::NONE, 2)
    );
}
