//! The metadata quorum: the driver of Raft (storage writes before messages, committed
//! entries applied to the image) and what applying a record does on this node.
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

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use uuid::Uuid;

use crate::cluster::features;
use crate::cluster::image::{ImageChange, MetaRecord, MetadataImage};
use crate::cluster::peer::PeerMessage;
use crate::node::Node;
use crate::raft::{Entry, ProposeError, Raft, RaftMessage, Snapshot, Write};
use crate::storage::StorageOp;
use crate::time::{Instant, Now};
use crate::topic::PartitionId;
use crate::topic_config::TopicConfig;

use super::{
    raft_entry_key, Replica, NEW_CONTROLLER_GRACE_HEARTBEATS, PEER_CLOSED_GRACE_MS,
    RAFT_HARD_STATE_KEY, RAFT_PENDING_MAX, RAFT_SNAPSHOT_KEY, SNAPSHOT_EVERY_ENTRIES,
};

/// A Raft ready whose writes wait for sync `sync_id`.
// Its messages may be votes or append acknowledgements that promise those writes are
// durable; its committed entries may have been appended by the same Ready. Both leave
// only after the sync (see the module doc).
#[derive(Debug)]
pub(super) struct RaftPending {
    pub(super) sync_id: u64,
    pub(super) messages: Vec<(i32, RaftMessage)>,
    pub(super) snapshot: Option<Snapshot>,
    pub(super) committed: Vec<Entry>,
}

/// The metadata quorum: Raft, its driver's bookkeeping, and the image the committed log
/// builds (see the module doc, "Metadata quorum" and "Controller and the decision image").
#[derive(Debug)]
pub(in crate::node) struct MetaQuorum {
    pub(in crate::node) raft: Raft,
    pub image: MetadataImage,
    /// The active controller's decision image: `image` plus every record this controller
    /// proposed that has not applied yet (Kafka's QuorumController decides on the same
    /// "uncommitted" state). Two decisions in one commit window must see each other: the
    /// second would otherwise carry a stale partition epoch and be dropped at apply time.
    /// Created at the first proposal of a term, dropped when Raft leadership is lost (the
    /// uncommitted tail may then be truncated).
    pub(super) view: Option<MetadataImage>,
    /// Readies waiting for their syncs, in sync order.
    pub(super) raft_pending: VecDeque<RaftPending>,
    /// Index range of raft entries in storage (first, last); (1, 0) when none.
    pub(super) stored_entries: (u64, u64),
    /// The image applied the quorum's commit index as it was after start: until then it
    /// may be stale, and no partition role is taken from it.
    pub caught_up: bool,
    /// The index of our no-op when we became Raft leader: the controller acts once its
    /// image applied it.
    pub(super) leader_start: Option<u64>,
    /// Brokers this node saw go from unfenced to fenced, and when (this node's clock):
    /// Metadata keeps listing them for a session (see `Node::metadata_brokers`).
    pub(in crate::node) fenced_at: BTreeMap<i32, Instant>,
    /// A data shard: the active controller as shard 0 last fed it (a data shard's own
    /// Raft never hears of one). Always `None` on shard 0.
    pub(in crate::node) fed_controller: Option<i32>,
}

impl MetaQuorum {
    /// The quorum's own bookkeeping. `completed_sync` is the largest sync completed;
    /// `storage_ok` false after a storage failure (nothing completes any more).
    pub(super) fn invariants(&self, completed_sync: u64, storage_ok: bool) {
        self.raft.invariants();
        self.image.invariants();
        assert!(
            self.raft_pending.len() <= RAFT_PENDING_MAX,
            "raft readies pile up"
        );
        // Raft readies wait in sync order (`cluster_on_synced` releases a prefix), and
        // each waits for a sync that has not completed yet: one left behind a completed
        // sync would hold its messages and committed entries forever.
        assert!(
            (self
                .raft_pending
                .iter()
                .zip(self.raft_pending.iter().skip(1)))
            .all(|(a, b)| a.sync_id <= b.sync_id),
            "raft readies out of sync order"
        );
        if storage_ok {
            assert!(
                (self.raft_pending.front()).is_none_or(|p| p.sync_id > completed_sync),
                "a raft ready waits for a sync that already completed"
            );
        }
        let (first, last) = self.stored_entries;
        assert!(
            first >= 1 && last + 1 >= first,
            "stored raft entries ({first}, {last})"
        );
        // The decision image exists only on the Raft leader: another node's uncommitted
        // tail may be truncated, and deciding on it would repeat issue 12.
        assert!(
            self.view.is_none() || self.raft.is_leader(),
            "a decision image kept after losing Raft leadership"
        );
    }

