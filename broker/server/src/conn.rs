//! One client connection: a reader task that frames and decodes requests, and a writer
//! task that resolves and encodes responses.
//!
//! Invariants:
//! - Responses are written in request order (Kafka clients match them by order as much as
//!   by correlation id): the writer holds finished responses in a `BTreeMap` keyed by the
//!   per-connection sequence number and writes only the next expected one.
//! - At most [`IN_FLIGHT_MAX`] requests per connection are unanswered; the reader stops
//!   reading (TCP backpressure) until the writer frees a slot. Across connections, a frame
//!   is read only once [`ClientLimits::admit`] let it in (`queued.max.requests`,
//!   `queued.max.request.bytes`); its admission is held until its response is written or
//!   the connection ends.
//! - An acks=0 produce never gets a response on the wire (aiokafka treats a stray one as
//!   fatal); if it failed, the connection is closed, as Kafka does.
//! - Bytes read from storage are served only after every batch's CRC checks out; a corrupt
//!   partition is answered with KAFKA_STORAGE_ERROR and logged, never served.
//! - A malformed or oversized frame closes this connection only, with a log line naming
//!   the peer.
//! - A response with remote reads (tiered storage, `FetchRecords::Remote`) is resolved by a
//!   spawned task, so a slow object store never stalls the connection's other answers; the
//!   request keeps its place in the order meanwhile (its slot is `Resolving`), and the
//!   resolved response comes back to the writer as `ConnEvent::Resolved`. At most
//!   [`IN_FLIGHT_MAX`] such tasks exist per connection (each holds its request's permit),
//!   and each is bounded in time by the store's deadline.
//! - On a SASL listener the reader serves nothing but ApiVersions, SaslHandshake and
//!   SaslAuthenticate until the connection authenticated ([`crate::sasl`]); anything else
//!   is answered ILLEGAL_SASL_STATE (when its response can say so) and the connection
//!   closes, as does every failed authentication after its answer is written. The
//!   authenticated principal reaches the node (`NodeInput::Authenticated`) before any
//!   request that follows it. A connection is closed at its authentication deadline and,
//!   with `connections.max.reauth.ms`, when its session ends without re-authentication.
//! - On an SSL listener, a client that presented a certificate is the principal its
//!   subject maps to (`ConnContext::principal`), sent to the node before the reader starts.
//! - Every `select!` is `biased` so simulated runs are deterministic.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use weir_core::{Principal, RequestId};
use weir_wire::codec::{self, Decoded, RequestHeader};
use weir_wire::domain::features::FeatureLevels;
use weir_wire::domain::{ApiRequest, ApiResponse};
use weir_wire::error::ErrorCode;

use crate::limits::{Admitted, ClientLimits, ConnSlot};
use crate::messages::{ConnEvent, NodeInput};
use crate::remote::{self, RemoteStore};
use crate::sasl::{Authenticator, SaslListener, Step};
use crate::shards::{NodeHandle, PartsDone};
use crate::storage::StorageDriver;

/// Unanswered requests allowed per connection before the reader pauses.
pub const IN_FLIGHT_MAX: usize = 64;
/// Initial read buffer; it grows to the largest frame seen.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Per-connection settings shared by the reader and the writer.
#[derive(Debug, Clone)]
pub struct ConnContext {
    /// Connection id, unique in this process.
    pub conn: u64,
    /// Peer address, for logs.
    pub peer: String,
    /// `socket.request.max.bytes`.
    pub frame_bytes_max: usize,
    /// This broker's endpoint on the connection's listener, when that is not the
    /// registered one: answers naming brokers are rewritten with it.
    pub advertised: Option<Arc<crate::listener::Advertised>>,
    /// Tiered storage's object store, for fetches below the local log start.
    pub remote: Option<RemoteStore>,
    /// The listener's SASL, when its protocol is SASL_PLAINTEXT or SASL_SSL.
    pub sasl: Option<Arc<SaslListener>>,
    /// The principal the transport authenticated: an mTLS client's mapped certificate
    /// subject on an SSL listener ([`crate::ssl_principal`]); `None` is `User:ANONYMOUS`
    /// until SASL says otherwise.
    pub principal: Option<Principal>,
    /// The broker-wide request budgets.
    pub limits: Arc<ClientLimits>,
    /// This connection's place under `max.connections`, held by its reader and writer.
    pub slot: Option<Arc<ConnSlot>>,
}

