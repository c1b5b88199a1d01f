//! Shards (docs/sharding.md): a node that is one shard of its broker takes partition roles
//! only for its own partitions, while everything answered for the broker as a whole (the
//! image, Metadata) still names the broker.

use crate::common;

use common::*;
use uuid::Uuid;
use weir_core::shard::{shard_of, Shard};
use weir_core::testing::{batch, SingleNode};
use weir_core::topic::PartitionId;
use weir_core::NodeConfig;
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

const PARTITIONS: i32 = 8;

fn topic_id(node: &mut SingleNode, name: &str) -> Uuid {
    let ApiResponse::Metadata(response) = node.call(metadata(Some(&[name]), false)) else {
        panic!("not Metadata");
    };
    response.topics[0].topic_id
}

// Goal: shard `i` of 2 leads exactly the partitions `shard_of` puts in it, the two shards
// together lead each partition once, the offsets topic's partitions (and so the groups
// they coordinate) split the same way, and a restart from storage keeps the split.
// Metadata keeps naming this broker the leader of every partition: the broker leads
// them; which of its shards holds one is the broker's own business.
// Method: one harness node per shard index (each its own quorum of one), a topic of 8
// partitions, a produce to every partition, then a restart.
#[test]
fn a_shard_leads_only_its_own_partitions() {
    let mut held_by = vec![Vec::new(); PARTITIONS as usize];
    for index in 0..2u16 {
        let shard = Shard::new(index, 2).expect("shard 0 or 1 of 2");
        let mut node = SingleNode::with_coordinators(NodeConfig {
            shard,
            ..NodeConfig::default()
        });
        must_create(&mut node, "t", PARTITIONS, &[]);
        let id = topic_id(&mut node, "t");
        for partition in 0..PARTITIONS {
            let key = PartitionId::new(id, partition as usize);
            let response = node.call(produce("t", partition, batch(&[1]), -1));
            let result = produce_result(&response);
            if shard_of(key, 2) == index {
                assert_eq!(result.error, ErrorCode::NONE, "partition {partition}");
                assert!(node.node.leads("t", partition));
                held_by[partition as usize].push(index);
            } else {
                assert_eq!(
                    result.error,
                    ErrorCode::NOT_LEADER_OR_FOLLOWER,
                    "partition {partition} of the other shard"
                );
                assert!(!node.node.leads("t", partition));
            }
        }
        let ApiResponse::Metadata(response) = node.call(metadata(Some(&["t"]), false)) else {
            panic!("not Metadata");
        };
        assert!(
            (response.topics[0].partitions.iter()).all(|p| p.leader_id == 1),
            "{response:?}"
        );
        let offsets = topic_id(&mut node, "__consumer_offsets");
        for partition in 0..50 {
            let key = PartitionId::new(offsets, partition as usize);
            assert_eq!(
                node.node.leads("__consumer_offsets", partition),
                shard.holds(key),
                "offsets partition {partition}"
            );
        }
        node.restart();
        for partition in 0..PARTITIONS {
            let key = PartitionId::new(id, partition as usize);
            assert_eq!(node.node.leads("t", partition), shard.holds(key));
        }
    }
    assert!(
        held_by.iter().all(|shards| shards.len() == 1),
        "each partition held by exactly one shard: {held_by:?}"
    );
}
