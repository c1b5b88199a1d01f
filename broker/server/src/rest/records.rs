//! Producing over HTTP: v3 `POST /v3/clusters/{id}/topics/{topic}/records` (one JSON
//! record, or many concatenated ones streamed in one request, each answered with its own
//! result in order) and v2 `POST /topics/{topic}` with the embedded formats.
//!
//! Records go through the gateway's produce path ([`send_batch`], [`finish_produce`]):
//! acks=all, murmur2 of the key when no partition is given (round robin for keyless
//! records), the partition's leader found and re-tried as for a WebSocket session.
//! Records of one chunk of the request body are grouped per partition into one batch
//! (in request order), so a batched request costs one produce per partition.
//!
//! Invariants:
//! - Results are written in the order of the records in the request, one per record; a
//!   record that cannot be converted gets its own error result and does not stop the others.
//! - Batches of one request are sent in request order, so records of one key keep it.
//! - Memory per request is bounded: the body by `weir.http.max.request.bytes` (sized) or,
//!   streamed, an unparsed record by [`RECORD_BYTES_MAX`]; a v2 request's records by
//!   [`RECORDS_PER_REQUEST_MAX`]; a stream's sent and unanswered chunks by
//!   [`BATCHES_IN_FLIGHT_MAX`] (a stream may go on for as long as the client sends).
//!
//! [`send_batch`]: crate::gateway::ops::send_batch
//! [`finish_produce`]: crate::gateway::ops::finish_produce

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use weir_edge::{Acks, Header, NewRecord, Reply};
use weir_runtime::Runtime;
use weir_wire::records::BatchOptions;

use super::data::{self, Format};
use super::error::VALUE_SCHEMA_MISSING;
use super::error::{RestError, INVALID_OFFSET_OR_PARTITION, KEY_SCHEMA_MISSING};
use super::schemas::{self, SchemaChoice, SubjectStrategy};
use super::{Rest, RECORDS_PER_REQUEST_MAX};
use crate::gateway::ops::{finish_produce, send_batch, topic_meta, SentProduce, TopicMeta};
use crate::gateway::route::{Call, Router};
use crate::storage::StorageDriver;

/// Largest single record object of a streamed request, before it is parsed.
pub const RECORD_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Batches one request may have sent and not yet answered.
pub const BATCHES_IN_FLIGHT_MAX: usize = 256;
/// Body bytes already received that one streamed chunk takes at most.
const COALESCE_BYTES_MAX: usize = 1024 * 1024;
/// Bytes of records grouped into one batch.
const BATCH_BYTES_MAX: usize = 512 * 1024;
/// Content type of v2 answers.
const V2_JSON: &str = "application/vnd.kafka.v2+json";

/// A record ready to send, and what its result reports.
struct Prepared {
    partition: i32,
    record: NewRecord,
    key_format: Format,
    value_format: Format,
}

impl Prepared {
    fn bytes(&self) -> usize {
        let key = self.record.key.as_ref().map_or(0, Vec::len);
        let value = self.record.value.as_ref().map_or(0, Vec::len);
        key + value + 64
    }
}

/// One record's outcome, as both API versions report it.
enum Outcome {
    Written {
        partition: i32,
        offset: i64,
        timestamp: i64,
        key: Option<SizeEntry>,
        value: Option<SizeEntry>,
    },
    Failed(RestError),
}

/// A v3 result's `key`/`value` entry: the format and byte size of a non-null key or value.
#[derive(Debug, Clone, Copy, Serialize)]
struct SizeEntry {
    #[serde(rename = "type")]
    format: &'static str,
    size: usize,
}

impl SizeEntry {
    fn of(format: Format, bytes: Option<&Vec<u8>>) -> Option<SizeEntry> {
        bytes.map(|bytes| SizeEntry {
            format: format.name(),
            size: bytes.len(),
        })
    }
}

/// A streamed v3 result line, written straight from its fields (no JSON tree per record):
/// Confluent's streamed results leave absent keys and values out.
#[derive(Serialize)]
struct WrittenLine<'a> {
    error_code: u32,
    cluster_id: &'a str,
    topic_name: &'a str,
    partition_id: i32,
    offset: i64,
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<SizeEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<SizeEntry>,
}

