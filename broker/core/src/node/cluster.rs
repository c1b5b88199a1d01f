//! The node as a member of a cluster: the metadata quorum (Raft), the controller, broker
//! heartbeats, and partition replication (see [`crate::cluster`]). There is no other kind
//! of node: one started without `controller.quorum.voters` is a quorum of one (it votes
//! for itself, controls itself and leads every partition, replication factor 1), and runs
//! this same code, so a single node is a one-node cluster in every behaviour a client sees.
//!
//! # Protocols, and what each one must never break
//!
//! **Metadata quorum (Raft, [`crate::raft`]).** Raft is a pure state machine; this file is
//! its driver. Each `Ready` carries storage writes (hard state, appended or truncated
//! entries, a snapshot), outbound messages and newly committed entries. The writes are
//! emitted as meta-entry ops at once; the messages and committed entries wait in
//! `raft_pending` until the sync that covers the writes completes (`cluster_on_synced`).
//! A vote or an append acknowledgement that left before its term, vote or entries were
//! durable could be forgotten by a crash and let two leaders win one term, or let a
//! "committed" entry vanish. `raft_pending` is ordered by sync id, so releasing a prefix
//! releases exactly what is durable. A Ready without writes still queues behind the last
//! pending one: its messages may acknowledge entries of an earlier, unsynced Ready.
//!
//! **Controller and the decision image.** The active controller is the Raft leader once
//! its image applied the no-op of its term (before that its image may miss committed
//! records of earlier terms). It decides on the *decision image*: the applied image plus
//! every record it proposed that has not applied yet. Two decisions in one commit window
//! must see each other; the second would otherwise carry a stale partition epoch and be
//! dropped at apply time (issue 12's acknowledged-write loss). The decision image is
//! dropped whenever this node is not the Raft leader: its uncommitted tail may be
//! truncated by the next leader.
//!
//! **Registration, heartbeats, fencing.** A broker heartbeats the controller; the
//! controller registers a new incarnation fenced (first fencing the old incarnation, which
//! moves its leaderships to new epochs), and unfences it once it has applied the log up to
//! its registration. The answer carries the *committed* fencing state: a broker serves as
//! unfenced only once the unfence is in the log every future controller continues from.
//! A broker the controller has not answered for a session fences itself. The controller
//! fences brokers whose sessions expired, and sooner those whose connections closed
//! ([`PEER_CLOSED_GRACE_MS`]) or that a new controller has not heard from yet.
//!
//! **Replication, leader side.** A leader role is taken only by the incarnation the image
//! registered, and never at an epoch this log already holds: one (leader, epoch) pair
//! names one history, and followers' epoch queries rely on that. The leader's ISR,
//! replicas and partition epoch are copies of the image's. The high watermark (HW) is the
//! minimum over the ISR (plus a pending expansion) of each member's durable offset
//! (`isr-fsync`) or fetch offset (`isr-memory`), the leader's own durable end included;
//! it never decreases while the role is held. A follower's progress is only what its last
//! fetch claimed, and a fetch past the leader's log end is refused, so a follower's
//! recorded fetch offset never passes the leader's log end. ISR changes are requests to
//! the controller (`AlterIsr`), one pending at a time; the role adopts the ISR only when
//! the image does. A follower joins only once it holds everything the HW covers and the
//! whole previous epoch (KAFKA-7128), and under `isr-fsync` has that durable, so joining
//! never lowers the HW.
//!
//! **Replication, follower side.** A follower first truncates its divergent suffix by
//! epoch queries (KIP-101/KIP-279), then fetches from its log end, one request in flight.
//! Replicated batches are appended at their offsets only where they start exactly at the
//! log end (offsets stay dense); under `isr-fsync` the next fetch waits for the sync that
//! makes them durable, since it reports them durable to the leader. The follower's HW is
//! the leader's, capped by its own log end.
//!
//! **Commit waiters.** Admin answers wait until the record their request proposed is
//! applied here, and succeed only if the entry at that index still has the term it was
//! proposed in (otherwise a new leader replaced it: NOT_CONTROLLER). They are judged
//! before compaction can drop the entries.
//!
//! **Transaction markers and forwarded requests.** A coordinator asks each partition's
//! leader to write a marker; the leader answers once its HW passes the marker. Unanswered
//! markers are resent (a second marker ends no transaction, so resending is harmless).
//! Admin requests a broker cannot decide are forwarded to the controller; client requests
//! that wait for something to exist (this broker to start, a topic to be created) are
//! held with a deadline.
//!
//! # Danger
//!
//! Everything a peer sends may be stale, reordered, duplicated or malformed: handlers
//! check it against local state and drop or refuse it, never assert on it. Assertions
//! here check only this node's own bookkeeping.
//!
//! Durability rules:
//! - Raft: a Ready's writes go to storage as meta entries; its messages and committed
//!   entries are released only when the sync covering those writes completes.
//! - Replication: a leader's high watermark is the minimum over the (maximal) ISR of what
//!   each member has made durable (`isr-fsync`, the default) or holds (`isr-memory`),
//!   its own durable end included. acks=all answers wait for that high watermark.
//! - A node acts on partition roles only once its image caught up with the quorum's commit
//!   index after start (a stale image must not make it lead), and stops leading when the
//!   controller has not answered its heartbeats for a session timeout.
//!
//! Invariants (checked in [`Node::invariants`] through `cluster_invariants`): a leader role
//! matches the image's leader, epochs, ISR and replicas, its ISR holds the leader and lies
//! within the replicas, and its HW never went down; a follower follows the image's leader
//! at the image's epoch; no role is held before the image caught up; hw waiters reference
//! partitions this node leads; Raft readies wait in sync order for syncs not yet complete.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use uuid::Uuid;
use weir_wire::batch::iter_batches;
use weir_wire::domain::{Acks, ApiResponse};
use weir_wire::error::ErrorCode;

use super::Node;
use crate::cluster::controller;
use crate::cluster::image::{ImageChange, MetaRecord, MetadataImage, TopicImage};
use crate::cluster::peer::{
    AlterIsr, BrokerHeartbeat, EpochQuery, EpochReply, PeerMessage, PeerRecords, ReplicaFetch,
    ReplicaFetchReply,
};
use crate::cluster::{AckDurability, ClusterConfig};
use crate::event::{Output, RequestId};
use crate::meta::{epochs_op, EPOCHS_PREFIX};
use crate::purgatory::Purgatory;
use crate::raft::{Entry, Persisted, ProposeError, Raft, RaftConfig, RaftMessage, Snapshot, Write};
use crate::rng::{Rng, SALT_INCARNATION};
use crate::storage::{Storage, StorageError, StorageOp};
use crate::time::{Instant, Now};
use crate::topic_config::TopicConfig;

/// Bound on replica fetches a leader holds (long poll); past it they are answered at once.
pub const REPLICA_FETCH_WAITERS_MAX: usize = 16_384;
/// Bound on acks=all produce requests waiting for the high watermark.
pub const HW_WAITERS_MAX: usize = 16_384;
/// Bound on admin answers waiting for their metadata records to apply.
pub const ADMIN_WAITERS_MAX: usize = 4_096;
/// Bound on Raft readies waiting for their writes to become durable.
pub const RAFT_PENDING_MAX: usize = 65_536;
/// A follower re-sends a fetch or epoch query unanswered for this long.
const PEER_RETRY_MS: u64 = 2_000;
/// Coordinator requests held at most while their internal topic is being created.
pub const HELD_REQUESTS_MAX: usize = 4_096;
/// How long a request waits for what it needs (see [`HoldFor`]) before it is answered as
/// without the wait (COORDINATOR_NOT_AVAILABLE, LEADER_NOT_AVAILABLE, NOT_LEADER...; the
/// client then asks again).
pub(super) const HELD_REQUEST_MS: u64 = 5_000;

/// What a held client request waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HoldFor {
    /// This broker to start serving.
    Start,
    /// Topics the controller is creating on the request's behalf (a coordinator's
    /// internal topic, a Metadata request's auto-created topics).
    Topics(Vec<String>),
}
/// Replication factor of the internal topics (Kafka's `offsets.topic.replication.factor`
/// and `transaction.state.log.replication.factor` default), capped by the cluster's size.
const INTERNAL_TOPIC_RF_MAX: usize = 3;
/// Back-off after a refused replica fetch (not leader, epoch mismatch).
const REFUSED_RETRY_MS: u64 = 100;
/// The metadata log is compacted into a snapshot every this many applied entries.
const SNAPSHOT_EVERY_ENTRIES: u64 = 2_000;
/// A pending ISR change is re-sent to the controller after this long.
const ALTER_ISR_RETRY_MS: u64 = 1_000;
/// A transaction marker unanswered this long is sent again.
const MARKER_RETRY_MS: u64 = 1_000;
/// How long a leader holds a written marker's answer waiting for replication before it
/// drops it (the coordinator resends every [`MARKER_RETRY_MS`]).
const MARKER_WAIT_MS: u64 = 30_000;
/// Marker answers a leader holds at most.
pub const MARKER_WAITERS_MAX: usize = 16_384;
/// How often a leader looks for followers that fell out of sync.
const LEADER_CHECK_MS: u64 = 250;
/// How often the controller looks for offline partitions and expired sessions.
const CONTROLLER_CHECK_MS: u64 = 200;
/// A broker whose connection to the controller closed is fenced this long after, unless it
/// heartbeats first (a live broker redials within 50 ms and heartbeats within an interval,
/// 500 ms by default; its queued messages survive the redial).
pub const PEER_CLOSED_GRACE_MS: u64 = 750;
/// A new controller fences a broker it has not heard from within this many heartbeat
/// intervals (at least [`PEER_CLOSED_GRACE_MS`]), rather than a whole session.
const NEW_CONTROLLER_GRACE_HEARTBEATS: u64 = 4;

const RAFT_HARD_STATE_KEY: &[u8] = b"raft/hard_state";
const RAFT_SNAPSHOT_KEY: &[u8] = b"raft/snapshot";
const RAFT_ENTRY_PREFIX: &str = "raft/entry/";

/// The meta key of Raft entry `index`. Zero-padded so that keys sort in index order
/// (recovery reads them back sorted, and sorts again to be safe).
fn raft_entry_key(index: u64) -> Vec<u8> {
    // Raft indexes start at 1; index 0 is the empty log's "previous entry".
    debug_assert!(index >= 1, "raft entry key for index 0");
    format!("{RAFT_ENTRY_PREFIX}{index:020}").into_bytes()
}

/// True for the meta keys of the metadata log (recovery's catalog reader skips them).
pub(super) fn is_cluster_meta_key(key: &[u8]) -> bool {
    key.starts_with(b"raft/") || key.starts_with(EPOCHS_PREFIX.as_bytes())
}

/// Markers of one prepared transaction still unacknowledged (correlation -> partition),
/// and when they were last sent.
type PendingMarkers = (BTreeMap<u64, (String, i32)>, Instant);

/// A Raft ready whose writes wait for sync `sync_id`.
// Its messages may be votes or append acknowledgements that promise those writes are
// durable; its committed entries may have been appended by the same Ready. Both leave
// only after the sync (see the module doc).
#[derive(Debug)]
struct RaftPending {
    sync_id: u64,
    messages: Vec<(i32, RaftMessage)>,
    snapshot: Option<Snapshot>,
    committed: Vec<Entry>,
}

/// What a follower knows about its progress, on the leader.
// These are the follower's own claims, bounded where they are received (a fetch past the
// leader's log end is refused; durable is capped by held): never trusted further.
#[derive(Debug, Clone)]
struct Progress {
    /// The offset of its last fetch: everything below it, it holds (-1: none yet).
    fetch_offset: i64,
    /// What it reported durable at that fetch, at most `fetch_offset` (-1: none yet).
    durable_offset: i64,
    /// Last time it was caught up (Kafka's lag rule); the ISR shrink uses it.
    caught_up_at: Instant,
    /// The leader's log end when this follower last fetched.
    leo_at_last_fetch: i64,
}

/// This node leads the partition.
#[derive(Debug, Clone)]
pub(super) struct LeaderState {
    pub epoch: i32,
    /// The log end offset when this epoch began: the first offset of the epoch. A
    /// follower joins the ISR only once it reached it (KAFKA-7128: a restarted leader's
    /// high watermark may lag, and a follower below the epoch start may lack records the
    /// previous leader acknowledged).
    epoch_start: i64,
    partition_epoch: i32,
    isr: Vec<i32>,
    replicas: Vec<i32>,
    followers: BTreeMap<i32, Progress>,
    /// An ISR change sent to the controller and not yet seen in the image.
    // While it is pending the HW also counts its members (the "maximal" ISR): the
    // controller may already have committed it, and a member it adds must not be
    // credited with an HW it has not reached.
    pending_isr: Option<(Vec<i32>, Instant)>,
    /// The replicated HW this role last set or found on its log: the floor it must never
    /// go below while the role is held (bookkeeping for the "HW never decreases" checks).
    hw_floor: i64,
}

/// This node follows the partition's leader.
#[derive(Debug, Clone)]
pub(super) struct FollowerState {
    /// The leader the image names (-1: none; the follower then waits).
    leader: i32,
    /// The image's leader epoch: every request carries it, so a leader of another epoch
    /// refuses it rather than serving a history this follower is not following.
    epoch: i32,
    /// The divergent suffix (if any) was truncated for this epoch.
    truncated: bool,
    /// The epoch the next epoch query asks about, when a round of truncation found that
    /// this log lacks the epoch the leader answered with (KIP-279 asks again with this
    /// log's largest epoch below it); `None`: ask about this log's last epoch.
    query_epoch: Option<i32>,
    /// The fetch or epoch query in flight: (correlation, sent at).
    in_flight: Option<(u64, Instant)>,
    /// Do not send before this.
    not_before: Instant,
    /// Appends wait for this sync before the next fetch reports them durable.
    fetch_after_sync: Option<u64>,
}

/// This node's role for one partition. A partition this node does not replicate, or any
/// partition before its image caught up, has no entry.
#[derive(Debug, Clone)]
pub(super) enum Replica {
    Leader(LeaderState),
    Follower(FollowerState),
}

/// An acks=all produce waiting for high watermarks (its deadline is in the purgatory).
#[derive(Debug, Clone)]
struct HwWaiter {
    /// (topic, partition index, offset the high watermark must pass).
    needs: Vec<(Uuid, usize, i64)>,
    response: ApiResponse,
}

/// A transaction marker this leader wrote for a coordinator, answered once the high
/// watermark passes it; keyed in its purgatory by (coordinator, correlation).
#[derive(Debug, Clone)]
struct MarkerWaiter {
    topic_id: Uuid,
    index: usize,
    /// Offset the high watermark must reach.
    end: i64,
}

/// Cluster state of a node. Every node has one: a node of its own is a quorum of one.
#[derive(Debug)]
pub(super) struct ClusterState {
    pub config: ClusterConfig,
    pub(super) raft: Raft,
    pub image: MetadataImage,
    /// The active controller's decision image: `image` plus every record this controller
    /// proposed that has not applied yet (Kafka's QuorumController decides on the same
    /// "uncommitted" state). Two decisions in one commit window must see each other: the
    /// second would otherwise carry a stale partition epoch and be dropped at apply time.
    /// Created at the first proposal of a term, dropped when Raft leadership is lost (the
    /// uncommitted tail may then be truncated).
    view: Option<MetadataImage>,
    /// This process start's identity: registrations and heartbeats carry it, so the
    /// controller tells a restarted node (which may have lost unsynced data) from the old.
    incarnation: u64,
    /// Readies waiting for their syncs, in sync order.
    raft_pending: VecDeque<RaftPending>,
    /// Index range of raft entries in storage (first, last); (1, 0) when none.
    stored_entries: (u64, u64),
    pub caught_up: bool,
    /// The index of our no-op when we became Raft leader: the controller acts once its
    /// image applied it.
    leader_start: Option<u64>,
    // Broker side.
    /// The controller a heartbeat answer named (non-voters learn it only so).
    controller_hint: Option<i32>,
    next_heartbeat: Instant,
    /// When the controller last answered a heartbeat: the self-fencing clock.
    last_heartbeat_ok: Option<Instant>,
    /// The committed fencing state as the controller last answered it, or set by self-
    /// fencing. A fenced broker refuses produces even where it still holds a leader role.
    pub fenced: bool,
    /// Which voter to ask next while no controller is known.
    heartbeat_rotation: usize,
    // Controller side.
    /// Last heartbeat per broker (this controller's term only; reset on take-over).
    sessions: BTreeMap<i32, Instant>,
    /// Index of each broker's registration record: it is unfenced only once its
    /// heartbeat reports that index applied (it then knows its own registration).
    registered_at: BTreeMap<i32, u64>,
    /// Brokers suspected gone before their session ends, with the moment they are fenced
    /// unless a heartbeat comes first: their inbound connection closed (a killed process's
    /// connections close at once), or this controller just took over and has not heard
    /// from them yet. A heartbeat clears the entry.
    suspects: BTreeMap<i32, Instant>,
    /// Every node (controller or not) remembers peers whose inbound connection closed and
    /// that it has not heard from since: a node that becomes the controller suspects them
    /// from the moment they went quiet, not from its take-over (the old controller's own
    /// connections close when it dies, so failover after a controller crash is not held up
    /// by a grace period for the dead node).
    closed_peers: BTreeMap<i32, Instant>,
    next_controller_check: Instant,
    /// When led partitions are next checked for lagging followers.
    next_leader_check: Instant,
    next_rebalance: Instant,
    // Replication.
    /// This node's role per partition, kept in line with the applied image by
    /// `update_role` (see `cluster_invariants`).
    pub replicas: BTreeMap<(Uuid, usize), Replica>,
    /// Last correlation id handed out (see [`ClusterState::correlation`]).
    next_correlation: u64,
    /// Replica fetches held for new data, by (follower, correlation).
    parked_fetches: Purgatory<ReplicaFetch, (i32, u64)>,
    hw_waiters: Purgatory<HwWaiter>,
    /// Answers waiting for the metadata records their requests proposed to commit (admin
    /// requests, and AddRaftVoter/RemoveRaftVoter answers waiting for their voter-set
    /// entry, see [`super::quorum`]), by request.
    // Invariant: every waiter's index is above the applied index (`answer_commit_waiters`
    // runs after every apply), so none is forgotten once its entry applied.
    pub(super) commit_waiters: Purgatory<CommitWaiter>,
    /// Prepared transactions waiting for remote markers: id -> (correlation -> partition),
    /// and when the markers were last sent.
    pending_markers: BTreeMap<String, PendingMarkers>,
    /// Markers written for a coordinator, answered once replicated:
    /// (coordinator, correlation, topic, partition index, end offset).
    marker_waiters: Purgatory<MarkerWaiter, (i32, u64)>,
    /// Admin requests this broker forwarded to the controller: correlation -> (client
    /// request, its header, deadline, the request for an error answer).
    pub forwarded: BTreeMap<u64, Forwarded>,
    /// Forwarded requests this controller is handling: synthetic id -> (broker, correlation,
    /// request header).
    pub forwarded_in: BTreeMap<RequestId, (i32, u64, weir_wire::codec::RequestHeader)>,
    /// Client requests held until something they need exists (see [`HoldFor`]):
    /// dispatched once it does, or at the deadline (then answered as without the wait).
    pub(super) held: Purgatory<(HoldFor, weir_wire::domain::ApiRequest)>,
    /// Set once this broker first served (registered, unfenced, caught up); until then
    /// client requests other than ApiVersions wait, as a Kafka broker does not process
    /// them before the controller unfences it. Controller-only nodes start set.
    pub(super) started: bool,
    /// Topics of a single-node data directory written before the node ran a metadata
    /// quorum, to be recorded in the metadata log once this node controls it (see
    /// [`Node::plan_legacy_adoption`]).
    adopt: Vec<MetaRecord>,
    /// Internal-topic appends of the current input, for the answer that waits on them.
    internal_appends: Vec<(Uuid, usize, i64)>,
    /// Time of the current input.
    pub now: Instant,
}