/// Admissions of requests not yet answered, by sequence number: the reader adds, the
/// writer drops those it wrote; the rest go when the connection ends.
type Held = Arc<std::sync::Mutex<BTreeMap<u64, Admitted>>>;

/// The held admissions (a panic elsewhere cannot leave them inconsistent: plain inserts and
/// removals).
fn lock(held: &Held) -> std::sync::MutexGuard<'_, BTreeMap<u64, Admitted>> {
    held.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Spawn the reader and writer of one accepted connection.
pub async fn start<R, St, S>(
    runtime: &R,
    stream: St,
    storage: S,
    context: ConnContext,
    node: NodeHandle,
) where
    R: weir_runtime::Runtime,
    St: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: StorageDriver,
{
    let (events_sender, events) = mpsc::unbounded_channel();
    let connect = NodeInput::Connect {
        conn: context.conn,
        events: events_sender.clone(),
    };
    if node.send(connect).await.is_err() {
        return; // The node loop has stopped; the process is exiting.
    }
    // The host ACLs match against (Kafka's `InetAddress.getHostAddress()`).
    let host = acl_host(&context.peer);
    let client_host = NodeInput::ClientHost {
        conn: context.conn,
        host,
    };
    if node.send(client_host).await.is_err() {
        return;
    }
    // Sent before the reader starts, on the same ordered channel: no request of this
    // connection reaches the node before its principal.
    if let Some(principal) = context.principal.clone() {
        tracing::debug!(
            "{}: authenticated by certificate as User:{:?}",
            context.peer,
            principal.name
        );
        let authenticated = NodeInput::Authenticated {
            conn: context.conn,
            principal,
        };
        if node.send(authenticated).await.is_err() {
            return;
        }
    }
    let (read_half, write_half) = tokio::io::split(stream);
    let permits = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    let held = Held::default();
    let (closing_sender, closing) = watch::channel(false);
    let writer = Writer {
        held: Arc::clone(&held),
        runtime: runtime.clone(),
        events,
        resolved: events_sender.downgrade(),
        storage,
        permits: Arc::clone(&permits),
        context: context.clone(),
        slots: BTreeMap::new(),
        next_seq: 0,
        draining: None,
        node: node.clone(),
    };
    runtime.spawn(async move {
        writer.run(write_half).await;
        // Wake the reader if it is still waiting on the socket.
        let _ = closing_sender.send(true);
    });
    let auth = (context.sasl.clone()).map(|sasl| Authenticator::new(sasl, runtime.now()));
    let reader = Reader {
        held,
        context,
        node,
        events: events_sender,
        permits,
        closing,
        runtime: runtime.clone(),
        auth,
    };
    runtime.spawn(reader.run(read_half));
}

/// Why the reader stopped.
enum ReadEnd {
    /// Clean EOF, the writer closed, or the node stopped.
    Closed,
    /// A protocol violation; the message is logged.
    Refused(String),
    /// A final answer was handed to the writer, which closes after writing it (a failed
    /// authentication); the message is logged.
    Answered(String),
}

struct Reader<R> {
    held: Held,
    context: ConnContext,
    node: NodeHandle,
    events: mpsc::UnboundedSender<ConnEvent>,
    permits: Arc<Semaphore>,
    closing: watch::Receiver<bool>,
    runtime: R,
    /// The connection's authentication, on a SASL listener.
    auth: Option<Authenticator>,
}

