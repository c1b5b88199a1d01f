//! The controller: broker registration and sessions, fencing, leader election, topic
//! creation, ISR changes; its answers wait for their records to commit.
//!
//! **Commit waiters.** Admin answers wait until the record their request proposed is
//! applied here, and succeed only if the entry at that index still has the term it was
//! proposed in (otherwise a new leader replaced it: NOT_CONTROLLER). They are judged
//! before compaction can drop the entries.
//!
//! **Sessions and fencing.** The active controller keeps a session per broker from its
//! heartbeats (`ControllerState::heard_from`). A broker silent for a whole session, or a
//! suspect whose deadline came (its connection closed [`PEER_CLOSED_GRACE_MS`] ago, or a
//! new controller has not heard from it within a few heartbeat intervals), is fenced:
//! its leaderships move to other ISR members at new epochs (`controller::fence_broker`).
//! A heartbeat from a new incarnation (a restart, which may have lost unsynced data)
//! first fences the old one, then registers the new one fenced; it is unfenced only once
//! its heartbeat shows it applied the log up to its own registration (or, under a new
//! controller that does not know that index, up to the controller's no-op). Offline
//! partitions are elected on every check and at every unfence, and leadership moves back
//! to preferred replicas on the rebalance interval when enabled.
//!
//! **Leader reports.** ISR changes (`AlterIsr`) and uploaded remote segments
//! (`RemoteSegmentUploaded`) come from partition leaders and are judged by the pure
//! `cluster::controller` functions on the decision image; a stale or repeated report is
//! dropped without an answer, and the leader, which watches its image, resends or gives up.
//!
//! **Must never break.** Decisions are made on the decision image only while this node is
//! the active controller; a controller never suspects itself; every commit waiter waits
//! for an index not yet applied (see [`ControllerState::invariants`]).

use std::collections::BTreeMap;

use weir_wire::domain::ApiResponse;
use weir_wire::error::ErrorCode;

use crate::cluster::controller;
use crate::cluster::features::{VersionRange, METADATA_VERSION};
use crate::cluster::image::{MetaRecord, TopicImage};
use crate::cluster::peer::{
    AlterIsr, BrokerHeartbeat, PeerMessage, RemoteSegmentUploaded, RemoteSegmentsExpired,
};
use crate::event::RequestId;
use crate::node::Node;
use crate::purgatory::Purgatory;
use crate::time::{Instant, Now};

use super::{CONTROLLER_CHECK_MS, INTERNAL_TOPIC_RF_MAX, PEER_CLOSED_GRACE_MS};

/// The controller's own state (meaningful on the active controller; reset on take-over).
/// Its decisions are records proposed to the quorum, made against
/// [`MetaQuorum::decision_image`].
#[derive(Debug)]
pub(in crate::node) struct ControllerState {
    /// Last heartbeat per broker (this controller's term only; reset on take-over).
    pub(super) sessions: BTreeMap<i32, Instant>,
    /// Index of each broker's registration record: it is unfenced only once its
    /// heartbeat reports that index applied (it then knows its own registration).
    pub(super) registered_at: BTreeMap<i32, u64>,
    /// Brokers suspected gone before their session ends, with the moment they are fenced
    /// unless a heartbeat comes first: their inbound connection closed (a killed process's
    /// connections close at once), or this controller just took over and has not heard
    /// from them yet. A heartbeat clears the entry.
    pub(super) suspects: BTreeMap<i32, Instant>,
    /// Every node (controller or not) remembers peers whose inbound connection closed and
    /// that it has not heard from since: a node that becomes the controller suspects them
    /// from the moment they went quiet, not from its take-over (the old controller's own
    /// connections close when it dies, so failover after a controller crash is not held up
    /// by a grace period for the dead node).
    pub(super) closed_peers: BTreeMap<i32, Instant>,
    pub(super) next_controller_check: Instant,
    pub(super) next_rebalance: Instant,
    /// Topics of a single-node data directory written before the node ran a metadata
    /// quorum, to be recorded in the metadata log once this node controls it (see
    /// [`Node::plan_legacy_adoption`]).
    pub(super) adopt: Vec<MetaRecord>,
    /// The `metadata.version` range each node reported in its latest heartbeat to this
    /// node as the controller (a build without levels reports none, which removes it).
    pub(in crate::node) reported: BTreeMap<i32, VersionRange>,
    /// Answers waiting for the metadata records their requests proposed to commit (admin
    /// requests, and AddRaftVoter/RemoveRaftVoter answers waiting for their voter-set
    /// entry, see [`crate::node::quorum`]), by request.
    // Invariant: every waiter's index is above the applied index (`answer_commit_waiters`
    // runs after every apply), so none is forgotten once its entry applied.
    pub(in crate::node) commit_waiters: Purgatory<CommitWaiter>,
}