/// An admin request forwarded to the controller.
#[derive(Debug, Clone)]
pub(super) struct Forwarded {
    /// The client's request.
    pub id: RequestId,
    /// The header it was encoded with (decodes the answer).
    pub header: weir_wire::codec::RequestHeader,
    /// When to give up.
    pub deadline: Instant,
    /// For an error answer.
    pub request: weir_wire::domain::ApiRequest,
}

/// An answer waiting for its request's metadata record to commit.
#[derive(Debug, Clone)]
pub(super) struct CommitWaiter {
    /// Raft index of the request's last record.
    index: u64,
    /// Term of the entry proposed there: another term at that index means it was replaced.
    term: u64,
    /// The answer to send once committed.
    response: ApiResponse,
}

impl ClusterState {
    /// Rebuild from storage's raft entries.
    pub(super) fn recover(
        config: ClusterConfig,
        node_id: i32,
        storage: &impl Storage,
        seed: u64,
        now: Now,
    ) -> Result<ClusterState, StorageError> {
        let corrupt = |reason: String| StorageError::Corrupt {
            partition_key: 0,
            offset: 0,
            reason,
        };
        let mut persisted = Persisted::default();
        for (key, value) in storage.meta_entries()? {
            if key == RAFT_HARD_STATE_KEY {
                let (term, voted_for): (u64, Option<i32>) =
                    postcard::from_bytes(&value).map_err(|e| corrupt(e.to_string()))?;
                persisted.term = term;
                persisted.voted_for = voted_for;
            } else if key == RAFT_SNAPSHOT_KEY {
                persisted.snapshot =
                    Some(postcard::from_bytes(&value).map_err(|e| corrupt(e.to_string()))?);
            } else if key.starts_with(RAFT_ENTRY_PREFIX.as_bytes()) {
                let entry: Entry =
                    postcard::from_bytes(&value).map_err(|e| corrupt(e.to_string()))?;
                persisted.entries.push(entry);
            }
        }
        persisted.entries.sort_by_key(|e| e.index);
        // The stored range may include keys a crash left behind between a snapshot and
        // the deletion of the entries it covers; truncation and compaction delete over
        // the whole range, so such keys go with the next one.
        let stored_entries = match (persisted.entries.first(), persisted.entries.last()) {
            (Some(first), Some(last)) => (first.index, last.index),
            _ => (1, 0),
        };
        assert!(
            stored_entries.0 >= 1 && stored_entries.0 <= stored_entries.1 + 1,
            "stored raft entries {stored_entries:?}"
        );
        let voters: BTreeSet<i32> = config.voters.iter().map(|v| v.id).collect();
        let mut raft_config = RaftConfig::new(node_id, voters);
        raft_config.election_timeout_min_ms = config.election_timeout_ms;
        raft_config.election_timeout_max_ms = config.election_timeout_ms * 2;
        raft_config.heartbeat_interval_ms = (config.election_timeout_ms / 5).max(10);
        let raft = Raft::new(raft_config, persisted, seed, now_ms(now))
            .map_err(|e| corrupt(e.to_string()))?;
        // An incarnation identifies this start of the process (Kafka: a random UUID per
        // start). The seed alone may repeat across restarts (a container's process id, a
        // simulated host's fixed seed), so the start time is mixed in: two starts of one
        // node never share an incarnation, and a simulation still replays it.
        let incarnation = Rng::new(seed)
            .fork(SALT_INCARNATION ^ u64::from(node_id as u32))
            .next_u64()
            ^ crate::rng::mix(now.wall_ms as u64 ^ now.instant.as_nanos().rotate_left(32));
        let broker_role = config.broker_role;
        // A node starts fenced and not caught up: it serves nothing and takes no partition
        // role until its image caught up with the quorum and the controller unfenced it.
        Ok(ClusterState {
            config,
            raft,
            image: MetadataImage::default(),
            view: None,
            incarnation,
            raft_pending: VecDeque::new(),
            stored_entries,
            caught_up: false,
            leader_start: None,
            controller_hint: None,
            next_heartbeat: now.instant,
            last_heartbeat_ok: None,
            fenced: true,
            heartbeat_rotation: 0,
            sessions: BTreeMap::new(),
            registered_at: BTreeMap::new(),
            suspects: BTreeMap::new(),
            closed_peers: BTreeMap::new(),
            next_controller_check: now.instant,
            next_leader_check: now.instant,
            next_rebalance: now.instant,
            replicas: BTreeMap::new(),
            next_correlation: 1,
            parked_fetches: Purgatory::new(REPLICA_FETCH_WAITERS_MAX),
            hw_waiters: Purgatory::new(HW_WAITERS_MAX),
            commit_waiters: Purgatory::new(ADMIN_WAITERS_MAX),
            internal_appends: Vec::new(),
            held: Purgatory::new(HELD_REQUESTS_MAX),
            started: !broker_role,
            adopt: Vec::new(),
            now: now.instant,
            pending_markers: BTreeMap::new(),
            forwarded: BTreeMap::new(),
            forwarded_in: BTreeMap::new(),
            marker_waiters: Purgatory::new(MARKER_WAITERS_MAX),
        })
    }

    /// The active controller: the Raft leader once it applied its own no-op.
    // Before the no-op applies, the image may lack committed records of earlier terms:
    // deciding then could fence a live broker or elect a stale leader.
    pub(super) fn is_active_controller(&self) -> bool {
        self.raft.is_leader()
            && self
                .leader_start
                .is_some_and(|start| self.image.applied_index >= start)
    }

    /// The image controller decisions are made against: the applied image plus this
    /// controller's own proposals still in flight (see [`ClusterState::view`]).
    pub(super) fn decision_image(&self) -> &MetadataImage {
        // PLANTED BUG (weir-sim's planted suite only): decide on the applied image alone,
        // so two decisions in one commit window collide (issue 12's acknowledged-write
        // loss; the broker-side guards in `update_role` are off with it).
        #[cfg(feature = "planted-stale-decisions")]
        {
            return &self.image;
        }
        #[allow(unreachable_code)]
        self.view.as_ref().unwrap_or(&self.image)
    }

    /// The Raft leader, as far as this node knows. Not necessarily the *active*
    /// controller (see [`ClusterState::is_active_controller`]): requests sent there may be
    /// refused for a while after an election, and are then retried.
    pub(super) fn controller(&self) -> Option<i32> {
        self.raft.leader()
    }

    /// Before the active controller's first proposal of a term (a record or a voter-set
    /// change): nothing of ours is pending, so the applied image is the whole truth and
    /// becomes the decision image.
    pub(super) fn start_decisions(&mut self) {
        if self.view.is_none() {
            assert_eq!(
                self.raft.last_index(),
                self.image.applied_index,
                "a controller's first proposal must follow a fully applied log"
            );
            self.view = Some(self.image.clone());
        }
    }

    /// True when this node is the whole quorum (the only voter, and its leader): a
    /// heartbeat to the controller is a call to itself. Prompt heartbeats there cost
    /// nothing; in a larger quorum brokers keep the heartbeat interval. (Prompt heartbeats
    /// in every cluster also spread a majority crash's re-registrations over more commit
    /// windows, which hid issue 12's stale-decision bug from the planted-bug search.)
    pub(super) fn alone(&self, node_id: i32) -> bool {
        self.raft.leader() == Some(node_id) && self.raft.voters().iter().eq([node_id].iter())
    }

    /// A fresh correlation id for a request to a peer. Ids are never reused within a
    /// process, so a late reply to an abandoned request never matches a newer one.
    pub(super) fn correlation(&mut self) -> u64 {
        self.next_correlation += 1;
        assert!(self.next_correlation > 1, "correlation ids wrapped");
        self.next_correlation
    }
}

/// Raft's clock: milliseconds of the monotonic instant (never the wall clock, which may
/// jump and would fire or stall election timers).
fn now_ms(now: Now) -> u64 {
    now.instant.as_nanos() / 1_000_000
}

/// A topic id as peer messages carry it (big-endian, as `Uuid::from_u128` reads it back).
fn uuid_bytes(id: Uuid) -> [u8; 16] {
    id.as_u128().to_be_bytes()
}

impl Node {
    /// True once this broker can serve: it applied the metadata log of the current term
    /// and the controller has registered and unfenced it.
    pub fn is_serving(&self) -> bool {
        self.cluster.caught_up && !self.cluster.fenced
    }

    /// True when this node is the partition's only replica (the image's view): nothing
    /// replicates from it, so what it does to its log no follower has to agree with.
    pub(super) fn sole_replica(&self, key: (Uuid, usize)) -> bool {
        let node_id = self.config.node_id;
        (self.cluster.image.partition(key.0.as_u128(), key.1 as i32))
            .is_some_and(|p| p.replicas == [node_id])
    }

    /// A data directory of a single node from before it ran a one-voter metadata quorum
    /// holds topics (catalog, logs, coordinator state) but no metadata log. Its topics are
    /// adopted as they are: once this node controls the quorum it records each with its
    /// id, name, configs and partitions, replicated on this node alone, leading at an
    /// epoch above any its logs hold (the old batches carry epoch 0). Only a fresh
    /// metadata log of a quorum of this node alone adopts: a cluster's topics come from its
    /// log, never from one node's disk.
    pub(super) fn plan_legacy_adoption(&mut self) {
        let node_id = self.config.node_id;
        let cluster = &mut *self.cluster;
        let fresh_log = cluster.stored_entries == (1, 0)
            && cluster.raft.snapshot_index() == 0
            && cluster.raft.term() == 0;
        let alone = cluster.raft.voters().iter().eq([node_id].iter());
        if !fresh_log || !alone || self.topics.is_empty() {
            return;
        }
        for topic in self.topics.values() {
            let partitions = (topic.partitions.iter())
                .map(|log| {
                    let mut state = crate::cluster::image::PartitionState::new(vec![node_id]);
                    let written = log.log_end_offset() > log.log_start_offset();
                    state.leader_epoch = (log.last_epoch() + 1).max(i32::from(written));
                    state
                })
                .collect();
            cluster.adopt.push(MetaRecord::CreateTopic(TopicImage {
                name: topic.name.clone(),
                id: topic.id.as_u128(),
                configs: topic.config.overrides().into_iter().collect(),
                partitions,
            }));
        }
        tracing::info!(
            topics = cluster.adopt.len(),
            "single-node data directory without a metadata log: adopting its topics"
        );
    }

    /// True when this node leads every partition of `__transaction_state` (a one-voter
    /// cluster always does): it coordinates every transactional id.
    pub(super) fn coordinates_every_transaction(&self) -> bool {
        let Some(&topic_id) = self.topic_ids.get(crate::txn_log::TXN_STATE_TOPIC) else {
            return false;
        };
        let count = self.topics.get(&topic_id).map_or(0, |t| t.partitions.len());
        let cluster = &*self.cluster;
        count > 0
            && (0..count).all(|index| {
                matches!(
                    cluster.replicas.get(&(topic_id, index)),
                    Some(Replica::Leader(_))
                )
            })
    }

    /// The active controller's id, as this node knows it.
    pub fn controller_id(&self) -> Option<i32> {
        self.cluster.controller()
    }

    /// `(leader, leader epoch, isr)` of a partition in this node's image.
    pub fn partition_leadership(
        &self,
        topic: &str,
        partition: i32,
    ) -> Option<(i32, i32, Vec<i32>)> {
        let cluster = &*self.cluster;
        let id = *cluster.image.names.get(topic)?;
        let state = cluster.image.partition(id, partition)?;
        Some((state.leader, state.leader_epoch, state.isr.clone()))
    }

    /// True when this node leads `topic`-`partition` right now.
    pub fn leads(&self, topic: &str, partition: i32) -> bool {
        let cluster = &*self.cluster;
        let Some(&topic_id) = self.topic_ids.get(topic) else {
            return false;
        };
        let Ok(index) = usize::try_from(partition) else {
            return false;
        };
        matches!(
            cluster.replicas.get(&(topic_id, index)),
            Some(Replica::Leader(_))
        )
    }

    /// The leader epoch to stamp on a produce to this partition, or why this node may not
    /// take it: not the leader (or fenced), or (acks=all) too few in-sync replicas.
    pub(super) fn check_produce_leadership(
        &self,
        topic_id: Uuid,
        index: usize,
        acks: Acks,
    ) -> Result<i32, (ErrorCode, String)> {
        let cluster = &*self.cluster;
        let Some(Replica::Leader(leader)) = cluster.replicas.get(&(topic_id, index)) else {
            return Err((
                ErrorCode::NOT_LEADER_OR_FOLLOWER,
                "this broker does not lead the partition".into(),
            ));
        };
        if cluster.fenced {
            return Err((
                ErrorCode::NOT_LEADER_OR_FOLLOWER,
                "this broker is fenced".into(),
            ));
        }
        if acks == Acks::All {
            let min_isr = self
                .topics
                .get(&topic_id)
                .and_then(|t| t.config.min_insync_replicas)
                .unwrap_or(self.config.min_insync_replicas);
            // The leader is always in its ISR, so a one-replica partition passes with
            // min.insync.replicas=1.
            debug_assert!(leader.isr.contains(&self.config.node_id));
            if (leader.isr.len() as i32) < min_isr {
                let message = format!(
                    "{} in-sync replicas, below min.insync.replicas={min_isr}",
                    leader.isr.len()
                );
                return Err((ErrorCode::NOT_ENOUGH_REPLICAS, message));
            }
        }
        Ok(leader.epoch)
    }

    /// The leader epoch of a partition this node leads (consumer fetch, ListOffsets), or
    /// the error a client gets elsewhere.
    pub(super) fn serving_epoch(&self, topic_id: Uuid, index: usize) -> Result<i32, ErrorCode> {
        let cluster = &*self.cluster;
        // Only a leader serves clients: a follower's log may hold a suffix it will still
        // truncate, and its HW lags the leader's.
        match cluster.replicas.get(&(topic_id, index)) {
            Some(Replica::Leader(leader)) => {
                debug_assert!(leader.epoch >= 0, "negative leader epoch {}", leader.epoch);
                Ok(leader.epoch)
            }
            _ => Err(ErrorCode::NOT_LEADER_OR_FOLLOWER),
        }
    }

