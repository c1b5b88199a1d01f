//! The Raft node: roles, elections, replication and commitment.
//!
//! # The safety argument, as this file implements it
//! - **Election safety** (at most one leader per term): a node votes at most once per term
//!   (`voted_for` is written with the term, persisted before the vote leaves, and only reset
//!   when the term grows), and a candidate needs a majority of the voter set in its own log.
//!   Two majorities of one set share a voter; two sets one change apart also share one, so
//!   two candidates of one term cannot both win even while a change is in flight. Pre-vote
//!   never touches the term or the vote, so it cannot break this.
//! - **Log matching**: an append is accepted only if the entry before it has the term the
//!   leader says; a mismatch is answered with a hint and nothing is written. A conflicting
//!   suffix is truncated before the new entries go in, and entries that already match are
//!   skipped, so a stale or duplicated append can never cut off newer entries.
//! - **Leader completeness**: a vote goes only to a candidate whose log is at least as up to
//!   date, by (last term, last index). A committed entry sits on a majority, so every winner
//!   holds it, and a leader never truncates its own log: it only appends in its term.
//! - **Commit rule**: the leader moves the commit index only to an index that a majority of
//!   its voter set stores *and* whose entry is of the current term (Raft §5.4.2); earlier
//!   terms' entries commit indirectly beneath it. That is why a new leader appends a no-op.
//!   A follower takes the leader's commit index, capped at the last entry the append proved
//!   to match. The commit index never decreases and never passes the last index; entries at
//!   or below it are never truncated (asserted where truncation happens).
//! - **Membership**: single-step changes (one node added or removed per voter-set entry),
//!   in force as soon as the entry is in a log; see the module docs of [`super`] for why the
//!   leader first commits an entry of its own term and keeps one change in flight at a time.
//!
//! Messages from peers are input: they may be stale, duplicated, reordered or malformed.
//! They are checked and answered (or dropped) with plain returns. The `assert!`s in this
//! file are about this node's own state and hold whatever a peer sends; each one marks a
//! place where a bug would silently break one of the properties above.
//!
//! # Invariants beyond those in the module docs of [`super`]
//! - `progress` is non-empty only on a leader and then has one entry per peer (voters other
//!   than this node, plus learners); for each, `match_index < next_index <= last_index + 1`.
//! - A hard-state change (term or vote) is queued as a [`Write::HardState`] before any
//!   message that depends on it, so the caller persists it before the message leaves.
//! - The voter set changes only through the log (append, truncation, snapshot install), and
//!   every such change goes through [`Raft::on_voters_changed`], which moves nodes leaving
//!   the set to `learners` and nodes joining it out of them.

use std::collections::{BTreeMap, BTreeSet};

use super::log::RaftLog;
use super::{
    decode_voter_set, encode_voter_set, kind_of, quorum, ChangeVotersError, Entry, EntryKind,
    NodeId, NotLeader, Persisted, ProposeError, RaftConfig, RaftError, RaftMessage, Ready, Role,
    Snapshot, Write, APPENDS_IN_FLIGHT_MAX, VOTERS_MAX,
};
use crate::rng::{Rng, GOLDEN_GAMMA, SALT_RAFT};

/// A leader's view of one peer's log.
#[derive(Debug, Clone)]
struct Progress {
    /// Highest index known to match the leader's log.
    match_index: u64,
    /// Next index to send.
    next_index: u64,
    /// Unsure where the logs diverge: send one batch per round trip or heartbeat, and no
    /// pipelining, until an append succeeds.
    probing: bool,
    /// Heard from the peer since the last check-quorum round.
    recent_active: bool,
    /// `match_index` at the previous heartbeat: if it has not moved since, the heartbeat
    /// retransmits from `match_index + 1` (messages may have been lost).
    match_index_at_heartbeat: u64,
    /// A snapshot in flight: its `last_index` and when to resend it.
    snapshot_sent: Option<(u64, u64)>,
}

/// One node of a Raft group. See the module docs of [`super`] for the caller's contract.
#[derive(Debug)]
pub struct Raft {
    config: RaftConfig,
    /// Nodes replicated to without a vote: never in the voter set, never this node.
    learners: BTreeSet<NodeId>,
    rng: Rng,
    /// Latest time seen by `new`, `tick` or `step` (never decreases).
    now_ms: u64,
    /// The current term: persisted before any message of it leaves, never decreases.
    term: u64,
    /// The vote cast in `term`. Persisted with `term` and reset only when `term` grows, which
    /// is what makes "one vote per term" survive a restart.
    voted_for: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    /// When the current leader was last heard from (leader stickiness).
    leader_contact_ms: u64,
    log: RaftLog,
    /// Highest index known committed. Never decreases, never passes `log.last_index()`,
    /// and the log is never truncated at or below it.
    commit_index: u64,
    /// Highest index handed to the caller, through `committed` or a snapshot.
    applied_index: u64,
    /// (Pre-)votes received in the current (pre-)election, by voter.
    votes: BTreeMap<NodeId, bool>,
    /// A leader's view of its peers; empty on every other role, so no stale acknowledgement
    /// from an earlier leadership can count towards a later commit.
    progress: BTreeMap<NodeId, Progress>,
    election_deadline_ms: u64,
    heartbeat_deadline_ms: u64,
    check_quorum_deadline_ms: u64,
    /// New entries await pipelining to peers (batched in `ready`).
    replicate_pending: bool,
    /// The commit index moved and peers should hear about it (batched in `ready`).
    commit_broadcast_pending: bool,
    ready: Ready,
}

impl Raft {
    /// Builds a node from its configuration and what its storage holds. It starts as a
    /// follower; a single-voter group campaigns at its first [`Raft::tick`].
    pub fn new(
        config: RaftConfig,
        persisted: Persisted,
        seed: u64,
        now_ms: u64,
    ) -> Result<Raft, RaftError> {
        config.validate()?;
        // Storage is input too (a torn or foreign file): refuse it with an error here, so
        // that everything below may assert on the log's shape.
        let log = validated_log(&persisted, &config.voters)?;
        // Salted by the id too, so nodes handed the same seed still draw different timeouts.
        let rng =
            Rng::new(seed).fork(SALT_RAFT ^ u64::from(config.id as u32).wrapping_mul(GOLDEN_GAMMA));
        let snapshot_index = log.snapshot_index();
        // Every node that was a voter in what the log knows keeps being replicated to.
        let learners = log
            .known_voters()
            .difference(log.voters())
            .copied()
            .filter(|id| *id != config.id)
            .collect();
        let mut raft = Raft {
            learners,
            rng,
            now_ms,
            term: persisted.term,
            voted_for: persisted.voted_for,
            role: Role::Follower,
            leader: None,
            leader_contact_ms: 0,
            log,
            commit_index: snapshot_index,
            applied_index: snapshot_index,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            election_deadline_ms: 0,
            heartbeat_deadline_ms: u64::MAX,
            check_quorum_deadline_ms: u64::MAX,
            replicate_pending: false,
            commit_broadcast_pending: false,
            ready: Ready {
                snapshot: persisted.snapshot,
                ..Ready::default()
            },
            config,
        };
        if raft.log.voters().len() == 1 && raft.is_voter() {
            // Nobody to wait for: campaign at the first tick.
            raft.election_deadline_ms = now_ms;
        } else {
            raft.reset_election_timer();
        }
        // `validated_log` refused entries beyond the persisted term: a node whose log ends in
        // a later term than its own could grant votes and accept appends from a term it has
        // already seen overtaken.
        assert!(raft.log.last_term() <= raft.term);
        if cfg!(debug_assertions) {
            // O(log length), once per start: storage was validated, so this must hold.
            raft.invariants();
        }
        Ok(raft)
    }

    /// Advances timers: elections on followers and candidates, heartbeats and check-quorum
    /// on the leader. Call it whenever `now_ms >= next_deadline_ms()`.
    pub fn tick(&mut self, now_ms: u64) {
        let (term_before, commit_before) = (self.term, self.commit_index);
        self.tick_inner(now_ms);
        // Timers may start elections (term + 1) or step a leader down, never go back.
        assert!(
            self.term >= term_before,
            "term went back from {term_before}"
        );
        assert!(
            self.commit_index >= commit_before,
            "commit went back from {commit_before}"
        );
    }

