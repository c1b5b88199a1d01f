//! The REST proxy: Confluent's REST API (v3 admin and produce, the v2 produce form and v2
//! consumer instances) served by the broker itself.
//!
//! Every behaviour goes through the broker's own paths: handlers build domain
//! `ApiRequest`s and send them through a gateway [`Router`] (the local node loop, or the
//! leader's / coordinator's Kafka listener in a cluster), produce through the gateway's
//! `send_batch`/`finish_produce` (murmur2 for keyed records, re-sends in order when a
//! leader moves), and v2 consumer instances are the gateway's KIP-848 [`Consumer`]s (real
//! group members: an HTTP consumer and a Kafka client with `group.protocol=consumer` in one
//! group split its partitions), with fetch read plans resolved from storage by the same
//! code as a Kafka connection's. There is no Kafka client talking to itself over loopback.
//!
//! Layout: [`error`] (Confluent's error bodies), [`data`] (key/value formats, timestamps),
//! [`v3`] (clusters, brokers, topics, partitions, configs, consumer groups), [`records`]
//! (v3 and v2 produce), [`consumers`] (v2 consumer instances), [`serve`] (the listener).
//!
//! # Invariants
//! - Bad input is answered with Confluent's status and error code, never a panic; bodies
//!   are bounded ([`BODY_BYTES_MAX`]), records per request ([`RECORDS_PER_REQUEST_MAX`]),
//!   consumer instances ([`consumers::INSTANCES_MAX`]).
//! - Records of one request are sent to the broker in request order and answered in that
//!   order, so per-key order holds within a request and across sequential requests.
//! - A consumer instance idle longer than its timeout is closed (it leaves its group, so
//!   its partitions move on) and answers 40403 afterwards.
//! - REST connection ids live above [`CONN_ID_BASE`], disjoint from Kafka connections and
//!   gateway sessions.
//!
//! [`Router`]: crate::gateway::route::Router
//! [`Consumer`]: crate::gateway::consumer::Consumer

pub mod consumers;
pub mod data;
pub mod error;
pub mod records;
pub mod v3;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use tokio::sync::mpsc;
use weir_runtime::{Listener, Runtime};
use weir_wire::domain::{ApiRequest, ApiResponse, MetadataRequest, MetadataResponse};

use self::error::RestError;
use crate::gateway::link::NodeLink;
use crate::gateway::ops::Meta;
use crate::gateway::route::Router;
use crate::gateway::{lock, CONN_ID_BASE as GATEWAY_CONN_ID_BASE};
use crate::messages::NodeInput;
use crate::remote::RemoteStore;
use crate::storage::StorageDriver;

/// Default REST proxy address (`weir.rest.proxy.listener`), Confluent's port.
pub const REST_LISTEN_DEFAULT: &str = "127.0.0.1:8082";
/// REST connection ids start here: above the gateway's, below the top bit.
pub const CONN_ID_BASE: u64 = GATEWAY_CONN_ID_BASE + (1 << 61);
/// Largest request body; a larger one is answered 413.
pub const BODY_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Records one produce request may carry.
pub const RECORDS_PER_REQUEST_MAX: usize = 100_000;
/// Default idle time after which a v2 consumer instance is closed (Confluent's
/// `consumer.instance.timeout.ms`).
pub const INSTANCE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(300);
/// Pause after a failed accept before trying again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// The state the REST proxy's handlers share.
pub type RestState<R, S> = Arc<RestContext<R, S>>;

/// What every REST request may use.
pub struct RestContext<R, S> {
    /// The runtime (timers, spawn, wall clock).
    pub runtime: R,
    /// Storage, for resolving fetch read plans.
    pub storage: S,
    /// Tiered storage's object store, for fetches below the local log start.
    pub remote: Option<RemoteStore>,
    node: mpsc::Sender<NodeInput>,
    node_id: i32,
    upstream_tls: Option<Arc<rustls::ClientConfig>>,
    /// The broker session requests go through (re-opened if the node loop dropped it).
    session: tokio::sync::Mutex<Option<Arc<Router<R>>>>,
    /// Topic metadata shared by every request and consumer.
    pub meta: Meta,
    /// Next partition for keyless records, per topic.
    round_robin: Mutex<BTreeMap<String, i32>>,
    /// v2 consumer instances.
    pub consumers: consumers::Instances,
    /// Idle time after which a consumer instance is closed.
    pub instance_timeout: Duration,
    sessions: AtomicU64,
}

