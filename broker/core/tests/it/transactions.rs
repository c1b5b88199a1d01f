//! Scenario tests of transactions in the core: commit and abort with markers, the last
//! stable offset and aborted list a read_committed fetch sees, KIP-890's refusal of
//! partitions not added, zombie fencing by a re-initialized transactional id, the timeout
//! abort, transactional offsets (unstable until commit), and recovery mid-transaction.
//! Method: drive a `SingleNode` with domain requests and read fetch/list-offsets answers.

use crate::common;

use common::*;
use weir_core::testing::SingleNode;
use weir_wire::domain::txn::*;
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

fn init(node: &mut SingleNode, tid: &str, timeout_ms: i32) -> (i64, i16) {
    let response = node.call(ApiRequest::InitProducerId(InitProducerIdRequest {
        transactional_id: Some(tid.into()),
        transaction_timeout_ms: timeout_ms,
        producer_id: -1,
        producer_epoch: -1,
    }));
    let ApiResponse::InitProducerId(r) = response else {
        panic!("{response:?}")
    };
    assert_eq!(r.error, ErrorCode::NONE);
    (r.producer_id, r.producer_epoch)
}

fn add_partition(node: &mut SingleNode, tid: &str, pid: i64, epoch: i16, topic: &str) -> ErrorCode {
    let response = node.call(ApiRequest::AddPartitionsToTxn(AddPartitionsToTxnRequest {
        transactional_id: tid.into(),
        producer_id: pid,
        producer_epoch: epoch,
        topics: vec![TxnTopic {
            name: topic.into(),
            partitions: vec![0],
        }],
    }));
    let ApiResponse::AddPartitionsToTxn(r) = response else {
        panic!("{response:?}")
    };
    r.results[0].partitions[0].error
}

fn end(node: &mut SingleNode, tid: &str, pid: i64, epoch: i16, committed: bool) -> ErrorCode {
    let response = node.call(ApiRequest::EndTxn(EndTxnRequest {
        transactional_id: tid.into(),
        producer_id: pid,
        producer_epoch: epoch,
        committed,
    }));
    let ApiResponse::EndTxn(r) = response else {
        panic!("{response:?}")
    };
    r.error
}

fn read_committed_fetch(node: &mut SingleNode, topic: &str) -> FetchPartitionResponse {
    let mut request = fetch(topic, 0, 0, 0, 0);
    if let ApiRequest::Fetch(f) = &mut request {
        f.isolation_level = 1;
    }
    let response = node.call(request);
    fetch_partition(&response).clone()
}

#[test]
fn commit_abort_lso_and_aborted_list() {
    let mut node = node_with(|_| {});
    must_create(&mut node, "t", 1, &[]);
    let (pid, epoch) = init(&mut node, "tx", 60_000);
    // KIP-890: no AddPartitionsToTxn yet, so the batch is refused.
    let response = node.call(produce("t", 0, txn_batch(pid, epoch, 0, &["a"]), -1));
    assert_eq!(
        produce_result(&response).error,
        ErrorCode::INVALID_TXN_STATE
    );
    assert_eq!(
        add_partition(&mut node, "tx", pid, epoch, "t"),
        ErrorCode::NONE
    );
    let response = node.call(produce("t", 0, txn_batch(pid, epoch, 0, &["a", "b"]), -1));
    assert_eq!(produce_result(&response).error, ErrorCode::NONE);
    // Open transaction: LSO at its first offset, read_committed reads nothing.
    let open = read_committed_fetch(&mut node, "t");
    assert_eq!((open.high_watermark, open.last_stable_offset), (2, 0));
    assert!(fetched_records(&node.call(fetch("t", 0, 0, 0, 0))).len() == 2);
    assert_eq!(end(&mut node, "tx", pid, epoch, false), ErrorCode::NONE);
    let aborted = read_committed_fetch(&mut node, "t");
    assert_eq!((aborted.high_watermark, aborted.last_stable_offset), (3, 3));
    assert_eq!(
        aborted.aborted_transactions,
        vec![AbortedTransaction {
            producer_id: pid,
            first_offset: 0
        }]
    );
    // A committed transaction leaves no aborted entry of its own.
    assert_eq!(
        add_partition(&mut node, "tx", pid, epoch, "t"),
        ErrorCode::NONE
    );
    let response = node.call(produce("t", 0, txn_batch(pid, epoch, 2, &["c"]), -1));
    assert_eq!(produce_result(&response).error, ErrorCode::NONE);
    assert_eq!(end(&mut node, "tx", pid, epoch, true), ErrorCode::NONE);
    let committed = read_committed_fetch(&mut node, "t");
    assert_eq!(
        (committed.high_watermark, committed.last_stable_offset),
        (5, 5)
    );
    assert_eq!(committed.aborted_transactions.len(), 1);
    // Recovery rebuilds the index from the log.
    node.restart();
    let recovered = read_committed_fetch(&mut node, "t");
    assert_eq!(recovered.last_stable_offset, 5);
    assert_eq!(recovered.aborted_transactions, aborted.aborted_transactions);
}