    fn tick_inner(&mut self, now_ms: u64) {
        self.advance_clock(now_ms);
        if self.role == Role::Leader {
            if self.now_ms >= self.check_quorum_deadline_ms {
                // Check-quorum: a leader cut off from a majority steps down within one
                // minimum election timeout. Without it, leader stickiness would let a
                // partitioned leader's lease keep followers from electing anyone else.
                if !self.quorum_active() {
                    tracing::info!(id = self.config.id, term = self.term, "leader lost quorum");
                    self.become_follower(self.term, None);
                    return;
                }
                for progress in self.progress.values_mut() {
                    progress.recent_active = false;
                }
                self.check_quorum_deadline_ms = self.now_ms + self.config.election_timeout_min_ms;
            }
            if self.now_ms >= self.heartbeat_deadline_ms {
                self.heartbeat_deadline_ms = self.now_ms + self.config.heartbeat_interval_ms;
                for peer in self.peers() {
                    self.send_heartbeat(peer);
                }
            }
        } else if self.may_campaign() && self.now_ms >= self.election_deadline_ms {
            self.start_pre_vote();
        }
    }

    /// When [`Raft::tick`] must be called next (`u64::MAX`: never, for an idle learner).
    pub fn next_deadline_ms(&self) -> u64 {
        // A leader that is never ticked neither heartbeats nor checks its quorum: it would
        // hold on to leadership (and block elections via stickiness) while partitioned.
        debug_assert!(
            self.role != Role::Leader
                || (self.heartbeat_deadline_ms != u64::MAX
                    && self.check_quorum_deadline_ms != u64::MAX)
        );
        match self.role {
            Role::Leader => self
                .heartbeat_deadline_ms
                .min(self.check_quorum_deadline_ms),
            _ if self.may_campaign() => self.election_deadline_ms,
            _ => u64::MAX,
        }
    }

    /// Handles one message from `from`. Stale, duplicated or malformed messages are
    /// ignored or answered per Raft; no input panics. Requests are handled whatever `from`'s
    /// membership in this node's voter set: this log may lag behind the entry that made the
    /// sender a voter, and a removed leader leads until its removal commits. Only voters
    /// campaign, and votes and acknowledgements count only from voters; a learner answers
    /// (pre-)votes, since the candidate may know it as a voter before this log does.
    pub fn step(&mut self, now_ms: u64, from: NodeId, message: RaftMessage) {
        let term_before = self.term;
        let vote_before = self.voted_for;
        let commit_before = self.commit_index;
        let applied_before = self.applied_index;
        let snapshot_before = self.log.snapshot_index();
        self.step_inner(now_ms, from, message);
        // Whatever the message said, these only move forward. They are the properties a
        // peer must never be able to make us break, so they are checked on every input.
        assert!(
            self.term >= term_before,
            "term went back from {term_before}"
        );
        // At most one vote per term: within a term the vote can only go from none to some.
        if self.term == term_before && vote_before.is_some() {
            assert_eq!(
                self.voted_for, vote_before,
                "second vote in term {}",
                self.term
            );
        }
        assert!(
            self.commit_index >= commit_before,
            "commit went back from {commit_before}"
        );
        assert!(
            self.applied_index >= applied_before,
            "applied went back from {applied_before}"
        );
        assert!(self.log.snapshot_index() >= snapshot_before);
        // Committed entries survive every message: the log still reaches the old commit.
        assert!(
            self.log.last_index() >= commit_before,
            "log cut below the commit index {commit_before}"
        );
    }

    fn step_inner(&mut self, now_ms: u64, from: NodeId, message: RaftMessage) {
        self.advance_clock(now_ms);
        if from == self.config.id {
            return;
        }
        let message_term = message.term();
        // The term is the only clock Raft trusts. A higher term deposes us (we persist it
        // before answering, see `become_follower`), a lower one marks the sender as stale
        // and is answered with our term so it catches up. Only two higher-term messages
        // are exempt: pre-votes (about a term nobody is in yet) and vote requests while
        // our leader is alive (a rejoining node must not depose a healthy leader).
        if message_term > self.term {
            match &message {
                // Pre-votes concern a future term and must not disturb ours.
                RaftMessage::PreVote { .. }
                | RaftMessage::PreVoteResponse { granted: true, .. } => {}
                // Leader stickiness: a live leader makes us ignore disruptive candidates.
                RaftMessage::Vote { .. } if self.in_lease() => return,
                RaftMessage::Append { .. } | RaftMessage::InstallSnapshot { .. } => {
                    self.become_follower(message_term, Some(from));
                }
                _ => self.become_follower(message_term, None),
            }
        } else if message_term < self.term {
            self.answer_stale(from, &message);
            return;
        }
        match message {
            RaftMessage::PreVote {
                term,
                last_index,
                last_term,
            } => {
                self.handle_pre_vote(from, term, last_index, last_term);
            }
            RaftMessage::PreVoteResponse { term, granted } => {
                self.handle_pre_vote_response(from, term, granted);
            }
            RaftMessage::Vote {
                last_index,
                last_term,
                ..
            } => {
                self.handle_vote(from, last_index, last_term);
            }
            RaftMessage::VoteResponse { granted, .. } => self.handle_vote_response(from, granted),
            RaftMessage::Append {
                prev_index,
                prev_term,
                entries,
                commit,
                ..
            } => {
                self.handle_append(from, prev_index, prev_term, entries, commit);
            }
            RaftMessage::AppendResponse {
                success,
                index,
                hint,
                ..
            } => {
                self.handle_append_response(from, success, index, hint);
            }
            RaftMessage::InstallSnapshot { snapshot, .. } => {
                self.handle_install_snapshot(from, snapshot);
            }
            RaftMessage::InstallSnapshotResponse { match_index, .. } => {
                self.handle_install_snapshot_response(from, match_index);
            }
        }
    }

