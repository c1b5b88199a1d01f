//! Version orders (§6.4 step 4): per key, the offsets known to hold records and the values
//! at each, built from every read and every committed write with a known offset.
//!
//! A *position* is the index of an offset among the key's non-empty offsets (Jepsen's dense
//! index), so transaction markers and aborted records never count as skips. Invariants:
//! `offsets` is strictly increasing; the values at one position are sorted and distinct; a
//! value's `first`/`last` positions bracket every offset it was seen at. The same pass
//! reports `inconsistent-offsets` (one offset, several values) and `duplicate` (one value,
//! several offsets).

use super::{len_u32, Arena, Evidence};
use crate::anomaly::{Anomaly, AnomalyKind};
use crate::history::{Offset, Val};

/// The version order of one key.
#[derive(Debug, Default)]
pub(crate) struct KeyLog {
    /// Non-empty offsets, strictly increasing; index = position.
    offsets: Vec<Offset>,
    /// `vals[val_start[p]..val_start[p + 1]]` are the values at position `p`.
    val_start: Vec<u32>,
    vals: Vec<Val>,
    /// (value, first position, last position), sorted by value.
    by_val: Vec<(Val, u32, u32)>,
}

impl KeyLog {
    /// Number of positions.
    pub fn len(&self) -> u32 {
        len_u32(&self.offsets)
    }

    pub fn max_offset(&self) -> Option<Offset> {
        self.offsets.last().copied()
    }

    pub fn offset_at(&self, pos: u32) -> Offset {
        self.offsets[pos as usize]
    }

    /// Position of a non-empty offset.
    pub fn pos(&self, offset: Offset) -> Option<u32> {
        self.offsets.binary_search(&offset).ok().map(|p| p as u32)
    }

    /// Values at a position (sorted).
    pub fn vals_at(&self, pos: u32) -> &[Val] {
        let start = self.val_start[pos as usize] as usize;
        let end = self.val_start[pos as usize + 1] as usize;
        &self.vals[start..end]
    }

    /// The representative (smallest) value at a position.
    pub fn rep(&self, pos: u32) -> Val {
        self.vals_at(pos)[0]
    }

    /// First and last position of a value.
    pub fn first_last(&self, val: Val) -> Option<(u32, u32)> {
        self.by_val
            .binary_search_by_key(&val, |entry| entry.0)
            .ok()
            .map(|i| (self.by_val[i].1, self.by_val[i].2))
    }

    /// Position of a send: its own offset when the log holds the value there, else the
    /// value's first position (§6.7 deviation 1), else unknown.
    pub fn send_pos(&self, offset: Option<Offset>, val: Val) -> Option<u32> {
        if let Some(pos) = offset.and_then(|o| self.pos(o)) {
            if self.vals_at(pos).binary_search(&val).is_ok() {
                return Some(pos);
            }
        }
        self.first_last(val).map(|(first, _)| first)
    }

    /// Values at positions `from..to`, at most `limit` of them (for explanations).
    pub fn vals_between(&self, from: u32, to: u32, limit: usize) -> Vec<Val> {
        (from..to.min(self.len()))
            .take(limit)
            .map(|p| self.rep(p))
            .collect()
    }
}

/// Builds one [`KeyLog`] per dense key and reports inconsistent offsets and duplicates.
pub(crate) fn build(
    arena: &Arena,
    evidence: &Evidence,
    anomalies: &mut Vec<Anomaly>,
) -> Vec<KeyLog> {
    let mut entries: Vec<(u32, Offset, Val)> = arena
        .reads
        .iter()
        .map(|r| (r.key, r.offset, r.val))
        .collect();
    for (w, write) in arena.writes.iter().enumerate() {
        if let (true, Some(offset)) = (evidence.write_committed[w], write.offset) {
            entries.push((write.key, offset, write.val));
        }
    }
    entries.sort_unstable();
    entries.dedup();
    let mut logs: Vec<KeyLog> = (0..arena.keys.len()).map(|_| KeyLog::default()).collect();
    let mut start = 0;
    while start < entries.len() {
        let key = entries[start].0;
        let end = start + entries[start..].iter().take_while(|e| e.0 == key).count();
        logs[key as usize] = build_key(arena, key, &entries[start..end], anomalies);
        start = end;
    }
    logs
}

/// Builds the log of one key from its sorted, distinct (key, offset, value) entries.
fn build_key(
    arena: &Arena,
    key: u32,
    entries: &[(u32, Offset, Val)],
    anomalies: &mut Vec<Anomaly>,
) -> KeyLog {
    let mut log = KeyLog::default();
    let mut val_positions: Vec<(Val, u32)> = Vec::with_capacity(entries.len());
    for &(_, offset, val) in entries {
        if log.offsets.last() != Some(&offset) {
            log.val_start.push(len_u32(&log.vals));
            log.offsets.push(offset);
        }
        val_positions.push((val, log.len() - 1));
        log.vals.push(val);
    }
    log.val_start.push(len_u32(&log.vals));
    for pos in 0..log.len() {
        let vals = log.vals_at(pos);
        if vals.len() > 1 {
            let offset = log.offset_at(pos);
            let explanation = format!(
                "offset {offset} of key {} holds {} different values {vals:?}",
                arena.key(key),
                vals.len()
            );
            anomalies.push(
                Anomaly::new(AnomalyKind::InconsistentOffsets, explanation)
                    .key(arena.key(key))
                    .values(vals.to_vec())
                    .offsets(vec![offset]),
            );
        }
    }
    val_positions.sort_unstable();
    let mut i = 0;
    while i < val_positions.len() {
        let val = val_positions[i].0;
        let count = val_positions[i..].iter().take_while(|e| e.0 == val).count();
        let first = val_positions[i].1;
        let last = val_positions[i + count - 1].1;
        log.by_val.push((val, first, last));
        if count > 1 {
            let offsets: Vec<Offset> = val_positions[i..i + count]
                .iter()
                .map(|e| log.offset_at(e.1))
                .collect();
            let explanation = format!(
                "value {val} of key {} appears at {count} offsets {offsets:?}",
                arena.key(key)
            );
            anomalies.push(
                Anomaly::new(AnomalyKind::Duplicate, explanation)
                    .key(arena.key(key))
                    .values(vec![val])
                    .offsets(offsets),
            );
        }
        i += count;
    }
    log
}
