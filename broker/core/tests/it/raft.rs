//! Raft (`weir_core::raft`): a deterministic cluster simulation plus focused unit tests.
//!
//! The simulation drives 3 voters + 1 learner and 5 voters + 1 learner through a seeded
//! scheduler with virtual time: message loss, duplication, reordering, long delays, network
//! partitions (random splits, leader isolation), crashes (clean, and between applying a
//! Ready's writes and fsyncing them, which loses that Ready entirely), restarts from the
//! simulated disk, and compaction that forces snapshot installs on lagging nodes. After
//! every step it checks election safety, log matching, leader completeness, state machine
//! safety and the durability of committed entries; at the end it heals everything and
//! requires a leader and a commit on every node within a bounded simulated time.
//!
//! The membership simulations (3 voters + 2 learners, 1 voter + 3 learners) also add and
//! remove voters at random, the leader included, amid the same faults. They check besides
//! that committed voter sets change one node at a time, that every node's voter set is the
//! newest in its log (else its snapshot's) and its committed set the oracle's, and that
//! only nodes in their newest voter set (or with their removal pending) campaign.
//!
//! Failures print `seed=N`; replay one with `RAFT_SEED=N cargo test -p weir-core --test it raft::`.
//! Soak with `RAFT_SEEDS=a..b`, which runs every simulation over seeds `a..b`.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};

use weir_core::raft::{
    encode_voter_set, ChangeVotersError, Entry, EntryKind, NodeId, Persisted, ProposeError, Raft,
    RaftConfig, RaftError, RaftMessage, Ready, Role, Snapshot, Write, APPENDS_IN_FLIGHT_MAX,
    VOTERS_MAX, VOTER_SET_PREFIX,
};

/// Simulated time of the chaos phase of one seed.
const CHAOS_MS: u64 = 20_000;
/// After healing, a leader must commit on every node within this simulated time.
const LIVENESS_MS_MAX: u64 = 20_000;
/// Small batches (1..=3 entries, by seed), so that probing, pipelining, retransmission and
/// acknowledgements of an old-term prefix without the new leader's no-op are exercised.
const SIM_MAX_APPEND_ENTRIES: usize = 3;
/// Steps between full pairwise log-matching checks.
const LOG_MATCHING_EVERY_STEPS: u64 = 32;
/// Small, so that the simulations see learners refused as lagging.
const SIM_LEARNER_LAG_ENTRIES_MAX: u64 = 8;

// ---- deterministic randomness ----

struct Rng {
    state: u64,
}

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng {
            state: seed ^ 0x7465_7374_7261_6674,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        if items.is_empty() {
            return None;
        }
        Some(items[self.below(items.len() as u64) as usize])
    }
}

fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

// ---- simulated disk and state machine ----

/// Durable storage: only writes of Readies that were "fsynced" reach it.
#[derive(Debug, Default, Clone)]
struct Disk {
    term: u64,
    voted_for: Option<NodeId>,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
}

impl Disk {
    fn snapshot_index(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.last_index)
    }

    fn apply(&mut self, write: &Write) {
        match write {
            Write::HardState { term, voted_for } => {
                assert!(*term >= self.term, "hard state term regresses");
                if *term == self.term && self.voted_for.is_some() {
                    assert_eq!(
                        *voted_for, self.voted_for,
                        "vote changed within term {term}"
                    );
                }
                self.term = *term;
                self.voted_for = *voted_for;
            }
            Write::TruncateFrom { index } => self.entries.retain(|e| e.index < *index),
            Write::Append(entries) => {
                assert!(!entries.is_empty(), "empty append write");
                for entry in entries {
                    let expected = self
                        .entries
                        .last()
                        .map_or(self.snapshot_index() + 1, |last| last.index + 1);
                    assert_eq!(entry.index, expected, "append not contiguous on disk");
                    self.entries.push(entry.clone());
                }
            }
            Write::Snapshot(snapshot) => {
                assert!(
                    snapshot.last_index >= self.snapshot_index(),
                    "snapshot regresses"
                );
                self.entries.retain(|e| e.index > snapshot.last_index);
                self.snapshot = Some(snapshot.clone());
            }
        }
    }

    fn persisted(&self) -> Persisted {
        Persisted {
            term: self.term,
            voted_for: self.voted_for,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
        }
    }
}

/// The replicated state machine: a hash chain over every applied entry, so two machines
/// are equal iff they applied the same sequence. Its snapshot is (index, hash).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct StateMachine {
    applied_index: u64,
    hash: u64,
}

impl StateMachine {
    fn apply(&mut self, entry: &Entry) {
        assert_eq!(entry.index, self.applied_index + 1, "applied out of order");
        let mut hash = fnv(self.hash, &entry.term.to_le_bytes());
        hash = fnv(hash, &entry.index.to_le_bytes());
        self.hash = fnv(hash, &entry.data);
        self.applied_index = entry.index;
    }

    fn image(&self) -> Vec<u8> {
        let mut data = self.applied_index.to_le_bytes().to_vec();
        data.extend_from_slice(&self.hash.to_le_bytes());
        data
    }

    fn from_image(data: &[u8]) -> StateMachine {
        assert_eq!(data.len(), 16, "bad snapshot image");
        let mut index = [0u8; 8];
        let mut hash = [0u8; 8];
        index.copy_from_slice(&data[..8]);
        hash.copy_from_slice(&data[8..]);
        StateMachine {
            applied_index: u64::from_le_bytes(index),
            hash: u64::from_le_bytes(hash),
        }
    }
}

// ---- the cluster ----

#[derive(Debug, Clone, Copy)]
struct Faults {
    loss_per_mille: u64,
    duplicate_per_mille: u64,
    delay_ms_max: u64,
    long_delay_per_mille: u64,
    long_delay_ms_max: u64,
    /// Chance per Ready that the node crashes after applying its writes but before the
    /// fsync: the Ready's writes and messages are lost.
    crash_unsynced_per_mille: u64,
    /// Chance per Ready of a crash after the fsync but before the messages leave.
    crash_before_send_per_mille: u64,
    /// The same for the Ready in which a node became leader: its no-op is durable but
    /// nobody hears of it, so a later leader may hold a conflicting entry (Figure 8).
    crash_new_leader_per_mille: u64,
    /// Chance that a leader crashes right after applying newly committed entries, with
    /// that Ready's messages lost.
    crash_leader_after_commit_per_mille: u64,
}

impl Faults {
    const NONE: Faults = Faults {
        loss_per_mille: 0,
        duplicate_per_mille: 0,
        delay_ms_max: 5,
        long_delay_per_mille: 0,
        long_delay_ms_max: 0,
        crash_unsynced_per_mille: 0,
        crash_before_send_per_mille: 0,
        crash_new_leader_per_mille: 0,
        crash_leader_after_commit_per_mille: 0,
    };

    /// Fault rates drawn per seed, so that seeds range from gentle to hostile networks
    /// and crash-prone nodes (FoundationDB-style swizzling of intensities).
    fn chaos(rng: &mut Rng) -> Faults {
        Faults {
            loss_per_mille: rng.below(250),
            duplicate_per_mille: rng.below(100),
            delay_ms_max: 1 + rng.below(100),
            long_delay_per_mille: rng.below(40),
            long_delay_ms_max: 2_500,
            crash_unsynced_per_mille: rng.below(8),
            crash_before_send_per_mille: rng.below(8),
            crash_new_leader_per_mille: rng.below(400),
            crash_leader_after_commit_per_mille: rng.below(200),
        }
    }
}

struct Envelope {
    deliver_at_ms: u64,
    seq: u64,
    from: NodeId,
    to: NodeId,
    message: RaftMessage,
}

struct SimNode {
    raft: Option<Raft>,
    disk: Disk,
    machine: StateMachine,
    incarnation: u64,
}

struct Cluster {
    seed: u64,
    rng: Rng,
    now_ms: u64,
    /// The bootstrap voter set (each node's own set is `Raft::voters`).
    voters: BTreeSet<NodeId>,
    max_append_entries: usize,
    max_uncommitted_entries: usize,
    nodes: BTreeMap<NodeId, SimNode>,
    in_flight: Vec<Envelope>,
    seq: u64,
    /// Partition group per node; messages cross groups never.
    group: BTreeMap<NodeId, u64>,
    faults: Faults,
    next_chaos_ms: u64,
    proposal_count: u64,
    steps: u64,
    trace: u64,
    counts: BTreeMap<&'static str, u64>,
    /// Chaos also adds and removes voters.
    membership: bool,
    // The oracle.
    leaders_by_term: BTreeMap<u64, NodeId>,
    /// Every entry some node was told is committed.
    committed: BTreeMap<u64, Entry>,
    /// State machine hash after applying each index.
    chain: BTreeMap<u64, u64>,
    /// Data of every entry ever written, by (index, term).
    written: BTreeMap<(u64, u64), Vec<u8>>,
    /// The committed voter sets by the index they take effect at (0: the bootstrap set).
    committed_voters: BTreeMap<u64, BTreeSet<NodeId>>,
}

impl Cluster {
    fn new(seed: u64, voter_count: i32, learner_count: i32) -> Cluster {
        let voters: BTreeSet<NodeId> = (1..=voter_count).collect();
        let learners: BTreeSet<NodeId> = (voter_count + 1..=voter_count + learner_count).collect();
        let mut cluster = Cluster {
            seed,
            rng: Rng::new(seed),
            now_ms: 0,
            voters: voters.clone(),
            max_append_entries: 1 + (seed % SIM_MAX_APPEND_ENTRIES as u64) as usize,
            max_uncommitted_entries: 64,
            nodes: BTreeMap::new(),
            in_flight: Vec::new(),
            seq: 0,
            group: BTreeMap::new(),
            faults: Faults::NONE,
            next_chaos_ms: 0,
            proposal_count: 0,
            steps: 0,
            trace: 0xcbf2_9ce4_8422_2325,
            counts: BTreeMap::new(),
            membership: false,
            leaders_by_term: BTreeMap::new(),
            committed: BTreeMap::new(),
            chain: BTreeMap::new(),
            written: BTreeMap::new(),
            committed_voters: BTreeMap::from([(0, voters.clone())]),
        };
        for id in voters.iter().chain(learners.iter()).copied() {
            let node = SimNode {
                raft: None,
                disk: Disk::default(),
                machine: StateMachine::default(),
                incarnation: 0,
            };
            cluster.nodes.insert(id, node);
            cluster.group.insert(id, 0);
        }
        // Only now: each node makes every other one a learner at start.
        for id in cluster.ids() {
            cluster.start(id);
        }
        cluster
    }

    fn config(&self, id: NodeId) -> RaftConfig {
        let mut config = RaftConfig::new(id, self.voters.clone());
        config.max_append_entries = self.max_append_entries;
        config.max_uncommitted_entries = self.max_uncommitted_entries;
        config.learner_lag_entries_max = SIM_LEARNER_LAG_ENTRIES_MAX;
        config
    }

    fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    fn live_ids(&self) -> Vec<NodeId> {
        let live = self.nodes.iter().filter(|(_, n)| n.raft.is_some());
        live.map(|(id, _)| *id).collect()
    }

    fn raft(&self, id: NodeId) -> &Raft {
        self.nodes[&id].raft.as_ref().expect("node is up")
    }

    fn raft_mut(&mut self, id: NodeId) -> &mut Raft {
        let node = self.nodes.get_mut(&id).expect("known node");
        node.raft.as_mut().expect("node is up")
    }

