//! Scenario tests of the BUGGIFY fault points: each is a legal behaviour the node takes only
//! when a simulation turns BUGGIFY on, and none may break a promise (durable before acked,
//! nothing skipped or invented on fetch, invariants after every step — the harness asserts
//! `Node::invariants` after each pump).

use crate::common;

use common::*;
use weir_core::buggify::{BuggifyConfig, DELAY_ACK_MS_MAX};
use weir_core::testing::{batch_of_values, SingleNode, WALL_MS_START};
use weir_wire::domain::ApiRequest;
use weir_wire::error::ErrorCode;

/// Every point fires every time.
fn always() -> BuggifyConfig {
    BuggifyConfig {
        seed: 7,
        per_mille: 1000,
    }
}

/// Send, complete syncs, wait out any BUGGIFY delay; the response.
fn call_delayed(node: &mut SingleNode, request: ApiRequest) -> weir_wire::domain::ApiResponse {
    let id = node.send(0, request);
    for _ in 0..4 {
        node.complete_syncs();
        node.advance_ms(DELAY_ACK_MS_MAX);
        if let Some(response) = node.take(id) {
            return response;
        }
    }
    panic!("request {id:?} never answered")
}

// Goal: a delayed ack still comes only after the sync and comes exactly once, at most
// DELAY_ACK_MS_MAX later. Method: BUGGIFY always on; produce acks=all, complete the sync,
// check nothing was answered yet, advance past the maximum delay, check the answer.
#[test]
fn delayed_ack_arrives_after_the_sync_and_within_the_bound() {
    let mut node = node_with(|config| config.buggify = always());
    call_delayed(&mut node, create_topic("t", 1, &[]));
    let id = node.send(
        0,
        produce("t", 0, batch_of_values(&[b"a"], WALL_MS_START), -1),
    );
    assert!(node.take(id).is_none(), "answered before its sync");
    node.complete_syncs();
    assert!(
        node.take(id).is_none(),
        "BUGGIFY always on: the ack is held back"
    );
    node.advance_ms(DELAY_ACK_MS_MAX);
    let response = node.take(id).expect("answered within the bound");
    assert_eq!(produce_result(&response).error, ErrorCode::NONE);
    node.advance_ms(DELAY_ACK_MS_MAX);
    assert!(node.take(id).is_none(), "answered once");
}

// Goal: a held-back ack is dropped with its connection (no response for a closed one).
// Method: delay an ack, disconnect, advance time, check nothing is emitted.
#[test]
fn delayed_ack_is_dropped_on_disconnect() {
    let mut node = node_with(|config| config.buggify = always());
    call_delayed(&mut node, create_topic("t", 1, &[]));
    let id = node.send(
        7,
        produce("t", 0, batch_of_values(&[b"a"], WALL_MS_START), -1),
    );
    node.complete_syncs();
    node.node.handle_disconnect(node.now, 7);
    node.advance_ms(DELAY_ACK_MS_MAX);
    assert!(node.take(id).is_none());
}

// Goal: short fetches return a prefix of whole batches and never skip, and early rolls keep
// every record readable. Method: BUGGIFY always on; append three one-record batches (each
// rolls a segment), fetch from 0 until the end, check one batch per fetch and all values.
#[test]
fn short_fetches_and_early_rolls_lose_nothing() {
    let mut node = node_with(|config| config.buggify = always());
    call_delayed(&mut node, create_topic("t", 1, &[]));
    for value in ["a", "b", "c"] {
        let batch = batch_of_values(&[value.as_bytes()], WALL_MS_START);
        let response = call_delayed(&mut node, produce("t", 0, batch, -1));
        assert_eq!(produce_result(&response).error, ErrorCode::NONE);
    }
    let mut offset = 0;
    let mut seen = Vec::new();
    while offset < 3 {
        let response = call_delayed(&mut node, fetch("t", 0, offset, 0, 1));
        let records = fetched_records(&response);
        assert_eq!(records.len(), 1, "a short fetch serves one batch");
        offset = records[0].offset + 1;
        seen.extend(values(&records));
    }
    assert_eq!(seen, ["a", "b", "c"]);
    node.restart();
    let response = call_delayed(&mut node, fetch("t", 0, 2, 0, 1));
    assert_eq!(values(&fetched_records(&response)), ["c"]);
}

// Goal: BUGGIFY off (the default) changes nothing: a produce is answered right at its sync.
#[test]
fn off_by_default() {
    let mut node = SingleNode::new(weir_core::NodeConfig::default());
    assert_eq!(node.config.buggify, BuggifyConfig::OFF);
    must_create(&mut node, "t", 1, &[]);
    let id = node.send(
        0,
        produce("t", 0, batch_of_values(&[b"a"], WALL_MS_START), -1),
    );
    node.complete_syncs();
    assert!(node.take(id).is_some());
}
