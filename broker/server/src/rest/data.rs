//! Keys and values as JSON: Confluent's v3 `{"type": ..., "data": ...}` objects and the v2
//! embedded formats, to and from record bytes; and record timestamps as ISO 8601 text.
//!
//! BINARY data is base64 (standard alphabet, padded), JSON data is the JSON value's text,
//! STRING data is the string's UTF-8 bytes. AVRO, PROTOBUF and JSONSCHEMA data is written
//! with a schema from the schema registry: [`super::schemas`] converts it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use super::error::{RestError, INVALID_DATA};

/// How a key or value is written as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// base64 text.
    Binary,
    /// Any JSON value, stored as its text.
    Json,
    /// A JSON string, stored as UTF-8.
    String,
    /// Avro's JSON encoding, stored as Avro in Confluent's wire format.
    Avro,
    /// Protobuf's JSON mapping, stored as Protobuf in Confluent's wire format.
    Protobuf,
    /// A JSON document valid for a JSON Schema, stored as JSON in Confluent's wire format.
    JsonSchema,
}

impl Format {
    /// Confluent's name of the format.
    pub fn name(self) -> &'static str {
        match self {
            Format::Binary => "BINARY",
            Format::Json => "JSON",
            Format::String => "STRING",
            Format::Avro => "AVRO",
            Format::Protobuf => "PROTOBUF",
            Format::JsonSchema => "JSONSCHEMA",
        }
    }

    /// Whether data of this format is written with a schema from the registry.
    pub fn uses_schema(self) -> bool {
        matches!(self, Format::Avro | Format::Protobuf | Format::JsonSchema)
    }

    /// A v3 `type`, case-insensitive.
    pub fn parse(name: &str) -> Result<Format, RestError> {
        match name.to_ascii_uppercase().as_str() {
            "BINARY" => Ok(Format::Binary),
            "JSON" => Ok(Format::Json),
            "STRING" => Ok(Format::String),
            "AVRO" => Ok(Format::Avro),
            "PROTOBUF" => Ok(Format::Protobuf),
            "JSONSCHEMA" => Ok(Format::JsonSchema),
            other => Err(RestError::bad_request(format!(
                "unknown data type {other:?}: use BINARY, JSON, STRING, AVRO, PROTOBUF or \
                 JSONSCHEMA"
            ))),
        }
    }

    /// Record bytes from JSON `data` (JSON null is a null key/value in every format); the
    /// schema formats are converted by [`super::schemas`], never here.
    pub fn encode(self, data: &Value, what: &str) -> Result<Option<Vec<u8>>, RestError> {
        if data.is_null() {
            return Ok(None);
        }
        match self {
            Format::Binary => {
                let Value::String(text) = data else {
                    return Err(RestError::unprocessable(
                        INVALID_DATA,
                        format!("{what}: BINARY data must be a base64 string"),
                    ));
                };
                decode_base64(text, what).map(Some)
            }
            Format::Json => serde_json::to_vec(data)
                .map(Some)
                .map_err(|error| RestError::unprocessable(INVALID_DATA, error.to_string())),
            Format::String => match data {
                Value::String(text) => Ok(Some(text.clone().into_bytes())),
                _ => Err(RestError::unprocessable(
                    INVALID_DATA,
                    format!("{what}: STRING data must be a JSON string"),
                )),
            },
            Format::Avro | Format::Protobuf | Format::JsonSchema => Err(RestError::status(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("{what}: {} data is converted with its schema", self.name()),
            )),
        }
    }

    /// JSON data from record bytes, as a consumer of this format sees it (the schema
    /// formats are decoded by [`super::schemas`]; here they show as base64).
    pub fn decode(self, bytes: Option<&[u8]>) -> Value {
        let Some(bytes) = bytes else {
            return Value::Null;
        };
        match self {
            Format::Binary | Format::Avro | Format::Protobuf | Format::JsonSchema => {
                Value::String(STANDARD.encode(bytes))
            }
            // Bytes that are not JSON (written by another client) are shown as a string
            // rather than failing the whole poll.
            Format::Json => serde_json::from_slice(bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())),
            Format::String => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        }
    }
}

