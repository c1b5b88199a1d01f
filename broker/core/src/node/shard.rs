//! Shards (docs/sharding.md, [`crate::shard`]): shard 0, the control shard, runs the
//! metadata quorum, heartbeats the controller and hands what it applied to the data shards
//! (shards 1 and up); a data shard runs no Raft and applies the same committed entries
//! through the same code ([`Node::release_raft`]), so every shard's image is the quorum's.
//!
//! Protocol: after each of shard 0's steps the driver takes [`Node::take_metadata_feed`]
//! and hands it to every data shard, in order. A data shard starts from
//! [`Node::metadata_feed_snapshot`] (the whole image), then follows the feeds.
//!
//! Invariants:
//! - A data shard's image never runs ahead of shard 0's, and never goes back: it applies
//!   an entry once, in index order, skipping what a snapshot or an earlier feed covered.
//! - A data shard takes roles only after shard 0 caught up (the image is then the
//!   quorum's), and only under shard 0's incarnation (the one the image registered).
//! - The entries shard 0 keeps for the next feed are bounded ([`FEED_PENDING_MAX`]): past
//!   that it drops them and sends the whole image instead.

use crate::cluster::image::MetadataImage;
use crate::raft::{Entry, Snapshot};
use crate::shard::{BrokerView, MetadataFeed};
use crate::time::Now;

use super::Node;

/// Entries shard 0 keeps for data shards between two takes; past it, the next feed is
/// the whole image.
pub const FEED_PENDING_MAX: usize = 4_096;

/// Shard 0's side: what the next feed carries.
#[derive(Debug, Default)]
pub(in crate::node) struct FeedOut {
    /// A snapshot shard 0 installed since the last take.
    snapshot: Option<Snapshot>,
    /// Entries applied since the last take, in index order.
    committed: Vec<Entry>,
    /// More than [`FEED_PENDING_MAX`] entries piled up: the next feed is the image.
    overflowed: bool,
    /// The broker state the last feed carried.
    sent: Option<BrokerView>,
}

impl Node {
    /// True for shards 1 and up, which follow shard 0's metadata instead of running Raft.
    pub(in crate::node) fn is_data_shard(&self) -> bool {
        self.config.shard.index() > 0
    }

    /// True when the active controller `controller` is this very node, so a message for it
    /// is a call. A data shard's own broker may be the controller, but the controller is
    /// that broker's shard 0: the message leaves as a peer message to the broker's own id,
    /// which the driver hands to shard 0.
    pub(in crate::node) fn controller_is_here(&self, controller: i32) -> bool {
        controller == self.config.node_id && !self.is_data_shard()
    }

    /// Shard 0 of several: keep what a Ready released for the data shards.
    pub(super) fn keep_for_feed(&mut self, snapshot: Option<&Snapshot>, committed: &[Entry]) {
        if self.config.shard.count() <= 1 || self.is_data_shard() {
            return;
        }
        let feed = &mut self.cluster.feed;
        if feed.overflowed {
            return;
        }
        if let Some(snapshot) = snapshot {
            // The image is replaced: what came before it is moot.
            feed.snapshot = Some(snapshot.clone());
            feed.committed.clear();
        }
        if feed.committed.len() + committed.len() > FEED_PENDING_MAX {
            feed.overflowed = true;
            feed.snapshot = None;
            feed.committed = Vec::new();
            return;
        }
        feed.committed.extend_from_slice(committed);
    }

    /// The shard of this broker that holds `topic`-`partition`, from the image; `None`
    /// for a topic or partition the image does not have.
    pub fn shard_for(&self, topic: &str, partition: i32) -> Option<u16> {
        let image = &self.cluster.meta.image;
        let id = *image.names.get(topic)?;
        let index = usize::try_from(partition).ok()?;
        let partitions = image.topics.get(&id)?.partitions.len();
        (index < partitions).then(|| {
            let key = crate::topic::PartitionId::new(uuid::Uuid::from_u128(id), index);
            crate::shard::shard_of(key, self.config.shard.count())
        })
    }

    /// Where requests go among this broker's shards as of this node's image
    /// (docs/sharding.md): the request router's table, rebuilt by the driver when the
    /// applied index moved.
    pub fn placement(&self) -> crate::shard::Placement {
        let image = &self.cluster.meta.image;
        let mut placement = crate::shard::Placement {
            count: self.config.shard.count(),
            applied_index: image.applied_index,
            ..crate::shard::Placement::default()
        };
        for (name, id) in &image.names {
            let Some(topic) = image.topics.get(id) else {
                continue;
            };
            let uuid = uuid::Uuid::from_u128(*id);
            let count = topic.partitions.len();
            placement.names.insert(name.clone(), (uuid, count));
            placement.ids.insert(uuid, count);
        }
        placement
    }

    /// The shard of this broker that coordinates group `key` (or, `transaction`, the
    /// transactional id `key`): the one holding its `__consumer_offsets` (or
    /// `__transaction_state`) partition. `None` while the image lacks that topic.
    pub fn coordinator_shard(&self, key: &str, transaction: bool) -> Option<u16> {
        let partition = self.coordinator_partition(key, transaction)?;
        Some(crate::shard::shard_of(partition, self.config.shard.count()))
    }

