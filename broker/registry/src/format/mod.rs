//! Schema formats: parsing (with references), the normalized text the registry stores, the
//! identity that makes "the same schema" get the same id, and each format's reader/writer
//! compatibility check.
//!
//! Parsing is the crates': apache-avro for Avro, protox (+ prost-reflect) for Protobuf,
//! jsonschema's meta-schemas for JSON Schema. The compatibility rules follow Confluent's for
//! each format (docs/schema-registry.md lists them); each check returns the list of what
//! broke, as sentences naming the field or type, empty when compatible.

mod avro;
mod json;
mod protobuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::RegistryError;

/// The three formats Confluent's registry serves; `AVRO` when a request names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum SchemaType {
    #[default]
    Avro,
    Protobuf,
    Json,
}

impl SchemaType {
    pub const ALL: [SchemaType; 3] = [SchemaType::Json, SchemaType::Protobuf, SchemaType::Avro];

    pub fn name(self) -> &'static str {
        match self {
            Self::Avro => "AVRO",
            Self::Protobuf => "PROTOBUF",
            Self::Json => "JSON",
        }
    }

    pub fn parse_name(name: &str) -> Result<Self, RegistryError> {
        match name.to_ascii_uppercase().as_str() {
            "AVRO" => Ok(Self::Avro),
            "PROTOBUF" => Ok(Self::Protobuf),
            "JSON" => Ok(Self::Json),
            _ => Err(RegistryError::InvalidSchema(format!(
                "Unknown schema type {name}"
            ))),
        }
    }

    pub fn is_avro(&self) -> bool {
        *self == Self::Avro
    }
}

/// A reference from a schema to another subject's version, under the name the schema uses
/// for it (an Avro full name, a Protobuf import path, a JSON Schema `$ref` URL).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reference {
    pub name: String,
    pub subject: String,
    pub version: u32,
}

/// A referenced schema's text, resolved by the store, in dependency order (a referenced
/// schema comes after the ones it references).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedReference {
    pub name: String,
    pub schema: String,
}

/// A schema that parsed: its normalized text (what the registry stores and answers) and
/// the parsed form the compatibility checks read.
#[derive(Debug, Clone)]
pub struct ParsedSchema {
    pub schema_type: SchemaType,
    /// The text stored in `_schemas`: Avro and JSON Schema compacted (keys in order, no
    /// whitespace), Protobuf as given.
    pub normalized: String,
    /// What makes two registrations "the same schema" (same id): the format's canonical
    /// bytes hashed with the type and references.
    identity: [u8; 32],
    form: Form,
}

#[derive(Debug, Clone)]
enum Form {
    Avro(avro::AvroSchema),
    Protobuf(protobuf::ProtoSchema),
    Json(json::JsonSchema),
}

impl ParsedSchema {
    /// Parses `text` as `schema_type` with its references' texts; a schema that does not
    /// parse, or names a reference it was not given, is `InvalidSchema` (42201).
    pub fn parse(
        schema_type: SchemaType,
        text: &str,
        references: &[Reference],
        resolved: &[ResolvedReference],
    ) -> Result<ParsedSchema, RegistryError> {
        let (normalized, canonical, form) = match schema_type {
            SchemaType::Avro => {
                let schema = avro::AvroSchema::parse(text, resolved)?;
                (
                    schema.normalized.clone(),
                    schema.canonical.clone(),
                    Form::Avro(schema),
                )
            }
            SchemaType::Protobuf => {
                let schema = protobuf::ProtoSchema::parse(text, resolved)?;
                (
                    schema.text.clone(),
                    schema.canonical.clone(),
                    Form::Protobuf(schema),
                )
            }
            SchemaType::Json => {
                let schema = json::JsonSchema::parse(text, resolved)?;
                (
                    schema.normalized.clone(),
                    schema.normalized.clone(),
                    Form::Json(schema),
                )
            }
        };
        let mut hasher = Sha256::new();
        hasher.update(schema_type.name().as_bytes());
        hasher.update([0]);
        hasher.update(canonical.as_bytes());
        for reference in references {
            hasher.update([0]);
            hasher.update(reference.name.as_bytes());
            hasher.update([0]);
            hasher.update(reference.subject.as_bytes());
            hasher.update(reference.version.to_be_bytes());
        }
        Ok(ParsedSchema {
            schema_type,
            normalized,
            identity: hasher.finalize().into(),
            form,
        })
    }

    pub fn identity(&self) -> [u8; 32] {
        self.identity
    }

    /// The record name Confluent's RecordNameStrategy and TopicRecordNameStrategy use:
    /// Avro's named type's full name, Protobuf's first message's full name, JSON Schema's
    /// `title`. `None` when the schema has none (an Avro primitive, an untitled JSON
    /// Schema, a .proto without messages).
    pub fn record_name(&self) -> Option<String> {
        match &self.form {
            Form::Avro(schema) => schema.record_name(),
            Form::Protobuf(schema) => schema.record_name(),
            Form::Json(schema) => schema.record_name(),
        }
    }

    /// What stops a reader using `reader` from decoding data written with `writer` (empty
    /// when it can). Schemas of different formats are never compatible.
    pub fn read_problems(writer: &ParsedSchema, reader: &ParsedSchema) -> Vec<String> {
        match (&writer.form, &reader.form) {
            (Form::Avro(w), Form::Avro(r)) => avro::read_problems(w, r),
            (Form::Protobuf(w), Form::Protobuf(r)) => protobuf::read_problems(w, r),
            (Form::Json(w), Form::Json(r)) => json::read_problems(w, r),
            _ => vec![format!(
                "schema type changed from {} to {}",
                writer.schema_type.name(),
                reader.schema_type.name()
            )],
        }
    }
}

/// Data that does not fit its schema (JSON that does not match it, bytes that are not its
/// encoding), with a sentence naming where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DataError(pub String);

/// One key or value in a schema's binary encoding, before Confluent's framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Protobuf's message-index path (empty for Avro and JSON Schema).
    pub message_indexes: Vec<i32>,
    pub payload: Vec<u8>,
}

impl ParsedSchema {
    /// `data` (JSON: Avro's JSON encoding, Protobuf's JSON mapping, a JSON Schema document)
    /// in this schema's binary encoding; for Protobuf, `message` names the message (default:
    /// the file's first).
    pub fn encode_json(
        &self,
        data: &serde_json::Value,
        message: Option<&str>,
    ) -> Result<Encoded, DataError> {
        match &self.form {
            Form::Avro(schema) => Ok(Encoded {
                message_indexes: Vec::new(),
                payload: avro::data::encode(schema, data)?,
            }),
            Form::Protobuf(schema) => {
                let (message_indexes, payload) = protobuf::data::encode(schema, data, message)?;
                Ok(Encoded {
                    message_indexes,
                    payload,
                })
            }
            Form::Json(schema) => Ok(Encoded {
                message_indexes: Vec::new(),
                payload: json::data::encode(schema, data)?,
            }),
        }
    }

    /// A payload written with this schema, as JSON (the inverse of `encode_json`).
    pub fn decode_json(
        &self,
        message_indexes: &[i32],
        payload: &[u8],
    ) -> Result<serde_json::Value, DataError> {
        match &self.form {
            Form::Avro(schema) => avro::data::decode(schema, payload),
            Form::Protobuf(schema) => protobuf::data::decode(schema, message_indexes, payload),
            Form::Json(_) => json::data::decode(payload),
        }
    }
}
