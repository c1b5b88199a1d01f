//! Property: whatever sequence of registry writes runs, the `_schemas` records it leaves
//! replay, whole or compacted, into the same store, and an id is never handed out for two
//! different schemas, even after permanent deletes and compaction.
//!
//! Method: proptest draws sequences of writes (registrations from a small pool of Avro
//! schemas into a few subjects, soft and permanent deletes of versions and subjects,
//! compatibility levels set and removed), plans each with `ops` on the live store, appends
//! and applies its records as the `SchemaLog` would, and checks after every step.

use std::collections::BTreeMap;

use proptest::prelude::*;
use weir_registry::compat::CompatibilityLevel;
use weir_registry::format::SchemaType;
use weir_registry::ops::{self, Planned, SchemaRequest, VersionSpec};
use weir_registry::record::Record;
use weir_registry::store::Store;

const SUBJECTS: [&str; 3] = ["a", "b", "c"];

#[derive(Debug, Clone)]
enum Write {
    Register {
        subject: usize,
        schema: usize,
    },
    DeleteVersion {
        subject: usize,
        version: u32,
        permanent: bool,
    },
    DeleteSubject {
        subject: usize,
        permanent: bool,
    },
    SetLevel {
        subject: Option<usize>,
        none: bool,
    },
    DeleteLevel {
        subject: usize,
    },
}

/// Schemas that evolve compatibly in order (each adds a field with a default), plus one
/// that breaks BACKWARD against all but itself.
fn schema(index: usize) -> String {
    let fields: Vec<String> = (0..=index % 4)
        .map(|i| format!(r#"{{"name":"f{i}","type":"int","default":{i}}}"#))
        .collect();
    if index == 4 {
        return r#"{"type":"record","name":"R","fields":[{"name":"x","type":"string"}]}"#
            .to_owned();
    }
    format!(
        r#"{{"type":"record","name":"R","fields":[{}]}}"#,
        fields.join(",")
    )
}

fn write_strategy() -> impl Strategy<Value = Write> {
    let register =
        (0..3usize, 0..5usize).prop_map(|(subject, schema)| Write::Register { subject, schema });
    let delete_version =
        (0..3usize, 1..5u32, any::<bool>()).prop_map(|(subject, version, permanent)| {
            Write::DeleteVersion {
                subject,
                version,
                permanent,
            }
        });
    let delete_subject = (0..3usize, any::<bool>())
        .prop_map(|(subject, permanent)| Write::DeleteSubject { subject, permanent });
    let set_level = (proptest::option::of(0..3usize), any::<bool>())
        .prop_map(|(subject, none)| Write::SetLevel { subject, none });
    let delete_level = (0..3usize).prop_map(|subject| Write::DeleteLevel { subject });
    prop_oneof![
        4 => register,
        1 => delete_version,
        1 => delete_subject,
        1 => set_level,
        1 => delete_level,
    ]
}

fn plan(store: &Store, write: &Write) -> Result<Vec<Record>, weir_registry::RegistryError> {
    fn records<T>(planned: Planned<T>) -> Vec<Record> {
        planned.records
    }
    Ok(match write {
        Write::Register {
            subject,
            schema: index,
        } => {
            let request = SchemaRequest {
                schema: schema(*index),
                schema_type: SchemaType::Avro,
                references: Vec::new(),
                id: None,
                version: None,
            };
            records(ops::register(store, SUBJECTS[*subject], &request)?)
        }
        Write::DeleteVersion {
            subject,
            version,
            permanent,
        } => records(ops::delete_version(
            store,
            SUBJECTS[*subject],
            VersionSpec::Number(*version),
            *permanent,
        )?),
        Write::DeleteSubject { subject, permanent } => {
            records(ops::delete_subject(store, SUBJECTS[*subject], *permanent)?)
        }
        Write::SetLevel { subject, none } => {
            let level = if *none {
                CompatibilityLevel::None
            } else {
                CompatibilityLevel::Full
            };
            records(ops::set_level(store, subject.map(|s| SUBJECTS[s]), level)?)
        }
        Write::DeleteLevel { subject } => {
            records(ops::delete_level(store, Some(SUBJECTS[*subject]))?)
        }
    })
}

fn replay(records: &[Record]) -> Store {
    let mut store = Store::default();
    for record in records {
        store.apply(&record.key, record.value.as_deref());
    }
    store
}

/// The latest record per key in log order, tombstones dropped (a fully cleaned log).
fn compacted(records: &[Record]) -> Vec<Record> {
    let mut latest = BTreeMap::new();
    for (index, record) in records.iter().enumerate() {
        latest.insert(record.key.clone(), index);
    }
    let mut kept: Vec<usize> = latest.into_values().collect();
    kept.sort_unstable();
    kept.into_iter()
        .map(|i| records[i].clone())
        .filter(|r| r.value.is_some())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn writes_replay_and_never_reuse_ids(
        writes in proptest::collection::vec(write_strategy(), 1..40)
    ) {
        let mut store = Store::default();
        let mut log: Vec<Record> = Vec::new();
        // Every id ever seen, with the schema text it named.
        let mut named: BTreeMap<u32, String> = BTreeMap::new();
        for write in &writes {
            let Ok(records) = plan(&store, write) else { continue };
            for record in &records {
                store.apply(&record.key, record.value.as_deref());
            }
            log.extend(records);
            prop_assert_eq!(store.skipped_count(), 0, "a planned record was refused: {:?}",
                write);
            for subject in SUBJECTS {
                for (_, entry) in store.versions(subject, true) {
                    let content = store.content(entry.id).expect("a version's id has content");
                    let text = named.entry(entry.id).or_insert_with(|| content.schema.clone());
                    prop_assert_eq!(text.as_str(), content.schema.as_str(), "id {} reused",
                        entry.id);
                }
            }
            let live = store.describe();
            prop_assert_eq!(replay(&log).describe(), live.clone());
            let cleaned = replay(&compacted(&log));
            prop_assert_eq!(cleaned.describe(), live);
            // Ids continue above every id handed out, also from a compacted log.
            let highest = named.keys().next_back().copied().unwrap_or(0);
            let next = cleaned.next_id();
            prop_assert!(next > highest, "next {} <= {}", next, highest);
        }
    }
}
