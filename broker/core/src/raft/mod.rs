//! Raft consensus for Weir's cluster metadata log: deterministic and sans-IO.
//!
//! One [`Raft`] value is one node of a Raft group (KRaft-like: the group carries topics,
//! brokers, partition leaders and ISRs). It reads no clock, socket, file or OS randomness:
//! time arrives as `now_ms`, randomness from a fork of the node's [`crate::rng::Rng`]
//! seeded by the constructor, and every effect leaves as a value in a [`Ready`].
//!
//! # Contract for callers
//! - Feed inputs: [`Raft::step`] for every message from a peer, [`Raft::tick`] whenever
//!   `now_ms >= `[`Raft::next_deadline_ms`], [`Raft::propose`] to append a command on the
//!   leader, [`Raft::compact`] after the state machine has applied a prefix.
//! - After inputs, drain [`Raft::ready`] (it drains everything; [`Raft::has_ready`] says
//!   whether there is anything) and process the [`Ready`] **in this order**:
//!   1. apply every [`Write`] of `writes`, in order, to durable storage and fsync them;
//!   2. only then send `messages` (best effort: they may be lost, duplicated, reordered);
//!   3. install `snapshot` (if any) into the state machine, then apply `committed` in order.
//!
//!   A crash in between is fine as long as a Ready's messages never leave before its writes
//!   are durable. Because of that ordering the leader counts its own log as persisted when it
//!   counts replicas: its `Append`s leave only after its own writes are durable.
//! - At startup pass what storage holds as [`Persisted`]; the state machine starts empty and
//!   the first Ready carries the persisted snapshot (if any) to install. Entries after the
//!   snapshot are re-delivered through `committed` once the commit index is learned again.
//! - Entries with empty `data` are leader no-ops (each new leader appends one); the state
//!   machine must skip them. [`Raft::propose`] accepts empty data, which is also a no-op.
//! - Learners are local configuration ([`Raft::add_learner`]); call it on every node that
//!   may lead. A node outside its voter set ([`Raft::voters`]) is a learner itself: it never
//!   campaigns, and it follows whichever leader sends it `Append`/`InstallSnapshot`. It does
//!   answer (pre-)vote requests (see "Membership"); only candidates that count it as a voter
//!   ask, and only they count the answer.
//! - [`Raft::propose`] refuses with [`ProposeError::NotLeader`] on non-leaders and with
//!   [`ProposeError::Throttled`] once `max_uncommitted_entries` entries await commit.
//! - The voter set is dynamic: [`Raft::propose_add_voter`] and [`Raft::propose_remove_voter`]
//!   append a voter-set entry (see "Membership" below). [`Raft::voters`] is the set in use,
//!   [`Raft::committed_voters`] the set as of the commit index. `RaftConfig::voters` is only
//!   the *bootstrap* set, in force until the log or a snapshot says otherwise: every node of
//!   a group, including one that joins later, must be started with the same bootstrap set.
//! - `committed` carries voter-set entries like any other entry, so indexes stay contiguous
//!   and `applied_index` covers them. Tell them apart with [`Entry::kind`]: the state machine
//!   applies [`EntryKind::Command`] and skips [`EntryKind::Noop`] and
//!   [`EntryKind::VoterSet`] (whose set [`Entry::voter_set`] decodes, for callers that report
//!   the committed quorum). Voter-set entries are recognized by [`VOTER_SET_PREFIX`], a
//!   reserved start of `data` that commands must not use (no postcard encoding of an enum
//!   with fewer than 128 variants starts with `0xFF`).
//!
//! # Protocol
//! Raft (Ongaro & Ousterhout) with pre-vote, check-quorum and leader stickiness (etcd's
//! flavour): a node only increments its term after a majority pre-granted the election; a
//! node that heard from a leader within `election_timeout_min_ms` refuses (pre-)votes; a
//! leader that has not heard from a majority of voters within `election_timeout_min_ms`
//! steps down. Entries are committed only by counting replicas of an entry of the current
//! term (§5.4.2). Followers lagging behind the leader's snapshot get `InstallSnapshot`.
//!
//! # Safety properties, and where each is kept
//! - *One leader per term*: each node persists at most one vote per term before answering,
//!   and a candidate needs a majority of the voter set in its own log (`node.rs`).
//! - *Log matching*: two logs that agree on the (index, term) of an entry agree on every
//!   entry before it. Appends are accepted only on a matching predecessor, and a
//!   conflicting suffix is cut before anything new is written (`node.rs`, `log.rs`).
//! - *Leader completeness*: votes go only to candidates whose log is at least as up to date,
//!   so every committed entry is in every later leader's log; leaders only append.
//! - *Commit rule*: a leader commits by counting replicas only for an entry of its current
//!   term; older entries commit beneath it. Commit never decreases, never passes the last
//!   index, and committed entries are never truncated nor compacted before being applied.
//! - *State machine safety*: every node hands the same entries to its state machine in the
//!   same order, as a snapshot followed by a gapless run of committed entries.
//!
//! Assertions in this module state those properties about a node's *own* state. Anything a
//! peer or the disk can send is validated and refused with a return value first, so no
//! message, however stale or malformed, can trip an assertion.
//!
//! # Membership
//! Single-server changes (Ongaro's dissertation §4.1–4.2, Kafka's KIP-853): an entry carries
//! the whole new voter set, which differs from the previous one by exactly one node, so any
//! majority of the old set overlaps any majority of the new one and no two leaders can be
//! elected in one term by the two sets.
//! - A node uses the newest voter set in its log, committed or not, from the moment the entry
//!   is appended (to vote, campaign, count votes, commit and check the quorum); if the entry
//!   is truncated it falls back to the previous set. A snapshot stores the set in force at
//!   its `last_index` ([`Snapshot::voters`]).
//! - The leader proposes a change only when no other change is uncommitted, and only after it
//!   committed an entry of its own term (its no-op). Without the latter, two leaders of
//!   different terms could each append a change to the same (even-sized) set, and the two
//!   new sets can have disjoint majorities: the earlier, uncommitted change could then elect
//!   a leader lacking what the later one committed (the single-server bug; the dissertation
//!   fixes it this way, and `new_leader_changes_voters_only_after_committing_in_its_term` in
//!   `tests/it/raft.rs` replays it).
//! - An added node must be a learner the leader replicates to whose match index is within
//!   `learner_lag_entries_max` of the leader's last index; it counts toward majorities as
//!   soon as the entry is in the leader's log. A removed node becomes a learner: it no longer
//!   campaigns, its vote counts only for candidates whose log does not hold its removal yet,
//!   and every node keeps replicating to it (when leading) until the caller calls
//!   [`Raft::remove_learner`].
//! - A node answers (pre-)votes even outside its own voter set: a candidate's log may hold
//!   the entry that added this node while this log does not, and if that candidate is the
//!   only one up to date, refusing would deadlock the group for good. Election safety does
//!   not depend on it: every node still votes at most once per term, and each candidate
//!   counts only the voters of its own set, which overlaps by majority with any set one
//!   change away.
//! - A leader that removes itself keeps leading (without counting itself in majorities) until
//!   the removal commits, then broadcasts the commit and steps down.
//! - A node whose newest voter-set entry removed it, above its commit index, still campaigns
//!   (among the new set, without counting itself; [`Raft::may_campaign`]): if the leader
//!   that removed itself lost leadership before the rest of the new set got the entry, its
//!   log is the only up-to-date one, and the new set can commit the removal only by electing
//!   it. This is read from the log, not from the set at the commit index, which after a
//!   restart lags and may not contain the node at all.
//! - Requests are handled whatever the sender's membership (as the dissertation says):
//!   a follower may lag behind the entry that made its leader a voter, and a removed leader
//!   leads until its removal commits. Safety rests on terms and votes, not on the sender.
//!
//! # Encoding compatibility
//! [`Entry`] is unchanged: voter sets travel in `data` behind [`VOTER_SET_PREFIX`]
//! ([`encode_voter_set`]). [`Snapshot::voters`] is appended as the last field and is an
//! `Option`: a snapshot encoded before membership changes existed decodes with `None`,
//! which means the bootstrap set (the only set such a log can have used). For postcard,
//! which cannot tell the end of a struct from a truncated one, the decoder treats a failure
//! to read this trailing field as its absence, so the `Snapshot` must end its buffer (it
//! does where Weir stores it and in [`RaftMessage::InstallSnapshot`]); an older decoder
//! reading a new snapshot ignores the trailing bytes.
//!
//! # Invariants (asserted by [`Raft::invariants`])
//! - `snapshot_index <= applied_index <= commit_index <= last_index`; log entries are
//!   contiguous after the snapshot and their terms never decrease nor exceed `term`.
//! - Committed entries are never truncated (asserted at the truncation site).
//! - A leader voted for itself in its term, and its last entry is of its term.
//! - A node outside its newest voter set is a follower, unless that set's entry removed it
//!   and is not known committed (then it may campaign and lead, [`Raft::may_campaign`]).
//!   The learners a node replicates to are never in its voter set.
//! - The voter set is non-empty and has at most [`VOTERS_MAX`] members; consecutive voter
//!   sets in the log differ by exactly one node.
//! - A leader holds a voter-set entry of its own term only if it committed an entry of its
//!   term first, and once it has, at most one voter-set entry is above its commit index.
//!
//! # Bounds
//! One `Append` carries at most `max_append_entries` entries; a leader keeps at most
//! [`APPENDS_IN_FLIGHT_MAX`] full batches unacknowledged per peer; the leader refuses
//! proposals past `max_uncommitted_entries`; messages per Ready are at most a constant
//! number per peer per input; committed entries per Ready are bounded by the in-memory log,
//! which [`Raft::compact`] trims; a voter set has at most [`VOTERS_MAX`] members.