    /// Appends `data` to the leader's log and returns its index. The entry is committed
    /// once a later [`Ready::committed`] carries it.
    ///
    /// # Panics
    /// If `data` starts with [`super::VOTER_SET_PREFIX`], which is reserved for voter sets
    /// (a bug of the caller's encoding).
    pub fn propose(&mut self, data: Vec<u8>) -> Result<u64, ProposeError> {
        assert_ne!(
            kind_of(&data),
            EntryKind::VoterSet,
            "proposed data starts with the reserved voter-set prefix"
        );
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            }
            .into());
        }
        // Bounds memory on a leader that cannot reach a majority: without it every
        // proposal would pile up in the log until the process runs out of memory.
        let uncommitted_count = self.log.last_index() - self.commit_index;
        if uncommitted_count >= self.config.max_uncommitted_entries as u64 {
            return Err(ProposeError::Throttled { uncommitted_count });
        }
        let index = self.append_own(data);
        self.replicate_pending = true;
        self.maybe_commit();
        // A single-voter leader may commit at once, but only what it just appended.
        debug_assert!(index <= self.log.last_index() && self.commit_index <= index);
        Ok(index)
    }

    /// Proposes adding learner `id` to the voter set and returns the index of the voter-set
    /// entry. The leader counts `id` toward majorities from now on; the change is in force
    /// on every node once the entry is in its log, and final once committed.
    ///
    /// Refused unless this node leads, has committed an entry of its term, has no other
    /// voter-set change uncommitted, and replicates to `id` as a learner whose log is within
    /// `learner_lag_entries_max` entries of its own.
    pub fn propose_add_voter(&mut self, id: NodeId) -> Result<u64, ChangeVotersError> {
        self.check_voters_change()?;
        if self.log.voters().contains(&id) {
            return Err(ChangeVotersError::AlreadyVoter { id });
        }
        // The new voter counts toward majorities as soon as the entry is appended: adding
        // an empty log would stall commitment (or, in a small set, block it) until it has
        // caught up, so only a learner that is nearly there may join.
        let last_index = self.log.last_index();
        let match_index = match self.progress.get(&id) {
            Some(progress) if self.learners.contains(&id) => progress.match_index,
            _ => return Err(ChangeVotersError::UnknownLearner { id }),
        };
        if last_index - match_index > self.config.learner_lag_entries_max {
            return Err(ChangeVotersError::LearnerLagging {
                id,
                match_index,
                last_index,
            });
        }
        if self.log.voters().len() >= VOTERS_MAX {
            return Err(ChangeVotersError::TooManyVoters);
        }
        // Learners never include this node, so a leader cannot "add" itself, which would
        // make the set change zero nodes and break the single-step argument.
        assert_ne!(id, self.config.id, "a leader is never its own learner");
        let mut voters = self.log.voters().clone();
        voters.insert(id);
        Ok(self.append_voter_set(&voters))
    }

    /// Proposes removing voter `id` (possibly this leader) and returns the index of the
    /// voter-set entry. `id` stops counting toward majorities at once and becomes a learner
    /// on every node that has the entry; a leader removing itself leads until the entry
    /// commits, then steps down.
    ///
    /// Refused unless this node leads, has committed an entry of its term and has no other
    /// voter-set change uncommitted, and if `id` is not a voter or is the last one.
    pub fn propose_remove_voter(&mut self, id: NodeId) -> Result<u64, ChangeVotersError> {
        self.check_voters_change()?;
        if !self.log.voters().contains(&id) {
            return Err(ChangeVotersError::NotVoter { id });
        }
        if self.log.voters().len() == 1 {
            return Err(ChangeVotersError::LastVoter { id });
        }
        let mut voters = self.log.voters().clone();
        voters.remove(&id);
        // Refused above for the last voter: an empty set could never commit again.
        assert!(!voters.is_empty());
        Ok(self.append_voter_set(&voters))
    }

    /// The voter set in force: the newest in the log, committed or not.
    pub fn voters(&self) -> &BTreeSet<NodeId> {
        self.log.voters()
    }

    /// The voter set as of the commit index (what `committed` has delivered so far).
    pub fn committed_voters(&self) -> &BTreeSet<NodeId> {
        self.log.voters_at(self.commit_index)
    }

    /// Whether this node is in its voter set (otherwise it is a learner).
    pub fn is_voter(&self) -> bool {
        self.log.voters().contains(&self.config.id)
    }

    /// Whether this node starts elections: it is in its newest voter set, or the newest
    /// voter-set entry removed it and is above its commit index (not known committed). In
    /// the latter case its log may be the only up-to-date one (a leader that removed itself
    /// and lost leadership before the rest of the new set got the entry): the new set can
    /// then only commit the removal by electing it. It campaigns among and counts votes of
    /// the new set only, so it leads without counting itself and steps down once the
    /// removal commits, like a leader that removed itself. (The commit index is not the
    /// test of "removed": after a restart it lags, and the set at it may be older still.)
    pub fn may_campaign(&self) -> bool {
        self.is_voter() || self.removal_pending()
    }

    /// Whether the newest voter-set entry removed this node and is above the commit index.
    fn removal_pending(&self) -> bool {
        match self.log.last_voter_set_index() {
            Some(index) if index > self.commit_index => {
                // Voter-set entries follow the snapshot, so `index - 1` is in the log.
                debug_assert!(index > self.log.snapshot_index());
                self.log.voters_at(index - 1).contains(&self.config.id)
            }
            _ => false,
        }
    }

    /// On a leader, the highest index known to match the leader's log on peer `id` (a voter
    /// other than this node, or a learner); `None` elsewhere, or for nodes it does not
    /// replicate to. What DescribeQuorum reports as a replica's log end.
    pub fn match_index(&self, id: NodeId) -> Option<u64> {
        // Only a leader's view of a peer means anything; a follower's stale one would
        // report a replica's log end from a past term.
        debug_assert!(self.role == Role::Leader || self.progress.is_empty());
        self.progress.get(&id).map(|progress| progress.match_index)
    }

    /// The learners this node replicates to when it leads.
    pub fn learners(&self) -> &BTreeSet<NodeId> {
        debug_assert!(!self.learners.contains(&self.config.id));
        &self.learners
    }

    /// Replicates to `id` as a learner (never counted for votes or commitment). Ignored for
    /// this node and for voters.
    pub fn add_learner(&mut self, id: NodeId) {
        if id == self.config.id || self.log.voters().contains(&id) {
            return;
        }
        if self.learners.insert(id) && self.role == Role::Leader {
            let progress = new_progress(self.log.last_index());
            self.progress.insert(id, progress);
        }
        // A voter counted as a learner too would be sent entries twice over and, worse,
        // would look removable by `remove_learner`, dropping a voter's progress.
        debug_assert!(!self.log.voters().contains(&id));
    }

    /// Stops replicating to learner `id`.
    pub fn remove_learner(&mut self, id: NodeId) {
        if self.learners.remove(&id) {
            self.progress.remove(&id);
        }
        // Voters are never learners, so a voter's progress was left alone above: the leader
        // keeps counting its acknowledgements.
        debug_assert!(!self.learners.contains(&id));
    }

    /// Drains everything pending: batches pending replication into messages first.
    pub fn ready(&mut self) -> Ready {
        if self.role == Role::Leader {
            self.flush_replication();
        }
        self.replicate_pending = false;
        self.commit_broadcast_pending = false;
        let ready = std::mem::take(&mut self.ready);
        // The state machine applies `snapshot` then `committed` in order: they must be one
        // gapless run ending at the applied index, or it would skip or repeat entries.
        if let Some(last) = ready.committed.last() {
            assert_eq!(
                last.index, self.applied_index,
                "committed run must end at applied"
            );
        }
        if let (Some(snapshot), Some(first)) = (&ready.snapshot, ready.committed.first()) {
            assert_eq!(
                first.index,
                snapshot.last_index + 1,
                "committed must follow the snapshot"
            );
        }
        debug_assert!(ready
            .committed
            .windows(2)
            .all(|w| w[1].index == w[0].index + 1));
        debug_assert!(ready.committed.iter().all(|e| e.index <= self.commit_index));
        ready
    }

    /// Whether [`Raft::ready`] would return something.
    pub fn has_ready(&self) -> bool {
        // Only a leader batches replication; a stale flag on a follower would make the
        // caller spin on Readys that `ready` then clears empty-handed.
        debug_assert!(
            self.role == Role::Leader || !(self.replicate_pending || self.commit_broadcast_pending)
        );
        !self.ready.is_empty() || self.replicate_pending || self.commit_broadcast_pending
    }

    /// The caller's state machine image at `applied_index` (which it has applied, so it
    /// was handed out by a Ready): emits [`Write::Snapshot`] and drops the entries it
    /// covers from memory. A no-op if `applied_index` is not past the current snapshot.
    pub fn compact(&mut self, applied_index: u64, data: Vec<u8>) {
        assert!(
            applied_index <= self.applied_index,
            "compact at {applied_index} beyond the applied index {}",
            self.applied_index
        );
        if applied_index <= self.log.snapshot_index() {
            return;
        }
        // The snapshot records the voter set at its own index, not the newest one: after
        // a restart from it, the entries after it (and their sets) come from the log.
        let last_term = self
            .log
            .term(applied_index)
            .expect("applied entries are in the log");
        let snapshot = Snapshot {
            last_index: applied_index,
            last_term,
            data,
            voters: Some(self.log.voters_at(applied_index).clone()),
        };
        let kept = self.log.install(snapshot.clone());
        assert!(kept, "local compaction keeps the suffix");
        // Compaction only forgets what was applied, so the log still reaches the commit.
        assert!(self.log.snapshot_index() <= self.commit_index);
        self.ready.writes.push(Write::Snapshot(snapshot));
    }

    /// The leader this node knows of in its term.
    pub fn leader(&self) -> Option<NodeId> {
        debug_assert!(self.role != Role::Leader || self.leader == Some(self.config.id));
        self.leader
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        debug_assert!(self.log.last_term() <= self.term);
        self.term
    }

    /// The vote cast in the current term.
    pub fn voted_for(&self) -> Option<NodeId> {
        // Candidates and leaders voted for themselves in their term, so they cannot have
        // voted for anyone else in it.
        debug_assert!(
            matches!(self.role, Role::Follower | Role::PreCandidate)
                || self.voted_for == Some(self.config.id)
        );
        self.voted_for
    }

    /// Whether this node is the leader.
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// Highest index known committed.
    pub fn commit_index(&self) -> u64 {
        debug_assert!(self.commit_index <= self.log.last_index());
        self.commit_index
    }

    /// Highest index handed to the caller (through `committed` or a snapshot).
    pub fn applied_index(&self) -> u64 {
        debug_assert!(self.applied_index <= self.commit_index);
        self.applied_index
    }

    /// Index of the last log entry.
    pub fn last_index(&self) -> u64 {
        self.log.last_index()
    }

    /// Index covered by the latest snapshot (0 without one).
    pub fn snapshot_index(&self) -> u64 {
        debug_assert!(self.log.snapshot_index() <= self.applied_index);
        self.log.snapshot_index()
    }

    /// The entry at `index`, if it is in memory (after the snapshot, up to the last index).
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        self.log.entry(index)
    }

    /// Asserts the internal invariants (see the module docs).
    pub fn invariants(&self) {
        self.log.invariants();
        let last_index = self.log.last_index();
        let snapshot_index = self.log.snapshot_index();
        assert!(
            snapshot_index <= self.applied_index,
            "snapshot={snapshot_index} applied={}",
            self.applied_index
        );
        assert!(
            self.applied_index <= self.commit_index,
            "applied={} commit={}",
            self.applied_index,
            self.commit_index
        );
        assert!(
            self.commit_index <= last_index,
            "commit={} last={last_index}",
            self.commit_index
        );
        assert!(
            self.log.last_term() <= self.term,
            "last_term={} term={}",
            self.log.last_term(),
            self.term
        );
        self.membership_invariants();
        match self.role {
            Role::Leader => {
                assert_eq!(self.leader, Some(self.config.id));
                assert_eq!(
                    self.voted_for,
                    Some(self.config.id),
                    "a leader voted for itself"
                );
                assert_eq!(
                    self.log.last_term(),
                    self.term,
                    "a leader's last entry is its own"
                );
                let peers: Vec<NodeId> = self.peers();
                let tracked: Vec<NodeId> = self.progress.keys().copied().collect();
                assert_eq!(peers, tracked, "progress tracks exactly the peers");
                for (peer, progress) in &self.progress {
                    assert!(
                        progress.match_index < progress.next_index,
                        "peer {peer}: {progress:?}"
                    );
                    assert!(
                        progress.next_index <= last_index + 1,
                        "peer {peer}: {progress:?}"
                    );
                }
            }
            Role::Candidate => {
                assert_eq!(
                    self.voted_for,
                    Some(self.config.id),
                    "a candidate votes for itself"
                );
                assert_eq!(self.leader, None);
            }
            Role::PreCandidate => assert_eq!(self.leader, None),
            Role::Follower => assert!(self.progress.is_empty(), "only a leader tracks peers"),
        }
        // No invariant ties `leader` to this node's voter set: a follower may lag behind
        // the entry that made its leader a voter, or hold the leader's own removal.
    }

    /// The membership part of [`Raft::invariants`].
    fn membership_invariants(&self) {
        let voters = self.log.voters();
        assert!(!voters.is_empty(), "empty voter set");
        assert!(voters.len() <= VOTERS_MAX, "{} voters", voters.len());
        assert!(
            !self.learners.contains(&self.config.id),
            "node {} is its own learner",
            self.config.id
        );
        let both: Vec<&NodeId> = self.learners.intersection(voters).collect();
        assert!(both.is_empty(), "learners {both:?} are voters");
        if !self.may_campaign() {
            assert_eq!(self.role, Role::Follower, "learner {}", self.config.id);
        }
        if self.role != Role::Leader {
            return;
        }
        let committed_in_term = self.log.term(self.commit_index) == Some(self.term);
        let uncommitted: Vec<&(u64, BTreeSet<NodeId>)> = self
            .log
            .voter_sets()
            .iter()
            .filter(|(index, _)| *index > self.commit_index)
            .collect();
        for (index, _) in &uncommitted {
            let term = self.log.term(*index).expect("voter sets are in the log");
            assert!(
                term < self.term || committed_in_term,
                "voter set at {index} proposed before committing in term {}",
                self.term
            );
        }
        if committed_in_term {
            assert!(
                uncommitted.len() <= 1,
                "{} uncommitted voter sets",
                uncommitted.len()
            );
        }
    }

    // ---- roles ----

    fn become_follower(&mut self, term: u64, leader: Option<NodeId>) {
        assert!(
            term >= self.term,
            "term goes backwards: {term} < {}",
            self.term
        );
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.persist_hard_state();
        }
        self.role = Role::Follower;
        self.leader = leader;
        if leader.is_some() {
            self.leader_contact_ms = self.now_ms;
        }
        self.votes.clear();
        self.progress.clear();
        self.heartbeat_deadline_ms = u64::MAX;
        self.check_quorum_deadline_ms = u64::MAX;
        self.replicate_pending = false;
        self.commit_broadcast_pending = false;
        self.reset_election_timer();
        debug_assert!(self.progress.is_empty() && self.votes.is_empty());
    }

    /// Asks voters whether they would vote for us in `term + 1`, without incrementing it,
    /// so a node that was partitioned away cannot disrupt a healthy leader (§9.6).
    fn start_pre_vote(&mut self) {
        // Only `tick` starts elections, and only for a node allowed to campaign: a learner
        // that campaigned could win with votes of a set it is not counted in.
        assert!(
            self.may_campaign(),
            "node {} may not campaign",
            self.config.id
        );
        assert_ne!(self.role, Role::Leader);
        let term_before = self.term;
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.config.id, true);
        self.reset_election_timer();
        if self.has_quorum_of_grants() {
            self.campaign();
            return;
        }
        // A pre-vote leaves term and vote alone: that is what makes it harmless to a
        // healthy leader and to election safety.
        assert_eq!(self.term, term_before, "pre-vote changed the term");
        let message = RaftMessage::PreVote {
            term: self.term + 1,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
        };
        self.send_to_voters(&message);
    }

    fn campaign(&mut self) {
        // Reached only through a won pre-vote: skipping it would let a partitioned node
        // bump terms and depose a healthy leader on rejoining.
        assert_eq!(self.role, Role::PreCandidate);
        self.role = Role::Candidate;
        self.term += 1;
        self.voted_for = Some(self.config.id);
        self.persist_hard_state();
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.config.id, true);
        self.reset_election_timer();
        if self.has_quorum_of_grants() {
            self.become_leader();
            return;
        }
        let message = RaftMessage::Vote {
            term: self.term,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
        };
        self.send_to_voters(&message);
    }

    fn become_leader(&mut self) {
        // Election safety: leadership only with a majority of this term's votes, one of
        // which is our own (cast in `campaign` and persisted with the term).
        assert_eq!(self.role, Role::Candidate);
        assert!(
            self.has_quorum_of_grants(),
            "leader without a quorum of votes"
        );
        assert_eq!(self.voted_for, Some(self.config.id));
        tracing::info!(id = self.config.id, term = self.term, "became raft leader");
        self.role = Role::Leader;
        self.leader = Some(self.config.id);
        self.votes.clear();
        let next_index = self.log.last_index() + 1;
        self.progress = self
            .peers()
            .into_iter()
            .map(|p| (p, new_progress(next_index - 1)))
            .collect();
        // The no-op commits the previous terms' entries (§5.4.2, §8).
        self.append_own(Vec::new());
        // From here on the log's last entry is of our term, which is what lets the commit
        // rule ever fire, and what the voter-change guard (`check_voters_change`) waits for.
        assert_eq!(self.log.last_term(), self.term);
        self.heartbeat_deadline_ms = self.now_ms + self.config.heartbeat_interval_ms;
        self.check_quorum_deadline_ms = self.now_ms + self.config.election_timeout_min_ms;
        for peer in self.peers() {
            self.send_heartbeat(peer);
        }
        self.maybe_commit();
    }

    // ---- elections ----

    /// Answers whether or not this node is in its own voter set: a candidate asks only its
    /// voters, and this log may lack the entry that made this node one (refusing would then
    /// deadlock a group whose only up-to-date candidate needs this vote). A node outside the
    /// candidate's set is not counted, so the answer is harmless there.
    //
    // A pre-vote is granted on the same log test as a vote (so it predicts the election's
    // outcome) but only while we have no live leader: that is what keeps a node that was
    // partitioned away from disrupting the group when it returns.
    fn handle_pre_vote(&mut self, from: NodeId, term: u64, last_index: u64, last_term: u64) {
        // `step` answers lower terms as stale before dispatching here.
        debug_assert!(term >= self.term);
        let (term_before, vote_before) = (self.term, self.voted_for);
        let granted =
            term > self.term && !self.in_lease() && self.log.is_up_to_date(last_index, last_term);
        let term = if granted { term } else { self.term };
        self.send(from, RaftMessage::PreVoteResponse { term, granted });
        // Granting a pre-vote promises nothing: no term change, no vote recorded.
        debug_assert_eq!((self.term, self.voted_for), (term_before, vote_before));
    }

    fn handle_pre_vote_response(&mut self, from: NodeId, term: u64, granted: bool) {
        // Only answers to the current pre-election (asked for term + 1) count.
        if self.role != Role::PreCandidate || term != self.term + 1 {
            return;
        }
        // A pre-candidate has no leader: it cleared it when it started the pre-election and
        // any append since would have made it a follower.
        debug_assert_eq!(self.leader, None);
        if self.log.voters().contains(&from) {
            self.votes.insert(from, granted);
        }
        if self.has_quorum_of_grants() {
            self.campaign();
        }
    }

    /// Votes whether or not this node is in its own voter set, for the reason given at
    /// [`Raft::handle_pre_vote`]; it still votes at most once per term.
    fn handle_vote(&mut self, from: NodeId, last_index: u64, last_term: u64) {
        let vote_before = self.voted_for;
        // Re-granting to the same candidate is safe (its retransmission); a second candidate
        // in the same term is refused. A known leader of this term also blocks the vote: it
        // already won, so helping someone else could only produce a second leader.
        let can_vote =
            self.voted_for == Some(from) || (self.voted_for.is_none() && self.leader.is_none());
        let granted = can_vote
            && !(self.in_lease() && self.leader != Some(from))
            && self.log.is_up_to_date(last_index, last_term);
        if granted && self.voted_for.is_none() {
            self.voted_for = Some(from);
            self.persist_hard_state();
        }
        if granted {
            self.reset_election_timer();
        }
        // One vote per term: an earlier vote is never replaced, and a grant always names
        // the vote on record (which `persist_hard_state` has queued before this answer).
        assert!(vote_before.is_none() || self.voted_for == vote_before);
        assert!(!granted || self.voted_for == Some(from));
        self.send(
            from,
            RaftMessage::VoteResponse {
                term: self.term,
                granted,
            },
        );
    }

    fn handle_vote_response(&mut self, from: NodeId, granted: bool) {
        if self.role != Role::Candidate {
            return;
        }
        // `step` brought a higher-term answer down to a follower and dropped lower ones, so
        // this answer is about our own candidacy, for which we voted for ourselves.
        assert_eq!(self.voted_for, Some(self.config.id));
        if self.log.voters().contains(&from) {
            self.votes.insert(from, granted);
        }
        if self.has_quorum_of_grants() {
            self.become_leader();
        }
    }

    fn has_quorum_of_grants(&self) -> bool {
        // A quorum larger than the set could never be reached; a zero quorum would always be.
        debug_assert!((1..=self.log.voters().len()).contains(&quorum(self.log.voters())));
        let grants = self
            .votes
            .iter()
            .filter(|(id, granted)| **granted && self.log.voters().contains(id));
        grants.count() >= quorum(self.log.voters())
    }

    // ---- follower side of replication ----

    fn accept_leader(&mut self, from: NodeId) -> bool {
        match self.role {
            Role::Leader => {
                // Two leaders in one term would break election safety; never follow.
                tracing::warn!(id = self.config.id, from, term = self.term, "second leader");
                return false;
            }
            Role::PreCandidate | Role::Candidate => self.become_follower(self.term, Some(from)),
            Role::Follower => match self.leader {
                None => self.leader = Some(from),
                Some(leader) if leader != from => {
                    tracing::warn!(id = self.config.id, from, leader, "append from non-leader");
                    return false;
                }
                Some(_) => {}
            },
        }
        self.leader_contact_ms = self.now_ms;
        self.reset_election_timer();
        // From here the caller writes what `from` sends into our log: that is only safe
        // while we follow exactly one leader in this term.
        assert_eq!((self.role, self.leader), (Role::Follower, Some(from)));
        true
    }

    fn handle_append(
        &mut self,
        from: NodeId,
        mut prev_index: u64,
        mut prev_term: u64,
        mut entries: Vec<Entry>,
        leader_commit: u64,
    ) {
        // Everything in the message is input: a malformed append is dropped here, before it
        // can reach the assertions of the log.
        if !well_formed_append(self.term, prev_index, prev_term, &entries)
            || !self.accept_leader(from)
        {
            return;
        }
        let commit_before = self.commit_index;
        // Entries up to our commit index are committed and so identical in the leader's
        // log: skip them (they may also be compacted away here). This is also what keeps
        // a delayed, duplicated append from ever reaching the truncation below with an
        // index we have committed.
        if prev_index < self.commit_index {
            let skip_count = usize::try_from(self.commit_index - prev_index).unwrap_or(usize::MAX);
            entries.drain(..skip_count.min(entries.len()));
            prev_index = self.commit_index;
            prev_term = self
                .log
                .term(prev_index)
                .expect("the commit index is in the log");
            if let Some(first) = entries.first() {
                assert_eq!(first.index, prev_index + 1);
            }
        }
        // Log matching: accept only if our log holds the leader's entry at `prev_index`.
        // On a mismatch nothing is written; the leader walks back with the hint.
        if self.log.term(prev_index) != Some(prev_term) {
            let hint = self.log.conflict_hint(prev_index);
            let response = RaftMessage::AppendResponse {
                term: self.term,
                success: false,
                index: prev_index,
                hint,
            };
            self.send(from, response);
            return;
        }
        let last_new_index = prev_index + entries.len() as u64;
        // Only entries (truncated or appended) can change the voter set; heartbeats cannot.
        let previous_voters = (!entries.is_empty()).then(|| self.log.voters().clone());
        let new_entries = self.skip_matching_entries(entries);
        if !new_entries.is_empty() {
            for entry in &new_entries {
                self.log.append(entry.clone());
            }
            self.ready.writes.push(Write::Append(new_entries));
        }
        if let Some(previous_voters) = previous_voters {
            self.on_voters_changed(&previous_voters);
        }
        // The log now matches the leader's through `last_new_index` (log matching), and no
        // further: past it our entries may still be a deposed leader's, so the leader's
        // commit index is taken only up to there.
        assert!(self.log.last_index() >= last_new_index);
        assert!(self.log.term(last_new_index).is_some());
        let commit_index = leader_commit.min(last_new_index);
        if commit_index > self.commit_index {
            self.advance_commit(commit_index);
        }
        assert!(self.commit_index >= commit_before);
        let response = RaftMessage::AppendResponse {
            term: self.term,
            success: true,
            index: last_new_index,
            hint: 0,
        };
        self.send(from, response);
    }

    /// Drops the entries already in the log; truncates the log at the first conflict.
    /// Returns the entries to append.
    fn skip_matching_entries(&mut self, entries: Vec<Entry>) -> Vec<Entry> {
        let mut entries = entries.into_iter().peekable();
        while let Some(entry) = entries.peek() {
            match self.log.term(entry.index) {
                Some(term) if term == entry.term => {
                    entries.next();
                }
                Some(_) => {
                    assert!(
                        entry.index > self.commit_index,
                        "truncating committed entry {} (commit {})",
                        entry.index,
                        self.commit_index
                    );
                    self.log.truncate_from(entry.index);
                    self.ready
                        .writes
                        .push(Write::TruncateFrom { index: entry.index });
                    break;
                }
                None => break,
            }
        }
        let rest: Vec<Entry> = entries.collect();
        // Whatever is left starts exactly at the end of the log (after skipping the matching
        // prefix and cutting the conflicting suffix), so appending it keeps indexes dense.
        if let Some(first) = rest.first() {
            assert_eq!(first.index, self.log.last_index() + 1);
        }
        rest
    }

    fn handle_install_snapshot(&mut self, from: NodeId, snapshot: Snapshot) {
        // A snapshot ending in a term beyond ours cannot come from the leader of our term
        // (its log holds no such entry), so it is malformed: drop it.
        if snapshot.last_term > self.term
            || !valid_snapshot_voters(&snapshot)
            || !self.accept_leader(from)
        {
            return;
        }
        // A snapshot at or below our commit holds nothing new; installing it would throw
        // away committed entries we still serve to the state machine and to peers.
        if snapshot.last_index > self.commit_index {
            let last_index = snapshot.last_index;
            let previous_voters = self.log.voters().clone();
            let kept = self.log.install(snapshot.clone());
            self.on_voters_changed(&previous_voters);
            self.ready.writes.push(Write::Snapshot(snapshot.clone()));
            if !kept {
                self.ready.writes.push(Write::TruncateFrom {
                    index: last_index + 1,
                });
            }
            // Pending committed entries are all below the snapshot, which supersedes them.
            self.ready.committed.clear();
            self.ready.snapshot = Some(snapshot);
            // The snapshot holds committed state only (the leader made it from applied
            // entries), so jumping the commit index to its end is safe; it only ever moves
            // forward because we install only snapshots beyond our commit.
            self.commit_index = last_index;
            self.applied_index = last_index;
            assert_eq!(self.log.snapshot_index(), last_index);
        }
        let response = RaftMessage::InstallSnapshotResponse {
            term: self.term,
            match_index: self.commit_index,
        };
        self.send(from, response);
    }

    // ---- leader side of replication ----

    fn handle_append_response(&mut self, from: NodeId, success: bool, index: u64, hint: u64) {
        let last_index = self.log.last_index();
        let Some(progress) = self.leader_progress(from) else {
            return;
        };
        progress.recent_active = true;
        if success {
            if index > last_index {
                return;
            }
            if index > progress.match_index {
                progress.match_index = index;
            }
            progress.next_index = progress.next_index.max(progress.match_index + 1);
            progress.probing = false;
            if matches!(progress.snapshot_sent, Some((sent, _)) if progress.match_index >= sent) {
                progress.snapshot_sent = None;
            }
            // `index` was bounded by our last index above, so a bogus acknowledgement can
            // never claim more than we have: commitment counts only real replicas.
            assert!(
                progress.match_index < progress.next_index && progress.match_index <= last_index,
                "peer {from}: {progress:?}"
            );
            self.maybe_commit();
            self.send_pipelined(from);
        } else {
            // Rejections can be reordered and duplicated: act only on the one answering
            // the probe in flight, or a late rejection would drag `next_index` back and
            // resend entries the peer has already accepted.
            // A rejection names the entry we sent before the ones it refused, so an index
            // past our log is not an answer to anything of ours (a malformed or foreign
            // message): ignored, it can neither overflow nor push `next_index` past the log.
            let stale = index > last_index
                || index <= progress.match_index
                || progress.snapshot_sent.is_some()
                || (progress.probing && index + 1 != progress.next_index);
            if stale {
                return;
            }
            progress.probing = true;
            // Never below `match_index + 1`: a rejection cannot take back what the peer has
            // acknowledged, so a reordered old rejection cannot stall commitment; `index` is
            // within our log (checked above), so neither is `next_index` past its end + 1.
            progress.next_index = index
                .min(hint.saturating_add(1))
                .max(progress.match_index + 1);
            debug_assert!(progress.match_index < progress.next_index);
            debug_assert!(progress.next_index <= last_index + 1);
            self.send_heartbeat(from);
        }
    }

    fn handle_install_snapshot_response(&mut self, from: NodeId, match_index: u64) {
        let last_index = self.log.last_index();
        let Some(progress) = self.leader_progress(from) else {
            return;
        };
        progress.recent_active = true;
        if match_index > last_index || match_index <= progress.match_index {
            return;
        }
        progress.match_index = match_index;
        progress.next_index = progress.next_index.max(match_index + 1);
        if matches!(progress.snapshot_sent, Some((sent, _)) if match_index >= sent) {
            progress.snapshot_sent = None;
            progress.probing = false;
        }
        assert!(
            progress.match_index < progress.next_index && progress.match_index <= last_index,
            "peer {peer}: {progress:?}",
            peer = from
        );
        self.maybe_commit();
        self.send_pipelined(from);
    }

    fn leader_progress(&mut self, peer: NodeId) -> Option<&mut Progress> {
        if self.role != Role::Leader {
            // Acknowledgements to an earlier leadership of ours must not count now.
            debug_assert!(self.progress.is_empty());
            return None;
        }
        self.progress.get_mut(&peer)
    }

    /// Commits the highest index a majority of voters stores, if it is of this term. A
    /// leader outside its voter set does not count itself, and steps down once that set is
    /// committed.
    fn maybe_commit(&mut self) {
        // Only a leader counts replicas; a follower learns the commit index from its leader.
        assert_eq!(self.role, Role::Leader);
        let mut match_indexes: Vec<u64> = self
            .log
            .voters()
            .iter()
            .map(|voter| {
                if *voter == self.config.id {
                    // Our writes are durable before any of our appends leave (the caller's
                    // contract), so our whole log counts.
                    self.log.last_index()
                } else {
                    self.progress
                        .get(voter)
                        .map_or(0, |progress| progress.match_index)
                }
            })
            .collect();
        match_indexes.sort_unstable_by(|a, b| b.cmp(a));
        let quorum_index = match_indexes[quorum(self.log.voters()) - 1];
        // Peers' match indexes are capped at our last index when recorded and our log only
        // grows while we lead, so a majority can never "store" what we do not have.
        assert!(
            quorum_index <= self.log.last_index(),
            "quorum index {quorum_index} past the log"
        );
        // §5.4.2: only entries of the current term are committed by counting replicas.
        if quorum_index > self.commit_index && self.log.term(quorum_index) == Some(self.term) {
            self.advance_commit(quorum_index);
            // The commit rule, restated where it is applied: the newly committed index holds
            // an entry of this leader's term.
            assert_eq!(self.log.term(self.commit_index), Some(self.term));
            self.commit_broadcast_pending = true;
            let removal_committed = self
                .log
                .last_voter_set_index()
                .is_some_and(|index| index <= self.commit_index);
            if !self.is_voter() && removal_committed {
                self.step_down_removed();
            }
        }
    }

    /// The leader's removal committed: tell every peer (the commit index, and entries they
    /// lack) so the remaining voters can elect a successor, then follow as a learner.
    fn step_down_removed(&mut self) {
        // Only once our own removal is committed: stepping down earlier could leave the new
        // set unable to commit it (see `may_campaign`).
        assert_eq!(self.role, Role::Leader);
        assert!(
            !self.is_voter(),
            "a voter leader does not step down as removed"
        );
        tracing::info!(
            id = self.config.id,
            term = self.term,
            "removed leader steps down"
        );
        self.replicate_pending = true;
        self.commit_broadcast_pending = true;
        self.flush_replication();
        self.become_follower(self.term, None);
    }

    fn advance_commit(&mut self, commit_index: u64) {
        // Commit never goes back (entries handed out are final) and never passes the last
        // index (we can only vouch for entries we hold; our own writes are durable before
        // any message that depends on them leaves).
        assert!(commit_index > self.commit_index);
        assert!(commit_index <= self.log.last_index());
        // Everything up to the old commit was handed out already, no more.
        assert_eq!(self.applied_index, self.commit_index, "applied lags commit");
        self.commit_index = commit_index;
        let from = self.applied_index + 1;
        self.ready
            .committed
            .extend_from_slice(self.log.range(from, commit_index));
        self.applied_index = commit_index;
    }

    /// Batches pending entries to every pipelining peer, and tells peers that nothing new
    /// went to about a moved commit index.
    //
    // Pending work is batched per Ready so that many proposals in one input become one
    // append per peer, not one each.
    fn flush_replication(&mut self) {
        assert_eq!(self.role, Role::Leader, "only a leader replicates");
        for peer in self.peers() {
            let mut sent = false;
            if self.replicate_pending {
                sent = self.send_pipelined(peer);
            }
            if !sent && self.commit_broadcast_pending {
                let Some(progress) = self.progress.get(&peer) else {
                    continue;
                };
                if !progress.probing && progress.snapshot_sent.is_none() {
                    self.send_append(peer, progress.match_index, 0);
                }
            }
        }
    }

    /// Sends whatever the peer lacks from `next_index`, up to the in-flight bound, unless
    /// the peer is probing or awaiting a snapshot. Returns whether anything was sent.
    fn send_pipelined(&mut self, peer: NodeId) -> bool {
        // Only a leader replicates. A removed leader may have stepped down in the
        // `maybe_commit` just before this call; its progress is gone then, so nothing leaves.
        debug_assert!(self.role == Role::Leader || self.progress.is_empty());
        let last_index = self.log.last_index();
        let in_flight_max = self.config.max_append_entries as u64 * APPENDS_IN_FLIGHT_MAX;
        let mut sent = false;
        for _ in 0..APPENDS_IN_FLIGHT_MAX {
            let Some(progress) = self.progress.get(&peer) else {
                break;
            };
            // `match_index < next_index` keeps this from underflowing (asserted wherever
            // either moves).
            debug_assert!(progress.match_index < progress.next_index);
            let in_flight = progress.next_index - 1 - progress.match_index;
            if progress.probing
                || progress.snapshot_sent.is_some()
                || progress.next_index > last_index
                || in_flight >= in_flight_max
            {
                break;
            }
            let prev_index = progress.next_index - 1;
            let Some(count) = self.send_append(peer, prev_index, self.config.max_append_entries)
            else {
                break;
            };
            sent = true;
            if let Some(progress) = self.progress.get_mut(&peer) {
                progress.next_index = prev_index + count + 1;
            }
        }
        sent
    }

    /// The periodic message to a peer (also a probe after a rejection): from `next_index`
    /// while probing; otherwise an empty append (commit index, liveness) or, if the peer
    /// made no progress since the last heartbeat, a retransmission from `match_index + 1`.
    fn send_heartbeat(&mut self, peer: NodeId) {
        assert_eq!(self.role, Role::Leader, "only a leader heartbeats");
        let last_index = self.log.last_index();
        let Some(progress) = self.progress.get_mut(&peer) else {
            return;
        };
        if progress.snapshot_sent.is_some() {
            // Appends cannot help until the snapshot lands; resend it when due.
            self.send_snapshot(peer);
            return;
        }
        // Appends may be lost: if nothing was acknowledged for a whole heartbeat period,
        // resend from the last known match instead of trusting the pipeline.
        let stalled = progress.match_index == progress.match_index_at_heartbeat;
        progress.match_index_at_heartbeat = progress.match_index;
        let (prev_index, count_max) = if progress.probing {
            (progress.next_index - 1, self.config.max_append_entries)
        } else if stalled && progress.match_index < last_index {
            (progress.match_index, self.config.max_append_entries)
        } else {
            (progress.match_index, 0)
        };
        if let Some(count) = self.send_append(peer, prev_index, count_max) {
            if let Some(progress) = self.progress.get_mut(&peer) {
                if !progress.probing {
                    progress.next_index = progress.next_index.max(prev_index + count + 1);
                }
            }
        }
    }

    /// Sends an append after `prev_index` with up to `count_max` entries, or the snapshot
    /// if `prev_index` is compacted away. Returns the entry count sent in an append.
    fn send_append(&mut self, peer: NodeId, prev_index: u64, count_max: usize) -> Option<u64> {
        let Some(prev_term) = self.log.term(prev_index) else {
            self.send_snapshot(peer);
            return None;
        };
        let entries = self.log.slice(prev_index + 1, count_max).to_vec();
        let count = entries.len() as u64;
        // The receiver trusts our commit index up to what this append proves to match, so
        // it must never exceed our own log.
        debug_assert!(entries.len() <= count_max && self.commit_index <= self.log.last_index());
        let message = RaftMessage::Append {
            term: self.term,
            prev_index,
            prev_term,
            entries,
            commit: self.commit_index,
        };
        self.send(peer, message);
        Some(count)
    }

    /// Sends the snapshot, at most once per `election_timeout_min_ms` for the same one.
    fn send_snapshot(&mut self, peer: NodeId) {
        let Some(snapshot) = self.log.snapshot().cloned() else {
            return;
        };
        // A follower installing it jumps its commit index to `last_index`, so a snapshot may
        // only ever cover committed entries (it was made from applied state).
        assert!(snapshot.last_index <= self.commit_index);
        assert_eq!(self.role, Role::Leader);
        let now_ms = self.now_ms;
        let retry_ms = self.config.election_timeout_min_ms;
        let Some(progress) = self.progress.get_mut(&peer) else {
            return;
        };
        if let Some((sent_index, retry_at_ms)) = progress.snapshot_sent {
            if sent_index == snapshot.last_index && now_ms < retry_at_ms {
                return;
            }
        }
        progress.snapshot_sent = Some((snapshot.last_index, now_ms + retry_ms));
        progress.probing = true;
        self.send(
            peer,
            RaftMessage::InstallSnapshot {
                term: self.term,
                snapshot,
            },
        );
    }

    // ---- membership ----

    /// The refusals common to both voter-set changes.
    fn check_voters_change(&self) -> Result<(), ChangeVotersError> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            }
            .into());
        }
        debug_assert_eq!(self.leader, Some(self.config.id));
        // Dissertation §4.1 (the single-server bug): a change of an earlier term may still be
        // uncommitted and be overwritten; committing an entry of this term settles it.
        if self.log.term(self.commit_index) != Some(self.term) {
            return Err(ChangeVotersError::LeaderNotReady { term: self.term });
        }
        if let Some(index) = self.log.last_voter_set_index() {
            if index > self.commit_index {
                return Err(ChangeVotersError::ChangeInProgress { index });
            }
        }
        let uncommitted_count = self.log.last_index() - self.commit_index;
        if uncommitted_count >= self.config.max_uncommitted_entries as u64 {
            return Err(ChangeVotersError::Throttled { uncommitted_count });
        }
        Ok(())
    }

    /// Appends the leader's voter-set entry; the new set is in force at once.
    fn append_voter_set(&mut self, voters: &BTreeSet<NodeId>) -> u64 {
        let previous = self.log.voters().clone();
        assert_eq!(
            previous.symmetric_difference(voters).count(),
            1,
            "one node at a time"
        );
        let index = self.append_own(encode_voter_set(voters));
        tracing::info!(
            id = self.config.id,
            term = self.term,
            index,
            ?voters,
            "voter set proposed"
        );
        self.on_voters_changed(&previous);
        self.replicate_pending = true;
        // A smaller set may already be satisfied by what its voters store.
        self.maybe_commit();
        index
    }

    /// Reacts to a change of the voter set in force (from `previous`): nodes that left it
    /// become learners, nodes that joined it stop being learners, a leader tracks every
    /// peer, and a node that became a voter starts its election timer.
    fn on_voters_changed(&mut self, previous: &BTreeSet<NodeId>) {
        let voters = self.log.voters().clone();
        if &voters == previous {
            return;
        }
        tracing::info!(id = self.config.id, ?previous, ?voters, "voter set changed");
        self.learners.extend(previous.iter().copied());
        self.learners
            .retain(|id| !voters.contains(id) && *id != self.config.id);
        if self.role == Role::Leader {
            let last_index = self.log.last_index();
            for peer in self.peers() {
                self.progress
                    .entry(peer)
                    .or_insert_with(|| new_progress(last_index));
            }
        }
        let joined = voters.contains(&self.config.id) && !previous.contains(&self.config.id);
        if joined && self.role == Role::Follower {
            self.reset_election_timer();
        }
        // A node both voter and learner would be counted as one and replicated to as the
        // other; a leader missing a peer's progress would never count its acknowledgements.
        assert!(!self.learners.contains(&self.config.id));
        debug_assert!(self.learners.is_disjoint(&voters));
        debug_assert!(
            self.role != Role::Leader || self.peers().iter().all(|p| self.progress.contains_key(p))
        );
    }

    // ---- helpers ----

    fn append_own(&mut self, data: Vec<u8>) -> u64 {
        // Only a leader creates entries, and only in its own term: entries stamped with an
        // older term could be overwritten after they commit (§5.4.2).
        assert_eq!(self.role, Role::Leader);
        let index = self.log.last_index() + 1;
        let entry = Entry {
            term: self.term,
            index,
            data,
        };
        self.log.append(entry.clone());
        // Coalesce consecutive proposals into one storage write.
        match self.ready.writes.last_mut() {
            Some(Write::Append(entries))
                if entries.last().is_some_and(|e| e.index + 1 == index) =>
            {
                entries.push(entry);
            }
            _ => self.ready.writes.push(Write::Append(vec![entry])),
        }
        index
    }

    fn answer_stale(&mut self, from: NodeId, message: &RaftMessage) {
        // Answering with our (higher) term is what tells a deposed leader or candidate to
        // step down; never send this for a current message.
        debug_assert!(message.term() < self.term);
        let term = self.term;
        let response = match message {
            // Tell a deposed leader about the newer term (index 0 is ignored as stale).
            RaftMessage::Append { .. } => RaftMessage::AppendResponse {
                term,
                success: false,
                index: 0,
                hint: 0,
            },
            RaftMessage::InstallSnapshot { .. } => RaftMessage::InstallSnapshotResponse {
                term,
                match_index: 0,
            },
            RaftMessage::PreVote { .. } => RaftMessage::PreVoteResponse {
                term,
                granted: false,
            },
            RaftMessage::Vote { .. } => RaftMessage::VoteResponse {
                term,
                granted: false,
            },
            _ => return,
        };
        self.send(from, response);
    }

    /// Leader stickiness: a leader, or a follower that heard from its leader within the
    /// minimum election timeout, refuses to help elect someone else.
    fn in_lease(&self) -> bool {
        // The lease is as long as the minimum election timeout, the same period after which
        // check-quorum deposes a cut-off leader, so a lease never outlives a leader that
        // has lost its majority by more than one period.
        match self.role {
            Role::Leader => true,
            _ => {
                self.leader.is_some()
                    && self.now_ms
                        < self
                            .leader_contact_ms
                            .saturating_add(self.config.election_timeout_min_ms)
            }
        }
    }

    //
    // We count ourselves only when we are in the voter set: a leader that removed itself
    // must hear from a majority of the new set on its own.
    fn quorum_active(&self) -> bool {
        debug_assert_eq!(self.role, Role::Leader);
        let active = self.log.voters().iter().filter(|voter| {
            **voter == self.config.id || self.progress.get(voter).is_some_and(|p| p.recent_active)
        });
        active.count() >= quorum(self.log.voters())
    }

    /// Voters other than this node, then learners (sorted, deduplicated).
    fn peers(&self) -> Vec<NodeId> {
        let voters = self.log.voters().iter();
        let all: BTreeSet<NodeId> = voters
            .chain(self.learners.iter())
            .copied()
            .filter(|id| *id != self.config.id)
            .collect();
        // Progress is keyed by these: listing ourselves would make a leader count its own
        // log twice towards a majority.
        debug_assert!(!all.contains(&self.config.id));
        all.into_iter().collect()
    }

    fn send_to_voters(&mut self, message: &RaftMessage) {
        // Only (pre-)candidates broadcast to voters.
        debug_assert!(matches!(self.role, Role::PreCandidate | Role::Candidate));
        let voters: Vec<NodeId> = self
            .log
            .voters()
            .iter()
            .copied()
            .filter(|id| *id != self.config.id)
            .collect();
        for voter in voters {
            self.send(voter, message.clone());
        }
    }

    fn send(&mut self, to: NodeId, message: RaftMessage) {
        // Every destination comes from `peers`, the voter set minus us, or a peer's own
        // message (`step` drops those claiming to be from us).
        debug_assert_ne!(to, self.config.id, "message to self");
        self.ready.messages.push((to, message));
    }

    fn persist_hard_state(&mut self) {
        let hard_state = Write::HardState {
            term: self.term,
            voted_for: self.voted_for,
        };
        // A term bump directly followed by a vote needs only the latter write. Replacing is
        // only safe forward: dropping a later term's write for an earlier one would let a
        // restart forget a vote.
        match self.ready.writes.last_mut() {
            Some(last @ Write::HardState { .. }) => {
                if let Write::HardState { term, .. } = last {
                    assert!(*term <= self.term, "hard state goes back from {term}");
                }
                *last = hard_state;
            }
            _ => self.ready.writes.push(hard_state),
        }
    }

    fn reset_election_timer(&mut self) {
        let timeout_ms = self.rng.range(
            self.config.election_timeout_min_ms,
            self.config.election_timeout_max_ms,
        );
        // Randomized within [min, max): a timeout below the minimum would break leader
        // stickiness (followers would campaign while the leader's lease still holds).
        debug_assert!(timeout_ms >= self.config.election_timeout_min_ms);
        self.election_deadline_ms = self.now_ms.saturating_add(timeout_ms);
    }

    //
    // Callers may hand us times out of order (several inputs in one batch); deadlines are
    // computed from `now_ms`, so it must never run backwards.
    fn advance_clock(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
    }
}

