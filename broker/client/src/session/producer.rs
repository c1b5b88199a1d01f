//! The producer's brain: routing records to partitions, batching with `linger`/`batch.size`,
//! choosing what to send to which broker, retrying with backoff and expiring records past
//! `delivery.timeout.ms`. The driver ([`crate::producer`]) only moves bytes.
//!
//! Lifecycle of a record: `send` -> (awaiting metadata ->) an open batch in its partition's
//! queue -> `drain` hands the batch to the driver (in flight) -> `complete` either delivers a
//! result per record or puts the batch back at the queue's front with a retry time.
//!
//! Invariants:
//! - `buffered_bytes` is the sum of the sizes of all records not yet delivered (queued,
//!   awaiting metadata or in flight); `send` refuses once it reaches `buffer_bytes_max`, so it
//!   never exceeds `buffer_bytes_max + request_bytes_max` (one record of overshoot).
//! - Every record's token is returned exactly once, in a [`Delivery`] or in `send`'s error.
//! - A partition has at most `in_flight_batches_per_partition_max` batches in flight; with 1,
//!   batches of a partition are acknowledged in queue order, retries included, because a
//!   retried batch goes back to the front of its queue.
//! - Idempotence: a batch gets its producer id, epoch and base sequence when first drained
//!   and keeps them through every retry, so the broker recognises a retry of a batch it
//!   already appended. Sequences of a partition follow each other (wrapping at `i32::MAX`).
//!   A sequenced batch that fails for good leaves a hole the broker would refuse to skip, so
//!   the session then drops its producer id and drains no new batch until
//!   [`ProducerSession::set_producer_id`] gives it a fresh one (sequences restart at 0).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use weir_wire::error::ErrorCode;
use weir_wire::records::Record;

use crate::config::ProducerConfig;
use crate::error::ClientError;
use crate::session::metadata::MetadataCache;
use crate::session::partitioner::Partitioner;
use crate::session::retry::Backoff;
use crate::TopicPartition;

/// Bytes of a v2 record batch header.
const BATCH_OVERHEAD_BYTES: usize = weir_wire::batch::BATCH_HEADER_BYTES;
/// Upper estimate of a record's framing (length, attributes, deltas, key/value lengths as
/// varints), from Kafka's `DefaultRecord.MAX_RECORD_OVERHEAD`.
const RECORD_OVERHEAD_BYTES: usize = 21;

/// Where and when a record was stored; the result of a successful send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset, or -1 with acks=0 (the broker says nothing).
    pub offset: i64,
    /// The record's timestamp (CreateTime), or the broker's LogAppendTime.
    pub timestamp: i64,
}

/// The result for one record.
#[derive(Debug)]
pub struct Delivery<T> {
    /// The token passed to `send`.
    pub token: T,
    /// Where it landed, or why it failed.
    pub result: Result<RecordMetadata, ClientError>,
}

/// A batch of records for one partition, as handed to the driver.
#[derive(Debug)]
pub struct ProducerBatch<T> {
    /// Destination.
    pub topic_partition: TopicPartition,
    /// Records in send order.
    pub records: Vec<Record>,
    /// One token per record.
    pub tokens: Vec<T>,
    /// Estimated encoded size.
    pub size_bytes: usize,
    /// When the first record was appended (linger counts from here).
    pub created_at: Duration,
    /// When the oldest record's delivery timeout expires.
    pub deadline: Duration,
    /// Retries so far.
    pub attempts: u32,
    /// Idempotence: (producer id, epoch, base sequence), fixed when first drained.
    pub sequence: Option<(i64, i16, i32)>,
    retry_at: Option<Duration>,
    sealed: bool,
}

/// What the broker said about a batch.
#[derive(Debug, Clone)]
pub enum BatchOutcome {
    /// Appended at `base_offset` (-1 for acks=0).
    Acked {
        /// Offset of the first record.
        base_offset: i64,
        /// LogAppendTime, or -1 when the topic uses CreateTime.
        log_append_time_ms: i64,
    },
    /// Not appended (or unknown).
    Failed(ClientError),
}

/// Batches leaving the accumulator, grouped by leader.
#[derive(Debug)]
pub struct Drained<T> {
    /// Per leader node id, the batches of one produce request.
    pub by_node: BTreeMap<i32, Vec<ProducerBatch<T>>>,
    /// Some ready batch has no known leader: refresh metadata.
    pub needs_metadata: bool,
}

/// The result of completing a batch.
#[derive(Debug)]
pub struct Completed<T> {
    /// Per-record results (empty when the batch was requeued for retry).
    pub deliveries: Vec<Delivery<T>>,
    /// The failure suggests stale leaders: refresh metadata before the retry.
    pub refresh_metadata: bool,
}

#[derive(Debug)]
struct PartitionQueue<T> {
    batches: VecDeque<ProducerBatch<T>>,
    in_flight: usize,
}

#[derive(Debug)]
struct Unrouted<T> {
    partition: Option<i32>,
    record: Record,
    token: T,
    size_bytes: usize,
    deadline: Duration,
}

