//! The peer protocol: what nodes of one cluster say to each other over the controller
//! listener. Frames are postcard-encoded [`PeerMessage`]s; the driver adds a 4-byte
//! big-endian length prefix and opens each connection with a [`PeerHello`].
//!
//! Connections are one-way: a node dials every peer it must talk to and only writes on that
//! connection; it reads only on connections others dialed. Messages may be lost when a
//! connection breaks: every exchange here is retried by its sender (Raft by design, the
//! rest on timers), so loss costs latency, never safety.
//!
//! Versioning: [`PeerHello::version`] must equal [`PEER_PROTOCOL_VERSION`]; a node refuses
//! (closes) a connection that speaks another version or belongs to another cluster. New
//! message kinds are appended to [`PeerMessage`] (the variant index is written first).
//! New fields of an existing message travel in a *trailer* after its postcard: earlier
//! builds decode with `postcard::from_bytes`, which reads the message and ignores what
//! follows, and this build reads a missing trailer as "not told" (Kafka's tagged fields
//! play the same part). Trailers: a heartbeat's (and a controlled shutdown's) supported
//! `metadata.version` range, a heartbeat reply's refusal, and a replica fetch's log start.

use serde::{Deserialize, Serialize};
use weir_wire::domain::ReadPlan;

use super::features::VersionRange;
use super::image::RemoteSegment;
use crate::storage::{Storage, StorageError};

/// Version of this protocol; bumped on any incompatible change.
pub const PEER_PROTOCOL_VERSION: u16 = 1;
/// Magic bytes that open a [`PeerHello`].
pub const PEER_MAGIC: [u8; 8] = *b"WEIRPEER";
/// Bound on one frame (a replica fetch answer is at most `replica.fetch.max.bytes` plus
/// one batch of `message.max.bytes`).
pub const PEER_FRAME_BYTES_MAX: usize = 64 << 20;

/// First frame on every peer connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerHello {
    /// Must be [`PEER_MAGIC`].
    pub magic: [u8; 8],
    /// Must be [`PEER_PROTOCOL_VERSION`].
    pub version: u16,
    /// `cluster.id`: nodes of different clusters never talk.
    pub cluster_id: String,
    /// The dialing node's id.
    pub node_id: i32,
}

/// Why a hello was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// Not postcard of the expected shape.
    #[error("malformed peer frame: {0}")]
    Malformed(String),
    /// Wrong magic: not a Weir peer.
    #[error("not a weir peer connection")]
    BadMagic,
    /// Another protocol version.
    #[error("peer protocol version {theirs} is not supported (this node speaks {ours})")]
    Version {
        /// The peer's.
        theirs: u16,
        /// Ours.
        ours: u16,
    },
    /// Another cluster.
    #[error("peer belongs to cluster {theirs:?}, this node to {ours:?}")]
    Cluster {
        /// The peer's.
        theirs: String,
        /// Ours.
        ours: String,
    },
}

impl PeerHello {
    /// The hello this node sends.
    pub fn new(cluster_id: &str, node_id: i32) -> PeerHello {
        PeerHello {
            magic: PEER_MAGIC,
            version: PEER_PROTOCOL_VERSION,
            cluster_id: cluster_id.to_string(),
            node_id,
        }
    }

    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decode and check a received hello against this node's cluster id.
    pub fn decode_checked(bytes: &[u8], cluster_id: &str) -> Result<PeerHello, PeerError> {
        let hello: PeerHello =
            postcard::from_bytes(bytes).map_err(|e| PeerError::Malformed(e.to_string()))?;
        if hello.magic != PEER_MAGIC {
            return Err(PeerError::BadMagic);
        }
        if hello.version != PEER_PROTOCOL_VERSION {
            return Err(PeerError::Version {
                theirs: hello.version,
                ours: PEER_PROTOCOL_VERSION,
            });
        }
        if hello.cluster_id != cluster_id {
            return Err(PeerError::Cluster {
                theirs: hello.cluster_id,
                ours: cluster_id.to_string(),
            });
        }
        Ok(hello)
    }
}

/// A broker's periodic report to the controller (Kafka's BrokerHeartbeat and
/// BrokerRegistration in one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerHeartbeat {
    /// Changes on every process start: a new incarnation is re-registered.
    pub incarnation: u64,
    /// Kafka listener host clients are told.
    pub host: String,
    /// Kafka listener port.
    pub port: i32,
    /// Controller (peer) listener address.
    pub peer_addr: String,
    /// Highest metadata log index the broker applied: a broker is unfenced only once it
    /// caught up with the log as of its registration.
    pub applied_index: u64,
    /// True when the broker serves clients (`process.roles` has `broker`).
    pub broker_role: bool,
    /// The `metadata.version` range the node's build supports (trailer; `None` from a
    /// build without levels, which supports level 1 only).
    #[serde(skip)]
    pub supported: Option<VersionRange>,
}

