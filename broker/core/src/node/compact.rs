//! Log compaction (`cleanup.policy=compact`, and the internal topics): which partition to
//! clean next, the job that cleans it ([`crate::cleaner`]), and applying what the job found.
//!
//! Every replica cleans its own log, leaders and followers alike, as Kafka's brokers do:
//! cleaning is a function of the log's contents below the high watermark, so replicas
//! holding the same records converge to the same latest value per key; a follower that
//! fetches from a cleaner leader simply keeps the leader's gaps (`append_batch`).
//!
//! # The cycle
//! 1. Every `log.cleaner.backoff.ms` (`schedule_compaction`), with no job in flight, the
//!    node picks the *filthiest* compacted partition it holds: the largest share of dirty
//!    bytes (bytes past the cleaner checkpoint) among its cleanable bytes, if at least
//!    `min.cleanable.dirty.ratio`, or any partition whose oldest dirty segment is older than
//!    `max.compaction.lag.ms`. The cleanable range ends at the *uncleanable offset*: the
//!    smallest of the last stable offset (an open transaction is never touched), the high
//!    watermark (nothing a replica may still truncate), the active segment's start (the
//!    active segment is never cleaned) and the first segment younger than
//!    `min.compaction.lag.ms`.
//! 2. The job leaves as `Output::Compact`; the driver runs it off its loop (it only reads).
//! 3. `Completion::Compacted` comes back (`on_compacted`). The job is dropped if its
//!    partition went away, or if its log lost offsets at its end meanwhile (a follower's
//!    truncation: the generation changed). Otherwise each replacement becomes a
//!    `StorageOp::ReplaceBatch` (those retention already deleted are skipped), each changed
//!    closed segment's summary is written again, and the checkpoint moves to the job's
//!    `cleaned_to` (persisted after the batches, so a crash can only make the next job
//!    redo work). No answer waits on any of it: the next sync makes it durable.
//!
//! # Bounds
//! One job in flight per node (Kafka's `log.cleaner.threads` is 1 by default). A job holds
//! at most [`COMPACTION_REWRITE_BYTES_MAX`] of rewritten batches and
//! [`COMPACTION_REPLACEMENTS_MAX`] replacements, and its offset map at most
//! `log.cleaner.dedupe.buffer.size` of keys; applying a result emits at most that many
//! storage ops in one input, so a compaction never holds up produce or fetch longer than
//! applying [`COMPACTION_REPLACEMENTS_MAX`] buffered writes (milliseconds).
//!
//! Invariants (checked by [`Node::compaction_invariants`]): a job in flight names a
//! partition this node holds, at most [`COMPACTION_JOBS_MAX`] are in flight; every
//! checkpoint lies within its log (`PartitionLog::invariants`).

use std::collections::BTreeMap;

use weir_wire::batch::parse_header;

use crate::cleaner::{CompactionJob, CompactionResult, JobFailed};
use crate::compaction::{
    AbortedTxn, ActiveProducer, OffsetMapLimits, OFFSET_MAP_ENTRY_OVERHEAD_BYTES,
};
use crate::meta;
use crate::partition::PartitionLog;
use crate::storage::StorageOp;
use crate::time::{Instant, Now};
use crate::topic::PartitionId;
use crate::Output;

use super::Node;

/// Jobs in flight at most, node-wide (Kafka's `log.cleaner.threads`).
pub const COMPACTION_JOBS_MAX: usize = 1;
/// Rewritten bytes one job holds at most before it stops (the next job goes on).
pub const COMPACTION_REWRITE_BYTES_MAX: usize = 32 << 20;
/// Batches one job replaces or removes at most: the storage ops applying it emits.
pub const COMPACTION_REPLACEMENTS_MAX: usize = 20_000;
/// Bytes per storage read of a job.
const COMPACTION_READ_BYTES: u32 = 1 << 20;
/// A job in flight this long is taken as lost (see `schedule_compaction`).
const JOB_LOST_MS: u64 = 600_000;
/// A partition whose job failed (stored bytes the cleaner cannot parse) waits this many
/// backoffs before it is tried again.
const FAILED_BACKOFFS: u64 = 20;

