//! v2 consumer instances: `POST /consumers/{group}` creates one; it subscribes, polls
//! records, seeks, commits and is deleted over HTTP, or expires when left idle.
//!
//! An instance is the gateway's KIP-848 [`Consumer`] (ConsumerGroupHeartbeat membership
//! with the broker's server-side assignment, positions, fetches resolved from storage):
//! a real group member, so HTTP consumers and Kafka clients with `group.protocol=consumer`
//! in one group split its partitions and rebalance as usual. Revoked partitions' positions
//! are committed before the revocation is acknowledged (the gateway consumer's rule), so
//! the next owner starts after what this instance delivered.
//!
//! Invariants:
//! - At most [`INSTANCES_MAX`] instances exist; one poll per instance runs at a time.
//! - An instance unused for the context's `instance_timeout` is removed and leaves its
//!   group (checked every [`EXPIRY_CHECK_INTERVAL`] at most); afterwards every request for
//!   it answers 404 40403.
//! - v2 commits name the last consumed offset; the group stores the next one (offset + 1),
//!   as Confluent's proxy does, so a Kafka client resumes after the committed record.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use weir_edge::{Isolation, Position, Reply, StartFrom};
use weir_runtime::Runtime;
use weir_wire::error::ErrorCode;

use super::data::{self, Format};
use super::error::{
    RestError, CONSUMER_ALREADY_EXISTS, CONSUMER_FORMAT_MISMATCH, INVALID_CONSUMER_CONFIG,
    INVALID_OFFSET_OR_PARTITION,
};
use super::records::body_error;
use super::{Rest, RestShared};
use crate::gateway::consumer::{self as gateway_consumer, Consumer};
use crate::gateway::lock;
use crate::gateway::ops as gateway_ops;
use crate::gateway::route::Router;
use crate::http::{BrokerSession, PlatformState};
use crate::storage::StorageDriver;

/// Consumer instances one REST listener keeps.
pub const INSTANCES_MAX: usize = 1024;
/// Longest pause between two expiry checks.
pub const EXPIRY_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Default wait of a records request (Confluent's `consumer.request.timeout.ms`).
const RECORDS_TIMEOUT_DEFAULT_MS: u32 = 1_000;
/// Content type of v2 answers.
const V2_JSON: &str = "application/vnd.kafka.v2+json";

/// An instance's key: (group, name).
type InstanceKey = (String, String);

/// Every instance, by (group, name).
pub struct Instances<R: Runtime> {
    map: Mutex<BTreeMap<InstanceKey, Arc<Instance<R>>>>,
    next: AtomicU32,
}

impl<R: Runtime> Default for Instances<R> {
    fn default() -> Self {
        Instances {
            map: Mutex::new(BTreeMap::new()),
            next: AtomicU32::new(0),
        }
    }
}

/// One consumer instance.
pub struct Instance<R: Runtime> {
    /// The broker session of the principal that created it: its heartbeats, fetches and
    /// commits act as that principal, and only that principal may use it.
    session: Arc<BrokerSession<R>>,
    group: String,
    name: String,
    format: Format,
    from: StartFrom,
    auto_commit: bool,
    /// The membership once subscribed, or the manual assignment.
    consumer: Mutex<Option<Arc<Consumer>>>,
    /// How the instance consumes now (what `consumer` is).
    mode: Mutex<Mode>,
    /// When the instance was last used (runtime time).
    last_used: Mutex<Duration>,
    /// One poll (and commit) at a time.
    polling: tokio::sync::Mutex<()>,
}

/// How an instance consumes: Kafka's subscribe(topics), subscribe(pattern) and assign()
/// are mutually exclusive until an unsubscribe.
#[derive(Debug, Clone, Default)]
enum Mode {
    #[default]
    Idle,
    Topics,
    /// The pattern (anchored), and when the topics it matched were last listed.
    Pattern {
        regex: regex::Regex,
        listed: Duration,
    },
    Manual,
}

impl<R: Runtime> Instance<R> {
    fn consumer(&self) -> Option<Arc<Consumer>> {
        lock(&self.consumer).clone()
    }

    fn router(&self) -> &Arc<Router<R>> {
        self.session.router()
    }
}

fn v2_json(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(V2_JSON));
    response
}