/// Sans-IO producer state.
#[derive(Debug)]
pub struct ProducerSession<T> {
    batch_bytes_max: usize,
    linger: Duration,
    buffer_bytes_max: usize,
    request_bytes_max: usize,
    retries: u32,
    delivery_timeout: Duration,
    in_flight_batches_per_partition_max: usize,
    partitioner: Partitioner,
    backoff: Backoff,
    awaiting_metadata: BTreeMap<String, VecDeque<Unrouted<T>>>,
    queues: BTreeMap<TopicPartition, PartitionQueue<T>>,
    buffered_bytes: usize,
    flush_count: usize,
    idempotent: bool,
    /// The producer id and epoch new batches get; `None` while one is being fetched.
    producer: Option<(i64, i16)>,
    /// Next base sequence per partition, for `producer`.
    next_sequence: BTreeMap<TopicPartition, i32>,
    /// Transactional: the producer id comes from `init_transactions`, never fetched in
    /// the background.
    transactional: bool,
    /// The first batch that failed for good since the last [`Self::take_failure`] (a
    /// transaction with a failed write must abort, never commit).
    failure: Option<ClientError>,
}

impl<T> ProducerSession<T> {
    /// A session with `config`'s limits; `seed` drives sticky partitions and jitter.
    pub fn new(config: &ProducerConfig, seed: u64) -> ProducerSession<T> {
        ProducerSession {
            batch_bytes_max: config.batch_bytes_max.max(1),
            linger: config.linger,
            buffer_bytes_max: config.buffer_bytes_max.max(1),
            request_bytes_max: config.request_bytes_max.max(1),
            retries: config.retries,
            delivery_timeout: config.delivery_timeout,
            in_flight_batches_per_partition_max: config.in_flight_batches_per_partition_max.max(1),
            partitioner: Partitioner::new(seed),
            backoff: Backoff::new(
                config.client.retry_backoff,
                config.client.retry_backoff_max,
                seed.rotate_left(17),
            ),
            awaiting_metadata: BTreeMap::new(),
            queues: BTreeMap::new(),
            buffered_bytes: 0,
            flush_count: 0,
            idempotent: config.idempotent || config.transactional_id.is_some(),
            producer: None,
            next_sequence: BTreeMap::new(),
            transactional: config.transactional_id.is_some(),
            failure: None,
        }
    }

    /// The first failure (a batch failed for good) since the last call, if any.
    pub fn take_failure(&mut self) -> Option<ClientError> {
        self.failure.take()
    }

    /// Puts back a failure taken by [`Self::take_failure`] (unless a newer one is kept).
    pub fn restore_failure(&mut self, error: ClientError) {
        self.failure.get_or_insert(error);
    }

    /// True when a batch failed for good since the last [`Self::take_failure`].
    pub fn has_failure(&self) -> bool {
        self.failure.is_some()
    }

    /// The producer id and epoch batches get now, if any.
    pub fn producer_id(&self) -> Option<(i64, i16)> {
        self.producer
    }

    /// True when the producer is idempotent and has no producer id: the driver must get one
    /// (InitProducerId) before new batches can be drained.
    pub fn needs_producer_id(&self) -> bool {
        self.idempotent && !self.transactional && self.producer.is_none()
    }

    /// A producer id and epoch from InitProducerId; every partition's sequences restart at 0.
    pub fn set_producer_id(&mut self, producer_id: i64, epoch: i16) {
        self.producer = Some((producer_id, epoch));
        self.next_sequence.clear();
    }

    /// A sequenced batch failed for good: its sequence is a hole the broker will not skip.
    fn on_sequence_lost(&mut self, batch: &ProducerBatch<T>) {
        let producer = batch.sequence.map(|(id, epoch, _)| (id, epoch));
        if producer.is_some() && producer == self.producer {
            tracing::debug!(
                partition = %batch.topic_partition,
                "sequenced batch failed; a new producer id is needed"
            );
            self.producer = None;
            self.next_sequence.clear();
        }
    }

    /// Accepts a record. It is routed now if `metadata` knows the topic, otherwise it waits
    /// (in order) for [`Self::on_metadata`]. `Ok(true)` means the driver should wake up: a
    /// batch was opened (a new linger deadline) or filled, or the topic needs metadata.
    pub fn send(
        &mut self,
        now: Duration,
        topic: &str,
        partition: Option<i32>,
        record: Record,
        token: T,
        metadata: &MetadataCache,
    ) -> Result<bool, (ClientError, T)> {
        if topic.is_empty() {
            return Err((
                ClientError::InvalidArgument("empty topic name".into()),
                token,
            ));
        }
        let size_bytes = record_size_bytes(&record);
        if size_bytes + BATCH_OVERHEAD_BYTES > self.request_bytes_max {
            let error = ClientError::Kafka {
                code: ErrorCode::MESSAGE_TOO_LARGE,
                context: topic.to_owned(),
                message: Some(format!(
                    "record of {size_bytes} bytes exceeds max.request.size {}",
                    self.request_bytes_max
                )),
            };
            return Err((error, token));
        }
        // Refuse only once the limit is reached, so `has_room` (what `Producer::ready` waits
        // for) guarantees the next send is accepted; the overshoot is at most one record.
        if self.buffered_bytes >= self.buffer_bytes_max {
            let error = ClientError::BufferFull {
                buffered_bytes: self.buffered_bytes,
                limit_bytes: self.buffer_bytes_max,
            };
            return Err((error, token));
        }
        let unrouted = Unrouted {
            partition,
            record,
            token,
            size_bytes,
            deadline: now.saturating_add(self.delivery_timeout),
        };
        let waiting = self
            .awaiting_metadata
            .get(topic)
            .is_some_and(|queue| !queue.is_empty());
        let wake = match metadata.partition_count(topic) {
            // Records already waiting go first: per-topic send order is kept.
            Some(count) if !waiting => self.route(now, topic, unrouted, count)?,
            _ => {
                self.awaiting_metadata
                    .entry(topic.to_owned())
                    .or_default()
                    .push_back(unrouted);
                true
            }
        };
        self.buffered_bytes += size_bytes;
        Ok(wake)
    }