/// The node's compaction bookkeeping.
#[derive(Debug, Default)]
pub(super) struct Compactor {
    /// Jobs in flight by partition: (job id, the log's generation when it started, when
    /// it started).
    in_flight: BTreeMap<PartitionId, (u64, u64, Instant)>,
    /// Last job id handed out.
    next_job_id: u64,
    /// When to look for work next (`None`: at the next timeout).
    next_check: Option<Instant>,
    /// Partitions whose last job failed, and until when they are left alone.
    failed: BTreeMap<PartitionId, Instant>,
    /// Totals, for metrics: bytes the jobs read, bytes their replacements removed.
    pub bytes_read: u64,
    /// Bytes compaction removed from logs.
    pub bytes_cleaned: u64,
}

/// One partition's cleanable state, as the scheduler sees it.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    key: PartitionId,
    /// Dirty bytes over cleanable bytes.
    ratio: f64,
    /// The oldest dirty segment is older than `max.compaction.lag.ms`.
    overdue: bool,
}

impl Node {
    /// When the compactor wants a timeout.
    pub(super) fn compaction_deadline(&self) -> Option<Instant> {
        if !self.config.cleaner_enable || self.compactor.in_flight.len() >= COMPACTION_JOBS_MAX {
            return None;
        }
        self.compactor.next_check
    }

    /// True when `topic`'s logs are compacted: `cleanup.policy` includes `compact`, and
    /// always for the internal topics (Kafka creates them compacted).
    pub(super) fn compacts(&self, topic: &super::Topic) -> bool {
        crate::topic::is_internal_topic(&topic.name)
            || topic.config.cleanup_policy(&self.config).compact
    }

    /// Start a job on the filthiest partition, if one is due (see the module doc).
    pub(super) fn schedule_compaction(&mut self, now: Now) {
        if !self.config.cleaner_enable || self.poisoned.is_some() {
            return;
        }
        // A job whose completion never came (a driver that dropped it) is forgotten after a
        // while, so one lost job does not stop compaction for good.
        (self.compactor.in_flight).retain(|_, (_, _, started)| {
            now.instant.saturating_duration_since(*started).as_millis() < u128::from(JOB_LOST_MS)
        });
        let due = self.compactor.next_check.is_none_or(|at| now.instant >= at);
        if !due || self.compactor.in_flight.len() >= COMPACTION_JOBS_MAX {
            return;
        }
        let backoff = self.config.cleaner_backoff_ms;
        self.compactor.next_check = Some(now.instant.add_ms(backoff));
        self.compactor
            .failed
            .retain(|_, until| now.instant < *until);
        let mut best: Option<Candidate> = None;
        for topic in self.topics.values() {
            if !self.compacts(topic) {
                continue;
            }
            let min_ratio = topic.config.min_cleanable_dirty_ratio(&self.config);
            let max_lag_ms = topic.config.max_compaction_lag_ms(&self.config);
            let min_lag_ms = topic.config.min_compaction_lag_ms(&self.config);
            for (index, log) in topic.partitions.iter().enumerate() {
                let key = PartitionId::new(topic.id, index);
                if self.compactor.failed.contains_key(&key) || !self.holds_replica(key) {
                    continue;
                }
                let Some(candidate) = cleanable(key, log, now.wall_ms, min_lag_ms, max_lag_ms)
                else {
                    continue;
                };
                let eager = || self.buggify.fire(crate::buggify::Point::CompactEager);
                if candidate.ratio < min_ratio && !candidate.overdue && !eager() {
                    continue;
                }
                let better = best
                    .is_none_or(|b| (candidate.overdue && !b.overdue) || candidate.ratio > b.ratio);
                if better {
                    best = Some(candidate);
                }
            }
        }
        if let Some(candidate) = best {
            self.start_compaction_job(now, candidate.key);
        }
    }

    /// True when this node holds a replica role for `key` (leader or follower): only then
    /// is its log the partition's, kept in line with the leader.
    fn holds_replica(&self, key: PartitionId) -> bool {
        self.cluster.replication.replicas.contains_key(&key)
    }