/// base64 text to bytes, or 422 [`INVALID_DATA`].
pub fn decode_base64(text: &str, what: &str) -> Result<Vec<u8>, RestError> {
    STANDARD.decode(text).map_err(|error| {
        RestError::unprocessable(INVALID_DATA, format!("{what}: invalid base64: {error}"))
    })
}

/// base64 text of bytes.
pub fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Milliseconds since the Unix epoch as ISO 8601 UTC with milliseconds
/// (`2024-01-31T12:00:00.123Z`).
pub fn iso_timestamp(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (second, milli) = (in_day / 1000 % 60, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z")
}

/// ISO 8601 UTC text (`YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM)`) to milliseconds since the
/// epoch; `None` if it is not that shape.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |from: usize, to: usize| -> Option<i64> {
        let part = text.get(from..to)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if bytes.len() < 19 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' {
        return None;
    }
    if !matches!(bytes[10], b'T' | b't' | b' ') || bytes[16] != b':' {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let mut rest = &text[19..];
    let mut milli = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let first3: String = fraction[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        milli = first3.parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let hours: i64 = rest.get(1..3)?.parse().ok()?;
            let minutes: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (hours * 60 + minutes)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + milli)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Goal: timestamps print as Confluent's ISO 8601 text and parse back, across leap years,
    // offsets and fractions. Method: known instants from `date -u -d ... +%s%3N`.
    #[test]
    fn timestamps_round_trip() {
        assert_eq!(iso_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_timestamp(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso_timestamp(1_706_702_400_000), "2024-01-31T12:00:00.000Z");
        for ms in [0, 951_782_400_123, 1_706_702_400_000, 4_102_444_799_999] {
            assert_eq!(parse_timestamp(&iso_timestamp(ms)), Some(ms), "{ms}");
        }
        assert_eq!(
            parse_timestamp("2024-01-31T14:00:00+02:00"),
            Some(1_706_702_400_000)
        );
        assert_eq!(
            parse_timestamp("2024-01-31T12:00:00.5Z"),
            Some(1_706_702_400_500)
        );
        for bad in [
            "",
            "2024-01-31",
            "2024-13-01T00:00:00Z",
            "2024-01-31T12:00:00",
            "x",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    // Goal: each format turns JSON data into the bytes Confluent's proxy writes, refuses
    // what it cannot convert with 422, and reads bytes back. Method: one case per branch.
    #[test]
    fn formats_convert_both_ways() {
        let binary = Format::Binary
            .encode(&json!("aGVsbG8="), "value")
            .expect("base64");
        assert_eq!(binary.as_deref(), Some(&b"hello"[..]));
        let error = Format::Binary
            .encode(&json!("not base64!"), "value")
            .expect_err("bad");
        assert_eq!(error.error_code, INVALID_DATA);
        let json_bytes = Format::Json
            .encode(&json!({"a": [1, 2]}), "value")
            .expect("json");
        assert_eq!(json_bytes.as_deref(), Some(&br#"{"a":[1,2]}"#[..]));
        assert_eq!(
            Format::String.encode(&json!("x"), "key").expect("s"),
            Some(b"x".to_vec())
        );
        assert!(Format::String.encode(&json!(1), "key").is_err());
        assert_eq!(
            Format::Json.encode(&Value::Null, "key").expect("null"),
            None
        );
        assert_eq!(Format::Binary.decode(Some(b"hello")), json!("aGVsbG8="));
        assert_eq!(Format::Json.decode(Some(br#"{"a":1}"#)), json!({"a": 1}));
        assert_eq!(Format::Json.decode(None), Value::Null);
        assert_eq!(Format::parse("avro").expect("avro"), Format::Avro);
        assert!(Format::Avro.encode(&json!(1), "value").is_err());
        assert!(Format::parse("xml").is_err());
    }
}
