//! Exactly-once consume-transform-produce in a cluster whose group and transaction
//! coordinators are different brokers (KIP-98's design, `node/txn_offsets.rs`): the group's
//! offsets partition joins the transaction, TxnOffsetCommit goes to the group's
//! coordinator, and the transaction's marker (sent by its coordinator to that partition's
//! leader) commits the offsets there, on every replica.
//!
//! Method: three in-process brokers (real `Node`s over `MemStorage`, virtual time), internal
//! topics replicated on all three; a transactional id and a group coordinated by two
//! different brokers; a committed transaction, then the group's coordinator is killed with
//! a second transaction's offsets pending, and the transaction commits through the new one.

use crate::common;

use common::cluster::Cluster;
use weir_wire::domain::txn::*;
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

/// Send `request` to `at` until its one error is not retriable (up to 30 s); that error.
fn until_settled(
    cluster: &mut Cluster,
    at: i32,
    request: &ApiRequest,
    error: impl Fn(&ApiResponse) -> ErrorCode,
) -> ErrorCode {
    for _ in 0..300 {
        let found = error(&cluster.call(at, request.clone()));
        let retriable = matches!(
            found,
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
                | ErrorCode::COORDINATOR_NOT_AVAILABLE
                | ErrorCode::CONCURRENT_TRANSACTIONS
                | ErrorCode::UNSTABLE_OFFSET_COMMIT
        );
        if !retriable {
            return found;
        }
        cluster.advance_ms(100);
    }
    panic!("{request:?} still retriable at {at} after 30 s")
}

/// The group's committed offset of `t`-0 at `at` once no transaction holds it (KIP-447's
/// `require_stable`).
fn stable_offset(cluster: &mut Cluster, at: i32, group: &str) -> i64 {
    let request = ApiRequest::OffsetFetch(OffsetFetchRequest {
        groups: vec![OffsetFetchGroup {
            group_id: group.into(),
            topics: Some(vec![("t".into(), vec![0])]),
        }],
        require_stable: true,
    });
    let partition = |r: &ApiResponse| match r {
        ApiResponse::OffsetFetch(r) => r.groups[0].topics[0].partitions[0].clone(),
        other => panic!("{other:?}"),
    };
    let error = until_settled(cluster, at, &request, |r| partition(r).error);
    assert_eq!(error, ErrorCode::NONE);
    partition(&cluster.call(at, request)).committed_offset
}

// Goal: the offsets a transaction commits reach a group coordinated by another broker,
// only when it commits, and survive that broker's failure mid-transaction.
#[test]
fn offsets_commit_with_the_transaction_across_brokers_and_failover() {
    let mut cluster = Cluster::new(&[1, 2, 3], &[1, 2, 3], |config| {
        config.transaction_state_log_num_partitions = 1;
        config.offsets_topic_num_partitions = 6;
    });
    cluster.create(
        1,
        CreatableTopic {
            name: "t".into(),
            num_partitions: 1,
            replication_factor: 3,
            assignments: Vec::new(),
            configs: Vec::new(),
        },
    );
    let txn = cluster.find_coordinator(1, 1, "tx", None);
    cluster.settle("__transaction_state", &[1, 2, 3]);
    let (group, group_at) = (0..100)
        .map(|i| format!("g{i}"))
        .find_map(|g| {
            let at = cluster.find_coordinator(1, 0, &g, None);
            (at != txn).then_some((g, at))
        })
        .expect("a group coordinated by another broker");
    cluster.advance_ms(2_000);
    let ApiResponse::InitProducerId(init) = cluster.call(txn, common::init_producer_id(Some("tx")))
    else {
        panic!("not InitProducerId");
    };
    assert_eq!(init.error, ErrorCode::NONE);
    let (pid, epoch) = (init.producer_id, init.producer_epoch);
    let add = ApiRequest::AddOffsetsToTxn(AddOffsetsToTxnRequest {
        transactional_id: "tx".into(),
        producer_id: pid,
        producer_epoch: epoch,
        group_id: group.clone(),
    });
    let commit_offsets = |offset| common::txn_offset_commit("tx", &group, (pid, epoch), offset);
    let end = ApiRequest::EndTxn(EndTxnRequest {
        transactional_id: "tx".into(),
        producer_id: pid,
        producer_epoch: epoch,
        committed: true,
    });
    let add_error = |r: &ApiResponse| match r {
        ApiResponse::AddOffsetsToTxn(r) => r.error,
        other => panic!("{other:?}"),
    };
    let offsets_error = |r: &ApiResponse| match r {
        ApiResponse::TxnOffsetCommit(r) => r.topics[0].partitions[0].error,
        other => panic!("{other:?}"),
    };
    let end_error = |r: &ApiResponse| match r {
        ApiResponse::EndTxn(r) => r.error,
        other => panic!("{other:?}"),
    };
    // 1. A committed transaction: the offset lands at the group's coordinator.
    assert_eq!(
        until_settled(&mut cluster, txn, &add, add_error),
        ErrorCode::NONE
    );
    let sent = until_settled(&mut cluster, group_at, &commit_offsets(5), offsets_error);
    assert_eq!(sent, ErrorCode::NONE);
    assert_eq!(
        until_settled(&mut cluster, txn, &end, end_error),
        ErrorCode::NONE
    );
    assert_eq!(stable_offset(&mut cluster, group_at, &group), 5);
    // 2. Offsets pending (acknowledged, so replicated) when the group's coordinator dies:
    //    the new one holds them from its copy of the log, and the commit marker, resent to
    //    it, commits them.
    assert_eq!(
        until_settled(&mut cluster, txn, &add, add_error),
        ErrorCode::NONE
    );
    let sent = until_settled(&mut cluster, group_at, &commit_offsets(9), offsets_error);
    assert_eq!(sent, ErrorCode::NONE);
    cluster.kill(group_at);
    let new_group_at = cluster.find_coordinator(txn, 0, &group, Some(group_at));
    assert_eq!(
        until_settled(&mut cluster, txn, &end, end_error),
        ErrorCode::NONE
    );
    assert_eq!(stable_offset(&mut cluster, new_group_at, &group), 9);
    // 3. The old coordinator comes back as a follower and agrees once it leads again.
    cluster.restart(group_at);
    cluster.advance_ms(3_000);
    let now_at = cluster.find_coordinator(txn, 0, &group, None);
    assert_eq!(stable_offset(&mut cluster, now_at, &group), 9);
}