    /// Handle a message from peer node `from` (already decoded by the driver).
    pub fn handle_peer(&mut self, now: Now, from: i32, message: PeerMessage) {
        // A poisoned node's state can no longer be trusted: it must not vote, lead or
        // acknowledge anything, so peers' messages are ignored until it is restarted.
        if self.poisoned.is_some() {
            return;
        }
        self.cluster_note_now(now);
        // Any message proves the peer is alive again (see `closed_peers`).
        self.cluster.closed_peers.remove(&from);
        // Every handler below treats the message as untrusted: a peer may be stale (an old
        // incarnation, an old epoch), reordered, repeated or buggy. Handlers drop or refuse
        // what does not fit this node's state; none asserts on the message.
        match message {
            PeerMessage::Raft(bytes) => match postcard::from_bytes::<RaftMessage>(&bytes) {
                Ok(raft_message) => {
                    let cluster = &mut *self.cluster;
                    cluster.raft.step(now_ms(now), from, raft_message);
                }
                Err(error) => tracing::warn!(from, %error, "malformed raft message dropped"),
            },
            PeerMessage::Heartbeat(heartbeat) => self.on_heartbeat(now, from, heartbeat),
            PeerMessage::HeartbeatReply { controller, fenced } => {
                self.on_heartbeat_reply(now, from, controller, fenced)
            }
            PeerMessage::AutoCreate { names } => self.on_auto_create(names),
            PeerMessage::AlterIsr(request) => self.on_alter_isr(from, request),
            PeerMessage::Fetch(fetch) => self.on_replica_fetch(now, from, fetch),
            PeerMessage::FetchReply(reply) => self.on_fetch_reply(now, from, reply),
            PeerMessage::EpochQuery(query) => self.on_epoch_query(from, query),
            PeerMessage::EpochReply(reply) => self.on_epoch_reply(now, from, reply),
            PeerMessage::WriteMarker(request) => self.on_write_marker(now, from, request),
            PeerMessage::Forward { correlation, frame } => {
                self.on_forward(now, from, correlation, frame)
            }
            PeerMessage::ForwardReply { correlation, frame } => {
                self.on_forward_reply(correlation, frame)
            }
            PeerMessage::MarkerReply { correlation, error } => {
                self.on_marker_reply(now, correlation, error)
            }
        }
        // Every input ends the same way: drain Raft (its writes join this input's sync),
        // dispatch requests the input unblocked, and emit the sync that covers it all.
        self.drive_cluster(now);
        self.release_held_requests(now);
        self.flush_syncs(now);
    }

    /// An inbound connection from node `from` ended. The active controller fences it
    /// [`PEER_CLOSED_GRACE_MS`] from now unless it heartbeats before (Kafka waits for the
    /// whole session; a killed broker's connections close at once, so this is what makes
    /// failover after a crash take about a second rather than a session).
    pub fn handle_peer_closed(&mut self, now: Now, from: i32) {
        if self.poisoned.is_some() || from == self.config.node_id {
            return;
        }
        self.cluster_note_now(now);
        let cluster = &mut *self.cluster;
        cluster.closed_peers.entry(from).or_insert(now.instant);
        if !cluster.is_active_controller() || !cluster.decision_image().is_live(from) {
            return;
        }
        let at = now.instant.add_ms(PEER_CLOSED_GRACE_MS);
        let entry = cluster.suspects.entry(from).or_insert(at);
        *entry = (*entry).min(at);
        // `cluster_deadline` wakes the node at `at`; `controller_checks` fences then.
    }

    /// Remember the time of the current input (deadlines of waiters parked by it), and
    /// start the input's list of internal appends afresh (an answer must wait only for
    /// the appends of its own input).
    pub(super) fn cluster_note_now(&mut self, now: Now) {
        self.cluster.now = now.instant;
        self.cluster.internal_appends.clear();
    }

    /// An internal-topic append (coordinator state) of the current input. A coordinator's
    /// answer (a committed offset, a transaction state) must not precede the replication
    /// of the record it describes: a new coordinator elected from the ISR would not know
    /// it.
    pub(super) fn note_internal_append(&mut self, topic_id: Uuid, index: usize, end: i64) {
        self.cluster.internal_appends.push((topic_id, index, end));
    }

    /// Park a durable answer on the replication of this input's internal appends; gives
    /// the answer back when there were none.
    pub(super) fn respond_when_internal_replicated(
        &mut self,
        id: RequestId,
        response: ApiResponse,
    ) -> Option<(RequestId, ApiResponse)> {
        let cluster = &mut *self.cluster;
        if cluster.internal_appends.is_empty() {
            return Some((id, response));
        }
        let needs = std::mem::take(&mut cluster.internal_appends);
        // Internal appends are made by a coordinator on partitions it leads, so their HW
        // comes from this node.
        debug_assert!(
            (needs.iter()).all(|(t, i, _)| matches!(
                cluster.replicas.get(&(*t, *i)),
                Some(Replica::Leader(_))
            )),
            "internal appends on partitions not led here"
        );
        let now = Now::new(cluster.now, 0);
        let timeout_ms = cluster
            .config
            .replica_lag_time_max_ms
            .max(super::PRODUCE_TIMEOUT_MS_MIN);
        self.respond_when_replicated(now, id, response, needs, timeout_ms);
        None
    }

    /// A peer message this node sends itself (it is the controller). Only auto-creation
    /// goes this way; other self-addressed messages are handled by direct calls (a
    /// heartbeat to itself in `send_heartbeat`, an ISR change in `send_alter_isr`).
    pub(super) fn handle_local_peer(&mut self, node_id: i32, message: PeerMessage) {
        if let PeerMessage::AutoCreate { names } = message {
            let _ = node_id;
            self.on_auto_create(names);
        }
    }

    /// Cluster timers: Raft ticks, heartbeats, controller checks, ISR shrink, follower
    /// retries, expired waiters. Called from `handle_timeout`.
    pub(super) fn cluster_timeout(&mut self, now: Now) {
        let cluster = &mut *self.cluster;
        cluster.raft.tick(now_ms(now));
        self.send_heartbeat(now);
        self.controller_checks(now);
        self.leader_checks(now);
        self.follower_sends(now);
        self.resend_markers(now);
        self.expire_forwarded(now);
        self.expire_cluster_waiters(now);
        self.drive_cluster(now);
    }

    /// When the cluster layer wants `cluster_timeout` next.
    ///
    /// Danger both ways: a deadline missing here stalls a protocol until an unrelated
    /// input arrives (a simulation without traffic would hang); a deadline in the past
    /// that its handler does not move forward makes the driver spin.
    pub(super) fn cluster_deadline(&self) -> Option<Instant> {
        let cluster = &*self.cluster;
        let raft = Instant::from_nanos(cluster.raft.next_deadline_ms().saturating_mul(1_000_000));
        // Every node heartbeats (a quorum of one heartbeats itself): the heartbeat timer is
        // always armed.
        let mut next = raft.min(cluster.next_heartbeat);
        // Only deadlines that the handlers move forward, or the driver would spin.
        if cluster.is_active_controller() {
            next = next.min(cluster.next_controller_check);
            // A suspect is fenced at its moment, not at the next periodic check.
            if let Some(at) = cluster.suspects.values().min() {
                next = next.min(*at);
            }
        }
        for at in [
            cluster.held.next_deadline(),
            cluster.parked_fetches.next_deadline(),
            cluster.hw_waiters.next_deadline(),
            cluster.marker_waiters.next_deadline(),
        ]
        .into_iter()
        .flatten()
        {
            next = next.min(at);
        }
        for forwarded in cluster.forwarded.values() {
            next = next.min(forwarded.deadline);
        }
        for (_, sent) in cluster.pending_markers.values() {
            next = next.min(sent.add_ms(MARKER_RETRY_MS));
        }
        for replica in cluster.replicas.values() {
            match replica {
                Replica::Follower(f) => {
                    let at = match f.in_flight {
                        Some((_, sent)) => sent.add_ms(PEER_RETRY_MS),
                        None => f.not_before,
                    };
                    if f.fetch_after_sync.is_none() && f.leader >= 0 {
                        next = next.min(at);
                    }
                }
                Replica::Leader(_) => {
                    next = next.min(cluster.next_leader_check);
                }
            }
        }
        Some(next)
    }

    /// After any input: drain Raft, emit its writes, release what durable syncs allow.
    ///
    /// Also the place where this node notices it became (or stopped being) the Raft
    /// leader: a new controller resets sessions and suspects, and drops any decision
    /// image. It loops because releasing a Ready (applying entries) can produce another.
    pub(super) fn drive_cluster(&mut self, now: Now) {
        loop {
            let cluster = &mut *self.cluster;
            let was_leader = cluster.leader_start.is_some();
            let is_leader = cluster.raft.is_leader();
            if is_leader && !was_leader {
                cluster.leader_start = Some(cluster.raft.last_index());
                cluster.view = None;
                // Every registered broker gets a full session from the new controller.
                let brokers: Vec<i32> = cluster.image.brokers.keys().copied().collect();
                cluster.sessions = brokers.iter().map(|b| (*b, now.instant)).collect();
                // ...but a live broker finds a new controller within a few heartbeats (voters
                // hear of it from Raft, others from any voter's answer): one that does not
                // is fenced well before a full session, so failover does not wait for it.
                let grace = cluster
                    .config
                    .broker_heartbeat_interval_ms
                    .saturating_mul(NEW_CONTROLLER_GRACE_HEARTBEATS)
                    .max(PEER_CLOSED_GRACE_MS);
                let node_id = self.config.node_id;
                let closed = &cluster.closed_peers;
                cluster.suspects = brokers
                    .iter()
                    .filter(|b| **b != node_id)
                    .map(|b| {
                        let at = match closed.get(b) {
                            Some(closed_at) => closed_at.add_ms(PEER_CLOSED_GRACE_MS),
                            None => now.instant.add_ms(grace),
                        };
                        (*b, at)
                    })
                    .collect();
                cluster.registered_at.clear();
                // Every registered broker outside the voter set in force (which changes at
                // run time, KIP-853) follows the metadata log as a learner; `add_learner`
                // ignores voters.
                for broker in brokers {
                    cluster.raft.add_learner(broker);
                }
            } else if !is_leader && was_leader {
                cluster.leader_start = None;
            }
            if !is_leader {
                // Our uncommitted proposals may be truncated by the next leader.
                cluster.view = None;
            }
            if !cluster.raft.has_ready() {
                break;
            }
            let ready = cluster.raft.ready();
            let wrote = !ready.writes.is_empty();
            for write in ready.writes {
                self.emit_raft_write(write);
            }
            let cluster = &mut *self.cluster;
            let sync_id = if wrote {
                Some(self.sync.next_id)
            } else {
                cluster.raft_pending.back().map(|p| p.sync_id)
            };
            // A Ready that wrote waits for the next sync (which covers its writes); one that
            // did not still queues behind the last pending Ready, whose unsynced entries its
            // messages may acknowledge. Only with nothing pending is it released at once.
            match sync_id {
                Some(sync_id) => {
                    assert!(
                        cluster.raft_pending.len() < RAFT_PENDING_MAX,
                        "raft readies pile up"
                    );
                    // Sync ids only grow, so the queue stays in release order.
                    assert!(
                        (cluster.raft_pending.back()).is_none_or(|p| p.sync_id <= sync_id),
                        "raft ready queued out of sync order"
                    );
                    cluster.raft_pending.push_back(RaftPending {
                        sync_id,
                        messages: ready.messages,
                        snapshot: ready.snapshot,
                        committed: ready.committed,
                    });
                }
                None => self.release_raft(now, ready.messages, ready.snapshot, ready.committed),
            }
        }
    }

    /// Turn one Raft storage write into meta ops, keeping `stored_entries` (the index range
    /// of entry keys in storage) in step so that truncation and compaction delete exactly
    /// the keys that exist. The ops are only emitted here; they become durable with the
    /// next sync, which is what `drive_cluster` makes the Ready wait for.
    fn emit_raft_write(&mut self, write: Write) {
        let cluster = &mut *self.cluster;
        let mut ops = Vec::new();
        match write {
            Write::HardState { term, voted_for } => ops.push(StorageOp::PutMeta {
                key: RAFT_HARD_STATE_KEY.to_vec(),
                value: postcard::to_allocvec(&(term, voted_for)).unwrap_or_default(),
            }),
            Write::TruncateFrom { index } => {
                let (first, last) = cluster.stored_entries;
                for i in index.max(first)..=last {
                    ops.push(StorageOp::DeleteMeta {
                        key: raft_entry_key(i),
                    });
                }
                if index <= last {
                    cluster.stored_entries.1 = index.saturating_sub(1).max(first - 1);
                }
            }
            Write::Append(entries) => {
                // Raft appends densely at its log end (it truncates a conflicting suffix
                // first), so each entry extends the stored range by one.
                for entry in entries {
                    let (first, last) = cluster.stored_entries;
                    debug_assert!(
                        last < first || entry.index > first,
                        "raft entry {} appended below the stored range ({first}, {last})",
                        entry.index
                    );
                    if last < first {
                        cluster.stored_entries = (entry.index, entry.index);
                    } else {
                        cluster.stored_entries.1 = entry.index;
                    }
                    ops.push(StorageOp::PutMeta {
                        key: raft_entry_key(entry.index),
                        value: postcard::to_allocvec(&entry).unwrap_or_default(),
                    });
                }
            }
            Write::Snapshot(snapshot) => {
                ops.push(StorageOp::PutMeta {
                    key: RAFT_SNAPSHOT_KEY.to_vec(),
                    value: postcard::to_allocvec(&snapshot).unwrap_or_default(),
                });
                let (first, last) = cluster.stored_entries;
                let upto = snapshot.last_index.min(last);
                for i in first..=upto {
                    ops.push(StorageOp::DeleteMeta {
                        key: raft_entry_key(i),
                    });
                }
                if snapshot.last_index >= last {
                    cluster.stored_entries = (snapshot.last_index + 1, snapshot.last_index);
                } else if upto >= first {
                    cluster.stored_entries.0 = upto + 1;
                }
            }
        }
        let (first, last) = self.cluster.stored_entries;
        assert!(
            first >= 1 && last + 1 >= first,
            "stored raft entries ({first}, {last})"
        );
        for op in ops {
            self.emit(op);
        }
    }

    /// Raft readies whose writes sync `sync_id` made durable. Syncs complete in order and a
    /// completion covers every earlier sync, so the due readies are a prefix of the queue.
    pub(super) fn cluster_on_synced(&mut self, now: Now, sync_id: u64) {
        assert!(
            sync_id <= self.sync.completed,
            "raft readies released by sync {sync_id} before it completed"
        );
        loop {
            let cluster = &mut *self.cluster;
            let due = cluster
                .raft_pending
                .front()
                .is_some_and(|p| p.sync_id <= sync_id);
            if !due {
                break;
            }
            let Some(pending) = cluster.raft_pending.pop_front() else {
                break;
            };
            self.release_raft(now, pending.messages, pending.snapshot, pending.committed);
        }
        // Whatever is left waits for a later sync (the queue is in sync order).
        debug_assert!(
            (self.cluster.raft_pending.iter()).all(|p| p.sync_id > sync_id),
            "a ready covered by sync {sync_id} left pending"
        );
        // Followers waiting for their appends to be durable fetch again now.
        let ready: Vec<(Uuid, usize)> = self
            .cluster
            .replicas
            .iter()
            .filter_map(|(key, r)| match r {
                Replica::Follower(f) if f.fetch_after_sync.is_some_and(|s| s <= sync_id) => {
                    Some(*key)
                }
                _ => None,
            })
            .collect();
        for key in ready {
            if let Some(Replica::Follower(f)) = self.cluster.replicas.get_mut(&key) {
                f.fetch_after_sync = None;
                f.not_before = now.instant;
            }
            self.send_follower_request(now, key);
        }
        // The leader's own durable end moved: high watermarks may too.
        let led: Vec<(Uuid, usize)> = self
            .cluster
            .replicas
            .iter()
            .filter(|(_, r)| matches!(r, Replica::Leader(_)))
            .map(|(k, _)| *k)
            .collect();
        for key in led {
            self.recompute_hw(key);
        }
        self.release_hw_waiters();
        self.drive_cluster(now);
    }

    /// Release a Ready whose writes are durable: send its messages, install its snapshot
    /// into the image, apply its committed entries. Order matters: the snapshot replaces
    /// the image before the entries that follow it apply.
    fn release_raft(
        &mut self,
        now: Now,
        messages: Vec<(i32, RaftMessage)>,
        snapshot: Option<Snapshot>,
        committed: Vec<Entry>,
    ) {
        // Committed entries arrive in index order: the image applies each exactly once.
        debug_assert!(
            committed.windows(2).all(|w| w[0].index < w[1].index),
            "committed entries out of order"
        );
        for (to, message) in messages {
            let bytes = postcard::to_allocvec(&message).unwrap_or_default();
            self.send_peer(to, PeerMessage::Raft(bytes));
        }
        if let Some(snapshot) = snapshot {
            match MetadataImage::decode(&snapshot.data) {
                Ok(mut image) => {
                    // A snapshot replaces the whole image. Roles, local topics and waiters
                    // are reconciled with it below: topics it lacks are deleted here (and
                    // their acks=all waiters failed), the others materialized and re-roled.
                    image.applied_index = snapshot.last_index;

                    let cluster = &mut *self.cluster;
                    let old = std::mem::replace(&mut cluster.image, image);
                    let gone: Vec<u128> = old
                        .topics
                        .keys()
                        .copied()
                        .filter(|id| !cluster.image.topics.contains_key(id))
                        .collect();
                    let present: Vec<u128> = cluster.image.topics.keys().copied().collect();
                    for id in gone {
                        let uuid = Uuid::from_u128(id);
                        if self.topics.contains_key(&uuid) {
                            self.delete_topic(uuid);
                        }
                        self.cluster.replicas.retain(|(t, _), _| *t != uuid);
                        self.fail_hw_waiters_of(uuid, None);
                    }
                    for id in present {
                        self.materialize_topic(id);
                        let count = self
                            .cluster
                            .image
                            .topics
                            .get(&id)
                            .map_or(0, |t| t.partitions.len());
                        for index in 0..count {
                            self.update_role(now, Uuid::from_u128(id), index);
                        }
                    }
                    self.wake_fetches(|_| true);
                }
                Err(error) => {
                    self.poison(format!("metadata snapshot undecodable: {error}"));
                    return;
                }
            }
        }
        for entry in committed {
            // Leader no-ops and voter-set changes (Raft's own entries) only move the
            // applied index; the image applies the controller's records.
            if entry.kind() != crate::raft::EntryKind::Command {
                self.cluster.image.applied_index =
                    self.cluster.image.applied_index.max(entry.index);
                continue;
            }
            match MetaRecord::decode(&entry.data) {
                Ok(record) => self.apply_record(now, entry.index, record),
                Err(error) => {
                    self.poison(format!(
                        "metadata entry {} undecodable: {error}",
                        entry.index
                    ));
                    return;
                }
            }
        }
        self.after_apply(now);
    }

