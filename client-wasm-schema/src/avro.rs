//! JavaScript values <-> Avro datums under a schema.
//!
//! apache-avro parses the schema and decodes; encoding walks the [`Js`] value and the
//! schema together and writes Avro's binary encoding directly, so a value that does not fit
//! is refused with the path of the field and what was expected (apache-avro's own
//! validation only says "does not match"), and map entries keep the object's order (the
//! bytes equal Confluent's serializers'). Mapping:
//!
//! | Avro | JavaScript |
//! |---|---|
//! | null | `null` / `undefined` |
//! | boolean | boolean |
//! | int, long, date, time-*, timestamp-* | integer number (int: 32-bit; long: exact up to 2^53) |
//! | float, double | number |
//! | bytes, fixed | `Uint8Array` (fixed: exactly its size) |
//! | string, uuid | string (uuid: parsed) |
//! | enum | one of its symbols |
//! | array, map, record | array, object, object (record: see below) |
//! | union | the value of the first branch it fits, or Avro JSON's `{ "branch": value }` |
//!
//! A record field left out takes its default, or null in a union with null; properties
//! that are not fields are refused.
//!
//! Decoding gives the same shapes (a union gives its branch's value). decimal, duration and
//! big-decimal are refused both ways.

use std::collections::BTreeMap;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::{Schema, UnionSchema, UuidSchema};
use apache_avro::types::Value;

use crate::{Js, SchemaError};

/// Largest integer a JS number holds exactly.
const SAFE_INTEGER_MAX: f64 = 9_007_199_254_740_991.0;

/// A parsed Avro schema with its named types (for `Ref`s).
#[derive(Debug)]
pub struct AvroSchema {
    schema: Schema,
    names: BTreeMap<String, Schema>,
}

impl AvroSchema {
    /// Parse the registry's schema text.
    pub fn parse(text: &str) -> Result<AvroSchema, SchemaError> {
        let schema = Schema::parse_str(text).map_err(|e| SchemaError::Schema(e.to_string()))?;
        let mut names = BTreeMap::new();
        collect_names(&schema, &mut names);
        Ok(AvroSchema { schema, names })
    }

    /// The Avro binary encoding of `value` (not framed). Written here, guided by the
    /// schema, rather than by apache-avro's writer: map entries keep the object's order
    /// (apache-avro's `Value::Map` is a hash map), so the bytes are deterministic and equal
    /// to what Confluent's serializers write for the same object.
    pub fn encode(&self, value: &Js) -> Result<Vec<u8>, SchemaError> {
        let mut out = Vec::new();
        self.write(&self.schema, value, "$", &mut out)?;
        Ok(out)
    }

    /// Decode an Avro binary payload (not framed).
    pub fn decode(&self, payload: &[u8]) -> Result<Js, SchemaError> {
        let reader = GenericDatumReader::builder(&self.schema)
            .build()
            .map_err(|e| SchemaError::Schema(e.to_string()))?;
        let mut input = payload;
        let value = reader
            .read_value(&mut input)
            .map_err(|e| SchemaError::Decode(e.to_string()))?;
        if !input.is_empty() {
            return Err(SchemaError::Decode(format!(
                "{} bytes left after the value",
                input.len()
            )));
        }
        from_avro(value)
    }

    fn resolve<'a>(&'a self, schema: &'a Schema) -> Result<&'a Schema, SchemaError> {
        match schema {
            Schema::Ref { name } => self.names.get(&name.fullname(None)).ok_or_else(|| {
                SchemaError::Schema(format!("unknown type {}", name.fullname(None)))
            }),
            other => Ok(other),
        }
    }