    /// The live leader of the highest term, if any.
    fn leader(&self) -> Option<NodeId> {
        let leaders = self.nodes.iter().filter_map(|(id, node)| {
            let raft = node.raft.as_ref()?;
            raft.is_leader().then_some((raft.term(), *id))
        });
        leaders.max().map(|(_, id)| id)
    }

    /// (Re)starts a node from its disk with the bootstrap voters; every other node is a
    /// learner to it unless its log says it votes (`add_learner` ignores voters).
    fn start(&mut self, id: NodeId) {
        let config = self.config(id);
        let learners: Vec<NodeId> = self.ids().into_iter().filter(|n| *n != id).collect();
        let now_ms = self.now_ms;
        let node = self.nodes.get_mut(&id).expect("known node");
        node.incarnation += 1;
        let seed = self.seed ^ (node.incarnation << 32) ^ id as u64;
        let mut raft = Raft::new(config, node.disk.persisted(), seed, now_ms)
            .unwrap_or_else(|e| panic!("node {id} cannot restart from its disk: {e}"));
        for learner in learners {
            raft.add_learner(learner);
        }
        node.raft = Some(raft);
        node.machine = StateMachine::default();
        self.process(id);
    }

    fn crash(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        node.raft = None;
        node.machine = StateMachine::default();
        self.mix(&[7, id as u64, self.now_ms]);
    }

    /// Drains the node's Ready and processes it as the contract says: writes, fsync,
    /// messages, snapshot, committed entries. Then checks everything.
    fn process(&mut self, id: NodeId) {
        let Some(raft) = self.nodes.get_mut(&id).and_then(|n| n.raft.as_mut()) else {
            return;
        };
        let ready = raft.ready();
        assert!(!raft.has_ready(), "ready() drains everything");
        if self.rng.chance(self.faults.crash_unsynced_per_mille) {
            // Crash after applying the writes, before the fsync: none of them survive.
            self.count("crash_unsynced");
            self.crash(id);
            return;
        }
        self.check_ready_bounds(id, &ready);
        let Ready {
            writes,
            messages,
            committed,
            snapshot,
        } = ready;
        for write in &writes {
            if let Write::Append(entries) = write {
                for entry in entries {
                    self.check_written(entry);
                }
            }
            self.nodes
                .get_mut(&id)
                .expect("known node")
                .disk
                .apply(write);
        }
        let new_leader = {
            let raft = self.raft(id);
            raft.is_leader() && !self.leaders_by_term.contains_key(&raft.term())
        };
        let crash_before_send_per_mille = if new_leader {
            self.faults.crash_new_leader_per_mille
        } else {
            self.faults.crash_before_send_per_mille
        };
        if self.rng.chance(crash_before_send_per_mille) {
            // Crash after the fsync, before sending: the writes survive, nothing else does.
            self.count("crash_before_send");
            self.crash(id);
            return;
        }
        // A leader that commits may crash right after applying, while the network loses
        // this Ready's messages: its followers never hear of the commit or of the entries
        // sent along, the moment where a wrongly committed old-term entry (Raft Figure 8)
        // can still be overwritten by a later leader.
        let crash_after_apply = !committed.is_empty()
            && self.raft(id).is_leader()
            && self
                .rng
                .chance(self.faults.crash_leader_after_commit_per_mille);
        if !crash_after_apply {
            self.check_only_voters_campaign(id, &messages);
            for (to, message) in messages {
                self.send(id, to, message);
            }
        }
        if let Some(snapshot) = snapshot {
            self.install_snapshot(id, &snapshot);
        }
        for entry in committed {
            self.apply_committed(id, entry);
        }
        self.check_node(id);
        if crash_after_apply {
            self.count("crash_after_commit");
            self.crash(id);
        }
    }

    fn check_ready_bounds(&self, id: NodeId, ready: &Ready) {
        let peer_count = self.nodes.len() - 1;
        let message_count_max = peer_count * (APPENDS_IN_FLIGHT_MAX as usize + 2);
        assert!(
            ready.messages.len() <= message_count_max,
            "node {id}: {} messages in one Ready",
            ready.messages.len()
        );
        for (to, message) in &ready.messages {
            assert_ne!(*to, id, "message to self");
            if let RaftMessage::Append { entries, .. } = message {
                assert!(entries.len() <= self.max_append_entries, "oversized append");
            }
        }
    }

    /// A node that may not campaign (outside its newest voter set, and not with its removal
    /// pending) never does. (It may grant votes: the candidate may know it as a voter
    /// before its own log does.)
    fn check_only_voters_campaign(&self, id: NodeId, messages: &[(NodeId, RaftMessage)]) {
        let raft = self.raft(id);
        for (_, message) in messages {
            let campaigns = matches!(
                message,
                RaftMessage::PreVote { .. } | RaftMessage::Vote { .. }
            );
            if campaigns {
                assert!(
                    raft.may_campaign(),
                    "learner {id} (voters {:?}) sent {message:?}",
                    raft.voters()
                );
            }
        }
    }

    fn check_written(&mut self, entry: &Entry) {
        let key = (entry.index, entry.term);
        match self.written.get(&key) {
            // Log matching: one (index, term) names one entry, everywhere and forever.
            Some(data) => assert_eq!(data, &entry.data, "two entries at {key:?}"),
            None => {
                self.written.insert(key, entry.data.clone());
            }
        }
    }

    fn install_snapshot(&mut self, id: NodeId, snapshot: &Snapshot) {
        let machine = StateMachine::from_image(&snapshot.data);
        assert_eq!(
            machine.applied_index, snapshot.last_index,
            "snapshot image index"
        );
        let expected = self.chain.get(&machine.applied_index);
        assert_eq!(
            expected,
            Some(&machine.hash),
            "snapshot of a divergent state machine"
        );
        let node = self.nodes.get_mut(&id).expect("known node");
        node.machine = machine;
        self.mix(&[5, id as u64, machine.applied_index]);
    }

    fn apply_committed(&mut self, id: NodeId, entry: Entry) {
        // State machine safety: every node commits the same entry at an index.
        match self.committed.get(&entry.index) {
            Some(known) => assert_eq!(known, &entry, "node {id}: different committed entry"),
            None => {
                self.committed.insert(entry.index, entry.clone());
                if entry.kind() == EntryKind::VoterSet {
                    self.commit_voter_set(&entry);
                }
            }
        }
        let node = self.nodes.get_mut(&id).expect("known node");
        node.machine.apply(&entry);
        let machine = node.machine;
        match self.chain.get(&machine.applied_index) {
            Some(hash) => assert_eq!(*hash, machine.hash, "node {id}: applied sequence differs"),
            None => {
                self.chain.insert(machine.applied_index, machine.hash);
            }
        }
        self.mix(&[3, id as u64, entry.index, entry.term]);
    }

    /// The oracle learns a newly committed voter set: it differs from the previous one by
    /// exactly one node (every entry below it was committed and seen before).
    fn commit_voter_set(&mut self, entry: &Entry) {
        let voters = entry.voter_set().expect("committed voter sets decode");
        let (_, previous) = self
            .committed_voters
            .range(..entry.index)
            .next_back()
            .expect("the bootstrap set is at 0");
        let added: Vec<NodeId> = voters.difference(previous).copied().collect();
        let removed: Vec<NodeId> = previous.difference(&voters).copied().collect();
        assert_eq!(
            added.len() + removed.len(),
            1,
            "voter set at {} changes more than one node: {previous:?} -> {voters:?}",
            entry.index
        );
        self.count(if added.is_empty() {
            "voter_removed"
        } else {
            "voter_added"
        });
        if removed.first() == self.leaders_by_term.get(&entry.term) {
            self.count("leader_removal_committed");
        }
        self.committed_voters.insert(entry.index, voters);
    }

    /// The committed voter set at `index` according to the oracle.
    fn oracle_voters_at(&self, index: u64) -> &BTreeSet<NodeId> {
        let (_, voters) = self
            .committed_voters
            .range(..=index)
            .next_back()
            .expect("the bootstrap set is at 0");
        voters
    }

    /// A node's voter set is the newest in its log, else the one at its snapshot; its
    /// committed set is the oracle's at its commit index.
    fn check_voters(&self, id: NodeId) {
        let raft = self.raft(id);
        assert_eq!(
            raft.committed_voters(),
            self.oracle_voters_at(raft.commit_index()),
            "node {id}: committed voters at {}",
            raft.commit_index()
        );
        let newest = (raft.snapshot_index() + 1..=raft.last_index())
            .rev()
            .filter_map(|index| raft.entry(index))
            .find(|entry| entry.kind() == EntryKind::VoterSet);
        let expected = match newest {
            Some(entry) => entry.voter_set().expect("logged voter sets decode"),
            None => self.oracle_voters_at(raft.snapshot_index()).clone(),
        };
        assert_eq!(raft.voters(), &expected, "node {id}: voters in force");
    }

    fn check_node(&mut self, id: NodeId) {
        let raft = self.raft(id);
        raft.invariants();
        assert!(raft.commit_index() >= self.nodes[&id].machine.applied_index);
        assert_eq!(raft.applied_index(), self.nodes[&id].machine.applied_index);
        if !raft.may_campaign() {
            assert_eq!(
                raft.role(),
                Role::Follower,
                "learner {id} left the follower role"
            );
        }
        if self.membership {
            self.check_voters(id);
            // Every node was made a learner at start and a leaving voter becomes one.
            for other in self.ids() {
                let raft = self.raft(id);
                let known = raft.voters().contains(&other) || raft.learners().contains(&other);
                assert!(other == id || known, "node {id} forgot node {other}");
            }
        }
        let raft = self.raft(id);
        if !raft.is_leader() {
            return;
        }
        let term = raft.term();
        match self.leaders_by_term.get(&term) {
            Some(leader) => assert_eq!(*leader, id, "two leaders in term {term}"),
            None => {
                // Leader completeness: a new leader holds every committed entry.
                let snapshot_index = raft.snapshot_index();
                for (index, entry) in self.committed.range(snapshot_index + 1..) {
                    assert_eq!(
                        raft.entry(*index),
                        Some(entry),
                        "leader {id} of term {term} lacks committed entry {index}"
                    );
                }
                assert!(raft.last_index() >= self.committed.keys().last().copied().unwrap_or(0));
                self.leaders_by_term.insert(term, id);
            }
        }
    }

    /// Log matching over every pair of live nodes: if two logs hold an entry with the same
    /// index and term, they are identical up to it.
    fn check_log_matching(&self) {
        let live = self.live_ids();
        for (position, a) in live.iter().enumerate() {
            for b in &live[position + 1..] {
                let (raft_a, raft_b) = (self.raft(*a), self.raft(*b));
                let from = raft_a.snapshot_index().max(raft_b.snapshot_index()) + 1;
                let to = raft_a.last_index().min(raft_b.last_index());
                let mut matched = false;
                for index in (from..=to).rev() {
                    let (entry_a, entry_b) = (raft_a.entry(index), raft_b.entry(index));
                    if matched {
                        assert_eq!(entry_a, entry_b, "logs of {a} and {b} differ at {index}");
                    } else if entry_a.map(|e| e.term) == entry_b.map(|e| e.term) {
                        matched = true;
                        assert_eq!(entry_a, entry_b, "logs of {a} and {b} differ at {index}");
                    }
                }
            }
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, message: RaftMessage) {
        self.count(kind(&message));
        if self.rng.chance(self.faults.loss_per_mille) {
            return;
        }
        let copies = if self.rng.chance(self.faults.duplicate_per_mille) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay_ms = if self.rng.chance(self.faults.long_delay_per_mille) {
                1 + self.rng.below(self.faults.long_delay_ms_max.max(1))
            } else {
                1 + self.rng.below(self.faults.delay_ms_max)
            };
            self.seq += 1;
            self.in_flight.push(Envelope {
                deliver_at_ms: self.now_ms + delay_ms,
                seq: self.seq,
                from,
                to,
                message: message.clone(),
            });
        }
    }

