//! Topic names, topic ids, and partition ids.
//!
//! Names follow Kafka's rules (`org.apache.kafka.common.internals.Topic.validate`): 1-249
//! characters of `[a-zA-Z0-9._-]`, and not `.` or `..`. Ids are derived, not drawn from OS
//! randomness: a keyed mix of the cluster id, the node id and a persisted per-node counter,
//! so a replayed simulation produces the same ids and two topics never share one.

use uuid::Uuid;

/// One partition of one topic, by the topic's id (KIP-516) and the partition's index: the
/// one identity the node, its metadata image and the controller use for a partition. (The
/// image stores topic ids as `u128` in its persisted records, see [`PartitionId::topic_key`];
/// storage addresses a partition's bytes by a key it allocated, recorded in the catalog.)
///
/// Ordered by topic, then index, so maps keyed by it iterate a topic's partitions together
/// and in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionId {
    /// The topic's id.
    pub topic: Uuid,
    /// The partition's index within the topic: Kafka's partition number, never negative.
    index: u32,
}

impl PartitionId {
    /// Partition `index` of `topic`. Indexes come from the node's own catalog (a topic has
    /// at most [`crate::node::PARTITIONS_MAX`] partitions), never from a client.
    pub fn new(topic: Uuid, index: usize) -> PartitionId {
        let index = u32::try_from(index)
            .ok()
            .filter(|i| i32::try_from(*i).is_ok());
        let index = index.expect("a partition index within Kafka's partition numbers");
        PartitionId { topic, index }
    }

    /// The partition a request names by Kafka's partition number; `None` for a negative
    /// number (which names no partition).
    pub fn from_wire(topic: Uuid, partition: i32) -> Option<PartitionId> {
        let index = u32::try_from(partition).ok()?;
        Some(PartitionId { topic, index })
    }

    /// The partition's index within its topic (the position in the topic's partitions).
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// Kafka's partition number, as the wire and the metadata image carry it.
    pub fn partition(self) -> i32 {
        // `new` and `from_wire` admit only indexes that are non-negative `i32`s.
        self.index as i32
    }

    /// The topic id as the metadata image keys and persists it.
    pub fn topic_key(self) -> u128 {
        self.topic.as_u128()
    }
}

impl std::fmt::Display for PartitionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.index)
    }
}

/// Longest legal topic name (Kafka's `MAX_NAME_LENGTH`).
pub const TOPIC_NAME_LENGTH_MAX: usize = 249;

/// Why a topic name is illegal; answered as INVALID_TOPIC_EXCEPTION with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TopicNameError(pub String);

/// Check a topic name against Kafka's rules.
pub fn validate_topic_name(name: &str) -> Result<(), TopicNameError> {
    if name.is_empty() {
        return Err(TopicNameError(
            "Topic name is illegal, it can't be empty".into(),
        ));
    }
    if name == "." || name == ".." {
        return Err(TopicNameError(
            "Topic name cannot be \".\" or \"..\"".into(),
        ));
    }
    if name.len() > TOPIC_NAME_LENGTH_MAX {
        return Err(TopicNameError(format!(
            "Topic name is illegal, it can't be longer than {TOPIC_NAME_LENGTH_MAX} characters, \
             topic name: {name}"
        )));
    }
    let legal = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-';
    if !name.chars().all(legal) {
        return Err(TopicNameError(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII \
             alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// Kafka's convention: names starting with `__` are internal topics.
pub fn is_internal_topic(name: &str) -> bool {
    name.starts_with("__")
}

/// Bound on re-draws when an id would print with a leading '-' (see below).
const TOPIC_ID_DRAWS_MAX: u64 = 64;

/// The id of the `seq`-th topic this node creates in cluster `cluster_id`.
///
/// Version-4 shaped (so never nil and never Kafka's reserved metadata-topic id). Like
/// Kafka's `Uuid.randomUuid`, ids whose base64 form starts with '-' are skipped, because
/// command-line tools would read them as flags.
pub fn derive_topic_id(cluster_id: &str, node_id: i32, seq: u64) -> Uuid {
    let mut key = fnv1a(cluster_id.as_bytes());
    key = splitmix64(key ^ u64::from(node_id.unsigned_abs()));
    let mut candidate = Uuid::nil();
    for draw in 0..TOPIC_ID_DRAWS_MAX {
        let high = splitmix64(key ^ splitmix64(seq.wrapping_mul(2).wrapping_add(draw << 32)));
        let low = splitmix64(high ^ seq.wrapping_mul(crate::rng::GOLDEN_GAMMA));
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&high.to_be_bytes());
        bytes[8..].copy_from_slice(&low.to_be_bytes());
        candidate = uuid::Builder::from_random_bytes(bytes).into_uuid();
        // The first base64 character is the top 6 bits; 62 is '-' in the URL-safe alphabet.
        if bytes[0] >> 2 != 62 {
            break;
        }
    }
    candidate
}

/// FNV-1a, 64-bit: a stable hash of the cluster id (std's hashers are seeded per process).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64 finalizer: a bijective mix, so distinct inputs give distinct outputs.
fn splitmix64(x: u64) -> u64 {
    crate::rng::Rng::new(x).next_u64()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    // Goal: Kafka's name rules, edge by edge. Method: legal and illegal examples.
    #[test]
    fn topic_names_follow_kafka_rules() {
        for legal in [
            "a",
            "orders",
            "my.topic_v2-x",
            "__consumer_offsets",
            &"x".repeat(249),
        ] {
            assert_eq!(validate_topic_name(legal), Ok(()), "{legal}");
        }
        for illegal in [
            "",
            ".",
            "..",
            "has space",
            "slash/",
            "ünï",
            &"x".repeat(250),
        ] {
            assert!(validate_topic_name(illegal).is_err(), "{illegal}");
        }
        assert!(is_internal_topic("__consumer_offsets"));
        assert!(!is_internal_topic("_single"));
    }

    // Goal: ids are deterministic, distinct, version 4 and never print with a leading '-'.
    // Method: derive many, compare with a second derivation and check each property.
    #[test]
    fn topic_ids_are_deterministic_and_distinct() {
        let mut seen = BTreeSet::new();
        for seq in 0..5_000 {
            let id = derive_topic_id("cluster-a", 1, seq);
            assert_eq!(id, derive_topic_id("cluster-a", 1, seq));
            assert_eq!(id.get_version_num(), 4);
            assert_ne!(id.as_bytes()[0] >> 2, 62);
            assert!(seen.insert(id), "duplicate id at seq {seq}");
        }
        assert_ne!(
            derive_topic_id("cluster-a", 1, 0),
            derive_topic_id("cluster-b", 1, 0)
        );
        assert_ne!(
            derive_topic_id("cluster-a", 1, 0),
            derive_topic_id("cluster-a", 2, 0)
        );
    }
}
