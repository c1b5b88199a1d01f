//! Routing a session's requests: to the local node loop when this broker leads the
//! partition (coordinates the group), else to the leader's (coordinator's) Kafka listener
//! over an [`Upstream`] connection.
//!
//! The routing table is learned from the local node's Metadata (brokers' Kafka addresses,
//! each partition's leader) and FindCoordinator answers; an entry is forgotten when an
//! answer says NOT_LEADER_OR_FOLLOWER / NOT_COORDINATOR (or the like) or its connection
//! fails, and the next request looks it up again.
//!
//! With an authenticated session and SASL on the brokers' registered listener, every
//! upstream connection logs in as the session's user before its first request
//! ([`super::auth::UpstreamLogin`]), so the serving broker authorizes that principal.
//!
//! Invariants:
//! - Outside cluster mode (Metadata lists one broker) every request goes to the local node
//!   loop, exactly as before routing existed; group requests do not even look up the
//!   coordinator.
//! - Unknown leaders (-1, or a broker without an address) route locally: the node answers
//!   with the proper Kafka error.
//! - Upstream connections per session are bounded ([`UPSTREAMS_MAX`]): one control lane
//!   per broker (produce, offsets, group requests) and one fetch lane per consumer and
//!   broker, so a long poll never delays a heartbeat or a produce behind it (Kafka answers
//!   a connection's requests in order).
//! - Retries are bounded ([`ROUTE_ATTEMPTS_MAX`], backoff from [`ROUTE_BACKOFF_MIN`] to
//!   [`ROUTE_BACKOFF_MAX`]); nothing here waits on the node loop while holding a lock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use weir_edge::EdgeError;
use weir_runtime::Runtime;
use weir_wire::domain::{
    ApiRequest, ApiResponse, FindCoordinatorRequest, MetadataRequest, MetadataResponse, TopicRef,
};
use weir_wire::error::ErrorCode;

use super::auth::{UpstreamCredential, UpstreamLogin};
use super::errors::{closed_error, kafka_error, unexpected};
use super::link::{NodeLink, PendingCall};
use super::lock;
use super::upstream::{Upstream, UpstreamCall, UpstreamError};
use crate::sasl::SaslListener;

/// Upstream connections one session may hold.
pub const UPSTREAMS_MAX: usize = 64;
/// Attempts of a routed request (the first one included).
pub const ROUTE_ATTEMPTS_MAX: u32 = 6;
/// First pause before re-routing.
pub const ROUTE_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest pause before re-routing.
pub const ROUTE_BACKOFF_MAX: Duration = Duration::from_millis(1_000);
/// Time allowed for an upstream answer (longer than any produce timeout or poll wait).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(45);
/// Bound on cached partition leaders and group coordinators; beyond it they start over.
const ROUTES_CACHED_MAX: usize = 100_000;
/// Requests of one upstream login (handshake, SCRAM's two messages).
const LOGIN_STEPS_MAX: usize = 3;
/// FindCoordinator key type of groups.
const KEY_TYPE_GROUP: i8 = 0;
/// FindCoordinator key type of transactional ids.
const KEY_TYPE_TRANSACTION: i8 = 1;

/// The coordinator cache's key: groups by name (as before), transactional ids prefixed so
/// a group and a transactional id of one name do not share an entry.
fn cache_key(key_type: i8, key: &str) -> String {
    if key_type == KEY_TYPE_GROUP {
        key.to_owned()
    } else {
        format!("\u{0}{key_type}:{key}")
    }
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dest {
    /// This broker's node loop.
    Local,
    /// Another broker, by node id.
    Remote(i32),
}

/// Which upstream connection to a broker a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lane {
    /// Produce, offsets, group requests.
    Control,
    /// One consumer's fetches (by its handle).
    Fetch(u32),
}

#[derive(Default)]
struct Routes {
    /// Whether Metadata was read once.
    loaded: bool,
    /// More than one broker: requests may leave this node.
    cluster: bool,
    /// Kafka `host:port` per broker.
    brokers: BTreeMap<i32, String>,
    leaders: BTreeMap<(String, i32), i32>,
    coordinators: BTreeMap<String, i32>,
}

/// A request sent and not yet answered.
pub enum Call {
    /// Sent to the node loop.
    Local(PendingCall),
    /// Sent to another broker.
    Remote(i32, UpstreamCall),
}