impl<R: weir_runtime::Runtime> Reader<R> {
    async fn run<Rd: AsyncRead + Unpin>(mut self, mut socket: Rd) {
        let end = self.read_requests(&mut socket).await;
        match end {
            ReadEnd::Refused(reason) => {
                tracing::warn!("closing connection from {}: {reason}", self.context.peer);
                let _ = self.events.send(ConnEvent::Shutdown);
            }
            ReadEnd::Answered(reason) => {
                tracing::info!("closing connection from {}: {reason}", self.context.peer);
            }
            ReadEnd::Closed => {
                let _ = self.events.send(ConnEvent::Shutdown);
            }
        }
        let _ = self
            .node
            .send(NodeInput::Disconnect {
                conn: self.context.conn,
            })
            .await;
    }

    async fn read_requests<Rd: AsyncRead + Unpin>(&mut self, socket: &mut Rd) -> ReadEnd {
        let mut buffer = BytesMut::with_capacity(READ_BUFFER_BYTES);
        for seq in 0u64.. {
            // The in-flight bound: one permit per unanswered request.
            let permits = Arc::clone(&self.permits);
            let deadline = self.deadline();
            tokio::select! {
                biased;
                _ = self.closing.changed() => return ReadEnd::Closed,
                () = deadline => return self.expired(),
                permit = permits.acquire() => match permit {
                    Ok(permit) => permit.forget(),
                    Err(_) => return ReadEnd::Closed,
                },
            }
            match self.fill(socket, &mut buffer, 4).await {
                Ok(true) => {}
                Ok(false) if buffer.is_empty() => return ReadEnd::Closed,
                Ok(false) => return ReadEnd::Refused("connection ended inside a frame".into()),
                Err(end) => return end,
            }
            let prefix = [buffer[0], buffer[1], buffer[2], buffer[3]];
            let max = self.context.frame_bytes_max;
            let Ok(len) = weir_wire::frame::frame_len(prefix, max) else {
                let announced = u32::from_be_bytes(prefix);
                return ReadEnd::Refused(format!("frame of {announced} bytes exceeds max {max}"));
            };
            // The broker-wide budgets: wait (not reading) until this frame fits.
            let limits = Arc::clone(&self.context.limits);
            let deadline = self.deadline();
            let admitted = tokio::select! {
                biased;
                _ = self.closing.changed() => return ReadEnd::Closed,
                () = deadline => return self.expired(),
                admitted = limits.admit(len) => match admitted {
                    Ok(admitted) => admitted,
                    Err(_) => return ReadEnd::Closed,
                },
            };
            lock(&self.held).insert(seq, admitted);
            match self.fill(socket, &mut buffer, 4 + len).await {
                Ok(true) => {}
                Ok(false) => return ReadEnd::Refused("connection ended inside a frame".into()),
                Err(end) => return end,
            }
            buffer.advance(4);
            let frame = buffer.split_to(len).freeze();
            if let Err(end) = self.dispatch(seq, frame).await {
                return end;
            }
        }
        ReadEnd::Closed
    }

