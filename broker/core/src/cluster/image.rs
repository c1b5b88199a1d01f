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
//! - `RemoteSegmentUploaded` adds one segment to a partition's remote log (tiered storage,
//!   KIP-405) under the rule of [`MetadataImage::check_remote_upload`]: the record is from
//!   the partition's current leader at its current leader epoch, and the segment exactly
//!   continues the remote log (or, on an empty one, starts at or after its start). The
//!   same segment again is a no-op, anything else is dropped (its object is then an orphan
//!   for the object store's cleaner). `RemoteSegmentsDeleted` drops the segments that end
//!   at or below its bound and moves the remote log start up to it; a bound not above the
//!   start is a no-op. `DeleteTopic` drops the topic's remote logs with it; the change
//!   hands them to the node, which owns deleting the objects.
//! - `ScramCredentialUpserted` sets a user's credential for one mechanism (replacing any
//!   previous one) and `ScramCredentialDeleted` removes it (a no-op when absent; a user
//!   left without credentials leaves the map). The controller validates both (KIP-554's
//!   rules, `node/scram.rs`); applying is a plain assignment, so replay is idempotent.
//! - `AclCreated` inserts an ACL into the set and `AclDeleted` removes it (set operations:
//!   replay is idempotent). The controller validates creations (`acl::validate_binding`,
//!   `node/acl.rs`); an invalid one is dropped at apply, on every node alike.
//!
//! # Remote logs
//! A partition's remote log lives beside its [`PartitionState`], not in it: a
//! `PartitionChange` carries a whole partition state decided by the controller, and a
//! remote list inside it would be overwritten by a change decided before an upload
//! applied. Only partitions that ever had a segment uploaded have an entry, so an image
//! without tiered topics costs one empty map. The records carry whole segments, so replay
//! is idempotent like every other record here.
//!
//! # Snapshot encoding
//! [`MetadataImage::encode`] writes [`IMAGE_MAGIC`], a version byte and the postcard of
//! the image. Postcard is not self-describing, so the version says which shape follows.
//! Version 2 added the SCRAM credentials; a version 1 snapshot decodes with none.
//! Version 3 added the ACLs; a version 2 (or older) snapshot decodes with none.
//! Snapshots written before versions existed (version 0: the image without remote logs)
//! start with the postcard length of the broker map, which can never begin with the magic
//! (see [`IMAGE_MAGIC`]); [`MetadataImage::decode`] reads both.
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
//!   record that would lower them);
//! - remote logs belong to existing partitions; a remote log's segments are keyed by
//!   their base offset, are non-empty (`0 <= base < end`), ordered and non-overlapping,
//!   their leader epochs never decrease along the log and never pass the partition's
//!   current leader epoch, and the remote log start lies within the first segment (or,
//!   with no segment left, is where the next upload may start). That a segment lies below
//!   its leader's high watermark is the uploader's promise and not checkable here.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::acl::Acl;
use crate::cluster::features::{self, VersionRange};
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

/// One closed segment of a partition's log copied to the object store (KIP-405's
/// `RemoteLogSegmentMetadata`, reduced to what Weir serves from).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSegment {
    /// First offset in the segment.
    pub base_offset: i64,
    /// One past the last offset in the segment (exclusive end).
    pub end_offset: i64,
    /// Leader epoch of the segment's last batch, the largest epoch in it (epochs grow
    /// with offsets, so the list's epochs never decrease).
    pub leader_epoch: i32,
    /// Bytes of the object.
    pub size_bytes: u64,
    /// Largest record timestamp in the segment (time-based remote retention).
    pub max_timestamp: i64,
    /// The object's key in the store, chosen by the uploader.
    pub object_key: String,
    /// The broker that uploaded it.
    pub uploader: i32,
}

/// One partition's remote log: its uploaded segments by base offset and its start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteLog {
    /// The remote log start offset: the first offset remote storage serves. With
    /// segments, it lies within the first one (remote retention or a deletion of records
    /// may cut into it); with none left, the next upload starts at or after it.
    pub log_start_offset: i64,
    /// The segments, keyed by base offset; ordered, non-overlapping.
    pub segments: BTreeMap<i64, RemoteSegment>,
}

impl RemoteLog {
    /// One past the last remote offset; the start when no segment is left.
    pub fn end_offset(&self) -> i64 {
        self.segments
            .values()
            .next_back()
            .map_or(self.log_start_offset, |s| s.end_offset)
    }

    /// Total bytes of the segments (the "remote size" of the partition).
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size_bytes).sum()
    }

    /// The segment that serves `offset`: the one holding it, or, for an offset in a gap
    /// between segments, the next one (as a local log serves a compacted gap). `None`
    /// below the start or at and past the end.
    pub fn segment_for(&self, offset: i64) -> Option<&RemoteSegment> {
        if offset < self.log_start_offset {
            return None;
        }
        if let Some((_, holding)) = self.segments.range(..=offset).next_back() {
            if offset < holding.end_offset {
                return Some(holding);
            }
        }
        self.segments.range(offset..).next().map(|(_, next)| next)
    }

    /// Where the next segment must start: `Some(end)` to continue the log exactly, or,
    /// with no segment, `None` with any base at or after the start admitted.
    fn continues_at(&self) -> Option<i64> {
        self.segments.values().next_back().map(|s| s.end_offset)
    }
}

/// How [`MetadataImage::check_remote_upload`] judges a segment a leader reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadCheck {
    /// Applying it adds the segment.
    Admitted,
    /// The remote log holds exactly this segment already (a resent report).
    AlreadyHeld,
    /// Applying it changes nothing: its object is an orphan.
    Refused(UploadRefusal),
}

/// Why an upload report is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UploadRefusal {
    /// No such topic or partition (deleted, say).
    #[error("unknown partition")]
    UnknownPartition,
    /// Not `0 <= base < end`, or its data epoch is past the epoch it was uploaded in.
    #[error("malformed segment")]
    Malformed,
    /// The uploader is not the partition's current leader at the quoted epoch.
    #[error("stale or foreign leader")]
    StaleLeader,
    /// It does not exactly continue the remote log (an overlap, or a gap after a segment),
    /// or it starts below the remote log start.
    #[error("segment does not continue the remote log")]
    NotContiguous,
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
    // New variants go last: the variant index is what postcard writes, and logs written
    // by earlier versions must keep decoding. Each new kind also needs a metadata.version
    // level (`MetaRecord::required_metadata_version`, `cluster::features`).
    /// A leader uploaded a closed segment (see [`MetadataImage::check_remote_upload`]).
    RemoteSegmentUploaded {
        /// Topic id.
        id: u128,
        /// Partition index.
        partition: i32,
        /// The leader epoch the uploader led at: a record from another epoch is dropped.
        leader_epoch: i32,
        /// The segment.
        segment: RemoteSegment,
    },
    /// Remote retention deleted a prefix of a partition's remote log.
    RemoteSegmentsDeleted {
        /// Topic id.
        id: u128,
        /// Partition index.
        partition: i32,
        /// Segments ending at or below this go; the remote log start moves up to it.
        below: i64,
    },
    /// A user's SCRAM credential for one mechanism, added or replaced (KIP-554).
    ScramCredentialUpserted {
        /// User name.
        user: String,
        /// KIP-554 mechanism code (1 = SCRAM-SHA-256, 2 = SCRAM-SHA-512).
        mechanism: i8,
        /// The salted credential (never the password).
        credential: ScramEntry,
    },
    /// A user's SCRAM credential for one mechanism, removed.
    ScramCredentialDeleted {
        /// User name.
        user: String,
        /// KIP-554 mechanism code.
        mechanism: i8,
    },
    /// An ACL added (CreateAcls); the same ACL again is a no-op.
    AclCreated {
        /// The ACL.
        acl: Acl,
    },
    /// An ACL removed (DeleteAcls); a no-op when absent.
    AclDeleted {
        /// The ACL.
        acl: Acl,
    },
    // Records below need metadata.version 2 (see `cluster::features`): the controller
    // writes them only once every node's build decodes them.
    /// A feature's finalized level (UpdateFeatures; `metadata.version` at a fresh
    /// cluster's first proposal). Levels only go up (downgrades are refused).
    FeatureLevel {
        /// Feature name (`metadata.version`).
        name: String,
        /// The finalized level.
        level: u16,
    },
    /// [`MetaRecord::RegisterBroker`] with the node's supported `metadata.version` range
    /// (level 2 onwards).
    RegisterBrokerVersioned {
        /// The registration.
        broker: BrokerState,
        /// What the node's build supports.
        supported: VersionRange,
    },
}

