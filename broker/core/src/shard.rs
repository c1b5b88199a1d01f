//! Shards: which of its broker's node loops holds a partition (docs/sharding.md).
//!
//! A broker may run `count` node loops ("shards"), each a [`crate::Node`] with its own
//! storage. A partition lives in exactly one of them, [`shard_of`]; a node takes a
//! partition role (leader or follower, and with it the group or transaction coordination
//! of an internal partition) only for the partitions of its own shard. Everything that is
//! about the broker as a whole (the metadata image, Metadata answers, FindCoordinator, the
//! controller's decisions) stays per broker: the image still names the broker the leader.
//!
//! The mapping is persisted in effect (a shard's storage holds its partitions' data), so
//! [`shard_of`] must never change for a given `count`.
//!
//! Invariant: with `count == 1` every partition is in shard 0, so a broker of one shard
//! (the default) holds every partition it leads or follows, as before shards existed.

use crate::cluster::peer::PeerMessage;
use crate::raft::{Entry, Snapshot};
use crate::topic::PartitionId;

/// A shard's correlation ids (requests to peers) carry its index in these bits, so the
/// answer, which names only the broker, finds the shard that asked ([`peer_route`]).
pub const CORRELATION_SHARD_SHIFT: u32 = 48;

/// The first correlation id of shard `index` (0 for shard 0: an unsharded broker's ids
/// are what they were).
pub fn correlation_base(index: u16) -> u64 {
    u64::from(index) << CORRELATION_SHARD_SHIFT
}

/// Where a peer message for this broker goes among its shards ([`peer_route`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerRoute {
    /// To this shard.
    Shard(u16),
    /// To the shard of partition `partition` of the topic named `topic` (the message names
    /// the topic, not its id: the driver looks the id up in the image).
    Topic {
        /// The topic's name.
        topic: String,
        /// The partition.
        partition: i32,
    },
}

/// Where a peer message (from another broker, or from another shard of this one) goes in
/// a broker of `count` shards: what concerns the metadata quorum, the controller or the
/// broker's membership to shard 0; what concerns a partition to its shard; an answer to
/// the shard whose correlation id it carries. With one shard, always shard 0.
pub fn peer_route(message: &PeerMessage, count: u16) -> PeerRoute {
    if count <= 1 {
        return PeerRoute::Shard(0);
    }
    let partition = |topic_id: &[u8; 16], partition: i32| {
        let id = uuid::Uuid::from_u128(u128::from_be_bytes(*topic_id));
        match usize::try_from(partition) {
            Ok(index) => PeerRoute::Shard(shard_of(PartitionId::new(id, index), count)),
            // A malformed message: shard 0 refuses it like any other.
            Err(_) => PeerRoute::Shard(0),
        }
    };
    let asked_by = |correlation: u64| {
        let shard = (correlation >> CORRELATION_SHARD_SHIFT) & 0xffff;
        PeerRoute::Shard(
            u16::try_from(shard)
                .ok()
                .filter(|s| *s < count)
                .unwrap_or(0),
        )
    };
    match message {
        PeerMessage::Fetch(fetch) => partition(&fetch.topic_id, fetch.partition),
        PeerMessage::FetchReply(reply) => partition(&reply.topic_id, reply.partition),
        PeerMessage::EpochQuery(query) => partition(&query.topic_id, query.partition),
        PeerMessage::EpochReply(reply) => partition(&reply.topic_id, reply.partition),
        PeerMessage::WriteMarker(request) => PeerRoute::Topic {
            topic: request.topic.clone(),
            partition: request.partition,
        },
        PeerMessage::ForwardReply { correlation, .. }
        | PeerMessage::MarkerReply { correlation, .. } => asked_by(*correlation),
        PeerMessage::Raft(_)
        | PeerMessage::Heartbeat(_)
        | PeerMessage::HeartbeatReply { .. }
        | PeerMessage::AutoCreate { .. }
        | PeerMessage::AlterIsr(_)
        | PeerMessage::Forward { .. }
        | PeerMessage::ForwardAs { .. }
        | PeerMessage::RemoteSegmentUploaded(_)
        | PeerMessage::RemoteSegmentsExpired(_)
        | PeerMessage::ControlledShutdown(_) => PeerRoute::Shard(0),
    }
}

/// What shard 0 hands a data shard ([`crate::Node::take_metadata_feed`],
/// [`crate::Node::handle_metadata_feed`]): the metadata records it applied since the last
/// feed, and the broker's own state that only shard 0 learns (it alone heartbeats the
/// controller). Feeds overlap harmlessly: a data shard skips what it already applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataFeed {
    /// A whole image to install before `committed` (a data shard's first feed, or after
    /// shard 0 installed a snapshot or dropped entries no driver took in time).
    pub snapshot: Option<Snapshot>,
    /// Committed metadata-log entries shard 0 applied, in index order.
    pub committed: Vec<Entry>,
    /// The broker's state as shard 0 knows it after applying them.
    pub broker: BrokerView,
}

