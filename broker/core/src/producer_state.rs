//! Idempotent-producer state of one partition: per producer id, its epoch, the metadata of
//! its last [`PRODUCER_BATCHES_CACHED`] batches and when it last wrote. Produce consults it
//! before appending a batch that carries a producer id ([`ProducerStates::check`]) and
//! records every such batch it appends ([`ProducerStates::record`]).
//!
//! The rules are Kafka's (`ProducerStateManager` / `ProducerAppendInfo`):
//! - a batch of an older epoch than the producer's current one is fenced:
//!   INVALID_PRODUCER_EPOCH;
//! - a newer epoch (or a producer never seen) must start at sequence 0, else
//!   OUT_OF_ORDER_SEQUENCE_NUMBER;
//! - within an epoch, a batch whose (first, last) sequence equals one of the cached batches is
//!   a retry of a batch already in the log: it is answered with the original offsets and not
//!   appended again;
//! - otherwise its first sequence must follow the last one (wrapping at `i32::MAX` to 0),
//!   else OUT_OF_ORDER_SEQUENCE_NUMBER;
//! - a transaction marker raises the producer's epoch to its own (Kafka's
//!   `appendEndTxnMarker`): a coordinator that aborts a re-initialized producer's
//!   transaction writes the markers at the bumped epoch, and that is what fences the zombie
//!   at every partition of the transaction whose leader is not the coordinator's node (or,
//!   in a broker of several shards, not its shard), where the coordinator's own state
//!   cannot be consulted. A producer that only a marker has named holds no batch.
//!
//! Unlike Kafka >= 2.5, a producer id without state here must start at sequence 0 (Kafka
//! accepts any sequence then, to survive state lost to retention). Weir never drops state
//! on retention, only on `producer.id.expiration.ms`, so an unknown producer sending a
//! later sequence is one whose state expired; refusing it is the conservative choice (it
//! cannot be told apart from a retry of a batch that is already in the log).
//!
//! Persistence (why a snapshot plus a replay): the state must survive restarts, or a retry
//! arriving after a restart would be appended twice. Rebuilding it by scanning whole logs
//! at recovery is simple but costs a read of every byte stored; scanning only a tail misses
//! producers that were idle for a while. So, like Kafka, the node writes a snapshot of the
//! table to meta (`producers/{partition_key}`) at each segment roll and on the retention
//! timer when the table changed, and recovery loads it and replays the batch headers stored
//! after the snapshot's offset. Storage keeps a prefix of the writes in emission order and a
//! snapshot is emitted after the appends it covers, so a durable snapshot never describes
//! batches that are not durable; a snapshot beyond the recovered log end is discarded and
//! the whole log replayed instead.
//!
//! Appends not yet synced are in the table too: a retry of a batch whose sync is still in
//! flight is recognised as a duplicate, and the node parks its answer until that sync
//! completes (see `node::produce`).
//!
//! Invariants (checked by [`ProducerStates::invariants`]): every entry holds at most
//! [`PRODUCER_BATCHES_CACHED`] batches (none only when a marker raised its epoch) of
//! increasing offsets whose sequences follow each other; at most
//! [`PRODUCERS_PER_PARTITION_MAX`] producers per partition.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use weir_wire::batch::BatchHeader;
use weir_wire::error::ErrorCode;

/// Batches remembered per producer for duplicate detection: Kafka's 5, which is also the
/// largest `max.in.flight.requests.per.connection` an idempotent producer may use.
pub(crate) const PRODUCER_BATCHES_CACHED: usize = 5;
/// Bound on producers remembered per partition. Past it the producer that wrote least
/// recently is forgotten (it then has to start a new producer id or epoch).
pub(crate) const PRODUCERS_PER_PARTITION_MAX: usize = 50_000;

