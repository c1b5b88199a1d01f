//! Ordering checks (§6.4 steps 8–10): inside one op (`int-*`), across one process's ops
//! (`poll-skip`, `nonmonotonic-poll`, `nonmonotonic-send`) and across real time
//! (`realtime-nonmonotonic-send`).
//!
//! Reads are positioned by their own offsets, sends by [`KeyLog::send_pos`]; an unknown
//! position is "no evidence" and never produces an anomaly. A delta of 1 means adjacent.

use std::collections::BTreeMap;
use std::ops::Range;

use super::{len_u32, Arena, Evidence, FClass, KeyLog, Role, NONE};
use crate::anomaly::{Anomaly, AnomalyKind};
use crate::config::{CheckConfig, SubVia};
use crate::history::{Kind, Val};

/// Values listed as "skipped" in one anomaly, at most.
const SKIPPED_LISTED_MAX: usize = 32;

/// Which anomalies one kind of step can show, and the verb for explanations.
struct Rule {
    /// Reported when the step skips positions (delta > 1).
    skip: Option<AnomalyKind>,
    /// Reported when the step goes back or repeats (delta < 1).
    back: Option<AnomalyKind>,
    verb: &'static str,
}

const INT_POLL: Rule = Rule {
    skip: Some(AnomalyKind::IntPollSkip),
    back: Some(AnomalyKind::IntNonmonotonicPoll),
    verb: "polled",
};
const INT_SEND: Rule = Rule {
    skip: Some(AnomalyKind::IntSendSkip),
    back: Some(AnomalyKind::IntNonmonotonicSend),
    verb: "sent",
};
const PROCESS_POLL: Rule = Rule {
    skip: Some(AnomalyKind::PollSkip),
    back: Some(AnomalyKind::NonmonotonicPoll),
    verb: "polled",
};
const PROCESS_SEND: Rule = Rule {
    skip: None,
    back: Some(AnomalyKind::NonmonotonicSend),
    verb: "sent",
};

/// int-poll-skip / int-nonmonotonic-poll and int-send-skip / int-nonmonotonic-send.
pub(crate) fn internal(arena: &Arena, logs: &[KeyLog], anomalies: &mut Vec<Anomaly>) {
    let mut order: Vec<(u32, u32)> = Vec::new();
    for op in 0..len_u32(&arena.ops) {
        let rec = &arena.ops[op as usize];
        let rebalanced = arena.key_list(&rec.rebalanced);
        let reads = arena.op_reads(op);
        for (a, b) in same_key_pairs(&mut order, reads.iter().map(|r| r.key)) {
            let (a, b) = (reads[a], reads[b]);
            // A rebalance during the op legitimately moves the consumer's position.
            if rebalanced.contains(&a.key) {
                continue;
            }
            let log = &logs[a.key as usize];
            let (Some(pa), Some(pb)) = (log.pos(a.offset), log.pos(b.offset)) else {
                continue;
            };
            let step = ((pa, a.val), (pb, b.val));
            anomalies.extend(judge(arena, log, a.key, vec![rec.id()], step, &INT_POLL));
        }
        let writes = arena.op_writes(op);
        for (a, b) in same_key_pairs(&mut order, writes.iter().map(|w| w.key)) {
            let (a, b) = (writes[a], writes[b]);
            let log = &logs[a.key as usize];
            let (Some(pa), Some(pb)) =
                (log.send_pos(a.offset, a.val), log.send_pos(b.offset, b.val))
            else {
                continue;
            };
            let step = ((pa, a.val), (pb, b.val));
            anomalies.extend(judge(arena, log, a.key, vec![rec.id()], step, &INT_SEND));
        }
    }
}

/// Index pairs of consecutive (in record order) records of the same key.
fn same_key_pairs(
    order: &mut Vec<(u32, u32)>,
    keys: impl Iterator<Item = u32>,
) -> Vec<(usize, usize)> {
    order.clear();
    order.extend(
        keys.enumerate()
            .map(|(i, key)| (key, u32::try_from(i).expect("fits u32"))),
    );
    order.sort_unstable();
    order
        .windows(2)
        .filter(|pair| pair[0].0 == pair[1].0)
        .map(|pair| (pair[0].1 as usize, pair[1].1 as usize))
        .collect()
}

