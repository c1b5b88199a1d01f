//! A reference executor: histories of a *correct* queue, for property tests, mutation tests
//! and benchmarks (§6.9.2 of `jepsen-checker.md`).
//!
//! Model: per key a log of entries (offset = index) that are visible (committed) or not
//! (aborted transactional records and commit markers, which leave offset gaps). Client
//! threads invoke ops concurrently; each op takes effect atomically when it completes (its
//! linearization point lies between invocation and completion), so every history is one a
//! correct broker could produce: acked sends are durable and ordered, transactions are
//! atomic and read_committed, consumers read contiguously from their position and rewind on
//! `fail`, a consumer group commits offsets atomically with its reads. Faults the checker
//! must tolerate are injected: definite failures, `info` outcomes that may or may not have
//! applied (the process is then retired), client crashes, reassignments, final catch-up
//! reads. Deterministic: one seed, one history (own SplitMix64 PRNG, no global randomness).

use std::collections::BTreeMap;

use crate::config::{Acks, CheckConfig, SubVia};
use crate::history::{Event, Header, History, Key, Kind, Mop, Offset, Phase, Val, Value, F};

/// Records one final-phase poll returns per key, at most.
const FINAL_POLL_RECORDS_MAX: usize = 64;
/// Records one main-phase poll returns per key, at most.
const POLL_RECORDS_MAX: u64 = 4;

/// Shape of a synthetic workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Client invocations in the main phase.
    pub ops: usize,
    /// PRNG seed.
    pub seed: u64,
    /// Partitions (keys `0..key_count`).
    pub key_count: u32,
    /// Concurrent client threads.
    pub thread_count: u32,
    /// Data ops are Kafka transactions (`f: txn`, mixing sends and polls).
    pub txn: bool,
    /// Assign, subscribe, or both (chosen per assignment op).
    pub sub_via: SubVia,
    /// Chance (percent) that a data op fails definitely.
    pub fail_percent: u32,
    /// Chance (percent) that a data op ends `info`.
    pub info_percent: u32,
    /// Chance (percent) that an idle thread crashes its client.
    pub crash_percent: u32,
    /// Micro-operations per data op, at most.
    pub mops_max: u32,
    /// Append a final phase that reads every key to its end.
    pub final_reads: bool,
}

impl Workload {
    /// A mixed non-transactional workload with faults and final reads.
    pub fn new(ops: usize, seed: u64) -> Self {
        Self {
            ops,
            seed,
            key_count: 8,
            thread_count: 10,
            txn: false,
            sub_via: SubVia::Assign,
            fail_percent: 3,
            info_percent: 3,
            crash_percent: 1,
            mops_max: 4,
            final_reads: true,
        }
    }

    /// The config under which this workload's histories must be valid: every guarantee on
    /// (acks=all, idempotence, strict EOS, ww edges for the informational search).
    pub fn config(&self) -> CheckConfig {
        CheckConfig {
            acks: Acks::All,
            idempotence: true,
            txn: self.txn,
            sub_via: self.sub_via,
            ww_deps: true,
            eos_strict: true,
            ..CheckConfig::default()
        }
    }

    /// Runs the reference executor.
    pub fn history(&self) -> History {
        Executor::new(self).run()
    }
}

/// A synthetic history of `ops` main-phase operations from [`Workload::new`].
pub fn synthetic_history(ops: usize, seed: u64) -> History {
    Workload::new(ops, seed).history()
}

/// SplitMix64: tiny, seedable, good enough for workload choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        self.next() % n
    }

    fn percent(&mut self, p: u32) -> bool {
        self.below(100) < u64::from(p)
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    val: Val,
    visible: bool,
}

/// One client thread: a process id (replaced after `info`) and its consumer state.
struct Thread {
    process: u64,
    assigned: Vec<Key>,
    /// Next offset to read per key (assign mode).
    positions: Vec<Offset>,
    subscribed: bool,
    pending: Option<(F, Value)>,
}

struct Executor<'w> {
    workload: &'w Workload,
    rng: Rng,
    logs: Vec<Vec<Entry>>,
    group_positions: Vec<Offset>,
    next_val: Vec<Val>,
    next_process: u64,
    threads: Vec<Thread>,
    events: Vec<Event>,
}