impl<R: Runtime, S: StorageDriver> RestContext<R, S> {
    /// A context for one REST listener.
    pub fn new(runtime: R, storage: S, node: mpsc::Sender<NodeInput>, node_id: i32) -> Self {
        RestContext {
            runtime,
            storage,
            remote: None,
            node,
            node_id,
            upstream_tls: None,
            session: tokio::sync::Mutex::new(None),
            meta: Meta::default(),
            round_robin: Mutex::new(BTreeMap::new()),
            consumers: consumers::Instances::default(),
            instance_timeout: INSTANCE_TIMEOUT_DEFAULT,
            sessions: AtomicU64::new(1),
        }
    }

    /// Serve remote reads (tiered storage) from `remote`.
    pub fn with_remote(mut self, remote: Option<RemoteStore>) -> Self {
        self.remote = remote;
        self
    }

    /// Reach other brokers with TLS (`None`: plain TCP).
    pub fn with_upstream_tls(mut self, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        self.upstream_tls = tls;
        self
    }

    /// Close consumer instances idle for `timeout`.
    pub fn with_instance_timeout(mut self, timeout: Duration) -> Self {
        self.instance_timeout = timeout;
        self
    }

    /// This broker's node id.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The broker session requests go through.
    pub async fn session(&self) -> Result<Arc<Router<R>>, RestError> {
        let mut session = self.session.lock().await;
        if let Some(router) = session.as_ref().filter(|router| !router.is_closed()) {
            return Ok(Arc::clone(router));
        }
        let conn = CONN_ID_BASE + self.sessions.fetch_add(1, Ordering::Relaxed);
        let link = NodeLink::connect(&self.runtime, self.node.clone(), conn)
            .await
            .map_err(|_| unavailable())?;
        let router = Router::new(self.runtime.clone(), link, self.node_id)
            .with_tls(self.upstream_tls.clone());
        let router = Arc::new(router);
        *session = Some(Arc::clone(&router));
        Ok(router)
    }

    /// The next round-robin partition of `topic` for a keyless record.
    pub fn next_partition(&self, topic: &str, partitions: i32) -> i32 {
        let mut round_robin = lock(&self.round_robin);
        if round_robin.len() >= crate::gateway::ops::TOPICS_CACHED_MAX
            && !round_robin.contains_key(topic)
        {
            round_robin.clear();
        }
        let next = round_robin.entry(topic.to_owned()).or_insert(0);
        let chosen = next.rem_euclid(partitions.max(1));
        *next = (chosen + 1) % partitions.max(1);
        chosen
    }

    /// Metadata of `topics` (`None`: all) from the local node; also teaches the router.
    pub async fn metadata(
        &self,
        topics: Option<Vec<String>>,
    ) -> Result<MetadataResponse, RestError> {
        let router = self.session().await?;
        let request = ApiRequest::Metadata(MetadataRequest {
            topics: topics.map(|names| {
                names
                    .into_iter()
                    .map(weir_wire::domain::TopicRef::Name)
                    .collect()
            }),
            allow_auto_topic_creation: false,
            include_cluster_authorized_operations: false,
            include_topic_authorized_operations: false,
        });
        let answer = router
            .local()
            .call(request)
            .await
            .map_err(|_| unavailable())?;
        let ApiResponse::Metadata(answer) = answer else {
            return Err(unexpected("Metadata"));
        };
        router.learn(&answer);
        Ok(answer)
    }

    /// Send an admin request to the local node (which forwards to the controller).
    pub async fn admin(&self, request: ApiRequest) -> Result<ApiResponse, RestError> {
        let router = self.session().await?;
        router
            .local()
            .call(request)
            .await
            .map_err(|_| unavailable())
    }
}

/// The broker stopped serving this session.
pub fn unavailable() -> RestError {
    RestError::status(
        StatusCode::SERVICE_UNAVAILABLE,
        "the broker closed the REST proxy's session",
    )
}

/// An answer of an unexpected type (a broker bug).
pub fn unexpected(what: &str) -> RestError {
    RestError::status(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("unexpected answer to {what}"),
    )
}

