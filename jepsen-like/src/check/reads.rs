//! Checks driven by what was (or was not) read (§6.4 steps 5–7): unexpected values, aborted
//! reads (G1a), reads of one's own uncommitted writes, reads from the future, lost writes,
//! unseen writes and torn transactions.
//!
//! Evidence comes from polls of completed ops of every type (§6.7 deviation 2): a poller
//! must return committed data whatever happens to the op around it.

use super::{Arena, Evidence, KeyLog, NONE};
use crate::anomaly::{Anomaly, AnomalyKind};
use crate::config::CheckConfig;
use crate::history::{Key, Kind, Val};

/// unexpected-value, precommitted-read, G1a and future-read, one pass over the reads.
pub(crate) fn per_read(arena: &Arena, evidence: &Evidence, anomalies: &mut Vec<Anomaly>) {
    for (r, read) in arena.reads.iter().enumerate() {
        let key = arena.key(read.key);
        let reader = arena.id(read.op);
        let (offset, val) = (read.offset, read.val);
        let writer_write = evidence.read_writer[r];
        if writer_write == NONE {
            let explanation = format!(
                "op {reader} polled value {val} of key {key} at offset {offset}, which no op sent"
            );
            anomalies.push(
                Anomaly::new(AnomalyKind::UnexpectedValue, explanation)
                    .key(key)
                    .ops(vec![reader])
                    .values(vec![val])
                    .offsets(vec![offset]),
            );
            continue;
        }
        let writer_op = arena.writes[writer_write as usize].op;
        let writer = arena.id(writer_op);
        // Reading one's own write is not an aborted read even if the op later failed: it
        // is the stricter read_committed violation below.
        if writer_op == read.op {
            let explanation =
                format!("op {reader} polled value {val} of key {key} which it sent itself");
            anomalies.push(
                Anomaly::new(AnomalyKind::PrecommittedRead, explanation)
                    .key(key)
                    .ops(vec![reader])
                    .values(vec![val])
                    .offsets(vec![offset]),
            );
            continue;
        }
        let writer_rec = &arena.ops[writer_op as usize];
        // Any reader counts, not only ok ones (§6.7 deviation 2): a poller must never
        // return aborted data, whatever later happens to its own op.
        if writer_rec.kind == Kind::Fail {
            let explanation = format!(
                "op {writer} failed sending {val} to key {key}, yet op {reader} polled it at \
                 offset {offset}"
            );
            anomalies.push(
                Anomaly::new(AnomalyKind::G1a, explanation)
                    .key(key)
                    .ops(vec![writer, reader])
                    .values(vec![val])
                    .offsets(vec![offset]),
            );
        }
        let reader_rec = &arena.ops[read.op as usize];
        // Event order is real time: a reader that finished before the send even started
        // saw data from the future (stale cache, offset reuse). Valid under any isolation.
        if reader_rec.completion < writer_rec.invoke {
            let explanation = format!(
                "op {reader} polled {val} from key {key} at offset {offset}, but op {writer} \
                 only invoked that send at event {}",
                writer_rec.invoke
            );
            anomalies.push(
                Anomaly::new(AnomalyKind::FutureRead, explanation)
                    .key(key)
                    .ops(vec![writer, reader])
                    .values(vec![val])
                    .offsets(vec![offset]),
            );
        }
    }
}

