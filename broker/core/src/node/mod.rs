//! [`Node`]: one broker as a sans-IO state machine.
//!
//! Inputs arrive through `handle_*`; effects leave through [`Node::poll_output`] in the
//! order the driver must apply them. The node owns the topic catalog and every partition's
//! control-plane state; bytes live in storage and are read by the driver from the plans the
//! node puts in its responses.
//!
//! Durability (group commit): every storage op marks the node dirty; at the end of each
//! handler, if no sync is in flight, one [`Output::Sync`] covers everything applied so far.
//! An append made while a sync is in flight is covered by the *next* sync id, emitted when
//! the in-flight one completes. So at most one sync is in flight and an append waits for at
//! most two. Responses that promise durability (acks=1/all produce, topic creation and
//! deletion) are parked until their sync completes.
//!
//! Invariants (checked by [`Node::invariants`]): every partition's invariants; the catalog's
//! name and id maps agree; a sync is in flight whenever ops are unsynced; parked responses
//! wait for a sync not yet completed; bounds on every map hold.

pub mod acl;
mod admin;
mod append;
mod authz;
mod cluster;
pub use cluster::{
    Readiness, RemoteReportError, ShutdownReady, ShutdownStatus, PEER_CLOSED_GRACE_MS,
};
mod cluster_api;
mod compact;
mod describe;
pub use describe::DIRTY_RATIO_KEY;
mod delete_records;
mod errors;
mod features;
mod fetch;
mod group;
mod internal;
mod list_offsets;
mod log_dirs;
pub mod metrics;
mod produce;
mod producer_id;
mod quorum;
mod recover;
mod retention;
pub mod scram;
pub mod shard;
mod tier;
mod txn;
mod txn_offsets;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use uuid::Uuid;
use weir_wire::domain::{Acks, ApiRequest, ApiResponse, FetchRequest, TopicRef};
use weir_wire::error::ErrorCode;

use crate::buggify::{Buggify, Point, DELAY_ACK_MS_MAX};
use crate::config::{Durability, NodeConfig};
use crate::event::{Completion, Origin, Output, Principal, RequestId, SyncMode};
use crate::partition::PartitionLog;
use crate::purgatory::Purgatory;
use crate::storage::{Storage, StorageError, StorageOp};
use crate::time::{Instant, Now};
use crate::topic::PartitionId;
use crate::topic_config::TopicConfig;

/// Bound on topics per node.
pub const TOPICS_MAX: usize = 10_000;
/// Bound on partitions per node, all topics together.
pub const PARTITIONS_MAX: usize = 100_000;
/// Bound on responses parked until a sync completes; past it produce requests are refused
/// with REQUEST_TIMED_OUT (retriable) before anything is appended.
pub const SYNC_WAITERS_MAX: usize = 16_384;
/// Bound on parked fetches; past it a fetch is answered at once with what is available.
pub const FETCH_WAITERS_MAX: usize = 4_096;
/// Bound on a fetch's long-poll wait.
pub const FETCH_WAIT_MS_MAX: u64 = 300_000;
/// Floor on a produce's wait for its sync: the client's timeout is about replication, and
/// a sync is not given less than this before the request is answered REQUEST_TIMED_OUT.
pub const PRODUCE_TIMEOUT_MS_MIN: u64 = 1_000;

/// A topic in the catalog.
#[derive(Debug, Clone)]
pub(crate) struct Topic {
    /// Name.
    name: String,
    /// Stable id (KIP-516).
    id: Uuid,
    /// Validated overrides.
    config: TopicConfig,
    /// Partition `i` at index `i`.
    partitions: Vec<PartitionLog>,
}

/// A response waiting for the sync that makes its effects durable.
#[derive(Debug, Clone)]
struct SyncWaiter {
    sync_id: u64,
    response: ApiResponse,
}

/// A fetch waiting for data (long poll).
#[derive(Debug, Clone)]
struct ParkedFetch {
    request: FetchRequest,
    /// Partition keys it reads; a high watermark move on one of them re-evaluates it.
    partition_keys: Vec<u64>,
}

/// Group-commit bookkeeping.
#[derive(Debug, Clone)]
struct SyncState {
    /// Id the next emitted sync gets; appends made now are covered by it.
    next_id: u64,
    /// The sync emitted and not yet completed.
    in_flight: Option<u64>,
    /// Largest completed sync id.
    completed: u64,
    /// Ops were emitted since the last sync was.
    dirty: bool,
    /// Ops were emitted since the last fsync was (durability Os).
    dirty_since_fsync: bool,
    /// The next sync must be an fsync (periodic flush came while one was in flight).
    fsync_due: bool,
}