    fn write(
        &self,
        schema: &Schema,
        value: &Js,
        path: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), SchemaError> {
        let schema = self.resolve(schema)?;
        let mismatch = |expected: &str| SchemaError::Mismatch {
            path: path.to_owned(),
            reason: format!("expected {expected}, got {}", describe(value)),
        };
        match (schema, value) {
            (Schema::Null, Js::Null) => {}
            (Schema::Null, _) => return Err(mismatch("null")),
            (Schema::Boolean, Js::Bool(b)) => out.push(u8::from(*b)),
            (Schema::Boolean, _) => return Err(mismatch("a boolean")),
            (Schema::Int, _) => long(out, int32(value).ok_or_else(|| mismatch("an int"))?.into()),
            (Schema::Long, _) => long(out, int53(value).ok_or_else(|| mismatch("a long"))?),
            (Schema::Float, Js::Number(n)) => out.extend_from_slice(&(*n as f32).to_le_bytes()),
            (Schema::Float, _) => return Err(mismatch("a float")),
            (Schema::Double, Js::Number(n)) => out.extend_from_slice(&n.to_le_bytes()),
            (Schema::Double, _) => return Err(mismatch("a double")),
            (Schema::Bytes, Js::Bytes(b)) => bytes(out, b),
            (Schema::Bytes, _) => return Err(mismatch("bytes (a Uint8Array)")),
            (Schema::String, Js::String(s)) => bytes(out, s.as_bytes()),
            (Schema::String, _) => return Err(mismatch("a string")),
            (Schema::Fixed(fixed), Js::Bytes(b)) if b.len() == fixed.size => {
                out.extend_from_slice(b);
            }
            (Schema::Fixed(fixed), _) => {
                return Err(mismatch(&format!(
                    "fixed {} ({} bytes as a Uint8Array)",
                    fixed.name.fullname(None),
                    fixed.size
                )))
            }
            (Schema::Enum(e), Js::String(s)) => match e.symbols.iter().position(|x| x == s) {
                Some(index) => long(out, index_i64(index)),
                None => {
                    return Err(mismatch(&format!(
                        "one of the symbols {:?} of enum {}",
                        e.symbols,
                        e.name.fullname(None)
                    )))
                }
            },
            (Schema::Enum(e), _) => {
                return Err(mismatch(&format!(
                    "a symbol of enum {}",
                    e.name.fullname(None)
                )))
            }
            (Schema::Array(array), Js::Array(items)) => {
                // One block with every item, then the empty block that ends the array.
                if !items.is_empty() {
                    long(out, index_i64(items.len()));
                    for (i, item) in items.iter().enumerate() {
                        self.write(&array.items, item, &format!("{path}[{i}]"), out)?;
                    }
                }
                out.push(0);
            }
            (Schema::Array(_), _) => return Err(mismatch("an array")),
            (Schema::Map(map), Js::Object(entries)) => {
                if !entries.is_empty() {
                    long(out, index_i64(entries.len()));
                    for (key, item) in entries {
                        bytes(out, key.as_bytes());
                        self.write(&map.types, item, &format!("{path}.{key}"), out)?;
                    }
                }
                out.push(0);
            }
            (Schema::Map(_), _) => return Err(mismatch("an object (map)")),
            (Schema::Record(record), Js::Object(entries)) => {
                for (key, _) in entries {
                    if !record.fields.iter().any(|f| &f.name == key) {
                        return Err(SchemaError::Mismatch {
                            path: format!("{path}.{key}"),
                            reason: format!(
                                "no such field in record {}",
                                record.name.fullname(None)
                            ),
                        });
                    }
                }
                for field in &record.fields {
                    let field_path = format!("{path}.{}", field.name);
                    match (value.get(&field.name), &field.default) {
                        (Some(given), _) => self.write(&field.schema, given, &field_path, out)?,
                        (None, Some(default)) => {
                            self.write_default(&field.schema, default, &field_path, out)?;
                        }
                        (None, None) if self.nullable(&field.schema) => {
                            self.write(&field.schema, &Js::Null, &field_path, out)?;
                        }
                        (None, None) => {
                            return Err(SchemaError::Mismatch {
                                path: field_path,
                                reason: "missing (the field has no default)".to_owned(),
                            })
                        }
                    }
                }
            }
            (Schema::Record(record), _) => {
                return Err(mismatch(&format!(
                    "an object (record {})",
                    record.name.fullname(None)
                )))
            }
            (Schema::Union(union), _) => self.write_union(union, value, path, out)?,
            (Schema::Date, _) => long(out, int32(value).ok_or_else(|| mismatch("a date"))?.into()),
            (Schema::TimeMillis, _) => {
                long(
                    out,
                    int32(value)
                        .ok_or_else(|| mismatch("a time-millis"))?
                        .into(),
                );
            }
            (
                Schema::TimeMicros
                | Schema::TimestampMillis
                | Schema::TimestampMicros
                | Schema::TimestampNanos
                | Schema::LocalTimestampMillis
                | Schema::LocalTimestampMicros
                | Schema::LocalTimestampNanos,
                _,
            ) => {
                let expected = format!("an integer ({})", branch_name(schema));
                long(out, int53(value).ok_or_else(|| mismatch(&expected))?);
            }
            (Schema::Uuid(kind), Js::String(s)) => {
                let uuid = uuid::Uuid::parse_str(s).map_err(|_| mismatch("a uuid string"))?;
                match kind {
                    UuidSchema::String => bytes(out, uuid.to_string().as_bytes()),
                    _ => return Err(unsupported(path, "uuid on bytes or fixed")),
                }
            }
            (Schema::Uuid(_), _) => return Err(mismatch("a uuid string")),
            (Schema::Decimal(_), _) | (Schema::BigDecimal, _) => {
                return Err(unsupported(path, "decimal"))
            }
            (Schema::Duration(_), _) => return Err(unsupported(path, "duration")),
            (Schema::Ref { name }, _) => {
                return Err(SchemaError::Schema(format!(
                    "unresolved type {}",
                    name.fullname(None)
                )))
            }
        }
        Ok(())
    }

