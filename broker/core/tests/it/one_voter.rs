//! A one-voter cluster: one node that is its own metadata quorum, controller and broker,
//! with replication-factor-1 topics. This is the shape the single-node broker is moving to
//! (issue 13: one broker, not two), so it must start and restart as fast as the
//! single-node path does, and serve every acknowledged record again after a restart.
//!
//! Method: the in-process cluster harness (virtual time in 10 ms steps, syncs completed at
//! once). Time is virtual, so the bounds below are deterministic: they count heartbeat
//! intervals and controller checks, not the machine's speed.

use crate::common;

use common::cluster::{Cluster, STEP_MS};
use common::{create_topic, fetch, fetch_partition, fetched_records, produce, produce_result};

use weir_core::testing::batch_of_values;
use weir_wire::domain::ApiResponse;
use weir_wire::error::ErrorCode;

/// Virtual milliseconds until node 1 serves (registered, unfenced, caught up).
fn time_to_serve(cluster: &mut Cluster) -> u64 {
    let mut waited = 0;
    while !cluster.members[&1].node.is_serving() {
        assert!(waited < 10_000, "node 1 did not serve within 10 s");
        cluster.advance_ms(STEP_MS);
        waited += STEP_MS;
    }
    waited
}

// Goal: a fresh one-voter cluster serves within a few steps, not after heartbeat intervals.
// Before the broker reported its catch-up and registration at once, it waited two 500 ms
// intervals (register, then unfence) and served after about a second.
#[test]
fn a_fresh_one_voter_cluster_serves_at_once() {
    let mut cluster = Cluster::new(&[1], &[1], |_| {});
    let waited = time_to_serve(&mut cluster);
    assert!(waited <= 5 * STEP_MS, "served after {waited} ms");
}

// Goal: after a restart, the sole replica leads its partitions again as soon as it is
// unfenced, and serves every acknowledged record. Method: produce acks=all, restart, then
// fetch from offset 0 every step until the records come back; before the controller
// elected offline partitions in the unfencing decision, leadership waited for the next
// periodic check (and, before the prompt heartbeats, for two heartbeat intervals).
#[test]
fn a_restarted_one_voter_cluster_serves_its_acknowledged_records_at_once() {
    let mut cluster = Cluster::new(&[1], &[1], |_| {});
    time_to_serve(&mut cluster);
    let ApiResponse::CreateTopics(created) = cluster.call(1, create_topic("t", 1, &[])) else {
        panic!("CreateTopics answer expected")
    };
    assert_eq!(created.topics[0].error, ErrorCode::NONE, "{created:?}");
    let mut offsets = Vec::new();
    for value in [&b"acked-1"[..], b"acked-2"] {
        let mut answer = None;
        for _ in 0..100 {
            let response = cluster.call(1, produce("t", 0, batch_of_values(&[value], 1), -1));
            let result = produce_result(&response).clone();
            if result.error == ErrorCode::NONE {
                answer = Some(result.base_offset);
                break;
            }
            assert_eq!(
                result.error,
                ErrorCode::NOT_LEADER_OR_FOLLOWER,
                "{result:?}"
            );
            cluster.advance_ms(STEP_MS);
        }
        offsets.push(answer.expect("the new topic takes writes within a second"));
    }
    assert_eq!(offsets, [0, 1]);

    cluster.restart(1);
    let mut waited = 0;
    loop {
        let response = cluster.call(1, fetch("t", 0, 0, 0, 1));
        let partition = fetch_partition(&response);
        if partition.error == ErrorCode::NONE && partition.high_watermark == 2 {
            let records = fetched_records(&response);
            let values: Vec<_> = records.iter().map(|r| r.value.clone()).collect();
            assert_eq!(
                values,
                [Some(b"acked-1"[..].into()), Some(b"acked-2"[..].into())]
            );
            break;
        }
        assert!(
            waited < 10_000,
            "not served again within 10 s: {partition:?}"
        );
        cluster.advance_ms(STEP_MS);
        waited += STEP_MS;
    }
    assert!(waited <= 3 * STEP_MS, "served again after {waited} ms");
}
