//! The WebSocket gateway: browsers, edge runtimes and Node reach the broker through the
//! edge protocol (`weir-edge`, postcard frames over WebSocket binary messages).
//!
//! Each accepted socket is first read as an HTTP request ([`http`]): a WebSocket upgrade
//! becomes a session ([`session`]); any other GET is answered with a small landing page
//! (the demo itself is served by `cargo xtask wasm --serve`), never treated as an error.
//!
//! A session enters the node loop exactly as a Kafka connection does ([`link`]): it
//! registers a connection id with `NodeInput::Connect`, sends domain `ApiRequest`s
//! (Produce, Fetch, Metadata, CreateTopics, InitProducerId, ListOffsets, OffsetFetch,
//! OffsetCommit, ConsumerGroupHeartbeat) and receives the node's `ApiResponse`s, with
//! fetch reads resolved from storage by the same CRC-checked code the Kafka writer uses
//! (and remote reads, with tiered storage, by the same [`crate::remote`] code).
//! There is no second implementation of produce, fetch or group logic here: the gateway
//! only translates (edge record <-> record batch, KIP-848 heartbeats on the browser's
//! behalf, errors to their Kafka names). From edge protocol version 2 the client is the
//! idempotent producer (its producer id, partitions and sequence numbers travel in each
//! `ProduceBatch`), so batches it resends after a reconnect are deduplicated by the
//! partition's producer state like any Kafka producer's retries; consumers choose
//! read_committed or read_uncommitted (Fetch's isolation_level).
//!
//! With `weir.gateway.sasl.enabled.mechanisms` set, a session authenticates right after the
//! hello (edge protocol version 3, [`auth`]) with the same code and credentials as a Kafka
//! connection, and its principal reaches the node loop (`NodeInput::Authenticated`) before
//! its first request; routed requests reach other brokers over connections that log in
//! as the same user. Without it, sessions are anonymous, as before.
//!
//! In a cluster, [`route`] sends what this node does not serve (partitions led, groups
//! coordinated elsewhere) to the right broker's Kafka listener over [`upstream`]
//! connections, learning leaders and coordinators from the local node's Metadata and
//! FindCoordinator; a single node routes everything locally, as before.
//!
//! # Invariants
//! - Every queue is bounded: at most [`session::IN_FLIGHT_MAX`] client requests per session
//!   are unanswered *or unwritten* (the session stops reading the socket until the writer
//!   has written a reply), so a client that stops reading cannot make the broker buffer;
//!   at most one poll per consumer is outstanding and at most [`session::CONSUMERS_MAX`]
//!   consumers exist per session; breaking a limit closes the session with a reason
//!   (close code 1008).
//! - Gateway connection ids live above [`CONN_ID_BASE`], disjoint from Kafka connections.
//! - A closed session leaves its consumer groups (epoch -1 heartbeats) before it
//!   disconnects from the node, so its partitions move on without a session timeout.
//! - Upstream connections and their in-flight requests are bounded per session
//!   ([`route::UPSTREAMS_MAX`], [`upstream::UPSTREAM_IN_FLIGHT_MAX`]); re-routing retries are
//!   bounded ([`route::ROUTE_ATTEMPTS_MAX`]); the node loop is never awaited under a lock.
//! - Every `select!` is `biased`.

pub mod auth;
pub(crate) mod consumer;
pub(crate) mod errors;
pub mod http;
pub mod link;
pub(crate) mod ops;
pub mod route;
pub mod session;
pub mod upstream;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use weir_runtime::{Listener, Runtime};

use crate::remote::RemoteStore;
use crate::sasl::SaslListener;
use crate::storage::StorageDriver;
use crate::tls::TlsAcceptor;

/// Gateway sessions use connection ids from here up; Kafka connections count from 1.
pub const CONN_ID_BASE: u64 = 1 << 62;
/// Default gateway address (`weir.gateway.listener`), on for local use.
pub const GATEWAY_LISTEN_DEFAULT: &str = "127.0.0.1:9093";
/// Pause after a failed accept before trying again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// What every session shares.
#[derive(Clone)]
pub struct GatewayContext<R, S> {
    /// The runtime (timers, spawn, wall clock).
    pub runtime: R,
    /// Storage, for resolving fetch reads.
    pub storage: S,
    /// The node loop's input channel.
    pub node: crate::shards::NodeHandle,
    /// This broker's node id.
    pub node_id: i32,
    /// Tiered storage's object store, for fetches below the local log start.
    pub remote: Option<RemoteStore>,
    /// `weir.gateway.sasl.*`: sessions must authenticate (edge protocol version 3);
    /// `None`: they do not, as before.
    pub sasl: Option<Arc<SaslListener>>,
    /// The brokers' registered (first) listener uses SASL: upstream connections then log
    /// in as their session's user ([`auth::UpstreamLogin`]).
    pub upstream_sasl: bool,
    /// The brokers' registered listener uses TLS: upstream connections are TLS with this
    /// client configuration ([`upstream::client_tls`]).
    pub upstream_tls: Option<Arc<rustls::ClientConfig>>,
    /// Session counter.
    sessions: Arc<AtomicU64>,
}

impl<R, S> GatewayContext<R, S> {
    /// A context for one gateway listener.
    pub fn new(runtime: R, storage: S, node: crate::shards::NodeHandle, node_id: i32) -> Self {
        GatewayContext {
            runtime,
            storage,
            node,
            node_id,
            remote: None,
            sasl: None,
            upstream_sasl: false,
            upstream_tls: None,
            sessions: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Require SASL authentication of every session (`None`: no authentication), and say
    /// whether upstream connections (to the brokers' registered listener) use SASL.
    pub fn with_sasl(mut self, sasl: Option<Arc<SaslListener>>, upstream_sasl: bool) -> Self {
        self.sasl = sasl;
        self.upstream_sasl = upstream_sasl;
        self
    }

    /// Serve remote reads (tiered storage) from `remote`.
    pub fn with_remote(mut self, remote: Option<RemoteStore>) -> Self {
        self.remote = remote;
        self
    }

    /// Open upstream connections with TLS (`None`: plain TCP).
    pub fn with_upstream_tls(mut self, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        self.upstream_tls = tls;
        self
    }

    fn next_session(&self) -> u64 {
        self.sessions.fetch_add(1, Ordering::Relaxed)
    }
}

/// Accept gateway connections until the node loop stops; with `tls` (the gateway serves
/// wss://, `weir.gateway.ssl.enable`) each session starts with a bounded TLS handshake.
pub async fn serve<R: Runtime, S: StorageDriver>(
    context: GatewayContext<R, S>,
    mut listener: R::Listener,
    tls: Option<TlsAcceptor>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!("gateway accept failed: {error}");
                let runtime = &context.runtime;
                runtime
                    .sleep_until(runtime.now() + ACCEPT_RETRY_DELAY)
                    .await;
                continue;
            }
        };
        if context.node.is_closed() {
            return;
        }
        let session = context.next_session();
        let session_context = context.clone();
        let tls = tls.clone();
        context.runtime.spawn(async move {
            let Some(acceptor) = tls else {
                session::run(session_context, stream, peer, session).await;
                return;
            };
            match acceptor.accept(&session_context.runtime, stream).await {
                Ok(stream) => session::run(session_context, stream, peer, session).await,
                Err(error) => tracing::info!("gateway: closing {peer}: {error}"),
            }
        });
    }
}

/// Lock, ignoring poisoning: every critical section in the gateway leaves its data
/// consistent (single inserts, removes and replacements), so a poisoned lock is usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
