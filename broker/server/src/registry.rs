//! The schema registry's `_schemas` log on the broker's own paths: `BrokerSchemaLog`
//! implements weir-registry's `SchemaLog` over a gateway `route::Router` (requests enter
//! the local node loop like a Kafka connection's, and go to the leader or coordinator on
//! another broker over its Kafka listener).
//!
//! - Reads: a tail task fetches `_schemas`-0 read_committed from the next offset to apply
//!   and applies every record to the in-memory store, in log order.
//! - Writes: one fixed transactional id (`__weir_schema_registry`). Each write does
//!   InitProducerId (fencing any other broker's writer and aborting its open transaction),
//!   reads the partition's last stable offset and waits until the store has applied it,
//!   plans on that store, then AddPartitionsToTxn, a transactional produce and EndTxn
//!   (commit), and answers once the tail applied the records. A writer fenced meanwhile
//!   starts over, so no two brokers can ever hand out the same id.
//! - `_schemas` is created on first use (the first write, or the tail's first look)
//!   through CreateTopics: one partition, `cleanup.policy=compact`, replication factor
//!   min(3, brokers).
//! - Who it is ([`BrokerAccess`]): with `kafkastore.sasl.jaas.config` (Confluent's key) the
//!   registry is `User:<username>` on its local node connection and logs in as that user
//!   (PLAIN or SCRAM) on every connection to another broker's registered listener, so
//!   every broker authorizes the same principal. Without it, it is
//!   `User:__weir_schema_registry` locally, and a request that would have to reach a
//!   broker on a SASL listener fails at once saying so (it could not log in).
//! - A refusal (not authorized, cannot log in) is an answer, not a retry: writes fail with
//!   it, and reads waiting for the tail fail with the tail's refusal instead of waiting.
//!
//! Invariants: the store is changed only by the tail, in offset order; a write's answer is
//! given only after its records are applied locally; every wait is bounded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::extract::Request;
use bytes::Bytes;
use tokio::sync::Notify;
use weir_client::session::fetch::records_from_committed;
use weir_registry::ops::Planned;
use weir_registry::store::Store;
use weir_registry::{RegistryError, SchemaLog};
use weir_runtime::Runtime;
use weir_wire::domain::txn::{AddPartitionsToTxnRequest, EndTxnRequest, TxnTopic};
use weir_wire::domain::{
    ApiRequest, ApiResponse, CreatableTopic, CreateTopicsRequest, FetchPartition, FetchRecords,
    FetchRequest, FetchTopic, InitProducerIdRequest, ListOffsetsPartition, ListOffsetsRequest,
    ListOffsetsTopic, MetadataRequest, ProducePartition, ProduceRequest, ProduceTopic, TopicRef,
    LATEST_TIMESTAMP,
};
use weir_wire::error::ErrorCode;
use weir_wire::records::{encode_batch, BatchOptions, Record};
use weir_wire::sasl::{PlainMessage, SaslMechanism};

use crate::gateway::auth::UpstreamCredential;
use crate::gateway::link::NodeLink;
use crate::gateway::route::{Dest, Lane, Router};
use crate::remote::RemoteStore;
use crate::storage::StorageDriver;

/// The registry's topic, as Confluent names it.
pub const SCHEMAS_TOPIC: &str = "_schemas";
/// The one transactional id every broker's registry writes with.
pub const TRANSACTIONAL_ID: &str = "__weir_schema_registry";
/// The principal of the registry's node connection when it has no login of its own
/// (`User:__weir_schema_registry`). With `kafkastore.sasl.jaas.config` the registry is
/// `User:<username>` instead, on its node connection and, logged in with that user's
/// password (PLAIN or SCRAM), on its connections to other brokers. With an authorizer,
/// grant that principal `_schemas` and the transactional id, or make it a super user
/// (docs/schema-registry.md, "Authorization and secured clusters").
pub const PRINCIPAL_NAME: &str = "__weir_schema_registry";
/// Attempts of one write (fenced, coordinator moving, topic being created).
const WRITE_ATTEMPTS_MAX: u32 = 10;
/// How long a write waits for the store to apply what it needs.
const APPLY_TIMEOUT: Duration = Duration::from_secs(15);
/// A transaction's timeout at the coordinator.
const TRANSACTION_TIMEOUT_MS: i32 = 30_000;
/// The tail's long poll.
const TAIL_WAIT_MS: i32 = 500;
/// Bytes per tail fetch.
const TAIL_FETCH_BYTES_MAX: i32 = 8 << 20;
/// The tail's pause after an error (topic missing, leader moving).
const TAIL_BACKOFF: Duration = Duration::from_millis(200);
const PRODUCE_TIMEOUT_MS: i32 = 30_000;
/// Replicas of `_schemas` at most (Confluent's default).
const REPLICATION_FACTOR_MAX: usize = 3;
/// The read_committed isolation level.
const READ_COMMITTED: i8 = 1;

/// How the registry reaches other brokers (their registered listener).
#[derive(Debug, Default, Clone)]
pub struct BrokerAccess {
    /// TLS when the registered listener is SSL or SASL_SSL (its truststore).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// `kafkastore.*`: the registry's user and password.
    pub login: Option<crate::config::RegistryLogin>,
    /// The registered listener's name when it is SASL (connections to it must log in).
    pub sasl_listener: Option<String>,
}

