//! The in-memory state of one partition log: offsets, logical segments, the appends still
//! waiting for a sync, and a small byte index for fetch `min_bytes`.
//!
//! The bytes themselves live in storage; this is the control plane. Pure logic, no outputs:
//! the node turns what these methods return into storage ops.
//!
//! Invariants (checked by [`PartitionLog::invariants`]):
//! - `0 <= log_start_offset <= high_watermark <= log_end_offset`;
//! - segments are contiguous, the first starts at or below the log start offset and the
//!   last (the active one) ends at the log end offset;
//! - the high watermark only covers appends whose sync completed: every offset in
//!   `[high_watermark, log_end_offset)` belongs to an entry of `unsynced`.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::producer_state::ProducerStates;
use crate::storage::RangeSummary;

/// Bound on logical segments per partition; past it the active segment keeps growing
/// instead of rolling (retention gets coarser, nothing breaks).
pub(crate) const SEGMENTS_MAX: usize = 100_000;
/// Bound on the byte index used for `min_bytes`; older offsets count as "plenty".
pub(crate) const BYTE_INDEX_ENTRIES_MAX: usize = 4_096;
/// Group commit keeps at most one sync in flight, so appends wait on at most two sync ids:
/// the one in flight and the next one.
pub(crate) const UNSYNCED_SYNCS_MAX: usize = 2;

/// A logical segment: the unit retention deletes. Closed segments are persisted as meta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Segment {
    /// First offset.
    pub base_offset: i64,
    /// One past the last offset.
    pub end_offset: i64,
    /// Sum of batch sizes.
    pub bytes: u64,
    /// Largest batch max timestamp, -1 when none.
    pub max_timestamp: i64,
    /// Base offset of the batch holding `max_timestamp`, -1 when none.
    pub max_timestamp_offset: i64,
}

impl Segment {
    /// An empty segment starting (and ending) at `offset`.
    pub fn empty(offset: i64) -> Self {
        Segment {
            base_offset: offset,
            end_offset: offset,
            bytes: 0,
            max_timestamp: -1,
            max_timestamp_offset: -1,
        }
    }

    fn is_empty(&self) -> bool {
        self.end_offset == self.base_offset
    }
}

/// What the node knows about a validated batch it is about to append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchAppend {
    /// Offsets skipped before the batch: 0, except on a follower whose leader's compaction
    /// removed the batches between this log's end and the batch (a gap in the offsets).
    pub gap: i64,
    /// Number of offsets the batch occupies (last_offset_delta + 1), >= 1.
    pub offset_count: i64,
    /// Batch size in bytes.
    pub bytes: u64,
    /// The batch's max timestamp (after any LogAppendTime rewrite).
    pub max_timestamp: i64,
}

/// When an append rolls the active segment: Kafka's `segment.bytes` and `segment.ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Roll {
    /// Roll before a batch that would take the segment past this many bytes.
    pub bytes: u64,
    /// Roll once the segment's first append is this many ms old.
    pub ms: i64,
    /// The wall clock now.
    pub wall_ms: i64,
}

impl Roll {
    /// Roll by size only (tests, and callers without a time bound).
    #[cfg(test)]
    pub fn bytes(bytes: u64) -> Roll {
        Roll {
            bytes,
            ms: i64::MAX,
            wall_ms: 0,
        }
    }
}

/// The result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    /// Assigned base offset.
    pub base_offset: i64,
    /// Last offset of the batch.
    pub last_offset: i64,
    /// The segment that was closed to make room, to be persisted.
    pub rolled: Option<Segment>,
}

/// The result of a retention pass that deleted something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Truncation {
    /// The new log start offset (storage must drop everything below it).
    pub log_start_offset: i64,
    /// Segments removed, oldest first.
    pub removed: Vec<Segment>,
}

/// How to rebuild a partition from what storage holds (see [`plan_recovery`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecoveryPlan {
    /// Log start offset after recovery.
    pub log_start_offset: i64,
    /// Log end offset after recovery.
    pub log_end_offset: i64,
    /// Closed segments that are consistent with storage.
    pub closed: Vec<Segment>,
    /// Base offsets of persisted segments to forget (inconsistent with storage).
    pub stale_segments: Vec<i64>,
    /// Storage still holds batches below the log start: truncate again.
    pub truncate_prefix: bool,
    /// Where the active segment starts; summarize storage from here.
    pub active_base_offset: i64,
}

/// Plan a partition's recovery from its persisted log start (`None` = never truncated),
/// its persisted closed segments (any order) and the storage bounds `(first, end)`.
pub(crate) fn plan_recovery(
    meta_log_start: Option<i64>,
    mut persisted: Vec<Segment>,
    storage_bounds: Option<(i64, i64)>,
) -> RecoveryPlan {
    let meta_log_start = meta_log_start.unwrap_or(0).max(0);
    // Truncation is applied before the log start meta is written, so storage can be ahead
    // of the meta (take the max) but should never be behind it (re-truncate if it is).
    let (log_start_offset, truncate_prefix, log_end_offset) = match storage_bounds {
        Some((first, end)) => (
            meta_log_start.max(first),
            first < meta_log_start,
            end.max(meta_log_start),
        ),
        None => (meta_log_start, false, meta_log_start),
    };
    persisted.sort_by_key(|segment| segment.base_offset);
    let mut closed: Vec<Segment> = Vec::new();
    let mut stale_segments = Vec::new();
    for mut segment in persisted {
        let expected_base = closed
            .last()
            .map_or(log_start_offset, |last| last.end_offset);
        let consistent = segment.end_offset > log_start_offset
            && segment.end_offset <= log_end_offset
            && segment.base_offset <= expected_base
            && segment.end_offset > expected_base;
        if !consistent {
            stale_segments.push(segment.base_offset);
            continue;
        }
        // Only the first kept segment can start below the log start (a partial truncation).
        segment.base_offset = expected_base;
        closed.push(segment);
    }
    let active_base_offset = closed
        .last()
        .map_or(log_start_offset, |last| last.end_offset);
    RecoveryPlan {
        log_start_offset,
        log_end_offset,
        closed,
        stale_segments,
        truncate_prefix,
        active_base_offset,
    }
}

