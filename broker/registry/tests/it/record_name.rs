//! The record name Confluent's RecordNameStrategy and TopicRecordNameStrategy read from a
//! schema (broker-side validation names the subject with it).

use weir_registry::format::{ParsedSchema, SchemaType};

fn name(schema_type: SchemaType, text: &str) -> Option<String> {
    let parsed = ParsedSchema::parse(schema_type, text, &[], &[]).expect("the schema parses");
    parsed.record_name()
}

// Goal: each format's record name is Confluent's: Avro's named type's full name (namespace
// included, or none), Protobuf's first message's full name (package included), JSON
// Schema's title; schemas without one have none. Method: one schema per case.
#[test]
fn record_names_follow_confluent() {
    let avro = r#"{"type":"record","name":"User","namespace":"weir.test","fields":[]}"#;
    assert_eq!(
        name(SchemaType::Avro, avro).as_deref(),
        Some("weir.test.User")
    );
    let bare = r#"{"type":"enum","name":"Color","symbols":["RED"]}"#;
    assert_eq!(name(SchemaType::Avro, bare).as_deref(), Some("Color"));
    assert_eq!(name(SchemaType::Avro, r#""string""#), None);
    let proto = "syntax = \"proto3\";\npackage shop;\nmessage Order { int64 id = 1; }\n\
                 message Line { string item = 1; }\n";
    assert_eq!(
        name(SchemaType::Protobuf, proto).as_deref(),
        Some("shop.Order")
    );
    let json = r#"{"title":"Order","type":"object"}"#;
    assert_eq!(name(SchemaType::Json, json).as_deref(), Some("Order"));
    assert_eq!(name(SchemaType::Json, r#"{"type":"object"}"#), None);
}