    /// Apply one committed metadata record to the image and react.
    fn apply_record(&mut self, now: Now, index: u64, record: MetaRecord) {
        let cluster = &mut *self.cluster;
        // Committed entries apply once each, in index order (a snapshot install drops
        // the ones it covers).
        assert!(
            index > cluster.image.applied_index,
            "metadata entry {index} applied again (applied {})",
            cluster.image.applied_index
        );
        let mut own_registration = false;
        // A change of this broker's own registration or fencing in a quorum of one: it
        // heartbeats at once (a call to itself) rather than at the next interval, so it
        // takes the next step (unfence) and learns it is unfenced without waiting a
        // heartbeat interval each, and serves a few syncs after start. Brokers of a larger
        // quorum keep the interval, as Kafka's do (see `ClusterState::alone`).
        let own_state = match &record {
            MetaRecord::RegisterBroker(broker) => broker.id == self.config.node_id,
            MetaRecord::SetFenced { id, .. } => *id == self.config.node_id,
            _ => false,
        };
        if own_state && cluster.alone(self.config.node_id) {
            cluster.next_heartbeat = cluster.next_heartbeat.min(now.instant);
        }
        if let MetaRecord::RegisterBroker(broker) = &record {
            // A broker outside the voter set in force follows as a learner (`add_learner`
            // ignores voters, and the set may have changed since the static config).
            if cluster.raft.is_leader() {
                cluster.raft.add_learner(broker.id);
            }
            own_registration = broker.id == self.config.node_id
                && broker.incarnation == cluster.incarnation
                && cluster.caught_up;
        }
        let change = cluster.image.apply(index, record);
        // The roles below react to the applied image only: the decision image may run
        // ahead, but a broker acts on what is committed.
        if own_registration {
            // Leader roles wait for this incarnation's registration (see `update_role`).
            self.update_all_roles(now);
        }
        match change {
            ImageChange::None => {}
            ImageChange::TopicCreated(id) | ImageChange::PartitionsAdded(id) => {
                self.materialize_topic(id);
                let count = self
                    .cluster
                    .image
                    .topics
                    .get(&id)
                    .map_or(0, |t| t.partitions.len());
                for index in 0..count {
                    self.update_role(now, Uuid::from_u128(id), index);
                }
            }

            ImageChange::TopicDeleted(topic) => {
                let id = Uuid::from_u128(topic.id);
                if self.topics.contains_key(&id) {
                    self.delete_topic(id);
                    self.wake_fetches(|_| true);
                }
                self.cluster.replicas.retain(|(t, _), _| *t != id);
                self.fail_hw_waiters_of(id, None);
            }
            ImageChange::ConfigChanged(id) => {
                let uuid = Uuid::from_u128(id);
                let configs = self
                    .cluster
                    .image
                    .topics
                    .get(&id)
                    .map(|t| t.configs.clone())
                    .unwrap_or_default();
                let pairs = configs.iter().map(|(k, v)| (k.as_str(), Some(v.as_str())));
                if let (Ok(config), Some(topic)) = (
                    TopicConfig::from_overrides(pairs),
                    self.topics.get_mut(&uuid),
                ) {
                    topic.config = config;
                    let topic = topic.clone();
                    self.persist_topic(&topic);
                }
            }
            ImageChange::PartitionChanged(id, partition) => {
                if let Ok(index) = usize::try_from(partition) {
                    self.update_role(now, Uuid::from_u128(id), index);
                }
            }
        }
    }

    /// Bring this node's role for every partition of the image in line with it.
    fn update_all_roles(&mut self, now: Now) {
        let cluster = &*self.cluster;
        // Before catch-up no role is held (`update_role_inner` removes them all).
        debug_assert!(cluster.caught_up || cluster.replicas.is_empty());
        let keys: Vec<(Uuid, usize)> = cluster
            .image
            .topics
            .values()
            .flat_map(|t| (0..t.partitions.len()).map(move |i| (Uuid::from_u128(t.id), i)))
            .collect();
        for (id, index) in keys {
            self.update_role(now, id, index);
        }
    }

    /// Create (or grow) the local catalog entry of an image topic. The image is the
    /// truth: the local catalog only follows it (a partition count never shrinks, and a
    /// local topic of the same name but another id is a deleted predecessor).
    fn materialize_topic(&mut self, id: u128) {
        let Some(topic) = self.cluster.image.topics.get(&id).cloned() else {
            return;
        };
        let uuid = Uuid::from_u128(id);
        let count = topic.partitions.len() as i32;
        match self.topics.get(&uuid).map(|t| t.partitions.len()) {
            Some(local) if local as i32 >= count => {}
            Some(_) => self.grow_topic(uuid, count),
            None => {
                // A stale local topic of the same name (deleted while this node was away)
                // gives way to the image's.
                if let Some(&old) = self.topic_ids.get(&topic.name) {
                    if old != uuid {
                        self.delete_topic(old);
                    }
                }
                let pairs = topic
                    .configs
                    .iter()
                    .map(|(k, v)| (k.as_str(), Some(v.as_str())));
                // The controller validated these configs; one this node cannot parse (a
                // key of a newer version, say) must not keep it from holding the topic's
                // data, so it falls back to the defaults, loudly.
                let config = TopicConfig::from_overrides(pairs).unwrap_or_else(|error| {
                    tracing::error!(
                        topic = %topic.name,
                        %error,
                        "topic configs from the metadata log do not parse; defaults used"
                    );
                    TopicConfig::default()
                });
                self.create_topic_with_id(&topic.name, count, config, Some(uuid));
            }
        }
    }

    /// After a batch of records: catch-up detection, role updates, waiters, compaction.
    /// Catch-up is one-way: once set it stays, and from then on roles follow the image.
    fn after_apply(&mut self, now: Now) {
        let cluster = &mut *self.cluster;
        let applied = cluster.image.applied_index;
        // Caught up: the whole log committed in the current term is applied. The commit
        // index alone is not enough: after every node restarted it is back at the snapshot
        // until the new leader commits an entry of its own term, and acting on that stale
        // image would make this node lead at old epochs.
        let commit = cluster.raft.commit_index();
        let commit_is_current = cluster
            .raft
            .entry(commit)
            .is_some_and(|entry| entry.term == cluster.raft.term());
        if !cluster.caught_up
            && cluster.raft.leader().is_some()
            && commit_is_current
            && applied >= commit
        {
            cluster.caught_up = true;
            // A quorum of one hears at once that it caught up (the controller unfences a
            // broker only then); see `apply_record`.
            if cluster.alone(self.config.node_id) {
                cluster.next_heartbeat = cluster.next_heartbeat.min(now.instant);
            }
            tracing::info!(applied, "metadata caught up; taking partition roles");
            self.update_all_roles(now);
        }
        // Answers whose entries are applied are judged before compaction drops the entries.
        self.answer_commit_waiters();
        let cluster = &mut *self.cluster;
        // Compact only when the image holds exactly what Raft applied: the snapshot is
        // this image, and must describe the log up to its index, no more and no less.
        if cluster.raft.applied_index() > cluster.raft.snapshot_index() + SNAPSHOT_EVERY_ENTRIES
            && applied == cluster.raft.applied_index()
        {
            let data = cluster.image.encode();
            cluster.raft.compact(applied, data);
            assert!(cluster.raft.snapshot_index() <= applied);
        }
    }

    /// Bring this node's role for one partition in line with the image. Leading a partition
    /// of `__consumer_offsets` is coordinating its groups: the group coordinator takes them
    /// over when the leadership starts and resigns them when it ends.
    fn update_role(&mut self, now: Now, topic_id: Uuid, index: usize) {
        let led = self.leads_index(topic_id, index);
        self.update_role_inner(now, topic_id, index);
        let leads = self.leads_index(topic_id, index);
        // A leader role exists only where the image names this node the leader.
        debug_assert!(
            !leads
                || (self
                    .cluster
                    .image
                    .partition(topic_id.as_u128(), index as i32))
                .is_some_and(|p| p.leader == self.config.node_id),
            "leader role against the image"
        );
        if led == leads {
            return;
        }
        let Some(topic) = self.topics.get(&topic_id) else {
            return;
        };
        if topic.name != crate::group::offsets_log::OFFSETS_TOPIC {
            return;
        }
        let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        let index_i32 = i32::try_from(index).unwrap_or(-1);
        let owns =
            |group: &str| crate::group::offsets_log::partition_for(group, count) == index_i32;
        if leads {
            let taken = self.groups.take_over(now, owns);
            if taken > 0 {
                tracing::info!(
                    index,
                    groups = taken,
                    "took over the groups of an offsets partition"
                );
            }
        } else {
            let resigned = self.groups.resign(now, owns);
            if resigned > 0 {
                tracing::info!(
                    index,
                    groups = resigned,
                    "resigned the groups of an offsets partition"
                );
            }
        }
        self.drain_group_outputs(now);
    }

    /// True when this node holds the leader role of the partition. (The image may name
    /// this node the leader before it takes the role: before catch-up, before its
    /// registration, or at an epoch its log already holds.)
    fn leads_index(&self, topic_id: Uuid, index: usize) -> bool {
        matches!(
            self.cluster.replicas.get(&(topic_id, index)),
            Some(Replica::Leader(_))
        )
    }

    /// The role decision proper (see [`Node::update_role`]). Losing a leader role fails
    /// its acks=all waiters and wakes consumer fetches at once: the HW they wait for will
    /// not come from this node, and a consumer must re-route to the new leader.
    fn update_role_inner(&mut self, now: Now, topic_id: Uuid, index: usize) {
        let node_id = self.config.node_id;
        let cluster = &mut *self.cluster;
        let state = cluster
            .image
            .partition(topic_id.as_u128(), index as i32)
            .cloned();
        let key = (topic_id, index);
        let Some(state) = state.filter(|_| cluster.caught_up && cluster.config.broker_role) else {
            cluster.replicas.remove(&key);
            return;
        };
        let current = cluster.replicas.get(&key).cloned();
        let was_leader = matches!(current, Some(Replica::Leader(_)));
        if state.leader == node_id {
            if let Some(Replica::Leader(mut leader)) = current {
                // Same epoch: the same leadership, with a new ISR or replica set (an
                // AlterIsr or a reassignment committed). Follower progress is kept: it
                // is what the HW and the next ISR decision are computed from.
                if leader.epoch == state.leader_epoch {
                    leader.isr = state.isr.clone();
                    leader.replicas = state.replicas.clone();
                    leader.partition_epoch = state.partition_epoch;
                    leader.pending_isr = None;
                    for r in &state.replicas {
                        if *r != node_id && !leader.followers.contains_key(r) {
                            leader.followers.insert(*r, new_progress(now));
                        }
                    }
                    cluster.replicas.insert(key, Replica::Leader(leader));
                    self.recompute_hw(key);
                    self.release_hw_waiters();
                    return;
                }
            }
            // A fresh leader role. Taken only by the incarnation the image registered: a
            // restarted process waits for its registration, which moves every leadership
            // of its previous incarnation to a new epoch (that incarnation may have served
            // followers appends this one lost). And never at an epoch this log already
            // holds: two different histories under one epoch could not be told apart by
            // the followers' epoch queries.
            let registered = cluster
                .image
                .brokers
                .get(&node_id)
                .is_some_and(|b| b.incarnation == cluster.incarnation);
            let last_epoch = self
                .topics
                .get(&topic_id)
                .and_then(|t| t.partitions.get(index))
                .map_or(-1, |log| log.last_epoch());
            #[cfg(feature = "planted-stale-decisions")]
            let (registered, last_epoch) = {
                let _ = (registered, last_epoch);
                (true, -1)
            };
            if !registered || state.leader_epoch <= last_epoch {
                if registered {
                    tracing::error!(
                        %topic_id,
                        index,
                        epoch = state.leader_epoch,
                        last_epoch,
                        "refusing to lead at an epoch this log already holds"
                    );
                }
                if was_leader {
                    self.fail_hw_waiters_of(topic_id, Some(index));
                    self.wake_fetches(|_| true);
                }
                self.cluster.replicas.remove(&key);
                return;
            }
            if was_leader {
                // Led at an older epoch: what waited on that epoch's high watermark fails.
                self.fail_hw_waiters_of(topic_id, Some(index));
            }
            let log = (self.topics.get(&topic_id)).and_then(|t| t.partitions.get(index));
            let epoch_start = log.map_or(0, |log| log.log_end_offset());
            // The HW the role starts from: what the log carries over (as a follower it took
            // the previous leader's), or its start when it never had one (set just below).
            let hw_floor = log.map_or(0, |log| {
                (log.replicated_hw()).unwrap_or(log.log_start_offset())
            });
            let cluster = &mut *self.cluster;
            let followers = state
                .replicas
                .iter()
                .filter(|r| **r != node_id)
                .map(|r| (*r, new_progress(now)))
                .collect();
            cluster.replicas.insert(
                key,
                Replica::Leader(LeaderState {
                    epoch: state.leader_epoch,
                    epoch_start,
                    partition_epoch: state.partition_epoch,
                    isr: state.isr.clone(),
                    replicas: state.replicas.clone(),
                    followers,
                    pending_isr: None,
                    hw_floor,
                }),
            );
            tracing::info!(%topic_id, index, epoch = state.leader_epoch, "leading partition");
            let Some(log) = self.log_mut((topic_id, index)) else {
                return;
            };
            let leo = log.log_end_offset();
            if log.replicated_hw().is_none() {
                log.set_replicated_hw(Some(log.log_start_offset()));
            }
            // The new epoch starts at the current log end: offsets from here on are this
            // leadership's, and followers' epoch queries find where the old ones ended.
            let pushed = log.push_epoch(state.leader_epoch, leo);
            assert_eq!(
                log.last_epoch(),
                state.leader_epoch,
                "a new leader's log must end in the epoch it leads"
            );
            if pushed {
                let op = epochs_op(log);
                self.emit(op);
            }
            self.recompute_hw(key);
            self.release_hw_waiters();
        } else if state.replicas.contains(&node_id) {
            // A follower role is replaced whenever the leader or its epoch changes: the
            // new role starts untruncated, so it queries the new leader's epochs before it
            // fetches (the new leader's history may differ from the old one's).
            if let Some(Replica::Follower(f)) = &current {
                if f.epoch == state.leader_epoch && f.leader == state.leader {
                    return;
                }
            }
            if matches!(current, Some(Replica::Leader(_))) {
                self.fail_hw_waiters_of(topic_id, Some(index));
                self.wake_fetches(|_| true);
            }
            if let Some(log) = self.log_mut((topic_id, index)) {
                if log.replicated_hw().is_none() {
                    log.set_replicated_hw(Some(log.log_start_offset()));
                }
            }
            let cluster = &mut *self.cluster;
            cluster.replicas.insert(
                key,
                Replica::Follower(FollowerState {
                    leader: state.leader,
                    epoch: state.leader_epoch,
                    truncated: false,
                    query_epoch: None,
                    in_flight: None,
                    not_before: now.instant,
                    fetch_after_sync: None,
                }),
            );
            if state.leader >= 0 {
                self.send_follower_request(now, key);
            }
        } else {
            if matches!(current, Some(Replica::Leader(_))) {
                self.fail_hw_waiters_of(topic_id, Some(index));
                self.wake_fetches(|_| true);
            }
            self.cluster.replicas.remove(&key);
        }
    }

    // ---- heartbeats and the controller ---------------------------------------------------

    /// The broker side of fencing: fence itself when the controller has been silent for a
    /// session (by then the controller fenced it and moved its leaderships, so serving on
    /// would let two leaders accept writes), and heartbeat when due.
    fn send_heartbeat(&mut self, now: Now) {
        let node_id = self.config.node_id;
        let host = self.config.advertised_host.clone();
        let port = self.config.advertised_port;
        let cluster = &mut *self.cluster;
        // Self-fencing: a broker the controller has not answered for a session stops
        // leading (the controller will have fenced it by then).
        if let Some(ok) = cluster.last_heartbeat_ok {
            let silent = now.instant.saturating_duration_since(ok).as_millis() as u64;
            if silent > cluster.config.broker_session_timeout_ms && !cluster.fenced {
                tracing::warn!(
                    silent,
                    "no heartbeat answer from the controller; self-fenced"
                );
                cluster.fenced = true;
            }
        }
        if now.instant < cluster.next_heartbeat {
            return;
        }
        cluster.next_heartbeat = now
            .instant
            .add_ms(cluster.config.broker_heartbeat_interval_ms);
        let heartbeat = BrokerHeartbeat {
            incarnation: cluster.incarnation,
            host,
            port,
            peer_addr: cluster.config.peer_addr.clone(),
            applied_index: cluster.image.applied_index,
            broker_role: cluster.config.broker_role,
        };
        let target = match cluster.raft.leader().or(cluster.controller_hint) {
            Some(leader) => leader,
            None => {
                // Ask the voters in force in turn (the set changes at run time); their
                // addresses come from the static config or the brokers' registrations.
                cluster.heartbeat_rotation += 1;
                let voters = cluster.raft.voters();
                let Some(voter) = voters
                    .iter()
                    .nth(cluster.heartbeat_rotation % voters.len().max(1))
                else {
                    return;
                };
                *voter
            }
        };
        if target == node_id {
            self.on_heartbeat(now, node_id, heartbeat);
        } else {
            self.send_peer(target, PeerMessage::Heartbeat(heartbeat));
        }
    }

