//! The idempotent producer of edge protocol version 2: the client, not the gateway, is the
//! Kafka producer, so its records survive lost connections without duplicates.
//!
//! The client holds the producer id and epoch (`InitProducer`), picks each record's
//! partition itself (explicit, Kafka's murmur2 of the key, or round robin over the count
//! from `DescribeTopic`) and numbers its batches per partition. A batch keeps its producer,
//! epoch and sequence numbers for its whole life: when the socket drops, every batch whose
//! acknowledgement was not read is sent again, unchanged and in sequence order, on the
//! next socket, and the broker's producer state answers a batch it already has with the
//! offsets of the first write instead of appending it again.
//!
//! Invariants:
//! - At most [`PRODUCE_BATCHES_IN_FLIGHT_MAX`] batches per partition are unacknowledged,
//!   so any of them that is resent is still among the batches the broker remembers for
//!   deduplication; records beyond that wait in the partition's queue and leave together
//!   as the next batch (batching by backpressure, no linger timer).
//! - A partition's batches are written to the socket in sequence order: new batches only
//!   after every older unacknowledged one was (re)sent on the current socket, and
//!   [`Session::start`] writes before it returns.
//! - A batch is retried with its original stamp; it is renumbered only after the broker
//!   refused it on sequence grounds (OUT_OF_ORDER_SEQUENCE_NUMBER with no older batch of
//!   the partition outstanding, or an unknown/fenced producer), which proves it was not
//!   written. Renumbering happens under a new producer id (a reset), once no batch of any
//!   partition is outstanding, so an old batch can never be taken for a new one.
//! - A batch that failed for good (a non-retriable error, or retriable errors past
//!   [`ATTEMPTS_MAX`]) leaves a gap in its partition's sequence; the producer resets.
//! - Queued records are bounded ([`QUEUED_RECORDS_MAX`]) and so are partitions with
//!   sequence state ([`PARTITIONS_MAX`]).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use js_sys::{Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use weir_edge::{
    Acks, NewRecord, Op, ProduceBatch, ProducerSequence, Reply, BATCH_RECORDS_MAX,
    PRODUCE_BATCHES_IN_FLIGHT_MAX,
};

use crate::convert::{error_name, js_error, set, NETWORK_EXCEPTION};
use crate::session::{set_timeout, Session};

/// Records waiting for a batch, over all partitions.
pub const QUEUED_RECORDS_MAX: usize = 100_000;
/// Partitions with sequence state in one producer.
pub const PARTITIONS_MAX: usize = 100_000;
/// Record bytes (keys, values, headers) past which a batch takes no more records (a
/// larger record travels alone). Kafka's `batch.size` is 16 KiB; 64 KiB keeps batches far
/// below the broker's default `message.max.bytes` (1 MiB), so one oversized record never
/// takes records that would fit down with it.
const BATCH_BYTES_MAX: usize = 64 * 1024;
/// Sends of a batch that failed with a retriable broker error (lost connections do not
/// count: those batches wait for the next socket, for as long as the client reconnects).
pub const ATTEMPTS_MAX: u32 = 20;
/// First pause after a retriable error; doubles per attempt up to [`BACKOFF_MS_MAX`].
const BACKOFF_MS_MIN: f64 = 100.0;
/// Longest pause between attempts.
const BACKOFF_MS_MAX: f64 = 2_000.0;
/// Attempts to learn a topic's partition count (a new topic has no leaders for a moment).
const DESCRIBE_ATTEMPTS_MAX: u32 = 10;

type PartitionKey = (String, i32);

/// The promise of one `send`.
struct Waiter {
    resolve: Function,
    reject: Function,
}

/// A record waiting for a batch.
struct Queued {
    record: NewRecord,
    waiter: Waiter,
}

/// Records written (or to be written) as one record batch.
struct Batch {
    /// Unique in the producer: completions find their batch by it.
    id: u64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    records: Vec<NewRecord>,
    waiters: Vec<Waiter>,
    /// Times sent; a completion carries the number of its send, so an answer to an older
    /// send of a batch that was sent again is ignored.
    sends: u32,
    /// Sent and not answered yet, on the socket of session generation `generation`.
    in_flight: bool,
    generation: u32,
    /// Sends that failed with a retriable broker error.
    attempts: u32,
}

