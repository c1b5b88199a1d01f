//! Controller-quorum voter changes at run time (KIP-853's AddRaftVoter, RemoveRaftVoter and
//! DescribeQuorum) in a cluster of in-process nodes.
//!
//! Goal: a 3-voter cluster takes a 4th node as a voter and then removes its own controller
//! while a producer writes with acks=all: no acknowledged record is lost, and writes stall at
//! most for about one election. The admin answers come only after the change is committed,
//! from any node (non-controllers forward them). Refused changes carry KIP-853's codes.
//!
//! Method: four `Node`s in cluster mode driven in one thread with virtual time (10 ms
//! steps): outputs applied to each node's `MemStorage`, syncs completed at once, peer
//! messages delivered between nodes (the harness of `cluster_failover.rs`, plus per-node
//! static voter lists). Node 4 starts with the same `controller.quorum.voters` as the others
//! (1, 2, 3), registers as a broker and follows the metadata log as a learner until added.

use crate::common;

use common::cluster::{Cluster, STEP_MS};

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use weir_wire::domain::quorum::{
    AddRaftVoterRequest, DescribeQuorumRequest, DescribeQuorumTopic, QuorumPartition, RaftListener,
    RaftVoterResponse, RemoveRaftVoterRequest, METADATA_TOPIC,
};
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;
use weir_wire::records::{encode_batch, BatchOptions, Record};

const TOPIC: &str = "v";
/// Longest pause between two acknowledged writes: one metadata election (the election
/// timeout is 1000-2000 ms) plus heartbeat and retry slack.
const WRITE_GAP_MS_MAX: u64 = 4_000;

/// The quorum calls of these scenarios.
trait QuorumCalls {
    fn quorum(&mut self, at: i32) -> Result<QuorumPartition, ErrorCode>;
    fn settled_quorum(&mut self, at: i32) -> QuorumPartition;
    fn change_voters(&mut self, to: i32, request: ApiRequest) -> RaftVoterResponse;
}

impl QuorumCalls for Cluster {
    /// The metadata quorum as `at` reports it (forwarded to the controller).
    fn quorum(&mut self, at: i32) -> Result<QuorumPartition, ErrorCode> {
        let ApiResponse::DescribeQuorum(r) = self.call(at, describe_quorum()) else {
            panic!("DescribeQuorum answer expected")
        };
        if !r.error.is_ok() {
            return Err(r.error);
        }
        let partition = r.topics[0].partitions[0].clone();
        if !partition.error.is_ok() {
            return Err(partition.error);
        }
        Ok(partition)
    }

    /// Wait until `at` reports a quorum with a leader; returns it.
    fn settled_quorum(&mut self, at: i32) -> QuorumPartition {
        for _ in 0..200 {
            if let Ok(quorum) = self.quorum(at) {
                if quorum.leader_id >= 0 {
                    return quorum;
                }
            }
            self.advance_ms(100);
        }
        panic!("no quorum leader within 20 s")
    }

    /// `request` on `to`, retried while refused with REQUEST_TIMED_OUT (a change or a
    /// learner catching up) or a controller change.
    fn change_voters(&mut self, to: i32, request: ApiRequest) -> RaftVoterResponse {
        for _ in 0..100 {
            let response = voter_answer(self.call(to, request.clone()));
            let retriable = [
                ErrorCode::REQUEST_TIMED_OUT,
                ErrorCode::NOT_CONTROLLER,
                ErrorCode::NOT_LEADER_OR_FOLLOWER,
            ];
            if !retriable.contains(&response.error) {
                return response;
            }
            self.advance_ms(200);
        }
        panic!("node {to} kept refusing {request:?}")
    }
}

fn describe_quorum() -> ApiRequest {
    ApiRequest::DescribeQuorum(DescribeQuorumRequest {
        topics: vec![DescribeQuorumTopic {
            name: METADATA_TOPIC.into(),
            partitions: vec![0],
        }],
    })
}

