//! What the harness and the actors of the group and cluster workloads share, inside
//! [`crate::workload::ControlState`]: [`GroupLog`] (members, watcher) and [`ClusterLog`]
//! (harness, admin sampler, producers). Plain data and its bookkeeping; it imports none of
//! the workload files, so `workload.rs` can hold it without importing them.

use std::collections::{BTreeMap, BTreeSet};

/// A member's claim: what it owns, and under which identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Member id.
    pub member: String,
    /// Generation.
    pub generation: i32,
    /// Owned partitions, ascending.
    pub partitions: Vec<i32>,
}

/// An acknowledged commit whose broker incarnation is known.
#[derive(Debug, Clone)]
pub(crate) struct AckedCommit {
    pub(crate) incarnation: u64,
    pub(crate) generation: i32,
    pub(crate) member: String,
    pub(crate) invoked_ns: u64,
    pub(crate) completed_ns: u64,
}

/// What the members and the watcher share (inside [`crate::workload::ControlState`]).
#[derive(Debug, Default)]
pub struct GroupLog {
    /// Process ids of group members: their polls count for at-least-once.
    pub(crate) processes: BTreeSet<u64>,
    /// Highest committed offset per partition acknowledged to a member so far.
    pub(crate) acked: BTreeMap<i32, i64>,
    /// (incarnation, generation, partition) -> the member that claimed it.
    pub(crate) owners: BTreeMap<(u64, i32, i32), String>,
    /// Double claims already reported (each is reported once).
    pub(crate) reported: BTreeSet<(u64, i32, i32)>,
    /// Acknowledged commits of known incarnation, in completion order.
    pub(crate) commits: Vec<AckedCommit>,
    /// The latest claim of each member actor; `None` while it is out of the group.
    pub(crate) live: BTreeMap<usize, Claim>,
    /// The watcher tells the members to leave and end.
    pub(crate) stop: bool,
    /// Members that ended.
    pub(crate) members_done: usize,
    /// The watcher finished its final checks.
    pub(crate) done: bool,
}

impl GroupLog {
    /// A claim observed in incarnation `incarnation`; a violation if another member claims
    /// one of its partitions in the same generation.
    pub(crate) fn claim(&mut self, incarnation: u64, claim: &Claim) -> Option<String> {
        let mut violation = None;
        for &partition in &claim.partitions {
            let key = (incarnation, claim.generation, partition);
            match self.owners.get(&key) {
                Some(owner) if *owner != claim.member && self.reported.insert(key) => {
                    violation = Some(format!(
                        "ownership: partition {partition} claimed by {owner} and by {} in \
                         generation {} (broker incarnation {incarnation})",
                        claim.member, claim.generation
                    ));
                }
                Some(_) => {}
                None => {
                    self.owners.insert(key, claim.member.clone());
                }
            }
        }
        violation
    }

    /// An acknowledged commit of `positions`; a violation if a later generation of the same
    /// incarnation had a commit acknowledged before this one was sent.
    pub(crate) fn acked_commit(
        &mut self,
        positions: &[(i32, i64)],
        commit: Option<AckedCommit>,
    ) -> Option<String> {
        for &(partition, offset) in positions {
            let entry = self.acked.entry(partition).or_insert(offset);
            *entry = (*entry).max(offset);
        }
        let commit = commit?;
        let newer = self.commits.iter().find(|c| {
            c.incarnation == commit.incarnation
                && c.generation > commit.generation
                && c.completed_ns < commit.invoked_ns
        });
        let violation = newer.map(|newer| {
            format!(
                "fencing: commit of {} in generation {} acknowledged after {} committed in \
                 generation {} (broker incarnation {})",
                commit.member,
                commit.generation,
                newer.member,
                newer.generation,
                commit.incarnation
            )
        });
        self.commits.push(commit);
        violation
    }
}

/// What the harness and the cluster actors share.
#[derive(Debug, Default)]
pub struct ClusterLog {
    /// The topic was created; producers and consumers may start.
    pub topic_ready: bool,
    /// Latest claimed leader per partition (the claim with the highest epoch).
    pub leaders: BTreeMap<i32, (i32, i32)>,
    /// Replicas and ISR per partition, as the latest leader reported them.
    pub replicas: BTreeMap<i32, (Vec<i32>, Vec<i32>)>,
    /// Sampling rounds after the final phase began in which every ISR was full.
    pub full_isr_rounds: u32,
    /// The active controller, as the latest answer named it (-1 unknown).
    pub controller: i32,
    /// Every `(partition, epoch)` claimed, with the claiming node.
    pub claims: BTreeMap<(i32, i32), i32>,
    /// The harness ran its faults: producers stop.
    pub stop_producing: bool,
    /// The harness is done with the run: the sampler stops.
    pub sampling_done: bool,
    /// Acknowledged sends per partition.
    pub acks: BTreeMap<i32, u64>,
    /// Sends in flight per partition (invoked, not yet answered).
    pub pending: BTreeMap<i32, u32>,
    /// The partition of every value sent so far (values are unique per run).
    pub sent: BTreeMap<u64, i32>,
    /// `cluster-acl`: every broker describes the denying ACL; the intruder may start.
    pub acl_ready: bool,
    /// `cluster-acl`: the intruder's writes refused with TOPIC_AUTHORIZATION_FAILED.
    pub acl_denials: u64,
}

/// How a transaction of the compaction workload ended, as its producer saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnEnd {
    /// Not ended yet.
    Open,
    /// Commit acknowledged.
    Committed,
    /// Aborted for sure: abort acknowledged, or the producer never asked to commit.
    Aborted,
    /// The commit's outcome is unknown.
    Unknown,
}

/// One write of the compaction workload: its key, its value (`None`: a tombstone), the
/// transaction it belongs to, and where it was acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactWrite {
    /// Record key.
    pub key: String,
    /// Record value; `None` is a tombstone.
    pub value: Option<String>,
    /// The transaction (index into [`CompactLog::txns`]), if transactional.
    pub txn: Option<usize>,
    /// `(partition, offset)` of the acknowledgement; `None` while unknown.
    pub acked: Option<(i32, i64)>,
    /// The send failed or timed out: it may or may not be in the log.
    pub unknown: bool,
}

/// What the compaction workload's actors record (`workload_compact`): every write sent,
/// the transactions' ends, and every record read.
#[derive(Debug, Default)]
pub struct CompactLog {
    /// Every write, in invocation order (a value is unique over the run).
    pub writes: Vec<CompactWrite>,
    /// Transactions' ends, by index.
    pub txns: Vec<TxnEnd>,
    /// Every record read by any reader: `(partition, offset)` to `(key, value)`.
    pub reads: BTreeMap<(i32, i64), (String, Option<String>)>,
    /// The final reader's records.
    pub final_reads: BTreeMap<(i32, i64), (String, Option<String>)>,
    /// Records the final reader read (including re-reads by a new process).
    pub final_records: u64,
}

/// How a transaction that sent consumed offsets ended (`workload_txn`), as the final check
/// judges those offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Committed: its offset (or a later one) must be the group's.
    Committed,
    /// Never asked to commit: its offset must never be the group's.
    Aborted,
    /// Commit asked, outcome unknown: its offset may be the group's.
    Unknown,
}
