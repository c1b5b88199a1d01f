//! Fetch: decide what each partition serves (a read plan bounded by the high watermark and
//! the byte limits) and long-poll until `min_bytes` are available or `max_wait_ms` passes.
//!
//! Invariants: a plan never reaches at or above the high watermark; fetch sessions are not
//! kept (session id 0 in every answer), so a request naming a session is refused.

use weir_wire::domain::{
    ApiResponse, FetchPartition, FetchPartitionResponse, FetchRecords, FetchRequest, FetchResponse,
    FetchTopicResponse, ReadPlan, RemoteReadPlan,
};
use weir_wire::error::ErrorCode;

use super::{Node, ParkedFetch, FETCH_WAIT_MS_MAX};
use crate::buggify::Point;
use crate::cluster::image::RemoteLog;
use crate::event::RequestId;
use crate::partition::PartitionLog;
use crate::time::Now;
use crate::topic::PartitionId;

/// What a fetch would return right now.
pub(super) struct FetchEvaluation {
    /// The response, with read plans for the driver.
    pub response: ApiResponse,
    /// Bytes available below the high watermark across its partitions (saturating).
    pub available_bytes: u64,
    /// Some partition carries an error (Kafka answers such fetches at once).
    pub has_error: bool,
    /// Partition keys it reads.
    pub partition_keys: Vec<u64>,
}

/// The running byte budget of one fetch response.
struct Budget {
    remaining: u64,
    /// No partition has been given data yet; the first one may exceed the budget by one
    /// batch (Kafka's rule, so one oversized batch cannot stall a consumer).
    first: bool,
}

impl Node {
    /// Fetch: answer at once if there is enough to read (or an error, or no wait allowed);
    /// otherwise park the request until a high watermark move or its deadline.
    pub(super) fn fetch(&mut self, now: Now, id: RequestId, request: FetchRequest) {
        if request.session_id != 0 {
            // Weir never creates sessions, so any id the client names is unknown to us.
            let response = FetchResponse {
                error: ErrorCode::FETCH_SESSION_ID_NOT_FOUND,
                ..FetchResponse::default()
            };
            self.respond(id, ApiResponse::Fetch(response));
            return;
        }
        let evaluation = self.evaluate_fetch(&request);
        // The client's wait is bounded so one request cannot hold a purgatory slot for hours.
        let wait_ms = u64::try_from(request.max_wait_ms)
            .unwrap_or(0)
            .min(FETCH_WAIT_MS_MAX);
        if wait_ms == 0 || satisfied(&request, &evaluation) {
            self.respond(id, evaluation.response);
            return;
        }
        let parked = ParkedFetch {
            request,
            partition_keys: evaluation.partition_keys,
        };
        let deadline = Some(now.instant.add_ms(wait_ms));
        if self.fetch_waiters.insert(id, deadline, parked).is_err() {
            // Purgatory full: answer now with what there is rather than refuse.
            self.respond(id, evaluation.response);
        }
    }

    /// Answer the parked fetch `id` now with what there is, if it is still parked: a
    /// fetch split over shards (docs/sharding.md) waits no longer than an unsplit one,
    /// because once one shard's part answered with records the driver asks the others'
    /// parts to answer too.
    pub fn answer_parked_fetch(&mut self, now: Now, id: RequestId) {
        self.cluster_note_now(now);
        let Some(parked) = self.fetch_waiters.remove(id) else {
            return;
        };
        let evaluation = self.evaluate_fetch(&parked.request);
        self.respond(id, evaluation.response);
    }