fn add_voter(id: i32) -> ApiRequest {
    ApiRequest::AddRaftVoter(AddRaftVoterRequest {
        cluster_id: None,
        timeout_ms: 30_000,
        voter_id: id,
        voter_directory_id: uuid::Uuid::nil(),
        listeners: vec![RaftListener {
            name: "CONTROLLER".into(),
            host: format!("n{id}"),
            port: 9093,
        }],
    })
}

fn remove_voter(id: i32) -> ApiRequest {
    ApiRequest::RemoveRaftVoter(RemoveRaftVoterRequest {
        cluster_id: None,
        voter_id: id,
        voter_directory_id: uuid::Uuid::nil(),
    })
}

fn voter_answer(response: ApiResponse) -> RaftVoterResponse {
    match response {
        ApiResponse::AddRaftVoter(r) | ApiResponse::RemoveRaftVoter(r) => r,
        other => panic!("voter-change answer expected, got {other:?}"),
    }
}

fn voter_ids(quorum: &QuorumPartition) -> BTreeSet<i32> {
    quorum.current_voters.iter().map(|r| r.replica_id).collect()
}

fn record(value: &str) -> Bytes {
    let records = [Record {
        offset: 0,
        timestamp: 1_767_225_600_000,
        key: None,
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: Vec::new(),
    }];
    let encoded = encode_batch(&records, &BatchOptions::default()).expect("test batch encodes");
    BytesMut::from(&encoded[..]).freeze()
}

/// Creates `TOPIC` with one partition on nodes 1-3 and returns its leader.
fn create_topic(cluster: &mut Cluster, at: i32) -> i32 {
    let create = ApiRequest::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: TOPIC.into(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: vec![(0, vec![1, 2, 3])],
            configs: vec![("min.insync.replicas".into(), Some("2".into()))],
        }],
        timeout_ms: 30_000,
        validate_only: false,
    });
    // Brokers register within a few heartbeats; until then the assignment is refused.
    for _ in 0..100 {
        let ApiResponse::CreateTopics(created) = cluster.call(at, create.clone()) else {
            panic!("CreateTopics answer expected")
        };
        if created.topics[0].error == ErrorCode::NONE {
            break;
        }
        cluster.advance_ms(200);
    }
    for _ in 0..100 {
        if let Some(leader) = leader_of(cluster, at) {
            return leader;
        }
        cluster.advance_ms(100);
    }
    panic!("no leader for {TOPIC}-0")
}

fn leader_of(cluster: &mut Cluster, at: i32) -> Option<i32> {
    let ApiResponse::Metadata(r) = cluster.call(at, common::metadata(Some(&[TOPIC]), false)) else {
        panic!("Metadata answer expected")
    };
    let partition = r.topics.first()?.partitions.first()?;
    (partition.error.is_ok() && partition.leader_id >= 0).then_some(partition.leader_id)
}

/// A producer with acks=all that remembers what was acknowledged, and when.
struct Producer {
    leader: i32,
    next_value: u64,
    acked: BTreeMap<i64, String>,
    last_ack_ms: u64,
    gap_ms_max: u64,
}

impl Producer {
    fn now_ms(cluster: &Cluster) -> u64 {
        cluster.now.instant.as_nanos() / 1_000_000
    }

    /// One write; on a refusal, find the partition's leader again.
    fn write(&mut self, cluster: &mut Cluster) {
        let value = format!("value-{}", self.next_value);
        self.next_value += 1;
        let request = common::produce(TOPIC, 0, record(&value), -1);
        let response = cluster.call(self.leader, request);
        let result = common::produce_result(&response);
        let now_ms = Producer::now_ms(cluster);
        if result.error.is_ok() {
            let previous = self.acked.insert(result.base_offset, value.clone());
            assert_eq!(
                previous, None,
                "offset {} acknowledged twice",
                result.base_offset
            );
            self.gap_ms_max = self.gap_ms_max.max(now_ms - self.last_ack_ms);
            self.last_ack_ms = now_ms;
        } else {
            cluster.advance_ms(50);
            let asked = self.leader;
            self.leader = leader_of(cluster, asked).unwrap_or(self.leader);
        }
    }