/// A leader asks the controller to change a partition's ISR (Kafka's AlterPartition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterIsr {
    /// Topic id (uuid bytes).
    pub topic_id: [u8; 16],
    /// Partition index.
    pub partition: i32,
    /// The leader epoch the leader holds: stale requests are dropped.
    pub leader_epoch: i32,
    /// The partition epoch the leader's view is based on.
    pub partition_epoch: i32,
    /// The ISR wanted.
    pub isr: Vec<i32>,
}

/// A leader tells the controller it uploaded a closed segment to the object store
/// (tiered storage); the controller records it as `MetaRecord::RemoteSegmentUploaded`.
///
/// Like [`AlterIsr`], the leader keeps one report per partition pending and resends it
/// until its image shows the segment (or shows it can never enter: the object is then an
/// orphan); the controller drops a report already applied, so a resend is harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSegmentUploaded {
    /// Topic id (uuid bytes).
    pub topic_id: [u8; 16],
    /// Partition index.
    pub partition: i32,
    /// The leader epoch the leader held when it uploaded: a deposed leader's report is
    /// refused.
    pub leader_epoch: i32,
    /// The segment, `uploader` being the sender.
    pub segment: RemoteSegment,
}

/// A leader asks the controller to drop a prefix of a partition's remote log: remote
/// retention (the segments ending at or below `below` expired by `retention.ms` or
/// `retention.bytes`) or DeleteRecords (the remote log start moves up to `below`, which
/// may lie inside a segment or past the last); the controller records it as
/// `MetaRecord::RemoteSegmentsDeleted`. No answer: the leader sees the image change and
/// deletes the objects; a lost request is asked again at the next retention pass, or by
/// the DeleteRecords retry that follows its timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSegmentsExpired {
    /// Topic id (uuid bytes).
    pub topic_id: [u8; 16],
    /// Partition index.
    pub partition: i32,
    /// The sender's leader epoch: a deposed leader's request is refused.
    pub leader_epoch: i32,
    /// Segments ending at or below this go; the remote log start moves up to it.
    pub below: i64,
}

/// A follower's fetch from a partition leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaFetch {
    /// Echoed in the answer.
    pub correlation: u64,
    /// Topic id (uuid bytes).
    pub topic_id: [u8; 16],
    /// Partition index.
    pub partition: i32,
    /// The follower's view of the leader epoch; the leader refuses other epochs.
    pub leader_epoch: i32,
    /// The follower's log end offset: the next offset it wants.
    pub fetch_offset: i64,
    /// Offsets below this are fsynced on the follower.
    pub durable_offset: i64,
    /// Soft bound on the answer's record bytes.
    pub max_bytes: u32,
    /// How long the leader may hold the fetch for new data.
    pub max_wait_ms: u64,
    /// The follower's log start offset (trailer; `None` from a build that does not tell):
    /// the leader's DeleteRecords answer waits for it, as Kafka's low watermark does.
    #[serde(skip)]
    pub log_start_offset: Option<i64>,
}

/// Records in a replica fetch answer: a read the driver resolves before encoding, then
/// the bytes exactly as stored on the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerRecords {
    /// A read for the driver: partition key, start offset, end offset, max bytes.
    Read {
        /// Leader's storage key of the partition.
        partition_key: u64,
        /// First offset.
        start_offset: i64,
        /// Exclusive end.
        end_offset: i64,
        /// Soft byte bound.
        max_bytes: u32,
    },
    /// Record batches in wire form.
    Bytes(Vec<u8>),
}

/// The leader's answer to a [`ReplicaFetch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaFetchReply {
    /// From the fetch.
    pub correlation: u64,
    /// Topic id (uuid bytes).
    pub topic_id: [u8; 16],
    /// Partition index.
    pub partition: i32,
    /// Kafka error code (0: none): NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH,
    /// UNKNOWN_LEADER_EPOCH, OFFSET_OUT_OF_RANGE, UNKNOWN_TOPIC_OR_PARTITION.
    pub error: i16,
    /// The leader's epoch.
    pub leader_epoch: i32,
    /// The leader's high watermark.
    pub high_watermark: i64,
    /// The leader's log start offset.
    pub log_start_offset: i64,
    /// Batches from the fetch offset on.
    pub records: PeerRecords,
}