impl BrokerAccess {
    /// The principal the registry acts as.
    fn principal(&self) -> weir_core::Principal {
        let name = self
            .login
            .as_ref()
            .map_or(PRINCIPAL_NAME, |l| l.username.as_str());
        weir_core::Principal::user(name)
    }

    /// The upstream credential of the login, with a nonce source for SCRAM.
    fn upstream_login<R: Runtime>(
        &self,
        runtime: &R,
    ) -> Option<(Arc<UpstreamCredential>, Arc<crate::sasl::SaslListener>)> {
        let login = self.login.as_ref()?;
        let message = PlainMessage {
            username: login.username.clone(),
            password: login.password.clone(),
        };
        let credential = match login.mechanism {
            SaslMechanism::Plain => UpstreamCredential::Plain(message),
            SaslMechanism::Scram(mechanism) => {
                UpstreamCredential::ScramPassword(mechanism, message)
            }
        };
        let mut seed = runtime.secret_seed();
        for (index, byte) in PRINCIPAL_NAME.bytes().enumerate() {
            seed[index % seed.len()] ^= byte;
        }
        // Only the nonces are used: the settings check nothing here.
        let settings = crate::sasl::SaslSettings {
            mechanisms: vec![login.mechanism],
            plain_users: BTreeMap::new(),
            reauth: None,
            authentication_timeout: Duration::from_secs(10),
        };
        let listener = crate::sasl::SaslListener::new(settings, seed);
        Some((Arc::new(credential), Arc::new(listener)))
    }

    /// Why a request to another broker cannot be sent: its listener is SASL and the
    /// registry has no login.
    pub fn cannot_log_in(&self) -> Option<String> {
        let listener = self
            .sasl_listener
            .as_ref()
            .filter(|_| self.login.is_none())?;
        Some(format!(
            "the registered listener {listener} requires SASL and the schema registry has no \
             login: set kafkastore.sasl.mechanism and kafkastore.sasl.jaas.config"
        ))
    }
}

/// `_schemas` on this broker: the store, the tail that fills it, and the writer.
pub struct BrokerSchemaLog<R: Runtime, S: StorageDriver> {
    runtime: R,
    storage: S,
    remote: Option<RemoteStore>,
    router: Arc<Router<R>>,
    store: RwLock<Store>,
    /// The next offset of `_schemas`-0 the tail applies.
    applied: Mutex<i64>,
    applied_changed: Notify,
    /// One write at a time on this broker (others are fenced by the transactional id).
    writer: tokio::sync::Mutex<()>,
    topic_ready: AtomicBool,
    /// Set by the first use of the registry: the tail starts then, so a broker whose
    /// registry is never used sends nothing.
    wanted: AtomicBool,
    wake: Notify,
    /// The store holds everything committed when the tail started (or `_schemas` does
    /// not exist yet).
    caught_up: AtomicBool,
    /// Set when requests to other brokers cannot log in (see [`BrokerAccess`]).
    cannot_log_in: Option<String>,
    /// The principal the registry acts as (for messages).
    principal: String,
    /// The tail's last refusal (not authorized, cannot log in); cleared when it reads.
    refused: Mutex<Option<String>>,
}

/// Why one write attempt stopped.
enum Attempt {
    /// Fenced, coordinator moved, transaction still closing: start over.
    Retry(String),
    /// An error retrying cannot change (answered as it is).
    Fail(RegistryError),
    /// The registry may not do this (not authorized, its login refused or missing): the
    /// same on the next attempt, and what readers waiting for the tail are told.
    Refused(String),
}

impl From<RegistryError> for Attempt {
    fn from(error: RegistryError) -> Self {
        Attempt::Fail(error)
    }
}

fn edge_error(error: weir_edge::EdgeError) -> Attempt {
    let message = format!("{}: {}", error.name, error.message);
    // A connection that could not log in (wrong password, mechanism not enabled) is
    // refused the same way on the next attempt: an answer, not a retry.
    if error.code == ErrorCode::SASL_AUTHENTICATION_FAILED.0 {
        return Attempt::Refused(message);
    }
    Attempt::Retry(message)
}

/// Errors that mean the registry's principal may not do what it asked.
fn denied(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::TOPIC_AUTHORIZATION_FAILED
            | ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
            | ErrorCode::CLUSTER_AUTHORIZATION_FAILED
            | ErrorCode::GROUP_AUTHORIZATION_FAILED
    )
}

fn retriable(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::PRODUCER_FENCED
            | ErrorCode::INVALID_PRODUCER_EPOCH
            | ErrorCode::CONCURRENT_TRANSACTIONS
            | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            | ErrorCode::COORDINATOR_NOT_AVAILABLE
            | ErrorCode::NOT_COORDINATOR
            | ErrorCode::NOT_LEADER_OR_FOLLOWER
            | ErrorCode::LEADER_NOT_AVAILABLE
            | ErrorCode::OFFSET_NOT_AVAILABLE
            | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
            | ErrorCode::NOT_ENOUGH_REPLICAS
            | ErrorCode::REQUEST_TIMED_OUT
            | ErrorCode::NETWORK_EXCEPTION
            | ErrorCode::INVALID_TXN_STATE
            | ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
    )
}