    fn deliver(&mut self, envelope: Envelope) {
        let Envelope {
            from, to, message, ..
        } = envelope;
        if self.group[&from] != self.group[&to] {
            return;
        }
        let now_ms = self.now_ms;
        if self.nodes[&to].raft.is_none() {
            return;
        }
        self.mix(&[1, from as u64, to as u64, now_ms, message.term()]);
        if std::env::var("RAFT_TRACE").is_ok() {
            eprintln!("{now_ms} {from}->{to} {message:?}");
        }
        self.raft_mut(to).step(now_ms, from, message);
        self.process(to);
    }

    fn tick(&mut self, id: NodeId) {
        let now_ms = self.now_ms;
        self.raft_mut(id).tick(now_ms);
        self.process(id);
        if let Some(raft) = self.nodes[&id].raft.as_ref() {
            assert!(
                raft.next_deadline_ms() > now_ms,
                "node {id}: deadline did not move"
            );
        }
    }

    /// Runs the next event: the earliest message, node deadline or chaos action.
    fn step(&mut self, chaos: bool) {
        self.steps += 1;
        let message = self
            .in_flight
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| (e.deliver_at_ms, e.seq));
        let message = message.map(|(position, e)| (e.deliver_at_ms, position));
        let deadlines = self.nodes.iter().filter_map(|(id, node)| {
            node.raft
                .as_ref()
                .map(|r| (r.next_deadline_ms().max(self.now_ms), *id))
        });
        let tick = deadlines.min();
        let chaos_at_ms = if chaos {
            self.next_chaos_ms.max(self.now_ms)
        } else {
            u64::MAX
        };
        let message_at_ms = message.map_or(u64::MAX, |(at, _)| at);
        let tick_at_ms = tick.map_or(u64::MAX, |(at, _)| at);
        let at_ms = message_at_ms.min(tick_at_ms).min(chaos_at_ms);
        assert!(at_ms < u64::MAX, "nothing left to happen");
        self.now_ms = self.now_ms.max(at_ms);
        if let Some((_, position)) = message.filter(|(at, _)| *at == at_ms) {
            let envelope = self.in_flight.swap_remove(position);
            self.deliver(envelope);
        } else if let Some((_, id)) = tick.filter(|(at, _)| *at == at_ms) {
            self.tick(id);
        } else {
            self.next_chaos_ms = self.now_ms + 5 + self.rng.below(45);
            self.chaos_action();
        }
        if self.steps.is_multiple_of(LOG_MATCHING_EVERY_STEPS) {
            self.check_log_matching();
        }
    }

    fn run_until(&mut self, until_ms: u64, chaos: bool) {
        while self.now_ms < until_ms {
            self.step(chaos);
        }
    }

    fn run_for(&mut self, duration_ms: u64) {
        self.run_until(self.now_ms + duration_ms, false);
    }

    fn chaos_action(&mut self) {
        let roll = self.rng.below(1000);
        let live = self.live_ids();
        let down: Vec<NodeId> = self
            .ids()
            .into_iter()
            .filter(|id| !live.contains(id))
            .collect();
        match roll {
            0..=449 => {
                // Mostly at the leader (client retries find it), sometimes anywhere.
                let target = match self.leader() {
                    Some(leader) if self.rng.chance(800) => Some(leader),
                    _ => self.rng.pick(&live),
                };
                if let Some(id) = target {
                    self.propose(id);
                }
            }
            450..=469 => {
                if let Some(id) = self.rng.pick(&live) {
                    self.count("crash");
                    self.crash(id);
                }
            }
            470..=599 => {
                if let Some(id) = self.rng.pick(&down) {
                    self.start(id);
                }
            }
            600..=619 => {
                for id in self.ids() {
                    let group = self.rng.below(2);
                    self.group.insert(id, group);
                }
            }
            620..=634 => {
                if let Some(leader) = self.leader() {
                    self.isolate(leader);
                }
            }
            635..=699 => self.heal(),
            700..=759 => {
                if let Some(id) = self.rng.pick(&live) {
                    self.compact(id);
                }
            }
            760..=809 if self.membership => self.change_voters(),
            _ => {}
        }
    }

    /// At the leader (if any): adds a random non-voter or removes a random voter, itself
    /// included, and tallies refusals by kind.
    fn change_voters(&mut self) {
        let Some(leader) = self.leader() else {
            return;
        };
        let voters = self.raft(leader).voters().clone();
        let others: Vec<NodeId> = self
            .ids()
            .into_iter()
            .filter(|id| !voters.contains(id))
            .collect();
        let add = !others.is_empty() && (voters.len() <= 1 || self.rng.chance(500));
        let result = if add {
            let id = self.rng.pick(&others).expect("non-empty");
            self.raft_mut(leader).propose_add_voter(id)
        } else {
            let ids: Vec<NodeId> = voters.iter().copied().collect();
            let id = self.rng.pick(&ids).expect("a voter set is non-empty");
            if id == leader {
                self.count("remove_leader_proposed");
            }
            self.raft_mut(leader).propose_remove_voter(id)
        };
        match result {
            Ok(index) => {
                let raft = self.raft(leader);
                assert_eq!(
                    raft.entry(index).map(Entry::kind),
                    Some(EntryKind::VoterSet)
                );
                assert_ne!(raft.voters(), &voters, "the new set is in force at once");
                self.count("voters_change_proposed");
            }
            Err(error) => self.count(change_error_kind(&error)),
        }
        self.process(leader);
    }

    fn propose(&mut self, id: NodeId) -> Option<u64> {
        self.proposal_count += 1;
        let data = format!("seed{}-p{}", self.seed, self.proposal_count).into_bytes();
        let result = self.raft_mut(id).propose(data);
        let index = match result {
            Ok(index) => Some(index),
            Err(ProposeError::NotLeader(not_leader)) => {
                self.count("not_leader");
                assert!(!self.raft(id).is_leader());
                assert_ne!(not_leader.leader, Some(id));
                None
            }
            Err(ProposeError::Throttled { uncommitted_count }) => {
                self.count("throttled");
                // A new leader may inherit more uncommitted entries than it would accept.
                assert!(uncommitted_count >= self.max_uncommitted_entries as u64);
                None
            }
        };
        self.process(id);
        index
    }

    fn compact(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        let machine = node.machine;
        if let Some(raft) = node.raft.as_mut() {
            raft.compact(machine.applied_index, machine.image());
            self.process(id);
        }
    }

    fn isolate(&mut self, id: NodeId) {
        self.group.insert(id, 100 + id as u64);
    }

    fn heal(&mut self) {
        for group in self.group.values_mut() {
            *group = 0;
        }
    }

    /// One line per node: role, term, indexes, state machine.
    fn describe(&self) -> String {
        let mut lines = Vec::new();
        for (id, node) in &self.nodes {
            let line = match node.raft.as_ref() {
                Some(raft) => format!(
                    "node {id}: {:?} term={} leader={:?} voters={:?} committed_voters={:?} \
                     learners={:?} snapshot={} applied={} commit={} last={} machine={}",
                    raft.role(),
                    raft.term(),
                    raft.leader(),
                    raft.voters(),
                    raft.committed_voters(),
                    raft.learners(),
                    raft.snapshot_index(),
                    raft.applied_index(),
                    raft.commit_index(),
                    raft.last_index(),
                    node.machine.applied_index,
                ),
                None => format!("node {id}: down"),
            };
            lines.push(line);
        }
        lines.join("\n")
    }

    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }

    fn mix(&mut self, values: &[u64]) {
        for value in values {
            self.trace = fnv(self.trace, &value.to_le_bytes());
        }
    }

    /// Heals the network, restarts every node and stops faults; then a leader must commit a
    /// fresh entry and every node (learners too) must apply it in bounded simulated time.
    fn check_liveness(&mut self) {
        self.faults = Faults::NONE;
        self.heal();
        for id in self.ids() {
            if self.nodes[&id].raft.is_none() {
                self.start(id);
            }
        }
        let deadline_ms = self.now_ms + LIVENESS_MS_MAX;
        let mut markers: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut marker_term = 0;
        loop {
            self.run_for(50);
            if let Some(leader) = self.leader() {
                let term = self.raft(leader).term();
                if term != marker_term {
                    let data = format!("live-{}", markers.len()).into_bytes();
                    if let Ok(index) = self.raft_mut(leader).propose(data.clone()) {
                        markers.push((index, data));
                        marker_term = term;
                    }
                    self.process(leader);
                }
            }
            let done = markers.iter().any(|(index, data)| {
                self.committed.get(index).is_some_and(|e| &e.data == data)
                    && self
                        .nodes
                        .values()
                        .all(|n| n.machine.applied_index >= *index)
            });
            if done {
                break;
            }
            assert!(
                self.now_ms < deadline_ms,
                "no progress within {LIVENESS_MS_MAX} ms after healing: leader={:?}\n{}",
                self.leader(),
                self.describe()
            );
        }
        self.check_log_matching();
        // Every node holds the same state (hash chain) at its applied index.
        for (id, node) in &self.nodes {
            let index = node.machine.applied_index;
            assert_eq!(
                self.chain.get(&index),
                Some(&node.machine.hash),
                "node {id} state"
            );
        }
    }
}

fn change_error_kind(error: &ChangeVotersError) -> &'static str {
    match error {
        ChangeVotersError::NotLeader(_) => "change_not_leader",
        ChangeVotersError::LeaderNotReady { .. } => "change_leader_not_ready",
        ChangeVotersError::ChangeInProgress { .. } => "change_in_progress",
        ChangeVotersError::Throttled { .. } => "change_throttled",
        ChangeVotersError::AlreadyVoter { .. } => "change_already_voter",
        ChangeVotersError::UnknownLearner { .. } => "change_unknown_learner",
        ChangeVotersError::LearnerLagging { .. } => "change_learner_lagging",
        ChangeVotersError::TooManyVoters => "change_too_many_voters",
        ChangeVotersError::NotVoter { .. } => "change_not_voter",
        ChangeVotersError::LastVoter { .. } => "change_last_voter",
    }
}

fn kind(message: &RaftMessage) -> &'static str {
    match message {
        RaftMessage::PreVote { .. } => "PreVote",
        RaftMessage::PreVoteResponse { .. } => "PreVoteResponse",
        RaftMessage::Vote { .. } => "Vote",
        RaftMessage::VoteResponse { .. } => "VoteResponse",
        RaftMessage::Append { .. } => "Append",
        RaftMessage::AppendResponse { .. } => "AppendResponse",
        RaftMessage::InstallSnapshot { .. } => "InstallSnapshot",
        RaftMessage::InstallSnapshotResponse { .. } => "InstallSnapshotResponse",
    }
}

/// The shape of one simulation.
#[derive(Debug, Clone, Copy)]
struct Setup {
    voter_count: i32,
    learner_count: i32,
    /// Chaos adds and removes voters too.
    membership: bool,
}

impl Setup {
    fn fixed(voter_count: i32) -> Setup {
        Setup {
            voter_count,
            learner_count: 1,
            membership: false,
        }
    }

    fn membership(voter_count: i32, learner_count: i32) -> Setup {
        Setup {
            voter_count,
            learner_count,
            membership: true,
        }
    }
}

