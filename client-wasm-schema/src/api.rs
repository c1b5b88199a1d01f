//! The JavaScript-facing API: `SchemaRegistry` and `topicSubject`.
//!
//! Errors reject with a JS `Error` whose `name` is `SERIALIZATION_ERROR` (a value that
//! does not fit its schema, bytes that are not a framed value or do not decode),
//! `SCHEMA_REGISTRY_ERROR` (the registry answered an error: `code` is its `error_code`,
//! `status` the HTTP status), `NETWORK_EXCEPTION` (`fetch` failed) or `INVALID_ARGUMENT`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use base64::Engine as _;
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use crate::registry::{self, Parsed, SchemaInfo};
use crate::{json, wire, Js, SchemaError};

/// How long a subject's latest schema is reused before it is fetched again, by default.
pub const LATEST_TTL_MS_DEFAULT: f64 = 60_000.0;
/// Values nested deeper than this are refused (a cyclic object would never end).
pub const DEPTH_MAX: usize = 64;

const SERIALIZATION_ERROR: &str = "SERIALIZATION_ERROR";
const SCHEMA_REGISTRY_ERROR: &str = "SCHEMA_REGISTRY_ERROR";
const NETWORK_EXCEPTION: &str = "NETWORK_EXCEPTION";
const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

struct Inner {
    url: String,
    authorization: Option<String>,
    fetch: Function,
    latest_ttl_ms: f64,
    by_id: RefCell<BTreeMap<u32, Rc<Parsed>>>,
    latest: RefCell<BTreeMap<String, (SchemaInfo, f64)>>,
}

/// A client of a Confluent-compatible schema registry that encodes and decodes values.
#[wasm_bindgen]
pub struct SchemaRegistry {
    inner: Rc<Inner>,
}

