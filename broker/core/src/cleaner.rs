//! A compaction job: what a node asks its driver to clean in one partition's log, and how
//! the driver runs it against storage with the pure cleaner of [`crate::compaction`].
//!
//! The node decides (sans-IO): which partition, from where to where, with which
//! transactions and producers ([`CompactionJob`], leaving as `Output::Compact`). The
//! driver runs [`run_job`] off its event loop (it only reads storage) and hands the
//! result back as `Completion::Compacted`; the node then checks that the log did not
//! change under the job in a way that matters (see `node/compact.rs`) and applies the
//! replacements as `StorageOp::ReplaceBatch` ops, in order with everything else it writes.
//!
//! # One job
//! 1. The offset map reads the dirty range, `dirty_start..uncleanable`, in chunks of
//!    [`CompactionJob::read_bytes`], until it is full or reaches the uncleanable offset;
//!    its end is the job's `clean_up_to`.
//! 2. The cleaning pass reads every batch from the log start up to `clean_up_to` and
//!    collects what changes: a rewritten batch or a removed one. It stops early (on a batch
//!    boundary, `cleaned_to`) once the rewritten bytes it holds reach
//!    [`CompactionJob::rewrite_bytes_max`] or its replacements
//!    [`CompactionJob::replacements_max`], so a job's memory and the work of applying it
//!    are bounded whatever the size of the log; the next job starts its map at
//!    `cleaned_to`.
//!
//! # Invariants
//! - The first stored batch of the log is never removed, only emptied (kept as an empty
//!   batch with its offsets): recovery takes the log start from storage's first batch.
//!   The node never cleans the active segment and cleans only when it holds a batch, so
//!   the last stored batch is never touched either and the log end stays where it is.
//! - A job only reads. What it returns replaces batches at their own base offsets, with the
//!   same last offset (or removes them), so offsets never change.
//! - Replacements are in increasing offset order, all below `cleaned_to <= clean_up_to <=
//!   uncleanable`, and their rewritten bytes sum to at most `rewrite_bytes_max` plus one
//!   batch.
//! - Memory: the map's bound ([`CompactionJob::map_limits`]), one read chunk, and the
//!   replacements.

use std::collections::BTreeMap;

use bytes::Bytes;
use weir_wire::batch::iter_batches;
use weir_wire::domain::ReadPlan;
use weir_wire::rewrite::empty_batch;

use crate::compaction::{
    AbortedTxn, AbortedTxns, ActiveProducer, CleanContext, CleanStats, Cleaned, CleaningPass,
    CompactionError, MapFill, OffsetMap, OffsetMapLimits,
};
use crate::storage::{Storage, StorageError};
use crate::topic::PartitionId;

/// What to clean in one partition's log.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionJob {
    /// Identifies the job in its completion.
    pub job_id: u64,
    /// The partition.
    pub partition: PartitionId,
    /// Its storage key.
    pub partition_key: u64,
    /// The log start offset: the cleaning pass reads from here.
    pub log_start: i64,
    /// First offset not cleaned yet: the offset map reads from here.
    pub dirty_start: i64,
    /// Nothing at or past this offset is read into the map or changed: the smallest of the
    /// last stable offset, the high watermark, the active segment's start and the end of
    /// what `min.compaction.lag.ms` lets go.
    pub uncleanable: i64,
    /// The last stable offset (first offset of the oldest open transaction, or the HW).
    pub first_unstable_offset: i64,
    /// The wall clock for tombstone and marker horizons.
    pub now_ms: i64,
    /// `delete.retention.ms`.
    pub delete_retention_ms: i64,
    /// Aborted transactions overlapping the log below `uncleanable`.
    pub aborted: Vec<AbortedTxn>,
    /// The partition's active producers by id.
    pub producers: BTreeMap<i64, ActiveProducer>,
    /// The offset map's bound.
    pub map_limits: OffsetMapLimits,
    /// Bytes per storage read.
    pub read_bytes: u32,
    /// Rewritten bytes a job holds at most before it stops (see the module doc).
    pub rewrite_bytes_max: usize,
    /// Replacements a job returns at most before it stops (each is one storage op).
    pub replacements_max: usize,
    /// `log.cleaner.io.max.bytes.per.second`: the driver paces the job's reads to this
    /// rate ([`JobRun`]); `u64::MAX` (Kafka's default) reads unpaced.
    pub io_bytes_per_second: u64,
}