fn check(code: ErrorCode, what: &str) -> Result<(), Attempt> {
    if code == ErrorCode::NONE {
        return Ok(());
    }
    let message = format!("{what}: {}", code.name());
    if retriable(code) {
        Err(Attempt::Retry(message))
    } else {
        Err(Attempt::Fail(RegistryError::Store(message)))
    }
}

fn unexpected(what: &str) -> Attempt {
    Attempt::Fail(RegistryError::Store(format!("unexpected answer to {what}")))
}

/// The node-loop connection id of the registry's log (below the gateway's sessions, far
/// above any Kafka connection).
pub const REGISTRY_CONN_ID: u64 = crate::gateway::CONN_ID_BASE - 1;

/// The registry's REST API over a `BrokerSchemaLog` started on this broker, and the log
/// itself (the REST proxy's schema formats use it); `None`, logged, if the node loop is
/// already gone.
pub async fn routes<R: Runtime, S: StorageDriver>(
    runtime: R,
    storage: S,
    remote: Option<RemoteStore>,
    node: crate::shards::NodeHandle,
    node_id: i32,
    access: BrokerAccess,
) -> Option<(axum::Router, Arc<BrokerSchemaLog<R, S>>)> {
    let node_input = node.clone();
    let started = BrokerSchemaLog::start(
        runtime,
        storage,
        remote,
        node,
        node_id,
        REGISTRY_CONN_ID,
        access,
    )
    .await;
    match started {
        Ok(log) => {
            // Broker-side validation reads this broker's store; the message reaches the
            // node loop before any Kafka listener accepts (the server awaits this).
            let validator = Arc::new(RegistryValidator {
                log: Arc::clone(&log),
                unread: Mutex::new(BTreeMap::new()),
            });
            let _ = node_input
                .send(crate::messages::NodeInput::SchemaValidator(validator))
                .await;
            let routes = weir_registry::api::routes::<BrokerSchemaLog<R, S>>();
            Some((routes.with_state(Arc::clone(&log)), log))
        }
        Err(error) => {
            tracing::error!("schema registry not started: {error}");
            None
        }
    }
}

/// The registry's routes as the HTTP stack serves them: every request first passes the
/// stack's authentication (the `Caller` extractor answers 401 for a missing or refused
/// credential when `weir.http.authentication.method = BASIC`), then reaches `routes`.
pub fn served<R: Runtime, S: StorageDriver>(
    routes: axum::Router,
) -> axum::Router<crate::http::PlatformState<R, S>> {
    axum::Router::new().fallback(move |caller: crate::http::Caller<R>, request: Request| {
        let mut routes = routes.clone();
        async move {
            tracing::trace!(
                "schema registry: {} {} by {}",
                request.method(),
                request.uri().path(),
                caller.principal
            );
            match tower_service::Service::call(&mut routes, request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    })
}

/// Broker-side schema validation over this broker's registry store (issue 17 item 4):
/// the node asks it, synchronously, whether a record's schema id is registered under the
/// subject its topic's strategy names. Reads only the in-memory store.
///
/// An id above every id this store has read may have been registered a moment ago on
/// another broker, its record not fetched here yet: for [`UNREAD_ID_GRACE`] from the first
/// time it is asked about, the answer is retriable (the producer tries again), then
/// INVALID_RECORD. Ids below are known or deleted: answered at once.
pub struct RegistryValidator<R: Runtime, S: StorageDriver> {
    log: Arc<BrokerSchemaLog<R, S>>,
    /// Unknown ids above the store's next id, with when they were first asked about
    /// (runtime clock); at most [`UNREAD_IDS_MAX`], entries older than twice the grace go.
    unread: Mutex<BTreeMap<u32, Duration>>,
}

/// How long an id above the store's next id is answered "not read yet" (retriable).
pub const UNREAD_ID_GRACE: Duration = Duration::from_secs(3);
/// Unknown ids remembered at once (beyond: refused at once).
const UNREAD_IDS_MAX: usize = 1024;

impl<R: Runtime, S: StorageDriver> RegistryValidator<R, S> {
    /// Whether `schema_id`, unknown to the store whose next id is `next_id`, may still be
    /// unread here (asked about for less than the grace).
    fn maybe_unread(&self, schema_id: u32, next_id: u32) -> bool {
        if schema_id < next_id {
            return false;
        }
        let now = self.log.runtime.now();
        let Ok(mut unread) = self.unread.lock() else {
            return false;
        };
        unread.retain(|_, first| now.saturating_sub(*first) < 2 * UNREAD_ID_GRACE);
        if unread.len() >= UNREAD_IDS_MAX && !unread.contains_key(&schema_id) {
            return false;
        }
        let first = *unread.entry(schema_id).or_insert(now);
        now.saturating_sub(first) < UNREAD_ID_GRACE
    }
}

impl<R: Runtime, S: StorageDriver> std::fmt::Debug for RegistryValidator<R, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistryValidator")
    }
}

