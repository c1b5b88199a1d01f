//! The in-memory Raft log: an optional snapshot followed by contiguous entries, and the
//! voter sets in force along it.
//!
//! # What this module is responsible for
//! The log is the storage half of Raft's *log matching* property: if two logs hold an
//! entry with the same index and term, they hold the same entries up to and including that
//! index. [`super::node`] earns that property on the wire (an append is accepted only when
//! the entry before it matches, and a conflicting suffix is cut off before new entries go
//! in); this module keeps the local shape that the argument needs. Every index names exactly
//! one slot, terms along the log never go down, and a suffix can only be replaced from a
//! point the caller has proven uncommitted. The log itself does not know the commit index:
//! [`super::node`] asserts that a truncation never reaches a committed entry before it calls
//! [`RaftLog::truncate_from`], and compaction only ever covers applied (hence committed)
//! entries.
//!
//! The log also answers "which voter set is in force at index i?". Membership changes are
//! single-step (each voter-set entry adds or removes exactly one node relative to the set
//! before it), and a node uses the newest set in its log whether or not it is committed. So
//! the answer must follow truncations and snapshot installs exactly: a stale cached set
//! would make a node count votes or acknowledgements against the wrong majority, which is
//! how two leaders end up in one term.
//!
//! # Invariants (asserted by [`RaftLog::invariants`] and at every mutation)
//! - `entries[i].index == snapshot_index + 1 + i`;
//! - entry terms never decrease and are >= `snapshot_term`;
//! - `voter_sets` lists exactly the voter-set entries of `entries`, decoded, in index order,
//!   so the voter set at any index from `snapshot_index` on is the newest one at or before
//!   it, else `snapshot_voters`; consecutive sets differ by exactly one node;
//! - every voter set (the snapshot's and each entry's) is non-empty.
//!
//! Everything that reaches this module has been validated already (storage by
//! `validated_log`, the wire by `well_formed_append`), so the assertions here state
//! programming errors, never bad input.

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
        // The bootstrap set stands in for every snapshot written before membership changes
        // existed, so an empty one would leave such a log without any majority at all.
        assert!(!bootstrap_voters.is_empty(), "empty bootstrap voter set");
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
        // Runs once per start: the O(n) walk is the only check that storage handed us a log
        // the rest of this module may trust.
        log.invariants();
        log
    }

    /// The voter set in force: the newest in the log, committed or not.
    pub(super) fn voters(&self) -> &BTreeSet<NodeId> {
        let voters = self
            .voter_sets
            .last()
            .map_or(&self.snapshot_voters, |(_, voters)| voters);
        // Quorum arithmetic indexes a sorted list by `quorum - 1`; an empty set would make
        // that underflow or, worse, let a node commit with nobody's acknowledgement.
        debug_assert!(!voters.is_empty(), "empty voter set in force");
        voters
    }

    /// The voter set in force at `index` (which must not be below the snapshot).
    pub(super) fn voters_at(&self, index: u64) -> &BTreeSet<NodeId> {
        // Below the snapshot the entries (and so the voter-set history) are gone: answering
        // with `snapshot_voters` there could name a set that was never in force at `index`.
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
        let index = self.voter_sets.last().map(|(index, _)| *index);
        // Callers look at `index - 1` (the set before the change): that is only in the log
        // because voter-set entries listed here all follow the snapshot.
        debug_assert!(
            index.is_none_or(|i| i > self.snapshot_index() && i <= self.last_index()),
            "voter-set entry {index:?} outside the log"
        );
        index
    }

    /// The `(index, voters)` of the voter-set entries after the snapshot, in index order.
    pub(super) fn voter_sets(&self) -> &[(u64, BTreeSet<NodeId>)] {
        debug_assert!(
            self.voter_sets.windows(2).all(|w| w[0].0 < w[1].0),
            "voter sets out of index order"
        );
        &self.voter_sets
    }

    /// Every set this log knows: the bootstrap set, the snapshot's and the entries'.
    pub(super) fn known_voters(&self) -> BTreeSet<NodeId> {
        let entry_voters = self.voter_sets.iter().flat_map(|(_, voters)| voters);
        let all = self.bootstrap_voters.iter().chain(&self.snapshot_voters);
        let known: BTreeSet<NodeId> = all.chain(entry_voters).copied().collect();
        // The node derives its learners from `known - voters`: a voter missing here would
        // be a former voter nobody replicates to any more.
        debug_assert!(known.is_superset(self.voters()));
        known
    }

    pub(super) fn snapshot(&self) -> Option<&Snapshot> {
        // `compact` writes the set in force into every snapshot it makes, and installed ones
        // were checked by `valid_snapshot_voters`: an empty set must never travel on.
        debug_assert!(self
            .snapshot
            .as_ref()
            .is_none_or(|s| s.voters.as_ref().is_none_or(|v| !v.is_empty())));
        self.snapshot.as_ref()
    }

    pub(super) fn snapshot_index(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.last_index)
    }

    pub(super) fn snapshot_term(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.last_term)
    }

    pub(super) fn last_index(&self) -> u64 {
        // `last_index` is derived from the length, so it is only right if the first entry
        // sits right after the snapshot (the full check is in `invariants`).
        debug_assert!(self
            .entries
            .first()
            .is_none_or(|e| e.index == self.snapshot_index() + 1));
        self.snapshot_index() + self.entries.len() as u64
    }

    pub(super) fn last_term(&self) -> u64 {
        let term = self
            .entries
            .last()
            .map_or_else(|| self.snapshot_term(), |e| e.term);
        // Elections compare (last_term, last_index): a last term below the snapshot's would
        // let a candidate missing committed entries look up to date.
        debug_assert!(term >= self.snapshot_term());
        term
    }

    /// Term of the entry at `index`; `None` if compacted away (below the snapshot) or
    /// beyond the end. Index 0 (before the log) has term 0.
    pub(super) fn term(&self, index: u64) -> Option<u64> {
        let snapshot_index = self.snapshot_index();
        if index == snapshot_index {
            return Some(self.snapshot_term());
        }
        // `None` below the snapshot is not "no entry there": it means "unknown here", and
        // callers answer it with a snapshot rather than with a mismatch.
        self.entry(index).map(|e| e.term)
    }

    pub(super) fn entry(&self, index: u64) -> Option<&Entry> {
        let offset = index.checked_sub(self.snapshot_index() + 1)?;
        let entry = self.entries.get(usize::try_from(offset).ok()?);
        // Lookups are by offset: a gap in `entries` would silently answer for the wrong
        // index, and log matching would then compare unrelated entries.
        debug_assert!(entry.is_none_or(|e| e.index == index), "entry at {index}");
        entry
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
        // `slice` clamps at the end of the log; here a short answer would hand the state
        // machine fewer committed entries than the commit index claims, so insist on all.
        assert!(
            to <= self.last_index(),
            "range to {to} past the last index {}",
            self.last_index()
        );
        self.slice(from, usize::try_from(to - from + 1).unwrap_or(usize::MAX))
    }

    pub(super) fn append(&mut self, entry: Entry) {
        // Both are log-matching preconditions: a gap would shift every later index, and a
        // term going down would mean an entry older than one already before it.
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
        // The snapshot covers applied (committed) entries only: cutting into it would undo
        // committed state. The caller checks the commit index itself; this is the floor.
        assert!(
            index > self.snapshot_index(),
            "index={index} snapshot={}",
            self.snapshot_index()
        );
        let keep = usize::try_from(index - self.snapshot_index() - 1).unwrap_or(usize::MAX);
        self.entries.truncate(keep);
        // A truncated voter-set entry takes its set with it: the node falls back to the set
        // before it, which is what a log without that entry would have used all along.
        self.voter_sets.retain(|(at, _)| *at < index);
        debug_assert!(self.last_index() < index);
        debug_assert!(self.voter_sets.last().is_none_or(|(at, _)| *at < index));
    }

    /// Replaces the snapshot and drops the entries it covers. If the log holds the
    /// snapshot's last entry (same term) the suffix after it survives and `true` is
    /// returned; otherwise the whole log is discarded and `false` is returned. The voter set
    /// at the snapshot becomes the snapshot's (the bootstrap set if it has none).
    pub(super) fn install(&mut self, snapshot: Snapshot) -> bool {
        // A snapshot going backwards would resurrect compacted entries as "unknown" and move
        // the voter set at the snapshot back in time.
        assert!(
            snapshot.last_index >= self.snapshot_index(),
            "snapshot goes backwards"
        );
        // By log matching, an entry with the snapshot's (index, term) means everything up to
        // it is what the snapshot summarizes, so the suffix after it is still valid. Any
        // other entry at that index is from a different history: keep nothing.
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
        // O(n) in the kept suffix, but installs are rare (compaction or a lagging follower).
        self.invariants();
        kept
    }

    /// Whether a log ending at (`last_index`, `last_term`) is at least as up to date as
    /// this one (Raft §5.4.1).
    pub(super) fn is_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        // This comparison is what gives leader completeness: a committed entry is on a
        // majority, every vote needs a majority, so a winner's log compares >= an up-to-date
        // voter's and therefore holds the entry. It is only sound if our own last term is
        // what our log really ends with, never below the snapshot's.
        debug_assert!(self.last_term() >= self.snapshot_term());
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// After rejecting an append at `prev_index` (which is after the snapshot): the last
    /// index if the log ends before `prev_index`; otherwise the index before the first entry
    /// of the conflicting term at `prev_index`, so the leader skips a whole divergent term
    /// per round trip instead of one index. Always `< prev_index` and `>= snapshot_index`,
    /// except for a malformed append whose `prev_index` is the snapshot's own index: then
    /// the hint is that index.
    pub(super) fn conflict_hint(&self, prev_index: u64) -> u64 {
        if prev_index > self.last_index() {
            return self.last_index();
        }
        let conflict_term = self.term(prev_index);
        let mut index = prev_index.saturating_sub(1).max(self.snapshot_index());
        while index > self.snapshot_index() && self.term(index) == conflict_term {
            index -= 1;
        }
        // The leader resumes from `hint + 1`: past `prev_index` it would skip the conflict,
        // below the snapshot it would ask for entries this node can no longer compare.
        debug_assert!(
            index <= prev_index && index >= self.snapshot_index(),
            "hint {index} for prev_index {prev_index}"
        );
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
            !self.bootstrap_voters.is_empty(),
            "empty bootstrap voter set"
        );
        assert!(
            !self.snapshot_voters.is_empty(),
            "empty voter set at the snapshot"
        );
        // Single-step changes are what make any majority of one set overlap any majority of
        // the next; a two-node jump could elect two leaders in one term.
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
    // `decode_voter_set` refuses empty sets; an empty one here would be a set no majority
    // can ever be formed in.
    debug_assert!(!voters.is_empty());
    Some((entry.index, voters))
}