    /// Re-evaluate parked fetches whose partition keys match `wake`; answer the satisfied.
    pub(super) fn wake_fetches(&mut self, wake: impl Fn(&[u64]) -> bool) {
        let ids: Vec<RequestId> = self
            .fetch_waiters
            .iter()
            .filter(|(_, parked)| wake(&parked.partition_keys))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let Some(parked) = self.fetch_waiters.get(id) else {
                continue;
            };
            let evaluation = self.evaluate_fetch(&parked.request);
            if satisfied(&parked.request, &evaluation) {
                self.fetch_waiters.remove(id);
                self.respond(id, evaluation.response);
            }
        }
    }

    /// Build the fetch response as of now.
    /// Evaluation is pure, so a parked fetch is simply evaluated again when woken; its answer
    /// always reflects the state at the time it is sent.
    pub(super) fn evaluate_fetch(&self, request: &FetchRequest) -> FetchEvaluation {
        // The response budget: the client's max_bytes, never more than fetch.max.bytes.
        let limit = request.max_bytes.min(self.config.fetch_max_bytes);
        let mut budget = Budget {
            remaining: u64::try_from(limit).unwrap_or(0),
            first: true,
        };
        let mut evaluation = FetchEvaluation {
            response: ApiResponse::Fetch(FetchResponse::default()),
            available_bytes: 0,
            has_error: false,
            partition_keys: Vec::new(),
        };
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in &request.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for partition in &topic.partitions {
                let resolved = self.resolve_partition(&topic.topic, partition.partition);
                let log = resolved.and_then(|key| {
                    let epoch = self.serving_epoch(key)?;
                    super::check_epoch_against(partition.current_leader_epoch, epoch)?;
                    Ok((key, self.partition(key).expect("resolved partition exists")))
                });
                let served = log.and_then(|(key, log)| {
                    let short = self.buggify.fire(Point::ShortFetch);
                    let read_committed = request.isolation_level == 1;
                    let remote = self.remote_view(key, log);
                    let reading = Reading {
                        short,
                        read_committed,
                        remote,
                    };
                    serve_partition(log, partition, &mut budget, &reading)
                        .map(|(response, available)| (response, available, log.partition_key()))
                });
                match served {
                    Ok((response, available, partition_key)) => {
                        evaluation.available_bytes =
                            evaluation.available_bytes.saturating_add(available);
                        evaluation.partition_keys.push(partition_key);
                        partitions.push(response);
                    }
                    Err(code) => {
                        evaluation.has_error = true;
                        partitions.push(error_partition(partition.partition, code));
                    }
                }
            }
            topics.push(FetchTopicResponse {
                topic: topic.topic.clone(),
                partitions,
            });
        }
        let response = FetchResponse {
            topics,
            ..FetchResponse::default()
        };
        evaluation.response = ApiResponse::Fetch(response);
        evaluation
    }
}

/// Answer now? Errors are answered at once; otherwise once `min_bytes` are available.
fn satisfied(request: &FetchRequest, evaluation: &FetchEvaluation) -> bool {
    let min_bytes = u64::try_from(request.min_bytes).unwrap_or(0);
    evaluation.has_error
        || evaluation.partition_keys.is_empty()
        || evaluation.available_bytes >= min_bytes
}

/// How one partition is read.
struct Reading<'a> {
    /// BUGGIFY: a one-byte bound.
    short: bool,
    read_committed: bool,
    /// A tiered partition's remote log and the log start it gives (remote start when the
    /// remote log reaches the local log).
    remote: Option<(&'a RemoteLog, i64)>,
}

impl Node {
    /// The remote side of `log`, if its topic is tiered and the remote log reaches it.
    pub(super) fn remote_view(
        &self,
        key: PartitionId,
        log: &PartitionLog,
    ) -> Option<(&RemoteLog, i64)> {
        let start = self.total_log_start(key, log.log_start_offset());
        if start >= log.log_start_offset() {
            return None;
        }
        let image = &self.cluster.meta.image;
        let remote = image.remote_log(key.topic.as_u128(), key.partition())?;
        Some((remote, start))
    }
}