impl ControllerState {
    /// A fresh controller state: no sessions, nothing suspected, no waiters.
    pub(super) fn new(now: Instant, commit_waiters_max: usize) -> ControllerState {
        ControllerState {
            sessions: BTreeMap::new(),
            registered_at: BTreeMap::new(),
            suspects: BTreeMap::new(),
            closed_peers: BTreeMap::new(),
            next_controller_check: now,
            next_rebalance: now,
            adopt: Vec::new(),
            reported: BTreeMap::new(),
            commit_waiters: Purgatory::new(commit_waiters_max),
        }
    }

    /// This node just became the Raft leader: every registered broker gets a full session
    /// from now, but one it has not heard from within `grace_ms` (or, if its connection to
    /// this node closed earlier, within [`PEER_CLOSED_GRACE_MS`] of that) is fenced before
    /// that: a live broker finds a new controller within a few heartbeats, so failover does
    /// not wait a whole session for a dead one. Registrations of the previous term are
    /// forgotten (a new controller waits for its own no-op before unfencing).
    pub(super) fn take_over(&mut self, now: Instant, brokers: &[i32], node_id: i32, grace_ms: u64) {
        self.sessions = brokers.iter().map(|b| (*b, now)).collect();
        let closed = &self.closed_peers;
        self.suspects = (brokers.iter())
            .filter(|b| **b != node_id)
            .map(|b| {
                let at = match closed.get(b) {
                    Some(closed_at) => closed_at.add_ms(PEER_CLOSED_GRACE_MS),
                    None => now.add_ms(grace_ms),
                };
                (*b, at)
            })
            .collect();
        self.registered_at.clear();
        debug_assert!(
            !self.suspects.contains_key(&node_id),
            "a controller suspects itself"
        );
    }

    /// A heartbeat from `from` reached the active controller: its session starts over and
    /// it is no longer suspected.
    pub(super) fn heard_from(&mut self, now: Instant, from: i32) {
        self.sessions.insert(from, now);
        self.suspects.remove(&from);
    }

    /// Any message from `from` proves it is alive again (see `closed_peers`).
    pub(super) fn peer_alive(&mut self, from: i32) {
        self.closed_peers.remove(&from);
    }

    /// The inbound connection of `from` closed. Every node remembers when; the active
    /// controller (`suspect` true: it is active and `from` is a live broker) also fences
    /// it [`PEER_CLOSED_GRACE_MS`] later unless it heartbeats first.
    pub(super) fn peer_closed(&mut self, now: Instant, from: i32, suspect: bool) {
        self.closed_peers.entry(from).or_insert(now);
        if suspect {
            let at = now.add_ms(PEER_CLOSED_GRACE_MS);
            let entry = self.suspects.entry(from).or_insert(at);
            *entry = (*entry).min(at);
        }
    }

    /// True when a suspect's deadline has come.
    pub(super) fn suspect_due(&self, now: Instant) -> bool {
        self.suspects.values().any(|at| now >= *at)
    }

