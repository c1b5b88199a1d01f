//! Compatibility matrices: for each format, a table of evolutions (old schema, new schema)
//! with the outcome under BACKWARD and FORWARD, following Confluent's documented rules
//! ("Schema Evolution and Compatibility" and the per-format pages); the levels are then
//! checked to combine them as documented (FULL = both, TRANSITIVE = against every version,
//! NONE = nothing).

use weir_registry::compat::{check, CompatibilityLevel};
use weir_registry::format::{ParsedSchema, SchemaType};
use weir_registry::RegistryError;

fn parse(schema_type: SchemaType, text: &str) -> ParsedSchema {
    match ParsedSchema::parse(schema_type, text, &[], &[]) {
        Ok(parsed) => parsed,
        Err(error) => panic!("{text} should parse: {error}"),
    }
}

/// One evolution: whether the new schema is BACKWARD and FORWARD compatible with the old.
struct Case {
    name: &'static str,
    old: &'static str,
    new: &'static str,
    backward: bool,
    forward: bool,
}

fn run(schema_type: SchemaType, cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let old = parse(schema_type, case.old);
        let new = parse(schema_type, case.new);
        let existing = vec![(1, old)];
        let expectations = [
            (CompatibilityLevel::Backward, case.backward),
            (CompatibilityLevel::Forward, case.forward),
            (CompatibilityLevel::Full, case.backward && case.forward),
            (CompatibilityLevel::BackwardTransitive, case.backward),
            (CompatibilityLevel::ForwardTransitive, case.forward),
            (
                CompatibilityLevel::FullTransitive,
                case.backward && case.forward,
            ),
            (CompatibilityLevel::None, true),
        ];
        for (level, compatible) in expectations {
            let problems = check(level, &new, &existing);
            if problems.is_empty() != compatible {
                failures.push(format!(
                    "{}: {} expected {} got {problems:?}",
                    case.name,
                    level.name(),
                    if compatible {
                        "compatible"
                    } else {
                        "incompatible"
                    }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const AVRO_V1: &str = r#"{"type":"record","name":"User","fields":[
    {"name":"name","type":"string"},{"name":"age","type":"int"}]}"#;

#[test]
fn avro_matrix() {
    // Avro schema resolution (Confluent's Avro rules): defaults make additions and removals
    // safe, promotions go int -> long -> float -> double, unions and enums may only grow
    // for the reader.
    let cases = [
        Case {
            name: "identical",
            old: AVRO_V1,
            new: AVRO_V1,
            backward: true,
            forward: true,
        },
        Case {
            name: "add field with default",
            old: AVRO_V1,
            new: r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},
                {"name":"age","type":"int"},{"name":"email","type":"string","default":""}]}"#,
            backward: true,
            forward: true,
        },
        Case {
            name: "add field without default",
            old: AVRO_V1,
            new: r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},
                {"name":"age","type":"int"},{"name":"email","type":"string"}]}"#,
            backward: false,
            forward: true,
        },
        Case {
            name: "remove field without default",
            old: AVRO_V1,
            new: r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"}]}"#,
            backward: true,
            forward: false,
        },
        Case {
            name: "remove field with default",
            old: r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},
                {"name":"age","type":"int","default":0}]}"#,
            new: r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"}]}"#,
            backward: true,
            forward: true,
        },
        Case {
            name: "promote int to long",
            old: AVRO_V1,
            new: r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},
                {"name":"age","type":"long"}]}"#,
            backward: true,
            forward: false,
        },
        Case {
            name: "change int to string",
            old: AVRO_V1,
            new: r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},
                {"name":"age","type":"string"}]}"#,
            backward: false,
            forward: false,
        },
        Case {
            name: "add enum symbol",
            old: r#"{"type":"enum","name":"Color","symbols":["RED","GREEN"]}"#,
            new: r#"{"type":"enum","name":"Color","symbols":["RED","GREEN","BLUE"]}"#,
            backward: true,
            forward: false,
        },
        Case {
            name: "widen to union",
            old: r#""string""#,
            new: r#"["null","string"]"#,
            backward: true,
            forward: false,
        },
        Case {
            name: "rename record",
            old: AVRO_V1,
            new: r#"{"type":"record","name":"Person","fields":[{"name":"name","type":"string"},
                {"name":"age","type":"int"}]}"#,
            backward: false,
            forward: false,
        },
    ];
    run(SchemaType::Avro, &cases);
}

