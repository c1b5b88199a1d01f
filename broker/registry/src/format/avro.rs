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

/// Avro's JSON encoding (the specification's, as Confluent's REST proxy reads and writes
/// it) to and from the binary encoding, walking the schema.
///
/// JSON to Avro: a union is `null` or `{"<branch name>": value}` (a bare value is also taken
/// when exactly one branch accepts it), bytes and fixed are strings of code points 0-255,
/// an enum is its symbol, a record an object whose missing fields take their defaults.
pub(super) mod data {
    use apache_avro::reader::datum::GenericDatumReader;
    use apache_avro::schema::{NamesRef, ResolvedSchema, UnionSchema};
    use apache_avro::types::Value;
    use apache_avro::writer::datum::GenericDatumWriter;
    use apache_avro::Schema;
    use serde_json::{json, Map, Value as Json};

    use super::AvroSchema;
    use crate::format::DataError;

    /// Nesting depth of a value the walk follows (a bound on work for any input).
    const DEPTH_MAX: usize = 64;

    pub(in crate::format) fn encode(
        schema: &AvroSchema,
        data: &Json,
    ) -> Result<Vec<u8>, DataError> {
        let resolved = ResolvedSchema::try_from(&schema.schema)
            .map_err(|error| DataError(format!("the schema does not resolve: {error}")))?;
        let walk = Walk {
            names: resolved.get_names(),
        };
        let value = walk.to_avro(&schema.schema, data, "$", 0)?;
        let writer = GenericDatumWriter::builder(&schema.schema)
            .build()
            .map_err(|error| DataError(format!("the schema does not resolve: {error}")))?;
        writer
            .write_value_to_vec(value)
            .map_err(|error| DataError(format!("does not match the schema: {error}")))
    }

    pub(in crate::format) fn decode(
        schema: &AvroSchema,
        payload: &[u8],
    ) -> Result<Json, DataError> {
        let mut reader = payload;
        let datum_reader = GenericDatumReader::builder(&schema.schema)
            .build()
            .map_err(|error| DataError(format!("the schema does not resolve: {error}")))?;
        let value = datum_reader
            .read_value(&mut reader)
            .map_err(|error| DataError(format!("not Avro of this schema: {error}")))?;
        if !reader.is_empty() {
            return Err(DataError(format!(
                "{} bytes left after the Avro value",
                reader.len()
            )));
        }
        let resolved = ResolvedSchema::try_from(&schema.schema)
            .map_err(|error| DataError(format!("the schema does not resolve: {error}")))?;
        let walk = Walk {
            names: resolved.get_names(),
        };
        walk.to_json(&schema.schema, value, 0)
    }

    struct Walk<'a, 's> {
        names: &'a NamesRef<'s>,
    }

    fn mismatch(path: &str, wanted: &str, found: &Json) -> DataError {
        let mut shown = found.to_string();
        if shown.len() > 80 {
            shown.truncate(77);
            shown.push_str("...");
        }
        DataError(format!("{path}: expected {wanted}, found {shown}"))
    }