    /// Every acknowledged record is in the leader's log at its offset.
    fn check(&self, cluster: &mut Cluster) {
        let leader = leader_of(cluster, self.leader).expect("a leader at the end");
        let mut found = BTreeMap::new();
        let mut offset = 0;
        for _ in 0..10_000 {
            let request = common::fetch(TOPIC, 0, offset, 0, 0);
            let response = cluster.call(leader, request);
            let records = common::fetched_records(&response);
            let Some(last) = records.last() else { break };
            offset = last.offset + 1;
            for record in records {
                let value = record
                    .value
                    .map(|v| String::from_utf8_lossy(&v).into_owned());
                found.insert(record.offset, value.unwrap_or_default());
            }
        }
        for (offset, value) in &self.acked {
            assert_eq!(
                found.get(offset),
                Some(value),
                "acknowledged offset {offset} lost"
            );
        }
    }
}

#[test]
fn voters_change_under_acks_all_without_losing_writes() {
    let mut cluster = Cluster::new(&[1, 2, 3, 4], &[1, 2, 3], |_| {});
    let quorum = cluster.settled_quorum(4);
    assert_eq!(voter_ids(&quorum), BTreeSet::from([1, 2, 3]));
    let controller = quorum.leader_id;
    let leader = create_topic(&mut cluster, controller);
    let mut producer = Producer {
        leader,
        next_value: 0,
        acked: BTreeMap::new(),
        last_ack_ms: Producer::now_ms(&cluster),
        gap_ms_max: 0,
    };
    for _ in 0..20 {
        producer.write(&mut cluster);
    }
    // Node 4 follows as an observer (learner) before it votes.
    let quorum = cluster.settled_quorum(4);
    assert!(
        quorum.observers.iter().any(|o| o.replica_id == 4),
        "{quorum:?}"
    );

    // Add node 4 through a node that is not the controller (forwarded), writing meanwhile.
    let via = [1, 2, 3]
        .into_iter()
        .find(|id| *id != controller)
        .expect("a non-controller");
    let add = cluster.send(via, add_voter(4));
    let mut added = None;
    for _ in 0..200 {
        producer.write(&mut cluster);
        if let Some(response) = cluster.take(via, add) {
            added = Some(voter_answer(response));
            break;
        }
    }
    let added = added.expect("AddRaftVoter answered");
    assert_eq!(added.error, ErrorCode::NONE, "{added:?}");
    // Answered only once committed: the controller's commit covers the new set.
    let quorum = cluster.settled_quorum(4);
    assert_eq!(voter_ids(&quorum), BTreeSet::from([1, 2, 3, 4]));
    let voter_4 = quorum.current_voters.iter().find(|v| v.replica_id == 4);
    assert!(voter_4.is_some_and(|v| v.log_end_offset > 0), "{quorum:?}");

    // Remove the controller itself: it steps down once the removal commits and the other
    // voters elect a new one.
    let removed = quorum.leader_id;
    let remove = cluster.send(4, remove_voter(removed));
    let mut answer = None;
    for _ in 0..400 {
        producer.write(&mut cluster);
        if let Some(response) = cluster.take(4, remove) {
            answer = Some(voter_answer(response));
            break;
        }
    }
    let answer = answer.expect("RemoveRaftVoter answered");
    assert_eq!(answer.error, ErrorCode::NONE, "{answer:?}");
    for _ in 0..100 {
        producer.write(&mut cluster);
    }
    let quorum = cluster.settled_quorum(4);
    let expected: BTreeSet<i32> = [1, 2, 3, 4]
        .into_iter()
        .filter(|id| *id != removed)
        .collect();
    assert_eq!(voter_ids(&quorum), expected);
    assert_ne!(
        quorum.leader_id, removed,
        "the removed controller stepped down"
    );
    assert!(
        quorum.observers.iter().any(|o| o.replica_id == removed),
        "{quorum:?}"
    );
    assert!(
        producer.acked.len() >= 100,
        "acked {}",
        producer.acked.len()
    );
    assert!(
        producer.gap_ms_max <= WRITE_GAP_MS_MAX,
        "writes stalled for {} ms",
        producer.gap_ms_max
    );
    producer.check(&mut cluster);
}

