//! The checker pipeline (§6.4 of `jepsen-checker.md`): pair events into ops, flatten reads
//! and writes into arenas, derive the evidence, build per-key version orders, run every
//! check, then hand the anomalies to the verdict.
//!
//! Invariants: every structure is indexed by dense ids (ops in invocation order, dense keys
//! in first-seen order, reads and writes in op-then-mop order), so each pass is a linear scan
//! or a sort; nothing iterates a hash map, and every emitted list is sorted at the end, so
//! the same history always yields byte-identical reports.

mod assemble;
mod graph;
mod group;
mod log;
mod order;
mod reads;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use crate::config::CheckConfig;
use crate::history::{Event, HistoryError, Key, Kind, Mop, Offset, Phase, Process, Val, F};
use crate::report::Report;
use crate::History;

pub(crate) use log::KeyLog;

/// Marker for "no such id" in dense `u32` arrays.
pub(crate) const NONE: u32 = u32::MAX;

/// Checks `history` under `config` and returns the report.
///
/// Errors only when the history itself is malformed (a harness bug): an outstanding op
/// invoked again, a completion without invocation, a process reused after `info`, or a value
/// sent twice to one key.
pub fn check(config: &CheckConfig, history: &History) -> Result<Report, HistoryError> {
    let arena = Arena::build(&history.events)?;
    let evidence = Evidence::build(config, &arena);
    let mut anomalies = Vec::new();
    let logs = log::build(&arena, &evidence, &mut anomalies);
    let caught_up = caught_up(config, &arena, &logs);
    reads::per_read(&arena, &evidence, &mut anomalies);
    reads::lost_writes(&arena, &evidence, &logs, &mut anomalies);
    let unseen = reads::unseen_and_torn(config, &arena, &evidence, &caught_up, &mut anomalies);
    order::internal(&arena, &logs, &mut anomalies);
    order::per_process(config, &arena, &logs, &mut anomalies);
    if config.realtime_offsets_effective() {
        order::realtime_sends(&arena, &evidence, &logs, &mut anomalies);
    }
    group::coverage(config, &arena, &logs, &mut anomalies);
    graph::cycles(config, &arena, &evidence, &logs, &mut anomalies);
    let facts = Facts { caught_up, unseen };
    Ok(assemble::report(config, history, &arena, facts, anomalies))
}

/// Side results the report shows besides anomalies.
pub(crate) struct Facts {
    /// Per dense key: did the final reads catch up?
    pub caught_up: Vec<bool>,
    /// (key, value) of every committed write never read, sorted.
    pub unseen: Vec<(Key, Val)>,
}

/// Coarse function class of an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FClass {
    Send,
    Poll,
    Txn,
    Assign,
    Subscribe,
    Other,
}

/// One operation: an invocation paired with its completion.
#[derive(Debug, Clone)]
pub(crate) struct OpRec {
    /// Event index of the invocation.
    pub invoke: u32,
    /// Event index of the completion, or [`NONE`] if the history ended first.
    pub completion: u32,
    /// Dense process id.
    pub process: u32,
    /// Completion type (`Info` for ops that never completed).
    pub kind: Kind,
    pub f: FClass,
    pub reads: Range<u32>,
    pub writes: Range<u32>,
    /// Dense key ids (into `Arena::key_lists`) of assign/subscribe targets.
    pub assigned: Range<u32>,
    /// Dense key ids (into `Arena::key_lists`) named by the op's rebalance log.
    pub rebalanced: Range<u32>,
    /// Consumer-group offsets were committed by this op.
    pub group_committed: bool,
    pub final_phase: bool,
    /// The invocation asked for at least one poll.
    pub has_poll: bool,
}

impl OpRec {
    /// The event index used to name this op in reports.
    pub fn id(&self) -> u32 {
        if self.completion == NONE {
            self.invoke
        } else {
            self.completion
        }
    }
}

/// One (offset, value) returned by a poll, in op-then-mop order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadRec {
    pub op: u32,
    pub key: u32,
    pub offset: Offset,
    pub val: Val,
}

/// One attempted send, in op-then-mop order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteRec {
    pub op: u32,
    pub key: u32,
    pub offset: Option<Offset>,
    pub val: Val,
}