/// The caller's instance, touched (its idle clock restarts), or 404 40403 (also when it
/// belongs to another principal).
fn instance<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    group: &str,
    name: &str,
) -> Result<Arc<Instance<R>>, RestError> {
    let key = (group.to_owned(), name.to_owned());
    let found = lock(&state.shared.consumers.map).get(&key).cloned();
    let found = found
        .filter(|i| i.session.principal() == &state.caller.principal)
        .ok_or_else(RestError::instance_not_found)?;
    *lock(&found.last_used) = state.runtime().now();
    Ok(found)
}

#[derive(Debug, Deserialize, Default)]
struct CreateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default, rename = "auto.offset.reset")]
    auto_offset_reset: Option<String>,
    #[serde(default, rename = "auto.commit.enable")]
    auto_commit_enable: Option<String>,
}

fn json_or_empty<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, RestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    super::v3::json_body(body)
}

/// `POST /consumers/{group}`.
pub async fn create<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path(group): Path<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, RestError> {
    let body: CreateBody = json_or_empty(&body.map_err(body_error)?)?;
    let format = match body
        .format
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("binary") => Format::Binary,
        Some("json") => Format::Json,
        Some("avro") => Format::Avro,
        Some("protobuf") => Format::Protobuf,
        Some("jsonschema") => Format::JsonSchema,
        Some(other) => {
            let message =
                format!("format {other:?}: use binary, json, avro, protobuf or jsonschema");
            return Err(RestError::unprocessable(INVALID_CONSUMER_CONFIG, message));
        }
    };
    state.schemas.check_on(format)?;
    let from = match body.auto_offset_reset.as_deref() {
        None | Some("latest") => StartFrom::Latest,
        Some("earliest" | "smallest") => StartFrom::Earliest,
        Some(other) => {
            let message = format!("auto.offset.reset {other:?}: use earliest or latest");
            return Err(RestError::unprocessable(INVALID_CONSUMER_CONFIG, message));
        }
    };
    let auto_commit = match body.auto_commit_enable.as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            let message = format!("auto.commit.enable {other:?}: use true or false");
            return Err(RestError::unprocessable(INVALID_CONSUMER_CONFIG, message));
        }
    };
    let number = state.shared.consumers.next.fetch_add(1, Ordering::Relaxed);
    let name = body
        .name
        .unwrap_or_else(|| format!("rest-consumer-{number}"));
    if name.is_empty() || name.len() > 255 || name.contains('/') {
        let message = "instance names are 1 to 255 characters without '/'";
        return Err(RestError::unprocessable(INVALID_CONSUMER_CONFIG, message));
    }
    let instance = Arc::new(Instance {
        session: Arc::clone(state.caller.session()),
        group: group.clone(),
        name: name.clone(),
        format,
        from,
        auto_commit,
        consumer: Mutex::new(None),
        mode: Mutex::new(Mode::Idle),
        last_used: Mutex::new(state.runtime().now()),
        polling: tokio::sync::Mutex::new(()),
    });
    {
        let mut map = lock(&state.shared.consumers.map);
        let key = (group.clone(), name.clone());
        if map.contains_key(&key) {
            let message = "Consumer with specified consumer ID already exists in the specified \
                           consumer group.";
            return Err(RestError::new(
                StatusCode::CONFLICT,
                CONSUMER_ALREADY_EXISTS,
                message,
            ));
        }
        if map.len() >= INSTANCES_MAX {
            let message = format!("at most {INSTANCES_MAX} consumer instances");
            return Err(RestError::status(StatusCode::TOO_MANY_REQUESTS, message));
        }
        map.insert(key, instance);
    }
    if !state.shared.expiry_started.swap(true, Ordering::AcqRel) {
        let expiry = expire_loop(Arc::clone(&state.platform), Arc::clone(&state.shared));
        state.runtime().spawn(expiry);
    }
    let base_uri = format!("{}/consumers/{group}/instances/{name}", state.base.clone());
    Ok(v2_json(
        StatusCode::OK,
        json!({"instance_id": name, "base_uri": base_uri}),
    ))
}

