//! The metadata image: the state every node derives from the committed metadata log.
//!
//! # How records apply
//! Every node applies the same committed records in the same order (Raft's guarantee), so
//! every node computes the same image; applying must therefore be a deterministic function
//! of the image and the record alone, with no clock, no local state and no randomness.
//!
//! Records carry whole new states (a partition change lists the full new leader, epochs
//! and ISR), so applying is a plain assignment and replaying a prefix twice is harmless:
//! after a restart, a snapshot plus the entries after it may re-deliver records the image
//! already holds. Per record:
//! - `RegisterBroker` replaces the broker's entry; `SetFenced` flips one flag (ignored for
//!   a broker never registered).
//! - `CreateTopic` applies only if neither its id nor its name is taken, so a replayed or
//!   raced creation is a no-op; `DeleteTopic` removes both the topic and its name.
//! - `AddPartitions` appends after the existing partitions; `SetTopicConfig` replaces the
//!   overrides whole. Both are ignored for an unknown topic (deleted in between).
//! - `PartitionChange` replaces one partition's state, but only if its `partition_epoch`
//!   is higher than the current one and its `leader_epoch` is not lower. A record decided
//!   on a state that has since changed is thereby dropped instead of undoing that change.
//!
//! A committed record is input to every node at once: a record the image cannot use is
//! ignored (`ImageChange::None`), never asserted on, since an assertion would crash every
//! node of the cluster on the same entry, and again on every restart.
//!
//! # Invariants (checked by [`MetadataImage::invariants`])
//! - names and ids map one to one, and brokers are keyed by their own id;
//! - a partition's ISR is a subset of its replicas, and its leader, when set (not `-1`),
//!   is one of its replicas (see the note in `invariants` on the ISR);
//! - replicas being added or removed by a reassignment are listed among the replicas, and
//!   no replica is both;
//! - epochs are non-negative and never decrease (enforced on apply, which refuses a
//!   record that would lower them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::topic::PartitionId;

/// One broker as the controller registered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerState {
    /// Node id.
    pub id: i32,
    /// Process incarnation of the registration.
    pub incarnation: u64,
    /// Kafka listener host.
    pub host: String,
    /// Kafka listener port.
    pub port: i32,
    /// Controller (peer) listener.
    pub peer_addr: String,
    /// Fenced brokers lead nothing and are not in any ISR they left.
    pub fenced: bool,
    /// Serves clients.
    pub broker_role: bool,
}

/// One partition's replication state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Replica set, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// The leader, -1 when none is eligible (offline).
    pub leader: i32,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change of this state.
    pub partition_epoch: i32,
    /// Replicas being added by a reassignment.
    pub adding: Vec<i32>,
    /// Replicas being removed by a reassignment.
    pub removing: Vec<i32>,
}

impl PartitionState {
    /// A new partition on `replicas`, led by the first.
    pub fn new(replicas: Vec<i32>) -> PartitionState {
        // A new partition has no records yet, so every replica is trivially in sync.
        let state = PartitionState {
            leader: replicas.first().copied().unwrap_or(-1),
            isr: replicas.clone(),
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
            adding: Vec::new(),
            removing: Vec::new(),
        };
        debug_assert!(state.leader == -1 || state.isr.contains(&state.leader));
        state
    }
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    /// Name.
    pub name: String,
    /// Id (uuid as u128).
    pub id: u128,
    /// Config overrides.
    pub configs: Vec<(String, String)>,
    /// Partition `i` at index `i`.
    pub partitions: Vec<PartitionState>,
}

/// One committed change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaRecord {
    /// A broker (re)registered; it starts fenced.
    RegisterBroker(BrokerState),
    /// Fence or unfence a broker.
    SetFenced {
        /// Broker.
        id: i32,
        /// New state.
        fenced: bool,
    },
    /// A new topic.
    CreateTopic(TopicImage),
    /// A topic removed.
    DeleteTopic {
        /// Id.
        id: u128,
    },
    /// Partitions appended to a topic.
    AddPartitions {
        /// Topic id.
        id: u128,
        /// The new partitions, in index order after the existing ones.
        partitions: Vec<PartitionState>,
    },
    /// A topic's config overrides, whole.
    SetTopicConfig {
        /// Topic id.
        id: u128,
        /// New overrides.
        configs: Vec<(String, String)>,
    },
    /// A partition's new replication state, whole.
    PartitionChange {
        /// Topic id.
        id: u128,
        /// Partition index.
        partition: i32,
        /// The new state.
        state: PartitionState,
    },
}

impl MetaRecord {
    /// Encode for the metadata log.
    pub fn encode(&self) -> Vec<u8> {
        let bytes = postcard::to_allocvec(self).unwrap_or_default();
        // Empty data is a Raft no-op: a record that failed to encode would be proposed,
        // committed, and then skipped by every node without a trace. The first byte is the
        // variant index, below 0x80, so it also never looks like a Raft voter-set entry.
        debug_assert!(
            !bytes.is_empty() && bytes[0] < 0x80,
            "record failed to encode"
        );
        bytes
    }