mod log;
mod node;

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

pub use node::Raft;

/// Identifies a node of the group (Kafka's `node.id`).
pub type NodeId = i32;

/// Unacknowledged full `Append` batches a leader pipelines to one peer.
pub const APPENDS_IN_FLIGHT_MAX: u64 = 4;

/// Most members of a voter set (KRaft quorums have 3 or 5).
pub const VOTERS_MAX: usize = 64;

/// The start of a voter-set entry's `data`: `0xFF` (which no postcard-encoded enum with
/// fewer than 128 variants, such as Weir's metadata records, starts with), `VOTERS`, and
/// the format version. The voter ids follow as little-endian `i32`s in ascending order.
pub const VOTER_SET_PREFIX: [u8; 8] = *b"\xffVOTERS\x01";

// A command whose encoding started like a voter set would be taken for a membership change
// on every node at once. Postcard writes an enum's variant index as a varint, whose first
// byte is below 0x80 for fewer than 128 variants: the prefix must stay above that.
const _: () = assert!(VOTER_SET_PREFIX[0] >= 0x80);

/// Static configuration of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftConfig {
    /// This node's id.
    pub id: NodeId,
    /// The bootstrap voter set: in force until a snapshot or a voter-set entry in the log
    /// replaces it, and the same on every node of the group. May omit `id`, in which case
    /// this node starts as a learner.
    pub voters: BTreeSet<NodeId>,
    /// Lower bound of the randomized election timeout; also the lease of leader stickiness
    /// and the check-quorum period.
    pub election_timeout_min_ms: u64,
    /// Upper bound (exclusive) of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    /// Period of the leader's heartbeats (and retransmissions).
    pub heartbeat_interval_ms: u64,
    /// Most entries in one `Append` message.
    pub max_append_entries: usize,
    /// Most entries a leader holds uncommitted; [`Raft::propose`] refuses past it.
    pub max_uncommitted_entries: usize,
    /// Most entries a learner's log may lag behind the leader's last index for
    /// [`Raft::propose_add_voter`] to accept it as caught up.
    pub learner_lag_entries_max: u64,
}

