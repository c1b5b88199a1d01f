//! weir-edge: the protocol between Weir's WASM client (browsers, edge runtimes, Node) and
//! the WebSocket gateway built into the broker.
//!
//! Every WebSocket *binary* message carries exactly one postcard-encoded value:
//! 1. the client opens with a [`ClientHello`] (magic, the range of versions it speaks);
//! 2. the gateway answers with a [`ServerHello`]: `Accepted` names the negotiated version
//!    (the highest both sides speak), `Rejected` says why and which versions the gateway
//!    speaks, and the gateway then closes the socket (close code 1002);
//! 3. afterwards the client sends [`Request`]s and the gateway answers each with exactly one
//!    [`Response`] carrying the same `id`, in any order.
//!
//! Operations are high level (produce one record, poll a consumer, commit): the gateway maps
//! them onto the broker's Kafka code paths, so this crate knows nothing of Kafka's wire
//! format. Errors carry Kafka's error code and name (`UNKNOWN_TOPIC_OR_PARTITION`).
//!
//! # Architecture invariants
//! - No tokio, no kafka-protocol, no IO: the crate builds for `wasm32-unknown-unknown` and
//!   is shared verbatim by the gateway and the client. The client side of SASL ([`sasl`])
//!   uses pure-Rust crypto (RustCrypto), so it builds for wasm32 too.
//! - Decoding never panics on input bytes; oversized values are bounded by the WebSocket
//!   message limit ([`FRAME_BYTES_MAX`]) the gateway enforces before decoding.
//! - Version 1 frames never change meaning: a new field or operation is a new version, and
//!   the handshake negotiates it ([`negotiate`]). New operations and replies are appended to
//!   the enums, so every version-1 value keeps its encoding; an operation newer than the
//!   session's version is answered with `UNSUPPORTED_VERSION` ([`Op::version_min`]).
//!
//! # Versions
//! - 1: produce one record (idempotence scoped to the gateway session), consumers reading
//!   uncommitted, commits, topics.
//! - 2: the client is the idempotent producer: [`Op::InitProducer`] hands it a producer id
//!   and epoch, [`Op::DescribeTopic`] the partition count, and [`Op::ProduceBatch`] carries
//!   the client's partition and sequence numbers, so a batch resent after a reconnect (to
//!   any gateway, even after a broker restart) is deduplicated by the broker's own producer
//!   state. [`Op::SubscribeIsolated`] adds the isolation level (read_committed).
//! - 3: authentication. A gateway that requires it (`weir.gateway.sasl.enabled.mechanisms`)
//!   answers the hello with [`ServerHello::Authenticate`] (the version and the mechanisms it
//!   accepts) instead of `Accepted`; the client then sends [`SaslFrame::Start`] (mechanism
//!   and first message) and [`SaslFrame::Continue`] frames, each answered with one
//!   [`SaslAnswer`]: `Challenge`, then `Success` (the session is open, as after
//!   `Accepted`) or `Failure` (the gateway closes the socket with code 1008 and
//!   [`SASL_FAILED_REASON`]). The messages are the ones Kafka's SaslAuthenticate carries
//!   (PLAIN, SCRAM-SHA-256/512). A gateway that requires authentication refuses clients
//!   below version 3; one that does not answers `Accepted` at any version, as before.

use serde::{Deserialize, Serialize};

pub mod sasl;

/// Marks a Weir edge hello, so a stray client fails the handshake with a clear reason.
pub const MAGIC: [u8; 4] = *b"WEIR";
/// Oldest protocol version this build speaks.
pub const VERSION_MIN: u16 = 1;
/// Newest protocol version this build speaks.
pub const VERSION_MAX: u16 = 3;
/// The version that made the client the idempotent producer and added isolation levels.
pub const VERSION_CLIENT_PRODUCER: u16 = 2;
/// The version that added SASL authentication to the handshake.
pub const VERSION_SASL: u16 = 3;
/// The close reason of a session whose authentication failed (close code 1008).
pub const SASL_FAILED_REASON: &str = "SASL authentication failed";
/// Unacknowledged batches per producer and partition a client may have: the broker
/// remembers the last 5 batches of each producer and partition (Kafka's rule, which also
/// bounds `max.in.flight.requests.per.connection`), so a resent batch is recognised as a
/// duplicate only while at most this many are outstanding.
pub const PRODUCE_BATCHES_IN_FLIGHT_MAX: usize = 5;
/// Records in one [`ProduceBatch`].
pub const BATCH_RECORDS_MAX: usize = 10_000;
/// Kafka's error code for an operation the session's protocol version lacks.
pub const UNSUPPORTED_VERSION_CODE: i16 = 35;
/// Largest WebSocket message either side sends or accepts.
pub const FRAME_BYTES_MAX: usize = 4 * 1024 * 1024;
/// WebSocket close code the gateway uses when it refuses the handshake (protocol error).
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// WebSocket close code the gateway uses when a client breaks a session limit (policy).
pub const CLOSE_POLICY_VIOLATION: u16 = 1008;