/// One partition's answer and the bytes available to it.
fn serve_partition(
    log: &PartitionLog,
    partition: &FetchPartition,
    budget: &mut Budget,
    reading: &Reading<'_>,
) -> Result<(FetchPartitionResponse, u64), ErrorCode> {
    let fetch_offset = partition.fetch_offset;
    let log_start = reading
        .remote
        .map_or(log.log_start_offset(), |(_, start)| start);
    // Kafka's range check is against the log end offset: offsets in [hw, leo] are valid
    // and simply have nothing to read yet.
    if fetch_offset < log_start || fetch_offset > log.log_end_offset() {
        return Err(ErrorCode::OFFSET_OUT_OF_RANGE);
    }
    if fetch_offset < log.log_start_offset() {
        if let Some((remote, _)) = reading.remote {
            return Ok(serve_remote(
                log, remote, partition, budget, reading, log_start,
            ));
        }
    }
    let (short, read_committed) = (reading.short, reading.read_committed);
    let high_watermark = log.high_watermark();
    let last_stable_offset = log.txns.last_stable_offset(high_watermark);
    // read_committed reads stop at the last stable offset (no open transaction's data).
    // PLANTED BUG (weir-sim's planted suite only; never in a real build): read_committed
    // reads bounded by the high watermark, exposing open transactions.
    let visible_end = if read_committed && !crate::planted::on(crate::planted::Bug::ExposeAboveLso)
    {
        last_stable_offset
    } else {
        high_watermark
    };
    let available = if fetch_offset >= visible_end {
        0
    } else {
        log.available_bytes(fetch_offset)
    };
    let partition_max = u64::try_from(partition.partition_max_bytes).unwrap_or(0);
    let mut plan_max = partition_max.min(budget.remaining);
    if short && plan_max > 0 {
        // BUGGIFY: a bound of one byte still returns the first batch whole (storage's
        // contract), so the client gets one batch and must fetch again for the rest.
        plan_max = 1;
    }
    let records = if available == 0 || (plan_max == 0 && !budget.first) {
        FetchRecords::Empty
    } else {
        budget.first = false;
        // The driver may return up to one batch more than the plan's bound; charge the
        // bound (or what is available, if less) against the response's budget.
        budget.remaining -= plan_max.min(available);
        FetchRecords::Read(ReadPlan {
            partition_key: log.partition_key(),
            start_offset: fetch_offset,
            end_offset: visible_end,
            max_bytes: u32::try_from(plan_max).unwrap_or(u32::MAX),
        })
    };
    let response = FetchPartitionResponse {
        partition: partition.partition,
        error: ErrorCode::NONE,
        high_watermark,
        last_stable_offset,
        log_start_offset: log_start,
        // The client drops the records of these producers from their first offset until
        // their abort marker (only read_committed consumers need them).
        aborted_transactions: if read_committed {
            log.txns.aborted_overlapping(fetch_offset, visible_end)
        } else {
            Vec::new()
        },
        preferred_read_replica: -1,
        records,
    };
    Ok((response, available))
}

/// A fetch below the local log start of a tiered partition: a remote read of the
/// uploaded segment holding the offset (or the next one), bounded like a local read.
/// Uploaded data lies below the high watermark and the last stable offset (uploads wait
/// for both), so its whole segment is visible to every isolation level.
fn serve_remote(
    log: &PartitionLog,
    remote: &RemoteLog,
    partition: &FetchPartition,
    budget: &mut Budget,
    reading: &Reading<'_>,
    log_start: i64,
) -> (FetchPartitionResponse, u64) {
    let fetch_offset = partition.fetch_offset;
    let high_watermark = log.high_watermark();
    let last_stable_offset = log.txns.last_stable_offset(high_watermark);
    let segment = remote.segment_for(fetch_offset);
    let available = segment.map_or(0, |s| s.size_bytes);
    let partition_max = u64::try_from(partition.partition_max_bytes).unwrap_or(0);
    let mut plan_max = partition_max.min(budget.remaining);
    if reading.short && plan_max > 0 {
        plan_max = 1;
    }
    let records = match segment {
        Some(segment) if available > 0 && (plan_max > 0 || budget.first) => {
            budget.first = false;
            budget.remaining -= plan_max.min(available);
            FetchRecords::Remote(RemoteReadPlan {
                object_key: segment.object_key.clone(),
                start_offset: fetch_offset,
                end_offset: segment.end_offset.min(high_watermark),
                max_bytes: u32::try_from(plan_max).unwrap_or(u32::MAX),
                read_committed: reading.read_committed,
            })
        }
        _ => FetchRecords::Empty,
    };
    let response = FetchPartitionResponse {
        partition: partition.partition,
        error: ErrorCode::NONE,
        high_watermark,
        last_stable_offset,
        log_start_offset: log_start,
        // The driver fills them from the object for a read_committed read.
        aborted_transactions: Vec::new(),
        preferred_read_replica: -1,
        records,
    };
    (response, available)
}

/// A partition answered with an error (Kafka fills -1 for the offsets).
pub(super) fn error_partition(partition: i32, error: ErrorCode) -> FetchPartitionResponse {
    FetchPartitionResponse {
        partition,
        error,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        aborted_transactions: Vec::new(),
        preferred_read_replica: -1,
        records: FetchRecords::Empty,
    }
}