/// Control-plane state of one partition log.
#[derive(Debug, Clone)]
pub(crate) struct PartitionLog {
    partition_key: u64,
    log_start_offset: i64,
    log_end_offset: i64,
    /// Offsets below it are durable here (synced).
    durable_end: i64,
    /// Cluster mode: the high watermark replication established (`None`: single node,
    /// where the durable end is the high watermark).
    replicated_hw: Option<i64>,
    /// Leader epochs and the offset each started at (cluster mode), oldest first.
    pub epochs: Vec<(i32, i64)>,
    /// Closed segments, then the active one; never empty.
    segments: VecDeque<Segment>,
    /// `(sync_id, log end offset after the last append covered by that sync)`.
    unsynced: VecDeque<(u64, i64)>,
    byte_index: ByteIndex,
    /// Idempotent producers writing here (see `producer_state`).
    pub producers: ProducerStates,
    /// Open and aborted transactions (see `txn`).
    pub txns: crate::txn::TxnIndex,
    /// The cleaner's checkpoint: every batch below it was cleaned (compaction) against a
    /// map that covered up to it; the next cleaning's offset map starts here.
    cleaned_to: i64,
    /// Bumped by every change that removes offsets at the log's end (a follower's
    /// truncation or reset): a compaction job read before it is stale.
    generation: u64,
    /// Wall-clock ms of the first append into the active segment (`segment.ms` rolls it
    /// once it is that old); `None` while it is empty or since a restart.
    active_since_ms: Option<i64>,
}

/// What one round of follower truncation decided (see [`PartitionLog::truncation_step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TruncationStep {
    /// Truncate the log to this offset (no-op when at or above the log end).
    pub target: i64,
    /// Ask the leader again about this epoch before fetching; `None`: fetch.
    pub ask_next: Option<i32>,
}

impl PartitionLog {
    /// A new, empty partition log.
    pub fn new(partition_key: u64) -> Self {
        PartitionLog {
            partition_key,
            log_start_offset: 0,
            log_end_offset: 0,
            durable_end: 0,
            replicated_hw: None,
            epochs: Vec::new(),
            segments: VecDeque::from([Segment::empty(0)]),
            unsynced: VecDeque::new(),
            byte_index: ByteIndex::new(0),
            producers: ProducerStates::default(),
            txns: crate::txn::TxnIndex::default(),
            cleaned_to: 0,
            generation: 0,
            active_since_ms: None,
        }
    }

    /// Rebuild from a recovery plan and the storage summary of the active segment. Every
    /// recovered offset is treated as durable: storage holds only what it kept.
    pub fn restore(partition_key: u64, plan: &RecoveryPlan, active: &RangeSummary) -> Self {
        let mut segments: VecDeque<Segment> = plan.closed.iter().copied().collect();
        let base = plan.active_base_offset;
        let has_data = active.batch_count > 0 && plan.log_end_offset > base;
        segments.push_back(Segment {
            base_offset: base,
            end_offset: plan.log_end_offset.max(base),
            bytes: if has_data { active.bytes } else { 0 },
            max_timestamp: if has_data { active.max_timestamp } else { -1 },
            max_timestamp_offset: if has_data {
                active.max_timestamp_offset
            } else {
                -1
            },
        });
        let log_end_offset = plan.log_end_offset.max(base);
        let log = PartitionLog {
            partition_key,
            log_start_offset: plan.log_start_offset,
            log_end_offset,
            durable_end: log_end_offset,
            replicated_hw: None,
            epochs: Vec::new(),
            segments,
            unsynced: VecDeque::new(),
            byte_index: ByteIndex::new(log_end_offset),
            producers: ProducerStates::default(),
            txns: crate::txn::TxnIndex::default(),
            cleaned_to: plan.log_start_offset,
            generation: 0,
            active_since_ms: None,
        };
        log.invariants();
        log
    }

    /// The storage key of this partition's log.
    pub fn partition_key(&self) -> u64 {
        self.partition_key
    }

    /// First offset still stored.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Next offset to assign.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    /// First offset not yet durable (consumers see only offsets below it).
    pub fn high_watermark(&self) -> i64 {
        match self.replicated_hw {
            Some(hw) => hw.min(self.durable_end).max(self.log_start_offset),
            None => self.durable_end,
        }
    }

    /// First offset not yet durable on this node.
    pub fn durable_end(&self) -> i64 {
        self.durable_end
    }

    /// Cluster mode: set the replicated high watermark (`None` back to single node).
    pub fn set_replicated_hw(&mut self, hw: Option<i64>) {
        self.replicated_hw = hw;
    }

    /// The replicated high watermark as set (cluster mode).
    pub fn replicated_hw(&self) -> Option<i64> {
        self.replicated_hw
    }

    /// The leader epoch of the last entry in the epoch cache (-1: none).
    pub fn last_epoch(&self) -> i32 {
        self.epochs.last().map_or(-1, |(epoch, _)| *epoch)
    }

    /// The leader epoch of the batch at `offset` by the epoch cache (the largest epoch
    /// starting at or below it; -1 when the cache knows none).
    pub fn epoch_at(&self, offset: i64) -> i32 {
        (self.epochs.iter())
            .take_while(|(_, start)| *start <= offset)
            .last()
            .map_or(-1, |(epoch, _)| *epoch)
    }

