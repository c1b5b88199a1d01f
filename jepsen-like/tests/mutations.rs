//! Mutation tests (§6.9.3 of jepsen-checker.md): take a history of the correct reference
//! executor, inject exactly one fault by editing the recorded events, and require that the
//! checker flags the matching anomaly as bad. Each mutation is tried over many seeds and
//! must apply to a good number of them, so no test passes vacuously.

use weir_jepsen::{
    check, AnomalyKind, Event, History, Key, Kind, Mop, Offset, Val, Value, Workload, F,
};

/// Seeds tried per mutation.
const SEEDS: u64 = 40;
/// Seeds on which the mutation must have applied.
const APPLIED_MIN: usize = 10;

/// A paired op: event indices of invocation and completion.
#[derive(Debug, Clone, Copy)]
struct Op {
    invoke: usize,
    completion: usize,
    process: u64,
}

fn ops(history: &History) -> Vec<Op> {
    let mut pending = std::collections::BTreeMap::new();
    let mut ops = Vec::new();
    for (i, e) in history.events.iter().enumerate() {
        let weir_jepsen::Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == Kind::Invoke {
            pending.insert(p, i);
        } else if let Some(invoke) = pending.remove(&p) {
            ops.push(Op {
                invoke,
                completion: i,
                process: p,
            });
        }
    }
    ops.sort_by_key(|o| o.completion);
    ops
}

fn mops_mut(event: &mut Event) -> &mut Vec<Mop> {
    match &mut event.value {
        Value::Mops(mops) => mops,
        _ => panic!("not a mop value"),
    }
}

/// Acknowledged sends (key, offset, value) of an ok completion.
fn sends(event: &Event) -> Vec<(Key, Offset, Val)> {
    event
        .mops()
        .iter()
        .filter_map(|m| match m {
            Mop::Send {
                key,
                offset: Some(o),
                value,
            } => Some((*key, *o, *value)),
            _ => None,
        })
        .collect()
}

/// All records (key, offset, value) of a completion's polls.
fn reads(event: &Event) -> Vec<(Key, Offset, Val)> {
    let mut out = Vec::new();
    for mop in event.mops() {
        if let Mop::Poll(Some(polled)) = mop {
            for (key, records) in polled {
                out.extend(records.iter().map(|(o, v)| (*key, *o, *v)));
            }
        }
    }
    out
}

/// Rewrites every poll record with `edit` (return None to drop it).
fn edit_reads(
    history: &mut History,
    mut edit: impl FnMut(Key, Offset, Val) -> Option<(Offset, Val)>,
) {
    for event in &mut history.events {
        let Value::Mops(mops) = &mut event.value else {
            continue;
        };
        for mop in mops {
            if let Mop::Poll(Some(polled)) = mop {
                for (key, records) in polled.iter_mut() {
                    let key = *key;
                    *records = records
                        .iter()
                        .filter_map(|&(o, v)| edit(key, o, v))
                        .collect();
                }
                polled.retain(|(_, records)| !records.is_empty());
            }
        }
    }
}

fn max_offset(history: &History, key: Key) -> Offset {
    history
        .events
        .iter()
        .flat_map(reads)
        .filter(|r| r.0 == key)
        .map(|r| r.1)
        .max()
        .unwrap_or(-1)
}

fn is_ok(history: &History, op: &Op) -> bool {
    history.events[op.completion].kind == Kind::Ok
}

/// Runs `mutate` on reference histories of `workload` over many seeds; every history it
/// changed must show one of `expected` as a bad anomaly.
fn assert_flags(
    name: &str,
    mut workload: Workload,
    expected: &[AnomalyKind],
    mutate: impl Fn(&mut History) -> bool,
) {
    let mut applied = 0;
    for seed in 0..SEEDS {
        workload.seed = seed;
        let mut history = workload.history();
        if !mutate(&mut history) {
            continue;
        }
        applied += 1;
        let report =
            check(&workload.config(), &history).expect("mutated history stays well-formed");
        let flagged = report
            .anomalies
            .iter()
            .any(|a| a.bad && expected.contains(&a.kind));
        assert!(
            flagged,
            "{name}, seed {seed}: expected {expected:?}\n{}",
            report.anomalies_jsonl()
        );
    }
    assert!(
        applied >= APPLIED_MIN,
        "{name}: applied on only {applied} seeds"
    );
}