/// One broker node.
#[derive(Debug)]
pub struct Node {
    config: NodeConfig,
    /// The catalog by id (ids are what storage and Fetch v13+ use) and by name.
    topics: BTreeMap<Uuid, Topic>,
    topic_ids: BTreeMap<String, Uuid>,
    partition_count: usize,
    next_partition_key: u64,
    next_topic_seq: u64,
    /// The next producer id InitProducerId hands out (persisted before it is answered).
    next_producer_id: i64,
    /// Effects not yet taken by the driver. Not bounded by a constant: each input adds a
    /// number of outputs proportional to its own size (bounded by the frame limit), and the
    /// driver drains the queue after every input.
    outputs: VecDeque<Output>,
    sync: SyncState,
    sync_waiters: Purgatory<SyncWaiter>,
    /// `(sync id, request)` of every sync waiter, to release them in sync order.
    sync_order: BTreeSet<(u64, RequestId)>,
    fetch_waiters: Purgatory<ParkedFetch>,
    /// acks=0 produce requests being handled: their answer leaves as
    /// [`Output::NoResponse`]. Empty between inputs (acks=0 is answered at once).
    unanswered: BTreeSet<RequestId>,
    /// The principal of each authenticated client connection (bounded by the driver's
    /// connections: removed at disconnect). A connection not listed is anonymous.
    principals: BTreeMap<u64, Principal>,
    /// The client address of each Kafka-listener connection (bounded like `principals`).
    client_hosts: BTreeMap<u64, String>,
    /// The authorizer's decisions so far (`node/acl.rs`).
    authorizer_counts: acl::AuthorizerCounts,
    /// What the authorizer took out of requests being served, merged into their answers
    /// (`node/authz.rs`); one entry per request in flight, removed at its answer or at
    /// its connection's close.
    denied: BTreeMap<RequestId, authz::Denied>,
    /// Partitions with appends waiting for a sync: `(topic id, partition index)`.
    unsynced_partitions: BTreeSet<PartitionId>,
    next_retention_check: Instant,
    next_flush: Option<Instant>,
    poisoned: Option<String>,
    /// The group coordinator (classic consumer groups).
    groups: crate::group::GroupCoordinator,
    /// Group metadata writes waiting to become durable (`node/group.rs`), by marker id.
    group_writes: group::GroupWrites,
    /// The last marker id handed out.
    group_write_seq: u64,
    /// Outcomes of group metadata writes released during the current input.
    group_write_results: Vec<(String, i32, ErrorCode)>,
    /// The transaction coordinator's table.
    txns: crate::txn::TxnCoordinator,
    /// BUGGIFY decisions (off unless a simulation configured them).
    buggify: Buggify,
    /// Durable responses held back by [`Point::DelayAck`] until their deadline.
    delayed_acks: Purgatory<ApiResponse>,
    /// Log compaction of compacted topics (see `compact`).
    compactor: compact::Compactor,
    /// Tiered storage: uploads, remote retention, sweeps (see `tier`).
    tierer: tier::Tierer,
    /// Membership of the cluster: metadata quorum, controller, replication (a single node
    /// is a quorum of one).
    cluster: Box<cluster::ClusterState>,
    /// The schema registry's answers for broker-side validation (`schema_check`), given
    /// by the driver; `None` (registry off, simulations): validated topics refuse.
    schema_validator: Option<crate::schema_check::SharedValidator>,
}

impl Node {
    /// Rebuild a node from what `storage` holds (empty storage: a fresh node). Repairs of
    /// inconsistencies left by a crash are queued as outputs, followed by a sync.
    pub fn recover(
        config: NodeConfig,
        storage: &impl Storage,
        now: Now,
    ) -> Result<Node, StorageError> {
        recover::recover(config, storage, now)
    }

    /// Gives the node the schema registry's side of broker-side schema validation (the
    /// driver, once its registry is up). Topics with `confluent.*.schema.validation=true`
    /// refuse every record until then.
    pub fn set_schema_validator(&mut self, validator: crate::schema_check::SharedValidator) {
        self.schema_validator = Some(validator);
    }

    /// Handle one client request. Its response comes out of [`Node::poll_output`], now or
    /// once its data is durable or its long poll is over.
    pub fn handle_request(&mut self, now: Now, id: RequestId, request: ApiRequest) {
        self.cluster_note_now(now);
        // Kafka never answers an acks=0 produce; whatever path answers it, `respond` turns
        // the answer into an `Output::NoResponse`.
        if matches!(&request, ApiRequest::Produce(p) if p.acks == Acks::None) {
            self.unanswered.insert(id);
        }
        // After a storage failure nothing is known durable: refuse everything, fast.
        if let Some(reason) = &self.poisoned {
            let message = format!("storage failed: {reason}");
            let response =
                errors::error_response(&request, ErrorCode::KAFKA_STORAGE_ERROR, &message);
            self.respond(id, response);
            return;
        }
        let Some(request) = self.hold_request(now, id, request) else {
            self.flush_syncs(now);
            return;
        };
        self.dispatch_request(now, id, request);
    }

    /// Client connection `conn` authenticated as `principal` (SASL, or a re-authentication
    /// of the same user): its requests from now on are the principal's. The driver sends it
    /// before any request of the connection that needs it, on the same ordered channel.
    pub fn handle_authenticated(&mut self, conn: u64, principal: Principal) {
        self.principals.insert(conn, principal);
    }

    /// Client connection `conn` comes from `host` (its IP address): what ACLs with a host
    /// other than `*` match against. A connection without one (the gateway's) matches
    /// only `*` hosts.
    pub fn handle_client_host(&mut self, conn: u64, host: String) {
        self.client_hosts.insert(conn, host);
    }