impl RaftConfig {
    /// The defaults: election timeout 1000..2000 ms, heartbeat 150 ms, 256 entries per
    /// append, 4096 uncommitted entries, learners caught up within 256 entries.
    pub fn new(id: NodeId, voters: BTreeSet<NodeId>) -> RaftConfig {
        let config = RaftConfig {
            id,
            voters,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            heartbeat_interval_ms: 150,
            max_append_entries: 256,
            max_uncommitted_entries: 4096,
            learner_lag_entries_max: 256,
        };
        // The defaults must leave several heartbeats per minimum election timeout, or
        // followers would campaign against a healthy leader between two heartbeats.
        debug_assert!(
            config.heartbeat_interval_ms < config.election_timeout_min_ms
                && config.election_timeout_min_ms < config.election_timeout_max_ms
        );
        config
    }

    /// Whether this node votes in the bootstrap set (see [`Raft::voters`] for the set in use).
    pub fn is_voter(&self) -> bool {
        self.voters.contains(&self.id)
    }

    /// Votes (or acknowledgements) needed for a majority of the bootstrap set.
    pub fn quorum(&self) -> usize {
        quorum(&self.voters)
    }

    /// Configuration is input (from the operator): every problem is an error, never a panic.
    fn validate(&self) -> Result<(), RaftError> {
        let reason = if self.voters.is_empty() {
            "voters is empty"
        } else if self.voters.len() > VOTERS_MAX {
            "voters has more than VOTERS_MAX members"
        } else if self.election_timeout_min_ms == 0 {
            "election_timeout_min_ms is 0"
        } else if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            "election_timeout_max_ms must exceed election_timeout_min_ms"
        } else if self.heartbeat_interval_ms == 0
            || self.heartbeat_interval_ms >= self.election_timeout_min_ms
        {
            "heartbeat_interval_ms must be in 1..election_timeout_min_ms"
        } else if self.max_append_entries == 0 {
            "max_append_entries is 0"
        } else if self.max_uncommitted_entries == 0 {
            "max_uncommitted_entries is 0"
        } else {
            return Ok(());
        };
        Err(RaftError::InvalidConfig { reason })
    }
}

