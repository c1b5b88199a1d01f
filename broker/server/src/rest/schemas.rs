//! AVRO, PROTOBUF and JSONSCHEMA keys and values: schemas found or registered in the
//! broker's own schema registry, data converted with weir-registry's formats and framed in
//! Confluent's wire format (magic 0, the schema id, Protobuf's message indexes, payload).
//!
//! The proxy reads and writes the registry as its HTTP API does: reads from the in-memory
//! store once it has caught up (`weir_registry::log::{ready, read}`), registrations as the
//! same `ops::register` plan run by the registry's one writer (`SchemaLog::write`), so a
//! schema registered over REST gets the id, version and compatibility check the registry
//! API would give it. With the registry off (`--schema-registry off`) these formats are
//! refused with 422 [`NEEDS_SCHEMA_REGISTRY`].
//!
//! Subjects follow Confluent's strategies: TOPIC_NAME (`<topic>-key` / `<topic>-value`, the
//! default), RECORD_NAME (the schema's record or first message name, or a JSON Schema's
//! `title`) and TOPIC_RECORD_NAME (`<topic>-<record name>`).

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::Value;
use weir_registry::format::{ParsedSchema, SchemaType};
use weir_registry::log::{read, ready};
use weir_registry::ops::{self, SchemaRequest, VersionSpec};
use weir_registry::{wire, RegistryError, SchemaLog};
use weir_runtime::Runtime;

use super::data::Format;
use super::error::{RestError, DATA_DOES_NOT_MATCH_SCHEMA, NEEDS_SCHEMA_REGISTRY};
use crate::registry::BrokerSchemaLog;
use crate::storage::StorageDriver;

/// The broker's schema registry as the proxy sees it (`None`: the registry is off).
pub struct Registry<R: Runtime, S: StorageDriver>(pub Option<Arc<BrokerSchemaLog<R, S>>>);

impl<R: Runtime, S: StorageDriver> Clone for Registry<R, S> {
    fn clone(&self) -> Self {
        Registry(self.0.clone())
    }
}

/// How a subject is named when a request names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectStrategy {
    TopicName,
    RecordName,
    TopicRecordName,
}

impl SubjectStrategy {
    /// Confluent's name (`TOPIC_NAME`, `RECORD_NAME`, `TOPIC_RECORD_NAME`), case-insensitive.
    pub fn parse(name: &str) -> Result<SubjectStrategy, RestError> {
        match name.to_ascii_uppercase().as_str() {
            "TOPIC_NAME" => Ok(SubjectStrategy::TopicName),
            "RECORD_NAME" => Ok(SubjectStrategy::RecordName),
            "TOPIC_RECORD_NAME" => Ok(SubjectStrategy::TopicRecordName),
            other => Err(RestError::bad_request(format!(
                "subject_name_strategy {other:?}: use TOPIC_NAME, RECORD_NAME or TOPIC_RECORD_NAME"
            ))),
        }
    }
}

/// Which schema a key or value is written with, as a request names it.
#[derive(Debug, Clone, Default)]
pub struct SchemaChoice {
    /// `schema_id`: that schema.
    pub id: Option<u32>,
    /// `schema_version`: that version of the subject.
    pub version: Option<u32>,
    /// `subject`: the subject, overriding the strategy.
    pub subject: Option<String>,
    pub strategy: Option<SubjectStrategy>,
    /// `schema`: the schema's text, registered (or found) under the subject.
    pub text: Option<String>,
}

/// A schema to write with: its id and parsed form.
#[derive(Clone)]
pub struct Writer {
    pub id: u32,
    pub parsed: Arc<ParsedSchema>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("id", &self.id).finish()
    }
}

/// The registry's type of a schema format.
pub fn schema_type(format: Format) -> Option<SchemaType> {
    match format {
        Format::Avro => Some(SchemaType::Avro),
        Format::Protobuf => Some(SchemaType::Protobuf),
        Format::JsonSchema => Some(SchemaType::Json),
        Format::Binary | Format::Json | Format::String => None,
    }
}

/// The REST format of a registry schema type.
pub fn format_of(schema_type: SchemaType) -> Format {
    match schema_type {
        SchemaType::Avro => Format::Avro,
        SchemaType::Protobuf => Format::Protobuf,
        SchemaType::Json => Format::JsonSchema,
    }
}

/// 400: a schema the registry could not find or register (Confluent's REST proxy answers
/// registry failures as a bad request); 5xx registry failures keep their status.
fn registry_error(what: &str, error: &RegistryError) -> RestError {
    let message = format!(
        "{what}: {error} (schema registry error {})",
        error.error_code()
    );
    if error.status() >= 500 {
        let status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return RestError::new(status, error.error_code(), message);
    }
    RestError::bad_request(message)
}

