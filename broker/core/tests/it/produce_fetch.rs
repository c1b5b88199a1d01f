//! Scenario tests of the data plane: Produce, Fetch (with long polling) and ListOffsets,
//! driven through the in-memory harness.

use crate::common;

use common::*;
use weir_core::testing::{batch, batch_of_values, SingleNode, WALL_MS_START};
use weir_core::{NodeConfig, Output, SyncMode};
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

fn node_with_topic(name: &str, configs: &[(&str, &str)]) -> SingleNode {
    let mut node = SingleNode::new(NodeConfig::default());
    must_create(&mut node, name, 1, configs);
    node
}

// Goal: what is produced is fetched back byte-identical in order with assigned offsets.
// Method: two acks=all batches, then fetch from 0 and from inside the second batch.
#[test]
fn produce_then_fetch_round_trip() {
    let mut node = node_with_topic("orders", &[]);
    assert_eq!(
        must_produce(&mut node, "orders", 0, batch_of_values(&[b"a", b"b"], 100)),
        0
    );
    assert_eq!(
        must_produce(&mut node, "orders", 0, batch_of_values(&[b"c"], 101)),
        2
    );
    let response = node.call(fetch("orders", 0, 0, 0, 1));
    let partition = fetch_partition(&response);
    assert_eq!(partition.error, ErrorCode::NONE);
    assert_eq!(
        (partition.high_watermark, partition.log_start_offset),
        (3, 0)
    );
    let records = fetched_records(&response);
    assert_eq!(values(&records), ["a", "b", "c"]);
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [0, 1, 2]);
    // A fetch inside the second batch returns that batch whole.
    let response = node.call(fetch("orders", 0, 2, 0, 1));
    assert_eq!(values(&fetched_records(&response)), ["c"]);
}

// Goal: acks=1/all wait for the sync, acks=0 completes at once unanswered, and the high watermark
// (what consumers see) moves only when the sync completes. Method: produce with each
// acks level, inspect responses before and after completing the sync.
#[test]
fn acks_levels_and_durability() {
    let mut node = node_with_topic("t", &[]);
    for (acks, offset) in [(1, 0), (-1, 1)] {
        let id = node.send(1, produce("t", 0, batch(&[1]), acks));
        assert!(
            node.take(id).is_none(),
            "acks={acks} answered before its sync"
        );
        let hidden = fetch_partition(&node.call(fetch("t", 0, offset, 0, 1))).clone();
        assert_eq!(
            hidden.high_watermark, offset,
            "unsynced data is not visible"
        );
        assert_eq!(hidden.records, FetchRecords::Empty);
        node.complete_syncs();
        let response = node.take(id).expect("answered after the sync");
        assert_eq!(produce_result(&response).error, ErrorCode::NONE);
        assert_eq!(produce_result(&response).base_offset, offset);
        assert_eq!(
            node.node.partition_offsets("t", 0),
            Some((0, offset + 1, offset + 1))
        );
    }
    // acks=0: complete at once with no answer on the wire (Kafka never answers it).
    let id = node.send(1, produce("t", 0, batch(&[1]), 0));
    assert_eq!(
        node.take_no_response(id),
        Some(false),
        "acks=0 is not answered"
    );
    assert!(node.take(id).is_none());
    assert_eq!(node.node.partition_offsets("t", 0), Some((0, 2, 3)));
    node.complete_syncs();
    assert_eq!(node.node.partition_offsets("t", 0), Some((0, 3, 3)));
    // A refused acks=0 batch closes the connection instead: the producer's only signal.
    let id = node.send(1, produce("t", 7, batch(&[1]), 0));
    assert_eq!(
        node.take_no_response(id),
        Some(true),
        "refused acks=0 closes"
    );
    assert_eq!(node.node.partition_offsets("t", 0), Some((0, 3, 3)));
}

