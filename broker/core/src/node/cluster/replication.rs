//! Partition replication: this node's role per partition (kept in line with the image),
//! and the leader side: replica fetches, the high watermark, ISR changes, acks=all waits.
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
//! **Roles follow the image.** After every apply, `update_role` compares this node's role
//! for each changed partition with the image: it becomes leader (a new `LeaderState`
//! whose epoch starts at the log end), follower (truncation first, see `follower.rs`), or
//! nothing (waiters on the partition fail with NOT_LEADER_OR_FOLLOWER: the new leader may
//! truncate what they wait for). The periodic `leader_checks` shrink the ISR by followers
//! that did not catch up within `replica.lag.time.max.ms`; a replica fetch that shows a
//! follower outside the ISR caught up expands it (`on_replica_fetch`). Either change is
//! an `AlterIsr` request to the controller that the role adopts only when the image shows
//! it.
//!
//! **Must never break.** The HW never passes what every ISR member (pending expansion
//! included) holds durably (`isr-fsync`), never goes down while the role is held, and an
//! acks=all answer leaves only once the HW passed its batch; the leader is in its ISR, the
//! ISR within the replicas (see [`LeaderState::invariants`]); an acks=all waiter waits only
//! on partitions this node leads (see [`Replication::invariants`]).

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;
use weir_wire::domain::{Acks, ApiResponse};
use weir_wire::error::ErrorCode;

use crate::cluster::peer::{
    AlterIsr, EpochQuery, EpochReply, PeerMessage, PeerRecords, ReplicaFetch, ReplicaFetchReply,
};
use crate::cluster::AckDurability;
use crate::event::RequestId;
use crate::meta::epochs_op;
use crate::node::Node;
use crate::purgatory::Purgatory;
use crate::time::{Instant, Now};
use crate::topic::PartitionId;

use super::{uuid_bytes, FollowerState, ALTER_ISR_RETRY_MS, LEADER_CHECK_MS};

/// What a follower knows about its progress, on the leader.
// These are the follower's own claims, bounded where they are received (a fetch past the
// leader's log end is refused; durable is capped by held): never trusted further.
#[derive(Debug, Clone)]
pub(super) struct Progress {
    /// The offset of its last fetch: everything below it, it holds (-1: none yet).
    pub(super) fetch_offset: i64,
    /// What it reported durable at that fetch, at most `fetch_offset` (-1: none yet).
    pub(super) durable_offset: i64,
    /// Last time it was caught up (Kafka's lag rule); the ISR shrink uses it.
    pub(super) caught_up_at: Instant,
    /// The leader's log end when this follower last fetched.
    pub(super) leo_at_last_fetch: i64,
    /// The log start it reported at its last fetch (`None`: its build does not tell).
    pub(super) log_start_offset: Option<i64>,
    /// Fetches accepted from it in this leadership; for a follower that does not report
    /// its log start, two more than at some moment mean it handled an answer sent after
    /// that moment (it fetches a partition one request at a time), e.g. one carrying a new
    /// log start (DeleteRecords).
    pub(super) fetches: u64,
}

/// This node leads the partition.
#[derive(Debug, Clone)]
pub(in crate::node) struct LeaderState {
    pub epoch: i32,
    /// The log end offset when this epoch began: the first offset of the epoch. A
    /// follower joins the ISR only once it reached it (KAFKA-7128: a restarted leader's
    /// high watermark may lag, and a follower below the epoch start may lack records the
    /// previous leader acknowledged).
    pub(super) epoch_start: i64,
    pub(super) partition_epoch: i32,
    pub(super) isr: Vec<i32>,
    pub(super) replicas: Vec<i32>,
    pub(super) followers: BTreeMap<i32, Progress>,
    /// An ISR change sent to the controller and not yet seen in the image.
    // While it is pending the HW also counts its members (the "maximal" ISR): the
    // controller may already have committed it, and a member it adds must not be
    // credited with an HW it has not reached.
    pub(super) pending_isr: Option<(Vec<i32>, Instant)>,
    /// The replicated HW this role last set or found on its log: the floor it must never
    /// go below while the role is held (bookkeeping for the "HW never decreases" checks).
    pub(super) hw_floor: i64,
}

/// This node's role for one partition. A partition this node does not replicate, or any
/// partition before its image caught up, has no entry.
#[derive(Debug, Clone)]
pub(in crate::node) enum Replica {
    Leader(LeaderState),
    Follower(FollowerState),
}

/// An answer waiting on replication (its deadline is in the purgatory): an acks=all
/// produce or a coordinator write for high watermarks, a DeleteRecords for its followers
/// to learn the new log start.
#[derive(Debug, Clone)]
pub(super) struct HwWaiter {
    /// (topic, partition index, offset the high watermark must pass).
    pub(super) needs: Vec<(PartitionId, i64)>,
    /// (partition, follower, log start it must report, or else the fetch count it must
    /// reach): met too when the follower left the ISR. See [`Progress`].
    pub(super) fetched: Vec<(PartitionId, i32, i64, u64)>,
    /// (partition, remote log start the applied image must reach): a tiered partition's
    /// DeleteRecords below its remote log's start.
    pub(super) remote_starts: Vec<(PartitionId, i64)>,
    pub(super) response: ApiResponse,
}

impl HwWaiter {
    /// The partitions it waits on.
    fn partitions(&self) -> impl Iterator<Item = PartitionId> + '_ {
        (self.needs.iter().map(|(key, _)| *key))
            .chain(self.fetched.iter().map(|(key, ..)| *key))
            .chain(self.remote_starts.iter().map(|(key, _)| *key))
    }
}

