//! Offsets a transaction committed to a group (TxnOffsetCommit) that its transaction has
//! not yet ended: held by the group's coordinator, and by every replica of the group's
//! `__consumer_offsets` partition, until the transaction's marker reaches that partition.
//!
//! This is Kafka's design (KIP-98): the group coordinator appends a TxnOffsetCommit as a
//! *transactional* batch of offset records, stamped with the producer's id and epoch, to the
//! group's offsets partition; AddOffsetsToTxn made that partition one of the transaction's,
//! so the transaction coordinator's commit or abort marker lands there like in any data
//! partition. A commit marker turns the producer's pending offsets into committed ones, an
//! abort marker drops them. Because the log holds both the batch and the marker, the leader
//! (as it writes them), a follower (as it copies them) and a recovering node (as it replays
//! them) reach the same committed offsets, whichever broker or shard coordinates the
//! transaction.
//!
//! Invariants: the pending offsets of a producer are exactly the offset records of its
//! transactional batches since its last marker in this node's copy of the log (the latest
//! per group partition); a marker of a producer with nothing pending changes nothing.
//! Requests are refused before [`PENDING_PRODUCERS_MAX`] producers or
//! [`PENDING_OFFSETS_MAX`] offsets are pending; replay never refuses (the log already holds
//! the records).

use std::collections::BTreeMap;

use super::CommittedOffset;

/// Producers with pending transactional offsets that a TxnOffsetCommit may add to; each is
/// one open transaction, so this is the transaction table's own bound.
pub const PENDING_PRODUCERS_MAX: usize = crate::txn::TXNS_MAX;
/// Pending offsets over every producer (a group's own bound, `GROUP_OFFSETS_MAX`, counts
/// committed offsets only).
pub const PENDING_OFFSETS_MAX: usize = 1_000_000;

/// One pending offset: group, (topic, partition), value.
pub type PendingTxnOffset = (String, (String, i32), CommittedOffset);

/// The pending transactional offsets of every producer (see the module doc).
#[derive(Debug, Default)]
pub struct TxnOffsets {
    by_producer: BTreeMap<i64, Vec<PendingTxnOffset>>,
    /// Offsets held over every producer.
    total: usize,
}

impl TxnOffsets {
    /// True when a TxnOffsetCommit of `count` offsets by `producer_id` may be accepted:
    /// the producer already has pending offsets or there is room for one more producer, and
    /// room for `count` more offsets.
    pub fn has_room_for(&self, producer_id: i64, count: usize) -> bool {
        (self.by_producer.contains_key(&producer_id)
            || self.by_producer.len() < PENDING_PRODUCERS_MAX)
            && self.total.saturating_add(count) <= PENDING_OFFSETS_MAX
    }

    /// Hold `offsets` of `producer_id`'s open transaction; the latest per group partition
    /// wins, as with plain commits.
    pub fn stage(&mut self, producer_id: i64, offsets: Vec<PendingTxnOffset>) {
        let pending = self.by_producer.entry(producer_id).or_default();
        let before = pending.len();
        for offset in offsets {
            pending.retain(|(group, key, _)| !(*group == offset.0 && *key == offset.1));
            pending.push(offset);
        }
        self.total = self.total - before + pending.len();
    }

    /// The marker of `producer_id`'s transaction: its pending offsets, to apply (commit) or
    /// drop (abort).
    pub fn end(&mut self, producer_id: i64) -> Vec<PendingTxnOffset> {
        let ended = self.by_producer.remove(&producer_id).unwrap_or_default();
        self.total -= ended.len();
        ended
    }

    /// True when an open transaction holds an offset for this group partition (OffsetFetch
    /// with `require_stable` answers UNSTABLE_OFFSET_COMMIT for it, KIP-447).
    pub fn is_pending(&self, group: &str, topic: &str, partition: i32) -> bool {
        (self.by_producer.values().flatten())
            .any(|(g, (t, p), _)| g == group && t == topic && *p == partition)
    }

    /// Producers with pending offsets.
    pub fn producers(&self) -> usize {
        self.by_producer.len()
    }

    /// No producer is held with nothing pending; the total counts every offset held.
    pub fn invariants(&self) {
        assert!(
            self.by_producer.values().all(|p| !p.is_empty()),
            "a producer is pending with no offset"
        );
        let held: usize = self.by_producer.values().map(Vec::len).sum();
        assert_eq!(self.total, held, "pending offsets miscounted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(group: &str, partition: i32, offset: i64) -> PendingTxnOffset {
        let value = CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 0,
        };
        (group.into(), ("t".into(), partition), value)
    }

    #[test]
    fn the_latest_offset_per_partition_waits_for_the_marker() {
        let mut pending = TxnOffsets::default();
        pending.stage(7, vec![offset("g", 0, 5), offset("g", 1, 3)]);
        pending.stage(7, vec![offset("g", 0, 9)]);
        pending.stage(8, vec![offset("h", 0, 1)]);
        assert!(pending.is_pending("g", "t", 0));
        assert!(!pending.is_pending("g", "t", 2));
        let ended = pending.end(7);
        let offsets: Vec<(i32, i64)> = (ended.iter())
            .map(|(_, (_, p), c)| (*p, c.offset))
            .collect();
        assert_eq!(offsets, vec![(1, 3), (0, 9)]);
        assert!(!pending.is_pending("g", "t", 0));
        assert!(pending.end(7).is_empty(), "a second marker changes nothing");
        assert_eq!(pending.producers(), 1);
        assert!(pending.has_room_for(9, PENDING_OFFSETS_MAX - 1));
        assert!(!pending.has_room_for(9, PENDING_OFFSETS_MAX));
        pending.invariants();
    }
}