// Goal: malformed or refused produces get Kafka's error codes and write nothing.
// Method: one bad request per rule; the log end offset must stay 0.
#[test]
fn produce_validation_errors() {
    let mut node = node_with_topic("t", &[("max.message.bytes", "200")]);
    let error = |node: &mut SingleNode, request| produce_result(&node.call(request)).error;
    // An acks other than 0, 1, -1 is refused at decode (weir-wire's
    // `produce_acks_are_parsed_at_decode`); the core never sees one.
    assert_eq!(
        error(&mut node, produce("nope", 0, batch(&[1]), 1)),
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        error(&mut node, produce("t", 1, batch(&[1]), 1)),
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
    );
    let mut corrupt = batch(&[1]).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        error(&mut node, produce("t", 0, corrupt.into(), 1)),
        ErrorCode::CORRUPT_MESSAGE
    );
    let big = batch_of_values(&[&[7u8; 300]], 1);
    assert_eq!(
        error(&mut node, produce("t", 0, big, 1)),
        ErrorCode::MESSAGE_TOO_LARGE
    );
    let two = [batch(&[1]).to_vec(), batch(&[2]).to_vec()].concat();
    assert_eq!(
        error(&mut node, produce("t", 0, two.into(), 1)),
        ErrorCode::INVALID_RECORD
    );
    assert_eq!(
        error(&mut node, produce("t", 0, bytes::Bytes::new(), 1)),
        ErrorCode::INVALID_RECORD
    );
    assert_eq!(node.node.partition_offsets("t", 0), Some((0, 0, 0)));
}

// Goal: LogAppendTime topics stamp batches with the broker's clock.
// Method: produce an old timestamp to a LogAppendTime topic; check response and records.
#[test]
fn log_append_time_rewrites_timestamps() {
    let mut node = node_with_topic("t", &[("message.timestamp.type", "LogAppendTime")]);
    let response = node.call(produce("t", 0, batch(&[5, 6]), -1));
    assert_eq!(produce_result(&response).log_append_time_ms, WALL_MS_START);
    let records = fetched_records(&node.call(fetch("t", 0, 0, 0, 1)));
    assert!(
        records.iter().all(|r| r.timestamp == WALL_MS_START),
        "{records:?}"
    );
}

// Goal: long polling: a fetch with nothing to read waits until data is durable (woken by
// the sync) or until max_wait_ms passes. Method: park two fetches; produce and sync to
// wake one; let the clock run out for the other.
#[test]
fn long_poll_wakes_on_data_and_expires() {
    let mut node = node_with_topic("t", &[]);
    let woken = node.send(1, fetch("t", 0, 0, 5_000, 1));
    assert!(node.take(woken).is_none(), "parked");
    assert!(node.node.poll_timeout().is_some());
    let produced = node.send(2, produce("t", 0, batch(&[1]), 1));
    assert!(
        node.take(woken).is_none(),
        "unsynced data does not wake a fetch"
    );
    node.complete_syncs();
    assert!(node.take(produced).is_some());
    let response = node.take(woken).expect("woken by the high watermark move");
    assert_eq!(values(&fetched_records(&response)), ["v0"]);

    let expiring = node.send(1, fetch("t", 0, 1, 5_000, 1));
    node.advance_ms(4_999);
    assert!(node.take(expiring).is_none(), "still waiting");
    node.advance_ms(1);
    let response = node.take(expiring).expect("answered at max_wait_ms");
    assert_eq!(fetch_partition(&response).records, FetchRecords::Empty);
    assert_eq!(fetch_partition(&response).high_watermark, 1);
}

// Goal: min_bytes holds a fetch until enough bytes are durable.
// Method: min_bytes larger than one batch; two produces needed to satisfy it.
#[test]
fn min_bytes_accumulates() {
    let mut node = node_with_topic("t", &[]);
    let one = batch(&[1]);
    let waiting = node.send(1, fetch("t", 0, 0, 60_000, (one.len() + 1) as i32));
    must_produce(&mut node, "t", 0, one.clone());
    assert!(node.take(waiting).is_none(), "one batch is not enough");
    must_produce(&mut node, "t", 0, one);
    let response = node.take(waiting).expect("two batches are enough");
    assert_eq!(fetched_records(&response).len(), 2);
}