/// A node with topic `t`, where producer `tx` opened a transaction holding `value` and was
/// then re-initialized: `(node, producer id, old epoch, (new producer id, new epoch))`.
fn reinit_over_open_transaction(value: &str) -> (SingleNode, i64, i16, (i64, i16)) {
    let mut node = node_with(|_| {});
    must_create(&mut node, "t", 1, &[]);
    let (pid, epoch) = init(&mut node, "tx", 60_000);
    assert_eq!(
        add_partition(&mut node, "tx", pid, epoch, "t"),
        ErrorCode::NONE
    );
    let response = node.call(produce("t", 0, txn_batch(pid, epoch, 0, &[value]), -1));
    assert_eq!(produce_result(&response).error, ErrorCode::NONE);
    let reinit = init(&mut node, "tx", 60_000);
    (node, pid, epoch, reinit)
}

#[test]
fn reinit_fences_the_zombie_and_aborts_its_transaction() {
    let (mut node, pid, epoch, (pid2, epoch2)) = reinit_over_open_transaction("zombie");
    // The abort's markers carry epoch + 1, which is never handed out (Kafka's rule): the
    // new producer gets epoch + 2 (see the next test for why).
    assert_eq!((pid2, epoch2), (pid, epoch + 2));
    let fetched = read_committed_fetch(&mut node, "t");
    assert_eq!(
        fetched.last_stable_offset, fetched.high_watermark,
        "abort marker written"
    );
    assert_eq!(fetched.aborted_transactions.len(), 1);
    assert_eq!(
        end(&mut node, "tx", pid, epoch, true),
        ErrorCode::PRODUCER_FENCED
    );
    assert_eq!(
        add_partition(&mut node, "tx", pid, epoch, "t"),
        ErrorCode::PRODUCER_FENCED
    );
    let response = node.call(produce("t", 0, txn_batch(pid, epoch, 1, &["late"]), -1));
    assert_eq!(
        produce_result(&response).error,
        ErrorCode::INVALID_PRODUCER_EPOCH
    );
}