/// The client's first message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHello {
    /// Always [`MAGIC`].
    pub magic: [u8; 4],
    /// Oldest version the client speaks.
    pub version_min: u16,
    /// Newest version the client speaks.
    pub version_max: u16,
    /// Free-form client name and version, for the gateway's logs.
    pub client: String,
}

impl ClientHello {
    /// A hello for this build's version range.
    pub fn new(client: &str) -> ClientHello {
        ClientHello {
            magic: MAGIC,
            version_min: VERSION_MIN,
            version_max: VERSION_MAX,
            client: client.to_owned(),
        }
    }
}

/// The gateway's answer to a [`ClientHello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerHello {
    /// The session is open at `version`.
    Accepted {
        /// The negotiated version.
        version: u16,
        /// The broker's node id (for logs and debugging).
        node_id: i32,
        /// Gateway session id (unique per broker process).
        session: u64,
    },
    /// The handshake failed; the gateway closes the socket after this message.
    Rejected {
        /// Human-readable reason.
        reason: String,
        /// Oldest version the gateway speaks.
        version_min: u16,
        /// Newest version the gateway speaks.
        version_max: u16,
    },
    // ---- version 3 -----------------------------------------------------------------------
    /// The gateway requires authentication: the session opens after a SASL exchange
    /// ([`SaslFrame`], [`SaslAnswer`]). Only sent at version 3 or newer.
    Authenticate {
        /// The negotiated version.
        version: u16,
        /// The mechanisms the gateway accepts, e.g. `PLAIN`, `SCRAM-SHA-256`.
        mechanisms: Vec<String>,
    },
}

/// A client's SASL frame (version 3), sent after [`ServerHello::Authenticate`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaslFrame {
    /// Start an exchange: the mechanism's name and the client's first message (PLAIN's
    /// only message, SCRAM's client-first).
    Start {
        /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
        mechanism: String,
        /// The first message.
        message: Vec<u8>,
    },
    /// The next client message (SCRAM's client-final), answering a `Challenge`.
    Continue {
        /// The message.
        message: Vec<u8>,
    },
}

impl std::fmt::Debug for SaslFrame {
    // Messages may hold a password (PLAIN) or a proof: never formatted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaslFrame::Start { mechanism, .. } => f
                .debug_struct("Start")
                .field("mechanism", mechanism)
                .finish_non_exhaustive(),
            SaslFrame::Continue { .. } => f.debug_struct("Continue").finish_non_exhaustive(),
        }
    }
}

/// The gateway's answer to a [`SaslFrame`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaslAnswer {
    /// The mechanism's next server message (SCRAM's server-first); answer with `Continue`.
    Challenge {
        /// The message.
        message: Vec<u8>,
    },
    /// Authenticated: the session is open, as after [`ServerHello::Accepted`].
    Success {
        /// The mechanism's last server message (SCRAM's server-final, which the client
        /// checks; empty for PLAIN).
        message: Vec<u8>,
        /// The broker's node id.
        node_id: i32,
        /// Gateway session id.
        session: u64,
    },
    /// Refused; the gateway closes the socket (1008, [`SASL_FAILED_REASON`]).
    Failure {
        /// Kafka's message (no secret), e.g. which mechanisms are enabled.
        reason: String,
    },
}

/// Pick the version for a hello, or say why there is none.
pub fn negotiate(hello: &ClientHello) -> Result<u16, String> {
    if hello.magic != MAGIC {
        return Err("not a Weir edge client (bad magic)".to_owned());
    }
    if hello.version_min > hello.version_max {
        return Err(format!(
            "empty version range {}..={}",
            hello.version_min, hello.version_max
        ));
    }
    let version = hello.version_max.min(VERSION_MAX);
    if version < hello.version_min.max(VERSION_MIN) {
        return Err(format!(
            "unsupported protocol version: client speaks {}..={}, gateway speaks {}..={}",
            hello.version_min, hello.version_max, VERSION_MIN, VERSION_MAX
        ));
    }
    Ok(version)
}

