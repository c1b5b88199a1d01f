//! Consumer-group coverage (§6.4 step 11, our extension): the union of the position ranges
//! read by `ok` ops of subscribed processes that committed their offsets must leave no hole
//! below the group's highest committed position (`group-gap`); with transactions, no
//! position may be consumed by two committed transactions (`group-duplicate`).
//!
//! Cost: one sort of the intervals plus a difference array per key over its positions.

use std::collections::BTreeMap;

use super::order::completion_order;
use super::{Arena, FClass, KeyLog};
use crate::anomaly::{Anomaly, AnomalyKind};
use crate::config::{CheckConfig, SubVia};
use crate::history::Kind;

/// A committed group consumer's range on one key: (key, first pos, last pos, txn?, op id).
type Interval = (u32, u32, u32, bool, u32);

/// Emits `group-gap` and `group-duplicate`.
pub(crate) fn coverage(
    config: &CheckConfig,
    arena: &Arena,
    logs: &[KeyLog],
    anomalies: &mut Vec<Anomaly>,
) {
    let mut subscribed = vec![config.sub_via == SubVia::Subscribe; arena.process_count as usize];
    let mut intervals: Vec<Interval> = Vec::new();
    for op in completion_order(arena) {
        let rec = &arena.ops[op as usize];
        if matches!(rec.f, FClass::Assign | FClass::Subscribe) && rec.kind != Kind::Fail {
            subscribed[rec.process as usize] = rec.f == FClass::Subscribe;
            continue;
        }
        // Only reads whose offsets were committed move the group forward; uncommitted or
        // failed ones will be redelivered, and assigned consumers are not in the group.
        if rec.kind != Kind::Ok || !rec.group_committed || !subscribed[rec.process as usize] {
            continue;
        }
        let mut ranges: BTreeMap<u32, (u32, u32)> = BTreeMap::new();
        for read in arena.op_reads(op) {
            let Some(pos) = logs[read.key as usize].pos(read.offset) else {
                continue;
            };
            ranges
                .entry(read.key)
                .and_modify(|r| *r = (r.0.min(pos), r.1.max(pos)))
                .or_insert((pos, pos));
        }
        let txn = rec.f == FClass::Txn;
        intervals.extend(
            ranges
                .into_iter()
                .map(|(key, (lo, hi))| (key, lo, hi, txn, rec.id())),
        );
    }
    intervals.sort_unstable();
    let mut start = 0;
    while start < intervals.len() {
        let key = intervals[start].0;
        let end = start + intervals[start..].iter().take_while(|i| i.0 == key).count();
        key_coverage(
            config,
            arena,
            &logs[key as usize],
            &intervals[start..end],
            anomalies,
        );
        start = end;
    }
}

/// Coverage of one key from its intervals (all of the same key).
fn key_coverage(
    config: &CheckConfig,
    arena: &Arena,
    log: &KeyLog,
    intervals: &[Interval],
    anomalies: &mut Vec<Anomaly>,
) {
    let key = arena.key(intervals[0].0);
    let high = intervals
        .iter()
        .map(|i| i.2)
        .max()
        .expect("at least one interval");
    let low = if config.auto_offset_reset_earliest {
        0
    } else {
        intervals
            .iter()
            .map(|i| i.1)
            .min()
            .expect("at least one interval")
    };
    // Difference arrays over positions 0..=high+1: all committed ops, and txn ops only.
    let mut cover = vec![0i64; high as usize + 2];
    let mut txn_cover = vec![0i64; high as usize + 2];
    for &(_, lo, hi, txn, _) in intervals {
        cover[lo as usize] += 1;
        cover[hi as usize + 1] -= 1;
        if txn {
            txn_cover[lo as usize] += 1;
            txn_cover[hi as usize + 1] -= 1;
        }
    }
    let (mut covered, mut txn_covered) = (0i64, 0i64);
    for pos in 0..=high {
        covered += cover[pos as usize];
        txn_covered += txn_cover[pos as usize];
        if pos < low {
            continue;
        }
        let (offset, val) = (log.offset_at(pos), log.rep(pos));
        if covered == 0 {
            let explanation = format!(
                "no committed group consumer processed {val} at offset {offset} of key {key}, \
                 though the group committed past it"
            );
            anomalies.push(
                Anomaly::new(AnomalyKind::GroupGap, explanation)
                    .key(key)
                    .values(vec![val])
                    .offsets(vec![offset]),
            );
        }
        if txn_covered > 1 {
            let ops: Vec<u32> = intervals
                .iter()
                .filter(|i| i.3 && i.1 <= pos && pos <= i.2)
                .map(|i| i.4)
                .collect();
            let explanation = format!(
                "{txn_covered} committed transactions consumed {val} at offset {offset} of key \
                 {key}"
            );
            anomalies.push(
                Anomaly::new(AnomalyKind::GroupDuplicate, explanation)
                    .key(key)
                    .ops(ops)
                    .values(vec![val])
                    .offsets(vec![offset]),
            );
        }
    }
}