// Goal: Kafka's offset range rules for fetch. Method: fetch below the log start, at the
// log end (valid, empty) and beyond it.
#[test]
fn offset_out_of_range() {
    let mut node = node_with_topic("t", &[]);
    must_produce(&mut node, "t", 0, batch(&[1, 2]));
    let error = |node: &mut SingleNode, offset| {
        fetch_partition(&node.call(fetch("t", 0, offset, 0, 1))).error
    };
    assert_eq!(error(&mut node, -1), ErrorCode::OFFSET_OUT_OF_RANGE);
    assert_eq!(error(&mut node, 2), ErrorCode::NONE);
    assert_eq!(error(&mut node, 3), ErrorCode::OFFSET_OUT_OF_RANGE);
}

// Goal: fetch by topic id (v13+), unknown ids and fetch sessions.
// Method: look the id up in Metadata, fetch by it; then an unknown id and a session id.
#[test]
fn fetch_by_topic_id_and_sessions() {
    let mut node = node_with_topic("t", &[]);
    must_produce(&mut node, "t", 0, batch(&[1]));
    let ApiResponse::Metadata(metadata) = node.call(metadata(Some(&["t"]), false)) else {
        panic!()
    };
    let topic_id = metadata.topics[0].topic_id;
    assert!(!topic_id.is_nil());
    let response = node.call(fetch_ref(TopicRef::Id(topic_id), 0, 0, 0, 1));
    assert_eq!(fetched_records(&response).len(), 1);
    let response = node.call(fetch_ref(
        TopicRef::Id(uuid::Uuid::from_u128(7)),
        0,
        0,
        0,
        1,
    ));
    assert_eq!(
        fetch_partition(&response).error,
        ErrorCode::UNKNOWN_TOPIC_ID
    );
    let ApiRequest::Fetch(mut with_session) = fetch("t", 0, 0, 0, 1) else {
        panic!()
    };
    with_session.session_id = 42;
    let ApiResponse::Fetch(response) = node.call(ApiRequest::Fetch(with_session)) else {
        panic!()
    };
    assert_eq!(response.error, ErrorCode::FETCH_SESSION_ID_NOT_FOUND);
    assert_eq!(response.session_id, 0);
}

// Goal: the response byte limit: the first batch always whole, later ones within budget.
// Method: three batches; partition_max_bytes smaller than one batch, then than two.
#[test]
fn fetch_byte_limits() {
    let mut node = node_with_topic("t", &[]);
    let one = batch(&[1]);
    for _ in 0..3 {
        must_produce(&mut node, "t", 0, one.clone());
    }
    let limited = |node: &mut SingleNode, partition_max_bytes: usize| {
        let ApiRequest::Fetch(mut request) = fetch("t", 0, 0, 0, 1) else {
            panic!()
        };
        request.topics[0].partitions[0].partition_max_bytes = partition_max_bytes as i32;
        fetched_records(&node.call(ApiRequest::Fetch(request))).len()
    };
    assert_eq!(limited(&mut node, 1), 1, "first batch whole");
    assert_eq!(limited(&mut node, 2 * one.len()), 2);
    assert_eq!(limited(&mut node, 10 * one.len()), 3);
}

