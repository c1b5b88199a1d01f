//! JSON Schema: a schema must validate against its draft's meta-schema (jsonschema); its
//! `$ref`s to other documents are served from the references. Compatibility asks whether
//! the reader's schema accepts every document the writer's accepts, walking both with
//! Confluent's open/closed content model rules: in an open object (additionalProperties
//! absent or true) a property may be removed but not added with a constraint; in a closed
//! one (false) the reverse; required properties, types, enums, bounds and patterns may only
//! widen for the reader.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use super::ResolvedReference;
use crate::error::RegistryError;

/// How deep the walk follows `$ref`s and nested schemas (a recursive schema stops there,
/// taken as compatible at that depth, as a bound on work for any input).
const DEPTH_MAX: usize = 32;

#[derive(Debug, Clone)]
pub(super) struct JsonSchema {
    root: Value,
    /// Referenced documents by the name `$ref` uses.
    references: BTreeMap<String, Value>,
    pub(super) normalized: String,
    /// The compiled validator for data, built on first use (most schemas never see data).
    validator: Arc<OnceLock<Result<jsonschema::Validator, String>>>,
}

impl JsonSchema {
    pub(super) fn parse(text: &str, resolved: &[ResolvedReference]) -> Result<Self, RegistryError> {
        let root: Value = serde_json::from_str(text)
            .map_err(|error| RegistryError::InvalidSchema(format!("Invalid JSON: {error}")))?;
        if !root.is_object() && !root.is_boolean() {
            return Err(RegistryError::InvalidSchema(
                "a JSON Schema is an object or a boolean".to_owned(),
            ));
        }
        jsonschema::meta::validate(&root).map_err(|error| {
            RegistryError::InvalidSchema(format!("not a valid JSON Schema: {error}"))
        })?;
        let mut references = BTreeMap::new();
        for reference in resolved {
            let value: Value = serde_json::from_str(&reference.schema).map_err(|error| {
                RegistryError::InvalidSchema(format!(
                    "reference '{}' is not JSON: {error}",
                    reference.name
                ))
            })?;
            references.insert(reference.name.clone(), value);
        }
        Ok(JsonSchema {
            normalized: root.to_string(),
            root,
            references,
            validator: Arc::default(),
        })
    }
}