    /// The active controller's side of a broker heartbeat: (re-)register a broker whose
    /// incarnation or addresses changed, unfence a registered broker once it has applied
    /// the log up to its registration, and answer with the broker's committed fencing.
    ///
    /// Decisions are made on the decision image, so a heartbeat that arrives while an
    /// earlier decision is still being committed sees it. A new incarnation always fences
    /// the old one first (its leaderships and ISR memberships are moved, each with a new
    /// leader epoch) even when the old one was already fenced: the restarted process may
    /// have lost unsynced appends its followers fetched, so it must never lead again at an
    /// epoch its previous incarnation held.
    fn on_heartbeat(&mut self, now: Now, from: i32, heartbeat: BrokerHeartbeat) {
        let node_id = self.config.node_id;
        let cluster = &mut *self.cluster;
        // Only the active controller answers with a fencing state: another node (or a
        // leader before its no-op applied) does not know the committed registrations, so
        // it says "fenced" and points at the leader it knows.
        if !cluster.is_active_controller() {
            let reply = PeerMessage::HeartbeatReply {
                controller: cluster.raft.leader(),
                fenced: true,
            };
            if from == node_id {
                return;
            }
            self.send_peer(from, reply);
            return;
        }
        cluster.sessions.insert(from, now.instant);
        cluster.suspects.remove(&from);
        let registered = cluster.decision_image().brokers.get(&from).cloned();
        let needs_registration = registered.as_ref().is_none_or(|b| {
            b.incarnation != heartbeat.incarnation
                || b.host != heartbeat.host
                || b.port != heartbeat.port
                || b.peer_addr != heartbeat.peer_addr
        });
        if needs_registration {
            let record = MetaRecord::RegisterBroker(crate::cluster::image::BrokerState {
                id: from,
                incarnation: heartbeat.incarnation,
                host: heartbeat.host.clone(),
                port: heartbeat.port,
                peer_addr: heartbeat.peer_addr.clone(),
                fenced: true,
                broker_role: heartbeat.broker_role,
            });
            let new_incarnation = registered
                .as_ref()
                .is_some_and(|b| b.incarnation != heartbeat.incarnation);
            let mut records = Vec::new();
            if new_incarnation || registered.as_ref().is_some_and(|b| !b.fenced) {
                records.extend(controller::fence_broker(
                    cluster.decision_image(),
                    from,
                    cluster.config.unclean_leader_election,
                ));
            }
            records.push(record);
            if let Some(index) = self.propose(records) {
                self.cluster.registered_at.insert(from, index);
            }
        } else if registered.as_ref().is_some_and(|b| b.fenced) {
            // Unfence once the broker applied the log up to its registration (a new
            // controller, which does not know that index, waits for its own no-op).
            let caught_up_to = cluster
                .registered_at
                .get(&from)
                .copied()
                .or(cluster.leader_start)
                .unwrap_or(0);
            if heartbeat.applied_index >= caught_up_to {
                let record = MetaRecord::SetFenced {
                    id: from,
                    fenced: false,
                };
                // Partitions left without a leader that this broker can now lead (its
                // only in-sync replica restarted, say) get it in the same decision, as
                // Kafka's controller does on unfence, not at the next periodic check.
                if self.propose(vec![record]).is_some() {
                    let unclean = self.cluster.config.unclean_leader_election;
                    let elections =
                        controller::elect_offline(self.cluster.decision_image(), unclean);
                    if !elections.is_empty() {
                        self.propose(elections);
                    }
                }
            }
        }
        let cluster = &mut *self.cluster;
        // The answer is the committed state: a broker acts as unfenced only once the
        // unfence is part of the log every future controller continues from.
        let fenced = cluster
            .image
            .brokers
            .get(&from)
            .is_none_or(|b| b.fenced || b.incarnation != heartbeat.incarnation);
        if from == node_id {
            cluster.last_heartbeat_ok = Some(now.instant);
            cluster.fenced = fenced;
            cluster.controller_hint = Some(node_id);
        } else {
            let reply = PeerMessage::HeartbeatReply {
                controller: Some(node_id),
                fenced,
            };
            self.send_peer(from, reply);
        }
    }

    /// The broker side of a heartbeat answer. Only an answer from the controller itself
    /// counts as a heartbeat answered (and sets the fencing state); any other node merely
    /// points at the controller it knows.
    fn on_heartbeat_reply(&mut self, now: Now, from: i32, controller: Option<i32>, fenced: bool) {
        let cluster = &mut *self.cluster;
        cluster.controller_hint = controller;
        if controller == Some(from) {
            cluster.last_heartbeat_ok = Some(now.instant);
            if cluster.fenced != fenced {
                tracing::info!(fenced, "fencing state from the controller");
            }
            cluster.fenced = fenced;
        } else if let Some(controller) = controller {
            // Ask the real controller at once.
            cluster.next_heartbeat = now.instant;
            cluster.controller_hint = Some(controller);
        }
    }

    /// Propose records as the active controller; returns the index of the last one.
    ///
    /// Only the active controller proposes (it has applied every entry of earlier terms, so
    /// its decision image is the applied image plus its own proposals). Each accepted
    /// record is applied to the decision image at once, so the next decision, in this
    /// input or a later one, builds on it. A record refused (throttled) is not applied and
    /// the caller's condition stays true, so it is decided again later.
    pub(super) fn propose(&mut self, records: Vec<MetaRecord>) -> Option<u64> {
        let cluster = &mut *self.cluster;
        if !cluster.is_active_controller() {
            return None;
        }
        cluster.start_decisions();
        debug_assert!(cluster.view.is_some(), "proposing without a decision image");
        let mut last = None;
        for record in records {
            match cluster.raft.propose(record.encode()) {
                Ok(index) => {
                    if let Some(view) = cluster.view.as_mut() {
                        view.apply(index, record);
                    }
                    last = Some(index);
                }
                Err(ProposeError::NotLeader(_)) => return None,
                Err(ProposeError::Throttled { .. }) => return None,
            }
        }
        last
    }

    /// The active controller's periodic work, decided on the decision image: fence every
    /// broker whose session expired (moving its leaderships), elect leaders for offline
    /// partitions that can get one, and (when due) move leadership back to preferred
    /// replicas. Proposals in flight are part of the decision image, so nothing is decided
    /// twice and nothing has to wait for the log to settle.
    fn controller_checks(&mut self, now: Now) {
        let cluster = &mut *self.cluster;
        let suspect_due = cluster.suspects.values().any(|at| now.instant >= *at);
        if !cluster.is_active_controller()
            || (now.instant < cluster.next_controller_check && !suspect_due)
        {
            return;
        }
        cluster.next_controller_check = now.instant.add_ms(CONTROLLER_CHECK_MS);
        if !cluster.adopt.is_empty() {
            let records = cluster.adopt.clone();
            if self.propose(records).is_some() {
                self.cluster.adopt.clear();
            }
        }
        let cluster = &mut *self.cluster;
        // A due suspect is fenced below (or already is): its deadline is spent either way,
        // and a spent deadline left in place would wake the node loop forever.
        let due_suspects: Vec<i32> = cluster
            .suspects
            .iter()
            .filter(|(_, at)| now.instant >= **at)
            .map(|(id, _)| *id)
            .collect();
        cluster.suspects.retain(|_, at| now.instant < *at);
        debug_assert!(due_suspects
            .iter()
            .all(|id| !cluster.suspects.contains_key(id)));
        let timeout = cluster.config.broker_session_timeout_ms;
        let unclean = cluster.config.unclean_leader_election;
        // A broker this controller has not heard from yet gets one session from now (its
        // image may have been empty when it took over): it must still expire.
        let known: Vec<i32> = cluster.decision_image().brokers.keys().copied().collect();
        for id in known {
            cluster.sessions.entry(id).or_insert(now.instant);
        }
        let expired: Vec<i32> = cluster
            .decision_image()
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .filter(|b| {
                let last = cluster.sessions.get(&b.id).copied().unwrap_or(now.instant);
                let silent = now.instant.saturating_duration_since(last).as_millis() as u64;
                silent > timeout || due_suspects.contains(&b.id)
            })
            .map(|b| b.id)
            .collect();
        for broker in expired {
            tracing::warn!(broker, "broker session expired; fencing it");
            let cluster = &*self.cluster;
            let records = controller::fence_broker(cluster.decision_image(), broker, unclean);
            if self.propose(records).is_none() {
                return;
            }
        }
        let cluster = &mut *self.cluster;
        let mut records = controller::elect_offline(cluster.decision_image(), unclean);
        if records.is_empty()
            && cluster.config.auto_leader_rebalance
            && now.instant >= cluster.next_rebalance
        {
            cluster.next_rebalance = now
                .instant
                .add_ms(cluster.config.leader_imbalance_check_interval_ms);
            records.extend(controller::preferred_elections(
                cluster.decision_image(),
                None,
            ));
        }
        if !records.is_empty() {
            self.propose(records);
        }
    }

    fn on_auto_create(&mut self, names: Vec<String>) {
        let cluster = &*self.cluster;
        if !cluster.is_active_controller() {
            return;
        }
        // Internal topics get Kafka's replication factor 3, or as many as the cluster has
        // brokers (registered ones, or voters for those not registered yet), and are created
        // only once that many are live: created while a broker is still starting, they would
        // stay under-replicated for good (Kafka refuses to create them under-replicated too).
        let image = cluster.decision_image();
        let known = image.brokers.len().max(cluster.raft.voters().len());
        let internal_rf = known.clamp(1, INTERNAL_TOPIC_RF_MAX);
        debug_assert!((1..=INTERNAL_TOPIC_RF_MAX).contains(&internal_rf));
        let live = image.live_brokers().len();
        for name in names {
            let internal_partitions = match name.as_str() {
                crate::group::offsets_log::OFFSETS_TOPIC => {
                    Some(self.config.offsets_topic_num_partitions)
                }
                crate::txn_log::TXN_STATE_TOPIC => {
                    Some(self.config.transaction_state_log_num_partitions)
                }
                _ => None,
            };
            if internal_partitions.is_some() && live < internal_rf {
                tracing::info!(
                    name,
                    live,
                    internal_rf,
                    "internal topic waits for enough live brokers"
                );
                continue;
            }
            let request = match internal_partitions {
                // Internal topics: replicated like Kafka's (RF 3 or as many brokers as
                // there are), never expiring (the leader compacts them).
                Some(partitions) => weir_wire::domain::CreatableTopic {
                    name: name.clone(),
                    num_partitions: partitions,
                    replication_factor: internal_rf as i16,
                    assignments: Vec::new(),
                    configs: vec![
                        ("retention.ms".into(), Some("-1".into())),
                        ("retention.bytes".into(), Some("-1".into())),
                    ],
                },
                None => weir_wire::domain::CreatableTopic {
                    name: name.clone(),
                    num_partitions: -1,
                    replication_factor: -1,
                    assignments: Vec::new(),
                    configs: Vec::new(),
                },
            };
            if let Ok(record) = self.plan_create_topic(&request) {
                self.propose(vec![record]);
            }
        }
    }

    /// Validate a CreateTopics entry as the controller and build its record.
    pub(super) fn plan_create_topic(
        &self,
        topic: &weir_wire::domain::CreatableTopic,
    ) -> Result<MetaRecord, (ErrorCode, String)> {
        let spec = self.validate_creatable(topic)?;
        let cluster = &*self.cluster;
        if cluster.decision_image().names.contains_key(&topic.name) {
            return Err((
                ErrorCode::TOPIC_ALREADY_EXISTS,
                format!("Topic '{}' already exists.", topic.name),
            ));
        }
        let assignments = if topic.assignments.is_empty() {
            let start = cluster.decision_image().topics.len() + topic.name.len();
            controller::place_replicas(
                cluster.decision_image(),
                spec.partitions,
                spec.replication_factor,
                start,
            )
            .map_err(|m| (ErrorCode::INVALID_REPLICATION_FACTOR, m))?
        } else {
            topic.assignments.iter().map(|(_, r)| r.clone()).collect()
        };
        // The id mixes the log position and term of the proposal: two controllers (or two
        // terms) creating a topic of the same name get different ids, so a topic deleted
        // and recreated is never confused with its predecessor by a lagging broker.
        let id = crate::topic::derive_topic_id(
            &self.config.cluster_id,
            self.config.node_id,
            cluster.raft.last_index() ^ (cluster.raft.term() << 40),
        );
        Ok(MetaRecord::CreateTopic(TopicImage {
            name: topic.name.clone(),
            id: id.as_u128(),
            configs: spec.config.overrides().into_iter().collect(),
            partitions: assignments
                .into_iter()
                .map(crate::cluster::image::PartitionState::new)
                .collect(),
        }))
    }

    /// Answer now, or once metadata index `last` (the last record the request proposed)
    /// is applied here.
    pub(super) fn respond_after_index(
        &mut self,
        id: RequestId,
        last: Option<u64>,
        response: ApiResponse,
    ) {
        match last {
            Some(index) => self.respond_when_applied(id, index, response),
            None => self.respond(id, response),
        }
    }

    /// Park an answer until metadata index `index` (the last record its request
    /// proposed) is committed and applied here; answer now when it already is. The answer
    /// becomes its error form (NOT_CONTROLLER) if a new Raft leader replaced the entry, and
    /// REQUEST_TIMED_OUT when too many answers wait already: a success is never sent for a
    /// record that may not commit.
    pub(super) fn respond_when_applied(
        &mut self,
        id: RequestId,
        index: u64,
        response: ApiResponse,
    ) {
        let cluster = &mut *self.cluster;
        if cluster.image.applied_index >= index {
            self.respond(id, response);
            return;
        }
        // The entry this answer waits for is the one now at `index` in this node's log.
        // Its term is what tells, at apply time, whether it survived a change of leader.
        let term = (cluster.raft.entry(index)).map_or(cluster.raft.term(), |e| e.term);
        debug_assert!(index > cluster.image.applied_index);
        let waiter = CommitWaiter {
            index,
            term,
            response,
        };
        if let Err(waiter) = cluster.commit_waiters.insert(id, None, waiter) {
            let message = "too many requests waiting for their metadata to commit; retry";
            let response =
                super::errors::with_error(waiter.response, ErrorCode::REQUEST_TIMED_OUT, message);
            self.respond(id, response);
        }
    }

    /// Answer the commit waiters whose entries this node has applied: as planned when the
    /// applied entry is the one they waited for, in error form when a new leader replaced
    /// it. Runs after every apply, before compaction can drop the entries.
    pub(super) fn answer_commit_waiters(&mut self) {
        let cluster = &mut *self.cluster;
        let applied = cluster.image.applied_index;
        let due: Vec<RequestId> = (cluster.commit_waiters.iter())
            .filter(|(_, waiter)| waiter.index <= applied)
            .map(|(id, _)| *id)
            .collect();
        let mut answers = Vec::with_capacity(due.len());
        for id in due {
            let Some(waiter) = cluster.commit_waiters.remove(id) else {
                continue;
            };
            // Compacted entries were committed (compaction runs after this, over applied
            // entries only).
            let committed = match cluster.raft.entry(waiter.index) {
                Some(entry) => entry.term == waiter.term,
                None => waiter.index <= cluster.raft.snapshot_index(),
            };
            let response = if committed {
                waiter.response
            } else {
                let message = "the controller changed before the change committed; retry";
                super::errors::with_error(waiter.response, ErrorCode::NOT_CONTROLLER, message)
            };
            answers.push((id, response));
        }
        debug_assert!(
            (cluster.commit_waiters.iter()).all(|(_, w)| w.index > applied),
            "a commit waiter left behind its applied entry"
        );
        // What applying the records wrote here (a created topic's partitions, say) is
        // durable before the answer, as a single node's admin answers always were.
        for (id, response) in answers {
            if super::errors::may_wait_for_sync(&response) {
                self.respond_when_durable(id, response, None);
            } else {
                self.respond(id, response);
            }
        }
    }

    /// The controller side of an ISR change. `controller::alter_isr` refuses a request
    /// from a non-leader or one carrying a stale leader or partition epoch (a request the
    /// leader resent after the change already committed is one), so a delayed request
    /// can never undo a newer decision.
    fn on_alter_isr(&mut self, from: i32, request: AlterIsr) {
        let cluster = &*self.cluster;
        if !cluster.is_active_controller() {
            return;
        }
        if let Some(record) = controller::alter_isr(cluster.decision_image(), from, &request) {
            self.propose(vec![record]);
        }
    }

    // ---- replication: leader side ----------------------------------------------------------

    /// Periodic leader work: ISR shrink requests, and resending an ISR change the
    /// controller has not reflected in the image after [`ALTER_ISR_RETRY_MS`] (expansion
    /// requests are made by `on_replica_fetch`, when the follower fetches).
    fn leader_checks(&mut self, now: Now) {
        let node_id = self.config.node_id;
        let cluster = &mut *self.cluster;
        if now.instant < cluster.next_leader_check {
            return;
        }
        cluster.next_leader_check = now.instant.add_ms(LEADER_CHECK_MS);
        let lag_max = cluster.config.replica_lag_time_max_ms;
        let mut requests = Vec::new();
        for ((topic_id, index), replica) in cluster.replicas.iter_mut() {
            let Replica::Leader(leader) = replica else {
                continue;
            };
            if let Some((_, sent)) = &leader.pending_isr {
                if now.instant.saturating_duration_since(*sent).as_millis() as u64
                    > ALTER_ISR_RETRY_MS
                {
                    leader.pending_isr = None;
                } else {
                    continue;
                }
            }
            let lagging: Vec<i32> = leader
                .isr
                .iter()
                .copied()
                .filter(|r| *r != node_id)
                .filter(|r| {
                    leader.followers.get(r).is_none_or(|p| {
                        now.instant
                            .saturating_duration_since(p.caught_up_at)
                            .as_millis() as u64
                            > lag_max
                    })
                })
                .collect();
            // Shrink: drop the members that have not caught up within replica.lag.time.max.
            // The leader never lags itself, so it stays; the HW can only rise when a slow
            // member leaves (it is a minimum over fewer members).
            if !lagging.is_empty() {
                let isr: Vec<i32> = leader
                    .isr
                    .iter()
                    .copied()
                    .filter(|r| !lagging.contains(r))
                    .collect();
                debug_assert!(isr.contains(&node_id), "a shrink removing the leader");
                tracing::info!(%topic_id, index, ?lagging, "shrinking ISR");
                leader.pending_isr = Some((isr.clone(), now.instant));
                requests.push(AlterIsr {
                    topic_id: uuid_bytes(*topic_id),
                    partition: *index as i32,
                    leader_epoch: leader.epoch,
                    partition_epoch: leader.partition_epoch,
                    isr,
                });
            }
        }
        for request in requests {
            self.send_alter_isr(request);
        }
    }

