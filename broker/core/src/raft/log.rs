//! The in-memory Raft log: an optional snapshot followed by contiguous entries, and the
//! voter sets in force along it.
//!
//! Invariants (asserted by [`RaftLog::invariants`] and at every mutation):
//! - `entries[i].index == snapshot_index + 1 + i`;
//! - entry terms never decrease and are >= `snapshot_term`;
//! - `voter_sets` lists exactly the voter-set entries of `entries`, decoded, in index order,
//!   so the voter set at any index from `snapshot_index` on is the newest one at or before
//!   it, else `snapshot_voters`; consecutive sets differ by exactly one node.

use std::collections::BTreeSet;

use super::{Entry, EntryKind, NodeId, Snapshot};

#[derive(Debug, Clone)]
pub(super) struct RaftLog {
    /// The latest snapshot, kept in memory to send to lagging followers.
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
    /// The set in force when neither the snapshot nor an entry says otherwise.
    bootstrap_voters: BTreeSet<NodeId>,
    /// The set in force at `snapshot_index` (the bootstrap set without a snapshot).
    snapshot_voters: BTreeSet<NodeId>,
    /// `(index, voters)` of every voter-set entry in `entries`, in index order. Bounded by
    /// the entries in memory, which compaction trims.
    voter_sets: Vec<(u64, BTreeSet<NodeId>)>,
}

impl RaftLog {
    /// A log from already validated parts (entries start right after the snapshot; their
    /// voter sets and the snapshot's decode and are non-empty).
    pub(super) fn new(
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
        bootstrap_voters: BTreeSet<NodeId>,
    ) -> RaftLog {
        let snapshot_voters = snapshot
            .as_ref()
            .and_then(|s| s.voters.clone())
            .unwrap_or_else(|| bootstrap_voters.clone());
        let voter_sets = entries.iter().filter_map(decoded_voter_set).collect();
        let log = RaftLog {
            snapshot,
            entries,
            bootstrap_voters,
            snapshot_voters,
            voter_sets,
        };
        log.invariants();
        log
    }

    /// The voter set in force: the newest in the log, committed or not.
    pub(super) fn voters(&self) -> &BTreeSet<NodeId> {
        self.voter_sets
            .last()
            .map_or(&self.snapshot_voters, |(_, voters)| voters)
    }

    /// The voter set in force at `index` (which must not be below the snapshot).
    pub(super) fn voters_at(&self, index: u64) -> &BTreeSet<NodeId> {
        assert!(
            index >= self.snapshot_index(),
            "index={index} snapshot={}",
            self.snapshot_index()
        );
        let newest = self.voter_sets.iter().rev().find(|(at, _)| *at <= index);
        newest.map_or(&self.snapshot_voters, |(_, voters)| voters)
    }

    /// Index of the newest voter-set entry after the snapshot, if any.
    pub(super) fn last_voter_set_index(&self) -> Option<u64> {
        self.voter_sets.last().map(|(index, _)| *index)
    }

    /// The `(index, voters)` of the voter-set entries after the snapshot, in index order.
    pub(super) fn voter_sets(&self) -> &[(u64, BTreeSet<NodeId>)] {
        &self.voter_sets
    }

    /// Every set this log knows: the bootstrap set, the snapshot's and the entries'.
    pub(super) fn known_voters(&self) -> BTreeSet<NodeId> {
        let entry_voters = self.voter_sets.iter().flat_map(|(_, voters)| voters);
        let all = self.bootstrap_voters.iter().chain(&self.snapshot_voters);
        all.chain(entry_voters).copied().collect()
    }

