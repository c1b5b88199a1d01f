//! `metadata.version` in a cluster of in-process nodes (issue 16, item 3: the metadata
//! records carry a version so a newer broker can read an older one's data, and a rolling
//! upgrade never leaves a node behind on records it cannot read).
//!
//! Goal: a fresh cluster starts at the build's highest level; a cluster at level 1 (one
//! created by a build without levels) is upgraded only once every registered node
//! supports the new level: a node advertising a lower maximum (an older build) blocks
//! the upgrade with an error naming it, and once that node "upgrades" (restarts with the
//! new build's range) the upgrade succeeds and every node applies it; downgrades are
//! refused; and a node whose build cannot follow the finalized level stops with a message
//! saying so instead of serving a diverging image.
//!
//! Method: the virtual-time harness of `common::cluster`: voters 1-3 and a broker-only
//! node 4 (never the controller, so it can play the old build); UpdateFeatures requests
//! through a node that forwards them; an older build is played by lowering the node's
//! `supported_metadata_versions`.

use crate::common;

use common::cluster::Cluster;
use weir_core::cluster::features::{VersionRange, METADATA_VERSION, METADATA_VERSION_MAX};
use weir_wire::domain::features::{
    upgrade_type, FeatureUpdate, UpdateFeaturesRequest, UpdateFeaturesResponse,
};
use weir_wire::domain::{ApiRequest, ApiResponse};
use weir_wire::error::ErrorCode;

const OLD: i32 = 4;

fn update(
    cluster: &mut Cluster,
    at: i32,
    level: i16,
    kind: i8,
    dry: bool,
) -> UpdateFeaturesResponse {
    let request = ApiRequest::UpdateFeatures(UpdateFeaturesRequest {
        timeout_ms: 30_000,
        updates: vec![FeatureUpdate {
            feature: METADATA_VERSION.into(),
            max_version_level: level,
            upgrade_type: kind,
        }],
        validate_only: dry,
    });
    match cluster.call(at, request) {
        ApiResponse::UpdateFeatures(response) => response,
        other => panic!("not an UpdateFeatures answer: {other:?}"),
    }
}

/// The answer's error and message: the feature's (v0-1), or the top-level one (v2, which
/// a forwarded request is answered at).
fn outcome(response: &UpdateFeaturesResponse) -> (ErrorCode, String) {
    let (error, message) = match response.results.first() {
        Some(result) => (result.error, &result.error_message),
        None => (response.error, &response.error_message),
    };
    (error, message.clone().unwrap_or_default())
}

fn levels(cluster: &Cluster) -> Vec<u16> {
    (cluster.live().iter())
        .map(|id| cluster.members[id].node.metadata_version())
        .collect()
}

/// Restart node `id` as a build supporting `range`, and let it register.
fn restart_as(cluster: &mut Cluster, id: i32, range: VersionRange) {
    let member = cluster.members.get_mut(&id).expect("node");
    if let Some(config) = member.config.cluster.as_mut() {
        config.supported_metadata_versions = range;
    }
    cluster.restart(id);
    cluster.advance_ms(3_000);
}

#[test]
fn a_fresh_cluster_starts_at_the_builds_highest_level() {
    let mut cluster = Cluster::new(&[1, 2, 3], &[1, 2, 3], |_| {});
    cluster.agreed_controller();
    cluster.advance_ms(2_000);
    assert_eq!(levels(&cluster), vec![METADATA_VERSION_MAX; 3]);
    let described = cluster.members[&2].node.feature_levels();
    assert_eq!(
        described.finalized,
        vec![(METADATA_VERSION.to_string(), METADATA_VERSION_MAX as i16)]
    );
    assert_eq!(
        described.supported,
        vec![(METADATA_VERSION.to_string(), 1, METADATA_VERSION_MAX as i16)]
    );
    // Already there: a no-op success, and nothing to downgrade to.
    let again = update(
        &mut cluster,
        2,
        METADATA_VERSION_MAX as i16,
        upgrade_type::UPGRADE,
        false,
    );
    assert_eq!(outcome(&again).0, ErrorCode::NONE, "{again:?}");
    let down = update(&mut cluster, 3, 1, upgrade_type::SAFE_DOWNGRADE, false);
    let (error, message) = outcome(&down);
    assert_eq!(error, ErrorCode::INVALID_UPDATE_VERSION, "{down:?}");
    assert!(message.contains("downgrade"), "{message}");
    assert_eq!(levels(&cluster), vec![METADATA_VERSION_MAX; 3]);
}