impl Call {
    /// Whether the call went to another broker.
    pub fn is_remote(&self) -> bool {
        matches!(self, Call::Remote(..))
    }
}

/// One session's router.
pub struct Router<R> {
    runtime: R,
    local: NodeLink,
    node_id: i32,
    routes: Mutex<Routes>,
    upstreams: Mutex<BTreeMap<(i32, Lane), Upstream>>,
    /// Produces of this session not finished yet, per partition: ticket -> sends so far.
    produces: Mutex<BTreeMap<(String, i32), BTreeMap<u64, u32>>>,
    next_ticket: Mutex<u64>,
    /// Signalled when a produce is re-sent or finishes.
    produces_changed: Notify,
    /// The session's user and the nonce source: upstream connections log in as the user.
    login: Option<(Arc<UpstreamCredential>, Arc<SaslListener>)>,
    /// TLS for upstream connections (the registered listener is SSL or SASL_SSL).
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// A produce's place in its partition's order; finishes it when dropped.
pub struct Ticket<R> {
    router: Arc<Router<R>>,
    partition: (String, i32),
    id: u64,
}

impl<R> Drop for Ticket<R> {
    fn drop(&mut self) {
        let mut produces = lock(&self.router.produces);
        if let Some(tickets) = produces.get_mut(&self.partition) {
            tickets.remove(&self.id);
            if tickets.is_empty() {
                produces.remove(&self.partition);
            }
        }
        drop(produces);
        self.router.produces_changed.notify_waiters();
    }
}

impl<R: Runtime> Ticket<R> {
    /// Wait until every earlier produce of the partition has finished or has been sent
    /// `sends` times: re-sends then reach the leader in the original order.
    pub async fn await_turn(&self, sends: u32) {
        loop {
            let changed = self.router.produces_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let ready = lock(&self.router.produces)
                .get(&self.partition)
                .is_none_or(|tickets| tickets.range(..self.id).all(|(_, sent)| *sent >= sends));
            if ready {
                return;
            }
            changed.await;
        }
    }

    /// Record that this produce has now been sent `sends` times.
    pub fn sent(&self, sends: u32) {
        if let Some(tickets) = lock(&self.router.produces).get_mut(&self.partition) {
            tickets.insert(self.id, sends);
        }
        self.router.produces_changed.notify_waiters();
    }
}

impl<R: Runtime> Router<R> {
    /// A router over the session's node link.
    pub fn new(runtime: R, local: NodeLink, node_id: i32) -> Router<R> {
        Router {
            runtime,
            local,
            node_id,
            routes: Mutex::new(Routes::default()),
            upstreams: Mutex::new(BTreeMap::new()),
            produces: Mutex::new(BTreeMap::new()),
            next_ticket: Mutex::new(0),
            produces_changed: Notify::new(),
            login: None,
            tls: None,
        }
    }

    /// Open upstream connections with TLS (`None`: plain TCP).
    pub fn with_tls(mut self, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        self.tls = tls;
        self
    }

    /// Log upstream connections in as the session's user (`None`: they stay anonymous).
    pub fn with_login(
        mut self,
        login: Option<(Arc<UpstreamCredential>, Arc<SaslListener>)>,
    ) -> Self {
        self.login = login;
        self
    }

    /// Authenticate a fresh upstream connection as the session's user: SaslHandshake,
    /// then SaslAuthenticate until the broker accepts (bounded by the mechanism's steps).
    async fn login(&self, upstream: &Upstream) -> Result<(), UpstreamError> {
        let Some((credential, listener)) = &self.login else {
            return Ok(());
        };
        let mut login = UpstreamLogin::new(Arc::clone(credential), &listener.nonce());
        let mut request = login.start();
        for _ in 0..LOGIN_STEPS_MAX {
            let call = upstream.send(&request).await?;
            let answer = call.response(&self.runtime, UPSTREAM_TIMEOUT).await?;
            match login.answer(&answer) {
                Ok(Some(next)) => request = next,
                Ok(None) => return Ok(()),
                Err(reason) => return Err(UpstreamError::Login(reason)),
            }
        }
        Err(UpstreamError::Login(
            "upstream SASL exchange too long".to_owned(),
        ))
    }

