//! Conversions for UpdateFeatures (key 57, v0-2).
//!
//! Same invariants as `convert.rs`: `*_from_domain(x, v)` sets only fields that exist at `v`
//! (v0's `AllowDowngrade`, v1's `UpgradeType` and `ValidateOnly`, results up to v1), and
//! `*_to_domain` copies every field.

use kafka_protocol::messages::{
    update_features_request as ufr, update_features_response as ufs, UpdateFeaturesRequest,
    UpdateFeaturesResponse,
};

use super::convert_helpers::{osb, ost, sb, st};
use crate::domain::features as d;
use crate::domain::features::upgrade_type;
use crate::error::ErrorCode;

pub(super) fn req_to_domain(k: UpdateFeaturesRequest, v: i16) -> d::UpdateFeaturesRequest {
    d::UpdateFeaturesRequest {
        timeout_ms: k.timeout_ms,
        updates: (k.feature_updates.iter())
            .map(|u| d::FeatureUpdate {
                feature: st(&u.feature),
                max_version_level: u.max_version_level,
                upgrade_type: match (v, u.allow_downgrade) {
                    (0, true) => upgrade_type::SAFE_DOWNGRADE,
                    (0, false) => upgrade_type::UPGRADE,
                    _ => u.upgrade_type,
                },
            })
            .collect(),
        validate_only: k.validate_only,
    }
}

pub(super) fn req_from_domain(x: &d::UpdateFeaturesRequest, v: i16) -> UpdateFeaturesRequest {
    let updates = (x.updates.iter())
        .map(|u| {
            let update = ufr::FeatureUpdateKey::default()
                .with_feature(sb(&u.feature))
                .with_max_version_level(u.max_version_level);
            if v == 0 {
                update.with_allow_downgrade(u.upgrade_type != upgrade_type::UPGRADE)
            } else {
                update.with_upgrade_type(u.upgrade_type)
            }
        })
        .collect();
    let request = UpdateFeaturesRequest::default()
        .with_timeout_ms(x.timeout_ms)
        .with_feature_updates(updates);
    if v >= 1 {
        request.with_validate_only(x.validate_only)
    } else {
        request
    }
}

pub(super) fn resp_from_domain(x: &d::UpdateFeaturesResponse, v: i16) -> UpdateFeaturesResponse {
    let response = UpdateFeaturesResponse::default().with_throttle_time_ms(x.throttle_time_ms);
    if v >= 2 {
        // No per-feature results: the first failure is the answer.
        let failed = x.results.iter().find(|r| !r.error.is_ok());
        let (error, message) = match failed {
            Some(r) if x.error.is_ok() => (r.error, &r.error_message),
            _ => (x.error, &x.error_message),
        };
        return response
            .with_error_code(error.0)
            .with_error_message(osb(message));
    }
    let results = (x.results.iter())
        .map(|r| {
            ufs::UpdatableFeatureResult::default()
                .with_feature(sb(&r.feature))
                .with_error_code(r.error.0)
                .with_error_message(osb(&r.error_message))
        })
        .collect();
    response
        .with_error_code(x.error.0)
        .with_error_message(osb(&x.error_message))
        .with_results(results)
}

pub(super) fn resp_to_domain(k: UpdateFeaturesResponse) -> d::UpdateFeaturesResponse {
    d::UpdateFeaturesResponse {
        throttle_time_ms: k.throttle_time_ms,
        error: ErrorCode(k.error_code),
        error_message: ost(&k.error_message),
        results: (k.results.iter())
            .map(|r| d::FeatureUpdateResult {
                feature: st(&r.feature),
                error: ErrorCode(r.error_code),
                error_message: ost(&r.error_message),
            })
            .collect(),
    }
}