/// One seed: chaos, then heal and require progress. Returns the trace hash.
fn simulate(seed: u64, setup: Setup) -> (u64, Cluster) {
    let mut cluster = Cluster::new(seed, setup.voter_count, setup.learner_count);
    cluster.membership = setup.membership;
    cluster.faults = Faults::chaos(&mut cluster.rng);
    cluster.run_until(CHAOS_MS, true);
    cluster.check_liveness();
    (cluster.trace, cluster)
}

fn simulate_seeds(setup: Setup, seeds: std::ops::Range<u64>) -> BTreeMap<&'static str, u64> {
    let seeds: Vec<u64> = match std::env::var("RAFT_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => seeds_override().unwrap_or(seeds).collect(),
    };
    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    for seed in seeds {
        let result = catch_unwind(AssertUnwindSafe(|| simulate(seed, setup)));
        let Ok((_, cluster)) = result else {
            panic!(
                "seed={seed} {setup:?} failed; replay: \
                 RAFT_SEED={seed} cargo test -p weir-core --test it raft::"
            );
        };
        for (what, count) in &cluster.counts {
            *totals.entry(what).or_default() += count;
        }
        *totals.entry("elections").or_default() += cluster.leaders_by_term.len() as u64;
        *totals.entry("committed").or_default() += cluster.committed.len() as u64;
        *totals.entry("steps").or_default() += cluster.steps;
    }
    eprintln!("{setup:?} totals: {totals:?}");
    // The faults must actually exercise what they are meant to (over many seeds).
    let replay = std::env::var("RAFT_SEED").is_ok();
    for what in [
        "elections",
        "InstallSnapshot",
        "crash",
        "crash_unsynced",
        "committed",
    ] {
        assert!(
            replay || totals.get(what).copied().unwrap_or(0) > 0,
            "never exercised: {what}"
        );
    }
    totals
}

/// `RAFT_SEEDS=a..b` runs every simulation over seeds `a..b` instead (longer soaks).
fn seeds_override() -> Option<std::ops::Range<u64>> {
    let value = std::env::var("RAFT_SEEDS").ok()?;
    let (start, end) = value.split_once("..")?;
    Some(start.parse().ok()?..end.parse().ok()?)
}

/// Asserts that the membership simulations exercised what they are meant to.
fn assert_exercised(totals: &BTreeMap<&'static str, u64>, whats: &[&str]) {
    if std::env::var("RAFT_SEED").is_ok() {
        return; // One seed need not exercise everything.
    }
    for what in whats {
        assert!(
            totals.get(what).copied().unwrap_or(0) > 0,
            "never exercised: {what}"
        );
    }
}

// ---- simulations ----

/// Goal: safety and liveness of 3 voters + 1 learner under every fault, over many seeds.
#[test]
fn simulate_three_voters_and_a_learner() {
    simulate_seeds(Setup::fixed(3), 0..400);
}

/// Goal: the same with 5 voters + 1 learner (minority/majority splits of a bigger group).
#[test]
fn simulate_five_voters_and_a_learner() {
    simulate_seeds(Setup::fixed(5), 1000..1250);
}

/// Goal: safety and liveness while voters are added and removed at random (leaders too)
/// amid every fault. Method: 3 bootstrap voters + 2 learners, so the voter set ranges over
/// 1..=5 members; the oracle checks each committed set against the previous one and every
/// node's sets against its log after every step.
#[test]
fn simulate_membership_changes_from_three_voters() {
    let totals = simulate_seeds(Setup::membership(3, 2), 2000..2400);
    assert_exercised(
        &totals,
        &[
            "voter_added",
            "voter_removed",
            "leader_removal_committed",
            "change_in_progress",
            "change_learner_lagging",
        ],
    );
}

/// Goal: the same from 4 bootstrap voters + 2 learners: even-sized sets are where two sets
/// one change away from a common one can have disjoint majorities (the single-server bug).
#[test]
fn simulate_membership_changes_from_four_voters() {
    let totals = simulate_seeds(Setup::membership(4, 2), 4000..4200);
    assert_exercised(&totals, &["voter_added", "voter_removed"]);
}

/// Goal: the same from a single bootstrap voter (growing 1 -> 2 and shrinking 2 -> 1, where
/// one node's absence stops the group).
#[test]
fn simulate_membership_changes_from_one_voter() {
    let totals = simulate_seeds(Setup::membership(1, 3), 3000..3200);
    assert_exercised(
        &totals,
        &["voter_added", "voter_removed", "leader_removal_committed"],
    );
}

/// Goal: a run is a function of its seed (replays are exact). Method: run one seed twice
/// and compare the trace hashes, with and without membership changes.
#[test]
fn simulation_is_deterministic() {
    for setup in [Setup::fixed(3), Setup::membership(3, 2)] {
        let (first, _) = simulate(42, setup);
        let (second, _) = simulate(42, setup);
        assert_eq!(first, second, "{setup:?}");
    }
}

// ---- focused tests on a fault-free cluster ----

fn elect(cluster: &mut Cluster) -> NodeId {
    let deadline_ms = cluster.now_ms + 10_000;
    while cluster.now_ms < deadline_ms {
        cluster.run_for(100);
        if let Some(leader) = cluster.leader() {
            return leader;
        }
    }
    panic!("no leader elected");
}

/// Goal: a partitioned node rejoining does not disrupt a healthy leader. Method: isolate a
/// follower for many election timeouts; pre-vote keeps its term, so after healing the
/// same leader stays in the same term.
#[test]
fn pre_vote_keeps_a_rejoining_node_from_disrupting_the_leader() {
    let mut cluster = Cluster::new(1, 3, 0);
    let leader = elect(&mut cluster);
    let term = cluster.raft(leader).term();
    let follower = *cluster
        .voters
        .iter()
        .find(|id| **id != leader)
        .expect("a follower");
    cluster.isolate(follower);
    cluster.run_for(15_000);
    assert_eq!(
        cluster.raft(follower).term(),
        term,
        "pre-vote must not bump the term"
    );
    assert!(cluster.counts.get("PreVote").copied().unwrap_or(0) > 0);
    cluster.heal();
    cluster.run_for(3_000);
    assert_eq!(cluster.leader(), Some(leader));
    assert_eq!(cluster.raft(leader).term(), term);
    assert_eq!(cluster.raft(follower).leader(), Some(leader));
}

/// Goal: check-quorum. Method: isolate the leader; within two election timeouts it steps
/// down, and the majority elects a new leader in a higher term.
#[test]
fn check_quorum_deposes_an_isolated_leader() {
    let mut cluster = Cluster::new(2, 3, 1);
    let leader = elect(&mut cluster);
    let term = cluster.raft(leader).term();
    cluster.isolate(leader);
    cluster.run_for(2 * 1000 + 100);
    assert!(
        !cluster.raft(leader).is_leader(),
        "isolated leader still leads"
    );
    cluster.run_for(5_000);
    let new_leader = cluster.leader().expect("the majority elects a leader");
    assert_ne!(new_leader, leader);
    assert!(cluster.raft(new_leader).term() > term);
    let index = cluster.propose(new_leader).expect("new leader accepts");
    cluster.run_for(1_000);
    assert!(cluster.raft(new_leader).commit_index() >= index);
}

/// Goal: leader stickiness. Method: a follower that just heard from its leader ignores a
/// vote request for a higher term (no term bump, no answer); after the lease it grants.
#[test]
fn followers_in_lease_ignore_vote_requests() {
    let mut cluster = Cluster::new(3, 3, 0);
    let leader = elect(&mut cluster);
    cluster.run_for(500);
    let term = cluster.raft(leader).term();
    let follower = *cluster
        .voters
        .iter()
        .find(|id| **id != leader)
        .expect("a follower");
    let candidate = *cluster
        .voters
        .iter()
        .find(|id| **id != leader && **id != follower)
        .expect("third");
    let now_ms = cluster.now_ms;
    let raft = cluster.raft_mut(follower);
    let vote = RaftMessage::Vote {
        term: term + 1,
        last_index: 1_000,
        last_term: term,
    };
    raft.step(now_ms, candidate, vote.clone());
    assert_eq!(raft.term(), term);
    assert!(
        raft.ready().messages.is_empty(),
        "a follower in lease stays silent"
    );
    raft.step(now_ms + 5_000, candidate, vote);
    assert_eq!(raft.term(), term + 1);
    let messages = raft.ready().messages;
    let granted = RaftMessage::VoteResponse {
        term: term + 1,
        granted: true,
    };
    assert_eq!(messages, vec![(candidate, granted)]);
}

/// Goal: a lagging node catches up through InstallSnapshot. Method: isolate a follower,
/// commit entries, compact every other node, heal; the follower must receive a snapshot
/// and end with the same state machine.
#[test]
fn lagging_follower_catches_up_with_a_snapshot() {
    let mut cluster = Cluster::new(4, 3, 1);
    let leader = elect(&mut cluster);
    let lagging = *cluster
        .voters
        .iter()
        .find(|id| **id != leader)
        .expect("a follower");
    cluster.isolate(lagging);
    for _ in 0..20 {
        cluster.propose(leader).expect("leader accepts");
        cluster.run_for(20);
    }
    cluster.run_for(500);
    for id in cluster.ids() {
        if id != lagging {
            cluster.compact(id);
        }
    }
    assert!(cluster.raft(leader).snapshot_index() >= 20);
    cluster.heal();
    cluster.run_for(3_000);
    assert!(cluster.counts.get("InstallSnapshot").copied().unwrap_or(0) > 0);
    assert!(cluster.raft(lagging).snapshot_index() >= 20);
    let leader_machine = cluster.nodes[&leader].machine;
    for (id, node) in &cluster.nodes {
        assert_eq!(node.machine, leader_machine, "node {id}");
    }
}

/// Goal: a node restarted from disk keeps its committed state and its vote. Method: commit
/// entries, crash and restart every node, then check that the cluster re-elects and that
/// the previous entries are re-applied unchanged.
#[test]
fn committed_entries_survive_a_full_restart() {
    let mut cluster = Cluster::new(5, 3, 1);
    let leader = elect(&mut cluster);
    for _ in 0..5 {
        cluster.propose(leader).expect("leader accepts");
    }
    cluster.run_for(1_000);
    let before = cluster.nodes[&leader].machine;
    for id in cluster.ids() {
        cluster.crash(id);
    }
    for id in cluster.ids() {
        cluster.start(id);
    }
    let leader = elect(&mut cluster);
    cluster.propose(leader).expect("leader accepts");
    cluster.run_for(1_000);
    for node in cluster.nodes.values() {
        assert!(node.machine.applied_index > before.applied_index);
    }
    assert_eq!(cluster.chain.get(&before.applied_index), Some(&before.hash));
}

// ---- membership scenarios on a fault-free cluster ----

/// A cluster whose oracle also checks every node's voter sets after every step.
fn membership_cluster(seed: u64, voter_count: i32, learner_count: i32) -> Cluster {
    let mut cluster = Cluster::new(seed, voter_count, learner_count);
    cluster.membership = true;
    cluster
}

/// Runs one event at a time until a live node leads in a term above `term`.
fn run_until_leader_after(cluster: &mut Cluster, term: u64) -> NodeId {
    let deadline_ms = cluster.now_ms + 10_000;
    while cluster.now_ms < deadline_ms {
        cluster.step(false);
        if let Some(leader) = cluster.leader() {
            if cluster.raft(leader).term() > term {
                return leader;
            }
        }
    }
    panic!("no leader after term {term}\n{}", cluster.describe());
}