fn plain() -> Workload {
    Workload {
        ops: 300,
        key_count: 3,
        thread_count: 4,
        ..Workload::new(300, 0)
    }
}

fn txn() -> Workload {
    Workload {
        txn: true,
        ..plain()
    }
}

// Goal: an acknowledged record that disappears is a lost write. Method: drop an acked value
// (not its key's last record) from every poll.
#[test]
fn dropped_acked_record_is_lost_write() {
    assert_flags("drop", plain(), &[AnomalyKind::LostWrite], |h| {
        let target = ops(h)
            .iter()
            .filter(|o| is_ok(h, o))
            .flat_map(|o| sends(&h.events[o.completion]))
            .find(|s| s.1 < max_offset(h, s.0));
        let Some((key, offset, val)) = target else {
            return false;
        };
        edit_reads(h, |k, o, v| {
            (k != key || o != offset || v != val).then_some((o, v))
        });
        true
    });
}

// Goal: two values at one offset are inconsistent offsets. Method: a later ack reports an
// earlier ack's offset.
#[test]
fn reused_offset_is_inconsistent() {
    assert_flags("reuse", plain(), &[AnomalyKind::InconsistentOffsets], |h| {
        let acked: Vec<(usize, Key, Offset)> = ops(h)
            .iter()
            .filter(|o| is_ok(h, o))
            .flat_map(|o| {
                sends(&h.events[o.completion])
                    .into_iter()
                    .map(move |s| (o.completion, s.0, s.1))
            })
            .collect();
        let Some(&(event, key, _)) = acked
            .iter()
            .skip(1)
            .find(|(e, k, _)| acked.iter().any(|a| a.1 == *k && a.0 != *e))
        else {
            return false;
        };
        let earlier = acked
            .iter()
            .find(|a| a.1 == key && a.0 != event)
            .expect("found above")
            .2;
        for mop in mops_mut(&mut h.events[event]) {
            if let Mop::Send { key: k, offset, .. } = mop {
                if *k == key {
                    *offset = Some(earlier);
                    break;
                }
            }
        }
        true
    });
}

// Goal: a value at two offsets is a duplicate (bad with idempotence). Method: a poll returns
// a record again at a fresh offset past the end.
#[test]
fn appended_twice_is_duplicate() {
    assert_flags("dup", plain(), &[AnomalyKind::Duplicate], |h| {
        let Some(op) = ops(h)
            .into_iter()
            .find(|o| is_ok(h, o) && !reads(&h.events[o.completion]).is_empty())
        else {
            return false;
        };
        let (key, _, val) = reads(&h.events[op.completion])[0];
        let far = max_offset(h, key) + 100;
        mops_mut(&mut h.events[op.completion]).push(Mop::polled(vec![(key, vec![(far, val)])]));
        true
    });
}

// Goal: a consumer that jumps ahead under assign is a poll-skip. Method: remove the first
// record of a key from a poll that directly follows an ok poll of the same process and key.
#[test]
fn consumer_jump_is_poll_skip() {
    assert_flags("skip", plain(), &[AnomalyKind::PollSkip], |h| {
        let all = ops(h);
        for pair in all.iter().enumerate() {
            let (i, a) = pair;
            let Some(b) = all[i + 1..].iter().find(|o| o.process == a.process) else {
                continue;
            };
            if !is_ok(h, a) || h.events[b.invoke].f != F::Poll {
                continue;
            }
            let (ra, rb) = (
                reads(&h.events[a.completion]),
                reads(&h.events[b.completion]),
            );
            let Some(&(key, offset, _)) = rb.iter().find(|r| {
                ra.iter().any(|x| x.0 == r.0) && rb.iter().filter(|x| x.0 == r.0).count() >= 2
            }) else {
                continue;
            };
            let event = b.completion;
            let mops = mops_mut(&mut h.events[event]);
            for mop in mops {
                if let Mop::Poll(Some(polled)) = mop {
                    for (k, records) in polled.iter_mut() {
                        records.retain(|r| *k != key || r.0 != offset);
                    }
                }
            }
            return true;
        }
        false
    });
}