/// A client request; answered by exactly one [`Response`] with the same `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the client, unique among its unanswered requests.
    pub id: u32,
    /// What to do.
    pub op: Op,
}

/// Operations; those of version 2 follow version 1's (see [`Op::version_min`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// Append one record; answered with [`Reply::Produced`].
    Produce(Produce),
    /// Start (or resume) a consumer; answered with [`Reply::Subscribed`].
    Subscribe(Subscribe),
    /// Wait for records of a consumer; answered with [`Reply::Records`] (maybe empty).
    /// At most one poll per consumer may be unanswered.
    Poll(Poll),
    /// Commit a consumer's positions (next offsets to read); answered with
    /// [`Reply::Committed`].
    Commit {
        /// The consumer's handle.
        consumer: u32,
        /// Positions to commit.
        offsets: Vec<Position>,
    },
    /// Leave the group and drop the consumer; answered with [`Reply::Unsubscribed`].
    Unsubscribe {
        /// The consumer's handle.
        consumer: u32,
    },
    /// List topics; answered with [`Reply::Topics`].
    ListTopics,
    /// Create topics; answered with [`Reply::Created`].
    CreateTopics(Vec<NewTopic>),
    // ---- version 2 -----------------------------------------------------------------------
    /// Start a new idempotent producer; answered with [`Reply::Producer`]. The client keeps
    /// the producer id and epoch for as long as it lives (across reconnects) and numbers its
    /// batches itself ([`ProduceBatch::sequence`]).
    InitProducer,
    /// A topic's partition count (the client partitions its records itself); answered with
    /// [`Reply::Topic`].
    DescribeTopic {
        /// Topic name.
        topic: String,
        /// Create the topic with the broker's defaults if it does not exist (and the
        /// broker allows auto-creation), as a produce to it would.
        create: bool,
    },
    /// Append records to one partition as one record batch; answered with
    /// [`Reply::Produced`] carrying the first record's offset (record `i` is at
    /// `offset + i`). A batch resent with the same producer, epoch and sequences is answered
    /// with the offsets it got the first time and not appended again.
    ProduceBatch(ProduceBatch),
    /// [`Op::Subscribe`] with an isolation level; answered with [`Reply::Subscribed`].
    SubscribeIsolated {
        /// The subscription.
        subscribe: Subscribe,
        /// Which records the consumer may read.
        isolation: Isolation,
    },
}

impl Op {
    /// The first protocol version with this operation.
    pub fn version_min(&self) -> u16 {
        match self {
            Op::Produce(_)
            | Op::Subscribe(_)
            | Op::Poll(_)
            | Op::Commit { .. }
            | Op::Unsubscribe { .. }
            | Op::ListTopics
            | Op::CreateTopics(_) => 1,
            Op::InitProducer
            | Op::DescribeTopic { .. }
            | Op::ProduceBatch(_)
            | Op::SubscribeIsolated { .. } => VERSION_CLIENT_PRODUCER,
        }
    }

    /// The operation's name, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Produce(_) => "Produce",
            Op::Subscribe(_) => "Subscribe",
            Op::Poll(_) => "Poll",
            Op::Commit { .. } => "Commit",
            Op::Unsubscribe { .. } => "Unsubscribe",
            Op::ListTopics => "ListTopics",
            Op::CreateTopics(_) => "CreateTopics",
            Op::InitProducer => "InitProducer",
            Op::DescribeTopic { .. } => "DescribeTopic",
            Op::ProduceBatch(_) => "ProduceBatch",
            Op::SubscribeIsolated { .. } => "SubscribeIsolated",
        }
    }
}

/// Acknowledgement level of a produce, Kafka's `acks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Acks {
    /// acks=1: the leader appended the record.
    Leader,
    /// acks=all: every in-sync replica has it.
    All,
}

/// Produce one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Produce {
    /// Topic name.
    pub topic: String,
    /// Partition, or `None` to let the gateway choose (murmur2 of the key, as Kafka's
    /// default partitioner; round robin for keyless records).
    pub partition: Option<i32>,
    /// Acknowledgement level.
    pub acks: Acks,
    /// Use an idempotent producer (the session's producer id and sequence numbers).
    pub idempotent: bool,
    /// The record.
    pub record: NewRecord,
}