/// One log entry: a command, a leader no-op (empty `data`) or a voter set ([`Entry::kind`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Term of the leader that created the entry.
    pub term: u64,
    /// Position in the log, from 1.
    pub index: u64,
    /// The command, opaque to Raft; empty for a no-op; [`VOTER_SET_PREFIX`] and the voter
    /// ids for a voter set.
    pub data: Vec<u8>,
}

impl Entry {
    /// What the entry holds, so the state machine can skip what is not a command.
    pub fn kind(&self) -> EntryKind {
        kind_of(&self.data)
    }

    /// The voter set of a [`EntryKind::VoterSet`] entry; `None` for other kinds (and for a
    /// malformed set, which Raft never accepts into a log).
    pub fn voter_set(&self) -> Option<BTreeSet<NodeId>> {
        let voters = decode_voter_set(&self.data);
        // The state machine skips by `kind`, membership reads by `voter_set`: the two must
        // agree or an entry could be applied as a command and a membership change at once.
        debug_assert!(voters.is_none() || self.kind() == EntryKind::VoterSet);
        voters
    }
}

/// What an [`Entry`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A state machine command, opaque to Raft.
    Command,
    /// A new leader's empty entry; the state machine skips it.
    Noop,
    /// A new voter set (KIP-853's `VotersRecord`); the state machine skips it.
    VoterSet,
}

/// The `data` of a voter-set entry: [`VOTER_SET_PREFIX`], then the ids in ascending order
/// as little-endian `i32`s.
pub fn encode_voter_set(voters: &BTreeSet<NodeId>) -> Vec<u8> {
    let mut data = Vec::with_capacity(VOTER_SET_PREFIX.len() + 4 * voters.len());
    data.extend_from_slice(&VOTER_SET_PREFIX);
    for voter in voters {
        data.extend_from_slice(&voter.to_le_bytes());
    }
    // Every node must read back exactly the set the leader wrote: a set that decoded
    // differently on some node would give it different majorities.
    debug_assert!(
        voters.is_empty()
            || voters.len() > VOTERS_MAX
            || decode_voter_set(&data).as_ref() == Some(voters)
    );
    data
}

/// Parses [`encode_voter_set`]'s output: `None` unless the prefix is there and the ids are
/// whole, strictly ascending, at least one and at most [`VOTERS_MAX`].
fn decode_voter_set(data: &[u8]) -> Option<BTreeSet<NodeId>> {
    // The bytes come from the wire or the disk: every defect is a `None`, never a panic.
    let ids = data.strip_prefix(VOTER_SET_PREFIX.as_slice())?;
    if ids.is_empty() || !ids.len().is_multiple_of(4) || ids.len() / 4 > VOTERS_MAX {
        return None;
    }
    let mut voters = BTreeSet::new();
    for chunk in ids.chunks_exact(4) {
        let id = NodeId::from_le_bytes(chunk.try_into().expect("chunks_exact yields 4 bytes"));
        // Strictly ascending makes the encoding canonical: one set, one byte string.
        if voters.last().is_some_and(|last| *last >= id) {
            return None;
        }
        voters.insert(id);
    }
    debug_assert!(!voters.is_empty() && voters.len() <= VOTERS_MAX);
    Some(voters)
}

