//! Scenario tests of the group coordinator through the Node's public API.
//!
//! Goal: the classic protocol's flows behave as Kafka's: MEMBER_ID_REQUIRED then join, the
//! leader's SyncGroup hands out assignments (once the group's record is durable), heartbeats
//! keep members, an expired session triggers a rebalance, static members replace their old
//! incarnation, and committed offsets and the membership survive a restart (replayed from
//! `__consumer_offsets`).
//! Method: drive a `SingleNode` (MemStorage, virtual time) with domain requests and check
//! answers; the harness asserts the node's invariants after every step.

use crate::common;

use bytes::Bytes;
use common::{must_create, node_with_coordinators};
use weir_core::testing::SingleNode;
use weir_core::RequestId;
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

const GROUP: &str = "g";
const SESSION_MS: i32 = 10_000;

fn join(member_id: &str, instance: Option<&str>) -> ApiRequest {
    ApiRequest::JoinGroup(JoinGroupRequest {
        group_id: GROUP.into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: 20_000,
        member_id: member_id.into(),
        group_instance_id: instance.map(Into::into),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupProtocol {
            name: "range".into(),
            metadata: Bytes::from_static(b"meta"),
        }],
        reason: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        member_id_required: true,
    })
}

fn sync(member_id: &str, generation_id: i32, assignments: Vec<(String, Bytes)>) -> ApiRequest {
    ApiRequest::SyncGroup(SyncGroupRequest {
        group_id: GROUP.into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments,
    })
}

fn heartbeat(member_id: &str, generation_id: i32) -> ApiRequest {
    ApiRequest::Heartbeat(HeartbeatRequest {
        group_id: GROUP.into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
    })
}

fn joined(response: Option<ApiResponse>) -> JoinGroupResponse {
    match response {
        Some(ApiResponse::JoinGroup(r)) => r,
        other => panic!("expected a JoinGroup answer, got {other:?}"),
    }
}

fn synced(response: Option<ApiResponse>) -> SyncGroupResponse {
    match response {
        Some(ApiResponse::SyncGroup(r)) => r,
        other => panic!("expected a SyncGroup answer, got {other:?}"),
    }
}

fn hb_error(response: ApiResponse) -> ErrorCode {
    match response {
        ApiResponse::Heartbeat(r) => r.error,
        other => panic!("expected a Heartbeat answer, got {other:?}"),
    }
}

fn node() -> SingleNode {
    node_with_coordinators(|c| {
        c.group_initial_rebalance_delay_ms = 0;
        c.offsets_topic_num_partitions = 3;
    })
}

/// First join of a dynamic member: MEMBER_ID_REQUIRED, then a join with that id (parked on
/// connection `conn` until the join phase completes).
fn first_join(node: &mut SingleNode, conn: u64) -> (String, RequestId) {
    let id = node.send(conn, join("", None));
    let answer = joined(node.take(id));
    assert_eq!(answer.error, ErrorCode::MEMBER_ID_REQUIRED);
    let member_id = answer.member_id;
    (member_id.clone(), node.send(conn, join(&member_id, None)))
}

