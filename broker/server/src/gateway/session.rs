//! One gateway session: HTTP/WebSocket handshake, edge handshake, then requests.
//!
//! Tasks: the session task reads client frames and dispatches them; a writer task owns
//! the socket's sending half; each answered-later operation (produce acknowledgements,
//! polls, admin, commits) runs in its own task that ends by queueing one reply; each group
//! consumer has a heartbeat task.
//!
//! Invariants:
//! - A client frame is read only after taking one of [`IN_FLIGHT_MAX`] permits, and the
//!   writer returns the permit only after writing that frame's reply: requests unanswered
//!   or unwritten are bounded, and so is the outgoing queue ([`OUTGOING_FRAMES_MAX`]).
//! - Produces are prepared and sent to the node in frame order (see `ops`).
//! - Breaking a limit (a second outstanding poll, too many consumers, a text frame, a
//!   malformed frame) closes the session with close code 1008/1002 and a reason.
//! - With SASL required, nothing but SASL frames is read until the session authenticated,
//!   and its principal reaches the node loop before its first request ([`super::auth`]).
//! - An operation newer than the negotiated version is answered with
//!   `UNSUPPORTED_VERSION`, never executed, so an old client is told rather than misread.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use weir_core::Principal;
use weir_edge::{
    ClientHello, EdgeError, Isolation, Op, Reply, Request, Response, SaslAnswer, SaslFrame,
    ServerHello, Subscribe, CLOSE_POLICY_VIOLATION, CLOSE_PROTOCOL_ERROR, FRAME_BYTES_MAX,
    UNSUPPORTED_VERSION_CODE,
};
use weir_runtime::Runtime;

use super::auth::{Exchange, Identity, Progress};
use super::consumer::{self, Consumer};
use super::http::{self, Head, Rewind};
use super::link::NodeLink;
use super::ops::{self, Meta, ProducerState};
use super::route::{self, Router};
use super::{GatewayContext, CONN_ID_BASE};
use crate::messages::NodeInput;
use crate::sasl::SaslListener;
use crate::storage::StorageDriver;

/// Client requests per session that are unanswered or unwritten.
pub const IN_FLIGHT_MAX: usize = 64;
/// Frames queued for the writer: every reply (bounded by the permits) plus a close.
pub const OUTGOING_FRAMES_MAX: usize = IN_FLIGHT_MAX + 2;
/// Consumers per session.
pub const CONSUMERS_MAX: usize = 16;
/// Time allowed for the HTTP request head, the WebSocket upgrade and the hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the writer sends.
enum Outgoing {
    /// A reply: its permit is returned once written.
    Reply(Vec<u8>),
    /// Close the socket with a code and reason.
    Close(u16, String),
}