fn all_voters_are(cluster: &Cluster, expected: &[NodeId]) -> bool {
    let expected = voters(expected);
    let live = cluster.live_ids();
    live.iter().all(|id| {
        let raft = cluster.raft(*id);
        raft.voters() == &expected && raft.committed_voters() == &expected
    })
}

/// Goal: a caught-up learner becomes a voter and its acknowledgement is then needed for a
/// majority. Method: 3 voters + learner 4; add 4 and wait for every node to use and commit
/// {1, 2, 3, 4}; crash one old follower, so the three left must all acknowledge: with 4
/// isolated nothing commits, once it is back the entry commits.
#[test]
fn adds_a_caught_up_learner_as_a_voter() {
    let mut cluster = membership_cluster(11, 3, 1);
    let leader = elect(&mut cluster);
    cluster.propose(leader).expect("leader accepts");
    cluster.run_for(500);
    assert!(
        !cluster.raft(4).may_campaign(),
        "a learner does not campaign"
    );
    let index = cluster
        .raft_mut(leader)
        .propose_add_voter(4)
        .expect("4 is caught up");
    assert_eq!(cluster.raft(leader).voters(), &voters(&[1, 2, 3, 4]));
    assert_eq!(cluster.raft(leader).committed_voters(), &voters(&[1, 2, 3]));
    cluster.process(leader);
    cluster.run_for(500);
    assert!(cluster.raft(leader).commit_index() >= index);
    assert!(
        all_voters_are(&cluster, &[1, 2, 3, 4]),
        "{}",
        cluster.describe()
    );
    assert!(cluster.raft(4).may_campaign());
    assert_ne!(cluster.raft(4).next_deadline_ms(), u64::MAX);
    let follower = *cluster
        .voters
        .iter()
        .find(|id| **id != leader)
        .expect("a follower");
    cluster.crash(follower);
    cluster.isolate(4);
    let index = cluster.propose(leader).expect("leader accepts");
    cluster.run_for(500);
    assert!(cluster.raft(leader).commit_index() < index, "3 of 4 needed");
    cluster.heal();
    cluster.run_for(500);
    assert!(cluster.raft(leader).commit_index() >= index);
}

/// Goal: only a caught-up learner is added. Method: isolate learner 4 while the leader
/// commits more than `learner_lag_entries_max` entries: refused as lagging; after healing
/// and catching up: accepted.
#[test]
fn refuses_to_add_a_lagging_learner_until_it_catches_up() {
    let mut cluster = membership_cluster(12, 3, 1);
    let leader = elect(&mut cluster);
    cluster.isolate(4);
    for _ in 0..2 * SIM_LEARNER_LAG_ENTRIES_MAX {
        cluster.propose(leader).expect("leader accepts");
        cluster.run_for(10);
    }
    cluster.run_for(200);
    let refused = cluster.raft_mut(leader).propose_add_voter(4);
    assert!(
        matches!(refused, Err(ChangeVotersError::LearnerLagging { id: 4, match_index, last_index })
            if last_index - match_index > SIM_LEARNER_LAG_ENTRIES_MAX),
        "{refused:?}"
    );
    cluster.heal();
    cluster.run_for(1_000);
    cluster
        .raft_mut(leader)
        .propose_add_voter(4)
        .expect("4 caught up");
    cluster.process(leader);
    cluster.run_for(500);
    assert!(
        all_voters_are(&cluster, &[1, 2, 3, 4]),
        "{}",
        cluster.describe()
    );
}

/// Goal: a removed follower becomes a learner: it stops campaigning, even cut off for many
/// election timeouts, and keeps receiving the log. Method: remove a follower, isolate it
/// for 10 s (the harness asserts that nodes outside their voter sets never send
/// (pre-)votes), heal, and check it applies a later entry.
#[test]
fn removed_follower_becomes_a_learner() {
    let mut cluster = membership_cluster(13, 3, 0);
    let leader = elect(&mut cluster);
    let removed = *cluster
        .voters
        .iter()
        .find(|id| **id != leader)
        .expect("a follower");
    cluster
        .raft_mut(leader)
        .propose_remove_voter(removed)
        .expect("a voter");
    cluster.process(leader);
    cluster.run_for(500);
    let rest: Vec<NodeId> = cluster
        .voters
        .iter()
        .copied()
        .filter(|id| *id != removed)
        .collect();
    assert!(all_voters_are(&cluster, &rest), "{}", cluster.describe());
    let raft = cluster.raft(removed);
    assert!(!raft.may_campaign());
    assert_eq!(raft.next_deadline_ms(), u64::MAX);
    let term = raft.term();
    cluster.isolate(removed);
    cluster.run_for(10_000);
    assert_eq!(cluster.raft(removed).term(), term);
    assert_eq!(cluster.raft(removed).role(), Role::Follower);
    assert_eq!(cluster.leader(), Some(leader), "the rest keeps its leader");
    cluster.heal();
    let index = cluster.propose(leader).expect("leader accepts");
    cluster.run_for(1_000);
    assert!(cluster.nodes[&removed].machine.applied_index >= index);
}

/// Goal: a leader that removes itself leads until the removal commits, then steps down, and
/// the rest elects a leader among themselves. Method: remove the leader; right after the
/// proposal it still leads under the new set; after the commit it follows as a learner, a
/// new leader takes over in a higher term, and the removed node applies its entries.
#[test]
fn removed_leader_steps_down_after_the_removal_commits() {
    let mut cluster = membership_cluster(14, 3, 0);
    let leader = elect(&mut cluster);
    let term = cluster.raft(leader).term();
    let index = cluster
        .raft_mut(leader)
        .propose_remove_voter(leader)
        .expect("the leader is a voter");
    let raft = cluster.raft(leader);
    assert!(raft.is_leader(), "leads until the removal commits");
    assert!(!raft.voters().contains(&leader));
    assert!(raft.committed_voters().contains(&leader));
    cluster.process(leader);
    cluster.run_for(200);
    let raft = cluster.raft(leader);
    assert!(raft.commit_index() >= index);
    assert!(!raft.is_leader(), "steps down once the removal commits");
    assert!(!raft.may_campaign());
    let new_leader = elect(&mut cluster);
    assert_ne!(new_leader, leader);
    assert!(cluster.raft(new_leader).term() > term);
    let rest: Vec<NodeId> = cluster
        .voters
        .iter()
        .copied()
        .filter(|id| *id != leader)
        .collect();
    let index = cluster.propose(new_leader).expect("new leader accepts");
    cluster.run_for(1_000);
    assert!(all_voters_are(&cluster, &rest), "{}", cluster.describe());
    assert!(cluster.nodes[&leader].machine.applied_index >= index);
}

/// Goal: the dissertation's single-server bug cannot happen: a new leader must commit an
/// entry of its term before changing the voter set. Method: voters {a, b, c, d}; leader a
/// proposes removing b while isolated, so only a holds C1 = {a, c, d}. A new leader L2 is
/// elected among b, c, d, and z (in C1, not L2) is cut off at once, before any entry of the
/// new term reaches it. L2 is refused to remove a (which would give C2 = {b, c, d}, whose
/// majority {L2, y} is disjoint from C1's {a, z}), and commits nothing without z. Finally
/// a and z meet apart from L2 and y: a is elected under C1, and the oracle checks that no
/// committed entry is lost. Without the rule, L2 commits under C2 and a, elected under C1,
/// lacks that entry (leader completeness fails).
#[test]
fn new_leader_changes_voters_only_after_committing_in_its_term() {
    let mut cluster = membership_cluster(15, 4, 0);
    let a = elect(&mut cluster);
    cluster.propose(a).expect("leader accepts");
    cluster.run_for(500);
    let others: Vec<NodeId> = cluster.ids().into_iter().filter(|id| *id != a).collect();
    let (b, c, d) = (others[0], others[1], others[2]);
    cluster.isolate(a);
    cluster
        .raft_mut(a)
        .propose_remove_voter(b)
        .expect("settled");
    cluster.process(a);
    let term = cluster.raft(a).term();
    let l2 = run_until_leader_after(&mut cluster, term);
    assert!([b, c, d].contains(&l2));
    let z = if l2 == c { d } else { c };
    let y = *[b, c, d]
        .iter()
        .find(|id| **id != l2 && **id != z)
        .expect("three nodes");
    cluster.isolate(z);
    let refused = cluster.raft_mut(l2).propose_remove_voter(a);
    assert!(
        matches!(refused, Err(ChangeVotersError::LeaderNotReady { .. })),
        "{refused:?}"
    );
    cluster.process(l2);
    cluster.propose(l2);
    cluster.run_for(3_000);
    for (id, group) in [(a, 7), (z, 7), (l2, 8), (y, 8)] {
        cluster.group.insert(id, group);
    }
    cluster.run_for(5_000);
    assert!(cluster.raft(a).is_leader(), "{}", cluster.describe());
    cluster.check_liveness();
}

/// Goal: a node votes even before its log says it is a voter. Method: bootstrap voter 1
/// adds learner 2, which is isolated right after, so only 1 holds {1, 2}; check-quorum
/// deposes 1, which must then win 2's vote (2 still sees itself as a learner) to commit
/// the change. Refusing would deadlock the group for good.
#[test]
fn added_voter_votes_before_it_holds_its_addition() {
    let mut cluster = membership_cluster(16, 1, 1);
    let leader = elect(&mut cluster);
    assert_eq!(leader, 1);
    cluster.propose(leader).expect("leader accepts");
    cluster.run_for(500);
    cluster.isolate(2);
    cluster
        .raft_mut(1)
        .propose_add_voter(2)
        .expect("2 is caught up");
    cluster.process(1);
    cluster.run_for(3_000);
    assert!(!cluster.raft(1).is_leader(), "check-quorum deposes 1");
    assert_eq!(cluster.raft(2).voters(), &voters(&[1]));
    cluster.heal();
    cluster.run_for(5_000);
    assert_eq!(cluster.leader(), Some(1), "{}", cluster.describe());
    assert!(all_voters_are(&cluster, &[1, 2]), "{}", cluster.describe());
}

/// Goal: a node whose removal is not committed campaigns to finish it. Method: voters
/// {1, 2}; the leader removes itself while the other voter is isolated, so only it holds
/// {other}, and check-quorum deposes it. The other voter alone cannot win (the removed
/// node's log is ahead), so the removed node must be elected under the new set, commit the
/// removal and step down; then the other voter leads alone.
#[test]
fn node_with_uncommitted_removal_is_elected_to_commit_it() {
    let mut cluster = membership_cluster(17, 2, 0);
    let leader = elect(&mut cluster);
    let other = 3 - leader;
    cluster.isolate(other);
    cluster
        .raft_mut(leader)
        .propose_remove_voter(leader)
        .expect("a voter");
    cluster.process(leader);
    let term = cluster.raft(leader).term();
    cluster.run_for(3_000);
    assert!(!cluster.raft(leader).is_leader(), "check-quorum deposes it");
    assert!(
        cluster.raft(leader).may_campaign(),
        "its removal is uncommitted"
    );
    cluster.heal();
    cluster.run_for(10_000);
    assert_eq!(cluster.leader(), Some(other), "{}", cluster.describe());
    let removed_led = cluster
        .leaders_by_term
        .iter()
        .any(|(t, id)| *t > term && *id == leader);
    assert!(removed_led, "the removed node finished its removal");
    assert!(all_voters_are(&cluster, &[other]), "{}", cluster.describe());
    assert!(!cluster.raft(leader).may_campaign());
}