/// One batch the job changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    /// The batch's base offset (its key in storage).
    pub base_offset: i64,
    /// Its last offset (unchanged by the rewrite).
    pub last_offset: i64,
    /// Its stored size before the job.
    pub old_bytes: u64,
    /// The new bytes, or `None` when the batch goes.
    pub batch: Option<Bytes>,
}

/// What a job found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionResult {
    /// The job's id.
    pub job_id: u64,
    /// The partition.
    pub partition: PartitionId,
    /// Its storage key.
    pub partition_key: u64,
    /// Every batch below this offset was cleaned against a map covering up to it: the next
    /// job's `dirty_start`. Equal to `dirty_start` when the job did nothing (a map too small
    /// for one batch, or nothing dirty).
    pub cleaned_to: i64,
    /// The changed batches, in offset order.
    pub replacements: Vec<Replacement>,
    /// Counts of the cleaning pass.
    pub stats: CleanStats,
    /// Bytes the job read from storage.
    pub bytes_read: u64,
}

/// Why a job failed. A storage error poisons the node like any other; a cleaning error
/// (bytes that do not parse) leaves the partition uncleaned and is logged.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Reading the log failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored batch could not be cleaned.
    #[error(transparent)]
    Cleaning(#[from] CompactionError),
}

/// A job that could not clean its partition (stored bytes the cleaner cannot parse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailed {
    /// The job's id.
    pub job_id: u64,
    /// The partition.
    pub partition: PartitionId,
    /// What went wrong.
    pub reason: String,
}

/// What a driver reports for `job`: the result, or the job's failure; `Err` of the outer
/// result is a storage error, which the driver reports as `Completion::Failed`.
pub fn run_for_driver(
    storage: &impl Storage,
    job: &CompactionJob,
) -> Result<crate::Completion, StorageError> {
    completion(job, run_job(storage, job))
}

/// What a driver reports for `job`'s `outcome` (from [`run_job`] or a [`JobRun`]'s last
/// step): see [`run_for_driver`].
pub fn completion(
    job: &CompactionJob,
    outcome: Result<CompactionResult, JobError>,
) -> Result<crate::Completion, StorageError> {
    match outcome {
        Ok(result) => Ok(crate::Completion::Compacted(Ok(Box::new(result)))),
        Err(JobError::Storage(error)) => Err(error),
        Err(JobError::Cleaning(error)) => Ok(crate::Completion::Compacted(Err(JobFailed {
            job_id: job.job_id,
            partition: job.partition,
            reason: error.to_string(),
        }))),
    }
}

/// Run `job` over `storage` (see the module doc). Reads only.
pub fn run_job(storage: &impl Storage, job: &CompactionJob) -> Result<CompactionResult, JobError> {
    let mut run = JobRun::new(Box::new(job.clone()));
    loop {
        if let Step::Done(result) = run.step(storage)? {
            return Ok(*result);
        }
    }
}

/// A job run one storage read at a time ([`JobRun::step`]), so that a driver can pace the
/// reads (`log.cleaner.io.max.bytes.per.second`) between steps. [`run_job`] runs it to the
/// end in one go.
pub struct JobRun {
    job: Box<CompactionJob>,
    phase: Phase,
}

/// Where a [`JobRun`] is.
enum Phase {
    /// 1. Filling the offset map from `offset` (the dirty range).
    Map {
        map: OffsetMap,
        aborted: AbortedTxns,
        offset: i64,
        bytes_read: u64,
    },
    /// 2. The cleaning pass, at `offset` (from the log start up to `clean_up_to`).
    Pass(Box<PassState>),
    /// The result was handed out.
    Finished,
}

/// The cleaning pass's state between reads.
struct PassState {
    map: OffsetMap,
    pass: CleaningPass,
    result: CompactionResult,
    clean_up_to: i64,
    /// Rewritten bytes held so far.
    held: usize,
    offset: i64,
}

/// What one [`JobRun::step`] did.
#[derive(Debug)]
pub enum Step {
    /// It read this many bytes; more steps follow.
    Read(u64),
    /// The job ended with this result (no further step may be taken).
    Done(Box<CompactionResult>),
}

impl JobRun {
    /// A run of `job`, not started.
    ///
    /// # Panics
    /// If the job's bounds are out of order (the node never makes such a job).
    pub fn new(job: Box<CompactionJob>) -> JobRun {
        assert!(
            job.log_start <= job.dirty_start && job.dirty_start <= job.uncleanable,
            "job bounds {} <= {} <= {}",
            job.log_start,
            job.dirty_start,
            job.uncleanable
        );
        assert!(job.uncleanable <= job.first_unstable_offset);
        let phase = Phase::Map {
            map: OffsetMap::new(job.map_limits, job.dirty_start, job.uncleanable),
            aborted: AbortedTxns::new(job.aborted.iter().copied()),
            offset: job.dirty_start,
            bytes_read: 0,
        };
        JobRun { job, phase }
    }