/// 422 [`DATA_DOES_NOT_MATCH_SCHEMA`].
fn mismatch(what: &str, id: u32, error: &weir_registry::format::DataError) -> RestError {
    RestError::unprocessable(
        DATA_DOES_NOT_MATCH_SCHEMA,
        format!("Conversion of JSON to the schema failed: {what} (schema id {id}): {error}"),
    )
}

impl<R: Runtime, S: StorageDriver> Registry<R, S> {
    fn log(&self, what: &str) -> Result<&Arc<BrokerSchemaLog<R, S>>, RestError> {
        self.0.as_ref().ok_or_else(|| {
            RestError::unprocessable(
                NEEDS_SCHEMA_REGISTRY,
                format!(
                    "{what} data needs the schema registry, which is not running on this \
                     broker (off, or its address was taken at start-up; weir serve \
                     --schema-registry HOST:PORT runs it)"
                ),
            )
        })
    }

    /// 422 [`NEEDS_SCHEMA_REGISTRY`] when `format` uses schemas and the registry is off.
    pub fn check_on(&self, format: Format) -> Result<(), RestError> {
        if format.uses_schema() {
            self.log(format.name())?;
        }
        Ok(())
    }

    /// The schema a key (`is_key`) or value of `topic` is written with; `format` is the
    /// request's `type` (`None`: whatever type the schema has, AVRO for a schema text).
    pub async fn writer(
        &self,
        format: Option<Format>,
        topic: &str,
        is_key: bool,
        choice: &SchemaChoice,
    ) -> Result<Writer, RestError> {
        let log = self.log(format.map_or("Schema-based", Format::name))?;
        let wanted = match format {
            Some(format) => Some(schema_type(format).ok_or_else(|| {
                RestError::bad_request(format!("{} data takes no schema", format.name()))
            })?),
            None => None,
        };
        let schema_type = wanted.unwrap_or(SchemaType::Avro);
        ready(&**log)
            .await
            .map_err(|error| registry_error("Error reading the schema registry", &error))?;
        let role = if is_key { "key" } else { "value" };
        let found = if let Some(id) = choice.id {
            self.by_id(id).await?
        } else if let Some(text) = &choice.text {
            let parsed = read(&**log, |store| store.parse(schema_type, text, &[]))
                .map_err(|error| registry_error("Invalid schema", &error))?;
            let subject = subject_for(choice, topic, role, Some(&parsed))?;
            weir_registry::api::check_subject(&subject)
                .map_err(|error| registry_error("Invalid subject", &error))?;
            let request = SchemaRequest {
                schema: text.clone(),
                schema_type,
                references: Vec::new(),
                id: None,
                version: None,
            };
            // A schema the subject already has is looked up (as POST /subjects/{subject}
            // does), so records repeating their schema cost no write.
            let known = read(&**log, |store| {
                Ok(ops::lookup(store, &subject, &request, false).ok())
            });
            let id = match known {
                Ok(Some(found)) => found.id,
                _ => {
                    let what = format!("Error when registering the schema under subject {subject}");
                    log.write(move |store| ops::register(store, &subject, &request))
                        .await
                        .map_err(|error| registry_error(&what, &error))?
                }
            };
            self.by_id(id).await?
        } else {
            let subject = subject_for(choice, topic, role, None)?;
            let spec = choice
                .version
                .map_or(VersionSpec::Latest, VersionSpec::Number);
            let id = read(&**log, |store| {
                Ok(ops::find_version(store, &subject, spec, false)?.id)
            })
            .map_err(|error| {
                registry_error(
                    &format!("Error when fetching the schema of subject {subject}"),
                    &error,
                )
            })?;
            self.by_id(id).await?
        };
        if wanted.is_some_and(|wanted| found.parsed.schema_type != wanted) {
            return Err(RestError::bad_request(format!(
                "schema {} is {}, not {}",
                found.id,
                found.parsed.schema_type.name(),
                schema_type.name()
            )));
        }
        Ok(found)
    }

    /// Schema `id` from the store (which has caught up); an id the store does not have is
    /// asked again once the store holds everything committed now (another broker may have
    /// registered it a moment ago).
    async fn by_id(&self, id: u32) -> Result<Writer, RestError> {
        let log = self.log("Schema-based")?;
        let what = format!("Error when fetching schema by id. schema_id = {id}");
        let lookup = || {
            read(&**log, |store| {
                let content = store.content(id).ok_or_else(|| {
                    RegistryError::SchemaNotFound(format!("Schema {id} not found"))
                })?;
                content.parsed.clone().ok_or_else(|| {
                    RegistryError::InvalidSchema(format!("schema {id} no longer parses"))
                })
            })
        };
        let parsed = match lookup() {
            Ok(parsed) => parsed,
            Err(RegistryError::SchemaNotFound(_)) => {
                // Best effort: a failed catch-up leaves the lookup's own answer.
                let _ = log.catch_up_now().await;
                lookup().map_err(|error| registry_error(&what, &error))?
            }
            Err(error) => return Err(registry_error(&what, &error)),
        };
        Ok(Writer { id, parsed })
    }