impl JsonSchema {
    /// The schema's `title` (Confluent's record name for JSON Schema).
    pub(super) fn record_name(&self) -> Option<String> {
        (self.root.get("title"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}

pub(super) fn read_problems(writer: &JsonSchema, reader: &JsonSchema) -> Vec<String> {
    let mut walk = Walk {
        writer,
        reader,
        problems: Vec::new(),
    };
    walk.check(&writer.root, &reader.root, "#", 0);
    walk.problems
}

struct Walk<'a> {
    writer: &'a JsonSchema,
    reader: &'a JsonSchema,
    problems: Vec<String>,
}

/// The "accept anything" schema, standing in for an absent subschema.
static ANY: Value = Value::Bool(true);

impl Walk<'_> {
    fn check(&mut self, writer: &Value, reader: &Value, path: &str, depth: usize) {
        if depth > DEPTH_MAX {
            return;
        }
        let writer = resolve(self.writer, writer, 0);
        let reader = resolve(self.reader, reader, 0);
        if accepts_all(reader) || accepts_none(writer) {
            return;
        }
        if accepts_none(reader) {
            self.problems
                .push(format!("{path}: the reader accepts nothing"));
            return;
        }
        let empty = Map::new();
        let w = writer.as_object().unwrap_or(&empty);
        let r = reader.as_object().unwrap_or(&empty);
        if self.combinators(w, r, path, depth) {
            return;
        }
        self.types(w, r, path);
        enum_const(w, r, path, &mut self.problems);
        bounds(w, r, path, &mut self.problems);
        self.arrays(w, r, path, depth);
        self.objects(w, r, path, depth);
    }

    /// `anyOf`/`oneOf`: every writer branch must be read by the reader; a writer without
    /// them must be read by one reader branch. Returns whether it decided the node.
    fn combinators(
        &mut self,
        w: &Map<String, Value>,
        r: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> bool {
        if let Some(branches) = branches(w) {
            for (index, branch) in branches.iter().enumerate() {
                let merged = merge(w, branch);
                self.check(
                    &merged,
                    &Value::Object(r.clone()),
                    &format!("{path}/anyOf/{index}"),
                    depth + 1,
                );
            }
            return true;
        }
        if let Some(branches) = branches(r) {
            let writer = Value::Object(w.clone());
            let fits = branches.iter().any(|branch| {
                let mut probe = Walk {
                    writer: self.writer,
                    reader: self.reader,
                    problems: Vec::new(),
                };
                probe.check(&writer, &merge(r, branch), path, depth + 1);
                probe.problems.is_empty()
            });
            if !fits {
                self.problems.push(format!(
                    "{path}: no branch of the reader's anyOf/oneOf accepts the writer's schema"
                ));
            }
            return true;
        }
        if w.get("allOf") != r.get("allOf") && r.contains_key("allOf") {
            self.problems.push(format!("{path}: allOf changed"));
        }
        false
    }

    fn types(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, path: &str) {
        let Some(reader_types) = types(r) else { return };
        let Some(writer_types) = types(w) else {
            self.problems.push(format!(
                "{path}: type restricted to {}",
                reader_types.join(", ")
            ));
            return;
        };
        for writer_type in writer_types {
            let read = reader_types.contains(&writer_type)
                || (writer_type == "integer" && reader_types.contains(&"number"));
            if !read {
                self.problems
                    .push(format!("{path}: type '{writer_type}' no longer accepted"));
            }
        }
    }

    fn arrays(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, path: &str, depth: usize) {
        if let Some(reader_items) = r.get("items") {
            let writer_items = w.get("items").unwrap_or(&ANY);
            self.check(
                writer_items,
                reader_items,
                &format!("{path}/items"),
                depth + 1,
            );
        }
        if r.get("uniqueItems") == Some(&Value::Bool(true))
            && w.get("uniqueItems") != Some(&Value::Bool(true))
        {
            self.problems.push(format!("{path}: uniqueItems added"));
        }
    }

    fn objects(
        &mut self,
        w: &Map<String, Value>,
        r: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) {
        let empty = Map::new();
        let writer_properties = w
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let reader_properties = r
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let writer_extra = w.get("additionalProperties").unwrap_or(&ANY);
        let reader_extra = r.get("additionalProperties").unwrap_or(&ANY);
        for (name, writer_property) in writer_properties {
            let at = format!("{path}/properties/{name}");
            match reader_properties.get(name) {
                Some(reader_property) => {
                    self.check(writer_property, reader_property, &at, depth + 1)
                }
                None if accepts_none(reader_extra) => self.problems.push(format!(
                    "{at}: property '{name}' removed from a closed content model"
                )),
                None => self.check(writer_property, reader_extra, &at, depth + 1),
            }
        }
        for (name, reader_property) in reader_properties {
            if writer_properties.contains_key(name) || accepts_none(writer_extra) {
                continue;
            }
            let at = format!("{path}/properties/{name}");
            let before = self.problems.len();
            self.check(writer_extra, reader_property, &at, depth + 1);
            if self.problems.len() > before {
                self.problems.truncate(before);
                self.problems.push(format!(
                    "{at}: property '{name}' added to an open content model"
                ));
            }
        }
        if !accepts_none(writer_extra) && accepts_none(reader_extra) {
            self.problems.push(format!(
                "{path}: additionalProperties closed (set to false)"
            ));
        } else if !accepts_none(writer_extra) {
            self.check(
                writer_extra,
                reader_extra,
                &format!("{path}/additionalProperties"),
                depth + 1,
            );
        }
        let writer_required = strings(w.get("required"));
        for name in strings(r.get("required")) {
            if !writer_required.contains(&name) {
                self.problems
                    .push(format!("{path}: required property '{name}' added"));
            }
        }
        for key in [
            "patternProperties",
            "dependencies",
            "dependentRequired",
            "dependentSchemas",
        ] {
            if r.contains_key(key) && w.get(key) != r.get(key) {
                self.problems.push(format!("{path}: {key} changed"));
            }
        }
    }
}

/// Follows `$ref` (a local JSON pointer or a referenced document, with an optional pointer
/// fragment) up to DEPTH_MAX hops; an unresolvable `$ref` is left as it is.
fn resolve<'a>(schema: &'a JsonSchema, value: &'a Value, hops: usize) -> &'a Value {
    let Some(target) = value.get("$ref").and_then(Value::as_str) else {
        return value;
    };
    if hops > DEPTH_MAX {
        return value;
    }
    let (document, fragment) = match target.split_once('#') {
        Some((document, fragment)) => (document, fragment),
        None => (target, ""),
    };
    let base = if document.is_empty() {
        Some(&schema.root)
    } else {
        schema.references.get(document)
    };
    let found = base.and_then(|base| {
        if fragment.is_empty() {
            Some(base)
        } else {
            base.pointer(fragment)
        }
    });
    match found {
        Some(found) => resolve(schema, found, hops + 1),
        None => value,
    }
}

fn accepts_all(value: &Value) -> bool {
    match value {
        Value::Bool(accepts) => *accepts,
        Value::Object(map) => map.keys().all(|key| !is_assertion(key)),
        _ => false,
    }
}

fn accepts_none(value: &Value) -> bool {
    value == &Value::Bool(false) || value.get("not").is_some_and(accepts_all)
}

/// Keywords that restrict what a schema accepts (annotations like title do not).
fn is_assertion(key: &str) -> bool {
    !matches!(
        key,
        "$schema"
            | "$id"
            | "id"
            | "title"
            | "description"
            | "default"
            | "examples"
            | "$comment"
            | "definitions"
            | "$defs"
            | "readOnly"
            | "writeOnly"
            | "deprecated"
    )
}

fn branches(map: &Map<String, Value>) -> Option<&Vec<Value>> {
    map.get("anyOf")
        .or_else(|| map.get("oneOf"))
        .and_then(Value::as_array)
}

/// A combinator's branch with its parent's other keywords (the branch wins on conflicts).
fn merge(parent: &Map<String, Value>, branch: &Value) -> Value {
    let mut merged: Map<String, Value> = parent
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), "anyOf" | "oneOf"))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    match branch {
        Value::Object(map) => merged.extend(map.iter().map(|(k, v)| (k.clone(), v.clone()))),
        Value::Bool(false) => return Value::Bool(false),
        _ => {}
    }
    Value::Object(merged)
}

