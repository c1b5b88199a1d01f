//! Scenario tests of idempotent producers: InitProducerId, sequence checks on append,
//! duplicates answered with the original offsets (also while the original waits for its
//! sync), fencing of old epochs, producer state surviving restarts and crashes, expiry.

use crate::common;

use bytes::Bytes;
use common::*;
use weir_core::testing::SingleNode;
use weir_core::NodeConfig;
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

fn must_init(node: &mut SingleNode) -> (i64, i16) {
    let ApiResponse::InitProducerId(response) = node.call(init_producer_id(None)) else {
        panic!("not InitProducerId")
    };
    assert_eq!(response.error, ErrorCode::NONE, "{response:?}");
    (response.producer_id, response.producer_epoch)
}

/// Produce with acks=all and return (error, base offset).
fn send(node: &mut SingleNode, topic: &str, batch: Bytes) -> (ErrorCode, i64) {
    let response = node.call(produce(topic, 0, batch, -1));
    let result = produce_result(&response);
    (result.error, result.base_offset)
}

fn all_values(node: &mut SingleNode, topic: &str) -> Vec<String> {
    values(&fetched_records(&node.call(fetch(topic, 0, 0, 0, 1))))
}

// Goal: producer ids are fresh, start at epoch 0, are never reused across restarts, and a
// transactional id is refused with INVALID_REQUEST. Method: init twice, restart, init again.
#[test]
fn init_producer_id_allocates_durable_fresh_ids() {
    let mut node = SingleNode::new(NodeConfig::default());
    let (first, epoch) = must_init(&mut node);
    assert_eq!(epoch, 0);
    let (second, _) = must_init(&mut node);
    assert!(second > first);
    // The answer waits for the counter's sync.
    let id = node.send(0, init_producer_id(None));
    assert!(
        node.take(id).is_none(),
        "answered before the counter is durable"
    );
    node.complete_syncs();
    let ApiResponse::InitProducerId(third) = node.take(id).expect("answered") else {
        panic!()
    };
    node.crash();
    let (after_crash, _) = must_init(&mut node);
    assert!(after_crash > third.producer_id, "{after_crash} reused");
    // A transactional id gets a fresh id too (the transaction coordinator's), never a reused one.
    let ApiResponse::InitProducerId(txn) = node.call(init_producer_id(Some("txn"))) else {
        panic!()
    };
    assert_eq!(txn.error, ErrorCode::NONE);
    assert!(txn.producer_id > after_crash, "{} reused", txn.producer_id);
    assert_eq!(txn.producer_epoch, 0);
}