/// Where a cached batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BatchMetadata {
    /// Sequence of the first record.
    pub first_seq: i32,
    /// Sequence of the last record.
    pub last_seq: i32,
    /// Offset of the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// LogAppendTime given to the batch, -1 for CreateTime topics.
    pub log_append_time_ms: i64,
}

/// One producer's state in one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProducerEntry {
    /// Current epoch.
    pub epoch: i16,
    /// The last batches of `epoch`, oldest first.
    pub batches: VecDeque<BatchMetadata>,
    /// Wall-clock ms of its last write (expiry counts from here).
    pub last_write_ms: i64,
}

/// What to do with a batch that passed the sequence checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// A new batch, in sequence: append it.
    Append,
    /// A retry of a batch already appended: answer with its offsets, append nothing.
    Duplicate(BatchMetadata),
}

/// The persisted form: the table as of every batch below `offset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProducerSnapshot {
    /// Log end offset when the snapshot was taken.
    pub offset: i64,
    /// Producer id and state.
    pub producers: Vec<(i64, ProducerEntry)>,
}

/// The producer table of one partition.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProducerStates {
    producers: BTreeMap<i64, ProducerEntry>,
    /// Changed since the last snapshot was emitted.
    changed: bool,
}

/// The sequence of the last record of a batch: Kafka's wrapping increment.
pub(crate) fn last_sequence(base_sequence: i32, last_offset_delta: i32) -> i32 {
    if base_sequence > i32::MAX - last_offset_delta {
        last_offset_delta - (i32::MAX - base_sequence) - 1
    } else {
        base_sequence + last_offset_delta
    }
}

/// True when `next` is the sequence right after `last`. Sequences wrap from `i32::MAX` to
/// 0 (Kafka's rule), so a long-lived producer never runs out; `last == -1` (nothing cached)
/// is followed by 0.
fn in_sequence(last: i32, next: i32) -> bool {
    (last != i32::MAX && next == last + 1) || (last == i32::MAX && next == 0)
}

impl ProducerStates {
    /// Decide what to do with a batch of producer `header.producer_id` (>= 0).
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceCheck, (ErrorCode, String)> {
        let producer_id = header.producer_id;
        let epoch = header.producer_epoch;
        let first_seq = header.base_sequence;
        if epoch < 0 || first_seq < 0 {
            let message = format!(
                "producer {producer_id}: epoch {epoch} and base sequence {first_seq} must be >= 0"
            );
            return Err((ErrorCode::INVALID_RECORD, message));
        }
        let last_seq = last_sequence(first_seq, header.last_offset_delta);
        let Some(entry) = self.producers.get(&producer_id) else {
            // PLANTED BUG (weir-sim's planted suite only; never in a real build): no
            // sequence check for a producer without state (with recovery starting empty,
            // a retry after a restart is appended again).
            if crate::planted::on(crate::planted::Bug::SkipSeqAfterRestart) {
                return Ok(SequenceCheck::Append);
            }
            if first_seq != 0 {
                let message = format!(
                    "producer {producer_id} is unknown here and must start at sequence 0, \
                     not {first_seq}"
                );
                return Err((ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, message));
            }
            return Ok(SequenceCheck::Append);
        };
        // PLANTED BUG (weir-sim's planted suite only; never in a real build): a batch of a
        // fenced (older) epoch is appended.
        if epoch < entry.epoch && crate::planted::on(crate::planted::Bug::AcceptFencedEpoch) {
            return Ok(SequenceCheck::Append);
        }
        if epoch < entry.epoch {
            let message = format!(
                "producer {producer_id} epoch {epoch} is older than the current epoch {}",
                entry.epoch
            );
            return Err((ErrorCode::INVALID_PRODUCER_EPOCH, message));
        }
        if epoch > entry.epoch {
            if first_seq != 0 {
                let message = format!(
                    "producer {producer_id}: new epoch {epoch} must start at sequence 0, \
                     not {first_seq}"
                );
                return Err((ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, message));
            }
            return Ok(SequenceCheck::Append);
        }
        let duplicate = entry
            .batches
            .iter()
            .find(|batch| batch.first_seq == first_seq && batch.last_seq == last_seq);
        if let Some(batch) = duplicate {
            // PLANTED BUG (weir-sim's planted suite only; never in a real build): append a
            // retried batch again instead of answering with its original offsets.
            if crate::planted::on(crate::planted::Bug::SkipDedup) {
                return Ok(SequenceCheck::Append);
            }
            return Ok(SequenceCheck::Duplicate(*batch));
        }
        let last = entry.batches.back().map_or(-1, |batch| batch.last_seq);
        if !in_sequence(last, first_seq) {
            let message = format!(
                "producer {producer_id} epoch {epoch}: expected sequence {}, got {first_seq}",
                last_sequence(last, 1)
            );
            return Err((ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, message));
        }
        Ok(SequenceCheck::Append)
    }

