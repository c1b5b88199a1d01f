//! The node as a member of a cluster: the metadata quorum (Raft), the controller, broker
//! heartbeats, and partition replication (see [`crate::cluster`]). There is no other kind
//! of node: one started without `controller.quorum.voters` is a quorum of one (it votes
//! for itself, controls itself and leads every partition, replication factor 1), and runs
//! this same code, so a single node is a one-node cluster in every behaviour a client sees.
//!
//! # Layout
//!
//! One file per subsystem, each opening with the protocol it implements and what that
//! protocol must never break: `meta.rs` (the metadata quorum: Raft's driver, the image,
//! the controller's decision image), `membership.rs` (registration, heartbeats, fencing,
//! from the broker's side), `control.rs` (the controller: sessions, fencing, elections,
//! commit waiters), `replication.rs` (partition roles, the leader side and the high
//! watermark), `follower.rs` (the follower side), `markers.rs` (transaction markers) and
//! `router.rs` (forwarded and held requests), `remote.rs` (a leader's reports of
//! uploaded remote segments, tiered storage). This file composes them into
//! [`ClusterState`] and routes peer messages.
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
use weir_wire::domain::ApiResponse;
use weir_wire::error::ErrorCode;

use super::Node;
use crate::cluster::image::MetadataImage;
use crate::cluster::peer::PeerMessage;
use crate::cluster::ClusterConfig;
use crate::event::{Output, RequestId};
use crate::meta::EPOCHS_PREFIX;
use crate::purgatory::Purgatory;
use crate::raft::{Entry, Persisted, Raft, RaftConfig, RaftMessage};
use crate::rng::{Rng, SALT_INCARNATION};
use crate::storage::{Storage, StorageError};
use crate::time::{Instant, Now};

mod control;
mod follower;
mod markers;
mod membership;
mod meta;
mod remote;
mod replication;
mod router;

pub(in crate::node) use control::{internal_topic_placement, ControllerState};
pub(in crate::node) use follower::FollowerState;
pub(in crate::node) use markers::Markers;
pub(in crate::node) use membership::BrokerMembership;
pub use membership::{Readiness, ShutdownReady, ShutdownStatus};
pub(in crate::node) use meta::MetaQuorum;
pub use remote::RemoteReportError;
pub(in crate::node) use remote::RemoteReports;
pub(in crate::node) use replication::{PartitionOrder, Replica, Replication};
pub(in crate::node) use router::{Forwarded, HoldFor, Router, FORWARD_TIMEOUT_MS};

/// The metadata quorum's Raft heartbeat interval: a fifth of the election timeout.
pub(in crate::node) fn raft_heartbeat_interval_ms(config: &ClusterConfig) -> u64 {
    (config.election_timeout_ms / 5).max(10)
}

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

/// Replication factor of the internal topics (Kafka's `offsets.topic.replication.factor`
/// and `transaction.state.log.replication.factor` default), capped by the cluster's size.
const INTERNAL_TOPIC_RF_MAX: usize = 3;
/// Back-off after a refused replica fetch (not leader, epoch mismatch).
const REFUSED_RETRY_MS: u64 = 100;
/// The metadata log is compacted into a snapshot every this many applied entries.
const SNAPSHOT_EVERY_ENTRIES: u64 = 2_000;
/// A pending ISR change is re-sent to the controller after this long.
const ALTER_ISR_RETRY_MS: u64 = 1_000;
/// A pending remote segment report is re-sent to the controller after this long.
const REMOTE_REPORT_RETRY_MS: u64 = 1_000;
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