// Goal: a retry of the last batch is answered with its original offset and not appended;
// a gap and an unknown producer not at 0 get OUT_OF_ORDER_SEQUENCE_NUMBER.
// Method: produce 0..2, 3..4, retry the first (still cached), skip a sequence.
#[test]
fn duplicates_answer_original_offsets_and_gaps_are_refused() {
    let mut node = SingleNode::new(NodeConfig::default());
    must_create(&mut node, "t", 1, &[]);
    must_produce(&mut node, "t", 0, idempotent_batch(-1, -1, -1, &["plain"]));
    let (pid, epoch) = must_init(&mut node);
    let first = idempotent_batch(pid, epoch, 0, &["a", "b", "c"]);
    assert_eq!(send(&mut node, "t", first.clone()), (ErrorCode::NONE, 1));
    let second = idempotent_batch(pid, epoch, 3, &["d", "e"]);
    assert_eq!(send(&mut node, "t", second.clone()), (ErrorCode::NONE, 4));
    assert_eq!(send(&mut node, "t", first), (ErrorCode::NONE, 1));
    assert_eq!(send(&mut node, "t", second), (ErrorCode::NONE, 4));
    assert_eq!(node.node.partition_offsets("t", 0), Some((0, 6, 6)));
    let gap = idempotent_batch(pid, epoch, 6, &["x"]);
    assert_eq!(
        send(&mut node, "t", gap).0,
        ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    let stranger = idempotent_batch(pid + 100, 0, 7, &["x"]);
    assert_eq!(
        send(&mut node, "t", stranger).0,
        ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(
        send(&mut node, "t", idempotent_batch(pid, epoch, 5, &["f"])),
        (ErrorCode::NONE, 6)
    );
    assert_eq!(
        all_values(&mut node, "t"),
        ["plain", "a", "b", "c", "d", "e", "f"]
    );
}

// Goal: a retry arriving while the original still waits for its sync is parked and answered,
// once the original is durable, with the original offset; nothing is appended twice.
// Method: send without completing syncs, send the same batch, check both answers.
#[test]
fn duplicate_of_unsynced_batch_waits_for_the_original() {
    let mut node = SingleNode::new(NodeConfig::default());
    must_create(&mut node, "t", 1, &[]);
    let (pid, epoch) = must_init(&mut node);
    let batch = idempotent_batch(pid, epoch, 0, &["a"]);
    let original = node.send(1, produce("t", 0, batch.clone(), -1));
    let retry = node.send(2, produce("t", 0, batch, -1));
    assert!(node.take(original).is_none());
    assert!(
        node.take(retry).is_none(),
        "answered before the original is durable"
    );
    assert_eq!(node.node.partition_offsets("t", 0), Some((0, 0, 1)));
    node.complete_syncs();
    for id in [original, retry] {
        let response = node.take(id).expect("answered after the sync");
        let result = produce_result(&response);
        assert_eq!((result.error, result.base_offset), (ErrorCode::NONE, 0));
    }
    assert_eq!(all_values(&mut node, "t"), ["a"]);
}

// Goal: a new producer id (KIP-360 re-init) starts over at 0 and a bumped epoch fences the
// old one with INVALID_PRODUCER_EPOCH. Method: write at epoch 0, then 1, then 0 again.
#[test]
fn older_epoch_is_fenced() {
    let mut node = SingleNode::new(NodeConfig::default());
    must_create(&mut node, "t", 1, &[]);
    let (pid, _) = must_init(&mut node);
    assert_eq!(
        send(&mut node, "t", idempotent_batch(pid, 0, 0, &["a"])).0,
        ErrorCode::NONE
    );
    assert_eq!(
        send(&mut node, "t", idempotent_batch(pid, 1, 3, &["b"])).0,
        ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
        "a new epoch starts at 0"
    );
    assert_eq!(
        send(&mut node, "t", idempotent_batch(pid, 1, 0, &["b"])).0,
        ErrorCode::NONE
    );
    assert_eq!(
        send(&mut node, "t", idempotent_batch(pid, 0, 1, &["c"])).0,
        ErrorCode::INVALID_PRODUCER_EPOCH
    );
    // A re-init hands out a different id, which starts at 0.
    let ApiResponse::InitProducerId(reinit) =
        node.call(ApiRequest::InitProducerId(InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            producer_id: pid,
            producer_epoch: 1,
        }))
    else {
        panic!()
    };
    assert_eq!(reinit.error, ErrorCode::NONE);
    assert_ne!(reinit.producer_id, pid);
    assert_eq!(all_values(&mut node, "t"), ["a", "b"]);
}

// Goal: dedup survives a clean restart (replay without a snapshot), a crash, and a restart
// after a snapshot (retention timer) plus later appends (snapshot + replay).
// Method: produce, restart/crash, retry the last batch, expect its original offset.
#[test]
fn dedup_survives_recovery() {
    let mut node = SingleNode::new(NodeConfig::default());
    must_create(&mut node, "t", 1, &[]);
    let (pid, epoch) = must_init(&mut node);
    let a = idempotent_batch(pid, epoch, 0, &["a"]);
    assert_eq!(send(&mut node, "t", a.clone()), (ErrorCode::NONE, 0));
    node.restart();
    assert_eq!(
        send(&mut node, "t", a),
        (ErrorCode::NONE, 0),
        "after restart"
    );
    let b = idempotent_batch(pid, epoch, 1, &["b"]);
    assert_eq!(send(&mut node, "t", b.clone()), (ErrorCode::NONE, 1));
    node.crash();
    assert_eq!(send(&mut node, "t", b), (ErrorCode::NONE, 1), "after crash");
    // The retention timer snapshots the table; later appends are replayed on top of it.
    node.advance_ms(node.config.retention_check_interval_ms);
    node.complete_syncs();
    let c = idempotent_batch(pid, epoch, 2, &["c"]);
    assert_eq!(send(&mut node, "t", c.clone()), (ErrorCode::NONE, 2));
    node.crash();
    assert_eq!(
        send(&mut node, "t", c),
        (ErrorCode::NONE, 2),
        "snapshot + replay"
    );
    assert_eq!(
        send(&mut node, "t", idempotent_batch(pid, epoch, 4, &["x"])).0,
        ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
        "the sequence is known after recovery"
    );
    assert_eq!(all_values(&mut node, "t"), ["a", "b", "c"]);
    // Producer ids stay fresh after recoveries too.
    let (next, _) = must_init(&mut node);
    assert!(next > pid);
}

// Goal: segment rolls snapshot the table, so producer state outlives retention deleting
// every batch it came from. Method: tiny segments, roll, expire the data by time, restart.
#[test]
fn producer_state_outlives_retention() {
    let mut node = SingleNode::new(NodeConfig::default());
    must_create(
        &mut node,
        "t",
        1,
        &[("segment.bytes", "100"), ("retention.ms", "1000")],
    );
    let (pid, epoch) = must_init(&mut node);
    for seq in 0..4 {
        let batch = idempotent_batch(
            pid,
            epoch,
            seq,
            &["0123456789012345678901234567890123456789"],
        );
        assert_eq!(send(&mut node, "t", batch).0, ErrorCode::NONE);
    }
    node.advance_ms(node.config.retention_check_interval_ms);
    node.complete_syncs();
    let (log_start, _, log_end) = node.node.partition_offsets("t", 0).expect("exists");
    assert!(log_start > 0, "retention deleted something");
    assert_eq!(log_end, 4);
    node.restart();
    let next = idempotent_batch(pid, epoch, 4, &["y"]);
    assert_eq!(send(&mut node, "t", next), (ErrorCode::NONE, 4));
}

// Goal: producer.id.expiration.ms forgets idle producers (then they must start over at 0),
// and the expiry is persisted. Method: write, wait past expiration, restart, write at seq 1.
#[test]
fn idle_producers_expire() {
    let mut node = SingleNode::new(NodeConfig {
        producer_id_expiration_ms: 10_000,
        retention_check_interval_ms: 5_000,
        ..NodeConfig::default()
    });
    must_create(&mut node, "t", 1, &[]);
    let (pid, epoch) = must_init(&mut node);
    let (busy, _) = must_init(&mut node);
    assert_eq!(
        send(&mut node, "t", idempotent_batch(pid, epoch, 0, &["a"])).0,
        ErrorCode::NONE
    );
    assert_eq!(
        send(&mut node, "t", idempotent_batch(busy, 0, 0, &["b"])).0,
        ErrorCode::NONE
    );
    node.advance_ms(5_000);
    node.advance_ms(4_000);
    assert_eq!(
        send(&mut node, "t", idempotent_batch(busy, 0, 1, &["c"])).0,
        ErrorCode::NONE
    );
    node.advance_ms(2_000);
    node.complete_syncs();
    node.restart();
    assert_eq!(
        send(&mut node, "t", idempotent_batch(pid, epoch, 1, &["d"])).0,
        ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
        "expired: unknown again"
    );
    assert_eq!(
        send(&mut node, "t", idempotent_batch(busy, 0, 2, &["e"])).0,
        ErrorCode::NONE,
        "the busy producer is kept"
    );
}
