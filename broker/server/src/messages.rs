//! The messages between the node loop and the tasks around it: [`NodeInput`] is what
//! connections, peer readers, the gateway and `/metrics` tell the node loop; [`ConnEvent`]
//! is what a connection's writer is told, by its reader and by the node loop.
//!
//! They live apart from both ends so that every task stands on this file alone: the node
//! loop, the connections and the peer transport never import one another for a type.

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use weir_core::cluster::peer::PeerMessage;
use weir_core::node::metrics::MetricsSnapshot;
use weir_core::{Principal, RequestId};
use weir_wire::codec::RequestHeader;
use weir_wire::domain::{ApiRequest, ApiResponse};
use weir_wire::sasl::{ScramCredential, ScramMechanism};

/// Capacity of the node loop's input channel; connection readers wait when it is full.
pub const NODE_INPUTS_MAX: usize = 1024;

/// What connections tell the node loop.
// A request is moved through the channel once; boxing it would cost an allocation per
// request to shrink the rare Connect/Disconnect messages.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum NodeInput {
    /// The schema registry is up: its side of broker-side schema validation.
    SchemaValidator(weir_core::schema_check::SharedValidator),
    /// A connection opened; its responses go to `events`.
    Connect {
        /// Connection id (unique for the process lifetime).
        conn: u64,
        /// The connection's writer.
        events: mpsc::UnboundedSender<ConnEvent>,
    },
    /// A decoded request.
    Request {
        /// Connection and per-connection sequence number.
        id: RequestId,
        /// The request.
        request: ApiRequest,
    },
    /// The connection's client address (Kafka's ACL host: the IP, no port), sent right
    /// after `Connect` by Kafka listeners' connections.
    ClientHost {
        /// Connection id.
        conn: u64,
        /// The peer's IP address.
        host: String,
    },
    /// The connection authenticated (SASL) as `principal`; sent before any request that
    /// follows the authentication, on this same ordered channel.
    Authenticated {
        /// Connection id.
        conn: u64,
        /// Its principal.
        principal: Principal,
    },
    /// A SASL exchange needs `user`'s SCRAM credential from the metadata image.
    ScramCredential {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
        /// Where the credential goes (`None`: no such user or mechanism).
        reply: oneshot::Sender<Option<ScramCredential>>,
    },
    /// The connection closed: drop its pending work.
    Disconnect {
        /// Connection id.
        conn: u64,
    },
    /// The feature levels an ApiVersions answer carries (supported and finalized
    /// `metadata.version`), read between two inputs.
    FeatureLevels {
        /// Where they go; a dropped receiver is ignored.
        reply: oneshot::Sender<weir_wire::domain::features::FeatureLevels>,
    },
    /// A read-only metrics snapshot for `/metrics`, taken between two inputs.
    Metrics {
        /// Where the snapshot goes; a dropped receiver is ignored.
        reply: oneshot::Sender<MetricsSnapshot>,
    },
    /// `/healthz` and `/readyz`: the node's readiness, judged between two inputs (an
    /// answer at all is what `/healthz` checks: the node loop is alive).
    Health {
        /// Where the judgement goes; a dropped receiver is ignored.
        reply: oneshot::Sender<weir_core::Readiness>,
    },
    /// A message from another node of the cluster (decoded by a peer reader).
    Peer {
        /// The sending node's id, from its connection's hello.
        from: i32,
        /// The message.
        message: PeerMessage,
    },
    /// An inbound connection from another node ended (EOF or error): a hint that the node
    /// may be gone (a killed process's connections close at once).
    PeerClosed {
        /// The node whose connection closed, from its hello.
        from: i32,
    },
    /// What shard 0 applied of the metadata log since its last feed (docs/sharding.md):
    /// a data shard applies it (`Node::handle_metadata_feed`). Only shard 0's loop sends
    /// it, to one data shard.
    Feed(weir_core::shard::MetadataFeed),
    /// Answer the parked fetch `id` now with what there is: another shard's part of the
    /// same split fetch answered with records (`Node::answer_parked_fetch`).
    AnswerFetchNow {
        /// The fetch.
        id: RequestId,
    },
    /// Shut down (SIGTERM): with `controlled_timeout_ms`, first have the controller move
    /// this broker's leaderships (`Node::begin_controlled_shutdown`, waiting at most that
    /// long); then flush storage, let every client connection write what is answered and
    /// close, answer `reply` and end the node loop (Ok).
    Shutdown {
        /// `Some(timeout)`: a controlled shutdown; `None`: flush and stop at once.
        controlled_timeout_ms: Option<u64>,
        /// Where the report goes once storage is flushed.
        reply: oneshot::Sender<ShutdownReport>,
    },
}

/// How a shutdown went (see [`NodeInput::Shutdown`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// The controlled shutdown's outcome (`Ready`), `None` when none was asked for.
    pub controlled: Option<weir_core::ShutdownStatus>,
    /// The final flush's error, if it failed.
    pub flush_error: Option<String>,
}

/// What the writer task is told, by the reader and by the node loop, in causal order.
#[derive(Debug)]
pub enum ConnEvent {
    /// A request went to the node; its response arrives later as [`ConnEvent::Response`].
    Expect {
        /// Sequence number of the request on this connection.
        seq: u64,
        /// The request's header (the response is encoded for its API version).
        header: RequestHeader,
        /// The shards its parts went to, in part order, when it was split over several
        /// (docs/sharding.md): the writer merges their answers. `None`: one part.
        parts: Option<Vec<u16>>,
    },
    /// A response the reader built itself (ApiVersions, errors for unsupported APIs).
    Ready {
        /// Sequence number of the request.
        seq: u64,
        /// The encoded response, length prefix included.
        frame: Bytes,
    },
    /// The node's response to an expected request.
    Response {
        /// Sequence number of the request.
        seq: u64,
        /// The shard that answered (its part, for a split request).
        shard: u16,
        /// The response (fetch bytes and timestamp lookups still unresolved).
        response: ApiResponse,
    },
    /// A response whose remote reads (tiered storage) a task of the writer resolved; it
    /// takes the place the request holds in the response order.
    Resolved {
        /// Sequence number of the request.
        seq: u64,
        /// The response, its remote reads resolved (local reads still to do).
        response: ApiResponse,
    },
    /// The node completed an expected request without an answer (an acks=0 produce);
    /// with `close`, the connection closes once the requests before it are written.
    NoResponse {
        /// Sequence number of the request.
        seq: u64,
        /// The shard that completed it (its part, for a split request).
        shard: u16,
        /// Close the connection instead (the produce was refused).
        close: bool,
    },
    /// A response the reader built itself after which the connection closes (a failed
    /// authentication): written in its turn, then the writer closes.
    Final {
        /// Sequence number of the request.
        seq: u64,
        /// The encoded response, length prefix included.
        frame: Bytes,
    },
    /// The reader stopped: close now, dropping unanswered requests.
    Shutdown,
    /// The broker is shutting down: write every response that is ready in order, then
    /// close the connection. The writer holds `done` until the socket is shut down, so
    /// the node loop can wait for every connection (all clones dropped).
    Drain {
        /// Dropped once this connection is closed.
        done: mpsc::Sender<()>,
    },
}