#[derive(Default)]
struct PartitionState {
    /// Sequence of the next new batch's first record.
    next_sequence: i32,
    /// Unacknowledged batches in sequence order (at most PRODUCE_BATCHES_IN_FLIGHT_MAX).
    batches: VecDeque<Batch>,
    /// Records not in a batch yet, in send order.
    queued: VecDeque<Queued>,
    /// Batches refused on sequence grounds (not written), renumbered at the next reset.
    held: Vec<Batch>,
    /// No sends before this time (ms, `Date.now()`): backing off after a retriable error.
    resume_at_ms: f64,
}

#[derive(Default)]
struct TopicState {
    partitions: Option<i32>,
    round_robin: i32,
    /// The `DescribeTopic` in progress, shared by every send waiting for it.
    describing: Option<Promise>,
}

#[derive(Default)]
struct State {
    /// (producer id, epoch) once InitProducer answered.
    stamp: Option<(i64, i16)>,
    /// A batch failed for good or was refused on sequence grounds: take a new producer id
    /// once nothing is outstanding.
    reset_pending: bool,
    /// An InitProducer is under way.
    initializing: bool,
    /// A task waits for the next socket to resend.
    reopen_waiting: bool,
    next_batch_id: u64,
    queued_records: usize,
    topics: BTreeMap<String, TopicState>,
    partitions: BTreeMap<PartitionKey, PartitionState>,
}

/// One idempotent producer.
pub struct Pipeline {
    session: Rc<Session>,
    state: RefCell<State>,
}

/// What to do with a batch after an error answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The connection dropped: send it again on the next socket.
    Resend,
    /// A retriable broker error: send it again after a backoff.
    Retry,
    /// Refused on sequence grounds (not written): renumber it under a new producer id.
    Hold,
    /// Failed for good: reject its records.
    Fail,
}

impl Pipeline {
    /// A producer over `session` (which must speak edge protocol version 2).
    pub fn new(session: Rc<Session>) -> Rc<Pipeline> {
        Rc::new(Pipeline {
            session,
            state: RefCell::new(State {
                next_batch_id: 1,
                ..State::default()
            }),
        })
    }

    /// Queue one record; resolves to `{ partition, offset }` once the broker has it.
    pub async fn send(
        self: &Rc<Self>,
        topic: String,
        record: NewRecord,
        partition: Option<i32>,
    ) -> Result<JsValue, JsValue> {
        let mut count = self.partition_count(&topic, false).await?;
        if let Some(partition) = partition.filter(|p| *p >= count) {
            // Partitions may have been added since we asked: ask once more.
            count = self.partition_count(&topic, true).await?;
            if partition >= count {
                let message = format!("{topic} has no partition {partition}");
                return Err(js_error("UNKNOWN_TOPIC_OR_PARTITION", 3, &message));
            }
        }
        let mut waiter = None;
        let promise = Promise::new(&mut |resolve, reject| {
            waiter = Some(Waiter { resolve, reject });
        });
        let waiter = waiter.ok_or_else(|| js_error(NETWORK_EXCEPTION, -1, "no promise"))?;
        let key = {
            let mut state = self.state.borrow_mut();
            let chosen = match (partition, &record.key) {
                (Some(partition), _) => partition,
                (None, Some(key)) => weir_edge::partition_for_key(key, count),
                (None, None) => {
                    let topic_state = state.topics.entry(topic.clone()).or_default();
                    let chosen = topic_state.round_robin.rem_euclid(count);
                    topic_state.round_robin = (chosen + 1) % count;
                    chosen
                }
            };
            let key = (topic, chosen);
            if state.queued_records >= QUEUED_RECORDS_MAX {
                let message = format!("{QUEUED_RECORDS_MAX} records are waiting to be sent");
                return Err(js_error("BUFFER_EXHAUSTED", -1, &message));
            }
            if !state.partitions.contains_key(&key) && state.partitions.len() >= PARTITIONS_MAX {
                let message = format!("one producer writes at most {PARTITIONS_MAX} partitions");
                return Err(js_error("INVALID_ARGUMENT", -1, &message));
            }
            state.queued_records += 1;
            let partition_state = state.partitions.entry(key.clone()).or_default();
            partition_state.queued.push_back(Queued { record, waiter });
            key
        };
        self.pump(&key);
        JsFuture::from(promise).await
    }