    /// Topics with records waiting for metadata.
    pub fn topics_awaiting_metadata(&self) -> Vec<String> {
        self.awaiting_metadata
            .iter()
            .filter(|(_, queue)| !queue.is_empty())
            .map(|(topic, _)| topic.clone())
            .collect()
    }

    /// New metadata arrived: route waiting records, fail those of topics that cannot exist.
    pub fn on_metadata(&mut self, now: Duration, metadata: &MetadataCache) -> Vec<Delivery<T>> {
        let mut failed = Vec::new();
        let topics: Vec<String> = self.awaiting_metadata.keys().cloned().collect();
        for topic in topics {
            let fatal = metadata
                .topic(&topic)
                .map(|t| t.error)
                .filter(|&code| !code.is_ok() && !crate::error::is_retriable_code(code));
            let count = metadata.partition_count(&topic);
            if fatal.is_none() && count.is_none() {
                continue; // Still being created, or not answered yet: keep waiting.
            }
            let queue = self.awaiting_metadata.remove(&topic).unwrap_or_default();
            for unrouted in queue {
                let size_bytes = unrouted.size_bytes;
                let result = match (fatal, count) {
                    (Some(code), _) => {
                        Err((ClientError::kafka(code, topic.clone()), unrouted.token))
                    }
                    (None, Some(count)) => self.route(now, &topic, unrouted, count).map(|_| ()),
                    (None, None) => unreachable!("skipped above"),
                };
                if let Err((error, token)) = result {
                    self.buffered_bytes -= size_bytes;
                    failed.push(Delivery {
                        token,
                        result: Err(error),
                    });
                }
            }
        }
        failed
    }

    /// Takes every batch that is ready to send and whose leader is known, grouped by leader,
    /// each group within `max.request.size`.
    pub fn drain(&mut self, now: Duration, metadata: &MetadataCache) -> Drained<T> {
        let mut drained = Drained {
            by_node: BTreeMap::new(),
            needs_metadata: false,
        };
        let mut request_bytes: BTreeMap<i32, usize> = BTreeMap::new();
        let flushing = self.flush_count > 0;
        for (topic_partition, queue) in &mut self.queues {
            if queue.in_flight >= self.in_flight_batches_per_partition_max {
                continue;
            }
            let Some(front) = queue.batches.front() else {
                continue;
            };
            let ready_at = ready_at(
                front,
                queue.batches.len(),
                self.batch_bytes_max,
                self.linger,
                flushing,
            );
            if ready_at > now {
                continue;
            }
            let tp = topic_partition;
            if self.idempotent && front.sequence.is_none() && self.producer.is_none() {
                continue; // Waits for a producer id.
            }
            let Some(leader) = metadata.leader_for(&tp.topic, tp.partition) else {
                drained.needs_metadata = true;
                continue;
            };
            let used = request_bytes.entry(leader).or_insert(0);
            if *used > 0 && *used + front.size_bytes > self.request_bytes_max {
                continue; // Goes in the next request to this leader.
            }
            let Some(mut batch) = queue.batches.pop_front() else {
                continue;
            };
            *used += batch.size_bytes;
            if self.idempotent && batch.sequence.is_none() {
                if let Some((producer_id, epoch)) = self.producer {
                    let next = self.next_sequence.entry(tp.clone()).or_insert(0);
                    batch.sequence = Some((producer_id, epoch, *next));
                    *next = sequence_after(*next, batch.records.len());
                }
            }
            batch.sealed = true;
            queue.in_flight += 1;
            if let Some(count) = metadata.partition_count(&tp.topic) {
                self.partitioner
                    .on_batch_closed(&tp.topic, tp.partition, count);
            }
            drained.by_node.entry(leader).or_default().push(batch);
        }
        drained
    }

    /// The broker answered (or the request failed) for a drained batch.
    pub fn complete(
        &mut self,
        now: Duration,
        mut batch: ProducerBatch<T>,
        outcome: BatchOutcome,
    ) -> Completed<T> {
        let queue = self
            .queues
            .entry(batch.topic_partition.clone())
            .or_insert_with(|| PartitionQueue {
                batches: VecDeque::new(),
                in_flight: 1,
            });
        assert!(
            queue.in_flight > 0,
            "completing a batch of {} not in flight",
            batch.topic_partition
        );
        queue.in_flight -= 1;
        if let BatchOutcome::Failed(error) = &outcome {
            if error.is_retriable() && batch.attempts < self.retries && now < batch.deadline {
                batch.attempts += 1;
                batch.retry_at = Some(now.saturating_add(self.backoff.delay(batch.attempts)));
                let refresh_metadata = error.needs_metadata_refresh();
                tracing::debug!(
                    partition = %batch.topic_partition, attempts = batch.attempts, %error,
                    "retrying produce batch"
                );
                queue.batches.push_front(batch);
                return Completed {
                    deliveries: Vec::new(),
                    refresh_metadata,
                };
            }
        }
        self.buffered_bytes -= batch.size_bytes - BATCH_OVERHEAD_BYTES;
        let refresh_metadata = match &outcome {
            BatchOutcome::Failed(error) => {
                self.failure.get_or_insert_with(|| error.clone());
                self.on_sequence_lost(&batch);
                error.needs_metadata_refresh()
            }
            BatchOutcome::Acked { .. } => false,
        };
        Completed {
            deliveries: deliver(batch, &outcome),
            refresh_metadata,
        }
    }

