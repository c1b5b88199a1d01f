//! DeleteRecords on one node: the log start moves up to the offset asked for (-1: the high
//! watermark), durably; reads below it are OFFSET_OUT_OF_RANGE; Kafka's refusals (above
//! the high watermark, a compacted topic, an unknown partition). The cluster side (a
//! follower takes its leader's log start, so a failover does not bring records back) is
//! `cluster_failover::deleted_records_stay_deleted_after_a_failover`.

use crate::common;

use common::*;
use weir_core::testing::{batch, SingleNode};
use weir_core::NodeConfig;
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

pub(crate) fn delete_records(topic: &str, partition: i32, offset: i64) -> ApiRequest {
    ApiRequest::DeleteRecords(DeleteRecordsRequest {
        topics: vec![DeleteRecordsTopic {
            name: topic.into(),
            partitions: vec![(partition, offset)],
        }],
        timeout_ms: 30_000,
    })
}

pub(crate) fn deleted(response: &ApiResponse) -> (ErrorCode, i64) {
    let ApiResponse::DeleteRecords(response) = response else {
        panic!("not DeleteRecords: {response:?}")
    };
    let partition = &response.topics[0].partitions[0];
    (partition.error, partition.low_watermark)
}

fn earliest(node: &mut SingleNode, topic: &str) -> i64 {
    let response = node.call(list_offsets(topic, 0, -2));
    let result = list_result(&response);
    assert_eq!(result.error, ErrorCode::NONE, "{result:?}");
    result.offset
}

#[test]
fn deleting_records_moves_the_log_start_durably() {
    let mut node = SingleNode::new(NodeConfig::default());
    must_create(&mut node, "d", 1, &[]);
    for round in 0..4 {
        assert_eq!(
            must_produce(&mut node, "d", 0, batch(&[1, 2, 3])),
            round * 3
        );
    }
    // Inside the second batch (3..6): the batch stays whole in storage, the start is 4.
    assert_eq!(
        deleted(&node.call(delete_records("d", 0, 4))),
        (ErrorCode::NONE, 4)
    );
    assert_eq!(earliest(&mut node, "d"), 4);
    let below = node.call(fetch("d", 0, 2, 0, 1));
    assert_eq!(
        fetch_partition(&below).error,
        ErrorCode::OFFSET_OUT_OF_RANGE
    );
    let from = node.call(fetch("d", 0, 4, 0, 1));
    assert_eq!(fetch_partition(&from).error, ErrorCode::NONE);
    assert_eq!(fetch_partition(&from).log_start_offset, 4);
    let offsets: Vec<i64> = (fetched_records(&from).iter()).map(|r| r.offset).collect();
    assert!(offsets.contains(&4) && offsets.contains(&11), "{offsets:?}");

    // Below the start: nothing to do, the start is the answer.
    assert_eq!(
        deleted(&node.call(delete_records("d", 0, 2))),
        (ErrorCode::NONE, 4)
    );
    // Above the high watermark, or negative other than -1: refused.
    for offset in [13, -5] {
        let answer = deleted(&node.call(delete_records("d", 0, offset)));
        assert_eq!(
            answer,
            (ErrorCode::OFFSET_OUT_OF_RANGE, -1),
            "offset {offset}"
        );
    }
    // -1: everything up to the high watermark.
    assert_eq!(
        deleted(&node.call(delete_records("d", 0, -1))),
        (ErrorCode::NONE, 12)
    );
    assert_eq!(earliest(&mut node, "d"), 12);

    // Answered after the sync: a crash losing unsynced writes keeps the deletion.
    node.crash();
    assert_eq!(earliest(&mut node, "d"), 12);
    let latest = node.call(list_offsets("d", 0, -1));
    assert_eq!(list_result(&latest).offset, 12);
    assert_eq!(must_produce(&mut node, "d", 0, batch(&[4])), 12);
    assert_eq!(read_partition(&mut node, "d", 12).len(), 1);
}

#[test]
fn refusals_are_kafkas() {
    let mut node = SingleNode::new(NodeConfig::default());
    must_create(&mut node, "c", 1, &[("cleanup.policy", "compact")]);
    must_create(
        &mut node,
        "both",
        1,
        &[("cleanup.policy", "compact,delete")],
    );
    must_produce(&mut node, "c", 0, keyed_record(Some("k"), Some("v")));
    must_produce(&mut node, "both", 0, keyed_record(Some("k"), Some("v")));
    let compacted = deleted(&node.call(delete_records("c", 0, 1)));
    assert_eq!(compacted, (ErrorCode::POLICY_VIOLATION, -1));
    assert_eq!(
        deleted(&node.call(delete_records("both", 0, 1))),
        (ErrorCode::NONE, 1)
    );
    let unknown = deleted(&node.call(delete_records("nope", 0, 0)));
    assert_eq!(unknown, (ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, -1));
    let partition = deleted(&node.call(delete_records("c", 3, 0)));
    assert_eq!(partition, (ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, -1));
}
