//! `/readyz`'s judgement (`Node::readiness`, issue 16 item 3): what a rolling restart
//! waits for after starting a broker.
//!
//! Goal: a node is ready only once it is registered, unfenced, caught up on metadata and
//! back in the ISR of every partition it replicates; a restarted broker is not ready while
//! it catches up (so a rolling restart does not move on to the next broker too early), is
//! ready once its ISR memberships are back, and a broker shutting down is not ready.
//!
//! Method: the three-node virtual-time harness; records written while a broker is down so
//! that it must catch up after its restart; readiness sampled every 10 ms of virtual time.

use crate::common;

use common::cluster::Cluster;
use weir_core::Readiness;
use weir_wire::domain::CreatableTopic;

const TOPIC: &str = "t";

fn readiness(cluster: &Cluster, id: i32) -> Readiness {
    cluster.members[&id].node.readiness()
}

#[test]
fn a_restarted_broker_is_ready_only_back_in_the_isr() {
    let mut cluster = Cluster::new(&[1, 2, 3], &[1, 2, 3], |config| {
        if let Some(cluster) = config.cluster.as_mut() {
            // A restarted follower rejoins the ISR only after catching up; keep the lag
            // rule from taking a slow one out meanwhile.
            cluster.replica_lag_time_max_ms = 10_000;
        }
    });
    // Fresh nodes are not ready before the controller registered and unfenced them.
    assert!(
        matches!(readiness(&cluster, 1), Readiness::NotReady(_)),
        "{:?}",
        readiness(&cluster, 1)
    );
    let controller = cluster.agreed_controller();
    cluster.create(
        controller,
        CreatableTopic {
            name: TOPIC.into(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: vec![(0, vec![1, 2, 3])],
            configs: Vec::new(),
        },
    );
    let leader = cluster.settle(TOPIC, &[1, 2, 3]);
    for id in [1, 2, 3] {
        assert_eq!(readiness(&cluster, id), Readiness::Ready, "node {id}");
    }
    let victim = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader && *id != controller)
        .unwrap_or_else(|| {
            [1, 2, 3]
                .into_iter()
                .find(|id| *id != leader)
                .expect("a follower")
        });

    cluster.kill(victim);
    let survivors: Vec<i32> = cluster.live();
    let new_leader = cluster.settle(TOPIC, &survivors);
    for i in 0..50 {
        let value = format!("v{i}");
        cluster.write(
            new_leader,
            TOPIC,
            common::keyed_record(Some("k"), Some(&value)),
        );
    }
    cluster.restart(victim);
    let mut reasons = Vec::new();
    let mut ready_at = None;
    for step in 0..3_000 {
        match readiness(&cluster, victim) {
            Readiness::Ready => {
                ready_at = Some(step);
                break;
            }
            Readiness::NotReady(reason) => {
                if reasons.last() != Some(&reason) {
                    reasons.push(reason);
                }
            }
        }
        cluster.advance_ms(common::cluster::STEP_MS);
    }
    assert!(ready_at.is_some(), "never ready again; reasons {reasons:?}");
    assert!(!reasons.is_empty(), "ready at once after a restart");
    // When it says ready, the image has it back in the ISR.
    let (_, _, isr) = (cluster.members[&victim].node)
        .partition_leadership(TOPIC, 0)
        .expect("partition");
    assert!(
        isr.contains(&victim),
        "ready outside the ISR {isr:?}; reasons {reasons:?}"
    );

    // A broker shutting down is not ready from the start of its shutdown.
    let now = cluster.now;
    let member = cluster.members.get_mut(&victim).expect("victim");
    member.node.begin_controlled_shutdown(now, 30_000);
    assert_eq!(
        readiness(&cluster, victim),
        Readiness::NotReady("shutting down".into())
    );
}
