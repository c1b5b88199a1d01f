//! The metadata key layout: how the node persists topics, counters and segment summaries
//! through `StorageOp::PutMeta` / `DeleteMeta`, and how recovery reads them back.
//!
//! Keys are ASCII so they sort (and read) well in any engine; values are JSON.
//!
//! | key                                   | value                      |
//! |---------------------------------------|----------------------------|
//! | `node/next_partition_key`             | u64: next partition key    |
//! | `node/next_topic_seq`                 | u64: next topic id counter |
//! | `topic/{uuid}`                        | [`TopicRecord`]            |
//! | `log_start/{partition_key:016x}`      | i64: log start offset      |
//! | `segment/{partition_key:016x}/{base:016x}` | a closed segment summary |
//! | `node/next_producer_id`               | i64: next producer id      |
//! | `producers/{partition_key:016x}`      | a producer-state snapshot  |
//! | `txn/{transactional_id}`              | legacy txn state: moved to the topic |
//! | `epochs/{partition_key:016x}`         | postcard: the leader-epoch cache (cluster) |
//! | `cleaned/{partition_key:016x}`        | i64: the cleaner's checkpoint (first dirty offset) |
//!
//! (`txn/` entries predate `__transaction_state`; recovery moves each into the topic and
//! deletes it.)
//!
//! Invariant (write order): a topic record is written before anything of its partitions
//! and deleted before them, so after a crash any prefix of the writes leaves either a
//! complete topic or orphans that recovery removes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::partition::{PartitionLog, Segment};
use crate::producer_state::ProducerSnapshot;
use crate::storage::StorageOp;

/// Key of the partition key counter.
pub(crate) const NEXT_PARTITION_KEY: &[u8] = b"node/next_partition_key";
/// Key of the topic id counter.
pub(crate) const NEXT_TOPIC_SEQ: &[u8] = b"node/next_topic_seq";

/// Key of the producer id counter.
pub(crate) const NEXT_PRODUCER_ID: &[u8] = b"node/next_producer_id";

const TOPIC_PREFIX: &str = "topic/";
const PRODUCERS_PREFIX: &str = "producers/";
const LOG_START_PREFIX: &str = "log_start/";
const SEGMENT_PREFIX: &str = "segment/";
const CLEANED_PREFIX: &str = "cleaned/";

/// A persisted topic definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TopicRecord {
    /// Topic name.
    pub name: String,
    /// Topic id (hyphenated UUID).
    pub id: String,
    /// Validated config overrides.
    pub configs: BTreeMap<String, String>,
    /// Partition `i`'s log lives under `partition_keys[i]`.
    pub partition_keys: Vec<u64>,
}

/// One decoded metadata entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetaEntry {
    /// The partition key counter.
    NextPartitionKey(u64),
    /// The topic id counter.
    NextTopicSeq(u64),
    /// A topic.
    Topic(TopicRecord),
    /// A partition's log start offset.
    LogStart {
        /// The partition log.
        partition_key: u64,
        /// Its log start offset.
        offset: i64,
    },
    /// The producer id counter.
    NextProducerId(i64),
    /// A partition's producer-state snapshot.
    Producers {
        /// The partition log.
        partition_key: u64,
        /// The snapshot.
        snapshot: ProducerSnapshot,
    },
    /// A partition's cleaner checkpoint: below it the log was cleaned (compaction).
    Cleaned {
        /// The partition log.
        partition_key: u64,
        /// The first offset not cleaned yet.
        offset: i64,
    },
    /// A closed segment of a partition.
    Segment {
        /// The partition log.
        partition_key: u64,
        /// The segment.
        segment: Segment,
    },
}

/// Key of a topic record.
pub(crate) fn topic_key(id: Uuid) -> Vec<u8> {
    format!("{TOPIC_PREFIX}{}", id.hyphenated()).into_bytes()
}

/// Key of a partition's log start offset.
pub(crate) fn log_start_key(partition_key: u64) -> Vec<u8> {
    format!("{LOG_START_PREFIX}{partition_key:016x}").into_bytes()
}

/// Key of a partition's cleaner checkpoint.
pub(crate) fn cleaned_key(partition_key: u64) -> Vec<u8> {
    format!("{CLEANED_PREFIX}{partition_key:016x}").into_bytes()
}

/// Key of a closed segment.
pub(crate) fn segment_key(partition_key: u64, base_offset: i64) -> Vec<u8> {
    let base = u64::try_from(base_offset).unwrap_or(0);
    format!("{SEGMENT_PREFIX}{partition_key:016x}/{base:016x}").into_bytes()
}

/// Key of a partition's producer-state snapshot.
pub(crate) fn producers_key(partition_key: u64) -> Vec<u8> {
    format!("{PRODUCERS_PREFIX}{partition_key:016x}").into_bytes()
}

/// Serialize a value. Our records have only string map keys, so this cannot fail.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("meta records serialize: no non-string map keys")
}