/// A SCRAM credential as every node keeps it (RFC 5802's server side): the salt and
/// iteration count a client needs, the stored key that verifies its proof and the server
/// key that proves the broker to it. Neither the password nor the salted password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramEntry {
    /// The salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// `H(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `ServerKey`.
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramEntry {
    // Keys are password equivalents for an attacker who can replay: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramEntry")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
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

    /// The `metadata.version` a controller needs finalized to write this record (see
    /// `cluster::features`). A `FeatureLevel` record needs the level it finalizes.
    pub fn required_metadata_version(&self) -> u16 {
        match self {
            MetaRecord::FeatureLevel { name, level } if name == features::METADATA_VERSION => {
                *level
            }
            MetaRecord::FeatureLevel { .. } | MetaRecord::RegisterBrokerVersioned { .. } => 2,
            // No catch-all: a new record kind must be given its level (the next one, with
            // `features::METADATA_VERSION_MAX` raised to it and its row in the table).
            MetaRecord::RegisterBroker(_)
            | MetaRecord::SetFenced { .. }
            | MetaRecord::CreateTopic(_)
            | MetaRecord::DeleteTopic { .. }
            | MetaRecord::AddPartitions { .. }
            | MetaRecord::SetTopicConfig { .. }
            | MetaRecord::PartitionChange { .. }
            | MetaRecord::RemoteSegmentUploaded { .. }
            | MetaRecord::RemoteSegmentsDeleted { .. }
            | MetaRecord::ScramCredentialUpserted { .. }
            | MetaRecord::ScramCredentialDeleted { .. }
            | MetaRecord::AclCreated { .. }
            | MetaRecord::AclDeleted { .. } => features::METADATA_VERSION_LEGACY,
        }
    }

    /// The registration a record carries, in either form.
    pub fn registered_broker(&self) -> Option<&BrokerState> {
        match self {
            MetaRecord::RegisterBroker(broker)
            | MetaRecord::RegisterBrokerVersioned { broker, .. } => Some(broker),
            _ => None,
        }
    }

    /// Decode a committed entry.
    ///
    /// The bytes come from the log (another node's proposal), so failure is an error,
    /// never a panic; the node stops on it (skipping would leave it with an image the
    /// others do not have).
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
    /// A topic is gone: its last image and its remote logs by partition, whose objects
    /// the node deletes.
    TopicDeleted {
        /// The topic as it was.
        topic: TopicImage,
        /// Its partitions' remote logs as they were.
        remote: BTreeMap<i32, RemoteLog>,
    },
    /// A topic grew.
    PartitionsAdded(u128),
    /// A topic's configs changed.
    ConfigChanged(u128),
    /// A partition's leader, epoch or ISR changed.
    PartitionChanged(PartitionId),
    /// A finalized feature level changed.
    FeaturesChanged,
    /// A partition's remote log changed: a segment was added, or segments were deleted
    /// (`removed`, whose objects the node deletes).
    RemoteChanged {
        /// The partition.
        partition: PartitionId,
        /// Segments no longer in the remote log.
        removed: Vec<RemoteSegment>,
    },
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
    /// Remote logs by topic id, then partition index; only partitions that have had a
    /// segment uploaded appear, and no topic maps to an empty map.
    pub remote: BTreeMap<u128, BTreeMap<i32, RemoteLog>>,
    /// SCRAM credentials by user, then KIP-554 mechanism code; no user maps to an empty
    /// map (version 2).
    pub scram: BTreeMap<String, BTreeMap<i8, ScramEntry>>,
    /// Every ACL, ordered by resource type, then name (what the authorizer ranges over);
    /// each passed `acl::validate_binding` (version 3).
    pub acls: BTreeSet<Acl>,
    /// Finalized feature levels by name (`metadata.version`; absent: level 1). Version 4.
    pub features: BTreeMap<String, u16>,
    /// Supported `metadata.version` ranges of nodes registered at level 2 or above, by
    /// node id (a node registered at level 1 told only the controller). Version 4.
    pub broker_versions: BTreeMap<i32, VersionRange>,
}

/// What opens an encoded image of version 1 or later, followed by the version byte.
///
/// Version 0 (no version) is the bare postcard of the image, which begins with the
/// varint length of the broker map. Five `0xff` bytes begin only a varint of at least
/// 2^35, and a map keyed by `i32` holds at most 2^32 entries: no version 0 image starts
/// like this.
pub const IMAGE_MAGIC: [u8; 5] = [0xff; 5];
/// The newest encoding [`MetadataImage::encode`] writes: 1 added the remote logs, 2 the
/// SCRAM credentials, 3 the ACLs, 4 the feature levels and nodes' supported ranges
/// (`metadata.version` 2). An image without those is still written as version 3, which
/// builds without levels read: they may follow a cluster at level 1.
pub const IMAGE_VERSION: u8 = 4;

/// The image as version 3 encoded it: the fields of [`MetadataImage`] before feature
/// levels, in their order.
#[derive(Serialize, Deserialize)]
struct ImageV3<B, T, N, R, S, A> {
    brokers: B,
    topics: T,
    names: N,
    applied_index: u64,
    remote: R,
    scram: S,
    acls: A,
}

/// What version 3 decodes into.
type ImageV3Owned = ImageV3<
    BTreeMap<i32, BrokerState>,
    BTreeMap<u128, TopicImage>,
    BTreeMap<String, u128>,
    BTreeMap<u128, BTreeMap<i32, RemoteLog>>,
    BTreeMap<String, BTreeMap<i8, ScramEntry>>,
    BTreeSet<Acl>,
>;

impl From<ImageV3Owned> for MetadataImage {
    fn from(v3: ImageV3Owned) -> MetadataImage {
        MetadataImage {
            brokers: v3.brokers,
            topics: v3.topics,
            names: v3.names,
            applied_index: v3.applied_index,
            remote: v3.remote,
            scram: v3.scram,
            acls: v3.acls,
            features: BTreeMap::new(),
            broker_versions: BTreeMap::new(),
        }
    }
}