// Goal: a marker of the abort a re-initialization made, arriving late at the leader (a
// resend whose first copy was answered slowly), cannot end the new producer's first
// transaction: the new producer's epoch is above the abort's, and the leader refuses a
// marker older than the producer's epoch. (Found as a schema-registry registration that
// was acknowledged and then missing from `_schemas`: every registry writer shares one
// transactional id.)
// Method: re-initialize over an open transaction, open a new one and produce to it, then
// deliver the abort's marker again (WriteTxnMarkers carries it as a coordinator's resend
// would), commit, and read committed.
#[test]
fn a_late_marker_of_an_earlier_abort_cannot_end_the_next_transaction() {
    let (mut node, pid, epoch, (pid2, epoch2)) = reinit_over_open_transaction("old");
    assert_eq!(pid2, pid);
    let abort_epoch = epoch + 1;
    assert!(epoch2 > abort_epoch, "the abort's epoch was handed out");
    assert_eq!(
        add_partition(&mut node, "tx", pid, epoch2, "t"),
        ErrorCode::NONE
    );
    let response = node.call(produce("t", 0, txn_batch(pid, epoch2, 0, &["new"]), -1));
    assert_eq!(produce_result(&response).error, ErrorCode::NONE);
    let late = ApiRequest::WriteTxnMarkers(WriteTxnMarkersRequest {
        markers: vec![WritableTxnMarker {
            producer_id: pid,
            producer_epoch: abort_epoch,
            committed: false,
            topics: vec![TxnTopic {
                name: "t".into(),
                partitions: vec![0],
            }],
            coordinator_epoch: 0,
        }],
    });
    let ApiResponse::WriteTxnMarkers(answer) = node.call(late) else {
        panic!("not WriteTxnMarkers");
    };
    assert_eq!(
        answer.markers[0].topics[0].partitions[0].error,
        ErrorCode::INVALID_PRODUCER_EPOCH
    );
    assert_eq!(end(&mut node, "tx", pid, epoch2, true), ErrorCode::NONE);
    let records = read_partition(&mut node, "t", 0);
    let committed = read_committed_fetch(&mut node, "t");
    assert_eq!(committed.last_stable_offset, committed.high_watermark);
    // "old" was aborted, "new" committed: one aborted transaction, starting at "old".
    assert_eq!(committed.aborted_transactions.len(), 1, "{committed:?}");
    assert!(values(&records).contains(&"new".to_string()));
}

#[test]
fn timeout_aborts_and_crash_mid_transaction_recovers_open() {
    let mut node = node_with(|_| {});
    must_create(&mut node, "t", 1, &[]);
    let (pid, epoch) = init(&mut node, "tx", 5_000);
    assert_eq!(
        add_partition(&mut node, "tx", pid, epoch, "t"),
        ErrorCode::NONE
    );
    let response = node.call(produce("t", 0, txn_batch(pid, epoch, 0, &["x"]), -1));
    assert_eq!(produce_result(&response).error, ErrorCode::NONE);
    // A crash keeps the transaction open (its state and data were durable).
    node.crash();
    assert_eq!(read_committed_fetch(&mut node, "t").last_stable_offset, 0);
    node.advance_ms(6_000);
    let fetched = read_committed_fetch(&mut node, "t");
    assert_eq!(fetched.last_stable_offset, fetched.high_watermark);
    assert_eq!(fetched.aborted_transactions.len(), 1);
    // The epoch was bumped: the producer's commit is fenced.
    assert_eq!(
        end(&mut node, "tx", pid, epoch, true),
        ErrorCode::PRODUCER_FENCED
    );
}

#[test]
fn transactional_offsets_are_unstable_until_commit() {
    let mut node = node_with(|_| {});
    must_create(&mut node, "t", 1, &[]);
    let (pid, epoch) = init(&mut node, "tx", 60_000);
    let response = node.call(ApiRequest::AddOffsetsToTxn(AddOffsetsToTxnRequest {
        transactional_id: "tx".into(),
        producer_id: pid,
        producer_epoch: epoch,
        group_id: "g".into(),
    }));
    assert!(matches!(
        response,
        ApiResponse::AddOffsetsToTxn(AddOffsetsToTxnResponse {
            error: ErrorCode::NONE,
            ..
        })
    ));
    assert_eq!(txn_offset_commit(&mut node, pid, epoch, 7), ErrorCode::NONE);
    let offset_fetch = |require_stable| {
        ApiRequest::OffsetFetch(OffsetFetchRequest {
            groups: vec![OffsetFetchGroup {
                group_id: "g".into(),
                topics: Some(vec![("t".into(), vec![0])]),
            }],
            require_stable,
        })
    };
    let ApiResponse::OffsetFetch(before) = node.call(offset_fetch(true)) else {
        panic!()
    };
    let p = &before.groups[0].topics[0].partitions[0];
    assert_eq!(p.error, ErrorCode::UNSTABLE_OFFSET_COMMIT);
    assert_eq!(end(&mut node, "tx", pid, epoch, true), ErrorCode::NONE);
    node.restart();
    let ApiResponse::OffsetFetch(after) = node.call(offset_fetch(true)) else {
        panic!()
    };
    let p = &after.groups[0].topics[0].partitions[0];
    assert_eq!((p.error, p.committed_offset), (ErrorCode::NONE, 7));
}