    /// The topic's partition count (asking the gateway once for all concurrent sends).
    async fn partition_count(self: &Rc<Self>, topic: &str, refresh: bool) -> Result<i32, JsValue> {
        let promise = {
            let mut state = self.state.borrow_mut();
            let topic_state = state.topics.entry(topic.to_owned()).or_default();
            if let (Some(count), false) = (topic_state.partitions, refresh) {
                return Ok(count);
            }
            match &topic_state.describing {
                Some(promise) => promise.clone(),
                None => {
                    let this = Rc::clone(self);
                    let name = topic.to_owned();
                    let promise = wasm_bindgen_futures::future_to_promise(async move {
                        let described = this.describe(&name).await;
                        let mut state = this.state.borrow_mut();
                        let topic_state = state.topics.entry(name).or_default();
                        topic_state.describing = None;
                        if let Ok(count) = described {
                            topic_state.partitions = Some(count);
                        }
                        described.map(JsValue::from)
                    });
                    topic_state.describing = Some(promise.clone());
                    promise
                }
            }
        };
        let count = JsFuture::from(promise).await?;
        Ok(count.as_f64().unwrap_or(0.0) as i32)
    }

    async fn describe(&self, topic: &str) -> Result<i32, JsValue> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let op = Op::DescribeTopic {
                topic: topic.to_owned(),
                create: true,
            };
            let error = match self.session.request(op).await {
                Ok(Reply::Topic(info)) if info.partitions > 0 => return Ok(info.partitions),
                Ok(_) => js_error("UNKNOWN_SERVER_ERROR", -1, "unexpected reply"),
                Err(error) => error,
            };
            let name = error_name(&error);
            let retriable = matches!(
                name.as_str(),
                NETWORK_EXCEPTION | "LEADER_NOT_AVAILABLE" | "REQUEST_TIMED_OUT"
            );
            if !retriable || attempt >= DESCRIBE_ATTEMPTS_MAX || self.session.is_closed() {
                return Err(error);
            }
            sleep(backoff_ms(attempt)).await;
        }
    }

    /// Send what partition `key` may send now: first its batches waiting to be resent
    /// (oldest first), then new batches from its queue while the window has room.
    fn pump(self: &Rc<Self>, key: &PartitionKey) {
        if self.session.is_closed() {
            self.fail_all(&self.session.closed_error());
            return;
        }
        if !self.session.is_open() {
            self.await_reopen();
            return;
        }
        let mut started = Vec::new();
        {
            let mut state = self.state.borrow_mut();
            let state = &mut *state;
            let stamp = state.stamp;
            let may_grow = stamp.is_some() && !state.reset_pending;
            let Some(partition) = state.partitions.get_mut(key) else {
                return;
            };
            if js_sys::Date::now() < partition.resume_at_ms {
                return; // A timer pumps again when the backoff ends.
            }
            let generation = self.session.generation();
            let on_socket = |batch: &Batch| batch.in_flight && batch.generation == generation;
            for batch in partition.batches.iter_mut().filter(|b| !on_socket(b)) {
                match self.start(key, batch) {
                    Ok(pending) => started.push(pending),
                    Err(_) => break, // The socket just went: the reopen pump resends.
                }
            }
            while let Some((producer_id, producer_epoch)) = stamp.filter(|_| may_grow) {
                if partition.batches.len() >= PRODUCE_BATCHES_IN_FLIGHT_MAX
                    || partition.queued.is_empty()
                    || !partition.batches.iter().all(on_socket)
                {
                    break;
                }
                let (records, waiters) = take_batch(partition);
                state.queued_records -= records.len();
                let base_sequence = partition.next_sequence;
                partition.next_sequence = next_sequence(base_sequence, records.len());
                let id = state.next_batch_id;
                state.next_batch_id += 1;
                partition.batches.push_back(Batch {
                    id,
                    producer_id,
                    producer_epoch,
                    base_sequence,
                    records,
                    waiters,
                    sends: 0,
                    in_flight: false,
                    generation: 0,
                    attempts: 0,
                });
                let batch = partition.batches.back_mut().expect("just pushed");
                match self.start(key, batch) {
                    Ok(pending) => started.push(pending),
                    Err(_) => break,
                }
            }
        }
        if self.state.borrow().stamp.is_none() {
            self.initialize();
        }
        for (batch_id, send, pending) in started {
            let this = Rc::clone(self);
            let key = key.clone();
            spawn_local(async move {
                let answer = pending.answer().await;
                this.complete(&key, batch_id, send, answer);
            });
        }
    }

    /// Write one batch to the socket.
    fn start(
        &self,
        key: &PartitionKey,
        batch: &mut Batch,
    ) -> Result<(u64, u32, crate::session::Pending), JsValue> {
        let op = Op::ProduceBatch(ProduceBatch {
            topic: key.0.clone(),
            partition: key.1,
            acks: Acks::All,
            sequence: Some(ProducerSequence {
                producer_id: batch.producer_id,
                producer_epoch: batch.producer_epoch,
                base_sequence: batch.base_sequence,
            }),
            records: batch.records.clone(),
        });
        let pending = self.session.start(op)?;
        batch.sends += 1;
        batch.in_flight = true;
        batch.generation = self.session.generation();
        Ok((batch.id, batch.sends, pending))
    }

    /// A batch's answer arrived (or its connection dropped).
    fn complete(
        self: &Rc<Self>,
        key: &PartitionKey,
        batch_id: u64,
        send: u32,
        answer: Result<Reply, JsValue>,
    ) {
        let mut settle: Vec<(Waiter, Result<JsValue, JsValue>)> = Vec::new();
        {
            let mut state = self.state.borrow_mut();
            let state = &mut *state;
            let Some(partition) = state.partitions.get_mut(key) else {
                return;
            };
            let Some(index) = partition.batches.iter().position(|b| b.id == batch_id) else {
                return;
            };
            if partition.batches[index].sends != send {
                return; // An answer to a send that was superseded by a resend.
            }
            let error = match answer {
                Ok(Reply::Produced { offset, .. }) => {
                    let batch = partition.batches.remove(index).expect("index is valid");
                    for (i, waiter) in batch.waiters.into_iter().enumerate() {
                        let placed = Object::new();
                        set(&placed, "partition", JsValue::from(key.1));
                        set(&placed, "offset", JsValue::from((offset + i as i64) as f64));
                        settle.push((waiter, Ok(placed.into())));
                    }
                    None
                }
                Ok(_) => Some(js_error("UNKNOWN_SERVER_ERROR", -1, "unexpected reply")),
                Err(error) => Some(error),
            };
            if let Some(error) = error {
                let batch = &mut partition.batches[index];
                batch.in_flight = false;
                let connected = self.session.is_open();
                let mut outcome = classify(&error_name(&error), connected, index > 0);
                if outcome == Outcome::Retry {
                    batch.attempts += 1;
                    if batch.attempts >= ATTEMPTS_MAX {
                        outcome = Outcome::Fail;
                    } else {
                        let delay = backoff_ms(batch.attempts);
                        partition.resume_at_ms = js_sys::Date::now() + delay;
                        self.pump_later(key.clone(), delay);
                    }
                }
                match outcome {
                    Outcome::Resend | Outcome::Retry => {}
                    Outcome::Hold => {
                        let batch = partition.batches.remove(index).expect("index is valid");
                        partition.held.push(batch);
                        state.reset_pending = true;
                    }
                    Outcome::Fail => {
                        let batch = partition.batches.remove(index).expect("index is valid");
                        settle.extend(batch.waiters.into_iter().map(|w| (w, Err(error.clone()))));
                        state.reset_pending = true;
                    }
                }
            }
        }
        for (waiter, result) in settle {
            let _ = match result {
                Ok(value) => waiter.resolve.call1(&JsValue::UNDEFINED, &value),
                Err(error) => waiter.reject.call1(&JsValue::UNDEFINED, &error),
            };
        }
        self.pump(key);
        self.reset_when_idle();
    }

    /// Take a new producer id once nothing is outstanding, if a reset is pending.
    fn reset_when_idle(self: &Rc<Self>) {
        let idle = {
            let state = self.state.borrow();
            state.reset_pending
                && !state.initializing
                && state.partitions.values().all(|p| p.batches.is_empty())
        };
        if idle {
            self.initialize();
        }
    }

    /// Ask for a (new) producer id; on success every partition starts over at sequence 0
    /// with its held batches' records first.
    fn initialize(self: &Rc<Self>) {
        {
            let mut state = self.state.borrow_mut();
            if state.initializing {
                return;
            }
            state.initializing = true;
        }
        let this = Rc::clone(self);
        spawn_local(async move {
            let answer = loop {
                match this.session.request(Op::InitProducer).await {
                    Err(error)
                        if error_name(&error) == NETWORK_EXCEPTION && !this.session.is_closed() =>
                    {
                        continue; // `request` waits for the next socket.
                    }
                    answer => break answer,
                }
            };
            let error = match answer {
                Ok(Reply::Producer {
                    producer_id,
                    producer_epoch,
                }) => {
                    this.start_over(producer_id, producer_epoch);
                    this.pump_all();
                    return;
                }
                Ok(_) => js_error("UNKNOWN_SERVER_ERROR", -1, "unexpected reply"),
                Err(error) => error,
            };
            this.state.borrow_mut().initializing = false;
            this.fail_all(&error);
        });
    }

    /// Adopt a new producer id: sequences restart at 0, held records go first.
    fn start_over(&self, producer_id: i64, producer_epoch: i16) {
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        state.stamp = Some((producer_id, producer_epoch));
        state.reset_pending = false;
        state.initializing = false;
        for partition in state.partitions.values_mut() {
            partition.next_sequence = 0;
            let mut held = std::mem::take(&mut partition.held);
            held.sort_by_key(|batch| batch.id);
            for batch in held.into_iter().rev() {
                let records = batch.records.into_iter().zip(batch.waiters);
                for (record, waiter) in records.rev() {
                    partition.queued.push_front(Queued { record, waiter });
                    state.queued_records += 1;
                }
            }
        }
    }

    fn pump_all(self: &Rc<Self>) {
        let keys: Vec<PartitionKey> = self.state.borrow().partitions.keys().cloned().collect();
        for key in keys {
            self.pump(&key);
        }
        self.reset_when_idle();
    }

    fn pump_later(self: &Rc<Self>, key: PartitionKey, delay_ms: f64) {
        let this = Rc::clone(self);
        let timer = Closure::once_into_js(move || {
            // The backoff is over, whatever `Date.now()` says (timers may fire a little
            // early by it), so this pump cannot return without sending.
            if let Some(partition) = this.state.borrow_mut().partitions.get_mut(&key) {
                partition.resume_at_ms = 0.0;
            }
            this.pump(&key);
        });
        set_timeout(timer.unchecked_ref(), delay_ms);
    }

    /// Resend everything once the next socket is open (one waiting task at a time).
    fn await_reopen(self: &Rc<Self>) {
        if std::mem::replace(&mut self.state.borrow_mut().reopen_waiting, true) {
            return;
        }
        let this = Rc::clone(self);
        spawn_local(async move {
            let opened = JsFuture::from(this.session.wait_open()).await;
            this.state.borrow_mut().reopen_waiting = false;
            match opened {
                Ok(_) => this.pump_all(),
                Err(error) => this.fail_all(&error),
            }
        });
    }

    /// Reject every record not acknowledged yet (the client is closed, or no producer id).
    fn fail_all(&self, error: &JsValue) {
        let mut waiters = Vec::new();
        {
            let mut state = self.state.borrow_mut();
            state.queued_records = 0;
            for partition in state.partitions.values_mut() {
                waiters.extend(partition.queued.drain(..).map(|queued| queued.waiter));
                for batch in partition.batches.drain(..).chain(partition.held.drain(..)) {
                    waiters.extend(batch.waiters);
                }
            }
        }
        for waiter in waiters {
            let _ = waiter.reject.call1(&JsValue::UNDEFINED, error);
        }
    }
}

