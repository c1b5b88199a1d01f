//! Failover in a cluster of in-process nodes: a killed partition leader is fenced within
//! the closed-connection grace (not a whole session), and a classic consumer group survives
//! the move of its coordinator.
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

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use weir_core::cluster::peer::PeerMessage;
use weir_core::cluster::{ClusterConfig, Voter};
use weir_core::resolve::resolve_response;
use weir_core::storage::{MemStorage, Storage};
use weir_core::{Completion, Instant, Node, NodeConfig, Now, Output, RequestId};
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

const GROUP: &str = "g";
const SESSION_MS: i32 = 10_000;
const STEP_MS: u64 = 10;
/// Bound on output/message rounds within one step (a livelock is a bug).
const PUMP_ROUNDS_MAX: usize = 10_000;

/// One node of the simulated cluster.
struct Member {
    node: Node,
    storage: MemStorage,
    responses: BTreeMap<RequestId, ApiResponse>,
}

struct Cluster {
    members: BTreeMap<i32, Member>,
    down: BTreeSet<i32>,
    now: Now,
    next_seq: u64,
}

impl Cluster {
    fn new(ids: &[i32]) -> Cluster {
        let voters: Vec<Voter> = (ids.iter())
            .map(|id| Voter {
                id: *id,
                addr: format!("n{id}:9093"),
            })
            .collect();
        let now = Now::new(Instant::from_nanos(1), 1_767_225_600_000);
        let members = (ids.iter())
            .map(|id| {
                let mut cluster = ClusterConfig::new(voters.clone(), format!("n{id}:9093"));
                cluster.auto_leader_rebalance = false;
                let config = NodeConfig {
                    node_id: *id,
                    advertised_host: format!("n{id}"),
                    advertised_port: 9092,
                    group_initial_rebalance_delay_ms: 0,
                    offsets_topic_num_partitions: 1,
                    cluster: Some(cluster),
                    ..NodeConfig::default()
                };
                let storage = MemStorage::new();
                let node = Node::recover(config, &storage, now).expect("empty storage recovers");
                let member = Member {
                    node,
                    storage,
                    responses: BTreeMap::new(),
                };
                (*id, member)
            })
            .collect();
        let mut cluster = Cluster {
            members,
            down: BTreeSet::new(),
            now,
            next_seq: 0,
        };
        cluster.pump();
        cluster
    }

    fn live(&self) -> Vec<i32> {
        (self.members.keys())
            .filter(|id| !self.down.contains(id))
            .copied()
            .collect()
    }

    /// Apply every node's outputs and deliver peer messages until nothing moves.
    fn pump(&mut self) {
        let mut queue: VecDeque<(i32, i32, PeerMessage)> = VecDeque::new();
        for _ in 0..PUMP_ROUNDS_MAX {
            let mut moved = false;
            for id in self.live() {
                let member = self.members.get_mut(&id).expect("live member");
                let mut synced = None;
                while let Some(output) = member.node.poll_output() {
                    moved = true;
                    match output {
                        Output::Storage(op) => member.storage.apply(&op).expect("apply"),
                        Output::Sync { sync_id, .. } => synced = Some(sync_id),
                        Output::Respond { id, mut response } => {
                            let failures = resolve_response(&member.storage, &mut response);
                            assert!(failures.is_empty(), "reads failed: {failures:?}");
                            member.responses.insert(id, response);
                        }
                        Output::Peer {
                            to, mut message, ..
                        } => {
                            message.resolve_reads(&member.storage).expect("peer reads");
                            queue.push_back((id, to, message));
                        }
                        Output::NoResponse { id, .. } => {
                            panic!("the harness sends no acks=0 produce ({id:?})")
                        }
                        Output::Poisoned { reason } => panic!("node {id} poisoned: {reason}"),
                    }
                }
                if let Some(sync_id) = synced {
                    member.storage.sync().expect("MemStorage sync cannot fail");
                    let now = self.now;
                    member
                        .node
                        .handle_storage(now, Completion::Synced { sync_id });
                    moved = true;
                }
            }
            while let Some((from, to, message)) = queue.pop_front() {
                if self.down.contains(&from) || self.down.contains(&to) {
                    continue;
                }
                let now = self.now;
                let member = self.members.get_mut(&to).expect("known peer");
                member.node.handle_peer(now, from, message);
                moved = true;
            }
            if !moved {
                for id in self.live() {
                    self.members[&id].node.invariants();
                }
                return;
            }
        }
        panic!("outputs kept coming for {PUMP_ROUNDS_MAX} rounds");
    }

    /// Let `ms` of virtual time pass in steps, firing due timers.
    fn advance_ms(&mut self, ms: u64) {
        for _ in 0..ms.div_ceil(STEP_MS) {
            let instant = self.now.instant.add_ms(STEP_MS);
            self.now = Now::new(instant, self.now.wall_ms + STEP_MS as i64);
            for id in self.live() {
                let now = self.now;
                let member = self.members.get_mut(&id).expect("live member");
                if member
                    .node
                    .poll_timeout()
                    .is_some_and(|at| at <= now.instant)
                {
                    member.node.handle_timeout(now);
                }
            }
            self.pump();
        }
    }

    fn send(&mut self, to: i32, request: ApiRequest) -> RequestId {
        self.next_seq += 1;
        let id = RequestId {
            conn: 1,
            seq: self.next_seq,
        };
        let now = self.now;
        let member = self.members.get_mut(&to).expect("known node");
        member.node.handle_request(now, id, request);
        self.pump();
        id
    }

    fn take(&mut self, at: i32, id: RequestId) -> Option<ApiResponse> {
        self.members.get_mut(&at)?.responses.remove(&id)
    }

    /// Send and let time pass until answered (at most `wait_ms`).
    fn call(&mut self, to: i32, request: ApiRequest) -> ApiResponse {
        let id = self.send(to, request);
        for _ in 0..(30_000 / STEP_MS) {
            if let Some(response) = self.take(to, id) {
                return response;
            }
            self.advance_ms(STEP_MS);
        }
        panic!("node {to} did not answer {id:?}")
    }

    /// SIGKILL: no message reaches or leaves `id`; the others see its connections close.
    fn kill(&mut self, id: i32) {
        self.down.insert(id);
        let now = self.now;
        for other in self.live() {
            let member = self.members.get_mut(&other).expect("live member");
            member.node.handle_peer_closed(now, id);
        }
        self.pump();
    }

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
    let mut cluster = Cluster::new(&[1, 2, 3]);
    // The controller creates __consumer_offsets on the first FindCoordinator.
    let mut coordinator = None;
    for _ in 0..200 {
        coordinator = cluster.coordinator(1);
        if coordinator.is_some() {
            break;
        }
        cluster.advance_ms(100);
    }
    let a = coordinator.expect("a coordinator within 20 s");
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
    let mut cluster = Cluster::new(&[1, 2, 3]);
    let mut controller = None;
    for _ in 0..200 {
        controller = cluster.members[&1].node.controller_id();
        if controller.is_some() {
            break;
        }
        cluster.advance_ms(100);
    }
    let controller = controller.expect("a controller within 20 s");
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