    /// Bytes from Avro's JSON form: each char a byte (code points 0-255).
    fn bytes_of(text: &str, path: &str) -> Result<Vec<u8>, DataError> {
        text.chars()
            .map(|c| u8::try_from(u32::from(c)))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| DataError(format!("{path}: bytes are a string of code points 0-255")))
    }

    fn text_of(bytes: &[u8]) -> String {
        bytes.iter().map(|&b| char::from(b)).collect()
    }

    /// The name a union branch has in Avro's JSON encoding.
    fn branch_name(schema: &Schema) -> String {
        match schema {
            Schema::Record(record) => record.name.fullname(None),
            Schema::Enum(schema) => schema.name.fullname(None),
            Schema::Fixed(schema) | Schema::Duration(schema) => schema.name.fullname(None),
            Schema::Ref { name } => name.fullname(None),
            Schema::Null => "null".into(),
            Schema::Boolean => "boolean".into(),
            Schema::Int | Schema::Date | Schema::TimeMillis => "int".into(),
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => "long".into(),
            Schema::Float => "float".into(),
            Schema::Double => "double".into(),
            Schema::Bytes | Schema::BigDecimal => "bytes".into(),
            Schema::String => "string".into(),
            Schema::Array(_) => "array".into(),
            Schema::Map(_) => "map".into(),
            Schema::Union(_) => "union".into(),
            Schema::Decimal(decimal) => match &decimal.inner {
                apache_avro::schema::InnerDecimalSchema::Fixed(fixed) => fixed.name.fullname(None),
                apache_avro::schema::InnerDecimalSchema::Bytes => "bytes".into(),
            },
            Schema::Uuid(uuid) => match uuid {
                apache_avro::schema::UuidSchema::String => "string".into(),
                apache_avro::schema::UuidSchema::Bytes => "bytes".into(),
                apache_avro::schema::UuidSchema::Fixed(fixed) => fixed.name.fullname(None),
            },
        }
    }

    impl<'s> Walk<'_, 's> {
        /// `schema`, or the type a reference names.
        fn named<'x>(&self, schema: &'x Schema) -> Result<&'x Schema, DataError>
        where
            's: 'x,
        {
            match schema {
                Schema::Ref { name } => self.names.get(name).copied().ok_or_else(|| {
                    DataError(format!(
                        "the schema names an unknown type {}",
                        name.fullname(None)
                    ))
                }),
                other => Ok(other),
            }
        }

        fn to_avro(
            &self,
            schema: &Schema,
            data: &Json,
            path: &str,
            depth: usize,
        ) -> Result<Value, DataError> {
            if depth > DEPTH_MAX {
                return Err(DataError(format!("{path}: nested deeper than {DEPTH_MAX}")));
            }
            let schema = self.named(schema)?;
            let int = |data: &Json| -> Result<i32, DataError> {
                data.as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(|| mismatch(path, "an int", data))
            };
            let long = |data: &Json| data.as_i64().ok_or_else(|| mismatch(path, "a long", data));
            let string = |data: &Json| -> Result<String, DataError> {
                data.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| mismatch(path, "a string", data))
            };
            Ok(match schema {
                Schema::Null if data.is_null() => Value::Null,
                Schema::Null => return Err(mismatch(path, "null", data)),
                Schema::Boolean => Value::Boolean(
                    data.as_bool()
                        .ok_or_else(|| mismatch(path, "a boolean", data))?,
                ),
                Schema::Int => Value::Int(int(data)?),
                Schema::Date => Value::Date(int(data)?),
                Schema::TimeMillis => Value::TimeMillis(int(data)?),
                Schema::Long => Value::Long(long(data)?),
                Schema::TimeMicros => Value::TimeMicros(long(data)?),
                Schema::TimestampMillis => Value::TimestampMillis(long(data)?),
                Schema::TimestampMicros => Value::TimestampMicros(long(data)?),
                Schema::TimestampNanos => Value::TimestampNanos(long(data)?),
                Schema::LocalTimestampMillis => Value::LocalTimestampMillis(long(data)?),
                Schema::LocalTimestampMicros => Value::LocalTimestampMicros(long(data)?),
                Schema::LocalTimestampNanos => Value::LocalTimestampNanos(long(data)?),
                #[allow(clippy::cast_possible_truncation)]
                Schema::Float => Value::Float(
                    data.as_f64()
                        .ok_or_else(|| mismatch(path, "a float", data))? as f32,
                ),
                Schema::Double => Value::Double(
                    data.as_f64()
                        .ok_or_else(|| mismatch(path, "a double", data))?,
                ),
                Schema::Bytes => Value::Bytes(bytes_of(&string(data)?, path)?),
                Schema::String => Value::String(string(data)?),
                Schema::Uuid(_) => {
                    let text = string(data)?;
                    let uuid = apache_avro::Uuid::parse_str(&text)
                        .map_err(|_| mismatch(path, "a UUID string", data))?;
                    Value::Uuid(uuid)
                }
                Schema::Decimal(_) => {
                    Value::Decimal(apache_avro::Decimal::from(bytes_of(&string(data)?, path)?))
                }
                Schema::Fixed(fixed) => {
                    let bytes = bytes_of(&string(data)?, path)?;
                    if bytes.len() != fixed.size {
                        let wanted = format!("{} bytes", fixed.size);
                        return Err(mismatch(path, &wanted, data));
                    }
                    Value::Fixed(fixed.size, bytes)
                }
                Schema::Enum(schema) => {
                    let symbol = string(data)?;
                    let index = schema.symbols.iter().position(|s| *s == symbol);
                    let index =
                        index.ok_or_else(|| mismatch(path, "one of the enum's symbols", data))?;
                    Value::Enum(u32::try_from(index).unwrap_or(u32::MAX), symbol)
                }
                Schema::Array(array) => {
                    let items = data
                        .as_array()
                        .ok_or_else(|| mismatch(path, "an array", data))?;
                    let mut out = Vec::with_capacity(items.len());
                    for (index, item) in items.iter().enumerate() {
                        let at = format!("{path}[{index}]");
                        out.push(self.to_avro(&array.items, item, &at, depth + 1)?);
                    }
                    Value::Array(out)
                }
                Schema::Map(map) => {
                    let object = data
                        .as_object()
                        .ok_or_else(|| mismatch(path, "an object", data))?;
                    let mut out = Vec::with_capacity(object.len());
                    for (key, item) in object {
                        let at = format!("{path}.{key}");
                        out.push((key.clone(), self.to_avro(&map.types, item, &at, depth + 1)?));
                    }
                    Value::Map(out.into_iter().collect())
                }
                Schema::Record(record) => {
                    let object = data
                        .as_object()
                        .ok_or_else(|| mismatch(path, "an object", data))?;
                    if let Some(unknown) = object.keys().find(|k| !record.lookup.contains_key(*k)) {
                        let name = record.name.fullname(None);
                        return Err(DataError(format!("{path}: {name} has no field {unknown}")));
                    }
                    let mut fields = Vec::with_capacity(record.fields.len());
                    for field in &record.fields {
                        let at = format!("{path}.{}", field.name);
                        let given = object.get(&field.name).or(field.default.as_ref());
                        let Some(given) = given else {
                            return Err(DataError(format!("{at}: missing (no default)")));
                        };
                        let value = self.to_avro(&field.schema, given, &at, depth + 1)?;
                        fields.push((field.name.clone(), value));
                    }
                    Value::Record(fields)
                }
                Schema::Union(union) => self.union_to_avro(union, data, path, depth)?,
                Schema::Duration(_) | Schema::BigDecimal | Schema::Ref { .. } => {
                    return Err(DataError(format!(
                        "{path}: this Avro type is not supported in JSON data"
                    )))
                }
            })
        }

        fn union_to_avro(
            &self,
            union: &UnionSchema,
            data: &Json,
            path: &str,
            depth: usize,
        ) -> Result<Value, DataError> {
            let variants = union.variants();
            let index_of = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
            if data.is_null() {
                if let Some(i) = variants.iter().position(|v| matches!(v, Schema::Null)) {
                    return Ok(Value::Union(index_of(i), Box::new(Value::Null)));
                }
            }
            if let Some(object) = data.as_object().filter(|o| o.len() == 1) {
                for (name, inner) in object {
                    for (i, variant) in variants.iter().enumerate() {
                        if branch_name(variant) == *name || variant_short_name(variant) == *name {
                            let at = format!("{path}<{name}>");
                            let value = self.to_avro(variant, inner, &at, depth + 1)?;
                            return Ok(Value::Union(index_of(i), Box::new(value)));
                        }
                    }
                }
            }
            // A bare value: the one branch that takes it.
            let mut taken = variants
                .iter()
                .enumerate()
                .filter(|(_, v)| !matches!(v, Schema::Null))
                .filter_map(|(i, v)| self.to_avro(v, data, path, depth + 1).ok().map(|x| (i, x)));
            match (taken.next(), taken.next()) {
                (Some((i, value)), None) => Ok(Value::Union(index_of(i), Box::new(value))),
                _ => {
                    let names: Vec<String> = variants.iter().map(branch_name).collect();
                    let wanted =
                        format!("a union value (null or {{\"<type>\": value}} of {names:?})");
                    Err(mismatch(path, &wanted, data))
                }
            }
        }

        fn to_json(&self, schema: &Schema, value: Value, depth: usize) -> Result<Json, DataError> {
            if depth > DEPTH_MAX {
                return Err(DataError(format!("nested deeper than {DEPTH_MAX}")));
            }
            let schema = self.named(schema)?;
            Ok(match (schema, value) {
                (Schema::Union(union), Value::Union(index, inner)) => {
                    let index = usize::try_from(index).unwrap_or(usize::MAX);
                    let variant = union
                        .variants()
                        .get(index)
                        .ok_or_else(|| DataError(format!("union branch {index} out of range")))?;
                    if matches!(*inner, Value::Null) {
                        Json::Null
                    } else {
                        let inner = self.to_json(variant, *inner, depth + 1)?;
                        json!({ branch_name(variant): inner })
                    }
                }
                (Schema::Array(array), Value::Array(items)) => Json::Array(
                    items
                        .into_iter()
                        .map(|item| self.to_json(&array.items, item, depth + 1))
                        .collect::<Result<_, _>>()?,
                ),
                (Schema::Map(map), Value::Map(items)) => {
                    let mut out = Map::new();
                    for (key, item) in items {
                        out.insert(key, self.to_json(&map.types, item, depth + 1)?);
                    }
                    Json::Object(out)
                }
                (Schema::Record(record), Value::Record(fields)) => {
                    let mut out = Map::new();
                    for (name, item) in fields {
                        let field = record.lookup.get(&name).and_then(|&i| record.fields.get(i));
                        let field =
                            field.ok_or_else(|| DataError(format!("unknown field {name}")))?;
                        out.insert(name, self.to_json(&field.schema, item, depth + 1)?);
                    }
                    Json::Object(out)
                }
                (_, Value::Null) => Json::Null,
                (_, Value::Boolean(b)) => json!(b),
                (_, Value::Int(n) | Value::Date(n) | Value::TimeMillis(n)) => json!(n),
                (
                    _,
                    Value::Long(n)
                    | Value::TimeMicros(n)
                    | Value::TimestampMillis(n)
                    | Value::TimestampMicros(n)
                    | Value::TimestampNanos(n)
                    | Value::LocalTimestampMillis(n)
                    | Value::LocalTimestampMicros(n)
                    | Value::LocalTimestampNanos(n),
                ) => json!(n),
                (_, Value::Float(n)) => json!(n),
                (_, Value::Double(n)) => json!(n),
                (_, Value::Bytes(bytes) | Value::Fixed(_, bytes)) => json!(text_of(&bytes)),
                (_, Value::String(text) | Value::Enum(_, text)) => json!(text),
                (_, Value::Uuid(uuid)) => json!(uuid.to_string()),
                (_, Value::Decimal(decimal)) => {
                    let bytes = Vec::<u8>::try_from(&decimal)
                        .map_err(|error| DataError(format!("decimal: {error}")))?;
                    json!(text_of(&bytes))
                }
                (_, other) => {
                    return Err(DataError(format!(
                        "this Avro value has no JSON form here: {other:?}"
                    )))
                }
            })
        }
    }

    /// A named branch's name without its namespace (Confluent's clients use either).
    fn variant_short_name(schema: &Schema) -> String {
        let full = branch_name(schema);
        full.rsplit('.').next().unwrap_or(&full).to_owned()
    }
}