    /// The unfenced brokers to fence now: those silent for more than a session
    /// (`timeout_ms`) and the suspects whose deadline came. `brokers` are the image's
    /// (id, fenced) pairs. A broker this controller has not heard from yet gets one session
    /// from now (its image may have been empty at take-over): it must still expire. Due
    /// suspects are dropped whether or not they are fenced here: a spent deadline left in
    /// place would wake the node loop forever.
    pub(super) fn expired(
        &mut self,
        now: Instant,
        brokers: &[(i32, bool)],
        timeout_ms: u64,
    ) -> Vec<i32> {
        let due: Vec<i32> = (self.suspects.iter())
            .filter(|(_, at)| now >= **at)
            .map(|(id, _)| *id)
            .collect();
        self.suspects.retain(|_, at| now < *at);
        for (id, _) in brokers {
            self.sessions.entry(*id).or_insert(now);
        }
        let expired: Vec<i32> = (brokers.iter())
            .filter(|(_, fenced)| !fenced)
            .filter(|(id, _)| {
                let last = self.sessions.get(id).copied().unwrap_or(now);
                let silent = now.saturating_duration_since(last).as_millis() as u64;
                silent > timeout_ms || due.contains(id)
            })
            .map(|(id, _)| *id)
            .collect();
        debug_assert!(self.suspects.values().all(|at| now < *at));
        expired
    }

    /// The earliest suspect deadline (the node loop wakes then to fence).
    pub(super) fn next_suspect_deadline(&self) -> Option<Instant> {
        self.suspects.values().min().copied()
    }

    /// The controller's own bookkeeping: waiters bounded and, unless storage failed (then
    /// nothing applies any more), each waiting for an entry not applied yet; this node
    /// never suspects itself.
    pub(super) fn invariants(&self, node_id: i32, applied_index: u64, storage_ok: bool) {
        self.commit_waiters.invariants();
        if storage_ok {
            // Commit waiters are judged after every apply: none waits for an applied index.
            assert!(
                (self.commit_waiters.iter()).all(|(_, w)| w.index > applied_index),
                "a commit waiter outlived the apply of its entry"
            );
        }
        assert!(
            !self.suspects.contains_key(&node_id),
            "a controller suspects itself"
        );
        assert!(
            !self.closed_peers.contains_key(&node_id),
            "a node closed on itself"
        );
    }
}

/// An answer waiting for its request's metadata record to commit.
#[derive(Debug, Clone)]
pub(in crate::node) struct CommitWaiter {
    /// Raft index of the request's last record.
    pub(super) index: u64,
    /// Term of the entry proposed there: another term at that index means it was replaced.
    pub(super) term: u64,
    /// The answer to send once committed.
    pub(super) response: ApiResponse,
}