/// A streamed v3 result line of a refused record.
#[derive(Serialize)]
struct FailedLine<'a> {
    error_code: u32,
    message: &'a str,
}

/// A v3 record object.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct V3Record {
    #[serde(default)]
    partition_id: Option<i32>,
    #[serde(default)]
    headers: Vec<V3Header>,
    #[serde(default)]
    key: Option<V3Data>,
    #[serde(default)]
    value: Option<V3Data>,
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Debug, Deserialize)]
struct V3Header {
    name: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
struct V3Data {
    #[serde(default, rename = "type")]
    format: Option<String>,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    schema_id: Option<u32>,
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    subject_name_strategy: Option<String>,
}

impl V3Data {
    /// The schema fields, if the record names any.
    fn schema_choice(&self) -> Result<Option<SchemaChoice>, RestError> {
        let named = self.schema.is_some()
            || self.schema_id.is_some()
            || self.schema_version.is_some()
            || self.subject.is_some()
            || self.subject_name_strategy.is_some();
        if !named {
            return Ok(None);
        }
        let strategy = self.subject_name_strategy.as_deref();
        Ok(Some(SchemaChoice {
            id: self.schema_id,
            version: self.schema_version,
            subject: self.subject.clone(),
            strategy: strategy.map(SubjectStrategy::parse).transpose()?,
            text: self.schema.clone(),
        }))
    }
}

/// A v3 key or value as record bytes: BINARY/JSON/STRING converted here, the schema
/// formats (named by `type` or by schema fields) through the schema registry.
async fn v3_data<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    topic: &str,
    data: Option<&V3Data>,
    is_key: bool,
) -> Result<(Format, Option<Vec<u8>>), RestError> {
    let what = if is_key { "key" } else { "value" };
    let Some(data) = data else {
        return Ok((Format::Binary, None));
    };
    let format = data.format.as_deref().map(Format::parse).transpose()?;
    let choice = data.schema_choice()?;
    let uses_schema = format.map_or(choice.is_some(), Format::uses_schema);
    if !uses_schema {
        if choice.is_some() {
            let name = format.map_or("JSON", Format::name);
            return Err(RestError::bad_request(format!(
                "{what}: {name} data takes no schema"
            )));
        }
        let format = format.unwrap_or(Format::Json);
        return Ok((format, format.encode(&data.data, what)?));
    }
    let choice = choice.unwrap_or_default();
    let writer = state.schemas.writer(format, topic, is_key, &choice).await?;
    let bytes = schemas::encode(&writer, &data.data, what)?;
    Ok((schemas::format_of(writer.parsed.schema_type), bytes))
}

/// Turn one v3 record object (its JSON text) into a record for `topic`.
async fn prepare_v3<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    topic: &str,
    info: &TopicMeta,
    object: &[u8],
) -> Result<Prepared, RestError> {
    let record: V3Record = serde_json::from_slice(object)
        .map_err(|error| RestError::bad_request(format!("invalid record: {error}")))?;
    let (key_format, key) = v3_data(state, topic, record.key.as_ref(), true).await?;
    let (value_format, value) = v3_data(state, topic, record.value.as_ref(), false).await?;
    let mut headers = Vec::with_capacity(record.headers.len());
    for header in record.headers {
        let value = match header.value {
            Some(text) => Some(data::decode_base64(&text, "header value")?),
            None => None,
        };
        headers.push(Header {
            key: header.name,
            value,
        });
    }
    let timestamp = match record.timestamp {
        Some(text) => Some(data::parse_timestamp(&text).ok_or_else(|| {
            RestError::bad_request(format!("timestamp {text:?} is not ISO 8601"))
        })?),
        None => None,
    };
    let partition = choose_partition(state, topic, info, record.partition_id, key.as_deref())?;
    Ok(Prepared {
        partition,
        record: NewRecord {
            key,
            value,
            headers,
            timestamp,
        },
        key_format,
        value_format,
    })
}