// Goal: ListOffsets sentinels and timestamp lookups. Method: three batches with known
// timestamps; query -1, -2, -3 and timestamps inside, between and beyond them.
#[test]
fn list_offsets_queries() {
    let mut node = node_with_topic("t", &[]);
    must_produce(&mut node, "t", 0, batch(&[10, 20]));
    must_produce(&mut node, "t", 0, batch(&[40]));
    must_produce(&mut node, "t", 0, batch(&[30]));
    let query = |node: &mut SingleNode, ts| {
        let result = list_result(&node.call(list_offsets("t", 0, ts))).clone();
        assert_eq!(result.error, ErrorCode::NONE);
        assert!(result.lookup.is_none(), "harness resolves lookups");
        (result.offset, result.timestamp)
    };
    assert_eq!(query(&mut node, LATEST_TIMESTAMP), (4, -1));
    assert_eq!(query(&mut node, EARLIEST_TIMESTAMP), (0, -1));
    assert_eq!(query(&mut node, MAX_TIMESTAMP), (2, 40));
    assert_eq!(query(&mut node, 15), (1, 20));
    assert_eq!(query(&mut node, 35), (2, 40));
    assert_eq!(query(&mut node, 41), (-1, -1));
    let unknown = list_result(&node.call(list_offsets("nope", 0, -1))).error;
    assert_eq!(unknown, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
}

// Goal: group commit: while a sync is in flight, further appends do not emit more syncs;
// one sync covers them all when the first completes. Method: count Sync outputs by hand.
#[test]
fn group_commit_keeps_one_sync_in_flight() {
    let mut node = node_with_topic("t", &[]);
    let first = node.send(1, produce("t", 0, batch(&[1]), -1));
    assert_eq!(node.pending_syncs().len(), 1);
    let mut later = Vec::new();
    for conn in 2..6 {
        later.push(node.send(conn, produce("t", 0, batch(&[1]), -1)));
    }
    assert_eq!(
        node.pending_syncs().len(),
        1,
        "one sync in flight at a time"
    );
    assert!(matches!(node.pending_syncs()[0].1, SyncMode::Fsync));
    node.complete_syncs();
    assert!(node.take(first).is_some());
    assert!(
        later.iter().all(|id| node.take(*id).is_none()),
        "later appends need the next sync"
    );
    assert_eq!(
        node.pending_syncs().len(),
        1,
        "next sync emitted for the rest"
    );
    node.complete_syncs();
    assert!(later.iter().all(|id| node.take(*id).is_some()));
    assert!(node.pending_syncs().is_empty());
}

// Goal: a closed connection gets no responses for its parked work, and its appends stay.
#[test]
fn disconnect_drops_pending_responses() {
    let mut node = node_with_topic("t", &[]);
    let parked_fetch = node.send(7, fetch("t", 0, 0, 10_000, 1));
    let parked_produce = node.send(7, produce("t", 0, batch(&[1]), -1));
    node.node.handle_disconnect(node.now, 7);
    node.complete_syncs();
    node.advance_ms(20_000);
    assert!(node.take(parked_fetch).is_none());
    assert!(node.take(parked_produce).is_none());
    assert_eq!(node.node.partition_offsets("t", 0), Some((0, 1, 1)));
}

// Goal: a storage failure poisons the node: parked requests and new ones are answered
// KAFKA_STORAGE_ERROR and the driver is told to stop. Method: fail while a produce waits.
#[test]
fn storage_failure_poisons() {
    let mut node = node_with_topic("t", &[]);
    let waiting = node.send(1, produce("t", 0, batch(&[1]), -1));
    node.fail_storage("disk on fire");
    assert_eq!(node.poisoned.as_deref(), Some("disk on fire"));
    let response = node.take(waiting).expect("answered on poison");
    assert_eq!(
        produce_result(&response).error,
        ErrorCode::KAFKA_STORAGE_ERROR
    );
    let response = node.call(produce("t", 0, batch(&[1]), 1));
    assert_eq!(
        produce_result(&response).error,
        ErrorCode::KAFKA_STORAGE_ERROR
    );
    assert!(node.node.is_poisoned());
    assert!(node.node.poll_output().is_none());
    assert!(!matches!(
        node.node.poll_output(),
        Some(Output::Sync { .. })
    ));
}