    /// Send an ISR change to the controller (to itself in a quorum of one). Without a known
    /// controller it is dropped; `pending_isr` stays set, and `leader_checks` resends
    /// after [`ALTER_ISR_RETRY_MS`].
    fn send_alter_isr(&mut self, request: AlterIsr) {
        let node_id = self.config.node_id;
        debug_assert!(
            request.isr.contains(&node_id),
            "an ISR change leaving out its own leader"
        );
        let Some(controller) = self.cluster.raft.leader() else {
            return;
        };
        if controller == node_id {
            self.on_alter_isr(node_id, request);
        } else {
            self.send_peer(controller, PeerMessage::AlterIsr(request));
        }
    }

    /// The leader side of a replica fetch: refuse it unless this node leads at exactly
    /// the follower's epoch and the offset lies within the log; record the follower's
    /// progress (its own claims, bounded here), maybe ask to add it to the ISR, move the
    /// HW, and answer at once or park the fetch until new data (long poll).
    fn on_replica_fetch(&mut self, now: Now, from: i32, fetch: ReplicaFetch) {
        let topic_id = Uuid::from_u128(u128::from_be_bytes(fetch.topic_id));
        let Ok(index) = usize::try_from(fetch.partition) else {
            return;
        };
        let key = (topic_id, index);
        let refusal = |error: ErrorCode, epoch: i32| ReplicaFetchReply {
            correlation: fetch.correlation,
            topic_id: fetch.topic_id,
            partition: fetch.partition,
            error: error.0,
            leader_epoch: epoch,
            high_watermark: -1,
            log_start_offset: -1,
            records: PeerRecords::Bytes(Vec::new()),
        };
        let cluster = &mut *self.cluster;
        let Some(Replica::Leader(leader)) = cluster.replicas.get_mut(&key) else {
            self.send_peer(
                from,
                PeerMessage::FetchReply(refusal(ErrorCode::NOT_LEADER_OR_FOLLOWER, -1)),
            );
            return;
        };
        if fetch.leader_epoch != leader.epoch {
            let error = if fetch.leader_epoch < leader.epoch {
                ErrorCode::FENCED_LEADER_EPOCH
            } else {
                ErrorCode::UNKNOWN_LEADER_EPOCH
            };
            let epoch = leader.epoch;
            self.send_peer(from, PeerMessage::FetchReply(refusal(error, epoch)));
            return;
        }
        let epoch = leader.epoch;
        let Some(log) = self
            .topics
            .get(&topic_id)
            .and_then(|t| t.partitions.get(index))
        else {
            return;
        };
        let leo = log.log_end_offset();
        // A follower past our log end holds what we do not (a stale leader's suffix it has
        // not truncated yet); one below our log start asks for what we deleted. Neither is
        // recorded as progress.
        if fetch.fetch_offset > leo || fetch.fetch_offset < log.log_start_offset() {
            // The log start tells a follower below it to reset (see `on_fetch_reply`).
            let mut reply = refusal(ErrorCode::OFFSET_OUT_OF_RANGE, epoch);
            reply.log_start_offset = log.log_start_offset();
            reply.high_watermark = log.high_watermark();
            self.send_peer(from, PeerMessage::FetchReply(reply));
            return;
        }
        let Some(Replica::Leader(leader)) = self.cluster.replicas.get_mut(&key) else {
            return;
        };
        let progress = leader
            .followers
            .entry(from)
            .or_insert_with(|| new_progress(now));
        // Kafka's lag rule: a follower is caught up when it fetched to our log end, or to
        // where our log ended at its previous fetch (so a steady produce stream does not
        // make every follower look behind).
        if fetch.fetch_offset >= leo || fetch.fetch_offset >= progress.leo_at_last_fetch {
            progress.caught_up_at = now.instant;
        }
        assert!(
            fetch.fetch_offset <= leo,
            "follower progress past the leader's log end"
        );
        progress.fetch_offset = fetch.fetch_offset;
        // What a follower claims durable is capped by what it claims held: a follower
        // cannot have synced what it does not have.
        progress.durable_offset = fetch.durable_offset.min(fetch.fetch_offset);
        progress.leo_at_last_fetch = leo;
        // Expansion: a caught-up replica outside the ISR asks to come back.
        // It must hold everything the high watermark covers and everything of earlier
        // epochs (KAFKA-7128), and under isr-fsync have made the covered part durable, so
        // that the high watermark stays at most the durable end of every ISR member.
        let hw = log.high_watermark();
        let needed = hw.max(leader.epoch_start.min(leo));
        let durable_mode = self.cluster.config.ack_durability == AckDurability::IsrFsync;
        let Some(Replica::Leader(leader)) = self.cluster.replicas.get_mut(&key) else {
            return;
        };
        let mut expand = None;
        if !leader.isr.contains(&from)
            && leader.pending_isr.is_none()
            && leader.replicas.contains(&from)
            && fetch.fetch_offset >= needed
            && leader.followers.get(&from).is_some_and(|p| {
                p.fetch_offset >= needed && (!durable_mode || p.durable_offset >= hw)
            })
        {
            let mut isr = leader.isr.clone();
            isr.push(from);
            leader.pending_isr = Some((isr.clone(), now.instant));
            expand = Some(AlterIsr {
                topic_id: fetch.topic_id,
                partition: fetch.partition,
                leader_epoch: leader.epoch,
                partition_epoch: leader.partition_epoch,
                isr,
            });
        }
        if let Some(request) = expand {
            self.send_alter_isr(request);
        }
        self.recompute_hw(key);
        self.release_hw_waiters();
        if fetch.fetch_offset < leo || fetch.max_wait_ms == 0 {
            self.answer_replica_fetch(from, &fetch);
        } else {
            let cluster = &mut *self.cluster;
            let wait = fetch
                .max_wait_ms
                .min(cluster.config.replica_fetch_wait_max_ms.max(1));
            let key = (from, fetch.correlation);
            // A resent fetch replaces the one it repeats.
            cluster.parked_fetches.remove(key);
            let deadline = Some(now.instant.add_ms(wait));
            if let Err(fetch) = cluster.parked_fetches.insert(key, deadline, fetch) {
                // Full: answered at once (empty), the follower asks again.
                self.answer_replica_fetch(from, &fetch);
            }
        }
    }

    /// Answer a replica fetch with what the log holds from its offset. The leadership is
    /// checked again: a parked fetch may be answered after this node lost the role, and
    /// then it is dropped (the follower resends to the new leader).
    fn answer_replica_fetch(&mut self, to: i32, fetch: &ReplicaFetch) {
        let topic_id = Uuid::from_u128(u128::from_be_bytes(fetch.topic_id));
        let Ok(index) = usize::try_from(fetch.partition) else {
            return;
        };
        let Some(Replica::Leader(leader)) = self.cluster.replicas.get(&(topic_id, index)) else {
            return;
        };
        let epoch = leader.epoch;
        // A held fetch was checked against the epoch when it arrived; this node may have
        // lost the leadership and taken it again since (truncating in between). Records of
        // the new epoch read from the offset of a fetch of the old one could extend a suffix
        // the follower must first truncate: refuse it, so the follower asks its epoch again.
        if fetch.leader_epoch != epoch {
            let reply = ReplicaFetchReply {
                correlation: fetch.correlation,
                topic_id: fetch.topic_id,
                partition: fetch.partition,
                error: ErrorCode::FENCED_LEADER_EPOCH.0,
                leader_epoch: epoch,
                high_watermark: -1,
                log_start_offset: -1,
                records: PeerRecords::Bytes(Vec::new()),
            };
            self.send_peer(to, PeerMessage::FetchReply(reply));
            return;
        }
        let Some(log) = self
            .topics
            .get(&topic_id)
            .and_then(|t| t.partitions.get(index))
        else {
            return;
        };
        let leo = log.log_end_offset();
        // The HW sent is at most our log end (it is at most our durable end); the follower
        // caps it at its own log end too.
        debug_assert!(log.high_watermark() <= leo);
        // The records are read by the driver (`PeerRecords::Read`), not here: a fetch far
        // behind does not copy the log into the node's memory.
        let records = if fetch.fetch_offset < leo {
            PeerRecords::Read {
                partition_key: log.partition_key(),
                start_offset: fetch.fetch_offset,
                end_offset: leo,
                max_bytes: fetch.max_bytes,
            }
        } else {
            PeerRecords::Bytes(Vec::new())
        };
        let reply = ReplicaFetchReply {
            correlation: fetch.correlation,
            topic_id: fetch.topic_id,
            partition: fetch.partition,
            error: 0,
            leader_epoch: epoch,
            high_watermark: log.high_watermark(),
            log_start_offset: log.log_start_offset(),
            records,
        };
        self.send_peer(to, PeerMessage::FetchReply(reply));
    }

    /// New data on a led partition: answer the replica fetches held for it. Followers
    /// long-poll, so replication latency is the time to the next append, not the poll.
    pub(super) fn wake_replica_fetches(&mut self, topic_id: Uuid, index: usize) {
        let cluster = &mut *self.cluster;
        if cluster.parked_fetches.is_empty() {
            return;
        }
        let bytes = uuid_bytes(topic_id);
        let woken = (cluster.parked_fetches)
            .remove_where(|_, f| f.topic_id == bytes && f.partition == index as i32);
        for ((from, _), fetch) in woken {
            self.answer_replica_fetch(from, &fetch);
        }
    }

    /// The leader's high watermark: min over the maximal ISR of durable (or held) offsets.
    ///
    /// This is the one place a leader's HW moves, and it only moves up: a lower minimum
    /// (a follower that restarted and lost what it held, say) leaves it where it is. The
    /// HW already answered acks=all produces and was shown to consumers; taking it back
    /// would un-acknowledge writes. Such a follower drops out of the ISR by lag instead.
    fn recompute_hw(&mut self, key: (Uuid, usize)) {
        let cluster = &*self.cluster;
        let Some(Replica::Leader(leader)) = cluster.replicas.get(&key) else {
            return;
        };
        let node_id = self.config.node_id;
        // The maximal ISR: the committed one plus a pending change's members. A pending
        // expansion may commit before the leader hears of it; the new member then counts
        // at once, so the HW must already respect it.
        let mut members: Vec<i32> = leader.isr.clone();
        if let Some((pending, _)) = &leader.pending_isr {
            for r in pending {
                if !members.contains(r) {
                    members.push(*r);
                }
            }
        }
        debug_assert!(
            members.contains(&node_id),
            "the leader is missing from its own maximal ISR {members:?}"
        );
        let durable_mode = cluster.config.ack_durability == AckDurability::IsrFsync;
        let Some(log) = self
            .topics
            .get(&key.0)
            .and_then(|t| t.partitions.get(key.1))
        else {
            return;
        };
        // The leader's own share is its durable end in both modes: an acks=all answer
        // never precedes the leader's own sync.
        let mut hw = log.durable_end();
        for member in &members {
            if *member == node_id {
                continue;
            }
            // A member with no progress yet (it has not fetched in this epoch) holds
            // nothing as far as we know: -1 keeps the HW where it is.
            let held = leader.followers.get(member).map_or(-1, |p| {
                if durable_mode {
                    p.durable_offset
                } else {
                    p.fetch_offset
                }
            });
            hw = hw.min(held);
        }
        // The HW rule itself: at most what every member of the maximal ISR made durable
        // (isr-fsync) or holds (isr-memory), and at most the leader's durable end.
        assert!(hw <= log.durable_end(), "hw {hw} above the durable end");
        debug_assert!(
            members.iter().filter(|m| **m != node_id).all(|m| {
                leader.followers.get(m).is_some_and(|p| {
                    hw <= if durable_mode {
                        p.durable_offset
                    } else {
                        p.fetch_offset
                    }
                }) || hw <= -1
            }),
            "hw {hw} above an ISR member's offset"
        );
        // PLANTED BUG (weir-sim only): advance the high watermark over what the leader
        // alone holds, before the ISR has it.
        #[cfg(feature = "planted-hw-before-isr")]
        {
            hw = log.durable_end();
        }
        let current = log.replicated_hw().unwrap_or(log.log_start_offset());
        // Nothing but this function moves a leader's replicated HW, and only upwards (a
        // leader never truncates its log), so it is still at least what it last set.
        assert!(
            current >= leader.hw_floor,
            "high watermark went down on a leader: {current} < {}",
            leader.hw_floor
        );
        if hw > current {
            let leo_key = log.partition_key();
            if let Some(log) = self.log_mut(key) {
                log.set_replicated_hw(Some(hw));
            }
            if let Some(Replica::Leader(leader)) = self.cluster.replicas.get_mut(&key) {
                leader.hw_floor = hw;
            }
            // Consumer fetches parked on this partition may now read more.
            self.wake_fetches(|keys| keys.contains(&leo_key));
        }
    }

    /// Register an acks=all produce answer to be released by high watermarks.
    pub(super) fn respond_when_replicated(
        &mut self,
        now: Now,
        id: RequestId,
        response: ApiResponse,
        needs: Vec<(Uuid, usize, i64)>,
        timeout_ms: u64,
    ) {
        let cluster = &mut *self.cluster;
        // Each need is a partition this node leads and the offset the HW must reach; a
        // waiter with none would never be released by an HW move.
        debug_assert!(!needs.is_empty(), "an acks=all waiter waiting for nothing");
        let deadline = Some(now.instant.add_ms(timeout_ms));
        if let Err(waiter) = (cluster.hw_waiters).insert(id, deadline, HwWaiter { needs, response })
        {
            let response = super::errors::with_error(
                waiter.response,
                ErrorCode::REQUEST_TIMED_OUT,
                "too many produce requests waiting for replication",
            );
            self.respond(id, response);
            return;
        }
        self.release_hw_waiters();
    }