/// Partition replication: this node's role per partition and the requests waiting on
/// replication (see the module doc, "Replication").
#[derive(Debug)]
pub(in crate::node) struct Replication {
    /// This node's role per partition, kept in line with the applied image by
    /// `update_role` (see `cluster_invariants`). Changed only through [`Replication::set`]
    /// and [`Replication::remove`], which keep `leaders` and the indexes below in line
    /// with it.
    pub replicas: BTreeMap<PartitionId, Replica>,
    /// How many of `replicas` are leader roles (whether the leader check's timer is armed).
    pub(super) leaders: usize,
    /// The follower roles' timers ([`FollowerState::timer`]) in deadline order, and each
    /// role's entry there: the next timeout and the follower timer read the first entries
    /// instead of every role. Whoever changes a follower's timer fields calls
    /// [`Replication::retime`]; `invariants` checks the index against the roles.
    pub(super) follower_timers: PartitionOrder<Instant>,
    /// The follower roles waiting for a sync before their next fetch
    /// (`FollowerState::fetch_after_sync`), by that sync, and each role's entry: a sync's
    /// completion takes the ones it covers from the front. Kept by `retime` too.
    pub(super) sync_waits: PartitionOrder<u64>,
    /// When led partitions are next checked for lagging followers.
    pub(super) next_leader_check: Instant,
    /// Replica fetches held for new data, by (follower, correlation).
    /// Changed only through `park_fetch`, `unpark_fetch`, `pop_expired_fetch` and
    /// `take_fetches_of`, which keep `parked_by_partition` in line with it.
    pub(super) parked_fetches: Purgatory<ReplicaFetch, (i32, u64)>,
    /// The parked replica fetches by the partition they fetch: an append wakes its own
    /// partition's (a leader of thousands of partitions holds a parked fetch per follower
    /// partition, so scanning them all per append was the largest cost of producing over
    /// many partitions in a cluster).
    pub(super) parked_by_partition: BTreeSet<(PartitionId, (i32, u64))>,
    /// acks=all produces (and coordinator answers) waiting for high watermarks.
    pub(super) hw_waiters: Purgatory<HwWaiter>,
    /// Internal-topic appends of the current input, for the answer that waits on them.
    pub(super) internal_appends: Vec<(PartitionId, i64)>,
}

pub(super) fn new_progress(now: Now) -> Progress {
    Progress {
        fetch_offset: -1,
        durable_offset: -1,
        caught_up_at: now.instant,
        leo_at_last_fetch: 0,
        log_start_offset: None,
        fetches: 0,
    }
}

impl Replication {
    /// Take `role` for `key`, replacing any earlier one.
    pub(super) fn set(&mut self, key: PartitionId, role: Replica) {
        self.leaders += usize::from(matches!(role, Replica::Leader(_)));
        let old = self.replicas.insert(key, role);
        self.leaders -= usize::from(matches!(old, Some(Replica::Leader(_))));
        self.retime(key);
    }

    /// Drop the role for `key`, if any.
    pub(super) fn remove(&mut self, key: &PartitionId) {
        let old = self.replicas.remove(key);
        self.leaders -= usize::from(matches!(old, Some(Replica::Leader(_))));
        self.retime(*key);
    }

    /// Drop every role of topic `topic` (it was deleted).
    pub(super) fn remove_topic(&mut self, topic: Uuid) {
        // Roles are ordered by topic, then index: the topic's are one range from its
        // partition 0, so a deletion visits its own roles, not every role held.
        let keys: Vec<PartitionId> = (self.replicas.range(PartitionId::new(topic, 0)..))
            .map(|(key, _)| *key)
            .take_while(|key| key.topic == topic)
            .collect();
        for key in keys {
            self.remove(&key);
        }
    }

    /// Park a replica fetch (replacing one under the same key); gives it back when full
    /// (or, which its leader already refused, when it names no valid partition).
    pub(super) fn park_fetch(
        &mut self,
        key: (i32, u64),
        deadline: Option<Instant>,
        fetch: ReplicaFetch,
    ) -> Result<(), ReplicaFetch> {
        self.unpark_fetch(key);
        let Some(partition) = fetch_partition(&fetch) else {
            return Err(fetch);
        };
        self.parked_fetches.insert(key, deadline, fetch)?;
        self.parked_by_partition.insert((partition, key));
        Ok(())
    }

    /// Take the parked fetch under `key`, if any.
    pub(super) fn unpark_fetch(&mut self, key: (i32, u64)) -> Option<ReplicaFetch> {
        let fetch = self.parked_fetches.remove(key)?;
        if let Some(partition) = fetch_partition(&fetch) {
            self.parked_by_partition.remove(&(partition, key));
        }
        Some(fetch)
    }

    /// Take one parked fetch whose wait ended by `now`, earliest first.
    pub(super) fn pop_expired_fetch(&mut self, now: Instant) -> Option<((i32, u64), ReplicaFetch)> {
        let (key, fetch) = self.parked_fetches.pop_expired(now)?;
        if let Some(partition) = fetch_partition(&fetch) {
            self.parked_by_partition.remove(&(partition, key));
        }
        Some((key, fetch))
    }

    /// Take every parked fetch of `partition`, in key order.
    pub(super) fn take_fetches_of(
        &mut self,
        partition: PartitionId,
    ) -> Vec<((i32, u64), ReplicaFetch)> {
        let keys: Vec<(i32, u64)> = (self.parked_by_partition)
            .range((partition, (i32::MIN, 0))..)
            .take_while(|(p, _)| *p == partition)
            .map(|(_, key)| *key)
            .collect();
        (keys.into_iter())
            .filter_map(|key| Some((key, self.unpark_fetch(key)?)))
            .collect()
    }

    /// Bring `key`'s entries in the follower timer index and the sync waits in line with
    /// its role.
    pub(super) fn retime(&mut self, key: PartitionId) {
        let follower = match self.replicas.get(&key) {
            Some(Replica::Follower(f)) => Some(f),
            _ => None,
        };
        self.follower_timers
            .set(key, follower.and_then(FollowerState::timer));
        self.sync_waits
            .set(key, follower.and_then(|f| f.fetch_after_sync));
    }

    /// True when this node leads at least one partition.
    pub(super) fn leads_any(&self) -> bool {
        self.leaders > 0
    }