// Goal: records out of order inside one poll are int-nonmonotonic-poll. Method: swap two
// consecutive records of one key.
#[test]
fn reordered_poll_is_int_nonmonotonic() {
    assert_flags(
        "reorder",
        plain(),
        &[AnomalyKind::IntNonmonotonicPoll],
        |h| {
            for event in &mut h.events {
                let Value::Mops(mops) = &mut event.value else {
                    continue;
                };
                for mop in mops {
                    if let Mop::Poll(Some(polled)) = mop {
                        if let Some((_, records)) = polled.iter_mut().find(|(_, r)| r.len() >= 2) {
                            records.swap(0, 1);
                            return true;
                        }
                    }
                }
            }
            false
        },
    );
}

// Goal: reading an aborted transaction's write is G1a. Method: an ok poll returns a record
// written by a failed txn at the offset the abort reported.
#[test]
fn aborted_write_read_is_g1a() {
    assert_flags("g1a", txn(), &[AnomalyKind::G1a], |h| {
        let all = ops(h);
        let aborted = all
            .iter()
            .filter(|o| h.events[o.completion].kind == Kind::Fail)
            .flat_map(|o| sends(&h.events[o.completion]))
            .next();
        let Some((key, offset, val)) = aborted else {
            return false;
        };
        let Some(reader) = all
            .iter()
            .rev()
            .find(|o| is_ok(h, o) && !reads(&h.events[o.completion]).is_empty())
        else {
            return false;
        };
        mops_mut(&mut h.events[reader.completion])
            .push(Mop::polled(vec![(key, vec![(offset, val)])]));
        true
    });
}

// Goal: a transaction that sees its own uncommitted write is a precommitted read.
#[test]
fn own_write_read_is_precommitted() {
    assert_flags(
        "precommitted",
        txn(),
        &[AnomalyKind::PrecommittedRead],
        |h| {
            let Some(op) = ops(h).into_iter().find(|o| {
                is_ok(h, o)
                    && h.events[o.invoke].f == F::Txn
                    && !sends(&h.events[o.completion]).is_empty()
            }) else {
                return false;
            };
            let (key, offset, val) = sends(&h.events[op.completion])[0];
            mops_mut(&mut h.events[op.completion])
                .push(Mop::polled(vec![(key, vec![(offset, val)])]));
            true
        },
    );
}

/// An acknowledged send: (completion event, key, offset, value).
type AckedSend = (usize, Key, Offset, Val);

/// Swaps the log positions of two acked sends (sends and polls stay mutually consistent).
fn swap_positions(h: &mut History, a: AckedSend, b: AckedSend) {
    let key = a.1;
    for (event, other) in [(a.0, b.2), (b.0, a.2)] {
        let own = if event == a.0 { a.3 } else { b.3 };
        for mop in mops_mut(&mut h.events[event]) {
            if let Mop::Send {
                key: k,
                offset,
                value,
            } = mop
            {
                if *k == key && *value == own {
                    *offset = Some(other);
                }
            }
        }
    }
    edit_reads(h, |k, o, v| {
        Some(match () {
            _ if k == key && v == a.3 => (b.2, v),
            _ if k == key && v == b.3 => (a.2, v),
            _ => (o, v),
        })
    });
}

/// Finds two acked single-send ops to one key, A completing before B is invoked, with
/// `same_process` deciding whether they share a process.
fn ordered_sends(h: &History, same_process: bool) -> Option<(AckedSend, AckedSend)> {
    let all: Vec<Op> = ops(h)
        .into_iter()
        .filter(|o| is_ok(h, o) && h.events[o.invoke].f == F::Send)
        .collect();
    for (i, a) in all.iter().enumerate() {
        let sa = sends(&h.events[a.completion]);
        let later = all[i + 1..]
            .iter()
            .filter(|b| b.invoke > a.completion && (b.process == a.process) == same_process);
        for b in later {
            if same_process
                && all[i + 1..]
                    .iter()
                    .find(|o| o.process == a.process)
                    .map(|o| o.invoke)
                    != Some(b.invoke)
            {
                continue;
            }
            let sb = sends(&h.events[b.completion]);
            if let (Some(x), true) = (sa.last(), sb.len() == 1 && sa.len() == 1) {
                let y = sb[0];
                if x.0 == y.0 {
                    return Some(((a.completion, x.0, x.1, x.2), (b.completion, y.0, y.1, y.2)));
                }
            }
        }
    }
    None
}

