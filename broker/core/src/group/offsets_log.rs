//! The record format of committed offsets in the internal topic `__consumer_offsets`.
//!
//! Kafka's own format, so tools that read the topic understand it:
//! - key version 1 (offset commit): `version: i16 = 1, group: string, topic: string,
//!   partition: i32`;
//! - value version 3: `version: i16 = 3, offset: i64, leader_epoch: i32, metadata: string,
//!   commit_timestamp: i64`; a null value is a tombstone (offset deleted);
//! - strings are `i16` length + UTF-8.
//!
//! A group's records go to partition `abs(java_hash(group)) % partition_count` (Kafka's
//! `Utils.abs(groupId.hashCode) % offsets.topic.num.partitions`), so one group's commits are
//! ordered in one log. Keys of other versions (group metadata, version 2) are skipped when
//! replaying. The topic is created with infinite retention and compacted by the node
//! (`node/internal.rs`: a fresh copy of the live records at the log end, then the prefix
//! before it is dropped); recovery replays it from the log start, latest record per key
//! winning.

use bytes::{BufMut, Bytes, BytesMut};

use super::CommittedOffset;

/// Name of the internal topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Key version of an offset commit record.
const KEY_VERSION_OFFSET: i16 = 1;
/// Value version written.
const VALUE_VERSION: i16 = 3;

/// Java's `String.hashCode` over UTF-16 code units.
pub(crate) fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The `__consumer_offsets` partition holding `group`'s offsets.
pub fn partition_for(group: &str, partition_count: i32) -> i32 {
    assert!(partition_count > 0, "partition_count={partition_count}");
    // Kafka's Utils.abs maps i32::MIN to 0 rather than overflowing.
    let hash = java_string_hash(group);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partition_count
}

pub(crate) fn put_string(out: &mut BytesMut, s: &str) {
    // Group ids and topic names are bounded far below i16::MAX by their validators.
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    out.put_i16(len);
    out.put_slice(&s.as_bytes()[..len as usize]);
}

/// The key of an offset commit record.
pub fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut out = BytesMut::with_capacity(10 + group.len() + topic.len());
    out.put_i16(KEY_VERSION_OFFSET);
    put_string(&mut out, group);
    put_string(&mut out, topic);
    out.put_i32(partition);
    out.freeze()
}

/// The value of an offset commit record.
pub fn offset_value(offset: &CommittedOffset) -> Bytes {
    let mut out = BytesMut::with_capacity(24 + offset.metadata.len());
    out.put_i16(VALUE_VERSION);
    out.put_i64(offset.offset);
    out.put_i32(offset.leader_epoch);
    put_string(&mut out, &offset.metadata);
    out.put_i64(offset.commit_timestamp);
    out.freeze()
}

/// A replayed offset record: `(group, topic, partition, value)`; `None` value = tombstone.
pub type OffsetRecord = (String, String, i32, Option<CommittedOffset>);

/// A big-endian reader of Kafka's non-flexible fields; `None` when the bytes run out.
pub(crate) struct Reader<'a> {
    /// What is left to read.
    pub bytes: &'a [u8],
}

impl Reader<'_> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }
    pub(crate) fn i8(&mut self) -> Option<i8> {
        self.take(1).map(|b| i8::from_be_bytes([b[0]]))
    }
    pub(crate) fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn i64(&mut self) -> Option<i64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(i64::from_be_bytes(a))
    }
    pub(crate) fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        let b = self.take(len)?;
        String::from_utf8(b.to_vec()).ok()
    }
}

/// Decode one record; `None` for keys that are not offset commits (or malformed ones,
/// which recovery logs and skips).
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<OffsetRecord> {
    let mut reader = Reader { bytes: key };
    // Versions 0 and 1 share the offset key layout.
    if !matches!(reader.i16()?, 0 | 1) {
        return None;
    }
    let group = reader.string()?;
    let topic = reader.string()?;
    let partition = reader.i32()?;
    let Some(value) = value else {
        return Some((group, topic, partition, None));
    };
    let mut reader = Reader { bytes: value };
    let version = reader.i16()?;
    let offset = reader.i64()?;
    let leader_epoch = if version >= 3 { reader.i32()? } else { -1 };
    let metadata = reader.string()?;
    let commit_timestamp = reader.i64()?;
    let committed = CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    };
    Some((group, topic, partition, Some(committed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the partition choice matches Kafka's and records round-trip.
    // Method: golden Java hashCode values; encode then decode a value and a tombstone.
    #[test]
    fn kafka_partitioning_and_round_trip() {
        // "group".hashCode() == 98629247 in Java; 98629247 % 50 == 47.
        assert_eq!(java_string_hash("group"), 98_629_247);
        assert_eq!(partition_for("group", 50), 47);
        assert_eq!(java_string_hash(""), 0);
        let committed = CommittedOffset {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 1_700_000_000_000,
        };
        let key = offset_key("g", "t", 7);
        let value = offset_value(&committed);
        assert_eq!(
            decode(&key, Some(&value)),
            Some(("g".into(), "t".into(), 7, Some(committed)))
        );
        assert_eq!(decode(&key, None), Some(("g".into(), "t".into(), 7, None)));
        assert_eq!(decode(&[0, 2, 0, 1, b'g'], None), None);
    }
}
