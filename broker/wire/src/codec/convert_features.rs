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

#[cfg(test)]
mod tests {
    use super::*;

    fn update(kind: i8) -> d::UpdateFeaturesRequest {
        d::UpdateFeaturesRequest {
            timeout_ms: 5,
            updates: vec![d::FeatureUpdate {
                feature: "metadata.version".into(),
                max_version_level: 2,
                upgrade_type: kind,
            }],
            validate_only: true,
        }
    }

    // Goal: each version carries what it has: v0's AllowDowngrade stands for the upgrade
    // type (and no ValidateOnly), v1+ carry both; v2 answers carry no per-feature results,
    // so a failed feature's error becomes the top-level one.
    #[test]
    fn versions_map_downgrades_and_results() {
        let safe = update(upgrade_type::SAFE_DOWNGRADE);
        let v0 = req_to_domain(req_from_domain(&safe, 0), 0);
        assert_eq!(v0.updates, safe.updates);
        assert!(!v0.validate_only, "v0 has no ValidateOnly");
        let upgrade = update(upgrade_type::UPGRADE);
        assert_eq!(
            req_to_domain(req_from_domain(&upgrade, 0), 0).updates,
            upgrade.updates
        );
        assert_eq!(req_to_domain(req_from_domain(&upgrade, 1), 1), upgrade);
        let failed = d::UpdateFeaturesResponse {
            throttle_time_ms: 0,
            error: ErrorCode::NONE,
            error_message: None,
            results: vec![d::FeatureUpdateResult {
                feature: "metadata.version".into(),
                error: ErrorCode::INVALID_UPDATE_VERSION,
                error_message: Some("node 3".into()),
            }],
        };
        assert_eq!(resp_to_domain(resp_from_domain(&failed, 1)), failed);
        let v2 = resp_to_domain(resp_from_domain(&failed, 2));
        assert!(v2.results.is_empty());
        assert_eq!(v2.error, ErrorCode::INVALID_UPDATE_VERSION);
        assert_eq!(v2.error_message.as_deref(), Some("node 3"));
    }
}
