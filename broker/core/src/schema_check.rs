//! Broker-side schema validation (issue 17 item 4): a topic with
//! `confluent.value.schema.validation=true` (or the key's) takes only records whose value
//! (key) is framed in Confluent's wire format, magic byte 0 then a 4-byte big-endian schema
//! id, with an id the schema registry holds under the subject the topic's subject name
//! strategy names.
//!
//! The core reads the framing (pure, here); whether an id is registered under a subject is
//! the registry's knowledge, which lives in the server. The seam is [`SchemaValidator`]:
//! the driver gives the node one (`Node::set_schema_validator`), implemented over the
//! registry's in-memory store, and `produce` asks it synchronously (a map lookup, no I/O).
//! A node without one (registry off, simulations) refuses every record of a validated topic
//! with a message saying so.
//!
//! Invariant: a batch of a validated topic reaches storage only if every record passed;
//! otherwise the whole batch is refused with INVALID_RECORD, naming the first record that
//! failed (its index in the batch) and why. A null key or value (a tombstone) is not
//! checked: Confluent's serializers never frame null.

use std::sync::Arc;

use weir_wire::rewrite::BatchRecords;

/// Confluent's subject name strategies (`confluent.{key,value}.subject.name.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubjectNameStrategy {
    /// `<topic>-key` / `<topic>-value`.
    #[default]
    TopicName,
    /// The record's fully qualified name (from the schema of its id).
    RecordName,
    /// `<topic>-<record name>`.
    TopicRecordName,
}

/// The package of Confluent's strategy classes.
const STRATEGY_PACKAGE: &str = "io.confluent.kafka.serializers.subject.";

impl SubjectNameStrategy {
    /// The short name (what the topic config persists and describes).
    pub fn name(self) -> &'static str {
        match self {
            SubjectNameStrategy::TopicName => "TopicNameStrategy",
            SubjectNameStrategy::RecordName => "RecordNameStrategy",
            SubjectNameStrategy::TopicRecordName => "TopicRecordNameStrategy",
        }
    }

    /// Parses a short name or Confluent's full class name.
    pub fn parse(value: &str) -> Option<SubjectNameStrategy> {
        let short = value.strip_prefix(STRATEGY_PACKAGE).unwrap_or(value);
        [
            SubjectNameStrategy::TopicName,
            SubjectNameStrategy::RecordName,
            SubjectNameStrategy::TopicRecordName,
        ]
        .into_iter()
        .find(|strategy| strategy.name() == short)
    }
}

/// Which part of a record is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaSide {
    /// The record key.
    Key,
    /// The record value.
    Value,
}

impl SchemaSide {
    /// `key` or `value`, as subjects and messages spell it.
    pub fn name(self) -> &'static str {
        match self {
            SchemaSide::Key => "key",
            SchemaSide::Value => "value",
        }
    }
}

/// What the registry says about one schema id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaRefusal {
    /// The id is unknown or not registered under the subject: INVALID_RECORD.
    Invalid(String),
    /// The registry cannot answer yet (still reading `_schemas`): a retriable error, so
    /// the producer tries again.
    Unavailable(String),
}

/// The registry's half of validation, given to the node by its driver.
pub trait SchemaValidator: Send + Sync + std::fmt::Debug {
    /// Is `schema_id` registered (live) under the subject `strategy` names for `topic`'s
    /// `side`? The message of a refusal names the id and the subject.
    fn check(
        &self,
        topic: &str,
        side: SchemaSide,
        strategy: SubjectNameStrategy,
        schema_id: u32,
    ) -> Result<(), SchemaRefusal>;
}

/// The validator a node uses, if its driver gave one.
pub type SharedValidator = Arc<dyn SchemaValidator>;

/// A topic's validation settings: which sides are checked, with which strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validation {
    /// Checked sides with their strategies (key first).
    pub key: Option<SubjectNameStrategy>,
    /// The value's.
    pub value: Option<SubjectNameStrategy>,
}

/// Distinct accepted ids remembered per batch (beyond: asked about per record).
const ACCEPTED_PER_BATCH_MAX: usize = 16;

/// Why a batch was refused: the first failing record's index and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRefusal {
    /// The record's index in the batch (Kafka's `batch_index`).
    pub batch_index: i32,
    /// Why.
    pub message: String,
    /// True when the registry could not answer (retriable), false for a bad record.
    pub unavailable: bool,
}