    fn write_union(
        &self,
        union: &UnionSchema,
        value: &Js,
        path: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), SchemaError> {
        let variants = union.variants();
        let mut branch_bytes = Vec::new();
        for (index, branch) in variants.iter().enumerate() {
            branch_bytes.clear();
            if self.write(branch, value, path, &mut branch_bytes).is_ok() {
                long(out, index_i64(index));
                out.extend_from_slice(&branch_bytes);
                return Ok(());
            }
        }
        // Avro's JSON encoding of a union: `{ "type name": value }`.
        if let Js::Object(entries) = value {
            if let [(key, inner)] = entries.as_slice() {
                for (index, branch) in variants.iter().enumerate() {
                    if branch_name(branch) == *key || short_name(branch) == *key {
                        long(out, index_i64(index));
                        return self.write(branch, inner, &format!("{path}.{key}"), out);
                    }
                }
            }
        }
        // A value of a branch's shape that fails deeper down (a record's field): name it.
        for branch in variants {
            if let Err(SchemaError::Mismatch { path: at, reason }) =
                self.write(branch, value, path, &mut Vec::new())
            {
                if at != path {
                    return Err(SchemaError::Mismatch { path: at, reason });
                }
            }
        }
        let names: Vec<String> = variants.iter().map(branch_name).collect();
        Err(SchemaError::Mismatch {
            path: path.to_owned(),
            reason: format!("{} fits no branch of the union {names:?}", describe(value)),
        })
    }

    /// A field's default (JSON; a union's is its first branch's).
    fn write_default(
        &self,
        schema: &Schema,
        default: &serde_json::Value,
        path: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), SchemaError> {
        let schema = self.resolve(schema)?;
        if let Schema::Union(union) = schema {
            let first = union
                .variants()
                .first()
                .ok_or_else(|| SchemaError::Schema(format!("{path}: empty union")))?;
            long(out, 0);
            return self.write_default(first, default, path, out);
        }
        let value = match (schema, default) {
            // Avro JSON gives bytes defaults as strings of code points 0-255.
            (Schema::Bytes | Schema::Fixed(_), serde_json::Value::String(text)) => {
                Js::Bytes(text.chars().map(|c| c as u32 as u8).collect())
            }
            _ => Js::from_json(default),
        };
        self.write(schema, &value, path, out)
    }