/// Progress of a peer about which nothing is known yet: probe from the end of the log.
fn new_progress(last_index: u64) -> Progress {
    // Probing from the end of the log is always safe: a rejection walks `next_index` back.
    // `match_index` starts at 0 because nothing is known to match yet; claiming more
    // could commit entries a majority does not store.
    Progress {
        match_index: 0,
        next_index: last_index + 1,
        probing: true,
        recent_active: false,
        match_index_at_heartbeat: 0,
        snapshot_sent: None,
    }
}

/// Entries must follow `prev_index` contiguously, with terms non-decreasing from
/// `prev_term` and not beyond the leader's term, and voter sets must decode.
///
/// This is the gate between the wire and the log's assertions: anything it lets through must
/// satisfy [`RaftLog::append`]'s preconditions, since an assertion there would let one bad
/// packet crash the node. Entries beyond the leader's own term cannot exist in its log.
fn well_formed_append(term: u64, prev_index: u64, prev_term: u64, entries: &[Entry]) -> bool {
    let mut previous_term = prev_term;
    for (offset, entry) in entries.iter().enumerate() {
        if entry.index != prev_index + 1 + offset as u64
            || entry.term < previous_term
            || entry.term > term
            || !valid_voter_set_entry(entry)
        {
            return false;
        }
        previous_term = entry.term;
    }
    prev_term <= term
}