/// Take the next batch's records from a partition's queue.
fn take_batch(partition: &mut PartitionState) -> (Vec<NewRecord>, Vec<Waiter>) {
    // A batch never wraps its sequence numbers: it ends at i32::MAX at the latest.
    let until_wrap = usize::try_from(i32::MAX - partition.next_sequence)
        .unwrap_or(0)
        .saturating_add(1);
    let count_max = BATCH_RECORDS_MAX.min(until_wrap);
    let mut records = Vec::new();
    let mut waiters = Vec::new();
    let mut bytes = 0;
    while let Some(next) = partition.queued.front() {
        let size = record_bytes(&next.record);
        if !records.is_empty() && (records.len() >= count_max || bytes + size > BATCH_BYTES_MAX) {
            break;
        }
        let queued = partition.queued.pop_front().expect("front exists");
        bytes += size;
        records.push(queued.record);
        waiters.push(queued.waiter);
    }
    (records, waiters)
}

/// The sequence after a batch of `count` records at `base` (Kafka wraps i32::MAX to 0).
fn next_sequence(base: i32, count: usize) -> i32 {
    let count = i32::try_from(count).unwrap_or(i32::MAX);
    // Overflow means the batch ended at i32::MAX (take_batch stops there): wrap to 0.
    base.checked_add(count).unwrap_or(0)
}