/// Serve one accepted connection until it closes.
pub async fn run<R, S, St>(context: GatewayContext<R, S>, mut stream: St, peer: String, id: u64)
where
    R: Runtime,
    S: StorageDriver,
    St: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let runtime = context.runtime.clone();
    let deadline = runtime.sleep_until(runtime.now() + HANDSHAKE_TIMEOUT);
    let head = tokio::select! {
        biased;
        head = http::read_head(&mut stream) => head,
        () = deadline => return,
    };
    let (head, bytes) = match head {
        Ok(read) => read,
        Err(error) => {
            tracing::debug!("gateway: reading from {peer} failed: {error}");
            return;
        }
    };
    if head != Head::Upgrade {
        if let Err(error) = http::answer_plain(&mut stream, &head).await {
            tracing::debug!("gateway: answering {peer} failed: {error}");
        }
        return;
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(FRAME_BYTES_MAX))
        .max_frame_size(Some(FRAME_BYTES_MAX));
    let upgrade =
        tokio_tungstenite::accept_async_with_config(Rewind::new(bytes, stream), Some(config));
    let deadline = runtime.sleep_until(runtime.now() + HANDSHAKE_TIMEOUT);
    let socket = tokio::select! {
        biased;
        socket = upgrade => socket,
        () = deadline => return,
    };
    let socket = match socket {
        Ok(socket) => socket,
        Err(error) => {
            tracing::info!("gateway: WebSocket handshake with {peer} failed: {error}");
            return;
        }
    };
    let (mut sink, mut source) = socket.split();

    // ---- edge handshake ----------------------------------------------------------------
    let deadline = runtime.sleep_until(runtime.now() + HANDSHAKE_TIMEOUT);
    let first = tokio::select! {
        biased;
        first = source.next() => first,
        () = deadline => return,
    };
    let hello = match first {
        Some(Ok(Message::Binary(bytes))) => weir_edge::decode::<ClientHello>(&bytes)
            .map_err(|error| error.to_string())
            .and_then(|hello| weir_edge::negotiate(&hello).map(|version| (hello, version))),
        Some(Ok(_)) => Err("expected a binary ClientHello frame".to_owned()),
        Some(Err(_)) | None => return,
    };
    let (hello, version) = match hello {
        Ok(found) => found,
        Err(reason) => {
            tracing::info!("gateway: refused {peer}: {reason}");
            let rejected = ServerHello::Rejected {
                reason: reason.clone(),
                version_min: weir_edge::VERSION_MIN,
                version_max: weir_edge::VERSION_MAX,
            };
            let _ = sink
                .send(Message::binary(weir_edge::encode(&rejected)))
                .await;
            let _ = sink
                .send(close_message(CLOSE_PROTOCOL_ERROR, &reason))
                .await;
            return;
        }
    };
    let identity = match &context.sasl {
        None => None,
        Some(listener) => {
            let listener = Arc::clone(listener);
            let outcome = authenticate(&context, listener, version, &mut sink, &mut source).await;
            match outcome {
                Ok(identity) => Some(identity),
                Err(Some((code, reason, log))) => {
                    tracing::info!("gateway: refused {peer}: {log}");
                    let _ = sink.send(close_message(code, reason)).await;
                    return;
                }
                Err(None) => return,
            }
        }
    };
    let conn = CONN_ID_BASE + id;
    let Ok(link) = NodeLink::connect(&runtime, context.node.clone(), conn).await else {
        return;
    };
    let opened = match &identity {
        None => weir_edge::encode(&ServerHello::Accepted {
            version,
            node_id: context.node_id,
            session: id,
        }),
        Some(identity) => {
            // The principal is the node's before any request of the session: the same
            // ordered channel carries the connect, this, and every later request.
            let principal = Principal::user(&identity.user);
            let input = NodeInput::Authenticated { conn, principal };
            if context.node.send(input).await.is_err() {
                return;
            }
            tracing::debug!("gateway session {id} from {peer}: User:{:?}", identity.user);
            weir_edge::encode(&SaslAnswer::Success {
                message: identity.final_message.clone(),
                node_id: context.node_id,
                session: id,
            })
        }
    };
    if sink.send(Message::binary(opened)).await.is_err() {
        link.disconnect().await;
        return;
    }
    tracing::debug!(
        "gateway session {id} from {peer} ({}) at v{version}",
        hello.client
    );

    // ---- requests ----------------------------------------------------------------------
    let permits = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    let (outgoing, mut outgoing_queue) = mpsc::channel::<Outgoing>(OUTGOING_FRAMES_MAX);
    let (writer_done_sender, mut writer_done) = mpsc::channel::<()>(1);
    let writer_permits = Arc::clone(&permits);
    runtime.spawn(async move {
        while let Some(frame) = outgoing_queue.recv().await {
            let (message, reply) = match frame {
                Outgoing::Reply(bytes) => (Message::binary(bytes), true),
                Outgoing::Close(code, reason) => (close_message(code, &reason), false),
            };
            let closing = !reply;
            if sink.send(message).await.is_err() || closing {
                break;
            }
            writer_permits.add_permits(1);
        }
        let _ = sink.close().await;
        drop(writer_done_sender);
    });
    let login = match (&identity, &context.sasl) {
        (Some(identity), Some(listener)) if context.upstream_sasl => {
            Some((Arc::clone(&identity.upstream), Arc::clone(listener)))
        }
        _ => None,
    };
    drop(identity);
    let router = Router::new(runtime.clone(), link.clone(), context.node_id)
        .with_login(login)
        .with_tls(context.upstream_tls.clone());
    let router = Arc::new(router);
    let mut session = Session {
        context,
        version,
        router: Arc::clone(&router),
        meta: Meta::default(),
        producer: ProducerState::default(),
        consumers: BTreeMap::new(),
        outgoing: outgoing.clone(),
    };
    let end = loop {
        let permits = Arc::clone(&permits);
        let permit = tokio::select! {
            biased;
            _ = writer_done.recv() => break None,
            permit = permits.acquire_owned() => permit,
        };
        let Ok(permit) = permit else { break None };
        let message = tokio::select! {
            biased;
            _ = writer_done.recv() => break None,
            message = source.next() => message,
        };
        let bytes = match message {
            Some(Ok(Message::Binary(bytes))) => bytes,
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Text(_))) => {
                break Some((
                    CLOSE_PROTOCOL_ERROR,
                    "text frames are not part of the edge protocol",
                ))
            }
            Some(Ok(Message::Close(_)) | Err(_)) | None => break None,
        };
        let Ok(request) = weir_edge::decode::<Request>(&bytes) else {
            break Some((CLOSE_PROTOCOL_ERROR, "malformed request frame"));
        };
        // The writer returns this permit when the reply is written.
        permit.forget();
        if let Err(reason) = session.dispatch(request).await {
            break Some((CLOSE_POLICY_VIOLATION, reason));
        }
    };
    if let Some((code, reason)) = end {
        tracing::info!("gateway: closing session {id} from {peer}: {reason}");
        let _ = outgoing.try_send(Outgoing::Close(code, reason.to_owned()));
    }
    for consumer in session.consumers.values() {
        consumer.close(&*router).await;
    }
    link.disconnect().await;
    drop(session);
    drop(outgoing);
}