/// Outcome of a data op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Fail,
    /// Info, and whether the effect was applied.
    Info(bool),
}

impl<'w> Executor<'w> {
    fn new(workload: &'w Workload) -> Self {
        let key_count = workload.key_count.max(1) as usize;
        let mut executor = Self {
            workload,
            rng: Rng(workload.seed),
            logs: vec![Vec::new(); key_count],
            group_positions: vec![0; key_count],
            next_val: vec![0; key_count],
            next_process: 0,
            threads: Vec::new(),
            events: Vec::new(),
        };
        for _ in 0..workload.thread_count.max(1) {
            let thread = executor.fresh_thread();
            executor.threads.push(thread);
        }
        executor
    }

    fn fresh_thread(&mut self) -> Thread {
        self.next_process += 1;
        Thread {
            process: self.next_process - 1,
            assigned: Vec::new(),
            positions: vec![0; self.logs.len()],
            subscribed: false,
            pending: None,
        }
    }

    fn run(mut self) -> History {
        let mut invoked = 0;
        // A random thread either invokes (if idle) or completes its op, so ops of different
        // threads overlap in every possible way while each thread stays sequential.
        while invoked < self.workload.ops {
            let t = self.rng.below(self.threads.len() as u64) as usize;
            if self.threads[t].pending.is_some() {
                self.complete(t);
            } else {
                self.invoke(t);
                invoked += 1;
            }
        }
        // No dangling invocations: the final reads must see a quiescent log.
        while let Some(t) = self.pending_thread() {
            self.complete(t);
        }
        if self.workload.final_reads {
            self.final_reads();
        }
        let header = Header {
            config: self.workload.config(),
            ..Header::default()
        };
        History {
            header: Some(header),
            events: self.events,
        }
    }

    fn pending_thread(&mut self) -> Option<usize> {
        let pending: Vec<usize> = (0..self.threads.len())
            .filter(|&t| self.threads[t].pending.is_some())
            .collect();
        (!pending.is_empty()).then(|| pending[self.rng.below(pending.len() as u64) as usize])
    }

    fn emit(&mut self, process: u64, kind: Kind, f: F, value: Value) -> &mut Event {
        let mut event = Event::new(process, kind, f, value);
        event.time = Some(self.events.len() as u64 * 1_000);
        self.events.push(event);
        self.events.last_mut().expect("just pushed")
    }

    fn invoke(&mut self, t: usize) {
        let key_count = self.logs.len() as u64;
        let process = self.threads[t].process;
        let (f, value) = if self.threads[t].assigned.is_empty() || self.rng.percent(5) {
            let subscribe = match self.workload.sub_via {
                SubVia::Assign => false,
                SubVia::Subscribe => true,
                SubVia::Both => self.rng.percent(50),
            };
            let mut keys: Vec<Key> = (0..key_count as Key)
                .filter(|_| self.rng.percent(60))
                .collect();
            if keys.is_empty() {
                keys.push(self.rng.below(key_count) as Key);
            }
            (
                if subscribe { F::Subscribe } else { F::Assign },
                Value::Keys(keys),
            )
        } else if self.rng.percent(self.workload.crash_percent) {
            (F::Crash, Value::Other(serde_json::Value::Null))
        } else {
            let mops = self.data_mops();
            let f = match (self.workload.txn, &mops[0]) {
                (true, _) => F::Txn,
                (false, Mop::Send { .. }) => F::Send,
                (false, Mop::Poll(_)) => F::Poll,
            };
            (f, Value::Mops(mops))
        };
        self.threads[t].pending = Some((f.clone(), value.clone()));
        self.emit(process, Kind::Invoke, f, value);
    }

    /// Mops of a data op: sends with fresh values and/or polls.
    fn data_mops(&mut self) -> Vec<Mop> {
        let count = 1 + self.rng.below(u64::from(self.workload.mops_max.max(1)));
        let sends = if self.workload.txn {
            None
        } else {
            Some(self.rng.percent(50))
        };
        let mut mops = Vec::new();
        for _ in 0..count {
            let send = sends.unwrap_or_else(|| self.rng.percent(60));
            if send {
                let key = self.rng.below(self.logs.len() as u64) as usize;
                self.next_val[key] += 1;
                mops.push(Mop::send(key as Key, self.next_val[key]));
            } else if !mops.contains(&Mop::poll()) || self.workload.txn {
                mops.push(Mop::poll());
            }
        }
        mops
    }

