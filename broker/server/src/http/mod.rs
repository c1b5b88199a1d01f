//! The HTTP services of `weir serve` (the REST proxy, the schema registry): one HTTP stack,
//! one authentication layer, one way into the broker.
//!
//! - **Stack.** Each service is an axum `Router<PlatformState>`; [`serve`] accepts its
//!   listener's connections through the runtime seam, runs the TLS handshake when the
//!   service's listener is TLS (`weir.http.ssl.enable`, the `ssl.*` material of the Kafka
//!   listeners, reloaded like theirs), and serves HTTP/1.1 with hyper. Bodies are bounded
//!   (`weir.http.max.request.bytes`, 413 beyond), connections are bounded per listener.
//! - **CORS.** `access.control.allow.origin` / `.methods` / `.headers` (Confluent's keys,
//!   off by default): one layer ([`cors`]) outside every service's routes, so a page on
//!   another origin can call the registry or the proxy; preflights are answered there.
//! - **Authentication.** `weir.http.authentication.method = NONE | BASIC`. With BASIC, the
//!   [`Caller`] extractor checks `Authorization: Basic` against the broker's own users with
//!   the SASL exchange Kafka connections run ([`auth`]); without it every caller is
//!   `User:ANONYMOUS`, as on a PLAINTEXT Kafka listener.
//! - **Authorization and the broker's paths.** A caller's requests go to the node loop
//!   over a node connection authenticated as the caller (`NodeInput::Authenticated`, its
//!   IP as the ACL host), through the gateway's [`Router`], which sends what this broker
//!   does not lead or coordinate to the broker that does, logged in as the same user. So
//!   ACLs, quotas of work, produce/fetch/group/admin logic are the broker's own: there is
//!   no second implementation here. Sessions are cached per caller and host
//!   ([`sessions`]), so a request costs no new connection and no new password check.
//!
//! Invariants:
//! - HTTP connection ids live at and above [`HTTP_CONN_ID_BASE`], disjoint from Kafka
//!   connections (from 1) and gateway sessions (from `gateway::CONN_ID_BASE`).
//! - At most [`SESSIONS_MAX`] cached sessions, each dropped after [`SESSION_IDLE`] without
//!   use; a session's node connection closes when its last user drops it.
//! - No password reaches a log line, an error body or a `Debug`.

pub mod auth;
pub mod cors;
pub mod error;
mod serve;
pub mod sessions;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use weir_core::Principal;
use weir_runtime::Runtime;

pub use self::auth::HttpAuth;
pub use self::cors::Cors;
pub use self::error::HttpError;
pub use self::serve::serve;
pub use self::sessions::BrokerSession;
use crate::gateway::route::Router;
use crate::remote::RemoteStore;
use crate::storage::StorageDriver;

/// HTTP sessions' node connection ids start here (above the gateway's).
pub const HTTP_CONN_ID_BASE: u64 = (1 << 62) + (1 << 61);
/// Cached caller sessions at most.
pub const SESSIONS_MAX: usize = 256;
/// A cached session unused this long is dropped.
pub const SESSION_IDLE: Duration = Duration::from_secs(300);
/// `weir.http.max.request.bytes` by default: the largest request body.
pub const REQUEST_BYTES_DEFAULT: usize = 16 << 20;
/// Open HTTP connections per listener at most; more are closed at accept.
pub const CONNECTIONS_MAX: usize = 1024;
/// Default REST proxy address (`weir.rest.proxy.listener`), Confluent's port.
pub const REST_PROXY_LISTEN_DEFAULT: &str = "127.0.0.1:8082";
/// Default schema registry address (`weir.schema.registry.listener`), Confluent's port.
pub const SCHEMA_REGISTRY_LISTEN_DEFAULT: &str = "127.0.0.1:8081";

/// What every HTTP service of one broker shares.
pub struct Platform<R: Runtime, S> {
    runtime: R,
    storage: S,
    node: crate::shards::NodeHandle,
    node_id: i32,
    remote: Option<RemoteStore>,
    auth: HttpAuth,
    /// The brokers' registered listener uses SASL: routed requests log in as the caller.
    upstream_sasl: bool,
    upstream_tls: Option<Arc<rustls::ClientConfig>>,
    request_bytes_max: usize,
    /// `access.control.allow.*`: CORS on every service; `None` = off.
    cors: Option<Arc<Cors>>,
    sessions: sessions::Sessions<R>,
}

/// The state every service's handlers get.
pub type PlatformState<R, S> = Arc<Platform<R, S>>;