/// The image as version 2 encoded it: the fields of [`MetadataImage`] before ACLs, in
/// their order. Only ever decoded.
#[derive(Deserialize)]
struct ImageV2 {
    brokers: BTreeMap<i32, BrokerState>,
    topics: BTreeMap<u128, TopicImage>,
    names: BTreeMap<String, u128>,
    applied_index: u64,
    remote: BTreeMap<u128, BTreeMap<i32, RemoteLog>>,
    scram: BTreeMap<String, BTreeMap<i8, ScramEntry>>,
}

impl From<ImageV2> for MetadataImage {
    fn from(v2: ImageV2) -> MetadataImage {
        MetadataImage {
            brokers: v2.brokers,
            topics: v2.topics,
            names: v2.names,
            applied_index: v2.applied_index,
            remote: v2.remote,
            scram: v2.scram,
            acls: BTreeSet::new(),
            features: BTreeMap::new(),
            broker_versions: BTreeMap::new(),
        }
    }
}

/// The image as version 1 encoded it: the fields of [`MetadataImage`] before SCRAM
/// credentials, in their order. Only ever decoded.
#[derive(Deserialize)]
struct ImageV1 {
    brokers: BTreeMap<i32, BrokerState>,
    topics: BTreeMap<u128, TopicImage>,
    names: BTreeMap<String, u128>,
    applied_index: u64,
    remote: BTreeMap<u128, BTreeMap<i32, RemoteLog>>,
}

impl From<ImageV1> for MetadataImage {
    fn from(v1: ImageV1) -> MetadataImage {
        MetadataImage {
            brokers: v1.brokers,
            topics: v1.topics,
            names: v1.names,
            applied_index: v1.applied_index,
            remote: v1.remote,
            scram: BTreeMap::new(),
            acls: BTreeSet::new(),
            features: BTreeMap::new(),
            broker_versions: BTreeMap::new(),
        }
    }
}

/// The image as version 0 encoded it: the fields of [`MetadataImage`] before remote logs,
/// in their order. Only ever decoded.
#[derive(Deserialize)]
struct ImageV0 {
    brokers: BTreeMap<i32, BrokerState>,
    topics: BTreeMap<u128, TopicImage>,
    names: BTreeMap<String, u128>,
    applied_index: u64,
}

impl From<ImageV0> for MetadataImage {
    fn from(v0: ImageV0) -> MetadataImage {
        MetadataImage {
            brokers: v0.brokers,
            topics: v0.topics,
            names: v0.names,
            applied_index: v0.applied_index,
            remote: BTreeMap::new(),
            scram: BTreeMap::new(),
            acls: BTreeSet::new(),
            features: BTreeMap::new(),
            broker_versions: BTreeMap::new(),
        }
    }
}

impl MetadataImage {
    /// Apply one committed record at `index`.
    pub fn apply(&mut self, index: u64, record: MetaRecord) -> ImageChange {
        // `max`, not assignment: a replayed prefix after a restart must not move the applied
        // index back (snapshots are taken at it).
        self.applied_index = self.applied_index.max(index);
        match record {
            MetaRecord::RegisterBroker(broker) => {
                // A registration without a range replaces one with: the new incarnation
                // may run another build.
                self.broker_versions.remove(&broker.id);
                self.brokers.insert(broker.id, broker);
                ImageChange::None
            }
            MetaRecord::RegisterBrokerVersioned { broker, supported } => {
                self.broker_versions.insert(broker.id, supported);
                self.brokers.insert(broker.id, broker);
                ImageChange::None
            }
            MetaRecord::FeatureLevel { name, level } => {
                // Applied as written, also above what this build supports: the node stops
                // on that before applying (`Node::apply_record`), and every node must
                // compute the same image.
                self.features.insert(name, level);
                ImageChange::FeaturesChanged
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
                    // The remote logs go with the topic (a later topic may reuse nothing
                    // of it) and travel in the change: nothing else still names their
                    // objects.
                    let remote = self.remote.remove(&id).unwrap_or_default();
                    ImageChange::TopicDeleted { topic, remote }
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
                ImageChange::PartitionChanged(partition_id(id, partition))
            }
            MetaRecord::RemoteSegmentUploaded {
                id,
                partition,
                leader_epoch,
                segment,
            } => self.apply_remote_upload(id, partition, leader_epoch, segment),
            MetaRecord::RemoteSegmentsDeleted {
                id,
                partition,
                below,
            } => self.apply_remote_deletion(id, partition, below),
            MetaRecord::ScramCredentialUpserted {
                user,
                mechanism,
                credential,
            } => {
                self.scram
                    .entry(user)
                    .or_default()
                    .insert(mechanism, credential);
                ImageChange::None
            }
            MetaRecord::ScramCredentialDeleted { user, mechanism } => {
                if let Some(credentials) = self.scram.get_mut(&user) {
                    credentials.remove(&mechanism);
                    if credentials.is_empty() {
                        self.scram.remove(&user);
                    }
                }
                ImageChange::None
            }
            MetaRecord::AclCreated { acl } => {
                // The controller validated it; a record that does not validate (a newer
                // build's rules, a corrupt proposal) is dropped on every node alike.
                if crate::acl::validate_binding(&acl.0).is_ok() {
                    self.acls.insert(acl);
                }
                ImageChange::None
            }
            MetaRecord::AclDeleted { acl } => {
                self.acls.remove(&acl);
                ImageChange::None
            }
        }
    }

    /// How applying a report of `segment`, uploaded by the leader at `leader_epoch`, would
    /// go on this image. The rule (the controller decides with it too, so a record it
    /// proposes applies, see `controller::remote_segment_uploaded`):
    /// - the partition exists, and `0 <= base < end` with the segment's data epoch at most
    ///   `leader_epoch`;
    /// - the uploader is the partition's leader and `leader_epoch` its leader epoch now: a
    ///   leader deposed before its report committed uploaded data its successor may
    ///   upload again with other boundaries, and only one of them may enter the list;
    /// - the segment exactly continues the log: its base is the last segment's end, or,
    ///   with no segment, at least the remote log start (the first upload of a partition,
    ///   or one after retention emptied the log, may start wherever the local log starts).
    ///
    /// Exact continuation, not "at or after the end": reports of one leader reordered by
    /// a reconnect would otherwise admit a later segment first and leave a hole that the
    /// earlier one could no longer fill; local retention trusting the remote end would
    /// then delete the only copy of the hole. A segment equal to one held is
    /// [`UploadCheck::AlreadyHeld`] whatever else changed since, so a resent report is
    /// harmless.
    pub fn check_remote_upload(
        &self,
        id: u128,
        partition: i32,
        leader_epoch: i32,
        segment: &RemoteSegment,
    ) -> UploadCheck {
        let Some(state) = self.partition(id, partition) else {
            return UploadCheck::Refused(UploadRefusal::UnknownPartition);
        };
        let log = self.remote_log(id, partition);
        let held = log.and_then(|l| l.segments.get(&segment.base_offset));
        if held == Some(segment) {
            return UploadCheck::AlreadyHeld;
        }
        if segment.base_offset < 0
            || segment.base_offset >= segment.end_offset
            || segment.leader_epoch > leader_epoch
        {
            return UploadCheck::Refused(UploadRefusal::Malformed);
        }
        if state.leader != segment.uploader || state.leader_epoch != leader_epoch {
            return UploadCheck::Refused(UploadRefusal::StaleLeader);
        }
        let contiguous = match log {
            None => true,
            Some(log) => match log.continues_at() {
                Some(end) => segment.base_offset == end,
                None => segment.base_offset >= log.log_start_offset,
            },
        };
        if !contiguous {
            return UploadCheck::Refused(UploadRefusal::NotContiguous);
        }
        UploadCheck::Admitted
    }