// Goal: refused changes carry KIP-853's codes and change nothing. Method: on a settled
// 3-voter cluster with a 4th broker, remove an unknown voter, add an existing one, add an
// unregistered node, add with a wrong endpoint or cluster id (the voter set stays), then
// submit two changes in one input: the second finds the first uncommitted, the first
// commits.
#[test]
fn refused_voter_changes_carry_kip_853_codes() {
    let mut cluster = Cluster::new(&[1, 2, 3, 4], &[1, 2, 3], |_| {});
    let mut quorum = cluster.settled_quorum(1);
    // Node 4 is replicated to (an observer) once it registered.
    for _ in 0..100 {
        if quorum.observers.iter().any(|o| o.replica_id == 4) {
            break;
        }
        cluster.advance_ms(100);
        quorum = cluster.settled_quorum(1);
    }
    let controller = quorum.leader_id;
    let error = |cluster: &mut Cluster, request| voter_answer(cluster.call(controller, request));
    assert_eq!(
        error(&mut cluster, remove_voter(9)).error,
        ErrorCode::VOTER_NOT_FOUND
    );
    assert_eq!(
        error(&mut cluster, add_voter(2)).error,
        ErrorCode::DUPLICATE_VOTER
    );
    assert_eq!(
        error(&mut cluster, add_voter(9)).error,
        ErrorCode::INVALID_REQUEST
    );
    let ApiRequest::AddRaftVoter(mut wrong_endpoint) = add_voter(4) else {
        unreachable!("add_voter builds AddRaftVoter")
    };
    wrong_endpoint.listeners[0].port = 1;
    let wrong_endpoint = error(&mut cluster, ApiRequest::AddRaftVoter(wrong_endpoint));
    assert_eq!(wrong_endpoint.error, ErrorCode::INVALID_REQUEST);
    let message = wrong_endpoint.error_message.unwrap_or_default();
    assert!(
        message.contains("registered controller endpoint n4:9093"),
        "{message}"
    );
    let ApiRequest::RemoveRaftVoter(mut foreign) = remove_voter(2) else {
        unreachable!("remove_voter builds RemoveRaftVoter")
    };
    foreign.cluster_id = Some("another-cluster".into());
    let foreign = ApiRequest::RemoveRaftVoter(foreign);
    assert_eq!(
        error(&mut cluster, foreign).error,
        ErrorCode::INCONSISTENT_CLUSTER_ID
    );
    assert_eq!(
        voter_ids(&cluster.settled_quorum(1)),
        BTreeSet::from([1, 2, 3])
    );

    // Two changes in one input: the second finds the first's entry uncommitted.
    let other = [1, 2, 3]
        .into_iter()
        .find(|id| *id != controller)
        .expect("a follower");
    let first = cluster.submit(controller, remove_voter(other));
    let second = cluster.submit(controller, add_voter(4));
    cluster.pump();
    let second = voter_answer(cluster.take(controller, second).expect("refused at once"));
    assert_eq!(second.error, ErrorCode::REQUEST_TIMED_OUT, "{second:?}");
    let first = voter_answer(
        cluster
            .take(controller, first)
            .expect("committed in the pump"),
    );
    assert_eq!(first.error, ErrorCode::NONE, "{first:?}");
    let expected: BTreeSet<i32> = [1, 2, 3].into_iter().filter(|id| *id != other).collect();
    assert_eq!(voter_ids(&cluster.settled_quorum(1)), expected);
}