    /// Remember an appended batch of `producer_id`/`epoch` (a new epoch replaces the old
    /// one's batches).
    pub fn record(&mut self, producer_id: i64, epoch: i16, batch: BatchMetadata, now_ms: i64) {
        assert!(producer_id >= 0, "producer_id={producer_id}");
        assert!(
            batch.base_offset <= batch.last_offset,
            "producer {producer_id}: {batch:?}"
        );
        let entry = self.entry_for(producer_id, epoch, now_ms);
        // Fencing rests on this: `check` refuses an older epoch and `replay` skips one, so
        // the table's epoch for a producer never goes back.
        assert!(
            epoch >= entry.epoch,
            "producer {producer_id}: epoch {} -> {epoch}",
            entry.epoch
        );
        // Batches are recorded in log order, the order duplicate detection answers from.
        let after = (entry.batches.back()).is_none_or(|last| last.last_offset < batch.base_offset);
        assert!(
            after,
            "producer {producer_id}: {batch:?} not after its cached batches"
        );
        // A new epoch starts over; so does a batch not following the cached ones, which only
        // replay meets (a producer that expired and came back at sequence 0).
        let follows = entry
            .batches
            .back()
            .is_none_or(|last| in_sequence(last.last_seq, batch.first_seq));
        if epoch != entry.epoch || !follows {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        if entry.batches.len() >= PRODUCER_BATCHES_CACHED {
            entry.batches.pop_front();
        }
        entry.batches.push_back(batch);
        entry.last_write_ms = entry.last_write_ms.max(now_ms);
        assert!(
            entry.batches.len() <= PRODUCER_BATCHES_CACHED,
            "producer {producer_id}"
        );
        self.changed = true;
        assert!(
            self.producers.len() <= PRODUCERS_PER_PARTITION_MAX,
            "producers={}",
            self.producers.len()
        );
    }

    /// Record one stored batch header (an append, or recovery's replay). Batches of an
    /// epoch older than the one already known (an old zombie's writes) cannot have been
    /// accepted, and are skipped. A transaction marker raises its producer's epoch.
    pub fn replay(&mut self, header: &BatchHeader, now_ms: i64) {
        if header.producer_id < 0 {
            return;
        }
        if header.is_control() {
            if header.is_transactional() {
                self.record_marker(header.producer_id, header.producer_epoch, now_ms);
            }
            return;
        }
        let known = self.producers.get(&header.producer_id);
        if known.is_some_and(|entry| header.producer_epoch < entry.epoch) {
            return;
        }
        let batch = BatchMetadata {
            first_seq: header.base_sequence,
            last_seq: last_sequence(header.base_sequence, header.last_offset_delta),
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            log_append_time_ms: if header.is_log_append_time() {
                header.max_timestamp
            } else {
                -1
            },
        };
        self.record(header.producer_id, header.producer_epoch, batch, now_ms);
    }

    /// A transaction marker of `producer_id` at `epoch` was appended: a newer epoch than the
    /// table's becomes the producer's (its batches, of the old epoch, are dropped: the new
    /// epoch starts at sequence 0), so a batch of an older epoch is fenced from now on. An
    /// older marker epoch changes nothing (the table's epoch never goes back).
    pub fn record_marker(&mut self, producer_id: i64, epoch: i16, now_ms: i64) {
        let entry = self.entry_for(producer_id, epoch, now_ms);
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.last_write_ms = entry.last_write_ms.max(now_ms);
        self.changed = true;
    }

    /// Forget batches at or above `offset` (a follower truncated its log). A producer left
    /// with no batch is forgotten: its next batch is then judged as a new producer's.
    pub fn truncate_to(&mut self, offset: i64) {
        // A producer that loses every batch is forgotten; one that had none (a marker raised
        // its epoch) keeps the epoch, which only ever fences older ones.
        self.producers.retain(|_, entry| {
            let had_batches = !entry.batches.is_empty();
            entry.batches.retain(|b| b.last_offset < offset);
            !had_batches || !entry.batches.is_empty()
        });
        self.changed = true;
        // Nothing remembered may point past the new log end: a retry of a truncated batch
        // must be appended again, not answered with offsets that no longer exist.
        let beyond = (self.producers.values())
            .flat_map(|entry| entry.batches.iter())
            .any(|batch| batch.last_offset >= offset);
        assert!(!beyond, "producer state beyond truncation point {offset}");
    }

    /// Forget producers whose last write is `expiration_ms` or more before `now_ms`
    /// (`producer.id.expiration.ms`); returns how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, entry| now_ms.saturating_sub(entry.last_write_ms) < expiration_ms);
        let expired = before - self.producers.len();
        self.changed |= expired > 0;
        debug_assert!(
            (self.producers.values())
                .all(|entry| now_ms.saturating_sub(entry.last_write_ms) < expiration_ms),
            "an expired producer survived"
        );
        expired
    }