/// Why a session is refused before it opens: close code, close reason, log line; `None`
/// when the socket is already gone.
type HandshakeEnd = Option<(u16, &'static str, String)>;

/// Run the SASL exchange of a session that must authenticate (edge protocol version 3):
/// announce the mechanisms, then answer the client's frames until it has authenticated,
/// failed, or run out of time.
async fn authenticate<R, S, Si, So>(
    context: &GatewayContext<R, S>,
    listener: Arc<SaslListener>,
    version: u16,
    sink: &mut Si,
    source: &mut So,
) -> Result<Identity, HandshakeEnd>
where
    R: Runtime,
    Si: futures_util::Sink<Message> + Unpin,
    So: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    let runtime = &context.runtime;
    if version < weir_edge::VERSION_SASL {
        let reason = format!(
            "this gateway requires SASL authentication (edge protocol version {} or newer)",
            weir_edge::VERSION_SASL
        );
        let rejected = ServerHello::Rejected {
            reason: reason.clone(),
            version_min: weir_edge::VERSION_MIN,
            version_max: weir_edge::VERSION_MAX,
        };
        let _ = sink
            .send(Message::binary(weir_edge::encode(&rejected)))
            .await;
        let end = (
            CLOSE_POLICY_VIOLATION,
            weir_edge::SASL_FAILED_REASON,
            reason,
        );
        return Err(Some(end));
    }
    let mechanisms = (listener.settings().mechanisms.iter())
        .map(|m| m.name().to_owned())
        .collect();
    let announce = ServerHello::Authenticate {
        version,
        mechanisms,
    };
    if sink
        .send(Message::binary(weir_edge::encode(&announce)))
        .await
        .is_err()
    {
        return Err(None);
    }
    let mut exchange = Exchange::new(listener, runtime.now());
    let deadline = (exchange.deadline()).unwrap_or_else(|| runtime.now() + HANDSHAKE_TIMEOUT);
    let failed = |log: String| Some((CLOSE_POLICY_VIOLATION, weir_edge::SASL_FAILED_REASON, log));
    loop {
        let timer = runtime.sleep_until(deadline);
        let message = tokio::select! {
            biased;
            message = source.next() => message,
            () = timer => return Err(failed("no SASL authentication in time".to_owned())),
        };
        let frame = match message {
            Some(Ok(Message::Binary(bytes))) => weir_edge::decode::<SaslFrame>(&bytes),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Text(_))) => {
                Err(weir_edge::DecodeError("not a binary frame".to_owned()))
            }
            // The client gave up (e.g. no mechanism it may use): nothing to answer.
            Some(Ok(Message::Close(_)) | Err(_)) | None => return Err(None),
        };
        let Ok(frame) = frame else {
            let reason = "malformed SASL frame";
            return Err(Some((CLOSE_PROTOCOL_ERROR, reason, reason.to_owned())));
        };
        let answer = match exchange.handle(frame, runtime.now(), &context.node).await {
            Ok(Progress::Done(identity)) => return Ok(identity),
            Ok(Progress::Challenge(message)) => SaslAnswer::Challenge { message },
            Err(refusal) => {
                let failure = SaslAnswer::Failure {
                    reason: refusal.client,
                };
                let _ = sink
                    .send(Message::binary(weir_edge::encode(&failure)))
                    .await;
                return Err(failed(refusal.log));
            }
        };
        if sink
            .send(Message::binary(weir_edge::encode(&answer)))
            .await
            .is_err()
        {
            return Err(None);
        }
    }
}

