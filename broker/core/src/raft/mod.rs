//! Raft consensus for Weir's cluster metadata log: deterministic and sans-IO.
//!
//! One [`Raft`] value is one node of a Raft group (KRaft-like: the group carries topics,
//! brokers, partition leaders and ISRs). It reads no clock, socket, file or OS randomness:
//! time arrives as `now_ms`, randomness comes from a SplitMix64 stream seeded by the
//! constructor, and every effect leaves as a value in a [`Ready`].
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
//!   may lead. A node whose id is not in `voters` is a learner itself: it never campaigns
//!   or votes, and it follows whichever leader sends it `Append`/`InstallSnapshot`.
//! - [`Raft::propose`] refuses with [`ProposeError::NotLeader`] on non-leaders and with
//!   [`ProposeError::Throttled`] once `max_uncommitted_entries` entries await commit.
//!
//! # Protocol
//! Raft (Ongaro & Ousterhout) with pre-vote, check-quorum and leader stickiness (etcd's
//! flavour): a node only increments its term after a majority pre-granted the election; a
//! node that heard from a leader within `election_timeout_min_ms` refuses (pre-)votes; a
//! leader that has not heard from a majority of voters within `election_timeout_min_ms`
//! steps down. Entries are committed only by counting replicas of an entry of the current
//! term (§5.4.2). Followers lagging behind the leader's snapshot get `InstallSnapshot`.
//!
//! # Invariants (asserted by [`Raft::invariants`])
//! - `snapshot_index <= applied_index <= commit_index <= last_index`; log entries are
//!   contiguous after the snapshot and their terms never decrease nor exceed `term`.
//! - Committed entries are never truncated (asserted at the truncation site).
//! - A leader voted for itself in its term, and its last entry is of its term.
//! - Learners are always followers.
//!
//! # Bounds
//! One `Append` carries at most `max_append_entries` entries; a leader keeps at most
//! [`APPENDS_IN_FLIGHT_MAX`] full batches unacknowledged per peer; the leader refuses
//! proposals past `max_uncommitted_entries`; messages per Ready are at most a constant
//! number per peer per input; committed entries per Ready are bounded by the in-memory log,
//! which [`Raft::compact`] trims.

mod log;
mod node;
mod rng;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

pub use node::Raft;

/// Identifies a node of the group (Kafka's `node.id`).
pub type NodeId = i32;

/// Unacknowledged full `Append` batches a leader pipelines to one peer.
pub const APPENDS_IN_FLIGHT_MAX: u64 = 4;

/// Static configuration of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftConfig {
    /// This node's id.
    pub id: NodeId,
    /// The voting members (fixed; membership changes are not supported). May omit `id`, in
    /// which case this node is a learner.
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
}

impl RaftConfig {
    /// The defaults: election timeout 1000..2000 ms, heartbeat 150 ms, 256 entries per
    /// append, 4096 uncommitted entries.
    pub fn new(id: NodeId, voters: BTreeSet<NodeId>) -> RaftConfig {
        RaftConfig {
            id,
            voters,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            heartbeat_interval_ms: 150,
            max_append_entries: 256,
            max_uncommitted_entries: 4096,
        }
    }

    /// Whether this node votes (otherwise it is a learner).
    pub fn is_voter(&self) -> bool {
        self.voters.contains(&self.id)
    }

    /// Votes (or acknowledgements) needed for a majority of voters.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    fn validate(&self) -> Result<(), RaftError> {
        let reason = if self.voters.is_empty() {
            "voters is empty"
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

/// One log entry. Empty `data` is a leader no-op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Term of the leader that created the entry.
    pub term: u64,
    /// Position in the log, from 1.
    pub index: u64,
    /// The command, opaque to Raft.
    pub data: Vec<u8>,
}

/// A state machine image covering the log through `last_index`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Last log index the image includes.
    pub last_index: u64,
    /// Term of the entry at `last_index`.
    pub last_term: u64,
    /// The image, opaque to Raft.
    pub data: Vec<u8>,
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
    /// Newly committed entries, in index order, to apply after `snapshot`.
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
}

/// The role a node currently plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader (or waits for one); learners are always followers.
    Follower,
    /// Asking for pre-votes without having incremented its term.
    PreCandidate,
    /// Asking for votes in a new term.
    Candidate,
    /// Replicating its log.
    Leader,
}