    /// Fails records whose delivery timeout passed while queued or awaiting metadata.
    pub fn expire(&mut self, now: Duration) -> Vec<Delivery<T>> {
        let mut expired = Vec::new();
        let timeout_ms = u64::try_from(self.delivery_timeout.as_millis()).unwrap_or(u64::MAX);
        for (topic, queue) in &mut self.awaiting_metadata {
            while queue
                .front()
                .is_some_and(|unrouted| unrouted.deadline <= now)
            {
                let Some(unrouted) = queue.pop_front() else {
                    break;
                };
                self.buffered_bytes -= unrouted.size_bytes;
                let context = format!("metadata for topic {topic}");
                let error = ClientError::Timeout {
                    context,
                    timeout_ms,
                };
                expired.push(Delivery {
                    token: unrouted.token,
                    result: Err(error),
                });
            }
        }
        self.awaiting_metadata.retain(|_, queue| !queue.is_empty());
        for (topic_partition, queue) in &mut self.queues {
            let (keep, gone): (VecDeque<_>, VecDeque<_>) = queue
                .batches
                .drain(..)
                .partition(|batch| batch.deadline > now);
            queue.batches = keep;
            for batch in gone {
                let producer = batch.sequence.map(|(id, epoch, _)| (id, epoch));
                if producer.is_some() && producer == self.producer {
                    // Same as on_sequence_lost (self is borrowed by the loop).
                    self.producer = None;
                    self.next_sequence.clear();
                }
                self.buffered_bytes -= batch.size_bytes - BATCH_OVERHEAD_BYTES;
                let context = format!("delivery to {topic_partition}");
                let error = ClientError::Timeout {
                    context,
                    timeout_ms,
                };
                self.failure.get_or_insert_with(|| error.clone());
                let outcome = BatchOutcome::Failed(error);
                expired.extend(deliver(batch, &outcome));
            }
        }
        expired
    }

    /// When the session next needs attention (a linger or backoff ending, a deadline), if
    /// ever. Batches already ready but stuck on an unknown leader are not included: metadata
    /// arrival wakes the driver instead.
    pub fn poll_timeout(&self, now: Duration) -> Option<Duration> {
        let flushing = self.flush_count > 0;
        let mut next: Option<Duration> = None;
        let mut consider = |at: Duration| next = Some(next.map_or(at, |n| n.min(at)));
        for queue in self.queues.values() {
            for batch in &queue.batches {
                consider(batch.deadline);
            }
            if queue.in_flight >= self.in_flight_batches_per_partition_max {
                continue;
            }
            if let Some(front) = queue.batches.front() {
                let at = ready_at(
                    front,
                    queue.batches.len(),
                    self.batch_bytes_max,
                    self.linger,
                    flushing,
                );
                if at > now {
                    consider(at);
                }
            }
        }
        for queue in self.awaiting_metadata.values() {
            if let Some(front) = queue.front() {
                consider(front.deadline);
            }
        }
        next
    }

    /// Makes every batch ready regardless of linger until [`Self::end_flush`].
    pub fn begin_flush(&mut self) {
        self.flush_count += 1;
    }

    /// Ends one [`Self::begin_flush`].
    pub fn end_flush(&mut self) {
        self.flush_count = self.flush_count.saturating_sub(1);
    }

    /// Bytes of records not yet delivered.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// True when `send` of a small record would be accepted.
    pub fn has_room(&self) -> bool {
        self.buffered_bytes < self.buffer_bytes_max
    }

    /// True when no record is queued, waiting or in flight.
    pub fn is_idle(&self) -> bool {
        self.buffered_bytes == 0
            && self.awaiting_metadata.values().all(VecDeque::is_empty)
            && self
                .queues
                .values()
                .all(|q| q.batches.is_empty() && q.in_flight == 0)
    }

    /// Fails every queued and waiting record (the producer is shutting down for good).
    pub fn fail_queued(&mut self, error: &ClientError) -> Vec<Delivery<T>> {
        let mut failed = Vec::new();
        for (_, queue) in std::mem::take(&mut self.awaiting_metadata) {
            for unrouted in queue {
                self.buffered_bytes -= unrouted.size_bytes;
                failed.push(Delivery {
                    token: unrouted.token,
                    result: Err(error.clone()),
                });
            }
        }
        for queue in self.queues.values_mut() {
            for batch in queue.batches.drain(..) {
                self.buffered_bytes -= batch.size_bytes - BATCH_OVERHEAD_BYTES;
                failed.extend(deliver(batch, &BatchOutcome::Failed(error.clone())));
            }
        }
        failed
    }