    /// Record that `epoch` starts at `offset` (a new leader's first offset, or a replicated
    /// batch of a newer epoch). Returns true when the cache changed.
    pub fn push_epoch(&mut self, epoch: i32, offset: i64) -> bool {
        if self.last_epoch() >= epoch {
            return false;
        }
        self.epochs.push((epoch, offset));
        true
    }

    /// Kafka's OffsetForLeaderEpoch on this log: the largest epoch <= `epoch` and the offset
    /// where it ends (the start of the next epoch, or the log end for the last one).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let Some(position) = self.epochs.iter().rposition(|(e, _)| *e <= epoch) else {
            // Older than anything we know: our log starts after it.
            let start = self.epochs.first().map_or(self.log_end_offset, |(_, s)| *s);
            return (-1, start.min(self.log_end_offset));
        };
        let found = self.epochs[position].0;
        let end = self
            .epochs
            .get(position + 1)
            .map_or(self.log_end_offset, |(_, start)| *start);
        (found, end.min(self.log_end_offset))
    }

    /// One round of a follower's truncation (KIP-101, with KIP-279's extra rounds), given
    /// the leader's answer to an epoch query: `leader_epoch` is the leader's largest epoch
    /// not above the one asked (-1: none), `leader_end` where it ends in the leader's log.
    ///
    /// Everything here from our first epoch above `leader_epoch` on diverges (the leader
    /// has none of those epochs there), and so does everything from `leader_end` on; the
    /// target is the lower of the two. When this log holds `leader_epoch` itself, the two
    /// logs agree below the target (one leader per epoch writes one history) and the
    /// follower fetches from there. When it does not, our range of the largest epoch below
    /// it may run past the leader's, so the follower asks again about that epoch
    /// (`ask_next`); each round asks about a smaller epoch, so the rounds end. With no
    /// epoch at all (`leader_epoch` -1) the leader's history starts after ours: only what
    /// lies above `leader_end` goes, as before KIP-279.
    pub fn truncation_step(&self, leader_epoch: i32, leader_end: i64) -> TruncationStep {
        let leo = self.log_end_offset;
        let mut target = if leader_end < 0 {
            leo
        } else {
            leader_end.min(leo)
        };
        if leader_epoch < 0 {
            return TruncationStep {
                target,
                ask_next: None,
            };
        }
        if let Some((_, start)) = self.epochs.iter().find(|(e, _)| *e > leader_epoch) {
            target = target.min(*start);
        }
        let holds = self.epochs.iter().any(|(e, _)| *e == leader_epoch);
        let ask_next = if holds {
            None
        } else {
            self.epochs
                .iter()
                .rev()
                .map(|(e, _)| *e)
                .find(|e| *e < leader_epoch)
        };
        TruncationStep { target, ask_next }
    }

    /// Empty the log and start it at `offset` (Kafka's truncate-fully-and-start-at): a
    /// follower whose log ends below its leader's log start can never fetch the offsets in
    /// between (retention or compaction removed them on the leader), so it drops what it
    /// has and replicates from the leader's log start. Returns the closed segments that
    /// were dropped (their meta entries go too). Producer and transaction state start
    /// empty, as the leader's did for the records below its log start. The caller emits
    /// the storage ops (truncate everything, then the log start meta).
    pub fn reset_to(&mut self, offset: i64) -> Vec<Segment> {
        assert!(
            offset > self.log_end_offset,
            "key={} reset to {offset} within the log (end {})",
            self.partition_key,
            self.log_end_offset
        );
        let mut dropped: Vec<Segment> = self.segments.drain(..).collect();
        dropped.pop(); // The active segment has no meta entry.
        self.segments.push_back(Segment::empty(offset));
        self.log_start_offset = offset;
        self.log_end_offset = offset;
        self.durable_end = offset;
        self.replicated_hw = self.replicated_hw.map(|_| offset);
        self.epochs.clear();
        self.unsynced.clear();
        self.byte_index = ByteIndex::new(offset);
        self.producers = ProducerStates::default();
        self.txns = crate::txn::TxnIndex::default();
        self.cleaned_to = offset;
        self.generation += 1;
        self.active_since_ms = None;
        self.invariants();
        dropped
    }

    /// Remove every offset at or above `offset` (a follower's divergent suffix). Returns true
    /// if anything was removed. Unsynced appends above it are forgotten; the caller emits
    /// the storage op.
    pub fn truncate_suffix_to(&mut self, offset: i64) -> bool {
        let offset = offset.max(self.log_start_offset);
        if offset >= self.log_end_offset {
            return false;
        }
        while self.segments.len() > 1 {
            let Some(last) = self.segments.back().copied() else {
                break;
            };
            if last.base_offset < offset {
                break;
            }
            self.segments.pop_back();
        }
        if let Some(active) = self.segments.back_mut() {
            active.end_offset = offset.max(active.base_offset);
            if active.max_timestamp_offset >= offset {
                // The max timestamp may have been in the removed part: forget it.
                active.max_timestamp = -1;
                active.max_timestamp_offset = -1;
            }
        }
        self.log_end_offset = offset;
        self.durable_end = self.durable_end.min(offset);
        if let Some(hw) = self.replicated_hw {
            self.replicated_hw = Some(hw.min(offset));
        }
        for entry in self.unsynced.iter_mut() {
            entry.1 = entry.1.min(offset);
        }
        let durable_end = self.durable_end;
        self.unsynced.retain(|(_, end)| *end > durable_end);
        self.txns.truncate_to(offset);
        self.epochs.retain(|(_, start)| *start < offset);
        self.byte_index = ByteIndex::new(offset);
        self.producers.truncate_to(offset);
        self.cleaned_to = self.cleaned_to.min(offset);
        self.generation += 1;
        true
    }

    /// Logical segments, oldest first; the last is the active one.
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter()
    }

    /// Append one batch at the log end (after `batch.gap` skipped offsets); it becomes
    /// visible once sync `sync_id` completes. The active segment rolls first when the batch
    /// would overflow `roll.bytes`, or when its first append is `roll.ms` old.
    pub fn append(&mut self, batch: BatchAppend, sync_id: u64, roll: Roll) -> Appended {
        assert!(
            batch.offset_count >= 1,
            "offset_count={}",
            batch.offset_count
        );
        assert!(batch.gap >= 0, "gap={}", batch.gap);
        let base_offset = self.log_end_offset + batch.gap;
        let end_offset = base_offset + batch.offset_count;
        let active = *self.active();
        let full = active.bytes > 0 && active.bytes.saturating_add(batch.bytes) > roll.bytes;
        let old = (self.active_since_ms)
            .is_some_and(|since| roll.wall_ms.saturating_sub(since) >= roll.ms);
        let mut rolled = None;
        if (full || (old && active.bytes > 0)) && self.segments.len() < SEGMENTS_MAX {
            rolled = Some(active);
            self.segments.push_back(Segment::empty(self.log_end_offset));
            self.active_since_ms = None;
        }
        if self.active_since_ms.is_none() {
            self.active_since_ms = Some(roll.wall_ms);
        }
        let active = self.active_mut();
        active.end_offset = end_offset;
        active.bytes = active.bytes.saturating_add(batch.bytes);
        if batch.max_timestamp > active.max_timestamp {
            active.max_timestamp = batch.max_timestamp;
            active.max_timestamp_offset = base_offset;
        }
        self.log_end_offset = end_offset;
        match self.unsynced.back_mut() {
            Some((last_sync_id, end)) if *last_sync_id == sync_id => *end = end_offset,
            last => {
                let last_sync_id = last.map_or(0, |(id, _)| *id);
                assert!(
                    sync_id > last_sync_id,
                    "sync ids regress: {sync_id} <= {last_sync_id}"
                );
                assert!(
                    self.unsynced.len() < UNSYNCED_SYNCS_MAX,
                    "unsynced={:?}",
                    self.unsynced
                );
                self.unsynced.push_back((sync_id, end_offset));
            }
        }
        self.byte_index.push(end_offset, batch.bytes);
        Appended {
            base_offset,
            last_offset: end_offset - 1,
            rolled,
        }
    }

    /// Sync `sync_id` (and every earlier one) completed; true if the high watermark moved.
    pub fn on_synced(&mut self, sync_id: u64) -> bool {
        let before = self.durable_end;
        while let Some(&(id, end_offset)) = self.unsynced.front() {
            if id > sync_id {
                break;
            }
            assert!(
                end_offset >= self.durable_end,
                "hw={} end={end_offset}",
                self.durable_end
            );
            self.durable_end = end_offset;
            self.unsynced.pop_front();
        }
        self.durable_end > before
    }

    /// The sync that makes `offset` durable: `None` when it already is (below the high
    /// watermark), else the id of the first pending sync whose appends reach past it.
    pub fn sync_covering(&self, offset: i64) -> Option<u64> {
        if offset < self.durable_end {
            return None;
        }
        let covering = self.unsynced.iter().find(|(_, end)| *end > offset);
        let (sync_id, _) = covering.expect("offsets above the high watermark wait for a sync");
        Some(*sync_id)
    }

    /// True while appends wait for a sync.
    pub fn has_unsynced(&self) -> bool {
        !self.unsynced.is_empty()
    }

    /// Bytes a consumer at `fetch_offset` could read below the high watermark; `u64::MAX`
    /// when the offset is older than the byte index remembers (then there is plenty).
    pub fn available_bytes(&self, fetch_offset: i64) -> u64 {
        if fetch_offset >= self.high_watermark() {
            return 0;
        }
        self.byte_index
            .bytes_between(fetch_offset, self.high_watermark())
            .unwrap_or(u64::MAX)
    }

    /// The largest timestamp below the high watermark and the base offset of its batch.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let mut best: Option<(i64, i64)> = None;
        for segment in self
            .segments
            .iter()
            .filter(|s| s.base_offset < self.high_watermark())
        {
            let offset = segment.max_timestamp_offset;
            let visible = offset >= self.log_start_offset && offset < self.high_watermark();
            if visible && best.is_none_or(|(ts, _)| segment.max_timestamp > ts) {
                best = Some((segment.max_timestamp, offset));
            }
        }
        best
    }

    /// Where a search for the first timestamp >= `timestamp` should start: the first
    /// segment below the high watermark whose max timestamp reaches it. `None` = no match.
    pub fn timestamp_search_start(&self, timestamp: i64) -> Option<i64> {
        self.segments
            .iter()
            .filter(|s| s.base_offset < self.high_watermark() && !s.is_empty())
            .find(|s| s.max_timestamp >= timestamp)
            .map(|s| s.base_offset.max(self.log_start_offset))
    }

    /// Delete whole segments below the high watermark: those whose newest record is older
    /// than `retention_ms`, then the oldest while the rest still holds `retention_bytes`.
    /// The active segment goes only when it is entirely expired by time (rolled first).
    #[cfg(test)]
    pub fn enforce_retention(
        &mut self,
        now_ms: i64,
        retention_ms: i64,
        retention_bytes: i64,
    ) -> Option<Truncation> {
        self.enforce_retention_below(now_ms, retention_ms, retention_bytes, i64::MAX)
    }

    /// [`PartitionLog::enforce_retention`], deleting only segments that end at or below
    /// `bound` (a tiered partition's confirmed remote end: a local copy goes only once the
    /// object store holds it).
    pub fn enforce_retention_below(
        &mut self,
        now_ms: i64,
        retention_ms: i64,
        retention_bytes: i64,
        bound: i64,
    ) -> Option<Truncation> {
        let bound = bound.min(self.high_watermark());
        let mut removed = Vec::new();
        while let Some(first) = self.segments.front().copied() {
            if retention_ms < 0 {
                break;
            }
            let durable = first.end_offset <= bound && !first.is_empty();
            // A segment without timestamps (producers sent -1) never expires by time.
            let expired = first.max_timestamp >= 0
                && now_ms.saturating_sub(first.max_timestamp) > retention_ms;
            if !(durable && expired) {
                break;
            }
            if self.segments.len() == 1 {
                self.segments.push_back(Segment::empty(self.log_end_offset));
            }
            removed.extend(self.segments.pop_front());
        }
        if let Ok(limit) = u64::try_from(retention_bytes) {
            let mut total: u64 = self.segments.iter().map(|s| s.bytes).sum();
            while self.segments.len() > 1 {
                let Some(first) = self.segments.front().copied() else {
                    break;
                };
                if first.end_offset > bound || total - first.bytes < limit {
                    break;
                }
                total -= first.bytes;
                removed.extend(self.segments.pop_front());
            }
        }
        let first = self.segments.front().copied()?;
        if removed.is_empty() {
            return None;
        }
        assert!(
            first.base_offset >= self.log_start_offset,
            "retention moved log start back"
        );
        self.log_start_offset = first.base_offset;
        Some(Truncation {
            log_start_offset: self.log_start_offset,
            removed,
        })
    }

    /// DeleteRecords: move the log start offset up to `offset` (at most the high
    /// watermark; a follower passes its own), dropping the segments that end at or below
    /// it. The log start may then lie inside the first segment left: storage keeps the
    /// batch holding it whole, and reads never start below it. `None` when `offset` is not
    /// above the log start (nothing to delete).
    pub fn delete_records_below(&mut self, offset: i64) -> Option<Truncation> {
        assert!(
            offset <= self.high_watermark(),
            "key={} delete below {offset}, above the high watermark {}",
            self.partition_key,
            self.high_watermark()
        );
        if offset <= self.log_start_offset {
            return None;
        }
        let mut removed = Vec::new();
        while let Some(first) = self.segments.front().copied() {
            if first.end_offset > offset || first.is_empty() {
                break;
            }
            // The whole log goes: a fresh active segment takes over at the end.
            if self.segments.len() == 1 {
                self.segments.push_back(Segment::empty(self.log_end_offset));
            }
            removed.extend(self.segments.pop_front());
        }
        self.log_start_offset = offset;
        self.cleaned_to = self.cleaned_to.max(offset);
        self.invariants();
        Some(Truncation {
            log_start_offset: offset,
            removed,
        })
    }

    /// Close the active segment if it holds anything (tests build closed segments so).
    /// Returns the closed segment; `None` when the active one is empty or the segment bound
    /// is reached.
    #[cfg(test)]
    pub fn roll(&mut self) -> Option<Segment> {
        let active = *self.active();
        if active.is_empty() || self.segments.len() >= SEGMENTS_MAX {
            return None;
        }
        self.segments.push_back(Segment::empty(self.log_end_offset));
        Some(active)
    }

    /// The cleaner's checkpoint (see the field).
    pub fn cleaned_to(&self) -> i64 {
        self.cleaned_to
    }

    /// Move the cleaner's checkpoint (a job's result, or recovery's persisted one), kept
    /// within the log.
    pub fn set_cleaned_to(&mut self, offset: i64) {
        self.cleaned_to = offset.clamp(self.log_start_offset, self.log_end_offset);
    }

    /// Bumped when offsets at the log end are removed (see the field).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The active segment: where it starts, and whether it holds data.
    pub fn active_segment(&self) -> Segment {
        *self.active()
    }

    /// A compaction replaced the batch at `base_offset` (`old_bytes` long) with one of
    /// `new_bytes` (0: removed). Offsets do not change; the closed segment holding it
    /// counts the new size. Returns that segment, to be persisted again; `None` when no
    /// closed segment holds the batch (retention removed it meanwhile).
    pub fn replace_batch(
        &mut self,
        base_offset: i64,
        old_bytes: u64,
        new_bytes: u64,
    ) -> Option<Segment> {
        let active_base = self.active().base_offset;
        assert!(
            base_offset < active_base,
            "key={} compaction reached the active segment (batch {base_offset}, active \
             from {active_base})",
            self.partition_key
        );
        let segment = (self.segments.iter_mut())
            .find(|s| s.base_offset <= base_offset && base_offset < s.end_offset)?;
        segment.bytes = segment
            .bytes
            .saturating_sub(old_bytes)
            .saturating_add(new_bytes);
        Some(*segment)
    }

    /// Assert every invariant listed in the module docs.
    pub fn invariants(&self) {
        let key = self.partition_key;
        self.txns.invariants(self.log_end_offset);
        assert!(
            self.log_start_offset >= 0,
            "key={key} log_start={}",
            self.log_start_offset
        );
        assert!(
            self.log_start_offset <= self.durable_end,
            "key={key} log_start={} hw={}",
            self.log_start_offset,
            self.durable_end
        );
        assert!(
            self.durable_end <= self.log_end_offset,
            "key={key} hw={} leo={}",
            self.durable_end,
            self.log_end_offset
        );
        let first = self
            .segments
            .front()
            .expect("a partition always has an active segment");
        assert!(
            first.base_offset <= self.log_start_offset,
            "key={key} first={first:?}"
        );
        let active = self.active();
        assert_eq!(
            active.end_offset, self.log_end_offset,
            "key={key} active={active:?}"
        );
        for pair in self.segments.iter().zip(self.segments.iter().skip(1)) {
            assert_eq!(
                pair.0.end_offset, pair.1.base_offset,
                "key={key} gap {pair:?}"
            );
        }
        for segment in &self.segments {
            assert!(
                segment.base_offset <= segment.end_offset,
                "key={key} {segment:?}"
            );
        }
        assert!(self.segments.len() <= SEGMENTS_MAX, "key={key}");
        // The cleaner's checkpoint lies within the log (truncations pull it back).
        assert!(
            self.cleaned_to <= self.log_end_offset,
            "key={key} cleaned_to={} leo={}",
            self.cleaned_to,
            self.log_end_offset
        );
        self.unsynced_invariants();
        self.producers.invariants();
    }

    fn unsynced_invariants(&self) {
        let key = self.partition_key;
        assert!(
            self.unsynced.len() <= UNSYNCED_SYNCS_MAX,
            "key={key} {:?}",
            self.unsynced
        );
        let mut previous = (0, self.durable_end);
        for &(sync_id, end_offset) in &self.unsynced {
            assert!(
                sync_id > previous.0,
                "key={key} unsynced={:?}",
                self.unsynced
            );
            assert!(
                end_offset > previous.1,
                "key={key} unsynced={:?}",
                self.unsynced
            );
            previous = (sync_id, end_offset);
        }
        // Everything above the high watermark waits for a sync, nothing else does.
        assert_eq!(
            previous.1, self.log_end_offset,
            "key={key} unsynced={:?}",
            self.unsynced
        );
    }

    fn active(&self) -> &Segment {
        self.segments
            .back()
            .expect("a partition always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .back_mut()
            .expect("a partition always has an active segment")
    }
}