#[wasm_bindgen]
impl SchemaRegistry {
    /// `new SchemaRegistry("http://127.0.0.1:8081", { auth: { username, password },
    /// fetch, latestTtlMs })`.
    #[wasm_bindgen(constructor)]
    pub fn new(url: String, options: JsValue) -> Result<SchemaRegistry, JsValue> {
        let url = url.trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(js_error(
                INVALID_ARGUMENT,
                "the registry URL must be http(s)://...",
            ));
        }
        let auth = field(&options, "auth");
        let authorization = if auth.is_object() {
            let username = field(&auth, "username").as_string();
            let password = field(&auth, "password").as_string();
            let (Some(username), Some(password)) = (username, password) else {
                return Err(js_error(
                    INVALID_ARGUMENT,
                    "auth needs a username and a password (strings)",
                ));
            };
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            Some(format!("Basic {token}"))
        } else {
            None
        };
        let fetch = match field(&options, "fetch") {
            value if value.is_function() => value,
            _ => field(&js_sys::global().into(), "fetch"),
        };
        let fetch: Function = fetch.dyn_into().map_err(|_| {
            js_error(
                INVALID_ARGUMENT,
                "no fetch: pass options.fetch or run where fetch exists",
            )
        })?;
        let latest_ttl_ms = field(&options, "latestTtlMs")
            .as_f64()
            .filter(|ms| *ms >= 0.0)
            .unwrap_or(LATEST_TTL_MS_DEFAULT);
        Ok(SchemaRegistry {
            inner: Rc::new(Inner {
                url,
                authorization,
                fetch,
                latest_ttl_ms,
                by_id: RefCell::default(),
                latest: RefCell::default(),
            }),
        })
    }

    /// Encode `value` with the subject's latest schema (Avro) and frame it:
    /// `Promise<Uint8Array>`. A value that does not fit rejects naming the field.
    #[wasm_bindgen(js_name = encodeAvro)]
    pub fn encode_avro(&self, subject: String, value: JsValue) -> Promise {
        let inner = Rc::clone(&self.inner);
        let value = from_js(&value, 0);
        future_to_promise(async move {
            let value = value?;
            let (info, parsed) = latest(&inner, &subject).await?;
            let Parsed::Avro(schema) = &*parsed else {
                return Err(serialization(&format!(
                    "subject {subject}'s latest schema (id {}) is {}, not AVRO",
                    info.id, info.schema_type
                )));
            };
            let payload = schema.encode(&value).map_err(to_js)?;
            Ok(Uint8Array::from(wire::frame(info.id, &payload).as_slice()).into())
        })
    }

    /// Frame `value` as JSON with the subject's latest schema (JSON Schema):
    /// `Promise<Uint8Array>`. Only the schema's top-level `type` and `required` are
    /// checked here; validate fully with a JS validator (ajv) on `latest(subject).schema`.
    #[wasm_bindgen(js_name = encodeJson)]
    pub fn encode_json(&self, subject: String, value: JsValue) -> Promise {
        let inner = Rc::clone(&self.inner);
        let value = from_js(&value, 0);
        future_to_promise(async move {
            let value = json::to_json(&value?, "$").map_err(to_js)?;
            let (info, parsed) = latest(&inner, &subject).await?;
            let Parsed::Json(schema) = &*parsed else {
                return Err(serialization(&format!(
                    "subject {subject}'s latest schema (id {}) is {}, not JSON",
                    info.id, info.schema_type
                )));
            };
            json::check(schema, &value).map_err(to_js)?;
            let text = value.to_string();
            Ok(Uint8Array::from(wire::frame(info.id, text.as_bytes()).as_slice()).into())
        })
    }

    /// Decode a framed value (`Uint8Array`) with the schema its id names: `Promise<any>`.
    pub fn decode(&self, bytes: JsValue) -> Promise {
        let inner = Rc::clone(&self.inner);
        let bytes = bytes
            .dyn_ref::<Uint8Array>()
            .map(Uint8Array::to_vec)
            .ok_or_else(|| js_error(INVALID_ARGUMENT, "decode takes a Uint8Array"));
        future_to_promise(async move {
            let bytes = bytes?;
            let (id, payload) = wire::unframe(&bytes).map_err(to_js)?;
            let parsed = by_id(&inner, id).await?;
            match &*parsed {
                Parsed::Avro(schema) => Ok(to_js_value(&schema.decode(payload).map_err(to_js)?)),
                Parsed::Json(_) => {
                    let text = std::str::from_utf8(payload)
                        .map_err(|_| serialization("the JSON payload is not UTF-8"))?;
                    js_sys::JSON::parse(text).map_err(|_| serialization("the payload is not JSON"))
                }
            }
        })
    }

    /// The subject's latest schema: `Promise<{ id, version, schemaType, schema }>`.
    pub fn latest(&self, subject: String) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let (info, _) = latest(&inner, &subject).await?;
            let out = Object::new();
            set(&out, "id", &JsValue::from(info.id));
            set(
                &out,
                "version",
                &info.version.map_or(JsValue::NULL, |v| (v as f64).into()),
            );
            set(&out, "schemaType", &JsValue::from_str(&info.schema_type));
            set(&out, "schema", &JsValue::from_str(&info.schema));
            Ok(out.into())
        })
    }

    /// Register `schema` (its text, or an object that is JSON-stringified) under `subject`
    /// as `schemaType` (`"AVRO"`, the default, or `"JSON"`): `Promise<number>` (the id).
    pub fn register(
        &self,
        subject: String,
        schema: JsValue,
        schema_type: Option<String>,
    ) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let text = match schema.as_string() {
                Some(text) => text,
                None => js_sys::JSON::stringify(&schema)
                    .ok()
                    .and_then(|s| s.as_string())
                    .ok_or_else(|| js_error(INVALID_ARGUMENT, "the schema is not JSON"))?,
            };
            let schema_type = schema_type.unwrap_or_else(|| "AVRO".to_owned());
            let body = serde_json::json!({ "schema": text, "schemaType": schema_type });
            let path = format!("/subjects/{}/versions", encode(&subject));
            let answer = request(&inner, "POST", &path, Some(body.to_string())).await?;
            let id = registry::parse_registered(&answer).map_err(to_js)?;
            inner.latest.borrow_mut().remove(&subject);
            Ok(JsValue::from(id))
        })
    }

    /// Forget every cached schema (ids are immutable, but a subject's latest changes).
    #[wasm_bindgen(js_name = clearCache)]
    pub fn clear_cache(&self) {
        self.inner.by_id.borrow_mut().clear();
        self.inner.latest.borrow_mut().clear();
    }
}