#[test]
fn json_matrix() {
    // Confluent's JSON Schema rules: open content models (additionalProperties absent or
    // true) let a property be removed but not added with a constraint; closed ones (false)
    // the reverse; required, types, enums and bounds may only widen for the reader.
    let open_v1 =
        r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}"#;
    let closed_v1 = r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},
        "additionalProperties":false}"#;
    let cases = [
        Case {
            name: "identical",
            old: open_v1,
            new: open_v1,
            backward: true,
            forward: true,
        },
        Case {
            name: "open: add property",
            old: open_v1,
            new: r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"},
                "c":{"type":"string"}}}"#,
            backward: false,
            forward: true,
        },
        Case {
            name: "open: remove property",
            old: open_v1,
            new: r#"{"type":"object","properties":{"a":{"type":"string"}}}"#,
            backward: true,
            forward: false,
        },
        Case {
            name: "closed: add property",
            old: closed_v1,
            new: r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"},
                "c":{"type":"string"}},"additionalProperties":false}"#,
            backward: true,
            forward: false,
        },
        Case {
            name: "closed: remove property",
            old: closed_v1,
            new: r#"{"type":"object","properties":{"a":{"type":"string"}},
                "additionalProperties":false}"#,
            backward: false,
            forward: true,
        },
        Case {
            name: "add required",
            old: open_v1,
            new: r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},
                "required":["a"]}"#,
            backward: false,
            forward: true,
        },
        Case {
            name: "integer to number",
            old: r#"{"type":"integer"}"#,
            new: r#"{"type":"number"}"#,
            backward: true,
            forward: false,
        },
        Case {
            name: "string to integer",
            old: r#"{"type":"string"}"#,
            new: r#"{"type":"integer"}"#,
            backward: false,
            forward: false,
        },
        Case {
            name: "enum grows",
            old: r#"{"enum":["a","b"]}"#,
            new: r#"{"enum":["a","b","c"]}"#,
            backward: true,
            forward: false,
        },
        Case {
            name: "maxLength lowered",
            old: r#"{"type":"string","maxLength":10}"#,
            new: r#"{"type":"string","maxLength":5}"#,
            backward: false,
            forward: true,
        },
        Case {
            name: "closed content model opened",
            old: closed_v1,
            new: open_v1,
            backward: true,
            forward: false,
        },
        Case {
            name: "type to union with null",
            old: r#"{"type":"string"}"#,
            new: r#"{"oneOf":[{"type":"null"},{"type":"string"}]}"#,
            backward: true,
            forward: false,
        },
    ];
    run(SchemaType::Json, &cases);
}

#[test]
fn protobuf_matrix() {
    // Confluent's Protobuf rules: adding or removing a (non-required) field is compatible
    // both ways; changing a field's kind, its scalar wire type or its message type, removing
    // a message, changing the package or moving fields into an existing oneof is not.
    let v1 = "syntax = \"proto3\"; package demo;\nmessage User { string name = 1; int32 age = 2; }";
    let cases = [
        Case {
            name: "identical",
            old: v1,
            new: v1,
            backward: true,
            forward: true,
        },
        Case {
            name: "whitespace and comments only",
            old: v1,
            new: "syntax = \"proto3\";\npackage demo;\n// people\nmessage User {\n  string name \
                = 1;\n  int32 age = 2;\n}\n",
            backward: true,
            forward: true,
        },
        Case {
            name: "add field",
            old: v1,
            new: "syntax = \"proto3\"; package demo; message User { string name = 1; int32 age = \
                2; string email = 3; }",
            backward: true,
            forward: true,
        },
        Case {
            name: "remove field",
            old: v1,
            new: "syntax = \"proto3\"; package demo; message User { string name = 1; }",
            backward: true,
            forward: true,
        },
        Case {
            name: "int32 to int64 (same wire type)",
            old: v1,
            new: "syntax = \"proto3\"; package demo; message User { string name = 1; int64 age = \
                2; }",
            backward: true,
            forward: true,
        },
        Case {
            name: "int32 to string",
            old: v1,
            new: "syntax = \"proto3\"; package demo; message User { string name = 1; string age \
                = 2; }",
            backward: false,
            forward: false,
        },
        Case {
            name: "scalar to message",
            old: v1,
            new: "syntax = \"proto3\"; package demo; message Age { int32 v = 1; }\nmessage User \
                { string name = 1; Age age = 2; }",
            backward: false,
            forward: false,
        },
        Case {
            name: "message removed",
            old: "syntax = \"proto3\"; package demo; message User { string name = 1; } message \
                Other { int32 x = 1; }",
            new: "syntax = \"proto3\"; package demo; message User { string name = 1; }",
            // Confluent diffs (old, new): a removed message breaks BACKWARD; FORWARD diffs
            // (new, old), where the message is added, which is compatible.
            backward: false,
            forward: true,
        },
        Case {
            name: "package changed",
            old: v1,
            new: "syntax = \"proto3\"; package other; message User { string name = 1; int32 age \
                = 2; }",
            backward: false,
            forward: false,
        },
        Case {
            name: "fields moved into a new oneof",
            old: v1,
            new: "syntax = \"proto3\"; package demo; message User { oneof who { string name = 1; \
                int32 age = 2; } }",
            // Moving them back out of the oneof (FORWARD's direction) is allowed.
            backward: false,
            forward: true,
        },
    ];
    run(SchemaType::Protobuf, &cases);
}

