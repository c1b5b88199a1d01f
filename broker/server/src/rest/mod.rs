//! The REST proxy: Confluent's REST API (v3 admin and produce, the v2 produce form and v2
//! consumer instances) served by the broker itself on the HTTP platform ([`crate::http`]:
//! one stack, TLS and Basic authentication for every HTTP service).
//!
//! Every handler acts as its [`Caller`]: domain `ApiRequest`s go through the caller's
//! gateway [`Router`] (a node connection authenticated as the caller, so the broker's ACLs
//! apply as for a Kafka client; the local node loop, or the
//! leader's / coordinator's Kafka listener in a cluster), produce through the gateway's
//! `send_batch`/`finish_produce` (murmur2 for keyed records, re-sends in order when a
//! leader moves), and v2 consumer instances are the gateway's KIP-848 [`Consumer`]s (real
//! group members: an HTTP consumer and a Kafka client with `group.protocol=consumer` in one
//! group split its partitions), with fetch read plans resolved from storage by the same
//! code as a Kafka connection's. There is no Kafka client talking to itself over loopback.
//!
//! Layout: [`error`] (Confluent's error bodies), [`data`] (key/value formats, timestamps),
//! this module (the request context [`Rest`], routes), [`v3`] (clusters, brokers, topics,
//! partitions, replicas, configs, consumer groups, their consumers and lags), [`records`]
//! (v3 and v2 produce), [`consumers`] (v2 consumer instances), [`schemas`]
//! (AVRO/PROTOBUF/JSONSCHEMA data through the broker's schema registry).
//!
//! # Invariants
//! - Bad input is answered with Confluent's status and error code, never a panic; bodies
//!   are bounded (the platform's `weir.http.max.request.bytes`), records per request
//!   ([`RECORDS_PER_REQUEST_MAX`]), consumer instances ([`consumers::INSTANCES_MAX`]).
//! - A consumer instance belongs to the principal that created it: another caller is told
//!   40403, as for an instance that does not exist.
//! - Records of one request are sent to the broker in request order and answered in that
//!   order, so per-key order holds within a request and across sequential requests.
//! - A consumer instance idle longer than its timeout is closed (it leaves its group, so
//!   its partitions move on) and answers 40403 afterwards.
//!
//! [`Router`]: crate::gateway::route::Router
//! [`Caller`]: crate::http::Caller
//! [`Consumer`]: crate::gateway::consumer::Consumer

pub mod acls;
pub mod consumers;
pub mod data;
pub mod error;
pub mod records;
pub mod schemas;
pub mod v3;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::HOST;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use weir_runtime::Runtime;
use weir_wire::domain::{ApiRequest, ApiResponse, MetadataRequest, MetadataResponse};

use self::error::RestError;
use crate::gateway::lock;
use crate::gateway::ops::Meta;
use crate::gateway::route::Router;
use crate::http::{Caller, HttpError, Peer, PlatformState};
use crate::storage::StorageDriver;

/// Records one produce request may carry.
pub const RECORDS_PER_REQUEST_MAX: usize = 100_000;
/// Default idle time after which a v2 consumer instance is closed (Confluent's
/// `consumer.instance.timeout.ms`).
pub const INSTANCE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(300);

/// What the REST proxy keeps across requests (one per listener).
pub struct RestShared<R: Runtime> {
    /// Topic metadata shared by every request and consumer.
    pub meta: Meta,
    /// Next partition for keyless records, per topic.
    round_robin: Mutex<BTreeMap<String, i32>>,
    /// v2 consumer instances.
    pub consumers: consumers::Instances<R>,
    /// Idle time after which a consumer instance is closed.
    pub instance_timeout: Duration,
    /// The expiry task runs (started with the first instance).
    expiry_started: AtomicBool,
    /// The cluster id, once read (it never changes while the broker runs).
    cluster_id: OnceLock<String>,
}

impl<R: Runtime> RestShared<R> {
    fn new(instance_timeout: Duration) -> Self {
        RestShared {
            meta: Meta::default(),
            round_robin: Mutex::new(BTreeMap::new()),
            consumers: consumers::Instances::default(),
            instance_timeout,
            expiry_started: AtomicBool::new(false),
            cluster_id: OnceLock::new(),
        }
    }
}

/// One request's context: the platform, the proxy's shared state, the caller and the
/// `http(s)://host` its links start with. Extracting it authenticates the caller (401
/// before the handler runs when that fails).
pub struct Rest<R: Runtime, S: StorageDriver> {
    /// The HTTP platform (runtime, storage, node id).
    pub platform: PlatformState<R, S>,
    /// The proxy's state across requests.
    pub shared: Arc<RestShared<R>>,
    /// Who is calling, with their broker session.
    pub caller: Caller<R>,
    /// The `http(s)://host` prefix of `metadata.self` links.
    pub base: String,
    /// The broker's schema registry (off: schema formats are refused).
    pub schemas: schemas::Registry<R, S>,
}

impl<R: Runtime, S: StorageDriver> FromRequestParts<PlatformState<R, S>> for Rest<R, S> {
    type Rejection = HttpError;