    /// Read until `buffer` holds `wanted` bytes: Ok(false) on EOF first.
    async fn fill<Rd: AsyncRead + Unpin>(
        &mut self,
        socket: &mut Rd,
        buffer: &mut BytesMut,
        wanted: usize,
    ) -> Result<bool, ReadEnd> {
        if buffer.len() < wanted {
            buffer.reserve((wanted - buffer.len()).max(READ_BUFFER_BYTES));
        }
        while buffer.len() < wanted {
            let deadline = self.deadline();
            let read = tokio::select! {
                biased;
                _ = self.closing.changed() => return Err(ReadEnd::Closed),
                () = deadline => return Err(self.expired()),
                read = socket.read_buf(buffer) => read,
            };
            match read {
                Ok(0) => return Ok(false),
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!("read from {} failed: {error}", self.context.peer);
                    return Err(ReadEnd::Closed);
                }
            }
        }
        Ok(true)
    }

    /// The authentication deadline or session end, as a future (pending forever without).
    fn deadline(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        match self.auth.as_ref().and_then(Authenticator::deadline) {
            Some(deadline) => Box::pin(self.runtime.sleep_until(deadline)),
            None => Box::pin(std::future::pending()),
        }
    }

    fn expired(&self) -> ReadEnd {
        let authenticated = self
            .auth
            .as_ref()
            .is_some_and(Authenticator::is_authenticated);
        ReadEnd::Refused(
            if authenticated {
                "its SASL session expired without re-authentication (connections.max.reauth.ms)"
            } else {
                "it did not authenticate in time (weir.sasl.authentication.timeout.ms)"
            }
            .to_owned(),
        )
    }

    /// Decode one frame and route it: answered here, or sent to the node.
    async fn dispatch(&mut self, seq: u64, frame: Bytes) -> Result<(), ReadEnd> {
        let (header, decoded) = codec::decode_request(frame)
            .map_err(|error| ReadEnd::Refused(format!("malformed request: {error}")))?;
        if let Some(auth) = &self.auth {
            let sasl_request = matches!(
                &decoded,
                Decoded::Api(ApiRequest::SaslHandshake(_) | ApiRequest::SaslAuthenticate(_))
            );
            if sasl_request {
                return self.authenticate(seq, header, decoded).await;
            }
            let before = !auth.is_authenticated() && !matches!(decoded, Decoded::ApiVersions);
            if before {
                return self.refuse_before_authentication(seq, &header);
            }
        }
        let mut out = BytesMut::new();
        match decoded {
            Decoded::ApiVersions => {
                // v3+ carries the feature levels (`kafka-features.sh describe`): asked of the
                // node, as a SCRAM lookup is; older versions have no field for them.
                let features = if header.api_version >= 3 {
                    let (reply, levels) = oneshot::channel();
                    let ask = NodeInput::FeatureLevels { reply };
                    self.node.send(ask).await.map_err(|_| ReadEnd::Closed)?;
                    levels.await.map_err(|_| ReadEnd::Closed)?
                } else {
                    FeatureLevels::default()
                };
                codec::encode_api_versions_with_features(&header, &features, &mut out).map_err(
                    |error| ReadEnd::Refused(format!("cannot encode ApiVersions: {error}")),
                )?;
                self.ready(seq, out)
            }
            Decoded::LegacyProduce(legacy) => {
                // Kafka closes an acks=0 connection on error instead of answering.
                if legacy.acks == 0 {
                    return Err(ReadEnd::Refused(format!(
                        "Produce v{} (removed in Kafka 4.0) with acks=0",
                        header.api_version
                    )));
                }
                let error = ErrorCode::UNSUPPORTED_VERSION;
                codec::encode_legacy_produce_rejection(&header, &legacy, error, &mut out)
                    .map_err(|e| ReadEnd::Refused(format!("legacy produce: {e}")))?;
                tracing::debug!(
                    "{}: refused Produce v{}",
                    self.context.peer,
                    header.api_version
                );
                self.ready(seq, out)
            }
            Decoded::Rejected { response, reason } => {
                // Refused at decode (an invalid acks): never 0, so always answered.
                codec::encode_response(&header, &response, &mut out).map_err(|error| {
                    ReadEnd::Refused(format!("cannot encode a rejection ({reason}): {error}"))
                })?;
                tracing::debug!("{}: rejected request: {reason}", self.context.peer);
                self.ready(seq, out)
            }
            Decoded::Unsupported { reason } => {
                let error = ErrorCode::UNSUPPORTED_VERSION;
                match codec::encode_error_response(&header, error, &mut out) {
                    Ok(true) => {
                        tracing::debug!("{}: unsupported request: {reason}", self.context.peer);
                        self.ready(seq, out)
                    }
                    Ok(false) | Err(_) => Err(ReadEnd::Refused(format!(
                        "unsupported request (api key {} v{}): {reason}",
                        header.api_key, header.api_version
                    ))),
                }
            }
            Decoded::Api(mut request) => {
                if let ApiRequest::JoinGroup(join) = &mut request {
                    // DescribeGroups reports the member's host as Kafka does: "/IP".
                    join.client_host = client_host(&self.context.peer);
                }
                // Expect goes first, so the writer knows the slot (and the parts of a
                // request split over shards) before any response.
                let home = self.node.home(self.context.conn);
                let parts = self.node.split(request, home).await;
                let shards = (parts.len() > 1).then(|| parts.iter().map(|p| p.0).collect());
                let expect = ConnEvent::Expect {
                    seq,
                    header,
                    parts: shards,
                };
                self.events.send(expect).map_err(|_| ReadEnd::Closed)?;
                let id = RequestId::client(self.context.conn, seq);
                (self.node.send_parts(id, parts).await).map_err(|_| ReadEnd::Closed)
            }
        }
    }

    /// A SaslHandshake or SaslAuthenticate on a SASL listener: one step of the exchange.
    async fn authenticate(
        &mut self,
        seq: u64,
        header: RequestHeader,
        decoded: Decoded,
    ) -> Result<(), ReadEnd> {
        let now = self.runtime.now();
        let Some(auth) = self.auth.as_mut() else {
            return Err(ReadEnd::Refused(
                "SASL request on a listener without SASL".into(),
            ));
        };
        let mut step = match &decoded {
            Decoded::Api(ApiRequest::SaslHandshake(request)) => auth.handshake(request),
            Decoded::Api(ApiRequest::SaslAuthenticate(request)) => {
                auth.authenticate(request, header.api_version, now)
            }
            _ => return Err(ReadEnd::Refused("not a SASL request".into())),
        };
        if let Step::Lookup {
            user,
            mechanism,
            first,
        } = step
        {
            let (reply, credential) = oneshot::channel();
            let lookup = NodeInput::ScramCredential {
                user,
                mechanism,
                reply,
            };
            self.node.send(lookup).await.map_err(|_| ReadEnd::Closed)?;
            let credential = credential.await.map_err(|_| ReadEnd::Closed)?;
            let auth = self.auth.as_mut().ok_or(ReadEnd::Closed)?;
            step = auth.scram_start(mechanism, first, credential);
        }
        let encode = |response: &ApiResponse| {
            let mut out = BytesMut::new();
            codec::encode_response(&header, response, &mut out)
                .map(|()| out)
                .map_err(|error| ReadEnd::Refused(format!("cannot encode a SASL answer: {error}")))
        };
        match step {
            Step::Answer(response) => self.ready(seq, encode(&response)?),
            Step::Close { response, reason } => {
                let frame = encode(&response)?.freeze();
                (self.events.send(ConnEvent::Final { seq, frame })).map_err(|_| ReadEnd::Closed)?;
                Err(ReadEnd::Answered(reason))
            }
            Step::Authenticated { response, user } => {
                tracing::debug!("{}: authenticated as User:{user:?}", self.context.peer);
                let principal = Principal::user(&user);
                let conn = self.context.conn;
                let input = NodeInput::Authenticated { conn, principal };
                self.node.send(input).await.map_err(|_| ReadEnd::Closed)?;
                self.ready(seq, encode(&response)?)
            }
            Step::Lookup { .. } => Err(ReadEnd::Refused("credential lookup twice".into())),
        }
    }

    /// Any other request before authentication: Kafka closes the connection; Weir first
    /// answers ILLEGAL_SASL_STATE where the response has a top-level error to carry it.
    fn refuse_before_authentication(
        &mut self,
        seq: u64,
        header: &RequestHeader,
    ) -> Result<(), ReadEnd> {
        let reason = format!(
            "api key {} v{} before SASL authentication",
            header.api_key, header.api_version
        );
        let mut out = BytesMut::new();
        match codec::encode_error_response(header, ErrorCode::ILLEGAL_SASL_STATE, &mut out) {
            Ok(true) => {
                let frame = out.freeze();
                (self.events.send(ConnEvent::Final { seq, frame })).map_err(|_| ReadEnd::Closed)?;
                Err(ReadEnd::Answered(reason))
            }
            Ok(false) | Err(_) => Err(ReadEnd::Refused(reason)),
        }
    }

    fn ready(&self, seq: u64, frame: BytesMut) -> Result<(), ReadEnd> {
        let event = ConnEvent::Ready {
            seq,
            frame: frame.freeze(),
        };
        self.events.send(event).map_err(|_| ReadEnd::Closed)
    }
}