/// The `http://host` prefix of `metadata.self` links, from the request's Host header.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// Every REST route, for the state of one listener.
pub fn routes<R: Runtime, S: StorageDriver>() -> axum::Router<RestState<R, S>> {
    let cluster = "/v3/clusters/{cluster_id}";
    let topic = "/v3/clusters/{cluster_id}/topics/{topic}";
    let group = "/v3/clusters/{cluster_id}/consumer-groups/{group}";
    let instance = "/consumers/{group}/instances/{instance}";
    axum::Router::new()
        .route("/", get(v3::root))
        .route("/v3/clusters", get(v3::list_clusters::<R, S>))
        .route(cluster, get(v3::get_cluster::<R, S>))
        .route(&format!("{cluster}/brokers"), get(v3::list_brokers::<R, S>))
        .route(
            &format!("{cluster}/brokers/{{broker_id}}"),
            get(v3::get_broker::<R, S>),
        )
        .route(
            &format!("{cluster}/topics"),
            get(v3::list_topics::<R, S>).post(v3::create_topic::<R, S>),
        )
        .route(
            topic,
            get(v3::get_topic::<R, S>).delete(v3::delete_topic::<R, S>),
        )
        .route(
            &format!("{topic}/partitions"),
            get(v3::list_partitions::<R, S>),
        )
        .route(
            &format!("{topic}/partitions/{{partition}}"),
            get(v3::get_partition::<R, S>),
        )
        .route(
            &format!("{topic}/partitions/{{partition}}/replicas"),
            get(v3::list_replicas::<R, S>),
        )
        .route(
            &format!("{topic}/configs"),
            get(v3::list_topic_configs::<R, S>),
        )
        .route(
            &format!("{topic}/configs:alter"),
            post(v3::alter_topic_configs::<R, S>),
        )
        .route(
            &format!("{topic}/configs/{{name}}"),
            get(v3::get_topic_config::<R, S>)
                .put(v3::put_topic_config::<R, S>)
                .delete(v3::delete_topic_config::<R, S>),
        )
        .route(
            &format!("{topic}/records"),
            post(records::produce_v3::<R, S>),
        )
        .route(
            &format!("{cluster}/consumer-groups"),
            get(v3::list_groups::<R, S>),
        )
        .route(group, get(v3::get_group::<R, S>))
        .route(
            &format!("{group}/consumers"),
            get(v3::list_group_consumers::<R, S>),
        )
        .route(
            &format!("{group}/lag-summary"),
            get(v3::group_lag_summary::<R, S>),
        )
        .route("/topics", get(records::list_topics_v2::<R, S>))
        .route(
            "/topics/{topic}",
            get(records::get_topic_v2::<R, S>).post(records::produce_v2::<R, S>),
        )
        .route(
            "/topics/{topic}/partitions/{partition}",
            post(records::produce_v2_partition::<R, S>),
        )
        .route("/consumers/{group}", post(consumers::create::<R, S>))
        .route(instance, axum::routing::delete(consumers::delete::<R, S>))
        .route(
            &format!("{instance}/subscription"),
            post(consumers::subscribe::<R, S>)
                .get(consumers::subscription::<R, S>)
                .delete(consumers::unsubscribe::<R, S>),
        )
        .route(
            &format!("{instance}/assignments"),
            get(consumers::assignments::<R, S>),
        )
        .route(
            &format!("{instance}/positions"),
            post(consumers::seek::<R, S>),
        )
        .route(
            &format!("{instance}/positions/beginning"),
            post(consumers::seek_beginning::<R, S>),
        )
        .route(
            &format!("{instance}/positions/end"),
            post(consumers::seek_end::<R, S>),
        )
        .route(
            &format!("{instance}/records"),
            get(consumers::records::<R, S>),
        )
        .route(
            &format!("{instance}/offsets"),
            post(consumers::commit::<R, S>).get(consumers::committed::<R, S>),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> RestError {
    RestError::status(StatusCode::NOT_FOUND, "HTTP 404 Not Found")
}

async fn method_not_allowed() -> RestError {
    RestError::status(
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTP 405 Method Not Allowed",
    )
}

/// Serve the REST API on `listener` until the node loop stops; also runs the expiry of
/// idle consumer instances.
pub async fn serve<R: Runtime, S: StorageDriver>(
    context: RestState<R, S>,
    mut listener: R::Listener,
) {
    context
        .runtime
        .spawn(consumers::expire_loop(Arc::clone(&context)));
    let app = routes::<R, S>()
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(Arc::clone(&context));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!("rest proxy accept failed: {error}");
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
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        context.runtime.spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let served = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
            if let Err(error) = served {
                tracing::debug!("rest proxy: connection from {peer}: {error}");
            }
        });
    }
}