fn close_message(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_owned().into(),
    }))
}

struct Session<R, S> {
    context: GatewayContext<R, S>,
    /// The negotiated edge protocol version.
    version: u16,
    router: Arc<Router<R>>,
    meta: Meta,
    producer: ProducerState,
    consumers: BTreeMap<u32, Arc<Consumer>>,
    outgoing: mpsc::Sender<Outgoing>,
}

impl<R: Runtime, S: StorageDriver> Session<R, S> {
    /// Handle one request: answered now, or by a spawned task. Err closes the session.
    async fn dispatch(&mut self, request: Request) -> Result<(), &'static str> {
        let id = request.id;
        if request.op.version_min() > self.version {
            let message = format!(
                "{} needs edge protocol version {}; this session speaks version {}",
                request.op.name(),
                request.op.version_min(),
                self.version
            );
            let error = EdgeError::new(UNSUPPORTED_VERSION_CODE, "UNSUPPORTED_VERSION", message);
            self.answer_now(id, Err(error));
            return Ok(());
        }
        match request.op {
            Op::Produce(produce) => {
                let wall_ms = self.context.runtime.wall_ms();
                let router = &self.router;
                let sent =
                    ops::send_produce(router, &self.meta, &mut self.producer, produce, wall_ms)
                        .await;
                self.answer_produce(id, sent);
            }
            Op::ProduceBatch(batch) => {
                let wall_ms = self.context.runtime.wall_ms();
                let sent = ops::send_produce_batch(&self.router, &self.meta, batch, wall_ms).await;
                self.answer_produce(id, sent);
            }
            Op::InitProducer => {
                let router = Arc::clone(&self.router);
                self.answer_later(id, async move { ops::init_producer(&router).await });
            }
            Op::DescribeTopic { topic, create } => {
                let router = Arc::clone(&self.router);
                let meta = Arc::clone(&self.meta);
                self.answer_later(id, async move {
                    ops::describe_topic(&router, &meta, topic, create).await
                });
            }
            Op::Subscribe(subscribe) => {
                self.subscribe(id, subscribe, Isolation::ReadUncommitted)?;
            }
            Op::SubscribeIsolated {
                subscribe,
                isolation,
            } => {
                self.subscribe(id, subscribe, isolation)?;
            }
            Op::Poll(poll) => {
                let consumer = self.consumer(poll.consumer)?;
                if !consumer.begin_poll() {
                    return Err("a second poll while one is outstanding for the same consumer");
                }
                let runtime = self.context.runtime.clone();
                let storage = self.context.storage.clone();
                let remote = self.context.remote.clone();
                let router = Arc::clone(&self.router);
                self.answer_later(id, async move {
                    let result = consumer::poll(
                        &runtime,
                        &storage,
                        remote.as_ref(),
                        &consumer,
                        &router,
                        poll.max_wait_ms,
                        poll.max_bytes,
                    )
                    .await;
                    consumer.end_poll();
                    result
                })
            }
            Op::Commit { consumer, offsets } => {
                let consumer = self.consumer(consumer)?;
                let router = Arc::clone(&self.router);
                self.answer_later(id, async move {
                    consumer::client_commit(&consumer, &router, offsets).await
                })
            }
            Op::Unsubscribe { consumer } => {
                let consumer = self
                    .consumers
                    .remove(&consumer)
                    .ok_or("unknown consumer handle")?;
                let router = Arc::clone(&self.router);
                self.answer_later(id, async move {
                    consumer.close(&*router).await;
                    Ok(Reply::Unsubscribed)
                })
            }
            Op::ListTopics => {
                let router = Arc::clone(&self.router);
                let meta = Arc::clone(&self.meta);
                self.answer_later(id, async move { ops::list_topics(&router, &meta).await })
            }
            Op::CreateTopics(topics) => {
                let router = Arc::clone(&self.router);
                self.answer_later(id, async move { ops::create_topics(&router, topics).await })
            }
        }
        Ok(())
    }

    /// Answer a produce that was sent (later, once acknowledged) or refused (now).
    fn answer_produce(&self, id: u32, sent: Result<(route::Call, ops::SentProduce<R>), EdgeError>) {
        match sent {
            Ok((call, sent)) => {
                let router = Arc::clone(&self.router);
                self.answer_later(
                    id,
                    async move { ops::finish_produce(&router, call, sent).await },
                );
            }
            Err(error) => self.answer_now(id, Err(error)),
        }
    }

    /// Start a consumer. Err closes the session (a handle reused, too many consumers).
    fn subscribe(
        &mut self,
        id: u32,
        subscribe: Subscribe,
        isolation: Isolation,
    ) -> Result<(), &'static str> {
        if self.consumers.contains_key(&subscribe.consumer) {
            return Err("consumer handle already in use");
        }
        if self.consumers.len() >= CONSUMERS_MAX {
            return Err("too many consumers in one session");
        }
        let consumer = Arc::new(Consumer::new(
            subscribe.consumer,
            subscribe.group,
            subscribe.topics,
            subscribe.from,
            isolation,
            subscribe.positions,
        ));
        self.consumers
            .insert(subscribe.consumer, Arc::clone(&consumer));
        let router = Arc::clone(&self.router);
        let meta = Arc::clone(&self.meta);
        if consumer.has_group() {
            let runtime = self.context.runtime.clone();
            self.context
                .runtime
                .spawn(consumer::heartbeat_loop(runtime, consumer, router, meta));
            self.answer_now(id, Ok(Reply::Subscribed));
        } else {
            self.answer_later(id, async move {
                consumer::assign_all(&consumer, &router, &meta).await?;
                Ok(Reply::Subscribed)
            });
        }
        Ok(())
    }

    fn consumer(&self, handle: u32) -> Result<Arc<Consumer>, &'static str> {
        self.consumers
            .get(&handle)
            .cloned()
            .ok_or("unknown consumer handle")
    }

    fn answer_now(&self, id: u32, result: Result<Reply, EdgeError>) {
        let frame = weir_edge::encode(&Response { id, result });
        // Cannot be full: the permit taken for this request reserves the slot.
        let _ = self.outgoing.try_send(Outgoing::Reply(frame));
    }

    fn answer_later<F>(&self, id: u32, work: F)
    where
        F: std::future::Future<Output = Result<Reply, EdgeError>> + Send + 'static,
    {
        let outgoing = self.outgoing.clone();
        self.context.runtime.spawn(async move {
            let result = work.await;
            let frame = weir_edge::encode(&Response { id, result });
            // The permit taken for this request reserves the slot; a closed writer means
            // the session is over.
            let _ = outgoing.send(Outgoing::Reply(frame)).await;
        });
    }
}