/// The asked partition (checked), else murmur2 of the key, else round robin.
fn choose_partition<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    topic: &str,
    info: &TopicMeta,
    asked: Option<i32>,
    key: Option<&[u8]>,
) -> Result<i32, RestError> {
    match (asked, key) {
        (Some(partition), _) if (0..info.partitions).contains(&partition) => Ok(partition),
        (Some(partition), _) => Err(RestError::partition_not_found(topic, partition)),
        (None, Some(key)) => Ok(weir_wire::murmur2::partition_for_key(key, info.partitions)),
        (None, None) => Ok(state.next_partition(topic, info.partitions)),
    }
}

/// Is the request's content type `wanted` (parameters such as charset ignored)?
fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The topic's metadata, or 404 40401.
async fn target<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    router: &Router<R>,
    topic: &str,
) -> Result<TopicMeta, RestError> {
    match topic_meta(router, &state.shared.meta, topic, false).await {
        Ok(info) => Ok(info),
        Err(error) if error.code == weir_wire::error::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0 => {
            Err(RestError::topic_not_found(topic))
        }
        Err(error) => Err(error.into()),
    }
}

/// Where one record's result comes from.
enum Slot {
    /// Refused before sending.
    Failed(RestError),
    /// Record `index` of batch `batch`.
    Sent {
        batch: usize,
        index: i64,
        timestamp: i64,
        key: Option<SizeEntry>,
        value: Option<SizeEntry>,
    },
}

/// One chunk of a request's records: sent, awaiting answers.
struct SentChunk<R> {
    slots: Vec<Slot>,
    batches: Vec<SentBatch<R>>,
}

type SentBatch<R> = Result<(Call, SentProduce<R>), weir_edge::EdgeError>;

/// Send `prepared` in order: records of one partition share a batch (bounded in bytes and
/// records), batches go out in the order of their first record.
async fn send_chunk<R: Runtime>(
    router: &Arc<Router<R>>,
    topic: &str,
    prepared: Vec<Result<Prepared, RestError>>,
    wall_ms: i64,
) -> SentChunk<R> {
    let mut slots = Vec::with_capacity(prepared.len());
    // Open batch per partition: (batch number, records, bytes).
    let mut open: BTreeMap<i32, usize> = BTreeMap::new();
    let mut groups: Vec<(i32, Vec<NewRecord>, usize)> = Vec::new();
    for item in prepared {
        let record = match item {
            Ok(record) => record,
            Err(error) => {
                slots.push(Slot::Failed(error));
                continue;
            }
        };
        let bytes = record.bytes();
        let batch = match open.get(&record.partition) {
            Some(&batch)
                if groups[batch].2 + bytes <= BATCH_BYTES_MAX
                    && groups[batch].1.len() < weir_edge::BATCH_RECORDS_MAX =>
            {
                batch
            }
            _ => {
                groups.push((record.partition, Vec::new(), 0));
                open.insert(record.partition, groups.len() - 1);
                groups.len() - 1
            }
        };
        let timestamp = record.record.timestamp.unwrap_or(wall_ms);
        let key = SizeEntry::of(record.key_format, record.record.key.as_ref());
        let value = SizeEntry::of(record.value_format, record.record.value.as_ref());
        let group = &mut groups[batch];
        group.2 += bytes;
        let index = i64::try_from(group.1.len()).unwrap_or(i64::MAX);
        group.1.push(record.record);
        slots.push(Slot::Sent {
            batch,
            index,
            timestamp,
            key,
            value,
        });
    }
    let mut batches = Vec::with_capacity(groups.len());
    for (partition, records, _) in groups {
        let options = BatchOptions::default();
        let topic = topic.to_owned();
        let sent = send_batch(
            router,
            topic,
            partition,
            Acks::All,
            options,
            records,
            wall_ms,
        );
        batches.push(sent.await);
    }
    SentChunk { slots, batches }
}