    /// Puts a routed record into its partition's open batch (or a new one). `Ok(true)` when
    /// a batch was opened or became full.
    fn route(
        &mut self,
        now: Duration,
        topic: &str,
        unrouted: Unrouted<T>,
        partition_count: i32,
    ) -> Result<bool, (ClientError, T)> {
        let partition = match unrouted.partition {
            Some(p) if (0..partition_count).contains(&p) => p,
            Some(p) => {
                let message = format!("partition {p} of {topic} (it has {partition_count})");
                return Err((ClientError::InvalidArgument(message), unrouted.token));
            }
            None => {
                let key = unrouted.record.key.as_deref();
                let mut p = self.partitioner.partition(topic, key, partition_count);
                // Sticky partitioning (KIP-480): a keyless record that would open a new batch
                // moves the topic to the next partition instead.
                // The batch left behind cannot take this record, so it is as good as full:
                // seal it so it goes out now instead of after linger.
                if key.is_none() && self.needs_new_batch(topic, p, unrouted.size_bytes) {
                    let left = self.queues.get_mut(&TopicPartition::new(topic, p));
                    if let Some(last) = left.and_then(|queue| queue.batches.back_mut()) {
                        last.sealed = true;
                    }
                    self.partitioner.on_batch_closed(topic, p, partition_count);
                    p = self.partitioner.partition(topic, None, partition_count);
                }
                p
            }
        };
        let open_new = self.needs_new_batch(topic, partition, unrouted.size_bytes);
        let topic_partition = TopicPartition::new(topic, partition);
        let queue = self
            .queues
            .entry(topic_partition.clone())
            .or_insert_with(|| PartitionQueue {
                batches: VecDeque::new(),
                in_flight: 0,
            });
        if open_new {
            queue.batches.push_back(ProducerBatch {
                topic_partition,
                records: Vec::new(),
                tokens: Vec::new(),
                size_bytes: BATCH_OVERHEAD_BYTES,
                created_at: now,
                deadline: unrouted.deadline,
                attempts: 0,
                sequence: None,
                retry_at: None,
                sealed: false,
            });
        }
        let batch = queue.batches.back_mut().expect("a batch was just ensured");
        batch.size_bytes += unrouted.size_bytes;
        batch.records.push(unrouted.record);
        batch.tokens.push(unrouted.token);
        Ok(open_new || batch.size_bytes >= self.batch_bytes_max)
    }

    /// True when a record of `size_bytes` does not fit the partition's open batch.
    fn needs_new_batch(&self, topic: &str, partition: i32, size_bytes: usize) -> bool {
        let key = TopicPartition::new(topic, partition);
        let Some(last) = self.queues.get(&key).and_then(|queue| queue.batches.back()) else {
            return true;
        };
        last.sealed || last.size_bytes + size_bytes > self.batch_bytes_max
    }
}

/// The base sequence after a batch of `record_count` records at `sequence` (Kafka wraps
/// sequences from `i32::MAX` to 0).
fn sequence_after(sequence: i32, record_count: usize) -> i32 {
    let count = i64::try_from(record_count).unwrap_or(i64::MAX);
    let next = (i64::from(sequence) + count) % (i64::from(i32::MAX) + 1);
    i32::try_from(next).expect("reduced modulo i32::MAX + 1")
}

/// When the front batch of a queue may be sent: at once when full, when more batches queue
/// behind it, or while flushing; else when linger ends; never before its retry time.
fn ready_at<T>(
    batch: &ProducerBatch<T>,
    queued_batches: usize,
    batch_bytes_max: usize,
    linger: Duration,
    flushing: bool,
) -> Duration {
    let full = batch.size_bytes >= batch_bytes_max || queued_batches > 1 || batch.sealed;
    let send_at = if full || flushing {
        batch.created_at
    } else {
        batch.created_at.saturating_add(linger)
    };
    send_at.max(batch.retry_at.unwrap_or(Duration::ZERO))
}

fn deliver<T>(batch: ProducerBatch<T>, outcome: &BatchOutcome) -> Vec<Delivery<T>> {
    let ProducerBatch {
        topic_partition,
        records,
        tokens,
        ..
    } = batch;
    records
        .into_iter()
        .zip(tokens)
        .zip(0i64..)
        .map(|((record, token), index)| {
            let result = match outcome {
                BatchOutcome::Acked {
                    base_offset,
                    log_append_time_ms,
                } => Ok(RecordMetadata {
                    topic: topic_partition.topic.clone(),
                    partition: topic_partition.partition,
                    offset: if *base_offset >= 0 {
                        base_offset + index
                    } else {
                        -1
                    },
                    timestamp: if *log_append_time_ms >= 0 {
                        *log_append_time_ms
                    } else {
                        record.timestamp
                    },
                }),
                BatchOutcome::Failed(error) => Err(error.clone()),
            };
            Delivery { token, result }
        })
        .collect()
}

/// Estimated encoded size of one record (upper bound of the varint framing).
pub fn record_size_bytes(record: &Record) -> usize {
    let key = record.key.as_ref().map_or(0, |k| k.len());
    let value = record.value.as_ref().map_or(0, |v| v.len());
    let headers: usize = record
        .headers
        .iter()
        .map(|(name, value)| name.len() + value.as_ref().map_or(0, |v| v.len()) + 10)
        .sum();
    RECORD_OVERHEAD_BYTES + key + value + headers
}

#[cfg(test)]
mod tests {
    // Goal: batching, linger, routing, retry and expiry decisions of the producer session,
    // with time injected. Method: drive a session with a hand-built metadata cache and
    // explicit `now` values, checking what `drain`, `complete` and `expire` return.
    use bytes::Bytes;

    use super::*;
    use crate::session::metadata::tests::response;

    const MS: Duration = Duration::from_millis(1);

    fn config(linger_ms: u64, batch_bytes_max: usize) -> ProducerConfig {
        ProducerConfig {
            linger: Duration::from_millis(linger_ms),
            batch_bytes_max,
            delivery_timeout: Duration::from_secs(10),
            retries: 3,
            ..ProducerConfig::default()
        }
    }

    fn metadata(topics: &[(&str, i32)]) -> MetadataCache {
        let mut cache = MetadataCache::default();
        cache.update(Duration::ZERO, &response(topics, 1), true);
        cache
    }

    fn record(key: Option<&'static str>, value: &'static str) -> Record {
        Record {
            offset: 0,
            timestamp: 1_000,
            key: key.map(|key| Bytes::from_static(key.as_bytes())),
            value: Some(Bytes::from_static(value.as_bytes())),
            headers: Vec::new(),
        }
    }