/// Close an instance's membership (it leaves its group).
async fn close<R: Runtime>(instance: &Instance<R>) {
    *lock(&instance.mode) = Mode::Idle;
    let consumer = lock(&instance.consumer).take();
    if let Some(consumer) = consumer {
        consumer.close(instance.router()).await;
    }
}

/// `DELETE /consumers/{group}/instances/{instance}`.
pub async fn delete<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((group, name)): Path<(String, String)>,
) -> Result<StatusCode, RestError> {
    let removed = instance(&state, &group, &name)?;
    lock(&state.shared.consumers.map).remove(&(group, name));
    close(&removed).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove instances idle longer than the timeout, until the node loop stops.
pub async fn expire_loop<R: Runtime, S: StorageDriver>(
    platform: PlatformState<R, S>,
    shared: Arc<RestShared<R>>,
) {
    let timeout = shared.instance_timeout;
    let interval = (timeout / 4).clamp(Duration::from_millis(50), EXPIRY_CHECK_INTERVAL);
    let runtime = platform.runtime().clone();
    while !platform.node().is_closed() {
        runtime.sleep_until(runtime.now() + interval).await;
        let now = runtime.now();
        let expired: Vec<Arc<Instance<R>>> = {
            let mut map = lock(&shared.consumers.map);
            let keys: Vec<(String, String)> = map
                .iter()
                .filter(|(_, i)| now.saturating_sub(*lock(&i.last_used)) >= timeout)
                .map(|(key, _)| key.clone())
                .collect();
            keys.iter().filter_map(|key| map.remove(key)).collect()
        };
        for instance in expired {
            tracing::info!(
                group = instance.group,
                "rest proxy: consumer instance {} expired",
                instance.name
            );
            close(&instance).await;
        }
    }
}

#[derive(Debug, Deserialize, Default)]
struct SubscribeBody {
    #[serde(default)]
    topics: Option<Vec<String>>,
    #[serde(default)]
    topic_pattern: Option<String>,
}

/// How often a pattern subscription lists the topics again (on polls), so topics created
/// later that match it are consumed too (the Java consumer's `metadata.max.age.ms` role).
pub const PATTERN_RELIST_INTERVAL: Duration = Duration::from_secs(5);

/// The refusal of a second way of consuming before an unsubscribe (Kafka's
/// IllegalStateException).
fn exclusive() -> RestError {
    RestError::new(
        StatusCode::CONFLICT,
        40903,
        "Subscription to topics, partitions and pattern are mutually exclusive.",
    )
}

/// `POST .../subscription` with `{"topics": [...]}` or `{"topic_pattern": "..."}`: (re)join
/// the group for these topics, or for every non-internal topic the pattern matches whole
/// (Java's regex syntax where it agrees with Rust's `regex`; listed again every
/// [`PATTERN_RELIST_INTERVAL`] on polls).
pub async fn subscribe<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((group, name)): Path<(String, String)>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<StatusCode, RestError> {
    let instance = instance(&state, &group, &name)?;
    let body: SubscribeBody = super::v3::json_body(&body.map_err(body_error)?)?;
    if matches!(*lock(&instance.mode), Mode::Manual) {
        return Err(exclusive());
    }
    if let Some(pattern) = body.topic_pattern.filter(|p| !p.is_empty()) {
        if body.topics.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(exclusive());
        }
        let regex = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|error| {
            let message = format!("topic_pattern {pattern:?} is not a valid pattern: {error}");
            RestError::unprocessable(INVALID_CONSUMER_CONFIG, message)
        })?;
        let topics = matching_topics(&state, &instance, &regex).await?;
        let listed = state.runtime().now();
        join(&state, &group, &instance, topics).await;
        *lock(&instance.mode) = Mode::Pattern { regex, listed };
        return Ok(StatusCode::NO_CONTENT);
    }
    let topics = body.topics.unwrap_or_default();
    if topics.is_empty() || topics.iter().any(String::is_empty) {
        let message = "A list (of Topics type) or a topic_pattern must be specified.";
        return Err(RestError::unprocessable(INVALID_CONSUMER_CONFIG, message));
    }
    join(&state, &group, &instance, topics).await;
    *lock(&instance.mode) = Mode::Topics;
    Ok(StatusCode::NO_CONTENT)
}