/// Await a chunk's batches and turn them into one outcome per record, in order.
async fn finish_chunk<R: Runtime>(router: &Router<R>, chunk: SentChunk<R>) -> Vec<Outcome> {
    let mut answers: Vec<Result<(i32, i64), RestError>> = Vec::with_capacity(chunk.batches.len());
    for batch in chunk.batches {
        let answer = match batch {
            Ok((call, sent)) => finish_produce(router, call, sent).await,
            Err(error) => Err(error),
        };
        answers.push(match answer {
            Ok(Reply::Produced { partition, offset }) => Ok((partition, offset)),
            Ok(_) => Err(super::unexpected("Produce")),
            Err(error) => Err(error.into()),
        });
    }
    chunk
        .slots
        .into_iter()
        .map(|slot| match slot {
            Slot::Failed(error) => Outcome::Failed(error),
            Slot::Sent {
                batch,
                index,
                timestamp,
                key,
                value,
            } => match answers.get(batch) {
                Some(Ok((partition, base))) => Outcome::Written {
                    partition: *partition,
                    offset: base + index,
                    timestamp,
                    key,
                    value,
                },
                Some(Err(error)) => Outcome::Failed(error.clone()),
                None => Outcome::Failed(super::unexpected("Produce (batch missing)")),
            },
        })
        .collect()
}

/// A v3 result object.
fn v3_result(cluster_id: &str, topic: &str, outcome: Outcome) -> (StatusCode, Value) {
    match outcome {
        Outcome::Written {
            partition,
            offset,
            timestamp,
            key,
            value,
        } => (
            StatusCode::OK,
            json!({
                "error_code": 200,
                "cluster_id": cluster_id,
                "topic_name": topic,
                "partition_id": partition,
                "offset": offset,
                "timestamp": data::iso_timestamp(timestamp),
                "key": key,
                "value": value,
            }),
        ),
        Outcome::Failed(error) => (
            error.status,
            json!({"error_code": error.error_code, "message": error.message}),
        ),
    }
}

/// Split every complete JSON value at the front of `buffer` off as its own bytes, leaving
/// an incomplete tail. The split only checks the syntax (`IgnoredAny` builds nothing);
/// each record is then deserialized straight into its shape by [`prepare_v3`], so a
/// record costs no JSON tree. A syntax error ends the stream: it is returned after the
/// values before it.
fn split_values(buffer: &mut Vec<u8>, at_end: bool) -> (Vec<Bytes>, Option<RestError>) {
    let mut values = Vec::new();
    let mut stream =
        serde_json::Deserializer::from_slice(buffer).into_iter::<serde::de::IgnoredAny>();
    let mut failure = None;
    let mut start = 0;
    loop {
        match stream.next() {
            Some(Ok(_)) => {
                let end = stream.byte_offset();
                values.push(Bytes::copy_from_slice(&buffer[start..end]));
                start = end;
            }
            Some(Err(error)) if error.is_eof() && !at_end => break,
            Some(Err(error)) => {
                let message = format!("invalid JSON record: {error}");
                failure = Some(RestError::bad_request(message));
                break;
            }
            None => break,
        }
    }
    let consumed = stream.byte_offset();
    buffer.drain(..consumed);
    (values, failure)
}

/// `POST /v3/clusters/{cluster_id}/topics/{topic}/records`.
///
/// With a Content-Length and one record object, the answer is that record's result with
/// its own status (Confluent's single form). Otherwise (several objects, or a chunked
/// body) it is the streaming form: status 200 and one result object per record, each on
/// its own line, written as the records are acknowledged, while the client keeps sending.
pub async fn produce_v3<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((cluster_id, topic)): Path<(String, String)>,
    request: Request,
) -> Result<Response, RestError> {
    let found = content_type(request.headers());
    if found != "application/json" {
        return Err(RestError::unsupported_media_type(
            &found,
            "application/json",
        ));
    }
    state.cluster_id(&cluster_id).await?;
    let router = Arc::clone(state.router());
    let info = target(&state, &router, &topic).await?;
    let sized = request.headers().contains_key(header::CONTENT_LENGTH);
    let body = request.into_body();
    if sized {
        let limit = state.platform.request_bytes_max();
        let bytes = axum::body::to_bytes(body, limit)
            .await
            .map_err(|error| too_large(limit, &error))?;
        let mut buffer = bytes.to_vec();
        let (values, failure) = split_values(&mut buffer, true);
        if values.len() == 1 && failure.is_none() {
            let object = values.into_iter().next().unwrap_or_default();
            let prepared = vec![prepare_v3(&state, &topic, &info, &object).await];
            let wall_ms = state.runtime().wall_ms();
            let chunk = send_chunk(&router, &topic, prepared, wall_ms).await;
            let outcome = finish_chunk(&router, chunk).await.into_iter().next();
            let outcome = outcome.unwrap_or(Outcome::Failed(super::unexpected("Produce")));
            let (status, body) = v3_result(&cluster_id, &topic, outcome);
            return Ok((status, Json(body)).into_response());
        }
        if values.is_empty() {
            return Err(failure.unwrap_or_else(|| RestError::bad_request("no record in the body")));
        }
        let rest = Body::empty();
        return Ok(stream_records(
            state, router, cluster_id, topic, info, values, failure, rest,
        ));
    }
    Ok(stream_records(
        state,
        router,
        cluster_id,
        topic,
        info,
        Vec::new(),
        None,
        body,
    ))
}