impl<R: Runtime, S: StorageDriver> Platform<R, S> {
    /// The platform of the broker `node_id` whose node loop listens on `node`.
    pub fn new(runtime: R, storage: S, node: crate::shards::NodeHandle, node_id: i32) -> Self {
        Platform {
            runtime,
            storage,
            node,
            node_id,
            remote: None,
            auth: HttpAuth::None,
            upstream_sasl: false,
            upstream_tls: None,
            request_bytes_max: REQUEST_BYTES_DEFAULT,
            cors: None,
            sessions: sessions::Sessions::default(),
        }
    }

    /// Authenticate callers with `auth`; `upstream_sasl`: routed requests log in as them.
    pub fn with_auth(mut self, auth: HttpAuth, upstream_sasl: bool) -> Self {
        self.auth = auth;
        self.upstream_sasl = upstream_sasl;
        self
    }

    /// Serve fetches below the local log start from tiered storage.
    pub fn with_remote(mut self, remote: Option<RemoteStore>) -> Self {
        self.remote = remote;
        self
    }

    /// TLS for requests routed to other brokers (their registered listener is TLS).
    pub fn with_upstream_tls(mut self, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        self.upstream_tls = tls;
        self
    }

    /// The largest request body (`weir.http.max.request.bytes`).
    pub fn with_request_bytes_max(mut self, bytes: usize) -> Self {
        self.request_bytes_max = bytes;
        self
    }

    /// Answer browsers on other origins (`access.control.allow.*`); `None` = off.
    pub fn with_cors(mut self, cors: Option<Cors>) -> Self {
        self.cors = cors.map(Arc::new);
        self
    }

    /// The CORS policy, if any.
    pub fn cors(&self) -> Option<&Arc<Cors>> {
        self.cors.as_ref()
    }

    /// The runtime (clock, timers, spawn).
    pub fn runtime(&self) -> &R {
        &self.runtime
    }

    /// Storage, for resolving a fetch answer's read plan (`conn::resolve_reads`).
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Tiered storage, for fetch reads below the local log start.
    pub fn remote(&self) -> Option<&RemoteStore> {
        self.remote.as_ref()
    }

    /// This broker's node id.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The node loop's input channel.
    pub fn node(&self) -> &crate::shards::NodeHandle {
        &self.node
    }

    /// The largest request body.
    pub fn request_bytes_max(&self) -> usize {
        self.request_bytes_max
    }

    /// Whether callers must authenticate.
    pub fn requires_authentication(&self) -> bool {
        matches!(self.auth, HttpAuth::Basic(_))
    }
}

/// Who is calling: the authenticated principal (or `User:ANONYMOUS` when the services
/// require no authentication), the caller's host, and a broker session acting as them.
/// Extract it in a handler; a refused or missing credential answers 401 before the
/// handler runs.
pub struct Caller<R: Runtime> {
    /// The principal (`User:<name>`).
    pub principal: Principal,
    /// The caller's IP address (Kafka's ACL host).
    pub host: String,
    session: Arc<BrokerSession<R>>,
}

impl<R: Runtime> Clone for Caller<R> {
    fn clone(&self) -> Self {
        Caller {
            principal: self.principal.clone(),
            host: self.host.clone(),
            session: Arc::clone(&self.session),
        }
    }
}

impl<R: Runtime> Caller<R> {
    /// The caller's router into the broker: requests through it act as the caller.
    pub fn router(&self) -> &Arc<Router<R>> {
        self.session.router()
    }

    /// The session itself (long-lived users, e.g. REST consumer instances, keep it).
    pub fn session(&self) -> &Arc<BrokerSession<R>> {
        &self.session
    }
}

/// The peer of an HTTP connection, put in every request's extensions by [`serve`].
#[derive(Debug, Clone)]
pub struct Peer {
    /// The caller's IP address, no port.
    pub host: String,
    /// The connection is TLS (links the services write are https).
    pub tls: bool,
}

impl<R: Runtime, S: StorageDriver> FromRequestParts<PlatformState<R, S>> for Caller<R> {
    type Rejection = HttpError;

    async fn from_request_parts(
        parts: &mut Parts,
        platform: &PlatformState<R, S>,
    ) -> Result<Self, Self::Rejection> {
        let host = (parts.extensions.get::<Peer>())
            .map_or_else(|| "unknown".to_owned(), |peer| peer.host.clone());
        let authorization = parts.headers.get(axum::http::header::AUTHORIZATION);
        sessions::caller(platform, host, authorization.map(|value| value.as_bytes())).await
    }
}