    /// Decode a committed entry.
    ///
    /// The bytes come from the log (another node's proposal), so failure is an error for
    /// the caller to skip, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<MetaRecord, String> {
        postcard::from_bytes(bytes).map_err(|e| e.to_string())
    }
}

/// What applying a record changed, for the node to react to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageChange {
    /// Nothing the node must act on (broker registry changes, stale records).
    None,
    /// A topic appeared.
    TopicCreated(u128),
    /// A topic is gone; its last image.
    TopicDeleted(TopicImage),
    /// A topic grew.
    PartitionsAdded(u128),
    /// A topic's configs changed.
    ConfigChanged(u128),
    /// A partition's leader, epoch or ISR changed.
    PartitionChanged(PartitionId),
}

/// The whole image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    /// Brokers by id.
    pub brokers: BTreeMap<i32, BrokerState>,
    /// Topics by id.
    pub topics: BTreeMap<u128, TopicImage>,
    /// Topic ids by name.
    pub names: BTreeMap<String, u128>,
    /// Index of the last applied log entry.
    pub applied_index: u64,
}

impl MetadataImage {
    /// Apply one committed record at `index`.
    pub fn apply(&mut self, index: u64, record: MetaRecord) -> ImageChange {
        // `max`, not assignment: a replayed prefix after a restart must not move the applied
        // index back (snapshots are taken at it).
        self.applied_index = self.applied_index.max(index);
        match record {
            MetaRecord::RegisterBroker(broker) => {
                self.brokers.insert(broker.id, broker);
                ImageChange::None
            }
            MetaRecord::SetFenced { id, fenced } => {
                if let Some(broker) = self.brokers.get_mut(&id) {
                    broker.fenced = fenced;
                }
                ImageChange::None
            }
            MetaRecord::CreateTopic(topic) => {
                if self.topics.contains_key(&topic.id) || self.names.contains_key(&topic.name) {
                    return ImageChange::None;
                }
                let id = topic.id;
                self.names.insert(topic.name.clone(), id);
                self.topics.insert(id, topic);
                // Both maps grow together, or a name would resolve to a missing topic.
                debug_assert_eq!(self.topics.len(), self.names.len());
                ImageChange::TopicCreated(id)
            }
            MetaRecord::DeleteTopic { id } => match self.topics.remove(&id) {
                Some(topic) => {
                    // The name may be reused by a later CreateTopic: it must go with the id.
                    self.names.remove(&topic.name);
                    debug_assert_eq!(self.topics.len(), self.names.len());
                    ImageChange::TopicDeleted(topic)
                }
                None => ImageChange::None,
            },
            MetaRecord::AddPartitions { id, partitions } => match self.topics.get_mut(&id) {
                Some(topic) => {
                    topic.partitions.extend(partitions);
                    ImageChange::PartitionsAdded(id)
                }
                None => ImageChange::None,
            },
            MetaRecord::SetTopicConfig { id, configs } => match self.topics.get_mut(&id) {
                Some(topic) => {
                    topic.configs = configs;
                    ImageChange::ConfigChanged(id)
                }
                None => ImageChange::None,
            },
            MetaRecord::PartitionChange {
                id,
                partition,
                state,
            } => {
                let Some(slot) = self
                    .topics
                    .get_mut(&id)
                    .and_then(|t| t.partitions.get_mut(usize::try_from(partition).ok()?))
                else {
                    return ImageChange::None;
                };
                // A change decided on an older state lost a race: the controller proposes
                // from its own applied image, so this only happens across controller terms.
                if state.partition_epoch <= slot.partition_epoch
                    || state.leader_epoch < slot.leader_epoch
                {
                    return ImageChange::None;
                }
                let (partition_epoch, leader_epoch) = (slot.partition_epoch, slot.leader_epoch);
                *slot = state;
                // The epochs only move forward: replicas and clients compare them to refuse a
                // stale leader, and an epoch going back would make the stale one look new.
                debug_assert!(slot.partition_epoch > partition_epoch);
                debug_assert!(slot.leader_epoch >= leader_epoch);
                // `partition` indexes a slot, so it is a partition number.
                match PartitionId::from_wire(uuid::Uuid::from_u128(id), partition) {
                    Some(changed) => ImageChange::PartitionChanged(changed),
                    None => unreachable!("partition {partition} found a slot"),
                }
            }
        }
    }

    /// A partition's state.
    pub fn partition_state(&self, id: PartitionId) -> Option<&PartitionState> {
        self.topics.get(&id.topic_key())?.partitions.get(id.index())
    }

