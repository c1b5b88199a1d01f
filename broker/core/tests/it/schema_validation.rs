//! Broker-side schema validation through the node (issue 17 item 4): a topic with
//! `confluent.value.schema.validation=true` takes a batch only when every record's value is
//! framed with an id the validator the driver gave the node accepts; otherwise the batch is
//! refused whole with INVALID_RECORD, its message and `record_errors` naming the record,
//! and nothing is written. The validator here stands for the server's registry (an id set
//! per subject); the node, storage and produce path are the real ones.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use weir_core::schema_check::{SchemaRefusal, SchemaSide, SchemaValidator, SubjectNameStrategy};
use weir_core::NodeConfig;
use weir_wire::error::ErrorCode;
use weir_wire::records::{encode_batch, BatchOptions, Record};

const TOPIC: &str = "orders";
/// The id the test registry answers "cannot tell yet" for.
const LOADING_ID: u32 = 99;

/// The registered (subject, id) pairs.
#[derive(Debug)]
struct Registered(BTreeSet<(String, u32)>);

impl SchemaValidator for Registered {
    fn check(
        &self,
        topic: &str,
        side: SchemaSide,
        _strategy: SubjectNameStrategy,
        schema_id: u32,
    ) -> Result<(), SchemaRefusal> {
        let subject = format!("{topic}-{}", side.name());
        if self.0.contains(&(subject.clone(), schema_id)) {
            Ok(())
        } else if schema_id == LOADING_ID {
            Err(SchemaRefusal::Unavailable(
                "still reading _schemas".to_owned(),
            ))
        } else {
            Err(SchemaRefusal::Invalid(format!(
                "schema id {schema_id} is not registered under subject {subject}"
            )))
        }
    }
}

fn framed(id: u32) -> Bytes {
    let mut bytes = vec![0];
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes.extend_from_slice(b"avro");
    Bytes::from(bytes)
}

fn values_batch(values: &[Bytes]) -> Bytes {
    let records: Vec<Record> = (values.iter())
        .map(|value| Record {
            offset: 0,
            timestamp: 1,
            key: None,
            value: Some(value.clone()),
            headers: Vec::new(),
        })
        .collect();
    encode_batch(&records, &BatchOptions::default()).expect("encodes")
}

fn validated_node(validator: Option<Registered>) -> weir_core::testing::SingleNode {
    let mut node = node_with(|_: &mut NodeConfig| {});
    if let Some(validator) = validator {
        node.node.set_schema_validator(Arc::new(validator));
    }
    let configs = [("confluent.value.schema.validation", "true")];
    must_create(&mut node, TOPIC, 1, &configs);
    node
}

// Goal: good batches are written; a batch with one bad record (unframed, unknown id) is
// refused whole with INVALID_RECORD, error_message and record_errors naming its index,
// and nothing of it is written. Method: produce through the node, read the partition.
#[test]
fn a_bad_record_refuses_its_batch_and_nothing_is_written() {
    let registered = Registered(BTreeSet::from([(format!("{TOPIC}-value"), 7)]));
    let mut node = validated_node(Some(registered));
    let good = values_batch(&[framed(7), framed(7)]);
    assert_eq!(must_produce(&mut node, TOPIC, 0, good), 0);
    let cases = [
        (
            Bytes::from_static(b"plain"),
            "record 1: value has no schema id: magic byte 0x70, expected 0x00 \
             (Confluent's wire format)",
        ),
        (
            framed(8),
            "record 1: value schema id 8 is not registered under subject orders-value",
        ),
    ];
    for (bad, message) in cases {
        let response = node.call(produce(TOPIC, 0, values_batch(&[framed(7), bad]), -1));
        let result = produce_result(&response);
        assert_eq!(result.error, ErrorCode::INVALID_RECORD);
        assert_eq!(result.error_message.as_deref(), Some(message));
        assert_eq!(result.record_errors.len(), 1);
        assert_eq!(result.record_errors[0].batch_index, 1);
        assert_eq!(result.record_errors[0].message.as_deref(), Some(message));
    }
    assert_eq!(read_partition(&mut node, TOPIC, 0).len(), 2);
}

// Goal: a node without a validator (registry off) refuses a validated topic's records
// with a message saying so, and keeps taking other topics'. Method: both produces.
#[test]
fn without_a_registry_validated_topics_refuse() {
    let mut node = validated_node(None);
    let response = node.call(produce(TOPIC, 0, values_batch(&[framed(1)]), -1));
    let result = produce_result(&response);
    assert_eq!(result.error, ErrorCode::INVALID_RECORD);
    let message = result.error_message.as_deref().unwrap_or_default();
    assert!(message.contains("schema registry is off"), "{message}");
    must_create(&mut node, "plain", 1, &[]);
    must_produce(
        &mut node,
        "plain",
        0,
        values_batch(&[Bytes::from_static(b"x")]),
    );
    assert!(read_partition(&mut node, TOPIC, 0).is_empty());
}

// Goal: a registry that cannot answer yet (still reading `_schemas`) gets a retriable
// error, NOT_ENOUGH_REPLICAS, not INVALID_RECORD, so producers retry; nothing is written.
#[test]
fn a_registry_still_loading_is_retriable() {
    let mut node = validated_node(Some(Registered(BTreeSet::new())));
    let response = node.call(produce(TOPIC, 0, values_batch(&[framed(LOADING_ID)]), -1));
    let result = produce_result(&response);
    assert_eq!(result.error, ErrorCode::NOT_ENOUGH_REPLICAS);
    assert!(result.record_errors.is_empty());
    assert!(read_partition(&mut node, TOPIC, 0).is_empty());
}
