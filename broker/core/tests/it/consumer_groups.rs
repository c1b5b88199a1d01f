//! Scenario tests of KIP-848 consumer groups (ConsumerGroupHeartbeat) through the Node.
//!
//! Goal: the server assigns, members reconcile incrementally (a partition moves only after
//! its previous owner revoked it), epochs fence stale members, sessions expire, partitions
//! added to a topic are assigned, offsets commits check member epochs, and the two group
//! protocols do not mix in one group.
//! Method: drive a `SingleNode` (MemStorage, virtual time) with domain requests; the harness
//! asserts the node's invariants after every step, including "no partition is owned by two
//! members"; the tests also check the members' views (what each was told it owns).

use crate::common;

use std::collections::BTreeSet;

use bytes::Bytes;
use common::{must_create, node_with_coordinators};
use uuid::Uuid;
use weir_core::testing::SingleNode;
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

const GROUP: &str = "cg";
const TOPIC: &str = "t";

fn node() -> SingleNode {
    let mut node = node_with_coordinators(|c| {
        c.offsets_topic_num_partitions = 3;
        c.group_initial_rebalance_delay_ms = 0;
        c.group_consumer_heartbeat_interval_ms = 1_000;
        c.group_consumer_session_timeout_ms = 10_000;
    });
    must_create(&mut node, TOPIC, 6, &[]);
    node
}

fn hb(member_id: &str, epoch: i32, owned: Option<&[TopicIdPartitions]>) -> ApiRequest {
    ApiRequest::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest {
        group_id: GROUP.into(),
        member_id: member_id.into(),
        member_epoch: epoch,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: if epoch == 0 { 30_000 } else { -1 },
        subscribed_topic_names: (epoch == 0).then(|| vec![TOPIC.to_string()]),
        subscribed_topic_regex: None,
        server_assignor: None,
        topic_partitions: owned.map(<[_]>::to_vec),
        client_id: "c".into(),
    })
}

fn answer(response: ApiResponse) -> ConsumerGroupHeartbeatResponse {
    match response {
        ApiResponse::ConsumerGroupHeartbeat(r) => r,
        other => panic!("expected a ConsumerGroupHeartbeat answer, got {other:?}"),
    }
}

/// A client's view: member id, epoch, and what it was last told it owns.
struct Client {
    id: String,
    epoch: i32,
    owned: Vec<TopicIdPartitions>,
}

impl Client {
    fn join(node: &mut SingleNode, member_id: &str) -> Client {
        let r = answer(node.call(hb(member_id, 0, Some(&[]))));
        assert_eq!(r.error, ErrorCode::NONE, "{r:?}");
        let mut client = Client {
            id: r.member_id.clone().expect("member id"),
            epoch: 0,
            owned: Vec::new(),
        };
        client.apply(r);
        client
    }

    fn apply(&mut self, r: ConsumerGroupHeartbeatResponse) {
        assert_eq!(r.error, ErrorCode::NONE, "{r:?}");
        self.epoch = r.member_epoch;
        if let Some(assignment) = r.assignment {
            // A real client revokes what left, then reports what it owns next time.
            self.owned = assignment;
        }
    }

    fn beat(&mut self, node: &mut SingleNode) {
        let r = answer(node.call(hb(&self.id, self.epoch, Some(&self.owned))));
        self.apply(r);
    }

    fn partitions(&self) -> BTreeSet<(Uuid, i32)> {
        (self.owned.iter())
            .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
            .collect()
    }
}

fn disjoint(clients: &[&Client]) -> usize {
    let mut seen = BTreeSet::new();
    for c in clients {
        for p in c.partitions() {
            assert!(seen.insert(p), "{p:?} told to two members");
        }
    }
    seen.len()
}

// Goal: a second member gets its share only after the first revoked it; epochs advance.
// Method: join A (all 6), join B (nothing yet: unreleased), A revokes 3 on its heartbeat,
// then B picks them up; check the members' views never overlap.
#[test]
fn incremental_reconciliation_moves_partitions_after_revocation() {
    let mut node = node();
    let mut a = Client::join(&mut node, "");
    assert_eq!((a.epoch, a.partitions().len()), (1, 6));
    let mut b = Client::join(&mut node, "");
    assert_eq!(b.epoch, 2, "B takes the new epoch with what is free");
    assert!(b.partitions().is_empty(), "A still owns everything");
    a.beat(&mut node);
    assert_eq!(a.epoch, 1, "A keeps its epoch until it revoked");
    assert_eq!(a.partitions().len(), 3);
    b.beat(&mut node);
    assert!(
        b.partitions().is_empty(),
        "A has not confirmed the revocation yet"
    );
    a.beat(&mut node);
    assert_eq!(a.epoch, 2, "revocation confirmed: A moves on");
    b.beat(&mut node);
    assert_eq!(b.partitions().len(), 3);
    assert_eq!(disjoint(&[&a, &b]), 6);
    // A third member: 2 each, still never overlapping in anyone's view.
    let mut c = Client::join(&mut node, "");
    for _ in 0..4 {
        for m in [&mut a, &mut b, &mut c] {
            m.beat(&mut node);
        }
        disjoint(&[&a, &b, &c]);
    }
    assert_eq!(
        [&a, &b, &c].map(|m| m.partitions().len()),
        [2, 2, 2],
        "balanced"
    );
    assert_eq!([a.epoch, b.epoch, c.epoch], [3, 3, 3]);
}