/// What an entry with `data` holds.
///
/// Only the prefix decides: a voter-set entry with malformed ids is still of kind
/// `VoterSet`, so it can never be mistaken for a command (and is refused before any log).
fn kind_of(data: &[u8]) -> EntryKind {
    if data.is_empty() {
        EntryKind::Noop
    } else if data.starts_with(&VOTER_SET_PREFIX) {
        EntryKind::VoterSet
    } else {
        EntryKind::Command
    }
}

/// Votes (or acknowledgements) needed for a majority of `voters`.
fn quorum(voters: &BTreeSet<NodeId>) -> usize {
    let quorum = voters.len() / 2 + 1;
    // Two quorums of one set always share a member (2q > n): that overlap is election
    // safety and the reason a committed entry survives any later election.
    debug_assert!(2 * quorum > voters.len());
    quorum
}

/// A state machine image covering the log through `last_index`.
///
/// Serialized as its four fields in order; decodes encodings without the trailing `voters`
/// (from before membership changes) as `voters: None` (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// Last log index the image includes.
    pub last_index: u64,
    /// Term of the entry at `last_index`.
    pub last_term: u64,
    /// The image, opaque to Raft.
    pub data: Vec<u8>,
    /// The voter set in force at `last_index`; `None` (only in snapshots written before
    /// membership changes existed) means the bootstrap set, `RaftConfig::voters`. Snapshots
    /// made by [`Raft::compact`] always carry it.
    pub voters: Option<BTreeSet<NodeId>>,
}

const SNAPSHOT_FIELDS: &[&str] = &["last_index", "last_term", "data", "voters"];

impl<'de> Deserialize<'de> for Snapshot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Snapshot, D::Error> {
        deserializer.deserialize_struct("Snapshot", SNAPSHOT_FIELDS, SnapshotVisitor)
    }
}

struct SnapshotVisitor;

