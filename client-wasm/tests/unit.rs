//! wasm-bindgen-test unit tests of the WASM client (run under Node by
//! `wasm-bindgen-test-runner`: `CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
//! cargo test -p weir-wasm --target wasm32-unknown-unknown`).
#![cfg(target_arch = "wasm32")]

use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;
use weir_edge::{EdgeError, Header, Record};
use weir_wasm::convert::{edge_error, new_record, record_object};

fn set(object: &Object, key: &str, value: JsValue) {
    Reflect::set(object, &key.into(), &value).expect("set");
}

// Goal: records from JS accept strings and Uint8Arrays, headers as objects, and reject bad
// types with INVALID_ARGUMENT. Method: convert hand-built JS objects.
#[wasm_bindgen_test]
fn records_from_js_values() {
    let record = Object::new();
    set(&record, "key", "k".into());
    set(&record, "value", Uint8Array::from(&[1u8, 2, 3][..]).into());
    let headers = Object::new();
    set(&headers, "h", "v".into());
    set(&record, "headers", headers.into());
    set(&record, "partition", JsValue::from(2));
    let (converted, partition) = new_record(&record.into()).expect("valid record");
    assert_eq!(converted.key, Some(b"k".to_vec()));
    assert_eq!(converted.value, Some(vec![1, 2, 3]));
    assert_eq!(
        converted.headers,
        vec![Header {
            key: "h".into(),
            value: Some(b"v".to_vec())
        }]
    );
    assert_eq!(partition, Some(2));

    let bad = Object::new();
    set(&bad, "value", JsValue::from(42));
    let error = new_record(&bad.into()).expect_err("a number is not bytes");
    assert_eq!(name_of(&error), "INVALID_ARGUMENT");
}

// Goal: gateway errors become JS Errors named after the Kafka error, with its code.
// Method: convert an EdgeError.
#[wasm_bindgen_test]
fn errors_are_named_after_kafka_errors() {
    let error = edge_error(&EdgeError::new(
        3,
        "UNKNOWN_TOPIC_OR_PARTITION",
        "no such topic",
    ));
    assert!(error.is_instance_of::<js_sys::Error>());
    assert_eq!(name_of(&error), "UNKNOWN_TOPIC_OR_PARTITION");
    let code = Reflect::get(&error, &"code".into()).expect("code");
    assert_eq!(code.as_f64(), Some(3.0));
}

// Goal: consumed records have the documented JS shape. Method: convert and read back.
#[wasm_bindgen_test]
fn consumed_records_have_the_documented_shape() {
    let record = Record {
        topic: "t".into(),
        partition: 1,
        offset: 42,
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(b"v".to_vec()),
        headers: vec![Header {
            key: "h".into(),
            value: None,
        }],
    };
    let object = record_object(&record);
    let get = |key: &str| Reflect::get(&object, &key.into()).expect("field");
    assert_eq!(get("topic").as_string().as_deref(), Some("t"));
    assert_eq!(get("offset").as_f64(), Some(42.0));
    assert!(get("key").is_null());
    assert_eq!(Uint8Array::new(&get("value")).to_vec(), b"v".to_vec());
    let headers = get("headers");
    assert!(Reflect::get(&headers, &"h".into())
        .expect("header")
        .is_null());
}

// Goal: the edge protocol encodes identically in wasm32 (postcard is target independent)
// and the client offers versions 1..=3. Method: round-trip a hello and compare with the
// bytes a native build produces.
#[wasm_bindgen_test]
fn hello_bytes_are_target_independent() {
    let hello = weir_edge::ClientHello::new("t");
    let bytes = weir_edge::encode(&hello);
    assert_eq!(bytes, vec![b'W', b'E', b'I', b'R', 1, 3, 1, b't']);
    assert_eq!(
        weir_edge::decode::<weir_edge::ClientHello>(&bytes),
        Ok(hello)
    );
}

fn name_of(error: &JsValue) -> String {
    Reflect::get(error, &"name".into())
        .ok()
        .and_then(|name| name.as_string())
        .unwrap_or_default()
}

// Goal: the client's partitioner, which version 2 moved into the client, puts keys where
// Kafka's default partitioner does, also in wasm32. Method: golden murmur2 values
// (kafka-python 3.0.12) through weir_edge::partition_for_key.
#[wasm_bindgen_test]
fn keys_land_on_kafkas_partitions() {
    assert_eq!(weir_edge::murmur2(b"foo") as u32, 597_841_616);
    assert_eq!(weir_edge::murmur2(b"key-12345") as u32, 3_342_263_381);
    assert_eq!(
        weir_edge::partition_for_key(b"hello world", 7),
        (1_221_641_059 & 0x7fff_ffff) % 7
    );
}

// Goal: the client's SCRAM (weir_edge::sasl, RustCrypto) computes RFC 7677's published
// SCRAM-SHA-256 example when compiled to wasm32, so browsers authenticate exactly as the
// native tests show. Method: the RFC's nonce, server-first and server-final messages.
#[wasm_bindgen_test]
fn scram_in_wasm_matches_rfc7677() {
    use weir_edge::sasl::{ScramClient, ScramHash};
    let (mut client, first) =
        ScramClient::start(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
    assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                         s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    let client_final = client.server_first(server_first).expect("server-first");
    assert_eq!(
        String::from_utf8(client_final).expect("utf-8"),
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
         p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    );
    let server_final = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    client.server_final(server_final).expect("server signature");
}