// Goal: stale and unknown members are fenced; a lost response (previous epoch) is tolerated.
#[test]
fn epochs_fence_stale_members() {
    let mut node = node();
    let mut a = Client::join(&mut node, "");
    let mut b = Client::join(&mut node, "");
    a.beat(&mut node);
    a.beat(&mut node);
    b.beat(&mut node);
    assert_eq!((a.epoch, b.epoch), (2, 2));
    let future = answer(node.call(hb(&a.id, 7, None)));
    assert_eq!(future.error, ErrorCode::FENCED_MEMBER_EPOCH);
    let previous = answer(node.call(hb(&a.id, 1, Some(&a.owned))));
    assert_eq!(
        (previous.error, previous.member_epoch),
        (ErrorCode::NONE, 2),
        "a lost response is resent"
    );
    assert!(previous.assignment.is_some());
    let unknown = answer(node.call(hb("nobody", 3, None)));
    assert_eq!(unknown.error, ErrorCode::UNKNOWN_MEMBER_ID);
    // A fenced member rejoins with epoch 0 and its id; it owns nothing then.
    let rejoin = answer(node.call(hb(&a.id, 0, Some(&[]))));
    assert_eq!(rejoin.error, ErrorCode::NONE);
}

// Goal: a member that stops heartbeating is removed after the session timeout and the
// survivor gets everything; a leaving member (epoch -1) frees its partitions at once.
#[test]
fn session_expiry_and_leave_move_partitions() {
    let mut node = node();
    let mut a = Client::join(&mut node, "");
    let mut b = Client::join(&mut node, "");
    for _ in 0..3 {
        a.beat(&mut node);
        b.beat(&mut node);
    }
    assert_eq!(disjoint(&[&a, &b]), 6);
    // B goes silent: A heartbeats every second; within the 10 s session A gets all 6.
    for _ in 0..14 {
        node.advance_ms(1_000);
        a.beat(&mut node);
    }
    assert_eq!(a.partitions().len(), 6, "B's partitions moved to A");
    let mut c = Client::join(&mut node, "");
    for _ in 0..3 {
        a.beat(&mut node);
        c.beat(&mut node);
    }
    assert_eq!(disjoint(&[&a, &c]), 6);
    let left = answer(node.call(hb(&c.id, -1, None)));
    assert_eq!((left.error, left.member_epoch), (ErrorCode::NONE, -1));
    a.beat(&mut node);
    a.beat(&mut node);
    assert_eq!(a.partitions().len(), 6);
}

// Goal: partitions added to a subscribed topic are assigned (topic metadata change bumps
// the group epoch); extra members stay idle.
#[test]
fn added_partitions_are_assigned_and_extra_members_idle() {
    let mut node = node();
    let mut a = Client::join(&mut node, "");
    let grow = ApiRequest::CreatePartitions(CreatePartitionsRequest {
        topics: vec![CreatePartitionsTopic {
            name: TOPIC.into(),
            count: 8,
            assignments: None,
        }],
        timeout_ms: 1_000,
        validate_only: false,
    });
    node.call(grow);
    a.beat(&mut node);
    assert_eq!((a.partitions().len(), a.epoch), (8, 2));
    let mut idle: Vec<Client> = (0..8).map(|_| Client::join(&mut node, "")).collect();
    for _ in 0..4 {
        a.beat(&mut node);
        for m in &mut idle {
            m.beat(&mut node);
        }
    }
    let mut all: Vec<&Client> = idle.iter().collect();
    all.push(&a);
    assert_eq!(disjoint(&all), 8);
    let busy = all.iter().filter(|m| !m.partitions().is_empty()).count();
    assert_eq!(busy, 8, "9 members, 8 partitions: one idle");
}

