//! Conversions between JavaScript values and edge protocol values.
//!
//! Keys, values and header values accept a string (UTF-8 encoded) or a `Uint8Array`;
//! consumed keys and values are `Uint8Array`s (or `null`).

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use weir_edge::{EdgeError, Header, NewRecord, Record};

/// Kafka's name for "the connection to the broker was lost".
pub const NETWORK_EXCEPTION: &str = "NETWORK_EXCEPTION";
/// Name of errors about arguments passed from JavaScript.
pub const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";

/// A JS `Error` with `name` and `code` set.
pub fn js_error(name: &str, code: i16, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name(name);
    let _ = Reflect::set(&error, &"code".into(), &JsValue::from(code));
    error.into()
}

/// An edge error as a JS `Error`.
pub fn edge_error(error: &EdgeError) -> JsValue {
    let message = if error.message.is_empty() {
        error.name.clone()
    } else {
        format!("{}: {}", error.name, error.message)
    };
    js_error(&error.name, error.code, &message)
}

/// A bad argument from JavaScript.
pub fn invalid_argument(message: &str) -> JsValue {
    js_error(INVALID_ARGUMENT, -1, message)
}

/// `object[key]`, `undefined` when absent or not an object.
pub fn field(object: &JsValue, key: &str) -> JsValue {
    if !object.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// A string field, if present.
pub fn string_field(object: &JsValue, key: &str) -> Option<String> {
    field(object, key).as_string()
}

/// A number field, if present.
pub fn number_field(object: &JsValue, key: &str) -> Option<f64> {
    field(object, key).as_f64()
}

/// Bytes from a string or `Uint8Array` (`None` for null/undefined).
pub fn bytes(value: &JsValue, what: &str) -> Result<Option<Vec<u8>>, JsValue> {
    if value.is_null() || value.is_undefined() {
        return Ok(None);
    }
    if let Some(text) = value.as_string() {
        return Ok(Some(text.into_bytes()));
    }
    if let Some(array) = value.dyn_ref::<Uint8Array>() {
        return Ok(Some(array.to_vec()));
    }
    if value.is_instance_of::<js_sys::ArrayBuffer>() {
        return Ok(Some(Uint8Array::new(value).to_vec()));
    }
    Err(invalid_argument(&format!(
        "{what} must be a string or a Uint8Array"
    )))
}

/// A record to produce from `{ key, value, headers, partition, timestamp }`.
pub fn new_record(record: &JsValue) -> Result<(NewRecord, Option<i32>), JsValue> {
    if !record.is_object() {
        // `send(topic, "text")` is a value-only record.
        let value = bytes(record, "the record")?;
        let plain = NewRecord {
            key: None,
            value,
            headers: Vec::new(),
            timestamp: None,
        };
        return Ok((plain, None));
    }
    let key = bytes(&field(record, "key"), "key")?;
    let value = bytes(&field(record, "value"), "value")?;
    let headers = headers(&field(record, "headers"))?;
    let timestamp = match field(record, "timestamp") {
        t if t.is_undefined() || t.is_null() => None,
        t => Some(timestamp_ms(&t)?),
    };
    let partition = match number_field(record, "partition") {
        Some(p) if p.fract() == 0.0 && (0.0..=f64::from(i32::MAX)).contains(&p) => Some(p as i32),
        Some(_) => return Err(invalid_argument("partition must be a non-negative integer")),
        None => None,
    };
    let new = NewRecord {
        key,
        value,
        headers,
        timestamp,
    };
    Ok((new, partition))
}

fn timestamp_ms(value: &JsValue) -> Result<i64, JsValue> {
    if let Some(date) = value.dyn_ref::<js_sys::Date>() {
        return Ok(date.get_time() as i64);
    }
    match value.as_f64() {
        Some(ms) if ms.is_finite() => Ok(ms as i64),
        _ => Err(invalid_argument(
            "timestamp must be a number (ms) or a Date",
        )),
    }
}

/// Headers from `{ name: value }` or `[[name, value], ...]`.
fn headers(value: &JsValue) -> Result<Vec<Header>, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(Vec::new());
    }
    let pairs: Array = if Array::is_array(value) {
        value.clone().unchecked_into()
    } else if value.is_object() {
        Object::entries(value.unchecked_ref())
    } else {
        return Err(invalid_argument(
            "headers must be an object or an array of pairs",
        ));
    };
    let mut headers = Vec::new();
    for pair in pairs.iter() {
        let pair: Array = pair.unchecked_into();
        let key = pair
            .get(0)
            .as_string()
            .ok_or_else(|| invalid_argument("header names must be strings"))?;
        let value = bytes(&pair.get(1), "a header value")?;
        headers.push(Header { key, value });
    }
    Ok(headers)
}

fn optional_bytes(bytes: Option<&Vec<u8>>) -> JsValue {
    match bytes {
        Some(bytes) => Uint8Array::from(bytes.as_slice()).into(),
        None => JsValue::NULL,
    }
}

/// A consumed record as `{ topic, partition, offset, key, value, headers, timestamp }`.
/// Offsets and timestamps are numbers (exact below 2^53).
pub fn record_object(record: &Record) -> JsValue {
    let object = Object::new();
    let headers = Object::new();
    for header in &record.headers {
        set(&headers, &header.key, optional_bytes(header.value.as_ref()));
    }
    set(&object, "topic", JsValue::from_str(&record.topic));
    set(&object, "partition", JsValue::from(record.partition));
    set(&object, "offset", JsValue::from(record.offset as f64));
    set(&object, "key", optional_bytes(record.key.as_ref()));
    set(&object, "value", optional_bytes(record.value.as_ref()));
    set(&object, "headers", headers.into());
    set(&object, "timestamp", JsValue::from(record.timestamp as f64));
    object.into()
}

/// `object[key] = value` on a fresh object (cannot fail).
pub fn set(object: &Object, key: &str, value: JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(key), &value);
}

/// An error's `name` (empty if it has none).
pub fn error_name(error: &JsValue) -> String {
    field(error, "name").as_string().unwrap_or_default()
}