    pub(super) fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    pub(super) fn snapshot_index(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.last_index)
    }

    pub(super) fn snapshot_term(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.last_term)
    }

    pub(super) fn last_index(&self) -> u64 {
        self.snapshot_index() + self.entries.len() as u64
    }

    pub(super) fn last_term(&self) -> u64 {
        self.entries
            .last()
            .map_or_else(|| self.snapshot_term(), |e| e.term)
    }

    /// Term of the entry at `index`; `None` if compacted away (below the snapshot) or
    /// beyond the end. Index 0 (before the log) has term 0.
    pub(super) fn term(&self, index: u64) -> Option<u64> {
        let snapshot_index = self.snapshot_index();
        if index == snapshot_index {
            return Some(self.snapshot_term());
        }
        self.entry(index).map(|e| e.term)
    }

    pub(super) fn entry(&self, index: u64) -> Option<&Entry> {
        let offset = index.checked_sub(self.snapshot_index() + 1)?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Up to `count_max` entries from `from` (which must be after the snapshot).
    pub(super) fn slice(&self, from: u64, count_max: usize) -> &[Entry] {
        assert!(
            from > self.snapshot_index(),
            "from={from} snapshot={}",
            self.snapshot_index()
        );
        let start = usize::try_from(from - self.snapshot_index() - 1).unwrap_or(usize::MAX);
        let start = start.min(self.entries.len());
        let end = start.saturating_add(count_max).min(self.entries.len());
        &self.entries[start..end]
    }

    /// Entries `from..=to` (both after the snapshot, `to <= last_index`).
    pub(super) fn range(&self, from: u64, to: u64) -> &[Entry] {
        if to < from {
            return &[];
        }
        self.slice(from, usize::try_from(to - from + 1).unwrap_or(usize::MAX))
    }

    pub(super) fn append(&mut self, entry: Entry) {
        assert_eq!(
            entry.index,
            self.last_index() + 1,
            "append must be contiguous"
        );
        assert!(
            entry.term >= self.last_term(),
            "term {} < {}",
            entry.term,
            self.last_term()
        );
        if let Some(voter_set) = decoded_voter_set(&entry) {
            self.voter_sets.push(voter_set);
        }
        self.entries.push(entry);
    }

    /// Removes entries with index >= `index` (which must be after the snapshot).
    pub(super) fn truncate_from(&mut self, index: u64) {
        assert!(
            index > self.snapshot_index(),
            "index={index} snapshot={}",
            self.snapshot_index()
        );
        let keep = usize::try_from(index - self.snapshot_index() - 1).unwrap_or(usize::MAX);
        self.entries.truncate(keep);
        self.voter_sets.retain(|(at, _)| *at < index);
    }

    /// Replaces the snapshot and drops the entries it covers. If the log holds the
    /// snapshot's last entry (same term) the suffix after it survives and `true` is
    /// returned; otherwise the whole log is discarded and `false` is returned. The voter set
    /// at the snapshot becomes the snapshot's (the bootstrap set if it has none).
    pub(super) fn install(&mut self, snapshot: Snapshot) -> bool {
        assert!(
            snapshot.last_index >= self.snapshot_index(),
            "snapshot goes backwards"
        );
        let kept = self.term(snapshot.last_index) == Some(snapshot.last_term);
        if kept {
            let drop_count = usize::try_from(snapshot.last_index - self.snapshot_index())
                .unwrap_or(usize::MAX)
                .min(self.entries.len());
            self.entries.drain(..drop_count);
            self.voter_sets.retain(|(at, _)| *at > snapshot.last_index);
        } else {
            self.entries.clear();
            self.voter_sets.clear();
        }
        self.snapshot_voters = snapshot
            .voters
            .clone()
            .unwrap_or_else(|| self.bootstrap_voters.clone());
        self.snapshot = Some(snapshot);
        self.invariants();
        kept
    }

    /// Whether a log ending at (`last_index`, `last_term`) is at least as up to date as
    /// this one (Raft §5.4.1).
    pub(super) fn is_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// After rejecting an append at `prev_index` (which is after the snapshot): the last
    /// index if the log ends before `prev_index`; otherwise the index before the first entry
    /// of the conflicting term at `prev_index`, so the leader skips a whole divergent term
    /// per round trip instead of one index. Always `< prev_index` and `>= snapshot_index`.
    pub(super) fn conflict_hint(&self, prev_index: u64) -> u64 {
        if prev_index > self.last_index() {
            return self.last_index();
        }
        let conflict_term = self.term(prev_index);
        let mut index = prev_index.saturating_sub(1).max(self.snapshot_index());
        while index > self.snapshot_index() && self.term(index) == conflict_term {
            index -= 1;
        }
        index
    }

    pub(super) fn invariants(&self) {
        let snapshot_index = self.snapshot_index();
        let mut previous_term = self.snapshot_term();
        for (offset, entry) in self.entries.iter().enumerate() {
            assert_eq!(
                entry.index,
                snapshot_index + 1 + offset as u64,
                "log not contiguous"
            );
            assert!(
                entry.term >= previous_term,
                "term decreases at {}: {} < {}",
                entry.index,
                entry.term,
                previous_term
            );
            previous_term = entry.term;
        }
        let voter_sets: Vec<(u64, BTreeSet<NodeId>)> =
            self.entries.iter().filter_map(decoded_voter_set).collect();
        assert_eq!(
            voter_sets, self.voter_sets,
            "voter sets out of step with the log"
        );
        assert!(
            !self.snapshot_voters.is_empty(),
            "empty voter set at the snapshot"
        );
        let mut previous = &self.snapshot_voters;
        for (index, voters) in &self.voter_sets {
            let changed_count = previous.symmetric_difference(voters).count();
            assert_eq!(
                changed_count, 1,
                "voter set at {index} changes {changed_count} nodes: {previous:?} -> {voters:?}"
            );
            previous = voters;
        }
    }
}

/// `(index, voters)` of a voter-set entry; `None` for other kinds. Voter-set entries are
/// validated before they reach a log, so they decode.
fn decoded_voter_set(entry: &Entry) -> Option<(u64, BTreeSet<NodeId>)> {
    if entry.kind() != EntryKind::VoterSet {
        return None;
    }
    let voters = entry
        .voter_set()
        .expect("voter sets are validated before they reach the log");
    Some((entry.index, voters))
}