fn too_large(limit: usize, error: &axum::Error) -> RestError {
    RestError::status(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body too large (at most {limit} bytes): {error}"),
    )
}

/// The streaming form: a reader task parses records as the body arrives and sends each
/// chunk's batches; a writer task awaits them in order and writes the results.
#[allow(clippy::too_many_arguments)]
fn stream_records<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    router: Arc<Router<R>>,
    cluster_id: String,
    topic: String,
    info: TopicMeta,
    first: Vec<Bytes>,
    first_failure: Option<RestError>,
    body: Body,
) -> Response {
    let (chunks_sender, mut chunks) = mpsc::channel::<ChunkItem<R>>(BATCHES_IN_FLIGHT_MAX);
    let (lines_sender, lines) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let runtime = state.runtime().clone();
    let reader_router = Arc::clone(&router);
    let reader_topic = topic.clone();
    runtime.spawn(async move {
        let router = reader_router;
        let topic = reader_topic;
        // No bound on a stream's records: memory is bounded by the chunks in flight.
        let prepared = prepare_all(&state, &topic, &info, first).await;
        if !prepared.is_empty() {
            let chunk = send_chunk(&router, &topic, prepared, state.runtime().wall_ms()).await;
            if chunks_sender.send(ChunkItem::Sent(chunk)).await.is_err() {
                return;
            }
        }
        if let Some(failure) = first_failure {
            let _ = chunks_sender.send(ChunkItem::Failed(failure)).await;
            return;
        }
        let mut stream = body.into_data_stream();
        let mut buffer: Vec<u8> = Vec::new();
        loop {
            // Wait for the next frame, then take every frame already read (up to
            // COALESCE_BYTES_MAX): a client sending faster than the broker answers gets
            // bigger batches instead of one small produce per network read.
            let mut next = stream.next().await;
            let mut at_end = false;
            loop {
                match next {
                    Some(Ok(bytes)) => buffer.extend_from_slice(&bytes),
                    Some(Err(error)) => {
                        let failure = RestError::bad_request(format!("reading the body: {error}"));
                        let _ = chunks_sender.send(ChunkItem::Failed(failure)).await;
                        return;
                    }
                    None => {
                        at_end = true;
                        break;
                    }
                }
                if buffer.len() >= COALESCE_BYTES_MAX {
                    break;
                }
                match stream.next().now_or_never() {
                    Some(more) => next = more,
                    None => break,
                }
            }
            let (values, failure) = split_values(&mut buffer, at_end);
            let prepared = prepare_all(&state, &topic, &info, values).await;
            if !prepared.is_empty() {
                let chunk = send_chunk(&router, &topic, prepared, state.runtime().wall_ms()).await;
                if chunks_sender.send(ChunkItem::Sent(chunk)).await.is_err() {
                    return;
                }
            }
            if let Some(failure) = failure {
                let _ = chunks_sender.send(ChunkItem::Failed(failure)).await;
                return;
            }
            if buffer.len() > RECORD_BYTES_MAX {
                let message = format!("a record is larger than {RECORD_BYTES_MAX} bytes");
                let failure = RestError::unprocessable(super::error::RECORD_TOO_LARGE, message);
                let _ = chunks_sender.send(ChunkItem::Failed(failure)).await;
                return;
            }
            if at_end {
                if !buffer.iter().all(u8::is_ascii_whitespace) {
                    let failure = RestError::bad_request("the body ends inside a record");
                    let _ = chunks_sender.send(ChunkItem::Failed(failure)).await;
                }
                return;
            }
        }
    });
    runtime.spawn(async move {
        while let Some(item) = chunks.recv().await {
            let outcomes = match item {
                ChunkItem::Sent(chunk) => finish_chunk(&router, chunk).await,
                ChunkItem::Failed(error) => vec![Outcome::Failed(error)],
            };
            // One body frame per chunk of records, not per record: a frame is a write.
            let mut text = Vec::with_capacity(outcomes.len() * 200);
            for outcome in outcomes {
                let written = match &outcome {
                    Outcome::Written {
                        partition,
                        offset,
                        timestamp,
                        key,
                        value,
                    } => serde_json::to_writer(
                        &mut text,
                        &WrittenLine {
                            error_code: 200,
                            cluster_id: &cluster_id,
                            topic_name: &topic,
                            partition_id: *partition,
                            offset: *offset,
                            timestamp: data::iso_timestamp(*timestamp),
                            key: *key,
                            value: *value,
                        },
                    ),
                    Outcome::Failed(error) => serde_json::to_writer(
                        &mut text,
                        &FailedLine {
                            error_code: error.error_code,
                            message: &error.message,
                        },
                    ),
                };
                if written.is_err() {
                    return;
                }
                text.push(b'\n');
            }
            if lines_sender.send(Ok(Bytes::from(text))).await.is_err() {
                return;
            }
        }
    });
    let stream = tokio_stream_from(lines);
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Each record object of a chunk prepared, in order.
async fn prepare_all<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    topic: &str,
    info: &TopicMeta,
    values: Vec<Bytes>,
) -> Vec<Result<Prepared, RestError>> {
    let mut prepared = Vec::with_capacity(values.len());
    for object in &values {
        prepared.push(prepare_v3(state, topic, info, object).await);
    }
    prepared
}