/// A request's place in the response order.
enum Slot {
    /// Sent to the node as parts over several shards; their answers are merged here.
    Split {
        header: RequestHeader,
        parts: crate::shards::Parts,
    },
    /// Waiting for the node.
    Expected { header: RequestHeader },
    /// Answered; a task is resolving its remote reads.
    Resolving { header: RequestHeader },
    /// The node answered; not yet written.
    Answered {
        header: RequestHeader,
        response: ApiResponse,
    },
    /// The node completed it without an answer (acks=0); `close`: close the connection
    /// when its turn comes.
    Unanswered { close: bool },
    /// Encoded by the reader.
    Ready(Bytes),
    /// Encoded by the reader; the connection closes once it is written.
    Final(Bytes),
}

struct Writer<R, S> {
    held: Held,
    runtime: R,
    events: mpsc::UnboundedReceiver<ConnEvent>,
    /// Where remote-read tasks send their resolved responses (weak: the writer alone must
    /// not keep its own channel open).
    resolved: mpsc::WeakUnboundedSender<ConnEvent>,
    storage: S,
    permits: Arc<Semaphore>,
    context: ConnContext,
    slots: BTreeMap<u64, Slot>,
    next_seq: u64,
    /// Set by [`ConnEvent::Drain`]: close once what is ready is written; dropped (telling
    /// the node loop) when the writer ends.
    draining: Option<mpsc::Sender<()>>,
    /// The shards: a split fetch's other parts are asked to answer once one part did.
    node: NodeHandle,
}