    /// A partition's remote log, by the topic key and partition number records carry.
    pub fn remote_log(&self, id: u128, partition: i32) -> Option<&RemoteLog> {
        self.remote.get(&id)?.get(&partition)
    }

    fn apply_remote_upload(
        &mut self,
        id: u128,
        partition: i32,
        leader_epoch: i32,
        segment: RemoteSegment,
    ) -> ImageChange {
        if self.check_remote_upload(id, partition, leader_epoch, &segment) != UploadCheck::Admitted
        {
            return ImageChange::None;
        }
        let end_before = self.remote_log(id, partition).map(RemoteLog::end_offset);
        let log = self.remote.entry(id).or_default().entry(partition);
        let log = log.or_insert_with(|| RemoteLog {
            log_start_offset: segment.base_offset,
            segments: BTreeMap::new(),
        });
        // An empty log (first upload, or retention deleted every segment) starts where
        // its first segment does: offsets below it were never uploaded.
        if log.segments.is_empty() {
            log.log_start_offset = segment.base_offset;
        }
        let base = segment.base_offset;
        let previous = log.segments.insert(base, segment);
        // The check admitted a base at the end (or, on an empty log, past the start), so
        // nothing was replaced and the log grew.
        debug_assert!(
            previous.is_none(),
            "an upload replaced segment {previous:?}"
        );
        debug_assert!(end_before.is_none_or(|end| log.end_offset() > end));
        ImageChange::RemoteChanged {
            partition: partition_id(id, partition),
            removed: Vec::new(),
        }
    }