/// The non-internal topics the caller may see whose whole name `regex` matches, sorted.
async fn matching_topics<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    instance: &Instance<R>,
    regex: &regex::Regex,
) -> Result<Vec<String>, RestError> {
    let found =
        gateway_ops::refresh_metadata(instance.router(), &state.shared.meta, None, false).await?;
    let mut topics: Vec<String> = found
        .into_iter()
        .filter(|(name, error, _, internal)| {
            *error == ErrorCode::NONE && !internal && regex.is_match(name)
        })
        .map(|(name, ..)| name)
        .collect();
    topics.sort();
    Ok(topics)
}

/// A pattern subscription lists the topics again once [`PATTERN_RELIST_INTERVAL`] has
/// passed, and rejoins when the matching set changed.
async fn relist_pattern<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    group: &str,
    instance: &Instance<R>,
) -> Result<(), RestError> {
    let now = state.runtime().now();
    let regex = match &*lock(&instance.mode) {
        Mode::Pattern { regex, listed } if now >= *listed + PATTERN_RELIST_INTERVAL => {
            regex.clone()
        }
        _ => return Ok(()),
    };
    let topics = matching_topics(state, instance, &regex).await?;
    let current = instance.consumer().map(|c| c.topics().to_vec());
    if current.as_deref() != Some(&topics[..]) {
        tracing::info!(group, ?topics, "rest proxy: pattern subscription changed");
        join(state, group, instance, topics).await;
    }
    *lock(&instance.mode) = Mode::Pattern { regex, listed: now };
    Ok(())
}

/// Leave whatever the instance consumed and join `group` for `topics`.
async fn join<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    group: &str,
    instance: &Instance<R>,
    topics: Vec<String>,
) {
    let group = group.to_owned();
    close(instance).await;
    let router = Arc::clone(instance.router());
    let handle = state.shared.consumers.next.fetch_add(1, Ordering::Relaxed);
    let consumer = Arc::new(
        Consumer::new(
            handle,
            Some(group),
            topics,
            instance.from,
            Isolation::ReadUncommitted,
            Vec::new(),
        )
        .with_client_id("weir-rest-proxy"),
    );
    *lock(&instance.consumer) = Some(Arc::clone(&consumer));
    let heartbeats = gateway_consumer::heartbeat_loop(
        state.runtime().clone(),
        consumer,
        router,
        state.shared.meta.clone(),
    );
    state.runtime().spawn(heartbeats);
}

/// `GET .../subscription`.
pub async fn subscription<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((group, name)): Path<(String, String)>,
) -> Result<Response, RestError> {
    let instance = instance(&state, &group, &name)?;
    let topics = instance
        .consumer()
        .map(|c| c.topics().to_vec())
        .unwrap_or_default();
    Ok(v2_json(StatusCode::OK, json!({"topics": topics})))
}

/// `DELETE .../subscription`: leave the group, keep the instance.
pub async fn unsubscribe<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((group, name)): Path<(String, String)>,
) -> Result<StatusCode, RestError> {
    let instance = instance(&state, &group, &name)?;
    close(&instance).await;
    Ok(StatusCode::NO_CONTENT)
}

fn partition_list(partitions: Vec<(String, i32)>) -> Vec<Value> {
    partitions
        .into_iter()
        .map(|(topic, partition)| json!({"topic": topic, "partition": partition}))
        .collect()
}