/// The writer must close the connection.
struct Close;

impl<R: weir_runtime::Runtime, S: StorageDriver> Writer<R, S> {
    async fn run<W: AsyncWrite + Unpin>(mut self, mut socket: W) {
        let mut out = BytesMut::new();
        while let Some(event) = self.events.recv().await {
            if self.absorb(event).is_err() {
                break;
            }
            // Coalesce: take everything already queued before writing once.
            let mut closing = false;
            while let Ok(event) = self.events.try_recv() {
                if self.absorb(event).is_err() {
                    closing = true;
                    break;
                }
            }
            if closing {
                break;
            }
            let (completed, outcome) = self.encode_in_order(&mut out);
            if !out.is_empty() {
                // Flush is a no-op on a tokio socket, but a stream may buffer until flushed
                // (madsim's simulated TCP sends only on flush).
                let written = match socket.write_all(&out).await {
                    Ok(()) => socket.flush().await,
                    Err(error) => Err(error),
                };
                if let Err(error) = written {
                    tracing::debug!("write to {} failed: {error}", self.context.peer);
                    break;
                }
                out.clear();
            }
            self.permits.add_permits(completed);
            if completed > 0 {
                // Written (or completed without an answer): their budget goes back.
                let mut held = lock(&self.held);
                while let Some(entry) = held.first_entry() {
                    if *entry.key() >= self.next_seq {
                        break;
                    }
                    entry.remove();
                }
            }
            if outcome.is_err() || self.draining.is_some() {
                break;
            }
        }
        let _ = socket.shutdown().await;
    }