    /// Who sent request `id`: its connection's authenticated principal, the client
    /// principal a forwarding broker named (`PeerMessage::ForwardAs`), or
    /// `User:ANONYMOUS`. The group coordinator's own writes are the broker's, which the
    /// authorizer never checks (`Node::authorize`).
    pub fn principal(&self, id: RequestId) -> Principal {
        match id.origin {
            Origin::Client { conn } => self.principals.get(&conn).cloned(),
            Origin::Forwarded { .. } => self.cluster.router.forwarded_principals.get(&id).cloned(),
            Origin::GroupWrite => None,
        }
        .unwrap_or_else(Principal::anonymous)
    }

    /// The client address request `id` came from: its connection's, the one a forwarding
    /// broker named, or none (`""`, which only `*` ACL hosts match).
    pub fn client_host(&self, id: RequestId) -> &str {
        match id.origin {
            Origin::Client { conn } => self.client_hosts.get(&conn).map(String::as_str),
            Origin::Forwarded { .. } => {
                (self.cluster.router.forwarded_hosts.get(&id)).map(String::as_str)
            }
            Origin::GroupWrite => None,
        }
        .unwrap_or(acl::UNKNOWN_HOST)
    }

    /// Route a request to the subsystem that serves it.
    fn dispatch_request(&mut self, now: Now, id: RequestId, request: ApiRequest) {
        // Kafka's authorization table (node/authz.rs) comes first, as in Kafka: denied
        // requests are answered here, denied items taken out and answered with the rest.
        let Some(request) = self.authorize_request(id, request) else {
            self.flush_syncs(now);
            return;
        };
        if let Some(error) = self.coordinator_refusal(&request) {
            let message = if error == ErrorCode::NOT_COORDINATOR {
                "this broker does not coordinate that group or transactional id"
            } else {
                "this broker is taking over the coordinator's partition"
            };
            let response = errors::error_response(&request, error, message);
            self.respond(id, response);
            return;
        }
        // One arm per API, no catch-all: adding an API to `ApiRequest` does not compile
        // until it is routed here.
        match request {
            // The partition log (produce.rs, fetch.rs, list_offsets.rs, cluster_api.rs).
            ApiRequest::Produce(r) => self.produce(now, id, r),
            ApiRequest::Fetch(r) => self.fetch(now, id, r),
            ApiRequest::ListOffsets(r) => self.list_offsets(id, r),
            ApiRequest::OffsetForLeaderEpoch(r) => self.offset_for_leader_epoch(id, r),
            ApiRequest::DeleteRecords(r) => self.delete_records(now, id, r),
            // Metadata from the image (describe.rs).
            ApiRequest::Metadata(r) => self.metadata(id, r),
            ApiRequest::DescribeConfigs(r) => self.describe_configs(now, id, r),
            ApiRequest::DescribeCluster(r) => self.describe_cluster(id, r),
            // This broker's partition replicas and their sizes (log_dirs.rs).
            ApiRequest::DescribeLogDirs(r) => self.describe_log_dirs(id, r),
            // Admin through the active controller (cluster_api.rs, quorum.rs).
            ApiRequest::CreateTopics(r) => self.cluster_create(id, r),
            ApiRequest::DeleteTopics(r) => self.cluster_delete(id, r),
            ApiRequest::CreatePartitions(r) => self.cluster_create_partitions(id, r),
            ApiRequest::IncrementalAlterConfigs(r) => self.incremental_alter_configs(id, r),
            ApiRequest::AlterConfigs(r) => self.alter_configs_request(id, r),
            ApiRequest::ElectLeaders(r) => self.elect_leaders(id, r),
            ApiRequest::AlterPartitionReassignments(r) => self.alter_reassignments(id, r),
            ApiRequest::ListPartitionReassignments(r) => self.list_reassignments(id, r),
            ApiRequest::DescribeQuorum(r) => self.describe_quorum(id, r),
            ApiRequest::AddRaftVoter(r) => self.add_raft_voter(id, r),
            ApiRequest::RemoveRaftVoter(r) => self.remove_raft_voter(id, r),
            // The group coordinator (group.rs, crate::group).
            ApiRequest::FindCoordinator(r) => self.find_coordinator(id, r),
            ApiRequest::JoinGroup(r) => self.groups.join_group(now, id, r),
            ApiRequest::SyncGroup(r) => self.groups.sync_group(now, id, r),
            ApiRequest::Heartbeat(r) => self.groups.heartbeat(now, id, r),
            ApiRequest::LeaveGroup(r) => self.groups.leave_group(now, id, r),
            ApiRequest::ListGroups(r) => self.list_groups(id, r),
            ApiRequest::DescribeGroups(r) => self.describe_groups(id, r),
            ApiRequest::OffsetCommit(r) => self.offset_commit(now, id, r),
            ApiRequest::OffsetFetch(r) => self.offset_fetch(id, r),
            ApiRequest::DeleteGroups(r) => self.delete_groups(now, id, r),
            ApiRequest::OffsetDelete(r) => self.offset_delete(now, id, r),
            ApiRequest::ConsumerGroupHeartbeat(r) => self.consumer_group_heartbeat(now, id, r),
            ApiRequest::ConsumerGroupDescribe(r) => self.consumer_group_describe(id, r),
            // Producer ids and the transaction coordinator (producer_id.rs, txn.rs).
            ApiRequest::InitProducerId(r) => self.init_producer_id(now, id, r),
            ApiRequest::AddPartitionsToTxn(r) => self.add_partitions_to_txn(now, id, r),
            ApiRequest::AddOffsetsToTxn(r) => self.add_offsets_to_txn(now, id, r),
            ApiRequest::TxnOffsetCommit(r) => self.txn_offset_commit(now, id, r),
            ApiRequest::EndTxn(r) => self.end_txn(now, id, r),
            ApiRequest::WriteTxnMarkers(r) => self.write_txn_markers(now, id, r),
            ApiRequest::DescribeTransactions(r) => self.describe_transactions(id, r),
            ApiRequest::ListTransactions(r) => self.list_transactions(now, id, r),
            ApiRequest::DescribeProducers(r) => self.describe_producers(id, r),
            // SCRAM credentials through the active controller (scram.rs).
            ApiRequest::DescribeUserScramCredentials(r) => {
                self.describe_user_scram_credentials(id, r)
            }
            ApiRequest::AlterUserScramCredentials(r) => self.alter_user_scram_credentials(id, r),
            // ACLs: described from the image, changed through the active controller.
            ApiRequest::DescribeAcls(r) => self.describe_acls(id, r),
            ApiRequest::CreateAcls(r) => self.create_acls(id, r),
            ApiRequest::DeleteAcls(r) => self.delete_acls(id, r),
            // Feature levels through the active controller (features.rs).
            ApiRequest::UpdateFeatures(r) => self.update_features(id, r),
            // Authentication is the connection's (the server's conn.rs); one that reaches
            // the node came through a path without SASL (the gateway).
            request @ (ApiRequest::SaslHandshake(_) | ApiRequest::SaslAuthenticate(_)) => {
                let message = "SASL is negotiated by the connection, not this path";
                let response =
                    errors::error_response(&request, ErrorCode::ILLEGAL_SASL_STATE, message);
                self.respond(id, response);
            }
        }
        // What the group coordinator answered or wants written goes out (nothing when the
        // request was not a group's), and whatever the request wrote is covered by a sync
        // before the next input.
        self.drain_group_outputs(now);
        self.flush_syncs(now);
    }