/// The broker's own state, which shard 0 learns and data shards follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerView {
    /// This start's incarnation: a role is taken only where the image registered it.
    pub incarnation: u64,
    /// The image caught up with the metadata quorum after start: roles may be taken.
    pub caught_up: bool,
    /// The controller's committed fencing state (or self-fencing).
    pub fenced: bool,
    /// The active controller, as shard 0 knows it.
    pub controller: Option<i32>,
}

/// The most shards a broker may run (`num.shards`).
pub const SHARDS_MAX: u16 = 256;

/// Which shard of its broker a node is, and how many the broker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u16,
    count: u16,
}

impl Default for Shard {
    fn default() -> Self {
        Shard::ONLY
    }
}

impl Shard {
    /// The one shard of an unsharded broker: it holds every partition.
    pub const ONLY: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`; `None` unless `index < count <= SHARDS_MAX`.
    pub fn new(index: u16, count: u16) -> Option<Shard> {
        (index < count && count <= SHARDS_MAX).then_some(Shard { index, count })
    }

    /// This shard's index; shard 0 is the control shard (the metadata quorum).
    pub fn index(self) -> u16 {
        self.index
    }

    /// How many shards the broker runs.
    pub fn count(self) -> u16 {
        self.count
    }

    /// True when partition `id` lives in this shard.
    pub fn holds(self, id: PartitionId) -> bool {
        shard_of(id, self.count) == self.index
    }
}

/// The shard of `count` that partition `id` lives in.
///
/// A topic's partitions go round-robin over the shards from a start drawn from the topic
/// id, so a topic of `n` partitions puts `n / count` or one more in every shard (a hash
/// per partition would leave some shards with more by chance), and many small topics do
/// not all start in shard 0. `count` 0 is treated as 1.
pub fn shard_of(id: PartitionId, count: u16) -> u16 {
    let count = u64::from(count.max(1));
    if count == 1 {
        return 0;
    }
    let topic = id.topic.as_u128();
    let start = mix((topic as u64) ^ ((topic >> 64) as u64).rotate_left(29));
    let index = u64::try_from(id.index()).unwrap_or(u64::MAX);
    // `start % count + index % count` cannot overflow and equals `(start + index) % count`.
    ((start % count + index % count) % count) as u16
}

/// Partition keys (the storage keys of a partition's log) of shard `index` start here:
/// each shard allocates keys in its own range, so a key names its shard, and one reader
/// over every shard's storage finds a key's store ([`shard_of_key`]). Shard 0's range
/// starts at 0, so an unsharded broker's keys are what they were.
pub const PARTITION_KEY_SHARD_SHIFT: u32 = 48;

/// The first partition key of shard `index` (its keys are below the next shard's).
pub fn partition_key_base(index: u16) -> u64 {
    u64::from(index) << PARTITION_KEY_SHARD_SHIFT
}

/// The shard whose storage holds partition key `key`.
pub fn shard_of_key(key: u64) -> u16 {
    u16::try_from(key >> PARTITION_KEY_SHARD_SHIFT).unwrap_or(u16::MAX)
}

/// Where requests go among a broker's shards, as of one metadata image: what a request
/// router, which runs outside the node loops, needs to compute [`shard_of`] and a
/// coordinator's shard ([`crate::Node::placement`] builds it from the image).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// The broker's shard count (0 is taken as 1).
    pub count: u16,
    /// The image's applied index when this was built.
    pub applied_index: u64,
    /// Topic name -> (id, partition count).
    pub names: std::collections::BTreeMap<String, (uuid::Uuid, usize)>,
    /// Topic id -> partition count.
    pub ids: std::collections::BTreeMap<uuid::Uuid, usize>,
}

impl Placement {
    /// The shard of partition `partition` of the topic named `topic`; `None` when the
    /// image has no such partition.
    pub fn by_name(&self, topic: &str, partition: i32) -> Option<u16> {
        let (id, count) = *self.names.get(topic)?;
        self.place(id, count, partition)
    }

    /// The shard of partition `partition` of topic `id`; `None` when the image has no such
    /// partition.
    pub fn by_id(&self, id: uuid::Uuid, partition: i32) -> Option<u16> {
        let count = *self.ids.get(&id)?;
        self.place(id, count, partition)
    }

    /// The shard coordinating group (or, with `transaction`, transactional id) `key`: the
    /// shard of its `__consumer_offsets` (`__transaction_state`) partition, computed as
    /// Kafka's FindCoordinator does. `None` before that topic exists.
    pub fn coordinator(&self, key: &str, transaction: bool) -> Option<u16> {
        let topic = if transaction {
            crate::txn_log::TXN_STATE_TOPIC
        } else {
            crate::group::offsets_log::OFFSETS_TOPIC
        };
        let (id, count) = *self.names.get(topic)?;
        let partitions = i32::try_from(count).ok().filter(|n| *n > 0)?;
        let index = crate::group::offsets_log::partition_for(key, partitions);
        self.place(id, count, index)
    }

    fn place(&self, id: uuid::Uuid, count: usize, partition: i32) -> Option<u16> {
        let index = usize::try_from(partition).ok().filter(|i| *i < count)?;
        Some(shard_of(PartitionId::new(id, index), self.count))
    }
}

/// splitmix64's finalizer: a fixed bijection that spreads every input bit over the output.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn id(topic: u128, index: usize) -> PartitionId {
        PartitionId::new(Uuid::from_u128(topic), index)
    }

    // Goal: one shard holds everything, as before shards existed.
    #[test]
    fn one_shard_holds_every_partition() {
        for topic in [0u128, 1, u128::MAX, 0x1234_5678_9abc_def0] {
            for index in 0..100 {
                assert_eq!(shard_of(id(topic, index), 1), 0);
                assert!(Shard::ONLY.holds(id(topic, index)));
            }
        }
        assert_eq!(shard_of(id(7, 3), 0), 0);
    }

    // Goal: each partition is in exactly one shard, and a topic's partitions are spread
    // evenly (within one) over the shards.
    #[test]
    fn a_topic_is_spread_evenly_and_each_partition_held_once() {
        for count in 2..=8u16 {
            for topic in 0..50u128 {
                let topic = topic.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
                let mut per_shard = vec![0usize; usize::from(count)];
                for index in 0..37 {
                    let holders = (0..count)
                        .filter(|s| {
                            Shard::new(*s, count).is_some_and(|s| s.holds(id(topic, index)))
                        })
                        .count();
                    assert_eq!(holders, 1);
                    per_shard[usize::from(shard_of(id(topic, index), count))] += 1;
                }
                let (min, max) = (per_shard.iter().min(), per_shard.iter().max());
                assert!(
                    max.zip(min).is_some_and(|(max, min)| max - min <= 1),
                    "{per_shard:?}"
                );
            }
        }
    }

    // Goal: the mapping is persisted in effect, so it must not change between builds.
    // These values were computed when the mapping was written; a change here strands data.
    #[test]
    fn the_mapping_is_stable() {
        let topic = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128;
        let got: Vec<u16> = (0..8).map(|i| shard_of(id(topic, i), 3)).collect();
        assert_eq!(got, [2, 0, 1, 2, 0, 1, 2, 0]);
        let got: Vec<u16> = (0..8).map(|i| shard_of(id(topic, i), 4)).collect();
        assert_eq!(got, [1, 2, 3, 0, 1, 2, 3, 0]);
    }

    // Goal: peer messages reach the shard they concern: a partition's to its shard, an
    // answer to the shard whose correlation id it carries, the rest to shard 0; with one
    // shard, everything to shard 0.
    #[test]
    fn peer_messages_route_to_their_shard() {
        use crate::cluster::peer::{EpochQuery, MarkerRequest};
        let topic = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128;
        let query = |partition| {
            PeerMessage::EpochQuery(EpochQuery {
                correlation: 1,
                topic_id: topic.to_be_bytes(),
                partition,
                current_leader_epoch: 0,
                epoch: 0,
            })
        };
        for partition in 0..8 {
            let expected = shard_of(id(topic, partition as usize), 3);
            assert_eq!(peer_route(&query(partition), 3), PeerRoute::Shard(expected));
            assert_eq!(peer_route(&query(partition), 1), PeerRoute::Shard(0));
        }
        assert_eq!(peer_route(&query(-1), 3), PeerRoute::Shard(0), "malformed");
        for shard in 0..3u16 {
            let correlation = correlation_base(shard) + 17;
            let reply = PeerMessage::MarkerReply {
                correlation,
                error: 0,
            };
            assert_eq!(peer_route(&reply, 3), PeerRoute::Shard(shard));
            let reply = PeerMessage::ForwardReply {
                correlation,
                frame: Vec::new(),
            };
            assert_eq!(peer_route(&reply, 3), PeerRoute::Shard(shard));
        }
        let stray = PeerMessage::MarkerReply {
            correlation: correlation_base(9) + 1,
            error: 0,
        };
        assert_eq!(peer_route(&stray, 3), PeerRoute::Shard(0), "no such shard");
        let marker = PeerMessage::WriteMarker(MarkerRequest {
            correlation: 5,
            topic: "t".into(),
            partition: 2,
            producer_id: 1,
            producer_epoch: 0,
            committed: true,
        });
        let by_name = PeerRoute::Topic {
            topic: "t".into(),
            partition: 2,
        };
        assert_eq!(peer_route(&marker, 2), by_name);
        let create = PeerMessage::AutoCreate {
            names: vec!["t".into()],
        };
        assert_eq!(peer_route(&create, 4), PeerRoute::Shard(0));
        assert_eq!(
            correlation_base(0),
            0,
            "an unsharded broker's ids are unchanged"
        );
    }

    #[test]
    fn new_refuses_out_of_range() {
        assert!(Shard::new(0, 0).is_none());
        assert!(Shard::new(2, 2).is_none());
        assert!(Shard::new(0, SHARDS_MAX + 1).is_none());
        assert_eq!(Shard::new(0, 1), Some(Shard::ONLY));
    }
}