    /// The runtime (timers of the reads a fetch answer still needs).
    pub fn runtime(&self) -> &R {
        &self.runtime
    }

    /// Register a produce about to be sent for the first time (call in send order).
    pub fn ticket(self: &Arc<Self>, topic: &str, partition: i32) -> Ticket<R> {
        let id = {
            let mut next = lock(&self.next_ticket);
            *next += 1;
            *next
        };
        let key = (topic.to_owned(), partition);
        lock(&self.produces)
            .entry(key.clone())
            .or_default()
            .insert(id, 0);
        Ticket {
            router: Arc::clone(self),
            partition: key,
            id,
        }
    }

    /// The session's node link.
    pub fn local(&self) -> &NodeLink {
        &self.local
    }

    /// True once the session's node link is closed (the session is over).
    pub fn is_closed(&self) -> bool {
        self.local.is_closed()
    }

    /// Learn brokers and leaders from a Metadata answer of the local node.
    pub fn learn(&self, response: &MetadataResponse) {
        let mut routes = lock(&self.routes);
        routes.loaded = true;
        if !response.brokers.is_empty() {
            routes.cluster = response.brokers.len() > 1;
            routes.brokers = response
                .brokers
                .iter()
                .map(|b| (b.node_id, address(&b.host, b.port)))
                .collect();
        }
        if routes.leaders.len() >= ROUTES_CACHED_MAX {
            routes.leaders.clear();
        }
        let answered: BTreeSet<&String> = response
            .topics
            .iter()
            .filter_map(|t| t.name.as_ref())
            .collect();
        routes.leaders.retain(|(t, _), _| !answered.contains(t));
        for topic in &response.topics {
            let Some(name) = &topic.name else { continue };
            if topic.error != ErrorCode::NONE {
                continue;
            }
            for partition in &topic.partitions {
                routes
                    .leaders
                    .insert((name.clone(), partition.partition), partition.leader_id);
            }
        }
    }

    /// Read brokers and leaders of `topics` from the local node.
    async fn load(&self, topics: Vec<String>) -> Result<(), EdgeError> {
        let request = ApiRequest::Metadata(MetadataRequest {
            topics: Some(topics.into_iter().map(TopicRef::Name).collect()),
            allow_auto_topic_creation: false,
            include_cluster_authorized_operations: false,
            include_topic_authorized_operations: false,
        });
        let answer = self.local.call(request).await.map_err(closed_error)?;
        let ApiResponse::Metadata(answer) = answer else {
            return Err(unexpected("Metadata"));
        };
        self.learn(&answer);
        Ok(())
    }

    fn dest_of(&self, routes: &Routes, node: i32) -> Dest {
        if !routes.cluster || node < 0 || node == self.node_id {
            return Dest::Local;
        }
        if routes.brokers.contains_key(&node) {
            Dest::Remote(node)
        } else {
            Dest::Local
        }
    }

    /// The node id of `dest` (this broker's own for [`Dest::Local`]).
    pub fn node_of(&self, dest: Dest) -> i32 {
        match dest {
            Dest::Local => self.node_id,
            Dest::Remote(node) => node,
        }
    }

    /// Where requests for a partition go.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<Dest, EdgeError> {
        let key = (topic.to_owned(), partition);
        {
            let routes = lock(&self.routes);
            if routes.loaded && !routes.cluster {
                return Ok(Dest::Local);
            }
            if let Some(&node) = routes.leaders.get(&key) {
                return Ok(self.dest_of(&routes, node));
            }
        }
        self.load(vec![topic.to_owned()]).await?;
        let routes = lock(&self.routes);
        let node = routes.leaders.get(&key).copied().unwrap_or(-1);
        Ok(self.dest_of(&routes, node))
    }

    /// Forget a partition's leader (the next request looks it up again).
    pub fn forget_leader(&self, topic: &str, partition: i32) {
        lock(&self.routes)
            .leaders
            .remove(&(topic.to_owned(), partition));
    }

    /// Forget everything learned through broker `node` (its connection failed).
    fn forget_broker(&self, node: i32) {
        let mut routes = lock(&self.routes);
        routes.leaders.retain(|_, leader| *leader != node);
        routes
            .coordinators
            .retain(|_, coordinator| *coordinator != node);
        routes.loaded = false;
    }