// Goal: the last voter cannot be removed, and a lone voter adds a second one. Method: a
// one-voter cluster with a second broker: remove the voter (INVALID_REQUEST), then add the
// broker and remove the first voter, leaving node 2 alone in charge.
#[test]
fn last_voter_stays_and_a_lone_voter_hands_over() {
    let mut cluster = Cluster::new(&[1, 2], &[1], |_| {});
    assert_eq!(cluster.settled_quorum(2).leader_id, 1);
    let refused = voter_answer(cluster.call(1, remove_voter(1)));
    assert_eq!(refused.error, ErrorCode::INVALID_REQUEST, "{refused:?}");
    let added = cluster.change_voters(2, add_voter(2));
    assert_eq!(added.error, ErrorCode::NONE, "{added:?}");
    let removed = cluster.change_voters(2, remove_voter(1));
    assert_eq!(removed.error, ErrorCode::NONE, "{removed:?}");
    let quorum = cluster.settled_quorum(1);
    assert_eq!(voter_ids(&quorum), BTreeSet::from([2]));
    assert_eq!(quorum.leader_id, 2);
}

// Goal: a voter change is answered only once committed. Method: cut both followers of a
// 3-voter quorum off the network, remove one of them (the new set {controller, other}
// cannot commit without the other), check no answer comes for 500 ms (less than the
// check-quorum timeout that would depose the controller), then heal the network and
// check the success comes and the new set holds.
#[test]
fn voter_change_is_answered_only_once_committed() {
    let mut cluster = Cluster::new(&[1, 2, 3], &[1, 2, 3], |_| {});
    let controller = cluster.settled_quorum(1).leader_id;
    let followers: Vec<i32> = [1, 2, 3]
        .into_iter()
        .filter(|id| *id != controller)
        .collect();
    cluster.cut.extend(followers.iter().copied());
    let remove = cluster.send(controller, remove_voter(followers[0]));
    cluster.advance_ms(500);
    assert!(
        cluster.take(controller, remove).is_none(),
        "answered before commit"
    );
    cluster.cut.clear();
    let mut answer = None;
    for _ in 0..100 {
        cluster.advance_ms(STEP_MS);
        answer = cluster.take(controller, remove);
        if answer.is_some() {
            break;
        }
    }
    let answer = voter_answer(answer.expect("answered once committed"));
    assert_eq!(answer.error, ErrorCode::NONE, "{answer:?}");
    let expected = BTreeSet::from([controller, followers[1]]);
    assert_eq!(voter_ids(&cluster.settled_quorum(controller)), expected);
}

// Goal: the voter set in force survives restarts although every node's static
// `controller.quorum.voters` still names the old set. Method: 1, 2, 3 vote, add 4 and
// remove 1; restart 4 (a voter its static config does not list) and then 2, each from its
// own storage with its original config; the quorum still has voters 2, 3, 4 and a leader
// among them, and keeps committing (a topic can be created).
#[test]
fn restarted_nodes_keep_the_logs_voter_set() {
    let mut cluster = Cluster::new(&[1, 2, 3, 4], &[1, 2, 3], |_| {});
    cluster.settled_quorum(4);
    let added = cluster.change_voters(4, add_voter(4));
    assert_eq!(added.error, ErrorCode::NONE, "{added:?}");
    let removed = cluster.change_voters(4, remove_voter(1));
    assert_eq!(removed.error, ErrorCode::NONE, "{removed:?}");
    for id in [4, 2] {
        cluster.restart(id);
        cluster.advance_ms(3_000);
        let quorum = cluster.settled_quorum(3);
        assert_eq!(
            voter_ids(&quorum),
            BTreeSet::from([2, 3, 4]),
            "after restarting {id}"
        );
        assert_ne!(quorum.leader_id, 1, "after restarting {id}");
    }
    let controller = cluster.settled_quorum(4).leader_id;
    let leader = create_topic(&mut cluster, controller);
    assert!([1, 2, 3].contains(&leader), "leader {leader}");
}