    fn release_hw_waiters(&mut self) {
        self.release_marker_waiters();
        let cluster = &*self.cluster;
        if cluster.hw_waiters.is_empty() {
            return;
        }
        let done: Vec<RequestId> = cluster
            .hw_waiters
            .iter()
            .filter(|(_, waiter)| {
                waiter.needs.iter().all(|(topic_id, index, end)| {
                    self.topics
                        .get(topic_id)
                        .and_then(|t| t.partitions.get(*index))
                        .is_some_and(|log| log.high_watermark() >= *end)
                })
            })
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            if let Some(waiter) = self.cluster.hw_waiters.remove(id) {
                // Kafka's rule: an acks=all batch is replicated to the ISR, but if the ISR
                // shrank below min.insync.replicas meanwhile the producer is told so.
                let short = matches!(waiter.response, ApiResponse::Produce(_))
                    && waiter
                        .needs
                        .iter()
                        .any(|(topic_id, index, _)| self.isr_below_min(*topic_id, *index));
                let response = if short {
                    super::errors::with_error(
                        waiter.response,
                        ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                        "the ISR shrank below min.insync.replicas after the append",
                    )
                } else {
                    waiter.response
                };
                let now = Now::new(self.cluster_now(), 0);
                self.respond_durable(now, id, response);
            }
        }
    }

    /// True when this node leads the partition with fewer in-sync replicas than its
    /// `min.insync.replicas`. (The write is replicated to the ISR there was; Kafka still
    /// answers NOT_ENOUGH_REPLICAS_AFTER_APPEND so that the producer knows the guarantee
    /// it asked for was not met.)
    fn isr_below_min(&self, topic_id: Uuid, index: usize) -> bool {
        let Some(Replica::Leader(leader)) = self.cluster.replicas.get(&(topic_id, index)) else {
            return false;
        };
        let min_isr = self
            .topics
            .get(&topic_id)
            .and_then(|t| t.config.min_insync_replicas)
            .unwrap_or(self.config.min_insync_replicas);
        (leader.isr.len() as i32) < min_isr
    }

    /// Fail the acks=all waiters on a partition this node stops leading (or on every
    /// partition of a topic, `index` None). Never answered with success: the write may
    /// still be truncated by the new leader, so the producer must retry.
    fn fail_hw_waiters_of(&mut self, topic_id: Uuid, index: Option<usize>) {
        let failed = self.take_hw_waiters(|w| {
            w.needs
                .iter()
                .any(|(t, i, _)| *t == topic_id && index.is_none_or(|x| x == *i))
        });
        self.answer_hw_waiters(
            failed,
            ErrorCode::NOT_LEADER_OR_FOLLOWER,
            "leadership moved before the write was replicated",
        );
    }

    /// Remove and return the acks=all waiters `pick` selects.
    fn take_hw_waiters(&mut self, pick: impl Fn(&HwWaiter) -> bool) -> Vec<(RequestId, HwWaiter)> {
        let cluster = &mut *self.cluster;
        cluster.hw_waiters.remove_where(|_, w| pick(w))
    }

    /// Answer taken acks=all waiters with `error`. Through `respond`: forwarded answers and
    /// group-write markers are routed there.
    fn answer_hw_waiters(
        &mut self,
        waiters: Vec<(RequestId, HwWaiter)>,
        error: ErrorCode,
        message: &str,
    ) {
        for (id, waiter) in waiters {
            let response = super::errors::with_error(waiter.response, error, message);
            self.respond(id, response);
        }
    }

    /// Time out what waits on replication: acks=all answers (REQUEST_TIMED_OUT, the write
    /// may still commit later), marker waits (dropped), held replica fetches (answered
    /// empty, the follower asks again).
    fn expire_cluster_waiters(&mut self, now: Now) {
        let mut expired = Vec::new();
        while let Some(waiter) = self.cluster.hw_waiters.pop_expired(now.instant) {
            expired.push(waiter);
        }
        // A marker not replicated in time is dropped: the coordinator resends it on
        // its timer, and appending a marker twice is harmless (the second ends no
        // transaction).
        while let Some(((coordinator, correlation), _)) =
            self.cluster.marker_waiters.pop_expired(now.instant)
        {
            tracing::debug!(coordinator, correlation, "marker waiter expired");
        }
        let cluster = &mut *self.cluster;
        let mut due = Vec::new();
        while let Some(parked) = cluster.parked_fetches.pop_expired(now.instant) {
            due.push(parked);
        }
        self.answer_hw_waiters(
            expired,
            ErrorCode::REQUEST_TIMED_OUT,
            "timed out waiting for the in-sync replicas",
        );
        for ((from, _), fetch) in due {
            self.answer_replica_fetch(from, &fetch);
        }
    }

    /// Answer every client request the cluster layer holds with `error` (the node is
    /// poisoned: nothing it waits for will happen).
    pub(super) fn fail_cluster_waiters(&mut self, error: ErrorCode, message: &str) {
        let cluster = &mut *self.cluster;
        let mut answers: Vec<(RequestId, ApiResponse)> = Vec::new();
        for (id, waiter) in cluster.hw_waiters.drain() {
            answers.push((
                id,
                super::errors::with_error(waiter.response, error, message),
            ));
        }
        for (id, waiter) in cluster.commit_waiters.drain() {
            answers.push((
                id,
                super::errors::with_error(waiter.response, error, message),
            ));
        }
        for (id, (_, request)) in cluster.held.drain() {
            answers.push((id, super::errors::error_response(&request, error, message)));
        }
        for (_, forwarded) in std::mem::take(&mut cluster.forwarded) {
            let response = super::errors::error_response(&forwarded.request, error, message);
            answers.push((forwarded.id, response));
        }
        for (id, response) in answers {
            self.respond(id, response);
        }
    }

    /// Drop a disconnected client's waiters: acks=all produces, held requests and admin
    /// answers waiting for their records. What they wait for still happens (a record
    /// still commits, a write still replicates); only the answer has nowhere to go.
    pub(super) fn cluster_disconnect(&mut self, conn: u64) {
        self.cluster.hw_waiters.remove_conn(conn);
        self.cluster.held.remove_conn(conn);
        self.cluster.commit_waiters.remove_conn(conn);
    }

    /// The leader side of KIP-101's OffsetForLeaderEpoch. Answered only by the leader of
    /// exactly the follower's epoch: another epoch's history is not the one the follower
    /// is about to fetch, so truncating against it could keep a divergent suffix.
    fn on_epoch_query(&mut self, from: i32, query: EpochQuery) {
        let topic_id = Uuid::from_u128(u128::from_be_bytes(query.topic_id));
        let Ok(index) = usize::try_from(query.partition) else {
            return;
        };
        let leader_epoch = match self.cluster.replicas.get(&(topic_id, index)) {
            Some(Replica::Leader(leader)) => Some(leader.epoch),
            _ => None,
        };
        let mut reply = EpochReply {
            correlation: query.correlation,
            topic_id: query.topic_id,
            partition: query.partition,
            error: 0,
            epoch: -1,
            end_offset: -1,
        };
        match (
            leader_epoch,
            self.topics
                .get(&topic_id)
                .and_then(|t| t.partitions.get(index)),
        ) {
            (Some(epoch), Some(log)) if epoch == query.current_leader_epoch => {
                let (found, end) = log.end_offset_for_epoch(query.epoch);
                reply.epoch = found;
                reply.end_offset = end;
            }
            (Some(epoch), Some(_)) if epoch > query.current_leader_epoch => {
                reply.error = ErrorCode::FENCED_LEADER_EPOCH.0;
            }
            (Some(_), Some(_)) => reply.error = ErrorCode::UNKNOWN_LEADER_EPOCH.0,
            _ => reply.error = ErrorCode::NOT_LEADER_OR_FOLLOWER.0,
        }
        self.send_peer(from, PeerMessage::EpochReply(reply));
    }

    // ---- transaction markers for partitions led elsewhere ----------------------------------

    /// Coordinator: ask each partition's leader to write `txn`'s marker.
    // Each marker gets its own correlation id: the answers arrive in any order and from
    // several leaders, and a late answer must tick off exactly the marker it answers.
    pub(super) fn send_remote_markers(
        &mut self,
        now: Now,
        txn: &crate::txn::TxnMetadata,
        partitions: Vec<(String, i32)>,
    ) {
        let cluster = &mut *self.cluster;
        // One entry per transactional id (a later prepare of the same id replaces it), so
        // the table is bounded by the coordinator's own bound on ids (`TXNS_MAX`, checked
        // in `cluster_invariants`); refusing an entry would leave a prepared transaction
        // without its markers for good.
        let mut waiting = BTreeMap::new();
        for partition in partitions {
            let correlation = cluster.correlation();
            waiting.insert(correlation, partition);
        }
        cluster
            .pending_markers
            .insert(txn.transactional_id.clone(), (waiting, now.instant));
        self.send_markers_of(&txn.transactional_id.clone());
    }

    /// Send (again) every unacknowledged marker of one prepared transaction to the
    /// partition's current leader. A partition without a leader is skipped this round;
    /// the resend timer tries again.
    fn send_markers_of(&mut self, transactional_id: &str) {
        let Some(txn) = self.txns.txns.get(transactional_id).cloned() else {
            return;
        };
        let committed = txn.state == crate::txn::TxnState::PrepareCommit;
        let Some((waiting, _)) = self.cluster.pending_markers.get(transactional_id).cloned() else {
            return;
        };
        for (correlation, (topic, partition)) in waiting {
            let leader = self
                .partition_leadership(&topic, partition)
                .map(|(l, _, _)| l);
            let request = crate::cluster::peer::MarkerRequest {
                correlation,
                topic,
                partition,
                producer_id: txn.producer_id,
                producer_epoch: txn.producer_epoch,
                committed,
            };
            match leader {
                Some(leader) if leader == self.config.node_id => {
                    self.on_write_marker(Now::new(self.cluster_now(), 0), leader, request)
                }
                Some(leader) if leader >= 0 => {
                    self.send_peer(leader, PeerMessage::WriteMarker(request))
                }
                _ => {}
            }
        }
    }

    fn cluster_now(&self) -> Instant {
        self.cluster.now
    }

    /// Resend the markers of transactions whose markers have waited [`MARKER_RETRY_MS`].
    fn resend_markers(&mut self, now: Now) {
        let due: Vec<String> = self
            .cluster
            .pending_markers
            .iter()
            .filter(|(_, (_, sent))| {
                now.instant.saturating_duration_since(*sent).as_millis() as u64 >= MARKER_RETRY_MS
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            if let Some((_, sent)) = self.cluster.pending_markers.get_mut(&id) {
                *sent = now.instant;
            }
            self.send_markers_of(&id);
        }
    }

    /// Leader: write a coordinator's marker, answer once the ISR has it.
    ///
    /// Checked against this node's role, not the coordinator's view: a coordinator with a
    /// stale image may ask a former leader, which refuses, and it retries elsewhere.
    fn on_write_marker(
        &mut self,
        now: Now,
        from: i32,
        request: crate::cluster::peer::MarkerRequest,
    ) {
        let reply_error = |code: ErrorCode| PeerMessage::MarkerReply {
            correlation: request.correlation,
            error: code.0,
        };
        if !self.leads(&request.topic, request.partition) {
            let message = reply_error(ErrorCode::NOT_LEADER_OR_FOLLOWER);
            self.reply_marker(from, message);
            return;
        }
        match self.write_marker(
            now,
            &request.topic,
            request.partition,
            request.producer_id,
            request.producer_epoch,
            request.committed,
        ) {
            Ok(()) => {
                let Some(&topic_id) = self.topic_ids.get(&request.topic) else {
                    return;
                };
                let index = request.partition as usize;
                let end = self
                    .topics
                    .get(&topic_id)
                    .and_then(|t| t.partitions.get(index))
                    .map_or(0, |l| l.log_end_offset());
                let waiter = MarkerWaiter {
                    topic_id,
                    index,
                    end,
                };
                let cluster = &mut *self.cluster;
                let deadline = Some(cluster.now.add_ms(MARKER_WAIT_MS));
                let key = (from, request.correlation);
                // A resent marker replaces its earlier wait.
                cluster.marker_waiters.remove(key);
                if cluster
                    .marker_waiters
                    .insert(key, deadline, waiter)
                    .is_err()
                {
                    // Full: refused, so the coordinator resends it on its timer.
                    let message = reply_error(ErrorCode::REQUEST_TIMED_OUT);
                    self.reply_marker(from, message);
                }
                self.release_marker_waiters();
            }
            Err(code) => {
                let message = reply_error(code);
                self.reply_marker(from, message);
            }
        }
    }

    /// Answer a coordinator (this node itself when it coordinates the transaction too).
    fn reply_marker(&mut self, to: i32, message: PeerMessage) {
        if to == self.config.node_id {
            if let PeerMessage::MarkerReply { correlation, error } = message {
                let now = Now::new(self.cluster_now(), 0);
                self.on_marker_reply(now, correlation, error);
            }
        } else {
            self.send_peer(to, message);
        }
    }

    /// Answer the markers the HW now covers. A coordinator completes a transaction only
    /// after every marker is replicated: a marker lost with a failed leader would leave
    /// the transaction's records neither committed nor aborted on the new one.
    fn release_marker_waiters(&mut self) {
        let cluster = &mut *self.cluster;
        if cluster.marker_waiters.is_empty() {
            return;
        }
        let topics = &self.topics;
        // Released once replicated; dropped when the partition is gone (the coordinator
        // resends and learns where it went).
        let done = cluster.marker_waiters.remove_where(|_, w| {
            let hw = (topics.get(&w.topic_id))
                .and_then(|t| t.partitions.get(w.index))
                .map(|l| l.high_watermark());
            hw.is_none_or(|hw| hw >= w.end)
        });
        let done: Vec<(i32, u64)> = (done.into_iter())
            .filter(|(_, w)| {
                (topics.get(&w.topic_id)).is_some_and(|t| t.partitions.get(w.index).is_some())
            })
            .map(|(key, _)| key)
            .collect();
        for (from, correlation) in done {
            self.reply_marker(
                from,
                PeerMessage::MarkerReply {
                    correlation,
                    error: 0,
                },
            );
        }
    }

    /// Coordinator: a marker is written (or refused: retried on the timer). The
    /// transaction completes only when its last marker is acknowledged; a duplicate or
    /// late answer finds no pending marker with its correlation and changes nothing.
    fn on_marker_reply(&mut self, now: Now, correlation: u64, error: i16) {
        if error != 0 {
            return;
        }
        let cluster = &mut *self.cluster;
        let mut finished = None;
        for (id, (waiting, _)) in cluster.pending_markers.iter_mut() {
            if waiting.remove(&correlation).is_some() {
                if waiting.is_empty() {
                    finished = Some(id.clone());
                }
                break;
            }
        }
        let Some(id) = finished else {
            return;
        };
        cluster.pending_markers.remove(&id);
        if let Some(txn) = self.txns.txns.get(&id).cloned() {
            self.complete_transaction(now, txn);
        }
    }

    // ---- replication: follower side --------------------------------------------------------

    /// Follower timer: send the next request where none is in flight and the back-off
    /// passed, or resend one unanswered for [`PEER_RETRY_MS`].
    fn follower_sends(&mut self, now: Now) {
        let cluster = &*self.cluster;
        let due: Vec<(Uuid, usize)> = cluster
            .replicas
            .iter()
            .filter_map(|(key, r)| match r {
                Replica::Follower(f) if f.leader >= 0 && f.fetch_after_sync.is_none() => {
                    let due = match f.in_flight {
                        Some((_, sent)) => {
                            now.instant.saturating_duration_since(sent).as_millis() as u64
                                >= PEER_RETRY_MS
                        }
                        None => now.instant >= f.not_before,
                    };
                    due.then_some(*key)
                }
                _ => None,
            })
            .collect();
        for key in due {
            if let Some(Replica::Follower(f)) = self.cluster.replicas.get_mut(&key) {
                if f.in_flight.is_some() {
                    // Unanswered: the leader may have restarted (and lost what we fetched)
                    // at this epoch. Ask for the epoch again before fetching.
                    f.truncated = false;
                    f.query_epoch = None;
                }
                f.in_flight = None;
            }
            self.send_follower_request(now, key);
        }
    }

    /// Send the follower's next request: an epoch query until truncated, then a fetch.
    ///
    /// Never a fetch before truncation: fetching from the log end of a divergent log
    /// would append the leader's records after records the leader never had, and both
    /// would be visible under offsets the leader assigned to other records.
    fn send_follower_request(&mut self, now: Now, key: (Uuid, usize)) {
        let Some(log) = self
            .topics
            .get(&key.0)
            .and_then(|t| t.partitions.get(key.1))
        else {
            return;
        };
        let (leo, durable, last_epoch) =
            (log.log_end_offset(), log.durable_end(), log.last_epoch());
        // The follower fetches from its log end and reports its durable end: never past
        // what it holds (the leader's HW rule trusts these two numbers).
        assert!(
            durable <= leo,
            "durable end {durable} past the log end {leo}"
        );
        let cluster = &mut *self.cluster;
        let max_bytes = cluster.config.replica_fetch_max_bytes;
        let wait = cluster.config.replica_fetch_wait_max_ms;
        let correlation = cluster.correlation();
        let Some(Replica::Follower(f)) = cluster.replicas.get_mut(&key) else {
            return;
        };
        if f.leader < 0 || f.in_flight.is_some() || now.instant < f.not_before {
            return;
        }
        f.in_flight = Some((correlation, now.instant));
        let (leader, epoch, truncated) = (f.leader, f.epoch, f.truncated);
        let last_epoch = f.query_epoch.unwrap_or(last_epoch);
        let message = if truncated {
            PeerMessage::Fetch(ReplicaFetch {
                correlation,
                topic_id: uuid_bytes(key.0),
                partition: key.1 as i32,
                leader_epoch: epoch,
                fetch_offset: leo,
                durable_offset: durable,
                max_bytes,
                max_wait_ms: wait,
            })
        } else {
            PeerMessage::EpochQuery(EpochQuery {
                correlation,
                topic_id: uuid_bytes(key.0),
                partition: key.1 as i32,
                current_leader_epoch: epoch,
                epoch: last_epoch,
            })
        };
        self.send_peer(leader, message);
    }

    /// True (and the request no longer in flight) when a reply answers this follower's
    /// request in flight: from its current leader, with its correlation. Anything else is
    /// a late or foreign reply and must be dropped: acting on an answer to an older
    /// request could append at stale offsets or truncate by a stale epoch.
    fn follower_in_flight(&mut self, key: (Uuid, usize), from: i32, correlation: u64) -> bool {
        let Some(Replica::Follower(f)) = self.cluster.replicas.get_mut(&key) else {
            return false;
        };
        if f.leader != from || f.in_flight.map(|(c, _)| c) != Some(correlation) {
            return false;
        }
        f.in_flight = None;
        true
    }

    /// After a refusal: wait [`REFUSED_RETRY_MS`] before the next request (the leader may
    /// not have learned its new role yet; asking in a tight loop would only load it).
    fn follower_back_off(&mut self, now: Now, key: (Uuid, usize)) {
        if let Some(Replica::Follower(f)) = self.cluster.replicas.get_mut(&key) {
            f.not_before = now.instant.add_ms(REFUSED_RETRY_MS);
        }
    }

    /// One round of KIP-101/KIP-279 truncation. The leader answered `(E, end)`: `E` is its
    /// largest epoch not above the one asked, `end` where `E` ends in its log. Everything
    /// here from our first epoch above `E` on, and everything from `end` on, diverges, so
    /// we truncate to the lower of the two. When our log holds `E` itself the logs agree
    /// below that point and we fetch; when it does not, our epoch-`E'` range (`E'` our
    /// largest epoch below `E`) may run past the leader's, so we ask again about `E'`.
    /// Each round asks about a smaller epoch, so this ends.
    fn on_epoch_reply(&mut self, now: Now, from: i32, reply: EpochReply) {
        let key = (
            Uuid::from_u128(u128::from_be_bytes(reply.topic_id)),
            reply.partition as usize,
        );
        if !self.follower_in_flight(key, from, reply.correlation) {
            return;
        }
        if reply.error != 0 {
            self.follower_back_off(now, key);
            return;
        }
        let asked = match self.cluster.replicas.get(&key) {
            Some(Replica::Follower(f)) => f.query_epoch,
            _ => return,
        };
        let Some(log) = self.log_mut(key) else {
            return;
        };
        let asked = asked.unwrap_or(log.last_epoch());
        if reply.epoch > asked {
            // Not an answer to our question (a peer bug): ask again later.
            tracing::warn!(
                asked,
                answered = reply.epoch,
                "epoch reply above the epoch asked"
            );
            self.follower_back_off(now, key);
            return;
        }
        let step = log.truncation_step(reply.epoch, reply.end_offset);
        #[allow(unused_mut)]
        let mut target = step.target;
        let next_query = step.ask_next;
        // PLANTED BUG (weir-sim only): keep a divergent suffix after a leader change.
        #[cfg(feature = "planted-skip-truncation")]
        {
            target = log.log_end_offset();
        }
        let partition_key = log.partition_key();
        let truncated = log.truncate_suffix_to(target);
        if truncated && !log.has_unsynced() {
            // The truncation took every unsynced append with it.
            self.unsynced_partitions.remove(&key);
        }
        let Some(log) = self.log_mut(key) else {
            return;
        };
        if truncated {
            tracing::info!(partition_key, target, "truncated divergent suffix");
            let op = epochs_op(log);
            let producers = super::producer_id::producer_snapshot_op(log);
            self.emit(StorageOp::TruncateSuffix {
                partition_key,
                offset: target,
            });
            self.emit(op);
            self.emit(producers);
        }
        if let Some(log) = self.log_mut(key) {
            // Nothing at or above the target survives: the divergent suffix is gone.
            debug_assert!(
                !truncated || log.log_end_offset() == target.max(log.log_start_offset()),
                "truncation to {target} left the log end at {}",
                log.log_end_offset()
            );
        }
        if let Some(Replica::Follower(f)) = self.cluster.replicas.get_mut(&key) {
            f.query_epoch = next_query;
            f.truncated = next_query.is_none();
        }
        self.send_follower_request(now, key);
    }

    /// The follower side of a fetch answer: append the records at their offsets, take the
    /// leader's HW (capped by this log), fetch again (under isr-fsync only after the sync
    /// that makes the appends durable, since the next fetch reports them durable).
    fn on_fetch_reply(&mut self, now: Now, from: i32, reply: ReplicaFetchReply) {
        let key = (
            Uuid::from_u128(u128::from_be_bytes(reply.topic_id)),
            reply.partition as usize,
        );
        if !self.follower_in_flight(key, from, reply.correlation) {
            return;
        }
        if reply.error == ErrorCode::OFFSET_OUT_OF_RANGE.0 {
            let below_start = self
                .topics
                .get(&key.0)
                .and_then(|t| t.partitions.get(key.1))
                .is_some_and(|log| reply.log_start_offset > log.log_end_offset());
            if below_start {
                // Everything we lack was removed on the leader: start over at its log start.
                self.reset_follower_log(key, reply.log_start_offset);
                self.send_follower_request(now, key);
                return;
            }
            if let Some(Replica::Follower(f)) = self.cluster.replicas.get_mut(&key) {
                f.truncated = false;
            }
            self.follower_back_off(now, key);
            return;
        }
        // An answer of another leader epoch than the one this follower fetches under is a
        // refusal too, whatever it says: its records may not continue this log.
        let epoch_matches = matches!(
            self.cluster.replicas.get(&key),
            Some(Replica::Follower(f)) if f.epoch == reply.leader_epoch
        );
        if reply.error != 0 || !epoch_matches {
            // Refused (not the leader, other epoch): re-check the epoch before fetching.
            if let Some(Replica::Follower(f)) = self.cluster.replicas.get_mut(&key) {
                f.truncated = false;
                f.query_epoch = None;
            }
            self.follower_back_off(now, key);
            return;
        }
        let PeerRecords::Bytes(bytes) = reply.records else {
            return;
        };
        let appended = self.append_replicated(now, key, &bytes);
        // The follower's HW: the leader's, capped by what this log holds (a follower never
        // shows consumers offsets it lacks), and never moved down by a stale reply.
        if let Some(log) = self.log_mut(key) {
            let hw = reply.high_watermark.min(log.log_end_offset());
            if log.replicated_hw().is_none_or(|h| hw > h) {
                log.set_replicated_hw(Some(hw));
            }
            debug_assert!((log.replicated_hw()).is_none_or(|h| h <= log.log_end_offset()));
        }
        // isr-fsync: the next fetch reports the appends durable, so it waits for their
        // sync; isr-memory (Kafka's): holding them is enough, fetch again at once.
        let memory = self.cluster.config.ack_durability == AckDurability::IsrMemory;
        match appended {
            Some(_) if memory => self.send_follower_request(now, key),
            Some(sync_id) => {
                if let Some(Replica::Follower(f)) = self.cluster.replicas.get_mut(&key) {
                    f.fetch_after_sync = Some(sync_id);
                }
            }
            None => self.send_follower_request(now, key),
        }
    }

    /// Empty a follower's log of `key` and start it at the leader's log start `offset`
    /// (KIP-101's truncate-fully-and-start-at), with the storage ops that make it so:
    /// every batch goes first, then the meta entries that describe them (recovery accepts
    /// storage ahead of meta, and an empty log at the persisted log start).
    fn reset_follower_log(&mut self, key: (Uuid, usize), offset: i64) {
        let Some(log) = self.log_mut(key) else {
            return;
        };
        let partition_key = log.partition_key();
        let old_start = log.log_start_offset();
        let old_end = log.log_end_offset();
        let dropped = log.reset_to(offset);
        self.unsynced_partitions.remove(&key);
        let Some(log) = self.log_mut(key) else {
            return;
        };
        assert_eq!(
            log.log_end_offset(),
            offset,
            "a reset log starts empty at {offset}"
        );
        let epochs = epochs_op(log);
        let producers = super::producer_id::producer_snapshot_op(log);
        tracing::warn!(
            partition_key,
            old_start,
            old_end,
            offset,
            "follower log ends below the leader's log start; starting over there"
        );
        self.emit(StorageOp::TruncateSuffix {
            partition_key,
            offset: old_start,
        });
        // A batch straddling the old log start survives the suffix truncation.
        self.emit(StorageOp::TruncatePrefix {
            partition_key,
            offset,
        });
        for segment in dropped {
            self.emit(StorageOp::DeleteMeta {
                key: crate::meta::segment_key(partition_key, segment.base_offset),
            });
        }
        self.emit(StorageOp::PutMeta {
            key: crate::meta::log_start_key(partition_key),
            value: crate::meta::encode(&offset),
        });
        self.emit(epochs);
        self.emit(producers);
        if let Some(Replica::Follower(f)) = self.cluster.replicas.get_mut(&key) {
            // Nothing left to compare epochs with: fetch from the leader's log start.
            f.truncated = true;
            f.query_epoch = None;
        }
    }

    /// Append the batches a leader sent, at their offsets; returns the covering sync id
    /// when anything was appended.
    ///
    /// The leader's bytes are checked before they touch the log: a batch wholly below the
    /// log end is skipped (a resent answer), one that does not start at the log end ends
    /// the append (a gap would break dense offsets), and one with a bad CRC ends it too
    /// (the follower fetches again from its log end).
    fn append_replicated(&mut self, now: Now, key: (Uuid, usize), bytes: &[u8]) -> Option<u64> {
        let segment_bytes = self.topics.get(&key.0)?.config.segment_bytes(&self.config);
        let mut appended_any = None;
        for item in iter_batches(bytes) {
            let Ok((header, range)) = item else { break };
            let leo = self
                .topics
                .get(&key.0)?
                .partitions
                .get(key.1)?
                .log_end_offset();
            if header.last_offset() < leo {
                continue;
            }
            if header.base_offset != leo {
                tracing::warn!(base = header.base_offset, leo, "gap in replicated batches");
                break;
            }
            // Offsets stay dense: only a batch starting exactly at the log end is appended
            // (`append_batch` asserts it too; a gap or overlap from a peer is dropped above).
            debug_assert_eq!(header.base_offset, leo);
            let Some(batch) = bytes.get(range.clone()) else {
                break;
            };
            if !weir_wire::batch::verify_crc(batch) {
                tracing::warn!(base = header.base_offset, "replicated batch fails its CRC");
                break;
            }
            let batch = bytes::Bytes::copy_from_slice(batch);
            let origin = super::append::AppendOrigin::Follower;
            match self.append_batch(now.wall_ms, key, batch, segment_bytes, origin) {
                Ok(appended) => appended_any = Some(appended.sync_id),
                Err(error) => {
                    tracing::warn!(error = error.name(), "replicated batch not appended");
                    break;
                }
            }
        }
        if appended_any.is_some()
            && self
                .topics
                .get(&key.0)
                .is_some_and(|t| t.name == crate::group::offsets_log::OFFSETS_TOPIC)
        {
            // Followers of a coordinator's partition keep its committed offsets and its
            // groups' membership current, so they can coordinate the moment they lead it.
            if let Ok(records) =
                weir_wire::records::decode_records(bytes::Bytes::copy_from_slice(bytes))
            {
                for record in records {
                    let Some(k) = record.key.as_deref() else {
                        continue;
                    };
                    self.groups.replay_record(now, k, record.value.as_deref());
                }
            }
        }
        appended_any
    }

    // ---- plumbing ----------------------------------------------------------------------------

    /// Queue a message to a peer by id (voter addresses from config, others from the image).
    /// Messages to an unknown address are dropped: every peer protocol here retries on a
    /// timer, so a loss costs latency, never correctness.
    pub(super) fn send_peer(&mut self, to: i32, message: PeerMessage) {
        let cluster = &*self.cluster;

        let addr = cluster
            .config
            .voter_addr(to)
            .map(str::to_string)
            .or_else(|| cluster.image.brokers.get(&to).map(|b| b.peer_addr.clone()));
        match addr {
            Some(addr) => self.outputs.push_back(Output::Peer { to, addr, message }),
            None => tracing::debug!(to, "no address for peer; message dropped"),
        }
    }

    /// Cluster invariants, checked after every input (see [`Node::invariants`]). Only this
    /// node's own bookkeeping is checked: what peers claim (a follower's offsets, say) may
    /// be stale or wrong and is bounded where it is received, not asserted on here.
    pub(super) fn cluster_invariants(&self) {
        let cluster = &*self.cluster;
        let node_id = self.config.node_id;
        cluster.raft.invariants();
        cluster.image.invariants();
        cluster.commit_waiters.invariants();
        cluster.parked_fetches.invariants();
        assert!(cluster.pending_markers.len() <= crate::txn::TXNS_MAX);
        cluster.held.invariants();
        cluster.hw_waiters.invariants();
        cluster.marker_waiters.invariants();
        // Raft readies wait in sync order (`cluster_on_synced` releases a prefix), and
        // each waits for a sync that has not completed yet: one left behind a completed
        // sync would hold its messages and committed entries forever.
        assert!(
            (cluster
                .raft_pending
                .iter()
                .zip(cluster.raft_pending.iter().skip(1)))
            .all(|(a, b)| a.sync_id <= b.sync_id),
            "raft readies out of sync order"
        );
        if self.poisoned.is_none() {
            assert!(
                (cluster.raft_pending.front()).is_none_or(|p| p.sync_id > self.sync.completed),
                "a raft ready waits for a sync that already completed"
            );
            // Commit waiters are judged after every apply: none waits for an applied index.
            assert!(
                (cluster.commit_waiters.iter()).all(|(_, w)| w.index > cluster.image.applied_index),
                "a commit waiter outlived the apply of its entry"
            );
        }
        let (first, last) = cluster.stored_entries;
        assert!(
            first >= 1 && last + 1 >= first,
            "stored raft entries ({first}, {last})"
        );
        // The decision image exists only on the Raft leader: another node's uncommitted
        // tail may be truncated, and deciding on it would repeat issue 12.
        assert!(
            cluster.view.is_none() || cluster.raft.is_leader(),
            "a decision image kept after losing Raft leadership"
        );
        // Roles are taken only once the image caught up with the quorum (a stale image
        // must not make this node lead at an old epoch), and only by broker nodes.
        assert!(
            cluster.replicas.is_empty() || (cluster.caught_up && cluster.config.broker_role),
            "partition roles held before the image caught up (or on a controller-only node)"
        );
        for ((topic_id, index), replica) in &cluster.replicas {
            let state = cluster.image.partition(topic_id.as_u128(), *index as i32);
            let state = state.expect("a role is held only for partitions in the image");
            let log = self
                .topics
                .get(topic_id)
                .and_then(|t| t.partitions.get(*index));
            // Every role's replicated HW lies within its log: a follower caps the leader's
            // HW at its log end and truncation lowers it; a leader's never passes its
            // durable end.
            if let Some(log) = log {
                assert!(
                    (log.replicated_hw()).is_none_or(|hw| hw <= log.log_end_offset()),
                    "replicated hw {:?} past the log end {}",
                    log.replicated_hw(),
                    log.log_end_offset()
                );
            }
            match replica {
                Replica::Leader(leader) => {
                    assert_eq!(state.leader, node_id, "leader role without leadership");
                    // At most one leader per epoch as this node sees it: the role's epoch is
                    // the image's, so a role of an older epoch never survives a change.
                    assert_eq!(
                        state.leader_epoch, leader.epoch,
                        "leader epoch behind the image"
                    );
                    // The role's ISR, replicas and partition epoch are copies of the image's,
                    // refreshed on every change (`update_role_inner`): AlterIsr requests carry
                    // the partition epoch, and a stale one would be refused forever.
                    assert_eq!(
                        state.partition_epoch, leader.partition_epoch,
                        "partition epoch behind the image"
                    );
                    assert_eq!(leader.isr, state.isr, "leader ISR differs from the image");
                    assert_eq!(
                        leader.replicas, state.replicas,
                        "leader replicas differ from the image"
                    );
                    assert!(
                        leader.isr.iter().all(|r| leader.replicas.contains(r)),
                        "ISR {:?} outside the replicas {:?}",
                        leader.isr,
                        leader.replicas
                    );
                    assert!(
                        leader.isr.contains(&node_id),
                        "the leader is not in its ISR {:?}",
                        leader.isr
                    );
                    // A pending ISR change keeps the leader and stays within the replicas
                    // (a shrink removes others only; an expansion adds a replica).
                    if let Some((pending, _)) = &leader.pending_isr {
                        assert!(
                            pending.contains(&node_id)
                                && pending.iter().all(|r| leader.replicas.contains(r)),
                            "pending ISR {pending:?} (replicas {:?})",
                            leader.replicas
                        );
                    }
                    // Every other replica has a progress entry (the HW counts members
                    // without one as holding nothing, so a missing one would stall it).
                    assert!(
                        (leader.replicas.iter())
                            .all(|r| *r == node_id || leader.followers.contains_key(r)),
                        "replicas {:?} without progress",
                        leader.replicas
                    );
                    assert!(
                        !leader.followers.contains_key(&node_id),
                        "the leader tracks itself as a follower"
                    );
                    let log = log.expect("a led partition has a log");
                    // One leader per epoch: this log's newest epoch is the one it leads, and
                    // it began at the recorded start.
                    assert_eq!(
                        log.last_epoch(),
                        leader.epoch,
                        "leading epoch {} over a log whose last epoch is {}",
                        leader.epoch,
                        log.last_epoch()
                    );
                    assert!(leader.epoch_start <= log.log_end_offset());
                    // A follower's recorded progress never passes this log's end (a fetch
                    // past it is refused, and a leader's log end only grows), and what it
                    // reports durable never passes what it reports held.
                    for (follower, p) in &leader.followers {
                        assert!(
                            p.durable_offset <= p.fetch_offset
                                && p.fetch_offset <= log.log_end_offset()
                                && p.leo_at_last_fetch <= log.log_end_offset(),
                            "follower {follower} progress {p:?} past the log end {}",
                            log.log_end_offset()
                        );
                    }
                    // The HW never went down while this role was held.
                    let hw = log.replicated_hw().unwrap_or(log.log_start_offset());
                    assert!(
                        hw >= leader.hw_floor,
                        "leader hw {hw} below its floor {}",
                        leader.hw_floor
                    );
                    // isr-fsync: everything below the high watermark is durable here (the
                    // leader was an ISR member of every earlier epoch it learned it from).
                    if cluster.config.ack_durability == AckDurability::IsrFsync
                        && !cluster.config.unclean_leader_election
                    {
                        assert!(
                            hw <= log.durable_end().max(log.log_start_offset()),
                            "high watermark {hw} above the leader's durable end {}",
                            log.durable_end()
                        );
                    }
                }
                Replica::Follower(f) => {
                    assert_eq!(
                        state.leader_epoch, f.epoch,
                        "follower epoch behind the image"
                    );
                    assert_eq!(state.leader, f.leader, "follower of another leader");
                    assert_ne!(f.leader, node_id, "a follower of itself");
                    assert!(
                        state.replicas.contains(&node_id),
                        "a follower role outside the replicas {:?}",
                        state.replicas
                    );
                    // A fetch waiting for a sync is not also in flight (and vice versa):
                    // one request at a time keeps replies in order.
                    assert!(
                        f.fetch_after_sync.is_none() || f.in_flight.is_none(),
                        "a follower both waits for a sync and has a request in flight"
                    );
                    // A fetch is sent only once truncation is over: no query is pending.
                    assert!(
                        !f.truncated || f.query_epoch.is_none(),
                        "truncated, yet another epoch query is planned"
                    );
                }
            }
        }
        // An acks=all waiter waits only on partitions led here: losing a leadership fails
        // its waiters (`fail_hw_waiters_of`), as their HW will never come from this node.
        for (_, waiter) in cluster.hw_waiters.iter() {
            for (topic_id, index, _) in &waiter.needs {
                assert!(
                    matches!(
                        cluster.replicas.get(&(*topic_id, *index)),
                        Some(Replica::Leader(_))
                    ),
                    "an acks=all waiter on {topic_id}/{index}, not led here"
                );
            }
        }
    }
}

fn new_progress(now: Now) -> Progress {
    Progress {
        fetch_offset: -1,
        durable_offset: -1,
        caught_up_at: now.instant,
        leo_at_last_fetch: 0,
    }
}