/// What the reader hands the writer.
enum ChunkItem<R> {
    Sent(SentChunk<R>),
    Failed(RestError),
}

/// A receiver as a stream of body frames.
fn tokio_stream_from(
    mut receiver: mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures_util::stream::poll_fn(move |context| receiver.poll_recv(context))
}

/// A v2 record of `{"records": [...]}`.
#[derive(Debug, Deserialize)]
struct V2Record {
    #[serde(default)]
    key: Value,
    #[serde(default)]
    value: Value,
    #[serde(default)]
    partition: Option<i32>,
}

#[derive(Debug, Deserialize)]
struct V2Body {
    records: Vec<V2Record>,
    #[serde(default)]
    key_schema: Option<String>,
    #[serde(default)]
    key_schema_id: Option<u32>,
    #[serde(default)]
    value_schema: Option<String>,
    #[serde(default)]
    value_schema_id: Option<u32>,
}

/// A v2 request's key or value schema (`*_schema_id` or `*_schema` text, registered under
/// `<topic>-key` / `<topic>-value`), when its format uses one and a record needs it.
async fn v2_writer<R: Runtime, S: StorageDriver>(
    state: &Rest<R, S>,
    format: Format,
    topic: &str,
    is_key: bool,
    (text, id): (Option<String>, Option<u32>),
    needed: bool,
) -> Result<Option<schemas::Writer>, RestError> {
    if !format.uses_schema() {
        return Ok(None);
    }
    if text.is_none() && id.is_none() {
        if !needed {
            return Ok(None);
        }
        let (code, field) = if is_key {
            (KEY_SCHEMA_MISSING, "key")
        } else {
            (VALUE_SCHEMA_MISSING, "value")
        };
        let message = format!(
            "Request includes {field}s and uses a format that requires schemas, but does not \
             include the {field}_schema or {field}_schema_id fields"
        );
        return Err(RestError::unprocessable(code, message));
    }
    let choice = SchemaChoice {
        id,
        text,
        ..SchemaChoice::default()
    };
    let writer = state
        .schemas
        .writer(Some(format), topic, is_key, &choice)
        .await?;
    Ok(Some(writer))
}

/// A v2 key or value as record bytes.
fn v2_bytes(
    format: Format,
    writer: Option<&schemas::Writer>,
    data: &Value,
    what: &str,
) -> Result<Option<Vec<u8>>, RestError> {
    match writer {
        Some(writer) => schemas::encode(writer, data, what),
        None => format.encode(data, what),
    }
}