/// TxnOffsetCommit of `offset` for `g`'s `t`-0 by `tx`'s producer: its one error.
fn txn_offset_commit(node: &mut SingleNode, pid: i64, epoch: i16, offset: i64) -> ErrorCode {
    let response = node.call(common::txn_offset_commit("tx", "g", (pid, epoch), offset));
    let ApiResponse::TxnOffsetCommit(r) = response else {
        panic!("{response:?}")
    };
    r.topics[0].partitions[0].error
}

// Goal: a TxnOffsetCommit that no transaction could end is refused where the node can
// tell: before any transactional id exists, for an id whose transaction did not add the
// group (AddOffsetsToTxn), and from a fenced (older) epoch; nothing is then pending.
#[test]
fn transactional_offsets_no_transaction_can_end_are_refused() {
    let mut node = node_with(|_| {});
    must_create(&mut node, "t", 1, &[]);
    assert_eq!(
        txn_offset_commit(&mut node, 1, 0, 3),
        ErrorCode::INVALID_PRODUCER_ID_MAPPING
    );
    let (pid, epoch) = init(&mut node, "tx", 60_000);
    assert_eq!(
        txn_offset_commit(&mut node, pid, epoch, 3),
        ErrorCode::INVALID_TXN_STATE
    );
    let (pid, newer) = init(&mut node, "tx", 60_000);
    assert_eq!(
        txn_offset_commit(&mut node, pid, epoch, 3),
        ErrorCode::PRODUCER_FENCED
    );
    assert!(newer > epoch);
    let fetch = ApiRequest::OffsetFetch(OffsetFetchRequest {
        groups: vec![OffsetFetchGroup {
            group_id: "g".into(),
            topics: Some(vec![("t".into(), vec![0])]),
        }],
        require_stable: true,
    });
    let ApiResponse::OffsetFetch(fetched) = node.call(fetch) else {
        panic!()
    };
    let p = &fetched.groups[0].topics[0].partitions[0];
    assert_eq!((p.error, p.committed_offset), (ErrorCode::NONE, -1));
}

fn describe_txn(node: &mut SingleNode, tid: &str) -> TransactionDescription {
    let response = node.call(ApiRequest::DescribeTransactions(
        DescribeTransactionsRequest {
            transactional_ids: vec![tid.into()],
        },
    ));
    let ApiResponse::DescribeTransactions(mut r) = response else {
        panic!("{response:?}")
    };
    r.transactions.remove(0)
}