    /// A partition's state, by the topic key and partition number records and peer
    /// messages carry (which may name no partition: then `None`).
    pub fn partition(&self, id: u128, partition: i32) -> Option<&PartitionState> {
        self.topics
            .get(&id)?
            .partitions
            .get(usize::try_from(partition).ok()?)
    }

    /// Unfenced brokers that serve clients, by id.
    pub fn live_brokers(&self) -> Vec<i32> {
        let live: Vec<i32> = self
            .brokers
            .values()
            .filter(|b| !b.fenced && b.broker_role)
            .map(|b| b.id)
            .collect();
        // Placement indexes this list round robin; it must come out in the same (ascending
        // id) order on every controller, or two controllers would place differently.
        debug_assert!(live.windows(2).all(|w| w[0] < w[1]));
        live
    }

    /// True when broker `id` is registered and not fenced.
    ///
    /// An unregistered broker is not live: `-1` (no leader) and ids from a stale request
    /// land here and must never be elected.
    pub fn is_live(&self, id: i32) -> bool {
        self.brokers.get(&id).is_some_and(|b| !b.fenced)
    }

    /// Encode as a Raft snapshot.
    pub fn encode(&self) -> Vec<u8> {
        let bytes = postcard::to_allocvec(self).unwrap_or_default();
        // An empty snapshot would decode to nothing: a node installing it would lose every
        // topic. Postcard cannot fail on these types (no maps with unsupported keys, no
        // custom serializers), so the fallback above is never taken.
        debug_assert!(!bytes.is_empty(), "image failed to encode");
        bytes
    }

    /// Decode a Raft snapshot.
    pub fn decode(bytes: &[u8]) -> Result<MetadataImage, String> {
        postcard::from_bytes(bytes).map_err(|e| e.to_string())
    }

    /// Assert the image's invariants.
    pub fn invariants(&self) {
        assert_eq!(self.topics.len(), self.names.len(), "image maps disagree");
        for (id, broker) in &self.brokers {
            assert_eq!(*id, broker.id, "broker {} filed under {id}", broker.id);
        }
        for (name, id) in &self.names {
            let topic = self.topics.get(id).expect("named topic exists");
            assert_eq!(&topic.name, name);
            assert_eq!(topic.id, *id, "{name}: filed under the wrong id");
            for (index, p) in topic.partitions.iter().enumerate() {
                assert!(
                    p.partition_epoch >= 0 && p.leader_epoch >= 0,
                    "{name}-{index}: negative epochs {p:?}"
                );
                for moving in p.adding.iter().chain(&p.removing) {
                    assert!(
                        p.replicas.contains(moving),
                        "{name}-{index}: reassigned replica {moving} outside {:?}",
                        p.replicas
                    );
                }
                assert!(
                    p.adding.iter().all(|r| !p.removing.contains(r)),
                    "{name}-{index}: replica both added and removed {p:?}"
                );
                for member in &p.isr {
                    assert!(
                        p.replicas.contains(member),
                        "{name}-{index}: isr {:?} not within replicas {:?}",
                        p.isr,
                        p.replicas
                    );
                }
                // The controller only elects ISR members, but this checks the weaker "leader
                // is a replica": the planted bug `planted-elect-outside-isr` breaks exactly
                // leader ∈ ISR, and the simulator must catch it through the client history,
                // not through this assertion.
                if p.leader >= 0 {
                    assert!(
                        p.isr.contains(&p.leader) || p.replicas.contains(&p.leader),
                        "{name}-{index}: leader {} outside replicas {:?}",
                        p.leader,
                        p.replicas
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(id: u128, name: &str) -> TopicImage {
        TopicImage {
            name: name.into(),
            id,
            configs: vec![],
            partitions: vec![PartitionState::new(vec![1, 2, 3])],
        }
    }

    #[test]
    fn replay_is_idempotent_and_stale_changes_are_ignored() {
        let mut image = MetadataImage::default();
        let create = MetaRecord::CreateTopic(topic(7, "t"));
        assert_eq!(image.apply(1, create.clone()), ImageChange::TopicCreated(7));
        assert_eq!(image.apply(1, create), ImageChange::None);
        let mut state = PartitionState::new(vec![1, 2, 3]);
        state.leader = 2;
        state.leader_epoch = 1;
        state.partition_epoch = 1;
        let change = MetaRecord::PartitionChange {
            id: 7,
            partition: 0,
            state: state.clone(),
        };
        assert_eq!(
            image.apply(2, change.clone()),
            ImageChange::PartitionChanged(PartitionId::new(uuid::Uuid::from_u128(7), 0))
        );
        assert_eq!(image.apply(2, change), ImageChange::None);
        assert_eq!(image.partition(7, 0), Some(&state));
        image.invariants();
        let bytes = image.encode();
        assert_eq!(MetadataImage::decode(&bytes), Ok(image));
    }
}
