//! The admin client's feature calls (KIP-584, Kafka's `kafka-features.sh`): describe reads
//! a broker's ApiVersions answer (v3+ carries the supported and finalized levels), upgrade
//! sends UpdateFeatures to the controller (any broker forwards it).

use weir_runtime::Runtime;
use weir_wire::domain::features::{
    upgrade_type, FeatureLevels, FeatureUpdate, UpdateFeaturesRequest,
};
use weir_wire::domain::{ApiRequest, ApiResponse};

use crate::admin::Admin;
use crate::driver::cluster::unexpected;
use crate::error::ClientError;

impl<R: Runtime> Admin<R> {
    /// The feature levels of a broker of the bootstrap list (supported by its build,
    /// finalized by the cluster as it applied them).
    pub async fn describe_features(&self) -> Result<FeatureLevels, ClientError> {
        let cluster = self.cluster();
        let mut last = None;
        for address in &cluster.config().bootstrap_servers {
            match cluster.connection_at(address).await {
                Ok(connection) => return Ok(connection.versions().features().clone()),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::NoBroker("no bootstrap server".into())))
    }

    /// Finalize `feature` at `level` (an upgrade; `validate_only` checks without writing).
    pub async fn upgrade_feature(
        &self,
        feature: &str,
        level: i16,
        validate_only: bool,
    ) -> Result<(), ClientError> {
        let request = ApiRequest::UpdateFeatures(UpdateFeaturesRequest {
            timeout_ms: 30_000,
            updates: vec![FeatureUpdate {
                feature: feature.to_owned(),
                max_version_level: level,
                upgrade_type: upgrade_type::UPGRADE,
            }],
            validate_only,
        });
        let response = match self.cluster().request_controller(&request).await? {
            ApiResponse::UpdateFeatures(response) => response,
            other => return Err(unexpected("UpdateFeatures", &other)),
        };
        if !response.error.is_ok() {
            return Err(ClientError::Kafka {
                code: response.error,
                context: "UpdateFeatures".into(),
                message: response.error_message,
            });
        }
        match response.results.into_iter().find(|r| !r.error.is_ok()) {
            None => Ok(()),
            Some(failed) => Err(ClientError::Kafka {
                code: failed.error,
                context: format!("feature {}", failed.feature),
                message: failed.error_message,
            }),
        }
    }
}