// Goal: two members join, the leader assigns, both get their share; the dead member's
// session expires and the survivor is told to rejoin, then owns everything.
#[test]
fn join_sync_heartbeat_and_session_expiry() {
    let mut node = node();
    let (a, a_join) = first_join(&mut node, 1);
    // Alone and no initial delay: the first generation completes at once.
    let a1 = joined(node.take(a_join));
    assert_eq!(
        (a1.error, a1.generation_id, a1.leader.as_str()),
        (ErrorCode::NONE, 1, a.as_str())
    );
    let s = synced(Some(node.call(sync(
        &a,
        1,
        vec![(a.clone(), Bytes::from_static(b"all"))],
    ))));
    assert_eq!(s.assignment, Bytes::from_static(b"all"));
    assert_eq!(
        s.protocol_name.as_deref(),
        Some("range"),
        "SyncGroup v5 echo"
    );
    // B arrives: A's heartbeat says rebalance; A rejoins; both get generation 2.
    let (b, b_join) = first_join(&mut node, 2);
    assert!(node.take(b_join).is_none(), "parked until A rejoins");
    assert_eq!(
        hb_error(node.call(heartbeat(&a, 1))),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    let a_join = node.send(1, join(&a, None));
    let a2 = joined(node.take(a_join));
    let b2 = joined(node.take(b_join));
    assert_eq!((a2.generation_id, b2.generation_id), (2, 2));
    assert_eq!(a2.members.len(), 2, "the leader sees every member");
    assert!(b2.members.is_empty(), "followers see none");
    let b_sync = node.send(2, sync(&b, 2, vec![]));
    assert!(
        node.take(b_sync).is_none(),
        "the follower waits for the leader"
    );
    let plan = vec![
        (a.clone(), Bytes::from_static(b"0-2")),
        (b.clone(), Bytes::from_static(b"3-5")),
    ];
    let a_sync = synced(Some(node.call(sync(&a, 2, plan))));
    assert_eq!(a_sync.assignment, Bytes::from_static(b"0-2"));
    assert_eq!(
        synced(node.take(b_sync)).assignment,
        Bytes::from_static(b"3-5")
    );
    // B dies silently; A keeps heartbeating; after B's session A is told to rebalance.
    for _ in 0..4 {
        node.advance_ms(3_000);
        let error = hb_error(node.call(heartbeat(&a, 2)));
        if error == ErrorCode::REBALANCE_IN_PROGRESS {
            let a_join = node.send(1, join(&a, None));
            let a3 = joined(node.take(a_join));
            assert_eq!((a3.generation_id, a3.members.len()), (3, 1));
            return;
        }
        assert_eq!(error, ErrorCode::NONE);
    }
    panic!("B's session never expired");
}

// Goal: a static member restarting (new JoinGroup without member id) replaces its old
// incarnation without a rebalance, and the old id is fenced.
#[test]
fn static_member_replaces_old_incarnation() {
    let mut node = node();
    let j = node.send(1, join("", Some("inst")));
    let first = joined(node.take(j));
    assert_eq!(
        first.error,
        ErrorCode::NONE,
        "static members skip MEMBER_ID_REQUIRED"
    );
    let old = first.member_id.clone();
    node.call(sync(&old, 1, vec![(old.clone(), Bytes::from_static(b"x"))]));
    let j = node.send(2, join("", Some("inst")));
    let again = joined(node.take(j));
    assert_eq!(again.error, ErrorCode::NONE);
    assert_eq!(
        again.generation_id, 1,
        "no rebalance for an unchanged static member"
    );
    assert_ne!(again.member_id, old);
    let hb = ApiRequest::Heartbeat(HeartbeatRequest {
        group_id: GROUP.into(),
        generation_id: 1,
        member_id: old,
        group_instance_id: Some("inst".into()),
    });
    assert_eq!(hb_error(node.call(hb)), ErrorCode::FENCED_INSTANCE_ID);
}

fn commit(offset: i64) -> ApiRequest {
    ApiRequest::OffsetCommit(OffsetCommitRequest {
        group_id: "offsets-group".into(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: vec![OffsetCommitTopic {
            name: "t".into(),
            partitions: vec![OffsetCommitPartition {
                partition: 1,
                committed_offset: offset,
                committed_leader_epoch: 0,
                metadata: Some("meta".into()),
            }],
        }],
    })
}

fn fetched(node: &mut SingleNode) -> OffsetFetchPartition {
    let request = ApiRequest::OffsetFetch(OffsetFetchRequest {
        groups: vec![OffsetFetchGroup {
            group_id: "offsets-group".into(),
            topics: Some(vec![("t".into(), vec![1])]),
        }],
        require_stable: true,
    });
    match node.call(request) {
        ApiResponse::OffsetFetch(r) => r.groups[0].topics[0].partitions[0].clone(),
        other => panic!("{other:?}"),
    }
}

// Goal: commits are answered after their sync, read back, and survive a restart (replay of
// __consumer_offsets, latest wins); DeleteGroups tombstones them for good.
#[test]
fn offsets_survive_restart_and_delete() {
    let mut node = node();
    must_create(&mut node, "t", 2, &[]);
    assert_eq!(fetched(&mut node).committed_offset, -1);
    let id = node.send(0, commit(5));
    assert!(node.take(id).is_none(), "answered only once durable");
    node.complete_syncs();
    assert!(matches!(node.take(id), Some(ApiResponse::OffsetCommit(_))));
    node.call(commit(7));
    node.restart();
    let after = fetched(&mut node);
    assert_eq!(
        (after.committed_offset, after.committed_leader_epoch),
        (7, 0)
    );
    assert_eq!(after.metadata.as_deref(), Some("meta"));
    let delete = ApiRequest::DeleteGroups(DeleteGroupsRequest {
        groups: vec!["offsets-group".into(), "nope".into()],
    });
    match node.call(delete) {
        ApiResponse::DeleteGroups(r) => assert_eq!(
            r.results,
            vec![
                ("offsets-group".into(), ErrorCode::NONE),
                ("nope".into(), ErrorCode::GROUP_ID_NOT_FOUND)
            ]
        ),
        other => panic!("{other:?}"),
    }
    node.restart();
    assert_eq!(fetched(&mut node).committed_offset, -1);
}

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

fn committed_offset(node: &mut SingleNode, group: &str, partition: i32) -> (i64, String) {
    let request = ApiRequest::OffsetFetch(OffsetFetchRequest {
        groups: vec![OffsetFetchGroup {
            group_id: group.into(),
            topics: Some(vec![("t".into(), vec![partition])]),
        }],
        require_stable: false,
    });
    let ApiResponse::OffsetFetch(r) = node.call(request) else {
        panic!("offset fetch answer expected")
    };
    let p = &r.groups[0].topics[0].partitions[0];
    (p.committed_offset, p.metadata.clone().unwrap_or_default())
}

/// Records `__consumer_offsets` partition 0 holds now, read through Fetch.
fn offsets_records(node: &mut SingleNode) -> usize {
    let mut count = 0;
    let mut offset = 0;
    loop {
        let response = node.call(common::fetch("__consumer_offsets", 0, offset, 0, 1));
        let records = common::fetched_records(&response);
        let Some(last) = records.last() else {
            return count;
        };
        offset = last.offset + 1;
        count += records.len();
    }
}

// Goal: `__consumer_offsets` is compacted: committing the same few keys thousands of times
// keeps the log's records bounded (offsets unchanged: the log end counts every commit),
// deleted offsets stay deleted, and recovery restores the latest offsets. Method: one
// offsets partition with small segments and a fast cleaner; two groups commit three
// partitions 1,500 times each while time passes, one group then deletes an offset; count
// the partition's records; restart (and crash) and fetch.
#[test]
fn offsets_log_is_compacted_and_recovers() {
    let mut node = node_with_coordinators(|c| {
        c.group_initial_rebalance_delay_ms = 0;
        c.offsets_topic_num_partitions = 1;
        c.offsets_topic_segment_bytes = 4_096;
        c.cleaner_backoff_ms = 100;
    });
    must_create(&mut node, "t", 3, &[]);
    for round in 0..1_500 {
        for group in ["a", "b"] {
            let partition = round % 3;
            let response = node.call(commit_to(group, partition, i64::from(round)));
            let ApiResponse::OffsetCommit(r) = response else {
                panic!("{response:?}")
            };
            assert_eq!(r.topics[0].partitions[0].1, ErrorCode::NONE);
        }
        if round % 100 == 99 {
            node.advance_ms(200);
        }
    }
    node.advance_ms(200);
    let (start, _, end) = node
        .node
        .partition_offsets("__consumer_offsets", 0)
        .expect("exists");
    assert_eq!((start, end), (0, 3_000), "offsets never change");
    let held = offsets_records(&mut node);
    assert!(held < 300, "log compacted to few records, held {held}");
    let response = node.call(ApiRequest::OffsetDelete(OffsetDeleteRequest {
        group_id: "b".into(),
        topics: vec![("t".into(), vec![0])],
    }));
    assert!(matches!(
        response,
        ApiResponse::OffsetDelete(OffsetDeleteResponse {
            error: ErrorCode::NONE,
            ..
        })
    ));
    node.restart();
    assert_eq!(committed_offset(&mut node, "a", 0), (1_497, "m1497".into()));
    assert_eq!(committed_offset(&mut node, "a", 1), (1_498, "m1498".into()));
    assert_eq!(committed_offset(&mut node, "a", 2), (1_499, "m1499".into()));
    assert_eq!(
        committed_offset(&mut node, "b", 0).0,
        -1,
        "deleted stays deleted"
    );
    assert_eq!(committed_offset(&mut node, "b", 2).0, 1_499);
    node.crash();
    assert_eq!(committed_offset(&mut node, "a", 2).0, 1_499);
    assert_eq!(committed_offset(&mut node, "b", 0).0, -1);
}

fn commit_as(member_id: &str, generation_id: i32, offset: i64) -> ApiRequest {
    common::offset_commit(GROUP, member_id, generation_id, offset)
}

fn commit_error(response: ApiResponse) -> ErrorCode {
    match response {
        ApiResponse::OffsetCommit(r) => r.topics[0].partitions[0].1,
        other => panic!("expected an OffsetCommit answer, got {other:?}"),
    }
}

// Goal: a coordinator restart keeps the group: the leader's SyncGroup is answered only once
// the group's record is durable, and after a crash and recovery the member's Heartbeat,
// SyncGroup and OffsetCommit with its old id and generation are accepted without a rejoin
// (before group records they got UNKNOWN_MEMBER_ID); the recovered member's session runs
// from the recovery, so a member that never comes back is removed one session later.
// Method: one member on a SingleNode; hold the sync, crash, recover, heartbeat; then a
// second restart with no heartbeat and wait a session.
#[test]
fn membership_survives_a_coordinator_restart() {
    let mut node = node();
    must_create(&mut node, "t", 1, &[]);
    let (a, a_join) = first_join(&mut node, 1);
    assert_eq!(joined(node.take(a_join)).generation_id, 1);
    let a_sync = node.send(1, sync(&a, 1, vec![(a.clone(), Bytes::from_static(b"p0"))]));
    assert!(
        node.take(a_sync).is_none(),
        "answered once the group's record is durable"
    );
    assert!(!node.pending_syncs().is_empty());
    node.complete_syncs();
    assert_eq!(
        synced(node.take(a_sync)).assignment,
        Bytes::from_static(b"p0")
    );
    assert_eq!(
        commit_error(node.call(commit_as(&a, 1, 3))),
        ErrorCode::NONE
    );

    node.crash();
    node.advance_ms(u64::try_from(SESSION_MS).expect("positive") - 1_000);
    assert_eq!(hb_error(node.call(heartbeat(&a, 1))), ErrorCode::NONE);
    let again = synced(Some(node.call(sync(&a, 1, vec![]))));
    assert_eq!(
        (again.error, again.assignment),
        (ErrorCode::NONE, Bytes::from_static(b"p0"))
    );
    assert_eq!(
        commit_error(node.call(commit_as(&a, 1, 4))),
        ErrorCode::NONE
    );
    let describe = ApiRequest::DescribeGroups(DescribeGroupsRequest {
        groups: vec![GROUP.into()],
        include_authorized_operations: false,
    });
    let ApiResponse::DescribeGroups(described) = node.call(describe) else {
        panic!("DescribeGroups answer expected")
    };
    assert_eq!(described.groups[0].group_state, "Stable");
    assert_eq!(described.groups[0].members[0].member_id, a);

    // Recovered again, the member stays silent: it is removed one session after recovery.
    node.restart();
    node.advance_ms(u64::try_from(SESSION_MS).expect("positive") + 1);
    assert_eq!(
        hb_error(node.call(heartbeat(&a, 1))),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    node.restart();
    assert_eq!(
        hb_error(node.call(heartbeat(&a, 1))),
        ErrorCode::UNKNOWN_MEMBER_ID,
        "the Empty record was replayed"
    );
}

// Goal: compaction of `__consumer_offsets` keeps each group's latest metadata record, so
// the membership survives a crash after the records around it were cleaned away. Method: a
// Stable group whose member commits 1,500 times into one offsets partition with small
// segments and a fast cleaner, then crash, recover and heartbeat with the old generation.
#[test]
fn membership_survives_compaction() {
    let mut node = node_with_coordinators(|c| {
        c.group_initial_rebalance_delay_ms = 0;
        c.offsets_topic_num_partitions = 1;
        c.offsets_topic_segment_bytes = 4_096;
        c.cleaner_backoff_ms = 100;
    });
    must_create(&mut node, "t", 1, &[]);
    let (a, a_join) = first_join(&mut node, 1);
    assert_eq!(joined(node.take(a_join)).generation_id, 1);
    let plan = vec![(a.clone(), Bytes::from_static(b"p0"))];
    assert_eq!(
        synced(Some(node.call(sync(&a, 1, plan)))).error,
        ErrorCode::NONE
    );
    for offset in 0..1_500 {
        assert_eq!(
            commit_error(node.call(commit_as(&a, 1, offset))),
            ErrorCode::NONE
        );
        if offset % 100 == 99 {
            // Less than a session: the member stays.
            node.advance_ms(200);
            assert_eq!(hb_error(node.call(heartbeat(&a, 1))), ErrorCode::NONE);
        }
    }
    node.advance_ms(200);
    let held = offsets_records(&mut node);
    assert!(held < 100, "compacted to few records, held {held}");
    node.crash();
    assert_eq!(hb_error(node.call(heartbeat(&a, 1))), ErrorCode::NONE);
    let again = synced(Some(node.call(sync(&a, 1, vec![]))));
    assert_eq!(again.assignment, Bytes::from_static(b"p0"));
}