    fn start_compaction_job(&mut self, now: Now, key: PartitionId) {
        let Some(topic) = self.topics.get(&key.topic) else {
            return;
        };
        let Some(log) = topic.partitions.get(key.index()) else {
            return;
        };
        let min_lag_ms = topic.config.min_compaction_lag_ms(&self.config);
        let delete_retention_ms = topic.config.delete_retention_ms(&self.config);
        let uncleanable = uncleanable_offset(log, now.wall_ms, min_lag_ms);
        let dirty_start = log.cleaned_to().max(log.log_start_offset());
        if dirty_start >= uncleanable {
            return;
        }
        let aborted = (log.txns.aborted_below(uncleanable).into_iter())
            .map(|a| AbortedTxn {
                producer_id: a.producer_id,
                first_offset: a.first_offset,
                last_offset: a.last_offset,
            })
            .collect();
        let producers = (log.producers.entries())
            .map(|(id, entry)| {
                let last_data_offset = entry.batches.back().map(|b| b.last_offset);
                let producer = ActiveProducer {
                    epoch: entry.epoch,
                    last_data_offset,
                };
                (id, producer)
            })
            .collect();
        let buffer = usize::try_from(self.config.cleaner_dedupe_buffer_bytes).unwrap_or(usize::MAX);
        let map_limits = OffsetMapLimits {
            entries_max: (buffer / OFFSET_MAP_ENTRY_OVERHEAD_BYTES).max(1),
            key_bytes_max: buffer,
        };
        let first_unstable_offset = log.txns.last_stable_offset(log.high_watermark());
        // PLANTED BUG (weir-sim's planted suite only; never in a real build): the job is
        // told the LSO it was scheduled with (see `uncleanable_offset`).
        let first_unstable_offset = if crate::planted::on(crate::planted::Bug::CompactPastLso) {
            first_unstable_offset.max(uncleanable)
        } else {
            first_unstable_offset
        };
        self.compactor.next_job_id += 1;
        let job = CompactionJob {
            job_id: self.compactor.next_job_id,
            partition: key,
            partition_key: log.partition_key(),
            log_start: log.log_start_offset(),
            dirty_start,
            uncleanable,
            first_unstable_offset,
            now_ms: now.wall_ms,
            delete_retention_ms,
            aborted,
            producers,
            map_limits,
            read_bytes: COMPACTION_READ_BYTES,
            rewrite_bytes_max: COMPACTION_REWRITE_BYTES_MAX,
            replacements_max: COMPACTION_REPLACEMENTS_MAX,
            io_bytes_per_second: self.config.cleaner_io_max_bytes_per_second,
        };
        tracing::debug!(
            partition = %key,
            dirty_start,
            uncleanable,
            "compaction job started"
        );
        let generation = log.generation();
        (self.compactor.in_flight).insert(key, (job.job_id, generation, now.instant));
        self.outputs.push_back(Output::Compact(Box::new(job)));
    }

    /// A job's outcome (see the module doc, step 3).
    pub(super) fn on_compacted(
        &mut self,
        now: Now,
        outcome: Result<Box<CompactionResult>, JobFailed>,
    ) {
        let (job_id, key) = match &outcome {
            Ok(result) => (result.job_id, result.partition),
            Err(failed) => (failed.job_id, failed.partition),
        };
        let Some(&(in_flight, generation, _)) = self.compactor.in_flight.get(&key) else {
            return;
        };
        if in_flight != job_id {
            return;
        }
        self.compactor.in_flight.remove(&key);
        // Look for more work at once: a large log is cleaned in several jobs.
        self.compactor.next_check = Some(now.instant);
        if self.buggify.fire(crate::buggify::Point::CompactDrop) {
            tracing::debug!(partition = %key, "compaction result dropped (BUGGIFY)");
            return;
        }
        let result = match outcome {
            Ok(result) => result,
            Err(failed) => {
                tracing::warn!(partition = %key, reason = failed.reason, "compaction failed");
                let wait = self
                    .config
                    .cleaner_backoff_ms
                    .saturating_mul(FAILED_BACKOFFS);
                self.compactor.failed.insert(key, now.instant.add_ms(wait));
                return;
            }
        };
        let Some(log) = self.log_mut(key) else {
            return;
        };
        if log.partition_key() != result.partition_key || log.generation() != generation {
            tracing::debug!(partition = %key, "compaction result stale; dropped");
            return;
        }
        let partition_key = log.partition_key();
        let log_start = log.log_start_offset();
        let mut ops = Vec::new();
        let mut changed = BTreeMap::new();
        let mut cleaned = 0u64;
        for replacement in result.replacements {
            // Retention may have deleted it since the job read it.
            if replacement.last_offset < log_start {
                continue;
            }
            let new_bytes = replacement.batch.as_ref().map_or(0, |b| b.len() as u64);
            // A removed or emptied abort marker takes its transaction out of the aborted
            // index (see `TxnIndex::forget_marker`).
            let gone = (replacement.batch.as_ref())
                .is_none_or(|b| parse_header(b).is_ok_and(|h| h.record_count == 0));
            if gone {
                log.txns.forget_marker(replacement.base_offset);
            }
            let Some(segment) =
                log.replace_batch(replacement.base_offset, replacement.old_bytes, new_bytes)
            else {
                continue;
            };
            cleaned += replacement.old_bytes.saturating_sub(new_bytes);
            changed.insert(segment.base_offset, segment);
            ops.push(StorageOp::ReplaceBatch {
                partition_key,
                base_offset: replacement.base_offset,
                batch: replacement.batch,
            });
        }
        for segment in changed.values() {
            ops.push(StorageOp::PutMeta {
                key: meta::segment_key(partition_key, segment.base_offset),
                value: meta::encode(segment),
            });
        }
        if result.cleaned_to > log.cleaned_to() {
            log.set_cleaned_to(result.cleaned_to);
            ops.push(StorageOp::PutMeta {
                key: meta::cleaned_key(partition_key),
                value: meta::encode(&log.cleaned_to()),
            });
        }
        tracing::debug!(
            partition = %key,
            cleaned_to = result.cleaned_to,
            bytes_read = result.bytes_read,
            bytes_cleaned = cleaned,
            replaced = ops.len(),
            "compaction applied"
        );
        self.compactor.bytes_read += result.bytes_read;
        self.compactor.bytes_cleaned += cleaned;
        for op in ops {
            self.emit(op);
        }
    }