/// Records for one partition, written as one record batch (version 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProduceBatch {
    /// Topic name.
    pub topic: String,
    /// Partition (the client chose it: explicit, murmur2 of the key via
    /// [`partition_for_key`], or round robin).
    pub partition: i32,
    /// Acknowledgement level ([`Acks::All`] for idempotent batches).
    pub acks: Acks,
    /// The idempotent producer's stamp, `None` for a plain batch.
    pub sequence: Option<ProducerSequence>,
    /// The records, at least one and at most [`BATCH_RECORDS_MAX`].
    pub records: Vec<NewRecord>,
}

/// An idempotent batch's producer and first sequence number. Sequences count records per
/// producer, epoch and partition from 0, wrap from `i32::MAX` to 0, and never wrap inside
/// one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerSequence {
    /// From [`Reply::Producer`].
    pub producer_id: i64,
    /// From [`Reply::Producer`].
    pub producer_epoch: i16,
    /// Sequence number of the batch's first record.
    pub base_sequence: i32,
}

/// Which records a consumer reads (Kafka's `isolation.level`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Isolation {
    /// Every record up to the high watermark, aborted transactions' records included.
    #[default]
    ReadUncommitted,
    /// Records up to the last stable offset (nothing of an open transaction), aborted
    /// transactions' records left out.
    ReadCommitted,
}

/// A record to produce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRecord {
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value (`None` is a tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<Header>,
    /// CreateTime in ms since the epoch, `None` for the broker's clock.
    pub timestamp: Option<i64>,
}

/// A record header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Header key.
    pub key: String,
    /// Header value.
    pub value: Option<Vec<u8>>,
}

/// Where a new consumer starts when its group has no committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartFrom {
    /// The log start.
    Earliest,
    /// The log end.
    Latest,
}

/// A partition's position: the next offset to read (or commit).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Next offset.
    pub offset: i64,
}

/// Start a consumer under a client-chosen handle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribe {
    /// Handle the client uses in later requests; unique in the session.
    pub consumer: u32,
    /// Consumer group (KIP-848 server-side assignment), or `None` to read every partition
    /// of `topics` without a group.
    pub group: Option<String>,
    /// Topics to read.
    pub topics: Vec<String>,
    /// Where to start without a committed offset.
    pub from: StartFrom,
    /// Positions the client already delivered (a resumed session): they win over
    /// committed offsets for partitions this consumer is assigned.
    pub positions: Vec<Position>,
}

/// Wait for records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Poll {
    /// The consumer's handle.
    pub consumer: u32,
    /// Longest wait for data.
    pub max_wait_ms: u32,
    /// Soft bound on the reply's record bytes.
    pub max_bytes: u32,
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partition count, -1 for the broker default.
    pub partitions: i32,
    /// Replication factor, -1 for the broker default.
    pub replication_factor: i16,
}

/// The gateway's answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id.
    pub id: u32,
    /// The outcome.
    pub result: Result<Reply, EdgeError>,
}

/// Successful outcomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// The record's place.
    Produced {
        /// Partition written.
        partition: i32,
        /// Offset assigned.
        offset: i64,
    },
    /// The consumer exists.
    Subscribed,
    /// Records in offset order per partition.
    Records(Vec<Record>),
    /// The positions are committed.
    Committed,
    /// The consumer is gone.
    Unsubscribed,
    /// Topics.
    Topics(Vec<TopicInfo>),
    /// Per-topic creation outcome (`None` = created).
    Created(Vec<(String, Option<EdgeError>)>),
    // ---- version 2 -----------------------------------------------------------------------
    /// A new idempotent producer.
    Producer {
        /// Producer id.
        producer_id: i64,
        /// Producer epoch.
        producer_epoch: i16,
    },
    /// A topic's description.
    Topic(TopicInfo),
}

/// A consumed record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// CreateTime or LogAppendTime, ms since the epoch.
    pub timestamp: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub value: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<Header>,
}

/// A topic in [`Reply::Topics`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    /// Name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Internal topic (e.g. `__consumer_offsets`).
    pub internal: bool,
}

/// A failed request: Kafka's error code and name, plus a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeError {
    /// Kafka error code (-1 for errors with no Kafka code).
    pub code: i16,
    /// Kafka error name, e.g. `UNKNOWN_TOPIC_OR_PARTITION`; clients use it as the JS
    /// `Error.name`.
    pub name: String,
    /// Human-readable detail.
    pub message: String,
}

