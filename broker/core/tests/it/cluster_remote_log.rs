//! Remote log metadata in a cluster (issue 14, item 3, tiered storage): a partition
//! leader's report of an uploaded segment reaches the controller as a peer message, is
//! committed through the metadata quorum, and is then in every broker's image; it
//! survives a lost message (the leader resends), a controller failover (the new
//! controller's image has it, and takes the next report), a restart (the killed
//! controller replays it from its own metadata log) and a leader failover (the new leader
//! continues the remote log where its image says it ends).
//!
//! Method: three in-process brokers (real `Node`s over `MemStorage`, virtual time, all
//! three controller voters). A three-partition topic spreads leadership, so one partition
//! is led by a broker that is not the controller and its report crosses the peer
//! protocol. No object store is involved: the report is what an upload path will send
//! once an object is durable in the store.

use crate::common;

use common::cluster::Cluster;
use weir_core::cluster::image::{RemoteSegment, UploadRefusal};
use weir_core::node::RemoteReportError;
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;

const TOPIC: &str = "tiered";

fn create_topic(cluster: &mut Cluster, at: i32) {
    let create = ApiRequest::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: TOPIC.into(),
            num_partitions: 3,
            replication_factor: 3,
            assignments: Vec::new(),
            configs: Vec::new(),
        }],
        timeout_ms: 30_000,
        validate_only: false,
    });
    let ApiResponse::CreateTopics(created) = cluster.call(at, create) else {
        panic!("CreateTopics answer expected")
    };
    assert_eq!(created.topics[0].error, ErrorCode::NONE, "{created:?}");
}

/// A partition of the topic led (as a role, not only in the image) by a live broker
/// other than `controller`, with that leader and its epoch, waiting up to 20 s.
fn partition_not_led_by(cluster: &mut Cluster, controller: i32) -> (i32, i32, i32) {
    for _ in 0..200 {
        for partition in 0..3 {
            let leadership = cluster.members[&controller]
                .node
                .partition_leadership(TOPIC, partition);
            let Some((leader, epoch, isr)) = leadership else {
                continue;
            };
            let live = leader >= 0 && leader != controller && !cluster.down.contains(&leader);
            if live && isr.len() == 3 && cluster.members[&leader].node.leads(TOPIC, partition) {
                return (partition, leader, epoch);
            }
        }
        cluster.advance_ms(100);
    }
    panic!("no partition led outside the controller within 20 s")
}

fn segment(base_offset: i64, end_offset: i64, leader_epoch: i32) -> RemoteSegment {
    RemoteSegment {
        base_offset,
        end_offset,
        leader_epoch,
        size_bytes: 1 << 20,
        max_timestamp: 1_767_225_600_000,
        object_key: format!("{TOPIC}/{base_offset:020}.log"),
        uploader: -1, // stamped by the reporting leader
    }
}

/// True when node `at`'s image lists exactly the segments based at `bases`.
fn lists(cluster: &Cluster, at: i32, partition: i32, bases: &[i64]) -> bool {
    let log = cluster.members[&at].node.remote_log(TOPIC, partition);
    let held: Vec<i64> = log.map_or(Vec::new(), |l| l.segments.keys().copied().collect());
    held == bases
}

/// Let time pass until every live node lists `bases` (up to 10 s).
fn wait_listed(cluster: &mut Cluster, partition: i32, bases: &[i64]) {
    for _ in 0..100 {
        let live = cluster.live();
        if live.iter().all(|at| lists(cluster, *at, partition, bases)) {
            return;
        }
        cluster.advance_ms(100);
    }
    for at in cluster.live() {
        let log = cluster.members[&at].node.remote_log(TOPIC, partition);
        eprintln!("node {at}: {log:?}");
    }
    panic!("remote segments {bases:?} not listed on every live node")
}