// Goal: a producer whose later send lands first is nonmonotonic-send. Method: swap the log
// positions of two consecutive single-send ops of one process to one key.
#[test]
fn swapped_producer_sends_are_nonmonotonic() {
    assert_flags("swap", plain(), &[AnomalyKind::NonmonotonicSend], |h| {
        let Some((a, b)) = ordered_sends(h, true) else {
            return false;
        };
        swap_positions(h, a, b);
        true
    });
}

// Goal: a send invoked after another was acked but landing below it is
// realtime-nonmonotonic-send. Method: swap positions of two such sends of different processes.
#[test]
fn lower_offset_for_later_send_is_realtime_nonmonotonic() {
    assert_flags(
        "realtime",
        plain(),
        &[AnomalyKind::RealtimeNonmonotonicSend],
        |h| {
            let Some((a, b)) = ordered_sends(h, false) else {
                return false;
            };
            swap_positions(h, a, b);
            true
        },
    );
}

// Goal: a transaction committed only in part is torn. Method: drop one of a committed
// txn's writes (not its key's last record) from every poll.
#[test]
fn partly_committed_txn_is_torn() {
    assert_flags("torn", txn(), &[AnomalyKind::TornTxn], |h| {
        let target = ops(h)
            .iter()
            .filter(|o| is_ok(h, o))
            .map(|o| sends(&h.events[o.completion]))
            .filter(|s| s.len() >= 2)
            .find_map(|s| s.into_iter().find(|w| w.1 < max_offset(h, w.0)));
        let Some((key, offset, val)) = target else {
            return false;
        };
        edit_reads(h, |k, o, v| {
            (k != key || o != offset || v != val).then_some((o, v))
        });
        true
    });
}

// Goal: serving a value before its send was invoked is a future read.
#[test]
fn value_served_before_send_is_future_read() {
    assert_flags("future", plain(), &[AnomalyKind::FutureRead], |h| {
        let all = ops(h);
        let Some(reader) = all
            .iter()
            .find(|o| is_ok(h, o) && h.events[o.invoke].f == F::Poll)
        else {
            return false;
        };
        let Some(writer) = all.iter().find(|o| {
            o.invoke > reader.completion
                && is_ok(h, o)
                && !sends(&h.events[o.completion]).is_empty()
        }) else {
            return false;
        };
        let (key, offset, val) = sends(&h.events[writer.completion])[0];
        mops_mut(&mut h.events[reader.completion])
            .push(Mop::polled(vec![(key, vec![(offset, val)])]));
        true
    });
}

// Goal: two transactions reading each other's writes is circular information flow (G1c).
#[test]
fn mutual_reads_are_g1c() {
    assert_flags(
        "g1c",
        txn(),
        &[AnomalyKind::G1c, AnomalyKind::G1cRealtime],
        |h| {
            let txns: Vec<Op> = ops(h)
                .into_iter()
                .filter(|o| {
                    is_ok(h, o)
                        && h.events[o.invoke].f == F::Txn
                        && !sends(&h.events[o.completion]).is_empty()
                })
                .collect();
            let [t1, t2, ..] = txns.as_slice() else {
                return false;
            };
            let (w1, w2) = (
                sends(&h.events[t1.completion])[0],
                sends(&h.events[t2.completion])[0],
            );
            mops_mut(&mut h.events[t1.completion])
                .push(Mop::polled(vec![(w2.0, vec![(w2.1, w2.2)])]));
            mops_mut(&mut h.events[t2.completion])
                .push(Mop::polled(vec![(w1.0, vec![(w1.1, w1.2)])]));
            true
        },
    );
}