impl<R: Runtime, S: StorageDriver> weir_core::schema_check::SchemaValidator
    for RegistryValidator<R, S>
{
    fn check(
        &self,
        topic: &str,
        side: weir_core::schema_check::SchemaSide,
        strategy: weir_core::schema_check::SubjectNameStrategy,
        schema_id: u32,
    ) -> Result<(), weir_core::schema_check::SchemaRefusal> {
        use weir_core::schema_check::{SchemaRefusal, SubjectNameStrategy};
        // The first validated record starts the tail; until it has read what `_schemas`
        // held, an unknown id may only be unread, so the answer is retriable.
        self.log.want();
        if !self.log.caught_up.load(Ordering::Acquire) {
            let message = match self.log.refused() {
                Some(refusal) => format!("the schema registry cannot read _schemas: {refusal}"),
                None => "the schema registry is still reading _schemas; retry".to_owned(),
            };
            return Err(SchemaRefusal::Unavailable(message));
        }
        let Ok(store) = self.log.store.read() else {
            return Err(SchemaRefusal::Unavailable(
                "the schema registry's store is unavailable".to_owned(),
            ));
        };
        let Some(content) = store.content(schema_id) else {
            if self.maybe_unread(schema_id, store.next_id()) {
                return Err(SchemaRefusal::Unavailable(format!(
                    "schema id {schema_id} is not in this broker's registry yet; retry"
                )));
            }
            return Err(SchemaRefusal::Invalid(format!(
                "schema id {schema_id} does not exist in the schema registry"
            )));
        };
        let subject = match strategy {
            SubjectNameStrategy::TopicName => format!("{topic}-{}", side.name()),
            SubjectNameStrategy::RecordName | SubjectNameStrategy::TopicRecordName => {
                let Some(name) = (content.parsed.as_ref()).and_then(|p| p.record_name()) else {
                    return Err(SchemaRefusal::Invalid(format!(
                        "schema id {schema_id} has no record name for {}",
                        strategy.name()
                    )));
                };
                match strategy {
                    SubjectNameStrategy::TopicRecordName => format!("{topic}-{name}"),
                    _ => name,
                }
            }
        };
        let registered = (store.id_users(schema_id, false).iter()).any(|(s, _)| *s == subject);
        if registered {
            Ok(())
        } else {
            Err(SchemaRefusal::Invalid(format!(
                "schema id {schema_id} is not registered under subject {subject} ({})",
                strategy.name()
            )))
        }
    }
}

impl<R: Runtime, S: StorageDriver> BrokerSchemaLog<R, S> {
    /// Connects to the node loop as connection `conn` and starts the tail.
    pub async fn start(
        runtime: R,
        storage: S,
        remote: Option<RemoteStore>,
        node: crate::shards::NodeHandle,
        node_id: i32,
        conn: u64,
        access: BrokerAccess,
    ) -> Result<Arc<Self>, RegistryError> {
        let gone = || RegistryError::Store("the node loop is gone".to_owned());
        let link = NodeLink::connect(&runtime, node.clone(), conn)
            .await
            .map_err(|_| gone())?;
        // The principal reaches the node before any request of the connection (one ordered
        // channel), as for an authenticated HTTP or gateway session.
        let principal = access.principal();
        let authenticated = crate::messages::NodeInput::Authenticated { conn, principal };
        node.send(authenticated).await.map_err(|_| gone())?;
        let router = Router::new(runtime.clone(), link, node_id)
            .with_tls(access.tls.clone())
            .with_login(access.upstream_login(&runtime));
        let log = Arc::new(BrokerSchemaLog {
            runtime: runtime.clone(),
            storage,
            remote,
            router: Arc::new(router),
            store: RwLock::new(Store::default()),
            applied: Mutex::new(0),
            applied_changed: Notify::new(),
            writer: tokio::sync::Mutex::new(()),
            topic_ready: AtomicBool::new(false),
            wanted: AtomicBool::new(false),
            wake: Notify::new(),
            caught_up: AtomicBool::new(false),
            cannot_log_in: access.cannot_log_in(),
            principal: access.principal().to_string(),
            refused: Mutex::new(None),
        });
        runtime.spawn(tail(Arc::clone(&log)));
        Ok(log)
    }

    /// Waits (bounded) until the store holds everything committed to `_schemas` now, so a
    /// schema another broker registered a moment ago is readable here (the REST proxy asks
    /// this when a record names a schema id the store does not have yet).
    pub async fn catch_up_now(&self) -> Result<(), RegistryError> {
        self.want();
        match self.stable_end().await {
            Ok(end) => self.wait_applied(end).await,
            Err(Attempt::Retry(message) | Attempt::Refused(message)) => {
                Err(RegistryError::Store(message))
            }
            Err(Attempt::Fail(error)) => Err(error),
        }
    }