fn commit(member_id: &str, epoch: i32) -> ApiRequest {
    ApiRequest::OffsetCommit(OffsetCommitRequest {
        group_id: GROUP.into(),
        generation_id: epoch,
        member_id: member_id.into(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: vec![OffsetCommitTopic {
            name: TOPIC.into(),
            partitions: vec![OffsetCommitPartition {
                partition: 0,
                committed_offset: 5,
                committed_leader_epoch: -1,
                metadata: None,
            }],
        }],
    })
}

fn commit_error(node: &mut SingleNode, request: ApiRequest) -> ErrorCode {
    let id = node.send(1, request);
    node.complete_syncs();
    match node.take(id) {
        Some(ApiResponse::OffsetCommit(r)) => r.topics[0].partitions[0].1,
        other => panic!("expected an OffsetCommit answer, got {other:?}"),
    }
}

// Goal: OffsetCommit carries the member epoch (v9): current epoch commits, a stale one gets
// STALE_MEMBER_EPOCH, an unknown member UNKNOWN_MEMBER_ID.
#[test]
fn offset_commit_checks_member_epoch() {
    let mut node = node();
    let a = Client::join(&mut node, "");
    assert_eq!(
        commit_error(&mut node, commit(&a.id, a.epoch)),
        ErrorCode::NONE
    );
    assert_eq!(
        commit_error(&mut node, commit(&a.id, a.epoch - 1)),
        ErrorCode::STALE_MEMBER_EPOCH
    );
    assert_eq!(
        commit_error(&mut node, commit("ghost", a.epoch)),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

// Goal: the protocols do not mix (Kafka 4.0 with migration disabled): a classic JoinGroup
// into a consumer group is INCONSISTENT_GROUP_PROTOCOL, a heartbeat into a classic group
// GROUP_ID_NOT_FOUND; ListGroups reports the type and filters by it.
#[test]
fn protocols_do_not_mix_and_list_groups_shows_the_type() {
    let mut node = node();
    let _a = Client::join(&mut node, "");
    let classic = |group: &str| {
        ApiRequest::JoinGroup(JoinGroupRequest {
            group_id: group.into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            member_id: String::new(),
            group_instance_id: None,
            protocol_type: "consumer".into(),
            protocols: vec![JoinGroupProtocol {
                name: "range".into(),
                metadata: Bytes::from_static(b"m"),
            }],
            reason: None,
            client_id: "c".into(),
            client_host: String::new(),
            member_id_required: false,
        })
    };
    let ApiResponse::JoinGroup(refused) = node.call(classic(GROUP)) else {
        panic!("not a JoinGroup answer")
    };
    assert_eq!(refused.error, ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
    let id = node.send(2, classic("classic"));
    let ApiResponse::JoinGroup(joined) = node.take(id).expect("answered") else {
        panic!("not a JoinGroup answer")
    };
    assert_eq!(joined.error, ErrorCode::NONE);
    let mut into_classic = hb("", 0, Some(&[]));
    if let ApiRequest::ConsumerGroupHeartbeat(r) = &mut into_classic {
        r.group_id = "classic".into();
    }
    assert_eq!(
        answer(node.call(into_classic)).error,
        ErrorCode::GROUP_ID_NOT_FOUND
    );
    let mut list = |types: &[&str]| {
        let request = ApiRequest::ListGroups(ListGroupsRequest {
            states_filter: Vec::new(),
            types_filter: types.iter().map(|t| t.to_string()).collect(),
        });
        let ApiResponse::ListGroups(r) = node.call(request) else {
            panic!("not a ListGroups answer")
        };
        (r.groups.into_iter())
            .map(|g| (g.group_id, g.group_type))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(&["consumer"]),
        vec![(GROUP.to_string(), "consumer".to_string())]
    );
    assert_eq!(
        list(&["classic"]),
        vec![("classic".to_string(), "classic".to_string())]
    );
}

// Goal: unsupported requests are refused with Kafka's errors, and ConsumerGroupDescribe
// reports members with their assignment and the group's epochs.
#[test]
fn invalid_requests_and_describe() {
    let mut node = node();
    let mut bad = hb("", 0, Some(&[]));
    if let ApiRequest::ConsumerGroupHeartbeat(r) = &mut bad {
        r.server_assignor = Some("sticky".into());
    }
    assert_eq!(
        answer(node.call(bad)).error,
        ErrorCode::UNSUPPORTED_ASSIGNOR
    );
    let mut regex = hb("", 0, Some(&[]));
    if let ApiRequest::ConsumerGroupHeartbeat(r) = &mut regex {
        r.subscribed_topic_regex = Some("t.*".into());
    }
    assert_eq!(answer(node.call(regex)).error, ErrorCode::INVALID_REQUEST);
    let mut range = hb("", 0, Some(&[]));
    if let ApiRequest::ConsumerGroupHeartbeat(r) = &mut range {
        r.server_assignor = Some("range".into());
    }
    let a = answer(node.call(range));
    assert_eq!(a.error, ErrorCode::NONE);
    let describe = ApiRequest::ConsumerGroupDescribe(ConsumerGroupDescribeRequest {
        group_ids: vec![GROUP.into(), "missing".into()],
        include_authorized_operations: false,
    });
    let ApiResponse::ConsumerGroupDescribe(d) = node.call(describe) else {
        panic!("not a ConsumerGroupDescribe answer")
    };
    let group = &d.groups[0];
    assert_eq!(
        (group.group_state.as_str(), group.assignor_name.as_str()),
        ("Stable", "range")
    );
    assert_eq!((group.group_epoch, group.assignment_epoch), (1, 1));
    assert_eq!(group.members[0].assignment[0].topic_name, TOPIC);
    assert_eq!(group.members[0].assignment[0].partitions.len(), 6);
    assert_eq!(d.groups[1].error, ErrorCode::GROUP_ID_NOT_FOUND);
}

// Goal: a static member that leaves with epoch -2 keeps its partitions; its next
// incarnation (new member id, same instance id) takes them over; a second live incarnation
// is refused with UNRELEASED_INSTANCE_ID.
#[test]
fn static_member_leaves_and_returns() {
    let mut node = node();
    let static_join = |member_id: &str| {
        let mut request = hb(member_id, 0, Some(&[]));
        if let ApiRequest::ConsumerGroupHeartbeat(r) = &mut request {
            r.instance_id = Some("inst".into());
        }
        request
    };
    let first = answer(node.call(static_join("one")));
    assert_eq!((first.error, first.member_epoch), (ErrorCode::NONE, 1));
    let taken = answer(node.call(static_join("two")));
    assert_eq!(taken.error, ErrorCode::UNRELEASED_INSTANCE_ID);
    let mut leave = hb("one", -2, None);
    if let ApiRequest::ConsumerGroupHeartbeat(r) = &mut leave {
        r.instance_id = Some("inst".into());
    }
    assert_eq!(answer(node.call(leave)).member_epoch, -2);
    let back = answer(node.call(static_join("two")));
    assert_eq!((back.error, back.member_epoch), (ErrorCode::NONE, 1));
    let partitions: usize = (back.assignment.expect("assignment").iter())
        .map(|t| t.partitions.len())
        .sum();
    assert_eq!(
        partitions, 6,
        "the new incarnation owns what the old one had"
    );
    let old = answer(node.call(hb("one", 1, None)));
    assert_eq!(old.error, ErrorCode::UNKNOWN_MEMBER_ID);
}

// Goal: under any interleaving of joins, heartbeats (some with lost responses), leaves,
// silent deaths and time passing, no partition is owned by two members (the harness asserts
// the coordinator's invariants after every step).
// Method: proptest over a small operation alphabet, replayed against one node.
mod interleavings {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Join,
        Beat(usize),
        BeatDropResponse(usize),
        Leave(usize),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            1 => Just(Op::Join),
            6 => (0usize..6).prop_map(Op::Beat),
            1 => (0usize..6).prop_map(Op::BeatDropResponse),
            1 => (0usize..6).prop_map(Op::Leave),
            2 => (100u64..6_000).prop_map(Op::Advance),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn no_partition_owned_twice(ops in proptest::collection::vec(op(), 1..80)) {
            let mut node = node();
            let mut clients: Vec<Client> = Vec::new();
            for op in ops {
                match op {
                    Op::Join if clients.len() < 6 => clients.push(Client::join(&mut node, "")),
                    Op::Join => {}
                    Op::Beat(i) | Op::BeatDropResponse(i) if i < clients.len() => {
                        let c = &mut clients[i];
                        let r = answer(node.call(hb(&c.id, c.epoch, Some(&c.owned))));
                        if r.error == ErrorCode::NONE {
                            if matches!(op, Op::Beat(_)) {
                                c.apply(r);
                            }
                        } else {
                            // Fenced or expired: the client drops everything and rejoins.
                            let id = c.id.clone();
                            clients[i] = Client::join(&mut node, &id);
                        }
                    }
                    Op::Leave(i) if i < clients.len() => {
                        let c = clients.remove(i);
                        node.call(hb(&c.id, -1, None));
                    }
                    Op::Advance(ms) => node.advance_ms(ms),
                    _ => {}
                }
            }
        }
    }
}
