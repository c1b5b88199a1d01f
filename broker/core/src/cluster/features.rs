//! Feature levels: `metadata.version` (Kafka's KIP-584/KIP-778), the gate that keeps a
//! rolling upgrade safe.
//!
//! Every node decodes every committed metadata record; a record kind a node's build does
//! not know stops that node (it cannot compute the image the others compute). So a
//! controller of a newer build must not write a record kind until every node of the
//! cluster runs a build that decodes it. The cluster's *finalized* `metadata.version` says
//! which record kinds may be written; it is itself a record of the log
//! ([`crate::cluster::image::MetaRecord::FeatureLevel`]), raised by an operator
//! (UpdateFeatures, `weir features upgrade`) once every registered node supports the new
//! level, and the controller checks every proposal against it.
//!
//! # Levels
//! - **Level 1**: everything before levels existed: brokers, topics, partitions, configs,
//!   remote log segments, SCRAM credentials, ACLs (records 0 to 12; snapshot versions 0
//!   to 3). A log without a `FeatureLevel` record is at level 1.
//! - **Level 2**: `FeatureLevel` (the finalized level itself) and `RegisterBrokerVersioned`
//!   (a registration carrying the node's supported range, so a node that is down still
//!   blocks an upgrade it could not follow); snapshot version 4.
//!
//! A fresh cluster (nothing in its log yet) starts at its controller's bootstrap level
//! ([`METADATA_VERSION_MAX`] unless configured lower); a cluster created by a build
//! without levels stays at level 1 until upgraded.
//!
//! # Downgrades
//! Every level so far adds record kinds, and the log keeps the records written at the
//! higher level (snapshots too), which builds of the lower level cannot decode. So no
//! downgrade is safe and every one is refused; re-finalizing the current level is a no-op.

use serde::{Deserialize, Serialize};

/// The feature name of the metadata version (Kafka's).
pub const METADATA_VERSION: &str = "metadata.version";
/// The lowest level this build serves (it decodes every log written at it or above).
pub const METADATA_VERSION_MIN: u16 = 1;
/// The highest level this build serves: what a fresh cluster starts at.
pub const METADATA_VERSION_MAX: u16 = 2;
/// The level of a log that holds no `FeatureLevel` record (written before levels).
pub const METADATA_VERSION_LEGACY: u16 = 1;

/// What each level adds, for `weir features describe` and the docs (index: level - 1).
pub const LEVELS: [(u16, &str); 2] = [
    (
        1,
        "brokers, topics, partitions, configs, remote segments, SCRAM credentials, ACLs",
    ),
    (
        2,
        "finalized feature levels; registrations carry supported metadata versions",
    ),
];

/// The range of levels a node's build supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRange {
    /// Lowest supported level.
    pub min: u16,
    /// Highest supported level.
    pub max: u16,
}

impl VersionRange {
    /// This build's range.
    pub const BUILD: VersionRange = VersionRange {
        min: METADATA_VERSION_MIN,
        max: METADATA_VERSION_MAX,
    };
    /// A node that never reported its range: a build without levels, which decodes the
    /// records of level 1 only.
    pub const LEGACY: VersionRange = VersionRange {
        min: METADATA_VERSION_LEGACY,
        max: METADATA_VERSION_LEGACY,
    };

    /// True when `level` is within the range.
    pub fn contains(self, level: u16) -> bool {
        (self.min..=self.max).contains(&level)
    }
}

impl std::fmt::Display for VersionRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..={}", self.min, self.max)
    }
}