    /// Starts the tail if nothing has yet.
    fn want(&self) {
        if !self.wanted.swap(true, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    fn mark_caught_up(&self) {
        if !self.caught_up.swap(true, Ordering::AcqRel) {
            self.applied_changed.notify_waiters();
        }
    }

    fn applied(&self) -> i64 {
        *self
            .applied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits (bounded) until the tail has applied every offset below `end`.
    async fn wait_applied(&self, end: i64) -> Result<(), RegistryError> {
        let deadline = self.runtime.now() + APPLY_TIMEOUT;
        loop {
            let changed = self.applied_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.applied() >= end {
                return Ok(());
            }
            if let Some(refusal) = self.refused() {
                return Err(RegistryError::Store(format!(
                    "reading {SCHEMAS_TOPIC}: {refusal}"
                )));
            }
            if self.runtime.now() >= deadline {
                return Err(RegistryError::Timeout(format!(
                    "{SCHEMAS_TOPIC} applied up to {} of {end}",
                    self.applied()
                )));
            }
            tokio::select! {
                biased;
                () = changed => {}
                () = self.runtime.sleep_until(deadline) => {}
            }
        }
    }

    /// Creates `_schemas` unless it exists.
    async fn ensure_topic(&self) -> Result<(), Attempt> {
        if self.topic_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let metadata = ApiRequest::Metadata(MetadataRequest {
            topics: Some(vec![TopicRef::Name(SCHEMAS_TOPIC.to_owned())]),
            allow_auto_topic_creation: false,
            include_cluster_authorized_operations: false,
            include_topic_authorized_operations: false,
        });
        let answer = self
            .router
            .local()
            .call(metadata)
            .await
            .map_err(|_| closed())?;
        let ApiResponse::Metadata(answer) = answer else {
            return Err(unexpected("Metadata"));
        };
        let exists = answer.topics.iter().any(|t| t.error == ErrorCode::NONE);
        if !exists {
            let replicas = answer.brokers.len().clamp(1, REPLICATION_FACTOR_MAX);
            let request = ApiRequest::CreateTopics(CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: SCHEMAS_TOPIC.to_owned(),
                    num_partitions: 1,
                    replication_factor: i16::try_from(replicas).unwrap_or(1),
                    assignments: Vec::new(),
                    configs: vec![("cleanup.policy".to_owned(), Some("compact".to_owned()))],
                }],
                timeout_ms: 30_000,
                validate_only: false,
            });
            let answer = self
                .router
                .local()
                .call(request)
                .await
                .map_err(|_| closed())?;
            let ApiResponse::CreateTopics(answer) = answer else {
                return Err(unexpected("CreateTopics"));
            };
            for topic in answer.topics {
                if topic.error != ErrorCode::TOPIC_ALREADY_EXISTS {
                    self.check_as(topic.error, "CreateTopics _schemas")?;
                }
            }
        }
        self.topic_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// A routing failure: a refusal (not authorized, the login refused) is an answer,
    /// anything else is retried.
    fn edge_error(&self, error: weir_edge::EdgeError) -> Attempt {
        if denied(ErrorCode(error.code)) {
            let mut message = format!("{} as {}", error.name, self.principal);
            if !error.message.is_empty() {
                message = format!("{message}: {}", error.message);
            }
            return Attempt::Refused(message);
        }
        edge_error(error)
    }

    /// `check` naming the registry's principal when it was refused.
    fn check_as(&self, code: ErrorCode, what: &str) -> Result<(), Attempt> {
        if denied(code) {
            let principal = &self.principal;
            return Err(Attempt::Refused(format!(
                "{what} as {principal}: {}",
                code.name()
            )));
        }
        check(code, what)
    }

    /// `dest`, unless it is another broker the registry cannot log in to.
    fn reachable(&self, dest: Dest) -> Result<Dest, Attempt> {
        match (&self.cannot_log_in, dest) {
            (Some(reason), Dest::Remote(node)) => Err(Attempt::Refused(format!(
                "cannot reach broker {node}: {reason}"
            ))),
            _ => Ok(dest),
        }
    }

    /// Records the tail's refusal (`None`: it reads again) and wakes the readers waiting.
    fn set_refused(&self, refusal: Option<String>) {
        let mut refused = self
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = *refused != refusal;
        *refused = refusal;
        drop(refused);
        if changed {
            self.applied_changed.notify_waiters();
        }
    }

    fn refused(&self) -> Option<String> {
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    async fn init_producer(&self) -> Result<(i64, i16), Attempt> {
        let dest = self
            .router
            .txn_coordinator(TRANSACTIONAL_ID)
            .await
            .map_err(|e| self.edge_error(e))?;
        let dest = self.reachable(dest)?;
        let request = ApiRequest::InitProducerId(InitProducerIdRequest {
            transactional_id: Some(TRANSACTIONAL_ID.to_owned()),
            transaction_timeout_ms: TRANSACTION_TIMEOUT_MS,
            producer_id: -1,
            producer_epoch: -1,
        });
        let answer = self
            .router
            .call(dest, Lane::Control, request)
            .await
            .map_err(|e| self.edge_error(e))?;
        let ApiResponse::InitProducerId(answer) = answer else {
            return Err(unexpected("InitProducerId"));
        };
        if answer.error == ErrorCode::NOT_COORDINATOR {
            self.router.forget_txn_coordinator(TRANSACTIONAL_ID);
        }
        self.check_as(answer.error, "InitProducerId")?;
        Ok((answer.producer_id, answer.producer_epoch))
    }

    /// The partition's last stable offset: every committed record is below it.
    async fn stable_end(&self) -> Result<i64, Attempt> {
        let request = ApiRequest::ListOffsets(ListOffsetsRequest {
            replica_id: -1,
            isolation_level: READ_COMMITTED,
            topics: vec![ListOffsetsTopic {
                name: SCHEMAS_TOPIC.to_owned(),
                partitions: vec![ListOffsetsPartition {
                    partition: 0,
                    current_leader_epoch: -1,
                    timestamp: LATEST_TIMESTAMP,
                }],
            }],
        });
        let ApiResponse::ListOffsets(answer) = self.leader_call(request).await? else {
            return Err(unexpected("ListOffsets"));
        };
        let partitions = answer.topics.into_iter().flat_map(|topic| topic.partitions);
        let found = partitions.map(|p| (p.partition, p.error, p.offset));
        self.partition_zero(found, "ListOffsets _schemas")
    }

    async fn txn_call(&self, request: ApiRequest) -> Result<ApiResponse, Attempt> {
        let dest = self
            .router
            .txn_coordinator(TRANSACTIONAL_ID)
            .await
            .map_err(|e| self.edge_error(e))?;
        let dest = self.reachable(dest)?;
        self.router
            .call(dest, Lane::Control, request)
            .await
            .map_err(|e| self.edge_error(e))
    }

    async fn add_partition(&self, producer: (i64, i16)) -> Result<(), Attempt> {
        let request = ApiRequest::AddPartitionsToTxn(AddPartitionsToTxnRequest {
            transactional_id: TRANSACTIONAL_ID.to_owned(),
            producer_id: producer.0,
            producer_epoch: producer.1,
            topics: vec![TxnTopic {
                name: SCHEMAS_TOPIC.to_owned(),
                partitions: vec![0],
            }],
        });
        let ApiResponse::AddPartitionsToTxn(answer) = self.txn_call(request).await? else {
            return Err(unexpected("AddPartitionsToTxn"));
        };
        for result in answer.results.iter().flat_map(|topic| &topic.partitions) {
            self.check_as(result.error, "AddPartitionsToTxn")?;
        }
        Ok(())
    }

    /// Produces the records in the open transaction; returns the first one's offset.
    async fn produce(
        &self,
        producer: (i64, i16),
        records: &[weir_registry::record::Record],
    ) -> Result<i64, Attempt> {
        let wall_ms = self.runtime.wall_ms();
        let batch: Vec<Record> = records
            .iter()
            .map(|record| Record {
                offset: 0,
                timestamp: wall_ms,
                key: Some(Bytes::from(record.key.clone())),
                value: record.value.clone().map(Bytes::from),
                headers: Vec::new(),
            })
            .collect();
        let options = BatchOptions {
            producer_id: producer.0,
            producer_epoch: producer.1,
            // Every write has a fresh epoch (InitProducerId), so its first sequence is 0.
            base_sequence: 0,
            transactional: true,
            ..BatchOptions::default()
        };
        let bytes = encode_batch(&batch, &options)
            .map_err(|error| Attempt::Fail(RegistryError::Store(error.to_string())))?;
        let request = ApiRequest::Produce(ProduceRequest {
            transactional_id: Some(TRANSACTIONAL_ID.to_owned()),
            acks: weir_wire::domain::Acks::All,
            timeout_ms: PRODUCE_TIMEOUT_MS,
            topics: vec![ProduceTopic {
                topic: TopicRef::Name(SCHEMAS_TOPIC.to_owned()),
                partitions: vec![ProducePartition {
                    partition: 0,
                    records: Some(bytes),
                }],
            }],
        });
        let ApiResponse::Produce(answer) = self.leader_call(request).await? else {
            return Err(unexpected("Produce"));
        };
        let partitions = answer.topics.into_iter().flat_map(|topic| topic.partitions);
        let found = partitions.map(|p| (p.partition, p.error, p.base_offset));
        self.partition_zero(found, "Produce _schemas")
    }

    /// Send `request` to the leader of `_schemas`-0 and wait for its answer.
    async fn leader_call(&self, request: ApiRequest) -> Result<ApiResponse, Attempt> {
        let dest = (self.router.leader(SCHEMAS_TOPIC, 0).await).map_err(|e| self.edge_error(e))?;
        let dest = self.reachable(dest)?;
        (self.router.call(dest, Lane::Control, request).await).map_err(|e| self.edge_error(e))
    }

    /// Partition 0's offset among an answer's `(partition, error, offset)`s; a leader
    /// that moved is forgotten, so the retry asks the new one.
    fn partition_zero(
        &self,
        mut found: impl Iterator<Item = (i32, ErrorCode, i64)>,
        what: &str,
    ) -> Result<i64, Attempt> {
        let (_, error, offset) = found
            .find(|(partition, _, _)| *partition == 0)
            .ok_or_else(|| unexpected(&format!("{what} (partition missing)")))?;
        if error == ErrorCode::NOT_LEADER_OR_FOLLOWER {
            self.router.forget_leader(SCHEMAS_TOPIC, 0);
        }
        self.check_as(error, what)?;
        Ok(offset)
    }

    async fn end_txn(&self, producer: (i64, i16), committed: bool) -> Result<(), Attempt> {
        let request = ApiRequest::EndTxn(EndTxnRequest {
            transactional_id: TRANSACTIONAL_ID.to_owned(),
            producer_id: producer.0,
            producer_epoch: producer.1,
            committed,
        });
        let ApiResponse::EndTxn(answer) = self.txn_call(request).await? else {
            return Err(unexpected("EndTxn"));
        };
        self.check_as(answer.error, "EndTxn")
    }

    async fn attempt<T, F>(&self, plan: &F) -> Result<T, Attempt>
    where
        F: Fn(&Store) -> Result<Planned<T>, RegistryError>,
    {
        self.ensure_topic().await?;
        let producer = self.init_producer().await?;
        let end = self.stable_end().await?;
        self.wait_applied(end).await?;
        let planned = {
            let store = self.store.read().map_err(|_| poisoned())?;
            plan(&store)?
        };
        if planned.records.is_empty() {
            return Ok(planned.answer);
        }
        self.add_partition(producer).await?;
        let base_offset = match self.produce(producer, &planned.records).await {
            Ok(offset) => offset,
            Err(error) => {
                // Best effort: the next InitProducerId aborts it anyway.
                let _ = self.end_txn(producer, false).await;
                return Err(error);
            }
        };
        self.end_txn(producer, true).await?;
        let count = i64::try_from(planned.records.len()).unwrap_or(i64::MAX);
        self.wait_applied(base_offset.saturating_add(count)).await?;
        Ok(planned.answer)
    }

    /// Applies one fetch answer's records; returns whether anything moved.
    fn apply_fetched(&self, answer: ApiResponse, start: i64) -> Result<bool, Attempt> {
        let retry = |reason: &str| Attempt::Retry(reason.to_owned());
        let ApiResponse::Fetch(answer) = answer else {
            return Err(retry("unexpected answer"));
        };
        let Some(partition) = answer.topics.into_iter().flat_map(|t| t.partitions).next() else {
            return Err(retry("fetch answer without the partition"));
        };
        if partition.error != ErrorCode::NONE {
            if partition.error == ErrorCode::NOT_LEADER_OR_FOLLOWER {
                self.router.forget_leader(SCHEMAS_TOPIC, 0);
            }
            self.check_as(partition.error, "Fetch _schemas")?;
        }
        let FetchRecords::Bytes(bytes) = partition.records else {
            return Err(retry("fetch answer without record bytes"));
        };
        let decoded = records_from_committed(bytes, start, Some(&partition.aborted_transactions))
            .map_err(|error| Attempt::Retry(error.to_string()))?;
        if decoded.next_position <= start {
            return Ok(false);
        }
        {
            let mut store = self.store.write().map_err(|_| poisoned())?;
            for record in &decoded.records {
                if record.offset < start {
                    continue;
                }
                let key = record.key.as_deref().unwrap_or_default();
                store.apply(key, record.value.as_deref());
            }
        }
        *self
            .applied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = decoded.next_position;
        self.applied_changed.notify_waiters();
        Ok(true)
    }

    async fn fetch(&self, start: i64) -> Result<ApiResponse, Attempt> {
        let dest = self
            .router
            .leader(SCHEMAS_TOPIC, 0)
            .await
            .map_err(|e| self.edge_error(e))?;
        let dest = self.reachable(dest)?;
        let request = ApiRequest::Fetch(FetchRequest {
            replica_id: -1,
            max_wait_ms: TAIL_WAIT_MS,
            min_bytes: 1,
            max_bytes: TAIL_FETCH_BYTES_MAX,
            isolation_level: READ_COMMITTED,
            session_id: 0,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: TopicRef::Name(SCHEMAS_TOPIC.to_owned()),
                partitions: vec![FetchPartition {
                    partition: 0,
                    current_leader_epoch: -1,
                    fetch_offset: start,
                    log_start_offset: -1,
                    partition_max_bytes: TAIL_FETCH_BYTES_MAX,
                }],
            }],
            rack_id: String::new(),
        });
        let mut answer = self
            .router
            .call(dest, Lane::Fetch(0), request)
            .await
            .map_err(|e| self.edge_error(e))?;
        if dest == Dest::Local {
            let runtime = &self.runtime;
            crate::remote::resolve_remote(self.remote.as_ref(), runtime, &mut answer, "registry")
                .await;
            crate::conn::resolve_reads(&self.storage, &mut answer, "registry");
        }
        Ok(answer)
    }
}