    /// The active controller: the Raft leader once it applied its own no-op.
    // Before the no-op applies, the image may lack committed records of earlier terms:
    // deciding then could fence a live broker or elect a stale leader.
    pub(in crate::node) fn is_active_controller(&self) -> bool {
        self.raft.is_leader()
            && self
                .leader_start
                .is_some_and(|start| self.image.applied_index >= start)
    }

    /// The image controller decisions are made against: the applied image plus this
    /// controller's own proposals still in flight (see [`MetaQuorum::view`]).
    pub(in crate::node) fn decision_image(&self) -> &MetadataImage {
        // PLANTED BUG (weir-sim's planted suite only): decide on the applied image alone,
        // so two decisions in one commit window collide (issue 12's acknowledged-write
        // loss; the broker-side guards in `update_role` are off with it).
        if crate::planted::on(crate::planted::Bug::StaleDecisions) {
            return &self.image;
        }
        self.view.as_ref().unwrap_or(&self.image)
    }

    /// The Raft leader, as far as this node knows. Not necessarily the *active*
    /// controller (see [`MetaQuorum::is_active_controller`]): requests sent there may be
    /// refused for a while after an election, and are then retried.
    pub(in crate::node) fn controller(&self) -> Option<i32> {
        self.raft.leader().or(self.fed_controller)
    }

    /// Before the active controller's first proposal of a term (a record or a voter-set
    /// change): nothing of ours is pending, so the applied image is the whole truth and
    /// becomes the decision image.
    pub(in crate::node) fn start_decisions(&mut self) {
        if self.view.is_none() {
            assert_eq!(
                self.raft.last_index(),
                self.image.applied_index,
                "a controller's first proposal must follow a fully applied log"
            );
            self.view = Some(self.image.clone());
        }
    }

    /// The record a fresh cluster's controller finalizes its `metadata.version` with
    /// before anything else, `None` when the decision image is not fresh or `level` is 1
    /// (which needs no record).
    pub(in crate::node) fn bootstrap_record(&self, level: u16) -> Option<MetaRecord> {
        let fresh = self.view.as_ref().is_some_and(MetadataImage::is_fresh);
        (fresh && level > features::METADATA_VERSION_LEGACY).then(|| {
            tracing::info!(level, "fresh cluster: finalizing metadata.version");
            MetaRecord::FeatureLevel {
                name: features::METADATA_VERSION.to_string(),
                level,
            }
        })
    }

    /// True when this node is the whole quorum (the only voter, and its leader): a
    /// heartbeat to the controller is a call to itself. Prompt heartbeats there cost
    /// nothing; in a larger quorum brokers keep the heartbeat interval. (Prompt heartbeats
    /// in every cluster also spread a majority crash's re-registrations over more commit
    /// windows, which hid issue 12's stale-decision bug from the planted-bug search.)
    pub(in crate::node) fn alone(&self, node_id: i32) -> bool {
        self.raft.leader() == Some(node_id) && self.raft.voters().iter().eq([node_id].iter())
    }
}