fn record_bytes(record: &NewRecord) -> usize {
    let headers: usize = record
        .headers
        .iter()
        .map(|header| header.key.len() + header.value.as_ref().map_or(0, Vec::len))
        .sum();
    record.key.as_ref().map_or(0, Vec::len) + record.value.as_ref().map_or(0, Vec::len) + headers
}

/// What an error answer means for the batch. `connected`: the socket is still open (the
/// gateway itself answered, e.g. NETWORK_EXCEPTION for a broker it could not reach, which
/// deserves a backoff); `behind`: an older batch of the same partition is outstanding.
fn classify(name: &str, connected: bool, behind: bool) -> Outcome {
    match name {
        NETWORK_EXCEPTION if !connected => Outcome::Resend,
        NETWORK_EXCEPTION => Outcome::Retry,
        // The older batch has not landed yet: follow it.
        "OUT_OF_ORDER_SEQUENCE_NUMBER" if behind => Outcome::Retry,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
        | "UNKNOWN_PRODUCER_ID"
        | "INVALID_PRODUCER_EPOCH"
        | "PRODUCER_FENCED" => Outcome::Hold,
        "REQUEST_TIMED_OUT"
        | "NOT_LEADER_OR_FOLLOWER"
        | "LEADER_NOT_AVAILABLE"
        | "FENCED_LEADER_EPOCH"
        | "UNKNOWN_LEADER_EPOCH"
        | "NOT_ENOUGH_REPLICAS"
        | "NOT_ENOUGH_REPLICAS_AFTER_APPEND"
        | "UNKNOWN_TOPIC_OR_PARTITION"
        | "KAFKA_STORAGE_ERROR"
        | "CORRUPT_MESSAGE"
        | "COORDINATOR_LOAD_IN_PROGRESS"
        | "THROTTLING_QUOTA_EXCEEDED" => Outcome::Retry,
        _ => Outcome::Fail,
    }
}