    fn drained_tokens(drained: &Drained<u32>) -> Vec<u32> {
        drained
            .by_node
            .values()
            .flatten()
            .flat_map(|b| b.tokens.iter().copied())
            .collect()
    }

    #[test]
    fn linger_holds_a_partial_batch_until_it_expires() {
        let cache = metadata(&[("t", 1)]);
        let mut session = ProducerSession::new(&config(5, 16_384), 1);
        assert_eq!(
            session.send(Duration::ZERO, "t", None, record(None, "a"), 1, &cache),
            Ok(true)
        );
        // Appending to the open batch needs no wake-up.
        assert_eq!(
            session.send(MS, "t", None, record(None, "b"), 2, &cache),
            Ok(false)
        );
        assert!(session.drain(4 * MS, &cache).by_node.is_empty());
        assert_eq!(session.poll_timeout(4 * MS), Some(5 * MS));
        let drained = session.drain(5 * MS, &cache);
        assert_eq!(drained_tokens(&drained), vec![1, 2]);
        assert!(!session.is_idle(), "in flight until completed");
    }

    #[test]
    fn full_batch_is_sent_without_waiting_for_linger() {
        let cache = metadata(&[("t", 1)]);
        let mut session = ProducerSession::new(&config(1_000, 200), 1);
        let mut woke = Vec::new();
        for token in 0..6 {
            let wake = session.send(
                Duration::ZERO,
                "t",
                Some(0),
                record(None, "0123456789"),
                token,
                &cache,
            );
            woke.push(wake.unwrap_or(false));
        }
        // 61 header + 31 per record: 4 records fill 185 bytes, the 5th opens a new batch.
        let drained = session.drain(Duration::ZERO, &cache);
        assert_eq!(drained_tokens(&drained), vec![0, 1, 2, 3]);
        assert!(woke[4], "opening the second batch wakes the driver");
        // The second batch is not full and its partition has a batch in flight.
        assert!(session
            .drain(Duration::from_secs(5), &cache)
            .by_node
            .is_empty());
    }

    #[test]
    fn flush_ignores_linger() {
        let cache = metadata(&[("t", 1)]);
        let mut session = ProducerSession::new(&config(1_000, 16_384), 1);
        assert!(session
            .send(Duration::ZERO, "t", None, record(None, "a"), 7, &cache)
            .is_ok());
        session.begin_flush();
        assert_eq!(
            drained_tokens(&session.drain(Duration::ZERO, &cache)),
            vec![7]
        );
        session.end_flush();
    }

    #[test]
    fn keyed_records_follow_murmur2_and_keep_order_per_partition() {
        let cache = metadata(&[("t", 3)]);
        let mut session = ProducerSession::new(&config(0, 16_384), 1);
        let keys = ["k1", "k2", "k3", "k1", "k2", "k3"];
        for (token, key) in (0u32..).zip(keys) {
            assert!(session
                .send(
                    Duration::ZERO,
                    "t",
                    None,
                    record(Some(key), "v"),
                    token,
                    &cache
                )
                .is_ok());
        }
        let drained = session.drain(Duration::ZERO, &cache);
        for batch in drained.by_node.values().flatten() {
            let expected: Vec<u32> = (0u32..)
                .zip(keys)
                .filter(|(_, key)| {
                    weir_wire::murmur2::partition_for_key(key.as_bytes(), 3)
                        == batch.topic_partition.partition
                })
                .map(|(token, _)| token)
                .collect();
            assert_eq!(
                batch.tokens, expected,
                "partition {}",
                batch.topic_partition
            );
        }
    }

    #[test]
    fn records_wait_for_metadata_in_order() {
        let empty = MetadataCache::default();
        let mut session = ProducerSession::new(&config(0, 16_384), 1);
        assert_eq!(
            session.send(Duration::ZERO, "new", Some(0), record(None, "a"), 1, &empty),
            Ok(true)
        );
        assert!(session
            .send(Duration::ZERO, "new", Some(0), record(None, "b"), 2, &empty)
            .is_ok());
        assert_eq!(session.topics_awaiting_metadata(), vec!["new".to_owned()]);
        // Even with metadata known, a later send queues behind the waiting records.
        let cache = metadata(&[("new", 1)]);
        assert!(session
            .send(MS, "new", Some(0), record(None, "c"), 3, &cache)
            .is_ok());
        assert!(session.on_metadata(MS, &cache).is_empty());
        assert_eq!(drained_tokens(&session.drain(MS, &cache)), vec![1, 2, 3]);
    }

    #[test]
    fn invalid_partition_and_fatal_topic_errors_fail_records() {
        let cache = metadata(&[("t", 2)]);
        let mut session = ProducerSession::new(&config(0, 16_384), 1);
        let refused = session.send(Duration::ZERO, "t", Some(5), record(None, "a"), 1, &cache);
        assert!(matches!(refused, Err((ClientError::InvalidArgument(_), 1))));
        let mut bad = response(&[("bad", 0)], 1);
        bad.topics[0].error = ErrorCode::INVALID_TOPIC_EXCEPTION;
        let mut bad_cache = MetadataCache::default();
        bad_cache.update(Duration::ZERO, &bad, true);
        assert!(session
            .send(
                Duration::ZERO,
                "bad",
                None,
                record(None, "a"),
                2,
                &bad_cache
            )
            .is_ok());
        let failed = session.on_metadata(Duration::ZERO, &bad_cache);
        assert_eq!(failed.len(), 1);
        assert_eq!(
            failed[0].result.as_ref().err().and_then(ClientError::code),
            Some(ErrorCode::INVALID_TOPIC_EXCEPTION)
        );
        assert!(session.is_idle());
    }