/// Goal: the same after a restart, when the node's commit index (and the voter set at it)
/// lags far behind: whether its removal is pending is read from the log, not from the
/// commit index. Method: bootstrap voter 1 adds 2 and 3, then removes itself; the new
/// leader removes itself while the other voter is isolated, is deposed and restarts
/// (its commit index falls to 0, where the set is {1}). It must still be elected under
/// the new set to commit its removal.
#[test]
fn restarted_node_with_uncommitted_removal_is_elected_to_commit_it() {
    let mut cluster = membership_cluster(18, 1, 2);
    elect(&mut cluster);
    for id in [2, 3] {
        cluster.run_for(500);
        cluster
            .raft_mut(1)
            .propose_add_voter(id)
            .expect("caught up");
        cluster.process(1);
    }
    cluster.run_for(500);
    cluster
        .raft_mut(1)
        .propose_remove_voter(1)
        .expect("settled");
    cluster.process(1);
    let leader = elect(&mut cluster);
    cluster.run_for(500);
    assert!(all_voters_are(&cluster, &[2, 3]), "{}", cluster.describe());
    let other = 5 - leader;
    cluster.isolate(other);
    cluster
        .raft_mut(leader)
        .propose_remove_voter(leader)
        .expect("settled");
    cluster.process(leader);
    cluster.run_for(3_000);
    assert!(!cluster.raft(leader).is_leader(), "check-quorum deposes it");
    cluster.crash(leader);
    cluster.start(leader);
    let raft = cluster.raft(leader);
    assert_eq!(raft.commit_index(), 0);
    assert_eq!(raft.committed_voters(), &voters(&[1]));
    assert!(raft.may_campaign(), "its removal is pending in its log");
    cluster.heal();
    cluster.run_for(10_000);
    assert_eq!(cluster.leader(), Some(other), "{}", cluster.describe());
    assert!(all_voters_are(&cluster, &[other]), "{}", cluster.describe());
}

// ---- unit tests on single nodes ----

fn voters(ids: &[NodeId]) -> BTreeSet<NodeId> {
    ids.iter().copied().collect()
}

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        term,
        index,
        data: vec![index as u8],
    }
}

/// Goal: a single-voter group elects itself at its first tick and commits alone, also
/// after a restart from its writes.
#[test]
fn single_voter_elects_itself_and_commits_alone() {
    let config = RaftConfig::new(1, voters(&[1]));
    let mut raft = Raft::new(config.clone(), Persisted::default(), 7, 0).expect("valid");
    raft.tick(0);
    assert!(raft.is_leader());
    assert_eq!(raft.term(), 1);
    let index = raft.propose(b"a".to_vec()).expect("leader");
    let ready = raft.ready();
    assert!(ready.messages.is_empty());
    let committed: Vec<u64> = ready.committed.iter().map(|e| e.index).collect();
    assert_eq!(committed, vec![1, index]);
    let mut disk = Disk::default();
    for write in &ready.writes {
        disk.apply(write);
    }
    let mut raft = Raft::new(config, disk.persisted(), 8, 10).expect("valid");
    raft.tick(10);
    assert!(raft.is_leader());
    assert_eq!(raft.term(), 2);
    let committed: Vec<Vec<u8>> = raft.ready().committed.into_iter().map(|e| e.data).collect();
    assert_eq!(committed, vec![vec![], b"a".to_vec(), vec![]]);
}

/// Goal: a node votes at most once per term, also across a restart (the vote is written
/// before the answer leaves). Re-asking by the same candidate is answered again.
#[test]
fn votes_once_per_term_even_after_restart() {
    let config = RaftConfig::new(1, voters(&[1, 2, 3]));
    let mut raft = Raft::new(config.clone(), Persisted::default(), 1, 0).expect("valid");
    let vote = RaftMessage::Vote {
        term: 1,
        last_index: 0,
        last_term: 0,
    };
    raft.step(0, 2, vote.clone());
    let ready = raft.ready();
    assert_eq!(
        ready.writes,
        vec![Write::HardState {
            term: 1,
            voted_for: Some(2)
        }]
    );
    assert_eq!(
        ready.messages,
        vec![(
            2,
            RaftMessage::VoteResponse {
                term: 1,
                granted: true
            }
        )]
    );
    raft.step(0, 3, vote.clone());
    assert_eq!(
        raft.ready().messages,
        vec![(
            3,
            RaftMessage::VoteResponse {
                term: 1,
                granted: false
            }
        )]
    );
    let mut disk = Disk::default();
    for write in &ready.writes {
        disk.apply(write);
    }
    let mut raft = Raft::new(config, disk.persisted(), 2, 0).expect("valid");
    raft.step(0, 3, vote.clone());
    assert_eq!(
        raft.ready().messages,
        vec![(
            3,
            RaftMessage::VoteResponse {
                term: 1,
                granted: false
            }
        )]
    );
    raft.step(0, 2, vote);
    assert_eq!(
        raft.ready().messages,
        vec![(
            2,
            RaftMessage::VoteResponse {
                term: 1,
                granted: true
            }
        )]
    );
}

/// Goal: a vote goes only to a candidate whose log is at least as up to date (§5.4.1).
#[test]
fn refuses_votes_for_stale_logs() {
    let config = RaftConfig::new(1, voters(&[1, 2, 3]));
    let persisted = Persisted {
        term: 2,
        voted_for: None,
        snapshot: None,
        entries: vec![entry(1, 1), entry(2, 2)],
    };
    let mut raft = Raft::new(config, persisted, 1, 0).expect("valid");
    raft.step(
        0,
        2,
        RaftMessage::Vote {
            term: 3,
            last_index: 5,
            last_term: 1,
        },
    );
    let granted = RaftMessage::VoteResponse {
        term: 3,
        granted: false,
    };
    assert_eq!(raft.ready().messages, vec![(2, granted)]);
    raft.step(
        0,
        3,
        RaftMessage::Vote {
            term: 3,
            last_index: 2,
            last_term: 2,
        },
    );
    let granted = RaftMessage::VoteResponse {
        term: 3,
        granted: true,
    };
    assert_eq!(raft.ready().messages, vec![(3, granted)]);
}

/// Makes node 1 of voters {1, 2, 3} leader through pre-vote and vote answers from node 2.
fn make_leader(raft: &mut Raft) {
    let deadline_ms = raft.next_deadline_ms();
    raft.tick(deadline_ms);
    assert_eq!(raft.role(), Role::PreCandidate);
    let messages = raft.ready().messages;
    assert!(messages
        .iter()
        .all(|(_, m)| matches!(m, RaftMessage::PreVote { .. })));
    let term = raft.term();
    raft.step(
        deadline_ms,
        2,
        RaftMessage::PreVoteResponse {
            term: term + 1,
            granted: true,
        },
    );
    assert_eq!(raft.role(), Role::Candidate);
    raft.step(
        deadline_ms,
        2,
        RaftMessage::VoteResponse {
            term: term + 1,
            granted: true,
        },
    );
    assert!(raft.is_leader());
}

/// Goal: Raft §5.4.2 (Figure 8): entries of older terms are never committed by counting
/// replicas, only together with an entry of the current term.
#[test]
fn commits_old_term_entries_only_through_a_current_term_entry() {
    let config = RaftConfig::new(1, voters(&[1, 2, 3]));
    let persisted = Persisted {
        term: 2,
        voted_for: None,
        snapshot: None,
        entries: vec![entry(1, 1), entry(2, 2)],
    };
    let mut raft = Raft::new(config, persisted, 1, 0).expect("valid");
    make_leader(&mut raft);
    assert_eq!(raft.term(), 3);
    assert_eq!(raft.last_index(), 3, "the new leader appended its no-op");
    raft.ready();
    let now_ms = raft.next_deadline_ms();
    // A majority (1 and 2) stores index 2, of term 2: not committed.
    raft.step(
        now_ms,
        2,
        RaftMessage::AppendResponse {
            term: 3,
            success: true,
            index: 2,
            hint: 0,
        },
    );
    assert_eq!(raft.commit_index(), 0);
    assert!(raft.ready().committed.is_empty());
    // Index 3 is of term 3: committing it commits everything before.
    raft.step(
        now_ms,
        2,
        RaftMessage::AppendResponse {
            term: 3,
            success: true,
            index: 3,
            hint: 0,
        },
    );
    assert_eq!(raft.commit_index(), 3);
    let committed: Vec<u64> = raft.ready().committed.iter().map(|e| e.index).collect();
    assert_eq!(committed, vec![1, 2, 3]);
}

/// Goal: backpressure and redirection: a follower refuses with its known leader, a
/// leader refuses past `max_uncommitted_entries`.
#[test]
fn propose_refuses_on_followers_and_past_the_uncommitted_limit() {
    let mut config = RaftConfig::new(1, voters(&[1, 2, 3]));
    config.max_uncommitted_entries = 8;
    let mut raft = Raft::new(config, Persisted::default(), 1, 0).expect("valid");
    let append = RaftMessage::Append {
        term: 1,
        prev_index: 0,
        prev_term: 0,
        entries: vec![],
        commit: 0,
    };
    raft.step(0, 2, append);
    let refused = raft.propose(b"x".to_vec());
    assert!(matches!(refused, Err(ProposeError::NotLeader(n)) if n.leader == Some(2)));
    let mut raft = Raft::new(
        RaftConfig {
            max_uncommitted_entries: 8,
            ..RaftConfig::new(1, voters(&[1, 2, 3]))
        },
        Persisted::default(),
        1,
        0,
    )
    .expect("valid");
    make_leader(&mut raft);
    for _ in 0..7 {
        raft.propose(b"x".to_vec()).expect("below the limit");
    }
    let refused = raft.propose(b"x".to_vec());
    assert_eq!(
        refused,
        Err(ProposeError::Throttled {
            uncommitted_count: 8
        })
    );
}

/// Goal: stale messages. Method: a node at term 5 answers an append of term 3 with its
/// term (so the deposed leader steps down) and changes nothing.
#[test]
fn answers_stale_appends_with_the_newer_term() {
    let config = RaftConfig::new(1, voters(&[1, 2, 3]));
    let persisted = Persisted {
        term: 5,
        ..Persisted::default()
    };
    let mut raft = Raft::new(config, persisted, 1, 0).expect("valid");
    let stale = RaftMessage::Append {
        term: 3,
        prev_index: 0,
        prev_term: 0,
        entries: vec![entry(3, 1)],
        commit: 1,
    };
    raft.step(0, 2, stale);
    let ready = raft.ready();
    assert!(ready.writes.is_empty());
    let answer = RaftMessage::AppendResponse {
        term: 5,
        success: false,
        index: 0,
        hint: 0,
    };
    assert_eq!(ready.messages, vec![(2, answer)]);
    assert_eq!(
        (raft.term(), raft.last_index(), raft.leader()),
        (5, 0, None)
    );
}

/// Goal: learners never campaign, but answer vote requests (a candidate asks only nodes it
/// knows as voters, possibly before this node's log says so; see the membership tests).
#[test]
fn learners_never_campaign_but_answer_votes() {
    let config = RaftConfig::new(4, voters(&[1, 2, 3]));
    let mut raft = Raft::new(config, Persisted::default(), 1, 0).expect("valid");
    assert_eq!(raft.next_deadline_ms(), u64::MAX);
    raft.tick(1_000_000);
    assert!(raft.ready().messages.is_empty());
    raft.step(
        1_000_000,
        1,
        RaftMessage::Vote {
            term: 1,
            last_index: 0,
            last_term: 0,
        },
    );
    let ready = raft.ready();
    let granted = RaftMessage::VoteResponse {
        term: 1,
        granted: true,
    };
    assert_eq!(ready.messages, vec![(1, granted)]);
    let vote = Write::HardState {
        term: 1,
        voted_for: Some(1),
    };
    assert_eq!(
        ready.writes,
        vec![vote],
        "the vote is durable before it leaves"
    );
    assert_eq!(raft.role(), Role::Follower);
    assert_eq!(raft.next_deadline_ms(), u64::MAX, "still no campaigning");
}