/// Cluster state of a node. Every node has one: a node of its own is a quorum of one.
///
/// It is a composition of subsystems, each owning its state and checking it in its own
/// `invariants()`: the metadata quorum ([`MetaQuorum`]), this node as a broker of the
/// cluster ([`BrokerMembership`]), the controller ([`ControllerState`]), partition
/// replication ([`Replication`]), transaction markers ([`Markers`]) and the request router
/// ([`Router`]). Their handlers are `Node` methods in the files of this folder, one file
/// per subsystem, because each also reads or writes the partition logs `Node` owns;
/// invariants that span subsystems are checked by [`Node::cluster_invariants`].
#[derive(Debug)]
pub(super) struct ClusterState {
    pub config: ClusterConfig,
    pub meta: MetaQuorum,
    pub broker: BrokerMembership,
    pub controller: ControllerState,
    pub replication: Replication,
    pub markers: Markers,
    pub router: Router,
    pub remote: RemoteReports,
    /// Shard 0 of several: what the next metadata feed to the data shards carries
    /// (`node/shard.rs`).
    pub feed: crate::node::shard::FeedOut,
    /// Last correlation id handed out (see [`ClusterState::correlation`]); a shard's start
    /// at its [`crate::shard::correlation_base`].
    pub(in crate::node) next_correlation: u64,
    /// Time of the current input.
    pub now: Instant,
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
        raft_config.heartbeat_interval_ms = raft_heartbeat_interval_ms(&config);
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
            meta: MetaQuorum {
                raft,
                image: MetadataImage::default(),
                view: None,
                raft_pending: VecDeque::new(),
                stored_entries,
                caught_up: false,
                leader_start: None,
                fenced_at: BTreeMap::new(),
                fed_controller: None,
            },
            broker: BrokerMembership::new(now.instant, incarnation, broker_role),
            controller: ControllerState::new(now.instant, ADMIN_WAITERS_MAX),
            replication: Replication {
                replicas: BTreeMap::new(),
                leaders: 0,
                follower_timers: PartitionOrder::new(),
                sync_waits: PartitionOrder::new(),
                next_leader_check: now.instant,
                parked_fetches: Purgatory::new(REPLICA_FETCH_WAITERS_MAX),
                parked_by_partition: BTreeSet::new(),
                hw_waiters: Purgatory::new(HW_WAITERS_MAX),
                internal_appends: Vec::new(),
            },
            markers: Markers {
                pending_markers: BTreeMap::new(),
                marker_waiters: Purgatory::new(MARKER_WAITERS_MAX),
            },
            router: Router::new(HELD_REQUESTS_MAX),
            remote: RemoteReports::default(),
            feed: crate::node::shard::FeedOut::default(),
            next_correlation: 1,
            now: now.instant,
        })
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
    /// The active controller's id, as this node knows it.
    pub fn controller_id(&self) -> Option<i32> {
        self.cluster.meta.controller()
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
        self.cluster.controller.peer_alive(from);
        // Every handler below treats the message as untrusted: a peer may be stale (an old
        // incarnation, an old epoch), reordered, repeated or buggy. Handlers drop or refuse
        // what does not fit this node's state; none asserts on the message.
        match message {
            // A data shard runs no Raft (shard 0 feeds it the metadata); the driver routes
            // Raft to shard 0, so one arriving here is dropped.
            PeerMessage::Raft(_) if self.is_data_shard() => {
                tracing::warn!(from, "raft message reached a data shard; dropped");
            }
            PeerMessage::Raft(bytes) => match postcard::from_bytes::<RaftMessage>(&bytes) {
                Ok(raft_message) => {
                    let cluster = &mut *self.cluster;
                    cluster.meta.raft.step(now_ms(now), from, raft_message);
                }
                Err(error) => tracing::warn!(from, %error, "malformed raft message dropped"),
            },
            PeerMessage::Heartbeat(heartbeat) => self.on_heartbeat(now, from, heartbeat),
            PeerMessage::HeartbeatReply {
                controller,
                fenced,
                refused,
            } => match refused {
                // The controller will not register this node (its build cannot follow the
                // cluster's metadata.version): serving on would only wait forever, fenced.
                Some(reason) => self.poison(format!("registration refused: {reason}")),
                None => self.on_heartbeat_reply(now, from, controller, fenced),
            },
            PeerMessage::AutoCreate { names } => self.on_auto_create(names),
            PeerMessage::AlterIsr(request) => self.on_alter_isr(from, request),
            PeerMessage::Fetch(fetch) => self.on_replica_fetch(now, from, fetch),
            PeerMessage::FetchReply(reply) => self.on_fetch_reply(now, from, reply),
            PeerMessage::EpochQuery(query) => self.on_epoch_query(from, query),
            PeerMessage::EpochReply(reply) => self.on_epoch_reply(now, from, reply),
            PeerMessage::WriteMarker(request) => self.on_write_marker(now, from, request),
            PeerMessage::Forward { correlation, frame } => {
                self.on_forward(now, from, correlation, frame, None)
            }
            PeerMessage::ForwardAs {
                correlation,
                frame,
                principal,
                host,
            } => {
                let client = (crate::event::Principal::user(&principal), host);
                self.on_forward(now, from, correlation, frame, Some(client))
            }
            PeerMessage::ForwardReply { correlation, frame } => {
                self.on_forward_reply(correlation, frame)
            }
            PeerMessage::MarkerReply { correlation, error } => {
                self.on_marker_reply(now, correlation, error)
            }
            PeerMessage::RemoteSegmentUploaded(request) => {
                self.on_remote_segment_uploaded(from, request)
            }
            PeerMessage::RemoteSegmentsExpired(request) => {
                self.on_remote_segments_expired(from, request)
            }
            PeerMessage::ControlledShutdown(heartbeat) => {
                self.on_controlled_shutdown(now, from, heartbeat)
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
        let suspect =
            cluster.meta.is_active_controller() && cluster.meta.decision_image().is_live(from);
        cluster.controller.peer_closed(now.instant, from, suspect);
        // `cluster_deadline` wakes the node at the suspect's deadline; `controller_checks`
        // fences then.
    }

    /// Remember the time of the current input (deadlines of waiters parked by it), and
    /// start the input's list of internal appends afresh (an answer must wait only for
    /// the appends of its own input).
    pub(super) fn cluster_note_now(&mut self, now: Now) {
        self.cluster.now = now.instant;
        self.cluster.replication.internal_appends.clear();
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
        let data_shard = self.is_data_shard();
        let cluster = &mut *self.cluster;
        if let Some(shutdown) = cluster.broker.shutdown.as_mut() {
            shutdown.expired |= now.instant >= shutdown.deadline;
        }
        // Shard 0 runs the quorum and the heartbeats for its whole broker.
        if !data_shard {
            cluster.meta.raft.tick(now_ms(now));
            self.send_heartbeat(now);
        }
        self.controller_checks(now);
        self.leader_checks(now);
        self.follower_sends(now);
        self.resend_markers(now);
        self.resend_remote_reports(now);
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
        let raft = Instant::from_nanos(
            cluster
                .meta
                .raft
                .next_deadline_ms()
                .saturating_mul(1_000_000),
        );
        // Every broker heartbeats (a quorum of one heartbeats itself): the heartbeat timer is
        // always armed, on shard 0; a data shard runs neither (`cluster_timeout`).
        let mut next = if self.is_data_shard() {
            Instant::from_nanos(u64::MAX)
        } else {
            raft.min(cluster.broker.next_heartbeat)
        };
        // A controlled shutdown's deadline wakes the driver once (`cluster_timeout` marks it
        // expired), so it sees the shutdown timed out without any other input.
        if let Some(shutdown) = cluster.broker.shutdown.filter(|s| !s.expired) {
            next = next.min(shutdown.deadline);
        }
        // Only deadlines that the handlers move forward, or the driver would spin.
        if cluster.meta.is_active_controller() {
            next = next.min(cluster.controller.next_controller_check);
            // A suspect is fenced at its moment, not at the next periodic check.
            if let Some(at) = cluster.controller.next_suspect_deadline().as_ref() {
                next = next.min(*at);
            }
        }
        for at in [
            cluster.router.held.next_deadline(),
            cluster.router.forwarded.next_deadline(),
            cluster.router.forwarded_in.next_deadline(),
            cluster.replication.parked_fetches.next_deadline(),
            cluster.replication.hw_waiters.next_deadline(),
            cluster.markers.marker_waiters.next_deadline(),
        ]
        .into_iter()
        .flatten()
        {
            next = next.min(at);
        }
        for (_, sent) in cluster.markers.pending_markers.values() {
            next = next.min(sent.add_ms(MARKER_RETRY_MS));
        }
        // `resend_remote_reports` moves a due report's time forward (or drops it).
        if let Some(at) = cluster.remote.next_resend() {
            next = next.min(at);
        }
        let replication = &cluster.replication;
        if let Some(at) = replication.follower_timers.first() {
            next = next.min(at);
        }
        if replication.leads_any() {
            next = next.min(replication.next_leader_check);
        }
        Some(next)
    }

    // ---- heartbeats and the controller ---------------------------------------------------

    // ---- replication: leader side ----------------------------------------------------------

    /// Time out what waits on replication: acks=all answers (REQUEST_TIMED_OUT, the write
    /// may still commit later), marker waits (dropped), held replica fetches (answered
    /// empty, the follower asks again).
    fn expire_cluster_waiters(&mut self, now: Now) {
        let mut expired = Vec::new();
        while let Some(waiter) = self.cluster.replication.hw_waiters.pop_expired(now.instant) {
            expired.push(waiter);
        }
        // A marker not replicated in time is dropped: the coordinator resends it on
        // its timer, and appending a marker twice is harmless (the second ends no
        // transaction).
        while let Some(((coordinator, correlation), _)) =
            self.cluster.markers.marker_waiters.pop_expired(now.instant)
        {
            tracing::debug!(coordinator, correlation, "marker waiter expired");
        }
        let cluster = &mut *self.cluster;
        let mut due = Vec::new();
        while let Some(parked) = cluster.replication.pop_expired_fetch(now.instant) {
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
        for (id, waiter) in cluster.replication.hw_waiters.drain() {
            answers.push((
                id,
                super::errors::with_error(waiter.response, error, message),
            ));
        }
        for (id, waiter) in cluster.controller.commit_waiters.drain() {
            answers.push((
                id,
                super::errors::with_error(waiter.response, error, message),
            ));
        }
        for (id, (_, request)) in cluster.router.held.drain() {
            answers.push((id, super::errors::error_response(&request, error, message)));
        }
        for (_, forwarded) in cluster.router.forwarded.drain() {
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
        self.cluster.replication.hw_waiters.remove_conn(conn);
        self.cluster.router.held.remove_conn(conn);
        self.cluster.controller.commit_waiters.remove_conn(conn);
        (self.cluster.router.forwarded).remove_where(|_, f| f.id.conn() == Some(conn));
    }

    // ---- transaction markers for partitions led elsewhere ----------------------------------

    // ---- replication: follower side --------------------------------------------------------

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
            .or_else(|| {
                cluster
                    .meta
                    .image
                    .brokers
                    .get(&to)
                    .map(|b| b.peer_addr.clone())
            });
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
        let storage_ok = self.poisoned.is_none();
        cluster.meta.invariants(self.sync.completed, storage_ok);
        cluster.broker.invariants();
        let applied = cluster.meta.image.applied_index;
        cluster.controller.invariants(node_id, applied, storage_ok);
        cluster.markers.invariants();
        cluster.router.invariants();
        cluster.replication.invariants();
        self.replication_invariants();
        self.remote_invariants();
    }
}