#[test]
fn transitive_levels_check_every_version() {
    // Goal: BACKWARD checks only the latest version, BACKWARD_TRANSITIVE every one. Method:
    // v1 {a}, v2 {a, b with default}, v3 {a, b without default}: v3 reads v2's data but
    // not v1's (b has no default and v1 never wrote it).
    let v1 = parse(
        SchemaType::Avro,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#,
    );
    let v2 = parse(
        SchemaType::Avro,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},
            {"name":"b","type":"int","default":1}]}"#,
    );
    let v3 = parse(
        SchemaType::Avro,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},
            {"name":"b","type":"int"}]}"#,
    );
    let existing = vec![(1, v1), (2, v2)];
    assert!(check(CompatibilityLevel::Backward, &v3, &existing).is_empty());
    let problems = check(CompatibilityLevel::BackwardTransitive, &v3, &existing);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("version 1"), "{problems:?}");
    assert!(
        problems[0].contains('b'),
        "the message names the field: {problems:?}"
    );
}

#[test]
fn malformed_schemas_are_invalid_schema_errors() {
    // Goal: bad input is 42201 with a message, never a panic. Method: one malformed schema
    // per format, and an Avro schema naming a type that no reference defines.
    let cases = [
        (SchemaType::Avro, "{not json"),
        (
            SchemaType::Avro,
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"Missing"}]}"#,
        ),
        (SchemaType::Json, r#"{"type": 12}"#),
        (SchemaType::Json, "[1, 2]"),
        (SchemaType::Protobuf, "syntax = \"proto3\"; message { }"),
        (
            SchemaType::Protobuf,
            "syntax = \"proto3\"; import \"missing.proto\"; message A { B b = 1; }",
        ),
    ];
    for (schema_type, text) in cases {
        match ParsedSchema::parse(schema_type, text, &[], &[]) {
            Err(error @ RegistryError::InvalidSchema(_)) => assert_eq!(error.error_code(), 42201),
            other => panic!("{text}: expected InvalidSchema, got {other:?}"),
        }
    }
}

#[test]
fn identity_ignores_layout_but_not_meaning() {
    // Goal: re-registering the same schema in another layout finds the same id, while a
    // changed default is a new schema. Method: compare identities.
    let compact = parse(SchemaType::Avro, AVRO_V1);
    let spaced = parse(SchemaType::Avro, &AVRO_V1.replace(',', " ,\n "));
    assert_eq!(compact.identity(), spaced.identity());
    let with_default = parse(
        SchemaType::Avro,
        r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},
            {"name":"age","type":"int","default":3}]}"#,
    );
    assert_ne!(compact.identity(), with_default.identity());
    let proto_a = parse(
        SchemaType::Protobuf,
        "syntax = \"proto3\"; message A { int32 x = 1; }",
    );
    let proto_b = parse(
        SchemaType::Protobuf,
        "syntax = \"proto3\";\n// c\nmessage A {\n int32 x = 1;\n}",
    );
    assert_eq!(proto_a.identity(), proto_b.identity());
}

#[test]
fn forward_and_full_transitive_levels_check_every_version() {
    // Goal: FORWARD and FULL check only the latest version, FORWARD_TRANSITIVE and
    // FULL_TRANSITIVE every one (BACKWARD's counterpart is above). Method: v1 {a, b without
    // default}, v2 {a, b default 1}, v3 {a}: v2 reads v3's data (b's default), v1 does not
    // (b has none); v3 reads both (b ignored), so BACKWARD_TRANSITIVE passes too.
    let v1 = parse(
        SchemaType::Avro,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},
            {"name":"b","type":"int"}]}"#,
    );
    let v2 = parse(
        SchemaType::Avro,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},
            {"name":"b","type":"int","default":1}]}"#,
    );
    let v3 = parse(
        SchemaType::Avro,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#,
    );
    let existing = vec![(1, v1), (2, v2)];
    for level in [
        CompatibilityLevel::Forward,
        CompatibilityLevel::Full,
        CompatibilityLevel::BackwardTransitive,
    ] {
        let problems = check(level, &v3, &existing);
        assert!(problems.is_empty(), "{}: {problems:?}", level.name());
    }
    for level in [
        CompatibilityLevel::ForwardTransitive,
        CompatibilityLevel::FullTransitive,
    ] {
        let problems = check(level, &v3, &existing);
        assert_eq!(problems.len(), 1, "{}: {problems:?}", level.name());
        assert!(
            problems[0].starts_with("version 1 cannot read data written with the new schema")
                && problems[0].contains(level.name())
                && problems[0].contains('b'),
            "{problems:?}"
        );
    }
}
