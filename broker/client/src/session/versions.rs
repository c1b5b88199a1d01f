//! API version negotiation: for each API, the highest version both sides support.
//!
//! Our side is weir-wire's [`SUPPORTED_APIS`] narrowed by [`CLIENT_LIMITS`]; the broker's side
//! is its ApiVersions table. Invariant: a negotiated version lies inside both ranges.

use std::collections::BTreeMap;

use weir_wire::codec::SUPPORTED_APIS;

/// Kafka API keys the client uses.
pub mod api_key {
    /// Produce.
    pub const PRODUCE: i16 = 0;
    /// Fetch.
    pub const FETCH: i16 = 1;
    /// ListOffsets.
    pub const LIST_OFFSETS: i16 = 2;
    /// Metadata.
    pub const METADATA: i16 = 3;
    /// ApiVersions.
    pub const API_VERSIONS: i16 = 18;
    /// CreateTopics.
    pub const CREATE_TOPICS: i16 = 19;
    /// DeleteTopics.
    pub const DELETE_TOPICS: i16 = 20;
    /// DescribeConfigs.
    pub const DESCRIBE_CONFIGS: i16 = 32;
    /// CreatePartitions.
    pub const CREATE_PARTITIONS: i16 = 37;
    /// DescribeCluster.
    pub const DESCRIBE_CLUSTER: i16 = 60;
    /// SaslHandshake.
    pub const SASL_HANDSHAKE: i16 = 17;
    /// SaslAuthenticate.
    pub const SASL_AUTHENTICATE: i16 = 36;
}

/// Client-side narrowing of the codec's table: (api_key, min, max).
/// - Produce v0-2 were removed in Kafka 4.0 (brokers advertise but reject them).
/// - Fetch v13+ names topics by id only; the client names topics, so it stays at v12, which
///   every broker since Kafka 2.7 serves.
pub const CLIENT_LIMITS: &[(i16, i16, i16)] =
    &[(api_key::PRODUCE, 3, i16::MAX), (api_key::FETCH, 0, 12)];

/// The negotiated version of each API both sides support.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiVersions {
    versions: BTreeMap<i16, i16>,
    /// The broker's supported and finalized feature levels (ApiVersions v3+).
    features: weir_wire::domain::features::FeatureLevels,
}

impl ApiVersions {
    /// Negotiates against the broker's `(api_key, min, max)` table.
    pub fn negotiate(broker: &[(i16, i16, i16)]) -> ApiVersions {
        ApiVersions::negotiate_with(SUPPORTED_APIS, CLIENT_LIMITS, broker)
    }

    /// The broker's feature levels, as its ApiVersions answer told them.
    pub fn features(&self) -> &weir_wire::domain::features::FeatureLevels {
        &self.features
    }

    /// With the feature levels of the broker's answer.
    pub fn with_features(mut self, features: weir_wire::domain::features::FeatureLevels) -> Self {
        self.features = features;
        self
    }

    /// Negotiation with explicit tables (tests).
    pub fn negotiate_with(
        ours: &[(i16, i16, i16)],
        limits: &[(i16, i16, i16)],
        broker: &[(i16, i16, i16)],
    ) -> ApiVersions {
        let mut versions = BTreeMap::new();
        for &(key, our_min, our_max) in ours {
            let (limit_min, limit_max) = limits
                .iter()
                .find(|(limit_key, _, _)| *limit_key == key)
                .map_or((i16::MIN, i16::MAX), |&(_, min, max)| (min, max));
            let Some(&(_, their_min, their_max)) = broker.iter().find(|(k, _, _)| *k == key) else {
                continue;
            };
            let low = our_min.max(limit_min).max(their_min);
            let high = our_max.min(limit_max).min(their_max);
            if low <= high {
                versions.insert(key, high);
            }
        }
        ApiVersions {
            versions,
            features: Default::default(),
        }
    }

    /// The version to use for `api_key`, `None` when the sides share none.
    pub fn version_for(&self, api_key: i16) -> Option<i16> {
        self.versions.get(&api_key).copied()
    }
}

#[cfg(test)]
mod tests {
    // Goal: negotiation picks the highest common version, honours client limits, and drops
    // APIs with no overlap. Method: small hand-made tables.
    use super::*;

    #[test]
    fn picks_highest_common_version() {
        let ours = [(0, 0, 11), (1, 4, 16), (3, 0, 13), (19, 2, 7)];
        let limits = [(0, 3, i16::MAX), (1, 0, 12)];
        let broker = [(0, 0, 9), (1, 0, 17), (3, 0, 8), (19, 0, 1)];
        let negotiated = ApiVersions::negotiate_with(&ours, &limits, &broker);
        assert_eq!(negotiated.version_for(0), Some(9));
        assert_eq!(negotiated.version_for(1), Some(12));
        assert_eq!(negotiated.version_for(3), Some(8));
        // CreateTopics: ours 2-7, broker 0-1: no overlap.
        assert_eq!(negotiated.version_for(19), None);
        // Not in the broker's table at all.
        assert_eq!(negotiated.version_for(60), None);
    }

    #[test]
    fn produce_below_v3_is_never_chosen() {
        let negotiated = ApiVersions::negotiate_with(&[(0, 0, 11)], CLIENT_LIMITS, &[(0, 0, 2)]);
        assert_eq!(negotiated.version_for(0), None);
    }

    #[test]
    fn real_table_against_itself_respects_limits() {
        let negotiated = ApiVersions::negotiate(SUPPORTED_APIS);
        for &(key, min, max) in SUPPORTED_APIS {
            let version = negotiated.version_for(key);
            if key == api_key::FETCH {
                assert_eq!(version, Some(max.min(12)));
            } else {
                assert_eq!(version, Some(max), "api {key} {min}..{max}");
            }
        }
    }
}