/// Decode one entry; `Ok(None)` for keys this version does not know (kept, ignored).
pub(crate) fn decode(key: &[u8], value: &[u8]) -> Result<Option<MetaEntry>, String> {
    let text = std::str::from_utf8(key).map_err(|_| "meta key is not UTF-8".to_string())?;
    let json = |error: serde_json::Error| format!("meta {text}: {error}");
    if key == NEXT_PARTITION_KEY {
        return serde_json::from_slice(value)
            .map(|v| Some(MetaEntry::NextPartitionKey(v)))
            .map_err(json);
    }
    if key == NEXT_TOPIC_SEQ {
        return serde_json::from_slice(value)
            .map(|v| Some(MetaEntry::NextTopicSeq(v)))
            .map_err(json);
    }
    if key == NEXT_PRODUCER_ID {
        return serde_json::from_slice(value)
            .map(|v| Some(MetaEntry::NextProducerId(v)))
            .map_err(json);
    }
    if let Some(hex) = text.strip_prefix(PRODUCERS_PREFIX) {
        let partition_key = parse_hex(hex).ok_or_else(|| format!("meta {text}: bad key"))?;
        let snapshot = serde_json::from_slice(value).map_err(json)?;
        return Ok(Some(MetaEntry::Producers {
            partition_key,
            snapshot,
        }));
    }
    if let Some(id) = text.strip_prefix(TOPIC_PREFIX) {
        let record: TopicRecord = serde_json::from_slice(value).map_err(json)?;
        if record.id != id {
            return Err(format!(
                "meta {text}: record id {} differs from its key",
                record.id
            ));
        }
        return Ok(Some(MetaEntry::Topic(record)));
    }
    if let Some(hex) = text.strip_prefix(LOG_START_PREFIX) {
        let partition_key = parse_hex(hex).ok_or_else(|| format!("meta {text}: bad key"))?;
        let offset = serde_json::from_slice(value).map_err(json)?;
        return Ok(Some(MetaEntry::LogStart {
            partition_key,
            offset,
        }));
    }
    if let Some(hex) = text.strip_prefix(CLEANED_PREFIX) {
        let partition_key = parse_hex(hex).ok_or_else(|| format!("meta {text}: bad key"))?;
        let offset = serde_json::from_slice(value).map_err(json)?;
        return Ok(Some(MetaEntry::Cleaned {
            partition_key,
            offset,
        }));
    }
    if let Some(rest) = text.strip_prefix(SEGMENT_PREFIX) {
        let partition_key = rest.split('/').next().and_then(parse_hex);
        let partition_key = partition_key.ok_or_else(|| format!("meta {text}: bad key"))?;
        let segment = serde_json::from_slice(value).map_err(json)?;
        return Ok(Some(MetaEntry::Segment {
            partition_key,
            segment,
        }));
    }
    Ok(None)
}

fn parse_hex(text: &str) -> Option<u64> {
    u64::from_str_radix(text, 16).ok()
}

/// Prefix of a partition's leader-epoch cache (cluster mode).
pub(crate) const EPOCHS_PREFIX: &str = "epochs/";

/// Key of a partition's leader-epoch cache.
pub(crate) fn epochs_key(partition_key: u64) -> Vec<u8> {
    format!("{EPOCHS_PREFIX}{partition_key:016x}").into_bytes()
}

/// The write that persists `log`'s leader-epoch cache.
pub(crate) fn epochs_op(log: &PartitionLog) -> StorageOp {
    StorageOp::PutMeta {
        key: epochs_key(log.partition_key()),
        value: postcard::to_allocvec(&log.epochs).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: every key kind decodes back to what was written. Method: encode, decode, compare.
    #[test]
    fn entries_round_trip() {
        let id = crate::topic::derive_topic_id("c", 1, 0);
        let record = TopicRecord {
            name: "orders".into(),
            id: id.hyphenated().to_string(),
            configs: BTreeMap::from([("retention.ms".to_string(), "5".to_string())]),
            partition_keys: vec![3, 4],
        };
        let decoded = decode(&topic_key(id), &encode(&record)).expect("valid");
        assert_eq!(decoded, Some(MetaEntry::Topic(record)));
        let decoded = decode(&log_start_key(0xab), &encode(&17i64)).expect("valid");
        assert_eq!(
            decoded,
            Some(MetaEntry::LogStart {
                partition_key: 0xab,
                offset: 17
            })
        );
        let segment = Segment::empty(9);
        let decoded = decode(&segment_key(5, 9), &encode(&segment)).expect("valid");
        assert_eq!(
            decoded,
            Some(MetaEntry::Segment {
                partition_key: 5,
                segment
            })
        );
        let decoded = decode(&cleaned_key(0xab), &encode(&40i64)).expect("valid");
        assert_eq!(
            decoded,
            Some(MetaEntry::Cleaned {
                partition_key: 0xab,
                offset: 40
            })
        );
        let decoded = decode(NEXT_PARTITION_KEY, b"12").expect("valid");
        assert_eq!(decoded, Some(MetaEntry::NextPartitionKey(12)));
        assert_eq!(decode(b"future/thing", b"{}"), Ok(None));
        assert!(decode(NEXT_TOPIC_SEQ, b"not json").is_err());
    }
}