    /// Handle the driver's report about storage.
    pub fn handle_storage(&mut self, now: Now, completion: Completion) {
        if self.poisoned.is_some() {
            return;
        }
        match completion {
            Completion::Synced { sync_id } => self.on_synced(now, sync_id),
            Completion::Failed { reason } => {
                tracing::error!(%reason, "storage failed");
                self.poison(reason);
            }
            Completion::Compacted(outcome) => self.on_compacted(now, outcome),
            Completion::Uploaded(outcome) => self.on_uploaded(now, outcome),
        }
        if self.poisoned.is_none() {
            self.release_held_requests(now);
        }
        self.flush_syncs(now);
    }

    /// Handle the passage of time: long-poll and produce deadlines, retention, the
    /// periodic fsync. Call it when [`Node::poll_timeout`] is reached (early is harmless).
    pub fn handle_timeout(&mut self, now: Now) {
        if self.poisoned.is_some() {
            return;
        }
        self.cluster_note_now(now);
        // An expired fetch is answered with whatever is available, even below min_bytes.
        while let Some((id, parked)) = self.fetch_waiters.pop_expired(now.instant) {
            let evaluation = self.evaluate_fetch(&parked.request);
            self.respond(id, evaluation.response);
        }
        // A produce that outlived its timeout is told so; its append stays and becomes visible
        // when the sync completes (as with Kafka's acks=all timeouts).
        while let Some((id, waiter)) = self.sync_waiters.pop_expired(now.instant) {
            self.sync_order.remove(&(waiter.sync_id, id));
            let message = "timed out waiting for the append to become durable";
            let response =
                errors::with_error(waiter.response, ErrorCode::REQUEST_TIMED_OUT, message);
            self.respond(id, response);
        }
        while let Some((id, response)) = self.delayed_acks.pop_expired(now.instant) {
            self.respond(id, response);
        }
        self.cluster_timeout(now);
        self.release_held_requests(now);
        self.groups.handle_timeout(now);
        self.drain_group_outputs(now);
        self.expire_transactions(now);
        self.schedule_compaction(now);
        self.schedule_tiering(now);
        if now.instant >= self.next_retention_check {
            self.enforce_retention(now);
            self.expire_producers(now);
            self.expire_transactional_ids(now);
            self.next_retention_check = now.instant.add_ms(self.config.retention_check_interval_ms);
        }
        if let Some(next_flush) = self.next_flush {
            if now.instant >= next_flush {
                // Os durability: writes acknowledged after an OsBuffer sync reach the disk here.
                self.sync.fsync_due |= self.sync.dirty_since_fsync;
                self.next_flush = Some(now.instant.add_ms(self.config.flush_interval_ms));
            }
        }
        self.flush_syncs(now);
    }