    fn apply_remote_deletion(&mut self, id: u128, partition: i32, below: i64) -> ImageChange {
        if self.partition(id, partition).is_none() {
            return ImageChange::None;
        }
        let Some(log) = self.remote.get_mut(&id).and_then(|p| p.get_mut(&partition)) else {
            return ImageChange::None;
        };
        // A replayed or raced deletion: the start only moves up.
        if below <= log.log_start_offset {
            return ImageChange::None;
        }
        // Segments are ordered and non-overlapping, so those ending at or below `below`
        // are a prefix: split at the first that ends past it.
        let first_kept = (log.segments.values())
            .find(|s| s.end_offset > below)
            .map(|s| s.base_offset);
        let kept = match first_kept {
            Some(base) => log.segments.split_off(&base),
            None => BTreeMap::new(),
        };
        let removed: Vec<RemoteSegment> = std::mem::replace(&mut log.segments, kept)
            .into_values()
            .collect();
        // The start is the first offset served: within the first kept segment (a gap
        // before it serves nothing), or the bound itself when nothing is left.
        log.log_start_offset = match log.segments.values().next() {
            Some(first) => below.max(first.base_offset),
            None => below,
        };
        debug_assert!(removed.iter().all(|s| s.end_offset <= below));
        ImageChange::RemoteChanged {
            partition: partition_id(id, partition),
            removed,
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

    /// True for the image of a log nothing was written to yet (a fresh cluster, whose
    /// first controller finalizes its `metadata.version`). A log written by a build
    /// without levels has registrations at least: it stays at level 1.
    pub fn is_fresh(&self) -> bool {
        self.brokers.is_empty()
            && self.topics.is_empty()
            && self.features.is_empty()
            && self.scram.is_empty()
            && self.acls.is_empty()
    }

    /// The finalized `metadata.version`: level 1 when the log never finalized one.
    pub fn metadata_version(&self) -> u16 {
        (self.features.get(features::METADATA_VERSION).copied())
            .unwrap_or(features::METADATA_VERSION_LEGACY)
    }

    /// The range node `id` supports: its versioned registration's, else what it
    /// `reported` (to the controller asking), else level 1 only (a build without levels,
    /// or a node registered at level 1 that has not reported since).
    pub fn supported_versions(
        &self,
        id: i32,
        reported: impl Fn(i32) -> Option<VersionRange>,
    ) -> VersionRange {
        (self.broker_versions.get(&id).copied())
            .or_else(|| reported(id))
            .unwrap_or(VersionRange::LEGACY)
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

    /// Encode as a Raft snapshot: [`IMAGE_MAGIC`], [`IMAGE_VERSION`], then the postcard
    /// of the image.
    ///
    /// An image without feature levels or supported ranges (a cluster at level 1) is
    /// written as version 3, which builds without levels decode.
    pub fn encode(&self) -> Vec<u8> {
        let legacy = self.features.is_empty() && self.broker_versions.is_empty();
        let (version, body) = if legacy {
            let v3 = ImageV3 {
                brokers: &self.brokers,
                topics: &self.topics,
                names: &self.names,
                applied_index: self.applied_index,
                remote: &self.remote,
                scram: &self.scram,
                acls: &self.acls,
            };
            (3, postcard::to_allocvec(&v3).unwrap_or_default())
        } else {
            (
                IMAGE_VERSION,
                postcard::to_allocvec(self).unwrap_or_default(),
            )
        };
        // An empty body would decode to nothing: a node installing it would lose every
        // topic. Postcard cannot fail on these types (no maps with unsupported keys, no
        // custom serializers), so the fallback above is never taken.
        debug_assert!(!body.is_empty(), "image failed to encode");
        let mut bytes = Vec::with_capacity(IMAGE_MAGIC.len() + 1 + body.len());
        bytes.extend_from_slice(&IMAGE_MAGIC);
        bytes.push(version);
        bytes.extend_from_slice(&body);
        bytes
    }

    /// Decode a Raft snapshot of any version this build knows (0 to 4).
    ///
    /// A version from a newer build is an error: guessing at its shape could install a
    /// wrong image, and the caller poisons the node instead.
    pub fn decode(bytes: &[u8]) -> Result<MetadataImage, String> {
        let Some(rest) = bytes.strip_prefix(&IMAGE_MAGIC[..]) else {
            let v0: ImageV0 = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
            return Ok(v0.into());
        };
        match rest.split_first() {
            Some((&IMAGE_VERSION, body)) => postcard::from_bytes(body).map_err(|e| e.to_string()),
            Some((3, body)) => {
                let v3: ImageV3Owned = postcard::from_bytes(body).map_err(|e| e.to_string())?;
                Ok(v3.into())
            }
            Some((2, body)) => {
                let v2: ImageV2 = postcard::from_bytes(body).map_err(|e| e.to_string())?;
                Ok(v2.into())
            }
            Some((1, body)) => {
                let v1: ImageV1 = postcard::from_bytes(body).map_err(|e| e.to_string())?;
                Ok(v1.into())
            }
            Some((version, _)) => Err(format!(
                "metadata image version {version} is newer than this build's {IMAGE_VERSION}"
            )),
            None => Err("metadata image without a version".to_string()),
        }
    }

    /// Assert the image's invariants.
    pub fn invariants(&self) {
        assert_eq!(self.topics.len(), self.names.len(), "image maps disagree");
        for acl in &self.acls {
            assert!(
                crate::acl::validate_binding(&acl.0).is_ok(),
                "invalid ACL in the image: {acl:?}"
            );
        }
        for (user, credentials) in &self.scram {
            assert!(
                !credentials.is_empty(),
                "user {user} kept without credentials"
            );
        }
        for (id, broker) in &self.brokers {
            assert_eq!(*id, broker.id, "broker {} filed under {id}", broker.id);
        }
        for (id, range) in &self.broker_versions {
            assert!(self.brokers.contains_key(id), "range of unknown node {id}");
            assert!(range.min <= range.max, "node {id}: empty range {range}");
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
        // Remote logs: of existing partitions only (a deleted topic takes its own with it),
        // no empty per-topic map, and each log well-formed.
        for (id, logs) in &self.remote {
            let topic = self.topics.get(id);
            assert!(topic.is_some(), "remote logs of unknown topic {id:#x}");
            assert!(!logs.is_empty(), "empty remote map for topic {id:#x}");
            for (index, log) in logs {
                let state = self.partition(*id, *index);
                let name = topic.map_or("?", |t| t.name.as_str());
                let Some(state) = state else {
                    panic!("{name}: remote log of unknown partition {index}");
                };
                remote_log_invariants(name, *index, state, log);
            }
        }
    }
}

/// The partition a record names, once the image found its slot (so `partition` is a
/// valid partition number).
fn partition_id(id: u128, partition: i32) -> PartitionId {
    match PartitionId::from_wire(uuid::Uuid::from_u128(id), partition) {
        Some(found) => found,
        None => unreachable!("partition {partition} found a slot"),
    }
}

/// The remote-log half of [`MetadataImage::invariants`], for one partition's log.
fn remote_log_invariants(name: &str, index: i32, state: &PartitionState, log: &RemoteLog) {
    assert!(
        log.log_start_offset >= 0,
        "{name}-{index}: remote start {log:?}"
    );
    let mut previous: Option<&RemoteSegment> = None;
    for (base, segment) in &log.segments {
        assert_eq!(
            *base, segment.base_offset,
            "{name}-{index}: filed under {base}"
        );
        assert!(segment.base_offset >= 0, "{name}-{index}: {segment:?}");
        assert!(
            segment.base_offset < segment.end_offset,
            "{name}-{index}: empty remote segment {segment:?}"
        );
        // An upload applies only at the leader epoch of its time, and epochs never go
        // down: no segment can carry an epoch the partition has not reached.
        assert!(
            segment.leader_epoch <= state.leader_epoch,
            "{name}-{index}: remote segment epoch {} past the partition's {}",
            segment.leader_epoch,
            state.leader_epoch
        );
        if let Some(previous) = previous {
            assert!(
                previous.end_offset <= segment.base_offset,
                "{name}-{index}: remote segments overlap: {previous:?} {segment:?}"
            );
            assert!(
                previous.leader_epoch <= segment.leader_epoch,
                "{name}-{index}: remote epochs go down: {previous:?} {segment:?}"
            );
        }
        previous = Some(segment);
    }
    if let Some(first) = log.segments.values().next() {
        assert!(
            first.base_offset <= log.log_start_offset,
            "{name}-{index}: remote start {} before the first segment {first:?}",
            log.log_start_offset
        );
        assert!(
            log.log_start_offset < first.end_offset,
            "{name}-{index}: remote start {} past the first segment {first:?}",
            log.log_start_offset
        );
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

#[cfg(test)]
mod remote_tests {
    use super::*;

    /// Bytes `MetadataImage::encode` wrote before versions existed (version 0, commit
    /// 7c15899), for the image `fixture_image` builds: captured, not recomputed, so that
    /// a change of the encoding cannot silently change what old snapshots decode to.
    const IMAGE_V0_FIXTURE: &[u8] = &[
        0x02, 0x02, 0x02, 0x4d, 0x02, 0x6e, 0x31, 0x88, 0x8e, 0x01, 0x07, 0x6e, 0x31, 0x3a, 0x39,
        0x30, 0x39, 0x33, 0x00, 0x01, 0x04, 0x04, 0x4e, 0x02, 0x6e, 0x32, 0x88, 0x8e, 0x01, 0x07,
        0x6e, 0x32, 0x3a, 0x39, 0x30, 0x39, 0x33, 0x01, 0x00, 0x02, 0x07, 0x01, 0x65, 0x07, 0x00,
        0x00, 0x90, 0x9e, 0xb8, 0xe8, 0xc0, 0xe1, 0x82, 0x85, 0x89, 0x90, 0x9c, 0xb0, 0xd0, 0x80,
        0xc1, 0x81, 0x82, 0x02, 0x06, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x73, 0x90, 0x9e, 0xb8, 0xe8,
        0xc0, 0xe1, 0x82, 0x85, 0x89, 0x90, 0x9c, 0xb0, 0xd0, 0x80, 0xc1, 0x81, 0x82, 0x02, 0x01,
        0x0e, 0x63, 0x6c, 0x65, 0x61, 0x6e, 0x75, 0x70, 0x2e, 0x70, 0x6f, 0x6c, 0x69, 0x63, 0x79,
        0x07, 0x63, 0x6f, 0x6d, 0x70, 0x61, 0x63, 0x74, 0x02, 0x02, 0x02, 0x04, 0x02, 0x02, 0x04,
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x02, 0x02, 0x04, 0x02, 0x04, 0x06, 0x0a, 0x01,
        0x02, 0x01, 0x04, 0x02, 0x01, 0x65, 0x07, 0x06, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x73, 0x90,
        0x9e, 0xb8, 0xe8, 0xc0, 0xe1, 0x82, 0x85, 0x89, 0x90, 0x9c, 0xb0, 0xd0, 0x80, 0xc1, 0x81,
        0x82, 0x02, 0x09,
    ];
    const ORDERS: u128 = 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10;

    /// Two brokers (one fenced), a topic with configs and a partition mid-reassignment,
    /// and an empty topic: every field of the version 0 image is exercised.
    fn fixture_image() -> MetadataImage {
        let mut image = MetadataImage::default();
        for (id, incarnation, fenced, broker_role) in [(1, 77, false, true), (2, 78, true, false)] {
            let broker = BrokerState {
                id,
                incarnation,
                host: format!("n{id}"),
                port: 9092,
                peer_addr: format!("n{id}:9093"),
                fenced,
                broker_role,
            };
            image.apply(2 + id as u64, MetaRecord::RegisterBroker(broker));
        }
        let mut moving = PartitionState::new(vec![2, 1]);
        moving.adding = vec![1];
        moving.removing = vec![2];
        moving.leader_epoch = 3;
        moving.partition_epoch = 5;
        let orders = TopicImage {
            name: "orders".into(),
            id: ORDERS,
            configs: vec![("cleanup.policy".into(), "compact".into())],
            partitions: vec![PartitionState::new(vec![1, 2]), moving],
        };
        image.apply(5, MetaRecord::CreateTopic(orders));
        let empty = TopicImage {
            name: "e".into(),
            id: 7,
            configs: vec![],
            partitions: vec![],
        };
        image.apply(9, MetaRecord::CreateTopic(empty));
        image
    }

    /// Topic 7 ("t"), one partition led by broker 1 at leader epoch 0.
    fn image() -> MetadataImage {
        let mut image = MetadataImage::default();
        let topic = TopicImage {
            name: "t".into(),
            id: 7,
            configs: vec![],
            partitions: vec![PartitionState::new(vec![1, 2, 3])],
        };
        image.apply(1, MetaRecord::CreateTopic(topic));
        image
    }

    fn segment(base_offset: i64, end_offset: i64, leader_epoch: i32) -> RemoteSegment {
        RemoteSegment {
            base_offset,
            end_offset,
            leader_epoch,
            size_bytes: 100,
            max_timestamp: 1_000 + end_offset,
            object_key: format!("7-0/{base_offset}"),
            uploader: 1,
        }
    }

    fn uploaded(leader_epoch: i32, segment: RemoteSegment) -> MetaRecord {
        MetaRecord::RemoteSegmentUploaded {
            id: 7,
            partition: 0,
            leader_epoch,
            segment,
        }
    }

    fn changed(removed: Vec<RemoteSegment>) -> ImageChange {
        ImageChange::RemoteChanged {
            partition: PartitionId::new(uuid::Uuid::from_u128(7), 0),
            removed,
        }
    }

    /// Applies `record` at the next index and checks the invariants after it.
    fn apply(image: &mut MetadataImage, record: MetaRecord) -> ImageChange {
        let index = image.applied_index + 1;
        let change = image.apply(index, record);
        image.invariants();
        change
    }

    fn bases(image: &MetadataImage) -> Vec<i64> {
        let log = image.remote_log(7, 0).expect("remote log");
        log.segments.keys().copied().collect()
    }

    /// Moves leadership of 7-0 to `leader` at the next leader epoch.
    fn elect(image: &mut MetadataImage, leader: i32) {
        let mut state = image.partition(7, 0).expect("partition").clone();
        state.leader = leader;
        state.leader_epoch += 1;
        state.partition_epoch += 1;
        let change = MetaRecord::PartitionChange {
            id: 7,
            partition: 0,
            state,
        };
        apply(image, change);
    }

    fn scram_entry(seed: u8) -> ScramEntry {
        ScramEntry {
            salt: vec![seed; 8],
            iterations: 4096,
            stored_key: vec![seed; 32],
            server_key: vec![seed.wrapping_add(1); 32],
        }
    }

    // Goal: credential records set and remove one (user, mechanism) each, replaying them
    // is harmless, a user without credentials leaves the map, and the image's snapshot
    // keeps them. Method: apply, replay, delete, encode/decode.
    #[test]
    fn scram_credentials_apply_replay_and_snapshot() {
        let mut image = MetadataImage::default();
        let upsert = |user: &str, mechanism: i8, seed: u8| MetaRecord::ScramCredentialUpserted {
            user: user.to_owned(),
            mechanism,
            credential: scram_entry(seed),
        };
        let records = [
            upsert("alice", 1, 1),
            upsert("alice", 2, 2),
            upsert("bob", 1, 3),
        ];
        for record in records.iter().cloned().chain(records.iter().cloned()) {
            assert_eq!(apply(&mut image, record), ImageChange::None);
        }
        assert_eq!(image.scram["alice"].len(), 2);
        apply(&mut image, upsert("alice", 1, 9));
        assert_eq!(image.scram["alice"][&1], scram_entry(9), "replaced whole");
        let delete = |user: &str, mechanism: i8| MetaRecord::ScramCredentialDeleted {
            user: user.to_owned(),
            mechanism,
        };
        apply(&mut image, delete("bob", 1));
        apply(&mut image, delete("bob", 1));
        apply(&mut image, delete("nobody", 2));
        assert!(!image.scram.contains_key("bob"));
        let decoded = MetadataImage::decode(&image.encode()).expect("decodes");
        assert_eq!(decoded, image);
        assert!(
            !format!("{:?}", image.scram).contains("stored_key"),
            "keys are not printed"
        );
    }

    // Goal: version 2 snapshots (before ACLs) still decode, with none; ACL records apply
    // as set operations (replay idempotent, invalid ones dropped) and survive a snapshot.
    // Method: the version 2 layout is the current one without the last field; then create,
    // re-create, delete an absent ACL, and an invalid one, and round-trip the snapshot.
    #[test]
    fn version_2_snapshots_decode_and_acls_apply() {
        use weir_wire::domain::acl::{
            AclBinding, AclOperation, AclPermissionType, PatternType, ResourceType,
        };
        let mut image = fixture_image();
        image
            .scram
            .entry("alice".into())
            .or_default()
            .insert(1, scram_entry(3));
        let fields = (
            &image.brokers,
            &image.topics,
            &image.names,
            image.applied_index,
            &image.remote,
            &image.scram,
        );
        let mut bytes = IMAGE_MAGIC.to_vec();
        bytes.push(2);
        bytes.extend(postcard::to_allocvec(&fields).expect("encodes"));
        let decoded = MetadataImage::decode(&bytes).expect("version 2 decodes");
        assert_eq!(decoded, image);
        assert!(decoded.acls.is_empty());
        let acl = |name: &str, principal: &str| {
            Acl(AclBinding {
                resource_type: ResourceType::Topic,
                resource_name: name.into(),
                pattern_type: PatternType::Prefixed,
                principal: principal.into(),
                host: "*".into(),
                operation: AclOperation::Write,
                permission_type: AclPermissionType::Deny,
            })
        };
        let created = MetaRecord::AclCreated {
            acl: acl("orders-", "User:bob"),
        };
        image.apply(10, created.clone());
        image.apply(11, created);
        image.apply(
            12,
            MetaRecord::AclDeleted {
                acl: acl("absent", "User:bob"),
            },
        );
        image.apply(
            13,
            MetaRecord::AclCreated {
                acl: acl("x", "bob"),
            },
        );
        assert_eq!(image.acls.len(), 1, "{:?}", image.acls);
        image.invariants();
        let record = MetaRecord::AclCreated {
            acl: acl("y", "User:carol"),
        };
        let record = MetaRecord::decode(&record.encode()).expect("record decodes");
        image.apply(14, record);
        let restored = MetadataImage::decode(&image.encode()).expect("snapshot decodes");
        assert_eq!(restored.acls, image.acls);
        image.apply(
            15,
            MetaRecord::AclDeleted {
                acl: acl("orders-", "User:bob"),
            },
        );
        assert_eq!(image.acls.len(), 1);
    }

    // Goal: version 1 snapshots (before SCRAM credentials) still decode, with none.
    // Method: the version 1 layout is the current one without the last field; encode the
    // fixture's fields in that order under version byte 1.
    #[test]
    fn version_1_snapshots_decode() {
        let mut expected = fixture_image();
        expected.remote.entry(7).or_default().insert(
            0,
            RemoteLog {
                log_start_offset: 0,
                segments: BTreeMap::new(),
            },
        );
        let fields = (
            &expected.brokers,
            &expected.topics,
            &expected.names,
            expected.applied_index,
            &expected.remote,
        );
        let mut bytes = IMAGE_MAGIC.to_vec();
        bytes.push(1);
        bytes.extend(postcard::to_allocvec(&fields).expect("encodes"));
        let decoded = MetadataImage::decode(&bytes).expect("version 1 decodes");
        assert_eq!(decoded, expected);
        assert!(decoded.scram.is_empty());
    }

    // Goal: snapshots written before versions existed still decode, to the same image.
    // Method: decode the captured version 0 bytes; compare with the image they came from.
    #[test]
    fn version_0_snapshots_decode() {
        let expected = fixture_image();
        let decoded = MetadataImage::decode(IMAGE_V0_FIXTURE).expect("version 0 decodes");
        assert_eq!(decoded, expected);
        decoded.invariants();
        assert!(decoded.remote.is_empty());
        // Re-encoding writes version 3 (no feature levels: the newest layout builds
        // without levels read), which decodes to the same image.
        let bytes = decoded.encode();
        assert_eq!(bytes[..IMAGE_MAGIC.len()], IMAGE_MAGIC);
        assert_eq!(bytes[IMAGE_MAGIC.len()], 3);
        assert_eq!(MetadataImage::decode(&bytes), Ok(expected));
    }

    // Goal: a cluster at metadata.version 1 snapshots in the version 3 layout (a node of
    // a build without levels may install it), and the level and the nodes' ranges, once
    // there, snapshot in version 4 and come back. A plain registration drops a range.
    // Method: the previous build's decoder of version 3 is the `ImageV3` shape.
    #[test]
    fn feature_levels_apply_snapshot_and_restore() {
        let mut image = fixture_image();
        assert_eq!(image.metadata_version(), 1);
        let bytes = image.encode();
        assert_eq!(bytes[IMAGE_MAGIC.len()], 3);
        let body = &bytes[IMAGE_MAGIC.len() + 1..];
        let earlier: ImageV3Owned = postcard::from_bytes(body).expect("a v3 reader reads it");
        assert_eq!(MetadataImage::from(earlier), image);

        let level = MetaRecord::FeatureLevel {
            name: features::METADATA_VERSION.into(),
            level: 2,
        };
        let level = MetaRecord::decode(&level.encode()).expect("decodes");
        assert_eq!(image.apply(20, level), ImageChange::FeaturesChanged);
        assert_eq!(image.metadata_version(), 2);
        let mut broker = image.brokers[&1].clone();
        broker.incarnation = 99;
        let range = VersionRange { min: 1, max: 2 };
        let versioned = MetaRecord::RegisterBrokerVersioned {
            broker: broker.clone(),
            supported: range,
        };
        image.apply(21, versioned);
        image.invariants();
        assert_eq!(image.supported_versions(1, |_| None), range);
        // Node 2 registered at level 1: what it reported, else level 1 only.
        assert_eq!(image.supported_versions(2, |_| None), VersionRange::LEGACY);
        assert_eq!(image.supported_versions(2, |_| Some(range)), range);
        let bytes = image.encode();
        assert_eq!(bytes[IMAGE_MAGIC.len()], IMAGE_VERSION);
        let restored = MetadataImage::decode(&bytes).expect("version 4 decodes");
        assert_eq!(restored, image);
        assert_eq!(restored.metadata_version(), 2);
        // A build of version 3 refuses it (and stops) rather than misreading it.
        let mut v3_only = bytes.clone();
        v3_only[IMAGE_MAGIC.len()] = 3;
        assert_ne!(MetadataImage::decode(&v3_only).ok(), Some(image.clone()));
        broker.incarnation = 100;
        image.apply(22, MetaRecord::RegisterBroker(broker));
        assert!(image.broker_versions.is_empty());
        assert_eq!(image.metadata_version(), 2, "the level stays");
    }

    // Goal: an image with remote logs survives a snapshot, and a version this build does
    // not know is an error, never a guess. Method: encode, decode; bump the version byte.
    #[test]
    fn snapshots_round_trip_and_newer_versions_are_refused() {
        let mut image = image();
        apply(&mut image, uploaded(0, segment(0, 10, 0)));
        apply(&mut image, uploaded(0, segment(10, 25, 0)));
        let mut bytes = image.encode();
        let decoded = MetadataImage::decode(&bytes).expect("decodes");
        assert_eq!(decoded, image);
        assert_eq!(bases(&decoded), vec![0, 10]);
        bytes[IMAGE_MAGIC.len()] = IMAGE_VERSION + 1;
        assert!(MetadataImage::decode(&bytes).is_err());
        assert!(MetadataImage::decode(&IMAGE_MAGIC).is_err());
    }

    // Goal: the leader's uploads enter in order; the same report again is a no-op.
    // Method: a first upload starting past 0 (local retention ran before), a continuation,
    // then both again.
    #[test]
    fn uploads_continue_the_log_and_repeats_are_no_ops() {
        let mut image = image();
        assert_eq!(
            apply(&mut image, uploaded(0, segment(40, 50, 0))),
            changed(vec![])
        );
        assert_eq!(
            apply(&mut image, uploaded(0, segment(50, 75, 0))),
            changed(vec![])
        );
        let log = image.remote_log(7, 0).expect("log").clone();
        assert_eq!((log.log_start_offset, log.end_offset()), (40, 75));
        assert_eq!(log.size_bytes(), 200);
        for base in [40, 50] {
            let end = if base == 40 { 50 } else { 75 };
            let record = uploaded(0, segment(base, end, 0));
            assert_eq!(apply(&mut image, record), ImageChange::None);
        }
        assert_eq!(image.remote_log(7, 0), Some(&log));
        // Also after the leader changed: a resend of a committed report stays harmless.
        elect(&mut image, 2);
        let resend = segment(50, 75, 0);
        assert_eq!(
            image.check_remote_upload(7, 0, 0, &resend),
            UploadCheck::AlreadyHeld
        );
    }

    // Goal: only an exact continuation is admitted: an overlap, a gap after a segment and
    // a start below the remote log start are refused, and the image is unchanged.
    #[test]
    fn overlaps_and_gaps_are_refused() {
        let mut image = image();
        apply(&mut image, uploaded(0, segment(0, 10, 0)));
        let before = image.clone();
        let refused = UploadCheck::Refused(UploadRefusal::NotContiguous);
        for (base, end) in [(0, 12), (5, 15), (9, 20), (11, 20), (-1, 0)] {
            let overlapping = segment(base, end, 0);
            let check = image.check_remote_upload(7, 0, 0, &overlapping);
            if base < 0 {
                assert_eq!(check, UploadCheck::Refused(UploadRefusal::Malformed));
            } else {
                assert_eq!(check, refused, "[{base}, {end})");
            }
            assert_eq!(
                apply(&mut image, uploaded(0, overlapping)),
                ImageChange::None
            );
        }
        // Same base, other object: an overlap, not a repeat.
        let mut other = segment(0, 10, 0);
        other.object_key = "another".into();
        assert_eq!(image.check_remote_upload(7, 0, 0, &other), refused);
        assert_eq!(apply(&mut image, uploaded(0, other)), ImageChange::None);
        image.applied_index = before.applied_index;
        assert_eq!(image, before);
    }

    // Goal: a deposed leader's report never applies once a new leader epoch is in the
    // image, nor one from a broker that does not lead, nor an empty or future-epoch
    // segment; the new leader's own overlapping upload is the one that enters.
    // Method: leader 1 at epoch 0 reports after 2 was elected at epoch 1.
    #[test]
    fn stale_foreign_and_malformed_reports_are_refused() {
        let mut image = image();
        elect(&mut image, 2);
        let stale = segment(0, 10, 0);
        let check = image.check_remote_upload(7, 0, 0, &stale);
        assert_eq!(check, UploadCheck::Refused(UploadRefusal::StaleLeader));
        assert_eq!(
            apply(&mut image, uploaded(0, stale.clone())),
            ImageChange::None
        );
        // Broker 1 quoting the current epoch is still not the leader.
        let check = image.check_remote_upload(7, 0, 1, &stale);
        assert_eq!(check, UploadCheck::Refused(UploadRefusal::StaleLeader));
        let mut own = segment(0, 12, 1);
        own.uploader = 2;
        assert_eq!(apply(&mut image, uploaded(1, own.clone())), changed(vec![]));
        let malformed = [segment(12, 12, 1), segment(12, 20, 2)];
        for mut bad in malformed {
            bad.uploader = 2;
            let check = image.check_remote_upload(7, 0, 1, &bad);
            assert_eq!(check, UploadCheck::Refused(UploadRefusal::Malformed));
        }
        let unknown = MetaRecord::RemoteSegmentUploaded {
            id: 7,
            partition: 1,
            leader_epoch: 1,
            segment: own.clone(),
        };
        assert_eq!(apply(&mut image, unknown), ImageChange::None);
        assert_eq!(bases(&image), vec![0]);
        assert_eq!(
            image.remote_log(7, 0).map(|l| l.segments[&0].uploader),
            Some(2)
        );
    }

    // Goal: remote retention drops the prefix of segments ending at or below its bound,
    // hands them out in the change, moves the start, and a replay is a no-op; an emptied
    // log admits an upload at or after its start only.
    #[test]
    fn deletion_drops_a_prefix_and_moves_the_start() {
        let mut image = image();
        for (base, end) in [(0, 10), (10, 20), (20, 30)] {
            apply(&mut image, uploaded(0, segment(base, end, 0)));
        }
        let delete = |below| MetaRecord::RemoteSegmentsDeleted {
            id: 7,
            partition: 0,
            below,
        };
        // A bound inside the second segment drops the first only.
        let change = apply(&mut image, delete(15));
        assert_eq!(change, changed(vec![segment(0, 10, 0)]));
        let log = image.remote_log(7, 0).expect("log");
        assert_eq!((log.log_start_offset, bases(&image)), (15, vec![10, 20]));
        assert_eq!(log.segment_for(14), None);
        assert_eq!(log.segment_for(15).map(|s| s.base_offset), Some(10));
        assert_eq!(apply(&mut image, delete(15)), ImageChange::None);
        assert_eq!(apply(&mut image, delete(3)), ImageChange::None);
        // Past the end: everything goes, and the start is the bound.
        let change = apply(&mut image, delete(40));
        assert_eq!(
            change,
            changed(vec![segment(10, 20, 0), segment(20, 30, 0)])
        );
        let log = image.remote_log(7, 0).expect("log kept for its start");
        assert_eq!((log.log_start_offset, log.end_offset()), (40, 40));
        let below_start = segment(30, 45, 0);
        let check = image.check_remote_upload(7, 0, 0, &below_start);
        assert_eq!(check, UploadCheck::Refused(UploadRefusal::NotContiguous));
        apply(&mut image, uploaded(0, segment(42, 50, 0)));
        let log = image.remote_log(7, 0).expect("log");
        assert_eq!((log.log_start_offset, log.end_offset()), (42, 50));
        // Deleting on a partition without a remote log changes nothing.
        let mut bare = self::image();
        assert_eq!(apply(&mut bare, delete(10)), ImageChange::None);
        assert!(bare.remote.is_empty());
    }

    // Goal: an offset in a gap between segments is served by the next segment, and none
    // at or past the end. Method: segments [0,10) and [20,30) after an empty log start.
    #[test]
    fn segment_for_serves_gaps_from_the_next_segment() {
        let mut log = RemoteLog::default();
        for (base, end) in [(0, 10), (20, 30)] {
            log.segments.insert(base, segment(base, end, 0));
        }
        let found = |offset| log.segment_for(offset).map(|s| s.base_offset);
        assert_eq!(
            [0, 9, 10, 19, 20, 29, 30].map(found),
            [
                Some(0),
                Some(0),
                Some(20),
                Some(20),
                Some(20),
                Some(20),
                None
            ]
        );
    }

    // Goal: deleting a topic removes its remote logs from the image and hands them to the
    // node in the change (nothing else names the objects any more).
    #[test]
    fn topic_deletion_hands_over_the_remote_logs() {
        let mut image = image();
        apply(&mut image, uploaded(0, segment(0, 10, 0)));
        let log = image.remote_log(7, 0).cloned().expect("log");
        let topic = image.topics[&7].clone();
        let change = apply(&mut image, MetaRecord::DeleteTopic { id: 7 });
        let remote = BTreeMap::from([(0, log)]);
        assert_eq!(change, ImageChange::TopicDeleted { topic, remote });
        assert!(image.remote.is_empty());
        // A report for the deleted topic that commits later is dropped.
        let late = uploaded(0, segment(10, 20, 0));
        assert_eq!(apply(&mut image, late), ImageChange::None);
    }

    // Goal: the new records were appended, so logs written before them keep decoding.
    // Method: postcard writes the variant index first; PartitionChange stays 6.
    #[test]
    fn new_records_keep_the_old_variant_indexes() {
        let state = PartitionState::new(vec![1]);
        let change = MetaRecord::PartitionChange {
            id: 7,
            partition: 0,
            state,
        };
        assert_eq!(change.encode()[0], 6);
        let upload = uploaded(0, segment(0, 10, 0));
        assert_eq!(upload.encode()[0], 7);
        assert_eq!(MetaRecord::decode(&upload.encode()), Ok(upload));
        let delete = MetaRecord::RemoteSegmentsDeleted {
            id: 7,
            partition: 0,
            below: 5,
        };
        assert_eq!(delete.encode()[0], 8);
        let scram = MetaRecord::ScramCredentialDeleted {
            user: "alice".into(),
            mechanism: 1,
        };
        assert_eq!(scram.encode()[0], 10);
        assert_eq!(MetaRecord::decode(&scram.encode()), Ok(scram.clone()));
        let level = MetaRecord::FeatureLevel {
            name: features::METADATA_VERSION.into(),
            level: 2,
        };
        assert_eq!(
            level.encode()[0],
            13,
            "FeatureLevel goes after AclDeleted (12)"
        );
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
            broker,
            supported: VersionRange::BUILD,
        };
        assert_eq!(versioned.encode()[0], 14);
        // What each record needs finalized: the old kinds level 1, the new ones 2, and
        // a level record the level it finalizes.
        assert_eq!(scram.required_metadata_version(), 1);
        assert_eq!(versioned.required_metadata_version(), 2);
        assert_eq!(level.required_metadata_version(), 2);
    }

    // Goal: `invariants` catches what apply never produces. Method: plant an overlap.
    #[test]
    #[should_panic(expected = "remote segments overlap")]
    fn invariants_catch_overlapping_remote_segments() {
        let mut image = image();
        apply(&mut image, uploaded(0, segment(0, 10, 0)));
        let logs = image.remote.get_mut(&7).expect("topic");
        let log = logs.get_mut(&0).expect("log");
        log.segments.insert(5, segment(5, 15, 0));
        image.invariants();
    }

    // Goal: `invariants` catches a remote log of a partition that does not exist.
    #[test]
    #[should_panic(expected = "remote log of unknown partition")]
    fn invariants_catch_remote_logs_of_unknown_partitions() {
        let mut image = image();
        let mut log = RemoteLog::default();
        log.segments.insert(0, segment(0, 10, 0));
        image.remote.entry(7).or_default().insert(3, log);
        image.invariants();
    }
}