    /// Where requests for a group go.
    pub async fn coordinator(&self, group: &str) -> Result<Dest, EdgeError> {
        self.coordinator_of(KEY_TYPE_GROUP, group).await
    }

    /// Where requests for a transactional id go (its transaction coordinator).
    pub async fn txn_coordinator(&self, transactional_id: &str) -> Result<Dest, EdgeError> {
        self.coordinator_of(KEY_TYPE_TRANSACTION, transactional_id)
            .await
    }

    /// Forget a transactional id's coordinator.
    pub fn forget_txn_coordinator(&self, transactional_id: &str) {
        lock(&self.routes)
            .coordinators
            .remove(&cache_key(KEY_TYPE_TRANSACTION, transactional_id));
    }

    async fn coordinator_of(&self, key_type: i8, key: &str) -> Result<Dest, EdgeError> {
        let group = key;
        let cached = cache_key(key_type, key);
        {
            let routes = lock(&self.routes);
            if routes.loaded && !routes.cluster {
                return Ok(Dest::Local);
            }
            if let Some(&node) = routes.coordinators.get(&cached) {
                return Ok(self.dest_of(&routes, node));
            }
        }
        if !lock(&self.routes).loaded {
            self.load(Vec::new()).await?;
            if !lock(&self.routes).cluster {
                return Ok(Dest::Local);
            }
        }
        let request = ApiRequest::FindCoordinator(FindCoordinatorRequest {
            key_type,
            keys: vec![group.to_owned()],
        });
        let answer = self.local.call(request).await.map_err(closed_error)?;
        let ApiResponse::FindCoordinator(answer) = answer else {
            return Err(unexpected("FindCoordinator"));
        };
        let found = answer
            .coordinators
            .into_iter()
            .find(|c| c.key == group)
            .ok_or_else(|| unexpected("FindCoordinator (group missing)"))?;
        if found.error != ErrorCode::NONE {
            let message = found.error_message.unwrap_or_default();
            return Err(kafka_error(found.error, message));
        }
        let mut routes = lock(&self.routes);
        if routes.coordinators.len() >= ROUTES_CACHED_MAX {
            routes.coordinators.clear();
        }
        routes.coordinators.insert(cached, found.node_id);
        if found.node_id >= 0 && found.port > 0 {
            routes
                .brokers
                .entry(found.node_id)
                .or_insert_with(|| address(&found.host, found.port));
        }
        Ok(self.dest_of(&routes, found.node_id))
    }

    /// Forget a group's coordinator.
    pub fn forget_coordinator(&self, group: &str) {
        lock(&self.routes).coordinators.remove(group);
    }

    async fn upstream(&self, node: i32, lane: Lane) -> Result<Upstream, UpstreamError> {
        let key = (node, lane);
        let known = lock(&self.upstreams).get(&key).cloned();
        if let Some(upstream) = known.filter(|u| !u.is_closed()) {
            return Ok(upstream);
        }
        let address = lock(&self.routes).brokers.get(&node).cloned();
        let address = address.ok_or_else(|| UpstreamError::Network {
            address: format!("broker {node}"),
            reason: "address unknown".to_owned(),
        })?;
        let upstream = Upstream::open(&self.runtime, &address, self.tls.as_ref()).await?;
        self.login(&upstream).await?;
        let mut upstreams = lock(&self.upstreams);
        upstreams.retain(|_, u| !u.is_closed());
        if upstreams.len() >= UPSTREAMS_MAX && !upstreams.contains_key(&key) {
            // Evict one lane; its calls in flight still complete (they hold the connection).
            if let Some(first) = upstreams.keys().next().copied() {
                upstreams.remove(&first);
            }
        }
        upstreams.insert(key, upstream.clone());
        Ok(upstream)
    }

    /// Drop a lane's connections (a consumer closed).
    pub fn close_lane(&self, lane: Lane) {
        lock(&self.upstreams).retain(|(_, l), _| *l != lane);
    }

    /// Send `request` now (in call order per destination); await the call later.
    pub async fn send(
        &self,
        dest: Dest,
        lane: Lane,
        request: ApiRequest,
    ) -> Result<Call, EdgeError> {
        match dest {
            Dest::Local => Ok(Call::Local(
                self.local.send(request).await.map_err(closed_error)?,
            )),
            Dest::Remote(node) => {
                let sent = match self.upstream(node, lane).await {
                    Ok(upstream) => upstream.send(&request).await,
                    Err(error) => Err(error),
                };
                match sent {
                    Ok(call) => Ok(Call::Remote(node, call)),
                    Err(error) => Err(self.failed(node, &error)),
                }
            }
        }
    }

