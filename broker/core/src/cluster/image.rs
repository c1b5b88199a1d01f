//! The metadata image: the state every node derives from the committed metadata log.
//!
//! Records carry whole new states (a partition change lists the full new leader, epochs
//! and ISR), so applying is a plain assignment and replaying a prefix twice is harmless.
//! Invariants (checked by [`MetadataImage::invariants`]): names and ids map one to one; a
//! partition's leader, when set, is one of its replicas and in its ISR; the ISR is a subset
//! of the replicas; epochs never decrease (checked on apply).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
        PartitionState {
            leader: replicas.first().copied().unwrap_or(-1),
            isr: replicas.clone(),
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
            adding: Vec::new(),
            removing: Vec::new(),
        }
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
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decode a committed entry.
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
    PartitionChanged(u128, i32),
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
                ImageChange::TopicCreated(id)
            }
            MetaRecord::DeleteTopic { id } => match self.topics.remove(&id) {
                Some(topic) => {
                    self.names.remove(&topic.name);
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
                *slot = state;
                ImageChange::PartitionChanged(id, partition)
            }
        }
    }

    /// A partition's state.
    pub fn partition(&self, id: u128, partition: i32) -> Option<&PartitionState> {
        self.topics
            .get(&id)?
            .partitions
            .get(usize::try_from(partition).ok()?)
    }

    /// Unfenced brokers that serve clients, by id.
    pub fn live_brokers(&self) -> Vec<i32> {
        self.brokers
            .values()
            .filter(|b| !b.fenced && b.broker_role)
            .map(|b| b.id)
            .collect()
    }

    /// True when broker `id` is registered and not fenced.
    pub fn is_live(&self, id: i32) -> bool {
        self.brokers.get(&id).is_some_and(|b| !b.fenced)
    }

    /// Encode as a Raft snapshot.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decode a Raft snapshot.
    pub fn decode(bytes: &[u8]) -> Result<MetadataImage, String> {
        postcard::from_bytes(bytes).map_err(|e| e.to_string())
    }

    /// Assert the image's invariants.
    pub fn invariants(&self) {
        assert_eq!(self.topics.len(), self.names.len(), "image maps disagree");
        for (name, id) in &self.names {
            let topic = self.topics.get(id).expect("named topic exists");
            assert_eq!(&topic.name, name);
            for (index, p) in topic.partitions.iter().enumerate() {
                for member in &p.isr {
                    assert!(
                        p.replicas.contains(member),
                        "{name}-{index}: isr {:?} not within replicas {:?}",
                        p.isr,
                        p.replicas
                    );
                }
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
            ImageChange::PartitionChanged(7, 0)
        );
        assert_eq!(image.apply(2, change), ImageChange::None);
        assert_eq!(image.partition(7, 0), Some(&state));
        image.invariants();
        let bytes = image.encode();
        assert_eq!(MetadataImage::decode(&bytes), Ok(image));
    }
}