    fn absorb(&mut self, event: ConnEvent) -> Result<(), Close> {
        match event {
            ConnEvent::Expect {
                seq,
                header,
                parts: None,
            } => {
                self.slots.insert(seq, Slot::Expected { header });
            }
            ConnEvent::Expect {
                seq,
                header,
                parts: Some(shards),
            } => {
                let parts = crate::shards::Parts::new(shards);
                self.slots.insert(seq, Slot::Split { header, parts });
            }
            ConnEvent::Response {
                seq,
                shard,
                response,
            } if matches!(self.slots.get(&seq), Some(Slot::Split { .. })) => {
                return self.part_answered(seq, shard, response);
            }
            ConnEvent::NoResponse { seq, shard, close }
                if matches!(self.slots.get(&seq), Some(Slot::Split { .. })) =>
            {
                if let Some(Slot::Split { parts, .. }) = self.slots.get_mut(&seq) {
                    if let PartsDone::NoResponse { close } = parts.unanswered(shard, close) {
                        self.slots.insert(seq, Slot::Unanswered { close });
                    }
                }
            }
            ConnEvent::Ready { seq, frame } => {
                self.slots.insert(seq, Slot::Ready(frame));
            }
            ConnEvent::Final { seq, frame } => {
                self.slots.insert(seq, Slot::Final(frame));
            }
            ConnEvent::Response { seq, response, .. } => match self.slots.remove(&seq) {
                Some(Slot::Expected { header }) if remote::has_remote_reads(&response) => {
                    self.slots.insert(seq, Slot::Resolving { header });
                    self.resolve_remote(seq, response);
                }
                Some(Slot::Expected { header }) => {
                    self.slots.insert(seq, Slot::Answered { header, response });
                }
                other => {
                    // The node answers each request exactly once; anything else is a bug.
                    tracing::error!(
                        "{}: response for request {seq} in unexpected state {}",
                        self.context.peer,
                        other.is_some()
                    );
                    return Err(Close);
                }
            },
            ConnEvent::Resolved { seq, response } => match self.slots.remove(&seq) {
                Some(Slot::Resolving { header }) => {
                    self.slots.insert(seq, Slot::Answered { header, response });
                }
                other => {
                    tracing::error!(
                        "{}: resolved reads for request {seq} in unexpected state {}",
                        self.context.peer,
                        other.is_some()
                    );
                    return Err(Close);
                }
            },
            ConnEvent::NoResponse { seq, close, .. } => match self.slots.remove(&seq) {
                Some(Slot::Expected { .. }) => {
                    self.slots.insert(seq, Slot::Unanswered { close });
                }
                other => {
                    tracing::error!(
                        "{}: completion of request {seq} in unexpected state {}",
                        self.context.peer,
                        other.is_some()
                    );
                    return Err(Close);
                }
            },
            ConnEvent::Shutdown => return Err(Close),
            ConnEvent::Drain { done } => self.draining = Some(done),
        }
        Ok(())
    }

    /// A part of split request `seq` answered: once all did, the merged answer takes the
    /// request's place as an unsplit one's would. A fetch part that answered with records
    /// (or an error) asks the parts still parked to answer now, so a split fetch waits no
    /// longer than an unsplit one.
    fn part_answered(&mut self, seq: u64, shard: u16, response: ApiResponse) -> Result<(), Close> {
        let Some(Slot::Split { header, mut parts }) = self.slots.remove(&seq) else {
            return Ok(());
        };
        let wake = matches!(response, ApiResponse::Fetch(_))
            && crate::shards::split::fetch_part_is_final(&response);
        match parts.answered(shard, response) {
            PartsDone::Waiting => {
                if wake {
                    let id = RequestId::client(self.context.conn, seq);
                    for other in parts.outstanding() {
                        // A full channel drops the hint: that part answers at its deadline.
                        let _ = (self.node).try_send_to(other, NodeInput::AnswerFetchNow { id });
                    }
                }
                self.slots.insert(seq, Slot::Split { header, parts });
                Ok(())
            }
            PartsDone::Answer(response) => {
                self.slots.insert(seq, Slot::Expected { header });
                self.absorb(ConnEvent::Response {
                    seq,
                    shard,
                    response,
                })
            }
            PartsDone::NoResponse { close } => {
                self.slots.insert(seq, Slot::Unanswered { close });
                Ok(())
            }
        }
    }