/// Judges one step `from → to` of (position, value) on a key by `rule`.
fn judge(
    arena: &Arena,
    log: &KeyLog,
    key: u32,
    ops: Vec<u32>,
    (from, to): ((u32, Val), (u32, Val)),
    rule: &Rule,
) -> Option<Anomaly> {
    let delta = i64::from(to.0) - i64::from(from.0);
    let (kind, skipped) = match delta {
        d if d > 1 => (
            rule.skip?,
            Some(log.vals_between(from.0 + 1, to.0, SKIPPED_LISTED_MAX)),
        ),
        d if d < 1 => (rule.back?, None),
        _ => return None,
    };
    let (from, to) = ((log.offset_at(from.0), from.1), (log.offset_at(to.0), to.1));
    let who = match ops.as_slice() {
        [one] => format!("op {one}"),
        [earlier, later] => format!("op {earlier} then op {later} (same process)"),
        _ => "ops".to_owned(),
    };
    let mut explanation = format!(
        "{who} {} {} at offset {} then {} at offset {} of key {} (delta {delta})",
        rule.verb,
        from.1,
        from.0,
        to.1,
        to.0,
        arena.key(key)
    );
    let mut values = vec![from.1, to.1];
    if let Some(skipped) = skipped {
        explanation.push_str(&format!(", skipping {skipped:?}"));
        values.extend(skipped);
    }
    let anomaly = Anomaly::new(kind, explanation)
        .key(arena.key(key))
        .ops(ops)
        .values(values);
    Some(anomaly.offsets(vec![from.0, to.0]).delta(delta))
}

/// Last record of a key handled by a process: (op id, value, position).
type Last = (u32, Val, Option<u32>);

/// One record of an op: (dense key, value, position).
type Record = (u32, Val, Option<u32>);

/// Per-process state of the poll/send order sweep.
struct ProcessState {
    last_reads: BTreeMap<u32, Last>,
    last_sends: BTreeMap<u32, Last>,
    subscribed: bool,
}

/// poll-skip / nonmonotonic-poll (vs the last `ok` op's reads) and nonmonotonic-send
/// (over `ok`/`info` ops), per process in completion order.
pub(crate) fn per_process(
    config: &CheckConfig,
    arena: &Arena,
    logs: &[KeyLog],
    anomalies: &mut Vec<Anomaly>,
) {
    let mut states: Vec<ProcessState> = (0..arena.process_count)
        .map(|_| ProcessState {
            last_reads: BTreeMap::new(),
            last_sends: BTreeMap::new(),
            subscribed: config.sub_via == SubVia::Subscribe,
        })
        .collect();
    for op in completion_order(arena) {
        let rec = &arena.ops[op as usize];
        let state = &mut states[rec.process as usize];
        if matches!(rec.f, FClass::Assign | FClass::Subscribe) && rec.kind != Kind::Fail {
            let subscribed = rec.f == FClass::Subscribe;
            if subscribed != state.subscribed {
                // Switching between assign and subscribe drops the consumer's positions
                // (Kafka's unsubscribe/assign), so earlier reads constrain nothing.
                state.last_reads.clear();
            }
            state.subscribed = subscribed;
            let assigned = arena.key_list(&rec.assigned);
            state.last_reads.retain(|key, _| assigned.contains(key));
            continue;
        }
        let reads = arena
            .op_reads(op)
            .iter()
            .map(|r| (r.key, r.val, logs[r.key as usize].pos(r.offset)));
        for (key, (first, last)) in first_last_by_key(reads) {
            if let Some(&(prev_op, prev_val, Some(prev_pos))) = state.last_reads.get(&key) {
                if let Some(pos) = first.2 {
                    let step = ((prev_pos, prev_val), (pos, first.1));
                    let log = &logs[key as usize];
                    let ops = vec![prev_op, rec.id()];
                    if let Some(anomaly) = judge(arena, log, key, ops, step, &PROCESS_POLL) {
                        anomalies.push(Anomaly {
                            subscribed: Some(state.subscribed),
                            ..anomaly
                        });
                    }
                }
            }
            // Only ok ops move the remembered position: a failed or unknown op must have
            // rewound the consumer (the harness seeks back), so the next op is compared with
            // the last ok one, and a failed op that jumped ahead is itself flagged.
            if rec.kind == Kind::Ok {
                state.last_reads.insert(key, (rec.id(), last.1, last.2));
            }
        }
        // A failed send never landed, so it says nothing about the producer's order.
        if rec.kind == Kind::Fail {
            continue;
        }
        let writes = arena
            .op_writes(op)
            .iter()
            .map(|w| (w.key, w.val, logs[w.key as usize].send_pos(w.offset, w.val)));
        for (key, (first, last)) in first_last_by_key(writes) {
            if let Some(&(prev_op, prev_val, Some(prev_pos))) = state.last_sends.get(&key) {
                if let Some(pos) = first.2 {
                    let step = ((prev_pos, prev_val), (pos, first.1));
                    let ops = vec![prev_op, rec.id()];
                    anomalies.extend(judge(
                        arena,
                        &logs[key as usize],
                        key,
                        ops,
                        step,
                        &PROCESS_SEND,
                    ));
                }
            }
            state.last_sends.insert(key, (rec.id(), last.1, last.2));
        }
    }
}