/// Confluent's TopicNameStrategy: `topicSubject("orders")` is `"orders-value"`,
/// `topicSubject("orders", true)` is `"orders-key"`.
#[wasm_bindgen(js_name = topicSubject)]
pub fn topic_subject(topic: &str, is_key: Option<bool>) -> String {
    wire::topic_subject(topic, is_key.unwrap_or(false))
}

async fn latest(inner: &Inner, subject: &str) -> Result<(SchemaInfo, Rc<Parsed>), JsValue> {
    let now = js_sys::Date::now();
    let cached = inner.latest.borrow().get(subject).cloned();
    let info = match cached {
        Some((info, at)) if now - at < inner.latest_ttl_ms => info,
        _ => {
            let path = format!("/subjects/{}/versions/latest", encode(subject));
            let answer = request(inner, "GET", &path, None).await?;
            let info = registry::parse_version(&answer).map_err(to_js)?;
            inner
                .latest
                .borrow_mut()
                .insert(subject.to_owned(), (info.clone(), now));
            info
        }
    };
    let parsed = match inner.by_id.borrow().get(&info.id) {
        Some(parsed) => Some(Rc::clone(parsed)),
        None => None,
    };
    let parsed = match parsed {
        Some(parsed) => parsed,
        None => {
            let parsed = Rc::new(Parsed::new(&info).map_err(to_js)?);
            inner.by_id.borrow_mut().insert(info.id, Rc::clone(&parsed));
            parsed
        }
    };
    Ok((info, parsed))
}

async fn by_id(inner: &Inner, id: u32) -> Result<Rc<Parsed>, JsValue> {
    if let Some(parsed) = inner.by_id.borrow().get(&id) {
        return Ok(Rc::clone(parsed));
    }
    let answer = request(inner, "GET", &format!("/schemas/ids/{id}"), None).await?;
    let info = registry::parse_by_id(id, &answer).map_err(to_js)?;
    let parsed = Rc::new(Parsed::new(&info).map_err(to_js)?);
    inner.by_id.borrow_mut().insert(id, Rc::clone(&parsed));
    Ok(parsed)
}

/// One HTTP exchange with the registry; the body text of a 2xx answer.
async fn request(
    inner: &Inner,
    method: &str,
    path: &str,
    body: Option<String>,
) -> Result<String, JsValue> {
    let init = Object::new();
    set(&init, "method", &JsValue::from_str(method));
    let headers = Object::new();
    set(&headers, "Accept", &JsValue::from_str(CONTENT_TYPE));
    if let Some(authorization) = &inner.authorization {
        set(&headers, "Authorization", &JsValue::from_str(authorization));
    }
    if let Some(body) = body {
        set(&headers, "Content-Type", &JsValue::from_str(CONTENT_TYPE));
        set(&init, "body", &JsValue::from_str(&body));
    }
    set(&init, "headers", &headers);
    let url = format!("{}{path}", inner.url);
    let network = |error: JsValue| {
        let reason = error
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .unwrap_or_else(|| "fetch failed".to_owned());
        js_error(NETWORK_EXCEPTION, &format!("{method} {url}: {reason}"))
    };
    let promise = inner
        .fetch
        .call2(&js_sys::global(), &JsValue::from_str(&url), &init)
        .map_err(network)?;
    let promise: Promise = promise.dyn_into().map_err(network)?;
    let response = JsFuture::from(promise).await.map_err(network)?;
    let status = field(&response, "status").as_f64().unwrap_or(0.0) as u16;
    let text: Function = field(&response, "text").dyn_into().map_err(network)?;
    let text: Promise = text
        .call0(&response)
        .map_err(network)?
        .dyn_into()
        .map_err(network)?;
    let text = JsFuture::from(text)
        .await
        .map_err(network)?
        .as_string()
        .unwrap_or_default();
    if !(200..300).contains(&status) {
        let (code, message) = registry::parse_error(status, &text);
        let error = js_error(
            SCHEMA_REGISTRY_ERROR,
            &format!("{method} {path}: {message}"),
        );
        set(&error, "code", &JsValue::from(code as f64));
        set(&error, "status", &JsValue::from(status));
        return Err(error);
    }
    Ok(text)
}