/// What an event is to the checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Ignored,
    Invoke(u32),
    Complete(u32),
}

/// Flattened, paired history.
pub(crate) struct Arena {
    pub ops: Vec<OpRec>,
    pub reads: Vec<ReadRec>,
    pub writes: Vec<WriteRec>,
    pub key_lists: Vec<u32>,
    /// Dense key id -> key.
    pub keys: Vec<Key>,
    pub process_count: u32,
    pub roles: Vec<Role>,
}

impl Arena {
    fn build(events: &[Event]) -> Result<Self, HistoryError> {
        assert!(
            u32::try_from(events.len()).is_ok(),
            "histories hold < 2^32 events"
        );
        let mut arena = Self {
            ops: Vec::new(),
            reads: Vec::new(),
            writes: Vec::new(),
            key_lists: Vec::new(),
            keys: Vec::new(),
            process_count: 0,
            roles: vec![Role::Ignored; events.len()],
        };
        let pairs = pair(events, &mut arena)?;
        let mut key_ids = BTreeMap::new();
        for (op, (invoke, completion)) in pairs.into_iter().enumerate() {
            arena.fill(
                op,
                &events[invoke],
                completion.map(|c| &events[c]),
                &mut key_ids,
            );
        }
        arena.check_unique_values()?;
        Ok(arena)
    }

    /// Extracts reads, writes and key lists of one op from its events.
    fn fill(
        &mut self,
        op: usize,
        invoke: &Event,
        completion: Option<&Event>,
        key_ids: &mut BTreeMap<Key, u32>,
    ) {
        let op_u32 = u32::try_from(op).expect("op count fits u32");
        let mut dense = |key: Key, keys: &mut Vec<Key>| -> u32 {
            *key_ids.entry(key).or_insert_with(|| {
                keys.push(key);
                u32::try_from(keys.len() - 1).expect("key count fits u32")
            })
        };
        // Completions carry the offsets, so prefer their sends; an info completion without
        // a value (or an op that never completed) falls back to what was invoked.
        let send_source = match completion {
            Some(c) if c.mops().iter().any(|m| matches!(m, Mop::Send { .. })) => c,
            _ => invoke,
        };
        let writes_start = len_u32(&self.writes);
        for mop in send_source.mops() {
            if let Mop::Send { key, offset, value } = mop {
                let key = dense(*key, &mut self.keys);
                self.writes.push(WriteRec {
                    op: op_u32,
                    key,
                    offset: *offset,
                    val: *value,
                });
            }
        }
        let reads_start = len_u32(&self.reads);
        for mop in completion.map(Event::mops).unwrap_or_default() {
            let Mop::Poll(Some(polled)) = mop else {
                continue;
            };
            for (key, records) in polled {
                let key = dense(*key, &mut self.keys);
                for &(offset, val) in records {
                    self.reads.push(ReadRec {
                        op: op_u32,
                        key,
                        offset,
                        val,
                    });
                }
            }
        }
        let assigned_start = len_u32(&self.key_lists);
        let targets = match completion {
            Some(c) if !c.keys().is_empty() => c.keys(),
            _ => invoke.keys(),
        };
        for key in targets {
            let id = dense(*key, &mut self.keys);
            self.key_lists.push(id);
        }
        let rebalanced_start = len_u32(&self.key_lists);
        for rebalance in completion
            .map(|c| c.rebalance_log.as_slice())
            .unwrap_or_default()
        {
            for key in &rebalance.keys {
                let id = dense(*key, &mut self.keys);
                self.key_lists.push(id);
            }
        }
        let record = &mut self.ops[op];
        record.writes = writes_start..len_u32(&self.writes);
        record.reads = reads_start..len_u32(&self.reads);
        record.assigned = assigned_start..rebalanced_start;
        record.rebalanced = rebalanced_start..len_u32(&self.key_lists);
        record.group_committed = completion.is_some_and(|c| c.committed);
        record.final_phase =
            invoke.phase == Phase::Final || completion.is_some_and(|c| c.phase == Phase::Final);
        record.has_poll = invoke.mops().iter().any(|m| matches!(m, Mop::Poll(_)));
    }