    async fn from_request_parts(
        parts: &mut Parts,
        platform: &PlatformState<R, S>,
    ) -> Result<Self, Self::Rejection> {
        let shared = parts.extensions.get::<Arc<RestShared<R>>>().cloned();
        let shared = shared.ok_or_else(|| HttpError::internal("REST proxy state missing"))?;
        let schemas = parts.extensions.get::<schemas::Registry<R, S>>().cloned();
        let schemas = schemas.ok_or_else(|| HttpError::internal("REST proxy registry missing"))?;
        let host = (parts.headers.get(HOST))
            .and_then(|value| value.to_str().ok())
            .filter(|host| !host.is_empty())
            .unwrap_or("localhost");
        let tls = parts.extensions.get::<Peer>().is_some_and(|peer| peer.tls);
        let base = format!("{}://{host}", if tls { "https" } else { "http" });
        let caller = Caller::from_request_parts(parts, platform).await?;
        Ok(Rest {
            platform: Arc::clone(platform),
            shared,
            caller,
            base,
            schemas,
        })
    }
}

impl<R: Runtime, S: StorageDriver> Rest<R, S> {
    /// The runtime.
    pub fn runtime(&self) -> &R {
        self.platform.runtime()
    }

    /// The caller's router into the broker.
    pub fn router(&self) -> &Arc<Router<R>> {
        self.caller.router()
    }

    /// This broker's node id.
    pub fn node_id(&self) -> i32 {
        self.platform.node_id()
    }

    /// The next round-robin partition of `topic` for a keyless record.
    pub fn next_partition(&self, topic: &str, partitions: i32) -> i32 {
        let mut round_robin = lock(&self.shared.round_robin);
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

    /// Metadata of `topics` (`None`: all) from the local node, as the caller sees it; also
    /// teaches the caller's router.
    pub async fn metadata(
        &self,
        topics: Option<Vec<String>>,
    ) -> Result<MetadataResponse, RestError> {
        let router = self.router();
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

    /// The cluster id, checked against the one a path names (404 when it differs).
    pub async fn cluster_id(&self, asked: &str) -> Result<String, RestError> {
        let id = match self.shared.cluster_id.get() {
            Some(id) => id.clone(),
            None => {
                let metadata = self.metadata(Some(Vec::new())).await?;
                let id = metadata.cluster_id.unwrap_or_default();
                self.shared.cluster_id.get_or_init(|| id).clone()
            }
        };
        if asked != id {
            let message = format!("Cluster {asked} not found.");
            return Err(RestError::status(StatusCode::NOT_FOUND, message));
        }
        Ok(id)
    }

    /// Send an admin request to the local node (which forwards to the controller).
    pub async fn admin(&self, request: ApiRequest) -> Result<ApiResponse, RestError> {
        self.router()
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

/// Every REST route; v2 consumer instances idle for `instance_timeout` are closed; schema
/// formats use `registry` (`None`: the broker's schema registry is off).
pub fn routes<R: Runtime, S: StorageDriver>(
    instance_timeout: Duration,
    registry: Option<Arc<crate::registry::BrokerSchemaLog<R, S>>>,
) -> axum::Router<PlatformState<R, S>> {
    let shared = Arc::new(RestShared::<R>::new(instance_timeout));
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
            &format!("{cluster}/acls"),
            get(acls::list::<R, S>)
                .post(acls::create::<R, S>)
                .delete(acls::delete::<R, S>),
        )
        .route(
            &format!("{cluster}/brokers/{{broker_id}}"),
            get(v3::get_broker::<R, S>),
        )
        .route(
            &format!("{cluster}/brokers/{{broker_id}}/configs"),
            get(v3::list_broker_configs::<R, S>),
        )
        .route(
            &format!("{cluster}/brokers/{{broker_id}}/configs:alter"),
            post(v3::alter_broker_configs::<R, S>),
        )
        .route(
            &format!("{cluster}/brokers/{{broker_id}}/configs/{{name}}"),
            get(v3::get_broker_config::<R, S>)
                .put(v3::put_broker_config::<R, S>)
                .delete(v3::put_broker_config::<R, S>),
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
            &format!("{topic}/partitions/{{partition}}/replicas/{{broker_id}}"),
            get(v3::get_replica::<R, S>),
        )
        .route(
            &format!("{topic}/partitions/{{partition}}/reassignment"),
            get(v3::reassignments::<R, S>),
        )
        .route(
            &format!("{cluster}/brokers/{{broker_id}}/partition-replicas"),
            get(v3::list_broker_replicas::<R, S>),
        )
        .route(
            &format!("{cluster}/broker-configs"),
            get(v3::list_cluster_configs::<R, S>),
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
                .delete(v3::put_topic_config::<R, S>),
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
            &format!("{group}/consumers/{{consumer_id}}"),
            get(v3::get_group_consumer::<R, S>),
        )
        .route(
            &format!("{group}/consumers/{{consumer_id}}/assignments"),
            get(v3::list_consumer_assignments::<R, S>),
        )
        .route(
            &format!(
                "{group}/consumers/{{consumer_id}}/assignments/{{topic}}/partitions/{{partition}}"
            ),
            get(v3::get_consumer_assignment::<R, S>),
        )
        .route(
            &format!("{group}/lag-summary"),
            get(v3::group_lag_summary::<R, S>),
        )
        .route(&format!("{group}/lags"), get(v3::list_group_lags::<R, S>))
        .route(
            &format!("{group}/lags/{{topic}}/partitions/{{partition}}"),
            get(v3::get_group_lag::<R, S>),
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
            get(consumers::assignments::<R, S>).post(consumers::assign::<R, S>),
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
        .layer(axum::Extension(shared))
        .layer(axum::Extension(schemas::Registry(registry)))
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
