//! Domain types of KIP-584's feature administration: UpdateFeatures (key 57, v0-2). The
//! finalized levels are also described in ApiVersions (v3+ tagged fields, see
//! `codec::encode_api_versions_with_features`), which `kafka-features.sh describe` reads.
//!
//! Same invariant as the parent module: each type round-trips through the codec at every
//! version that carries all of its fields.

use crate::error::ErrorCode;

/// Kafka's `UpgradeType` of a feature update (v1+; v0's `AllowDowngrade` maps to 1 or 2).
pub mod upgrade_type {
    /// Raise the level.
    pub const UPGRADE: i8 = 1;
    /// Lower it, only if no metadata is lost.
    pub const SAFE_DOWNGRADE: i8 = 2;
    /// Lower it, losing metadata if need be.
    pub const UNSAFE_DOWNGRADE: i8 = 3;
}

/// UpdateFeatures request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateFeaturesRequest {
    /// How long the controller may take.
    pub timeout_ms: i32,
    /// The updates, one per feature.
    pub updates: Vec<FeatureUpdate>,
    /// Check only, change nothing (v1+).
    pub validate_only: bool,
}

/// One feature's wanted level.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeatureUpdate {
    /// Feature name (`metadata.version`).
    pub feature: String,
    /// The new finalized level (0 deletes the feature, which Weir refuses).
    pub max_version_level: i16,
    /// [`upgrade_type`] code.
    pub upgrade_type: i8,
}

/// UpdateFeatures response. Results per feature up to v1; v2 carries the top-level error
/// only (a failed feature's error becomes it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateFeaturesResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Whole-request error.
    pub error: ErrorCode,
    /// Its message.
    pub error_message: Option<String>,
    /// Per feature (v0-1).
    pub results: Vec<FeatureUpdateResult>,
}

/// One feature's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeatureUpdateResult {
    /// Feature name.
    pub feature: String,
    /// Error.
    pub error: ErrorCode,
    /// Its message.
    pub error_message: Option<String>,
}

/// What ApiVersions (v3+) tells about features: what this broker's build supports and
/// what the cluster finalized, as the node last applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureLevels {
    /// Supported ranges: (name, min, max).
    pub supported: Vec<(String, i16, i16)>,
    /// Epoch of the finalized levels (the metadata log index they were read at; -1 none).
    pub finalized_epoch: i64,
    /// Finalized levels: (name, level).
    pub finalized: Vec<(String, i16)>,
}

impl Default for FeatureLevels {
    /// None supported, none finalized, epoch -1 (Kafka's "no finalized features").
    fn default() -> FeatureLevels {
        FeatureLevels {
            supported: Vec::new(),
            finalized_epoch: -1,
            finalized: Vec::new(),
        }
    }
}
