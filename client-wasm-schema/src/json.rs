//! JSON Schema subjects: values become JSON text, and only what is cheap is checked here
//! (the schema's top-level `type` and `required` properties). A JSON Schema validator is
//! six times this module's size in WebAssembly (docs/wasm.md), so full validation belongs
//! to a JavaScript library such as ajv, run on the schema `SchemaRegistry.latest` returns;
//! the broker's `confluent.value.schema.validation` checks only the framing.

use crate::{Js, SchemaError};

/// The JSON of a JS value (bytes and non-finite numbers are not JSON).
pub fn to_json(value: &Js, path: &str) -> Result<serde_json::Value, SchemaError> {
    Ok(match value {
        Js::Null => serde_json::Value::Null,
        Js::Bool(b) => serde_json::Value::Bool(*b),
        Js::Number(n) => match serde_json::Number::from_f64(*n) {
            Some(_) if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 => {
                serde_json::Value::Number((*n as i64).into())
            }
            Some(number) => serde_json::Value::Number(number),
            None => {
                return Err(SchemaError::Mismatch {
                    path: path.to_owned(),
                    reason: format!("{n} is not a JSON number"),
                })
            }
        },
        Js::String(s) => serde_json::Value::String(s.clone()),
        Js::Bytes(_) => {
            return Err(SchemaError::Mismatch {
                path: path.to_owned(),
                reason: "a Uint8Array is not JSON".to_owned(),
            })
        }
        Js::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| to_json(item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Js::Object(entries) => serde_json::Value::Object(
            entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), to_json(v, &format!("{path}.{k}"))?)))
                .collect::<Result<_, SchemaError>>()?,
        ),
    })
}

/// The cheap checks: the top-level `type` (a name or a list of names) and, for objects,
/// the top-level `required` properties. Everything else is left to a JS validator.
pub fn check(schema: &serde_json::Value, value: &serde_json::Value) -> Result<(), SchemaError> {
    let types: Vec<&str> = match schema.get("type") {
        Some(serde_json::Value::String(name)) => vec![name.as_str()],
        Some(serde_json::Value::Array(names)) => {
            names.iter().filter_map(serde_json::Value::as_str).collect()
        }
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|name| has_type(value, name)) {
        return Err(SchemaError::Mismatch {
            path: "$".to_owned(),
            reason: format!(
                "expected type {}, got {}",
                types.join(" or "),
                json_kind(value)
            ),
        });
    }
    if let (Some(required), serde_json::Value::Object(object)) = (schema.get("required"), value) {
        for name in required.as_array().into_iter().flatten() {
            if let Some(name) = name.as_str() {
                if !object.contains_key(name) {
                    return Err(SchemaError::Mismatch {
                        path: format!("$.{name}"),
                        reason: "missing (required by the schema)".to_owned(),
                    });
                }
            }
        }
    }
    Ok(())
}

fn has_type(value: &serde_json::Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => true,
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_become_json_and_bytes_do_not() {
        // serde_json's map sorts keys (no preserve_order: smaller module).
        let value = Js::Object(vec![
            ("n".to_owned(), Js::Number(3.0)),
            ("f".to_owned(), Js::Number(0.5)),
            (
                "l".to_owned(),
                Js::Array(vec![Js::Null, Js::Bool(true), Js::String("s".into())]),
            ),
        ]);
        assert_eq!(
            to_json(&value, "$").unwrap().to_string(),
            r#"{"f":0.5,"l":[null,true,"s"],"n":3}"#
        );
        let bytes = Js::Object(vec![("b".to_owned(), Js::Bytes(vec![1]))]);
        assert_eq!(
            to_json(&bytes, "$").unwrap_err().to_string(),
            "$.b: a Uint8Array is not JSON"
        );
        assert!(to_json(&Js::Number(f64::NAN), "$").is_err());
    }

    #[test]
    fn the_cheap_checks_catch_type_and_required() {
        let schema = json!({
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": "integer"}}
        });
        assert_eq!(check(&schema, &json!({"id": 1})), Ok(()));
        let error = check(&schema, &json!({"name": "x"})).unwrap_err();
        assert_eq!(error.to_string(), "$.id: missing (required by the schema)");
        let error = check(&schema, &json!([1])).unwrap_err();
        assert_eq!(error.to_string(), "$: expected type object, got array");
        assert_eq!(
            check(&json!({"type": ["integer", "null"]}), &json!(null)),
            Ok(())
        );
        assert!(check(&json!({"type": "integer"}), &json!(1.5)).is_err());
        // Not checked here (ajv's job): nested properties.
        assert_eq!(check(&schema, &json!({"id": "not an integer"})), Ok(()));
    }
}