/// A voter-set entry must decode; other kinds are opaque.
fn valid_voter_set_entry(entry: &Entry) -> bool {
    entry.kind() != EntryKind::VoterSet || decode_voter_set(&entry.data).is_some()
}

/// A snapshot's voter set, if it has one, must be non-empty and within [`VOTERS_MAX`].
///
/// Like [`well_formed_append`], a gate in front of assertions: an empty set installed
/// from a peer would trip the log's invariants and could never form a majority.
fn valid_snapshot_voters(snapshot: &Snapshot) -> bool {
    snapshot
        .voters
        .as_ref()
        .is_none_or(|voters| !voters.is_empty() && voters.len() <= VOTERS_MAX)
}

/// Builds the log from storage, checking it is contiguous with monotonic terms and that its
/// voter sets decode and change one node at a time (from `bootstrap_voters`, the set before
/// any snapshot or voter-set entry).
fn validated_log(
    persisted: &Persisted,
    bootstrap_voters: &BTreeSet<NodeId>,
) -> Result<RaftLog, RaftError> {
    let snapshot_index = persisted.snapshot.as_ref().map_or(0, |s| s.last_index);
    let snapshot_term = persisted.snapshot.as_ref().map_or(0, |s| s.last_term);
    let max_term = persisted.term;
    if snapshot_term > max_term {
        return Err(RaftError::TermOutOfOrder {
            index: snapshot_index,
            term: snapshot_term,
            min_term: 0,
            max_term,
        });
    }
    let mut voters = match &persisted.snapshot {
        Some(snapshot) if !valid_snapshot_voters(snapshot) => {
            return Err(RaftError::BadVoterSet {
                index: snapshot_index,
            })
        }
        Some(Snapshot {
            voters: Some(voters),
            ..
        }) => voters.clone(),
        _ => bootstrap_voters.clone(),
    };
    // Walk the stored entries the way they were appended, replaying each voter-set change
    // against the set before it: a file that skips a change or jumps two nodes at once
    // did not come from this code and is refused rather than trusted.
    let mut entries = Vec::with_capacity(persisted.entries.len());
    let mut min_term = snapshot_term;
    for entry in persisted
        .entries
        .iter()
        .filter(|e| e.index > snapshot_index)
    {
        let expected = snapshot_index + 1 + entries.len() as u64;
        if entry.index != expected {
            return Err(RaftError::LogGap {
                expected,
                found: entry.index,
            });
        }
        if entry.term < min_term || entry.term > max_term {
            return Err(RaftError::TermOutOfOrder {
                index: entry.index,
                term: entry.term,
                min_term,
                max_term,
            });
        }
        if entry.kind() == EntryKind::VoterSet {
            match decode_voter_set(&entry.data) {
                Some(next) if next.symmetric_difference(&voters).count() == 1 => voters = next,
                _ => return Err(RaftError::BadVoterSet { index: entry.index }),
            }
        }
        entries.push(entry.clone());
        min_term = entry.term;
    }
    debug_assert!(entries.iter().all(|e| e.term <= max_term));
    // `RaftLog::new` re-checks the whole shape with assertions: after the checks above, a
    // failure there is a bug in this function, not bad storage.
    Ok(RaftLog::new(
        persisted.snapshot.clone(),
        entries,
        bootstrap_voters.clone(),
    ))
}