/// The schema id a key or value carries: magic byte 0, then the id (big endian).
pub fn framed_id(bytes: &[u8]) -> Result<u32, String> {
    match bytes {
        [] => Err("is empty, not Confluent's wire format (magic byte 0, schema id)".to_owned()),
        [magic, ..] if *magic != 0 => Err(format!(
            "has no schema id: magic byte 0x{magic:02x}, expected 0x00 \
             (Confluent's wire format)"
        )),
        [0, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(format!(
            "is {} bytes: too short for magic byte 0 and a 4-byte schema id",
            bytes.len()
        )),
    }
}

/// Checks every record of `batch` (one whole v2 batch) of `topic` against `validation`,
/// asking `validator` about each framed id. Without a validator every record is refused.
pub fn check_batch(
    topic: &str,
    batch: &[u8],
    validation: Validation,
    validator: Option<&dyn SchemaValidator>,
) -> Result<(), BatchRefusal> {
    let refuse = |batch_index: usize, message: String, unavailable: bool| BatchRefusal {
        batch_index: i32::try_from(batch_index).unwrap_or(i32::MAX),
        message,
        unavailable,
    };
    let records =
        BatchRecords::parse(batch).map_err(|error| refuse(0, error.to_string(), false))?;
    let sides = [
        (SchemaSide::Key, validation.key),
        (SchemaSide::Value, validation.value),
    ];
    // The ids a batch carries are few (usually one): each is asked about once per side.
    let mut accepted: Vec<(SchemaSide, u32)> = Vec::new();
    for (index, record) in records.records().enumerate() {
        for (side, strategy) in sides {
            let Some(strategy) = strategy else { continue };
            let bytes = match side {
                SchemaSide::Key => record.key,
                SchemaSide::Value => record.value,
            };
            let Some(bytes) = bytes else { continue };
            let what = side.name();
            let id = framed_id(bytes)
                .map_err(|why| refuse(index, format!("record {index}: {what} {why}"), false))?;
            if accepted.contains(&(side, id)) {
                continue;
            }
            let Some(validator) = validator else {
                let message = format!(
                    "record {index}: topic {topic} validates {what} schemas \
                     (confluent.{what}.schema.validation=true) but this broker's schema \
                     registry is off"
                );
                return Err(refuse(index, message, false));
            };
            validator
                .check(topic, side, strategy, id)
                .map_err(|refusal| match refusal {
                    SchemaRefusal::Invalid(why) => {
                        refuse(index, format!("record {index}: {what} {why}"), false)
                    }
                    SchemaRefusal::Unavailable(why) => {
                        refuse(index, format!("record {index}: {what}: {why}"), true)
                    }
                })?;
            if accepted.len() < ACCEPTED_PER_BATCH_MAX {
                accepted.push((side, id));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use weir_wire::records::{encode_batch, BatchOptions, Record};

    /// Knows ids 1 (under `t-value`) and 2 (under `t-key`); id 9 is "not loaded yet".
    #[derive(Debug)]
    struct Known;

    impl SchemaValidator for Known {
        fn check(
            &self,
            topic: &str,
            side: SchemaSide,
            strategy: SubjectNameStrategy,
            schema_id: u32,
        ) -> Result<(), SchemaRefusal> {
            assert_eq!(strategy, SubjectNameStrategy::TopicName);
            let subject = format!("{topic}-{}", side.name());
            match (schema_id, subject.as_str()) {
                (1, "t-value") | (2, "t-key") => Ok(()),
                (9, _) => Err(SchemaRefusal::Unavailable("loading".into())),
                _ => Err(SchemaRefusal::Invalid(format!(
                    "schema id {schema_id} is not registered under subject {subject}"
                ))),
            }
        }
    }

    fn framed(id: u32) -> Bytes {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&id.to_be_bytes());
        bytes.extend_from_slice(b"payload");
        Bytes::from(bytes)
    }

    fn batch(records: &[(Option<Bytes>, Option<Bytes>)]) -> Bytes {
        let records: Vec<Record> = records
            .iter()
            .map(|(key, value)| Record {
                offset: 0,
                timestamp: 0,
                key: key.clone(),
                value: value.clone(),
                headers: Vec::new(),
            })
            .collect();
        encode_batch(&records, &BatchOptions::default()).expect("encodes")
    }

    const VALUE: Validation = Validation {
        key: None,
        value: Some(SubjectNameStrategy::TopicName),
    };

    // Goal: Confluent's framing is read exactly: magic byte 0 then a big-endian id; other
    // first bytes, short and empty payloads are refused with a reason. Method: one each.
    #[test]
    fn framing_is_magic_zero_and_a_big_endian_id() {
        assert_eq!(framed_id(&[0, 0, 0, 1, 2]), Ok(258));
        assert_eq!(framed_id(&[0, 0, 0, 0, 7]), Ok(7));
        assert!(framed_id(b"{\"a\":1}")
            .expect_err("refused")
            .contains("magic byte 0x7b"));
        assert!(framed_id(&[0, 0, 1])
            .expect_err("refused")
            .contains("3 bytes"));
        assert!(framed_id(&[]).expect_err("refused").contains("empty"));
    }

    // Goal: a batch passes only when every checked record carries a known id under the
    // subject; the refusal names the first failing record's index and the reason; null
    // values and unchecked keys pass. Method: good batch, then one bad record at index 2.
    #[test]
    fn the_first_bad_record_refuses_the_batch() {
        let good = batch(&[
            (None, Some(framed(1))),
            (Some(b"raw".as_ref().into()), None),
        ]);
        assert_eq!(check_batch("t", &good, VALUE, Some(&Known)), Ok(()));
        let cases = [
            (Some(Bytes::from_static(b"plain")), "magic byte 0x70"),
            (
                Some(framed(5)),
                "schema id 5 is not registered under subject t-value",
            ),
            (
                Some(framed(2)),
                "schema id 2 is not registered under subject t-value",
            ),
        ];
        for (value, reason) in cases {
            let bad = batch(&[
                (None, Some(framed(1))),
                (None, Some(framed(1))),
                (None, value),
            ]);
            let refusal = check_batch("t", &bad, VALUE, Some(&Known)).expect_err("refused");
            assert_eq!(refusal.batch_index, 2);
            assert!(!refusal.unavailable);
            assert!(
                refusal.message.starts_with("record 2: value "),
                "{}",
                refusal.message
            );
            assert!(refusal.message.contains(reason), "{}", refusal.message);
        }
    }

    /// Counts the questions; accepts everything.
    #[derive(Debug, Default)]
    struct Counting(std::sync::atomic::AtomicUsize);

    impl SchemaValidator for Counting {
        fn check(
            &self,
            _topic: &str,
            _side: SchemaSide,
            _strategy: SubjectNameStrategy,
            _schema_id: u32,
        ) -> Result<(), SchemaRefusal> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
    }

    // Goal: the registry is asked once per distinct id in a batch, not once per record.
    // Method: 100 records carrying two ids; count the questions.
    #[test]
    fn each_id_is_asked_about_once_per_batch() {
        let records: Vec<_> = (0..100).map(|i| (None, Some(framed(i % 2)))).collect();
        let counting = Counting::default();
        assert_eq!(
            check_batch("t", &batch(&records), VALUE, Some(&counting)),
            Ok(())
        );
        assert_eq!(counting.0.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    // Goal: keys are checked under `<topic>-key` when key validation is on. Method: the
    // same key id passes as a key and is refused as a value.
    #[test]
    fn keys_are_checked_under_the_key_subject() {
        let both = Validation {
            key: Some(SubjectNameStrategy::TopicName),
            value: Some(SubjectNameStrategy::TopicName),
        };
        let good = batch(&[(Some(framed(2)), Some(framed(1)))]);
        assert_eq!(check_batch("t", &good, both, Some(&Known)), Ok(()));
        let swapped = batch(&[(Some(framed(1)), Some(framed(1)))]);
        let refusal = check_batch("t", &swapped, both, Some(&Known)).expect_err("refused");
        assert!(
            refusal.message.contains("record 0: key schema id 1"),
            "{}",
            refusal.message
        );
    }

    // Goal: a registry that cannot answer yet is retriable, and a node without a registry
    // refuses with a message saying the registry is off. Method: id 9, then no validator.
    #[test]
    fn unavailable_and_missing_registries_are_told_apart() {
        let loading = batch(&[(None, Some(framed(9)))]);
        let refusal = check_batch("t", &loading, VALUE, Some(&Known)).expect_err("refused");
        assert!(refusal.unavailable);
        let good = batch(&[(None, Some(framed(1)))]);
        let refusal = check_batch("t", &good, VALUE, None).expect_err("refused");
        assert!(!refusal.unavailable);
        assert!(
            refusal.message.contains("registry is off"),
            "{}",
            refusal.message
        );
    }

    // Goal: Confluent's full class names and the short names parse; anything else does
    // not. Method: each spelling.
    #[test]
    fn strategies_parse_short_and_class_names() {
        use SubjectNameStrategy::*;
        for strategy in [TopicName, RecordName, TopicRecordName] {
            assert_eq!(SubjectNameStrategy::parse(strategy.name()), Some(strategy));
            let class = format!("{STRATEGY_PACKAGE}{}", strategy.name());
            assert_eq!(SubjectNameStrategy::parse(&class), Some(strategy));
        }
        assert_eq!(SubjectNameStrategy::parse("topicnamestrategy"), None);
        assert_eq!(
            SubjectNameStrategy::parse("com.example.TopicNameStrategy"),
            None
        );
    }
}