impl<'de> Visitor<'de> for SnapshotVisitor {
    type Value = Snapshot;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a raft snapshot")
    }

    // Decoding is input handling: errors are returned, never asserted, since a snapshot
    // arrives from the leader over the network or from a file that may be damaged.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Snapshot, A::Error> {
        let last_index = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let last_term = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let data = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(2, &self))?;
        // Old encodings end here. A self-describing format reports the end of the sequence
        // (`None`); postcard fails to read past the end of its buffer instead, and since the
        // snapshot always ends its buffer such a failure means the same.
        let voters = seq
            .next_element::<Option<BTreeSet<NodeId>>>()
            .ok()
            .flatten()
            .flatten();
        Ok(Snapshot {
            last_index,
            last_term,
            data,
            voters,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Snapshot, A::Error> {
        let (mut last_index, mut last_term, mut data, mut voters) = (None, None, None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "last_index" => last_index = Some(map.next_value()?),
                "last_term" => last_term = Some(map.next_value()?),
                "data" => data = Some(map.next_value()?),
                "voters" => voters = map.next_value()?,
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(Snapshot {
            last_index: last_index.ok_or_else(|| de::Error::missing_field("last_index"))?,
            last_term: last_term.ok_or_else(|| de::Error::missing_field("last_term"))?,
            data: data.ok_or_else(|| de::Error::missing_field("data"))?,
            voters,
        })
    }
}

/// Messages between nodes. Every message carries the sender's term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftMessage {
    /// "Would you vote for me in `term`?" — sent before incrementing the own term.
    PreVote {
        /// The term the sender would campaign in (its term + 1).
        term: u64,
        /// Index of the sender's last entry.
        last_index: u64,
        /// Term of the sender's last entry.
        last_term: u64,
    },
    /// Answer to [`RaftMessage::PreVote`].
    PreVoteResponse {
        /// The asked term if granted, else the responder's term.
        term: u64,
        /// Whether the responder would vote.
        granted: bool,
    },
    /// A vote request of a candidate.
    Vote {
        /// The candidate's term.
        term: u64,
        /// Index of the candidate's last entry.
        last_index: u64,
        /// Term of the candidate's last entry.
        last_term: u64,
    },
    /// Answer to [`RaftMessage::Vote`].
    VoteResponse {
        /// The responder's term.
        term: u64,
        /// Whether the vote was granted.
        granted: bool,
    },
    /// Log replication and heartbeat from the leader.
    Append {
        /// The leader's term.
        term: u64,
        /// Index of the entry preceding `entries`.
        prev_index: u64,
        /// Term of the entry at `prev_index`.
        prev_term: u64,
        /// Entries `prev_index + 1 ..`, possibly none.
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit: u64,
    },
    /// Answer to [`RaftMessage::Append`].
    AppendResponse {
        /// The responder's term.
        term: u64,
        /// Whether the responder's log matched at `prev_index`.
        success: bool,
        /// On success the responder's log matches the leader's through `index`; on failure
        /// the rejected `prev_index`.
        index: u64,
        /// On failure, where the leader should probe next: the responder's last index if its
        /// log is shorter, else the index before its conflicting term (0 on success).
        hint: u64,
    },
    /// The leader's snapshot, for a follower that needs compacted entries.
    InstallSnapshot {
        /// The leader's term.
        term: u64,
        /// The snapshot.
        snapshot: Snapshot,
    },
    /// Answer to [`RaftMessage::InstallSnapshot`].
    InstallSnapshotResponse {
        /// The responder's term.
        term: u64,
        /// The responder's log matches the leader's through this index.
        match_index: u64,
    },
}

impl RaftMessage {
    /// The term the message carries.
    pub fn term(&self) -> u64 {
        match self {
            RaftMessage::PreVote { term, .. }
            | RaftMessage::PreVoteResponse { term, .. }
            | RaftMessage::Vote { term, .. }
            | RaftMessage::VoteResponse { term, .. }
            | RaftMessage::Append { term, .. }
            | RaftMessage::AppendResponse { term, .. }
            | RaftMessage::InstallSnapshot { term, .. }
            | RaftMessage::InstallSnapshotResponse { term, .. } => *term,
        }
    }
}

/// What durable storage held at startup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Persisted {
    /// The last written term.
    pub term: u64,
    /// The vote cast in `term`, if any.
    pub voted_for: Option<NodeId>,
    /// The last stored snapshot.
    pub snapshot: Option<Snapshot>,
    /// Entries after the snapshot, contiguous (entries at or below the snapshot's
    /// `last_index` are tolerated and skipped).
    pub entries: Vec<Entry>,
}

/// One durable storage mutation; apply in order, then fsync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Replace the term and vote.
    HardState {
        /// The current term.
        term: u64,
        /// The vote cast in `term`.
        voted_for: Option<NodeId>,
    },
    /// Remove every entry with an index >= `index`.
    TruncateFrom {
        /// First index removed.
        index: u64,
    },
    /// Append entries (contiguous with the stored log).
    Append(Vec<Entry>),
    /// Store the snapshot (replacing the previous one) and drop entries <= its `last_index`.
    Snapshot(Snapshot),
}

/// Everything a node wants done, drained by [`Raft::ready`]. See the module docs for the
/// order in which a caller must process it.
#[derive(Debug, Default)]
pub struct Ready {
    /// Storage mutations, to apply in order and fsync before anything else.
    pub writes: Vec<Write>,
    /// Messages to send after `writes` are durable: (destination, message).
    pub messages: Vec<(NodeId, RaftMessage)>,
    /// Newly committed entries, in index order, to apply after `snapshot`; voter-set entries
    /// included ([`Entry::kind`] tells them apart).
    pub committed: Vec<Entry>,
    /// A snapshot to install into the state machine before applying `committed`.
    pub snapshot: Option<Snapshot>,
}

impl Ready {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
            && self.messages.is_empty()
            && self.committed.is_empty()
            && self.snapshot.is_none()
    }
}

/// This node is not the leader; `leader` is the leader it knows of, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not the leader (known leader: {leader:?})")]
pub struct NotLeader {
    /// The current leader as far as this node knows.
    pub leader: Option<NodeId>,
}

