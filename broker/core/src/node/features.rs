//! Feature levels (KIP-584): UpdateFeatures on the active controller (others forward it),
//! and what this node tells of features in ApiVersions (`Node::feature_levels`).
//!
//! An update of `metadata.version` is judged on the decision image by
//! `features::check_metadata_version_update`: an upgrade only when every registered node
//! supports the new level, never a downgrade (see `cluster::features`); re-finalizing the
//! current level succeeds without a record. `validate_only` judges and writes nothing.
//! Each feature of a request is judged on its own, as Kafka's controller does.

use weir_wire::domain::features::{
    upgrade_type, FeatureLevels, FeatureUpdate, FeatureUpdateResult, UpdateFeaturesRequest,
    UpdateFeaturesResponse,
};
use weir_wire::domain::{ApiRequest, ApiResponse};
use weir_wire::error::ErrorCode;

use crate::cluster::features::{self, FeatureError, VersionRange, METADATA_VERSION};
use crate::cluster::image::{MetaRecord, MetadataImage};
use crate::event::RequestId;
use crate::node::Node;

impl Node {
    /// UpdateFeatures, on the active controller: every feature judged on the decision
    /// image, the accepted ones proposed together; answered once they are committed.
    pub(super) fn update_features(&mut self, id: RequestId, request: UpdateFeaturesRequest) {
        if self.not_controller(id, &ApiRequest::UpdateFeatures(request.clone())) {
            return;
        }
        let cluster = &*self.cluster;
        let reported = &cluster.controller.reported;
        let image = cluster.meta.decision_image();
        let mut records = Vec::new();
        let mut results = Vec::new();
        let mut proposed = Vec::new();
        for (index, update) in request.updates.iter().enumerate() {
            let duplicate = (request.updates[..index].iter()).any(|u| u.feature == update.feature);
            let planned = if duplicate {
                let message = format!("feature {:?} updated twice", update.feature);
                Err((ErrorCode::INVALID_REQUEST, message))
            } else {
                plan_update(image, update, |node| reported.get(&node).copied())
            };
            let (error, error_message) = match planned {
                Ok(Some(record)) => {
                    let level = update.max_version_level;
                    tracing::info!(level, validate_only = request.validate_only, "finalizing");
                    records.push(record);
                    proposed.push(results.len());
                    (ErrorCode::NONE, None)
                }
                Ok(None) => (ErrorCode::NONE, None),
                Err((error, message)) => {
                    tracing::warn!(%message, "feature update refused");
                    (error, Some(message))
                }
            };
            results.push(FeatureUpdateResult {
                feature: update.feature.clone(),
                error,
                error_message,
            });
        }
        let last = if records.is_empty() || request.validate_only {
            None
        } else {
            let last = self.propose(records);
            if last.is_none() {
                // Not proposed (leadership lost, or the log throttled): never a success.
                for index in proposed {
                    results[index].error = ErrorCode::NOT_CONTROLLER;
                    results[index].error_message =
                        Some("the controller could not propose the change; retry".to_owned());
                }
            }
            last
        };
        let response = ApiResponse::UpdateFeatures(UpdateFeaturesResponse {
            throttle_time_ms: 0,
            error: ErrorCode::NONE,
            error_message: None,
            results,
        });
        self.respond_after_index(id, last, response);
    }

    /// What ApiVersions tells of features: this node's supported `metadata.version` range
    /// and the level its applied image holds (epoch: the image's applied index).
    pub fn feature_levels(&self) -> FeatureLevels {
        let range = self.supported_metadata_versions();
        let image = &self.cluster.meta.image;
        let level = image.metadata_version();
        FeatureLevels {
            supported: vec![(
                METADATA_VERSION.to_string(),
                wire(range.min),
                wire(range.max),
            )],
            finalized_epoch: i64::try_from(image.applied_index).unwrap_or(i64::MAX),
            finalized: vec![(METADATA_VERSION.to_string(), wire(level))],
        }
    }

    /// The cluster's finalized `metadata.version` as this node applied it.
    pub fn metadata_version(&self) -> u16 {
        self.cluster.meta.image.metadata_version()
    }

    /// The `metadata.version` range this node supports and advertises.
    pub fn supported_metadata_versions(&self) -> VersionRange {
        self.cluster.config.supported_metadata_versions
    }
}

/// Levels are small (at most the build's maximum); the wire carries them as `i16`.
fn wire(level: u16) -> i16 {
    i16::try_from(level).unwrap_or(i16::MAX)
}

/// One feature update judged on `image`: the record to write, `None` when the level is
/// already finalized, or the error.
fn plan_update(
    image: &MetadataImage,
    update: &FeatureUpdate,
    reported: impl Fn(i32) -> Option<VersionRange>,
) -> Result<Option<MetaRecord>, (ErrorCode, String)> {
    let invalid = |e: FeatureError| (ErrorCode::INVALID_UPDATE_VERSION, e.to_string());
    if update.feature != METADATA_VERSION {
        return Err(invalid(FeatureError::UnknownFeature(
            update.feature.clone(),
        )));
    }
    let Ok(level) = u16::try_from(update.max_version_level) else {
        let message = format!("{METADATA_VERSION} cannot be removed (level below 1)");
        return Err((ErrorCode::INVALID_UPDATE_VERSION, message));
    };
    if level < features::METADATA_VERSION_MIN {
        let message = format!("{METADATA_VERSION} cannot be removed (level below 1)");
        return Err((ErrorCode::INVALID_UPDATE_VERSION, message));
    }
    let current = image.metadata_version();
    if level < current && update.upgrade_type == upgrade_type::UPGRADE {
        let message = format!(
            "{METADATA_VERSION} {level} is below the finalized {current}: an upgrade cannot \
             lower it"
        );
        return Err((ErrorCode::INVALID_UPDATE_VERSION, message));
    }
    let nodes = (image.brokers.keys()).map(|id| (*id, image.supported_versions(*id, &reported)));
    let write = features::check_metadata_version_update(current, level, nodes).map_err(invalid)?;
    Ok(write.then(|| MetaRecord::FeatureLevel {
        name: METADATA_VERSION.to_string(),
        level,
    }))
}

/// The answer of a request refused whole: every feature fails with `error`.
pub(super) fn failed(
    request: &UpdateFeaturesRequest,
    error: ErrorCode,
    message: Option<String>,
) -> UpdateFeaturesResponse {
    UpdateFeaturesResponse {
        throttle_time_ms: 0,
        error,
        error_message: message.clone(),
        results: (request.updates.iter())
            .map(|u| FeatureUpdateResult {
                feature: u.feature.clone(),
                error,
                error_message: message.clone(),
            })
            .collect(),
    }
}