    /// True when the table changed since the last [`Self::take_snapshot`].
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// The table as of log end offset `offset`, for persistence; clears `changed`.
    pub fn take_snapshot(&mut self, offset: i64) -> ProducerSnapshot {
        // The snapshot claims to cover every batch below `offset`; recovery replays only what
        // follows, so a cached batch at or past it would be replayed twice.
        debug_assert!(
            (self.producers.values())
                .flat_map(|entry| entry.batches.iter())
                .all(|batch| batch.last_offset < offset),
            "snapshot at {offset} does not cover its batches"
        );
        self.changed = false;
        ProducerSnapshot {
            offset,
            producers: self
                .producers
                .iter()
                .map(|(id, entry)| (*id, entry.clone()))
                .collect(),
        }
    }

    /// The table a snapshot describes.
    pub fn from_snapshot(snapshot: ProducerSnapshot) -> ProducerStates {
        ProducerStates {
            producers: snapshot.producers.into_iter().collect(),
            changed: false,
        }
    }

    /// The current epoch of `producer_id` here, if it has state.
    pub fn epoch_of(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|entry| entry.epoch)
    }

    /// Every producer and its state (DescribeProducers).
    pub fn entries(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(id, entry)| (*id, entry))
    }

    /// Number of producers known.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// The largest producer id in `range` with state here, or -1.
    pub fn max_producer_id_in(&self, range: std::ops::Range<i64>) -> i64 {
        self.producers
            .range(range)
            .next_back()
            .map_or(-1, |(id, _)| *id)
    }

    /// Assert the invariants of the module docs.
    pub fn invariants(&self) {
        assert!(
            self.producers.len() <= PRODUCERS_PER_PARTITION_MAX,
            "producers={}",
            self.producers.len()
        );
        for (id, entry) in &self.producers {
            assert!(
                entry.batches.len() <= PRODUCER_BATCHES_CACHED,
                "producer {id} caches {} batches",
                entry.batches.len()
            );
            for pair in entry.batches.iter().zip(entry.batches.iter().skip(1)) {
                assert!(
                    pair.0.last_offset < pair.1.base_offset,
                    "producer {id} batches out of offset order: {pair:?}"
                );
                assert!(
                    in_sequence(pair.0.last_seq, pair.1.first_seq),
                    "producer {id} batches out of sequence: {pair:?}"
                );
            }
        }
    }

    /// `producer_id`'s entry, a new one (at `epoch`, no batch) if it has none; a full table
    /// makes room first.
    fn entry_for(&mut self, producer_id: i64, epoch: i16, now_ms: i64) -> &mut ProducerEntry {
        if !self.producers.contains_key(&producer_id)
            && self.producers.len() >= PRODUCERS_PER_PARTITION_MAX
        {
            self.evict_least_recent();
        }
        self.producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch,
                batches: VecDeque::new(),
                last_write_ms: now_ms,
            })
    }

    /// Forget the producer that wrote least recently, to make room. It is the one most likely
    /// gone; if it comes back, its next batch is judged as a new producer's (sequence 0).
    fn evict_least_recent(&mut self) {
        assert!(!self.producers.is_empty(), "evicting from an empty table");
        let oldest = self
            .producers
            .iter()
            .min_by_key(|(_, entry)| entry.last_write_ms)
            .map(|(id, _)| *id);
        if let Some(id) = oldest {
            tracing::debug!(producer_id = id, "producer table full; forgot least recent");
            self.producers.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(producer_id: i64, epoch: i16, base_sequence: i32, count: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            record_count: count,
        }
    }

    fn record(states: &mut ProducerStates, h: &BatchHeader, base_offset: i64) {
        let batch = BatchMetadata {
            first_seq: h.base_sequence,
            last_seq: last_sequence(h.base_sequence, h.last_offset_delta),
            base_offset,
            last_offset: base_offset + i64::from(h.last_offset_delta),
            log_append_time_ms: -1,
        };
        states.record(h.producer_id, h.producer_epoch, batch, 0);
        states.invariants();
    }

    // Goal: a transaction marker at a bumped epoch fences the older epoch in this partition
    // (the zombie fencing of a coordinator that is not here), for a producer with batches
    // and for one only the marker names; the new epoch starts at sequence 0; an older
    // marker changes nothing; a snapshot and a truncation keep the raised epoch.
    // Method: markers through `replay` (the append path), then `check`.
    #[test]
    fn a_marker_raises_the_epoch() {
        let code = |r: Result<SequenceCheck, (ErrorCode, String)>| r.map_err(|e| e.0);
        let marker = |producer_id, epoch| {
            let mut h = header(producer_id, epoch, -1, 1);
            h.attributes = 0x30; // transactional, control
            h
        };
        let mut states = ProducerStates::default();
        record(&mut states, &header(7, 3, 0, 2), 0);
        states.replay(&marker(7, 4), 0);
        states.replay(&marker(9, 2), 0);
        states.invariants();
        for (producer, zombie) in [(7, 3), (9, 1)] {
            assert_eq!(
                code(states.check(&header(producer, zombie, 2, 1))),
                Err(ErrorCode::INVALID_PRODUCER_EPOCH),
                "producer {producer} epoch {zombie} after the marker"
            );
        }
        assert_eq!(states.epoch_of(7), Some(4));
        assert_eq!(
            code(states.check(&header(7, 5, 0, 1))),
            Ok(SequenceCheck::Append)
        );
        assert_eq!(
            code(states.check(&header(7, 5, 2, 1))),
            Err(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        states.replay(&marker(7, 1), 0);
        assert_eq!(
            states.epoch_of(7),
            Some(4),
            "an older marker changes nothing"
        );
        let mut restored = ProducerStates::from_snapshot(states.take_snapshot(10));
        restored.truncate_to(0);
        restored.invariants();
        assert_eq!(
            (restored.epoch_of(7), restored.epoch_of(9)),
            (Some(4), Some(2))
        );
    }

    // Goal: the sequence rules of the module docs, one case each. Method: record batches,
    // check the next ones.
    #[test]
    fn sequence_rules() {
        let mut states = ProducerStates::default();
        let code = |r: Result<SequenceCheck, (ErrorCode, String)>| r.map_err(|e| e.0);
        assert_eq!(
            code(states.check(&header(7, 0, 3, 1))),
            Err(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER),
            "an unknown producer starts at 0"
        );
        let first = header(7, 0, 0, 3);
        assert_eq!(code(states.check(&first)), Ok(SequenceCheck::Append));
        record(&mut states, &first, 10);
        let Ok(SequenceCheck::Duplicate(original)) = states.check(&first) else {
            panic!("a retry is a duplicate")
        };
        assert_eq!((original.base_offset, original.last_offset), (10, 12));
        assert_eq!(
            code(states.check(&header(7, 0, 3, 2))),
            Ok(SequenceCheck::Append)
        );
        assert_eq!(
            code(states.check(&header(7, 0, 4, 2))),
            Err(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER),
            "a gap"
        );
        assert_eq!(
            code(states.check(&header(7, 1, 5, 1))),
            Err(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER),
            "a new epoch starts at 0"
        );
        let bumped = header(7, 1, 0, 1);
        assert_eq!(code(states.check(&bumped)), Ok(SequenceCheck::Append));
        record(&mut states, &bumped, 13);
        assert_eq!(
            code(states.check(&header(7, 0, 3, 1))),
            Err(ErrorCode::INVALID_PRODUCER_EPOCH),
            "the old epoch is fenced"
        );
    }

    // Goal: only the last five batches are remembered, and sequences wrap at i32::MAX.
    // Method: record six batches ending at i32::MAX, then one starting at 0.
    #[test]
    fn cache_depth_and_wrap() {
        let mut states = ProducerStates::default();
        let start = i32::MAX - 5;
        states.record(
            1,
            0,
            BatchMetadata {
                first_seq: start,
                last_seq: start,
                base_offset: 0,
                last_offset: 0,
                log_append_time_ms: -1,
            },
            0,
        );
        for i in 1..6 {
            record(&mut states, &header(1, 0, start + i, 1), i64::from(i));
        }
        assert!(matches!(
            states.check(&header(1, 0, start, 1)),
            Err((ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, _))
        ));
        assert!(matches!(
            states.check(&header(1, 0, start + 1, 1)),
            Ok(SequenceCheck::Duplicate(_))
        ));
        assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(
            states.check(&header(1, 0, 0, 2)).map_err(|e| e.0),
            Ok(SequenceCheck::Append)
        );
    }

    // Goal: expiry forgets idle producers only; snapshots round-trip.
    #[test]
    fn expiry_and_snapshot() {
        let mut states = ProducerStates::default();
        record(&mut states, &header(1, 0, 0, 1), 0);
        let batch = BatchMetadata {
            first_seq: 0,
            last_seq: 0,
            base_offset: 1,
            last_offset: 1,
            log_append_time_ms: -1,
        };
        states.record(2, 0, batch, 1_000);
        let snapshot = states.take_snapshot(2);
        assert!(!states.changed());
        let json = serde_json::to_vec(&snapshot).expect("serializes");
        let back: ProducerSnapshot = serde_json::from_slice(&json).expect("parses");
        assert_eq!(back, snapshot);
        assert_eq!(states.expire(1_500, 1_000), 1);
        assert!(states.changed());
        assert_eq!(states.len(), 1);
        assert!(matches!(
            states.check(&header(2, 0, 1, 1)),
            Ok(SequenceCheck::Append)
        ));
        let restored = ProducerStates::from_snapshot(back);
        assert_eq!(restored.len(), 2);
    }
}