/// Why [`Raft::propose`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// Only the leader accepts proposals.
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    /// `max_uncommitted_entries` entries await commit; retry after some commit.
    #[error("{uncommitted_count} uncommitted entries: at the limit, retry later")]
    Throttled {
        /// Entries appended but not yet committed.
        uncommitted_count: u64,
    },
}

/// Why [`Raft::propose_add_voter`] or [`Raft::propose_remove_voter`] refused. Each variant
/// names the KIP-853 error code an `AddRaftVoter`/`RemoveRaftVoter` answer would carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChangeVotersError {
    /// Only the leader changes the voter set (`NOT_LEADER_OR_FOLLOWER`).
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    /// The leader has not committed an entry of its term yet; retry shortly
    /// (`REQUEST_TIMED_OUT`).
    #[error("the leader has not committed an entry of term {term} yet, retry later")]
    LeaderNotReady {
        /// The leader's term.
        term: u64,
    },
    /// Another change, at `index`, is not committed yet; one at a time (`REQUEST_TIMED_OUT`).
    #[error("the voter-set change at index {index} is not committed yet, retry later")]
    ChangeInProgress {
        /// Index of the uncommitted voter-set entry.
        index: u64,
    },
    /// `max_uncommitted_entries` entries await commit (`REQUEST_TIMED_OUT`).
    #[error("{uncommitted_count} uncommitted entries: at the limit, retry later")]
    Throttled {
        /// Entries appended but not yet committed.
        uncommitted_count: u64,
    },
    /// The node already votes (`DUPLICATE_VOTER`).
    #[error("node {id} is already a voter")]
    AlreadyVoter {
        /// The node.
        id: NodeId,
    },
    /// The node is not a learner this leader replicates to; [`Raft::add_learner`] it first
    /// (`INVALID_REQUEST`).
    #[error("node {id} is not a learner of this leader")]
    UnknownLearner {
        /// The node.
        id: NodeId,
    },
    /// The learner lags more than `learner_lag_entries_max` entries behind; retry once it
    /// caught up (`REQUEST_TIMED_OUT`).
    #[error("learner {id} matches through {match_index}, the leader's log ends at {last_index}")]
    LearnerLagging {
        /// The learner.
        id: NodeId,
        /// The learner's log matches the leader's through this index.
        match_index: u64,
        /// The leader's last index.
        last_index: u64,
    },
    /// The voter set already has [`VOTERS_MAX`] members (`INVALID_REQUEST`).
    #[error("the voter set is at its limit of {VOTERS_MAX} members")]
    TooManyVoters,
    /// The node is not a voter (`VOTER_NOT_FOUND`).
    #[error("node {id} is not a voter")]
    NotVoter {
        /// The node.
        id: NodeId,
    },
    /// Removing the only voter would leave nobody to commit (`INVALID_REQUEST`).
    #[error("node {id} is the last voter")]
    LastVoter {
        /// The node.
        id: NodeId,
    },
}

/// Why a node could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaftError {
    /// The configuration is unusable.
    #[error("invalid raft config: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: &'static str,
    },
    /// Persisted entries are not contiguous after the snapshot.
    #[error("persisted log has a gap: expected index {expected}, found {found}")]
    LogGap {
        /// The index that should come next.
        expected: u64,
        /// The index found instead.
        found: u64,
    },
    /// Persisted entry terms decrease, or exceed the persisted term.
    #[error("persisted entry {index} has term {term}, outside {min_term}..={max_term}")]
    TermOutOfOrder {
        /// The offending entry's index.
        index: u64,
        /// Its term.
        term: u64,
        /// Lowest acceptable term (the previous entry's or the snapshot's).
        min_term: u64,
        /// Highest acceptable term (the persisted hard state's).
        max_term: u64,
    },
    /// A persisted voter-set entry or snapshot voter set is malformed or empty.
    #[error("persisted voter set at index {index} is malformed")]
    BadVoterSet {
        /// Index of the entry (or the snapshot's last index).
        index: u64,
    },
}

/// The role a node currently plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader (or waits for one); learners are followers (a node whose removal
    /// is not committed yet may still campaign and lead).
    Follower,
    /// Asking for pre-votes without having incremented its term.
    PreCandidate,
    /// Asking for votes in a new term.
    Candidate,
    /// Replicating its log.
    Leader,
}