    /// Forget the pending work of a closed connection: no responses will be emitted for it.
    /// Appends it made stay (they may already be durable).
    pub fn handle_disconnect(&mut self, _now: Now, conn: u64) {
        self.principals.remove(&conn);
        self.client_hosts.remove(&conn);
        self.denied.retain(|id, _| id.conn() != Some(conn));
        self.cluster_disconnect(conn);
        self.unanswered.retain(|id| id.conn() != Some(conn));
        self.groups.handle_disconnect(conn);
        self.fetch_waiters.remove_conn(conn);
        self.delayed_acks.remove_conn(conn);
        for (id, waiter) in self.sync_waiters.remove_conn(conn) {
            self.sync_order.remove(&(waiter.sync_id, id));
        }
    }

    /// The next effect to perform, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Node::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.poisoned.is_some() {
            return None;
        }
        [
            self.fetch_waiters.next_deadline(),
            self.sync_waiters.next_deadline(),
            self.delayed_acks.next_deadline(),
            Some(self.next_retention_check),
            self.next_flush,
            self.groups.next_deadline(),
            self.txns.next_deadline(),
            self.cluster_deadline(),
            self.compaction_deadline(),
            self.tier_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// True once storage failed; the node then answers everything KAFKA_STORAGE_ERROR.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// `(log_start_offset, high_watermark, log_end_offset)` of a partition, for tests and
    /// metrics.
    pub fn partition_offsets(&self, topic: &str, partition: i32) -> Option<(i64, i64, i64)> {
        let log = self
            .topic_by_name(topic)?
            .partitions
            .get(usize::try_from(partition).ok()?)?;
        Some((
            log.log_start_offset(),
            log.high_watermark(),
            log.log_end_offset(),
        ))
    }

    /// Names of every topic, sorted.
    pub fn topic_names(&self) -> Vec<String> {
        self.topic_ids.keys().cloned().collect()
    }

    /// Assert every invariant of the node (the simulator calls this after every step).
    pub fn invariants(&self) {
        self.cluster_invariants();
        self.compaction_invariants();
        self.tier_invariants();
        // An acks=0 produce is completed within its input, unless it is held (the broker
        // is starting): then it is completed when dispatched.
        assert!(
            (self.unanswered.iter()).all(|id| self.cluster.router.held.get(*id).is_some()),
            "acks=0 produce requests are answered within their input"
        );
        assert_eq!(
            self.topics.len(),
            self.topic_ids.len(),
            "catalog maps disagree"
        );
        assert!(
            self.topics.len() <= TOPICS_MAX,
            "topics={}",
            self.topics.len()
        );
        let mut partitions = 0;
        for (id, topic) in &self.topics {
            assert_eq!(
                self.topic_ids.get(&topic.name),
                Some(id),
                "topic {}",
                topic.name
            );
            assert_eq!(*id, topic.id, "topic {}", topic.name);
            partitions += topic.partitions.len();
            for (index, log) in topic.partitions.iter().enumerate() {
                log.invariants();
                assert!(
                    log.partition_key() < self.next_partition_key,
                    "key {}",
                    log.partition_key()
                );
                assert_eq!(
                    crate::shard::shard_of_key(log.partition_key()),
                    self.config.shard.index(),
                    "key {} outside its shard's range",
                    log.partition_key()
                );
                let tracked = self
                    .unsynced_partitions
                    .contains(&PartitionId::new(*id, index));
                assert_eq!(
                    log.has_unsynced(),
                    tracked,
                    "{}/{index} unsynced tracking",
                    topic.name
                );
            }
        }
        assert_eq!(partitions, self.partition_count, "partition count");
        assert!(partitions <= PARTITIONS_MAX, "partitions={partitions}");
        for key in &self.unsynced_partitions {
            let exists = self
                .topics
                .get(&key.topic)
                .is_some_and(|t| key.index() < t.partitions.len());
            assert!(exists, "unsynced partition {key} does not exist");
        }
        self.sync_invariants();
        self.groups.invariants();
        assert!(
            self.group_writes.len() <= crate::group::GROUPS_MAX,
            "group writes={}",
            self.group_writes.len()
        );
        assert!(
            self.group_write_results.is_empty(),
            "group write outcomes left after an input"
        );
        self.txns.invariants();
        self.compaction_invariants();
        self.tier_invariants();
    }

    fn sync_invariants(&self) {
        let sync = &self.sync;
        assert!(
            sync.completed < sync.next_id,
            "completed={} next={}",
            sync.completed,
            sync.next_id
        );
        if let Some(in_flight) = sync.in_flight {
            assert!(
                in_flight > sync.completed,
                "in_flight={in_flight} completed={}",
                sync.completed
            );
            assert!(
                in_flight < sync.next_id,
                "in_flight={in_flight} next={}",
                sync.next_id
            );
        } else if self.poisoned.is_none() {
            // flush_syncs runs after every input, so dirt never waits without a sync.
            assert!(!sync.dirty, "ops emitted but no sync in flight");
            assert!(!sync.fsync_due, "fsync due but none in flight");
        }
        self.sync_waiters.invariants();
        self.fetch_waiters.invariants();
        assert_eq!(
            self.sync_order.len(),
            self.sync_waiters.len(),
            "sync order index"
        );
        for (sync_id, id) in &self.sync_order {
            let waiter = self.sync_waiters.get(*id).expect("indexed waiter exists");
            assert_eq!(waiter.sync_id, *sync_id, "waiter {id:?}");
            assert!(
                *sync_id > sync.completed,
                "waiter {id:?} for completed sync {sync_id}"
            );
            assert!(
                *sync_id <= sync.next_id,
                "waiter {id:?} for future sync {sync_id}"
            );
        }
        if self.poisoned.is_some() {
            assert!(
                self.sync_waiters.is_empty(),
                "poisoned node keeps sync waiters"
            );
            assert!(
                self.fetch_waiters.is_empty(),
                "poisoned node keeps fetch waiters"
            );
            assert!(
                self.delayed_acks.is_empty(),
                "poisoned node keeps delayed acks"
            );
        }
        self.delayed_acks.invariants();
        assert!(
            self.buggify.enabled() || self.delayed_acks.is_empty(),
            "acks delayed with BUGGIFY off"
        );
    }

    // ---- construction and shared helpers -------------------------------------------

    /// A node with an empty catalog.
    fn empty(config: NodeConfig, cluster: Box<cluster::ClusterState>, now: Now) -> Node {
        // The server validates its config at start; an invalid one here is a driver bug
        // (a zero interval, say, would spin the driver on timeouts).
        if let Err(error) = config.validate() {
            panic!("Node built from an invalid config: {error}");
        }
        let next_flush = match config.durability {
            Durability::Os => Some(now.instant.add_ms(config.flush_interval_ms)),
            Durability::Fsync => None,
        };
        let next_retention_check = now.instant.add_ms(config.retention_check_interval_ms);
        let group_initial_rebalance_delay_ms = config.group_initial_rebalance_delay_ms;
        let group_min_session_timeout_ms = config.group_min_session_timeout_ms;
        let group_max_session_timeout_ms = config.group_max_session_timeout_ms;
        let consumer_heartbeat_interval_ms = config.group_consumer_heartbeat_interval_ms;
        let consumer_session_timeout_ms = config.group_consumer_session_timeout_ms;
        let buggify = Buggify::new(config.buggify);
        Node {
            config,
            topics: BTreeMap::new(),
            topic_ids: BTreeMap::new(),
            partition_count: 0,
            next_partition_key: 1,
            next_topic_seq: 0,
            next_producer_id: 0,
            outputs: VecDeque::new(),
            sync: SyncState {
                next_id: 1,
                in_flight: None,
                completed: 0,
                dirty: false,
                dirty_since_fsync: false,
                fsync_due: false,
            },
            sync_waiters: Purgatory::new(SYNC_WAITERS_MAX),
            sync_order: BTreeSet::new(),
            fetch_waiters: Purgatory::new(FETCH_WAITERS_MAX),
            unsynced_partitions: BTreeSet::new(),
            next_retention_check,
            next_flush,
            poisoned: None,
            groups: crate::group::GroupCoordinator::new(crate::group::GroupConfig {
                initial_rebalance_delay_ms: group_initial_rebalance_delay_ms,
                min_session_timeout_ms: group_min_session_timeout_ms,
                max_session_timeout_ms: group_max_session_timeout_ms,
                consumer_heartbeat_interval_ms,
                consumer_session_timeout_ms,
            }),
            group_writes: group::GroupWrites::new(),
            group_write_seq: 0,
            group_write_results: Vec::new(),
            txns: crate::txn::TxnCoordinator::default(),
            buggify,
            // As many as can wait for a sync: every delayed ack was a sync waiter.
            delayed_acks: Purgatory::new(SYNC_WAITERS_MAX),
            unanswered: BTreeSet::new(),
            principals: BTreeMap::new(),
            authorizer_counts: acl::AuthorizerCounts::default(),
            client_hosts: BTreeMap::new(),
            denied: BTreeMap::new(),
            compactor: compact::Compactor::default(),
            tierer: tier::Tierer::default(),
            schema_validator: None,
            cluster,
        }
    }

    fn respond(&mut self, id: RequestId, response: ApiResponse) {
        // A group metadata write's marker: its outcome goes to the group coordinator.
        if self.intercept_group_write(id, &response) {
            return;
        }
        // Items the authorizer denied join the answer (or a listing is filtered).
        let response = self.merge_denied(id, response);
        let response = self.restrict_operations(id, response);
        // Requests forwarded by another broker are answered over the peer protocol.
        let Some((id, response)) = self.answer_forwarded(id, response) else {
            return;
        };
        if self.unanswered.remove(&id) {
            let close = first_produce_error(&response).is_some();
            if close {
                tracing::info!(?id, "acks=0 produce refused: the connection is closed");
            }
            self.outputs.push_back(Output::NoResponse { id, close });
            return;
        }
        self.outputs.push_back(Output::Respond { id, response });
    }

    /// The log of partition `key` (topic id, index), if both exist.
    fn log_mut(&mut self, key: PartitionId) -> Option<&mut PartitionLog> {
        self.topics
            .get_mut(&key.topic)?
            .partitions
            .get_mut(key.index())
    }

    /// Queue a storage op; the next sync covers it.
    fn emit(&mut self, op: StorageOp) {
        self.outputs.push_back(Output::Storage(op));
        self.sync.dirty = true;
        self.sync.dirty_since_fsync = true;
    }

    /// Respond once the sync covering everything emitted so far completes: the next one
    /// when ops were emitted since the last sync was, else the one in flight; at once (as
    /// durable) when there is neither, since everything emitted is then durable already.
    /// The last case is a request that wrote nothing (an EndTxn retried after its
    /// transaction completed): waiting for a sync nothing will emit would hang it.
    fn respond_when_durable(
        &mut self,
        id: RequestId,
        response: ApiResponse,
        deadline: Option<Instant>,
    ) {
        // A parked answer must have an error form, or a failed sync would send it as a
        // success (see `errors::with_error`).
        assert!(
            errors::may_wait_for_sync(&response),
            "response of this type cannot wait for a sync: {response:?}"
        );
        // PLANTED BUG (weir-sim's planted suite only; never in a real build): answer before
        // the data is durable, so a crash can lose acknowledged writes.
        if crate::planted::on(crate::planted::Bug::AckBeforeSync) {
            self.respond(id, response);
            return;
        }
        // Cluster mode: coordinator writes to replicated internal partitions are answered
        // once the in-sync replicas have them (which implies this node's sync too).
        let Some((id, response)) = self.respond_when_internal_replicated(id, response) else {
            return;
        };
        let sync_id = match (self.sync.dirty, self.sync.in_flight) {
            (true, _) => self.sync.next_id,
            (false, Some(in_flight)) => in_flight,
            (false, None) => {
                // Not while poisoned: no input is handled then.
                self.respond(id, response);
                return;
            }
        };
        match self
            .sync_waiters
            .insert(id, deadline, SyncWaiter { sync_id, response })
        {
            Ok(()) => {
                self.sync_order.insert((sync_id, id));
            }
            // Callers check for room before changing anything; a full map here is a bug.
            Err(_) => panic!("sync waiters full for {id:?}: callers must check first"),
        }
    }

    /// [`Node::respond_when_durable`] for an answer released later (by replication), when
    /// the room its caller checked may be gone: refused as overloaded then.
    fn respond_when_durable_or_refuse(&mut self, id: RequestId, response: ApiResponse) {
        match self.check_room_for_changes() {
            Ok(()) => self.respond_when_durable(id, response, None),
            Err((error, message)) => {
                let response = errors::with_error(response, error, &message);
                self.respond(id, response);
            }
        }
    }

    /// Emit a sync if anything waits for one and none is in flight (group commit). Every
    /// input ends here, so internal topics are considered for compaction first (their
    /// coordinators' memory matches their logs only between inputs).
    fn flush_syncs(&mut self, now: Now) {
        // Records proposed by this input (a topic created on a request's behalf) go to the
        // metadata log's writes, covered by the sync below.
        if self.poisoned.is_none() {
            self.drive_cluster(now);
        }
        // Group writes released by this input complete their rebalances (and may write).
        self.finish_group_writes(now);
        if self.poisoned.is_some() || self.sync.in_flight.is_some() {
            return;
        }
        if !self.sync.dirty && !self.sync.fsync_due {
            return;
        }
        // Fsync durability syncs for real every time; Os only when the periodic flush is due.
        let fsync = self.config.durability == Durability::Fsync || self.sync.fsync_due;
        let mode = if fsync {
            SyncMode::Fsync
        } else {
            SyncMode::OsBuffer
        };
        let sync_id = self.sync.next_id;
        self.sync.next_id += 1;
        self.sync.in_flight = Some(sync_id);
        self.sync.dirty = false;
        if fsync {
            self.sync.fsync_due = false;
            self.sync.dirty_since_fsync = false;
        }
        self.outputs.push_back(Output::Sync { sync_id, mode });
    }

    /// Sync `sync_id` and all before it completed: advance high watermarks, release parked
    /// responses, wake fetches.
    fn on_synced(&mut self, now: Now, sync_id: u64) {
        assert!(
            sync_id < self.sync.next_id,
            "sync {sync_id} completed but never emitted"
        );
        if sync_id <= self.sync.completed {
            return; // A coalesced or repeated completion: nothing new.
        }
        self.sync.completed = sync_id;
        if self.sync.in_flight.is_some_and(|id| id <= sync_id) {
            self.sync.in_flight = None;
        }
        // Storage keys (what parked fetches name) and partitions whose durable end moved.
        let mut advanced = BTreeSet::new();
        let mut advanced_ids = BTreeSet::new();
        // Only partitions with appends in flight are visited, not the whole catalog.
        let unsynced = std::mem::take(&mut self.unsynced_partitions);
        for key in unsynced {
            let Some(log) = self.log_mut(key) else {
                continue;
            };
            if log.on_synced(sync_id) {
                advanced.insert(log.partition_key());
                advanced_ids.insert(key);
            }
            if log.has_unsynced() {
                self.unsynced_partitions.insert(key);
            }
        }
        // Parked responses are released in sync order; each was registered under the sync that
        // covers its writes, so releasing up to `sync_id` releases exactly the durable ones.
        while let Some(&(waiter_sync_id, id)) = self.sync_order.first() {
            if waiter_sync_id > sync_id {
                break;
            }
            self.sync_order.pop_first();
            if let Some(waiter) = self.sync_waiters.remove(id) {
                self.respond_durable(now, id, waiter.response);
            }
        }
        self.wake_fetches(|keys| keys.iter().any(|key| advanced.contains(key)));
        self.cluster_on_synced(now, sync_id, &advanced_ids);
    }

    /// Answer a response whose effects are durable — now, or a little later when BUGGIFY
    /// delays the acknowledgement (a late ack is legal: the client may time out and retry).
    pub(super) fn respond_durable(&mut self, now: Now, id: RequestId, response: ApiResponse) {
        if self.buggify.fire(Point::DelayAck) {
            let delay_ms = self.buggify.between(1, DELAY_ACK_MS_MAX);
            let deadline = Some(now.instant.add_ms(delay_ms));
            // Full (as many as can wait for a sync): answer now instead.
            if let Err(response) = self.delayed_acks.insert(id, deadline, response) {
                self.respond(id, response);
            }
            return;
        }
        self.respond(id, response);
    }

    /// Storage failed, or the node cannot follow the cluster (a metadata version it does
    /// not support, a refused registration): stop, answer everything parked, tell the driver.
    fn poison(&mut self, reason: String) {
        tracing::error!(%reason, "node stopped (poisoned)");
        let message = format!("node stopped: {reason}");
        self.sync_order.clear();
        // Held-back acks were durable before the failure: they keep their answer.
        for (id, response) in self.delayed_acks.drain() {
            self.respond(id, response);
        }
        for (id, waiter) in self.sync_waiters.drain() {
            let response =
                errors::with_error(waiter.response, ErrorCode::KAFKA_STORAGE_ERROR, &message);
            self.respond(id, response);
        }
        for (id, parked) in self.fetch_waiters.drain() {
            let request = ApiRequest::Fetch(parked.request);
            let response =
                errors::error_response(&request, ErrorCode::KAFKA_STORAGE_ERROR, &message);
            self.respond(id, response);
        }
        self.fail_cluster_waiters(ErrorCode::KAFKA_STORAGE_ERROR, &message);
        self.outputs.push_back(Output::Poisoned {
            reason: reason.clone(),
        });
        self.poisoned = Some(reason);
    }

    fn topic_by_name(&self, name: &str) -> Option<&Topic> {
        self.topic_ids.get(name).and_then(|id| self.topics.get(id))
    }

    /// Resolve a topic reference; the error is the one Kafka gives for an unknown one.
    fn resolve_topic(&self, topic: &TopicRef) -> Result<Uuid, ErrorCode> {
        match topic {
            TopicRef::Name(name) => self
                .topic_ids
                .get(name)
                .copied()
                .ok_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
            TopicRef::Id(id) if self.topics.contains_key(id) => Ok(*id),
            TopicRef::Id(_) => Err(ErrorCode::UNKNOWN_TOPIC_ID),
        }
    }

    /// Resolve a topic reference and a partition index to the partition's log.
    fn resolve_partition(
        &self,
        topic: &TopicRef,
        partition: i32,
    ) -> Result<PartitionId, ErrorCode> {
        let topic_id = self.resolve_topic(topic)?;
        let index =
            usize::try_from(partition).map_err(|_| ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)?;
        match self.topics.get(&topic_id) {
            Some(topic) if index < topic.partitions.len() => Ok(PartitionId::new(topic_id, index)),
            _ => Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        }
    }

    fn partition(&self, id: PartitionId) -> Option<&PartitionLog> {
        let (topic_id, index) = (id.topic, id.index());
        self.topics.get(&topic_id)?.partitions.get(index)
    }
}

/// Kafka's check of a client's `current_leader_epoch` (-1 = not known to the client)
/// against this node's epoch for the partition: a client behind it is told
/// FENCED_LEADER_EPOCH (it must refresh metadata), one ahead UNKNOWN_LEADER_EPOCH.
fn check_epoch_against(current_leader_epoch: i32, ours: i32) -> Result<(), ErrorCode> {
    if current_leader_epoch > ours {
        return Err(ErrorCode::UNKNOWN_LEADER_EPOCH);
    }
    if current_leader_epoch >= 0 && current_leader_epoch < ours {
        return Err(ErrorCode::FENCED_LEADER_EPOCH);
    }
    Ok(())
}

/// The first partition error of a produce answer, if any.
fn first_produce_error(response: &ApiResponse) -> Option<ErrorCode> {
    let ApiResponse::Produce(produce) = response else {
        return None;
    };
    produce
        .topics
        .iter()
        .flat_map(|topic| topic.partitions.iter())
        .map(|partition| partition.error)
        .find(|error| *error != ErrorCode::NONE)
}