/// A follower asks where the leader's log for `epoch` ends (Kafka's OffsetForLeaderEpoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochQuery {
    /// Echoed in the answer.
    pub correlation: u64,
    /// Topic id (uuid bytes).
    pub topic_id: [u8; 16],
    /// Partition index.
    pub partition: i32,
    /// The follower's view of the current leader epoch.
    pub current_leader_epoch: i32,
    /// The last epoch in the follower's log.
    pub epoch: i32,
}

/// The answer to an [`EpochQuery`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochReply {
    /// From the query.
    pub correlation: u64,
    /// Topic id (uuid bytes).
    pub topic_id: [u8; 16],
    /// Partition index.
    pub partition: i32,
    /// Kafka error code (0: none).
    pub error: i16,
    /// The largest epoch <= the asked one in the leader's log (-1: none).
    pub epoch: i32,
    /// The end offset of that epoch in the leader's log.
    pub end_offset: i64,
}

/// One message between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMessage {
    /// A postcard-encoded [`crate::raft::RaftMessage`] of the metadata quorum.
    Raft(Vec<u8>),
    /// Broker to (what it believes is) the controller.
    Heartbeat(BrokerHeartbeat),
    /// The controller's (or a voter's) answer to a heartbeat.
    HeartbeatReply {
        /// The active controller, when known.
        controller: Option<i32>,
        /// True while the broker is fenced.
        fenced: bool,
        /// The controller refuses to register the node (trailer): why. The node stops.
        #[serde(skip)]
        refused: Option<String>,
    },
    /// A broker asks the controller to create topics with defaults (auto-creation).
    AutoCreate {
        /// Topic names.
        names: Vec<String>,
    },
    /// A leader asks the controller for an ISR change.
    AlterIsr(AlterIsr),
    /// Follower to leader.
    Fetch(ReplicaFetch),
    /// Leader to follower.
    FetchReply(ReplicaFetchReply),
    /// Follower to leader, after a leader change.
    EpochQuery(EpochQuery),
    /// Leader to follower.
    EpochReply(EpochReply),
    /// A broker forwards an admin request to the active controller (KRaft's envelope):
    /// the Kafka request frame (header + body, no length prefix) at the highest version
    /// this build serves.
    Forward {
        /// Echoed in the answer.
        correlation: u64,
        /// The encoded request.
        frame: Vec<u8>,
    },
    /// The controller's answer: the encoded response frame (header + body).
    ForwardReply {
        /// From the request.
        correlation: u64,
        /// The encoded response, or empty when the controller could not take it.
        frame: Vec<u8>,
    },
    /// Transaction coordinator to a partition leader: write this marker.
    WriteMarker(MarkerRequest),
    /// The leader's answer, once the marker is replicated (error 0) or refused.
    MarkerReply {
        /// From the request.
        correlation: u64,
        /// Kafka error code (0: none).
        error: i16,
    },
    // New variants go last: the variant index is what postcard writes first.
    /// A leader reports an uploaded segment to the controller (no answer: the leader
    /// watches its image).
    RemoteSegmentUploaded(RemoteSegmentUploaded),
    /// A leader asks the controller to drop an expired prefix of a remote log (no answer:
    /// the leader watches its image).
    RemoteSegmentsExpired(RemoteSegmentsExpired),
    /// [`PeerMessage::Forward`] carrying the client's principal, so the controller
    /// authorizes the request as the client (Kafka's envelope carries it too). Brokers of
    /// this build send only this form; `Forward` is still served, as `User:ANONYMOUS`.
    ForwardAs {
        /// Echoed in the answer.
        correlation: u64,
        /// The encoded request.
        frame: Vec<u8>,
        /// The client's principal name (`User:<principal>`).
        principal: String,
        /// The client's address (`""`: unknown).
        host: String,
    },
    /// A heartbeat from a broker that is shutting down (Kafka's BrokerHeartbeat with
    /// `WantShutDown`): the controller fences it at once, which moves every leadership it
    /// holds to another in-sync replica and takes it out of every ISR it is not the last
    /// member of, and never unfences it again in this incarnation. The answer is a
    /// [`PeerMessage::HeartbeatReply`]; the broker watches its own image for the fence.
    ControlledShutdown(BrokerHeartbeat),
}