    /// The job this runs.
    pub fn job(&self) -> &CompactionJob {
        &self.job
    }

    /// One storage read of the job (at most about `read_bytes`, whole batches), or its end.
    ///
    /// # Panics
    /// When called again after it returned [`Step::Done`].
    pub fn step(&mut self, storage: &impl Storage) -> Result<Step, JobError> {
        loop {
            match &mut self.phase {
                Phase::Map {
                    map,
                    aborted,
                    offset,
                    bytes_read,
                } => {
                    if *offset >= self.job.uncleanable {
                        if let Some(done) = self.start_pass() {
                            return Ok(done);
                        }
                        continue;
                    }
                    let chunk = read_chunk(storage, &self.job, *offset, self.job.uncleanable)?;
                    if chunk.is_empty() {
                        if let Some(done) = self.start_pass() {
                            return Ok(done);
                        }
                        continue;
                    }
                    *bytes_read += chunk.len() as u64;
                    let mut map_done = false;
                    for item in iter_batches(&chunk) {
                        let (header, range) =
                            item.map_err(|e| CompactionError::Malformed(e.to_string()))?;
                        match map.add_batch(&chunk[range], aborted)? {
                            MapFill::Covered => *offset = header.last_offset() + 1,
                            MapFill::Full | MapFill::Uncleanable => {
                                map_done = true;
                                break;
                            }
                        }
                    }
                    if map_done {
                        // The pass starts at the next step: this one read a chunk already.
                        if let Some(done) = self.start_pass() {
                            return Ok(done);
                        }
                    }
                    return Ok(Step::Read(chunk.len() as u64));
                }
                Phase::Pass(state) => {
                    let job = &self.job;
                    let mut read = 0;
                    // Where the pass ends, if it ends at this step.
                    let end = 'read: {
                        if state.offset >= state.clean_up_to {
                            break 'read Some(state.clean_up_to);
                        }
                        let chunk = read_chunk(storage, job, state.offset, state.clean_up_to)?;
                        if chunk.is_empty() {
                            break 'read Some(state.clean_up_to);
                        }
                        read = chunk.len() as u64;
                        state.result.bytes_read += read;
                        for item in iter_batches(&chunk) {
                            let (header, range) =
                                item.map_err(|e| CompactionError::Malformed(e.to_string()))?;
                            if header.last_offset() >= state.clean_up_to {
                                break 'read Some(state.clean_up_to);
                            }
                            if state.held >= job.rewrite_bytes_max
                                || state.result.replacements.len() >= job.replacements_max
                            {
                                // Stop on this batch's boundary: everything below it is
                                // cleaned.
                                break 'read Some(header.base_offset);
                            }
                            let bytes = &chunk[range];
                            let first = state.offset == job.log_start;
                            let batch = match state.pass.clean_batch(bytes, &state.map)? {
                                Cleaned::Unchanged => None,
                                Cleaned::Rewritten(new) => Some(Some(new)),
                                // The first stored batch stays, emptied: storage's first
                                // batch is where recovery finds the log start, which
                                // compaction must not move. (Once it is empty there is
                                // nothing left to do with it.)
                                Cleaned::Removed if first && header.record_count == 0 => None,
                                Cleaned::Removed if first => Some(Some(empty_batch(&header))),
                                Cleaned::Removed => Some(None),
                            };
                            if let Some(batch) = batch {
                                state.held += batch.as_ref().map_or(0, Bytes::len);
                                state.result.replacements.push(Replacement {
                                    base_offset: header.base_offset,
                                    last_offset: header.last_offset(),
                                    old_bytes: bytes.len() as u64,
                                    batch,
                                });
                            }
                            state.offset = header.last_offset() + 1;
                        }
                        None
                    };
                    return Ok(match end {
                        Some(end) => self.finish(end),
                        None => Step::Read(read),
                    });
                }
                Phase::Finished => panic!("a compaction job stepped after its end"),
            }
        }
    }

    /// The offset map is complete: start the cleaning pass, or end the job (as
    /// [`Step::Done`]) when the map covers nothing.
    fn start_pass(&mut self) -> Option<Step> {
        let Phase::Map {
            map,
            aborted,
            bytes_read,
            ..
        } = std::mem::replace(&mut self.phase, Phase::Finished)
        else {
            unreachable!("start_pass runs in the map phase only");
        };
        let job = &self.job;
        let clean_up_to = map.clean_up_to();
        let result = CompactionResult {
            job_id: job.job_id,
            partition: job.partition,
            partition_key: job.partition_key,
            cleaned_to: job.dirty_start,
            replacements: Vec::new(),
            stats: CleanStats::default(),
            bytes_read,
        };
        if clean_up_to <= job.dirty_start {
            return Some(Step::Done(Box::new(result)));
        }
        let pass = CleaningPass::new(CleanContext {
            clean_up_to,
            first_unstable_offset: job.first_unstable_offset,
            now_ms: job.now_ms,
            delete_retention_ms: job.delete_retention_ms,
            aborted,
            producers: job.producers.clone(),
        });
        self.phase = Phase::Pass(Box::new(PassState {
            map,
            pass,
            result,
            clean_up_to,
            held: 0,
            offset: job.log_start,
        }));
        None
    }

    /// The cleaning pass ends with everything below `cleaned_to` cleaned.
    fn finish(&mut self, cleaned_to: i64) -> Step {
        let Phase::Pass(state) = std::mem::replace(&mut self.phase, Phase::Finished) else {
            unreachable!("finish runs in the pass phase only");
        };
        let PassState {
            pass,
            mut result,
            clean_up_to,
            ..
        } = *state;
        // The pass may stop below the map's end; the next map starts there, so nothing the
        // map covered is left uncleaned for good.
        result.cleaned_to = cleaned_to.max(self.job.dirty_start).min(clean_up_to);
        result.stats = pass.stats();
        debug_assert!(result
            .replacements
            .windows(2)
            .all(|w| w[0].last_offset < w[1].base_offset));
        debug_assert!((result.replacements.iter())
            .all(|r| r.last_offset < result.cleaned_to || r.base_offset < result.cleaned_to));
        Step::Done(Box::new(result))
    }
}