    /// A framed key or value as JSON, decoded with the schema its id names; `format` is the
    /// consumer's, for the refusal when the registry is off.
    pub async fn decode(&self, format: Format, bytes: Option<&[u8]>) -> Result<Value, RestError> {
        let Some(bytes) = bytes else {
            return Ok(Value::Null);
        };
        let log = self.log(format.name())?;
        ready(&**log)
            .await
            .map_err(|error| registry_error("Error reading the schema registry", &error))?;
        let undecodable = |error: weir_registry::format::DataError| {
            RestError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                super::error::KAFKA_ERROR,
                format!("Error deserializing a {} record: {error}", format.name()),
            )
        };
        let id = wire::schema_id(bytes).map_err(undecodable)?;
        let writer = self.by_id(id).await?;
        let protobuf = writer.parsed.schema_type == SchemaType::Protobuf;
        let framed = wire::unframe(bytes, protobuf).map_err(undecodable)?;
        writer
            .parsed
            .decode_json(&framed.message_indexes, framed.payload)
            .map_err(|error| {
                undecodable(weir_registry::format::DataError(format!(
                    "schema id {id}: {error}"
                )))
            })
    }
}

/// `data` written with `writer`, framed; JSON null is a null key/value.
pub fn encode(writer: &Writer, data: &Value, what: &str) -> Result<Option<Vec<u8>>, RestError> {
    if data.is_null() {
        return Ok(None);
    }
    let encoded = writer
        .parsed
        .encode_json(data, None)
        .map_err(|error| mismatch(what, writer.id, &error))?;
    let indexes = (writer.parsed.schema_type == SchemaType::Protobuf)
        .then_some(encoded.message_indexes.as_slice());
    Ok(Some(wire::frame(writer.id, indexes, &encoded.payload)))
}

/// The subject a key or value's schema lives under.
fn subject_for(
    choice: &SchemaChoice,
    topic: &str,
    role: &str,
    parsed: Option<&ParsedSchema>,
) -> Result<String, RestError> {
    if let Some(subject) = &choice.subject {
        return Ok(subject.clone());
    }
    let record_name = || {
        parsed.and_then(ParsedSchema::record_name).ok_or_else(|| {
            RestError::bad_request(
                "RECORD_NAME and TOPIC_RECORD_NAME need a schema with a record name (or a subject)",
            )
        })
    };
    match choice.strategy.unwrap_or(SubjectStrategy::TopicName) {
        SubjectStrategy::TopicName => Ok(format!("{topic}-{role}")),
        SubjectStrategy::RecordName => record_name(),
        SubjectStrategy::TopicRecordName => Ok(format!("{topic}-{}", record_name()?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: subjects follow Confluent's strategies (TOPIC_NAME by default, RECORD_NAME and
    // TOPIC_RECORD_NAME from the schema's record name, an explicit subject first), and a
    // strategy that needs a record name without one is a 400. Method: one case each.
    #[test]
    fn subjects_follow_the_strategies() {
        let text = r#"{"type":"record","name":"User","namespace":"ex","fields":[]}"#;
        let parsed = ParsedSchema::parse(SchemaType::Avro, text, &[], &[]).expect("parses");
        let choice = |strategy: Option<&str>, subject: Option<&str>| SchemaChoice {
            strategy: strategy.map(|name| SubjectStrategy::parse(name).expect("strategy")),
            subject: subject.map(str::to_owned),
            ..SchemaChoice::default()
        };
        let subject = |choice: &SchemaChoice, parsed: Option<&ParsedSchema>| {
            subject_for(choice, "t", "value", parsed)
        };
        assert_eq!(
            subject(&choice(None, None), None).expect("topic"),
            "t-value"
        );
        let record = choice(Some("record_name"), None);
        assert_eq!(subject(&record, Some(&parsed)).expect("record"), "ex.User");
        let topic_record = choice(Some("TOPIC_RECORD_NAME"), None);
        assert_eq!(
            subject(&topic_record, Some(&parsed)).expect("both"),
            "t-ex.User"
        );
        let given = choice(Some("RECORD_NAME"), Some("mine"));
        assert_eq!(subject(&given, None).expect("given"), "mine");
        let error = subject(&record, None).expect_err("no record name");
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(SubjectStrategy::parse("NOPE").is_err());
    }
}