/// A transaction marker for a partition led by another broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkerRequest {
    /// Echoed in the answer.
    pub correlation: u64,
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Commit (true) or abort.
    pub committed: bool,
}

impl PeerMessage {
    /// Resolve a [`PeerRecords::Read`] through storage (the leader's driver does this before
    /// encoding). Every batch read is CRC-checked by storage.
    pub fn resolve_reads(&mut self, storage: &impl Storage) -> Result<(), StorageError> {
        if let PeerMessage::FetchReply(reply) = self {
            if let PeerRecords::Read {
                partition_key,
                start_offset,
                end_offset,
                max_bytes,
            } = reply.records
            {
                let plan = ReadPlan {
                    partition_key,
                    start_offset,
                    end_offset,
                    max_bytes,
                };
                let bytes = storage.read(&plan)?;
                reply.records = PeerRecords::Bytes(bytes.to_vec());
            }
        }
        Ok(())
    }

    /// Encode (after [`PeerMessage::resolve_reads`]), trailer included (see the module
    /// doc).
    pub fn encode(&self) -> Vec<u8> {
        // postcard only fails on types it cannot represent; these are all representable.
        let mut bytes = postcard::to_allocvec(self).unwrap_or_default();
        let trailer = match self {
            PeerMessage::Heartbeat(heartbeat) | PeerMessage::ControlledShutdown(heartbeat) => {
                heartbeat
                    .supported
                    .map(|range| postcard::to_allocvec(&range))
            }
            PeerMessage::HeartbeatReply { refused, .. } => {
                refused.as_ref().map(postcard::to_allocvec)
            }
            PeerMessage::Fetch(fetch) => fetch.log_start_offset.map(|s| postcard::to_allocvec(&s)),
            _ => None,
        };
        if let Some(Ok(trailer)) = trailer {
            bytes.extend(trailer);
        }
        bytes
    }