/// Whole batches from `offset` (the batch containing it first), none starting at or past
/// `end`, about `job.read_bytes` of them.
fn read_chunk(
    storage: &impl Storage,
    job: &CompactionJob,
    offset: i64,
    end: i64,
) -> Result<Bytes, StorageError> {
    storage.read(&ReadPlan {
        partition_key: job.partition_key,
        start_offset: offset,
        end_offset: end,
        max_bytes: job.read_bytes,
    })
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use weir_wire::batch::{parse_header, set_base_offset, update_crc};
    use weir_wire::records::{encode_batch, BatchOptions, Record};

    use super::*;
    use crate::storage::{MemStorage, StorageOp};

    /// A log of `values.len()` one-record batches, record i at offset i with key
    /// `values[i].0`.
    fn log(values: &[(&str, &str)]) -> MemStorage {
        let mut storage = MemStorage::new();
        for (offset, (key, value)) in values.iter().enumerate() {
            let record = Record {
                offset: 0,
                timestamp: 1_000,
                key: Some(Bytes::copy_from_slice(key.as_bytes())),
                value: Some(Bytes::copy_from_slice(value.as_bytes())),
                headers: Vec::new(),
            };
            let encoded = encode_batch(&[record], &BatchOptions::default()).expect("encodes");
            let mut batch = BytesMut::from(&encoded[..]);
            set_base_offset(&mut batch, offset as i64);
            update_crc(&mut batch);
            let op = StorageOp::Append {
                partition_key: 7,
                base_offset: offset as i64,
                last_offset: offset as i64,
                batch: batch.freeze(),
            };
            storage.apply(&op).expect("append");
        }
        storage
    }

    fn job(end: i64) -> CompactionJob {
        CompactionJob {
            job_id: 1,
            partition: PartitionId::new(uuid::Uuid::from_u128(1), 0),
            partition_key: 7,
            log_start: 0,
            dirty_start: 0,
            uncleanable: end,
            first_unstable_offset: end,
            now_ms: 1_000,
            delete_retention_ms: 1_000,
            aborted: Vec::new(),
            producers: BTreeMap::new(),
            map_limits: OffsetMapLimits {
                entries_max: 100,
                key_bytes_max: 1_000,
            },
            read_bytes: 300,
            rewrite_bytes_max: 1 << 20,
            replacements_max: 100,
            io_bytes_per_second: u64::MAX,
        }
    }

    fn apply(storage: &mut MemStorage, result: &CompactionResult) {
        for r in &result.replacements {
            let op = StorageOp::ReplaceBatch {
                partition_key: 7,
                base_offset: r.base_offset,
                batch: r.batch.clone(),
            };
            storage.apply(&op).expect("replace");
        }
    }

    // Goal: a job run step by step (how a driver paces the cleaner's reads) reads about
    // `read_bytes` per step, whole batches, both phases in several steps, and ends with
    // what it found; stepping past the end is refused. Method: a 40-batch log read 300
    // bytes at a time; the steps' bytes add up to the result's `bytes_read`.
    #[test]
    fn a_job_steps_one_read_at_a_time() {
        let values: Vec<(String, String)> = (0..40)
            .map(|i| (format!("k{}", i % 4), format!("v{i}")))
            .collect();
        let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        let storage = log(&pairs);
        let batch_bytes = storage
            .read(&ReadPlan {
                partition_key: 7,
                start_offset: 0,
                end_offset: 1,
                max_bytes: 1,
            })
            .expect("reads")
            .len() as u64;
        let mut run = JobRun::new(Box::new(job(39)));
        let (mut steps, mut read) = (0, 0u64);
        let result = loop {
            match run.step(&storage).expect("step") {
                Step::Read(bytes) => {
                    assert!(
                        bytes > 0 && bytes <= 300 + batch_bytes,
                        "a step read {bytes}"
                    );
                    steps += 1;
                    read += bytes;
                }
                Step::Done(result) => break *result,
            }
        };
        // 39 batches for the map, 39 for the pass, about 300 / batch_bytes per step.
        let per_step = (300 / batch_bytes).max(1);
        assert!(steps >= 2 * 39 / (per_step + 1), "{steps} steps");
        assert_eq!(result.bytes_read, read);
        assert_eq!(result.cleaned_to, 39);
        assert_eq!(
            result.replacements.len(),
            35,
            "all but the latest of each key"
        );
        assert_eq!(result, run_job(&storage, &job(39)).expect("job runs"));
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.step(&storage)));
        assert!(again.is_err(), "a finished run refuses another step");
    }

    // Goal: superseded records go, the latest of each key stays, and the first stored batch
    // is emptied rather than removed (the log start stays); a second job over the cleaned
    // log changes nothing.
    #[test]
    fn a_job_keeps_latest_values_and_the_first_batch() {
        let mut storage = log(&[("a", "1"), ("b", "1"), ("a", "2"), ("b", "2"), ("c", "1")]);
        let result = run_job(&storage, &job(4)).expect("job runs");
        assert_eq!(result.cleaned_to, 4);
        let changed: Vec<(i64, Option<u16>)> = (result.replacements.iter())
            .map(|r| {
                (
                    r.base_offset,
                    r.batch
                        .as_ref()
                        .map(|b| parse_header(b).map_or(99, |h| h.record_count as u16)),
                )
            })
            .collect();
        // Offset 0 (a=1) is superseded but first: kept empty; offset 1 (b=1) removed.
        assert_eq!(changed, vec![(0, Some(0)), (1, None)]);
        apply(&mut storage, &result);
        let mut again = job(4);
        again.dirty_start = result.cleaned_to;
        let second = run_job(&storage, &again).expect("job runs");
        assert!(second.replacements.is_empty(), "{:?}", second.replacements);
    }

    // Goal: a job stops at its replacement bound on a batch boundary, and the next job,
    // starting its map where the first stopped, finishes the work.
    #[test]
    fn a_bounded_job_leaves_the_rest_to_the_next() {
        let values: Vec<(&str, &str)> = (0..10).map(|_| ("k", "v")).collect();
        let mut storage = log(&values);
        let mut bounded = job(9);
        bounded.replacements_max = 3;
        let first = run_job(&storage, &bounded).expect("job runs");
        assert_eq!(first.replacements.len(), 3);
        assert_eq!(
            first.cleaned_to, 3,
            "stopped on the fourth batch's boundary"
        );
        apply(&mut storage, &first);
        bounded.dirty_start = first.cleaned_to;
        bounded.replacements_max = 100;
        let second = run_job(&storage, &bounded).expect("job runs");
        assert_eq!(second.cleaned_to, 9);
        let removed: Vec<i64> = second.replacements.iter().map(|r| r.base_offset).collect();
        // Offset 8 is the latest "k" the map saw (offset 9 is past the uncleanable bound).
        assert_eq!(
            removed,
            vec![3, 4, 5, 6, 7],
            "the rest of the superseded batches"
        );
    }
}