impl Node {
    /// After any input: drain Raft, emit its writes, release what durable syncs allow.
    ///
    /// Also the place where this node notices it became (or stopped being) the Raft
    /// leader: a new controller resets sessions and suspects, and drops any decision
    /// image. It loops because releasing a Ready (applying entries) can produce another.
    pub(in crate::node) fn drive_cluster(&mut self, now: Now) {
        // A data shard's Raft is never stepped or ticked: it has nothing to drive.
        if self.is_data_shard() {
            return;
        }
        loop {
            let cluster = &mut *self.cluster;
            let was_leader = cluster.meta.leader_start.is_some();
            let is_leader = cluster.meta.raft.is_leader();
            if is_leader && !was_leader {
                cluster.meta.leader_start = Some(cluster.meta.raft.last_index());
                cluster.meta.view = None;
                // Every registered broker gets a full session from the new controller, but
                // one that does not find it within a few heartbeats (voters hear of it from
                // Raft, others from any voter's answer) is fenced well before that.
                let brokers: Vec<i32> = cluster.meta.image.brokers.keys().copied().collect();
                let grace = cluster
                    .config
                    .broker_heartbeat_interval_ms
                    .saturating_mul(NEW_CONTROLLER_GRACE_HEARTBEATS)
                    .max(PEER_CLOSED_GRACE_MS);
                let node_id = self.config.node_id;
                (cluster.controller).take_over(now.instant, &brokers, node_id, grace);
                // Every registered broker outside the voter set in force (which changes at
                // run time, KIP-853) follows the metadata log as a learner; `add_learner`
                // ignores voters.
                for broker in brokers {
                    cluster.meta.raft.add_learner(broker);
                }
            } else if !is_leader && was_leader {
                cluster.meta.leader_start = None;
            }
            if !is_leader {
                // Our uncommitted proposals may be truncated by the next leader.
                cluster.meta.view = None;
            }
            if !cluster.meta.raft.has_ready() {
                break;
            }
            let ready = cluster.meta.raft.ready();
            let wrote = !ready.writes.is_empty();
            for write in ready.writes {
                self.emit_raft_write(write);
            }
            let cluster = &mut *self.cluster;
            let sync_id = if wrote {
                Some(self.sync.next_id)
            } else {
                cluster.meta.raft_pending.back().map(|p| p.sync_id)
            };
            // A Ready that wrote waits for the next sync (which covers its writes); one that
            // did not still queues behind the last pending Ready, whose unsynced entries its
            // messages may acknowledge. Only with nothing pending is it released at once.
            match sync_id {
                Some(sync_id) => {
                    assert!(
                        cluster.meta.raft_pending.len() < RAFT_PENDING_MAX,
                        "raft readies pile up"
                    );
                    // Sync ids only grow, so the queue stays in release order.
                    assert!(
                        (cluster.meta.raft_pending.back()).is_none_or(|p| p.sync_id <= sync_id),
                        "raft ready queued out of sync order"
                    );
                    cluster.meta.raft_pending.push_back(RaftPending {
                        sync_id,
                        messages: ready.messages,
                        snapshot: ready.snapshot,
                        committed: ready.committed,
                    });
                }
                None => self.release_raft(now, ready.messages, ready.snapshot, ready.committed),
            }
        }
        self.note_shutdown_fence();
    }