    #[test]
    fn acked_batch_reports_offsets_per_record() {
        let cache = metadata(&[("t", 1)]);
        let mut session = ProducerSession::new(&config(0, 16_384), 1);
        for token in 0..3 {
            assert!(session
                .send(Duration::ZERO, "t", None, record(None, "v"), token, &cache)
                .is_ok());
        }
        let mut drained = session.drain(Duration::ZERO, &cache);
        let batch = drained
            .by_node
            .remove(&1)
            .and_then(|mut b| b.pop())
            .expect("one batch");
        let outcome = BatchOutcome::Acked {
            base_offset: 40,
            log_append_time_ms: -1,
        };
        let completed = session.complete(MS, batch, outcome);
        let offsets: Vec<(u32, i64, i64)> = completed
            .deliveries
            .iter()
            .map(|d| {
                let metadata = d.result.as_ref().expect("acked");
                (d.token, metadata.offset, metadata.timestamp)
            })
            .collect();
        assert_eq!(
            offsets,
            vec![(0, 40, 1_000), (1, 41, 1_000), (2, 42, 1_000)]
        );
        assert!(session.is_idle());
        assert_eq!(session.buffered_bytes(), 0);
    }

    #[test]
    fn retriable_failure_requeues_at_front_with_backoff() {
        let cache = metadata(&[("t", 1)]);
        let mut session = ProducerSession::new(&config(0, 100), 1);
        for token in 0..4 {
            assert!(session
                .send(
                    Duration::ZERO,
                    "t",
                    Some(0),
                    record(None, "0123456789"),
                    token,
                    &cache
                )
                .is_ok());
        }
        let mut drained = session.drain(Duration::ZERO, &cache);
        let first = drained
            .by_node
            .remove(&1)
            .and_then(|mut b| b.pop())
            .expect("batch");
        assert_eq!(first.tokens, vec![0]);
        let error = ClientError::kafka(ErrorCode::NOT_LEADER_OR_FOLLOWER, "t-0");
        let completed = session.complete(MS, first, BatchOutcome::Failed(error));
        assert!(completed.deliveries.is_empty());
        assert!(completed.refresh_metadata);
        // Backoff: nothing before ~100 ms (jitter keeps it within 80..120 ms).
        assert!(session.drain(50 * MS, &cache).by_node.is_empty());
        let retry_at = session.poll_timeout(50 * MS).expect("a retry deadline");
        assert!(retry_at >= 81 * MS && retry_at <= 121 * MS, "{retry_at:?}");
        // The retried batch goes before the batches queued behind it.
        let retried = session.drain(retry_at, &cache);
        assert_eq!(drained_tokens(&retried), vec![0]);
        let batch = retried
            .by_node
            .into_values()
            .flatten()
            .next()
            .expect("batch");
        assert_eq!(batch.attempts, 1);
    }

    // Goal: idempotent batches wait for a producer id, get per-partition sequences that
    // follow each other, keep theirs through retries, and a batch failing for good makes the
    // session ask for a new id, after which sequences restart at 0.
    // Method: drive one partition through ack, retry and fatal failure.
    #[test]
    fn idempotent_sequences_survive_retries_and_reset_after_loss() {
        let cache = metadata(&[("t", 1)]);
        let idempotent = ProducerConfig {
            idempotent: true,
            ..config(0, 30)
        };
        let mut session = ProducerSession::new(&idempotent, 1);
        for token in 0..3 {
            let value = record(None, "0123456789");
            assert!(session
                .send(Duration::ZERO, "t", Some(0), value, token, &cache)
                .is_ok());
        }
        assert!(session.needs_producer_id());
        assert!(session.drain(Duration::ZERO, &cache).by_node.is_empty());
        session.set_producer_id(42, 0);
        let take = |session: &mut ProducerSession<u32>, now| {
            let drained = session.drain(now, &cache);
            drained
                .by_node
                .into_values()
                .flatten()
                .next()
                .expect("batch")
        };
        let first = take(&mut session, Duration::ZERO);
        assert_eq!(first.sequence, Some((42, 0, 0)));
        let acked = BatchOutcome::Acked {
            base_offset: 0,
            log_append_time_ms: -1,
        };
        session.complete(MS, first, acked);
        let second = take(&mut session, MS);
        assert_eq!(second.sequence, Some((42, 0, 1)));
        let error = ClientError::kafka(ErrorCode::REQUEST_TIMED_OUT, "t-0");
        session.complete(MS, second, BatchOutcome::Failed(error));
        let retried = take(&mut session, Duration::from_secs(1));
        assert_eq!(
            retried.sequence,
            Some((42, 0, 1)),
            "a retry keeps its sequence"
        );
        let fatal = ClientError::kafka(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, "t-0");
        let completed =
            session.complete(Duration::from_secs(1), retried, BatchOutcome::Failed(fatal));
        assert_eq!(completed.deliveries.len(), 1);
        assert!(session.needs_producer_id());
        assert!(session
            .drain(Duration::from_secs(1), &cache)
            .by_node
            .is_empty());
        session.set_producer_id(43, 0);
        let third = take(&mut session, Duration::from_secs(1));
        assert_eq!(third.sequence, Some((43, 0, 0)));
        assert_eq!(sequence_after(i32::MAX - 1, 3), 1);
    }

