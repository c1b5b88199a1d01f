//! Avro: apache-avro parses (named types from references first), and its implementation of
//! the specification's schema resolution decides compatibility, as Confluent's registry
//! uses Avro's Java `SchemaCompatibility`.

use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use apache_avro::Schema;

use super::ResolvedReference;
use crate::error::RegistryError;

#[derive(Debug, Clone)]
pub(super) struct AvroSchema {
    /// Referenced named types inlined, so resolution sees whole types.
    schema: Schema,
    /// The text compacted (serde_json): what is stored and served.
    pub(super) normalized: String,
    /// Identity: the compacted text (defaults and docs included: two schemas that differ
    /// in a default are different schemas, though their Parsing Canonical Form is equal).
    pub(super) canonical: String,
}

impl AvroSchema {
    pub(super) fn parse(text: &str, resolved: &[ResolvedReference]) -> Result<Self, RegistryError> {
        let json: serde_json::Value = serde_json::from_str(text)
            .map_err(|error| RegistryError::InvalidSchema(format!("Invalid JSON: {error}")))?;
        let normalized = json.to_string();
        let invalid = |error: apache_avro::Error| RegistryError::InvalidSchema(error.to_string());
        let (mut schema, named) = if resolved.is_empty() {
            (Schema::parse(&json).map_err(invalid)?, Vec::new())
        } else {
            // References are named types (records, enums, fixed); parse_str_with_list lets
            // them refer to each other in any order.
            let texts = resolved.iter().map(|reference| reference.schema.as_str());
            Schema::parse_str_with_list(text, texts).map_err(invalid)?
        };
        schema.denormalize(&named).map_err(invalid)?;
        Ok(AvroSchema {
            schema,
            canonical: normalized.clone(),
            normalized,
        })
    }
}

impl AvroSchema {
    /// The top-level named type's full name (`namespace.name`).
    pub(super) fn record_name(&self) -> Option<String> {
        self.schema.name().map(|name| name.fullname(None))
    }
}

/// Avro schema resolution: can a reader with `reader` decode what `writer` wrote? A
/// resolution that may fail on some data (a writer union branch or enum symbol the reader
/// lacks: apache-avro's `Partial`) is incompatible, as in Avro's Java checker.
pub(super) fn read_problems(writer: &AvroSchema, reader: &AvroSchema) -> Vec<String> {
    match SchemaCompatibility::can_read(&writer.schema, &reader.schema) {
        Ok(Compatibility::Full) => Vec::new(),
        Ok(Compatibility::Partial) => vec![
            "the reader cannot read every value the writer can write: a union branch or an enum \
             symbol of the writer is missing from the reader"
                .to_owned(),
        ],
        Err(error) => {
            let mut message = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message.push_str(": ");
                message.push_str(&cause.to_string());
                source = cause.source();
            }
            vec![message]
        }
    }
}