/// The embedded format of a v2 content type.
fn v2_format(headers: &HeaderMap) -> Result<Format, RestError> {
    let found = content_type(headers);
    match found.as_str() {
        "application/vnd.kafka.json.v2+json" | "application/json" => Ok(Format::Json),
        "application/vnd.kafka.binary.v2+json" => Ok(Format::Binary),
        "application/vnd.kafka.avro.v2+json" => Ok(Format::Avro),
        "application/vnd.kafka.protobuf.v2+json" => Ok(Format::Protobuf),
        "application/vnd.kafka.jsonschema.v2+json" => Ok(Format::JsonSchema),
        _ => Err(RestError::unsupported_media_type(
            &found,
            "application/vnd.kafka.{json,binary,avro,protobuf,jsonschema}.v2+json",
        )),
    }
}

fn v2_json(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(V2_JSON));
    response
}

async fn produce_v2_inner<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    topic: String,
    fixed_partition: Option<i32>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, RestError> {
    let format = v2_format(&headers)?;
    let body: V2Body = super::v3::json_body(&body)?;
    if body.records.len() > RECORDS_PER_REQUEST_MAX {
        let message = format!("at most {RECORDS_PER_REQUEST_MAX} records per request");
        return Err(RestError::unprocessable(
            super::error::RECORD_TOO_LARGE,
            message,
        ));
    }
    let router = Arc::clone(state.router());
    let info = target(&state, &router, &topic).await?;
    if let Some(partition) = fixed_partition {
        if !(0..info.partitions).contains(&partition) {
            return Err(RestError::partition_not_found(&topic, partition));
        }
    }
    let keyed = body.records.iter().any(|record| !record.key.is_null());
    let valued = body.records.iter().any(|record| !record.value.is_null());
    let key_schema = (body.key_schema, body.key_schema_id);
    let key_writer = v2_writer(&state, format, &topic, true, key_schema, keyed).await?;
    let value_schema = (body.value_schema, body.value_schema_id);
    let value_writer = v2_writer(&state, format, &topic, false, value_schema, valued).await?;
    let prepared: Vec<Result<Prepared, RestError>> = body
        .records
        .into_iter()
        .map(|record| {
            let key = v2_bytes(format, key_writer.as_ref(), &record.key, "key")?;
            let value = v2_bytes(format, value_writer.as_ref(), &record.value, "value")?;
            let asked = fixed_partition.or(record.partition);
            let partition = choose_partition(&state, &topic, &info, asked, key.as_deref())
                .map_err(|error| {
                    RestError::unprocessable(INVALID_OFFSET_OR_PARTITION, error.message)
                })?;
            Ok(Prepared {
                partition,
                record: NewRecord {
                    key,
                    value,
                    headers: Vec::new(),
                    timestamp: None,
                },
                key_format: format,
                value_format: format,
            })
        })
        .collect();
    // A record that cannot be converted fails the whole request, as Confluent's v2 does.
    if let Some(Err(error)) = prepared.iter().find(|p| p.is_err()) {
        return Err(error.clone());
    }
    let chunk = send_chunk(&router, &topic, prepared, state.runtime().wall_ms()).await;
    let offsets: Vec<Value> = finish_chunk(&router, chunk)
        .await
        .into_iter()
        .map(|outcome| match outcome {
            Outcome::Written {
                partition, offset, ..
            } => {
                json!({"partition": partition, "offset": offset, "error_code": null, "error": null})
            }
            Outcome::Failed(error) => json!({
                "partition": null,
                "offset": null,
                "error_code": error.error_code,
                "error": error.message,
            }),
        })
        .collect();
    let answer = json!({
        "key_schema_id": key_writer.map(|writer| writer.id),
        "value_schema_id": value_writer.map(|writer| writer.id),
        "offsets": offsets,
    });
    Ok(v2_json(StatusCode::OK, answer))
}

/// `POST /topics/{topic}` (v2).
pub async fn produce_v2<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, RestError> {
    let body = body.map_err(body_error)?;
    produce_v2_inner(state, topic, None, headers, body).await
}