/// Goal: a follower truncates a conflicting uncommitted suffix and answers with a hint
/// that skips the whole conflicting term.
#[test]
fn follower_truncates_conflicts_and_hints_past_whole_terms() {
    let config = RaftConfig::new(2, voters(&[1, 2, 3]));
    let entries = vec![entry(1, 1), entry(2, 2), entry(2, 3), entry(2, 4)];
    let persisted = Persisted {
        term: 2,
        voted_for: None,
        snapshot: None,
        entries,
    };
    let mut raft = Raft::new(config, persisted, 1, 0).expect("valid");
    let probe = RaftMessage::Append {
        term: 3,
        prev_index: 4,
        prev_term: 3,
        entries: vec![],
        commit: 0,
    };
    raft.step(0, 1, probe);
    let rejected = RaftMessage::AppendResponse {
        term: 3,
        success: false,
        index: 4,
        hint: 1,
    };
    assert_eq!(raft.ready().messages, vec![(1, rejected)]);
    let replace = vec![entry(3, 2)];
    let append = RaftMessage::Append {
        term: 3,
        prev_index: 1,
        prev_term: 1,
        entries: replace.clone(),
        commit: 2,
    };
    raft.step(0, 1, append);
    let ready = raft.ready();
    assert_eq!(
        ready.writes,
        vec![Write::TruncateFrom { index: 2 }, Write::Append(replace)]
    );
    assert_eq!(raft.last_index(), 2);
    assert_eq!(
        ready.committed.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![1, 2]
    );
}

/// Goal: `new` refuses inconsistent storage and configuration instead of running on it.
#[test]
fn new_rejects_inconsistent_persisted_state() {
    let config = RaftConfig::new(1, voters(&[1, 2, 3]));
    let gap = Persisted {
        term: 2,
        entries: vec![entry(1, 1), entry(1, 3)],
        ..Persisted::default()
    };
    let error = Raft::new(config.clone(), gap, 1, 0).err();
    assert_eq!(
        error,
        Some(RaftError::LogGap {
            expected: 2,
            found: 3
        })
    );
    let regress = Persisted {
        term: 2,
        entries: vec![entry(2, 1), entry(1, 2)],
        ..Persisted::default()
    };
    assert!(matches!(
        Raft::new(config.clone(), regress, 1, 0),
        Err(RaftError::TermOutOfOrder { index: 2, .. })
    ));
    let ahead = Persisted {
        term: 1,
        entries: vec![entry(2, 1)],
        ..Persisted::default()
    };
    assert!(matches!(
        Raft::new(config.clone(), ahead, 1, 0),
        Err(RaftError::TermOutOfOrder { index: 1, .. })
    ));
    let snapshot = Snapshot {
        last_index: 5,
        last_term: 1,
        data: vec![],
        voters: None,
    };
    let after_gap = Persisted {
        term: 1,
        snapshot: Some(snapshot),
        entries: vec![entry(1, 7)],
        ..Persisted::default()
    };
    assert_eq!(
        Raft::new(config.clone(), after_gap, 1, 0).err(),
        Some(RaftError::LogGap {
            expected: 6,
            found: 7
        })
    );
    let no_voters = RaftConfig::new(1, BTreeSet::new());
    assert!(matches!(
        Raft::new(no_voters, Persisted::default(), 1, 0),
        Err(RaftError::InvalidConfig { .. })
    ));
}

/// Goal: a restarted node hands its persisted snapshot to the state machine first.
#[test]
fn restart_delivers_the_persisted_snapshot() {
    let config = RaftConfig::new(1, voters(&[1, 2, 3]));
    let snapshot = Snapshot {
        last_index: 5,
        last_term: 2,
        data: b"image".to_vec(),
        voters: None,
    };
    let persisted = Persisted {
        term: 2,
        voted_for: None,
        snapshot: Some(snapshot.clone()),
        entries: vec![entry(2, 6)],
    };
    let mut raft = Raft::new(config, persisted, 1, 0).expect("valid");
    assert_eq!((raft.commit_index(), raft.last_index()), (5, 6));
    let ready = raft.ready();
    assert_eq!(ready.snapshot, Some(snapshot));
    assert!(ready.committed.is_empty());
}

// ---- membership on single nodes ----

/// Acknowledges everything through the leader's last index from `peers`.
fn acknowledge(raft: &mut Raft, now_ms: u64, peers: &[NodeId]) {
    let (term, index) = (raft.term(), raft.last_index());
    for peer in peers {
        let response = RaftMessage::AppendResponse {
            term,
            success: true,
            index,
            hint: 0,
        };
        raft.step(now_ms, *peer, response);
    }
}

/// Node 1 of voters {1, 2, 3} (plus `learners`), leading with its no-op committed.
fn settled_leader(config: RaftConfig, learners: &[NodeId]) -> Raft {
    let mut raft = Raft::new(config, Persisted::default(), 1, 0).expect("valid");
    for learner in learners {
        raft.add_learner(*learner);
    }
    make_leader(&mut raft);
    let now_ms = raft.next_deadline_ms();
    acknowledge(&mut raft, now_ms, &[2]);
    assert_eq!(raft.commit_index(), raft.last_index());
    raft.ready();
    raft
}

/// Goal: every refusal of a voter-set change, each before anything is appended. Method:
/// drive one leader through them: not leading, no commit in its term, already a voter,
/// not a learner, lagging, not a voter, one change at a time, the uncommitted limit.
#[test]
fn voter_changes_are_refused_unless_settled_and_valid() {
    let config = RaftConfig {
        learner_lag_entries_max: 0,
        max_uncommitted_entries: 4,
        ..RaftConfig::new(1, voters(&[1, 2, 3]))
    };
    let mut raft = Raft::new(config.clone(), Persisted::default(), 1, 0).expect("valid");
    raft.add_learner(4);
    let refused = raft.propose_add_voter(4);
    assert!(matches!(refused, Err(ChangeVotersError::NotLeader(_))));
    make_leader(&mut raft);
    let refused = raft.propose_add_voter(4);
    assert_eq!(refused, Err(ChangeVotersError::LeaderNotReady { term: 1 }));
    let refused = raft.propose_remove_voter(3);
    assert_eq!(refused, Err(ChangeVotersError::LeaderNotReady { term: 1 }));
    let now_ms = raft.next_deadline_ms();
    acknowledge(&mut raft, now_ms, &[2]);
    let last_index = raft.last_index();
    let refused = raft.propose_add_voter(2);
    assert_eq!(refused, Err(ChangeVotersError::AlreadyVoter { id: 2 }));
    let refused = raft.propose_add_voter(9);
    assert_eq!(refused, Err(ChangeVotersError::UnknownLearner { id: 9 }));
    let refused = raft.propose_add_voter(4);
    let lagging = ChangeVotersError::LearnerLagging {
        id: 4,
        match_index: 0,
        last_index,
    };
    assert_eq!(refused, Err(lagging));
    let refused = raft.propose_remove_voter(9);
    assert_eq!(refused, Err(ChangeVotersError::NotVoter { id: 9 }));
    assert_eq!(raft.last_index(), last_index, "refusals append nothing");
    acknowledge(&mut raft, now_ms, &[4]);
    let index = raft.propose_add_voter(4).expect("4 caught up");
    assert_eq!(raft.voters(), &voters(&[1, 2, 3, 4]));
    let refused = raft.propose_remove_voter(2);
    assert_eq!(refused, Err(ChangeVotersError::ChangeInProgress { index }));
    acknowledge(&mut raft, now_ms, &[2, 4]);
    assert_eq!(raft.committed_voters(), &voters(&[1, 2, 3, 4]));
    for _ in 0..4 {
        raft.propose(b"x".to_vec()).expect("below the limit");
    }
    let refused = raft.propose_remove_voter(2);
    assert_eq!(
        refused,
        Err(ChangeVotersError::Throttled {
            uncommitted_count: 4
        })
    );
    raft.invariants();
}

/// Goal: the last voter cannot be removed, and a set at `VOTERS_MAX` cannot grow.
#[test]
fn refuses_to_remove_the_last_voter_or_exceed_voters_max() {
    let mut raft =
        Raft::new(RaftConfig::new(1, voters(&[1])), Persisted::default(), 1, 0).expect("valid");
    raft.tick(0);
    assert!(raft.is_leader());
    let refused = raft.propose_remove_voter(1);
    assert_eq!(refused, Err(ChangeVotersError::LastVoter { id: 1 }));
    let all: Vec<NodeId> = (1..=VOTERS_MAX as NodeId).collect();
    let config = RaftConfig::new(1, voters(&all));
    let mut raft = Raft::new(config, Persisted::default(), 1, 0).expect("valid");
    raft.add_learner(1_000);
    let now_ms = raft.next_deadline_ms();
    raft.tick(now_ms);
    for granted in [
        RaftMessage::PreVoteResponse {
            term: 1,
            granted: true,
        },
        RaftMessage::VoteResponse {
            term: 1,
            granted: true,
        },
    ] {
        for voter in &all[1..VOTERS_MAX / 2 + 1] {
            raft.step(now_ms, *voter, granted.clone());
        }
    }
    assert!(raft.is_leader());
    acknowledge(&mut raft, now_ms, &all[1..]);
    acknowledge(&mut raft, now_ms, &[1_000]);
    let refused = raft.propose_add_voter(1_000);
    assert_eq!(refused, Err(ChangeVotersError::TooManyVoters));
}

/// Goal: a leader that removes itself does not count itself in the new set's majority,
/// and once the removal commits it tells its peers and steps down. Method: voters {1, 2,
/// 3}; after 1 removes itself, 2's acknowledgement alone (a majority of the old set with 1)
/// commits nothing; 3's completes the majority of {2, 3}.
#[test]
fn removed_leader_does_not_count_itself_and_steps_down_on_commit() {
    let mut raft = settled_leader(RaftConfig::new(1, voters(&[1, 2, 3])), &[]);
    let index = raft.propose_remove_voter(1).expect("settled");
    assert!(raft.is_leader());
    assert!(!raft.is_voter());
    assert!(raft.may_campaign(), "its removal is not committed");
    raft.invariants();
    let now_ms = raft.next_deadline_ms();
    acknowledge(&mut raft, now_ms, &[2]);
    assert!(raft.commit_index() < index, "1 does not count itself");
    assert!(raft.is_leader());
    raft.ready();
    acknowledge(&mut raft, now_ms, &[3]);
    assert_eq!(raft.commit_index(), index);
    assert_eq!(raft.role(), Role::Follower);
    assert!(!raft.may_campaign());
    assert_eq!(raft.next_deadline_ms(), u64::MAX);
    assert_eq!(
        raft.learners(),
        &BTreeSet::new(),
        "1 is not its own learner"
    );
    let ready = raft.ready();
    for peer in [2, 3] {
        let told = ready.messages.iter().any(|(to, message)| {
            *to == peer && matches!(message, RaftMessage::Append { commit, .. } if *commit >= index)
        });
        assert!(
            told,
            "peer {peer} hears of the commit: {:?}",
            ready.messages
        );
    }
    let kinds: Vec<EntryKind> = ready.committed.iter().map(Entry::kind).collect();
    assert_eq!(kinds, vec![EntryKind::VoterSet]);
    raft.invariants();
}