    #[test]
    fn retries_are_bounded_then_the_error_is_delivered() {
        let cache = metadata(&[("t", 1)]);
        let mut session = ProducerSession::new(&config(0, 16_384), 1);
        assert!(session
            .send(Duration::ZERO, "t", None, record(None, "v"), 9, &cache)
            .is_ok());
        let mut now = Duration::ZERO;
        for attempt in 0..=3 {
            let drained = session.drain(now, &cache);
            let batch = drained
                .by_node
                .into_values()
                .flatten()
                .next()
                .expect("batch");
            let error = ClientError::kafka(ErrorCode::REQUEST_TIMED_OUT, "t-0");
            let completed = session.complete(now, batch, BatchOutcome::Failed(error));
            if attempt < 3 {
                assert!(
                    completed.deliveries.is_empty(),
                    "attempt {attempt} is retried"
                );
                now = session.poll_timeout(now).expect("retry deadline");
            } else {
                assert_eq!(completed.deliveries.len(), 1);
                assert_eq!(completed.deliveries[0].token, 9);
            }
        }
        assert!(session.is_idle());
    }

    #[test]
    fn fatal_failure_is_not_retried() {
        let cache = metadata(&[("t", 1)]);
        let mut session = ProducerSession::new(&config(0, 16_384), 1);
        assert!(session
            .send(Duration::ZERO, "t", None, record(None, "v"), 1, &cache)
            .is_ok());
        let batch = session
            .drain(Duration::ZERO, &cache)
            .by_node
            .into_values()
            .flatten()
            .next()
            .expect("batch");
        let error = ClientError::kafka(ErrorCode::MESSAGE_TOO_LARGE, "t-0");
        assert_eq!(
            session
                .complete(MS, batch, BatchOutcome::Failed(error))
                .deliveries
                .len(),
            1
        );
    }

    #[test]
    fn delivery_timeout_expires_queued_and_waiting_records() {
        let empty = MetadataCache::default();
        let cache = metadata(&[("t", 1)]);
        let mut config = config(0, 16_384);
        config.in_flight_batches_per_partition_max = 1;
        let mut session = ProducerSession::new(&config, 1);
        assert!(session
            .send(
                Duration::ZERO,
                "waiting",
                None,
                record(None, "v"),
                1,
                &empty
            )
            .is_ok());
        assert!(session
            .send(Duration::ZERO, "t", Some(0), record(None, "v"), 2, &cache)
            .is_ok());
        // Linger 0: the batch is ready now, so the next deadline is the delivery timeout.
        assert_eq!(
            session.poll_timeout(Duration::ZERO),
            Some(Duration::from_secs(10))
        );
        assert!(session.expire(Duration::from_secs(9)).is_empty());
        let expired = session.expire(Duration::from_secs(10));
        let mut tokens: Vec<u32> = expired.iter().map(|d| d.token).collect();
        tokens.sort_unstable();
        assert_eq!(tokens, vec![1, 2]);
        assert!(expired
            .iter()
            .all(|d| matches!(d.result, Err(ClientError::Timeout { .. }))));
        assert!(session.is_idle());
    }

    #[test]
    fn buffer_limit_refuses_sends() {
        let cache = metadata(&[("t", 1)]);
        let mut config = config(0, 16_384);
        config.buffer_bytes_max = 62;
        let mut session = ProducerSession::new(&config, 1);
        assert!(session
            .send(
                Duration::ZERO,
                "t",
                None,
                record(None, "0123456789"),
                1,
                &cache
            )
            .is_ok());
        assert!(session
            .send(
                Duration::ZERO,
                "t",
                None,
                record(None, "0123456789"),
                2,
                &cache
            )
            .is_ok());
        let refused = session.send(
            Duration::ZERO,
            "t",
            None,
            record(None, "0123456789"),
            3,
            &cache,
        );
        assert!(matches!(refused, Err((ClientError::BufferFull { .. }, 3))));
        // Two 31-byte records reach the 62-byte limit; the third is refused.
        assert_eq!(session.buffered_bytes(), 62);
        assert!(!session.has_room());
    }

    #[test]
    fn unkeyed_records_rotate_partitions_per_batch() {
        let cache = metadata(&[("t", 3)]);
        let mut session = ProducerSession::new(&config(1_000, 130), 3);
        let mut partitions = Vec::new();
        for token in 0..6 {
            assert!(session
                .send(
                    Duration::ZERO,
                    "t",
                    None,
                    record(None, "0123456789"),
                    token,
                    &cache
                )
                .is_ok());
        }
        // Two records (61 + 2 * 31 bytes) fit a 130-byte batch. A batch that cannot take the
        // next record is sealed and sent at once; the topic moves on to the next partition.
        let mut sent_partitions = Vec::new();
        for batch in session
            .drain(Duration::ZERO, &cache)
            .by_node
            .into_values()
            .flatten()
        {
            assert_eq!(batch.tokens.len(), 2);
            sent_partitions.push(batch.topic_partition.partition);
            partitions.push(batch.tokens);
        }
        assert_eq!(sent_partitions.len(), 2);
        // The third batch is still open and waits for linger.
        let last = session.drain(Duration::from_secs(1), &cache);
        let last: Vec<_> = last.by_node.into_values().flatten().collect();
        assert_eq!(last.len(), 1);
        sent_partitions.push(last[0].topic_partition.partition);
        partitions.push(last[0].tokens.clone());
        sent_partitions.sort_unstable();
        assert_eq!(sent_partitions, vec![0, 1, 2], "{partitions:?}");
    }
}