/// Cumulative bytes at the end of the most recent batches, enough to answer "how many
/// bytes lie between these offsets" for consumers near the tail (the ones long-polling).
#[derive(Debug, Clone)]
struct ByteIndex {
    /// The index is complete from this offset on.
    start_offset: i64,
    /// Cumulative bytes at `start_offset`.
    start_bytes: u64,
    /// `(end offset of a batch, cumulative bytes at that end)`, increasing.
    entries: VecDeque<(i64, u64)>,
}

impl ByteIndex {
    fn new(start_offset: i64) -> Self {
        ByteIndex {
            start_offset,
            start_bytes: 0,
            entries: VecDeque::new(),
        }
    }

    fn push(&mut self, end_offset: i64, bytes: u64) {
        let total = self
            .entries
            .back()
            .map_or(self.start_bytes, |e| e.1)
            .saturating_add(bytes);
        if self.entries.len() >= BYTE_INDEX_ENTRIES_MAX {
            if let Some((offset, cumulative)) = self.entries.pop_front() {
                self.start_offset = offset;
                self.start_bytes = cumulative;
            }
        }
        self.entries.push_back((end_offset, total));
    }

    /// Bytes of the batches that end in `(from, to]`; `None` if `from` predates the index.
    fn bytes_between(&self, from: i64, to: i64) -> Option<u64> {
        if from < self.start_offset {
            return None;
        }
        Some(
            self.cumulative_at(to)
                .saturating_sub(self.cumulative_at(from)),
        )
    }