    fn nullable(&self, schema: &Schema) -> bool {
        match self.resolve(schema) {
            Ok(Schema::Union(union)) => union
                .variants()
                .iter()
                .any(|branch| matches!(branch, Schema::Null)),
            Ok(Schema::Null) => true,
            _ => false,
        }
    }
}

fn index_i64(index: usize) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX)
}

/// Avro's long: zigzag, then a little-endian base-128 varint.
fn long(out: &mut Vec<u8>, n: i64) {
    let mut zigzag = ((n << 1) ^ (n >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

/// Avro's bytes and string: the length as a long, then the bytes.
fn bytes(out: &mut Vec<u8>, data: &[u8]) {
    long(out, index_i64(data.len()));
    out.extend_from_slice(data);
}

fn unsupported(path: &str, what: &str) -> SchemaError {
    SchemaError::Mismatch {
        path: path.to_owned(),
        reason: format!("the {what} logical type is not supported by these helpers"),
    }
}

fn describe(value: &Js) -> String {
    match value {
        Js::Number(n) => format!("the number {n}"),
        Js::String(s) if s.len() <= 40 => format!("the string {s:?}"),
        Js::Bool(b) => format!("{b}"),
        other => other.kind().to_owned(),
    }
}

/// An integer number within i32.
fn int32(value: &Js) -> Option<i32> {
    match value {
        Js::Number(n)
            if n.fract() == 0.0 && *n >= f64::from(i32::MIN) && *n <= f64::from(i32::MAX) =>
        {
            Some(*n as i32)
        }
        _ => None,
    }
}

/// An integer number a JS number holds exactly.
fn int53(value: &Js) -> Option<i64> {
    match value {
        Js::Number(n) if n.fract() == 0.0 && n.abs() <= SAFE_INTEGER_MAX => Some(*n as i64),
        _ => None,
    }
}

/// A union branch's name in Avro JSON (`"string"`, `"com.example.Address"`).
fn branch_name(schema: &Schema) -> String {
    match schema {
        Schema::Record(r) => r.name.fullname(None),
        Schema::Enum(e) => e.name.fullname(None),
        Schema::Fixed(f) => f.name.fullname(None),
        Schema::Ref { name } => name.fullname(None),
        Schema::Array(_) => "array".to_owned(),
        Schema::Map(_) => "map".to_owned(),
        other => primitive_name(other).to_owned(),
    }
}

fn short_name(schema: &Schema) -> String {
    match schema {
        Schema::Record(r) => r.name.name().to_owned(),
        Schema::Enum(e) => e.name.name().to_owned(),
        Schema::Fixed(f) => f.name.name().to_owned(),
        Schema::Ref { name } => name.name().to_owned(),
        other => branch_name(other),
    }
}

fn primitive_name(schema: &Schema) -> &'static str {
    match schema {
        Schema::Null => "null",
        Schema::Boolean => "boolean",
        Schema::Int | Schema::Date | Schema::TimeMillis => "int",
        Schema::Float => "float",
        Schema::Double => "double",
        Schema::Bytes | Schema::Decimal(_) | Schema::BigDecimal => "bytes",
        Schema::String | Schema::Uuid(_) => "string",
        _ => "long",
    }
}

fn collect_names(schema: &Schema, names: &mut BTreeMap<String, Schema>) {
    match schema {
        Schema::Record(record) => {
            names.insert(record.name.fullname(None), schema.clone());
            for field in &record.fields {
                collect_names(&field.schema, names);
            }
        }
        Schema::Enum(e) => {
            names.insert(e.name.fullname(None), schema.clone());
        }
        Schema::Fixed(f) => {
            names.insert(f.name.fullname(None), schema.clone());
        }
        Schema::Array(array) => collect_names(&array.items, names),
        Schema::Map(map) => collect_names(&map.types, names),
        Schema::Union(union) => {
            for branch in union.variants() {
                collect_names(branch, names);
            }
        }
        _ => {}
    }
}

/// An Avro datum as a JS value.
pub fn from_avro(value: Value) -> Result<Js, SchemaError> {
    Ok(match value {
        Value::Null => Js::Null,
        Value::Boolean(b) => Js::Bool(b),
        Value::Int(n) | Value::Date(n) | Value::TimeMillis(n) => Js::Number(f64::from(n)),
        Value::Long(n)
        | Value::TimeMicros(n)
        | Value::TimestampMillis(n)
        | Value::TimestampMicros(n)
        | Value::TimestampNanos(n)
        | Value::LocalTimestampMillis(n)
        | Value::LocalTimestampMicros(n)
        | Value::LocalTimestampNanos(n) => Js::Number(n as f64),
        Value::Float(n) => Js::Number(f64::from(n)),
        Value::Double(n) => Js::Number(n),
        Value::Bytes(b) | Value::Fixed(_, b) => Js::Bytes(b),
        Value::String(s) | Value::Enum(_, s) => Js::String(s),
        Value::Uuid(u) => Js::String(u.to_string()),
        Value::Union(_, inner) => from_avro(*inner)?,
        Value::Array(items) => {
            Js::Array(items.into_iter().map(from_avro).collect::<Result<_, _>>()?)
        }
        Value::Map(map) => {
            let mut entries: Vec<(String, Js)> = map
                .into_iter()
                .map(|(k, v)| Ok((k, from_avro(v)?)))
                .collect::<Result<_, SchemaError>>()?;
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Js::Object(entries)
        }
        Value::Record(fields) => Js::Object(
            fields
                .into_iter()
                .map(|(k, v)| Ok((k, from_avro(v)?)))
                .collect::<Result<_, SchemaError>>()?,
        ),
        Value::Decimal(_) | Value::BigDecimal(_) | Value::Duration(_) => {
            return Err(SchemaError::Decode(
                "decimal and duration values are not supported by these helpers".to_owned(),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = r#"{
        "type": "record", "name": "Order", "namespace": "shop",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "qty", "type": "int"},
            {"name": "customer", "type": "string"},
            {"name": "note", "type": ["null", "string"], "default": null},
            {"name": "status", "type": {"type": "enum", "name": "Status",
                                        "symbols": ["NEW", "PAID"]}},
            {"name": "tags", "type": {"type": "array", "items": "string"}},
            {"name": "attrs", "type": {"type": "map", "values": "double"}},
            {"name": "raw", "type": "bytes"},
            {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 2}},
            {"name": "address", "type": {"type": "record", "name": "Address", "fields": [
                {"name": "city", "type": "string"},
                {"name": "zip", "type": "int"}
            ]}},
            {"name": "priority", "type": "int", "default": 3},
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}}
        ]
    }"#;

    fn s(text: &str) -> Js {
        Js::String(text.to_owned())
    }

    fn obj(entries: &[(&str, Js)]) -> Js {
        Js::Object(
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    fn order() -> Js {
        obj(&[
            ("id", Js::Number(9_007_199_254_740_991.0)),
            ("qty", Js::Number(-3.0)),
            ("customer", s("c-7")),
            ("status", s("PAID")),
            ("tags", Js::Array(vec![s("a"), s("b")])),
            ("attrs", obj(&[("w", Js::Number(1.5))])),
            ("raw", Js::Bytes(vec![0, 255])),
            ("hash", Js::Bytes(vec![1, 2])),
            (
                "address",
                obj(&[("city", s("Oslo")), ("zip", Js::Number(150.0))]),
            ),
            ("at", Js::Number(1_700_000_000_123.0)),
            ("ref", s("6ba7b810-9dad-11d1-80b4-00c04fd430c8")),
        ])
    }

    fn mismatch_path(error: SchemaError) -> String {
        match error {
            SchemaError::Mismatch { path, .. } => path,
            other => panic!("not a mismatch: {other}"),
        }
    }

    #[test]
    fn a_record_round_trips_with_defaults_filled_in() {
        let schema = AvroSchema::parse(ORDER).unwrap();
        let bytes = schema.encode(&order()).unwrap();
        let decoded = schema.decode(&bytes).unwrap();
        let Js::Object(mut expected) = order() else {
            unreachable!()
        };
        // Absent fields come back with their defaults, in the schema's field order.
        expected.insert(3, ("note".to_owned(), Js::Null));
        expected.insert(10, ("priority".to_owned(), Js::Number(3.0)));
        assert_eq!(decoded, Js::Object(expected));
    }

    #[test]
    fn the_binary_encoding_is_avro_s() {
        // Zigzag varints, length-prefixed strings, union index before the branch's value.
        let schema = AvroSchema::parse(
            r#"{"type":"record","name":"R","fields":[
                {"name":"a","type":"int"},{"name":"b","type":"string"},
                {"name":"c","type":["null","long"]}]}"#,
        )
        .unwrap();
        let value = obj(&[
            ("a", Js::Number(-2.0)),
            ("b", s("hi")),
            ("c", Js::Number(64.0)),
        ]);
        assert_eq!(
            schema.encode(&value).unwrap(),
            [3, 4, b'h', b'i', 2, 0x80, 0x01]
        );
        let value = obj(&[("a", Js::Number(1.0)), ("b", s("")), ("c", Js::Null)]);
        assert_eq!(schema.encode(&value).unwrap(), [2, 0, 0]);
    }

    #[test]
    fn maps_keep_the_object_s_order_and_blocks_end_with_zero() {
        let schema = AvroSchema::parse(r#"{"type":"map","values":"int"}"#).unwrap();
        let value = obj(&[("b", Js::Number(1.0)), ("a", Js::Number(-1.0))]);
        let bytes = schema.encode(&value).unwrap();
        assert_eq!(bytes, [4, 2, b'b', 2, 2, b'a', 1, 0]);
        assert_eq!(
            schema.decode(&bytes).unwrap(),
            obj(&[("a", Js::Number(-1.0)), ("b", Js::Number(1.0))])
        );
        assert_eq!(schema.encode(&obj(&[])).unwrap(), [0]);
        let floats = AvroSchema::parse(r#"{"type":"array","items":"float"}"#).unwrap();
        let bytes = floats.encode(&Js::Array(vec![Js::Number(1.5)])).unwrap();
        assert_eq!(bytes, [2, 0, 0, 0xc0, 0x3f, 0]);
        assert_eq!(
            floats.decode(&bytes).unwrap(),
            Js::Array(vec![Js::Number(1.5)])
        );
        let longs = AvroSchema::parse(r#""long""#).unwrap();
        let min = -9_007_199_254_740_991.0;
        assert_eq!(
            longs
                .decode(&longs.encode(&Js::Number(min)).unwrap())
                .unwrap(),
            Js::Number(min)
        );
    }

    #[test]
    fn a_value_that_does_not_fit_names_the_field() {
        let schema = AvroSchema::parse(ORDER).unwrap();
        let with = |key: &str, value: Js| {
            let Js::Object(mut entries) = order() else {
                unreachable!()
            };
            entries.retain(|(k, _)| k != key);
            entries.push((key.to_owned(), value));
            schema.encode(&Js::Object(entries)).unwrap_err()
        };
        let error = with("address", obj(&[("city", s("Oslo")), ("zip", s("0150"))]));
        assert_eq!(
            error.to_string(),
            r#"$.address.zip: expected an int, got the string "0150""#
        );
        assert_eq!(mismatch_path(with("qty", Js::Number(1.5))), "$.qty");
        assert_eq!(
            mismatch_path(with("qty", Js::Number(2_147_483_648.0))),
            "$.qty"
        );
        assert_eq!(
            mismatch_path(with("id", Js::Number(9_007_199_254_740_992.0))),
            "$.id"
        );
        assert_eq!(mismatch_path(with("status", s("LOST"))), "$.status");
        assert_eq!(
            mismatch_path(with("tags", Js::Array(vec![s("a"), Js::Bool(true)]))),
            "$.tags[1]"
        );
        assert_eq!(
            mismatch_path(with("attrs", obj(&[("w", s("x"))]))),
            "$.attrs.w"
        );
        assert_eq!(
            mismatch_path(with("hash", Js::Bytes(vec![1, 2, 3]))),
            "$.hash"
        );
        assert_eq!(mismatch_path(with("note", Js::Number(1.0))), "$.note");
        assert_eq!(mismatch_path(with("ref", s("not-a-uuid"))), "$.ref");
        assert_eq!(mismatch_path(with("customr", s("typo"))), "$.customr");
        let Js::Object(mut entries) = order() else {
            unreachable!()
        };
        entries.retain(|(k, _)| k != "customer");
        let error = schema.encode(&Js::Object(entries)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "$.customer: missing (the field has no default)"
        );
        assert_eq!(mismatch_path(schema.encode(&s("x")).unwrap_err()), "$");
    }

    #[test]
    fn explicit_null_is_null_not_the_default() {
        let schema = AvroSchema::parse(
            r#"{"type":"record","name":"R","fields":[
                {"name":"a","type":["string","null"],"default":"x"}]}"#,
        )
        .unwrap();
        let null = schema.encode(&obj(&[("a", Js::Null)])).unwrap();
        assert_eq!(schema.decode(&null).unwrap(), obj(&[("a", Js::Null)]));
        let absent = schema.encode(&obj(&[])).unwrap();
        assert_eq!(schema.decode(&absent).unwrap(), obj(&[("a", s("x"))]));
    }

    #[test]
    fn unions_take_the_first_fitting_branch_or_avro_json() {
        let schema = AvroSchema::parse(r#"["null", "int", "string", "long"]"#).unwrap();
        assert_eq!(schema.encode(&Js::Number(5.0)).unwrap(), [2, 10]);
        // Avro JSON names the branch: a long 5 rather than the int branch.
        assert_eq!(
            schema.encode(&obj(&[("long", Js::Number(5.0))])).unwrap(),
            [6, 10]
        );
        let error = schema.encode(&Js::Bool(true)).unwrap_err();
        assert!(error.to_string().contains("fits no branch"), "{error}");
        assert_eq!(schema.decode(&[4, 2, b'z']).unwrap(), s("z"));
    }

    #[test]
    fn named_types_resolve_recursively() {
        let schema = AvroSchema::parse(
            r#"{"type":"record","name":"Node","namespace":"list","fields":[
                {"name":"value","type":"int"},
                {"name":"next","type":["null","list.Node"]}]}"#,
        )
        .unwrap();
        let list = obj(&[
            ("value", Js::Number(1.0)),
            (
                "next",
                obj(&[("value", Js::Number(2.0)), ("next", Js::Null)]),
            ),
        ]);
        let bytes = schema.encode(&list).unwrap();
        assert_eq!(schema.decode(&bytes).unwrap(), list);
        let bad = obj(&[
            ("value", Js::Number(1.0)),
            ("next", obj(&[("value", s("2"))])),
        ]);
        assert_eq!(
            mismatch_path(schema.encode(&bad).unwrap_err()),
            "$.next.value"
        );
    }

    #[test]
    fn bad_payloads_and_schemas_are_errors() {
        let schema = AvroSchema::parse(ORDER).unwrap();
        let bytes = schema.encode(&order()).unwrap();
        assert!(matches!(
            schema.decode(&bytes[..bytes.len() - 1]),
            Err(SchemaError::Decode(_))
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(schema.decode(&long), Err(SchemaError::Decode(_))));
        assert!(matches!(
            AvroSchema::parse("{\"type\": \"recrd\"}"),
            Err(SchemaError::Schema(_))
        ));
        let decimal = AvroSchema::parse(
            r#"{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}"#,
        )
        .unwrap();
        let error = decimal.encode(&Js::Bytes(vec![1])).unwrap_err();
        assert!(error.to_string().contains("not supported"), "{error}");
    }
}