fn types(map: &Map<String, Value>) -> Option<Vec<&str>> {
    match map.get("type")? {
        Value::String(name) => Some(vec![name.as_str()]),
        Value::Array(names) => Some(names.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn enum_const(
    w: &Map<String, Value>,
    r: &Map<String, Value>,
    path: &str,
    problems: &mut Vec<String>,
) {
    let allowed = |map: &Map<String, Value>| -> Option<Vec<Value>> {
        if let Some(constant) = map.get("const") {
            return Some(vec![constant.clone()]);
        }
        map.get("enum").and_then(Value::as_array).cloned()
    };
    let Some(reader_values) = allowed(r) else {
        return;
    };
    match allowed(w) {
        None => problems.push(format!("{path}: enum/const added")),
        Some(writer_values) => {
            for value in writer_values
                .iter()
                .filter(|value| !reader_values.contains(value))
            {
                problems.push(format!("{path}: enum value {value} removed"));
            }
        }
    }
}

/// Numeric, length and count bounds, `pattern` and `format`: the reader's may only widen.
fn bounds(w: &Map<String, Value>, r: &Map<String, Value>, path: &str, problems: &mut Vec<String>) {
    // (keyword, whether a larger reader value is the wider one)
    const BOUNDS: [(&str, bool); 10] = [
        ("maximum", true),
        ("exclusiveMaximum", true),
        ("maxLength", true),
        ("maxItems", true),
        ("maxProperties", true),
        ("minimum", false),
        ("exclusiveMinimum", false),
        ("minLength", false),
        ("minItems", false),
        ("minProperties", false),
    ];
    for (keyword, larger_is_wider) in BOUNDS {
        let Some(reader_bound) = r.get(keyword).and_then(Value::as_f64) else {
            continue;
        };
        match w.get(keyword).and_then(Value::as_f64) {
            None => problems.push(format!("{path}: {keyword} added")),
            Some(writer_bound) => {
                let narrower = if larger_is_wider {
                    reader_bound < writer_bound
                } else {
                    reader_bound > writer_bound
                };
                if narrower {
                    problems.push(format!(
                        "{path}: {keyword} changed from {writer_bound} to {reader_bound}"
                    ));
                }
            }
        }
    }
    if let Some(reader_multiple) = r.get("multipleOf").and_then(Value::as_f64) {
        let divides = w
            .get("multipleOf")
            .and_then(Value::as_f64)
            .is_some_and(|writer_multiple| (writer_multiple / reader_multiple).fract() == 0.0);
        if !divides {
            problems.push(format!("{path}: multipleOf added or changed"));
        }
    }
    for keyword in ["pattern", "format"] {
        if r.contains_key(keyword) && w.get(keyword) != r.get(keyword) {
            problems.push(format!("{path}: {keyword} added or changed"));
        }
    }
}

/// JSON documents checked against a JSON Schema (jsonschema, with the schema's references
/// served from memory and nothing fetched) and stored as their JSON text.
pub(super) mod data {
    use std::collections::BTreeMap;

    use serde_json::Value;

    use super::JsonSchema;
    use crate::format::DataError;

    /// Serves the references by the name `$ref` uses (the whole URI, or its last segment).
    struct References(BTreeMap<String, Value>);

    impl jsonschema::Retrieve for References {
        fn retrieve(
            &self,
            uri: &jsonschema::Uri<String>,
        ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
            let text = uri.as_str();
            let last = text.rsplit('/').next().unwrap_or(text);
            let found = self.0.get(text).or_else(|| self.0.get(last));
            found
                .cloned()
                .ok_or_else(|| format!("no reference named {text}").into())
        }
    }

    /// How many validation errors one message names.
    const ERRORS_SHOWN_MAX: usize = 5;

    pub(in crate::format) fn encode(
        schema: &JsonSchema,
        data: &Value,
    ) -> Result<Vec<u8>, DataError> {
        let validator = schema.validator.get_or_init(|| {
            jsonschema::options()
                .with_retriever(References(schema.references.clone()))
                .build(&schema.root)
                .map_err(|error| error.to_string())
        });
        let validator = validator
            .as_ref()
            .map_err(|error| DataError(format!("the schema does not compile: {error}")))?;
        let errors: Vec<String> = validator
            .iter_errors(data)
            .take(ERRORS_SHOWN_MAX)
            .map(|error| format!("{}: {error}", error.instance_path()))
            .collect();
        if !errors.is_empty() {
            return Err(DataError(format!(
                "does not match the schema: {}",
                errors.join("; ")
            )));
        }
        serde_json::to_vec(data).map_err(|error| DataError(error.to_string()))
    }

    pub(in crate::format) fn decode(payload: &[u8]) -> Result<Value, DataError> {
        serde_json::from_slice(payload).map_err(|error| DataError(format!("not JSON: {error}")))
    }
}