    /// Turn one Raft storage write into meta ops, keeping `stored_entries` (the index range
    /// of entry keys in storage) in step so that truncation and compaction delete exactly
    /// the keys that exist. The ops are only emitted here; they become durable with the
    /// next sync, which is what `drive_cluster` makes the Ready wait for.
    pub(super) fn emit_raft_write(&mut self, write: Write) {
        let cluster = &mut *self.cluster;
        let mut ops = Vec::new();
        match write {
            Write::HardState { term, voted_for } => ops.push(StorageOp::PutMeta {
                key: RAFT_HARD_STATE_KEY.to_vec(),
                value: postcard::to_allocvec(&(term, voted_for)).unwrap_or_default(),
            }),
            Write::TruncateFrom { index } => {
                let (first, last) = cluster.meta.stored_entries;
                for i in index.max(first)..=last {
                    ops.push(StorageOp::DeleteMeta {
                        key: raft_entry_key(i),
                    });
                }
                if index <= last {
                    cluster.meta.stored_entries.1 = index.saturating_sub(1).max(first - 1);
                }
            }
            Write::Append(entries) => {
                // Raft appends densely at its log end (it truncates a conflicting suffix
                // first), so each entry extends the stored range by one.
                for entry in entries {
                    let (first, last) = cluster.meta.stored_entries;
                    debug_assert!(
                        last < first || entry.index > first,
                        "raft entry {} appended below the stored range ({first}, {last})",
                        entry.index
                    );
                    if last < first {
                        cluster.meta.stored_entries = (entry.index, entry.index);
                    } else {
                        cluster.meta.stored_entries.1 = entry.index;
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
                let (first, last) = cluster.meta.stored_entries;
                let upto = snapshot.last_index.min(last);
                for i in first..=upto {
                    ops.push(StorageOp::DeleteMeta {
                        key: raft_entry_key(i),
                    });
                }
                if snapshot.last_index >= last {
                    cluster.meta.stored_entries = (snapshot.last_index + 1, snapshot.last_index);
                } else if upto >= first {
                    cluster.meta.stored_entries.0 = upto + 1;
                }
            }
        }
        let (first, last) = self.cluster.meta.stored_entries;
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
    pub(in crate::node) fn cluster_on_synced(
        &mut self,
        now: Now,
        sync_id: u64,
        advanced: &BTreeSet<PartitionId>,
    ) {
        assert!(
            sync_id <= self.sync.completed,
            "raft readies released by sync {sync_id} before it completed"
        );
        loop {
            let cluster = &mut *self.cluster;
            let due = cluster
                .meta
                .raft_pending
                .front()
                .is_some_and(|p| p.sync_id <= sync_id);
            if !due {
                break;
            }
            let Some(pending) = cluster.meta.raft_pending.pop_front() else {
                break;
            };
            self.release_raft(now, pending.messages, pending.snapshot, pending.committed);
        }
        // Whatever is left waits for a later sync (the queue is in sync order).
        debug_assert!(
            (self.cluster.meta.raft_pending.iter()).all(|p| p.sync_id > sync_id),
            "a ready covered by sync {sync_id} left pending"
        );
        // Followers waiting for their appends to be durable fetch again now (the front of
        // the sync waits, in sync order).
        let ready: Vec<PartitionId> = (self.cluster.replication.sync_waits.iter())
            .take_while(|(waits_for, _)| *waits_for <= sync_id)
            .map(|(_, key)| *key)
            .collect();
        for key in ready {
            if let Some(Replica::Follower(f)) = self.cluster.replication.replicas.get_mut(&key) {
                f.fetch_after_sync = None;
                f.not_before = now.instant;
            }
            self.cluster.replication.retime(key);
            self.send_follower_request(now, key);
        }
        // The leader's own durable end moved for `advanced`: their high watermarks may
        // too. Nothing else moves at a sync (a leader's HW rises only with its durable
        // end, its ISR or a follower's progress, and the last two recompute where they
        // change), so the rest are not visited.
        for &key in advanced {
            self.recompute_hw(key);
        }
        self.release_hw_waiters();
        self.drive_cluster(now);
    }

    /// Release a Ready whose writes are durable: send its messages, install its snapshot
    /// into the image, apply its committed entries. Order matters: the snapshot replaces
    /// the image before the entries that follow it apply.
    pub(in crate::node) fn release_raft(
        &mut self,
        now: Now,
        messages: Vec<(i32, RaftMessage)>,
        snapshot: Option<Snapshot>,
        committed: Vec<Entry>,
    ) {
        // Shard 0 of several keeps what it applies for its data shards (`node/shard.rs`).
        self.keep_for_feed(snapshot.as_ref(), &committed);
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
                Ok(image) if !self.follows(image.metadata_version()) => {
                    let level = image.metadata_version();
                    self.poison(features::unsupported_here(level));
                    return;
                }
                Ok(mut image) => {
                    // A snapshot replaces the whole image. Roles, local topics and waiters
                    // are reconciled with it below: topics it lacks are deleted here (and
                    // their acks=all waiters failed), the others materialized and re-roled.
                    image.applied_index = snapshot.last_index;

                    let cluster = &mut *self.cluster;
                    let old = std::mem::replace(&mut cluster.meta.image, image);
                    let gone: Vec<u128> = old
                        .topics
                        .keys()
                        .copied()
                        .filter(|id| !cluster.meta.image.topics.contains_key(id))
                        .collect();
                    let present: Vec<u128> = cluster.meta.image.topics.keys().copied().collect();
                    for id in gone {
                        let uuid = Uuid::from_u128(id);
                        if self.topics.contains_key(&uuid) {
                            self.delete_topic(uuid);
                        }
                        self.cluster.replication.remove_topic(uuid);
                        self.fail_hw_waiters_of(uuid, None);
                    }
                    for id in present {
                        self.materialize_with_roles(now, id);
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
                self.cluster.meta.image.applied_index =
                    self.cluster.meta.image.applied_index.max(entry.index);
                continue;
            }
            match MetaRecord::decode(&entry.data) {
                Ok(MetaRecord::FeatureLevel { name, level })
                    if name == features::METADATA_VERSION && !self.follows(level) =>
                {
                    self.poison(features::unsupported_here(level));
                    return;
                }
                Ok(record) => self.apply_record(now, entry.index, record),
                Err(error) => {
                    // Skipping it would leave this node with an image no other node has
                    // (a newer build's record kind, written before the cluster's
                    // metadata.version allowed it, or a corrupt entry): stop instead.
                    let level = self.cluster.meta.image.metadata_version();
                    let range = self.cluster.config.supported_metadata_versions;
                    self.poison(format!(
                        "metadata entry {} undecodable ({error}); the cluster is at \
                         metadata.version {level}, this node supports {range}: a record \
                         of a newer build?",
                        entry.index
                    ));
                    return;
                }
            }
        }
        self.after_apply(now);
    }

    /// True when this node can follow a log finalized at `level`.
    fn follows(&self, level: u16) -> bool {
        self.cluster
            .config
            .supported_metadata_versions
            .contains(level)
    }

    /// Apply one committed metadata record to the image and react.
    pub(super) fn apply_record(&mut self, now: Now, index: u64, record: MetaRecord) {
        let cluster = &mut *self.cluster;
        // Committed entries apply once each, in index order (a snapshot install drops
        // the ones it covers).
        assert!(
            index > cluster.meta.image.applied_index,
            "metadata entry {index} applied again (applied {})",
            cluster.meta.image.applied_index
        );
        let mut own_registration = false;
        // A change of this broker's own registration or fencing in a quorum of one: it
        // heartbeats at once (a call to itself) rather than at the next interval, so it
        // takes the next step (unfence) and learns it is unfenced without waiting a
        // heartbeat interval each, and serves a few syncs after start. Brokers of a larger
        // quorum keep the interval, as Kafka's do (see `MetaQuorum::alone`).
        let own_state = match &record {
            MetaRecord::RegisterBroker(broker)
            | MetaRecord::RegisterBrokerVersioned { broker, .. } => {
                broker.id == self.config.node_id
            }
            MetaRecord::SetFenced { id, .. } => *id == self.config.node_id,
            _ => false,
        };
        if own_state && cluster.meta.alone(self.config.node_id) {
            cluster.broker.next_heartbeat = cluster.broker.next_heartbeat.min(now.instant);
        }
        if let Some(broker) = record.registered_broker() {
            // A broker outside the voter set in force follows as a learner (`add_learner`
            // ignores voters, and the set may have changed since the static config).
            if cluster.meta.raft.is_leader() {
                cluster.meta.raft.add_learner(broker.id);
            }
            own_registration = broker.id == self.config.node_id
                && broker.incarnation == cluster.broker.incarnation
                && cluster.meta.caught_up;
        }
        // When a broker is fenced (a controlled shutdown, or a session lost), and forget it
        // once it registers again or is unfenced.
        match &record {
            MetaRecord::SetFenced { id, fenced: true } => {
                let image = &cluster.meta.image;
                if (image.brokers.get(id)).is_some_and(|b| !b.fenced && b.broker_role) {
                    cluster.meta.fenced_at.insert(*id, now.instant);
                }
            }
            MetaRecord::SetFenced { id, fenced: false } => {
                cluster.meta.fenced_at.remove(id);
            }
            _ => {
                if let Some(broker) = record.registered_broker() {
                    cluster.meta.fenced_at.remove(&broker.id);
                }
            }
        }
        let change = cluster.meta.image.apply(index, record);
        // The roles below react to the applied image only: the decision image may run
        // ahead, but a broker acts on what is committed.
        if own_registration {
            // Leader roles wait for this incarnation's registration (see `update_role`).
            self.update_all_roles(now);
        }
        match change {
            ImageChange::None => {}
            ImageChange::FeaturesChanged => {
                let level = self.cluster.meta.image.metadata_version();
                tracing::info!(level, "metadata.version finalized");
            }
            ImageChange::TopicCreated(id) | ImageChange::PartitionsAdded(id) => {
                self.materialize_with_roles(now, id);
            }

            ImageChange::TopicDeleted { topic, remote } => {
                let id = Uuid::from_u128(topic.id);
                // The remote objects go with the topic: the controller sweeps its directory
                // (an upload in flight elsewhere deletes its own object on completion).
                let tiered = (self.topics.get(&id)).is_some_and(|t| self.tiered(t));
                if !remote.is_empty() || tiered {
                    let partitions = remote.len();
                    let name = &topic.name;
                    tracing::info!(%name, partitions, "tiered topic deleted");
                    self.on_tiered_topic_deleted(name, topic.id);
                }
                if self.topics.contains_key(&id) {
                    self.delete_topic(id);
                    self.wake_fetches(|_| true);
                }
                self.cluster.replication.remove_topic(id);
                self.fail_hw_waiters_of(id, None);
            }
            ImageChange::ConfigChanged(id) => {
                let uuid = Uuid::from_u128(id);
                let configs = self
                    .cluster
                    .meta
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
            ImageChange::PartitionChanged(id) => self.update_role(now, id),
            // A leader's pending report is settled in `after_apply`; the objects of
            // segments remote retention dropped are deleted by the leader.
            ImageChange::RemoteChanged { partition, removed } => {
                tracing::debug!(%partition, removed = removed.len(), "remote log changed");
                self.on_remote_segments_removed(partition, &removed);
            }
        }
    }

    /// Materialize image topic `id` here and bring this node's role for each of its
    /// partitions in line with the image.
    fn materialize_with_roles(&mut self, now: Now, id: u128) {
        self.materialize_topic(id);
        let count = (self.cluster.meta.image.topics.get(&id)).map_or(0, |t| t.partitions.len());
        for index in 0..count {
            self.update_role(now, PartitionId::new(Uuid::from_u128(id), index));
        }
    }

    /// Create (or grow) the local catalog entry of an image topic. The image is the
    /// truth: the local catalog only follows it (a partition count never shrinks, and a
    /// local topic of the same name but another id is a deleted predecessor).
    pub(super) fn materialize_topic(&mut self, id: u128) {
        let Some(topic) = self.cluster.meta.image.topics.get(&id).cloned() else {
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
    pub(super) fn after_apply(&mut self, now: Now) {
        let cluster = &mut *self.cluster;
        let applied = cluster.meta.image.applied_index;
        // Caught up: the whole log committed in the current term is applied. The commit
        // index alone is not enough: after every node restarted it is back at the snapshot
        // until the new leader commits an entry of its own term, and acting on that stale
        // image would make this node lead at old epochs.
        let commit = cluster.meta.raft.commit_index();
        let commit_is_current = cluster
            .meta
            .raft
            .entry(commit)
            .is_some_and(|entry| entry.term == cluster.meta.raft.term());
        if !cluster.meta.caught_up
            && cluster.meta.raft.leader().is_some()
            && commit_is_current
            && applied >= commit
        {
            cluster.meta.caught_up = true;
            // A quorum of one hears at once that it caught up (the controller unfences a
            // broker only then); see `apply_record`.
            if cluster.meta.alone(self.config.node_id) {
                cluster.broker.next_heartbeat = cluster.broker.next_heartbeat.min(now.instant);
            }
            tracing::info!(applied, "metadata caught up; taking partition roles");
            self.update_all_roles(now);
        }
        // Upload reports the image now holds (or can no longer admit) are settled; a
        // partition whose report is held goes on with its next segment.
        let confirmed = self.settle_remote_reports();
        self.continue_uploads(now, confirmed);
        // Answers whose entries are applied are judged before compaction drops the entries.
        self.answer_commit_waiters();
        let cluster = &mut *self.cluster;
        // Compact only when the image holds exactly what Raft applied: the snapshot is
        // this image, and must describe the log up to its index, no more and no less.
        if cluster.meta.raft.applied_index()
            > cluster.meta.raft.snapshot_index() + SNAPSHOT_EVERY_ENTRIES
            && applied == cluster.meta.raft.applied_index()
        {
            let data = cluster.meta.image.encode();
            cluster.meta.raft.compact(applied, data);
            assert!(cluster.meta.raft.snapshot_index() <= applied);
        }
    }

    /// Propose records as the active controller; returns the index of the last one.
    ///
    /// Only the active controller proposes (it has applied every entry of earlier terms, so
    /// its decision image is the applied image plus its own proposals). Each accepted
    /// record is applied to the decision image at once, so the next decision, in this
    /// input or a later one, builds on it. A record refused (throttled) is not applied and
    /// the caller's condition stays true, so it is decided again later.
    pub(in crate::node) fn propose(&mut self, records: Vec<MetaRecord>) -> Option<u64> {
        let cluster = &mut *self.cluster;
        if !cluster.meta.is_active_controller() {
            return None;
        }
        cluster.meta.start_decisions();
        debug_assert!(
            cluster.meta.view.is_some(),
            "proposing without a decision image"
        );
        let mut records = records;
        // A fresh cluster's first record finalizes its metadata.version, so every record
        // after it may use what that level allows (`NodeConfig::bootstrap_metadata_version`).
        let bootstrap = self.config.bootstrap_metadata_version;
        if let Some(level) = cluster.meta.bootstrap_record(bootstrap) {
            records.insert(0, level);
        }
        // The gate: no record kind the finalized level does not include (every node
        // decodes every record; one of an older build would stop on it). Requests that
        // need a newer level are refused before they get here (`features::needs_upgrade`);
        // this keeps any path that forgot from splitting the cluster.
        let level = cluster.meta.decision_image().metadata_version();
        if let Some(gated) = records.iter().find(|r| !gate_allows(r, level)) {
            let needed = gated.required_metadata_version();
            let reason = features::needs_upgrade(needed, level);
            tracing::error!(record = ?gated, %reason, "metadata record refused by the gate");
            return None;
        }
        let mut last = None;
        for record in records {
            match cluster.meta.raft.propose(record.encode()) {
                Ok(index) => {
                    if let Some(view) = cluster.meta.view.as_mut() {
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
}

/// The gate of [`Node::propose`]: a record is written only when the finalized level
/// includes its kind. A `metadata.version` level record is what raises the level (its
/// check is `features::check_metadata_version_update`), so it passes.
fn gate_allows(record: &MetaRecord, level: u16) -> bool {
    match record {
        MetaRecord::FeatureLevel { name, .. } if name == features::METADATA_VERSION => true,
        _ => record.required_metadata_version() <= level,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::features::VersionRange;
    use crate::cluster::image::BrokerState;

    // Goal: the gate lets through what the finalized level includes and nothing more;
    // raising the level itself passes (its own check judged it). Method: a level-2 record
    // at levels 1 and 2, a level-1 record at level 1, a level record at level 1.
    #[test]
    fn the_gate_refuses_records_above_the_finalized_level() {
        let broker = BrokerState {
            id: 1,
            incarnation: 1,
            host: "h".into(),
            port: 1,
            peer_addr: "h:2".into(),
            fenced: true,
            broker_role: true,
        };
        let versioned = MetaRecord::RegisterBrokerVersioned {
            broker: broker.clone(),
            supported: VersionRange::BUILD,
        };
        assert!(!gate_allows(&versioned, 1));
        assert!(gate_allows(&versioned, 2));
        assert!(gate_allows(&MetaRecord::RegisterBroker(broker), 1));
        let raise = MetaRecord::FeatureLevel {
            name: features::METADATA_VERSION.into(),
            level: 2,
        };
        assert!(gate_allows(&raise, 1));
        let other = MetaRecord::FeatureLevel {
            name: "kraft.version".into(),
            level: 1,
        };
        assert!(!gate_allows(&other, 1));
        let message = features::needs_upgrade(2, 1);
        assert!(
            message.contains("needs metadata.version 2, cluster is at 1"),
            "{message}"
        );
        assert!(
            message.contains("weir features upgrade --metadata 2"),
            "{message}"
        );
    }
}