/// Ops in the order their outcome became known: completions in history order, then ops
/// that never completed in invocation order.
pub(crate) fn completion_order(arena: &Arena) -> impl Iterator<Item = u32> + '_ {
    let completed = arena.roles.iter().filter_map(|role| match role {
        Role::Complete(op) => Some(*op),
        _ => None,
    });
    let dangling = (0..len_u32(&arena.ops)).filter(|&op| arena.ops[op as usize].completion == NONE);
    completed.chain(dangling)
}

/// (key, (first record, last record)) per key, keys ascending.
fn first_last_by_key(records: impl Iterator<Item = Record>) -> BTreeMap<u32, (Record, Record)> {
    let mut by_key = BTreeMap::new();
    for record in records {
        by_key
            .entry(record.0)
            .and_modify(|e: &mut (_, _)| e.1 = record)
            .or_insert((record, record));
    }
    by_key
}

/// realtime-nonmonotonic-send: a committed write invoked after an `ok` send of the same key
/// completed must land above it.
pub(crate) fn realtime_sends(
    arena: &Arena,
    evidence: &Evidence,
    logs: &[KeyLog],
    anomalies: &mut Vec<Anomaly>,
) {
    // Per key: highest acked position so far and the (op id, value) that reached it.
    let mut max_acked: Vec<Option<Acked>> = vec![None; arena.keys.len()];
    let mut snapshots: Vec<(u32, Option<Acked>)> = Vec::new();
    let mut snapshot_of: Vec<Range<u32>> = vec![0..0; arena.ops.len()];
    for role in &arena.roles {
        match *role {
            Role::Ignored => {}
            Role::Invoke(op) => {
                // What was acked before the invocation is what the new send must land
                // above; later acks are concurrent and constrain nothing.
                let start = len_u32(&snapshots);
                for write in arena.op_writes(op) {
                    if !snapshots[start as usize..].iter().any(|s| s.0 == write.key) {
                        snapshots.push((write.key, max_acked[write.key as usize]));
                    }
                }
                snapshot_of[op as usize] = start..len_u32(&snapshots);
            }
            Role::Complete(op) => {
                check_realtime(
                    arena,
                    evidence,
                    logs,
                    op,
                    slice(&snapshots, &snapshot_of[op as usize]),
                    anomalies,
                );
                if arena.ops[op as usize].kind != Kind::Ok {
                    continue;
                }
                for write in arena.op_writes(op) {
                    let Some(pos) = logs[write.key as usize].send_pos(write.offset, write.val)
                    else {
                        continue;
                    };
                    let slot = &mut max_acked[write.key as usize];
                    if slot.is_none_or(|(p, _, _)| pos > p) {
                        *slot = Some((pos, arena.id(op), write.val));
                    }
                }
            }
        }
    }
    for op in 0..len_u32(&arena.ops) {
        if arena.ops[op as usize].completion == NONE {
            check_realtime(
                arena,
                evidence,
                logs,
                op,
                slice(&snapshots, &snapshot_of[op as usize]),
                anomalies,
            );
        }
    }
}

/// Acked (position, op id, value) of a key.
type Acked = (u32, u32, Val);

/// Flags committed writes of `op` at or below what was acked before its invocation.
fn check_realtime(
    arena: &Arena,
    evidence: &Evidence,
    logs: &[KeyLog],
    op: u32,
    snapshot: &[(u32, Option<Acked>)],
    anomalies: &mut Vec<Anomaly>,
) {
    let writes = arena.ops[op as usize].writes.clone();
    for w in writes.start as usize..writes.end as usize {
        let write = arena.writes[w];
        let log = &logs[write.key as usize];
        let pos = log.send_pos(write.offset, write.val);
        let before = snapshot.iter().find(|s| s.0 == write.key).and_then(|s| s.1);
        let (true, Some(pos), Some((acked_pos, acked_op, acked_val))) =
            (evidence.write_committed[w], pos, before)
        else {
            continue;
        };
        if pos > acked_pos {
            continue;
        }
        let key = arena.key(write.key);
        let explanation = format!(
            "op {acked_op} acked {acked_val} at offset {} of key {key} before op {} was \
             invoked, yet op {} sent {} to offset {}",
            log.offset_at(acked_pos),
            arena.ops[op as usize].invoke,
            arena.id(op),
            write.val,
            log.offset_at(pos)
        );
        anomalies.push(
            Anomaly::new(AnomalyKind::RealtimeNonmonotonicSend, explanation)
                .key(key)
                .ops(vec![acked_op, arena.id(op)])
                .values(vec![acked_val, write.val])
                .offsets(vec![log.offset_at(acked_pos), log.offset_at(pos)])
                .delta(i64::from(pos) - i64::from(acked_pos)),
        );
    }
}

fn slice<'a, T>(items: &'a [T], range: &Range<u32>) -> &'a [T] {
    &items[range.start as usize..range.end as usize]
}