fn backoff_ms(attempt: u32) -> f64 {
    let exponent = attempt.saturating_sub(1).min(16) as i32;
    (BACKOFF_MS_MIN * 2f64.powi(exponent)).min(BACKOFF_MS_MAX)
}

async fn sleep(ms: f64) {
    let promise = Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: batches never wrap their sequence numbers and the next sequence wraps like
    // Kafka's. Method: next_sequence at and near i32::MAX.
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn sequences_wrap_between_batches() {
        assert_eq!(next_sequence(0, 3), 3);
        assert_eq!(next_sequence(i32::MAX - 2, 3), 0);
        assert_eq!(next_sequence(i32::MAX, 1), 0);
    }

    // Goal: only errors that prove a batch unwritten renumber it, and an out-of-order
    // answer behind an older outstanding batch waits for it. Method: classify names.
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn errors_are_classified() {
        assert_eq!(classify(NETWORK_EXCEPTION, false, false), Outcome::Resend);
        assert_eq!(classify(NETWORK_EXCEPTION, true, false), Outcome::Retry);
        let out_of_order = "OUT_OF_ORDER_SEQUENCE_NUMBER";
        assert_eq!(classify(out_of_order, true, true), Outcome::Retry);
        assert_eq!(classify(out_of_order, true, false), Outcome::Hold);
        assert_eq!(classify("NOT_ENOUGH_REPLICAS", true, false), Outcome::Retry);
        assert_eq!(classify("MESSAGE_TOO_LARGE", true, false), Outcome::Fail);
    }
}