    /// Wait for a call's answer. Local fetch reads stay unresolved (the caller resolves).
    pub async fn answer(&self, call: Call) -> Result<ApiResponse, EdgeError> {
        match call {
            Call::Local(call) => call.response().await.map_err(closed_error),
            Call::Remote(node, call) => {
                match call.response(&self.runtime, UPSTREAM_TIMEOUT).await {
                    Ok(answer) => Ok(answer),
                    Err(error) => Err(self.failed(node, &error)),
                }
            }
        }
    }

    /// Send and wait.
    pub async fn call(
        &self,
        dest: Dest,
        lane: Lane,
        request: ApiRequest,
    ) -> Result<ApiResponse, EdgeError> {
        let call = self.send(dest, lane, request).await?;
        self.answer(call).await
    }

    fn failed(&self, node: i32, error: &UpstreamError) -> EdgeError {
        tracing::debug!("gateway: upstream broker {node}: {error}");
        self.forget_broker(node);
        // A refused login is the caller's (or the registry's) credentials, as a Kafka
        // client would be told; anything else is the connection.
        let code = match error {
            UpstreamError::Login(_) => ErrorCode::SASL_AUTHENTICATION_FAILED,
            _ => ErrorCode::NETWORK_EXCEPTION,
        };
        kafka_error(code, format!("forwarding to broker {node}: {error}"))
    }

    /// Pause before attempt `attempt` (1-based) of a re-routed request.
    pub async fn backoff(&self, attempt: u32) {
        let factor = 1u32 << attempt.saturating_sub(1).min(8);
        let delay = (ROUTE_BACKOFF_MIN * factor).min(ROUTE_BACKOFF_MAX);
        self.runtime.sleep_until(self.runtime.now() + delay).await;
    }

    /// A group request, sent to the group's coordinator, re-routed (with backoff) while
    /// the answer says the coordinator moved or a connection failed.
    pub async fn call_group(
        &self,
        group: &str,
        request: ApiRequest,
    ) -> Result<ApiResponse, EdgeError> {
        let mut attempt = 1;
        loop {
            let result = match self.coordinator(group).await {
                Ok(dest) => self.call(dest, Lane::Control, request.clone()).await,
                Err(error) => Err(error),
            };
            let retry = match &result {
                Ok(answer) => group_error(answer).is_some_and(coordinator_moved),
                Err(error) => {
                    !self.is_closed()
                        && (error.code == ErrorCode::NETWORK_EXCEPTION.0
                            || coordinator_moved(ErrorCode(error.code)))
                }
            };
            if !retry || attempt >= ROUTE_ATTEMPTS_MAX {
                return result;
            }
            self.forget_coordinator(group);
            self.backoff(attempt).await;
            attempt += 1;
        }
    }
}

fn address(host: &str, port: i32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Errors that mean "ask the current coordinator again".
pub fn coordinator_moved(error: ErrorCode) -> bool {
    matches!(
        error,
        ErrorCode::NOT_COORDINATOR
            | ErrorCode::COORDINATOR_NOT_AVAILABLE
            | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
    )
}

/// Errors that mean "ask the current leader again".
pub fn leader_moved(error: ErrorCode) -> bool {
    matches!(
        error,
        ErrorCode::NOT_LEADER_OR_FOLLOWER
            | ErrorCode::LEADER_NOT_AVAILABLE
            | ErrorCode::FENCED_LEADER_EPOCH
            | ErrorCode::UNKNOWN_LEADER_EPOCH
    )
}

/// The first coordinator-level error of a group answer.
fn group_error(answer: &ApiResponse) -> Option<ErrorCode> {
    match answer {
        ApiResponse::ConsumerGroupHeartbeat(answer) => Some(answer.error),
        ApiResponse::OffsetFetch(answer) => answer.groups.iter().map(|g| g.error).next(),
        ApiResponse::OffsetCommit(answer) => answer
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|(_, error)| *error))
            .find(|error| *error != ErrorCode::NONE),
        _ => None,
    }
}