    /// Cumulative bytes of every batch ending at or before `offset`.
    fn cumulative_at(&self, offset: i64) -> u64 {
        let ended = self.entries.partition_point(|(end, _)| *end <= offset);
        match ended
            .checked_sub(1)
            .and_then(|index| self.entries.get(index))
        {
            Some((_, cumulative)) => *cumulative,
            None => self.start_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(offset_count: i64, bytes: u64, max_timestamp: i64) -> BatchAppend {
        BatchAppend {
            gap: 0,
            offset_count,
            bytes,
            max_timestamp,
        }
    }

    /// A log of `end` offsets whose epochs start as listed.
    fn log_with_epochs(end: i64, epochs: &[(i32, i64)]) -> PartitionLog {
        let mut log = PartitionLog::new(9);
        log.append(batch(end, 10, 1), 1, Roll::bytes(1 << 30));
        for (epoch, start) in epochs {
            assert!(log.push_epoch(*epoch, *start));
        }
        log
    }

    /// Run the rounds a follower runs against a leader's epoch cache (the leader's
    /// OffsetForLeaderEpoch is `end_offset_for_epoch`); returns the follower's final end.
    fn truncate_against(follower: &mut PartitionLog, leader: &PartitionLog) -> (i64, usize) {
        let mut asked = follower.last_epoch();
        for round in 1..=16 {
            let (epoch, end) = leader.end_offset_for_epoch(asked);
            let step = follower.truncation_step(epoch, end);
            follower.truncate_suffix_to(step.target);
            match step.ask_next {
                Some(next) => {
                    assert!(
                        next < asked,
                        "round {round} did not ask about an older epoch"
                    );
                    asked = next;
                }
                None => return (follower.log_end_offset(), round),
            }
        }
        panic!("truncation did not end");
    }

    // Goal: KIP-101's one round when the follower holds the leader's answer epoch.
    // Method: the follower has the leader's epochs plus a suffix of an epoch the leader
    // never had; one round truncates to the leader's end of the shared epoch.
    #[test]
    fn one_round_when_the_follower_holds_the_epoch() {
        let leader = log_with_epochs(80, &[(0, 0), (1, 40), (3, 60)]);
        let mut follower = log_with_epochs(70, &[(0, 0), (1, 40), (2, 55)]);
        assert_eq!(truncate_against(&mut follower, &leader), (55, 1));
    }

    // Goal: KIP-279's extra rounds. The follower lacks the epoch the leader answers with,
    // and its older epoch runs past the leader's: one round (the pre-KIP-279 rule) keeps
    // offsets 40..50 that the leader wrote under epoch 1 and the follower under epoch 0.
    // Method: leader [0@0, 1@40, 3@60], follower [0@0, 2@50]; the rounds must end at 40.
    #[test]
    fn missing_epoch_takes_another_round() {
        let leader = log_with_epochs(80, &[(0, 0), (1, 40), (3, 60)]);
        let mut follower = log_with_epochs(70, &[(0, 0), (2, 50)]);
        let step = follower.truncation_step(1, 60);
        assert_eq!(
            step,
            TruncationStep {
                target: 50,
                ask_next: Some(0)
            }
        );
        assert_eq!(truncate_against(&mut follower, &leader), (40, 2));
    }

    // Goal: a follower whose log is a prefix of the leader's keeps all of it.
    #[test]
    fn a_prefix_is_kept() {
        let leader = log_with_epochs(80, &[(0, 0), (4, 30)]);
        let mut follower = log_with_epochs(35, &[(0, 0), (4, 30)]);
        assert_eq!(truncate_against(&mut follower, &leader), (35, 1));
        let mut behind = log_with_epochs(20, &[(0, 0)]);
        assert_eq!(truncate_against(&mut behind, &leader), (20, 1));
    }

    // Goal: the leader's history starts after ours (no common epoch): only what lies
    // above the leader's first epoch start goes.
    #[test]
    fn no_common_epoch_truncates_to_the_leaders_first_epoch() {
        let leader = log_with_epochs(80, &[(5, 10)]);
        let mut follower = log_with_epochs(50, &[(2, 0)]);
        assert_eq!(truncate_against(&mut follower, &leader), (10, 1));
    }

    // Goal: a follower that fell below its leader's log start starts over there: empty,
    // consistent, appending at the new start, with no epoch or producer state left.
    // Method: a log with closed segments, epochs and unsynced appends is reset past its end.
    #[test]
    fn reset_starts_an_empty_log_at_the_offset() {
        let mut log = log_with_epochs(30, &[(0, 0), (2, 10)]);
        assert!(log.roll().is_some());
        log.append(batch(5, 10, 2), 2, Roll::bytes(1 << 30));
        log.set_replicated_hw(Some(20));
        let dropped = log.reset_to(100);
        assert_eq!(dropped.len(), 1, "the closed segment's meta goes");
        assert_eq!(
            (
                log.log_start_offset(),
                log.log_end_offset(),
                log.durable_end()
            ),
            (100, 100, 100)
        );
        assert_eq!(log.replicated_hw(), Some(100));
        assert_eq!(log.last_epoch(), -1);
        assert!(!log.has_unsynced());
        assert_eq!(
            log.append(batch(3, 10, 3), 3, Roll::bytes(1 << 30))
                .base_offset,
            100
        );
        log.invariants();
    }

    // Goal: offsets are assigned contiguously and the hw follows syncs, not appends.
    // Method: append under two sync ids, complete them one at a time.
    #[test]
    fn high_watermark_follows_syncs() {
        let mut log = PartitionLog::new(7);
        assert_eq!(
            log.append(batch(3, 100, 10), 1, Roll::bytes(1 << 30))
                .base_offset,
            0
        );
        assert_eq!(
            log.append(batch(2, 100, 11), 1, Roll::bytes(1 << 30))
                .base_offset,
            3
        );
        let appended = log.append(batch(1, 100, 12), 2, Roll::bytes(1 << 30));
        assert_eq!((appended.base_offset, appended.last_offset), (5, 5));
        log.invariants();
        assert_eq!((log.high_watermark(), log.log_end_offset()), (0, 6));
        assert!(log.on_synced(1));
        assert_eq!(log.high_watermark(), 5);
        assert!(!log.on_synced(1));
        assert!(log.on_synced(2));
        assert_eq!(log.high_watermark(), 6);
        assert!(!log.has_unsynced());
        log.invariants();
    }

    // Goal: segments roll when the next batch would overflow segment.bytes, and retention
    // by bytes deletes whole closed segments only. Method: 10-byte segments, 6-byte batches.
    #[test]
    fn segments_roll_and_retention_by_bytes() {
        let mut log = PartitionLog::new(1);
        let mut rolled = 0;
        for i in 0..5 {
            rolled += usize::from(
                log.append(batch(1, 6, i), 1, Roll::bytes(10))
                    .rolled
                    .is_some(),
            );
        }
        assert_eq!(rolled, 4);
        log.on_synced(1);
        // 5 segments of 6 bytes; keep at least 12 bytes: delete the 3 oldest.
        let truncation = log
            .enforce_retention(100, -1, 12)
            .expect("something to delete");
        assert_eq!(truncation.log_start_offset, 3);
        assert_eq!(truncation.removed.len(), 3);
        assert_eq!(log.log_start_offset(), 3);
        assert!(log.enforce_retention(100, -1, 12).is_none());
        log.invariants();
    }

    // Goal: retention by time deletes expired segments including an entirely expired
    // active one (after rolling), but never data above the high watermark.
    // Method: two segments with old timestamps; expire with and without a sync.
    #[test]
    fn retention_by_time_respects_high_watermark() {
        let mut log = PartitionLog::new(1);
        log.append(batch(2, 6, 1_000), 1, Roll::bytes(10));
        log.append(batch(2, 6, 2_000), 1, Roll::bytes(10));
        assert!(
            log.enforce_retention(1_000_000, 10, -1).is_none(),
            "nothing is durable yet"
        );
        log.on_synced(1);
        let truncation = log.enforce_retention(1_000_000, 10, -1).expect("expired");
        assert_eq!(truncation.removed.len(), 2);
        assert_eq!(log.log_start_offset(), 4);
        assert_eq!(log.high_watermark(), 4);
        log.invariants();
        // The next append lands in the fresh active segment at offset 4.
        assert_eq!(
            log.append(batch(1, 6, 3_000), 2, Roll::bytes(10))
                .base_offset,
            4
        );
        log.invariants();
    }

    // Goal: a follower appends a batch past its log end (its leader's compaction removed
    // what lay between): the gap's offsets are skipped, never assigned, and the log stays
    // consistent (segments contiguous, the gap waits for the batch's sync).
    #[test]
    fn a_gap_before_a_batch_is_skipped() {
        let mut log = PartitionLog::new(1);
        log.append(batch(2, 10, 1), 1, Roll::bytes(1 << 30));
        let gapped = BatchAppend {
            gap: 5,
            ..batch(3, 10, 2)
        };
        let appended = log.append(gapped, 1, Roll::bytes(1 << 30));
        assert_eq!((appended.base_offset, appended.last_offset), (7, 9));
        assert_eq!(log.log_end_offset(), 10);
        log.invariants();
        assert_eq!(
            log.high_watermark(),
            0,
            "the gap is covered by the batch's sync"
        );
        log.on_synced(1);
        assert_eq!(log.high_watermark(), 10);
        log.invariants();
    }

    // Goal: `segment.ms` rolls the active segment once its first append is that old, and
    // only when it holds data; `segment.bytes` alone does not.
    #[test]
    fn segments_roll_by_age() {
        let roll = |wall_ms| Roll {
            bytes: 1 << 30,
            ms: 1_000,
            wall_ms,
        };
        let mut log = PartitionLog::new(1);
        assert!(log.append(batch(1, 10, 0), 1, roll(5_000)).rolled.is_none());
        assert!(log.append(batch(1, 10, 0), 1, roll(5_999)).rolled.is_none());
        let rolled = log.append(batch(1, 10, 0), 1, roll(6_000)).rolled;
        assert_eq!(rolled.map(|s| (s.base_offset, s.end_offset)), Some((0, 2)));
        // The new segment's clock starts at its first append.
        assert!(log.append(batch(1, 10, 0), 1, roll(6_500)).rolled.is_none());
        assert!(log.append(batch(1, 10, 0), 2, roll(7_000)).rolled.is_some());
        log.invariants();
    }

    // Goal: a compaction's replacement shrinks the closed segment holding the batch, moves
    // no offsets, and the checkpoint stays within the log when a follower truncates.
    #[test]
    fn replacements_shrink_their_segment() {
        let mut log = PartitionLog::new(1);
        for _ in 0..4 {
            log.append(batch(2, 100, 0), 1, Roll::bytes(200));
        }
        log.on_synced(1);
        let closed: Vec<Segment> = log.segments().copied().collect();
        assert_eq!(closed.len(), 2, "{closed:?}");
        let segment = log.replace_batch(2, 100, 40).expect("closed segment");
        assert_eq!((segment.base_offset, segment.bytes), (0, 140));
        assert_eq!(log.replace_batch(0, 100, 0).map(|s| s.bytes), Some(40));
        assert_eq!(log.log_end_offset(), 8);
        let generation = log.generation();
        log.set_cleaned_to(4);
        assert!(log.truncate_suffix_to(3));
        assert_eq!(log.cleaned_to(), 3);
        assert!(
            log.generation() > generation,
            "a truncation makes running jobs stale"
        );
        log.invariants();
    }

    // Goal: min_bytes accounting: exact near the tail, "plenty" beyond the index.
    #[test]
    fn available_bytes_near_and_far() {
        let mut log = PartitionLog::new(1);
        for _ in 0..(BYTE_INDEX_ENTRIES_MAX + 10) {
            log.append(batch(1, 10, 0), 1, Roll::bytes(u64::MAX));
        }
        log.on_synced(1);
        let hw = log.high_watermark();
        assert_eq!(log.available_bytes(hw), 0);
        assert_eq!(log.available_bytes(hw - 3), 30);
        assert_eq!(log.available_bytes(0), u64::MAX);
    }

    // Goal: recovery planning trusts storage over meta and drops inconsistent segments.
    // Method: a truncation whose meta was lost, a segment beyond the log end.
    #[test]
    fn recovery_plan_reconciles_meta_with_storage() {
        let seg = |base, end| Segment {
            base_offset: base,
            end_offset: end,
            bytes: 1,
            max_timestamp: 5,
            max_timestamp_offset: base,
        };
        let plan = plan_recovery(
            Some(0),
            vec![seg(10, 20), seg(0, 10), seg(20, 40)],
            Some((10, 30)),
        );
        assert_eq!(plan.log_start_offset, 10);
        assert!(!plan.truncate_prefix);
        assert_eq!(plan.closed, vec![seg(10, 20)]);
        assert_eq!(plan.stale_segments, vec![0, 20]);
        assert_eq!(plan.active_base_offset, 20);
        let summary = RangeSummary {
            start_offset: 20,
            end_offset: 30,
            bytes: 9,
            batch_count: 2,
            max_timestamp: 7,
            max_timestamp_offset: 25,
        };
        let log = PartitionLog::restore(3, &plan, &summary);
        assert_eq!(
            (
                log.log_start_offset(),
                log.high_watermark(),
                log.log_end_offset()
            ),
            (10, 30, 30)
        );
        assert_eq!(log.max_timestamp(), Some((7, 25)));
        // Storage behind the meta: truncate again; an empty log keeps its offsets.
        let plan = plan_recovery(Some(15), vec![], Some((10, 30)));
        assert!(plan.truncate_prefix);
        assert_eq!(plan.log_start_offset, 15);
        let plan = plan_recovery(Some(42), vec![], None);
        assert_eq!((plan.log_start_offset, plan.log_end_offset), (42, 42));
    }
}