    /// Encode every finished response that is next in order. Returns how many requests
    /// were completed, and Err when the connection must close after writing `out`.
    fn encode_in_order(&mut self, out: &mut BytesMut) -> (usize, Result<(), Close>) {
        let mut completed = 0;
        while let Some(entry) = self.slots.first_entry() {
            let waiting = matches!(
                entry.get(),
                Slot::Expected { .. } | Slot::Resolving { .. } | Slot::Split { .. }
            );
            if *entry.key() != self.next_seq || waiting {
                break;
            }
            let slot = entry.remove();
            self.next_seq += 1;
            completed += 1;
            let outcome = match slot {
                Slot::Expected { .. } | Slot::Resolving { .. } | Slot::Split { .. } => Ok(()),
                Slot::Ready(frame) => {
                    out.extend_from_slice(&frame);
                    Ok(())
                }
                Slot::Final(frame) => {
                    out.extend_from_slice(&frame);
                    Err(Close)
                }
                Slot::Answered { header, response } => self.encode_answer(&header, response, out),
                Slot::Unanswered { close: false } => Ok(()),
                Slot::Unanswered { close: true } => {
                    tracing::info!(
                        "closing connection from {}: an acks=0 produce was refused",
                        self.context.peer
                    );
                    Err(Close)
                }
            };
            if outcome.is_err() {
                return (completed, outcome);
            }
        }
        (completed, Ok(()))
    }

    /// Resolve a response's remote reads on a spawned task; it comes back as
    /// `ConnEvent::Resolved`. Without a store, the reads are refused at once.
    fn resolve_remote(&self, seq: u64, mut response: ApiResponse) {
        let Some(events) = self.resolved.upgrade() else {
            return; // The connection is closing: nobody will write the answer.
        };
        let Some(store) = self.context.remote.clone() else {
            remote::refuse_remote(&mut response, &self.context.peer);
            let _ = events.send(ConnEvent::Resolved { seq, response });
            return;
        };
        let runtime = self.runtime.clone();
        let peer = self.context.peer.clone();
        self.runtime.spawn(async move {
            store.resolve(&runtime, &mut response, &peer).await;
            // A failed send means the writer is gone; the answer has nowhere to go.
            let _ = events.send(ConnEvent::Resolved { seq, response });
        });
    }

    fn encode_answer(
        &self,
        header: &RequestHeader,
        mut response: ApiResponse,
        out: &mut BytesMut,
    ) -> Result<(), Close> {
        resolve_reads(&self.storage, &mut response, &self.context.peer);
        if let Some(advertised) = &self.context.advertised {
            advertised.rewrite(&mut response);
        }
        codec::encode_response(header, &response, out).map_err(|error| {
            tracing::error!(
                "closing connection from {}: cannot encode response to api key {} v{}: {error}",
                self.context.peer,
                header.api_key,
                header.api_version
            );
            Close
        })
    }
}
/// Resolves a response's storage work (fetch plans, timestamp lookups) before encoding.
/// The work itself is weir-core's `resolve_response`, shared with the simulator, so the
/// CRC check on every served batch is one piece of code; this adds the peer to the logs.
pub fn resolve_reads<S: StorageDriver>(storage: &S, response: &mut ApiResponse, peer: &str) {
    for error in weir_core::resolve::resolve_response(storage, response) {
        tracing::error!(
            "storage read for {peer} failed; partition answered with an error: {error}"
        );
    }
}

/// The peer's IP as ACLs name it (`10.0.0.1`, `::1`): the address without port or brackets.
pub(crate) fn acl_host(peer: &str) -> String {
    let host = peer.rsplit_once(':').map_or(peer, |(host, _port)| host);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

/// Kafka's spelling of a member's host: the peer IP with a leading slash (Java's
/// `InetAddress.toString()` without a hostname), e.g. `/127.0.0.1`.
fn client_host(peer: &str) -> String {
    format!("/{}", acl_host(peer))
}