fn closed() -> Attempt {
    Attempt::Fail(RegistryError::Store("the node loop is gone".to_owned()))
}

fn poisoned() -> Attempt {
    Attempt::Fail(RegistryError::Store("store lock poisoned".to_owned()))
}

/// Applies `_schemas` to the store for as long as the node runs, from the registry's
/// first use on.
async fn tail<R: Runtime, S: StorageDriver>(log: Arc<BrokerSchemaLog<R, S>>) {
    let wake = log.wake.notified();
    if !log.wanted.load(Ordering::Acquire) {
        wake.await;
    }
    // The offset below which everything committed at start is: reads wait for it once.
    let mut initial_end: Option<i64> = None;
    loop {
        if log.router.is_closed() {
            return;
        }
        if !log.topic_ready.load(Ordering::Acquire) {
            // Look for the topic without creating it: it is created by the first write.
            match probe_topic(&log).await {
                Ok(()) => {}
                Err(Attempt::Refused(refusal)) => {
                    // Not allowed to see it: readers get the refusal, not an empty store.
                    log.set_refused(Some(refusal));
                    log.runtime
                        .sleep_until(log.runtime.now() + TAIL_BACKOFF * 5)
                        .await;
                    continue;
                }
                Err(Attempt::Retry(_) | Attempt::Fail(_)) => {
                    log.set_refused(None);
                    log.mark_caught_up();
                    log.runtime
                        .sleep_until(log.runtime.now() + TAIL_BACKOFF * 5)
                        .await;
                    continue;
                }
            }
        }
        if initial_end.is_none() && !log.caught_up.load(Ordering::Acquire) {
            match log.stable_end().await {
                Ok(end) => initial_end = Some(end),
                Err(error) => {
                    if let Attempt::Refused(refusal) = error {
                        log.set_refused(Some(refusal));
                    }
                    log.runtime
                        .sleep_until(log.runtime.now() + TAIL_BACKOFF)
                        .await;
                    continue;
                }
            }
        }
        let start = log.applied();
        if initial_end.is_some_and(|end| start >= end) {
            log.mark_caught_up();
        }
        let outcome = match log.fetch(start).await {
            Ok(answer) => log.apply_fetched(answer, start),
            Err(error) => Err(error),
        };
        match &outcome {
            Ok(_) => log.set_refused(None),
            Err(Attempt::Refused(refusal)) => log.set_refused(Some(refusal.clone())),
            Err(Attempt::Retry(_) | Attempt::Fail(_)) => {}
        }
        if let Err(error) = outcome {
            let error = match error {
                Attempt::Retry(reason) | Attempt::Refused(reason) => reason,
                Attempt::Fail(error) => error.to_string(),
            };
            tracing::debug!("schema registry: tailing {SCHEMAS_TOPIC} at {start}: {error}");
            log.runtime
                .sleep_until(log.runtime.now() + TAIL_BACKOFF)
                .await;
        }
        if initial_end.is_some_and(|end| log.applied() >= end) {
            log.mark_caught_up();
        }
    }
}