/// lost-write: a committed write below the highest position read whose value nobody read.
pub(crate) fn lost_writes(
    arena: &Arena,
    evidence: &Evidence,
    logs: &[KeyLog],
    anomalies: &mut Vec<Anomaly>,
) {
    // Reading a value at position p proves the log had a prefix up to p. Using the value's
    // FIRST position for the bound and a candidate's LAST position keeps this sound when
    // offsets conflict (Jepsen's "inconsistent" case).
    // Per key: (highest first-position of any value read, the read reaching it).
    let mut bound: Vec<Option<(u32, usize)>> = vec![None; arena.keys.len()];
    for (r, read) in arena.reads.iter().enumerate() {
        let Some((first, _)) = logs[read.key as usize].first_last(read.val) else {
            continue;
        };
        let slot = &mut bound[read.key as usize];
        if slot.is_none_or(|(b, _)| first > b) {
            *slot = Some((first, r));
        }
    }
    for (w, write) in arena.writes.iter().enumerate() {
        if !evidence.write_committed[w] || evidence.write_seen[w] {
            continue;
        }
        let log = &logs[write.key as usize];
        let (Some((_, last)), Some((bound_pos, bound_read))) =
            (log.first_last(write.val), bound[write.key as usize])
        else {
            continue;
        };
        if last > bound_pos {
            continue;
        }
        let key = arena.key(write.key);
        let writer = arena.id(write.op);
        let max_read = arena.reads[bound_read];
        let reader = arena.id(max_read.op);
        let explanation = format!(
            "op {writer} sent {} to key {key} (offset {}), which was never read, though op \
             {reader} read {} at offset {} further on",
            write.val,
            log.offset_at(last),
            max_read.val,
            max_read.offset
        );
        anomalies.push(
            Anomaly::new(AnomalyKind::LostWrite, explanation)
                .key(key)
                .ops(vec![writer, reader])
                .values(vec![write.val, max_read.val])
                .offsets(vec![log.offset_at(last), max_read.offset])
                .delta(i64::from(bound_pos) - i64::from(last)),
        );
    }
}

/// unseen / unseen-unknown per committed write never read, and torn-txn (txn mode) per
/// committed op with both read and never-read writes. Returns the unseen (key, value)s.
pub(crate) fn unseen_and_torn(
    config: &CheckConfig,
    arena: &Arena,
    evidence: &Evidence,
    caught_up: &[bool],
    anomalies: &mut Vec<Anomaly>,
) -> Vec<(Key, Val)> {
    let mut unseen = Vec::new();
    for (w, write) in arena.writes.iter().enumerate() {
        if !evidence.write_committed[w] || evidence.write_seen[w] {
            continue;
        }
        let key = arena.key(write.key);
        let writer = arena.id(write.op);
        unseen.push((key, write.val));
        // "Never read" only proves loss if the final reads got to the end of the key;
        // otherwise the record may just be late.
        let (kind, tail) = if caught_up[write.key as usize] {
            (AnomalyKind::Unseen, "by the end of the test")
        } else {
            (
                AnomalyKind::UnseenUnknown,
                "yet (the final reads did not catch up)",
            )
        };
        let explanation = format!(
            "op {writer} committed {} to key {key}, which no poll returned {tail}",
            write.val
        );
        let anomaly = Anomaly::new(kind, explanation)
            .key(key)
            .ops(vec![writer])
            .values(vec![write.val]);
        anomalies.push(anomaly.offsets(write.offset.into_iter().collect()));
    }
    unseen.sort_unstable();
    if !config.txn {
        return unseen;
    }
    for (op_index, op) in arena.ops.iter().enumerate() {
        if !evidence.op_committed[op_index] {
            continue;
        }
        let writes = op.writes.start as usize..op.writes.end as usize;
        // Atomicity: one visible write means the transaction committed, so every write of
        // it must become visible on keys the final reads covered.
        let any_seen = writes.clone().any(|w| evidence.write_seen[w]);
        let missing: Vec<usize> = writes
            .filter(|&w| {
                let key = arena.writes[w].key as usize;
                evidence.write_committed[w] && !evidence.write_seen[w] && caught_up[key]
            })
            .collect();
        if !any_seen || missing.is_empty() {
            continue;
        }
        let writer = op.id();
        let values: Vec<Val> = missing.iter().map(|&w| arena.writes[w].val).collect();
        let explanation = format!(
            "txn op {writer} committed, some of its writes were read but {} never were: {values:?}",
            missing.len()
        );
        let key = arena.key(arena.writes[missing[0]].key);
        anomalies.push(
            Anomaly::new(AnomalyKind::TornTxn, explanation)
                .key(key)
                .ops(vec![writer])
                .values(values),
        );
    }
    unseen
}