/// `POST /topics/{topic}/partitions/{partition}` (v2).
pub async fn produce_v2_partition<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path((topic, partition)): Path<(String, i32)>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, RestError> {
    let body = body.map_err(body_error)?;
    produce_v2_inner(state, topic, Some(partition), headers, body).await
}

/// A body that could not be read: too large (413) or broken (400).
pub fn body_error(rejection: axum::extract::rejection::BytesRejection) -> RestError {
    let status = rejection.status();
    RestError::status(status, rejection.body_text())
}

/// `GET /topics` (v2): topic names.
pub async fn list_topics_v2<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
) -> Result<Response, RestError> {
    let metadata = state.metadata(None).await?;
    let mut names: Vec<String> = metadata
        .topics
        .into_iter()
        .filter(|t| t.error == weir_wire::error::ErrorCode::NONE)
        .filter_map(|t| t.name)
        .collect();
    names.sort();
    Ok(v2_json(StatusCode::OK, json!(names)))
}

/// `GET /topics/{topic}` (v2).
pub async fn get_topic_v2<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path(topic): Path<String>,
) -> Result<Response, RestError> {
    let metadata = state.metadata(Some(vec![topic.clone()])).await?;
    let found = metadata.topics.into_iter().find(|t| {
        t.name.as_deref() == Some(topic.as_str()) && t.error == weir_wire::error::ErrorCode::NONE
    });
    let Some(found) = found else {
        return Err(RestError::topic_not_found(&topic));
    };
    let partitions: Vec<Value> = found
        .partitions
        .iter()
        .map(|p| {
            json!({
                "partition": p.partition,
                "leader": p.leader_id,
                "replicas": p.replica_nodes.iter().map(|broker| json!({
                    "broker": broker,
                    "leader": *broker == p.leader_id,
                    "in_sync": p.isr_nodes.contains(broker),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(v2_json(
        StatusCode::OK,
        json!({"name": topic, "configs": {}, "partitions": partitions}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the streamed body is cut into whole record objects wherever the network split
    // it, whitespace between them is skipped, and a syntax error ends the stream after the
    // records before it.
    #[test]
    fn split_values_cuts_whole_records_across_chunks() {
        let mut buffer = br#"{"value":{"data":"a"}} {"value":{"da"#.to_vec();
        let (values, failure) = split_values(&mut buffer, false);
        assert!(failure.is_none());
        assert_eq!(values.len(), 1);
        assert_eq!(&values[0][..], br#"{"value":{"data":"a"}}"#);
        buffer.extend_from_slice(br#"ta":"b"}}"#);
        buffer.extend_from_slice(b"\n{\"key\":null}\n");
        let (values, failure) = split_values(&mut buffer, true);
        assert!(failure.is_none());
        let texts: Vec<&[u8]> = values.iter().map(|v| v.trim_ascii()).collect();
        assert_eq!(
            texts,
            [&br#"{"value":{"data":"b"}}"#[..], &br#"{"key":null}"#[..]]
        );
        assert!(buffer.iter().all(u8::is_ascii_whitespace));
        let mut broken = br#"{"value":{}} {"value": nope}"#.to_vec();
        let (values, failure) = split_values(&mut broken, false);
        assert_eq!(values.len(), 1);
        let failure = failure.expect("a syntax error ends the stream");
        assert_eq!(failure.status, StatusCode::BAD_REQUEST);
    }

    // Goal: a streamed result line carries what Confluent's does, without null keys.
    #[test]
    fn streamed_result_lines_leave_absent_keys_out() {
        let line = WrittenLine {
            error_code: 200,
            cluster_id: "c",
            topic_name: "t",
            partition_id: 1,
            offset: 7,
            timestamp: data::iso_timestamp(0),
            key: None,
            value: SizeEntry::of(Format::Binary, Some(&vec![0; 5])),
        };
        let value: Value = serde_json::to_value(&line).expect("serializes");
        assert_eq!(
            value,
            json!({"error_code": 200, "cluster_id": "c", "topic_name": "t", "partition_id": 1,
                   "offset": 7, "timestamp": "1970-01-01T00:00:00.000Z",
                   "value": {"type": "BINARY", "size": 5}})
        );
    }
}
