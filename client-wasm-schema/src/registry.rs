//! The schema registry's HTTP answers (Confluent's API, as `weir serve` and Confluent's
//! registry give them) and parsed schemas.

use crate::avro::AvroSchema;
use crate::SchemaError;

/// A schema as the registry describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaInfo {
    /// Its global id (the one framed values carry).
    pub id: u32,
    /// Its version under the subject (`None` when fetched by id).
    pub version: Option<i64>,
    /// `AVRO`, `JSON` or `PROTOBUF`.
    pub schema_type: String,
    /// The schema text.
    pub schema: String,
}

/// `GET /subjects/{subject}/versions/latest`'s answer.
pub fn parse_version(text: &str) -> Result<SchemaInfo, SchemaError> {
    let json = parse(text)?;
    let id = json
        .get("id")
        .and_then(serde_json::Value::as_u64)
        .and_then(|id| u32::try_from(id).ok())
        .ok_or_else(|| SchemaError::Registry("the answer has no schema id".to_owned()))?;
    schema_info(&json, id)
}

/// `GET /schemas/ids/{id}`'s answer.
pub fn parse_by_id(id: u32, text: &str) -> Result<SchemaInfo, SchemaError> {
    schema_info(&parse(text)?, id)
}

/// `POST /subjects/{subject}/versions`'s answer: the id.
pub fn parse_registered(text: &str) -> Result<u32, SchemaError> {
    parse(text)?
        .get("id")
        .and_then(serde_json::Value::as_u64)
        .and_then(|id| u32::try_from(id).ok())
        .ok_or_else(|| SchemaError::Registry("the answer has no schema id".to_owned()))
}

/// An error answer's `error_code` and `message` (Confluent's error body).
pub fn parse_error(status: u16, text: &str) -> (i64, String) {
    let json: Option<serde_json::Value> = serde_json::from_str(text).ok();
    let code = json
        .as_ref()
        .and_then(|j| j.get("error_code"))
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(i64::from(status));
    let message = json
        .as_ref()
        .and_then(|j| j.get("message"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            format!(
                "HTTP {status}: {}",
                text.chars().take(200).collect::<String>()
            )
        });
    (code, message)
}

fn parse(text: &str) -> Result<serde_json::Value, SchemaError> {
    serde_json::from_str(text).map_err(|e| SchemaError::Registry(format!("bad JSON: {e}")))
}

fn schema_info(json: &serde_json::Value, id: u32) -> Result<SchemaInfo, SchemaError> {
    let schema = json
        .get("schema")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| SchemaError::Registry("the answer has no schema".to_owned()))?;
    Ok(SchemaInfo {
        id,
        version: json.get("version").and_then(serde_json::Value::as_i64),
        schema_type: json
            .get("schemaType")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("AVRO")
            .to_owned(),
        schema: schema.to_owned(),
    })
}

/// A schema ready to encode and decode with.
#[derive(Debug)]
pub enum Parsed {
    /// An Avro schema.
    Avro(AvroSchema),
    /// A JSON Schema document.
    Json(serde_json::Value),
}

impl Parsed {
    /// Parse `info`'s schema; Protobuf is not supported by these helpers.
    pub fn new(info: &SchemaInfo) -> Result<Parsed, SchemaError> {
        match info.schema_type.as_str() {
            "AVRO" => Ok(Parsed::Avro(AvroSchema::parse(&info.schema)?)),
            "JSON" => serde_json::from_str(&info.schema)
                .map(Parsed::Json)
                .map_err(|e| SchemaError::Schema(format!("schema {}: {e}", info.id))),
            other => Err(SchemaError::Schema(format!(
                "schema {} is {other}: these helpers handle AVRO and JSON",
                info.id
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed() {
        let latest = r#"{"subject":"t-value","version":2,"id":7,"schema":"\"string\""}"#;
        let info = parse_version(latest).unwrap();
        assert_eq!(
            info,
            SchemaInfo {
                id: 7,
                version: Some(2),
                schema_type: "AVRO".to_owned(),
                schema: "\"string\"".to_owned()
            }
        );
        assert!(matches!(Parsed::new(&info), Ok(Parsed::Avro(_))));
        let by_id = parse_by_id(
            9,
            r#"{"schemaType":"JSON","schema":"{\"type\":\"object\"}"}"#,
        )
        .unwrap();
        assert_eq!(
            (by_id.id, by_id.version, by_id.schema_type.as_str()),
            (9, None, "JSON")
        );
        assert!(matches!(Parsed::new(&by_id), Ok(Parsed::Json(_))));
        let proto = SchemaInfo {
            schema_type: "PROTOBUF".to_owned(),
            ..by_id
        };
        assert!(Parsed::new(&proto)
            .unwrap_err()
            .to_string()
            .contains("PROTOBUF"));
        assert_eq!(parse_registered(r#"{"id":12}"#), Ok(12));
        assert!(parse_version("{}").is_err());
        assert!(parse_version("not json").is_err());
    }

    #[test]
    fn error_bodies_give_code_and_message() {
        let body = r#"{"error_code":40401,"message":"Subject 'x' not found."}"#;
        assert_eq!(
            parse_error(404, body),
            (40401, "Subject 'x' not found.".to_owned())
        );
        assert_eq!(
            parse_error(502, "bad gateway"),
            (502, "HTTP 502: bad gateway".to_owned())
        );
    }
}