fn encode(segment: &str) -> String {
    String::from(js_sys::encode_uri_component(segment))
}

/// A JS value as a [`Js`] tree (`undefined` properties are absent).
fn from_js(value: &JsValue, depth: usize) -> Result<Js, JsValue> {
    if depth > DEPTH_MAX {
        return Err(js_error(
            INVALID_ARGUMENT,
            &format!("the value is nested deeper than {DEPTH_MAX} levels (or is cyclic)"),
        ));
    }
    if value.is_null() || value.is_undefined() {
        return Ok(Js::Null);
    }
    if let Some(b) = value.as_bool() {
        return Ok(Js::Bool(b));
    }
    if let Some(n) = value.as_f64() {
        return Ok(Js::Number(n));
    }
    if let Some(s) = value.as_string() {
        return Ok(Js::String(s));
    }
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        return Ok(Js::Bytes(bytes.to_vec()));
    }
    if value.is_instance_of::<js_sys::ArrayBuffer>() {
        return Ok(Js::Bytes(Uint8Array::new(value).to_vec()));
    }
    if Array::is_array(value) {
        let array: &Array = value.unchecked_ref();
        return array
            .iter()
            .map(|item| from_js(&item, depth + 1))
            .collect::<Result<_, _>>()
            .map(Js::Array);
    }
    if value.is_bigint() {
        return Err(js_error(
            INVALID_ARGUMENT,
            "BigInt values are not supported: pass a number",
        ));
    }
    if value.is_function() || !value.is_object() {
        return Err(js_error(
            INVALID_ARGUMENT,
            "functions and symbols are not values",
        ));
    }
    let mut entries = Vec::new();
    for entry in Object::entries(value.unchecked_ref()).iter() {
        let entry: Array = entry.unchecked_into();
        let item = entry.get(1);
        if item.is_undefined() {
            continue;
        }
        let key = entry.get(0).as_string().unwrap_or_default();
        entries.push((key, from_js(&item, depth + 1)?));
    }
    Ok(Js::Object(entries))
}

/// A [`Js`] tree as a JS value.
fn to_js_value(value: &Js) -> JsValue {
    match value {
        Js::Null => JsValue::NULL,
        Js::Bool(b) => JsValue::from(*b),
        Js::Number(n) => JsValue::from(*n),
        Js::String(s) => JsValue::from_str(s),
        Js::Bytes(b) => Uint8Array::from(b.as_slice()).into(),
        Js::Array(items) => items.iter().map(to_js_value).collect::<Array>().into(),
        Js::Object(entries) => {
            let object = Object::new();
            for (key, item) in entries {
                set(&object, key, &to_js_value(item));
            }
            object.into()
        }
    }
}

fn field(object: &JsValue, key: &str) -> JsValue {
    if !object.is_object() && !object.is_function() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn set(object: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}

fn js_error(name: &str, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name(name);
    error.into()
}

fn serialization(message: &str) -> JsValue {
    js_error(SERIALIZATION_ERROR, message)
}

fn to_js(error: SchemaError) -> JsValue {
    serialization(&error.to_string())
}