/// Marks the topic ready if it exists (the tail's look; it never creates it).
async fn probe_topic<R: Runtime, S: StorageDriver>(
    log: &BrokerSchemaLog<R, S>,
) -> Result<(), Attempt> {
    let metadata = ApiRequest::Metadata(MetadataRequest {
        topics: Some(vec![TopicRef::Name(SCHEMAS_TOPIC.to_owned())]),
        allow_auto_topic_creation: false,
        include_cluster_authorized_operations: false,
        include_topic_authorized_operations: false,
    });
    let answer = log
        .router
        .local()
        .call(metadata)
        .await
        .map_err(|_| closed())?;
    let ApiResponse::Metadata(answer) = answer else {
        return Err(unexpected("Metadata"));
    };
    if answer.topics.iter().any(|t| t.error == ErrorCode::NONE) {
        log.topic_ready.store(true, Ordering::Release);
        return Ok(());
    }
    if let Some(topic) = answer.topics.iter().find(|t| denied(t.error)) {
        log.check_as(topic.error, "Metadata _schemas")?;
    }
    Err(Attempt::Retry("no _schemas yet".to_owned()))
}

impl<R: Runtime, S: StorageDriver> SchemaLog for BrokerSchemaLog<R, S> {
    fn store(&self) -> &RwLock<Store> {
        &self.store
    }

