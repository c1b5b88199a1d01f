//! Producer ids in a cluster: each broker hands them out from its own range (node id in the
//! high bits), so two producers never share one without coordination between brokers.
//!
//! Goal: a restarted broker keeps handing out ids of its own range, even though the
//! partitions it replicates hold other brokers' producers. Before the fix its counter was
//! moved past the largest id in its logs, so after a restart it handed out the next id of
//! another broker's range; two producers then shared an id, and the second one's batches
//! were answered as duplicates of the first's: acknowledged, never written (the 5-node
//! Jepsen-style run caught it). Method: three in-process brokers, a topic replicated on all
//! three, an idempotent producer whose id comes from broker 2 writes through broker 2's
//! leadership; broker 1 restarts; the ids brokers 1 and 2 hand out next must differ and
//! stay in their own ranges.

use crate::common;

use common::cluster::Cluster;
use common::{idempotent_batch, init_producer_id, produce};
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

fn new_producer_id(cluster: &mut Cluster, at: i32) -> i64 {
    let ApiResponse::InitProducerId(response) = cluster.call(at, init_producer_id(None)) else {
        panic!("InitProducerId answer expected")
    };
    assert_eq!(response.error, ErrorCode::NONE, "{response:?}");
    response.producer_id
}

#[test]
fn a_restarted_broker_hands_out_producer_ids_of_its_own_range() {
    let mut cluster = Cluster::new(&[1, 2, 3], &[1, 2, 3], |_| {});
    let create = ApiRequest::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: "t".into(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: vec![(0, vec![2, 1, 3])],
            configs: Vec::new(),
        }],
        timeout_ms: 30_000,
        validate_only: false,
    });
    for _ in 0..100 {
        let ApiResponse::CreateTopics(created) = cluster.call(1, create.clone()) else {
            panic!("CreateTopics answer expected")
        };
        if created.topics[0].error == ErrorCode::NONE {
            break;
        }
        cluster.advance_ms(200);
    }
    let producer = new_producer_id(&mut cluster, 2);
    assert_eq!(producer >> 40, 2, "broker 2's range");
    let mut written = false;
    for _ in 0..100 {
        let response = cluster.call(
            2,
            produce("t", 0, idempotent_batch(producer, 0, 0, &["v"]), -1),
        );
        let ApiResponse::Produce(response) = response else {
            panic!("Produce answer expected")
        };
        if response.topics[0].partitions[0].error == ErrorCode::NONE {
            written = true;
            break;
        }
        cluster.advance_ms(100);
    }
    assert!(written, "broker 2 took the idempotent write");
    // Broker 1 holds a replica of the partition, and with it broker 2's producer.
    cluster.advance_ms(2_000);
    cluster.restart(1);
    cluster.advance_ms(3_000);
    let from_1 = new_producer_id(&mut cluster, 1);
    let from_2 = new_producer_id(&mut cluster, 2);
    assert_eq!(from_1 >> 40, 1, "broker 1 left its range: {from_1:#x}");
    assert_ne!(from_1, from_2, "two producers got one id");
}