impl Node {
    /// A data directory of a single node from before it ran a one-voter metadata quorum
    /// holds topics (catalog, logs, coordinator state) but no metadata log. Its topics are
    /// adopted as they are: once this node controls the quorum it records each with its
    /// id, name, configs and partitions, replicated on this node alone, leading at an
    /// epoch above any its logs hold (the old batches carry epoch 0). Only a fresh
    /// metadata log of a quorum of this node alone adopts: a cluster's topics come from its
    /// log, never from one node's disk.
    pub(in crate::node) fn plan_legacy_adoption(&mut self) {
        let node_id = self.config.node_id;
        // A data shard's storage never holds a metadata log: its topics are the image's.
        if self.is_data_shard() {
            return;
        }
        let cluster = &mut *self.cluster;
        let fresh_log = cluster.meta.stored_entries == (1, 0)
            && cluster.meta.raft.snapshot_index() == 0
            && cluster.meta.raft.term() == 0;
        let alone = cluster.meta.raft.voters().iter().eq([node_id].iter());
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
            cluster
                .controller
                .adopt
                .push(MetaRecord::CreateTopic(TopicImage {
                    name: topic.name.clone(),
                    id: topic.id.as_u128(),
                    configs: topic.config.overrides().into_iter().collect(),
                    partitions,
                }));
        }
        tracing::info!(
            topics = cluster.controller.adopt.len(),
            "single-node data directory without a metadata log: adopting its topics"
        );
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
    pub(super) fn on_heartbeat(&mut self, now: Now, from: i32, heartbeat: BrokerHeartbeat) {
        let node_id = self.config.node_id;
        let cluster = &mut *self.cluster;
        // Only the active controller answers with a fencing state: another node (or a
        // leader before its no-op applied) does not know the committed registrations, so
        // it says "fenced" and points at the leader it knows.
        if !cluster.meta.is_active_controller() {
            let reply = PeerMessage::HeartbeatReply {
                controller: cluster.meta.raft.leader(),
                fenced: true,
                refused: None,
            };
            if from == node_id {
                return;
            }
            self.send_peer(from, reply);
            return;
        }
        cluster.controller.heard_from(now.instant, from);
        // A fresh cluster finalizes its level before the first registration, which then
        // carries the node's range.
        let bootstrap = self.config.bootstrap_metadata_version;
        if bootstrap > 1 && cluster.meta.decision_image().is_fresh() {
            self.propose(Vec::new());
        }
        let cluster = &mut *self.cluster;
        // What the node's build supports: told in every heartbeat (none from a build
        // without levels), kept for nodes whose registration in the image carries none.
        match heartbeat.supported {
            Some(range) => cluster.controller.reported.insert(from, range),
            None => cluster.controller.reported.remove(&from),
        };
        let supported = heartbeat.supported.unwrap_or(VersionRange::LEGACY);
        let level = cluster.meta.decision_image().metadata_version();
        if !supported.contains(level) {
            // Registered, it could not follow the log (a build too old for the records
            // the cluster writes, or one that no longer reads them): refused, and told.
            let reason = format!(
                "UNSUPPORTED_VERSION: node {from} supports {METADATA_VERSION} {supported}, \
                 the cluster is at {level}"
            );
            tracing::error!(%reason, "registration refused");
            if from == node_id {
                self.poison(format!("registration refused: {reason}"));
            } else {
                let reply = PeerMessage::HeartbeatReply {
                    controller: Some(node_id),
                    fenced: true,
                    refused: Some(reason),
                };
                self.send_peer(from, reply);
            }
            return;
        }
        let registered = cluster.meta.decision_image().brokers.get(&from).cloned();
        let needs_registration = registered.as_ref().is_none_or(|b| {
            b.incarnation != heartbeat.incarnation
                || b.host != heartbeat.host
                || b.port != heartbeat.port
                || b.peer_addr != heartbeat.peer_addr
        });
        if needs_registration {
            let broker = crate::cluster::image::BrokerState {
                id: from,
                incarnation: heartbeat.incarnation,
                host: heartbeat.host.clone(),
                port: heartbeat.port,
                peer_addr: heartbeat.peer_addr.clone(),
                fenced: true,
                broker_role: heartbeat.broker_role,
            };
            // The range goes into the log once the level has a record for it, so that a
            // node that is down still blocks an upgrade it could not follow.
            let record = match heartbeat.supported {
                Some(supported) if level >= 2 => {
                    MetaRecord::RegisterBrokerVersioned { broker, supported }
                }
                _ => MetaRecord::RegisterBroker(broker),
            };
            let new_incarnation = registered
                .as_ref()
                .is_some_and(|b| b.incarnation != heartbeat.incarnation);
            let mut records = Vec::new();
            if new_incarnation || registered.as_ref().is_some_and(|b| !b.fenced) {
                records.extend(controller::fence_broker(
                    cluster.meta.decision_image(),
                    from,
                    cluster.config.unclean_leader_election,
                ));
            }
            records.push(record);
            if let Some(index) = self.propose(records) {
                self.cluster.controller.registered_at.insert(from, index);
            }
        } else if registered.as_ref().is_some_and(|b| b.fenced) {
            // Unfence once the broker applied the log up to its registration (a new
            // controller, which does not know that index, waits for its own no-op).
            let caught_up_to = cluster
                .controller
                .registered_at
                .get(&from)
                .copied()
                .or(cluster.meta.leader_start)
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
                        controller::elect_offline(self.cluster.meta.decision_image(), unclean);
                    if !elections.is_empty() {
                        self.propose(elections);
                    }
                }
            }
        }
        self.answer_heartbeat(now, from, heartbeat.incarnation);
    }

    /// The active controller's side of a controlled shutdown (a heartbeat with Kafka's
    /// `WantShutDown`): the registered, unfenced incarnation that asks is fenced at once
    /// (`controller::fence_broker`: every leadership it holds moves to another live ISR
    /// member at a new leader epoch, and it leaves every ISR it is not the last member
    /// of, all in one record batch), and it is never unfenced again: only a plain
    /// heartbeat unfences, and a shutting-down broker sends none. The answer is the
    /// committed fencing state, as for a heartbeat. An unknown or older incarnation is
    /// not registered (it is going away), only answered.
    ///
    /// A partition whose only live ISR member is the shutting-down broker is left without
    /// a leader from then, as when it is fenced after a crash; Kafka's KRaft controller
    /// does the same (the broker is the last ISR member, so only it can lead it again).
    pub(super) fn on_controlled_shutdown(
        &mut self,
        now: Now,
        from: i32,
        heartbeat: BrokerHeartbeat,
    ) {
        let node_id = self.config.node_id;
        let cluster = &mut *self.cluster;
        if !cluster.meta.is_active_controller() {
            let reply = PeerMessage::HeartbeatReply {
                controller: cluster.meta.raft.leader(),
                fenced: true,
                refused: None,
            };
            if from != node_id {
                self.send_peer(from, reply);
            }
            return;
        }
        cluster.controller.heard_from(now.instant, from);
        let image = cluster.meta.decision_image();
        let unfenced = (image.brokers.get(&from))
            .is_some_and(|b| b.incarnation == heartbeat.incarnation && !b.fenced);
        // With no other live broker there is nobody to hand anything to: fencing would
        // only take the partitions offline before the process exits (a single node just
        // flushes and exits; see `Node::controlled_shutdown_status`).
        let others_live = image.live_brokers().iter().any(|id| *id != from);
        if unfenced && others_live {
            let unclean = cluster.config.unclean_leader_election;
            let records = controller::fence_broker(image, from, unclean);
            tracing::info!(
                broker = from,
                changes = records.len() - 1,
                "controlled shutdown: fencing the broker and moving its leaderships"
            );
            self.propose(records);
        }
        self.answer_heartbeat(now, from, heartbeat.incarnation);
    }

    /// Answer a heartbeat (or a controlled shutdown's) from `from` with its committed
    /// fencing state; this node's own is applied directly.
    fn answer_heartbeat(&mut self, now: Now, from: i32, incarnation: u64) {
        let node_id = self.config.node_id;
        let cluster = &mut *self.cluster;
        // The answer is the committed state: a broker acts as unfenced only once the
        // unfence is part of the log every future controller continues from.
        let fenced = cluster
            .meta
            .image
            .brokers
            .get(&from)
            .is_none_or(|b| b.fenced || b.incarnation != incarnation);
        if from == node_id {
            cluster.broker.last_heartbeat_ok = Some(now.instant);
            cluster.broker.fenced = fenced;
            cluster.broker.controller_hint = Some(node_id);
        } else {
            let reply = PeerMessage::HeartbeatReply {
                controller: Some(node_id),
                fenced,
                refused: None,
            };
            self.send_peer(from, reply);
        }
    }

    /// The active controller's periodic work, decided on the decision image: fence every
    /// broker whose session expired (moving its leaderships), elect leaders for offline
    /// partitions that can get one, and (when due) move leadership back to preferred
    /// replicas. Proposals in flight are part of the decision image, so nothing is decided
    /// twice and nothing has to wait for the log to settle.
    pub(super) fn controller_checks(&mut self, now: Now) {
        let cluster = &mut *self.cluster;
        let suspect_due = cluster.controller.suspect_due(now.instant);
        if !cluster.meta.is_active_controller()
            || (now.instant < cluster.controller.next_controller_check && !suspect_due)
        {
            return;
        }
        cluster.controller.next_controller_check = now.instant.add_ms(CONTROLLER_CHECK_MS);
        if !cluster.controller.adopt.is_empty() {
            let records = cluster.controller.adopt.clone();
            if self.propose(records).is_some() {
                self.cluster.controller.adopt.clear();
            }
        }
        let cluster = &mut *self.cluster;
        let timeout = cluster.config.broker_session_timeout_ms;
        let unclean = cluster.config.unclean_leader_election;
        let brokers: Vec<(i32, bool)> = (cluster.meta.decision_image().brokers.values())
            .map(|b| (b.id, b.fenced))
            .collect();
        let expired = cluster.controller.expired(now.instant, &brokers, timeout);
        for broker in expired {
            tracing::warn!(broker, "broker session expired; fencing it");
            let cluster = &*self.cluster;
            let records = controller::fence_broker(cluster.meta.decision_image(), broker, unclean);
            if self.propose(records).is_none() {
                return;
            }
        }
        let cluster = &mut *self.cluster;
        let mut records = controller::elect_offline(cluster.meta.decision_image(), unclean);
        if records.is_empty()
            && cluster.config.auto_leader_rebalance
            && now.instant >= cluster.controller.next_rebalance
        {
            cluster.controller.next_rebalance = now
                .instant
                .add_ms(cluster.config.leader_imbalance_check_interval_ms);
            records.extend(controller::preferred_elections(
                cluster.meta.decision_image(),
                None,
            ));
        }
        if !records.is_empty() {
            self.propose(records);
        }
    }

    pub(super) fn on_auto_create(&mut self, names: Vec<String>) {
        let cluster = &*self.cluster;
        if !cluster.meta.is_active_controller() {
            return;
        }
        // Internal topics get Kafka's replication factor 3, or as many as the cluster has
        // brokers (registered ones, or voters for those not registered yet), and are created
        // only once that many are live: created while a broker is still starting, they would
        // stay under-replicated for good (Kafka refuses to create them under-replicated too).
        let image = cluster.meta.decision_image();
        let (internal_rf, live) = internal_topic_placement(image, cluster.meta.raft.voters().len());
        for name in names {
            let internal_partitions = match name.as_str() {
                crate::group::offsets_log::OFFSETS_TOPIC => Some((
                    self.config.offsets_topic_num_partitions,
                    self.config.offsets_topic_segment_bytes,
                )),
                crate::txn_log::TXN_STATE_TOPIC => Some((
                    self.config.transaction_state_log_num_partitions,
                    self.config.transaction_state_log_segment_bytes,
                )),
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
                // there are), compacted, never expiring by time or size.
                Some((partitions, segment_bytes)) => weir_wire::domain::CreatableTopic {
                    name: name.clone(),
                    num_partitions: partitions,
                    replication_factor: internal_rf as i16,
                    assignments: Vec::new(),
                    configs: vec![
                        ("cleanup.policy".into(), Some("compact".into())),
                        ("segment.bytes".into(), Some(segment_bytes.to_string())),
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
    pub(in crate::node) fn plan_create_topic(
        &self,
        topic: &weir_wire::domain::CreatableTopic,
    ) -> Result<MetaRecord, (ErrorCode, String)> {
        let spec = self.validate_creatable(topic)?;
        let cluster = &*self.cluster;
        if cluster
            .meta
            .decision_image()
            .names
            .contains_key(&topic.name)
        {
            return Err((
                ErrorCode::TOPIC_ALREADY_EXISTS,
                format!("Topic '{}' already exists.", topic.name),
            ));
        }
        let assignments = if topic.assignments.is_empty() {
            let start = cluster.meta.decision_image().topics.len() + topic.name.len();
            controller::place_replicas(
                cluster.meta.decision_image(),
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
            cluster.meta.raft.last_index() ^ (cluster.meta.raft.term() << 40),
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
    pub(in crate::node) fn respond_after_index(
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
    pub(in crate::node) fn respond_when_applied(
        &mut self,
        id: RequestId,
        index: u64,
        response: ApiResponse,
    ) {
        let cluster = &mut *self.cluster;
        if cluster.meta.image.applied_index >= index {
            self.respond(id, response);
            return;
        }
        // The entry this answer waits for is the one now at `index` in this node's log.
        // Its term is what tells, at apply time, whether it survived a change of leader.
        let term = (cluster.meta.raft.entry(index)).map_or(cluster.meta.raft.term(), |e| e.term);
        debug_assert!(index > cluster.meta.image.applied_index);
        let waiter = CommitWaiter {
            index,
            term,
            response,
        };
        if let Err(waiter) = cluster.controller.commit_waiters.insert(id, None, waiter) {
            let message = "too many requests waiting for their metadata to commit; retry";
            let response = crate::node::errors::with_error(
                waiter.response,
                ErrorCode::REQUEST_TIMED_OUT,
                message,
            );
            self.respond(id, response);
        }
    }

    /// Answer the commit waiters whose entries this node has applied: as planned when the
    /// applied entry is the one they waited for, in error form when a new leader replaced
    /// it. Runs after every apply, before compaction can drop the entries.
    pub(in crate::node) fn answer_commit_waiters(&mut self) {
        let cluster = &mut *self.cluster;
        let applied = cluster.meta.image.applied_index;
        let due: Vec<RequestId> = (cluster.controller.commit_waiters.iter())
            .filter(|(_, waiter)| waiter.index <= applied)
            .map(|(id, _)| *id)
            .collect();
        let mut answers = Vec::with_capacity(due.len());
        for id in due {
            let Some(waiter) = cluster.controller.commit_waiters.remove(id) else {
                continue;
            };
            // Compacted entries were committed (compaction runs after this, over applied
            // entries only).
            let committed = match cluster.meta.raft.entry(waiter.index) {
                Some(entry) => entry.term == waiter.term,
                None => waiter.index <= cluster.meta.raft.snapshot_index(),
            };
            let response = if committed {
                waiter.response
            } else {
                let message = "the controller changed before the change committed; retry";
                crate::node::errors::with_error(waiter.response, ErrorCode::NOT_CONTROLLER, message)
            };
            answers.push((id, response));
        }
        debug_assert!(
            (cluster.controller.commit_waiters.iter()).all(|(_, w)| w.index > applied),
            "a commit waiter left behind its applied entry"
        );
        // What applying the records wrote here (a created topic's partitions, say) is
        // durable before the answer, as a single node's admin answers always were.
        for (id, response) in answers {
            if crate::node::errors::may_wait_for_sync(&response) {
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
    pub(super) fn on_alter_isr(&mut self, from: i32, request: AlterIsr) {
        let cluster = &*self.cluster;
        if !cluster.meta.is_active_controller() {
            return;
        }
        if let Some(record) = controller::alter_isr(cluster.meta.decision_image(), from, &request) {
            self.propose(vec![record]);
        }
    }

    /// The controller side of a leader's upload report (tiered storage).
    /// `controller::remote_segment_uploaded` refuses one from a broker that does not lead
    /// at the quoted epoch, one that does not continue the remote log, and one already
    /// held (a resend after the record committed, or while it is still in flight: the
    /// decision image holds it then), so a report is proposed at most once per controller
    /// term and a late one never lands after a newer leader's segments. There is no
    /// answer: the leader learns the outcome from its image (see `remote.rs`).
    pub(super) fn on_remote_segment_uploaded(&mut self, from: i32, request: RemoteSegmentUploaded) {
        let cluster = &*self.cluster;
        if !cluster.meta.is_active_controller() {
            return;
        }
        let image = cluster.meta.decision_image();
        if let Some(record) = controller::remote_segment_uploaded(image, from, &request) {
            self.propose(vec![record]);
        }
    }

    /// The controller side of a leader's remote retention (`controller::
    /// remote_segments_expired` decides on the decision image, so a repeat while the first
    /// is still committing is dropped).
    pub(in crate::node) fn on_remote_segments_expired(
        &mut self,
        from: i32,
        request: RemoteSegmentsExpired,
    ) {
        let cluster = &*self.cluster;
        if !cluster.meta.is_active_controller() {
            return;
        }
        let image = cluster.meta.decision_image();
        if let Some(record) = controller::remote_segments_expired(image, from, &request) {
            self.propose(vec![record]);
        }
    }
}

/// The replication factor an internal topic is created with on `image` (Kafka's 3, or as
/// many brokers as the cluster has: registered ones, or `voters` for those not registered
/// yet) and the live brokers there are: the controller creates one only when `live >= rf`,
/// and a broker does not hold a coordinator request for one that cannot be created now.
pub(in crate::node) fn internal_topic_placement(
    image: &crate::cluster::image::MetadataImage,
    voters: usize,
) -> (usize, usize) {
    let known = image.brokers.len().max(voters);
    let internal_rf = known.clamp(1, INTERNAL_TOPIC_RF_MAX);
    debug_assert!((1..=INTERNAL_TOPIC_RF_MAX).contains(&internal_rf));
    (internal_rf, image.live_brokers().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    // Goal: a silent broker is fenced after a session, a heartbeat restarts its session,
    // and fenced brokers are not fenced again.
    #[test]
    fn sessions_expire_unless_heard_from() {
        let mut controller = ControllerState::new(at(0), 16);
        controller.take_over(at(0), &[1, 2, 3], 1, 2_000);
        controller.heard_from(at(1_000), 2);
        controller.heard_from(at(1_000), 3);
        controller.heard_from(at(9_000), 2);
        let brokers = [(1, false), (2, false), (3, false), (4, true)];
        // 3 was last heard at 1 s: silent 9 s > 8 s; 2 at 9 s; 4 is fenced already; 1 is
        // this controller, heard from at take-over.
        assert_eq!(controller.expired(at(10_000), &brokers, 8_000), vec![1, 3]);
        controller.heard_from(at(10_000), 1);
        assert_eq!(controller.expired(at(10_000), &brokers, 8_000), vec![3]);
        controller.invariants(1, 0, true);
    }

    // Goal: after a take-over, a broker not heard from within the grace is fenced well
    // before its session ends, and one whose connection closed before the take-over is
    // suspected from the close, not from the take-over (failover after a controller crash
    // is not held up by a grace period for the dead node).
    #[test]
    fn a_new_controller_suspects_the_silent_and_the_closed() {
        let mut controller = ControllerState::new(at(0), 16);
        controller.peer_closed(at(100), 3, false);
        assert!(
            controller.suspects.is_empty(),
            "not active: only remembered"
        );
        controller.take_over(at(1_000), &[1, 2, 3], 1, 2_000);
        assert_eq!(
            controller.next_suspect_deadline(),
            Some(at(100).add_ms(PEER_CLOSED_GRACE_MS))
        );
        assert!(!controller.suspects.contains_key(&1), "never itself");
        let brokers = [(1, false), (2, false), (3, false)];
        let session = 60_000;
        assert!(!controller.suspect_due(at(849)));
        assert!(controller.suspect_due(at(850)));
        assert!(controller.suspect_due(at(1_000)));
        assert_eq!(controller.expired(at(1_000), &brokers, session), vec![3]);
        // 2 heartbeats before its grace ends: no longer suspected.
        controller.heard_from(at(2_500), 2);
        assert!(controller.expired(at(3_100), &brokers, session).is_empty());
        assert_eq!(
            controller.next_suspect_deadline(),
            None,
            "spent deadlines are dropped"
        );
        controller.invariants(1, 0, true);
    }

    // Goal: an active controller fences a live broker whose connection closed after the
    // grace unless it heartbeats first; a message from the peer forgets the close.
    #[test]
    fn a_closed_connection_is_fenced_after_the_grace() {
        let mut controller = ControllerState::new(at(0), 16);
        controller.take_over(at(0), &[1, 2], 1, 2_000);
        controller.heard_from(at(0), 2);
        controller.peer_closed(at(5_000), 2, true);
        let brokers = [(1, false), (2, false)];
        let grace_end = at(5_000).add_ms(PEER_CLOSED_GRACE_MS);
        assert!(controller.expired(at(5_001), &brokers, 60_000).is_empty());
        assert_eq!(controller.expired(grace_end, &brokers, 60_000), vec![2]);
        controller.peer_alive(2);
        assert!(controller.closed_peers.is_empty());
        controller.invariants(1, 0, true);
    }
}