    /// Decode one frame, trailer included; bytes after the trailer (a later build's) are
    /// ignored, as earlier builds ignore the trailer.
    pub fn decode(bytes: &[u8]) -> Result<PeerMessage, PeerError> {
        let malformed = |e: postcard::Error| PeerError::Malformed(e.to_string());
        let (mut message, rest) = postcard::take_from_bytes(bytes).map_err(malformed)?;
        if rest.is_empty() {
            return Ok(message);
        }
        match &mut message {
            PeerMessage::Heartbeat(heartbeat) | PeerMessage::ControlledShutdown(heartbeat) => {
                let (range, _) = postcard::take_from_bytes(rest).map_err(malformed)?;
                heartbeat.supported = Some(range);
            }
            PeerMessage::HeartbeatReply { refused, .. } => {
                let (reason, _) = postcard::take_from_bytes(rest).map_err(malformed)?;
                *refused = Some(reason);
            }
            PeerMessage::Fetch(fetch) => {
                let (start, _) = postcard::take_from_bytes(rest).map_err(malformed)?;
                fetch.log_start_offset = Some(start);
            }
            _ => {}
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_checks_magic_version_and_cluster() {
        let hello = PeerHello::new("c1", 3);
        let bytes = hello.encode();
        assert_eq!(PeerHello::decode_checked(&bytes, "c1"), Ok(hello.clone()));
        assert!(matches!(
            PeerHello::decode_checked(&bytes, "c2"),
            Err(PeerError::Cluster { .. })
        ));
        let mut other = hello.clone();
        other.version = 99;
        assert!(matches!(
            PeerHello::decode_checked(&other.encode(), "c1"),
            Err(PeerError::Version { theirs: 99, .. })
        ));
        other = hello;
        other.magic = *b"NOTAPEER";
        assert_eq!(
            PeerHello::decode_checked(&other.encode(), "c1"),
            Err(PeerError::BadMagic)
        );
        assert!(PeerHello::decode_checked(b"\xff\xff", "c1").is_err());
    }

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let message = PeerMessage::AutoCreate {
            names: vec!["a".into()],
        };
        assert_eq!(PeerMessage::decode(&message.encode()), Ok(message));
        assert!(PeerMessage::decode(&[250, 1, 2]).is_err());
    }

    // Goal: appending a variant kept the wire indexes of the existing ones (a node of the
    // previous build decodes every message it knew), and the new one round-trips.
    // Method: the first byte is the variant index; MarkerReply was the last (12).
    #[test]
    fn new_variants_keep_the_old_indexes() {
        let marker = PeerMessage::MarkerReply {
            correlation: 1,
            error: 0,
        };
        assert_eq!(marker.encode()[0], 12);
        let report = PeerMessage::RemoteSegmentUploaded(RemoteSegmentUploaded {
            topic_id: [7; 16],
            partition: 2,
            leader_epoch: 3,
            segment: RemoteSegment {
                base_offset: 0,
                end_offset: 10,
                leader_epoch: 3,
                size_bytes: 512,
                max_timestamp: 9,
                object_key: "k".into(),
                uploader: 1,
            },
        });
        let bytes = report.encode();
        assert_eq!(bytes[0], 13);
        assert_eq!(PeerMessage::decode(&bytes), Ok(report));
        let shutdown = PeerMessage::ControlledShutdown(BrokerHeartbeat {
            incarnation: 9,
            host: "h".into(),
            port: 9092,
            peer_addr: "h:9093".into(),
            applied_index: 4,
            broker_role: true,
            supported: None,
        });
        let bytes = shutdown.encode();
        assert_eq!(bytes[0], 16, "ControlledShutdown goes after ForwardAs (15)");
        assert_eq!(PeerMessage::decode(&bytes), Ok(shutdown));
    }

    // Goal: trailers cross between builds both ways: a build without them reads a
    // message with one (it ignores the tail), and this build reads one without (as "not
    // told"). Method: the previous build's decode is `postcard::from_bytes`.
    #[test]
    fn trailers_are_invisible_to_earlier_builds_and_optional_here() {
        let mut heartbeat = BrokerHeartbeat {
            incarnation: 9,
            host: "h".into(),
            port: 9092,
            peer_addr: "h:9093".into(),
            applied_index: 4,
            broker_role: true,
            supported: None,
        };
        let old = PeerMessage::Heartbeat(heartbeat.clone()).encode();
        heartbeat.supported = Some(VersionRange { min: 1, max: 2 });
        let new = PeerMessage::Heartbeat(heartbeat.clone());
        let bytes = new.encode();
        assert!(bytes.len() > old.len() && bytes.starts_with(&old));
        let earlier: PeerMessage = postcard::from_bytes(&bytes).expect("earlier build reads");
        let PeerMessage::Heartbeat(seen) = earlier else {
            panic!("{earlier:?}");
        };
        assert_eq!(seen.supported, None);
        assert_eq!(seen.incarnation, 9);
        assert_eq!(PeerMessage::decode(&bytes), Ok(new));
        let PeerMessage::Heartbeat(plain) = PeerMessage::decode(&old).expect("decodes") else {
            panic!("not a heartbeat");
        };
        assert_eq!(plain.supported, None);
        let reply = PeerMessage::HeartbeatReply {
            controller: Some(1),
            fenced: true,
            refused: Some("too old".into()),
        };
        let bytes = reply.encode();
        assert_eq!(PeerMessage::decode(&bytes), Ok(reply));
        let earlier: PeerMessage = postcard::from_bytes(&bytes).expect("earlier build reads");
        assert!(matches!(
            earlier,
            PeerMessage::HeartbeatReply {
                refused: None,
                fenced: true,
                ..
            }
        ));
        let mut fetch = ReplicaFetch {
            correlation: 3,
            topic_id: [7; 16],
            partition: 1,
            leader_epoch: 2,
            fetch_offset: 40,
            durable_offset: 40,
            max_bytes: 1 << 20,
            max_wait_ms: 500,
            log_start_offset: None,
        };
        let old = PeerMessage::Fetch(fetch.clone()).encode();
        assert_eq!(
            PeerMessage::decode(&old),
            Ok(PeerMessage::Fetch(fetch.clone()))
        );
        fetch.log_start_offset = Some(12);
        let bytes = PeerMessage::Fetch(fetch.clone()).encode();
        assert!(bytes.len() > old.len() && bytes.starts_with(&old));
        assert_eq!(PeerMessage::decode(&bytes), Ok(PeerMessage::Fetch(fetch)));
        let earlier: PeerMessage = postcard::from_bytes(&bytes).expect("earlier build reads");
        assert!(matches!(earlier, PeerMessage::Fetch(f) if f.log_start_offset.is_none()));
        // A later build's longer trailer: what this build knows is read, the rest ignored.
        let mut longer = PeerMessage::Heartbeat(heartbeat.clone()).encode();
        longer.extend([1, 2, 3]);
        assert_eq!(
            PeerMessage::decode(&longer),
            Ok(PeerMessage::Heartbeat(heartbeat))
        );
    }
}