/// Goal: a node uses an appended voter set at once and falls back to the previous one when
/// the entry is truncated. Method: follower 2 appends {1, 2, 3, 4} from leader 1 (node 4
/// leaves its learners), then a leader of a later term overwrites the entry.
#[test]
fn truncating_a_voter_set_entry_restores_the_previous_set() {
    let config = RaftConfig::new(2, voters(&[1, 2, 3]));
    let mut raft = Raft::new(config, Persisted::default(), 1, 0).expect("valid");
    raft.add_learner(4);
    let added = Entry {
        term: 1,
        index: 2,
        data: encode_voter_set(&voters(&[1, 2, 3, 4])),
    };
    let append = RaftMessage::Append {
        term: 1,
        prev_index: 0,
        prev_term: 0,
        entries: vec![entry(1, 1), added],
        commit: 1,
    };
    raft.step(0, 1, append);
    assert_eq!(raft.voters(), &voters(&[1, 2, 3, 4]));
    assert_eq!(raft.committed_voters(), &voters(&[1, 2, 3]));
    assert!(raft.learners().is_empty(), "4 votes now");
    raft.invariants();
    raft.ready();
    let overwrite = RaftMessage::Append {
        term: 2,
        prev_index: 1,
        prev_term: 1,
        entries: vec![entry(2, 2)],
        commit: 1,
    };
    raft.step(10, 3, overwrite);
    assert_eq!(raft.voters(), &voters(&[1, 2, 3]));
    assert_eq!(raft.learners(), &voters(&[4]), "4 is a learner again");
    let ready = raft.ready();
    assert!(ready.writes.contains(&Write::TruncateFrom { index: 2 }));
    raft.invariants();
}

/// Goal: the voter set at a snapshot survives compaction, restart and install. Method:
/// voter 1 adds learner 2 and commits it, compacts past the change, restarts from its
/// writes (the set comes back from the snapshot alone), and sends the snapshot to a fresh
/// node started with the bootstrap set {1}, which then knows {1, 2}.
#[test]
fn snapshots_carry_the_voter_set() {
    let config = RaftConfig::new(1, voters(&[1]));
    let mut raft = Raft::new(config.clone(), Persisted::default(), 1, 0).expect("valid");
    raft.add_learner(2);
    raft.tick(0);
    acknowledge(&mut raft, 0, &[2]);
    raft.propose_add_voter(2).expect("caught up");
    acknowledge(&mut raft, 0, &[2]);
    assert_eq!(raft.committed_voters(), &voters(&[1, 2]));
    let mut disk = Disk::default();
    for write in raft.ready().writes {
        disk.apply(&write);
    }
    let applied_index = raft.applied_index();
    raft.compact(applied_index, b"image".to_vec());
    let writes = raft.ready().writes;
    let Some(Write::Snapshot(snapshot)) = writes.first() else {
        panic!("compaction writes a snapshot: {writes:?}");
    };
    assert_eq!(snapshot.voters, Some(voters(&[1, 2])));
    for write in &writes {
        disk.apply(write);
    }
    assert!(disk.entries.is_empty(), "only the snapshot holds the set");
    let restarted = Raft::new(config, disk.persisted(), 2, 10).expect("valid");
    assert_eq!(restarted.voters(), &voters(&[1, 2]));
    assert_eq!(restarted.committed_voters(), &voters(&[1, 2]));
    restarted.invariants();
    let fresh_config = RaftConfig::new(3, voters(&[1]));
    let mut fresh = Raft::new(fresh_config, Persisted::default(), 3, 10).expect("valid");
    let install = RaftMessage::InstallSnapshot {
        term: raft.term(),
        snapshot: snapshot.clone(),
    };
    fresh.step(10, 1, install);
    assert_eq!(fresh.voters(), &voters(&[1, 2]));
    assert_eq!(fresh.learners(), &voters(&[]), "1 left no set");
    fresh.invariants();
}

/// The snapshot as encoded before membership changes existed.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct SnapshotBeforeMembership {
    last_index: u64,
    last_term: u64,
    data: Vec<u8>,
}

/// Goal: snapshots stored or sent before membership changes still decode (as "bootstrap
/// set"), and older code reads new snapshots. Method: postcard bytes of the old layout, of
/// an old `InstallSnapshot` message (variant 6: term, snapshot), and JSON without `voters`.
#[test]
fn snapshot_encoding_is_backward_compatible() {
    let old = SnapshotBeforeMembership {
        last_index: 7,
        last_term: 2,
        data: b"image".to_vec(),
    };
    let old_bytes = postcard::to_allocvec(&old).expect("encodes");
    let decoded: Snapshot = postcard::from_bytes(&old_bytes).expect("old snapshots decode");
    let expected = Snapshot {
        last_index: 7,
        last_term: 2,
        data: b"image".to_vec(),
        voters: None,
    };
    assert_eq!(decoded, expected);
    let message_bytes = postcard::to_allocvec(&(6u32, 3u64, &old)).expect("encodes");
    let message: RaftMessage = postcard::from_bytes(&message_bytes).expect("old message");
    let install = RaftMessage::InstallSnapshot {
        term: 3,
        snapshot: expected.clone(),
    };
    assert_eq!(message, install);
    for voters in [None, Some(voters(&[1, 4, 9]))] {
        let snapshot = Snapshot {
            voters,
            ..expected.clone()
        };
        let bytes = postcard::to_allocvec(&snapshot).expect("encodes");
        assert_eq!(
            postcard::from_bytes::<Snapshot>(&bytes),
            Ok(snapshot.clone())
        );
        let older: SnapshotBeforeMembership =
            postcard::from_bytes(&bytes).expect("old readers ignore the new field");
        assert_eq!(older, old);
        let json = serde_json::to_string(&snapshot).expect("encodes");
        assert_eq!(serde_json::from_str::<Snapshot>(&json).ok(), Some(snapshot));
    }
    let json = r#"{"last_index":7,"last_term":2,"data":[105,109,97,103,101]}"#;
    assert_eq!(serde_json::from_str::<Snapshot>(json).ok(), Some(expected));
}

/// Goal: voter-set entries are told apart from commands and no-ops, and malformed ones
/// never enter a log: an append carrying one is ignored, storage holding one is refused.
#[test]
fn malformed_voter_sets_are_rejected() {
    let set = voters(&[3, 1, 2]);
    let data = encode_voter_set(&set);
    assert!(data.starts_with(&VOTER_SET_PREFIX));
    let voter_set = Entry {
        term: 1,
        index: 1,
        data,
    };
    assert_eq!(voter_set.kind(), EntryKind::VoterSet);
    assert_eq!(voter_set.voter_set(), Some(set));
    assert_eq!(entry(1, 1).kind(), EntryKind::Command);
    assert_eq!(entry(1, 1).voter_set(), None);
    let noop = Entry {
        data: vec![],
        ..entry(1, 1)
    };
    assert_eq!(noop.kind(), EntryKind::Noop);
    let mut bad_data = VOTER_SET_PREFIX.to_vec();
    bad_data.extend_from_slice(&2i32.to_le_bytes());
    bad_data.extend_from_slice(&1i32.to_le_bytes()); // not ascending
    let bad = Entry {
        term: 1,
        index: 1,
        data: bad_data,
    };
    assert_eq!(bad.kind(), EntryKind::VoterSet);
    assert_eq!(bad.voter_set(), None);
    let empty = Entry {
        data: VOTER_SET_PREFIX.to_vec(),
        ..entry(1, 1)
    };
    assert_eq!(empty.voter_set(), None);
    let config = RaftConfig::new(2, voters(&[1, 2, 3]));
    let mut raft = Raft::new(config.clone(), Persisted::default(), 1, 0).expect("valid");
    let append = RaftMessage::Append {
        term: 1,
        prev_index: 0,
        prev_term: 0,
        entries: vec![bad.clone()],
        commit: 0,
    };
    raft.step(0, 1, append);
    let ready = raft.ready();
    let appended = ready.writes.iter().any(|w| matches!(w, Write::Append(_)));
    assert!(!appended, "a malformed append is ignored");
    assert!(ready.messages.is_empty(), "and not answered");
    assert_eq!(raft.last_index(), 0);
    let stored = Persisted {
        term: 1,
        entries: vec![bad],
        ..Persisted::default()
    };
    let error = Raft::new(config.clone(), stored, 1, 0).err();
    assert_eq!(error, Some(RaftError::BadVoterSet { index: 1 }));
    let two_changes = Entry {
        data: encode_voter_set(&voters(&[1, 2, 3, 4, 5])),
        ..entry(1, 1)
    };
    let stored = Persisted {
        term: 1,
        entries: vec![two_changes],
        ..Persisted::default()
    };
    let error = Raft::new(config.clone(), stored, 1, 0).err();
    assert_eq!(error, Some(RaftError::BadVoterSet { index: 1 }));
    let snapshot = Snapshot {
        last_index: 1,
        last_term: 1,
        data: vec![],
        voters: Some(BTreeSet::new()),
    };
    let stored = Persisted {
        term: 1,
        snapshot: Some(snapshot),
        ..Persisted::default()
    };
    let error = Raft::new(config, stored, 1, 0).err();
    assert_eq!(error, Some(RaftError::BadVoterSet { index: 1 }));
}

/// Goal: commands cannot pose as voter sets: the prefix is reserved (a caller bug).
#[test]
#[should_panic(expected = "reserved voter-set prefix")]
fn propose_refuses_the_reserved_prefix() {
    let mut raft =
        Raft::new(RaftConfig::new(1, voters(&[1])), Persisted::default(), 1, 0).expect("valid");
    raft.tick(0);
    let _ = raft.propose(encode_voter_set(&voters(&[1, 2])));
}

/// A leader of three voters (1, with 2's votes) with its no-op taken out.
fn lone_leader() -> Raft {
    let voters: BTreeSet<i32> = [1, 2, 3].into_iter().collect();
    let mut raft =
        Raft::new(RaftConfig::new(1, voters), Persisted::default(), 7, 0).expect("a fresh raft");
    raft.tick(5_000);
    let term = raft.term();
    let granted = RaftMessage::PreVoteResponse {
        term: term + 1,
        granted: true,
    };
    raft.step(5_000, 2, granted);
    let term = raft.term();
    raft.step(
        5_000,
        2,
        RaftMessage::VoteResponse {
            term,
            granted: true,
        },
    );
    assert!(raft.is_leader());
    let _ = raft.ready();
    raft
}

// Goal: a malformed rejection (an index past the leader's log, from a peer being probed
// or not) neither overflows nor pushes the peer's next index past the log: `step` takes
// any message without panicking and the invariants hold after. Before the fix the first
// overflowed `index + 1` (a panic in debug builds) and the second broke `invariants()`.
#[test]
fn malformed_rejections_are_ignored() {
    let mut raft = lone_leader();
    let term = raft.term();
    let bogus = RaftMessage::AppendResponse {
        term,
        success: false,
        index: u64::MAX,
        hint: 0,
    };
    raft.step(5_001, 2, bogus);
    raft.invariants();

    let mut raft = lone_leader();
    let term = raft.term();
    let last = raft.last_index();
    let ack = RaftMessage::AppendResponse {
        term,
        success: true,
        index: last,
        hint: 0,
    };
    raft.step(5_001, 2, ack);
    raft.invariants();
    let bogus = RaftMessage::AppendResponse {
        term,
        success: false,
        index: 1_000_000,
        hint: 1_000_000,
    };
    raft.step(5_002, 2, bogus);
    raft.invariants();
}