    /// The waits are bounded and in their deadline order (see [`Purgatory::invariants`]),
    /// and `leaders` and the indexes agree with the roles.
    pub(super) fn invariants(&self) {
        self.parked_fetches.invariants();
        assert!(
            self.parked_by_partition.len() == self.parked_fetches.iter().count()
                && (self.parked_fetches.iter()).all(|(key, fetch)| {
                    fetch_partition(fetch)
                        .is_some_and(|p| self.parked_by_partition.contains(&(p, *key)))
                }),
            "the parked fetches by partition differ from the parked fetches"
        );
        self.hw_waiters.invariants();
        assert_eq!(
            self.leaders,
            (self.replicas.values())
                .filter(|r| matches!(r, Replica::Leader(_)))
                .count(),
            "the leader count differs from the leader roles"
        );
        let followers = || {
            (self.replicas.iter()).filter_map(|(key, r)| match r {
                Replica::Follower(f) => Some((*key, f)),
                Replica::Leader(_) => None,
            })
        };
        self.follower_timers
            .invariants("follower timers", followers().map(|(k, f)| (k, f.timer())));
        self.sync_waits.invariants(
            "sync waits",
            followers().map(|(k, f)| (k, f.fetch_after_sync)),
        );
        // An acks=all waiter waits only on partitions led here: losing a leadership fails
        // its waiters (`fail_hw_waiters_of`), as their HW will never come from this node.
        for (_, waiter) in self.hw_waiters.iter() {
            for key in waiter.partitions() {
                assert!(
                    matches!(self.replicas.get(&key), Some(Replica::Leader(_))),
                    "an acks=all waiter on {key}, not led here"
                );
            }
        }
    }
}

impl LeaderState {
    /// What a leader role guarantees by itself, whatever the image and log say: the
    /// leader is in its ISR, the ISR (and a pending change) lie within the replicas, and
    /// every other replica has a progress entry whose claims are ordered.
    pub(super) fn invariants(&self, node_id: i32) {
        assert!(
            self.isr.iter().all(|r| self.replicas.contains(r)),
            "ISR {:?} outside the replicas {:?}",
            self.isr,
            self.replicas
        );
        assert!(
            self.isr.contains(&node_id),
            "the leader is not in its ISR {:?}",
            self.isr
        );
        // A pending ISR change keeps the leader and stays within the replicas (a shrink
        // removes others only; an expansion adds a replica).
        if let Some((pending, _)) = &self.pending_isr {
            assert!(
                pending.contains(&node_id) && pending.iter().all(|r| self.replicas.contains(r)),
                "pending ISR {pending:?} (replicas {:?})",
                self.replicas
            );
        }
        // Every other replica has a progress entry (the HW counts members without one as
        // holding nothing, so a missing one would stall it).
        assert!(
            (self.replicas.iter()).all(|r| *r == node_id || self.followers.contains_key(r)),
            "replicas {:?} without progress",
            self.replicas
        );
        assert!(
            !self.followers.contains_key(&node_id),
            "the leader tracks itself as a follower"
        );
        // What a follower reports durable never passes what it reports held.
        for (follower, p) in &self.followers {
            assert!(
                p.durable_offset <= p.fetch_offset,
                "follower {follower} progress {p:?}"
            );
        }
    }
}

impl FollowerState {
    /// What a follower role guarantees by itself: it never follows itself, keeps one
    /// request in flight at most (a fetch waiting for a sync is not also in flight), and
    /// fetches only once its truncation is over.
    pub(super) fn invariants(&self, node_id: i32) {
        assert_ne!(self.leader, node_id, "a follower of itself");
        assert!(
            self.fetch_after_sync.is_none() || self.in_flight.is_none(),
            "a follower both waits for a sync and has a request in flight"
        );
        assert!(
            !self.truncated || self.query_epoch.is_none(),
            "truncated, yet another epoch query is planned"
        );
    }
}