#[test]
fn an_older_node_blocks_the_upgrade_until_it_is_upgraded() {
    let mut cluster = Cluster::new(&[1, 2, 3, OLD], &[1, 2, 3], |config| {
        // A cluster created by a build without levels: no level record at all.
        config.bootstrap_metadata_version = 1;
        if let Some(cluster) = config.cluster.as_mut() {
            if config.node_id == OLD {
                cluster.supported_metadata_versions = VersionRange::LEGACY;
            }
        }
    });
    let controller = cluster.agreed_controller();
    assert_ne!(controller, OLD, "a broker-only node never controls");
    cluster.advance_ms(2_000);
    assert_eq!(levels(&cluster), vec![1; 4]);

    // The old node blocks it, named in the answer; nothing changes.
    let refused = update(&mut cluster, OLD, 2, upgrade_type::UPGRADE, false);
    let (error, message) = outcome(&refused);
    assert_eq!(error, ErrorCode::INVALID_UPDATE_VERSION, "{refused:?}");
    assert!(
        message.contains(&format!("node {OLD}")) && message.contains("1..=1"),
        "{message}"
    );
    cluster.advance_ms(1_000);
    assert_eq!(levels(&cluster), vec![1; 4]);

    // Its binary is replaced: a dry run passes and changes nothing, the upgrade commits
    // and every node applies it.
    restart_as(&mut cluster, OLD, VersionRange::BUILD);
    let dry = update(&mut cluster, 1, 2, upgrade_type::UPGRADE, true);
    assert_eq!(outcome(&dry).0, ErrorCode::NONE, "{dry:?}");
    cluster.advance_ms(1_000);
    assert_eq!(levels(&cluster), vec![1; 4]);
    let done = update(&mut cluster, OLD, 2, upgrade_type::UPGRADE, false);
    assert_eq!(outcome(&done).0, ErrorCode::NONE, "{done:?}");
    cluster.advance_ms(1_000);
    assert_eq!(levels(&cluster), vec![2; 4]);

    // No way back, even asked for as a downgrade.
    for kind in [upgrade_type::SAFE_DOWNGRADE, upgrade_type::UNSAFE_DOWNGRADE] {
        let down = update(&mut cluster, 2, 1, kind, false);
        assert_eq!(
            outcome(&down).0,
            ErrorCode::INVALID_UPDATE_VERSION,
            "{down:?}"
        );
    }
    let unknown = ApiRequest::UpdateFeatures(UpdateFeaturesRequest {
        timeout_ms: 1_000,
        updates: vec![FeatureUpdate {
            feature: "group.version".into(),
            max_version_level: 1,
            upgrade_type: upgrade_type::UPGRADE,
        }],
        validate_only: false,
    });
    let ApiResponse::UpdateFeatures(unknown) = cluster.call(1, unknown) else {
        panic!("not an UpdateFeatures answer");
    };
    assert_eq!(
        outcome(&unknown).0,
        ErrorCode::INVALID_UPDATE_VERSION,
        "{unknown:?}"
    );

    // Rolled back to the old build now, the node cannot follow the log: it stops, saying
    // why, rather than skipping records.
    cluster.may_poison.insert(OLD);
    restart_as(&mut cluster, OLD, VersionRange::LEGACY);
    let reason = cluster.poisoned.get(&OLD).cloned().unwrap_or_default();
    assert!(
        reason.contains(METADATA_VERSION) && reason.contains("1..=1") && reason.contains('2'),
        "node {OLD} did not stop as it should: {reason:?}"
    );
    assert_eq!(levels(&cluster), vec![2; 3], "the others serve on");
}

// Goal: a node with an empty disk whose build cannot follow the finalized level is
// refused: it stops (at registration, or on the level record, whichever it meets first)
// and never registers; the cluster's registrations are untouched.
#[test]
fn a_new_node_of_an_older_build_is_refused() {
    let mut cluster = Cluster::new(&[1, 2, 3, OLD], &[1, 2, 3], |_| {});
    cluster.agreed_controller();
    cluster.advance_ms(2_000);
    assert_eq!(levels(&cluster), vec![METADATA_VERSION_MAX; 4]);
    cluster.may_poison.insert(OLD);
    let member = cluster.members.get_mut(&OLD).expect("node");
    member.storage = weir_core::storage::MemStorage::new();
    restart_as(&mut cluster, OLD, VersionRange::LEGACY);
    let reason = cluster.poisoned.get(&OLD).cloned().unwrap_or_default();
    assert!(
        reason.contains(METADATA_VERSION) && reason.contains("1..=1"),
        "node {OLD} did not stop as it should: {reason:?}"
    );
}