impl EdgeError {
    /// An error with a Kafka code and name.
    pub fn new(code: i16, name: &str, message: impl Into<String>) -> EdgeError {
        EdgeError {
            code,
            name: name.to_owned(),
            message: message.into(),
        }
    }
}

/// The partition Kafka's default partitioner gives a key: Java's
/// `Utils.toPositive(murmur2(key)) % partition_count` (0 for a non-positive count), as Java,
/// librdkafka (`murmur2_random`) and the gateway's version-1 produce choose.
pub fn partition_for_key(key: &[u8], partition_count: i32) -> i32 {
    if partition_count <= 0 {
        return 0;
    }
    (murmur2(key) & 0x7fff_ffff) % partition_count
}

/// Kafka's Java murmur2 (seed 0x9747b28c, little-endian 4-byte blocks, unsigned tail
/// bytes), as Java's signed int. Equal bit for bit to `weir_wire::murmur2::murmur2` (a test
/// in the broker compares them; this crate may not depend on weir-wire).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Java hashes the length as an int: keys past 4 GiB do not exist in a 4 MiB frame.
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if let Some(first) = rest.first() {
        h ^= u32::from(*first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed edge frame: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Encode any frame value.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // postcard serializes these plain data types infallibly into a growing Vec.
    postcard::to_allocvec(value).unwrap_or_default()
}

/// Decode a frame value; trailing bytes are an error (a frame is exactly one value).
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(DecodeError(format!("{} trailing bytes", rest.len()))),
        Err(error) => Err(DecodeError(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the handshake picks the highest common version and refuses disjoint ranges and
    // foreign clients with a reason. Method: negotiate over hand-built hellos.
    #[test]
    fn negotiates_highest_common_version() {
        assert_eq!(negotiate(&ClientHello::new("t")), Ok(VERSION_MAX));
        let wide = ClientHello {
            version_max: VERSION_MAX + 5,
            ..ClientHello::new("t")
        };
        assert_eq!(negotiate(&wide), Ok(VERSION_MAX));
        let future = ClientHello {
            version_min: VERSION_MAX + 1,
            version_max: VERSION_MAX + 3,
            ..ClientHello::new("t")
        };
        let reason = negotiate(&future).unwrap_err();
        assert!(reason.contains("unsupported protocol version"), "{reason}");
        let foreign = ClientHello {
            magic: *b"HTTP",
            ..ClientHello::new("t")
        };
        assert!(negotiate(&foreign).unwrap_err().contains("magic"));
        let empty = ClientHello {
            version_min: 3,
            version_max: 2,
            ..ClientHello::new("t")
        };
        assert!(negotiate(&empty).is_err());
    }

    // Goal: frames round-trip and garbage or trailing bytes are errors, never panics.
    // Method: encode/decode a request and a response, then decode corrupted bytes.
    #[test]
    fn frames_round_trip_and_reject_garbage() {
        let request = Request {
            id: 7,
            op: Op::Produce(Produce {
                topic: "t".into(),
                partition: None,
                acks: Acks::All,
                idempotent: true,
                record: NewRecord {
                    key: Some(b"k".to_vec()),
                    value: Some(vec![0, 1, 2]),
                    headers: vec![Header {
                        key: "h".into(),
                        value: None,
                    }],
                    timestamp: Some(5),
                },
            }),
        };
        let bytes = encode(&request);
        assert_eq!(decode::<Request>(&bytes), Ok(request));
        let response = Response {
            id: 7,
            result: Err(EdgeError::new(
                3,
                "UNKNOWN_TOPIC_OR_PARTITION",
                "no such topic",
            )),
        };
        assert_eq!(decode::<Response>(&encode(&response)), Ok(response));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode::<Request>(&trailing).is_err());
        for cut in 0..bytes.len() {
            assert!(decode::<Request>(&bytes[..cut]).is_err());
        }
        assert!(decode::<Request>(&[0xff; 16]).is_err());
    }

    // Goal: version 2 appends operations and replies without changing a version-1 byte,
    // and says which version each operation needs. Method: golden bytes of version-1 values
    // (variant indices 0..=6 of Op, 0..=6 of Reply), round trips of the version-2 values.
    #[test]
    fn version_two_appends_without_changing_version_one() {
        assert_eq!(
            encode(&Request {
                id: 1,
                op: Op::ListTopics
            }),
            vec![1, 5]
        );
        let unsubscribe = Request {
            id: 2,
            op: Op::Unsubscribe { consumer: 3 },
        };
        assert_eq!(encode(&unsubscribe), vec![2, 4, 3]);
        let created = Response {
            id: 1,
            result: Ok(Reply::Created(Vec::new())),
        };
        assert_eq!(encode(&created), vec![1, 0, 6, 0]);
        assert_eq!(Op::ListTopics.version_min(), 1);
        assert_eq!(Op::InitProducer.version_min(), VERSION_CLIENT_PRODUCER);
        let batch = Op::ProduceBatch(ProduceBatch {
            topic: "t".into(),
            partition: 2,
            acks: Acks::All,
            sequence: Some(ProducerSequence {
                producer_id: 7,
                producer_epoch: 0,
                base_sequence: 5,
            }),
            records: vec![NewRecord {
                key: None,
                value: Some(b"v".to_vec()),
                headers: Vec::new(),
                timestamp: None,
            }],
        });
        assert_eq!(batch.version_min(), 2);
        assert_eq!(batch.name(), "ProduceBatch");
        let subscribe = Op::SubscribeIsolated {
            subscribe: Subscribe {
                consumer: 1,
                group: None,
                topics: vec!["t".into()],
                from: StartFrom::Earliest,
                positions: Vec::new(),
            },
            isolation: Isolation::ReadCommitted,
        };
        for op in [batch, subscribe, Op::InitProducer] {
            let request = Request { id: 9, op };
            // Version-2 operations sit after the seven of version 1.
            assert!(encode(&request)[1] >= 7);
            assert_eq!(decode::<Request>(&encode(&request)), Ok(request));
        }
        let producer = Response {
            id: 3,
            result: Ok(Reply::Producer {
                producer_id: 11,
                producer_epoch: 1,
            }),
        };
        assert_eq!(decode::<Response>(&encode(&producer)), Ok(producer));
        assert_eq!(Isolation::default(), Isolation::ReadUncommitted);
    }

    // Goal: version 3's handshake values append to version 1's without changing them, and
    // SASL frames never print their messages. Method: golden bytes of `Accepted`, round
    // trips of the new values, Debug of a PLAIN start.
    #[test]
    fn version_three_sasl_frames() {
        let accepted = ServerHello::Accepted {
            version: 1,
            node_id: 2,
            session: 3,
        };
        assert_eq!(encode(&accepted), vec![0, 1, 4, 3]);
        let authenticate = ServerHello::Authenticate {
            version: VERSION_SASL,
            mechanisms: vec!["PLAIN".into()],
        };
        assert_eq!(encode(&authenticate)[0], 2);
        assert_eq!(
            decode::<ServerHello>(&encode(&authenticate)),
            Ok(authenticate)
        );
        let start = SaslFrame::Start {
            mechanism: "PLAIN".into(),
            message: b"\0alice\0alice-secret".to_vec(),
        };
        assert!(!format!("{start:?}").contains("secret"));
        assert_eq!(decode::<SaslFrame>(&encode(&start)), Ok(start));
        for answer in [
            SaslAnswer::Challenge { message: vec![1] },
            SaslAnswer::Success {
                message: Vec::new(),
                node_id: 1,
                session: 9,
            },
            SaslAnswer::Failure {
                reason: SASL_FAILED_REASON.into(),
            },
        ] {
            assert_eq!(decode::<SaslAnswer>(&encode(&answer)), Ok(answer));
        }
    }

    // Goal: the client-side partitioner is Kafka's (Java murmur2, toPositive, modulo).
    // Method: golden values computed with kafka-python 3.0.12 (the same table as
    // weir_wire::murmur2's tests), every tail length and bytes >= 0x80.
    #[test]
    fn partitioner_matches_kafka() {
        let all: Vec<u8> = (0..=255u8).collect();
        let cases: &[(&[u8], u32)] = &[
            (b"", 275_646_681),
            (b"a", 2_731_586_172),
            (b"ab", 316_155_434),
            (b"abc", 479_470_107),
            (b"foo", 597_841_616),
            (b"hello world", 1_221_641_059),
            (b"key-12345", 3_342_263_381),
            (&all, 2_346_620_022),
            (b"\xff\xfe\x80", 4_134_240_899),
        ];
        for (key, want) in cases {
            assert_eq!(murmur2(key) as u32, *want, "key {key:?}");
        }
        assert_eq!(
            partition_for_key(b"foo", 3),
            (597_841_616 & 0x7fff_ffff) % 3
        );
        assert_eq!(partition_for_key(b"foo", 0), 0);
    }
}