impl Node {
    /// `(leader, leader epoch, isr)` of a partition in this node's image.
    pub fn partition_leadership(
        &self,
        topic: &str,
        partition: i32,
    ) -> Option<(i32, i32, Vec<i32>)> {
        let cluster = &*self.cluster;
        let id = *cluster.meta.image.names.get(topic)?;
        let state = cluster.meta.image.partition(id, partition)?;
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
            cluster
                .replication
                .replicas
                .get(&PartitionId::new(topic_id, index)),
            Some(Replica::Leader(_))
        )
    }

    /// The leader epoch to stamp on a produce to this partition, or why this node may not
    /// take it: not the leader (or fenced), or (acks=all) too few in-sync replicas.
    pub(in crate::node) fn check_produce_leadership(
        &self,
        id: PartitionId,
        acks: Acks,
    ) -> Result<i32, (ErrorCode, String)> {
        let cluster = &*self.cluster;
        // The role, not the image: the image may name this node before it may take the
        // role (see `leads_index`), and appending then could fork the partition's history.
        let Some(Replica::Leader(leader)) = cluster.replication.replicas.get(&id) else {
            return Err((
                ErrorCode::NOT_LEADER_OR_FOLLOWER,
                "this broker does not lead the partition".into(),
            ));
        };
        // A fenced broker may still hold a role it is about to lose (the controller has
        // moved, or is moving, its leaderships): writes there could be truncated by the new
        // leader after being acknowledged, so they are refused (the client retries).
        if cluster.broker.fenced {
            return Err((
                ErrorCode::NOT_LEADER_OR_FOLLOWER,
                "this broker is fenced".into(),
            ));
        }
        if acks == Acks::All {
            let min_isr = self
                .topics
                .get(&id.topic)
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
    pub(in crate::node) fn serving_epoch(&self, id: PartitionId) -> Result<i32, ErrorCode> {
        let (topic_id, index) = (id.topic, id.index());
        let cluster = &*self.cluster;
        // Only a leader serves clients: a follower's log may hold a suffix it will still
        // truncate, and its HW lags the leader's.
        match cluster
            .replication
            .replicas
            .get(&PartitionId::new(topic_id, index))
        {
            Some(Replica::Leader(leader)) => {
                debug_assert!(leader.epoch >= 0, "negative leader epoch {}", leader.epoch);
                Ok(leader.epoch)
            }
            _ => Err(ErrorCode::NOT_LEADER_OR_FOLLOWER),
        }
    }

    /// Whether this node leads the partition with a high watermark still below the start
    /// of its epoch (KIP-207): records the previous leader acknowledged may lie between the
    /// two, so the watermark is not yet the partition's end. ListOffsets answers
    /// OFFSET_NOT_AVAILABLE until the followers' fetches move it past the epoch start.
    pub(in crate::node) fn epoch_start_unreached(
        &self,
        id: PartitionId,
        high_watermark: i64,
    ) -> bool {
        matches!(
            self.cluster.replication.replicas.get(&id),
            Some(Replica::Leader(leader)) if high_watermark < leader.epoch_start
        )
    }

    /// An internal-topic append (coordinator state) of the current input. A coordinator's
    /// answer (a committed offset, a transaction state) must not precede the replication
    /// of the record it describes: a new coordinator elected from the ISR would not know
    /// it.
    pub(in crate::node) fn note_internal_append(&mut self, id: PartitionId, end: i64) {
        self.cluster.replication.internal_appends.push((id, end));
    }

    /// Park a durable answer on the replication of this input's internal appends; gives
    /// the answer back when there were none.
    pub(in crate::node) fn respond_when_internal_replicated(
        &mut self,
        id: RequestId,
        response: ApiResponse,
    ) -> Option<(RequestId, ApiResponse)> {
        let cluster = &mut *self.cluster;
        if cluster.replication.internal_appends.is_empty() {
            return Some((id, response));
        }
        let needs = std::mem::take(&mut cluster.replication.internal_appends);
        // Internal appends are made by a coordinator on partitions it leads, so their HW
        // comes from this node.
        debug_assert!(
            (needs.iter()).all(|(key, _)| matches!(
                cluster.replication.replicas.get(key),
                Some(Replica::Leader(_))
            )),
            "internal appends on partitions not led here"
        );
        let now = Now::new(cluster.now, 0);
        let timeout_ms = cluster
            .config
            .replica_lag_time_max_ms
            .max(crate::node::PRODUCE_TIMEOUT_MS_MIN);
        self.respond_when_replicated(now, id, response, needs, timeout_ms);
        None
    }

    /// Bring this node's role for every partition of the image in line with it.
    pub(in crate::node) fn update_all_roles(&mut self, now: Now) {
        let cluster = &*self.cluster;
        // Before catch-up no role is held (`update_role_inner` removes them all).
        debug_assert!(cluster.meta.caught_up || cluster.replication.replicas.is_empty());
        let keys: Vec<PartitionId> = cluster
            .meta
            .image
            .topics
            .values()
            .flat_map(|t| {
                (0..t.partitions.len()).map(move |i| PartitionId::new(Uuid::from_u128(t.id), i))
            })
            .collect();
        for id in keys {
            self.update_role(now, id);
        }
    }

    /// Bring this node's role for one partition in line with the image. Leading a partition
    /// of `__consumer_offsets` is coordinating its groups: the group coordinator takes them
    /// over when the leadership starts and resigns them when it ends.
    pub(super) fn update_role(&mut self, now: Now, id: PartitionId) {
        let (topic_id, index) = (id.topic, id.index());
        let led = self.leads_index(id);
        self.update_role_inner(now, id);
        // A pending upload report lives only as long as the leadership it was made in.
        // A role change only drops a report (the new role holds no upload to go on with).
        let _ = self.settle_remote_report(id);
        let leads = self.leads_index(id);
        // A leader role exists only where the image names this node the leader.
        debug_assert!(
            !leads
                || (self.cluster.meta.image.partition_state(id))
                    .is_some_and(|p| p.leader == self.config.node_id),
            "leader role against the image"
        );
        if led == leads {
            return;
        }
        // Leading an offsets partition is coordinating its groups (Kafka's rule: the group
        // coordinator is the leader of the group's `__consumer_offsets` partition). A new
        // leader takes over the groups it replayed as a follower, giving each member a
        // fresh session; a former leader resigns them, so two nodes never run one group's
        // timers or answer its members at once. Leading a `__transaction_state` partition
        // is coordinating its transactional ids the same way: the new coordinator finishes
        // what its predecessor decided, the old one stops its clocks and markers.
        let Some(topic) = self.topics.get(&topic_id) else {
            return;
        };
        let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        if topic.name == crate::txn_log::TXN_STATE_TOPIC {
            if leads {
                self.take_over_transactions(now, index, count);
            } else {
                self.resign_transactions(index, count);
            }
            return;
        }
        if topic.name != crate::group::offsets_log::OFFSETS_TOPIC {
            return;
        }
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
    pub(in crate::node) fn leads_index(&self, id: PartitionId) -> bool {
        let (topic_id, index) = (id.topic, id.index());
        matches!(
            self.cluster
                .replication
                .replicas
                .get(&PartitionId::new(topic_id, index)),
            Some(Replica::Leader(_))
        )
    }

    /// The role decision proper (see [`Node::update_role`]). Losing a leader role fails
    /// its acks=all waiters and wakes consumer fetches at once: the HW they wait for will
    /// not come from this node, and a consumer must re-route to the new leader.
    pub(super) fn update_role_inner(&mut self, now: Now, id: PartitionId) {
        let (topic_id, index) = (id.topic, id.index());
        let node_id = self.config.node_id;
        // A partition of another shard of this broker is that shard's to hold (its role,
        // storage and coordination); to this node it is as if the image named another
        // broker. The image itself, and everything answered from it, stays per broker.
        let shard = self.config.shard;
        let cluster = &mut *self.cluster;
        let state = cluster.meta.image.partition_state(id).cloned();
        let key = PartitionId::new(topic_id, index);
        let Some(state) = state
            .filter(|_| cluster.meta.caught_up && cluster.config.broker_role && shard.holds(key))
        else {
            cluster.replication.remove(&key);
            return;
        };
        let current = cluster.replication.replicas.get(&key).cloned();
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
                    cluster.replication.set(key, Replica::Leader(leader));
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
                .meta
                .image
                .brokers
                .get(&node_id)
                .is_some_and(|b| b.incarnation == cluster.broker.incarnation);
            let last_epoch = self
                .topics
                .get(&topic_id)
                .and_then(|t| t.partitions.get(index))
                .map_or(-1, |log| log.last_epoch());
            let (registered, last_epoch) =
                if crate::planted::on(crate::planted::Bug::StaleDecisions) {
                    (true, -1)
                } else {
                    (registered, last_epoch)
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
                self.cluster.replication.remove(&key);
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
            cluster.replication.set(
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
            let Some(log) = self.log_mut(PartitionId::new(topic_id, index)) else {
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
            if let Some(log) = self.log_mut(PartitionId::new(topic_id, index)) {
                if log.replicated_hw().is_none() {
                    log.set_replicated_hw(Some(log.log_start_offset()));
                }
            }
            let cluster = &mut *self.cluster;
            cluster.replication.set(
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
            self.cluster.replication.remove(&key);
        }
    }

    /// Periodic leader work: ISR shrink requests, and resending an ISR change the
    /// controller has not reflected in the image after [`ALTER_ISR_RETRY_MS`] (expansion
    /// requests are made by `on_replica_fetch`, when the follower fetches).
    pub(super) fn leader_checks(&mut self, now: Now) {
        let node_id = self.config.node_id;
        let cluster = &mut *self.cluster;
        if now.instant < cluster.replication.next_leader_check {
            return;
        }
        cluster.replication.next_leader_check = now.instant.add_ms(LEADER_CHECK_MS);
        let lag_max = cluster.config.replica_lag_time_max_ms;
        let mut requests = Vec::new();
        // Partitions whose pending change was forgotten: their maximal ISR shrank.
        let mut forgotten = Vec::new();
        for (key, replica) in cluster.replication.replicas.iter_mut() {
            let (topic_id, index) = (key.topic, key.index());
            let Replica::Leader(leader) = replica else {
                continue;
            };
            // One ISR change at a time: while one is pending the controller may still
            // commit it, and a second decided on the old ISR would carry a stale partition
            // epoch. An unanswered change is forgotten after ALTER_ISR_RETRY_MS (the
            // controller refused it or never got it) and decided afresh below.
            if let Some((_, sent)) = &leader.pending_isr {
                if now.instant.saturating_duration_since(*sent).as_millis() as u64
                    > ALTER_ISR_RETRY_MS
                {
                    leader.pending_isr = None;
                    forgotten.push(*key);
                } else {
                    continue;
                }
            }
            // A follower lags when it has not been caught up (fetched up to the leader's
            // log end as it was at its previous fetch) for replica.lag.time.max.ms; one
            // without progress in this epoch counts as lagging from the role's start.
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
                    topic_id: uuid_bytes(topic_id),
                    partition: key.partition(),
                    leader_epoch: leader.epoch,
                    partition_epoch: leader.partition_epoch,
                    isr,
                });
            }
        }
        for request in requests {
            self.send_alter_isr(request);
        }
        // A forgotten expansion's members no longer hold the HW back (a sync no longer
        // recomputes every led partition's HW, so it is done here, where the ISR moved).
        if !forgotten.is_empty() {
            for key in forgotten {
                self.recompute_hw(key);
            }
            self.release_hw_waiters();
        }
    }

    /// Send an ISR change to the controller (to itself in a quorum of one). Without a known
    /// controller it is dropped; `pending_isr` stays set, and `leader_checks` resends
    /// after [`ALTER_ISR_RETRY_MS`].
    pub(super) fn send_alter_isr(&mut self, request: AlterIsr) {
        let node_id = self.config.node_id;
        debug_assert!(
            request.isr.contains(&node_id),
            "an ISR change leaving out its own leader"
        );
        let Some(controller) = self.cluster.meta.controller() else {
            return;
        };
        if self.controller_is_here(controller) {
            self.on_alter_isr(node_id, request);
        } else {
            self.send_peer(controller, PeerMessage::AlterIsr(request));
        }
    }

    /// The leader side of a replica fetch: refuse it unless this node leads at exactly
    /// the follower's epoch and the offset lies within the log; record the follower's
    /// progress (its own claims, bounded here), maybe ask to add it to the ISR, move the
    /// HW, and answer at once or park the fetch until new data (long poll).
    pub(super) fn on_replica_fetch(&mut self, now: Now, from: i32, fetch: ReplicaFetch) {
        let topic_id = Uuid::from_u128(u128::from_be_bytes(fetch.topic_id));
        let Ok(index) = usize::try_from(fetch.partition) else {
            return;
        };
        let key = PartitionId::new(topic_id, index);
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
        let Some(Replica::Leader(leader)) = cluster.replication.replicas.get_mut(&key) else {
            self.send_peer(
                from,
                PeerMessage::FetchReply(refusal(ErrorCode::NOT_LEADER_OR_FOLLOWER, -1)),
            );
            return;
        };
        // A fetch for another epoch follows another history: an older follower must first
        // learn the new epoch (and truncate), a newer one means this role is about to go.
        // Neither may move this leader's view of the follower's progress.
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
        // Field access, not `self.partition`: the replica roles are borrowed mutably below
        // while this log is still read.
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
        let Some(Replica::Leader(leader)) = self.cluster.replication.replicas.get_mut(&key) else {
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
        progress.fetches += 1;
        progress.log_start_offset = fetch.log_start_offset;
        // Expansion: a caught-up replica outside the ISR asks to come back.
        // It must hold everything the high watermark covers and everything of earlier
        // epochs (KAFKA-7128), and under isr-fsync have made the covered part durable, so
        // that the high watermark stays at most the durable end of every ISR member.
        let hw = log.high_watermark();
        let needed = hw.max(leader.epoch_start.min(leo));
        let durable_mode = self.cluster.config.ack_durability == AckDurability::IsrFsync;
        // Only a live (registered, unfenced) broker may join (KIP-841): the controller
        // refuses any other, and a pending expansion counts its member towards the HW until
        // refused, so proposing a fenced one (a broker in controlled shutdown, which keeps
        // fetching until it exits, or one restarting) would hold acks=all back for it.
        let live = self.cluster.meta.image.is_live(from);
        // PLANTED BUG (weir-sim's planted suite only): the broker-side guards are off with
        // planted-stale-decisions, this one included.
        let live = live || crate::planted::on(crate::planted::Bug::StaleDecisions);
        let Some(Replica::Leader(leader)) = self.cluster.replication.replicas.get_mut(&key) else {
            return;
        };
        let mut expand = None;
        if !leader.isr.contains(&from)
            && live
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
        // The fetch carried the follower's progress: the HW may move, and with it acks=all
        // answers. Then the fetch itself: answered now when there is data past its offset
        // (or it asked not to wait), else held until an append wakes it or its wait ends
        // (Kafka's long poll for replicas), which keeps an idle follower from spinning.
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
            let deadline = Some(now.instant.add_ms(wait));
            if let Err(fetch) = cluster.replication.park_fetch(key, deadline, fetch) {
                // Full: answered at once (empty), the follower asks again.
                self.answer_replica_fetch(from, &fetch);
            }
        }
    }

    /// Answer a replica fetch with what the log holds from its offset. The leadership is
    /// checked again: a parked fetch may be answered after this node lost the role, and
    /// then it is dropped (the follower resends to the new leader).
    pub(super) fn answer_replica_fetch(&mut self, to: i32, fetch: &ReplicaFetch) {
        let topic_id = Uuid::from_u128(u128::from_be_bytes(fetch.topic_id));
        let Ok(index) = usize::try_from(fetch.partition) else {
            return;
        };
        let Some(Replica::Leader(leader)) = self
            .cluster
            .replication
            .replicas
            .get(&PartitionId::new(topic_id, index))
        else {
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
        let Some(log) = self.partition(PartitionId::new(topic_id, index)) else {
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
    pub(in crate::node) fn wake_replica_fetches(&mut self, id: PartitionId) {
        let cluster = &mut *self.cluster;
        if cluster.replication.parked_fetches.is_empty() {
            return;
        }
        let woken = cluster.replication.take_fetches_of(id);
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
    pub(super) fn recompute_hw(&mut self, key: PartitionId) {
        let cluster = &*self.cluster;
        let Some(Replica::Leader(leader)) = cluster.replication.replicas.get(&key) else {
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
            .get(&key.topic)
            .and_then(|t| t.partitions.get(key.index()))
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
        if crate::planted::on(crate::planted::Bug::HwBeforeIsr) {
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
            if let Some(Replica::Leader(leader)) = self.cluster.replication.replicas.get_mut(&key) {
                leader.hw_floor = hw;
            }
            // Consumer fetches parked on this partition may now read more.
            self.wake_fetches(|keys| keys.contains(&leo_key));
        }
    }

    /// Register an acks=all produce answer to be released by high watermarks.
    pub(in crate::node) fn respond_when_replicated(
        &mut self,
        now: Now,
        id: RequestId,
        response: ApiResponse,
        needs: Vec<(PartitionId, i64)>,
        timeout_ms: u64,
    ) {
        let cluster = &mut *self.cluster;
        // Each need is a partition this node leads and the offset the HW must reach; an
        // acks=all waiter with none would never be released by an HW move.
        debug_assert!(!needs.is_empty(), "an acks=all waiter waiting for nothing");
        let deadline = Some(now.instant.add_ms(timeout_ms));
        if let Err(waiter) = (cluster.replication.hw_waiters).insert(
            id,
            deadline,
            HwWaiter {
                needs,
                fetched: Vec::new(),
                remote_starts: Vec::new(),
                response,
            },
        ) {
            let response = crate::node::errors::with_error(
                waiter.response,
                ErrorCode::REQUEST_TIMED_OUT,
                "too many produce requests waiting for replication",
            );
            self.respond(id, response);
            return;
        }
        self.release_hw_waiters();
    }

    pub(in crate::node) fn release_hw_waiters(&mut self) {
        self.release_marker_waiters();
        let cluster = &*self.cluster;
        if cluster.replication.hw_waiters.is_empty() {
            return;
        }
        let done: Vec<RequestId> = cluster
            .replication
            .hw_waiters
            .iter()
            .filter(|(_, waiter)| {
                (waiter.needs.iter()).all(|(key, end)| {
                    self.partition(*key)
                        .is_some_and(|log| log.high_watermark() >= *end)
                }) && (waiter.fetched.iter()).all(|(key, follower, start, count)| {
                    self.follower_took(*key, *follower, *start, *count)
                }) && (waiter.remote_starts.iter()).all(|(key, start)| {
                    (cluster
                        .meta
                        .image
                        .remote_log(key.topic.as_u128(), key.partition()))
                    .is_some_and(|remote| remote.log_start_offset >= *start)
                })
            })
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            if let Some(waiter) = self.cluster.replication.hw_waiters.remove(id) {
                // Kafka's rule: an acks=all batch is replicated to the ISR, but if the ISR
                // shrank below min.insync.replicas meanwhile the producer is told so.
                let short = matches!(waiter.response, ApiResponse::Produce(_))
                    && (waiter.needs.iter()).any(|(key, _)| self.isr_below_min(*key));
                let response = if short {
                    crate::node::errors::with_error(
                        waiter.response,
                        ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                        "the ISR shrank below min.insync.replicas after the append",
                    )
                } else {
                    waiter.response
                };
                let now = Now::new(self.cluster_now(), 0);
                if matches!(response, ApiResponse::DeleteRecords(_)) {
                    // Its own log start's meta too: the sync is long done (two fetch round
                    // trips), or still in flight on a slow disk.
                    self.respond_when_durable_or_refuse(id, response);
                } else {
                    self.respond_durable(now, id, response);
                }
            }
        }
    }

    /// Whether `follower` has the log start `start` of `key` (it reported one at least as
    /// high; a follower that does not report: it fetched to `count`, see [`Progress`]), or
    /// is no longer in the ISR (a replica out of it cannot lead without an unclean
    /// election).
    fn follower_took(&self, key: PartitionId, follower: i32, start: i64, count: u64) -> bool {
        let Some(Replica::Leader(leader)) = self.cluster.replication.replicas.get(&key) else {
            return false;
        };
        if !leader.isr.contains(&follower) {
            return true;
        }
        leader
            .followers
            .get(&follower)
            .is_some_and(|p| match p.log_start_offset {
                Some(reported) => reported >= start,
                None => p.fetches >= count,
            })
    }

    /// Park a DeleteRecords answer until every other in-sync replica of each of
    /// `partitions` has the log start given with it (it reports it in its fetches; see
    /// [`Progress`]), as Kafka's answer waits for its replicas' low watermark, and the
    /// applied image's remote log start of each of `remote_starts` reached its offset
    /// (tiered partitions); gives the answer back when there is nothing to wait for.
    pub(in crate::node) fn respond_when_followers_fetched(
        &mut self,
        now: Now,
        id: RequestId,
        response: ApiResponse,
        partitions: &[(PartitionId, i64)],
        remote_starts: Vec<(PartitionId, i64)>,
        timeout_ms: u64,
    ) -> Option<ApiResponse> {
        let node_id = self.config.node_id;
        let cluster = &mut *self.cluster;
        let fetched: Vec<(PartitionId, i32, i64, u64)> = (partitions.iter())
            .filter_map(|(key, start)| match cluster.replication.replicas.get(key) {
                Some(Replica::Leader(leader)) => Some((key, *start, leader)),
                _ => None,
            })
            .flat_map(|(key, start, leader)| {
                (leader.isr.iter())
                    .filter(|f| **f != node_id)
                    .map(move |f| {
                        let fetches = leader.followers.get(f).map_or(0, |p| p.fetches);
                        (*key, *f, start, fetches + 2)
                    })
            })
            .collect();
        if fetched.is_empty() && remote_starts.is_empty() {
            return Some(response);
        }
        let deadline = Some(now.instant.add_ms(timeout_ms));
        let waiter = HwWaiter {
            needs: Vec::new(),
            fetched,
            remote_starts,
            response,
        };
        if let Err(waiter) = cluster.replication.hw_waiters.insert(id, deadline, waiter) {
            let response = crate::node::errors::with_error(
                waiter.response,
                ErrorCode::REQUEST_TIMED_OUT,
                "too many requests waiting for replication",
            );
            self.respond(id, response);
        }
        None
    }

    /// True when this node leads the partition with fewer in-sync replicas than its
    /// `min.insync.replicas`. (The write is replicated to the ISR there was; Kafka still
    /// answers NOT_ENOUGH_REPLICAS_AFTER_APPEND so that the producer knows the guarantee
    /// it asked for was not met.)
    pub(super) fn isr_below_min(&self, id: PartitionId) -> bool {
        let Some(Replica::Leader(leader)) = self.cluster.replication.replicas.get(&id) else {
            return false;
        };
        let min_isr = self
            .topics
            .get(&id.topic)
            .and_then(|t| t.config.min_insync_replicas)
            .unwrap_or(self.config.min_insync_replicas);
        (leader.isr.len() as i32) < min_isr
    }

    /// Fail the acks=all waiters on a partition this node stops leading (or on every
    /// partition of a topic, `index` None). Never answered with success: the write may
    /// still be truncated by the new leader, so the producer must retry.
    pub(super) fn fail_hw_waiters_of(&mut self, topic_id: Uuid, index: Option<usize>) {
        let failed = self.take_hw_waiters(|w| {
            w.partitions()
                .any(|key| key.topic == topic_id && index.is_none_or(|x| x == key.index()))
        });
        self.answer_hw_waiters(
            failed,
            ErrorCode::NOT_LEADER_OR_FOLLOWER,
            "leadership moved before the write was replicated",
        );
    }

    /// Remove and return the acks=all waiters `pick` selects.
    pub(super) fn take_hw_waiters(
        &mut self,
        pick: impl Fn(&HwWaiter) -> bool,
    ) -> Vec<(RequestId, HwWaiter)> {
        let cluster = &mut *self.cluster;
        cluster.replication.hw_waiters.remove_where(|_, w| pick(w))
    }

    /// Answer taken acks=all waiters with `error`. Through `respond`: forwarded answers and
    /// group-write markers are routed there.
    pub(super) fn answer_hw_waiters(
        &mut self,
        waiters: Vec<(RequestId, HwWaiter)>,
        error: ErrorCode,
        message: &str,
    ) {
        for (id, waiter) in waiters {
            let response = crate::node::errors::with_error(waiter.response, error, message);
            self.respond(id, response);
        }
    }

    /// The leader side of KIP-101's OffsetForLeaderEpoch. Answered only by the leader of
    /// exactly the follower's epoch: another epoch's history is not the one the follower
    /// is about to fetch, so truncating against it could keep a divergent suffix.
    pub(super) fn on_epoch_query(&mut self, from: i32, query: EpochQuery) {
        let topic_id = Uuid::from_u128(u128::from_be_bytes(query.topic_id));
        // A query naming no partition (a negative number) is a peer's bug: no answer; the
        // follower resends on its timer and the image will have moved it on by then.
        let Some(key) = PartitionId::from_wire(topic_id, query.partition) else {
            return;
        };
        // Only a leader answers, and only for the epoch the follower follows: the answer
        // is "where does epoch E end in *this* history", and a leader of another epoch
        // serves another history (the follower would truncate to the wrong offset).
        let leader_epoch = match self.cluster.replication.replicas.get(&key) {
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
        match (leader_epoch, self.partition(key)) {
            (Some(epoch), Some(log)) if epoch == query.current_leader_epoch => {
                // KIP-279: the largest epoch <= E this log holds, and where it ends (the
                // start of the next epoch, or the log end for the current one).
                let (found, end) = log.end_offset_for_epoch(query.epoch);
                reply.epoch = found;
                reply.end_offset = end;
            }
            // The follower is behind the image: it must learn the new epoch first.
            (Some(epoch), Some(_)) if epoch > query.current_leader_epoch => {
                reply.error = ErrorCode::FENCED_LEADER_EPOCH.0;
            }
            // The follower is ahead of this leader's image: this leader is about to lose
            // the role; the follower asks again.
            (Some(_), Some(_)) => reply.error = ErrorCode::UNKNOWN_LEADER_EPOCH.0,
            _ => reply.error = ErrorCode::NOT_LEADER_OR_FOLLOWER.0,
        }
        self.send_peer(from, PeerMessage::EpochReply(reply));
    }

    /// Every role against the applied image and its partition's log (see the module doc
    /// of `node/cluster`, "Replication"): a leader role matches the image's leader, epochs,
    /// ISR and replicas, and its HW never went down; a follower follows the image's leader
    /// at the image's epoch; no role is held before the image caught up.
    pub(in crate::node) fn replication_invariants(&self) {
        let cluster = &*self.cluster;
        let node_id = self.config.node_id;
        // Roles are taken only once the image caught up with the quorum (a stale image
        // must not make this node lead at an old epoch), and only by broker nodes.
        assert!(
            cluster.replication.replicas.is_empty()
                || (cluster.meta.caught_up && cluster.config.broker_role),
            "partition roles held before the image caught up (or on a controller-only node)"
        );
        for (key, replica) in &cluster.replication.replicas {
            let (topic_id, index) = (key.topic, key.index());
            let state = cluster.meta.image.partition_state(*key);
            let state = state.expect("a role is held only for partitions in the image");
            assert!(
                self.config.shard.holds(*key),
                "a role held for a partition of another shard"
            );
            let log = self
                .topics
                .get(&topic_id)
                .and_then(|t| t.partitions.get(index));
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
                    leader.invariants(node_id);
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
                    // past it is refused, and a leader's log end only grows).
                    for (follower, p) in &leader.followers {
                        assert!(
                            p.fetch_offset <= log.log_end_offset()
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
                    f.invariants(node_id);
                    assert_eq!(
                        state.leader_epoch, f.epoch,
                        "follower epoch behind the image"
                    );
                    assert_eq!(state.leader, f.leader, "follower of another leader");
                    assert!(
                        state.replicas.contains(&node_id),
                        "a follower role outside the replicas {:?}",
                        state.replicas
                    );
                }
            }
        }
    }
}

/// The partition a replica fetch asks for (`None`: not a valid partition number).
fn fetch_partition(fetch: &ReplicaFetch) -> Option<PartitionId> {
    let topic = Uuid::from_u128(u128::from_be_bytes(fetch.topic_id));
    PartitionId::from_wire(topic, fetch.partition)
}

/// Partitions ordered by a value of each (a follower's next timer, the sync it waits
/// for), with each partition's value: the first entries are the partitions due first, and
/// a partition's entry is replaced without a scan.
#[derive(Debug)]
pub(in crate::node) struct PartitionOrder<V> {
    ordered: BTreeSet<(V, PartitionId)>,
    value_of: BTreeMap<PartitionId, V>,
}

impl<V: Ord + Copy + std::fmt::Debug> PartitionOrder<V> {
    pub(super) fn new() -> Self {
        PartitionOrder {
            ordered: BTreeSet::new(),
            value_of: BTreeMap::new(),
        }
    }

    /// Give `key` the value `value` (`None`: take it out).
    pub(super) fn set(&mut self, key: PartitionId, value: Option<V>) {
        if let Some(old) = self.value_of.remove(&key) {
            self.ordered.remove(&(old, key));
        }
        if let Some(value) = value {
            self.ordered.insert((value, key));
            self.value_of.insert(key, value);
        }
    }

    /// The entries in value order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &(V, PartitionId)> {
        self.ordered.iter()
    }

    /// The smallest value.
    pub(super) fn first(&self) -> Option<V> {
        self.ordered.first().map(|(value, _)| *value)
    }

    /// The entries are exactly `expected`'s `Some`s, and both maps agree.
    pub(super) fn invariants(
        &self,
        what: &str,
        expected: impl Iterator<Item = (PartitionId, Option<V>)>,
    ) {
        let expected: BTreeMap<PartitionId, V> = expected
            .filter_map(|(key, value)| Some((key, value?)))
            .collect();
        assert_eq!(expected, self.value_of, "the {what} differ from the roles'");
        assert!(
            self.ordered.len() == self.value_of.len()
                && (self.ordered.iter()).all(|(value, key)| self.value_of.get(key) == Some(value)),
            "the {what} in order differ from each partition's"
        );
    }
}

#[cfg(test)]
mod tests {
    use weir_wire::domain::txn::{EndTxnRequest, EndTxnResponse};
    use weir_wire::domain::{ApiRequest, ApiResponse};
    use weir_wire::error::ErrorCode;

    use crate::testing::SingleNode;
    use crate::NodeConfig;

    // Goal: a node answers a transactional id's requests only while it holds the leader role
    // of the id's `__transaction_state` partition, whatever its image says. The Jepsen-style
    // txn workload (3 nodes, kill and partition, seed 106) found a restarted broker
    // answering EndTxn(abort) with NONE when the controller had unfenced it but its image
    // still named its old incarnation the partition's leader: it did not lead, so the
    // PrepareAbort record was never written (`put_txn` logged "not persisted" and went on),
    // no marker followed, and the producer's next transaction committed the aborted record.
    // Method: one node coordinating "tx" with a transaction open; its leader role of that
    // partition taken away (the image unchanged), then EndTxn(abort); then the role back.
    #[test]
    fn no_transaction_answer_without_the_coordinator_partitions_leadership() {
        let mut node = SingleNode::with_coordinators(NodeConfig::default());
        let ApiResponse::InitProducerId(init) = node.call(ApiRequest::InitProducerId(
            weir_wire::domain::InitProducerIdRequest {
                transactional_id: Some("tx".into()),
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
            },
        )) else {
            panic!("not InitProducerId")
        };
        assert_eq!(init.error, ErrorCode::NONE);
        let abort = ApiRequest::EndTxn(EndTxnRequest {
            transactional_id: "tx".into(),
            producer_id: init.producer_id,
            producer_epoch: init.producer_epoch,
            committed: false,
        });
        let key = (node.node.coordinator_partition("tx", true)).expect("the state topic exists");
        let role = (node.node.cluster.replication.replicas.get(&key).cloned())
            .expect("this node leads it");
        node.node.cluster.replication.remove(&key);
        let answer = node.call(abort.clone());
        let ApiResponse::EndTxn(EndTxnResponse { error, .. }) = answer else {
            panic!("{answer:?}")
        };
        assert_eq!(error, ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
        node.node.cluster.replication.set(key, role);
        let answer = node.call(abort);
        let ApiResponse::EndTxn(EndTxnResponse { error, .. }) = answer else {
            panic!("{answer:?}")
        };
        assert_eq!(error, ErrorCode::NONE, "answered once it leads again");
    }
}