/// Why a feature update is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeatureError {
    /// Not a feature this build knows.
    #[error("unknown feature {0:?}: this build knows only {METADATA_VERSION}")]
    UnknownFeature(String),
    /// A level this build (the controller's) does not support.
    #[error(
        "{METADATA_VERSION} {level} is outside this controller's supported range {}",
        VersionRange::BUILD
    )]
    UnsupportedByController {
        /// The level asked for.
        level: u16,
    },
    /// A registered node's build cannot follow the level.
    #[error(
        "{METADATA_VERSION} {level} is not supported by node {node} (it supports {range}; \
         a node that has not reported its range since this controller took over, an older \
         build or one that is down, counts as 1..=1): upgrade and start it first"
    )]
    UnsupportedByNode {
        /// The level asked for.
        level: u16,
        /// The node.
        node: i32,
        /// What it supports (`1..=1` when it never reported a range: an older build).
        range: VersionRange,
    },
    /// A downgrade (none is safe, see the module doc).
    #[error(
        "{METADATA_VERSION} downgrade from {current} to {level} refused: the log holds \
         records of level {current} that builds of level {level} cannot read"
    )]
    Downgrade {
        /// The finalized level.
        current: u16,
        /// The level asked for.
        level: u16,
    },
}

/// Judge finalizing `metadata.version` at `level` on a cluster finalized at `current`
/// whose registered `nodes` (fenced or not: a node that is down comes back with the same
/// build) support the given ranges (`MetadataImage::supported_versions`). `Ok(false)`
/// when the level is already finalized (nothing to write).
pub fn check_metadata_version_update(
    current: u16,
    level: u16,
    nodes: impl IntoIterator<Item = (i32, VersionRange)>,
) -> Result<bool, FeatureError> {
    if level == current {
        return Ok(false);
    }
    if level < current {
        return Err(FeatureError::Downgrade { current, level });
    }
    if !VersionRange::BUILD.contains(level) {
        return Err(FeatureError::UnsupportedByController { level });
    }
    for (node, range) in nodes {
        if !range.contains(level) {
            return Err(FeatureError::UnsupportedByNode { level, node, range });
        }
    }
    Ok(true)
}

/// The error a request gets when it needs a record kind of `needed` on a cluster
/// finalized at `current` (below it).
pub fn needs_upgrade(needed: u16, current: u16) -> String {
    format!(
        "needs {METADATA_VERSION} {needed}, cluster is at {current}; run \
         `weir features upgrade --metadata {needed}` once every node runs a build that \
         supports it"
    )
}

/// The reason a node of this build stops when the cluster finalized `level` above what it
/// supports (checked when the record or a snapshot applies, and at registration).
pub fn unsupported_here(level: u16) -> String {
    format!(
        "the cluster finalized {METADATA_VERSION} {level}, but this build supports only {}: \
         run a newer build on this node",
        VersionRange::BUILD
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: an upgrade passes only when every registered node supports the level (one
    // that never reported counts as 1..=1: an older build, or one that is down); the
    // current level is a no-op; downgrades and levels beyond this build are refused,
    // naming why.
    #[test]
    fn upgrades_need_every_node_and_downgrades_are_refused() {
        let build = VersionRange::BUILD;
        let both = [(1, build), (2, build)];
        assert_eq!(check_metadata_version_update(1, 1, both), Ok(false));
        assert_eq!(check_metadata_version_update(1, 2, both), Ok(true));
        let one_old = [(1, build), (2, VersionRange::LEGACY)];
        let refused = check_metadata_version_update(1, 2, one_old);
        assert_eq!(
            refused,
            Err(FeatureError::UnsupportedByNode {
                level: 2,
                node: 2,
                range: VersionRange::LEGACY
            })
        );
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("node 2") && message.contains("1..=1"),
            "{message}"
        );
        let beyond = METADATA_VERSION_MAX + 1;
        assert_eq!(
            check_metadata_version_update(1, beyond, both),
            Err(FeatureError::UnsupportedByController { level: beyond })
        );
        assert_eq!(check_metadata_version_update(2, 2, one_old), Ok(false));
        assert_eq!(
            check_metadata_version_update(2, 1, both),
            Err(FeatureError::Downgrade {
                current: 2,
                level: 1
            })
        );
    }
}