    /// Values must be unique per key: two writes of one (key, value) are a harness bug.
    fn check_unique_values(&self) -> Result<(), HistoryError> {
        let mut sorted: Vec<(u32, Val, u32)> =
            self.writes.iter().map(|w| (w.key, w.val, w.op)).collect();
        sorted.sort_unstable();
        for pair in sorted.windows(2) {
            if pair[0].0 == pair[1].0 && pair[0].1 == pair[1].1 {
                let later = self.ops[pair[0].2 as usize]
                    .invoke
                    .max(self.ops[pair[1].2 as usize].invoke);
                return Err(HistoryError::DuplicateInvocation {
                    index: later as usize,
                    key: self.keys[pair[0].0 as usize],
                    value: pair[0].1,
                });
            }
        }
        Ok(())
    }

    pub fn op_reads(&self, op: u32) -> &[ReadRec] {
        let range = &self.ops[op as usize].reads;
        &self.reads[range.start as usize..range.end as usize]
    }

    pub fn op_writes(&self, op: u32) -> &[WriteRec] {
        let range = &self.ops[op as usize].writes;
        &self.writes[range.start as usize..range.end as usize]
    }

    pub fn key_list(&self, range: &Range<u32>) -> &[u32] {
        &self.key_lists[range.start as usize..range.end as usize]
    }

    /// Event index naming op `op`.
    pub fn id(&self, op: u32) -> u32 {
        self.ops[op as usize].id()
    }

    pub fn key(&self, key: u32) -> Key {
        self.keys[key as usize]
    }
}

/// Pairs invocations with completions per process; returns (invoke, completion) event
/// indices per op, in invocation order, and records roles and op skeletons in `arena`.
fn pair(events: &[Event], arena: &mut Arena) -> Result<Vec<(usize, Option<usize>)>, HistoryError> {
    let mut pairs: Vec<(usize, Option<usize>)> = Vec::new();
    let mut processes: BTreeMap<u64, u32> = BTreeMap::new();
    let mut pending: BTreeMap<u64, usize> = BTreeMap::new();
    let mut retired: BTreeSet<u64> = BTreeSet::new();
    for (index, event) in events.iter().enumerate() {
        let Process::Client(process) = event.process else {
            continue;
        };
        let index_u32 = u32::try_from(index).expect("event count fits u32");
        if event.kind == Kind::Invoke {
            if retired.contains(&process) {
                return Err(HistoryError::ReusedAfterInfo { index, process });
            }
            if let Some(&op) = pending.get(&process) {
                return Err(HistoryError::Outstanding {
                    index,
                    process,
                    pending: pairs[op].0,
                });
            }
            let next_process = u32::try_from(processes.len()).expect("process count fits u32");
            let dense = *processes.entry(process).or_insert(next_process);
            let op = arena.ops.len();
            arena.ops.push(OpRec {
                invoke: index_u32,
                completion: NONE,
                process: dense,
                kind: Kind::Info,
                f: classify(&event.f),
                reads: 0..0,
                writes: 0..0,
                assigned: 0..0,
                rebalanced: 0..0,
                group_committed: false,
                final_phase: false,
                has_poll: false,
            });
            arena.roles[index] = Role::Invoke(u32::try_from(op).expect("op count fits u32"));
            pending.insert(process, op);
            pairs.push((index, None));
            continue;
        }
        let op = match pending.remove(&process) {
            Some(op) if events[pairs[op].0].f == event.f => op,
            _ => return Err(HistoryError::Unmatched { index, process }),
        };
        pairs[op].1 = Some(index);
        arena.ops[op].completion = index_u32;
        arena.ops[op].kind = event.kind;
        arena.roles[index] = Role::Complete(u32::try_from(op).expect("op count fits u32"));
        // After info the client's state is unknown; the harness must continue under a new
        // process id, otherwise per-process order checks would compare unrelated clients.
        if event.kind == Kind::Info {
            retired.insert(process);
        }
    }
    arena.process_count = u32::try_from(processes.len()).expect("process count fits u32");
    Ok(pairs)
}

