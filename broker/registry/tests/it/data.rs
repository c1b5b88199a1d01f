//! JSON data to and from each format's binary encoding (what the REST proxy's AVRO,
//! PROTOBUF and JSONSCHEMA keys and values go through).

use serde_json::json;
use weir_registry::format::{ParsedSchema, SchemaType};

fn parsed(schema_type: SchemaType, text: &str) -> ParsedSchema {
    ParsedSchema::parse(schema_type, text, &[], &[]).expect("schema parses")
}

// Goal: Avro's JSON encoding (unions wrapped by branch name, bytes as code points, enums,
// defaults) encodes to the bytes Avro's binary encoding specifies and decodes back; data
// that does not match is refused with a message naming the field. Method: a record whose
// binary form is worked out by hand from the specification.
#[test]
fn avro_json_round_trips_and_refuses_mismatches() {
    let schema = parsed(
        SchemaType::Avro,
        r#"{"type":"record","name":"User","namespace":"ex","fields":[
            {"name":"name","type":"string"},
            {"name":"age","type":["null","int"],"default":null},
            {"name":"tag","type":{"type":"enum","name":"Tag","symbols":["A","B"]},"default":"A"},
            {"name":"raw","type":"bytes","default":""}]}"#,
    );
    let encoded = schema
        .encode_json(
            &json!({"name": "ab", "age": {"int": 3}, "tag": "B", "raw": "\u{1}"}),
            None,
        )
        .expect("encodes");
    // "ab": length 2 zigzag = 4; union branch 1 = 2, int 3 = 6; enum index 1 = 2; bytes len 1.
    assert_eq!(encoded.payload, vec![4, b'a', b'b', 2, 6, 2, 2, 1]);
    assert!(encoded.message_indexes.is_empty());
    let back = schema.decode_json(&[], &encoded.payload).expect("decodes");
    assert_eq!(
        back,
        json!({"name": "ab", "age": {"int": 3}, "tag": "B", "raw": "\u{1}"})
    );
    // Defaults fill missing fields; a bare union value is taken when one branch fits.
    let defaulted = schema
        .encode_json(&json!({"name": "x", "age": 5}), None)
        .expect("bare");
    assert_eq!(defaulted.payload, vec![2, b'x', 2, 10, 0, 0]);
    for (bad, named) in [
        (json!({"name": 1}), "$.name"),
        (json!({"age": null}), "$.name"),
        (json!({"name": "x", "tag": "C"}), "$.tag"),
        (json!({"name": "x", "nope": 1}), "nope"),
    ] {
        let error = schema.encode_json(&bad, None).expect_err("mismatch");
        assert!(error.0.contains(named), "{bad}: {error}");
    }
    assert!(schema.decode_json(&[], &[4, b'a']).is_err());
}

// Goal: Protobuf JSON (the canonical mapping) encodes to the message's binary form, picks
// the first message by default or a named one with its index path, and decodes back.
// Method: a two-message file; bytes checked against the wire encoding of field 1/2.
#[test]
fn protobuf_json_round_trips_with_message_indexes() {
    let schema = parsed(
        SchemaType::Protobuf,
        "syntax = \"proto3\"; package ex;\n\
         message Ping { string name = 1; int32 count = 2; }\n\
         message Outer { message Inner { bool on = 1; } Inner inner = 1; }",
    );
    let encoded = schema
        .encode_json(&json!({"name": "a", "count": 2}), None)
        .expect("encodes");
    assert_eq!(encoded.message_indexes, vec![0]);
    assert_eq!(encoded.payload, vec![10, 1, b'a', 16, 2]);
    let back = schema.decode_json(&[0], &encoded.payload).expect("decodes");
    assert_eq!(back, json!({"name": "a", "count": 2}));
    let inner = schema
        .encode_json(&json!({"on": true}), Some("ex.Outer.Inner"))
        .expect("inner");
    assert_eq!(
        (inner.message_indexes, inner.payload.clone()),
        (vec![1, 0], vec![8, 1])
    );
    assert_eq!(
        schema.decode_json(&[1, 0], &inner.payload).expect("inner"),
        json!({"on": true})
    );
    assert!(schema.encode_json(&json!({"nope": 1}), None).is_err());
    assert!(schema.decode_json(&[5], &[]).is_err());
}

// Goal: JSON Schema data is validated (the errors name the path) and stored as its text.
// Method: one valid and two invalid documents.
#[test]
fn json_schema_validates_data() {
    let schema = parsed(
        SchemaType::Json,
        r#"{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}"#,
    );
    let encoded = schema.encode_json(&json!({"n": 1}), None).expect("valid");
    assert_eq!(encoded.payload, br#"{"n":1}"#.to_vec());
    assert_eq!(
        schema.decode_json(&[], &encoded.payload).expect("back"),
        json!({"n": 1})
    );
    let error = schema
        .encode_json(&json!({"n": "x"}), None)
        .expect_err("type");
    assert!(error.0.contains("/n"), "{error}");
    assert!(schema.encode_json(&json!({}), None).is_err());
}
