//! The controller: broker registration and sessions, fencing, leader election, topic
//! creation, ISR changes; its answers wait for their records to commit.

use std::collections::BTreeMap;

use weir_wire::domain::ApiResponse;
use weir_wire::error::ErrorCode;

use crate::cluster::controller;
use crate::cluster::image::{MetaRecord, TopicImage};
use crate::cluster::peer::{AlterIsr, BrokerHeartbeat, PeerMessage};
use crate::event::RequestId;
use crate::node::Node;
use crate::purgatory::Purgatory;
use crate::time::{Instant, Now};

use super::{CONTROLLER_CHECK_MS, INTERNAL_TOPIC_RF_MAX};

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
    /// Answers waiting for the metadata records their requests proposed to commit (admin
    /// requests, and AddRaftVoter/RemoveRaftVoter answers waiting for their voter-set
    /// entry, see [`crate::node::quorum`]), by request.
    // Invariant: every waiter's index is above the applied index (`answer_commit_waiters`
    // runs after every apply), so none is forgotten once its entry applied.
    pub(in crate::node) commit_waiters: Purgatory<CommitWaiter>,
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
            };
            if from == node_id {
                return;
            }
            self.send_peer(from, reply);
            return;
        }
        cluster.controller.sessions.insert(from, now.instant);
        cluster.controller.suspects.remove(&from);
        let registered = cluster.meta.decision_image().brokers.get(&from).cloned();
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
        let cluster = &mut *self.cluster;
        // The answer is the committed state: a broker acts as unfenced only once the
        // unfence is part of the log every future controller continues from.
        let fenced = cluster
            .meta
            .image
            .brokers
            .get(&from)
            .is_none_or(|b| b.fenced || b.incarnation != heartbeat.incarnation);
        if from == node_id {
            cluster.broker.last_heartbeat_ok = Some(now.instant);
            cluster.broker.fenced = fenced;
            cluster.broker.controller_hint = Some(node_id);
        } else {
            let reply = PeerMessage::HeartbeatReply {
                controller: Some(node_id),
                fenced,
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
        let suspect_due = cluster
            .controller
            .suspects
            .values()
            .any(|at| now.instant >= *at);
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
        // A due suspect is fenced below (or already is): its deadline is spent either way,
        // and a spent deadline left in place would wake the node loop forever.
        let due_suspects: Vec<i32> = cluster
            .controller
            .suspects
            .iter()
            .filter(|(_, at)| now.instant >= **at)
            .map(|(id, _)| *id)
            .collect();
        cluster
            .controller
            .suspects
            .retain(|_, at| now.instant < *at);
        debug_assert!(due_suspects
            .iter()
            .all(|id| !cluster.controller.suspects.contains_key(id)));
        let timeout = cluster.config.broker_session_timeout_ms;
        let unclean = cluster.config.unclean_leader_election;
        // A broker this controller has not heard from yet gets one session from now (its
        // image may have been empty when it took over): it must still expire.
        let known: Vec<i32> = cluster
            .meta
            .decision_image()
            .brokers
            .keys()
            .copied()
            .collect();
        for id in known {
            cluster.controller.sessions.entry(id).or_insert(now.instant);
        }
        let expired: Vec<i32> = cluster
            .meta
            .decision_image()
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .filter(|b| {
                let last = cluster
                    .controller
                    .sessions
                    .get(&b.id)
                    .copied()
                    .unwrap_or(now.instant);
                let silent = now.instant.saturating_duration_since(last).as_millis() as u64;
                silent > timeout || due_suspects.contains(&b.id)
            })
            .map(|b| b.id)
            .collect();
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
        let known = image.brokers.len().max(cluster.meta.raft.voters().len());
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
}