    /// The producer ids this node hands out: its broker's range (node id in the high
    /// bits, 2^40 ids), or in a broker of several shards, the shard's 2^32 of it (shard
    /// index next to the node id; [`crate::shard::SHARDS_MAX`] shards fill the range).
    pub(in crate::node) fn own_producer_ids(&self) -> std::ops::Range<i64> {
        let base = i64::from(self.config.node_id.max(0)) << 40;
        let shard = self.config.shard;
        if shard.count() <= 1 {
            return base..base.saturating_add(1 << 40);
        }
        let start = base.saturating_add(i64::from(shard.index()) << 32);
        start..start.saturating_add(1 << 32)
    }

    /// True when this shard holds `topic`-`partition` (every partition, unsharded).
    pub(in crate::node) fn holds_partition(&self, topic: &str, partition: i32) -> bool {
        let Some(&id) = self.topic_ids.get(topic) else {
            return self.config.shard.count() <= 1;
        };
        usize::try_from(partition).is_ok_and(|index| {
            self.config
                .shard
                .holds(crate::topic::PartitionId::new(id, index))
        })
    }

    /// The index of the last metadata-log entry this node's image applied.
    pub fn applied_metadata_index(&self) -> u64 {
        self.cluster.meta.image.applied_index
    }

    /// The broker's state as this node knows it.
    fn broker_view(&self) -> BrokerView {
        let cluster = &*self.cluster;
        BrokerView {
            incarnation: cluster.broker.incarnation,
            caught_up: cluster.meta.caught_up,
            fenced: cluster.broker.fenced,
            controller: cluster.meta.controller(),
        }
    }

    /// The whole image as a snapshot feed: what a data shard starts from.
    pub fn metadata_feed_snapshot(&self) -> MetadataFeed {
        let image = &self.cluster.meta.image;
        MetadataFeed {
            snapshot: Some(image_snapshot(image)),
            committed: Vec::new(),
            broker: self.broker_view(),
        }
    }

    /// Shard 0 of several: what the data shards need since the last take, `None` when
    /// nothing changed. The driver calls it after every step of shard 0 and hands the feed
    /// to every data shard in order. Always `None` on an unsharded broker and on a data
    /// shard.
    pub fn take_metadata_feed(&mut self) -> Option<MetadataFeed> {
        if self.config.shard.count() <= 1 || self.is_data_shard() {
            return None;
        }
        let broker = self.broker_view();
        let overflowed = std::mem::take(&mut self.cluster.feed.overflowed);
        let snapshot = if overflowed {
            Some(image_snapshot(&self.cluster.meta.image))
        } else {
            self.cluster.feed.snapshot.take()
        };
        let feed = &mut self.cluster.feed;
        let committed = std::mem::take(&mut feed.committed);
        if snapshot.is_none() && committed.is_empty() && feed.sent == Some(broker) {
            return None;
        }
        feed.sent = Some(broker);
        Some(MetadataFeed {
            snapshot,
            committed,
            broker,
        })
    }

    /// A data shard: apply what shard 0 applied (skipping what this shard has), then take
    /// on the broker's state. Roles follow at once; held requests whose wait is over are
    /// dispatched. Ignored (with a log line) by shard 0.
    pub fn handle_metadata_feed(&mut self, now: Now, feed: MetadataFeed) {
        if self.poisoned.is_some() {
            return;
        }
        if !self.is_data_shard() {
            tracing::warn!("a metadata feed reached shard 0, which makes them; ignored");
            return;
        }
        self.cluster_note_now(now);
        let applied = self.cluster.meta.image.applied_index;
        let snapshot = feed.snapshot.filter(|s| s.last_index > applied);
        let from = snapshot.as_ref().map_or(applied, |s| s.last_index);
        let committed: Vec<Entry> = (feed.committed.into_iter())
            .filter(|entry| entry.index > from)
            .collect();
        if snapshot.is_some() || !committed.is_empty() {
            self.release_raft(now, Vec::new(), snapshot, committed);
            if self.poisoned.is_some() {
                return;
            }
        }
        assert!(
            self.cluster.meta.image.applied_index >= applied,
            "a data shard's image went back"
        );
        let view = feed.broker;
        let cluster = &mut *self.cluster;
        let changed = cluster.broker.incarnation != view.incarnation
            || cluster.broker.fenced != view.fenced
            || (view.caught_up && !cluster.meta.caught_up);
        cluster.broker.incarnation = view.incarnation;
        cluster.broker.fenced = view.fenced;
        if !view.fenced {
            // What shard 0's heartbeat answers said; a data shard's own clock never
            // fences it (shard 0 does and tells it).
            cluster.broker.last_heartbeat_ok = Some(now.instant);
        }
        cluster.meta.fed_controller = view.controller;
        // Catch-up is one-way, as on shard 0.
        cluster.meta.caught_up |= view.caught_up;
        if changed && cluster.meta.caught_up {
            self.update_all_roles(now);
        }
        self.release_held_requests(now);
        self.flush_syncs(now);
    }
}

/// `image` as a snapshot a data shard installs (only `last_index` and `data` are read).
fn image_snapshot(image: &MetadataImage) -> Snapshot {
    Snapshot {
        last_index: image.applied_index,
        last_term: 0,
        data: image.encode(),
        voters: None,
    }
}
