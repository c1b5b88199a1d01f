//! [`Js`]: a JavaScript value as a plain Rust tree, so the Avro and JSON conversions are
//! pure functions tested natively; `api` converts `JsValue`s to and from it.

/// A JavaScript value (what `encodeAvro` accepts and `decode` returns).
#[derive(Clone, Debug, PartialEq)]
pub enum Js {
    /// `null` or `undefined`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number.
    Number(f64),
    /// A string.
    String(String),
    /// A `Uint8Array` (or `ArrayBuffer`).
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<Js>),
    /// A plain object: its own enumerable properties, in order.
    Object(Vec<(String, Js)>),
}

impl Js {
    /// What the value is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Js::Null => "null",
            Js::Bool(_) => "a boolean",
            Js::Number(_) => "a number",
            Js::String(_) => "a string",
            Js::Bytes(_) => "a Uint8Array",
            Js::Array(_) => "an array",
            Js::Object(_) => "an object",
        }
    }

    /// `object[key]`, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Js> {
        match self {
            Js::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The JSON text of a value (bytes are not JSON: they are refused by the caller).
    pub fn from_json(json: &serde_json::Value) -> Js {
        match json {
            serde_json::Value::Null => Js::Null,
            serde_json::Value::Bool(b) => Js::Bool(*b),
            serde_json::Value::Number(n) => Js::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Js::String(s.clone()),
            serde_json::Value::Array(items) => Js::Array(items.iter().map(Js::from_json).collect()),
            serde_json::Value::Object(map) => Js::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Js::from_json(v)))
                    .collect(),
            ),
        }
    }
}
