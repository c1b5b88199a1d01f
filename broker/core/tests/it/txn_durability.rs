//! Scenario tests of what the transaction coordinator promises about durability: a
//! transaction request parked for its sync is never answered NONE when the sync fails (the
//! node poisons itself and a crash may then lose the write), and a retried EndTxn whose
//! outcome is already durable is answered without waiting for unrelated writes.
//! Method: drive a `SingleNode` with domain requests, fail or crash storage at the point
//! the simulator found (turmoil seed 3, `txn-crash`), and read committed data back.

use crate::common;

use common::*;
use weir_core::testing::SingleNode;
use weir_wire::domain::txn::*;
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

const TID: &str = "txn-1";
const GROUP: &str = "g";

fn init(node: &mut SingleNode) -> (i64, i16) {
    let response = node.call(ApiRequest::InitProducerId(InitProducerIdRequest {
        transactional_id: Some(TID.into()),
        transaction_timeout_ms: 60_000,
        producer_id: -1,
        producer_epoch: -1,
    }));
    let ApiResponse::InitProducerId(r) = response else {
        panic!("{response:?}")
    };
    assert_eq!(r.error, ErrorCode::NONE);
    (r.producer_id, r.producer_epoch)
}

fn add_partitions_request(pid: i64, epoch: i16, topic: &str) -> ApiRequest {
    ApiRequest::AddPartitionsToTxn(AddPartitionsToTxnRequest {
        transactional_id: TID.into(),
        producer_id: pid,
        producer_epoch: epoch,
        topics: vec![TxnTopic {
            name: topic.into(),
            partitions: vec![0],
        }],
    })
}

fn end_request(pid: i64, epoch: i16, committed: bool) -> ApiRequest {
    ApiRequest::EndTxn(EndTxnRequest {
        transactional_id: TID.into(),
        producer_id: pid,
        producer_epoch: epoch,
        committed,
    })
}

fn end_error(response: &ApiResponse) -> ErrorCode {
    let ApiResponse::EndTxn(r) = response else {
        panic!("{response:?}")
    };
    r.error
}

/// Every error code in a transaction response (each must be an error after a failed sync).
fn txn_errors(response: &ApiResponse) -> Vec<ErrorCode> {
    let topics = |topics: &[TxnTopicResult]| -> Vec<ErrorCode> {
        (topics.iter())
            .flat_map(|t| t.partitions.iter().map(|p| p.error))
            .collect()
    };
    match response {
        ApiResponse::AddPartitionsToTxn(r) => topics(&r.results),
        ApiResponse::AddOffsetsToTxn(r) => vec![r.error],
        ApiResponse::TxnOffsetCommit(r) => topics(&r.topics),
        ApiResponse::EndTxn(r) => vec![r.error],
        ApiResponse::WriteTxnMarkers(r) => {
            (r.markers.iter()).flat_map(|m| topics(&m.topics)).collect()
        }
        other => panic!("not a transaction response: {other:?}"),
    }
}

/// `(high watermark, last stable offset, producers of aborted transactions)` of a
/// read_committed fetch of `topic`/0 from offset 0.
fn read_committed(node: &mut SingleNode, topic: &str) -> (i64, i64, Vec<i64>) {
    let mut request = fetch(topic, 0, 0, 0, 0);
    if let ApiRequest::Fetch(r) = &mut request {
        r.isolation_level = 1;
    }
    let response = node.call(request);
    let partition = fetch_partition(&response);
    assert_eq!(partition.error, ErrorCode::NONE);
    let aborted = (partition.aborted_transactions.iter())
        .map(|a| a.producer_id)
        .collect();
    (
        partition.high_watermark,
        partition.last_stable_offset,
        aborted,
    )
}

// Goal: the simulator's failure, without the simulator. A produce inside a transaction is
// acknowledged (durable), then EndTxn(commit) is parked for its sync and the sync fails.
// Before the fix the poisoned node answered the parked EndTxn NONE (its response type was
// not rewritten to an error), the crash lost the Prepare/markers/Complete, and the
// client's "committed" transaction stayed open and was later aborted: acknowledged data
// lost. Method: fail the EndTxn's sync, crash losing every unsynced op, recover, and check
// that the answer was an error, the transaction is still open, and a retried commit makes
// the data visible to read_committed.
#[test]
fn end_txn_parked_when_its_sync_fails_is_answered_with_an_error() {
    let mut node = node_with(|_| {});
    must_create(&mut node, "t", 1, &[]);
    let (pid, epoch) = init(&mut node);
    let response = node.call(add_partitions_request(pid, epoch, "t"));
    assert_eq!(txn_errors(&response), vec![ErrorCode::NONE]);
    let response = node.call(produce("t", 0, txn_batch(pid, epoch, 0, &["a", "b"]), -1));
    assert_eq!(produce_result(&response).error, ErrorCode::NONE);

    let commit = node.send(1, end_request(pid, epoch, true));
    assert!(node.take(commit).is_none(), "EndTxn waits for its sync");
    node.fail_storage("injected fsync failure");
    let answer = node.take(commit).expect("answered on poison");
    assert_eq!(end_error(&answer), ErrorCode::KAFKA_STORAGE_ERROR);

    // The supervisor restarts the broker; the failed sync's writes are gone.
    assert!(node.crash() > 0, "the commit's writes were not durable");
    // Two data records, no marker: the transaction is still open (LSO at its start).
    assert_eq!(read_committed(&mut node, "t"), (2, 0, vec![]));
    // The client retries (KAFKA_STORAGE_ERROR is retriable) and the commit goes through.
    let response = node.call(end_request(pid, epoch, true));
    assert_eq!(end_error(&response), ErrorCode::NONE);
    node.crash();
    // Data and the commit marker, durable; nothing aborted.
    assert_eq!(read_committed(&mut node, "t"), (3, 3, vec![]));
}