    /// See the module doc.
    pub(super) fn compaction_invariants(&self) {
        assert!(self.compactor.in_flight.len() <= COMPACTION_JOBS_MAX);
        assert!(self.compactor.next_job_id >= self.compactor.in_flight.len() as u64);
        for (key, (job_id, _, _)) in &self.compactor.in_flight {
            assert!(
                *job_id <= self.compactor.next_job_id,
                "job {job_id} of {key} from the future"
            );
        }
    }
}

/// The first offset a job may not read or change (see the module doc, step 1): `None`
/// when nothing is cleanable.
fn uncleanable_offset(log: &PartitionLog, now_ms: i64, min_lag_ms: i64) -> i64 {
    let active = log.active_segment();
    let mut bound = log
        .txns
        .last_stable_offset(log.high_watermark())
        .min(log.high_watermark())
        .min(active.base_offset);
    // PLANTED BUG (weir-sim's planted suite only; never in a real build): the last stable
    // offset and the high watermark are ignored; only the active segment bounds the cleaner.
    if crate::planted::on(crate::planted::Bug::CompactPastLso) {
        bound = active.base_offset;
    }
    // The active segment must hold a batch: then the log's last stored batch is never
    // cleaned and the log end stays where storage says it is.
    if active.end_offset <= active.base_offset {
        bound = bound.min(log.log_start_offset());
    }
    if min_lag_ms > 0 {
        let young = (log.segments())
            .find(|s| s.max_timestamp >= 0 && now_ms.saturating_sub(s.max_timestamp) < min_lag_ms);
        if let Some(young) = young {
            bound = bound.min(young.base_offset);
        }
    }
    bound.max(log.log_start_offset())
}

/// How dirty `log` is (see the module doc, step 1); `None` when nothing is cleanable.
fn cleanable(
    key: PartitionId,
    log: &PartitionLog,
    now_ms: i64,
    min_lag_ms: i64,
    max_lag_ms: i64,
) -> Option<Candidate> {
    let uncleanable = uncleanable_offset(log, now_ms, min_lag_ms);
    let dirty_start = log.cleaned_to().max(log.log_start_offset());
    if dirty_start >= uncleanable {
        return None;
    }
    let (mut clean, mut dirty) = (0u64, 0u64);
    let mut overdue = false;
    for segment in log.segments() {
        if segment.base_offset >= uncleanable {
            break;
        }
        if segment.end_offset <= dirty_start {
            clean += segment.bytes;
        } else {
            dirty += segment.bytes;
            overdue |= segment.max_timestamp >= 0
                && now_ms.saturating_sub(segment.max_timestamp) > max_lag_ms;
        }
    }
    let total = clean + dirty;
    let ratio = if total == 0 {
        0.0
    } else {
        dirty as f64 / total as f64
    };
    Some(Candidate {
        key,
        ratio,
        overdue,
    })
}

/// The cleaner's dirty ratio of `log` (dirty bytes over cleanable bytes, exactly as the
/// scheduler weighs it in [`cleanable`]), for `/metrics`; 0 when nothing is cleanable.
pub(super) fn dirty_ratio(
    key: PartitionId,
    log: &PartitionLog,
    now_ms: i64,
    min_lag_ms: i64,
) -> f64 {
    cleanable(key, log, now_ms, min_lag_ms, i64::MAX).map_or(0.0, |candidate| candidate.ratio)
}