// Goal: transactional.id.expiration.ms forgets an idle transactional id (persistently),
// never one with an ongoing transaction, and its producer must re-initialize. Method: a
// 60 s expiration with a 10 s retention timer; one id completes a transaction and idles,
// another stays open (with a long timeout); advance the clock, describe both, restart,
// describe again, then produce with the forgotten id.
#[test]
fn idle_transactional_ids_expire_on_the_retention_timer() {
    let mut node = node_with(|c| {
        c.transactional_id_expiration_ms = 60_000;
        c.retention_check_interval_ms = 10_000;
    });
    must_create(&mut node, "t", 1, &[]);
    let (idle_pid, idle_epoch) = init(&mut node, "idle", 60_000);
    assert_eq!(
        add_partition(&mut node, "idle", idle_pid, idle_epoch, "t"),
        ErrorCode::NONE
    );
    assert_eq!(
        end(&mut node, "idle", idle_pid, idle_epoch, true),
        ErrorCode::NONE
    );
    let (open_pid, open_epoch) = init(&mut node, "open", 900_000);
    assert_eq!(
        add_partition(&mut node, "open", open_pid, open_epoch, "t"),
        ErrorCode::NONE
    );
    // Not idle long enough yet.
    node.advance_ms(30_000);
    assert_eq!(describe_txn(&mut node, "idle").state, "CompleteCommit");
    for _ in 0..5 {
        node.advance_ms(10_000);
    }
    let idle = describe_txn(&mut node, "idle");
    assert_eq!(idle.error, ErrorCode::TRANSACTIONAL_ID_NOT_FOUND);
    let open = describe_txn(&mut node, "open");
    assert_eq!(
        (open.error, open.state.as_str()),
        (ErrorCode::NONE, "Ongoing")
    );
    // The deletion is durable: a restart does not bring the id back.
    node.complete_syncs();
    node.restart();
    let idle = describe_txn(&mut node, "idle");
    assert_eq!(idle.error, ErrorCode::TRANSACTIONAL_ID_NOT_FOUND);
    assert_eq!(describe_txn(&mut node, "open").state, "Ongoing");
    // The forgotten producer id no longer maps to a transactional id.
    let response = node.call(produce(
        "t",
        0,
        txn_batch(idle_pid, idle_epoch, 0, &["x"]),
        -1,
    ));
    assert_eq!(
        produce_result(&response).error,
        ErrorCode::INVALID_PRODUCER_ID_MAPPING
    );
    // Re-initializing the id starts it afresh.
    let (pid, epoch) = init(&mut node, "idle", 60_000);
    assert_eq!(epoch, 0);
    assert_ne!(pid, idle_pid);
}

fn txn_state_partition_offsets(node: &SingleNode) -> (i64, i64, i64) {
    node.node
        .partition_offsets("__transaction_state", 0)
        .expect("__transaction_state-0 exists")
}

// Goal: transaction state lives in the internal topic `__transaction_state` (not in meta),
// survives a restart from it, and the topic shows in Metadata as internal. Method: one id
// mid-transaction, one completed; restart; describe both, check the metadata entries
// and the topic listing, then finish the open transaction.
#[test]
fn txn_state_lives_in_an_internal_topic_and_survives_recovery() {
    use weir_core::storage::Storage;
    let mut node = node_with(|c| c.transaction_state_log_num_partitions = 3);
    must_create(&mut node, "t", 1, &[]);
    let (done_pid, done_epoch) = init(&mut node, "done", 60_000);
    assert_eq!(
        add_partition(&mut node, "done", done_pid, done_epoch, "t"),
        ErrorCode::NONE
    );
    assert_eq!(
        end(&mut node, "done", done_pid, done_epoch, true),
        ErrorCode::NONE
    );
    let (open_pid, open_epoch) = init(&mut node, "open", 60_000);
    assert_eq!(
        add_partition(&mut node, "open", open_pid, open_epoch, "t"),
        ErrorCode::NONE
    );
    let response = node.call(produce(
        "t",
        0,
        txn_batch(open_pid, open_epoch, 0, &["x"]),
        -1,
    ));
    assert_eq!(produce_result(&response).error, ErrorCode::NONE);
    node.restart();
    let entries = node.storage.meta_entries().expect("meta readable");
    assert!(
        entries.iter().all(|(key, _)| !key.starts_with(b"txn/")),
        "no transaction state in meta"
    );
    let done = describe_txn(&mut node, "done");
    assert_eq!(
        (done.error, done.state.as_str(), done.producer_id),
        (ErrorCode::NONE, "CompleteCommit", done_pid)
    );
    let open = describe_txn(&mut node, "open");
    assert_eq!(
        (open.state.as_str(), open.producer_epoch),
        ("Ongoing", open_epoch)
    );
    assert_eq!(open.topics.len(), 1);
    // Offset 0 is the first transaction's commit marker; the open one starts at 1.
    assert_eq!(read_committed_fetch(&mut node, "t").last_stable_offset, 1);
    let ApiResponse::Metadata(metadata) = node.call(metadata(None, false)) else {
        panic!("metadata answer expected")
    };
    let state = (metadata.topics.iter())
        .find(|t| t.name.as_deref() == Some("__transaction_state"))
        .expect("__transaction_state listed");
    assert!(state.is_internal);
    assert_eq!(state.partitions.len(), 3);
    assert_eq!(
        end(&mut node, "open", open_pid, open_epoch, true),
        ErrorCode::NONE
    );
    let fetched = read_committed_fetch(&mut node, "t");
    assert_eq!(fetched.last_stable_offset, fetched.high_watermark);
}