/// `POST .../assignments` with `{"partitions": [{topic, partition}]}`: consume exactly
/// these partitions without joining the group (Kafka's `assign()`); positions start from
/// the group's committed offsets, else `auto.offset.reset`. An empty list unassigns.
pub async fn assign<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((group, name)): Path<(String, String)>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<StatusCode, RestError> {
    let instance = instance(&state, &group, &name)?;
    let body: PartitionsBody = super::v3::json_body(&body.map_err(body_error)?)?;
    if matches!(*lock(&instance.mode), Mode::Topics | Mode::Pattern { .. }) {
        return Err(exclusive());
    }
    let mut partitions = Vec::with_capacity(body.partitions.len());
    for entry in body.partitions {
        let meta = &state.shared.meta;
        let found = gateway_ops::topic_meta(instance.router(), meta, &entry.topic, false).await;
        let info = match found {
            Ok(info) => info,
            Err(error) if error.code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0 => {
                return Err(RestError::topic_not_found(&entry.topic));
            }
            Err(error) => return Err(error.into()),
        };
        if !(0..info.partitions).contains(&entry.partition) {
            return Err(RestError::partition_not_found(
                &entry.topic,
                entry.partition,
            ));
        }
        partitions.push((entry.topic, entry.partition));
    }
    partitions.sort();
    partitions.dedup();
    close(&instance).await;
    if partitions.is_empty() {
        return Ok(StatusCode::NO_CONTENT);
    }
    let handle = state.shared.consumers.next.fetch_add(1, Ordering::Relaxed);
    let consumer = Consumer::manual(
        handle,
        Some(group),
        partitions,
        instance.from,
        Isolation::ReadUncommitted,
    );
    *lock(&instance.consumer) = Some(Arc::new(consumer));
    *lock(&instance.mode) = Mode::Manual;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET .../assignments`: the partitions the group gave this instance.
pub async fn assignments<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((group, name)): Path<(String, String)>,
) -> Result<Response, RestError> {
    let instance = instance(&state, &group, &name)?;
    let owned = instance
        .consumer()
        .map(|c| c.assignment())
        .unwrap_or_default();
    Ok(v2_json(
        StatusCode::OK,
        json!({"partitions": partition_list(owned)}),
    ))
}

#[derive(Debug, Deserialize)]
struct OffsetEntry {
    topic: String,
    partition: i32,
    offset: i64,
}

#[derive(Debug, Deserialize, Default)]
struct OffsetsBody {
    #[serde(default)]
    offsets: Vec<OffsetEntry>,
}

#[derive(Debug, Deserialize)]
struct PartitionEntry {
    topic: String,
    partition: i32,
}

#[derive(Debug, Deserialize, Default)]
struct PartitionsBody {
    #[serde(default)]
    partitions: Vec<PartitionEntry>,
}

fn subscribed<R: Runtime>(instance: &Instance<R>) -> Result<Arc<Consumer>, RestError> {
    instance.consumer().ok_or_else(|| {
        RestError::new(
            StatusCode::CONFLICT,
            40903,
            "Illegal state: the consumer is not subscribed to any topics",
        )
    })
}

/// `POST .../positions` with `{"offsets": [{topic, partition, offset}]}`: seek.
pub async fn seek<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((group, name)): Path<(String, String)>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<StatusCode, RestError> {
    let instance = instance(&state, &group, &name)?;
    let body: OffsetsBody = super::v3::json_body(&body.map_err(body_error)?)?;
    let consumer = subscribed(&instance)?;
    for entry in body.offsets {
        if entry.offset < 0 || !consumer.seek(&entry.topic, entry.partition, entry.offset) {
            let message = format!(
                "cannot seek {}[{}] to {}: not assigned to this instance, or a negative offset",
                entry.topic, entry.partition, entry.offset
            );
            return Err(RestError::unprocessable(
                INVALID_OFFSET_OR_PARTITION,
                message,
            ));
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn seek_to<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    group: String,
    name: String,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
    from: StartFrom,
) -> Result<StatusCode, RestError> {
    let instance = instance(&state, &group, &name)?;
    let body: PartitionsBody = super::v3::json_body(&body.map_err(body_error)?)?;
    let consumer = subscribed(&instance)?;
    let partitions: Vec<(String, i32)> = body
        .partitions
        .into_iter()
        .map(|p| (p.topic, p.partition))
        .collect();
    let router = Arc::clone(instance.router());
    let found =
        gateway_consumer::list_offsets(&router, &partitions, from, Isolation::ReadUncommitted)
            .await?;
    for tp in &partitions {
        let sought = found
            .get(tp)
            .is_some_and(|offset| consumer.seek(&tp.0, tp.1, *offset));
        if !sought {
            let message = format!(
                "cannot seek {}[{}]: not assigned to this instance",
                tp.0, tp.1
            );
            return Err(RestError::unprocessable(
                INVALID_OFFSET_OR_PARTITION,
                message,
            ));
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST .../positions/beginning` with `{"partitions": [...]}`.
pub async fn seek_beginning<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((group, name)): Path<(String, String)>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<StatusCode, RestError> {
    seek_to(state, group, name, body, StartFrom::Earliest).await
}

/// `POST .../positions/end` with `{"partitions": [...]}`.
pub async fn seek_end<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((group, name)): Path<(String, String)>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<StatusCode, RestError> {
    seek_to(state, group, name, body, StartFrom::Latest).await
}

#[derive(Debug, Deserialize)]
pub struct RecordsQuery {
    #[serde(default)]
    timeout: Option<u32>,
    #[serde(default)]
    max_bytes: Option<u64>,
}

/// The format an Accept header asks records in (`None`: any).
fn accepted_format(headers: &HeaderMap) -> Option<Format> {
    let accept = headers
        .get(header::ACCEPT)?
        .to_str()
        .ok()?
        .to_ascii_lowercase();
    let formats = [
        ("vnd.kafka.binary.v2", Format::Binary),
        ("vnd.kafka.json.v2", Format::Json),
        ("vnd.kafka.avro.v2", Format::Avro),
        ("vnd.kafka.protobuf.v2", Format::Protobuf),
        ("vnd.kafka.jsonschema.v2", Format::JsonSchema),
    ];
    formats
        .into_iter()
        .find(|(name, _)| accept.contains(name))
        .map(|(_, format)| format)
}

/// `GET .../records?timeout=ms&max_bytes=n`: one poll of the instance.
pub async fn records<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((group, name)): Path<(String, String)>,
    Query(query): Query<RecordsQuery>,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    let instance = instance(&state, &group, &name)?;
    if let Some(asked) = accepted_format(&headers) {
        if asked != instance.format {
            let message = format!(
                "The requested embedded format {} does not match the consumer's format {}.",
                asked.name().to_ascii_lowercase(),
                instance.format.name().to_ascii_lowercase()
            );
            return Err(RestError::new(
                StatusCode::NOT_ACCEPTABLE,
                CONSUMER_FORMAT_MISMATCH,
                message,
            ));
        }
    }
    relist_pattern(&state, &group, &instance).await?;
    let consumer = subscribed(&instance)?;
    let _polling = instance.polling.lock().await;
    let router = Arc::clone(instance.router());
    let wait_ms = query.timeout.unwrap_or(RECORDS_TIMEOUT_DEFAULT_MS);
    let max_bytes = query
        .max_bytes
        .map_or(gateway_consumer::POLL_BYTES_MAX, |n| {
            u32::try_from(n).unwrap_or(u32::MAX)
        });
    let polled = gateway_consumer::poll(
        state.runtime(),
        state.platform.storage(),
        state.platform.remote(),
        &consumer,
        &router,
        wait_ms,
        max_bytes,
    )
    .await?;
    let Reply::Records(mut records) = polled else {
        return Err(super::unexpected("poll"));
    };
    if let Some(limit) = query.max_bytes {
        bound_bytes(&consumer, &mut records, limit);
    }
    let format = instance.format;
    let mut decoded = Vec::with_capacity(records.len());
    for record in &records {
        decoded.push(if format.uses_schema() {
            let key = state.schemas.decode(format, record.key.as_deref()).await;
            let value = state.schemas.decode(format, record.value.as_deref()).await;
            let place = |error: RestError| {
                let message = format!(
                    "{} (topic {}, partition {}, offset {})",
                    error.message, record.topic, record.partition, record.offset
                );
                RestError::new(error.status, error.error_code, message)
            };
            (key.map_err(place)?, value.map_err(place)?)
        } else {
            (
                format.decode(record.key.as_deref()),
                format.decode(record.value.as_deref()),
            )
        });
    }
    // Committed only once every record decoded: a poll that fails commits nothing.
    if instance.auto_commit && !records.is_empty() {
        let positions = consumer.positions();
        gateway_consumer::client_commit(&consumer, &router, positions).await?;
    }
    *lock(&instance.last_used) = state.runtime().now();
    let records: Vec<Value> = records
        .into_iter()
        .zip(decoded)
        .map(|(record, (key, value))| {
            json!({
                "topic": record.topic,
                "key": key,
                "value": value,
                "partition": record.partition,
                "offset": record.offset,
                "timestamp": record.timestamp,
                "headers": record.headers.iter().map(|h| json!({
                    "key": h.key,
                    "value": h.value.as_deref().map(data::encode_base64),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let content_type = match format {
        Format::Json => "application/vnd.kafka.json.v2+json",
        Format::Avro => "application/vnd.kafka.avro.v2+json",
        Format::Protobuf => "application/vnd.kafka.protobuf.v2+json",
        Format::JsonSchema => "application/vnd.kafka.jsonschema.v2+json",
        Format::Binary | Format::String => "application/vnd.kafka.binary.v2+json",
    };
    let mut response = Json(Value::Array(records)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

/// Confluent's `max_bytes`: keep the records whose keys and values (unencoded) fit in
/// `limit` bytes together, at least one; the others go back to the consumer (its position
/// moves back to the first record not kept, per partition), so the next poll returns them.
fn bound_bytes(consumer: &Consumer, records: &mut Vec<weir_edge::Record>, limit: u64) {
    let size = |r: &weir_edge::Record| {
        let key = r.key.as_ref().map_or(0, |k| k.len());
        let value = r.value.as_ref().map_or(0, |v| v.len());
        u64::try_from(key + value).unwrap_or(u64::MAX)
    };
    let mut total = 0u64;
    let mut kept = 0;
    for record in records.iter() {
        total = total.saturating_add(size(record));
        if kept > 0 && total > limit {
            break;
        }
        kept += 1;
    }
    // (first, last) offset not kept, per partition.
    let mut returned: BTreeMap<(String, i32), (i64, i64)> = BTreeMap::new();
    for record in records.drain(kept..) {
        let place = (record.topic.clone(), record.partition);
        let entry = returned
            .entry(place)
            .or_insert((record.offset, record.offset));
        entry.0 = entry.0.min(record.offset);
        entry.1 = entry.1.max(record.offset);
    }
    for ((topic, partition), (first, last)) in returned {
        consumer.rewind(&topic, partition, first, last);
    }
}

/// `POST .../offsets`: commit the listed offsets (each the last consumed record's), or,
/// with an empty body, everything this instance has delivered.
pub async fn commit<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((group, name)): Path<(String, String)>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<StatusCode, RestError> {
    let instance = instance(&state, &group, &name)?;
    let body: OffsetsBody = json_or_empty(&body.map_err(body_error)?)?;
    let consumer = subscribed(&instance)?;
    let positions: Vec<Position> = if body.offsets.is_empty() {
        consumer.positions()
    } else {
        let mut positions = Vec::with_capacity(body.offsets.len());
        for entry in body.offsets {
            if entry.offset < 0 {
                let message = format!("offset {} must be >= 0", entry.offset);
                return Err(RestError::unprocessable(
                    INVALID_OFFSET_OR_PARTITION,
                    message,
                ));
            }
            positions.push(Position {
                topic: entry.topic,
                partition: entry.partition,
                offset: entry.offset.saturating_add(1),
            });
        }
        positions
    };
    let router = Arc::clone(instance.router());
    gateway_consumer::client_commit(&consumer, &router, positions).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET .../offsets` with `{"partitions": [...]}`: the group's committed offsets.
pub async fn committed<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((group, name)): Path<(String, String)>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, RestError> {
    let instance = instance(&state, &group, &name)?;
    let body: PartitionsBody = json_or_empty(&body.map_err(body_error)?)?;
    let mut partitions: Vec<(String, i32)> = body
        .partitions
        .into_iter()
        .map(|p| (p.topic, p.partition))
        .collect();
    if partitions.is_empty() {
        partitions = instance
            .consumer()
            .map(|c| c.assignment())
            .unwrap_or_default();
    }
    let router = Arc::clone(instance.router());
    let found = gateway_consumer::committed(&router, &instance.group, &partitions).await?;
    let offsets: Vec<Value> = partitions
        .into_iter()
        .filter_map(|tp| {
            found.get(&tp).map(|offset| {
                json!({"topic": tp.0, "partition": tp.1, "offset": offset, "metadata": ""})
            })
        })
        .collect();
    Ok(v2_json(StatusCode::OK, json!({"offsets": offsets})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(partition: i32, offset: i64, bytes: usize) -> weir_edge::Record {
        weir_edge::Record {
            topic: "t".to_owned(),
            partition,
            offset,
            timestamp: 0,
            key: Some(vec![b'k'; 1]),
            value: Some(vec![b'v'; bytes - 1]),
            headers: Vec::new(),
        }
    }

    fn consumer_at(positions: &[(i32, i64)]) -> Consumer {
        let partitions = positions
            .iter()
            .map(|(p, _)| ("t".to_owned(), *p))
            .collect();
        let consumer = Consumer::manual(
            1,
            None,
            partitions,
            StartFrom::Earliest,
            Isolation::ReadUncommitted,
        );
        for (partition, offset) in positions {
            assert!(consumer.seek("t", *partition, *offset));
        }
        consumer
    }

    fn position(consumer: &Consumer, partition: i32) -> Option<i64> {
        (consumer.positions().into_iter())
            .find(|p| p.partition == partition)
            .map(|p| p.offset)
    }

    // Goal: Confluent's max_bytes: records are kept while their keys and values fit, at
    // least one; the rest go back (each partition's position moves to its first record not
    // kept), and a seek made meanwhile to an earlier offset is not undone. Method: a manual
    // consumer positioned as a poll leaves it, records of 100 bytes each.
    #[test]
    fn max_bytes_keeps_what_fits_and_gives_back_the_rest() {
        let polled = || {
            vec![
                record(0, 5, 100),
                record(0, 6, 100),
                record(1, 2, 100),
                record(0, 7, 100),
            ]
        };
        let consumer = consumer_at(&[(0, 8), (1, 3)]);
        let mut records = polled();
        bound_bytes(&consumer, &mut records, 250);
        let kept: Vec<_> = records.iter().map(|r| (r.partition, r.offset)).collect();
        assert_eq!(kept, vec![(0, 5), (0, 6)]);
        assert_eq!(position(&consumer, 0), Some(7));
        assert_eq!(position(&consumer, 1), Some(2));

        // Less than one record: still one.
        let consumer = consumer_at(&[(0, 8), (1, 3)]);
        let mut records = polled();
        bound_bytes(&consumer, &mut records, 1);
        assert_eq!(records.len(), 1);
        assert_eq!(position(&consumer, 0), Some(6));

        // Everything fits: nothing moves.
        let consumer = consumer_at(&[(0, 8), (1, 3)]);
        let mut records = polled();
        bound_bytes(&consumer, &mut records, 400);
        assert_eq!(records.len(), 4);
        assert_eq!(
            (position(&consumer, 0), position(&consumer, 1)),
            (Some(8), Some(3))
        );

        // A seek to an earlier offset after the poll wins over giving records back.
        let consumer = consumer_at(&[(0, 1), (1, 3)]);
        let mut records = polled();
        bound_bytes(&consumer, &mut records, 100);
        assert_eq!(position(&consumer, 0), Some(1));
        assert_eq!(position(&consumer, 1), Some(2));
    }
}