fn classify(f: &F) -> FClass {
    match f {
        F::Send => FClass::Send,
        F::Poll => FClass::Poll,
        F::Txn => FClass::Txn,
        F::Assign => FClass::Assign,
        F::Subscribe => FClass::Subscribe,
        _ => FClass::Other,
    }
}

pub(crate) fn len_u32<T>(v: &[T]) -> u32 {
    u32::try_from(v.len()).expect("arena sizes fit u32")
}

/// What the reads prove about the writes (§6.4 step 3).
pub(crate) struct Evidence {
    /// (dense key, value, write id), sorted: the writer lookup.
    writers: Vec<(u32, Val, u32)>,
    /// Per read: the write that produced its value, or [`NONE`] (unexpected value).
    pub read_writer: Vec<u32>,
    /// Per write: returned by any completed poll.
    pub write_seen: Vec<bool>,
    /// Per write: known to be committed.
    pub write_committed: Vec<bool>,
    /// Per op: `ok`, or some write committed.
    pub op_committed: Vec<bool>,
}

impl Evidence {
    fn build(config: &CheckConfig, arena: &Arena) -> Self {
        let mut writers: Vec<(u32, Val, u32)> = (0..len_u32(&arena.writes))
            .map(|w| {
                (
                    arena.writes[w as usize].key,
                    arena.writes[w as usize].val,
                    w,
                )
            })
            .collect();
        writers.sort_unstable();
        let mut evidence = Self {
            writers,
            read_writer: Vec::with_capacity(arena.reads.len()),
            write_seen: vec![false; arena.writes.len()],
            write_committed: vec![false; arena.writes.len()],
            op_committed: vec![false; arena.ops.len()],
        };
        for read in &arena.reads {
            let writer = evidence.writer_of(read.key, read.val).unwrap_or(NONE);
            if writer != NONE {
                evidence.write_seen[writer as usize] = true;
            }
            evidence.read_writer.push(writer);
        }
        for (op_index, op) in arena.ops.iter().enumerate() {
            let writes = op.writes.start as usize..op.writes.end as usize;
            let any_seen = evidence.write_seen[writes.clone()].iter().any(|seen| *seen);
            for w in writes {
                evidence.write_committed[w] = match op.kind {
                    Kind::Ok => true,
                    Kind::Fail | Kind::Invoke => false,
                    // Reads of read_uncommitted consumers prove nothing; a transaction is
                    // atomic, so one observed write proves all of them; a plain send's
                    // writes are proven one by one.
                    Kind::Info if config.read_uncommitted_txn() => false,
                    Kind::Info if config.txn => any_seen,
                    Kind::Info => evidence.write_seen[w],
                };
            }
            let committed_write = evidence.write_committed
                [op.writes.start as usize..op.writes.end as usize]
                .iter()
                .any(|c| *c);
            evidence.op_committed[op_index] = op.kind == Kind::Ok || committed_write;
        }
        evidence
    }

    /// The write of (dense key, value), if any op attempted it.
    pub fn writer_of(&self, key: u32, val: Val) -> Option<u32> {
        self.writers
            .binary_search_by(|probe| (probe.0, probe.1).cmp(&(key, val)))
            .ok()
            .map(|i| self.writers[i].2)
    }
}

/// Per dense key: whether the final reads caught up with everything known about the key.
fn caught_up(config: &CheckConfig, arena: &Arena, logs: &[KeyLog]) -> Vec<bool> {
    if let Some(forced) = config.final_reads_caught_up {
        return vec![forced; arena.keys.len()];
    }
    if !arena.ops.iter().any(|op| op.final_phase) {
        // No final phase recorded: the whole history is taken as the final word (the goldens
        // and short simulations rely on this).
        return vec![true; arena.keys.len()];
    }
    let mut final_max: Vec<Option<Offset>> = vec![None; arena.keys.len()];
    for read in &arena.reads {
        let op = &arena.ops[read.op as usize];
        if op.final_phase && op.kind == Kind::Ok {
            let slot = &mut final_max[read.key as usize];
            *slot = Some(slot.map_or(read.offset, |m| m.max(read.offset)));
        }
    }
    logs.iter()
        .zip(final_max)
        .map(|(log, final_max)| final_max >= log.max_offset())
        .collect()
}