/// Records `__transaction_state` partition 0 holds now, read through Fetch.
fn txn_state_records(node: &mut SingleNode) -> usize {
    let mut count = 0;
    let mut offset = 0;
    loop {
        let response = node.call(fetch("__transaction_state", 0, offset, 0, 1));
        let records = fetched_records(&response);
        let Some(last) = records.last() else {
            return count;
        };
        offset = last.offset + 1;
        count += records.len();
    }
}

// Goal: compaction bounds `__transaction_state` and recovery still restores the latest
// state. Method: one partition with small segments and a fast cleaner; one id runs
// hundreds of transactions (several records each) while time passes, a second id stays
// idle; check the partition's records stay few while its offsets are untouched; restart
// and check both ids, then run one more transaction.
#[test]
fn txn_state_log_is_compacted_and_recovers() {
    let mut node = node_with(|c| {
        c.transaction_state_log_num_partitions = 1;
        c.transaction_state_log_segment_bytes = 4_096;
        c.cleaner_backoff_ms = 100;
    });
    must_create(&mut node, "t", 1, &[]);
    let (idle_pid, idle_epoch) = init(&mut node, "idle", 60_000);
    let (pid, epoch) = init(&mut node, "busy", 60_000);
    for round in 0..600 {
        assert_eq!(
            add_partition(&mut node, "busy", pid, epoch, "t"),
            ErrorCode::NONE
        );
        assert_eq!(
            end(&mut node, "busy", pid, epoch, round % 2 == 0),
            ErrorCode::NONE
        );
        if round % 50 == 49 {
            node.advance_ms(200);
        }
    }
    node.advance_ms(200);
    let (start, _, end_offset) = txn_state_partition_offsets(&node);
    assert!(
        end_offset > 1_800,
        "every transaction wrote records: {end_offset}"
    );
    assert_eq!(start, 0, "offsets never change");
    let held = txn_state_records(&mut node);
    assert!(held < 200, "the log was compacted, held {held} records");
    node.restart();
    let busy = describe_txn(&mut node, "busy");
    assert_eq!(
        (busy.state.as_str(), busy.producer_id, busy.producer_epoch),
        ("CompleteAbort", pid, epoch)
    );
    let idle = describe_txn(&mut node, "idle");
    assert_eq!(
        (idle.state.as_str(), idle.producer_id, idle.producer_epoch),
        ("Empty", idle_pid, idle_epoch)
    );
    assert_eq!(
        add_partition(&mut node, "busy", pid, epoch, "t"),
        ErrorCode::NONE
    );
    assert_eq!(end(&mut node, "busy", pid, epoch, true), ErrorCode::NONE);
    // A crash (compaction's unsynced replacements lost with it) loses nothing either.
    node.crash();
    assert_eq!(describe_txn(&mut node, "busy").state, "CompleteCommit");
    assert_eq!(describe_txn(&mut node, "idle").state, "Empty");
}