    async fn caught_up(&self) -> Result<(), RegistryError> {
        if self.caught_up.load(Ordering::Acquire) {
            return Ok(());
        }
        self.want();
        let deadline = self.runtime.now() + APPLY_TIMEOUT;
        loop {
            let changed = self.applied_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.caught_up.load(Ordering::Acquire) {
                return Ok(());
            }
            if let Some(refusal) = self.refused() {
                return Err(RegistryError::Store(format!(
                    "reading {SCHEMAS_TOPIC}: {refusal}"
                )));
            }
            if self.runtime.now() >= deadline {
                return Err(RegistryError::Timeout(format!(
                    "replaying {SCHEMAS_TOPIC} (applied up to {})",
                    self.applied()
                )));
            }
            tokio::select! {
                biased;
                () = changed => {}
                () = self.runtime.sleep_until(deadline) => {}
            }
        }
    }

    async fn write<T, F>(&self, plan: F) -> Result<T, RegistryError>
    where
        T: Send + 'static,
        F: Fn(&Store) -> Result<Planned<T>, RegistryError> + Send + Sync + 'static,
    {
        self.want();
        // A write that changes nothing on the caught-up store (registering a schema the
        // subject already has: every serializer's first call) is answered from it, without
        // a transaction: what it reports is committed. Anything else goes through the log.
        if self.caught_up.load(Ordering::Acquire) {
            let store = self
                .store
                .read()
                .map_err(|_| RegistryError::Store("poisoned".into()))?;
            if let Ok(planned) = plan(&store) {
                if planned.records.is_empty() {
                    return Ok(planned.answer);
                }
            }
        }
        let _writer = self.writer.lock().await;
        let mut attempt = 1;
        loop {
            match self.attempt(&plan).await {
                Ok(answer) => return Ok(answer),
                Err(Attempt::Fail(error)) => return Err(error),
                Err(Attempt::Refused(refusal)) => return Err(RegistryError::Store(refusal)),
                Err(Attempt::Retry(reason)) if attempt >= WRITE_ATTEMPTS_MAX => {
                    return Err(RegistryError::Store(format!(
                        "{SCHEMAS_TOPIC} write failed after {attempt} attempts: {reason}"
                    )));
                }
                Err(Attempt::Retry(reason)) => {
                    tracing::debug!("schema registry write attempt {attempt}: {reason}");
                    self.router.backoff(attempt).await;
                    attempt += 1;
                }
            }
        }
    }
}