    fn outcome(&mut self) -> Outcome {
        let roll = self.rng.below(100) as u32;
        if roll < self.workload.fail_percent {
            Outcome::Fail
        } else if roll < self.workload.fail_percent + self.workload.info_percent {
            Outcome::Info(self.rng.percent(50))
        } else {
            Outcome::Ok
        }
    }

    fn complete(&mut self, t: usize) {
        let (f, value) = self.threads[t]
            .pending
            .take()
            .expect("complete() needs a pending op");
        let process = self.threads[t].process;
        match (f, value) {
            (f @ (F::Assign | F::Subscribe), Value::Keys(keys)) => {
                let thread = &mut self.threads[t];
                // Kafka keeps the position of a partition that stays assigned; a new
                // partition, or a switch between assign and subscribe, starts from the
                // beginning (auto.offset.reset=earliest, no committed offset for assign).
                let switched = thread.subscribed != (f == F::Subscribe);
                for key in 0..thread.positions.len() {
                    let retained =
                        keys.contains(&(key as Key)) && thread.assigned.contains(&(key as Key));
                    if switched || !retained {
                        thread.positions[key] = 0;
                    }
                }
                thread.assigned = keys.clone();
                thread.subscribed = f == F::Subscribe;
                self.emit(process, Kind::Ok, f, Value::Keys(keys));
            }
            (F::Crash, _) => {
                self.emit(
                    process,
                    Kind::Info,
                    F::Crash,
                    Value::Other(serde_json::Value::Null),
                )
                .error = Some("crash".to_owned());
                self.threads[t] = self.fresh_thread();
            }
            (f, Value::Mops(mops)) => self.complete_data(t, f, mops),
            (f, value) => {
                self.emit(process, Kind::Ok, f, value);
            }
        }
    }

    /// Applies a send/poll/txn op atomically and emits its completion.
    fn complete_data(&mut self, t: usize, f: F, mops: Vec<Mop>) {
        let outcome = self.outcome();
        let process = self.threads[t].process;
        let subscribed = self.threads[t].subscribed;
        // Reads see the committed state before this op's own sends (read_committed).
        let mut positions: BTreeMap<Key, Offset> = BTreeMap::new();
        let mut done = Vec::with_capacity(mops.len());
        for mop in &mops {
            match mop {
                Mop::Poll(_) => done.push(self.poll(t, &mut positions)),
                Mop::Send { .. } => done.push(mop.clone()),
            }
        }
        let applied = match outcome {
            Outcome::Ok => true,
            Outcome::Fail => false,
            Outcome::Info(applied) => applied,
        };
        let txn = self.workload.txn;
        let mut written_keys: Vec<Key> = Vec::new();
        for mop in &mut done {
            let Mop::Send { key, offset, value } = mop else {
                continue;
            };
            // Plain sends of an info op apply one by one; a transaction all or nothing.
            let visible = if txn || outcome != Outcome::Info(true) {
                applied
            } else {
                self.rng.percent(50)
            };
            if !txn && !visible {
                continue;
            }
            let log = &mut self.logs[*key as usize];
            *offset = Some(log.len() as Offset);
            log.push(Entry {
                val: *value,
                visible,
            });
            if !written_keys.contains(key) {
                written_keys.push(*key);
            }
        }
        if txn {
            for key in &written_keys {
                // Commit or abort marker: occupies an offset, never read.
                self.logs[*key as usize].push(Entry {
                    val: 0,
                    visible: false,
                });
            }
        }
        // Acks carry offsets; an aborted transaction's client still learned them from the
        // produce responses; an unknown outcome sometimes did.
        let report_offsets = match outcome {
            Outcome::Ok => true,
            Outcome::Fail => txn,
            Outcome::Info(_) => txn && self.rng.percent(50),
        };
        for (mop, original) in done.iter_mut().zip(&mops) {
            if matches!(mop, Mop::Send { .. }) && !report_offsets {
                *mop = original.clone();
            }
        }
        let kind = match outcome {
            Outcome::Ok => Kind::Ok,
            Outcome::Fail => Kind::Fail,
            Outcome::Info(_) => Kind::Info,
        };
        let has_reads = done.iter().any(|m| matches!(m, Mop::Poll(_)));
        // Only a successful op moves the consumer (or the group); fail and info rewind.
        if kind == Kind::Ok {
            for (key, position) in &positions {
                if subscribed {
                    self.group_positions[*key as usize] = *position;
                } else {
                    self.threads[t].positions[*key as usize] = *position;
                }
            }
        }
        let error = match kind {
            Kind::Fail => Some(if txn { "aborted" } else { "definite" }),
            Kind::Info => Some("timeout"),
            _ => None,
        };
        let event = self.emit(process, kind, f, Value::Mops(done));
        event.error = error.map(str::to_owned);
        event.committed = kind == Kind::Ok && subscribed && has_reads;
        if kind == Kind::Info {
            self.threads[t] = self.fresh_thread();
        }
    }