// Goal: every transaction request that waits for a sync is answered with an error, never
// NONE, when that sync fails. Method: park one of each (AddPartitionsToTxn,
// AddOffsetsToTxn, TxnOffsetCommit, WriteTxnMarkers, EndTxn) on its own node and fail the
// sync.
#[test]
fn every_parked_transaction_request_fails_with_its_sync() {
    type Setup = fn(&mut SingleNode, i64, i16) -> ApiRequest;
    let cases: [(&str, Setup); 5] = [
        ("AddPartitionsToTxn", |_, pid, epoch| {
            add_partitions_request(pid, epoch, "t")
        }),
        ("AddOffsetsToTxn", |_, pid, epoch| {
            ApiRequest::AddOffsetsToTxn(AddOffsetsToTxnRequest {
                transactional_id: TID.into(),
                producer_id: pid,
                producer_epoch: epoch,
                group_id: GROUP.into(),
            })
        }),
        ("TxnOffsetCommit", |node, pid, epoch| {
            let response = node.call(ApiRequest::AddOffsetsToTxn(AddOffsetsToTxnRequest {
                transactional_id: TID.into(),
                producer_id: pid,
                producer_epoch: epoch,
                group_id: GROUP.into(),
            }));
            assert_eq!(txn_errors(&response), vec![ErrorCode::NONE]);
            txn_offset_commit(TID, GROUP, (pid, epoch), 1)
        }),
        ("WriteTxnMarkers", |_, pid, epoch| {
            ApiRequest::WriteTxnMarkers(WriteTxnMarkersRequest {
                markers: vec![WritableTxnMarker {
                    producer_id: pid,
                    producer_epoch: epoch,
                    committed: false,
                    topics: vec![TxnTopic {
                        name: "t".into(),
                        partitions: vec![0],
                    }],
                    coordinator_epoch: 0,
                }],
            })
        }),
        ("EndTxn", |node, pid, epoch| {
            let response = node.call(add_partitions_request(pid, epoch, "t"));
            assert_eq!(txn_errors(&response), vec![ErrorCode::NONE]);
            end_request(pid, epoch, false)
        }),
    ];
    for (name, setup) in cases {
        let mut node = node_with(|_| {});
        must_create(&mut node, "t", 1, &[]);
        let (pid, epoch) = init(&mut node);
        let request = setup(&mut node, pid, epoch);
        let id = node.send(1, request);
        assert!(node.take(id).is_none(), "{name} waits for its sync");
        assert!(!node.pending_syncs().is_empty(), "{name} wrote something");
        node.fail_storage("injected fsync failure");
        let response = node.take(id).expect("answered on poison");
        let errors = txn_errors(&response);
        assert!(!errors.is_empty(), "{name}: {response:?}");
        assert!(
            errors.iter().all(|e| *e == ErrorCode::KAFKA_STORAGE_ERROR),
            "{name} answered {errors:?} after its sync failed"
        );
    }
}

// Goal: a retried EndTxn whose transaction already completed durably is answered even
// when nothing else is written (it has no write of its own to wait for). Method: commit,
// let the sync complete, retry the same EndTxn on an idle node, also after a restart
// (the state then comes from storage).
#[test]
fn end_txn_retry_after_completion_is_answered_on_an_idle_node() {
    let mut node = node_with(|_| {});
    must_create(&mut node, "t", 1, &[]);
    let (pid, epoch) = init(&mut node);
    let response = node.call(add_partitions_request(pid, epoch, "t"));
    assert_eq!(txn_errors(&response), vec![ErrorCode::NONE]);
    let response = node.call(produce("t", 0, txn_batch(pid, epoch, 0, &["a"]), -1));
    assert_eq!(produce_result(&response).error, ErrorCode::NONE);
    let response = node.call(end_request(pid, epoch, true));
    assert_eq!(end_error(&response), ErrorCode::NONE);

    // A retry (the first answer was lost): nothing pending, nothing to write.
    let retry = node.send(2, end_request(pid, epoch, true));
    let response = node
        .take(retry)
        .expect("answered without waiting for other writes");
    assert_eq!(end_error(&response), ErrorCode::NONE);

    node.restart();
    let retry = node.send(3, end_request(pid, epoch, true));
    let response = node.take(retry).expect("answered after a restart too");
    assert_eq!(end_error(&response), ErrorCode::NONE);
    assert_eq!(read_committed(&mut node, "t"), (2, 2, vec![]));
}