// Goal: an upload report is committed once and lands in every image; it survives a lost
// message, a controller failover and the old controller's restart. Method: see the module
// doc; the message is lost by cutting the leader off for less than a retry interval.
#[test]
fn remote_segments_are_replicated_and_survive_controller_failover() {
    let mut cluster = Cluster::new(&[1, 2, 3], &[1, 2, 3], |_| {});
    let first_controller = cluster.agreed_controller();
    create_topic(&mut cluster, first_controller);
    let (partition, leader, epoch) = partition_not_led_by(&mut cluster, first_controller);
    // Every broker applies the topic (a follower learns the commit with the next append).
    cluster.advance_ms(1_000);

    // Only the leader may report; a follower is told so and nothing is sent.
    let follower = (cluster.live().into_iter())
        .find(|id| *id != leader)
        .expect("a follower");
    let now = cluster.now;
    let refused = cluster
        .members
        .get_mut(&follower)
        .expect("follower")
        .node
        .report_remote_segment(now, TOPIC, partition, segment(0, 100, epoch));
    assert_eq!(refused, Err(RemoteReportError::NotLeader));

    // The first report is lost: the leader is cut off when it sends it. It stays pending
    // and is resent after the retry interval, once the leader is reachable again.
    cluster.cut.insert(leader);
    let now = cluster.now;
    let node = &mut cluster.members.get_mut(&leader).expect("leader").node;
    node.report_remote_segment(now, TOPIC, partition, segment(0, 100, epoch))
        .expect("the leader reports");
    // A second, different report waits for the first to settle.
    let busy = node.report_remote_segment(now, TOPIC, partition, segment(100, 150, epoch));
    assert_eq!(busy, Err(RemoteReportError::Pending));
    cluster.pump();
    cluster.advance_ms(300);
    cluster.cut.remove(&leader);
    assert!(
        cluster
            .live()
            .iter()
            .all(|at| lists(&cluster, *at, partition, &[])),
        "the lost report was not committed"
    );
    wait_listed(&mut cluster, partition, &[0]);

    // Repeating the committed report changes nothing; a segment that overlaps it is refused
    // by the leader's own image before it is sent.
    let now = cluster.now;
    let node = &mut cluster.members.get_mut(&leader).expect("leader").node;
    let again = node.report_remote_segment(now, TOPIC, partition, segment(0, 100, epoch));
    assert_eq!(again, Ok(()));
    let overlap = node.report_remote_segment(now, TOPIC, partition, segment(50, 120, epoch));
    assert_eq!(
        overlap,
        Err(RemoteReportError::Refused(UploadRefusal::NotContiguous))
    );

    // The controller dies: a new one is elected, and its image still has the segment.
    cluster.kill(first_controller);
    let second_controller = cluster.agreed_controller();
    assert_ne!(second_controller, first_controller);
    assert!(lists(&cluster, second_controller, partition, &[0]));
    // The partition's leader may have been the new controller's concern too: report the
    // next segment from whoever leads now, at the epoch it leads at.
    let (leader_now, epoch_now, _) = cluster.members[&second_controller]
        .node
        .partition_leadership(TOPIC, partition)
        .expect("partition");
    assert!(leader_now >= 0 && !cluster.down.contains(&leader_now));
    let now = cluster.now;
    let node = &mut cluster.members.get_mut(&leader_now).expect("leader").node;
    node.report_remote_segment(now, TOPIC, partition, segment(100, 150, epoch_now))
        .expect("the leader reports the continuation");
    wait_listed(&mut cluster, partition, &[0, 100]);
    for at in cluster.live() {
        let log = cluster.members[&at]
            .node
            .remote_log(TOPIC, partition)
            .expect("log");
        assert_eq!(log.end_offset(), 150);
        assert_eq!(log.segments[&0].uploader, leader, "node {at}");
        assert_eq!(log.segments[&100].uploader, leader_now, "node {at}");
    }

    // The old controller restarts from its own storage and replays both records.
    cluster.restart(first_controller);
    wait_listed(&mut cluster, partition, &[0, 100]);
    assert!(lists(&cluster, first_controller, partition, &[0, 100]));

    // The partition's leader dies: its successor, at a new leader epoch, knows from its
    // image where the remote log ends and continues it.
    cluster.kill(leader_now);
    let mut successor = None;
    for _ in 0..100 {
        let at = cluster.live()[0];
        let leadership = cluster.members[&at]
            .node
            .partition_leadership(TOPIC, partition);
        if let Some((id, epoch, _)) = leadership {
            if id >= 0 && id != leader_now && cluster.members[&id].node.leads(TOPIC, partition) {
                successor = Some((id, epoch));
                break;
            }
        }
        cluster.advance_ms(100);
    }
    let (successor, successor_epoch) = successor.expect("a new partition leader");
    assert!(successor_epoch > epoch_now);
    let now = cluster.now;
    let node = &mut cluster.members.get_mut(&successor).expect("leader").node;
    let end = node.remote_log(TOPIC, partition).expect("log").end_offset();
    assert_eq!(end, 150);
    node.report_remote_segment(now, TOPIC, partition, segment(end, 200, successor_epoch))
        .expect("the new leader continues the remote log");
    wait_listed(&mut cluster, partition, &[0, 100, 150]);
}