    /// One poll mop: reads up to a few visible records per assigned key from the working
    /// positions (thread's or group's), advancing them in `positions`.
    fn poll(&mut self, t: usize, positions: &mut BTreeMap<Key, Offset>) -> Mop {
        let assigned = self.threads[t].assigned.clone();
        let mut reads = Vec::new();
        for key in assigned {
            let start = *positions.entry(key).or_insert_with(|| {
                if self.threads[t].subscribed {
                    self.group_positions[key as usize]
                } else {
                    self.threads[t].positions[key as usize]
                }
            });
            let limit = self.rng.below(POLL_RECORDS_MAX + 1) as usize;
            let (records, next) = read_from(&self.logs[key as usize], start, limit);
            positions.insert(key, next);
            if !records.is_empty() {
                reads.push((key, records));
            }
        }
        Mop::polled(reads)
    }

    /// A fresh process assigns every key from the beginning and polls until caught up.
    fn final_reads(&mut self) {
        // A process id never used before, as after a crash of every client (§6.8).
        let process = self.next_process;
        self.next_process += 1;
        let keys: Vec<Key> = (0..self.logs.len() as Key).collect();
        for kind in [Kind::Invoke, Kind::Ok] {
            let event = self.emit(process, kind, F::Assign, Value::Keys(keys.clone()));
            event.phase = Phase::Final;
            event.seek_to_beginning = true;
        }
        let mut positions: Vec<Offset> = vec![0; self.logs.len()];
        loop {
            let mut reads = Vec::new();
            for key in &keys {
                let log = &self.logs[*key as usize];
                let (records, next) =
                    read_from(log, positions[*key as usize], FINAL_POLL_RECORDS_MAX);
                positions[*key as usize] = next;
                if !records.is_empty() {
                    reads.push((*key, records));
                }
            }
            let empty = reads.is_empty();
            self.emit(
                process,
                Kind::Invoke,
                F::Poll,
                Value::Mops(vec![Mop::poll()]),
            )
            .phase = Phase::Final;
            let value = Value::Mops(vec![Mop::polled(reads)]);
            self.emit(process, Kind::Ok, F::Poll, value).phase = Phase::Final;
            if empty {
                break;
            }
        }
    }
}

/// Up to `limit` visible records from offset `start`; returns them and the next position
/// (past skipped invisible entries).
fn read_from(log: &[Entry], start: Offset, limit: usize) -> (Vec<(Offset, Val)>, Offset) {
    let mut records = Vec::new();
    let mut next = start;
    while (next as usize) < log.len() && records.len() < limit {
        let entry = log[next as usize];
        if entry.visible {
            records.push((next, entry.val));
        }
        next += 1;
    }
    (records, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the generator is deterministic and produces the requested number of ops.
    #[test]
    fn deterministic() {
        let a = synthetic_history(200, 7);
        let b = synthetic_history(200, 7);
        assert_eq!(a, b);
        let invocations = a.events.iter().filter(|e| e.kind == Kind::Invoke).count();
        assert!(invocations >= 200, "{invocations}");
        assert_ne!(a, synthetic_history(200, 8));
    }
}
