//! The values that cross the sans-IO boundary besides requests: request identities, the
//! effects the node asks its driver to perform ([`Output`]) and the driver's reports back
//! ([`Completion`]).
//!
//! Invariants the driver relies on: outputs are applied in emission order (a
//! [`Output::Storage`] op is applied before the next output is looked at); sync ids strictly
//! increase; every request gets exactly one [`Output::Respond`] or [`Output::NoResponse`]
//! unless its connection was dropped with [`crate::Node::handle_disconnect`] first, or it
//! was handed to another shard of the broker with [`Output::Reroute`] (that shard's node
//! then answers it).

use weir_wire::domain::ApiResponse;

use crate::storage::StorageOp;

/// Where a request came from: the answer goes back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// A client connection; the driver assigned its id and gets the answer.
    Client {
        /// Driver-assigned connection id.
        conn: u64,
    },
    /// An admin request another broker forwarded to this controller (its `seq` is the
    /// forwarding broker's correlation): answered over the peer protocol.
    Forwarded {
        /// The forwarding broker.
        from: i32,
    },
    /// The marker of a group coordinator's metadata write: its "answer" tells the group
    /// coordinator the record is durable (and replicated); nothing leaves the node.
    GroupWrite,
}

/// Who sends a connection's requests: Kafka's `KafkaPrincipal` of type `User`, the
/// authenticated SASL user, or `User:ANONYMOUS` on a listener without authentication.
///
/// The driver tells the node a connection's principal once it authenticated
/// ([`crate::Node::handle_authenticated`]); every request of that connection is then the
/// principal's ([`crate::Node::principal`]). Nothing is checked against it yet: it is the
/// input authorization (ACLs, issue 15 item 3) will read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Principal {
    /// The user name (`ANONYMOUS` for the unauthenticated principal).
    pub name: String,
}

impl Principal {
    /// Kafka's name of the unauthenticated user.
    pub const ANONYMOUS_NAME: &'static str = "ANONYMOUS";

    /// `User:<name>`.
    pub fn user(name: &str) -> Principal {
        Principal {
            name: name.to_owned(),
        }
    }

    /// `User:ANONYMOUS`.
    pub fn anonymous() -> Principal {
        Principal::user(Self::ANONYMOUS_NAME)
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "User:{}", self.name)
    }
}

/// Identifies one request: where it came from and its sequence there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId {
    /// Its origin.
    pub origin: Origin,
    /// Sequence number within the origin (driver-assigned for clients).
    pub seq: u64,
}

impl RequestId {
    /// Request `seq` of client connection `conn`.
    pub fn client(conn: u64, seq: u64) -> RequestId {
        RequestId {
            origin: Origin::Client { conn },
            seq,
        }
    }

    /// The client connection it came on, if a client sent it.
    pub fn conn(&self) -> Option<u64> {
        match self.origin {
            Origin::Client { conn } => Some(conn),
            Origin::Forwarded { .. } | Origin::GroupWrite => None,
        }
    }
}

/// How durable a sync must make the writes applied before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Survive power loss (fsync / fjall `PersistMode::SyncAll`).
    Fsync,
    /// Survive a process crash: handed to the OS (fjall `PersistMode::Buffer`).
    OsBuffer,
}

/// An effect for the driver to perform.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send a response. Fetch partitions may carry `FetchRecords::Read` and ListOffsets
    /// partitions a `lookup`: the driver resolves them through storage (verifying the CRC
    /// of every batch it reads) before encoding.
    Respond {
        /// The request being answered.
        id: RequestId,
        /// The answer.
        response: ApiResponse,
    },
    /// The request is complete but gets no answer on the wire: an acks=0 produce (Kafka
    /// never answers those). With `close`, its batch was refused and the driver closes the
    /// connection instead, as Kafka does, so the producer learns of the failure. The
    /// driver still retires the request's place in its connection's answer order.
    NoResponse {
        /// The request completed.
        id: RequestId,
        /// Close the connection (a partition of the produce failed).
        close: bool,
    },
    /// Apply this write before looking at the next output.
    Storage(StorageOp),
    /// Make every write applied so far durable with `mode`, then report
    /// [`Completion::Synced`] with this id. Ids increase; the driver may coalesce several
    /// syncs into one and report only the largest id.
    Sync {
        /// Identifies the sync in its completion.
        sync_id: u64,
        /// Required durability.
        mode: SyncMode,
    },
    /// Send a message to another node of the cluster (at `addr`, its controller listener).
    /// The driver resolves reads in it ([`crate::cluster::peer::PeerMessage::resolve_reads`]),
    /// encodes it and queues it on its connection to `to`; it may drop it when that queue is
    /// full or the connection is down (every peer exchange is retried by its sender).
    Peer {
        /// Destination node id.
        to: i32,
        /// Destination controller listener, `host:port`.
        addr: String,
        /// The message.
        message: crate::cluster::peer::PeerMessage,
    },
    /// Run this compaction job over storage, off the event loop (it only reads, see
    /// [`crate::cleaner::run_job`]), and report [`Completion::Compacted`]. The node keeps
    /// at most a few in flight; a driver that never runs them only leaves logs uncleaned.
    Compact(Box<crate::cleaner::CompactionJob>),
    /// Upload this closed segment to the remote store, off the event loop (it reads
    /// storage with [`crate::tier::SegmentReader`] and writes one new object), and report
    /// [`Completion::Uploaded`]. A driver without a remote store reports it failed.
    Upload(Box<crate::tier::UploadJob>),
    /// Delete these objects from the remote store; no completion (a failure leaves an
    /// orphan for the next sweep).
    DeleteRemote(crate::tier::DeleteJob),
    /// List a prefix of the remote store and delete the objects it does not keep; no
    /// completion.
    SweepRemote(crate::tier::SweepJob),
    /// A broker of several shards: hand `request` to shard `shard` of this broker, which
    /// answers it under the same `id` (this node will not). Emitted for a group or
    /// transaction request that waited here for its coordinator's internal topic (a client
    /// that skipped FindCoordinator on a fresh broker): the router could not place it
    /// before the topic existed, and the topic put its coordinator in another shard. A
    /// driver that cannot deliver it gives it back with [`crate::Node::handle_request`]
    /// (then answered NOT_COORDINATOR, which a client retries after FindCoordinator).
    Reroute {
        /// The request's id (its answer keeps it).
        id: RequestId,
        /// The shard that coordinates it.
        shard: u16,
        /// The request.
        request: weir_wire::domain::ApiRequest,
    },
    /// Storage failed: the node has stopped accepting work. The driver must stop serving
    /// and exit non-zero.
    Poisoned {
        /// Human-readable cause.
        reason: String,
    },
}

/// The driver's report about storage work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Every sync with id <= `sync_id` is done.
    Synced {
        /// The largest completed sync id.
        sync_id: u64,
    },
    /// An apply or sync failed; nothing after the last completed sync is known durable.
    Failed {
        /// Human-readable cause.
        reason: String,
    },
    /// A compaction job ran: what it would replace, or why it could not clean (stored
    /// bytes that do not parse). A storage error while reading is reported as
    /// [`Completion::Failed`] instead.
    Compacted(Result<Box<crate::cleaner::CompactionResult>, crate::cleaner::JobFailed>),
    /// An upload finished: the object is whole in the store, or it failed (and may have
    /// left an orphan). A storage error while reading local data is a failure too (the
    /// node retries; storage errors that matter surface on its own reads and syncs).
    Uploaded(Result<crate::tier::Uploaded, crate::tier::UploadFailed>),
}
